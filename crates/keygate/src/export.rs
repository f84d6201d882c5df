//! `keygate export` / `keygate import`: the whole state as one versioned JSON document
//! — organization, environments, resources (with their gateway slots), accounts, API
//! keys (their secrets' hashes, never secrets), role bindings, ACLs, identity providers
//! and pools, STS signing-key ids, console password hashes — so an installation moves
//! to another database without re-issuing a single key.
//!
//! The hashes are keyed by the pepper, which is not in the document: the target data
//! directory needs the same `pepper.key`. The document carries a check value derived
//! from the pepper, and import refuses a target whose pepper differs (every key would
//! fail to authenticate). The audit log is not part of the document.
//!
//! `keygate migrate --to postgres://…` does both in one step, database to database,
//! and brings the audit log along (with each sink's delivery position, so a Kafka
//! sink does not deliver the history a second time).

use crate::config::ServerArgs;
use anyhow::{bail, Context};
use base64::Engine;
use chrono::{DateTime, Utc};
use clap::Args;
use keygate_core::crn::CrnPattern;
use keygate_core::model::{
    Account, AccountKind, Acl, ApiKey, Environment, IdentityPool, IdentityProvider, KeyScope,
    Organization, Resource, RoleBinding, SigningKey,
};
use keygate_core::{
    AclBinding, KeyId, Operation, PatternType, Permission, Principal, ResourceKind, ResourceType,
    Role,
};
use keygate_iam::SecretHasher;
use keygate_store::{AuditQuery, FullState, SqlStore, Store};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;

const FORMAT: &str = "keygate-export";
const VERSION: u32 = 1;

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// Data directory of the installation (its pepper.key and, by default, database).
    #[arg(long, env = "KEYGATE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Database URL (default: the SQLite database in the data directory).
    #[arg(long, env = "KEYGATE_DATABASE")]
    database: Option<String>,
    /// Write here instead of standard output (created with mode 0600).
    #[arg(long, short = 'f')]
    file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// Data directory of the new installation; its pepper.key must be the source's.
    #[arg(long, env = "KEYGATE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Database URL (default: the SQLite database in the data directory). Must be empty.
    #[arg(long, env = "KEYGATE_DATABASE")]
    database: Option<String>,
    /// The exported document.
    input: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct MigrateArgs {
    /// Data directory of the installation (its pepper.key and, by default, database).
    #[arg(long, env = "KEYGATE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The pepper file, if not in the data directory.
    #[arg(long, env = "KEYGATE_PEPPER_FILE")]
    pepper_file: Option<PathBuf>,
    /// Source database URL (default: the SQLite database in the data directory).
    #[arg(long)]
    from: Option<String>,
    /// Target database URL, e.g. postgres://keygate:…@db:5432/keygate. Must be empty.
    #[arg(long)]
    to: String,
}

#[derive(Debug, Args)]
pub(crate) struct RecoverArgs {
    /// Data directory of the installation (its pepper.key and, by default, database).
    #[arg(long, env = "KEYGATE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Database URL (default: the SQLite database in the data directory).
    #[arg(long, env = "KEYGATE_DATABASE")]
    database: Option<String>,
    /// The pepper file, if not in the data directory.
    #[arg(long, env = "KEYGATE_PEPPER_FILE")]
    pepper_file: Option<PathBuf>,
    /// The OrganizationAdmin account to issue the key for (default: the first one).
    #[arg(long)]
    owner: Option<String>,
}

