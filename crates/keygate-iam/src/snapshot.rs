//! The in-memory view every request is decided against: API keys by id and the
//! compiled authorizer.
//!
//! Readers never lock: keys live in a [`KeyMap`] (copy-on-write shards behind
//! `ArcSwap`), the authorizer is an immutable value behind an `ArcSwap`. The
//! [`Follower`] keeps both current by reading the store's change log after each
//! commit notification (and on a timer, so a missed notification costs at most one
//! tick). Writers through this process call [`Follower::catch_up`] before answering,
//! so a key created over REST works on the very next request.

use crate::hasher::SecretHasher;
use arc_swap::ArcSwap;
use compact_str::CompactString;
use keygate_authz::{Authorizer, ClusterIndex};
use keygate_core::model::{
    AccountKind, ApiKey, KeyPhase, KeyScope, Organization, Resource, RoleBinding, Timestamp,
};
use keygate_core::model::{IdentityPool, IdentityProvider, SigningKey};
use keygate_core::{KeyId, ResourceKind, Secret};
use keygate_oauth::{Directory, Filter, Jwks, PoolEntry, ProviderEntry, StsKey};
use keygate_store::{AclFilter, BindingFilter, Change, Entity, FullState, Store, StoreError};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What the hot path needs to know about a key. Everything is inline (short strings
/// included), so that verifying a key touches one map entry and nothing behind it.
#[derive(Debug, Clone)]
pub struct KeyEntry {
    /// The key id.
    pub id: KeyId,
    /// HMAC of the secret.
    pub secret_hash: [u8; 32],
    /// Owner account id.
    pub owner_id: CompactString,
    /// Owner kind.
    pub owner_kind: AccountKind,
    /// `None` for a CLOUD key; else the resource's kind and storage key.
    pub resource: Option<(ResourceKind, CompactString)>,
    /// Disabled.
    pub disabled: bool,
    /// Expiry.
    pub expires_at: Option<Timestamp>,
}

impl From<&ApiKey> for KeyEntry {
    fn from(k: &ApiKey) -> Self {
        KeyEntry {
            id: k.id,
            secret_hash: k.secret_hash,
            owner_id: k.owner_id.as_str().into(),
            owner_kind: k.owner_kind,
            resource: match &k.scope {
                KeyScope::Cloud => None,
                KeyScope::Resource { kind, .. } => Some((*kind, k.scope.storage_key().into())),
            },
            disabled: k.disabled,
            expires_at: k.expires_at,
        }
    }
}

impl KeyEntry {
    fn phase(&self, now: Timestamp) -> KeyPhase {
        if self.disabled {
            KeyPhase::Disabled
        } else if self.expires_at.is_some_and(|e| e <= now) {
            KeyPhase::Expired
        } else {
            KeyPhase::Active
        }
    }
}

/// Default maximum staleness of a snapshot whose database is unreachable.
pub const DEFAULT_MAX_STALENESS: Duration = Duration::from_secs(300);

/// Milliseconds on a monotonic clock local to this process.
fn clock_ms() -> i64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as i64
}

/// Why a key was refused. Callers log this; clients only ever see one uniform error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRejection {
    /// No such key.
    UnknownKey,
    /// The secret does not match (or is malformed).
    WrongSecret,
    /// The key is disabled.
    Disabled,
    /// The key is past its expiry.
    Expired,
    /// The key is for another resource (or is a CLOUD key at a gateway, or the reverse).
    WrongScope,
}

impl KeyRejection {
    /// A short reason for logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyRejection::UnknownKey => "unknown key",
            KeyRejection::WrongSecret => "wrong secret",
            KeyRejection::Disabled => "key disabled",
            KeyRejection::Expired => "key expired",
            KeyRejection::WrongScope => "key not valid for this resource",
        }
    }
}

type FastState = foldhash::fast::RandomState;
type Shard = HashMap<KeyId, KeyEntry, FastState>;

