//! Certificates for the mutual TLS tests, all generated here: CAs, intermediates, leaves with
//! any names, key usages and validity, CRLs; and HTTPS clients that present them.

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use super::TestApp;

/// A CA that can sign leaves, intermediates and CRLs.
pub struct TestCa {
    pub pem: String,
    /// `x5t#S256` of the CA's own certificate.
    pub thumbprint: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate with its private key.
#[derive(Clone)]
pub struct TestCert {
    pub pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
    /// Serial number, lower-case hex without leading zeros.
    pub serial: String,
}

impl TestCert {
    /// `x5t#S256`, computed here independently of Signet.
    pub fn thumbprint(&self) -> String {
        URL_SAFE_NO_PAD.encode(digest(&SHA256, &self.der))
    }

    /// The certificate as a JWK (RFC 7517 §4.7): its P-256 public key with the certificate in
    /// `x5c` (standard base64).
    pub fn jwk_with_x5c(&self) -> serde_json::Value {
        let key = KeyPair::from_pem(&self.key_pem).expect("key");
        let point = key.public_key_raw();
        assert_eq!(point.len(), 65, "an uncompressed P-256 point");
        serde_json::json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..]),
            "x5c": [base64::engine::general_purpose::STANDARD.encode(&self.der)],
        })
    }
}

/// What to put into a leaf certificate.
#[derive(Clone)]
pub struct Leaf {
    pub subject: Vec<(DnType, String)>,
    pub dns: Vec<String>,
    pub uris: Vec<String>,
    pub ips: Vec<std::net::IpAddr>,
    pub emails: Vec<String>,
    pub eku: Vec<ExtendedKeyUsagePurpose>,
    /// Validity relative to now, in days.
    pub valid_from_days: i64,
    pub valid_until_days: i64,
}

impl Default for Leaf {
    fn default() -> Self {
        Self {
            subject: vec![(DnType::CommonName, "agent".into())],
            dns: Vec::new(),
            uris: Vec::new(),
            ips: Vec::new(),
            emails: Vec::new(),
            eku: vec![ExtendedKeyUsagePurpose::ClientAuth],
            valid_from_days: -1,
            valid_until_days: 30,
        }
    }
}

impl Leaf {
    pub fn named(cn: &str) -> Self {
        Self {
            subject: vec![
                (DnType::OrganizationName, "Acme".into()),
                (DnType::CommonName, cn.into()),
            ],
            ..Self::default()
        }
    }
}

fn serial() -> (SerialNumber, String) {
    let mut bytes: [u8; 12] = rand_bytes();
    bytes[0] = (bytes[0] & 0x7f) | 0x10;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    (
        SerialNumber::from_slice(&bytes),
        hex.trim_start_matches('0').to_string(),
    )
}

fn rand_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    aws_lc_rs::rand::fill(&mut out).expect("random");
    out
}

fn ia5(s: &str) -> rcgen::string::Ia5String {
    s.to_string().try_into().expect("ascii")
}

impl TestCa {
    pub fn root(name: &str) -> Self {
        Self::build(name, None)
    }

    pub fn intermediate(&self, name: &str) -> Self {
        Self::build(name, Some(self))
    }

    fn build(name: &str, parent: Option<&TestCa>) -> Self {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(2);
        params.not_after = now + Duration::days(365);
        params.serial_number = Some(serial().0);
        let cert = match parent {
            None => params.self_signed(&key).expect("self-signed CA"),
            Some(parent) => params
                .signed_by(&key, &parent.issuer)
                .expect("intermediate"),
        };
        Self {
            pem: cert.pem(),
            thumbprint: URL_SAFE_NO_PAD.encode(digest(&SHA256, cert.der())),
            issuer: Issuer::new(params, key),
        }
    }

