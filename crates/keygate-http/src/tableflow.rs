//! Tableflow: the Iceberg REST catalog API under
//! `/iceberg/catalog/organizations/{org}/environments/{env}`. Namespaces are the
//! environment's Kafka cluster ids and tables are topics, so every decision is the
//! Kafka authorizer's, on those topics — the same ACLs and role bindings that govern
//! the data in Kafka govern its tables. A catalog `prefix` segment after `/v1` (as
//! `GET /v1/config` may advertise) is accepted and kept.
//!
//! | request | needs |
//! |---|---|
//! | `GET /v1/config` | nothing |
//! | `POST /v1/oauth/tokens` | answered by keygate: a Tableflow key and secret for a catalog token |
//! | `GET /v1/namespaces` | nothing; only clusters where the caller may DESCRIBE_CONFIGS some topic |
//! | `POST /v1/namespaces` | the namespace is a cluster of the environment; CREATE on the cluster |
//! | `GET\|HEAD /v1/namespaces/{ns}` | DESCRIBE on some topic of the cluster |
//! | `DELETE /v1/namespaces/{ns}`, `POST …/{ns}/properties` | ALTER on the cluster |
//! | `GET /v1/namespaces/{ns}/tables` | DESCRIBE_CONFIGS on some topic (DeveloperManage, Operator, admins, ResourceOwner — not DeveloperRead); only such tables listed |
//! | `POST /v1/namespaces/{ns}/tables`, `POST …/register` | CREATE on the topic named in the body |
//! | `GET\|HEAD /v1/namespaces/{ns}/tables/{t}` (load), `…/credentials`, `POST …/metrics\|plan\|tasks`, `GET\|DELETE …/plan/{id}` | READ on the topic |
//! | `POST /v1/namespaces/{ns}/tables/{t}` (commit) | WRITE on the topic |
//! | `DELETE /v1/namespaces/{ns}/tables/{t}`, `POST …/{t}/unregister` | DELETE on the topic |
//! | `POST /v1/tables/rename` | DELETE on the source, CREATE on the destination |
//! | `POST /v1/transactions/commit` | WRITE on every table changed |
//! | views and anything else | refused (`404`): not part of Tableflow |

use crate::plan::{BodyCheck, Check, Filter, Plan, Reject};
use axum::http::Method;
use keygate_core::Operation as K;
use serde_json::Value;

const COLLECTIONS: [&str; 6] = [
    "config",
    "oauth",
    "namespaces",
    "tables",
    "transactions",
    "views",
];

/// The segments after `/v1` and the optional prefix, or `None` when the path is not
/// under `/v1`.
pub fn catalog_path(seg: &[String]) -> Option<&[String]> {
    match seg {
        [v1, rest @ ..] if v1 == "v1" => match rest {
            [first, after @ ..] if !COLLECTIONS.contains(&first.as_str()) => Some(after),
            _ => Some(rest),
        },
        _ => None,
    }
}

/// The plan of a request; `is_cluster(ns)` says whether `ns` is a Kafka cluster of the
/// environment.
pub fn plan(
    method: &Method,
    seg: &[String],
    is_cluster: &dyn Fn(&str) -> bool,
) -> Result<Plan, Reject> {
    let Some(rest) = catalog_path(seg) else {
        return Err(Reject::not_found(
            "the Iceberg REST catalog API is under /v1",
        ));
    };
    let s: Vec<&str> = rest.iter().map(String::as_str).collect();
    let cluster = |ns: &str| -> Result<String, Reject> {
        if is_cluster(ns) {
            Ok(ns.to_owned())
        } else {
            Err(Reject::not_found(format!(
                "namespace `{}` does not exist: Tableflow namespaces are the environment's Kafka cluster ids",
                ns.replace('\u{1f}', ".")
            )))
        }
    };
    let topic = |ns: &str, t: &str, op: K| -> Result<Plan, Reject> {
        Ok(Plan::check(
            Check::Topic {
                cluster: cluster(ns)?,
                topic: t.to_owned(),
                op,
            },
            format!("namespace={ns}/table={t}"),
        ))
    };
    let body = |b: BodyCheck| Plan {
        body: Some(b),
        ..Plan::default()
    };
    let m = method.as_str();
    match (m, s.as_slice()) {
        ("GET", ["config"]) => Ok(Plan::default()),
        ("GET", ["namespaces"]) => Ok(Plan::default().filtered(Filter::Namespaces)),
        ("POST", ["namespaces"]) => Ok(body(BodyCheck::CreateNamespace)),
        ("GET" | "HEAD", ["namespaces", ns]) => Ok(Plan::check(
            Check::AnyTopic(cluster(ns)?, K::Describe),
            format!("namespace={ns}"),
        )),
        ("DELETE", ["namespaces", ns]) | ("POST", ["namespaces", ns, "properties"]) => {
            Ok(Plan::check(
                Check::Cluster(cluster(ns)?, K::Alter),
                format!("namespace={ns}"),
            ))
        }
        ("GET", ["namespaces", ns, "tables"]) => Ok(Plan::check(
            Check::AnyTopic(cluster(ns)?, K::DescribeConfigs),
            format!("namespace={ns}"),
        )
        .filtered(Filter::Tables)),
        ("POST", ["namespaces", ns, "tables" | "register"]) => {
            Ok(body(BodyCheck::CreateTable(cluster(ns)?)))
        }
        ("GET" | "HEAD", ["namespaces", ns, "tables", t])
        | ("GET", ["namespaces", ns, "tables", t, "credentials"])
        | ("POST", ["namespaces", ns, "tables", t, "metrics" | "plan" | "tasks"])
        | ("GET" | "DELETE", ["namespaces", ns, "tables", t, "plan", _]) => topic(ns, t, K::Read),
        ("POST", ["namespaces", ns, "tables", t]) => topic(ns, t, K::Write),
        ("DELETE", ["namespaces", ns, "tables", t])
        | ("POST", ["namespaces", ns, "tables", t, "unregister"]) => topic(ns, t, K::Delete),
        ("POST", ["tables", "rename"]) => Ok(body(BodyCheck::RenameTable)),
        ("POST", ["transactions", "commit"]) => Ok(body(BodyCheck::CommitTransaction)),
        _ => Err(Reject::not_found(format!(
            "{m} {} is not part of the Tableflow catalog API",
            crate::path::join(seg)
        ))),
    }
}

