//! The upstream side: one pooled client per service (keep-alive, HTTP/1.1, HTTP/2 by
//! ALPN over TLS, the service's own CA and client certificate), the gateway's own
//! credential added, the client's never forwarded, hop-by-hop headers stripped both
//! ways, `X-Forwarded-For/-Proto/-Host` set, bodies streamed under size limits, and a
//! long answer cut within a second of its credential being revoked.

use axum::body::Body;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Request, Response, Uri};
use bytes::Bytes;
use http_body::Frame;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use keygate_core::model::Resource;
use keygate_core::HttpAuth;
use keygate_iam::Gate;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Settings of the upstream side.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// Connecting (TCP and TLS).
    pub connect_timeout: Duration,
    /// From sending the request to the answer's headers.
    pub response_timeout: Duration,
    /// Idle pooled connections are closed after this.
    pub pool_idle_timeout: Duration,
    /// Idle pooled connections kept per service.
    pub pool_max_idle: usize,
}

/// One service's client.
pub struct Upstream {
    base: Uri,
    client: Client<Connector, Body>,
    auth: Option<(HeaderName, HeaderValue)>,
    stamp: i64,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// Why the upstream could not be used.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The registration's URL or TLS settings do not work.
    #[error("the service's upstream settings are unusable: {0}")]
    Settings(String),
    /// Connecting or sending failed.
    #[error("the upstream could not be reached")]
    Unreachable,
    /// No answer within the response timeout.
    #[error("the upstream did not answer in time")]
    Timeout,
}

/// The clients of every service, rebuilt when a registration changes.
#[derive(Debug)]
pub struct Upstreams {
    cfg: UpstreamConfig,
    map: Mutex<HashMap<String, Arc<Upstream>>>,
}

impl Upstreams {
    /// No clients yet.
    pub fn new(cfg: UpstreamConfig) -> Self {
        Upstreams {
            cfg,
            map: Mutex::default(),
        }
    }

    /// The client of `r` (built on first use and after every change to `r`).
    pub fn get(&self, r: &Resource, gate: &Gate) -> Result<Arc<Upstream>, UpstreamError> {
        let key = r.storage_key();
        let stamp = r.updated_at.timestamp_micros();
        if let Some(u) = self
            .map
            .lock()
            .ok()
            .and_then(|m| m.get(&key).filter(|u| u.stamp == stamp).cloned())
        {
            return Ok(u);
        }
        let u = Arc::new(self.build(r, gate, stamp)?);
        if let Ok(mut m) = self.map.lock() {
            m.insert(key, u.clone());
        }
        Ok(u)
    }

    fn build(&self, r: &Resource, gate: &Gate, stamp: i64) -> Result<Upstream, UpstreamError> {
        let bad = |e: String| UpstreamError::Settings(e);
        let base: Uri = r
            .upstream
            .trim_end_matches('/')
            .parse()
            .map_err(|e| bad(format!("{e}")))?;
        let u = &r.upstream_security;
        let secrets = gate.upstream_secrets(r).map_err(|e| bad(e.to_string()))?;
        let client_cert = match (&u.client_cert_pem, &secrets.client_key_pem) {
            (Some(c), Some(k)) => Some((c.as_bytes(), k.as_bytes())),
            _ => None,
        };
        let tls =
            keygate_net::tls::client_config(u.ca_pem.as_deref().map(str::as_bytes), client_cert)
                .map_err(|e| bad(e.to_string()))?;
        // ALPN (h2, http/1.1) is the connector's to set.
        let tls = Arc::unwrap_or_clone(tls);
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(self.cfg.connect_timeout));
        http.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_all_versions()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(self.cfg.pool_idle_timeout)
            .pool_max_idle_per_host(self.cfg.pool_max_idle)
            .build(connector);
        let password = secrets
            .password
            .as_deref()
            .map(String::as_str)
            .unwrap_or("");
        let auth = match &u.http_auth {
            None => None,
            Some(HttpAuth::Basic) => {
                use base64::Engine;
                let user = u.username.as_deref().unwrap_or("");
                let b =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                Some((header::AUTHORIZATION, format!("Basic {b}")))
            }
            Some(HttpAuth::Bearer) => Some((header::AUTHORIZATION, format!("Bearer {password}"))),
            Some(HttpAuth::Header(name)) => Some((
                HeaderName::from_bytes(name.as_bytes()).map_err(|e| bad(e.to_string()))?,
                password.to_owned(),
            )),
        };
        let auth = match auth {
            None => None,
            Some((name, value)) => {
                let mut v = HeaderValue::from_str(&value).map_err(|_| {
                    bad("the upstream credential is not a valid header value".into())
                })?;
                v.set_sensitive(true);
                Some((name, v))
            }
        };
        Ok(Upstream {
            base,
            client,
            auth,
            stamp,
        })
    }
}

