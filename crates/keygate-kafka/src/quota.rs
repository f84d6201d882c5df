//! Client quotas on the wire, as a Kafka broker applies them (KIP-219): produce bytes
//! are metered when a Produce request is handled, fetch bytes when a Fetch response
//! comes back, requests as they arrive — per principal, across all its connections to
//! the cluster. Over the quota the response is sent at once with `throttle_time_ms`
//! set, then the connection is muted for that time: the gateway reads none of its
//! requests, so every client backs off, whether or not it honours the field.
//!
//! The meter is a token bucket per principal and direction: it refills at the quota's
//! rate and holds at most one second of it; a request that takes it below zero is
//! throttled for as long as the refill needs to bring it back. Over any long run the
//! rate is the quota's, within one second's burst.

use crate::gateway::ClusterShared;
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};
use keygate_core::Principal;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest single throttle (Kafka caps it by the quota window; so do we).
const MAX_THROTTLE: Duration = Duration::from_secs(30);

/// A token bucket: `tokens` may go negative (the debt is the throttle).
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// Take `amount` at `rate` per second; how long the taker must wait.
    fn take(&mut self, amount: f64, rate: f64, now: Instant) -> Duration {
        let burst = rate; // one second's worth
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(burst) - amount;
        self.at = now;
        if self.tokens >= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64((-self.tokens / rate).min(MAX_THROTTLE.as_secs_f64()))
    }
}

/// One principal's meters on one cluster: produce, fetch, requests.
#[derive(Debug)]
pub(crate) struct Meter {
    buckets: Mutex<[Bucket; 3]>,
}

/// What a meter counts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Direction {
    Ingress = 0,
    Egress = 1,
    Requests = 2,
}

impl Direction {
    fn label(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
            Direction::Requests => "requests",
        }
    }
}

impl Meter {
    fn new(now: Instant) -> Self {
        let full = |_| Bucket {
            tokens: f64::INFINITY,
            at: now,
        };
        Meter {
            buckets: Mutex::new([0, 1, 2].map(full)),
        }
    }

    fn take(&self, d: Direction, amount: u64, rate: u64, now: Instant) -> Duration {
        let Ok(mut b) = self.buckets.lock() else {
            return Duration::ZERO;
        };
        b[d as usize].take(amount as f64, rate.max(1) as f64, now)
    }
}

/// The meters of one cluster's principals (only principals that have a quota).
#[derive(Debug, Default)]
pub(crate) struct Meters {
    by_principal: Mutex<HashMap<String, Arc<Meter>>>,
}

impl Meters {
    fn of(&self, principal: &str) -> Option<Arc<Meter>> {
        let mut m = self.by_principal.lock().ok()?;
        if let Some(meter) = m.get(principal) {
            return Some(meter.clone());
        }
        let meter = Arc::new(Meter::new(Instant::now()));
        m.insert(principal.to_owned(), meter.clone());
        Some(meter)
    }
}

/// One connection's side of its principal's quota, shared by its request loop and
/// its writer task.
#[derive(Debug)]
pub(crate) struct ConnQuota {
    shared: Arc<ClusterShared>,
    names: Vec<String>,
    /// Muted until this many ms after `epoch` (0: not muted).
    muted_until_ms: AtomicU64,
    epoch: Instant,
    /// The principal's meter, found once: the principal of a connection never changes.
    meter: std::sync::OnceLock<Option<Arc<Meter>>>,
}

impl ConnQuota {
    pub(crate) fn new(shared: Arc<ClusterShared>, principals: &[Principal]) -> Arc<Self> {
        Arc::new(ConnQuota {
            shared,
            names: principals.iter().map(|p| p.name().to_owned()).collect(),
            muted_until_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            meter: std::sync::OnceLock::new(),
        })
    }

    /// Meter `amount` in direction `d`; the throttle it earns (zero without a quota).
    pub(crate) fn take(&self, d: Direction, amount: u64) -> Duration {
        let table = self.shared.iam.quotas();
        if table.is_empty() {
            return Duration::ZERO;
        }
        let Some(limits) = table.limits(
            &self.shared.cluster_id,
            self.names.iter().map(String::as_str),
        ) else {
            return Duration::ZERO;
        };
        let rate = match d {
            Direction::Ingress => limits.ingress_byte_rate,
            Direction::Egress => limits.egress_byte_rate,
            Direction::Requests => match limits.request_rate {
                Some(r) => r,
                None => return Duration::ZERO,
            },
        };
        // The meter is the principal's (the first name: the account, or the first pool).
        let meter = self
            .meter
            .get_or_init(|| self.names.first().and_then(|n| self.shared.meters.of(n)));
        let Some(meter) = meter else {
            return Duration::ZERO;
        };
        let t = meter.take(d, amount, rate, Instant::now());
        if !t.is_zero() {
            self.mute(t);
            self.shared.metrics.throttled(d.label(), t.as_secs_f64());
        }
        t
    }

    fn mute(&self, t: Duration) {
        let until = (self.epoch.elapsed() + t).as_millis() as u64;
        self.muted_until_ms.fetch_max(until, Ordering::AcqRel);
    }

    /// When the connection may be read from again, if it is muted now.
    pub(crate) fn muted_until(&self) -> Option<tokio::time::Instant> {
        let until = self.muted_until_ms.load(Ordering::Acquire);
        let now = self.epoch.elapsed().as_millis() as u64;
        (until > now).then(|| tokio::time::Instant::now() + Duration::from_millis(until - now))
    }
}

