//! Extractors: credentials, client identity, JSON bodies. Handlers never read an
//! `Authorization` header or a cookie themselves.

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, USER_AGENT};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap, HeaderName, Method, StatusCode};
use serde::de::DeserializeOwned;
use tessera_core::{AuthError, Authenticated, ClientInfo, SessionToken};

pub use super::forwarded::{TrustedProxies, client_ip};
use super::problem::ApiError;
use super::state::AppState;
use super::{MAX_BODY_BYTES, content_type, cookies};
use crate::config::Transport;

pub static CSRF_HEADER: HeaderName = HeaderName::from_static("x-csrf-token");
pub static TRANSPORT_HEADER: HeaderName = HeaderName::from_static("tessera-transport");

/// An authenticated caller, and how the credential arrived.
pub struct Caller {
    pub auth: Authenticated,
    pub transport: Transport,
}

/// What the credential check looks at. Forward auth checks the request a proxy is asking
/// about, so the method is an input rather than read from the request being answered.
#[derive(Clone, Copy)]
pub struct CredentialRequest<'a> {
    /// The method the credential is used with: an unsafe one needs the CSRF proof.
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
    /// The socket peer, which decides whether forwarding headers are believed.
    pub peer: Option<IpAddr>,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let request = CredentialRequest { method: &parts.method, headers: &parts.headers, peer: peer_ip(parts) };
        authenticate(state, &request).await
    }
}

/// The one credential check of every authenticated endpoint (and of forward auth).
///
/// One credential per request: the transport the client names in `Tessera-Transport` (or the
/// configured default) decides what is read, and the other transport's credential is ignored
/// — never a fallback. A fallback would let whichever credential an attacker can add (a
/// planted cookie, an injected header) stand in for the one the client meant to use.
pub async fn authenticate(state: &AppState, request: &CredentialRequest<'_>) -> Result<Caller, ApiError> {
    let authorization = authorization(request.headers)?;
    let transport = requested_transport(request.headers, &state.transports)?;
    match transport {
        Transport::Bearer => {
            let raw = authorization.filter(|v| is_bearer(v)).ok_or_else(ApiError::unauthenticated)?;
            let raw = bearer_token(raw).ok_or_else(ApiError::invalid_token)?;
            Ok(Caller { auth: check(state, raw).await?, transport })
        }
        Transport::Cookie => {
            let ours = state.cookies.read(request.headers).map_err(ApiError::from)?;
            let raw = if state.auth.tokens().is_some() { ours.access } else { ours.session };
            let raw = raw.ok_or_else(ApiError::unauthenticated)?;
            let unsafe_method = !request.method.is_safe();
            if unsafe_method {
                refuse_cross_site(state, request.headers, request.peer)?;
            }
            let auth = check(state, raw).await?;
            // Browsers attach cookies to cross-site requests; only our own page can read the
            // CSRF token and echo it. Bearer tokens are never sent automatically.
            if unsafe_method && !csrf_header_ok(request.headers, |v| state.auth.csrf_matches(&auth, v)) {
                return Err(AuthError::CsrfRejected.into());
            }
            Ok(Caller { auth, transport })
        }
    }
}

/// 403 for a request another site's page made (see [`super::origin`]).
pub fn refuse_cross_site(state: &AppState, headers: &HeaderMap, peer: Option<IpAddr>) -> Result<(), ApiError> {
    if state.origins.is_cross_site(headers, peer, &state.proxies) { Err(ApiError::cross_site()) } else { Ok(()) }
}

/// Proof that a request does not come from another site's page; login and sign-up demand it,
/// whatever the transport: another site must not log a browser into an account of its choice.
pub struct NotCrossSite;

impl FromRequestParts<AppState> for NotCrossSite {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        refuse_cross_site(state, &parts.headers, peer_ip(parts)).map(|()| NotCrossSite)
    }
}

/// Whether the raw credential is valid now, in the mode's terms.
async fn check(state: &AppState, raw: &str) -> Result<Authenticated, ApiError> {
    if state.auth.tokens().is_some() {
        Ok(state.auth.authenticate_access(raw).await?)
    } else {
        let token = SessionToken::parse(raw).ok_or_else(ApiError::invalid_token)?;
        Ok(state.auth.authenticate(&token).await?)
    }
}

