//! The compiled authorizer against a plain, obviously-correct reading of Kafka's rules
//! (reference/kafka-authz.md) on random ACL sets.

use keygate_authz::{Authorizer, ClusterIndex};
use keygate_core::acl::CLUSTER_RESOURCE_NAME;
use keygate_core::crn::CrnPattern;
use keygate_core::{AclBinding, Operation, PatternType, Permission, Principal, ResourceType};
use proptest::prelude::*;

/// Kafka's StandardAuthorizer, literally: filter the matching ACLs, DENY wins, then any
/// ALLOW whose operation implies the requested one.
fn reference(
    acls: &[AclBinding],
    principal: &Principal,
    rt: ResourceType,
    name: &str,
    op: Operation,
) -> bool {
    let matching: Vec<&AclBinding> = acls
        .iter()
        .filter(|a| a.resource_type == rt)
        .filter(|a| &a.principal == principal || a.principal == Principal::AnyUser)
        .filter(|a| match a.pattern_type {
            PatternType::Literal => a.resource_name == name || a.resource_name == "*",
            PatternType::Prefixed => name.starts_with(&a.resource_name),
        })
        .collect();
    let denied = matching.iter().any(|a| {
        a.permission == Permission::Deny && (a.operation == op || a.operation == Operation::All)
    });
    if denied {
        return false;
    }
    matching.iter().any(|a| {
        a.permission == Permission::Allow
            && (a.operation == Operation::All
                || a.operation == op
                || (op == Operation::Describe
                    && matches!(
                        a.operation,
                        Operation::Read | Operation::Write | Operation::Delete | Operation::Alter
                    ))
                || (op == Operation::DescribeConfigs && a.operation == Operation::AlterConfigs))
    })
}

fn principal() -> impl Strategy<Value = Principal> {
    prop_oneof![
        Just(Principal::user("sa-a")),
        Just(Principal::user("sa-b")),
        Just(Principal::AnyUser),
    ]
}

fn name() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "ab", "abc", "abd", "b", "ba", "x-y", "*"])
        .prop_map(str::to_owned)
}

