//! Predefined roles (reference/roles.md): where each may be bound and what it grants on
//! Kafka resources. Control-plane capabilities of roles live in `keygate-authz`, next
//! to the engine that evaluates them.

use crate::acl::{Operation, ResourceType};
use crate::crn::CrnPattern;
use std::fmt;

/// A predefined role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Everything, everywhere.
    OrganizationAdmin,
    /// Users, service accounts, groups, identity providers and pools.
    AccountAdmin,
    /// Everything inside one environment.
    EnvironmentAdmin,
    /// Everything on one Kafka cluster.
    CloudClusterAdmin,
    /// Resource-scoped keys for any service account.
    ResourceKeyAdmin,
    /// Describe everything below an environment or cluster.
    Operator,
    /// Read metrics.
    MetricsViewer,
    /// Every operation on a resource, and granting roles on it.
    ResourceOwner,
    /// Read data.
    DeveloperRead,
    /// Write data.
    DeveloperWrite,
    /// Manage topics and groups, without data access.
    DeveloperManage,
    /// Manage schemas in an environment.
    DataSteward,
    /// Everything on a ksqlDB cluster.
    KsqlAdmin,
    /// Everything on Flink in scope.
    FlinkAdmin,
    /// Submit and manage own Flink statements.
    FlinkDeveloper,
}

/// Where a role can be bound, by CRN shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `organization=…`
    Organization,
    /// `…/environment=…`
    Environment,
    /// `…/environment=…/cloud-cluster=lkc-…`
    KafkaCluster,
    /// `…/cloud-cluster=lkc-…/kafka=lkc-…/topic=…`
    Topic,
    /// `…/kafka=lkc-…/group=…`
    Group,
    /// `…/kafka=lkc-…/transactional-id=…`
    TransactionalId,
    /// `…/environment=…/schema-registry=lsrc-…/subject=…`
    Subject,
    /// `…/environment=…/ksql=lksqlc-…`
    Ksql,
    /// `…/environment=…/flink-region=<cloud>.<region>`
    FlinkRegion,
    /// `organization=…/service-account=sa-…`
    ServiceAccount,
}

impl Scope {
    /// The scope a pattern's shape denotes, if any.
    pub fn of(p: &CrnPattern) -> Option<Scope> {
        Some(match p.shape().as_str() {
            "organization" => Scope::Organization,
            "organization/environment" => Scope::Environment,
            "organization/environment/cloud-cluster" => Scope::KafkaCluster,
            "organization/environment/cloud-cluster/kafka/topic" => Scope::Topic,
            "organization/environment/cloud-cluster/kafka/group" => Scope::Group,
            "organization/environment/cloud-cluster/kafka/transactional-id" => {
                Scope::TransactionalId
            }
            "organization/environment/schema-registry/subject" => Scope::Subject,
            "organization/environment/ksql" => Scope::Ksql,
            "organization/environment/flink-region" => Scope::FlinkRegion,
            "organization/service-account" => Scope::ServiceAccount,
            _ => return None,
        })
    }

    /// An example of a pattern of this shape (the role catalogue shows it).
    pub const fn example(self) -> &'static str {
        match self {
            Scope::Organization => "crn://keygate/organization=org-1",
            Scope::Environment => "crn://keygate/organization=org-1/environment=env-1",
            Scope::KafkaCluster => {
                "crn://keygate/organization=org-1/environment=env-1/cloud-cluster=lkc-1"
            }
            Scope::Topic => "crn://keygate/organization=org-1/environment=env-1/cloud-cluster=lkc-1/kafka=lkc-1/topic=orders*",
            Scope::Group => "crn://keygate/organization=org-1/environment=env-1/cloud-cluster=lkc-1/kafka=lkc-1/group=billing*",
            Scope::TransactionalId => "crn://keygate/organization=org-1/environment=env-1/cloud-cluster=lkc-1/kafka=lkc-1/transactional-id=tx*",
            Scope::Subject => "crn://keygate/organization=org-1/environment=env-1/schema-registry=lsrc-1/subject=orders*",
            Scope::Ksql => "crn://keygate/organization=org-1/environment=env-1/ksql=lksqlc-1",
            Scope::FlinkRegion => {
                "crn://keygate/organization=org-1/environment=env-1/flink-region=aws.us-east-1"
            }
            Scope::ServiceAccount => "crn://keygate/organization=org-1/service-account=sa-1",
        }
    }

    /// Human name for error messages.
    pub const fn name(self) -> &'static str {
        match self {
            Scope::Organization => "organization",
            Scope::Environment => "environment",
            Scope::KafkaCluster => "kafka cluster",
            Scope::Topic => "topic",
            Scope::Group => "consumer group",
            Scope::TransactionalId => "transactional id",
            Scope::Subject => "schema subject",
            Scope::Ksql => "ksqlDB cluster",
            Scope::FlinkRegion => "flink region",
            Scope::ServiceAccount => "service account",
        }
    }
}

