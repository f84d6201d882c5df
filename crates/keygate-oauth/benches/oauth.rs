//! OAUTHBEARER authentication cost with a warm key cache, per signature algorithm,
//! the CEL filter's cost per token, and its compile cost.
//!
//! For each algorithm: `Directory::authenticate` (what the gateway does per SASL
//! authentication: shape checks, key lookup, signature, claims, pool filter) next to
//! the baseline measured in the same run — jsonwebtoken's bare `decode` with the same
//! key (the signature verification alone). Run:
//! `cargo bench -p keygate-oauth --bench oauth`.

#[path = "../tests/support/mod.rs"]
mod support;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use keygate_oauth::{Directory, Filter, Jwks, PoolEntry, ProviderEntry};
use serde_json::json;
use std::hint::black_box;
use std::time::Instant;
use support::*;

const ISS: &str = "http://idp.bench";

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() as f64 - 1.0) * p) as usize]
}

fn time(n: usize, mut f: impl FnMut()) -> (f64, u64, u64) {
    for _ in 0..n / 10 {
        f();
    }
    let mut samples = Vec::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        f();
        samples.push(t.elapsed().as_nanos() as u64);
    }
    let total = start.elapsed().as_secs_f64();
    samples.sort_unstable();
    (
        n as f64 / total,
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
    )
}

fn main() {
    let now = 1_800_000_000;
    let claims = json!({"iss": ISS, "sub": "client-7", "aud": "kafka",
        "groups": ["payments", "ops"], "iat": now - 10, "exp": now + 300});
    let keys = [
        rsa("rs", Algorithm::RS256, 1),
        es256("es256", 2),
        es384("es384", 3),
        ed25519("ed", 4),
    ];
    let set = Jwks::parse(&jwks(&keys.iter().collect::<Vec<_>>())).expect("jwks");
    let filter =
        Filter::compile(r#"claims.aud == "kafka" && "payments" in claims.groups"#).expect("filter");
    let dir = Directory::new(
        [ProviderEntry {
            id: "op-bench".into(),
            issuer: ISS.into(),
            jwks: set,
            enabled: true,
        }],
        [PoolEntry {
            id: "pool-bench".into(),
            provider_id: "op-bench".into(),
            identity_claim: "claims.sub".into(),
            filter: filter.clone(),
            enabled: true,
        }],
        "http://keygate.bench".into(),
        Jwks::default(),
        30,
    );
    println!("OAUTHBEARER authentication, warm JWKS, one core (n per row varies with cost)");
    println!(
        "{:<7} {:>12} {:>10} {:>10} | {:>14} {:>10} | {:>7}",
        "alg", "auth/s", "p50 µs", "p99 µs", "baseline /s", "p50 µs", "ratio"
    );
    let cases: [(&TestKey, Algorithm); 5] = [
        (&keys[0], Algorithm::RS256),
        (&keys[0], Algorithm::PS256),
        (&keys[1], Algorithm::ES256),
        (&keys[2], Algorithm::ES384),
        (&keys[3], Algorithm::EdDSA),
    ];
    for (key, alg) in cases {
        let token = sign_as(key, alg, &claims);
        let n = match alg {
            Algorithm::ES384 => 1_000,
            Algorithm::ES256 => 3_000,
            _ => 5_000,
        };
        let (rate, p50, p99) = time(n, || {
            black_box(
                dir.authenticate(black_box(&token), Some("pool-bench"), now, false)
                    .expect("valid"),
            );
        });
        let dk = DecodingKey::from_jwk(&serde_json::from_value(key.jwk.clone()).expect("jwk"))
            .expect("key");
        let mut v = Validation::new(alg);
        v.validate_exp = false;
        v.validate_aud = false;
        v.required_spec_claims.clear();
        let (brate, bp50, _) = time(n, || {
            black_box(
                jsonwebtoken::decode::<serde_json::Value>(black_box(&token), &dk, &v)
                    .expect("valid"),
            );
        });
        println!(
            "{:<7} {:>12.0} {:>10.1} {:>10.1} | {:>14.0} {:>10.1} | {:>7.3}",
            format!("{alg:?}"),
            rate,
            p50 as f64 / 1000.0,
            p99 as f64 / 1000.0,
            brate,
            bp50 as f64 / 1000.0,
            rate / brate
        );
    }
    let (rate, p50, p99) = time(200_000, || {
        black_box(filter.matches(black_box(&claims)));
    });
    println!(
        "CEL filter `claims.aud == \"kafka\" && \"payments\" in claims.groups`: {rate:.0}/s, p50 {:.2} µs, p99 {:.2} µs per token",
        p50 as f64 / 1000.0,
        p99 as f64 / 1000.0
    );
    // What a pool create or update pays (and the `cel_filter` fuzz target per input).
    let (rate, p50, p99) = time(2_000, || {
        black_box(
            Filter::compile(black_box(
                r#"claims.aud == "kafka" && "payments" in claims.groups"#,
            ))
            .expect("filter"),
        );
    });
    println!(
        "CEL filter compile (same source): {rate:.0}/s, p50 {:.1} µs, p99 {:.1} µs",
        p50 as f64 / 1000.0,
        p99 as f64 / 1000.0
    );
}
