//! Kafka ACL vocabulary: resource types, operations, pattern types, permissions, and
//! which operations are valid for which resource type (as Apache Kafka defines them).

use crate::principal::Principal;
use std::fmt;

/// Kafka resource types keygate authorizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceType {
    /// A topic.
    Topic,
    /// A consumer group.
    Group,
    /// The cluster itself (name `kafka-cluster`).
    Cluster,
    /// A transactional id.
    TransactionalId,
}

/// The one name a CLUSTER resource has.
pub const CLUSTER_RESOURCE_NAME: &str = "kafka-cluster";

impl ResourceType {
    /// Every resource type.
    pub const ALL: [ResourceType; 4] = [
        ResourceType::Topic,
        ResourceType::Group,
        ResourceType::Cluster,
        ResourceType::TransactionalId,
    ];

    /// Upper-case REST name (`TOPIC`, `GROUP`, `CLUSTER`, `TRANSACTIONAL_ID`).
    pub const fn as_str(self) -> &'static str {
        match self {
            ResourceType::Topic => "TOPIC",
            ResourceType::Group => "GROUP",
            ResourceType::Cluster => "CLUSTER",
            ResourceType::TransactionalId => "TRANSACTIONAL_ID",
        }
    }

    /// Parse the REST name (case-insensitive; `-` and `_` are alike).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.to_ascii_uppercase().replace('-', "_");
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Kafka's wire code for the type (DescribeAcls and friends).
    pub const fn kafka_code(self) -> i8 {
        match self {
            ResourceType::Topic => 2,
            ResourceType::Group => 3,
            ResourceType::Cluster => 4,
            ResourceType::TransactionalId => 5,
        }
    }

    /// Operations Kafka accepts in an ACL for this type.
    pub fn valid_operations(self) -> &'static [Operation] {
        use Operation::*;
        match self {
            ResourceType::Topic => &[
                All,
                Read,
                Write,
                Create,
                Delete,
                Alter,
                Describe,
                DescribeConfigs,
                AlterConfigs,
            ],
            ResourceType::Group => &[All, Read, Delete, Describe],
            ResourceType::Cluster => &[
                All,
                Create,
                ClusterAction,
                DescribeConfigs,
                AlterConfigs,
                IdempotentWrite,
                Alter,
                Describe,
            ],
            ResourceType::TransactionalId => &[All, Describe, Write],
        }
    }

    /// The CRN segment key of a named resource of this type.
    pub const fn crn_key(self) -> &'static str {
        match self {
            ResourceType::Topic => "topic",
            ResourceType::Group => "group",
            ResourceType::Cluster => "kafka",
            ResourceType::TransactionalId => "transactional-id",
        }
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Kafka ACL operations. `All` matches every operation in an ACL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Operation {
    /// ALL
    All = 0,
    /// READ
    Read = 1,
    /// WRITE
    Write = 2,
    /// CREATE
    Create = 3,
    /// DELETE
    Delete = 4,
    /// ALTER
    Alter = 5,
    /// DESCRIBE
    Describe = 6,
    /// CLUSTER_ACTION
    ClusterAction = 7,
    /// DESCRIBE_CONFIGS
    DescribeConfigs = 8,
    /// ALTER_CONFIGS
    AlterConfigs = 9,
    /// IDEMPOTENT_WRITE
    IdempotentWrite = 10,
}

impl Operation {
    /// Every operation.
    pub const ALL_OPS: [Operation; 11] = [
        Operation::All,
        Operation::Read,
        Operation::Write,
        Operation::Create,
        Operation::Delete,
        Operation::Alter,
        Operation::Describe,
        Operation::ClusterAction,
        Operation::DescribeConfigs,
        Operation::AlterConfigs,
        Operation::IdempotentWrite,
    ];

    /// Upper-case REST name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Operation::All => "ALL",
            Operation::Read => "READ",
            Operation::Write => "WRITE",
            Operation::Create => "CREATE",
            Operation::Delete => "DELETE",
            Operation::Alter => "ALTER",
            Operation::Describe => "DESCRIBE",
            Operation::ClusterAction => "CLUSTER_ACTION",
            Operation::DescribeConfigs => "DESCRIBE_CONFIGS",
            Operation::AlterConfigs => "ALTER_CONFIGS",
            Operation::IdempotentWrite => "IDEMPOTENT_WRITE",
        }
    }

    /// Parse the REST name (case-insensitive; `-` and `_` are alike).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_uppercase().replace('-', "_");
        Self::ALL_OPS.into_iter().find(|o| o.as_str() == s)
    }

    /// One bit per operation, for masks.
    pub const fn bit(self) -> u16 {
        1 << (self as u8)
    }

    /// Kafka's wire code.
    pub const fn kafka_code(self) -> i8 {
        // Kafka: UNKNOWN 0, ANY 1, ALL 2, READ 3, WRITE 4, CREATE 5, DELETE 6, ALTER 7,
        // DESCRIBE 8, CLUSTER_ACTION 9, DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11,
        // IDEMPOTENT_WRITE 12.
        self as i8 + 2
    }

    /// The mask an ALLOW of this operation grants: the operation plus what it implies
    /// (READ/WRITE/DELETE/ALTER ⇒ DESCRIBE; ALTER_CONFIGS ⇒ DESCRIBE_CONFIGS; ALL ⇒
    /// everything).
    pub const fn allow_mask(self) -> u16 {
        match self {
            Operation::All => u16::MAX,
            Operation::Read | Operation::Write | Operation::Delete | Operation::Alter => {
                self.bit() | Operation::Describe.bit()
            }
            Operation::AlterConfigs => self.bit() | Operation::DescribeConfigs.bit(),
            _ => self.bit(),
        }
    }

    /// The mask a DENY of this operation takes away: only itself (ALL: everything).
    /// DENY implies nothing, as in Kafka.
    pub const fn deny_mask(self) -> u16 {
        match self {
            Operation::All => u16::MAX,
            _ => self.bit(),
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an ACL's resource name matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PatternType {
    /// Exactly the name (`*` as a name matches every name).
    Literal,
    /// Every name starting with the pattern.
    Prefixed,
}

impl PatternType {
    /// REST name.
    pub const fn as_str(self) -> &'static str {
        match self {
            PatternType::Literal => "LITERAL",
            PatternType::Prefixed => "PREFIXED",
        }
    }
    /// Parse the REST name (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "LITERAL" => Some(PatternType::Literal),
            "PREFIXED" => Some(PatternType::Prefixed),
            _ => None,
        }
    }
    /// Kafka's wire code.
    pub const fn kafka_code(self) -> i8 {
        match self {
            PatternType::Literal => 3,
            PatternType::Prefixed => 4,
        }
    }
}

