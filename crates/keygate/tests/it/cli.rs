//! The CLI: the real binary against a real server.

use crate::harness::{CliEnv, Server, BIN};

#[test]
fn cli_workflow_end_to_end() {
    let (srv, _dir) = Server::start(&[]);
    let (key, secret) = srv.creds.clone().expect("creds");
    let cli = CliEnv::new();
    let (ok, out, err) = cli.run(&[
        "login",
        "--url",
        &srv.url,
        "--api-key",
        &key,
        "--api-secret",
        &secret,
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("Logged in"), "{out}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&cli.config)
        .expect("config")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);

    let env = cli.json(&["environment", "create", "prod"]);
    let env = env["id"].as_str().expect("env").to_owned();
    assert!(cli
        .json(&["environment", "list"])
        .as_array()
        .is_some_and(|a| a.iter().any(|e| e["id"] == env.as_str())));
    let lkc = cli.json(&[
        "kafka",
        "cluster",
        "create",
        "main",
        "--environment",
        &env,
        "--upstream",
        "127.0.0.1:9092",
    ]);
    let lkc = lkc["id"].as_str().expect("lkc").to_owned();
    assert_eq!(
        cli.json(&["kafka", "cluster", "describe", &lkc])["spec"]["upstream"],
        "127.0.0.1:9092"
    );
    let sr = cli.json(&[
        "schema-registry",
        "create",
        "sr",
        "--environment",
        &env,
        "--upstream",
        "http://127.0.0.1:8081",
    ]);
    assert!(sr["id"].as_str().is_some_and(|i| i.starts_with("lsrc-")));
    let runner = cli.json(&["iam", "service-account", "create", "ksql-runner"]);
    let runner = runner["id"].as_str().expect("sa").to_owned();
    // The hosted CLI's form: the Kafka cluster, the identity it runs as, its CSUs.
    let ksql = cli.json(&[
        "ksql",
        "cluster",
        "create",
        "k",
        "--environment",
        &env,
        "--upstream",
        "http://127.0.0.1:8088",
        "--cluster",
        &lkc,
        "--credential-identity",
        &runner,
        "--csu",
        "2",
    ]);
    assert_eq!(ksql["spec"]["kafka_cluster"]["id"], lkc.as_str(), "{ksql}");
    assert_eq!(ksql["spec"]["csu"], 2, "{ksql}");
    assert!(ksql["id"]
        .as_str()
        .is_some_and(|i| i.starts_with("lksqlc-")));
    let fr = cli.json(&[
        "flink",
        "region",
        "create",
        "f",
        "--environment",
        &env,
        "--upstream",
        "http://127.0.0.1:8083",
        "--region",
        "aws.us-east-1",
    ]);
    assert_eq!(fr["id"], "aws.us-east-1");
    let tf = cli.json(&[
        "tableflow",
        "create",
        "t",
        "--environment",
        &env,
        "--upstream",
        "http://127.0.0.1:9000",
    ]);
    assert_eq!(tf["id"], "tableflow");
    assert_eq!(
        cli.json(&["tableflow", "describe", "--environment", &env])["spec"]["display_name"],
        "t"
    );

    let user = cli.json(&[
        "iam",
        "user",
        "create",
        "dev@example.com",
        "--full-name",
        "Dev",
    ]);
    assert_eq!(user["email"], "dev@example.com");
    let sa = cli.json(&[
        "iam",
        "service-account",
        "create",
        "orders-app",
        "--description",
        "writes orders",
    ]);
    let sa = sa["id"].as_str().expect("sa").to_owned();
    // Errors print the server's message and exit non-zero.
    let (ok, _, err) = cli.run(&["iam", "service-account", "create", "orders-app"]);
    assert!(!ok);
    assert!(err.contains("Service name is already in use"), "{err}");

    // A key with a ready client configuration, written with mode 0600.
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("client.properties");
    let (ok, out, err) = cli.run(&[
        "api-key",
        "create",
        "--resource",
        &lkc,
        "--service-account",
        &sa,
        "--description",
        "orders producer",
        "--expires-in",
        "90d",
        "--client-config",
        "librdkafka",
        "--output-file",
        conf.to_str().expect("path"),
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("shown only once"), "{out}");
    let api_key = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("API Key"))
        .map(|s| s.trim().to_owned())
        .expect("key line");
    let api_secret = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("API Secret"))
        .map(|s| s.trim().to_owned())
        .expect("secret line");
    let text = std::fs::read_to_string(&conf).expect("client config");
    assert!(
        text.contains(&format!("sasl.username={api_key}"))
            && text.contains(&format!("sasl.password={api_secret}")),
        "{text}"
    );
    assert!(
        text.contains("security.protocol=SASL_PLAINTEXT") && text.contains("sasl.mechanism=PLAIN")
    );
    assert_eq!(
        std::fs::metadata(&conf).expect("conf").permissions().mode() & 0o777,
        0o600
    );
    for kind in ["java", "python", "env"] {
        let (ok, out, err) = cli.run(&[
            "api-key",
            "create",
            "--resource",
            &lkc,
            "--service-account",
            &sa,
            "--client-config",
            kind,
        ]);
        assert!(ok, "{kind}: {err}");
        assert!(
            out.contains("PlainLoginModule")
                || out.contains("\"sasl.username\"")
                || out.contains("KAFKA_SASL_USERNAME="),
            "{kind}: {out}"
        );
    }
    let listed = cli.json(&["api-key", "list", "--service-account", &sa]);
    assert_eq!(listed.as_array().map(Vec::len), Some(4));
    let described = cli.json(&["api-key", "describe", &api_key]);
    assert_eq!(described["spec"]["description"], "orders producer");
    assert!(described["spec"]["expires_at"].is_string());
    assert!(!described.to_string().contains(&api_secret));
    let (ok, yaml, _) = cli.run(&["api-key", "describe", &api_key, "-o", "yaml"]);
    assert!(ok && yaml.contains(&format!("id: {api_key}")), "{yaml}");
    let (ok, human, _) = cli.run(&["api-key", "list"]);
    assert!(
        ok && human.contains("Last Used") && human.contains(&api_key),
        "{human}"
    );
    assert_eq!(
        cli.json(&["api-key", "disable", &api_key])["status"]["phase"],
        "DISABLED"
    );
    assert_eq!(
        cli.json(&["api-key", "enable", &api_key])["status"]["phase"],
        "ACTIVE"
    );
    assert_eq!(
        cli.json(&["api-key", "update", &api_key, "--description", "renamed"])["spec"]
            ["description"],
        "renamed"
    );
    let mine = cli.json(&["api-key", "list", "--current-user"]);
    assert!(
        mine.as_array()
            .is_some_and(|a| a.len() == 1 && a[0]["id"] == key.as_str()),
        "{mine}"
    );
    let (ok, _, err) = cli.run(&[
        "api-key",
        "store",
        "ABCDEFGHIJKLMNOP",
        "kgs_made_elsewhere",
        "--resource",
        &lkc,
    ]);
    assert!(ok, "{err}");
    let (ok, out, err) = cli.run(&["api-key", "use", "ABCDEFGHIJKLMNOP"]);
    assert!(ok && out.contains(&lkc), "{out} {err}");
    let (ok, _, err) = cli.run(&["api-key", "use", "QQQQQQQQQQQQQQQQ", "--resource", &lkc]);
    assert!(!ok && err.contains("not stored"), "{err}");

    // Role bindings with the CRN built from flags.
    let rb = cli.json(&[
        "iam",
        "rbac",
        "role-binding",
        "create",
        "--principal",
        &format!("User:{sa}"),
        "--role",
        "DeveloperWrite",
        "--environment",
        &env,
        "--kafka-cluster",
        &lkc,
        "--resource",
        "Topic:orders",
        "--prefix",
    ]);
    let crn = rb["crn_pattern"].as_str().expect("crn").to_owned();
    assert!(
        crn.ends_with(&format!(
            "/environment={env}/cloud-cluster={lkc}/kafka={lkc}/topic=orders*"
        )),
        "{crn}"
    );
    let rbs = cli.json(&[
        "iam",
        "rbac",
        "role-binding",
        "list",
        "--principal",
        &format!("User:{sa}"),
    ]);
    assert_eq!(rbs.as_array().map(Vec::len), Some(1));
    let (ok, _, err) = cli.run(&[
        "iam",
        "rbac",
        "role-binding",
        "create",
        "--principal",
        &format!("User:{sa}"),
        "--role",
        "DeveloperWrite",
        "--environment",
        &env,
    ]);
    assert!(!ok && err.contains("can be bound at"), "{err}");
    let (ok, _, err) = cli.run(&[
        "iam",
        "rbac",
        "role-binding",
        "delete",
        "--principal",
        &format!("User:{sa}"),
        "--role",
        "DeveloperWrite",
        "--environment",
        &env,
        "--kafka-cluster",
        &lkc,
        "--resource",
        "Topic:orders",
        "--prefix",
    ]);
    assert!(ok, "{err}");
    assert_eq!(
        cli.json(&[
            "iam",
            "rbac",
            "role-binding",
            "list",
            "--principal",
            &format!("User:{sa}")
        ])
        .as_array()
        .map(Vec::len),
        Some(0)
    );

    // ACLs.
    let created = cli.json(&[
        "kafka",
        "acl",
        "create",
        "--allow",
        "--service-account",
        &sa,
        "--operations",
        "write,describe",
        "--topic",
        "orders",
        "--cluster",
        &lkc,
    ]);
    assert_eq!(created.as_array().map(Vec::len), Some(2));
    cli.json(&[
        "kafka",
        "acl",
        "create",
        "--deny",
        "--principal",
        "User:*",
        "--operations",
        "read",
        "--consumer-group",
        "secret",
        "--prefix",
        "--cluster",
        &lkc,
    ]);
    let acls = cli.json(&["kafka", "acl", "list", "--cluster", &lkc]);
    assert_eq!(acls.as_array().map(Vec::len), Some(3));
    let mine = cli.json(&[
        "kafka",
        "acl",
        "list",
        "--cluster",
        &lkc,
        "--service-account",
        &sa,
    ]);
    assert_eq!(mine.as_array().map(Vec::len), Some(2));
    let (ok, _, err) = cli.run(&[
        "kafka",
        "acl",
        "create",
        "--allow",
        "--service-account",
        &sa,
        "--operations",
        "write",
        "--consumer-group",
        "g",
        "--cluster",
        &lkc,
    ]);
    assert!(
        !ok && err.contains("not valid for resource type GROUP"),
        "{err}"
    );
    let deleted = cli.json(&[
        "kafka",
        "acl",
        "delete",
        "--cluster",
        &lkc,
        "--service-account",
        &sa,
        "--topic",
        "orders",
        "--operations",
        "write",
    ]);
    assert_eq!(deleted.as_array().map(Vec::len), Some(1));
    assert_eq!(
        cli.json(&["kafka", "acl", "list", "--cluster", &lkc])
            .as_array()
            .map(Vec::len),
        Some(2)
    );

    // Deletes.
    let (ok, _, err) = cli.run(&["iam", "service-account", "delete", &sa]);
    assert!(ok, "{err}");
    assert_eq!(
        cli.json(&["api-key", "list", "--service-account", &sa])
            .as_array()
            .map(Vec::len),
        Some(0)
    );
    let (ok, _, _) = cli.run(&["environment", "delete", &env]);
    assert!(!ok, "an environment with clusters cannot be deleted");
}

