//! One authorizer for everything: Kafka requests, control-plane calls and (later) HTTP
//! gateway requests.
//!
//! Semantics are Apache Kafka's StandardAuthorizer extended with role bindings
//! (reference/kafka-authz.md, reference/roles.md): any matching DENY ACL wins; else any
//! matching ALLOW ACL or role binding allows; else deny. OrganizationAdmin is the super
//! user and bypasses ACLs, as Kafka's `super.users` do.
//!
//! Everything here is pure and immutable. An [`Authorizer`] is compiled from the
//! bindings and ACLs and then only read; a change produces a new `Authorizer` that
//! shares every untouched cluster's index (`Arc`), so a change to one cluster's ACLs
//! recompiles only that cluster. Callers swap the whole value atomically; readers never
//! lock.
//!
//! Layout: [`index`] holds the per-cluster compiled ACL index (the hot path),
//! [`control`] the control-plane capability checks, [`rank`] the rule that acting on
//! another principal never gives the actor more than it holds.
#![deny(missing_docs)]

pub mod catalogue;
pub mod control;
pub mod index;
pub mod rank;
pub mod service;

pub use control::Capability;
pub use index::{ClusterIndex, Masks};

use keygate_core::crn::CrnPattern;
use keygate_core::role::Scope;
use keygate_core::{Operation, Principal, ResourceType, Role};
use std::collections::HashMap;
use std::sync::Arc;

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Why a decision came out the way it did (for audit records and debugging).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// OrganizationAdmin: ACLs do not apply.
    SuperUser,
    /// A matching DENY ACL.
    DenyAcl,
    /// A matching ALLOW ACL.
    AllowAcl,
    /// A role binding granted it (the role, where known).
    Role(Option<Role>),
    /// Nothing matched.
    NoMatch,
    /// The cluster is unknown to this snapshot.
    UnknownCluster,
}

/// An authorization decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Allowed?
    pub allowed: bool,
    /// Why.
    pub reason: Reason,
}

impl Decision {
    const fn allow(reason: Reason) -> Self {
        Decision {
            allowed: true,
            reason,
        }
    }
    const fn deny(reason: Reason) -> Self {
        Decision {
            allowed: false,
            reason,
        }
    }
}

/// A role binding as the authorizer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The role.
    pub role: Role,
    /// Where it is bound.
    pub pattern: CrnPattern,
    /// The scope (shape) of the pattern, computed once.
    pub scope: Scope,
}

/// What one principal holds through role bindings, prepared for fast data-plane checks.
#[derive(Debug, Clone, Default)]
struct PrincipalGrants {
    /// Every binding (control-plane checks walk these; they are few per principal).
    all: Vec<Grant>,
    /// OrganizationAdmin anywhere.
    super_user: bool,
    /// Environment-scoped roles with a Kafka meaning: (environment id, role).
    env_roles: Vec<(String, Role)>,
    /// Cluster-scoped roles: (cluster id, role).
    cluster_roles: Vec<(String, Role)>,
    /// Organization-scoped roles with a Kafka meaning (other than super user).
    org_roles: Vec<Role>,
}

/// The compiled authorization state of a deployment.
#[derive(Debug, Clone)]
pub struct Authorizer {
    org: Arc<CrnPattern>,
    grants: Arc<FastMap<Principal, PrincipalGrants>>,
    clusters: Arc<FastMap<String, Arc<ClusterIndex>>>,
}

impl Authorizer {
    /// An authorizer with no bindings and no clusters, under `org`'s CRN.
    pub fn empty(org: CrnPattern) -> Self {
        Authorizer {
            org: Arc::new(org),
            grants: Arc::default(),
            clusters: Arc::default(),
        }
    }

    /// The organization CRN every pattern lives under.
    pub fn org_crn(&self) -> &CrnPattern {
        &self.org
    }

