//! Facts about the caller that every audited endpoint records: source address, user agent, and
//! the client certificate, from the TLS handshake or, behind a TLS-terminating proxy, from the
//! configured header when the request comes from a trusted proxy address.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::header::USER_AGENT;
use axum::http::request::Parts;
use signet_core::pki::PkiError;
use signet_core::pki::certificate::{CertificateChain, pem_certificates};

use crate::state::AppState;

/// A client certificate chain as presented, parsed once per TLS connection (or per forwarded
/// request). A chain that could not be parsed is kept as the error, so that authentication can
/// refuse it with its reason.
pub type PresentedChain = Result<Arc<CertificateChain>, PkiError>;

/// Put into every request's extensions by the TLS listener.
#[derive(Debug, Clone)]
pub struct TlsConnection {
    /// The client's certificate chain; the handshake proved the client holds its key.
    pub client_chain: Option<PresentedChain>,
}

/// Who is calling, as far as the connection tells.
#[derive(Debug, Clone)]
pub struct Caller {
    pub ip: IpAddr,
    pub user_agent: Option<String>,
    /// Whether the request arrived on the TLS listener.
    pub over_tls: bool,
    /// The client certificate, from the handshake or from a trusted proxy's header.
    pub certificate: Option<PresentedChain>,
    /// A client-certificate header came from an address that is not a trusted proxy and was
    /// ignored (the caller audits it).
    pub ignored_certificate_header: bool,
}

/// Whether the request's peer is one of `SIGNET_TRUSTED_PROXIES` (whose forwarding headers
/// are believed).
pub fn from_trusted_proxy(extensions: &axum::http::Extensions, state: &AppState) -> bool {
    let trusted = &state.config.trusted_proxies;
    !trusted.is_empty()
        && extensions
            .get::<ConnectInfo<SocketAddr>>()
            .is_some_and(|peer| trusted.iter().any(|c| c.contains(peer.0.ip())))
}

impl Caller {
    /// A caller known only by address and headers (the plain HTTP listener, no proxy header).
    pub fn new(peer: SocketAddr, headers: &HeaderMap) -> Self {
        Self {
            // An IPv4 client of a dual-stack listener is `::ffff:a.b.c.d`: recorded, locked and
            // matched against `allowed_cidrs` as the IPv4 address it is.
            ip: peer.ip().to_canonical(),
            user_agent: headers
                .get(USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            over_tls: false,
            certificate: None,
            ignored_certificate_header: false,
        }
    }

    /// The caller of a request: address, user agent, and client certificate.
    pub fn from_parts(parts: &Parts, state: &AppState) -> Self {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0)
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        let mut caller = Self::new(peer, &parts.headers);
        let from_proxy = from_trusted_proxy(&parts.extensions, state);
        if from_proxy {
            caller.ip = forwarded_client(&parts.headers, peer.ip(), &state.config.trusted_proxies)
                .to_canonical();
        }
        if let Some(tls) = parts.extensions.get::<TlsConnection>() {
            caller.over_tls = true;
            caller.certificate = tls.client_chain.clone();
        }
        let mtls = &state.config.mtls;
        if let Some(header) = &mtls.client_cert_header {
            let mut values = parts.headers.get_all(header.as_str()).iter();
            if let Some(value) = values.next() {
                if !from_proxy {
                    caller.ignored_certificate_header = true;
                } else if values.next().is_some() {
                    // A proxy that appends its header instead of replacing the client's would
                    // pass a forged one along with its own: which is which cannot be told, so
                    // neither is believed (as with two `Authorization` headers).
                    caller.certificate = Some(Err(PkiError::Malformed(
                        "more than one client certificate header".into(),
                    )));
                } else if caller.certificate.is_none() && !value.is_empty() {
                    caller.certificate = Some(forwarded_chain(value.as_bytes()).map(Arc::new));
                }
            }
        }
        caller
    }