impl Upstream {
    /// The upstream URI of `path` (already canonical) and `query`.
    pub fn uri(&self, path: &str, query: Option<&str>) -> Result<Uri, UpstreamError> {
        let base_path = self.base.path().trim_end_matches('/');
        let pq = match query {
            Some(q) => format!("{base_path}{path}?{q}"),
            None => format!("{base_path}{path}"),
        };
        let mut parts = self.base.clone().into_parts();
        parts.path_and_query = Some(
            pq.parse()
                .map_err(|_| UpstreamError::Settings("path".into()))?,
        );
        Uri::from_parts(parts).map_err(|e| UpstreamError::Settings(e.to_string()))
    }

    /// Send `req` (its headers already prepared) with the gateway's credential.
    pub async fn send(
        &self,
        mut req: Request<Body>,
        timeout: Duration,
    ) -> Result<Response<hyper::body::Incoming>, UpstreamError> {
        if let Some((name, value)) = &self.auth {
            req.headers_mut().insert(name.clone(), value.clone());
        }
        match tokio::time::timeout(timeout, self.client.request(req)).await {
            Err(_) => Err(UpstreamError::Timeout),
            Ok(Err(e)) => {
                tracing::info!(upstream = %self.base, error = %e, "upstream request failed");
                Err(UpstreamError::Unreachable)
            }
            Ok(Ok(r)) => Ok(r),
        }
    }
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), and the
/// credentials and routing hints that are the gateway's business only.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];
const NOT_FORWARDED: [&str; 11] = [
    "authorization",
    "host",
    "cookie",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-real-ip",
    "confluent-identity-pool-id",
    "target-sr-cluster",
    "content-length",
];

