//! The Signet Console at `/console`: server-rendered HTML (askama templates compiled into the
//! binary), plain forms, and a little JavaScript for copy buttons and confirmation dialogs.
//! Every action goes through the same domain code as the admin API, as the signed-in user
//! (`console:<username>` in audit records). One file per page group.

mod agent;
mod agents;
mod audit;
mod credentials;
mod origin;
mod passwords;
mod session;
mod settings;
mod users;

use askama::Template;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::state::AppState;

/// The console's routes.
pub(crate) use passwords::permits as password_permits;

pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::to("/console/agents") }),
        )
        .route(
            "/console/login",
            get(session::login_page).post(session::login),
        )
        .route("/console/logout", post(session::logout))
        .route("/console/agents", get(agents::list).post(agents::create))
        .route("/console/agents/{agent_id}", get(agent::show))
        .route(
            "/console/agents/{agent_id}/secret/regenerate",
            post(agent::regenerate),
        )
        .route("/console/agents/{agent_id}/edit", post(agent::edit))
        .route("/console/agents/{agent_id}/status", post(agent::status))
        .route("/console/agents/{agent_id}/delete", post(agent::delete))
        .route(
            "/console/agents/{agent_id}/tokens/revoke",
            post(agent::revoke_tokens),
        )
        .route(
            "/console/agents/{agent_id}/keys",
            post(credentials::add_key),
        )
        .route(
            "/console/agents/{agent_id}/keys/{kid}/revoke",
            post(credentials::revoke_key),
        )
        .route(
            "/console/agents/{agent_id}/jwks-uri",
            post(credentials::jwks_uri),
        )
        .route(
            "/console/agents/{agent_id}/binding",
            post(credentials::binding),
        )
        .route(
            "/console/agents/{agent_id}/certificates",
            post(credentials::add_certificate),
        )
        .route(
            "/console/agents/{agent_id}/certificates/{thumbprint}/remove",
            post(credentials::remove_certificate),
        )
        .route(
            "/console/agents/{agent_id}/certificates/revoke",
            post(credentials::revoke_certificate),
        )
        .route(
            "/console/agents/{agent_id}/certificates/issue",
            post(credentials::issue),
        )
        .route("/console/audit", get(audit::audit))
        .route("/console/audit/verify", get(audit::verify))
        .route("/console/alerts", get(audit::alerts))
        .route("/console/alerts/{id}/acknowledge", post(audit::acknowledge))
        .route(
            "/console/settings",
            get(|| async { Redirect::to("/console/settings/users") }),
        )
        .route(
            "/console/settings/signing-keys",
            get(settings::signing_keys),
        )
        .route(
            "/console/settings/signing-keys/rotate",
            post(settings::rotate),
        )
        .route("/console/settings/trusted-cas", get(settings::trusted_cas))
        .route(
            "/console/settings/admin-tokens",
            get(settings::admin_tokens).post(settings::create_admin_token),
        )
        .route(
            "/console/settings/admin-tokens/{name}/revoke",
            post(settings::revoke_admin_token),
        )
        .route(
            "/console/settings/password",
            get(settings::password).post(settings::change_password),
        )
        .route(
            "/console/settings/users",
            get(users::list).post(users::create),
        )
        .route(
            "/console/settings/users/{username}/delete",
            post(users::delete),
        )
        .route("/console/static/console.css", get(stylesheet))
        .route("/console/static/console.js", get(script))
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            origin::same_origin_posts,
        ))
}

/// A page with the console's protective headers: never cached (pages can show a secret once),
/// never framed, scripts and styles from the console itself only.
fn render(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => {
            let mut response = Html(html).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
                ),
            );
            headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            headers.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            );
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "console template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

#[derive(Template)]
#[template(
    source = r#"{% extends "console/base.html" %}{% block title %}Signet{% endblock %}{% block content %}<section class="card narrow"><p role="alert">{{ message }}</p><p><a href="/console/agents">Back to the console</a></p></section>{% endblock %}"#,
    ext = "html"
)]
struct Message<'a> {
    user: Option<session::Signed>,
    message: &'a str,
}

/// 400 for a page that shows why a form was refused, 200 otherwise.
fn status_for(error: &Option<String>) -> StatusCode {
    if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    }
}

/// A form field as typed, trimmed; `None` when left empty.
fn filled(text: &str) -> Option<String> {
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

/// The database did not answer: 503, say so.
fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        message_page("The database is unavailable; try again shortly."),
    )
        .into_response()
}

/// A short page that says what happened (errors, refusals).
fn message_page(message: &str) -> Response {
    render(&Message {
        user: None,
        message,
    })
}

async fn stylesheet() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../assets/console.css"),
    )
}

async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../assets/console.js"),
    )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        body,
    )
        .into_response()
}
