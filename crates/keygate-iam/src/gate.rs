//! The data-plane door of the HTTP gateway: a client's credential for one service
//! (Schema Registry, ksqlDB, Flink region, Tableflow) becomes a [`Session`]; every
//! decision on that session goes through the one authorizer; failures and denials are
//! audited here, allowed traffic is counted into summaries. The gateway itself only
//! translates HTTP into these calls.
//!
//! Credentials accepted:
//! - HTTP Basic with a key scoped to *this* resource (any other key — another
//!   resource's, a CLOUD key, a wrong, disabled, expired or deleted one — fails the
//!   same way after the same delay);
//! - `Bearer` with an identity provider's token (the pool chosen by the request's
//!   pool header, or every pool whose filter matches) or one of keygate's STS tokens;
//! - `Bearer` with a catalog token (Tableflow): issued by [`Gate::catalog_token`] for a
//!   Tableflow key and secret (the Iceberg REST client-credentials flow), valid for
//!   [`CATALOG_TOKEN_TTL`], bound to the key — disabling or deleting the key ends it.
//!
//! Nothing here sees a secret after verifying it; records carry key ids, pool ids and
//! token subjects only.

use crate::snapshot::ScopeCheck;
use crate::{Door, Iam};
use base64::Engine;
use chrono::Utc;
use hmac::{Hmac, Mac};
use keygate_audit::usage::{Subject, Traffic, UsageBatch};
use keygate_audit::{status, types, Auditor, AuthorizationInfo, CloudEvent};
use keygate_core::crn::CrnPattern;
use keygate_core::model::Resource;
use keygate_core::{KeyId, Operation, Principal, ResourceKind, ResourceType, Secret, ServiceOp};
use sha2::Sha256;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Owners remembered in memory at most (the rest are read from the store again).
const OWNERS_CACHED: usize = 10_000;

/// How long a catalog token lives.
pub const CATALOG_TOKEN_TTL: Duration = Duration::from_secs(3600);
const CATALOG_PREFIX: &str = "kgc_";

/// A client's credential as the HTTP gateway read it.
#[derive(Debug)]
pub enum Credential<'a> {
    /// `Authorization: Basic` (`key:secret`).
    Basic {
        /// The user name (a key id, when the client used the fields right).
        key: &'a str,
        /// The password.
        secret: Secret,
    },
    /// `Authorization: Bearer`.
    Bearer {
        /// The token (never logged).
        token: &'a str,
        /// The identity pool the request names, if any.
        pool: Option<&'a str>,
    },
    /// No usable `Authorization` header (missing, unknown scheme, malformed).
    Missing,
}

/// An authenticated client of one service.
#[derive(Debug, Clone)]
pub struct Session {
    /// The principals it acts as: a key's owner, or the pools a token matched.
    pub principals: Vec<Principal>,
    /// `HTTP_BASIC` or `HTTP_BEARER`.
    pub mechanism: &'static str,
    /// The key id, or the pools (for records).
    pub identifier: String,
    /// A token's subject.
    pub identity: Option<String>,
    key_id: Option<KeyId>,
    expires_at: Option<i64>,
    resource_key: String,
    kind: ResourceKind,
}

impl Session {
    /// The principal records name (the first one).
    pub fn principal(&self) -> &Principal {
        &self.principals[0]
    }
}

/// Authentication failed; the client gets one uniform answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("authentication failed")]
pub struct Unauthenticated;

/// The HTTP gateway's handle on the IAM service and the audit pipeline.
#[derive(Clone)]
pub struct Gate {
    iam: Arc<Iam>,
    auditor: Auditor,
    failure_delay: Duration,
    catalog_key: [u8; 32],
    /// Owners of objects created through the gateway (Flink jobs), by resource key
    /// and object id; filled from the store on a miss. The store is the truth: at
    /// [`OWNERS_CACHED`] entries the cache is emptied, so its size is bounded.
    owners: Arc<Mutex<HashMap<(String, String), String>>>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate").finish_non_exhaustive()
    }
}

