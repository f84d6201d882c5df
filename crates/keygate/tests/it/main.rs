//! Integration tests: the real `keygate` binary, started on an ephemeral port with a
//! temporary data directory, driven over HTTP and through its own CLI.

#![allow(unreachable_pub)]

mod api;
mod authz;
mod cli;
mod clients;
mod durability;
mod gateway;
mod harness;
mod oauth;
mod rdkafka_client;
