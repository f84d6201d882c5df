//! The record: a CloudEvents 1.0 envelope around the hosted anchor's audit data shape
//! (reference/audit.md), so tools written for its audit log read keygate's.
//!
//! Only identifiers ever go in: principals, key ids, pool ids, resource names. The
//! builders take no secret-shaped input, which is how "no secret in an audit record"
//! is kept by construction rather than by scrubbing.

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

/// Event types (`type`).
pub mod types {
    /// A Kafka SASL authentication, success or failure.
    pub const KAFKA_AUTHENTICATION: &str = "io.keygate.kafka/authentication";
    /// A denied Kafka authorization (Produce, Fetch, groups, …).
    pub const KAFKA_AUTHORIZATION: &str = "io.keygate.kafka/authorization";
    /// A Kafka management request (CreateTopics, DeleteTopics, CreateAcls, …).
    pub const KAFKA_REQUEST: &str = "io.keygate.kafka/request";
    /// Allowed Produce and Fetch of one principal on one topic, counted over a window.
    pub const KAFKA_REQUEST_SUMMARY: &str = "io.keygate.kafka/request-summary";
    /// An HTTP gateway authentication that failed.
    pub const HTTP_AUTHENTICATION: &str = "io.keygate.http/authentication";
    /// An HTTP gateway request the authorizer denied.
    pub const HTTP_AUTHORIZATION: &str = "io.keygate.http/authorization";
    /// Allowed HTTP gateway requests, counted per principal, credential and target.
    pub const HTTP_REQUEST_SUMMARY: &str = "io.keygate.http/request-summary";
    /// A control-plane call: a change, a denied call.
    pub const IAM_REQUEST: &str = "io.keygate.iam/request";
    /// A failed control-plane authentication.
    pub const IAM_AUTHENTICATION: &str = "io.keygate.iam/authentication";
    /// Something the audit pipeline itself has to report (records dropped under
    /// overload).
    pub const AUDIT_PIPELINE: &str = "io.keygate.audit/pipeline";
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudEvent {
    /// Unique id (a random UUID): consumers deduplicate at-least-once delivery by it.
    pub id: String,
    /// The CRN of what emitted it (the organization, or a Kafka cluster).
    pub source: String,
    /// Always `1.0`.
    pub specversion: String,
    /// One of [`types`].
    #[serde(rename = "type")]
    pub kind: String,
    /// Always `application/json`.
    pub datacontenttype: String,
    /// The CRN of the resource acted on.
    pub subject: String,
    /// When it happened (RFC 3339, microseconds, UTC).
    #[serde(with = "rfc3339")]
    pub time: DateTime<Utc>,
    /// The audit data.
    pub data: AuditData,
}

/// `data` of a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditData {
    /// `crn://…/kafka=lkc-…` for Kafka, `keygate.iam` for the control plane.
    pub service_name: String,
    /// `kafka.Authentication`, `kafka.CreateTopics`, `CreateAPIKey`, …
    pub method_name: String,
    /// The CRN (or name) of the resource acted on.
    pub resource_name: String,
    /// Who.
    pub authentication_info: AuthenticationInfo,
    /// The decision, when one was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_info: Option<AuthorizationInfo>,
    /// Kafka request details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestInfo>,
    /// Where from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_metadata: Option<RequestMetadata>,
    /// Outcome.
    pub result: ResultInfo,
    /// Counts of a summary record (keygate extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
}

/// `authenticationInfo`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationInfo {
    /// `User:sa-…`, `User:pool-…`; absent when authentication failed before one was known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// The external identity (a token's subject), for OAuth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// Mechanism and credential identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<AuthenticationMetadata>,
}

/// `authenticationInfo.metadata`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationMetadata {
    /// `SASL_PLAIN`, `SASL_OAUTHBEARER`, `HTTP_BASIC`, `HTTP_BEARER`.
    pub mechanism: String,
    /// The API key id, or the identity pools — never a secret or token.
    pub identifier: String,
}

/// `authorizationInfo`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationInfo {
    /// Allowed?
    pub granted: bool,
    /// Kafka operation (`WRITE`) or control-plane capability (`ManageAccounts`).
    pub operation: String,
    /// `Topic`, `Group`, `Cluster`, `TransactionalId`, or a control-plane entity kind.
    pub resource_type: String,
    /// The resource's name.
    pub resource_name: String,
    /// `LITERAL` for Kafka checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern_type: Option<String>,
    /// An ACL decided it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl_authorization: Option<AclAuthorization>,
    /// A role binding decided it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rbac_authorization: Option<RbacAuthorization>,
    /// OrganizationAdmin decided it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub super_user_authorization: Option<bool>,
}

/// `aclAuthorization`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AclAuthorization {
    /// `ALLOW` or `DENY`.
    pub permission_type: String,
    /// Always `*`.
    pub host: String,
}

/// `rbacAuthorization`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RbacAuthorization {
    /// The role, where known.
    pub role: String,
    /// The scope checked.
    pub scope: String,
}

