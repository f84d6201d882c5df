//! Identity-pool filters: any source text compiles or is refused with an error, and a
//! compiled filter evaluates against any claims (JSON) to a yes or no — never a panic,
//! never an endless evaluation. The input is `source \0 claims-json`.
#![no_main]

use keygate_oauth::Filter;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (source, claims) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"{}"[..]),
    };
    let Ok(source) = std::str::from_utf8(source) else {
        return;
    };
    let Ok(filter) = Filter::compile(source) else {
        return;
    };
    let claims: serde_json::Value =
        serde_json::from_slice(claims).unwrap_or_else(|_| serde_json::json!({"sub": "x"}));
    let _ = filter.matches(&claims);
    if let serde_json::Value::Object(fields) = &claims {
        let _ = filter.matches_fields(fields);
    }
});
