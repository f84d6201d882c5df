//! The audit log over REST (`GET /audit/v1/events`), and the record the REST front
//! door writes itself: a failed authentication. Changes (inside their own
//! transactions) and refusals are recorded by the IAM service.

use crate::error::{ApiError, Params};
use crate::AppState;
use axum::extract::{ConnectInfo, MatchedPath, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use keygate_audit::{status, types, CloudEvent};
use keygate_iam::AuditQuery;
use std::collections::HashMap;
use std::net::SocketAddr;

/// The peer's address, when the server was started with connect info.
pub(crate) fn peer(ext: &axum::http::Extensions) -> Option<String> {
    ext.get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.to_string())
}

pub(crate) fn endpoint(
    method: &axum::http::Method,
    ext: &axum::http::Extensions,
    path: &str,
) -> String {
    let route = ext
        .get::<MatchedPath>()
        .map_or(path, |m| m.as_str())
        .to_owned();
    format!("{method} {route}")
}

/// A failed REST authentication. `identifier` is the key id of a Basic attempt (never
/// the secret) or nothing for a bearer token (never the token).
pub(crate) fn failed_authentication(
    st: &AppState,
    parts: &axum::http::request::Parts,
    mechanism: &str,
    identifier: Option<String>,
    reason: &str,
) {
    if !st.auditor.enabled() {
        return;
    }
    let org = st.iam.org().crn().to_string();
    st.auditor.record(
        CloudEvent::new(
            types::IAM_AUTHENTICATION,
            org.clone(),
            "keygate.iam",
            endpoint(&parts.method, &parts.extensions, parts.uri.path()),
            org,
            chrono::Utc::now(),
        )
        .who(None, Some(mechanism), identifier)
        .client_address(peer(&parts.extensions))
        .result(status::UNAUTHENTICATED, Some(reason.to_owned())),
    );
}

const MAX_AUDIT_PAGE: u32 = 1000;

fn time_param(
    q: &HashMap<String, String>,
    name: &str,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    q.get(name)
        .map(|v| {
            chrono::DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&chrono::Utc))
                .map_err(|_| {
                    ApiError::invalid_param(
                        name,
                        "must be an RFC 3339 time, e.g. 2026-11-26T10:00:00Z",
                    )
                })
        })
        .transpose()
}

/// Audit records, oldest first (or newest first with `order=desc`), filtered.
#[utoipa::path(get, path = "/audit/v1/events", tag = "audit",
    params(
        ("start_time" = Option<String>, Query, description = "RFC 3339; records at or after"),
        ("end_time" = Option<String>, Query, description = "RFC 3339; records before"),
        ("principal" = Option<String>, Query, description = "User:sa-…"),
        ("method" = Option<String>, Query, description = "kafka.Authentication, CreateAPIKey, …"),
        ("resource" = Option<String>, Query, description = "resource CRN; a trailing * matches by prefix"),
        ("granted" = Option<bool>, Query, description = "true: allowed; false: denied"),
        ("identifier" = Option<String>, Query, description = "API key id (key owners may query their own keys)"),
        ("order" = Option<String>, Query, description = "asc (default) or desc"),
        ("page_size" = Option<u32>, Query, description = "1–1000, default 100"),
        ("page_token" = Option<String>, Query, description = "metadata.next_page_token of the previous page"),
    ),
    responses((status = 200, description = "CloudEvents records: {api_version, kind, metadata{next, next_page_token, prev_page_token}, data[]}. \
        next_page_token continues in the same order; prev_page_token (the first record's) with the opposite order reads the other way — \
        `order=desc&page_size=1` then `page_token=<prev_page_token>` follows the log.")),
    security(("basic" = [])))]
pub async fn list_events(
    State(st): State<AppState>,
    crate::auth::Authed(c): crate::auth::Authed,
    Params(q): Params,
) -> Result<Response, ApiError> {
    let descending = match q.get("order").map(String::as_str) {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => return Err(ApiError::invalid_param("order", "must be asc or desc")),
    };
    let limit = match q.get("page_size") {
        None => 100,
        Some(s) => match s.parse::<u32>() {
            Ok(n) if (1..=MAX_AUDIT_PAGE).contains(&n) => n,
            _ => {
                return Err(ApiError::invalid_param(
                    "page_size",
                    format!("must be a number from 1 to {MAX_AUDIT_PAGE}"),
                ))
            }
        },
    };
    let token = q
        .get("page_token")
        .map(|t| {
            t.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                ApiError::invalid_param("page_token", "is not a token this server issued")
            })
        })
        .transpose()?;
    let granted = q
        .get("granted")
        .map(|g| match g.as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(ApiError::invalid_param("granted", "must be true or false")),
        })
        .transpose()?;
    let nonempty = |k: &str| q.get(k).filter(|v| !v.is_empty()).cloned();
    let query = AuditQuery {
        after: token.filter(|_| !descending),
        before: token.filter(|_| descending),
        start_time: time_param(&q, "start_time")?,
        end_time: time_param(&q, "end_time")?,
        principal: nonempty("principal"),
        method: nonempty("method"),
        resource: nonempty("resource"),
        granted,
        identifier: nonempty("identifier"),
        descending,
        limit,
    };
    let rows = st.iam.query_audit(&c, &query).await?;
    let next_token = rows.last().map(|r| r.seq.to_string());
    let prev_token = rows.first().map(|r| r.seq.to_string());
    let next = (rows.len() as u32 == limit)
        .then(|| next_token.clone())
        .flatten()
        .map(|t| {
            let mut params: Vec<String> = q
                .iter()
                .filter(|(k, _)| k.as_str() != "page_token")
                .map(|(k, v)| format!("{k}={}", urlencode(v)))
                .collect();
            params.sort();
            params.push(format!("page_token={t}"));
            format!("{}/audit/v1/events?{}", st.cfg.public_url, params.join("&"))
        });
    let data: Vec<&CloudEvent> = rows.iter().map(|r| &r.event).collect();
    Ok(Json(serde_json::json!({
        "api_version": "audit/v1",
        "kind": "AuditEventList",
        "metadata": {
            "next": next,
            "next_page_token": next_token,
            "prev_page_token": prev_token,
        },
        "data": data,
    }))
    .into_response())
}

/// RFC 3986 unreserved characters stay; everything else is percent-encoded.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, QUERY_VALUE).to_string()
}
