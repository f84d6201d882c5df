//! The HTTP gateway: Schema Registry and ksqlDB against the clearly labelled test
//! upstreams in tests/upstreams (no server implementing those APIs can be installed
//! from the registries this project reaches; README says which services were tested
//! against real upstreams), driven over real HTTP and by real clients.

use crate::gateway::{free_ports, wait_for_port, world, World};
use crate::harness::{base64_basic, Api};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn root() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../..")
}

pub fn python() -> String {
    let py = format!("{}/.venv/bin/python", root());
    let ok = Command::new(&py)
        .args([
            "-c",
            "import confluent_kafka.schema_registry.avro, requests",
        ])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "the test virtualenv is missing or incomplete: run scripts/test (it installs tests/python/requirements.txt)");
    py
}

/// A finished command's standard output and error, as text.
pub fn text_of(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// keygate + a ksqlDB cluster registered in front of the ksqlDB test upstream (which
/// demands the gateway's own bearer token): the world, the upstream, the cluster's id
/// and CRN.
fn ksql_world(toml: &str) -> (World, TestUpstream, String, String) {
    let w = world(&[], toml);
    let up = TestUpstream::start("ksqldb.py", "Authorization:Bearer up-token");
    let runner = w.admin.ok(
        w.admin.post(
            "/iam/v2/service-accounts",
            json!({"display_name": "ksql-runner"}),
        ),
        201,
    );
    let b = w.admin.ok(
        w.admin.post(
            "/ksqldbcm/v2/clusters",
            json!({"spec": {"display_name": "ksql", "environment": {"id": w.env}, "upstream": up.url(),
                "kafka_cluster": {"id": w.lkc}, "credential_identity": {"id": runner["id"]},
                "upstream_security": {"http_auth": "BEARER", "password": "up-token"}}}),
        ),
        202,
    );
    let id = b["id"].as_str().expect("id").to_owned();
    let crn = b["metadata"]["resource_name"]
        .as_str()
        .expect("crn")
        .to_owned();
    (w, up, id, crn)
}

/// One of the test upstreams in tests/upstreams, on its own port.
pub struct TestUpstream {
    child: Child,
    pub port: u16,
}

impl Drop for TestUpstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TestUpstream {
    /// `script` (in tests/upstreams) requiring `credential` (`Header:value`).
    pub fn start(script: &str, credential: &str) -> TestUpstream {
        TestUpstream::start_with(script, credential, &[])
    }

    /// The same, with environment variables (TLS settings).
    pub fn start_with(script: &str, credential: &str, env: &[(&str, String)]) -> TestUpstream {
        let port = free_ports(1);
        let child = Command::new(python())
            .arg(format!("{}/tests/upstreams/{script}", root()))
            .arg(port.to_string())
            .arg(credential)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start test upstream");
        wait_for_port(port);
        TestUpstream { child, port }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request that reached it since the last reset.
    pub fn requests(&self) -> Vec<Value> {
        let r = ureq::get(&format!("{}/__test/requests", self.url()))
            .call()
            .expect("test upstream answers");
        r.into_json::<Vec<Value>>().expect("json")
    }

    pub fn reset(&self) {
        ureq::post(&format!("{}/__test/reset", self.url()))
            .call()
            .expect("reset");
    }
}

/// keygate + Tansu + a Kafka cluster + a Schema Registry registration in front of the
/// test upstream, which demands the gateway's own `X-API-Key`.
pub struct SrWorld {
    pub w: World,
    pub up: TestUpstream,
    pub lsrc: String,
    pub crn: String,
}

const UPSTREAM_KEY: &str = "upstream-secret-7d1f";

pub fn sr_world(toml: &str) -> SrWorld {
    let w = world(&["orders", "payments"], toml);
    let up = TestUpstream::start("schema_registry.py", &format!("X-API-Key:{UPSTREAM_KEY}"));
    let b = w.admin.ok(
        w.admin.post(
            "/srcm/v3/clusters",
            json!({"spec": {"display_name": "registry", "environment": {"id": w.env},
                "upstream": up.url(),
                "upstream_security": {"http_auth": "HEADER", "header_name": "X-API-Key", "password": UPSTREAM_KEY}}}),
        ),
        201,
    );
    let lsrc = b["id"].as_str().expect("lsrc").to_owned();
    let crn = b["metadata"]["resource_name"]
        .as_str()
        .expect("crn")
        .to_owned();
    assert_eq!(b["spec"]["upstream_security"]["password_set"], true);
    assert!(!b.to_string().contains(UPSTREAM_KEY), "{b}");
    SrWorld { w, up, lsrc, crn }
}

impl SrWorld {
    /// A client of the registry through the gateway with `key:secret`.
    pub fn client(&self, key: &str, secret: &str) -> Api {
        Api {
            url: format!("{}/sr/{}", self.w.srv.services_url, self.lsrc),
            key: key.into(),
            secret: secret.into(),
        }
    }

    /// A service account bound to `role` at `suffix` under the registry's CRN (empty:
    /// no binding; `@env`: at the environment), with a key for the registry.
    pub fn principal(&self, name: &str, role: &str, suffix: &str) -> (String, Api) {
        let sa = self.w.admin.sa(name);
        let at = match suffix {
            "" => None,
            "@env" => Some(
                self.crn
                    .rsplit_once("/schema-registry=")
                    .expect("env part")
                    .0
                    .to_owned(),
            ),
            s => Some(format!("{}{s}", self.crn)),
        };
        if let Some(at) = at {
            self.w.admin.bind(&format!("User:{sa}"), role, &at);
        }
        let (k, s) = self.w.admin.key(&sa, &self.lsrc);
        (sa, self.client(&k, &s))
    }
}

fn schema(name: &str) -> Value {
    json!({"schema": json!({"type": "record", "name": name, "fields": [{"name": "id", "type": "long"}]}).to_string()})
}

/// Every row of the Schema Registry operation table, as real HTTP through the gateway:
/// each role at its place, what it may and may not do.
#[test]
fn schema_registry_roles_allow_exactly_their_rows() {
    let sr = sr_world("");
    let (_, steward) = sr.principal("steward", "DataSteward", "@env");
    let orders_id = steward.ok(
        steward.post("/subjects/orders-value/versions", schema("Order")),
        200,
    )["id"]
        .clone();
    let payments_id = steward.ok(
        steward.post("/subjects/payments-value/versions", schema("Payment")),
        200,
    )["id"]
        .clone();
    steward.ok(
        steward.post("/subjects/orders-scratch/versions", schema("Scratch")),
        200,
    );
    let compat = json!({"compatibility": "FULL"});
    type Row<'a> = (&'a str, &'a str, &'a str, Option<Value>, u16);
    let cases: Vec<(&str, &str, Vec<Row<'_>>)> = vec![
        (
            "DeveloperRead",
            "/subject=orders*",
            vec![
                ("GET", "/subjects/orders-value/versions", "", None, 200),
                (
                    "GET",
                    "/subjects/orders-value/versions/latest",
                    "",
                    None,
                    200,
                ),
                (
                    "POST",
                    "/subjects/orders-value",
                    "",
                    Some(schema("Order")),
                    200,
                ),
                ("GET", "/subjects/payments-value/versions", "", None, 403),
                (
                    "POST",
                    "/subjects/orders-value/versions",
                    "",
                    Some(schema("Order2")),
                    403,
                ),
                ("DELETE", "/subjects/orders-scratch", "", None, 403),
                ("GET", "/config/orders-value", "", None, 200),
                ("PUT", "/config/orders-value", "", Some(compat.clone()), 403),
                ("GET", "/config", "", None, 200),
                ("PUT", "/config", "", Some(compat.clone()), 403),
                ("GET", "/schemas/ids/", "orders", None, 200),
                ("GET", "/schemas/ids/", "payments", None, 403),
                ("GET", "/exporters", "", None, 403),
            ],
        ),
        (
            "DeveloperWrite",
            "/subject=orders*",
            vec![
                (
                    "POST",
                    "/subjects/orders-value/versions",
                    "",
                    Some(schema("Order")),
                    200,
                ),
                (
                    "POST",
                    "/subjects/payments-value/versions",
                    "",
                    Some(schema("Payment")),
                    403,
                ),
                ("DELETE", "/subjects/orders-scratch", "", None, 403),
                ("PUT", "/config/orders-value", "", Some(compat.clone()), 403),
            ],
        ),
        (
            "DeveloperManage",
            "/subject=orders*",
            vec![
                ("PUT", "/config/orders-value", "", Some(compat.clone()), 200),
                (
                    "PUT",
                    "/mode/orders-value",
                    "",
                    Some(json!({"mode": "READONLY"})),
                    200,
                ),
                ("DELETE", "/subjects/orders-scratch", "", None, 200),
                ("PUT", "/config", "", Some(compat.clone()), 403),
                ("GET", "/subjects/payments-value/versions", "", None, 403),
            ],
        ),
        (
            "ResourceOwner",
            "/subject=payments-value",
            vec![
                ("GET", "/subjects/payments-value/versions", "", None, 200),
                (
                    "PUT",
                    "/config/payments-value",
                    "",
                    Some(compat.clone()),
                    200,
                ),
                ("GET", "/subjects/orders-value/versions", "", None, 403),
                ("GET", "/schemas/ids/", "payments", None, 200),
                ("PUT", "/mode", "", Some(json!({"mode": "READWRITE"})), 403),
            ],
        ),
        (
            "DataSteward",
            "@env",
            vec![
                ("PUT", "/config", "", Some(compat.clone()), 200),
                ("GET", "/subjects/payments-value/versions", "", None, 200),
                ("GET", "/schemas/ids/", "orders", None, 200),
            ],
        ),
        (
            "",
            "",
            vec![
                ("GET", "/subjects/orders-value/versions", "", None, 403),
                ("GET", "/config", "", None, 403),
                ("GET", "/schemas/ids/", "orders", None, 403),
            ],
        ),
    ];
    for (i, (role, at, rows)) in cases.iter().enumerate() {
        let (_, c) = sr.principal(&format!("p{i}"), role, at);
        for (m, path, id, body, want) in rows {
            let path = match *id {
                "orders" => format!("{path}{orders_id}"),
                "payments" => format!("{path}{payments_id}"),
                _ => (*path).to_owned(),
            };
            let (code, answer) = c.raw(
                m,
                &path,
                body.as_ref().map(|b| b.to_string()).as_deref(),
                body.as_ref()
                    .map(|_| "application/vnd.schemaregistry.v1+json"),
            );
            assert_eq!(code, *want, "{role} at {at}: {m} {path} → {answer}");
        }
    }
    // Listings show only what may be read.
    let (_, reader) = sr.principal("lister", "DeveloperRead", "/subject=orders*");
    let (code, subjects) = reader.get("/subjects");
    assert_eq!(code, 200);
    assert_eq!(subjects, json!(["orders-value"]));
    let (_, nobody) = sr.principal("nobody", "", "");
    assert_eq!(nobody.get("/subjects"), (200, json!([])));
    // The hosted model's header names the registry when the path does not.
    let by_header: Value = ureq::get(&format!("{}/subjects", sr.w.srv.services_url))
        .set("target-sr-cluster", &sr.lsrc)
        .set("Authorization", &base64_basic(&reader.key, &reader.secret))
        .call()
        .expect("routed by target-sr-cluster")
        .into_json()
        .expect("json");
    assert_eq!(by_header, json!(["orders-value"]));
    let (_, both) = steward.get(&format!("/schemas/ids/{orders_id}/subjects"));
    assert_eq!(both, json!(["orders-value"]));
    // What reached the upstream carried the gateway's credential, never a client's.
    for r in sr.up.requests() {
        let h = &r["headers"];
        assert_eq!(h["x-api-key"], UPSTREAM_KEY, "{r}");
        assert!(
            h.get("authorization").is_none(),
            "client credential forwarded: {r}"
        );
        if let Some(xff) = h.get("x-forwarded-for") {
            assert_eq!(xff, "127.0.0.1");
        }
    }
}

/// Raw bytes to the gateway; returns the status line's code (0 when closed).
fn raw_http(port: u16, request: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let _ = s.write_all(request);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, text)
}

