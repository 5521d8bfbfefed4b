//! Access tokens: the `client_credentials` grant's rules (scope and audience selection), the
//! RFC 9068 claims, and the keys that sign and verify them.

pub mod claims;
pub mod grant;
pub mod signer;
pub mod verify;

pub use claims::AccessTokenClaims;
pub use grant::{TokenError, TokenRequest, grant};
pub use signer::{KeyError, SigningAlgorithm, SigningKey};
pub use verify::{VerifyError, verify_access_token};
