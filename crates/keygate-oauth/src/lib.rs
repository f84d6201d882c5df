//! External OAuth for keygate: JWKS parsing, JWT validation, identity-pool filters
//! (CEL) and the STS token service's signing keys.
//!
//! Why a crate of its own: token validation is security-critical and easy to get
//! subtly wrong, so every rule lives here, in one place, testable without a server.
//! Everything except [`fetch`] is pure — time is a parameter, keys are values — so the
//! gateway and the REST API validate the same way, with the same errors, and tests can
//! forge any token they like. The hot path never does I/O: keys come from a
//! [`Directory`] built from the store's snapshot; fetching a JWKS happens beside it.

mod directory;
pub mod fetch;
mod filter;
mod jwks;
mod sts;
mod token;

pub use directory::{AuthError, Directory, Identity, PoolEntry, ProviderEntry};
pub use filter::{Filter, FilterError, MAX_FILTER_CHARS};
pub use jwks::{Jwks, JwksError, PublicKey, MAX_JWKS_BYTES, MAX_JWKS_KEYS};
pub use sts::{StsKey, MAX_STS_LIFETIME_SECS};
pub use token::{claim_at, verify, TokenError, ALLOWED_ALGORITHMS, MAX_TOKEN_BYTES};
