//! The listeners of every registered Kafka cluster.
//!
//! Each cluster gets a slot: a bootstrap port, then one port per upstream broker
//! (`port_base + slot × ports_per_cluster + 1 + broker index`), on which the gateway
//! impersonates that broker. Broker addresses in Metadata, FindCoordinator and
//! DescribeCluster responses are rewritten to those ports, so clients never reach the
//! brokers directly. The [`Gateway`] follows the snapshot's cluster registrations and
//! opens (or closes) listeners without a restart.

use crate::classify::{self, codes, Post};
use crate::conn::{self, Target};
use crate::upstream::request;
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use keygate_audit::Auditor;
use keygate_core::{Operation, Principal, ResourceType};
use keygate_iam::{Iam, Snapshot, UsageRecorder};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Gateway settings.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Address the listeners bind.
    pub listen_host: IpAddr,
    /// Host name clients are told to connect to.
    pub advertised_host: String,
    /// First port of the first cluster's slot.
    pub port_base: u16,
    /// Ports per cluster: one bootstrap port plus one per broker.
    pub ports_per_cluster: u16,
    /// Largest accepted frame.
    pub max_frame: usize,
    /// Time allowed to authenticate after connecting.
    pub auth_timeout: Duration,
    /// Delay before answering a failed authentication.
    pub auth_failure_delay: Duration,
    /// Upper bound of `session_lifetime_ms` (KIP-368).
    pub max_session_lifetime: Duration,
    /// Requests of one connection whose answers are not yet written: beyond it the
    /// gateway stops reading from that client.
    pub max_in_flight: usize,
    /// A write to a client that makes no progress for this long ends the connection.
    pub write_timeout: Duration,
    /// Client connections of the whole gateway (every cluster).
    pub max_connections: usize,
    /// Client connections from one source address (Kafka's `max.connections.per.ip`).
    pub max_connections_per_ip: usize,
    /// Connections that have not authenticated yet, in total.
    pub max_unauthenticated: usize,
    /// Client connections of one cluster (fair share between clusters).
    pub max_connections_per_cluster: usize,
    /// Authenticated connections of one principal to one cluster.
    pub max_connections_per_principal: usize,
    /// New connections per second from one source address (Kafka's
    /// `max.connection.creation.rate`; 0: no limit).
    pub max_connection_creation_rate: u32,
    /// An authenticated connection with no request and no answer pending for this
    /// long is closed (Kafka's `connections.max.idle.ms`).
    pub idle_timeout: Duration,
    /// TLS on every listener (SASL_SSL), when a certificate is configured.
    pub tls: Option<crate::GatewayTls>,
    /// One TLS port for every cluster and broker, routed by SNI name (needs `tls`).
    pub sni: Option<SniConfig>,
}

/// SNI routing, as the hosted model does it: a cluster's bootstrap is
/// `lkc-….<domain>:<port>` and each broker `b<node-id>-lkc-….<domain>:<port>`, all on
/// one listener; a DNS wildcard `*.<domain>` points at the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SniConfig {
    /// The domain under which clusters and brokers are named (`kafka.example.com`).
    pub domain: String,
    /// The one port (9092 like the hosted model).
    pub port: u16,
}

impl SniConfig {
    /// The bootstrap address of a cluster.
    pub fn bootstrap(&self, cluster_id: &str) -> String {
        format!("{cluster_id}.{}:{}", self.domain, self.port)
    }

    /// The host name of a cluster's broker.
    pub fn broker_host(&self, cluster_id: &str, node_id: i32) -> String {
        format!("b{node_id}-{cluster_id}.{}", self.domain)
    }

