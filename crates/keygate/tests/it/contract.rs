//! The hosted API's published OpenAPI document (PyPI's cc-clients-python-lib) as the
//! contract of every path keygate serves under the same name: requests shaped as the
//! hosted side's own clients send them, every response validated against the document
//! (tests/python/contract.py, with openapi-core), and the package's own IamClient.

use crate::harness::Server;
use std::process::Command;

fn root() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../..").to_owned()
}

/// The unpacked cc-clients-python-lib (scripts/test fetches it).
fn cc_lib() -> String {
    let dir = format!("{}/.cc-clients-python-lib", root());
    assert!(
        std::path::Path::new(&format!(
            "{dir}/cc_clients_python_lib/cc_openapi_v2_1/openapi.json"
        ))
        .exists(),
        "the hosted API's OpenAPI document is missing: run scripts/test (it fetches cc-clients-python-lib)"
    );
    dir
}

fn contract_python() -> String {
    let py = format!("{}/.venv-contract/bin/python", root());
    assert!(
        std::path::Path::new(&py).exists(),
        "the contract suite's virtualenv is missing: run scripts/test (it creates .venv-contract)"
    );
    py
}

#[test]
fn the_hosted_clients_requests_get_documented_answers() {
    let (srv, _dir) = Server::start(&[]);
    let admin = srv.admin();
    let env = admin.env("kafka-home");
    let cluster = admin.kafka(&env, "orders");
    let lib = cc_lib();
    let out = Command::new(contract_python())
        .arg(format!("{}/tests/python/contract.py", root()))
        .env("BASE", &srv.url)
        .env("KEY", &admin.key)
        .env("SECRET", &admin.secret)
        .env("CLUSTER", &cluster)
        .env("ENV", &env)
        .env(
            "SPEC",
            format!("{lib}/cc_clients_python_lib/cc_openapi_v2_1/openapi.json"),
        )
        .env("CC_LIB", &lib)
        .output()
        .expect("run the contract suite");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}\n{}", srv.logs());
    assert!(text.contains("contract ok"), "{text}");
}

/// Operations schemathesis may not call: each could delete what the run itself
/// stands on — its own key, role binding or user, the cluster and identity provider
/// its path parameters are pinned to. The contract suite above and the API tests call
/// them with data they own.
const NOT_FUZZED: [&str; 5] = [
    "deleteIamV2ApiKey",
    "deleteIamV2RoleBinding",
    "deleteIamV2User",
    "deleteCmkV2Cluster",
    "deleteIamV2IdentityProvider",
];

/// The operations keygate serves under the hosted document's names.
const SHARED: &str = r"^/(iam/v2/(api-keys|service-accounts|role-bindings|users|identity-providers|certificate-authorities)|org/v2/(environments|organizations)|kafka/v3/clusters/\{cluster_id\}/acls|sts/v1|cmk/v2/clusters|srcm/v3/clusters|ksqldbcm/v2/clusters|fcpm/v2/regions|service-quota/v1/applied-quotas|kafka-quotas/v1/client-quotas)";

/// Schemathesis (PyPI) over every shared operation, with the document's examples,
/// its coverage phase (boundary and invalid values), fuzzing and its stateful phase
/// (sequences linked by the ids responses return): no 5xx, only documented status
/// codes, every response valid against the document.
#[test]
fn schemathesis_finds_nothing_the_document_forbids() {
    // The failure throttle is tested elsewhere; here it would only slow the run down
    // (schemathesis sends unauthenticated requests too).
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("keygate.toml"),
        "auth_throttle_free_failures = 1000000\n",
    )
    .expect("toml");
    let srv = Server::start_in(dir.path(), &[]);
    let admin = srv.admin();
    let env = admin.env("fuzzed");
    let cluster = admin.kafka(&env, "fuzzed");
    // Parents that exist, so that generated requests under them reach keygate's logic
    // rather than its 404 for an unknown parent.
    let provider = admin.ok(
        admin.post(
            "/iam/v2/identity-providers",
            serde_json::json!({"display_name": "fuzzed-idp", "issuer": "https://idp.example.com",
                "jwks_uri": "https://idp.example.com/jwks"}),
        ),
        201,
    );
    // A ksqlDB cluster, so that its list and reads answer with objects.
    let runner = admin.ok(
        admin.post(
            "/iam/v2/service-accounts",
            serde_json::json!({"display_name": "fuzzed-ksql"}),
        ),
        201,
    );
    admin.ok(
        admin.post(
            "/ksqldbcm/v2/clusters",
            serde_json::json!({"spec": {"display_name": "fuzzed", "environment": {"id": env},
                "upstream": "http://127.0.0.1:8088", "kafka_cluster": {"id": cluster},
                "credential_identity": {"id": runner["id"]}}}),
        ),
        202,
    );
    // A client quota, so that its list and reads answer with objects.
    admin.ok(
        admin.post(
            "/kafka-quotas/v1/client-quotas",
            serde_json::json!({"spec": {"display_name": "fuzzed", "cluster": {"id": cluster},
                "environment": {"id": env}, "principals": [{"id": runner["id"]}],
                "throughput": {"ingress_byte_rate": "1000", "egress_byte_rate": "1000"}}}),
        ),
        202,
    );
    let config = dir.path().join("schemathesis.toml");
    std::fs::write(
        &config,
        format!(
            "[parameters]\n\"path.cluster_id\" = \"{cluster}\"\n\"path.provider_id\" = \"{}\"\n",
            provider["id"].as_str().expect("provider id")
        ),
    )
    .expect("schemathesis config");
    let lib = cc_lib();
    let spec = dir.path().join("openapi.json");
    let ok = Command::new(contract_python())
        .arg(format!("{}/tests/python/contract_spec.py", root()))
        .arg(format!(
            "{lib}/cc_clients_python_lib/cc_openapi_v2_1/openapi.json"
        ))
        .arg(&srv.url)
        .arg(&spec)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "could not prepare the document");
    let seed = std::env::var("KEYGATE_FUZZ_SEED").unwrap_or_else(|_| "20261202".into());
    let out = Command::new(format!("{}/.venv-contract/bin/schemathesis", root()))
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(&spec)
        .args(["--url", &srv.url])
        .args(["--auth", &format!("{}:{}", admin.key, admin.secret)])
        .args(["--include-path-regex", SHARED])
        .args(NOT_FUZZED.iter().flat_map(|id| ["--exclude-operation-id", id]))
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance",
        ])
        .args(["--phases", "examples,coverage,fuzzing,stateful"])
        .args(["--max-examples", "20", "--workers", "2", "--seed", &seed])
        .args(["--request-timeout", "15"])
        .env("NO_COLOR", "1")
        // Its cache (crash records) goes to the test's directory, not the source tree.
        .current_dir(dir.path())
        .output()
        .expect("run schemathesis");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis (seed {seed}) found contract breaks:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(" passed"), "{text}");
    // The run used its credential throughout: nothing it did locked it out.
    assert_eq!(admin.get("/iam/v2/service-accounts").0, 200);
}
