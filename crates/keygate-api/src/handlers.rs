//! Handlers: decode, call the IAM service, render. No rules live here.

use crate::auth::Authed;
use crate::error::{ApiError, ApiJson, ErrorBody, Params};
use crate::types::*;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use base64::Engine;
use keygate_core::model::{
    Account, AccountKind, Acl, ApiKey, Environment, KeyScope, Resource, RoleBinding,
};
use keygate_core::{
    AclBinding, Operation, PatternType, Permission, Principal, ResourceKind, ResourceType,
};
use keygate_iam::AclFilter;
use keygate_iam::{NewApiKey, NewResource};
use std::collections::HashMap;

type Q = Params;
type R<T> = Result<T, ApiError>;

const MAX_PAGE: usize = 100;

/// Cut one page out of `items` (page_size default 10, max 100; page_token opaque).
pub(crate) fn page<T>(
    items: Vec<T>,
    q: &HashMap<String, String>,
    url: &str,
) -> R<(Vec<T>, ListMeta)> {
    let size = match q.get("page_size") {
        None => 10,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            Ok(n) if n > MAX_PAGE => {
                return Err(ApiError::invalid_param(
                    "page_size",
                    format!("must be at most {MAX_PAGE}"),
                ))
            }
            _ => {
                return Err(ApiError::invalid_param(
                    "page_size",
                    "must be a number from 1 to 100",
                ))
            }
        },
    };
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let offset = match q.get("page_token") {
        None => 0,
        Some(t) => b64
            .decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.strip_prefix("o:").and_then(|n| n.parse::<usize>().ok()))
            .ok_or_else(|| {
                ApiError::invalid_param("page_token", "is not a token this server issued")
            })?,
    };
    let total = items.len();
    // The links keep the list's filters: a client following `next` stays in its list.
    let mut kept: Vec<(&String, &String)> = q
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "page_size" | "page_token"))
        .collect();
    kept.sort();
    // RFC 3986's unreserved characters stay as they are.
    const QUERY: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    let enc = |v: &str| percent_encoding::utf8_percent_encode(v, QUERY).to_string();
    let filters: String = kept
        .iter()
        .map(|(k, v)| format!("{}={}&", enc(k), enc(v)))
        .collect();
    // `page_token` leads, as in the hosted API's links: some clients cut the token
    // out of `next` by finding `?page_token=`.
    let next = (offset + size < total).then(|| {
        format!(
            "{url}?page_token={}&{filters}page_size={size}",
            b64.encode(format!("o:{}", offset + size))
        )
    });
    let url = format!("{url}?{filters}page_size={size}");
    let data = items.into_iter().skip(offset).take(size).collect();
    Ok((
        data,
        ListMeta {
            first: url,
            next,
            total_size: total,
        },
    ))
}

pub(crate) fn meta(
    st: &AppState,
    path: String,
    crn: String,
    created: chrono::DateTime<chrono::Utc>,
    updated: chrono::DateTime<chrono::Utc>,
) -> ObjectMeta {
    ObjectMeta {
        self_: format!("{}{path}", st.cfg.public_url),
        resource_name: crn,
        created_at: created,
        updated_at: updated,
    }
}

pub(crate) fn org_crn(st: &AppState) -> keygate_core::CrnPattern {
    st.iam.org().crn()
}

// ---- health and docs --------------------------------------------------------------

/// Liveness.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "alive")))]
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: the database answers.
#[utoipa::path(get, path = "/readyz", tag = "health", responses((status = 200, description = "ready"), (status = 503, description = "database unavailable")))]
pub async fn readyz(State(st): State<AppState>) -> impl IntoResponse {
    match st.iam.ready().await {
        Ok(_) => (StatusCode::OK, "ready\n"),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n")
        }
    }
}

// ---- environments ----------------------------------------------------------------

fn env_obj(st: &AppState, e: Environment) -> EnvironmentObj {
    EnvironmentObj {
        api_version: "org/v2",
        kind: "Environment",
        metadata: meta(
            st,
            format!("/org/v2/environments/{}", e.id),
            org_crn(st).child("environment", &e.id).to_string(),
            e.created_at,
            e.updated_at,
        ),
        id: e.id,
        display_name: e.display_name,
    }
}

/// List environments.
#[utoipa::path(get, path = "/org/v2/environments", tag = "environments", params(("page_size" = Option<usize>, Query), ("page_token" = Option<String>, Query)),
    responses((status = 200, body = EnvironmentList), (status = 401, body = ErrorBody)), security(("basic" = [])))]
pub async fn list_environments(
    State(st): State<AppState>,
    Authed(c): Authed,
    Params(q): Q,
) -> R<Json<EnvironmentList>> {
    let items = st.iam.list_environments(&c).await?;
    let (items, metadata) = page(
        items,
        &q,
        &format!("{}/org/v2/environments", st.cfg.public_url),
    )?;
    Ok(Json(EnvironmentList {
        api_version: "org/v2",
        kind: "EnvironmentList",
        metadata,
        data: items.into_iter().map(|e| env_obj(&st, e)).collect(),
    }))
}

/// Create an environment.
#[utoipa::path(post, path = "/org/v2/environments", tag = "environments", request_body = EnvironmentCreate,
    responses((status = 201, body = EnvironmentObj), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)), security(("basic" = [])))]
pub async fn create_environment(
    State(st): State<AppState>,
    Authed(c): Authed,
    ApiJson(b): ApiJson<EnvironmentCreate>,
) -> R<impl IntoResponse> {
    let e = st.iam.create_environment(&c, &b.display_name).await?;
    Ok((StatusCode::CREATED, Json(env_obj(&st, e))))
}

/// Describe an environment.
#[utoipa::path(get, path = "/org/v2/environments/{id}", tag = "environments", params(("id" = String, Path)),
    responses((status = 200, body = EnvironmentObj), (status = 404, body = ErrorBody)), security(("basic" = [])))]
pub async fn get_environment(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path(id): Path<String>,
) -> R<Json<EnvironmentObj>> {
    Ok(Json(env_obj(&st, st.iam.get_environment(&c, &id).await?)))
}

/// Rename an environment.
#[utoipa::path(patch, path = "/org/v2/environments/{id}", tag = "environments", params(("id" = String, Path)), request_body = EnvironmentUpdate,
    responses((status = 200, body = EnvironmentObj), (status = 404, body = ErrorBody)), security(("basic" = [])))]
pub async fn update_environment(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<EnvironmentUpdate>,
) -> R<Json<EnvironmentObj>> {
    Ok(Json(env_obj(
        &st,
        st.iam
            .update_environment(&c, &id, b.display_name.as_deref())
            .await?,
    )))
}

