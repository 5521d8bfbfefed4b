//! The HTTPS listener for mutual TLS (RFC 8705): rustls with TLS 1.2 and 1.3, HTTP/1.1 and
//! HTTP/2 (ALPN), a server certificate reloaded when its files change, and a client
//! certificate that is requested but not required.
//!
//! The client-certificate verifier accepts any chain but still checks the handshake signature
//! against the certificate's key, so a client must hold the private key of what it presents.
//! Whether the chain is trusted, revoked or bound to the agent is decided per request in
//! `signet-core`, where every refusal gets an audit reason.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::Router;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};
use signet_core::crypto::sha256;
use signet_core::pki::certificate::CertificateChain;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::request::TlsConnection;

/// A TLS handshake must finish within this time.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Requests a client certificate, does not require one, and verifies only the handshake
/// signature (proof of possession).
#[derive(Debug)]
struct RequestClientCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for RequestClientCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // An empty list lets the client send any certificate (RFC 8446 §4.3.2): self-signed
        // ones included.
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Chain, validity, revocation and binding are checked per request, with audit reasons.
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The server certificate, swapped when its files change.
#[derive(Debug)]
pub struct ServerCertificate {
    cert_file: PathBuf,
    key_file: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    digest: Mutex<[u8; 32]>,
}

impl ResolvesServerCert for ServerCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

impl ServerCertificate {
    /// Loads the certificate chain and private key (PEM files).
    pub fn load(
        cert_file: PathBuf,
        key_file: PathBuf,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, String> {
        let (key, digest) = load_certified_key(&cert_file, &key_file, &provider)?;
        Ok(Self {
            cert_file,
            key_file,
            provider,
            current: RwLock::new(Arc::new(key)),
            digest: Mutex::new(digest),
        })
    }

    /// Loads the files again if their content changed; `Ok(true)` if the certificate was
    /// replaced. A broken new file leaves the previous certificate in service.
    pub fn reload(&self) -> Result<bool, String> {
        let (cert, key) = (read(&self.cert_file)?, read(&self.key_file)?);
        let digest = digest_of(&cert, &key);
        if *self.digest.lock().unwrap_or_else(|e| e.into_inner()) == digest {
            return Ok(false);
        }
        let (key, digest) = load_certified_key(&self.cert_file, &self.key_file, &self.provider)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(key);
        *self.digest.lock().unwrap_or_else(|e| e.into_inner()) = digest;
        Ok(true)
    }

    /// The leaf certificate's SHA-256 thumbprint, for logs.
    pub fn thumbprint(&self) -> String {
        let key = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        key.cert
            .first()
            .map(|c| signet_core::pki::certificate::thumbprint(c))
            .unwrap_or_default()
    }
}

fn read(path: &PathBuf) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn digest_of(cert: &[u8], key: &[u8]) -> [u8; 32] {
    let mut both = sha256(cert).to_vec();
    both.extend_from_slice(&sha256(key));
    sha256(&both)
}

fn load_certified_key(
    cert_file: &PathBuf,
    key_file: &PathBuf,
    provider: &CryptoProvider,
) -> Result<(CertifiedKey, [u8; 32]), String> {
    let (cert_pem, key_pem) = (read(cert_file)?, read(key_file)?);
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", cert_file.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no CERTIFICATE block", cert_file.display()));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| format!("{}: {e}", key_file.display()))?;
    let certified = CertifiedKey::from_der(chain, key, provider)
        .map_err(|e| format!("{} and {}: {e}", cert_file.display(), key_file.display()))?;
    Ok((certified, digest_of(&cert_pem, &key_pem)))
}

/// The rustls configuration of the listener.
pub fn server_config(
    certificate: Arc<ServerCertificate>,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<ServerConfig>, String> {
    let verifier = Arc::new(RequestClientCertificate {
        algorithms: provider.signature_verification_algorithms,
    });
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(certificate);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Accepts TLS connections until `stop` turns true, then drains them and returns. Every
/// request carries the peer address and the client's certificate chain, parsed once per
/// connection.
pub(crate) async fn run(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    app: Router,
    stop: watch::Receiver<bool>,
    limit: Arc<tokio::sync::Semaphore>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    crate::connections::serve(listener, app, stop, "TLS", limit, move |tcp, peer| {
        let acceptor = acceptor.clone();
        async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return None;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return None;
                }
            };
            let client_chain = stream.get_ref().1.peer_certificates().map(|certs| {
                CertificateChain::parse(certs.iter().map(|c| c.as_ref().to_vec()).collect())
                    .map(Arc::new)
            });
            Some((stream, Some(TlsConnection { client_chain })))
        }
    })
    .await;
}
