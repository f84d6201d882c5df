//! JWT validation (RFC 7519 / 7515), with time as a parameter.
//!
//! The order of checks matters: size and shape first (cheap, and a JWE or an
//! `alg: none` token must never reach a verifier), then the algorithm allow-list, then
//! the key, then the signature, and only then the claims. Every failure is a distinct
//! [`TokenError`] for the server's log; callers show clients one uniform message.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::Value;

use crate::jwks::Jwks;

/// Largest token accepted (bytes).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Signature algorithms keygate accepts. No `none`, no HMAC: a shared secret would
/// let anyone who can read the JWKS (or the IdP's public key) mint tokens.
pub const ALLOWED_ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Why a token was refused (for the log; never shown to clients).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Over [`MAX_TOKEN_BYTES`].
    #[error("token larger than {MAX_TOKEN_BYTES} bytes")]
    TooLarge,
    /// Five segments: an encrypted token.
    #[error("encrypted tokens (JWE) are not accepted")]
    Encrypted,
    /// Not three base64url segments of JSON.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// `alg: none`.
    #[error("unsigned tokens (alg none) are refused")]
    Unsigned,
    /// An HMAC algorithm.
    #[error("HMAC-signed tokens ({0}) are refused")]
    Hmac(String),
    /// Any other algorithm outside the allow-list.
    #[error("algorithm {0} is not accepted")]
    AlgorithmNotAllowed(String),
    /// No key with the token's `kid` (or no unique key without one).
    #[error("no key `{0}` in the issuer's JWKS")]
    UnknownKey(String),
    /// The key's type or pinned `alg` does not fit the token's algorithm.
    #[error("the key does not fit algorithm {0}")]
    KeyAlgorithmMismatch(String),
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// No numeric `exp`.
    #[error("no expiry (exp)")]
    MissingExpiry,
    /// `exp` passed (beyond the skew).
    #[error("expired")]
    Expired,
    /// `nbf` in the future (beyond the skew).
    #[error("not valid yet (nbf)")]
    NotYetValid,
    /// `iss` differs from the expected issuer.
    #[error("issuer does not match")]
    WrongIssuer,
}

/// The decoded header members keygate looks at.
#[derive(Debug, Clone)]
pub(crate) struct Peek {
    pub(crate) alg: Algorithm,
    pub(crate) kid: Option<String>,
    /// The unverified payload: used only to choose the issuer's keys.
    pub(crate) claims: Value,
}

fn segment_json(s: &str) -> Result<Value, TokenError> {
    let raw = URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|_| TokenError::Malformed("segment is not base64url"))?;
    serde_json::from_slice(&raw).map_err(|_| TokenError::Malformed("segment is not JSON"))
}

/// Shape, size and algorithm checks, and the unverified claims (to pick the issuer).
pub(crate) fn peek(token: &str) -> Result<Peek, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLarge);
    }
    let parts: Vec<&str> = token.split('.').collect();
    match parts.len() {
        3 => {}
        5 => return Err(TokenError::Encrypted),
        _ => return Err(TokenError::Malformed("not three segments")),
    }
    if parts[2].is_empty() {
        // Either `alg: none` or a stripped signature; say which when we can.
        if let Ok(h) = segment_json(parts[0]) {
            if h.get("alg").and_then(Value::as_str) == Some("none") {
                return Err(TokenError::Unsigned);
            }
        }
        return Err(TokenError::Malformed("empty signature"));
    }
    let header = segment_json(parts[0])?;
    if !header.is_object() {
        return Err(TokenError::Malformed("header is not an object"));
    }
    if header.get("enc").is_some() {
        return Err(TokenError::Encrypted);
    }
    let alg_name = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(TokenError::Malformed("no alg"))?;
    if alg_name.eq_ignore_ascii_case("none") {
        return Err(TokenError::Unsigned);
    }
    if alg_name.starts_with("HS") {
        return Err(TokenError::Hmac(alg_name.chars().take(16).collect()));
    }
    let alg = alg_name
        .parse::<Algorithm>()
        .ok()
        .filter(|a| ALLOWED_ALGORITHMS.contains(a))
        .ok_or_else(|| TokenError::AlgorithmNotAllowed(alg_name.chars().take(16).collect()))?;
    if header.get("crit").is_some() {
        // RFC 7515 §4.1.11: extensions keygate does not understand must be refused.
        return Err(TokenError::Malformed("critical header extensions"));
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(TokenError::Malformed("kid is not a string")),
    };
    let claims = segment_json(parts[1])?;
    if !claims.is_object() {
        return Err(TokenError::Malformed("payload is not an object"));
    }
    Ok(Peek { alg, kid, claims })
}

/// Verify `token`'s signature against `jwks` and its claims against `issuer` at
/// `now` (seconds since the epoch), allowing `skew_secs` either way. Returns the
/// claims.
pub fn verify(
    token: &str,
    jwks: &Jwks,
    issuer: &str,
    now: i64,
    skew_secs: i64,
) -> Result<Value, TokenError> {
    let p = peek(token)?;
    verify_peeked(token, &p, jwks, issuer, now, skew_secs)
}

pub(crate) fn verify_peeked(
    token: &str,
    p: &Peek,
    jwks: &Jwks,
    issuer: &str,
    now: i64,
    skew_secs: i64,
) -> Result<Value, TokenError> {
    let key = jwks
        .find(p.kid.as_deref(), p.alg)
        .ok_or_else(|| TokenError::UnknownKey(p.kid.clone().unwrap_or_default()))?;
    if !key.family.contains(&p.alg) || key.alg.is_some_and(|a| a != p.alg) {
        return Err(TokenError::KeyAlgorithmMismatch(format!("{:?}", p.alg)));
    }
    let mut v = Validation::new(p.alg);
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<Value>(token, &key.key, &v).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind as K;
        match e.kind() {
            K::InvalidSignature => TokenError::BadSignature,
            K::InvalidAlgorithm
            | K::InvalidKeyFormat
            | K::InvalidEcdsaKey
            | K::InvalidRsaKey(_) => TokenError::KeyAlgorithmMismatch(format!("{:?}", p.alg)),
            _ => TokenError::Malformed("could not verify"),
        }
    })?;
    let claims = data.claims;
    if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
        return Err(TokenError::WrongIssuer);
    }
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or(TokenError::MissingExpiry)?;
    if now > exp.saturating_add(skew_secs) {
        return Err(TokenError::Expired);
    }
    if let Some(nbf) = claims.get("nbf") {
        let nbf = nbf
            .as_i64()
            .ok_or(TokenError::Malformed("nbf is not a number"))?;
        if now.saturating_add(skew_secs) < nbf {
            return Err(TokenError::NotYetValid);
        }
    }
    Ok(claims)
}

/// The value at an identity-claim path such as `claims.sub` or
/// `claims.ext.client_id`, as a string (numbers are printed; anything else is none).
pub fn claim_at<'c>(claims: &'c Value, path: &str) -> Option<std::borrow::Cow<'c, str>> {
    let mut cur = claims;
    for seg in path.strip_prefix("claims.")?.split('.') {
        cur = cur.get(seg)?;
    }
    match cur {
        Value::String(s) if !s.is_empty() => Some(std::borrow::Cow::Borrowed(s)),
        Value::Number(n) => Some(std::borrow::Cow::Owned(n.to_string())),
        _ => None,
    }
}
