//! The vocabulary of keygate: ids, secrets, CRNs, principals, Kafka ACL terms, roles
//! and the entity model.
//!
//! This crate is deliberately pure: no I/O, no clock, no global randomness (callers
//! pass an RNG), no serialization. Everything that talks SQL, HTTP or Kafka builds on
//! these types, so a rule written here (what a valid CRN is, which operations a role
//! grants, which ACL operations exist for a resource type) is the one rule for every
//! front door.
#![deny(missing_docs)]

pub mod acl;
pub mod crn;
pub mod id;
pub mod model;
pub mod principal;
pub mod query;
pub mod redact;
pub mod role;
pub mod secret;
pub mod service;
pub mod upstream;

pub use acl::{AclBinding, Operation, PatternType, Permission, ResourceType};
pub use crn::{Crn, CrnError, CrnPattern};
pub use id::{IdKind, ResourceKind};
pub use principal::Principal;
pub use role::Role;
pub use secret::{KeyId, Secret};
pub use service::ServiceOp;
pub use upstream::{HttpAuth, SecurityProtocol, UpstreamMechanism, UpstreamSecurity};
