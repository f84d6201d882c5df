//! JWKS documents as fetched from an identity provider: parsed or refused with a typed
//! error — never a panic; a parsed set prints as a document that parses back to the
//! same key ids.
#![no_main]

use keygate_oauth::Jwks;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(jwks) = Jwks::parse(data) else {
        return;
    };
    let doc = serde_json::to_vec(&jwks.to_document()).expect("a document");
    let again = Jwks::parse(&doc).expect("a printed key set parses back");
    for key in jwks.to_document()["keys"].as_array().into_iter().flatten() {
        if let Some(kid) = key["kid"].as_str() {
            assert!(again.has_kid(kid), "{kid} lost in the round trip");
        }
    }
});
