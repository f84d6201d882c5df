//! The role catalogue: every predefined role, where it may be bound and what it allows
//! there, read off the same tables the authorizer decides with (`Role::scopes`,
//! [`crate::control`], `Role::kafka_mask`, `Role::grants_service`), so that what the
//! catalogue says and what keygate does cannot drift apart.

use crate::control::{capabilities, Capability};
use keygate_core::role::Scope;
use keygate_core::{Operation, ResourceType, Role, ServiceOp};

/// One role as the catalogue shows it.
#[derive(Debug, Clone)]
pub struct RoleEntry {
    /// The role.
    pub role: Role,
    /// Where it may be bound.
    pub scopes: Vec<Scope>,
    /// Whether its pattern may end in `*`.
    pub allows_prefix: bool,
    /// Control-plane capabilities, per scope it may be bound at.
    pub control_plane: Vec<(Scope, Vec<Capability>)>,
    /// Kafka operations per resource type, bound at or above the resource.
    pub kafka: Vec<(ResourceType, Vec<Operation>)>,
    /// Schema Registry, ksqlDB and Flink operations.
    pub services: Vec<ServiceOp>,
}

/// Every role, in the order `Role::ALL` lists them.
pub fn catalogue() -> Vec<RoleEntry> {
    Role::ALL.into_iter().map(entry).collect()
}

/// One role.
pub fn entry(role: Role) -> RoleEntry {
    let kafka = ResourceType::ALL
        .into_iter()
        .filter_map(|rt| {
            let mask = role.kafka_mask(rt);
            let ops: Vec<Operation> = Operation::ALL_OPS
                .into_iter()
                .filter(|o| *o != Operation::All && mask & o.bit() != 0)
                .collect();
            (!ops.is_empty()).then_some((rt, ops))
        })
        .collect();
    RoleEntry {
        role,
        scopes: role.scopes().to_vec(),
        allows_prefix: role.allows_prefix(),
        control_plane: role
            .scopes()
            .iter()
            .map(|s| (*s, capabilities(role, *s)))
            .collect(),
        kafka,
        services: ServiceOp::ALL
            .into_iter()
            .filter(|op| role.grants_service(*op))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_reads_the_authorizers_tables() {
        let all = catalogue();
        assert_eq!(all.len(), Role::ALL.len());
        let read = entry(Role::DeveloperRead);
        assert_eq!(
            read.kafka,
            vec![
                (
                    ResourceType::Topic,
                    vec![Operation::Read, Operation::Describe]
                ),
                (
                    ResourceType::Group,
                    vec![Operation::Read, Operation::Describe]
                ),
            ]
        );
        assert!(read.control_plane.iter().all(|(_, c)| c.is_empty()));
        assert!(read.services.contains(&ServiceOp::SubjectRead));
        assert!(!read.services.contains(&ServiceOp::SubjectWrite));
        let admin = entry(Role::OrganizationAdmin);
        assert_eq!(admin.control_plane[0].1.len(), Capability::ALL.len());
        let owner = entry(Role::ResourceOwner);
        let on_account = owner
            .control_plane
            .iter()
            .find(|(s, _)| *s == Scope::ServiceAccount)
            .map(|(_, c)| c.clone())
            .unwrap_or_default();
        assert!(on_account.contains(&Capability::ManageAccountKeys));
        let on_topic = owner
            .control_plane
            .iter()
            .find(|(s, _)| *s == Scope::Topic)
            .map(|(_, c)| c.clone())
            .unwrap_or_default();
        assert_eq!(on_topic, vec![Capability::GrantRoles]);
        // Every example pattern is one its scopes accept.
        for e in &all {
            for s in &e.scopes {
                let p = keygate_core::crn::CrnPattern::parse(s.example()).expect("example");
                assert_eq!(Scope::of(&p), Some(*s), "{}", s.example());
            }
        }
    }
}
