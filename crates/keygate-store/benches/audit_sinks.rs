//! Audit records per second the pipeline sustains into each sink, end to end with the
//! real pieces: emitters → `Auditor` → writer → SQLite audit table (the database sink
//! and outbox) → shipper → JSON-lines file / Kafka topic (confirmed, cursor saved).
//!
//! `cargo bench -p keygate-store --bench audit_sinks` measures the database and file
//! sinks; with `KEYGATE_BENCH_KAFKA=host:port` (scripts/bench-audit starts a Tansu
//! broker) also the Kafka sink. `KEYGATE_BENCH_RECORDS` sets the count (default 200000).

use keygate_audit::pipeline::{run_shipper, run_writer};
use keygate_audit::{types, AuditLog, AuthorizationInfo, CloudEvent};
use keygate_store::{SqlStore, Store, StoreAuditLog};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn record(i: usize) -> CloudEvent {
    let cluster =
        "crn://keygate/organization=org-bench/environment=env-bench/cloud-cluster=lkc-bench";
    CloudEvent::new(
        types::KAFKA_AUTHORIZATION,
        cluster,
        cluster,
        "kafka.Produce",
        format!("{cluster}/kafka=lkc-bench/topic=t{}", i % 50),
        chrono::Utc::now(),
    )
    .who(
        Some(format!("User:sa-{}", i % 100)),
        Some("SASL_PLAIN"),
        Some("ABCDEFGHIJKLMNOP".into()),
    )
    .authorization(AuthorizationInfo {
        granted: false,
        operation: "WRITE".into(),
        resource_type: "Topic".into(),
        resource_name: format!("t{}", i % 50),
        pattern_type: Some("LITERAL".into()),
        ..Default::default()
    })
    .request(Some(i as i32), Some("bench-client".into()))
    .client_address(Some("127.0.0.1:50000".into()))
}

async fn wait_cursor(log: &dyn AuditLog, sink: &str, last: i64) {
    while log.cursor(sink).await.unwrap_or(0) < last {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn main() {
    let n: usize = std::env::var("KEYGATE_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn Store> =
            Arc::new(SqlStore::open_sqlite(&dir.path().join("bench.db")).expect("open"));
        let log: Arc<dyn AuditLog> = Arc::new(StoreAuditLog(store.clone()));
        let size = record(0).to_json().len();
        println!("{n} records of {size} bytes (a denied Produce)");

        // Database: emit as fast as the queue takes them; done when all are stored.
        let (auditor, rx) = keygate_audit::channel(n + 16, Duration::from_secs(3600));
        let writer = tokio::spawn(run_writer(rx, log.clone(), "bench".into()));
        let start = Instant::now();
        for i in 0..n {
            auditor.record(record(i));
        }
        drop(auditor);
        writer.await.expect("writer");
        let db = start.elapsed();
        let last_seq = *store.subscribe_audit().borrow();
        assert_eq!(last_seq as usize, n, "every record stored");
        println!(
            "database (SQLite, WAL, synchronous=FULL, batches of 1000): {:>9.0} records/s",
            n as f64 / db.as_secs_f64()
        );

        // File: ship the whole table; done when the cursor reaches the end.
        let file = dir.path().join("audit.jsonl");
        let sink = keygate_audit::file::FileSink::new(file, 100 * 1024 * 1024, 5);
        let start = Instant::now();
        let h = tokio::spawn(run_shipper(
            "file".into(),
            "bench".into(),
            log.clone(),
            Box::new(sink),
        ));
        wait_cursor(log.as_ref(), "file", last_seq).await;
        let f = start.elapsed();
        h.abort();
        println!(
            "JSON-lines file (fsync per batch of 1000):               {:>9.0} records/s",
            n as f64 / f.as_secs_f64()
        );

        // Kafka: a real producer to a real broker, acks=all.
        match std::env::var("KEYGATE_BENCH_KAFKA") {
            Err(_) => println!("Kafka topic: skipped (set KEYGATE_BENCH_KAFKA=host:port)"),
            Ok(bootstrap) => {
                let sink =
                    keygate_audit::kafka::KafkaSink::new(keygate_audit::kafka::KafkaSinkConfig {
                        bootstrap,
                        topic: "keygate-audit-bench".into(),
                        partitions: 3,
                        extra: Vec::new(),
                        timeout: Duration::from_secs(30),
                    })
                    .expect("kafka sink");
                let start = Instant::now();
                let h = tokio::spawn(run_shipper(
                    "kafka".into(),
                    "bench".into(),
                    log.clone(),
                    Box::new(sink),
                ));
                wait_cursor(log.as_ref(), "kafka", last_seq).await;
                let k = start.elapsed();
                h.abort();
                println!(
                    "Kafka topic (acks=all, 1 in flight, batches of 1000):   {:>9.0} records/s",
                    n as f64 / k.as_secs_f64()
                );
            }
        }
    });
}
