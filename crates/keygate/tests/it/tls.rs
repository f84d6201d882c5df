//! TLS on keygate's listeners, with real clients: the Kafka gateway over SASL_SSL for
//! Debian's kcat, PyPI's confluent-kafka and kafka-python and the rdkafka crate; the
//! REST API over HTTPS (HTTP/1.1 and HTTP/2) for curl; certificates rotated while
//! connections are open. Each test makes its own CA and certificates with rcgen.

use crate::clients::run_scenario;
use crate::gateway::{kcat_cmd, run_kcat, world_with, World};
use crate::harness::Server;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A test certificate authority writing PEM files into a directory.
pub struct Pki {
    pub dir: PathBuf,
    /// The CA certificate (what clients trust).
    pub ca: PathBuf,
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Pki {
    pub fn new(dir: &Path, name: &str) -> Pki {
        let key = KeyPair::generate().expect("CA key");
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        let cert = p.self_signed(&key).expect("CA certificate");
        let ca = dir.join(format!("{name}.pem"));
        std::fs::write(&ca, cert.pem()).expect("write CA");
        Pki {
            dir: dir.into(),
            ca,
            cert,
            key,
        }
    }

    /// A server certificate with common name `cn` for `sans` (DNS names or IP
    /// addresses), written to `<stem>.pem` (leaf, then the CA) and `<stem>.key`.
    pub fn server(&self, stem: &str, cn: &str, sans: &[&str]) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().expect("key");
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut p = CertificateParams::new(sans).expect("params");
        p.distinguished_name.push(DnType::CommonName, cn);
        let cert = p.signed_by(&key, &self.cert, &self.key).expect("sign");
        let (c, k) = (
            self.dir.join(format!("{stem}.pem")),
            self.dir.join(format!("{stem}.key")),
        );
        write_atomically(&c, &format!("{}{}", cert.pem(), self.cert.pem()));
        write_atomically(&k, &key.serialize_pem());
        (c, k)
    }
}

