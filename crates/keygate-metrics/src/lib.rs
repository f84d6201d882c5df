//! keygate's metrics: one catalogue of every series keygate exports (name, kind, unit,
//! help — README's list is this table), and the handles the hot paths keep so that a
//! Kafka request costs an atomic add, not a label lookup.
//!
//! Libraries record through the `metrics` facade: without an installed recorder
//! (unit tests, benches) every call is a no-op, so no crate needs an exporter or does
//! I/O for metrics. The binary installs the Prometheus recorder, calls [`describe`]
//! and serves `/metrics`.
//!
//! Label sets are bounded by configuration, never by peers: clusters (registered by
//! an admin), Kafka API names (a fixed set), decision and reason words (this file),
//! REST route templates (the router's). No series per key, principal or client
//! address.

use metrics::{counter, gauge, histogram, Counter, Gauge, Histogram, SharedString, Unit};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// What kind of series a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (`…_total`).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Observations in buckets (`…_seconds`).
    Histogram,
}

/// One exported metric.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    /// Prometheus name.
    pub name: &'static str,
    /// Its kind.
    pub kind: Kind,
    /// Its labels.
    pub labels: &'static str,
    /// Help text.
    pub help: &'static str,
}

macro_rules! catalogue {
    ($($id:ident = $name:literal, $kind:ident, $labels:literal, $help:literal;)*) => {
        $(#[doc = $help] pub const $id: &str = $name;)*
        /// Every metric keygate exports (besides the `process_…` ones).
        pub const CATALOGUE: &[Metric] = &[
            $(Metric { name: $name, kind: Kind::$kind, labels: $labels, help: $help },)*
        ];
    };
}

catalogue! {
    KAFKA_CONNECTIONS_OPEN = "keygate_kafka_connections_open", Gauge, "cluster",
        "Client connections open on the Kafka gateway.";
    KAFKA_CONNECTIONS_ACCEPTED = "keygate_kafka_connections_accepted_total", Counter, "cluster",
        "Client connections the Kafka gateway admitted.";
    KAFKA_CONNECTIONS_REFUSED = "keygate_kafka_connections_refused_total", Counter, "cluster, reason",
        "Client connections refused before a byte was read, by the limit that refused them.";
    KAFKA_CONNECTIONS_CLOSED = "keygate_kafka_connections_closed_total", Counter, "cluster, reason",
        "Client connections ended, by why (client_closed, auth_failed, auth_timeout, revoked, protocol, upstream, io).";
    KAFKA_REQUESTS = "keygate_kafka_requests_total", Counter, "cluster, api, decision",
        "Kafka requests by API and authorization decision (allowed, filtered, denied, local).";
    KAFKA_PROCESSING = "keygate_kafka_processing_seconds", Histogram, "api, stage",
        "Time keygate itself spends on a Kafka request (stage=request: decode, decide, write upstream) or its response (stage=response: rewrite, write to the client); the broker's time is excluded.";
    KAFKA_BYTES_RECEIVED = "keygate_kafka_received_bytes_total", Counter, "cluster",
        "Bytes of Kafka requests received from clients.";
    KAFKA_BYTES_SENT = "keygate_kafka_sent_bytes_total", Counter, "cluster",
        "Bytes of Kafka responses sent to clients.";
    KAFKA_THROTTLED = "keygate_kafka_throttled_responses_total", Counter, "cluster, direction",
        "Responses a client quota throttled (direction: ingress, egress, requests).";
    KAFKA_THROTTLE = "keygate_kafka_throttle_seconds", Histogram, "direction",
        "How long client quotas throttled, every cluster together (a histogram per cluster would be 20 series each).";
    KAFKA_UPSTREAM_FAILURES = "keygate_kafka_upstream_connect_failures_total", Counter, "cluster",
        "Connections to upstream brokers that could not be opened or authenticated.";
    AUTHENTICATIONS = "keygate_authentications_total", Counter, "door, mechanism, outcome",
        "Authentications by door (kafka, rest, http), mechanism and outcome (success, failure).";
    SNAPSHOT_SEQUENCE = "keygate_snapshot_sequence", Gauge, "",
        "The store change sequence this instance's snapshot reflects.";
    STORE_SEQUENCE = "keygate_store_sequence", Gauge, "",
        "The newest change sequence this instance has seen in the store.";
    SNAPSHOT_AGE = "keygate_snapshot_staleness_seconds", Gauge, "",
        "Seconds since the snapshot was last confirmed current against the store.";
    PROPAGATION = "keygate_snapshot_propagation_seconds", Histogram, "",
        "From a change's commit in the store to its being in this instance's snapshot.";
    STORE_OPERATION = "keygate_store_operation_seconds", Histogram, "operation",
        "Store transactions, by operation.";
    AUDIT_QUEUED = "keygate_audit_queued", Gauge, "",
        "Audit records waiting in memory to be written to the audit table.";
    AUDIT_WRITTEN = "keygate_audit_written_total", Counter, "",
        "Audit records written to the audit table.";
    AUDIT_DROPPED = "keygate_audit_dropped_total", Counter, "",
        "Audit records dropped because the pipeline was overloaded.";
    AUDIT_SHIPPED = "keygate_audit_shipped_total", Counter, "sink",
        "Audit records a sink (file, kafka) confirmed.";
    AUDIT_SINK_BACKLOG = "keygate_audit_sink_backlog", Gauge, "sink",
        "Audit records in the table a sink has not confirmed yet.";
    REST_REQUESTS = "keygate_rest_requests_total", Counter, "route, method, status",
        "REST and console requests by route template, method and status code.";
    REST_DURATION = "keygate_rest_request_duration_seconds", Histogram, "route, method",
        "REST and console request duration, by route template.";
    HTTP_GATEWAY_REQUESTS = "keygate_http_gateway_requests_total", Counter, "service, status",
        "HTTP gateway requests by service kind (schema_registry, ksql, flink, tableflow) and status code.";
    LIMIT_HITS = "keygate_limit_hits_total", Counter, "limit",
        "Times a configured limit refused or cut something, by limit.";
}

/// Register the catalogue's help texts and units with the installed recorder.
pub fn describe() {
    for m in CATALOGUE {
        let unit = if m.name.ends_with("_seconds") {
            Some(Unit::Seconds)
        } else if m.name.ends_with("_bytes_total") {
            Some(Unit::Bytes)
        } else {
            None
        };
        match (m.kind, unit) {
            (Kind::Counter, Some(u)) => metrics::describe_counter!(m.name, u, m.help),
            (Kind::Counter, None) => metrics::describe_counter!(m.name, m.help),
            (Kind::Gauge, Some(u)) => metrics::describe_gauge!(m.name, u, m.help),
            (Kind::Gauge, None) => metrics::describe_gauge!(m.name, m.help),
            (Kind::Histogram, Some(u)) => metrics::describe_histogram!(m.name, u, m.help),
            (Kind::Histogram, None) => metrics::describe_histogram!(m.name, m.help),
        }
    }
}

/// Kafka API keys with a slot of their own (every key Kafka defines is below this).
const API_SLOTS: usize = 128;

/// How the gateway decided a Kafka request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Forwarded as it was.
    Allowed,
    /// Forwarded rewritten: the request, or its response, cut to what the principal
    /// may see or do (Metadata always is).
    Filtered,
    /// Answered with an authorization error (or closed, for acks=0).
    Denied,
    /// Answered by the gateway itself (ApiVersions, SASL, metadata it serves).
    Local,
}

