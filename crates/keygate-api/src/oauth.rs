//! Handlers for external OAuth: identity providers and pools (`/iam/v2/…`), the STS
//! token exchange (`/sts/v1/oauth2/token`) and keygate's published keys
//! (`/.well-known/jwks.json`). Thin, like every handler: the rules live in
//! `keygate-iam` and `keygate-oauth`.

use crate::auth::Authed;
use crate::error::{ApiError, ApiJson, ErrorBody, Params};
use crate::handlers::{meta, page};
use crate::types::*;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use keygate_core::model::{IdentityPool, IdentityProvider};
use keygate_iam::Patch;
use keygate_iam::{Exchange, NewPool, NewProvider, StsError};

type Q = Params;
type R<T> = Result<T, ApiError>;

fn state_str(enabled: bool) -> &'static str {
    if enabled {
        "ENABLED"
    } else {
        "DISABLED"
    }
}

fn parse_state(s: Option<&str>) -> R<Option<bool>> {
    match s {
        None => Ok(None),
        Some("ENABLED") => Ok(Some(true)),
        Some("DISABLED") => Ok(Some(false)),
        Some(_) => Err(ApiError::invalid("/state", "must be ENABLED or DISABLED")),
    }
}

fn provider_obj(st: &AppState, p: IdentityProvider) -> IdentityProviderObj {
    let keys = serde_json::from_str::<serde_json::Value>(&p.jwks)
        .ok()
        .and_then(|v| v.get("keys").and_then(|k| k.as_array().cloned()))
        .unwrap_or_default();
    IdentityProviderObj {
        api_version: "iam/v2",
        kind: "IdentityProvider",
        metadata: meta(
            st,
            format!("/iam/v2/identity-providers/{}", p.id),
            st.iam.identity_provider_crn(&p.id),
            p.created_at,
            p.updated_at,
        ),
        id: p.id,
        display_name: p.display_name,
        description: p.description,
        state: state_str(p.enabled),
        issuer: p.issuer,
        jwks_uri: p.jwks_uri,
        identity_claim: p.identity_claim,
        keys,
        keys_fetched_at: p.jwks_fetched_at,
    }
}

fn pool_obj(st: &AppState, p: IdentityPool) -> IdentityPoolObj {
    IdentityPoolObj {
        api_version: "iam/v2",
        kind: "IdentityPool",
        metadata: meta(
            st,
            format!(
                "/iam/v2/identity-providers/{}/identity-pools/{}",
                p.provider_id, p.id
            ),
            st.iam.identity_pool_crn(&p.provider_id, &p.id),
            p.created_at,
            p.updated_at,
        ),
        principal: p.principal().to_string(),
        id: p.id,
        display_name: p.display_name,
        description: p.description,
        identity_claim: p.identity_claim,
        filter: p.filter,
        state: state_str(p.enabled),
    }
}

/// List identity providers.
#[utoipa::path(get, path = "/iam/v2/identity-providers", tag = "identity providers", params(("page_size" = Option<usize>, Query), ("page_token" = Option<String>, Query)),
    responses((status = 200, body = IdentityProviderList)), security(("basic" = [])))]
pub async fn list_providers(
    State(st): State<AppState>,
    Authed(c): Authed,
    Params(q): Q,
) -> R<Json<IdentityProviderList>> {
    let items = st.iam.list_providers(&c).await?;
    let (items, metadata) = page(
        items,
        &q,
        &format!("{}/iam/v2/identity-providers", st.cfg.public_url),
    )?;
    Ok(Json(IdentityProviderList {
        api_version: "iam/v2",
        kind: "IdentityProviderList",
        metadata,
        data: items.into_iter().map(|p| provider_obj(&st, p)).collect(),
    }))
}

/// Register an identity provider; its keys are fetched at once.
#[utoipa::path(post, path = "/iam/v2/identity-providers", tag = "identity providers", request_body = IdentityProviderCreate,
    responses((status = 201, body = IdentityProviderObj), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)), security(("basic" = [])))]
pub async fn create_provider(
    State(st): State<AppState>,
    Authed(c): Authed,
    ApiJson(b): ApiJson<IdentityProviderCreate>,
) -> R<impl IntoResponse> {
    let p = st
        .iam
        .create_provider(
            &c,
            NewProvider {
                display_name: b.display_name,
                description: b.description,
                issuer: b.issuer,
                jwks_uri: b.jwks_uri,
                identity_claim: b.identity_claim,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(provider_obj(&st, p))))
}

/// Describe an identity provider.
#[utoipa::path(get, path = "/iam/v2/identity-providers/{id}", tag = "identity providers", params(("id" = String, Path)),
    responses((status = 200, body = IdentityProviderObj), (status = 404, body = ErrorBody)), security(("basic" = [])))]
pub async fn get_provider(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path(id): Path<String>,
) -> R<Json<IdentityProviderObj>> {
    Ok(Json(provider_obj(&st, st.iam.get_provider(&c, &id).await?)))
}

