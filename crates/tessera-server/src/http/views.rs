//! The JSON shapes of SPEC §2, built from domain values.

use axum::body::{Body, Bytes};
use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tessera_core::account::UserView;
use tessera_core::{Session, SessionId};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::problem::ApiError;
use super::state::AppState;

/// A JSON answer (what `axum::Json` does), serialised into a buffer sized for tessera's
/// answers up front: axum's starts at 128 bytes and grows by copying, three times for a
/// session's `/v1/me`.
pub fn json<T: Serialize>(value: &T) -> Response {
    json_answer(to_json(value))
}

/// `value` as JSON bytes.
pub fn to_json<T: Serialize>(value: &T) -> Result<Bytes, serde_json::Error> {
    let mut body = Vec::with_capacity(1024);
    serde_json::to_writer(&mut body, value)?;
    Ok(Bytes::from(body))
}

/// A 200 answer of JSON bytes already serialised, or a 500 problem when serialising failed.
pub fn json_answer(body: Result<Bytes, serde_json::Error>) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(e) => {
            tracing::error!(error = %e, "cannot serialise an answer");
            return ApiError::internal().into_response();
        }
    };
    let mut response = Response::new(Body::from(body));
    // Room for the edge's security headers too, so adding them does not regrow the map.
    let headers = response.headers_mut();
    headers.reserve(4);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// RFC 3339 timestamps, as `time::serde::rfc3339` writes them, formatted on the stack rather
/// than into a `String` each. tessera's timestamps are UTC: those are written digit by digit
/// (`time`'s general formatter costs a few times more, four times per `/v1/me`); anything else
/// goes through `time`.
pub mod rfc3339 {
    use serde::Serializer;
    use serde::ser::Error as _;
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;

