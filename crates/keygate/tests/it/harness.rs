//! Start and talk to a real keygate server.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_keygate");

pub struct Server {
    pub child: Child,
    pub url: String,
    /// The HTTP gateway's base URL.
    pub services_url: String,
    /// Bootstrap credentials (only on the first start of a data directory).
    pub creds: Option<(String, String)>,
    pub stdout: Arc<Mutex<String>>,
    pub stderr: Arc<Mutex<String>>,
}

/// Every secret the suite has seen (API secrets from create responses, passwords and
/// client secrets it sent): checked against each server's log, audit log and metrics
/// when the server is dropped. A test whose keygate wrote one of them fails.
static SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Remember a secret (short strings are skipped: they could occur by chance).
pub fn remember_secret(s: &str) {
    if s.len() >= 12 {
        if let Ok(mut v) = SECRETS.lock() {
            if !v.iter().any(|x| x == s) {
                v.push(s.to_owned());
            }
        }
    }
}

/// The first remembered secret that `text` holds.
pub fn known_secret_in(text: &str) -> Option<String> {
    let secrets = SECRETS.lock().map(|v| v.clone()).unwrap_or_default();
    secrets.into_iter().find(|x| text.contains(x.as_str()))
}

/// Forget a remembered string (the leak check's own test).
pub fn forget_secret(s: &str) {
    if let Ok(mut v) = SECRETS.lock() {
        v.retain(|x| x != s);
    }
}

/// Secret-looking fields of a JSON value, recursively.
fn remember_secrets_in(v: &Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("secret" | "password" | "client_secret" | "api_secret", Value::String(s)) => {
                        remember_secret(s)
                    }
                    _ => remember_secrets_in(x),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(remember_secrets_in),
        _ => {}
    }
}

impl Server {
    /// Whether anything this server wrote — its log (standard error), its audit log,
    /// its metrics — holds a secret the suite has seen; the first one found.
    pub fn leaked_secret(&mut self) -> Option<String> {
        let secrets = SECRETS.lock().map(|v| v.clone()).unwrap_or_default();
        let mut written = self.stderr.lock().map(|s| s.clone()).unwrap_or_default();
        // (HTTPS servers use a test CA this client does not trust: their logs only.)
        if self.is_running() && self.url.starts_with("http://") {
            if let Some((k, s)) = self.creds.clone() {
                // Read directly: Api's own answer check would stop at the first hit.
                if let Ok(r) = agent()
                    .get(&format!("{}/audit/v1/events?page_size=1000", self.url))
                    .set("Authorization", &base64_basic(&k, &s))
                    .call()
                {
                    written.push_str(&r.into_string().unwrap_or_default());
                }
                if let Ok(r) = agent().get(&format!("{}/metrics", self.url)).call() {
                    written.push_str(&r.into_string().unwrap_or_default());
                }
            }
        }
        secrets.into_iter().find(|x| written.contains(x.as_str()))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let leaked = if std::thread::panicking() {
            None
        } else {
            self.leaked_secret()
        };
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(s) = leaked {
            panic!(
                "keygate wrote a secret ({}…) to its log, audit log or metrics",
                &s[..6]
            );
        }
    }
}

fn pump(r: impl Read + Send + 'static, buf: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            if let Ok(mut b) = buf.lock() {
                b.push_str(&line);
                b.push('\n');
            }
        }
    });
}

impl Server {
    /// Start on a fresh temporary data directory (kept alive by the returned TempDir).
    pub fn start(extra: &[&str]) -> (Server, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Server::start_in(dir.path(), extra);
        (s, dir)
    }

    /// Start on `dir` (reusing its state if any).
    pub fn start_in(dir: &Path, extra: &[&str]) -> Server {
        Server::start_limited(dir, extra, &[])
    }