fn connection_listed(h: &HeaderMap) -> Vec<String> {
    h.get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// The headers to send upstream for a client's `incoming` headers.
pub fn request_headers(
    incoming: &HeaderMap,
    peer: std::net::IpAddr,
    proto: &'static str,
    upgrade: Option<&HeaderValue>,
    keep_encoding: bool,
) -> HeaderMap {
    let listed = connection_listed(incoming);
    let mut out = HeaderMap::with_capacity(incoming.len() + 3);
    for (name, value) in incoming {
        let n = name.as_str();
        if HOP_BY_HOP.contains(&n)
            || NOT_FORWARDED.contains(&n)
            || listed.iter().any(|l| l == n)
            || (!keep_encoding && name == header::ACCEPT_ENCODING)
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    if let Some(length) = incoming.get(header::CONTENT_LENGTH) {
        out.insert(header::CONTENT_LENGTH, length.clone());
    }
    if let Some(u) = upgrade {
        out.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        out.insert(header::UPGRADE, u.clone());
    }
    if let Ok(v) = HeaderValue::from_str(&peer.to_string()) {
        out.insert("x-forwarded-for", v);
    }
    out.insert("x-forwarded-proto", HeaderValue::from_static(proto));
    if let Some(h) = incoming.get(header::HOST) {
        out.insert("x-forwarded-host", h.clone());
    }
    out
}

/// Strip hop-by-hop headers from an upstream answer (kept for a `101`).
pub fn response_headers(h: &mut HeaderMap, switching: bool) {
    let listed = connection_listed(h);
    let drop: Vec<HeaderName> = h
        .keys()
        .filter(|n| {
            let n = n.as_str();
            (HOP_BY_HOP.contains(&n) && !(switching && (n == "connection" || n == "upgrade")))
                || (!switching && listed.iter().any(|l| l == n))
        })
        .cloned()
        .collect();
    for n in drop {
        h.remove(n);
    }
}

/// A body that fails once more than `limit` bytes came, and says so through
/// `exceeded` (for a request, the answer is then 413, not 502).
pub struct Capped<B> {
    inner: B,
    left: u64,
    exceeded: Arc<std::sync::atomic::AtomicBool>,
}

impl<B> Capped<B> {
    /// Cap `inner` at `limit` bytes; the flag is raised if it goes over.
    pub fn new(inner: B, limit: u64) -> (Self, Arc<std::sync::atomic::AtomicBool>) {
        let exceeded = Arc::new(std::sync::atomic::AtomicBool::new(false));
        (
            Capped {
                inner,
                left: limit,
                exceeded: exceeded.clone(),
            },
            exceeded,
        )
    }
}

impl<B> http_body::Body for Capped<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let n = frame.data_ref().map_or(0, |d| d.len() as u64);
                if n > self.left {
                    self.exceeded
                        .store(true, std::sync::atomic::Ordering::Release);
                    return Poll::Ready(Some(Err("the body is larger than allowed".into())));
                }
                self.left -= n;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The next revocation announcement, owning its receiver.
type Announcement = Pin<Box<dyn Future<Output = Option<Revocations>> + Send>>;
type Revocations = tokio::sync::watch::Receiver<u64>;

fn next_announcement(mut rx: Revocations) -> Announcement {
    Box::pin(async move { rx.changed().await.ok().map(|()| rx) })
}

/// A body that ends in an error when its credential is revoked: checked when the
/// snapshot announces a revocation, and every `every` (expiry), also while nothing
/// arrives. Size is [`Capped`]'s business.
pub struct Watched<B> {
    inner: B,
    still_valid: Box<dyn Fn() -> bool + Send + Sync>,
    tick: tokio::time::Interval,
    announced: Option<Announcement>,
}

impl<B> Watched<B> {
    /// Watch `inner`.
    pub fn new(
        inner: B,
        every: Duration,
        revocations: Revocations,
        still_valid: impl Fn() -> bool + Send + Sync + 'static,
    ) -> Self {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Watched {
            inner,
            still_valid: Box::new(still_valid),
            tick,
            announced: Some(next_announcement(revocations)),
        }
    }
}

impl<B> http_body::Body for Watched<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut check = false;
        while self.tick.poll_tick(cx).is_ready() {
            check = true;
        }
        // Every announcement since the last poll, then registered for the next one; a
        // closed channel (shutting down) leaves the tick alone.
        while let Some(Poll::Ready(next)) = self.announced.as_mut().map(|a| a.as_mut().poll(cx)) {
            check = true;
            self.announced = next.map(next_announcement);
        }
        if check && !(self.still_valid)() {
            return Poll::Ready(Some(Err("the credential was revoked".into())));
        }
        Pin::new(&mut self.inner).poll_frame(cx).map_err(Into::into)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_hop_by_hop_and_connection_listed_headers_stay_behind() {
        let mut h = HeaderMap::new();
        for (n, v) in [
            ("authorization", "Basic a2V5OnNlY3JldA=="),
            ("connection", "keep-alive, x-secret-hop"),
            ("x-secret-hop", "1"),
            ("transfer-encoding", "chunked"),
            ("x-forwarded-for", "6.6.6.6"),
            ("host", "gw.example"),
            ("confluent-identity-pool-id", "pool-1"),
            ("accept-encoding", "gzip"),
            ("content-type", "application/json"),
            ("content-length", "12"),
        ] {
            h.append(HeaderName::from_static(n), HeaderValue::from_static(v));
        }
        let out = request_headers(&h, [10, 0, 0, 1].into(), "https", None, false);
        let names: Vec<&str> = out.keys().map(HeaderName::as_str).collect();
        for gone in [
            "authorization",
            "connection",
            "x-secret-hop",
            "transfer-encoding",
            "host",
            "confluent-identity-pool-id",
            "accept-encoding",
        ] {
            assert!(!names.contains(&gone), "{gone} forwarded");
        }
        assert_eq!(out["x-forwarded-for"], "10.0.0.1");
        assert_eq!(out["x-forwarded-proto"], "https");
        assert_eq!(out["x-forwarded-host"], "gw.example");
        assert_eq!(out["content-type"], "application/json");
        assert_eq!(out["content-length"], "12");
    }
}
