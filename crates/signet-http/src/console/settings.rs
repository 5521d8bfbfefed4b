//! Settings beyond console users: token signing keys and their rotation state (rotate, planned
//! or emergency), the CAs trusted for mutual TLS with the operator's certificate revocations,
//! named admin API tokens (create, shown once; revoke), and changing one's own password.

use axum::extract::{Path, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use signet_core::audit::{AuditEvent, event};
use signet_core::console_user;
use signet_core::lockout::LockKind;

use super::agent::SecretPage;
use super::passwords::{self, Verdict};
use super::render;
use super::session::{Change, NoFields, Signed};
use crate::admin::admin_tokens::{self, AdminTokenView, CreateAdminTokenRequest};
use crate::admin::revocations::{RevocationView, TrustedCaView};
use crate::admin::signing_keys::{self, SigningKeyView};
use crate::admin::{problem::Problem, revocations};
use crate::state::AppState;

#[derive(askama::Template)]
#[template(path = "console/signing_keys.html")]
struct SigningKeysPage {
    user: Option<Signed>,
    section: &'static str,
    keys: Vec<SigningKeyView>,
    can_write: bool,
    csrf_token: String,
    error: Option<String>,
    notice: Option<String>,
}

pub async fn signing_keys(State(state): State<AppState>, signed: Signed) -> Response {
    signing_keys_page(&state, signed, None, None).await
}

async fn signing_keys_page(
    state: &AppState,
    signed: Signed,
    error: Option<String>,
    notice: Option<String>,
) -> Response {
    let Ok(keys) = signing_keys::views(state).await else {
        return super::unavailable();
    };
    let page = SigningKeysPage {
        section: "signing-keys",
        keys,
        can_write: signed.can_write(),
        csrf_token: signed.csrf_token.clone(),
        user: Some(signed),
        notice,
        error: error.clone(),
    };
    (super::status_for(&error), render(&page)).into_response()
}

#[derive(Debug, Deserialize)]
pub struct RotateForm {
    /// `emergency` for a leaked key; anything else is a planned rotation.
    #[serde(default)]
    kind: String,
}

/// Rotates the signing key (through the admin API's own rotation) and says what it means.
pub async fn rotate(
    State(state): State<AppState>,
    Change { signed, form }: Change<RotateForm>,
) -> Response {
    let emergency = form.kind == "emergency";
    match signing_keys::rotate(&signed.admin(), &state, emergency).await {
        Ok(result) => {
            let notice = format!(
                "Rotation {}: key {}. {}.",
                result.outcome, result.kid, result.note
            );
            signing_keys_page(&state, signed, None, Some(notice)).await
        }
        Err(problem) => {
            signing_keys_page(&state, signed, Some(problem.detail().to_owned()), None).await
        }
    }
}

#[derive(askama::Template)]
#[template(path = "console/trusted_cas.html")]
struct TrustedCasPage {
    user: Option<Signed>,
    section: &'static str,
    authorities: Vec<TrustedCaView>,
    crls: usize,
    revocations: Vec<RevocationView>,
    error: Option<String>,
    notice: Option<String>,
}

pub async fn trusted_cas(State(state): State<AppState>, signed: Signed) -> Response {
    let trusted = revocations::trusted(&state);
    let Ok(revocations) = revocations::views(&state).await else {
        return super::unavailable();
    };
    render(&TrustedCasPage {
        user: Some(signed),
        section: "trusted-cas",
        authorities: trusted.authorities,
        crls: trusted.crls,
        revocations,
        error: None,
        notice: None,
    })
}

#[derive(askama::Template)]
#[template(path = "console/admin_tokens.html")]
struct AdminTokensPage {
    user: Option<Signed>,
    section: &'static str,
    tokens: Vec<AdminTokenView>,
    bootstrap_token_active: bool,
    can_write: bool,
    csrf_token: String,
    error: Option<String>,
    notice: Option<String>,
}

pub async fn admin_tokens(State(state): State<AppState>, signed: Signed) -> Response {
    admin_tokens_page(&state, signed, None, None).await
}

async fn admin_tokens_page(
    state: &AppState,
    signed: Signed,
    error: Option<String>,
    notice: Option<String>,
) -> Response {
    let Ok(list) = admin_tokens::list(state).await else {
        return super::unavailable();
    };
    let page = AdminTokensPage {
        section: "admin-tokens",
        tokens: list.items,
        bootstrap_token_active: list.bootstrap_token_active,
        can_write: signed.can_write(),
        csrf_token: signed.csrf_token.clone(),
        user: Some(signed),
        notice,
        error: error.clone(),
    };
    (super::status_for(&error), render(&page)).into_response()
}

#[derive(Debug, Deserialize)]
pub struct NewTokenForm {
    name: String,
    role: String,
    /// Days until it stops working; empty: until revoked.
    #[serde(default)]
    expires_in_days: String,
}

/// Creates a named admin token (through the admin API's own code) and shows it once.
pub async fn create_admin_token(
    State(state): State<AppState>,
    Change { signed, form }: Change<NewTokenForm>,
) -> Response {
    let expires_in_seconds = match form.expires_in_days.trim() {
        "" => None,
        days => match days.parse::<u64>() {
            Ok(days) => Some(days.saturating_mul(86_400)),
            Err(_) => {
                let error = "the lifetime is a whole number of days".to_owned();
                return admin_tokens_page(&state, signed, Some(error), None).await;
            }
        },
    };
    let request = CreateAdminTokenRequest {
        name: form.name,
        role: form.role,
        expires_in_seconds,
    };
    match admin_tokens::create(&signed.admin(), &state, request).await {
        Ok(created) => render(&SecretPage {
            user: Some(signed),
            heading: "Admin token created",
            agent_id: None,
            label: "Admin token",
            secret: created.token,
            note: Some(format!(
                "Send it to the admin API in the header “Authorization: Bearer <token>”; it acts as {} with the {} role.",
                created.view.name, created.view.role
            )),
            back: "/console/settings/admin-tokens".into(),
            back_text: "Back to admin tokens",
        }),
        Err(problem) => {
            admin_tokens_page(&state, signed, Some(problem.detail().to_owned()), None).await
        }
    }
}

pub async fn revoke_admin_token(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Change { signed, .. }: Change<NoFields>,
) -> Response {
    let (error, notice) = outcome(
        admin_tokens::revoke(&signed.admin(), &state, &name).await,
        format!("Admin token {name} revoked; it no longer works."),
    );
    admin_tokens_page(&state, signed, error, notice).await
}

/// A change's result as (error, notice) for the page shown after it.
pub(super) fn outcome(
    result: Result<(), Problem>,
    notice: String,
) -> (Option<String>, Option<String>) {
    match result {
        Ok(()) => (None, Some(notice)),
        Err(problem) => (Some(problem.detail().to_owned()), None),
    }
}

#[derive(askama::Template)]
#[template(path = "console/password.html")]
struct PasswordPage {
    user: Option<Signed>,
    section: &'static str,
    csrf_token: String,
    error: Option<String>,
    notice: Option<String>,
}

pub async fn password(signed: Signed) -> Response {
    password_page(signed, None, None)
}

fn password_page(signed: Signed, error: Option<String>, notice: Option<String>) -> Response {
    let page = PasswordPage {
        section: "password",
        csrf_token: signed.csrf_token.clone(),
        user: Some(signed),
        notice,
        error: error.clone(),
    };
    (super::status_for(&error), render(&page)).into_response()
}

#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf_token: String,
    current_password: String,
    new_password: String,
    confirm_password: String,
}

