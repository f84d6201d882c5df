//! The entities keygate stores. Plain data: the store persists them, the IAM services
//! validate and authorize changes to them, the API renders them.

use crate::acl::AclBinding;
use crate::crn::CrnPattern;
use crate::id::ResourceKind;
use crate::principal::Principal;
use crate::role::Role;
use crate::secret::KeyId;
use chrono::{DateTime, Utc};

/// A timestamp (UTC).
pub type Timestamp = DateTime<Utc>;

/// The one organization of a deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    /// `org-…`
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// CRN authority (`keygate` unless configured).
    pub crn_authority: String,
    /// Created.
    pub created_at: Timestamp,
}

impl Organization {
    /// The organization's CRN, the root of every other CRN.
    pub fn crn(&self) -> CrnPattern {
        CrnPattern::organization(&self.crn_authority, &self.id)
    }
}

/// An environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    /// `env-…`
    pub id: String,
    /// Display name (unique in the org).
    pub display_name: String,
    /// Created.
    pub created_at: Timestamp,
    /// Updated.
    pub updated_at: Timestamp,
}

/// A resource keygate fronts: a Kafka cluster, a Schema Registry, a ksqlDB cluster, a
/// Flink region or the environment's Tableflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// The API id: `lkc-…`, `lsrc-…`, `lksqlc-…`, `aws.us-east-1`, `tableflow`.
    pub id: String,
    /// What it is.
    pub kind: ResourceKind,
    /// The environment it lives in.
    pub environment_id: String,
    /// Display name.
    pub display_name: String,
    /// Kafka: `host:port[,host:port…]`; HTTP services: a URL.
    pub upstream: String,
    /// Kafka: how the gateway connects and authenticates to the brokers.
    pub upstream_security: crate::UpstreamSecurity,
    /// Created.
    pub created_at: Timestamp,
    /// Updated.
    pub updated_at: Timestamp,
    /// Kafka clusters: the gateway port slot, assigned at registration and kept for life.
    pub gateway_slot: Option<u32>,
    /// ksqlDB clusters: what it runs on and as (the hosted API's required facts).
    pub ksql: Option<KsqlLinks>,
}

/// A client quota on one Kafka cluster, as the hosted Kafka quotas API shapes it: the
/// byte rates its principals may produce (ingress) and fetch (egress), metered per
/// principal across all its connections, and (a keygate extension) a request rate.
/// Over a rate the gateway answers with `throttle_time_ms` and holds the connection,
/// as a broker does (KIP-219): clients slow down, nothing fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientQuota {
    /// `cq-…`.
    pub id: String,
    /// Name.
    pub display_name: String,
    /// Description.
    pub description: String,
    /// The Kafka cluster (`lkc-…`).
    pub cluster_id: String,
    /// Its environment.
    pub environment_id: String,
    /// Service accounts, users or identity pools (`sa-…`, `u-…`, `pool-…`), or
    /// [`DEFAULT_QUOTA_PRINCIPAL`]: every principal without a quota of its own.
    pub principals: Vec<String>,
    /// Produce bytes per second, per principal.
    pub ingress_byte_rate: u64,
    /// Fetch bytes per second, per principal.
    pub egress_byte_rate: u64,
    /// Requests per second, per principal (`None`: not limited).
    pub request_rate: Option<u64>,
    /// Created.
    pub created_at: Timestamp,
    /// Updated.
    pub updated_at: Timestamp,
}

/// The principal that stands for "everyone without a quota of their own".
pub const DEFAULT_QUOTA_PRINCIPAL: &str = "<default>";

/// What a ksqlDB cluster runs on: the Kafka cluster it reads and writes, the account
/// whose credential it uses there, and its size as the hosted API counts it (CSUs).
/// keygate provisions none of this; it records what the operator registered, checks
/// the references exist when the cluster is registered, and shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KsqlLinks {
    /// `lkc-…` in the same environment.
    pub kafka_cluster: String,
    /// `u-…` or `sa-…`.
    pub credential_identity: String,
    /// Confluent Streaming Units (1–1024; recorded, not enforced).
    pub csu: u32,
}

impl Resource {
    /// The storage key: the id where ids are global (`lkc-`, `lsrc-`, `lksqlc-`), else
    /// qualified by the environment (Flink regions and Tableflow repeat per environment).
    pub fn key(kind: ResourceKind, environment_id: &str, id: &str) -> String {
        match kind {
            ResourceKind::Kafka | ResourceKind::SchemaRegistry | ResourceKind::Ksql => {
                id.to_owned()
            }
            ResourceKind::Flink | ResourceKind::Tableflow => {
                format!("{}:{environment_id}:{id}", kind.as_str())
            }
        }
    }

    /// This resource's storage key.
    pub fn storage_key(&self) -> String {
        Self::key(self.kind, &self.environment_id, &self.id)
    }

