//! The audit log end to end: records of every class, in the database (REST and CLI),
//! a JSON-lines file and a Kafka topic on a real Tansu broker read back with PyPI's
//! confluent-kafka; the topic sink's outbox across a broker outage; and no secret in
//! any sink.

use crate::clients::run_scenario;
use crate::gateway::{world_with, Tansu};
use crate::harness::{Api, CliEnv};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

pub fn events(api: &Api, query: &str) -> Vec<Value> {
    let (code, body) = api.get(&format!("/audit/v1/events?page_size=1000&{query}"));
    assert_eq!(code, 200, "{body}");
    body["data"].as_array().cloned().unwrap_or_default()
}

/// Poll the audit log until a record matching `pred` shows up.
pub fn wait_for(api: &Api, query: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        if let Some(e) = events(api, query).into_iter().find(|e| pred(e)) {
            return e;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no audit record: {what}; have:\n{:#?}",
            events(api, query)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn python() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/python").to_owned()
}

/// Read the audit topic with confluent-kafka until every id in `ids` arrived.
fn consume(bootstrap: &str, topic: &str, ids: &[String], timeout_s: u32) -> (bool, Vec<Value>) {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/python/audit_consume.py"
    );
    let out = Command::new(python())
        .arg(script)
        .args([bootstrap, topic, &timeout_s.to_string()])
        .args(ids)
        .output()
        .expect("run the audit consumer (scripts/test creates .venv)");
    let recs = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    (out.status.success(), recs)
}

fn str_at<'a>(e: &'a Value, p: &str) -> &'a str {
    e.pointer(p).and_then(Value::as_str).unwrap_or("")
}

