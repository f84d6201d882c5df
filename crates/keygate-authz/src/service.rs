//! Decisions for the HTTP services (Schema Registry, ksqlDB, Flink): a role binding
//! whose pattern covers the request's target and whose role grants the operation
//! ([`Role::grants_service`]) allows it; nothing else does. These services have no
//! ACLs, so there is no DENY to weigh. OrganizationAdmin is the super user here too.

use crate::{Authorizer, Decision, Reason};
use keygate_core::crn::CrnPattern;
use keygate_core::{Principal, Role, ServiceOp};

impl Authorizer {
    /// Whether `principal` may do `op` on `target` (a subject's, a registry's, a ksqlDB
    /// cluster's or a Flink region's CRN). `User:*` is considered as well.
    pub fn authorize_service(
        &self,
        principal: &Principal,
        target: &CrnPattern,
        op: ServiceOp,
    ) -> Decision {
        if self.is_super_user(principal) {
            return Decision::allow(Reason::SuperUser);
        }
        match self.service_role(principal, op, |p| p.covers(target)) {
            Some(role) => Decision::allow(Reason::Role(Some(role))),
            None => Decision::deny(Reason::NoMatch),
        }
    }

    /// Whether `principal` may do `op` on *something* inside `scope` (a registry:
    /// "may read at least one of its subjects"): a binding that covers the scope, or
    /// one that lies inside it.
    pub fn authorize_service_within(
        &self,
        principal: &Principal,
        scope: &CrnPattern,
        op: ServiceOp,
    ) -> bool {
        self.is_super_user(principal)
            || self
                .service_role(principal, op, |p| p.covers(scope) || scope.covers(p))
                .is_some()
    }

    fn service_role(
        &self,
        principal: &Principal,
        op: ServiceOp,
        fits: impl Fn(&CrnPattern) -> bool,
    ) -> Option<Role> {
        [principal, &Principal::AnyUser]
            .into_iter()
            .flat_map(|p| self.grants_of(p))
            .find(|g| g.role.grants_service(op) && fits(&g.pattern))
            .map(|g| g.role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> CrnPattern {
        CrnPattern::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    const ORG: &str = "crn://k/organization=o";
    const SR: &str = "crn://k/organization=o/environment=env-1/schema-registry=lsrc-1";

    fn authz(bindings: &[(&str, Role, &str)]) -> Authorizer {
        let b: Vec<(Principal, Role, CrnPattern)> = bindings
            .iter()
            .map(|(who, r, pat)| (Principal::user(*who), *r, p(pat)))
            .collect();
        Authorizer::empty(p(ORG)).with_bindings(b.iter().map(|(a, r, c)| (a, *r, c)))
    }

    fn subject(name: &str) -> CrnPattern {
        p(SR).child("subject", name)
    }

    #[test]
    fn subject_bindings_cover_by_prefix() {
        let a = authz(&[(
            "sa-1",
            Role::DeveloperRead,
            &format!("{SR}/subject=orders*"),
        )]);
        let u = Principal::user("sa-1");
        assert!(
            a.authorize_service(&u, &subject("orders-value"), ServiceOp::SubjectRead)
                .allowed
        );
        assert!(
            !a.authorize_service(&u, &subject("orders-value"), ServiceOp::SubjectWrite)
                .allowed
        );
        assert!(
            !a.authorize_service(&u, &subject("payments-value"), ServiceOp::SubjectRead)
                .allowed
        );
        // Another registry's subject of the same name is not covered.
        let other = p("crn://k/organization=o/environment=env-1/schema-registry=lsrc-2")
            .child("subject", "orders-value");
        assert!(
            !a.authorize_service(&u, &other, ServiceOp::SubjectRead)
                .allowed
        );
        // Within the registry, something is readable; the registry's settings are not
        // writable.
        assert!(a.authorize_service_within(&u, &p(SR), ServiceOp::SubjectRead));
        assert!(
            !a.authorize_service(&u, &p(SR), ServiceOp::RegistryConfigWrite)
                .allowed
        );
    }

    #[test]
    fn environment_roles_cover_the_registry_and_super_user_everything() {
        let a = authz(&[
            (
                "u-steward",
                Role::DataSteward,
                "crn://k/organization=o/environment=env-1",
            ),
            ("u-admin", Role::OrganizationAdmin, ORG),
        ]);
        let steward = Principal::user("u-steward");
        assert!(
            a.authorize_service(&steward, &p(SR), ServiceOp::RegistryConfigWrite)
                .allowed
        );
        assert!(
            !a.authorize_service(&steward, &p(SR), ServiceOp::KsqlAccess)
                .allowed
        );
        let elsewhere = p("crn://k/organization=o/environment=env-2/schema-registry=lsrc-9");
        assert!(
            !a.authorize_service(&steward, &elsewhere, ServiceOp::SubjectRead)
                .allowed
        );
        let admin = Principal::user("u-admin");
        let d = a.authorize_service(&admin, &elsewhere, ServiceOp::RegistryConfigWrite);
        assert_eq!(d, Decision::allow(Reason::SuperUser));
    }

    #[test]
    fn any_user_bindings_apply_to_everyone() {
        let ksql = "crn://k/organization=o/environment=env-1/ksql=lksqlc-1";
        let b = [(Principal::AnyUser, Role::KsqlAdmin, p(ksql))];
        let a = Authorizer::empty(p(ORG)).with_bindings(b.iter().map(|(x, r, c)| (x, *r, c)));
        assert!(
            a.authorize_service(&Principal::user("sa-9"), &p(ksql), ServiceOp::KsqlAccess)
                .allowed
        );
    }
}