    /// The path under the HTTP gateway's base URL where clients reach this service
    /// (`None` for Kafka clusters, reached through the Kafka gateway). The one rule for
    /// the gateway's routes, the REST API's `http_endpoint` and the console.
    pub fn http_gateway_path(&self, org_id: &str) -> Option<String> {
        Some(match self.kind {
            ResourceKind::SchemaRegistry => format!("/sr/{}", self.id),
            ResourceKind::Ksql => format!("/ksql/{}", self.id),
            ResourceKind::Flink => format!("/flink/{}/{}", self.environment_id, self.id),
            ResourceKind::Tableflow => format!(
                "/iceberg/catalog/organizations/{org_id}/environments/{}",
                self.environment_id
            ),
            ResourceKind::Kafka => return None,
        })
    }

    /// The resource's CRN under the organization's CRN.
    pub fn crn(&self, org: &CrnPattern) -> CrnPattern {
        Self::crn_of(org, self.kind, &self.environment_id, &self.id)
    }

    /// The CRN of a resource of `kind` with API id `id` in `environment_id`.
    pub fn crn_of(
        org: &CrnPattern,
        kind: ResourceKind,
        environment_id: &str,
        id: &str,
    ) -> CrnPattern {
        let env = org.child("environment", environment_id);
        match kind {
            ResourceKind::Kafka => env.child("cloud-cluster", id),
            ResourceKind::SchemaRegistry => env.child("schema-registry", id),
            ResourceKind::Ksql => env.child("ksql", id),
            ResourceKind::Flink => env.child("flink-region", id),
            ResourceKind::Tableflow => env.child("tableflow", id),
        }
    }
}

/// User or service account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountKind {
    /// A person.
    User,
    /// An application.
    ServiceAccount,
}

impl AccountKind {
    /// REST kind.
    pub const fn api_kind(self) -> &'static str {
        match self {
            AccountKind::User => "User",
            AccountKind::ServiceAccount => "ServiceAccount",
        }
    }
    /// Storage name.
    pub const fn as_str(self) -> &'static str {
        match self {
            AccountKind::User => "user",
            AccountKind::ServiceAccount => "service-account",
        }
    }
    /// Parse the storage name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(AccountKind::User),
            "service-account" => Some(AccountKind::ServiceAccount),
            _ => None,
        }
    }
}

/// A user or a service account: something that owns keys and holds permissions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// `u-…` or `sa-…`
    pub id: String,
    /// Which.
    pub kind: AccountKind,
    /// Service accounts: unique display name. Users: full name.
    pub display_name: String,
    /// Service accounts: description. Users: empty.
    pub description: String,
    /// Users: e-mail (unique). Service accounts: empty.
    pub email: String,
    /// Users: `AUTH_TYPE_LOCAL` or `AUTH_TYPE_SSO`.
    pub auth_type: String,
    /// Created.
    pub created_at: Timestamp,
    /// Updated.
    pub updated_at: Timestamp,
}

impl Account {
    /// The account as a principal.
    pub fn principal(&self) -> Principal {
        Principal::user(self.id.clone())
    }
}

/// What an API key may be used for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyScope {
    /// The control-plane REST API.
    Cloud,
    /// One resource (its kind, API id and environment).
    Resource {
        /// kind
        kind: ResourceKind,
        /// API id (`lkc-…`, `aws.us-east-1`, `tableflow`, …)
        id: String,
        /// environment
        environment_id: String,
    },
}

impl KeyScope {
    /// The CRN of the resource (`None` for CLOUD keys).
    pub fn resource_crn(&self, org: &CrnPattern) -> Option<CrnPattern> {
        match self {
            KeyScope::Cloud => None,
            KeyScope::Resource {
                kind,
                id,
                environment_id,
            } => Some(Resource::crn_of(org, *kind, environment_id, id)),
        }
    }

    /// The storage key of the resource, or `CLOUD`.
    pub fn storage_key(&self) -> String {
        match self {
            KeyScope::Cloud => "CLOUD".to_owned(),
            KeyScope::Resource {
                kind,
                id,
                environment_id,
            } => Resource::key(*kind, environment_id, id),
        }
    }
}

/// A key's state as users see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPhase {
    /// Usable.
    Active,
    /// Switched off by an administrator (can be switched on again).
    Disabled,
    /// Past its `expires_at`.
    Expired,
}

impl KeyPhase {
    /// REST name.
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyPhase::Active => "ACTIVE",
            KeyPhase::Disabled => "DISABLED",
            KeyPhase::Expired => "EXPIRED",
        }
    }
}

/// An API key. The secret is not here: only its keyed hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// The key id (also the SASL/PLAIN username).
    pub id: KeyId,
    /// Display name.
    pub display_name: String,
    /// Description.
    pub description: String,
    /// Owner account id.
    pub owner_id: String,
    /// Owner kind.
    pub owner_kind: AccountKind,
    /// What it may be used for.
    pub scope: KeyScope,
    /// HMAC-SHA-256 of the secret under the server's pepper.
    pub secret_hash: [u8; 32],
    /// Switched off.
    pub disabled: bool,
    /// Optional expiry.
    pub expires_at: Option<Timestamp>,
    /// Last successful authentication (fed in batches by the gateways).
    pub last_used_at: Option<Timestamp>,
    /// Created.
    pub created_at: Timestamp,
    /// Updated.
    pub updated_at: Timestamp,
}

