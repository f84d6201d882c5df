//! PyPI's confluent-kafka and kafka-python through the gateway (the scenarios are in
//! tests/python/clients.py; scripts/test creates the virtualenv).

use crate::gateway::world;
use serde_json::json;
use std::process::Command;

fn python() -> String {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let py = format!("{root}/.venv/bin/python");
    let ok = Command::new(&py)
        .args(["-c", "import confluent_kafka, kafka"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "the test virtualenv is missing: run scripts/test (it creates .venv with tests/python/requirements.txt)");
    py
}

fn scenario(
    name: &str,
    bootstrap: &str,
    key: &str,
    secret: &str,
    topic: &str,
    group: &str,
) -> (bool, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/python/clients.py");
    let out = Command::new(python())
        .args([script, name])
        .env("BOOTSTRAP", bootstrap)
        .env("KEY", key)
        .env("SECRET", secret)
        .env("TOPIC", topic)
        .env("GROUP", group)
        .output()
        .expect("run python");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn confluent_kafka_consumer_groups_commit_and_resume() {
    let w = world(&["orders"], "");
    let (_, k, s) = w.app(
        "grouped",
        &[
            ("TOPIC", "orders", "WRITE", "ALLOW"),
            ("TOPIC", "orders", "READ", "ALLOW"),
            ("GROUP", "g1", "READ", "ALLOW"),
        ],
    );
    let (ok, out) = scenario("confluent-group", &w.bootstrap, &k, &s, "orders", "g1");
    assert!(ok, "{out}");
    // The same key in a group it may not use.
    let (ok, out) = scenario(
        "confluent-group-denied",
        &w.bootstrap,
        &k,
        &s,
        "orders",
        "other-group",
    );
    assert!(ok, "{out}");
    // kafka-python 3.x as well.
    let (ok, out) = scenario("kafka-python", &w.bootstrap, &k, &s, "orders", "g1");
    assert!(ok, "{out}");
}

#[test]
fn admin_idempotent_and_transactional_producers() {
    let w = world(&["orders"], "");
    let (sa, k, s) = w.app("admin-app", &[]);
    let org = w.admin.org_crn();
    let topics = format!(
        "{org}/environment={}/cloud-cluster={}/kafka={}/topic=orders*",
        w.env, w.lkc, w.lkc
    );
    // DeveloperManage on orders* (create/delete), DeveloperWrite (write + idempotent).
    for role in ["DeveloperManage", "DeveloperWrite"] {
        w.admin.ok(
            w.admin.post(
                "/iam/v2/role-bindings",
                json!({"principal":format!("User:{sa}"),"role_name":role,"crn_pattern":topics}),
            ),
            201,
        );
    }
    let (ok, out) = scenario("confluent-admin", &w.bootstrap, &k, &s, "orders", "g1");
    assert!(ok, "{out}");
    let (ok, out) = scenario("idempotent", &w.bootstrap, &k, &s, "orders", "g1");
    assert!(ok, "{out}");
    let (ok, out) = scenario("transactional-denied", &w.bootstrap, &k, &s, "orders", "g1");
    assert!(ok, "{out}");
}
