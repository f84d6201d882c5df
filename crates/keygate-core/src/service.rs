//! What a request to one of the HTTP services asks for, in the terms roles grant
//! (reference/roles.md, and the operation tables): Schema Registry subjects
//! and the registry's own settings, a ksqlDB cluster, a Flink region's jobs.
//!
//! Tableflow has no operations of its own here: its namespaces are Kafka clusters and
//! its tables are topics, so it is decided by the Kafka authorizer on those topics.
//!
//! The table is written once, as [`Role::grants_service`]; where a role is *bound*
//! (its CRN) is checked by the authorizer, which requires the binding's pattern to
//! cover the request's target.

use crate::Role;

/// One thing a request to an HTTP service does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceOp {
    /// Read a subject's schemas and versions (look up, list versions, fetch).
    SubjectRead,
    /// Register a new schema version under a subject.
    SubjectWrite,
    /// Delete a subject or one of its versions.
    SubjectDelete,
    /// Read a subject's compatibility level or mode.
    SubjectCompatibilityRead,
    /// Change a subject's compatibility level or mode.
    SubjectCompatibilityWrite,
    /// Read the registry's global compatibility level or mode.
    RegistryConfigRead,
    /// Change the registry's global compatibility level or mode.
    RegistryConfigWrite,
    /// Use a ksqlDB cluster (statements, queries, status): all or nothing.
    KsqlAccess,
    /// Submit a Flink job (upload and run a jar, submit a job graph).
    FlinkSubmit,
    /// See and manage (cancel, stop, rescale) jobs the principal submitted.
    FlinkOwnJobs,
    /// See every job and the cluster's state.
    FlinkReadAll,
    /// Manage every job (cancel another principal's job, delete jars).
    FlinkManageAll,
}

impl ServiceOp {
    /// Every operation (tests walk the table row by row).
    pub const ALL: [ServiceOp; 12] = [
        ServiceOp::SubjectRead,
        ServiceOp::SubjectWrite,
        ServiceOp::SubjectDelete,
        ServiceOp::SubjectCompatibilityRead,
        ServiceOp::SubjectCompatibilityWrite,
        ServiceOp::RegistryConfigRead,
        ServiceOp::RegistryConfigWrite,
        ServiceOp::KsqlAccess,
        ServiceOp::FlinkSubmit,
        ServiceOp::FlinkOwnJobs,
        ServiceOp::FlinkReadAll,
        ServiceOp::FlinkManageAll,
    ];

    /// The name audit records use (`SUBJECT_READ`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            ServiceOp::SubjectRead => "SUBJECT_READ",
            ServiceOp::SubjectWrite => "SUBJECT_WRITE",
            ServiceOp::SubjectDelete => "SUBJECT_DELETE",
            ServiceOp::SubjectCompatibilityRead => "SUBJECT_COMPATIBILITY_READ",
            ServiceOp::SubjectCompatibilityWrite => "SUBJECT_COMPATIBILITY_WRITE",
            ServiceOp::RegistryConfigRead => "GLOBAL_COMPATIBILITY_READ",
            ServiceOp::RegistryConfigWrite => "GLOBAL_COMPATIBILITY_WRITE",
            ServiceOp::KsqlAccess => "KSQL_ACCESS",
            ServiceOp::FlinkSubmit => "FLINK_SUBMIT",
            ServiceOp::FlinkOwnJobs => "FLINK_OWN_JOBS",
            ServiceOp::FlinkReadAll => "FLINK_READ_ALL",
            ServiceOp::FlinkManageAll => "FLINK_MANAGE_ALL",
        }
    }
}

