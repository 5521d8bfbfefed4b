//! Settings → console users: the list, adding a user with a role (`admin` or read-only
//! `auditor`) and a password, and removing one (which ends their sessions). Admins only change.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use signet_core::admin_token::Role;
use signet_core::audit::{AuditEvent, event};
use signet_core::console_user::{self, ConsoleUser};

use super::render;
use super::session::{Change, NoFields, Signed};
use crate::admin::rfc3339;
use crate::state::AppState;

pub(super) struct UserRow {
    username: String,
    role: &'static str,
    created: String,
    created_by: String,
}

#[derive(askama::Template)]
#[template(path = "console/users.html")]
struct Users {
    user: Option<Signed>,
    section: &'static str,
    users: Vec<UserRow>,
    current: String,
    can_write: bool,
    csrf_token: String,
    error: Option<String>,
    notice: Option<String>,
}

pub async fn list(State(state): State<AppState>, signed: Signed) -> Response {
    page(&state, signed, None, None).await
}

async fn page(
    state: &AppState,
    signed: Signed,
    error: Option<String>,
    notice: Option<String>,
) -> Response {
    let users = match state.store.console_users().await {
        Ok(users) => users,
        Err(_) => {
            return super::unavailable();
        }
    };
    let status = super::status_for(&error);
    let template = Users {
        section: "users",
        users: users
            .into_iter()
            .map(|u| UserRow {
                username: u.username,
                role: u.role.as_str(),
                created: rfc3339(u.created_at),
                created_by: u.created_by,
            })
            .collect(),
        current: signed.username.clone(),
        can_write: signed.can_write(),
        csrf_token: signed.csrf_token.clone(),
        user: Some(signed),
        error,
        notice,
    };
    (status, render(&template)).into_response()
}

#[derive(Debug, Deserialize)]
pub struct NewUserForm {
    username: String,
    role: String,
    password: String,
}

pub async fn create(
    State(state): State<AppState>,
    Change { signed, form }: Change<NewUserForm>,
) -> Response {
    let checked = console_user::validate_username(&form.username)
        .and_then(|()| console_user::validate_password(&form.password))
        .and_then(|()| {
            Role::parse(&form.role).ok_or_else(|| "the role is admin or auditor".into())
        });
    let role = match checked {
        Ok(role) => role,
        Err(error) => return page(&state, signed, Some(error), None).await,
    };
    let password_hash = match super::passwords::hash(&state, &form.password).await {
        Some(Ok(hash)) => hash,
        Some(Err(error)) => return page(&state, signed, Some(error), None).await,
        None => return super::unavailable(),
    };
    let user = ConsoleUser {
        username: form.username,
        role,
        password_hash,
        created_at: state.now(),
        created_by: format!("console:{}", signed.username),
    };
    let audit = signed
        .admin()
        .event(event::CONSOLE_USER_CREATED, "")
        .with_agent(None)
        .with_detail(json!({ "username": user.username, "role": role.as_str() }));
    match state.store.insert_console_user(&user, audit).await {
        Ok(true) => {}
        Ok(false) => {
            let error = format!("a user named `{}` exists", user.username);
            return page(&state, signed, Some(error), None).await;
        }
        Err(_) => {
            return super::unavailable();
        }
    }
    let notice = format!(
        "User {} added with the {} role.",
        user.username,
        role.as_str()
    );
    page(&state, signed, None, Some(notice)).await
}

pub async fn delete(
    State(state): State<AppState>,
    Path(username): Path<String>,
    Change { signed, .. }: Change<NoFields>,
) -> Response {
    if username == signed.username {
        let error = "you cannot delete yourself while signed in".to_owned();
        return page(&state, signed, Some(error), None).await;
    }
    let audit = AuditEvent::success(event::CONSOLE_USER_DELETED)
        .with_actor(&format!("console:{}", signed.username))
        .with_source(signed.caller.source(), signed.caller.user_agent.as_deref())
        .with_detail(json!({ "username": username }));
    match state.store.delete_console_user(&username, audit).await {
        Ok(true) => {
            let notice = format!("User {username} deleted; their sessions are over.");
            page(&state, signed, None, Some(notice)).await
        }
        Ok(false) => page(&state, signed, Some("no such user".into()), None).await,
        Err(_) => super::unavailable(),
    }
}
