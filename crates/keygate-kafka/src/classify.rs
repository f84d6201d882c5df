//! Pure request classification: what a decoded request must be allowed to do
//! (reference/kafka-authz.md, "Request → what is checked"), and the well-formed error
//! response of the request's own type when it is not.
//!
//! Denial is all-or-nothing per request: if any resource a request names is denied,
//! the gateway answers the whole request itself — denied resources carry their
//! authorization error, the others `TOPIC_AUTHORIZATION_FAILED` as well — and forwards
//! nothing. Reporting success for an unforwarded part would claim work that never
//! happened; clients name only what they may use, so mixed requests are rare.

use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::fetch_response::FetchableTopicResponse;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use keygate_core::acl::CLUSTER_RESOURCE_NAME;
use keygate_core::{Operation, ResourceType};

/// Kafka error codes the gateway answers with.
pub mod codes {
    /// TOPIC_AUTHORIZATION_FAILED
    pub const TOPIC_AUTH: i16 = 29;
    /// GROUP_AUTHORIZATION_FAILED
    pub const GROUP_AUTH: i16 = 30;
    /// CLUSTER_AUTHORIZATION_FAILED
    pub const CLUSTER_AUTH: i16 = 31;
    /// UNSUPPORTED_SASL_MECHANISM
    pub const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
    /// ILLEGAL_SASL_STATE
    pub const ILLEGAL_SASL_STATE: i16 = 34;
    /// UNSUPPORTED_VERSION
    pub const UNSUPPORTED_VERSION: i16 = 35;
    /// TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    pub const TXN_AUTH: i16 = 53;
    /// SASL_AUTHENTICATION_FAILED
    pub const SASL_AUTH_FAILED: i16 = 58;
}
use codes::*;

/// The authorizer's questions about the connection's principal.
pub trait Check {
    /// May it do `op` on `(rt, name)`?
    fn allowed(&self, rt: ResourceType, name: &str, op: Operation) -> bool;
    /// May it do `op` on some resource of type `rt` (KIP-679's idempotent producers)?
    fn any_allowed(&self, _rt: ResourceType, _op: Operation) -> bool {
        false
    }
}

impl<F: Fn(ResourceType, &str, Operation) -> bool> Check for F {
    fn allowed(&self, rt: ResourceType, name: &str, op: Operation) -> bool {
        self(rt, name, op)
    }
}

/// How the classifier asks.
pub type Authorize<'a> = &'a dyn Check;

/// What to do after the upstream answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Post {
    /// Pass the response through.
    None,
    /// Rewrite broker addresses; drop topics the principal may not describe (when the
    /// request asked for all topics) or mark named ones denied.
    Metadata {
        /// The request asked for every topic.
        all_topics: bool,
    },
    /// Rewrite the coordinator's address.
    FindCoordinator,
    /// Rewrite broker addresses.
    DescribeCluster,
    /// Keep only groups the principal may describe.
    ListGroups,
}

/// The gateway's decision for one request.
#[derive(Debug)]
pub enum Plan {
    /// Forward the request as received, then post-process the response.
    Forward(Post),
    /// Forward this re-encoded request instead (e.g. auto-creation switched off).
    Rewrite(Box<RequestKind>, Post),
    /// Answer with this response; forward nothing.
    Answer(Box<ResponseKind>),
    /// Send nothing back (a denied `acks=0` produce) — the connection is closed, as
    /// Kafka does.
    Close,
}

fn name(s: &StrBytes) -> &str {
    s.as_str()
}

fn all(checks: impl IntoIterator<Item = bool>) -> bool {
    checks.into_iter().all(|b| b)
}

fn cluster(authz: Authorize<'_>, op: Operation) -> bool {
    authz.allowed(ResourceType::Cluster, CLUSTER_RESOURCE_NAME, op)
}

fn answer(r: impl Into<ResponseKind>) -> Plan {
    Plan::Answer(Box::new(r.into()))
}

