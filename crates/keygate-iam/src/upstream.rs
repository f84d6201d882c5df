//! The gateway's own credential for a cluster's brokers: what an administrator gives
//! (once, in the clear) becomes [`UpstreamSecurity`] with its secrets sealed; the
//! gateway gets them back opened, in memory only, through [`Iam::upstream_secrets`].
//! The REST API, CLI and console can set them but never read them: what they show is
//! [`UpstreamView`].
//!
//! The health of each cluster's upstream, as this instance's gateway last saw it, is
//! kept here too, so the REST API and console can show why a cluster is unreachable.

use crate::seal::Sealer;
use crate::{Iam, IamError, Result};
use keygate_core::model::Resource;
use keygate_core::upstream::{Sealed, UpstreamSecurity};
use keygate_core::{HttpAuth, ResourceKind, SecurityProtocol, UpstreamMechanism};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::collections::HashMap;
use std::sync::Mutex;
use zeroize::Zeroizing;

/// Upstream settings as an administrator sends them; every field optional (an update
/// changes what is given). The password and key are secrets: `Debug` never shows them.
#[derive(Clone, Default)]
pub struct UpstreamInput {
    /// `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`.
    pub protocol: Option<String>,
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: Option<String>,
    /// SASL user name.
    pub username: Option<String>,
    /// SASL password (write-only).
    pub password: Option<String>,
    /// PEM CA bundle for the brokers' certificates.
    pub ca_pem: Option<String>,
    /// The name the brokers' certificates must hold.
    pub server_name: Option<String>,
    /// PEM client certificate chain (mTLS).
    pub client_cert_pem: Option<String>,
    /// PEM private key of the client certificate (write-only).
    pub client_key_pem: Option<String>,
    /// HTTP services: `BASIC`, `BEARER`, `HEADER` or `NONE`.
    pub http_auth: Option<String>,
    /// HTTP services with `HEADER`: the header's name (e.g. `X-API-Key`).
    pub header_name: Option<String>,
}

impl std::fmt::Debug for UpstreamInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamInput")
            .field("protocol", &self.protocol)
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("server_name", &self.server_name)
            .field(
                "client_key_pem",
                &self.client_key_pem.as_ref().map(|_| "[redacted]"),
            )
            .finish_non_exhaustive()
    }
}

impl UpstreamInput {
    /// Whether nothing is given.
    pub fn is_empty(&self) -> bool {
        self.protocol.is_none()
            && self.mechanism.is_none()
            && self.username.is_none()
            && self.password.is_none()
            && self.ca_pem.is_none()
            && self.server_name.is_none()
            && self.client_cert_pem.is_none()
            && self.client_key_pem.is_none()
            && self.http_auth.is_none()
            && self.header_name.is_none()
    }
}

/// What may be shown of a cluster's upstream settings: everything but the secrets,
/// of which only their presence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamView {
    /// Protocol.
    pub protocol: SecurityProtocol,
    /// SASL mechanism.
    pub mechanism: Option<UpstreamMechanism>,
    /// SASL user name.
    pub username: Option<String>,
    /// Whether a password is set.
    pub password_set: bool,
    /// Whether a CA bundle is set (else the system's roots).
    pub ca_set: bool,
    /// The certificate name checked.
    pub server_name: Option<String>,
    /// Whether a client certificate is presented.
    pub client_certificate_set: bool,
    /// HTTP services: the gateway's credential scheme toward the upstream.
    pub http_auth: Option<keygate_core::HttpAuth>,
}

impl From<&UpstreamSecurity> for UpstreamView {
    fn from(u: &UpstreamSecurity) -> Self {
        UpstreamView {
            protocol: u.protocol,
            mechanism: u.mechanism,
            username: u.username.clone(),
            password_set: u.password.is_some(),
            ca_set: u.ca_pem.is_some(),
            server_name: u.server_name.clone(),
            client_certificate_set: u.client_cert_pem.is_some(),
            http_auth: u.http_auth.clone(),
        }
    }
}

/// The opened secrets of a cluster's upstream settings (gateway only; zeroed when
/// dropped).
#[derive(Default)]
pub struct UpstreamSecrets {
    /// The SASL password.
    pub password: Option<Zeroizing<String>>,
    /// The client certificate's PEM private key.
    pub client_key_pem: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for UpstreamSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UpstreamSecrets([redacted])")
    }
}

