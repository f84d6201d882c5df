//! Flink (the open-source REST API of a session cluster), per region of an
//! environment. FlinkAdmin may do everything; FlinkDeveloper may submit jobs and see
//! and manage the jobs (and jars) it submitted — keygate records who created what when
//! the upstream confirms it; Operator may read everything. A `/v1` prefix is accepted
//! and kept.
//!
//! | request | needs |
//! |---|---|
//! | `GET /overview`, `/config`, `/taskmanagers…`, `/jobmanager…` | read all, or own jobs |
//! | `GET /jobs`, `GET /jobs/overview`, `GET /jars` | read all, or own jobs; listings trimmed to own |
//! | `POST /jars/upload` | submit (the jar is recorded as the caller's) |
//! | `POST /jars/{jar}/run`, `/plan` | submit, and the jar is the caller's (or manage all) |
//! | `DELETE /jars/{jar}` | the caller's jar, or manage all |
//! | `POST /jobs` (job graph) | submit (the job is recorded as the caller's) |
//! | `GET /jobs/{job}…` | the caller's job, or read all |
//! | `PATCH /jobs/{job}`, `POST /jobs/{job}/stop\|savepoints\|rescaling`, `PUT …/resource-requirements` | the caller's job, or manage all |
//! | anything else (`DELETE /cluster`, …) | manage all |

use crate::plan::{Check, Filter, Plan, Record, Reject};
use axum::http::Method;
use keygate_core::crn::CrnPattern;
use keygate_core::ServiceOp as Op;

