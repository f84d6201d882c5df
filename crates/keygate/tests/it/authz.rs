//! Every call is authorized: roles (reference/roles.md) and key-management rules.

use crate::harness::{Api, Server};
use serde_json::json;

struct World {
    admin: Api,
    org: String,
    env_a: String,
    env_b: String,
    lkc_a: String,
    lkc_b: String,
}

fn world(srv: &Server) -> World {
    let admin = srv.admin();
    let org = admin.org_crn();
    let env_a = admin.env("a");
    let env_b = admin.env("b");
    let lkc_a = admin.kafka(&env_a, "ka");
    let lkc_b = admin.kafka(&env_b, "kb");
    World {
        admin,
        org,
        env_a,
        env_b,
        lkc_a,
        lkc_b,
    }
}

/// A user with a CLOUD key, holding `role` at `crn` (if any).
fn person(srv: &Server, w: &World, email: &str, role: Option<(&str, String)>) -> (String, Api) {
    let id = w.admin.user(email);
    if let Some((role, crn)) = role {
        w.admin.bind(&format!("User:{id}"), role, &crn);
    }
    let (k, s) = w.admin.key(&id, "CLOUD");
    (id, srv.api(&k, &s))
}

#[test]
fn roles_scope_what_callers_may_do() {
    let (srv, _dir) = Server::start(&[]);
    let w = world(&srv);
    let (_, nobody) = person(&srv, &w, "nobody@x.io", None);
    let (_, env_admin) = person(
        &srv,
        &w,
        "envadmin@x.io",
        Some((
            "EnvironmentAdmin",
            format!("{}/environment={}", w.org, w.env_a),
        )),
    );
    let (_, acct_admin) = person(
        &srv,
        &w,
        "accounts@x.io",
        Some(("AccountAdmin", w.org.clone())),
    );
    let (_, cluster_admin) = person(
        &srv,
        &w,
        "cluster@x.io",
        Some((
            "CloudClusterAdmin",
            format!(
                "{}/environment={}/cloud-cluster={}",
                w.org, w.env_a, w.lkc_a
            ),
        )),
    );

    // Anyone in the organization may read; nobody without a role may change anything.
    assert_eq!(nobody.get("/org/v2/environments").0, 200);
    assert_eq!(
        nobody
            .post("/iam/v2/service-accounts", json!({"display_name":"x"}))
            .0,
        403
    );
    assert_eq!(
        nobody
            .post("/org/v2/environments", json!({"display_name":"x"}))
            .0,
        403
    );
    // Accounts are AccountAdmin's business, not EnvironmentAdmin's.
    assert_eq!(
        acct_admin
            .post(
                "/iam/v2/service-accounts",
                json!({"display_name":"made-by-account-admin"})
            )
            .0,
        201
    );
    assert_eq!(
        env_admin
            .post("/iam/v2/service-accounts", json!({"display_name":"nope"}))
            .0,
        403
    );
    assert_eq!(
        acct_admin
            .post("/org/v2/environments", json!({"display_name":"nope"}))
            .0,
        403
    );
    // EnvironmentAdmin manages its environment's clusters only.
    let spec = |env: &str| json!({"spec":{"display_name":"c","environment":{"id":env},"upstream":"127.0.0.1:9092"}});
    assert_eq!(env_admin.post("/cmk/v2/clusters", spec(&w.env_a)).0, 202);
    assert_eq!(env_admin.post("/cmk/v2/clusters", spec(&w.env_b)).0, 403);
    assert_eq!(
        env_admin
            .patch(
                &format!("/org/v2/environments/{}", w.env_a),
                json!({"display_name":"a2"})
            )
            .0,
        200
    );
    assert_eq!(
        env_admin
            .patch(
                &format!("/org/v2/environments/{}", w.env_b),
                json!({"display_name":"b2"})
            )
            .0,
        403
    );
    // ACLs: ALTER/DESCRIBE on the cluster, via CloudClusterAdmin or EnvironmentAdmin.
    let acl = json!({"resource_type":"TOPIC","resource_name":"t","pattern_type":"LITERAL","principal":"User:*","operation":"READ","permission":"ALLOW"});
    assert_eq!(
        cluster_admin
            .post(&format!("/kafka/v3/clusters/{}/acls", w.lkc_a), acl.clone())
            .0,
        201
    );
    assert_eq!(
        cluster_admin
            .post(&format!("/kafka/v3/clusters/{}/acls", w.lkc_b), acl.clone())
            .0,
        403
    );
    assert_eq!(
        env_admin
            .get(&format!("/kafka/v3/clusters/{}/acls", w.lkc_a))
            .0,
        200
    );
    assert_eq!(
        nobody
            .get(&format!("/kafka/v3/clusters/{}/acls", w.lkc_a))
            .0,
        403
    );
    // Role bindings: granted inside the caller's scope only; org-wide roles only by OrganizationAdmin.
    let sa = w.admin.sa("app");
    let topic = format!(
        "{}/environment={}/cloud-cluster={}/kafka={}/topic=orders",
        w.org, w.env_a, w.lkc_a, w.lkc_a
    );
    let topic_b = format!(
        "{}/environment={}/cloud-cluster={}/kafka={}/topic=orders",
        w.org, w.env_b, w.lkc_b, w.lkc_b
    );
    let grant = |api: &Api, role: &str, crn: &str| {
        api.post(
            "/iam/v2/role-bindings",
            json!({"principal":format!("User:{sa}"),"role_name":role,"crn_pattern":crn}),
        )
        .0
    };
    assert_eq!(grant(&cluster_admin, "DeveloperRead", &topic), 201);
    assert_eq!(grant(&cluster_admin, "DeveloperRead", &topic_b), 403);
    assert_eq!(grant(&env_admin, "OrganizationAdmin", &w.org), 403);
    assert_eq!(grant(&acct_admin, "AccountAdmin", &w.org), 403);
    assert_eq!(grant(&w.admin, "AccountAdmin", &w.org), 201);
}

