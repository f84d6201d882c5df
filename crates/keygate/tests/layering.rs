//! The dependency rules ARCHITECTURE.md states, checked against `cargo metadata`, so
//! the layering cannot drift: a change that breaks one fails here, with the rule named.

use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;

/// Each workspace crate's normal (non-dev, non-build) dependencies.
fn dependencies() -> BTreeMap<String, Vec<String>> {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--manifest-path",
        ])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml"))
        .output()
        .expect("cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m: Value = serde_json::from_slice(&out.stdout).expect("metadata json");
    m["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .filter(|d| d["kind"].is_null())
                .map(|d| d["name"].as_str().expect("name").to_owned())
                .collect();
            (p["name"].as_str().expect("name").to_owned(), deps)
        })
        .collect()
}

/// Crates that do I/O (sockets, files through a runtime, databases, HTTP, Kafka).
const IO: [&str; 12] = [
    "tokio",
    "hyper",
    "hyper-util",
    "axum",
    "rustls",
    "tokio-rustls",
    "ureq",
    "rusqlite",
    "tokio-postgres",
    "deadpool-postgres",
    "rdkafka",
    "keygate-net",
];
const SQL: [&str; 3] = ["rusqlite", "tokio-postgres", "deadpool-postgres"];
const FRONT_DOORS: [&str; 4] = [
    "keygate-api",
    "keygate-console",
    "keygate-kafka",
    "keygate-http",
];

#[test]
fn the_layering_of_architecture_md_holds() {
    let deps = dependencies();
    let of = |c: &str| deps.get(c).unwrap_or_else(|| panic!("no crate {c}"));
    let mut broken = Vec::new();
    // core and authz are pure: no I/O, and only what is below them.
    for (c, allowed) in [
        ("keygate-core", &[][..]),
        ("keygate-authz", &["keygate-core"][..]),
    ] {
        for d in of(c) {
            if IO.contains(&d.as_str()) {
                broken.push(format!("{c} is pure but depends on {d}"));
            }
            if d.starts_with("keygate") && !allowed.contains(&d.as_str()) {
                broken.push(format!("{c} may not depend on {d}"));
            }
        }
    }
    for (c, ds) in &deps {
        // Only keygate-store speaks SQL.
        for d in ds.iter().filter(|d| SQL.contains(&d.as_str())) {
            if c != "keygate-store" && c != "keygate-testkit" {
                broken.push(format!("{c} depends on {d}: only keygate-store speaks SQL"));
            }
        }
        // keygate-iam is the one door to the store (the binary wires it up).
        if ds.iter().any(|d| d == "keygate-store") && c != "keygate-iam" && c != "keygate" {
            broken.push(format!(
                "{c} depends on keygate-store: only keygate-iam (and the binary) may"
            ));
        }
        // Front doors translate protocols; none builds on another.
        if FRONT_DOORS.contains(&c.as_str()) {
            for d in ds.iter().filter(|d| FRONT_DOORS.contains(&d.as_str())) {
                broken.push(format!("front door {c} depends on front door {d}"));
            }
        }
    }
    // Every front door goes through keygate-iam.
    for c in FRONT_DOORS {
        if !of(c).iter().any(|d| d == "keygate-iam") {
            broken.push(format!("front door {c} does not use keygate-iam"));
        }
    }
    assert!(broken.is_empty(), "layering broken:\n{}", broken.join("\n"));
}
