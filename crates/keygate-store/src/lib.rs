//! Persistence for keygate: one [`Store`] trait, one implementation per database.
//!
//! Every mutating method is one transaction that writes the entity *and* a row in the
//! change log (a monotonic sequence). The change log is how every in-memory snapshot
//! (the gateways' keys and compiled authorizer) follows the database: a follower reads
//! [`Store::changes_since`] after each notification on [`Store::subscribe`], so a missed
//! notification only delays a change, never loses it.
//!
//! Integrity rules that must hold under concurrency live here, inside the transaction:
//! key quota per owner, unique names, "never delete the last OrganizationAdmin",
//! cascading deletes of an account's keys, role bindings and ACLs.
//!
//! Only this crate speaks SQL.
#![deny(missing_docs)]

mod audit_log;
pub mod columns;
pub mod document;
mod engine;
mod postgres;
mod sql;
mod sqlite;

pub use audit_log::StoreAuditLog;
pub use engine::SqlStore;
pub use keygate_audit::AuditRow;
pub use keygate_core::query::{AclFilter, AuditQuery, ConsoleSession, Patch};
pub use postgres::DEFAULT_POOL_SIZE;

use async_trait::async_trait;
pub use keygate_audit::CloudEvent;
use keygate_core::model::{
    Account, AccountKind, Acl, ApiKey, Environment, IdentityPool, IdentityProvider, Organization,
    Resource, RoleBinding, SigningKey, Timestamp,
};
use keygate_core::{KeyId, Principal, ResourceKind, Role};
use tokio::sync::watch;

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The entity does not exist.
    #[error("{0} `{1}` was not found")]
    NotFound(&'static str, String),
    /// A uniqueness or state conflict; the message is safe to show to clients.
    #[error("{0}")]
    Conflict(String),
    /// A generated id collided with an existing one: generate another and retry.
    #[error("generated id collided")]
    IdCollision,
    /// The owner has as many keys as allowed.
    #[error("number of API keys per owner is currently limited to {0}")]
    QuotaExceeded(u32),
    /// The thing is still in use (an environment with resources in it); the message
    /// says by what.
    #[error("{0}")]
    InUse(String),
    /// The change would leave no OrganizationAdmin.
    #[error("the organization must keep at least one OrganizationAdmin")]
    LastOrgAdmin,
    /// The change would leave no OrganizationAdmin with a working credential.
    #[error("this is the last working credential of the last OrganizationAdmin: create another CLOUD key or set a console password first")]
    LastAdminCredential,
    /// The database holds a schema newer than this binary knows.
    #[error("database schema version {found} is newer than this keygate supports ({supported}); upgrade keygate")]
    SchemaTooNew {
        /// in the database
        found: i64,
        /// known to the binary
        supported: i64,
    },
    /// The database failed.
    #[error("database error: {0}")]
    Database(String),
    /// The database cannot be reached right now; retrying later may succeed.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A stored value could not be decoded.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
}

/// Shorthand.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// One entry of the change log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Monotonic sequence number.
    pub seq: i64,
    /// What changed.
    pub entity: Entity,
    /// Its id (for ACLs: the cluster id).
    pub entity_id: String,
    /// For role bindings on resources inside a Kafka cluster: that cluster.
    pub cluster_id: Option<String>,
    /// When it was committed (µs since the epoch, the writer's clock).
    pub at_micros: i64,
}

/// Kinds of entity in the change log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    /// The organization.
    Organization,
    /// An environment.
    Environment,
    /// A cluster or other resource.
    Resource,
    /// A user or service account.
    Account,
    /// An API key.
    ApiKey,
    /// A role binding.
    RoleBinding,
    /// The ACLs of one cluster (entity id = cluster id).
    Acls,
    /// An identity provider (its pools change with it).
    IdentityProvider,
    /// An identity pool.
    IdentityPool,
    /// The STS signing keys.
    SigningKey,
    /// A client quota (or, on a cluster's deletion, all of its quotas).
    ClientQuota,
}

