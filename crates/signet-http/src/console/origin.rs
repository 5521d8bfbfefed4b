//! Refuses console form posts that the browser says came from another site. Every form of a
//! session carries its CSRF token; the sign-in form cannot (there is no session yet), so a page
//! elsewhere could sign a visitor's browser in as somebody else (login CSRF). Browsers name
//! where a request came from (`Sec-Fetch-Site`, or `Origin` in older ones); a post from another
//! site or a sandboxed page is refused, audited, before the handler runs. Callers that are not
//! browsers send neither header and are not affected.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use signet_core::audit::{AuditEvent, event};

use crate::oauth::client_auth::operator_refusal;
use crate::request::Caller;
use crate::state::AppState;

/// The layer on the console's routes: posts from another site are refused with 403.
pub(super) async fn same_origin_posts(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != axum::http::Method::POST
        || !cross_site(request.headers(), request.uri(), &state.issuer)
    {
        return next.run(request).await;
    }
    let (parts, _) = request.into_parts();
    let caller = Caller::from_parts(&parts, &state);
    // Counted towards the address's lock at the operators' surfaces: a flood of such posts
    // (a header anyone can send) is recorded up to the threshold, then only refused.
    if operator_refusal(&state, &caller).is_none() {
        let event = AuditEvent::failure(event::CONSOLE, "cross_site_request")
            .with_source(caller.source(), caller.user_agent.as_deref());
        let _ = state.store.audit().record(event).await;
    }
    (
        StatusCode::FORBIDDEN,
        super::message_page(
            "This form was sent from another site. Open the console directly and try again.",
        ),
    )
        .into_response()
}

/// Whether the browser says the request came from somewhere other than the console's own
/// origin. `Sec-Fetch-Site` decides when present (`same-site` is refused too: a sibling
/// subdomain is another origin); otherwise `Origin`, which must name this server (its `Host`)
/// or the configured issuer.
fn cross_site(headers: &HeaderMap, uri: &Uri, issuer: &str) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return !matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    // `null` (a sandboxed frame, a `data:` page) and anything unreadable are another site.
    let Some((scheme, authority)) = origin.to_str().ok().and_then(|o| o.split_once("://")) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()));
    let issuer_origin = issuer
        .split_once("://")
        .map(|(s, rest)| (s, rest.split('/').next().unwrap_or_default()));
    let same_host = host.is_some_and(|h| h.eq_ignore_ascii_case(authority));
    let same_issuer =
        issuer_origin.is_some_and(|(s, a)| s == scheme && a.eq_ignore_ascii_case(authority));
    !(same_host || same_issuer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().expect("value"));
        }
        map
    }

    fn judged(pairs: &[(&'static str, &'static str)]) -> bool {
        let uri: Uri = "/console/login".parse().expect("uri");
        cross_site(&headers(pairs), &uri, "https://signet.example.com")
    }

    #[test]
    fn fetch_metadata_decides_when_present() {
        assert!(!judged(&[("sec-fetch-site", "same-origin")]));
        assert!(!judged(&[("sec-fetch-site", "none")]));
        assert!(judged(&[("sec-fetch-site", "cross-site")]));
        assert!(judged(&[("sec-fetch-site", "same-site")]));
        // An Origin that would pass does not overrule it.
        assert!(judged(&[
            ("sec-fetch-site", "cross-site"),
            ("host", "signet.example.com"),
            ("origin", "https://signet.example.com"),
        ]));
    }

    #[test]
    fn origin_must_name_this_server_or_the_issuer() {
        assert!(!judged(&[]), "not a browser");
        assert!(!judged(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080")
        ]));
        assert!(!judged(&[
            ("host", "signet:8080"),
            ("origin", "https://signet.example.com")
        ]));
        assert!(judged(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://evil.example")
        ]));
        assert!(judged(&[("host", "127.0.0.1:8080"), ("origin", "null")]));
        assert!(judged(&[
            ("host", "signet:8080"),
            ("origin", "http://signet.example.com")
        ]));
    }
}
