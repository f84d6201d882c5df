//! Connection caps: a total, and one per source address (Kafka's
//! `max.connections.per.ip`). A connection is admitted by taking a [`ConnGuard`] and
//! counted until the guard is dropped; a refused one is closed at once, before a
//! byte is read. The per-address map holds only addresses with open connections, so
//! it is bounded by the total cap.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The listener has its maximum of connections.
    Total,
    /// This source address has its maximum of connections.
    PerSource,
}

impl Refused {
    /// For logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Refused::Total => "too many connections",
            Refused::PerSource => "too many connections from this address",
        }
    }
}

#[derive(Debug)]
struct Counts<K> {
    total: usize,
    per_ip: HashMap<K, usize>,
}

impl<K> Default for Counts<K> {
    fn default() -> Self {
        Counts {
            total: 0,
            per_ip: HashMap::new(),
        }
    }
}

/// Caps on open connections, cheap to clone (shared state): in total and per source
/// (an address by default; any key, e.g. a principal, otherwise).
#[derive(Debug, Clone)]
pub struct ConnLimiter<K = IpAddr> {
    max_total: Arc<AtomicUsize>,
    max_per_ip: Arc<AtomicUsize>,
    counts: Arc<Mutex<Counts<K>>>,
}

/// An admitted connection: counted until dropped.
#[derive(Debug)]
pub struct ConnGuard<K: std::hash::Hash + Eq = IpAddr> {
    ip: K,
    counts: Arc<Mutex<Counts<K>>>,
}

impl<K: std::hash::Hash + Eq + Clone> ConnLimiter<K> {
    /// At most `max_total` connections, at most `max_per_ip` from one address.
    pub fn new(max_total: usize, max_per_ip: usize) -> Self {
        Self::with_limits(
            Arc::new(AtomicUsize::new(max_total.max(1))),
            Arc::new(AtomicUsize::new(max_per_ip.max(1))),
        )
    }

    /// A limiter whose caps are these cells, shared with other limiters and changed
    /// live (a reload): admissions check the current values; connections already
    /// admitted stay.
    pub fn with_limits(max_total: Arc<AtomicUsize>, max_per_ip: Arc<AtomicUsize>) -> Self {
        ConnLimiter {
            max_total,
            max_per_ip,
            counts: Arc::default(),
        }
    }

    /// Change the caps (both at least 1).
    pub fn set_limits(&self, max_total: usize, max_per_ip: usize) {
        self.max_total.store(max_total.max(1), Ordering::Relaxed);
        self.max_per_ip.store(max_per_ip.max(1), Ordering::Relaxed);
    }

    /// Admit a connection from `ip`, or say why not.
    pub fn admit(&self, ip: K) -> Result<ConnGuard<K>, Refused> {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if c.total >= self.max_total.load(Ordering::Relaxed) {
            return Err(Refused::Total);
        }
        let n = c.per_ip.entry(ip.clone()).or_insert(0);
        if *n >= self.max_per_ip.load(Ordering::Relaxed) {
            return Err(Refused::PerSource);
        }
        *n += 1;
        c.total += 1;
        Ok(ConnGuard {
            ip,
            counts: self.counts.clone(),
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).total
    }
}

impl<K: std::hash::Hash + Eq> Drop for ConnGuard<K> {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_and_guards_release() {
        let l = ConnLimiter::new(3, 2);
        let a = IpAddr::from([10, 0, 0, 1]);
        let b = IpAddr::from([10, 0, 0, 2]);
        let g1 = l.admit(a).expect("first");
        let _g2 = l.admit(a).expect("second");
        assert_eq!(l.admit(a).err(), Some(Refused::PerSource));
        let _g3 = l.admit(b).expect("other address");
        assert_eq!(l.admit(b).err(), Some(Refused::Total));
        drop(g1);
        let _g4 = l.admit(a).expect("room again");
        assert_eq!(l.open(), 3);
    }
}
