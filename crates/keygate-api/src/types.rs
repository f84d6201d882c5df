//! REST request and response shapes (reference/rest-api.md), and their conversion from
//! the model. The only place that derives serde for the API.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Object metadata.
#[derive(Debug, Serialize, ToSchema)]
pub struct ObjectMeta {
    /// URL of this object.
    #[serde(rename = "self")]
    pub self_: String,
    /// CRN of this object.
    pub resource_name: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Updated.
    pub updated_at: DateTime<Utc>,
}

/// List metadata.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListMeta {
    /// URL of the first page.
    pub first: String,
    /// URL of the next page, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// Items across all pages.
    pub total_size: usize,
}

/// Reference to another object.
#[derive(Debug, Serialize, ToSchema)]
pub struct ObjRef {
    /// Id.
    pub id: String,
    /// Environment (for resources).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// URL.
    pub related: String,
    /// CRN.
    pub resource_name: String,
    /// API version of the referenced object.
    pub api_version: String,
    /// Kind of the referenced object.
    pub kind: String,
}

/// `{ "id": … }` in requests.
#[derive(Debug, Deserialize, ToSchema)]
pub struct IdIn {
    /// Id.
    pub id: String,
}

macro_rules! list_type {
    ($name:ident, $item:ty) => {
        /// A page of objects.
        #[derive(Debug, Serialize, ToSchema)]
        pub struct $name {
            /// API version.
            pub api_version: &'static str,
            /// `…List`.
            pub kind: &'static str,
            /// Paging.
            pub metadata: ListMeta,
            /// The objects.
            pub data: Vec<$item>,
        }
    };
}

// ---- environments ----------------------------------------------------------------

/// An environment.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnvironmentObj {
    /// `org/v2`
    pub api_version: &'static str,
    /// `Environment`
    pub kind: &'static str,
    /// `env-…`
    pub id: String,
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Name.
    pub display_name: String,
}
list_type!(EnvironmentList, EnvironmentObj);

/// Create an environment.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EnvironmentCreate {
    /// Name (1–64 characters, unique).
    pub display_name: String,
}

/// Update an environment.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EnvironmentUpdate {
    /// New name.
    pub display_name: Option<String>,
}

// ---- clusters and other resources ------------------------------------------------

/// A cluster or other fronted resource.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterObj {
    /// e.g. `cmk/v2`
    pub api_version: &'static str,
    /// e.g. `Cluster`
    pub kind: &'static str,
    /// `lkc-…`, `lsrc-…`, `lksqlc-…`, a Flink region or `tableflow`.
    pub id: String,
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    pub spec: ClusterSpec,
    /// Status.
    pub status: ClusterStatus,
}
list_type!(ClusterList, ClusterObj);

/// Cluster spec.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterSpec {
    /// Name.
    pub display_name: String,
    /// Environment.
    pub environment: ObjRef,
    /// Upstream: Kafka bootstrap servers, or the service URL.
    pub upstream: String,
    /// Kafka clusters: the gateway's bootstrap address, the one clients should use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka_bootstrap_endpoint: Option<String>,
    /// Schema Registry, ksqlDB, Flink and Tableflow: the HTTP gateway's address of this
    /// service, the URL clients use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_endpoint: Option<String>,
    /// (keygate extension) How the gateway connects to the upstream: a Kafka cluster's
    /// brokers, or an HTTP service. Secrets are write-only: only whether they are set
    /// is shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_security: Option<UpstreamSecurityOut>,
    /// What the hosted document requires of a provisioned cluster, for a registered
    /// one: `SELF_MANAGED` where keygate has no such fact.
    #[serde(flatten)]
    pub hosted: HostedFacts,
}

