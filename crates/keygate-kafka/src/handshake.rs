//! The exchange before a connection is authenticated: ApiVersions, SaslHandshake and
//! SaslAuthenticate only, PLAIN with an API key or OAUTHBEARER with an IdP or STS token,
//! under one timeout and in small frames; failures answered alike after a delay and the
//! source's penalty. Returns the authenticated [`Session`] the request pipeline
//! (`conn`) runs with. Kept apart from the pipeline so that transports (TLS, SNI) and
//! mechanisms can change here without touching request handling.

use crate::audit::Who;
use crate::classify::codes;
use crate::conn::{api_versions, encode_response, peek_header, ConnError, Header};
use crate::frame::{read_frame, write_frame};
use crate::gateway::ClusterShared;
use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};
use keygate_core::{Principal, ResourceKind, Secret};
use keygate_iam::{Door, ScopeCheck, Snapshot};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// What a connection authenticated with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Credential {
    /// An API key (its id).
    Key(String),
    /// A token acting as these identity pools.
    Pools(Vec<String>),
}

/// The authenticated identity of a connection.
pub(crate) struct Session {
    /// One principal for a key; every matching pool for a token (their permissions
    /// are united).
    pub(crate) principals: Vec<Principal>,
    pub(crate) credential: Credential,
    /// For logs: the key id or the pools.
    pub(crate) label: String,
    pub(crate) expires: Option<Instant>,
    pub(crate) mechanism: Mechanism,
    /// The token's subject (OAUTHBEARER).
    pub(crate) identity: Option<String>,
}

impl Session {
    pub(crate) fn who(&self, peer: SocketAddr) -> Who {
        Who {
            principal: self.principals[0].to_string(),
            mechanism: self.mechanism.audit_name(),
            identifier: self.label.clone(),
            identity: self.identity.clone(),
            peer,
        }
    }
}

/// The SASL mechanism a connection negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mechanism {
    Plain,
    OAuthBearer,
    /// No SASL: a client certificate matched certificate identity pools.
    Mtls,
}

impl Mechanism {
    pub(crate) fn audit_name(self) -> &'static str {
        match self {
            Mechanism::Plain => "SASL_PLAIN",
            Mechanism::OAuthBearer => "SASL_OAUTHBEARER",
            Mechanism::Mtls => "MTLS",
        }
    }
}

/// The session of a client whose certificate (verified by the TLS handshake against
/// keygate's certificate authorities) matches certificate identity pools: no SASL.
/// It lasts until the certificate expires, or until its pools are disabled or
/// deleted (checked like every session). Audited either way.
pub(crate) fn certificate_session(
    shared: &ClusterShared,
    leaf: &[u8],
    peer: SocketAddr,
) -> Result<Session, ConnError> {
    let identified = shared.snapshot.oauth().certificates.identify(leaf);
    match identified {
        Ok(id) => {
            let left = id.not_after - chrono::Utc::now().timestamp();
            let session = Session {
                principals: id.principals(),
                credential: Credential::Pools(id.pools.clone()),
                label: id.pools.join(","),
                expires: Some(
                    Instant::now() + Duration::from_secs(u64::try_from(left).unwrap_or(0)),
                ),
                mechanism: Mechanism::Mtls,
                identity: Some(id.external_id),
            };
            shared.audit_authentication(&session.who(peer), None);
            Ok(session)
        }
        Err(e) => {
            let reason = e.to_string();
            shared
                .audit_authentication(&failed_attempt(Mechanism::Mtls, None, peer), Some(&reason));
            Err(ConnError::AuthFailed(reason))
        }
    }
}

/// A failed authentication's record: what was attempted, as far as it is an
/// identifier.
pub(crate) fn failed_attempt(m: Mechanism, identifier: Option<String>, peer: SocketAddr) -> Who {
    Who {
        principal: String::new(),
        mechanism: m.audit_name(),
        identifier: identifier.unwrap_or_default(),
        identity: None,
        peer,
    }
}

/// The largest frame a client may send before it has authenticated: ApiVersions,
/// SaslHandshake and SaslAuthenticate are small (a bearer token is kilobytes). Kafka's
/// own limit, `sasl.server.max.receive.size`, is the same 512 KiB; an anonymous peer
/// never makes the gateway wait for, or hold, a 100 MiB body.
pub(crate) const MAX_FRAME_BEFORE_AUTHENTICATION: usize = 512 * 1024;