/// `request`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestInfo {
    /// Kafka correlation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<i32>,
    /// Kafka `client.id`, as the client sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// `requestMetadata`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestMetadata {
    /// The peer's address.
    pub client_address: String,
}

/// `result`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultInfo {
    /// `SUCCESS`, `UNAUTHENTICATED`, `UNAUTHORIZED`, `FAILURE`.
    pub status: String,
    /// Why, when not obvious.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `summary`: allowed requests counted over a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Requests that touched the resource.
    pub requests: u64,
    /// Bytes: record batches for Produce; response bytes for Fetch (shared evenly
    /// among the topics of a multi-topic fetch).
    pub bytes: u64,
    /// Window start.
    #[serde(with = "rfc3339")]
    pub window_start: DateTime<Utc>,
    /// Window end.
    #[serde(with = "rfc3339")]
    pub window_end: DateTime<Utc>,
}

/// Result statuses.
pub mod status {
    /// Done.
    pub const SUCCESS: &str = "SUCCESS";
    /// Bad or missing credentials.
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    /// Authenticated but not allowed.
    pub const UNAUTHORIZED: &str = "UNAUTHORIZED";
    /// Allowed but failed (validation, conflict, upstream).
    pub const FAILURE: &str = "FAILURE";
}

fn uuid4() -> String {
    let b: [u8; 16] = rand::random();
    let mut b = b;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

impl CloudEvent {
    /// A record of `kind` from `source` about `resource`, successful until told
    /// otherwise. The time is kept to the microsecond.
    pub fn new(
        kind: &str,
        source: impl Into<String>,
        service: impl Into<String>,
        method: impl Into<String>,
        resource: impl Into<String>,
        time: DateTime<Utc>,
    ) -> Self {
        let resource = resource.into();
        CloudEvent {
            id: uuid4(),
            source: source.into(),
            specversion: "1.0".into(),
            kind: kind.to_owned(),
            datacontenttype: "application/json".into(),
            subject: resource.clone(),
            // Stored and serialised in microseconds: keep exactly that.
            time: time.trunc_subsecs(6),
            data: AuditData {
                service_name: service.into(),
                method_name: method.into(),
                resource_name: resource,
                authentication_info: AuthenticationInfo::default(),
                authorization_info: None,
                request: None,
                request_metadata: None,
                result: ResultInfo {
                    status: status::SUCCESS.into(),
                    message: None,
                },
                summary: None,
            },
        }
    }

    /// Who: principal and credential (mechanism + key id or pools).
    pub fn who(
        mut self,
        principal: Option<String>,
        mechanism: Option<&str>,
        identifier: Option<String>,
    ) -> Self {
        self.data.authentication_info.principal = principal;
        self.data.authentication_info.metadata = mechanism.map(|m| AuthenticationMetadata {
            mechanism: m.to_owned(),
            identifier: identifier.unwrap_or_default(),
        });
        self
    }

    /// The external identity (OAuth subject).
    pub fn identity(mut self, identity: Option<String>) -> Self {
        self.data.authentication_info.identity = identity;
        self
    }

    /// The authorization decision.
    pub fn authorization(mut self, a: AuthorizationInfo) -> Self {
        if !a.granted && self.data.result.status == status::SUCCESS {
            self.data.result.status = status::UNAUTHORIZED.into();
        }
        self.data.authorization_info = Some(a);
        self
    }

    /// Kafka request details.
    pub fn request(mut self, correlation_id: Option<i32>, client_id: Option<String>) -> Self {
        self.data.request = Some(RequestInfo {
            correlation_id,
            client_id,
        });
        self
    }

    /// The peer's address.
    pub fn client_address(mut self, addr: Option<String>) -> Self {
        self.data.request_metadata = addr.map(|a| RequestMetadata { client_address: a });
        self
    }

    /// The outcome.
    pub fn result(mut self, status: &str, message: Option<String>) -> Self {
        self.data.result = ResultInfo {
            status: status.to_owned(),
            message,
        };
        self
    }

    /// Summary counts.
    pub fn summary(mut self, s: Summary) -> Self {
        self.data.summary = Some(s);
        self
    }

    /// This record with every free-text field passed through
    /// [`keygate_core::redact::text`]: capped, control characters replaced, keygate
    /// secrets and JWTs replaced by markers. The writer applies it to every record,
    /// whatever its emitter already did.
    pub fn sanitized(mut self) -> Self {
        fn clean(s: &mut String) {
            if let std::borrow::Cow::Owned(c) = keygate_core::redact::text(s) {
                *s = c;
            }
        }
        fn clean_opt(s: &mut Option<String>) {
            if let Some(s) = s {
                clean(s);
            }
        }
        clean(&mut self.subject);
        let d = &mut self.data;
        clean(&mut d.method_name);
        clean(&mut d.resource_name);
        clean_opt(&mut d.authentication_info.principal);
        clean_opt(&mut d.authentication_info.identity);
        if let Some(m) = &mut d.authentication_info.metadata {
            clean(&mut m.identifier);
        }
        if let Some(a) = &mut d.authorization_info {
            clean(&mut a.resource_name);
        }
        if let Some(r) = &mut d.request {
            clean_opt(&mut r.client_id);
        }
        if let Some(m) = &mut d.request_metadata {
            clean(&mut m.client_address);
        }
        clean_opt(&mut d.result.message);
        self
    }

    /// The principal, if any (an indexed column of the database sink).
    pub fn principal(&self) -> Option<&str> {
        self.data.authentication_info.principal.as_deref()
    }

    /// The credential identifier (key id or pools), if any.
    pub fn identifier(&self) -> Option<&str> {
        self.data
            .authentication_info
            .metadata
            .as_ref()
            .map(|m| m.identifier.as_str())
            .filter(|s| !s.is_empty())
    }

    /// The decision, if one was made.
    pub fn granted(&self) -> Option<bool> {
        self.data.authorization_info.as_ref().map(|a| a.granted)
    }

    /// One JSON line (no trailing newline).
    pub fn to_json(&self) -> String {
        // Serialising plain strings, numbers and options cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parse one record.
    pub fn from_json(s: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(s)
    }
}

mod rfc3339 {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Micros, true))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

/// One stored audit record: its position in the log and the record.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRow {
    /// Its position in the log.
    pub seq: i64,
    /// The record.
    pub event: CloudEvent,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_and_data_follow_the_reference_shape() {
        let t = DateTime::from_timestamp(1_700_000_000, 123_000).unwrap_or_default();
        let e = CloudEvent::new(
            types::KAFKA_AUTHORIZATION,
            "crn://keygate/organization=o/kafka=lkc-1",
            "crn://keygate/organization=o/kafka=lkc-1",
            "kafka.Produce",
            "crn://keygate/organization=o/kafka=lkc-1/topic=orders",
            t,
        )
        .who(
            Some("User:sa-1".into()),
            Some("SASL_PLAIN"),
            Some("ABCDEFGHIJKLMNOP".into()),
        )
        .authorization(AuthorizationInfo {
            granted: false,
            operation: "WRITE".into(),
            resource_type: "Topic".into(),
            resource_name: "orders".into(),
            pattern_type: Some("LITERAL".into()),
            ..Default::default()
        })
        .request(Some(7), Some("app".into()))
        .client_address(Some("127.0.0.1:5000".into()));
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap_or_default();
        assert_eq!(v["specversion"], "1.0");
        assert_eq!(v["type"], "io.keygate.kafka/authorization");
        assert_eq!(v["datacontenttype"], "application/json");
        assert_eq!(v["time"], "2023-11-14T22:13:20.000123Z");
        assert_eq!(v["subject"], v["data"]["resourceName"]);
        assert_eq!(v["data"]["methodName"], "kafka.Produce");
        assert_eq!(
            v["data"]["authenticationInfo"]["metadata"]["identifier"],
            "ABCDEFGHIJKLMNOP"
        );
        assert_eq!(v["data"]["authorizationInfo"]["granted"], false);
        assert_eq!(v["data"]["authorizationInfo"]["patternType"], "LITERAL");
        assert_eq!(v["data"]["request"]["correlationId"], 7);
        assert_eq!(
            v["data"]["requestMetadata"]["clientAddress"],
            "127.0.0.1:5000"
        );
        assert_eq!(v["data"]["result"]["status"], "UNAUTHORIZED");
        assert!(v["data"].get("summary").is_none());
        assert_eq!(CloudEvent::from_json(&e.to_json()).ok(), Some(e));
    }

    proptest::proptest! {
        /// Whatever the identifiers hold (quotes, control characters, non-ASCII), a
        /// record is one valid JSON line that reads back as itself.
        #[test]
        fn any_record_is_one_json_line_that_reads_back(
            principal in ".{0,40}",
            resource in ".{0,80}",
            client in proptest::option::of(".{0,30}"),
            message in proptest::option::of(".{0,60}"),
            granted in proptest::bool::ANY,
            corr in proptest::num::i32::ANY,
        ) {
            let e = CloudEvent::new(types::KAFKA_AUTHORIZATION, "src", "svc", "kafka.Produce", resource.clone(), Utc::now())
                .who(Some(principal.clone()), Some("SASL_PLAIN"), Some("KEY".into()))
                .authorization(AuthorizationInfo { granted, operation: "WRITE".into(), resource_type: "Topic".into(), resource_name: resource, ..Default::default() })
                .request(Some(corr), client)
                .result(status::FAILURE, message);
            let line = e.to_json();
            proptest::prop_assert!(!line.contains('\n'));
            proptest::prop_assert_eq!(CloudEvent::from_json(&line).ok(), Some(e));
        }
    }

    #[test]
    fn ids_are_random_uuids() {
        let a = uuid4();
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert_ne!(a, uuid4());
    }
}
