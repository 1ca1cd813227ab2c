//! The one mapping from errors to RFC 9457 `application/problem+json` answers. Clients get a
//! stable `type`, a title and a safe detail; store and internal messages go to the log only.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tessera_core::AuthError;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    slug: &'static str,
    title: &'static str,
    detail: String,
    challenge: Option<&'static str>,
    retry_after: Option<u64>,
}

/// RFC 6750 §3: a 401 names the scheme; one caused by a presented token says so.
const CHALLENGE: &str = "Bearer";
const CHALLENGE_INVALID_TOKEN: &str = "Bearer error=\"invalid_token\"";

impl ApiError {
    fn new(status: StatusCode, slug: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Self { status, slug, title, detail: detail.into(), challenge: None, retry_after: None }
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid-request", "Invalid request", detail)
    }

    /// No credential was presented.
    pub fn unauthenticated() -> Self {
        Self {
            challenge: Some(CHALLENGE),
            ..Self::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Authentication required",
                "no credential was presented",
            )
        }
    }

    /// A credential was presented and is malformed, expired or revoked.
    pub fn invalid_token() -> Self {
        Self {
            challenge: Some(CHALLENGE_INVALID_TOKEN),
            ..Self::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Authentication required",
                "the credential is invalid, expired or revoked",
            )
        }
    }

    /// The request carries a credential in a form that could be read two ways (a repeated
    /// cookie): refused as a presented, invalid credential.
    pub fn ambiguous_credential(detail: impl Into<String>) -> Self {
        Self { detail: detail.into(), ..Self::invalid_token() }
    }

    /// A cookie-authenticated unsafe request, or a login or sign-up, from another site.
    pub fn cross_site() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "Cross-site request refused",
            "this request comes from another site (Origin or Sec-Fetch-Site); only our own pages may send it",
        )
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            "send the body as application/json, charset utf-8 or none (application/x-www-form-urlencoded for the RFC 7009/7662 endpoints)",
        )
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method not allowed",
            "this path does not take that method",
        )
    }

    pub fn request_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "request-timeout",
            "Request timeout",
            "the request took too long to arrive",
        )
    }

    pub fn headers_too_large() -> Self {
        Self::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers-too-large",
            "Request headers too large",
            "the request headers exceed 16 KiB",
        )
    }

    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            "a backing store is unavailable; retry later",
        )
    }

    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error", "an internal error occurred")
    }

    /// Maps a rejected JSON body (axum's extractor) by its status: 413 too large, 415 wrong
    /// content type, 400 for syntax, shape and encoding errors.
    pub fn from_rejection(status: StatusCode, body_text: String) -> Self {
        match status {
            StatusCode::PAYLOAD_TOO_LARGE => {
                Self::new(status, "payload-too-large", "Payload too large", "the request body exceeds 64 KiB")
            }
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::unsupported_media_type(),
            _ => Self::bad_request(body_text),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Invalid(m) => Self::bad_request(m),
            AuthError::InvalidCredentials => Self {
                challenge: Some(CHALLENGE),
                ..Self::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid-credentials",
                    "Invalid credentials",
                    "invalid username or password",
                )
            },
            AuthError::Unauthenticated => Self::invalid_token(),
            AuthError::CsrfRejected => Self::new(
                StatusCode::FORBIDDEN,
                "csrf",
                "CSRF token missing or wrong",
                "send the session's CSRF token in the X-CSRF-Token header",
            ),
            AuthError::Throttled { retry_after } => Self {
                retry_after: Some(retry_after),
                ..Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "throttled",
                    "Too many failed attempts",
                    format!("too many failed attempts; retry after {retry_after} s"),
                )
            },
            AuthError::UsernameTaken => {
                Self::new(StatusCode::CONFLICT, "username-taken", "Username taken", "that username is taken")
            }
            AuthError::SignUpClosed => Self::new(
                StatusCode::FORBIDDEN,
                "signup-closed",
                "Sign-up closed",
                "this server does not accept sign-ups",
            ),
            AuthError::NotFound => Self::not_found("no such resource"),
            AuthError::Conflict(m) => Self::new(StatusCode::CONFLICT, "conflict", "Conflict", m),
            AuthError::Unavailable(m) => {
                tracing::warn!(error = %m, "answering 503");
                Self::unavailable()
            }
            AuthError::Internal(m) => {
                tracing::error!(error = %m, "answering 500");
                Self::internal()
            }
        }
    }
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Problem {
            kind: format!("urn:tessera:problem:{}", self.slug),
            title: self.title,
            status: self.status.as_u16(),
            detail: &self.detail,
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = (self.status, json).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(c) = self.challenge {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(c));
        }
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
