//! Agents and their secrets.

use std::sync::Arc;

use signet_core::UnixTime;
use signet_core::agent::{Agent, AgentId};
use signet_core::audit::AuditEvent;
use signet_core::client_auth::{AgentCredentials, StoredSecret};
use signet_core::jwk::{AgentKey, VerifyingKey};
use signet_core::pki::{BindingKind, Certificate, CertificateBinding};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::Store;
use super::statement::Statement;
use crate::StoreError;

/// One page of a listing, with the cursor of the next page if there is one.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

macro_rules! agent_columns {
    () => {
        "agent_id, name, description, status, token_endpoint_auth_method, scopes, audiences, access_token_ttl, allowed_cidrs, jwks_uri, tokens_revoked_before, tls_binding_kind, tls_binding_value, created_at, updated_at"
    };
}

impl Store {
    /// Inserts a new agent and, for a secret agent, its first secret, in one transaction.
    pub async fn create_agent(
        &self,
        agent: &Agent,
        secret: Option<&StoredSecret>,
        keys: &[AgentKey],
        certificates: &[Certificate],
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let insert = sqlx::query(
            "INSERT INTO agents (agent_id, name, description, status, token_endpoint_auth_method, scopes, audiences, access_token_ttl, allowed_cidrs, jwks_uri, tls_binding_kind, tls_binding_value, tls_binding_canonical, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        );
        bind_settings(insert.bind(agent.agent_id.as_str()), agent)
            .bind(agent.created_at)
            .bind(agent.updated_at)
            .execute(&mut *tx)
            .await
            .map_err(binding_conflict)?;
        if let Some(secret) = secret {
            insert_secret(&mut tx, agent.agent_id.as_str(), secret).await?;
        }
        super::agent_keys::insert_keys(&mut tx, agent.agent_id.as_str(), keys).await?;
        super::certificates::insert_certificates(
            &mut tx,
            agent.agent_id.as_str(),
            certificates,
            agent.created_at,
        )
        .await?;
        self.commit_audited(tx, audit).await?;
        // Nodes that were asked for this ID before it existed forget that it did not.
        self.changed(super::Change::Agent(agent.agent_id.to_string()))
            .await;
        Ok(())
    }

    /// Agent lookups that went to the database (cache misses), for metrics.
    pub fn agent_cache_misses(&self) -> u64 {
        self.cache.misses()
    }

    pub async fn find_agent(&self, agent_id: &str) -> Result<Option<Agent>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            agent_columns!(),
            " FROM agents WHERE agent_id = $1"
        ))
        .bind(agent_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| agent_from_row(&r)).transpose()
    }

    /// The agent with its secrets, from the cache or else the database (then cached).
    pub async fn agent_credentials(
        &self,
        agent_id: &str,
    ) -> Result<Option<Arc<AgentCredentials>>, StoreError> {
        if let Some(hit) = self.cache.get(agent_id) {
            return Ok(Some(hit));
        }
        if self.cache.is_absent(agent_id) {
            return Ok(None);
        }
        // One read per agent at a time; who waited finds it cached.
        let loading = self.cache.loading(agent_id);
        let _reading = loading.lock().await;
        if let Some(hit) = self.cache.get(agent_id) {
            return Ok(Some(hit));
        }
        if self.cache.is_absent(agent_id) {
            return Ok(None);
        }
        let generation = self.cache.generation();
        self.cache.count_miss();
        let Some(agent) = self.find_agent(agent_id).await? else {
            self.cache.insert_absent(agent_id, generation);
            return Ok(None);
        };
        let rows = sqlx::query(
            "SELECT secret_hash, created_at, expires_at, replaced_at FROM agent_secrets WHERE agent_id = $1 ORDER BY id",
        )
        .bind(agent_id)
        .fetch_all(&self.pool)
        .await?;
        let secrets = rows
            .iter()
            .map(|r| {
                let hash: Vec<u8> = r.try_get("secret_hash")?;
                let hash: [u8; 32] = hash
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("secret hash length".into()))?;
                Ok(StoredSecret {
                    hash,
                    created_at: r.try_get("created_at")?,
                    expires_at: r.try_get("expires_at")?,
                    replaced_at: r.try_get("replaced_at")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let keys = self
            .agent_keys(agent_id)
            .await?
            .iter()
            .map(|k| {
                VerifyingKey::new(k)
                    .map(Arc::new)
                    .map_err(|e| StoreError::Corrupt(format!("agent_keys.{}: {e}", k.kid)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let certificates = self.registered_certificates(agent_id).await?;
        let removed_certificates = self.removed_certificates(agent_id).await?;
        let credentials = Arc::new(AgentCredentials {
            agent,
            secrets,
            keys,
            certificates,
            removed_certificates,
        });
        self.cache.insert(credentials.clone(), generation);
        Ok(Some(credentials))
    }

    /// Agents ordered by ID, optionally filtered by a case-insensitive search over ID, name and
    /// description; `after` is the cursor returned with the previous page.
    pub async fn list_agents(
        &self,
        search: Option<&str>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page<Agent>, StoreError> {
        let mut query = Statement::new(concat!(
            "SELECT ",
            agent_columns!(),
            " FROM agents WHERE 1 = 1"
        ));
        if let Some(search) = search.filter(|s| !s.is_empty()) {
            let pattern = format!(
                "%{}%",
                search
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            );
            // Case-insensitive on both databases (SQLite's LIKE is, PostgreSQL's is not).
            let pattern = pattern.to_lowercase();
            query
                .push(" AND (LOWER(agent_id) LIKE ")
                .bind(pattern.clone())
                .push(" ESCAPE '\\' OR LOWER(name) LIKE ")
                .bind(pattern.clone())
                .push(" ESCAPE '\\' OR LOWER(description) LIKE ")
                .bind(pattern)
                .push(" ESCAPE '\\')");
        }
        if let Some(after) = after {
            query.push(" AND agent_id > ").bind(after.to_string());
        }
        query
            .push(" ORDER BY agent_id LIMIT ")
            .bind(i64::from(limit) + 1);
        let rows = query.query()?.fetch_all(&self.pool).await?;
        let mut items = rows
            .iter()
            .map(agent_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|a| a.agent_id.to_string())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// Reads the agent and writes what `modify` makes of it in one write transaction, so that
    /// no other change of the agent (a disable at the same moment) is lost between the read and
    /// the write. `modify` answers the changed agent and its audit record, or `None` for no
    /// change. `Ok(false)`: no such agent.
    pub async fn modify_agent<E: From<StoreError>>(
        &self,
        agent_id: &str,
        modify: impl FnOnce(&Agent) -> Result<Option<(Agent, AuditEvent)>, E>,
    ) -> Result<bool, E> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(concat!(
            "SELECT ",
            agent_columns!(),
            " FROM agents WHERE agent_id = $1"
        ))
        .bind(agent_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::from)?;
        let Some(current) = row.map(|r| agent_from_row(&r)).transpose()? else {
            return Ok(false);
        };
        // Nothing to change: the transaction is dropped, which rolls it back.
        let Some((updated, audit)) = modify(&current)? else {
            return Ok(true);
        };
        write_agent(&mut tx, &updated).await?;
        self.commit_audited(tx, audit).await?;
        self.changed(super::Change::Agent(agent_id.to_string()))
            .await;
        Ok(true)
    }

    /// Deletes an agent and its credentials, with its audit record; `false` if there was none.
    pub async fn delete_agent(
        &self,
        agent_id: &str,
        audit: AuditEvent,
    ) -> Result<bool, StoreError> {
        let change = sqlx::query("DELETE FROM agents WHERE agent_id = $1").bind(agent_id);
        let deleted = self.execute_audited(change, audit).await?;
        self.changed(super::Change::Agent(agent_id.to_string()))
            .await;
        Ok(deleted)
    }

    /// Replaces the agent's current secret with `secret`. The old one keeps working for
    /// `grace_seconds` (0: it stops at once); its hash is kept so that later use is recognised as
    /// stale. A secret still in an earlier grace period stops now, so at most two are valid.
    pub async fn replace_secret(
        &self,
        agent_id: &str,
        secret: &StoredSecret,
        now: UnixTime,
        grace_seconds: u64,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE agent_secrets SET replaced_at = $1 WHERE agent_id = $2 AND replaced_at > $3",
        )
        .bind(now)
        .bind(agent_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE agent_secrets SET replaced_at = $1 WHERE agent_id = $2 AND replaced_at IS NULL",
        )
        .bind(now + grace_seconds as i64)
        .bind(agent_id)
        .execute(&mut *tx)
        .await?;
        insert_secret(&mut tx, agent_id, secret).await?;
        self.commit_audited(tx, audit).await?;
        self.changed(super::Change::Agent(agent_id.to_string()))
            .await;
        Ok(())
    }
}

async fn insert_secret(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    agent_id: &str,
    secret: &StoredSecret,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO agent_secrets (agent_id, secret_hash, created_at, expires_at, replaced_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(agent_id)
        .bind(&secret.hash[..])
        .bind(secret.created_at)
        .bind(secret.expires_at)
        .bind(secret.replaced_at)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Writes every setting of `agent` (not its credentials) inside `tx`.
async fn write_agent(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    agent: &Agent,
) -> Result<(), StoreError> {
    let update = sqlx::query(
        "UPDATE agents SET name = $1, description = $2, status = $3, token_endpoint_auth_method = $4, scopes = $5, audiences = $6, access_token_ttl = $7, allowed_cidrs = $8, jwks_uri = $9, tls_binding_kind = $10, tls_binding_value = $11, tls_binding_canonical = $12, updated_at = $13 WHERE agent_id = $14",
    );
    bind_settings(update, agent)
        .bind(agent.updated_at)
        .bind(agent.agent_id.as_str())
        .execute(&mut **tx)
        .await
        .map_err(binding_conflict)?;
    Ok(())
}

/// Binds the agent's settings in the order both statements name them: `name` to
/// `tls_binding_canonical`.
fn bind_settings<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    agent: &'q Agent,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    query
        .bind(&agent.name)
        .bind(&agent.description)
        .bind(agent.status.as_str())
        .bind(agent.token_endpoint_auth_method.as_str())
        .bind(json_list(&agent.scopes))
        .bind(json_list(&agent.audiences))
        .bind(agent.access_token_ttl.map(|t| t as i64))
        .bind(json_list(
            &agent
                .allowed_cidrs
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>(),
        ))
        .bind(agent.jwks_uri.as_deref())
        .bind(binding_kind(agent))
        .bind(agent.tls_client_auth.as_ref().map(|b| b.value.as_str()))
        .bind(agent.tls_client_auth.as_ref().map(|b| b.canonical()))
}

fn binding_kind(agent: &Agent) -> Option<&'static str> {
    agent.tls_client_auth.as_ref().map(|b| b.kind.field())
}

/// The unique index on bindings: one certificate name identifies at most one agent.
fn binding_conflict(error: sqlx::Error) -> StoreError {
    // SQLite names the columns in its message; PostgreSQL names the index.
    let duplicate = matches!(&error, sqlx::Error::Database(e)
        if e.is_unique_violation()
            && (e.constraint() == Some("agents_tls_binding")
                || e.message().contains("agents.tls_binding_kind")));
    if duplicate {
        StoreError::Conflict("another agent is already bound to this certificate name".into())
    } else {
        StoreError::from(error)
    }
}

fn json_list(values: &[String]) -> String {
    serde_json::to_string(values).unwrap_or_else(|_| "[]".into())
}

fn parse_list(row: &AnyRow, column: &str) -> Result<Vec<String>, StoreError> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("agents.{column}: {e}")))
}

fn agent_from_row(row: &AnyRow) -> Result<Agent, StoreError> {
    let corrupt = |field: &str, e: String| StoreError::Corrupt(format!("agents.{field}: {e}"));
    let status: String = row.try_get("status")?;
    let method: String = row.try_get("token_endpoint_auth_method")?;
    let ttl: Option<i64> = row.try_get("access_token_ttl")?;
    Ok(Agent {
        agent_id: AgentId::from_string(row.try_get("agent_id")?),
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        status: status
            .parse()
            .map_err(|e: signet_core::agent::AgentError| corrupt("status", e.to_string()))?,
        token_endpoint_auth_method: method.parse().map_err(
            |e: signet_core::agent::AgentError| {
                corrupt("token_endpoint_auth_method", e.to_string())
            },
        )?,
        scopes: parse_list(row, "scopes")?,
        audiences: parse_list(row, "audiences")?,
        access_token_ttl: ttl.map(|t| t as u64),
        allowed_cidrs: parse_list(row, "allowed_cidrs")?
            .iter()
            .map(|c| c.parse().map_err(|e: String| corrupt("allowed_cidrs", e)))
            .collect::<Result<_, _>>()?,
        jwks_uri: row.try_get("jwks_uri")?,
        tokens_revoked_before: row.try_get("tokens_revoked_before")?,
        tls_client_auth: binding_from_row(row)?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn binding_from_row(row: &AnyRow) -> Result<Option<CertificateBinding>, StoreError> {
    let kind: Option<String> = row.try_get("tls_binding_kind")?;
    let value: Option<String> = row.try_get("tls_binding_value")?;
    let (Some(kind), Some(value)) = (kind, value) else {
        return Ok(None);
    };
    let corrupt = |e: String| StoreError::Corrupt(format!("agents.tls_binding: {e}"));
    let kind = BindingKind::from_field(&kind).ok_or_else(|| corrupt(kind.clone()))?;
    CertificateBinding::new(kind, &value)
        .map(Some)
        .map_err(corrupt)
}

impl Store {
    /// Inserts many secret agents in one transaction with multi-row inserts (the load
    /// generator's `seed`; at most a few hundred per call).
    pub async fn seed_agents(&self, agents: &[(Agent, StoredSecret)]) -> Result<(), StoreError> {
        if agents.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_tx().await?;
        let mut insert = Statement::new(
            "INSERT INTO agents (agent_id, name, description, status, token_endpoint_auth_method, scopes, audiences, access_token_ttl, allowed_cidrs, jwks_uri, created_at, updated_at) ",
        );
        insert.push("VALUES ");
        insert.values(agents.iter().map(|(a, _)| a), |row, a| {
            row.bind(a.agent_id.to_string())
                .bind(a.name.clone())
                .bind(a.description.clone())
                .bind(a.status.as_str())
                .bind(a.token_endpoint_auth_method.as_str())
                .bind(json_list(&a.scopes))
                .bind(json_list(&a.audiences))
                .bind(a.access_token_ttl.map(|t| t as i64))
                .bind("[]")
                .bind(a.jwks_uri.clone())
                .bind(a.created_at)
                .bind(a.updated_at);
        });
        insert.query()?.execute(&mut *tx).await?;
        let mut secrets = Statement::new(
            "INSERT INTO agent_secrets (agent_id, secret_hash, created_at, expires_at, replaced_at) ",
        );
        secrets.push("VALUES ");
        secrets.values(agents, |row, (a, s)| {
            row.bind(a.agent_id.to_string())
                .bind(s.hash.to_vec())
                .bind(s.created_at)
                .bind(s.expires_at)
                .bind(s.replaced_at);
        });
        secrets.query()?.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }
}