    /// Which cluster and target an SNI name stands for (case-insensitive); `None` for
    /// a name outside the domain or not of either shape.
    pub fn route(&self, name: &str) -> Option<(String, Target)> {
        let name = name.to_ascii_lowercase();
        let label = name.strip_suffix(&format!(".{}", self.domain.to_ascii_lowercase()))?;
        if label.contains('.') || label.is_empty() {
            return None;
        }
        if let Some((b, cluster)) = label.split_once('-').filter(|(b, _)| b.starts_with('b')) {
            if let Ok(id) = b[1..].parse::<i32>() {
                return Some((cluster.to_owned(), Target::Broker(id)));
            }
        }
        Some((label.to_owned(), Target::Bootstrap))
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            listen_host: IpAddr::from([127, 0, 0, 1]),
            advertised_host: "127.0.0.1".into(),
            port_base: 19092,
            ports_per_cluster: 16,
            max_frame: 100 * 1024 * 1024,
            auth_timeout: Duration::from_secs(10),
            auth_failure_delay: Duration::from_millis(100),
            max_session_lifetime: Duration::from_secs(3600),
            max_in_flight: 128,
            write_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            max_connections_per_ip: 1_000,
            max_unauthenticated: 1_000,
            max_connections_per_cluster: 5_000,
            max_connections_per_principal: 1_000,
            max_connection_creation_rate: 500,
            idle_timeout: Duration::from_secs(600),
            tls: None,
            sni: None,
        }
    }
}

/// Connection caps shared by every listener of the gateway.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// Every client connection, and per source address.
    pub(crate) connections: keygate_net::ConnLimiter,
    /// Connections still authenticating.
    pub(crate) unauthenticated: keygate_net::ConnLimiter,
    /// New connections per second per source.
    pub(crate) creation: Arc<keygate_net::CreationRate>,
    /// Set when the gateway drains: listeners close, connections finish what they
    /// were sent and end.
    pub(crate) draining: tokio::sync::watch::Receiver<bool>,
    /// Each cluster's cap, shared by every cluster's limiter (changed live).
    pub(crate) per_cluster: Arc<AtomicUsize>,
    /// Each principal's cap per cluster (changed live).
    pub(crate) per_principal: Arc<AtomicUsize>,
    /// The idle timeout, in ms (changed live).
    pub(crate) idle_ms: Arc<AtomicU64>,
}

impl Limits {
    /// How long an authenticated connection may idle.
    pub(crate) fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_ms.load(Ordering::Relaxed))
    }

    /// Apply `cfg`'s connection limits to every listener and open cluster.
    fn apply(&self, cfg: &GatewayConfig) {
        self.connections
            .set_limits(cfg.max_connections, cfg.max_connections_per_ip);
        self.unauthenticated
            .set_limits(cfg.max_unauthenticated, cfg.max_unauthenticated);
        self.creation.set_rate(cfg.max_connection_creation_rate);
        self.per_cluster
            .store(cfg.max_connections_per_cluster.max(1), Ordering::Relaxed);
        self.per_principal
            .store(cfg.max_connections_per_principal.max(1), Ordering::Relaxed);
        self.idle_ms
            .store(cfg.idle_timeout.as_millis() as u64, Ordering::Relaxed);
    }
}

/// Changes the gateway's limits while it runs (a configuration reload): new
/// connections and idle checks see the new values at once; connections already
/// admitted stay.
#[derive(Debug, Clone)]
pub struct LiveLimits {
    limits: Limits,
}

impl LiveLimits {
    /// Apply the connection limits of `cfg`.
    pub fn apply(&self, cfg: &GatewayConfig) {
        self.limits.apply(cfg);
    }
}

impl Limits {
    /// Resolves once the gateway starts draining.
    pub(crate) async fn drained(&self) {
        let mut rx = self.draining.clone();
        let _ = rx.wait_for(|d| *d).await;
    }
}

