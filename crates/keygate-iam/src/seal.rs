//! Secrets keygate must be able to read back — the gateway's own credential for a
//! cluster's brokers — encrypted at rest.
//!
//! XChaCha20-Poly1305 (RustCrypto) with a key derived from the pepper, a random 192-bit
//! nonce per sealing, and the field's context (cluster id and field name) as associated
//! data: a sealed value copied to another cluster's row, or to another field, does not
//! open. The stored text is `v1.` + base64(nonce ‖ ciphertext). The database alone
//! (a backup, a replica) never holds the secret in the clear; the pepper file is needed too.

use crate::hasher::SecretHasher;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::XChaCha20Poly1305;
use keygate_core::upstream::Sealed;
use zeroize::Zeroizing;

const VERSION: &str = "v1.";
const NONCE: usize = 24;

/// Seals and opens secrets with the installation's key.
#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer([redacted])")
    }
}

/// Why a sealed value did not open.
#[derive(Debug, thiserror::Error)]
#[error("a sealed secret does not open (another pepper, or the value was altered or moved)")]
pub struct SealError;

impl Sealer {
    /// The sealer of the installation whose pepper keys `hasher`.
    pub fn new(hasher: &SecretHasher) -> Self {
        let key = Zeroizing::new(hasher.derive("sealed-secrets-v1", ""));
        Sealer {
            cipher: XChaCha20Poly1305::new(key.as_ref().into()),
        }
    }

    /// Encrypt `secret`, bound to `context`.
    pub fn seal(&self, context: &str, secret: &[u8]) -> Sealed {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let payload = Payload {
            msg: secret,
            aad: context.as_bytes(),
        };
        // Encryption fails only for messages beyond 256 GiB.
        let ct = self.cipher.encrypt(&nonce, payload).unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Sealed(format!(
            "{VERSION}{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(out)
        ))
    }

    /// Decrypt a value sealed for `context`.
    pub fn open(&self, context: &str, sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let raw = sealed
            .0
            .strip_prefix(VERSION)
            .and_then(|b| {
                base64::engine::general_purpose::STANDARD_NO_PAD
                    .decode(b)
                    .ok()
            })
            .filter(|r| r.len() > NONCE)
            .ok_or(SealError)?;
        let (nonce, ct) = raw.split_at(NONCE);
        self.cipher
            .decrypt(
                nonce.into(),
                Payload {
                    msg: ct,
                    aad: context.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| SealError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_opens_only_with_its_pepper_and_context() {
        let a = Sealer::new(&SecretHasher::new(&[7; crate::PEPPER_LEN]));
        let b = Sealer::new(&SecretHasher::new(&[8; crate::PEPPER_LEN]));
        let s = a.seal("lkc-1/password", b"hunter2");
        assert!(!s.0.contains("hunter2"));
        assert_eq!(
            a.open("lkc-1/password", &s).expect("opens").as_slice(),
            b"hunter2"
        );
        assert!(
            a.open("lkc-2/password", &s).is_err(),
            "moved to another cluster"
        );
        assert!(b.open("lkc-1/password", &s).is_err(), "another pepper");
        let mut tampered = s.0.clone();
        tampered.push('A');
        assert!(a.open("lkc-1/password", &Sealed(tampered)).is_err());
        // Two sealings of one secret differ (fresh nonce).
        assert_ne!(a.seal("c", b"x"), a.seal("c", b"x"));
    }
}
