//! Trimming listings to what the caller may see. Pure: the caller supplies the
//! decision for each item; an answer that does not have the expected shape is
//! refused rather than passed on (it might list what must not be seen).

use crate::plan::Filter;
use serde_json::Value;

/// One listed item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item<'a> {
    /// A Schema Registry subject.
    Subject(&'a str),
    /// A Flink job id.
    Job(&'a str),
    /// A Flink jar id.
    Jar(&'a str),
    /// An Iceberg namespace (one level).
    Namespace(&'a str),
    /// An Iceberg table in a namespace.
    Table(&'a str, &'a str),
}

/// The listing did not have the shape the filter expects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the upstream's answer does not have the expected shape")]
pub struct Shape;

/// The ids a listing holds (Flink: to look up their owners before deciding).
pub fn ids(f: Filter, v: &Value) -> Vec<String> {
    let (list, field) = match f {
        Filter::FlinkJobs => ("jobs", "id"),
        Filter::FlinkJobsOverview => ("jobs", "jid"),
        Filter::FlinkJars => ("files", "id"),
        _ => return Vec::new(),
    };
    v.get(list)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|e| e.get(field).and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Keep only the items `keep` allows.
pub fn apply(f: Filter, v: &mut Value, keep: &dyn Fn(Item<'_>) -> bool) -> Result<(), Shape> {
    match f {
        Filter::Subjects => retain(v.as_array_mut(), |e| {
            e.as_str().is_some_and(|s| keep(Item::Subject(s)))
        }),
        Filter::SchemaObjects => retain(v.as_array_mut(), |e| {
            e.get("subject")
                .and_then(Value::as_str)
                .is_some_and(|s| keep(Item::Subject(s)))
        }),
        Filter::FlinkJobs => retain(field(v, "jobs"), |e| {
            e.get("id")
                .and_then(Value::as_str)
                .is_some_and(|s| keep(Item::Job(s)))
        }),
        Filter::FlinkJobsOverview => retain(field(v, "jobs"), |e| {
            e.get("jid")
                .and_then(Value::as_str)
                .is_some_and(|s| keep(Item::Job(s)))
        }),
        Filter::FlinkJars => retain(field(v, "files"), |e| {
            e.get("id")
                .and_then(Value::as_str)
                .is_some_and(|s| keep(Item::Jar(s)))
        }),
        Filter::Namespaces => retain(field(v, "namespaces"), |e| match e.as_array() {
            Some(parts) if parts.len() == 1 => {
                parts[0].as_str().is_some_and(|s| keep(Item::Namespace(s)))
            }
            _ => false,
        }),
        Filter::Tables => retain(field(v, "identifiers"), |e| {
            let ns = e
                .get("namespace")
                .and_then(Value::as_array)
                .filter(|p| p.len() == 1)
                .and_then(|p| p[0].as_str());
            let name = e.get("name").and_then(Value::as_str);
            matches!((ns, name), (Some(ns), Some(n)) if keep(Item::Table(ns, n)))
        }),
    }
}

fn field<'a>(v: &'a mut Value, name: &str) -> Option<&'a mut Vec<Value>> {
    v.get_mut(name).and_then(Value::as_array_mut)
}

fn retain(list: Option<&mut Vec<Value>>, keep: impl Fn(&Value) -> bool) -> Result<(), Shape> {
    let list = list.ok_or(Shape)?;
    list.retain(|e| keep(e));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn listings_keep_only_what_is_allowed() {
        let mut v = json!(["orders-value", "payments-value", 7]);
        apply(Filter::Subjects, &mut v, &|i| {
            i == Item::Subject("orders-value")
        })
        .expect("shape");
        assert_eq!(v, json!(["orders-value"]));

        let mut v = json!({"jobs": [{"id": "a", "status": "RUNNING"}, {"id": "b"}]});
        assert_eq!(ids(Filter::FlinkJobs, &v), ["a", "b"]);
        apply(Filter::FlinkJobs, &mut v, &|i| i == Item::Job("b")).expect("shape");
        assert_eq!(v, json!({"jobs": [{"id": "b"}]}));

        let mut v =
            json!({"namespaces": [["lkc-1"], ["lkc-2"], ["a", "b"]], "next-page-token": null});
        apply(Filter::Namespaces, &mut v, &|_| true).expect("shape");
        assert_eq!(v["namespaces"], json!([["lkc-1"], ["lkc-2"]]));

        let mut v = json!({"identifiers": [{"namespace": ["lkc-1"], "name": "t1"}, {"namespace": ["lkc-1"], "name": "t2"}]});
        apply(Filter::Tables, &mut v, &|i| i == Item::Table("lkc-1", "t2")).expect("shape");
        assert_eq!(
            v["identifiers"],
            json!([{"namespace": ["lkc-1"], "name": "t2"}])
        );
    }

    #[test]
    fn an_unexpected_shape_is_refused() {
        let mut v = json!({"subjects": ["a"]});
        assert_eq!(apply(Filter::Subjects, &mut v, &|_| true), Err(Shape));
        let mut v = json!(["a"]);
        assert_eq!(apply(Filter::FlinkJobs, &mut v, &|_| true), Err(Shape));
    }
}
