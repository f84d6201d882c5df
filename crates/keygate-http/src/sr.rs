//! Schema Registry: the operation table of Confluent Schema Registry's security model,
//! by subject (reference/roles.md; [`ServiceOp`] names the operations, and
//! [`keygate_core::Role::grants_service`] says which roles grant them).
//!
//! | request | needs |
//! |---|---|
//! | `GET /subjects` | nothing; the answer lists only readable subjects |
//! | `GET /subjects/{s}/versions[/{v}[/schema\|/referencedby]]` | subject read |
//! | `POST /subjects/{s}` (look up a schema) | subject read |
//! | `POST /subjects/{s}/versions` (register) | subject write |
//! | `DELETE /subjects/{s}[/versions/{v}]` | subject delete |
//! | `GET /schemas/ids/{id}[/schema\|/subjects\|/versions]` | read of a subject that uses the id; listings trimmed |
//! | `GET /schemas` | nothing; only schemas of readable subjects |
//! | `GET /associations/…` (a topic's subjects) | a readable subject in the registry; only readable subjects listed |
//! | `GET /schemas/types`, `GET /`, `GET /v1/metadata/*`, `GET /contexts` | nothing |
//! | `POST /compatibility/subjects/{s}/versions[/{v}]` | subject read |
//! | `GET /config/{s}`, `GET /mode/{s}` | subject compatibility read |
//! | `PUT\|DELETE /config/{s}`, `PUT\|DELETE /mode/{s}` | subject compatibility write |
//! | `GET /config`, `GET /mode` | global compatibility read (or a subject readable) |
//! | `PUT\|DELETE /config`, `PUT\|DELETE /mode` | global compatibility write |
//! | anything else (exporters, keks, …) | global compatibility write |

use crate::plan::{Check, Filter, Plan, Reject};
use axum::http::Method;
use keygate_core::crn::CrnPattern;
use keygate_core::ServiceOp as Op;

