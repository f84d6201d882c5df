//! Certificate identities (`/iam/v2/certificate-authorities`, `…/{id}/identity-pools`)
//! in the hosted API's shapes: `CertificateAuthority` with its chain's fingerprints,
//! expiration dates and serial numbers; `CertificateIdentityPool` with its external
//! identifier, CEL filter and principal. Updates are `PUT`, and `DELETE` answers with
//! the deleted object, as the hosted document says. Thin: the rules live in
//! `keygate-iam::certs`.

use crate::auth::Authed;
use crate::error::{ApiError, ApiJson, ErrorBody, Params};
use crate::handlers::{meta, page};
use crate::types::{ListMeta, ObjectMeta};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use chrono::{DateTime, Utc};
use keygate_core::model::{IdentityPool, IdentityProvider};
use keygate_iam::certs::{chain_facts, AuthorityPatch, NewAuthority, NewCertPool};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

type Q = Params;
type R<T> = Result<T, ApiError>;

/// A certificate authority.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateAuthorityObj {
    /// `iam/v2`
    pub api_version: &'static str,
    /// `CertificateAuthority`
    pub kind: &'static str,
    /// `op-…`
    pub id: String,
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Name.
    pub display_name: String,
    /// Description.
    pub description: String,
    /// SHA-1 fingerprint of each certificate of the chain.
    pub fingerprints: Vec<String>,
    /// Expiry of each.
    pub expiration_dates: Vec<DateTime<Utc>>,
    /// Serial number of each.
    pub serial_numbers: Vec<String>,
    /// The file name the chain was uploaded as.
    pub certificate_chain_filename: String,
    /// `LOCAL` (a CRL was uploaded) or `URL`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crl_source: Option<&'static str>,
    /// The CRL's URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crl_url: Option<String>,
    /// When the CRL was last set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crl_updated_at: Option<DateTime<Utc>>,
    /// `ENABLED`
    pub state: &'static str,
}

/// A page of certificate authorities.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateAuthorityList {
    /// `iam/v2`
    pub api_version: &'static str,
    /// `CertificateAuthorityList`
    pub kind: &'static str,
    /// Paging.
    pub metadata: ListMeta,
    /// The authorities.
    pub data: Vec<CertificateAuthorityObj>,
}

/// Create or update a certificate authority (`iam.v2.CreateCertRequest` /
/// `UpdateCertRequest`; read-only fields a client echoes back are ignored).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct CertificateAuthorityIn {
    /// Name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// PEM signing certificate chain.
    #[serde(default)]
    pub certificate_chain: Option<String>,
    /// Its file name.
    #[serde(default)]
    pub certificate_chain_filename: Option<String>,
    /// URL of the CRL.
    #[serde(default)]
    pub crl_url: Option<String>,
    /// PEM CRL (used over `crl_url`).
    #[serde(default)]
    pub crl_chain: Option<String>,
}

/// A certificate identity pool.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertificatePoolObj {
    /// `iam/v2`
    pub api_version: &'static str,
    /// `CertificateIdentityPool`
    pub kind: &'static str,
    /// `pool-…`
    pub id: String,
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Name.
    pub display_name: String,
    /// Description.
    pub description: String,
    /// The certificate field naming the identity in audit records.
    pub external_identifier: String,
    /// CEL over the certificate's fields (`CN`, `O`, `OU`, `C`, `L`, `ST`, `DC`, `UID`,
    /// `EMAIL`, `SERIAL_NUMBER`, `SAN`, `ISSUER`).
    pub filter: String,
    /// The pool's principal (`pool-…`; `User:pool-…` in ACLs).
    pub principal: String,
    /// `ENABLED`
    pub state: &'static str,
}

/// A page of certificate identity pools.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertificatePoolList {
    /// `iam/v2`
    pub api_version: &'static str,
    /// `CertificateIdentityPoolList`
    pub kind: &'static str,
    /// Paging.
    pub metadata: ListMeta,
    /// The pools.
    pub data: Vec<CertificatePoolObj>,
}

/// Create or update a certificate identity pool.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct CertificatePoolIn {
    /// Name.
    #[serde(default)]
    pub display_name: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// The certificate field naming the identity (`CN`, `UID`, …).
    #[serde(default)]
    pub external_identifier: String,
    /// CEL filter.
    #[serde(default)]
    pub filter: String,
}

