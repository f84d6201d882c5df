//! Integration tests: the real `keygate` binary, started on an ephemeral port with a
//! temporary data directory, driven over HTTP and through its own CLI.

#![allow(unreachable_pub)]

mod api;
mod attacks;
mod audit;
mod authz;
mod cli;
mod clients;
mod console;
mod contract;
mod crash;
mod durability;
mod export;
mod gateway;
mod harness;
mod metrics;
mod mtls;
mod oauth;
mod quotas;
mod rdkafka_client;
mod scaleout;
mod services;
mod tls;
mod upstream;

/// Percent-encode a query value (RFC 3986 unreserved characters stay).
pub fn cli_enc(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}
