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

/// A server for schemathesis to fuzz, with parents that exist, so that generated
/// requests under them reach keygate's logic rather than its 404 for an unknown parent,
/// and a ksqlDB cluster and a client quota, so that their lists and reads answer with
/// objects. Returns the server, its directory, the config file pinning the parents.
fn fuzzed_server() -> (Server, tempfile::TempDir, std::path::PathBuf) {
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
    let provider = admin.ok(
        admin.post(
            "/iam/v2/identity-providers",
            serde_json::json!({"display_name": "fuzzed-idp", "issuer": "https://idp.example.com",
                "jwks_uri": "https://idp.example.com/jwks"}),
        ),
        201,
    );
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
    (srv, dir, config)
}

/// Run schemathesis (PyPI) on `spec` against `srv` as `key:secret` with every
/// response check; returns whether it passed and what it printed.
fn schemathesis(
    dir: &std::path::Path,
    config: &std::path::Path,
    spec: &str,
    url: &str,
    (key, secret): (&str, &str),
    args: &[&str],
) -> (bool, String) {
    let out = Command::new(format!("{}/.venv-contract/bin/schemathesis", root()))
        .arg("--config-file")
        .arg(config)
        .arg("run")
        .arg(spec)
        .args(["--url", url])
        .args(["--auth", &format!("{key}:{secret}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance",
        ])
        .args(["--workers", "2", "--request-timeout", "15"])
        .args(args)
        .env("NO_COLOR", "1")
        // Its cache (crash records) goes to the test's directory, not the source tree.
        .current_dir(dir)
        .output()
        .expect("run schemathesis");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success() && text.contains(" passed"), text)
}

fn fuzz_seed() -> String {
    std::env::var("KEYGATE_FUZZ_SEED").unwrap_or_else(|_| "20261202".into())
}

/// Schemathesis (PyPI) over every shared operation, with the document's examples,
/// its coverage phase (boundary and invalid values), fuzzing and its stateful phase
/// (sequences linked by the ids responses return): no 5xx, only documented status
/// codes, every response valid against the document.
#[test]
fn schemathesis_finds_nothing_the_document_forbids() {
    let (srv, dir, config) = fuzzed_server();
    let admin = srv.admin();
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
    let seed = fuzz_seed();
    let mut args = vec!["--include-path-regex", SHARED];
    args.extend(
        NOT_FUZZED
            .iter()
            .flat_map(|id| ["--exclude-operation-id", id]),
    );
    args.extend(["--phases", "examples,coverage,fuzzing,stateful"]);
    args.extend(["--max-examples", "20", "--seed", &seed]);
    let spec = spec.to_string_lossy();
    let (ok, text) = schemathesis(
        dir.path(),
        &config,
        &spec,
        &srv.url,
        (&admin.key, &admin.secret),
        &args,
    );
    assert!(
        ok,
        "schemathesis (seed {seed}) found contract breaks:\n{text}"
    );
    // The run used its credential throughout: nothing it did locked it out.
    assert_eq!(admin.get("/iam/v2/service-accounts").0, 200);
}

/// keygate's own operations that could take away what an admin's run stands on — its
/// key, its user, its bindings, the pinned parents. The read-only run calls them all.
const NOT_FUZZED_AS_ADMIN: [&str; 7] = [
    "update_user",
    "delete_user",
    "delete_role_binding",
    "delete_service_account",
    "delete_kafka",
    "delete_provider",
    "set_user_password",
];

/// Operations a read-only principal may call on itself and would lock itself out with
/// (its own key).
const SELF_DESTRUCTIVE: [&str; 2] = ["delete_api_key", "disable_api_key"];

/// Schemathesis over keygate's own `/openapi.json` — every operation, extensions
/// included — as an organization admin (all but the self-destructive operations
/// above), as a read-only principal (a service account bound to Operator on the
/// environment: every operation but deleting or disabling its own key), and last as
/// a second, sacrificial admin over the operations the first runs left out: no 5xx,
/// only documented status codes, every response valid against the document keygate
/// publishes.
#[test]
fn schemathesis_on_keygates_own_document() {
    let (srv, dir, config) = fuzzed_server();
    let admin = srv.admin();
    let reader = admin.sa("fuzzed-reader");
    let env = admin.all("/org/v2/environments")[0]["id"]
        .as_str()
        .expect("env")
        .to_owned();
    let env_crn = format!("{}/environment={env}", admin.org_crn());
    admin.bind(&format!("User:{reader}"), "Operator", &env_crn);
    let (rk, rs) = admin.key(&reader, "CLOUD");
    let last = admin.sa("fuzzed-last-admin");
    admin.bind(
        &format!("User:{last}"),
        "OrganizationAdmin",
        &admin.org_crn(),
    );
    let (lk, ls) = admin.key(&last, "CLOUD");
    let spec = format!("{}/openapi.json", srv.url);
    let seed = fuzz_seed();
    let mut args = vec![
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        "10",
    ];
    args.extend(["--seed", &seed]);
    let mut as_admin = args.clone();
    as_admin.extend(
        NOT_FUZZED_AS_ADMIN
            .iter()
            .flat_map(|id| ["--exclude-operation-id", id]),
    );
    as_admin.extend(
        SELF_DESTRUCTIVE
            .iter()
            .flat_map(|id| ["--exclude-operation-id", id]),
    );
    let mut as_reader = args.clone();
    as_reader.extend(
        SELF_DESTRUCTIVE
            .iter()
            .flat_map(|id| ["--exclude-operation-id", id]),
    );
    let mut the_rest = args.clone();
    the_rest.extend(
        NOT_FUZZED_AS_ADMIN
            .iter()
            .chain(&SELF_DESTRUCTIVE)
            .flat_map(|id| ["--include-operation-id", id]),
    );
    for (who, cred, args) in [
        (
            "admin",
            (admin.key.as_str(), admin.secret.as_str()),
            &as_admin,
        ),
        ("read-only", (rk.as_str(), rs.as_str()), &as_reader),
    ] {
        let (ok, text) = schemathesis(dir.path(), &config, &spec, &srv.url, cred, args);
        assert!(
            ok,
            "schemathesis as {who} (seed {seed}) found contract breaks:\n{text}"
        );
    }
    // Both credentials still work: nothing either run did locked it out.
    assert_eq!(admin.get("/iam/v2/service-accounts").0, 200);
    assert_eq!(srv.api(&rk, &rs).get("/iam/v2/service-accounts").0, 200);
    let (ok, text) = schemathesis(dir.path(), &config, &spec, &srv.url, (&lk, &ls), &the_rest);
    assert!(
        ok,
        "schemathesis over the destructive operations (seed {seed}) found contract breaks:\n{text}"
    );
}