/// The exchange before authentication: ApiVersions, SaslHandshake and
/// SaslAuthenticate only, in frames of at most [`MAX_FRAME_BEFORE_AUTHENTICATION`].
/// Returns the session and the negotiated mechanism.
pub(crate) async fn handshake<R, W>(
    cr: &mut R,
    cw: &mut W,
    peer: SocketAddr,
    shared: &ClusterShared,
) -> Result<(Session, Option<Mechanism>), ConnError>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let cfg = &shared.cfg;
    let mut mechanism = None;
    // An OAUTHBEARER failure is a challenge first (RFC 7628 §3.2.2); the client's
    // next message gets the error.
    let mut failing: Option<String> = None;
    let max = cfg.max_frame.min(MAX_FRAME_BEFORE_AUTHENTICATION);
    loop {
        let frame = read_frame(cr, max).await?;
        let h = peek_header(&frame).ok_or_else(|| ConnError::Protocol("short frame".into()))?;
        match ApiKey::try_from(h.api_key) {
            Ok(ApiKey::ApiVersions) => {
                let resp = api_versions(shared, h.version, h.correlation_id);
                write_frame(cw, &resp).await?;
            }
            Ok(ApiKey::SaslHandshake) => {
                let (resp, m) = sasl_handshake(&frame, h)?;
                write_frame(cw, &resp).await?;
                if m.is_none() {
                    // As Kafka does: the answer lists the mechanisms, then the
                    // connection is closed.
                    return Err(ConnError::AuthFailed("unsupported SASL mechanism".into()));
                }
                mechanism = m;
            }
            Ok(ApiKey::SaslAuthenticate) if mechanism.is_some() => {
                let m = mechanism.unwrap_or(Mechanism::Plain);
                if let Some(reason) = failing.take() {
                    return refuse(shared, cw, peer, h, m, reason).await;
                }
                let (outcome, attempted) = authenticate(shared, m, &frame, h, None).await;
                match outcome {
                    Auth::Ok(resp, session) => {
                        shared.audit_authentication(&session.who(peer), None);
                        write_frame(cw, &resp).await?;
                        return Ok((session, mechanism));
                    }
                    Auth::Challenge(resp, reason) => {
                        shared.audit_authentication(
                            &failed_attempt(m, attempted, peer),
                            Some(&reason),
                        );
                        write_frame(cw, &resp).await?;
                        failing = Some(reason);
                    }
                    Auth::Fail(reason) => {
                        shared.audit_authentication(
                            &failed_attempt(m, attempted, peer),
                            Some(&reason),
                        );
                        return refuse(shared, cw, peer, h, m, reason).await;
                    }
                }
            }
            _ => {
                return Err(ConnError::Protocol(format!(
                    "api key {} before authentication",
                    h.api_key
                )))
            }
        }
    }
}

/// Answer a failed authentication: the same message for every cause, after the
/// configured delay (as Kafka delays the close) plus the source's penalty when it
/// keeps failing; then the connection ends.
///
/// Only failures wait: a source is never refused outright, so a client with the right
/// key on the same host as a misconfigured one (or behind the same NAT) is not slowed.
/// The penalty stays under half the authentication timeout, so the client still
/// reads the error rather than a closed connection.
pub(crate) async fn refuse<W: tokio::io::AsyncWrite + Unpin>(
    shared: &ClusterShared,
    cw: &mut W,
    peer: SocketAddr,
    h: Header,
    m: Mechanism,
    reason: String,
) -> Result<(Session, Option<Mechanism>), ConnError> {
    let penalty = shared.iam.auth_failed(Door::Kafka, peer.ip());
    let wait = penalty.wait.min(shared.cfg.auth_timeout / 2);
    tokio::time::sleep(shared.cfg.auth_failure_delay + wait).await;
    write_frame(cw, &auth_failure(h, m)).await?;
    Err(ConnError::AuthFailed(reason))
}

pub(crate) fn session_valid(snapshot: &Snapshot, s: &Session) -> bool {
    if s.expires.is_some_and(|e| Instant::now() >= e) {
        return false;
    }
    match &s.credential {
        Credential::Key(id) => snapshot
            .key(id)
            .is_some_and(|k| !k.disabled && k.expires_at.is_none_or(|e| e > chrono::Utc::now())),
        Credential::Pools(pools) => {
            let oauth = snapshot.oauth();
            pools.iter().all(|p| oauth.directory.pool_active(p))
        }
    }
}

