//! Hostile peers against the real server (issue 13): each test reproduces an attack
//! on loopback, bounded in count and time, and checks the fixed behaviour with a
//! measured figure (RSS, rows, lines, attempts). The figures are printed (`--nocapture`
//! shows them) and quoted in BENCHMARKS.md.

use crate::gateway::{raw_authenticated, raw_call, sasl_bytes, world, World};
use crate::harness::{Api, Server, BIN};
use serde_json::json;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Tests that hold hundreds of sockets raise this process's descriptor limit first
/// (to the hard limit), so they never depend on the shell's `ulimit -n`.
fn room_for_sockets() {
    let _ = rlimit::increase_nofile_limit(65_536);
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// One Kafka request frame: header v1 (client id "it"), then `body`.
fn frame(api: i16, version: i16, corr: i32, body: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&api.to_be_bytes());
    f.extend_from_slice(&version.to_be_bytes());
    f.extend_from_slice(&corr.to_be_bytes());
    f.extend_from_slice(&2i16.to_be_bytes());
    f.extend_from_slice(b"it");
    f.extend_from_slice(body);
    let mut out = (f.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&f);
    out
}

/// Produce v3 of one null record set to `orders` partition 0, acks=1.
fn produce_orders(corr: i32) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&(-1i16).to_be_bytes()); // transactional id: null
    b.extend_from_slice(&1i16.to_be_bytes()); // acks
    b.extend_from_slice(&1000i32.to_be_bytes()); // timeout
    b.extend_from_slice(&1i32.to_be_bytes()); // one topic
    b.extend_from_slice(&6i16.to_be_bytes());
    b.extend_from_slice(b"orders");
    b.extend_from_slice(&1i32.to_be_bytes()); // one partition
    b.extend_from_slice(&0i32.to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes()); // records: null
    frame(0, 3, corr, &b)
}

/// A TCP connection from a chosen loopback address (another "source").
fn connect_from(source: [u8; 4], to: SocketAddr) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let s = rt.block_on(async {
        let s = tokio::net::TcpSocket::new_v4().expect("socket");
        s.bind(SocketAddr::from((source, 0))).expect("bind source");
        s.connect(to)
            .await
            .expect("connect")
            .into_std()
            .expect("std")
    });
    s.set_nonblocking(false).expect("blocking");
    s
}

/// One raw HTTP/1.1 exchange on `c`; returns the status code and the whole answer.
fn http_on(mut c: TcpStream, request: &str) -> (u16, String) {
    c.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    c.write_all(request.as_bytes()).expect("write");
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, text)
}