/// ALLOW or DENY.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    /// ALLOW
    Allow,
    /// DENY
    Deny,
}

impl Permission {
    /// REST name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Permission::Allow => "ALLOW",
            Permission::Deny => "DENY",
        }
    }
    /// Parse the REST name (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "ALLOW" => Some(Permission::Allow),
            "DENY" => Some(Permission::Deny),
            _ => None,
        }
    }
    /// Kafka's wire code.
    pub const fn kafka_code(self) -> i8 {
        match self {
            Permission::Deny => 2,
            Permission::Allow => 3,
        }
    }
}

/// One ACL of one cluster. The host is always `*`: keygate has no per-host ACLs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclBinding {
    /// The principal it applies to (`User:*` for everyone).
    pub principal: Principal,
    /// The resource type.
    pub resource_type: ResourceType,
    /// The resource name or prefix (`*` with LITERAL: every name).
    pub resource_name: String,
    /// LITERAL or PREFIXED.
    pub pattern_type: PatternType,
    /// The operation.
    pub operation: Operation,
    /// ALLOW or DENY.
    pub permission: Permission,
}

/// Why an ACL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    /// The operation does not exist for that resource type.
    #[error("operation {op} is not valid for resource type {rt}; valid: {valid}")]
    InvalidOperation {
        /// operation
        op: Operation,
        /// resource type
        rt: ResourceType,
        /// the valid ones, comma separated
        valid: String,
    },
    /// CLUSTER ACLs must name `kafka-cluster` literally.
    #[error("a CLUSTER ACL must have resource_name `kafka-cluster` and pattern_type LITERAL")]
    ClusterName,
    /// Empty or overlong or malformed resource name.
    #[error("resource_name must be 1 to 249 printable characters")]
    Name,
    /// `*` with PREFIXED makes no sense.
    #[error("a PREFIXED ACL cannot use `*` as its name")]
    PrefixedWildcard,
    /// Group principals need group support; not in ACLs yet.
    #[error("ACL principals must be `User:<id>` or `User:*`")]
    Principal,
}

impl AclBinding {
    /// Check the binding the way Kafka's CreateAcls does.
    pub fn validate(&self) -> Result<(), AclError> {
        if !self
            .resource_type
            .valid_operations()
            .contains(&self.operation)
        {
            let valid = self
                .resource_type
                .valid_operations()
                .iter()
                .map(|o| o.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(AclError::InvalidOperation {
                op: self.operation,
                rt: self.resource_type,
                valid,
            });
        }
        if matches!(self.principal, Principal::Group(_)) {
            return Err(AclError::Principal);
        }
        if self.resource_type == ResourceType::Cluster
            && (self.resource_name != CLUSTER_RESOURCE_NAME
                || self.pattern_type != PatternType::Literal)
        {
            return Err(AclError::ClusterName);
        }
        if self.resource_name.is_empty()
            || self.resource_name.len() > 249
            || self.resource_name.chars().any(char::is_control)
        {
            return Err(AclError::Name);
        }
        if self.pattern_type == PatternType::Prefixed && self.resource_name == "*" {
            return Err(AclError::PrefixedWildcard);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implications() {
        assert!(Operation::Read.allow_mask() & Operation::Describe.bit() != 0);
        assert!(Operation::AlterConfigs.allow_mask() & Operation::DescribeConfigs.bit() != 0);
        assert!(Operation::Read.deny_mask() & Operation::Describe.bit() == 0);
        assert_eq!(Operation::All.kafka_code(), 2);
        assert_eq!(Operation::IdempotentWrite.kafka_code(), 12);
    }

    #[test]
    fn validation() {
        let mut acl = AclBinding {
            principal: Principal::user("sa-1"),
            resource_type: ResourceType::Group,
            resource_name: "g".into(),
            pattern_type: PatternType::Literal,
            operation: Operation::Write,
            permission: Permission::Allow,
        };
        assert!(matches!(
            acl.validate(),
            Err(AclError::InvalidOperation { .. })
        ));
        acl.resource_type = ResourceType::Cluster;
        acl.operation = Operation::Alter;
        assert_eq!(acl.validate(), Err(AclError::ClusterName));
        acl.resource_name = CLUSTER_RESOURCE_NAME.into();
        assert_eq!(acl.validate(), Ok(()));
    }
}