/// Delete an empty environment.
#[utoipa::path(delete, path = "/org/v2/environments/{id}", tag = "environments", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)), security(("basic" = [])))]
pub async fn delete_environment(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path(id): Path<String>,
) -> R<StatusCode> {
    st.iam.delete_environment(&c, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- clusters and other resources ---------------------------------------------------

/// Where each resource kind lives in the API.
pub fn resource_base(kind: ResourceKind) -> (&'static str, &'static str) {
    match kind {
        ResourceKind::Kafka => ("/cmk/v2/clusters", "cmk/v2"),
        ResourceKind::SchemaRegistry => ("/srcm/v3/clusters", "srcm/v3"),
        ResourceKind::Ksql => ("/ksqldbcm/v2/clusters", "ksqldbcm/v2"),
        ResourceKind::Flink => ("/fcpm/v2/regions", "fcpm/v2"),
        ResourceKind::Tableflow => ("/tableflow/v1/endpoints", "tableflow/v1"),
    }
}

pub(crate) fn env_ref(st: &AppState, env: &str) -> ObjRef {
    ObjRef {
        id: env.to_owned(),
        environment: None,
        related: format!("{}/org/v2/environments/{env}", st.cfg.public_url),
        resource_name: org_crn(st).child("environment", env).to_string(),
        api_version: "org/v2".into(),
        kind: "Environment".into(),
    }
}

/// A reference to a Kafka cluster by id (it may have been deleted since).
pub(crate) fn cluster_ref(st: &AppState, env: &str, id: &str) -> ObjRef {
    ObjRef {
        id: id.to_owned(),
        environment: Some(env.to_owned()),
        related: format!("{}/cmk/v2/clusters/{id}", st.cfg.public_url),
        resource_name: Resource::crn_of(&org_crn(st), ResourceKind::Kafka, env, id).to_string(),
        api_version: "cmk/v2".into(),
        kind: "Cluster".into(),
    }
}

/// A reference to a user (`u-…`) or service account by id.
pub(crate) fn account_ref(st: &AppState, id: &str) -> ObjRef {
    let (path, seg, kind) = if keygate_core::IdKind::User.matches(id) {
        ("users", "user", "User")
    } else {
        ("service-accounts", "service-account", "ServiceAccount")
    };
    ObjRef {
        id: id.to_owned(),
        environment: None,
        related: format!("{}/iam/v2/{path}/{id}", st.cfg.public_url),
        resource_name: org_crn(st).child(seg, id).to_string(),
        api_version: "iam/v2".into(),
        kind: kind.into(),
    }
}

fn resource_path(r: &Resource) -> String {
    resource_path_of(r.kind, &r.environment_id, &r.id)
}

fn resource_path_of(kind: ResourceKind, environment_id: &str, id: &str) -> String {
    let (base, _) = resource_base(kind);
    match kind {
        ResourceKind::Flink | ResourceKind::Tableflow => {
            format!("{base}/{id}?environment={environment_id}")
        }
        _ => format!("{base}/{id}"),
    }
}

fn bootstrap_endpoint(st: &AppState, r: &Resource) -> Option<String> {
    let gw = st
        .cfg
        .kafka_gateway
        .as_ref()
        .filter(|_| r.kind == ResourceKind::Kafka)?;
    let slot = st.iam.snapshot().gateway_slot(&r.id)?;
    Some(gw.bootstrap(&r.id, slot))
}

/// Where clients reach an HTTP service: the HTTP gateway's base URL and the service's
/// path under it.
fn http_endpoint(st: &AppState, r: &Resource) -> Option<String> {
    let base = st.cfg.http_gateway.as_deref()?;
    let path = r.http_gateway_path(&st.iam.org().id)?;
    Some(format!("{}{path}", base.trim_end_matches('/')))
}

fn cluster_obj(st: &AppState, r: Resource) -> ClusterObj {
    let (_, api_version) = resource_base(r.kind);
    let kafka_bootstrap_endpoint = bootstrap_endpoint(st, &r);
    let http_endpoint = http_endpoint(st, &r);
    let self_managed = "SELF_MANAGED";
    let hosted = match r.kind {
        ResourceKind::Kafka => HostedFacts {
            availability: Some(self_managed),
            cloud: Some(self_managed),
            region: Some("self-managed".into()),
            config: Some(serde_json::json!({"kind": "Basic"})),
            ..HostedFacts::default()
        },
        ResourceKind::SchemaRegistry => HostedFacts {
            cloud: Some(self_managed),
            region: Some("self-managed".into()),
            package: Some(self_managed),
            ..HostedFacts::default()
        },
        ResourceKind::Flink => HostedFacts {
            cloud: Some(self_managed),
            region: Some(r.id.clone()),
            ..HostedFacts::default()
        },
        ResourceKind::Ksql => match &r.ksql {
            Some(k) => HostedFacts {
                csu: Some(k.csu),
                kafka_cluster: Some(cluster_ref(st, &r.environment_id, &k.kafka_cluster)),
                credential_identity: Some(account_ref(st, &k.credential_identity)),
                ..HostedFacts::default()
            },
            None => HostedFacts::default(),
        },
        ResourceKind::Tableflow => HostedFacts::default(),
    };
    let ksql = r.kind == ResourceKind::Ksql;
    ClusterObj {
        api_version,
        // The object's kind in its own API (`Cluster`, `Region`); key references to
        // it use `ResourceKind::api_kind`.
        kind: match r.kind {
            ResourceKind::Flink => "Region",
            ResourceKind::Tableflow => "TableflowEndpoint",
            _ => "Cluster",
        },
        metadata: meta(
            st,
            resource_path(&r),
            r.crn(&org_crn(st)).to_string(),
            r.created_at,
            r.updated_at,
        ),
        spec: ClusterSpec {
            display_name: r.display_name,
            environment: env_ref(st, &r.environment_id),
            upstream: r.upstream,
            kafka_bootstrap_endpoint,
            http_endpoint,
            hosted,
            upstream_security: Some({
                let v = keygate_iam::UpstreamView::from(&r.upstream_security);
                UpstreamSecurityOut {
                    protocol: v.protocol.as_str(),
                    sasl_mechanism: v.mechanism.map(|m| m.as_str()),
                    username: v.username,
                    password_set: v.password_set,
                    ca_set: v.ca_set,
                    server_name: v.server_name,
                    client_certificate_set: v.client_certificate_set,
                    header_name: match &v.http_auth {
                        Some(keygate_core::HttpAuth::Header(n)) => Some(n.clone()),
                        _ => None,
                    },
                    http_auth: v.http_auth.as_ref().map(keygate_core::HttpAuth::as_str),
                }
            }),
        },
        status: ClusterStatus {
            phase: "PROVISIONED",
            upstream: st
                .iam
                .upstream_health(&r.id)
                .filter(|_| r.kind == ResourceKind::Kafka)
                .map(|problem| UpstreamHealth {
                    healthy: problem.is_none(),
                    reason: problem,
                }),
            is_paused: ksql.then_some(false),
            storage: ksql.then_some(0),
        },
        id: r.id,
    }
}

pub(crate) async fn list_resources(
    st: AppState,
    c: keygate_iam::Caller,
    kind: ResourceKind,
    q: HashMap<String, String>,
) -> R<Json<ClusterList>> {
    let env = q.get("environment").map(String::as_str);
    let items = st.iam.list_resources(&c, kind, env).await?;
    let (base, api_version) = resource_base(kind);
    let url = format!("{}{base}", st.cfg.public_url);
    let (items, metadata) = page(items, &q, &url)?;
    Ok(Json(ClusterList {
        api_version,
        kind: match kind {
            ResourceKind::Flink => "RegionList",
            ResourceKind::Tableflow => "TableflowList",
            _ => "ClusterList",
        },
        metadata,
        data: items.into_iter().map(|r| cluster_obj(&st, r)).collect(),
    }))
}

pub(crate) async fn create_resource(
    st: AppState,
    c: keygate_iam::Caller,
    kind: ResourceKind,
    b: ClusterCreate,
) -> R<(StatusCode, Json<ClusterObj>)> {
    if kind != ResourceKind::Flink && b.spec.region.is_some() {
        return Err(ApiError::invalid(
            "/spec/region",
            "unknown field `region` (only Flink regions have one)",
        ));
    }
    let r = st
        .iam
        .create_resource(
            &c,
            NewResource {
                kind,
                environment_id: b.spec.environment.id,
                display_name: b.spec.display_name,
                upstream: b.spec.upstream,
                region: b.spec.region,
                upstream_security: b.spec.upstream_security.map(Into::into).unwrap_or_default(),
                ksql: keygate_iam::KsqlInput {
                    kafka_cluster: b.spec.kafka_cluster.map(|r| r.id),
                    credential_identity: b.spec.credential_identity.map(|r| r.id),
                    csu: b.spec.csu,
                },
            },
        )
        .await?;
    // The hosted document answers 202 where it provisions (Kafka, ksqlDB); keygate's
    // registration is complete when it answers, with the object.
    let status = match kind {
        ResourceKind::Kafka | ResourceKind::Ksql => StatusCode::ACCEPTED,
        _ => StatusCode::CREATED,
    };
    Ok((status, Json(cluster_obj(&st, r))))
}

pub(crate) async fn get_resource(
    st: AppState,
    c: keygate_iam::Caller,
    kind: ResourceKind,
    id: String,
    q: HashMap<String, String>,
) -> R<Json<ClusterObj>> {
    Ok(Json(cluster_obj(
        &st,
        st.iam
            .get_resource(&c, kind, q.get("environment").map(String::as_str), &id)
            .await?,
    )))
}

pub(crate) async fn update_resource(
    st: AppState,
    c: keygate_iam::Caller,
    kind: ResourceKind,
    id: String,
    q: HashMap<String, String>,
    b: ClusterUpdate,
) -> R<Json<ClusterObj>> {
    let r = st
        .iam
        .update_resource(
            &c,
            kind,
            q.get("environment").map(String::as_str),
            &id,
            &keygate_iam::ResourceChanges {
                display_name: b.spec.display_name,
                upstream: b.spec.upstream,
                upstream_security: b.spec.upstream_security.map(Into::into).unwrap_or_default(),
            },
        )
        .await?;
    Ok(Json(cluster_obj(&st, r)))
}

pub(crate) async fn delete_resource(
    st: AppState,
    c: keygate_iam::Caller,
    kind: ResourceKind,
    id: String,
    q: HashMap<String, String>,
) -> R<StatusCode> {
    st.iam
        .delete_resource(&c, kind, q.get("environment").map(String::as_str), &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List Kafka clusters (`?environment=env-…` filters). Schema registries
/// (/srcm/v3/clusters), ksqlDB clusters (/ksqldbcm/v2/clusters), Flink regions
/// (/fcpm/v2/regions) and Tableflow (/tableflow/v1/endpoints) have the same operations.
#[utoipa::path(get, path = "/cmk/v2/clusters", tag = "clusters", params(("environment" = Option<String>, Query), ("page_size" = Option<usize>, Query), ("page_token" = Option<String>, Query)),
    responses((status = 200, body = ClusterList)), security(("basic" = [])))]
pub async fn list_kafka(
    State(st): State<AppState>,
    Authed(c): Authed,
    Params(q): Q,
) -> R<Json<ClusterList>> {
    list_resources(st, c, ResourceKind::Kafka, q).await
}

/// Register a Kafka cluster (its upstream bootstrap servers).
#[utoipa::path(post, path = "/cmk/v2/clusters", tag = "clusters", request_body = ClusterCreate,
    responses((status = 202, body = ClusterObj), (status = 422, body = ErrorBody)), security(("basic" = [])))]
