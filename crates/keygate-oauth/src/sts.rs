//! keygate's own token-signing keys (the STS token exchange).
//!
//! Keys are Ed25519 (EdDSA): small, fast to sign and verify, no parameters to get
//! wrong. No private key is ever stored: each key's 32-byte seed is derived from the
//! server's pepper and the key's id (by the caller, with the same keyed hash that
//! protects API-key secrets), so every instance sharing the pepper — which they must
//! share anyway — signs with the same keys, and the database holds only key ids and
//! their lifecycle. Retiring a key removes it from the verification set: every token
//! it signed stops working at once.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use ed25519_dalek::SigningKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::jwks::PublicKey;

/// Longest lifetime of an STS token, in seconds (the hosted anchor's maximum).
pub const MAX_STS_LIFETIME_SECS: i64 = 900;

/// One signing key.
pub struct StsKey {
    kid: String,
    encoding: EncodingKey,
    public: PublicKey,
}

impl std::fmt::Debug for StsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StsKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl StsKey {
    /// The key with id `kid` whose seed is `seed`.
    pub fn derive(kid: &str, seed: [u8; 32]) -> Option<Self> {
        let sk = SigningKey::from_bytes(&seed);
        let der = sk.to_pkcs8_der().ok()?;
        let x = URL_SAFE_NO_PAD.encode(sk.verifying_key().as_bytes());
        Some(StsKey {
            kid: kid.to_owned(),
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            public: PublicKey::ed25519(kid, &x)?,
        })
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Its public half.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// Sign an access token for `pool_id`, standing for `subject` (the external
    /// identity), valid from `now` for `lifetime` seconds (capped at
    /// [`MAX_STS_LIFETIME_SECS`]).
    #[allow(clippy::too_many_arguments)]
    pub fn issue(
        &self,
        issuer: &str,
        pool_id: &str,
        subject: &str,
        org_id: &str,
        now: i64,
        lifetime: i64,
        jti: &str,
    ) -> Option<String> {
        let lifetime = lifetime.clamp(1, MAX_STS_LIFETIME_SECS);
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        let claims: Value = json!({
            "iss": issuer,
            "sub": subject,
            "aud": issuer,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "jti": jti,
            "pool": pool_id,
            "org": org_id,
        });
        jsonwebtoken::encode(&header, &claims, &self.encoding).ok()
    }
}
