//! Sessions and CSRF: the signed-in user of a request, and the checks every form post
//! passes before it reaches a handler.

use crate::ConsoleState;
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::header::{self, HeaderValue};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use base64::Engine;
use keygate_audit::{status, types, CloudEvent};
use keygate_iam::Caller;
use keygate_iam::ConsoleSession;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use subtle::ConstantTimeEq;

pub(crate) const COOKIE: &str = "kg_session";

/// A console sign-in's record: the address tried (an identifier, never the
/// password), success or failure.
pub(crate) fn audit_sign_in(
    st: &ConsoleState,
    email: &str,
    principal: Option<String>,
    client: Option<String>,
) {
    if !st.auditor.enabled() {
        return;
    }
    let org = st.iam.organization_crn().to_string();
    let mut e = CloudEvent::new(
        types::IAM_AUTHENTICATION,
        org.clone(),
        "keygate.console",
        "console.SignIn",
        org,
        chrono::Utc::now(),
    )
    .who(
        principal.clone(),
        Some("CONSOLE_PASSWORD"),
        Some(keygate_core::redact::email(email).into_owned()),
    )
    .client_address(client);
    if principal.is_none() {
        e = e.result(
            status::UNAUTHENTICATED,
            Some("wrong e-mail address or password".into()),
        );
    }
    st.auditor.record(e);
}

/// The signed-in user of a request.
pub(crate) struct Signed {
    pub(crate) caller: Caller,
    pub(crate) csrf: String,
    pub(crate) session: [u8; 32],
    pub(crate) email: String,
}

pub(crate) fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

pub(crate) fn peer(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.to_string())
}

/// The peer's IP address (unspecified when unknown, as in unit tests): the key of
/// per-source throttling.
pub(crate) fn peer_ip(parts: &Parts) -> std::net::IpAddr {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |c| c.0.ip())
}

impl FromRequestParts<ConsoleState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &ConsoleState) -> Result<Self, Response> {
        let to_login = || Redirect::to("/console/login").into_response();
        let Some(token) = cookie(parts, COOKIE) else {
            return Err(to_login());
        };
        let h = hash(token);
        let s = match st.iam.session(h).await {
            Ok(Some(s)) => s,
            Ok(None) => return Err(to_login()),
            Err(e) => return Err(crate::pages::unavailable(&e.to_string())),
        };
        let Ok(Some(mut caller)) = st.iam.session_caller(&s.user_id).await else {
            return Err(to_login());
        };
        caller.client_address = peer(parts);
        // What a refusal by the IAM service is recorded as.
        caller.request = Some(format!("{} {}", parts.method, parts.uri.path()));
        let email = st
            .iam
            .get_account(&caller, keygate_core::model::AccountKind::User, &s.user_id)
            .await
            .map(|a| a.email)
            .unwrap_or_default();
        Ok(Signed {
            caller,
            csrf: s.csrf,
            session: h,
            email,
        })
    }
}

/// A signed-in user's form post whose CSRF token is the session's: handlers that
/// change anything take this, so none can forget the check.
pub(crate) struct Posted(pub(crate) Signed, pub(crate) HashMap<String, String>);

impl FromRequest<ConsoleState> for Posted {
    type Rejection = Response;

    async fn from_request(
        req: axum::extract::Request,
        st: &ConsoleState,
    ) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let s = Signed::from_request_parts(&mut parts, st).await?;
        let req = axum::extract::Request::from_parts(parts, body);
        let Form(f) = Form::<HashMap<String, String>>::from_request(req, st)
            .await
            .map_err(IntoResponse::into_response)?;
        let sent = f.get("csrf").map(String::as_bytes).unwrap_or_default();
        if sent.is_empty() || !bool::from(sent.ct_eq(s.csrf.as_bytes())) {
            return Err(crate::pages::forbidden_page(
                "This form has expired or did not come from the console (CSRF check). Reload the page and try again.",
            ));
        }
        Ok(Posted(s, f))
    }
}

fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Start a session for `user_id`; returns the Set-Cookie value.
pub(crate) async fn start(st: &ConsoleState, user_id: &str) -> Result<String, String> {
    let token = random_token();
    let now = chrono::Utc::now();
    let ttl = chrono::Duration::from_std(st.cfg.session_ttl).unwrap_or(chrono::Duration::hours(8));
    st.iam
        .create_session(ConsoleSession {
            id_hash: hash(&token),
            user_id: user_id.to_owned(),
            csrf: random_token(),
            created_at: now,
            expires_at: now + ttl,
        })
        .await
        .map_err(|e| e.to_string())?;
    Ok(format!(
        "{COOKIE}={token}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}{}",
        st.cfg.session_ttl.as_secs(),
        if st.cfg.secure_cookies {
            "; Secure"
        } else {
            ""
        }
    ))
}

/// The cookie that ends a session in the browser.
pub(crate) fn clear(st: &ConsoleState) -> String {
    format!(
        "{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if st.cfg.secure_cookies {
            "; Secure"
        } else {
            ""
        }
    )
}

/// Whether a sign-in post came from this site: its `Origin` (when the browser sends
/// one) names the host it was sent to.
pub(crate) fn same_origin(headers: &axum::http::HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest == host)
}

/// Notices (`?ok=…`, `?error=…`) are shown only after the console's own redirects:
/// on a request that did not come from a console page (no same-origin `Referer`) they
/// are removed, so a crafted link cannot put words on a keygate page.
pub(crate) async fn own_notices_only(mut req: axum::extract::Request) -> axum::extract::Request {
    let Some(query) = req.uri().query() else {
        return req;
    };
    let has_notice = query
        .split('&')
        .any(|p| p.starts_with("ok=") || p.starts_with("error="));
    if !has_notice || from_console(req.headers()) {
        return req;
    }
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.starts_with("ok=") && !p.starts_with("error="))
        .collect();
    let path = req.uri().path();
    let pq = if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    };
    if let Ok(uri) = pq.parse() {
        *req.uri_mut() = uri;
    }
    req
}

/// Whether the `Referer` is a page of this host.
fn from_console(headers: &axum::http::HeaderMap) -> bool {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    headers
        .get(header::REFERER)
        .and_then(|r| r.to_str().ok())
        .and_then(|r| r.split_once("://"))
        .is_some_and(|(_, rest)| {
            !host.is_empty() && (rest == host || rest.starts_with(&format!("{host}/")))
        })
}

/// Headers every console response carries.
pub(crate) async fn harden(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    r
}
