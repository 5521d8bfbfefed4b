//! Console sessions: signing in (Argon2id passwords, failures rate-limited per source address
//! and audited), the session cookie (HttpOnly, SameSite=Strict, Secure over HTTPS; only its
//! SHA-256 is stored, so sessions work across nodes), the CSRF token every form carries, and
//! signing out.

use std::sync::OnceLock;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use signet_core::admin_token::Role;
use signet_core::audit::{AuditEvent, event};
use signet_core::console_user;
use signet_core::crypto::{constant_time_eq, random_bytes, sha256};
use signet_core::encoding::b64url;
use signet_core::lockout::LockKind;

use super::passwords::{self, Verdict};
use super::render;
use crate::admin::Admin;
use crate::request::Caller;
use crate::state::AppState;

const COOKIE_NAME: &str = "signet_session";
/// A session ends this long after signing in.
const SESSION_SECONDS: i64 = 8 * 3600;

/// A signed-in user, from the session cookie. Pages that take it need a session; without one
/// the browser is sent to the sign-in page.
#[derive(Debug, Clone)]
pub struct Signed {
    pub username: String,
    pub role: Role,
    pub csrf_token: String,
    pub caller: Caller,
    id_sha256: [u8; 32],
}

impl Signed {
    /// The user as the actor of admin actions: the same domain code as the admin API, audited
    /// as `console:<username>`.
    pub fn admin(&self) -> Admin {
        Admin {
            actor: format!("console:{}", self.username),
            role: self.role,
            caller: self.caller.clone(),
        }
    }

    /// The SHA-256 of this session's cookie, as stored.
    pub fn session_sha256(&self) -> &[u8; 32] {
        &self.id_sha256
    }

    pub fn can_write(&self) -> bool {
        self.role == Role::Admin
    }

    /// Refuses a form whose CSRF token is not this session's (and audits it).
    pub async fn check_csrf(&self, state: &AppState, presented: &str) -> Result<(), Response> {
        if constant_time_eq(presented.as_bytes(), self.csrf_token.as_bytes()) {
            return Ok(());
        }
        let event = AuditEvent::failure(event::CONSOLE, "csrf_token_mismatch")
            .with_actor(&format!("console:{}", self.username))
            .with_source(self.caller.source(), self.caller.user_agent.as_deref());
        let _ = state.store.audit().record(event).await;
        Err(refusal(
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from the console. Reload the page and try again.",
        ))
    }

    /// Checks a form that changes something: its CSRF token, then the user's role.
    pub async fn check_change(&self, state: &AppState, csrf_token: &str) -> Result<(), Response> {
        self.check_csrf(state, csrf_token).await?;
        self.check_write(state).await
    }

    /// Refuses a change by an auditor (read-only), audited.
    pub async fn check_write(&self, state: &AppState) -> Result<(), Response> {
        if self.can_write() {
            return Ok(());
        }
        let event = AuditEvent::failure(event::CONSOLE, "auditor_read_only")
            .with_actor(&format!("console:{}", self.username))
            .with_source(self.caller.source(), self.caller.user_agent.as_deref());
        let _ = state.store.audit().record(event).await;
        Err(refusal(
            StatusCode::FORBIDDEN,
            "Your role is auditor: read-only.",
        ))
    }
}

fn refusal(status: StatusCode, message: &str) -> Response {
    (status, super::message_page(message)).into_response()
}

fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix("signet_session="))
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let to_login = || Redirect::to("/console/login").into_response();
        let Some(cookie) = session_cookie(&parts.headers) else {
            return Err(to_login());
        };
        let id_sha256 = sha256(cookie.as_bytes());
        match state.store.console_session(&id_sha256, state.now()).await {
            Ok(Some(session)) => Ok(Signed {
                username: session.username,
                role: session.role,
                csrf_token: session.csrf_token,
                caller: Caller::from_parts(parts, state),
                id_sha256,
            }),
            Ok(None) => Err(to_login()),
            Err(e) => {
                tracing::error!(error = %e, "console session lookup failed");
                Err(refusal(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The database is unavailable; try again shortly.",
                ))
            }
        }
    }
}

#[derive(askama::Template)]
#[template(path = "console/login.html")]
struct Login {
    user: Option<Signed>,
    error: Option<String>,
    username: String,
}

pub async fn login_page() -> Response {
    render(&Login {
        user: None,
        error: None,
        username: String::new(),
    })
}

#[derive(Debug, Deserialize)]
pub struct Credentials {
    username: String,
    password: String,
}

/// A hash to verify against when the user does not exist, so that an unknown username takes as
/// long as a wrong password. Of a random password: nothing typed matches it.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let random: [u8; 32] = random_bytes();
        console_user::hash_password(&b64url(random)).unwrap_or_default()
    })
}

