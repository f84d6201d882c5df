//! Prometheus metrics against the real components: kcat through the gateway on Tansu,
//! Debian's `promtool` checking the exposition, and a real Prometheus scraping keygate
//! and answering a query.

use crate::gateway::{free_ports, world};
use crate::harness::Server;
use std::io::Read;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `/metrics` at `base`, unauthenticated as Prometheus scrapes it.
pub fn scrape(base: &str) -> (u16, String) {
    match ureq::get(&format!("{base}/metrics")).call() {
        Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
        Err(ureq::Error::Status(c, r)) => (c, r.into_string().unwrap_or_default()),
        Err(e) => panic!("scrape {base}: {e}"),
    }
}

/// The value of the series `name{labels…}` whose labels include every `want` pair
/// (summed over the others), or 0 when there is none.
pub fn value(text: &str, name: &str, want: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, v) = l.rsplit_once(' ')?;
            let (n, labels) = series.split_once('{').unwrap_or((series, ""));
            (n == name
                && want
                    .iter()
                    .all(|(k, v)| labels.contains(&format!("{k}=\"{v}\""))))
            .then(|| v.parse::<f64>().ok())?
        })
        .sum()
}

fn promtool_accepts(text: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package; scripts/test installs it)");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("promtool");
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
fn gateway_traffic_shows_in_metrics_promtool_accepts_them() {
    let w = world(&["orders", "secret"], "");
    // It may read `secret` (so it sees the topic) but not write it.
    let (_, k, s) = w.app(
        "metered",
        &[
            ("TOPIC", "orders", "WRITE", "ALLOW"),
            ("TOPIC", "secret", "READ", "ALLOW"),
        ],
    );
    let (ok, out) = w.kcat(&k, &s, &["-P", "-t", "orders"], Some("one\ntwo\n"));
    assert!(ok, "{out}");
    // A topic it may not write: denied. A wrong secret: a failed authentication.
    let (ok, _) = w.kcat(&k, &s, &["-P", "-t", "secret"], Some("x\n"));
    assert!(!ok, "writing `secret` must be refused");
    let (ok, _) = w.kcat(&k, &format!("{s}x"), &["-L"], None);
    assert!(!ok);
    // A REST read of one object: counted under its route template, not its id.
    let sa = w.admin.sa("templated");
    assert_eq!(
        w.admin.get(&format!("/iam/v2/service-accounts/{sa}")).0,
        200
    );

    let (code, text) = scrape(&w.srv.url);
    assert_eq!(code, 200, "{text}");
    let lkc = w.lkc.as_str();
    let kafka_auth = |outcome| {
        value(
            &text,
            "keygate_authentications_total",
            &[
                ("door", "kafka"),
                ("mechanism", "SASL_PLAIN"),
                ("outcome", outcome),
            ],
        )
    };
    assert!(kafka_auth("success") >= 2.0, "{text}");
    assert!(kafka_auth("failure") >= 1.0, "{text}");
    let requests = |api, decision| {
        value(
            &text,
            "keygate_kafka_requests_total",
            &[("cluster", lkc), ("api", api), ("decision", decision)],
        )
    };
    assert!(requests("Produce", "allowed") >= 1.0, "{text}");
    assert!(requests("Produce", "denied") >= 1.0, "{text}");
    assert!(requests("Metadata", "filtered") >= 1.0, "{text}");
    assert!(
        value(
            &text,
            "keygate_kafka_received_bytes_total",
            &[("cluster", lkc)]
        ) > 0.0
    );
    assert!(value(&text, "keygate_kafka_sent_bytes_total", &[("cluster", lkc)]) > 0.0);
    assert!(
        value(
            &text,
            "keygate_kafka_connections_accepted_total",
            &[("cluster", lkc)]
        ) >= 3.0
    );
    assert!(
        value(
            &text,
            "keygate_kafka_processing_seconds_count",
            &[("api", "Produce"), ("stage", "request")]
        ) >= 1.0,
        "{text}"
    );
    assert!(
        value(
            &text,
            "keygate_rest_requests_total",
            &[
                ("route", "/iam/v2/service-accounts/{id}"),
                ("method", "GET"),
                ("status", "200")
            ]
        ) >= 1.0,
        "{text}"
    );
    assert!(!text.contains(&sa), "no series names an object id");
    assert!(!text.contains(&k), "no series names a key");
    assert!(value(&text, "keygate_snapshot_sequence", &[]) > 0.0);
    assert!(value(&text, "process_resident_memory_bytes", &[]) > 0.0);
    let (ok, out) = promtool_accepts(&text);
    assert!(ok, "promtool check metrics: {out}");
}

