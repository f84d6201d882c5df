//! One TLS port for every cluster and broker, routed by the SNI name — the hosted
//! model's shape (`lkc-….<domain>:9092` for a bootstrap, `b<id>-lkc-….<domain>:9092`
//! for a broker).
//!
//! The route is decided from the ClientHello alone (rustls' `LazyConfigAcceptor`),
//! before the handshake completes and before any Kafka byte is read: a name outside
//! the domain, an unknown cluster or broker, or no name at all ends the handshake, and
//! nothing is forwarded. The connection then runs exactly as on a port of its own
//! ([`crate::conn`]), under the same caps and the same authentication deadline, which
//! starts at accept and so covers the TLS handshake too.

use crate::conn::{self, Incoming, Target};
use crate::gateway::{ClusterShared, Limits, SniConfig};
use crate::GatewayTls;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// The clusters the SNI listener can route to (those whose upstream answered).
pub(crate) type Registry = Arc<RwLock<HashMap<String, Arc<ClusterShared>>>>;

/// Everything the SNI listener needs.
pub(crate) struct SniListener {
    pub(crate) sni: SniConfig,
    pub(crate) tls: GatewayTls,
    pub(crate) limits: Limits,
    pub(crate) auth_timeout: Duration,
    pub(crate) registry: Registry,
}

impl SniListener {
    /// Accept on `listener` until the process ends.
    pub(crate) async fn serve(self: Arc<Self>, listener: TcpListener) {
        loop {
            let (stream, peer) = tokio::select! {
                c = keygate_net::accept(&listener, "kafka gateway (SNI)") => c,
                () = self.limits.drained() => return,
            };
            match self.limits.admit(peer.ip()) {
                Ok(guards) => {
                    tokio::spawn(self.clone().route(stream, peer, guards));
                }
                // Before the ClientHello names a cluster: counted by limit only.
                Err(limit) => keygate_metrics::limit_hit(limit, &peer),
            }
        }
    }

    async fn route(
        self: Arc<Self>,
        tcp: TcpStream,
        peer: SocketAddr,
        guards: (keygate_net::ConnGuard, keygate_net::ConnGuard),
    ) {
        let deadline = tokio::time::Instant::now() + self.auth_timeout;
        match tokio::time::timeout_at(deadline, self.handshake(tcp)).await {
            Ok(Ok((stream, shared, target))) => {
                let Ok(_cluster_slot) = shared.cluster_conns.admit(peer.ip()) else {
                    let limit = "kafka.max_connections.per_cluster";
                    shared.metrics.refused(limit);
                    keygate_metrics::limit_hit(limit, &peer);
                    return;
                };
                shared.metrics.accepted.increment(1);
                conn::run(
                    Incoming::Tls(stream),
                    peer,
                    target,
                    shared,
                    deadline,
                    guards,
                )
                .await
            }
            Ok(Err(why)) => tracing::info!(%peer, reason = why, "connection refused"),
            Err(_) => tracing::info!(%peer, "connection closed: TLS handshake timed out"),
        }
    }

    /// Read the ClientHello, find the cluster and broker its name stands for, finish
    /// the handshake.
    async fn handshake(
        &self,
        tcp: TcpStream,
    ) -> Result<(crate::transport::ClientStream, Arc<ClusterShared>, Target), String> {
        let _ = tcp.set_nodelay(true);
        if !keygate_net::tls::starts_tls(&tcp)
            .await
            .map_err(|e| e.to_string())?
        {
            return Err("plaintext client on the SNI port: clients must use SASL_SSL".into());
        }
        let _turn = self.tls.handshake_turn().await;
        let acceptor = rustls::server::Acceptor::default();
        let start = tokio_rustls::LazyConfigAcceptor::new(acceptor, tcp)
            .await
            .map_err(|e| format!("TLS handshake failed: {e}"))?;
        let name = start
            .client_hello()
            .server_name()
            .map(str::to_owned)
            .ok_or_else(|| {
                format!(
                    "no SNI name: connect by host name (<cluster>.{})",
                    self.sni.domain
                )
            })?;
        let (cluster, target) = self.sni.route(&name).ok_or_else(|| {
            format!(
                "SNI name {name} is not a cluster or broker of {}",
                self.sni.domain
            )
        })?;
        let shared = self
            .registry
            .read()
            .ok()
            .and_then(|r| r.get(&cluster).cloned())
            .ok_or_else(|| format!("SNI name {name}: no such cluster"))?;
        if let Target::Broker(_) = target {
            if shared.upstream_addresses(target).is_empty() {
                return Err(format!("SNI name {name}: no such broker"));
            }
        }
        let stream = start
            .into_stream(self.tls.config_for(&cluster))
            .await
            .map_err(|e| format!("TLS handshake failed: {e}"))?;
        Ok((
            crate::transport::ClientStream::Tls(Box::new(stream)),
            shared,
            target,
        ))
    }
}
