//! TLS for keygate's listeners, with rustls only.
//!
//! A listener's certificate is a [`CertFile`]: a PEM chain and key read from disk and
//! re-read when the files change, so a certificate is rotated without a restart. It is
//! the rustls certificate *resolver* of the listener's one `ServerConfig`: a reload
//! swaps the key pair the next handshake is given, while open connections keep the
//! session they negotiated. [`watch`] re-checks the files every few seconds and at
//! SIGHUP; a file that does not parse (a rotation half written) keeps the previous
//! certificate and says why.
//!
//! [`server_config`] is the one place a listener's TLS settings are decided: TLS 1.2
//! and 1.3 only, rustls' default suites of the ring provider (ECDHE with AES-GCM or
//! ChaCha20-Poly1305; no CBC, no RSA key exchange, no SHA-1).

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Why a certificate could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The certificate file holds no PEM certificate.
    #[error("{0}: no PEM certificate found")]
    NoCertificate(PathBuf),
    /// The key file holds no PEM private key.
    #[error("{0}: no PEM private key found (PKCS#8, PKCS#1 or SEC1)")]
    NoKey(PathBuf),
    /// The key is of a kind rustls cannot sign with, or is not the certificate's.
    #[error("{0}: {1}")]
    Key(PathBuf, String),
}

/// The crypto provider of every TLS connection keygate makes or accepts.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Read a PEM certificate chain and its private key; the key must match the leaf.
pub fn load_pair(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let chain = read_certs(cert)?;
    let key_pem = read(key)?;
    let der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::NoKey(key.into()))?;
    CertifiedKey::from_der(chain, der, &provider())
        .map_err(|e| TlsError::Key(key.into(), e.to_string()))
}

/// Every PEM certificate of a file (a chain, or a CA bundle).
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(path.into()));
    }
    Ok(certs)
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.into(),
        source,
    })
}

/// A certificate and key from PEM files, swapped in place when the files change.
pub struct CertFile {
    cert: PathBuf,
    key: PathBuf,
    current: ArcSwap<CertifiedKey>,
    /// The bytes last loaded (or last rejected), to notice a change.
    seen: Mutex<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for CertFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertFile")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl CertFile {
    /// Load `cert` (PEM chain, leaf first) and `key`.
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<CertFile>, TlsError> {
        let seen = (read(cert)?, read(key)?);
        let pair = load_pair(cert, key)?;
        Ok(Arc::new(CertFile {
            cert: cert.into(),
            key: key.into(),
            current: ArcSwap::from_pointee(pair),
            seen: Mutex::new(seen),
        }))
    }

    /// Re-read the files; when they changed and parse, the next handshakes get the new
    /// certificate. `Ok(true)` when it changed, `Ok(false)` when the files are as they
    /// were, an error (the previous certificate stays) when the new ones are unusable.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let now = (read(&self.cert)?, read(&self.key)?);
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if *seen == now {
            return Ok(false);
        }
        // Remembered even when unusable: the error is reported once, not every tick.
        *seen = now;
        drop(seen);
        let pair = load_pair(&self.cert, &self.key)?;
        self.current.store(Arc::new(pair));
        Ok(true)
    }

    /// The certificate file's path (for messages).
    pub fn path(&self) -> &Path {
        &self.cert
    }

    /// The certificate handshakes get now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.load_full()
    }
}

impl ResolvesServerCert for CertFile {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// A default certificate and, by name, certificates from a directory
/// (`<name>.pem` and `<name>.key`): the gateway serves a cluster the certificate named
/// after its id when there is one, else the installation's. Names are looked up once
/// and remembered (absent ones too), and every file is re-checked by [`watch`], so a
/// certificate dropped into the directory is served without a restart.
pub struct CertSet {
    default: Arc<CertFile>,
    dir: Option<PathBuf>,
    named: std::sync::RwLock<std::collections::HashMap<String, Option<Arc<CertFile>>>>,
}

impl std::fmt::Debug for CertSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertSet")
            .field("default", &self.default)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl CertSet {
    /// `default`, and the certificates of `dir` by name.
    pub fn new(default: Arc<CertFile>, dir: Option<PathBuf>) -> Arc<CertSet> {
        Arc::new(CertSet {
            default,
            dir,
            named: Default::default(),
        })
    }

    /// Whether certificates can differ by name.
    pub fn has_named(&self) -> bool {
        self.dir.is_some()
    }

    /// The certificate for `name` (its own, else the default).
    pub fn for_name(&self, name: &str) -> Arc<CertifiedKey> {
        self.named_file(name)
            .map_or_else(|| self.default.current(), |c| c.current())
    }

    fn named_file(&self, name: &str) -> Option<Arc<CertFile>> {
        let dir = self.dir.as_ref()?;
        // Cluster ids only: nothing that could leave the directory.
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return None;
        }
        if let Some(known) = self.named.read().ok()?.get(name) {
            return known.clone();
        }
        let (cert, key) = (
            dir.join(format!("{name}.pem")),
            dir.join(format!("{name}.key")),
        );
        let loaded = if cert.exists() {
            CertFile::load(&cert, &key)
                .inspect_err(|e| tracing::warn!(error = %e, "certificate not usable; serving the default one"))
                .ok()
        } else {
            None
        };
        if let Ok(mut n) = self.named.write() {
            n.insert(name.to_owned(), loaded.clone());
        }
        loaded
    }