pub async fn create_kafka(
    State(st): State<AppState>,
    Authed(c): Authed,
    ApiJson(b): ApiJson<ClusterCreate>,
) -> R<(StatusCode, Json<ClusterObj>)> {
    create_resource(st, c, ResourceKind::Kafka, b).await
}

/// Describe a Kafka cluster.
#[utoipa::path(get, path = "/cmk/v2/clusters/{id}", tag = "clusters", params(("id" = String, Path), ("environment" = Option<String>, Query)),
    responses((status = 200, body = ClusterObj), (status = 404, body = ErrorBody)), security(("basic" = [])))]
pub async fn get_kafka(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path(id): Path<String>,
    Params(q): Q,
) -> R<Json<ClusterObj>> {
    get_resource(st, c, ResourceKind::Kafka, id, q).await
}

/// Rename or re-point a Kafka cluster.
#[utoipa::path(patch, path = "/cmk/v2/clusters/{id}", tag = "clusters", params(("id" = String, Path), ("environment" = Option<String>, Query)), request_body = ClusterUpdate,
    responses((status = 200, body = ClusterObj), (status = 404, body = ErrorBody)), security(("basic" = [])))]
pub async fn update_kafka(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path(id): Path<String>,
    Params(q): Q,
    ApiJson(b): ApiJson<ClusterUpdate>,
) -> R<Json<ClusterObj>> {
    update_resource(st, c, ResourceKind::Kafka, id, q, b).await
}

/// Delete a Kafka cluster registration with its keys, ACLs and role bindings.
#[utoipa::path(delete, path = "/cmk/v2/clusters/{id}", tag = "clusters", params(("id" = String, Path), ("environment" = Option<String>, Query)),
    responses((status = 204), (status = 404, body = ErrorBody)), security(("basic" = [])))]
pub async fn delete_kafka(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path(id): Path<String>,
    Params(q): Q,
) -> R<StatusCode> {
    delete_resource(st, c, ResourceKind::Kafka, id, q).await
}

// ---- service accounts and users ---------------------------------------------------

fn account_crn(st: &AppState, a: &Account) -> String {
    let key = if a.kind == AccountKind::User {
        "user"
    } else {
        "service-account"
    };
    org_crn(st).child(key, &a.id).to_string()
}

fn sa_obj(st: &AppState, a: Account) -> ServiceAccountObj {
    ServiceAccountObj {
        api_version: "iam/v2",
        kind: "ServiceAccount",
        metadata: meta(
            st,
            format!("/iam/v2/service-accounts/{}", a.id),
            account_crn(st, &a),
            a.created_at,
            a.updated_at,
        ),
        id: a.id,
        display_name: a.display_name,
        description: a.description,
    }
}

