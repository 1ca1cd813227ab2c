//! This service's copy of tessera's live denylist, as the revocation feed describes it: whole
//! sessions (`sid`), single tokens (`jti`) and every token of a user issued before an instant
//! (`sub` + `iat_before`: password change, disable, log out everywhere). Each entry matters
//! until `until` — the latest `exp` a token it covers can have — and is dropped after it.

use std::collections::HashMap;

use serde::Deserialize;
use tessera_jwt::AccessClaims;

/// One entry of the feed (`reset` lists them, `revoke` carries one).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Entry {
    Sid { value: String, until: i64 },
    Jti { value: String, until: i64 },
    Sub { value: String, iat_before: i64, until: i64 },
}

#[derive(Debug, Default)]
pub struct Denylist {
    sids: HashMap<String, i64>,
    jtis: HashMap<String, i64>,
    /// user id → (iat_before, until); a later entry for the same user widens both.
    subs: HashMap<String, (i64, i64)>,
}

impl Denylist {
    pub fn from_entries(entries: impl IntoIterator<Item = Entry>) -> Self {
        let mut list = Denylist::default();
        for entry in entries {
            list.add(entry);
        }
        list
    }

    pub fn add(&mut self, entry: Entry) {
        match entry {
            Entry::Sid { value, until } => {
                let u = self.sids.entry(value).or_insert(until);
                *u = (*u).max(until);
            }
            Entry::Jti { value, until } => {
                let u = self.jtis.entry(value).or_insert(until);
                *u = (*u).max(until);
            }
            Entry::Sub { value, iat_before, until } => {
                let e = self.subs.entry(value).or_insert((iat_before, until));
                *e = (e.0.max(iat_before), e.1.max(until));
            }
        }
    }

    /// Whether the token these claims belong to was revoked. An entry past its `until` can
    /// cover no token that has not expired, so it is not consulted.
    pub fn revokes(&self, claims: &AccessClaims, now: i64) -> bool {
        let live = |until: &i64| *until >= now;
        if let Some(sid) = &claims.sid
            && self.sids.get(sid.to_string().as_str()).is_some_and(live)
        {
            return true;
        }
        if self.jtis.get(claims.jti.to_string().as_str()).is_some_and(live) {
            return true;
        }
        self.subs
            .get(claims.sub.to_string().as_str())
            .is_some_and(|(iat_before, until)| live(until) && claims.iat < *iat_before)
    }

    /// Drops the entries past their `until`.
    pub fn prune(&mut self, now: i64) {
        self.sids.retain(|_, until| *until >= now);
        self.jtis.retain(|_, until| *until >= now);
        self.subs.retain(|_, (_, until)| *until >= now);
    }

    pub fn len(&self) -> usize {
        self.sids.len() + self.jtis.len() + self.subs.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use tessera_jwt::id::{SessionId, TokenId, UserId};

    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn claims() -> AccessClaims {
        AccessClaims {
            iss: "http://t".into(),
            sub: UserId::generate(),
            aud: "tessera".into(),
            exp: NOW + 300,
            iat: NOW - 10,
            jti: TokenId::generate(),
            sid: Some(SessionId::generate()),
        }
    }

    fn entries(json: &str) -> Vec<Entry> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn each_kind_of_entry_revokes_what_it_names() {
        let c = claims();
        let sid = c.sid.unwrap().to_string();
        let (jti, sub) = (c.jti.to_string(), c.sub.to_string());
        let until = NOW + 300;
        for json in [
            format!(r#"[{{"kind":"sid","value":"{sid}","until":{until}}}]"#),
            format!(r#"[{{"kind":"jti","value":"{jti}","until":{until}}}]"#),
            format!(r#"[{{"kind":"sub","value":"{sub}","iat_before":{},"until":{until}}}]"#, NOW - 9),
        ] {
            let list = Denylist::from_entries(entries(&json));
            assert!(list.revokes(&c, NOW), "{json}");
            assert!(!list.revokes(&claims(), NOW), "{json}");
        }
    }

    #[test]
    fn a_user_entry_spares_tokens_issued_at_or_after_its_instant() {
        let c = claims();
        let json = format!(r#"[{{"kind":"sub","value":"{}","iat_before":{},"until":{}}}]"#, c.sub, c.iat, NOW + 300);
        assert!(!Denylist::from_entries(entries(&json)).revokes(&c, NOW));
    }

    #[test]
    fn entries_stop_mattering_after_until() {
        let c = claims();
        let json = format!(r#"[{{"kind":"sid","value":"{}","until":{NOW}}}]"#, c.sid.unwrap());
        let mut list = Denylist::from_entries(entries(&json));
        assert!(list.revokes(&c, NOW));
        assert!(!list.revokes(&c, NOW + 1));
        list.prune(NOW + 1);
        assert!(list.is_empty());
    }

    #[test]
    fn unknown_kinds_and_missing_members_are_refused() {
        for bad in [
            r#"{"kind":"aud","value":"x","until":1}"#,
            r#"{"kind":"sid","value":"x"}"#,
            r#"{"kind":"sub","value":"x","until":1}"#,
        ] {
            assert!(serde_json::from_str::<Entry>(bad).is_err(), "{bad}");
        }
    }
}
