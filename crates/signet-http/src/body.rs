//! Reading request bodies with a size limit and a deadline, so an oversized body is a clean 413
//! and a slow client a 408, answered by the endpoint itself (which also audits it).

use std::time::Duration;

use axum::body::{Body, Bytes};
use http_body_util::{BodyExt, Limited};

/// How long a client may take to send its body.
const BODY_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    TooLarge,
    Timeout,
    Broken,
}

impl BodyError {
    pub fn reason(self) -> &'static str {
        match self {
            Self::TooLarge => "body_too_large",
            Self::Timeout => "body_timeout",
            Self::Broken => "body_unreadable",
        }
    }
}

/// Reads the whole body, refusing more than `limit` bytes.
pub async fn read(body: Body, limit: usize) -> Result<Bytes, BodyError> {
    let collect = Limited::new(body, limit).collect();
    match tokio::time::timeout(BODY_DEADLINE, collect).await {
        Err(_) => Err(BodyError::Timeout),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge),
        Ok(Err(_)) => Err(BodyError::Broken),
    }
}