impl Entity {
    fn as_str(self) -> &'static str {
        match self {
            Entity::Organization => "organization",
            Entity::Environment => "environment",
            Entity::Resource => "resource",
            Entity::Account => "account",
            Entity::ApiKey => "api_key",
            Entity::RoleBinding => "role_binding",
            Entity::Acls => "acls",
            Entity::IdentityProvider => "identity_provider",
            Entity::IdentityPool => "identity_pool",
            Entity::SigningKey => "signing_key",
            Entity::ClientQuota => "client_quota",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        [
            Entity::Organization,
            Entity::Environment,
            Entity::Resource,
            Entity::Account,
            Entity::ApiKey,
            Entity::RoleBinding,
            Entity::Acls,
            Entity::IdentityProvider,
            Entity::IdentityPool,
            Entity::SigningKey,
            Entity::ClientQuota,
        ]
        .into_iter()
        .find(|e| e.as_str() == s)
    }
}

/// Everything, read in one consistent transaction (to build a snapshot).
#[derive(Debug, Clone, Default)]
pub struct FullState {
    /// The organization, once bootstrapped.
    pub organization: Option<Organization>,
    /// Environments.
    pub environments: Vec<Environment>,
    /// Resources.
    pub resources: Vec<Resource>,
    /// Accounts.
    pub accounts: Vec<Account>,
    /// Keys.
    pub api_keys: Vec<ApiKey>,
    /// Role bindings.
    pub role_bindings: Vec<RoleBinding>,
    /// ACLs.
    pub acls: Vec<Acl>,
    /// Identity providers.
    pub identity_providers: Vec<IdentityProvider>,
    /// Identity pools.
    pub identity_pools: Vec<IdentityPool>,
    /// STS signing keys, retired ones included.
    pub signing_keys: Vec<SigningKey>,
    /// Client quotas.
    pub client_quotas: Vec<keygate_core::model::ClientQuota>,
    /// The change-log position this state reflects.
    pub seq: i64,
}

/// What the first start creates, all in one transaction.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    /// The organization.
    pub organization: Organization,
    /// The first user.
    pub admin: Account,
    /// Its OrganizationAdmin binding.
    pub binding: RoleBinding,
    /// Its CLOUD key.
    pub key: ApiKey,
}

/// Filters for listing keys (exact matches).
#[derive(Debug, Clone, Default)]
pub struct KeyFilter {
    /// Owner account id.
    pub owner_id: Option<String>,
    /// Resource storage key (`CLOUD`, `lkc-…`, `flink:env-…:aws.us-east-1`, …).
    pub resource_key: Option<String>,
}

/// Filters for role bindings.
#[derive(Debug, Clone, Default)]
pub struct BindingFilter {
    /// Principal.
    pub principal: Option<Principal>,
    /// Role.
    pub role: Option<Role>,
    /// Bindings whose pattern is this one or below it (text prefix on segments).
    pub crn_prefix: Option<String>,
}