/// The plan for a request received after authentication. `None` means the gateway
/// does not classify this API: the caller closes the connection (nothing unclassified
/// is ever forwarded). Cluster-operator APIs outside the reference table are
/// classified: they need ALTER or CLUSTER_ACTION on the cluster.
pub fn plan(req: &RequestKind, version: i16, authz: Authorize<'_>) -> Option<Plan> {
    use Operation as Op;
    use ResourceType as Rt;
    let topic = |n: &str, op: Op| authz.allowed(Rt::Topic, n, op);
    let group = |n: &str, op: Op| authz.allowed(Rt::Group, n, op);
    let txn = |n: &str| authz.allowed(Rt::TransactionalId, n, Op::Write);
    Some(match req {
        RequestKind::Produce(r) => {
            let txn_ok = r.transactional_id.as_ref().is_none_or(|t| txn(name(&t.0)));
            let topics_ok = all(r
                .topic_data
                .iter()
                .map(|t| topic(name(&t.name.0), Op::Write)));
            if txn_ok && topics_ok {
                Plan::Forward(Post::None)
            } else if r.acks == 0 {
                Plan::Close
            } else {
                // Every partition fails (see the module docs): the transactional id's
                // error if that is what was denied, else the topic's.
                let code = |_: &str| if txn_ok { TOPIC_AUTH } else { TXN_AUTH };
                let mut resp = ProduceResponse::default();
                resp.responses = r
                    .topic_data
                    .iter()
                    .map(|t| {
                        let mut tr = TopicProduceResponse::default();
                        tr.name = t.name.clone();
                        tr.partition_responses = t
                            .partition_data
                            .iter()
                            .map(|p| {
                                let mut pr = PartitionProduceResponse::default();
                                pr.index = p.index;
                                pr.error_code = code(name(&t.name.0));
                                pr.base_offset = -1;
                                pr.log_append_time_ms = -1;
                                pr.log_start_offset = -1;
                                pr
                            })
                            .collect();
                        tr
                    })
                    .collect();
                answer(resp)
            }
        }
        RequestKind::Fetch(r) => {
            // Only consumers fetch through the gateway; follower fetches need
            // CLUSTER_ACTION. Topic ids (v13+) are never advertised, so names are set.
            let follower = r.replica_id.0 >= 0 || r.replica_state.replica_id.0 >= 0;
            let ok = (!follower || cluster(authz, Op::ClusterAction))
                && all(r.topics.iter().map(|t| topic(name(&t.topic.0), Op::Read)));
            if ok {
                Plan::Forward(Post::None)
            } else {
                let mut resp = FetchResponse::default();
                resp.session_id = r.session_id;
                resp.responses = r
                    .topics
                    .iter()
                    .map(|t| {
                        let mut tr = FetchableTopicResponse::default();
                        tr.topic = t.topic.clone();
                        tr.partitions = t
                            .partitions
                            .iter()
                            .map(|p| {
                                let mut pd = fetch_response::PartitionData::default();
                                pd.partition_index = p.partition;
                                pd.error_code = if follower { CLUSTER_AUTH } else { TOPIC_AUTH };
                                pd.high_watermark = -1;
                                pd.last_stable_offset = -1;
                                pd.log_start_offset = -1;
                                pd
                            })
                            .collect();
                        tr
                    })
                    .collect();
                answer(resp)
            }
        }
        RequestKind::ListOffsets(r) => {
            if all(r
                .topics
                .iter()
                .map(|t| topic(name(&t.name.0), Op::Describe)))
            {
                Plan::Forward(Post::None)
            } else {
                let mut resp = ListOffsetsResponse::default();
                resp.topics = r
                    .topics
                    .iter()
                    .map(|t| {
                        let mut tr = ListOffsetsTopicResponse::default();
                        tr.name = t.name.clone();
                        tr.partitions = t
                            .partitions
                            .iter()
                            .map(|p| {
                                let mut pr = ListOffsetsPartitionResponse::default();
                                pr.partition_index = p.partition_index;
                                pr.error_code = TOPIC_AUTH;
                                pr.offset = -1;
                                pr.timestamp = -1;
                                pr
                            })
                            .collect();
                        tr
                    })
                    .collect();
                answer(resp)
            }
        }
        RequestKind::Metadata(r) => {
            let all_topics = match &r.topics {
                None => true,
                Some(t) => version == 0 && t.is_empty(),
            };
            // Auto-creation needs CREATE (cluster or the topic); without it, ask the
            // broker not to create anything.
            let may_create = |t: &str| cluster(authz, Op::Create) || topic(t, Op::Create);
            let wants_creation = r.allow_auto_topic_creation
                && !all_topics
                && r.topics
                    .iter()
                    .flatten()
                    .any(|t| t.name.as_ref().is_some_and(|n| !may_create(name(&n.0))));
            let post = Post::Metadata { all_topics };
            if wants_creation && version >= 4 {
                let mut copy = r.clone();
                copy.allow_auto_topic_creation = false;
                Plan::Rewrite(Box::new(RequestKind::Metadata(copy)), post)
            } else {
                Plan::Forward(post)
            }
        }
        RequestKind::OffsetCommit(r) => {
            let group_ok = group(name(&r.group_id.0), Op::Read);
            let ok = group_ok && all(r.topics.iter().map(|t| topic(name(&t.name.0), Op::Read)));
            if ok {
                Plan::Forward(Post::None)
            } else {
                let mut resp = OffsetCommitResponse::default();
                resp.topics = r
                    .topics
                    .iter()
                    .map(|t| {
                        let mut tr = OffsetCommitResponseTopic::default();
                        tr.name = t.name.clone();
                        tr.partitions = t
                            .partitions
                            .iter()
                            .map(|p| {
                                let mut pr = OffsetCommitResponsePartition::default();
                                pr.partition_index = p.partition_index;
                                pr.error_code = if group_ok { TOPIC_AUTH } else { GROUP_AUTH };
                                pr
                            })
                            .collect();
                        tr
                    })
                    .collect();
                answer(resp)
            }
        }
        RequestKind::OffsetFetch(r) => {
            if version >= 8 {
                let ok = all(r.groups.iter().map(|g| {
                    group(name(&g.group_id.0), Op::Describe)
                        && all(g
                            .topics
                            .iter()
                            .flatten()
                            .map(|t| topic(name(&t.name.0), Op::Describe)))
                }));
                if ok {
                    Plan::Forward(Post::None)
                } else {
                    let mut resp = OffsetFetchResponse::default();
                    resp.groups = r
                        .groups
                        .iter()
                        .map(|g| {
                            let mut gr = OffsetFetchResponseGroup::default();
                            gr.group_id = g.group_id.clone();
                            gr.error_code = if group(name(&g.group_id.0), Op::Describe) {
                                TOPIC_AUTH
                            } else {
                                GROUP_AUTH
                            };
                            gr
                        })
                        .collect();
                    answer(resp)
                }
            } else {
                let group_ok = group(name(&r.group_id.0), Op::Describe);
                let ok = group_ok
                    && all(r
                        .topics
                        .iter()
                        .flatten()
                        .map(|t| topic(name(&t.name.0), Op::Describe)));
                if ok {
                    Plan::Forward(Post::None)
                } else {
                    let mut resp = OffsetFetchResponse::default();
                    resp.error_code = if group_ok { TOPIC_AUTH } else { GROUP_AUTH };
                    resp.topics = r
                        .topics
                        .iter()
                        .flatten()
                        .map(|t| {
                            let mut tr = OffsetFetchResponseTopic::default();
                            tr.name = t.name.clone();
                            tr.partitions = t
                                .partition_indexes
                                .iter()
                                .map(|i| {
                                    let mut pr = OffsetFetchResponsePartition::default();
                                    pr.partition_index = *i;
                                    pr.committed_offset = -1;
                                    pr.error_code = if group_ok { TOPIC_AUTH } else { GROUP_AUTH };
                                    pr
                                })
                                .collect();
                            tr
                        })
                        .collect();
                    answer(resp)
                }
            }
        }
        RequestKind::FindCoordinator(r) => {
            let keys: Vec<&StrBytes> = if version >= 4 {
                r.coordinator_keys.iter().collect()
            } else {
                vec![&r.key]
            };
            let (rt, code) = if r.key_type == 1 {
                (Rt::TransactionalId, TXN_AUTH)
            } else {
                (Rt::Group, GROUP_AUTH)
            };
            if all(keys
                .iter()
                .map(|k| authz.allowed(rt, name(k), Op::Describe)))
            {
                Plan::Forward(Post::FindCoordinator)
            } else {
                let mut resp = FindCoordinatorResponse::default();
                if version < 4 {
                    resp.error_code = code;
                    resp.node_id = BrokerId(-1);
                    resp.port = -1;
                } else {
                    resp.coordinators = keys
                        .iter()
                        .map(|k| {
                            let mut c = find_coordinator_response::Coordinator::default();
                            c.key = (*k).clone();
                            c.node_id = BrokerId(-1);
                            c.port = -1;
                            c.error_code = code;
                            c
                        })
                        .collect();
                }
                answer(resp)
            }
        }
        RequestKind::JoinGroup(r) => group_gate(group(name(&r.group_id.0), Op::Read), || {
            let mut resp = JoinGroupResponse::default();
            resp.error_code = GROUP_AUTH;
            resp.generation_id = -1;
            resp.into()
        }),
        RequestKind::SyncGroup(r) => group_gate(group(name(&r.group_id.0), Op::Read), || {
            let mut resp = SyncGroupResponse::default();
            resp.error_code = GROUP_AUTH;
            resp.into()
        }),
        RequestKind::Heartbeat(r) => group_gate(group(name(&r.group_id.0), Op::Read), || {
            let mut resp = HeartbeatResponse::default();
            resp.error_code = GROUP_AUTH;
            resp.into()
        }),
        RequestKind::LeaveGroup(r) => group_gate(group(name(&r.group_id.0), Op::Read), || {
            let mut resp = LeaveGroupResponse::default();
            resp.error_code = GROUP_AUTH;
            resp.into()
        }),
        RequestKind::DescribeGroups(r) => {
            if all(r.groups.iter().map(|g| group(name(&g.0), Op::Describe))) {
                Plan::Forward(Post::None)
            } else {
                let mut resp = DescribeGroupsResponse::default();
                resp.groups = r
                    .groups
                    .iter()
                    .map(|g| {
                        let mut d = DescribedGroup::default();
                        d.group_id = g.clone();
                        d.error_code = GROUP_AUTH;
                        d
                    })
                    .collect();
                answer(resp)
            }
        }
        RequestKind::ListGroups(_) => {
            if cluster(authz, Op::Describe) {
                Plan::Forward(Post::None)
            } else {
                Plan::Forward(Post::ListGroups)
            }
        }
        RequestKind::DeleteGroups(r) => {
            if all(r.groups_names.iter().map(|g| group(name(&g.0), Op::Delete))) {
                Plan::Forward(Post::None)
            } else {
                let mut resp = DeleteGroupsResponse::default();
                resp.results = r
                    .groups_names
                    .iter()
                    .map(|g| {
                        let mut d = DeletableGroupResult::default();
                        d.group_id = g.clone();
                        d.error_code = GROUP_AUTH;
                        d
                    })
                    .collect();
                answer(resp)
            }
        }
        RequestKind::CreateTopics(r) => {
            let ok = cluster(authz, Op::Create)
                || all(r.topics.iter().map(|t| topic(name(&t.name.0), Op::Create)));
            if ok {
                Plan::Forward(Post::None)
            } else {
                let mut resp = CreateTopicsResponse::default();
                resp.topics = r
                    .topics
                    .iter()
                    .map(|t| {
                        let mut c = CreatableTopicResult::default();
                        c.name = t.name.clone();
                        c.error_code = TOPIC_AUTH;
                        c.num_partitions = -1;
                        c.replication_factor = -1;
                        c
                    })
                    .collect();
                answer(resp)
            }
        }
        RequestKind::DeleteTopics(r) => {
            // Names: v0-5 `topic_names`, v6+ `topics` (an id without a name is denied:
            // topic ids are never advertised).
            let names: Vec<Option<TopicName>> = if version >= 6 {
                r.topics.iter().map(|t| t.name.clone()).collect()
            } else {
                r.topic_names.iter().cloned().map(Some).collect()
            };
            if all(names
                .iter()
                .map(|n| n.as_ref().is_some_and(|n| topic(name(&n.0), Op::Delete))))
            {
                Plan::Forward(Post::None)
            } else {
                let mut resp = DeleteTopicsResponse::default();
                resp.responses = names
                    .into_iter()
                    .map(|n| {
                        let mut d = DeletableTopicResult::default();
                        d.name = n;
                        d.error_code = TOPIC_AUTH;
                        d
                    })
                    .collect();
                answer(resp)
            }
        }
        RequestKind::DeleteRecords(r) => {
            if all(r.topics.iter().map(|t| topic(name(&t.name.0), Op::Delete))) {
                Plan::Forward(Post::None)
            } else {
                let mut resp = DeleteRecordsResponse::default();
                resp.topics = r
                    .topics
                    .iter()
                    .map(|t| {
                        let mut tr = DeleteRecordsTopicResult::default();
                        tr.name = t.name.clone();
                        tr.partitions = t
                            .partitions
                            .iter()
                            .map(|p| {
                                let mut pr = DeleteRecordsPartitionResult::default();
                                pr.partition_index = p.partition_index;
                                pr.low_watermark = -1;
                                pr.error_code = TOPIC_AUTH;
                                pr
                            })
                            .collect();
                        tr
                    })
                    .collect();
                answer(resp)
            }
        }
        RequestKind::CreatePartitions(r) => {
            if all(r.topics.iter().map(|t| topic(name(&t.name.0), Op::Alter))) {
                Plan::Forward(Post::None)
            } else {
                let mut resp = CreatePartitionsResponse::default();
                resp.results = r
                    .topics
                    .iter()
                    .map(|t| {
                        let mut c = CreatePartitionsTopicResult::default();
                        c.name = t.name.clone();
                        c.error_code = TOPIC_AUTH;
                        c
                    })
                    .collect();
                answer(resp)
            }
        }
        RequestKind::InitProducerId(r) => {
            let (ok, code) = match &r.transactional_id {
                Some(t) => (txn(name(&t.0)), TXN_AUTH),
                // IDEMPOTENT_WRITE on the cluster, or WRITE on any topic (KIP-679).
                None => (
                    cluster(authz, Op::IdempotentWrite) || authz.any_allowed(Rt::Topic, Op::Write),
                    CLUSTER_AUTH,
                ),
            };
            if ok {
                Plan::Forward(Post::None)
            } else {
                let mut resp = InitProducerIdResponse::default();
                resp.error_code = code;
                resp.producer_id = ProducerId(-1);
                resp.producer_epoch = -1;
                answer(resp)
            }
        }
        RequestKind::AddPartitionsToTxn(r) => {
            if version <= 3 {
                let txn_ok = txn(name(&r.v3_and_below_transactional_id.0));
                let ok = txn_ok
                    && all(r
                        .v3_and_below_topics
                        .iter()
                        .map(|t| topic(name(&t.name.0), Op::Write)));
                if ok {
                    Plan::Forward(Post::None)
                } else {
                    let mut resp = AddPartitionsToTxnResponse::default();
                    resp.results_by_topic_v3_and_below = r
                        .v3_and_below_topics
                        .iter()
                        .map(|t| txn_topic_result(t, if txn_ok { TOPIC_AUTH } else { TXN_AUTH }))
                        .collect();
                    answer(resp)
                }
            } else {
                // v4+ is broker-to-broker (verify_only); clients never send it.
                let ok = cluster(authz, Op::ClusterAction);
                if ok {
                    Plan::Forward(Post::None)
                } else {
                    let mut resp = AddPartitionsToTxnResponse::default();
                    resp.error_code = CLUSTER_AUTH;
                    answer(resp)
                }
            }
        }
        RequestKind::AddOffsetsToTxn(r) => {
            let txn_ok = txn(name(&r.transactional_id.0));
            if txn_ok && group(name(&r.group_id.0), Op::Read) {
                Plan::Forward(Post::None)
            } else {
                let mut resp = AddOffsetsToTxnResponse::default();
                resp.error_code = if txn_ok { GROUP_AUTH } else { TXN_AUTH };
                answer(resp)
            }
        }
        RequestKind::EndTxn(r) => {
            if txn(name(&r.transactional_id.0)) {
                Plan::Forward(Post::None)
            } else {
                let mut resp = EndTxnResponse::default();
                resp.error_code = TXN_AUTH;
                answer(resp)
            }
        }
        RequestKind::TxnOffsetCommit(r) => {
            let txn_ok = txn(name(&r.transactional_id.0));
            let group_ok = group(name(&r.group_id.0), Op::Read);
            let ok = txn_ok
                && group_ok
                && all(r.topics.iter().map(|t| topic(name(&t.name.0), Op::Read)));
            if ok {
                Plan::Forward(Post::None)
            } else {
                let code = if !txn_ok {
                    TXN_AUTH
                } else if !group_ok {
                    GROUP_AUTH
                } else {
                    TOPIC_AUTH
                };
                let mut resp = TxnOffsetCommitResponse::default();
                resp.topics = r
                    .topics
                    .iter()
                    .map(|t| {
                        let mut tr = TxnOffsetCommitResponseTopic::default();
                        tr.name = t.name.clone();
                        tr.partitions = t
                            .partitions
                            .iter()
                            .map(|p| {
                                let mut pr = TxnOffsetCommitResponsePartition::default();
                                pr.partition_index = p.partition_index;
                                pr.error_code = code;
                                pr
                            })
                            .collect();
                        tr
                    })
                    .collect();
                answer(resp)
            }
        }
        RequestKind::DescribeConfigs(r) => {
            let check = |rt: i8, n: &str| config_check(authz, rt, n, Op::DescribeConfigs);
            if all(r
                .resources
                .iter()
                .map(|c| check(c.resource_type, name(&c.resource_name)).is_none()))
            {
                Plan::Forward(Post::None)
            } else {
                let mut resp = DescribeConfigsResponse::default();
                resp.results = r
                    .resources
                    .iter()
                    .map(|c| {
                        let mut d = DescribeConfigsResult::default();
                        d.resource_type = c.resource_type;
                        d.resource_name = c.resource_name.clone();
                        d.error_code =
                            check(c.resource_type, name(&c.resource_name)).unwrap_or(TOPIC_AUTH);
                        d
                    })
                    .collect();
                answer(resp)
            }
        }
        RequestKind::AlterConfigs(r) => {
            match alter_denials(
                authz,
                r.resources
                    .iter()
                    .map(|c| (c.resource_type, &c.resource_name)),
            ) {
                None => Plan::Forward(Post::None),
                Some(responses) => {
                    let mut resp = AlterConfigsResponse::default();
                    resp.responses = responses;
                    answer(resp)
                }
            }
        }
        RequestKind::IncrementalAlterConfigs(r) => {
            match alter_denials(
                authz,
                r.resources
                    .iter()
                    .map(|c| (c.resource_type, &c.resource_name)),
            ) {
                None => Plan::Forward(Post::None),
                Some(responses) => {
                    let mut resp = IncrementalAlterConfigsResponse::default();
                    resp.responses = responses;
                    answer(resp)
                }
            }
        }
        RequestKind::OffsetForLeaderEpoch(r) => {
            if all(r
                .topics
                .iter()
                .map(|t| topic(name(&t.topic.0), Op::Describe)))
            {
                Plan::Forward(Post::None)
            } else {
                let mut resp = OffsetForLeaderEpochResponse::default();
                resp.topics = r
                    .topics
                    .iter()
                    .map(|t| {
                        let mut tr =
                            offset_for_leader_epoch_response::OffsetForLeaderTopicResult::default();
                        tr.topic = t.topic.clone();
                        tr.partitions = t
                            .partitions
                            .iter()
                            .map(|p| {
                                let mut pr =
                                    offset_for_leader_epoch_response::EpochEndOffset::default();
                                pr.partition = p.partition;
                                pr.error_code = TOPIC_AUTH;
                                pr.leader_epoch = -1;
                                pr.end_offset = -1;
                                pr
                            })
                            .collect();
                        tr
                    })
                    .collect();
                answer(resp)
            }
        }
        RequestKind::DescribeCluster(_) => {
            if cluster(authz, Op::Describe) {
                Plan::Forward(Post::DescribeCluster)
            } else {
                let mut resp = DescribeClusterResponse::default();
                resp.error_code = CLUSTER_AUTH;
                resp.controller_id = BrokerId(-1);
                answer(resp)
            }
        }
        // "Anything else" Kafka defines for cluster operators: forwarded only for a
        // principal with ALTER or CLUSTER_ACTION on the cluster.
        RequestKind::ListPartitionReassignments(_) => cluster_admin(authz, || {
            let mut resp = ListPartitionReassignmentsResponse::default();
            resp.error_code = CLUSTER_AUTH;
            resp.into()
        }),
        RequestKind::AlterPartitionReassignments(_) => cluster_admin(authz, || {
            let mut resp = AlterPartitionReassignmentsResponse::default();
            resp.error_code = CLUSTER_AUTH;
            resp.into()
        }),
        RequestKind::ElectLeaders(r) => cluster_admin(authz, || {
            let mut resp = ElectLeadersResponse::default();
            if version >= 1 {
                resp.error_code = CLUSTER_AUTH;
            }
            resp.replica_election_results = r
                .topic_partitions
                .iter()
                .flatten()
                .map(|t| {
                    let mut er = elect_leaders_response::ReplicaElectionResult::default();
                    er.topic = t.topic.clone();
                    er.partition_result = t
                        .partitions
                        .iter()
                        .map(|p| {
                            let mut pr = elect_leaders_response::PartitionResult::default();
                            pr.partition_id = *p;
                            pr.error_code = CLUSTER_AUTH;
                            pr
                        })
                        .collect();
                    er
                })
                .collect();
            resp.into()
        }),
        RequestKind::DescribeLogDirs(_) => cluster_admin(authz, || {
            // Before v3 there is no top-level error: Kafka answers with no log dirs.
            let mut resp = DescribeLogDirsResponse::default();
            if version >= 3 {
                resp.error_code = CLUSTER_AUTH;
            }
            resp.into()
        }),
        _ => return None,
    })
}

