//! DescribeAcls, CreateAcls and DeleteAcls over the Kafka protocol, served from
//! keygate's own ACLs through the IAM service — so Kafka admin tools (kafka-acls,
//! AdminClient) manage keygate, authorized as Kafka does (DESCRIBE / ALTER on the
//! cluster). Nothing here reaches the broker.

use crate::classify::codes;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use keygate_core::model::Acl;
use keygate_core::{AclBinding, Operation, PatternType, Permission, Principal, ResourceType};
use keygate_iam::AclFilter;
use keygate_iam::{Caller, Iam, IamError};

/// INVALID_REQUEST
const INVALID_REQUEST: i16 = 42;

fn resource_type(code: i8) -> Option<ResourceType> {
    ResourceType::ALL
        .into_iter()
        .find(|t| t.kafka_code() == code)
}

fn operation(code: i8) -> Option<Operation> {
    Operation::ALL_OPS
        .into_iter()
        .find(|o| o.kafka_code() == code)
}

fn pattern_type(code: i8) -> Option<PatternType> {
    [PatternType::Literal, PatternType::Prefixed]
        .into_iter()
        .find(|p| p.kafka_code() == code)
}

fn permission(code: i8) -> Option<Permission> {
    [Permission::Allow, Permission::Deny]
        .into_iter()
        .find(|p| p.kafka_code() == code)
}

/// A wire filter as keygate's filter, plus the name for PATTERN MATCH (applied after
/// listing). `None` when the filter can match nothing keygate stores (a specific host,
/// a resource type keygate has no ACLs for).
struct Filter {
    store: AclFilter,
    match_name: Option<String>,
}

#[allow(clippy::too_many_arguments)]
fn filter(
    rt: i8,
    name: Option<&StrBytes>,
    pt: i8,
    principal: Option<&StrBytes>,
    host: Option<&StrBytes>,
    op: i8,
    perm: i8,
) -> Result<Option<Filter>, &'static str> {
    const ANY: i8 = 1;
    const MATCH: i8 = 2;
    if host.is_some_and(|h| h.as_str() != "*") {
        return Ok(None);
    }
    let mut f = AclFilter::default();
    if rt != ANY {
        match resource_type(rt) {
            Some(t) => f.resource_type = Some(t),
            None if (6..=7).contains(&rt) => return Ok(None),
            None => return Err("unknown resource type"),
        }
    }
    let mut match_name = None;
    match pt {
        ANY => f.resource_name = name.map(|n| n.as_str().to_owned()),
        MATCH => match_name = name.map(|n| n.as_str().to_owned()),
        code => {
            f.pattern_type = Some(pattern_type(code).ok_or("unknown pattern type")?);
            f.resource_name = name.map(|n| n.as_str().to_owned());
        }
    }
    if op != ANY {
        f.operation = Some(operation(op).ok_or("unknown operation")?);
    }
    if perm != ANY {
        f.permission = Some(permission(perm).ok_or("unknown permission type")?);
    }
    if let Some(p) = principal {
        f.principal = Some(Principal::parse(p.as_str()).map_err(|_| "malformed principal")?);
    }
    Ok(Some(Filter {
        store: f,
        match_name,
    }))
}

fn matches(acl: &AclBinding, name: &Option<String>) -> bool {
    match name {
        None => true,
        Some(n) => match acl.pattern_type {
            PatternType::Literal => acl.resource_name == *n || acl.resource_name == "*",
            PatternType::Prefixed => n.starts_with(&acl.resource_name),
        },
    }
}

fn error_code(e: &IamError) -> i16 {
    match e {
        IamError::Forbidden(_) => codes::CLUSTER_AUTH,
        IamError::Invalid { .. } => INVALID_REQUEST,
        _ => -1,
    }
}

async fn find(iam: &Iam, caller: &Caller, cluster: &str, f: &Filter) -> Result<Vec<Acl>, IamError> {
    let all = iam.list_acls(caller, cluster, &f.store).await?;
    Ok(all
        .into_iter()
        .filter(|a| matches(&a.binding, &f.match_name))
        .collect())
}

