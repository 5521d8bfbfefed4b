//! Parsers for single settings: addresses, the issuer URL, bounded numbers, secrets and their
//! `_FILE` variants, each error naming the setting.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::ConfigError;
use crate::sensitive::Sensitive;

pub(super) fn error(setting: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        setting: setting.to_string(),
        problem: problem.into(),
    }
}

pub(super) fn parse_addr(
    setting: &str,
    value: Option<String>,
    default: &str,
) -> Result<SocketAddr, ConfigError> {
    let value = value.unwrap_or_else(|| default.to_string());
    value.parse().map_err(|_| {
        error(
            setting,
            format!("`{value}` is not an address like {default}"),
        )
    })
}

pub(super) fn validate_issuer(issuer: &str) -> Result<String, ConfigError> {
    let issuer = issuer.trim_end_matches('/');
    let ok = (issuer.starts_with("https://") || issuer.starts_with("http://"))
        && !issuer.contains(['?', '#', ' '])
        && issuer.len() > "http://".len();
    if !ok {
        return Err(error(
            "SIGNET_ISSUER",
            format!("`{issuer}` must be an http(s) URL without query or fragment (RFC 8414 §2)"),
        ));
    }
    Ok(issuer.to_string())
}

pub(super) fn number(
    setting: &str,
    env: &HashMap<String, String>,
    from_file: Option<u64>,
    default: u64,
) -> Result<u64, ConfigError> {
    match env.get(setting).filter(|v| !v.is_empty()) {
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| error(setting, format!("`{v}` is not a whole number"))),
        None => Ok(from_file.unwrap_or(default)),
    }
}

/// A secret from `SIGNET_<NAME>`, `SIGNET_<NAME>_FILE`, or the TOML file's `name` / `name_file`.
pub(super) fn secret(
    env: &HashMap<String, String>,
    name: &str,
    from_file: Option<String>,
    file_path_from_file: Option<String>,
) -> Result<Option<Sensitive>, ConfigError> {
    let var = format!("SIGNET_{name}");
    let file_var = format!("SIGNET_{name}_FILE");
    let direct = env.get(&var).filter(|v| !v.is_empty());
    let path = env.get(&file_var).filter(|v| !v.is_empty());
    match (direct, path) {
        (Some(_), Some(_)) => Err(error(
            &var,
            format!("set either {var} or {file_var}, not both"),
        )),
        (Some(value), None) => Ok(Some(Sensitive::new(value.trim()))),
        (None, Some(path)) => read_secret_file(&file_var, path).map(Some),
        (None, None) => match (from_file, file_path_from_file) {
            (Some(_), Some(_)) => Err(error(
                &name.to_lowercase(),
                "set either the value or the _file setting, not both",
            )),
            (Some(value), None) => Ok(Some(Sensitive::new(value.trim()))),
            (None, Some(path)) => {
                read_secret_file(&format!("{}_file", name.to_lowercase()), &path).map(Some)
            }
            (None, None) => Ok(None),
        },
    }
}

pub(super) fn read_secret_file(setting: &str, path: &str) -> Result<Sensitive, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| error(setting, format!("cannot read `{path}`: {e}")))?;
    let value = text.trim();
    if value.is_empty() {
        return Err(error(setting, format!("`{path}` is empty")));
    }
    Ok(Sensitive::new(value))
}
