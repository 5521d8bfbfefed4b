//! Fetching agents' public keys from their `jwks_uri`, safely: only hosts on the operator's
//! allow-list, `https` (plain `http` only to loopback and only when explicitly allowed), never to
//! link-local or (unless allowed) private addresses, checked on every resolved address so that
//! DNS cannot redirect a fetch inside the network; no redirects; a timeout and a size limit.
//! Fetched keys are cached; an unknown `kid` triggers a refetch at most once per interval; a
//! failed fetch keeps the cached keys.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde_json::Value;
use signet_core::config::JwksUriConfig;
use signet_core::jwk::{KeyInput, MAX_KEYS_PER_AGENT, VerifyingKey, parse_keys};
use url::{Host, Url};

const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_JWKS_BYTES: usize = 64 * 1024;

/// Why a `jwks_uri` is refused or a fetch failed; each is an audit reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("{0}")]
    NotAllowed(String),
    #[error("the fetch timed out")]
    Timeout,
    #[error("the key set is larger than 64 KiB")]
    TooLarge,
    #[error("the server answered HTTP {0}")]
    Status(u16),
    #[error("not a usable JWK Set: {0}")]
    Invalid(String),
    #[error("the fetch failed: {0}")]
    Network(String),
}

impl FetchError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotAllowed(_) => "jwks_uri_not_allowed",
            Self::Timeout => "jwks_fetch_timeout",
            Self::TooLarge => "jwks_too_large",
            Self::Status(_) => "jwks_fetch_status",
            Self::Invalid(_) => "jwks_invalid",
            Self::Network(_) => "jwks_fetch_failed",
        }
    }
}

/// The allow-list and address rules.
#[derive(Debug, Clone)]
struct Policy {
    config: JwksUriConfig,
}