/// The persistence seam. Implementation: [`SqlStore`] (SQLite or PostgreSQL).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Create the organization, first admin, binding and key — unless an
    /// organization exists already. Returns whether it created them.
    async fn bootstrap(&self, b: Bootstrap, audit: &CloudEvent) -> Result<bool>;
    /// An installation-wide setting.
    async fn setting(&self, name: &str) -> Result<Option<String>>;
    /// Store `value` under `name` unless a value is there already; returns the stored
    /// value (the first writer's, whichever instance that was).
    async fn init_setting(&self, name: &str, value: &str) -> Result<String>;
    /// Take or renew the lease `name` for `holder` until `ttl` from now; false while
    /// another holder's lease runs.
    async fn lease(&self, name: &str, holder: &str, ttl: std::time::Duration) -> Result<bool>;
    /// Read everything consistently.
    async fn load_all(&self) -> Result<FullState>;
    /// Changes after `seq`, ascending, at most `limit`.
    async fn changes_since(&self, seq: i64, limit: u32) -> Result<Vec<Change>>;
    /// Receives the latest committed sequence number after each commit.
    fn subscribe(&self) -> watch::Receiver<i64>;

    /// Create an environment (unique display name).
    async fn create_environment(&self, e: Environment, audit: &CloudEvent) -> Result<()>;
    /// One environment.
    async fn get_environment(&self, id: &str) -> Result<Environment>;
    /// All environments, oldest first.
    async fn list_environments(&self) -> Result<Vec<Environment>>;
    /// Rename an environment.
    async fn update_environment(
        &self,
        id: &str,
        patch: Patch,
        now: Timestamp,
        audit: &CloudEvent,
    ) -> Result<Environment>;
    /// The organization, once bootstrapped.
    async fn organization(&self) -> Result<Organization>;
    /// Rename the organization (its id and CRN never change).
    async fn rename_organization(
        &self,
        display_name: &str,
        audit: &CloudEvent,
    ) -> Result<Organization>;
    /// Delete an (empty) environment and the role bindings inside it.
    async fn delete_environment(&self, id: &str, crn: &str, audit: &CloudEvent) -> Result<()>;

    /// Register a resource.
    async fn create_resource(&self, r: Resource, audit: &CloudEvent) -> Result<()>;
    /// One resource by storage key.
    async fn get_resource(&self, key: &str) -> Result<Resource>;
    /// Resources of a kind, optionally in one environment.
    async fn list_resources(
        &self,
        kind: Option<ResourceKind>,
        environment_id: Option<&str>,
    ) -> Result<Vec<Resource>>;
    /// Change a resource's name or upstream.
    async fn update_resource(
        &self,
        key: &str,
        patch: Patch,
        now: Timestamp,
        audit: &CloudEvent,
    ) -> Result<Resource>;
    /// Delete a resource with its keys, ACLs and the role bindings below `crn`.
    async fn delete_resource(&self, key: &str, crn: &str, audit: &CloudEvent) -> Result<()>;

    /// Create a user or service account.
    async fn create_account(&self, a: Account, audit: &CloudEvent) -> Result<()>;
    /// One account.
    async fn get_account(&self, id: &str) -> Result<Account>;
    /// Accounts of one kind, oldest first.
    async fn list_accounts(&self, kind: AccountKind) -> Result<Vec<Account>>;
    /// Update an account's names.
    async fn update_account(
        &self,
        id: &str,
        patch: Patch,
        now: Timestamp,
        audit: &CloudEvent,
    ) -> Result<Account>;
    /// Delete an account with its keys, role bindings and ACLs.
    async fn delete_account(&self, id: &str, audit: &CloudEvent) -> Result<()>;

    /// Create a key, unless its owner already has `max_per_owner`.
    async fn create_api_key(&self, k: ApiKey, max_per_owner: u32, audit: &CloudEvent)
        -> Result<()>;
    /// One key.
    async fn get_api_key(&self, id: &KeyId) -> Result<ApiKey>;
    /// Keys matching a filter, oldest first.
    async fn list_api_keys(&self, f: &KeyFilter) -> Result<Vec<ApiKey>>;
    /// Change a key's name or description.
    async fn update_api_key(
        &self,
        id: &KeyId,
        patch: Patch,
        now: Timestamp,
        audit: &CloudEvent,
    ) -> Result<ApiKey>;
    /// Disable or enable a key.
    async fn set_api_key_disabled(
        &self,
        id: &KeyId,
        disabled: bool,
        now: Timestamp,
        audit: &CloudEvent,
    ) -> Result<ApiKey>;
    /// Delete a key.
    async fn delete_api_key(&self, id: &KeyId, audit: &CloudEvent) -> Result<()>;
    /// Record last use of keys, in one batch (no change-log rows: usage is not state
    /// the snapshot needs).
    async fn record_key_usage(&self, uses: &[(KeyId, Timestamp)]) -> Result<()>;

    /// Create a client quota (a principal already in a quota of the cluster: conflict).
    async fn create_client_quota(
        &self,
        q: keygate_core::model::ClientQuota,
        audit: &CloudEvent,
    ) -> Result<()>;
    /// One client quota.
    async fn get_client_quota(&self, id: &str) -> Result<keygate_core::model::ClientQuota>;
    /// Client quotas, of one cluster or all.
    async fn list_client_quotas(
        &self,
        cluster: Option<&str>,
    ) -> Result<Vec<keygate_core::model::ClientQuota>>;
    /// Replace a client quota (same id).
    async fn update_client_quota(
        &self,
        q: keygate_core::model::ClientQuota,
        audit: &CloudEvent,
    ) -> Result<()>;
    /// Delete a client quota.
    async fn delete_client_quota(&self, id: &str, audit: &CloudEvent) -> Result<()>;

    /// Create a role binding (the same principal, role and pattern twice → conflict).
    async fn create_role_binding(
        &self,
        rb: RoleBinding,
        cluster_id: Option<&str>,
        audit: &CloudEvent,
    ) -> Result<()>;
    /// One binding.
    async fn get_role_binding(&self, id: &str) -> Result<RoleBinding>;
    /// Bindings matching a filter.
    async fn list_role_bindings(&self, f: &BindingFilter) -> Result<Vec<RoleBinding>>;
    /// Delete a binding (not the last OrganizationAdmin's).
    async fn delete_role_binding(
        &self,
        id: &str,
        cluster_id: Option<&str>,
        audit: &CloudEvent,
    ) -> Result<()>;

    /// Add ACLs to a cluster; existing identical ACLs are kept (as Kafka does).
    async fn create_acls(&self, cluster_id: &str, acls: Vec<Acl>, audit: &CloudEvent)
        -> Result<()>;
    /// ACLs of a cluster matching a filter.
    async fn list_acls(&self, cluster_id: &str, f: &AclFilter) -> Result<Vec<Acl>>;
    /// Delete ACLs matching a filter; returns them.
    async fn delete_acls(
        &self,
        cluster_id: &str,
        f: &AclFilter,
        audit: &CloudEvent,
    ) -> Result<Vec<Acl>>;

    // identity providers and pools
    /// Create an identity provider (display name and issuer are unique).
    async fn create_provider(&self, p: IdentityProvider, audit: &CloudEvent) -> Result<()>;
    /// One provider.
    async fn get_provider(&self, id: &str) -> Result<IdentityProvider>;
    /// Every provider.
    async fn list_providers(&self) -> Result<Vec<IdentityProvider>>;
    /// Update name, description, issuer, JWKS URI, identity claim or state.
    async fn update_provider(
        &self,
        id: &str,
        patch: Patch,
        now: Timestamp,
        audit: &CloudEvent,
    ) -> Result<IdentityProvider>;
    /// Store a freshly fetched JWKS; returns whether it differs from the stored one
    /// (only then is a change logged).
    async fn set_provider_jwks(
        &self,
        id: &str,
        jwks: String,
        at: Timestamp,
        audit: &CloudEvent,
    ) -> Result<bool>;
    /// Delete a provider, its pools and their role bindings and ACLs.
    async fn delete_provider(&self, id: &str, audit: &CloudEvent) -> Result<()>;
    /// Create a pool (display name unique per provider).
    async fn create_pool(&self, p: IdentityPool, audit: &CloudEvent) -> Result<()>;
    /// One pool.
    async fn get_pool(&self, id: &str) -> Result<IdentityPool>;
    /// The pools of a provider.
    async fn list_pools(&self, provider_id: &str) -> Result<Vec<IdentityPool>>;
    /// Update name, description, identity claim, filter or state.
    async fn update_pool(
        &self,
        id: &str,
        patch: Patch,
        now: Timestamp,
        audit: &CloudEvent,
    ) -> Result<IdentityPool>;
    /// Delete a pool and its role bindings and ACLs.
    async fn delete_pool(&self, id: &str, audit: &CloudEvent) -> Result<()>;

    // STS signing keys
    /// Every signing key, retired ones included, oldest first.
    async fn list_signing_keys(&self) -> Result<Vec<SigningKey>>;
    /// Add a signing key; with `retire_before`, retire every other unretired key
    /// created before it at `k.created_at`.
    async fn add_signing_key(
        &self,
        k: SigningKey,
        retire_others: bool,
        audit: &CloudEvent,
    ) -> Result<()>;
    /// Retire unretired keys created before `before` (they stop verifying).
    async fn retire_signing_keys(
        &self,
        before: Timestamp,
        at: Timestamp,
        audit: &CloudEvent,
    ) -> Result<u32>;

    // ---- audit log ------------------------------------------------------------------

    /// Append records (not tied to a change: gateway records, failed calls), in order,
    /// in one transaction.
    async fn append_audit(&self, events: Vec<CloudEvent>) -> Result<()>;
    /// Query the audit log.
    async fn query_audit(&self, q: &AuditQuery) -> Result<Vec<AuditRow>>;
    /// How far a sink has delivered (0 when never).
    async fn audit_cursor(&self, sink: &str) -> Result<i64>;
    /// Record that a sink delivered everything up to `seq`.
    async fn set_audit_cursor(&self, sink: &str, seq: i64) -> Result<()>;
    /// Delete records older than `before` that every sink in `sinks` has delivered.
    async fn prune_audit(&self, before: Timestamp, sinks: &[String]) -> Result<u64>;
    /// The newest audit sequence number, updated on every append.
    fn subscribe_audit(&self) -> watch::Receiver<i64>;

    // ---- objects created through the HTTP gateway ---------------------------------------

    /// Record that `principal` created `object_id` (a Flink job or jar) on the service
    /// with storage key `resource_key`. Recording the same object again keeps the first.
    async fn record_service_object(
        &self,
        resource_key: &str,
        object_id: &str,
        principal: &str,
        at: Timestamp,
    ) -> Result<()>;
    /// Who created each of `object_ids` on the service (objects keygate did not see
    /// created are absent).
    async fn service_object_owners(
        &self,
        resource_key: &str,
        object_ids: &[String],
    ) -> Result<Vec<(String, String)>>;

    // ---- console sign-in ------------------------------------------------------------

    /// The user with this e-mail address (lower-case), if any.
    async fn find_user_by_email(&self, email: &str) -> Result<Option<Account>>;
    /// Set (or replace) a user's password hash; ends the user's console sessions.
    async fn set_password(&self, user_id: &str, hash: String, audit: &CloudEvent) -> Result<()>;
    /// A user's password hash, if one is set.
    async fn password_hash(&self, user_id: &str) -> Result<Option<String>>;
    /// Store a new session.
    async fn create_session(&self, s: ConsoleSession) -> Result<()>;
    /// A live session by the hash of its cookie value.
    async fn get_session(
        &self,
        id_hash: [u8; 32],
        now: Timestamp,
    ) -> Result<Option<ConsoleSession>>;
    /// End a session (sign-out). Also removes every expired session.
    async fn delete_session(&self, id_hash: [u8; 32], now: Timestamp) -> Result<()>;

    // ---- export and import ----------------------------------------------------------

    /// Every user's password hash, as (user id, PHC string) — for an export.
    async fn password_hashes(&self) -> Result<Vec<(String, String)>>;
    /// Load a whole exported state into an empty database, in one transaction
    /// (refused when an organization exists). Ids, gateway slots, key hashes and
    /// timestamps are kept as they were.
    async fn import(
        &self,
        state: FullState,
        passwords: Vec<(String, String)>,
        audit: &CloudEvent,
    ) -> Result<()>;
}