#[test]
fn print_default_config_and_not_logged_in() {
    let out = std::process::Command::new(BIN)
        .args(["server", "--print-default-config"])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.contains("listen = \"127.0.0.1:8080\"") && text.contains("data_dir"),
        "{text}"
    );
    let cli = CliEnv::new();
    let (ok, _, err) = cli.run(&["environment", "list"]);
    assert!(!ok && err.contains("not logged in"), "{err}");
    // Wrong credentials at login are refused and nothing is saved.
    let (srv, _dir) = Server::start(&[]);
    let (key, _) = srv.creds.clone().expect("creds");
    let (ok, _, err) = cli.run(&[
        "login",
        "--url",
        &srv.url,
        "--api-key",
        &key,
        "--api-secret",
        "kgs_wrong",
    ]);
    assert!(!ok && err.contains("invalid API key or secret"), "{err}");
    assert!(!cli.config.exists());
}

/// The role catalogue, over REST and `keygate iam rbac role list/describe` (read off
/// the authorizer's own tables; keygate-authz's catalogue test checks them row by row).
#[test]
fn the_role_catalogue_matches_what_roles_allow() {
    let (srv, _dir) = Server::start(&[]);
    let admin = srv.admin();
    let cli = CliEnv::new();
    let (ok, _, err) = cli.run(&[
        "login",
        "--url",
        &srv.url,
        "--api-key",
        &admin.key,
        "--api-secret",
        &admin.secret,
    ]);
    assert!(ok, "{err}");
    let roles = cli.json(&["iam", "rbac", "role", "list"]);
    let names: Vec<&str> = roles
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names.len(), 15, "{names:?}");
    assert!(names.contains(&"DeveloperRead") && names.contains(&"FlinkDeveloper"));
    let read = cli.json(&["iam", "rbac", "role", "describe", "DeveloperRead"]);
    assert_eq!(
        read["kafka"]["TOPIC"],
        serde_json::json!(["READ", "DESCRIBE"]),
        "{read}"
    );
    assert!(read["kafka"].get("CLUSTER").is_none(), "{read}");
    let (ok, human, _) = cli.run(&["iam", "rbac", "role", "describe", "CloudClusterAdmin"]);
    assert!(
        ok && human.contains("MANAGE_RESOURCE") && human.contains("kafka cluster"),
        "{human}"
    );
    let (ok, _, err) = cli.run(&["iam", "rbac", "role", "describe", "Overlord"]);
    assert!(!ok && err.contains("no role named"), "{err}");
    let (code, one) = admin.get("/iam/v2/roles/DeveloperRead");
    assert_eq!(code, 200);
    assert_eq!(
        one["scopes"][0]["control_plane"],
        serde_json::json!([]),
        "{one}"
    );
}

