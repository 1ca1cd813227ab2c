//! `tessera init`: the questions of the sessions-versus-JWT decision guide, asked one by one,
//! and a commented `tessera.toml` whose mode and settings follow from the answers.
//!
//! Every question has a flag, so a script can answer all of them (`--yes` takes the default
//! for any it leaves out). An invalid answer is asked again; standard input closing before an
//! answer is an error that names the flag to pass instead.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};

#[derive(Args, Debug, Default)]
pub struct InitArgs {
    /// Where to write the configuration.
    #[arg(long, default_value = "tessera.toml")]
    pub output: PathBuf,
    /// Replace the file if it exists.
    #[arg(long)]
    pub force: bool,
    /// Take the default answer for every question not given as a flag (no prompts).
    #[arg(long)]
    pub yes: bool,
    /// Will tessera run on more than one server (instance)?
    #[arg(long, value_name = "yes|no")]
    pub scale_out: Option<YesNo>,
    /// Must a logout or a revoked session stop working at once (sensitive data)?
    #[arg(long, value_name = "yes|no")]
    pub instant_logout: Option<YesNo>,
    /// Do clients renew short-lived access tokens with refresh tokens (mobile apps, SPAs, APIs)?
    #[arg(long, value_name = "yes|no")]
    pub refresh: Option<YesNo>,
    /// Will authenticated requests be very frequent (hundreds per second or more)?
    #[arg(long, value_name = "yes|no")]
    pub high_rate: Option<YesNo>,
    /// Is the simplest setup to run worth more than the rest?
    #[arg(long, value_name = "yes|no")]
    pub simple: Option<YesNo>,
    /// Where the data lives.
    #[arg(long, value_name = "sqlite|postgres")]
    pub store: Option<StoreChoice>,
    /// PostgreSQL URL for `--store postgres`.
    #[arg(long)]
    pub postgres_url: Option<String>,
    /// Redis URL for `--store postgres`.
    #[arg(long)]
    pub redis_url: Option<String>,
    /// The address the server listens on.
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum YesNo {
    Yes,
    No,
}

impl YesNo {
    fn get(self) -> bool {
        self == Self::Yes
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreChoice {
    /// The embedded SQLite file: one server, nothing else to run.
    Sqlite,
    /// PostgreSQL + Redis: shared by several instances.
    Postgres,
}

/// The answers, whichever way they were given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answers {
    pub scale_out: bool,
    pub instant_logout: bool,
    pub refresh: bool,
    pub high_rate: bool,
    pub simple: bool,
    pub store: StoreChoice,
    pub postgres_url: String,
    pub redis_url: String,
    pub listen: std::net::SocketAddr,
}

const DEFAULT_POSTGRES: &str = "postgres://tessera@127.0.0.1:5432/tessera";
const DEFAULT_REDIS: &str = "redis://127.0.0.1:6379";

/// Reads answers from `input`, writing questions and explanations to `out`.
struct Prompter<'a> {
    input: &'a mut dyn BufRead,
    out: &'a mut dyn Write,
    defaults: bool,
}

impl Prompter<'_> {
    /// Asks until `parse` accepts the answer; an empty answer is `default`.
    fn ask<T>(
        &mut self,
        question: &str,
        flag: &str,
        default: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> anyhow::Result<T> {
        if self.defaults {
            return parse(default).map_err(anyhow::Error::msg);
        }
        loop {
            write!(self.out, "{question} [{default}] ")?;
            self.out.flush()?;
            let mut line = String::new();
            let read = self.input.read_line(&mut line).context("cannot read the answer")?;
            if read == 0 {
                writeln!(self.out)?;
                bail!(
                    "standard input closed before an answer to \"{question}\"; without a terminal, answer with \
                     --{flag} (or --yes to take the defaults)"
                );
            }
            let answer = line.trim();
            let answer = if answer.is_empty() { default } else { answer };
            match parse(answer) {
                Ok(value) => return Ok(value),
                Err(hint) => writeln!(self.out, "  {hint}")?,
            }
        }
    }

    fn yes_no(&mut self, given: Option<YesNo>, question: &str, flag: &str, default: bool) -> anyhow::Result<bool> {
        if let Some(v) = given {
            return Ok(v.get());
        }
        self.ask(question, flag, if default { "yes" } else { "no" }, |a| match a.to_ascii_lowercase().as_str() {
            "y" | "yes" => Ok(true),
            "n" | "no" => Ok(false),
            _ => Err("please answer yes or no".into()),
        })
    }

    fn say(&mut self, text: &str) -> anyhow::Result<()> {
        if !self.defaults {
            writeln!(self.out, "  -> {text}")?;
        }
        Ok(())
    }
}

/// Asks whatever `args` leaves open.
pub fn ask(args: &InitArgs, input: &mut dyn BufRead, out: &mut dyn Write) -> anyhow::Result<Answers> {
    let mut p = Prompter { input, out, defaults: args.yes };
    let scale_out =
        p.yes_no(args.scale_out, "1. Will tessera run on more than one server (instance)?", "scale-out", false)?;
    p.say(if scale_out {
        "several instances must share sessions and the denylist: PostgreSQL + Redis, and JWTs each instance checks alone"
    } else {
        "one instance: the embedded SQLite store is enough, and server-side sessions cost little"
    })?;
    let instant_logout = p.yes_no(
        args.instant_logout,
        "2. Is the data sensitive enough that a logout or a revoked session must stop working at once?",
        "instant-logout",
        false,
    )?;
    p.say(if instant_logout {
        "credentials are checked against the store, so a revocation takes effect at once"
    } else {
        "a revoked access token may keep working until it expires (minutes), which saves store reads"
    })?;
    let refresh = p.yes_no(
        args.refresh,
        "3. Do clients renew short-lived access tokens with refresh tokens (mobile apps, SPAs, other services)?",
        "refresh",
        false,
    )?;
    p.say(if refresh {
        "short JWT access tokens plus rotating refresh tokens, whose reuse is detected"
    } else {
        "no refresh tokens: one credential per login"
    })?;
    let high_rate = p.yes_no(
        args.high_rate,
        "4. Will authenticated requests be very frequent (hundreds per second or more)?",
        "high-rate",
        false,
    )?;
    p.say(if high_rate {
        "requests are checked from the token's signature, without a store read each"
    } else {
        "a store read per request is affordable"
    })?;
    let simple = p.yes_no(args.simple, "5. Is the simplest setup to run worth more than the rest?", "simple", true)?;
    p.say(if simple {
        "fewer moving parts: no signing keys where they are not needed"
    } else {
        "the settings follow the other answers alone"
    })?;
    let store = match args.store {
        Some(StoreChoice::Sqlite) if scale_out => {
            bail!("--store sqlite cannot serve several instances (--scale-out yes): use --store postgres")
        }
        Some(s) => s,
        None => {
            let default = if scale_out { "postgres" } else { "sqlite" };
            p.ask("6. Store: sqlite (embedded, one server) or postgres (PostgreSQL + Redis)?", "store", default, |a| {
                match a.to_ascii_lowercase().as_str() {
                    "sqlite" => {
                        if scale_out {
                            Err("the embedded store lives on one machine; several instances need postgres".into())
                        } else {
                            Ok(StoreChoice::Sqlite)
                        }
                    }
                    "postgres" | "postgresql" | "distributed" => Ok(StoreChoice::Postgres),
                    _ => Err("please answer sqlite or postgres".into()),
                }
            })?
        }
    };
    let (postgres_url, redis_url) = if store == StoreChoice::Postgres {
        let url_check = |schemes: &'static [&'static str]| {
            move |a: &str| {
                if schemes.iter().any(|s| a.starts_with(s)) {
                    Ok(a.to_owned())
                } else {
                    Err(format!("a URL starting with {}", schemes.join(" or ")))
                }
            }
        };
        let pg = match &args.postgres_url {
            Some(u) => url_check(&["postgres://", "postgresql://"])(u).map_err(anyhow::Error::msg)?,
            None => p.ask(
                "   PostgreSQL URL?",
                "postgres-url",
                DEFAULT_POSTGRES,
                url_check(&["postgres://", "postgresql://"]),
            )?,
        };
        let redis = match &args.redis_url {
            Some(u) => url_check(&["redis://", "rediss://"])(u).map_err(anyhow::Error::msg)?,
            None => p.ask("   Redis URL?", "redis-url", DEFAULT_REDIS, url_check(&["redis://", "rediss://"]))?,
        };
        (pg, redis)
    } else {
        (String::new(), String::new())
    };
    Ok(Answers {
        scale_out,
        instant_logout,
        refresh,
        high_rate,
        simple,
        store,
        postgres_url,
        redis_url,
        listen: args.listen.unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 8080))),
    })
}

