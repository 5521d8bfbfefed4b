//! Certificates for mutual TLS: those registered by `self_signed_tls_client_auth` agents,
//! operator revocations, and the agent CA with the certificates it issued.

use signet_core::UnixTime;
use signet_core::audit::AuditEvent;
use signet_core::client_auth::RegisteredCertificate;
use signet_core::pki::{Certificate, Revocation};
use sqlx::Row;

use super::Store;
use crate::StoreError;

/// At most this many certificates per agent (rotation needs two or three).
pub const MAX_CERTIFICATES_PER_AGENT: usize = 10;

/// A registered certificate with its DER, for admin reads.
#[derive(Debug, Clone)]
pub struct StoredCertificate {
    pub registered: RegisteredCertificate,
    pub der: Vec<u8>,
}

/// An operator revocation as stored.
#[derive(Debug, Clone)]
pub struct RevocationRecord {
    pub id: i64,
    pub revocation: Revocation,
    pub reason: String,
    pub actor: String,
    pub revoked_at: UnixTime,
}

/// The stored agent CA: certificate and sealed PKCS#8 key.
#[derive(Debug, Clone)]
pub struct StoredAgentCa {
    pub certificate: Vec<u8>,
    pub private_key_sealed: Vec<u8>,
    pub created_at: UnixTime,
}

/// A certificate the agent CA issued.
#[derive(Debug, Clone)]
pub struct IssuedRecord {
    pub serial: String,
    pub agent_id: String,
    pub thumbprint: String,
    pub subject: String,
    pub not_before: UnixTime,
    pub not_after: UnixTime,
    pub issued_at: UnixTime,
    pub revoked_at: Option<UnixTime>,
}

impl Store {
    /// Registers certificates with a `self_signed_tls_client_auth` agent, with the audit record.
    pub async fn add_agent_certificates(
        &self,
        agent_id: &str,
        certificates: &[Certificate],
        now: UnixTime,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        insert_certificates(&mut tx, agent_id, certificates, now).await?;
        self.commit_audited(tx, audit).await?;
        self.changed(super::Change::Agent(agent_id.to_string()))
            .await;
        Ok(())
    }

