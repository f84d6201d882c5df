//! The Kafka gateway with real components: the Tansu broker upstream and Debian's kcat
//! (librdkafka 2.0.2) as the client. Both are installed by scripts/test; a missing one
//! fails these tests loudly.

use crate::harness::{Api, Server};
use serde_json::json;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The address space a server may use in tests that prove allocation is bounded by the
/// input: 4 GiB, several times what a busy test server maps, far below what one claimed
/// array of 2^31 elements would reserve.
const ADDRESS_SPACE_LIMIT: &str = "--as=4294967296";

pub fn tansu_bin() -> String {
    if let Ok(p) = std::env::var("KEYGATE_TANSU") {
        return p;
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let cargo_bin = format!("{home}/.cargo/bin/tansu");
    if std::path::Path::new(&cargo_bin).exists() {
        return cargo_bin;
    }
    panic!("the Tansu broker is not installed: run scripts/test (it runs `cargo install tansu --version 0.6.0 --locked --features dynostore,libsql`)");
}

pub fn kcat_bin() -> &'static str {
    assert!(
        Command::new("kcat")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success()),
        "kcat is not installed: run scripts/test (it runs `apt-get install kcat`)"
    );
    "kcat"
}

/// `n` free consecutive ports, below the kernel's ephemeral range (32768–60999 by
/// default): a server elsewhere in the test run that binds port 0 can never be given
/// one of them between this check and the moment our listener binds it.
pub fn free_ports(n: u16) -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const SPAN: u32 = 32_768 - LOW - 64;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Test binaries run side by side: each starts somewhere else in the range.
    let start = std::process::id().wrapping_mul(7919) % SPAN;
    for _ in 0..2000 {
        let step = NEXT.fetch_add(u32::from(n) + 16, Ordering::SeqCst);
        let p = (LOW + (start + step) % SPAN) as u16;
        if (0..n).all(|i| TcpListener::bind(("127.0.0.1", p + i)).is_ok()) {
            return p;
        }
    }
    panic!("no free ports");
}