/// The mode and settings the answers call for, with the reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub mode: &'static str,
    /// `revocation.check`, in the token modes.
    pub revocation: Option<&'static str>,
    /// `refresh.enabled` in jwt mode.
    pub refresh_enabled: Option<bool>,
    pub access_ttl: Option<&'static str>,
    pub why: Vec<String>,
}

pub fn decide(a: &Answers) -> Decision {
    let stateless = a.scale_out || a.high_rate;
    let mut why = Vec::new();
    if !stateless && (a.simple || !a.refresh) {
        why.push(
            "mode = \"session\": one server at a moderate request rate, so an opaque session token checked against \
             the store is the simplest choice, and a logout takes effect at once"
                .to_owned(),
        );
        if a.refresh {
            why.push(
                "no refresh tokens in session mode: a session slides forward while it is used (session.idle_timeout)"
                    .to_owned(),
            );
        }
        return Decision { mode: "session", revocation: None, refresh_enabled: None, access_ttl: None, why };
    }
    if a.refresh || a.instant_logout && !a.high_rate {
        let allowlist = a.instant_logout && !a.high_rate;
        why.push(
            "mode = \"hybrid\": short JWT access tokens bound to a server session, renewed with rotating refresh \
             tokens"
                .to_owned(),
        );
        if !a.refresh {
            why.push("refresh tokens come with hybrid mode; clients that never refresh simply log in again".to_owned());
        }
        why.push(if allowlist {
            "revocation.check = \"allowlist\": every request checks that the session is still live, so a logout \
             takes effect at once (one store read per request)"
                .to_owned()
        } else if a.instant_logout {
            "revocation.check = \"denylist\": revocations reach every instance within about 100 ms without a store \
             read per request (an allowlist would read the store on every request, which the request rate argues \
             against)"
                .to_owned()
        } else {
            "revocation.check = \"denylist\": revocations reach every instance within about 100 ms without a store \
             read per request"
                .to_owned()
        });
        return Decision {
            mode: "hybrid",
            revocation: Some(if allowlist { "allowlist" } else { "denylist" }),
            refresh_enabled: None,
            access_ttl: Some("5m"),
            why,
        };
    }
    why.push(
        "mode = \"jwt\": self-contained signed tokens that any instance (or another service, with the JWKS) checks \
         without the store"
            .to_owned(),
    );
    why.push("refresh.enabled = false: no refresh tokens were asked for, so a client logs in again".to_owned());
    let (revocation, ttl) = if a.instant_logout {
        why.push(
            "revocation.check = \"denylist\" with 5-minute tokens: a logout reaches every instance within about \
             100 ms"
                .to_owned(),
        );
        ("denylist", "5m")
    } else {
        why.push(
            "revocation.check = \"none\" with 1-hour tokens: nothing is read per request; a logout takes effect \
             when the token expires"
                .to_owned(),
        );
        ("none", "1h")
    };
    Decision { mode: "jwt", revocation: Some(revocation), refresh_enabled: Some(false), access_ttl: Some(ttl), why }
}

