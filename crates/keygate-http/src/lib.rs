//! keygate's HTTP gateway: the fourth front door (after the REST API, the console and
//! the Kafka gateway). For every registered Schema Registry, ksqlDB cluster, Flink
//! region and Tableflow catalog it authenticates the client's credential for *that*
//! resource, authorizes the request with the one authorizer, and reverse-proxies it to
//! the registered upstream with the gateway's own credential.
//!
//! A request goes: refuse what is ambiguous (method-override headers, conflicting
//! `Content-Length`/`Transfer-Encoding`, paths that decode to traversal — [`path`]) →
//! [`route`] → authenticate through [`keygate_iam::Gate`] → the service's pure
//! [`plan`] ([`sr`], [`ksql`], [`flink`], [`tableflow`]) → its checks (a few need the
//! body, the registry or the record of who created a Flink job) → [`proxy`] → trim
//! listings ([`filter`]), record created Flink objects, count the request for the
//! audit summary. Nothing is forwarded before every check passed; a denial never
//! reaches the upstream.
//!
//! `/_keygate/ext-authz/<route>/<path>` answers the same decision without proxying,
//! for nginx `auth_request` and Envoy's HTTP `ext_authz`: `200` with identity headers,
//! or `401`/`403`.

pub mod filter;
pub mod flink;
pub mod framing;
pub mod ksql;
pub mod path;
pub mod plan;
pub mod proxy;
pub mod route;
pub mod sr;
pub mod tableflow;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use http_body_util::BodyExt;
use keygate_core::model::Resource;
use keygate_core::{ResourceKind, Secret, ServiceOp};
use keygate_iam::{Credential, Gate, Session};
use plan::{Check, Plan, Record, Reject};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use proxy::UpstreamConfig;

/// Settings of the HTTP gateway.
#[derive(Debug, Clone)]
pub struct HttpGatewayConfig {
    /// With a domain, `lsrc-….{domain}` and `lksqlc-….{domain}` route by host.
    pub domain: Option<String>,
    /// `http` or `https`: what this listener speaks (for `X-Forwarded-Proto`).
    pub scheme: &'static str,
    /// Largest request body forwarded (schemas, jars); `413` beyond.
    pub max_request_body: u64,
    /// Largest answer passed on; the answer is cut beyond.
    pub max_response_body: u64,
    /// Largest body read to decide (Tableflow creations) or listing trimmed.
    pub max_inspected_body: usize,
    /// The upstream side.
    pub upstream: UpstreamConfig,
    /// How often a long answer checks that its credential is still valid.
    pub revocation_check: Duration,
}

impl Default for HttpGatewayConfig {
    fn default() -> Self {
        HttpGatewayConfig {
            domain: None,
            scheme: "http",
            max_request_body: 64 * 1024 * 1024,
            max_response_body: 256 * 1024 * 1024,
            max_inspected_body: 8 * 1024 * 1024,
            upstream: UpstreamConfig {
                connect_timeout: Duration::from_secs(5),
                response_timeout: Duration::from_secs(60),
                pool_idle_timeout: Duration::from_secs(90),
                pool_max_idle: 64,
            },
            revocation_check: Duration::from_millis(250),
        }
    }
}

/// The gateway: shared by every request.
#[derive(Clone)]
pub struct HttpGateway {
    inner: Arc<Inner>,
}

struct Inner {
    gate: Gate,
    cfg: HttpGatewayConfig,
    upstreams: proxy::Upstreams,
    schema_subjects: SchemaSubjects,
}

/// Which subjects use a schema id, per registry, for a few seconds: reading a schema by
/// id then costs the registry one lookup per id and window, not one per request. A
/// subject that starts (or stops) using an id is seen within [`SCHEMA_SUBJECTS_TTL`].
/// Bounded: when full, the map is emptied (it is refilled by what is asked for).
#[derive(Default)]
struct SchemaSubjects(std::sync::Mutex<std::collections::HashMap<(String, String), Remembered>>);

