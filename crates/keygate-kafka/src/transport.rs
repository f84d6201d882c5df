//! The layer below the Kafka protocol: what a client connection runs on.
//!
//! A gateway port is plaintext, TLS, or both. Which one a peer speaks is decided by its
//! first byte before anything is read (`keygate_net::tls::starts_tls`): a TLS record
//! starts with 0x16, while a Kafka frame starts with the high byte of its length,
//! which would be 0x16 only for a 369 MB frame — far above any frame limit. So a plaintext client on a
//! TLS-only port, or a TLS client on a port without a certificate, is told apart at
//! once and closed with a log line that says which, instead of failing later as a
//! garbled frame. Everything above ([`crate::handshake`], [`crate::conn`]) sees one
//! [`ClientStream`] and never asks which transport it is.

use crate::conn::ConnError;
use std::sync::Arc;
use tokio::net::TcpStream;

/// TLS on the gateway's listeners.
#[derive(Clone)]
pub struct GatewayTls {
    /// The server configuration (its certificate resolver reloads from disk).
    pub config: Arc<rustls::ServerConfig>,
    /// Refuse clients that do not start TLS (`gateway_require_tls`).
    pub require: bool,
}

impl std::fmt::Debug for GatewayTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayTls")
            .field("require", &self.require)
            .finish_non_exhaustive()
    }
}

/// A client connection, plaintext or TLS.
pub(crate) type ClientStream = keygate_net::tls::Stream;

/// Open the transport of an accepted connection: look at the first byte, then run
/// the TLS handshake when the peer starts one. The caller bounds the time it takes.
pub(crate) async fn open(
    tcp: TcpStream,
    tls: Option<&GatewayTls>,
) -> Result<ClientStream, ConnError> {
    let starts_tls = keygate_net::tls::starts_tls(&tcp).await?;
    match tls {
        Some(t) if starts_tls => {
            let acceptor = tokio_rustls::TlsAcceptor::from(t.config.clone());
            let stream = acceptor
                .accept(tcp)
                .await
                .map_err(|e| ConnError::Transport(format!("TLS handshake failed: {e}")))?;
            Ok(ClientStream::Tls(Box::new(stream)))
        }
        Some(t) if t.require => Err(ConnError::Transport(
            "plaintext client on a TLS-only port (gateway_require_tls): the client must use \
             security.protocol=SASL_SSL"
                .into(),
        )),
        None if starts_tls => Err(ConnError::Transport(
            "TLS client on a plaintext port: the gateway has no certificate (gateway_tls_cert); \
             the client must use security.protocol=SASL_PLAINTEXT"
                .into(),
        )),
        _ => Ok(ClientStream::Plain(tcp)),
    }
}
