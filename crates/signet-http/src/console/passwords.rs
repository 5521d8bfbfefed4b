//! Console password work: Argon2id (19 MiB, two passes: tens of milliseconds of CPU) runs on a
//! blocking thread, one computation at a time per node, never on the async workers that serve
//! tokens, so a burst of sign-ins neither stalls token requests nor takes memory without bound.
//! A check takes its turn, then looks at the lockout again and counts its failure before the
//! next one runs: a burst of concurrent guesses gets no more than the lockout allows.

use std::sync::Arc;
use std::time::Duration;

use signet_core::console_user;
use signet_core::crypto::{random_bytes, sha256};
use signet_core::lockout::LockKind;
use tokio::sync::Semaphore;

use crate::oauth::client_auth::record_lock_events;
use crate::state::AppState;

/// Longest a check waits for its turn before the caller is asked to come back.
const TURN: Duration = Duration::from_secs(10);

/// One Argon2 computation at a time.
pub fn permits() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(1))
}

/// What a password check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    Right,
    Wrong,
    /// Locked when its turn came: retry after this many seconds.
    Locked(i64),
    /// No turn within [`TURN`]: too many checks waiting.
    Busy,
}

/// Checks `password` against the PHC `hash` under the lockout `keys`: refused while locked, a
/// wrong password counted (and a lock it starts audited), a right one clearing the count. The
/// check runs to its end even if the caller goes away, so every guess is counted.
pub(super) async fn check(
    state: &AppState,
    keys: &[(LockKind, &str)],
    password: &str,
    hash: &str,
) -> Verdict {
    let Ok(Ok(turn)) =
        tokio::time::timeout(TURN, state.password_work.clone().acquire_owned()).await
    else {
        return Verdict::Busy;
    };
    let state = state.clone();
    let keys: Vec<(LockKind, String)> = keys.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
    let (password, hash) = (password.to_owned(), hash.to_owned());
    let runtime = tokio::runtime::Handle::current();
    let work = tokio::task::spawn_blocking(move || {
        let _turn = turn;
        let keys: Vec<(LockKind, &str)> = keys.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let now = state.now();
        if let (Some(retry), _) = state.lockouts.check(&keys, now) {
            return Verdict::Locked(retry);
        }
        if console_user::verify_password(&password, &hash) {
            state.lockouts.success(&keys);
            Verdict::Right
        } else {
            let _runtime = runtime.enter();
            record_lock_events(&state, state.lockouts.failure(&keys, now));
            Verdict::Wrong
        }
    });
    work.await.unwrap_or(Verdict::Busy)
}

/// The Argon2id hash of a new password, computed in turn like a check; `None` when no turn came.
pub(super) async fn hash(state: &AppState, password: &str) -> Option<Result<String, String>> {
    let turn = tokio::time::timeout(TURN, state.password_work.clone().acquire_owned())
        .await
        .ok()?
        .ok()?;
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let _turn = turn;
        console_user::hash_password(&password)
    })
    .await
    .ok()
}

/// The name a sign-in is locked and recorded under: the username if the user exists. Otherwise
/// what was typed may be a password in the wrong field, so it is never shown: a digest stands
/// for it (one per typed name, with a salt of this process, so guesses at one unknown name are
/// still limited, and a lock says nothing about whether a name exists).
pub(super) fn sign_in_name(typed: &str, exists: bool) -> String {
    static SALT: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    if exists {
        return typed.to_owned();
    }
    let salt = SALT.get_or_init(random_bytes);
    let digest = sha256(&[salt.as_slice(), typed.as_bytes()].concat());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("unknown-{hex}")
}