impl Limits {
    /// Admit a connection from `ip`, or name the setting that refuses it.
    pub(crate) fn admit(
        &self,
        ip: std::net::IpAddr,
    ) -> Result<(keygate_net::ConnGuard, keygate_net::ConnGuard), &'static str> {
        if !self.creation.allow(ip) {
            return Err("kafka.max_connection_creation_rate.per_ip");
        }
        let admitted = self.connections.admit(ip).map_err(|why| match why {
            keygate_net::Refused::Total => "kafka.max_connections",
            keygate_net::Refused::PerSource => "kafka.max_connections.per_ip",
        })?;
        let authenticating = self
            .unauthenticated
            .admit(ip)
            .map_err(|_| "kafka.max_unauthenticated_connections")?;
        Ok((admitted, authenticating))
    }
}

impl GatewayConfig {
    /// The bootstrap port of a slot.
    pub fn bootstrap_port(&self, slot: usize) -> Option<u16> {
        u16::try_from(usize::from(self.port_base) + slot * usize::from(self.ports_per_cluster)).ok()
    }
}

/// State shared by every connection of one cluster.
pub struct ClusterShared {
    pub(crate) cluster_id: String,
    pub(crate) cfg: Arc<GatewayConfig>,
    pub(crate) snapshot: Arc<Snapshot>,
    pub(crate) iam: Arc<Iam>,
    pub(crate) usage: Arc<UsageRecorder>,
    pub(crate) auditor: Auditor,
    /// The cluster's CRN: the source of its audit records.
    pub(crate) crn: Arc<str>,
    /// Prefix of its resources' CRNs (`…/cloud-cluster=lkc-…/kafka=lkc-…`).
    pub(crate) resource_base: Arc<str>,
    pub(crate) limits: Limits,
    /// Opens the gateway's (encrypted, authenticated) connections to the brokers.
    pub(crate) connector: crate::upstream::SharedConnector,
    /// The cluster's series.
    pub(crate) metrics: keygate_metrics::KafkaCluster,
    /// Client-quota meters of its principals.
    pub(crate) meters: crate::quota::Meters,
    /// Its connections (fair share between clusters).
    pub(crate) cluster_conns: keygate_net::ConnLimiter,
    /// Its authenticated connections per principal.
    pub(crate) principal_conns: keygate_net::ConnLimiter<String>,
    slot: usize,
    upstream: RwLock<Vec<String>>,
    /// Upstream brokers by node id (learned from Metadata).
    brokers: RwLock<BTreeMap<i32, String>>,
    /// The lowest node id of the first brokers learned: broker ports count from it.
    base_node: std::sync::OnceLock<i32>,
    /// API versions advertised to clients: the gateway's ∩ the upstream's.
    versions: RwLock<HashMap<i16, (i16, i16)>>,
}

impl std::fmt::Debug for ClusterShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterShared")
            .field("cluster_id", &self.cluster_id)
            .field("slot", &self.slot)
            .finish()
    }
}

impl ClusterShared {
    /// Whether the upstream's versions and brokers are known (it answered once).
    pub(crate) fn discovered(&self) -> bool {
        self.versions.read().is_ok_and(|v| !v.is_empty())
    }

    pub(crate) fn advertised(&self, api: ApiKey) -> Option<(i16, i16)> {
        self.versions.read().ok()?.get(&(api as i16)).copied()
    }

    pub(crate) fn advertised_all(&self) -> Vec<(ApiKey, i16, i16)> {
        let v = self.versions.read().map(|v| v.clone()).unwrap_or_default();
        classify::gateway_versions()
            .into_iter()
            .filter_map(|(k, _, _)| v.get(&(k as i16)).map(|(a, b)| (k, *a, *b)))
            .collect()
    }

    pub(crate) fn upstream_addresses(&self, target: Target) -> Vec<String> {
        match target {
            Target::Broker(id) => self
                .brokers
                .read()
                .ok()
                .and_then(|b| b.get(&id).cloned())
                .into_iter()
                .collect(),
            Target::Bootstrap => self.upstream.read().map(|u| u.clone()).unwrap_or_default(),
        }
    }