#[test]
fn every_class_of_record_reaches_the_database_the_file_and_the_kafka_topic() {
    let w = world_with(&["orders", "payments"], |port| {
        format!(
            "audit_summary_interval_s = 1\nkey_usage_flush_ms = 200\naudit_file = \"audit.jsonl\"\n\
             audit_kafka_bootstrap = \"127.0.0.1:{port}\"\naudit_kafka_timeout_ms = 3000\n"
        )
    });
    let admin = &w.admin;
    let (admin_key, admin_secret) = w.srv.creds.clone().expect("bootstrap credentials");
    let (sa, k, s) = w.app(
        "orders-app",
        &[
            ("TOPIC", "orders", "WRITE", "ALLOW"),
            ("TOPIC", "orders", "READ", "ALLOW"),
            // Visible, so that clients try to produce and are refused.
            ("TOPIC", "payments", "DESCRIBE", "ALLOW"),
        ],
    );
    for op in ["CREATE", "DELETE"] {
        admin.ok(
            admin.post(
                &format!("/kafka/v3/clusters/{}/acls", w.lkc),
                json!({"resource_type":"TOPIC","resource_name":"tmp-","pattern_type":"PREFIXED",
                       "principal":format!("User:{sa}"),"operation":op,"permission":"ALLOW"}),
            ),
            201,
        );
    }
    // Kafka: allowed produce, a denied produce, a failed authentication, management.
    let (ok, out) = w.kcat(&k, &s, &["-P", "-t", "orders"], Some("a\nb\nc\n"));
    assert!(ok, "{out}");
    let (ok, out) = w.kcat(
        &k,
        &s,
        &["-C", "-t", "orders", "-o", "beginning", "-e"],
        None,
    );
    assert!(ok && out.contains('c'), "{out}");
    let (ok, out) = w.kcat(&k, &s, &["-P", "-t", "payments"], Some("x\n"));
    assert!(
        !ok || out.contains("uthoriz"),
        "payments must be denied: {out}"
    );
    let wrong = format!("{}Q", &s[..s.len() - 1]);
    let (ok, _) = w.kcat(&k, &wrong, &["-L"], None);
    assert!(!ok, "a wrong secret must fail");
    let (ok, out) = run_scenario("confluent-admin", &w.bootstrap, &k, &s, &[("TOPIC", "tmp")]);
    assert!(ok, "{out}");
    // REST: a denied call and a failed authentication.
    let viewer = admin.sa("viewer");
    let (vk, vs) = admin.key(&viewer, "cloud");
    let v = w.srv.api(&vk, &vs);
    assert_eq!(
        v.post("/org/v2/environments", json!({"display_name":"nope"}))
            .0,
        403
    );
    let bad = w.srv.api(&admin_key, "kgs_not-the-secret");
    assert_eq!(bad.get("/org/v2/environments").0, 401);

    let principal = format!("User:{sa}");
    let auth_ok = wait_for(
        admin,
        "method=kafka.Authentication",
        "Kafka auth success",
        |e| {
            str_at(e, "/data/authenticationInfo/principal") == principal
                && str_at(e, "/data/result/status") == "SUCCESS"
        },
    );
    assert_eq!(auth_ok["type"], "io.keygate.kafka/authentication");
    assert_eq!(auth_ok["specversion"], "1.0");
    assert_eq!(
        str_at(&auth_ok, "/data/authenticationInfo/metadata/identifier"),
        k
    );
    assert_eq!(
        str_at(&auth_ok, "/data/authenticationInfo/metadata/mechanism"),
        "SASL_PLAIN"
    );
    assert!(str_at(&auth_ok, "/source").ends_with(&format!("cloud-cluster={}", w.lkc)));
    assert!(str_at(&auth_ok, "/data/requestMetadata/clientAddress").starts_with("127.0.0.1:"));
    let auth_bad = wait_for(
        admin,
        "method=kafka.Authentication",
        "Kafka auth failure",
        |e| str_at(e, "/data/result/status") == "UNAUTHENTICATED",
    );
    assert_eq!(
        str_at(&auth_bad, "/data/authenticationInfo/metadata/identifier"),
        k
    );
    assert!(auth_bad["data"]["authenticationInfo"]
        .get("principal")
        .is_none());

    let denied = wait_for(
        admin,
        "method=kafka.Produce&granted=false",
        "denied produce",
        |e| str_at(e, "/data/resourceName").ends_with("/topic=payments"),
    );
    assert_eq!(denied["type"], "io.keygate.kafka/authorization");
    assert_eq!(
        str_at(&denied, "/data/authorizationInfo/operation"),
        "WRITE"
    );
    assert_eq!(str_at(&denied, "/data/result/status"), "UNAUTHORIZED");
    assert!(denied["data"]["request"]["correlationId"].is_number());
    assert!(
        events(admin, "method=kafka.Produce&granted=false")
            .iter()
            .all(|e| !str_at(e, "/data/resourceName").ends_with("/topic=orders")),
        "allowed produce is never logged as a denial"
    );
    let summary = wait_for(
        admin,
        "method=kafka.Produce&granted=true",
        "produce summary",
        |e| str_at(e, "/data/resourceName").ends_with("/topic=orders"),
    );
    assert_eq!(summary["type"], "io.keygate.kafka/request-summary");
    assert!(summary["data"]["summary"]["requests"].as_u64().unwrap_or(0) >= 1);
    assert!(summary["data"]["summary"]["bytes"].as_u64().unwrap_or(0) >= 3);

    let fetched = wait_for(
        admin,
        "method=kafka.Fetch&granted=true",
        "fetch summary",
        |e| str_at(e, "/data/resourceName").ends_with("/topic=orders"),
    );
    assert_eq!(fetched["type"], "io.keygate.kafka/request-summary");
    assert_eq!(
        str_at(&fetched, "/data/authorizationInfo/operation"),
        "READ"
    );
    assert!(fetched["data"]["summary"]["requests"].as_u64().unwrap_or(0) >= 1);
    assert!(fetched["data"]["summary"]["bytes"].as_u64().unwrap_or(0) > 0);
    let created = wait_for(
        admin,
        "method=kafka.CreateTopics&granted=true",
        "allowed CreateTopics",
        |e| str_at(e, "/data/authorizationInfo/resourceName").starts_with("tmp-"),
    );
    assert_eq!(created["type"], "io.keygate.kafka/request");
    assert_eq!(
        str_at(
            &created,
            "/data/authorizationInfo/aclAuthorization/permissionType"
        ),
        "ALLOW"
    );
    wait_for(
        admin,
        "method=kafka.CreateTopics&granted=false",
        "denied CreateTopics",
        |e| str_at(e, "/data/authorizationInfo/resourceName").starts_with("forbidden-"),
    );
    wait_for(
        admin,
        "method=kafka.DeleteTopics&granted=true",
        "DeleteTopics",
        |_| true,
    );

    let rest_denied = wait_for(
        admin,
        "granted=false&method=POST%20%2Forg%2Fv2%2Fenvironments",
        "REST denial",
        |_| true,
    );
    assert_eq!(
        str_at(&rest_denied, "/data/authenticationInfo/principal"),
        format!("User:{viewer}")
    );
    assert_eq!(
        str_at(&rest_denied, "/data/authenticationInfo/metadata/identifier"),
        vk
    );
    let rest_bad = wait_for(
        admin,
        &format!("identifier={admin_key}"),
        "REST auth failure",
        |e| e["type"] == "io.keygate.iam/authentication",
    );
    assert_eq!(str_at(&rest_bad, "/data/result/status"), "UNAUTHENTICATED");
    // Changes, recorded with their transactions.
    let key_created = wait_for(admin, "method=CreateAPIKey", "CreateAPIKey", |e| {
        str_at(e, "/data/resourceName").ends_with(&format!("/api-key={k}"))
    });
    assert_eq!(
        str_at(&key_created, "/data/authenticationInfo/metadata/identifier"),
        admin_key
    );
    let acls = wait_for(admin, "method=CreateAcls", "CreateAcls", |e| {
        str_at(e, "/data/result/message").contains("tmp-")
    });
    assert!(str_at(&acls, "/data/result/message").contains("PREFIXED"));
    // Filters: by principal, by resource prefix, by time.
    let mine = events(admin, &format!("principal=User:{sa}"));
    assert!(
        !mine.is_empty()
            && mine
                .iter()
                .all(|e| str_at(e, "/data/authenticationInfo/principal") == principal)
    );
    let topic_prefix = format!(
        "{}*",
        str_at(&denied, "/data/resourceName").trim_end_matches("payments")
    );
    assert!(events(
        admin,
        &format!("resource={}", crate::cli_enc(&topic_prefix))
    )
    .iter()
    .all(|e| str_at(e, "/data/resourceName").contains("/topic=")));
    assert!(events(admin, "start_time=2099-01-01T00:00:00Z").is_empty());
    // Bad query parameters: a specific error naming the parameter, and nothing else.
    for (query, param, hint) in [
        ("start_time=yesterday", "start_time", "RFC 3339"),
        ("end_time=2026-13-01T00:00:00Z", "end_time", "RFC 3339"),
        ("granted=maybe", "granted", "true or false"),
        ("order=sideways", "order", "asc or desc"),
        ("page_size=0", "page_size", "1 to 1000"),
        ("page_size=1001", "page_size", "1 to 1000"),
        ("page_token=-4", "page_token", "not a token"),
        ("page_token=abc", "page_token", "not a token"),
    ] {
        let (code, body) = admin.get(&format!("/audit/v1/events?{query}"));
        assert_eq!(code, 400, "{query}: {body}");
        let text = body.to_string();
        assert!(
            text.contains(param) && text.contains(hint),
            "{query}: {body}"
        );
    }
    // Only operators read the organization's log; a key's owner reads its own records.
    assert_eq!(v.get("/audit/v1/events").0, 403);
    let own = events(&v, &format!("identifier={vk}"));
    assert!(own
        .iter()
        .any(|e| str_at(e, "/data/methodName") == "POST /org/v2/environments"));
    assert!(
        events(&v, &format!("identifier={k}")).is_empty(),
        "not the viewer's key"
    );

    // The file and the topic have every record the database has.
    let all = events(admin, "");
    let ids: Vec<String> = all.iter().map(|e| str_at(e, "/id").to_owned()).collect();
    let path = w.dir.path().join("audit.jsonl");
    let start = Instant::now();
    let file = loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let have: HashSet<String> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|e| str_at(&e, "/id").to_owned())
            .collect();
        if ids.iter().all(|i| have.contains(i)) {
            break text;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "file sink is missing records"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let (ok, recs) = consume(
        &format!("127.0.0.1:{}", w.tansu.port),
        "keygate-audit-log-events",
        &ids,
        60,
    );
    assert!(
        ok,
        "the Kafka topic is missing records (got {})",
        recs.len()
    );
    // In order per source: each source's records appear in database order.
    let pos: std::collections::HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let mut last: std::collections::HashMap<String, usize> = Default::default();
    for r in &recs {
        let source = str_at(r, "/event/source").to_owned();
        assert_eq!(str_at(r, "/key"), source, "keyed by source");
        if let Some(p) = pos.get(str_at(r, "/event/id")) {
            if let Some(prev) = last.insert(source.clone(), *p) {
                assert!(prev < *p, "records of {source} out of order");
            }
        }
    }

    // The CLI: last use per key, recent activity of one key, search and tail.
    let cli = CliEnv::new();
    cli.json(&[
        "login",
        "--url",
        &w.srv.url,
        "--api-key",
        &admin_key,
        "--api-secret",
        &admin_secret,
    ]);
    let keys = cli.json(&["api-key", "list"]);
    let listed = keys
        .as_array()
        .and_then(|a| a.iter().find(|x| x["id"] == k.as_str()))
        .cloned()
        .unwrap_or_default();
    assert!(
        listed["status"]["last_used_at"].is_string(),
        "last used: {listed}"
    );
    let (ok, human, _) = cli.run(&["api-key", "list"]);
    assert!(ok && human.contains("Last Used"));
    let described = cli.json(&["api-key", "describe", &k]);
    let recent = described["recent_activity"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(recent
        .iter()
        .any(|e| str_at(e, "/data/methodName") == "kafka.Authentication"));
    let (ok, human, _) = cli.run(&["api-key", "describe", &k]);
    assert!(
        ok && human.contains("Recent authentications") && human.contains("kafka.Authentication"),
        "{human}"
    );
    let found = cli.json(&[
        "audit-log",
        "search",
        "--method",
        "kafka.Authentication",
        "--api-key",
        &k,
    ]);
    assert!(found.as_array().is_some_and(|a| a.len() >= 2), "{found}");
    let denied_only = cli.json(&["audit-log", "search", "--denied", "--since", "1h"]);
    assert!(denied_only.as_array().is_some_and(|a| !a.is_empty()
        && a.iter()
            .all(|e| e["data"]["authorizationInfo"]["granted"] == false)));
    let (ok, tail, err) = cli.run(&["audit-log", "tail", "-n", "3"]);
    assert!(ok, "{err}");
    assert!(tail.contains("Method"), "{tail}");
    // tail -f prints records as they arrive.
    let mut follow = Command::new(crate::harness::BIN)
        .args([
            "audit-log",
            "tail",
            "-f",
            "-n",
            "0",
            "--poll-ms",
            "200",
            "--method",
            "CreateEnvironment",
            "-o",
            "json",
        ])
        .env("KEYGATE_CLI_CONFIG", &cli.config)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("tail -f");
    let stdout = follow.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for l in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(l);
        }
    });
    std::thread::sleep(Duration::from_millis(600));
    let env2 = admin.env("followed");
    let line = rx.recv_timeout(Duration::from_secs(15));
    let _ = follow.kill();
    let _ = follow.wait();
    let line = line.expect("tail -f printed the new record");
    assert!(line.contains(&format!("environment={env2}")), "{line}");

    // No secret in any sink: database rows (and the raw database files), the file, the topic.
    let secrets = [
        s.as_str(),
        wrong.as_str(),
        admin_secret.as_str(),
        vs.as_str(),
        "kgs_not-the-secret",
    ];
    let mut haystacks = vec![
        ("file", file),
        (
            "REST",
            serde_json::to_string(&events(admin, "")).unwrap_or_default(),
        ),
        ("topic", serde_json::to_string(&recs).unwrap_or_default()),
    ];
    for f in ["keygate.db", "keygate.db-wal"] {
        let bytes = std::fs::read(w.dir.path().join("data").join(f)).unwrap_or_default();
        haystacks.push((f, String::from_utf8_lossy(&bytes).into_owned()));
    }
    for (name, text) in &haystacks {
        assert!(
            !text.is_empty() || name.ends_with("-wal"),
            "{name} is empty"
        );
        for secret in secrets {
            assert!(!text.contains(secret), "a secret is in the {name} sink");
        }
    }
}