fn ca_obj(st: &AppState, p: IdentityProvider) -> CertificateAuthorityObj {
    let ca = p
        .certificate
        .unwrap_or_else(|| keygate_core::model::CertificateAuthority {
            chain_pem: String::new(),
            chain_filename: String::new(),
            crl_pem: None,
            crl_url: None,
            crl_updated_at: None,
        });
    let facts = chain_facts(&ca.chain_pem).unwrap_or_default();
    CertificateAuthorityObj {
        api_version: "iam/v2",
        kind: "CertificateAuthority",
        metadata: meta(
            st,
            format!("/iam/v2/certificate-authorities/{}", p.id),
            st.iam.certificate_authority_crn(&p.id),
            p.created_at,
            p.updated_at,
        ),
        id: p.id,
        display_name: p.display_name,
        description: p.description,
        fingerprints: facts.fingerprints,
        expiration_dates: facts.expiration_dates,
        serial_numbers: facts.serial_numbers,
        certificate_chain_filename: ca.chain_filename,
        crl_source: if ca.crl_pem.is_some() {
            Some("LOCAL")
        } else if ca.crl_url.as_deref().is_some_and(|u| !u.is_empty()) {
            Some("URL")
        } else {
            None
        },
        // An empty URL (how a client clears it) is no URL: the field is a `uri`.
        crl_url: ca.crl_url.filter(|u| !u.is_empty()),
        crl_updated_at: ca.crl_updated_at,
        state: "ENABLED",
    }
}

fn pool_obj(st: &AppState, p: IdentityPool) -> CertificatePoolObj {
    CertificatePoolObj {
        api_version: "iam/v2",
        kind: "CertificateIdentityPool",
        metadata: meta(
            st,
            format!(
                "/iam/v2/certificate-authorities/{}/identity-pools/{}",
                p.provider_id, p.id
            ),
            st.iam.certificate_pool_crn(&p.provider_id, &p.id),
            p.created_at,
            p.updated_at,
        ),
        principal: p.id.clone(),
        id: p.id,
        display_name: p.display_name,
        description: p.description,
        external_identifier: p.identity_claim,
        filter: p.filter,
        state: if p.enabled { "ENABLED" } else { "DISABLED" },
    }
}

/// List certificate authorities.
#[utoipa::path(get, path = "/iam/v2/certificate-authorities", tag = "certificate authorities", params(("page_size" = Option<usize>, Query), ("page_token" = Option<String>, Query)),
    responses((status = 200, body = CertificateAuthorityList)), security(("basic" = [])))]
pub async fn list_authorities(
    State(st): State<AppState>,
    Authed(c): Authed,
    Params(q): Q,
) -> R<Json<CertificateAuthorityList>> {
    let items = st.iam.list_certificate_authorities(&c).await?;
    let url = format!("{}/iam/v2/certificate-authorities", st.cfg.public_url);
    let (items, metadata) = page(items, &q, &url)?;
    Ok(Json(CertificateAuthorityList {
        api_version: "iam/v2",
        kind: "CertificateAuthorityList",
        metadata,
        data: items.into_iter().map(|p| ca_obj(&st, p)).collect(),
    }))
}

/// Register a certificate authority: client certificates it signed can then
/// authenticate (mTLS) as the pools they match.
#[utoipa::path(post, path = "/iam/v2/certificate-authorities", tag = "certificate authorities", request_body = CertificateAuthorityIn,
    responses((status = 201, body = CertificateAuthorityObj), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)), security(("basic" = [])))]
pub async fn create_authority(
    State(st): State<AppState>,
    Authed(c): Authed,
    ApiJson(b): ApiJson<CertificateAuthorityIn>,
) -> R<impl IntoResponse> {
    let p = st
        .iam
        .create_certificate_authority(
            &c,
            NewAuthority {
                display_name: b.display_name.unwrap_or_default(),
                description: b.description.unwrap_or_default(),
                certificate_chain: b.certificate_chain.unwrap_or_default(),
                certificate_chain_filename: b
                    .certificate_chain_filename
                    .unwrap_or_else(|| "certificate.pem".into()),
                crl_chain: b.crl_chain.filter(|c| !c.is_empty()),
                crl_url: b.crl_url.filter(|c| !c.is_empty()),
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(ca_obj(&st, p))))
}

/// Describe a certificate authority.
#[utoipa::path(get, path = "/iam/v2/certificate-authorities/{id}", tag = "certificate authorities", params(("id" = String, Path)),
    responses((status = 200, body = CertificateAuthorityObj), (status = 404, body = ErrorBody)), security(("basic" = [])))]
pub async fn get_authority(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path(id): Path<String>,
) -> R<Json<CertificateAuthorityObj>> {
    let p = st.iam.get_certificate_authority(&c, &id).await?;
    Ok(Json(ca_obj(&st, p)))
}

/// Update a certificate authority (a new chain needs its file name; a new CRL applies
/// to the next handshakes).
#[utoipa::path(put, path = "/iam/v2/certificate-authorities/{id}", tag = "certificate authorities", params(("id" = String, Path)), request_body = CertificateAuthorityIn,
    responses((status = 200, body = CertificateAuthorityObj), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)), security(("basic" = [])))]
pub async fn update_authority(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<CertificateAuthorityIn>,
) -> R<Json<CertificateAuthorityObj>> {
    let certificate_chain = match (b.certificate_chain, b.certificate_chain_filename) {
        (Some(chain), Some(file)) => Some((chain, file)),
        (Some(_), None) => {
            return Err(ApiError::invalid(
                "/certificate_chain_filename",
                "must be set when the certificate chain is updated",
            ))
        }
        (None, _) => None,
    };
    let p = st
        .iam
        .update_certificate_authority(
            &c,
            &id,
            AuthorityPatch {
                display_name: b.display_name,
                description: b.description,
                certificate_chain,
                crl_chain: b.crl_chain,
                crl_url: b.crl_url,
            },
        )
        .await?;
    Ok(Json(ca_obj(&st, p)))
}

