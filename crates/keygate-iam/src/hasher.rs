//! Keyed hashing of secrets.
//!
//! Secrets carry ≥ 256 bits of randomness, so a slow password hash buys nothing; an
//! HMAC-SHA-256 under a server-side "pepper" (kept outside the database) means a
//! stolen database alone cannot even confirm a guessed secret. The HMAC state keyed
//! with the pepper is computed once and cloned per verification: two SHA-256
//! compressions per check.

use hmac::{Hmac, Mac};
use keygate_core::Secret;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Length of the pepper in bytes.
pub const PEPPER_LEN: usize = 32;

/// Hashes and verifies secrets under the pepper.
#[derive(Clone)]
pub struct SecretHasher {
    keyed: Hmac<Sha256>,
}

impl std::fmt::Debug for SecretHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretHasher([redacted])")
    }
}

impl SecretHasher {
    /// A hasher keyed with `pepper`.
    pub fn new(pepper: &[u8; PEPPER_LEN]) -> Self {
        // HMAC accepts keys of any length; this cannot fail.
        let keyed =
            <Hmac<Sha256> as Mac>::new_from_slice(pepper).unwrap_or_else(|_| unreachable!());
        SecretHasher { keyed }
    }

    /// The stored form of a secret.
    pub fn hash(&self, secret: &str) -> [u8; 32] {
        let mut mac = self.keyed.clone();
        mac.update(secret.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// A 32-byte key derived from the pepper for `purpose` and `id` (STS signing
    /// keys, the key sealing upstream credentials): the pepper itself never leaves the
    /// hasher.
    pub fn derive(&self, purpose: &str, id: &str) -> [u8; 32] {
        let mut mac = self.keyed.clone();
        mac.update(b"keygate-derive\0");
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(id.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Whether `secret` hashes to `stored`, compared in constant time.
    pub fn verify(&self, secret: &Secret, stored: &[u8; 32]) -> bool {
        self.hash(secret.expose()).ct_eq(stored).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_only_the_right_secret_under_the_right_pepper() {
        let h = SecretHasher::new(&[7; 32]);
        let stored = h.hash("kgs_abc");
        assert!(h.verify(&Secret::from_client("kgs_abc"), &stored));
        assert!(!h.verify(&Secret::from_client("kgs_abd"), &stored));
        assert!(!SecretHasher::new(&[8; 32]).verify(&Secret::from_client("kgs_abc"), &stored));
        assert!(!format!("{h:?}").contains('7'));
    }
}
