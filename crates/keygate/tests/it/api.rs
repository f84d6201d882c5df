//! The REST API: shapes, CRUD of every kind, and bad input that changes nothing.

use crate::harness::{detail, Server};
use serde_json::{json, Value};

/// A digest of everything visible to the admin, to prove a bad request changed nothing.
fn state(api: &crate::harness::Api) -> Vec<Value> {
    let org = api.org_crn();
    let mut v = Vec::new();
    for p in [
        "/org/v2/environments",
        "/cmk/v2/clusters",
        "/iam/v2/service-accounts",
        "/iam/v2/users",
        "/iam/v2/api-keys",
    ] {
        v.extend(api.all(p));
    }
    v.extend(api.all(&format!("/iam/v2/role-bindings?crn_pattern={org}")));
    v
}

/// (method, path, body, expected status, expected pointer or parameter, text in detail)
type Case<'a> = (
    &'a str,
    String,
    Option<String>,
    u16,
    Option<&'a str>,
    &'a str,
);

#[test]
fn bad_input_gets_a_specific_error_and_changes_nothing() {
    let (srv, _dir) = Server::start(&["--max-keys-per-owner", "3"]);
    let api = srv.admin();
    let env = api.env("prod");
    let lkc = api.kafka(&env, "main");
    let sa = api.sa("orders-app");
    let org = api.org_crn();
    let before = state(&api);
    let long = "x".repeat(65);
    let past = "2001-01-01T00:00:00Z";
    let big = format!("{{\"display_name\":\"{}\"}}", "a".repeat(1024 * 1024 + 10));
    // (method, path, body, expected status, expected pointer or parameter, text in detail)
    let cases: Vec<Case<'_>> = vec![
        ("POST", "/iam/v2/service-accounts".into(), Some("{\"display_name\": ".into()), 400, None, "not valid JSON"),
        ("POST", "/iam/v2/service-accounts".into(), Some(r#"{"description":"no name"}"#.into()), 422, Some("/display_name"), "required"),
        ("POST", "/iam/v2/service-accounts".into(), Some(format!(r#"{{"display_name":"{long}"}}"#)), 422, Some("/display_name"), "at most 64"),
        ("POST", "/iam/v2/service-accounts".into(), Some(r#"{"display_name":"  "}"#.into()), 422, Some("/display_name"), "empty"),
        ("POST", "/iam/v2/service-accounts".into(), Some(r#"{"display_name":"orders-app"}"#.into()), 409, None, "Service name is already in use"),
        ("POST", "/iam/v2/service-accounts".into(), Some(big), 413, None, "1 MiB"),
        ("POST", "/iam/v2/api-keys".into(), Some(json!({"spec":{"owner":{"id":"sa-nosuch1"},"resource":{"id":lkc}}}).to_string()), 422, Some("/spec/owner/id"), "does not exist"),
        ("POST", "/iam/v2/api-keys".into(), Some(json!({"spec":{"owner":{"id":sa},"resource":{"id":"lkc-nosuch1"}}}).to_string()), 422, Some("/spec/resource/id"), "does not exist"),
        ("POST", "/iam/v2/api-keys".into(), Some(json!({"spec":{"owner":{"id":sa},"resource":{"id":"banana"}}}).to_string()), 422, Some("/spec/resource/id"), "must be CLOUD"),
        ("POST", "/iam/v2/api-keys".into(), Some(json!({"spec":{"owner":{"id":sa},"resource":{"id":lkc},"expires_at":past}}).to_string()), 422, Some("/spec/expires_at"), "future"),
        ("POST", "/iam/v2/api-keys".into(), Some(json!({"spec":{"owner":{"id":sa},"resource":{"id":lkc},"expires_at":"tomorrow"}}).to_string()), 422, Some("/spec/expires_at"), ""),
        ("POST", "/iam/v2/role-bindings".into(), Some(json!({"principal":format!("User:{sa}"),"role_name":"DeveloperRead","crn_pattern":"crn:/broken"}).to_string()), 422, Some("/crn_pattern"), "crn://"),
        ("POST", "/iam/v2/role-bindings".into(), Some(json!({"principal":format!("User:{sa}"),"role_name":"DeveloperRead","crn_pattern":format!("{org}/planet=mars")}).to_string()), 422, Some("/crn_pattern"), "unknown CRN segment"),
        ("POST", "/iam/v2/role-bindings".into(), Some(json!({"principal":format!("User:{sa}"),"role_name":"Overlord","crn_pattern":org}).to_string()), 422, Some("/role_name"), "unknown role"),
        ("POST", "/iam/v2/role-bindings".into(), Some(json!({"principal":format!("User:{sa}"),"role_name":"OrganizationAdmin","crn_pattern":format!("{org}/environment={env}")}).to_string()), 422, Some("/crn_pattern"), "can be bound at"),
        ("POST", "/iam/v2/role-bindings".into(), Some(json!({"principal":format!("User:{sa}"),"role_name":"DeveloperRead","crn_pattern":format!("{org}/environment={env}")}).to_string()), 422, Some("/crn_pattern"), "can be bound at"),
        ("POST", "/iam/v2/role-bindings".into(), Some(json!({"principal":"sa-123","role_name":"DeveloperRead","crn_pattern":org}).to_string()), 422, Some("/principal"), "User:"),
        ("POST", "/iam/v2/role-bindings".into(), Some(json!({"principal":format!("User:{sa}"),"role_name":"EnvironmentAdmin","crn_pattern":format!("{org}/environment=env-nosuch1")}).to_string()), 422, Some("/crn_pattern"), "does not exist"),
        ("POST", format!("/kafka/v3/clusters/{lkc}/acls"), Some(json!({"resource_type":"GROUP","resource_name":"g","pattern_type":"LITERAL","principal":format!("User:{sa}"),"operation":"WRITE","permission":"ALLOW"}).to_string()), 400, None, "not valid for resource type GROUP"),
        ("POST", format!("/kafka/v3/clusters/{lkc}/acls"), Some(json!({"resource_type":"TOPIC","resource_name":"t","pattern_type":"FUZZY","principal":format!("User:{sa}"),"operation":"READ","permission":"ALLOW"}).to_string()), 400, Some("/pattern_type"), "LITERAL or PREFIXED"),
        ("POST", format!("/kafka/v3/clusters/{lkc}/acls"), Some(json!({"resource_type":"TOPIC","resource_name":"t","pattern_type":"LITERAL","principal":format!("User:{sa}"),"host":"10.0.0.1","operation":"READ","permission":"ALLOW"}).to_string()), 400, Some("/host"), "per-host"),
        ("POST", "/kafka/v3/clusters/lkc-nosuch1/acls".into(), Some(json!({"resource_type":"TOPIC","resource_name":"t","pattern_type":"LITERAL","principal":format!("User:{sa}"),"operation":"READ","permission":"ALLOW"}).to_string()), 404, None, "not found"),
        ("POST", "/cmk/v2/clusters".into(), Some(json!({"spec":{"display_name":"x","environment":{"id":env},"upstream":"no-port"}}).to_string()), 422, Some("/spec/upstream"), "host:port"),
        ("POST", "/srcm/v3/clusters".into(), Some(json!({"spec":{"display_name":"x","environment":{"id":env},"upstream":"ftp://x"}}).to_string()), 422, Some("/spec/upstream"), "http"),
        ("GET", "/iam/v2/api-keys?page_size=101".into(), None, 400, Some("page_size"), "at most 100"),
        ("GET", "/iam/v2/role-bindings".into(), None, 400, Some("crn_pattern"), "required"),
        ("GET", "/iam/v2/service-accounts/sa-nosuch1".into(), None, 404, None, "not found"),
        ("DELETE", "/org/v2/environments/env-nosuch1".into(), None, 404, None, "not found"),
        ("DELETE", format!("/org/v2/environments/{env}"), None, 400, None, "still contains"),
    ];
    for (method, path, body, want, pointer, text) in cases {
        let ct = body.as_ref().map(|_| "application/json");
        let (code, b) = api.raw(method, &path, body.as_deref(), ct);
        assert_eq!(code, want, "{method} {path}: {b}");
        if path.starts_with("/kafka/v3/") {
            // Kafka REST's own error shape there, the pointer leading the message.
            assert_eq!(b["error_code"], json!(want), "{b}");
            let message = b["message"].as_str().unwrap_or_default();
            assert!(message.contains(text), "{method} {path}: {b}");
            if let Some(p) = pointer {
                assert!(message.starts_with(&format!("{p}: ")), "{b}");
            }
            continue;
        }
        assert_eq!(b["errors"][0]["status"], json!(want.to_string()), "{b}");
        if let Some(p) = pointer {
            let src = &b["errors"][0]["source"];
            let got = src["pointer"].as_str().or(src["parameter"].as_str());
            assert_eq!(got, Some(p), "{method} {path}: {b}");
        }
        assert!(
            detail(&b).contains(text),
            "{method} {path}: `{}` lacks `{text}`",
            detail(&b)
        );
    }
    // A content type other than JSON.
    let (code, _) = api.raw(
        "POST",
        "/iam/v2/service-accounts",
        Some("display_name=x"),
        Some("application/x-www-form-urlencoded"),
    );
    assert_eq!(code, 400);
    assert_eq!(state(&api), before, "a rejected request changed state");

    // Quota: 3 keys per owner, the 4th is refused with 402.
    for _ in 0..3 {
        api.key(&sa, &lkc);
    }
    let (code, b) = api.post(
        "/iam/v2/api-keys",
        json!({"spec":{"owner":{"id":sa},"resource":{"id":lkc}}}),
    );
    assert_eq!(code, 402, "{b}");
    assert_eq!(b["errors"][0]["code"], "quota_exceeded");
    assert!(detail(&b).contains("limited to 3"));
}

#[test]
fn authentication_failures_are_indistinguishable() {
    let (srv, _dir) = Server::start(&[]);
    let admin = srv.admin();
    let env = admin.env("dev");
    let lkc = admin.kafka(&env, "c1");
    let sa = admin.sa("app");
    let (cloud_key, cloud_secret) = admin.key(&sa, "CLOUD");
    let (res_key, res_secret) = admin.key(&sa, &lkc);
    let (dis_key, dis_secret) = admin.key(&sa, "CLOUD");
    admin.ok(
        admin.post(&format!("/iam/v2/api-keys/{dis_key}/disable"), json!({})),
        200,
    );
    let soon = (chrono::Utc::now() + chrono::Duration::milliseconds(1500)).to_rfc3339();
    let b = admin.ok(
        admin.post(
            "/iam/v2/api-keys",
            json!({"spec":{"owner":{"id":sa},"resource":{"id":"CLOUD"},"expires_at":soon}}),
        ),
        202,
    );
    let (exp_key, exp_secret) = (
        b["id"].as_str().unwrap_or_default().to_owned(),
        b["spec"]["secret"].as_str().unwrap_or_default().to_owned(),
    );
    // The expiring key works now…
    assert_eq!(
        srv.api(&exp_key, &exp_secret).get("/org/v2/environments").0,
        200
    );
    assert_eq!(
        srv.api(&cloud_key, &cloud_secret)
            .get("/org/v2/environments")
            .0,
        200
    );
    std::thread::sleep(std::time::Duration::from_millis(1700));
    let attempts = [
        ("wrong secret", srv.api(&cloud_key, &res_secret)),
        ("unknown key", srv.api("ZZZZZZZZZZZZZZZZ", &cloud_secret)),
        ("malformed key", srv.api("nope", "nope")),
        ("resource key at REST", srv.api(&res_key, &res_secret)),
        ("disabled key", srv.api(&dis_key, &dis_secret)),
        ("expired key", srv.api(&exp_key, &exp_secret)),
    ];
    let mut bodies = Vec::new();
    for (what, api) in attempts {
        let start = std::time::Instant::now();
        let (code, body) = api.get("/org/v2/environments");
        let took = start.elapsed();
        assert_eq!(code, 401, "{what}: {body}");
        assert!(
            took >= std::time::Duration::from_millis(90),
            "{what}: answered in {took:?}, before the uniform delay"
        );
        bodies.push(body.to_string());
    }
    // No header at all.
    let (code, body) = crate::harness::Api {
        url: srv.url.clone(),
        key: String::new(),
        secret: String::new(),
    }
    .raw("GET", "/iam/v2/users", None, None);
    assert_eq!(code, 401);
    bodies.push(body.to_string());
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "401 bodies differ: {bodies:#?}"
    );
    // Re-enabling brings the disabled key back.
    admin.ok(
        admin.post(&format!("/iam/v2/api-keys/{dis_key}/enable"), json!({})),
        200,
    );
    assert_eq!(
        srv.api(&dis_key, &dis_secret).get("/org/v2/environments").0,
        200
    );
    // Status shows the phase.
    assert_eq!(
        admin.get(&format!("/iam/v2/api-keys/{exp_key}")).1["status"]["phase"],
        "EXPIRED"
    );
}

#[test]
fn every_resource_kind_round_trips_with_the_reference_shapes() {
    let (srv, _dir) = Server::start(&[]);
    let api = srv.admin();
    // Environments.
    let env = api.env("staging");
    let (code, e) = api.get(&format!("/org/v2/environments/{env}"));
    assert_eq!(code, 200);
    assert_eq!(
        (e["api_version"].as_str(), e["kind"].as_str()),
        (Some("org/v2"), Some("Environment"))
    );
    assert!(e["metadata"]["resource_name"]
        .as_str()
        .is_some_and(|c| c.ends_with(&format!("/environment={env}"))));
    let e = api.ok(
        api.patch(
            &format!("/org/v2/environments/{env}"),
            json!({"display_name":"stage"}),
        ),
        200,
    );
    assert_eq!(e["display_name"], "stage");
    // Every resource kind (a ksqlDB cluster runs on a Kafka cluster, as an account).
    let home = api.kafka(&env, "home");
    let runner = api.ok(
        api.post(
            "/iam/v2/service-accounts",
            json!({"display_name":"ksql-runner"}),
        ),
        201,
    );
    let runner = runner["id"].as_str().expect("sa").to_owned();
    for (base, spec) in [
        (
            "/cmk/v2/clusters",
            json!({"display_name":"k","environment":{"id":env},"upstream":"127.0.0.1:9092,127.0.0.1:9093"}),
        ),
        (
            "/srcm/v3/clusters",
            json!({"display_name":"sr","environment":{"id":env},"upstream":"http://127.0.0.1:8081"}),
        ),
        (
            "/ksqldbcm/v2/clusters",
            json!({"display_name":"ksql","environment":{"id":env},"upstream":"http://127.0.0.1:8088",
                "kafka_cluster":{"id":home},"credential_identity":{"id":runner},"csu":4}),
        ),
        (
            "/fcpm/v2/regions",
            json!({"display_name":"flink","environment":{"id":env},"upstream":"http://127.0.0.1:8083","region":"aws.us-east-1"}),
        ),
        (
            "/tableflow/v1/endpoints",
            json!({"display_name":"tf","environment":{"id":env},"upstream":"https://tableflow.internal"}),
        ),
    ] {
        // The hosted document's codes: 202 where it provisions (Kafka, ksqlDB).
        let created = if base.starts_with("/cmk") || base.starts_with("/ksql") {
            202
        } else {
            201
        };
        let r = api.ok(api.post(base, json!({ "spec": spec })), created);
        let id = r["id"].as_str().expect("id").to_owned();
        assert_eq!(r["spec"]["environment"]["id"], json!(env), "{r}");
        if base.starts_with("/ksql") {
            assert_eq!(r["spec"]["kafka_cluster"]["id"], json!(home), "{r}");
            assert_eq!(r["spec"]["credential_identity"]["id"], json!(runner), "{r}");
            assert_eq!(r["spec"]["credential_identity"]["kind"], "ServiceAccount");
            assert_eq!(r["spec"]["csu"], 4);
            assert_eq!(r["status"]["is_paused"], false);
        }
        assert_eq!(r["status"]["phase"], "PROVISIONED");
        let one = format!("{base}/{id}?environment={env}");
        assert_eq!(api.get(&one).0, 200, "{one}");
        let r = api.ok(
            api.patch(&one, json!({"spec":{"display_name":"renamed"}})),
            200,
        );
        assert_eq!(r["spec"]["display_name"], "renamed");
        let list = api.all(&format!("{base}?environment={env}"));
        assert_eq!(
            list.iter().filter(|o| o["id"] == id.as_str()).count(),
            1,
            "{base}"
        );
        // A key for it (Flink and Tableflow need the environment).
        let key_res = if base.starts_with("/tableflow") {
            "TABLEFLOW".to_owned()
        } else {
            id.clone()
        };
        let k = api.ok(
            api.post(
                "/iam/v2/api-keys",
                json!({"spec":{"resource":{"id":key_res,"environment":env}}}),
            ),
            202,
        );
        assert_eq!(k["spec"]["resource"]["environment"], json!(env), "{k}");
        assert_eq!(api.delete(&one).0, 204);
        assert_eq!(api.get(&one).0, 404);
        // Its keys went with it.
        assert_eq!(
            api.get(&format!(
                "/iam/v2/api-keys/{}",
                k["id"].as_str().unwrap_or_default()
            ))
            .0,
            404
        );
    }
    assert_eq!(
        api.delete(&format!("/iam/v2/service-accounts/{runner}")).0,
        204
    );
    // Users and service accounts.
    let u = api.ok(
        api.post(
            "/iam/v2/users",
            json!({"email":"Dev@Example.com","full_name":"Dev One"}),
        ),
        201,
    );
    assert_eq!(
        (
            u["kind"].as_str(),
            u["email"].as_str(),
            u["auth_type"].as_str()
        ),
        (
            Some("User"),
            Some("dev@example.com"),
            Some("AUTH_TYPE_LOCAL")
        )
    );
    assert_eq!(
        api.post(
            "/iam/v2/users",
            json!({"email":"dev@example.com","full_name":"Again"})
        )
        .0,
        409
    );
    let uid = u["id"].as_str().expect("id");
    assert_eq!(
        api.patch(
            &format!("/iam/v2/users/{uid}"),
            json!({"full_name":"Dev Two"})
        )
        .1["full_name"],
        "Dev Two"
    );
    let sa = api.sa("billing");
    let s = api.ok(
        api.patch(
            &format!("/iam/v2/service-accounts/{sa}"),
            json!({"description":"pays"}),
        ),
        200,
    );
    assert_eq!(
        (s["display_name"].as_str(), s["description"].as_str()),
        (Some("billing"), Some("pays"))
    );
    // Keys: the secret is only in the create response.
    let lkc = api.kafka(&env, "main");
    let k = api.ok(api.post("/iam/v2/api-keys", json!({"spec":{"display_name":"ci","description":"CI","owner":{"id":sa},"resource":{"id":lkc,"environment":env}}})), 202);
    let kid = k["id"].as_str().expect("id").to_owned();
    assert_eq!(kid.len(), 16);
    assert!(k["spec"]["secret"]
        .as_str()
        .is_some_and(|s| s.starts_with("kgs_") && s.len() == 53));
    assert_eq!(k["spec"]["owner"]["kind"], "ServiceAccount");
    assert_eq!(k["spec"]["resource"]["kind"], "Cluster");
    assert_eq!(k["status"]["phase"], "ACTIVE");
    let got = api.get(&format!("/iam/v2/api-keys/{kid}")).1;
    assert!(
        got["spec"].get("secret").is_none(),
        "secret shown again: {got}"
    );
    assert!(!got
        .to_string()
        .contains(k["spec"]["secret"].as_str().unwrap_or("-")));
    let listed = api.all(&format!("/iam/v2/api-keys?spec.owner={sa}"));
    assert_eq!(listed.len(), 1);
    assert!(listed.iter().all(|k| k["spec"].get("secret").is_none()));
    assert_eq!(
        api.all(&format!("/iam/v2/api-keys?spec.resource={lkc}"))
            .len(),
        1
    );
    assert_eq!(
        api.all("/iam/v2/api-keys?spec.resource=CLOUD").len(),
        1,
        "only the bootstrap key is CLOUD"
    );
    let k = api.ok(
        api.patch(
            &format!("/iam/v2/api-keys/{kid}"),
            json!({"spec":{"description":"changed"}}),
        ),
        200,
    );
    assert_eq!(k["spec"]["description"], "changed");
    // PATCH may not change the owner.
    assert_eq!(
        api.patch(
            &format!("/iam/v2/api-keys/{kid}"),
            json!({"spec":{"owner":{"id":"u-x"}}})
        )
        .0,
        422
    );
    // Role bindings.
    let org = api.org_crn();
    let crn = format!("{org}/environment={env}/cloud-cluster={lkc}/kafka={lkc}/topic=orders*");
    let rb = api.bind(&format!("User:{sa}"), "DeveloperWrite", &crn);
    assert!(rb.starts_with("rb-"));
    assert_eq!(
        api.post(
            "/iam/v2/role-bindings",
            json!({"principal":format!("User:{sa}"),"role_name":"DeveloperWrite","crn_pattern":crn})
        )
        .0,
        409
    );
    let found = api.all(&format!(
        "/iam/v2/role-bindings?crn_pattern={org}/environment={env}&principal=User:{sa}"
    ));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["crn_pattern"], json!(crn));
    // ACLs.
    let acl = |op: &str, rt: &str, name: &str| json!({"resource_type":rt,"resource_name":name,"pattern_type":"LITERAL","principal":format!("User:{sa}"),"host":"*","operation":op,"permission":"ALLOW"});
    assert_eq!(
        api.post(
            &format!("/kafka/v3/clusters/{lkc}/acls"),
            acl("READ", "TOPIC", "orders")
        )
        .0,
        201
    );
    assert_eq!(
        api.post(
            &format!("/kafka/v3/clusters/{lkc}/acls:batch"),
            json!({"data":[acl("READ","GROUP","g1"), acl("DESCRIBE","TOPIC","orders")]})
        )
        .0,
        201
    );
    // Creating an existing ACL again is accepted and does not duplicate it (Kafka).
    assert_eq!(
        api.post(
            &format!("/kafka/v3/clusters/{lkc}/acls"),
            acl("READ", "TOPIC", "orders")
        )
        .0,
        201
    );
    let all = api.get(&format!("/kafka/v3/clusters/{lkc}/acls")).1;
    assert_eq!(all["data"].as_array().map(Vec::len), Some(3), "{all}");
    let topics = api
        .get(&format!(
            "/kafka/v3/clusters/{lkc}/acls?resource_type=TOPIC"
        ))
        .1;
    assert_eq!(topics["data"].as_array().map(Vec::len), Some(2));
    let deleted = api
        .delete(&format!(
            "/kafka/v3/clusters/{lkc}/acls?resource_type=TOPIC&operation=READ&pattern_type=ANY&permission=ANY"
        ))
        .1;
    assert_eq!(deleted["data"][0]["operation"], "READ", "{deleted}");
    assert_eq!(
        api.get(&format!("/kafka/v3/clusters/{lkc}/acls")).1["data"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    // Deleting the service account takes its keys, bindings and ACLs with it.
    assert_eq!(api.delete(&format!("/iam/v2/service-accounts/{sa}")).0, 204);
    assert_eq!(api.get(&format!("/iam/v2/api-keys/{kid}")).0, 404);
    assert!(api
        .all(&format!(
            "/iam/v2/role-bindings?crn_pattern={org}&principal=User:{sa}"
        ))
        .is_empty());
    assert_eq!(
        api.get(&format!("/kafka/v3/clusters/{lkc}/acls")).1["data"]
            .as_array()
            .map(Vec::len),
        Some(0)
    );
    // Paging.
    for i in 0..12 {
        api.sa(&format!("page-{i:02}"));
    }
    let (_, p1) = api.get("/iam/v2/service-accounts?page_size=5");
    assert_eq!(p1["data"].as_array().map(Vec::len), Some(5));
    assert_eq!(p1["metadata"]["total_size"], 12);
    assert_eq!(api.all("/iam/v2/service-accounts").len(), 12);
    assert_eq!(
        api.get("/iam/v2/service-accounts?page_token=garbage").0,
        400
    );
    // `next` keeps the list's filters, `page_token` first.
    let (_, p1) = api.get("/iam/v2/service-accounts?page_size=5&display_name=page-03");
    assert_eq!(p1["data"].as_array().map(Vec::len), Some(1), "{p1}");
    let (_, p1) = api.get("/iam/v2/service-accounts?page_size=5&display_name=&colour=red");
    assert_eq!(
        p1["data"].as_array().map(Vec::len),
        Some(5),
        "empty filters are none: {p1}"
    );
    let next = p1["metadata"]["next"].as_str().unwrap_or_default();
    assert!(
        next.contains("/iam/v2/service-accounts?page_token="),
        "{p1}"
    );
    assert!(next.ends_with("&colour=red&page_size=5"), "{p1}");
}

#[test]
fn last_organization_admin_cannot_be_removed() {
    let (srv, _dir) = Server::start(&[]);
    let api = srv.admin();
    let org = api.org_crn();
    let me = api.get(&format!("/iam/v2/api-keys/{}", api.key)).1["spec"]["owner"]["id"]
        .as_str()
        .expect("owner")
        .to_owned();
    let (code, b) = api.delete(&format!("/iam/v2/users/{me}"));
    assert_eq!(code, 400, "{b}");
    assert!(detail(&b).contains("OrganizationAdmin"));
    let mine = api.all(&format!(
        "/iam/v2/role-bindings?crn_pattern={org}&principal=User:{me}"
    ));
    let rb = mine[0]["id"].as_str().expect("rb").to_owned();
    assert_eq!(api.delete(&format!("/iam/v2/role-bindings/{rb}")).0, 400);
    // With a second admin, the first can go.
    let other = api.user("second@example.com");
    api.bind(&format!("User:{other}"), "OrganizationAdmin", &org);
    let (k2, s2) = api.key(&other, "CLOUD");
    let second = srv.api(&k2, &s2);
    assert_eq!(second.delete(&format!("/iam/v2/users/{me}")).0, 204);
    // The deleted user's key stopped working at once.
    assert_eq!(api.get("/org/v2/environments").0, 401);
}

#[test]
fn openapi_docs_and_health() {
    let (srv, _dir) = Server::start(&[]);
    let api = srv.admin();
    let (code, doc) = api.get("/openapi.json");
    assert_eq!(code, 200);
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    for p in [
        "/iam/v2/api-keys",
        "/iam/v2/role-bindings",
        "/kafka/v3/clusters/{cluster_id}/acls",
        "/srcm/v3/clusters/{id}",
        "/fcpm/v2/regions",
    ] {
        assert!(doc["paths"].get(p).is_some(), "OpenAPI lacks {p}");
    }
    assert!(doc["components"]["schemas"].get("ApiKeyObj").is_some());
    let (code, html) = api.get("/docs");
    assert_eq!(code, 200);
    assert!(html.as_str().is_some_and(|h| h.contains("/openapi.json")));
    assert_eq!(api.get("/healthz").0, 200);
    assert_eq!(api.get("/readyz").0, 200);
    assert_eq!(api.get("/no/such/thing").0, 404);
}

#[test]
fn last_used_at_is_recorded_in_batches() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("keygate.toml"),
        "key_usage_flush_ms = 100\n",
    )
    .expect("write");
    let srv = Server::start_in(dir.path(), &[]);
    let api = srv.admin();
    let sa = api.sa("used");
    let (k, s) = api.key(&sa, "CLOUD");
    assert!(api.get(&format!("/iam/v2/api-keys/{k}")).1["status"]["last_used_at"].is_null());
    let before = chrono::Utc::now();
    for _ in 0..20 {
        assert_eq!(srv.api(&k, &s).get("/org/v2/environments").0, 200);
    }
    std::thread::sleep(std::time::Duration::from_millis(400));
    let got = api.get(&format!("/iam/v2/api-keys/{k}")).1;
    let used = got["status"]["last_used_at"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
    assert!(
        used.is_some_and(|t| t >= before),
        "last_used_at not recorded: {got}"
    );
    // A failed authentication is not a use.
    let (k2, _) = api.key(&sa, "CLOUD");
    let _ = srv.api(&k2, "kgs_wrong").get("/org/v2/environments");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(api.get(&format!("/iam/v2/api-keys/{k2}")).1["status"]["last_used_at"].is_null());
}