impl Pki {
    /// A client certificate (clientAuth) with `cn` and `o`, serial `serial`, valid
    /// from `from` to `to` (None: now − 1 day … now + 30 days); `<stem>.pem`/`.key`.
    pub fn client(
        &self,
        stem: &str,
        cn: &str,
        o: &str,
        serial: u64,
        validity: Option<(time::OffsetDateTime, time::OffsetDateTime)>,
    ) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::new(vec![format!("{cn}.clients.test")]).expect("params");
        p.distinguished_name.push(DnType::CommonName, cn);
        p.distinguished_name.push(DnType::OrganizationName, o);
        p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        p.serial_number = Some(rcgen::SerialNumber::from(serial.to_be_bytes().to_vec()));
        let now = time::OffsetDateTime::now_utc();
        let (from, to) = validity.unwrap_or((
            now - time::Duration::days(1),
            now + time::Duration::days(30),
        ));
        p.not_before = from;
        p.not_after = to;
        let cert = p.signed_by(&key, &self.cert, &self.key).expect("sign");
        let (c, k) = (
            self.dir.join(format!("{stem}.pem")),
            self.dir.join(format!("{stem}.key")),
        );
        write_atomically(&c, &cert.pem());
        write_atomically(&k, &key.serialize_pem());
        (c, k)
    }

    /// A CRL of this CA revoking `serials`, written to `<stem>.pem`.
    pub fn crl(&self, stem: &str, serials: &[u64]) -> PathBuf {
        let now = time::OffsetDateTime::now_utc();
        let params = rcgen::CertificateRevocationListParams {
            this_update: now - time::Duration::hours(1),
            next_update: now + time::Duration::days(7),
            crl_number: rcgen::SerialNumber::from(1u64.to_be_bytes().to_vec()),
            issuing_distribution_point: None,
            revoked_certs: serials
                .iter()
                .map(|s| rcgen::RevokedCertParams {
                    serial_number: rcgen::SerialNumber::from(s.to_be_bytes().to_vec()),
                    revocation_time: now - time::Duration::minutes(5),
                    reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        let crl = params.signed_by(&self.cert, &self.key).expect("crl");
        let path = self.dir.join(format!("{stem}.pem"));
        write_atomically(&path, &crl.pem().expect("pem"));
        path
    }
}

/// Replace a file in one step (as a certificate manager does).
fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

/// The subject of the certificate a TLS server presents now (Debian's openssl).
pub fn served_subject(addr: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect {addr} </dev/null 2>/dev/null | openssl x509 -noout -subject"
        ))
        .output()
        .expect("openssl");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A keygate + Tansu world whose gateway serves TLS with a certificate for 127.0.0.1.
pub fn tls_world(pki: &Pki, extra: &str) -> World {
    let (cert, key) = pki.server("gateway", "gateway one", &["127.0.0.1", "localhost"]);
    world_with(&["orders"], |_| {
        format!(
            "gateway_tls_cert = {:?}\ngateway_tls_key = {:?}\ntls_reload_check_s = 1\n{extra}",
            cert.display().to_string(),
            key.display().to_string()
        )
    })
}

#[test]
fn the_gateway_speaks_sasl_ssl_to_kcat_python_clients_and_rdkafka() {
    let certs = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(certs.path(), "test-ca");
    let w = tls_world(&pki, "");
    let (_, k, s) = w.app(
        "tls-app",
        &[
            ("TOPIC", "orders", "WRITE", "ALLOW"),
            ("TOPIC", "orders", "READ", "ALLOW"),
            ("GROUP", "g1", "READ", "ALLOW"),
            ("GROUP", "rust-tls", "READ", "ALLOW"),
        ],
    );

    // kcat (Debian's librdkafka, which checks the host name against the SANs).
    let mut p = kcat_cmd(&w.bootstrap, &k, &s, Some(&pki.ca));
    p.args(["-P", "-t", "orders"]);
    let (ok, out) = run_kcat(p, Some("over-tls-1\nover-tls-2\n"));
    assert!(ok, "kcat SASL_SSL produce: {out}");
    let mut c = kcat_cmd(&w.bootstrap, &k, &s, Some(&pki.ca));
    c.args(["-C", "-t", "orders", "-o", "beginning", "-e"]);
    let (ok, out) = run_kcat(c, None);
    assert!(
        ok && out.contains("over-tls-1") && out.contains("over-tls-2"),
        "kcat SASL_SSL consume: {out}"
    );

    // A plaintext client on the TLS-only port is refused, and the log says why.
    let mut plain = kcat_cmd(&w.bootstrap, &k, &s, None);
    plain.args(["-L", "-m", "3"]);
    let (ok, out) = run_kcat(plain, None);
    assert!(!ok, "a plaintext client must be refused: {out}");
    wait_until(
        "the plaintext refusal in the log",
        Duration::from_secs(5),
        || w.srv.logs().contains("plaintext client on a TLS-only port"),
    );

    // A client that does not trust the gateway's CA does not connect.
    let other = Pki::new(certs.path(), "other-ca");
    let mut wrong = kcat_cmd(&w.bootstrap, &k, &s, Some(&other.ca));
    wrong.args(["-L", "-m", "3"]);
    let (ok, out) = run_kcat(wrong, None);
    assert!(!ok, "a client trusting another CA must fail: {out}");

    // PyPI's confluent-kafka (a consumer group that commits and resumes) and
    // kafka-python (its own protocol and TLS code).
    let ca = pki.ca.display().to_string();
    let env = [
        ("TOPIC", "orders"),
        ("GROUP", "g1"),
        ("CA_FILE", ca.as_str()),
    ];
    let (ok, out) = run_scenario("confluent-group", &w.bootstrap, &k, &s, &env);
    assert!(ok, "confluent-kafka over SASL_SSL: {out}");
    let (ok, out) = run_scenario("kafka-python", &w.bootstrap, &k, &s, &env);
    assert!(ok, "kafka-python over SASL_SSL: {out}");

    // The rdkafka crate.
    crate::rdkafka_client::round_trip(&w.bootstrap, &k, &s, Some(&pki.ca), "rust-tls");
}

#[test]
fn wrong_transports_and_stalled_handshakes_get_a_clear_outcome() {
    let certs = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(certs.path(), "test-ca");
    // A plaintext gateway: a TLS client is told it is on a plaintext port.
    let w = world_with(&["orders"], |_| String::new());
    let (_, k, s) = w.app("plain-app", &[("TOPIC", "orders", "READ", "ALLOW")]);
    let mut c = kcat_cmd(&w.bootstrap, &k, &s, Some(&pki.ca));
    c.args(["-L", "-m", "3"]);
    let (ok, out) = run_kcat(c, None);
    assert!(!ok, "TLS to a plaintext port must fail: {out}");
    wait_until(
        "the TLS-on-plaintext log line",
        Duration::from_secs(5),
        || w.srv.logs().contains("TLS client on a plaintext port"),
    );
    drop(w);

    // A TLS gateway with a 1 s authentication deadline: a handshake that starts and
    // never finishes is closed at the deadline, and takes no slot afterwards.
    let w = tls_world(
        &pki,
        "gateway_auth_timeout_ms = 1000\ngateway_max_unauthenticated = 4\n",
    );
    let mut stalled = Vec::new();
    for _ in 0..4 {
        let mut t = TcpStream::connect(&w.bootstrap).expect("connect");
        // The first bytes of a ClientHello record, then nothing.
        t.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00]).expect("write");
        t.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        stalled.push(t);
    }
    let start = Instant::now();
    for t in &mut stalled {
        let mut buf = [0u8; 16];
        let n = t.read(&mut buf).unwrap_or(0);
        assert_eq!(n, 0, "a stalled handshake is closed, not answered");
    }
    let waited = start.elapsed();
    assert!(
        waited < Duration::from_secs(4),
        "closed at the 1 s deadline, not later: {waited:?}"
    );
    // The unauthenticated slots are free again: a real client gets in.
    let (_, k, s) = w.app("after-stall", &[("TOPIC", "orders", "WRITE", "ALLOW")]);
    let mut p = kcat_cmd(&w.bootstrap, &k, &s, Some(&pki.ca));
    p.args(["-P", "-t", "orders"]);
    let (ok, out) = run_kcat(p, Some("after the stall\n"));
    assert!(ok, "a client after stalled handshakes: {out}");
}

