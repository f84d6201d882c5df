//! The Kafka gateway: a proxy in front of unmodified brokers for unmodified clients,
//! which authenticates every connection with an API key (SASL/PLAIN) and authorizes
//! every request with keygate's one authorizer before forwarding it.
//!
//! Layout, from the wire inwards (as in mini-redis): `transport` opens what a
//! connection runs on (plaintext or TLS, told apart by the first byte); [`frame`] reads and writes
//! length-prefixed frames with a size limit; [`sasl`] parses SASL tokens; [`classify`]
//! is pure — it turns a decoded request into the checks it needs and builds the
//! well-formed error response of the request's version when they fail; `handshake`
//! authenticates a new connection (SASL, bounded in time and size, throttled per
//! source); [`conn`] runs the authenticated connection (request → decision → upstream
//! or local answer, responses in order, broker addresses rewritten); [`gateway`] owns the
//! listeners of every registered cluster and opens new ones as clusters appear;
//! `sni` serves every cluster and broker on one TLS port, routed by the SNI name;
//! `upstream` opens the gateway's own connections to the brokers (TLS, and SASL with
//! the gateway's credential, `scram` for SCRAM-SHA-256/512); `quota` meters client
//! quotas and throttles as a broker does.
#![deny(missing_docs)]

pub mod acls;
mod audit;
pub mod classify;
pub mod conn;
pub mod frame;
pub mod gateway;
mod handshake;
mod quota;
pub mod sasl;
pub mod scram;
mod sni;
mod transport;
mod upstream;

pub use gateway::{Drain, Gateway, GatewayConfig, LiveLimits, SniConfig};
pub use transport::GatewayTls;