/// Bad input gets the right 4xx and never reaches the upstream; every failed
/// authentication looks the same.
#[test]
fn bad_requests_are_refused_before_the_upstream() {
    let sr = sr_world("http_gateway_max_request_mb = 1\n");
    let (sa, good) = sr.principal("reader", "DeveloperRead", "/subject=orders*");
    let port: u16 =
        sr.w.srv
            .services_url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port");
    sr.up.reset();
    let base = format!("/sr/{}", sr.lsrc);
    let header = base64_basic(&good.key, &good.secret);
    // Authentication failures: one body for all, whatever the cause.
    let (other_sa, _) = sr.principal("other", "", "");
    let (disabled_k, disabled_s) = sr.w.admin.key(&other_sa, &sr.lsrc);
    sr.w.admin.ok(
        sr.w.admin
            .post(&format!("/iam/v2/api-keys/{disabled_k}/disable"), json!({})),
        200,
    );
    let (deleted_k, deleted_s) = sr.w.admin.key(&other_sa, &sr.lsrc);
    sr.w.admin.ok(
        sr.w.admin.delete(&format!("/iam/v2/api-keys/{deleted_k}")),
        204,
    );
    let (kafka_k, kafka_s) = sr.w.admin.key(&sa, &sr.w.lkc);
    let mut bodies = Vec::new();
    for (what, auth) in [
        ("no header", None),
        ("not base64", Some("Basic !!!not-base64".to_owned())),
        ("no colon", Some("Basic a2V5b25seQ==".to_owned())),
        ("empty bearer", Some("Bearer ".to_owned())),
        ("unknown scheme", Some("Digest x".to_owned())),
        ("wrong secret", Some(base64_basic(&good.key, "kgs_wrong"))),
        (
            "swapped fields",
            Some(base64_basic(&good.secret, &good.key)),
        ),
        ("disabled key", Some(base64_basic(&disabled_k, &disabled_s))),
        ("deleted key", Some(base64_basic(&deleted_k, &deleted_s))),
        ("kafka key", Some(base64_basic(&kafka_k, &kafka_s))),
        (
            "cloud key",
            Some(base64_basic(&sr.w.admin.key, &sr.w.admin.secret)),
        ),
        (
            "forged token",
            Some("Bearer eyJhbGciOiJub25lIn0.e30.".to_owned()),
        ),
    ] {
        let mut req = ureq::get(&format!("{}{base}/subjects", sr.w.srv.services_url));
        if let Some(a) = &auth {
            req = req.set("Authorization", a);
        }
        match req.call() {
            Err(ureq::Error::Status(401, r)) => bodies.push(r.into_string().unwrap_or_default()),
            other => panic!("{what}: expected 401, got {other:?}"),
        }
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
    assert!(
        !sr.w.srv.logs().contains(&good.secret),
        "a secret reached the log"
    );
    // Traversal, override headers, smuggling, huge heads and bodies.
    let host =
        format!("Host: 127.0.0.1:{port}\r\nConnection: close\r\nAuthorization: {header}\r\n");
    for (what, req, want) in [
        ("encoded slash", format!("GET {base}/subjects/..%2F..%2Fconfig HTTP/1.1\r\n{host}\r\n"), 400),
        ("dot segments", format!("GET {base}/subjects/%2e%2e/config HTTP/1.1\r\n{host}\r\n"), 400),
        ("empty segment", format!("GET {base}//config HTTP/1.1\r\n{host}\r\n"), 400),
        (
            "method override",
            format!("POST {base}/subjects/orders-value HTTP/1.1\r\n{host}X-HTTP-Method-Override: DELETE\r\nContent-Length: 2\r\n\r\n{{}}"),
            400,
        ),
        (
            "CL and TE",
            format!("POST {base}/subjects/orders-value HTTP/1.1\r\n{host}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET {base}/config HTTP/1.1\r\n{host}\r\n"),
            400,
        ),
        (
            "two lengths",
            format!("POST {base}/subjects/orders-value HTTP/1.1\r\n{host}Content-Length: 2\r\nContent-Length: 30\r\n\r\n{{}}"),
            400,
        ),
        (
            "huge header",
            format!("GET {base}/subjects HTTP/1.1\r\n{host}X-Big: {}\r\n\r\n", "a".repeat(100_000)),
            431,
        ),
        (
            "body over the limit",
            format!("POST {base}/subjects/orders-value/versions HTTP/1.1\r\n{host}Content-Type: application/json\r\nContent-Length: 2000000\r\n\r\n{{"),
            413,
        ),
    ] {
        let (code, text) = raw_http(port, req.as_bytes());
        assert_eq!(code, want, "{what}: {}", text.lines().next().unwrap_or_default());
    }
    assert_eq!(
        sr.up.requests(),
        Vec::<Value>::new(),
        "bad input reached the upstream"
    );
    // A percent-encoded name is the decoded name, forwarded canonically.
    assert_eq!(good.get("/subjects/orders%2Dvalue/versions").0, 404);
    let seen = sr.up.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["path"], "/subjects/orders-value/versions");
    // A chunked body (no length declared) that grows past the limit is cut: 413.
    let (_, writer) = sr.principal("big-writer", "DeveloperWrite", "/subject=orders*");
    let chunk = format!("100000\r\n{}\r\n", "x".repeat(0x10_0000));
    let req = format!(
        "POST {base}/subjects/orders-value/versions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{chunk}{chunk}0\r\n\r\n",
        base64_basic(&writer.key, &writer.secret)
    );
    let (code, text) = raw_http(port, req.as_bytes());
    assert_eq!(code, 413, "{}", text.lines().next().unwrap_or_default());
}