/// Where sealed fields are bound: a value sealed for one resource and field opens for
/// no other. `key` is the resource's storage key (a Kafka cluster's id; an HTTP
/// service's key names its environment too, as Flink regions and Tableflow repeat).
fn context(kind: ResourceKind, key: &str, field: &str) -> String {
    match kind {
        ResourceKind::Kafka => format!("kafka-upstream/{key}/{field}"),
        _ => format!("http-upstream/{key}/{field}"),
    }
}

const P: &str = "/spec/upstream_security";

/// Settings that passed [`check`], with the new secrets still in the clear until
/// [`Checked::seal`] binds them to their cluster.
pub(crate) struct Checked {
    settings: UpstreamSecurity,
    password: Option<Zeroizing<String>>,
    client_key: Option<Zeroizing<String>>,
}

impl Checked {
    /// The settings to store, new secrets sealed for the resource (`kind`, storage
    /// `key`).
    pub(crate) fn seal(&self, sealer: &Sealer, kind: ResourceKind, key: &str) -> UpstreamSecurity {
        let mut u = self.settings.clone();
        if let (Some(_), Some(pw)) = (&u.password, &self.password) {
            u.password = Some(sealer.seal(&context(kind, key, "password"), pw.as_bytes()));
        }
        if let (Some(_), Some(k)) = (&u.client_key, &self.client_key) {
            u.client_key = Some(sealer.seal(&context(kind, key, "client_key"), k.as_bytes()));
        }
        u
    }
}

/// Apply `input` over `current` and check the result: for a Kafka cluster, see
/// [`check`]; for an HTTP service, `upstream` is its URL (TLS settings need https).
pub(crate) fn check_for(
    kind: ResourceKind,
    upstream: &str,
    current: &UpstreamSecurity,
    input: &UpstreamInput,
) -> Result<Checked> {
    if kind == ResourceKind::Kafka {
        return check_fields(current, input, true);
    }
    if input.protocol.is_some() || input.mechanism.is_some() {
        return Err(IamError::invalid(
            format!("{P}/protocol"),
            "HTTP services take http_auth (BASIC, BEARER, HEADER or NONE), not a Kafka protocol",
        ));
    }
    let mut c = check_fields(current, input, false)?;
    if let Some(a) = &input.http_auth {
        c.settings.http_auth = match a.to_ascii_uppercase().as_str() {
            "NONE" => None,
            "BASIC" => Some(HttpAuth::Basic),
            "BEARER" => Some(HttpAuth::Bearer),
            "HEADER" => Some(HttpAuth::Header(
                input
                    .header_name
                    .clone()
                    .or_else(|| match &current.http_auth {
                        Some(HttpAuth::Header(n)) => Some(n.clone()),
                        _ => None,
                    })
                    .unwrap_or_default(),
            )),
            _ => {
                return Err(IamError::invalid(
                    format!("{P}/http_auth"),
                    "must be BASIC, BEARER, HEADER or NONE",
                ))
            }
        };
    } else if let (Some(n), Some(HttpAuth::Header(_))) = (&input.header_name, &current.http_auth) {
        c.settings.http_auth = Some(HttpAuth::Header(n.clone()));
    }
    if c.settings.http_auth.is_none() {
        c.settings.username = None;
        c.settings.password = None;
        c.password = None;
    } else if c.settings.http_auth != Some(HttpAuth::Basic) {
        c.settings.username = None;
    }
    c.settings
        .validate_http(upstream.starts_with("https://"))
        .map_err(|e| IamError::invalid(format!("{P}/{}", e.field), e.reason))?;
    Ok(c)
}

