//! Control-plane capabilities: who may manage accounts, environments, clusters, keys
//! and role bindings (reference/roles.md, "Who may manage keys").
//!
//! A capability is checked against the CRN of its target: a role binding whose
//! pattern covers the target and whose role carries the capability allows it. Kafka
//! ACL management is not here: it is ALTER/DESCRIBE on the cluster, decided by
//! [`crate::Authorizer::authorize`] like any Kafka request.

use crate::{Authorizer, Grant};
use keygate_core::crn::CrnPattern;
use keygate_core::role::Scope;
use keygate_core::{Principal, Role};

/// Something a caller may want to do in the control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// Create, update, delete users and service accounts (target: the org, or the
    /// service account's CRN).
    ManageAccounts,
    /// Create or delete environments (target: the org) or update one (its CRN).
    ManageEnvironment,
    /// Create, update, delete clusters and other resources (target: the resource or
    /// its environment).
    ManageResource,
    /// Create and manage resource-scoped keys for another account (target: the
    /// resource's CRN; the owner is checked separately).
    ManageResourceKeys,
    /// Create and manage CLOUD keys and keys of a service account (target: the
    /// service account's CRN).
    ManageAccountKeys,
    /// Grant or revoke roles at a CRN pattern (target: the pattern).
    GrantRoles,
    /// Read audit and metrics at a scope (later issues).
    ViewOperations,
}

impl Capability {
    /// Every capability.
    pub const ALL: [Capability; 7] = [
        Capability::ManageAccounts,
        Capability::ManageEnvironment,
        Capability::ManageResource,
        Capability::ManageResourceKeys,
        Capability::ManageAccountKeys,
        Capability::GrantRoles,
        Capability::ViewOperations,
    ];

    /// The name the role catalogue uses.
    pub const fn as_str(self) -> &'static str {
        match self {
            Capability::ManageAccounts => "MANAGE_ACCOUNTS",
            Capability::ManageEnvironment => "MANAGE_ENVIRONMENT",
            Capability::ManageResource => "MANAGE_RESOURCE",
            Capability::ManageResourceKeys => "MANAGE_RESOURCE_KEYS",
            Capability::ManageAccountKeys => "MANAGE_ACCOUNT_KEYS",
            Capability::GrantRoles => "GRANT_ROLES",
            Capability::ViewOperations => "VIEW_OPERATIONS",
        }
    }
}

/// The capabilities `role` carries on targets its binding at `scope` covers.
pub fn capabilities(role: Role, scope: Scope) -> Vec<Capability> {
    let Ok(at) = CrnPattern::parse(scope.example()) else {
        return Vec::new();
    };
    Capability::ALL
        .into_iter()
        .filter(|c| role_has(role, *c, scope, &at))
        .collect()
}

fn role_has(role: Role, cap: Capability, binding_scope: Scope, target: &CrnPattern) -> bool {
    use Capability as C;
    match role {
        Role::OrganizationAdmin => true,
        Role::AccountAdmin => matches!(cap, C::ManageAccounts),
        Role::ResourceKeyAdmin => matches!(cap, C::ManageResourceKeys),
        // Everything but accounts and account keys inside the environment.
        Role::EnvironmentAdmin => !matches!(cap, C::ManageAccounts | C::ManageAccountKeys),
        // A cluster admin may update its cluster but not delete or move it: the caller
        // decides which verbs need ManageEnvironment instead.
        Role::CloudClusterAdmin => matches!(
            cap,
            C::ManageResource | C::ManageResourceKeys | C::GrantRoles | C::ViewOperations
        ),
        Role::KsqlAdmin | Role::FlinkAdmin => {
            matches!(cap, C::ManageResource | C::ManageResourceKeys)
        }
        Role::ResourceOwner => match binding_scope {
            Scope::ServiceAccount => {
                matches!(
                    cap,
                    C::ManageAccounts | C::ManageAccountKeys | C::GrantRoles
                )
            }
            _ => matches!(cap, C::GrantRoles) && target_is_resource_level(target),
        },
        Role::Operator | Role::MetricsViewer => matches!(cap, C::ViewOperations),
        _ => false,
    }
}

