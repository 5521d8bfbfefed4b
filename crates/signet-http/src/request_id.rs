//! Request ids: every request gets one (or keeps the `X-Request-Id` a trusted proxy sent). It is
//! echoed in the `X-Request-Id` response header, attached to every log line written while the
//! request is served, and stored with every audit record the request causes, so one id leads
//! from a client's error report to the server's log and the audit log.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use signet_store::REQUEST_ID;
use tracing::Instrument;

use crate::request::from_trusted_proxy;
use crate::state::AppState;

pub const X_REQUEST_ID: &str = "x-request-id";

/// A new id: this process's random prefix and a counter, so ids are unique across nodes and
/// restarts, cheap to make, and in order within a process.
pub fn generate() -> String {
    static PREFIX: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| {
        let bytes: [u8; 5] = signet_core::crypto::random_bytes();
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    });
    format!("{prefix}-{:010x}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A proxy's id, if it is short and plain enough to put in logs and records as is.
fn acceptable(value: &HeaderValue) -> Option<&str> {
    let text = value.to_str().ok()?;
    let plain = (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    plain.then_some(text)
}

/// The middleware: assigns the id, serves the request inside it, and returns it in the header.
pub async fn assign(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let forwarded = from_trusted_proxy(request.extensions(), &state)
        .then(|| request.headers().get(X_REQUEST_ID).and_then(acceptable))
        .flatten()
        .map(Arc::<str>::from);
    let id = forwarded.unwrap_or_else(|| generate().into());
    let span = tracing::info_span!("request", request_id = %id);
    let access = state.config.access_log.then(|| {
        (
            request.method().clone(),
            request.uri().path().to_string(),
            std::time::Instant::now(),
        )
    });
    let mut response = REQUEST_ID
        .scope(id.clone(), next.run(request))
        .instrument(span.clone())
        .await;
    if let Some((method, path, started)) = access {
        span.in_scope(|| {
            tracing::info!(
                %method,
                path,
                status = response.status().as_u16(),
                duration_ms = started.elapsed().as_secs_f64() * 1000.0,
                "request"
            )
        });
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(X_REQUEST_ID, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_proxy_ids_are_checked() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert_eq!(a.len(), 21);
        assert!(acceptable(&HeaderValue::from_static("lb-1234.abc:9")).is_some());
        assert!(acceptable(&HeaderValue::from_static("has space")).is_none());
        assert!(acceptable(&HeaderValue::from_static("")).is_none());
        let long = "x".repeat(65);
        assert!(acceptable(&HeaderValue::from_str(&long).expect("value")).is_none());
    }
}