/// Real clients: confluent-kafka's SchemaRegistryClient with `basic.auth.user.info`
/// and its Avro serializer producing through the Kafka gateway (two keys, one per
/// resource), and @kafkajs/confluent-schema-registry.
#[test]
fn schema_registry_clients_through_the_gateway() {
    let sr = sr_world("");
    let (sa, reg) = sr.principal("avro-app", "DeveloperWrite", "/subject=orders*");
    let (kafka_k, kafka_s) = sr.w.admin.key(&sa, &sr.w.lkc);
    for op in ["WRITE", "READ"] {
        sr.w.admin.ok(
            sr.w.admin.post(
                &format!("/kafka/v3/clusters/{}/acls", sr.w.lkc),
                json!({"resource_type":"TOPIC","resource_name":"orders","pattern_type":"LITERAL","principal":format!("User:{sa}"),"operation":op,"permission":"ALLOW"}),
            ),
            201,
        );
    }
    sr.w.admin.ok(
        sr.w.admin.post(
            &format!("/kafka/v3/clusters/{}/acls", sr.w.lkc),
            json!({"resource_type":"GROUP","resource_name":"avro","pattern_type":"LITERAL","principal":format!("User:{sa}"),"operation":"READ","permission":"ALLOW"}),
        ),
        201,
    );
    let out = Command::new(python())
        .arg(format!("{}/tests/python/schema_registry.py", root()))
        .env("SR_URL", &reg.url)
        .env("SR_KEY", &reg.key)
        .env("SR_SECRET", &reg.secret)
        .env("BOOTSTRAP", &sr.w.bootstrap)
        .env("KEY", &kafka_k)
        .env("SECRET", &kafka_s)
        .output()
        .expect("run python");
    let text = text_of(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("avro round trip ok"), "{text}");
    assert!(text.contains("refused subject payments-value"), "{text}");
    let node = Command::new("node")
        .arg(format!("{}/tests/js/schema_registry.js", root()))
        .env("SR_URL", &reg.url)
        .env("SR_KEY", &reg.key)
        .env("SR_SECRET", &reg.secret)
        .output()
        .expect("run node (scripts/test installs tests/js)");
    let text = text_of(&node);
    assert!(node.status.success(), "{text}");
    assert!(text.contains("kafkajs registry ok"), "{text}");
}

