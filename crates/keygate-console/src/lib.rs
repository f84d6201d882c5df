//! The web console: the control plane's workflow in a browser, served by `keygate
//! server` at `/console` with its assets compiled into the binary (no CDN, no build
//! step). Pages are rendered on the server (maud, auto-escaped) and work without
//! JavaScript except for copy and download buttons.
//!
//! Why server-rendered: every action goes through the same `keygate-iam` services and
//! authorizer as the REST API, with the signed-in user as the caller, so a user sees
//! and can do exactly what their role bindings allow — there is no second set of rules
//! in a browser bundle.
//!
//! Security: users sign in with e-mail and password (argon2id, see `keygate-iam`);
//! the session cookie is random, HttpOnly, SameSite=Strict, Secure when served over
//! TLS, and only its SHA-256 is stored. Every form carries the session's CSRF token
//! (compared in constant time); the sign-in form is checked by `Origin`. Responses
//! are `no-store` and framed by nobody (`frame-ancestors 'none'`).
#![deny(missing_docs)]

mod pages;
mod session;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use keygate_iam::Iam;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Console settings.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// Mark cookies `Secure` (the server is behind TLS).
    pub secure_cookies: bool,
    /// How long a session lasts.
    pub session_ttl: Duration,
    /// Delay of a failed sign-in.
    pub failure_delay: Duration,
    /// The Kafka gateway's advertised host, first port and ports per cluster, to
    /// show bootstrap addresses.
    pub gateway: Option<keygate_core::model::GatewayAddress>,
    /// The HTTP gateway's base URL, to show where HTTP services are reached.
    pub http_gateway: Option<String>,
}

/// A secret waiting to be shown once.
#[derive(Clone)]
pub(crate) struct Flash {
    pub(crate) secret: String,
    pub(crate) at: Instant,
}

/// Secrets waiting to be shown, by (session, key id).
pub(crate) type Flashes = HashMap<([u8; 32], String), Flash>;

/// Shared state of the console's handlers.
#[derive(Clone)]
pub struct ConsoleState {
    pub(crate) iam: Arc<Iam>,
    pub(crate) cfg: Arc<ConsoleConfig>,
    pub(crate) auditor: keygate_audit::Auditor,
    /// New keys' secrets by (session, key id), taken by the one page that shows them.
    pub(crate) flashes: Arc<Mutex<Flashes>>,
}

impl ConsoleState {
    /// State over the IAM service; sign-ins and refusals are recorded by `auditor`.
    pub fn new(iam: Arc<Iam>, cfg: ConsoleConfig, auditor: keygate_audit::Auditor) -> Self {
        ConsoleState {
            iam,
            cfg: Arc::new(cfg),
            auditor,
            flashes: Arc::default(),
        }
    }
}

async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("static/console.css"),
    )
}

async fn js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("static/console.js"),
    )
}

/// The console's routes, to be merged at the root (they all start with `/console`).
pub fn router(state: ConsoleState) -> Router {
    use pages as p;
    Router::new()
        .route("/console", get(p::home))
        .route("/console/", get(p::home))
        .route("/console/static/console.css", get(css))
        .route("/console/static/console.js", get(js))
        .route("/console/login", get(p::login_form).post(p::login))
        .route("/console/logout", post(p::logout))
        .route(
            "/console/service-accounts",
            get(p::service_accounts).post(p::create_service_account),
        )
        .route(
            "/console/service-accounts/{id}",
            get(p::service_account).post(p::update_service_account),
        )
        .route(
            "/console/service-accounts/{id}/delete",
            post(p::delete_service_account),
        )
        .route(
            "/console/api-keys",
            get(p::api_keys).post(p::create_api_key),
        )
        .route("/console/api-keys/new", get(p::new_api_key))
        .route("/console/api-keys/{id}/created", get(p::created_api_key))
        .route("/console/api-keys/{id}/{action}", post(p::api_key_action))
        .route(
            "/console/environments",
            get(p::environments).post(p::create_environment),
        )
        .route("/console/clusters", post(p::create_cluster))
        .route(
            "/console/clusters/{id}/acls",
            get(p::acls).post(p::create_acl),
        )
        .route("/console/clusters/{id}/acls/delete", post(p::delete_acl))
        .route(
            "/console/clusters/{id}/quotas",
            get(p::quotas).post(p::create_quota),
        )
        .route(
            "/console/clusters/{id}/quotas/{quota}/delete",
            post(p::delete_quota),
        )
        .route(
            "/console/role-bindings",
            get(p::role_bindings).post(p::create_role_binding),
        )
        .route(
            "/console/role-bindings/{id}/delete",
            post(p::delete_role_binding),
        )
        .route(
            "/console/identity-providers",
            get(p::providers).post(p::create_provider),
        )
        .route(
            "/console/identity-providers/{id}/pools",
            post(p::create_pool),
        )
        .route("/console/identity-providers/test", post(p::test_filter))
        .route(
            "/console/certificate-authorities",
            get(p::authorities).post(p::create_authority),
        )
        .route(
            "/console/certificate-authorities/{id}/pools",
            post(p::create_certificate_pool),
        )
        .route("/console/audit", get(p::audit))
        .layer(axum::middleware::map_response(session::harden))
        .layer(axum::middleware::map_request(session::own_notices_only))
        .with_state(state)
}
