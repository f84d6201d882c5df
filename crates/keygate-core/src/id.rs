//! Entity ids: a fixed prefix plus random lower-case base32 (never a sequence, so ids
//! leak nothing about how many entities exist or in which order they were made).

use rand::RngCore;

const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
/// Random characters after the prefix: 40 bits, enough that collisions are rare; the
/// store still retries on a primary-key conflict.
pub const ID_RANDOM_LEN: usize = 8;

/// The kinds of entity that carry a prefixed id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdKind {
    /// `org-`
    Organization,
    /// `env-`
    Environment,
    /// `lkc-` a Kafka cluster
    KafkaCluster,
    /// `lsrc-` a Schema Registry
    SchemaRegistry,
    /// `lksqlc-` a ksqlDB cluster
    KsqlCluster,
    /// `u-` a user account
    User,
    /// `sa-` a service account
    ServiceAccount,
    /// `rb-` a role binding
    RoleBinding,
    /// `acl-` an ACL (internal id; Kafka addresses ACLs by content)
    Acl,
    /// `op-` an identity provider
    IdentityProvider,
    /// `pool-` an identity pool
    IdentityPool,
    /// `group-` a group of users
    Group,
    /// `cq-` a client quota
    ClientQuota,
}

impl IdKind {
    /// The id prefix, including the dash.
    pub const fn prefix(self) -> &'static str {
        match self {
            IdKind::Organization => "org-",
            IdKind::Environment => "env-",
            IdKind::KafkaCluster => "lkc-",
            IdKind::SchemaRegistry => "lsrc-",
            IdKind::KsqlCluster => "lksqlc-",
            IdKind::User => "u-",
            IdKind::ServiceAccount => "sa-",
            IdKind::RoleBinding => "rb-",
            IdKind::Acl => "acl-",
            IdKind::IdentityProvider => "op-",
            IdKind::IdentityPool => "pool-",
            IdKind::Group => "group-",
            IdKind::ClientQuota => "cq-",
        }
    }

    /// A fresh random id of this kind.
    pub fn generate(self, rng: &mut impl RngCore) -> String {
        let mut s = String::with_capacity(self.prefix().len() + ID_RANDOM_LEN);
        s.push_str(self.prefix());
        for _ in 0..ID_RANDOM_LEN {
            s.push(BASE32[(rng.next_u32() % 32) as usize] as char);
        }
        s
    }

    /// Whether `s` looks like an id of this kind (prefix + 1..=32 base32/digit chars).
    /// Ids made elsewhere (e.g. imported) may be longer or use digits; accept those.
    pub fn matches(self, s: &str) -> bool {
        s.strip_prefix(self.prefix()).is_some_and(|rest| {
            !rest.is_empty()
                && rest.len() <= 32
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
    }

    /// The kind an id belongs to, from its prefix.
    pub fn of(s: &str) -> Option<IdKind> {
        // Longest prefixes first: "lksqlc-" must not be read as something shorter.
        [
            IdKind::KsqlCluster,
            IdKind::SchemaRegistry,
            IdKind::KafkaCluster,
            IdKind::Organization,
            IdKind::Environment,
            IdKind::ServiceAccount,
            IdKind::RoleBinding,
            IdKind::Acl,
            IdKind::IdentityProvider,
            IdKind::IdentityPool,
            IdKind::Group,
            IdKind::ClientQuota,
            IdKind::User,
        ]
        .into_iter()
        .find(|k| k.matches(s))
    }
}

/// The kinds of resource an API key can be scoped to, and that keygate fronts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// A Kafka cluster (`lkc-`), fronted by the Kafka gateway.
    Kafka,
    /// A Schema Registry (`lsrc-`).
    SchemaRegistry,
    /// A ksqlDB cluster (`lksqlc-`).
    Ksql,
    /// A Flink region (`<cloud>.<region>` within an environment).
    Flink,
    /// Tableflow (one per environment).
    Tableflow,
}

impl ResourceKind {
    /// Every kind, in display order.
    pub const ALL: [ResourceKind; 5] = [
        ResourceKind::Kafka,
        ResourceKind::SchemaRegistry,
        ResourceKind::Ksql,
        ResourceKind::Flink,
        ResourceKind::Tableflow,
    ];

    /// The stable lower-case name used in storage and the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Kafka => "kafka",
            ResourceKind::SchemaRegistry => "schema-registry",
            ResourceKind::Ksql => "ksql",
            ResourceKind::Flink => "flink",
            ResourceKind::Tableflow => "tableflow",
        }
    }

    /// Parse [`ResourceKind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The REST `kind` of such a resource.
    pub const fn api_kind(self) -> &'static str {
        match self {
            ResourceKind::Kafka => "Cluster",
            ResourceKind::SchemaRegistry => "SchemaRegistry",
            ResourceKind::Ksql => "KsqlCluster",
            ResourceKind::Flink => "FlinkRegion",
            ResourceKind::Tableflow => "Tableflow",
        }
    }

    /// For kinds with generated ids, the id kind.
    pub const fn id_kind(self) -> Option<IdKind> {
        match self {
            ResourceKind::Kafka => Some(IdKind::KafkaCluster),
            ResourceKind::SchemaRegistry => Some(IdKind::SchemaRegistry),
            ResourceKind::Ksql => Some(IdKind::KsqlCluster),
            ResourceKind::Flink | ResourceKind::Tableflow => None,
        }
    }
}

/// Whether `s` is a Flink region name: `<cloud>.<region>`, e.g. `aws.us-east-1`.
pub fn is_flink_region(s: &str) -> bool {
    let Some((cloud, region)) = s.split_once('.') else {
        return false;
    };
    let ok = |p: &str| {
        !p.is_empty()
            && p.len() <= 32
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    ok(cloud) && ok(region)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_match_their_kind_only() {
        let mut rng = rand::thread_rng();
        for kind in [
            IdKind::KafkaCluster,
            IdKind::KsqlCluster,
            IdKind::SchemaRegistry,
            IdKind::User,
            IdKind::ClientQuota,
        ] {
            let id = kind.generate(&mut rng);
            assert!(kind.matches(&id), "{id}");
            assert_eq!(IdKind::of(&id), Some(kind), "{id}");
        }
        assert!(!IdKind::ServiceAccount.matches("sa-"));
        assert!(!IdKind::ServiceAccount.matches("sa-ABC"));
        assert!(!IdKind::ServiceAccount.matches("u-abc"));
    }

    #[test]
    fn flink_regions() {
        assert!(is_flink_region("aws.us-east-1"));
        assert!(!is_flink_region("aws"));
        assert!(!is_flink_region("aws.US"));
        assert!(!is_flink_region(".x"));
    }
}
