//! The SCRAM messages an upstream broker sends the gateway when it logs in with a
//! cluster's credential (RFC 5802): any server-first and server-final message is
//! answered or refused with a typed error — never a panic, and a server-final message
//! the broker could not have computed never passes.
#![no_main]

use keygate_kafka::scram::{Hash, Scram};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (first, last) = text.split_once('\n').unwrap_or((text, ""));
    // Iterations are capped at 1,000,000 by the client; the fuzzer may pick them, so
    // a slow input is a legitimate (bounded) one.
    let mut s = Scram::new(Hash::Sha256, "gateway", "fyko+d2lbbFgONRv9qkxdawL");
    if s.client_final(first, "pencil").is_ok() {
        let _ = s.verify_server(last);
    } else {
        assert!(
            s.verify_server(last).is_err(),
            "a final message before a first one"
        );
    }
});