/// `keygate admin recover`: a new OrganizationAdmin CLOUD key, written to the
/// database directly (a running server picks it up within a second).
pub(crate) fn recover(a: RecoverArgs) -> anyhow::Result<()> {
    let rt = runtime()?;
    let (key, secret, owner) = rt.block_on(async {
        let (store, hasher, _) = open(a.data_dir, a.database, a.pepper_file).await?;
        if store.setting("pepper_check").await?.is_none() {
            bail!("this database has no installation yet: start keygate server once");
        }
        Ok::<_, anyhow::Error>(
            keygate_iam::Iam::recover_admin(store.as_ref(), &hasher, a.owner.as_deref()).await?,
        )
    })?;
    outln!(
        "Issued a recovery CLOUD key for {} ({}), role OrganizationAdmin.",
        owner.id,
        owner.email
    );
    outln!();
    outln!("  API key:    {key}");
    outln!("  API secret: {}", secret.expose());
    outln!();
    outln!(
        "!! The secret is shown only now. This was recorded in the audit log (RecoverAdminAccess)."
    );
    Ok(())
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    format: String,
    version: u32,
    exported_at: DateTime<Utc>,
    /// HMAC of a constant under the pepper: tells whether a target has the same pepper.
    pepper_check: String,
    organization: Org,
    environments: Vec<Env>,
    resources: Vec<Res>,
    accounts: Vec<Acct>,
    api_keys: Vec<Key>,
    role_bindings: Vec<Binding>,
    acls: Vec<AclDoc>,
    identity_providers: Vec<Provider>,
    identity_pools: Vec<Pool>,
    signing_keys: Vec<Signing>,
    /// Client quotas (absent in exports made before they existed).
    #[serde(default)]
    client_quotas: Vec<Quota>,
    user_passwords: Vec<Password>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Org {
    id: String,
    display_name: String,
    crn_authority: String,
    created_at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Env {
    id: String,
    display_name: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Res {
    id: String,
    kind: String,
    environment_id: String,
    display_name: String,
    upstream: String,
    /// Kafka: the gateway's connection settings, secrets sealed (they open only with
    /// the same pepper, which import checks). Absent: plaintext.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    upstream_security: Option<serde_json::Value>,
    gateway_slot: Option<u32>,
    /// ksqlDB: its Kafka cluster, credential identity and CSUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ksql: Option<serde_json::Value>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Acct {
    id: String,
    kind: String,
    display_name: String,
    description: String,
    email: String,
    auth_type: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Key {
    id: String,
    display_name: String,
    description: String,
    owner_id: String,
    owner_kind: String,
    /// `CLOUD`, or the resource's kind, id and environment.
    scope: ScopeDoc,
    /// base64 of the keyed hash (HMAC-SHA-256 under the pepper).
    secret_hash: String,
    disabled: bool,
    expires_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScopeDoc {
    kind: String,
    id: Option<String>,
    environment_id: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Binding {
    id: String,
    principal: String,
    role: String,
    crn_pattern: String,
    created_at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AclDoc {
    id: String,
    cluster_id: String,
    principal: String,
    resource_type: String,
    resource_name: String,
    pattern_type: String,
    operation: String,
    permission: String,
    created_at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Provider {
    id: String,
    display_name: String,
    description: String,
    issuer: String,
    jwks_uri: String,
    identity_claim: String,
    enabled: bool,
    jwks: String,
    jwks_fetched_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// Certificate authorities: chain, file name and CRL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    certificate: Option<serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Pool {
    id: String,
    provider_id: String,
    display_name: String,
    description: String,
    identity_claim: String,
    filter: String,
    enabled: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Signing {
    kid: String,
    created_at: DateTime<Utc>,
    retired_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Quota {
    id: String,
    display_name: String,
    description: String,
    cluster_id: String,
    environment_id: String,
    principals: Vec<String>,
    ingress_byte_rate: u64,
    egress_byte_rate: u64,
    request_rate: Option<u64>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Password {
    user_id: String,
    /// argon2id PHC string.
    hash: String,
}

use crate::server::pepper_check;

/// The store and pepper of an installation; the pepper must exist already (a new one
/// would match no stored hash) and match the one the database recorded, if any.
async fn open(
    data_dir: Option<PathBuf>,
    database: Option<String>,
    pepper_file: Option<PathBuf>,
) -> anyhow::Result<(Arc<SqlStore>, SecretHasher, PathBuf)> {
    let cfg = ServerArgs {
        data_dir,
        database,
        pepper_file,
        ..ServerArgs::default()
    }
    .resolve()?;
    if !cfg.pepper_file.exists() {
        bail!(
            "{} does not exist: copy the source installation's pepper.key there first (mode 0600); every key's hash depends on it",
            cfg.pepper_file.display()
        );
    }
    let hasher = SecretHasher::new(&crate::server::load_pepper(&cfg.pepper_file)?);
    let store = crate::server::open_store(&cfg.database).await?;
    if let Some(recorded) = store.setting("pepper_check").await? {
        if recorded != pepper_check(&hasher) {
            bail!(
                "{} is not the pepper of the installation in {:?}",
                cfg.pepper_file.display(),
                cfg.database
            );
        }
    }
    Ok((store, hasher, cfg.pepper_file))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

fn to_doc(
    s: FullState,
    passwords: Vec<(String, String)>,
    check: String,
) -> anyhow::Result<Document> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let o = s
        .organization
        .context("the database has no organization: nothing to export")?;
    Ok(Document {
        format: FORMAT.into(),
        version: VERSION,
        exported_at: Utc::now(),
        pepper_check: check,
        organization: Org {
            id: o.id,
            display_name: o.display_name,
            crn_authority: o.crn_authority,
            created_at: o.created_at,
        },
        environments: s
            .environments
            .into_iter()
            .map(|e| Env {
                id: e.id,
                display_name: e.display_name,
                created_at: e.created_at,
                updated_at: e.updated_at,
            })
            .collect(),
        resources: s
            .resources
            .into_iter()
            .map(|r| Res {
                id: r.id,
                kind: r.kind.as_str().into(),
                environment_id: r.environment_id,
                display_name: r.display_name,
                upstream: r.upstream,
                upstream_security: keygate_store::columns::encode(&r.upstream_security)
                    .and_then(|j| serde_json::from_str(&j).ok()),
                gateway_slot: r.gateway_slot,
                ksql: r.ksql.as_ref().map(|k| {
                    serde_json::from_str(&keygate_store::columns::encode_ksql(k))
                        .expect("encode_ksql writes JSON")
                }),
                created_at: r.created_at,
                updated_at: r.updated_at,
            })
            .collect(),
        accounts: s
            .accounts
            .into_iter()
            .map(|a| Acct {
                id: a.id,
                kind: a.kind.as_str().into(),
                display_name: a.display_name,
                description: a.description,
                email: a.email,
                auth_type: a.auth_type,
                created_at: a.created_at,
                updated_at: a.updated_at,
            })
            .collect(),
        api_keys: s
            .api_keys
            .into_iter()
            .map(|k| Key {
                id: k.id.to_string(),
                display_name: k.display_name,
                description: k.description,
                owner_id: k.owner_id,
                owner_kind: k.owner_kind.as_str().into(),
                scope: match k.scope {
                    KeyScope::Cloud => ScopeDoc {
                        kind: "CLOUD".into(),
                        id: None,
                        environment_id: None,
                    },
                    KeyScope::Resource {
                        kind,
                        id,
                        environment_id,
                    } => ScopeDoc {
                        kind: kind.as_str().into(),
                        id: Some(id),
                        environment_id: Some(environment_id),
                    },
                },
                secret_hash: b64.encode(k.secret_hash),
                disabled: k.disabled,
                expires_at: k.expires_at,
                last_used_at: k.last_used_at,
                created_at: k.created_at,
                updated_at: k.updated_at,
            })
            .collect(),
        role_bindings: s
            .role_bindings
            .into_iter()
            .map(|b| Binding {
                id: b.id,
                principal: b.principal.to_string(),
                role: b.role.as_str().into(),
                crn_pattern: b.crn_pattern.to_string(),
                created_at: b.created_at,
            })
            .collect(),
        acls: s
            .acls
            .into_iter()
            .map(|a| AclDoc {
                id: a.id,
                cluster_id: a.cluster_id,
                principal: a.binding.principal.to_string(),
                resource_type: a.binding.resource_type.as_str().into(),
                resource_name: a.binding.resource_name,
                pattern_type: a.binding.pattern_type.as_str().into(),
                operation: a.binding.operation.as_str().into(),
                permission: a.binding.permission.as_str().into(),
                created_at: a.created_at,
            })
            .collect(),
        identity_providers: s
            .identity_providers
            .into_iter()
            .map(|p| Provider {
                id: p.id,
                display_name: p.display_name,
                description: p.description,
                issuer: p.issuer,
                jwks_uri: p.jwks_uri,
                identity_claim: p.identity_claim,
                enabled: p.enabled,
                jwks: p.jwks,
                jwks_fetched_at: p.jwks_fetched_at,
                created_at: p.created_at,
                updated_at: p.updated_at,
                certificate: p.certificate.as_ref().and_then(|c| {
                    serde_json::from_str(&keygate_store::columns::encode_authority(c)).ok()
                }),
            })
            .collect(),
        identity_pools: s
            .identity_pools
            .into_iter()
            .map(|p| Pool {
                id: p.id,
                provider_id: p.provider_id,
                display_name: p.display_name,
                description: p.description,
                identity_claim: p.identity_claim,
                filter: p.filter,
                enabled: p.enabled,
                created_at: p.created_at,
                updated_at: p.updated_at,
            })
            .collect(),
        signing_keys: s
            .signing_keys
            .into_iter()
            .map(|k| Signing {
                kid: k.kid,
                created_at: k.created_at,
                retired_at: k.retired_at,
            })
            .collect(),
        client_quotas: s
            .client_quotas
            .into_iter()
            .map(|q| Quota {
                id: q.id,
                display_name: q.display_name,
                description: q.description,
                cluster_id: q.cluster_id,
                environment_id: q.environment_id,
                principals: q.principals,
                ingress_byte_rate: q.ingress_byte_rate,
                egress_byte_rate: q.egress_byte_rate,
                request_rate: q.request_rate,
                created_at: q.created_at,
                updated_at: q.updated_at,
            })
            .collect(),
        user_passwords: passwords
            .into_iter()
            .map(|(user_id, hash)| Password { user_id, hash })
            .collect(),
    })
}

fn bad(what: &str, v: &str) -> anyhow::Error {
    anyhow::anyhow!("the document's {what} `{v}` is not valid")
}

fn from_doc(d: Document) -> anyhow::Result<(FullState, Vec<(String, String)>)> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let kind = |k: &str| ResourceKind::parse(k).ok_or_else(|| bad("resource kind", k));
    let akind = |k: &str| AccountKind::parse(k).ok_or_else(|| bad("account kind", k));
    let o = d.organization;
    let state = FullState {
        organization: Some(Organization {
            id: o.id,
            display_name: o.display_name,
            crn_authority: o.crn_authority,
            created_at: o.created_at,
        }),
        environments: d
            .environments
            .into_iter()
            .map(|e| Environment {
                id: e.id,
                display_name: e.display_name,
                created_at: e.created_at,
                updated_at: e.updated_at,
            })
            .collect(),
        resources: d
            .resources
            .into_iter()
            .map(|r| {
                let upstream_security =
                    keygate_store::columns::decode(r.upstream_security.map(|v| v.to_string()))
                        .map_err(|e| {
                            anyhow::anyhow!("resource {}: upstream_security: {e}", r.id)
                        })?;
                let ksql = keygate_store::columns::decode_ksql(r.ksql.map(|v| v.to_string()))
                    .map_err(|e| anyhow::anyhow!("resource {}: ksql: {e}", r.id))?;
                Ok(Resource {
                    upstream_security,
                    ksql,
                    kind: kind(&r.kind)?,
                    id: r.id,
                    environment_id: r.environment_id,
                    display_name: r.display_name,
                    upstream: r.upstream,
                    gateway_slot: r.gateway_slot,
                    created_at: r.created_at,
                    updated_at: r.updated_at,
                })
            })
            .collect::<anyhow::Result<_>>()?,
        accounts: d
            .accounts
            .into_iter()
            .map(|a| {
                Ok(Account {
                    kind: akind(&a.kind)?,
                    id: a.id,
                    display_name: a.display_name,
                    description: a.description,
                    email: a.email,
                    auth_type: a.auth_type,
                    created_at: a.created_at,
                    updated_at: a.updated_at,
                })
            })
            .collect::<anyhow::Result<_>>()?,
        api_keys: d
            .api_keys
            .into_iter()
            .map(|k| {
                Ok(ApiKey {
                    id: KeyId::parse(&k.id).ok_or_else(|| bad("key id", &k.id))?,
                    display_name: k.display_name,
                    description: k.description,
                    owner_kind: akind(&k.owner_kind)?,
                    owner_id: k.owner_id,
                    scope: match (k.scope.kind.as_str(), k.scope.id, k.scope.environment_id) {
                        ("CLOUD", None, None) => KeyScope::Cloud,
                        (kd, Some(id), Some(environment_id)) => KeyScope::Resource {
                            kind: kind(kd)?,
                            id,
                            environment_id,
                        },
                        (kd, _, _) => return Err(bad("key scope", kd)),
                    },
                    secret_hash: b64
                        .decode(&k.secret_hash)
                        .ok()
                        .and_then(|h| h.try_into().ok())
                        .ok_or_else(|| bad("secret hash", &k.id))?,
                    disabled: k.disabled,
                    expires_at: k.expires_at,
                    last_used_at: k.last_used_at,
                    created_at: k.created_at,
                    updated_at: k.updated_at,
                })
            })
            .collect::<anyhow::Result<_>>()?,
        role_bindings: d
            .role_bindings
            .into_iter()
            .map(|b| {
                Ok(RoleBinding {
                    principal: Principal::parse(&b.principal)
                        .map_err(|_| bad("principal", &b.principal))?,
                    role: Role::parse(&b.role).ok_or_else(|| bad("role", &b.role))?,
                    crn_pattern: CrnPattern::parse(&b.crn_pattern)
                        .map_err(|_| bad("CRN pattern", &b.crn_pattern))?,
                    id: b.id,
                    created_at: b.created_at,
                })
            })
            .collect::<anyhow::Result<_>>()?,
        acls: d
            .acls
            .into_iter()
            .map(|a| {
                Ok(Acl {
                    binding: AclBinding {
                        principal: Principal::parse(&a.principal)
                            .map_err(|_| bad("principal", &a.principal))?,
                        resource_type: ResourceType::parse(&a.resource_type)
                            .ok_or_else(|| bad("resource type", &a.resource_type))?,
                        pattern_type: PatternType::parse(&a.pattern_type)
                            .ok_or_else(|| bad("pattern type", &a.pattern_type))?,
                        operation: Operation::parse(&a.operation)
                            .ok_or_else(|| bad("operation", &a.operation))?,
                        permission: Permission::parse(&a.permission)
                            .ok_or_else(|| bad("permission", &a.permission))?,
                        resource_name: a.resource_name,
                    },
                    id: a.id,
                    cluster_id: a.cluster_id,
                    created_at: a.created_at,
                })
            })
            .collect::<anyhow::Result<_>>()?,
        identity_providers: d
            .identity_providers
            .into_iter()
            .map(|p| {
                let certificate =
                    keygate_store::columns::decode_authority(p.certificate.map(|v| v.to_string()))
                        .map_err(|e| {
                            anyhow::anyhow!("identity provider {}: certificate: {e}", p.id)
                        })?;
                Ok(IdentityProvider {
                    id: p.id,
                    display_name: p.display_name,
                    description: p.description,
                    issuer: p.issuer,
                    jwks_uri: p.jwks_uri,
                    identity_claim: p.identity_claim,
                    enabled: p.enabled,
                    jwks: p.jwks,
                    jwks_fetched_at: p.jwks_fetched_at,
                    created_at: p.created_at,
                    updated_at: p.updated_at,
                    certificate,
                })
            })
            .collect::<anyhow::Result<_>>()?,
        identity_pools: d
            .identity_pools
            .into_iter()
            .map(|p| IdentityPool {
                id: p.id,
                provider_id: p.provider_id,
                display_name: p.display_name,
                description: p.description,
                identity_claim: p.identity_claim,
                filter: p.filter,
                enabled: p.enabled,
                created_at: p.created_at,
                updated_at: p.updated_at,
            })
            .collect(),
        signing_keys: d
            .signing_keys
            .into_iter()
            .map(|k| SigningKey {
                kid: k.kid,
                created_at: k.created_at,
                retired_at: k.retired_at,
            })
            .collect(),
        client_quotas: d
            .client_quotas
            .into_iter()
            .map(|q| keygate_core::model::ClientQuota {
                id: q.id,
                display_name: q.display_name,
                description: q.description,
                cluster_id: q.cluster_id,
                environment_id: q.environment_id,
                principals: q.principals,
                ingress_byte_rate: q.ingress_byte_rate,
                egress_byte_rate: q.egress_byte_rate,
                request_rate: q.request_rate,
                created_at: q.created_at,
                updated_at: q.updated_at,
            })
            .collect(),
        seq: 0,
    };
    let passwords = d
        .user_passwords
        .into_iter()
        .map(|p| (p.user_id, p.hash))
        .collect();
    Ok((state, passwords))
}

pub(crate) fn export(a: ExportArgs) -> anyhow::Result<()> {
    let rt = runtime()?;
    let (state, passwords, hasher) = rt.block_on(async {
        let (store, hasher, _) = open(a.data_dir, a.database, None).await?;
        Ok::<_, anyhow::Error>((
            store.load_all().await?,
            store.password_hashes().await?,
            hasher,
        ))
    })?;
    let keys = state.api_keys.len();
    let doc = to_doc(state, passwords, pepper_check(&hasher))?;
    let text = serde_json::to_string_pretty(&doc)?;
    match a.file {
        None => outln!("{text}"),
        Some(path) => {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            eprintln!(
                "Exported the organization with {keys} API keys to {}.",
                path.display()
            );
        }
    }
    Ok(())
}

pub(crate) fn import(a: ImportArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&a.input)
        .with_context(|| format!("reading {}", a.input.display()))?;
    let doc: Document = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a keygate export", a.input.display()))?;
    if doc.format != FORMAT {
        bail!(
            "{} is not a keygate export (format `{}`)",
            a.input.display(),
            doc.format
        );
    }
    if doc.version != VERSION {
        bail!(
            "export version {} is not supported by this keygate (it reads version {VERSION})",
            doc.version
        );
    }
    if let Some(dir) = &a.data_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let rt = runtime()?;
    let (store, hasher, pepper_path) = rt.block_on(open(a.data_dir, a.database, None))?;
    if doc.pepper_check != pepper_check(&hasher) {
        bail!(
            "{} is not the pepper of the exported installation: no key would authenticate. Copy the source's pepper.key",
            pepper_path.display()
        );
    }
    let (state, passwords) = from_doc(doc)?;
    let (keys, org_crn) = (
        state.api_keys.len(),
        state
            .organization
            .as_ref()
            .map(|o| o.crn().to_string())
            .unwrap_or_default(),
    );
    let summary = format!("imported from {} ({keys} API keys)", a.input.display());
    rt.block_on(import_into(
        store.as_ref(),
        state,
        passwords,
        &hasher,
        org_crn,
        summary,
    ))?;
    eprintln!("Imported the organization with {keys} API keys.");
    Ok(())
}

/// Load `state` into an empty database with its audit record (`ImportState`, by the
/// system) and record the installation's pepper check there.
async fn import_into(
    store: &dyn Store,
    state: FullState,
    passwords: Vec<(String, String)>,
    hasher: &SecretHasher,
    org_crn: String,
    summary: String,
) -> anyhow::Result<()> {
    let record = keygate_audit::CloudEvent::new(
        keygate_audit::types::IAM_REQUEST,
        org_crn.clone(),
        "keygate.iam",
        "ImportState",
        org_crn,
        Utc::now(),
    )
    .who(Some("System:keygate".into()), None, None)
    .result(keygate_audit::status::SUCCESS, Some(summary));
    store.import(state, passwords, &record).await?;
    store
        .init_setting("pepper_check", &pepper_check(hasher))
        .await?;
    Ok(())
}

/// Sinks whose delivery position moves with the audit log.
const SINKS: [&str; 2] = ["file", "kafka"];

pub(crate) fn migrate(a: MigrateArgs) -> anyhow::Result<()> {
    let rt = runtime()?;
    rt.block_on(async {
        let (source, hasher, _) = open(a.data_dir.clone(), a.from.clone(), a.pepper_file.clone()).await?;
        let target_db = crate::config::parse_database(&a.to)?;
        let target = crate::server::open_store(&target_db).await?;
        if target.load_all().await?.organization.is_some()
            || !target
                .query_audit(&AuditQuery {
                    limit: 1,
                    ..AuditQuery::default()
                })
                .await?
                .is_empty()
        {
            bail!("the target database {target_db:?} is not empty; migrate into a new one");
        }
        let state = source.load_all().await?;
        let passwords = source.password_hashes().await?;
        let keys = state.api_keys.len();
        let org_crn = state
            .organization
            .as_ref()
            .map(|o| o.crn().to_string())
            .context("the source database has no organization: nothing to migrate")?;

        // The audit log first, in order, keeping each sink's delivery position.
        let mut cursors = Vec::new();
        for sink in SINKS {
            let at = source.audit_cursor(sink).await?;
            if at > 0 {
                cursors.push((sink, at, 0i64));
            }
        }
        let (mut after, mut target_after, mut records) = (0i64, 0i64, 0usize);
        loop {
            let page = source
                .query_audit(&AuditQuery {
                    after: Some(after),
                    limit: 1000,
                    ..AuditQuery::default()
                })
                .await?;
            let Some(last) = page.last().map(|r| r.seq) else {
                break;
            };
            target
                .append_audit(page.iter().map(|r| r.event.clone()).collect())
                .await?;
            let copied = target
                .query_audit(&AuditQuery {
                    after: Some(target_after),
                    limit: 1000,
                    ..AuditQuery::default()
                })
                .await?;
            if copied.len() != page.len() {
                bail!("audit log copy out of step ({} of {} records)", copied.len(), page.len());
            }
            for (src, dst) in page.iter().zip(&copied) {
                for c in cursors.iter_mut().filter(|c| src.seq <= c.1) {
                    c.2 = dst.seq;
                }
            }
            records += page.len();
            after = last;
            target_after = copied.last().map_or(target_after, |r| r.seq);
        }
        for (sink, _, at) in &cursors {
            target.set_audit_cursor(sink, *at).await?;
        }

        let summary = format!("migrated from {} database ({keys} API keys)", source.kind());
        import_into(target.as_ref(), state, passwords, &hasher, org_crn, summary).await?;
        eprintln!(
            "Migrated the organization with {keys} API keys and {records} audit records to {target_db:?}."
        );
        eprintln!(
            "Start every instance with --database <that URL> and this installation's pepper file; keys keep working as they are."
        );
        Ok(())
    })
}