pub fn wait_for_port(port: u16) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "port {port} never opened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(crate) struct Tansu {
    child: Child,
    pub port: u16,
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Tansu {
    pub fn start(topics: &[&str]) -> Tansu {
        Tansu::start_on(free_ports(1), topics)
    }

    /// Stop the broker (the port closes).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Create a topic with `partitions` partitions.
    pub fn create_topic(&self, name: &str, partitions: u32) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let out = Command::new(tansu_bin())
            .args(["topic", "create", name, "--broker", &url, "--partitions"])
            .arg(partitions.to_string())
            .output()
            .expect("tansu topic create");
        assert!(
            out.status.success(),
            "creating {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn start_on(port: u16, topics: &[&str]) -> Tansu {
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(tansu_bin())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args([
                "--storage-engine",
                "memory://tansu/",
                "--cluster-id",
                "test",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        wait_for_port(port);
        for t in topics {
            let out = Command::new(tansu_bin())
                .args(["topic", "create", t, "--broker", &url, "--partitions", "1"])
                .output()
                .expect("tansu topic create");
            assert!(
                out.status.success(),
                "creating {t}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Tansu { child, port }
    }
}

/// keygate + Tansu + a cluster registration, with the gateway's bootstrap address.
pub(crate) struct World {
    pub srv: Server,
    pub dir: tempfile::TempDir,
    pub tansu: Tansu,
    pub admin: Api,
    pub env: String,
    pub lkc: String,
    pub bootstrap: String,
}

pub fn world(topics: &[&str], toml: &str) -> World {
    world_with(topics, |_| toml.to_owned())
}

/// A world whose keygate.toml may name the broker (given its port).
pub fn world_with(topics: &[&str], toml: impl FnOnce(u16) -> String) -> World {
    world_limited(topics, toml, &[])
}

/// A world whose keygate runs under resource limits (prlimit(1) options).
pub fn world_limited(topics: &[&str], toml: impl FnOnce(u16) -> String, limits: &[&str]) -> World {
    let tansu = Tansu::start(topics);
    let base = free_ports(4);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("keygate.toml"), toml(tansu.port)).expect("toml");
    let srv = Server::start_limited(
        dir.path(),
        &["--gateway-port-base", &base.to_string()],
        limits,
    );
    let admin = srv.admin();
    let env = admin.env("prod");
    let b = admin.ok(
        admin.post("/cmk/v2/clusters", json!({"spec":{"display_name":"main","environment":{"id":env},"upstream":format!("127.0.0.1:{}", tansu.port)}})),
        202,
    );
    let lkc = b["id"].as_str().expect("lkc").to_owned();
    let bootstrap = b["spec"]["kafka_bootstrap_endpoint"]
        .as_str()
        .expect("bootstrap endpoint")
        .to_owned();
    assert_eq!(bootstrap, format!("127.0.0.1:{base}"));
    wait_for_port(base);
    World {
        srv,
        dir,
        tansu,
        admin,
        env,
        lkc,
        bootstrap,
    }
}

impl World {
    /// A service account with a key for this cluster and the given topic/group ACLs.
    pub fn app(&self, name: &str, acls: &[(&str, &str, &str, &str)]) -> (String, String, String) {
        let sa = self.admin.sa(name);
        let (k, s) = self.admin.key(&sa, &self.lkc);
        let data: Vec<_> = acls
            .iter()
            .map(|(rt, rn, op, perm)| {
                json!({"resource_type":rt,"resource_name":rn,"pattern_type":"LITERAL","principal":format!("User:{sa}"),"operation":op,"permission":perm})
            })
            .collect();
        if !data.is_empty() {
            self.admin.ok(
                self.admin.post(
                    &format!("/kafka/v3/clusters/{}/acls:batch", self.lkc),
                    json!({"data": data}),
                ),
                201,
            );
        }
        (sa, k, s)
    }

    pub fn kcat(
        &self,
        key: &str,
        secret: &str,
        args: &[&str],
        stdin: Option<&str>,
    ) -> (bool, String) {
        kcat_at(&self.bootstrap, key, secret, args, stdin)
    }
}

/// kcat (Debian's) for `bootstrap` with SASL/PLAIN key:secret, fetches polled every
/// 10 ms; the caller adds the mode and its arguments.
fn kcat_plain(bootstrap: &str, key: &str, secret: &str) -> Command {
    kcat_cmd(bootstrap, key, secret, None)
}

/// kcat with SASL/PLAIN key:secret; over TLS (SASL_SSL) trusting `ca` when given.
pub fn kcat_cmd(bootstrap: &str, key: &str, secret: &str, ca: Option<&Path>) -> Command {
    let mut cmd = Command::new(kcat_bin());
    // Debian's librdkafka, not the rdkafka crate's build (cargo's LD_LIBRARY_PATH).
    cmd.env_remove("LD_LIBRARY_PATH").args(["-b", bootstrap]);
    match ca {
        Some(ca) => cmd
            .args(["-X", "security.protocol=SASL_SSL", "-X"])
            .arg(format!("ssl.ca.location={}", ca.display())),
        None => cmd.args(["-X", "security.protocol=SASL_PLAINTEXT"]),
    };
    cmd.args(["-X", "sasl.mechanism=PLAIN"])
        .arg("-X")
        .arg(format!("sasl.username={key}"))
        .arg("-X")
        .arg(format!("sasl.password={secret}"))
        .args(["-X", "fetch.wait.max.ms=10"]);
    cmd
}

/// A long-running kcat consumer of `topic` from the beginning (no `-e`): it keeps its
/// connections open until killed.
pub fn kcat_consumer(bootstrap: &str, key: &str, secret: &str, topic: &str) -> Child {
    kcat_plain(bootstrap, key, secret)
        .args(["-C", "-t", topic, "-o", "beginning", "-u"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kcat")
}

/// kcat against a gateway bootstrap address with SASL/PLAIN key:secret.
pub fn kcat_at(
    bootstrap: &str,
    key: &str,
    secret: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> (bool, String) {
    let mut cmd = kcat_plain(bootstrap, key, secret);
    cmd.args(["-m", "5"]).args(args);
    run_kcat(cmd, stdin)
}

/// Runs a prepared kcat command, feeding it `stdin` if any; returns whether it
/// succeeded (killed after 30 s) and its stdout followed by its stderr.
pub fn run_kcat(mut cmd: Command, stdin: Option<&str>) -> (bool, String) {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("kcat");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write");
    }
    let out = wait_with_timeout(child, Duration::from_secs(30));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn wait_with_timeout(mut child: Child, limit: Duration) -> std::process::Output {
    let start = Instant::now();
    loop {
        if child.try_wait().ok().flatten().is_some() || start.elapsed() > limit {
            let _ = child.kill();
            return child.wait_with_output().expect("output");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn kcat_produces_and_consumes_exactly_as_far_as_acls_allow() {
    let w = world(&["orders", "payments", "audit"], "");
    let (_, k, s) = w.app(
        "orders-app",
        &[
            ("TOPIC", "orders", "WRITE", "ALLOW"),
            ("TOPIC", "orders", "READ", "ALLOW"),
            ("TOPIC", "payments", "DESCRIBE", "ALLOW"),
        ],
    );
    // Metadata lists only describable topics, and the broker at a gateway address.
    let (ok, out) = w.kcat(&k, &s, &["-L"], None);
    assert!(ok, "{out}");
    assert!(
        out.contains("topic \"orders\"") && out.contains("topic \"payments\""),
        "{out}"
    );
    assert!(
        !out.contains("\"audit\""),
        "a topic the key may not describe is listed: {out}"
    );
    assert!(
        !out.contains(&format!(":{}", w.tansu.port)),
        "the upstream broker address leaked: {out}"
    );
    // Produce and consume.
    let (ok, out) = w.kcat(&k, &s, &["-P", "-t", "orders"], Some("first\nsecond\n"));
    assert!(ok, "produce failed: {out}");
    let (ok, out) = w.kcat(
        &k,
        &s,
        &["-C", "-t", "orders", "-o", "beginning", "-e"],
        None,
    );
    assert!(
        ok && out.contains("first") && out.contains("second"),
        "consume: {out}"
    );
    // WRITE denied where only DESCRIBE is granted; READ denied likewise.
    let (ok, out) = w.kcat(&k, &s, &["-P", "-t", "payments"], Some("x\n"));
    assert!(!ok || out.contains("Topic authorization failed"), "{out}");
    assert!(out.contains("Topic authorization failed"), "{out}");
    let (_, out) = w.kcat(
        &k,
        &s,
        &["-C", "-t", "payments", "-o", "beginning", "-e"],
        None,
    );
    assert!(out.contains("authorization failed"), "{out}");
}

#[test]
fn prefixed_allow_with_a_literal_deny() {
    let w = world(&["orders-eu", "orders-us", "orders-secret"], "");
    let (sa, k, s) = w.app("prefixed", &[("TOPIC", "orders-secret", "ALL", "DENY")]);
    w.admin.ok(
        w.admin.post(
            &format!("/kafka/v3/clusters/{}/acls:batch", w.lkc),
            json!({"data": [
                {"resource_type":"TOPIC","resource_name":"orders-","pattern_type":"PREFIXED","principal":format!("User:{sa}"),"operation":"WRITE","permission":"ALLOW"},
                {"resource_type":"TOPIC","resource_name":"orders-","pattern_type":"PREFIXED","principal":format!("User:{sa}"),"operation":"READ","permission":"ALLOW"},
            ]}),
        ),
        201,
    );
    let (ok, out) = w.kcat(&k, &s, &["-L"], None);
    assert!(
        ok && out.contains("\"orders-eu\"") && out.contains("\"orders-us\""),
        "{out}"
    );
    assert!(
        !out.contains("orders-secret"),
        "the denied topic is listed: {out}"
    );
    for t in ["orders-eu", "orders-us"] {
        let (ok, out) = w.kcat(&k, &s, &["-P", "-t", t], Some("m\n"));
        assert!(ok, "{t}: {out}");
    }
    let (_, out) = w.kcat(&k, &s, &["-P", "-t", "orders-secret"], Some("m\n"));
    assert!(out.contains("Topic authorization failed"), "{out}");
}

#[test]
fn authentication_failures_look_the_same_and_keep_the_gateway_serving() {
    let w = world(&["orders"], "key_usage_flush_ms = 100\n");
    let (sa, k, s) = w.app("good", &[("TOPIC", "orders", "DESCRIBE", "ALLOW")]);
    let (cloud_k, cloud_s) = w.admin.key(&sa, "CLOUD");
    // A key for another cluster.
    let other = w.admin.kafka(&w.env, "other");
    let (other_k, other_s) = w.admin.key(&sa, &other);
    let (dis_k, dis_s) = w.admin.key(&sa, &w.lkc);
    w.admin.ok(
        w.admin
            .post(&format!("/iam/v2/api-keys/{dis_k}/disable"), json!({})),
        200,
    );
    let soon = (chrono::Utc::now() + chrono::Duration::milliseconds(800)).to_rfc3339();
    let exp = w.admin.ok(
        w.admin.post(
            "/iam/v2/api-keys",
            json!({"spec":{"owner":{"id":sa},"resource":{"id":w.lkc},"expires_at":soon}}),
        ),
        202,
    );
    let (exp_k, exp_s) = (
        exp["id"].as_str().unwrap_or_default().to_owned(),
        exp["spec"]["secret"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    );
    std::thread::sleep(Duration::from_millis(1000));
    for (what, key, secret) in [
        ("wrong secret", k.as_str(), "kgs_wrong"),
        ("unknown key", "ZZZZZZZZZZZZZZZZ", s.as_str()),
        ("CLOUD key", cloud_k.as_str(), cloud_s.as_str()),
        ("key of another cluster", other_k.as_str(), other_s.as_str()),
        ("disabled key", dis_k.as_str(), dis_s.as_str()),
        ("expired key", exp_k.as_str(), exp_s.as_str()),
    ] {
        let (ok, out) = w.kcat(key, secret, &["-L"], None);
        assert!(!ok, "{what}: metadata succeeded");
        assert!(
            out.contains("Authentication failed: invalid API key or secret"),
            "{what}: {out}"
        );
    }
    // The good key still works, and its use is recorded (in batches).
    assert!(w.admin.get(&format!("/iam/v2/api-keys/{k}")).1["status"]["last_used_at"].is_null());
    let (ok, out) = w.kcat(&k, &s, &["-L"], None);
    assert!(ok && out.contains("orders"), "{out}");
    std::thread::sleep(Duration::from_millis(400));
    assert!(
        w.admin.get(&format!("/iam/v2/api-keys/{k}")).1["status"]["last_used_at"].is_string(),
        "last_used_at not recorded"
    );
    // Nothing secret reached the log.
    let logs = w.srv.logs();
    for secret in [&s, &other_s, &dis_s, &cloud_s] {
        assert!(!logs.contains(secret.as_str()));
    }
    assert!(logs.contains("Kafka authentication failed"));
}

#[test]
fn a_deleted_key_loses_its_open_connection() {
    let w = world(&["orders"], "");
    let (_, k, s) = w.app(
        "consumer",
        &[
            ("TOPIC", "orders", "READ", "ALLOW"),
            ("TOPIC", "orders", "WRITE", "ALLOW"),
        ],
    );
    let (ok, out) = w.kcat(&k, &s, &["-P", "-t", "orders"], Some("m1\n"));
    assert!(ok, "{out}");
    // A long-running consumer (no -e): it keeps its connections open.
    let mut consumer = kcat_consumer(&w.bootstrap, &k, &s, "orders");
    std::thread::sleep(Duration::from_millis(1500));
    let deleted_at = Instant::now();
    assert_eq!(w.admin.delete(&format!("/iam/v2/api-keys/{k}")).0, 204);
    // The gateway closes the connections; librdkafka reconnects and fails to authenticate.
    let logs_deadline = deleted_at + Duration::from_secs(5);
    loop {
        let logs = w.srv.logs();
        if logs.contains("credential revoked") {
            break;
        }
        assert!(
            Instant::now() < logs_deadline,
            "the open connection was not closed after the key was deleted:\n{logs}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let closed_after = deleted_at.elapsed();
    let _ = consumer.kill();
    let out = consumer.wait_with_output().expect("output");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("m1"),
        "the consumer read before revocation"
    );
    assert!(
        closed_after < Duration::from_secs(2),
        "closed after {closed_after:?}"
    );
}

#[test]
fn an_upstream_that_goes_away_and_comes_back() {
    let mut w = world(&["orders"], "");
    let (_, k, s) = w.app("resilient", &[("TOPIC", "orders", "WRITE", "ALLOW")]);
    let (ok, out) = w.kcat(&k, &s, &["-P", "-t", "orders"], Some("before\n"));
    assert!(ok, "{out}");
    let port = w.tansu.port;
    w.tansu.stop();
    // The broker is gone: the client fails, the gateway and the REST API keep serving.
    let (ok, _) = w.kcat(&k, &s, &["-P", "-t", "orders"], Some("during\n"));
    assert!(!ok, "a produce succeeded with the broker down");
    assert_eq!(w.admin.get("/healthz").0, 200);
    // The broker is back (memory storage: the topic is created again).
    w.tansu = Tansu::start_on(port, &["orders"]);
    let (ok, out) = w.kcat(&k, &s, &["-P", "-t", "orders"], Some("after\n"));
    assert!(ok, "no recovery after the broker came back: {out}");
    let (ok, out) = w.kcat(&k, &s, &["-L"], None);
    assert!(ok && out.contains("orders"), "{out}");
}

/// One request on a raw connection (client id `it`; a v2 header with empty tagged
/// fields when `flexible`); returns the response body after its header, having checked
/// the correlation id.
pub fn raw_call(
    c: &mut TcpStream,
    api: i16,
    version: i16,
    corr: i32,
    flexible: bool,
    body: &[u8],
) -> Vec<u8> {
    use std::io::Read;
    let mut frame = Vec::new();
    frame.extend_from_slice(&api.to_be_bytes());
    frame.extend_from_slice(&version.to_be_bytes());
    frame.extend_from_slice(&corr.to_be_bytes());
    frame.extend_from_slice(&2i16.to_be_bytes());
    frame.extend_from_slice(b"it");
    if flexible {
        frame.push(0);
    }
    frame.extend_from_slice(body);
    let mut out = (frame.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&frame);
    c.write_all(&out).expect("write");
    let mut len = [0u8; 4];
    c.read_exact(&mut len).expect("response length");
    let mut resp = vec![0u8; i32::from_be_bytes(len) as usize];
    c.read_exact(&mut resp).expect("response");
    assert_eq!(&resp[..4], &corr.to_be_bytes(), "correlation id");
    resp[if flexible { 5 } else { 4 }..].to_vec()
}

/// A SaslAuthenticate v1 request body carrying `token`.
pub fn sasl_bytes(token: &[u8]) -> Vec<u8> {
    let mut body = (token.len() as i32).to_be_bytes().to_vec();
    body.extend_from_slice(token);
    body
}

/// A raw client: SaslHandshake v1 for `mechanism` (which must be accepted), then
/// SaslAuthenticate v1 with `token`; returns the stream and the SaslAuthenticate
/// response body.
pub fn raw_sasl(
    addr: std::net::SocketAddr,
    mechanism: &[u8],
    token: &[u8],
) -> (TcpStream, Vec<u8>) {
    let mut c = TcpStream::connect(addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut body = (mechanism.len() as i16).to_be_bytes().to_vec();
    body.extend_from_slice(mechanism);
    let r = raw_call(&mut c, 17, 1, 1, false, &body);
    assert_eq!(&r[..2], &[0, 0], "SaslHandshake failed");
    let r = raw_call(&mut c, 36, 1, 2, false, &sasl_bytes(token));
    (c, r)
}

/// A raw client authenticated with SASL/PLAIN, nothing else.
pub fn raw_authenticated(addr: std::net::SocketAddr, key: &str, secret: &str) -> TcpStream {
    let (c, r) = raw_sasl(addr, b"PLAIN", format!("\0{key}\0{secret}").as_bytes());
    assert_eq!(&r[..2], &[0, 0], "SaslAuthenticate failed");
    c
}

fn is_closed(mut c: TcpStream, bytes: &[u8]) -> bool {
    let _ = c.write_all(bytes);
    let mut buf = [0u8; 64];
    matches!(std::io::Read::read(&mut c, &mut buf), Ok(0) | Err(_))
}

#[test]
fn after_authentication_unknown_apis_and_versions_close_only_that_connection() {
    let w = world(&["orders"], "");
    let (_, k, s) = w.app("raw", &[("TOPIC", "orders", "DESCRIBE", "ALLOW")]);
    let addr: std::net::SocketAddr = w.bootstrap.parse().expect("addr");
    // Metadata v99.
    let c = raw_authenticated(addr, &k, &s);
    assert!(
        is_closed(c, &[0, 0, 0, 12, 0, 3, 0, 99, 0, 0, 0, 3, 0, 0, 0xff, 0xff]),
        "unsupported version"
    );
    // An api key Kafka does not have.
    let c = raw_authenticated(addr, &k, &s);
    assert!(
        is_closed(c, &[0, 0, 0, 10, 0x7f, 0, 0, 0, 0, 0, 0, 3, 0, 0]),
        "unknown api key"
    );
    // An API the gateway does not classify, though Tansu serves it
    // (DescribeUserScramCredentials v0, flexible): never forwarded.
    let c = raw_authenticated(addr, &k, &s);
    assert!(
        is_closed(c, &[0, 0, 0, 13, 0, 50, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0]),
        "unclassified api"
    );
    // A truncated body of a known API.
    let c = raw_authenticated(addr, &k, &s);
    assert!(
        is_closed(c, &[0, 0, 0, 10, 0, 0, 0, 7, 0, 0, 0, 3, 0, 0]),
        "malformed produce"
    );
    let logs = w.srv.logs();
    assert!(
        logs.contains("not supported by the gateway") && logs.contains("unknown api key"),
        "the reasons are logged"
    );
    let (ok, out) = w.kcat(&k, &s, &["-L"], None);
    assert!(ok && out.contains("orders"), "{out}");
}

#[test]
fn malformed_input_closes_only_that_connection() {
    let w = world(
        &["orders"],
        "gateway_auth_timeout_ms = 500\ngateway_max_frame_bytes = 1048576\n",
    );
    let (_, k, s) = w.app("ok", &[("TOPIC", "orders", "DESCRIBE", "ALLOW")]);
    let addr: std::net::SocketAddr = w.bootstrap.parse().expect("addr");
    let closed = |bytes: &[u8]| {
        let mut c = TcpStream::connect(addr).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let _ = c.write_all(bytes);
        let mut buf = [0u8; 64];
        // A closed connection reads 0 bytes (or errors); nothing hangs.
        matches!(std::io::Read::read(&mut c, &mut buf), Ok(0) | Err(_))
    };
    assert!(closed(&[0xff, 0xff, 0xff, 0xff]), "negative length");
    assert!(closed(&[0x7f, 0xff, 0xff, 0xff]), "length over the maximum");
    // Under the configured maximum (1 MiB) but over what may come before authenticating.
    assert!(
        closed(&(600 * 1024i32).to_be_bytes()),
        "large before authentication"
    );
    assert!(closed(&[0, 0, 0, 4, 1, 2]), "truncated frame");
    assert!(closed(b"GET / HTTP/1.1\r\n\r\n"), "garbage");
    // Metadata v1 before authenticating: the connection is closed.
    assert!(
        closed(&[0, 0, 0, 12, 0, 3, 0, 1, 0, 0, 0, 7, 0, 0, 0xff, 0xff]),
        "request before authentication"
    );
    // An unknown api key before authentication.
    assert!(
        closed(&[0, 0, 0, 10, 0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0, 0]),
        "unknown api key"
    );
    // Connect and say nothing: closed after the authentication timeout.
    let start = Instant::now();
    assert!(closed(&[]), "silent client");
    assert!(
        start.elapsed() >= Duration::from_millis(400),
        "closed before the timeout"
    );
    // A client that disconnects mid-request.
    {
        let mut c = TcpStream::connect(addr).expect("connect");
        let _ = c.write_all(&[0, 0, 0, 100, 0, 18]);
    }
    // Every other client is still served.
    let (ok, out) = w.kcat(&k, &s, &["-L"], None);
    assert!(ok && out.contains("orders"), "{out}");
    assert!(
        w.srv
            .logs()
            .contains("frame length 614400 is outside 0..=524288"),
        "the pre-authentication limit is what closed it"
    );
}

/// A request whose array claims billions of elements in a few bytes: the one connection
/// is closed, everyone else is served. The server runs under an address-space limit
/// (what `vm.overcommit_memory=2` means for it), so a decoder that reserved what the
/// count claims before reading an element would abort the process; the vendored codec
/// checks each count against the bytes left in the frame (KEYGATE-PATCH.md).
#[test]
fn array_counts_beyond_the_frame_close_only_that_connection() {
    let mut w = world_limited(&["orders"], |_| String::new(), &[ADDRESS_SPACE_LIMIT]);
    let (_, k, s) = w.app("greedy", &[("TOPIC", "orders", "DESCRIBE", "ALLOW")]);
    let addr: std::net::SocketAddr = w.bootstrap.parse().expect("addr");
    let frame = |api: i16, version: i16, flexible: bool, body: &[u8]| {
        let mut f = Vec::new();
        f.extend_from_slice(&api.to_be_bytes());
        f.extend_from_slice(&version.to_be_bytes());
        f.extend_from_slice(&7i32.to_be_bytes());
        f.extend_from_slice(&(-1i16).to_be_bytes()); // no client id
        if flexible {
            f.push(0); // no tagged fields
        }
        f.extend_from_slice(body);
        let mut out = (f.len() as i32).to_be_bytes().to_vec();
        out.extend_from_slice(&f);
        out
    };
    let cases = [
        // Metadata v1: topics = 2^31 - 1 elements.
        ("metadata v1", frame(3, 1, false, &[0x7f, 0xff, 0xff, 0xff])),
        // Metadata v9 (flexible): a compact array of 2^32 - 2 elements.
        (
            "metadata v9",
            frame(3, 9, true, &[0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0]),
        ),
        // Produce v7: no transactional id, acks 1, timeout 1000, topics = 2^31 - 1.
        (
            "produce v7",
            frame(
                0,
                7,
                false,
                &[0xff, 0xff, 0, 1, 0, 0, 3, 0xe8, 0x7f, 0xff, 0xff, 0xff],
            ),
        ),
    ];
    for (what, bytes) in &cases {
        let c = raw_authenticated(addr, &k, &s);
        assert!(is_closed(c, bytes), "{what}: connection closed");
        std::thread::sleep(Duration::from_millis(200));
        assert!(w.srv.is_running(), "{what}: the server survived");
    }
    let (ok, out) = w.kcat(&k, &s, &["-L"], None);
    assert!(ok && out.contains("orders"), "{out}");
    assert!(
        w.srv.logs().contains("malformed Metadata v1 request"),
        "the reason is logged"
    );
}

#[test]
fn cluster_operator_apis_need_alter_on_the_cluster() {
    let w = world(&["orders"], "");
    let (_, k, s) = w.app(
        "reader",
        &[("CLUSTER", "kafka-cluster", "DESCRIBE", "ALLOW")],
    );
    let (_, ok_k, ok_s) = w.app(
        "operator",
        &[("CLUSTER", "kafka-cluster", "ALTER", "ALLOW")],
    );
    let addr: std::net::SocketAddr = w.bootstrap.parse().expect("addr");
    // ListPartitionReassignments v0: timeout 1000 ms, all topics (null), no tags.
    let body = [0, 0, 3, 0xe8, 0, 0];
    let error_code = |resp: &[u8]| i16::from_be_bytes([resp[4], resp[5]]);
    let mut c = raw_authenticated(addr, &k, &s);
    let resp = raw_call(&mut c, 46, 0, 9, true, &body);
    assert_eq!(
        error_code(&resp),
        31,
        "CLUSTER_AUTHORIZATION_FAILED from the gateway"
    );
    // The connection stays usable after a denial.
    let resp = raw_call(&mut c, 46, 0, 9, true, &body);
    assert_eq!(error_code(&resp), 31);
    // With ALTER on the cluster the request reaches Tansu, which answers it.
    let mut c = raw_authenticated(addr, &ok_k, &ok_s);
    let resp = raw_call(&mut c, 46, 0, 9, true, &body);
    assert_ne!(error_code(&resp), 31, "forwarded for an operator");
    assert!(w.srv.logs().contains("request denied"));
}