/// The response `frame` of `api` at `version` with `throttle_time_ms` raised to at
/// least `ms` (Produce v1+, Fetch v1+), for clients that back off by it. A Fetch
/// response's field is its body's first: patched in place, its records never decoded.
/// A Produce response is small: decoded and encoded again. What cannot be rewritten
/// goes out as it came (the mute still throttles the client).
pub(crate) fn with_throttle(api: ApiKey, version: i16, frame: &Bytes, ms: i32) -> Bytes {
    let rewritten = match api {
        ApiKey::Fetch if version >= 1 => {
            patch_fetch(frame, api.response_header_version(version), ms)
        }
        ApiKey::Produce if version >= 1 => recode_produce(frame, version, ms),
        _ => None,
    };
    rewritten.unwrap_or_else(|| frame.clone())
}

fn header_len(frame: &Bytes, header_version: i16) -> Option<usize> {
    let mut buf = frame.clone();
    ResponseHeader::decode(&mut buf, header_version).ok()?;
    Some(frame.len() - buf.len())
}

fn patch_fetch(frame: &Bytes, header_version: i16, ms: i32) -> Option<Bytes> {
    let at = header_len(frame, header_version)?;
    let field = frame.get(at..at + 4)?;
    let current = i32::from_be_bytes(field.try_into().ok()?);
    let mut out = BytesMut::from(&frame[..]);
    out[at..at + 4].copy_from_slice(&current.max(ms).to_be_bytes());
    Some(out.freeze())
}

fn recode_produce(frame: &Bytes, version: i16, ms: i32) -> Option<Bytes> {
    let api = ApiKey::Produce;
    let hv = api.response_header_version(version);
    let mut buf = frame.clone();
    let header = ResponseHeader::decode(&mut buf, hv).ok()?;
    let mut body = ResponseKind::decode(api, &mut buf, version).ok()?;
    let ResponseKind::Produce(r) = &mut body else {
        return None;
    };
    r.throttle_time_ms = r.throttle_time_ms.max(ms);
    let mut out = BytesMut::with_capacity(frame.len());
    header.encode(&mut out, hv).ok()?;
    body.encode(&mut out, version).ok()?;
    Some(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_holds_the_rate_over_a_long_run() {
        let start = Instant::now();
        let mut b = Bucket {
            tokens: f64::INFINITY,
            at: start,
        };
        // 1,000 B/s; a client that sends 100 B and waits what it is told, 200 times.
        let mut now = start;
        let mut sent = 0.0;
        for _ in 0..200 {
            sent += 100.0;
            let wait = b.take(100.0, 1000.0, now);
            now += wait + Duration::from_millis(1);
        }
        let rate = sent / now.duration_since(start).as_secs_f64();
        assert!((900.0..=1100.0).contains(&rate), "{rate} B/s");
    }

    #[test]
    fn under_the_rate_nothing_is_throttled() {
        let start = Instant::now();
        let mut b = Bucket {
            tokens: f64::INFINITY,
            at: start,
        };
        for i in 0..100u64 {
            let now = start + Duration::from_millis(100 * i);
            assert_eq!(b.take(50.0, 1000.0, now), Duration::ZERO);
        }
    }

    #[test]
    fn a_huge_request_waits_at_most_the_cap() {
        let start = Instant::now();
        let mut b = Bucket {
            tokens: 0.0,
            at: start,
        };
        assert_eq!(b.take(1e12, 1.0, start), MAX_THROTTLE);
    }

    #[test]
    fn throttle_time_is_set_in_produce_and_fetch_responses() {
        use kafka_protocol::messages::{FetchResponse, ProduceResponse};
        for (api, body) in [
            (
                ApiKey::Produce,
                ResponseKind::Produce(ProduceResponse::default()),
            ),
            (ApiKey::Fetch, ResponseKind::Fetch(FetchResponse::default())),
        ] {
            let versions: &[i16] = if api == ApiKey::Produce {
                &[3, 7, 9]
            } else {
                &[4, 11, 12]
            };
            for &version in versions {
                let mut frame = BytesMut::new();
                let mut h = ResponseHeader::default();
                h.correlation_id = 42;
                h.encode(&mut frame, api.response_header_version(version))
                    .expect("header");
                body.encode(&mut frame, version).expect("body");
                let out = with_throttle(api, version, &frame.freeze(), 1234);
                let mut b = out.clone();
                let h = ResponseHeader::decode(&mut b, api.response_header_version(version))
                    .expect("h");
                assert_eq!(h.correlation_id, 42);
                let t = match ResponseKind::decode(api, &mut b, version).expect("b") {
                    ResponseKind::Produce(r) => r.throttle_time_ms,
                    ResponseKind::Fetch(r) => r.throttle_time_ms,
                    _ => 0,
                };
                assert_eq!(t, 1234, "{api:?} v{version}");
            }
        }
        // What does not decode goes out unchanged.
        let junk = Bytes::from_static(b"\x00");
        assert_eq!(with_throttle(ApiKey::Produce, 9, &junk, 5), junk);
        assert_eq!(with_throttle(ApiKey::Fetch, 12, &junk, 5), junk);
    }
}
