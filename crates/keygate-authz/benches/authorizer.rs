//! The authorizer at the shape of Apache Kafka's AuthorizerBenchmark
//! (reference/anchors.md): 200,000 resources × 10 ACLs, every 5th resource PREFIXED,
//! 1,000 ACLs on one shared prefix, 20,000 wildcard ACLs; requests WRITE (denied) and
//! READ (allowed) on names under the shared prefix, so every prefix matches.
//!
//! keygate has no per-host ACLs, so where Kafka's benchmark varies the host of its
//! "host-specific" and wildcard ACLs, this one varies the principal: the same count of
//! distinct ACLs the authorizer must index.
//!
//! Reports p50/p99 per decision, memory per ACL and snapshot compile time, with a
//! baseline from the same run: one hash-map lookup of the resource name.
//! Run: `cargo bench -p keygate-authz --bench authorizer`.

use keygate_authz::{Authorizer, ClusterIndex};
use keygate_core::crn::CrnPattern;
use keygate_core::{AclBinding, Operation, PatternType, Permission, Principal, ResourceType};
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

const PREFIX: &str = "foo-bar35_resource-";

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn pct(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() as f64 - 1.0) * p) as usize]
}

fn main() {
    let resources: usize = std::env::var("RESOURCES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let acls_per_resource = 10;
    let mut acls = Vec::with_capacity(resources * acls_per_resource + 21_000);
    for r in 0..resources {
        let pattern_type = if r % 5 == 0 {
            PatternType::Prefixed
        } else {
            PatternType::Literal
        };
        for a in 0..acls_per_resource {
            acls.push(AclBinding {
                principal: Principal::user(format!("test-user-{a}")),
                resource_type: ResourceType::Topic,
                resource_name: format!("{PREFIX}{r}"),
                pattern_type,
                operation: Operation::Read,
                permission: Permission::Allow,
            });
        }
    }
    for h in 0..1_000 {
        acls.push(AclBinding {
            principal: Principal::user(format!("host-user-{h}")),
            resource_type: ResourceType::Topic,
            resource_name: PREFIX.to_owned(),
            pattern_type: PatternType::Prefixed,
            operation: Operation::Read,
            permission: Permission::Allow,
        });
    }
    for w in 0..resources / 10 {
        acls.push(AclBinding {
            principal: Principal::user(format!("wild-user-{w}")),
            resource_type: ResourceType::Topic,
            resource_name: "*".to_owned(),
            pattern_type: PatternType::Literal,
            operation: Operation::Read,
            permission: Permission::Allow,
        });
    }
    // One ACL that makes test-user-0's READ on the shared prefix count too.
    acls.push(AclBinding {
        principal: Principal::user("test-user-0"),
        resource_type: ResourceType::Topic,
        resource_name: PREFIX.to_owned(),
        pattern_type: PatternType::Prefixed,
        operation: Operation::Describe,
        permission: Permission::Allow,
    });
    let total = acls.len();

    let rss0 = rss_bytes();
    let t = Instant::now();
    let index = ClusterIndex::compile("lkc-bench", "env-bench", &acls, []);
    let compile = t.elapsed();
    let rss1 = rss_bytes();
    let authz =
        Authorizer::empty(CrnPattern::organization("keygate", "org-bench")).with_cluster(index);
    let t = Instant::now();
    let again = authz.with_cluster(ClusterIndex::compile(
        "lkc-other",
        "env-bench",
        &acls[..1000],
        [],
    ));
    let small_swap = t.elapsed();
    drop(again);

    let principal = Principal::user("test-user-0");
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let samples = 1_000_000;
    let names: Vec<String> = (0..samples)
        .map(|_| format!("{PREFIX}{}", rng.gen_range(0..resources)))
        .collect();

    let run = |op: Operation| -> (Vec<u64>, f64, usize) {
        let mut lat = Vec::with_capacity(samples);
        let mut allowed = 0;
        for n in &names {
            let t = Instant::now();
            let d = authz.authorize("lkc-bench", &principal, ResourceType::Topic, n, op);
            lat.push(t.elapsed().as_nanos() as u64);
            allowed += usize::from(black_box(d).allowed);
        }
        let t = Instant::now();
        for n in &names {
            black_box(authz.authorize("lkc-bench", &principal, ResourceType::Topic, n, op));
        }
        let mean = t.elapsed().as_nanos() as f64 / samples as f64;
        lat.sort_unstable();
        (lat, mean, allowed)
    };
    let (write, write_mean, write_allowed) = run(Operation::Write);
    let (read, read_mean, read_allowed) = run(Operation::Read);

    // Baseline, same run: one lookup of the name in a hash map of 200,000 names.
    let map: HashMap<String, u16, foldhash::fast::RandomState> = (0..resources)
        .map(|r| (format!("{PREFIX}{r}"), 1u16))
        .collect();
    let mut base = Vec::with_capacity(samples);
    for n in &names {
        let t = Instant::now();
        black_box(map.get(n.as_str()));
        base.push(t.elapsed().as_nanos() as u64);
    }
    base.sort_unstable();
    let t = Instant::now();
    for n in &names {
        black_box(map.get(n.as_str()));
    }
    let base_mean = t.elapsed().as_nanos() as f64 / samples as f64;

    println!("authorizer, AuthorizerBenchmark shape: {resources} resources x {acls_per_resource} ACLs + 1,000 shared-prefix + {} wildcard = {total} ACLs", resources / 10);
    println!("  compile (snapshot)      {:>8.0} ms; replacing one small cluster in the snapshot {:.1} µs", compile.as_secs_f64() * 1e3, small_swap.as_secs_f64() * 1e6);
    println!(
        "  memory                  {:>8.1} bytes per ACL (RSS growth {:.1} MiB)",
        (rss1.saturating_sub(rss0)) as f64 / total as f64,
        (rss1.saturating_sub(rss0)) as f64 / 1048576.0
    );
    println!(
        "  WRITE (denied {:>5.1} %)  p50 {} ns  p99 {} ns  mean {:.0} ns",
        100.0 * (samples - write_allowed) as f64 / samples as f64,
        pct(&write, 0.5),
        pct(&write, 0.99),
        write_mean
    );
    println!(
        "  READ  (allowed {:>5.1} %) p50 {} ns  p99 {} ns  mean {:.0} ns",
        100.0 * read_allowed as f64 / samples as f64,
        pct(&read, 0.5),
        pct(&read, 0.99),
        read_mean
    );
    println!("  baseline: one map lookup p50 {} ns  p99 {} ns  mean {:.0} ns; decision/lookup ratio (mean) {:.1} (WRITE) {:.1} (READ)", pct(&base, 0.5), pct(&base, 0.99), base_mean, write_mean / base_mean, read_mean / base_mean);
    println!(
        "  goal p99 <= 1 µs; Kafka StandardAuthorizer publishes 9.3-17 ms/op at 200k resources"
    );
}
