//! How the gateway reaches a Kafka cluster's brokers: the transport (TLS or not) and
//! the gateway's own credential (SASL), per cluster.
//!
//! The broker then has to trust only keygate: with SASL required on the broker, a
//! client that goes around the gateway is refused by the broker itself. The password
//! and a client certificate's private key are secrets; here they exist only as
//! [`Sealed`] values (encrypted by the IAM service with a key derived from the pepper),
//! so a `Resource` can be stored, cached, logged with `Debug` or exported without
//! carrying them in the clear.

/// Kafka's `security.protocol` of the gateway's connections to the brokers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecurityProtocol {
    /// Neither TLS nor SASL (a broker only the gateway can reach).
    #[default]
    Plaintext,
    /// TLS, no SASL (with a client certificate, the broker authenticates keygate by it).
    Ssl,
    /// SASL without TLS.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// Kafka's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// From Kafka's spelling (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        [
            SecurityProtocol::Plaintext,
            SecurityProtocol::Ssl,
            SecurityProtocol::SaslPlaintext,
            SecurityProtocol::SaslSsl,
        ]
        .into_iter()
        .find(|p| p.as_str().eq_ignore_ascii_case(s))
    }

    /// Whether the connection is encrypted.
    pub fn tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether the gateway authenticates with SASL.
    pub fn sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// The SASL mechanism of the gateway's credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamMechanism {
    /// `PLAIN` (use it over TLS).
    Plain,
    /// `SCRAM-SHA-256` (RFC 5802/7677).
    ScramSha256,
    /// `SCRAM-SHA-512`.
    ScramSha512,
}

impl UpstreamMechanism {
    /// Kafka's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamMechanism::Plain => "PLAIN",
            UpstreamMechanism::ScramSha256 => "SCRAM-SHA-256",
            UpstreamMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }

    /// From Kafka's spelling (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        [
            UpstreamMechanism::Plain,
            UpstreamMechanism::ScramSha256,
            UpstreamMechanism::ScramSha512,
        ]
        .into_iter()
        .find(|m| m.as_str().eq_ignore_ascii_case(s))
    }
}

/// How the HTTP gateway authenticates to a service's upstream (Schema Registry,
/// ksqlDB, Flink, Tableflow). The secret (password, token, header value) is the
/// settings' sealed `password`; a client certificate (mTLS) is configured beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpAuth {
    /// `Authorization: Basic` with the settings' user name and password.
    Basic,
    /// `Authorization: Bearer` with the password as the token.
    Bearer,
    /// A header of this name (e.g. `X-API-Key`) carrying the password.
    Header(String),
}

impl HttpAuth {
    /// The API's spelling (`BASIC`, `BEARER`, `HEADER`).
    pub fn as_str(&self) -> &'static str {
        match self {
            HttpAuth::Basic => "BASIC",
            HttpAuth::Bearer => "BEARER",
            HttpAuth::Header(_) => "HEADER",
        }
    }
}

/// A secret encrypted at rest (an AEAD ciphertext, text-encoded, bound to the field
/// and cluster it belongs to). Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed(pub String);

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealed(…)")
    }
}

/// The gateway's connection settings for one Kafka cluster's brokers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpstreamSecurity {
    /// Transport and authentication.
    pub protocol: SecurityProtocol,
    /// The SASL mechanism (SASL protocols only).
    pub mechanism: Option<UpstreamMechanism>,
    /// The SASL user name (not a secret).
    pub username: Option<String>,
    /// The SASL password, sealed.
    pub password: Option<Sealed>,
    /// PEM CA bundle the brokers' certificates must chain to (TLS protocols); none:
    /// the system's roots.
    pub ca_pem: Option<String>,
    /// The name the brokers' certificates must be valid for; none: each broker's host.
    pub server_name: Option<String>,
    /// PEM client certificate chain presented to the brokers (mTLS).
    pub client_cert_pem: Option<String>,
    /// Its private key, sealed.
    pub client_key: Option<Sealed>,
    /// HTTP services: the gateway's own credential scheme (none: it sends none).
    pub http_auth: Option<HttpAuth>,
}