impl Decision {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Decision::Allowed => "allowed",
            Decision::Filtered => "filtered",
            Decision::Denied => "denied",
            Decision::Local => "local",
        }
    }
}

/// One Kafka cluster's series, created when its listeners start.
pub struct KafkaCluster {
    cluster: SharedString,
    /// Connections open now.
    pub open: Gauge,
    /// Connections admitted.
    pub accepted: Counter,
    /// Request bytes in.
    pub received: Counter,
    /// Response bytes out.
    pub sent: Counter,
    /// Upstream connections that failed.
    pub upstream_failures: Counter,
    requests: [[OnceLock<Counter>; 4]; API_SLOTS],
}

impl std::fmt::Debug for KafkaCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaCluster")
            .field("cluster", &self.cluster)
            .finish_non_exhaustive()
    }
}

impl KafkaCluster {
    /// The series of cluster `id`.
    pub fn new(id: &str) -> Self {
        let cluster = SharedString::from(id.to_owned());
        KafkaCluster {
            open: gauge!(KAFKA_CONNECTIONS_OPEN, "cluster" => cluster.clone()),
            accepted: counter!(KAFKA_CONNECTIONS_ACCEPTED, "cluster" => cluster.clone()),
            received: counter!(KAFKA_BYTES_RECEIVED, "cluster" => cluster.clone()),
            sent: counter!(KAFKA_BYTES_SENT, "cluster" => cluster.clone()),
            upstream_failures: counter!(KAFKA_UPSTREAM_FAILURES, "cluster" => cluster.clone()),
            requests: [const { [const { OnceLock::new() }; 4] }; API_SLOTS],
            cluster,
        }
    }

    /// Count a request of API `key` (`api` prints its name), decided `d`.
    pub fn request(&self, key: i16, api: &dyn std::fmt::Debug, d: Decision) {
        let Some(slot) = usize::try_from(key).ok().and_then(|k| self.requests.get(k)) else {
            return;
        };
        slot[d as usize]
            .get_or_init(|| {
                let api = format!("{api:?}");
                counter!(KAFKA_REQUESTS, "cluster" => self.cluster.clone(), "api" => api, "decision" => d.as_str())
            })
            .increment(1);
    }