/// The commented file.
pub fn render(a: &Answers, d: &Decision) -> String {
    let yn = |b: bool| if b { "yes" } else { "no" };
    let mut t = String::new();
    t.push_str("# tessera.toml, written by `tessera init`. Every setting is described in docs/configuration.md.\n");
    t.push_str("#\n# Your answers:\n");
    t.push_str(&format!("#   more than one instance:        {}\n", yn(a.scale_out)));
    t.push_str(&format!("#   a logout must act at once:     {}\n", yn(a.instant_logout)));
    t.push_str(&format!("#   refresh tokens:                {}\n", yn(a.refresh)));
    t.push_str(&format!("#   very frequent requests:        {}\n", yn(a.high_rate)));
    t.push_str(&format!("#   simplest setup first:          {}\n", yn(a.simple)));
    t.push_str("#\n# What follows from them:\n");
    for line in &d.why {
        t.push_str(&format!("#   - {line}\n"));
    }
    t.push_str("\n[server]\n");
    t.push_str(&format!("listen = \"{}\"\n", a.listen));
    t.push_str("\n[store]\n");
    match a.store {
        StoreChoice::Sqlite => {
            t.push_str("# The embedded SQLite store: one file in this directory, on this one machine.\n");
            t.push_str("data_dir = \"./tessera-data\"\n");
        }
        StoreChoice::Postgres => {
            t.push_str("# PostgreSQL keeps accounts, keys and the audit trail; Redis keeps sessions, refresh\n");
            t.push_str("# families, the denylist and throttle counters. The PostgreSQL database (and the schema\n");
            t.push_str("# named in search_path, if any) must exist; tessera creates its tables.\n");
            t.push_str(&format!("postgres_url = {}\n", toml_string(&a.postgres_url)));
            t.push_str(&format!("redis_url = {}\n", toml_string(&a.redis_url)));
        }
    }
    t.push_str("\n[auth]\n");
    t.push_str("# session | jwt | hybrid\n");
    t.push_str(&format!("mode = \"{}\"\n", d.mode));
    if let Some(check) = d.revocation {
        t.push_str("\n[revocation]\n# none | denylist | allowlist\n");
        t.push_str(&format!("check = \"{check}\"\n"));
    }
    if let Some(ttl) = d.access_ttl {
        t.push_str("\n[jwt]\n# How long an access token works. Set jwt.seal_key (better: the environment variable\n");
        t.push_str("# TESSERA_JWT__SEAL_KEY) to seal signing keys at rest.\n");
        t.push_str(&format!("access_ttl = \"{ttl}\"\n"));
    }
    if let Some(enabled) = d.refresh_enabled {
        t.push_str("\n[refresh]\n");
        t.push_str(&format!("enabled = {enabled}\n"));
    }
    if d.mode == "session" {
        t.push_str("\n[session]\n# A session ends after this long unused, and after absolute_timeout in any case.\n");
        t.push_str("idle_timeout = \"7d\"\nabsolute_timeout = \"30d\"\n");
    }
    t.push_str("\n[cookie]\n# Cookies only over HTTPS. Set false only to try tessera over plain http on loopback.\n");
    t.push_str("secure = true\n");
    t.push_str("\n[admin]\n# A long random key enables the admin endpoints (empty: disabled).\napi_key = \"\"\n");
    t
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `tessera init`.
pub fn run(args: &InitArgs) -> anyhow::Result<()> {
    if args.output.exists() && !args.force {
        bail!("{} exists; pass --force to replace it", args.output.display());
    }
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut out = std::io::stdout();
    let answers = ask(args, &mut input, &mut out)?;
    let decision = decide(&answers);
    let text = render(&answers, &decision);
    // The file must be one tessera accepts: check before writing.
    crate::config::Config::from_toml(&text).context("the configuration tessera init wrote does not load (a bug)")?;
    std::fs::write(&args.output, &text).with_context(|| format!("cannot write {}", args.output.display()))?;
    println!();
    println!("wrote {} (mode {}):", args.output.display(), decision.mode);
    for line in &decision.why {
        println!("  - {line}");
    }
    if answers.store == StoreChoice::Postgres {
        println!("  - the PostgreSQL database must exist before `tessera serve`; Redis must be running");
    }
    if decision.mode != "session" {
        println!(
            "  - seal the signing keys: export TESSERA_JWT__SEAL_KEY=$(openssl rand -base64 32 | tr '+/' '-_' | tr -d '=')"
        );
    }
    println!("next: tessera serve --config {}", args.output.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(scale_out: bool, instant: bool, refresh: bool, high_rate: bool, simple: bool) -> Answers {
        Answers {
            scale_out,
            instant_logout: instant,
            refresh,
            high_rate,
            simple,
            store: if scale_out { StoreChoice::Postgres } else { StoreChoice::Sqlite },
            postgres_url: if scale_out { DEFAULT_POSTGRES.into() } else { String::new() },
            redis_url: if scale_out { DEFAULT_REDIS.into() } else { String::new() },
            listen: "127.0.0.1:8080".parse().unwrap(),
        }
    }

    #[test]
    fn every_combination_of_answers_writes_a_file_tessera_loads_in_the_mode_decided() {
        for bits in 0..32u8 {
            let b = |i: u8| bits & (1 << i) != 0;
            let a = answers(b(0), b(1), b(2), b(3), b(4));
            let d = decide(&a);
            let config = crate::config::Config::from_toml(&render(&a, &d)).unwrap_or_else(|e| panic!("{a:?}: {e}"));
            let mode = match config.auth.mode {
                crate::config::ModeSetting::Session => "session",
                crate::config::ModeSetting::Jwt => "jwt",
                crate::config::ModeSetting::Hybrid => "hybrid",
            };
            assert_eq!(mode, d.mode, "{a:?}");
            assert_eq!(config.store.is_distributed(), a.scale_out, "{a:?}");
        }
    }

    #[test]
    fn the_seeds_cases_get_their_modes() {
        // One server, simple, no refresh: sessions.
        assert_eq!(decide(&answers(false, false, false, false, true)).mode, "session");
        // A sensitive service on one server: sessions, revoked at once.
        assert_eq!(decide(&answers(false, true, false, false, false)).mode, "session");
        // Many servers and many requests with refresh: hybrid with a denylist.
        let d = decide(&answers(true, false, true, true, false));
        assert_eq!((d.mode, d.revocation), ("hybrid", Some("denylist")));
        // Many servers, sensitive, moderate rate: hybrid with an allowlist.
        let d = decide(&answers(true, true, true, false, false));
        assert_eq!((d.mode, d.revocation), ("hybrid", Some("allowlist")));
        // Many requests, nothing sensitive, no refresh: plain JWTs.
        let d = decide(&answers(true, false, false, true, true));
        assert_eq!((d.mode, d.revocation, d.refresh_enabled), ("jwt", Some("none"), Some(false)));
    }

    #[test]
    fn invalid_answers_are_asked_again_and_closed_input_is_an_error_naming_the_flag() {
        let args = InitArgs::default();
        let mut input: &[u8] = b"maybe\nyes\n";
        let mut out = Vec::new();
        let e = ask(&args, &mut input, &mut out).unwrap_err().to_string();
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains("please answer yes or no"), "{out}");
        assert!(e.contains("--instant-logout"), "{e}");
    }
}
