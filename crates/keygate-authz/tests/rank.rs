//! The no-escalation property: whenever `holds_at_least(actor, target)` says the actor
//! may act on the target (and so may end up with the target's credentials), the target
//! can do nothing the actor cannot — no control-plane capability, no role grant, no
//! Kafka operation. Random role bindings and ACLs over a small universe of places, so
//! that overlaps (prefixes, scopes inside scopes, `User:*`) are frequent.

use keygate_authz::{Authorizer, Capability, ClusterIndex};
use keygate_core::crn::CrnPattern;
use keygate_core::{AclBinding, Operation, PatternType, Permission, Principal, ResourceType, Role};
use proptest::prelude::*;

const ORG: &str = "crn://k/organization=o";

fn places() -> Vec<CrnPattern> {
    let org = CrnPattern::parse(ORG).unwrap_or_else(|e| panic!("{e}"));
    let mut out = vec![org.clone()];
    for (env, cluster) in [("env-1", "lkc-1"), ("env-2", "lkc-2")] {
        let e = org.child("environment", env);
        let c = e.child("cloud-cluster", cluster);
        let k = c.child("kafka", cluster);
        out.extend([e.clone(), c.clone()]);
        for t in ["orders", "ord*", "orders-eu", "pay*", "*"] {
            out.push(k.child("topic", t));
        }
        out.extend([k.child("group", "g1"), k.child("group", "g*")]);
        out.push(k.child("transactional-id", "t1"));
        let sr = e.child("schema-registry", "lsrc-1");
        out.extend([sr.child("subject", "s1"), sr.child("subject", "s*")]);
        out.push(e.child("ksql", "lksqlc-1"));
        out.push(e.child("flink-region", "aws.us-east-1"));
    }
    out.extend([
        org.child("service-account", "sa-1"),
        org.child("service-account", "sa-2"),
    ]);
    out
}

fn principals() -> [Principal; 4] {
    [
        Principal::user("u-actor"),
        Principal::user("u-target"),
        Principal::user("u-other"),
        Principal::AnyUser,
    ]
}

const CAPS: [Capability; 7] = Capability::ALL;

const TYPES: [ResourceType; 4] = [
    ResourceType::Topic,
    ResourceType::Group,
    ResourceType::Cluster,
    ResourceType::TransactionalId,
];

const NAMES: [&str; 8] = [
    "orders",
    "ord",
    "orders-eu",
    "pay",
    "payx",
    "g1",
    "t1",
    "kafka-cluster",
];

type RawBinding = (usize, usize, usize);
type RawAcl = (usize, usize, usize, usize, bool, usize, bool, usize);

fn build(bindings: &[RawBinding], acls: &[RawAcl]) -> Authorizer {
    let places = places();
    let ps = principals();
    let bindings: Vec<(Principal, Role, CrnPattern)> = bindings
        .iter()
        .map(|&(p, r, c)| {
            (
                ps[p % ps.len()].clone(),
                Role::ALL[r % Role::ALL.len()],
                places[c % places.len()].clone(),
            )
        })
        .filter(|(_, r, c)| r.check_scope(c).is_ok())
        .collect();
    let mut per_cluster: [Vec<AclBinding>; 2] = Default::default();
    for &(cl, p, t, n, prefixed, op, allow, _) in acls {
        let acl = AclBinding {
            principal: ps[p % ps.len()].clone(),
            resource_type: TYPES[t % TYPES.len()],
            resource_name: ["orders", "ord", "pay", "*", "g", "t1", "kafka-cluster"][n % 7].into(),
            pattern_type: if prefixed {
                PatternType::Prefixed
            } else {
                PatternType::Literal
            },
            operation: Operation::ALL_OPS[op % Operation::ALL_OPS.len()],
            permission: if allow {
                Permission::Allow
            } else {
                Permission::Deny
            },
        };
        // Only what CreateAcls accepts can be stored.
        if acl.validate().is_ok() {
            per_cluster[cl % 2].push(acl);
        }
    }
    let org = CrnPattern::parse(ORG).unwrap_or_else(|e| panic!("{e}"));
    let refs = || bindings.iter().map(|(p, r, c)| (p, *r, c));
    Authorizer::empty(org)
        .with_bindings(refs())
        .with_cluster(ClusterIndex::compile(
            "lkc-1",
            "env-1",
            &per_cluster[0],
            refs(),
        ))
        .with_cluster(ClusterIndex::compile(
            "lkc-2",
            "env-2",
            &per_cluster[1],
            refs(),
        ))
}

