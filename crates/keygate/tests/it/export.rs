//! `keygate export` / `keygate import`: an installation moves to a new database and
//! every key keeps working, at the REST API and through the gateway.

use crate::gateway::{free_ports, wait_for_port, world};
use crate::harness::{Server, BIN};
use serde_json::Value;
use std::process::Command;

fn keygate(args: &[&str], cwd: &std::path::Path) -> (bool, String) {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env_remove("KEYGATE_DATA_DIR")
        .env_remove("KEYGATE_DATABASE")
        .output()
        .expect("run keygate");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn export_then_import_keeps_every_key_working() {
    let w = world(&["orders"], "");
    let admin = &w.admin;
    let (admin_key, admin_secret) = w.srv.creds.clone().expect("creds");
    let (sa, k, s) = w.app("mover", &[("TOPIC", "orders", "WRITE", "ALLOW")]);
    admin.bind(
        &format!("User:{sa}"),
        "DeveloperRead",
        &format!(
            "{}/environment={}/cloud-cluster={}/kafka={}/topic=orders",
            admin.org_crn(),
            w.env,
            w.lkc,
            w.lkc
        ),
    );
    // A ksqlDB cluster: what it runs on moves with it.
    let ksql = admin.ok(
        admin.post(
            "/ksqldbcm/v2/clusters",
            serde_json::json!({"spec": {"display_name": "ksql", "environment": {"id": w.env},
                "upstream": "http://127.0.0.1:8088", "kafka_cluster": {"id": w.lkc},
                "credential_identity": {"id": sa}, "csu": 8}}),
        ),
        202,
    );

    let src = w.dir.path().join("data");
    let doc = w.dir.path().join("export.json");
    let (ok, out) = keygate(
        &[
            "export",
            "--data-dir",
            src.to_str().unwrap_or_default(),
            "--file",
            doc.to_str().unwrap_or_default(),
        ],
        w.dir.path(),
    );
    assert!(ok, "{out}");
    let text = std::fs::read_to_string(&doc).expect("export");
    let v: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(v["format"], "keygate-export");
    assert_eq!(v["version"], 1);
    assert!(
        !text.contains(&s) && !text.contains(&admin_secret),
        "no secret in an export"
    );
    // Nor any other the suite has seen.
    assert_eq!(
        crate::harness::known_secret_in(&text),
        None,
        "a secret in an export"
    );
    assert!(v["api_keys"]
        .as_array()
        .is_some_and(|a| a.iter().any(|x| x["id"] == k.as_str())));
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&doc).expect("meta").permissions(),
    ) & 0o777;
    assert_eq!(mode, 0o600);

    let target = tempfile::tempdir().expect("tempdir");
    let dst = target.path().join("data");
    // Without the source's pepper the import is refused, and so is a different pepper.
    let (ok, out) = keygate(
        &[
            "import",
            "--data-dir",
            dst.to_str().unwrap_or_default(),
            doc.to_str().unwrap_or_default(),
        ],
        target.path(),
    );
    assert!(!ok && out.contains("pepper.key"), "{out}");
    std::fs::write(dst.join("pepper.key"), [7u8; 32]).expect("pepper");
    let (ok, out) = keygate(
        &[
            "import",
            "--data-dir",
            dst.to_str().unwrap_or_default(),
            doc.to_str().unwrap_or_default(),
        ],
        target.path(),
    );
    assert!(!ok && out.contains("not the pepper"), "{out}");
    std::fs::copy(src.join("pepper.key"), dst.join("pepper.key")).expect("copy pepper");
    let (ok, out) = keygate(
        &[
            "import",
            "--data-dir",
            dst.to_str().unwrap_or_default(),
            doc.to_str().unwrap_or_default(),
        ],
        target.path(),
    );
    assert!(ok, "{out}");
    // Importing twice is refused: the database is no longer empty.
    let (ok, out) = keygate(
        &[
            "import",
            "--data-dir",
            dst.to_str().unwrap_or_default(),
            doc.to_str().unwrap_or_default(),
        ],
        target.path(),
    );
    assert!(
        !ok && out.contains("already holds an organization"),
        "{out}"
    );

    // The new installation: no bootstrap, the old keys work, the cluster keeps its slot.
    let base = free_ports(4);
    let srv = Server::start_in(target.path(), &["--gateway-port-base", &base.to_string()]);
    assert!(
        srv.creds.is_none(),
        "an imported installation is not bootstrapped again"
    );
    let api = srv.api(&admin_key, &admin_secret);
    let sas = api.all("/iam/v2/service-accounts");
    assert!(sas.iter().any(|a| a["id"] == sa.as_str()));
    let bindings = api.all(&format!(
        "/iam/v2/role-bindings?crn_pattern={}",
        crate::cli_enc(&admin.org_crn())
    ));
    assert!(bindings
        .iter()
        .any(|b| b["principal"] == format!("User:{sa}")));
    let c = api.ok(
        api.get(&format!("/cmk/v2/clusters/{}?environment={}", w.lkc, w.env)),
        200,
    );
    assert_eq!(
        c["spec"]["kafka_bootstrap_endpoint"],
        format!("127.0.0.1:{base}")
    );
    let k2 = api.ok(
        api.get(&format!(
            "/ksqldbcm/v2/clusters/{}",
            ksql["id"].as_str().unwrap_or_default()
        )),
        200,
    );
    assert_eq!(k2["spec"]["kafka_cluster"]["id"], w.lkc.as_str());
    assert_eq!(k2["spec"]["credential_identity"]["id"], sa.as_str());
    assert_eq!(k2["spec"]["csu"], 8);
    wait_for_port(base);
    let moved = crate::gateway::World {
        bootstrap: format!("127.0.0.1:{base}"),
        ..w
    };
    let (ok, out) = moved.kcat(&k, &s, &["-P", "-t", "orders"], Some("after the move\n"));
    assert!(ok, "the moved key works through the new gateway: {out}");
    let (ok, _) = moved.kcat(&k, &format!("{s}x"), &["-L"], None);
    assert!(!ok, "and a wrong secret still fails");
    let rec = crate::audit::events(&api, "method=ImportState");
    assert_eq!(rec.len(), 1, "the import is audited");
    drop(srv);
}

