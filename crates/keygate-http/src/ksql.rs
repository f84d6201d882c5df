//! ksqlDB: all or nothing per cluster. KsqlAdmin on the cluster, ResourceOwner on it,
//! or an admin above it (EnvironmentAdmin, OrganizationAdmin) may use every endpoint —
//! `/ksql`, `/query`, `/query-stream`, `/close-query`, `/inserts-stream`, `/info`,
//! `/status`, `/healthcheck`, `/ws/query` — and nobody else may use any.

use crate::plan::{Check, Plan};
use keygate_core::crn::CrnPattern;
use keygate_core::ServiceOp;

/// The plan of any request to the ksqlDB cluster `cluster` (its CRN).
pub fn plan(cluster: &CrnPattern) -> Plan {
    Plan::check(Check::Service(cluster.clone(), ServiceOp::KsqlAccess), "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_check_for_every_endpoint() {
        let c = CrnPattern::parse("crn://k/organization=o/environment=e/ksql=lksqlc-1")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            plan(&c).checks,
            vec![Check::Service(c.clone(), ServiceOp::KsqlAccess)]
        );
    }
}
