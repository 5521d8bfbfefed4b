//! Loading: defaults, precedence, secret files, and errors that name the setting.
use super::*;

fn load(env: &[(&str, &str)], file: Option<&str>) -> Result<Config, ConfigError> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::load(Sources {
        file: file.map(|f| (Path::new("signet.toml"), f.to_string())),
        env: &env,
    })
}

#[test]
fn defaults_match_the_spec() {
    let config = load(&[], None).expect("defaults are valid");
    assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(
        config.tls_listen.map(|a| a.to_string()).as_deref(),
        Some("127.0.0.1:8443")
    );
    assert_eq!(config.mtls.agent_cert_ttl, 86_400);
    assert_eq!(config.token_signing_alg, SigningAlgorithm::Es256);
    assert_eq!(config.access_token_ttl, 600);
    assert_eq!(config.database_url(), "sqlite://./signet-data/signet.db");
}

#[test]
fn environment_overrides_the_file() {
    let config = load(
        &[("SIGNET_ACCESS_TOKEN_TTL", "120")],
        Some("access_token_ttl = 300\ntoken_signing_alg = \"EdDSA\""),
    )
    .expect("valid");
    assert_eq!(config.access_token_ttl, 120);
    assert_eq!(config.token_signing_alg, SigningAlgorithm::EdDsa);
}

#[test]
fn secrets_come_from_files() {
    let dir = std::env::temp_dir().join(format!("signet-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let path = dir.join("token");
    std::fs::write(&path, "0123456789abcdef0123456789abcdef\n").expect("write");
    let config = load(
        &[("SIGNET_ADMIN_TOKEN_FILE", path.to_str().expect("utf8"))],
        None,
    )
    .expect("valid");
    assert_eq!(
        config
            .admin_token
            .map(|t| t.expose().to_string())
            .as_deref(),
        Some("0123456789abcdef0123456789abcdef")
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn errors_name_the_setting() {
    type Case<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>, &'a str);
    let cases: &[Case] = &[
        (&[("SIGNET_LISTEN", "localhost")], None, "SIGNET_LISTEN"),
        (
            &[("SIGNET_TOKEN_SIGNING_ALG", "HS256")],
            None,
            "SIGNET_TOKEN_SIGNING_ALG",
        ),
        (
            &[("SIGNET_ACCESS_TOKEN_TTL", "ten")],
            None,
            "SIGNET_ACCESS_TOKEN_TTL",
        ),
        (
            &[("SIGNET_ACCESS_TOKEN_TTL", "5")],
            None,
            "SIGNET_ACCESS_TOKEN_TTL",
        ),
        (&[("SIGNET_ISSUER", "ftp://x")], None, "SIGNET_ISSUER"),
        (
            &[("SIGNET_ADMIN_TOKEN", "short")],
            None,
            "SIGNET_ADMIN_TOKEN",
        ),
        (
            &[
                ("SIGNET_ADMIN_TOKEN", "a"),
                ("SIGNET_ADMIN_TOKEN_FILE", "/x"),
            ],
            None,
            "SIGNET_ADMIN_TOKEN",
        ),
        (
            &[("SIGNET_MASTER_KEY_FILE", "/nonexistent/key")],
            None,
            "SIGNET_MASTER_KEY_FILE",
        ),
        (
            &[("SIGNET_DATABASE_URL", "mysql://x")],
            None,
            "SIGNET_DATABASE_URL",
        ),
        (&[], Some("listen_addr = \"x\""), "signet.toml"),
    ];
    for (env, file, setting) in cases {
        let err = load(env, *file).expect_err("invalid");
        assert_eq!(err.setting, *setting, "{err}");
    }
}
