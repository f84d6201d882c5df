//! State survives restarts and kill -9; secrets never reach disk or logs in the clear.

use crate::harness::Server;
use serde_json::json;
use std::sync::{Arc, Mutex};

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn state_survives_a_restart_and_the_secret_is_printed_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = Server::start_in(dir.path(), &[]);
    let (key, secret) = first.creds.clone().expect("first start prints credentials");
    let api = first.admin();
    let sa = api.sa("survivor");
    let (k2, s2) = api.key(&sa, "CLOUD");
    drop(first);
    let second = Server::start_in(dir.path(), &[]);
    assert!(
        second.creds.is_none(),
        "second start printed credentials again:\n{}",
        second.logs()
    );
    assert!(!second.logs().contains("API secret"));
    let api = second.api(&key, &secret);
    assert_eq!(api.get(&format!("/iam/v2/service-accounts/{sa}")).0, 200);
    assert_eq!(second.api(&k2, &s2).get("/org/v2/environments").0, 200);
    use std::os::unix::fs::PermissionsExt;
    let pepper = dir.path().join("data/pepper.key");
    assert_eq!(
        std::fs::metadata(&pepper)
            .expect("pepper")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
}

#[test]
fn secrets_appear_nowhere_but_in_the_create_response() {
    let (srv, dir) = Server::start(&[]);
    let api = srv.admin();
    let (_, boot_secret) = srv.creds.clone().expect("creds");
    let env = api.env("e");
    let lkc = api.kafka(&env, "k");
    let sa = api.sa("scan-me");
    let mut secrets = vec![boot_secret.clone()];
    for res in ["CLOUD", lkc.as_str()] {
        let (k, s) = api.key(&sa, res);
        // Use them, right and wrong, so that authentication paths log.
        let _ = srv.api(&k, &s).get("/iam/v2/users");
        let _ = srv.api(&k, &format!("{s}x")).get("/iam/v2/users");
        secrets.push(s);
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let logs = srv.logs();
    // The bootstrap secret is printed once, by design, on the first start's stdout.
    let stderr = srv.stderr.lock().expect("lock").clone();
    for s in &secrets {
        assert!(!stderr.contains(s.as_str()), "secret in the server log");
        assert!(
            !stderr.contains(&s[4..20]),
            "part of a secret in the server log"
        );
    }
    for s in &secrets[1..] {
        assert!(!logs.contains(s.as_str()), "key secret in server output");
    }
    assert!(
        stderr.contains("REST authentication failed"),
        "the failures were logged (without secrets)"
    );
    for f in files_under(&dir.path().join("data")) {
        let bytes = std::fs::read(&f).expect("read");
        for s in &secrets {
            let found = bytes.windows(s.len()).any(|w| w == s.as_bytes());
            assert!(!found, "a secret is stored in the clear in {}", f.display());
        }
    }
}

#[test]
fn kill_9_during_a_burst_loses_no_acknowledged_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut srv = Server::start_in(dir.path(), &["--max-keys-per-owner", "100000"]);
    let (key, secret) = srv.creds.clone().expect("creds");
    let api = srv.admin();
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let api = api.clone();
            let acked = acked.clone();
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new()
                    .timeout(std::time::Duration::from_secs(5))
                    .build();
                let auth = crate::harness::base64_basic(&api.key, &api.secret);
                for _ in 0..10_000 {
                    let r = agent
                        .post(&format!("{}/iam/v2/api-keys", api.url))
                        .set("Authorization", &auth)
                        .send_json(json!({"spec":{"resource":{"id":"CLOUD"}}}));
                    match r {
                        Ok(resp) if resp.status() == 202 => {
                            let v: serde_json::Value = resp.into_json().expect("json");
                            let id = v["id"].as_str().unwrap_or_default().to_owned();
                            let s = v["spec"]["secret"].as_str().unwrap_or_default().to_owned();
                            acked.lock().expect("lock").push((id, s));
                        }
                        _ => return,
                    }
                }
            })
        })
        .collect();
    // Let the burst run, then kill -9 in the middle of it.
    while acked.lock().expect("lock").len() < 150 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    srv.child.kill().expect("kill -9");
    let _ = srv.child.wait();
    for w in workers {
        let _ = w.join();
    }
    let acked = acked.lock().expect("lock").clone();
    assert!(acked.len() >= 150);
    let srv = Server::start_in(dir.path(), &[]);
    let api = srv.api(&key, &secret);
    let stored: std::collections::HashSet<String> = api
        .all("/iam/v2/api-keys")
        .into_iter()
        .filter_map(|k| k["id"].as_str().map(str::to_owned))
        .collect();
    let lost: Vec<&String> = acked
        .iter()
        .map(|(id, _)| id)
        .filter(|id| !stored.contains(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged keys lost after kill -9: {lost:?}",
        lost.len()
    );
    // And they authenticate (a sample, each costs one request).
    for (id, s) in acked.iter().step_by(25) {
        assert_eq!(
            srv.api(id, s).get("/org/v2/environments").0,
            200,
            "key {id} does not authenticate after restart"
        );
    }
}

#[test]
fn settings_come_from_flags_environment_and_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("keygate.toml"),
        "max_keys_per_owner = 1\norganization_name = \"acme\"\n",
    )
    .expect("write");
    let srv = Server::start_in(dir.path(), &[]);
    let api = srv.admin();
    let (_, orgs) = api.get("/org/v2/organizations");
    assert_eq!(orgs["data"][0]["display_name"], "acme");
    // The bootstrap key already uses the one allowed key.
    assert_eq!(
        api.post(
            "/iam/v2/api-keys",
            json!({"spec":{"resource":{"id":"CLOUD"}}})
        )
        .0,
        402
    );
    drop(srv);
    // A flag beats the file.
    let srv = Server::start_in(dir.path(), &["--max-keys-per-owner", "5"]);
    assert!(srv.creds.is_none());
    let (_, sa_body) = srv
        .api(&api.key, &api.secret)
        .post("/iam/v2/service-accounts", json!({"display_name":"one"}));
    let sa = sa_body["id"].as_str().expect("sa").to_owned();
    let admin = srv.api(&api.key, &api.secret);
    for _ in 0..5 {
        admin.key(&sa, "CLOUD");
    }
    assert_eq!(
        admin
            .post(
                "/iam/v2/api-keys",
                json!({"spec":{"owner":{"id":sa},"resource":{"id":"CLOUD"}}})
            )
            .0,
        402
    );
    // An unknown setting in the file is an error, not silently ignored.
    std::fs::write(dir.path().join("keygate.toml"), "max_keys_per_ownr = 1\n").expect("write");
    let out = std::process::Command::new(crate::harness::BIN)
        .args(["server", "--listen", "127.0.0.1:0", "--data-dir", "data"])
        .current_dir(dir.path())
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("max_keys_per_ownr"));
    // Environment variables are read (KEYGATE_DATABASE with an unsupported scheme is refused).
    let out = std::process::Command::new(crate::harness::BIN)
        .args(["server", "--listen", "127.0.0.1:0"])
        .env("KEYGATE_DATABASE", "mysql://nope")
        .current_dir(tempfile::tempdir().expect("tempdir").path())
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported database URL"));
}