/// The hosted document's required fields of a cluster that keygate registers rather
/// than provisions (values of its open, extensible enums).
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct HostedFacts {
    /// Kafka: `SELF_MANAGED`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability: Option<&'static str>,
    /// `SELF_MANAGED`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud: Option<&'static str>,
    /// Flink: the region; others `self-managed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Kafka: `{"kind": "Basic"}`, the document's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Value>,
    /// Schema Registry: `SELF_MANAGED`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<&'static str>,
    /// ksqlDB: its size as registered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csu: Option<u32>,
    /// ksqlDB: the Kafka cluster it runs on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka_cluster: Option<ObjRef>,
    /// ksqlDB: the user or service account it runs as.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_identity: Option<ObjRef>,
}

/// How the gateway connects and authenticates to a cluster's brokers, as shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct UpstreamSecurityOut {
    /// `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`.
    pub protocol: &'static str,
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sasl_mechanism: Option<&'static str>,
    /// The gateway's SASL user name on the brokers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Whether a password is set (it is never returned).
    pub password_set: bool,
    /// Whether a CA bundle is set (else the system's roots).
    pub ca_set: bool,
    /// The name the brokers' certificates must hold (else each broker's host).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// Whether the gateway presents a client certificate.
    pub client_certificate_set: bool,
    /// HTTP services: `BASIC`, `BEARER` or `HEADER` (absent: no credential).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_auth: Option<&'static str>,
    /// HTTP services with `HEADER`: the header's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_name: Option<String>,
}

/// How the gateway should connect to a cluster's brokers; on update, only the fields
/// given change (send just `password` to rotate it).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct UpstreamSecurityIn {
    /// `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`.
    #[serde(default)]
    pub protocol: Option<String>,
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    #[serde(default)]
    pub sasl_mechanism: Option<String>,
    /// SASL user name.
    #[serde(default)]
    pub username: Option<String>,
    /// SASL password (write-only; stored encrypted).
    #[serde(default)]
    pub password: Option<String>,
    /// PEM CA bundle the brokers' certificates must chain to.
    #[serde(default)]
    pub ca_pem: Option<String>,
    /// The name the brokers' certificates must hold.
    #[serde(default)]
    pub server_name: Option<String>,
    /// PEM client certificate chain (mTLS to the brokers).
    #[serde(default)]
    pub client_certificate_pem: Option<String>,
    /// PEM private key of the client certificate (write-only; stored encrypted).
    #[serde(default)]
    pub client_key_pem: Option<String>,
    /// HTTP services: how the gateway authenticates to the upstream — `BASIC`
    /// (username + password), `BEARER` (password is the token), `HEADER` (password is
    /// the value of `header_name`) or `NONE`.
    #[serde(default)]
    pub http_auth: Option<String>,
    /// HTTP services with `HEADER`: the header's name, e.g. `X-API-Key`.
    #[serde(default)]
    pub header_name: Option<String>,
}

impl From<UpstreamSecurityIn> for keygate_iam::UpstreamInput {
    fn from(u: UpstreamSecurityIn) -> Self {
        keygate_iam::UpstreamInput {
            protocol: u.protocol,
            mechanism: u.sasl_mechanism,
            username: u.username,
            password: u.password,
            ca_pem: u.ca_pem,
            server_name: u.server_name,
            client_cert_pem: u.client_certificate_pem,
            client_key_pem: u.client_key_pem,
            http_auth: u.http_auth,
            header_name: u.header_name,
        }
    }
}

/// Cluster status.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterStatus {
    /// `PROVISIONED`
    pub phase: &'static str,
    /// Kafka clusters (keygate extension): whether this instance's gateway reaches
    /// the brokers with the cluster's settings, and why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<UpstreamHealth>,
    /// ksqlDB: `false` (keygate does not pause clusters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_paused: Option<bool>,
    /// ksqlDB: provisioned storage in GB: `0`, keygate provisions none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<u32>,
}

