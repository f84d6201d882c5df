//! keygate's REST API: shape-compatible with the hosted anchor's IAM v2, org v2,
//! cmk v2 and Kafka REST v3 ACL endpoints (reference/rest-api.md).
//!
//! Layout: [`types`] (the serde shapes — the only serde in the workspace's API path),
//! [`error`] (errors → HTTP in one place; the strict JSON extractor), [`auth`] (HTTP
//! Basic with a CLOUD key), [`handlers`] (thin: decode, call `keygate-iam`, render).
//! The OpenAPI document is generated from the handlers' annotations.
#![deny(missing_docs)]

pub mod audit;
pub mod auth;
pub mod certificates;
pub mod error;
pub mod handlers;
pub mod oauth;
pub mod quotas;
pub mod types;

use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use keygate_core::ResourceKind;
use keygate_iam::{Iam, UsageRecorder};
use std::sync::Arc;
use std::time::{Duration, Instant};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;

/// Settings of the REST API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Base URL used in `self` and `related` links.
    pub public_url: String,
    /// How long every failed authentication waits before answering.
    pub auth_failure_delay: Duration,
    /// Where the Kafka gateway listens, to show clients their bootstrap address.
    pub kafka_gateway: Option<KafkaGatewayAddress>,
    /// The HTTP gateway's base URL (Schema Registry, ksqlDB, Flink, Tableflow).
    pub http_gateway: Option<String>,
    /// Organization-wide limits the listeners enforce, shown by the service-quota
    /// API: (code, what it limits, default, in force).
    pub limits: Vec<EnforcedLimit>,
}

/// One organization-wide limit: its quota code, what it limits, its default and the
/// value in force.
#[derive(Debug, Clone)]
pub struct EnforcedLimit {
    /// e.g. `kafka.max_connections.per_ip`.
    pub id: &'static str,
    /// What it limits.
    pub display_name: &'static str,
    /// keygate's default.
    pub default_limit: i64,
    /// The configured value.
    pub applied_limit: i64,
}

/// The Kafka gateway's public addressing.
pub type KafkaGatewayAddress = keygate_core::model::GatewayAddress;

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    /// The IAM service.
    pub iam: Arc<Iam>,
    /// Key-usage recorder.
    pub usage: Arc<UsageRecorder>,
    /// Settings.
    pub cfg: Arc<ApiConfig>,
    /// Where failed authentications and denied calls are recorded.
    pub auditor: keygate_audit::Auditor,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "keygate", description = "Self-hosted identity and access control for Kafka platforms. \
        Authenticate with HTTP Basic (a CLOUD API key and its secret) or with Bearer (an STS token from /sts/v1/oauth2/token)."),
    paths(
        handlers::healthz, handlers::readyz, handlers::list_organizations, handlers::get_organization, handlers::update_organization,
        handlers::list_environments, handlers::create_environment, handlers::get_environment, handlers::update_environment, handlers::delete_environment,
        handlers::list_kafka, handlers::create_kafka, handlers::get_kafka, handlers::update_kafka, handlers::delete_kafka,
        handlers::list_service_accounts, handlers::create_service_account, handlers::get_service_account, handlers::update_service_account, handlers::delete_service_account,
        handlers::list_users, handlers::create_user, handlers::set_user_password, handlers::get_user, handlers::update_user, handlers::delete_user,
        handlers::list_api_keys, handlers::create_api_key, handlers::get_api_key, handlers::update_api_key, handlers::disable_api_key, handlers::enable_api_key, handlers::delete_api_key,
        handlers::list_role_bindings, handlers::create_role_binding, handlers::get_role_binding, handlers::delete_role_binding, handlers::list_roles, handlers::get_role, handlers::list_applied_quotas, handlers::get_applied_quota,
        handlers::create_acl, handlers::create_acls_batch, handlers::list_acls, handlers::delete_acls,
        oauth::list_providers, oauth::create_provider, oauth::get_provider, oauth::update_provider, oauth::delete_provider, oauth::refresh_provider_jwks,
        oauth::list_pools, oauth::create_pool, oauth::get_pool, oauth::update_pool, oauth::delete_pool,
        oauth::token_exchange, oauth::jwks, oauth::rotate_signing_key,
        certificates::list_authorities, certificates::create_authority, certificates::get_authority, certificates::update_authority, certificates::delete_authority,
        certificates::list_pools, certificates::create_pool, certificates::get_pool, certificates::update_pool, certificates::delete_pool,
        audit::list_events,
        quotas::list_quotas, quotas::create_quota, quotas::get_quota, quotas::update_quota, quotas::delete_quota,
    ),
    modifiers(&BasicAuth)
)]
struct ApiDoc;