#[test]
fn a_rotated_gateway_certificate_applies_to_new_connections_and_spares_open_ones() {
    let certs = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(certs.path(), "test-ca");
    let w = tls_world(&pki, "");
    let (_, k, s) = w.app(
        "rotating",
        &[
            ("TOPIC", "orders", "WRITE", "ALLOW"),
            ("TOPIC", "orders", "READ", "ALLOW"),
        ],
    );
    assert!(
        served_subject(&w.bootstrap).contains("gateway one"),
        "the first certificate is served"
    );
    // An open consumer on the first certificate.
    let mut consumer = kcat_cmd(&w.bootstrap, &k, &s, Some(&pki.ca))
        .args(["-C", "-t", "orders", "-o", "beginning", "-u"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kcat consumer");
    let (tx, rx) = std::sync::mpsc::channel();
    let out = consumer.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let produce = |msg: &str| {
        let mut p = kcat_cmd(&w.bootstrap, &k, &s, Some(&pki.ca));
        p.args(["-P", "-t", "orders"]);
        let (ok, out) = run_kcat(p, Some(&format!("{msg}\n")));
        assert!(ok, "produce {msg}: {out}");
    };
    produce("before-rotation");
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(20)).as_deref(),
        Ok("before-rotation")
    );

    // Rotate: the files are replaced; no restart, no signal.
    pki.server("gateway", "gateway two", &["127.0.0.1", "localhost"]);
    wait_until("the new certificate", Duration::from_secs(10), || {
        served_subject(&w.bootstrap).contains("gateway two")
    });
    assert!(w.srv.logs().contains("certificate reloaded"));
    // A new connection (with the new certificate) produces; the consumer opened with
    // the old one keeps its session and receives it.
    produce("after-rotation");
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(20)).as_deref(),
        Ok("after-rotation")
    );

    // A broken replacement (a key that is not the certificate's) is refused; the
    // current certificate stays in service.
    let (_, other_key) = pki.server("other", "other", &["127.0.0.1"]);
    std::fs::copy(&other_key, certs.path().join("gateway.key")).expect("copy");
    wait_until("the refusal in the log", Duration::from_secs(10), || {
        w.srv.logs().contains("new certificate not usable")
    });
    assert!(served_subject(&w.bootstrap).contains("gateway two"));
    let _ = consumer.kill();
    let _ = consumer.wait();
}