/// The upstream as the gateway last saw it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UpstreamHealth {
    /// Whether the brokers answered the gateway with its credential.
    pub healthy: bool,
    /// Why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Register a cluster.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ClusterCreate {
    /// Spec.
    pub spec: ClusterCreateSpec,
}

/// Spec of a new cluster.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ClusterCreateSpec {
    /// Name.
    pub display_name: String,
    /// Environment.
    pub environment: IdIn,
    /// Kafka: `host:port[,host:port…]`; others: `http(s)://…`.
    pub upstream: String,
    /// Flink only: `<cloud>.<region>`.
    #[serde(default)]
    pub region: Option<String>,
    /// (keygate extension) How the gateway connects to the upstream (Kafka: the
    /// brokers; HTTP services: its credential and TLS).
    #[serde(default)]
    pub upstream_security: Option<UpstreamSecurityIn>,
    /// ksqlDB (required there): the Kafka cluster it runs on, in the same environment.
    #[serde(default)]
    pub kafka_cluster: Option<IdIn>,
    /// ksqlDB (required there): the user or service account it runs as.
    #[serde(default)]
    pub credential_identity: Option<IdIn>,
    /// ksqlDB: its size in CSUs, 1–1024 (recorded; default 1).
    #[serde(default)]
    pub csu: Option<i64>,
}

/// Update a cluster.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ClusterUpdate {
    /// Spec.
    pub spec: ClusterUpdateSpec,
}

/// Changes to a cluster.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ClusterUpdateSpec {
    /// New name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// New upstream.
    #[serde(default)]
    pub upstream: Option<String>,
    /// Kafka only: changed connection settings (send `password` alone to rotate it).
    #[serde(default)]
    pub upstream_security: Option<UpstreamSecurityIn>,
}

// ---- accounts ------------------------------------------------------------------

/// A service account.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceAccountObj {
    /// `iam/v2`
    pub api_version: &'static str,
    /// `ServiceAccount`
    pub kind: &'static str,
    /// `sa-…`
    pub id: String,
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Name (unique).
    pub display_name: String,
    /// Description.
    pub description: String,
}
list_type!(ServiceAccountList, ServiceAccountObj);

/// Create a service account.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ServiceAccountCreate {
    /// Name (1–64 characters, unique).
    pub display_name: String,
    /// Description.
    #[serde(default)]
    pub description: String,
}

/// Update a service account.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ServiceAccountUpdate {
    /// New name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// New description.
    #[serde(default)]
    pub description: Option<String>,
}

/// A user.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserObj {
    /// `iam/v2`
    pub api_version: &'static str,
    /// `User`
    pub kind: &'static str,
    /// `u-…`
    pub id: String,
    /// Metadata.
    pub metadata: ObjectMeta,
    /// E-mail.
    pub email: String,
    /// Full name.
    pub full_name: String,
    /// `AUTH_TYPE_LOCAL` or `AUTH_TYPE_SSO`.
    pub auth_type: String,
}
list_type!(UserList, UserObj);

/// Create a user.
#[derive(Deserialize, ToSchema)]
pub struct UserCreate {
    /// E-mail (unique).
    pub email: String,
    /// Full name.
    pub full_name: String,
    /// `AUTH_TYPE_LOCAL` (default) or `AUTH_TYPE_SSO`.
    #[serde(default)]
    pub auth_type: Option<String>,
    /// Console password (keygate extension; at least 12 characters). Stored only as an
    /// argon2id hash.
    #[serde(default)]
    pub password: Option<String>,
}

impl std::fmt::Debug for UserCreate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserCreate")
            .field("email", &self.email)
            .field("full_name", &self.full_name)
            .finish_non_exhaustive()
    }
}

/// Set a user's console password.
#[derive(Deserialize, ToSchema)]
pub struct PasswordSet {
    /// The new password (at least 12 characters).
    pub password: String,
    /// The current password: required to change one's own password from a session;
    /// checked whenever given.
    #[serde(default)]
    pub current_password: Option<String>,
}

