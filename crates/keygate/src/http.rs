//! The HTTP listener of the REST API and the console.
//!
//! `axum::serve` accepts every connection and waits for every peer as long as the
//! peer likes: 2,000 connections that send half a header stay open forever and,
//! under a lower descriptor limit, starve the Kafka gateway too. This loop serves the
//! same router through hyper with the limits a public listener needs:
//! - a cap on open connections, in total and per source address (refused at once);
//! - a header-read timeout, which also ends keep-alive connections idle that long;
//! - a request timeout (reading the body included: a peer dripping a body is cut);
//! - a write timeout (a peer that never reads its response is dropped);
//! - an accept that backs off when descriptors run out (`keygate_net::accept`).
//!
//! With a certificate the listener speaks HTTPS only, HTTP/1.1 or HTTP/2 by ALPN; the
//! TLS handshake counts against the header timeout. A plain HTTP request on it gets a
//! `400` that says to use https:// rather than a handshake error the user cannot read.

use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use keygate_net::tls::Stream;
use keygate_net::{ConnLimiter, Timed};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// The limits of the HTTP listener.
#[derive(Debug, Clone)]
pub(crate) struct HttpLimits {
    pub(crate) max_connections: usize,
    pub(crate) max_connections_per_ip: usize,
    pub(crate) header_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) write_timeout: Duration,
    /// Watch HTTP/1.1 framing for request smuggling (the HTTP gateway).
    pub(crate) watch_framing: bool,
    /// Without TLS, speak HTTP/2 to clients that open with its preface (h2c, prior
    /// knowledge: ksqlDB's HTTP/2 clients); else HTTP/1.1 only.
    pub(crate) h2c: bool,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: 1024,
            max_connections_per_ip: 256,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            watch_framing: false,
            h2c: false,
        }
    }
}

/// Serve `app` on `listener` until `shutdown` completes; then stop accepting, let
/// requests in progress finish (at most 10 s) and return.
pub(crate) async fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: HttpLimits,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()>,
) {
    let tls = tls.map(tokio_rustls::TlsAcceptor::from);
    let limiter = ConnLimiter::new(limits.max_connections, limits.max_connections_per_ip);
    let (closing, closed) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            c = keygate_net::accept(&listener, "http") => c,
            () = &mut shutdown => break,
        };
        let guard = match limiter.admit(peer.ip()) {
            Ok(g) => g,
            Err(why) => {
                // Counted, and logged once per window: a flood must not flood the log.
                let limit = match (limits.watch_framing, why) {
                    (true, keygate_net::Refused::Total) => "http_gateway.max_connections",
                    (true, keygate_net::Refused::PerSource) => {
                        "http_gateway.max_connections.per_ip"
                    }
                    (false, keygate_net::Refused::Total) => "rest.max_connections",
                    (false, keygate_net::Refused::PerSource) => "rest.max_connections.per_ip",
                };
                keygate_metrics::limit_hit(limit, &peer);
                continue;
            }
        };
        let app = app.clone();
        let limits = limits.clone();
        let mut closed = closed.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let encrypted = tls.is_some();
            let Some(io) = open(stream, tls, limits.header_timeout).await else {
                return;
            };
            let io = match limits.watch_framing {
                true => keygate_http::framing::Watch::new(io),
                false => keygate_http::framing::Watch::off(io),
            };
            let io = TokioIo::new(Timed::new(io, limits.write_timeout));
            let svc = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(peer));
                    host_from_authority(&mut req);
                    let app = app.clone();
                    let limit = limits.request_timeout;
                    async move {
                        let req = req.map(axum::body::Body::new);
                        Ok::<_, std::convert::Infallible>(
                            match tokio::time::timeout(limit, app.oneshot(req)).await {
                                Ok(Ok(r)) => r,
                                Ok(Err(never)) => match never {},
                                Err(_) => (
                                    StatusCode::REQUEST_TIMEOUT,
                                    "the request took longer than the server allows\n",
                                )
                                    .into_response(),
                            },
                        )
                    }
                },
            );
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                // A request head larger than this is refused (431), not buffered.
                .max_buf_size(64 * 1024)
                .max_headers(100);
            // HTTP/2 where ALPN offers it (TLS), or by prior knowledge where allowed; a
            // stream is a request, each under the request timeout, and a connection has
            // at most this many at once.
            builder
                .http2()
                .timer(TokioTimer::new())
                .max_concurrent_streams(64)
                .max_header_list_size(64 * 1024);
            if !encrypted && !limits.h2c {
                builder = builder.http1_only();
            }
            let conn = builder.serve_connection_with_upgrades(io, svc);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = closed.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop(guard);
        });
    }
    let _ = closing.send(true);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while limiter.open() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A connection's transport: the TCP stream, or the TLS session on it once the
/// handshake is done (within `timeout`). `None` when it failed (logged) or when a
/// plaintext request came to the TLS port (answered with a `400` first).
async fn open(
    stream: tokio::net::TcpStream,
    tls: Option<tokio_rustls::TlsAcceptor>,
    timeout: Duration,
) -> Option<Stream> {
    let Some(acceptor) = tls else {
        return Some(Stream::Plain(stream));
    };
    let peer = stream.peer_addr().ok();
    let handshake = async {
        if !keygate_net::tls::starts_tls(&stream).await.ok()? {
            // Not a TLS record: most likely http:// to an https:// address.
            refuse_plaintext(stream).await;
            return None;
        }
        match acceptor.accept(stream).await {
            Ok(s) => Some(Stream::Tls(Box::new(s))),
            Err(e) => {
                tracing::info!(peer = ?peer, error = %e, "HTTPS handshake failed");
                None
            }
        }
    };
    tokio::time::timeout(timeout, handshake)
        .await
        .ok()
        .flatten()
}

/// Answer a plaintext request on the HTTPS port with a `400` that says what to do.
/// The request is read (at most 64 KiB, for at most a second) and the write side shut
/// before closing: closing with unread bytes would reset the connection, and the
/// client would see the reset instead of the answer.
async fn refuse_plaintext(mut stream: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = stream
        .write_all(
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n\
              This port serves HTTPS only: use https://\n",
        )
        .await;
    let _ = stream.shutdown().await;
    let drain = async {
        let mut buf = [0u8; 4096];
        let mut left = 64 * 1024usize;
        while left > 0 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}

/// HTTP/2 carries the host in the `:authority` pseudo-header, which hyper puts in the
/// URI, not in `Host`. Handlers (the console's same-origin checks) read `Host`, so it
/// is filled in from the authority when absent: one meaning for both versions.
fn host_from_authority<B>(req: &mut hyper::Request<B>) {
    use axum::http::{header::HOST, HeaderValue};
    if req.headers().contains_key(HOST) {
        return;
    }
    let value = req
        .uri()
        .authority()
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok());
    if let Some(v) = value {
        req.headers_mut().insert(HOST, v);
    }
}
