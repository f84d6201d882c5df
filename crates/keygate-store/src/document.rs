//! The export document: the whole state of an installation as one versioned JSON
//! document — organization, environments, resources (with their gateway slots),
//! accounts, API keys (their secrets' hashes, never secrets), role bindings, ACLs,
//! identity providers and pools, STS signing-key ids, client quotas, console password
//! hashes. `keygate export` writes it and `keygate import` reads it; it lives here,
//! beside [`FullState`], so that its parser can be fuzzed (`fuzz/fuzz_targets/document.rs`)
//! and its checks are the store's own.
//!
//! Reading is strict: unknown fields, another format or version, an invalid key id,
//! CRN, principal or enumeration, a hash of the wrong length — each is refused with
//! what and where, and nothing is loaded.

use crate::FullState;
use base64::Engine;
use chrono::{DateTime, Utc};
use keygate_core::crn::CrnPattern;
use keygate_core::model::{
    Account, AccountKind, Acl, ApiKey, Environment, IdentityPool, IdentityProvider, KeyScope,
    Organization, Resource, RoleBinding, SigningKey,
};
use keygate_core::{
    AclBinding, KeyId, Operation, PatternType, Permission, Principal, ResourceKind, ResourceType,
    Role,
};
use serde::{Deserialize, Serialize};

/// The document's `format`.
pub const FORMAT: &str = "keygate-export";
/// The document version this keygate writes and reads.
pub const VERSION: u32 = 1;

/// Why a document cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// Writing: the state has no organization.
    #[error("the database has no organization: nothing to export")]
    NoOrganization,
    /// Not JSON of the document's shape (serde's message: where and what).
    #[error("not a keygate export: {0}")]
    Json(String),
    /// JSON of the right shape but another `format`.
    #[error("not a keygate export (format `{0}`)")]
    Format(String),
    /// A version this keygate does not read.
    #[error("export version {0} is not supported by this keygate (it reads version {VERSION})")]
    Version(u32),
    /// A field whose value is not a valid id, CRN, principal or enumeration member.
    #[error("the document's {what} `{value}` is not valid")]
    Invalid {
        /// Which field.
        what: String,
        /// Its value (at most 200 characters).
        value: String,
    },
    /// A structured column (upstream security, ksqlDB, certificate authority) that
    /// does not read.
    #[error("{0}")]
    Column(String),
}

/// The whole document.
///
/// Fields mirror `keygate_core::model`, where they are documented.
#[allow(missing_docs)]
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    pub format: String,
    pub version: u32,
    pub exported_at: DateTime<Utc>,
    /// HMAC of a constant under the pepper: tells whether a target has the same pepper.
    pub pepper_check: String,
    pub organization: Org,
    pub environments: Vec<Env>,
    pub resources: Vec<Res>,
    pub accounts: Vec<Acct>,
    pub api_keys: Vec<Key>,
    pub role_bindings: Vec<Binding>,
    pub acls: Vec<AclDoc>,
    pub identity_providers: Vec<Provider>,
    pub identity_pools: Vec<Pool>,
    pub signing_keys: Vec<Signing>,
    /// Client quotas (absent in exports made before they existed).
    #[serde(default)]
    pub client_quotas: Vec<Quota>,
    pub user_passwords: Vec<Password>,
}

/// The organization.
///
/// Fields mirror `keygate_core::model`, where they are documented.
#[allow(missing_docs)]
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Org {
    pub id: String,
    pub display_name: String,
    pub crn_authority: String,
    pub created_at: DateTime<Utc>,
}