/// Answer DescribeAcls.
pub async fn describe(
    iam: &Iam,
    caller: &Caller,
    cluster: &str,
    r: &DescribeAclsRequest,
) -> DescribeAclsResponse {
    let mut resp = DescribeAclsResponse::default();
    let f = filter(
        r.resource_type_filter,
        r.resource_name_filter.as_ref(),
        r.pattern_type_filter,
        r.principal_filter.as_ref(),
        r.host_filter.as_ref(),
        r.operation,
        r.permission_type,
    );
    let acls = match f {
        Err(m) => {
            resp.error_code = INVALID_REQUEST;
            resp.error_message = Some(StrBytes::from_static_str(m));
            return resp;
        }
        Ok(None) => Vec::new(),
        Ok(Some(f)) => match find(iam, caller, cluster, &f).await {
            Ok(a) => a,
            Err(e) => {
                resp.error_code = error_code(&e);
                resp.error_message = Some(StrBytes::from_string(e.to_string()));
                return resp;
            }
        },
    };
    let mut groups: Vec<DescribeAclsResource> = Vec::new();
    for a in acls {
        let b = &a.binding;
        let key = (
            b.resource_type.kafka_code(),
            b.resource_name.clone(),
            b.pattern_type.kafka_code(),
        );
        let idx = match groups.iter().position(|g| {
            (
                g.resource_type,
                g.resource_name.as_str().to_owned(),
                g.pattern_type,
            ) == key
        }) {
            Some(i) => i,
            None => {
                let mut g = DescribeAclsResource::default();
                g.resource_type = key.0;
                g.resource_name = StrBytes::from_string(key.1.clone());
                g.pattern_type = key.2;
                groups.push(g);
                groups.len() - 1
            }
        };
        let mut d = AclDescription::default();
        d.principal = StrBytes::from_string(b.principal.to_string());
        d.host = StrBytes::from_static_str("*");
        d.operation = b.operation.kafka_code();
        d.permission_type = b.permission.kafka_code();
        groups[idx].acls.push(d);
    }
    resp.resources = groups;
    resp
}

/// Answer CreateAcls: one result per creation, in order.
pub async fn create(
    iam: &Iam,
    caller: &Caller,
    cluster: &str,
    r: &CreateAclsRequest,
) -> CreateAclsResponse {
    let mut resp = CreateAclsResponse::default();
    for c in &r.creations {
        let mut result = AclCreationResult::default();
        let binding = (|| {
            if c.host.as_str() != "*" {
                return Err("keygate has no per-host ACLs: the host must be *".to_owned());
            }
            let b = AclBinding {
                principal: Principal::parse(c.principal.as_str()).map_err(|e| e.to_string())?,
                resource_type: resource_type(c.resource_type).ok_or("unsupported resource type")?,
                resource_name: c.resource_name.as_str().to_owned(),
                pattern_type: pattern_type(c.resource_pattern_type)
                    .ok_or("pattern type must be LITERAL or PREFIXED")?,
                operation: operation(c.operation).ok_or("unknown operation")?,
                permission: permission(c.permission_type)
                    .ok_or("permission must be ALLOW or DENY")?,
            };
            b.validate().map_err(|e| e.to_string())?;
            Ok(b)
        })();
        match binding {
            Err(m) => {
                result.error_code = INVALID_REQUEST;
                result.error_message = Some(StrBytes::from_string(m));
            }
            Ok(b) => {
                if let Err(e) = iam.create_acls(caller, cluster, vec![b]).await {
                    result.error_code = error_code(&e);
                    result.error_message = Some(StrBytes::from_string(e.to_string()));
                }
            }
        }
        resp.results.push(result);
    }
    resp
}

/// Answer DeleteAcls: per filter, the ACLs it deleted.
pub async fn delete(
    iam: &Iam,
    caller: &Caller,
    cluster: &str,
    r: &DeleteAclsRequest,
) -> DeleteAclsResponse {
    let mut resp = DeleteAclsResponse::default();
    for f in &r.filters {
        let mut result = DeleteAclsFilterResult::default();
        let parsed = filter(
            f.resource_type_filter,
            f.resource_name_filter.as_ref(),
            f.pattern_type_filter,
            f.principal_filter.as_ref(),
            f.host_filter.as_ref(),
            f.operation,
            f.permission_type,
        );
        match parsed {
            Err(m) => {
                result.error_code = INVALID_REQUEST;
                result.error_message = Some(StrBytes::from_static_str(m));
            }
            Ok(None) => {}
            Ok(Some(filter)) => {
                let outcome = async {
                    let found = find(iam, caller, cluster, &filter).await?;
                    let mut deleted = Vec::new();
                    for a in found {
                        let b = &a.binding;
                        let exact = AclFilter {
                            principal: Some(b.principal.clone()),
                            resource_type: Some(b.resource_type),
                            resource_name: Some(b.resource_name.clone()),
                            pattern_type: Some(b.pattern_type),
                            operation: Some(b.operation),
                            permission: Some(b.permission),
                            host: None,
                        };
                        deleted.extend(iam.delete_acls(caller, cluster, &exact).await?);
                    }
                    Ok::<_, IamError>(deleted)
                }
                .await;
                match outcome {
                    Err(e) => {
                        result.error_code = error_code(&e);
                        result.error_message = Some(StrBytes::from_string(e.to_string()));
                    }
                    Ok(deleted) => {
                        result.matching_acls = deleted
                            .iter()
                            .map(|a| {
                                let b = &a.binding;
                                let mut m = DeleteAclsMatchingAcl::default();
                                m.resource_type = b.resource_type.kafka_code();
                                m.resource_name = StrBytes::from_string(b.resource_name.clone());
                                m.pattern_type = b.pattern_type.kafka_code();
                                m.principal = StrBytes::from_string(b.principal.to_string());
                                m.host = StrBytes::from_static_str("*");
                                m.operation = b.operation.kafka_code();
                                m.permission_type = b.permission.kafka_code();
                                m
                            })
                            .collect();
                    }
                }
            }
        }
        resp.filter_results.push(result);
    }
    resp
}