    /// The gateway port that stands for upstream broker `node_id`: the slot's
    /// bootstrap port + 1 + (node id − the lowest node id first seen). It depends on the
    /// node id alone, so a broker discovered later never shifts the ports of the others
    /// (their listeners are already open). A broker outside the slot's ports (or with
    /// an id below the first lowest) gets none.
    fn gateway_port(&self, node_id: i32) -> Option<u16> {
        let base = *self.base_node.get()?;
        broker_port(
            self.cfg.bootstrap_port(self.slot)?,
            self.cfg.ports_per_cluster,
            base,
            node_id,
        )
    }

    /// Where clients are told broker `node_id` is: its SNI name on the one port, or
    /// the advertised host and the broker's own port.
    fn advertise(&self, node_id: i32) -> Option<(StrBytes, i32)> {
        match &self.cfg.sni {
            Some(sni) => Some((
                StrBytes::from_string(sni.broker_host(&self.cluster_id, node_id)),
                i32::from(sni.port),
            )),
            None => Some((
                StrBytes::from_string(self.cfg.advertised_host.clone()),
                i32::from(self.gateway_port(node_id)?),
            )),
        }
    }

    fn learn(&self, brokers: impl IntoIterator<Item = (i32, String)>) {
        if let Ok(mut b) = self.brokers.write() {
            for (id, addr) in brokers {
                b.insert(id, addr);
            }
            if let Some(lowest) = b.keys().next() {
                let _ = self.base_node.set(*lowest);
            }
        }
    }

    /// Rewrite addresses and filter what the principals may not see. `None` when the
    /// upstream response cannot be decoded: the caller closes the connection rather
    /// than pass on a response it could not filter (topic names) or rewrite (broker
    /// addresses that would let the client bypass the gateway).
    pub(crate) fn post_process(
        &self,
        api: ApiKey,
        version: i16,
        post: &Post,
        principals: &[Principal],
        frame: Bytes,
    ) -> Option<Bytes> {
        let out = self.try_post_process(api, version, post, principals, &frame);
        if out.is_none() {
            tracing::warn!(
                cluster = self.cluster_id,
                ?api,
                version,
                "could not rewrite an upstream response; closing the connection"
            );
        }
        out
    }

    fn try_post_process(
        &self,
        api: ApiKey,
        version: i16,
        post: &Post,
        principals: &[Principal],
        frame: &Bytes,
    ) -> Option<Bytes> {
        let mut buf = frame.clone();
        let header = ResponseHeader::decode(&mut buf, api.response_header_version(version)).ok()?;
        let mut body = ResponseKind::decode(api, &mut buf, version).ok()?;
        let authz = self.snapshot.authz();
        let may = |rt: ResourceType, name: &str, op: Operation| {
            principals
                .iter()
                .any(|p| authz.authorize(&self.cluster_id, p, rt, name, op).allowed)
        };
        match (&mut body, post) {
            (ResponseKind::Metadata(m), Post::Metadata { all_topics }) => {
                self.learn(
                    m.brokers
                        .iter()
                        .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port))),
                );
                for b in &mut m.brokers {
                    (b.host, b.port) = self.advertise(b.node_id.0)?;
                }
                if *all_topics {
                    m.topics.retain(|t| {
                        t.name.as_ref().is_some_and(|n| {
                            may(ResourceType::Topic, n.0.as_str(), Operation::Describe)
                        })
                    });
                } else {
                    for t in &mut m.topics {
                        if !t.name.as_ref().is_some_and(|n| {
                            may(ResourceType::Topic, n.0.as_str(), Operation::Describe)
                        }) {
                            t.error_code = codes::TOPIC_AUTH;
                            t.partitions.clear();
                            t.topic_id = Default::default();
                        }
                    }
                }
            }
            (ResponseKind::FindCoordinator(f), Post::FindCoordinator) => {
                if version < 4 {
                    if f.error_code == 0 {
                        (f.host, f.port) = self.advertise(f.node_id.0)?;
                    }
                } else {
                    for c in &mut f.coordinators {
                        if c.error_code == 0 {
                            (c.host, c.port) = self.advertise(c.node_id.0)?;
                        }
                    }
                }
            }
            (ResponseKind::DescribeCluster(d), Post::DescribeCluster) => {
                self.learn(
                    d.brokers
                        .iter()
                        .map(|b| (b.broker_id.0, format!("{}:{}", b.host.as_str(), b.port))),
                );
                for b in &mut d.brokers {
                    (b.host, b.port) = self.advertise(b.broker_id.0)?;
                }
            }
            (ResponseKind::ListGroups(l), Post::ListGroups) => {
                l.groups.retain(|g| {
                    may(
                        ResourceType::Group,
                        g.group_id.0.as_str(),
                        Operation::Describe,
                    )
                });
            }
            _ => return Some(frame.clone()),
        }
        let mut out = BytesMut::new();
        header
            .encode(&mut out, api.response_header_version(version))
            .ok()?;
        body.encode(&mut out, version).ok()?;
        Some(out.freeze())
    }
}

