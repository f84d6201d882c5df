//! Application services of the control plane: every create, read, update and delete of
//! environments, resources, accounts, API keys, role bindings and ACLs, validated and
//! authorized here, once, whatever the front door (REST today; console and Kafka
//! admin requests later).
//!
//! Layout: [`hasher`] (keyed secret hashing), [`snapshot`] (the in-memory, lock-free
//! view of keys and the compiled authorizer, and the follower that keeps it current),
//! [`service`] (the [`Iam`] service itself), [`password`] (argon2id with bounded
//! concurrency), [`throttle`] (failed-authentication penalties per source).
#![deny(missing_docs)]

pub mod certs;
pub mod gate;
pub mod hasher;
pub mod oauth;
pub mod password;
pub mod quotas;
pub mod seal;
pub mod service;
pub mod snapshot;
pub mod throttle;
pub mod upstream;
pub mod usage;

pub use gate::{Credential, Gate, Session, Unauthenticated};
pub use hasher::{SecretHasher, PEPPER_LEN};
pub use oauth::{Exchange, Issued, JwksStatus, NewPool, NewProvider, OAuthConfig, StsError};
pub use password::PasswordWork;
pub use quotas::{QuotaInput, QuotaLimits, QuotaTable};
pub use service::{
    Caller, Door, Iam, IamConfig, KsqlInput, NewApiKey, NewResource, ResourceChanges,
};
pub use snapshot::{
    Follower, KeyEntry, KeyMap, KeyRejection, OAuthSettings, OAuthState, ScopeCheck, Snapshot,
};
pub use throttle::{Penalty, Throttle, ThrottleConfig};
pub use upstream::{UpstreamInput, UpstreamSecrets, UpstreamView};
pub use usage::UsageRecorder;

/// Types of the store that callers of the IAM service pass or receive: re-exported so
/// that no front door depends on keygate-store (IAM is the one door to it).
pub use keygate_audit::AuditRow;
pub use keygate_core::query::{AclFilter, AuditQuery, ConsoleSession, Patch};

use keygate_store::StoreError;

/// Errors of IAM operations; `keygate-api` maps each to one HTTP status.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IamError {
    /// No or bad credentials.
    #[error("authentication failed")]
    Unauthenticated,
    /// Authenticated, but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// The thing named in the path does not exist.
    #[error("{0} `{1}` was not found")]
    NotFound(&'static str, String),
    /// A field of the request is invalid.
    #[error("{detail}")]
    Invalid {
        /// JSON pointer of the field (`/spec/display_name`) or a query parameter name.
        pointer: String,
        /// What is wrong.
        detail: String,
    },
    /// Conflicts with existing state.
    #[error("{0}")]
    Conflict(String),
    /// The current state does not allow it (the last OrganizationAdmin, its last
    /// credential, an environment that is not empty).
    #[error("{0}")]
    Refused(String),
    /// A quota is reached.
    #[error("number of API keys per owner is currently limited to {0}")]
    QuotaExceeded(u32),
    /// Too much work of this kind at once (password hashing): retry shortly.
    #[error("busy: {0}")]
    Busy(String),
    /// Too many failed attempts from this source: retry after the given time.
    #[error("too many failed attempts; retry in {} s", .0.as_secs().max(1))]
    Throttled(std::time::Duration),
    /// The database is unavailable.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// A bug or corrupt state.
    #[error("internal error: {0}")]
    Internal(String),
}

impl IamError {
    /// An invalid-field error.
    pub fn invalid(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        IamError::Invalid {
            pointer: pointer.into(),
            detail: detail.into(),
        }
    }
}

impl From<StoreError> for IamError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what, id) => IamError::NotFound(what, id),
            StoreError::Conflict(m) => IamError::Conflict(m),
            StoreError::QuotaExceeded(n) => IamError::QuotaExceeded(n),
            StoreError::LastOrgAdmin | StoreError::LastAdminCredential => {
                IamError::Refused(e.to_string())
            }
            StoreError::InUse(m) => IamError::Refused(m),
            StoreError::Database(m) | StoreError::Unavailable(m) => IamError::Unavailable(m),
            other => IamError::Internal(other.to_string()),
        }
    }
}

/// Shorthand.
pub type Result<T, E = IamError> = std::result::Result<T, E>;
