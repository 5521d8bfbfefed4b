//! The certificate binding of a `tls_client_auth` agent (RFC 8705 §2.1.2): exactly one of
//! subject DN, DNS, URI, IP or email subject alternative name, compared the way each kind of
//! name is meant to be compared.

use std::net::IpAddr;

use super::certificate::Certificate;
use super::dn;

/// Which certificate name an agent is bound to, with its RFC 8705 metadata name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BindingKind {
    SubjectDn,
    SanDns,
    SanUri,
    SanIp,
    SanEmail,
}

impl BindingKind {
    pub const ALL: [BindingKind; 5] = [
        Self::SubjectDn,
        Self::SanDns,
        Self::SanUri,
        Self::SanIp,
        Self::SanEmail,
    ];

    /// The client metadata name (`tls_client_auth_subject_dn`, …).
    pub fn field(self) -> &'static str {
        match self {
            Self::SubjectDn => "tls_client_auth_subject_dn",
            Self::SanDns => "tls_client_auth_san_dns",
            Self::SanUri => "tls_client_auth_san_uri",
            Self::SanIp => "tls_client_auth_san_ip",
            Self::SanEmail => "tls_client_auth_san_email",
        }
    }

    pub fn from_field(field: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.field() == field)
    }
}

/// An agent's binding: the kind, the value as the operator wrote it, and its canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateBinding {
    pub kind: BindingKind,
    pub value: String,
    canonical: String,
}

impl CertificateBinding {
    /// Validates `value` for `kind`.
    pub fn new(kind: BindingKind, value: &str) -> Result<Self, String> {
        let value = value.trim().to_string();
        if value.is_empty() || value.len() > 1024 || value.chars().any(char::is_control) {
            return Err("must be 1 to 1024 characters without control characters".into());
        }
        let canonical = match kind {
            BindingKind::SubjectDn => dn::canonical_from_str(&value).map_err(|e| e.to_string())?,
            BindingKind::SanDns => {
                let valid = value.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                });
                if !valid {
                    return Err(format!("`{value}` is not a DNS name"));
                }
                value.to_ascii_lowercase()
            }
            BindingKind::SanUri => {
                let scheme = value.split_once(':').map(|(s, _)| s).unwrap_or_default();
                let valid = !scheme.is_empty()
                    && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                    && scheme
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                    && !value.contains(' ');
                if !valid {
                    return Err(format!("`{value}` is not an absolute URI"));
                }
                value.clone()
            }
            BindingKind::SanIp => value
                .parse::<IpAddr>()
                .map_err(|_| format!("`{value}` is not an IP address"))?
                .to_string(),
            BindingKind::SanEmail => {
                let (local, domain) = value
                    .rsplit_once('@')
                    .ok_or_else(|| format!("`{value}` is not an email address"))?;
                if local.is_empty() || domain.is_empty() || value.contains(' ') {
                    return Err(format!("`{value}` is not an email address"));
                }
                format!("{local}@{}", domain.to_ascii_lowercase())
            }
        };
        Ok(Self {
            kind,
            value,
            canonical,
        })
    }

    /// The canonical value, the same for every spelling of one name (for uniqueness checks).
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// Whether `certificate` carries the bound name.
    pub fn matches(&self, certificate: &Certificate) -> bool {
        match self.kind {
            BindingKind::SubjectDn => certificate.subject == self.canonical,
            BindingKind::SanDns => certificate
                .san_dns
                .iter()
                .any(|d| d.eq_ignore_ascii_case(&self.canonical)),
            BindingKind::SanUri => certificate.san_uri.contains(&self.canonical),
            BindingKind::SanIp => certificate
                .san_ip
                .iter()
                .any(|ip| ip.to_string() == self.canonical),
            BindingKind::SanEmail => certificate.san_email.iter().any(|e| {
                e.rsplit_once('@').is_some_and(|(local, domain)| {
                    format!("{local}@{}", domain.to_ascii_lowercase()) == self.canonical
                })
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_validated_per_kind() {
        assert!(CertificateBinding::new(BindingKind::SanDns, "agent.example.com").is_ok());
        assert!(CertificateBinding::new(BindingKind::SanDns, "bad name").is_err());
        assert!(CertificateBinding::new(BindingKind::SanDns, "a..b").is_err());
        assert!(CertificateBinding::new(BindingKind::SanUri, "spiffe://acme/billing").is_ok());
        assert!(CertificateBinding::new(BindingKind::SanUri, "no-scheme").is_err());
        assert!(CertificateBinding::new(BindingKind::SanIp, "10.0.0.1").is_ok());
        assert!(CertificateBinding::new(BindingKind::SanIp, "10.0.0").is_err());
        assert!(CertificateBinding::new(BindingKind::SanEmail, "bot@Example.com").is_ok());
        assert!(CertificateBinding::new(BindingKind::SanEmail, "bot").is_err());
        assert!(CertificateBinding::new(BindingKind::SubjectDn, "CN=a,O=b").is_ok());
        assert!(CertificateBinding::new(BindingKind::SubjectDn, "not a dn").is_err());
        assert!(CertificateBinding::new(BindingKind::SubjectDn, "").is_err());
    }

    #[test]
    fn ip_spellings_are_one_canonical_value() {
        let a = CertificateBinding::new(BindingKind::SanIp, "::1").expect("ip");
        let b = CertificateBinding::new(BindingKind::SanIp, "0:0:0:0:0:0:0:1").expect("ip");
        assert_eq!(a.canonical(), b.canonical());
    }
}
