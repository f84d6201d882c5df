//! Console passwords: argon2id, with the work bounded.
//!
//! Why bounded: one argon2id hash with the recommended parameters takes 19 MiB and tens
//! of milliseconds of a core. Sign-in is open to anyone who can reach the console, and
//! an unknown address is verified against a dummy hash (so it takes as long as a
//! wrong password), so without a bound a stranger with a loop spends the server's
//! memory and both cores. At most `concurrency` hashes run at once; a request waits at
//! most `wait` for its turn and is then refused as busy ([`IamError::Busy`]).

use crate::{IamError, Result};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Bounded argon2id hashing and verification.
#[derive(Debug, Clone)]
pub struct PasswordWork {
    permits: Arc<Semaphore>,
    wait: Duration,
}

impl Default for PasswordWork {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        PasswordWork::new(cores, Duration::from_secs(2))
    }
}

impl PasswordWork {
    /// At most `concurrency` hashes at once; wait at most `wait` for a turn.
    pub fn new(concurrency: usize, wait: Duration) -> Self {
        PasswordWork {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            wait,
        }
    }

    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let permit = tokio::time::timeout(self.wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| IamError::Busy("too many sign-ins at once".into()))?
            .map_err(|_| IamError::Busy("shutting down".into()))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f()
        })
        .await
        .map_err(|e| IamError::Internal(format!("password task failed: {e}")))
    }

    /// A PHC string for `password`.
    pub async fn hash(&self, password: &str) -> Result<String> {
        let pw = password.to_owned();
        self.run(move || hash_password(&pw))
            .await?
            .map_err(IamError::Internal)
    }

    /// Whether `password` matches `phc`; `None` verifies against a dummy hash (same
    /// work, always false).
    pub async fn verify(&self, password: &str, phc: Option<String>) -> Result<bool> {
        let pw = password.to_owned();
        self.run(move || {
            let known = phc.is_some();
            let phc = phc.unwrap_or_else(|| dummy_hash().to_owned());
            verify_password(&pw, &phc) && known
        })
        .await
    }
}

/// A PHC string of a throw-away password: unknown e-mail addresses are verified
/// against it, so they take as long as wrong passwords.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("keygate-timing-equaliser").unwrap_or_default())
}

fn hash_password(password: &str) -> std::result::Result<String, String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

fn verify_password(password: &str, phc: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(phc).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hashing_is_bounded_and_refuses_when_busy() {
        let w = PasswordWork::new(1, Duration::from_millis(1));
        let phc = w.hash("correct horse battery").await.expect("hash");
        assert!(w
            .verify("correct horse battery", Some(phc.clone()))
            .await
            .expect("verify"));
        assert!(!w.verify("wrong", Some(phc)).await.expect("verify"));
        assert!(!w.verify("anything", None).await.expect("verify"));
        // Twenty at once with one permit and no patience: most are refused, none hang.
        let tries: Vec<_> = (0..20)
            .map(|_| {
                let w = w.clone();
                tokio::spawn(async move { w.verify("x", None).await })
            })
            .collect();
        let mut busy = 0;
        for t in tries {
            if matches!(t.await.expect("join"), Err(IamError::Busy(_))) {
                busy += 1;
            }
        }
        assert!(busy >= 10, "only {busy} of 20 refused");
    }
}