/// The hosted CLI's own examples for the commands keygate shares, as its
/// documentation writes them: contexts (`environment use`, `iam service-account use`,
/// `kafka cluster use`), `--cloud-cluster` with `--kafka-cluster`,
/// `--current-environment`, `list --inclusive`, `api-key create --use`, `api-key delete`
/// of several keys with `--force`, `iam provider create NAME --issuer-uri --jwks-uri`,
/// `kafka acl … --environment` without `--cluster`, and a Host column.
#[test]
fn the_hosted_clis_examples_parse_and_work() {
    let (srv, _dir) = Server::start(&[]);
    let admin = srv.admin();
    let env = admin.env("hosted-cli");
    let lkc = admin.kafka(&env, "hosted-cli");
    let cli = CliEnv::new();
    let run = |args: &[&str]| {
        let (ok, out, err) = cli.run(args);
        assert!(ok, "keygate {args:?}: {err}");
        out
    };
    run(&[
        "login",
        "--url",
        &srv.url,
        "--api-key",
        &admin.key,
        "--api-secret",
        &admin.secret,
    ]);
    let sa = cli.json(&["iam", "service-account", "create", "orders-app"])["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let principal = format!("User:{sa}");
    run(&["environment", "use", &env]);
    run(&[
        "iam",
        "rbac",
        "role-binding",
        "create",
        "--principal",
        &principal,
        "--role",
        "CloudClusterAdmin",
        "--current-environment",
        "--cloud-cluster",
        &lkc,
    ]);
    run(&[
        "iam",
        "rbac",
        "role-binding",
        "create",
        "--principal",
        &principal,
        "--role",
        "DeveloperRead",
        "--environment",
        &env,
        "--cloud-cluster",
        &lkc,
        "--kafka-cluster",
        &lkc,
        "--resource",
        "Topic:orders",
        "--prefix",
    ]);
    let (ok, _, err) = cli.run(&[
        "iam",
        "rbac",
        "role-binding",
        "create",
        "--principal",
        &principal,
        "--role",
        "DeveloperRead",
        "--environment",
        &env,
        "--cloud-cluster",
        &lkc,
        "--kafka-cluster",
        "lkc-other1",
        "--resource",
        "Topic:x",
    ]);
    assert!(!ok && err.contains("different clusters"), "{err}");
    let at = |extra: &[&str]| {
        let mut a = vec![
            "iam",
            "rbac",
            "role-binding",
            "list",
            "--principal",
            principal.as_str(),
            "--current-environment",
            "--cloud-cluster",
            lkc.as_str(),
        ];
        a.extend(extra);
        cli.json(&a).as_array().map(Vec::len).unwrap_or(0)
    };
    assert_eq!(at(&[]), 1, "only the binding at the cluster");
    assert_eq!(at(&["--inclusive"]), 2, "and the topic binding below it");
    // Keys for the service account in use; --use makes the new key the active one.
    run(&["iam", "service-account", "use", &sa]);
    let k1 = cli.json(&["api-key", "create", "--resource", &lkc, "--use"]);
    assert_eq!(k1["spec"]["owner"]["id"], serde_json::json!(sa), "{k1}");
    let k1 = k1["id"].as_str().expect("id").to_owned();
    let config = std::fs::read_to_string(&cli.config).expect("cli config");
    assert!(config.contains(&format!("\"{lkc}\": \"{k1}\"")), "{config}");
    run(&["iam", "service-account", "unset"]);
    let k2 = cli.json(&["api-key", "create", "--resource", "cloud"])["id"]
        .as_str()
        .expect("id")
        .to_owned();
    run(&["api-key", "delete", &k1, &k2, "--force"]);
    assert_eq!(admin.get(&format!("/iam/v2/api-keys/{k1}")).0, 404);
    assert_eq!(admin.get(&format!("/iam/v2/api-keys/{k2}")).0, 404);
    // ACLs on the cluster in use, with the hosted CLI's --environment.
    run(&["kafka", "cluster", "use", &lkc]);
    run(&[
        "kafka",
        "acl",
        "create",
        "--allow",
        "--service-account",
        &sa,
        "--operations",
        "read,describe",
        "--topic",
        "orders",
        "--environment",
        &env,
    ]);
    let listed = run(&["kafka", "acl", "list", "--environment", &env]);
    assert!(
        listed.contains("Host") && listed.contains("orders"),
        "{listed}"
    );
    // An identity provider the hosted way: positional name, --issuer-uri.
    let p = cli.json(&[
        "iam",
        "provider",
        "create",
        "my-provider",
        "--issuer-uri",
        "https://idp.example.com",
        "--jwks-uri",
        "https://idp.example.com/jwks",
    ]);
    assert_eq!(p["display_name"], "my-provider", "{p}");
    assert_eq!(p["issuer"], "https://idp.example.com", "{p}");
}
