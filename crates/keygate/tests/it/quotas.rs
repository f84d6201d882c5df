//! Client quotas: the REST API in the hosted shapes, the CLI's verbs, and the gateway
//! throttling real clients (confluent-kafka, kafka-python) on Tansu as a broker does.

use crate::gateway::world;
use crate::harness::CliEnv;
use crate::metrics::{scrape, value};
use serde_json::{json, Value};
use std::process::Command;

/// 256 KiB/s: well below what the gateway and Tansu carry here, so the quota, not
/// the machine, sets the rate.
const RATE: u64 = 262_144;

fn quota_spec(cluster: &str, env: &str, principals: &[&str]) -> Value {
    json!({"spec": {
        "display_name": "metered", "description": "test",
        "throughput": {"ingress_byte_rate": RATE.to_string(), "egress_byte_rate": RATE.to_string()},
        "cluster": {"id": cluster}, "environment": {"id": env},
        "principals": principals.iter().map(|p| json!({"id": p})).collect::<Vec<_>>(),
    }})
}

fn quotas_py(mode: &str, env: &[(&str, &str)]) -> (bool, String) {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let out = Command::new(format!("{root}/.venv/bin/python"))
        .arg(format!("{root}/tests/python/quotas.py"))
        .arg(mode)
        .envs(env.iter().copied())
        .output()
        .expect("the test virtualenv (scripts/test creates .venv)");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn client_quotas_round_trip_in_the_hosted_shapes() {
    let w = world(&[], "");
    let a = w.admin.sa("quota-a");
    let b = w.admin.sa("quota-b");
    let base = "/kafka-quotas/v1/client-quotas";
    let q = w
        .admin
        .ok(w.admin.post(base, quota_spec(&w.lkc, &w.env, &[&a])), 202);
    let id = q["id"].as_str().expect("id").to_owned();
    assert!(id.starts_with("cq-"), "{q}");
    assert_eq!(q["kind"], "ClientQuota");
    assert_eq!(
        q["spec"]["throughput"]["ingress_byte_rate"],
        RATE.to_string()
    );
    assert_eq!(q["spec"]["cluster"]["id"], w.lkc.as_str());
    assert_eq!(q["spec"]["principals"][0]["id"], a.as_str());
    // A principal is in at most one quota per cluster.
    let (code, body) = w.admin.post(base, quota_spec(&w.lkc, &w.env, &[&b, &a]));
    assert_eq!(code, 409, "{body}");
    // Bad input: a clear error naming the field, nothing created.
    let mut bad = quota_spec(&w.lkc, &w.env, &[&b]);
    bad["spec"]["throughput"]["ingress_byte_rate"] = json!("fast");
    let (code, body) = w.admin.post(base, bad);
    assert_eq!(code, 422, "{body}");
    assert!(body.to_string().contains("ingress_byte_rate"), "{body}");
    let (code, body) = w.admin.post(base, quota_spec("lkc-nothere", &w.env, &[&b]));
    assert_eq!(code, 422, "{body}");
    assert_eq!(w.admin.all(base).len(), 1);
    // Listed by cluster, changed, and its change audited.
    let listed = w.admin.all(&format!("{base}?spec.cluster={}", w.lkc));
    assert_eq!(listed.len(), 1);
    let u = w.admin.ok(
        w.admin.patch(
            &format!("{base}/{id}"),
            json!({"spec": {"environment": {"id": w.env}, "principals": [{"id": a}, {"id": b}, {"id": "<default>"}],
                "throughput": {"ingress_byte_rate": "1000", "egress_byte_rate": "2000"}}}),
        ),
        200,
    );
    assert_eq!(u["spec"]["principals"].as_array().map(Vec::len), Some(3));
    assert_eq!(u["spec"]["throughput"]["egress_byte_rate"], "2000");
    let rec = crate::audit::events(&w.admin, "method=UpdateClientQuota");
    assert_eq!(rec.len(), 1, "{rec:?}");
    // A reader without DESCRIBE_CONFIGS on the cluster sees none of it.
    let (k, s) = w.admin.key(&b, "CLOUD");
    let reader = w.srv.api(&k, &s);
    assert_eq!(reader.get(&format!("{base}/{id}")).0, 404);
    assert!(reader.all(base).is_empty());
    assert_eq!(w.admin.delete(&format!("{base}/{id}")).0, 204);
    assert_eq!(w.admin.get(&format!("{base}/{id}")).0, 404);
    // Deleting the cluster deletes its quotas.
    w.admin
        .ok(w.admin.post(base, quota_spec(&w.lkc, &w.env, &[&a])), 202);
    assert_eq!(
        w.admin.delete(&format!("/cmk/v2/clusters/{}", w.lkc)).0,
        204
    );
    assert!(w.admin.all(base).is_empty());
}

#[test]
fn the_hosted_clis_quota_verbs_work() {
    let w = world(&[], "");
    let sa = w.admin.sa("cli-quota");
    let sb = w.admin.sa("cli-quota-b");
    let (key, secret) = w.srv.creds.clone().expect("creds");
    let cli = CliEnv::new();
    let (ok, _, err) = cli.run(&[
        "login",
        "--url",
        &w.srv.url,
        "--api-key",
        &key,
        "--api-secret",
        &secret,
    ]);
    assert!(ok, "{err}");
    // As in the hosted CLI's documentation.
    let q = cli.json(&[
        "kafka",
        "quota",
        "create",
        "--name",
        "clientQuota",
        "--ingress",
        "500",
        "--egress",
        "100",
        "--principals",
        &sa,
        "--cluster",
        &w.lkc,
        "--description",
        "description",
    ]);
    let id = q["id"].as_str().expect("id").to_owned();
    assert_eq!(q["spec"]["throughput"]["egress_byte_rate"], "100");
    let listed = cli.json(&[
        "kafka",
        "quota",
        "list",
        "--principal",
        &sa,
        "--cluster",
        &w.lkc,
    ]);
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    let u = cli.json(&[
        "kafka",
        "quota",
        "update",
        &id,
        "--ingress",
        "100",
        "--add-principals",
        &sb,
        "--remove-principals",
        &sa,
        "--name",
        "newName",
    ]);
    assert_eq!(u["spec"]["display_name"], "newName");
    assert_eq!(u["spec"]["principals"][0]["id"], sb.as_str(), "{u}");
    assert_eq!(u["spec"]["throughput"]["ingress_byte_rate"], "100");
    let d = cli.json(&["kafka", "quota", "describe", &id]);
    assert_eq!(d["id"], id.as_str());
    let (ok, out, _) = cli.run(&["kafka", "quota", "list"]);
    assert!(ok && out.contains("newName"), "{out}");
    let (ok, _, err) = cli.run(&["kafka", "quota", "delete", &id]);
    assert!(ok, "{err}");
}

/// A producer quota holds within ±10 % over 20 s while an unthrottled principal on
/// the same cluster keeps its rate; the clients see throttling, not errors.
#[test]
fn a_producer_quota_holds_and_the_unthrottled_keep_their_rate() {
    let w = world(&["metered"], "");
    let acls = [
        ("TOPIC", "metered", "WRITE", "ALLOW"),
        ("TOPIC", "metered", "READ", "ALLOW"),
    ];
    let (a, ka, sa) = w.app("quota-producer", &acls);
    let (_, kb, sb) = w.app("free-producer", &acls);
    w.admin.ok(
        w.admin.post(
            "/kafka-quotas/v1/client-quotas",
            quota_spec(&w.lkc, &w.env, &[&a]),
        ),
        202,
    );
    let rate = RATE.to_string();
    let (ok, out) = quotas_py(
        "produce",
        &[
            ("BOOTSTRAP", &w.bootstrap),
            ("KEY_A", &ka),
            ("SECRET_A", &sa),
            ("KEY_B", &kb),
            ("SECRET_B", &sb),
            ("TOPIC", "metered"),
            ("RATE", &rate),
        ],
    );
    assert!(ok, "{out}");
    let text = scrape(&w.srv.url).1;
    assert!(
        value(
            &text,
            "keygate_kafka_throttled_responses_total",
            &[("cluster", &w.lkc), ("direction", "ingress")]
        ) > 0.0,
        "{text}"
    );
    eprintln!("{out}");
}

/// A consumer's egress quota (kafka-python, which has its own protocol code) holds
/// within ±10 % over 20 s. 1 MiB/s: Tansu answers fetches with up to 1 MB whatever
/// the client's fetch size, and a quota is metered per response, so the rate must be
/// many responses per window for ±10 % to be measurable.
#[test]
fn a_consumer_quota_holds_with_kafka_python() {
    let w = world(&["fetched"], "");
    let acls = [
        ("TOPIC", "fetched", "WRITE", "ALLOW"),
        ("TOPIC", "fetched", "READ", "ALLOW"),
    ];
    let (a, ka, sa) = w.app("quota-consumer", &acls);
    let (_, kb, sb) = w.app("filler", &acls);
    let mut spec = quota_spec(&w.lkc, &w.env, &[&a]);
    let rate = (1024 * 1024).to_string();
    spec["spec"]["throughput"]["egress_byte_rate"] = json!(rate);
    w.admin
        .ok(w.admin.post("/kafka-quotas/v1/client-quotas", spec), 202);
    let (ok, out) = quotas_py(
        "consume",
        &[
            ("BOOTSTRAP", &w.bootstrap),
            ("KEY_A", &ka),
            ("SECRET_A", &sa),
            ("KEY_B", &kb),
            ("SECRET_B", &sb),
            ("TOPIC", "fetched"),
            ("RATE", &rate),
        ],
    );
    assert!(ok, "{out}\n{}", w.srv.logs());
    eprintln!("{out}");
}

// ---- fair share: each limit hit against the real server, others unaffected -----------

fn closed_soon(mut c: std::net::TcpStream) -> bool {
    use std::io::Read;
    c.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .expect("timeout");
    let mut buf = [0u8; 16];
    matches!(c.read(&mut buf), Ok(0))
        || matches!(c.read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset)
}

fn limit_hits(w: &crate::gateway::World, limit: &str) -> f64 {
    value(
        &scrape(&w.srv.url).1,
        "keygate_limit_hits_total",
        &[("limit", limit)],
    )
}

#[test]
fn a_principal_has_at_most_its_share_of_connections() {
    let w = world(&["orders"], "gateway_max_connections_per_principal = 2\n");
    let (_, k, s) = w.app("greedy", &[("TOPIC", "orders", "WRITE", "ALLOW")]);
    let (_, k2, s2) = w.app("modest", &[("TOPIC", "orders", "WRITE", "ALLOW")]);
    let addr: std::net::SocketAddr = w.bootstrap.parse().expect("addr");
    let held = [
        crate::gateway::raw_authenticated(addr, &k, &s),
        crate::gateway::raw_authenticated(addr, &k, &s),
    ];
    // A third connection of the same principal authenticates, then is closed.
    let third = crate::gateway::raw_authenticated(addr, &k, &s);
    assert!(
        closed_soon(third),
        "the third connection of one principal is closed"
    );
    assert!(limit_hits(&w, "kafka.max_connections.per_principal") >= 1.0);
    // Another principal is unaffected.
    let (ok, out) = w.kcat(&k2, &s2, &["-P", "-t", "orders"], Some("fine\n"));
    assert!(ok, "{out}");
    drop(held);
    // Its slots come back when its connections end.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let (ok, out) = w.kcat(&k, &s, &["-L"], None);
    assert!(ok, "{out}");
}

#[test]
fn a_cluster_has_at_most_its_share_of_connections() {
    let w = world(&["orders"], "gateway_max_connections_per_cluster = 2\n");
    let (_, k, s) = w.app("fair", &[("TOPIC", "orders", "WRITE", "ALLOW")]);
    let addr: std::net::SocketAddr = w.bootstrap.parse().expect("addr");
    let held = [
        crate::gateway::raw_authenticated(addr, &k, &s),
        crate::gateway::raw_authenticated(addr, &k, &s),
    ];
    let extra = std::net::TcpStream::connect(addr).expect("connect");
    assert!(
        closed_soon(extra),
        "the cluster's third connection is refused"
    );
    let text = scrape(&w.srv.url).1;
    assert!(
        value(
            &text,
            "keygate_kafka_connections_refused_total",
            &[
                ("cluster", &w.lkc),
                ("reason", "kafka.max_connections.per_cluster")
            ]
        ) >= 1.0,
        "{text}"
    );
    drop(held);
}

#[test]
fn connection_creation_is_rate_limited_per_source() {
    let w = world(&["orders"], "gateway_max_connection_creation_rate = 5\n");
    let addr: std::net::SocketAddr = w.bootstrap.parse().expect("addr");
    // One second's worth is allowed at once; a burst beyond it is refused.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let conns: Vec<_> = (0..15)
        .map(|_| std::net::TcpStream::connect(addr).expect("connect"))
        .collect();
    let refused = conns.into_iter().filter(|c| {
        let mut c = c.try_clone().expect("clone");
        c.set_read_timeout(Some(std::time::Duration::from_millis(300)))
            .expect("t");
        matches!(std::io::Read::read(&mut c, &mut [0u8; 4]), Ok(0))
    });
    assert!(refused.count() >= 9, "a burst of 15 at 5/s: most refused");
    assert!(limit_hits(&w, "kafka.max_connection_creation_rate.per_ip") >= 9.0);
    // The rate refills: a client a second later gets in.
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let (_, k, s) = w.app("patient", &[]);
    let (ok, out) = w.kcat(&k, &s, &["-L"], None);
    assert!(ok, "{out}");
}

#[test]
fn an_idle_authenticated_connection_is_closed() {
    let w = world(&["orders"], "gateway_idle_timeout_s = 1\n");
    let (_, k, s) = w.app("idler", &[]);
    let addr: std::net::SocketAddr = w.bootstrap.parse().expect("addr");
    let idle = crate::gateway::raw_authenticated(addr, &k, &s);
    let started = std::time::Instant::now();
    assert!(closed_soon(idle), "closed after the idle timeout");
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
    let text = scrape(&w.srv.url).1;
    assert!(
        value(
            &text,
            "keygate_kafka_connections_closed_total",
            &[("cluster", &w.lkc), ("reason", "idle")]
        ) >= 1.0,
        "{text}"
    );
    assert!(limit_hits(&w, "kafka.idle_timeout_seconds") >= 1.0);
}

/// A request-rate quota (keygate's extension): a client sending faster is slowed to
/// the rate by muting, and the throttles are counted.
#[test]
fn a_request_rate_quota_slows_a_fast_client() {
    use std::io::{Read, Write};
    let w = world(&[], "");
    let (a, k, s) = w.app("chatty", &[]);
    let mut spec = quota_spec(&w.lkc, &w.env, &[&a]);
    spec["spec"]["request_rate"] = json!(4);
    let q = w
        .admin
        .ok(w.admin.post("/kafka-quotas/v1/client-quotas", spec), 202);
    assert_eq!(q["spec"]["request_rate"], 4);
    let addr: std::net::SocketAddr = w.bootstrap.parse().expect("addr");
    let mut c = crate::gateway::raw_authenticated(addr, &k, &s);
    c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    // ApiVersions v0, one at a time: 16 requests at 4/s (a burst of 4 allowed).
    let req: Vec<u8> = {
        let body = [0u8, 18, 0, 0, 0, 0, 0, 9, 0, 0];
        let mut f = (body.len() as i32).to_be_bytes().to_vec();
        f.extend_from_slice(&body);
        f
    };
    let start = std::time::Instant::now();
    for _ in 0..16 {
        c.write_all(&req).expect("send");
        let mut len = [0u8; 4];
        c.read_exact(&mut len).expect("answer");
        let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
        c.read_exact(&mut body).expect("answer body");
    }
    let took = start.elapsed();
    assert!(
        took >= std::time::Duration::from_millis(2500),
        "16 requests at 4/s took {took:?}"
    );
    let text = scrape(&w.srv.url).1;
    assert!(
        value(
            &text,
            "keygate_kafka_throttled_responses_total",
            &[("cluster", &w.lkc), ("direction", "requests")]
        ) >= 1.0,
        "{text}"
    );
}