    /// Re-check every file: the default, the named ones in use, and names that had
    /// none (a file may have appeared). Reports each change or failure.
    fn reload(&self, why: &str) {
        report(&self.default, why);
        let names: Vec<(String, Option<Arc<CertFile>>)> = self
            .named
            .read()
            .map(|n| n.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        for (name, file) in names {
            match file {
                Some(f) => report(&f, why),
                None => {
                    if let Ok(mut n) = self.named.write() {
                        n.remove(&name);
                    }
                    if self.named_file(&name).is_some() {
                        tracing::info!(name, trigger = why, "certificate loaded");
                    }
                }
            }
        }
    }
}

fn report(c: &CertFile, why: &str) {
    match c.reload() {
        Ok(true) => {
            tracing::info!(certificate = %c.path().display(), trigger = why, "certificate reloaded")
        }
        Ok(false) => {}
        Err(e) => {
            tracing::warn!(certificate = %c.path().display(), error = %e, "new certificate not usable; keeping the previous one")
        }
    }
}

impl ResolvesServerCert for CertSet {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.default.current())
    }
}

/// A [`CertSet`]'s certificate for one name (a cluster's listeners).
#[derive(Debug)]
pub struct NamedCert {
    /// The set.
    pub set: Arc<CertSet>,
    /// The name (cluster id).
    pub name: String,
}

impl ResolvesServerCert for NamedCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.set.for_name(&self.name))
    }
}

/// A server configuration for `certs`: TLS 1.2 and 1.3, the provider's default
/// suites, the given ALPN protocols (none for Kafka), no client certificates.
pub fn server_config(
    certs: Arc<dyn ResolvesServerCert>,
    alpn: &[&[u8]],
) -> Arc<rustls::ServerConfig> {
    finish(
        server_builder()
            .with_no_client_auth()
            .with_cert_resolver(certs),
        alpn,
    )
}

/// TLS 1.2 and 1.3 with the provider's default suites.
fn server_builder() -> rustls::ConfigBuilder<rustls::ServerConfig, rustls::WantsVerifier> {
    rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        // The ring provider's defaults are valid for both versions.
        .unwrap_or_else(|_| unreachable!("ring supports TLS 1.2 and 1.3"))
}