/// Whether `X-CSRF-Token` is present exactly once and accepted by `check`.
pub fn csrf_header_ok(headers: &HeaderMap, check: impl FnOnce(&str) -> bool) -> bool {
    let mut values = headers.get_all(&CSRF_HEADER).iter();
    match (values.next(), values.next()) {
        (Some(v), None) => v.to_str().is_ok_and(check),
        _ => false,
    }
}

/// The socket peer's address, as an extractor.
pub struct Peer(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(peer_ip(parts)))
    }
}

/// The socket peer's address, when the connection recorded one.
pub fn peer_ip(parts: &Parts) -> Option<IpAddr> {
    peer_from(&parts.extensions)
}

/// [`peer_ip`] for a whole request, from its extensions.
pub fn peer_from(extensions: &Extensions) -> Option<IpAddr> {
    extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

/// The `Authorization` header, if there is exactly one. Two are refused: servers and proxies
/// disagree on which one counts, and a check that reads one while a proxy logs or forwards the
/// other is how credentials get confused (SPEC: a 400).
pub fn authorization(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(ApiError::bad_request("send at most one Authorization header"));
    }
    // A value that is not visible ASCII is no token of ours; treat it as a malformed one.
    Ok(first.map(|v| v.to_str().unwrap_or("")))
}

fn is_bearer(value: &str) -> bool {
    value.get(..6).is_some_and(|s| s.eq_ignore_ascii_case("bearer"))
}

/// `Bearer <token>`, the scheme matched case-insensitively (RFC 7235 §2.1).
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// Why a `Tessera-Transport` header cannot be followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportError {
    /// Not `cookie` or `bearer`, or given more than once.
    Malformed,
    /// A transport this server does not enable.
    Disabled(Transport),
}

/// The transport a request names in `Tessera-Transport`, or the configured default (the
/// first of `enabled`).
pub fn requested_transport(headers: &HeaderMap, enabled: &[Transport]) -> Result<Transport, TransportError> {
    let mut values = headers.get_all(&TRANSPORT_HEADER).iter();
    let (value, None) = (values.next(), values.next()) else { return Err(TransportError::Malformed) };
    let Some(value) = value else { return enabled.first().copied().ok_or(TransportError::Malformed) };
    let wanted = match value.to_str().map(str::trim) {
        Ok(v) if v.eq_ignore_ascii_case("cookie") => Transport::Cookie,
        Ok(v) if v.eq_ignore_ascii_case("bearer") => Transport::Bearer,
        _ => return Err(TransportError::Malformed),
    };
    if enabled.contains(&wanted) { Ok(wanted) } else { Err(TransportError::Disabled(wanted)) }
}

impl From<TransportError> for ApiError {
    fn from(e: TransportError) -> Self {
        match e {
            TransportError::Malformed => {
                ApiError::bad_request("Tessera-Transport must be \"cookie\" or \"bearer\", once")
            }
            TransportError::Disabled(t) => {
                ApiError::bad_request(format!("transport {:?} is not enabled on this server", t.as_str()))
            }
        }
    }
}

impl From<cookies::AmbiguousCookie> for ApiError {
    fn from(e: cookies::AmbiguousCookie) -> Self {
        ApiError::ambiguous_credential(format!("the cookie {} was sent more than once", e.0))
    }
}

/// Who is calling: the client IP (see [`client_ip`]) and User-Agent.
pub struct Client(pub ClientInfo);

impl FromRequestParts<AppState> for Client {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ip = peer_ip(parts).map(|p| client_ip(p, &parts.headers, &state.proxies));
        let user_agent = parts.headers.get(USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned);
        Ok(Client(ClientInfo { ip, user_agent }))
    }
}

/// The transport a client asks for with `Tessera-Transport`, or the configured default.
pub struct Requested(pub Transport);

impl FromRequestParts<AppState> for Requested {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(Requested(requested_transport(&parts.headers, &state.transports)?))
    }
}

