//! Which service a request is for. Two forms, both always on:
//!
//! - by path: `/sr/{lsrc-…}/…`, `/ksql/{lksqlc-…}/…`, `/flink/{env}/{region}/…`, and
//!   Tableflow's own `/iceberg/catalog/organizations/{org}/environments/{env}/…` (the
//!   hosted catalog's path, so an Iceberg client needs only the host changed);
//! - by host, with `http_gateway_domain` set: `lsrc-….{domain}` and
//!   `lksqlc-….{domain}` serve the whole path to that registry or cluster, as the
//!   hosted services' per-resource host names do (and as the Kafka gateway's SNI
//!   names do);
//! - by the hosted model's `target-sr-cluster: lsrc-…` header, when the path names no
//!   service: the whole path goes to that registry.

use crate::plan::Reject;
use keygate_core::model::Resource;
use keygate_core::ResourceKind;
use std::collections::HashMap;

/// A request's service and the path within it.
#[derive(Debug, Clone)]
pub struct Route {
    /// The service.
    pub resource: Resource,
    /// The path's segments after the route's own.
    pub rest: Vec<String>,
}

/// The route of a request (`seg`: its decoded path segments; `host`: its Host header).
pub fn resolve(
    host: Option<&str>,
    target_sr: Option<&str>,
    mut seg: Vec<String>,
    services: &HashMap<String, Resource>,
    org_id: &str,
    domain: Option<&str>,
) -> Result<Route, Reject> {
    let found = |key: &str, kind: ResourceKind| {
        services
            .get(key)
            .filter(|r| r.kind == kind)
            .cloned()
            .ok_or_else(|| Reject::not_found("no such service"))
    };
    if let (Some(host), Some(domain)) = (host, domain) {
        let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
        if let Some(label) = name.strip_suffix(domain).and_then(|l| l.strip_suffix('.')) {
            let kind = if label.starts_with("lsrc-") {
                ResourceKind::SchemaRegistry
            } else if label.starts_with("lksqlc-") {
                ResourceKind::Ksql
            } else {
                return Err(Reject::not_found("no such service"));
            };
            return Ok(Route {
                resource: found(label, kind)?,
                rest: seg,
            });
        }
    }
    let s: Vec<&str> = seg.iter().map(String::as_str).collect();
    let (resource, used) = match s.as_slice() {
        ["sr", id, ..] => (found(id, ResourceKind::SchemaRegistry)?, 2),
        ["ksql", id, ..] => (found(id, ResourceKind::Ksql)?, 2),
        ["flink", env, region, ..] => (
            found(
                &Resource::key(ResourceKind::Flink, env, region),
                ResourceKind::Flink,
            )?,
            3,
        ),
        ["iceberg", "catalog", "organizations", org, "environments", env, ..] => {
            if *org != org_id {
                return Err(Reject::not_found("no such organization"));
            }
            (
                found(
                    &Resource::key(ResourceKind::Tableflow, env, "tableflow"),
                    ResourceKind::Tableflow,
                )?,
                6,
            )
        }
        _ => match target_sr {
            Some(id) => (found(id, ResourceKind::SchemaRegistry)?, 0),
            None => return Err(Reject::not_found("no such service")),
        },
    };
    seg.drain(..used);
    Ok(Route {
        resource,
        rest: seg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn res(kind: ResourceKind, env: &str, id: &str) -> Resource {
        Resource {
            id: id.into(),
            kind,
            environment_id: env.into(),
            display_name: id.into(),
            upstream: "http://127.0.0.1:1".into(),
            upstream_security: Default::default(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
            gateway_slot: None,
            ksql: None,
        }
    }

    fn services() -> HashMap<String, Resource> {
        [
            res(ResourceKind::SchemaRegistry, "env-1", "lsrc-1"),
            res(ResourceKind::Ksql, "env-1", "lksqlc-1"),
            res(ResourceKind::Flink, "env-1", "aws.us-east-1"),
            res(ResourceKind::Tableflow, "env-1", "tableflow"),
        ]
        .into_iter()
        .map(|r| (r.storage_key(), r))
        .collect()
    }

    fn seg(p: &str) -> Vec<String> {
        crate::path::segments(p).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn path_and_host_forms() {
        let s = services();
        let r = resolve(None, None, seg("/sr/lsrc-1/subjects"), &s, "org-1", None).expect("route");
        assert_eq!(
            (r.resource.id.as_str(), r.rest),
            ("lsrc-1", vec!["subjects".to_owned()])
        );
        let r = resolve(
            None,
            None,
            seg("/flink/env-1/aws.us-east-1/jobs"),
            &s,
            "org-1",
            None,
        )
        .expect("route");
        assert_eq!(r.resource.kind, ResourceKind::Flink);
        let r = resolve(
            None,
            None,
            seg("/iceberg/catalog/organizations/org-1/environments/env-1/v1/config"),
            &s,
            "org-1",
            None,
        )
        .expect("route");
        assert_eq!(r.rest, ["v1", "config"]);
        let r = resolve(
            Some("lksqlc-1.gw.example:8443"),
            None,
            seg("/ksql"),
            &s,
            "org-1",
            Some("gw.example"),
        )
        .expect("route");
        assert_eq!(
            (r.resource.id.as_str(), r.rest),
            ("lksqlc-1", vec!["ksql".to_owned()])
        );
        let r = resolve(None, Some("lsrc-1"), seg("/subjects"), &s, "org-1", None)
            .expect("route by header");
        assert_eq!(
            (r.resource.id.as_str(), r.rest),
            ("lsrc-1", vec!["subjects".to_owned()])
        );
        assert!(resolve(None, Some("lksqlc-1"), seg("/subjects"), &s, "org-1", None).is_err());
        for (host, path) in [
            (None, "/sr/lsrc-2/subjects"),
            (None, "/sr/lksqlc-1/subjects"),
            (None, "/flink/env-2/aws.us-east-1/jobs"),
            (
                None,
                "/iceberg/catalog/organizations/org-2/environments/env-1/v1/config",
            ),
            (Some("lsrc-9.gw.example"), "/subjects"),
            (None, "/"),
        ] {
            assert!(
                resolve(host, None, seg(path), &s, "org-1", Some("gw.example")).is_err(),
                "{host:?} {path}"
            );
        }
    }
}
