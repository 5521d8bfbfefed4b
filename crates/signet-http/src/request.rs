//! Facts about the caller that every audited endpoint records: source address and user agent.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use axum::http::header::USER_AGENT;

/// Who is calling, as far as the connection tells.
#[derive(Debug, Clone)]
pub struct Caller {
    pub ip: IpAddr,
    pub user_agent: Option<String>,
}

impl Caller {
    pub fn new(peer: SocketAddr, headers: &HeaderMap) -> Self {
        Self {
            ip: peer.ip(),
            user_agent: headers
                .get(USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        }
    }

    pub fn source(&self) -> Option<String> {
        Some(self.ip.to_string())
    }
}