/// Keys by id, for lock-free reads with one writer.
///
/// 1,024 shards, each an immutable `HashMap` behind an `ArcSwap`. A read loads one
/// shard pointer and does one hash-map lookup with the entry stored inline (two cache
/// misses for a cold key). The single writer (the [`Follower`]) copies the shards it
/// changes — about a thousand entries each at a million keys — and swaps them in.
/// A concurrent map such as papaya was measured first: it stores each entry behind a
/// pointer, one more dependent cache miss per lookup (951k vs 1.31M verifications/s
/// at a million keys), and keygate has exactly one writer, so nothing is lost.
pub struct KeyMap {
    shards: Box<[ArcSwap<Shard>]>,
    hasher: FastState,
}

const SHARDS: usize = 1024;

impl KeyMap {
    fn new(capacity: usize) -> Self {
        let hasher = FastState::default();
        let shards = (0..SHARDS)
            .map(|_| {
                ArcSwap::from_pointee(Shard::with_capacity_and_hasher(
                    capacity / SHARDS + 1,
                    hasher,
                ))
            })
            .collect();
        KeyMap { shards, hasher }
    }

    fn shard_of(&self, id: &str) -> usize {
        use std::hash::BuildHasher;
        (self.hasher.hash_one(id) >> 32) as usize % SHARDS
    }

    /// Look a key up.
    pub fn get(&self, id: &str) -> Option<KeyEntry> {
        self.shards[self.shard_of(id)].load().get(id).cloned()
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.load().len()).sum()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Apply upserts (`Some`) and removals (`None`). Only one writer may call this at a
    /// time (the follower holds its lock).
    fn apply(&self, changes: Vec<(KeyId, Option<KeyEntry>)>) {
        let mut by_shard: HashMap<usize, Vec<(KeyId, Option<KeyEntry>)>> = HashMap::new();
        for (id, e) in changes {
            by_shard
                .entry(self.shard_of(id.as_str()))
                .or_default()
                .push((id, e));
        }
        for (s, changes) in by_shard {
            let mut next = Shard::clone(&self.shards[s].load());
            for (id, e) in changes {
                match e {
                    Some(e) => next.insert(id, e),
                    None => next.remove(id.as_str()),
                };
            }
            self.shards[s].store(Arc::new(next));
        }
    }

    fn build(entries: impl Iterator<Item = KeyEntry>, capacity: usize) -> Self {
        let map = KeyMap::new(capacity);
        let mut shards: Vec<Shard> = (0..SHARDS)
            .map(|_| Shard::with_capacity_and_hasher(capacity / SHARDS + 1, map.hasher))
            .collect();
        for e in entries {
            shards[map.shard_of(e.id.as_str())].insert(e.id, e);
        }
        for (slot, shard) in map.shards.iter().zip(shards) {
            slot.store(Arc::new(shard));
        }
        map
    }
}

/// Keys and authorizer, always readable.
pub struct Snapshot {
    /// Renamed in place (PATCH /org/v2/organizations/{id}); its id and CRN never change.
    org: ArcSwap<Organization>,
    oauth: ArcSwap<OAuthState>,
    oauth_settings: OAuthSettings,
    keys: KeyMap,
    kafka_clusters: ArcSwap<HashMap<String, Resource>>,
    /// Schema Registries, ksqlDB clusters, Flink regions and Tableflow, by storage key.
    services: ArcSwap<HashMap<String, Resource>>,
    authz: ArcSwap<Authorizer>,
    quotas: ArcSwap<crate::quotas::QuotaTable>,
    /// Bumped whenever a credential may have been revoked (keys, pools, providers):
    /// open sessions re-check at once instead of on their next periodic check.
    revisions: tokio::sync::watch::Sender<u64>,
    seq: AtomicI64,
    /// When the follower last confirmed the snapshot current (ms on [`clock_ms`]).
    confirmed_ms: AtomicI64,
    /// How old that confirmation may get before new authentications are refused.
    max_staleness_ms: AtomicI64,
    hasher: SecretHasher,
    /// Compared against when the key is unknown, so that an unknown key costs the same
    /// hashing work as a wrong secret.
    dummy_hash: [u8; 32],
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("seq", &self.seq())
            .field("keys", &self.key_count())
            .finish()
    }
}

impl Snapshot {
    /// The organization.
    pub fn org(&self) -> Arc<Organization> {
        self.org.load_full()
    }

