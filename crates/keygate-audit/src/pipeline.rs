//! From emitters to sinks.
//!
//! ```text
//! control plane ── same transaction as the change ──────────────┐
//! gateway, REST failures ── Auditor (bounded channel) ── writer ─┤→ audit table (the outbox)
//!                                                                 ├─ shipper "file"  → JSON lines
//!                                                                 └─ shipper "kafka" → topic
//! ```
//!
//! The database table is both the queryable sink and the durable outbox: each other
//! sink is a cursor over it, advanced only after the sink has confirmed a batch (the
//! file synced, the broker acknowledged). A sink that is down keeps its cursor, and
//! retention never deletes a row a sink has not confirmed, so delivery is at least
//! once and in table order.
//!
//! Emitters never wait: [`Auditor::record`] is a `try_send`. Under overload records
//! are counted and dropped, and a pipeline record says how many — a denied-request
//! flood must not stall the Kafka path or grow memory without bound.

use crate::event::{types, CloudEvent};
use crate::repeats::{RepeatLimits, Repeats};
use crate::usage::{Totals, UsageBatch};
use async_trait::async_trait;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Errors of the audit log and its sinks; messages are safe to log.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

/// The audit table, as the pipeline sees it.
#[async_trait]
pub trait AuditLog: Send + Sync + 'static {
    /// Append records in order, in one transaction.
    async fn append(&self, events: Vec<CloudEvent>) -> Result<(), SinkError>;
    /// Up to `limit` records after sequence number `seq`, in order.
    async fn read_after(&self, seq: i64, limit: u32) -> Result<Vec<(i64, CloudEvent)>, SinkError>;
    /// A sink's position (0 when new).
    async fn cursor(&self, sink: &str) -> Result<i64, SinkError>;
    /// Move a sink's position.
    async fn set_cursor(&self, sink: &str, seq: i64) -> Result<(), SinkError>;
    /// Delete records older than `before` that every sink in `sinks` has confirmed.
    async fn prune(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        sinks: &[String],
    ) -> Result<u64, SinkError>;
    /// Take or renew the right to ship `sink` for `holder` (one instance at a time
    /// when several share the log). Without coordination: always granted.
    async fn lease(&self, sink: &str, holder: &str, ttl: Duration) -> Result<bool, SinkError> {
        let _ = (sink, holder, ttl);
        Ok(true)
    }
    /// Ticks whenever records are appended.
    fn subscribe(&self) -> watch::Receiver<i64>;
}

/// How long a shipper's lease lasts; renewed at a third of it.
const LEASE: Duration = Duration::from_secs(30);

enum Input {
    Event(Box<CloudEvent>),
    Usage(UsageBatch),
    /// Close the summary window, write everything before this, then answer.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// The emitters' handle: cheap to clone, never blocks.
#[derive(Clone, Debug)]
pub struct Auditor {
    tx: Option<mpsc::Sender<Input>>,
    dropped: Arc<AtomicU64>,
    summary_every: Duration,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Input")
    }
}

/// The writer's end of the channel.
#[derive(Debug)]
pub struct Receiver {
    rx: mpsc::Receiver<Input>,
    dropped: Arc<AtomicU64>,
    summary_every: Duration,
    limits: RepeatLimits,
}

impl Receiver {
    /// Summarise repeated denials and cap each credential with these limits.
    pub fn with_limits(mut self, limits: RepeatLimits) -> Self {
        self.limits = limits;
        self
    }
}

/// A connected emitter handle and writer end. `capacity` bounds the records waiting
/// in memory; `summary_every` is the Produce/Fetch summary window.
pub fn channel(capacity: usize, summary_every: Duration) -> (Auditor, Receiver) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let dropped = Arc::new(AtomicU64::new(0));
    (
        Auditor {
            tx: Some(tx),
            dropped: dropped.clone(),
            summary_every,
        },
        Receiver {
            rx,
            dropped,
            summary_every,
            limits: RepeatLimits::default(),
        },
    )
}

