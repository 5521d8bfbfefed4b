//! Mutual TLS (RFC 8705) over real TLS connections with generated certificates: every binding
//! kind of `tls_client_auth`, `self_signed_tls_client_auth`, certificate-bound tokens, and each
//! way a certificate is refused, with its audit reason.

mod common;

use std::net::IpAddr;

use common::TestApp;
use common::pki::{Leaf, TestCa, TestCert, client, mtls_token, self_signed};
use rcgen::ExtendedKeyUsagePurpose;
use reqwest::tls::Version;
use serde_json::{Value, json};

/// A server trusting `ca` (and its own agent CA), with extra settings.
async fn app_trusting(ca: &TestCa, dir: &std::path::Path, env: &[(&str, &str)]) -> TestApp {
    let ca_file = dir.join("client-ca.pem");
    std::fs::write(&ca_file, &ca.pem).expect("write CA");
    let ca_file = ca_file.to_string_lossy().to_string();
    let mut all = vec![("SIGNET_CLIENT_CA_FILE", ca_file.as_str())];
    all.extend_from_slice(env);
    TestApp::spawn_with(&all).await
}

async fn tls_agent(app: &TestApp, binding: Value) -> String {
    let mut body = json!({ "name": "mtls", "token_endpoint_auth_method": "tls_client_auth", "scopes": ["read"] });
    for (k, v) in binding.as_object().expect("object") {
        body[k] = v.clone();
    }
    app.create_agent(body).await["agent_id"]
        .as_str()
        .expect("agent_id")
        .to_string()
}

/// Gets a token over mTLS and checks it is bound to `cert`; returns the token.
async fn bound_token(app: &TestApp, cert: &TestCert, chain: &str, agent_id: &str) -> String {
    let client = client(app, Some((cert, chain)), None);
    let response = mtls_token(app, &client, agent_id).await;
    let status = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        status,
        200,
        "{body}; audit: {:?}",
        app.last_token_reason(agent_id).await
    );
    let token = body["access_token"].as_str().expect("token").to_string();
    let claims = common::claims(&token);
    assert_eq!(claims["cnf"]["x5t#S256"], json!(cert.thumbprint()));
    assert_eq!(claims["sub"], json!(agent_id));
    token
}

async fn refused(app: &TestApp, client: &reqwest::Client, agent_id: &str, reason: &str) {
    let response = mtls_token(app, client, agent_id).await;
    assert_eq!(response.status(), 401, "expected refusal for {reason}");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(
        app.last_token_reason(agent_id).await.as_deref(),
        Some(reason),
        "audit reason"
    );
}

#[tokio::test]
async fn every_binding_kind_gets_a_certificate_bound_token() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = TestCa::root("Test Root");
    let intermediate = root.intermediate("Test Issuing CA");
    let app = app_trusting(&root, dir.path(), &[]).await;

    let by_dn = tls_agent(
        &app,
        json!({ "tls_client_auth_subject_dn": "cn=Billing Agent, o=ACME" }),
    )
    .await;
    let cert = root.leaf(&Leaf::named("Billing Agent"));
    let token = bound_token(&app, &cert, "", &by_dn).await;
    // Introspection tells a resource server which certificate the token is bound to.
    let introspected = app.introspect(&token).await;
    assert_eq!(introspected["active"], json!(true));
    assert_eq!(introspected["cnf"]["x5t#S256"], json!(cert.thumbprint()));

    let by_dns = tls_agent(
        &app,
        json!({ "tls_client_auth_san_dns": "billing.agents.example" }),
    )
    .await;
    let cert = intermediate.leaf(&Leaf {
        dns: vec!["billing.agents.example".into()],
        ..Leaf::default()
    });
    // Issued by an intermediate: the client sends the chain, the server trusts only the root.
    bound_token(&app, &cert, &intermediate.pem, &by_dns).await;
    // An operator revokes the intermediate (a compromised issuing CA): what it issued is
    // refused at once, though the leaf itself is not on the list.
    let response = app
        .admin(reqwest::Method::POST, "/api/v1/certificates/revocations")
        .json(&json!({ "thumbprint": intermediate.thumbprint, "reason": "issuing CA compromised" }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 201);
    refused(
        &app,
        &client(&app, Some((&cert, &intermediate.pem)), None),
        &by_dns,
        "certificate_revoked",
    )
    .await;

    let spiffe = "spiffe://acme.example/ns/prod/sa/billing";
    let by_uri = tls_agent(&app, json!({ "tls_client_auth_san_uri": spiffe })).await;
    let cert = root.leaf(&Leaf {
        uris: vec![spiffe.into()],
        ..Leaf::default()
    });
    bound_token(&app, &cert, "", &by_uri).await;

    let by_ip = tls_agent(&app, json!({ "tls_client_auth_san_ip": "10.1.2.3" })).await;
    let cert = root.leaf(&Leaf {
        ips: vec!["10.1.2.3".parse::<IpAddr>().expect("ip")],
        ..Leaf::default()
    });
    bound_token(&app, &cert, "", &by_ip).await;

    let by_email = tls_agent(
        &app,
        json!({ "tls_client_auth_san_email": "billing@Agents.Example" }),
    )
    .await;
    let cert = root.leaf(&Leaf {
        emails: vec!["billing@agents.example".into()],
        ..Leaf::default()
    });
    bound_token(&app, &cert, "", &by_email).await;

    // Metadata advertises bound tokens and where the mTLS endpoints are.
    let metadata = app
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(
        metadata["tls_client_certificate_bound_access_tokens"],
        json!(true)
    );
    let tls_url = app.tls_url.clone().expect("tls");
    assert_eq!(
        metadata["mtls_endpoint_aliases"]["token_endpoint"],
        json!(format!("{tls_url}/oauth2/token"))
    );
    let methods = metadata["token_endpoint_auth_methods_supported"].to_string();
    assert!(
        methods.contains("\"tls_client_auth\"") && methods.contains("self_signed_tls_client_auth")
    );
}

