//! Reading request bodies with a size limit and a deadline, so an oversized body is a clean 413
//! and a slow client a 408, answered by the endpoint itself (which also audits it).

use std::time::Duration;

use axum::body::{Body, Bytes};
use http_body_util::BodyExt;

/// How long a client may take to send its body.
const BODY_DEADLINE: Duration = Duration::from_secs(10);
/// An oversized body is still read (and dropped) up to this size, so that the client, which is
/// probably still sending, receives the 413 instead of a reset connection.
const DRAIN_LIMIT: usize = 8 * 1024 * 1024;

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
    match tokio::time::timeout(BODY_DEADLINE, collect(body, limit)).await {
        Ok(result) => result,
        Err(_) => Err(BodyError::Timeout),
    }
}

async fn collect(mut body: Body, limit: usize) -> Result<Bytes, BodyError> {
    let mut collected: Vec<u8> = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(|_| BodyError::Broken)?.into_data() else {
            continue;
        };
        total += data.len();
        if total > DRAIN_LIMIT {
            break;
        }
        if total <= limit {
            collected.extend_from_slice(&data);
        }
    }
    if total > limit {
        return Err(BodyError::TooLarge);
    }
    Ok(Bytes::from(collected))
}
