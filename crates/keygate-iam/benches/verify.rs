//! Key verification in-process with 1,000,000 keys loaded, on one core.
//!
//! Reports verifications/s and per-verification p50/p99, next to two baselines measured
//! in the same run: the timer's own cost, and one bare HMAC-SHA-256 of a secret (the
//! unavoidable work). Run: `cargo bench -p keygate-iam --bench verify`.

use chrono::Utc;
use keygate_core::model::{AccountKind, ApiKey, KeyScope, Organization};
use keygate_core::{KeyId, ResourceKind, Secret};
use keygate_iam::{ScopeCheck, SecretHasher, Snapshot};
use keygate_store::FullState;
use rand::{Rng, SeedableRng};
use std::hint::black_box;
use std::time::Instant;

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() as f64 - 1.0) * p) as usize]
}

fn main() {
    let n: usize = std::env::var("KEYS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let hasher = SecretHasher::new(&[9; 32]);
    let now = Utc::now();
    let t = Instant::now();
    let mut keys = Vec::with_capacity(n);
    let mut creds = Vec::with_capacity(n);
    for i in 0..n {
        let id = KeyId::generate(&mut rng);
        let secret = Secret::generate(&mut rng);
        keys.push(ApiKey {
            id,
            display_name: String::new(),
            description: String::new(),
            owner_id: format!("sa-{i:08}"),
            owner_kind: AccountKind::ServiceAccount,
            scope: KeyScope::Resource {
                kind: ResourceKind::Kafka,
                id: "lkc-bench".into(),
                environment_id: "env-bench".into(),
            },
            secret_hash: hasher.hash(secret.expose()),
            disabled: false,
            expires_at: None,
            last_used_at: None,
            created_at: now,
            updated_at: now,
        });
        creds.push((id, secret));
    }
    let org = Organization {
        id: "org-bench".into(),
        display_name: "b".into(),
        crn_authority: "keygate".into(),
        created_at: now,
    };
    let state = FullState {
        api_keys: keys,
        ..FullState::default()
    };
    let (snap, _) = Snapshot::build(&state, org, hasher.clone());
    drop(state);
    println!("loaded {n} keys in {:.2} s", t.elapsed().as_secs_f64());

    // Requests arrive with their credentials in a socket buffer, hot in cache; the keys
    // they name are random among the million loaded (cold). Lay the inputs out in order
    // of use so that reading them is sequential, like reading a stream.
    let samples = 1_000_000usize;
    let picks: Vec<usize> = (0..samples).map(|_| rng.gen_range(0..n)).collect();
    let inputs: Vec<(String, Secret)> = picks
        .iter()
        .map(|&i| (creds[i].0.as_str().to_owned(), creds[i].1.clone()))
        .collect();
    let scope = ScopeCheck::Resource(ResourceKind::Kafka, "lkc-bench");

    // Throughput: verifications back to back, one thread.
    let t = Instant::now();
    let mut ok = 0usize;
    for (id, s) in &inputs {
        ok += usize::from(snap.verify(id, s, scope, now).is_ok());
    }
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(ok, samples);
    let per_s = samples as f64 / secs;

    // Latency: each verification timed on its own.
    let mut lat = Vec::with_capacity(samples);
    for (id, s) in &inputs {
        let t = Instant::now();
        black_box(snap.verify(id, s, scope, now).is_ok());
        lat.push(t.elapsed().as_nanos() as u64);
    }
    lat.sort_unstable();

    // Baselines, same run: the timer alone; one HMAC-SHA-256 of a secret.
    let mut timer = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        black_box(());
        timer.push(t.elapsed().as_nanos() as u64);
    }
    timer.sort_unstable();
    let t = Instant::now();
    for (_, s) in &inputs {
        black_box(hasher.hash(s.expose()));
    }
    let hmac_ns = t.elapsed().as_nanos() as f64 / samples as f64;
    let verify_ns = 1e9 / per_s;

    // A wrong secret and an unknown key cost the same as a good one (no timing oracle).
    let wrong = Secret::from_client(Secret::generate(&mut rng).expose().to_owned());
    let t = Instant::now();
    for (id, _) in &inputs[..200_000] {
        black_box(snap.verify(id, &wrong, scope, now).is_err());
    }
    let wrong_ns = t.elapsed().as_nanos() as f64 / 200_000.0;
    let t = Instant::now();
    for _ in 0..200_000 {
        black_box(snap.verify("ZZZZZZZZZZZZZZZZ", &wrong, scope, now).is_err());
    }
    let unknown_ns = t.elapsed().as_nanos() as f64 / 200_000.0;

    println!("verify, {n} keys loaded, 1 thread:");
    println!(
        "  throughput            {:>12.0} verifications/s  (goal >= 1,000,000/s)",
        per_s
    );
    println!(
        "  latency p50 / p99     {:>6} ns / {} ns  (timer alone p50/p99: {} / {} ns)",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        percentile(&timer, 0.5),
        percentile(&timer, 0.99)
    );
    println!(
        "  baseline: one HMAC    {:>12.1} ns; verify/HMAC ratio {:.2}",
        hmac_ns,
        verify_ns / hmac_ns
    );
    println!("  wrong secret          {:>12.1} ns; unknown key {:.1} ns (both do one HMAC; the difference is the cold key entry)", wrong_ns, unknown_ns);
}
