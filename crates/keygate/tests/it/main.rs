//! Integration tests: the real `keygate` binary, started on an ephemeral port with a
//! temporary data directory, driven over HTTP and through its own CLI.

#![allow(unreachable_pub)]

mod api;
mod audit;
mod authz;
mod cli;
mod clients;
mod console;
mod durability;
mod export;
mod gateway;
mod harness;
mod oauth;
mod rdkafka_client;

/// Percent-encode a query value.
pub fn cli_enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