/// Something the target may do and the actor may not, if any (a description).
fn kafka_gap(
    a: &Authorizer,
    actor: &Principal,
    target: &Principal,
    cluster: &str,
) -> Option<String> {
    for rt in TYPES {
        for op in Operation::ALL_OPS {
            if a.authorize_any(cluster, target, rt, op) && !a.authorize_any(cluster, actor, rt, op)
            {
                return Some(format!("{cluster}: {op} on some {rt:?}"));
            }
            for name in NAMES {
                if a.authorize(cluster, target, rt, name, op).allowed
                    && !a.authorize(cluster, actor, rt, name, op).allowed
                {
                    return Some(format!("{cluster}: {op} on {rt:?} {name}"));
                }
            }
        }
    }
    None
}

fn gap(a: &Authorizer, actor: &Principal, target: &Principal) -> Option<String> {
    for place in places() {
        for cap in CAPS {
            if a.can(target, cap, &place) && !a.can(actor, cap, &place) {
                return Some(format!("{cap:?} at {place}"));
            }
        }
        for role in Role::ALL {
            if a.can_grant(target, role, &place) && !a.can_grant(actor, role, &place) {
                return Some(format!("grant {role} at {place}"));
            }
        }
    }
    ["lkc-1", "lkc-2"]
        .into_iter()
        .find_map(|c| kafka_gap(a, actor, target, c))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8192))]

    #[test]
    fn acting_on_a_target_never_escalates(
        bindings in prop::collection::vec((0..4usize, 0..15usize, 0..64usize), 0..10),
        acls in prop::collection::vec(
            (0..2usize, 0..4usize, 0..4usize, 0..7usize, any::<bool>(), 0..11usize, any::<bool>(), 0..1usize),
            0..10,
        ),
    ) {
        let a = build(&bindings, &acls);
        let [actor, target, ..] = principals();
        if a.holds_at_least(&actor, &target, None) {
            prop_assert_eq!(gap(&a, &actor, &target), None);
        }
        // A key scoped to one cluster reaches only that cluster's data plane.
        let org = CrnPattern::parse(ORG).unwrap_or_else(|e| panic!("{e}"));
        for (env, cluster) in [("env-1", "lkc-1"), ("env-2", "lkc-2")] {
            let within = org.child("environment", env).child("cloud-cluster", cluster);
            if a.holds_at_least(&actor, &target, Some(&within)) {
                prop_assert_eq!(kafka_gap(&a, &actor, &target, cluster), None);
            }
        }
    }

    /// The check is not vacuous: an actor with the target's exact bindings and ACLs
    /// (and no DENY of its own) always outranks it.
    #[test]
    fn an_equal_outranks(
        bindings in prop::collection::vec((0..15usize, 0..64usize), 0..6),
        acls in prop::collection::vec(
            (0..2usize, 0..4usize, 0..7usize, any::<bool>(), 0..11usize),
            0..6,
        ),
    ) {
        let mut b = Vec::new();
        let mut l = Vec::new();
        for &(r, c) in &bindings {
            b.extend([(0, r, c), (1, r, c)]);
        }
        for &(cl, t, n, pre, op) in &acls {
            l.extend([(cl, 0, t, n, pre, op, true, 0), (cl, 1, t, n, pre, op, true, 0)]);
        }
        let a = build(&b, &l);
        let [actor, target, ..] = principals();
        prop_assert!(a.holds_at_least(&actor, &target, None));
    }
}
