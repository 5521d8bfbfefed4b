//! The TLS listener itself: proof of possession of the client certificate's key, the client
//! certificate header from a TLS-terminating proxy (trusted addresses only), and certificate,
//! CA and CRL files reloaded without a restart.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::TestApp;
use common::pki::{Leaf, TestCa, TestCert, client, mtls_token, self_signed, server_ca};
use rustls::client::ResolvesClientCert;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use serde_json::{Value, json};

/// Presents one certificate but signs the handshake with another key: a client that copied a
/// certificate without its private key.
#[derive(Debug)]
struct StolenCertificate(Arc<CertifiedKey>);

impl ResolvesClientCert for StolenCertificate {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

#[tokio::test]
async fn a_certificate_without_its_private_key_fails_the_handshake() {
    let app = TestApp::spawn().await;
    let victim = self_signed(&Leaf::named("victim"));
    let created = app
        .create_agent(json!({
            "name": "victim",
            "token_endpoint_auth_method": "self_signed_tls_client_auth",
            "certificates": [victim.pem],
        }))
        .await;
    let agent = created["agent_id"].as_str().expect("id").to_string();
    let attacker_key = self_signed(&Leaf::named("attacker")).key_pem;

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let key = PrivateKeyDer::from_pem_slice(attacker_key.as_bytes()).expect("key");
    let signer = provider.key_provider.load_private_key(key).expect("signer");
    let stolen = CertifiedKey::new(vec![CertificateDer::from(victim.der.clone())], signer);
    let mut roots = rustls::RootCertStore::empty();
    let ca = std::fs::read(app.data_dir.join("tls/dev-ca.pem")).expect("ca");
    for cert in CertificateDer::pem_slice_iter(&ca) {
        roots.add(cert.expect("pem")).expect("root");
    }
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_client_cert_resolver(Arc::new(StolenCertificate(Arc::new(stolen))));
    let thief = reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .build()
        .expect("client");
    let url = app.tls_url.clone().expect("tls");
    let result = thief
        .post(format!("{url}/oauth2/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", agent.as_str()),
        ])
        .send()
        .await;
    match result {
        Err(_) => {}
        Ok(response) => panic!("the handshake must fail, got {}", response.status()),
    }
    // No token was issued; the genuine holder still gets one.
    assert!(
        app.audit("event_type=token_request&outcome=success")
            .await
            .is_empty()
    );
    let response = mtls_token(&app, &client(&app, Some((&victim, "")), None), &agent).await;
    assert_eq!(response.status(), 200);
}