/// A long answer (a ksqlDB push query) is cut within a second of its key being
/// disabled; all-or-nothing access per ksqlDB cluster.
#[test]
fn ksql_access_is_all_or_nothing_and_streams_end_on_revocation() {
    let (w, _up, id, crn) = ksql_world("");
    let base = format!("{}/ksql/{id}", w.srv.services_url);
    let admin_sa = w.admin.sa("ksql-admin");
    w.admin.bind(&format!("User:{admin_sa}"), "KsqlAdmin", &crn);
    let (k, s) = w.admin.key(&admin_sa, &id);
    let outsider = w.admin.sa("outsider");
    let (ok_, os) = w.admin.key(&outsider, &id);
    let c = Api {
        url: base.clone(),
        key: k.clone(),
        secret: s.clone(),
    };
    let o = Api {
        url: base.clone(),
        key: ok_,
        secret: os,
    };
    for path in ["/info", "/healthcheck", "/status"] {
        assert_eq!(c.get(path).0, 200, "{path}");
        assert_eq!(o.get(path).0, 403, "{path}");
    }
    let stmt = json!({"ksql": "SHOW STREAMS;", "streamsProperties": {}});
    assert_eq!(c.post("/ksql", stmt.clone()).0, 200);
    assert_eq!(o.post("/ksql", stmt).0, 403);
    // A push query streams until the key is disabled.
    let mut sock = TcpStream::connect(
        base.trim_start_matches("http://")
            .split('/')
            .next()
            .expect("addr"),
    )
    .expect("connect");
    let body = json!({"sql": "SELECT * FROM orders EMIT CHANGES;", "properties": {}}).to_string();
    write!(
        sock,
        "POST /ksql/{id}/query-stream HTTP/1.1\r\nHost: gw\r\nAuthorization: {}\r\nContent-Type: application/vnd.ksqlapi.delimited.v1\r\nContent-Length: {}\r\n\r\n{body}",
        base64_basic(&k, &s),
        body.len()
    )
    .expect("write");
    sock.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut first = [0u8; 512];
    let n = sock.read(&mut first).expect("first rows");
    assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));
    w.admin.ok(
        w.admin
            .post(&format!("/iam/v2/api-keys/{k}/disable"), json!({})),
        200,
    );
    let disabled_at = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match sock.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => assert!(
                disabled_at.elapsed() < Duration::from_secs(3),
                "the stream went on after the key was disabled"
            ),
        }
    }
    let cut = disabled_at.elapsed();
    println!("push query cut {cut:?} after the disable answered");
    // Announced, not polled: the stream ends as the disable commits.
    assert!(cut < Duration::from_millis(100), "cut after {cut:?}");
}

/// A real Iceberg REST catalog: Rustberg (crates.io), in memory, requiring its own API
/// key — which only the gateway holds.
pub struct Rustberg {
    child: Child,
    pub port: u16,
    pub key: String,
    _dir: tempfile::TempDir,
}

