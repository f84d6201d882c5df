//! The client side of SCRAM-SHA-256/512 (RFC 5802, RFC 7677), for the gateway's own
//! login to the brokers. Pure: messages in, messages out, no I/O.
//!
//! Hand-written on the RustCrypto primitives (hmac, sha2, pbkdf2) because the SCRAM
//! crates on crates.io are unmaintained or tied to one I/O model; the exchange is three
//! messages, checked here against RFC 7677's test vector and against Tansu's server.
//! The server's signature is verified, so a broker that does not know the password
//! (an impostor) is refused even when it accepts the proof.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Iterations a server may ask for: below RFC 7677's 4096 is too weak to be trusted,
/// and far above any real setting would let a broker make us spin.
const ITERATIONS: std::ops::RangeInclusive<u32> = 4096..=1_000_000;

/// The hash of the mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    /// SCRAM-SHA-256.
    Sha256,
    /// SCRAM-SHA-512.
    Sha512,
}

/// A SCRAM exchange in progress: build it with the client nonce, send
/// [`Scram::client_first`], answer the server's first message with
/// [`Scram::client_final`], check its final message with [`Scram::verify_server`].
#[derive(Debug)]
pub struct Scram {
    hash: Hash,
    bare: String,
    nonce: String,
    server_signature: Option<Vec<u8>>,
}

/// A SCRAM failure (what the server sent was malformed or wrong).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScramError {
    /// The server's message does not parse.
    #[error("malformed SCRAM server message: {0}")]
    Malformed(&'static str),
    /// The server answered with `e=…`.
    #[error("the broker refused the SCRAM login: {0}")]
    Refused(String),
    /// The server's signature is not the one the password gives: not the real broker.
    #[error("the broker's SCRAM signature does not match (is it the real broker?)")]
    BadServerSignature,
}

/// RFC 5802 `saslname`: `,` and `=` escaped.
fn saslname(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

fn attr(msg: &str, key: char) -> Option<&str> {
    msg.split(',')
        .find_map(|p| p.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

impl Scram {
    /// Start a login as `user` with a random (printable, comma-free) `client_nonce`.
    pub fn new(hash: Hash, user: &str, client_nonce: &str) -> Scram {
        Scram {
            hash,
            bare: format!("n={},r={client_nonce}", saslname(user)),
            nonce: client_nonce.to_owned(),
            server_signature: None,
        }
    }

    /// The first message (no channel binding, no authorization identity).
    pub fn client_first(&self) -> String {
        format!("n,,{}", self.bare)
    }

    /// The final message, with the proof of `password` for the server's first message.
    pub fn client_final(
        &mut self,
        server_first: &str,
        password: &str,
    ) -> Result<String, ScramError> {
        if let Some(e) = attr(server_first, 'e') {
            return Err(ScramError::Refused(e.to_owned()));
        }
        let nonce = attr(server_first, 'r').ok_or(ScramError::Malformed("no nonce"))?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(ScramError::Malformed("the nonce does not extend ours"));
        }
        let salt = attr(server_first, 's')
            .and_then(|s| B64.decode(s).ok())
            .ok_or(ScramError::Malformed("no salt"))?;
        let iterations = attr(server_first, 'i')
            .and_then(|i| i.parse::<u32>().ok())
            .filter(|i| ITERATIONS.contains(i))
            .ok_or(ScramError::Malformed(
                "iterations missing or out of 4096..=1000000",
            ))?;
        let without_proof = format!("c=biws,r={nonce}");
        let auth = format!("{},{server_first},{without_proof}", self.bare);
        let (proof, server) = match self.hash {
            Hash::Sha256 => proofs_sha256(password, &salt, derivation_cost(iterations), &auth),
            Hash::Sha512 => proofs_sha512(password, &salt, derivation_cost(iterations), &auth),
        };
        self.server_signature = Some(server);
        Ok(format!("{without_proof},p={}", B64.encode(proof)))
    }

    /// Check the server's final message.
    pub fn verify_server(&self, server_final: &str) -> Result<(), ScramError> {
        if let Some(e) = attr(server_final, 'e') {
            return Err(ScramError::Refused(e.to_owned()));
        }
        let v = attr(server_final, 'v')
            .and_then(|v| B64.decode(v).ok())
            .ok_or(ScramError::Malformed("no server signature"))?;
        let want = self
            .server_signature
            .as_ref()
            .ok_or(ScramError::Malformed("final message before the first"))?;
        if bool::from(v.ct_eq(want)) {
            Ok(())
        } else {
            Err(ScramError::BadServerSignature)
        }
    }
}

/// The key derivation's iteration count: the server's, except under cargo-fuzz
/// (`cfg(fuzzing)`), where it is one — so the `scram` fuzz target spends its executions
/// on parsing and checking the messages (the same bounds are checked) rather than on
/// PBKDF2, which made a valid server-first message cost milliseconds.
fn derivation_cost(iterations: u32) -> u32 {
    if cfg!(fuzzing) {
        1
    } else {
        iterations
    }
}

/// The client proof and the expected server signature (RFC 5802 §3), for one hash.
macro_rules! proofs_with {
    ($name:ident, $hash:ty) => {
        fn $name(password: &str, salt: &[u8], iterations: u32, auth: &str) -> (Vec<u8>, Vec<u8>) {
            let mac = |key: &[u8], msg: &[u8]| -> Vec<u8> {
                let mut m = <Hmac<$hash> as Mac>::new_from_slice(key)
                    .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
                m.update(msg);
                m.finalize().into_bytes().to_vec()
            };
            let mut salted = vec![0u8; <$hash as Digest>::output_size()];
            pbkdf2::pbkdf2_hmac::<$hash>(password.as_bytes(), salt, iterations, &mut salted);
            let client_key = mac(&salted, b"Client Key");
            let stored_key = <$hash as Digest>::digest(&client_key);
            let signature = mac(&stored_key, auth.as_bytes());
            let proof = client_key
                .iter()
                .zip(&signature)
                .map(|(a, b)| a ^ b)
                .collect();
            let server_key = mac(&salted, b"Server Key");
            (proof, mac(&server_key, auth.as_bytes()))
        }
    };
}
proofs_with!(proofs_sha256, Sha256);
proofs_with!(proofs_sha512, Sha512);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7677_example() {
        let mut s = Scram::new(Hash::Sha256, "user", "rOprNGfwEbeRWgbNEkqO");
        assert_eq!(s.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        assert_eq!(
            s.client_final(first, "pencil").expect("final"),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert_eq!(
            s.verify_server("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
            Ok(())
        );
        assert_eq!(
            s.verify_server("v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
            Err(ScramError::BadServerSignature)
        );
    }

    #[test]
    fn bad_server_messages_are_refused() {
        let mut s = Scram::new(Hash::Sha512, "a,b=c", "abc");
        assert_eq!(s.client_first(), "n,,n=a=2Cb=3Dc,r=abc");
        for bad in [
            "r=xyz,s=AAAA,i=4096",           // not our nonce
            "r=abc,s=AAAA,i=4096",           // not extended
            "r=abcdef,i=4096",               // no salt
            "r=abcdef,s=AAAA,i=1",           // too few iterations
            "r=abcdef,s=AAAA,i=99999999999", // absurd
        ] {
            assert!(s.client_final(bad, "pw").is_err(), "{bad}");
        }
        assert_eq!(
            s.client_final("e=unknown-user", "pw"),
            Err(ScramError::Refused("unknown-user".into()))
        );
    }
}