fn target_is_resource_level(target: &CrnPattern) -> bool {
    matches!(
        Scope::of(target),
        Some(Scope::Topic | Scope::Group | Scope::TransactionalId | Scope::Subject)
    )
}

/// Whether `grant`'s pattern covers `target`, with prefix patterns covering narrower
/// prefix patterns (`topic=orders*` covers `topic=orders-eu*`).
fn grant_covers(grant: &Grant, target: &CrnPattern) -> bool {
    grant.pattern.covers(target)
}

impl Authorizer {
    /// The role through which `principal` holds `cap` on `target`, if any.
    pub fn capability(
        &self,
        principal: &Principal,
        cap: Capability,
        target: &CrnPattern,
    ) -> Option<Role> {
        [principal, &Principal::AnyUser]
            .into_iter()
            .flat_map(|p| self.grants_of(p))
            .find(|g| grant_covers(g, target) && role_has(g.role, cap, g.scope, target))
            .map(|g| g.role)
    }

    /// Shorthand for `capability(..).is_some()`.
    pub fn can(&self, principal: &Principal, cap: Capability, target: &CrnPattern) -> bool {
        self.capability(principal, cap, target).is_some()
    }

    /// Whether `principal` may bind `role` at `pattern`. Organization-wide roles can only
    /// be granted by an OrganizationAdmin; others by whoever holds
    /// [`Capability::GrantRoles`] over the pattern.
    pub fn can_grant(&self, principal: &Principal, role: Role, pattern: &CrnPattern) -> bool {
        if self.is_super_user(principal) {
            return true;
        }
        if matches!(Scope::of(pattern), Some(Scope::Organization)) {
            return false;
        }
        // A service account's owner may grant ResourceOwner on it (share ownership),
        // nothing else there.
        if matches!(Scope::of(pattern), Some(Scope::ServiceAccount)) && role != Role::ResourceOwner
        {
            return false;
        }
        self.can(principal, Capability::GrantRoles, pattern)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> CrnPattern {
        CrnPattern::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn capabilities_follow_scope() {
        let org = p("crn://k/organization=o");
        let env_a = p("crn://k/organization=o/environment=env-a");
        let env_b = p("crn://k/organization=o/environment=env-b");
        let sa = p("crn://k/organization=o/service-account=sa-1");
        let alice = Principal::user("u-alice");
        let bob = Principal::user("u-bob");
        let bindings = [
            (alice.clone(), Role::EnvironmentAdmin, env_a.clone()),
            (bob.clone(), Role::ResourceOwner, sa.clone()),
        ];
        let a = Authorizer::empty(org.clone())
            .with_bindings(bindings.iter().map(|(p, r, c)| (p, *r, c)));
        let cluster_a = env_a.child("cloud-cluster", "lkc-1");
        assert!(a.can(&alice, Capability::ManageResource, &cluster_a));
        assert!(!a.can(
            &alice,
            Capability::ManageResource,
            &env_b.child("cloud-cluster", "lkc-2")
        ));
        assert!(!a.can(&alice, Capability::ManageAccounts, &org));
        assert!(a.can(&bob, Capability::ManageAccountKeys, &sa));
        assert!(!a.can(
            &bob,
            Capability::ManageAccountKeys,
            &org.child("service-account", "sa-2")
        ));
        assert!(a.can_grant(
            &alice,
            Role::DeveloperRead,
            &cluster_a.child("kafka", "lkc-1").child("topic", "x")
        ));
        assert!(!a.can_grant(&alice, Role::AccountAdmin, &org));
        assert!(a.can_grant(&bob, Role::ResourceOwner, &sa));
        assert!(!a.can_grant(&bob, Role::DeveloperRead, &sa));
    }
}