    /// Identity providers, pools and STS keys (cheap to load).
    pub fn oauth(&self) -> arc_swap::Guard<Arc<OAuthState>> {
        self.oauth.load()
    }

    /// The OAuth settings this snapshot was built with.
    pub fn oauth_settings(&self) -> &OAuthSettings {
        &self.oauth_settings
    }

    /// The current authorizer (cheap; hold it for the duration of one decision).
    pub fn authz(&self) -> arc_swap::Guard<Arc<Authorizer>> {
        self.authz.load()
    }

    /// Changes whenever a credential may have been revoked: sessions waiting on it
    /// re-check their validity at once (revocation in milliseconds, not a period).
    pub fn revocations(&self) -> tokio::sync::watch::Receiver<u64> {
        self.revisions.subscribe()
    }

    /// Tell open sessions to re-check their credentials.
    pub fn announce_revocations(&self) {
        self.revisions.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Client quotas, by cluster and principal (cheap to load).
    pub fn quotas(&self) -> arc_swap::Guard<Arc<crate::quotas::QuotaTable>> {
        self.quotas.load()
    }

    /// The registered Kafka clusters, by id (the gateway follows these).
    pub fn kafka_clusters(&self) -> arc_swap::Guard<Arc<HashMap<String, Resource>>> {
        self.kafka_clusters.load()
    }

    /// The HTTP services (every resource but Kafka clusters), by storage key
    /// (`Resource::storage_key`).
    pub fn services(&self) -> arc_swap::Guard<Arc<HashMap<String, Resource>>> {
        self.services.load()
    }

    /// A Kafka cluster's gateway port slot (assigned at registration, kept for life).
    /// The gateway listens on the slot's ports; the API shows them.
    pub fn gateway_slot(&self, cluster_id: &str) -> Option<usize> {
        self.kafka_clusters
            .load()
            .get(cluster_id)
            .and_then(|r| r.gateway_slot)
            .map(|s| s as usize)
    }

    /// The change-log position this snapshot reflects.
    pub fn seq(&self) -> i64 {
        self.seq.load(Ordering::Acquire)
    }

    /// The follower has read the change log to its end just now.
    pub fn confirm_current(&self) {
        self.confirmed_ms.store(clock_ms(), Ordering::Release);
    }

    /// Set how long the snapshot may go unconfirmed (the database unreachable) before
    /// new authentications are refused.
    pub fn set_max_staleness(&self, d: Duration) {
        self.max_staleness_ms.store(
            d.as_millis().min(i64::MAX as u128) as i64,
            Ordering::Relaxed,
        );
    }

    /// How long since the snapshot was last confirmed current against the store.
    pub fn unconfirmed_for(&self) -> Duration {
        let age = clock_ms() - self.confirmed_ms.load(Ordering::Acquire);
        Duration::from_millis(u64::try_from(age).unwrap_or(0))
    }

    /// `Err(age)` when the snapshot has not been confirmed current for longer than the
    /// maximum staleness: it may miss a revocation, so no new session may start on it.
    /// Open sessions keep their last decisions' rules (a revocation seen later still
    /// closes them). Logged (at most every 10 s) with the age and the limit.
    pub fn check_fresh(&self) -> Result<(), Duration> {
        let age = clock_ms() - self.confirmed_ms.load(Ordering::Acquire);
        let max = self.max_staleness_ms.load(Ordering::Relaxed);
        if age <= max {
            return Ok(());
        }
        static LAST_LOG: AtomicI64 = AtomicI64::new(i64::MIN / 2);
        let now = clock_ms();
        let last = LAST_LOG.load(Ordering::Relaxed);
        if now - last >= 10_000
            && LAST_LOG
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::error!(
                stale_for_s = age / 1000,
                max_staleness_s = max / 1000,
                "refusing new authentications: the database has been unreachable longer than the maximum staleness, so revocations may be missing from this instance's snapshot"
            );
        }
        Err(Duration::from_millis(age.max(0) as u64))
    }

    /// How many keys are loaded.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// A key's entry.
    pub fn key(&self, id: &str) -> Option<KeyEntry> {
        self.keys.get(id)
    }

