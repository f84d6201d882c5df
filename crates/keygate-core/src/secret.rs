//! API key ids and secrets.
//!
//! A secret is `kgs_` + 43 base62 characters of randomness (≥ 256 bits) + 6 base62
//! characters of CRC32 over everything before them. The checksum lets a secret scanner
//! recognise a leaked keygate secret offline without false positives, and lets the
//! server reject a mistyped secret without touching key state. The secret itself is
//! never stored: see `keygate-iam`'s hasher.

use rand::RngCore;
use std::fmt;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const KEY_ALPHABET: &[u8; 36] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
/// Prefix of every secret.
pub const SECRET_PREFIX: &str = "kgs_";
const RANDOM_LEN: usize = 43;
const CHECK_LEN: usize = 6;
/// Total length of a secret.
pub const SECRET_LEN: usize = SECRET_PREFIX.len() + RANDOM_LEN + CHECK_LEN;
/// Length of an API key id.
pub const KEY_ID_LEN: usize = 16;

/// An API key id: 16 upper-case alphanumerics, e.g. `4U5U9B0BIMPSXIXX`. Not secret.
///
/// Stored inline (no heap string): key ids are looked up on every authentication, and
/// an inline key keeps that lookup to one cache miss fewer.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyId([u8; KEY_ID_LEN]);

impl KeyId {
    /// A fresh random key id.
    pub fn generate(rng: &mut impl RngCore) -> Self {
        let mut b = [0u8; KEY_ID_LEN];
        for slot in &mut b {
            *slot = KEY_ALPHABET[(rng.next_u32() % 36) as usize];
        }
        KeyId(b)
    }

    /// Parse a key id; `None` if it is not 16 upper-case alphanumerics.
    pub fn parse(s: &str) -> Option<Self> {
        let b: [u8; KEY_ID_LEN] = s.as_bytes().try_into().ok()?;
        b.iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            .then_some(KeyId(b))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored (see `generate` and `parse`).
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::hash::Hash for KeyId {
    // Hash like `str`, so maps keyed by `KeyId` can be queried with `&str`.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::borrow::Borrow<str> for KeyId {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.as_str())
    }
}

/// A secret in the clear. Its `Debug` and `Display` never show it: the only way to read
/// it is [`Secret::expose`], which makes every place that handles the clear text easy
/// to find.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A fresh random secret (OS-quality randomness comes from the caller's RNG).
    pub fn generate(rng: &mut impl RngCore) -> Self {
        let mut s = String::with_capacity(SECRET_LEN);
        s.push_str(SECRET_PREFIX);
        // Rejection sampling keeps every character uniform over base62.
        while s.len() < SECRET_PREFIX.len() + RANDOM_LEN {
            let b = (rng.next_u32() & 0xff) as u8;
            if b < 248 {
                s.push(BASE62[(b % 62) as usize] as char);
            }
        }
        s.push_str(&checksum(s.as_bytes()));
        Secret(s)
    }

    /// Wrap text received from a client. No format check: see [`Secret::is_well_formed`].
    pub fn from_client(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The clear text. Callers must not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether this has the `kgs_` shape and a valid checksum.
    pub fn is_well_formed(&self) -> bool {
        is_well_formed(&self.0)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Whether `s` is a well-formed keygate secret (prefix, alphabet, length, checksum).
pub fn is_well_formed(s: &str) -> bool {
    if s.len() != SECRET_LEN || !s.starts_with(SECRET_PREFIX) {
        return false;
    }
    let body = &s.as_bytes()[SECRET_PREFIX.len()..];
    if !body.iter().all(u8::is_ascii_alphanumeric) {
        return false;
    }
    let (rest, check) = s.split_at(SECRET_LEN - CHECK_LEN);
    checksum(rest.as_bytes()) == check
}

fn checksum(bytes: &[u8]) -> String {
    let mut n = crc32fast::hash(bytes) as u64;
    let mut out = [b'0'; CHECK_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    // 62^6 > 2^32, so the whole CRC fits.
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_secrets_are_well_formed_and_redacted() {
        let mut rng = rand::thread_rng();
        let s = Secret::generate(&mut rng);
        assert_eq!(s.expose().len(), SECRET_LEN);
        assert!(s.is_well_formed());
        assert!(!format!("{s:?}").contains(&s.expose()[4..]));
        let k = KeyId::generate(&mut rng);
        assert!(KeyId::parse(k.as_str()).is_some());
        assert!(KeyId::parse("4u5U9B0BIMPSXIXX").is_none());
    }

    proptest! {
        #[test]
        fn any_single_character_change_breaks_the_checksum(pos in 4usize..SECRET_LEN, c in 0usize..62) {
            let mut rng = rand::thread_rng();
            let s = Secret::generate(&mut rng);
            let mut bytes = s.expose().as_bytes().to_vec();
            prop_assume!(bytes[pos] != BASE62[c]);
            bytes[pos] = BASE62[c];
            let changed = String::from_utf8(bytes).unwrap_or_default();
            prop_assert!(!is_well_formed(&changed));
        }
    }
}