#[tokio::test]
async fn refusals_carry_precise_audit_reasons() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = TestCa::root("Test Root");
    let crl_victim = root.leaf(&Leaf::named("crl-victim"));
    let crl_file = dir.path().join("root.crl");
    std::fs::write(&crl_file, root.crl(&[&crl_victim])).expect("crl");
    let crl = crl_file.to_string_lossy().to_string();
    let app = app_trusting(&root, dir.path(), &[("SIGNET_CLIENT_CRL_FILES", &crl)]).await;
    let agent = tls_agent(
        &app,
        json!({ "tls_client_auth_subject_dn": "CN=alpha,O=Acme" }),
    )
    .await;
    let good = root.leaf(&Leaf::named("alpha"));
    bound_token(&app, &good, "", &agent).await;

    // No certificate at all.
    refused(
        &app,
        &client(&app, None, None),
        &agent,
        "no_client_certificate",
    )
    .await;
    // A certificate from a CA nobody trusts, with the right subject.
    let stranger = TestCa::root("Stranger CA").leaf(&Leaf::named("alpha"));
    refused(
        &app,
        &client(&app, Some((&stranger, "")), None),
        &agent,
        "untrusted_certificate",
    )
    .await;
    // A self-signed certificate with the right subject.
    let forged = self_signed(&Leaf::named("alpha"));
    refused(
        &app,
        &client(&app, Some((&forged, "")), None),
        &agent,
        "untrusted_certificate",
    )
    .await;
    // Expired, and not yet valid.
    let expired = root.leaf(&Leaf {
        valid_from_days: -30,
        valid_until_days: -1,
        ..Leaf::named("alpha")
    });
    refused(
        &app,
        &client(&app, Some((&expired, "")), None),
        &agent,
        "certificate_expired",
    )
    .await;
    let future = root.leaf(&Leaf {
        valid_from_days: 1,
        valid_until_days: 30,
        ..Leaf::named("alpha")
    });
    refused(
        &app,
        &client(&app, Some((&future, "")), None),
        &agent,
        "certificate_not_yet_valid",
    )
    .await;
    // An EKU without clientAuth.
    let server_only = root.leaf(&Leaf {
        eku: vec![ExtendedKeyUsagePurpose::ServerAuth],
        ..Leaf::named("alpha")
    });
    refused(
        &app,
        &client(&app, Some((&server_only, "")), None),
        &agent,
        "certificate_key_usage",
    )
    .await;
    // A certificate from the trusted CA for another agent's subject.
    let other = tls_agent(
        &app,
        json!({ "tls_client_auth_subject_dn": "CN=beta,O=Acme" }),
    )
    .await;
    let beta = root.leaf(&Leaf::named("beta"));
    bound_token(&app, &beta, "", &other).await;
    refused(
        &app,
        &client(&app, Some((&beta, "")), None),
        &agent,
        "certificate_binding_mismatch",
    )
    .await;
    // Listed in the CA's CRL.
    let crl_agent = tls_agent(
        &app,
        json!({ "tls_client_auth_subject_dn": "CN=crl-victim,O=Acme" }),
    )
    .await;
    refused(
        &app,
        &client(&app, Some((&crl_victim, "")), None),
        &crl_agent,
        "certificate_revoked_crl",
    )
    .await;
    // A certificate without client_id.
    let url = app.tls_url.clone().expect("tls");
    let response = client(&app, Some((&good, "")), None)
        .post(format!("{url}/oauth2/token"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 401);

    // Revoked by an operator, by thumbprint: refused at once.
    let response = app
        .admin(reqwest::Method::POST, "/api/v1/certificates/revocations")
        .json(&json!({ "thumbprint": good.thumbprint(), "reason": "laptop stolen" }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 201);
    refused(
        &app,
        &client(&app, Some((&good, "")), None),
        &agent,
        "certificate_revoked",
    )
    .await;
    // By issuer and serial, the way a CA's records name it (colons, upper case).
    let serial_colons = beta
        .serial
        .to_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|c| std::str::from_utf8(c).expect("ascii"))
        .collect::<Vec<_>>()
        .join(":");
    let response = app
        .admin(reqwest::Method::POST, "/api/v1/certificates/revocations")
        .json(&json!({ "issuer": "CN=Test Root", "serial": serial_colons }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    refused(
        &app,
        &client(&app, Some((&beta, "")), None),
        &other,
        "certificate_revoked",
    )
    .await;
    let revocations = app.get_json("/api/v1/certificates/revocations").await;
    assert_eq!(revocations.as_array().map(Vec::len), Some(2));
    let audit = app.audit("event_type=certificate_revoked").await;
    assert_eq!(audit.len(), 2);
    assert_eq!(audit[1]["detail"]["reason"], "laptop stolen");
}

/// RFC 8705 §2.2: a client registers its self-signed certificates with `jwks`, each key carrying
/// its certificate in `x5c`. A key whose members are another key than its certificate's, or
/// without `x5c`, is refused and nothing is created.
#[tokio::test]
async fn a_self_signed_agent_registers_its_certificates_as_a_jwk_set() {
    let app = TestApp::spawn().await;
    let (first, second) = (
        self_signed(&Leaf::named("jwks-1")),
        self_signed(&Leaf::named("jwks-2")),
    );
    let created = app
        .create_agent(json!({
            "name": "self-signed-jwks",
            "token_endpoint_auth_method": "self_signed_tls_client_auth",
            "jwks": { "keys": [first.jwk_with_x5c(), second.jwk_with_x5c()] },
        }))
        .await;
    let agent = created["agent_id"].as_str().expect("id").to_string();
    bound_token(&app, &first, "", &agent).await;
    bound_token(&app, &second, "", &agent).await;
    let listed = app
        .get_json(&format!("/api/v1/agents/{agent}/certificates"))
        .await;
    assert!(listed.to_string().contains(&first.thumbprint()), "{listed}");

    let mut mismatched = first.jwk_with_x5c();
    mismatched["x5c"] = second.jwk_with_x5c()["x5c"].clone();
    // Members that would not parse as a key of their own (`use: enc`) are compared all the same.
    let mut unusable = mismatched.clone();
    unusable["use"] = json!("enc");
    let mut without_x5c = first.jwk_with_x5c();
    without_x5c.as_object_mut().expect("object").remove("x5c");
    let before = app.get_json("/api/v1/agents").await.to_string();
    for (key, why) in [
        (mismatched, "not the key of its `x5c` certificate"),
        (unusable, "not the key of its `x5c` certificate"),
        (without_x5c, "no `x5c` certificate"),
    ] {
        let response = app
            .admin(reqwest::Method::POST, "/api/v1/agents")
            .json(&json!({
                "name": "refused",
                "token_endpoint_auth_method": "self_signed_tls_client_auth",
                "jwks": { "keys": [key] },
            }))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 400);
        let problem: Value = response.json().await.expect("json");
        assert!(
            problem["detail"].as_str().unwrap_or_default().contains(why),
            "{problem}"
        );
    }
    assert_eq!(
        app.get_json("/api/v1/agents").await.to_string(),
        before,
        "nothing created"
    );
}

#[tokio::test]
async fn self_signed_certificates_are_matched_by_thumbprint() {
    let app = TestApp::spawn().await;
    let first = self_signed(&Leaf::named("self-1"));
    let second = self_signed(&Leaf::named("self-2"));
    let created = app
        .create_agent(json!({
            "name": "self-signed",
            "token_endpoint_auth_method": "self_signed_tls_client_auth",
            "certificates": [first.pem],
        }))
        .await;
    let agent = created["agent_id"].as_str().expect("id").to_string();
    bound_token(&app, &first, "", &agent).await;

    // A second certificate, as a JWK with x5c, for rotation: both work.
    use base64::Engine as _;
    let x5c = base64::engine::general_purpose::STANDARD.encode(&second.der);
    let response = app
        .admin(
            reqwest::Method::POST,
            &format!("/api/v1/agents/{agent}/certificates"),
        )
        .json(&json!({ "jwk": { "kty": "EC", "x5c": [x5c] } }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 201);
    bound_token(&app, &second, "", &agent).await;
    bound_token(&app, &first, "", &agent).await;

    // An unregistered certificate, even with the same subject, is refused.
    let impostor = self_signed(&Leaf::named("self-1"));
    refused(
        &app,
        &client(&app, Some((&impostor, "")), None),
        &agent,
        "certificate_not_registered",
    )
    .await;

    // Removing the first ends it at once; the second keeps working.
    let response = app
        .admin(
            reqwest::Method::DELETE,
            &format!("/api/v1/agents/{agent}/certificates/{}", first.thumbprint()),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 204);
    // Still in use somewhere: recognised as stale, and counted on the agent.
    refused(
        &app,
        &client(&app, Some((&first, "")), None),
        &agent,
        "stale_certificate",
    )
    .await;
    let shown = app.get_json(&format!("/api/v1/agents/{agent}")).await;
    assert_eq!(shown["stale_credential_use"][0]["kind"], "certificate");
    assert_eq!(shown["stale_credential_use"][0]["count"], 1);
    bound_token(&app, &second, "", &agent).await;

    // Certificates are only for agents of this method, and private keys are refused.
    let secret_agent = app.secret_agent().await;
    let response = app
        .admin(
            reqwest::Method::POST,
            &format!("/api/v1/agents/{}/certificates", secret_agent.id),
        )
        .json(&json!({ "certificate": first.pem }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 409);
    let response = app
        .admin(
            reqwest::Method::POST,
            &format!("/api/v1/agents/{agent}/certificates"),
        )
        .json(&json!({ "certificate": first.key_pem }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 400);
    let listed = app
        .get_json(&format!("/api/v1/agents/{agent}/certificates"))
        .await;
    assert_eq!(listed["registered"].as_array().map(Vec::len), Some(1));
    assert!(!listed.to_string().contains("PRIVATE KEY"));

    // A NUL in the subject ("bank\0.evil") is stored and shown escaped, on either database
    // (PostgreSQL text refuses a NUL), and the certificate works.
    let nul = self_signed(&Leaf::named("bank\0.evil"));
    let response = app
        .admin(
            reqwest::Method::POST,
            &format!("/api/v1/agents/{agent}/certificates"),
        )
        .json(&json!({ "certificate": nul.pem }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 201);
    let listed = app
        .get_json(&format!("/api/v1/agents/{agent}/certificates"))
        .await;
    let subjects: Vec<&str> = listed["registered"]
        .as_array()
        .expect("registered")
        .iter()
        .filter_map(|c| c["subject"].as_str())
        .collect();
    assert!(
        subjects.contains(&r"CN=bank\00.evil,O=Acme"),
        "{subjects:?}"
    );
    bound_token(&app, &nul, "", &agent).await;
}

#[tokio::test]
async fn a_secret_agent_over_mtls_gets_a_bound_token_and_tls_versions_both_work() {
    let app = TestApp::spawn().await;
    let agent = app.secret_agent().await;
    let cert = self_signed(&Leaf::named("any"));
    for version in [Version::TLS_1_2, Version::TLS_1_3] {
        let client = client(&app, Some((&cert, "")), Some(version));
        let url = app.tls_url.clone().expect("tls");
        let response = client
            .post(format!("{url}/oauth2/token"))
            .basic_auth(&agent.id, Some(&agent.secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 200, "{version:?}");
        let body: Value = response.json().await.expect("json");
        let claims = common::claims(body["access_token"].as_str().expect("token"));
        assert_eq!(claims["cnf"]["x5t#S256"], json!(cert.thumbprint()));
    }
    // Without a client certificate the token is not bound.
    let client = client(&app, None, Some(Version::TLS_1_3));
    let url = app.tls_url.clone().expect("tls");
    let response = client
        .post(format!("{url}/oauth2/token"))
        .basic_auth(&agent.id, Some(&agent.secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("send");
    let body: Value = response.json().await.expect("json");
    assert!(
        common::claims(body["access_token"].as_str().expect("token"))
            .get("cnf")
            .is_none()
    );
    // A tls_client_auth agent over plain HTTP has no certificate to show.
    let mtls_agent = tls_agent(&app, json!({})).await;
    let response = app
        .post_form(
            "/oauth2/token",
            None,
            &format!("grant_type=client_credentials&client_id={mtls_agent}"),
        )
        .await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        app.last_token_reason(&mtls_agent).await.as_deref(),
        Some("no_client_certificate")
    );
}
