//! `tessera user …` and `tessera sessions …`: operator commands that work on the store
//! directly, so they need no running server. A running server in the same data directory
//! learns of revocations within its cache-sync interval.

use std::io::BufRead as _;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::Subcommand;
use tessera_core::{SessionId, SystemClock};

use crate::config::Config;
use crate::startup::Backend;

/// Opens the store an administration command manages. It must exist already: run in the
/// wrong directory, a command would otherwise create an empty store there and report on it.
async fn open_auth(config: &Config, clock: Arc<SystemClock>) -> anyhow::Result<(tessera_core::Auth, Backend)> {
    if !config.store.is_distributed() {
        let db = config.store.data_dir.join(tessera_store::sqlite::DB_FILE);
        if !db.is_file() {
            bail!(
                "no tessera store at {} (store.data_dir = {:?}): run this where `tessera serve` runs, point                  --config at its tessera.toml, or create the store with `tessera migrate`",
                db.display(),
                config.store.data_dir.display().to_string()
            );
        }
    }
    crate::startup::open_auth(config, clock).await
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create an account (sign-up need not be open). The password is read from stdin.
    Add {
        username: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List accounts.
    List,
    /// Disable an account and revoke all its sessions.
    Disable { username: String },
    /// Enable a disabled account.
    Enable { username: String },
}

#[derive(Subcommand)]
pub enum SessionsCommand {
    /// Revoke every session of a user, or one with --session.
    Revoke {
        username: String,
        #[arg(long)]
        session: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// List signing keys: kid, algorithm, when each signs from and until.
    List,
    /// Publish a new key; it signs once `jwt.jwks_max_age` has passed, and the old keys stay
    /// published until the tokens they signed have expired.
    Rotate,
    /// Bring your own signing key: a PEM (PKCS#8 `PRIVATE KEY`, SEC 1 `EC PRIVATE KEY`, PKCS#1
    /// `RSA PRIVATE KEY`) or a JWK with its private members, of the `jwt.alg` algorithm. It is
    /// stored like a generated key (sealed under `jwt.seal_key` when set), published at once,
    /// and signs as a rotated key does: once `jwt.jwks_max_age` has passed.
    Import {
        /// The key file, or `-` to read it from standard input.
        file: String,
        /// The key's `kid` (1 to 64 characters of A-Z a-z 0-9 - _). Default: the JWK's `kid`,
        /// else the RFC 7638 thumbprint of the public key (a random one for HS256).
        #[arg(long)]
        kid: Option<String>,
        /// Sign with it at once instead of after `jwt.jwks_max_age`. Verifiers still holding
        /// the previous JWKS refuse its tokens until they fetch the JWKS again.
        #[arg(long)]
        activate_now: bool,
    },
}

/// The key file of `tessera keys import`, or standard input for `-`; at most
/// [`tessera_core::jwt::MAX_IMPORT_LEN`] bytes are read (the importer refuses more).
fn read_key_input(file: &str) -> anyhow::Result<zeroize::Zeroizing<Vec<u8>>> {
    use std::io::Read as _;
    let limit = u64::try_from(tessera_core::jwt::MAX_IMPORT_LEN + 1).unwrap_or(u64::MAX);
    let mut bytes = zeroize::Zeroizing::new(Vec::new());
    if file == "-" {
        std::io::stdin()
            .lock()
            .take(limit)
            .read_to_end(&mut bytes)
            .context("cannot read the key from standard input")?;
    } else {
        let f = std::fs::File::open(file).with_context(|| format!("cannot open the key file {file}"))?;
        f.take(limit).read_to_end(&mut bytes).with_context(|| format!("cannot read the key file {file}"))?;
    }
    Ok(bytes)
}

pub async fn keys(config: &Config, cmd: KeysCommand) -> anyhow::Result<()> {
    let (auth, store) = open_auth(config, Arc::new(SystemClock)).await?;
    let result = async {
        auth.tokens().context("signing keys exist only in the jwt and hybrid modes (auth.mode)")?;
        let fmt =
            |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        match cmd {
            KeysCommand::List => {
                for k in tessera_core::store::KeyStore::keys(store.store().as_ref()).await? {
                    let until = k.retires_at.map(fmt).unwrap_or_else(|| "-".into());
                    let sealed = if k.sealed { "sealed" } else { "unsealed" };
                    println!("{}\t{}\tsigns from {}\tuntil {}\t{}", k.kid, k.alg, fmt(k.activates_at), until, sealed);
                }
            }
            KeysCommand::Import { file, kid, activate_now } => {
                let input = read_key_input(&file)?;
                let imported = tessera_core::jwt::import_private_key(&input).context("the key is refused")?;
                let kid = imported.kid(kid.as_deref()).context("the key is refused")?;
                let key = auth.import_key(&imported, &kid, activate_now).await.context("the key is refused")?;
                let sealed = if key.sealed { "sealed" } else { "unsealed" };
                println!(
                    "imported {} ({}, {sealed}); published now, it signs from {}",
                    key.kid,
                    key.alg,
                    fmt(key.activates_at)
                );
                if !key.sealed {
                    eprintln!(
                        "warning: the key is stored unsealed because jwt.seal_key is not set (set TESSERA_JWT__SEAL_KEY \
                         to seal signing keys at rest)"
                    );
                }
            }
            KeysCommand::Rotate => {
                let key = auth.rotate_keys().await?;
                println!("published {} ({}); it signs from {}", key.kid, key.alg, fmt(key.activates_at));
            }
        }
        Ok(())
    }
    .await;
    store.close().await;
    result
}

pub async fn user(config: &Config, cmd: UserCommand) -> anyhow::Result<()> {
    let (auth, store) = open_auth(config, Arc::new(SystemClock)).await?;
    let result = async {
        match cmd {
            UserCommand::Add { username, password_stdin } => {
                if !password_stdin {
                    bail!("pass the password on standard input with --password-stdin");
                }
                let mut line = String::new();
                std::io::stdin().lock().read_line(&mut line).context("cannot read the password")?;
                let password = line.trim_end_matches(['\r', '\n']).to_owned();
                let account = auth.create_account(&username, password).await?;
                println!("{}\t{}", account.id, account.username);
            }
            UserCommand::List => {
                for a in auth.list_accounts().await? {
                    let state = if a.disabled { "disabled" } else { "active" };
                    let created = a.created_at.format(&time::format_description::well_known::Rfc3339)?;
                    println!("{}\t{}\t{}\t{}", a.id, a.username, state, created);
                }
            }
            UserCommand::Disable { username } => {
                let account = auth.account_by_username(&username).await.context("no such user")?;
                auth.disable_account(&account.id).await?;
                println!("disabled {}; its sessions are revoked", account.username);
            }
            UserCommand::Enable { username } => {
                let account = auth.account_by_username(&username).await.context("no such user")?;
                auth.enable_account(&account.id).await?;
                println!("enabled {}", account.username);
            }
        }
        Ok(())
    }
    .await;
    store.close().await;
    result
}

pub async fn sessions(config: &Config, cmd: SessionsCommand) -> anyhow::Result<()> {
    let (auth, store) = open_auth(config, Arc::new(SystemClock)).await?;
    let result = async {
        match cmd {
            SessionsCommand::Revoke { username, session } => {
                let account = auth.account_by_username(&username).await.context("no such user")?;
                match session {
                    Some(id) => {
                        let id = SessionId::parse(&id).context("not a session id")?;
                        auth.revoke_session(&account.id, &id).await.context("no such session")?;
                        println!("revoked session {id}");
                    }
                    None => {
                        let n = auth.revoke_all_sessions(&account.id, "cli").await?;
                        println!("revoked {n} session(s) of {}", account.username);
                    }
                }
            }
        }
        Ok(())
    }
    .await;
    store.close().await;
    result
}

/// `tessera audit`: the newest audit records first.
#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    #[command(subcommand)]
    action: Option<AuditAction>,
    /// Only events of this user (by username; also events recorded under the name typed at a
    /// failed login).
    #[arg(long)]
    user: Option<String>,
    /// Only events of this kind, e.g. login_failed.
    #[arg(long)]
    event: Option<String>,
    /// Only events since an RFC 3339 time (2026-11-29T10:00:00Z) or a duration ago (30m, 7d).
    #[arg(long)]
    since: Option<String>,
    /// At most this many records.
    #[arg(long, default_value_t = crate::audit::DEFAULT_LIMIT)]
    limit: i64,
    /// One JSON object per line instead of tab-separated columns.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
pub enum AuditAction {
    /// Delete the records whose last event is older than audit.retention now (a running
    /// server does this by itself), or than --before.
    Prune {
        /// An RFC 3339 time (2026-11-29T10:00:00Z) or a duration ago (30d) instead of
        /// audit.retention.
        #[arg(long)]
        before: Option<String>,
    },
}

pub async fn audit(config: &Config, args: AuditArgs) -> anyhow::Result<()> {
    use crate::audit::{Filters, parse_event, parse_limit, parse_since, parse_user, query, record_json};
    let (auth, store) = open_auth(config, Arc::new(SystemClock)).await?;
    if let Some(AuditAction::Prune { before }) = args.action {
        let result = async {
            let cutoff = match before {
                Some(b) => parse_since(&b, auth.now()).context("--before")?,
                None => auth
                    .now()
                    .checked_sub(config.audit.retention.as_time())
                    .context("audit.retention reaches before the start of time")?,
            };
            let deleted = store.prune_audit(cutoff).await?;
            let cutoff = cutoff.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
            println!("deleted {deleted} audit record(s) whose last event is before {cutoff}");
            Ok(())
        }
        .await;
        store.close().await;
        return result;
    }
    let result = async {
        let filters = Filters {
            user: args.user.as_deref().map(parse_user).transpose().context("--user")?,
            event: args.event.as_deref().map(parse_event).transpose().context("--event")?,
            since: args.since.as_deref().map(|s| parse_since(s, auth.now())).transpose().context("--since")?,
            cursor: None,
            limit: parse_limit(&args.limit.to_string()).context("--limit")?,
        };
        let (records, _) = query(&auth, &store, &filters).await?;
        let fmt =
            |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        for r in &records {
            if args.json {
                println!("{}", record_json(r));
            } else {
                let who = r.username.clone().or_else(|| r.user_id.map(|u| u.to_string())).unwrap_or_else(|| "-".into());
                let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
                // Folded repeats: `×N` and the time of the last one.
                let count = if r.count > 1 { format!("×{} until {}", r.count, fmt(r.last_at)) } else { "-".into() };
                println!("{}\t{}\t{}\t{}\t{}\t{}", fmt(r.at), r.kind, who, dash(&r.ip), dash(&r.detail), count);
            }
        }
        Ok(())
    }
    .await;
    store.close().await;
    result
}
