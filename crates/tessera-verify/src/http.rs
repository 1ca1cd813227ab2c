//! The HTTP side: the `Verified` axum extractor, the [`VerifyLayer`] tower layer, and the
//! problem+json answers (RFC 9457) a refused request gets — 401 with a `WWW-Authenticate:
//! Bearer` challenge (RFC 6750 §3), or 503 with `Retry-After` while tokens cannot be checked.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tower::{Layer, Service};

use crate::verifier::{Refusal, Verified, Verifier};

/// The bearer token of a request: exactly one `Authorization` header, scheme `Bearer`
/// (case-insensitive, RFC 7235 §2.1), one token. Cookies and query strings are never read.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, Refusal> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else { return Err(Refusal::Missing) };
    if values.next().is_some() {
        return Err(Refusal::Repeated);
    }
    let value = value.to_str().map_err(|_| Refusal::Malformed("the Authorization header is not ASCII"))?;
    let (scheme, token) = value.split_once(' ').ok_or(Refusal::Malformed("not a bearer token"))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Refusal::Malformed("not a bearer token"));
    }
    let token = token.trim_matches(' ');
    if token.is_empty() || token.contains(' ') {
        return Err(Refusal::Malformed("not a bearer token"));
    }
    Ok(token)
}

impl Verifier {
    /// Checks the bearer token of a request.
    pub async fn verify_headers(&self, headers: &HeaderMap) -> Result<Verified, Refusal> {
        let token = bearer_token(headers)?;
        self.verify(token).await
    }
}

/// `Verified` as an axum extractor: the handler runs only for a valid, unrevoked token. Needs
/// the [`Verifier`] in the router state (`Verifier: FromRef<S>`); behind a [`VerifyLayer`] it
/// reuses the layer's answer instead of checking again.
impl<S> FromRequestParts<S> for Verified
where
    Verifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(verified) = parts.extensions.get::<Verified>() {
            return Ok(verified.clone());
        }
        let verified = Verifier::from_ref(state).verify_headers(&parts.headers).await?;
        parts.extensions.insert(verified.clone());
        Ok(verified)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, slug, title, detail, challenge) = match &self {
            Refusal::Missing => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Authentication required",
                "no credential was presented",
                "Bearer",
            ),
            Refusal::Repeated => (
                StatusCode::BAD_REQUEST,
                "invalid-request",
                "Invalid request",
                "send at most one Authorization header",
                "",
            ),
            Refusal::Malformed(_) | Refusal::Invalid(_) | Refusal::Revoked => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Authentication required",
                // One answer for every refusal: the client learns nothing of which check failed.
                "the credential is invalid, expired or revoked",
                "Bearer error=\"invalid_token\"",
            ),
            Refusal::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
                "credentials cannot be checked right now; retry shortly",
                "",
            ),
        };
        if status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(reason = %self, "tessera-verify: request refused with 503");
        } else {
            tracing::debug!(reason = %self, "tessera-verify: request refused");
        }
        let body = json!({
            "type": format!("urn:tessera:problem:{slug}"),
            "title": title,
            "status": status.as_u16(),
            "detail": detail,
        });
        let mut response = (status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if !challenge.is_empty() {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// A tower layer that lets through only requests with a valid, unrevoked bearer token, and
/// puts the [`Verified`] in the request's extensions (where the extractor finds it).
#[derive(Clone, Debug)]
pub struct VerifyLayer {
    verifier: Verifier,
}

impl VerifyLayer {
    pub fn new(verifier: Verifier) -> Self {
        VerifyLayer { verifier }
    }
}

impl<S> Layer<S> for VerifyLayer {
    type Service = VerifyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        VerifyService { verifier: self.verifier.clone(), inner }
    }
}

#[derive(Clone, Debug)]
pub struct VerifyService<S> {
    verifier: Verifier,
    inner: S,
}

impl<S> Service<Request<Body>> for VerifyService<S>
where
    S: Service<Request<Body>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        // The clone that was polled ready is the one that serves (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = self.verifier.clone();
        Box::pin(async move {
            match verifier.verify_headers(request.headers()).await {
                Ok(verified) => {
                    request.extensions_mut().insert(verified);
                    inner.call(request).await
                }
                Err(refusal) => Ok(refusal.into_response()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn only_one_bearer_token_is_read() {
        assert_eq!(bearer_token(&headers(&["Bearer abc"])).unwrap(), "abc");
        assert_eq!(bearer_token(&headers(&["bearer  abc "])).unwrap(), "abc");
        assert!(matches!(bearer_token(&headers(&[])), Err(Refusal::Missing)));
        // Two headers, even equal ones: the request could be read two ways (400, as tessera).
        assert!(matches!(bearer_token(&headers(&["Bearer a", "Bearer a"])), Err(Refusal::Repeated)));
        for bad in [&["Basic YTpi"][..], &["Bearer"], &["Bearer "], &["Bearer a b"], &["abc"]] {
            assert!(matches!(bearer_token(&headers(bad)), Err(Refusal::Malformed(_))), "{bad:?}");
        }
    }

    #[test]
    fn refusals_are_problem_json_with_the_right_status() {
        for (refusal, status) in [
            (Refusal::Missing, 401),
            (Refusal::Revoked, 401),
            (Refusal::Invalid(tessera_jwt::JwtError::Expired), 401),
            (Refusal::Unavailable("stale"), 503),
            (Refusal::Repeated, 400),
        ] {
            let response = refusal.into_response();
            assert_eq!(response.status().as_u16(), status);
            assert_eq!(response.headers()[CONTENT_TYPE], "application/problem+json");
            assert_eq!(response.headers().contains_key(WWW_AUTHENTICATE), status == 401, "{status}");
            assert_eq!(response.headers().contains_key(RETRY_AFTER), status == 503, "{status}");
        }
    }
}
