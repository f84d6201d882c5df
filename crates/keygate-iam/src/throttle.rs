//! Failed-authentication throttling, per key (a source address, or an account seen
//! from a source).
//!
//! Why: a wrong secret costs the attacker one packet and the server a hash, an audit
//! record and a log line. Each key gets a few free failures per window; beyond them
//! every further failure doubles a penalty (up to a maximum) during which the key is
//! refused without any work. Successes never clear a *source*'s failures (an attacker
//! with one valid credential must not launder guesses through it). Nothing here is a
//! lock-out: a penalty always ends, and the caller chooses keys so that a stranger can
//! only slow down themself (source addresses), never another user.
//!
//! Memory is bounded by `capacity`: expired entries are swept when the map is full,
//! and if every entry is live the one whose penalty ends first is evicted.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Settings of a [`Throttle`].
#[derive(Debug, Clone, Copy)]
pub struct ThrottleConfig {
    /// Failures a key may have per window before penalties start.
    pub free_failures: u32,
    /// How long failures are remembered.
    pub window: Duration,
    /// The first penalty; each further failure doubles it.
    pub base_penalty: Duration,
    /// The longest penalty.
    pub max_penalty: Duration,
    /// Most keys remembered at once.
    pub capacity: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            free_failures: 30,
            window: Duration::from_secs(60),
            base_penalty: Duration::from_millis(500),
            max_penalty: Duration::from_secs(30),
            capacity: 100_000,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    /// The last failure: a window without one forgets the key.
    last: Instant,
    blocked_until: Instant,
}

/// What [`Throttle::failed`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Penalty {
    /// How long the key is now refused (zero: not yet).
    pub wait: Duration,
    /// The key's failures in the current window, this one included.
    pub failures: u32,
}

/// Failure counters per key with increasing penalties.
#[derive(Debug)]
pub struct Throttle<K> {
    cfg: ThrottleConfig,
    map: Mutex<HashMap<K, Entry>>,
}

impl<K: Hash + Eq + Clone> Throttle<K> {
    /// A throttle with these settings.
    pub fn new(cfg: ThrottleConfig) -> Self {
        Throttle {
            cfg,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// How long `key` is still refused, if it is.
    pub fn blocked(&self, key: &K, now: Instant) -> Option<Duration> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(key)
            .filter(|e| e.blocked_until > now)
            .map(|e| e.blocked_until - now)
    }

    /// Record a failure of `key`; returns the penalty it now has.
    pub fn failed(&self, key: &K, now: Instant) -> Penalty {
        let cfg = self.cfg;
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if !map.contains_key(key) && map.len() >= cfg.capacity {
            map.retain(|_, e| now.duration_since(e.last) < cfg.window || e.blocked_until > now);
            if map.len() >= cfg.capacity {
                let oldest = map
                    .iter()
                    .min_by_key(|(_, e)| e.blocked_until)
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    map.remove(&k);
                }
            }
        }
        let fresh = Entry {
            failures: 0,
            last: now,
            blocked_until: now,
        };
        let e = map.entry(key.clone()).or_insert(fresh);
        if now.duration_since(e.last) >= cfg.window && e.blocked_until <= now {
            *e = fresh;
        }
        e.last = now;
        e.failures = e.failures.saturating_add(1);
        let wait = match e.failures.checked_sub(cfg.free_failures + 1) {
            None => Duration::ZERO,
            Some(excess) => cfg
                .base_penalty
                .saturating_mul(1u32 << excess.min(16))
                .min(cfg.max_penalty),
        };
        e.blocked_until = now + wait;
        Penalty {
            wait,
            failures: e.failures,
        }
    }

    /// Forget `key` (for per-account keys after a success).
    pub fn clear(&self, key: &K) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    /// Keys remembered now.
    pub fn remembered(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ThrottleConfig {
        ThrottleConfig {
            free_failures: 2,
            window: Duration::from_secs(60),
            base_penalty: Duration::from_secs(1),
            max_penalty: Duration::from_secs(8),
            capacity: 3,
        }
    }

    #[test]
    fn penalties_double_after_free_failures_and_stop_growing() {
        let t = Throttle::new(cfg());
        let now = Instant::now();
        let waits: Vec<u64> = (0..7).map(|_| t.failed(&"a", now).wait.as_secs()).collect();
        assert_eq!(waits, [0, 0, 1, 2, 4, 8, 8]);
        assert_eq!(t.blocked(&"a", now), Some(Duration::from_secs(8)));
        assert_eq!(t.blocked(&"b", now), None);
        assert_eq!(t.blocked(&"a", now + Duration::from_secs(9)), None);
    }

    #[test]
    fn a_quiet_window_forgets() {
        let t = Throttle::new(cfg());
        let now = Instant::now();
        for _ in 0..3 {
            t.failed(&"a", now);
        }
        let later = now + Duration::from_secs(120);
        assert_eq!(t.failed(&"a", later).failures, 1);
    }

    #[test]
    fn memory_is_bounded() {
        let t = Throttle::new(cfg());
        let now = Instant::now();
        for i in 0..1000 {
            t.failed(&i, now);
        }
        assert!(t.remembered() <= 3);
    }
}
