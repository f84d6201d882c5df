//! Scale-out figures on a real PostgreSQL (Debian's server in a temporary directory,
//! fsync on), two parts:
//!
//! 1. Propagation across instances: instance A writes (1,000 changes: key created,
//!    key deleted, alternately), instance B — its own connections, its own LISTEN, its
//!    own follower and snapshot, exactly as in `keygate server` — enforces them. The
//!    latency is from A's acknowledgement to B's snapshot answering the new way. The
//!    baseline, measured in the same run, is the same change seen by A's own snapshot
//!    (the in-process path every single-instance write takes).
//! 2. Snapshot load: 1,000,000 keys, 100,000 service accounts, 1,000,000 ACLs in the
//!    database; the time for an instance to load them and build its snapshot, and the
//!    memory that snapshot holds (resident set growth) and peaked at.
//!
//! Run: `cargo bench -p keygate-iam --bench scaleout` (CHANGES=, KEYS= to scale).

use chrono::Utc;
use keygate_audit::CloudEvent;
use keygate_core::model::{Account, AccountKind, ApiKey, KeyScope};
use keygate_core::KeyId;
use keygate_iam::{Iam, IamConfig, SecretHasher};
use keygate_store::{SqlStore, Store};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn pct(v: &[f64], p: f64) -> f64 {
    v[((v.len() as f64 - 1.0) * p) as usize]
}

fn report(name: &str, mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let (p50, p99) = (pct(&v, 0.5), pct(&v, 0.99));
    println!(
        "  {name:<44} p50 {p50:>8.2} ms  p99 {p99:>8.2} ms  max {:>8.2} ms  (n = {})",
        v[v.len() - 1],
        v.len()
    );
    (p50, p99)
}

/// Resident and peak resident memory of this process, MiB.
fn memory() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn record() -> CloudEvent {
    CloudEvent::new(
        "io.keygate.iam/request",
        "crn://bench",
        "keygate.iam",
        "Bench",
        "crn://bench",
        Utc::now(),
    )
}

fn key(id: KeyId, owner: &str) -> ApiKey {
    let now = Utc::now();
    ApiKey {
        id,
        display_name: String::new(),
        description: String::new(),
        owner_id: owner.into(),
        owner_kind: AccountKind::ServiceAccount,
        scope: KeyScope::Cloud,
        secret_hash: [3; 32],
        disabled: false,
        expires_at: None,
        last_used_at: None,
        created_at: now,
        updated_at: now,
    }
}

async fn propagation(url: &str, hasher: &SecretHasher, changes: usize) {
    let a_store = Arc::new(SqlStore::connect_postgres(url).await.expect("A"));
    Iam::bootstrap(a_store.as_ref(), hasher, "bench", "admin@bench", "keygate")
        .await
        .expect("bootstrap");
    let a = Iam::open(a_store.clone(), hasher.clone(), IamConfig::default())
        .await
        .expect("A");
    let b_store = Arc::new(SqlStore::connect_postgres(url).await.expect("B"));
    let b = Iam::open(b_store, hasher.clone(), IamConfig::default())
        .await
        .expect("B");
    tokio::spawn(a.follower().clone().run(Duration::from_secs(1)));
    tokio::spawn(b.follower().clone().run(Duration::from_secs(1)));
    let now = Utc::now();
    a_store
        .create_account(
            Account {
                id: "sa-prop".into(),
                kind: AccountKind::ServiceAccount,
                display_name: "prop".into(),
                description: String::new(),
                email: String::new(),
                auth_type: String::new(),
                created_at: now,
                updated_at: now,
            },
            &record(),
        )
        .await
        .expect("sa");
    let mut rng = rand::thread_rng();
    let (mut cross, mut local) = (Vec::new(), Vec::new());
    for _ in 0..changes / 2 {
        let id = KeyId::generate(&mut rng);
        for present in [true, false] {
            if present {
                a_store
                    .create_api_key(key(id, "sa-prop"), u32::MAX, &record())
                    .await
                    .expect("create");
            } else {
                a_store
                    .delete_api_key(&id, &record())
                    .await
                    .expect("delete");
            }
            let acked = Instant::now();
            let (mut seen_a, mut seen_b) = (None, None);
            let limit = acked + Duration::from_secs(10);
            while seen_a.is_none() || seen_b.is_none() {
                assert!(Instant::now() < limit, "change never arrived");
                if seen_a.is_none() && (a.snapshot().key(id.as_str()).is_some() == present) {
                    seen_a = Some(acked.elapsed());
                }
                if seen_b.is_none() && (b.snapshot().key(id.as_str()).is_some() == present) {
                    seen_b = Some(acked.elapsed());
                }
                tokio::time::sleep(Duration::from_micros(100)).await;
            }
            local.push(seen_a.unwrap_or_default().as_secs_f64() * 1e3);
            cross.push(seen_b.unwrap_or_default().as_secs_f64() * 1e3);
        }
    }
    println!(
        "Propagation of {} changes (key created / deleted on A), from A's acknowledgement:",
        cross.len()
    );
    let (l50, l99) = report("A's own snapshot (baseline, in-process)", local);
    let (c50, c99) = report("B's snapshot (other instance, NOTIFY)", cross);
    println!(
        "  cross-instance minus in-process: p50 {:+.2} ms, p99 {:+.2} ms (goal: p50 <= 100 ms, p99 <= 1000 ms)",
        c50 - l50,
        c99 - l99
    );
}

