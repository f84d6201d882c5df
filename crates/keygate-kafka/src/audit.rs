//! The gateway's audit records: every SASL authentication (success and failure),
//! every denied authorization, and every management request (CreateTopics,
//! DeleteTopics, CreateAcls, …) allowed or denied. Allowed Produce and Fetch are only
//! counted (see `keygate_audit::usage`).
//!
//! Records are built only from identifiers: the key id (and only when the PLAIN
//! username has the shape of one — a client that swapped username and password must
//! not get its secret into the log), pool ids, the token's subject, never a token.

use crate::gateway::ClusterShared;
use kafka_protocol::messages::ApiKey;
use keygate_audit::{
    status, types, AclAuthorization, AuthorizationInfo, CloudEvent, RbacAuthorization,
};
use keygate_authz::Reason;
use keygate_core::{Operation, ResourceType};
use std::net::SocketAddr;

/// One authorization check of a request, as the authorizer decided it.
#[derive(Debug, Clone)]
pub(crate) struct CheckRec {
    pub(crate) rt: ResourceType,
    pub(crate) name: String,
    pub(crate) op: Operation,
    pub(crate) allowed: bool,
    pub(crate) reason: Reason,
}

/// Who made a request, for its records.
#[derive(Debug, Clone)]
pub(crate) struct Who {
    pub(crate) principal: String,
    pub(crate) mechanism: &'static str,
    pub(crate) identifier: String,
    pub(crate) identity: Option<String>,
    pub(crate) peer: SocketAddr,
}

/// Requests that change the cluster (or read its security state): every one is
/// recorded, allowed or denied.
pub(crate) fn is_management(api: ApiKey) -> bool {
    use ApiKey as A;
    matches!(
        api,
        A::CreateTopics
            | A::DeleteTopics
            | A::CreatePartitions
            | A::DeleteRecords
            | A::AlterConfigs
            | A::IncrementalAlterConfigs
            | A::DeleteGroups
            | A::OffsetDelete
            | A::CreateAcls
            | A::DeleteAcls
            | A::AlterPartitionReassignments
            | A::ElectLeaders
            | A::AlterReplicaLogDirs
            | A::AlterClientQuotas
            | A::AlterUserScramCredentials
            | A::CreateDelegationToken
            | A::RenewDelegationToken
            | A::ExpireDelegationToken
            | A::UpdateFeatures
            | A::UnregisterBroker
    )
}

fn resource_type_name(rt: ResourceType) -> &'static str {
    match rt {
        ResourceType::Topic => "Topic",
        ResourceType::Group => "Group",
        ResourceType::Cluster => "Cluster",
        ResourceType::TransactionalId => "TransactionalId",
    }
}

impl ClusterShared {
    /// The CRN of a resource of this cluster.
    pub(crate) fn resource_crn(&self, rt: ResourceType, name: &str) -> String {
        match rt {
            ResourceType::Cluster => self.resource_base.to_string(),
            ResourceType::Topic => format!("{}/topic={name}", self.resource_base),
            ResourceType::Group => format!("{}/group={name}", self.resource_base),
            ResourceType::TransactionalId => {
                format!("{}/transactional-id={name}", self.resource_base)
            }
        }
    }

    fn event(&self, kind: &str, method: String, resource: String) -> CloudEvent {
        CloudEvent::new(
            kind,
            self.crn.as_ref(),
            self.crn.as_ref(),
            method,
            resource,
            chrono::Utc::now(),
        )
    }

    /// A SASL authentication's record. `who.principal` is empty when it failed.
    pub(crate) fn audit_authentication(&self, who: &Who, failure: Option<&str>) {
        keygate_metrics::authentication("kafka", who.mechanism, failure.is_none());
        if !self.auditor.enabled() {
            return;
        }
        let e = self
            .event(
                types::KAFKA_AUTHENTICATION,
                "kafka.Authentication".into(),
                self.resource_base.to_string(),
            )
            .who(
                (!who.principal.is_empty()).then(|| who.principal.clone()),
                Some(who.mechanism),
                (!who.identifier.is_empty()).then(|| who.identifier.clone()),
            )
            .identity(who.identity.clone())
            .client_address(Some(who.peer.to_string()));
        let e = match failure {
            None => e,
            Some(reason) => e.result(status::UNAUTHENTICATED, Some(reason.to_owned())),
        };
        self.auditor.record(e);
    }

    /// The records of one request's checks: management requests record every check
    /// that decided the outcome; other requests record their denials. When the
    /// request went through (`forwarded`), denied checks were fallbacks that another
    /// check overruled (Kafka's cluster-then-topic CREATE), so they are left out.
    pub(crate) fn audit_checks(
        &self,
        who: &Who,
        api: ApiKey,
        correlation_id: i32,
        client_id: Option<&str>,
        checks: &[CheckRec],
        forwarded: bool,
    ) {
        if !self.auditor.enabled() {
            return;
        }
        let management = is_management(api);
        let mut seen: Vec<(ResourceType, &str, Operation)> = Vec::new();
        for c in checks {
            let keep = if forwarded {
                management && c.allowed
            } else {
                !c.allowed || management
            };
            if !keep || seen.contains(&(c.rt, c.name.as_str(), c.op)) {
                continue;
            }
            seen.push((c.rt, c.name.as_str(), c.op));
            let kind = if management {
                types::KAFKA_REQUEST
            } else {
                types::KAFKA_AUTHORIZATION
            };
            let mut info = AuthorizationInfo {
                granted: c.allowed,
                operation: c.op.as_str().to_owned(),
                resource_type: resource_type_name(c.rt).to_owned(),
                resource_name: c.name.clone(),
                pattern_type: Some("LITERAL".into()),
                ..Default::default()
            };
            match c.reason {
                Reason::SuperUser => info.super_user_authorization = Some(true),
                Reason::AllowAcl | Reason::DenyAcl => {
                    info.acl_authorization = Some(AclAuthorization {
                        permission_type: if c.reason == Reason::AllowAcl {
                            "ALLOW"
                        } else {
                            "DENY"
                        }
                        .into(),
                        host: "*".into(),
                    })
                }
                Reason::Role(role) => {
                    info.rbac_authorization = Some(RbacAuthorization {
                        role: role.map_or_else(|| "unknown".to_owned(), |r| r.to_string()),
                        scope: self.crn.to_string(),
                    })
                }
                Reason::NoMatch | Reason::UnknownCluster => {}
            }
            let e = self
                .event(
                    kind,
                    format!("kafka.{api:?}"),
                    self.resource_crn(c.rt, &c.name),
                )
                .who(
                    Some(who.principal.clone()),
                    Some(who.mechanism),
                    Some(who.identifier.clone()),
                )
                .identity(who.identity.clone())
                .authorization(info)
                .request(Some(correlation_id), client_id.map(str::to_owned))
                .client_address(Some(who.peer.to_string()));
            self.auditor.record(e);
        }
    }
}
