//! Client quotas (`/kafka-quotas/v1/client-quotas`) in the hosted API's shapes: byte
//! rates as decimal strings under `spec.throughput`, principals as object references
//! (`<default>` for everyone without a quota of their own), the cluster and its
//! environment as references. keygate adds `spec.request_rate` (requests per second).
//! Thin: the rules live in `keygate-iam::quotas`.

use crate::auth::Authed;
use crate::error::{ApiError, ApiJson, ErrorBody, Params};
use crate::handlers::{account_ref, cluster_ref, env_ref, meta, org_crn, page};
use crate::types::{IdIn, ListMeta, ObjRef, ObjectMeta};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use keygate_core::model::{ClientQuota, DEFAULT_QUOTA_PRINCIPAL};
use keygate_iam::QuotaInput;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

type R<T> = Result<T, ApiError>;

/// A client quota.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientQuotaObj {
    /// `kafka-quotas/v1`
    pub api_version: &'static str,
    /// `ClientQuota`
    pub kind: &'static str,
    /// `cq-…`
    pub id: String,
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    pub spec: ClientQuotaSpec,
}

/// A client quota's spec.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientQuotaSpec {
    /// Name.
    pub display_name: String,
    /// Description.
    pub description: String,
    /// Byte rates per principal.
    pub throughput: Throughput,
    /// The Kafka cluster.
    pub cluster: ObjRef,
    /// Its principals.
    pub principals: Vec<ObjRef>,
    /// The cluster's environment.
    pub environment: ObjRef,
    /// (keygate extension) Requests per second per principal; absent: not limited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_rate: Option<u64>,
}

/// Byte rates, as decimal strings (the hosted document's int64-as-string).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Throughput {
    /// Produce bytes per second.
    #[serde(default)]
    pub ingress_byte_rate: Option<String>,
    /// Fetch bytes per second.
    #[serde(default)]
    pub egress_byte_rate: Option<String>,
}

/// A page of client quotas.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientQuotaList {
    /// `kafka-quotas/v1`
    pub api_version: &'static str,
    /// `ClientQuotaList`
    pub kind: &'static str,
    /// Paging.
    pub metadata: ListMeta,
    /// Quotas.
    pub data: Vec<ClientQuotaObj>,
}

/// Create a client quota, or (every field optional) change one.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ClientQuotaIn {
    /// Spec.
    pub spec: ClientQuotaSpecIn,
}

/// A client quota's fields as sent.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ClientQuotaSpecIn {
    /// Name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Byte rates.
    #[serde(default)]
    pub throughput: Option<Throughput>,
    /// The Kafka cluster (create only).
    #[serde(default)]
    pub cluster: Option<IdIn>,
    /// Principals: `sa-…`, `u-…`, `pool-…`, `<default>`.
    #[serde(default)]
    pub principals: Option<Vec<IdIn>>,
    /// The environment.
    #[serde(default)]
    pub environment: Option<IdIn>,
    /// (keygate extension) Requests per second per principal; 0 or null: not limited.
    #[serde(default)]
    pub request_rate: Option<Option<u64>>,
}

impl From<ClientQuotaSpecIn> for QuotaInput {
    fn from(s: ClientQuotaSpecIn) -> Self {
        let (ingress, egress) = match s.throughput {
            Some(t) => (t.ingress_byte_rate, t.egress_byte_rate),
            None => (None, None),
        };
        QuotaInput {
            display_name: s.display_name,
            description: s.description,
            cluster_id: s.cluster.map(|c| c.id),
            environment_id: s.environment.map(|e| e.id),
            principals: s.principals.map(|v| v.into_iter().map(|p| p.id).collect()),
            ingress_byte_rate: ingress,
            egress_byte_rate: egress,
            request_rate: s.request_rate,
        }
    }
}

fn principal_ref(st: &AppState, id: &str) -> ObjRef {
    let base = &st.cfg.public_url;
    if id == DEFAULT_QUOTA_PRINCIPAL {
        // Everyone without a quota of their own: a reference to no one in particular.
        return ObjRef {
            id: id.to_owned(),
            environment: None,
            related: format!("{base}/iam/v2/service-accounts"),
            resource_name: org_crn(st).to_string(),
            api_version: "iam/v2".into(),
            kind: "ServiceAccount".into(),
        };
    }
    if keygate_core::IdKind::IdentityPool.matches(id) {
        return ObjRef {
            id: id.to_owned(),
            environment: None,
            related: format!("{base}/iam/v2/identity-providers/-/identity-pools/{id}"),
            resource_name: org_crn(st).child("identity-pool", id).to_string(),
            api_version: "iam/v2".into(),
            kind: "IdentityPool".into(),
        };
    }
    account_ref(st, id)
}