/// Apply `input` over `current` (an update changes what is given; a protocol without
/// SASL or TLS drops the settings that only make sense with them) and check the result.
/// For HTTP services the Kafka rules are skipped: [`check_for`] applies theirs.
fn check_fields(current: &UpstreamSecurity, input: &UpstreamInput, kafka: bool) -> Result<Checked> {
    let pending = || Sealed(String::new());
    let mut u = current.clone();
    let (mut password, mut client_key) = (None, None);
    if let Some(p) = &input.protocol {
        u.protocol = SecurityProtocol::parse(p).ok_or_else(|| {
            IamError::invalid(
                format!("{P}/protocol"),
                "must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
            )
        })?;
    }
    if let Some(m) = &input.mechanism {
        u.mechanism = Some(UpstreamMechanism::parse(m).ok_or_else(|| {
            IamError::invalid(
                format!("{P}/sasl_mechanism"),
                "must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
            )
        })?);
    }
    if let Some(n) = &input.username {
        u.username = Some(n.clone());
    }
    if let Some(pw) = &input.password {
        if pw.is_empty() {
            return Err(IamError::invalid(
                format!("{P}/password"),
                "must not be empty",
            ));
        }
        u.password = Some(pending());
        password = Some(Zeroizing::new(pw.clone()));
    }
    if let Some(ca) = &input.ca_pem {
        let n = CertificateDer::pem_slice_iter(ca.as_bytes())
            .filter(|c| c.is_ok())
            .count();
        if n == 0 {
            return Err(IamError::invalid(
                format!("{P}/ca_pem"),
                "holds no PEM certificate",
            ));
        }
        u.ca_pem = Some(ca.clone());
    }
    if let Some(n) = &input.server_name {
        u.server_name = Some(n.clone()).filter(|n| !n.is_empty());
    }
    if let Some(c) = &input.client_cert_pem {
        if CertificateDer::pem_slice_iter(c.as_bytes())
            .next()
            .is_none()
        {
            return Err(IamError::invalid(
                format!("{P}/client_certificate_pem"),
                "holds no PEM certificate",
            ));
        }
        u.client_cert_pem = Some(c.clone());
    }
    if let Some(k) = &input.client_key_pem {
        if PrivateKeyDer::from_pem_slice(k.as_bytes()).is_err() {
            return Err(IamError::invalid(
                format!("{P}/client_key_pem"),
                "holds no PEM private key",
            ));
        }
        u.client_key = Some(pending());
        client_key = Some(Zeroizing::new(k.clone()));
    }
    if !kafka {
        return Ok(Checked {
            settings: u,
            password,
            client_key,
        });
    }
    if !u.protocol.sasl() {
        u.mechanism = None;
        u.username = None;
        u.password = None;
    }
    if !u.protocol.tls() {
        u.ca_pem = None;
        u.server_name = None;
        u.client_cert_pem = None;
        u.client_key = None;
    }
    u.validate()
        .map_err(|e| IamError::invalid(format!("{P}/{}", e.field), e.reason))?;
    Ok(Checked {
        settings: u,
        password,
        client_key,
    })
}

#[cfg(test)]
fn merge(
    sealer: &Sealer,
    cluster_id: &str,
    current: &UpstreamSecurity,
    input: &UpstreamInput,
) -> Result<UpstreamSecurity> {
    Ok(check_for(ResourceKind::Kafka, "", current, input)?.seal(
        sealer,
        ResourceKind::Kafka,
        cluster_id,
    ))
}

fn open(
    sealer: &Sealer,
    (kind, cluster_id): (ResourceKind, &str),
    field: &str,
    s: &Sealed,
) -> Result<Zeroizing<String>> {
    let bytes = sealer
        .open(&context(kind, cluster_id, field), s)
        .map_err(|e| IamError::Internal(format!("cluster {cluster_id} upstream {field}: {e}")))?;
    String::from_utf8(bytes.to_vec())
        .map(Zeroizing::new)
        .map_err(|_| {
            IamError::Internal(format!("cluster {cluster_id} upstream {field}: not UTF-8"))
        })
}

/// Each cluster's upstream health as this instance's gateway last saw it.
#[derive(Debug, Default)]
pub(crate) struct Health(Mutex<HashMap<String, Option<String>>>);

impl Iam {
    /// The opened secrets of a cluster's upstream settings, for the gateway's
    /// connections to its brokers. Never shown, logged or returned by a front door.
    pub fn upstream_secrets(
        &self,
        cluster_id: &str,
        u: &UpstreamSecurity,
    ) -> Result<UpstreamSecrets> {
        Ok(UpstreamSecrets {
            password: u
                .password
                .as_ref()
                .map(|s| {
                    open(
                        &self.sealer,
                        (ResourceKind::Kafka, cluster_id),
                        "password",
                        s,
                    )
                })
                .transpose()?,
            client_key_pem: u
                .client_key
                .as_ref()
                .map(|s| {
                    open(
                        &self.sealer,
                        (ResourceKind::Kafka, cluster_id),
                        "client_key",
                        s,
                    )
                })
                .transpose()?,
        })
    }

