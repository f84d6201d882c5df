//! The gateway's connections to a cluster's brokers: TCP, then TLS when the cluster's
//! `upstream_security_protocol` asks for it (CA bundle, server-name check, optional
//! client certificate), then SASL with the gateway's own credential (PLAIN or
//! SCRAM-SHA-256/512) — before any client byte is forwarded. The broker can then
//! require authentication and trust only keygate: a client that goes around the
//! gateway is refused by the broker itself.
//!
//! A [`Connector`] is built per cluster from its settings when the gateway starts
//! serving it; the password it holds was opened by the IAM service and lives only here,
//! in memory. Changing the settings (a rotation) builds a new connector for new
//! connections; open ones keep the upstream session they have.

use crate::frame::{read_frame, write_frame};
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use keygate_core::{UpstreamMechanism, UpstreamSecurity};
use keygate_iam::UpstreamSecrets;
use keygate_net::tls::ClientStream;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use zeroize::Zeroizing;

/// Connect, TLS and SASL together must finish within this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The gateway's SASL login.
struct Login {
    mechanism: UpstreamMechanism,
    username: String,
    password: Zeroizing<String>,
}

/// How to open an authenticated connection to one cluster's brokers.
pub(crate) struct Connector {
    tls: Option<(tokio_rustls::TlsConnector, Option<String>)>,
    login: Option<Login>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("tls", &self.tls.is_some())
            .field("sasl", &self.login.as_ref().map(|l| l.mechanism))
            .finish()
    }
}

impl Connector {
    /// The connector for `u`, with its opened secrets.
    pub(crate) fn new(u: &UpstreamSecurity, secrets: UpstreamSecrets) -> Result<Self, String> {
        let tls = if u.protocol.tls() {
            let client = match (&u.client_cert_pem, &secrets.client_key_pem) {
                (Some(c), Some(k)) => Some((c.as_bytes(), k.as_bytes())),
                _ => None,
            };
            let config =
                keygate_net::tls::client_config(u.ca_pem.as_deref().map(str::as_bytes), client)
                    .map_err(|e| format!("upstream TLS settings: {e}"))?;
            Some((
                tokio_rustls::TlsConnector::from(config),
                u.server_name.clone(),
            ))
        } else {
            None
        };
        let login = match (
            u.protocol.sasl(),
            u.mechanism,
            &u.username,
            secrets.password,
        ) {
            (false, ..) => None,
            (true, Some(mechanism), Some(username), Some(password)) => Some(Login {
                mechanism,
                username: username.clone(),
                password,
            }),
            _ => return Err("SASL settings are incomplete".into()),
        };
        Ok(Connector { tls, login })
    }

    /// A connection to `addr` (`host:port`), encrypted and authenticated as the
    /// cluster's settings say.
    pub(crate) async fn connect(&self, addr: &str) -> Result<ClientStream, String> {
        tokio::time::timeout(CONNECT_TIMEOUT, self.open(addr))
            .await
            .map_err(|_| {
                format!("{addr}: connecting, TLS and SASL took over {CONNECT_TIMEOUT:?}")
            })?
    }

    async fn open(&self, addr: &str) -> Result<ClientStream, String> {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let mut stream = match &self.tls {
            None => ClientStream::Plain(tcp),
            Some((connector, name)) => {
                let host = name.clone().unwrap_or_else(|| host_of(addr).to_owned());
                let server = rustls_pki_types::ServerName::try_from(host.clone())
                    .map_err(|_| format!("{addr}: `{host}` is not a valid TLS server name"))?;
                let s = connector
                    .connect(server, tcp)
                    .await
                    .map_err(|e| format!("{addr}: TLS: {e}"))?;
                ClientStream::Tls(Box::new(s))
            }
        };
        if let Some(login) = &self.login {
            authenticate(&mut stream, login)
                .await
                .map_err(|e| format!("{addr}: SASL {}: {e}", login.mechanism.as_str()))?;
        }
        Ok(stream)
    }
}

