//! Load shedding: past `SIGNET_MAX_CONCURRENT_REQUESTS` requests in flight, a new request is
//! answered at once with 503 and `Retry-After` instead of joining a queue without bound, so the
//! admitted requests keep their latency. Liveness, readiness and metrics are always answered:
//! monitoring must see an overloaded node.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::admin::problem::Problem;
use crate::oauth::error::OAuthError;
use crate::state::AppState;

/// Requests in flight against the configured limit.
#[derive(Debug)]
pub struct Admission {
    limit: usize,
    in_flight: AtomicUsize,
    shed: AtomicU64,
}

/// Holds one place until the request is answered (or abandoned).
struct Admitted<'a>(&'a AtomicUsize);

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Admission {
    /// `limit` 0 admits everything.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            in_flight: AtomicUsize::new(0),
            shed: AtomicU64::new(0),
        }
    }

    fn enter(&self) -> Option<Admitted<'_>> {
        let before = self.in_flight.fetch_add(1, Ordering::Relaxed);
        let admitted = Admitted(&self.in_flight);
        if self.limit > 0 && before >= self.limit {
            self.shed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(admitted)
    }

    /// Requests being served now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Requests refused with 503 since the start.
    pub fn shed(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }
}

/// The middleware.
pub async fn admit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if matches!(path, "/healthz" | "/readyz" | "/metrics") {
        return next.run(request).await;
    }
    let Some(_admitted) = state.admission.enter() else {
        return if path.starts_with("/oauth2/") {
            OAuthError::temporarily_unavailable().into_response()
        } else {
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is busy; retry shortly",
            )
            .into_response()
        };
    };
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_limited_and_given_back() {
        let admission = Admission::new(2);
        let a = admission.enter().expect("first");
        let b = admission.enter().expect("second");
        assert!(admission.enter().is_none());
        assert_eq!((admission.in_flight(), admission.shed()), (2, 1));
        drop(a);
        let c = admission.enter().expect("a place was freed");
        drop((b, c));
        assert_eq!(admission.in_flight(), 0);
        let unlimited = Admission::new(0);
        let held: Vec<_> = (0..1000).filter_map(|_| unlimited.enter()).collect();
        assert_eq!(held.len(), 1000);
    }
}