fn escaped_pem(cert: &TestCert) -> String {
    // nginx's $ssl_client_escaped_cert: the PEM, URL-encoded.
    cert.pem
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

async fn forwarded_token(app: &TestApp, agent: &str, cert: &TestCert) -> reqwest::Response {
    app.http
        .post(format!("{}/oauth2/token", app.url))
        .header("x-ssl-client-cert", escaped_pem(cert))
        .form(&[("grant_type", "client_credentials"), ("client_id", agent)])
        .send()
        .await
        .expect("send")
}

#[tokio::test]
async fn the_proxy_header_is_honoured_only_from_trusted_proxies() {
    let cert = self_signed(&Leaf::named("behind-proxy"));
    let register = |app: &TestApp| {
        let pem = cert.pem.clone();
        let app_url = app.url.clone();
        let http = app.http.clone();
        async move {
            let response = http
                .post(format!("{app_url}/api/v1/agents"))
                .bearer_auth(common::ADMIN_TOKEN)
                .json(&json!({ "name": "p", "token_endpoint_auth_method": "self_signed_tls_client_auth", "certificates": [pem] }))
                .send()
                .await
                .expect("send");
            let body: Value = response.json().await.expect("json");
            body["agent_id"].as_str().expect("id").to_string()
        }
    };

    // The test client connects from 127.0.0.1, which is the trusted proxy here.
    let trusted = TestApp::spawn_with(&[
        ("SIGNET_CLIENT_CERT_HEADER", "X-SSL-Client-Cert"),
        ("SIGNET_TRUSTED_PROXIES", "127.0.0.1/32"),
    ])
    .await;
    let agent = register(&trusted).await;
    let response = forwarded_token(&trusted, &agent, &cert).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    let claims = common::claims(body["access_token"].as_str().expect("token"));
    assert_eq!(claims["cnf"]["x5t#S256"], json!(cert.thumbprint()));

    // Two headers (a proxy that appends its own to a client's forged one): neither is believed.
    let forged = self_signed(&Leaf::named("forged"));
    for (first, second) in [(&forged, &cert), (&cert, &forged)] {
        let response = trusted
            .http
            .post(format!("{}/oauth2/token", trusted.url))
            .header("x-ssl-client-cert", escaped_pem(first))
            .header("x-ssl-client-cert", escaped_pem(second))
            .form(&[("grant_type", "client_credentials"), ("client_id", &agent)])
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 401);
        assert_eq!(
            trusted.last_token_reason(&agent).await.as_deref(),
            Some("malformed_certificate")
        );
    }

    // Here only 10.0.0.0/8 may send it: the header is ignored, and that is audited.
    let untrusted = TestApp::spawn_with(&[
        ("SIGNET_CLIENT_CERT_HEADER", "X-SSL-Client-Cert"),
        ("SIGNET_TRUSTED_PROXIES", "10.0.0.0/8"),
    ])
    .await;
    let agent = register(&untrusted).await;
    let response = forwarded_token(&untrusted, &agent, &cert).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        untrusted.last_token_reason(&agent).await.as_deref(),
        Some("no_client_certificate")
    );
    let ignored = untrusted
        .audit("event_type=client_cert_header_ignored")
        .await;
    assert_eq!(ignored.len(), 1);
    assert_eq!(ignored[0]["reason"], "untrusted_proxy");
    assert_eq!(ignored[0]["source"], "127.0.0.1");
}

/// Polls until `check` passes, for at most ten seconds.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} did not happen within ten seconds");
}