/// When a schema id's subjects were asked, and the answer.
type Remembered = (std::time::Instant, Arc<Vec<String>>);

/// How long a schema id's subjects are remembered.
const SCHEMA_SUBJECTS_TTL: Duration = Duration::from_secs(10);
const SCHEMA_SUBJECTS_MAX: usize = 10_000;

impl SchemaSubjects {
    fn get(&self, registry: &str, id: &str) -> Option<Arc<Vec<String>>> {
        let m = self.0.lock().ok()?;
        let (at, subjects) = m.get(&(registry.to_owned(), id.to_owned()))?;
        (at.elapsed() < SCHEMA_SUBJECTS_TTL).then(|| subjects.clone())
    }

    fn put(&self, registry: &str, id: &str, subjects: Arc<Vec<String>>) {
        if let Ok(mut m) = self.0.lock() {
            if m.len() >= SCHEMA_SUBJECTS_MAX {
                m.clear();
            }
            m.insert(
                (registry.to_owned(), id.to_owned()),
                (std::time::Instant::now(), subjects),
            );
        }
    }
}

impl std::fmt::Debug for HttpGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpGateway")
            .field("cfg", &self.inner.cfg)
            .finish_non_exhaustive()
    }
}

impl HttpGateway {
    /// A gateway deciding through `gate`.
    pub fn new(gate: Gate, cfg: HttpGatewayConfig) -> Self {
        let upstreams = proxy::Upstreams::new(cfg.upstream.clone());
        HttpGateway {
            inner: Arc::new(Inner {
                gate,
                cfg,
                upstreams,
                schema_subjects: SchemaSubjects::default(),
            }),
        }
    }

    /// Every request, whatever its path.
    pub fn router(self) -> axum::Router {
        axum::Router::new().fallback(handle).with_state(self)
    }
}

async fn handle(
    State(gw): State<HttpGateway>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let dialect = Dialect::of(req.uri().path());
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let start = std::time::Instant::now();
    let resp = match gw.serve(req, peer).await {
        Ok(r) => r,
        Err(e) => e.into_response(dialect),
    };
    // Method, path and status only: never headers, queries or bodies.
    tracing::info!(%method, path, status = resp.status().as_u16(), micros = start.elapsed().as_micros() as u64, %peer, "http gateway request");
    metrics::counter!(keygate_metrics::HTTP_GATEWAY_REQUESTS,
        "service" => service_label(&path), "status" => resp.status().as_str().to_owned())
    .increment(1);
    resp
}

/// The `service` label of a request's path (host-routed requests: `by_host`).
fn service_label(path: &str) -> &'static str {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    match first {
        "sr" => "schema_registry",
        "ksql" => "ksql",
        "flink" => "flink",
        "iceberg" => "tableflow",
        "_keygate" => "ext_authz",
        _ => "by_host",
    }
}

/// How a service's clients read an error body: each recognises a refusal only in its
/// own shape (Flink's REST client takes any other JSON object for a success).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    /// Schema Registry and ksqlDB: `{"error_code": …, "message": …}`.
    Confluent,
    /// Iceberg REST: `{"error": {"message", "type", "code"}}`.
    Iceberg,
    /// Flink REST: `{"errors": […]}`, its only field.
    Flink,
}

impl Dialect {
    fn of(path: &str) -> Self {
        if path.starts_with("/iceberg/") {
            Dialect::Iceberg
        } else if path.starts_with("/flink/") {
            Dialect::Flink
        } else {
            Dialect::Confluent
        }
    }
}

