//! The console's first user: `admin`, created at the first start with `SIGNET_ADMIN_PASSWORD`
//! (or `_FILE`), or with a generated password that is printed once. Only while the console has
//! no users at all: an `admin` that operators deleted (to retire a shared account) stays deleted
//! across restarts.

use signet_core::admin_token::Role;
use signet_core::audit::{AuditEvent, event};
use signet_core::console_user::{self, ConsoleUser, FIRST_ADMIN};
use signet_core::sensitive::Sensitive;
use signet_store::Store;

use super::CliError;

/// Creates `admin` with the `configured` password (or a generated one) if the console has no
/// users; returns the password to print when it was generated.
pub async fn ensure_first_admin(
    configured: Option<&Sensitive>,
    store: &Store,
) -> Result<Option<Sensitive>, CliError> {
    let failure = |e: signet_store::StoreError| CliError::failure(e.to_string());
    if !store.console_users().await.map_err(failure)?.is_empty() {
        return Ok(None);
    }
    let (password, generated) = match configured {
        Some(password) => (password.clone(), false),
        None => (console_user::generate_password(), true),
    };
    let user = ConsoleUser {
        username: FIRST_ADMIN.to_owned(),
        role: Role::Admin,
        password_hash: console_user::hash_password(password.expose()).map_err(CliError::failure)?,
        created_at: signet_core::now(),
        created_by: "signet".to_owned(),
    };
    let audit = AuditEvent::success(event::CONSOLE_USER_CREATED)
        .with_actor("signet")
        .with_detail(
            serde_json::json!({ "username": FIRST_ADMIN, "role": "admin", "first_start": true }),
        );
    // Another node may have created it at the same moment: then its password stands.
    let created = store
        .insert_console_user(&user, audit)
        .await
        .map_err(failure)?;
    Ok((created && generated).then_some(password))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_deleted_admin_is_not_created_again() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("signet.db").display());
        let (master, _) = signet_core::crypto::MasterKey::generate();
        let store = Store::open(&url, master.audit_key())
            .await
            .expect("the store opens");
        let generated = ensure_first_admin(None, &store).await.expect("created");
        assert!(generated.is_some(), "a generated password to print");
        assert!(
            ensure_first_admin(None, &store)
                .await
                .expect("checked")
                .is_none()
        );
        let ops = ConsoleUser {
            username: "ops".to_owned(),
            ..store
                .console_user(FIRST_ADMIN)
                .await
                .expect("read")
                .expect("admin exists")
        };
        let audit = || AuditEvent::success(event::CONSOLE_USER_CREATED).with_actor("test");
        assert!(store.insert_console_user(&ops, audit()).await.expect("ops"));
        assert!(
            store
                .delete_console_user(FIRST_ADMIN, audit())
                .await
                .expect("deleted")
        );
        // The next start (with a configured password, too) leaves it deleted.
        let configured = Sensitive::new("a-configured-password".to_owned());
        let again = ensure_first_admin(Some(&configured), &store)
            .await
            .expect("checked");
        assert!(again.is_none());
        assert!(
            store
                .console_user(FIRST_ADMIN)
                .await
                .expect("read")
                .is_none(),
            "admin came back"
        );
    }
}