/// Ask the upstream for its API versions and brokers, over a connection made as the
/// clients' will be (TLS and SASL as the cluster's settings say).
async fn discover(shared: &ClusterShared) -> Result<(), String> {
    let mut last = "no upstream configured".to_owned();
    for addr in shared.upstream_addresses(Target::Bootstrap) {
        match discover_at(shared, &addr).await {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
    }
    Err(last)
}

async fn discover_at(shared: &ClusterShared, addr: &str) -> Result<(), String> {
    let mut s = shared.connector.connect(addr).await?;
    let av: ApiVersionsResponse = request(
        &mut s,
        ApiKey::ApiVersions,
        0,
        1,
        &ApiVersionsRequest::default(),
    )
    .await
    .map_err(|e| format!("{addr}: ApiVersions: {e}"))?;
    let upstream: HashMap<i16, (i16, i16)> = av
        .api_keys
        .iter()
        .map(|k| (k.api_key, (k.min_version, k.max_version)))
        .collect();
    let mut versions = HashMap::new();
    for (k, min, max) in classify::gateway_versions() {
        // The gateway answers these itself.
        if classify::answered_locally(k) {
            versions.insert(k as i16, (min, max));
            continue;
        }
        if let Some((umin, umax)) = upstream.get(&(k as i16)) {
            let (lo, hi) = (min.max(*umin), max.min(*umax));
            if lo <= hi {
                versions.insert(k as i16, (lo, hi));
            }
        }
    }
    let mut req = MetadataRequest::default();
    req.topics = Some(Vec::new());
    let md: MetadataResponse = request(&mut s, ApiKey::Metadata, 1, 2, &req)
        .await
        .map_err(|e| format!("{addr}: Metadata: {e}"))?;
    shared.learn(
        md.brokers
            .iter()
            .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port))),
    );
    if let Ok(mut v) = shared.versions.write() {
        *v = versions;
    }
    Ok(())
}

struct Running {
    shared: Arc<ClusterShared>,
    upstream: String,
    security: keygate_core::UpstreamSecurity,
    warned: bool,
    listeners: HashMap<Target, JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        for h in self.listeners.values() {
            h.abort();
        }
    }
}

impl std::hash::Hash for Target {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        match self {
            Target::Bootstrap => (-1i64).hash(state),
            Target::Broker(id) => i64::from(*id).hash(state),
        }
    }
}