fn user_obj(st: &AppState, a: Account) -> UserObj {
    UserObj {
        api_version: "iam/v2",
        kind: "User",
        metadata: meta(
            st,
            format!("/iam/v2/users/{}", a.id),
            account_crn(st, &a),
            a.created_at,
            a.updated_at,
        ),
        id: a.id,
        email: a.email,
        full_name: a.display_name,
        auth_type: a.auth_type,
    }
}

/// List service accounts.
#[utoipa::path(get, path = "/iam/v2/service-accounts", tag = "service accounts", params(("page_size" = Option<usize>, Query), ("page_token" = Option<String>, Query)),
    responses((status = 200, body = ServiceAccountList)), security(("basic" = [])))]
pub async fn list_service_accounts(
    State(st): State<AppState>,
    Authed(c): Authed,
    Params(q): Q,
) -> R<Json<ServiceAccountList>> {
    let mut items = st
        .iam
        .list_accounts(&c, AccountKind::ServiceAccount)
        .await?;
    if let Some(name) = q.get("display_name") {
        items.retain(|a| &a.display_name == name);
    }
    let (items, metadata) = page(
        items,
        &q,
        &format!("{}/iam/v2/service-accounts", st.cfg.public_url),
    )?;
    Ok(Json(ServiceAccountList {
        api_version: "iam/v2",
        kind: "ServiceAccountList",
        metadata,
        data: items.into_iter().map(|a| sa_obj(&st, a)).collect(),
    }))
}

/// Create a service account.
#[utoipa::path(post, path = "/iam/v2/service-accounts", tag = "service accounts", request_body = ServiceAccountCreate,
    responses((status = 201, body = ServiceAccountObj), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)), security(("basic" = [])))]
pub async fn create_service_account(
    State(st): State<AppState>,
    Authed(c): Authed,
    ApiJson(b): ApiJson<ServiceAccountCreate>,
) -> R<impl IntoResponse> {
    let a = st
        .iam
        .create_service_account(&c, &b.display_name, &b.description)
        .await?;
    Ok((StatusCode::CREATED, Json(sa_obj(&st, a))))
}

/// Describe a service account.
#[utoipa::path(get, path = "/iam/v2/service-accounts/{id}", tag = "service accounts", params(("id" = String, Path)),
    responses((status = 200, body = ServiceAccountObj), (status = 404, body = ErrorBody)), security(("basic" = [])))]
pub async fn get_service_account(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path(id): Path<String>,
) -> R<Json<ServiceAccountObj>> {
    Ok(Json(sa_obj(
        &st,
        st.iam
            .get_account(&c, AccountKind::ServiceAccount, &id)
            .await?,
    )))
}

/// Update a service account.
#[utoipa::path(patch, path = "/iam/v2/service-accounts/{id}", tag = "service accounts", params(("id" = String, Path)), request_body = ServiceAccountUpdate,
    responses((status = 200, body = ServiceAccountObj), (status = 404, body = ErrorBody)), security(("basic" = [])))]
pub async fn update_service_account(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ServiceAccountUpdate>,
) -> R<Json<ServiceAccountObj>> {
    let a = st
        .iam
        .update_account(
            &c,
            AccountKind::ServiceAccount,
            &id,
            b.display_name.as_deref(),
            b.description.as_deref(),
        )
        .await?;
    Ok(Json(sa_obj(&st, a)))
}

/// Delete a service account with its keys, role bindings and ACLs.
#[utoipa::path(delete, path = "/iam/v2/service-accounts/{id}", tag = "service accounts", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)), security(("basic" = [])))]
pub async fn delete_service_account(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path(id): Path<String>,
) -> R<StatusCode> {
    st.iam
        .delete_account(&c, AccountKind::ServiceAccount, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List users.
#[utoipa::path(get, path = "/iam/v2/users", tag = "users", params(("page_size" = Option<usize>, Query), ("page_token" = Option<String>, Query)),
    responses((status = 200, body = UserList)), security(("basic" = [])))]
pub async fn list_users(
    State(st): State<AppState>,
    Authed(c): Authed,
    Params(q): Q,
) -> R<Json<UserList>> {
    let items = st.iam.list_accounts(&c, AccountKind::User).await?;
    let (items, metadata) = page(items, &q, &format!("{}/iam/v2/users", st.cfg.public_url))?;
    Ok(Json(UserList {
        api_version: "iam/v2",
        kind: "UserList",
        metadata,
        data: items.into_iter().map(|a| user_obj(&st, a)).collect(),
    }))
}

/// Create a user (keygate extension: the hosted anchor invites users instead).
#[utoipa::path(post, path = "/iam/v2/users", tag = "users", request_body = UserCreate,
    responses((status = 201, body = UserObj), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)), security(("basic" = [])))]
pub async fn create_user(
    State(st): State<AppState>,
    Authed(c): Authed,
    ApiJson(b): ApiJson<UserCreate>,
) -> R<impl IntoResponse> {
    if let Some(p) = &b.password {
        keygate_iam::Iam::check_password(p)?;
    }
    let a = st
        .iam
        .create_user(&c, &b.email, &b.full_name, b.auth_type.as_deref())
        .await?;
    if let Some(p) = &b.password {
        st.iam.set_password(&c, &a.id, p, None).await?;
    }
    Ok((StatusCode::CREATED, Json(user_obj(&st, a))))
}

/// Set a user's console password (the user, or an account admin). keygate extension.
#[utoipa::path(post, path = "/iam/v2/users/{id}/password", tag = "users", params(("id" = String, Path)),
    request_body = PasswordSet,
    responses((status = 204, description = "set; the user's console sessions end"), (status = 422, body = ErrorBody)),
    security(("basic" = [])))]
pub async fn set_user_password(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<PasswordSet>,
) -> R<StatusCode> {
    st.iam
        .set_password(&c, &id, &b.password, b.current_password.as_deref())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Describe a user.
#[utoipa::path(get, path = "/iam/v2/users/{id}", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = UserObj), (status = 404, body = ErrorBody)), security(("basic" = [])))]
pub async fn get_user(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path(id): Path<String>,
) -> R<Json<UserObj>> {
    Ok(Json(user_obj(
        &st,
        st.iam.get_account(&c, AccountKind::User, &id).await?,
    )))
}

/// Update a user.
#[utoipa::path(patch, path = "/iam/v2/users/{id}", tag = "users", params(("id" = String, Path)), request_body = UserUpdate,
    responses((status = 200, body = UserObj), (status = 404, body = ErrorBody)), security(("basic" = [])))]
pub async fn update_user(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<UserUpdate>,
) -> R<Json<UserObj>> {
    Ok(Json(user_obj(
        &st,
        st.iam
            .update_account(&c, AccountKind::User, &id, b.full_name.as_deref(), None)
            .await?,
    )))
}

