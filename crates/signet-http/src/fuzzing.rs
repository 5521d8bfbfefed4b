//! Entry points for the fuzz targets in `fuzz/` and the corpus regression test, for the parsers
//! this crate owns (the token request form, the `Authorization: Basic` header, admin API JSON
//! bodies); the others are in `signet_core::fuzzing`. None may panic, whatever the bytes.

use crate::admin::admin_tokens::CreateAdminTokenRequest;
use crate::admin::agents::{CreateAgentRequest, PatchAgentRequest};
use crate::admin::certificates::{CertificateRegistration, IssueRequest};
use crate::admin::keys::KeyRegistration;
use crate::admin::revocations::RevokeCertificateRequest;
use crate::oauth::client_auth::parse_basic;
use crate::oauth::form::Form;

/// A token, introspection or revocation request body.
pub fn token_form(data: &[u8]) {
    if let Ok(form) = Form::parse(data) {
        for name in [
            "grant_type",
            "client_id",
            "client_secret",
            "scope",
            "resource",
        ] {
            let _ = form.get(name);
            let _ = form.all(name).count();
        }
    }
}

/// The value of an `Authorization` header sent to the token endpoint.
pub fn basic_header(data: &[u8]) {
    let _ = parse_basic(data);
}

/// A JSON body sent to the admin API, read as each request type (keys parsed as at
/// registration).
pub fn admin_json(data: &[u8]) {
    let _ = serde_json::from_slice::<CreateAgentRequest>(data);
    let _ = serde_json::from_slice::<PatchAgentRequest>(data);
    if let Ok(keys) = serde_json::from_slice::<KeyRegistration>(data) {
        let _ = keys.parse();
    }
    let _ = serde_json::from_slice::<CertificateRegistration>(data);
    let _ = serde_json::from_slice::<IssueRequest>(data);
    let _ = serde_json::from_slice::<RevokeCertificateRequest>(data);
    let _ = serde_json::from_slice::<CreateAdminTokenRequest>(data);
}