pub(crate) fn sasl_handshake(
    frame: &Bytes,
    h: Header,
) -> Result<(Bytes, Option<Mechanism>), ConnError> {
    let mut body = frame.clone();
    let api = ApiKey::SaslHandshake;
    RequestHeader::decode(&mut body, api.request_header_version(h.version))
        .map_err(|e| ConnError::Protocol(e.to_string()))?;
    let req = SaslHandshakeRequest::decode(&mut body, h.version)
        .map_err(|e| ConnError::Protocol(e.to_string()))?;
    let mut resp = SaslHandshakeResponse::default();
    resp.mechanisms = vec![
        StrBytes::from_static_str("PLAIN"),
        StrBytes::from_static_str("OAUTHBEARER"),
    ];
    // v0 sends tokens unframed; only v1+ (tokens in SaslAuthenticate) is served.
    let m = match req.mechanism.as_str() {
        "PLAIN" if h.version >= 1 => Some(Mechanism::Plain),
        "OAUTHBEARER" if h.version >= 1 => Some(Mechanism::OAuthBearer),
        _ => None,
    };
    if m.is_none() {
        resp.error_code = codes::UNSUPPORTED_SASL_MECHANISM;
    }
    let bytes = encode_response(api, h.version, h.correlation_id, &resp.into())
        .ok_or_else(|| ConnError::Protocol("encode".into()))?;
    Ok((bytes, m))
}

/// The one failure answer per mechanism: error 58 with a message that reveals
/// nothing about the cause.
pub(crate) fn auth_failure(h: Header, m: Mechanism) -> Bytes {
    let mut resp = SaslAuthenticateResponse::default();
    resp.error_code = codes::SASL_AUTH_FAILED;
    resp.error_message = Some(StrBytes::from_static_str(match m {
        Mechanism::Plain => "Authentication failed: invalid API key or secret",
        Mechanism::OAuthBearer => "Authentication failed: invalid token",
        Mechanism::Mtls => "Authentication failed: certificate sessions do not use SASL",
    }));
    encode_response(
        ApiKey::SaslAuthenticate,
        h.version,
        h.correlation_id,
        &resp.into(),
    )
    .unwrap_or_default()
}

/// The outcome of one SaslAuthenticate.
pub(crate) enum Auth {
    Ok(Bytes, Session),
    /// OAUTHBEARER failure: send this challenge, fail on the client's next message.
    Challenge(Bytes, String),
    Fail(String),
}

pub(crate) fn success(h: Header, lifetime_ms: i64) -> Option<(Bytes, Option<Instant>)> {
    let mut resp = SaslAuthenticateResponse::default();
    // Empty: kafka-python requires it for OAUTHBEARER.
    resp.auth_bytes = Bytes::new();
    if h.version >= 1 {
        resp.session_lifetime_ms = lifetime_ms;
    }
    let bytes = encode_response(
        ApiKey::SaslAuthenticate,
        h.version,
        h.correlation_id,
        &resp.into(),
    )?;
    let expires = (h.version >= 1).then(|| {
        Instant::now() + Duration::from_millis(lifetime_ms as u64) + Duration::from_secs(5)
    });
    Some((bytes, expires))
}

/// Authenticate, and say what identifier was attempted (for the audit record).
pub(crate) async fn authenticate(
    shared: &ClusterShared,
    mechanism: Mechanism,
    frame: &Bytes,
    h: Header,
    same_as: Option<&[Principal]>,
) -> (Auth, Option<String>) {
    let mut attempted = None;
    let a = authenticate_inner(shared, mechanism, frame, h, same_as, &mut attempted).await;
    (a, attempted)
}

