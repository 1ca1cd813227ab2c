//! Reading the audit trail back: the filters `tessera audit` and `GET /v1/admin/audit` share,
//! their parsing (a bad filter is an error naming it), and one JSON shape for a record.

use serde_json::Value;
use tessera_core::audit::AuditKind;
use tessera_core::{Auth, AuthError, Username};
use tessera_store::{AuditQuery, AuditRecord};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::startup::Backend;

/// Records per page unless `limit` says otherwise, and the most one page may hold.
pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 1000;

/// A filter that cannot be followed: `name` is the filter as the caller wrote it.
#[derive(Debug, thiserror::Error)]
#[error("{name}: {message}")]
pub struct BadFilter {
    pub name: &'static str,
    pub message: String,
}

fn bad(name: &'static str, message: impl Into<String>) -> BadFilter {
    BadFilter { name, message: message.into() }
}

/// What to read, as given.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub user: Option<String>,
    pub event: Option<AuditKind>,
    pub since: Option<OffsetDateTime>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<i64>,
    pub limit: i64,
}

impl Filters {
    /// Parses `name=value` pairs (a query string). Unknown and repeated names are errors.
    pub fn from_pairs(pairs: &[(String, String)], now: OffsetDateTime) -> Result<Self, BadFilter> {
        let mut f = Filters { limit: DEFAULT_LIMIT, ..Filters::default() };
        let mut seen: Vec<&str> = Vec::new();
        for (name, value) in pairs {
            if seen.contains(&name.as_str()) {
                return Err(bad(static_name(name), "given more than once"));
            }
            seen.push(name);
            match name.as_str() {
                "user" => f.user = Some(parse_user(value)?),
                "event" => f.event = Some(parse_event(value)?),
                "since" => f.since = Some(parse_since(value, now)?),
                "cursor" => f.cursor = Some(parse_cursor(value)?),
                "limit" => f.limit = parse_limit(value)?,
                _ => {
                    return Err(bad(
                        "query",
                        format!("unknown filter {name:?}: use user, event, since, cursor, limit"),
                    ));
                }
            }
        }
        Ok(f)
    }
}

fn static_name(name: &str) -> &'static str {
    ["user", "event", "since", "cursor", "limit"].into_iter().find(|n| *n == name).unwrap_or("query")
}

pub fn parse_user(value: &str) -> Result<String, BadFilter> {
    Username::parse(value).map(|u| u.as_str().to_owned()).map_err(|e| bad("user", e.to_string()))
}

pub fn parse_event(value: &str) -> Result<AuditKind, BadFilter> {
    AuditKind::parse(value).ok_or_else(|| {
        let known: Vec<&str> = AuditKind::ALL.iter().map(|k| k.as_str()).collect();
        bad("event", format!("unknown event {value:?}; one of {}", known.join(", ")))
    })
}

/// An RFC 3339 time (`2026-11-29T10:00:00Z`) or a duration before `now` (`30m`, `7d`).
pub fn parse_since(value: &str, now: OffsetDateTime) -> Result<OffsetDateTime, BadFilter> {
    if let Ok(t) = OffsetDateTime::parse(value, &Rfc3339) {
        return Ok(t);
    }
    crate::duration::Duration::parse(value)
        .and_then(|d| now.checked_sub(d.as_time()))
        .ok_or_else(|| bad("since", "an RFC 3339 time (2026-11-29T10:00:00Z) or a duration ago (30m, 7d)"))
}

pub fn parse_cursor(value: &str) -> Result<i64, BadFilter> {
    value.parse::<i64>().ok().filter(|c| *c > 0).ok_or_else(|| bad("cursor", "the next_cursor of a previous page"))
}

pub fn parse_limit(value: &str) -> Result<i64, BadFilter> {
    value
        .parse::<i64>()
        .ok()
        .filter(|l| (1..=MAX_LIMIT).contains(l))
        .ok_or_else(|| bad("limit", format!("a number from 1 to {MAX_LIMIT}")))
}

/// One page of records, newest first, and the cursor of the next page (`None`: no more).
pub async fn query(auth: &Auth, backend: &Backend, f: &Filters) -> Result<(Vec<AuditRecord>, Option<i64>), AuthError> {
    let user_id = match &f.user {
        Some(name) => match auth.account_by_username(name).await {
            Ok(account) => Some(account.id),
            Err(AuthError::NotFound) => None,
            Err(e) => return Err(e),
        },
        None => None,
    };
    let q = AuditQuery {
        username: f.user.clone(),
        user_id,
        kind: f.event.map(|k| k.as_str().to_owned()),
        since: f.since,
        before_seq: f.cursor,
        // One more than asked, to know whether a next page exists.
        limit: f.limit + 1,
    };
    let mut records = backend.query_audit(&q).await?;
    let next = if records.len() as i64 > f.limit {
        records.truncate(f.limit as usize);
        records.last().map(|r| r.seq)
    } else {
        None
    };
    Ok((records, next))
}

/// A record as the API and `tessera audit --json` show it; absent values are `null`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Increases with every stored record.
    pub seq: i64,
    /// When the (first) event happened. RFC 3339.
    pub at: String,
    /// When the last of `count` events happened (`at` when `count` is 1). RFC 3339.
    pub last_at: String,
    /// How many identical events this record stands for: repeats of a failed or throttled
    /// login, a revocation or a refused admin key (same user or username, IP and detail)
    /// within one minute are counted in one record. Always 1 for other events.
    #[schema(minimum = 1)]
    pub count: i64,
    /// The kind of event, e.g. `login_failed`.
    pub event: String,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub username: Option<String>,
    pub ip: Option<String>,
    pub detail: Option<String>,
}

impl From<&AuditRecord> for AuditEntry {
    fn from(r: &AuditRecord) -> Self {
        Self {
            seq: r.seq,
            at: r.at.format(&Rfc3339).unwrap_or_default(),
            last_at: r.last_at.format(&Rfc3339).unwrap_or_default(),
            count: r.count,
            event: r.kind.clone(),
            user_id: r.user_id.map(|u| u.to_string()),
            session_id: r.session_id.map(|s| s.to_string()),
            username: r.username.clone(),
            ip: r.ip.clone(),
            detail: r.detail.clone(),
        }
    }
}

/// One page of `GET /v1/admin/audit`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    /// Newest first (by `seq`: a record that counts repeats stays where its first event is).
    pub events: Vec<AuditEntry>,
    /// The `cursor` of the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// A record as one line of JSON.
pub fn record_json(r: &AuditRecord) -> Value {
    serde_json::to_value(AuditEntry::from(r)).unwrap_or(Value::Null)
}