struct BasicAuth;
impl utoipa::Modify for BasicAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
    }
}

/// The OpenAPI document. The other resource kinds share the Kafka cluster operations;
/// their paths are derived from those rather than annotated five times.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    let (kafka_base, _) = handlers::resource_base(ResourceKind::Kafka);
    let kafka: Vec<(String, utoipa::openapi::PathItem)> = doc
        .paths
        .paths
        .iter()
        .filter(|(p, _)| p.starts_with(kafka_base))
        .map(|(p, i)| (p.clone(), i.clone()))
        .collect();
    for kind in [
        ResourceKind::SchemaRegistry,
        ResourceKind::Ksql,
        ResourceKind::Flink,
        ResourceKind::Tableflow,
    ] {
        let (base, _) = handlers::resource_base(kind);
        for (p, item) in &kafka {
            doc.paths
                .paths
                .insert(p.replacen(kafka_base, base, 1), item.clone());
        }
    }
    document_errors(&mut doc);
    doc
}

/// What every operation can answer besides what its handler documents: the errors the
/// shared layers produce (body decoding, authentication, authorization, the failure
/// throttle, the body cap, an unknown id), in the one error shape. Operation ids are
/// made unique (OpenAPI requires it; the resource kinds share handlers) by the path
/// they serve. Done here, once, rather than repeated on 95 annotations.
fn document_errors(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    // Kafka REST v3 paths answer errors in Kafka REST's own shape (error.rs).
    let kafka_error = ObjectBuilder::new()
        .description(Some(
            "Kafka REST v3 error: `{\"error_code\": …, \"message\": …}`",
        ))
        .property(
            "error_code",
            ObjectBuilder::new().schema_type(Type::Integer),
        )
        .property("message", ObjectBuilder::new().schema_type(Type::String))
        .required("error_code")
        .required("message")
        .build();
    doc.components
        .get_or_insert_with(Default::default)
        .schemas
        .insert("KafkaRestError".into(), kafka_error.into());
    let error = |what: &str, schema: &str| {
        ResponseBuilder::new()
            .description(what)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(schema)))
                    .build(),
            )
            .build()
    };
    let mut seen = std::collections::HashSet::new();
    for (path, item) in doc.paths.paths.iter_mut() {
        let slug: String = path
            .split('/')
            .filter(|s| !s.is_empty() && !s.starts_with('{'))
            .collect::<Vec<_>>()
            .join("_")
            .replace(['-', ':', '.'], "_");
        let schema = if path.starts_with("/kafka/v3/") {
            "KafkaRestError"
        } else {
            "ErrorBody"
        };
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            if let Some(id) = op.operation_id.as_mut() {
                if !seen.insert(id.clone()) {
                    *id = format!("{id}__{slug}");
                    seen.insert(id.clone());
                }
            }
            let public = op.security.as_ref().is_none_or(Vec::is_empty);
            let writes = op.request_body.is_some();
            let responses = &mut op.responses.responses;
            if schema != "ErrorBody" {
                for (code, r) in responses.iter_mut() {
                    if !code.starts_with('2') {
                        *r = error("Error", schema).into();
                    }
                }
            }
            let mut add = |code: &str, what: &str| {
                responses
                    .entry(code.to_owned())
                    .or_insert_with(|| error(what, schema).into());
            };
            add("400", "Bad Request: a malformed body or parameter");
            if writes {
                add(
                    "413",
                    "Payload Too Large: the body is over the REST body cap",
                );
                add("422", "Unprocessable: a field's value is not acceptable");
                add(
                    "409",
                    "Conflict: a name or state that conflicts with another object",
                );
            }
            if path.contains('{') {
                add(
                    "404",
                    "Not Found: no such object, or not visible to the caller",
                );
            }
            if !public {
                add(
                    "401",
                    "Unauthorized: no credential, or one that does not authenticate",
                );
                add("403", "Forbidden: the caller's roles do not allow this");
                add(
                    "429",
                    "Too Many Requests: the failed-authentication throttle",
                );
            }
        }
    }
}