    /// The opened secrets of an HTTP service's upstream credential, for the HTTP
    /// gateway's requests to it. Never shown, logged or returned by a front door.
    pub fn service_upstream_secrets(&self, r: &Resource) -> Result<UpstreamSecrets> {
        let at = (r.kind, r.storage_key());
        let at = (at.0, at.1.as_str());
        let u = &r.upstream_security;
        Ok(UpstreamSecrets {
            password: u
                .password
                .as_ref()
                .map(|s| open(&self.sealer, at, "password", s))
                .transpose()?,
            client_key_pem: u
                .client_key
                .as_ref()
                .map(|s| open(&self.sealer, at, "client_key", s))
                .transpose()?,
        })
    }

    /// The gateway reports whether a cluster's brokers are reachable with its settings
    /// (`None`: healthy; else why not).
    pub fn report_upstream(&self, cluster_id: &str, problem: Option<String>) {
        if let Ok(mut h) = self.health.0.lock() {
            h.insert(cluster_id.to_owned(), problem);
        }
    }

    /// The last report for a cluster: `None` before the gateway tried, `Some(None)`
    /// healthy, `Some(Some(reason))` unreachable.
    pub fn upstream_health(&self, cluster_id: &str) -> Option<Option<String>> {
        self.health.0.lock().ok()?.get(cluster_id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SecretHasher;

    #[test]
    fn secrets_are_sealed_and_settings_fit_the_protocol() {
        let sealer = Sealer::new(&SecretHasher::new(&[1; crate::PEPPER_LEN]));
        let input = UpstreamInput {
            protocol: Some("SASL_PLAINTEXT".into()),
            mechanism: Some("SCRAM-SHA-512".into()),
            username: Some("keygate".into()),
            password: Some("pa55word".into()),
            ..Default::default()
        };
        let u = merge(&sealer, "lkc-1", &UpstreamSecurity::default(), &input).expect("valid");
        let sealed = u.password.clone().expect("password");
        assert!(!sealed.0.contains("pa55word"));
        assert!(!format!("{input:?}{u:?}").contains("pa55word"));
        assert_eq!(
            open(&sealer, (ResourceKind::Kafka, "lkc-1"), "password", &sealed)
                .expect("opens")
                .as_str(),
            "pa55word"
        );
        // Rotation: only the password changes.
        let rotated = merge(
            &sealer,
            "lkc-1",
            &u,
            &UpstreamInput {
                password: Some("n3w".into()),
                ..Default::default()
            },
        )
        .expect("valid");
        assert_eq!(rotated.username.as_deref(), Some("keygate"));
        assert_ne!(rotated.password, u.password);
        // Back to PLAINTEXT drops the credential.
        let plain = merge(
            &sealer,
            "lkc-1",
            &u,
            &UpstreamInput {
                protocol: Some("PLAINTEXT".into()),
                ..Default::default()
            },
        )
        .expect("valid");
        assert_eq!(plain, UpstreamSecurity::default());
        // SASL without a password, an unknown mechanism, a CA that is not PEM: refused,
        // with the field named.
        for (bad, field) in [
            (
                UpstreamInput {
                    protocol: Some("SASL_SSL".into()),
                    mechanism: Some("PLAIN".into()),
                    username: Some("u".into()),
                    ..Default::default()
                },
                "/password",
            ),
            (
                UpstreamInput {
                    mechanism: Some("GSSAPI".into()),
                    ..Default::default()
                },
                "/sasl_mechanism",
            ),
            (
                UpstreamInput {
                    protocol: Some("SSL".into()),
                    ca_pem: Some("not pem".into()),
                    ..Default::default()
                },
                "/ca_pem",
            ),
        ] {
            match merge(&sealer, "lkc-1", &UpstreamSecurity::default(), &bad) {
                Err(IamError::Invalid { pointer, .. }) => {
                    assert!(pointer.ends_with(field), "{pointer}")
                }
                other => panic!("expected invalid {field}, got {other:?}"),
            }
        }
    }
}