impl Drop for Rustberg {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn rustberg_bin() -> String {
    if let Ok(p) = std::env::var("KEYGATE_RUSTBERG") {
        return p;
    }
    let p = format!(
        "{}/.cargo/bin/rustberg",
        std::env::var("HOME").unwrap_or_default()
    );
    assert!(
        std::path::Path::new(&p).exists(),
        "Rustberg is not installed: run scripts/test (it runs `cargo install rustberg --version 0.3.0 --locked --no-default-features --features cli`)"
    );
    p
}

impl Rustberg {
    pub fn start() -> Rustberg {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_ports(1);
        let key = format!("rb_{}", "k".repeat(43));
        std::fs::write(
            dir.path().join("rustberg.toml"),
            format!("[server]\nhost = \"127.0.0.1\"\nport = {port}\n\n[server.auth]\napi_key_enabled = true\n\n[[server.auth.api_keys]]\nname = \"keygate\"\ntenant = \"default\"\nroles = [\"admin\"]\nkey_env = \"RUSTBERG_KEY_KEYGATE\"\n"),
        )
        .expect("config");
        let warehouse = format!("file://{}/warehouse", dir.path().display());
        let child = Command::new(rustberg_bin())
            .args([
                "--config",
                "rustberg.toml",
                "--dev",
                "--insecure-http",
                "--catalog-url",
                "memory://",
                "--warehouse",
                &warehouse,
            ])
            .current_dir(dir.path())
            .env("RUSTBERG_KEY_KEYGATE", &key)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rustberg");
        wait_for_port(port);
        Rustberg {
            child,
            port,
            key,
            _dir: dir,
        }
    }
}

fn tableflow_scenario(
    name: &str,
    uri: &str,
    key: &str,
    secret: &str,
    lkc: &str,
    other: &str,
) -> String {
    let out = Command::new(python())
        .arg(format!("{}/tests/python/tableflow.py", root()))
        .arg(name)
        .env("URI", uri)
        .env("KEY", key)
        .env("SECRET", secret)
        .env("LKC", lkc)
        .env("OTHER_LKC", other)
        .output()
        .expect("run python");
    let text = text_of(&out);
    assert!(out.status.success(), "{name}: {text}");
    assert!(text.contains(&format!("scenario ok {name}")), "{text}");
    text
}

/// Tableflow: pyiceberg with `credential="KEY:SECRET"` through the gateway to a real
/// Iceberg REST catalog. Namespaces are Kafka clusters, tables are topics, and Kafka's
/// own ACLs and role bindings decide.
#[test]
fn tableflow_pyiceberg_through_the_gateway_to_a_real_catalog() {
    let w = world(&[], "");
    let rb = Rustberg::start();
    let other = w.admin.kafka(&w.env, "other");
    w.admin.ok(
        w.admin.post(
            "/tableflow/v1/endpoints",
            json!({"spec": {"display_name": "tableflow", "environment": {"id": w.env},
                "upstream": format!("http://127.0.0.1:{}", rb.port),
                "upstream_security": {"http_auth": "HEADER", "header_name": "X-API-Key", "password": rb.key}}}),
        ),
        201,
    );
    let org = w.admin.org_crn();
    let org_id = org.rsplit('=').next().expect("org id").to_owned();
    let uri = format!(
        "{}/iceberg/catalog/organizations/{org_id}/environments/{}",
        w.srv.services_url, w.env
    );
    let key_for = |sa: &str| {
        let b = w.admin.ok(
            w.admin.post(
                "/iam/v2/api-keys",
                json!({"spec": {"owner": {"id": sa}, "resource": {"id": "tableflow", "environment": w.env}}}),
            ),
            202,
        );
        (
            b["id"].as_str().expect("id").to_owned(),
            b["spec"]["secret"].as_str().expect("secret").to_owned(),
        )
    };
    let acl = |sa: &str, rt: &str, name: &str, pattern: &str, op: &str| {
        w.admin.ok(
            w.admin.post(
                &format!("/kafka/v3/clusters/{}/acls", w.lkc),
                json!({"resource_type": rt, "resource_name": name, "pattern_type": pattern,
                    "principal": format!("User:{sa}"), "operation": op, "permission": "ALLOW"}),
            ),
            201,
        );
    };
    let topic_crn = |t: &str| {
        format!(
            "{org}/environment={}/cloud-cluster={}/kafka={}/topic={t}",
            w.env, w.lkc, w.lkc
        )
    };
    let writer = w.admin.sa("tf-writer");
    acl(&writer, "CLUSTER", "kafka-cluster", "LITERAL", "CREATE");
    acl(&writer, "TOPIC", "ord", "PREFIXED", "ALL");
    let (k, s) = key_for(&writer);
    let out = tableflow_scenario("writer", &uri, &k, &s, &w.lkc, &other);
    assert!(
        out.contains("refused: namespace of another cluster"),
        "{out}"
    );
    let reader = w.admin.sa("tf-reader");
    w.admin.bind(
        &format!("User:{reader}"),
        "DeveloperRead",
        &topic_crn("orders"),
    );
    let (k, s) = key_for(&reader);
    tableflow_scenario("reader", &uri, &k, &s, &w.lkc, &other);
    let manager = w.admin.sa("tf-manager");
    w.admin.bind(
        &format!("User:{manager}"),
        "DeveloperManage",
        &topic_crn("orders*"),
    );
    let (k, s) = key_for(&manager);
    tableflow_scenario("manager", &uri, &k, &s, &w.lkc, &other);
    // A Tableflow key of another environment, a Kafka key, a wrong secret: no token.
    let token = |key: &str, secret: &str| {
        ureq::post(&format!("{uri}/v1/oauth/tokens"))
            .send_form(&[
                ("grant_type", "client_credentials"),
                ("client_id", key),
                ("client_secret", secret),
                ("scope", "catalog"),
            ])
            .map(|r| r.status())
            .unwrap_or_else(|e| match e {
                ureq::Error::Status(c, _) => c,
                e => panic!("{e}"),
            })
    };
    let (kk, ks) = w.admin.key(&reader, &w.lkc);
    assert_eq!(token(&kk, &ks), 401);
    assert_eq!(token(&k, "kgs_wrong"), 401);
    assert_eq!(token(&k, &s), 200);
    // Disabling the key ends the tokens it got.
    let tok: Value = ureq::post(&format!("{uri}/v1/oauth/tokens"))
        .send_form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &k),
            ("client_secret", &s),
        ])
        .expect("token")
        .into_json()
        .expect("json");
    let bearer = format!("Bearer {}", tok["access_token"].as_str().expect("token"));
    let list = format!("{uri}/v1/namespaces/{}/tables", w.lkc);
    assert_eq!(
        ureq::get(&list)
            .set("Authorization", &bearer)
            .call()
            .map(|r| r.status())
            .ok(),
        Some(200)
    );
    w.admin.ok(
        w.admin
            .post(&format!("/iam/v2/api-keys/{k}/disable"), json!({})),
        200,
    );
    match ureq::get(&list).set("Authorization", &bearer).call() {
        Err(ureq::Error::Status(401, _)) => {}
        other => panic!("a disabled key's token still works: {other:?}"),
    }
}

/// A real Apache Flink session cluster (JobManager + TaskManager) from PyPI's
/// apache-flink distribution, on Java 17, REST on loopback.
pub struct Flink {
    children: Vec<Child>,
    pub rest: u16,
    pub home: String,
    /// Its configuration directory (the CLI reads the JVM options from it).
    pub dir: tempfile::TempDir,
}

