//! Client quotas: created, changed and deleted here (authorized as Kafka authorizes
//! quota changes — ALTER_CONFIGS on the cluster to change, DESCRIBE_CONFIGS to read —
//! and audited in the change's transaction), and compiled into a [`QuotaTable`] the
//! gateway reads on its hot path: which limits a session's principal has on a cluster.

use crate::service::{check_name, with_fresh_id};
use crate::{Caller, Iam, IamError, Result};
use chrono::Utc;
use keygate_core::model::{ClientQuota, DEFAULT_QUOTA_PRINCIPAL};
use keygate_core::{IdKind, Operation};
use rand::rngs::OsRng;
use std::collections::HashMap;
use std::sync::Arc;

/// The rates one quota allows each of its principals, per second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaLimits {
    /// The quota (`cq-…`).
    pub quota_id: String,
    /// Produce bytes.
    pub ingress_byte_rate: u64,
    /// Fetch bytes.
    pub egress_byte_rate: u64,
    /// Requests, when limited.
    pub request_rate: Option<u64>,
}

#[derive(Debug, Default)]
struct ClusterQuotas {
    by_principal: HashMap<String, Arc<QuotaLimits>>,
    default: Option<Arc<QuotaLimits>>,
}

/// Every cluster's quotas, by principal; immutable, swapped whole on a change.
#[derive(Debug, Default)]
pub struct QuotaTable {
    clusters: HashMap<String, ClusterQuotas>,
}

impl QuotaTable {
    /// The table of `quotas`.
    pub fn build(quotas: &[ClientQuota]) -> Self {
        let mut clusters: HashMap<String, ClusterQuotas> = HashMap::new();
        for q in quotas {
            let limits = Arc::new(QuotaLimits {
                quota_id: q.id.clone(),
                ingress_byte_rate: q.ingress_byte_rate,
                egress_byte_rate: q.egress_byte_rate,
                request_rate: q.request_rate,
            });
            let c = clusters.entry(q.cluster_id.clone()).or_default();
            for p in &q.principals {
                if p == DEFAULT_QUOTA_PRINCIPAL {
                    c.default = Some(limits.clone());
                } else {
                    c.by_principal.insert(p.clone(), limits.clone());
                }
            }
        }
        QuotaTable { clusters }
    }

    /// The limits of a session on `cluster` whose principals (account, or pools) are
    /// `names`: the first with a quota of its own, else the cluster's default.
    pub fn limits<'a>(
        &self,
        cluster: &str,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Option<Arc<QuotaLimits>> {
        let c = self.clusters.get(cluster)?;
        names
            .into_iter()
            .find_map(|n| c.by_principal.get(n).cloned())
            .or_else(|| c.default.clone())
    }

    /// Whether no cluster has a quota (the gateway then skips metering entirely).
    pub fn is_empty(&self) -> bool {
        self.clusters.is_empty()
    }
}

/// A client quota to create, or (every field optional) the changes to one.
#[derive(Debug, Clone, Default)]
pub struct QuotaInput {
    /// Name.
    pub display_name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Create only: the cluster.
    pub cluster_id: Option<String>,
    /// Create only: its environment.
    pub environment_id: Option<String>,
    /// Principals (`sa-…`, `u-…`, `pool-…`, `<default>`).
    pub principals: Option<Vec<String>>,
    /// Produce bytes per second (a decimal string in the hosted API).
    pub ingress_byte_rate: Option<String>,
    /// Fetch bytes per second.
    pub egress_byte_rate: Option<String>,
    /// Requests per second (`Some(None)`: remove the limit).
    pub request_rate: Option<Option<u64>>,
}

fn rate(pointer: &str, v: &str) -> Result<u64> {
    v.trim()
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            IamError::invalid(
                pointer,
                "must be a positive whole number of bytes per second",
            )
        })
}