    /// The agent's registered certificates, oldest first.
    pub async fn agent_certificates(
        &self,
        agent_id: &str,
    ) -> Result<Vec<StoredCertificate>, StoreError> {
        let rows = sqlx::query(
            "SELECT thumbprint, der, subject, not_before, not_after, created_at FROM agent_certificates WHERE agent_id = $1 ORDER BY created_at, thumbprint",
        )
        .bind(agent_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredCertificate {
                    registered: RegisteredCertificate {
                        thumbprint: r.try_get("thumbprint")?,
                        subject: r.try_get("subject")?,
                        not_before: r.try_get("not_before")?,
                        not_after: r.try_get("not_after")?,
                        created_at: r.try_get("created_at")?,
                    },
                    der: r.try_get("der")?,
                })
            })
            .collect()
    }

    pub(super) async fn registered_certificates(
        &self,
        agent_id: &str,
    ) -> Result<Vec<RegisteredCertificate>, StoreError> {
        Ok(self
            .agent_certificates(agent_id)
            .await?
            .into_iter()
            .map(|c| c.registered)
            .collect())
    }

    /// Removes a registered certificate, remembering its thumbprint so that later use is
    /// recognised as stale; `false` if the agent had none with this thumbprint.
    pub async fn remove_agent_certificate(
        &self,
        agent_id: &str,
        thumbprint: &str,
        now: UnixTime,
        audit: AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let result =
            sqlx::query("DELETE FROM agent_certificates WHERE agent_id = $1 AND thumbprint = $2")
                .bind(agent_id)
                .bind(thumbprint)
                .execute(&mut *tx)
                .await?;
        if result.rows_affected() == 0 {
            return Ok(false);
        }
        {
            sqlx::query(
                "INSERT INTO removed_certificates (agent_id, thumbprint, removed_at) VALUES ($1, $2, $3) ON CONFLICT (agent_id, thumbprint) DO UPDATE SET removed_at = excluded.removed_at",
            )
            .bind(agent_id)
            .bind(thumbprint)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        self.commit_audited(tx, audit).await?;
        self.changed(super::Change::Agent(agent_id.to_string()))
            .await;
        Ok(true)
    }

    pub(super) async fn removed_certificates(
        &self,
        agent_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT thumbprint FROM removed_certificates WHERE agent_id = $1 ORDER BY removed_at DESC LIMIT 100",
        )
        .bind(agent_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Records an operator revocation; a certificate the agent CA issued is marked revoked too,
    /// so that the CRL lists it. `false` if it was already revoked.
    pub async fn revoke_certificate(
        &self,
        revocation: &Revocation,
        ca_issuer: Option<&str>,
        reason: &str,
        actor: &str,
        now: UnixTime,
        audit: AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let (thumbprint, issuer, serial) = match revocation {
            Revocation::Thumbprint(t) => (Some(t.as_str()), None, None),
            Revocation::IssuerSerial { issuer, serial } => {
                (None, Some(issuer.as_str()), Some(serial.as_str()))
            }
        };
        let inserted = sqlx::query(
            "INSERT INTO revoked_certificates (thumbprint, issuer, serial, reason, actor, revoked_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(thumbprint)
        .bind(issuer)
        .bind(serial)
        .bind(reason)
        .bind(actor)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        match revocation {
            Revocation::Thumbprint(t) => {
                sqlx::query("UPDATE issued_certificates SET revoked_at = $1 WHERE thumbprint = $2 AND revoked_at IS NULL")
                    .bind(now)
                    .bind(t)
                    .execute(&mut *tx)
                    .await?;
            }
            Revocation::IssuerSerial { issuer, serial } if Some(issuer.as_str()) == ca_issuer => {
                sqlx::query("UPDATE issued_certificates SET revoked_at = $1 WHERE serial = $2 AND revoked_at IS NULL")
                    .bind(now)
                    .bind(serial)
                    .execute(&mut *tx)
                    .await?;
            }
            Revocation::IssuerSerial { .. } => {}
        }
        self.commit_audited(tx, audit).await?;
        self.changed(super::Change::Revocations).await;
        Ok(inserted)
    }

    /// Every operator revocation, oldest first.
    pub async fn certificate_revocations(&self) -> Result<Vec<RevocationRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, thumbprint, issuer, serial, reason, actor, revoked_at FROM revoked_certificates ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let thumbprint: Option<String> = r.try_get("thumbprint")?;
                let issuer: Option<String> = r.try_get("issuer")?;
                let serial: Option<String> = r.try_get("serial")?;
                let revocation = match (thumbprint, issuer, serial) {
                    (Some(t), _, _) => Revocation::Thumbprint(t),
                    (None, Some(issuer), Some(serial)) => {
                        Revocation::IssuerSerial { issuer, serial }
                    }
                    _ => {
                        return Err(StoreError::Corrupt(
                            "revoked_certificates: neither thumbprint nor issuer and serial".into(),
                        ));
                    }
                };
                Ok(RevocationRecord {
                    id: r.try_get("id")?,
                    revocation,
                    reason: r.try_get("reason")?,
                    actor: r.try_get("actor")?,
                    revoked_at: r.try_get("revoked_at")?,
                })
            })
            .collect()
    }

    pub async fn agent_ca(&self) -> Result<Option<StoredAgentCa>, StoreError> {
        let row = sqlx::query(
            "SELECT certificate, private_key_sealed, created_at FROM agent_ca WHERE id = 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(StoredAgentCa {
                certificate: r.try_get("certificate")?,
                private_key_sealed: r.try_get("private_key_sealed")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .transpose()
    }

    /// Stores the agent CA unless one exists; returns the one that is stored afterwards, so
    /// that two processes starting at once agree on one CA.
    pub async fn insert_agent_ca(&self, ca: &StoredAgentCa) -> Result<StoredAgentCa, StoreError> {
        sqlx::query(
            "INSERT INTO agent_ca (id, certificate, private_key_sealed, created_at) VALUES (1, $1, $2, $3) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&ca.certificate)
        .bind(&ca.private_key_sealed)
        .bind(ca.created_at)
        .execute(&self.pool)
        .await?;
        self.agent_ca()
            .await?
            .ok_or_else(|| StoreError::Corrupt("agent_ca vanished after insert".into()))
    }

    /// Records a certificate the agent CA issued, with its audit record.
    pub async fn record_issued_certificate(
        &self,
        issued: &IssuedRecord,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO issued_certificates (serial, agent_id, thumbprint, subject, not_before, not_after, issued_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)",
        )
        .bind(&issued.serial)
        .bind(&issued.agent_id)
        .bind(&issued.thumbprint)
        .bind(&issued.subject)
        .bind(issued.not_before)
        .bind(issued.not_after)
        .bind(issued.issued_at)
        .execute(&mut *tx)
        .await?;
        self.commit_audited(tx, audit).await
    }

    /// Certificates the agent CA issued, to one agent or to all, newest first.
    pub async fn issued_certificates(
        &self,
        agent_id: Option<&str>,
    ) -> Result<Vec<IssuedRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT serial, agent_id, thumbprint, subject, not_before, not_after, issued_at, revoked_at FROM issued_certificates WHERE ($1 IS NULL OR agent_id = $1) ORDER BY issued_at DESC, serial LIMIT 1000",
        )
        .bind(agent_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(issued_from_row).collect()
    }

    /// The certificate the agent CA issued with this thumbprint.
    pub async fn issued_certificate(
        &self,
        thumbprint: &str,
    ) -> Result<Option<IssuedRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT serial, agent_id, thumbprint, subject, not_before, not_after, issued_at, revoked_at FROM issued_certificates WHERE thumbprint = $1",
        )
        .bind(thumbprint)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| issued_from_row(&r)).transpose()
    }

    /// Serial and revocation time of every revoked, not yet expired certificate of the agent
    /// CA: the CRL's content.
    pub async fn revoked_issued_certificates(
        &self,
        now: UnixTime,
    ) -> Result<Vec<(String, UnixTime)>, StoreError> {
        let rows = sqlx::query(
            "SELECT serial, revoked_at FROM issued_certificates WHERE revoked_at IS NOT NULL AND not_after > $1 ORDER BY revoked_at, serial",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("serial")?, r.try_get("revoked_at")?)))
            .collect()
    }
}