/// The rule for APIs outside the table: ALTER or CLUSTER_ACTION on the cluster.
fn cluster_admin(authz: Authorize<'_>, deny: impl FnOnce() -> ResponseKind) -> Plan {
    group_gate(
        cluster(authz, Operation::Alter) || cluster(authz, Operation::ClusterAction),
        deny,
    )
}

fn group_gate(ok: bool, deny: impl FnOnce() -> ResponseKind) -> Plan {
    if ok {
        Plan::Forward(Post::None)
    } else {
        Plan::Answer(Box::new(deny()))
    }
}

fn txn_topic_result(
    t: &add_partitions_to_txn_request::AddPartitionsToTxnTopic,
    code: i16,
) -> AddPartitionsToTxnTopicResult {
    let mut tr = AddPartitionsToTxnTopicResult::default();
    tr.name = t.name.clone();
    tr.results_by_partition = t
        .partitions
        .iter()
        .map(|p| {
            let mut pr = AddPartitionsToTxnPartitionResult::default();
            pr.partition_index = *p;
            pr.partition_error_code = code;
            pr
        })
        .collect();
    tr
}

/// Config resources: 2 = topic, 4 = broker, 8 = broker logger. Returns the error code
/// when denied.
fn config_check(authz: Authorize<'_>, rt: i8, name: &str, op: Operation) -> Option<i16> {
    let ok = match rt {
        2 => authz.allowed(ResourceType::Topic, name, op),
        _ => authz.allowed(ResourceType::Cluster, CLUSTER_RESOURCE_NAME, op),
    };
    (!ok).then_some(if rt == 2 { TOPIC_AUTH } else { CLUSTER_AUTH })
}

