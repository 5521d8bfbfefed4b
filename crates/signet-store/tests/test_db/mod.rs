//! A fresh database for one test: a SQLite file in a temporary directory, or a new database on
//! the PostgreSQL server named by `SIGNET_TEST_POSTGRES_URL`.
//! Also the helpers the test files share; each file uses some.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use signet_core::agent::NewAgent;
use signet_core::audit::AuditEvent;
use signet_core::client_auth::{AgentSecret, StoredSecret};
use signet_core::crypto::MasterKey;
use signet_store::Store;
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};

pub enum TestDb {
    Sqlite {
        url: String,
        _dir: tempfile::TempDir,
    },
    Postgres {
        url: String,
    },
}

impl TestDb {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        Self::Sqlite {
            url: format!("sqlite://{}", dir.path().join("signet.db").display()),
            _dir: dir,
        }
    }

    /// A new, empty database; `None` (after saying so) when no PostgreSQL server is configured,
    /// unless `SIGNET_REQUIRE_POSTGRES=1`, which `scripts/test` sets.
    pub async fn postgres() -> Option<Self> {
        let Some(admin) = std::env::var("SIGNET_TEST_POSTGRES_URL")
            .ok()
            .filter(|u| !u.is_empty())
        else {
            assert!(
                std::env::var("SIGNET_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "SIGNET_REQUIRE_POSTGRES=1 but SIGNET_TEST_POSTGRES_URL is not set"
            );
            // Written to the process's stderr itself, past the test harness's capture: visible in a
            // plain `cargo test`.
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                b"SKIPPED: no PostgreSQL server (set SIGNET_TEST_POSTGRES_URL, or run scripts/test)\n",
            );
            return None;
        };
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "signet_test_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .subsec_nanos()
        );
        let mut connection = PgConnection::connect(&admin)
            .await
            .expect("connect to SIGNET_TEST_POSTGRES_URL");
        connection
            .execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .expect("create a test database");
        let base = admin
            .rsplit_once('/')
            .map(|(base, _)| base)
            .expect("a URL with a database name");
        Some(Self::Postgres {
            url: format!("{base}/{name}"),
        })
    }

    pub fn url(&self) -> &str {
        match self {
            Self::Sqlite { url, .. } | Self::Postgres { url } => url,
        }
    }
}

/// Runs each named `async fn(TestDb)` twice: `sqlite::NAME` and `postgres::NAME`.
macro_rules! both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(crate::test_db::TestDb::sqlite()).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(db) = crate::test_db::TestDb::postgres().await {
                        super::$name(db).await
                    }
                }
            )*
        }
    };
}
pub(crate) use both_databases;

/// A store on the test database. Every store a test process opens chains audit records under
/// the same key ([`audit_key`]), as the nodes of one cluster do.
pub async fn open(db: &TestDb) -> Store {
    Store::open(db.url(), audit_key())
        .await
        .expect("open store")
}

/// The audit key of this test process's stores.
pub fn audit_key() -> signet_core::crypto::AuditKey {
    static KEY: std::sync::OnceLock<MasterKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| MasterKey::generate().0).audit_key()
}

/// The audit record an admin change is stored with.
pub fn change() -> AuditEvent {
    AuditEvent::success("test_change").with_actor("store-test")
}

/// A valid agent named `name`, not stored.
pub fn agent(name: &str) -> signet_core::agent::Agent {
    NewAgent {
        name: name.into(),
        scopes: Some(vec!["read".into()]),
        ..Default::default()
    }
    .into_agent(1)
    .expect("valid")
}

/// An agent with a secret, created in `store`.
pub async fn stored_agent(store: &Store, name: &str) -> signet_core::agent::Agent {
    let (key, _) = MasterKey::generate();
    let a = agent(name);
    store
        .create_agent(
            &a,
            Some(&StoredSecret::new(&key, &AgentSecret::generate(), 1)),
            &[],
            &[],
            change(),
        )
        .await
        .expect("create");
    a
}
