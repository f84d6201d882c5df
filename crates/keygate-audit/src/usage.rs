//! Allowed Produce and Fetch are counted, not logged one by one: a connection keeps
//! its own small table (no lock on the request path) and hands it to the pipeline
//! now and then; the pipeline adds the tables of every connection up per principal,
//! credential and topic, and writes one summary record per entry per window.

use crate::event::{types, CloudEvent, Summary};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Produce or Fetch at the Kafka gateway; reads and writes at the HTTP gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Traffic {
    /// Produce (WRITE).
    Produce = 0,
    /// Fetch (READ).
    Fetch = 1,
    /// An allowed HTTP request that changes nothing (GET, HEAD, OPTIONS).
    HttpRead = 2,
    /// Any other allowed HTTP request.
    HttpWrite = 3,
}

impl Traffic {
    fn method(self) -> &'static str {
        match self {
            Traffic::Produce => "kafka.Produce",
            Traffic::Fetch => "kafka.Fetch",
            Traffic::HttpRead => "http.Read",
            Traffic::HttpWrite => "http.Write",
        }
    }
    fn operation(self) -> &'static str {
        match self {
            Traffic::Produce | Traffic::HttpWrite => "WRITE",
            Traffic::Fetch | Traffic::HttpRead => "READ",
        }
    }
    fn kafka(self) -> bool {
        matches!(self, Traffic::Produce | Traffic::Fetch)
    }
}

/// Requests and bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Requests.
    pub requests: u64,
    /// Bytes.
    pub bytes: u64,
}

/// Who a connection is, for its summaries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subject {
    /// The cluster's CRN (the records' source).
    pub cluster_crn: Arc<str>,
    /// Prefix of its resources' CRNs (`…/cloud-cluster=lkc-…/kafka=lkc-…`).
    pub resource_base: Arc<str>,
    /// `User:sa-…` (the first principal of the connection).
    pub principal: Arc<str>,
    /// `SASL_PLAIN` or `SASL_OAUTHBEARER`.
    pub mechanism: &'static str,
    /// Key id or pools.
    pub identifier: Arc<str>,
}

/// One connection's counts since its last flush.
#[derive(Debug)]
pub struct ConnectionUsage {
    subject: Subject,
    /// By topic, then Produce/Fetch: looked up by `&str`, so counting allocates only
    /// the first time a connection touches a topic.
    counts: HashMap<String, [Counts; 4]>,
    since: Instant,
    every: Duration,
}

/// What a connection hands over.
#[derive(Debug, Clone)]
pub struct UsageBatch {
    /// Who.
    pub subject: Subject,
    /// Per operation and topic.
    pub counts: Vec<((Traffic, String), Counts)>,
}

impl ConnectionUsage {
    /// An empty table that asks to be flushed every `every`.
    pub fn new(subject: Subject, every: Duration) -> Self {
        ConnectionUsage {
            subject,
            counts: HashMap::new(),
            since: Instant::now(),
            every,
        }
    }

    /// Count one request's share on one topic.
    pub fn add(&mut self, t: Traffic, topic: &str, bytes: u64) {
        let both = match self.counts.get_mut(topic) {
            Some(c) => c,
            None => self.counts.entry(topic.to_owned()).or_default(),
        };
        let c = &mut both[t as usize];
        c.requests += 1;
        c.bytes += bytes;
    }

    /// The batch to hand over, when the interval has passed (or `force`).
    pub fn take(&mut self, force: bool) -> Option<UsageBatch> {
        if self.counts.is_empty() || (!force && self.since.elapsed() < self.every) {
            return None;
        }
        self.since = Instant::now();
        let mut counts = Vec::with_capacity(self.counts.len());
        for (topic, both) in self.counts.drain() {
            for t in [
                Traffic::Produce,
                Traffic::Fetch,
                Traffic::HttpRead,
                Traffic::HttpWrite,
            ] {
                let c = both[t as usize];
                if c.requests > 0 {
                    counts.push(((t, topic.clone()), c));
                }
            }
        }
        Some(UsageBatch {
            subject: self.subject.clone(),
            counts,
        })
    }
}

/// The pipeline's running totals for the current window.
#[derive(Debug)]
pub struct Totals {
    window_start: DateTime<Utc>,
    counts: HashMap<(Subject, Traffic, String), Counts>,
}

