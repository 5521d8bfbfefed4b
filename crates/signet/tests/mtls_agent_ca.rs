//! Signet's agent CA end to end: an operator issues a certificate from a CSR, the agent gets a
//! certificate-bound token with curl and with `signet token`, renews its certificate over
//! mutual TLS, and a revoked certificate is refused and listed in the published CRL.

mod common;

use common::pki::{Leaf, TestCa, client, mtls_token, self_signed};
use common::{ADMIN_TOKEN, TestApp, signet_bin};
use serde_json::{Value, json};
use x509_parser::prelude::FromDer;

/// A new P-256 key and a CSR for it, as `openssl req -new` would make.
fn key_and_csr() -> (String, String) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let mut params = rcgen::CertificateParams::new(vec!["ignored.example".into()]).expect("p");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "CN the agent asked for");
    let csr = params.serialize_request(&key).expect("csr");
    (key.serialize_pem(), csr.pem().expect("pem"))
}

async fn issue(app: &TestApp, agent_id: &str, body: Value) -> reqwest::Response {
    app.admin(
        reqwest::Method::POST,
        &format!("/api/v1/agents/{agent_id}/certificates/issue"),
    )
    .json(&body)
    .send()
    .await
    .expect("send")
}

fn as_cert(pem: &str, key_pem: &str) -> common::pki::TestCert {
    let der = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .expect("pem")
        .1
        .contents;
    common::pki::TestCert {
        pem: pem.to_string(),
        key_pem: key_pem.to_string(),
        der,
        serial: String::new(),
    }
}

async fn tls_agent(app: &TestApp, extra: Value) -> String {
    let mut body = json!({ "name": "ca-agent", "token_endpoint_auth_method": "tls_client_auth", "scopes": ["read"] });
    for (k, v) in extra.as_object().expect("object") {
        body[k] = v.clone();
    }
    app.create_agent(body).await["agent_id"]
        .as_str()
        .expect("id")
        .to_string()
}

