//! The one place where domain errors become OAuth wire errors (RFC 6749 §5.2). Wire errors are
//! deliberately vague: every client authentication failure is the same `invalid_client`, so a
//! caller cannot tell an unknown agent from a wrong secret. The precise reason goes to the audit
//! log, never into `error_description`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use signet_core::client_auth::ClientAuthError;
use signet_core::token::TokenError;

/// An OAuth error response.
#[derive(Debug, Clone)]
pub struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: &'static str,
    /// The `WWW-Authenticate` challenge to send, if any.
    challenge: Option<Challenge>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Challenge {
    /// RFC 6749 §5.2, RFC 9110 §15.5.2: with every 401 of client authentication.
    Basic,
    /// RFC 6750 §3.1: a refused bearer token (an admin token at introspection or revocation).
    Bearer,
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: &'static str) -> Self {
        Self {
            status,
            error,
            description,
            challenge: None,
        }
    }

    pub fn invalid_request(description: &'static str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    pub fn unsupported_grant_type() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only the client_credentials grant is supported",
        )
    }

    pub fn unauthorized_client(description: &'static str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unauthorized_client", description)
    }

    pub fn payload_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            "the request body is too large",
        )
    }

    pub fn request_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "invalid_request",
            "the request body took too long to arrive",
        )
    }

    pub fn temporarily_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "try again shortly",
        )
    }

    /// Client authentication failed: 401 with a Basic challenge, whatever the method the client
    /// used. RFC 6749 §5.2 requires it for callers that used the `Authorization` header, and
    /// RFC 9110 §15.5.2 for every 401; Basic is a scheme the endpoint takes.
    pub fn from_client_auth(error: ClientAuthError) -> Self {
        let mut wire = Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        );
        wire.challenge = Some(Challenge::Basic);
        if error == ClientAuthError::MultipleMethods {
            wire = Self::invalid_request("use exactly one client authentication method");
        }
        if error == ClientAuthError::DuplicateAuthorization {
            // Two headers could be read differently by a proxy and by Signet: neither is used.
            wire = Self::invalid_request("send at most one Authorization header");
        }
        wire
    }

    pub fn from_token(error: &TokenError) -> Self {
        match error {
            TokenError::ScopeNotAllowed(_) => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                "the requested scope is not allowed",
            ),
            TokenError::MalformedScope => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                "the scope parameter is malformed",
            ),
            TokenError::AudienceNotAllowed(_) => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_target",
                "the requested resource or audience is not allowed",
            ),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn description(&self) -> &'static str {
        self.description
    }

    /// The same refusal of a bearer token: its challenge is `Bearer` (RFC 6750 §3.1).
    pub fn with_bearer_challenge(mut self) -> Self {
        if self.status == StatusCode::UNAUTHORIZED {
            self.challenge = Some(Challenge::Bearer);
        }
        self
    }

    pub fn error_code(&self) -> &'static str {
        self.error
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.error, "error_description": self.description });
        let mut response = (self.status, no_store(), Json(body)).into_response();
        if let Some(challenge) = self.challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(match challenge {
                    Challenge::Basic => "Basic realm=\"signet\", charset=\"UTF-8\"",
                    Challenge::Bearer => "Bearer realm=\"signet\", error=\"invalid_token\"",
                }),
            );
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// 429 while the agent or the source address is locked after too many failed authentications:
/// `invalid_client` (the credentials are not looked at) with `Retry-After`.
pub fn locked(retry_after: i64) -> Response {
    let body = json!({
        "error": "invalid_client",
        "error_description": "too many failed authentication attempts; retry later",
    });
    let mut response = (StatusCode::TOO_MANY_REQUESTS, no_store(), Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&retry_after.max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1).
pub fn no_store() -> [(header::HeaderName, HeaderValue); 2] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
    ]
}
