//! Certificate identities: a client certificate signed by a certificate authority
//! registered in keygate, matching a certificate identity pool's CEL filter,
//! authenticates with `security.protocol=SSL` and no SASL, as `User:pool-…` — with
//! kcat, confluent-kafka, kafka-python and the rdkafka crate. Expired, not yet valid,
//! self-signed, other-CA, revoked and unmatched certificates are refused, each with a
//! reason in the log.

use crate::clients::run_scenario;
use crate::gateway::run_kcat;
use crate::harness::CliEnv;
use crate::tls::{tls_world, Pki};
use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// kcat over SSL with a client certificate (no SASL).
fn kcat_mtls(bootstrap: &str, ca: &Path, cert: &Path, key: &Path) -> Command {
    let mut cmd = Command::new(crate::gateway::kcat_bin());
    cmd.env_remove("LD_LIBRARY_PATH")
        .args(["-b", bootstrap, "-X", "security.protocol=SSL"])
        .arg("-X")
        .arg(format!("ssl.ca.location={}", ca.display()))
        .arg("-X")
        .arg(format!("ssl.certificate.location={}", cert.display()))
        .arg("-X")
        .arg(format!("ssl.key.location={}", key.display()))
        .args(["-X", "fetch.wait.max.ms=10"]);
    cmd
}

