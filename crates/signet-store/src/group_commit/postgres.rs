//! The group-commit writer on PostgreSQL: a connection of its own, driven by a small runtime on
//! the writer thread. Every node's writer locks the shared chain head (`audit_chain_head`) for
//! its batch, so records from all nodes form one chain; a `jti` is recorded with
//! `ON CONFLICT DO NOTHING`, so of two nodes racing with one assertion exactly one wins.

use std::collections::HashSet;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, Postgres, QueryBuilder, Row};

use signet_core::crypto::AuditKey;

use super::{ChainHead, Sink, Write, chain_next};
use crate::StoreError;

pub(super) struct PostgresSink {
    runtime: tokio::runtime::Runtime,
    options: PgConnectOptions,
    statement_timeout: Duration,
    /// Dropped after a failure; connected again for the next batch.
    connection: Option<PgConnection>,
}

impl PostgresSink {
    /// Prepares the writer; it connects on its own thread, at the first batch.
    pub(super) fn connect(url: &str, statement_timeout: Duration) -> Result<Self, StoreError> {
        let options: PgConnectOptions = url.parse()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| super::failed(format!("cannot start the writer's runtime: {e}")))?;
        Ok(Self {
            runtime,
            options,
            statement_timeout,
            connection: None,
        })
    }
}

impl Sink for PostgresSink {
    fn write(&mut self, key: &AuditKey, batch: &[Write]) -> Result<Vec<bool>, String> {
        let result = self.runtime.block_on(async {
            let connection = match &mut self.connection {
                Some(connection) => connection,
                None => {
                    let mut connection = PgConnection::connect_with(&self.options).await?;
                    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "SET statement_timeout = {0}; SET lock_timeout = {0};",
                        self.statement_timeout.as_millis()
                    )))
                    .execute(&mut connection)
                    .await?;
                    self.connection.insert(connection)
                }
            };
            write_batch(connection, key, batch).await
        });
        result.map_err(|e| {
            self.connection = None;
            e.to_string()
        })
    }
}

async fn write_batch(
    connection: &mut PgConnection,
    key: &AuditKey,
    batch: &[Write],
) -> Result<Vec<bool>, sqlx::Error> {
    let mut tx = connection.begin().await?;
    // Every batch takes the chain head first, so no two writers wait on each other in turn.
    let row = sqlx::query("SELECT last_id, hash FROM audit_chain_head WHERE id = 1 FOR UPDATE")
        .fetch_one(&mut *tx)
        .await?;
    let hash: Vec<u8> = row.try_get("hash")?;
    let mut head = ChainHead {
        id: row.try_get("last_id")?,
        hash: hash
            .try_into()
            .map_err(|_| sqlx::Error::Protocol("the audit chain head is damaged".into()))?,
    };
    let jtis: Vec<_> = batch
        .iter()
        .filter_map(|w| match w {
            Write::Jti(used, _) => Some((&used.agent_id, &used.jti, used.expires_at)),
            Write::Audit(..) => None,
        })
        .collect();
    let mut new_jtis = HashSet::new();
    if !jtis.is_empty() {
        let mut insert =
            QueryBuilder::<Postgres>::new("INSERT INTO used_jtis (agent_id, jti, expires_at) ");
        insert.push_values(jtis, |mut row, (agent_id, jti, expires_at)| {
            row.push_bind(agent_id.as_str())
                .push_bind(jti.as_str())
                .push_bind(expires_at);
        });
        insert.push(" ON CONFLICT (agent_id, jti) DO NOTHING RETURNING agent_id, jti");
        for row in insert.build().fetch_all(&mut *tx).await? {
            new_jtis.insert((row.try_get::<String, _>(0)?, row.try_get::<String, _>(1)?));
        }
    }
    // A `jti` inserted by this batch is new for its first write only.
    let fresh: Vec<bool> = batch
        .iter()
        .map(|w| match w {
            Write::Audit(..) => true,
            Write::Jti(used, _) => new_jtis.remove(&(used.agent_id.clone(), used.jti.clone())),
        })
        .collect();
    let events: Vec<_> = batch
        .iter()
        .zip(&fresh)
        .filter_map(|(w, fresh)| w.record(*fresh))
        .collect();
    if !events.is_empty() {
        let mut insert = QueryBuilder::<Postgres>::new(
            "INSERT INTO audit_events (id, ts_ms, event_type, outcome, reason, agent_id, method, source, user_agent, actor, jti, detail, hash, request_id) ",
        );
        insert.push_values(events, |mut row, e| {
            let (id, detail, hash) = chain_next(key, &head, e);
            head = ChainHead { id, hash };
            row.push_bind(id)
                .push_bind(e.ts_ms)
                .push_bind(e.event_type.as_str())
                .push_bind(e.outcome.as_str())
                .push_bind(e.reason.as_deref())
                .push_bind(e.agent_id.as_deref())
                .push_bind(e.method.as_deref())
                .push_bind(e.source.as_deref())
                .push_bind(e.user_agent.as_deref())
                .push_bind(e.actor.as_deref())
                .push_bind(e.jti.as_deref())
                .push_bind(detail)
                .push_bind(hash.to_vec())
                .push_bind(e.request_id.as_deref());
        });
        insert.build().execute(&mut *tx).await?;
        sqlx::query("UPDATE audit_chain_head SET last_id = $1, hash = $2 WHERE id = 1")
            .bind(head.id)
            .bind(&head.hash[..])
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(fresh)
}