/// An answer the gateway gives itself.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Refusal {
            status,
            message: message.into(),
        }
    }
    fn unauthenticated() -> Self {
        Refusal::new(StatusCode::UNAUTHORIZED, "Unauthorized")
    }
    fn forbidden() -> Self {
        Refusal::new(
            StatusCode::FORBIDDEN,
            "Forbidden: the credential's principal may not do this",
        )
    }
    fn into_response(self, dialect: Dialect) -> Response {
        let body = match dialect {
            Dialect::Iceberg => {
                json!({"error": {"message": self.message, "type": error_type(self.status), "code": self.status.as_u16()}})
            }
            Dialect::Flink => json!({ "errors": [self.message] }),
            Dialect::Confluent => {
                json!({"error_code": self.status.as_u16(), "message": self.message})
            }
        };
        let mut r = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"keygate\""),
            );
        }
        r
    }
}

fn error_type(s: StatusCode) -> &'static str {
    match s.as_u16() {
        401 => "NotAuthorizedException",
        403 => "ForbiddenException",
        404 => "NoSuchNamespaceException",
        413 => "BadRequestException",
        400 => "BadRequestException",
        _ => "ServiceUnavailableException",
    }
}

impl From<Reject> for Refusal {
    fn from(r: Reject) -> Self {
        Refusal::new(
            StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST),
            r.message,
        )
    }
}

/// Headers that ask a server to treat a request as another method: a proxy that
/// authorizes by method must not forward them.
const METHOD_OVERRIDES: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

const EXT_AUTHZ: &str = "/_keygate/ext-authz";

impl HttpGateway {
    fn gate(&self) -> &Gate {
        &self.inner.gate
    }