/// The plan of a request to the Flink region `region` (its CRN).
pub fn plan(region: &CrnPattern, method: &Method, seg: &[String]) -> Result<Plan, Reject> {
    let s: Vec<&str> = seg.iter().map(String::as_str).collect();
    let s = match s.as_slice() {
        ["v1", rest @ ..] => rest,
        all => all,
    };
    let svc = |op: Op| Check::Service(region.clone(), op);
    let see = || {
        Plan::check(
            Check::AnyOf(vec![svc(Op::FlinkReadAll), svc(Op::FlinkOwnJobs)]),
            "",
        )
    };
    let object = |id: &str, own: Op, all: Op, what: &str| {
        Plan::check(
            Check::FlinkObject {
                id: id.to_owned(),
                own,
                all,
            },
            format!("{what}={id}"),
        )
    };
    let submit = |record: Record| Plan {
        record: Some(record),
        ..Plan::check(svc(Op::FlinkSubmit), "")
    };
    let m = method.as_str();
    Ok(match (m, s) {
        ("GET", ["overview" | "config"])
        | ("GET", ["taskmanagers", ..])
        | ("GET", ["jobmanager", ..]) => see(),
        ("GET", ["jobs"]) => see().filtered(Filter::FlinkJobs),
        ("GET", ["jobs", "overview"]) => see().filtered(Filter::FlinkJobsOverview),
        ("GET", ["jars"]) => see().filtered(Filter::FlinkJars),
        ("POST", ["jars", "upload"]) => submit(Record::FlinkJar),
        ("POST", ["jobs"]) => submit(Record::FlinkJob),
        ("POST", ["jars", jar, "run"]) => Plan {
            checks: vec![
                svc(Op::FlinkSubmit),
                Check::FlinkObject {
                    id: (*jar).to_owned(),
                    own: Op::FlinkSubmit,
                    all: Op::FlinkManageAll,
                },
            ],
            record: Some(Record::FlinkJob),
            target: format!("jar={jar}"),
            ..Plan::default()
        },
        ("POST", ["jars", jar, "plan"]) | ("GET", ["jars", jar, "plan"]) => {
            object(jar, Op::FlinkSubmit, Op::FlinkManageAll, "jar")
        }
        ("DELETE", ["jars", jar]) => object(jar, Op::FlinkOwnJobs, Op::FlinkManageAll, "jar"),
        ("GET", ["jobs", job, ..]) => object(job, Op::FlinkOwnJobs, Op::FlinkReadAll, "job"),
        ("PATCH", ["jobs", job])
        | ("POST", ["jobs", job, "stop" | "savepoints" | "rescaling" | "checkpoints"])
        | ("PUT", ["jobs", job, "resource-requirements"]) => {
            object(job, Op::FlinkOwnJobs, Op::FlinkManageAll, "job")
        }
        ("GET" | "POST" | "PUT" | "PATCH" | "DELETE", _) => {
            Plan::check(svc(Op::FlinkManageAll), "")
        }
        _ => {
            return Err(Reject {
                status: 405,
                message: format!("method {m} is not part of the Flink REST API"),
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region() -> CrnPattern {
        CrnPattern::parse("crn://k/organization=o/environment=env-1/flink-region=aws.us-east-1")
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn plan_of(m: &str, path: &str) -> Plan {
        let seg = crate::path::segments(path).unwrap_or_else(|e| panic!("{e}"));
        plan(
            &region(),
            &Method::from_bytes(m.as_bytes()).expect("method"),
            &seg,
        )
        .unwrap_or_else(|e| panic!("{m} {path}: {e:?}"))
    }

    fn svc(op: Op) -> Check {
        Check::Service(region(), op)
    }

    fn obj(id: &str, own: Op, all: Op) -> Check {
        Check::FlinkObject {
            id: id.into(),
            own,
            all,
        }
    }

    /// (method, path, checks, filter, record)
    type Row = (
        &'static str,
        &'static str,
        Vec<Check>,
        Option<Filter>,
        Option<Record>,
    );

    /// One row per line of the table in the module docs.
    #[test]
    fn every_row_of_the_table() {
        let see = || {
            vec![Check::AnyOf(vec![
                svc(Op::FlinkReadAll),
                svc(Op::FlinkOwnJobs),
            ])]
        };
        let rows: Vec<Row> = vec![
            ("GET", "/overview", see(), None, None),
            ("GET", "/v1/overview", see(), None, None),
            ("GET", "/config", see(), None, None),
            ("GET", "/taskmanagers", see(), None, None),
            ("GET", "/jobmanager/config", see(), None, None),
            ("GET", "/jobs", see(), Some(Filter::FlinkJobs), None),
            (
                "GET",
                "/jobs/overview",
                see(),
                Some(Filter::FlinkJobsOverview),
                None,
            ),
            ("GET", "/jars", see(), Some(Filter::FlinkJars), None),
            (
                "POST",
                "/jars/upload",
                vec![svc(Op::FlinkSubmit)],
                None,
                Some(Record::FlinkJar),
            ),
            (
                "POST",
                "/jars/abc_job.jar/run",
                vec![
                    svc(Op::FlinkSubmit),
                    obj("abc_job.jar", Op::FlinkSubmit, Op::FlinkManageAll),
                ],
                None,
                Some(Record::FlinkJob),
            ),
            (
                "POST",
                "/jars/abc_job.jar/plan",
                vec![obj("abc_job.jar", Op::FlinkSubmit, Op::FlinkManageAll)],
                None,
                None,
            ),
            (
                "DELETE",
                "/jars/abc_job.jar",
                vec![obj("abc_job.jar", Op::FlinkOwnJobs, Op::FlinkManageAll)],
                None,
                None,
            ),
            (
                "POST",
                "/jobs",
                vec![svc(Op::FlinkSubmit)],
                None,
                Some(Record::FlinkJob),
            ),
            (
                "GET",
                "/jobs/j1",
                vec![obj("j1", Op::FlinkOwnJobs, Op::FlinkReadAll)],
                None,
                None,
            ),
            (
                "GET",
                "/jobs/j1/exceptions",
                vec![obj("j1", Op::FlinkOwnJobs, Op::FlinkReadAll)],
                None,
                None,
            ),
            (
                "PATCH",
                "/jobs/j1",
                vec![obj("j1", Op::FlinkOwnJobs, Op::FlinkManageAll)],
                None,
                None,
            ),
            (
                "POST",
                "/jobs/j1/stop",
                vec![obj("j1", Op::FlinkOwnJobs, Op::FlinkManageAll)],
                None,
                None,
            ),
            (
                "POST",
                "/jobs/j1/savepoints",
                vec![obj("j1", Op::FlinkOwnJobs, Op::FlinkManageAll)],
                None,
                None,
            ),
            (
                "POST",
                "/jobs/j1/rescaling",
                vec![obj("j1", Op::FlinkOwnJobs, Op::FlinkManageAll)],
                None,
                None,
            ),
            (
                "PUT",
                "/jobs/j1/resource-requirements",
                vec![obj("j1", Op::FlinkOwnJobs, Op::FlinkManageAll)],
                None,
                None,
            ),
            (
                "DELETE",
                "/cluster",
                vec![svc(Op::FlinkManageAll)],
                None,
                None,
            ),
        ];
        for (m, path, checks, filter, record) in rows {
            let p = plan_of(m, path);
            assert_eq!(p.checks, checks, "{m} {path}");
            assert_eq!(p.filter, filter, "{m} {path}");
            assert_eq!(p.record, record, "{m} {path}");
        }
    }
}
