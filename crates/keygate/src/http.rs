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

use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use hyper_util::rt::{TokioIo, TokioTimer};
use keygate_net::{ConnLimiter, Timed};
use std::future::Future;
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
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: 1024,
            max_connections_per_ip: 256,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
        }
    }
}

/// Serve `app` on `listener` until `shutdown` completes; then stop accepting, let
/// requests in progress finish (at most 10 s) and return.
pub(crate) async fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()>,
) {
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
                tracing::info!(%peer, reason = why.as_str(), "HTTP connection refused");
                continue;
            }
        };
        let app = app.clone();
        let limits = limits.clone();
        let mut closed = closed.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let io = TokioIo::new(Timed::new(stream, limits.write_timeout));
            let svc = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(peer));
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
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .serve_connection(io, svc);
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