    async fn serve(&self, req: Request, peer: SocketAddr) -> Result<Response, Refusal> {
        refuse_ambiguous(req.headers())?;
        let max = self.inner.cfg.max_request_body;
        if declared_length(req.headers()).is_some_and(|n| n > max) {
            keygate_metrics::limit_hit("http_gateway.max_request_bytes", &peer);
            return Err(Refusal::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is larger than {max} bytes"),
            ));
        }
        if let Some(rest) = req.uri().path().strip_prefix(EXT_AUTHZ) {
            let rest = rest.to_owned();
            let (parts, _) = req.into_parts();
            return self.ext_authz(&parts, &rest, peer).await;
        }
        let seg = path::segments(req.uri().path())
            .map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, e.to_string()))?;
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok());
        let target = req
            .headers()
            .get("target-sr-cluster")
            .and_then(|h| h.to_str().ok());
        let route = self.route(host, target, seg)?;
        let r = &route.resource;
        if r.kind == ResourceKind::Tableflow
            && req.method() == Method::POST
            && tableflow::catalog_path(&route.rest).is_some_and(|p| p == ["oauth", "tokens"])
        {
            return self.catalog_token(req, r, peer).await;
        }
        let session = self.authenticate(req.headers(), r, peer).await?;
        let mut plan = self.plan(r, req.method(), &route.rest)?;
        let (parts, body) = req.into_parts();
        let body = match plan.body.clone() {
            None => body,
            Some(b) => {
                let bytes = self.inspect_body(body).await?;
                let json: Value = serde_json::from_slice(&bytes)
                    .map_err(|_| Refusal::new(StatusCode::BAD_REQUEST, "the body is not JSON"))?;
                let env = r.environment_id.clone();
                let is_cluster = |ns: &str| self.gate().kafka_cluster_in(&env, ns);
                plan.checks
                    .extend(tableflow::body_checks(&b, &json, &is_cluster)?);
                Body::from(bytes)
            }
        };
        if !self.decide(&session, r, &plan, &parts.method).await? {
            self.gate()
                .record_denial(&session, r, &format!("http.{}", parts.method), &plan.target);
            return Err(Refusal::forbidden());
        }
        self.forward(parts, body, &route, &session, &plan, peer)
            .await
    }

    fn route(
        &self,
        host: Option<&str>,
        target_sr: Option<&str>,
        seg: Vec<String>,
    ) -> Result<route::Route, Refusal> {
        let services = self.gate().services();
        Ok(route::resolve(
            host,
            target_sr,
            seg,
            &services,
            &self.gate().organization_id(),
            self.inner.cfg.domain.as_deref(),
        )?)
    }

    fn plan(&self, r: &Resource, method: &Method, rest: &[String]) -> Result<Plan, Refusal> {
        let crn = r.crn(&self.gate().organization_crn());
        Ok(match r.kind {
            ResourceKind::SchemaRegistry => sr::plan(&crn, method, rest)?,
            ResourceKind::Ksql => ksql::plan(&crn),
            ResourceKind::Flink => flink::plan(&crn, method, rest)?,
            ResourceKind::Tableflow => {
                let env = r.environment_id.clone();
                let is_cluster = |ns: &str| self.gate().kafka_cluster_in(&env, ns);
                tableflow::plan(method, rest, &is_cluster)?
            }
            ResourceKind::Kafka => {
                return Err(Refusal::new(StatusCode::NOT_FOUND, "no such service"))
            }
        })
    }

    async fn authenticate(
        &self,
        h: &HeaderMap,
        r: &Resource,
        peer: SocketAddr,
    ) -> Result<Session, Refusal> {
        let pool = ["confluent-identity-pool-id", "x-keygate-identity-pool"]
            .iter()
            .find_map(|n| h.get(*n).and_then(|v| v.to_str().ok()));
        let auth = h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let basic;
        let cred = match auth.and_then(|a| a.split_once(' ')) {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("basic") => {
                basic = decode_basic(rest);
                match &basic {
                    Some((k, s)) => Credential::Basic {
                        key: k,
                        secret: Secret::from_client(s.as_str()),
                    },
                    None => Credential::Missing,
                }
            }
            Some((scheme, rest))
                if scheme.eq_ignore_ascii_case("bearer") && !rest.trim().is_empty() =>
            {
                Credential::Bearer {
                    token: rest.trim(),
                    pool,
                }
            }
            _ => Credential::Missing,
        };
        self.gate()
            .authenticate(r, cred, peer)
            .await
            .map_err(|_| Refusal::unauthenticated())
    }

    /// Whether every check of `plan` passes.
    async fn decide(
        &self,
        s: &Session,
        r: &Resource,
        plan: &Plan,
        method: &Method,
    ) -> Result<bool, Refusal> {
        for c in &plan.checks {
            if !self.check(s, r, c, method).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn check(
        &self,
        s: &Session,
        r: &Resource,
        c: &Check,
        method: &Method,
    ) -> Result<bool, Refusal> {
        let g = self.gate();
        Ok(match c {
            Check::Service(target, op) => g.may(s, target, *op),
            Check::Within(scope, op) => g.may_within(s, scope, *op),
            Check::Topic { cluster, topic, op } => g.may_topic(s, cluster, topic, *op),
            Check::Cluster(cluster, op) => g.may_cluster(s, cluster, *op),
            Check::AnyTopic(cluster, op) => g.may_any_topic(s, cluster, *op),
            Check::SchemaId(id) => self.schema_readable(s, r, id).await?,
            Check::FlinkObject { id, own, all } => {
                let region = r.crn(&g.organization_crn());
                g.may(s, &region, *all)
                    || (g.may(s, &region, *own) && {
                        let owners = g.owners(r, std::slice::from_ref(id)).await;
                        Gate::owns(s, owners.get(id))
                    })
            }
            Check::AnyOf(all) => {
                for c in all {
                    if Box::pin(self.check(s, r, c, method)).await? {
                        return Ok(true);
                    }
                }
                false
            }
        })
    }

    /// A schema id is readable when a subject that uses it is: the registry says which.
    async fn schema_readable(&self, s: &Session, r: &Resource, id: &str) -> Result<bool, Refusal> {
        let g = self.gate();
        let registry = r.crn(&g.organization_crn());
        if !g.may_within(s, &registry, ServiceOp::SubjectRead) {
            return Ok(false);
        }
        let subjects = match self.inner.schema_subjects.get(&r.storage_key(), id) {
            Some(s) => s,
            None => {
                let found = self.fetch_schema_subjects(r, id).await?;
                self.inner
                    .schema_subjects
                    .put(&r.storage_key(), id, found.clone());
                found
            }
        };
        Ok(subjects
            .iter()
            .any(|sub| g.may(s, &registry.child("subject", sub), ServiceOp::SubjectRead)))
    }

    /// The subjects that use schema `id`, as the registry says.
    async fn fetch_schema_subjects(
        &self,
        r: &Resource,
        id: &str,
    ) -> Result<Arc<Vec<String>>, Refusal> {
        let up = self.upstream(r)?;
        let path = path::join(&["schemas".into(), "ids".into(), id.into(), "subjects".into()]);
        let mut req = axum::http::Request::new(Body::empty());
        *req.uri_mut() = up.uri(&path, None).map_err(upstream_refusal)?;
        let resp = up
            .send(req, self.inner.cfg.upstream.response_timeout)
            .await
            .map_err(upstream_refusal)?;
        if !resp.status().is_success() {
            return Err(Refusal::new(resp.status(), "no such schema"));
        }
        let bytes = collect(resp.into_body(), self.inner.cfg.max_inspected_body).await?;
        Ok(Arc::new(serde_json::from_slice(&bytes).unwrap_or_default()))
    }

    fn upstream(&self, r: &Resource) -> Result<Arc<proxy::Upstream>, Refusal> {
        self.inner
            .upstreams
            .get(r, self.gate())
            .map_err(upstream_refusal)
    }

    async fn inspect_body(&self, body: Body) -> Result<Bytes, Refusal> {
        collect(body, self.inner.cfg.max_inspected_body).await
    }

    async fn forward(
        &self,
        parts: axum::http::request::Parts,
        body: Body,
        route: &route::Route,
        s: &Session,
        plan: &Plan,
        peer: SocketAddr,
    ) -> Result<Response, Refusal> {
        let r = &route.resource;
        let cfg = &self.inner.cfg;
        let declared = declared_length(&parts.headers);
        let up = self.upstream(r)?;
        let upgrade = parts
            .headers
            .get(header::UPGRADE)
            .filter(|_| connection_upgrade(&parts.headers))
            .cloned();
        let (capped, exceeded) = proxy::Capped::new(body, cfg.max_request_body);
        let mut out = axum::http::Request::new(Body::new(capped));
        *out.method_mut() = parts.method.clone();
        *out.uri_mut() = up
            .uri(&path::join(&route.rest), parts.uri.query())
            .map_err(upstream_refusal)?;
        *out.headers_mut() = proxy::request_headers(
            &parts.headers,
            peer.ip(),
            cfg.scheme,
            upgrade.as_ref(),
            plan.filter.is_none() && plan.record.is_none(),
        );
        let client_upgrade = upgrade
            .is_some()
            .then(|| parts.extensions.get::<hyper::upgrade::OnUpgrade>().cloned())
            .flatten();
        let sent = up.send(out, cfg.upstream.response_timeout).await;
        if exceeded.load(std::sync::atomic::Ordering::Acquire) {
            return Err(Refusal::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is larger than {} bytes", cfg.max_request_body),
            ));
        }
        let mut resp = sent.map_err(upstream_refusal)?;
        let write = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        self.gate()
            .count(s, r, write, &plan.target, declared.unwrap_or(0));
        if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
            return Ok(self.tunnel(resp, client_upgrade, s));
        }
        proxy::response_headers(resp.headers_mut(), false);
        let ok = resp.status().is_success();
        if ok && (plan.filter.is_some() || plan.record.is_some()) {
            return self.inspect_answer(resp, r, s, plan).await;
        }
        let too_big = resp
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|n| n > cfg.max_response_body);
        if too_big {
            return Err(Refusal::new(
                StatusCode::BAD_GATEWAY,
                "the upstream's answer is larger than the gateway passes on",
            ));
        }
        let (p, b) = resp.into_parts();
        let (gate, session) = (self.gate().clone(), s.clone());
        let (capped, _) = proxy::Capped::new(b, cfg.max_response_body);
        let revocations = gate.revocations();
        let watched = proxy::Watched::new(capped, cfg.revocation_check, revocations, move || {
            gate.still_valid(&session)
        });
        Ok(Response::from_parts(p, Body::new(watched)))
    }

    /// A listing to trim or a creation to record: read the answer (bounded), act, and
    /// answer with the result.
    async fn inspect_answer(
        &self,
        resp: axum::http::Response<hyper::body::Incoming>,
        r: &Resource,
        s: &Session,
        plan: &Plan,
    ) -> Result<Response, Refusal> {
        let (mut p, b) = resp.into_parts();
        let bytes = collect(b, self.inner.cfg.max_inspected_body).await?;
        let bad_shape = || {
            Refusal::new(
                StatusCode::BAD_GATEWAY,
                "the upstream's answer does not have the expected shape",
            )
        };
        let mut v: Value = serde_json::from_slice(&bytes).map_err(|_| bad_shape())?;
        if let Some(rec) = plan.record {
            if let Some(id) = created(rec, &v) {
                self.gate().record_owner(s, r, &id).await;
            }
        }
        let Some(f) = plan.filter else {
            return Ok(Response::from_parts(p, Body::from(bytes)));
        };
        let g = self.gate();
        let owners = g.owners(r, &filter::ids(f, &v)).await;
        let crn = r.crn(&g.organization_crn());
        let read_all = g.may(s, &crn, ServiceOp::FlinkReadAll);
        let keep = |item: filter::Item<'_>| match item {
            filter::Item::Subject(sub) => {
                g.may(s, &crn.child("subject", sub), ServiceOp::SubjectRead)
            }
            filter::Item::Job(id) | filter::Item::Jar(id) => {
                read_all || Gate::owns(s, owners.get(id))
            }
            filter::Item::Namespace(ns) => {
                g.kafka_cluster_in(&r.environment_id, ns)
                    && g.may_any_topic(s, ns, keygate_core::Operation::DescribeConfigs)
            }
            filter::Item::Table(ns, t) => {
                g.may_topic(s, ns, t, keygate_core::Operation::DescribeConfigs)
            }
        };
        filter::apply(f, &mut v, &keep).map_err(|_| bad_shape())?;
        let body = serde_json::to_vec(&v).map_err(|_| bad_shape())?;
        p.headers.remove(header::CONTENT_LENGTH);
        p.headers.remove(header::CONTENT_ENCODING);
        Ok(Response::from_parts(p, Body::from(body)))
    }

    /// A `101 Switching Protocols` (websockets): join the two upgraded connections,
    /// cut when the credential is revoked.
    fn tunnel(
        &self,
        mut resp: axum::http::Response<hyper::body::Incoming>,
        client: Option<hyper::upgrade::OnUpgrade>,
        s: &Session,
    ) -> Response {
        proxy::response_headers(resp.headers_mut(), true);
        let upstream = hyper::upgrade::on(&mut resp);
        let (gate, session) = (self.gate().clone(), s.clone());
        let every = self.inner.cfg.revocation_check;
        if let Some(client) = client {
            tokio::spawn(async move {
                let (Ok(up), Ok(down)) = (upstream.await, client.await) else {
                    return;
                };
                let mut up = hyper_util::rt::TokioIo::new(up);
                let mut down = hyper_util::rt::TokioIo::new(down);
                let copy = tokio::io::copy_bidirectional(&mut down, &mut up);
                let mut revoked = gate.revocations();
                let watch = async {
                    loop {
                        // An announced revocation is checked at once; expiry on the tick.
                        tokio::select! {
                            () = tokio::time::sleep(every) => {}
                            r = revoked.changed() => if r.is_err() {
                                tokio::time::sleep(every).await;
                            }
                        }
                        if !gate.still_valid(&session) {
                            break;
                        }
                    }
                };
                tokio::select! {
                    _ = copy => {}
                    () = watch => {}
                }
            });
        }
        let (p, _) = resp.into_parts();
        Response::from_parts(p, Body::empty())
    }

    /// `POST {catalog}/v1/oauth/tokens`: the Iceberg REST client-credentials flow.
    async fn catalog_token(
        &self,
        req: Request,
        r: &Resource,
        peer: SocketAddr,
    ) -> Result<Response, Refusal> {
        let basic = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|a| a.split_once(' '))
            .filter(|(s, _)| s.eq_ignore_ascii_case("basic"))
            .and_then(|(_, rest)| decode_basic(rest));
        let form = self.inspect_body(req.into_body()).await?;
        let fields: std::collections::HashMap<String, String> =
            url_form(&String::from_utf8_lossy(&form));
        if fields
            .get("grant_type")
            .is_some_and(|g| g != "client_credentials")
        {
            return Ok(oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
            ));
        }
        let (key, secret) = match (fields.get("client_id"), fields.get("client_secret"), basic) {
            (Some(k), Some(s), _) => (k.clone(), s.clone()),
            (_, _, Some(ks)) => ks,
            _ => return Ok(oauth_error(StatusCode::UNAUTHORIZED, "invalid_client")),
        };
        match self
            .gate()
            .catalog_token(r, &key, Secret::from_client(secret), peer)
            .await
        {
            Ok((token, ttl)) => {
                let mut resp = axum::Json(json!({
                    "access_token": token,
                    "token_type": "bearer",
                    "expires_in": ttl,
                    "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                }))
                .into_response();
                resp.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                Ok(resp)
            }
            Err(_) => Ok(oauth_error(StatusCode::UNAUTHORIZED, "invalid_client")),
        }
    }

    /// nginx `auth_request` / Envoy `ext_authz`: the decision for the original request
    /// (`X-Original-Method` / `X-Original-URI` when the proxy sends them, else this
    /// request's own method and the path after the prefix).
    async fn ext_authz(
        &self,
        req: &axum::http::request::Parts,
        rest: &str,
        peer: SocketAddr,
    ) -> Result<Response, Refusal> {
        let h = &req.headers;
        let method = h
            .get("x-original-method")
            .or_else(|| h.get("x-forwarded-method"))
            .and_then(|v| Method::from_bytes(v.as_bytes()).ok())
            .unwrap_or_else(|| req.method.clone());
        let rest = rest.split('?').next().unwrap_or_default();
        let seg = path::segments(if rest.is_empty() { "/" } else { rest })
            .map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, e.to_string()))?;
        let route = self.route(None, None, seg)?;
        let r = &route.resource;
        let session = self.authenticate(h, r, peer).await?;
        let plan = self.plan(r, &method, &route.rest)?;
        if plan.body.is_some() {
            self.gate()
                .record_denial(&session, r, &format!("http.{method}"), &plan.target);
            return Err(Refusal::new(
                StatusCode::FORBIDDEN,
                "this request's authorization depends on its body: send it through the gateway",
            ));
        }
        if !self.decide(&session, r, &plan, &method).await? {
            self.gate()
                .record_denial(&session, r, &format!("http.{method}"), &plan.target);
            return Err(Refusal::forbidden());
        }
        let write = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
        self.gate().count(&session, r, write, &plan.target, 0);
        let mut resp = StatusCode::OK.into_response();
        let hs = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&session.principal().to_string()) {
            hs.insert("x-keygate-principal", v);
        }
        if let Ok(v) = HeaderValue::from_str(&session.identifier) {
            hs.insert("x-keygate-credential", v);
        }
        if let Ok(v) = HeaderValue::from_str(&r.id) {
            hs.insert("x-keygate-resource", v);
        }
        Ok(resp)
    }
}