fn principals(v: Vec<String>) -> Result<Vec<String>> {
    if v.is_empty() {
        return Err(IamError::invalid(
            "/spec/principals",
            "needs at least one principal",
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(v.len());
    for (i, p) in v.into_iter().enumerate() {
        let ok = p == DEFAULT_QUOTA_PRINCIPAL
            || [IdKind::ServiceAccount, IdKind::User, IdKind::IdentityPool]
                .iter()
                .any(|k| k.matches(&p));
        if !ok {
            return Err(IamError::invalid(
                format!("/spec/principals/{i}/id"),
                "must be a service account, user or identity pool id, or <default>",
            ));
        }
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

impl Iam {
    /// The compiled quota table (cheap).
    pub fn quotas(&self) -> arc_swap::Guard<Arc<QuotaTable>> {
        self.snapshot().quotas()
    }

    fn quota_crn(&self, q: &ClientQuota) -> String {
        format!(
            "{}/client-quota={}",
            keygate_core::model::Resource::crn_of(
                &self.org_crn(),
                keygate_core::ResourceKind::Kafka,
                &q.environment_id,
                &q.cluster_id
            ),
            q.id
        )
    }

    /// Create a client quota (ALTER_CONFIGS on its cluster).
    pub async fn create_client_quota(&self, c: &Caller, n: QuotaInput) -> Result<ClientQuota> {
        let name = check_name(
            "/spec/display_name",
            n.display_name.as_deref().unwrap_or(""),
        )?;
        let cluster_id = n
            .cluster_id
            .filter(|s| !s.is_empty())
            .ok_or_else(|| IamError::invalid("/spec/cluster/id", "is required"))?;
        let cluster = self.kafka_cluster(&cluster_id).await.map_err(|_| {
            IamError::invalid(
                "/spec/cluster/id",
                format!("no Kafka cluster `{cluster_id}`"),
            )
        })?;
        if let Some(env) = n.environment_id.as_deref().filter(|e| !e.is_empty()) {
            if env != cluster.environment_id {
                return Err(IamError::invalid(
                    "/spec/environment/id",
                    format!("cluster `{cluster_id}` is not in environment `{env}`"),
                ));
            }
        }
        let principals = principals(n.principals.unwrap_or_default())?;
        let throughput = |v: Option<String>, at: &str| rate(at, v.as_deref().unwrap_or(""));
        let ingress = throughput(n.ingress_byte_rate, "/spec/throughput/ingress_byte_rate")?;
        let egress = throughput(n.egress_byte_rate, "/spec/throughput/egress_byte_rate")?;
        self.require_cluster_op(
            c,
            &cluster_id,
            Operation::AlterConfigs,
            "set client quotas on this cluster",
        )?;
        let now = Utc::now();
        let q = with_fresh_id(|| {
            let q = ClientQuota {
                id: IdKind::ClientQuota.generate(&mut OsRng),
                display_name: name.clone(),
                description: n.description.clone().unwrap_or_default(),
                cluster_id: cluster_id.clone(),
                environment_id: cluster.environment_id.clone(),
                principals: principals.clone(),
                ingress_byte_rate: ingress,
                egress_byte_rate: egress,
                request_rate: n.request_rate.flatten().filter(|r| *r > 0),
                created_at: now,
                updated_at: now,
            };
            let rec = self.change(c, "CreateClientQuota", "ClientQuota", self.quota_crn(&q));
            let store = self.store.clone();
            async move { store.create_client_quota(q.clone(), &rec).await.map(|_| q) }
        })
        .await?;
        self.settle().await;
        Ok(q)
    }

    /// One client quota (DESCRIBE_CONFIGS on its cluster; otherwise not found).
    pub async fn get_client_quota(&self, c: &Caller, id: &str) -> Result<ClientQuota> {
        let q = self.store.get_client_quota(id).await?;
        self.require_cluster_op(
            c,
            &q.cluster_id,
            Operation::DescribeConfigs,
            "read client quotas of this cluster",
        )
        .map_err(|_| IamError::NotFound("client quota", id.to_owned()))?;
        Ok(q)
    }

    /// Client quotas the caller may read, of one cluster or all.
    pub async fn list_client_quotas(
        &self,
        c: &Caller,
        cluster: Option<&str>,
    ) -> Result<Vec<ClientQuota>> {
        let authz = self.authz();
        let mut all = self.store.list_client_quotas(cluster).await?;
        all.retain(|q| {
            authz
                .authorize(
                    &q.cluster_id,
                    &c.principal,
                    keygate_core::ResourceType::Cluster,
                    keygate_core::acl::CLUSTER_RESOURCE_NAME,
                    Operation::DescribeConfigs,
                )
                .allowed
        });
        Ok(all)
    }

    /// Change a client quota (ALTER_CONFIGS on its cluster); the cluster stays.
    pub async fn update_client_quota(
        &self,
        c: &Caller,
        id: &str,
        u: QuotaInput,
    ) -> Result<ClientQuota> {
        let mut q = self.get_client_quota(c, id).await?;
        if u.cluster_id.as_deref().is_some_and(|v| v != q.cluster_id) {
            return Err(IamError::invalid(
                "/spec/cluster/id",
                "a quota's cluster cannot change",
            ));
        }
        if let Some(n) = u.display_name {
            q.display_name = check_name("/spec/display_name", &n)?;
        }
        if let Some(d) = u.description {
            q.description = d;
        }
        if let Some(p) = u.principals {
            q.principals = principals(p)?;
        }
        if let Some(v) = u.ingress_byte_rate {
            q.ingress_byte_rate = rate("/spec/throughput/ingress_byte_rate", &v)?;
        }
        if let Some(v) = u.egress_byte_rate {
            q.egress_byte_rate = rate("/spec/throughput/egress_byte_rate", &v)?;
        }
        if let Some(r) = u.request_rate {
            q.request_rate = r.filter(|r| *r > 0);
        }
        self.require_cluster_op(
            c,
            &q.cluster_id,
            Operation::AlterConfigs,
            "change client quotas of this cluster",
        )?;
        q.updated_at = Utc::now();
        let rec = self.change(c, "UpdateClientQuota", "ClientQuota", self.quota_crn(&q));
        self.store.update_client_quota(q.clone(), &rec).await?;
        self.settle().await;
        Ok(q)
    }

    /// Delete a client quota (ALTER_CONFIGS on its cluster).
    pub async fn delete_client_quota(&self, c: &Caller, id: &str) -> Result<()> {
        let q = self.get_client_quota(c, id).await?;
        self.require_cluster_op(
            c,
            &q.cluster_id,
            Operation::AlterConfigs,
            "delete client quotas of this cluster",
        )?;
        let rec = self.change(c, "DeleteClientQuota", "ClientQuota", self.quota_crn(&q));
        self.store.delete_client_quota(id, &rec).await?;
        self.settle().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(id: &str, cluster: &str, principals: &[&str], ingress: u64) -> ClientQuota {
        ClientQuota {
            id: id.into(),
            display_name: id.into(),
            description: String::new(),
            cluster_id: cluster.into(),
            environment_id: "env-1".into(),
            principals: principals.iter().map(|p| (*p).to_owned()).collect(),
            ingress_byte_rate: ingress,
            egress_byte_rate: ingress * 2,
            request_rate: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn a_principals_own_quota_wins_over_the_default() {
        let t = QuotaTable::build(&[
            quota("cq-own", "lkc-1", &["sa-a"], 100),
            quota("cq-default", "lkc-1", &["<default>"], 10),
            quota("cq-other", "lkc-2", &["sa-b"], 5),
        ]);
        let id = |c: &str, names: &[&str]| {
            t.limits(c, names.iter().copied())
                .map(|l| l.quota_id.clone())
        };
        assert_eq!(id("lkc-1", &["sa-a"]).as_deref(), Some("cq-own"));
        assert_eq!(id("lkc-1", &["sa-z"]).as_deref(), Some("cq-default"));
        assert_eq!(id("lkc-2", &["sa-a"]), None, "no default on lkc-2");
        assert_eq!(
            id("lkc-2", &["pool-x", "sa-b"]).as_deref(),
            Some("cq-other")
        );
        assert_eq!(id("lkc-9", &["sa-a"]), None);
        assert!(!t.is_empty());
        assert!(QuotaTable::build(&[]).is_empty());
    }

    #[test]
    fn rates_and_principals_are_checked() {
        assert!(rate("/x", "0").is_err());
        assert!(rate("/x", "-5").is_err());
        assert!(rate("/x", "1e6").is_err());
        assert_eq!(rate("/x", "1048576").ok(), Some(1_048_576));
        assert!(principals(vec![]).is_err());
        assert!(principals(vec!["lkc-abc".into()]).is_err());
        assert_eq!(
            principals(vec!["sa-abc".into(), "sa-abc".into(), "<default>".into()]).ok(),
            Some(vec!["sa-abc".to_owned(), "<default>".to_owned()])
        );
    }
}