    /// Verify `key_id:secret` for use on `scope` at `now`. Unknown key and wrong secret
    /// do the same work.
    pub fn verify(
        &self,
        key_id: &str,
        secret: &Secret,
        scope: ScopeCheck<'_>,
        now: Timestamp,
    ) -> Result<KeyEntry, KeyRejection> {
        let Some(entry) = self.keys.get(key_id) else {
            let _ = self.hasher.verify(secret, &self.dummy_hash);
            return Err(KeyRejection::UnknownKey);
        };
        if !secret.is_well_formed() || !self.hasher.verify(secret, &entry.secret_hash) {
            return Err(KeyRejection::WrongSecret);
        }
        match entry.phase(now) {
            KeyPhase::Active => {}
            KeyPhase::Disabled => return Err(KeyRejection::Disabled),
            KeyPhase::Expired => return Err(KeyRejection::Expired),
        }
        let scope_ok = match (scope, &entry.resource) {
            (ScopeCheck::Cloud | ScopeCheck::CloudOr(..), None) => true,
            (ScopeCheck::Resource(kind, key) | ScopeCheck::CloudOr(kind, key), Some((k, r))) => {
                kind == *k && key == r.as_str()
            }
            _ => false,
        };
        if !scope_ok {
            return Err(KeyRejection::WrongScope);
        }
        Ok(entry)
    }

    /// Build a snapshot from a full read of the store.
    pub fn build(
        state: &FullState,
        org: Organization,
        hasher: SecretHasher,
    ) -> (Self, FollowerState) {
        Self::build_with(state, org, hasher, OAuthSettings::default())
    }

    /// Build a snapshot with these OAuth settings.
    pub fn build_with(
        state: &FullState,
        org: Organization,
        hasher: SecretHasher,
        oauth_settings: OAuthSettings,
    ) -> (Self, FollowerState) {
        let oauth = OAuthState::build(
            &state.identity_providers,
            &state.identity_pools,
            &state.signing_keys,
            &hasher,
            &oauth_settings,
        );
        let keys = KeyMap::build(
            state.api_keys.iter().map(KeyEntry::from),
            state.api_keys.len(),
        );
        let fs = FollowerState {
            bindings: state.role_bindings.clone(),
            cluster_env: state
                .resources
                .iter()
                .filter(|r| r.kind == ResourceKind::Kafka)
                .map(|r| (r.id.clone(), r.environment_id.clone()))
                .collect(),
        };
        let mut acls_by_cluster: HashMap<&str, Vec<&keygate_core::AclBinding>> = HashMap::new();
        for a in &state.acls {
            acls_by_cluster
                .entry(&a.cluster_id)
                .or_default()
                .push(&a.binding);
        }
        let indexes = fs.cluster_env.iter().map(|(c, env)| {
            let acls = acls_by_cluster
                .get(c.as_str())
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            ClusterIndex::compile(c, env, acls.iter().copied(), binding_refs(&fs.bindings))
        });
        let authz = Authorizer::empty(org.crn())
            .with_bindings(binding_refs(&fs.bindings))
            .with_clusters(indexes);
        let dummy_hash = hasher.hash("kgs_not-a-key");
        let kafka_clusters = state
            .resources
            .iter()
            .filter(|r| r.kind == ResourceKind::Kafka)
            .map(|r| (r.id.clone(), r.clone()))
            .collect();
        let services = state
            .resources
            .iter()
            .filter(|r| r.kind != ResourceKind::Kafka)
            .map(|r| (r.storage_key(), r.clone()))
            .collect();
        let snap = Snapshot {
            org: ArcSwap::from_pointee(org),
            services: ArcSwap::from_pointee(services),
            oauth: ArcSwap::from_pointee(oauth),
            oauth_settings,
            keys,
            kafka_clusters: ArcSwap::from_pointee(kafka_clusters),
            authz: ArcSwap::from_pointee(authz),
            quotas: ArcSwap::from_pointee(crate::quotas::QuotaTable::build(&state.client_quotas)),
            revisions: tokio::sync::watch::channel(0).0,
            seq: AtomicI64::new(state.seq),
            confirmed_ms: AtomicI64::new(clock_ms()),
            max_staleness_ms: AtomicI64::new(DEFAULT_MAX_STALENESS.as_millis() as i64),
            hasher,
            dummy_hash,
        };
        (snap, fs)
    }