async fn openapi_json() -> Response {
    Json(openapi()).into_response()
}

async fn docs() -> Html<&'static str> {
    Html(include_str!("docs.html"))
}

/// Routes of one resource kind, all served by the same generic handlers.
fn resource_routes(kind: ResourceKind) -> Router<AppState> {
    use auth::Authed;
    use error::ApiJson;
    use error::Params;
    type Q = Params;
    let (base, _) = handlers::resource_base(kind);
    Router::new()
        .route(
            base,
            get(
                move |State(st): State<AppState>, Authed(c): Authed, Params(q): Q| {
                    handlers::list_resources(st, c, kind, q)
                },
            )
            .post(
                move |State(st): State<AppState>,
                      Authed(c): Authed,
                      ApiJson(b): ApiJson<types::ClusterCreate>| {
                    handlers::create_resource(st, c, kind, b)
                },
            ),
        )
        .route(
            &format!("{base}/{{id}}"),
            get(
                move |State(st): State<AppState>,
                      Authed(c): Authed,
                      Path(id): Path<String>,
                      Params(q): Q| handlers::get_resource(st, c, kind, id, q),
            )
            .patch(
                move |State(st): State<AppState>,
                      Authed(c): Authed,
                      Path(id): Path<String>,
                      Params(q): Q,
                      ApiJson(b): ApiJson<types::ClusterUpdate>| {
                    handlers::update_resource(st, c, kind, id, q, b)
                },
            )
            .delete(
                move |State(st): State<AppState>,
                      Authed(c): Authed,
                      Path(id): Path<String>,
                      Params(q): Q| {
                    handlers::delete_resource(st, c, kind, id, q)
                },
            ),
        )
}

/// Log each request's method, path, status and latency (never headers or bodies,
/// which may carry credentials and secrets).
async fn log_requests(req: Request, next: Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let start = Instant::now();
    let resp = next.run(req).await;
    tracing::info!(%method, path, status = resp.status().as_u16(), micros = start.elapsed().as_micros() as u64, "request");
    resp
}