async fn authenticate_inner(
    shared: &ClusterShared,
    mechanism: Mechanism,
    frame: &Bytes,
    h: Header,
    same_as: Option<&[Principal]>,
    attempted: &mut Option<String>,
) -> Auth {
    let api = ApiKey::SaslAuthenticate;
    let fail = Auth::Fail;
    let mut body = frame.clone();
    if RequestHeader::decode(&mut body, api.request_header_version(h.version)).is_err() {
        return fail("malformed SaslAuthenticate".into());
    }
    let Ok(req) = SaslAuthenticateRequest::decode(&mut body, h.version) else {
        return fail("malformed SaslAuthenticate".into());
    };
    let cluster_id = shared.cluster_id.as_str();
    if let Err(age) = shared.snapshot.check_fresh() {
        return fail(format!(
            "snapshot not confirmed for {} s (database unreachable longer than the maximum staleness)",
            age.as_secs()
        ));
    }
    let max_ms = shared.cfg.max_session_lifetime.as_millis() as i64;
    let (principals, credential, label, lifetime_ms, identity) = match mechanism {
        Mechanism::Mtls => {
            return fail("certificate sessions do not re-authenticate with SASL".into())
        }
        Mechanism::Plain => {
            let Some(plain) = crate::sasl::parse_plain(&req.auth_bytes) else {
                return fail("malformed PLAIN token".into());
            };
            if keygate_core::KeyId::parse(&plain.username).is_some() {
                *attempted = Some(plain.username.clone());
            }
            let secret = Secret::from_client(plain.password);
            let entry = match shared.snapshot.verify(
                &plain.username,
                &secret,
                ScopeCheck::Resource(ResourceKind::Kafka, cluster_id),
                chrono::Utc::now(),
            ) {
                Ok(e) => e,
                Err(r) => {
                    tracing::info!(
                        cluster = cluster_id,
                        key = %keygate_core::redact::key_id(&plain.username),
                        reason = r.as_str(),
                        "Kafka authentication failed"
                    );
                    return fail(r.as_str().into());
                }
            };
            let key_left = entry
                .expires_at
                .map(|e| (e - chrono::Utc::now()).num_milliseconds().max(1));
            (
                vec![Principal::user(entry.owner_id.to_string())],
                Credential::Key(plain.username.clone()),
                plain.username,
                key_left.map_or(max_ms, |k| k.min(max_ms)),
                None,
            )
        }
        Mechanism::OAuthBearer => {
            let challenge = |reason: String| {
                tracing::info!(
                    cluster = cluster_id,
                    reason,
                    "Kafka OAUTHBEARER authentication failed"
                );
                let mut resp = SaslAuthenticateResponse::default();
                resp.auth_bytes = Bytes::from_static(br#"{"status":"invalid_token"}"#);
                match encode_response(api, h.version, h.correlation_id, &resp.into()) {
                    Some(b) => Auth::Challenge(b, reason),
                    None => Auth::Fail(reason),
                }
            };
            let Some(msg) = crate::sasl::parse_oauthbearer(&req.auth_bytes) else {
                return challenge("malformed OAUTHBEARER message".into());
            };
            if msg
                .extension("logicalCluster")
                .is_some_and(|c| c != cluster_id)
            {
                return challenge("logicalCluster names another cluster".into());
            }
            let pools: Vec<&str> = msg
                .extension("identityPoolId")
                .map(|p| {
                    p.split(',')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            if !pools.is_empty() {
                // Client text: only what has the shape of pool ids is recorded.
                let shaped = pools.iter().all(|p| {
                    keygate_core::IdKind::of(p) == Some(keygate_core::IdKind::IdentityPool)
                });
                *attempted = Some(if shaped && pools.len() <= 16 {
                    pools.join(",")
                } else {
                    format!(
                        "<not identity pool ids: {} bytes>",
                        pools.iter().map(|p| p.len()).sum::<usize>()
                    )
                });
            }
            let mut identity: Option<keygate_oauth::Identity> = None;
            let hints: Vec<Option<&str>> = if pools.is_empty() {
                vec![None]
            } else {
                pools.iter().map(|p| Some(*p)).collect()
            };
            for hint in hints {
                match shared.iam.authenticate_token(&msg.token, hint, true).await {
                    Ok(id) => match &mut identity {
                        None => identity = Some(id),
                        Some(acc) => acc.pools.extend(id.pools),
                    },
                    Err(e) => return challenge(e.to_string()),
                }
            }
            let Some(id) = identity else {
                return challenge("no identity pool".into());
            };
            let left_ms = ((id.expires_at - chrono::Utc::now().timestamp()) * 1000).max(1);
            let label = id.pools.join(",");
            *attempted = Some(label.clone());
            let subject = Some(id.subject.clone());
            (
                id.pools
                    .iter()
                    .map(|p| Principal::user(p.clone()))
                    .collect(),
                Credential::Pools(id.pools),
                label,
                left_ms.min(max_ms),
                subject,
            )
        }
    };
    if same_as.is_some_and(|p| p != principals.as_slice()) {
        return fail("re-authentication changed the principal".into());
    }
    let Some((bytes, expires)) = success(h, lifetime_ms) else {
        return fail("encode".into());
    };
    Auth::Ok(
        bytes,
        Session {
            principals,
            credential,
            label,
            expires,
            mechanism,
            identity,
        },
    )
}