    /// Replace every role binding. Cluster indexes are not touched: resource-level
    /// bindings of a cluster are compiled into its index by [`ClusterIndex::compile`]
    /// (callers recompile the clusters whose resource-level bindings changed).
    pub fn with_bindings<'a>(
        &self,
        bindings: impl IntoIterator<Item = (&'a Principal, Role, &'a CrnPattern)>,
    ) -> Self {
        let mut grants: FastMap<Principal, PrincipalGrants> = FastMap::default();
        for (principal, role, pattern) in bindings {
            let Some(scope) = Scope::of(pattern) else {
                continue;
            };
            let g = grants.entry(principal.clone()).or_default();
            match (role, scope) {
                (Role::OrganizationAdmin, _) => g.super_user = true,
                (_, Scope::Organization) => g.org_roles.push(role),
                (_, Scope::Environment) => {
                    if let Some(env) = pattern.get("environment") {
                        g.env_roles.push((env.to_owned(), role));
                    }
                }
                (_, Scope::KafkaCluster) => {
                    if let Some(c) = pattern.get("cloud-cluster") {
                        g.cluster_roles.push((c.to_owned(), role));
                    }
                }
                _ => {}
            }
            g.all.push(Grant {
                role,
                pattern: pattern.clone(),
                scope,
            });
        }
        Authorizer {
            org: self.org.clone(),
            grants: Arc::new(grants),
            clusters: self.clusters.clone(),
        }
    }

    /// This authorizer with one cluster's index replaced (or added).
    pub fn with_cluster(&self, index: ClusterIndex) -> Self {
        let mut clusters = (*self.clusters).clone();
        clusters.insert(index.cluster_id().to_owned(), Arc::new(index));
        Authorizer {
            org: self.org.clone(),
            grants: self.grants.clone(),
            clusters: Arc::new(clusters),
        }
    }

    /// This authorizer with many cluster indexes replaced at once (one map copy).
    pub fn with_clusters(&self, indexes: impl IntoIterator<Item = ClusterIndex>) -> Self {
        let mut clusters = (*self.clusters).clone();
        for index in indexes {
            clusters.insert(index.cluster_id().to_owned(), Arc::new(index));
        }
        Authorizer {
            org: self.org.clone(),
            grants: self.grants.clone(),
            clusters: Arc::new(clusters),
        }
    }

    /// This authorizer without a cluster.
    pub fn without_cluster(&self, cluster_id: &str) -> Self {
        let mut clusters = (*self.clusters).clone();
        clusters.remove(cluster_id);
        Authorizer {
            org: self.org.clone(),
            grants: self.grants.clone(),
            clusters: Arc::new(clusters),
        }
    }

    /// A cluster's compiled index.
    pub fn cluster(&self, cluster_id: &str) -> Option<&Arc<ClusterIndex>> {
        self.clusters.get(cluster_id)
    }

    /// The role bindings a principal holds (directly).
    pub fn grants_of(&self, principal: &Principal) -> &[Grant] {
        self.grants
            .get(principal)
            .map(|g| g.all.as_slice())
            .unwrap_or(&[])
    }

    /// Whether `principal` is an OrganizationAdmin.
    pub fn is_super_user(&self, principal: &Principal) -> bool {
        self.grants.get(principal).is_some_and(|g| g.super_user)
    }

    /// Decide whether `principal` may perform `op` on the Kafka resource `(rt, name)`
    /// of cluster `cluster_id`. `User:*` is always considered as well.
    ///
    /// This is the hot path of the Kafka gateway: a few hash lookups, no allocation,
    /// no lock.
    pub fn authorize(
        &self,
        cluster_id: &str,
        principal: &Principal,
        rt: ResourceType,
        name: &str,
        op: Operation,
    ) -> Decision {
        let Some(index) = self.clusters.get(cluster_id) else {
            return Decision::deny(Reason::UnknownCluster);
        };
        let grants = self.grants.get(principal);
        if grants.is_some_and(|g| g.super_user) {
            return Decision::allow(Reason::SuperUser);
        }
        let bit = op.bit();
        let mut m = index.masks(principal, rt, name);
        if !matches!(principal, Principal::AnyUser) {
            m.merge(index.masks(&Principal::AnyUser, rt, name));
        }
        if m.deny & bit != 0 {
            return Decision::deny(Reason::DenyAcl);
        }
        if m.acl_allow & bit != 0 {
            return Decision::allow(Reason::AllowAcl);
        }
        if m.role_allow & bit != 0 {
            return Decision::allow(Reason::Role(None));
        }
        if let Some(g) = grants {
            if let Some(role) = scope_role(g, index, rt, bit) {
                return Decision::allow(Reason::Role(Some(role)));
            }
        }
        Decision::deny(Reason::NoMatch)
    }
}

impl Authorizer {
    /// Whether `principal` may perform `op` on *some* resource of type `rt` in the
    /// cluster (Kafka's `authorizeByResourceType`, used for idempotent producers by
    /// KIP-679). A DENY of `op` on every name (`*`) wins; DENYs of narrower patterns
    /// are not subtracted, as an ALLOW elsewhere may still apply.
    pub fn authorize_any(
        &self,
        cluster_id: &str,
        principal: &Principal,
        rt: ResourceType,
        op: Operation,
    ) -> bool {
        let Some(index) = self.clusters.get(cluster_id) else {
            return false;
        };
        let grants = self.grants.get(principal);
        if grants.is_some_and(|g| g.super_user) {
            return true;
        }
        let bit = op.bit();
        let mut everything = index.masks(principal, rt, "*");
        everything.merge(index.masks(&Principal::AnyUser, rt, "*"));
        if everything.deny & bit != 0 {
            return false;
        }
        index.any_allows(principal, rt, bit)
            || index.any_allows(&Principal::AnyUser, rt, bit)
            || grants.is_some_and(|g| scope_role(g, index, rt, bit).is_some())
    }
}

/// A role bound at the organization, the cluster's environment or the cluster that
/// grants `bit` on resources of type `rt`.
fn scope_role(
    g: &PrincipalGrants,
    index: &ClusterIndex,
    rt: ResourceType,
    bit: u16,
) -> Option<Role> {
    let grants = |r: &Role| r.kafka_mask(rt) & bit != 0;
    g.org_roles
        .iter()
        .find(|r| grants(r))
        .or_else(|| {
            g.env_roles
                .iter()
                .find(|(e, r)| e == index.environment_id() && grants(r))
                .map(|(_, r)| r)
        })
        .or_else(|| {
            g.cluster_roles
                .iter()
                .find(|(c, r)| c == index.cluster_id() && grants(r))
                .map(|(_, r)| r)
        })
        .copied()
}