    /// The hasher (for creating keys).
    pub fn hasher(&self) -> &SecretHasher {
        &self.hasher
    }
}

/// What a key must be valid for.
#[derive(Debug, Clone, Copy)]
pub enum ScopeCheck<'a> {
    /// The REST API.
    Cloud,
    /// One resource: its kind and storage key (`Resource::storage_key`; for Kafka
    /// clusters, the cluster id).
    Resource(ResourceKind, &'a str),
    /// A CLOUD key, or a key for this one resource (a Kafka cluster's REST paths).
    CloudOr(ResourceKind, &'a str),
}

fn binding_refs(
    b: &[RoleBinding],
) -> impl Iterator<
    Item = (
        &keygate_core::Principal,
        keygate_core::Role,
        &keygate_core::CrnPattern,
    ),
> {
    b.iter().map(|b| (&b.principal, b.role, &b.crn_pattern))
}

/// What the follower keeps beside the snapshot to apply changes incrementally.
#[derive(Debug, Default)]
pub struct FollowerState {
    bindings: Vec<RoleBinding>,
    cluster_env: HashMap<String, String>,
}

/// Applies the store's change log to a [`Snapshot`].
pub struct Follower {
    store: Arc<dyn Store>,
    snapshot: Arc<Snapshot>,
    state: tokio::sync::Mutex<FollowerState>,
}

impl std::fmt::Debug for Follower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follower").finish_non_exhaustive()
    }
}

/// The snapshot's sequence, and how long each applied change took from its commit
/// to this snapshot (the writer's clock against this one: across instances, clock
/// skew adds to it).
fn record_propagation(changes: &[Change], last: i64) {
    metrics::gauge!(keygate_metrics::SNAPSHOT_SEQUENCE).set(last as f64);
    let now = chrono::Utc::now().timestamp_micros();
    let h = metrics::histogram!(keygate_metrics::PROPAGATION);
    for c in changes {
        h.record((now - c.at_micros).max(0) as f64 / 1e6);
    }
}

impl Follower {
    /// A follower for `snapshot`, starting from `state`.
    pub fn new(store: Arc<dyn Store>, snapshot: Arc<Snapshot>, state: FollowerState) -> Self {
        Follower {
            store,
            snapshot,
            state: tokio::sync::Mutex::new(state),
        }
    }