fn finish(mut config: rustls::ServerConfig, alpn: &[&[u8]]) -> Arc<rustls::ServerConfig> {
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// A client configuration trusting `ca_pem` (PEM bundle) or, without it, the system's
/// roots; presenting `client` (chain and key, PEM) when given.
pub fn client_config(
    ca_pem: Option<&[u8]>,
    client: Option<(&[u8], &[u8])>,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_pem {
        Some(pem) => {
            for c in CertificateDer::pem_slice_iter(pem).filter_map(Result::ok) {
                roots
                    .add(c)
                    .map_err(|e| TlsError::Key("CA bundle".into(), e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(TlsError::NoCertificate("CA bundle".into()));
            }
        }
        None => {
            for c in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(c);
            }
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .unwrap_or_else(|_| unreachable!("ring supports TLS 1.2 and 1.3"))
        .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some((chain, key)) => {
            let chain: Vec<_> = CertificateDer::pem_slice_iter(chain)
                .filter_map(Result::ok)
                .collect();
            if chain.is_empty() {
                return Err(TlsError::NoCertificate("client certificate".into()));
            }
            let key = PrivateKeyDer::from_pem_slice(key)
                .map_err(|_| TlsError::NoKey("client key".into()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| TlsError::Key("client key".into(), e.to_string()))?
        }
    };
    Ok(Arc::new(config))
}

/// Like [`server_config`], verifying client certificates with `clients` (which
/// decides whether to ask for one).
pub fn server_config_with_clients(
    certs: Arc<dyn ResolvesServerCert>,
    alpn: &[&[u8]],
    clients: Arc<dyn rustls::server::danger::ClientCertVerifier>,
) -> Arc<rustls::ServerConfig> {
    finish(
        server_builder()
            .with_client_cert_verifier(clients)
            .with_cert_resolver(certs),
        alpn,
    )
}

/// Re-check every certificate of `certs` every `every` and whenever the process gets
/// SIGHUP, until the process ends; reloads and failures are logged.
pub fn watch(certs: Vec<Arc<CertSet>>, every: Duration) {
    if certs.is_empty() {
        return;
    }
    tokio::spawn(async move {
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let mut tick = tokio::time::interval(every);
        loop {
            let why = match hup.as_mut() {
                Some(h) => tokio::select! {
                    _ = tick.tick() => "file check",
                    _ = h.recv() => "SIGHUP",
                },
                None => {
                    tick.tick().await;
                    "file check"
                }
            };
            for c in &certs {
                c.reload(why);
            }
        }
    });
}

/// Whether the peer's first byte opens a TLS handshake record (0x16), without
/// consuming it. Neither HTTP (a method name) nor Kafka (the high byte of a frame
/// length, which would make it a 369 MB frame) starts with it, so one look tells a
/// plaintext peer on a TLS port from a TLS peer. Waits for the first byte; a peer
/// that closes first is `UnexpectedEof`.
pub async fn starts_tls(tcp: &TcpStream) -> std::io::Result<bool> {
    let mut first = [0u8; 1];
    if tcp.peek(&mut first).await? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(first[0] == 0x16)
}

/// A connection, plaintext or TLS: what the protocols above run on without asking
/// which. Accepted connections by default; `Stream<client::TlsStream<_>>` for the
/// ones keygate opens.
pub enum Stream<T = tokio_rustls::server::TlsStream<TcpStream>> {
    /// No TLS.
    Plain(TcpStream),
    /// A TLS session (boxed: it holds rustls' buffers).
    Tls(Box<T>),
}

/// A connection keygate opened, plaintext or TLS.
pub type ClientStream = Stream<tokio_rustls::client::TlsStream<TcpStream>>;

impl<T> Stream<T> {
    /// Whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }
}

impl<T> std::fmt::Debug for Stream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_tls() {
            "Stream::Tls"
        } else {
            "Stream::Plain"
        })
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(dir: &Path, cn: &str) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut p = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        let cert = p.self_signed(&key).expect("cert");
        let (c, k) = (dir.join(format!("{cn}.pem")), dir.join(format!("{cn}.key")));
        std::fs::write(&c, cert.pem()).expect("write");
        std::fs::write(&k, key.serialize_pem()).expect("write");
        (c, k)
    }

    #[test]
    fn a_changed_pair_is_swapped_in_and_a_broken_one_is_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (c, k) = pair(dir.path(), "one");
        let cf = CertFile::load(&c, &k).expect("load");
        let first = cf.current().cert[0].clone();
        assert!(!cf.reload().expect("unchanged"), "nothing changed");

        let (c2, k2) = pair(dir.path(), "two");
        std::fs::copy(&c2, &c).expect("copy");
        std::fs::copy(&k2, &k).expect("copy");
        assert!(cf.reload().expect("changed"));
        let second = cf.current().cert[0].clone();
        assert_ne!(first, second);

        // A key that is not the certificate's: refused, the current pair stays.
        let (_, k3) = pair(dir.path(), "three");
        std::fs::copy(&k3, &k).expect("copy");
        assert!(matches!(cf.reload(), Err(TlsError::Key(..))));
        assert_eq!(cf.current().cert[0], second);
        // Reported once: the same unusable files are not an error again.
        assert!(!cf.reload().expect("seen"));

        // Garbage is a clear error at load time.
        std::fs::write(&c, "not a certificate").expect("write");
        assert!(matches!(
            CertFile::load(&c, &k),
            Err(TlsError::NoCertificate(_))
        ));
    }
}