impl Policy {
    fn check_url(&self, raw: &str) -> Result<Url, FetchError> {
        let refuse = |why: &str| FetchError::NotAllowed(why.to_string());
        let url = Url::parse(raw).map_err(|_| refuse("jwks_uri is not a valid URL"))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refuse("jwks_uri must not carry credentials"));
        }
        let host = url.host().ok_or_else(|| refuse("jwks_uri has no host"))?;
        let host_name = match &host {
            Host::Domain(d) => d.to_ascii_lowercase(),
            Host::Ipv4(ip) => ip.to_string(),
            Host::Ipv6(ip) => ip.to_string(),
        };
        if self.config.allowed_hosts.is_empty() {
            return Err(refuse(
                "jwks_uri is disabled on this server: the operator has not set SIGNET_JWKS_URI_ALLOWED_HOSTS",
            ));
        }
        if !self
            .config
            .allowed_hosts
            .iter()
            .any(|allowed| host_matches(allowed, &host_name))
        {
            return Err(refuse(&format!(
                "host `{host_name}` is not in SIGNET_JWKS_URI_ALLOWED_HOSTS"
            )));
        }
        let literal: Option<IpAddr> = match host {
            Host::Ipv4(ip) => Some(ip.into()),
            Host::Ipv6(ip) => Some(ip.into()),
            Host::Domain(_) => None,
        };
        let loopback = literal.is_some_and(|ip| ip.is_loopback()) || host_name == "localhost";
        match url.scheme() {
            "https" => {}
            "http" if loopback && self.config.allow_http_loopback => {}
            "http" => return Err(refuse("jwks_uri must use https")),
            _ => return Err(refuse("jwks_uri must be an https URL")),
        }
        if let Some(ip) = literal {
            self.check_ip(ip)?;
        }
        Ok(url)
    }

    fn check_ip(&self, ip: IpAddr) -> Result<(), FetchError> {
        let ip = match ip {
            IpAddr::V6(v6) => embedded_ipv4(v6).map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        let refuse = |what: &str| {
            Err(FetchError::NotAllowed(format!(
                "jwks_uri resolves to a {what} address ({ip})"
            )))
        };
        if ip.is_loopback() {
            return if self.config.allow_http_loopback {
                Ok(())
            } else {
                refuse("loopback")
            };
        }
        let (link_local, private, reserved) = match ip {
            IpAddr::V4(v4) => {
                let [a, b, c, _] = v4.octets();
                (
                    v4.is_link_local(),
                    v4.is_private() || a == 100 && (b & 0xC0) == 64,
                    // "This network" 0/8, IETF protocol assignments 192.0.0/24, benchmarking
                    // 198.18/15, and 240/4 (reserved, broadcast).
                    a == 0 || (a, b, c) == (192, 0, 0) || a == 198 && (b & 0xFE) == 18 || a >= 240,
                )
            }
            IpAddr::V6(v6) => {
                let first = v6.segments()[0];
                (
                    (first & 0xffc0) == 0xfe80,
                    // Unique local fc00::/7, and the deprecated site-local fec0::/10.
                    (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfec0,
                    false,
                )
            }
        };
        if ip.is_unspecified() || ip.is_multicast() || link_local || reserved {
            return refuse("link-local, multicast, reserved or unspecified");
        }
        if private && !self.config.allow_private_networks {
            return refuse("private-network");
        }
        Ok(())
    }
}

/// `*.example.com` matches subdomains of example.com; anything else matches exactly.
fn host_matches(allowed: &str, host: &str) -> bool {
    match allowed.strip_prefix("*.") {
        Some(suffix) => {
            host.len() > suffix.len() + 1
                && host.ends_with(suffix)
                && host[..host.len() - suffix.len()].ends_with('.')
        }
        None => allowed == host,
    }
}

/// A name that resolved only to addresses the policy forbids: raised by [`CheckedResolver`] when
/// the fetch connects, so a name cannot point one way when registered and another when fetched.
#[derive(Debug, thiserror::Error)]
#[error("{0} resolves only to addresses jwks_uri may not reach")]
struct ForbiddenAddresses(String);

/// What a failed request was, with its causes: reqwest's own message names only the URL.
fn fetch_error(e: &reqwest::Error) -> FetchError {
    if e.is_timeout() {
        return FetchError::Timeout;
    }
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if let Some(forbidden) = cause.downcast_ref::<ForbiddenAddresses>() {
            return FetchError::NotAllowed(forbidden.to_string());
        }
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    FetchError::Network(message)
}

/// Resolves names and drops every address the policy forbids, so a fetch cannot be steered to
/// an internal address through DNS.
struct CheckedResolver {
    policy: Arc<Policy>,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = addresses
                .into_iter()
                .filter(|a| policy.check_ip(a.ip()).is_ok())
                .collect();
            if allowed.is_empty() {
                return Err(ForbiddenAddresses(name.as_str().to_string()).into());
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[derive(Debug, Default)]
struct Entry {
    uri: String,
    keys: Vec<Arc<VerifyingKey>>,
    fetched_at: Option<Instant>,
    last_attempt: Option<Instant>,
}

/// The `jwks_uri` client and its cache, one entry per agent.
pub struct JwksFetcher {
    policy: Arc<Policy>,
    client: reqwest::Client,
    entries: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Entry>>>>,
}

impl std::fmt::Debug for JwksFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksFetcher")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl JwksFetcher {
    pub fn new(config: &JwksUriConfig) -> Self {
        let policy = Arc::new(Policy {
            config: config.clone(),
        });
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map(|builder| builder.with_root_certificates(roots).with_no_client_auth());
        let mut builder = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!(
                "signet/",
                env!("CARGO_PKG_VERSION"),
                " jwks-fetcher"
            ))
            .no_proxy()
            .dns_resolver(Arc::new(CheckedResolver {
                policy: policy.clone(),
            }));
        if let Ok(tls) = tls {
            builder = builder.use_preconfigured_tls(tls);
        }
        let client = builder.build().unwrap_or_default();
        Self {
            policy,
            client,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Checks a `jwks_uri` against the policy, for registration.
    pub fn check_uri(&self, uri: &str) -> Result<(), FetchError> {
        self.policy.check_url(uri).map(|_| ())
    }

    /// The agent's keys from `uri`: cached, fetched when stale, refetched for an unknown `kid`
    /// at most once per `min_refetch_seconds`. A failed fetch returns the cached keys with the
    /// error, to be audited.
    pub async fn keys(
        &self,
        agent_id: &str,
        uri: &str,
        kid: Option<&str>,
    ) -> (Vec<Arc<VerifyingKey>>, Option<FetchError>) {
        let entry = {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            entries.entry(agent_id.to_string()).or_default().clone()
        };
        let mut entry = entry.lock().await;
        if entry.uri != uri {
            *entry = Entry {
                uri: uri.to_string(),
                ..Entry::default()
            };
        }
        let config = &self.policy.config;
        let stale = entry
            .fetched_at
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(config.cache_seconds));
        let unknown_kid = kid.is_some_and(|kid| !entry.keys.iter().any(|k| k.kid == kid));
        let may_fetch = entry
            .last_attempt
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(config.min_refetch_seconds));
        let mut error = None;
        if (stale || unknown_kid) && may_fetch {
            entry.last_attempt = Some(Instant::now());
            match self.fetch(uri).await {
                Ok(keys) => {
                    entry.keys = keys;
                    entry.fetched_at = Some(Instant::now());
                }
                Err(e) => error = Some(e),
            }
        }
        (entry.keys.clone(), error)
    }

    async fn fetch(&self, uri: &str) -> Result<Vec<Arc<VerifyingKey>>, FetchError> {
        let url = self.policy.check_url(uri)?;
        let response = self
            .client
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| fetch_error(&e))?;
        if !response.status().is_success() {
            return Err(FetchError::Status(response.status().as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|l| l as usize > MAX_JWKS_BYTES)
        {
            return Err(FetchError::TooLarge);
        }
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| fetch_error(&e))?;
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let set: Value =
            serde_json::from_slice(&body).map_err(|e| FetchError::Invalid(e.to_string()))?;
        let listed = set
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| FetchError::Invalid("no `keys` array".into()))?;
        // Keys that cannot sign (encryption keys, other curves) are skipped, not fatal.
        let now = signet_core::now();
        let keys: Vec<Arc<VerifyingKey>> = listed
            .iter()
            .take(MAX_KEYS_PER_AGENT)
            .filter_map(|jwk| parse_keys(KeyInput::Jwk(jwk), None, None, now).ok())
            .flatten()
            .filter_map(|key| VerifyingKey::new(&key).ok().map(Arc::new))
            .collect();
        if keys.is_empty() {
            return Err(FetchError::Invalid("no usable signing key".into()));
        }
        Ok(keys)
    }
}