/// Runs the gateway listeners of every registered Kafka cluster.
pub struct Gateway {
    cfg: Arc<GatewayConfig>,
    limits: Limits,
    drain: Arc<tokio::sync::watch::Sender<bool>>,
    snapshot: Arc<Snapshot>,
    iam: Arc<Iam>,
    usage: Arc<UsageRecorder>,
    auditor: Auditor,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// A gateway over the IAM service's snapshot.
    pub fn new(
        cfg: GatewayConfig,
        iam: Arc<Iam>,
        usage: Arc<UsageRecorder>,
        auditor: Auditor,
    ) -> Self {
        if let Some(tls) = &cfg.tls {
            tls.client_certs.attach(iam.snapshot().clone());
        }
        let (drain, draining) = tokio::sync::watch::channel(false);
        Gateway {
            limits: Limits {
                connections: keygate_net::ConnLimiter::new(
                    cfg.max_connections,
                    cfg.max_connections_per_ip,
                ),
                unauthenticated: keygate_net::ConnLimiter::new(
                    cfg.max_unauthenticated,
                    cfg.max_unauthenticated,
                ),
                creation: Arc::new(keygate_net::CreationRate::new(
                    cfg.max_connection_creation_rate,
                )),
                draining,
                per_cluster: Arc::new(AtomicUsize::new(cfg.max_connections_per_cluster.max(1))),
                per_principal: Arc::new(AtomicUsize::new(cfg.max_connections_per_principal.max(1))),
                idle_ms: Arc::new(AtomicU64::new(cfg.idle_timeout.as_millis() as u64)),
            },
            drain: Arc::new(drain),
            cfg: Arc::new(cfg),
            snapshot: iam.snapshot().clone(),
            iam,
            usage,
            auditor,
        }
    }

    /// The handle that changes this gateway's limits while it runs.
    pub fn live_limits(&self) -> LiveLimits {
        LiveLimits {
            limits: self.limits.clone(),
        }
    }

    /// The handle that drains this gateway (graceful shutdown).
    pub fn drain_handle(&self) -> Drain {
        Drain {
            tx: self.drain.clone(),
            connections: self.limits.connections.clone(),
        }
    }

