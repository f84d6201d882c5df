//! No sequence of allowed calls lets a principal act as a more powerful one (issue 13).
//!
//! For random role bindings of an actor and a target (set by the organization admin),
//! the actor runs a random sequence of the calls that hand over or take away another
//! principal: set the target's password, create a CLOUD or a resource key for it,
//! rename it, delete one of its keys, and bind itself or the target a role. Whenever a
//! takeover call succeeds, the target may do nothing the actor may not (capabilities,
//! role grants, Kafka operations on the cluster) — checked against the real service on
//! a real SQLite store.

use keygate_core::crn::CrnPattern;
use keygate_core::model::AccountKind;
use keygate_core::{Operation, Principal, ResourceKind, ResourceType, Role};
use keygate_iam::{Caller, Iam, IamConfig, NewApiKey, NewResource, SecretHasher};
use keygate_store::{SqlStore, Store};
use proptest::prelude::*;
use std::sync::Arc;

const CAPS: [keygate_authz::Capability; 7] = [
    keygate_authz::Capability::ManageAccounts,
    keygate_authz::Capability::ManageEnvironment,
    keygate_authz::Capability::ManageResource,
    keygate_authz::Capability::ManageResourceKeys,
    keygate_authz::Capability::ManageAccountKeys,
    keygate_authz::Capability::GrantRoles,
    keygate_authz::Capability::ViewOperations,
];

struct World {
    iam: Iam,
    admin: Caller,
    env: String,
    lkc: String,
    _dir: tempfile::TempDir,
}

fn caller(id: &str) -> Caller {
    Caller {
        principal: Principal::user(id),
        account_id: id.to_owned(),
        key_id: None,
        mechanism: "TEST",
        client_address: None,
        request: None,
    }
}

async fn world() -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> =
        Arc::new(SqlStore::open_sqlite(&dir.path().join("k.db")).expect("sqlite"));
    let hasher = SecretHasher::new(&[7; keygate_iam::PEPPER_LEN]);
    let (_, _, admin) = Iam::bootstrap(store.as_ref(), &hasher, "o", "root@x", "k")
        .await
        .expect("bootstrap")
        .expect("created");
    let iam = Iam::open(store, hasher, IamConfig::default())
        .await
        .expect("open");
    let admin = caller(&admin.id);
    let env = iam
        .create_environment(&admin, "prod")
        .await
        .expect("env")
        .id;
    let lkc = iam
        .create_resource(
            &admin,
            NewResource {
                kind: ResourceKind::Kafka,
                environment_id: env.clone(),
                display_name: "main".into(),
                upstream: "127.0.0.1:9".into(),
                region: None,
                upstream_security: Default::default(),
                ksql: Default::default(),
            },
        )
        .await
        .expect("cluster")
        .id;
    World {
        iam,
        admin,
        env,
        lkc,
        _dir: dir,
    }
}

/// The places a role may be bound in this world, with a role valid there.
fn bindings(w: &World) -> Vec<(Role, String)> {
    let org = w.iam.organization_crn();
    let env = org.child("environment", &w.env);
    let cluster = env.child("cloud-cluster", &w.lkc);
    let topic = |t: &str| cluster.child("kafka", &w.lkc).child("topic", t).to_string();
    vec![
        (Role::OrganizationAdmin, org.to_string()),
        (Role::AccountAdmin, org.to_string()),
        (Role::ResourceKeyAdmin, org.to_string()),
        (Role::EnvironmentAdmin, env.to_string()),
        (Role::CloudClusterAdmin, cluster.to_string()),
        (Role::Operator, cluster.to_string()),
        (Role::DeveloperRead, topic("orders")),
        (Role::DeveloperWrite, topic("orders")),
        (Role::DeveloperManage, topic("ord*")),
        (Role::ResourceOwner, topic("pay*")),
    ]
}