impl Role {
    /// Whether this role, bound at a pattern that covers the request's target, grants
    /// `op`. The one table of the HTTP services:
    ///
    /// | role | grants |
    /// |---|---|
    /// | OrganizationAdmin, EnvironmentAdmin | everything below their binding |
    /// | DataSteward | every Schema Registry operation in the environment |
    /// | ResourceOwner | every operation on its subjects; its ksqlDB cluster |
    /// | DeveloperRead | subject read, subject compatibility read |
    /// | DeveloperWrite | + register |
    /// | DeveloperManage | + delete, compatibility write |
    /// | Operator | compatibility reads; every Flink job, read-only |
    /// | KsqlAdmin | its ksqlDB cluster |
    /// | FlinkAdmin | every Flink operation in scope |
    /// | FlinkDeveloper | submit; read and manage its own jobs |
    pub const fn grants_service(self, op: ServiceOp) -> bool {
        use ServiceOp as S;
        match self {
            Role::OrganizationAdmin | Role::EnvironmentAdmin => true,
            Role::DataSteward => matches!(
                op,
                S::SubjectRead
                    | S::SubjectWrite
                    | S::SubjectDelete
                    | S::SubjectCompatibilityRead
                    | S::SubjectCompatibilityWrite
                    | S::RegistryConfigRead
                    | S::RegistryConfigWrite
            ),
            Role::ResourceOwner => matches!(
                op,
                S::SubjectRead
                    | S::SubjectWrite
                    | S::SubjectDelete
                    | S::SubjectCompatibilityRead
                    | S::SubjectCompatibilityWrite
                    | S::KsqlAccess
            ),
            Role::DeveloperRead => matches!(op, S::SubjectRead | S::SubjectCompatibilityRead),
            Role::DeveloperWrite => matches!(
                op,
                S::SubjectRead | S::SubjectCompatibilityRead | S::SubjectWrite
            ),
            Role::DeveloperManage => matches!(
                op,
                S::SubjectRead
                    | S::SubjectCompatibilityRead
                    | S::SubjectWrite
                    | S::SubjectDelete
                    | S::SubjectCompatibilityWrite
            ),
            Role::Operator => matches!(
                op,
                S::SubjectCompatibilityRead | S::RegistryConfigRead | S::FlinkReadAll
            ),
            Role::KsqlAdmin => matches!(op, S::KsqlAccess),
            Role::FlinkAdmin => matches!(
                op,
                S::FlinkSubmit | S::FlinkOwnJobs | S::FlinkReadAll | S::FlinkManageAll
            ),
            Role::FlinkDeveloper => matches!(op, S::FlinkSubmit | S::FlinkOwnJobs),
            Role::AccountAdmin
            | Role::CloudClusterAdmin
            | Role::ResourceKeyAdmin
            | Role::MetricsViewer => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ServiceOp as S;
    use crate::Role as R;

    /// Every row of the table, spelled out: (role, the operations it grants).
    const TABLE: &[(R, &[S])] = &[
        (R::OrganizationAdmin, &S::ALL),
        (R::EnvironmentAdmin, &S::ALL),
        (
            R::DataSteward,
            &[
                S::SubjectRead,
                S::SubjectWrite,
                S::SubjectDelete,
                S::SubjectCompatibilityRead,
                S::SubjectCompatibilityWrite,
                S::RegistryConfigRead,
                S::RegistryConfigWrite,
            ],
        ),
        (
            R::ResourceOwner,
            &[
                S::SubjectRead,
                S::SubjectWrite,
                S::SubjectDelete,
                S::SubjectCompatibilityRead,
                S::SubjectCompatibilityWrite,
                S::KsqlAccess,
            ],
        ),
        (
            R::DeveloperRead,
            &[S::SubjectRead, S::SubjectCompatibilityRead],
        ),
        (
            R::DeveloperWrite,
            &[S::SubjectRead, S::SubjectCompatibilityRead, S::SubjectWrite],
        ),
        (
            R::DeveloperManage,
            &[
                S::SubjectRead,
                S::SubjectCompatibilityRead,
                S::SubjectWrite,
                S::SubjectDelete,
                S::SubjectCompatibilityWrite,
            ],
        ),
        (
            R::Operator,
            &[
                S::SubjectCompatibilityRead,
                S::RegistryConfigRead,
                S::FlinkReadAll,
            ],
        ),
        (R::KsqlAdmin, &[S::KsqlAccess]),
        (
            R::FlinkAdmin,
            &[
                S::FlinkSubmit,
                S::FlinkOwnJobs,
                S::FlinkReadAll,
                S::FlinkManageAll,
            ],
        ),
        (R::FlinkDeveloper, &[S::FlinkSubmit, S::FlinkOwnJobs]),
        (R::AccountAdmin, &[]),
        (R::CloudClusterAdmin, &[]),
        (R::ResourceKeyAdmin, &[]),
        (R::MetricsViewer, &[]),
    ];

    #[test]
    fn every_role_and_operation_as_the_table_says() {
        assert_eq!(TABLE.len(), R::ALL.len(), "every role has a row");
        for (role, granted) in TABLE {
            for op in S::ALL {
                assert_eq!(
                    role.grants_service(op),
                    granted.contains(&op),
                    "{role} / {}",
                    op.as_str()
                );
            }
        }
    }

    #[test]
    fn the_developer_roles_are_a_ladder() {
        for op in S::ALL {
            if R::DeveloperRead.grants_service(op) {
                assert!(R::DeveloperWrite.grants_service(op));
            }
            if R::DeveloperWrite.grants_service(op) {
                assert!(R::DeveloperManage.grants_service(op));
            }
            if R::DeveloperManage.grants_service(op) {
                assert!(R::ResourceOwner.grants_service(op));
            }
        }
    }
}