fn alter_result<T: Default + AlterResult>(rt: i8, n: &StrBytes, denied: Option<i16>) -> T {
    let mut a = T::default();
    a.set(rt, n.clone(), denied.unwrap_or(TOPIC_AUTH));
    a
}

/// `None` when ALTER_CONFIGS is allowed on every resource; else one result per
/// resource (the twin AlterConfigs APIs share this).
fn alter_denials<'r, T: Default + AlterResult>(
    authz: Authorize<'_>,
    resources: impl Iterator<Item = (i8, &'r StrBytes)> + Clone,
) -> Option<Vec<T>> {
    let check = |rt: i8, n: &StrBytes| config_check(authz, rt, n.as_str(), Operation::AlterConfigs);
    if resources.clone().all(|(rt, n)| check(rt, n).is_none()) {
        return None;
    }
    Some(
        resources
            .map(|(rt, n)| alter_result(rt, n, check(rt, n)))
            .collect(),
    )
}

/// The two AlterConfigs APIs have twin result types.
trait AlterResult {
    fn set(&mut self, rt: i8, name: StrBytes, code: i16);
}

impl AlterResult for alter_configs_response::AlterConfigsResourceResponse {
    fn set(&mut self, rt: i8, name: StrBytes, code: i16) {
        self.resource_type = rt;
        self.resource_name = name;
        self.error_code = code;
    }
}

