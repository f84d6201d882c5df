//! The compiled per-cluster index: for each principal and resource type, operation
//! masks by literal name, for `*`, and by prefix.
//!
//! ACLs and resource-level role bindings are folded into three bit masks per
//! (principal, type, name): ALLOW bits from ACLs (implications already expanded), ALLOW
//! bits from roles, DENY bits. A decision ORs the masks of every pattern that matches
//! the name and tests one bit. Prefix patterns are looked up by each distinct prefix
//! length present for that principal and type, so the cost is a handful of hash
//! lookups however many ACLs exist — where Kafka's StandardAuthorizer scans every ACL
//! on a matching prefix range.

use crate::FastMap;
use keygate_core::acl::CLUSTER_RESOURCE_NAME;
use keygate_core::crn::CrnPattern;
use keygate_core::role::Scope;
use keygate_core::{AclBinding, PatternType, Permission, Principal, ResourceType, Role};
use std::hash::BuildHasher;

/// Operation masks accumulated for one pattern (or a whole decision).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Masks {
    /// Operations allowed by ACLs.
    pub acl_allow: u16,
    /// Operations allowed by role bindings.
    pub role_allow: u16,
    /// Operations denied by ACLs.
    pub deny: u16,
}

impl Masks {
    /// OR another set of masks into this one.
    pub fn merge(&mut self, other: Masks) {
        self.acl_allow |= other.acl_allow;
        self.role_allow |= other.role_allow;
        self.deny |= other.deny;
    }
}

/// A resource name stored inline in the hash table when it is short (most Kafka names
/// are), so that a lookup costs one cache miss (the bucket) instead of two (the bucket,
/// then a separately allocated string to compare against).
#[derive(Clone)]
enum Name {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<[u8]>),
}

const INLINE: usize = 38;

impl Name {
    fn new(b: &[u8]) -> Self {
        if b.len() <= INLINE {
            let mut bytes = [0u8; INLINE];
            bytes[..b.len()].copy_from_slice(b);
            Name::Inline {
                len: b.len() as u8,
                bytes,
            }
        } else {
            Name::Heap(b.into())
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Name::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Name::Heap(b) => b,
        }
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}
impl Eq for Name {}

impl std::hash::Hash for Name {
    // Must hash exactly like `[u8]` so that lookups by `&[u8]` (via `Borrow`) work.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl std::borrow::Borrow<[u8]> for Name {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

#[derive(Debug, Clone, Default)]
struct TypeIndex {
    literal: FastMap<Name, Masks>,
    any: Masks,
    prefixed: FastMap<Name, Masks>,
    /// Distinct lengths of the keys of `prefixed`, ascending.
    prefix_lens: Vec<usize>,
    /// A Bloom filter over the keys of `prefixed` (16 bits per key, two probes), small
    /// enough to stay in cache: a name usually has a prefix of only one or two of the
    /// lengths present, and the filter answers "no" for the others without touching
    /// the map (whose every probe is a cache miss).
    filter: Vec<u64>,
}

fn probes(h: u64, bits: usize) -> [usize; 2] {
    let mask = bits - 1;
    [(h as usize) & mask, ((h >> 32) as usize) & mask]
}

impl TypeIndex {
    fn masks(&self, name: &str) -> Masks {
        let mut m = self.any;
        if let Some(l) = self.literal.get(name.as_bytes()) {
            m.merge(*l);
        }
        let bytes = name.as_bytes();
        let bits = self.filter.len() * 64;
        for &len in &self.prefix_lens {
            if len > bytes.len() {
                break;
            }
            let key = &bytes[..len];
            let maybe = probes(self.prefixed.hasher().hash_one(key), bits)
                .iter()
                .all(|&b| self.filter[b / 64] & (1 << (b % 64)) != 0);
            if maybe {
                if let Some(p) = self.prefixed.get(key) {
                    m.merge(*p);
                }
            }
        }
        m
    }

    fn entry(&mut self, pattern: PatternType, name: &str) -> &mut Masks {
        match pattern {
            PatternType::Literal if name == "*" => &mut self.any,
            PatternType::Literal => self.literal.entry(Name::new(name.as_bytes())).or_default(),
            PatternType::Prefixed => self.prefixed.entry(Name::new(name.as_bytes())).or_default(),
        }
    }