/// The checks of a request whose body decides them.
pub fn body_checks(
    b: &BodyCheck,
    json: &Value,
    is_cluster: &dyn Fn(&str) -> bool,
) -> Result<Vec<Check>, Reject> {
    let ns_of = |v: Option<&Value>| -> Result<String, Reject> {
        let parts: Vec<&str> = v
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        match parts.as_slice() {
            [one] if is_cluster(one) => Ok((*one).to_owned()),
            _ => Err(Reject::bad(
                "a Tableflow namespace is one level: a Kafka cluster id of the environment",
            )),
        }
    };
    let name_of = |v: Option<&Value>| -> Result<String, Reject> {
        v.and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| Reject::bad("the table name is missing"))
    };
    let ident = |v: Option<&Value>| -> Result<(String, String), Reject> {
        let v = v.ok_or_else(|| Reject::bad("a table identifier is missing"))?;
        Ok((ns_of(v.get("namespace"))?, name_of(v.get("name"))?))
    };
    let t = |(cluster, topic): (String, String), op: K| Check::Topic { cluster, topic, op };
    Ok(match b {
        BodyCheck::CreateNamespace => {
            vec![Check::Cluster(ns_of(json.get("namespace"))?, K::Create)]
        }
        BodyCheck::CreateTable(ns) => vec![t((ns.clone(), name_of(json.get("name"))?), K::Create)],
        BodyCheck::RenameTable => vec![
            t(ident(json.get("source"))?, K::Delete),
            t(ident(json.get("destination"))?, K::Create),
        ],
        BodyCheck::CommitTransaction => {
            let changes = json
                .get("table-changes")
                .and_then(Value::as_array)
                .filter(|a| !a.is_empty())
                .ok_or_else(|| Reject::bad("table-changes is missing"))?;
            changes
                .iter()
                .map(|c| Ok(t(ident(c.get("identifier"))?, K::Write)))
                .collect::<Result<_, Reject>>()?
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn is_cluster(ns: &str) -> bool {
        ns == "lkc-1"
    }

    fn plan_of(m: &str, path: &str) -> Result<Plan, Reject> {
        let seg = crate::path::segments(path).unwrap_or_else(|e| panic!("{e}"));
        plan(
            &Method::from_bytes(m.as_bytes()).expect("method"),
            &seg,
            &is_cluster,
        )
    }

    fn topic(t: &str, op: K) -> Vec<Check> {
        vec![Check::Topic {
            cluster: "lkc-1".into(),
            topic: t.into(),
            op,
        }]
    }

    /// (method, path, checks, filter, body check)
    type Row = (
        &'static str,
        &'static str,
        Vec<Check>,
        Option<Filter>,
        Option<BodyCheck>,
    );

    /// One row per line of the table in the module docs (with and without a prefix).
    #[test]
    fn every_row_of_the_table() {
        let rows: Vec<Row> = vec![
            ("GET", "/v1/config", vec![], None, None),
            (
                "GET",
                "/v1/namespaces",
                vec![],
                Some(Filter::Namespaces),
                None,
            ),
            (
                "GET",
                "/v1/wh/namespaces",
                vec![],
                Some(Filter::Namespaces),
                None,
            ),
            (
                "POST",
                "/v1/namespaces",
                vec![],
                None,
                Some(BodyCheck::CreateNamespace),
            ),
            (
                "GET",
                "/v1/namespaces/lkc-1",
                vec![Check::AnyTopic("lkc-1".into(), K::Describe)],
                None,
                None,
            ),
            (
                "HEAD",
                "/v1/namespaces/lkc-1",
                vec![Check::AnyTopic("lkc-1".into(), K::Describe)],
                None,
                None,
            ),
            (
                "DELETE",
                "/v1/namespaces/lkc-1",
                vec![Check::Cluster("lkc-1".into(), K::Alter)],
                None,
                None,
            ),
            (
                "POST",
                "/v1/namespaces/lkc-1/properties",
                vec![Check::Cluster("lkc-1".into(), K::Alter)],
                None,
                None,
            ),
            (
                "GET",
                "/v1/namespaces/lkc-1/tables",
                vec![Check::AnyTopic("lkc-1".into(), K::DescribeConfigs)],
                Some(Filter::Tables),
                None,
            ),
            (
                "POST",
                "/v1/namespaces/lkc-1/tables",
                vec![],
                None,
                Some(BodyCheck::CreateTable("lkc-1".into())),
            ),
            (
                "POST",
                "/v1/namespaces/lkc-1/register",
                vec![],
                None,
                Some(BodyCheck::CreateTable("lkc-1".into())),
            ),
            (
                "GET",
                "/v1/namespaces/lkc-1/tables/orders",
                topic("orders", K::Read),
                None,
                None,
            ),
            (
                "HEAD",
                "/v1/wh/namespaces/lkc-1/tables/orders",
                topic("orders", K::Read),
                None,
                None,
            ),
            (
                "GET",
                "/v1/namespaces/lkc-1/tables/orders/credentials",
                topic("orders", K::Read),
                None,
                None,
            ),
            (
                "POST",
                "/v1/namespaces/lkc-1/tables/orders/metrics",
                topic("orders", K::Read),
                None,
                None,
            ),
            (
                "POST",
                "/v1/namespaces/lkc-1/tables/orders",
                topic("orders", K::Write),
                None,
                None,
            ),
            (
                "DELETE",
                "/v1/namespaces/lkc-1/tables/orders",
                topic("orders", K::Delete),
                None,
                None,
            ),
            (
                "POST",
                "/v1/tables/rename",
                vec![],
                None,
                Some(BodyCheck::RenameTable),
            ),
            (
                "POST",
                "/v1/transactions/commit",
                vec![],
                None,
                Some(BodyCheck::CommitTransaction),
            ),
        ];
        for (m, path, checks, filter, body) in rows {
            let p = plan_of(m, path).unwrap_or_else(|e| panic!("{m} {path}: {e:?}"));
            assert_eq!(p.checks, checks, "{m} {path}");
            assert_eq!(p.filter, filter, "{m} {path}");
            assert_eq!(p.body, body, "{m} {path}");
        }
    }

    #[test]
    fn other_namespaces_views_and_paths_outside_v1_are_refused() {
        for (m, path) in [
            ("GET", "/v1/namespaces/lkc-2/tables/orders"),
            ("GET", "/v1/namespaces/lkc-1%1Fsub/tables"),
            ("GET", "/v1/namespaces/lkc-1/views"),
            ("GET", "/config"),
        ] {
            assert_eq!(
                plan_of(m, path).map_err(|e| e.status),
                Err(404),
                "{m} {path}"
            );
        }
    }

    #[test]
    fn bodies_name_what_is_checked() {
        let rename = json!({
            "source": {"namespace": ["lkc-1"], "name": "a"},
            "destination": {"namespace": ["lkc-1"], "name": "b"}
        });
        assert_eq!(
            body_checks(&BodyCheck::RenameTable, &rename, &is_cluster),
            Ok(vec![
                topic("a", K::Delete).remove(0),
                topic("b", K::Create).remove(0)
            ])
        );
        let commit = json!({"table-changes": [
            {"identifier": {"namespace": ["lkc-1"], "name": "a"}, "updates": []},
            {"identifier": {"namespace": ["lkc-1"], "name": "b"}, "updates": []}
        ]});
        assert_eq!(
            body_checks(&BodyCheck::CommitTransaction, &commit, &is_cluster).map(|c| c.len()),
            Ok(2)
        );
        assert_eq!(
            body_checks(
                &BodyCheck::CreateNamespace,
                &json!({"namespace": ["lkc-1"]}),
                &is_cluster
            ),
            Ok(vec![Check::Cluster("lkc-1".into(), K::Create)])
        );
        for (b, j) in [
            (BodyCheck::CreateNamespace, json!({"namespace": ["lkc-2"]})),
            (
                BodyCheck::CreateNamespace,
                json!({"namespace": ["lkc-1", "x"]}),
            ),
            (
                BodyCheck::CreateTable("lkc-1".into()),
                json!({"schema": {}}),
            ),
            (BodyCheck::CommitTransaction, json!({"table-changes": []})),
        ] {
            assert_eq!(
                body_checks(&b, &j, &is_cluster).map_err(|e| e.status),
                Err(400),
                "{b:?} {j}"
            );
        }
    }
}
