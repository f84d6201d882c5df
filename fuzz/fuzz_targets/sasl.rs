//! SASL client messages as the gateway parses them: PLAIN tokens and OAUTHBEARER
//! initial responses (RFC 7628 GS2 header, key=value pairs, extensions).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(p) = keygate_kafka::sasl::parse_plain(data) {
        // What was parsed came from the token.
        assert!(p.username.len() + p.password.len() < data.len());
    }
    let _ = keygate_kafka::sasl::parse_oauthbearer(data);
});