impl std::fmt::Debug for PasswordSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordSet { .. }")
    }
}

/// Update a user.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UserUpdate {
    /// New full name.
    #[serde(default)]
    pub full_name: Option<String>,
}

// ---- API keys ------------------------------------------------------------------

/// An API key.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyObj {
    /// `iam/v2`
    pub api_version: &'static str,
    /// `ApiKey`
    pub kind: &'static str,
    /// The key (16 upper-case alphanumerics).
    pub id: String,
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    pub spec: ApiKeySpec,
    /// keygate extension: phase and last use.
    pub status: ApiKeyStatus,
}
list_type!(ApiKeyList, ApiKeyObj);

/// API key spec.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeySpec {
    /// Name.
    pub display_name: String,
    /// Description.
    pub description: String,
    /// The secret: only in the create response, never again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Owner.
    pub owner: ObjRef,
    /// Resource.
    pub resource: ObjRef,
    /// Expiry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// API key status (keygate extension).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyStatus {
    /// `ACTIVE`, `DISABLED` or `EXPIRED`.
    pub phase: &'static str,
    /// Last successful authentication (updated in batches).
    pub last_used_at: Option<DateTime<Utc>>,
}

/// Create a key.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ApiKeyCreate {
    /// Spec.
    pub spec: ApiKeyCreateSpec,
}

/// Spec of a new key.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ApiKeyCreateSpec {
    /// Name.
    #[serde(default)]
    pub display_name: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Owner (default: the caller).
    #[serde(default)]
    pub owner: Option<IdIn>,
    /// Resource; absent or null is a cloud key (as `CLOUD`), as the hosted schema
    /// marks it nullable.
    #[serde(default)]
    pub resource: Option<ResourceIn>,
    /// Optional expiry (RFC 3339, in the future).
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// Resource of a new key.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ResourceIn {
    /// `CLOUD`, `TABLEFLOW`, `lkc-…`, `lsrc-…`, `lksqlc-…` or a Flink region.
    pub id: String,
    /// Environment (required for Flink and Tableflow).
    #[serde(default)]
    pub environment: Option<String>,
}

/// Update a key.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ApiKeyUpdate {
    /// Spec.
    pub spec: ApiKeyUpdateSpec,
}

/// Changes to a key.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ApiKeyUpdateSpec {
    /// New name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// New description.
    #[serde(default)]
    pub description: Option<String>,
    /// Immutable: accepted when it names the key's owner (clients send the whole
    /// spec back), refused when it names another.
    #[serde(default)]
    pub owner: Option<IdIn>,
    /// Immutable, like `owner`.
    #[serde(default)]
    pub resource: Option<ResourceIn>,
}

// ---- role bindings ---------------------------------------------------------------

/// A role binding.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoleBindingObj {
    /// `iam/v2`
    pub api_version: &'static str,
    /// `RoleBinding`
    pub kind: &'static str,
    /// `rb-…`
    pub id: String,
    /// Metadata.
    pub metadata: ObjectMeta,
    /// `User:…` or `Group:…`.
    pub principal: String,
    /// Role.
    pub role_name: String,
    /// Where.
    pub crn_pattern: String,
}
list_type!(RoleBindingList, RoleBindingObj);

/// Create a role binding.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RoleBindingCreate {
    /// `User:…` or `Group:…`.
    pub principal: String,
    /// A predefined role.
    pub role_name: String,
    /// `crn://…` (a trailing `*` is a prefix).
    pub crn_pattern: String,
}

// ---- ACLs (Kafka REST v3) ----------------------------------------------------------