/// curl against the HTTPS listener; returns (exit code, headers and body).
fn curl(args: &[&str]) -> (i32, String) {
    let out = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn the_rest_api_serves_https_with_h2_hsts_and_rotates_its_certificate() {
    let certs = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(certs.path(), "api-ca");
    let (cert, key) = pki.server("api", "api one", &["127.0.0.1", "localhost"]);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("keygate.toml"), "tls_reload_check_s = 1\n").expect("toml");
    let srv = Server::start_in(
        dir.path(),
        &[
            "--tls-cert",
            cert.to_str().expect("path"),
            "--tls-key",
            key.to_str().expect("path"),
        ],
    );
    assert!(
        srv.url.starts_with("https://127.0.0.1:"),
        "the server announces an https URL: {}",
        srv.url
    );
    let (k, s) = srv.creds.clone().expect("bootstrap key");
    let basic = format!("{k}:{s}");
    let ca = pki.ca.to_str().expect("path");
    let envs = format!("{}/org/v2/environments", srv.url);

    // HTTP/1.1 and HTTP/2 (ALPN), HSTS on every answer.
    let (code, out) = curl(&["--cacert", ca, "--http1.1", "-u", &basic, &envs]);
    assert!(code == 0 && out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(
        out.to_ascii_lowercase()
            .contains("strict-transport-security: max-age=31536000"),
        "{out}"
    );
    let (code, out) = curl(&["--cacert", ca, "--http2", "-u", &basic, &envs]);
    assert!(code == 0 && out.starts_with("HTTP/2 200"), "{out}");
    // Not trusted without the CA (curl's exit 60: certificate problem).
    let (code, _) = curl(&[&envs]);
    assert_eq!(code, 60);
    // Plain HTTP to the HTTPS port: a 400 that says what to do.
    let plain = srv.url.replacen("https://", "http://", 1);
    let (code, out) = curl(&[&format!("{plain}/healthz")]);
    assert!(
        code == 0 && out.starts_with("HTTP/1.1 400") && out.contains("use https://"),
        "{out}"
    );

    // An open connection (openssl s_client, keep-alive) across a rotation.
    let addr = srv.url.trim_start_matches("https://").to_owned();
    let mut open = Command::new("openssl")
        .args(["s_client", "-quiet", "-connect", &addr, "-CAfile", ca])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_client");
    let mut stdin = open.stdin.take().expect("stdin");
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = open.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let get = "GET /healthz HTTP/1.1\r\nhost: keygate\r\n\r\n";
    stdin.write_all(get.as_bytes()).expect("request");
    let first = rx.recv_timeout(Duration::from_secs(10)).expect("answer");
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");

    pki.server("api", "api two", &["127.0.0.1", "localhost"]);
    wait_until("the new HTTPS certificate", Duration::from_secs(10), || {
        served_subject(&addr).contains("api two")
    });
    stdin
        .write_all(get.as_bytes())
        .expect("second request on the open connection");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut again = false;
    while Instant::now() < deadline && !again {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(500)) {
            again = l.starts_with("HTTP/1.1 200");
        }
    }
    assert!(
        again,
        "the connection opened before the rotation still serves"
    );
    let _ = open.kill();
    let _ = open.wait();
    let (code, out) = curl(&["--cacert", ca, "--http1.1", "-u", &basic, &envs]);
    assert!(code == 0 && out.starts_with("HTTP/1.1 200"), "{out}");
}