/// The whole REST API.
pub fn router(state: AppState) -> Router {
    use handlers as h;
    let mut r = Router::new()
        .route("/healthz", get(h::healthz))
        .route("/readyz", get(h::readyz))
        .route("/openapi.json", get(openapi_json))
        .route("/docs", get(docs))
        .route("/org/v2/organizations", get(h::list_organizations))
        .route(
            "/org/v2/organizations/{id}",
            get(h::get_organization).patch(h::update_organization),
        )
        .route(
            "/org/v2/environments",
            get(h::list_environments).post(h::create_environment),
        )
        .route(
            "/org/v2/environments/{id}",
            get(h::get_environment)
                .patch(h::update_environment)
                .delete(h::delete_environment),
        )
        .route(
            "/iam/v2/service-accounts",
            get(h::list_service_accounts).post(h::create_service_account),
        )
        .route(
            "/iam/v2/service-accounts/{id}",
            get(h::get_service_account)
                .patch(h::update_service_account)
                .delete(h::delete_service_account),
        )
        .route("/iam/v2/users", get(h::list_users).post(h::create_user))
        .route("/iam/v2/users/{id}/password", post(h::set_user_password))
        .route(
            "/iam/v2/users/{id}",
            get(h::get_user)
                .patch(h::update_user)
                .delete(h::delete_user),
        )
        .route(
            "/iam/v2/api-keys",
            get(h::list_api_keys).post(h::create_api_key),
        )
        .route(
            "/iam/v2/api-keys/{id}",
            get(h::get_api_key)
                .patch(h::update_api_key)
                .delete(h::delete_api_key),
        )
        .route("/iam/v2/api-keys/{id}/disable", post(h::disable_api_key))
        .route("/iam/v2/api-keys/{id}/enable", post(h::enable_api_key))
        .route(
            "/iam/v2/role-bindings",
            get(h::list_role_bindings).post(h::create_role_binding),
        )
        .route("/iam/v2/roles", get(h::list_roles))
        .route("/iam/v2/roles/{name}", get(h::get_role))
        .route(
            "/iam/v2/role-bindings/{id}",
            get(h::get_role_binding).delete(h::delete_role_binding),
        )
        .route(
            "/iam/v2/identity-providers",
            get(oauth::list_providers).post(oauth::create_provider),
        )
        .route(
            "/iam/v2/identity-providers/{id}",
            get(oauth::get_provider)
                .patch(oauth::update_provider)
                .delete(oauth::delete_provider),
        )
        .route(
            "/iam/v2/identity-providers/{id}/jwks",
            axum::routing::patch(oauth::refresh_provider_jwks),
        )
        .route(
            "/iam/v2/identity-providers/{id}/identity-pools",
            get(oauth::list_pools).post(oauth::create_pool),
        )
        .route(
            "/iam/v2/identity-providers/{id}/identity-pools/{pool_id}",
            get(oauth::get_pool)
                .patch(oauth::update_pool)
                .delete(oauth::delete_pool),
        )
        .route(
            "/iam/v2/certificate-authorities",
            get(certificates::list_authorities).post(certificates::create_authority),
        )
        .route(
            "/iam/v2/certificate-authorities/{id}",
            get(certificates::get_authority)
                .put(certificates::update_authority)
                .delete(certificates::delete_authority),
        )
        .route(
            "/iam/v2/certificate-authorities/{id}/identity-pools",
            get(certificates::list_pools).post(certificates::create_pool),
        )
        .route(
            "/iam/v2/certificate-authorities/{id}/identity-pools/{pool_id}",
            get(certificates::get_pool)
                .put(certificates::update_pool)
                .delete(certificates::delete_pool),
        )
        .route("/sts/v1/oauth2/token", post(oauth::token_exchange))
        .route(
            "/sts/v1/signing-keys:rotate",
            post(oauth::rotate_signing_key),
        )
        .route("/.well-known/jwks.json", get(oauth::jwks))
        .route("/audit/v1/events", get(audit::list_events))
        .route(
            "/kafka-quotas/v1/client-quotas",
            get(quotas::list_quotas).post(quotas::create_quota),
        )
        .route(
            "/kafka-quotas/v1/client-quotas/{id}",
            get(quotas::get_quota)
                .patch(quotas::update_quota)
                .delete(quotas::delete_quota),
        )
        .route(
            "/service-quota/v1/applied-quotas",
            get(h::list_applied_quotas),
        )
        .route(
            "/service-quota/v1/applied-quotas/{id}",
            get(h::get_applied_quota),
        )
        .merge(
            Router::new()
                .route(
                    "/kafka/v3/clusters/{cluster_id}/acls",
                    get(h::list_acls).post(h::create_acl).delete(h::delete_acls),
                )
                .route(
                    "/kafka/v3/clusters/{cluster_id}/acls:batch",
                    post(h::create_acls_batch),
                )
                .route_layer(middleware::from_fn(error::kafka_rest_errors)),
        );
    for kind in ResourceKind::ALL {
        r = r.merge(resource_routes(kind));
    }
    r.fallback(|| async { error::ApiError::not_found("no such endpoint") })
        .method_not_allowed_fallback(|| async {
            error::ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Method Not Allowed",
                "this endpoint does not support that method",
            )
        })
        .layer(DefaultBodyLimit::max(error::MAX_BODY))
        .layer(middleware::from_fn(log_requests))
        .with_state(state)
}
