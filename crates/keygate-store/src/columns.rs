//! The stored forms of a resource's upstream settings (a Kafka cluster's brokers, an
//! HTTP service's credential) and of a certificate
//! authority (JSON columns). The upstream settings: a JSON object in
//! `resources.upstream_security`, NULL for the default (plaintext, no SASL). Secrets in
//! it are already sealed (`Sealed`) by the IAM service; this module only copies them.
//! `keygate export` writes the same form (sealed values open only with the pepper the
//! import checks).

use keygate_core::upstream::Sealed;
use keygate_core::{HttpAuth, SecurityProtocol, UpstreamMechanism, UpstreamSecurity};
use serde_json::{json, Map, Value};

/// The column's value.
pub fn encode(u: &UpstreamSecurity) -> Option<String> {
    if *u == UpstreamSecurity::default() {
        return None;
    }
    let mut m = Map::new();
    m.insert("protocol".into(), json!(u.protocol.as_str()));
    let mut put = |k: &str, v: Option<&str>| {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    };
    put("mechanism", u.mechanism.map(UpstreamMechanism::as_str));
    put("username", u.username.as_deref());
    put("password_sealed", u.password.as_ref().map(|s| s.0.as_str()));
    put("ca_pem", u.ca_pem.as_deref());
    put("server_name", u.server_name.as_deref());
    put("client_cert_pem", u.client_cert_pem.as_deref());
    put(
        "client_key_sealed",
        u.client_key.as_ref().map(|s| s.0.as_str()),
    );
    put("http_auth", u.http_auth.as_ref().map(HttpAuth::as_str));
    if let Some(HttpAuth::Header(name)) = &u.http_auth {
        put("header_name", Some(name));
    }
    Some(Value::Object(m).to_string())
}

/// The settings from the column's value.
pub fn decode(column: Option<String>) -> Result<UpstreamSecurity, String> {
    let Some(text) = column else {
        return Ok(UpstreamSecurity::default());
    };
    let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let protocol = s("protocol").unwrap_or_default();
    Ok(UpstreamSecurity {
        protocol: SecurityProtocol::parse(&protocol)
            .ok_or_else(|| format!("unknown protocol {protocol:?}"))?,
        mechanism: match s("mechanism") {
            Some(m) => Some(
                UpstreamMechanism::parse(&m).ok_or_else(|| format!("unknown mechanism {m:?}"))?,
            ),
            None => None,
        },
        username: s("username"),
        password: s("password_sealed").map(Sealed),
        ca_pem: s("ca_pem"),
        server_name: s("server_name"),
        client_cert_pem: s("client_cert_pem"),
        client_key: s("client_key_sealed").map(Sealed),
        http_auth: match s("http_auth").as_deref() {
            None => None,
            Some("BASIC") => Some(HttpAuth::Basic),
            Some("BEARER") => Some(HttpAuth::Bearer),
            Some("HEADER") => Some(HttpAuth::Header(
                s("header_name").ok_or("HEADER without header_name")?,
            )),
            Some(other) => return Err(format!("unknown http_auth {other:?}")),
        },
    })
}

/// The stored form of a ksqlDB cluster's links (`resources.ksql`).
pub fn encode_ksql(k: &keygate_core::model::KsqlLinks) -> String {
    json!({
        "kafka_cluster": k.kafka_cluster,
        "credential_identity": k.credential_identity,
        "csu": k.csu,
    })
    .to_string()
}

/// A ksqlDB cluster's links from the column's value (NULL: none).
pub fn decode_ksql(
    column: Option<String>,
) -> Result<Option<keygate_core::model::KsqlLinks>, String> {
    let Some(text) = column else {
        return Ok(None);
    };
    let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let s = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("{k} is missing"))
    };
    Ok(Some(keygate_core::model::KsqlLinks {
        kafka_cluster: s("kafka_cluster")?,
        credential_identity: s("credential_identity")?,
        csu: v
            .get("csu")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or("csu is missing")?,
    }))
}

/// The stored form of a certificate authority (`identity_providers.certificate`).
pub fn encode_authority(a: &keygate_core::model::CertificateAuthority) -> String {
    json!({
        "chain_pem": a.chain_pem,
        "chain_filename": a.chain_filename,
        "crl_pem": a.crl_pem,
        "crl_url": a.crl_url,
        "crl_updated_at": a.crl_updated_at.map(|t| t.timestamp_millis()),
    })
    .to_string()
}

/// A certificate authority from its stored form (`None`: an OAuth provider).
pub fn decode_authority(
    column: Option<String>,
) -> Result<Option<keygate_core::model::CertificateAuthority>, String> {
    let Some(text) = column else {
        return Ok(None);
    };
    let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    Ok(Some(keygate_core::model::CertificateAuthority {
        chain_pem: s("chain_pem").ok_or("no chain_pem")?,
        chain_filename: s("chain_filename").unwrap_or_default(),
        crl_pem: s("crl_pem"),
        crl_url: s("crl_url"),
        crl_updated_at: v
            .get("crl_updated_at")
            .and_then(Value::as_i64)
            .and_then(chrono::DateTime::from_timestamp_millis),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_default_is_null() {
        assert_eq!(encode(&UpstreamSecurity::default()), None);
        assert_eq!(decode(None), Ok(UpstreamSecurity::default()));
        let u = UpstreamSecurity {
            protocol: SecurityProtocol::SaslSsl,
            mechanism: Some(UpstreamMechanism::ScramSha512),
            username: Some("keygate".into()),
            password: Some(Sealed("v1.abc".into())),
            ca_pem: Some("-----BEGIN CERTIFICATE-----".into()),
            server_name: Some("broker.internal".into()),
            client_cert_pem: None,
            client_key: None,
            http_auth: None,
        };
        assert_eq!(decode(encode(&u)), Ok(u));
        let http = UpstreamSecurity {
            http_auth: Some(HttpAuth::Header("X-API-Key".into())),
            password: Some(Sealed("v1.def".into())),
            ..Default::default()
        };
        assert_eq!(decode(encode(&http)), Ok(http));
        assert!(decode(Some(
            r#"{"protocol":"PLAINTEXT","http_auth":"HEADER"}"#.into()
        ))
        .is_err());
        assert!(decode(Some(r#"{"protocol":"TLS"}"#.into())).is_err());
    }
}