/// Delete a certificate authority, its pools and their grants; answers with what was
/// deleted.
#[utoipa::path(delete, path = "/iam/v2/certificate-authorities/{id}", tag = "certificate authorities", params(("id" = String, Path)),
    responses((status = 200, body = CertificateAuthorityObj), (status = 404, body = ErrorBody)), security(("basic" = [])))]
pub async fn delete_authority(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path(id): Path<String>,
) -> R<Json<CertificateAuthorityObj>> {
    let p = st.iam.delete_certificate_authority(&c, &id).await?;
    Ok(Json(ca_obj(&st, p)))
}

/// List the identity pools of a certificate authority.
#[utoipa::path(get, path = "/iam/v2/certificate-authorities/{certificate_authority_id}/identity-pools", tag = "certificate authorities",
    params(("certificate_authority_id" = String, Path), ("page_size" = Option<usize>, Query), ("page_token" = Option<String>, Query)),
    responses((status = 200, body = CertificatePoolList)), security(("basic" = [])))]
pub async fn list_pools(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path(ca): Path<String>,
    Params(q): Q,
) -> R<Json<CertificatePoolList>> {
    let items = st.iam.list_certificate_pools(&c, &ca).await?;
    let url = format!(
        "{}/iam/v2/certificate-authorities/{ca}/identity-pools",
        st.cfg.public_url
    );
    let (items, metadata) = page(items, &q, &url)?;
    Ok(Json(CertificatePoolList {
        api_version: "iam/v2",
        kind: "CertificateIdentityPoolList",
        metadata,
        data: items.into_iter().map(|p| pool_obj(&st, p)).collect(),
    }))
}

/// Create a certificate identity pool.
#[utoipa::path(post, path = "/iam/v2/certificate-authorities/{certificate_authority_id}/identity-pools", tag = "certificate authorities",
    params(("certificate_authority_id" = String, Path)), request_body = CertificatePoolIn,
    responses((status = 201, body = CertificatePoolObj), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)), security(("basic" = [])))]
pub async fn create_pool(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path(ca): Path<String>,
    ApiJson(b): ApiJson<CertificatePoolIn>,
) -> R<impl IntoResponse> {
    let p = st.iam.create_certificate_pool(&c, &ca, new_pool(b)).await?;
    Ok((StatusCode::CREATED, Json(pool_obj(&st, p))))
}

fn new_pool(b: CertificatePoolIn) -> NewCertPool {
    NewCertPool {
        display_name: b.display_name,
        description: b.description,
        external_identifier: b.external_identifier,
        filter: b.filter,
    }
}

/// Describe a certificate identity pool.
#[utoipa::path(get, path = "/iam/v2/certificate-authorities/{certificate_authority_id}/identity-pools/{id}", tag = "certificate authorities",
    params(("certificate_authority_id" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = CertificatePoolObj), (status = 404, body = ErrorBody)), security(("basic" = [])))]
pub async fn get_pool(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path((ca, id)): Path<(String, String)>,
) -> R<Json<CertificatePoolObj>> {
    let p = st.iam.get_certificate_pool(&c, &ca, &id).await?;
    Ok(Json(pool_obj(&st, p)))
}

/// Update a certificate identity pool (fields left empty are kept).
#[utoipa::path(put, path = "/iam/v2/certificate-authorities/{certificate_authority_id}/identity-pools/{id}", tag = "certificate authorities",
    params(("certificate_authority_id" = String, Path), ("id" = String, Path)), request_body = CertificatePoolIn,
    responses((status = 200, body = CertificatePoolObj), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)), security(("basic" = [])))]
pub async fn update_pool(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path((ca, id)): Path<(String, String)>,
    ApiJson(b): ApiJson<CertificatePoolIn>,
) -> R<Json<CertificatePoolObj>> {
    let p = st
        .iam
        .update_certificate_pool(&c, &ca, &id, new_pool(b))
        .await?;
    Ok(Json(pool_obj(&st, p)))
}

/// Delete a certificate identity pool and its grants; answers with what was deleted.
#[utoipa::path(delete, path = "/iam/v2/certificate-authorities/{certificate_authority_id}/identity-pools/{id}", tag = "certificate authorities",
    params(("certificate_authority_id" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = CertificatePoolObj), (status = 404, body = ErrorBody)), security(("basic" = [])))]
pub async fn delete_pool(
    State(st): State<AppState>,
    Authed(c): Authed,
    Path((ca, id)): Path<(String, String)>,
) -> R<Json<CertificatePoolObj>> {
    let p = st.iam.delete_certificate_pool(&c, &ca, &id).await?;
    Ok(Json(pool_obj(&st, p)))
}
