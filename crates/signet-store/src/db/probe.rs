//! The readiness probe's own database connection: a pool whose connections are all busy
//! (a burst of cache misses, a slow admin export) must not read as a database that does not
//! answer, or a load balancer would take a working node out of service just when it is busiest.

use sqlx::{AnyConnection, AssertSqlSafe, Connection, Executor};
use tokio::sync::Mutex;

use crate::StoreError;

#[derive(Debug)]
pub(super) struct Probe {
    url: String,
    /// The statements every connection starts with (the pool's too).
    session: std::sync::Arc<str>,
    connection: Mutex<Option<AnyConnection>>,
}

impl Probe {
    pub(super) fn new(url: String, session: std::sync::Arc<str>) -> Self {
        Self {
            url,
            session,
            connection: Mutex::new(None),
        }
    }

    /// Asks the database for `SELECT 1` on the probe's connection, connecting first if it has
    /// none. The connection is kept only after a complete answer: one whose question was
    /// abandoned (the caller's timeout) or failed is closed, and the next probe connects anew.
    pub(super) async fn ping(&self) -> Result<(), StoreError> {
        let mut slot = self.connection.lock().await;
        let mut connection = match slot.take() {
            Some(connection) => connection,
            None => {
                let mut connection = AnyConnection::connect(&self.url).await?;
                connection
                    .execute(AssertSqlSafe(self.session.to_string()))
                    .await?;
                connection
            }
        };
        connection.execute("SELECT 1").await?;
        *slot = Some(connection);
        Ok(())
    }
}