    /// Follow cluster registrations until the process ends: open listeners for new
    /// clusters and newly seen brokers, close those of deleted clusters.
    pub async fn run(self) {
        let mut running: HashMap<String, Running> = HashMap::new();
        let registry = crate::sni::Registry::default();
        if let (Some(sni), Some(tls)) = (&self.cfg.sni, &self.cfg.tls) {
            let listener = Arc::new(crate::sni::SniListener {
                sni: sni.clone(),
                tls: tls.clone(),
                limits: self.limits.clone(),
                auth_timeout: self.cfg.auth_timeout,
                registry: registry.clone(),
            });
            let addr = SocketAddr::new(self.cfg.listen_host, sni.port);
            tokio::spawn(async move {
                loop {
                    match TcpListener::bind(addr).await {
                        Ok(l) => {
                            tracing::info!(%addr, domain = listener.sni.domain, "gateway listening (SNI routing)");
                            listener.clone().serve(l).await;
                        }
                        Err(e) => {
                            tracing::error!(%addr, error = %e, "cannot bind the SNI port; retrying");
                            tokio::time::sleep(Duration::from_secs(5)).await;
                        }
                    }
                }
            });
        }
        loop {
            let clusters = self.snapshot.kafka_clusters();
            // A cluster whose upstream, upstream settings or slot changed is restarted
            // with its new settings: new listeners and a new connector; open
            // connections keep the upstream session they have.
            running.retain(|id, r| {
                clusters
                    .get(id)
                    .is_some_and(|c| c.upstream == r.upstream && c.upstream_security == r.security)
                    && self.snapshot.gateway_slot(id) == Some(r.shared.slot)
            });
            for (id, r) in clusters.iter() {
                let Some(slot) = self.snapshot.gateway_slot(id) else {
                    continue;
                };
                if !running.contains_key(id) {
                    let connector = match self
                        .iam
                        .upstream_secrets(id, &r.upstream_security)
                        .map_err(|e| e.to_string())
                        .and_then(|secrets| {
                            crate::upstream::Connector::new(&r.upstream_security, secrets)
                        }) {
                        Ok(c) => Arc::new(c),
                        Err(e) => {
                            self.iam.report_upstream(id, Some(e));
                            continue;
                        }
                    };
                    let crn = r.crn(&self.snapshot.org().crn()).to_string();
                    let shared = Arc::new(ClusterShared {
                        resource_base: format!("{crn}/kafka={id}").into(),
                        crn: crn.into(),
                        auditor: self.auditor.clone(),
                        limits: self.limits.clone(),
                        cluster_id: id.clone(),
                        cfg: self.cfg.clone(),
                        snapshot: self.snapshot.clone(),
                        iam: self.iam.clone(),
                        usage: self.usage.clone(),
                        connector,
                        metrics: keygate_metrics::KafkaCluster::new(id),
                        meters: Default::default(),
                        cluster_conns: keygate_net::ConnLimiter::with_limits(
                            self.limits.per_cluster.clone(),
                            Arc::new(AtomicUsize::new(usize::MAX)),
                        ),
                        principal_conns: keygate_net::ConnLimiter::with_limits(
                            Arc::new(AtomicUsize::new(usize::MAX)),
                            self.limits.per_principal.clone(),
                        ),
                        slot,
                        upstream: RwLock::new(r.upstream.split(',').map(str::to_owned).collect()),
                        brokers: RwLock::default(),
                        base_node: std::sync::OnceLock::new(),
                        versions: RwLock::default(),
                    });
                    running.insert(
                        id.clone(),
                        Running {
                            shared,
                            upstream: r.upstream.clone(),
                            security: r.upstream_security.clone(),
                            warned: false,
                            listeners: HashMap::new(),
                        },
                    );
                }
                if let Some(run) = running.get_mut(id) {
                    self.ensure_listeners(run).await;
                }
            }
            if let Ok(mut r) = registry.write() {
                *r = running
                    .iter()
                    .filter(|(_, run)| run.shared.discovered())
                    .map(|(id, run)| (id.clone(), run.shared.clone()))
                    .collect();
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(250)) => {}
                () = self.limits.drained() => return,
            }
        }
    }

    async fn ensure_listeners(&self, run: &mut Running) {
        let shared = run.shared.clone();
        if !shared.discovered() {
            if let Err(e) = discover(&shared).await {
                if !run.warned {
                    tracing::warn!(
                        cluster = shared.cluster_id,
                        error = e,
                        "upstream not reachable yet; will keep trying"
                    );
                    run.warned = true;
                }
                shared.iam.report_upstream(&shared.cluster_id, Some(e));
                return;
            }
            shared.iam.report_upstream(&shared.cluster_id, None);
            tracing::info!(cluster = shared.cluster_id, "upstream reachable");
        }
        if self.cfg.sni.is_some() {
            // One port for everything: routed by name, no listener per broker.
            return;
        }
        let mut wanted = vec![(Target::Bootstrap, shared.cfg.bootstrap_port(shared.slot))];
        let ids: Vec<i32> = shared
            .brokers
            .read()
            .map(|b| b.keys().copied().collect())
            .unwrap_or_default();
        for id in ids {
            wanted.push((Target::Broker(id), shared.gateway_port(id)));
        }
        for (target, port) in wanted {
            if run.listeners.contains_key(&target) {
                continue;
            }
            let Some(port) = port else { continue };
            let addr = SocketAddr::new(shared.cfg.listen_host, port);
            match TcpListener::bind(addr).await {
                Ok(listener) => {
                    tracing::info!(cluster = shared.cluster_id, %addr, ?target, "gateway listening");
                    let s = shared.clone();
                    run.listeners
                        .insert(target, tokio::spawn(accept_loop(listener, target, s)));
                }
                Err(e) => {
                    tracing::warn!(cluster = shared.cluster_id, %addr, error = %e, "cannot bind gateway port")
                }
            }
        }
    }
}

/// Graceful shutdown of the gateway: stop accepting, let each connection finish the
/// requests it already sent (their answers are written), then close it.
#[derive(Debug, Clone)]
pub struct Drain {
    tx: Arc<tokio::sync::watch::Sender<bool>>,
    connections: keygate_net::ConnLimiter,
}