fn quota_obj(st: &AppState, q: ClientQuota) -> ClientQuotaObj {
    let crn = format!(
        "{}/client-quota={}",
        keygate_core::model::Resource::crn_of(
            &org_crn(st),
            keygate_core::ResourceKind::Kafka,
            &q.environment_id,
            &q.cluster_id
        ),
        q.id
    );
    ClientQuotaObj {
        api_version: "kafka-quotas/v1",
        kind: "ClientQuota",
        metadata: meta(
            st,
            format!("/kafka-quotas/v1/client-quotas/{}", q.id),
            crn,
            q.created_at,
            q.updated_at,
        ),
        spec: ClientQuotaSpec {
            throughput: Throughput {
                ingress_byte_rate: Some(q.ingress_byte_rate.to_string()),
                egress_byte_rate: Some(q.egress_byte_rate.to_string()),
            },
            cluster: cluster_ref(st, &q.environment_id, &q.cluster_id),
            principals: q.principals.iter().map(|p| principal_ref(st, p)).collect(),
            environment: env_ref(st, &q.environment_id),
            request_rate: q.request_rate,
            display_name: q.display_name,
            description: q.description,
        },
        id: q.id,
    }
}

/// List client quotas (`spec.cluster` and `environment` filter).
#[utoipa::path(get, path = "/kafka-quotas/v1/client-quotas", tag = "client quotas",
    params(("spec.cluster" = Option<String>, Query), ("environment" = Option<String>, Query), ("page_size" = Option<usize>, Query), ("page_token" = Option<String>, Query)),
    responses((status = 200, body = ClientQuotaList)), security(("basic" = [])))]
pub async fn list_quotas(
    State(st): State<AppState>,
    Authed(c): Authed,
    Params(q): Params,
) -> R<Json<ClientQuotaList>> {
    let cluster = q.get("spec.cluster").map(String::as_str);
    let mut items = st.iam.list_client_quotas(&c, cluster).await?;
    if let Some(env) = q.get("environment") {
        items.retain(|i| &i.environment_id == env);
    }
    let url = format!("{}/kafka-quotas/v1/client-quotas", st.cfg.public_url);
    let (items, metadata) = page(items, &q, &url)?;
    Ok(Json(ClientQuotaList {
        api_version: "kafka-quotas/v1",
        kind: "ClientQuotaList",
        metadata,
        data: items.into_iter().map(|i| quota_obj(&st, i)).collect(),
    }))
}

/// Create a client quota (ALTER_CONFIGS on the cluster).
#[utoipa::path(post, path = "/kafka-quotas/v1/client-quotas", tag = "client quotas", request_body = ClientQuotaIn,
    responses((status = 202, body = ClientQuotaObj), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)), security(("basic" = [])))]
pub async fn create_quota(
    State(st): State<AppState>,
    Authed(c): Authed,
    ApiJson(b): ApiJson<ClientQuotaIn>,
) -> R<(StatusCode, Json<ClientQuotaObj>)> {
    let q = st.iam.create_client_quota(&c, b.spec.into()).await?;
    Ok((StatusCode::ACCEPTED, Json(quota_obj(&st, q))))
}

/// Describe a client quota.
#[utoipa::path(get, path = "/kafka-quotas/v1/client-quotas/{id}", tag = "client quotas", params(("id" = String, Path)),
    responses((status = 200, body = ClientQuotaObj), (status = 404, body = ErrorBody)), security(("basic" = [])))]
pub async fn get_quota(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path(id): Path<String>,
) -> R<Json<ClientQuotaObj>> {
    Ok(Json(quota_obj(
        &st,
        st.iam.get_client_quota(&c, &id).await?,
    )))
}

/// Change a client quota's name, description, principals or rates.
#[utoipa::path(patch, path = "/kafka-quotas/v1/client-quotas/{id}", tag = "client quotas", params(("id" = String, Path)), request_body = ClientQuotaIn,
    responses((status = 200, body = ClientQuotaObj), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)), security(("basic" = [])))]
pub async fn update_quota(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ClientQuotaIn>,
) -> R<Json<ClientQuotaObj>> {
    let q = st.iam.update_client_quota(&c, &id, b.spec.into()).await?;
    Ok(Json(quota_obj(&st, q)))
}

/// Delete a client quota.
#[utoipa::path(delete, path = "/kafka-quotas/v1/client-quotas/{id}", tag = "client quotas", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)), security(("basic" = [])))]
pub async fn delete_quota(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path(id): Path<String>,
) -> R<StatusCode> {
    st.iam.delete_client_quota(&c, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
