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
    /// The installation's certificate, and clusters' own ones (reloaded from disk).
    certs: Arc<keygate_net::tls::CertSet>,
    /// The configuration of clusters without a certificate of their own.
    default_config: Arc<rustls::ServerConfig>,
    /// Configurations of clusters with one, built on first use.
    per_cluster:
        Arc<std::sync::Mutex<std::collections::HashMap<String, Arc<rustls::ServerConfig>>>>,
    /// Refuse clients that do not start TLS (`gateway_require_tls`).
    pub require: bool,
    /// The client-certificate verifier in `config` (certificate identities).
    pub client_certs: Arc<ClientCerts>,
    /// TLS handshakes in progress at once (see [`GatewayTls::handshake_turn`]).
    handshakes: Arc<tokio::sync::Semaphore>,
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
/// the TLS handshake (with `cluster`'s certificate) when the peer starts one. The
/// caller bounds the time it takes.
pub(crate) async fn open(
    tcp: TcpStream,
    tls: Option<&GatewayTls>,
    cluster: &str,
) -> Result<ClientStream, ConnError> {
    let starts_tls = keygate_net::tls::starts_tls(&tcp).await?;
    match tls {
        Some(t) if starts_tls => {
            let acceptor = tokio_rustls::TlsAcceptor::from(t.config_for(cluster));
            let _turn = t.handshake_turn().await;
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

/// The gateway's client-certificate verifier: keygate's certificate authorities as
/// they are now. It follows the snapshot — a certificate authority created, changed
/// (a new CRL) or deleted applies to the next handshake — and asks for a certificate
/// without requiring one, so SASL clients on the same port are unaffected. With no
/// authority configured it does not ask at all.
pub struct ClientCerts {
    snapshot: std::sync::OnceLock<Arc<keygate_iam::Snapshot>>,
    built: arc_swap::ArcSwap<Built>,
}

struct Built {
    version: u64,
    verifier: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
}

impl std::fmt::Debug for ClientCerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCerts").finish_non_exhaustive()
    }
}

impl ClientCerts {
    fn new() -> Self {
        ClientCerts {
            snapshot: std::sync::OnceLock::new(),
            built: arc_swap::ArcSwap::from_pointee(Built {
                version: 0,
                verifier: None,
            }),
        }
    }

    /// Follow `snapshot`'s certificate authorities from now on.
    pub(crate) fn attach(&self, snapshot: Arc<keygate_iam::Snapshot>) {
        let _ = self.snapshot.set(snapshot);
    }

    /// The verifier for the authorities the snapshot holds now (rebuilt when they
    /// changed).
    fn current(&self) -> Option<Arc<dyn rustls::server::danger::ClientCertVerifier>> {
        let snapshot = self.snapshot.get()?;
        let oauth = snapshot.oauth();
        let dir = &oauth.certificates;
        let built = self.built.load();
        if built.version == dir.version {
            return built.verifier.clone();
        }
        let verifier = if dir.is_empty() {
            None
        } else {
            let mut roots = rustls::RootCertStore::empty();
            for c in &dir.roots {
                let _ = roots.add(c.clone());
            }
            rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                keygate_net::tls::provider(),
            )
            .with_crls(dir.crls.iter().cloned())
            .only_check_end_entity_revocation()
            .allow_unknown_revocation_status()
            .allow_unauthenticated()
            .build()
            .inspect_err(|e| tracing::warn!(error = %e, "certificate authorities unusable; client certificates refused"))
            .ok()
        };
        self.built.store(Arc::new(Built {
            version: dir.version,
            verifier: verifier.clone(),
        }));
        verifier
    }
}

impl rustls::server::danger::ClientCertVerifier for ClientCerts {
    fn offer_client_auth(&self) -> bool {
        self.current().is_some()
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        // Not listed: clients send the one certificate they are configured with.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &rustls_pki_types::CertificateDer<'_>,
        intermediates: &[rustls_pki_types::CertificateDer<'_>],
        now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        match self.current() {
            Some(v) => v.verify_client_cert(end_entity, intermediates, now),
            None => Err(rustls::Error::General(
                "no certificate authority is configured".into(),
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &keygate_net::tls::provider().signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &keygate_net::tls::provider().signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        keygate_net::tls::provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

impl GatewayTls {
    /// TLS for the gateway with the certificates of `certs` (a cluster's own when it
    /// has one, else the installation's); client certificates are verified against
    /// keygate's certificate authorities once the gateway starts (see [`ClientCerts`]).
    pub fn new(certs: Arc<keygate_net::tls::CertSet>, require: bool) -> Self {
        let client_certs = Arc::new(ClientCerts::new());
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        GatewayTls {
            default_config: keygate_net::tls::server_config_with_clients(
                certs.clone(),
                &[],
                client_certs.clone(),
            ),
            certs,
            per_cluster: Default::default(),
            require,
            client_certs,
            handshakes: Arc::new(tokio::sync::Semaphore::new(4 * cores)),
        }
    }

    /// The server configuration of `cluster`'s connections: its own certificate when
    /// the cluster directory has one (looked up at each handshake, so one added or
    /// replaced later is served), else the installation's.
    pub(crate) fn config_for(&self, cluster: &str) -> Arc<rustls::ServerConfig> {
        if !self.certs.has_named() {
            return self.default_config.clone();
        }
        let mut configs = self.per_cluster.lock().unwrap_or_else(|p| p.into_inner());
        configs
            .entry(cluster.to_owned())
            .or_insert_with(|| {
                let named = Arc::new(keygate_net::tls::NamedCert {
                    set: self.certs.clone(),
                    name: cluster.to_owned(),
                });
                keygate_net::tls::server_config_with_clients(named, &[], self.client_certs.clone())
            })
            .clone()
    }

    /// A turn to run a TLS handshake: at most 4 per core at once. A reconnect storm
    /// (thousands of clients after a restart) then queues its handshakes — parked,
    /// not runnable — instead of filling the scheduler's run queue with signature
    /// work ahead of the connections already open, whose requests stay prompt. The
    /// wait counts against the authentication deadline like the handshake itself.
    pub(crate) async fn handshake_turn(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.handshakes.acquire().await.ok()
    }
}

/// The leaf certificate a TLS client presented (verified by the handshake), if any.
pub(crate) fn peer_certificate(s: &ClientStream) -> Option<Vec<u8>> {
    match s {
        ClientStream::Tls(t) => t
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.as_ref().to_vec()),
        ClientStream::Plain(_) => None,
    }
}