impl Gate {
    /// A gate on `iam` that records into `auditor`; failed authentications are
    /// answered after `failure_delay` (plus the source's penalty).
    pub fn new(iam: Arc<Iam>, auditor: Auditor, failure_delay: Duration) -> Self {
        let catalog_key = iam.snapshot().hasher().derive("catalog-token-v1", "");
        Gate {
            iam,
            auditor,
            failure_delay,
            catalog_key,
            owners: Arc::default(),
        }
    }

    /// The organization's id (Tableflow's catalog paths name it).
    pub fn organization_id(&self) -> String {
        self.iam.org().id.clone()
    }

    /// The organization's CRN.
    pub fn organization_crn(&self) -> CrnPattern {
        self.iam.organization_crn()
    }

    /// The registered HTTP services, by storage key.
    pub fn services(&self) -> arc_swap::Guard<Arc<HashMap<String, Resource>>> {
        self.iam.snapshot().services()
    }

    /// Whether `id` is a Kafka cluster of environment `env` (Tableflow namespaces).
    pub fn kafka_cluster_in(&self, env: &str, id: &str) -> bool {
        self.iam
            .snapshot()
            .kafka_clusters()
            .get(id)
            .is_some_and(|c| c.environment_id == env)
    }

    /// The Kafka clusters of environment `env`, sorted.
    pub fn kafka_clusters_of(&self, env: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .iam
            .snapshot()
            .kafka_clusters()
            .values()
            .filter(|c| c.environment_id == env)
            .map(|c| c.id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// The gateway's own credential for a service's upstream, opened.
    pub fn upstream_secrets(&self, r: &Resource) -> crate::Result<crate::UpstreamSecrets> {
        self.iam.service_upstream_secrets(r)
    }

    // ---- authentication ----------------------------------------------------------------

    /// Authenticate `cred` for resource `r`. A failure is logged with its reason,
    /// audited, and answered after the uniform delay plus the source's penalty.
    pub async fn authenticate(
        &self,
        r: &Resource,
        cred: Credential<'_>,
        peer: SocketAddr,
    ) -> Result<Session, Unauthenticated> {
        let outcome = match self.iam.snapshot().check_fresh() {
            Err(age) => Err((
                None,
                "HTTP_BASIC",
                format!("snapshot not confirmed for {} s", age.as_secs()),
            )),
            Ok(()) => self.check(r, cred).await,
        };
        match outcome {
            Ok(s) => {
                keygate_metrics::authentication("http", s.mechanism, true);
                Ok(s)
            }
            Err((identifier, mechanism, reason)) => {
                keygate_metrics::authentication("http", mechanism, false);
                tracing::info!(
                    resource = %r.id,
                    %peer,
                    key = identifier.as_deref().unwrap_or("-"),
                    reason,
                    "HTTP gateway authentication failed"
                );
                self.audit_failure(r, mechanism, identifier, &reason, peer);
                let penalty = self.iam.auth_failed(Door::Http, peer.ip());
                let wait = penalty.wait.min(Duration::from_secs(10));
                tokio::time::sleep(self.failure_delay + wait).await;
                Err(Unauthenticated)
            }
        }
    }

    async fn check(
        &self,
        r: &Resource,
        cred: Credential<'_>,
    ) -> Result<Session, (Option<String>, &'static str, String)> {
        match cred {
            Credential::Missing => Err((
                None,
                "HTTP_BASIC",
                "missing or malformed Authorization header".into(),
            )),
            Credential::Basic { key, secret } => self.check_key(r, key, &secret, "HTTP_BASIC"),
            Credential::Bearer { token, .. } if token.starts_with(CATALOG_PREFIX) => {
                self.check_catalog_token(r, token)
            }
            Credential::Bearer { token, pool } => {
                let id = self
                    .iam
                    .authenticate_token(token, pool, true)
                    .await
                    .map_err(|e| (None, "HTTP_BEARER", e.to_string()))?;
                Ok(Session {
                    principals: id
                        .pools
                        .iter()
                        .map(|p| Principal::user(p.clone()))
                        .collect(),
                    mechanism: "HTTP_BEARER",
                    identifier: id.pools.join(","),
                    identity: Some(id.subject),
                    key_id: None,
                    expires_at: Some(id.expires_at),
                    resource_key: r.storage_key(),
                    kind: r.kind,
                })
                .and_then(|s| {
                    if s.principals.is_empty() {
                        Err((None, "HTTP_BEARER", "no identity pool matches".into()))
                    } else {
                        Ok(s)
                    }
                })
            }
        }
    }

    fn check_key(
        &self,
        r: &Resource,
        key: &str,
        secret: &Secret,
        mechanism: &'static str,
    ) -> Result<Session, (Option<String>, &'static str, String)> {
        // Only an id-shaped user name is recorded: a client that put its secret in
        // the wrong field must not get it into a log.
        let shown = KeyId::parse(key).map(|k| k.to_string());
        let storage_key = r.storage_key();
        let entry = self
            .iam
            .snapshot()
            .verify(
                key,
                secret,
                ScopeCheck::Resource(r.kind, &storage_key),
                Utc::now(),
            )
            .map_err(|e| (shown.clone(), mechanism, e.as_str().to_owned()))?;
        Ok(Session {
            principals: vec![Principal::user(entry.owner_id.to_string())],
            mechanism,
            identifier: entry.id.to_string(),
            identity: None,
            key_id: Some(entry.id),
            expires_at: None,
            resource_key: storage_key,
            kind: r.kind,
        })
    }

    /// Changes whenever a credential may have been revoked: watchers of open
    /// streams re-check [`Gate::still_valid`] at once.
    pub fn revocations(&self) -> tokio::sync::watch::Receiver<u64> {
        self.iam.snapshot().revocations()
    }

    /// Whether a session may go on (long responses and streams check this): its key
    /// still exists, is enabled, unexpired and for this resource; its token has not
    /// expired.
    pub fn still_valid(&self, s: &Session) -> bool {
        let now = Utc::now();
        if s.expires_at.is_some_and(|e| e <= now.timestamp()) {
            return false;
        }
        match &s.key_id {
            None => true,
            Some(id) => self.iam.snapshot().key(&id.to_string()).is_some_and(|k| {
                !k.disabled
                    && k.expires_at.is_none_or(|e| e > now)
                    && k.resource
                        .as_ref()
                        .is_some_and(|(kind, key)| *kind == s.kind && *key == s.resource_key)
            }),
        }
    }

    // ---- Tableflow catalog tokens ---------------------------------------------------------

    /// The Iceberg REST client-credentials exchange: a Tableflow key and secret for a
    /// token (and its lifetime in seconds) the catalog client then sends as Bearer.
    pub async fn catalog_token(
        &self,
        r: &Resource,
        key: &str,
        secret: Secret,
        peer: SocketAddr,
    ) -> Result<(String, u64), Unauthenticated> {
        let session = self
            .authenticate(r, Credential::Basic { key, secret }, peer)
            .await?;
        let Some(key_id) = session.key_id else {
            return Err(Unauthenticated);
        };
        let expires = Utc::now().timestamp() + CATALOG_TOKEN_TTL.as_secs() as i64;
        let mut body = key_id.to_string().into_bytes();
        body.extend_from_slice(&expires.to_be_bytes());
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let token = format!(
            "{CATALOG_PREFIX}{}.{}",
            b64.encode(&body),
            b64.encode(self.catalog_mac(&r.storage_key(), &body))
        );
        Ok((token, CATALOG_TOKEN_TTL.as_secs()))
    }

    fn catalog_mac(&self, resource_key: &str, body: &[u8]) -> [u8; 32] {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.catalog_key) else {
            return [0; 32];
        };
        mac.update(resource_key.as_bytes());
        mac.update(&[0]);
        mac.update(body);
        mac.finalize().into_bytes().into()
    }

    fn check_catalog_token(
        &self,
        r: &Resource,
        token: &str,
    ) -> Result<Session, (Option<String>, &'static str, String)> {
        let fail = |why: &str| Err((None, "HTTP_BEARER", why.to_owned()));
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let Some((body, mac)) = token[CATALOG_PREFIX.len()..].split_once('.') else {
            return fail("malformed catalog token");
        };
        let (Ok(body), Ok(mac)) = (b64.decode(body), b64.decode(mac)) else {
            return fail("malformed catalog token");
        };
        let expected = self.catalog_mac(&r.storage_key(), &body);
        if body.len() != 24 || !bool::from(subtle::ConstantTimeEq::ct_eq(&expected[..], &mac[..])) {
            return fail("catalog token signature does not verify for this resource");
        }
        let (key, exp) = body.split_at(16);
        let exp = i64::from_be_bytes(exp.try_into().unwrap_or([0; 8]));
        if exp <= Utc::now().timestamp() {
            return fail("catalog token expired");
        }
        let key = String::from_utf8_lossy(key).into_owned();
        let mut s = Session {
            principals: Vec::new(),
            mechanism: "HTTP_BEARER",
            identifier: key.clone(),
            identity: None,
            key_id: KeyId::parse(&key),
            expires_at: Some(exp),
            resource_key: r.storage_key(),
            kind: r.kind,
        };
        let owner = self
            .iam
            .snapshot()
            .key(&key)
            .map(|k| k.owner_id.to_string());
        match owner {
            Some(owner) if self.still_valid(&s) => {
                s.principals.push(Principal::user(owner));
                Ok(s)
            }
            _ => fail("the catalog token's key is no longer valid"),
        }
    }

    // ---- authorization -------------------------------------------------------------------

    /// Whether the session may do `op` on `target` (a subject, registry, ksqlDB cluster
    /// or Flink region CRN).
    pub fn may(&self, s: &Session, target: &CrnPattern, op: ServiceOp) -> bool {
        let authz = self.iam.snapshot().authz();
        s.principals
            .iter()
            .any(|p| authz.authorize_service(p, target, op).allowed)
    }

    /// Whether the session may do `op` on something inside `scope`.
    pub fn may_within(&self, s: &Session, scope: &CrnPattern, op: ServiceOp) -> bool {
        let authz = self.iam.snapshot().authz();
        s.principals
            .iter()
            .any(|p| authz.authorize_service_within(p, scope, op))
    }

    /// Whether the session may do Kafka operation `op` on topic `topic` of `cluster`
    /// (Tableflow tables).
    pub fn may_topic(&self, s: &Session, cluster: &str, topic: &str, op: Operation) -> bool {
        let authz = self.iam.snapshot().authz();
        s.principals.iter().any(|p| {
            authz
                .authorize(cluster, p, ResourceType::Topic, topic, op)
                .allowed
        })
    }

    /// Whether the session may do `op` on some topic of `cluster`.
    pub fn may_any_topic(&self, s: &Session, cluster: &str, op: Operation) -> bool {
        let authz = self.iam.snapshot().authz();
        s.principals
            .iter()
            .any(|p| authz.authorize_any(cluster, p, ResourceType::Topic, op))
    }

    /// Whether the session may do `op` on Kafka cluster `cluster` itself.
    pub fn may_cluster(&self, s: &Session, cluster: &str, op: Operation) -> bool {
        let authz = self.iam.snapshot().authz();
        s.principals.iter().any(|p| {
            authz
                .authorize(cluster, p, ResourceType::Cluster, "kafka-cluster", op)
                .allowed
        })
    }

    // ---- objects created through the gateway (Flink jobs) -----------------------------

    /// Record that the session's principal created `object_id` on `r`.
    pub async fn record_owner(&self, s: &Session, r: &Resource, object_id: &str) {
        let who = s.principal().to_string();
        let key = r.storage_key();
        if let Ok(mut m) = self.owners.lock() {
            if m.len() >= OWNERS_CACHED {
                m.clear();
            }
            m.insert((key.clone(), object_id.to_owned()), who.clone());
        }
        if let Err(e) = self
            .iam
            .store
            .record_service_object(&key, object_id, &who, Utc::now())
            .await
        {
            tracing::warn!(resource = %r.id, object = object_id, error = %e, "could not record who created an object");
        }
    }

    /// Who created each of `ids` on `r` (absent: not created through keygate).
    pub async fn owners(&self, r: &Resource, ids: &[String]) -> HashMap<String, String> {
        let key = r.storage_key();
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        if let Ok(m) = self.owners.lock() {
            for id in ids {
                match m.get(&(key.clone(), id.clone())) {
                    Some(o) => {
                        found.insert(id.clone(), o.clone());
                    }
                    None => missing.push(id.clone()),
                }
            }
        }
        if !missing.is_empty() {
            if let Ok(rows) = self.iam.store.service_object_owners(&key, &missing).await {
                if let Ok(mut m) = self.owners.lock() {
                    if m.len() + rows.len() > OWNERS_CACHED {
                        m.clear();
                    }
                    for (id, o) in &rows {
                        m.insert((key.clone(), id.clone()), o.clone());
                    }
                }
                found.extend(rows);
            }
        }
        found
    }

    /// Whether one of the session's principals created the object (owner as recorded).
    pub fn owns(s: &Session, owner: Option<&String>) -> bool {
        owner.is_some_and(|o| s.principals.iter().any(|p| &p.to_string() == o))
    }

    // ---- records ----------------------------------------------------------------------

    /// Count an allowed request (summarised per window: principal, credential, target).
    pub fn count(&self, s: &Session, r: &Resource, write: bool, target: &str, bytes: u64) {
        if !self.auditor.enabled() {
            return;
        }
        let crn: Arc<str> = r.crn(&self.organization_crn()).to_string().into();
        let t = if write {
            Traffic::HttpWrite
        } else {
            Traffic::HttpRead
        };
        self.auditor.usage(UsageBatch {
            subject: Subject {
                cluster_crn: crn.clone(),
                resource_base: crn,
                principal: s.principal().to_string().into(),
                mechanism: s.mechanism,
                identifier: s.identifier.as_str().into(),
            },
            counts: vec![(
                (t, target.to_owned()),
                keygate_audit::usage::Counts { requests: 1, bytes },
            )],
        });
    }

    fn event(&self, r: &Resource, kind: &str, method: &str, resource: String) -> CloudEvent {
        let crn = r.crn(&self.organization_crn()).to_string();
        CloudEvent::new(kind, crn.clone(), crn, method, resource, Utc::now())
    }

    fn audit_failure(
        &self,
        r: &Resource,
        mechanism: &'static str,
        identifier: Option<String>,
        reason: &str,
        peer: SocketAddr,
    ) {
        if !self.auditor.enabled() {
            return;
        }
        let crn = r.crn(&self.organization_crn()).to_string();
        let e = self
            .event(r, types::HTTP_AUTHENTICATION, "http.Authentication", crn)
            .who(None, Some(mechanism), identifier)
            .client_address(Some(peer.to_string()))
            .result(status::UNAUTHENTICATED, Some(reason.to_owned()));
        self.auditor.record(e);
    }

    /// Record a denied request: `method` (`http.GET`, …) on `target` (`subject=…`,
    /// `job=…`, or empty for the service itself).
    pub fn record_denial(&self, s: &Session, r: &Resource, method: &str, target: &str) {
        if !self.auditor.enabled() {
            return;
        }
        let base = r.crn(&self.organization_crn()).to_string();
        let resource = if target.is_empty() {
            base
        } else {
            format!("{base}/{target}")
        };
        let e = self
            .event(r, types::HTTP_AUTHORIZATION, method, resource.clone())
            .who(
                Some(s.principal().to_string()),
                Some(s.mechanism),
                Some(s.identifier.clone()),
            )
            .identity(s.identity.clone())
            .authorization(AuthorizationInfo {
                granted: false,
                operation: method.to_owned(),
                resource_type: r.kind.api_kind().to_owned(),
                resource_name: resource,
                ..Default::default()
            })
            .result(status::UNAUTHORIZED, None);
        self.auditor.record(e);
    }
}
