//! REST create-key latency over 10,000 creates (release build of the real server, one
//! keep-alive client on loopback), on SQLite and on PostgreSQL (Debian's server in a
//! temporary directory, fsync on) in the same run, each with two baselines: an
//! unauthenticated GET /healthz (transport floor) and an authenticated read.
//! Run: `cargo bench -p keygate --bench rest_create_key` (CREATES=n to change n).

use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

fn pct(v: &[f64], p: f64) -> f64 {
    v[((v.len() as f64 - 1.0) * p) as usize]
}

fn summary(name: &str, mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let (p50, p99) = (pct(&v, 0.5), pct(&v, 0.99));
    println!(
        "  {name:<34} p50 {p50:>7.3} ms  p99 {p99:>7.3} ms  (n = {})",
        v.len()
    );
    (p50, p99)
}

fn main() {
    let n: usize = std::env::var("CREATES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let sqlite = run("SQLite (WAL, synchronous=FULL)", &[], n);
    let pg = keygate_testkit::PgServer::start(true);
    let url = pg.create_database("bench");
    let postgres = run(
        "PostgreSQL (fsync on, one instance)",
        &["--database".to_owned(), url],
        n,
    );
    println!(
        "PostgreSQL / SQLite create-key: p50 ratio {:.2}, p99 ratio {:.2}",
        postgres.0 / sqlite.0,
        postgres.1 / sqlite.1
    );
}

/// One server, one client: returns create-key (p50, p99) in ms.
fn run(label: &str, extra: &[String], n: usize) -> (f64, f64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_keygate"))
        .args([
            "server",
            "--listen",
            "127.0.0.1:0",
            "--http-gateway-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .args(["--max-keys-per-owner", "1000000"])
        .args(extra)
        .current_dir(dir.path())
        .env("KEYGATE_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start server");
    // Read the startup lines, then keep draining stdout: a closed pipe would make the
    // server's next line fail (EPIPE) and end it.
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        let (mut key, mut secret) = (String::new(), String::new());
        let mut sent = false;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(k) = line.trim().strip_prefix("API key:") {
                key = k.trim().to_owned();
            } else if let Some(s) = line.trim().strip_prefix("API secret:") {
                secret = s.trim().to_owned();
            } else if let Some(u) = line.strip_prefix("keygate is listening on ") {
                if !sent {
                    let _ = tx.send((key.clone(), secret.clone(), u.trim().to_owned()));
                    sent = true;
                }
            }
        }
    });
    let (key, secret, url) = rx.recv().expect("the server started");
    use base64::Engine;
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{key}:{secret}"))
    );
    let agent = ureq::AgentBuilder::new().build();
    let sa: serde_json::Value = agent
        .post(&format!("{url}/iam/v2/service-accounts"))
        .set("Authorization", &auth)
        .send_json(json!({"display_name": "bench"}))
        .expect("create sa")
        .into_json()
        .expect("json");
    let sa = sa["id"].as_str().expect("sa id").to_owned();
    let time = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        t.elapsed().as_secs_f64() * 1e3
    };
    let mut health = Vec::new();
    let mut reads = Vec::new();
    for _ in 0..2_000 {
        health.push(time(&mut || {
            agent
                .get(&format!("{url}/healthz"))
                .call()
                .expect("healthz");
        }));
        reads.push(time(&mut || {
            agent
                .get(&format!("{url}/iam/v2/service-accounts/{sa}"))
                .set("Authorization", &auth)
                .call()
                .expect("read");
        }));
    }
    let mut creates = Vec::with_capacity(n);
    let t = Instant::now();
    for _ in 0..n {
        creates.push(time(&mut || {
            let r = agent
                .post(&format!("{url}/iam/v2/api-keys"))
                .set("Authorization", &auth)
                .send_json(json!({"spec": {"owner": {"id": sa}, "resource": {"id": "CLOUD"}}}))
                .expect("create key");
            assert_eq!(r.status(), 202);
        }));
    }
    let wall = t.elapsed().as_secs_f64();
    println!("REST on {label}, one client, loopback:");
    let (h50, _) = summary("GET /healthz (baseline)", health);
    let (r50, _) = summary("GET service account (auth baseline)", reads);
    let (c50, c99) = summary(&format!("POST /iam/v2/api-keys x {n}"), creates);
    println!(
        "  creates/s {:.0}; create/healthz p50 ratio {:.1}; create/read p50 ratio {:.1}",
        n as f64 / wall,
        c50 / h50,
        c50 / r50
    );
    let _ = child.kill();
    let _ = child.wait();
    (c50, c99)
}
