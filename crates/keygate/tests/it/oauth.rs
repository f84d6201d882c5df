//! External OAuth end to end: a real OpenID provider (npm's oidc-provider, see
//! tests/idp), keygate's REST API and STS, and Kafka clients authenticating with
//! OAUTHBEARER through the gateway — kcat and confluent-kafka with librdkafka's OIDC
//! method, and the rdkafka crate with a token callback.

use crate::clients::run_scenario;
use crate::gateway::{
    free_ports, kcat_bin, raw_call, raw_sasl, run_kcat, sasl_bytes, wait_for_port, world, World,
};
use crate::harness::Api;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The test IdP on a loopback port.
pub struct Idp {
    child: Child,
    pub port: u16,
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Idp {
    /// Start it with these signing key ids (the first signs) and algorithm.
    pub fn start(kids: &str, alg: &str) -> Idp {
        Self::start_on(free_ports(1), kids, alg)
    }

    pub fn start_on(port: u16, kids: &str, alg: &str) -> Idp {
        Self::start_with(port, kids, alg, 300)
    }

    /// Start with access tokens living `ttl` seconds.
    pub fn start_with(port: u16, kids: &str, alg: &str, ttl: u32) -> Idp {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/idp");
        assert!(
            std::path::Path::new(&format!("{dir}/node_modules/oidc-provider")).exists(),
            "the test IdP is not installed: run scripts/test (npm ci in tests/idp)"
        );
        let mut child = Command::new("node")
            .args([&format!("{dir}/idp.mjs"), &port.to_string(), kids, alg])
            .env("IDP_TOKEN_TTL", ttl.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node (the test IdP)");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        out.read_line(&mut line).expect("idp output");
        assert!(line.contains("idp ready"), "the IdP did not start: {line}");
        // Keep draining its output so that it never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        wait_for_port(port);
        Idp { child, port }
    }

    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn token_url(&self) -> String {
        format!("{}/token", self.issuer())
    }

    /// A client_credentials access token for `client` (`payments-app`, `web-app`).
    pub fn token(&self, client: &str) -> String {
        let secret = client.replace("-app", "-secret");
        let resp = ureq::post(&self.token_url())
            .set(
                "Authorization",
                &crate::harness::base64_basic(client, &secret),
            )
            .send_form(&[("grant_type", "client_credentials"), ("scope", "kafka")])
            .expect("token request");
        let v: Value = resp.into_json().expect("token json");
        v["access_token"].as_str().expect("access_token").to_owned()
    }
}

/// A provider for `idp` and a pool admitting the `payments` group; returns their ids.
fn provider_and_pool(admin: &Api, idp: &Idp) -> (String, String) {
    // No jwks_uri: discovered from the issuer.
    let p = admin.ok(
        admin.post(
            "/iam/v2/identity-providers",
            json!({"display_name":"corp","issuer": idp.issuer()}),
        ),
        201,
    );
    assert_eq!(p["jwks_uri"], format!("{}/jwks", idp.issuer()));
    assert!(!p["keys"].as_array().expect("keys").is_empty(), "{p}");
    let op = p["id"].as_str().expect("op").to_owned();
    let pool = admin.ok(
        admin.post(
            &format!("/iam/v2/identity-providers/{op}/identity-pools"),
            json!({"display_name":"payments","identity_claim":"claims.sub",
                   "filter":"claims.aud == \"kafka\" && \"payments\" in claims.groups"}),
        ),
        201,
    );
    assert_eq!(
        pool["principal"],
        format!("User:{}", pool["id"].as_str().expect("id"))
    );
    (op, pool["id"].as_str().expect("pool").to_owned())
}

fn sts(api: &Api, fields: &[(&str, &str)]) -> (u16, Value) {
    let body: String = fields
        .iter()
        .map(|(k, v)| format!("{k}={}", crate::cli_enc(v)))
        .collect::<Vec<_>>()
        .join("&");
    api.raw(
        "POST",
        "/sts/v1/oauth2/token",
        Some(&body),
        Some("application/x-www-form-urlencoded"),
    )
}

fn exchange(api: &Api, token: &str, pool: &str) -> (u16, Value) {
    sts(
        api,
        &[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", token),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
            (
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
            ("identity_pool_id", pool),
        ],
    )
}

fn bearer(url: &str, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let req = ureq::request(method, &format!("{url}{path}"))
        .set("Authorization", &format!("Bearer {token}"));
    let res = match body {
        Some(b) => req.send_json(b),
        None => req.call(),
    };
    let (code, text) = match res {
        Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
        Err(ureq::Error::Status(c, r)) => (c, r.into_string().unwrap_or_default()),
        Err(e) => panic!("{method} {path}: {e}"),
    };
    (code, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[test]
fn providers_pools_and_the_sts_exchange_over_rest() {
    let idp = Idp::start("k1", "RS256");
    let (srv, _dir) = crate::harness::Server::start(&[]);
    let admin = srv.admin();
    let (op, pool) = provider_and_pool(&admin, &idp);
    // Filters are compiled when saved.
    let pools = format!("/iam/v2/identity-providers/{op}/identity-pools");
    for (filter, says) in [
        ("claims.aud ==", "does not compile"),
        ("\"just a string\"", "must yield a bool"),
        (&"true && ".repeat(40)[..], "longer than 300"),
    ] {
        let (code, body) = admin.post(&pools, json!({"display_name":"bad","filter":filter}));
        assert_eq!(code, 422, "{filter}: {body}");
        assert!(crate::harness::detail(&body).contains(says), "{body}");
    }
    // A bad issuer, an unknown provider.
    let (code, _) = admin.post(
        "/iam/v2/identity-providers",
        json!({"display_name":"x","issuer":"not a url"}),
    );
    assert_eq!(code, 422);
    let (code, _) = admin.get("/iam/v2/identity-providers/op-nope/identity-pools");
    assert_eq!(code, 404);
    // Keys refresh on demand: unchanged.
    let r = admin.ok(
        admin.patch(&format!("/iam/v2/identity-providers/{op}/jwks"), json!({})),
        200,
    );
    assert_eq!(r["status"]["jwks_status"], "OK");

    // The exchange: an IdP token of the payments client for the pool.
    let (code, body) = exchange(&admin, &idp.token("payments-app"), &pool);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_i64().expect("expires_in") <= 900);
    let token = body["access_token"].as_str().expect("token").to_owned();
    // A client whose token the filter refuses; a pool of nobody; malformed requests.
    let (code, body) = exchange(&admin, &idp.token("web-app"), &pool);
    assert_eq!(
        (code, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    assert_eq!(body["errors"][0]["code"], "invalid_grant", "{body}");
    let (code, _) = exchange(&admin, &idp.token("payments-app"), "pool-nope");
    assert_eq!(code, 400);
    let (code, body) = sts(&admin, &[("grant_type", "password")]);
    assert_eq!(
        (code, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let (code, body) = sts(
        &admin,
        &[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", &idp.token("payments-app")),
            ("identity_pool_id", &pool),
            ("expires_in", "1000"),
        ],
    );
    assert_eq!(
        (code, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );

    // The STS token authenticates REST calls as the pool, with the pool's roles.
    let (code, _) = bearer(
        &srv.url,
        &token,
        "POST",
        "/iam/v2/service-accounts",
        Some(json!({"display_name":"made-by-pool"})),
    );
    assert_eq!(code, 403, "no role yet");
    admin.bind(&format!("User:{pool}"), "AccountAdmin", &admin.org_crn());
    let (code, body) = bearer(
        &srv.url,
        &token,
        "POST",
        "/iam/v2/service-accounts",
        Some(json!({"display_name":"made-by-pool"})),
    );
    assert_eq!(code, 201, "{body}");
    // An IdP token itself is not accepted by REST; nor a tampered STS token.
    let (code, _) = bearer(
        &srv.url,
        &idp.token("payments-app"),
        "GET",
        "/iam/v2/service-accounts",
        None,
    );
    assert_eq!(code, 401);
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] = parts[1].chars().rev().collect();
    let (code, body) = bearer(
        &srv.url,
        &parts.join("."),
        "GET",
        "/iam/v2/service-accounts",
        None,
    );
    assert_eq!(code, 401);
    assert!(
        !body.to_string().contains("signature"),
        "the reason is not told: {body}"
    );

    // keygate's keys are published; rotating with retire_previous kills old tokens.
    let (code, jwks) = admin.get("/.well-known/jwks.json");
    assert_eq!(code, 200);
    assert_eq!(jwks["keys"].as_array().expect("keys").len(), 1);
    let rotated = admin.ok(
        admin.post(
            "/sts/v1/signing-keys:rotate",
            json!({"retire_previous": true}),
        ),
        201,
    );
    let (_, jwks) = admin.get("/.well-known/jwks.json");
    assert_eq!(jwks["keys"][0]["kid"], rotated["kid"]);
    let (code, _) = bearer(&srv.url, &token, "GET", "/iam/v2/service-accounts", None);
    assert_eq!(code, 401, "a token signed by a retired key");
    let (_, body) = exchange(&admin, &idp.token("payments-app"), &pool);
    let fresh = body["access_token"].as_str().expect("token");
    let (code, _) = bearer(&srv.url, fresh, "GET", "/iam/v2/service-accounts", None);
    assert_eq!(code, 200);

    // A disabled pool authenticates nobody; deleting the provider removes its pools
    // and their role bindings.
    admin.ok(
        admin.patch(&format!("{pools}/{pool}"), json!({"state":"DISABLED"})),
        200,
    );
    let (code, _) = bearer(&srv.url, fresh, "GET", "/iam/v2/service-accounts", None);
    assert_eq!(code, 401);
    admin.ok(
        admin.delete(&format!("/iam/v2/identity-providers/{op}")),
        204,
    );
    let bindings = admin.all(&format!(
        "/iam/v2/role-bindings?crn_pattern={}&principal=User:{pool}",
        admin.org_crn()
    ));
    assert!(bindings.is_empty(), "{bindings:?}");
    let logs = srv.logs();
    assert!(
        !logs.contains(&token) && !logs.contains(fresh),
        "tokens never reach the log"
    );
}

#[test]
fn idp_key_rotation_is_followed_and_removed_keys_stop_working() {
    let port = free_ports(1);
    let idp = Idp::start_on(port, "k1", "ES256");
    let (srv, _dir) = crate::harness::Server::start(&[]);
    let admin = srv.admin();
    let (op, pool) = provider_and_pool(&admin, &idp);
    let old = idp.token("payments-app");
    assert_eq!(exchange(&admin, &old, &pool).0, 200);
    // The IdP rotates to a new key (k2) and drops k1.
    drop(idp);
    let idp = Idp::start_on(port, "k2", "ES256");
    let new = idp.token("payments-app");
    // Unknown kid → one refresh → accepted.
    let (code, body) = exchange(&admin, &new, &pool);
    assert_eq!(code, 200, "{body}");
    assert!(srv.logs().contains("unknown key id"));
    // k1 is gone from the refreshed JWKS: the old token no longer verifies.
    assert_eq!(exchange(&admin, &old, &pool).0, 400);
    let p = admin.ok(admin.get(&format!("/iam/v2/identity-providers/{op}")), 200);
    assert_eq!(p["keys"][0]["kid"], "k2", "{p}");
    // The IdP goes away: a refresh reports it and keeps the stored keys.
    drop(idp);
    let r = admin.ok(
        admin.patch(&format!("/iam/v2/identity-providers/{op}/jwks"), json!({})),
        200,
    );
    assert_eq!(r["status"]["jwks_status"], "ERROR_FETCHING_JWKS");
    assert_eq!(r["identity_provider"]["keys"][0]["kid"], "k2");
    assert_eq!(
        exchange(&admin, &new, &pool).0,
        200,
        "stored keys keep working"
    );
}

/// A world with the IdP registered, a pool for payments-app, and ACLs for the pool.
fn oauth_world(idp: &Idp) -> (World, String) {
    oauth_world_on(world(&["orders", "payments"], ""), idp)
}

fn oauth_world_on(w: World, idp: &Idp) -> (World, String) {
    let (_, pool) = provider_and_pool(&w.admin, idp);
    let acls: Vec<Value> = [("TOPIC", "orders", "WRITE"), ("TOPIC", "orders", "READ"), ("GROUP", "oauth-group", "READ")]
        .iter()
        .map(|(rt, rn, op)| json!({"resource_type":rt,"resource_name":rn,"pattern_type":"LITERAL","principal":format!("User:{pool}"),"operation":op,"permission":"ALLOW"}))
        .collect();
    w.admin.ok(
        w.admin.post(
            &format!("/kafka/v3/clusters/{}/acls:batch", w.lkc),
            json!({"data": acls}),
        ),
        201,
    );
    (w, pool)
}

fn kcat_oidc(
    w: &World,
    idp: &Idp,
    client: &str,
    extensions: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> (bool, String) {
    let mut cmd = Command::new(kcat_bin());
    cmd.env("LD_LIBRARY_PATH", librdkafka_with_oidc())
        .args(["-b", &w.bootstrap])
        .args([
            "-X",
            "security.protocol=SASL_PLAINTEXT",
            "-X",
            "sasl.mechanism=OAUTHBEARER",
        ])
        .args(["-X", "sasl.oauthbearer.method=oidc"])
        .arg("-X")
        .arg(format!("sasl.oauthbearer.client.id={client}"))
        .arg("-X")
        .arg(format!(
            "sasl.oauthbearer.client.secret={}",
            client.replace("-app", "-secret")
        ))
        .arg("-X")
        .arg(format!(
            "sasl.oauthbearer.token.endpoint.url={}",
            idp.token_url()
        ))
        .args(["-X", "sasl.oauthbearer.scope=kafka"])
        .arg("-X")
        .arg(format!("sasl.oauthbearer.extensions={extensions}"))
        .args(["-X", "fetch.wait.max.ms=10", "-m", "8"])
        .args(args);
    run_kcat(cmd, stdin)
}

/// A directory holding a `librdkafka.so.1` built with libcurl, for Debian's kcat.
///
/// Debian's librdkafka (2.0.2) is built without libcurl, so its OIDC method is refused
/// ("not supported in this build"); the librdkafka that PyPI's confluent-kafka ships
/// has it, and exposes the same C ABI. kcat stays Debian's.
fn librdkafka_with_oidc() -> String {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let libs = std::fs::read_dir(format!("{root}/.venv/lib"))
        .expect("the test virtualenv is missing: run scripts/test")
        .filter_map(Result::ok)
        .map(|d| d.path().join("site-packages/confluent_kafka.libs"))
        .find(|p| p.exists())
        .expect("confluent-kafka's bundled librdkafka (run scripts/test)");
    let lib = std::fs::read_dir(&libs)
        .expect("libs")
        .filter_map(Result::ok)
        .map(|d| d.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("librdkafka") && n.ends_with(".so.1"))
        })
        .expect("librdkafka in confluent_kafka.libs");
    let dir = std::env::temp_dir().join(format!("keygate-rdkafka-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let link = dir.join("librdkafka.so.1");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&lib, &link).expect("symlink");
    dir.display().to_string()
}

#[test]
fn kcat_with_debians_own_librdkafka_sends_an_unsigned_token_and_is_refused() {
    // librdkafka's default OAUTHBEARER method builds an unsecured JWT (alg none).
    let idp = Idp::start("k1", "RS256");
    let (w, pool) = oauth_world(&idp);
    let out = Command::new("kcat")
        .env_remove("LD_LIBRARY_PATH")
        .args(["-b", &w.bootstrap, "-L", "-m", "5"])
        .args(["-X", "enable.sasl.oauthbearer.unsecure.jwt=true"])
        .args([
            "-X",
            "security.protocol=SASL_PLAINTEXT",
            "-X",
            "sasl.mechanism=OAUTHBEARER",
        ])
        .arg("-X")
        .arg(format!(
            "sasl.oauthbearer.config=principal=admin extension_identityPoolId={pool}"
        ))
        .output()
        .expect("kcat");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    let logs = w.srv.logs();
    assert!(
        logs.contains("unsigned tokens (alg none) are refused"),
        "{text}\n{logs}"
    );
}

#[test]
fn kcat_with_oidc_produces_and_consumes_as_the_pool() {
    let idp = Idp::start("k1", "RS256");
    let (w, pool) = oauth_world(&idp);
    let ext = format!("logicalCluster={},identityPoolId={pool}", w.lkc);
    let (ok, out) = kcat_oidc(
        &w,
        &idp,
        "payments-app",
        &ext,
        &["-P", "-t", "orders"],
        Some("o1\no2\n"),
    );
    assert!(ok, "{out}");
    let (ok, out) = kcat_oidc(
        &w,
        &idp,
        "payments-app",
        &ext,
        &["-C", "-t", "orders", "-o", "beginning", "-e"],
        None,
    );
    assert!(ok && out.contains("o1") && out.contains("o2"), "{out}");
    // Without identityPoolId the matching pool applies.
    let (ok, out) = kcat_oidc(
        &w,
        &idp,
        "payments-app",
        &format!("logicalCluster={}", w.lkc),
        &["-C", "-t", "orders", "-o", "beginning", "-e"],
        None,
    );
    assert!(ok && out.contains("o1"), "{out}");
    // The pool may not write `payments`: denied by the gateway.
    let (_, out) = kcat_oidc(
        &w,
        &idp,
        "payments-app",
        &ext,
        &["-P", "-t", "payments"],
        Some("x\n"),
    );
    assert!(
        out.contains("TOPIC_AUTHORIZATION_FAILED") || out.contains("authorization failed"),
        "{out}"
    );
    // A client the filter refuses; a logicalCluster naming another cluster.
    let (ok, out) = kcat_oidc(&w, &idp, "web-app", &ext, &["-L"], None);
    assert!(!ok && out.to_lowercase().contains("authenticat"), "{out}");
    let (ok, out) = kcat_oidc(
        &w,
        &idp,
        "payments-app",
        &format!("logicalCluster=lkc-other,identityPoolId={pool}"),
        &["-L"],
        None,
    );
    assert!(!ok && out.to_lowercase().contains("authenticat"), "{out}");
    let logs = w.srv.logs();
    assert!(
        logs.contains("filter of identity pool")
            && logs.contains("logicalCluster names another cluster"),
        "the reasons are logged"
    );
}

#[test]
fn oauthbearer_over_sasl_ssl_with_confluent_kafka() {
    let certs = tempfile::tempdir().expect("tempdir");
    let pki = crate::tls::Pki::new(certs.path(), "oauth-tls-ca");
    let idp = Idp::start("k1", "RS256");
    let (w, pool) = oauth_world_on(crate::tls::tls_world(&pki, ""), &idp);
    let ext = format!("logicalCluster={},identityPoolId={pool}", w.lkc);
    let ca = pki.ca.display().to_string();
    let env = [
        ("TOPIC", "orders"),
        ("GROUP", "oauth-group"),
        ("OIDC_TOKEN_URL", &idp.token_url()[..]),
        ("OIDC_EXTENSIONS", &ext[..]),
        ("CA_FILE", &ca[..]),
    ];
    let (ok, out) = run_scenario(
        "confluent-group",
        &w.bootstrap,
        "payments-app",
        "payments-secret",
        &env,
    );
    assert!(ok, "OAUTHBEARER over SASL_SSL: {out}");
}

#[test]
fn confluent_kafka_with_oidc_uses_a_consumer_group_as_the_pool() {
    let idp = Idp::start("k1", "PS256");
    let (w, pool) = oauth_world(&idp);
    let ext = format!("logicalCluster={},identityPoolId={pool}", w.lkc);
    let env = [
        ("TOPIC", "orders"),
        ("GROUP", "oauth-group"),
        ("OIDC_TOKEN_URL", &idp.token_url()[..]),
        ("OIDC_EXTENSIONS", &ext[..]),
    ];
    let (ok, out) = run_scenario(
        "confluent-group",
        &w.bootstrap,
        "payments-app",
        "payments-secret",
        &env,
    );
    assert!(ok, "{out}");
    let (ok, out) = run_scenario(
        "confluent-group",
        &w.bootstrap,
        "web-app",
        "web-secret",
        &env,
    );
    assert!(!ok, "a client outside the pool: {out}");
}

#[test]
fn rdkafka_with_a_token_callback_and_an_sts_token() {
    use rdkafka::client::OAuthToken;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::ClientContext;

    /// The rdkafka crate carries no SASL extensions: the pool is found by matching.
    struct Tokens {
        token: String,
    }
    impl rdkafka::consumer::ConsumerContext for Tokens {}
    impl ClientContext for Tokens {
        const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;
        fn generate_oauth_token(
            &self,
            _config: Option<&str>,
        ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
            Ok(OAuthToken {
                token: self.token.clone(),
                principal_name: "pool".into(),
                lifetime_ms: chrono_now_ms() + 300_000,
            })
        }
    }
    fn chrono_now_ms() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
    let idp = Idp::start("k1", "EdDSA");
    let (w, pool) = oauth_world(&idp);
    // An STS token (keygate's own) authenticates at the gateway too.
    let (code, body) = exchange(&w.admin, &idp.token("payments-app"), &pool);
    assert_eq!(code, 200, "{body}");
    for token in [
        idp.token("payments-app"),
        body["access_token"].as_str().expect("token").to_owned(),
    ] {
        let consumer: BaseConsumer<Tokens> = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &w.bootstrap)
            .set("security.protocol", "SASL_PLAINTEXT")
            .set("sasl.mechanism", "OAUTHBEARER")
            .set("group.id", "oauth-group")
            .create_with_context(Tokens { token })
            .expect("consumer");
        // The token callback runs from poll.
        for _ in 0..5 {
            let _ = consumer.poll(Duration::from_millis(100));
        }
        let md = consumer
            .fetch_metadata(None, Duration::from_secs(15))
            .expect("metadata through the gateway");
        let topics: Vec<&str> = md.topics().iter().map(|t| t.name()).collect();
        assert!(
            topics.contains(&"orders") && !topics.contains(&"payments"),
            "{topics:?}"
        );
    }
}

#[test]
fn cli_manages_providers_and_pools() {
    let idp = Idp::start("k1", "RS256");
    let (srv, _dir) = crate::harness::Server::start(&[]);
    let (key, secret) = srv.creds.clone().expect("creds");
    let cli = crate::harness::CliEnv::new();
    let (ok, _, err) = cli.run(&[
        "login",
        "--url",
        &srv.url,
        "--api-key",
        &key,
        "--api-secret",
        &secret,
    ]);
    assert!(ok, "{err}");
    let p = cli.json(&[
        "iam",
        "provider",
        "create",
        "--name",
        "corp",
        "--issuer",
        &idp.issuer(),
    ]);
    let op = p["id"].as_str().expect("id").to_owned();
    assert_eq!(p["state"], "ENABLED");
    let filter = r#"claims.aud == "kafka" && "payments" in claims.groups"#;
    let pool = cli.json(&[
        "iam",
        "pool",
        "create",
        "--provider",
        &op,
        "--name",
        "payments",
        "--identity-claim",
        "claims.sub",
        "--filter",
        filter,
    ]);
    assert_eq!(pool["filter"], filter);
    let pools = cli.json(&["iam", "pool", "list", "--provider", &op]);
    assert_eq!(pools.as_array().map(Vec::len), Some(1), "{pools}");
    let r = cli.json(&["iam", "provider", "refresh-keys", &op]);
    assert_eq!(r["status"]["jwks_status"], "OK");
    // A filter that does not compile: the server's message, a non-zero exit.
    let (ok, _, err) = cli.run(&[
        "iam",
        "pool",
        "create",
        "--provider",
        &op,
        "--name",
        "bad",
        "--filter",
        "claims.aud ==",
    ]);
    assert!(!ok && err.contains("does not compile"), "{err}");
    let (ok, out, _) = cli.run(&["iam", "provider", "list"]);
    assert!(
        ok && out.contains("corp") && out.contains(&idp.issuer()),
        "{out}"
    );
    let pool_id = pool["id"].as_str().expect("pool");
    cli.json(&[
        "iam",
        "pool",
        "update",
        pool_id,
        "--provider",
        &op,
        "--state",
        "DISABLED",
    ]);
    let (ok, _, _) = cli.run(&["iam", "pool", "delete", pool_id, "--provider", &op]);
    assert!(ok);
    let (ok, _, _) = cli.run(&["iam", "provider", "delete", &op]);
    assert!(ok);
}

#[test]
fn confluent_kafka_re_authenticates_with_fresh_tokens() {
    // Tokens live 12 s: session_lifetime_ms follows exp, so the client must fetch a new
    // token and re-authenticate (KIP-368) to keep producing for 20 s.
    let idp = Idp::start_with(free_ports(1), "k1", "RS256", 12);
    let (w, pool) = oauth_world(&idp);
    let ext = format!("logicalCluster={},identityPoolId={pool}", w.lkc);
    let env = [
        ("TOPIC", "orders"),
        ("SECONDS", "20"),
        ("OIDC_TOKEN_URL", &idp.token_url()[..]),
        ("OIDC_EXTENSIONS", &ext[..]),
    ];
    let (ok, out) = run_scenario(
        "long-producer",
        &w.bootstrap,
        "payments-app",
        "payments-secret",
        &env,
    );
    assert!(ok, "{out}");
    let logs = w.srv.logs();
    assert!(
        logs.contains("re-authenticated"),
        "no re-authentication: {out}"
    );
}

/// Parse a SaslAuthenticate v1 response body.
fn sasl_auth_v1(r: &[u8]) -> (i16, Vec<u8>, i64) {
    let code = i16::from_be_bytes([r[0], r[1]]);
    let mut at = 2;
    let mlen = i16::from_be_bytes([r[at], r[at + 1]]);
    at += 2 + mlen.max(0) as usize;
    let blen = i32::from_be_bytes([r[at], r[at + 1], r[at + 2], r[at + 3]]) as usize;
    at += 4;
    let bytes = r[at..at + blen].to_vec();
    at += blen;
    let lifetime = i64::from_be_bytes(r[at..at + 8].try_into().expect("8 bytes"));
    (code, bytes, lifetime)
}

#[test]
fn oauthbearer_on_the_wire_lifetime_challenge_and_pool_revocation() {
    use std::io::{Read, Write};
    let idp = Idp::start("k1", "ES256");
    let (w, pool) = oauth_world(&idp);
    let addr: std::net::SocketAddr = w.bootstrap.parse().expect("addr");
    let token = idp.token("payments-app");
    let msg = format!(
        "n,,\x01auth=Bearer {token}\x01logicalCluster={}\x01identityPoolId={pool}\x01\x01",
        w.lkc
    );
    let (mut c, r) = raw_sasl(addr, b"OAUTHBEARER", msg.as_bytes());
    let (code, bytes, lifetime) = sasl_auth_v1(&r);
    assert_eq!(code, 0);
    assert!(bytes.is_empty(), "success carries empty auth bytes");
    // The token lives 300 s: the session lasts what is left of it, not the 1 h maximum.
    assert!(
        (250_000..=300_000).contains(&lifetime),
        "session_lifetime_ms {lifetime}"
    );

    // Disabling the pool ends the open session within a second.
    let op = w.admin.all("/iam/v2/identity-providers")[0]["id"]
        .as_str()
        .expect("op")
        .to_owned();
    w.admin.ok(
        w.admin.patch(
            &format!("/iam/v2/identity-providers/{op}/identity-pools/{pool}"),
            json!({"state":"DISABLED"}),
        ),
        200,
    );
    std::thread::sleep(Duration::from_millis(1200));
    let _ = c.write_all(&[0, 0, 0, 12, 0, 3, 0, 1, 0, 0, 0, 7, 0, 0, 0xff, 0xff]);
    let mut buf = [0u8; 16];
    assert!(
        matches!(c.read(&mut buf), Ok(0) | Err(_)),
        "the connection of a disabled pool is closed"
    );

    // A refused token: the RFC 7628 challenge first, error 58 after the client's %x01.
    let (mut c, r) = raw_sasl(addr, b"OAUTHBEARER", msg.as_bytes());
    let (code, bytes, _) = sasl_auth_v1(&r);
    assert_eq!(code, 0);
    assert_eq!(bytes, br#"{"status":"invalid_token"}"#);
    let resp = raw_call(&mut c, 36, 1, 3, false, &sasl_bytes(&[1]));
    let (code, _, _) = sasl_auth_v1(&resp);
    assert_eq!(code, 58, "SASL_AUTHENTICATION_FAILED");
    let text = String::from_utf8_lossy(&resp);
    assert!(
        !text.contains("disabled") && !text.contains("pool"),
        "the reason is not told: {text}"
    );
    assert!(w
        .srv
        .logs()
        .contains(&format!("identity pool {pool} is disabled")));

    // Audited: the success (as the pool, with the token's subject) and the refusal,
    // by pool — and the token itself nowhere.
    let ok = crate::audit::wait_for(
        &w.admin,
        "method=kafka.Authentication",
        "OAUTHBEARER success",
        |e| e["data"]["result"]["status"] == "SUCCESS",
    );
    assert_eq!(
        ok["data"]["authenticationInfo"]["principal"],
        format!("User:{pool}")
    );
    assert_eq!(
        ok["data"]["authenticationInfo"]["metadata"]["mechanism"],
        "SASL_OAUTHBEARER"
    );
    assert_eq!(
        ok["data"]["authenticationInfo"]["metadata"]["identifier"],
        pool.as_str()
    );
    assert_eq!(ok["data"]["authenticationInfo"]["identity"], "payments-app");
    let refused = crate::audit::wait_for(
        &w.admin,
        "method=kafka.Authentication",
        "OAUTHBEARER refusal",
        |e| e["data"]["result"]["status"] == "UNAUTHENTICATED",
    );
    assert_eq!(
        refused["data"]["authenticationInfo"]["metadata"]["identifier"],
        pool.as_str()
    );
    let (code, _) = exchange(&w.admin, &token, "pool-nope");
    assert_eq!(code, 400);
    crate::audit::wait_for(&w.admin, "", "refused token exchange", |e| {
        e["type"] == "io.keygate.iam/authentication"
            && e["data"]["authenticationInfo"]["metadata"]["mechanism"] == "OAUTH_TOKEN_EXCHANGE"
    });
    let all = serde_json::to_string(&crate::audit::events(&w.admin, "")).unwrap_or_default();
    let signature = token.rsplit('.').next().unwrap_or_default();
    assert!(
        !all.contains(&token) && !all.contains(signature),
        "a token is in the audit log"
    );
}

/// The HTTP gateway takes the same tokens as the Kafka gateway: an IdP token for the
/// pool the request names (`Confluent-Identity-Pool-Id`) or every matching pool, and
/// keygate's STS tokens; the pool's role bindings decide.
#[test]
fn http_gateway_accepts_pool_and_sts_tokens() {
    let idp = Idp::start("k1", "RS256");
    let sr = crate::services::sr_world("");
    let admin = &sr.w.admin;
    let (_, pool) = provider_and_pool(admin, &idp);
    admin.bind(
        &format!("User:{pool}"),
        "DeveloperRead",
        &format!("{}/subject=orders*", sr.crn),
    );
    let (_, steward) = sr.principal("oauth-steward", "DataSteward", "@env");
    for s in ["orders-value", "payments-value"] {
        let body = json!({"schema": format!("{{\"type\":\"record\",\"name\":\"R{}\",\"fields\":[]}}", s.len())});
        steward.ok(steward.post(&format!("/subjects/{s}/versions"), body), 200);
    }
    let base = format!("{}/sr/{}", sr.w.srv.services_url, sr.lsrc);
    let call = |token: &str, pool_header: Option<&str>, path: &str| {
        let mut req =
            ureq::get(&format!("{base}{path}")).set("Authorization", &format!("Bearer {token}"));
        if let Some(p) = pool_header {
            req = req.set("Confluent-Identity-Pool-Id", p);
        }
        match req.call() {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(c, _)) => c,
            Err(e) => panic!("{e}"),
        }
    };
    let token = idp.token("payments-app");
    assert_eq!(
        call(&token, Some(&pool), "/subjects/orders-value/versions"),
        200
    );
    assert_eq!(call(&token, None, "/subjects/orders-value/versions"), 200);
    assert_eq!(
        call(&token, Some(&pool), "/subjects/payments-value/versions"),
        403
    );
    assert_eq!(call(&token, Some("pool-nonexistent"), "/subjects"), 401);
    assert_eq!(call(&idp.token("web-app"), None, "/subjects"), 401);
    let tampered = format!("{}x", &token[..token.len() - 1]);
    assert_eq!(call(&tampered, None, "/subjects"), 401);
    let (code, issued) = exchange(admin, &token, &pool);
    assert_eq!(code, 200, "{issued}");
    let sts_token = issued["access_token"].as_str().expect("sts token");
    assert_eq!(
        call(sts_token, None, "/subjects/orders-value/versions"),
        200
    );
    assert_eq!(
        call(sts_token, None, "/subjects/payments-value/versions"),
        403
    );
    let (code, subjects) = bearer(&base, sts_token, "GET", "/subjects", None);
    assert_eq!((code, subjects), (200, json!(["orders-value"])));
    // Tokens never reach the log.
    let logs = sr.w.srv.logs();
    assert!(
        !logs.contains(&token[token.len() - 20..])
            && !logs.contains(&sts_token[sts_token.len() - 20..])
    );
}
