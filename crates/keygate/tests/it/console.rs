//! The web console in a real browser: Debian's chromium driven by npm's
//! playwright-core (tests/console/console.mjs; scripts/test installs both).

use crate::gateway::world;
use serde_json::{json, Value};
use std::process::Command;

pub const PASSWORD: &str = "correct horse battery staple";

fn shots() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../test-artifacts/console").to_owned()
}

/// Give the bootstrap admin the console password [`PASSWORD`] (to sign in as
/// `admin@keygate.local`).
pub fn set_admin_password(admin: &crate::harness::Api) {
    let me = admin.all("/iam/v2/users")[0]["id"]
        .as_str()
        .expect("admin id")
        .to_owned();
    admin.ok(
        admin.post(
            &format!("/iam/v2/users/{me}/password"),
            json!({"password": PASSWORD}),
        ),
        204,
    );
}

/// Run one scenario of console.mjs; returns its JSON line.
pub fn browse(scenario: &str, url: &str, email: &str, extra: &[(&str, &str)]) -> Value {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/console");
    assert!(
        std::path::Path::new(&format!("{dir}/node_modules/playwright-core")).exists()
            && std::path::Path::new("/usr/bin/chromium").exists(),
        "playwright-core or chromium is missing: run scripts/test (it installs both)"
    );
    let out = Command::new("node")
        .arg(format!("{dir}/console.mjs"))
        .arg(scenario)
        .env("URL", url)
        .env("EMAIL", email)
        .env("PASSWORD", PASSWORD)
        .env("SHOTS", shots())
        .envs(extra.iter().copied())
        .output()
        .expect("run node");
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Value = text
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| {
            panic!(
                "no result from {scenario}: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert!(
        out.status.success() && v["ok"] == true,
        "console scenario {scenario} failed: {v:#}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    v
}

#[test]
fn the_seed_workflow_in_a_browser_and_the_key_works_with_kcat() {
    let w = world(&["orders"], "");
    let admin = &w.admin;
    let me = admin.all("/iam/v2/users")[0]["id"]
        .as_str()
        .expect("admin id")
        .to_owned();
    // A password that is too short is refused; a good one is stored as argon2id.
    let (code, body) = admin.post(
        &format!("/iam/v2/users/{me}/password"),
        json!({"password":"short"}),
    );
    assert_eq!(code, 422, "{body}");
    admin.ok(
        admin.post(
            &format!("/iam/v2/users/{me}/password"),
            json!({"password": PASSWORD}),
        ),
        204,
    );

    let v = browse("workflow", &w.srv.url, "admin@keygate.local", &[]);
    let (sa, key, secret) = (
        v["sa"].as_str().expect("sa"),
        v["key"].as_str().expect("key"),
        v["secret"].as_str().expect("secret"),
    );
    assert_eq!(
        v["bootstrap"],
        w.bootstrap.as_str(),
        "the console shows the gateway address"
    );
    // The key made in the browser works with a real client through the gateway.
    admin.ok(
        admin.post(
            &format!("/kafka/v3/clusters/{}/acls", w.lkc),
            json!({"resource_type":"TOPIC","resource_name":"orders","pattern_type":"LITERAL",
                   "principal":format!("User:{sa}"),"operation":"WRITE","permission":"ALLOW"}),
        ),
        201,
    );
    let (ok, out) = w.kcat(
        key,
        secret,
        &["-P", "-t", "orders"],
        Some("from the console\n"),
    );
    assert!(ok, "kcat with the console's key: {out}");
    // Pages answer quickly (measured in the browser, navigation included).
    for (page, ms) in v["timings"].as_object().expect("timings") {
        assert!(ms.as_u64().is_some(), "{page}");
    }
    // The changes made in the browser are audited as the signed-in user.
    let recs = crate::audit::events(admin, "method=CreateAPIKey");
    let rec = recs
        .iter()
        .find(|e| {
            e["data"]["resourceName"]
                .as_str()
                .is_some_and(|r| r.ends_with(key))
        })
        .expect("audit record of the console's key");
    assert_eq!(
        rec["data"]["authenticationInfo"]["principal"],
        format!("User:{me}")
    );
    assert_eq!(
        rec["data"]["authenticationInfo"]["metadata"]["mechanism"],
        "CONSOLE_SESSION"
    );
    // Sign-ins are audited: the wrong password first, then the right one.
    let signins = crate::audit::events(admin, "method=console.SignIn");
    assert!(signins
        .iter()
        .any(|e| e["data"]["result"]["status"] == "UNAUTHENTICATED"
            && e["data"]["authenticationInfo"]["metadata"]["identifier"] == "admin@keygate.local"));
    assert!(signins
        .iter()
        .any(|e| e["data"]["result"]["status"] == "SUCCESS"
            && e["data"]["authenticationInfo"]["principal"] == format!("User:{me}")));
    // No password, hash or session in the audit log or the server's output.
    let all = serde_json::to_string(&crate::audit::events(admin, "")).unwrap_or_default();
    assert!(!all.contains(PASSWORD) && !all.contains("$argon2"));
    assert!(!w.srv.logs().contains(PASSWORD) && !w.srv.logs().contains(secret));
}

#[test]
fn a_read_only_user_sees_no_admin_actions_and_is_refused_by_url() {
    let w = world(&["orders"], "");
    let admin = &w.admin;
    let sa = admin.sa("someone");
    let reader = admin.ok(
        admin.post(
            "/iam/v2/users",
            json!({"email":"reader@example.com","full_name":"Rea Der","password": PASSWORD}),
        ),
        201,
    )["id"]
        .as_str()
        .expect("user id")
        .to_owned();
    let topic = format!(
        "{}/environment={}/cloud-cluster={}/kafka={}/topic=orders",
        admin.org_crn(),
        w.env,
        w.lkc,
        w.lkc
    );
    admin.bind(&format!("User:{reader}"), "DeveloperRead", &topic);
    let v = browse("limited", &w.srv.url, "reader@example.com", &[("SA", &sa)]);
    assert_eq!(v["createForm"], 0, "no create form");
    assert_eq!(v["editLinks"], 0, "no edit buttons");
    assert_eq!(v["auditLink"], 0, "no audit log in the navigation");
    assert_eq!(v["grantForms"], 0, "no grant form");
    assert_eq!(
        v["revokeButtons"], 0,
        "not even for the reader's own binding"
    );
    assert_eq!(v["providerForms"], 0, "no identity provider form");
    assert_eq!(v["auditByUrl"], 403);
    assert_eq!(v["createByUrl"], 403);
    assert_eq!(v["createByUrlText"], true);
    assert_eq!(v["editByUrl"], 403);
    // The refusals are audited as the reader's.
    let denied = crate::audit::wait_for(admin, "granted=false", "console refusal", |e| {
        e["data"]["methodName"] == "POST /console/service-accounts"
    });
    assert_eq!(
        denied["data"]["authenticationInfo"]["principal"],
        format!("User:{reader}")
    );
    assert!(admin
        .all("/iam/v2/service-accounts")
        .iter()
        .all(|a| a["display_name"] != "sneaky"));
}

#[test]
fn forms_without_the_sessions_csrf_token_are_refused() {
    let w = world(&[], "");
    let admin = &w.admin;
    let me = admin.all("/iam/v2/users")[0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    admin.ok(
        admin.post(
            &format!("/iam/v2/users/{me}/password"),
            json!({"password": PASSWORD}),
        ),
        204,
    );
    let v = browse("csrf", &w.srv.url, "admin@keygate.local", &[]);
    assert_eq!(v["noToken"], 403);
    assert_eq!(v["wrongToken"], 403);
    assert_eq!(v["message"], true);
    assert_eq!(v["foreignSignIn"], 403);
    assert_eq!(v["injectedNotice"], 0, "a crafted link's notice is dropped");
    assert!(
        v["ownNotice"]
            .as_str()
            .is_some_and(|n| n.contains("must not be empty")),
        "the console's own notice shows: {v}"
    );
    assert!(admin
        .all("/iam/v2/service-accounts")
        .iter()
        .all(|a| !a["display_name"].as_str().unwrap_or("").starts_with("evil")));
}