/// Changes the signed-in user's own password (auditors too: it changes nothing else). The
/// current password is asked for again; the user's other sessions end.
pub async fn change_password(
    State(state): State<AppState>,
    signed: Signed,
    axum::Form(form): axum::Form<PasswordForm>,
) -> Response {
    if let Err(refused) = signed.check_csrf(&state, &form.csrf_token).await {
        return refused;
    }
    let user = match state.store.console_user(&signed.username).await {
        Ok(Some(user)) => user,
        Ok(None) => return password_page(signed, Some("no such user".into()), None),
        Err(_) => return super::unavailable(),
    };
    // Guesses at the current password (with a session that is not its user's) count towards
    // the same lock as sign-ins: per user and per address.
    let source = signed.caller.lock_key();
    let keys = [
        (LockKind::Source, source.as_str()),
        (LockKind::ConsoleUser, signed.username.as_str()),
    ];
    let current_ok = match passwords::check(
        &state,
        &keys,
        &form.current_password,
        &user.password_hash,
    )
    .await
    {
        Verdict::Right => true,
        Verdict::Wrong => false,
        Verdict::Locked(retry) => {
            let error = format!(
                "Too many wrong passwords for this user or from your address: wait {retry} seconds and try again."
            );
            let mut response = password_page(signed, Some(error), None);
            *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            if let Ok(value) = HeaderValue::from_str(&retry.to_string()) {
                response.headers_mut().insert(RETRY_AFTER, value);
            }
            return response;
        }
        Verdict::Busy => return super::unavailable(),
    };
    let checked = if !current_ok {
        Err("the current password is wrong".to_owned())
    } else if form.new_password != form.confirm_password {
        Err("the two new passwords differ".to_owned())
    } else if let Err(weak) = console_user::validate_password(&form.new_password) {
        Err(weak)
    } else {
        match passwords::hash(&state, &form.new_password).await {
            Some(hashed) => hashed,
            None => return super::unavailable(),
        }
    };
    let record = |outcome: Result<(), &'static str>| {
        let event = match outcome {
            Ok(()) => AuditEvent::success(event::CONSOLE_PASSWORD_CHANGED),
            Err(reason) => AuditEvent::failure(event::CONSOLE_PASSWORD_CHANGED, reason),
        };
        event
            .with_actor(&format!("console:{}", signed.username))
            .with_source(signed.caller.source(), signed.caller.user_agent.as_deref())
    };
    let hash = match checked {
        Ok(hash) => hash,
        Err(error) => {
            let reason = if current_ok {
                "weak_password"
            } else {
                "wrong_password"
            };
            let _ = state.store.audit().record(record(Err(reason))).await;
            return password_page(signed, Some(error), None);
        }
    };
    match state
        .store
        .change_console_password(
            &signed.username,
            &hash,
            signed.session_sha256(),
            record(Ok(())),
        )
        .await
    {
        Ok(true) => {}
        Ok(false) => return password_page(signed, Some("no such user".into()), None),
        Err(_) => return super::unavailable(),
    }
    let notice = "Password changed; your other sessions have ended.".to_owned();
    password_page(signed, None, Some(notice))
}