/// The base64 SHA-256 of a certificate's public key (chromium's SPKI pin), by openssl.
fn spki_pin(cert: &Path) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl x509 -in {} -pubkey -noout | openssl pkey -pubin -outform der \
             | openssl dgst -sha256 -binary | base64",
            cert.display()
        ))
        .output()
        .expect("openssl");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn the_console_over_https_in_chromium_has_secure_cookies_and_h2() {
    let certs = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(certs.path(), "console-ca");
    let (cert, key) = pki.server("console", "console", &["127.0.0.1", "localhost"]);
    let (srv, _dir) = Server::start(&[
        "--tls-cert",
        cert.to_str().expect("path"),
        "--tls-key",
        key.to_str().expect("path"),
    ]);
    let (k, s) = srv.creds.clone().expect("bootstrap key");
    let basic = format!("{k}:{s}");
    let ca = pki.ca.to_str().expect("path");
    let (code, out) = curl(&[
        "--cacert",
        ca,
        "-u",
        &basic,
        &format!("{}/iam/v2/users", srv.url),
    ]);
    assert_eq!(code, 0, "{out}");
    let me = out
        .split("\"id\":\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a user id")
        .to_owned();
    let body = format!("{{\"password\":\"{}\"}}", crate::console::PASSWORD);
    let (code, out) = curl(&[
        "--cacert",
        ca,
        "-u",
        &basic,
        "-H",
        "content-type: application/json",
        "-d",
        &body,
        &format!("{}/iam/v2/users/{me}/password", srv.url),
    ]);
    assert!(code == 0 && out.contains(" 204"), "{out}");
    let pin = spki_pin(&cert);
    let v = crate::console::browse("https", &srv.url, "admin@keygate.local", &[("SPKI", &pin)]);
    assert_eq!(v["protocol"], "https:");
    assert_eq!(v["http"], "h2", "{v}");
    assert_eq!(v["hsts"], "max-age=31536000");
    let cookies = v["cookies"].as_array().expect("cookies");
    assert!(!cookies.is_empty(), "{v}");
    assert!(
        cookies
            .iter()
            .all(|c| c["secure"] == true && c["httpOnly"] == true),
        "every console cookie is Secure and HttpOnly: {v}"
    );
}

/// Lines added to /etc/hosts (tests and CI run as root) so that the SNI names of the
/// test resolve to 127.0.0.1 for every client (librdkafka, kafka-python, openssl);
/// removed when dropped.
struct Hosts {
    marker: String,
}

impl Hosts {
    fn new() -> Hosts {
        Hosts {
            marker: format!("keygate-test-{}-{:?}", std::process::id(), Instant::now()),
        }
    }

    fn add(&self, names: &[String]) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open("/etc/hosts")
            .expect("/etc/hosts is writable (tests run as root)");
        for n in names {
            writeln!(f, "127.0.0.1 {n} # {}", self.marker).expect("write /etc/hosts");
        }
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        if let Ok(text) = std::fs::read_to_string("/etc/hosts") {
            let kept: String = text
                .lines()
                .filter(|l| !l.contains(&self.marker))
                .map(|l| format!("{l}\n"))
                .collect();
            let _ = std::fs::write("/etc/hosts", kept);
        }
    }
}