impl Drop for Flink {
    fn drop(&mut self) {
        for c in &mut self.children {
            // Each script runs in its own process group: end the JVM with it.
            let _ = Command::new("kill")
                .arg("--")
                .arg(format!("-{}", c.id()))
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Flink {
    pub fn start() -> Flink {
        use std::os::unix::process::CommandExt;
        let py = format!("{}/.venv-flink/bin/python", root());
        let home = Command::new(&py)
            .args([
                "-c",
                "import pyflink, os; print(os.path.dirname(pyflink.__file__))",
            ])
            .output()
            .expect("find pyflink");
        let home = String::from_utf8_lossy(&home.stdout).trim().to_owned();
        assert!(
            std::path::Path::new(&format!("{home}/bin/jobmanager.sh")).exists(),
            "Apache Flink is missing: run scripts/test (it creates .venv-flink from tests/flink/requirements.txt)"
        );
        let shipped =
            std::fs::read_to_string(format!("{home}/conf/config.yaml")).expect("flink config");
        let opens = shipped
            .lines()
            .find_map(|l| l.trim().strip_prefix("all: --add-exports"))
            .map(|rest| format!("--add-exports{rest}"))
            .expect("the distribution's JVM options");
        let dir = tempfile::tempdir().expect("tempdir");
        let ports = free_ports(2);
        let (rest, rpc) = (ports, ports + 1);
        std::fs::write(
            dir.path().join("config.yaml"),
            format!(
                "env:\n  java:\n    opts:\n      all: {opens}\njobmanager:\n  bind-host: 127.0.0.1\n  rpc:\n    address: 127.0.0.1\n    port: {rpc}\n  memory:\n    process:\n      size: 1024m\ntaskmanager:\n  bind-host: 127.0.0.1\n  host: 127.0.0.1\n  numberOfTaskSlots: 2\n  memory:\n    process:\n      size: 1024m\nrest:\n  address: 127.0.0.1\n  bind-address: 127.0.0.1\n  port: {rest}\nparallelism:\n  default: 1\n"
            ),
        )
        .expect("config");
        for f in ["log4j-console.properties", "log4j.properties"] {
            std::fs::copy(format!("{home}/conf/{f}"), dir.path().join(f)).expect("log config");
        }
        let start = |script: &str| {
            Command::new(format!("{home}/bin/{script}"))
                .arg("start-foreground")
                .env("FLINK_CONF_DIR", dir.path())
                .env("FLINK_LOG_DIR", dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("start flink")
        };
        let children = vec![start("jobmanager.sh"), start("taskmanager.sh")];
        let f = Flink {
            children,
            rest,
            home,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let slots = ureq::get(&format!("http://127.0.0.1:{rest}/overview"))
                .call()
                .ok()
                .and_then(|r| r.into_json::<Value>().ok())
                .and_then(|v| v["slots-total"].as_u64())
                .unwrap_or(0);
            if slots > 0 {
                return f;
            }
            assert!(Instant::now() < deadline, "Flink did not start");
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// tests/flink/Forever.java compiled against this distribution, as a jar.
    pub fn job_jar(&self, dir: &std::path::Path) -> std::path::PathBuf {
        std::fs::copy(
            format!("{}/tests/flink/Forever.java", root()),
            dir.join("Forever.java"),
        )
        .expect("copy");
        let ok = Command::new("javac")
            .args(["-cp", &format!("{}/lib/*", self.home), "Forever.java"])
            .current_dir(dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "javac failed (scripts/test installs Java 17)");
        let ok = Command::new("jar")
            .args(["cfe", "forever.jar", "Forever", "Forever.class"])
            .current_dir(dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "jar failed");
        dir.join("forever.jar")
    }
}

/// Flink: a real cluster; FlinkDeveloper sees and cancels only its own jobs, Operator
/// reads, FlinkAdmin manages everything, a key is worth nothing in another environment.
#[test]
fn flink_jobs_belong_to_who_submitted_them() {
    let w = world(&[], "");
    let flink = Flink::start();
    let region = "aws.us-east-1";
    let other_env = w.admin.env("staging");
    for env in [&w.env, &other_env] {
        w.admin.ok(
            w.admin.post(
                "/fcpm/v2/regions",
                json!({"spec": {"display_name": "flink", "environment": {"id": env},
                    "upstream": format!("http://127.0.0.1:{}", flink.rest), "region": region}}),
            ),
            201,
        );
    }
    let org = w.admin.org_crn();
    let region_crn = format!("{org}/environment={}/flink-region={region}", w.env);
    let env_crn = format!("{org}/environment={}", w.env);
    let key_for = |name: &str, role: &str, at: &str| {
        let sa = w.admin.sa(name);
        if !role.is_empty() {
            w.admin.bind(&format!("User:{sa}"), role, at);
        }
        let b = w.admin.ok(
            w.admin.post(
                "/iam/v2/api-keys",
                json!({"spec": {"owner": {"id": sa}, "resource": {"id": region, "environment": w.env}}}),
            ),
            202,
        );
        format!(
            "{}:{}",
            b["id"].as_str().expect("id"),
            b["spec"]["secret"].as_str().expect("secret")
        )
    };
    let jar_dir = tempfile::tempdir().expect("tempdir");
    let jar = flink.job_jar(jar_dir.path());
    let out = Command::new(python())
        .arg(format!("{}/tests/python/flink.py", root()))
        .env(
            "GW",
            format!("{}/flink/{}/{region}", w.srv.services_url, w.env),
        )
        .env(
            "OTHER_GW",
            format!("{}/flink/{other_env}/{region}", w.srv.services_url),
        )
        .env("JAR", &jar)
        .env("FLINK_HOME", &flink.home)
        .env("FLINK_CONF_DIR", flink.dir.path())
        .env("DEV1", key_for("dev1", "FlinkDeveloper", &region_crn))
        .env("DEV2", key_for("dev2", "FlinkDeveloper", &env_crn))
        .env("OPER", key_for("oper", "Operator", &env_crn))
        .env("ADMIN", key_for("fadmin", "FlinkAdmin", &region_crn))
        .env("OUT", key_for("out", "", ""))
        .output()
        .expect("run python");
    let text = text_of(&out);
    assert!(out.status.success(), "{text}\n{}", w.srv.logs());
    assert!(text.contains("flink scenario ok"), "{text}");
}

/// Debian's nginx in front of a registry with keygate as its `auth_request` service:
/// keygate decides, nginx proxies.
#[test]
fn nginx_auth_request_uses_keygate_decisions() {
    let sr = sr_world("");
    let (sa, reader) = sr.principal("via-nginx", "DeveloperRead", "/subject=orders*");
    let (_, steward) = sr.principal("nginx-steward", "DataSteward", "@env");
    steward.ok(
        steward.post("/subjects/orders-value/versions", schema("Order")),
        200,
    );
    let nginx = "/usr/sbin/nginx";
    assert!(
        std::path::Path::new(nginx).exists(),
        "nginx is not installed: run scripts/test (it runs `apt-get install nginx`)"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_ports(1);
    let gw =
        sr.w.srv
            .services_url
            .trim_start_matches("http://")
            .to_owned();
    let d = dir.path().display();
    std::fs::write(
        dir.path().join("nginx.conf"),
        format!(
            "user root;\nworker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  server {{\n    listen 127.0.0.1:{port};\n    location / {{\n      auth_request /_keygate;\n      auth_request_set $principal $upstream_http_x_keygate_principal;\n      proxy_set_header Authorization \"\";\n      proxy_set_header X-Principal $principal;\n      proxy_set_header X-API-Key \"{UPSTREAM_KEY}\";\n      proxy_pass {};\n    }}\n    location = /_keygate {{\n      internal;\n      proxy_pass http://{gw}/_keygate/ext-authz/sr/{}$request_uri;\n      proxy_pass_request_body off;\n      proxy_set_header Content-Length \"\";\n      proxy_set_header X-Original-Method $request_method;\n    }}\n  }}\n}}\n",
            sr.up.url(),
            sr.lsrc
        ),
    )
    .expect("nginx.conf");
    let mut child = Command::new(nginx)
        .args(["-c", &format!("{d}/nginx.conf"), "-p", &d.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    wait_for_port(port);
    sr.up.reset();
    let via = Api {
        url: format!("http://127.0.0.1:{port}"),
        key: reader.key.clone(),
        secret: reader.secret.clone(),
    };
    assert_eq!(via.get("/subjects/orders-value/versions").0, 200);
    assert_eq!(
        via.post("/subjects/orders-value/versions", schema("Order2"))
            .0,
        403
    );
    assert_eq!(via.get("/subjects/payments-value/versions").0, 403);
    let anonymous = Api {
        url: via.url.clone(),
        key: "nobody".into(),
        secret: "x".into(),
    };
    assert_eq!(anonymous.get("/subjects").0, 401);
    let seen = sr.up.requests();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        seen.len(),
        1,
        "only the allowed request reached the upstream: {seen:?}"
    );
    assert_eq!(seen[0]["headers"]["x-principal"], format!("User:{sa}"));
    assert!(seen[0]["headers"].get("authorization").is_none());
}

/// The HTTP gateway's listener bounds what one peer holds: connections per address,
/// and a head that drips in is cut at the header timeout.
#[test]
fn http_gateway_bounds_connections_and_slow_heads() {
    let sr = sr_world("http_gateway_max_connections_per_ip = 8\nhttp_header_timeout_ms = 500\n");
    let addr =
        sr.w.srv
            .services_url
            .trim_start_matches("http://")
            .to_owned();
    let held: Vec<TcpStream> = (0..8)
        .map(|_| TcpStream::connect(&addr).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let mut ninth = TcpStream::connect(&addr).expect("connect");
    ninth.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut buf = [0u8; 64];
    let _ = ninth.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        matches!(ninth.read(&mut buf), Ok(0) | Err(_)),
        "a ninth connection from one address was served"
    );
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    // A head dripped one byte every 100 ms is cut at the header timeout.
    let mut slow = TcpStream::connect(&addr).expect("connect");
    slow.set_read_timeout(Some(Duration::from_millis(50))).ok();
    let start = Instant::now();
    let head = b"GET /sr/x/subjects HTTP/1.1\r\nHost: x\r\nX-Drip: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut closed = false;
    for b in head.iter().cycle().take(100) {
        if slow.write_all(&[*b]).is_err() {
            closed = true;
            break;
        }
        match slow.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(_) => {}
            Err(_) => {}
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(closed, "a dripping head was never cut");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "cut after {:?}",
        start.elapsed()
    );
    // The listener still serves.
    let (_, c) = sr.principal("after", "", "");
    assert_eq!(c.get("/subjects").0, 200);
}

/// npm's ksqldb-client, which speaks HTTP/2 and takes a host and port but no path:
/// the ksqlDB cluster is reached by host name, over h2c, with its key as Basic.
#[test]
fn ksqldb_client_over_http2_by_host_name() {
    let (w, up, id, crn) = ksql_world("http_gateway_domain = \"ksql.test\"\n");
    let port = w
        .srv
        .services_url
        .rsplit(':')
        .next()
        .expect("port")
        .to_owned();
    let run = |key: &str, secret: &str, want: &str| {
        let out = Command::new("node")
            .arg(format!("{}/tests/js/ksqldb.js", root()))
            .env("HOST", format!("{id}.ksql.test"))
            .env("PORT", &port)
            .env("KEY", key)
            .env("SECRET", secret)
            .env("WANT", want)
            .output()
            .expect("run node (scripts/test installs tests/js)");
        let text = text_of(&out);
        assert!(out.status.success(), "{want}: {text}\n{}", w.srv.logs());
        text
    };
    let admin_sa = w.admin.sa("ksql-h2");
    w.admin
        .bind(&format!("User:{admin_sa}"), "ResourceOwner", &crn);
    let (k, s) = w.admin.key(&admin_sa, &id);
    let out = run(&k, &s, "allowed");
    assert!(out.contains("ksqldb-client ok"), "{out}");
    let outsider = w.admin.sa("ksql-h2-outsider");
    let (k, s) = w.admin.key(&outsider, &id);
    run(&k, &s, "denied");
    // The upstream saw HTTP/1.1 requests with the gateway's credential only.
    let seen = up.requests();
    assert!(
        seen.iter().any(|r| r["path"] == "/query-stream"),
        "{seen:?}"
    );
    assert!(seen
        .iter()
        .all(|r| r["headers"]["authorization"] == "Bearer up-token"));
}

/// ksqlDB's websocket push query passes through (the upgrade is tunnelled) and the
/// tunnel is cut within a second of the key being disabled.
#[test]
fn ksql_websocket_push_queries_tunnel_and_end_on_revocation() {
    let (w, up, id, crn) = ksql_world("");
    let sa = w.admin.sa("ws-user");
    w.admin.bind(&format!("User:{sa}"), "KsqlAdmin", &crn);
    let (k, s) = w.admin.key(&sa, &id);
    let addr = w.srv.services_url.trim_start_matches("http://").to_owned();
    let mut sock = TcpStream::connect(&addr).expect("connect");
    write!(
        sock,
        "GET /ksql/{id}/ws/query?request=%7B%7D HTTP/1.1\r\nHost: gw\r\nAuthorization: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        base64_basic(&k, &s)
    )
    .expect("write");
    sock.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut buf = [0u8; 4096];
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("\"row\"") {
        let n = sock.read(&mut buf).expect("read");
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    assert!(text.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{text}");
    w.admin.ok(
        w.admin
            .post(&format!("/iam/v2/api-keys/{k}/disable"), json!({})),
        200,
    );
    let disabled_at = Instant::now();
    loop {
        match sock.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => assert!(
                disabled_at.elapsed() < Duration::from_secs(3),
                "the tunnel went on after the key was disabled"
            ),
        }
    }
    let cut = disabled_at.elapsed();
    // Announced, not polled: the stream ends as the disable commits.
    assert!(cut < Duration::from_millis(100), "cut after {cut:?}");
    // The upstream saw the gateway's credential on the upgrade, not the client's.
    let seen = up.requests();
    assert!(seen.iter().any(|r| r["path"]
        .as_str()
        .is_some_and(|p| p.starts_with("/ws/query"))
        && r["headers"]["authorization"] == "Bearer up-token"));
}

/// The gateway's own TLS toward an https upstream: the registry's CA, and a client
/// certificate (mTLS) the upstream requires; without them, the upstream is unreachable.
#[test]
fn https_upstream_with_a_ca_and_a_client_certificate() {
    let w = world(&[], "");
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = crate::tls::Pki::new(dir.path(), "upstream-ca");
    let (cert, key) = pki.server("registry", "registry", &["127.0.0.1"]);
    let (client_cert, client_key) = pki.client("gateway", "keygate-gw", "keygate", 7, None);
    let up = TestUpstream::start_with(
        "schema_registry.py",
        "X-API-Key:tls-upstream",
        &[
            ("TLS_CERT", cert.display().to_string()),
            ("TLS_KEY", key.display().to_string()),
            ("TLS_CLIENT_CA", pki.ca.display().to_string()),
        ],
    );
    let read = |p: &std::path::Path| std::fs::read_to_string(p).expect("pem");
    let register = |name: &str, with_client: bool| {
        let mut sec = json!({"http_auth": "HEADER", "header_name": "X-API-Key", "password": "tls-upstream",
            "ca_pem": read(&pki.ca)});
        if with_client {
            sec["client_certificate_pem"] = json!(read(&client_cert));
            sec["client_key_pem"] = json!(read(&client_key));
        }
        let b = w.admin.ok(
            w.admin.post(
                "/srcm/v3/clusters",
                json!({"spec": {"display_name": name, "environment": {"id": w.env},
                    "upstream": format!("https://127.0.0.1:{}", up.port), "upstream_security": sec}}),
            ),
            201,
        );
        assert_eq!(
            b["spec"]["upstream_security"]["client_certificate_set"],
            with_client
        );
        assert!(!b.to_string().contains("PRIVATE KEY"), "{b}");
        let lsrc = b["id"].as_str().expect("id").to_owned();
        let crn = b["metadata"]["resource_name"]
            .as_str()
            .expect("crn")
            .to_owned();
        let sa = w.admin.sa(&format!("{name}-reader"));
        w.admin.bind(
            &format!("User:{sa}"),
            "ResourceOwner",
            &format!("{crn}/subject=*"),
        );
        let (k, s) = w.admin.key(&sa, &lsrc);
        Api {
            url: format!("{}/sr/{lsrc}", w.srv.services_url),
            key: k,
            secret: s,
        }
    };
    let mtls = register("mtls", true);
    assert_eq!(mtls.get("/subjects"), (200, json!([])));
    // What reached the upstream, asked over its own mTLS with curl.
    let out = Command::new("curl")
        .args(["-sf", "--cacert"])
        .arg(&pki.ca)
        .arg("--cert")
        .arg(&client_cert)
        .arg("--key")
        .arg(&client_key)
        .arg(format!("https://127.0.0.1:{}/__test/requests", up.port))
        .output()
        .expect("curl (scripts/test installs it)");
    let seen: Vec<Value> = serde_json::from_slice(&out.stdout).expect("requests json");
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["client_cn"], "keygate-gw");
    assert_eq!(seen[0]["headers"]["x-api-key"], "tls-upstream");
    // Without the client certificate the upstream refuses the handshake: 502.
    let no_client = register("no-client", false);
    assert_eq!(no_client.get("/subjects").0, 502);
    // A TLS setting with an http:// upstream is refused when registering.
    let (code, body) = w.admin.post(
        "/srcm/v3/clusters",
        json!({"spec": {"display_name": "plain", "environment": {"id": w.env},
            "upstream": "http://127.0.0.1:1", "upstream_security": {"ca_pem": read(&pki.ca)}}}),
    );
    assert_eq!(code, 422, "{body}");
    assert!(body.to_string().contains("https"), "{body}");
}