impl Auditor {
    /// A handle that records nothing (audit switched off, unit tests).
    pub fn disabled() -> Self {
        Auditor {
            tx: None,
            dropped: Arc::new(AtomicU64::new(0)),
            summary_every: Duration::from_secs(60),
        }
    }

    /// Whether records go anywhere (emitters skip building them when not).
    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// How often connections should hand over their counts.
    pub fn summary_every(&self) -> Duration {
        self.summary_every
    }

    /// Queue a record.
    pub fn record(&self, e: CloudEvent) {
        if let Some(tx) = &self.tx {
            if tx.try_send(Input::Event(Box::new(e))).is_err() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                metrics::counter!(keygate_metrics::AUDIT_DROPPED).increment(1);
            }
        }
    }

    /// Hand over a connection's Produce/Fetch counts.
    pub fn usage(&self, b: UsageBatch) {
        if let Some(tx) = &self.tx {
            if tx.try_send(Input::Usage(b)).is_err() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                metrics::counter!(keygate_metrics::AUDIT_DROPPED).increment(1);
            }
        }
    }

    /// Write everything queued so far, and the current summary window, before
    /// returning (a clean shutdown). Waits for queue space rather than dropping.
    pub async fn flush(&self) {
        if let Some(tx) = &self.tx {
            let (done, wait) = tokio::sync::oneshot::channel();
            if tx.send(Input::Flush(done)).await.is_ok() {
                let _ = wait.await;
            }
        }
    }

    /// Records dropped under overload since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

const BATCH: usize = 1000;