    /// Count a refused connection.
    pub fn refused(&self, reason: &'static str) {
        counter!(KAFKA_CONNECTIONS_REFUSED, "cluster" => self.cluster.clone(), "reason" => reason)
            .increment(1);
    }

    /// Count a throttle of `seconds` a quota imposed in `direction`.
    pub fn throttled(&self, direction: &'static str, seconds: f64) {
        counter!(KAFKA_THROTTLED, "cluster" => self.cluster.clone(), "direction" => direction)
            .increment(1);
        histogram!(KAFKA_THROTTLE, "direction" => direction).record(seconds);
        limit_hit("kafka.client_quota", &direction);
    }

    /// Count an ended connection.
    pub fn closed(&self, reason: &'static str) {
        counter!(KAFKA_CONNECTIONS_CLOSED, "cluster" => self.cluster.clone(), "reason" => reason)
            .increment(1);
    }
}

/// Which half of a Kafka request's life an observation measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Decode, decide, write to the broker (or queue the local answer).
    Request,
    /// Rewrite the broker's response, write it to the client.
    Response,
}

static PROCESSING: [OnceLock<[Histogram; 2]>; API_SLOTS] = [const { OnceLock::new() }; API_SLOTS];

/// Record keygate's own time on a request of API `key` (`api` prints its name).
pub fn kafka_processing(key: i16, api: &dyn std::fmt::Debug, stage: Stage, seconds: f64) {
    let Some(slot) = usize::try_from(key).ok().and_then(|k| PROCESSING.get(k)) else {
        return;
    };
    let h = slot.get_or_init(|| {
        let api = SharedString::from(format!("{api:?}"));
        [
            histogram!(KAFKA_PROCESSING, "api" => api.clone(), "stage" => "request"),
            histogram!(KAFKA_PROCESSING, "api" => api, "stage" => "response"),
        ]
    });
    h[stage as usize].record(seconds);
}

/// Count an authentication at `door` (`kafka`, `rest`, `http`).
pub fn authentication(door: &'static str, mechanism: &'static str, ok: bool) {
    let outcome = if ok { "success" } else { "failure" };
    counter!(AUTHENTICATIONS, "door" => door, "mechanism" => mechanism, "outcome" => outcome)
        .increment(1);
}

/// How often a limit that keeps being hit is logged.
pub const LOG_WINDOW: Duration = Duration::from_secs(10);

/// Count a limit refusing or cutting something (`limit` names the setting), and log
/// it — once per [`LOG_WINDOW`] per limit, with how many hits the line stands for, so
/// that a flood of refusals cannot flood the log.
pub fn limit_hit(limit: &'static str, detail: &dyn std::fmt::Display) {
    counter!(LIMIT_HITS, "limit" => limit).increment(1);
    type Window = (Option<Instant>, u64);
    static WINDOWS: OnceLock<Mutex<HashMap<&'static str, Window>>> = OnceLock::new();
    let Ok(mut w) = WINDOWS.get_or_init(Mutex::default).lock() else {
        return;
    };
    let now = Instant::now();
    let (since, hits) = w.entry(limit).or_insert((None, 0));
    *hits += 1;
    if since.is_none_or(|s| now.duration_since(s) >= LOG_WINDOW) {
        tracing::warn!(limit, hits = *hits, latest = %detail, "limit hit");
        *since = Some(now);
        *hits = 0;
    }
}

/// The bucket boundaries for a `_seconds` histogram: 50 µs to 10 s.
pub const SECONDS_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions() {
        let mut seen = std::collections::HashSet::new();
        for m in CATALOGUE {
            assert!(seen.insert(m.name), "{} twice", m.name);
            assert!(m.name.starts_with("keygate_"), "{}", m.name);
            match m.kind {
                Kind::Counter => assert!(m.name.ends_with("_total"), "{}", m.name),
                Kind::Histogram => assert!(m.name.ends_with("_seconds"), "{}", m.name),
                Kind::Gauge => assert!(!m.name.ends_with("_total"), "{}", m.name),
            }
            assert!(
                m.name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{}",
                m.name
            );
        }
    }

    #[test]
    fn out_of_range_api_keys_are_ignored_not_a_panic() {
        let c = KafkaCluster::new("lkc-test");
        c.request(-1, &"x", Decision::Allowed);
        c.request(i16::MAX, &"x", Decision::Denied);
        kafka_processing(-5, &"x", Stage::Request, 0.1);
        kafka_processing(4000, &"x", Stage::Response, 0.1);
    }
}