/// The plan of a request to the registry `registry` (its CRN).
pub fn plan(registry: &CrnPattern, method: &Method, seg: &[String]) -> Result<Plan, Reject> {
    let s: Vec<&str> = seg.iter().map(String::as_str).collect();
    let subject = |name: &str, op: Op| {
        Plan::check(
            Check::Service(registry.child("subject", name), op),
            format!("subject={name}"),
        )
    };
    let open = || Plan::default();
    let global = |op: Op| Plan::check(Check::Service(registry.clone(), op), "");
    let m = method.as_str();
    Ok(match (m, s.as_slice()) {
        ("GET", []) | ("GET", ["schemas", "types"]) | ("GET", ["v1", "metadata", ..]) => open(),
        ("GET", ["contexts"]) => open(),
        ("GET", ["subjects"]) => open().filtered(Filter::Subjects),
        ("GET", ["schemas"]) => open().filtered(Filter::SchemaObjects),
        ("GET", ["associations", ..]) => Plan::check(
            Check::Within(registry.clone(), Op::SubjectRead),
            "associations",
        )
        .filtered(Filter::SchemaObjects),
        ("GET", ["subjects", name, "versions", ..]) => subject(name, Op::SubjectRead),
        ("POST", ["subjects", name]) => subject(name, Op::SubjectRead),
        ("POST", ["subjects", name, "versions"]) => subject(name, Op::SubjectWrite),
        ("DELETE", ["subjects", name]) | ("DELETE", ["subjects", name, "versions", _]) => {
            subject(name, Op::SubjectDelete)
        }
        ("GET", ["schemas", "ids", id]) | ("GET", ["schemas", "ids", id, "schema"]) => {
            Plan::check(Check::SchemaId((*id).to_owned()), format!("schema={id}"))
        }
        ("GET", ["schemas", "ids", id, "subjects"]) => {
            Plan::check(Check::SchemaId((*id).to_owned()), format!("schema={id}"))
                .filtered(Filter::Subjects)
        }
        ("GET", ["schemas", "ids", id, "versions"]) => {
            Plan::check(Check::SchemaId((*id).to_owned()), format!("schema={id}"))
                .filtered(Filter::SchemaObjects)
        }
        ("POST", ["compatibility", "subjects", name, "versions", ..]) => {
            subject(name, Op::SubjectRead)
        }
        ("GET", ["config" | "mode", name]) => subject(name, Op::SubjectCompatibilityRead),
        ("PUT" | "DELETE", ["config" | "mode", name]) => {
            subject(name, Op::SubjectCompatibilityWrite)
        }
        ("GET", ["config" | "mode"]) => Plan::check(
            Check::AnyOf(vec![
                Check::Service(registry.clone(), Op::RegistryConfigRead),
                Check::Within(registry.clone(), Op::SubjectRead),
            ]),
            "",
        ),
        ("PUT" | "DELETE", ["config" | "mode"]) => global(Op::RegistryConfigWrite),
        ("GET" | "POST" | "PUT" | "DELETE" | "PATCH", _) => global(Op::RegistryConfigWrite),
        _ => {
            return Err(Reject {
                status: 405,
                message: format!("method {m} is not part of the Schema Registry API"),
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg() -> CrnPattern {
        CrnPattern::parse("crn://k/organization=o/environment=env-1/schema-registry=lsrc-1")
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn plan_of(m: &str, path: &str) -> Plan {
        let seg = crate::path::segments(path).unwrap_or_else(|e| panic!("{e}"));
        plan(
            &reg(),
            &Method::from_bytes(m.as_bytes()).expect("method"),
            &seg,
        )
        .unwrap_or_else(|e| panic!("{m} {path}: {e:?}"))
    }

    fn subject(name: &str, op: Op) -> Vec<Check> {
        vec![Check::Service(reg().child("subject", name), op)]
    }

    /// One row per line of the table in the module docs.
    #[test]
    fn every_row_of_the_table() {
        let rows: Vec<(&str, &str, Vec<Check>, Option<Filter>)> = vec![
            ("GET", "/subjects", vec![], Some(Filter::Subjects)),
            (
                "GET",
                "/subjects/a-value/versions",
                subject("a-value", Op::SubjectRead),
                None,
            ),
            (
                "GET",
                "/subjects/a-value/versions/3",
                subject("a-value", Op::SubjectRead),
                None,
            ),
            (
                "GET",
                "/subjects/a-value/versions/latest/schema",
                subject("a-value", Op::SubjectRead),
                None,
            ),
            (
                "GET",
                "/subjects/a-value/versions/1/referencedby",
                subject("a-value", Op::SubjectRead),
                None,
            ),
            (
                "POST",
                "/subjects/a-value",
                subject("a-value", Op::SubjectRead),
                None,
            ),
            (
                "POST",
                "/subjects/a-value/versions",
                subject("a-value", Op::SubjectWrite),
                None,
            ),
            (
                "DELETE",
                "/subjects/a-value",
                subject("a-value", Op::SubjectDelete),
                None,
            ),
            (
                "DELETE",
                "/subjects/a-value/versions/2",
                subject("a-value", Op::SubjectDelete),
                None,
            ),
            (
                "GET",
                "/schemas/ids/7",
                vec![Check::SchemaId("7".into())],
                None,
            ),
            (
                "GET",
                "/schemas/ids/7/schema",
                vec![Check::SchemaId("7".into())],
                None,
            ),
            (
                "GET",
                "/schemas/ids/7/subjects",
                vec![Check::SchemaId("7".into())],
                Some(Filter::Subjects),
            ),
            (
                "GET",
                "/schemas/ids/7/versions",
                vec![Check::SchemaId("7".into())],
                Some(Filter::SchemaObjects),
            ),
            ("GET", "/schemas", vec![], Some(Filter::SchemaObjects)),
            (
                "GET",
                "/associations/resources/-/orders",
                vec![Check::Within(reg(), Op::SubjectRead)],
                Some(Filter::SchemaObjects),
            ),
            ("GET", "/schemas/types", vec![], None),
            ("GET", "/", vec![], None),
            ("GET", "/v1/metadata/id", vec![], None),
            ("GET", "/contexts", vec![], None),
            (
                "POST",
                "/compatibility/subjects/a-value/versions/latest",
                subject("a-value", Op::SubjectRead),
                None,
            ),
            (
                "POST",
                "/compatibility/subjects/a-value/versions",
                subject("a-value", Op::SubjectRead),
                None,
            ),
            (
                "GET",
                "/config/a-value",
                subject("a-value", Op::SubjectCompatibilityRead),
                None,
            ),
            (
                "GET",
                "/mode/a-value",
                subject("a-value", Op::SubjectCompatibilityRead),
                None,
            ),
            (
                "PUT",
                "/config/a-value",
                subject("a-value", Op::SubjectCompatibilityWrite),
                None,
            ),
            (
                "DELETE",
                "/config/a-value",
                subject("a-value", Op::SubjectCompatibilityWrite),
                None,
            ),
            (
                "PUT",
                "/mode/a-value",
                subject("a-value", Op::SubjectCompatibilityWrite),
                None,
            ),
            (
                "GET",
                "/config",
                vec![Check::AnyOf(vec![
                    Check::Service(reg(), Op::RegistryConfigRead),
                    Check::Within(reg(), Op::SubjectRead),
                ])],
                None,
            ),
            (
                "PUT",
                "/config",
                vec![Check::Service(reg(), Op::RegistryConfigWrite)],
                None,
            ),
            (
                "DELETE",
                "/mode",
                vec![Check::Service(reg(), Op::RegistryConfigWrite)],
                None,
            ),
            (
                "GET",
                "/exporters",
                vec![Check::Service(reg(), Op::RegistryConfigWrite)],
                None,
            ),
            (
                "POST",
                "/dek-registry/v1/keks",
                vec![Check::Service(reg(), Op::RegistryConfigWrite)],
                None,
            ),
        ];
        for (m, path, checks, filter) in rows {
            let p = plan_of(m, path);
            assert_eq!(p.checks, checks, "{m} {path}");
            assert_eq!(p.filter, filter, "{m} {path}");
        }
    }

    #[test]
    fn percent_encoded_subjects_are_the_decoded_name() {
        let p = plan_of("GET", "/subjects/orders%2Dvalue/versions");
        assert_eq!(p.checks, subject("orders-value", Op::SubjectRead));
        assert_eq!(p.target, "subject=orders-value");
    }

    #[test]
    fn unknown_methods_are_refused() {
        let seg = vec!["subjects".to_owned()];
        let r = plan(&reg(), &Method::from_bytes(b"TRACE").expect("method"), &seg);
        assert_eq!(r.map_err(|e| e.status), Err(405));
    }
}