/// An ACL.
#[derive(Debug, Serialize, ToSchema)]
pub struct AclObj {
    /// `KafkaAcl`
    pub kind: &'static str,
    /// Metadata.
    pub metadata: AclMeta,
    /// Cluster.
    pub cluster_id: String,
    /// TOPIC, GROUP, CLUSTER, TRANSACTIONAL_ID.
    pub resource_type: String,
    /// Name (CLUSTER: `kafka-cluster`).
    pub resource_name: String,
    /// LITERAL or PREFIXED.
    pub pattern_type: String,
    /// `User:…`
    pub principal: String,
    /// Always `*`.
    pub host: String,
    /// Operation.
    pub operation: String,
    /// ALLOW or DENY.
    pub permission: String,
}

/// ACL metadata.
#[derive(Debug, Serialize, ToSchema)]
pub struct AclMeta {
    /// URL.
    #[serde(rename = "self")]
    pub self_: String,
}

/// ACLs.
#[derive(Debug, Serialize, ToSchema)]
pub struct AclList {
    /// `KafkaAclList`
    pub kind: &'static str,
    /// Metadata.
    pub metadata: AclMeta,
    /// The ACLs.
    pub data: Vec<AclObj>,
}

/// Create an ACL.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AclCreate {
    /// TOPIC, GROUP, CLUSTER, TRANSACTIONAL_ID.
    pub resource_type: String,
    /// Name (CLUSTER: `kafka-cluster`).
    pub resource_name: String,
    /// LITERAL or PREFIXED.
    pub pattern_type: String,
    /// `User:…` or `User:*`.
    pub principal: String,
    /// Must be `*` (keygate has no per-host ACLs).
    #[serde(default)]
    pub host: Option<String>,
    /// Operation.
    pub operation: String,
    /// ALLOW or DENY.
    pub permission: String,
}

/// Create several ACLs at once.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AclBatch {
    /// The ACLs.
    pub data: Vec<AclCreate>,
}

/// The organization.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationObj {
    /// `org/v2`
    pub api_version: &'static str,
    /// `Organization`
    pub kind: &'static str,
    /// `org-…`
    pub id: String,
    /// Metadata (`resource_name` is the root of every CRN).
    pub metadata: ObjectMeta,
    /// Name.
    pub display_name: String,
}
list_type!(OrganizationList, OrganizationObj);

/// Rename the organization.
#[derive(Debug, Deserialize, ToSchema)]
pub struct OrganizationUpdate {
    /// New name.
    #[serde(default)]
    pub display_name: Option<String>,
}

// ---- external OAuth ------------------------------------------------------------

/// An identity provider.
#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityProviderObj {
    /// `iam/v2`
    pub api_version: &'static str,
    /// `IdentityProvider`
    pub kind: &'static str,
    /// `op-…`
    pub id: String,
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Name (unique).
    pub display_name: String,
    /// Description.
    pub description: String,
    /// `ENABLED` or `DISABLED`.
    pub state: &'static str,
    /// Exact issuer of its tokens.
    pub issuer: String,
    /// Where its keys are fetched from.
    pub jwks_uri: String,
    /// Default identity claim of its pools.
    pub identity_claim: String,
    /// The public keys last fetched (read-only).
    #[schema(value_type = Vec<Object>)]
    pub keys: Vec<serde_json::Value>,
    /// When the keys were last fetched (keygate's extension).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys_fetched_at: Option<DateTime<Utc>>,
}
list_type!(IdentityProviderList, IdentityProviderObj);

/// Register an identity provider.
#[derive(Debug, Deserialize, ToSchema)]
pub struct IdentityProviderCreate {
    /// Name (1–64 characters, unique).
    pub display_name: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Exact issuer (`iss`) of its tokens.
    pub issuer: String,
    /// JWKS URI; discovered from `{issuer}/.well-known/openid-configuration` if absent.
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// Default identity claim of its pools (`claims.sub`).
    #[serde(default)]
    pub identity_claim: Option<String>,
}

