//! Authentication of REST calls: HTTP Basic with a CLOUD key (or, on a cluster's Kafka
//! REST paths, that cluster's key), or `Bearer` with an STS
//! token (issued by `/sts/v1/oauth2/token` for an identity pool). Every failure — no
//! header, malformed header, unknown key, wrong secret, disabled, expired, a key for a
//! resource, a bad or expired token — gets the same body after the same fixed delay,
//! so a caller learns nothing about which keys exist or why a token was refused.

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

fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim())
        .filter(|t| !t.is_empty())
}

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
        let client_address = crate::audit::peer(&parts.extensions);
        let done = |parts: &Parts, mut caller: Caller| {
            caller.client_address = client_address.clone();
            // What a refusal by the IAM service is recorded as.
            caller.request = Some(crate::audit::endpoint(
                &parts.method,
                &parts.extensions,
                parts.uri.path(),
            ));
            Ok(Authed(caller))
        };
        if let Err(age) = state.iam.snapshot().check_fresh() {
            // The snapshot may miss a revocation: no caller is trusted on it.
            return Err(ApiError::from(keygate_iam::IamError::Unavailable(format!(
                "snapshot not confirmed for {} s",
                age.as_secs()
            ))));
        }
        if let Some(token) = bearer_token(parts) {
            let result = state.iam.authenticate_bearer(token).await;
            keygate_metrics::authentication("rest", "HTTP_BEARER", result.is_ok());
            return match result {
                Ok(caller) => done(parts, caller),
                Err(e) => {
                    // Which check failed is logged and audited; the token never is.
                    tracing::info!(reason = %e, "REST bearer authentication failed");
                    crate::audit::failed_authentication(
                        state,
                        parts,
                        "HTTP_BEARER",
                        None,
                        &e.to_string(),
                    );
                    failure_delay(state, parts).await;
                    Err(ApiError::unauthenticated())
                }
            };
        }
        // The Kafka REST paths of a cluster also take that cluster's own key.
        let cluster = parts
            .uri
            .path()
            .strip_prefix("/kafka/v3/clusters/")
            .and_then(|rest| rest.split('/').next());
        let result = match basic_credentials(parts) {
            Some((key, secret)) => state
                .iam
                .authenticate_rest(&key, &secret, cluster)
                .map_err(|r| (Some(key), r.as_str())),
            None => Err((None, "missing or malformed Authorization header")),
        };
        keygate_metrics::authentication("rest", "HTTP_BASIC", result.is_ok());
        match result {
            Ok(caller) => {
                if let Some(k) = &caller.key_id {
                    state.usage.record(*k);
                }
                done(parts, caller)
            }
            Err((key, reason)) => {
                // The key id is not secret; the secret never leaves this function.
                tracing::info!(
                    key = %key.as_deref().map_or("-".into(), keygate_core::redact::key_id),
                    reason,
                    "REST authentication failed"
                );
                // Only an id-shaped username is recorded: a client that put its
                // secret in the wrong field must not get it into the audit log.
                crate::audit::failed_authentication(
                    state,
                    parts,
                    "HTTP_BASIC",
                    key.filter(|k| keygate_core::KeyId::parse(k).is_some()),
                    reason,
                );
                failure_delay(state, parts).await;
                Err(ApiError::unauthenticated())
            }
        }
    }
}

/// Wait before answering a failed authentication: the uniform delay, plus the
/// source's penalty when it keeps failing (at most 10 s). Only failures wait; the
/// same address with the right key is never slowed.
async fn failure_delay(state: &AppState, parts: &Parts) {
    let ip = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
    let penalty = state.iam.auth_failed(keygate_iam::Door::Rest, ip);
    let wait = penalty.wait.min(std::time::Duration::from_secs(10));
    tokio::time::sleep(state.cfg.auth_failure_delay + wait).await;
}