/// A real Prometheus (Debian's) scrapes keygate and answers a query for the
/// gateway's authentication counter.
#[test]
fn prometheus_scrapes_keygate_and_answers_a_query() {
    let w = world(&["orders"], "");
    let (_, k, s) = w.app("scraped", &[("TOPIC", "orders", "WRITE", "ALLOW")]);
    let (ok, out) = w.kcat(&k, &s, &["-P", "-t", "orders"], Some("one\n"));
    assert!(ok, "{out}");
    let target = w.srv.url.trim_start_matches("http://").to_owned();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: keygate\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .expect("config");
    let port = free_ports(1);
    let _prom = Prom(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (Debian's prometheus package; scripts/test installs it)"),
    );
    let query = format!(
        "http://127.0.0.1:{port}/api/v1/query?query=sum(keygate_authentications_total%7Bdoor%3D%22kafka%22%2Coutcome%3D%22success%22%7D)"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let answer = loop {
        let got = ureq::get(&query)
            .call()
            .ok()
            .and_then(|r| r.into_json::<serde_json::Value>().ok());
        if let Some(v) = got
            .as_ref()
            .and_then(|v| v["data"]["result"][0]["value"][1].as_str())
        {
            break v.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never answered with keygate's counter: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let n: f64 = answer.parse().expect("a number");
    assert!(
        n >= 1.0,
        "Prometheus saw {n} successful Kafka authentications"
    );
}

struct Prom(Child);

impl Drop for Prom {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// With `metrics_listen`, `/metrics` is served there and not on the REST listener.
#[test]
fn metrics_can_live_on_their_own_address() {
    let port = free_ports(1);
    let addr = format!("127.0.0.1:{port}");
    let (srv, _dir) = Server::start(&["--metrics-listen", &addr]);
    assert_eq!(scrape(&srv.url).0, 404);
    let (code, text) = scrape(&format!("http://{addr}"));
    assert_eq!(code, 200);
    assert!(text.contains("keygate_snapshot_sequence"), "{text}");
}

/// A limit hit has its metric, and one log line per window however often it is hit.
#[test]
fn a_refused_connection_is_counted_by_the_limit_that_refused_it() {
    let w = world(&["orders"], "gateway_max_connections_per_ip = 2\n");
    let addr = w.bootstrap.clone();
    let lkc = w.lkc.clone();
    let open_now = || {
        value(
            &scrape(&w.srv.url).1,
            "keygate_kafka_connections_open",
            &[("cluster", &lkc)],
        )
    };
    let wait_open = |n: f64| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while open_now() != n {
            assert!(Instant::now() < deadline, "never {n} open connections");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    // The world's readiness probes are gone, then exactly two are held.
    wait_open(0.0);
    let held: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(&addr).expect("connect"))
        .collect();
    wait_open(2.0);
    for _ in 0..5 {
        let mut extra = TcpStream::connect(&addr).expect("connect");
        extra
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut buf = [0u8; 1];
        let got = extra.read(&mut buf);
        assert!(
            matches!(got, Ok(0))
                || got
                    .as_ref()
                    .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
            "closed at once, not admitted: {got:?}"
        );
    }
    let (_, text) = scrape(&w.srv.url);
    let lkc = lkc.as_str();
    assert_eq!(
        value(
            &text,
            "keygate_kafka_connections_refused_total",
            &[("cluster", lkc), ("reason", "kafka.max_connections.per_ip")]
        ),
        5.0,
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "keygate_limit_hits_total",
            &[("limit", "kafka.max_connections.per_ip")]
        ),
        5.0
    );
    assert_eq!(
        value(&text, "keygate_kafka_connections_open", &[("cluster", lkc)]),
        2.0
    );
    let logs = w.srv.logs();
    assert_eq!(
        logs.matches("limit hit").count(),
        1,
        "one line for the window, not one per refusal: {logs}"
    );
    drop(held);
}

/// SIGTERM: listeners stop accepting, a request already sent is answered, the audit
/// records still in memory are written, and the process exits 0.
#[test]
fn sigterm_drains_answers_what_was_sent_flushes_audit_and_exits_zero() {
    use std::io::Write;
    let mut w = world(&["orders"], "shutdown_grace_s = 5\n");
    let (_, k, s) = w.app("drained", &[("TOPIC", "orders", "DESCRIBE", "ALLOW")]);
    let addr: std::net::SocketAddr = w.bootstrap.parse().expect("addr");
    let mut c = crate::gateway::raw_authenticated(addr, &k, &s);
    // Metadata v1 for every topic, then the signal at once.
    let mut body = Vec::new();
    body.extend_from_slice(&3i16.to_be_bytes());
    body.extend_from_slice(&1i16.to_be_bytes());
    body.extend_from_slice(&77i32.to_be_bytes());
    body.extend_from_slice(&(-1i16).to_be_bytes());
    body.extend_from_slice(&(-1i32).to_be_bytes());
    let mut req = (body.len() as i32).to_be_bytes().to_vec();
    req.extend_from_slice(&body);
    c.write_all(&req).expect("send");
    let pid = w.srv.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .is_ok_and(|s| s.success()));
    // The request sent before the signal is answered in full.
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut len = [0u8; 4];
    c.read_exact(&mut len)
        .expect("an answer, not a cut connection");
    let mut answer = vec![0u8; i32::from_be_bytes(len) as usize];
    c.read_exact(&mut answer).expect("the whole answer");
    assert_eq!(&answer[..4], &77i32.to_be_bytes(), "its correlation id");
    // Then the connection ends, and the process exits 0.
    let mut rest = [0u8; 1];
    assert!(matches!(c.read(&mut rest), Ok(0) | Err(_)));
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = w.srv.child.try_wait().expect("wait") {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "keygate did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status:?}\n{}", w.srv.logs());
    assert!(
        TcpStream::connect(addr).is_err(),
        "nothing accepts after shutdown"
    );
    // The authentication's audit record, queued in memory, was written on the way out.
    let base = free_ports(4);
    let again = Server::start_in(w.dir.path(), &["--gateway-port-base", &base.to_string()]);
    let (ak, asec) = w.srv.creds.clone().expect("creds");
    let api = again.api(&ak, &asec);
    let rec = crate::audit::events(&api, "method=kafka.Authentication");
    assert!(
        rec.iter().any(|e| e.to_string().contains(&k)),
        "the drained connection's authentication is in the audit log: {rec:?}"
    );
}

/// SIGHUP re-reads keygate.toml: a raised connection cap and a new log level apply to
/// the running server.
#[test]
fn sighup_applies_new_limits_and_log_level_without_a_restart() {
    let w = world(
        &["orders"],
        "gateway_max_connections_per_ip = 2\nlog_level = \"info\"\n",
    );
    let (_, k, s) = w.app("reloaded", &[]);
    let addr: std::net::SocketAddr = w.bootstrap.parse().expect("addr");
    let lkc = w.lkc.clone();
    let open_now = || {
        value(
            &scrape(&w.srv.url).1,
            "keygate_kafka_connections_open",
            &[("cluster", &lkc)],
        )
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while open_now() != 0.0 {
        assert!(Instant::now() < deadline, "probes never closed");
        std::thread::sleep(Duration::from_millis(50));
    }
    let held = [
        crate::gateway::raw_authenticated(addr, &k, &s),
        crate::gateway::raw_authenticated(addr, &k, &s),
    ];
    let mut third = TcpStream::connect(addr).expect("connect");
    third
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    assert!(
        matches!(third.read(&mut [0u8; 1]), Ok(0) | Err(_)),
        "capped at 2"
    );
    assert!(!w.srv.logs().contains("DEBUG"), "info level to begin with");
    std::fs::write(
        w.dir.path().join("keygate.toml"),
        "gateway_max_connections_per_ip = 10\nlog_level = \"info,keygate_kafka=debug\"\n",
    )
    .expect("rewrite");
    let pid = w.srv.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .is_ok_and(|s| s.success()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !w.srv.logs().contains("configuration reloaded") {
        assert!(Instant::now() < deadline, "no reload: {}", w.srv.logs());
        std::thread::sleep(Duration::from_millis(50));
    }
    // The third connection is admitted now, and its end is logged at debug level.
    let third = crate::gateway::raw_authenticated(addr, &k, &s);
    drop(third);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !w.srv.logs().contains("DEBUG keygate_kafka") {
        assert!(Instant::now() < deadline, "no debug line: {}", w.srv.logs());
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(held);
}
