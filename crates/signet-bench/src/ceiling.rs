//! The ceiling: a minimal axum handler that signs a fixed set of ES256 claims with a cached
//! key and returns it, with no authentication, storage or audit. Every Signet figure is also
//! reported as a ratio to this one, measured on the same machine.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::post;
use clap::Args;
use serde_json::{Value, json};
use signet_core::token::{SigningAlgorithm, SigningKey};

#[derive(Debug, Args)]
pub struct CeilingArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8099")]
    pub listen: String,
}

struct Ceiling {
    key: SigningKey,
    claims: Vec<u8>,
}

pub async fn run(args: CeilingArgs) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("signet-bench ceiling: listening on http://{addr}");
    axum::serve(listener, app())
        .await
        .map_err(|e| e.to_string())
}

/// The ceiling handler's router (also used by the load generator's own tests).
pub fn app() -> Router {
    let (key, _) = SigningKey::generate(SigningAlgorithm::Es256)
        .unwrap_or_else(|e| panic!("ES256 key generation failed: {e}"));
    let claims = json!({
        "iss": "http://127.0.0.1", "sub": "agt_ceiling", "client_id": "agt_ceiling", "aud": "https://api.example",
        "iat": 1_800_000_000, "exp": 1_800_000_600, "jti": "fixed", "scope": "bench",
    });
    let state = Arc::new(Ceiling {
        key,
        claims: claims.to_string().into_bytes(),
    });
    Router::new()
        .route("/oauth2/token", post(token))
        .with_state(state)
}

async fn token(State(ceiling): State<Arc<Ceiling>>) -> Json<Value> {
    Json(
        json!({ "access_token": ceiling.key.sign_jws(&ceiling.claims), "token_type": "Bearer", "expires_in": 600 }),
    )
}
