//! Signet's HTTP surface, the only crate that knows HTTP: the OAuth endpoints (token, JWKS,
//! introspection, revocation, metadata), the admin API with its OpenAPI document, and health.
//!
//! Handlers are thin: they extract input, call the domain (`signet-core`) and the store
//! (`signet-store`), and map the result. Domain errors become wire errors in exactly two places:
//! [`oauth::error`] (RFC 6749 §5.2, deliberately vague) and [`admin::problem`] (RFC 9457).

pub mod admin;
pub mod agent_ca;
pub mod alerts;
mod body;
pub mod cluster;
mod connections;
pub mod console;
pub mod fuzzing;
mod health;
pub mod jwks_uri;
pub mod keyring;
pub mod metrics;
pub mod oauth;
pub mod overload;
pub mod pki;
pub mod request;
pub mod request_id;
pub mod router;
pub mod self_service;
pub mod self_service_secret;
pub mod server;
pub mod state;
pub mod tls;

pub use keyring::KeyRing;
pub use pki::PkiState;
pub use server::{TlsListener, serve};
pub use state::AppState;