/// Refuse requests whose meaning depends on who reads them.
fn refuse_ambiguous(h: &HeaderMap) -> Result<(), Refusal> {
    if h.contains_key(framing::MARK) {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "a request may not carry both Content-Length and Transfer-Encoding",
        ));
    }
    if let Some(n) = METHOD_OVERRIDES.iter().find(|n| h.contains_key(**n)) {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            format!("{n} is not accepted: send the request with its real method"),
        ));
    }
    if h.contains_key(header::TRANSFER_ENCODING) && h.contains_key(header::CONTENT_LENGTH) {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "a request may not carry both Content-Length and Transfer-Encoding",
        ));
    }
    if h.get_all(header::CONTENT_LENGTH).iter().count() > 1 {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "a request may carry one Content-Length",
        ));
    }
    Ok(())
}

fn declared_length(h: &HeaderMap) -> Option<u64> {
    h.get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

fn connection_upgrade(h: &HeaderMap) -> bool {
    h.get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

fn decode_basic(b64: &str) -> Option<(String, String)> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (k, s) = text.split_once(':')?;
    // Key ids and secrets hold no whitespace; some clients add some (npm's
    // ksqldb-client encodes `key:secret `), so it is not part of either.
    Some((k.trim().to_owned(), s.trim().to_owned()))
}

fn url_form(s: &str) -> std::collections::HashMap<String, String> {
    s.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| {
            let dec = |x: &str| {
                percent_encoding::percent_decode_str(&x.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (dec(k), dec(v))
        })
        .collect()
}

fn oauth_error(status: StatusCode, error: &'static str) -> Response {
    (status, axum::Json(json!({"error": error}))).into_response()
}

/// The id of what an answer created.
fn created(rec: Record, v: &Value) -> Option<String> {
    match rec {
        Record::FlinkJar => v
            .get("filename")
            .and_then(Value::as_str)
            .and_then(|f| f.rsplit('/').next())
            .map(str::to_owned),
        Record::FlinkJob => v
            .get("jobid")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| {
                v.get("jobUrl")
                    .and_then(Value::as_str)
                    .and_then(|u| u.rsplit('/').next())
                    .map(str::to_owned)
            }),
    }
}

async fn collect<B>(body: B, limit: usize) -> Result<Bytes, Refusal>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    http_body_util::Limited::new(body, limit)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                Refusal::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the body is larger than {limit} bytes"),
                )
            } else {
                Refusal::new(StatusCode::BAD_REQUEST, "the body could not be read")
            }
        })
}

