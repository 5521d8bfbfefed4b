//! The subcommands, and the exit codes scripts can rely on:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | any other failure (configuration, files, startup) |
//! | 2 | wrong command-line usage |
//! | 3 | authentication failed (admin token or agent credentials refused) |
//! | 4 | not found |
//! | 5 | server unreachable or unavailable (connection refused, 5xx, 503) |
//! | 6 | the server refused the request (validation, `invalid_scope`, …) |

pub mod admin_api;
pub mod admin_token;
pub mod agent;
pub mod audit;
pub mod audit_sink;
pub mod cert;
pub mod client;
pub mod console_admin;
pub mod housekeeping;
pub mod serve;
pub mod signing_key;
pub mod token;
pub mod token_rotation;

pub const EXIT_FAILURE: u8 = 1;
pub const EXIT_AUTH: u8 = 3;
pub const EXIT_NOT_FOUND: u8 = 4;
pub const EXIT_UNAVAILABLE: u8 = 5;
pub const EXIT_REFUSED: u8 = 6;

/// A command failure: what to tell the person, and the exit code.
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub code: u8,
}

impl CliError {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code,
        }
    }

    pub fn failure(message: impl Into<String>) -> Self {
        Self::new(EXIT_FAILURE, message)
    }
}

/// Reads `SIGNET_<NAME>` or the file named by `SIGNET_<NAME>_FILE`.
pub fn env_secret(name: &str) -> Result<Option<String>, CliError> {
    let direct = std::env::var(format!("SIGNET_{name}"))
        .ok()
        .filter(|v| !v.is_empty());
    let file = std::env::var(format!("SIGNET_{name}_FILE"))
        .ok()
        .filter(|v| !v.is_empty());
    match (direct, file) {
        (Some(_), Some(_)) => Err(CliError::failure(format!(
            "set either SIGNET_{name} or SIGNET_{name}_FILE, not both"
        ))),
        (Some(value), None) => Ok(Some(value.trim().to_string())),
        (None, Some(path)) => std::fs::read_to_string(&path)
            .map(|v| Some(v.trim().to_string()))
            .map_err(|e| {
                CliError::failure(format!("SIGNET_{name}_FILE: cannot read `{path}`: {e}"))
            }),
        (None, None) => Ok(None),
    }
}

/// Writes `bytes` to `path` atomically (a temporary file renamed over it) with mode 0600, so a
/// reader never sees half a key and no one else can read it. The temporary file has a random
/// name and is created new (never a file or link someone put there first), and is removed if
/// the write fails; the directory is flushed so the rename survives a crash.
pub fn write_private(path: &std::path::Path, bytes: &[u8]) -> Result<(), CliError> {
    use std::io::Write;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let suffix: [u8; 6] = signet_core::crypto::random_bytes();
    let temporary = path.with_file_name(format!(
        ".{file_name}.{}.tmp",
        signet_core::encoding::b64url(suffix)
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options
        .open(&temporary)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&temporary, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(CliError::failure(format!(
            "cannot write {}: {e}",
            path.display()
        )));
    }
    if let Some(directory) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::File::open(directory).and_then(|d| d.sync_all());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::write_private;

    #[cfg(unix)]
    #[test]
    fn private_files_replace_what_was_there_and_leave_no_temporary_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("agent.key");
        std::fs::write(&path, "old").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        // A link planted where a predictable temporary file would have gone is not followed.
        let elsewhere = dir.path().join("elsewhere");
        std::os::unix::fs::symlink(&elsewhere, dir.path().join(".agent.key.tmp")).expect("link");
        write_private(&path, b"new").expect("written");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "new");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!elsewhere.exists());
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names.len(),
            2,
            "the key and the planted link only: {names:?}"
        );
        // A failed write leaves nothing behind.
        assert!(write_private(&dir.path().join("missing/agent.key"), b"x").is_err());
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 2);
    }
}