#[test]
fn the_kafka_sink_holds_records_while_the_broker_is_down_and_delivers_all_in_order() {
    let audit_port = crate::gateway::free_ports(1);
    let mut audit_broker = Tansu::start_on(audit_port, &[]);
    let w = world_with(&["orders"], |_| {
        format!(
            "audit_kafka_bootstrap = \"127.0.0.1:{audit_port}\"\naudit_kafka_timeout_ms = 2000\n"
        )
    });
    let admin = &w.admin;
    let bootstrap = format!("127.0.0.1:{audit_port}");
    // The sink works: the bootstrap record arrives.
    let first: Vec<String> = events(admin, "method=BootstrapOrganization")
        .iter()
        .map(|e| str_at(e, "/id").to_owned())
        .collect();
    let (ok, _) = consume(&bootstrap, "keygate-audit-log-events", &first, 60);
    assert!(ok, "the audit topic sink never delivered");

    audit_broker.stop();
    let mut names = Vec::new();
    for i in 0..20 {
        let name = format!("while-down-{i:02}");
        admin.sa(&name);
        names.push(name);
    }
    let (_, k, s) = w.app("down-app", &[("TOPIC", "orders", "WRITE", "ALLOW")]);
    let (ok, out) = w.kcat(&k, &s, &["-P", "-t", "orders"], Some("m\n"));
    assert!(
        ok,
        "the gateway keeps working while the audit broker is down: {out}"
    );
    std::thread::sleep(Duration::from_secs(3));
    let _audit_broker = Tansu::start_on(audit_port, &[]);

    let created: Vec<String> = events(admin, "method=CreateServiceAccount")
        .iter()
        .filter(|e| str_at(e, "/data/resourceName").contains("service-account="))
        .map(|e| str_at(e, "/id").to_owned())
        .collect();
    assert_eq!(created.len(), 21, "20 while down and down-app");
    let mut want = created.clone();
    want.push(
        wait_for(
            admin,
            "method=kafka.Authentication",
            "auth while down",
            |e| str_at(e, "/data/authenticationInfo/metadata/identifier") == k,
        )["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    );
    let (ok, recs) = consume(&bootstrap, "keygate-audit-log-events", &want, 90);
    assert!(
        ok,
        "records made while the broker was down did not all arrive ({} read)",
        recs.len()
    );
    let order: Vec<&str> = recs
        .iter()
        .map(|r| str_at(r, "/event/id"))
        .filter(|id| created.iter().any(|c| c == id))
        .collect();
    let mut dedup: Vec<&str> = Vec::new();
    for id in order {
        if !dedup.contains(&id) {
            dedup.push(id);
        }
    }
    let expected: Vec<&str> = created.iter().map(String::as_str).collect();
    assert_eq!(dedup, expected, "same order as they were made");
}

#[test]
fn retention_removes_old_records_in_the_background() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("keygate.toml"), "audit_retention_s = 2\n").expect("toml");
    let srv = crate::harness::Server::start_in(dir.path(), &[]);
    let admin = srv.admin();
    let has = |env: &str| {
        events(&admin, "method=CreateEnvironment")
            .iter()
            .any(|e| str_at(e, "/data/resourceName").ends_with(&format!("environment={env}")))
    };
    let old = admin.env("old");
    assert!(has(&old), "a new record is there");
    let start = Instant::now();
    while has(&old) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "records older than the retention were not removed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // New records are kept until they are old enough.
    let fresh = admin.env("fresh");
    assert!(has(&fresh));
}