/// Why a role binding's pattern does not fit its role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleScopeError {
    /// The pattern's depth or shape is not one the role can be bound at.
    #[error("role {role} can be bound at: {allowed}; `{pattern}` is not one of those")]
    WrongDepth {
        /// role
        role: Role,
        /// allowed scopes
        allowed: String,
        /// the pattern
        pattern: String,
    },
    /// `*` on a role that does not allow prefixes.
    #[error("role {0} cannot be bound with a prefix pattern (`*`)")]
    NoPrefix(Role),
    /// `cloud-cluster` and `kafka` name different clusters.
    #[error("cloud-cluster and kafka segments must name the same cluster")]
    ClusterMismatch,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 15] = [
        Role::OrganizationAdmin,
        Role::AccountAdmin,
        Role::EnvironmentAdmin,
        Role::CloudClusterAdmin,
        Role::ResourceKeyAdmin,
        Role::Operator,
        Role::MetricsViewer,
        Role::ResourceOwner,
        Role::DeveloperRead,
        Role::DeveloperWrite,
        Role::DeveloperManage,
        Role::DataSteward,
        Role::KsqlAdmin,
        Role::FlinkAdmin,
        Role::FlinkDeveloper,
    ];

    /// One line on what the role is for (the role catalogue shows it).
    pub const fn description(self) -> &'static str {
        match self {
            Role::OrganizationAdmin => {
                "Everything, everywhere; the super user (ACLs do not apply)."
            }
            Role::AccountAdmin => "Users, service accounts, identity providers and pools.",
            Role::EnvironmentAdmin => "Everything inside one environment.",
            Role::CloudClusterAdmin => "Everything on one Kafka cluster.",
            Role::ResourceKeyAdmin => "Resource-scoped API keys for any service account.",
            Role::Operator => "Describe everything below an environment or cluster; read-only.",
            Role::MetricsViewer => "Read metrics.",
            Role::ResourceOwner => "Every operation on a resource, and granting roles on it.",
            Role::DeveloperRead => "Read data (topics, groups, subjects).",
            Role::DeveloperWrite => "Write data (topics, transactional ids, subjects).",
            Role::DeveloperManage => "Manage topics, groups and subjects, without data access.",
            Role::DataSteward => "Manage schemas in an environment.",
            Role::KsqlAdmin => "Everything on a ksqlDB cluster.",
            Role::FlinkAdmin => "Everything on Flink in scope.",
            Role::FlinkDeveloper => "Submit Flink jobs and manage its own.",
        }
    }

    /// The role's name as the API spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::OrganizationAdmin => "OrganizationAdmin",
            Role::AccountAdmin => "AccountAdmin",
            Role::EnvironmentAdmin => "EnvironmentAdmin",
            Role::CloudClusterAdmin => "CloudClusterAdmin",
            Role::ResourceKeyAdmin => "ResourceKeyAdmin",
            Role::Operator => "Operator",
            Role::MetricsViewer => "MetricsViewer",
            Role::ResourceOwner => "ResourceOwner",
            Role::DeveloperRead => "DeveloperRead",
            Role::DeveloperWrite => "DeveloperWrite",
            Role::DeveloperManage => "DeveloperManage",
            Role::DataSteward => "DataSteward",
            Role::KsqlAdmin => "KsqlAdmin",
            Role::FlinkAdmin => "FlinkAdmin",
            Role::FlinkDeveloper => "FlinkDeveloper",
        }
    }

    /// Parse a role name (exact spelling).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The scopes this role may be bound at.
    pub fn scopes(self) -> &'static [Scope] {
        use Scope::*;
        match self {
            Role::OrganizationAdmin | Role::AccountAdmin | Role::ResourceKeyAdmin => {
                &[Organization]
            }
            Role::EnvironmentAdmin | Role::DataSteward => &[Environment],
            Role::CloudClusterAdmin => &[KafkaCluster],
            Role::Operator => &[Environment, KafkaCluster],
            Role::MetricsViewer => &[Organization, Environment, KafkaCluster],
            Role::ResourceOwner => &[Topic, Group, TransactionalId, Subject, Ksql, ServiceAccount],
            Role::DeveloperRead => &[Topic, Group, Subject],
            Role::DeveloperWrite => &[Topic, TransactionalId, Subject],
            Role::DeveloperManage => &[Topic, Group, Subject],
            Role::KsqlAdmin => &[Ksql],
            Role::FlinkAdmin | Role::FlinkDeveloper => &[Environment, FlinkRegion],
        }
    }

    /// Whether the role may be bound with a trailing `*`.
    pub const fn allows_prefix(self) -> bool {
        matches!(
            self,
            Role::ResourceOwner
                | Role::DeveloperRead
                | Role::DeveloperWrite
                | Role::DeveloperManage
        )
    }

    /// Check that `pattern` is a place this role can be bound.
    pub fn check_scope(self, pattern: &CrnPattern) -> Result<Scope, RoleScopeError> {
        let scope = Scope::of(pattern).filter(|s| self.scopes().contains(s));
        let Some(scope) = scope else {
            return Err(RoleScopeError::WrongDepth {
                role: self,
                allowed: self
                    .scopes()
                    .iter()
                    .map(|s| s.name())
                    .collect::<Vec<_>>()
                    .join(", "),
                pattern: pattern.to_string(),
            });
        };
        if pattern.is_prefix() && !self.allows_prefix() {
            return Err(RoleScopeError::NoPrefix(self));
        }
        if let (Some(a), Some(b)) = (pattern.get("cloud-cluster"), pattern.get("kafka")) {
            if a != b {
                return Err(RoleScopeError::ClusterMismatch);
            }
        }
        Ok(scope)
    }

    /// Kafka operations this role grants on resources of type `rt` that its pattern
    /// covers, when bound at or above a Kafka cluster (org, environment, cluster) — or
    /// at a resource of that type. Returned as an allow mask (implications included).
    pub fn kafka_mask(self, rt: ResourceType) -> u16 {
        use Operation as O;
        use ResourceType as T;
        match self {
            Role::OrganizationAdmin | Role::EnvironmentAdmin | Role::CloudClusterAdmin => u16::MAX,
            Role::ResourceOwner => match rt {
                T::Cluster => 0,
                _ => u16::MAX,
            },
            Role::Operator => O::Describe.bit() | O::DescribeConfigs.bit(),
            Role::DeveloperRead => match rt {
                T::Topic => O::Read.allow_mask(),
                T::Group => O::Read.allow_mask(),
                _ => 0,
            },
            Role::DeveloperWrite => match rt {
                T::Topic => O::Write.allow_mask(),
                T::TransactionalId => O::Write.allow_mask(),
                _ => 0,
            },
            Role::DeveloperManage => match rt {
                T::Topic => {
                    O::Create.bit()
                        | O::Delete.bit()
                        | O::Alter.bit()
                        | O::AlterConfigs.bit()
                        | O::Describe.bit()
                        | O::DescribeConfigs.bit()
                }
                T::Group => O::Delete.bit() | O::Describe.bit(),
                _ => 0,
            },
            _ => 0,
        }
    }

    /// What a binding at a resource (topic, group, transactional id) grants on the
    /// *cluster* of that resource. DeveloperWrite grants IDEMPOTENT_WRITE, so that an
    /// idempotent producer works with nothing but a topic binding.
    pub fn cluster_side_mask(self) -> u16 {
        match self {
            Role::DeveloperWrite => Operation::IdempotentWrite.bit(),
            _ => 0,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> CrnPattern {
        CrnPattern::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn scopes() {
        let org = p("crn://k/organization=o");
        let env = p("crn://k/organization=o/environment=env-1");
        let topic =
            p("crn://k/organization=o/environment=env-1/cloud-cluster=lkc-1/kafka=lkc-1/topic=t*");
        assert_eq!(
            Role::OrganizationAdmin.check_scope(&org),
            Ok(Scope::Organization)
        );
        assert!(matches!(
            Role::OrganizationAdmin.check_scope(&env),
            Err(RoleScopeError::WrongDepth { .. })
        ));
        assert_eq!(Role::DeveloperRead.check_scope(&topic), Ok(Scope::Topic));
        assert!(matches!(
            Role::EnvironmentAdmin.check_scope(&topic),
            Err(RoleScopeError::WrongDepth { .. })
        ));
        let bad =
            p("crn://k/organization=o/environment=env-1/cloud-cluster=lkc-1/kafka=lkc-2/topic=t");
        assert_eq!(
            Role::DeveloperRead.check_scope(&bad),
            Err(RoleScopeError::ClusterMismatch)
        );
        assert_eq!(
            Role::EnvironmentAdmin.check_scope(&p("crn://k/organization=o/environment=env*")),
            Err(RoleScopeError::NoPrefix(Role::EnvironmentAdmin))
        );
        assert_eq!(Role::parse("DeveloperRead"), Some(Role::DeveloperRead));
        assert_eq!(Role::parse("developerread"), None);
    }
}
