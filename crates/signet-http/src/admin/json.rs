//! `ApiJson<T>`: the admin API's JSON body extractor, with the body size limit and problem
//! details for every way a body can be wrong (not JSON, wrong type, unknown field, too large).

use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;

use super::problem::Problem;
use crate::body::{self, BodyError};
use crate::state::AppState;

/// A JSON request body. An empty body is read as `{}` when `T` allows it.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, request_body) = request.into_parts();
        let bytes = body::read(request_body, state.config.max_body_bytes)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge => Problem::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "the request body is too large",
                ),
                BodyError::Timeout => Problem::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "the request body took too long to arrive",
                ),
                BodyError::Broken => Problem::bad_request("the request body could not be read"),
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return serde_json::from_slice(b"{}")
                .map(ApiJson)
                .map_err(|_| Problem::bad_request("a JSON body is required"));
        }
        let is_json = parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(is_json_media_type);
        if !is_json {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send the body as application/json",
            ));
        }
        serde_json::from_slice(&bytes)
            .map(ApiJson)
            .map_err(|e| Problem::bad_request(format!("invalid JSON body: {e}")))
    }
}

/// `application/json`, or a JSON-based type such as `application/merge-patch+json` (RFC 7396,
/// what clients send a PATCH as; RFC 6839's `+json` suffix).
fn is_json_media_type(media_type: &str) -> bool {
    let media_type = media_type.trim().to_ascii_lowercase();
    media_type == "application/json"
        || (media_type.starts_with("application/") && media_type.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::is_json_media_type;

    #[test]
    fn json_and_json_based_media_types_are_json() {
        for yes in [
            "application/json",
            " Application/JSON ",
            "application/merge-patch+json",
        ] {
            assert!(is_json_media_type(yes), "{yes}");
        }
        for no in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "text/x+json",
            "json",
        ] {
            assert!(!is_json_media_type(no), "{no}");
        }
    }
}