    pub fn source(&self) -> Option<String> {
        Some(self.ip.to_string())
    }

    /// The key the caller's address is locked under (`signet_core::lockout::source_key`).
    pub fn lock_key(&self) -> String {
        signet_core::lockout::source_key(self.ip)
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self::from_parts(parts, state))
    }
}

/// The client address behind trusted proxies: the right-most `X-Forwarded-For` entry that is
/// not itself a trusted proxy (entries further left could have been written by the client).
/// Without a usable header, the peer.
fn forwarded_client(
    headers: &HeaderMap,
    peer: IpAddr,
    trusted: &[signet_core::cidr::Cidr],
) -> IpAddr {
    let mut hops: Vec<&str> = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(value) = value.to_str() else {
            return peer;
        };
        hops.extend(value.split(',').map(str::trim));
    }
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else {
            return client;
        };
        client = ip;
        if !trusted.iter().any(|c| c.contains(ip)) {
            break;
        }
    }
    client
}

/// The chain in a proxy's header: URL-encoded PEM, as nginx's `$ssl_client_escaped_cert`
/// sends it (plain PEM with its line breaks replaced by spaces or tabs is accepted too).
fn forwarded_chain(value: &[u8]) -> Result<CertificateChain, PkiError> {
    if value.len() > 64 * 1024 {
        return Err(PkiError::Malformed(
            "certificate header larger than 64 KiB".into(),
        ));
    }
    let decoded = percent_decode(value)
        .ok_or_else(|| PkiError::Malformed("certificate header is not URL-encoded PEM".into()))?;
    let pem = restore_pem_lines(&decoded);
    let der = pem_certificates(&pem)?;
    CertificateChain::parse(der)
}

fn percent_decode(value: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        match value[i] {
            b'%' => {
                let hex = value.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Some proxies fold the PEM's line breaks into spaces; base64 has no spaces, so any space
/// between the BEGIN and END lines was a line break.
fn restore_pem_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for block in text.split("-----END CERTIFICATE-----") {
        let Some(start) = block.find("-----BEGIN CERTIFICATE-----") else {
            continue;
        };
        let body = &block[start + "-----BEGIN CERTIFICATE-----".len()..];
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        out.push_str(&body.split_whitespace().collect::<Vec<_>>().join("\n"));
        out.push_str("\n-----END CERTIFICATE-----\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_is_the_first_untrusted_hop_from_the_right() {
        let trusted: Vec<signet_core::cidr::Cidr> = vec!["10.0.0.0/8".parse().expect("cidr")];
        let peer: IpAddr = "10.0.0.1".parse().expect("ip");
        let headers = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert("x-forwarded-for", v.parse().expect("value"));
            h
        };
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert_eq!(
            forwarded_client(&headers("203.0.113.9"), peer, &trusted),
            ip("203.0.113.9")
        );
        // A client that writes its own header cannot choose the address: the proxy appended the real one.
        assert_eq!(
            forwarded_client(&headers("1.2.3.4, 203.0.113.9, 10.0.0.7"), peer, &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(forwarded_client(&HeaderMap::new(), peer, &trusted), peer);
        assert_eq!(forwarded_client(&headers("garbage"), peer, &trusted), peer);
    }

    #[test]
    fn escaped_pem_is_decoded() {
        assert_eq!(percent_decode(b"a%20b%0A").as_deref(), Some("a b\n"));
        assert_eq!(percent_decode(b"%zz"), None);
        assert_eq!(percent_decode(b"%2"), None);
        let folded = "-----BEGIN CERTIFICATE----- QUJD REVG -----END CERTIFICATE-----";
        assert_eq!(
            restore_pem_lines(folded),
            "-----BEGIN CERTIFICATE-----\nQUJD\nREVG\n-----END CERTIFICATE-----\n"
        );
        assert!(forwarded_chain(b"garbage").is_err());
    }
}