async fn load(pg: &keygate_testkit::PgServer, hasher: &SecretHasher, keys: usize) {
    let url = pg.create_database("load");
    let store = Arc::new(SqlStore::connect_postgres(&url).await.expect("store"));
    Iam::bootstrap(store.as_ref(), hasher, "bench", "admin@bench", "keygate")
        .await
        .expect("bootstrap");
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("raw");
    tokio::spawn(conn);
    let (sas, acls) = (keys / 10, keys);
    let t = Instant::now();
    client
        .batch_execute(&format!(
            "INSERT INTO environments VALUES ('env-bench', 'bench', 1, 1);
             INSERT INTO resources (key, id, kind, environment_id, display_name, upstream, created_at, updated_at, gateway_slot)
               VALUES ('lkc-bench', 'lkc-bench', 'kafka', 'env-bench', 'bench', '127.0.0.1:9092', 1, 1, 0);
             INSERT INTO accounts (id, kind, display_name, description, email, auth_type, created_at, updated_at)
               SELECT 'sa-b' || i, 'service-account', 'bench-' || i, '', '', '', 1, 1 FROM generate_series(1, {sas}) i;
             INSERT INTO api_keys (id, display_name, description, owner_id, owner_kind, resource_key, resource_kind,
                 resource_id, environment_id, secret_hash, disabled, expires_at, last_used_at, created_at, updated_at)
               SELECT 'K' || lpad(i::text, 15, '0'), '', '', 'sa-b' || (1 + i % {sas}), 'service-account', 'lkc-bench',
                 'kafka', 'lkc-bench', 'env-bench', decode(md5(i::text) || md5(i::text), 'hex'), false, NULL, NULL, 1, 1
               FROM generate_series(1, {keys}) i;
             INSERT INTO acls (id, cluster_id, principal, resource_type, resource_name, pattern_type, operation, permission, created_at)
               SELECT 'acl-' || i, 'lkc-bench', 'User:sa-b' || (1 + i % {sas}), 'TOPIC', 'topic-' || i, 'LITERAL', 'WRITE', 'ALLOW', 1
               FROM generate_series(1, {acls}) i;
             ANALYZE;"
        ))
        .await
        .expect("populate");
    println!(
        "Snapshot load ({keys} keys, {sas} service accounts, {acls} ACLs; populated in {:.1} s):",
        t.elapsed().as_secs_f64()
    );
    let reader = Arc::new(SqlStore::connect_postgres(&url).await.expect("reader"));
    let t = Instant::now();
    let state = reader.load_all().await.expect("load_all");
    let read = t.elapsed();
    println!(
        "  read everything (one REPEATABLE READ transaction)  {:>7.2} s ({} keys, {} ACLs)",
        read.as_secs_f64(),
        state.api_keys.len(),
        state.acls.len()
    );
    drop(state);
    let (rss0, _) = memory();
    let t = Instant::now();
    let iam = Iam::open(reader.clone(), hasher.clone(), IamConfig::default())
        .await
        .expect("open");
    let open = t.elapsed();
    let (rss1, peak) = memory();
    assert_eq!(iam.snapshot().key_count(), keys + 1);
    println!(
        "  instance start: read + build snapshot             {:>7.2} s (build alone ~{:.2} s)",
        open.as_secs_f64(),
        (open.as_secs_f64() - read.as_secs_f64()).max(0.0)
    );
    println!(
        "  snapshot memory (resident growth)                 {:>7.0} MiB; process peak {:.0} MiB",
        rss1 - rss0,
        peak
    );
}

fn main() {
    let changes = env("CHANGES", 1000);
    let keys = env("KEYS", 1_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let pg = keygate_testkit::PgServer::start(true);
    let hasher = SecretHasher::new(&[5; 32]);
    rt.block_on(async {
        let url = pg.create_database("propagation");
        propagation(&url, &hasher, changes).await;
        load(&pg, &hasher, keys).await;
    });
}
