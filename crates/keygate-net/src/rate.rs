//! Connection creation rate per source address, like Kafka's
//! `max.connection.creation.rate`: a token bucket per address that refills at the
//! rate and holds one second of it. A source over the rate has its new connections
//! closed before a byte is read; its open ones are untouched. Memory is bounded: the
//! map forgets addresses whose bucket is full again once it holds more than
//! [`TRACKED`] of them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Addresses tracked before full buckets are forgotten.
const TRACKED: usize = 10_000;

/// New connections per second per source address.
#[derive(Debug)]
pub struct CreationRate {
    per_second: AtomicU32,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl CreationRate {
    /// At most `per_second` new connections per second from one address (0: no limit).
    pub fn new(per_second: u32) -> Self {
        CreationRate {
            per_second: AtomicU32::new(per_second),
            buckets: Mutex::default(),
        }
    }

    /// Change the rate (a reload); 0: no limit.
    pub fn set_rate(&self, per_second: u32) {
        self.per_second.store(per_second, Ordering::Relaxed);
    }

    /// Whether a new connection from `ip` is within the rate (and count it).
    pub fn allow(&self, ip: IpAddr) -> bool {
        self.allow_at(ip, Instant::now())
    }

    fn allow_at(&self, ip: IpAddr, now: Instant) -> bool {
        let rate = f64::from(self.per_second.load(Ordering::Relaxed));
        if rate <= 0.0 {
            return true;
        }
        let mut b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if b.len() >= TRACKED && !b.contains_key(&ip) {
            b.retain(|_, (tokens, at)| {
                *tokens + now.saturating_duration_since(*at).as_secs_f64() * rate < rate
            });
        }
        let (tokens, at) = b.entry(ip).or_insert((rate, now));
        let refilled = *tokens + now.saturating_duration_since(*at).as_secs_f64() * rate;
        *tokens = refilled.min(rate);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_beyond_one_seconds_worth_is_refused_and_refills() {
        let r = CreationRate::new(10);
        let a = IpAddr::from([10, 0, 0, 1]);
        let b = IpAddr::from([10, 0, 0, 2]);
        let t0 = Instant::now();
        assert_eq!((0..15).filter(|_| r.allow_at(a, t0)).count(), 10);
        assert!(r.allow_at(b, t0), "another address has its own bucket");
        assert!(r.allow_at(a, t0 + Duration::from_millis(150)), "refilled");
        assert!(CreationRate::new(0).allow(a), "0: no limit");
    }

    #[test]
    fn the_map_stays_bounded() {
        let r = CreationRate::new(5);
        let t0 = Instant::now();
        for i in 0..(TRACKED as u32 * 3) {
            r.allow_at(
                IpAddr::from(i.to_be_bytes()),
                t0 + Duration::from_secs(u64::from(i)),
            );
        }
        assert!(r.buckets.lock().map(|b| b.len()).unwrap_or(0) <= TRACKED + 1);
    }
}