    pub fn leaf(&self, leaf: &Leaf) -> TestCert {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let params = leaf_params(leaf);
        let serial = params.serial_number.clone().map(|s| hex(&s.to_bytes()));
        let cert = params.signed_by(&key, &self.issuer).expect("leaf");
        TestCert {
            pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
            serial: serial.unwrap_or_default(),
        }
    }

    /// A CRL (PEM) revoking `revoked`.
    pub fn crl(&self, revoked: &[&TestCert]) -> String {
        let now = OffsetDateTime::now_utc();
        let params = CertificateRevocationListParams {
            this_update: now - Duration::minutes(5),
            next_update: now + Duration::days(1),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|c| RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&unhex(&c.serial)),
                    revocation_time: now - Duration::minutes(1),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        params
            .signed_by(&self.issuer)
            .expect("crl")
            .pem()
            .expect("pem")
    }
}

fn leaf_params(leaf: &Leaf) -> CertificateParams {
    let mut params = CertificateParams::default();
    // rcgen's default name holds a CN of its own: start empty, so the order is ours.
    params.distinguished_name = rcgen::DistinguishedName::new();
    for (kind, value) in &leaf.subject {
        params.distinguished_name.push(kind.clone(), value.as_str());
    }
    params
        .subject_alt_names
        .extend(leaf.dns.iter().map(|d| SanType::DnsName(ia5(d))));
    params
        .subject_alt_names
        .extend(leaf.uris.iter().map(|u| SanType::URI(ia5(u))));
    params
        .subject_alt_names
        .extend(leaf.ips.iter().map(|ip| SanType::IpAddress(*ip)));
    params
        .subject_alt_names
        .extend(leaf.emails.iter().map(|e| SanType::Rfc822Name(ia5(e))));
    params.extended_key_usages = leaf.eku.clone();
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let now = OffsetDateTime::now_utc();
    params.not_before = now + Duration::days(leaf.valid_from_days);
    params.not_after = now + Duration::days(leaf.valid_until_days);
    params.serial_number = Some(serial().0);
    params
}

/// A self-signed client certificate.
pub fn self_signed(leaf: &Leaf) -> TestCert {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let params = leaf_params(leaf);
    let serial = params.serial_number.clone().map(|s| hex(&s.to_bytes()));
    let cert = params.self_signed(&key).expect("self-signed");
    TestCert {
        pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().to_vec(),
        serial: serial.unwrap_or_default(),
    }
}

fn hex(bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    hex.trim_start_matches('0').to_string()
}

fn unhex(hex: &str) -> Vec<u8> {
    let padded = if hex.len() % 2 == 1 {
        format!("0{hex}")
    } else {
        hex.to_string()
    };
    (0..padded.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&padded[i..i + 2], 16).expect("hex"))
        .collect()
}

/// The development CA the server generated for its TLS listener.
pub fn server_ca(app: &TestApp) -> reqwest::Certificate {
    let pem = std::fs::read(app.data_dir.join("tls/dev-ca.pem")).expect("dev CA");
    reqwest::Certificate::from_pem(&pem).expect("CA pem")
}

/// An HTTPS client for the TLS listener presenting `cert` (with `chain`, PEM intermediates),
/// limited to one TLS version if given.
pub fn client(
    app: &TestApp,
    cert: Option<(&TestCert, &str)>,
    version: Option<reqwest::tls::Version>,
) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(server_ca(app));
    if let Some((cert, chain)) = cert {
        let pem = format!("{}{}{}", cert.pem, chain, cert.key_pem);
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).expect("identity"));
    }
    if let Some(version) = version {
        builder = builder.min_tls_version(version).max_tls_version(version);
    }
    builder.build().expect("client")
}

/// Asks for a token over mutual TLS with `client_id`.
pub async fn mtls_token(
    app: &TestApp,
    client: &reqwest::Client,
    agent_id: &str,
) -> reqwest::Response {
    let url = app.tls_url.as_deref().expect("TLS listener");
    client
        .post(format!("{url}/oauth2/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", agent_id),
        ])
        .send()
        .await
        .expect("send")
}