fn sign_in_request(host: &str, email: &str, password: &str) -> String {
    let body = format!(
        "email={}&password={}",
        crate::cli_enc(email),
        crate::cli_enc(password)
    );
    format!(
        "POST /console/login HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn addr_of(url: &str) -> SocketAddr {
    url.trim_start_matches("http://").parse().expect("addr")
}

fn user_id(admin: &Api, email: &str) -> String {
    admin
        .all("/iam/v2/users")
        .into_iter()
        .find(|u| u["email"] == email)
        .and_then(|u| u["id"].as_str().map(str::to_owned))
        .expect("user")
}

// ---- 1. acting on a more powerful principal ------------------------------------------

#[test]
fn an_account_admin_cannot_act_on_an_organization_admin() {
    let (srv, _dir) = Server::start(&[]);
    let admin = srv.admin();
    let org = admin.org_crn();
    let root = user_id(&admin, "admin@keygate.local");
    let acct = admin.user("acct@example.com");
    admin.bind(&format!("User:{acct}"), "AccountAdmin", &org);
    let (k, s) = admin.key(&acct, "CLOUD");
    let a = srv.api(&k, &s);

    // The takeover of the report: the org admin's password, name, existence.
    let pw = json!({"password": "attacker-chosen-password"});
    let (code, body) = a.post(&format!("/iam/v2/users/{root}/password"), pw.clone());
    assert_eq!(code, 403, "{body}");
    assert!(body.to_string().contains("holds permissions"), "{body}");
    assert_eq!(
        a.patch(&format!("/iam/v2/users/{root}"), json!({"full_name": "x"}))
            .0,
        403
    );
    assert_eq!(a.delete(&format!("/iam/v2/users/{root}")).0, 403);
    // Nothing changed: the admin still has no password, and still exists.
    assert_eq!(admin.get(&format!("/iam/v2/users/{root}")).0, 200);

    // Equal or lesser principals are still managed.
    let plain = admin.user("plain@example.com");
    assert_eq!(
        a.post(&format!("/iam/v2/users/{plain}/password"), pw.clone())
            .0,
        204
    );
    assert_eq!(
        a.patch(&format!("/iam/v2/users/{plain}"), json!({"full_name": "P"}))
            .0,
        200
    );
    let peer = admin.user("peer@example.com");
    admin.bind(&format!("User:{peer}"), "AccountAdmin", &org);
    assert_eq!(
        a.post(&format!("/iam/v2/users/{peer}/password"), pw.clone())
            .0,
        204
    );
    // The organization admin acts on anyone.
    assert_eq!(
        admin.post(&format!("/iam/v2/users/{acct}/password"), pw).0,
        204
    );

    // Keys: an environment admin mints resource keys only for accounts it outranks
    // where the key reaches.
    let env = admin.env("prod");
    let lkc = admin.kafka(&env, "main");
    let ea = admin.user("env-admin@example.com");
    admin.bind(
        &format!("User:{ea}"),
        "EnvironmentAdmin",
        &format!("{org}/environment={env}"),
    );
    let (ek, es) = admin.key(&ea, "CLOUD");
    let e = srv.api(&ek, &es);
    let small = admin.sa("small");
    admin.ok(
        admin.post(
            &format!("/kafka/v3/clusters/{lkc}/acls"),
            json!({"resource_type":"TOPIC","resource_name":"orders","pattern_type":"LITERAL","principal":format!("User:{small}"),"operation":"WRITE","permission":"ALLOW"}),
        ),
        201,
    );
    let big = admin.sa("big");
    admin.bind(&format!("User:{big}"), "OrganizationAdmin", &org);
    let key_for = |api: &Api, owner: &str, resource: &str| {
        api.post(
            "/iam/v2/api-keys",
            json!({"spec": {"owner": {"id": owner}, "resource": {"id": resource}}}),
        )
    };
    assert_eq!(key_for(&e, &small, &lkc).0, 202);
    let (code, body) = key_for(&e, &big, &lkc);
    assert_eq!(code, 403, "{body}");
    // An organization admin's existing key cannot be disabled by the env admin either.
    let (bk, _) = admin.key(&big, &lkc);
    assert_eq!(
        e.post(&format!("/iam/v2/api-keys/{bk}/disable"), json!({}))
            .0,
        403
    );
    // An account admin (which holds no Kafka permission) deletes neither the powerful
    // service account nor one with ACLs, only one that holds nothing.
    assert_eq!(a.delete(&format!("/iam/v2/service-accounts/{big}")).0, 403);
    assert_eq!(
        a.delete(&format!("/iam/v2/service-accounts/{small}")).0,
        403
    );
    let empty = admin.sa("empty");
    assert_eq!(
        a.delete(&format!("/iam/v2/service-accounts/{empty}")).0,
        204
    );
}

#[test]
fn own_password_from_a_key_needs_no_current_password_but_a_wrong_one_is_refused() {
    let (srv, _dir) = Server::start(&[]);
    let admin = srv.admin();
    let root = user_id(&admin, "admin@keygate.local");
    let path = format!("/iam/v2/users/{root}/password");
    assert_eq!(
        admin
            .post(&path, json!({"password": "first-password-123"}))
            .0,
        204
    );
    let (code, body) = admin.post(
        &path,
        json!({"password": "second-password-123", "current_password": "wrong-password-xx"}),
    );
    assert_eq!(code, 422, "{body}");
    assert_eq!(
        admin
            .post(
                &path,
                json!({"password": "second-password-123", "current_password": "first-password-123"}),
            )
            .0,
        204
    );
}

// ---- 11. the last way in -------------------------------------------------------------

#[test]
fn the_last_admin_credential_is_kept_and_recover_issues_a_new_one() {
    let (srv, dir) = Server::start(&[]);
    let admin = srv.admin();
    let key = admin.key.clone();
    let (code, body) = admin.post(&format!("/iam/v2/api-keys/{key}/disable"), json!({}));
    assert_eq!(code, 400, "{body}");
    assert!(
        body.to_string().contains("last working credential"),
        "{body}"
    );
    assert_eq!(admin.delete(&format!("/iam/v2/api-keys/{key}")).0, 400);
    assert_eq!(admin.get("/iam/v2/users").0, 200, "the key still works");

    // Break glass with the database and the pepper, while the server runs.
    let out = Command::new(BIN)
        .args(["admin", "recover", "--data-dir"])
        .arg(dir.path().join("data"))
        .current_dir(dir.path())
        .output()
        .expect("run keygate admin recover");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    };
    let rescue = srv.api(&field("API key:"), &field("API secret:"));
    let start = Instant::now();
    while rescue.get("/iam/v2/users").0 != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the recovery key never worked"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // With a second way in, the first key may go.
    assert_eq!(
        rescue
            .post(&format!("/iam/v2/api-keys/{key}/disable"), json!({}))
            .0,
        200
    );
    let (_, events) = rescue.get("/audit/v1/events?method=RecoverAdminAccess");
    assert_eq!(events["data"].as_array().map(Vec::len), Some(1), "{events}");
    // Without the pepper there is no recovery.
    let out = Command::new(BIN)
        .args(["admin", "recover", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--pepper-file")
        .arg(dir.path().join("nope.key"))
        .output()
        .expect("run");
    assert!(!out.status.success());
}

// ---- 2. a client that does not read --------------------------------------------------

#[test]
fn a_client_that_never_reads_its_answers_costs_bounded_memory() {
    let w = world(&["orders"], "");
    let (_, k, s) = w.app("silent", &[]);
    let addr: SocketAddr = w.bootstrap.parse().expect("addr");
    let pid = w.srv.child.id();
    let before = rss_kib(pid);
    let mut c = raw_authenticated(addr, &k, &s);
    c.set_write_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    // ApiVersions v0, answered by the gateway itself: 3 M of them, never read.
    let one = frame(18, 0, 9, &[]);
    let batch: Vec<u8> = one
        .iter()
        .copied()
        .cycle()
        .take(one.len() * 10_000)
        .collect();
    let (mut sent, total) = (0usize, 3_000_000usize);
    let start = Instant::now();
    while sent < total && start.elapsed() < Duration::from_secs(20) {
        if c.write_all(&batch).is_err() {
            break;
        }
        sent += 10_000;
    }
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_kib(pid);
    println!(
        "never-reading client: {sent} of {total} ApiVersions accepted before TCP pushed back; server RSS {} → {} MiB",
        before / 1024,
        after / 1024
    );
    assert!(
        sent < total,
        "the gateway kept reading a client that never reads"
    );
    assert!(
        after < before + 64 * 1024,
        "RSS grew from {before} to {after} KiB"
    );
    drop(c);
    // The gateway still serves others.
    let (ok, out) = w.kcat(&k, &s, &["-L"], None);
    assert!(ok, "{out}");
}

// ---- 3. denials cannot fill the disk -------------------------------------------------

fn db_bytes(w: &World) -> u64 {
    ["keygate.db", "keygate.db-wal"]
        .iter()
        .map(|f| {
            std::fs::metadata(w.dir.path().join("data").join(f))
                .map(|m| m.len())
                .unwrap_or(0)
        })
        .sum()
}

#[test]
fn a_flood_of_denied_requests_writes_kilobytes() {
    let w = world(&["orders"], "audit_summary_interval_s = 1\n");
    let (sa, k, s) = w.app("nothing-allowed", &[]);
    let addr: SocketAddr = w.bootstrap.parse().expect("addr");
    std::thread::sleep(Duration::from_millis(1500));
    let (db_before, log_before) = (db_bytes(&w), w.srv.logs().len());
    let n = 20_000;
    let mut c = raw_authenticated(addr, &k, &s);
    let mut r = c.try_clone().expect("clone");
    let reader = std::thread::spawn(move || {
        let mut got = 0;
        let mut len = [0u8; 4];
        while got < n && r.read_exact(&mut len).is_ok() {
            let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
            if r.read_exact(&mut body).is_err() {
                break;
            }
            got += 1;
        }
        got
    });
    let flood = std::time::Instant::now();
    let mut buf = Vec::new();
    for i in 0..n {
        buf.extend_from_slice(&produce_orders(i + 10));
        if buf.len() > 64 * 1024 {
            c.write_all(&buf).expect("write");
            buf.clear();
        }
    }
    c.write_all(&buf).expect("write");
    assert_eq!(
        reader.join().expect("reader"),
        n,
        "every denial was answered"
    );
    let windows = flood.elapsed().as_secs() + 2;
    // Let the summary window close and the writer write.
    std::thread::sleep(Duration::from_millis(2500));
    let grew = db_bytes(&w).saturating_sub(db_before);
    let logs = w.srv.logs();
    let lines = logs[log_before..].matches("request denied").count();
    let (_, events) = w.admin.get(&format!(
        "/audit/v1/events?principal=User:{sa}&method=kafka.Produce&page_size=1000"
    ));
    let records = events["data"].as_array().cloned().unwrap_or_default();
    let counted: u64 = records
        .iter()
        .map(|e| e["data"]["summary"]["requests"].as_u64().unwrap_or(1))
        .sum();
    println!(
        "{n} denied Produce: database +{} KiB, {} audit records (standing for {counted}), {lines} log lines",
        grew / 1024,
        records.len()
    );
    // One record in full, then about one summary per 1 s window the flood spanned (a
    // loaded machine stretches it over more windows; with three suites running at once
    // 8 records over 4 measured windows were seen, not yet explained, hence the
    // margin). The point: a handful of records, never one per request.
    assert!(
        records.len() as u64 <= 2 + 2 * windows,
        "{} records for a flood over {windows} windows",
        records.len()
    );
    assert_eq!(counted, n as u64, "every denial is accounted for");
    assert!(grew < 1024 * 1024, "the database grew by {grew} bytes");
    assert!(lines < 200, "{lines} log lines");
}

// ---- 4. sign-in cannot exhaust memory or CPU -----------------------------------------

#[test]
fn a_sign_in_flood_is_bounded_in_memory_and_leaves_the_api_responsive() {
    // Throttling off for this test (it is tested below): the bound here is the
    // hashing semaphore alone.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("keygate.toml"),
        "auth_throttle_free_failures = 1000000\n",
    )
    .expect("toml");
    let srv = Server::start_in(dir.path(), &[]);
    let admin = srv.admin();
    let addr = addr_of(&srv.url);
    let host = addr.to_string();
    let pid = srv.child.id();
    let before = rss_kib(pid);
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(before));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid), std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let attackers: Vec<_> = (0..200)
        .map(|i| {
            let host = host.clone();
            std::thread::spawn(move || {
                let mut codes = Vec::new();
                for j in 0..3 {
                    let c = TcpStream::connect(addr).expect("connect");
                    let req = sign_in_request(
                        &host,
                        &format!("nobody{i}-{j}@example.com"),
                        "guess-guess-guess",
                    );
                    codes.push(http_on(c, &req).0);
                }
                codes
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        assert_eq!(admin.get("/iam/v2/service-accounts").0, 200);
        latencies.push(t.elapsed());
        std::thread::sleep(Duration::from_millis(50));
    }
    let codes: Vec<u16> = attackers
        .into_iter()
        .flat_map(|t| t.join().expect("attacker"))
        .collect();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    sampler.join().expect("sampler");
    latencies.sort();
    let peak = peak.load(std::sync::atomic::Ordering::Relaxed);
    let busy = codes.iter().filter(|c| **c == 503).count();
    println!(
        "600 sign-ins from 200 threads: server RSS {} → peak {} MiB; {} refused as busy (503); REST median latency during the flood {:?}",
        before / 1024,
        peak / 1024,
        busy,
        latencies[latencies.len() / 2]
    );
    assert!(
        codes.iter().all(|c| matches!(c, 303 | 503)),
        "unexpected answers: {codes:?}"
    );
    assert!(
        peak < before + 256 * 1024,
        "RSS peaked at {peak} KiB (from {before})"
    );
}

#[test]
fn failed_sign_ins_are_throttled_per_source_without_locking_the_user_out() {
    let (srv, _dir) = Server::start(&[]);
    let admin = srv.admin();
    let root = user_id(&admin, "admin@keygate.local");
    admin.ok(
        admin.post(
            &format!("/iam/v2/users/{root}/password"),
            json!({"password": "the-right-password"}),
        ),
        204,
    );
    let addr = addr_of(&srv.url);
    let host = addr.to_string();
    // A stranger guesses the admin's password from 127.0.0.1.
    let mut codes = Vec::new();
    for _ in 0..15 {
        let c = TcpStream::connect(addr).expect("connect");
        codes.push(
            http_on(
                c,
                &sign_in_request(&host, "admin@keygate.local", "wrong-guess-123"),
            )
            .0,
        );
    }
    println!("15 wrong sign-ins from one address: {codes:?}");
    // Five free failures for one account from one address, then refused.
    assert!(codes[..6].iter().all(|c| *c == 303), "{codes:?}");
    assert!(codes[7..].iter().all(|c| *c == 429), "{codes:?}");
    // Blocked, even with the right password, from there…
    let c = TcpStream::connect(addr).expect("connect");
    let (code, text) = http_on(
        c,
        &sign_in_request(&host, "admin@keygate.local", "the-right-password"),
    );
    assert_eq!(code, 429, "{text}");
    assert!(text.to_ascii_lowercase().contains("retry-after:"), "{text}");
    // …but the admin signs in from another address at once.
    let c = connect_from([127, 0, 0, 2], addr);
    let t = Instant::now();
    let (code, text) = http_on(
        c,
        &sign_in_request(&host, "admin@keygate.local", "the-right-password"),
    );
    println!(
        "the user's own sign-in from another address meanwhile: {code} in {:?}",
        t.elapsed()
    );
    assert_eq!(code, 303, "{text}");
    assert!(
        text.contains("Location: /console/") || text.contains("location: /console/"),
        "{text}"
    );
}

// ---- 5. slow HTTP peers --------------------------------------------------------------

#[test]
fn half_open_http_connections_are_capped_and_timed_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("keygate.toml"),
        "http_max_connections_per_ip = 50\nhttp_header_timeout_ms = 1000\n",
    )
    .expect("toml");
    let srv = Server::start_in(dir.path(), &[]);
    let addr = addr_of(&srv.url);
    room_for_sockets();
    let mut held = Vec::new();
    for _ in 0..600 {
        let mut c = TcpStream::connect(addr).expect("connect");
        let _ = c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ");
        held.push(c);
    }
    std::thread::sleep(Duration::from_millis(300));
    // Closed: a read returns end-of-file (or an error other than "would block").
    let closed = |cs: &mut Vec<TcpStream>| {
        let mut n = 0;
        for c in cs.iter_mut() {
            c.set_nonblocking(true).expect("nb");
            let mut b = [0u8; 1];
            let r = c.read(&mut b);
            c.set_nonblocking(false).expect("b");
            if !matches!(r, Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock) {
                n += 1;
            }
        }
        n
    };
    let refused = closed(&mut held);
    // Another source is served meanwhile.
    let t = Instant::now();
    let (code, _) = http_on(
        connect_from([127, 0, 0, 2], addr),
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let served_in = t.elapsed();
    assert_eq!(code, 200);
    std::thread::sleep(Duration::from_millis(2000));
    let after = closed(&mut held);
    println!(
        "600 half-open HTTP connections from one address: {refused} refused at once, {after} closed after the 1 s header timeout; another address served in {served_in:?}"
    );
    assert!(refused >= 550, "only {refused} refused");
    assert_eq!(
        after, 600,
        "connections still open after the header timeout"
    );
}

#[test]
fn http_connections_cannot_take_the_gateways_descriptors() {
    // 600 descriptors: keygate keeps 256 and shares the rest (HTTP one each, gateway two
    // each), so neither listener can exhaust the process.
    let w = crate::gateway::world_limited(&["orders"], |_| String::new(), &["--nofile=600:600"]);
    let (_, k, s) = w.app("reader", &[("TOPIC", "orders", "DESCRIBE", "ALLOW")]);
    let logs = w.srv.logs();
    let caps = logs
        .lines()
        .find(|l| l.contains("connection caps"))
        .unwrap_or_default()
        .to_owned();
    assert!(caps.contains("fd_limit=600"), "{caps}");
    let addr = addr_of(&w.srv.url);
    room_for_sockets();
    // Far more half-open HTTP connections than the process has descriptors.
    let held: Vec<TcpStream> = (0..700)
        .filter_map(|_| {
            let mut c = TcpStream::connect(addr).ok()?;
            let _ = c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n");
            Some(c)
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // The gateway still accepts and serves a Kafka client meanwhile.
    let (ok, out) = w.kcat(&k, &s, &["-L"], None);
    println!(
        "{caps}\n700 half-open HTTP connections held; kcat through the gateway meanwhile: {ok}"
    );
    assert!(ok && out.contains("orders"), "{out}");
    assert!(
        !w.srv.logs().contains("Too many open files"),
        "the process ran out of descriptors"
    );
    drop(held);
}

// ---- 6. a length prefix alone --------------------------------------------------------

#[test]
fn length_prefixes_alone_cost_little_and_connections_per_address_are_capped() {
    let w = world(&["orders"], "gateway_max_connections_per_ip = 400\n");
    let addr: SocketAddr = w.bootstrap.parse().expect("addr");
    let pid = w.srv.child.id();
    let before = rss_kib(pid);
    room_for_sockets();
    let mut held = Vec::new();
    for _ in 0..400 {
        let mut c = TcpStream::connect(addr).expect("connect");
        c.write_all(&(512 * 1024i32).to_be_bytes()).expect("write");
        held.push(c);
    }
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_kib(pid);
    // The 401st from this address is closed at once.
    let mut extra = TcpStream::connect(addr).expect("connect");
    extra
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let mut b = [0u8; 1];
    let refused = matches!(extra.read(&mut b), Ok(0) | Err(_));
    println!(
        "400 connections each claiming a 512 KiB frame: server RSS {} → {} MiB; the next one refused: {refused}",
        before / 1024,
        after / 1024
    );
    assert!(after < before + 48 * 1024, "RSS {before} → {after} KiB");
    assert!(refused);
    drop(held);
    // Others are served again once those are gone.
    let (_, k, s) = w.app("after", &[("TOPIC", "orders", "DESCRIBE", "ALLOW")]);
    let (ok, out) = w.kcat(&k, &s, &["-L"], None);
    assert!(ok, "{out}");
}

// ---- 7. secrets in the wrong field ---------------------------------------------------

#[test]
fn secrets_in_the_wrong_field_reach_no_log_and_no_audit_record() {
    let w = world(&["orders"], "audit_summary_interval_s = 1\n");
    let (_, k, s) = w.app("swapped", &[]);
    let addr: SocketAddr = w.bootstrap.parse().expect("addr");
    // SASL/PLAIN with username and password swapped.
    let (_, r) = crate::gateway::raw_sasl(addr, b"PLAIN", format!("\0{s}\0{k}").as_bytes());
    assert_ne!(&r[..2], &[0, 0]);
    // REST Basic, swapped.
    assert_eq!(w.srv.api(&s, &k).get("/iam/v2/users").0, 401);
    // The console's e-mail field.
    let host = addr_of(&w.srv.url);
    let _ = http_on(
        TcpStream::connect(host).expect("connect"),
        &sign_in_request(&host.to_string(), &s, &k),
    );
    // Huge usernames (just under the pre-authentication frame limit).
    let log_before = w.srv.logs().len();
    let huge = "u".repeat(500 * 1024);
    for i in 0..20 {
        // Sent, not waited for: the source is being throttled by now.
        let mut c = TcpStream::connect(addr).expect("connect");
        let mut body = 5i16.to_be_bytes().to_vec();
        body.extend_from_slice(b"PLAIN");
        c.write_all(&frame(17, 1, 1, &body)).expect("handshake");
        let token = format!("\0{huge}\0x");
        let _ = c.write_all(&frame(36, 1, 2 + i, &sasl_bytes(token.as_bytes())));
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(2500));
    let logs = w.srv.logs();
    let grew = logs.len() - log_before;
    println!("20 SASL attempts with 500 KiB usernames: the log grew by {grew} bytes");
    assert!(!logs.contains(&s), "the secret reached the log");
    assert!(grew < 64 * 1024, "the log grew by {grew} bytes");
    let db: Vec<u8> = ["keygate.db", "keygate.db-wal"]
        .iter()
        .flat_map(|f| std::fs::read(w.dir.path().join("data").join(f)).unwrap_or_default())
        .collect();
    let needle = s.as_bytes();
    assert!(
        !db.windows(needle.len()).any(|win| win == needle),
        "the secret reached the database"
    );
    let (_, events) = w.admin.get("/audit/v1/events?method=console.SignIn");
    assert!(
        events
            .to_string()
            .contains("<not an e-mail address: 53 bytes>"),
        "{events}"
    );
}

// ---- 8. failed SASL from one source --------------------------------------------------

#[test]
fn failed_sasl_attempts_are_throttled_per_source() {
    let w = world(&["orders"], "audit_summary_interval_s = 1\n");
    let (_, k, s) = w.app("victim", &[]);
    let addr: SocketAddr = w.bootstrap.parse().expect("addr");
    let attempts = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(4);
    let attackers: Vec<_> = (0..20)
        .map(|_| {
            let (attempts, k) = (attempts.clone(), k.clone());
            std::thread::spawn(move || {
                while Instant::now() < until {
                    let mut c = TcpStream::connect(addr).expect("connect");
                    c.set_read_timeout(Some(Duration::from_secs(40)))
                        .expect("t");
                    let mut body = 5i16.to_be_bytes().to_vec();
                    body.extend_from_slice(b"PLAIN");
                    let token = format!("\0{k}\0kgs_wrong");
                    let mut both = frame(17, 1, 1, &body);
                    both.extend(frame(36, 1, 2, &sasl_bytes(token.as_bytes())));
                    // Both answers (or the close) end the attempt.
                    let _ = c.write_all(&both);
                    let mut sink = Vec::new();
                    let _ = c.read_to_end(&mut sink);
                    attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    // The key's real owner, from another address, meanwhile.
    let t = Instant::now();
    let mut c = connect_from([127, 0, 0, 2], addr);
    c.set_read_timeout(Some(Duration::from_secs(5))).expect("t");
    let mut body = 5i16.to_be_bytes().to_vec();
    body.extend_from_slice(b"PLAIN");
    let _ = raw_call(&mut c, 17, 1, 1, false, &body);
    let r = raw_call(
        &mut c,
        36,
        1,
        2,
        false,
        &sasl_bytes(format!("\0{k}\0{s}").as_bytes()),
    );
    let legit = t.elapsed();
    assert_eq!(&r[..2], &[0, 0], "the legitimate login failed");
    for a in attackers {
        a.join().expect("attacker");
    }
    std::thread::sleep(Duration::from_millis(1500));
    let n = attempts.load(std::sync::atomic::Ordering::Relaxed);
    let (_, events) = w
        .admin
        .get("/audit/v1/events?method=kafka.Authentication&page_size=1000");
    let records = events["data"].as_array().map_or(0, |a| {
        a.iter()
            .filter(|e| e["data"]["result"]["status"] == "UNAUTHENTICATED")
            .count()
    });
    println!(
        "20 connections failing SASL for 4 s: {n} attempts answered ({} /s); {records} audit records; a legitimate login from another address took {legit:?}",
        n / 4
    );
    // Unthrottled, 20 connections at the 100 ms failure delay make ~800 attempts.
    assert!(n < 200, "{n} attempts in 4 s");
    assert!((1..20).contains(&records), "{records} audit records");
}

// ---- 9. small things -----------------------------------------------------------------

#[test]
fn an_unsupported_mechanism_closes_the_connection_and_a_closed_pipe_ends_the_cli_quietly() {
    let w = world(&["orders"], "");
    let addr: SocketAddr = w.bootstrap.parse().expect("addr");
    let mut c = TcpStream::connect(addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(3))).expect("t");
    let mut body = 6i16.to_be_bytes().to_vec();
    body.extend_from_slice(b"GSSAPI");
    let r = raw_call(&mut c, 17, 1, 1, false, &body);
    assert_eq!(&r[..2], &33i16.to_be_bytes(), "UNSUPPORTED_SASL_MECHANISM");
    let t = Instant::now();
    let mut b = [0u8; 1];
    assert!(matches!(c.read(&mut b), Ok(0)), "the connection is closed");
    assert!(t.elapsed() < Duration::from_secs(2));

    // `keygate … | head -1`: the reader goes away before the CLI writes.
    let cli = crate::harness::CliEnv::new();
    let (ok, _, err) = cli.run(&[
        "login",
        "--url",
        &w.srv.url,
        "--api-key",
        &w.admin.key,
        "--api-secret",
        &w.admin.secret,
    ]);
    assert!(ok, "{err}");
    let mut child = Command::new(BIN)
        .args(["api-key", "list", "-o", "json"])
        .env("KEYGATE_CLI_CONFIG", &cli.config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {err}", out.status);
    assert!(!err.contains("panicked"), "{err}");
}
