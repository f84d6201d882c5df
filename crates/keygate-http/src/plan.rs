//! What a request needs before it may go upstream, and what happens to its answer:
//! each service module turns (method, path segments) into a [`Plan`]. Pure: no I/O,
//! so every row of every service's table is a unit test.

use keygate_core::crn::CrnPattern;
use keygate_core::{Operation, ServiceOp};

/// One authorization check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// A role-based service operation on a target CRN.
    Service(CrnPattern, ServiceOp),
    /// A service operation on *something* inside a scope (e.g. any subject of a
    /// registry).
    Within(CrnPattern, ServiceOp),
    /// A Kafka operation on a topic of a cluster (Tableflow tables).
    Topic {
        /// cluster id
        cluster: String,
        /// topic name
        topic: String,
        /// operation
        op: Operation,
    },
    /// A Kafka operation on a cluster itself (Tableflow namespaces).
    Cluster(String, Operation),
    /// A Kafka operation on *some* topic of a cluster (seeing a Tableflow namespace).
    AnyTopic(String, Operation),
    /// Read a schema by id: allowed when the caller may read a subject that uses it
    /// (the gateway asks the registry which subjects do).
    SchemaId(String),
    /// A Flink object (job or jar) by id: `all` allows any, `own` only those the
    /// caller created through keygate.
    FlinkObject {
        /// job or jar id
        id: String,
        /// what the caller's own objects need
        own: ServiceOp,
        /// what anyone else's need
        all: ServiceOp,
    },
    /// Any of these.
    AnyOf(Vec<Check>),
}

/// A listing in the answer to trim to what the caller may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// A JSON array of subject names.
    Subjects,
    /// A JSON array of objects with a `subject` field.
    SchemaObjects,
    /// Flink `GET /jobs`: `{"jobs":[{"id":…}]}`.
    FlinkJobs,
    /// Flink `GET /jobs/overview`: `{"jobs":[{"jid":…}]}`.
    FlinkJobsOverview,
    /// Flink `GET /jars`: `{"files":[{"id":…}]}`.
    FlinkJars,
    /// Iceberg namespaces: `{"namespaces":[["lkc-…"]]}`.
    Namespaces,
    /// Iceberg tables of one namespace: `{"identifiers":[{"namespace":[…],"name":…}]}`.
    Tables,
}

/// An object the answer creates, to record as the caller's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// Flink `POST /jars/upload`: `{"filename":".../<id>"}`.
    FlinkJar,
    /// Flink `POST /jars/{id}/run` (`{"jobid":…}`) or `POST /jobs` (`{"jobUrl":…}`).
    FlinkJob,
}

/// Checks that need the request's JSON body (Tableflow creations and commits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyCheck {
    /// `POST …/namespaces`: `{"namespace":["lkc-…"]}` must be a cluster of the
    /// environment; CREATE on it.
    CreateNamespace,
    /// `POST …/namespaces/{ns}/tables`: `{"name":…}`; CREATE on that topic.
    CreateTable(String),
    /// `POST …/tables/rename`: DELETE the source, CREATE the destination.
    RenameTable,
    /// `POST …/transactions/commit`: WRITE on every table changed.
    CommitTransaction,
}

/// What a request needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Every check must pass.
    pub checks: Vec<Check>,
    /// Checks on the body (read first, within a small limit).
    pub body: Option<BodyCheck>,
    /// Trim the answer.
    pub filter: Option<Filter>,
    /// Record what the answer created.
    pub record: Option<Record>,
    /// The target named in summaries (`subject=…`, `job=…`, `` for the service).
    pub target: String,
}

impl Plan {
    /// A plan of one check.
    pub fn check(c: Check, target: impl Into<String>) -> Self {
        Plan {
            checks: vec![c],
            target: target.into(),
            ..Plan::default()
        }
    }

    /// With a filter.
    pub fn filtered(mut self, f: Filter) -> Self {
        self.filter = Some(f);
        self
    }
}

/// A request refused before any decision (unknown route, bad shape).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// HTTP status.
    pub status: u16,
    /// Why (shown to the client).
    pub message: String,
}

impl Reject {
    /// `404`.
    pub fn not_found(what: impl Into<String>) -> Self {
        Reject {
            status: 404,
            message: what.into(),
        }
    }
    /// `400`.
    pub fn bad(what: impl Into<String>) -> Self {
        Reject {
            status: 400,
            message: what.into(),
        }
    }
}
