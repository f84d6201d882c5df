//! Crash consistency: kill -9 at random moments during a burst of REST changes, many
//! times over, on SQLite and on PostgreSQL. After each restart every acknowledged
//! change is there, an unacknowledged one is there entirely or not at all, the audit
//! log holds exactly one record per change that is there (and none for one that is
//! not), and the snapshot the gateway and the API authorize from has caught up with
//! the store (its sequence equals the store's, and every acknowledged key
//! authenticates).
//!
//! `KEYGATE_CRASH_ITERATIONS` (default 100) and `KEYGATE_CRASH_SEED` steer the run; the
//! seed is printed in any failure.

use crate::harness::{base64_basic, Api, Server};
use keygate_testkit::PgServer;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One change the burst asked for, and whether it was acknowledged (a 2xx answer
/// arrived) or was in flight when the process died.
#[derive(Debug, Clone)]
enum Change {
    /// A service account named `name` (id once acknowledged), description "d".
    Account { name: String, id: Option<String> },
    /// A cloud key for `owner` (id and secret once acknowledged).
    Key {
        owner: String,
        acked: Option<(String, String)>,
    },
    /// A role binding for `owner` (id once acknowledged).
    Binding { owner: String, id: Option<String> },
    /// `owner`'s description set to "u".
    Update { owner: String, acked: bool },
}

impl Change {
    fn acknowledged(&self) -> bool {
        match self {
            Change::Account { id, .. } | Change::Binding { id, .. } => id.is_some(),
            Change::Key { acked, .. } => acked.is_some(),
            Change::Update { acked, .. } => *acked,
        }
    }
}

fn iterations() -> usize {
    std::env::var("KEYGATE_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
}

/// A small deterministic generator (xorshift), seeded per run.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// POST or PATCH `body` to `path`: `Some((status, body))` when an answer arrived,
/// `None` when the connection died under the request.
fn send(api: &Api, method: &str, path: &str, body: &Value) -> Option<(u16, Value)> {
    let res = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build()
        .request(method, &format!("{}{path}", api.url))
        .set("Authorization", &base64_basic(&api.key, &api.secret))
        .send_json(body.clone());
    match res {
        Ok(r) => Some((r.status(), r.into_json().unwrap_or_default())),
        Err(ureq::Error::Status(c, r)) => Some((c, r.into_json().unwrap_or_default())),
        Err(_) => None,
    }
}

/// One worker's burst: account, key, binding, update, again, until the server dies.
fn burst(api: &Api, org: &str, tag: &str, ledger: &Mutex<Vec<Change>>) {
    let push = |c: Change| ledger.lock().expect("ledger").push(c);
    for n in 0.. {
        let name = format!("{tag}-{n}");
        let body = json!({"display_name": name, "description": "d"});
        let Some((code, b)) = send(api, "POST", "/iam/v2/service-accounts", &body) else {
            return push(Change::Account { name, id: None });
        };
        assert_eq!(code, 201, "{b}");
        let owner = b["id"].as_str().expect("id").to_owned();
        push(Change::Account {
            name,
            id: Some(owner.clone()),
        });
        let body = json!({"spec": {"owner": {"id": owner}, "resource": {"id": "CLOUD"}}});
        let Some((code, b)) = send(api, "POST", "/iam/v2/api-keys", &body) else {
            return push(Change::Key { owner, acked: None });
        };
        assert_eq!(code, 202, "{b}");
        let id = b["id"].as_str().expect("id").to_owned();
        let secret = b["spec"]["secret"].as_str().expect("secret").to_owned();
        crate::harness::remember_secret(&secret);
        push(Change::Key {
            owner: owner.clone(),
            acked: Some((id, secret)),
        });
        let body = json!({"principal": format!("User:{owner}"), "role_name": "MetricsViewer",
            "crn_pattern": org});
        let Some((code, b)) = send(api, "POST", "/iam/v2/role-bindings", &body) else {
            return push(Change::Binding { owner, id: None });
        };
        assert_eq!(code, 201, "{b}");
        push(Change::Binding {
            owner: owner.clone(),
            id: Some(b["id"].as_str().expect("id").to_owned()),
        });
        let path = format!("/iam/v2/service-accounts/{owner}");
        let Some((code, b)) = send(api, "PATCH", &path, &json!({"description": "u"})) else {
            return push(Change::Update {
                owner,
                acked: false,
            });
        };
        assert_eq!(code, 200, "{b}");
        push(Change::Update { owner, acked: true });
    }
}

/// Successful audit records of `method` since `since`, counted by the id that ends
/// their resource name.
fn audited(api: &Api, method: &str, since: &str) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    let mut path = format!("/audit/v1/events?method={method}&start_time={since}&page_size=1000");
    loop {
        let b = api.ok(api.get(&path), 200);
        for e in b["data"].as_array().expect("data") {
            if e["data"]["result"]["status"] != "SUCCESS" {
                continue;
            }
            let name = e["data"]["resourceName"].as_str().unwrap_or_default();
            let id = name.rsplit('=').next().unwrap_or_default().to_owned();
            *counts.entry(id).or_default() += 1;
        }
        match b["metadata"]["next_page_token"].as_str() {
            Some(t) if !b["data"].as_array().is_some_and(Vec::is_empty) => {
                path = format!(
                    "/audit/v1/events?method={method}&start_time={since}&page_size=1000&page_token={t}"
                );
            }
            _ => return counts,
        }
    }
}

/// Check one iteration's changes against the restarted server.
fn verify(srv: &Server, api: &Api, org: &str, ledger: &[Change], since: &str, what: &str) {
    let accounts: Vec<Value> = api.all("/iam/v2/service-accounts");
    let by_name: HashMap<&str, Vec<&Value>> = accounts.iter().fold(HashMap::new(), |mut m, a| {
        m.entry(a["display_name"].as_str().unwrap_or_default())
            .or_insert_with(Vec::new)
            .push(a);
        m
    });
    let created = audited(api, "CreateServiceAccount", since);
    let keyed = audited(api, "CreateAPIKey", since);
    let bound = audited(api, "CreateRoleBinding", since);
    let updated = audited(api, "UpdateServiceAccount", since);
    let updates: HashMap<&str, bool> = ledger
        .iter()
        .filter_map(|c| match c {
            Change::Update { owner, acked } => Some((owner.as_str(), *acked)),
            _ => None,
        })
        .collect();
    for c in ledger {
        match c {
            Change::Account { name, id } => {
                let found = by_name.get(name.as_str()).cloned().unwrap_or_default();
                assert!(found.len() <= 1, "{what}: {name} twice: {found:?}");
                if id.is_some() {
                    assert_eq!(found.len(), 1, "{what}: acknowledged account {name} lost");
                }
                let Some(a) = found.first() else {
                    continue; // in flight and not there: fine, if not audited either
                };
                let sid = a["id"].as_str().expect("id");
                assert!(id.as_deref().is_none_or(|i| i == sid), "{what}: {name}");
                let desc = a["description"].as_str().unwrap_or_default();
                let want: &[&str] = match updates.get(sid) {
                    Some(true) => &["u"],
                    Some(false) => &["d", "u"],
                    None => &["d"],
                };
                assert!(
                    want.contains(&desc),
                    "{what}: {name} has {desc:?}, not {want:?}"
                );
                assert_eq!(
                    created.get(sid),
                    Some(&1),
                    "{what}: audit of {sid}'s creation"
                );
                let want_updates = usize::from(desc == "u");
                assert_eq!(
                    updated.get(sid).copied().unwrap_or(0),
                    want_updates,
                    "{what}: audit of {sid}'s update"
                );
            }
            Change::Key { owner, acked } => {
                let keys = api.all(&format!("/iam/v2/api-keys?spec.owner={owner}"));
                assert!(keys.len() <= 1, "{what}: {owner} has {} keys", keys.len());
                if let Some((id, secret)) = acked {
                    assert_eq!(keys.len(), 1, "{what}: acknowledged key {id} lost");
                    // The snapshot knows it: it authenticates (403 without roles
                    // would still be an authenticated answer; 401 is not).
                    let code = srv.api(id, secret).get("/iam/v2/roles").0;
                    assert_ne!(code, 401, "{what}: key {id} does not authenticate");
                }
                for k in &keys {
                    let kid = k["id"].as_str().expect("id");
                    assert_eq!(keyed.get(kid), Some(&1), "{what}: audit of key {kid}");
                }
            }
            Change::Binding { owner, id } => {
                let path = format!(
                    "/iam/v2/role-bindings?principal=User:{owner}&crn_pattern={}",
                    crate::cli_enc(org)
                );
                let found = api.all(&path);
                assert!(found.len() <= 1, "{what}: {owner} bound twice");
                if id.is_some() {
                    assert_eq!(found.len(), 1, "{what}: acknowledged binding {id:?} lost");
                }
                for b in &found {
                    let bid = b["id"].as_str().expect("id");
                    assert_eq!(bound.get(bid), Some(&1), "{what}: audit of binding {bid}");
                }
            }
            Change::Update { .. } => {} // checked with its account
        }
    }
    // Nothing audited that is not there.
    let there: std::collections::HashSet<&str> =
        accounts.iter().filter_map(|a| a["id"].as_str()).collect();
    for id in created.keys() {
        assert!(
            there.contains(id.as_str()),
            "{what}: audited creation of absent {id}"
        );
    }
}

/// The snapshot's sequence reaches the store's (read from /metrics).
fn snapshot_caught_up(srv: &Server) -> bool {
    let Some(text) = ureq::get(&format!("{}/metrics", srv.url))
        .call()
        .ok()
        .and_then(|r| r.into_string().ok())
    else {
        return false;
    };
    let gauge = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name) && !l.starts_with('#'))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    match (
        gauge("keygate_snapshot_sequence"),
        gauge("keygate_store_sequence"),
    ) {
        (Some(a), Some(b)) => a == b && a > 0.0,
        _ => false,
    }
}