    /// The snapshot this follower keeps current.
    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.snapshot
    }

    /// Apply every change committed so far.
    pub async fn catch_up(&self) -> Result<(), StoreError> {
        let mut st = self.state.lock().await;
        loop {
            let from = self.snapshot.seq();
            let changes = self.store.changes_since(from, 1000).await?;
            let Some(last) = changes.last().map(|c| c.seq) else {
                self.snapshot.confirm_current();
                return Ok(());
            };
            let mut keys = BTreeSet::new();
            let mut clusters = BTreeSet::new();
            let mut bindings_changed = false;
            let mut oauth_changed = false;
            let mut services = BTreeSet::new();
            let mut quotas_changed = false;
            for c in &changes {
                match c.entity {
                    Entity::ClientQuota => quotas_changed = true,
                    Entity::IdentityProvider | Entity::IdentityPool | Entity::SigningKey => {
                        oauth_changed = true;
                    }
                    Entity::ApiKey => {
                        keys.insert(c.entity_id.clone());
                    }
                    Entity::Acls => clusters.extend(c.cluster_id.clone()),
                    Entity::Resource => match &c.cluster_id {
                        Some(cluster) => {
                            clusters.insert(cluster.clone());
                        }
                        None => {
                            services.insert(c.entity_id.clone());
                        }
                    },
                    Entity::RoleBinding => {
                        bindings_changed = true;
                        clusters.extend(c.cluster_id.clone());
                    }
                    Entity::Organization => {
                        let o = self.store.organization().await?;
                        self.snapshot.org.store(Arc::new(o));
                    }
                    Entity::Environment | Entity::Account => {}
                }
            }
            self.apply_keys(keys).await?;
            self.apply_services(services).await?;
            if oauth_changed {
                let providers = self.store.list_providers().await?;
                let mut pools = Vec::new();
                for p in &providers {
                    match self.store.list_pools(&p.id).await {
                        Ok(ps) => pools.extend(ps),
                        // Deleted since listed: a later change rebuilds again.
                        Err(StoreError::NotFound(..)) => {}
                        Err(e) => return Err(e),
                    }
                }
                let keys = self.store.list_signing_keys().await?;
                let next = OAuthState::build(
                    &providers,
                    &pools,
                    &keys,
                    &self.snapshot.hasher,
                    &self.snapshot.oauth_settings,
                );
                self.snapshot.oauth.store(Arc::new(next));
                self.snapshot.announce_revocations();
            }
            if quotas_changed {
                let all = self.store.list_client_quotas(None).await?;
                self.snapshot
                    .quotas
                    .store(Arc::new(crate::quotas::QuotaTable::build(&all)));
            }
            if bindings_changed {
                st.bindings = self
                    .store
                    .list_role_bindings(&BindingFilter::default())
                    .await?;
            }
            let mut compiled = Vec::new();
            let mut removed = Vec::new();
            let mut registrations = HashMap::clone(&self.snapshot.kafka_clusters.load());
            for c in clusters {
                match self.store.get_resource(&c).await {
                    Ok(r) => {
                        registrations.insert(c.clone(), r.clone());
                        st.cluster_env.insert(c.clone(), r.environment_id.clone());
                        let acls = self.store.list_acls(&c, &AclFilter::default()).await?;
                        compiled.push(ClusterIndex::compile(
                            &c,
                            &r.environment_id,
                            acls.iter().map(|a| &a.binding),
                            binding_refs(&st.bindings),
                        ));
                    }
                    Err(StoreError::NotFound(..)) => {
                        st.cluster_env.remove(&c);
                        registrations.remove(&c);
                        removed.push(c);
                    }
                    Err(e) => return Err(e),
                }
            }
            let mut next = Authorizer::clone(&self.snapshot.authz.load());
            if bindings_changed {
                next = next.with_bindings(binding_refs(&st.bindings));
            }
            if !compiled.is_empty() {
                next = next.with_clusters(compiled);
            }
            for c in removed {
                next = next.without_cluster(&c);
            }
            self.snapshot.authz.store(Arc::new(next));
            self.snapshot.kafka_clusters.store(Arc::new(registrations));
            self.snapshot.seq.store(last, Ordering::Release);
            record_propagation(&changes, last);
            tracing::debug!(seq = last, changes = changes.len(), "snapshot caught up");
        }
    }

    async fn apply_services(&self, keys: BTreeSet<String>) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut next = HashMap::clone(&self.snapshot.services.load());
        for key in keys {
            match self.store.get_resource(&key).await {
                Ok(r) if r.kind != ResourceKind::Kafka => {
                    next.insert(key, r);
                }
                Ok(_) => {}
                Err(StoreError::NotFound(..)) => {
                    next.remove(&key);
                }
                Err(e) => return Err(e),
            }
        }
        self.snapshot.services.store(Arc::new(next));
        Ok(())
    }

    async fn apply_keys(&self, ids: BTreeSet<String>) -> Result<(), StoreError> {
        let mut changes = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(key_id) = KeyId::parse(&id) else {
                continue;
            };
            match self.store.get_api_key(&key_id).await {
                Ok(k) => changes.push((key_id, Some(KeyEntry::from(&k)))),
                Err(StoreError::NotFound(..)) => changes.push((key_id, None)),
                Err(e) => return Err(e),
            }
        }
        if !changes.is_empty() {
            self.snapshot.keys.apply(changes);
            self.snapshot.announce_revocations();
        }
        Ok(())
    }

    /// Follow the change log until the process ends: wake on commit notifications and
    /// every `tick` (covers changes made by other processes and missed wake-ups).
    pub async fn run(self: Arc<Self>, tick: Duration) {
        let mut rx = self.store.subscribe();
        let store_seq = metrics::gauge!(keygate_metrics::STORE_SEQUENCE);
        let staleness = metrics::gauge!(keygate_metrics::SNAPSHOT_AGE);
        // Also published when no change arrives (after a restart, the loaded snapshot's).
        let snapshot_seq = metrics::gauge!(keygate_metrics::SNAPSHOT_SEQUENCE);
        loop {
            store_seq.set((*rx.borrow()).max(self.snapshot.seq()) as f64);
            if let Err(e) = self.catch_up().await {
                tracing::warn!(error = %e, "snapshot catch-up failed; retrying");
            }
            snapshot_seq.set(self.snapshot.seq() as f64);
            staleness.set(self.snapshot.unconfirmed_for().as_secs_f64());
            tokio::select! {
                r = rx.changed() => if r.is_err() { return },
                _ = tokio::time::sleep(tick) => {}
            }
        }
    }
}