/// The whole request body, refused with 413 beyond [`MAX_BODY_BYTES`]. (In place of axum's
/// `DefaultBodyLimit` layer, which would cost every request, body or not, an extension.)
pub async fn body_bytes(req: Request) -> Result<Bytes, ApiError> {
    use http_body_util::BodyExt as _;
    match http_body_util::Limited::new(req.into_body(), MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            Err(ApiError::from_rejection(StatusCode::PAYLOAD_TOO_LARGE, String::new()))
        }
        Err(e) => Err(ApiError::bad_request(format!("Failed to buffer the request body: {e}"))),
    }
}

/// `axum::Json` for a JSON object in UTF-8, with every rejection turned into a problem+json
/// answer.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, ApiError> {
        if !content_type::is(req.headers(), content_type::JSON) {
            return Err(ApiError::unsupported_media_type());
        }
        let body = body_bytes(req).await?;
        // RFC 8259 §8.1: JSON text is UTF-8. serde_json checks the strings it keeps but skips
        // unknown members unchecked, so without this a body that is not UTF-8 got through.
        if std::str::from_utf8(&body).is_err() {
            return Err(ApiError::bad_request("the body is not UTF-8"));
        }
        // Every body is an object. serde's derived structs also take an array of the field
        // values in order (`["alice","secret"]`), a second spelling the API does not document.
        if body.trim_ascii_start().first() != Some(&b'{') {
            return Err(ApiError::bad_request("the body must be a JSON object"));
        }
        axum::Json::<T>::from_bytes(&body)
            .map(|axum::Json(v)| ApiJson(v))
            .map_err(|r| ApiError::from_rejection(r.status(), r.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use proptest::prelude::*;

    fn headers(pairs: &[(&'static str, Vec<u8>)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            if let Ok(v) = HeaderValue::from_bytes(v) {
                h.append(*k, v);
            }
        }
        h
    }

    #[test]
    fn the_transport_is_the_header_or_the_first_enabled_one() {
        let both = [Transport::Cookie, Transport::Bearer];
        assert_eq!(requested_transport(&HeaderMap::new(), &both), Ok(Transport::Cookie));
        let h = headers(&[("tessera-transport", b" Bearer ".to_vec())]);
        assert_eq!(requested_transport(&h, &both), Ok(Transport::Bearer));
        assert_eq!(requested_transport(&h, &[Transport::Cookie]), Err(TransportError::Disabled(Transport::Bearer)));
        let twice = headers(&[("tessera-transport", b"bearer".to_vec()), ("tessera-transport", b"bearer".to_vec())]);
        assert_eq!(requested_transport(&twice, &both), Err(TransportError::Malformed));
    }

    #[test]
    fn one_authorization_header_is_read_and_two_are_refused() {
        assert_eq!(authorization(&HeaderMap::new()).unwrap(), None);
        let one = headers(&[("authorization", b"Bearer abc".to_vec())]);
        assert_eq!(authorization(&one).unwrap(), Some("Bearer abc"));
        let two = headers(&[("authorization", b"Bearer abc".to_vec()), ("authorization", b"Bearer abc".to_vec())]);
        assert!(authorization(&two).is_err());
    }

    proptest! {
        #[test]
        fn credential_header_parsers_never_panic(
            auth in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 0..3),
            transport in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..12), 0..3),
            csrf in proptest::collection::vec(any::<u8>(), 0..50),
        ) {
            let mut pairs: Vec<(&'static str, Vec<u8>)> = auth.into_iter().map(|a| ("authorization", a)).collect();
            pairs.extend(transport.into_iter().map(|t| ("tessera-transport", t)));
            pairs.push(("x-csrf-token", csrf));
            let h = headers(&pairs);
            if let Ok(Some(value)) = authorization(&h) {
                let _ = is_bearer(value);
                if let Some(token) = bearer_token(value) {
                    prop_assert!(!token.is_empty() && value.len() > token.len());
                }
            }
            let _ = requested_transport(&h, &[Transport::Cookie, Transport::Bearer]);
            let _ = csrf_header_ok(&h, |v| !v.is_empty());
        }
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_needs_a_token() {
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Basic abc"), None);
    }
}