#[test]
fn one_port_for_every_cluster_routed_by_sni() {
    let certs = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(certs.path(), "sni-ca");
    let (cert, key) = pki.server("wildcard", "*.kafka.test", &["*.kafka.test"]);
    let tansu = crate::gateway::Tansu::start(&["orders"]);
    let port = crate::gateway::free_ports(1);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("keygate.toml"),
        format!(
            "gateway_tls_cert = {:?}\ngateway_tls_key = {:?}\ngateway_sni_domain = \"kafka.test\"\ngateway_sni_port = {port}\ngateway_tls_cluster_dir = {:?}\ntls_reload_check_s = 1\n",
            cert.display().to_string(),
            key.display().to_string(),
            certs.path().display().to_string()
        ),
    )
    .expect("toml");
    let srv = Server::start_in(dir.path(), &[]);
    let admin = srv.admin();
    let env = admin.env("prod");
    let mut clusters = Vec::new();
    for name in ["one", "two"] {
        let b = admin.ok(
            admin.post(
                "/cmk/v2/clusters",
                serde_json::json!({"spec":{"display_name":name,"environment":{"id":env},"upstream":format!("127.0.0.1:{}", tansu.port)}}),
            ),
            202,
        );
        let lkc = b["id"].as_str().expect("lkc").to_owned();
        assert_eq!(
            b["spec"]["kafka_bootstrap_endpoint"],
            format!("{lkc}.kafka.test:{port}").as_str(),
            "the bootstrap is the cluster's name on the one port"
        );
        clusters.push(lkc);
    }
    crate::gateway::wait_for_port(port);
    let hosts = Hosts::new();
    hosts.add(
        &clusters
            .iter()
            .map(|c| format!("{c}.kafka.test"))
            .collect::<Vec<_>>(),
    );
    let lkc = clusters[0].clone();
    let bootstrap = format!("{lkc}.kafka.test:{port}");
    let w_sa = admin.sa("sni-app");
    let (k, s) = admin.key(&w_sa, &lkc);
    let acl = |rt: &str, name: &str, op: &str| serde_json::json!({"resource_type":rt,"resource_name":name,"pattern_type":"LITERAL","principal":format!("User:{w_sa}"),"operation":op,"permission":"ALLOW"});
    let acls = vec![
        acl("TOPIC", "orders", "WRITE"),
        acl("TOPIC", "orders", "READ"),
        acl("GROUP", "g1", "READ"),
    ];
    admin.ok(
        admin.post(
            &format!("/kafka/v3/clusters/{lkc}/acls:batch"),
            serde_json::json!({ "data": acls }),
        ),
        201,
    );
    // The brokers are advertised by name on the same port; learn them from Metadata.
    let mut md = kcat_cmd(&bootstrap, &k, &s, Some(&pki.ca));
    md.args(["-L", "-t", "orders"]);
    let (_, out) = run_kcat(md, None);
    let brokers: Vec<String> = out
        .split_whitespace()
        .filter_map(|w| w.strip_suffix(&format!(":{port}")))
        .filter(|h| h.starts_with('b') && h.ends_with(&format!("-{lkc}.kafka.test")))
        .map(str::to_owned)
        .collect();
    assert!(
        !brokers.is_empty(),
        "brokers advertised as b<id>-{lkc}.kafka.test:{port}: {out}"
    );
    hosts.add(&brokers);

    let mut p = kcat_cmd(&bootstrap, &k, &s, Some(&pki.ca));
    p.args(["-P", "-t", "orders"]);
    let (ok, out) = run_kcat(p, Some("by-name-1\n"));
    assert!(ok, "produce through SNI routing: {out}");
    let mut c = kcat_cmd(&bootstrap, &k, &s, Some(&pki.ca));
    c.args(["-C", "-t", "orders", "-o", "beginning", "-e"]);
    let (ok, out) = run_kcat(c, None);
    assert!(
        ok && out.contains("by-name-1"),
        "consume through SNI routing: {out}"
    );
    let ca = pki.ca.display().to_string();
    let env_vars = [
        ("TOPIC", "orders"),
        ("GROUP", "g1"),
        ("CA_FILE", ca.as_str()),
    ];
    let (ok, out) = run_scenario("confluent-group", &bootstrap, &k, &s, &env_vars);
    assert!(ok, "confluent-kafka through SNI routing: {out}");
    let (ok, out) = run_scenario("kafka-python", &bootstrap, &k, &s, &env_vars);
    assert!(ok, "kafka-python through SNI routing: {out}");

    // A cluster with a certificate of its own (named after its id) is served it on the
    // shared port; the others keep the wildcard.
    let (own, own_key) = pki.server(
        "own",
        "cluster two only",
        &[&format!("{}.kafka.test", clusters[1])],
    );
    std::fs::copy(&own, certs.path().join(format!("{}.pem", clusters[1]))).expect("copy");
    std::fs::copy(&own_key, certs.path().join(format!("{}.key", clusters[1]))).expect("copy");
    let subject_of = |name: &str| {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("openssl s_client -connect 127.0.0.1:{port} -servername {name} </dev/null 2>/dev/null | openssl x509 -noout -subject"))
            .output()
            .expect("openssl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    wait_until(
        "cluster two's own certificate",
        Duration::from_secs(10),
        || subject_of(&format!("{}.kafka.test", clusters[1])).contains("cluster two only"),
    );
    assert!(subject_of(&format!("{lkc}.kafka.test")).contains("kafka.test"));

    // The key of cluster one is not a key of cluster two, on the same port.
    let other = format!("{}.kafka.test:{port}", clusters[1]);
    let mut wrong = kcat_cmd(&other, &k, &s, Some(&pki.ca));
    wrong.args(["-L", "-m", "5"]);
    let (ok, out) = run_kcat(wrong, None);
    assert!(!ok, "a key of another cluster is refused: {out}");

    // Unknown names, no name, plaintext: refused before any Kafka byte.
    let addr = format!("127.0.0.1:{port}");
    let handshake = |args: &[&str]| {
        Command::new("openssl")
            .args(["s_client", "-connect", &addr, "-CAfile", &ca])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("openssl")
    };
    for args in [
        &["-servername", "lkc-nope.kafka.test"][..],
        &["-servername", "elsewhere.example.com"][..],
        &["-noservername"][..],
    ] {
        let out = handshake(args);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            !out.status.success() && !text.contains("Server certificate"),
            "handshake {args:?} must be refused: {text}"
        );
    }
    let mut plain = TcpStream::connect(&addr).expect("connect");
    plain.write_all(&[0, 0, 0, 10]).expect("write");
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut buf = [0u8; 8];
    assert_eq!(plain.read(&mut buf).unwrap_or(0), 0, "plaintext is closed");
    wait_until("the refusals in the log", Duration::from_secs(5), || {
        let l = srv.logs();
        l.contains("no such cluster")
            && l.contains("is not a cluster or broker of kafka.test")
            && l.contains("no SNI name")
            && l.contains("plaintext client on the SNI port")
    });
    drop(hosts);
}