pub async fn login(
    State(state): State<AppState>,
    caller: Caller,
    axum::Form(form): axum::Form<Credentials>,
) -> Response {
    let now = state.now();
    let source = caller.lock_key();
    let user = match state.store.console_user(&form.username).await {
        Ok(user) => user,
        Err(e) => {
            tracing::error!(error = %e, "console user lookup failed");
            return refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "The database is unavailable; try again shortly.",
            );
        }
    };
    // Locked per address, and per username so that guesses spread over many addresses are
    // slowed too; a name that is no user's is neither recorded nor listed as typed.
    let name = passwords::sign_in_name(&truncate(&form.username), user.is_some());
    let keys = [
        (LockKind::Source, source.as_str()),
        (LockKind::ConsoleUser, name.as_str()),
    ];
    let audit = |outcome: Result<(), &'static str>| {
        let event = match outcome {
            Ok(()) => AuditEvent::success(event::CONSOLE_SIGN_IN),
            Err(reason) => AuditEvent::failure(event::CONSOLE_SIGN_IN, reason),
        };
        event
            .with_actor(&format!("console:{name}"))
            .with_source(caller.source(), caller.user_agent.as_deref())
    };
    let locked = |retry: i64| {
        let mut response = refusal(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many failed sign-ins for this user or from your address. Wait a moment and try again.",
        );
        if let Ok(value) = HeaderValue::from_str(&retry.to_string()) {
            response.headers_mut().insert("retry-after", value);
        }
        response
    };
    // Refused at once while locked, without waiting for a turn at the password work.
    if let (Some(retry), _) = state.lockouts.check(&keys, now) {
        let _ = state.store.audit().record(audit(Err("locked"))).await;
        return locked(retry);
    }
    let hash = user
        .as_ref()
        .map_or(decoy_hash(), |u| u.password_hash.as_str());
    match passwords::check(&state, &keys, &form.password, hash).await {
        Verdict::Right => {}
        Verdict::Locked(retry) => {
            let _ = state.store.audit().record(audit(Err("locked"))).await;
            return locked(retry);
        }
        Verdict::Busy => {
            return refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "Too many sign-ins at once; try again shortly.",
            );
        }
        Verdict::Wrong => {
            let _ = state
                .store
                .audit()
                .record(audit(Err("wrong_credentials")))
                .await;
            let page = Login {
                user: None,
                error: Some("Wrong username or password.".into()),
                username: truncate(&form.username),
            };
            return (StatusCode::UNAUTHORIZED, render(&page)).into_response();
        }
    }
    // A right password for the decoy hash is no user's.
    let Some(user) = user else {
        return refusal(StatusCode::UNAUTHORIZED, "Wrong username or password.");
    };
    let cookie: [u8; 32] = random_bytes();
    let cookie = b64url(cookie);
    let csrf: [u8; 32] = random_bytes();
    if let Err(e) = state
        .store
        .insert_console_session(
            &sha256(cookie.as_bytes()),
            &user.username,
            &b64url(csrf),
            now,
            now + SESSION_SECONDS,
        )
        .await
    {
        tracing::error!(error = %e, "console session could not be stored");
        return refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "The database is unavailable; try again shortly.",
        );
    }
    if state.store.audit().record(audit(Ok(()))).await.is_err() {
        return refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "The database is unavailable; try again shortly.",
        );
    }
    // Secure whenever the browser came over HTTPS: an https issuer (a TLS-terminating proxy),
    // or Signet's own TLS listener.
    let secure = if state.issuer.starts_with("https://") || caller.over_tls {
        "; Secure"
    } else {
        ""
    };
    let mut response = Redirect::to("/console/agents").into_response();
    if let Ok(value) = HeaderValue::from_str(&format!(
        "{COOKIE_NAME}={cookie}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECONDS}{secure}"
    )) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    response
}

/// A form that carries nothing but its CSRF token (sign out, delete, acknowledge).
#[derive(Debug, Default, Deserialize)]
pub struct CsrfOnly {
    /// Missing counts as wrong: refused (403) and audited, not a form error.
    #[serde(default)]
    pub(super) csrf_token: String,
}

/// A form that changes something, from a signed-in user allowed to change things: its CSRF
/// token is the session's (else 403, audited) and the user is an admin (else 403, audited).
/// Only then is the form itself read (400 with the reason if it does not parse). Every
/// state-changing console handler takes it, so none can forget a check.
pub struct Change<T> {
    pub signed: Signed,
    pub form: T,
}

/// A form with no fields besides its CSRF token.
#[derive(Debug, Deserialize)]
pub struct NoFields {}

impl<T: DeserializeOwned> FromRequest<AppState> for Change<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let signed = Signed::from_request_parts(&mut parts, state).await?;
        let bytes = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        let csrf: CsrfOnly = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
        signed.check_change(state, &csrf.csrf_token).await?;
        let form = serde_urlencoded::from_bytes(&bytes).map_err(|e| {
            refusal(
                StatusCode::BAD_REQUEST,
                &format!("The form is incomplete or malformed: {e}."),
            )
        })?;
        Ok(Self { signed, form })
    }
}

pub async fn logout(
    State(state): State<AppState>,
    signed: Signed,
    axum::Form(form): axum::Form<CsrfOnly>,
) -> Response {
    if let Err(refused) = signed.check_csrf(&state, &form.csrf_token).await {
        return refused;
    }
    if let Err(e) = state.store.delete_console_session(&signed.id_sha256).await {
        tracing::error!(error = %e, "console session could not be ended");
        return refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "The database is unavailable; try again shortly.",
        );
    }
    let event = AuditEvent::success(event::CONSOLE_SIGN_OUT)
        .with_actor(&format!("console:{}", signed.username))
        .with_source(signed.caller.source(), signed.caller.user_agent.as_deref());
    let _ = state.store.audit().record(event).await;
    let mut response = Redirect::to("/console/login").into_response();
    response.headers_mut().insert(
        SET_COOKIE,
        HeaderValue::from_static(
            "signet_session=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    response
}

/// At most 64 characters of what someone typed as a username, for records and the form.
fn truncate(text: &str) -> String {
    text.chars().take(64).collect()
}