    /// Start on `dir` under the resource limits given as prlimit(1) options (e.g.
    /// `--nofile=600:600`, `--as=…`), none when empty.
    pub fn start_limited(dir: &Path, extra: &[&str], limits: &[&str]) -> Server {
        let mut cmd = if limits.is_empty() {
            Command::new(BIN)
        } else {
            let mut c = Command::new("prlimit");
            c.args(limits).arg(BIN);
            c
        };
        let mut child = cmd
            .args([
                "server",
                "--listen",
                "127.0.0.1:0",
                "--http-gateway-listen",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(dir.join("data"))
            .args(extra)
            .current_dir(dir)
            // A test whose keygate.toml sets log_level gets that level (the environment
            // would win over the file).
            .env(
                if std::fs::read_to_string(dir.join("keygate.toml"))
                    .is_ok_and(|t| t.contains("log_level"))
                {
                    "KEYGATE_LOG_UNUSED"
                } else {
                    "KEYGATE_LOG"
                },
                "info",
            )
            .env_remove("KEYGATE_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start keygate server");
        let stderr = Arc::new(Mutex::new(String::new()));
        pump(child.stderr.take().expect("stderr"), stderr.clone());
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let stdout = Arc::new(Mutex::new(String::new()));
        let (mut key, mut secret, mut url, mut services) = (None, None, None, None);
        for line in lines.by_ref() {
            let line = line.expect("read stdout");
            stdout.lock().expect("lock").push_str(&format!("{line}\n"));
            if let Some(k) = line.trim().strip_prefix("API key:") {
                key = Some(k.trim().to_owned());
            }
            if let Some(s) = line.trim().strip_prefix("API secret:") {
                secret = Some(s.trim().to_owned());
            }
            if let Some((_, u)) = line.split_once("Tableflow) listening on ") {
                services = Some(u.trim().to_owned());
            }
            if let Some(u) = line.strip_prefix("keygate is listening on ") {
                url = Some(u.trim().to_owned());
                break;
            }
        }
        let url = url.unwrap_or_else(|| {
            panic!(
                "server did not start; stderr:\n{}",
                stderr.lock().expect("lock")
            )
        });
        let rest = stdout.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Ok(mut b) = rest.lock() {
                    b.push_str(&line);
                    b.push('\n');
                }
            }
        });
        if let Some(s) = &secret {
            remember_secret(s);
        }
        Server {
            child,
            url,
            services_url: services.unwrap_or_default(),
            creds: key.zip(secret),
            stdout,
            stderr,
        }
    }

    pub fn admin(&self) -> Api {
        let (k, s) = self.creds.clone().expect("bootstrap credentials");
        self.api(&k, &s)
    }

    pub fn api(&self, key: &str, secret: &str) -> Api {
        Api {
            url: self.url.clone(),
            key: key.to_owned(),
            secret: secret.to_owned(),
        }
    }

    /// Whether the process is still alive (not exited, not killed by a signal).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn logs(&self) -> String {
        format!(
            "{}{}",
            self.stdout.lock().expect("lock"),
            self.stderr.lock().expect("lock")
        )
    }
}

/// A REST client with one key.
#[derive(Clone)]
pub struct Api {
    pub url: String,
    pub key: String,
    pub secret: String,
}

/// Status and JSON body (Null when empty).
pub type Resp = (u16, Value);

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build()
}

impl Api {
    pub fn raw(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        content_type: Option<&str>,
    ) -> Resp {
        let auth = base64_basic(&self.key, &self.secret);
        let mut req = agent()
            .request(method, &format!("{}{path}", self.url))
            .set("Authorization", &auth);
        if let Some(ct) = content_type {
            req = req.set("Content-Type", ct);
        }
        let res = match body {
            Some(b) => req.send_string(b),
            None => req.call(),
        };
        let (code, text) = match res {
            Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
            Err(ureq::Error::Status(c, r)) => (c, r.into_string().unwrap_or_default()),
            Err(e) => panic!("{method} {path}: {e}"),
        };
        // No answer — error bodies and console pages included — repeats a secret the
        // suite already knew (a create answer's new secret is not known yet).
        if let Some(s) = known_secret_in(&text) {
            panic!(
                "{method} {path} answered with a known secret ({}…)",
                &s[..6]
            );
        }
        let v = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if let Some(sent) = body.and_then(|b| serde_json::from_str::<Value>(b).ok()) {
            remember_secrets_in(&sent);
        }
        remember_secrets_in(&v);
        (code, v)
    }
    pub fn get(&self, path: &str) -> Resp {
        self.raw("GET", path, None, None)
    }
    pub fn delete(&self, path: &str) -> Resp {
        self.raw("DELETE", path, None, None)
    }
    pub fn post(&self, path: &str, body: Value) -> Resp {
        self.raw(
            "POST",
            path,
            Some(&body.to_string()),
            Some("application/json"),
        )
    }
    pub fn patch(&self, path: &str, body: Value) -> Resp {
        self.raw(
            "PATCH",
            path,
            Some(&body.to_string()),
            Some("application/json"),
        )
    }

