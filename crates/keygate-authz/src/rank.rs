//! Acting on another principal never gives the actor more than it already holds.
//!
//! Setting a user's password, minting or enabling a key that a principal owns,
//! renaming, deactivating or deleting a principal: each of these either hands the actor
//! the target's powers (sign in as it, authenticate with its key) or takes them away
//! from their legitimate holder. So each is allowed only when the actor already holds
//! at least what the target holds — [`Authorizer::holds_at_least`]. In particular only an
//! OrganizationAdmin acts on an OrganizationAdmin.
//!
//! The comparison is conservative: it compares role bindings by role inclusion and
//! pattern coverage (not by what they happen to allow today), and a target's ALLOW ACLs
//! by what the actor is allowed on the same pattern. When in doubt the target outranks
//! the actor; the cost of a wrong "no" is asking an administrator, the cost of a wrong
//! "yes" is a takeover.

use crate::{scope_role, Authorizer, ClusterIndex, Grant};
use keygate_core::crn::CrnPattern;
use keygate_core::role::Scope;
use keygate_core::{Operation, PatternType, Principal, ResourceType, Role};

/// Whether role `a`, bound at a pattern that covers `b`'s, grants at least what `b`
/// grants there: every control-plane capability and every Kafka operation.
fn role_includes(a: Role, b: &Grant) -> bool {
    use Role as R;
    if a == b.role {
        return true;
    }
    match a {
        R::OrganizationAdmin => true,
        R::EnvironmentAdmin => !matches!(
            b.role,
            R::OrganizationAdmin | R::AccountAdmin | R::ResourceKeyAdmin
        ),
        R::CloudClusterAdmin => matches!(
            b.role,
            R::Operator
                | R::MetricsViewer
                | R::ResourceOwner
                | R::DeveloperRead
                | R::DeveloperWrite
                | R::DeveloperManage
        ),
        // DeveloperWrite on a topic also grants IDEMPOTENT_WRITE on the cluster, which
        // ResourceOwner does not: it is included only where it has no Kafka meaning.
        R::ResourceOwner => {
            matches!(b.role, R::DeveloperRead | R::DeveloperManage)
                || (b.role == R::DeveloperWrite && b.scope == Scope::Subject)
        }
        // Not ResourceOwner: that one may grant roles on its subjects, DataSteward may not.
        R::DataSteward => {
            b.scope == Scope::Subject
                && matches!(
                    b.role,
                    R::DeveloperRead | R::DeveloperWrite | R::DeveloperManage
                )
        }
        R::FlinkAdmin => b.role == R::FlinkDeveloper,
        R::Operator => b.role == R::MetricsViewer,
        _ => false,
    }
}

/// The operations whose bits are set in `mask` (ALL itself is never a bit of a mask's
/// meaning: its ALLOW sets every bit).
fn operations(mask: u16) -> impl Iterator<Item = Operation> {
    Operation::ALL_OPS
        .into_iter()
        .filter(move |o| *o != Operation::All && mask & o.bit() != 0)
}

impl Authorizer {
    /// Whether `actor` holds at least everything `target` holds — everywhere, or only
    /// where it matters for a credential scoped to `within` (a resource key's
    /// resource). Role bindings and ALLOW ACLs of the target are compared; `User:*`
    /// grants belong to both and are not compared.
    pub fn holds_at_least(
        &self,
        actor: &Principal,
        target: &Principal,
        within: Option<&CrnPattern>,
    ) -> bool {
        if actor == target || self.is_super_user(actor) {
            return true;
        }
        if self.is_super_user(target) {
            return false;
        }
        let relevant = |p: &CrnPattern| within.is_none_or(|w| w.covers(p) || p.covers(w));
        // Only the actor's own bindings count: `User:*` bindings above the resource
        // level are not applied to Kafka requests, so they cannot stand in for one.
        let roles = self
            .grants_of(target)
            .iter()
            .filter(|g| relevant(&g.pattern))
            .all(|g| {
                self.grants_of(actor)
                    .iter()
                    .any(|h| h.pattern.covers(&g.pattern) && role_includes(h.role, g))
            });
        roles
            && self
                .clusters
                .values()
                .filter(|c| relevant(&self.cluster_crn(c)))
                .all(|c| self.acls_covered(c, actor, target))
    }

    fn cluster_crn(&self, c: &ClusterIndex) -> CrnPattern {
        self.org
            .child("environment", c.environment_id())
            .child("cloud-cluster", c.cluster_id())
    }

