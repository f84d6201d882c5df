//! Errors as the REST API shows them, translated from [`IamError`] in exactly one place,
//! and the strict JSON body extractor.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use keygate_iam::IamError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use utoipa::ToSchema;

/// `{"errors":[…]}`
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The errors (keygate always returns one).
    pub errors: Vec<ErrorItem>,
}

/// One error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorItem {
    /// Unique id of this occurrence (for support).
    pub id: String,
    /// HTTP status as a string.
    pub status: String,
    /// Machine-readable code.
    pub code: String,
    /// Short summary.
    pub title: String,
    /// What exactly is wrong.
    pub detail: String,
    /// Where: a JSON pointer into the body or a query parameter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<ErrorSource>,
}

/// Where an error is.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorSource {
    /// JSON pointer into the request body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// Query parameter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
}

/// An error response (boxed: errors are rare, results should stay small).
#[derive(Debug)]
pub struct ApiError(Box<ErrorInner>);

#[derive(Debug)]
struct ErrorInner {
    status: StatusCode,
    code: &'static str,
    title: &'static str,
    detail: String,
    source: Option<ErrorSource>,
    /// Fixed occurrence id: authentication failures must be byte-identical.
    fixed_id: Option<&'static str>,
    /// Seconds for `Retry-After` (429, 503).
    retry_after: Option<u64>,
}

impl ApiError {
    /// A new error.
    pub fn new(
        status: StatusCode,
        code: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        ApiError(Box::new(ErrorInner {
            status,
            code,
            title,
            detail: detail.into(),
            source: None,
            fixed_id: None,
            retry_after: None,
        }))
    }

    /// 422 for a body field.
    pub fn invalid(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        let pointer = pointer.into();
        let mut e = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            "Invalid input",
            detail,
        );
        e.0.detail = if pointer.is_empty() {
            e.0.detail
        } else {
            format!("{pointer}: {}", e.0.detail)
        };
        e.0.source = (!pointer.is_empty()).then_some(ErrorSource {
            pointer: Some(pointer),
            parameter: None,
        });
        e
    }

    /// 400 for a query parameter.
    pub fn invalid_param(parameter: &str, detail: impl Into<String>) -> Self {
        // 400, "a missing or malformed parameter", as the hosted document lists for
        // every operation (422 is for bodies that fail validation).
        let mut e = Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            "Bad Request",
            format!("{parameter}: {}", detail.into()),
        );
        e.0.source = Some(ErrorSource {
            pointer: None,
            parameter: Some(parameter.to_owned()),
        });
        e
    }

    /// The one answer for every authentication failure.
    pub fn unauthenticated() -> Self {
        let mut e = Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Unauthorized",
            "invalid API key or secret",
        );
        e.0.fixed_id = Some("unauthenticated");
        e
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "Not Found", detail)
    }

    /// 429: too many failed attempts from this source.
    pub fn throttled(wait: std::time::Duration) -> Self {
        let secs = wait.as_secs().max(1);
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "Too Many Requests",
            format!("too many failed attempts from this address; retry in {secs} s"),
        );
        e.0.retry_after = Some(secs);
        e
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.0.status
    }
}

