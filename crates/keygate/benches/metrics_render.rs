//! `/metrics` render time with 1,000 Kafka clusters' series, and the client-quota
//! lookup a metered request makes with 10,000 principals under quota — next to
//! baselines measured in the same run (no clusters; a plain HashMap lookup).
//! Run: `cargo bench -p keygate --bench metrics_render`.

use chrono::Utc;
use keygate_core::model::ClientQuota;
use keygate_iam::QuotaTable;
use keygate_metrics::{Decision, KafkaCluster, Stage};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};
use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

const APIS: [(i16, &str); 12] = [
    (0, "Produce"),
    (1, "Fetch"),
    (2, "ListOffsets"),
    (3, "Metadata"),
    (8, "OffsetCommit"),
    (9, "OffsetFetch"),
    (10, "FindCoordinator"),
    (11, "JoinGroup"),
    (12, "Heartbeat"),
    (14, "SyncGroup"),
    (18, "ApiVersions"),
    (19, "CreateTopics"),
];

fn recorder() -> PrometheusRecorder {
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".into()),
            keygate_metrics::SECONDS_BUCKETS,
        )
        .expect("buckets")
        .build_recorder()
}

/// A recorder holding the series `clusters` busy clusters produce.
fn populated(clusters: usize) -> (PrometheusRecorder, Vec<KafkaCluster>) {
    let r = recorder();
    let kept = metrics::with_local_recorder(&r, || {
        keygate_metrics::describe();
        (0..clusters)
            .map(|i| {
                let c = KafkaCluster::new(&format!("lkc-{i:06}"));
                c.open.increment(3.0);
                c.accepted.increment(10);
                c.received.increment(1 << 20);
                c.sent.increment(1 << 20);
                for (key, name) in APIS {
                    c.request(key, &name, Decision::Allowed);
                    c.request(key, &name, Decision::Denied);
                    keygate_metrics::kafka_processing(key, &name, Stage::Request, 0.0001);
                    keygate_metrics::kafka_processing(key, &name, Stage::Response, 0.0001);
                }
                c.closed("client_closed");
                c.closed("auth_failed");
                c.throttled("ingress", 0.5);
                c.throttled("egress", 0.5);
                keygate_metrics::authentication("kafka", "SASL_PLAIN", true);
                c
            })
            .collect()
    });
    (r, kept)
}

fn time_renders(r: &PrometheusRecorder, n: usize) -> (Vec<f64>, usize) {
    let h = r.handle();
    let mut t = Vec::with_capacity(n);
    let mut size = 0;
    for _ in 0..n {
        let s = Instant::now();
        let text = h.render();
        t.push(s.elapsed().as_secs_f64() * 1e3);
        size = text.len();
    }
    t.sort_by(f64::total_cmp);
    (t, size)
}

fn pct(t: &[f64], p: f64) -> f64 {
    t[((t.len() - 1) as f64 * p) as usize]
}

fn main() {
    let (base, _) = populated(0);
    let (b, _) = time_renders(&base, 50);
    let (big, _kept) = populated(1_000);
    let (t, size) = time_renders(&big, 50);
    let series = big
        .handle()
        .render()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .count();
    println!(
        "/metrics render, no clusters (baseline): p50 {:.3} ms, p99 {:.3} ms",
        pct(&b, 0.5),
        pct(&b, 0.99)
    );
    println!(
        "/metrics render, 1,000 clusters ({series} series, {} KiB): p50 {:.1} ms, p99 {:.1} ms",
        size / 1024,
        pct(&t, 0.5),
        pct(&t, 0.99)
    );

    // 10,000 principals under quota on 1,000 clusters (10 each), looked up as the
    // gateway does for every Produce and Fetch.
    let now = Utc::now();
    let quotas: Vec<ClientQuota> = (0..10_000)
        .map(|i| ClientQuota {
            id: format!("cq-{i:06}"),
            display_name: format!("q{i}"),
            description: String::new(),
            cluster_id: format!("lkc-{:06}", i % 1_000),
            environment_id: "env-1".into(),
            principals: vec![format!("sa-{i:06}")],
            ingress_byte_rate: 1 << 20,
            egress_byte_rate: 1 << 20,
            request_rate: None,
            created_at: now,
            updated_at: now,
        })
        .collect();
    let s = Instant::now();
    let table = QuotaTable::build(&quotas);
    let build_ms = s.elapsed().as_secs_f64() * 1e3;
    let names: Vec<(String, String)> = (0..10_000)
        .map(|i| (format!("lkc-{:06}", i % 1_000), format!("sa-{i:06}")))
        .collect();
    let plain: HashMap<&str, u64> = names.iter().map(|(_, p)| (p.as_str(), 1)).collect();
    let rounds = 100;
    let s = Instant::now();
    for _ in 0..rounds {
        for (c, p) in &names {
            black_box(table.limits(c, [p.as_str()]));
        }
    }
    let lookup_ns = s.elapsed().as_nanos() as f64 / (rounds * names.len()) as f64;
    let s = Instant::now();
    for _ in 0..rounds {
        for (_, p) in &names {
            black_box(plain.get(p.as_str()));
        }
    }
    let plain_ns = s.elapsed().as_nanos() as f64 / (rounds * names.len()) as f64;
    println!(
        "quota table, 10,000 principals on 1,000 clusters: built in {build_ms:.1} ms; lookup {lookup_ns:.0} ns (plain HashMap lookup baseline {plain_ns:.0} ns, {:.1}x)",
        lookup_ns / plain_ns
    );

    // What metrics and quota metering add to one Kafka request on the gateway's path,
    // with the recorder installed: counters, two clock reads, the processing
    // histograms, the quota lookup and a bucket behind a mutex (as the gateway's
    // meter is) — against a baseline of the two clock reads alone.
    let (r, kept) = populated(1);
    let c = &kept[0];
    let bucket = std::sync::Mutex::new((0.0f64, Instant::now()));
    let n = 1_000_000u32;
    let per_request = metrics::with_local_recorder(&r, || {
        let s = Instant::now();
        for _ in 0..n {
            let t = Instant::now();
            c.received.increment(16_000);
            c.request(0, &"Produce", Decision::Allowed);
            let limits = table.limits("lkc-000001", ["sa-000001"]);
            if let (Some(l), Ok(mut b)) = (limits, bucket.lock()) {
                b.0 += l.ingress_byte_rate as f64 * 1e-9;
                b.1 = t;
            }
            keygate_metrics::kafka_processing(
                0,
                &"Produce",
                Stage::Request,
                t.elapsed().as_secs_f64(),
            );
            c.sent.increment(100);
            black_box(&c);
        }
        s.elapsed().as_nanos() as f64 / f64::from(n)
    });
    let s = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        black_box(t.elapsed());
    }
    let clocks = s.elapsed().as_nanos() as f64 / f64::from(n);
    println!(
        "per Kafka request, metrics and quota metering: {per_request:.0} ns (baseline: two clock reads {clocks:.0} ns)"
    );
}