#[test]
fn sighup_reloads_the_certificates_at_once() {
    let certs = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(certs.path(), "hup-ca");
    let (cert, key) = pki.server("api", "before hup", &["127.0.0.1"]);
    let dir = tempfile::tempdir().expect("tempdir");
    // File checks once an hour: only the signal can explain a prompt reload.
    std::fs::write(
        dir.path().join("keygate.toml"),
        "tls_reload_check_s = 3600\n",
    )
    .expect("toml");
    let srv = Server::start_in(
        dir.path(),
        &[
            "--tls-cert",
            cert.to_str().expect("path"),
            "--tls-key",
            key.to_str().expect("path"),
        ],
    );
    let addr = srv.url.trim_start_matches("https://").to_owned();
    assert!(served_subject(&addr).contains("before hup"));
    pki.server("api", "after hup", &["127.0.0.1"]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        served_subject(&addr).contains("before hup"),
        "no reload without the signal"
    );
    let ok = Command::new("kill")
        .args(["-HUP", &srv.child.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok);
    wait_until(
        "the certificate reloaded by SIGHUP",
        Duration::from_secs(5),
        || served_subject(&addr).contains("after hup"),
    );
    assert!(srv.logs().contains("trigger=\"SIGHUP\"") || srv.logs().contains("trigger=SIGHUP"));
}

#[test]
fn a_cluster_with_its_own_certificate_is_served_it() {
    let certs = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(certs.path(), "per-cluster-ca");
    let own = tempfile::tempdir().expect("tempdir");
    let w = tls_world(
        &pki,
        &format!(
            "gateway_tls_cluster_dir = {:?}\n",
            own.path().display().to_string()
        ),
    );
    // A second cluster on its own slot.
    let b = w.admin.ok(
        w.admin.post(
            "/cmk/v2/clusters",
            serde_json::json!({"spec":{"display_name":"two","environment":{"id":w.env},"upstream":format!("127.0.0.1:{}", w.tansu.port)}}),
        ),
        202,
    );
    let lkc2 = b["id"].as_str().expect("lkc").to_owned();
    let boot2 = b["spec"]["kafka_bootstrap_endpoint"]
        .as_str()
        .expect("bootstrap")
        .to_owned();
    crate::gateway::wait_for_port(
        boot2
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port"),
    );
    assert!(
        served_subject(&boot2).contains("gateway one"),
        "the installation's, first"
    );
    // Its own certificate dropped into the directory: served from then on, without a
    // restart; the other cluster keeps the installation's.
    let (c, k) = pki.server("own", "cluster two", &["127.0.0.1"]);
    std::fs::copy(&c, own.path().join(format!("{lkc2}.pem"))).expect("copy");
    std::fs::copy(&k, own.path().join(format!("{lkc2}.key"))).expect("copy");
    wait_until(
        "the cluster's own certificate",
        Duration::from_secs(10),
        || served_subject(&boot2).contains("cluster two"),
    );
    assert!(served_subject(&w.bootstrap).contains("gateway one"));
}
