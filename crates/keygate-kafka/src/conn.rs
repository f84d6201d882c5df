//! One client connection: authentication (`crate::handshake`), then every request decoded,
//! planned by [`crate::classify`], and either forwarded to the upstream broker or
//! answered by the gateway. Responses go back strictly in request order: a FIFO of
//! pending answers (local ones ready, upstream ones read from the broker in turn)
//! feeds a writer task.

use crate::audit::CheckRec;
use crate::classify::{self, codes, Plan, Post};
use crate::frame::{read_frame, write_frame, FrameError};
use crate::gateway::ClusterShared;
use crate::handshake::{
    auth_failure, authenticate, certificate_session, failed_attempt, handshake, sasl_handshake,
    session_valid, Auth, Credential, Mechanism, Session,
};
use crate::quota::{ConnQuota, Direction};
use crate::transport;
use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use keygate_audit::usage::{ConnectionUsage, Subject, Traffic};
use keygate_core::{Principal, ResourceType};
use keygate_metrics::{Decision, Stage};

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// What this listener stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The bootstrap address: any upstream broker will do.
    Bootstrap,
    /// One upstream broker.
    Broker(i32),
}

/// A decoded request header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    pub(crate) api_key: i16,
    pub(crate) version: i16,
    pub(crate) correlation_id: i32,
}

pub(crate) fn peek_header(frame: &Bytes) -> Option<Header> {
    if frame.len() < 8 {
        return None;
    }
    let mut b = &frame[..8];
    Some(Header {
        api_key: b.get_i16(),
        version: b.get_i16(),
        correlation_id: b.get_i32(),
    })
}