/// An environment.
///
/// Fields mirror `keygate_core::model`, where they are documented.
#[allow(missing_docs)]
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Env {
    pub id: String,
    pub display_name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A resource (Kafka cluster, Schema Registry, ksqlDB cluster, Flink region, Tableflow).
///
/// Fields mirror `keygate_core::model`, where they are documented.
#[allow(missing_docs)]
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Res {
    pub id: String,
    pub kind: String,
    pub environment_id: String,
    pub display_name: String,
    pub upstream: String,
    /// Kafka: the gateway's connection settings, secrets sealed (they open only with
    /// the same pepper, which import checks). Absent: plaintext.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_security: Option<serde_json::Value>,
    pub gateway_slot: Option<u32>,
    /// ksqlDB: its Kafka cluster, credential identity and CSUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ksql: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A user or service account.
///
/// Fields mirror `keygate_core::model`, where they are documented.
#[allow(missing_docs)]
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Acct {
    pub id: String,
    pub kind: String,
    pub display_name: String,
    pub description: String,
    pub email: String,
    pub auth_type: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An API key: its secret's keyed hash, never the secret.
///
/// Fields mirror `keygate_core::model`, where they are documented.
#[allow(missing_docs)]
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Key {
    pub id: String,
    pub display_name: String,
    pub description: String,
    pub owner_id: String,
    pub owner_kind: String,
    /// `CLOUD`, or the resource's kind, id and environment.
    pub scope: ScopeDoc,
    /// base64 of the keyed hash (HMAC-SHA-256 under the pepper).
    pub secret_hash: String,
    pub disabled: bool,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An API key's scope.
///
/// Fields mirror `keygate_core::model`, where they are documented.
#[allow(missing_docs)]
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeDoc {
    pub kind: String,
    pub id: Option<String>,
    pub environment_id: Option<String>,
}

/// A role binding.
///
/// Fields mirror `keygate_core::model`, where they are documented.
#[allow(missing_docs)]
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Binding {
    pub id: String,
    pub principal: String,
    pub role: String,
    pub crn_pattern: String,
    pub created_at: DateTime<Utc>,
}

/// A Kafka ACL.
///
/// Fields mirror `keygate_core::model`, where they are documented.
#[allow(missing_docs)]
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclDoc {
    pub id: String,
    pub cluster_id: String,
    pub principal: String,
    pub resource_type: String,
    pub resource_name: String,
    pub pattern_type: String,
    pub operation: String,
    pub permission: String,
    pub created_at: DateTime<Utc>,
}

/// An identity provider, with its last fetched JWKS.
///
/// Fields mirror `keygate_core::model`, where they are documented.
#[allow(missing_docs)]
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    pub id: String,
    pub display_name: String,
    pub description: String,
    pub issuer: String,
    pub jwks_uri: String,
    pub identity_claim: String,
    pub enabled: bool,
    pub jwks: String,
    pub jwks_fetched_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Certificate authorities: chain, file name and CRL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<serde_json::Value>,
}

/// An identity pool.
///
/// Fields mirror `keygate_core::model`, where they are documented.
#[allow(missing_docs)]
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    pub id: String,
    pub provider_id: String,
    pub display_name: String,
    pub description: String,
    pub identity_claim: String,
    pub filter: String,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An STS signing key's id (the key itself stays in the data directory).
///
/// Fields mirror `keygate_core::model`, where they are documented.
#[allow(missing_docs)]
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signing {
    pub kid: String,
    pub created_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
}

/// A client quota.
///
/// Fields mirror `keygate_core::model`, where they are documented.
#[allow(missing_docs)]
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    pub id: String,
    pub display_name: String,
    pub description: String,
    pub cluster_id: String,
    pub environment_id: String,
    pub principals: Vec<String>,
    pub ingress_byte_rate: u64,
    pub egress_byte_rate: u64,
    pub request_rate: Option<u64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A user's console password hash.
///
/// Fields mirror `keygate_core::model`, where they are documented.
#[allow(missing_docs)]
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Password {
    pub user_id: String,
    /// argon2id PHC string.
    pub hash: String,
}

impl Document {
    /// The document for `s` (passwords are `(user id, argon2id hash)`; `check` is the
    /// installation's pepper check).
    pub fn from_state(
        s: FullState,
        passwords: Vec<(String, String)>,
        check: String,
    ) -> Result<Document, DocumentError> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let o = s.organization.ok_or(DocumentError::NoOrganization)?;
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
                    upstream_security: crate::columns::encode(&r.upstream_security)
                        .and_then(|j| serde_json::from_str(&j).ok()),
                    gateway_slot: r.gateway_slot,
                    ksql: r.ksql.as_ref().map(|k| {
                        serde_json::from_str(&crate::columns::encode_ksql(k))
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
                        serde_json::from_str(&crate::columns::encode_authority(c)).ok()
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

    /// Parse an export: JSON of this format and version, nothing unknown.
    pub fn parse(text: &str) -> Result<Document, DocumentError> {
        let doc: Document =
            serde_json::from_str(text).map_err(|e| DocumentError::Json(e.to_string()))?;
        if doc.format != FORMAT {
            return Err(DocumentError::Format(doc.format.chars().take(64).collect()));
        }
        if doc.version != VERSION {
            return Err(DocumentError::Version(doc.version));
        }
        Ok(doc)
    }

    /// The state and password hashes the document describes, every identifier, CRN,
    /// principal and enumeration checked.
    pub fn into_state(self) -> Result<(FullState, Vec<(String, String)>), DocumentError> {
        let d = self;
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
                        crate::columns::decode(r.upstream_security.map(|v| v.to_string()))
                            .map_err(|e| {
                                DocumentError::Column(format!(
                                    "resource {}: upstream_security: {e}",
                                    r.id
                                ))
                            })?;
                    let ksql = crate::columns::decode_ksql(r.ksql.map(|v| v.to_string())).map_err(
                        |e| DocumentError::Column(format!("resource {}: ksql: {e}", r.id)),
                    )?;
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
                .collect::<Result<_, DocumentError>>()?,
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
                .collect::<Result<_, DocumentError>>()?,
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
                .collect::<Result<_, DocumentError>>()?,
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
                .collect::<Result<_, DocumentError>>()?,
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
                .collect::<Result<_, DocumentError>>()?,
            identity_providers: d
                .identity_providers
                .into_iter()
                .map(|p| {
                    let certificate =
                        crate::columns::decode_authority(p.certificate.map(|v| v.to_string()))
                            .map_err(|e| {
                                DocumentError::Column(format!(
                                    "identity provider {}: certificate: {e}",
                                    p.id
                                ))
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
                .collect::<Result<_, DocumentError>>()?,
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
}

fn bad(what: &str, v: &str) -> DocumentError {
    DocumentError::Invalid {
        what: what.into(),
        value: v.chars().take(200).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn minimal() -> Value {
        let t = "2026-01-01T00:00:00Z";
        json!({
            "format": FORMAT, "version": VERSION, "exported_at": t, "pepper_check": "c",
            "organization": {"id": "org-1", "display_name": "o", "crn_authority": "a", "created_at": t},
            "environments": [], "resources": [], "accounts": [],
            "api_keys": [{"id": "ABCDEFGHIJKLMNOP", "display_name": "", "description": "",
                "owner_id": "sa-1", "owner_kind": "service-account",
                "scope": {"kind": "CLOUD", "id": null, "environment_id": null},
                "secret_hash": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "disabled": false,
                "expires_at": null, "last_used_at": null, "created_at": t, "updated_at": t}],
            "role_bindings": [], "acls": [], "identity_providers": [], "identity_pools": [],
            "signing_keys": [], "user_passwords": []
        })
    }

    fn read(v: &Value) -> Result<(FullState, Vec<(String, String)>), DocumentError> {
        Document::parse(&v.to_string())?.into_state()
    }

    #[test]
    fn a_document_reads_and_writes_back_the_same() {
        let (state, pw) = read(&minimal()).expect("reads");
        assert_eq!(state.api_keys.len(), 1);
        let mut doc = Document::from_state(state, pw, "c".into()).expect("writes");
        doc.exported_at = "2026-01-01T00:00:00Z".parse().expect("time");
        let mut want = minimal();
        want["client_quotas"] = json!([]);
        assert_eq!(serde_json::to_value(&doc).expect("json"), want);
    }

    #[test]
    fn each_defect_is_refused_with_what_and_where() {
        let cases: [(&str, Value, &str); 6] = [
            ("/extra", json!(1), "unknown field `extra`"),
            ("/format", json!("other"), "format `other`"),
            ("/version", json!(99), "export version 99"),
            ("/api_keys/0/id", json!("nope"), "key id `nope`"),
            ("/api_keys/0/secret_hash", json!("AAAA"), "secret hash"),
            (
                "/api_keys/0/owner_kind",
                json!("robot"),
                "account kind `robot`",
            ),
        ];
        for (pointer, value, want) in cases {
            let mut doc = minimal();
            match doc.pointer_mut(pointer) {
                Some(slot) => *slot = value,
                None => {
                    doc["extra"] = value;
                }
            }
            let err = read(&doc).expect_err(pointer).to_string();
            assert!(err.contains(want), "{pointer}: {err}");
        }
    }
}