/// Update an identity provider.
#[derive(Debug, Deserialize, ToSchema)]
pub struct IdentityProviderUpdate {
    /// New name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// New description.
    #[serde(default)]
    pub description: Option<String>,
    /// New issuer.
    #[serde(default)]
    pub issuer: Option<String>,
    /// New JWKS URI (keys are fetched again).
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// New default identity claim.
    #[serde(default)]
    pub identity_claim: Option<String>,
    /// `ENABLED` or `DISABLED` (keygate's extension).
    #[serde(default)]
    pub state: Option<String>,
}

/// The result of `PATCH …/{id}/jwks`.
#[derive(Debug, Serialize, ToSchema)]
pub struct JwksRefreshObj {
    /// `iam/v2`
    pub api_version: &'static str,
    /// `Jwks`
    pub kind: &'static str,
    /// The outcome, as the hosted API places it.
    pub spec: JwksStatusObj,
    /// The same, with when the keys were fetched.
    pub status: JwksStatusObj,
    /// (keygate extension) The provider after the refresh.
    pub identity_provider: IdentityProviderObj,
}

/// The outcome of a key refresh.
#[derive(Debug, Serialize, ToSchema)]
pub struct JwksStatusObj {
    /// `REFRESHED`, `OK`, `INVALID_JWKS_URI` or `ERROR_FETCHING_JWKS`.
    pub jwks_status: &'static str,
    /// When the refresh ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_last_refresh_at: Option<DateTime<Utc>>,
}

/// An identity pool.
#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityPoolObj {
    /// `iam/v2`
    pub api_version: &'static str,
    /// `IdentityPool`
    pub kind: &'static str,
    /// `pool-…`
    pub id: String,
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Name (unique per provider).
    pub display_name: String,
    /// Description.
    pub description: String,
    /// Claim naming the external identity.
    pub identity_claim: String,
    /// CEL filter over `claims`.
    pub filter: String,
    /// `User:pool-…`, for role bindings and ACLs (read-only).
    pub principal: String,
    /// `ENABLED` or `DISABLED`.
    pub state: &'static str,
}
list_type!(IdentityPoolList, IdentityPoolObj);

/// Create an identity pool.
#[derive(Debug, Deserialize, ToSchema)]
pub struct IdentityPoolCreate {
    /// Name (1–64 characters, unique per provider).
    pub display_name: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Claim naming the external identity (the provider's by default).
    #[serde(default)]
    pub identity_claim: Option<String>,
    /// CEL over `claims`, at most 300 characters (`true` by default).
    #[serde(default)]
    pub filter: Option<String>,
}

/// Update an identity pool.
#[derive(Debug, Deserialize, ToSchema)]
pub struct IdentityPoolUpdate {
    /// New name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// New description.
    #[serde(default)]
    pub description: Option<String>,
    /// New identity claim.
    #[serde(default)]
    pub identity_claim: Option<String>,
    /// New filter.
    #[serde(default)]
    pub filter: Option<String>,
    /// `ENABLED` or `DISABLED` (keygate's extension).
    #[serde(default)]
    pub state: Option<String>,
}

/// An RFC 8693 token-exchange request (form-encoded).
#[derive(Debug, Deserialize, ToSchema)]
pub struct TokenExchangeForm {
    /// `urn:ietf:params:oauth:grant-type:token-exchange`
    #[serde(default)]
    pub grant_type: String,
    /// The IdP's token.
    #[serde(default)]
    pub subject_token: String,
    /// `urn:ietf:params:oauth:token-type:jwt`
    #[serde(default)]
    pub subject_token_type: Option<String>,
    /// `urn:ietf:params:oauth:token-type:access_token`
    #[serde(default)]
    pub requested_token_type: Option<String>,
    /// The pool the token is for.
    #[serde(default)]
    pub identity_pool_id: String,
    /// Lifetime in seconds (default and maximum 900).
    #[serde(default)]
    pub expires_in: Option<String>,
}

/// An issued token.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenExchangeReply {
    /// The keygate access token.
    pub access_token: String,
    /// `urn:ietf:params:oauth:token-type:access_token`
    pub issued_token_type: &'static str,
    /// `Bearer`
    pub token_type: &'static str,
    /// Lifetime, seconds.
    pub expires_in: i64,
}