/// The host of `host:port` (IPv6 brackets removed).
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// One request and its response on a connection of the gateway's own.
pub(crate) async fn request<S, Req, Resp>(
    s: &mut S,
    api: ApiKey,
    version: i16,
    corr: i32,
    req: &Req,
) -> Result<Resp, String>
where
    S: AsyncRead + AsyncWrite + Unpin,
    Req: Encodable,
    Resp: Decodable,
{
    let mut buf = BytesMut::new();
    let mut h = RequestHeader::default();
    h.request_api_key = api as i16;
    h.request_api_version = version;
    h.correlation_id = corr;
    h.client_id = Some(StrBytes::from_static_str("keygate-gateway"));
    h.encode(&mut buf, api.request_header_version(version))
        .map_err(|e| e.to_string())?;
    req.encode(&mut buf, version).map_err(|e| e.to_string())?;
    write_frame(s, &buf).await.map_err(|e| e.to_string())?;
    let mut frame = read_frame(s, 64 * 1024 * 1024)
        .await
        .map_err(|e| e.to_string())?;
    ResponseHeader::decode(&mut frame, api.response_header_version(version))
        .map_err(|e| e.to_string())?;
    Resp::decode(&mut frame, version).map_err(|e| e.to_string())
}

/// SaslHandshake v1, then SaslAuthenticate v1 rounds until the mechanism is done.
async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    login: &Login,
) -> Result<(), String> {
    let mut hs = SaslHandshakeRequest::default();
    hs.mechanism = StrBytes::from_static_str(login.mechanism.as_str());
    let r: SaslHandshakeResponse = request(s, ApiKey::SaslHandshake, 1, 1, &hs).await?;
    if r.error_code != 0 {
        let offered: Vec<&str> = r.mechanisms.iter().map(|m| m.as_str()).collect();
        return Err(format!(
            "the broker does not offer it (error {}; it offers {offered:?})",
            r.error_code
        ));
    }
    match login.mechanism {
        UpstreamMechanism::Plain => {
            let token = format!("\0{}\0{}", login.username, login.password.as_str());
            round(s, 2, token.into_bytes()).await.map(|_| ())
        }
        UpstreamMechanism::ScramSha256 | UpstreamMechanism::ScramSha512 => {
            let hash = if login.mechanism == UpstreamMechanism::ScramSha256 {
                crate::scram::Hash::Sha256
            } else {
                crate::scram::Hash::Sha512
            };
            let nonce = nonce();
            let mut scram = crate::scram::Scram::new(hash, &login.username, &nonce);
            let first = round(s, 2, scram.client_first().into_bytes()).await?;
            let first = String::from_utf8_lossy(&first).into_owned();
            let fin = scram
                .client_final(&first, &login.password)
                .map_err(|e| e.to_string())?;
            let last = round(s, 3, fin.into_bytes()).await?;
            scram
                .verify_server(&String::from_utf8_lossy(&last))
                .map_err(|e| e.to_string())
        }
    }
}

/// One SaslAuthenticate exchange; the broker's bytes, or its error.
async fn round<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    corr: i32,
    bytes: Vec<u8>,
) -> Result<Bytes, String> {
    let mut req = SaslAuthenticateRequest::default();
    req.auth_bytes = Bytes::from(bytes);
    let r: SaslAuthenticateResponse = request(s, ApiKey::SaslAuthenticate, 1, corr, &req).await?;
    if r.error_code != 0 {
        let msg = r.error_message.as_ref().map_or("", |m| m.as_str());
        return Err(format!(
            "the broker refused the credential (error {}) {msg}",
            r.error_code
        ));
    }
    Ok(r.auth_bytes)
}

/// 24 random bytes, base64 without `,` (RFC 5802 nonces are printable, comma-free).
fn nonce() -> String {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut b = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Shared by the cluster's connections.
pub(crate) type SharedConnector = Arc<Connector>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_addresses() {
        assert_eq!(host_of("broker-1.internal:9093"), "broker-1.internal");
        assert_eq!(host_of("[::1]:9093"), "::1");
        assert_eq!(host_of("10.0.0.1:9092"), "10.0.0.1");
    }
}