/// OAuth settings fixed for the life of the process.
#[derive(Debug, Clone)]
pub struct OAuthSettings {
    /// keygate's own issuer (its public URL): the `iss` of STS tokens.
    pub issuer: String,
    /// Allowed clock skew for `exp`/`nbf`, seconds.
    pub skew_secs: i64,
}

impl Default for OAuthSettings {
    fn default() -> Self {
        OAuthSettings {
            issuer: "http://127.0.0.1:8080".into(),
            skew_secs: 30,
        }
    }
}

/// What purpose string STS seeds are derived under.
const STS_PURPOSE: &str = "sts-signing-key-v1";

/// The directory of providers and pools, and the STS key that signs now.
#[derive(Debug, Default)]
pub struct OAuthState {
    /// Who tokens stand for.
    pub directory: Directory,
    /// The newest unretired signing key.
    pub signer: Option<Arc<StsKey>>,
    /// Certificate authorities and their pools (mTLS).
    pub certificates: crate::certs::CertificateDirectory,
}

impl OAuthState {
    /// Compile the stored providers, pools and signing keys.
    pub fn build(
        providers: &[IdentityProvider],
        pools: &[IdentityPool],
        keys: &[SigningKey],
        hasher: &SecretHasher,
        settings: &OAuthSettings,
    ) -> Self {
        let certificates = crate::certs::CertificateDirectory::build(providers, pools);
        // Certificate authorities stay in the directory: no token names their issuer
        // and their JWKS is empty, and their pools' sessions are checked there too.
        let providers = providers.iter().map(|p| ProviderEntry {
            id: p.id.clone(),
            issuer: p.issuer.clone(),
            jwks: if p.jwks.is_empty() {
                Jwks::default()
            } else {
                Jwks::parse(p.jwks.as_bytes()).unwrap_or_else(|e| {
                    tracing::warn!(provider = %p.id, error = %e, "stored JWKS unusable");
                    Jwks::default()
                })
            },
            enabled: p.enabled,
        });
        let pools = pools.iter().filter_map(|p| match Filter::compile(&p.filter) {
            Ok(filter) => Some(PoolEntry {
                id: p.id.clone(),
                provider_id: p.provider_id.clone(),
                identity_claim: p.identity_claim.clone(),
                filter,
                enabled: p.enabled,
            }),
            Err(e) => {
                tracing::warn!(pool = %p.id, error = %e, "stored filter unusable; the pool matches nothing");
                None
            }
        });
        let live: Vec<Arc<StsKey>> = keys
            .iter()
            .filter(|k| k.retired_at.is_none())
            .filter_map(|k| StsKey::derive(&k.kid, hasher.derive(STS_PURPOSE, &k.kid)))
            .map(Arc::new)
            .collect();
        let sts_keys = Jwks {
            keys: live.iter().map(|k| k.public().clone()).collect(),
        };
        OAuthState {
            directory: Directory::new(
                providers,
                pools,
                settings.issuer.clone(),
                sts_keys,
                settings.skew_secs,
            ),
            // Keys are listed oldest first: the last live one signs.
            signer: live.last().cloned(),
            certificates,
        }
    }
}