fn crash_loop(database: Option<String>) {
    let seed: u64 = std::env::var("KEYGATE_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_2026);
    let mut rng = Rng(seed | 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let pepper = dir.path().join("pepper.key").display().to_string();
    let mut args = vec!["--pepper-file", &pepper, "--max-keys-per-owner", "100000"];
    if let Some(url) = &database {
        args.extend(["--database", url]);
    }
    let mut srv = Server::start_in(dir.path(), &args);
    let (key, secret) = srv.creds.clone().expect("first start prints credentials");
    let org = srv.admin().org_crn();
    let mut previous: Option<(Vec<Change>, String)> = None;
    let (mut total, mut in_flight) = (0, 0);
    let n = iterations();
    for i in 0..=n {
        let api = srv.api(&key, &secret);
        let what = format!("iteration {i} (KEYGATE_CRASH_SEED={seed})");
        let t0 = std::time::Instant::now();
        while !snapshot_caught_up(&srv) {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "{what}: the snapshot lags"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some((ledger, since)) = previous.take() {
            verify(&srv, &api, &org, &ledger, &since, &what);
        }
        if i == n {
            break;
        }
        let since = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let ledger = Arc::new(Mutex::new(Vec::new()));
        let workers: Vec<_> = (0..2)
            .map(|t| {
                let (api, org, ledger) = (api.clone(), org.clone(), ledger.clone());
                std::thread::spawn(move || burst(&api, &org, &format!("c{i}-{t}"), &ledger))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(20 + rng.below(400)));
        srv.child.kill().expect("kill -9");
        let _ = srv.child.wait();
        for w in workers {
            w.join().expect("a worker saw an unexpected answer");
        }
        let ledger = Arc::try_unwrap(ledger)
            .expect("workers done")
            .into_inner()
            .expect("ledger");
        total += ledger.len();
        in_flight += ledger.iter().filter(|c| !c.acknowledged()).count();
        previous = Some((ledger, since));
        srv = Server::start_in(dir.path(), &args);
    }
    eprintln!("{n} kills: {total} changes asked for, {in_flight} in flight at a kill");
    // The kills landed mid-burst: most iterations left a change in flight.
    assert!(
        in_flight * 2 >= n,
        "only {in_flight} of {n} kills caught a change in flight"
    );
}

#[test]
fn kill_9_at_random_moments_on_sqlite_leaves_every_change_whole() {
    crash_loop(None);
}

#[test]
fn kill_9_at_random_moments_on_postgresql_leaves_every_change_whole() {
    crash_loop(Some(PgServer::fresh_database("crash")));
}
