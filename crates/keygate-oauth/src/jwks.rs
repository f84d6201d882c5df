//! JSON Web Key Sets (RFC 7517) as published by an identity provider.
//!
//! Parsing is lenient per key and strict per document: a key keygate cannot use (an
//! encryption key, a symmetric key, an unknown type) is skipped rather than failing
//! the whole set — IdPs publish such keys beside their signing keys — but a document
//! that is not a key set, is too large or holds too many keys is refused.

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};

/// Largest JWKS document accepted.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Most keys accepted in one set.
pub const MAX_JWKS_KEYS: usize = 100;

/// Why a JWKS document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// Over [`MAX_JWKS_BYTES`].
    #[error("the JWKS document is larger than {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    /// Not JSON, or not `{"keys":[…]}`.
    #[error("the JWKS document is not a JSON key set: {0}")]
    Malformed(String),
    /// Over [`MAX_JWKS_KEYS`].
    #[error("the JWKS document holds more than {MAX_JWKS_KEYS} keys")]
    TooManyKeys,
}

/// One usable verification key.
#[derive(Clone)]
pub struct PublicKey {
    /// `kid`, if the IdP set one.
    pub kid: Option<String>,
    /// `alg`, if the IdP pinned one.
    pub alg: Option<Algorithm>,
    /// The key family's algorithms (what `kty`/`crv` allow).
    pub family: &'static [Algorithm],
    pub(crate) key: DecodingKey,
    /// The public members, as shown by the REST API (`keys[]`).
    pub public: Map<String, Value>,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// A parsed key set.
#[derive(Debug, Clone, Default)]
pub struct Jwks {
    /// The usable keys, in document order.
    pub keys: Vec<PublicKey>,
}

const RSA: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];
const P256: &[Algorithm] = &[Algorithm::ES256];
const P384: &[Algorithm] = &[Algorithm::ES384];
const ED25519: &[Algorithm] = &[Algorithm::EdDSA];

/// Members copied to the REST view; private members (`d`, `p`, `q`, …) never are.
const PUBLIC_MEMBERS: &[&str] = &["kty", "kid", "alg", "use", "n", "e", "crv", "x", "y"];

impl Jwks {
    /// Parse a JWKS document.
    pub fn parse(doc: &[u8]) -> Result<Self, JwksError> {
        if doc.len() > MAX_JWKS_BYTES {
            return Err(JwksError::TooLarge);
        }
        let v: Value =
            serde_json::from_slice(doc).map_err(|e| JwksError::Malformed(e.to_string()))?;
        let keys = v
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| JwksError::Malformed("no `keys` array".into()))?;
        if keys.len() > MAX_JWKS_KEYS {
            return Err(JwksError::TooManyKeys);
        }
        Ok(Jwks {
            keys: keys.iter().filter_map(PublicKey::from_jwk).collect(),
        })
    }

    /// The document form of the usable keys (public members only).
    pub fn to_document(&self) -> Value {
        Value::Object(Map::from_iter([(
            "keys".to_owned(),
            Value::Array(
                self.keys
                    .iter()
                    .map(|k| Value::Object(k.public.clone()))
                    .collect(),
            ),
        )]))
    }

    /// The key a token names: by `kid`, or — when the token has none — the only key
    /// of the algorithm's family.
    pub(crate) fn find(&self, kid: Option<&str>, alg: Algorithm) -> Option<&PublicKey> {
        match kid {
            Some(kid) => self.keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
            None => {
                let mut fit = self.keys.iter().filter(|k| k.family.contains(&alg));
                let first = fit.next()?;
                fit.next().is_none().then_some(first)
            }
        }
    }

    /// Whether a key with this id is present.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

impl PublicKey {
    fn from_jwk(v: &Value) -> Option<Self> {
        let obj = v.as_object()?;
        if obj
            .get("use")
            .and_then(Value::as_str)
            .is_some_and(|u| u != "sig")
        {
            return None;
        }
        let family = match (
            obj.get("kty").and_then(Value::as_str)?,
            obj.get("crv").and_then(Value::as_str),
        ) {
            ("RSA", _) => RSA,
            ("EC", Some("P-256")) => P256,
            ("EC", Some("P-384")) => P384,
            ("OKP", Some("Ed25519")) => ED25519,
            // Symmetric keys and anything else cannot verify an IdP's tokens.
            _ => return None,
        };
        let alg = match obj.get("alg").and_then(Value::as_str) {
            None => None,
            Some(a) => {
                let a: Algorithm = a.parse().ok()?;
                if !family.contains(&a) {
                    return None;
                }
                Some(a)
            }
        };
        // jsonwebtoken's Jwk refuses unknown algorithms; keep only what it needs.
        let mut core = obj.clone();
        core.remove("alg");
        core.remove("key_ops");
        let jwk: Jwk = serde_json::from_value(Value::Object(core)).ok()?;
        let key = DecodingKey::from_jwk(&jwk).ok()?;
        let public = obj
            .iter()
            .filter(|(k, _)| PUBLIC_MEMBERS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Some(PublicKey {
            kid: obj.get("kid").and_then(Value::as_str).map(str::to_owned),
            alg,
            family,
            key,
            public,
        })
    }

    /// A key from raw parts (keygate's own STS keys).
    pub(crate) fn ed25519(kid: &str, x: &str) -> Option<Self> {
        let key = DecodingKey::from_ed_components(x).ok()?;
        let public = Map::from_iter(
            [
                ("kty", "OKP"),
                ("crv", "Ed25519"),
                ("kid", kid),
                ("alg", "EdDSA"),
                ("use", "sig"),
                ("x", x),
            ]
            .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned()))),
        );
        Some(PublicKey {
            kid: Some(kid.to_owned()),
            alg: Some(Algorithm::EdDSA),
            family: ED25519,
            key,
            public,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusable_keys_are_skipped_and_private_members_never_shown() {
        let doc = br#"{"keys":[
            {"kty":"oct","k":"c2VjcmV0","kid":"hmac"},
            {"kty":"RSA","use":"enc","kid":"enc","n":"AQAB","e":"AQAB"},
            {"kty":"OKP","crv":"Ed25519","kid":"ed","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"secret"},
            {"kty":"EC","crv":"P-521","kid":"p521","x":"AA","y":"AA"},
            {"kty":"OKP","crv":"Ed25519","kid":"wrong-alg","alg":"RS256","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
        ]}"#;
        let set = Jwks::parse(doc).expect("parse");
        assert_eq!(set.keys.len(), 1);
        assert_eq!(set.keys[0].kid.as_deref(), Some("ed"));
        assert!(!set.keys[0].public.contains_key("d"));
        assert!(set.has_kid("ed") && !set.has_kid("hmac"));
    }

    #[test]
    fn documents_are_checked() {
        assert!(matches!(Jwks::parse(b"[]"), Err(JwksError::Malformed(_))));
        assert!(matches!(Jwks::parse(b"{"), Err(JwksError::Malformed(_))));
        let big = vec![b' '; MAX_JWKS_BYTES + 1];
        assert_eq!(Jwks::parse(&big).err(), Some(JwksError::TooLarge));
        let many = format!("{{\"keys\":[{}]}}", vec!["{}"; MAX_JWKS_KEYS + 1].join(","));
        assert_eq!(
            Jwks::parse(many.as_bytes()).err(),
            Some(JwksError::TooManyKeys)
        );
    }
}
