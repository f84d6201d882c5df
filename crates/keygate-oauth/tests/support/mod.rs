//! Test keys of every accepted family and a token forge (shared by the token tests
//! and the benchmark).
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::SeedableRng;
use serde_json::{json, Value};

pub struct TestKey {
    pub kid: String,
    pub alg: Algorithm,
    pub encoding: EncodingKey,
    /// The public JWK.
    pub jwk: Value,
    /// PEM of the public key (for the HMAC-with-public-key attack).
    pub public_pem: String,
}

pub fn rsa(kid: &str, alg: Algorithm, seed: u64) -> TestKey {
    use rsa::pkcs1::EncodeRsaPrivateKey as _;
    use rsa::pkcs8::{EncodePublicKey as _, LineEnding};
    use rsa::traits::PublicKeyParts as _;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let sk = rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap();
    let pk = sk.to_public_key();
    TestKey {
        kid: kid.into(),
        alg,
        encoding: EncodingKey::from_rsa_der(sk.to_pkcs1_der().unwrap().as_bytes()),
        jwk: json!({"kty":"RSA","kid":kid,"use":"sig","n":URL_SAFE_NO_PAD.encode(pk.n().to_bytes_be()),"e":URL_SAFE_NO_PAD.encode(pk.e().to_bytes_be())}),
        public_pem: pk.to_public_key_pem(LineEnding::LF).unwrap(),
    }
}

pub fn es256(kid: &str, seed: u64) -> TestKey {
    use p256::elliptic_curve::sec1::ToEncodedPoint as _;
    use p256::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let sk = p256::SecretKey::random(&mut rng);
    let pt = sk.public_key().to_encoded_point(false);
    TestKey {
        kid: kid.into(),
        alg: Algorithm::ES256,
        encoding: EncodingKey::from_ec_der(sk.to_pkcs8_der().unwrap().as_bytes()),
        jwk: json!({"kty":"EC","crv":"P-256","kid":kid,"x":URL_SAFE_NO_PAD.encode(pt.x().unwrap()),"y":URL_SAFE_NO_PAD.encode(pt.y().unwrap())}),
        public_pem: sk.public_key().to_public_key_pem(LineEnding::LF).unwrap(),
    }
}

pub fn es384(kid: &str, seed: u64) -> TestKey {
    use p384::elliptic_curve::sec1::ToEncodedPoint as _;
    use p384::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let sk = p384::SecretKey::random(&mut rng);
    let pt = sk.public_key().to_encoded_point(false);
    TestKey {
        kid: kid.into(),
        alg: Algorithm::ES384,
        encoding: EncodingKey::from_ec_der(sk.to_pkcs8_der().unwrap().as_bytes()),
        jwk: json!({"kty":"EC","crv":"P-384","kid":kid,"x":URL_SAFE_NO_PAD.encode(pt.x().unwrap()),"y":URL_SAFE_NO_PAD.encode(pt.y().unwrap())}),
        public_pem: sk.public_key().to_public_key_pem(LineEnding::LF).unwrap(),
    }
}

pub fn ed25519(kid: &str, seed: u8) -> TestKey {
    use ed25519_dalek::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _};
    let sk = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
    TestKey {
        kid: kid.into(),
        alg: Algorithm::EdDSA,
        encoding: EncodingKey::from_ed_der(sk.to_pkcs8_der().unwrap().as_bytes()),
        jwk: json!({"kty":"OKP","crv":"Ed25519","kid":kid,"x":URL_SAFE_NO_PAD.encode(sk.verifying_key().as_bytes())}),
        public_pem: sk
            .verifying_key()
            .to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .unwrap(),
    }
}

pub fn jwks(keys: &[&TestKey]) -> Vec<u8> {
    serde_json::to_vec(&json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()}))
        .unwrap()
}

pub fn sign(key: &TestKey, claims: &Value) -> String {
    let mut h = Header::new(key.alg);
    h.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&h, claims, &key.encoding).unwrap()
}

pub fn sign_as(key: &TestKey, alg: Algorithm, claims: &Value) -> String {
    let mut h = Header::new(alg);
    h.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&h, claims, &key.encoding).unwrap()
}

pub fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}