impl Drain {
    /// Start draining and wait until every connection has ended or `grace` passed;
    /// how many were still open.
    pub async fn run(&self, grace: Duration) -> usize {
        let _ = self.tx.send(true);
        let deadline = tokio::time::Instant::now() + grace;
        while self.connections.open() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.connections.open()
    }
}

/// The port of broker `node_id` in a slot whose bootstrap port is `bootstrap`.
fn broker_port(bootstrap: u16, ports_per_cluster: u16, base: i32, node_id: i32) -> Option<u16> {
    let offset = u16::try_from(i64::from(node_id) - i64::from(base)).ok()?;
    if offset + 1 >= ports_per_cluster {
        return None;
    }
    bootstrap.checked_add(1 + offset)
}

async fn accept_loop(listener: TcpListener, target: Target, shared: Arc<ClusterShared>) {
    loop {
        // Draining: the listener closes (new clients are refused by the OS).
        let (stream, peer) = tokio::select! {
            c = keygate_net::accept(&listener, "kafka gateway") => c,
            () = shared.limits.drained() => return,
        };
        // Refused before a byte is read: the caps, not the peer, bound what it costs.
        let admitted = shared.limits.admit(peer.ip()).and_then(|g| {
            let cluster = shared
                .cluster_conns
                .admit(peer.ip())
                .map_err(|_| "kafka.max_connections.per_cluster")?;
            Ok((g, cluster))
        });
        match admitted {
            Ok((guards, cluster_slot)) => {
                shared.metrics.accepted.increment(1);
                let deadline = tokio::time::Instant::now() + shared.cfg.auth_timeout;
                let shared = shared.clone();
                tokio::spawn(async move {
                    let _cluster_slot = cluster_slot;
                    let incoming = conn::Incoming::Tcp(stream);
                    conn::run(incoming, peer, target, shared, deadline, guards).await;
                });
            }
            Err(limit) => {
                shared.metrics.refused(limit);
                keygate_metrics::limit_hit(limit, &peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sni_names_route_to_clusters_and_brokers() {
        let sni = SniConfig {
            domain: "kafka.example.com".into(),
            port: 9092,
        };
        assert_eq!(sni.bootstrap("lkc-ab12"), "lkc-ab12.kafka.example.com:9092");
        assert_eq!(
            sni.broker_host("lkc-ab12", 3),
            "b3-lkc-ab12.kafka.example.com"
        );
        assert_eq!(
            sni.route("lkc-ab12.kafka.example.com"),
            Some(("lkc-ab12".into(), Target::Bootstrap))
        );
        assert_eq!(
            sni.route("B1001-LKC-AB12.Kafka.Example.Com"),
            Some(("lkc-ab12".into(), Target::Broker(1001)))
        );
        for outside in [
            "kafka.example.com",
            "lkc-ab12.other.example.com",
            "x.lkc-ab12.kafka.example.com",
            "lkc-ab12.kafka.example.com.evil.org",
        ] {
            assert_eq!(sni.route(outside), None, "{outside}");
        }
    }

    #[test]
    fn broker_ports_follow_node_ids_not_discovery_order() {
        // Node ids 1, 2, 3 in a slot at 19092 with 16 ports: 19093, 19094, 19095 —
        // whichever broker was learned first.
        assert_eq!(broker_port(19092, 16, 1, 1), Some(19093));
        assert_eq!(broker_port(19092, 16, 1, 3), Some(19095));
        assert_eq!(broker_port(19092, 16, 1, 2), Some(19094));
        // Large ids (Tansu's 111, KRaft's 1001…) count from the first lowest.
        assert_eq!(broker_port(19092, 16, 1001, 1003), Some(19095));
        // Outside the slot, or below the first lowest: no port.
        assert_eq!(broker_port(19092, 16, 1, 16), None);
        assert_eq!(broker_port(19092, 16, 1, 0), None);
        assert_eq!(broker_port(65534, 16, 1, 5), None);
    }
}