    /// Whether every ALLOW ACL of `target` in cluster `c` is matched by something that
    /// allows `actor` the same operations on the same (or a wider) pattern.
    fn acls_covered(&self, c: &ClusterIndex, actor: &Principal, target: &Principal) -> bool {
        // A DENY the actor has and the target has not takes from the actor what both
        // may hold through `User:*`: then the actor does not hold everything.
        let denies_shared = c
            .entries(actor)
            .filter(|e| e.3.deny != 0)
            .all(|(rt, pt, name, m)| {
                c.entries(target).any(|(t, q, n, tm)| {
                    t == rt && q == pt && n == name && tm.deny & m.deny == m.deny
                })
            });
        denies_shared
            && c.entries(target)
                .filter(|(_, _, _, m)| m.acl_allow != 0)
                .all(|(rt, pt, name, m)| {
                    operations(m.acl_allow)
                        .all(|op| self.allows_pattern(c, actor, rt, pt, name, op))
                })
    }

    /// Whether `actor` may perform `op` on every resource the pattern `(pt, name)`
    /// matches (`pt == None`: every name).
    fn allows_pattern(
        &self,
        c: &ClusterIndex,
        actor: &Principal,
        rt: ResourceType,
        pt: Option<PatternType>,
        name: &[u8],
        op: Operation,
    ) -> bool {
        if pt == Some(PatternType::Literal) {
            let name = String::from_utf8_lossy(name);
            return self.authorize(c.cluster_id(), actor, rt, &name, op).allowed;
        }
        let bit = op.bit();
        // Any DENY of this operation on this type may cut into the pattern: not covered.
        if c.entries(actor)
            .any(|(t, _, _, m)| t == rt && m.deny & bit != 0)
        {
            return false;
        }
        let by_role = self
            .grants
            .get(actor)
            .is_some_and(|g| scope_role(g, c, rt, bit).is_some());
        by_role
            || [actor, &Principal::AnyUser].into_iter().any(|p| {
                c.entries(p).any(|(t, qt, q, m)| {
                    t == rt
                        && (m.acl_allow | m.role_allow) & bit != 0
                        && match (qt, pt) {
                            (None, _) => true,
                            (Some(PatternType::Prefixed), Some(PatternType::Prefixed)) => {
                                name.starts_with(q)
                            }
                            _ => false,
                        }
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keygate_core::{AclBinding, Permission};

    fn p(s: &str) -> CrnPattern {
        CrnPattern::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn only_an_organization_admin_outranks_one() {
        let org = p("crn://k/organization=o");
        let (root, acct, other) = (
            Principal::user("u-root"),
            Principal::user("u-acct"),
            Principal::user("u-other"),
        );
        let b = [
            (root.clone(), Role::OrganizationAdmin, org.clone()),
            (acct.clone(), Role::AccountAdmin, org.clone()),
            (other.clone(), Role::OrganizationAdmin, org.clone()),
        ];
        let a = Authorizer::empty(org.clone()).with_bindings(b.iter().map(|(p, r, c)| (p, *r, c)));
        assert!(!a.holds_at_least(&acct, &root, None));
        assert!(a.holds_at_least(&root, &acct, None));
        assert!(a.holds_at_least(&other, &root, None));
        assert!(a.holds_at_least(&acct, &Principal::user("u-nobody"), None));
    }

    #[test]
    fn acls_and_scopes_are_compared() {
        let org = p("crn://k/organization=o");
        let env = org.child("environment", "env-1");
        let cluster = env.child("cloud-cluster", "lkc-1");
        let (admin, app, dev) = (
            Principal::user("u-admin"),
            Principal::user("sa-app"),
            Principal::user("u-dev"),
        );
        let acl = |p: &Principal, name: &str, pt, op| AclBinding {
            principal: p.clone(),
            resource_type: ResourceType::Topic,
            resource_name: name.into(),
            pattern_type: pt,
            operation: op,
            permission: Permission::Allow,
        };
        let acls = [
            acl(&app, "orders", PatternType::Literal, Operation::Write),
            acl(&dev, "ord", PatternType::Prefixed, Operation::All),
        ];
        let b = [(admin.clone(), Role::CloudClusterAdmin, cluster.clone())];
        let a = Authorizer::empty(org.clone())
            .with_bindings(b.iter().map(|(p, r, c)| (p, *r, c)))
            .with_cluster(ClusterIndex::compile("lkc-1", "env-1", &acls, []));
        assert!(a.holds_at_least(&admin, &app, None));
        assert!(a.holds_at_least(&dev, &app, None));
        assert!(!a.holds_at_least(&app, &dev, None));
        // Only the scope a resource key reaches counts for it.
        let elsewhere = env.child("cloud-cluster", "lkc-2");
        assert!(a.holds_at_least(&app, &dev, Some(&elsewhere)));
        assert!(!a.holds_at_least(&app, &dev, Some(&cluster)));
    }
}