impl ApiKey {
    /// The key's phase at `now`. Disabled wins over expired: re-enabling an expired key
    /// still leaves it expired.
    pub fn phase(&self, now: Timestamp) -> KeyPhase {
        if self.disabled {
            KeyPhase::Disabled
        } else if self.expires_at.is_some_and(|e| e <= now) {
            KeyPhase::Expired
        } else {
            KeyPhase::Active
        }
    }
}

/// A role binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleBinding {
    /// `rb-…`
    pub id: String,
    /// Who.
    pub principal: Principal,
    /// Which role.
    pub role: Role,
    /// Where.
    pub crn_pattern: CrnPattern,
    /// Created.
    pub created_at: Timestamp,
}

/// An ACL of one Kafka cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acl {
    /// Internal id (`acl-…`).
    pub id: String,
    /// The cluster (`lkc-…`).
    pub cluster_id: String,
    /// The ACL.
    pub binding: AclBinding,
    /// Created.
    pub created_at: Timestamp,
}

/// An external OAuth identity provider: whose tokens keygate accepts, and the keys
/// they are signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityProvider {
    /// `op-…`
    pub id: String,
    /// Unique name.
    pub display_name: String,
    /// Free text.
    pub description: String,
    /// The exact `iss` of its tokens (unique).
    pub issuer: String,
    /// Where its JWKS is published.
    pub jwks_uri: String,
    /// Default identity claim of its pools (`claims.sub`).
    pub identity_claim: String,
    /// Disabled providers authenticate nobody.
    pub enabled: bool,
    /// The JWKS document last fetched (public keys only; empty before the first fetch).
    pub jwks: String,
    /// When it was last fetched successfully.
    pub jwks_fetched_at: Option<Timestamp>,
    /// Created.
    pub created_at: Timestamp,
    /// Updated.
    pub updated_at: Timestamp,
    /// A certificate authority (mTLS) instead of an OAuth issuer: its pools match
    /// client certificates it signed, not tokens. Its `issuer` is then an internal
    /// name no token can carry, and its JWKS stays empty.
    pub certificate: Option<CertificateAuthority>,
}

/// What makes an identity provider a certificate authority: the chain client
/// certificates must verify against, and its revocation list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CertificateAuthority {
    /// PEM certificate chain (the CA, and intermediates).
    pub chain_pem: String,
    /// The file name it was uploaded as.
    pub chain_filename: String,
    /// PEM CRL(s) of revoked client certificates.
    pub crl_pem: Option<String>,
    /// Where the CRL is published (recorded; the gateway uses `crl_pem`).
    pub crl_url: Option<String>,
    /// When the CRL was last set.
    pub crl_updated_at: Option<Timestamp>,
}

impl IdentityProvider {
    /// The issuer a certificate authority is filed under: no token can carry it (it
    /// is not a URL, and no JWKS backs it).
    pub fn certificate_issuer(id: &str) -> String {
        format!("urn:keygate:certificate-authority:{id}")
    }
}

/// An identity pool: the tokens of one provider that pass a CEL filter, acting as
/// the principal `User:pool-…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityPool {
    /// `pool-…`
    pub id: String,
    /// Its provider (`op-…`).
    pub provider_id: String,
    /// Unique per provider.
    pub display_name: String,
    /// Free text.
    pub description: String,
    /// Path of the claim naming the external identity (`claims.sub`).
    pub identity_claim: String,
    /// CEL over `claims`; `true` admits every token of the provider.
    pub filter: String,
    /// Disabled pools match nothing.
    pub enabled: bool,
    /// Created.
    pub created_at: Timestamp,
    /// Updated.
    pub updated_at: Timestamp,
}

impl IdentityPool {
    /// The pool as a principal.
    pub fn principal(&self) -> Principal {
        Principal::user(self.id.clone())
    }
}

/// One of keygate's STS signing keys. Only the id and lifecycle are stored: the key
/// itself is derived from the server's pepper and the id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKey {
    /// `kgk-…`
    pub kid: String,
    /// Created (the newest unretired key signs).
    pub created_at: Timestamp,
    /// Retired keys verify nothing.
    pub retired_at: Option<Timestamp>,
}

/// Where clients reach a Kafka cluster through the gateway: the port-per-broker mode
/// (`host:port_base + slot × ports_per_cluster`) or, with SNI routing,
/// `<cluster-id>.<domain>:<port>`. One rule for every place that shows it (REST,
/// console).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayAddress {
    /// Advertised host (port-per-broker mode).
    pub host: String,
    /// First port of slot 0.
    pub port_base: u16,
    /// Ports per cluster slot.
    pub ports_per_cluster: u16,
    /// SNI routing: the domain and the one port.
    pub sni: Option<(String, u16)>,
}

impl GatewayAddress {
    /// The bootstrap address of the cluster `id` in gateway slot `slot`.
    pub fn bootstrap(&self, id: &str, slot: usize) -> String {
        match &self.sni {
            Some((domain, port)) => format!("{id}.{domain}:{port}"),
            None => format!(
                "{}:{}",
                self.host,
                usize::from(self.port_base) + slot * usize::from(self.ports_per_cluster)
            ),
        }
    }
}
