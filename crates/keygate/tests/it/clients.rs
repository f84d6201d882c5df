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
    run_scenario(
        name,
        bootstrap,
        key,
        secret,
        &[("TOPIC", topic), ("GROUP", group)],
    )
}

/// Run one scenario of tests/python/clients.py; returns success and its output.
pub fn run_scenario(
    name: &str,
    bootstrap: &str,
    key: &str,
    secret: &str,
    env: &[(&str, &str)],
) -> (bool, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/python/clients.py");
    let out = Command::new(python())
        .args([script, name])
        .env("BOOTSTRAP", bootstrap)
        .env("KEY", key)
        .env("SECRET", secret)
        .envs(env.iter().copied())
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

/// Issue 13, part 10: group traffic through the gateway behaves as directly against
/// the broker — two members settle and stay settled, a closing member's LeaveGroup
/// reaches the broker at once (the other takes over well before a session timeout).
/// Three times, as rebalances are timing-sensitive. (librdkafka's own 0018 and 0118
/// fail as often directly against Tansu: scripts/librdkafka-group-tests.)
#[test]
fn two_group_members_settle_and_a_leaving_one_is_replaced_at_once() {
    let w = world(&[], "");
    w.tansu.create_topic("orders4", 4);
    let (_, k, s) = w.app(
        "rebalancing",
        &[
            ("TOPIC", "orders4", "WRITE", "ALLOW"),
            ("TOPIC", "orders4", "READ", "ALLOW"),
            ("GROUP", "rebalance", "READ", "ALLOW"),
        ],
    );
    for run in 0..3 {
        let (ok, out) = scenario(
            "confluent-rebalance",
            &w.bootstrap,
            &k,
            &s,
            "orders4",
            "rebalance",
        );
        assert!(ok, "run {run}: {out}");
    }
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

#[test]
fn an_acl_change_applies_to_an_open_connection() {
    let w = world(&["orders"], "");
    let (sa, k, s) = w.app("live", &[("TOPIC", "orders", "WRITE", "ALLOW")]);
    let dir = tempfile::tempdir().expect("tempdir");
    let (ready, signal) = (dir.path().join("ready"), dir.path().join("signal"));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/python/clients.py");
    let child = Command::new(python())
        .args([script, "acl-change-on-open-connection"])
        .env("BOOTSTRAP", &w.bootstrap)
        .env("KEY", &k)
        .env("SECRET", &s)
        .env("TOPIC", "orders")
        .env("READY", &ready)
        .env("SIGNAL", &signal)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python");
    let start = std::time::Instant::now();
    while !ready.exists() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "the producer never got ready"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (code, deleted) = w.admin.delete(&format!(
        "/kafka/v3/clusters/{}/acls?principal=User:{sa}&operation=WRITE&resource_type=ANY&pattern_type=ANY&permission=ANY",
        w.lkc
    ));
    assert_eq!(code, 200);
    assert_eq!(deleted["data"].as_array().map(Vec::len), Some(1));
    std::fs::write(&signal, "").expect("signal");
    let out = child.wait_with_output().expect("wait");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
}

fn scenario_with(
    name: &str,
    w: &crate::gateway::World,
    key: &str,
    secret: &str,
    grantee: &str,
) -> (bool, String) {
    run_scenario(
        name,
        &w.bootstrap,
        key,
        secret,
        &[("TOPIC", "orders"), ("GRANTEE", grantee)],
    )
}

#[test]
fn kafka_admin_tools_manage_keygate_acls() {
    let w = world(&["orders"], "");
    let (admin_sa, ak, asec) = w.app("acl-admin", &[]);
    let org = w.admin.org_crn();
    w.admin.bind(
        &format!("User:{admin_sa}"),
        "CloudClusterAdmin",
        &format!("{org}/environment={}/cloud-cluster={}", w.env, w.lkc),
    );
    let (reader_sa, rk, rs) = w.app("reader", &[]);
    let grantee = format!("User:{reader_sa}");
    // Created over the Kafka protocol, the ACL is keygate's: REST lists it, and it works.
    let (ok, out) = scenario_with("kafka-acls-create", &w, &ak, &asec, &grantee);
    assert!(ok, "{out}");
    let listed = w
        .admin
        .get(&format!(
            "/kafka/v3/clusters/{}/acls?principal={grantee}",
            w.lkc
        ))
        .1;
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed["data"][0]["operation"], "READ");
    let (ok, out) = w.kcat(&rk, &rs, &["-L", "-t", "orders"], None);
    assert!(
        ok && out.contains("\"orders\""),
        "the new ACL (READ implies DESCRIBE) applies: {out}"
    );
    // Without ALTER on the cluster, refused.
    let (ok, out) = scenario_with("kafka-acls-denied", &w, &rk, &rs, &grantee);
    assert!(ok, "{out}");
    // Deleted over the Kafka protocol.
    let (ok, out) = scenario_with("kafka-acls-delete", &w, &ak, &asec, &grantee);
    assert!(ok, "{out}");
    let listed = w
        .admin
        .get(&format!(
            "/kafka/v3/clusters/{}/acls?principal={grantee}",
            w.lkc
        ))
        .1;
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(0), "{listed}");
}

#[test]
fn sessions_re_authenticate_before_their_lifetime_ends() {
    let w = world(&["orders"], "gateway_max_session_lifetime_s = 2\n");
    let (_, k, s) = w.app("long", &[("TOPIC", "orders", "WRITE", "ALLOW")]);
    let (ok, out) = scenario_with("long-producer", &w, &k, &s, "-");
    assert!(ok, "{out}");
    let reauths = w.srv.logs().matches("re-authenticated").count();
    assert!(
        reauths >= 2,
        "expected re-authentications within 9 s at a 2 s lifetime, saw {reauths}"
    );
    assert!(
        !w.srv
            .logs()
            .contains("credential revoked or session expired"),
        "a session expired instead of re-authenticating"
    );
}

#[test]
fn list_groups_shows_only_describable_groups() {
    let w = world(&["orders"], "");
    let (_, k, s) = w.app(
        "member",
        &[
            ("TOPIC", "orders", "WRITE", "ALLOW"),
            ("TOPIC", "orders", "READ", "ALLOW"),
            ("GROUP", "g-a", "READ", "ALLOW"),
            ("GROUP", "g-b", "READ", "ALLOW"),
        ],
    );
    for g in ["g-a", "g-b"] {
        let (ok, out) = scenario("confluent-group", &w.bootstrap, &k, &s, "orders", g);
        assert!(ok, "{g}: {out}");
    }
    let (_, vk, vs) = w.app("viewer", &[("GROUP", "g-a", "DESCRIBE", "ALLOW")]);
    let (ok, out) = scenario_with("list-groups", &w, &vk, &vs, "-");
    assert!(ok, "{out}");
    let line = out.lines().find(|l| l.starts_with('{')).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
    assert_eq!(v["groups"], serde_json::json!(["g-a"]), "{out}");
    // The member, with READ on both, sees both.
    let (ok, out) = scenario_with("list-groups", &w, &k, &s, "-");
    assert!(ok, "{out}");
    let line = out.lines().find(|l| l.starts_with('{')).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
    assert_eq!(v["groups"], serde_json::json!(["g-a", "g-b"]), "{out}");
}