#[tokio::test]
async fn issue_renew_revoke_and_the_crl() {
    let app = TestApp::spawn().await;
    let agent = tls_agent(&app, json!({})).await;
    let (key, csr) = key_and_csr();
    let response = issue(
        &app,
        &agent,
        json!({ "csr": csr, "lifetime_seconds": 3600 }),
    )
    .await;
    assert_eq!(response.status(), 201);
    let issued: Value = response.json().await.expect("json");
    let pem = issued["certificate"].as_str().expect("certificate");
    // Signet chose the names, not the CSR.
    let der = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .expect("pem")
        .1
        .contents;
    let (_, parsed) = x509_parser::certificate::X509Certificate::from_der(&der).expect("x509");
    let subject = parsed.subject().to_string();
    assert!(subject.contains(&agent), "{subject}");
    let san = parsed
        .subject_alternative_name()
        .expect("san")
        .expect("present")
        .value
        .general_names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(" ");
    assert!(san.contains(&format!("urn:signet:agent:{agent}")), "{san}");
    assert!(!san.contains("ignored.example"));
    let lifetime =
        parsed.validity().not_after.timestamp() - parsed.validity().not_before.timestamp();
    assert!((3600..=3600 + 600).contains(&lifetime), "{lifetime}");
    let old = as_cert(pem, &key);

    // A certificate-bound token with the issued certificate.
    let response = mtls_token(&app, &client(&app, Some((&old, "")), None), &agent).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    let claims = common::claims(body["access_token"].as_str().expect("token"));
    assert_eq!(claims["cnf"]["x5t#S256"], json!(old.thumbprint()));

    // Renewal over mutual TLS with the current certificate, for a new key.
    let (new_key, new_csr) = key_and_csr();
    let url = app.tls_url.clone().expect("tls");
    let response = client(&app, Some((&old, "")), None)
        .post(format!("{url}/api/v1/self/certificate"))
        .json(&json!({ "csr": new_csr }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 201);
    let renewed: Value = response.json().await.expect("json");
    let new = as_cert(
        renewed["certificate"].as_str().expect("certificate"),
        &new_key,
    );
    assert_ne!(new.thumbprint(), old.thumbprint());
    let response = mtls_token(&app, &client(&app, Some((&new, "")), None), &agent).await;
    assert_eq!(response.status(), 200);

    // Renewal needs a current certificate from the agent CA: none, or a self-signed one, fails.
    for presented in [None, Some(self_signed(&Leaf::named("x")))] {
        let response = client(&app, presented.as_ref().map(|c| (c, "")), None)
            .post(format!("{url}/api/v1/self/certificate"))
            .json(&json!({ "csr": key_and_csr().1 }))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 401);
    }
    let failures = app
        .audit("event_type=certificate_issued&outcome=failure")
        .await;
    assert_eq!(failures.len(), 2);

    // Revoke the old certificate: refused at once, listed in the CRL; the new one still works.
    let response = app
        .admin(reqwest::Method::POST, "/api/v1/certificates/revocations")
        .json(&json!({ "thumbprint": old.thumbprint(), "reason": "superseded" }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 201);
    let response = mtls_token(&app, &client(&app, Some((&old, "")), None), &agent).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        app.last_token_reason(&agent).await.as_deref(),
        Some("certificate_revoked")
    );
    let response = mtls_token(&app, &client(&app, Some((&new, "")), None), &agent).await;
    assert_eq!(response.status(), 200);

    let crl = app
        .http
        .get(format!("{}/pki/agent-ca.crl", app.url))
        .send()
        .await
        .expect("send");
    assert_eq!(crl.status(), 200);
    assert_eq!(crl.headers()["content-type"], "application/pkix-crl");
    let crl = crl.bytes().await.expect("bytes");
    let (_, crl) =
        x509_parser::revocation_list::CertificateRevocationList::from_der(&crl).expect("CRL");
    let revoked: Vec<String> = crl
        .iter_revoked_certificates()
        .map(|r| r.raw_serial_as_string().replace(':', ""))
        .collect();
    let old_serial = issued["serial"].as_str().expect("serial");
    assert!(
        revoked
            .iter()
            .any(|s| s.trim_start_matches('0') == old_serial),
        "{revoked:?} lacks {old_serial}"
    );
    assert_eq!(revoked.len(), 1);
    // The CRL is signed by the CA published next to it.
    let ca_pem = app
        .http
        .get(format!("{}/pki/agent-ca.pem", app.url))
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    let ca_der = x509_parser::pem::parse_x509_pem(ca_pem.as_bytes())
        .expect("pem")
        .1
        .contents;
    let (_, ca) = x509_parser::certificate::X509Certificate::from_der(&ca_der).expect("x509");
    crl.verify_signature(ca.public_key())
        .expect("CRL signed by the agent CA");
    assert_eq!(crl.issuer(), ca.subject());
    let listed = app
        .get_json(&format!("/api/v1/agents/{agent}/certificates"))
        .await;
    assert_eq!(listed["issued"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn issuance_is_refused_for_bad_requests() {
    let app = TestApp::spawn().await;
    let agent = tls_agent(
        &app,
        json!({ "tls_client_auth_subject_dn": "CN=billing,O=Acme" }),
    )
    .await;
    let (_, csr) = key_and_csr();
    // A DN-bound agent gets its DN as the certificate's subject.
    let response = issue(&app, &agent, json!({ "csr": csr })).await;
    assert_eq!(response.status(), 201);
    let issued: Value = response.json().await.expect("json");
    let der =
        x509_parser::pem::parse_x509_pem(issued["certificate"].as_str().expect("pem").as_bytes())
            .expect("pem")
            .1
            .contents;
    let (_, parsed) = x509_parser::certificate::X509Certificate::from_der(&der).expect("x509");
    // x509-parser prints the ASN.1 order, the reverse of the RFC 4514 string.
    assert_eq!(parsed.subject().to_string(), "O=Acme, CN=billing");
    let listed = app
        .get_json(&format!("/api/v1/agents/{agent}/certificates"))
        .await;
    assert_eq!(listed["issued"][0]["subject"], "CN=billing,O=Acme");

    let mut tampered = csr.clone().into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    let cases = [
        json!({ "csr": "not a csr" }),
        json!({ "csr": String::from_utf8(tampered).expect("utf8") }),
        json!({ "csr": csr, "lifetime_seconds": 365 * 86_400 }),
        json!({ "csr": csr, "extra": 1 }),
    ];
    for body in cases {
        let response = issue(&app, &agent, body.clone()).await;
        assert_eq!(response.status(), 400, "{body}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
    let secret_agent = app.secret_agent().await;
    assert_eq!(
        issue(&app, &secret_agent.id, json!({ "csr": csr }))
            .await
            .status(),
        409
    );
    assert_eq!(
        issue(&app, "agt_doesnotexist0000000000", json!({ "csr": csr }))
            .await
            .status(),
        404
    );
    // One certificate name identifies one agent.
    let response = app
        .admin(reqwest::Method::POST, "/api/v1/agents")
        .json(&json!({ "name": "dup", "token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_subject_dn": "cn=Billing, o=ACME" }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 409);
    let response = app
        .admin(reqwest::Method::POST, "/api/v1/agents")
        .json(&json!({ "name": "two", "token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_san_dns": "a.example", "tls_client_auth_san_uri": "urn:x" }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 400);
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn signet(args: &[&str], env: &[(&str, &str)]) -> Run {
    let output = tokio::process::Command::new(signet_bin())
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .await
        .expect("run signet");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The README's flow with curl and the CLI: issue with `signet cert issue`, a bound token with
/// curl over HTTP/2 and with `signet token`, renewal with `signet cert renew`.
#[tokio::test]
async fn the_readme_flow_with_curl_and_the_cli() {
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("SIGNET_REQUIRE_CURL").is_err(),
            "curl is required (scripts/test installs it)"
        );
        eprintln!("SKIPPED: curl is not installed");
        return;
    }
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().expect("tmp");
    let agent = tls_agent(&app, json!({})).await;
    let key = dir.path().join("agent.key");
    let cert = dir.path().join("agent.pem");
    let (key_s, cert_s) = (
        key.to_string_lossy().to_string(),
        cert.to_string_lossy().to_string(),
    );
    let admin = [
        ("SIGNET_URL", app.url.as_str()),
        ("SIGNET_ADMIN_TOKEN", ADMIN_TOKEN),
    ];
    let run = signet(
        &[
            "cert",
            "issue",
            &agent,
            "--key-out",
            &key_s,
            "--out",
            &cert_s,
        ],
        &admin,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("Certificate issued"), "{}", run.stdout);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).expect("key").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    let ca = app
        .data_dir
        .join("tls/dev-ca.pem")
        .to_string_lossy()
        .to_string();
    let tls_url = app.tls_url.clone().expect("tls");
    let output = std::process::Command::new("curl")
        .args([
            "-s",
            "--http2",
            "--cacert",
            &ca,
            "--cert",
            &cert_s,
            "--key",
            &key_s,
            "-w",
            "\n%{http_version}",
            "-d",
            "grant_type=client_credentials",
            "-d",
            &format!("client_id={agent}"),
            &format!("{tls_url}/oauth2/token"),
        ])
        .output()
        .expect("curl");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let (body, version) = stdout.rsplit_once('\n').expect("two parts");
    assert_eq!(version, "2", "curl negotiated HTTP/2 over ALPN");
    let body: Value = serde_json::from_str(body).expect("json");
    let claims = common::claims(body["access_token"].as_str().expect("token"));
    let pem = std::fs::read_to_string(&cert).expect("cert");
    let first = as_cert(&pem, "");
    assert_eq!(claims["cnf"]["x5t#S256"], json!(first.thumbprint()));

    let agent_env = [
        ("SIGNET_URL", app.url.as_str()),
        ("SIGNET_AGENT_ID", agent.as_str()),
        ("SIGNET_AGENT_CERT_FILE", cert_s.as_str()),
        ("SIGNET_AGENT_CERT_KEY_FILE", key_s.as_str()),
        ("SIGNET_CA_FILE", ca.as_str()),
    ];
    let run = signet(&["token", "--claims"], &agent_env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let claims: Value = serde_json::from_str(&run.stdout).expect("claims");
    assert_eq!(claims["cnf"]["x5t#S256"], json!(first.thumbprint()));

    let run = signet(&["cert", "renew"], &agent_env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let renewed = as_cert(&std::fs::read_to_string(&cert).expect("cert"), "");
    assert_ne!(renewed.thumbprint(), first.thumbprint());
    let run = signet(&["token", "--claims"], &agent_env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let claims: Value = serde_json::from_str(&run.stdout).expect("claims");
    assert_eq!(claims["cnf"]["x5t#S256"], json!(renewed.thumbprint()));

    // The operator revokes the renewed certificate from the CLI; the agent is refused.
    let run = signet(
        &["cert", "revoke", "--thumbprint", &renewed.thumbprint()],
        &admin,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = signet(&["token"], &agent_env).await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    let _ = TestCa::root("unused");
}
