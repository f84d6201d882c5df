//! Scale-out: two keygate processes on one real PostgreSQL (Debian's, started in a
//! temporary directory), each with its own gateway in front of the same Tansu broker.
//! Every change made through one instance must be enforced by the other within a
//! second; a crash loses nothing acknowledged; a database outage is ridden out.

use crate::gateway::{free_ports, kcat_at, kcat_consumer, wait_for_port, Tansu};
use crate::harness::{Api, Server};
use keygate_testkit::PgServer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Two instances (A bootstraps the organization; B joins with A's pepper).
struct Pair {
    a: Server,
    b: Server,
    /// Kept alive for the life of the pair.
    _dirs: (tempfile::TempDir, tempfile::TempDir),
    _tansu: Tansu,
    admin_a: Api,
    admin_b: Api,
    lkc: String,
    /// Gateway bootstrap addresses of A and B.
    boot_a: String,
    boot_b: String,
}

fn instance(
    dir: &std::path::Path,
    url: &str,
    base: u16,
    pepper: &std::path::Path,
    extra: &[&str],
) -> Server {
    let mut args = vec![
        "--database".to_owned(),
        url.to_owned(),
        "--gateway-port-base".to_owned(),
        base.to_string(),
        "--pepper-file".to_owned(),
        pepper.display().to_string(),
        "--max-keys-per-owner".to_owned(),
        "100000".to_owned(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start_in(dir, &args)
}

fn pair(url: String, b_extra: &[&str]) -> Pair {
    let tansu = Tansu::start(&["orders"]);
    let (a_dir, b_dir) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let pepper = a_dir.path().join("pepper.key");
    let (base_a, base_b) = (free_ports(4), free_ports(4));
    let a = instance(a_dir.path(), &url, base_a, &pepper, &[]);
    assert!(a.creds.is_some(), "A bootstraps the organization");
    let b = instance(b_dir.path(), &url, base_b, &pepper, b_extra);
    assert!(b.creds.is_none(), "B joins the existing organization");
    let admin_a = a.admin();
    let (k, s) = a.creds.clone().expect("creds");
    let admin_b = b.api(&k, &s);
    let env = admin_a.env("prod");
    let c = admin_a.ok(
        admin_a.post(
            "/cmk/v2/clusters",
            json!({"spec":{"display_name":"main","environment":{"id":env},"upstream":format!("127.0.0.1:{}", tansu.port)}}),
        ),
        202,
    );
    let lkc = c["id"].as_str().expect("lkc").to_owned();
    wait_for_port(base_a);
    // B opens its listener for the cluster registered through A.
    wait_for_port(base_b);
    Pair {
        a,
        b,
        _dirs: (a_dir, b_dir),
        _tansu: tansu,
        admin_a,
        admin_b,
        lkc,
        boot_a: format!("127.0.0.1:{base_a}"),
        boot_b: format!("127.0.0.1:{base_b}"),
    }
}

impl Pair {
    /// A service account with a key for the cluster and these ACLs, made through `api`.
    fn app(&self, api: &Api, name: &str, ops: &[&str]) -> (String, String, String) {
        let sa = api.sa(name);
        let (k, s) = api.key(&sa, &self.lkc);
        let data: Vec<_> = ops
            .iter()
            .map(|op| json!({"resource_type":"TOPIC","resource_name":"orders","pattern_type":"LITERAL","principal":format!("User:{sa}"),"operation":op,"permission":"ALLOW"}))
            .collect();
        api.ok(
            api.post(
                &format!("/kafka/v3/clusters/{}/acls:batch", self.lkc),
                json!({"data": data}),
            ),
            201,
        );
        (sa, k, s)
    }
}

fn producer(bootstrap: &str, key: &str, secret: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanism", "PLAIN")
        .set("sasl.username", key)
        .set("sasl.password", secret)
        .set("enable.idempotence", "false")
        .set("message.timeout.ms", "5000")
        .create()
        .expect("producer")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Retry `f` every 20 ms until it holds; how long that took (panics after `limit`).
fn within(limit: Duration, what: &str, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if f() {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn changes_made_on_one_instance_are_enforced_by_the_other() {
    let p = pair(PgServer::fresh_database("pair"), &[]);

    // A key created on A authenticates at B.
    let (_, k, s) = p.app(&p.admin_a, "orders-app", &["WRITE", "READ", "DESCRIBE"]);
    // (B learns of it by NOTIFY, or its 1 s poll: retried for a loaded test machine.)
    within(
        Duration::from_secs(10),
        "a key created on A works at B",
        || kcat_at(&p.boot_b, &k, &s, &["-P", "-t", "orders"], Some("via-b\n")).0,
    );

    // An ACL removed on B denies on A's already-open connection.
    let rt = runtime();
    let prod = producer(&p.boot_a, &k, &s);
    rt.block_on(async {
        prod.send(
            FutureRecord::<(), _>::to("orders").payload("open"),
            Duration::from_secs(10),
        )
        .await
        .unwrap_or_else(|(e, _)| panic!("produce through A: {e}"));
    });
    let acls = p.admin_b.get(&format!(
        "/kafka/v3/clusters/{}/acls?resource_type=TOPIC&resource_name=orders&operation=WRITE",
        p.lkc
    ));
    assert_eq!(acls.0, 200, "{:?}", acls.1);
    let removed_at = Instant::now();
    let del = p.admin_b.delete(&format!(
        "/kafka/v3/clusters/{}/acls?resource_type=TOPIC&resource_name=orders&pattern_type=LITERAL&operation=WRITE&permission=ALLOW",
        p.lkc
    ));
    assert_eq!(del.0, 200, "{:?}", del.1);
    let took = within(
        Duration::from_secs(3),
        "A denies after B removed the ACL",
        || {
            rt.block_on(async {
                matches!(
                    prod.send(
                        FutureRecord::<(), _>::to("orders").payload("x"),
                        Duration::from_secs(5)
                    )
                    .await,
                    Err((
                        KafkaError::MessageProduction(RDKafkaErrorCode::TopicAuthorizationFailed),
                        _
                    ))
                )
            })
        },
    );
    assert!(
        removed_at.elapsed() < Duration::from_secs(2),
        "denied only after {took:?}"
    );

    // A key deleted on A closes B's live consumer.
    let (_, k2, s2) = p.app(&p.admin_b, "reader", &["READ", "DESCRIBE"]);
    let mut consumer = kcat_consumer(&p.boot_b, &k2, &s2, "orders");
    // Let it connect, authenticate and read (it keeps its connections open).
    std::thread::sleep(Duration::from_millis(2000));
    let before = p.b.logs().matches("credential revoked").count();
    let deleted_at = Instant::now();
    assert_eq!(p.admin_a.delete(&format!("/iam/v2/api-keys/{k2}")).0, 204);
    let closed = within(
        Duration::from_secs(3),
        "B closed the deleted key's consumer",
        || p.b.logs().matches("credential revoked").count() > before,
    );
    let _ = consumer.kill();
    let out = consumer.wait_with_output().expect("output");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("via-b"),
        "the consumer read before"
    );
    assert!(
        closed < Duration::from_secs(1) + Duration::from_millis(200),
        "closed {closed:?} after the deletion ({:?})",
        deleted_at.elapsed()
    );
    drop(p);
}

#[test]
fn killing_an_instance_mid_burst_loses_nothing_it_acknowledged() {
    let mut p = pair(PgServer::fresh_database("burst"), &[]);
    let sa = p.admin_a.sa("burst-owner");
    let acked = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let attempts = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (api, sa, lkc) = (p.admin_a.clone(), sa.clone(), p.lkc.clone());
            let (acked, stop, attempts) = (acked.clone(), stop.clone(), attempts.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    attempts.fetch_add(1, Ordering::Relaxed);
                    let res = ureq::AgentBuilder::new()
                        .timeout(Duration::from_secs(10))
                        .build()
                        .post(&format!("{}/iam/v2/api-keys", api.url))
                        .set(
                            "Authorization",
                            &crate::harness::base64_basic(&api.key, &api.secret),
                        )
                        .send_json(json!({"spec":{"owner":{"id":sa},"resource":{"id":lkc}}}));
                    let (code, body): (u16, serde_json::Value) = match res {
                        Ok(r) => (r.status(), r.into_json().unwrap_or_default()),
                        Err(ureq::Error::Status(c, r)) => (c, r.into_json().unwrap_or_default()),
                        // The server died under this request: not acknowledged.
                        Err(_) => (0, serde_json::Value::Null),
                    };
                    if code == 202 {
                        let id = body["id"].as_str().expect("id").to_owned();
                        let secret = body["spec"]["secret"].as_str().expect("secret").to_owned();
                        acked.lock().expect("lock").push((id, secret));
                    } else if code == 0 {
                        break;
                    } else {
                        panic!("unexpected {code}: {body}");
                    }
                }
            })
        })
        .collect();
    within(Duration::from_secs(30), "the burst is under way", || {
        acked.lock().expect("lock").len() >= 60
    });
    let _ = p.a.child.kill(); // SIGKILL, mid-request for some of the workers
    let _ = p.a.child.wait();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    let acked = acked.lock().expect("lock").clone();
    let listed: std::collections::HashSet<String> = p
        .admin_b
        .all(&format!("/iam/v2/api-keys?spec.owner={sa}"))
        .iter()
        .map(|k| k["id"].as_str().expect("id").to_owned())
        .collect();
    let lost: Vec<_> = acked
        .iter()
        .filter(|(id, _)| !listed.contains(id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged keys lost: {lost:?}",
        lost.len()
    );
    assert!(
        attempts.load(Ordering::Relaxed) > acked.len(),
        "some requests were in flight when A died"
    );
    // And they work at B's gateway (the secret hashes survived with the pepper).
    let (id, secret) = acked.last().expect("one");
    let (ok, out) = kcat_at(&p.boot_b, id, secret, &["-L"], None);
    assert!(ok, "{out}");
}

#[test]
fn a_database_outage_is_ridden_out_and_caught_up() {
    // Its own server: this test stops it.
    let pg = PgServer::start(false);
    let url = pg.create_database("outage");
    // B may go stale sooner than A: A keeps the default (5 minutes).
    let p = pair(url, &["--max-staleness-s", "4"]);
    let (_, k, s) = p.app(&p.admin_a, "steady", &["WRITE", "DESCRIBE"]);
    let (ok, out) = kcat_at(&p.boot_b, &k, &s, &["-P", "-t", "orders"], Some("pre\n"));
    assert!(ok, "{out}");

    // Producers through both gateways, each message a new connection and a new
    // authentication, for the whole test.
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let sent = Arc::new(AtomicUsize::new(0));
    let spawn_producer = |boot: String| {
        let (stop, failures, sent, k, s) = (
            stop.clone(),
            failures.clone(),
            sent.clone(),
            k.clone(),
            s.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let (ok, out) = kcat_at(&boot, &k, &s, &["-P", "-t", "orders"], Some("during\n"));
                if ok {
                    sent.fetch_add(1, Ordering::Relaxed);
                } else {
                    failures.lock().expect("lock").push(out);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let producers = vec![spawn_producer(p.boot_a.clone())];
    std::thread::sleep(Duration::from_millis(500));

    let outage_start = chrono::Utc::now();
    pg.stop();
    let stopped = Instant::now();
    // Control-plane writes: 503 with Retry-After; readiness: not ready.
    let (code, body) = p.admin_a.post(
        "/iam/v2/service-accounts",
        json!({"display_name":"during-outage"}),
    );
    assert_eq!(code, 503, "{body}");
    let resp = ureq::get(&format!("{}/readyz", p.a.url)).call();
    assert!(
        matches!(resp, Err(ureq::Error::Status(503, _))),
        "A not ready while the database is down"
    );
    let retry = ureq::post(&format!("{}/iam/v2/service-accounts", p.a.url))
        .set(
            "Authorization",
            &crate::harness::base64_basic(&p.admin_a.key, &p.admin_a.secret),
        )
        .send_json(json!({"display_name":"during-outage"}));
    match retry {
        Err(ureq::Error::Status(503, r)) => {
            assert!(r.header("retry-after").is_some(), "Retry-After")
        }
        other => panic!("expected 503, got {other:?}"),
    }
    // Within B's staleness window, B still authenticates new connections.
    let (ok, out) = kcat_at(
        &p.boot_b,
        &k,
        &s,
        &["-P", "-t", "orders"],
        Some("b-within\n"),
    );
    assert!(ok, "B within its staleness window: {out}");
    // Past it, B refuses new authentications and says why; A (5 min) goes on.
    while stopped.elapsed() < Duration::from_secs(6) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let (ok, _) = kcat_at(&p.boot_b, &k, &s, &["-L"], None);
    assert!(
        !ok,
        "B past its maximum staleness refuses new authentications"
    );
    assert!(
        p.b.logs().contains("refusing new authentications"),
        "B logs why it refuses:\n{}",
        p.b.logs()
    );
    pg.start_again();
    let back = Instant::now();

    // Catch-up without a restart: ready again, B authenticates again, and a change made
    // on B is enforced on A.
    within(Duration::from_secs(15), "A ready again", || {
        ureq::get(&format!("{}/readyz", p.a.url)).call().is_ok()
    });
    within(Duration::from_secs(15), "B authenticates again", || {
        kcat_at(&p.boot_b, &k, &s, &["-L"], None).0
    });
    let (_, k3, s3) = p.app(&p.admin_b, "after-outage", &["WRITE", "DESCRIBE"]);
    within(
        Duration::from_secs(5),
        "a key made on B after the outage works at A",
        || {
            kcat_at(
                &p.boot_a,
                &k3,
                &s3,
                &["-P", "-t", "orders"],
                Some("after\n"),
            )
            .0
        },
    );
    stop.store(true, Ordering::Relaxed);
    for t in producers {
        t.join().expect("producer");
    }
    let failures = failures.lock().expect("lock").clone();
    assert!(
        failures.is_empty(),
        "false denials at A during the outage: {failures:?}"
    );
    assert!(sent.load(Ordering::Relaxed) > 5, "A kept producing");

    // Audit records produced during the outage reached the database afterwards.
    let since = crate::cli_enc(&outage_start.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
    within(
        Duration::from_secs(20),
        "outage-time audit records in the database",
        || {
            let (code, body) = p.admin_a.get(&format!(
                "/audit/v1/events?method=kafka.Authentication&start_time={since}&page_size=100"
            ));
            code == 200
                && body["data"].as_array().is_some_and(|d| {
                    d.iter().any(|e| {
                        e["time"].as_str().is_some_and(|t| {
                            chrono::DateTime::parse_from_rfc3339(t).is_ok_and(|t| {
                                t < outage_start
                                    + chrono::Duration::from_std(back - stopped).unwrap_or_default()
                            })
                        })
                    })
                })
        },
    );
    drop(p);
    drop(pg);
}