/// Delete a user with its keys, role bindings and ACLs (never the last OrganizationAdmin).
#[utoipa::path(delete, path = "/iam/v2/users/{id}", tag = "users", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)), security(("basic" = [])))]
pub async fn delete_user(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path(id): Path<String>,
) -> R<StatusCode> {
    st.iam.delete_account(&c, AccountKind::User, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- API keys ------------------------------------------------------------------------

fn key_obj(st: &AppState, k: ApiKey, secret: Option<String>) -> ApiKeyObj {
    let org = org_crn(st);
    let base = &st.cfg.public_url;
    let (owner_path, owner_seg) = match k.owner_kind {
        AccountKind::User => ("users", "user"),
        AccountKind::ServiceAccount => ("service-accounts", "service-account"),
    };
    let owner = ObjRef {
        id: k.owner_id.clone(),
        environment: None,
        related: format!("{base}/iam/v2/{owner_path}/{}", k.owner_id),
        resource_name: org.child(owner_seg, &k.owner_id).to_string(),
        api_version: "iam/v2".into(),
        kind: k.owner_kind.api_kind().into(),
    };
    let resource = match &k.scope {
        // A cloud key's scope is the organization: its reference names it (the
        // hosted schema requires non-empty URI `related` and `resource_name`).
        KeyScope::Cloud => ObjRef {
            id: "CLOUD".into(),
            environment: None,
            related: format!("{base}/org/v2/organizations/{}", st.iam.org().id),
            resource_name: org.to_string(),
            api_version: "org/v2".into(),
            kind: "Cloud".into(),
        },
        KeyScope::Resource {
            kind,
            id,
            environment_id,
        } => {
            let (_, api_version) = resource_base(*kind);
            ObjRef {
                id: if *kind == ResourceKind::Tableflow {
                    "TABLEFLOW".into()
                } else {
                    id.clone()
                },
                environment: Some(environment_id.clone()),
                related: format!("{base}{}", resource_path_of(*kind, environment_id, id)),
                resource_name: Resource::crn_of(&org, *kind, environment_id, id).to_string(),
                api_version: api_version.into(),
                kind: kind.api_kind().into(),
            }
        }
    };
    let phase = k.phase(chrono::Utc::now()).as_str();
    ApiKeyObj {
        api_version: "iam/v2",
        kind: "ApiKey",
        metadata: meta(
            st,
            format!("/iam/v2/api-keys/{}", k.id),
            org.child("api-key", k.id.as_str()).to_string(),
            k.created_at,
            k.updated_at,
        ),
        id: k.id.to_string(),
        spec: ApiKeySpec {
            display_name: k.display_name,
            description: k.description,
            secret,
            owner,
            resource,
            expires_at: k.expires_at,
        },
        status: ApiKeyStatus {
            phase,
            last_used_at: k.last_used_at,
        },
    }
}

/// List keys the caller may manage (`spec.owner`, `spec.resource` filter exactly).
#[utoipa::path(get, path = "/iam/v2/api-keys", tag = "api keys",
    params(("spec.owner" = Option<String>, Query), ("spec.resource" = Option<String>, Query), ("spec.resource.environment" = Option<String>, Query), ("page_size" = Option<usize>, Query), ("page_token" = Option<String>, Query)),
    responses((status = 200, body = ApiKeyList)), security(("basic" = [])))]
pub async fn list_api_keys(
    State(st): State<AppState>,
    Authed(c): Authed,
    Params(q): Q,
) -> R<Json<ApiKeyList>> {
    let resource = q.get("spec.resource").map(|r| {
        (
            r.as_str(),
            q.get("spec.resource.environment").map(String::as_str),
        )
    });
    let items = st
        .iam
        .list_api_keys(&c, q.get("spec.owner").map(String::as_str), resource)
        .await?;
    let (items, metadata) = page(items, &q, &format!("{}/iam/v2/api-keys", st.cfg.public_url))?;
    Ok(Json(ApiKeyList {
        api_version: "iam/v2",
        kind: "ApiKeyList",
        metadata,
        data: items.into_iter().map(|k| key_obj(&st, k, None)).collect(),
    }))
}

/// Create a key. Answers 202 like the hosted anchor, but the key works as soon as the
/// response is sent. The secret is in this response and nowhere else, ever.
#[utoipa::path(post, path = "/iam/v2/api-keys", tag = "api keys", request_body = ApiKeyCreate,
    responses((status = 202, body = ApiKeyObj), (status = 402, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)), security(("basic" = [])))]
pub async fn create_api_key(
    State(st): State<AppState>,
    Authed(c): Authed,
    ApiJson(b): ApiJson<ApiKeyCreate>,
) -> R<impl IntoResponse> {
    let s = b.spec;
    let (k, secret) = st
        .iam
        .create_api_key(
            &c,
            NewApiKey {
                display_name: s.display_name,
                description: s.description,
                owner_id: s.owner.map(|o| o.id),
                resource_id: s.resource.as_ref().map_or("CLOUD", |r| &r.id).to_owned(),
                environment_id: s.resource.and_then(|r| r.environment),
                expires_at: s.expires_at,
            },
        )
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(key_obj(&st, k, Some(secret.expose().to_owned()))),
    ))
}

/// Describe a key (never its secret).
#[utoipa::path(get, path = "/iam/v2/api-keys/{id}", tag = "api keys", params(("id" = String, Path)),
    responses((status = 200, body = ApiKeyObj), (status = 404, body = ErrorBody)), security(("basic" = [])))]
pub async fn get_api_key(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path(id): Path<String>,
) -> R<Json<ApiKeyObj>> {
    Ok(Json(key_obj(&st, st.iam.get_api_key(&c, &id).await?, None)))
}

/// Change a key's name or description.
#[utoipa::path(patch, path = "/iam/v2/api-keys/{id}", tag = "api keys", params(("id" = String, Path)), request_body = ApiKeyUpdate,
    responses((status = 200, body = ApiKeyObj), (status = 404, body = ErrorBody)), security(("basic" = [])))]
pub async fn update_api_key(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ApiKeyUpdate>,
) -> R<Json<ApiKeyObj>> {
    if b.spec.owner.is_some() || b.spec.resource.is_some() {
        let now = key_obj(&st, st.iam.get_api_key(&c, &id).await?, None);
        if b.spec
            .owner
            .as_ref()
            .is_some_and(|o| o.id != now.spec.owner.id)
        {
            return Err(ApiError::invalid("/spec/owner", "is immutable"));
        }
        let same_resource = |r: &ResourceIn| {
            r.id.eq_ignore_ascii_case(&now.spec.resource.id)
                && r.environment
                    .as_ref()
                    .is_none_or(|e| Some(e) == now.spec.resource.environment.as_ref())
        };
        if b.spec.resource.as_ref().is_some_and(|r| !same_resource(r)) {
            return Err(ApiError::invalid("/spec/resource", "is immutable"));
        }
    }
    let k = st
        .iam
        .update_api_key(
            &c,
            &id,
            b.spec.display_name.as_deref(),
            b.spec.description.as_deref(),
        )
        .await?;
    Ok(Json(key_obj(&st, k, None)))
}

/// Disable a key (keygate extension). It stops working at once.
#[utoipa::path(post, path = "/iam/v2/api-keys/{id}/disable", tag = "api keys", params(("id" = String, Path)),
    responses((status = 200, body = ApiKeyObj), (status = 404, body = ErrorBody)), security(("basic" = [])))]