    /// POST that must answer `want`; returns the body.
    pub fn ok(&self, (code, body): Resp, want: u16) -> Value {
        assert_eq!(code, want, "unexpected answer: {body}");
        body
    }

    pub fn env(&self, name: &str) -> String {
        let b = self.ok(
            self.post("/org/v2/environments", json!({ "display_name": name })),
            201,
        );
        b["id"].as_str().expect("id").to_owned()
    }

    pub fn kafka(&self, env: &str, name: &str) -> String {
        let b = self.ok(
            self.post("/cmk/v2/clusters", json!({ "spec": { "display_name": name, "environment": { "id": env }, "upstream": "127.0.0.1:9092" } })),
            202,
        );
        b["id"].as_str().expect("id").to_owned()
    }

    pub fn sa(&self, name: &str) -> String {
        let b = self.ok(
            self.post("/iam/v2/service-accounts", json!({ "display_name": name })),
            201,
        );
        b["id"].as_str().expect("id").to_owned()
    }

    pub fn user(&self, email: &str) -> String {
        let b = self.ok(
            self.post(
                "/iam/v2/users",
                json!({ "email": email, "full_name": "Test User" }),
            ),
            201,
        );
        b["id"].as_str().expect("id").to_owned()
    }

    /// Create a key; returns (key, secret).
    pub fn key(&self, owner: &str, resource: &str) -> (String, String) {
        let b = self.ok(
            self.post(
                "/iam/v2/api-keys",
                json!({ "spec": { "owner": { "id": owner }, "resource": { "id": resource } } }),
            ),
            202,
        );
        (
            b["id"].as_str().expect("id").to_owned(),
            b["spec"]["secret"].as_str().expect("secret").to_owned(),
        )
    }

    pub fn bind(&self, principal: &str, role: &str, crn: &str) -> String {
        let b = self.ok(
            self.post(
                "/iam/v2/role-bindings",
                json!({ "principal": principal, "role_name": role, "crn_pattern": crn }),
            ),
            201,
        );
        b["id"].as_str().expect("id").to_owned()
    }

    pub fn org_crn(&self) -> String {
        let (_, b) = self.get("/org/v2/organizations");
        b["data"][0]["metadata"]["resource_name"]
            .as_str()
            .expect("org crn")
            .to_owned()
    }

    /// Every item of a list endpoint.
    pub fn all(&self, path: &str) -> Vec<Value> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut next = Some(format!("{path}{sep}page_size=100"));
        let mut out = Vec::new();
        while let Some(p) = next.take() {
            let (code, page) = self.get(&p);
            assert_eq!(code, 200, "{page}");
            out.extend(page["data"].as_array().cloned().unwrap_or_default());
            next = page["metadata"]["next"]
                .as_str()
                .map(|u| u.trim_start_matches(&self.url).to_owned());
        }
        out
    }
}

pub fn base64_basic(key: &str, secret: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{key}:{secret}"))
    )
}

/// Run the CLI with a private config file.
pub struct CliEnv {
    pub config: PathBuf,
    _dir: tempfile::TempDir,
}

impl CliEnv {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        CliEnv {
            config: dir.path().join("cli.json"),
            _dir: dir,
        }
    }

    /// Run `keygate ARGS`; returns (success, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(BIN)
            .args(args)
            .env("KEYGATE_CLI_CONFIG", &self.config)
            .env_remove("KEYGATE_URL")
            .env_remove("KEYGATE_API_KEY")
            .env_remove("KEYGATE_API_SECRET")
            .output()
            .expect("run keygate");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Run, require success, parse stdout as JSON (`-o json` is added).
    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        let (ok, out, err) = self.run(&a);
        assert!(ok, "keygate {args:?} failed: {err}");
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("keygate {args:?}: not JSON ({e}): {out}"))
    }
}

/// `json!` helper for error assertions: the error detail of a response.
pub fn detail(v: &Value) -> String {
    v["errors"][0]["detail"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}