fn upstream_refusal(e: proxy::UpstreamError) -> Refusal {
    let status = match e {
        proxy::UpstreamError::Timeout => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::BAD_GATEWAY,
    };
    Refusal::new(status, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(d: Dialect) -> serde_json::Value {
        let r = Refusal::forbidden().into_response(d);
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let b = collect(r.into_body(), 1 << 16).await.expect("body");
        serde_json::from_slice(&b).expect("json")
    }

    /// Each service's own clients must recognise a refusal as an error: Flink's REST
    /// client reads any object but `{"errors": […]}` (alone) as the expected answer.
    #[tokio::test]
    async fn refusals_speak_each_clients_dialect() {
        assert_eq!(
            Dialect::of("/flink/env-1/aws.us-east-1/jobs"),
            Dialect::Flink
        );
        assert_eq!(Dialect::of("/iceberg/catalog/x"), Dialect::Iceberg);
        assert_eq!(Dialect::of("/sr/lsrc-1/subjects"), Dialect::Confluent);
        let flink = body_of(Dialect::Flink).await;
        assert_eq!(flink.as_object().map(|o| o.len()), Some(1));
        assert!(flink["errors"][0].is_string(), "{flink}");
        assert_eq!(body_of(Dialect::Confluent).await["error_code"], 403);
        assert_eq!(
            body_of(Dialect::Iceberg).await["error"]["type"],
            "ForbiddenException"
        );
    }
}