pub async fn disable_api_key(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path(id): Path<String>,
) -> R<Json<ApiKeyObj>> {
    Ok(Json(key_obj(
        &st,
        st.iam.set_api_key_disabled(&c, &id, true).await?,
        None,
    )))
}

/// Enable a disabled key (keygate extension).
#[utoipa::path(post, path = "/iam/v2/api-keys/{id}/enable", tag = "api keys", params(("id" = String, Path)),
    responses((status = 200, body = ApiKeyObj), (status = 404, body = ErrorBody)), security(("basic" = [])))]
pub async fn enable_api_key(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path(id): Path<String>,
) -> R<Json<ApiKeyObj>> {
    Ok(Json(key_obj(
        &st,
        st.iam.set_api_key_disabled(&c, &id, false).await?,
        None,
    )))
}

/// Delete a key.
#[utoipa::path(delete, path = "/iam/v2/api-keys/{id}", tag = "api keys", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)), security(("basic" = [])))]
pub async fn delete_api_key(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path(id): Path<String>,
) -> R<StatusCode> {
    st.iam.delete_api_key(&c, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- role bindings ---------------------------------------------------------------------

fn rb_obj(st: &AppState, rb: RoleBinding) -> RoleBindingObj {
    RoleBindingObj {
        api_version: "iam/v2",
        kind: "RoleBinding",
        metadata: meta(
            st,
            format!("/iam/v2/role-bindings/{}", rb.id),
            org_crn(st).to_string() + "/role-binding=" + &rb.id,
            rb.created_at,
            rb.created_at,
        ),
        id: rb.id,
        principal: rb.principal.to_string(),
        role_name: rb.role.to_string(),
        crn_pattern: rb.crn_pattern.to_string(),
    }
}

/// List role bindings at or below `crn_pattern` (required).
#[utoipa::path(get, path = "/iam/v2/role-bindings", tag = "role bindings",
    params(("crn_pattern" = String, Query), ("principal" = Option<String>, Query), ("role_name" = Option<String>, Query), ("page_size" = Option<usize>, Query), ("page_token" = Option<String>, Query)),
    responses((status = 200, body = RoleBindingList), (status = 422, body = ErrorBody)), security(("basic" = [])))]
pub async fn list_role_bindings(
    State(st): State<AppState>,
    Authed(c): Authed,
    Params(q): Q,
) -> R<Json<RoleBindingList>> {
    let crn = q
        .get("crn_pattern")
        .ok_or_else(|| ApiError::invalid_param("crn_pattern", "is required"))?;
    let items = st
        .iam
        .list_role_bindings(
            &c,
            crn,
            q.get("principal").map(String::as_str),
            q.get("role_name").map(String::as_str),
        )
        .await?;
    let (items, metadata) = page(
        items,
        &q,
        &format!("{}/iam/v2/role-bindings", st.cfg.public_url),
    )?;
    Ok(Json(RoleBindingList {
        api_version: "iam/v2",
        kind: "RoleBindingList",
        metadata,
        data: items.into_iter().map(|r| rb_obj(&st, r)).collect(),
    }))
}

/// Bind a role.
#[utoipa::path(post, path = "/iam/v2/role-bindings", tag = "role bindings", request_body = RoleBindingCreate,
    responses((status = 201, body = RoleBindingObj), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)), security(("basic" = [])))]
pub async fn create_role_binding(
    State(st): State<AppState>,
    Authed(c): Authed,
    ApiJson(b): ApiJson<RoleBindingCreate>,
) -> R<impl IntoResponse> {
    let rb = st
        .iam
        .create_role_binding(&c, &b.principal, &b.role_name, &b.crn_pattern)
        .await?;
    Ok((StatusCode::CREATED, Json(rb_obj(&st, rb))))
}

/// Describe a role binding.
#[utoipa::path(get, path = "/iam/v2/role-bindings/{id}", tag = "role bindings", params(("id" = String, Path)),
    responses((status = 200, body = RoleBindingObj), (status = 404, body = ErrorBody)), security(("basic" = [])))]
pub async fn get_role_binding(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path(id): Path<String>,
) -> R<Json<RoleBindingObj>> {
    Ok(Json(rb_obj(&st, st.iam.get_role_binding(&c, &id).await?)))
}

/// Revoke a role binding (never the last OrganizationAdmin's).
#[utoipa::path(delete, path = "/iam/v2/role-bindings/{id}", tag = "role bindings", params(("id" = String, Path)),
    responses((status = 200, body = RoleBindingObj), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)), security(("basic" = [])))]
pub async fn delete_role_binding(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path(id): Path<String>,
) -> R<Json<RoleBindingObj>> {
    // As the hosted API: 200 with the binding that was deleted.
    Ok(Json(rb_obj(
        &st,
        st.iam.delete_role_binding(&c, &id).await?,
    )))
}

// ---- ACLs --------------------------------------------------------------------------------

fn acl_obj(st: &AppState, a: &Acl) -> AclObj {
    let b = &a.binding;
    AclObj {
        kind: "KafkaAcl",
        metadata: AclMeta {
            self_: format!(
                "{}/kafka/v3/clusters/{}/acls?resource_type={}&resource_name={}&pattern_type={}&principal={}&host=*&operation={}&permission={}",
                st.cfg.public_url, a.cluster_id, b.resource_type, b.resource_name, b.pattern_type.as_str(), b.principal, b.operation, b.permission.as_str()
            ),
        },
        cluster_id: a.cluster_id.clone(),
        resource_type: b.resource_type.as_str().into(),
        resource_name: b.resource_name.clone(),
        pattern_type: b.pattern_type.as_str().into(),
        principal: b.principal.to_string(),
        host: "*".into(),
        operation: b.operation.as_str().into(),
        permission: b.permission.as_str().into(),
    }
}

fn acl_from(a: AclCreate, prefix: &str) -> R<AclBinding> {
    let p = |f: &str| format!("{prefix}/{f}");
    let resource_type = ResourceType::parse(&a.resource_type).ok_or_else(|| {
        ApiError::invalid(
            p("resource_type"),
            "must be TOPIC, GROUP, CLUSTER or TRANSACTIONAL_ID",
        )
    })?;
    let pattern_type = PatternType::parse(&a.pattern_type)
        .ok_or_else(|| ApiError::invalid(p("pattern_type"), "must be LITERAL or PREFIXED"))?;
    let operation = Operation::parse(&a.operation).ok_or_else(|| {
        ApiError::invalid(
            p("operation"),
            format!(
                "unknown operation `{}`",
                a.operation.chars().take(40).collect::<String>()
            ),
        )
    })?;
    let permission = Permission::parse(&a.permission)
        .ok_or_else(|| ApiError::invalid(p("permission"), "must be ALLOW or DENY"))?;
    let principal = Principal::parse(&a.principal)
        .map_err(|e| ApiError::invalid(p("principal"), e.to_string()))?;
    if a.host.as_deref().is_some_and(|h| h != "*") {
        return Err(ApiError::invalid(
            p("host"),
            "must be `*`: keygate has no per-host ACLs",
        ));
    }
    let binding = AclBinding {
        principal,
        resource_type,
        resource_name: a.resource_name,
        pattern_type,
        operation,
        permission,
    };
    binding
        .validate()
        .map_err(|e| ApiError::invalid(prefix.to_owned(), e.to_string()))?;
    Ok(binding)
}

