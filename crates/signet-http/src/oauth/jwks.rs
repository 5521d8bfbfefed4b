//! `GET /oauth2/jwks`: the public keys resource servers verify access tokens with: the active
//! key first, then the next key (published before it signs), then retired keys whose tokens may
//! still be live.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use crate::state::AppState;

/// The JSON Web Key Set (RFC 7517 §5).
#[utoipa::path(get, path = "/oauth2/jwks", tag = "oauth", responses((status = 200, description = "JWK Set", body = Object)))]
pub async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    let keys: Vec<Value> = state
        .keys
        .published()
        .iter()
        .map(|k| k.public_jwk().clone())
        .collect();
    (
        [(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=60"),
        )],
        Json(json!({ "keys": keys })),
    )
}
