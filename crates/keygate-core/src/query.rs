//! The value types callers pass to read and change state: filters, queries, partial
//! updates, console sessions. They belong to the vocabulary, not to the store, so the
//! store, the IAM service and the front doors share them without a front door
//! depending on the store (ARCHITECTURE.md's layering, checked by
//! `crates/keygate/tests/layering.rs`).

use crate::model::Timestamp;
use crate::{Operation, PatternType, Permission, Principal, ResourceType};

/// Filters for ACLs: every `None` matches anything (Kafka's ANY).
#[derive(Debug, Clone, Default)]
pub struct AclFilter {
    /// Principal.
    pub principal: Option<Principal>,
    /// Resource type.
    pub resource_type: Option<ResourceType>,
    /// Resource name, exactly.
    pub resource_name: Option<String>,
    /// Pattern type.
    pub pattern_type: Option<PatternType>,
    /// Operation.
    pub operation: Option<Operation>,
    /// Permission.
    pub permission: Option<Permission>,
    /// Host, exactly. keygate's ACLs all have host `*`: a filter naming another host
    /// matches none (Kafka's filters match the host literally).
    pub host: Option<String>,
}

impl AclFilter {
    /// Whether the filter can match any ACL at all.
    pub fn matches_some_host(&self) -> bool {
        self.host.as_deref().is_none_or(|h| h == "*")
    }
}

/// Fields of an update; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct Patch {
    /// New display name.
    pub display_name: Option<String>,
    /// New description (service accounts, keys) .
    pub description: Option<String>,
    /// New upstream (resources).
    pub upstream: Option<String>,
    /// New certificate authority settings (certificate identity providers).
    pub certificate: Option<crate::model::CertificateAuthority>,
    /// New upstream connection settings (Kafka clusters), secrets already sealed.
    pub upstream_security: Option<crate::UpstreamSecurity>,
    /// New issuer (identity providers).
    pub issuer: Option<String>,
    /// New JWKS URI (identity providers).
    pub jwks_uri: Option<String>,
    /// New identity claim (providers, pools).
    pub identity_claim: Option<String>,
    /// New filter (pools).
    pub filter: Option<String>,
    /// Enable or disable (providers, pools).
    pub enabled: Option<bool>,
}

/// A query of the audit log. Every `None` matches anything.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Records with a sequence number above this (paging forwards, `tail -f`).
    pub after: Option<i64>,
    /// Records with a sequence number below this (paging backwards).
    pub before: Option<i64>,
    /// At or after this time.
    pub start_time: Option<Timestamp>,
    /// Before this time.
    pub end_time: Option<Timestamp>,
    /// `User:sa-…`.
    pub principal: Option<String>,
    /// `kafka.Authentication`, `CreateAPIKey`, …
    pub method: Option<String>,
    /// The resource name; a trailing `*` matches by prefix.
    pub resource: Option<String>,
    /// Granted or denied.
    pub granted: Option<bool>,
    /// The credential (API key id).
    pub identifier: Option<String>,
    /// Newest first.
    pub descending: bool,
    /// At most this many (capped at 1000).
    pub limit: u32,
}

/// A console session (the cookie value itself is never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    /// SHA-256 of the cookie value.
    pub id_hash: [u8; 32],
    /// The signed-in user.
    pub user_id: String,
    /// The session's CSRF token (sent in every form).
    pub csrf: String,
    /// Signed in at.
    pub created_at: Timestamp,
    /// Ends at.
    pub expires_at: Timestamp,
}