fn acl_filter(q: &HashMap<String, String>) -> R<AclFilter> {
    let any = |k: &str| {
        q.get(k)
            .filter(|v| !v.eq_ignore_ascii_case("ANY") && !v.is_empty())
    };
    let parse = |k: &str, ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(ApiError::invalid_param(k, "has an unknown value"))
        }
    };
    let mut f = AclFilter::default();
    if let Some(v) = any("resource_type") {
        f.resource_type = ResourceType::parse(v);
        parse("resource_type", f.resource_type.is_some())?;
    }
    if let Some(v) = any("pattern_type") {
        f.pattern_type = PatternType::parse(v);
        parse("pattern_type", f.pattern_type.is_some())?;
    }
    if let Some(v) = any("operation") {
        f.operation = Operation::parse(v);
        parse("operation", f.operation.is_some())?;
    }
    if let Some(v) = any("permission") {
        f.permission = Permission::parse(v);
        parse("permission", f.permission.is_some())?;
    }
    if let Some(v) = q.get("principal").filter(|v| !v.is_empty()) {
        f.principal = Some(
            Principal::parse(v).map_err(|e| ApiError::invalid_param("principal", e.to_string()))?,
        );
    }
    f.resource_name = q.get("resource_name").filter(|v| !v.is_empty()).cloned();
    f.host = q.get("host").cloned();
    Ok(f)
}

fn acl_list(st: &AppState, cluster: &str, acls: &[Acl]) -> AclList {
    AclList {
        kind: "KafkaAclList",
        metadata: AclMeta {
            self_: format!("{}/kafka/v3/clusters/{cluster}/acls", st.cfg.public_url),
        },
        data: acls.iter().map(|a| acl_obj(st, a)).collect(),
    }
}

/// Create an ACL (ALTER on the cluster).
#[utoipa::path(post, path = "/kafka/v3/clusters/{cluster_id}/acls", tag = "acls", params(("cluster_id" = String, Path)), request_body = AclCreate,
    responses((status = 201), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)), security(("basic" = [])))]
pub async fn create_acl(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path(cluster): Path<String>,
    ApiJson(b): ApiJson<AclCreate>,
) -> R<StatusCode> {
    let binding = acl_from(b, "")?;
    st.iam.create_acls(&c, &cluster, vec![binding]).await?;
    Ok(StatusCode::CREATED)
}

/// Create several ACLs; all or none.
#[utoipa::path(post, path = "/kafka/v3/clusters/{cluster_id}/acls:batch", tag = "acls", params(("cluster_id" = String, Path)), request_body = AclBatch,
    responses((status = 201), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)), security(("basic" = [])))]
pub async fn create_acls_batch(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path(cluster): Path<String>,
    ApiJson(b): ApiJson<AclBatch>,
) -> R<StatusCode> {
    let bindings = b
        .data
        .into_iter()
        .enumerate()
        .map(|(i, a)| acl_from(a, &format!("/data/{i}")))
        .collect::<R<Vec<_>>>()?;
    st.iam.create_acls(&c, &cluster, bindings).await?;
    Ok(StatusCode::CREATED)
}

/// List ACLs matching the filters (DESCRIBE on the cluster). Omitted filters match anything.
#[utoipa::path(get, path = "/kafka/v3/clusters/{cluster_id}/acls", tag = "acls",
    params(("cluster_id" = String, Path), ("resource_type" = Option<String>, Query), ("resource_name" = Option<String>, Query), ("pattern_type" = Option<String>, Query),
           ("principal" = Option<String>, Query), ("operation" = Option<String>, Query), ("permission" = Option<String>, Query)),
    responses((status = 200, body = AclList), (status = 403, body = ErrorBody)), security(("basic" = [])))]
pub async fn list_acls(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path(cluster): Path<String>,
    Params(q): Q,
) -> R<Json<AclList>> {
    let f = acl_filter(&q)?;
    let acls = st.iam.list_acls(&c, &cluster, &f).await?;
    Ok(Json(acl_list(&st, &cluster, &acls)))
}

/// Delete the ACLs matching the filters (ALTER on the cluster); returns them.
#[utoipa::path(delete, path = "/kafka/v3/clusters/{cluster_id}/acls", tag = "acls",
    params(("cluster_id" = String, Path), ("resource_type" = Option<String>, Query), ("resource_name" = Option<String>, Query), ("pattern_type" = Option<String>, Query),
           ("principal" = Option<String>, Query), ("operation" = Option<String>, Query), ("permission" = Option<String>, Query)),
    responses((status = 200, body = AclList), (status = 403, body = ErrorBody)), security(("basic" = [])))]
pub async fn delete_acls(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path(cluster): Path<String>,
    Params(q): Q,
) -> R<Json<AclList>> {
    // As in Kafka REST: a delete names its type, pattern, operation and permission
    // (`ANY` is a value), so an empty query cannot delete every ACL by accident.
    for k in ["resource_type", "pattern_type", "operation", "permission"] {
        if !q.contains_key(k) {
            return Err(ApiError::invalid_param(k, "is required to delete ACLs"));
        }
    }
    let f = acl_filter(&q)?;
    let acls = st.iam.delete_acls(&c, &cluster, &f).await?;
    Ok(Json(acl_list(&st, &cluster, &acls)))
}

// ---- organization ------------------------------------------------------------------------

/// The organization (one per deployment); its `resource_name` is the root of every CRN.
#[utoipa::path(get, path = "/org/v2/organizations", tag = "environments",
    responses((status = 200, body = OrganizationList)), security(("basic" = [])))]
pub async fn list_organizations(
    State(st): State<AppState>,
    Authed(_c): Authed,
) -> Json<OrganizationList> {
    let url = format!("{}/org/v2/organizations", st.cfg.public_url);
    Json(OrganizationList {
        api_version: "org/v2",
        kind: "OrganizationList",
        metadata: ListMeta {
            first: url,
            next: None,
            total_size: 1,
        },
        data: vec![org_obj(&st)],
    })
}

/// The organization by id (there is one; any other id is not found).
#[utoipa::path(get, path = "/org/v2/organizations/{id}", tag = "environments", params(("id" = String, Path)),
    responses((status = 200, body = OrganizationObj), (status = 404, body = ErrorBody)), security(("basic" = [])))]
pub async fn get_organization(
    State(st): State<AppState>,
    Authed(_c): Authed,
    Path(id): Path<String>,
) -> R<Json<OrganizationObj>> {
    if id != st.iam.org().id {
        return Err(ApiError::not_found("no such organization"));
    }
    Ok(Json(org_obj(&st)))
}

/// Rename the organization (OrganizationAdmin).
#[utoipa::path(patch, path = "/org/v2/organizations/{id}", tag = "environments", params(("id" = String, Path)), request_body = OrganizationUpdate,
    responses((status = 200, body = OrganizationObj), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)), security(("basic" = [])))]
