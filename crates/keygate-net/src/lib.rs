//! What every listener of keygate needs so that no peer decides how much it costs:
//! connection caps (in total, per source address, and for peers that have not
//! authenticated yet), an accept loop that backs off when the process is out of file
//! descriptors instead of spinning, a write that gives up on a peer that never reads,
//! and the file-descriptor budget that divides the process's limit between the
//! listeners so that one side can never starve the other; and TLS.
//!
//! Layout: [`limit`] (caps and their guards), [`rate`] (connection creation rate per
//! source), [`accept`] (the backing-off accept),
//! [`budget`] (RLIMIT_NOFILE shared out), [`timed`] (I/O that must make progress),
//! [`tls`] (certificates that reload, and the one place TLS settings are chosen).
#![deny(missing_docs)]

pub mod accept;
pub mod budget;
pub mod limit;
pub mod rate;
pub mod timed;
pub mod tls;

pub use accept::accept;
pub use budget::FdBudget;
pub use limit::{ConnGuard, ConnLimiter, Refused};
pub use rate::CreationRate;
pub use timed::Timed;