fn issued_from_row(r: &sqlx::any::AnyRow) -> Result<IssuedRecord, StoreError> {
    Ok(IssuedRecord {
        serial: r.try_get("serial")?,
        agent_id: r.try_get("agent_id")?,
        thumbprint: r.try_get("thumbprint")?,
        subject: r.try_get("subject")?,
        not_before: r.try_get("not_before")?,
        not_after: r.try_get("not_after")?,
        issued_at: r.try_get("issued_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

/// Adds `certificates` to the agent's in `tx`: all or none, at most
/// `MAX_CERTIFICATES_PER_AGENT`, none registered twice.
pub(super) async fn insert_certificates(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    agent_id: &str,
    certificates: &[Certificate],
    now: UnixTime,
) -> Result<(), StoreError> {
    if certificates.is_empty() {
        return Ok(());
    }
    let existing: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM agent_certificates WHERE agent_id = $1")
            .bind(agent_id)
            .fetch_one(&mut **tx)
            .await?;
    if existing as usize + certificates.len() > MAX_CERTIFICATES_PER_AGENT {
        return Err(StoreError::Conflict(format!(
            "an agent may have at most {MAX_CERTIFICATES_PER_AGENT} certificates; remove one first"
        )));
    }
    for certificate in certificates {
        let result = sqlx::query(
            "INSERT INTO agent_certificates (agent_id, thumbprint, der, subject, not_before, not_after, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (agent_id, thumbprint) DO NOTHING",
        )
        .bind(agent_id)
        .bind(&certificate.thumbprint)
        .bind(certificate.der())
        .bind(&certificate.subject_display)
        .bind(certificate.not_before)
        .bind(certificate.not_after)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "the certificate {} is already registered",
                certificate.thumbprint
            )));
        }
    }
    Ok(())
}