/// `keygate migrate`: SQLite to PostgreSQL in one step; keys, audit history and the
/// cluster's gateway slot move; an instance on the new database serves them.
#[test]
fn migrate_moves_a_sqlite_installation_to_postgres() {
    let w = world(&["orders"], "");
    let (admin_key, admin_secret) = w.srv.creds.clone().expect("creds");
    let (sa, k, s) = w.app("migrant", &[("TOPIC", "orders", "WRITE", "ALLOW")]);
    let before = crate::audit::events(&w.admin, "method=CreateAPIKey");
    assert!(!before.is_empty());
    let data = w.dir.path().join("data");
    let url = keygate_testkit::PgServer::fresh_database("migrate_cli");

    // The server is still running: SQLite allows the read; the target must be empty.
    let migrate = [
        "migrate",
        "--data-dir",
        data.to_str().unwrap_or_default(),
        "--to",
        &url,
    ];
    let (ok, out) = keygate(&migrate, w.dir.path());
    assert!(ok, "{out}");
    assert!(out.contains("Migrated the organization"), "{out}");
    assert!(!out.contains(&s) && !out.contains(&admin_secret));
    let (ok, out) = keygate(&migrate, w.dir.path());
    assert!(
        !ok && out.contains("not empty"),
        "a second migration is refused: {out}"
    );

    // An instance on PostgreSQL, with the installation's pepper: no bootstrap, same keys.
    let base = free_ports(4);
    let fresh = tempfile::tempdir().expect("tempdir");
    let pepper = data.join("pepper.key");
    let srv = Server::start_in(
        fresh.path(),
        &[
            "--database",
            &url,
            "--pepper-file",
            pepper.to_str().unwrap_or_default(),
            "--gateway-port-base",
            &base.to_string(),
        ],
    );
    assert!(
        srv.creds.is_none(),
        "a migrated installation is not bootstrapped again"
    );
    let api = srv.api(&admin_key, &admin_secret);
    assert!(api
        .all("/iam/v2/service-accounts")
        .iter()
        .any(|a| a["id"] == sa.as_str()));
    let after = crate::audit::events(&api, "method=CreateAPIKey");
    assert_eq!(
        after.iter().map(|e| e["id"].clone()).collect::<Vec<_>>(),
        before.iter().map(|e| e["id"].clone()).collect::<Vec<_>>(),
        "the audit history came along"
    );
    wait_for_port(base);
    let (ok, out) = crate::gateway::kcat_at(
        &format!("127.0.0.1:{base}"),
        &k,
        &s,
        &["-P", "-t", "orders"],
        Some("after migrate\n"),
    );
    assert!(
        ok,
        "the migrated key works through the PostgreSQL instance: {out}"
    );

    // Another pepper on the same database is refused at start.
    let other = tempfile::tempdir().expect("tempdir");
    let out = Command::new(BIN)
        .args([
            "server",
            "--listen",
            "127.0.0.1:0",
            "--database",
            &url,
            "--data-dir",
        ])
        .arg(other.path().join("data"))
        .output()
        .expect("run");
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success() && text.contains("pepper"), "{text}");
    drop(srv);
}