/// Something `target` may do and `actor` may not, if any.
fn gap(w: &World, actor: &str, target: &str) -> Option<String> {
    let a = w.iam.snapshot().authz();
    let (pa, pt) = (Principal::user(actor), Principal::user(target));
    let org = w.iam.organization_crn();
    let env = org.child("environment", &w.env);
    let places: Vec<CrnPattern> = vec![
        org.clone(),
        env.clone(),
        env.child("cloud-cluster", &w.lkc),
        org.child("service-account", target),
    ];
    for p in &places {
        for cap in CAPS {
            if a.can(&pt, cap, p) && !a.can(&pa, cap, p) {
                return Some(format!("{cap:?} at {p}"));
            }
        }
        for role in Role::ALL {
            if a.can_grant(&pt, role, p) && !a.can_grant(&pa, role, p) {
                return Some(format!("grant {role} at {p}"));
            }
        }
    }
    for name in ["orders", "ord-x", "pay", "other"] {
        for op in Operation::ALL_OPS {
            if a.authorize(&w.lkc, &pt, ResourceType::Topic, name, op)
                .allowed
                && !a
                    .authorize(&w.lkc, &pa, ResourceType::Topic, name, op)
                    .allowed
            {
                return Some(format!("{op} on topic {name}"));
            }
        }
    }
    None
}

#[derive(Debug, Clone)]
enum Step {
    SetPassword,
    CloudKey,
    ResourceKey,
    Rename,
    DeleteTargetKey,
    BindSelf(usize),
    BindTarget(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        Just(Step::SetPassword),
        Just(Step::CloudKey),
        Just(Step::ResourceKey),
        Just(Step::Rename),
        Just(Step::DeleteTargetKey),
        (0..10usize).prop_map(Step::BindSelf),
        (0..10usize).prop_map(Step::BindTarget),
    ]
}

async fn run(
    actor_roles: Vec<usize>,
    target_roles: Vec<usize>,
    target_is_user: bool,
    steps: Vec<Step>,
) {
    let w = world().await;
    let places = bindings(&w);
    let actor = w
        .iam
        .create_user(&w.admin, "actor@x", "Actor", None)
        .await
        .expect("actor")
        .id;
    let target = if target_is_user {
        w.iam
            .create_user(&w.admin, "target@x", "Target", None)
            .await
    } else {
        w.iam.create_service_account(&w.admin, "target", "").await
    }
    .expect("target")
    .id;
    for (who, roles) in [(&actor, &actor_roles), (&target, &target_roles)] {
        for r in roles {
            let (role, at) = &places[*r];
            let _ = w
                .iam
                .create_role_binding(&w.admin, &format!("User:{who}"), role.as_str(), at)
                .await;
        }
    }
    let (target_key, _) = w
        .iam
        .create_api_key(
            &w.admin,
            NewApiKey {
                owner_id: Some(target.clone()),
                resource_id: w.lkc.clone(),
                ..Default::default()
            },
        )
        .await
        .expect("target's key");
    let c = caller(&actor);
    let kind = if target_is_user {
        AccountKind::User
    } else {
        AccountKind::ServiceAccount
    };
    for s in steps {
        let key_for = |resource: &str| NewApiKey {
            owner_id: Some(target.clone()),
            resource_id: resource.to_owned(),
            ..Default::default()
        };
        // A takeover hands the actor the target's permissions (for a resource key,
        // on that cluster only; the gap check covers the cluster and everything else).
        let took_over = match &s {
            Step::SetPassword if target_is_user => w
                .iam
                .set_password(&c, &target, "a-long-enough-password", None)
                .await
                .is_ok(),
            Step::SetPassword => false,
            Step::CloudKey => w.iam.create_api_key(&c, key_for("CLOUD")).await.is_ok(),
            Step::ResourceKey => w.iam.create_api_key(&c, key_for(&w.lkc)).await.is_ok(),
            Step::Rename => {
                let _ = w
                    .iam
                    .update_account(&c, kind, &target, Some("renamed"), None)
                    .await;
                false
            }
            Step::DeleteTargetKey => {
                let _ = w.iam.delete_api_key(&c, target_key.id.as_str()).await;
                false
            }
            Step::BindSelf(r) | Step::BindTarget(r) => {
                let who = if matches!(s, Step::BindSelf(_)) {
                    &actor
                } else {
                    &target
                };
                let (role, at) = &places[*r];
                let _ = w
                    .iam
                    .create_role_binding(&c, &format!("User:{who}"), role.as_str(), at)
                    .await;
                false
            }
        };
        if took_over {
            assert_eq!(gap(&w, &actor, &target), None, "after {s:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn no_sequence_of_allowed_calls_escalates(
        actor_roles in prop::collection::vec(1..10usize, 0..3),
        target_roles in prop::collection::vec(0..10usize, 0..3),
        target_is_user in any::<bool>(),
        steps in prop::collection::vec(step(), 1..8),
    ) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(run(actor_roles, target_roles, target_is_user, steps));
    }
}