    /// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`, the longest UTC form.
    const MAX_UTC: usize = 30;

    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 64];
        let written = if t.offset().is_utc() && (0..=9999).contains(&t.year()) {
            utc(t, &mut buf)
        } else {
            let mut out: &mut [u8] = &mut buf;
            t.format_into(&mut out, &Rfc3339).map_err(S::Error::custom)?;
            // The length is what the writer advanced, not what `format_into` returns: time
            // 0.3.55 leaves the fractional seconds out of its count.
            64 - out.len()
        };
        s.serialize_str(std::str::from_utf8(buf.get(..written).unwrap_or_default()).map_err(S::Error::custom)?)
    }

    /// Writes a UTC time of a four-digit year; returns the length.
    fn utc(t: &OffsetDateTime, buf: &mut [u8; 64]) -> usize {
        let (year, month, day) = t.to_calendar_date();
        let (hour, minute, second, nanos) = t.to_hms_nano();
        let digits = |out: &mut [u8], mut value: u32| {
            for b in out.iter_mut().rev() {
                *b = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        let out = &mut buf[..MAX_UTC];
        digits(&mut out[0..4], year.unsigned_abs());
        out[4] = b'-';
        digits(&mut out[5..7], u32::from(u8::from(month)));
        out[7] = b'-';
        digits(&mut out[8..10], u32::from(day));
        out[10] = b'T';
        digits(&mut out[11..13], u32::from(hour));
        out[13] = b':';
        digits(&mut out[14..16], u32::from(minute));
        out[16] = b':';
        digits(&mut out[17..19], u32::from(second));
        let mut len = 19;
        if nanos > 0 {
            // The fraction without its trailing zeros, as `time` writes it.
            out[19] = b'.';
            digits(&mut out[20..29], nanos);
            len = 29;
            while out[len - 1] == b'0' {
                len -= 1;
            }
        }
        out[len] = b'Z';
        len + 1
    }

    #[cfg(test)]
    mod tests {
        use proptest::prelude::*;
        use time::OffsetDateTime;

        #[derive(serde::Serialize)]
        struct Ours(#[serde(serialize_with = "super::serialize")] OffsetDateTime);

        #[derive(serde::Serialize)]
        struct Times(#[serde(with = "time::serde::rfc3339")] OffsetDateTime);

        proptest! {
            /// Byte for byte what `time::serde::rfc3339` writes, fractional seconds included.
            #[test]
            fn writes_what_time_writes(secs in -62_167_219_200i64..253_402_300_800, nanos in prop_oneof![Just(0u32), Just(700_000_000u32), Just(1u32), Just(999_999_999u32), 0u32..1_000_000_000]) {
                let t = OffsetDateTime::from_unix_timestamp(secs).unwrap().replace_nanosecond(nanos).unwrap();
                prop_assert_eq!(serde_json::to_string(&Ours(t)).unwrap(), serde_json::to_string(&Times(t)).unwrap());
            }

            /// Times with an offset take `time`'s own path, and say the same.
            #[test]
            fn offsets_go_through_time(secs in 0i64..253_402_000_000, nanos in 0u32..1_000_000_000, minutes in -1439i32..1440) {
                let offset = time::UtcOffset::from_whole_seconds(minutes * 60).unwrap();
                let t = OffsetDateTime::from_unix_timestamp(secs).unwrap().replace_nanosecond(nanos).unwrap().to_offset(offset);
                prop_assume!((0..=9999).contains(&t.year()));
                prop_assert_eq!(serde_json::to_string(&Ours(t)).unwrap(), serde_json::to_string(&Times(t)).unwrap());
            }
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SessionView<'a> {
    /// The session's public id (not its token).
    #[schema(value_type = String)]
    pub id: SessionId,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub created_at: OffsetDateTime,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub last_seen_at: OffsetDateTime,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub expires_at: OffsetDateTime,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub idle_expires_at: OffsetDateTime,
    /// The `User-Agent` of the login that opened it.
    pub user_agent: Option<&'a str>,
    /// The client address of the login that opened it.
    pub ip: Option<&'a str>,
    /// Whether this is the session of the request that lists it.
    pub current: bool,
}

impl<'a> SessionView<'a> {
    pub fn new(state: &AppState, s: &'a Session, current: impl Into<Option<&'a SessionId>>) -> Self {
        let current = current.into();
        Self {
            id: s.id,
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            expires_at: s.expires_at,
            idle_expires_at: state.auth.policy().session.idle_expires_at(s),
            user_agent: s.user_agent.as_deref(),
            ip: s.ip.as_deref(),
            current: current == Some(&s.id),
        }
    }
}

/// The `session` part of login's answer.
#[derive(Serialize, ToSchema)]
pub struct SessionSummary {
    #[schema(value_type = String)]
    pub id: SessionId,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub expires_at: OffsetDateTime,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub idle_expires_at: OffsetDateTime,
}

/// Login's answer (SPEC §2). Credentials appear only for the bearer transport; the cookie
/// transport puts them in cookies and gives the page only the CSRF token.
#[derive(Serialize, ToSchema)]
pub struct LoginAnswer {
    #[schema(value_type = super::openapi::User)]
    pub user: UserView,
    /// `cookie` or `bearer`: where this answer put the credentials. With `cookie` they are in
    /// `Set-Cookie` only, never in this body (send `Tessera-Transport: bearer` to get them here).
    #[schema(value_type = crate::config::Transport)]
    pub transport: &'static str,
    /// `null` only in the jwt mode without refresh, which keeps no server session.
    pub session: Option<SessionSummary>,
    /// jwt and hybrid modes, bearer transport: the JWT access token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// `Bearer`, with an access token.
    pub token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Seconds the access token lives.
    pub expires_in: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Bearer transport where refresh is on: the refresh token, for `/v1/refresh`.
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Session mode, bearer transport: the session token.
    pub session_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Cookie transport: the token unsafe requests send in `X-CSRF-Token`.
    pub csrf_token: Option<String>,
}