/// Update an identity provider.
#[utoipa::path(patch, path = "/iam/v2/identity-providers/{id}", tag = "identity providers", params(("id" = String, Path)), request_body = IdentityProviderUpdate,
    responses((status = 200, body = IdentityProviderObj), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)), security(("basic" = [])))]
pub async fn update_provider(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<IdentityProviderUpdate>,
) -> R<Json<IdentityProviderObj>> {
    let patch = Patch {
        display_name: b.display_name,
        description: b.description,
        issuer: b.issuer,
        jwks_uri: b.jwks_uri,
        identity_claim: b.identity_claim,
        enabled: parse_state(b.state.as_deref())?,
        ..Patch::default()
    };
    let p = st.iam.update_provider(&c, &id, patch).await?;
    Ok(Json(provider_obj(&st, p)))
}

/// Delete an identity provider with its pools and their role bindings and ACLs.
#[utoipa::path(delete, path = "/iam/v2/identity-providers/{id}", tag = "identity providers", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)), security(("basic" = [])))]
pub async fn delete_provider(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path(id): Path<String>,
) -> R<StatusCode> {
    st.iam.delete_provider(&c, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Fetch an identity provider's keys now.
#[utoipa::path(patch, path = "/iam/v2/identity-providers/{id}/jwks", tag = "identity providers", params(("id" = String, Path)),
    responses((status = 200, body = JwksRefreshObj), (status = 404, body = ErrorBody)), security(("basic" = [])))]
pub async fn refresh_provider_jwks(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path(id): Path<String>,
) -> R<Json<JwksRefreshObj>> {
    let (p, status) = st.iam.refresh_provider_jwks(&c, &id).await?;
    Ok(Json(JwksRefreshObj {
        api_version: "iam/v2",
        kind: "Jwks",
        spec: JwksStatusObj {
            jwks_status: status.as_str(),
            jwks_last_refresh_at: None,
        },
        status: JwksStatusObj {
            jwks_status: status.as_str(),
            jwks_last_refresh_at: Some(chrono::Utc::now()),
        },
        identity_provider: provider_obj(&st, p),
    }))
}

/// List the pools of an identity provider.
#[utoipa::path(get, path = "/iam/v2/identity-providers/{provider_id}/identity-pools", tag = "identity pools", params(("provider_id" = String, Path), ("page_size" = Option<usize>, Query), ("page_token" = Option<String>, Query)),
    responses((status = 200, body = IdentityPoolList), (status = 404, body = ErrorBody)), security(("basic" = [])))]
pub async fn list_pools(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path(provider_id): Path<String>,
    Params(q): Q,
) -> R<Json<IdentityPoolList>> {
    let items = st.iam.list_pools(&c, &provider_id).await?;
    let (items, metadata) = page(
        items,
        &q,
        &format!(
            "{}/iam/v2/identity-providers/{provider_id}/identity-pools",
            st.cfg.public_url
        ),
    )?;
    Ok(Json(IdentityPoolList {
        api_version: "iam/v2",
        kind: "IdentityPoolList",
        metadata,
        data: items.into_iter().map(|p| pool_obj(&st, p)).collect(),
    }))
}

/// Create an identity pool; its filter is compiled and checked now.
#[utoipa::path(post, path = "/iam/v2/identity-providers/{provider_id}/identity-pools", tag = "identity pools", params(("provider_id" = String, Path)), request_body = IdentityPoolCreate,
    responses((status = 201, body = IdentityPoolObj), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)), security(("basic" = [])))]
pub async fn create_pool(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path(provider_id): Path<String>,
    ApiJson(b): ApiJson<IdentityPoolCreate>,
) -> R<impl IntoResponse> {
    let p = st
        .iam
        .create_pool(
            &c,
            &provider_id,
            NewPool {
                display_name: b.display_name,
                description: b.description,
                identity_claim: b.identity_claim,
                filter: b.filter,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(pool_obj(&st, p))))
}

/// Describe an identity pool.
#[utoipa::path(get, path = "/iam/v2/identity-providers/{provider_id}/identity-pools/{id}", tag = "identity pools", params(("provider_id" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = IdentityPoolObj), (status = 404, body = ErrorBody)), security(("basic" = [])))]
pub async fn get_pool(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path((provider_id, id)): Path<(String, String)>,
) -> R<Json<IdentityPoolObj>> {
    Ok(Json(pool_obj(
        &st,
        st.iam.get_pool(&c, &provider_id, &id).await?,
    )))
}

/// Update an identity pool.
#[utoipa::path(patch, path = "/iam/v2/identity-providers/{provider_id}/identity-pools/{id}", tag = "identity pools", params(("provider_id" = String, Path), ("id" = String, Path)), request_body = IdentityPoolUpdate,
    responses((status = 200, body = IdentityPoolObj), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)), security(("basic" = [])))]
