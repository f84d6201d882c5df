//! The process's file descriptors shared out between listeners.
//!
//! Why: every connection is a descriptor (a gateway connection is two: client and
//! upstream). If one listener may take them all, a flood of half-open HTTP connections
//! makes the Kafka gateway's `accept` fail, and the other way round. At start the soft
//! RLIMIT_NOFILE is raised to the hard one, and the caps of each listener are checked
//! against it: what does not fit is scaled down, with a warning, so that the sum of
//! every listener's worst case stays below the limit with room for the database, the
//! audit sinks and the listeners themselves.

/// Descriptors kept for everything that is not a client connection.
pub const RESERVE: u64 = 256;

/// The descriptor budget of this process.
#[derive(Debug, Clone, Copy)]
pub struct FdBudget {
    /// RLIMIT_NOFILE after raising the soft limit.
    pub limit: u64,
}

impl FdBudget {
    /// Raise the soft limit to the hard one (where allowed) and read it.
    pub fn raise() -> Self {
        let limit = match rlimit::increase_nofile_limit(u64::MAX) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "could not read or raise RLIMIT_NOFILE");
                rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
            }
        };
        FdBudget { limit }
    }

    /// Fit the caps into the budget: `wanted` is each listener's cap with the
    /// descriptors one of its connections uses. Returns the caps to use, scaled down
    /// in proportion when their sum does not fit.
    pub fn share(&self, wanted: &[(&str, usize, u64)]) -> Vec<usize> {
        let need: u64 = wanted.iter().map(|(_, n, per)| *n as u64 * per).sum();
        let have = self.limit.saturating_sub(RESERVE).max(16);
        if need <= have {
            return wanted.iter().map(|(_, n, _)| *n).collect();
        }
        wanted
            .iter()
            .map(|(name, n, _)| {
                let fit = ((*n as u64 * have) / need).max(1) as usize;
                tracing::warn!(
                    listener = *name,
                    wanted = *n,
                    granted = fit,
                    fd_limit = self.limit,
                    "connection cap lowered to fit RLIMIT_NOFILE; raise `ulimit -n` to keep it"
                );
                fit
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_are_scaled_to_fit() {
        let b = FdBudget { limit: 1256 };
        assert_eq!(b.share(&[("http", 100, 1), ("kafka", 100, 2)]), [100, 100]);
        let shared = b.share(&[("http", 1000, 1), ("kafka", 1000, 2)]);
        assert!(
            shared[0] as u64 + shared[1] as u64 * 2 <= 1000,
            "{shared:?}"
        );
        assert!(shared.iter().all(|n| *n > 0));
    }
}