impl AlterResult for incremental_alter_configs_response::AlterConfigsResourceResponse {
    fn set(&mut self, rt: i8, name: StrBytes, code: i16) {
        self.resource_type = rt;
        self.resource_name = name;
        self.error_code = code;
    }
}

/// APIs the gateway answers itself, whatever the upstream supports: the handshake and
/// keygate's own ACLs.
pub fn answered_locally(k: ApiKey) -> bool {
    matches!(
        k,
        ApiKey::ApiVersions
            | ApiKey::SaslHandshake
            | ApiKey::SaslAuthenticate
            | ApiKey::DescribeAcls
            | ApiKey::CreateAcls
            | ApiKey::DeleteAcls
    )
}

/// API versions the gateway classifies, capped where later versions name topics by id
/// (the gateway authorizes by name, so it never advertises those).
pub fn gateway_versions() -> Vec<(ApiKey, i16, i16)> {
    use ApiKey as K;
    let cap = |k: K, max: Option<i16>| {
        let v = k.valid_versions();
        (k, v.min, max.map_or(v.max, |m| m.min(v.max)))
    };
    vec![
        cap(K::Produce, Some(12)),
        cap(K::Fetch, Some(12)),
        cap(K::ListOffsets, None),
        cap(K::Metadata, Some(12)),
        cap(K::OffsetCommit, Some(8)),
        cap(K::OffsetFetch, Some(8)),
        cap(K::FindCoordinator, None),
        cap(K::JoinGroup, None),
        cap(K::Heartbeat, None),
        cap(K::LeaveGroup, None),
        cap(K::SyncGroup, None),
        cap(K::DescribeGroups, None),
        cap(K::ListGroups, None),
        cap(K::SaslHandshake, None),
        cap(K::ApiVersions, Some(3)),
        cap(K::CreateTopics, None),
        cap(K::DeleteTopics, Some(5)),
        cap(K::DeleteRecords, None),
        cap(K::InitProducerId, None),
        cap(K::OffsetForLeaderEpoch, None),
        cap(K::AddPartitionsToTxn, Some(3)),
        cap(K::AddOffsetsToTxn, None),
        cap(K::EndTxn, None),
        cap(K::TxnOffsetCommit, None),
        cap(K::DescribeConfigs, None),
        cap(K::AlterConfigs, None),
        cap(K::SaslAuthenticate, None),
        cap(K::CreatePartitions, None),
        cap(K::DeleteGroups, None),
        cap(K::IncrementalAlterConfigs, None),
        cap(K::DescribeCluster, None),
        cap(K::DescribeAcls, None),
        cap(K::CreateAcls, None),
        cap(K::DeleteAcls, None),
        cap(K::ElectLeaders, None),
        cap(K::DescribeLogDirs, None),
        cap(K::AlterPartitionReassignments, None),
        cap(K::ListPartitionReassignments, None),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};

    fn topic_name(s: &'static str) -> TopicName {
        TopicName(StrBytes::from_static_str(s))
    }

    /// Allows WRITE/READ/DESCRIBE on topics starting with `ok`, READ on group `g-ok`.
    fn policy(rt: ResourceType, name: &str, op: Operation) -> bool {
        match rt {
            ResourceType::Topic => name.starts_with("ok"),
            ResourceType::Group => {
                name == "g-ok" && matches!(op, Operation::Read | Operation::Describe)
            }
            ResourceType::TransactionalId => name == "tx-ok",
            ResourceType::Cluster => false,
        }
    }

    fn produce(topics: &[&'static str], txn: Option<&'static str>, acks: i16) -> RequestKind {
        let mut r = ProduceRequest::default();
        r.acks = acks;
        r.transactional_id = txn.map(|t| TransactionalId(StrBytes::from_static_str(t)));
        r.topic_data = topics
            .iter()
            .map(|t| {
                let mut td = TopicProduceData::default();
                td.name = topic_name(t);
                let mut p = PartitionProduceData::default();
                p.index = 0;
                td.partition_data = vec![p];
                td
            })
            .collect();
        RequestKind::Produce(r)
    }

    /// At every version the gateway advertises for `api`, the denial planned for
    /// `req` is an answer that encodes at that version.
    fn denial_encodes_everywhere(api: ApiKey, req: &RequestKind) {
        let (_, min, max) = gateway_versions()
            .into_iter()
            .find(|(k, _, _)| *k == api)
            .expect("advertised");
        for v in min..=max {
            let resp = answer_of(plan(req, v, &policy).expect("plan"));
            let mut buf = BytesMut::new();
            assert!(
                resp.encode(&mut buf, v).is_ok(),
                "{api:?} v{v}: the denial does not encode"
            );
        }
    }

    fn answer_of(plan: Plan) -> ResponseKind {
        match plan {
            Plan::Answer(r) => *r,
            other => panic!("expected an answer, got {other:?}"),
        }
    }

    #[test]
    fn produce_is_forwarded_only_when_every_topic_and_the_txn_id_are_allowed() {
        let p = &policy;
        assert!(matches!(
            plan(&produce(&["ok-a", "ok-b"], None, -1), 9, p),
            Some(Plan::Forward(Post::None))
        ));
        let resp = answer_of(plan(&produce(&["ok-a", "secret"], None, -1), 9, p).expect("plan"));
        let ResponseKind::Produce(r) = &resp else {
            panic!("not a produce response")
        };
        assert!(r
            .responses
            .iter()
            .flat_map(|t| &t.partition_responses)
            .all(|p| p.error_code == codes::TOPIC_AUTH));
        denial_encodes_everywhere(ApiKey::Produce, &produce(&["ok-a", "secret"], None, -1));
        let resp = answer_of(plan(&produce(&["ok-a"], Some("tx-nope"), -1), 9, p).expect("plan"));
        let ResponseKind::Produce(r) = &resp else {
            panic!("not a produce response")
        };
        assert_eq!(
            r.responses[0].partition_responses[0].error_code,
            codes::TXN_AUTH
        );
        assert!(matches!(
            plan(&produce(&["ok-a"], Some("tx-ok"), -1), 9, p),
            Some(Plan::Forward(_))
        ));
        // acks=0 expects no answer: the connection is closed instead.
        assert!(matches!(
            plan(&produce(&["secret"], None, 0), 9, p),
            Some(Plan::Close)
        ));
    }

    #[test]
    fn groups_transactions_and_admin_requests() {
        let p = &policy;
        let mut j = JoinGroupRequest::default();
        j.group_id = GroupId(StrBytes::from_static_str("g-nope"));
        let resp = answer_of(plan(&RequestKind::JoinGroup(j.clone()), 5, p).expect("plan"));
        assert!(matches!(&resp, ResponseKind::JoinGroup(r) if r.error_code == codes::GROUP_AUTH));
        denial_encodes_everywhere(ApiKey::JoinGroup, &RequestKind::JoinGroup(j.clone()));
        j.group_id = GroupId(StrBytes::from_static_str("g-ok"));
        assert!(matches!(
            plan(&RequestKind::JoinGroup(j), 5, p),
            Some(Plan::Forward(_))
        ));

        let mut fc = FindCoordinatorRequest::default();
        fc.key = StrBytes::from_static_str("g-ok");
        assert!(matches!(
            plan(&RequestKind::FindCoordinator(fc.clone()), 3, p),
            Some(Plan::Forward(Post::FindCoordinator))
        ));
        fc.key_type = 1;
        fc.key = StrBytes::from_static_str("tx-nope");
        fc.coordinator_keys = vec![StrBytes::from_static_str("tx-nope")];
        let resp = answer_of(plan(&RequestKind::FindCoordinator(fc.clone()), 3, p).expect("plan"));
        assert!(
            matches!(&resp, ResponseKind::FindCoordinator(r) if r.error_code == codes::TXN_AUTH)
        );
        let resp = answer_of(plan(&RequestKind::FindCoordinator(fc.clone()), 4, p).expect("plan"));
        assert!(
            matches!(&resp, ResponseKind::FindCoordinator(r) if r.coordinators[0].error_code == codes::TXN_AUTH)
        );
        denial_encodes_everywhere(ApiKey::FindCoordinator, &RequestKind::FindCoordinator(fc));

        let mut ip = InitProducerIdRequest::default();
        ip.transactional_id = Some(TransactionalId(StrBytes::from_static_str("tx-nope")));
        let resp = answer_of(plan(&RequestKind::InitProducerId(ip.clone()), 4, p).expect("plan"));
        assert!(
            matches!(&resp, ResponseKind::InitProducerId(r) if r.error_code == codes::TXN_AUTH)
        );
        denial_encodes_everywhere(ApiKey::InitProducerId, &RequestKind::InitProducerId(ip));
        // An idempotent producer needs IDEMPOTENT_WRITE on the cluster.
        let mut idem = InitProducerIdRequest::default();
        idem.transactional_id = None;
        let resp = answer_of(plan(&RequestKind::InitProducerId(idem), 4, p).expect("plan"));
        assert!(
            matches!(&resp, ResponseKind::InitProducerId(r) if r.error_code == codes::CLUSTER_AUTH)
        );

        let mut ct = CreateTopicsRequest::default();
        let mut t = create_topics_request::CreatableTopic::default();
        t.name = topic_name("nope");
        ct.topics = vec![t];
        let resp = answer_of(plan(&RequestKind::CreateTopics(ct.clone()), 5, p).expect("plan"));
        assert!(
            matches!(&resp, ResponseKind::CreateTopics(r) if r.topics[0].error_code == codes::TOPIC_AUTH)
        );
        denial_encodes_everywhere(ApiKey::CreateTopics, &RequestKind::CreateTopics(ct));

        // Metadata for all topics is forwarded and filtered afterwards.
        let mut md = MetadataRequest::default();
        md.topics = None;
        assert!(matches!(
            plan(&RequestKind::Metadata(md), 12, p),
            Some(Plan::Forward(Post::Metadata { all_topics: true }))
        ));
        // Without CREATE, auto-creation is switched off in the forwarded request.
        let mut md = MetadataRequest::default();
        let mut mt = metadata_request::MetadataRequestTopic::default();
        mt.name = Some(topic_name("new-topic"));
        md.topics = Some(vec![mt]);
        md.allow_auto_topic_creation = true;
        match plan(&RequestKind::Metadata(md), 9, p) {
            Some(Plan::Rewrite(req, Post::Metadata { all_topics: false })) => {
                assert!(
                    matches!(*req, RequestKind::Metadata(ref m) if !m.allow_auto_topic_creation)
                );
            }
            other => panic!("expected a rewrite, got {other:?}"),
        }
        // ListGroups without DESCRIBE on the cluster is filtered per group.
        assert!(matches!(
            plan(&RequestKind::ListGroups(ListGroupsRequest::default()), 4, p),
            Some(Plan::Forward(Post::ListGroups))
        ));
        // Config changes: ALTER_CONFIGS on the topic, or on the cluster for brokers.
        let mut ac = AlterConfigsRequest::default();
        let mut topic_res = alter_configs_request::AlterConfigsResource::default();
        topic_res.resource_type = 2;
        topic_res.resource_name = StrBytes::from_static_str("nope");
        let mut broker_res = alter_configs_request::AlterConfigsResource::default();
        broker_res.resource_type = 4;
        broker_res.resource_name = StrBytes::from_static_str("1");
        ac.resources = vec![topic_res, broker_res];
        let resp = answer_of(plan(&RequestKind::AlterConfigs(ac.clone()), 1, p).expect("plan"));
        let ResponseKind::AlterConfigs(r) = &resp else {
            panic!("not an AlterConfigs response")
        };
        assert_eq!(
            r.responses.iter().map(|x| x.error_code).collect::<Vec<_>>(),
            [codes::TOPIC_AUTH, codes::CLUSTER_AUTH]
        );
        denial_encodes_everywhere(ApiKey::AlterConfigs, &RequestKind::AlterConfigs(ac));
        let mut ok_topic = IncrementalAlterConfigsRequest::default();
        let mut res = incremental_alter_configs_request::AlterConfigsResource::default();
        res.resource_type = 2;
        res.resource_name = StrBytes::from_static_str("ok-topic");
        ok_topic.resources = vec![res];
        assert!(matches!(
            plan(&RequestKind::IncrementalAlterConfigs(ok_topic), 1, p),
            Some(Plan::Forward(Post::None))
        ));
        // Something the gateway does not classify is never forwarded.
        assert!(plan(
            &RequestKind::DescribeAcls(DescribeAclsRequest::default()),
            2,
            p
        )
        .is_none());
        assert!(plan(
            &RequestKind::DescribeUserScramCredentials(Default::default()),
            0,
            p
        )
        .is_none());
    }

    #[test]
    fn cluster_operator_apis_need_alter_or_cluster_action() {
        let mut el = ElectLeadersRequest::default();
        let mut tp = elect_leaders_request::TopicPartitions::default();
        tp.topic = topic_name("ok-a");
        tp.partitions = vec![0, 1];
        el.topic_partitions = Some(vec![tp]);
        let reqs = [
            (
                ApiKey::ListPartitionReassignments,
                RequestKind::ListPartitionReassignments(Default::default()),
            ),
            (
                ApiKey::AlterPartitionReassignments,
                RequestKind::AlterPartitionReassignments(Default::default()),
            ),
            (ApiKey::ElectLeaders, RequestKind::ElectLeaders(el)),
            (
                ApiKey::DescribeLogDirs,
                RequestKind::DescribeLogDirs(Default::default()),
            ),
        ];
        for (api, req) in &reqs {
            // `policy` grants nothing on the cluster: a well-formed denial at every
            // advertised version.
            denial_encodes_everywhere(*api, req);
            let (_, _, max) = gateway_versions()
                .into_iter()
                .find(|(k, _, _)| k == api)
                .expect("advertised");
            for op in [Operation::Alter, Operation::ClusterAction] {
                let operator = move |rt: ResourceType, _: &str, o: Operation| {
                    rt == ResourceType::Cluster && o == op
                };
                assert!(
                    matches!(plan(req, max, &operator), Some(Plan::Forward(Post::None))),
                    "{api:?} with {op:?} on the cluster is forwarded"
                );
            }
            // DESCRIBE on the cluster is not enough.
            let describer = |rt: ResourceType, _: &str, o: Operation| {
                rt == ResourceType::Cluster && o == Operation::Describe
            };
            assert!(matches!(plan(req, max, &describer), Some(Plan::Answer(_))));
        }
        let resp = answer_of(
            plan(
                &RequestKind::ListPartitionReassignments(Default::default()),
                0,
                &policy,
            )
            .expect("plan"),
        );
        assert!(
            matches!(resp, ResponseKind::ListPartitionReassignments(ref r) if r.error_code == codes::CLUSTER_AUTH)
        );
    }
}