    fn finish(&mut self) {
        let mut lens: Vec<usize> = self.prefixed.keys().map(|k| k.as_bytes().len()).collect();
        lens.sort_unstable();
        lens.dedup();
        self.prefix_lens = lens;
        let bits = (self.prefixed.len() * 16).next_power_of_two().max(64);
        let mut filter = vec![0u64; bits / 64];
        for key in self.prefixed.keys() {
            for b in probes(self.prefixed.hasher().hash_one(key.as_bytes()), bits) {
                filter[b / 64] |= 1 << (b % 64);
            }
        }
        self.filter = filter;
    }
}

#[derive(Debug, Clone, Default)]
struct PrincipalIndex {
    types: [TypeIndex; 4],
}

fn slot(rt: ResourceType) -> usize {
    match rt {
        ResourceType::Topic => 0,
        ResourceType::Group => 1,
        ResourceType::Cluster => 2,
        ResourceType::TransactionalId => 3,
    }
}

/// The compiled ACLs and resource-level role bindings of one Kafka cluster.
#[derive(Debug, Clone)]
pub struct ClusterIndex {
    cluster_id: String,
    environment_id: String,
    principals: FastMap<Principal, PrincipalIndex>,
    acl_count: usize,
}

impl ClusterIndex {
    /// Compile a cluster's ACLs and the role bindings that name resources inside it.
    /// Bindings at other places are ignored here (org/env/cluster-wide roles are
    /// checked by [`crate::Authorizer`] directly).
    pub fn compile<'a>(
        cluster_id: &str,
        environment_id: &str,
        acls: impl IntoIterator<Item = &'a AclBinding>,
        bindings: impl IntoIterator<Item = (&'a Principal, Role, &'a CrnPattern)>,
    ) -> Self {
        let mut principals: FastMap<Principal, PrincipalIndex> = FastMap::default();
        let mut acl_count = 0;
        for acl in acls {
            acl_count += 1;
            let t = &mut principals.entry(acl.principal.clone()).or_default().types
                [slot(acl.resource_type)];
            let m = t.entry(acl.pattern_type, &acl.resource_name);
            match acl.permission {
                Permission::Allow => m.acl_allow |= acl.operation.allow_mask(),
                Permission::Deny => m.deny |= acl.operation.deny_mask(),
            }
        }
        for (principal, role, pattern) in bindings {
            if pattern.get("cloud-cluster") != Some(cluster_id) {
                continue;
            }
            let rt = match Scope::of(pattern) {
                Some(Scope::Topic) => ResourceType::Topic,
                Some(Scope::Group) => ResourceType::Group,
                Some(Scope::TransactionalId) => ResourceType::TransactionalId,
                _ => continue,
            };
            let (_, value) = pattern.last();
            let (pt, name) = match value.strip_suffix('*') {
                Some("") => (PatternType::Literal, "*"),
                Some(p) => (PatternType::Prefixed, p),
                None => (PatternType::Literal, value),
            };
            let p = principals.entry(principal.clone()).or_default();
            p.types[slot(rt)].entry(pt, name).role_allow |= role.kafka_mask(rt);
            let side = role.cluster_side_mask();
            if side != 0 {
                p.types[slot(ResourceType::Cluster)].any.role_allow |= side;
            }
        }
        for p in principals.values_mut() {
            p.types.iter_mut().for_each(TypeIndex::finish);
        }
        ClusterIndex {
            cluster_id: cluster_id.to_owned(),
            environment_id: environment_id.to_owned(),
            principals,
            acl_count,
        }
    }

    /// The cluster's id.
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// The cluster's environment.
    pub fn environment_id(&self) -> &str {
        &self.environment_id
    }

    /// How many ACLs were compiled in.
    pub fn acl_count(&self) -> usize {
        self.acl_count
    }

    /// Whether any ACL or role binding of `principal` (exactly) allows an operation bit
    /// on some resource of type `rt` in this cluster. A scan of the principal's entries:
    /// only for the rare "any topic" questions (idempotent producers, KIP-679).
    pub fn any_allows(&self, principal: &Principal, rt: ResourceType, bit: u16) -> bool {
        let Some(p) = self.principals.get(principal) else {
            return false;
        };
        let t = &p.types[slot(rt)];
        let allows = |m: &Masks| (m.acl_allow | m.role_allow) & bit != 0;
        allows(&t.any) || t.literal.values().any(allows) || t.prefixed.values().any(allows)
    }

    /// Every entry of `principal` (exactly) in this cluster: resource type, how the
    /// name matches (`None`: every name, `*`), the name or prefix, and its masks.
    /// A scan, for control-plane comparisons of two principals (never the data path).
    pub fn entries<'s>(
        &'s self,
        principal: &Principal,
    ) -> impl Iterator<Item = (ResourceType, Option<PatternType>, &'s [u8], Masks)> + 's {
        const TYPES: [ResourceType; 4] = [
            ResourceType::Topic,
            ResourceType::Group,
            ResourceType::Cluster,
            ResourceType::TransactionalId,
        ];
        let p = self.principals.get(principal);
        TYPES.into_iter().flat_map(move |rt| {
            let t = p.map(|p| &p.types[slot(rt)]);
            let any = t.map(|t| (rt, None, &b"*"[..], t.any));
            let lit = t.into_iter().flat_map(move |t| {
                t.literal
                    .iter()
                    .map(move |(n, m)| (rt, Some(PatternType::Literal), n.as_bytes(), *m))
            });
            let pre = t.into_iter().flat_map(move |t| {
                t.prefixed
                    .iter()
                    .map(move |(n, m)| (rt, Some(PatternType::Prefixed), n.as_bytes(), *m))
            });
            any.into_iter().chain(lit).chain(pre)
        })
    }

    /// The masks that apply to `principal` (exactly; `User:*` is a separate call) for
    /// the resource `(rt, name)`.
    pub fn masks(&self, principal: &Principal, rt: ResourceType, name: &str) -> Masks {
        let Some(p) = self.principals.get(principal) else {
            return Masks::default();
        };
        let t = &p.types[slot(rt)];
        if rt == ResourceType::Cluster && name != CLUSTER_RESOURCE_NAME {
            return t.any;
        }
        t.masks(name)
    }
}
