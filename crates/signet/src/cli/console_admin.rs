//! The console's first user: `admin`, created at the first start with `SIGNET_ADMIN_PASSWORD`
//! (or `_FILE`), or with a generated password that is printed once.

use signet_core::admin_token::Role;
use signet_core::audit::{AuditEvent, event};
use signet_core::config::Config;
use signet_core::console_user::{self, ConsoleUser, FIRST_ADMIN};
use signet_core::sensitive::Sensitive;
use signet_store::Store;

use super::CliError;

/// Creates `admin` if it does not exist; returns the password to print when it was generated.
pub async fn ensure_first_admin(
    config: &Config,
    store: &Store,
) -> Result<Option<Sensitive>, CliError> {
    let failure = |e: signet_store::StoreError| CliError::failure(e.to_string());
    if store
        .console_user(FIRST_ADMIN)
        .await
        .map_err(failure)?
        .is_some()
    {
        return Ok(None);
    }
    let (password, generated) = match &config.admin_password {
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
