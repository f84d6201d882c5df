//! Audit records and the pipeline that carries them to their sinks.
//!
//! - [`event`]: the record, a CloudEvents 1.0 envelope with the hosted anchor's audit
//!   data shape, and its builders.
//! - [`usage`]: allowed Produce/Fetch are counted per connection and summarised per
//!   principal and topic instead of logged one by one.
//! - [`repeats`]: denials and failures recorded in full once per window and counted
//!   after that; a cap on what one credential writes per window.
//! - [`pipeline`]: the emitters' non-blocking [`Auditor`] handle, the writer into the
//!   audit table (which is also the durable outbox), and the shippers that deliver
//!   from it to the [`file`] and [`kafka`] sinks at least once, in order.
//!
//! The record types and aggregation are pure; the sinks do I/O. The store implements
//! the audit table (only keygate-store speaks SQL); the binary wires the pieces.
#![deny(missing_docs)]

pub mod event;
pub mod file;
pub mod kafka;
pub mod pipeline;
pub mod repeats;
pub mod usage;

pub use event::{
    status, types, AclAuthorization, AuditData, AuditRow, AuthorizationInfo, CloudEvent,
    RbacAuthorization, Summary,
};
pub use pipeline::{channel, AuditLog, Auditor, Sink, SinkError};
pub use repeats::RepeatLimits;