/// Encode a response (header + body) for `api` at `version`.
pub(crate) fn encode_response(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> Option<Bytes> {
    let mut buf = BytesMut::new();
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation_id;
    header
        .encode(&mut buf, api.response_header_version(version))
        .ok()?;
    body.encode(&mut buf, version).ok()?;
    Some(buf.freeze())
}

/// What the writer task sends back, in order.
enum Pending {
    Local(Bytes),
    Upstream {
        api: ApiKey,
        version: i16,
        post: Post,
        correlation_id: i32,
        /// An allowed consumer Fetch: its topics, to count the response's bytes.
        fetched: Option<Vec<StrBytes>>,
        /// The client quota's throttle already earned by the request (Produce).
        throttle: Duration,
    },
}

/// What an accepted connection brings: a TCP stream whose transport is still to be
/// opened (a port of its own), or a TLS session the SNI listener already established
/// to learn where the connection goes.
pub(crate) enum Incoming {
    Tcp(TcpStream),
    Tls(transport::ClientStream),
}

/// Run one client connection to the end; it must have authenticated by `deadline`.
/// Errors are logged, never propagated: one connection's failure never affects another.
pub(crate) async fn run(
    client: Incoming,
    peer: SocketAddr,
    target: Target,
    shared: Arc<ClusterShared>,
    deadline: tokio::time::Instant,
    (admitted, unauthenticated): (keygate_net::ConnGuard, keygate_net::ConnGuard),
) {
    let cluster = shared.cluster_id.clone();
    shared.metrics.open.increment(1.0);
    let result = serve(
        client,
        peer,
        target,
        shared.clone(),
        deadline,
        unauthenticated,
    )
    .await;
    drop(admitted);
    shared.metrics.open.decrement(1.0);
    match result {
        Ok(()) => {
            shared.metrics.closed("client_closed");
            tracing::debug!(%peer, cluster, "connection closed");
        }
        Err(e) => {
            shared.metrics.closed(e.metric_reason());
            if let Some(limit) = e.limit() {
                keygate_metrics::limit_hit(limit, &e);
            }
            tracing::info!(%peer, cluster, reason = %e, "connection closed");
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnError {
    #[error("{0}")]
    Frame(#[from] FrameError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("authentication timed out")]
    AuthTimeout,
    #[error("authentication failed: {0}")]
    AuthFailed(String),
    #[error("protocol violation: {0}")]
    Protocol(String),
    #[error("upstream unavailable: {0}")]
    Upstream(String),
    #[error("credential revoked or session expired")]
    Revoked,
    #[error("{0}")]
    Transport(String),
    #[error("limit {0} reached")]
    Limit(&'static str),
    #[error("idle for longer than the idle timeout")]
    Idle,
}

impl ConnError {
    /// The `reason` label of the connections-closed counter.
    fn metric_reason(&self) -> &'static str {
        match self {
            ConnError::Frame(FrameError::Closed) => "client_closed",
            ConnError::Frame(FrameError::BadLength(n, _)) if *n >= 0 => "max_request_bytes",
            ConnError::Frame(_) | ConnError::Protocol(_) => "protocol",
            ConnError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => "write_timeout",
            ConnError::Io(_) => "io",
            ConnError::AuthTimeout => "auth_timeout",
            ConnError::AuthFailed(_) => "auth_failed",
            ConnError::Upstream(_) => "upstream",
            ConnError::Revoked => "revoked",
            ConnError::Transport(_) => "transport",
            ConnError::Limit(_) => "limit",
            ConnError::Idle => "idle",
        }
    }

    /// The setting that ended the connection, if a limit did.
    fn limit(&self) -> Option<&'static str> {
        if let ConnError::Limit(l) = self {
            return Some(l);
        }
        Some(match self.metric_reason() {
            "idle" => "kafka.idle_timeout_seconds",
            "max_request_bytes" => "kafka.max_request_bytes",
            "write_timeout" => "kafka.write_timeout_seconds",
            "auth_timeout" => "kafka.auth_timeout_seconds",
            _ => return None,
        })
    }
}

/// Bytes of requests read from one client ahead of the one being handled (plus at
/// most one frame in hand): enough to keep a producer's pipeline full, bounded however
/// large the frames.
const READ_AHEAD_BYTES: usize = 8 * 1024 * 1024;

/// A frame's share of the read-ahead budget, given back when it is dropped.
type ReadAhead = tokio::sync::OwnedSemaphorePermit;

async fn serve(
    client: Incoming,
    peer: SocketAddr,
    target: Target,
    shared: Arc<ClusterShared>,
    deadline: tokio::time::Instant,
    unauthenticated: keygate_net::ConnGuard,
) -> Result<(), ConnError> {
    let cfg = shared.cfg.clone();
    let snapshot = shared.snapshot.clone();

    // ---- transport, then authentication: only ApiVersions, SaslHandshake, SaslAuthenticate ----
    // The TLS handshake and the whole SASL exchange, writes included, have one
    // deadline: a peer that never reads our answers is closed like one that never writes.
    let client = match client {
        Incoming::Tls(s) => s,
        Incoming::Tcp(tcp) => {
            let _ = tcp.set_nodelay(true);
            tokio::time::timeout_at(
                deadline,
                transport::open(tcp, cfg.tls.as_ref(), &shared.cluster_id),
            )
            .await
            .map_err(|_| ConnError::AuthTimeout)??
        }
    };
    let tls = client.is_tls();
    let certificate = transport::peer_certificate(&client);
    let (mut cr, cw) = tokio::io::split(client);
    // A client that stops reading cannot hold the connection (and its upstream one):
    // a write with no progress for the write timeout ends it.
    let mut cw = keygate_net::Timed::new(cw, cfg.write_timeout);
    let (session, mut mechanism) = match certificate {
        // A client certificate the handshake verified: it is the credential.
        Some(leaf) => (certificate_session(&shared, &leaf, peer)?, None),
        None => tokio::time::timeout_at(deadline, handshake(&mut cr, &mut cw, peer, &shared))
            .await
            .map_err(|_| ConnError::AuthTimeout)??,
    };
    drop(unauthenticated);
    // Fair share between principals: a principal's connections to this cluster are
    // capped (re-authentication keeps the principal, so the slot stays right).
    let _principal_slot = shared
        .principal_conns
        .admit(session.principals[0].name().to_owned())
        .map_err(|_| ConnError::Limit("kafka.max_connections.per_principal"))?;
    let mut session = session;
    tracing::debug!(
        cluster = shared.cluster_id,
        who = session.label,
        tls,
        "authenticated"
    );
    if let Credential::Key(k) = &session.credential {
        shared
            .usage
            .record(keygate_core::KeyId::parse(k).ok_or(ConnError::Revoked)?);
    }

    // ---- upstream: opened by the first request that goes there ----
    // A connection that only authenticates, or is idle, holds no upstream connection
    // (half the descriptors of an idle client); the writer task gets the read half
    // when it is opened.
    let (ur_tx, ur_rx) = tokio::sync::oneshot::channel::<UpstreamRead>();
    let mut upstream = Upstream {
        write: None,
        read_to_writer: Some(ur_tx),
    };

    // Answers waiting to be written, bounded: when the client does not read them the
    // queue fills, the loop below stops reading requests, and TCP pushes back on the
    // client (Kafka mutes a channel the same way while a response is pending).
    let (tx, rx) = mpsc::channel::<Pending>(cfg.max_in_flight.max(1));
    // Allowed Produce and Fetch are counted here (reader: produced; writer: fetched
    // bytes) and handed to the audit pipeline every summary interval.
    let subject = Subject {
        cluster_crn: shared.crn.clone(),
        resource_base: shared.resource_base.clone(),
        principal: session.principals[0].to_string().into(),
        mechanism: session.mechanism.audit_name(),
        identifier: session.label.clone().into(),
    };
    let every = shared.auditor.summary_every();
    let mut produced = ConnectionUsage::new(subject.clone(), every);
    let fetched_usage = ConnectionUsage::new(subject, every);
    let mut fetch_topics: Option<Vec<StrBytes>> = None;
    let quota = ConnQuota::new(shared.clone(), &session.principals);
    let writer = tokio::spawn(write_answers(
        rx,
        ur_rx,
        cw,
        shared.clone(),
        (session.principals.clone(), quota.clone()),
        fetched_usage,
    ));

    let (reader, mut frx) = read_ahead(cr, cfg.max_frame);
    let mut check = tokio::time::interval(Duration::from_millis(250));
    let mut revoked = snapshot.revocations();
    let mut last_request = std::time::Instant::now();
    let result = loop {
        // A connection a client quota throttled is not read from until the throttle
        // ends (KIP-219), whatever the client does meanwhile.
        if let Some(until) = quota.muted_until() {
            tokio::select! {
                () = tokio::time::sleep_until(until) => {}
                () = recheck(&mut check, &mut revoked) => {
                    if !session_valid(&snapshot, &session) {
                        break Err(ConnError::Revoked);
                    }
                    continue;
                }
            }
        }
        // Room for this request's answer first: a client that does not read its
        // answers is not read from either (the revocation check still runs).
        let room = tokio::select! {
            r = tx.reserve() => r.is_ok(),
            () = recheck(&mut check, &mut revoked) => {
                if !session_valid(&snapshot, &session) {
                    break Err(ConnError::Revoked);
                }
                continue;
            }
        };
        if !room {
            break Err(ConnError::Protocol("response writer stopped".into()));
        }
        let frame = tokio::select! {
            // Draining: no new request is read; what was sent is answered below.
            () = shared.limits.drained() => break Ok(()),
            f = frx.recv() => f.unwrap_or(Err(FrameError::Closed)),
            () = recheck(&mut check, &mut revoked) => {
                if !session_valid(&snapshot, &session) {
                    break Err(ConnError::Revoked);
                }
                // Idle: no request for the idle timeout and no answer still owed.
                if last_request.elapsed() >= shared.limits.idle_timeout() && tx.capacity() == tx.max_capacity() {
                    break Err(ConnError::Idle);
                }
                continue;
            }
        };
        let (frame, _read_ahead) = match frame {
            Ok(f) => f,
            Err(FrameError::Closed) => break Ok(()),
            Err(e) => break Err(e.into()),
        };
        let started = std::time::Instant::now();
        last_request = started;
        shared.metrics.received.increment(frame.len() as u64 + 4);
        quota.take(Direction::Requests, 1);
        if !session_valid(&snapshot, &session) {
            break Err(ConnError::Revoked);
        }
        let Some(h) = peek_header(&frame) else {
            break Err(ConnError::Protocol("short frame".into()));
        };
        let Ok(api) = ApiKey::try_from(h.api_key) else {
            break Err(ConnError::Protocol(format!(
                "unknown api key {}",
                h.api_key
            )));
        };
        // What the gateway answers itself is decided in one place.
        if classify::answered_locally(api) {
            shared.metrics.request(h.api_key, &api, Decision::Local);
            let answered =
                answer_locally(&shared, &mut session, &mut mechanism, api, h, &frame, peer).await;
            match answered {
                Ok(bytes) => {
                    let _ = tx.send(Pending::Local(bytes)).await;
                    continue;
                }
                Err((last, e)) => {
                    if let Some(bytes) = last {
                        let _ = tx.send(Pending::Local(bytes)).await;
                    }
                    break Err(e);
                }
            }
        }
        let supported = shared
            .advertised(api)
            .is_some_and(|(min, max)| (min..=max).contains(&h.version));
        if !supported {
            break Err(ConnError::Protocol(format!(
                "{api:?} v{} is not supported by the gateway",
                h.version
            )));
        }
        // Decode the request body (after the header) to classify it.
        let mut body = frame.clone();
        let decoded = (|| {
            let header =
                RequestHeader::decode(&mut body, api.request_header_version(h.version)).ok()?;
            Some((
                header.client_id,
                RequestKind::decode(api, &mut body, h.version).ok()?,
            ))
        })();
        let Some((client_id, req)) = decoded else {
            break Err(ConnError::Protocol(format!(
                "malformed {api:?} v{} request",
                h.version
            )));
        };
        let authz = snapshot.authz();
        let cluster_id = shared.cluster_id.as_str();
        let auditing = shared.auditor.enabled();
        let ask = Asker {
            authz: &authz,
            cluster_id,
            principals: &session.principals,
            record_allowed: auditing && crate::audit::is_management(api),
            checks: RefCell::new(Vec::new()),
        };
        let Some(plan) = classify::plan(&req, h.version, &ask) else {
            break Err(ConnError::Protocol(format!(
                "{api:?} is not handled by the gateway"
            )));
        };
        let forwarded = matches!(plan, Plan::Forward(_));
        let checks = ask.checks.into_inner();
        if auditing && !checks.is_empty() {
            shared.audit_checks(
                &session.who(peer),
                api,
                h.correlation_id,
                client_id.as_ref().map(|c| c.as_str()),
                &checks,
                forwarded,
            );
        }
        if auditing && forwarded {
            match &req {
                RequestKind::Produce(r) => {
                    for t in &r.topic_data {
                        let bytes: usize = t
                            .partition_data
                            .iter()
                            .map(|p| p.records.as_ref().map_or(0, |b| b.len()))
                            .sum();
                        produced.add(Traffic::Produce, t.name.0.as_str(), bytes as u64);
                    }
                    if let Some(b) = produced.take(false) {
                        shared.auditor.usage(b);
                    }
                }
                RequestKind::Fetch(r) if r.replica_id.0 < 0 && r.replica_state.replica_id.0 < 0 => {
                    fetch_topics = Some(r.topics.iter().map(|t| t.topic.0.clone()).collect());
                }
                _ => {}
            }
        }
        let expects_response = !matches!(&req, RequestKind::Produce(p) if p.acks == 0);
        shared.metrics.request(h.api_key, &api, decision(&plan));
        match plan {
            Plan::Forward(post) => {
                let throttle = match api {
                    ApiKey::Produce => quota.take(Direction::Ingress, frame.len() as u64 + 4),
                    _ => Duration::ZERO,
                };
                write_frame(upstream.writer(&shared, target).await?, &frame).await?;
                if expects_response {
                    let _ = tx
                        .send(Pending::Upstream {
                            api,
                            version: h.version,
                            post,
                            correlation_id: h.correlation_id,
                            fetched: fetch_topics.take(),
                            throttle,
                        })
                        .await;
                }
            }
            Plan::Rewrite(req, post) => {
                let mut buf = BytesMut::new();
                let mut header = RequestHeader::decode(
                    &mut frame.clone(),
                    api.request_header_version(h.version),
                )
                .map_err(|e| ConnError::Protocol(e.to_string()))?;
                header.request_api_version = h.version;
                header
                    .encode(&mut buf, api.request_header_version(h.version))
                    .map_err(|e| ConnError::Protocol(e.to_string()))?;
                req.encode(&mut buf, h.version)
                    .map_err(|e| ConnError::Protocol(e.to_string()))?;
                write_frame(upstream.writer(&shared, target).await?, &buf).await?;
                let _ = tx
                    .send(Pending::Upstream {
                        api,
                        version: h.version,
                        post,
                        correlation_id: h.correlation_id,
                        fetched: None,
                        throttle: Duration::ZERO,
                    })
                    .await;
            }
            Plan::Answer(resp) => {
                tracing::info!(cluster = cluster_id, key = session.label, api = ?api, "request denied");
                let bytes = encode_response(api, h.version, h.correlation_id, &resp)
                    .ok_or_else(|| ConnError::Protocol("could not encode a denial".into()))?;
                let _ = tx.send(Pending::Local(bytes)).await;
            }
            Plan::Close => {
                tracing::info!(cluster = cluster_id, key = session.label, api = ?api, "request denied; closing (acks=0)");
                break Ok(());
            }
        }
        let spent = started.elapsed().as_secs_f64();
        keygate_metrics::kafka_processing(h.api_key, &api, Stage::Request, spent);
    };
    drop(tx);
    reader.abort();
    if let Some(b) = produced.take(true) {
        shared.auditor.usage(b);
    }
    // Let already-queued answers reach the client before closing.
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
    result
}

type UpstreamRead = tokio::io::ReadHalf<keygate_net::tls::ClientStream>;
type UpstreamWrite = tokio::io::WriteHalf<keygate_net::tls::ClientStream>;

/// A connection's upstream, opened when first needed.
struct Upstream {
    write: Option<UpstreamWrite>,
    /// Where the read half goes once opened (the writer task).
    read_to_writer: Option<tokio::sync::oneshot::Sender<UpstreamRead>>,
}

impl Upstream {
    /// The write half, opening the connection (TLS, SASL) on first use.
    async fn writer(
        &mut self,
        shared: &ClusterShared,
        target: Target,
    ) -> Result<&mut UpstreamWrite, ConnError> {
        if self.write.is_none() {
            let opened = connect_upstream(shared, target).await;
            if opened.is_err() {
                shared.metrics.upstream_failures.increment(1);
            }
            let (r, w) = tokio::io::split(opened?);
            if let Some(tx) = self.read_to_writer.take() {
                let _ = tx.send(r);
            }
            self.write = Some(w);
        }
        self.write
            .as_mut()
            .ok_or_else(|| ConnError::Upstream("not connected".into()))
    }
}
type ClientWrite = keygate_net::Timed<tokio::io::WriteHalf<transport::ClientStream>>;
type ClientRead = tokio::io::ReadHalf<transport::ClientStream>;
/// A frame read ahead with its share of the budget, or why reading stopped.
type ReadFrame = Result<(Bytes, ReadAhead), FrameError>;

/// The writer task: the answers in request order — local ones as they are, upstream
/// ones read from the broker in turn, checked, counted (Fetch bytes) and rewritten
/// where needed — each written to the client.
async fn write_answers(
    mut rx: mpsc::Receiver<Pending>,
    ur_rx: tokio::sync::oneshot::Receiver<UpstreamRead>,
    mut cw: ClientWrite,
    shared: Arc<ClusterShared>,
    (principals, quota): (Vec<Principal>, Arc<ConnQuota>),
    mut fetched_usage: ConnectionUsage,
) -> Result<(), ConnError> {
    let max_frame = shared.cfg.max_frame;
    let mut ur_rx = Some(ur_rx);
    let mut upstream: Option<UpstreamRead> = None;
    let result = async {
        while let Some(p) = rx.recv().await {
            let bytes = match p {
                Pending::Local(b) => b,
                Pending::Upstream {
                    api,
                    version,
                    post,
                    correlation_id,
                    fetched,
                    throttle,
                } => {
                    if upstream.is_none() {
                        // The loop opened it before queueing this answer.
                        let rx = ur_rx
                            .take()
                            .ok_or_else(|| ConnError::Upstream("closed".into()))?;
                        upstream =
                            Some(rx.await.map_err(|_| ConnError::Upstream("closed".into()))?);
                    }
                    let ur = upstream
                        .as_mut()
                        .ok_or_else(|| ConnError::Upstream("closed".into()))?;
                    let frame = read_frame(ur, max_frame).await?;
                    let started = std::time::Instant::now();
                    if frame.len() < 4 || (&frame[..4]).get_i32() != correlation_id {
                        return Err(ConnError::Protocol("upstream answered out of order".into()));
                    }
                    if let Some(topics) = fetched.filter(|t| !t.is_empty()) {
                        let share = frame.len() as u64 / topics.len() as u64;
                        for t in &topics {
                            fetched_usage.add(Traffic::Fetch, t.as_str(), share);
                        }
                        if let Some(b) = fetched_usage.take(false) {
                            shared.auditor.usage(b);
                        }
                    }
                    let answer = if post == Post::None {
                        frame
                    } else {
                        shared
                            .post_process(api, version, &post, &principals, frame)
                            .ok_or_else(|| {
                                ConnError::Protocol(format!(
                                    "undecodable upstream {api:?} v{version} response"
                                ))
                            })?
                    };
                    let throttle = match api {
                        ApiKey::Fetch => quota.take(Direction::Egress, answer.len() as u64 + 4),
                        _ => throttle,
                    };
                    let answer = if throttle.is_zero() {
                        answer
                    } else {
                        let ms = i32::try_from(throttle.as_millis()).unwrap_or(i32::MAX);
                        crate::quota::with_throttle(api, version, &answer, ms)
                    };
                    let spent = started.elapsed().as_secs_f64();
                    keygate_metrics::kafka_processing(api as i16, &api, Stage::Response, spent);
                    answer
                }
            };
            write_frame(&mut cw, &bytes).await?;
            shared.metrics.sent.increment(bytes.len() as u64 + 4);
        }
        Ok(())
    }
    .await;
    if let Some(b) = fetched_usage.take(true) {
        shared.auditor.usage(b);
    }
    if let Err(e) = &result {
        tracing::info!(cluster = shared.cluster_id, reason = %e, "response writer stopped");
    }
    result
}

/// The reader task. Frames are read by their own task: `read_frame` is not
/// cancellation-safe, and the request loop also wakes up for the revocation check;
/// selecting on a channel never loses part of a frame. Read-ahead keeps a saturating
/// producer's pipeline full (two frames measured 0.75× the direct throughput, 64
/// frames 0.96×), bounded in bytes: a frame waits for its share of READ_AHEAD_BYTES
/// before it is queued, and gives it back when the loop is done with it. Beyond
/// that, the rest waits in the socket.
fn read_ahead(
    mut cr: ClientRead,
    max_frame: usize,
) -> (tokio::task::JoinHandle<()>, mpsc::Receiver<ReadFrame>) {
    let budget = Arc::new(tokio::sync::Semaphore::new(READ_AHEAD_BYTES));
    let (ftx, frx) = mpsc::channel::<ReadFrame>(64);
    let reader = tokio::spawn(async move {
        loop {
            let f = match read_frame(&mut cr, max_frame).await {
                Ok(b) => {
                    let share = b.len().clamp(1, READ_AHEAD_BYTES) as u32;
                    match budget.clone().acquire_many_owned(share).await {
                        Ok(p) => Ok((b, p)),
                        Err(_) => return,
                    }
                }
                Err(e) => Err(e),
            };
            let end = f.is_err();
            if ftx.send(f).await.is_err() || end {
                return;
            }
        }
    });
    (reader, frx)
}

/// When to check the session again: at once when the snapshot says a credential may
/// have been revoked, else on the periodic tick (expiry).
async fn recheck(
    check: &mut tokio::time::Interval,
    revoked: &mut tokio::sync::watch::Receiver<u64>,
) {
    tokio::select! {
        _ = check.tick() => {}
        r = revoked.changed() => {
            if r.is_err() {
                // The snapshot is gone (shutting down): the tick alone remains.
                check.tick().await;
            }
        }
    }
}

/// How the request's plan counts in the requests metric.
fn decision(plan: &Plan) -> Decision {
    match plan {
        Plan::Forward(_) => Decision::Allowed,
        Plan::Rewrite(..) => Decision::Filtered,
        Plan::Answer(_) | Plan::Close => Decision::Denied,
    }
}

/// Why a local answer ends the connection: the last answer to send first, if any.
type Closing = (Option<Bytes>, ConnError);

/// The requests the gateway answers itself ([`classify::answered_locally`]): its API
/// versions, SASL re-authentication (KIP-368: the same principal, a fresh lifetime),
/// and the ACL APIs, which read and write keygate's own ACLs through the IAM service.
async fn answer_locally(
    shared: &ClusterShared,
    session: &mut Session,
    mechanism: &mut Option<Mechanism>,
    api: ApiKey,
    h: Header,
    frame: &Bytes,
    peer: SocketAddr,
) -> Result<Bytes, Closing> {
    match api {
        ApiKey::ApiVersions => Ok(api_versions(shared, h.version, h.correlation_id)),
        ApiKey::SaslHandshake => {
            let (resp, m) = sasl_handshake(frame, h).map_err(|e| (None, e))?;
            if m.is_some() {
                *mechanism = m;
            }
            Ok(resp)
        }
        ApiKey::SaslAuthenticate => {
            let m = mechanism.unwrap_or(Mechanism::Plain);
            let (outcome, attempted) =
                authenticate(shared, m, frame, h, Some(&session.principals)).await;
            match outcome {
                Auth::Ok(resp, s) => {
                    shared.audit_authentication(&s.who(peer), None);
                    tracing::info!(
                        cluster = shared.cluster_id,
                        who = s.label,
                        "re-authenticated"
                    );
                    *session = s;
                    Ok(resp)
                }
                Auth::Challenge(_, reason) | Auth::Fail(reason) => {
                    shared.audit_authentication(&failed_attempt(m, attempted, peer), Some(&reason));
                    Err((Some(auth_failure(h, m)), ConnError::AuthFailed(reason)))
                }
            }
        }
        _ => acl_answer(shared, session, api, h, frame, peer)
            .await
            .ok_or_else(|| {
                let e = ConnError::Protocol(format!("malformed {api:?} v{} request", h.version));
                (None, e)
            }),
    }
}

/// DescribeAcls, CreateAcls, DeleteAcls: keygate's ACLs, as the session's principal.
/// `None` when the request does not decode.
async fn acl_answer(
    shared: &ClusterShared,
    session: &Session,
    api: ApiKey,
    h: Header,
    frame: &Bytes,
    peer: SocketAddr,
) -> Option<Bytes> {
    let mut body = frame.clone();
    let decoded = RequestHeader::decode(&mut body, api.request_header_version(h.version))
        .ok()
        .and_then(|_| RequestKind::decode(api, &mut body, h.version).ok())?;
    let principal = session.principals[0].clone();
    let caller = keygate_iam::Caller {
        account_id: principal.name().to_owned(),
        principal,
        key_id: match &session.credential {
            Credential::Key(k) => keygate_core::KeyId::parse(k),
            Credential::Pools(_) => None,
        },
        mechanism: session.mechanism.audit_name(),
        client_address: Some(peer.to_string()),
        request: Some(format!("kafka.{api:?}")),
    };
    // The IAM service decides (ALTER on the cluster, as Kafka) and records a refusal;
    // a change is recorded with the ACLs it writes.
    let cluster = shared.cluster_id.as_str();
    let iam = &shared.iam;
    let resp: ResponseKind = match decoded {
        RequestKind::DescribeAcls(r) => crate::acls::describe(iam, &caller, cluster, &r)
            .await
            .into(),
        RequestKind::CreateAcls(r) => crate::acls::create(iam, &caller, cluster, &r).await.into(),
        RequestKind::DeleteAcls(r) => crate::acls::delete(iam, &caller, cluster, &r).await.into(),
        _ => return None,
    };
    encode_response(api, h.version, h.correlation_id, &resp)
}

/// The connection's principals, asking the snapshot's authorizer: allowed when any of
/// them is (a token matching several pools has the union of their permissions).
///
/// It remembers the checks for the audit log: denials always (they are rare), and
/// allowed checks only when asked (management requests), so the Produce/Fetch path
/// allocates nothing for them.
struct Asker<'a> {
    authz: &'a keygate_authz::Authorizer,
    cluster_id: &'a str,
    principals: &'a [Principal],
    record_allowed: bool,
    checks: RefCell<Vec<CheckRec>>,
}

impl classify::Check for Asker<'_> {
    fn allowed(&self, rt: ResourceType, name: &str, op: keygate_core::Operation) -> bool {
        let mut last = None;
        for p in self.principals {
            let d = self.authz.authorize(self.cluster_id, p, rt, name, op);
            if d.allowed {
                if self.record_allowed {
                    self.note(rt, name, op, true, d.reason);
                }
                return true;
            }
            last.get_or_insert(d.reason);
        }
        self.note(
            rt,
            name,
            op,
            false,
            last.unwrap_or(keygate_authz::Reason::NoMatch),
        );
        false
    }
    fn any_allowed(&self, rt: ResourceType, op: keygate_core::Operation) -> bool {
        self.principals
            .iter()
            .any(|p| self.authz.authorize_any(self.cluster_id, p, rt, op))
    }
}

impl Asker<'_> {
    fn note(
        &self,
        rt: ResourceType,
        name: &str,
        op: keygate_core::Operation,
        allowed: bool,
        reason: keygate_authz::Reason,
    ) {
        if let Ok(mut c) = self.checks.try_borrow_mut() {
            c.push(CheckRec {
                rt,
                name: name.to_owned(),
                op,
                allowed,
                reason,
            });
        }
    }
}

pub(crate) fn api_versions(shared: &ClusterShared, version: i16, correlation_id: i32) -> Bytes {
    let mut resp = ApiVersionsResponse::default();
    // An unsupported ApiVersions version is answered at v0 with UNSUPPORTED_VERSION
    // and the list, so the client can retry (KIP-511).
    let v = if (0..=3).contains(&version) {
        version
    } else {
        0
    };
    if v != version {
        resp.error_code = codes::UNSUPPORTED_VERSION;
    }
    resp.api_keys = shared
        .advertised_all()
        .into_iter()
        .map(|(k, min, max)| {
            let mut a = ApiVersion::default();
            a.api_key = k as i16;
            a.min_version = min;
            a.max_version = max;
            a
        })
        .collect();
    // ApiVersions' response header is always v0 (KIP-511); correlation id from the request is set by the caller.
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&correlation_id.to_be_bytes());
    let _ = resp.encode(&mut buf, v);
    buf.freeze()
}

async fn connect_upstream(
    shared: &ClusterShared,
    target: Target,
) -> Result<keygate_net::tls::ClientStream, ConnError> {
    let mut last = String::from("no upstream address");
    for a in shared.upstream_addresses(target) {
        match shared.connector.connect(&a).await {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(ConnError::Upstream(last))
}