/// Why upstream settings are refused, and which field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct UpstreamError {
    /// The setting at fault, as the REST API names it (`protocol`, `password`, …).
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl UpstreamSecurity {
    /// Check the settings of an HTTP service's upstream: Basic needs a user name and a
    /// password, Bearer and a header need the secret (and a valid header name), TLS
    /// settings need an `https://` upstream, a client certificate needs its key.
    /// Kafka's protocol and SASL mechanism do not apply.
    pub fn validate_http(&self, https: bool) -> Result<(), UpstreamError> {
        let bad = |field, reason: &str| {
            Err(UpstreamError {
                field,
                reason: reason.to_owned(),
            })
        };
        if self.protocol != SecurityProtocol::Plaintext || self.mechanism.is_some() {
            return bad(
                "protocol",
                "HTTP services take http_auth (BASIC, BEARER, HEADER); the scheme of the upstream URL decides TLS",
            );
        }
        match &self.http_auth {
            None if self.password.is_some() || self.username.is_some() => {
                return bad(
                    "http_auth",
                    "a credential needs http_auth: BASIC, BEARER or HEADER",
                );
            }
            None => {}
            Some(auth) => {
                if self.password.is_none() {
                    return bad("password", "the secret the gateway sends is required");
                }
                match auth {
                    HttpAuth::Basic if self.username.as_deref().is_none_or(str::is_empty) => {
                        return bad("username", "required with BASIC");
                    }
                    HttpAuth::Header(name) if !is_header_name(name) => {
                        return bad("header_name", "must be an HTTP header name such as X-API-Key (not Authorization, Host or a hop-by-hop header)");
                    }
                    _ => {}
                }
            }
        }
        if self.server_name.is_some() {
            return bad(
                "server_name",
                "not used for HTTP services: the certificate must name the upstream URL's host",
            );
        }
        if !https && (self.ca_pem.is_some() || self.client_cert_pem.is_some()) {
            return bad(
                "ca_pem",
                "TLS settings (CA, client certificate) need an https:// upstream",
            );
        }
        if self.client_cert_pem.is_some() != self.client_key.is_some() {
            return bad(
                "client_key_pem",
                "a client certificate and its key go together",
            );
        }
        Ok(())
    }

    /// Check that the settings make sense together: a SASL protocol needs a mechanism,
    /// a user name and a password; TLS settings need a TLS protocol; a client
    /// certificate needs its key.
    pub fn validate(&self) -> Result<(), UpstreamError> {
        let bad = |field, reason: &str| {
            Err(UpstreamError {
                field,
                reason: reason.to_owned(),
            })
        };
        if self.protocol.sasl() {
            if self.mechanism.is_none() {
                return bad(
                    "sasl_mechanism",
                    "required with a SASL protocol (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)",
                );
            }
            if self.username.as_deref().is_none_or(str::is_empty) {
                return bad("username", "required with a SASL protocol");
            }
            if self.password.is_none() {
                return bad("password", "required with a SASL protocol");
            }
        } else if self.mechanism.is_some() || self.username.is_some() || self.password.is_some() {
            return bad(
                "sasl_mechanism",
                "SASL settings need upstream_security_protocol SASL_PLAINTEXT or SASL_SSL",
            );
        }
        if !self.protocol.tls()
            && (self.ca_pem.is_some()
                || self.server_name.is_some()
                || self.client_cert_pem.is_some())
        {
            return bad(
                "protocol",
                "TLS settings (CA, server name, client certificate) need SSL or SASL_SSL",
            );
        }
        if self.client_cert_pem.is_some() != self.client_key.is_some() {
            return bad(
                "client_key_pem",
                "a client certificate and its key go together",
            );
        }
        Ok(())
    }
}

/// A header name the gateway may set toward an upstream: a token of RFC 9110 letters,
/// digits and `-`, not one the proxy itself owns.
fn is_header_name(name: &str) -> bool {
    const OWNED: [&str; 9] = [
        "authorization",
        "host",
        "connection",
        "content-length",
        "transfer-encoding",
        "upgrade",
        "te",
        "trailer",
        "proxy-authorization",
    ];
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !OWNED.iter().any(|o| o.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] {
            assert_eq!(SecurityProtocol::parse(p).map(|p| p.as_str()), Some(p));
        }
        assert_eq!(
            SecurityProtocol::parse("sasl_ssl"),
            Some(SecurityProtocol::SaslSsl)
        );
        assert_eq!(SecurityProtocol::parse("TLS"), None);
        for m in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] {
            assert_eq!(UpstreamMechanism::parse(m).map(|m| m.as_str()), Some(m));
        }
        assert_eq!(UpstreamMechanism::parse("GSSAPI"), None);
    }

    #[test]
    fn settings_must_fit_together() {
        let sasl = UpstreamSecurity {
            protocol: SecurityProtocol::SaslSsl,
            mechanism: Some(UpstreamMechanism::ScramSha512),
            username: Some("keygate".into()),
            password: Some(Sealed("x".into())),
            ..Default::default()
        };
        assert_eq!(sasl.validate(), Ok(()));
        assert!(
            sasl.validate_http(true).is_err(),
            "SASL is not an HTTP scheme"
        );
        let header = UpstreamSecurity {
            http_auth: Some(HttpAuth::Header("X-API-Key".into())),
            password: Some(Sealed("x".into())),
            ..Default::default()
        };
        assert_eq!(header.validate_http(false), Ok(()));
        for (bad, field) in [
            (
                UpstreamSecurity {
                    http_auth: Some(HttpAuth::Header("Authorization".into())),
                    ..header.clone()
                },
                "header_name",
            ),
            (
                UpstreamSecurity {
                    http_auth: Some(HttpAuth::Basic),
                    ..header.clone()
                },
                "username",
            ),
            (
                UpstreamSecurity {
                    password: None,
                    ..header.clone()
                },
                "password",
            ),
            (
                UpstreamSecurity {
                    ca_pem: Some("pem".into()),
                    ..header.clone()
                },
                "ca_pem",
            ),
            (
                UpstreamSecurity {
                    server_name: Some("registry.internal".into()),
                    ..header.clone()
                },
                "server_name",
            ),
        ] {
            assert_eq!(bad.validate_http(false).map_err(|e| e.field), Err(field));
        }
        let no_password = UpstreamSecurity {
            password: None,
            ..sasl.clone()
        };
        assert_eq!(no_password.validate().map_err(|e| e.field), Err("password"));
        let plaintext_with_ca = UpstreamSecurity {
            protocol: SecurityProtocol::Plaintext,
            ca_pem: Some("pem".into()),
            ..Default::default()
        };
        assert!(plaintext_with_ca.validate().is_err());
        let cert_without_key = UpstreamSecurity {
            protocol: SecurityProtocol::Ssl,
            client_cert_pem: Some("pem".into()),
            ..Default::default()
        };
        assert!(cert_without_key.validate().is_err());
        assert!(format!("{sasl:?}").contains("Sealed(…)"));
    }
}