#[test]
fn client_certificates_authenticate_as_certificate_pools() {
    let certs = tempfile::tempdir().expect("tempdir");
    let server = Pki::new(certs.path(), "server-ca");
    let clients = Pki::new(certs.path(), "client-ca");
    let w = tls_world(&server, "");
    let (k, s) = w.srv.creds.clone().expect("creds");
    let cli = CliEnv::new();
    let (ok, _, err) = cli.run(&[
        "login",
        "--url",
        &w.srv.url,
        "--api-key",
        &k,
        "--api-secret",
        &s,
    ]);
    assert!(ok, "{err}");

    let (good, good_key) = clients.client("good", "orders-app", "Acme", 1, None);
    let (revoked, revoked_key) = clients.client("revoked", "orders-app", "Acme", 2, None);
    let (intruder, intruder_key) = clients.client("intruder", "intruder", "Acme", 3, None);
    let now = time::OffsetDateTime::now_utc();
    let (expired, expired_key) = clients.client(
        "expired",
        "orders-app",
        "Acme",
        4,
        Some((
            now - time::Duration::days(30),
            now - time::Duration::days(1),
        )),
    );
    let (future, future_key) = clients.client(
        "future",
        "orders-app",
        "Acme",
        5,
        Some((
            now + time::Duration::days(1),
            now + time::Duration::days(30),
        )),
    );
    let elsewhere = Pki::new(certs.path(), "elsewhere-ca");
    let (foreign, foreign_key) = elsewhere.client("foreign", "orders-app", "Acme", 1, None);
    let selfsigned_dir = tempfile::tempdir().expect("tempdir");
    let lone = Pki::new(selfsigned_dir.path(), "orders-app");
    let crl = clients.crl("client-crl", &[2]);

    // The hosted CLI's verbs.
    let ca = cli.json(&[
        "iam",
        "certificate-authority",
        "create",
        "clients",
        "--certificate-chain",
        clients.ca.to_str().expect("path"),
        "--crl-file",
        crl.to_str().expect("path"),
        "--description",
        "client certificates of the orders team",
    ]);
    let op = ca["id"].as_str().expect("id").to_owned();
    assert_eq!(ca["kind"], "CertificateAuthority");
    assert_eq!(ca["certificate_chain_filename"], "client-ca.pem");
    assert_eq!(ca["crl_source"], "LOCAL");
    assert_eq!(ca["fingerprints"].as_array().map(Vec::len), Some(1));
    let pool = cli.json(&[
        "iam",
        "certificate-pool",
        "create",
        "orders",
        "--provider",
        &op,
        "--external-identifier",
        "CN",
        "--filter",
        "CN == 'orders-app' && O == 'Acme'",
    ]);
    let pool_id = pool["id"].as_str().expect("pool").to_owned();
    assert_eq!(pool["principal"], pool_id.as_str());
    // The OAuth front door does not see certificate authorities.
    let (code, _) = w.admin.get(&format!("/iam/v2/identity-providers/{op}"));
    assert_eq!(code, 404);
    let acls: Vec<_> = [("TOPIC", "orders", "WRITE"), ("TOPIC", "orders", "READ"), ("GROUP", "g1", "READ"), ("GROUP", "rust-mtls", "READ")]
        .iter()
        .map(|(rt, rn, op)| json!({"resource_type":rt,"resource_name":rn,"pattern_type":"LITERAL","principal":format!("User:{pool_id}"),"operation":op,"permission":"ALLOW"}))
        .collect();
    w.admin.ok(
        w.admin.post(
            &format!("/kafka/v3/clusters/{}/acls:batch", w.lkc),
            json!({ "data": acls }),
        ),
        201,
    );

    // kcat with the good certificate: no SASL at all.
    let mut p = kcat_mtls(&w.bootstrap, &server.ca, &good, &good_key);
    p.args(["-P", "-t", "orders"]);
    let (ok, out) = run_kcat(p, Some("by-certificate\n"));
    assert!(ok, "produce with a client certificate: {out}");
    let mut c = kcat_mtls(&w.bootstrap, &server.ca, &good, &good_key);
    c.args(["-C", "-t", "orders", "-o", "beginning", "-e"]);
    let (ok, out) = run_kcat(c, None);
    assert!(
        ok && out.contains("by-certificate"),
        "consume with a client certificate: {out}"
    );

    // confluent-kafka, kafka-python, rdkafka.
    let (ca_s, cert_s, key_s) = (
        server.ca.display().to_string(),
        good.display().to_string(),
        good_key.display().to_string(),
    );
    let env = [
        ("TOPIC", "orders"),
        ("GROUP", "g1"),
        ("CA_FILE", ca_s.as_str()),
        ("CLIENT_CERT", cert_s.as_str()),
        ("CLIENT_KEY", key_s.as_str()),
    ];
    let (ok, out) = run_scenario("confluent-group", &w.bootstrap, "-", "-", &env);
    assert!(ok, "confluent-kafka with a client certificate: {out}");
    let (ok, out) = run_scenario("kafka-python", &w.bootstrap, "-", "-", &env);
    assert!(ok, "kafka-python with a client certificate: {out}");
    crate::rdkafka_client::round_trip_mtls(&w.bootstrap, &server.ca, &good, &good_key, "rust-mtls");

    // Refused, each for its own reason.
    for (what, cert, key, reason) in [
        ("revoked", &revoked, &revoked_key, "Revoked"),
        ("expired", &expired, &expired_key, "certificate expired"),
        ("not yet valid", &future, &future_key, "not valid yet"),
        ("another CA's", &foreign, &foreign_key, "UnknownIssuer"),
        (
            "matching no pool",
            &intruder,
            &intruder_key,
            "matches no certificate identity pool",
        ),
    ] {
        let mut m = kcat_mtls(&w.bootstrap, &server.ca, cert, key);
        m.args(["-L", "-m", "4"]);
        let (ok, out) = run_kcat(m, None);
        assert!(!ok, "a {what} certificate must be refused: {out}");
        let start = std::time::Instant::now();
        while !w.srv.logs().contains(reason) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "no `{reason}` in the log for the {what} certificate: {}",
                w.srv
                    .logs()
                    .lines()
                    .filter(|l| l.contains("TLS") || l.contains("pool"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // A self-signed certificate (its own CA, unknown to keygate).
    let (lone_cert, lone_key) = lone.client("lone", "orders-app", "Acme", 9, None);
    let mut m = kcat_mtls(&w.bootstrap, &server.ca, &lone_cert, &lone_key);
    m.args(["-L", "-m", "4"]);
    assert!(
        !run_kcat(m, None).0,
        "a certificate of an unknown issuer is refused"
    );

    // Deleting the pool ends what it allowed.
    cli.json(&[
        "iam",
        "certificate-pool",
        "delete",
        &pool_id,
        "--provider",
        &op,
    ]);
    std::thread::sleep(Duration::from_millis(500));
    let mut m = kcat_mtls(&w.bootstrap, &server.ca, &good, &good_key);
    m.args(["-L", "-m", "4"]);
    let (ok, out) = run_kcat(m, None);
    assert!(
        !ok,
        "after the pool is deleted the certificate authenticates nobody: {out}"
    );
}

#[test]
fn the_console_adds_a_certificate_authority_and_a_pool() {
    let (srv, _dir) = crate::harness::Server::start(&[]);
    let admin = srv.admin();
    crate::console::set_admin_password(&admin);
    let certs = tempfile::tempdir().expect("tempdir");
    let clients = Pki::new(certs.path(), "console-clients");
    let ca = clients.ca.display().to_string();
    let v = crate::console::browse(
        "certificates",
        &srv.url,
        "admin@keygate.local",
        &[("CA_PEM", ca.as_str())],
    );
    assert_eq!(
        v["fingerprints"].as_str().map(|f| f.len()),
        Some(40),
        "the chain's SHA-1 fingerprint is shown: {v}"
    );
    let pools = v["pools"].to_string();
    assert!(
        pools.contains("orders") && pools.contains("CN == 'orders-app'"),
        "{v}"
    );
    // What the console made is what the REST API serves.
    let listed = admin.all("/iam/v2/certificate-authorities");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["display_name"], "clients");
}

#[test]
fn a_crl_published_at_a_url_is_fetched_and_enforced() {
    let certs = tempfile::tempdir().expect("tempdir");
    let server = Pki::new(certs.path(), "server-ca");
    let clients = Pki::new(certs.path(), "url-clients");
    let w = tls_world(&server, "oauth_jwks_refresh_s = 1\n");
    let (good, good_key) = clients.client("good", "orders-app", "Acme", 1, None);
    let (revoked, revoked_key) = clients.client("revoked", "orders-app", "Acme", 2, None);
    // Published as DER, the usual form at a CRL distribution point.
    let pem = clients.crl("url-crl", &[2]);
    let der = certs.path().join("crl.der");
    let ok = Command::new("openssl")
        .args(["crl", "-in"])
        .arg(&pem)
        .args(["-outform", "DER", "-out"])
        .arg(&der)
        .status()
        .expect("openssl")
        .success();
    assert!(ok);
    let port = crate::gateway::free_ports(1);
    let mut http = Command::new("python3")
        .args([
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--directory",
        ])
        .arg(certs.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3 http.server");
    crate::gateway::wait_for_port(port);
    let chain = std::fs::read_to_string(&clients.ca).expect("ca");
    let ca = w.admin.ok(
        w.admin.post(
            "/iam/v2/certificate-authorities",
            json!({"display_name": "by-url", "description": "", "certificate_chain": chain,
                   "certificate_chain_filename": "url-clients.pem",
                   "crl_url": format!("http://127.0.0.1:{port}/crl.der")}),
        ),
        201,
    );
    let op = ca["id"].as_str().expect("id").to_owned();
    assert_eq!(ca["crl_source"], "URL");
    let pool = w.admin.ok(
        w.admin.post(
            &format!("/iam/v2/certificate-authorities/{op}/identity-pools"),
            json!({"display_name": "orders", "description": "", "external_identifier": "CN",
                   "filter": "CN == 'orders-app'"}),
        ),
        201,
    );
    let pool_id = pool["id"].as_str().expect("pool").to_owned();
    w.admin.ok(
        w.admin.post(
            &format!("/kafka/v3/clusters/{}/acls", w.lkc),
            json!({"resource_type":"TOPIC","resource_name":"orders","pattern_type":"LITERAL",
                   "principal":format!("User:{pool_id}"),"operation":"DESCRIBE","permission":"ALLOW"}),
        ),
        201,
    );
    // Fetched on the refresh schedule, then in force.
    let start = std::time::Instant::now();
    loop {
        let (_, v) = w
            .admin
            .get(&format!("/iam/v2/certificate-authorities/{op}"));
        if v["crl_updated_at"].is_string() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the CRL was never fetched: {v}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut m = kcat_mtls(&w.bootstrap, &server.ca, &revoked, &revoked_key);
    m.args(["-L", "-m", "4"]);
    let (ok, out) = run_kcat(m, None);
    assert!(
        !ok,
        "a certificate the published CRL revokes is refused: {out}"
    );
    assert!(w.srv.logs().contains("Revoked"));
    let mut g = kcat_mtls(&w.bootstrap, &server.ca, &good, &good_key);
    g.args(["-L", "-m", "8"]);
    let (ok, out) = run_kcat(g, None);
    assert!(ok, "an unrevoked certificate still authenticates: {out}");
    let _ = http.kill();
    let _ = http.wait();
}