/// The HTTP gateway's records: a failed authentication (the key id, never the secret),
/// each denial with its target, and allowed traffic summarised per principal and target.
#[test]
fn http_gateway_failures_denials_and_summaries_are_recorded() {
    let sr = crate::services::sr_world("audit_summary_interval_s = 1\n");
    let admin = &sr.w.admin;
    let (sa, reader) = sr.principal("audited", "DeveloperRead", "/subject=orders*");
    let (_, steward) = sr.principal("audit-steward", "DataSteward", "@env");
    steward.ok(
        steward.post(
            "/subjects/orders-value/versions",
            json!({"schema": "{\"type\":\"string\"}"}),
        ),
        200,
    );
    assert_eq!(reader.get("/subjects/orders-value/versions").0, 200);
    assert_eq!(reader.get("/subjects/payments-value/versions").0, 403);
    let wrong = crate::harness::Api {
        secret: "kgs_wrong-secret".into(),
        ..reader.clone()
    };
    assert_eq!(wrong.get("/subjects").0, 401);
    let principal = format!("User:{sa}");
    let failed = wait_for(
        admin,
        "method=http.Authentication",
        "HTTP auth failure",
        |e| str_at(e, "/data/authenticationInfo/metadata/identifier") == reader.key,
    );
    assert_eq!(failed["type"], "io.keygate.http/authentication");
    assert_eq!(str_at(&failed, "/data/result/status"), "UNAUTHENTICATED");
    let denied = wait_for(admin, "method=http.GET&granted=false", "HTTP denial", |e| {
        str_at(e, "/data/authenticationInfo/principal") == principal
    });
    assert_eq!(denied["type"], "io.keygate.http/authorization");
    assert!(str_at(&denied, "/data/resourceName").ends_with("/subject=payments-value"));
    let summary = wait_for(
        admin,
        "method=http.Read&granted=true",
        "HTTP summary",
        |e| str_at(e, "/data/authenticationInfo/principal") == principal,
    );
    assert_eq!(summary["type"], "io.keygate.http/request-summary");
    assert!(str_at(&summary, "/data/resourceName").ends_with("/subject=orders-value"));
    assert!(summary["data"]["summary"]["requests"].as_u64().unwrap_or(0) >= 1);
    let all = events(admin, "")
        .iter()
        .map(|e| e.to_string())
        .collect::<String>();
    assert!(!all.contains("kgs_wrong-secret") && !all.contains(&reader.secret));
}

/// The suite-wide leak check (every server's log, audit log and metrics against every
/// secret the suite saw, at the server's end) finds what is there: here a string
/// that is in the audit log by design, posing as a secret.
#[test]
fn the_leak_check_finds_what_a_server_wrote() {
    let (mut srv, _dir) = crate::harness::Server::start(&[]);
    let admin = srv.admin();
    let sa = admin.sa("leak-check");
    assert_eq!(srv.leaked_secret(), None, "nothing secret written");
    let posing = format!("service-account={sa}");
    crate::harness::remember_secret(&posing);
    let found = srv.leaked_secret();
    crate::harness::forget_secret(&posing);
    assert_eq!(found.as_deref(), Some(posing.as_str()));
}