impl Totals {
    /// A window starting now.
    pub fn new(now: DateTime<Utc>) -> Self {
        Totals {
            window_start: now,
            counts: HashMap::new(),
        }
    }

    /// Add a connection's batch.
    pub fn add(&mut self, b: UsageBatch) {
        for ((t, topic), c) in b.counts {
            let e = self
                .counts
                .entry((b.subject.clone(), t, topic))
                .or_default();
            e.requests += c.requests;
            e.bytes += c.bytes;
        }
    }

    /// Close the window: one summary record per entry, sorted for a stable order.
    pub fn close(&mut self, now: DateTime<Utc>) -> Vec<CloudEvent> {
        let start = std::mem::replace(&mut self.window_start, now);
        let mut entries: Vec<_> = self.counts.drain().collect();
        entries.sort_by(|a, b| {
            (&a.0 .0.cluster_crn, &a.0 .0.principal, a.0 .1, &a.0 .2).cmp(&(
                &b.0 .0.cluster_crn,
                &b.0 .0.principal,
                b.0 .1,
                &b.0 .2,
            ))
        });
        entries
            .into_iter()
            .map(|((s, t, topic), c)| {
                // Kafka: per topic. HTTP: per target (`subject=…`, or the service).
                let (resource, kind, resource_type) = match (t.kafka(), topic.is_empty()) {
                    (true, _) => (
                        format!("{}/topic={topic}", s.resource_base),
                        types::KAFKA_REQUEST_SUMMARY,
                        "Topic",
                    ),
                    (false, true) => (
                        s.resource_base.to_string(),
                        types::HTTP_REQUEST_SUMMARY,
                        "Service",
                    ),
                    (false, false) => (
                        format!("{}/{topic}", s.resource_base),
                        types::HTTP_REQUEST_SUMMARY,
                        "Service",
                    ),
                };
                CloudEvent::new(
                    kind,
                    s.cluster_crn.as_ref(),
                    s.cluster_crn.as_ref(),
                    t.method(),
                    resource,
                    now,
                )
                .who(
                    Some(s.principal.to_string()),
                    Some(s.mechanism),
                    Some(s.identifier.to_string()),
                )
                .authorization(crate::AuthorizationInfo {
                    granted: true,
                    operation: t.operation().into(),
                    resource_type: resource_type.into(),
                    resource_name: topic,
                    pattern_type: Some("LITERAL".into()),
                    ..Default::default()
                })
                .summary(Summary {
                    requests: c.requests,
                    bytes: c.bytes,
                    window_start: start,
                    window_end: now,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(p: &str) -> Subject {
        Subject {
            cluster_crn: "crn://k/organization=o/cloud-cluster=lkc-1".into(),
            resource_base: "crn://k/organization=o/cloud-cluster=lkc-1/kafka=lkc-1".into(),
            principal: p.into(),
            mechanism: "SASL_PLAIN",
            identifier: "KEY".into(),
        }
    }

    #[test]
    fn connections_add_up_per_principal_and_topic() {
        let mut a = ConnectionUsage::new(subject("User:sa-a"), Duration::from_secs(3600));
        let mut b = ConnectionUsage::new(subject("User:sa-a"), Duration::from_secs(3600));
        a.add(Traffic::Produce, "orders", 100);
        a.add(Traffic::Produce, "orders", 50);
        b.add(Traffic::Produce, "orders", 1);
        b.add(Traffic::Fetch, "orders", 7);
        assert!(a.take(false).is_none(), "not yet due");
        let mut t = Totals::new(Utc::now());
        t.add(a.take(true).expect("batch"));
        t.add(b.take(true).expect("batch"));
        assert!(a.take(true).is_none(), "drained");
        let recs = t.close(Utc::now());
        assert_eq!(recs.len(), 2);
        let fetch = &recs[1];
        assert_eq!(fetch.data.method_name, "kafka.Fetch");
        let produce = &recs[0];
        assert_eq!(produce.data.method_name, "kafka.Produce");
        let s = produce.data.summary.as_ref().expect("summary");
        assert_eq!((s.requests, s.bytes), (3, 151));
        assert_eq!(
            produce.data.resource_name,
            "crn://k/organization=o/cloud-cluster=lkc-1/kafka=lkc-1/topic=orders"
        );
        assert_eq!(produce.granted(), Some(true));
        assert!(t.close(Utc::now()).is_empty(), "a new window starts empty");
    }
}