#[test]
fn key_management_rules() {
    let (srv, _dir) = Server::start(&[]);
    let w = world(&srv);
    let sa = w.admin.sa("orders-app");
    let other_sa = w.admin.sa("billing-app");
    let (alice_id, alice) = person(&srv, &w, "alice@x.io", None);
    let (_, owner) = person(
        &srv,
        &w,
        "owner@x.io",
        Some(("ResourceOwner", format!("{}/service-account={sa}", w.org))),
    );
    let (_, rka) = person(
        &srv,
        &w,
        "rka@x.io",
        Some(("ResourceKeyAdmin", w.org.clone())),
    );
    let (_, cca) = person(
        &srv,
        &w,
        "cca@x.io",
        Some((
            "CloudClusterAdmin",
            format!(
                "{}/environment={}/cloud-cluster={}",
                w.org, w.env_a, w.lkc_a
            ),
        )),
    );
    let create = |api: &Api, owner: &str, res: &str| {
        api.post(
            "/iam/v2/api-keys",
            json!({"spec":{"owner":{"id":owner},"resource":{"id":res}}}),
        )
    };

    // A user may create keys for itself, CLOUD included (the owner defaults to the caller).
    let mine = alice.ok(
        alice.post(
            "/iam/v2/api-keys",
            json!({"spec":{"resource":{"id":"cloud"}}}),
        ),
        202,
    );
    assert_eq!(mine["spec"]["owner"]["id"], json!(alice_id));
    assert_eq!(
        create(&alice, &w.lkc_a, &w.lkc_a).0,
        422,
        "an owner id must be an account"
    );
    // …but not for service accounts it has no role on, nor for other users.
    assert_eq!(create(&alice, &sa, &w.lkc_a).0, 403);
    assert_eq!(create(&owner, &alice_id, "CLOUD").0, 403);
    // ResourceOwner on the service account: any of its keys, CLOUD included; not other accounts'.
    assert_eq!(create(&owner, &sa, "CLOUD").0, 202);
    assert_eq!(create(&owner, &sa, &w.lkc_b).0, 202);
    assert_eq!(create(&owner, &other_sa, &w.lkc_a).0, 403);
    // ResourceKeyAdmin: resource keys for any service account, never CLOUD keys.
    assert_eq!(create(&rka, &other_sa, &w.lkc_b).0, 202);
    assert_eq!(create(&rka, &other_sa, "CLOUD").0, 403);
    // CloudClusterAdmin: keys for its cluster only.
    assert_eq!(create(&cca, &other_sa, &w.lkc_a).0, 202);
    assert_eq!(create(&cca, &other_sa, &w.lkc_b).0, 403);
    assert_eq!(create(&cca, &other_sa, "CLOUD").0, 403);
    // Keys one may not manage are invisible: listed nowhere, 404 by id.
    let (k, _) = w.admin.key(&other_sa, &w.lkc_b);
    assert_eq!(alice.get(&format!("/iam/v2/api-keys/{k}")).0, 404);
    assert_eq!(alice.delete(&format!("/iam/v2/api-keys/{k}")).0, 404);
    let seen = alice.all("/iam/v2/api-keys");
    assert!(
        seen.iter()
            .all(|k| k["spec"]["owner"]["id"] == json!(alice_id)),
        "{seen:?}"
    );
    let visible = cca.all(&format!("/iam/v2/api-keys?spec.owner={other_sa}"));
    assert_eq!(
        visible.len(),
        1,
        "the cluster admin sees keys of its cluster only: {visible:?}"
    );
    assert_eq!(visible[0]["spec"]["resource"]["id"], json!(w.lkc_a));
    // A CLOUD key created for a service account acts as that account: it has no roles.
    let (sk, ss) = w.admin.key(&sa, "CLOUD");
    assert_eq!(
        srv.api(&sk, &ss)
            .post("/org/v2/environments", json!({"display_name":"x"}))
            .0,
        403
    );
}