pub async fn update_organization(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<OrganizationUpdate>,
) -> R<Json<OrganizationObj>> {
    st.iam
        .rename_organization(&c, &id, b.display_name.as_deref())
        .await?;
    Ok(Json(org_obj(&st)))
}

fn org_obj(st: &AppState) -> OrganizationObj {
    let o = keygate_core::model::Organization::clone(&st.iam.org());
    OrganizationObj {
        api_version: "org/v2",
        kind: "Organization",
        metadata: meta(
            st,
            format!("/org/v2/organizations/{}", o.id),
            o.crn().to_string(),
            o.created_at,
            o.created_at,
        ),
        id: o.id,
        display_name: o.display_name,
    }
}

// ---- role catalogue (keygate extension) ---------------------------------------------

fn role_obj(e: keygate_authz::catalogue::RoleEntry) -> RoleObj {
    RoleObj {
        api_version: "iam/v2",
        kind: "Role",
        name: e.role.as_str(),
        description: e.role.description(),
        allows_prefix: e.allows_prefix,
        scopes: e
            .control_plane
            .into_iter()
            .map(|(scope, caps)| RoleScopeObj {
                scope: scope.name(),
                example: scope.example(),
                control_plane: caps.into_iter().map(|c| c.as_str()).collect(),
            })
            .collect(),
        kafka: e
            .kafka
            .into_iter()
            .map(|(rt, ops)| (rt.as_str(), ops.into_iter().map(|o| o.as_str()).collect()))
            .collect(),
        services: e.services.into_iter().map(|s| s.as_str()).collect(),
    }
}

/// The predefined roles: where each may be bound and what it allows, read off the
/// tables the authorizer decides with.
#[utoipa::path(get, path = "/iam/v2/roles", tag = "role bindings",
    responses((status = 200, body = RoleList)), security(("basic" = [])))]
pub async fn list_roles(Authed(_c): Authed) -> Json<RoleList> {
    Json(RoleList {
        api_version: "iam/v2",
        kind: "RoleList",
        data: keygate_authz::catalogue::catalogue()
            .into_iter()
            .map(role_obj)
            .collect(),
    })
}

/// One predefined role by name.
#[utoipa::path(get, path = "/iam/v2/roles/{name}", tag = "role bindings", params(("name" = String, Path)),
    responses((status = 200, body = RoleObj), (status = 404, body = ErrorBody)), security(("basic" = [])))]
pub async fn get_role(Authed(_c): Authed, Path(name): Path<String>) -> R<Json<RoleObj>> {
    let role = keygate_core::Role::parse(&name).ok_or_else(|| {
        ApiError::not_found(format!(
            "no role named `{}`",
            name.chars().take(64).collect::<String>()
        ))
    })?;
    Ok(Json(role_obj(keygate_authz::catalogue::entry(role))))
}

// ---- service quotas ---------------------------------------------------------------------

/// The per-account key quota's code.
const KEY_QUOTA: &str = "iam.max_api_keys.per_account";

/// Every quota keygate enforces: the per-account key limit (one row per account, with
/// its usage) and the listeners' organization-wide limits.
async fn applied_quotas(st: &AppState, c: &keygate_iam::Caller) -> R<Vec<AppliedQuotaObj>> {
    let base = &st.cfg.public_url;
    let org = st.iam.org();
    let org_ref = QuotaRef {
        id: org.id.clone(),
        related: format!("{base}/org/v2/organizations/{}", org.id),
        resource_name: org.crn().to_string(),
    };
    let quota =
        |id: &'static str, scope, display_name, default_limit, applied_limit| AppliedQuotaObj {
            api_version: "service-quota/v1",
            kind: "AppliedQuota",
            id,
            metadata: QuotaMeta {
                self_: format!("{base}/service-quota/v1/applied-quotas/{id}"),
            },
            scope,
            display_name,
            default_limit,
            applied_limit,
            usage: None,
            user: None,
            organization: org_ref.clone(),
        };
    let (max, held) = st.iam.key_quota(c).await?;
    let mut out: Vec<AppliedQuotaObj> = held
        .into_iter()
        .map(|(a, n)| {
            let (scope, path, seg) = match a.kind {
                AccountKind::User => ("USER_ACCOUNT", "users", "user"),
                AccountKind::ServiceAccount => {
                    ("SERVICE_ACCOUNT", "service-accounts", "service-account")
                }
            };
            AppliedQuotaObj {
                usage: Some(i64::from(n)),
                user: Some(QuotaRef {
                    related: format!("{base}/iam/v2/{path}/{}", a.id),
                    resource_name: org.crn().child(seg, &a.id).to_string(),
                    id: a.id,
                }),
                ..quota(
                    KEY_QUOTA,
                    scope,
                    "API keys per user or service account",
                    10,
                    i64::from(max),
                )
            }
        })
        .collect();
    out.extend(st.cfg.limits.iter().map(|l| {
        quota(
            l.id,
            "ORGANIZATION",
            l.display_name,
            l.default_limit,
            l.applied_limit,
        )
    }));
    Ok(out)
}

/// The quotas keygate enforces and their usage (filters: `scope`, `id`).
#[utoipa::path(get, path = "/service-quota/v1/applied-quotas", tag = "service quotas",
    params(("scope" = Option<String>, Query), ("id" = Option<String>, Query), ("page_size" = Option<usize>, Query), ("page_token" = Option<String>, Query)),
    responses((status = 200, body = AppliedQuotaList)), security(("basic" = [])))]
pub async fn list_applied_quotas(
    State(st): State<AppState>,
    Authed(c): Authed,
    Params(q): Q,
) -> R<Json<AppliedQuotaList>> {
    let mut items = applied_quotas(&st, &c).await?;
    if let Some(scope) = q.get("scope") {
        items.retain(|i| i.scope.eq_ignore_ascii_case(scope));
    }
    if let Some(id) = q.get("id") {
        items.retain(|i| i.id == id);
    }
    let (items, metadata) = page(
        items,
        &q,
        &format!("{}/service-quota/v1/applied-quotas", st.cfg.public_url),
    )?;
    Ok(Json(AppliedQuotaList {
        api_version: "service-quota/v1",
        kind: "AppliedQuotaList",
        metadata,
        data: items,
    }))
}

/// One quota by code (for a per-account quota: its limit, without an account).
#[utoipa::path(get, path = "/service-quota/v1/applied-quotas/{id}", tag = "service quotas", params(("id" = String, Path)),
    responses((status = 200, body = AppliedQuotaObj), (status = 404, body = ErrorBody)), security(("basic" = [])))]
pub async fn get_applied_quota(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path(id): Path<String>,
) -> R<Json<AppliedQuotaObj>> {
    let mut found = applied_quotas(&st, &c)
        .await?
        .into_iter()
        .find(|q| q.id == id)
        .ok_or_else(|| ApiError::not_found("no such quota"))?;
    if found.user.is_some() {
        found.user = None;
        found.usage = None;
        found.scope = "ORGANIZATION";
    }
    Ok(Json(found))
}