fn acl() -> impl Strategy<Value = AclBinding> {
    (
        principal(),
        prop::sample::select(ResourceType::ALL.to_vec()),
        name(),
        prop::sample::select(vec![PatternType::Literal, PatternType::Prefixed]),
        any::<prop::sample::Index>(),
        prop::sample::select(vec![Permission::Allow, Permission::Deny]),
    )
        .prop_map(|(principal, rt, name, pt, op_ix, permission)| {
            let ops = rt.valid_operations();
            let (name, pt) = if rt == ResourceType::Cluster {
                (CLUSTER_RESOURCE_NAME.to_owned(), PatternType::Literal)
            } else if pt == PatternType::Prefixed && name == "*" {
                ("a".to_owned(), pt)
            } else {
                (name, pt)
            };
            AclBinding {
                principal,
                resource_type: rt,
                resource_name: name,
                pattern_type: pt,
                operation: ops[op_ix.index(ops.len())],
                permission,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn compiled_matches_reference(
        acls in prop::collection::vec(acl(), 0..40),
        queries in prop::collection::vec((principal(), prop::sample::select(ResourceType::ALL.to_vec()), name(), any::<prop::sample::Index>()), 1..30),
    ) {
        for a in &acls {
            prop_assert!(a.validate().is_ok(), "{a:?}");
        }
        let org = CrnPattern::organization("keygate", "org-test");
        let index = ClusterIndex::compile("lkc-1", "env-1", &acls, []);
        let authz = Authorizer::empty(org).with_cluster(index);
        for (p, rt, name, op_ix) in queries {
            // Kafka never asks for ALL; names queried are concrete.
            let ops: Vec<Operation> = rt.valid_operations().iter().copied().filter(|o| *o != Operation::All).collect();
            let op = ops[op_ix.index(ops.len())];
            let name = if rt == ResourceType::Cluster { CLUSTER_RESOURCE_NAME.to_owned() } else if name == "*" { "zz".to_owned() } else { name };
            let want = reference(&acls, &p, rt, &name, op);
            let got = authz.authorize("lkc-1", &p, rt, &name, op);
            prop_assert_eq!(got.allowed, want, "{} {} {} {}: {:?}", p, rt, name, op, got.reason);
            prop_assert!(!authz.authorize("lkc-other", &p, rt, &name, op).allowed);
        }
    }
}

#[test]
fn roles_grant_and_deny_acls_still_win() {
    use keygate_core::Role;
    let org = CrnPattern::organization("keygate", "org-test");
    let env = org.child("environment", "env-1");
    let cluster = env.child("cloud-cluster", "lkc-1");
    let topic_prefix = cluster.child("kafka", "lkc-1").child("topic", "orders*");
    let app = Principal::user("sa-app");
    let admin = Principal::user("u-admin");
    let ops_user = Principal::user("u-ops");
    let bindings = [
        (app.clone(), Role::DeveloperWrite, topic_prefix.clone()),
        (admin.clone(), Role::OrganizationAdmin, org.clone()),
        (ops_user.clone(), Role::EnvironmentAdmin, env.clone()),
    ];
    let deny = AclBinding {
        principal: Principal::AnyUser,
        resource_type: ResourceType::Topic,
        resource_name: "orders-secret".into(),
        pattern_type: PatternType::Literal,
        operation: Operation::All,
        permission: Permission::Deny,
    };
    let index = ClusterIndex::compile(
        "lkc-1",
        "env-1",
        [&deny],
        bindings.iter().map(|(p, r, c)| (p, *r, c)),
    );
    let authz = Authorizer::empty(org)
        .with_bindings(bindings.iter().map(|(p, r, c)| (p, *r, c)))
        .with_cluster(index);
    let topic = ResourceType::Topic;
    assert!(
        authz
            .authorize("lkc-1", &app, topic, "orders-eu", Operation::Write)
            .allowed
    );
    assert!(
        authz
            .authorize("lkc-1", &app, topic, "orders-eu", Operation::Describe)
            .allowed
    );
    assert!(
        !authz
            .authorize("lkc-1", &app, topic, "orders-eu", Operation::Read)
            .allowed
    );
    assert!(
        !authz
            .authorize("lkc-1", &app, topic, "payments", Operation::Write)
            .allowed
    );
    assert!(
        authz
            .authorize(
                "lkc-1",
                &app,
                ResourceType::Cluster,
                CLUSTER_RESOURCE_NAME,
                Operation::IdempotentWrite
            )
            .allowed
    );
    // DENY wins over a role binding, but not over the super user.
    assert!(
        !authz
            .authorize("lkc-1", &app, topic, "orders-secret", Operation::Write)
            .allowed
    );
    assert!(
        !authz
            .authorize("lkc-1", &ops_user, topic, "orders-secret", Operation::Read)
            .allowed
    );
    assert!(
        authz
            .authorize("lkc-1", &ops_user, topic, "anything", Operation::Delete)
            .allowed
    );
    assert!(
        authz
            .authorize("lkc-1", &admin, topic, "orders-secret", Operation::Read)
            .allowed
    );
    assert!(
        !authz
            .authorize("lkc-2", &ops_user, topic, "anything", Operation::Read)
            .allowed
    );
}

#[test]
fn authorize_any_for_idempotent_producers() {
    let org = CrnPattern::organization("keygate", "org-test");
    let writer = Principal::user("sa-writer");
    let reader = Principal::user("sa-reader");
    let acl = |p: &Principal, name: &str, op: Operation, perm: Permission| AclBinding {
        principal: p.clone(),
        resource_type: ResourceType::Topic,
        resource_name: name.into(),
        pattern_type: PatternType::Prefixed,
        operation: op,
        permission: perm,
    };
    let acls = [
        acl(&writer, "orders", Operation::Write, Permission::Allow),
        acl(&reader, "orders", Operation::Read, Permission::Allow),
    ];
    let authz = Authorizer::empty(org.clone()).with_cluster(ClusterIndex::compile(
        "lkc-1",
        "env-1",
        &acls,
        [],
    ));
    assert!(authz.authorize_any("lkc-1", &writer, ResourceType::Topic, Operation::Write));
    assert!(!authz.authorize_any("lkc-1", &reader, ResourceType::Topic, Operation::Write));
    assert!(!authz.authorize_any("lkc-2", &writer, ResourceType::Topic, Operation::Write));
    // A DENY of WRITE on every topic wins.
    let deny_all = AclBinding {
        resource_name: "*".into(),
        pattern_type: PatternType::Literal,
        ..acl(&Principal::AnyUser, "*", Operation::Write, Permission::Deny)
    };
    let with_deny = [acls[0].clone(), deny_all];
    let authz = Authorizer::empty(org).with_cluster(ClusterIndex::compile(
        "lkc-1",
        "env-1",
        &with_deny,
        [],
    ));
    assert!(!authz.authorize_any("lkc-1", &writer, ResourceType::Topic, Operation::Write));
}