impl From<IamError> for ApiError {
    fn from(e: IamError) -> Self {
        match e {
            IamError::Unauthenticated => ApiError::unauthenticated(),
            IamError::Forbidden(m) => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", m)
            }
            IamError::NotFound(what, id) => {
                ApiError::not_found(format!("{what} `{id}` was not found"))
            }
            IamError::Invalid { pointer, detail } => {
                if pointer.starts_with('/') || pointer.is_empty() {
                    ApiError::invalid(pointer, detail)
                } else {
                    ApiError::invalid_param(&pointer, detail)
                }
            }
            IamError::Conflict(m) => ApiError::new(
                StatusCode::CONFLICT,
                "resource_already_exists",
                "Conflict",
                m,
            ),
            // 400: the hosted document lists no 409 for deletes, which is where
            // these arise; 409 stays for creating what already exists.
            IamError::Refused(m) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "failed_precondition",
                "Bad Request",
                m,
            ),
            IamError::QuotaExceeded(n) => ApiError::new(
                StatusCode::PAYMENT_REQUIRED,
                "quota_exceeded",
                "Quota Exceeded",
                format!("number of API keys per owner is currently limited to {n}"),
            ),
            IamError::Throttled(wait) => ApiError::throttled(wait),
            IamError::Busy(m) => {
                let mut e = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "Service Unavailable",
                    format!("{m}; retry shortly"),
                );
                e.0.retry_after = Some(1);
                e
            }
            IamError::Unavailable(m) => {
                tracing::error!(error = %m, "database unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "Service Unavailable",
                    "the database is unavailable; retry later",
                )
            }
            other => {
                tracing::error!(error = %other, "internal error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "Internal Server Error",
                    "an internal error occurred",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = *self.0;
        let id = e
            .fixed_id
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{:016x}", rand_id()));
        let body = ErrorBody {
            errors: vec![ErrorItem {
                id,
                status: e.status.as_u16().to_string(),
                code: e.code.to_owned(),
                title: e.title.to_owned(),
                detail: e.detail,
                source: e.source,
            }],
        };
        let mut resp = (e.status, axum::Json(body)).into_response();
        let retry = e
            .retry_after
            .or((e.status == StatusCode::SERVICE_UNAVAILABLE).then_some(5));
        if let Some(secs) = retry {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

fn rand_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// Largest accepted request body.
pub const MAX_BODY: usize = 1024 * 1024;

/// Errors in Kafka REST's own shape on its paths (`/kafka/v3/…`):
/// `{"error_code": …, "message": …}`, which its clients (and the hosted document's
/// `Error` schema, closed to other fields) expect there. Authentication failures are
/// `40101`, authorization failures `40301`; validation failures are `400`, the status
/// Kafka REST documents for them.
pub async fn kafka_rest_errors(req: Request, next: axum::middleware::Next) -> Response {
    let resp = next.run(req).await;
    if !(resp.status().is_client_error() || resp.status().is_server_error()) {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let error = serde_json::from_slice::<serde_json::Value>(&bytes).unwrap_or_default();
    let error = &error["errors"][0];
    let detail = match (
        error["detail"].as_str(),
        error["source"]["pointer"].as_str(),
    ) {
        (Some(d), Some(p)) if !p.is_empty() => format!("{p}: {d}"),
        (Some(d), _) => d.to_owned(),
        (None, _) => parts
            .status
            .canonical_reason()
            .unwrap_or("Error")
            .to_owned(),
    };
    if parts.status == StatusCode::UNPROCESSABLE_ENTITY {
        parts.status = StatusCode::BAD_REQUEST;
    }
    let error_code = match parts.status.as_u16() {
        401 => 40101,
        403 => 40301,
        s => u32::from(s),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = serde_json::json!({"error_code": error_code, "message": detail}).to_string();
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// A request's query parameters, the empty ones dropped: the hosted CLI asks for an
/// unfiltered list as `?spec.owner=&spec.resource=`, and an empty filter means none.
/// Unknown parameters are kept here and ignored by the handlers (the MUST IGNORE rule).
#[derive(Debug, Default)]
pub struct Params(pub HashMap<String, String>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, ApiError> {
        let all = axum::extract::Query::<HashMap<String, String>>::try_from_uri(&parts.uri);
        let axum::extract::Query(mut all) = all.map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "Bad Request",
                "the query string is malformed",
            )
        })?;
        all.retain(|_, v| !v.is_empty());
        Ok(Params(all))
    }
}

/// A JSON body, decoded strictly: malformed JSON → 400, a body over 1 MiB → 413, a
/// missing or mistyped field → 422 naming the field as a JSON pointer. Unknown fields
/// are ignored, as the hosted API's MUST IGNORE rule says (its clients send read-only
/// fields such as `related` and `kind` back).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        // A body without a Content-Type is read as JSON (the MUST IGNORE rule for
        // request metadata); one that declares another type is refused with 400, the
        // status the hosted document lists for every operation.
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or_default())
            .is_none_or(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
        if !is_json {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_media_type",
                "Bad Request",
                "the request body must be JSON (Content-Type: application/json)",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "Payload Too Large",
                    "the request body is larger than 1 MiB",
                )
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "Bad Request",
                    "the request body could not be read",
                )
            }
        })?;
        decode(&bytes).map(ApiJson)
    }
}

/// Decode JSON with the error rules of [`ApiJson`].
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let inner = e.inner();
        use serde_json::error::Category;
        match inner.classify() {
            Category::Syntax | Category::Eof | Category::Io => ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "Malformed JSON",
                format!("the request body is not valid JSON: {inner}"),
            ),
            Category::Data => {
                let path = e.path().to_string();
                let mut pointer = if path == "." {
                    String::new()
                } else {
                    format!("/{}", path.replace('.', "/"))
                };
                let msg = inner.to_string();
                let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
                let field = |prefix: &str| {
                    msg.strip_prefix(prefix)
                        .and_then(|r| r.split('`').next())
                        .map(str::to_owned)
                };
                let mut point_at = |f: &str| {
                    // serde_path_to_error already ends the path with an unknown field.
                    if !pointer.ends_with(&format!("/{f}")) {
                        pointer = format!("{pointer}/{f}");
                    }
                };
                let detail = if let Some(f) = field("unknown field `") {
                    point_at(&f);
                    format!("unknown field `{f}`")
                } else if let Some(f) = field("missing field `") {
                    point_at(&f);
                    "is required".to_owned()
                } else {
                    msg
                };
                ApiError::invalid(pointer, detail)
            }
        }
    })
}