pub async fn update_pool(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path((provider_id, id)): Path<(String, String)>,
    ApiJson(b): ApiJson<IdentityPoolUpdate>,
) -> R<Json<IdentityPoolObj>> {
    let patch = Patch {
        display_name: b.display_name,
        description: b.description,
        identity_claim: b.identity_claim,
        filter: b.filter,
        enabled: parse_state(b.state.as_deref())?,
        ..Patch::default()
    };
    let p = st.iam.update_pool(&c, &provider_id, &id, patch).await?;
    Ok(Json(pool_obj(&st, p)))
}

/// Delete an identity pool with its role bindings and ACLs.
#[utoipa::path(delete, path = "/iam/v2/identity-providers/{provider_id}/identity-pools/{id}", tag = "identity pools", params(("provider_id" = String, Path), ("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)), security(("basic" = [])))]
pub async fn delete_pool(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path((provider_id, id)): Path<(String, String)>,
) -> R<StatusCode> {
    st.iam.delete_pool(&c, &provider_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn oauth_error(status: StatusCode, error: &'static str, description: String) -> Response {
    let item = crate::error::ErrorItem {
        id: error.to_owned(),
        status: status.as_u16().to_string(),
        code: error.to_owned(),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        detail: description.clone(),
        source: None,
    };
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        Json(OAuthErrorBody {
            error,
            error_description: description,
            errors: vec![item],
        }),
    )
        .into_response()
}

/// Exchange an IdP token for a keygate access token for one identity pool (RFC 8693).
#[utoipa::path(post, path = "/sts/v1/oauth2/token", tag = "sts", request_body(content = TokenExchangeForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = TokenExchangeReply), (status = 400, body = OAuthErrorBody)))]
pub async fn token_exchange(
    State(st): State<AppState>,
    parts: axum::http::request::Parts,
    form: Result<Form<TokenExchangeForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(f)) = form else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be application/x-www-form-urlencoded token-exchange fields".into(),
        );
    };
    let expires_in = match f.expires_in.as_deref().map(str::parse::<i64>) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "expires_in must be a number of seconds".into(),
            )
        }
    };
    // The pool asked for is an identifier; the subject token never goes anywhere.
    let pool = f.identity_pool_id.clone();
    let x = Exchange {
        grant_type: f.grant_type,
        subject_token: f.subject_token,
        subject_token_type: f.subject_token_type,
        requested_token_type: f.requested_token_type,
        identity_pool_id: f.identity_pool_id,
        expires_in,
    };
    match st.iam.exchange(x).await {
        Ok(issued) => (
            [(header::CACHE_CONTROL, "no-store")],
            Json(TokenExchangeReply {
                access_token: issued.access_token,
                issued_token_type: "urn:ietf:params:oauth:token-type:access_token",
                token_type: "Bearer",
                expires_in: issued.expires_in,
            }),
        )
            .into_response(),
        Err(StsError::InvalidGrant(reason)) => {
            // Which check failed goes to the log; the client learns only that it failed.
            tracing::info!(reason = %reason, "token exchange refused");
            crate::audit::failed_authentication(
                &st,
                &parts,
                "OAUTH_TOKEN_EXCHANGE",
                Some(pool).filter(|p| {
                    p.len() <= 64 && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                }),
                &reason.to_string(),
            );
            tokio::time::sleep(st.cfg.auth_failure_delay).await;
            // 400, as RFC 6749 §5.2 and the hosted document have it for a refused grant.
            oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "the subject token was not accepted".into(),
            )
        }
        Err(e @ StsError::UnsupportedGrantType) => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            e.to_string(),
        ),
        Err(e @ StsError::InvalidRequest(_)) => {
            oauth_error(StatusCode::BAD_REQUEST, "invalid_request", e.to_string())
        }
        Err(e @ StsError::Unavailable) => oauth_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            e.to_string(),
        ),
    }
}

/// keygate's token-verification keys (JWKS).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "sts",
    responses((status = 200, description = "a JSON Web Key Set")))]
pub async fn jwks(State(st): State<AppState>) -> Response {
    let doc = st.iam.snapshot().oauth().directory.sts_keys().to_document();
    ([(header::CACHE_CONTROL, "public, max-age=300")], Json(doc)).into_response()
}

/// Rotate the STS signing key.
#[utoipa::path(post, path = "/sts/v1/signing-keys:rotate", tag = "sts", request_body = SigningKeyRotate,
    responses((status = 201, body = SigningKeyObj), (status = 403, body = ErrorBody)), security(("basic" = [])))]
pub async fn rotate_signing_key(
    State(st): State<AppState>,
    Authed(c): Authed,
    ApiJson(b): ApiJson<SigningKeyRotate>,
) -> R<impl IntoResponse> {
    let kid = st.iam.rotate_signing_key(&c, b.retire_previous).await?;
    Ok((StatusCode::CREATED, Json(SigningKeyObj { kid })))
}