/// The IPv4 address an IPv6 address stands for, where it is one by construction: IPv4-mapped
/// (`::ffff:0:0/96`), IPv4-compatible (`::/96`, deprecated), NAT64 (`64:ff9b::/96` and the local
/// `64:ff9b:1::/48`) and 6to4 (`2002::/16`). A gateway turns these into connections to that IPv4
/// address, so the IPv4 rules apply to them.
fn embedded_ipv4(v6: std::net::Ipv6Addr) -> Option<std::net::Ipv4Addr> {
    let s = v6.segments();
    let from = |high: u16, low: u16| {
        let [a, b] = high.to_be_bytes();
        let [c, d] = low.to_be_bytes();
        Some(std::net::Ipv4Addr::new(a, b, c, d))
    };
    match s {
        [0, 0, 0, 0, 0, 0xffff, high, low] => from(high, low),
        // `::` and `::1` are not IPv4 addresses.
        [0, 0, 0, 0, 0, 0, high, low] if high != 0 => from(high, low),
        [0x64, 0xff9b, 0, 0, 0, 0, high, low] => from(high, low),
        [0x64, 0xff9b, 1, ..] => from(s[6], s[7]),
        [0x2002, high, low, ..] => from(high, low),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(hosts: &[&str], loopback: bool, private: bool) -> Policy {
        Policy {
            config: JwksUriConfig {
                allowed_hosts: hosts.iter().map(|h| h.to_string()).collect(),
                allow_http_loopback: loopback,
                allow_private_networks: private,
                cache_seconds: 300,
                min_refetch_seconds: 30,
            },
        }
    }

    #[test]
    fn the_allow_list_decides() {
        let p = policy(&["keys.example.com", "*.agents.example"], false, false);
        assert!(p.check_url("https://keys.example.com/jwks.json").is_ok());
        assert!(p.check_url("https://a.agents.example/jwks").is_ok());
        assert!(
            p.check_url("https://agents.example/jwks").is_err(),
            "the wildcard is for subdomains"
        );
        assert!(p.check_url("https://evil.example/jwks").is_err());
        assert!(
            p.check_url("https://keys.example.com.evil.example/jwks")
                .is_err()
        );
        assert!(
            p.check_url("http://keys.example.com/jwks").is_err(),
            "https only"
        );
        assert!(
            p.check_url("https://user:pw@keys.example.com/jwks")
                .is_err()
        );
        assert!(p.check_url("file:///etc/passwd").is_err());
        assert!(
            policy(&[], false, false)
                .check_url("https://keys.example.com/")
                .is_err(),
            "no allow-list, no jwks_uri"
        );
    }

    #[test]
    fn addresses_are_checked() {
        let p = policy(&["127.0.0.1", "169.254.169.254", "10.0.0.5"], false, false);
        assert!(
            p.check_url("http://127.0.0.1:8080/jwks").is_err(),
            "loopback needs the flag"
        );
        assert!(
            p.check_url("https://169.254.169.254/latest/meta-data")
                .is_err(),
            "never link-local"
        );
        assert!(
            p.check_url("https://10.0.0.5/jwks").is_err(),
            "private needs the flag"
        );
        let lax = policy(&["127.0.0.1", "169.254.169.254", "10.0.0.5"], true, true);
        assert!(lax.check_url("http://127.0.0.1:8080/jwks").is_ok());
        assert!(lax.check_url("https://10.0.0.5/jwks").is_ok());
        assert!(lax.check_url("https://169.254.169.254/").is_err());
        assert!(
            lax.check_ip("::ffff:169.254.1.1".parse().expect("ip"))
                .is_err()
        );
        // IPv4 behind IPv6 (NAT64, 6to4, compatible) follows the IPv4 rules; reserved IPv4
        // ranges and IPv6 site-local are refused.
        let ip = |text: &str| text.parse::<IpAddr>().expect("ip");
        for refused in [
            "64:ff9b::a00:5",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::a00:5",
            "2002:a00:5::1",
            "2002:a9fe:a9fe::",
            "::a00:5",
            "0.1.2.3",
            "192.0.0.170",
            "198.18.0.1",
            "198.19.255.255",
            "240.0.0.1",
            "255.255.255.255",
            "fec0::1",
            "fd00::1",
        ] {
            assert!(p.check_ip(ip(refused)).is_err(), "{refused}");
        }
        for allowed in [
            "64:ff9b::5db8:d822",
            "2002:5db8:d822::1",
            "93.184.216.34",
            "2606:2800:220:1::",
        ] {
            assert!(p.check_ip(ip(allowed)).is_ok(), "{allowed}");
        }
        assert!(
            p.check_ip(ip("64:ff9b::7f00:1")).is_err(),
            "loopback through NAT64"
        );
    }
}