#[tokio::test]
async fn certificate_ca_and_crl_files_are_reloaded_without_a_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = |name: &str| dir.path().join(name).to_string_lossy().to_string();
    // The server's own certificate, from an operator's CA.
    let server_ca_1 = TestCa::root("Server CA 1");
    let server_ca_2 = TestCa::root("Server CA 2");
    let server_leaf = |ca: &TestCa| {
        ca.leaf(&Leaf {
            ips: vec!["127.0.0.1".parse().expect("ip")],
            eku: vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth],
            ..Leaf::default()
        })
    };
    let first = server_leaf(&server_ca_1);
    std::fs::write(path("server.pem"), &first.pem).expect("write");
    std::fs::write(path("server.key"), &first.key_pem).expect("write");
    // Client trust: CA "A" at first; a CRL file that revokes nothing yet.
    let ca_a = TestCa::root("Client CA A");
    let ca_b = TestCa::root("Client CA B");
    std::fs::write(path("clients.pem"), &ca_a.pem).expect("write");
    std::fs::write(path("clients.crl"), ca_a.crl(&[])).expect("write");
    let (cert_file, key_file, ca_file, crl_file) = (
        path("server.pem"),
        path("server.key"),
        path("clients.pem"),
        path("clients.crl"),
    );
    let app = TestApp::spawn_with(&[
        ("SIGNET_TLS_CERT_FILE", &cert_file),
        ("SIGNET_TLS_KEY_FILE", &key_file),
        ("SIGNET_CLIENT_CA_FILE", &ca_file),
        ("SIGNET_CLIENT_CRL_FILES", &crl_file),
        ("SIGNET_TLS_RELOAD_SECONDS", "1"),
    ])
    .await;
    let url = app.tls_url.clone().expect("tls");
    let trusting = |ca: &TestCa, cert: Option<&TestCert>| {
        let mut builder = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(ca.pem.as_bytes()).expect("ca"));
        if let Some(cert) = cert {
            let pem = format!("{}{}", cert.pem, cert.key_pem);
            builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).expect("id"));
        }
        builder.build().expect("client")
    };
    let healthy = |client: reqwest::Client| {
        let url = url.clone();
        async move {
            client
                .get(format!("{url}/healthz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        }
    };
    assert!(healthy(trusting(&server_ca_1, None)).await);
    assert!(!healthy(trusting(&server_ca_2, None)).await);

    // The operator replaces the server certificate (key first, then certificate).
    let second = server_leaf(&server_ca_2);
    std::fs::write(path("server.key"), &second.key_pem).expect("write");
    std::fs::write(path("server.pem"), &second.pem).expect("write");
    eventually("the new server certificate", || {
        healthy(trusting(&server_ca_2, None))
    })
    .await;

    // A client of CA "B" is untrusted until the CA file lists B.
    let agent_b = {
        let created = app
            .create_agent(json!({ "name": "b", "token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_subject_dn": "CN=b,O=Acme" }))
            .await;
        created["agent_id"].as_str().expect("id").to_string()
    };
    let cert_b = ca_b.leaf(&Leaf::named("b"));
    let client_b = trusting(&server_ca_2, Some(&cert_b));
    let token_status = |client: reqwest::Client, agent: String| {
        let url = url.clone();
        async move {
            client
                .post(format!("{url}/oauth2/token"))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", agent.as_str()),
                ])
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    };
    assert_eq!(token_status(client_b.clone(), agent_b.clone()).await, 401);
    std::fs::write(path("clients.pem"), format!("{}{}", ca_a.pem, ca_b.pem)).expect("write");
    eventually("trust in CA B", || {
        token_status(client_b.clone(), agent_b.clone()).map_eq(200)
    })
    .await;

    // A CRL update revokes a certificate of CA A without a restart.
    let agent_a = {
        let created = app
            .create_agent(json!({ "name": "a", "token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_subject_dn": "CN=a,O=Acme" }))
            .await;
        created["agent_id"].as_str().expect("id").to_string()
    };
    let cert_a = ca_a.leaf(&Leaf::named("a"));
    let client_a = trusting(&server_ca_2, Some(&cert_a));
    assert_eq!(token_status(client_a.clone(), agent_a.clone()).await, 200);
    std::fs::write(path("clients.crl"), ca_a.crl(&[&cert_a])).expect("write");
    eventually("the CRL update", || {
        token_status(client_a.clone(), agent_a.clone()).map_eq(401)
    })
    .await;
    assert_eq!(
        app.last_token_reason(&agent_a).await.as_deref(),
        Some("certificate_revoked_crl")
    );
    let reloads = app.audit("event_type=tls_reloaded").await;
    assert!(reloads.len() >= 3, "{reloads:?}");

    // A broken file is not loaded; the current certificate stays in service.
    std::fs::write(path("server.pem"), "garbage").expect("write");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(healthy(trusting(&server_ca_2, None)).await);
}

/// `future.map_eq(x)`: resolves to whether the future's output equals `x`.
trait MapEq: std::future::Future + Sized {
    fn map_eq(self, expected: Self::Output) -> impl std::future::Future<Output = bool>
    where
        Self::Output: PartialEq,
    {
        async move { self.await == expected }
    }
}

impl<F: std::future::Future> MapEq for F {}

/// A console session begun over Signet's own TLS listener gets a `Secure` cookie, though the
/// issuer is plain HTTP (a browser must not send it back over HTTP); over HTTP it cannot be.
#[tokio::test]
async fn a_console_session_over_the_tls_listener_gets_a_secure_cookie() {
    let password = "console-over-tls-password-1";
    let app = TestApp::spawn_with(&[("SIGNET_ADMIN_PASSWORD", password)]).await;
    let https = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(server_ca(&app))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let tls_url = app.tls_url.clone().expect("TLS listener");
    for (client, url, secure) in [(&https, &tls_url, true), (&plain, &app.url, false)] {
        let response = client
            .post(format!("{url}/console/login"))
            .form(&[("username", "admin"), ("password", password)])
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 303);
        let cookie = response
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .expect("cookie")
            .to_owned();
        assert_eq!(cookie.contains("; Secure"), secure, "{url}: {cookie}");
    }
}
