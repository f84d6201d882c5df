//! Identity-pool filters at authentication time: claims from a token (or a client
//! certificate's fields) evaluated by filters an administrator saved — never a panic,
//! never an endless evaluation, the same answer every time. The filters are compiled
//! once (the `cel_filter` target fuzzes compiling; here every execution is an
//! evaluation). The input is one byte choosing a filter, then the claims as JSON.
#![no_main]

use keygate_oauth::Filter;
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

/// Filters of the shapes pools use: equality, membership, string functions, size,
/// has(), regex, arithmetic over numeric claims, nested maps, certificate fields.
const SOURCES: &[&str] = &[
    "true",
    r#"claims.aud == "kafka" && "payments" in claims.groups"#,
    r#"claims.sub.startsWith("svc-") || claims.sub.endsWith("@example.com")"#,
    r#"has(claims.tenant) && claims.tenant.region in ["eu", "us"]"#,
    r#"size(claims.groups) > 0 && claims.groups.exists(g, g.matches("^team-[a-z]+$"))"#,
    r#"claims.exp - claims.iat <= 3600 && claims.iat > 0"#,
    r#"claims.groups.all(g, size(g) < 64) && !("banned" in claims.groups)"#,
    r#"claims["scope"].split(" ").exists(s, s == "kafka:write")"#,
    r#"claims.azp == claims.aud || (claims.aud == "kafka" && claims.email_verified == true)"#,
    r#"int(claims.level) >= 3 && double(claims.score) < 0.5"#,
    r#"claims.roles.map(r, r + "-x").filter(r, r.contains("admin-")).size() == 0"#,
    "CN == 'orders-app' && O == 'Acme' && 'orders.internal' in SAN",
];

static FILTERS: LazyLock<Vec<Filter>> = LazyLock::new(|| {
    SOURCES
        .iter()
        .map(|s| Filter::compile(s).unwrap_or_else(|e| panic!("{s}: {e}")))
        .collect()
});

fuzz_target!(|data: &[u8]| {
    let Some((choice, claims)) = data.split_first() else {
        return;
    };
    let filter = &FILTERS[*choice as usize % FILTERS.len()];
    let Ok(claims) = serde_json::from_slice::<serde_json::Value>(claims) else {
        return;
    };
    let first = filter.matches(&claims);
    assert_eq!(
        first,
        filter.matches(&claims),
        "the same claims, another answer"
    );
    if *choice as usize % FILTERS.len() == 0 {
        assert!(first, "`true` matches any claims");
    }
    if let serde_json::Value::Object(fields) = &claims {
        let first = filter.matches_fields(fields);
        assert_eq!(
            first,
            filter.matches_fields(fields),
            "the same fields, another answer"
        );
    }
});