/// Write queued records to the audit table in batches, and close summary windows.
/// `source` is the CRN pipeline records come from (the organization). Returns when
/// every [`Auditor`] is gone, after writing what was queued.
pub async fn run_writer(mut r: Receiver, log: Arc<dyn AuditLog>, source: String) {
    let mut totals = Totals::new(chrono::Utc::now());
    let mut repeats = Repeats::new(r.limits, chrono::Utc::now());
    let close = |totals: &mut Totals, repeats: &mut Repeats| {
        let now = chrono::Utc::now();
        let mut out = totals.close(now);
        out.extend(repeats.close(now, &source));
        out
    };
    let mut window = tokio::time::interval(r.summary_every);
    window.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    window.tick().await;
    let mut reported_drops = 0u64;
    let mut batch: Vec<CloudEvent> = Vec::new();
    let mut waiters = Vec::new();
    let mut open = true;
    let queued = metrics::gauge!(keygate_metrics::AUDIT_QUEUED);
    let written = metrics::counter!(keygate_metrics::AUDIT_WRITTEN);
    while open {
        queued.set(r.rx.len() as f64);
        tokio::select! {
            got = r.rx.recv() => match got {
                Some(i) => {
                    let mut i = Some(i);
                    while let Some(input) = i.take() {
                        match input {
                            Input::Event(e) => batch.extend(repeats.admit(*e)),
                            Input::Usage(u) => totals.add(u),
                            Input::Flush(done) => {
                                batch.extend(close(&mut totals, &mut repeats));
                                waiters.push(done);
                            }
                        }
                        if batch.len() < BATCH && waiters.is_empty() {
                            i = r.rx.try_recv().ok();
                        }
                    }
                }
                None => {
                    open = false;
                    batch.extend(close(&mut totals, &mut repeats));
                }
            },
            _ = window.tick() => batch.extend(close(&mut totals, &mut repeats)),
        }
        let dropped = r.dropped.load(Ordering::Relaxed);
        if dropped > reported_drops {
            batch.push(
                CloudEvent::new(
                    types::AUDIT_PIPELINE,
                    source.clone(),
                    "keygate.audit",
                    "audit.RecordsDropped",
                    source.clone(),
                    chrono::Utc::now(),
                )
                .result(
                    crate::status::FAILURE,
                    Some(format!(
                        "{} audit records dropped because the pipeline was overloaded",
                        dropped - reported_drops
                    )),
                ),
            );
            reported_drops = dropped;
        }
        if batch.is_empty() {
            for w in waiters.drain(..) {
                let _ = w.send(());
            }
            continue;
        }
        let mut delay = Duration::from_millis(100);
        loop {
            match log.append(batch.clone()).await {
                Ok(()) => {
                    written.increment(batch.len() as u64);
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, records = batch.len(), "could not write audit records; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
        batch.clear();
        for w in waiters.drain(..) {
            let _ = w.send(());
        }
    }
}

/// A destination the shipper delivers to.
#[async_trait]
pub trait Sink: Send + 'static {
    /// Deliver records in order; `Ok` only when all are durable at the destination.
    async fn deliver(&mut self, batch: &[(i64, CloudEvent)]) -> Result<(), SinkError>;
}

/// Deliver every record of the audit table to `sink`, from its cursor on, forever.
/// A failed batch is retried (with backoff) until it succeeds: nothing is skipped.
/// When several instances share the log, the one holding the sink's lease ships (the
/// others stand by and take over within [`LEASE`] if it goes away); `holder` names this
/// instance.
pub async fn run_shipper(
    name: String,
    holder: String,
    log: Arc<dyn AuditLog>,
    mut sink: Box<dyn Sink>,
) {
    let mut ticks = log.subscribe();
    let mut cursor = 0;
    let mut leased_at: Option<std::time::Instant> = None;
    let mut delay = Duration::from_millis(200);
    let mut failing = false;
    let shipped = metrics::counter!(keygate_metrics::AUDIT_SHIPPED, "sink" => name.clone());
    let backlog = metrics::gauge!(keygate_metrics::AUDIT_SINK_BACKLOG, "sink" => name.clone());
    loop {
        backlog.set((*ticks.borrow() - cursor).max(0) as f64);
        if leased_at.is_none_or(|t| t.elapsed() >= LEASE / 3) {
            match log.lease(&name, &holder, LEASE).await {
                Ok(true) => {
                    if leased_at.is_none() {
                        // Another instance may have shipped meanwhile: start from the
                        // position it confirmed.
                        match log.cursor(&name).await {
                            Ok(c) => cursor = c,
                            Err(e) => {
                                tracing::warn!(sink = name, error = %e, "could not read the audit sink cursor");
                                tokio::time::sleep(Duration::from_secs(1)).await;
                                continue;
                            }
                        }
                        tracing::info!(sink = name, "shipping audit records from this instance");
                    }
                    leased_at = Some(std::time::Instant::now());
                }
                Ok(false) => {
                    if leased_at.take().is_some() {
                        tracing::info!(sink = name, "another instance ships audit records now");
                    }
                    tokio::time::sleep(LEASE / 6).await;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(sink = name, error = %e, "could not take the audit sink lease");
                    leased_at = None;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
        }
        let batch = match log.read_after(cursor, BATCH as u32).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(sink = name, error = %e, "could not read audit records");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let Some(last) = batch.last().map(|(s, _)| *s) else {
            // Caught up: wait for new records (or poll, in case another process wrote).
            let _ = tokio::time::timeout(Duration::from_secs(1), ticks.changed()).await;
            continue;
        };
        match sink.deliver(&batch).await {
            Ok(()) => {
                if failing {
                    tracing::info!(sink = name, "audit sink delivering again");
                    failing = false;
                }
                delay = Duration::from_millis(200);
                shipped.increment(batch.len() as u64);
                cursor = last;
                while let Err(e) = log.set_cursor(&name, cursor).await {
                    tracing::warn!(sink = name, error = %e, "could not save the audit sink cursor");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(sink = name, error = %e, "audit sink failed; records wait in the outbox");
                    failing = true;
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// Delete records older than `keep` (once every sink in `sinks` has them), every
/// `every`.
pub async fn run_retention(
    log: Arc<dyn AuditLog>,
    keep: Duration,
    sinks: Vec<String>,
    every: Duration,
) {
    loop {
        let before =
            chrono::Utc::now() - chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
        match log.prune(before, &sinks).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(records = n, "audit retention removed old records"),
            Err(e) => tracing::warn!(error = %e, "audit retention failed; will retry"),
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// An in-memory audit table (the store's contract tests cover the real one).
    #[derive(Default)]
    struct Mem {
        rows: Mutex<Vec<CloudEvent>>,
        fail_next: Mutex<u32>,
        tick: Mutex<Option<watch::Sender<i64>>>,
    }

    #[async_trait]
    impl AuditLog for Mem {
        async fn append(&self, events: Vec<CloudEvent>) -> Result<(), SinkError> {
            let mut f = self
                .fail_next
                .lock()
                .map_err(|_| SinkError("lock".into()))?;
            if *f > 0 {
                *f -= 1;
                return Err(SinkError("database is down".into()));
            }
            self.rows
                .lock()
                .map_err(|_| SinkError("lock".into()))?
                .extend(events);
            Ok(())
        }
        async fn read_after(&self, _: i64, _: u32) -> Result<Vec<(i64, CloudEvent)>, SinkError> {
            Ok(Vec::new())
        }
        async fn cursor(&self, _: &str) -> Result<i64, SinkError> {
            Ok(0)
        }
        async fn set_cursor(&self, _: &str, _: i64) -> Result<(), SinkError> {
            Ok(())
        }
        async fn prune(
            &self,
            _: chrono::DateTime<chrono::Utc>,
            _: &[String],
        ) -> Result<u64, SinkError> {
            Ok(0)
        }
        fn subscribe(&self) -> watch::Receiver<i64> {
            let (tx, rx) = watch::channel(0);
            if let Ok(mut t) = self.tick.lock() {
                *t = Some(tx);
            }
            rx
        }
    }

    fn ev(m: &str) -> CloudEvent {
        CloudEvent::new(types::IAM_REQUEST, "s", "x", m, "r", chrono::Utc::now())
    }

    #[tokio::test]
    async fn flush_writes_everything_queued_and_the_open_summary_window() {
        let log = Arc::new(Mem::default());
        *log.fail_next.lock().unwrap_or_else(|e| e.into_inner()) = 2;
        let (a, rx) = channel(100, Duration::from_secs(3600));
        tokio::spawn(run_writer(rx, log.clone(), "org".into()));
        a.record(ev("one"));
        a.record(ev("two"));
        let mut u = crate::usage::ConnectionUsage::new(
            crate::usage::Subject {
                cluster_crn: "c".into(),
                resource_base: "c/kafka=k".into(),
                principal: "User:sa-1".into(),
                mechanism: "SASL_PLAIN",
                identifier: "K".into(),
            },
            Duration::from_secs(3600),
        );
        u.add(crate::usage::Traffic::Produce, "orders", 10);
        a.usage(u.take(true).expect("batch"));
        a.flush().await;
        let rows = log.rows.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let methods: Vec<&str> = rows.iter().map(|e| e.data.method_name.as_str()).collect();
        assert_eq!(
            methods,
            ["one", "two", "kafka.Produce"],
            "in order, after two failed writes"
        );
    }

    #[tokio::test]
    async fn a_full_queue_drops_counts_and_reports() {
        let log = Arc::new(Mem::default());
        let (a, rx) = channel(2, Duration::from_secs(3600));
        for i in 0..5 {
            a.record(ev(&format!("e{i}")));
        }
        assert_eq!(a.dropped(), 3, "the emitter never waits");
        tokio::spawn(run_writer(rx, log.clone(), "org".into()));
        a.flush().await;
        let rows = log.rows.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let last = rows.last().expect("rows");
        assert_eq!(last.data.method_name, "audit.RecordsDropped");
        assert!(last
            .data
            .result
            .message
            .as_deref()
            .unwrap_or("")
            .starts_with("3 audit records dropped"));
        assert!(!Auditor::disabled().enabled());
    }
}
