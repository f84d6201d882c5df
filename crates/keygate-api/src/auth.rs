//! Authentication of REST calls: HTTP Basic with a CLOUD key. Every failure — no
//! header, malformed header, unknown key, wrong secret, disabled, expired, or a key
//! for a resource — gets the same body after the same fixed delay, so a caller learns
//! nothing about which keys exist.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine;
use keygate_core::Secret;
use keygate_iam::Caller;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Authed(pub Caller);

fn basic_credentials(parts: &Parts) -> Option<(String, Secret)> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (key, secret) = text.split_once(':')?;
    Some((key.to_owned(), Secret::from_client(secret)))
}

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let result = match basic_credentials(parts) {
            Some((key, secret)) => state
                .iam
                .authenticate_cloud(&key, &secret)
                .map_err(|r| (Some(key), r.as_str())),
            None => Err((None, "missing or malformed Authorization header")),
        };
        match result {
            Ok(caller) => {
                if let Some(k) = &caller.key_id {
                    state.usage.record(*k);
                }
                Ok(Authed(caller))
            }
            Err((key, reason)) => {
                // The key id is not secret; the secret never leaves this function.
                tracing::info!(
                    key = key.as_deref().unwrap_or("-"),
                    reason,
                    "REST authentication failed"
                );
                tokio::time::sleep(state.cfg.auth_failure_delay).await;
                Err(ApiError::unauthenticated())
            }
        }
    }
}