/// An OAuth error (RFC 6749 §5.2), with the same error in the hosted API's
/// `errors` list beside it: OAuth clients read `error`, the hosted clients `errors`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthErrorBody {
    /// `invalid_request`, `invalid_grant`, `unsupported_grant_type`, …
    pub error: &'static str,
    /// Human-readable detail.
    pub error_description: String,
    /// The same, in the hosted API's error model.
    pub errors: Vec<crate::error::ErrorItem>,
}

/// Rotate the STS signing key.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SigningKeyRotate {
    /// Also retire every earlier key: tokens they signed stop working at once.
    #[serde(default)]
    pub retire_previous: bool,
}

/// The new signing key.
#[derive(Debug, Serialize, ToSchema)]
pub struct SigningKeyObj {
    /// Its key id.
    pub kid: String,
}

// ---- role catalogue (keygate extension) -------------------------------------------

/// A predefined role: where it may be bound and what it allows.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoleObj {
    /// `iam/v2`
    pub api_version: &'static str,
    /// `Role`
    pub kind: &'static str,
    /// The role's name, as role bindings spell it.
    pub name: &'static str,
    /// What it is for.
    pub description: &'static str,
    /// Whether a binding's pattern may end in `*`.
    pub allows_prefix: bool,
    /// Where it may be bound, and the control-plane capabilities it carries there.
    pub scopes: Vec<RoleScopeObj>,
    /// Kafka operations per resource type (`TOPIC`, `GROUP`, …), bound at or above it.
    pub kafka: std::collections::BTreeMap<&'static str, Vec<&'static str>>,
    /// Schema Registry, ksqlDB and Flink operations (`SUBJECT_READ`, …).
    pub services: Vec<&'static str>,
}

/// One scope a role may be bound at.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoleScopeObj {
    /// e.g. `kafka cluster`.
    pub scope: &'static str,
    /// A pattern of that shape.
    pub example: &'static str,
    /// Control-plane capabilities there (`MANAGE_RESOURCE`, …).
    pub control_plane: Vec<&'static str>,
}

/// Every predefined role.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoleList {
    /// `iam/v2`
    pub api_version: &'static str,
    /// `RoleList`
    pub kind: &'static str,
    /// Roles.
    pub data: Vec<RoleObj>,
}

// ---- service quotas -----------------------------------------------------------------

/// A limit keygate enforces, and how much of it is used (`/service-quota/v1`).
#[derive(Debug, Serialize, ToSchema)]
pub struct AppliedQuotaObj {
    /// `service-quota/v1`
    pub api_version: &'static str,
    /// `AppliedQuota`
    pub kind: &'static str,
    /// The quota's code, e.g. `iam.max_api_keys.per_account`.
    pub id: &'static str,
    /// Where to read it again.
    pub metadata: QuotaMeta,
    /// `ORGANIZATION`, `USER_ACCOUNT` or `SERVICE_ACCOUNT`.
    pub scope: &'static str,
    /// What it limits.
    pub display_name: &'static str,
    /// The limit keygate starts with.
    pub default_limit: i64,
    /// The limit in force (configuration).
    pub applied_limit: i64,
    /// How much is used, where keygate counts it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<i64>,
    /// The account a per-account quota is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<QuotaRef>,
    /// The organization.
    pub organization: QuotaRef,
}

/// `self` of a quota.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuotaMeta {
    /// URL.
    #[serde(rename = "self")]
    pub self_: String,
}

/// A global object reference.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QuotaRef {
    /// Id.
    pub id: String,
    /// URL.
    pub related: String,
    /// CRN.
    pub resource_name: String,
}
list_type!(AppliedQuotaList, AppliedQuotaObj);
