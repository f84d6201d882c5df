//! `keygate kafka quota …`: client quotas, in the hosted CLI's verbs and flags
//! (`--ingress`, `--egress` in bytes per second, `--principals`, `--add-principals`,
//! `--remove-principals`), plus keygate's `--request-rate`.

use super::client::enc;
use super::context;
use super::output::{print_done, print_list, print_object, Col, Format};
use anyhow::Context;
use clap::Subcommand;
use serde_json::{json, Value};

#[derive(Debug, Subcommand)]
pub(crate) enum QuotaCmd {
    /// Create a client quota: byte rates per principal on one cluster.
    Create {
        /// Name.
        #[arg(long)]
        name: String,
        /// Produce bytes per second, per principal.
        #[arg(long)]
        ingress: u64,
        /// Fetch bytes per second, per principal.
        #[arg(long)]
        egress: u64,
        /// Service accounts, users or identity pools (comma-separated), or `<default>`.
        #[arg(long, value_delimiter = ',', required = true)]
        principals: Vec<String>,
        /// The cluster (default: the one in use).
        #[arg(long)]
        cluster: Option<String>,
        /// The cluster's environment (default: the one in use).
        #[arg(long)]
        environment: Option<String>,
        #[arg(long, default_value = "")]
        description: String,
        /// Requests per second, per principal (keygate extension).
        #[arg(long)]
        request_rate: Option<u64>,
    },
    /// List client quotas (of a cluster; of a principal).
    List {
        #[arg(long)]
        cluster: Option<String>,
        #[arg(long)]
        environment: Option<String>,
        /// Only quotas naming this principal.
        #[arg(long)]
        principal: Option<String>,
    },
    /// Describe one.
    Describe { id: String },
    /// Change one.
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        ingress: Option<u64>,
        #[arg(long)]
        egress: Option<u64>,
        #[arg(long, value_delimiter = ',')]
        add_principals: Vec<String>,
        #[arg(long, value_delimiter = ',')]
        remove_principals: Vec<String>,
        /// Requests per second (0: no limit).
        #[arg(long)]
        request_rate: Option<u64>,
    },
    /// Delete one.
    Delete { id: String },
}

const COLS: &[Col] = &[
    ("ID", "/id"),
    ("Name", "/spec/display_name"),
    ("Cluster", "/spec/cluster/id"),
    ("Ingress (B/s)", "/spec/throughput/ingress_byte_rate"),
    ("Egress (B/s)", "/spec/throughput/egress_byte_rate"),
    ("Request rate", "/spec/request_rate"),
    ("Principals", "/principal_ids"),
];

const BASE: &str = "/kafka-quotas/v1/client-quotas";

/// The quota with its principals' ids in one column.
fn shown(mut v: Value) -> Value {
    let ids: Vec<&str> = v["spec"]["principals"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p["id"].as_str()).collect())
        .unwrap_or_default();
    v["principal_ids"] = json!(ids.join(","));
    v
}

fn ids(v: &Value) -> Vec<String> {
    v["spec"]["principals"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn quota(c: QuotaCmd, fmt: Format) -> anyhow::Result<()> {
    let cl = super::client()?;
    match c {
        QuotaCmd::Create {
            name,
            ingress,
            egress,
            principals,
            cluster,
            environment,
            description,
            request_rate,
        } => {
            let cluster = cluster
                .or_else(|| context::in_use(|c| c.kafka_cluster.clone()))
                .context("give --cluster (or `keygate kafka cluster use ID`)")?;
            let environment =
                match environment.or_else(|| context::in_use(|c| c.environment.clone())) {
                    Some(e) => e,
                    None => cl.get(&format!("/cmk/v2/clusters/{}", enc(&cluster)))?["spec"]
                        ["environment"]["id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                };
            let mut spec = json!({
                "display_name": name,
                "description": description,
                "throughput": {"ingress_byte_rate": ingress.to_string(), "egress_byte_rate": egress.to_string()},
                "cluster": {"id": cluster},
                "environment": {"id": environment},
                "principals": principals.iter().map(|p| json!({"id": p})).collect::<Vec<_>>(),
            });
            if let Some(r) = request_rate {
                spec["request_rate"] = json!(r);
            }
            print_object(fmt, &shown(cl.post(BASE, &json!({ "spec": spec }))?), COLS)
        }
        QuotaCmd::List {
            cluster,
            environment,
            principal,
        } => {
            let mut q = Vec::new();
            if let Some(c) = cluster.or_else(|| context::in_use(|c| c.kafka_cluster.clone())) {
                q.push(format!("spec.cluster={}", enc(&c)));
            }
            if let Some(e) = environment {
                q.push(format!("environment={}", enc(&e)));
            }
            let path = if q.is_empty() {
                BASE.to_owned()
            } else {
                format!("{BASE}?{}", q.join("&"))
            };
            let items: Vec<Value> = cl
                .get_all(&path)?
                .into_iter()
                .filter(|v| principal.as_ref().is_none_or(|p| ids(v).contains(p)))
                .map(shown)
                .collect();
            print_list(fmt, &items, COLS)
        }
        QuotaCmd::Describe { id } => {
            print_object(fmt, &shown(cl.get(&format!("{BASE}/{}", enc(&id)))?), COLS)
        }
        QuotaCmd::Update {
            id,
            name,
            description,
            ingress,
            egress,
            add_principals,
            remove_principals,
            request_rate,
        } => {
            let path = format!("{BASE}/{}", enc(&id));
            let current = cl.get(&path)?;
            let mut spec = json!({ "environment": { "id": current["spec"]["environment"]["id"] } });
            if let Some(n) = name {
                spec["display_name"] = json!(n);
            }
            if let Some(d) = description {
                spec["description"] = json!(d);
            }
            if ingress.is_some() || egress.is_some() {
                let t = &current["spec"]["throughput"];
                spec["throughput"] = json!({
                    "ingress_byte_rate": ingress.map_or_else(|| t["ingress_byte_rate"].clone(), |v| json!(v.to_string())),
                    "egress_byte_rate": egress.map_or_else(|| t["egress_byte_rate"].clone(), |v| json!(v.to_string())),
                });
            }
            if !add_principals.is_empty() || !remove_principals.is_empty() {
                let mut p = ids(&current);
                p.retain(|x| !remove_principals.contains(x));
                for a in add_principals {
                    if !p.contains(&a) {
                        p.push(a);
                    }
                }
                spec["principals"] = json!(p.iter().map(|p| json!({"id": p})).collect::<Vec<_>>());
            }
            if let Some(r) = request_rate {
                spec["request_rate"] = if r == 0 { Value::Null } else { json!(r) };
            }
            print_object(
                fmt,
                &shown(cl.patch(&path, &json!({ "spec": spec }))?),
                COLS,
            )
        }
        QuotaCmd::Delete { id } => {
            let v = cl.delete(&format!("{BASE}/{}", enc(&id)))?;
            print_done(fmt, &format!("Deleted client quota \"{id}\"."), &v)
        }
    }
}
