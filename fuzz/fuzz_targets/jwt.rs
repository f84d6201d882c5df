//! Bearer tokens as the gateway and the STS receive them: any string is verified or
//! refused with a typed error against a real Ed25519 key set — never a panic. The
//! corpus holds tokens this key signed, so mutations reach signature checks and claim
//! validation, not only the base64 and JSON of the header. A token that verifies must
//! carry this issuer and an expiry not yet passed.
#![no_main]

use keygate_oauth::{verify, Jwks, StsKey};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const ISSUER: &str = "https://idp.example";
const NOW: i64 = 1_800_000_000;

/// RFC 8032's first Ed25519 test vector, as a JWKS document and a signing key.
fn keys() -> &'static Jwks {
    static KEYS: OnceLock<Jwks> = OnceLock::new();
    KEYS.get_or_init(|| {
        let doc = br#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","alg":"EdDSA","use":"sig","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
        Jwks::parse(doc).expect("the test key set")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(claims) = verify(token, keys(), ISSUER, NOW, 60) {
        assert_eq!(claims["iss"], ISSUER);
        assert!(claims["exp"].as_i64().is_some_and(|e| e + 60 >= NOW));
    }
    // The signing side stays consistent with the verifying side.
    if data.len() == 1 {
        let seed: [u8; 32] =
            hex32("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        let key = StsKey::derive("k1", seed).expect("key");
        let t = key
            .issue(
                ISSUER,
                "pool-1",
                "sub",
                "org",
                NOW,
                i64::from(data[0]) + 1,
                "j",
            )
            .expect("token");
        assert!(verify(&t, keys(), ISSUER, NOW, 0).is_ok());
    }
});

fn hex32(s: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex");
    }
    out
}
