//! Server settings, layered: built-in defaults, then `keygate.toml` (or `--config`),
//! then `KEYGATE_*` environment variables, then command-line flags. Clap merges the
//! last two; the file fills in what neither set.

use anyhow::{bail, Context};
use clap::Args;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `keygate server` flags (each also a `KEYGATE_…` variable).
#[derive(Debug, Clone, Args, Default)]
pub(crate) struct ServerArgs {
    /// Address of the REST API [default: 127.0.0.1:8080]
    #[arg(long, env = "KEYGATE_LISTEN")]
    pub(crate) listen: Option<SocketAddr>,
    /// Directory for the embedded database and the pepper file [default: ./keygate-data]
    #[arg(long, env = "KEYGATE_DATA_DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Database URL: sqlite:///path/to.db or postgres://user:pass@host:5432/db
    /// [default: sqlite in the data directory]
    #[arg(long, env = "KEYGATE_DATABASE")]
    pub(crate) database: Option<String>,
    /// PostgreSQL connections this instance pools [default: 16]
    #[arg(long, env = "KEYGATE_DATABASE_POOL_SIZE")]
    pub(crate) database_pool_size: Option<usize>,
    /// The pepper keying every API secret's hash; every instance sharing a database
    /// needs the same file [default: <data-dir>/pepper.key]
    #[arg(long, env = "KEYGATE_PEPPER_FILE")]
    pub(crate) pepper_file: Option<PathBuf>,
    /// Seconds the gateways keep authenticating from their snapshot while the database
    /// is unreachable [default: 300]
    #[arg(long, env = "KEYGATE_MAX_STALENESS_S")]
    pub(crate) max_staleness_s: Option<u64>,
    /// Base URL clients use to reach this server (for links) [default: http://<listen>]
    #[arg(long, env = "KEYGATE_PUBLIC_URL")]
    pub(crate) public_url: Option<String>,
    /// Maximum API keys per owner [default: 10]
    #[arg(long, env = "KEYGATE_MAX_KEYS_PER_OWNER")]
    pub(crate) max_keys_per_owner: Option<u32>,
    /// Address the Kafka gateway listeners bind [default: 127.0.0.1]
    #[arg(long, env = "KEYGATE_GATEWAY_LISTEN_HOST")]
    pub gateway_listen_host: Option<std::net::IpAddr>,
    /// Host name Kafka clients are told to connect to [default: the listen host]
    #[arg(long, env = "KEYGATE_GATEWAY_ADVERTISED_HOST")]
    pub gateway_advertised_host: Option<String>,
    /// First gateway port: cluster slot N uses base + N*ports_per_cluster (bootstrap) and
    /// the ports after it (one per broker) [default: 19092]
    #[arg(long, env = "KEYGATE_GATEWAY_PORT_BASE")]
    pub gateway_port_base: Option<u16>,
    /// PEM certificate chain of the REST API and console: serve HTTPS (HTTP/1.1 and
    /// HTTP/2). Needs --tls-key; reloaded when the file changes or at SIGHUP.
    #[arg(long, env = "KEYGATE_TLS_CERT", requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "KEYGATE_TLS_KEY", requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,
    /// PEM certificate chain of the Kafka gateway: clients connect with SASL_SSL.
    /// Needs --gateway-tls-key; reloaded when the file changes or at SIGHUP.
    #[arg(long, env = "KEYGATE_GATEWAY_TLS_CERT", requires = "gateway_tls_key")]
    pub(crate) gateway_tls_cert: Option<PathBuf>,
    /// PEM private key of --gateway-tls-cert.
    #[arg(long, env = "KEYGATE_GATEWAY_TLS_KEY", requires = "gateway_tls_cert")]
    pub(crate) gateway_tls_key: Option<PathBuf>,
    /// Serve every cluster on one TLS port, routed by SNI: bootstrap
    /// `<cluster-id>.<domain>:9092`, brokers `b<node-id>-<cluster-id>.<domain>:9092`
    /// (needs the gateway certificate, valid for `*.<domain>`).
    #[arg(long, env = "KEYGATE_GATEWAY_SNI_DOMAIN")]
    pub(crate) gateway_sni_domain: Option<String>,
    /// Address of the HTTP gateway (Schema Registry, ksqlDB, Flink, Tableflow)
    /// [default: 127.0.0.1:8090]
    #[arg(long, env = "KEYGATE_HTTP_GATEWAY_LISTEN")]
    pub(crate) http_gateway_listen: Option<SocketAddr>,
    /// Serve Prometheus metrics (`/metrics`) on this address only, instead of on the
    /// REST listener.
    #[arg(long, env = "KEYGATE_METRICS_LISTEN")]
    pub(crate) metrics_listen: Option<SocketAddr>,
    /// Route `lsrc-….<domain>` and `lksqlc-….<domain>` by host at the HTTP gateway.
    #[arg(long, env = "KEYGATE_HTTP_GATEWAY_DOMAIN")]
    pub(crate) http_gateway_domain: Option<String>,
    /// Append audit records to this JSON-lines file (rotated by size).
    #[arg(long, env = "KEYGATE_AUDIT_FILE")]
    pub(crate) audit_file: Option<PathBuf>,
    /// Deliver audit records to a Kafka topic on these brokers (host:port,…).
    #[arg(long, env = "KEYGATE_AUDIT_KAFKA_BOOTSTRAP")]
    pub(crate) audit_kafka_bootstrap: Option<String>,
    /// Settings file [default: ./keygate.toml if it exists]
    #[arg(long, env = "KEYGATE_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Print a commented example configuration and exit
    #[arg(long)]
    pub(crate) print_default_config: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database: Option<String>,
    pepper_file: Option<PathBuf>,
    database_pool_size: Option<usize>,
    max_staleness_s: Option<u64>,
    public_url: Option<String>,
    max_keys_per_owner: Option<u32>,
    auth_failure_delay_ms: Option<u64>,
    key_usage_flush_ms: Option<u64>,
    organization_name: Option<String>,
    admin_email: Option<String>,
    crn_authority: Option<String>,
    gateway_listen_host: Option<std::net::IpAddr>,
    gateway_advertised_host: Option<String>,
    gateway_port_base: Option<u16>,
    gateway_ports_per_cluster: Option<u16>,
    gateway_max_frame_bytes: Option<usize>,
    gateway_auth_timeout_ms: Option<u64>,
    gateway_max_session_lifetime_s: Option<u64>,
    oauth_clock_skew_s: Option<u64>,
    oauth_jwks_refresh_s: Option<u64>,
    oauth_unknown_kid_refresh_s: Option<u64>,
    oauth_fetch_timeout_ms: Option<u64>,
    sts_key_rotation_h: Option<u64>,
    audit_enabled: Option<bool>,
    audit_database: Option<bool>,
    audit_retention_h: Option<u64>,
    /// Finer than hours (tests); wins over audit_retention_h.
    audit_retention_s: Option<u64>,
    audit_summary_interval_s: Option<u64>,
    audit_queue: Option<usize>,
    audit_file: Option<PathBuf>,
    audit_file_max_mb: Option<u64>,
    audit_file_keep: Option<u32>,
    audit_kafka_bootstrap: Option<String>,
    audit_kafka_topic: Option<String>,
    audit_kafka_partitions: Option<i32>,
    audit_kafka_timeout_ms: Option<u64>,
    audit_kafka_properties: Option<std::collections::BTreeMap<String, String>>,
    audit_max_records_per_credential: Option<u32>,
    http_max_connections: Option<usize>,
    http_max_connections_per_ip: Option<usize>,
    http_header_timeout_ms: Option<u64>,
    http_request_timeout_ms: Option<u64>,
    http_write_timeout_ms: Option<u64>,
    gateway_max_in_flight: Option<usize>,
    gateway_write_timeout_ms: Option<u64>,
    gateway_max_connections: Option<usize>,
    gateway_max_connections_per_ip: Option<usize>,
    gateway_max_unauthenticated: Option<usize>,
    gateway_max_connections_per_cluster: Option<usize>,
    gateway_max_connections_per_principal: Option<usize>,
    gateway_max_connection_creation_rate: Option<u32>,
    gateway_idle_timeout_s: Option<u64>,
    auth_throttle_free_failures: Option<u32>,
    auth_throttle_max_penalty_s: Option<u64>,
    password_hash_concurrency: Option<usize>,
    password_hash_wait_ms: Option<u64>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    gateway_tls_cert: Option<PathBuf>,
    gateway_tls_key: Option<PathBuf>,
    gateway_require_tls: Option<bool>,
    tls_reload_check_s: Option<u64>,
    gateway_sni_domain: Option<String>,
    gateway_sni_port: Option<u16>,
    gateway_tls_cluster_dir: Option<PathBuf>,
    http_gateway_listen: Option<SocketAddr>,
    metrics_listen: Option<SocketAddr>,
    shutdown_grace_s: Option<u64>,
    metrics: Option<bool>,
    log_level: Option<String>,
    http_gateway_public_url: Option<String>,
    http_gateway_domain: Option<String>,
    http_gateway_tls_cert: Option<PathBuf>,
    http_gateway_tls_key: Option<PathBuf>,
    http_gateway_max_request_mb: Option<u64>,
    http_gateway_max_response_mb: Option<u64>,
    http_gateway_upstream_timeout_ms: Option<u64>,
    http_gateway_request_timeout_ms: Option<u64>,
    http_gateway_max_connections: Option<usize>,
    http_gateway_max_connections_per_ip: Option<usize>,
}

/// Resolved settings.
#[derive(Debug, Clone)]
pub(crate) struct ServerConfig {
    pub(crate) listen: SocketAddr,
    pub(crate) data_dir: PathBuf,
    pub(crate) database: Database,
    pub(crate) pepper_file: PathBuf,
    pub(crate) max_staleness: Duration,
    pub(crate) public_url: Option<String>,
    pub(crate) max_keys_per_owner: u32,
    pub(crate) auth_failure_delay: Duration,
    pub(crate) key_usage_flush: Duration,
    pub(crate) organization_name: String,
    pub(crate) admin_email: String,
    pub(crate) crn_authority: String,
    pub(crate) gateway: keygate_kafka::GatewayConfig,
    pub(crate) oauth: OAuthFileConfig,
    pub(crate) audit: AuditConfig,
    pub(crate) http: crate::http::HttpLimits,
    pub(crate) auth_throttle: keygate_iam::ThrottleConfig,
    pub(crate) password_concurrency: usize,
    pub(crate) password_wait: Duration,
    pub(crate) tls: TlsConfig,
    pub(crate) http_gateway: HttpGatewaySettings,
    /// Where `/metrics` is served: its own address, or (None) the REST listener.
    pub(crate) metrics_listen: Option<SocketAddr>,
    /// On SIGTERM, how long connections get to finish what they started.
    pub(crate) shutdown_grace: Duration,
    /// Whether Prometheus metrics are recorded and served.
    pub(crate) metrics: bool,
    /// The log filter from the file (`KEYGATE_LOG` wins over it).
    pub(crate) log_level: Option<String>,
}

/// The HTTP gateway's listener and behaviour.
#[derive(Debug, Clone)]
pub(crate) struct HttpGatewaySettings {
    pub(crate) listen: SocketAddr,
    /// What clients are told (default: http(s)://<listen>).
    pub(crate) public_url: Option<String>,
    pub(crate) tls: Option<(PathBuf, PathBuf)>,
    pub(crate) limits: crate::http::HttpLimits,
    pub(crate) gateway: keygate_http::HttpGatewayConfig,
}

/// Certificates of the listeners (PEM files, reloaded when they change).
#[derive(Debug, Clone, Default)]
pub(crate) struct TlsConfig {
    /// REST API and console: certificate chain and key.
    pub(crate) http: Option<(PathBuf, PathBuf)>,
    /// Kafka gateway: certificate chain and key.
    pub(crate) gateway: Option<(PathBuf, PathBuf)>,
    /// Refuse plaintext Kafka clients (default: on when the gateway has a certificate).
    pub(crate) gateway_require: bool,
    /// Clusters' own certificates: `<cluster-id>.pem` and `<cluster-id>.key`.
    pub(crate) gateway_cluster_dir: Option<PathBuf>,
    /// How often the certificate files are checked for a change.
    pub(crate) reload_check: Duration,
}

#[derive(Debug, Clone)]
pub(crate) struct AuditConfig {
    /// Off: nothing is recorded by the gateway or the REST front door (changes are
    /// still recorded with their transactions).
    pub(crate) enabled: bool,
    /// Keep records queryable in the database for `retention`; off: delete them as
    /// soon as every other sink has them.
    pub(crate) database: bool,
    pub(crate) retention: Duration,
    pub(crate) summary_interval: Duration,
    pub(crate) queue: usize,
    pub(crate) file: Option<PathBuf>,
    pub(crate) file_max_bytes: u64,
    pub(crate) file_keep: u32,
    pub(crate) kafka: Option<keygate_audit::kafka::KafkaSinkConfig>,
    pub(crate) limits: keygate_audit::RepeatLimits,
}

/// External OAuth and STS settings.
#[derive(Debug, Clone)]
pub(crate) struct OAuthFileConfig {
    pub(crate) clock_skew: Duration,
    pub(crate) jwks_refresh: Duration,
    pub(crate) unknown_kid_refresh: Duration,
    pub(crate) fetch_timeout: Duration,
    pub(crate) sts_key_rotation: Duration,
}

/// Where state lives.
#[derive(Clone)]
pub(crate) enum Database {
    Sqlite(PathBuf),
    /// A `postgres://` URL (may hold a password: never logged, see `Debug`) and the
    /// pool size.
    Postgres(String, usize),
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(p) => write!(f, "sqlite://{}", p.display()),
            Database::Postgres(url, _) => write!(f, "{}", redact_url(url)),
        }
    }
}

/// The URL without its password.
pub(crate) fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].split_once(':') {
            Some((user, _)) => format!("{}://{user}:***@{}", &url[..s], &url[at + 1..]),
            None => url.to_owned(),
        },
        _ => url.to_owned(),
    }
}

pub(crate) const DEFAULT_CONFIG: &str = r#"# keygate.toml — every setting is optional; shown with its default.
# Precedence: command-line flag > KEYGATE_* environment variable > this file > default.

# Address of the REST API (KEYGATE_LISTEN, --listen).
listen = "127.0.0.1:8080"

# Directory for the embedded SQLite database and the pepper file (KEYGATE_DATA_DIR, --data-dir).
# The pepper (pepper.key, mode 0600) keys the hashes of every API secret: back it up
# with the database, keep it out of database backups shipped elsewhere.
data_dir = "./keygate-data"

# Database URL (KEYGATE_DATABASE, --database). Default: sqlite://<data_dir>/keygate.db
# database = "sqlite:///var/lib/keygate/keygate.db"
# Any number of instances can share one PostgreSQL (each with the same pepper file):
# database = "postgres://keygate:secret@db.example.com:5432/keygate"

# PostgreSQL connections pooled by this instance (KEYGATE_DATABASE_POOL_SIZE). Keep
# instances x (pool + 1) under the server's max_connections.
database_pool_size = 16

# The pepper file (KEYGATE_PEPPER_FILE, --pepper-file). Default: <data_dir>/pepper.key,
# created at the first start. Instances sharing a database must all use the same one;
# an instance with another pepper refuses to start.
# pepper_file = "/etc/keygate/pepper.key"

# While the database is unreachable, gateways keep authenticating and authorizing from
# their last snapshot for this long, then refuse new authentications (open sessions go
# on) until it is back (KEYGATE_MAX_STALENESS_S).
max_staleness_s = 300

# Base URL clients use to reach this server, for links in responses (KEYGATE_PUBLIC_URL).
# public_url = "https://keygate.example.com"

# Maximum API keys per owner; beyond it creation answers 402 quota_exceeded.
max_keys_per_owner = 10

# Every failed authentication waits this long before answering (uniform for all causes).
auth_failure_delay_ms = 100

# How often last-used times of keys are written to the database.
key_usage_flush_ms = 5000

# The Kafka gateway. Each registered Kafka cluster gets a slot of ports: its bootstrap
# port (gateway_port_base + slot * gateway_ports_per_cluster) and one port per upstream
# broker after it. `keygate kafka cluster describe` shows the bootstrap address.
gateway_listen_host = "127.0.0.1"
# gateway_advertised_host = "kafka-gateway.example.com"   # default: the listen host
gateway_port_base = 19092
gateway_ports_per_cluster = 16
gateway_max_frame_bytes = 104857600
gateway_auth_timeout_ms = 10000
# Upper bound of a SASL session (KIP-368); clients re-authenticate before it ends.
gateway_max_session_lifetime_s = 3600

# TLS. Certificates are PEM files (chain leaf first, and its key: PKCS#8, PKCS#1 or
# SEC1), checked for a change every tls_reload_check_s and at SIGHUP: a new
# certificate applies to new connections without a restart; open ones keep theirs.
# REST API and console over HTTPS, HTTP/1.1 and HTTP/2 (--tls-cert, --tls-key).
# With it, public_url defaults to https://, console cookies are Secure, HSTS is sent.
# tls_cert = "/etc/keygate/api.pem"
# tls_key = "/etc/keygate/api.key"
# The Kafka gateway over TLS: clients use security.protocol=SASL_SSL
# (--gateway-tls-cert, --gateway-tls-key).
# gateway_tls_cert = "/etc/keygate/kafka.pem"
# gateway_tls_key = "/etc/keygate/kafka.key"
# Clusters' own certificates (optional): a cluster whose id names a pair in this
# directory (lkc-abc123.pem + lkc-abc123.key) is served it, on its ports or by SNI;
# others get gateway_tls_cert. Files added or replaced later are picked up.
# gateway_tls_cluster_dir = "/etc/keygate/kafka-clusters"
# With a gateway certificate, plaintext Kafka clients are refused (logged); false lets
# both kinds of clients share the gateway's ports.
# gateway_require_tls = true
tls_reload_check_s = 5
# SNI routing, as the hosted model: one TLS port for every cluster and broker. A
# cluster's bootstrap is <cluster-id>.<domain>:<port>, its brokers
# b<node-id>-<cluster-id>.<domain>:<port>; point a DNS wildcard *.<domain> at the gateway
# and give it a certificate valid for *.<domain> (--gateway-sni-domain).
# gateway_sni_domain = "kafka.example.com"
# gateway_sni_port = 9092

# Limits of the Kafka gateway against clients that misbehave (README, "Limits").
# Answers not yet written per connection; beyond it the client is not read from.
gateway_max_in_flight = 128
# A client that does not read for this long is disconnected.
gateway_write_timeout_ms = 60000
# Client connections in total, per source address, and still authenticating. Each
# client connection uses two file descriptors (client and upstream).
gateway_max_connections = 10000
gateway_max_connections_per_ip = 1000
gateway_max_unauthenticated = 1000
# Fair share: connections of one cluster, and of one principal to one cluster; new
# connections per second from one address (Kafka's max.connection.creation.rate;
# 0: no limit); an authenticated connection idle this long is closed (Kafka's
# connections.max.idle.ms).
gateway_max_connections_per_cluster = 5000
gateway_max_connections_per_principal = 1000
gateway_max_connection_creation_rate = 500
gateway_idle_timeout_s = 600

# The HTTP gateway: Schema Registry, ksqlDB, Flink and Tableflow keys enforced in
# front of their services (README, "HTTP gateway"). Services are reached by path:
# /sr/<lsrc-id>/…, /ksql/<lksqlc-id>/…, /flink/<env-id>/<region>/…, and Tableflow's
# /iceberg/catalog/organizations/<org-id>/environments/<env-id>/… (--http-gateway-listen).
http_gateway_listen = "127.0.0.1:8090"
# Prometheus metrics are at /metrics on the REST listener; with metrics_listen, only
# on that address (e.g. an internal interface) (--metrics-listen). metrics = false
# records and serves none.
metrics = true
# Log filter (tracing's EnvFilter syntax, e.g. "info,keygate_kafka=debug"); the
# KEYGATE_LOG environment variable wins over it.
log_level = "info"
# SIGHUP re-reads this file and applies, without a restart: log_level and the
# gateway's connection limits (gateway_max_connections*, gateway_max_unauthenticated,
# gateway_max_connection_creation_rate, gateway_idle_timeout_s) — plus the
# certificates. Client quotas, keys, ACLs and role bindings change live through the API.
# metrics_listen = "127.0.0.1:9464"
# On SIGTERM: stop accepting, give requests in progress this long, flush the audit
# log, exit 0.
shutdown_grace_s = 10
# http_gateway_public_url = "https://services.example.com"   # default: http(s)://<listen>
# Also by host name: lsrc-….<domain> and lksqlc-….<domain> (--http-gateway-domain).
# http_gateway_domain = "services.example.com"
# HTTPS (HTTP/1.1 and HTTP/2), reloaded like the other certificates.
# http_gateway_tls_cert = "/etc/keygate/services.pem"
# http_gateway_tls_key = "/etc/keygate/services.key"
# Largest request body forwarded (schemas, jars) and largest answer passed on.
http_gateway_max_request_mb = 64
http_gateway_max_response_mb = 256
# An upstream must answer (headers) within this time.
http_gateway_upstream_timeout_ms = 60000
# A whole request, until the answer's headers (uploads included).
http_gateway_request_timeout_ms = 300000
http_gateway_max_connections = 1024
http_gateway_max_connections_per_ip = 256

# Limits of the REST API and console listener.
http_max_connections = 1024
http_max_connections_per_ip = 256
# A request's headers must arrive within this time (also: idle keep-alive connections);
# this and the write timeout apply to the HTTP gateway's listener too.
http_header_timeout_ms = 10000
# A whole request, body included.
http_request_timeout_ms = 30000
# A peer that does not read its response for this long is disconnected.
http_write_timeout_ms = 30000

# Failed authentications (SASL, REST, console): each source address may fail this
# many times a minute at each front door; then every further failure doubles a
# penalty, from 0.5 s up to the maximum. At the gateway and the REST API the failure's
# answer waits that long (the right key from the same address is never slowed); the
# console refuses sign-ins from that address (429) until the penalty ends, and after
# 5 failures for one account from one address, that account from that address.
auth_throttle_free_failures = 30
auth_throttle_max_penalty_s = 30
# Console passwords are argon2id (19 MiB each): at most this many hashes at once
# (default: the number of cores); a sign-in waits at most password_hash_wait_ms for
# its turn, then gets 503.
# password_hash_concurrency = 2
password_hash_wait_ms = 2000

# External OAuth. Tokens' exp/nbf may be off by this much (clock skew between hosts).
oauth_clock_skew_s = 30
# Every identity provider's keys are fetched again this often (removed keys stop working).
oauth_jwks_refresh_s = 300
# A token naming an unknown key id triggers a refresh at most this often per provider.
oauth_unknown_kid_refresh_s = 10
# Timeout of every fetch from an identity provider (discovery, JWKS).
oauth_fetch_timeout_ms = 5000
# A new STS signing key takes over this often; the previous one keeps verifying for
# the longest token lifetime (900 s), then is retired. Keys are derived from the
# pepper; only their ids are stored.
sts_key_rotation_h = 24

# Audit log (CloudEvents records of every authentication, denial and change).
# Changes are always recorded, in the same transaction as the change. Off switches
# off the gateway's and the REST front door's records.
audit_enabled = true
# Keep records queryable (GET /audit/v1/events, `keygate audit-log`) this long.
# With audit_database = false they are deleted as soon as the other sinks have them.
audit_database = true
audit_retention_h = 168
# Allowed Produce/Fetch are summarised per principal and topic over this window;
# a repeated denial or failure is recorded in full once per window and counted after.
audit_summary_interval_s = 60
# Records one credential (or one client address without one) may write per window;
# beyond it they are counted in an audit.RecordsSuppressed record.
audit_max_records_per_credential = 1000
# Records waiting in memory for the database; beyond it they are dropped and counted
# (an audit.RecordsDropped record says how many), so the Kafka path never waits.
audit_queue = 65536
# JSON-lines file sink, rotated by size (KEYGATE_AUDIT_FILE, --audit-file).
# audit_file = "./keygate-data/audit.jsonl"
audit_file_max_mb = 100
audit_file_keep = 5
# Kafka topic sink (KEYGATE_AUDIT_KAFKA_BOOTSTRAP, --audit-kafka-bootstrap). Delivered
# at least once, in order per source, from the database outbox; the topic is created
# if missing.
# audit_kafka_bootstrap = "audit-broker-1:9092"
audit_kafka_topic = "keygate-audit-log-events"
audit_kafka_partitions = 3
audit_kafka_timeout_ms = 10000
# Extra librdkafka settings of the audit producer: see the table at the end.

# Used only at the very first start, to create the organization and its first admin.
organization_name = "keygate"
admin_email = "admin@keygate.local"
crn_authority = "keygate"

# Extra librdkafka settings of the audit producer (a TOML table: keep it last), e.g.
# to write through a keygate gateway with a key of its own:
# [audit_kafka_properties]
# "security.protocol" = "SASL_PLAINTEXT"
# "sasl.mechanism" = "PLAIN"
# "sasl.username" = "<key>"
# "sasl.password" = "<secret>"
"#;

impl ServerArgs {
    /// Resolve flags, environment, file and defaults.
    pub(crate) fn resolve(&self) -> anyhow::Result<ServerConfig> {
        let file = match &self.config {
            Some(p) => read_file(p)?,
            None if Path::new("keygate.toml").exists() => read_file(Path::new("keygate.toml"))?,
            None => FileConfig::default(),
        };
        let listen = self
            .listen
            .or(file.listen)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
        let data_dir = self
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("keygate-data"));
        let database = match self.database.clone().or(file.database) {
            None => Database::Sqlite(data_dir.join("keygate.db")),
            Some(url) => match parse_database(&url)? {
                Database::Postgres(url, _) => Database::Postgres(
                    url,
                    self.database_pool_size
                        .or(file.database_pool_size)
                        .unwrap_or(keygate_store::DEFAULT_POOL_SIZE)
                        .max(1),
                ),
                sqlite => sqlite,
            },
        };
        let pepper_file = self
            .pepper_file
            .clone()
            .or(file.pepper_file)
            .unwrap_or_else(|| data_dir.join("pepper.key"));
        Ok(ServerConfig {
            listen,
            data_dir,
            database,
            pepper_file,
            max_staleness: Duration::from_secs(
                self.max_staleness_s
                    .or(file.max_staleness_s)
                    .unwrap_or(300)
                    .max(1),
            ),
            public_url: self.public_url.clone().or(file.public_url),
            max_keys_per_owner: self
                .max_keys_per_owner
                .or(file.max_keys_per_owner)
                .unwrap_or(10),
            auth_failure_delay: Duration::from_millis(file.auth_failure_delay_ms.unwrap_or(100)),
            key_usage_flush: Duration::from_millis(file.key_usage_flush_ms.unwrap_or(5000).max(10)),
            organization_name: file.organization_name.unwrap_or_else(|| "keygate".into()),
            admin_email: file
                .admin_email
                .unwrap_or_else(|| "admin@keygate.local".into()),
            crn_authority: file.crn_authority.unwrap_or_else(|| "keygate".into()),
            oauth: OAuthFileConfig {
                clock_skew: Duration::from_secs(file.oauth_clock_skew_s.unwrap_or(30)),
                jwks_refresh: Duration::from_secs(file.oauth_jwks_refresh_s.unwrap_or(300).max(1)),
                unknown_kid_refresh: Duration::from_secs(
                    file.oauth_unknown_kid_refresh_s.unwrap_or(10),
                ),
                fetch_timeout: Duration::from_millis(
                    file.oauth_fetch_timeout_ms.unwrap_or(5000).max(100),
                ),
                sts_key_rotation: Duration::from_secs(
                    file.sts_key_rotation_h.unwrap_or(24).max(1) * 3600,
                ),
            },
            audit: AuditConfig {
                enabled: file.audit_enabled.unwrap_or(true),
                database: file.audit_database.unwrap_or(true),
                retention: Duration::from_secs(
                    file.audit_retention_s
                        .unwrap_or(file.audit_retention_h.unwrap_or(168) * 3600),
                ),
                summary_interval: Duration::from_secs(
                    file.audit_summary_interval_s.unwrap_or(60).max(1),
                ),
                queue: file.audit_queue.unwrap_or(65536).max(16),
                file: self.audit_file.clone().or(file.audit_file),
                file_max_bytes: file.audit_file_max_mb.unwrap_or(100).max(1) * 1024 * 1024,
                file_keep: file.audit_file_keep.unwrap_or(5).max(1),
                kafka: self
                    .audit_kafka_bootstrap
                    .clone()
                    .or(file.audit_kafka_bootstrap)
                    .filter(|b| !b.trim().is_empty())
                    .map(|bootstrap| keygate_audit::kafka::KafkaSinkConfig {
                        bootstrap,
                        topic: file
                            .audit_kafka_topic
                            .clone()
                            .unwrap_or_else(|| "keygate-audit-log-events".into()),
                        partitions: file.audit_kafka_partitions.unwrap_or(3).max(1),
                        extra: file
                            .audit_kafka_properties
                            .clone()
                            .unwrap_or_default()
                            .into_iter()
                            .collect(),
                        timeout: Duration::from_millis(
                            file.audit_kafka_timeout_ms.unwrap_or(10_000).max(1000),
                        ),
                    }),
                limits: keygate_audit::RepeatLimits {
                    per_credential: file
                        .audit_max_records_per_credential
                        .unwrap_or(keygate_audit::RepeatLimits::default().per_credential)
                        .max(1),
                    ..Default::default()
                },
            },
            http: {
                let d = crate::http::HttpLimits::default();
                let ms =
                    |v: Option<u64>, d: Duration| v.map_or(d, |v| Duration::from_millis(v.max(1)));
                crate::http::HttpLimits {
                    max_connections: file.http_max_connections.unwrap_or(d.max_connections),
                    max_connections_per_ip: file
                        .http_max_connections_per_ip
                        .unwrap_or(d.max_connections_per_ip),
                    header_timeout: ms(file.http_header_timeout_ms, d.header_timeout),
                    request_timeout: ms(file.http_request_timeout_ms, d.request_timeout),
                    write_timeout: ms(file.http_write_timeout_ms, d.write_timeout),
                    watch_framing: false,
                    h2c: false,
                }
            },
            auth_throttle: {
                let d = keygate_iam::ThrottleConfig::default();
                keygate_iam::ThrottleConfig {
                    free_failures: file.auth_throttle_free_failures.unwrap_or(d.free_failures),
                    max_penalty: file
                        .auth_throttle_max_penalty_s
                        .map_or(d.max_penalty, Duration::from_secs),
                    ..d
                }
            },
            password_concurrency: file
                .password_hash_concurrency
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from)),
            password_wait: Duration::from_millis(file.password_hash_wait_ms.unwrap_or(2000)),
            tls: {
                let pair = |c: Option<PathBuf>, k: Option<PathBuf>, what: &str| match (c, k) {
                    (Some(c), Some(k)) => Ok(Some((c, k))),
                    (None, None) => Ok(None),
                    _ => Err(anyhow::anyhow!(
                        "{what}_cert and {what}_key must be set together"
                    )),
                };
                let http = pair(
                    self.tls_cert.clone().or(file.tls_cert),
                    self.tls_key.clone().or(file.tls_key),
                    "tls",
                )?;
                let gateway = pair(
                    self.gateway_tls_cert.clone().or(file.gateway_tls_cert),
                    self.gateway_tls_key.clone().or(file.gateway_tls_key),
                    "gateway_tls",
                )?;
                let gateway_require = file.gateway_require_tls.unwrap_or(gateway.is_some());
                if gateway_require && gateway.is_none() {
                    bail!("gateway_require_tls needs gateway_tls_cert and gateway_tls_key");
                }
                if file.gateway_tls_cluster_dir.is_some() && gateway.is_none() {
                    bail!("gateway_tls_cluster_dir needs gateway_tls_cert and gateway_tls_key (the default)");
                }
                TlsConfig {
                    http,
                    gateway_cluster_dir: file.gateway_tls_cluster_dir,
                    gateway_require,
                    gateway,
                    reload_check: Duration::from_secs(file.tls_reload_check_s.unwrap_or(5).max(1)),
                }
            },
            metrics_listen: self.metrics_listen.or(file.metrics_listen),
            shutdown_grace: Duration::from_secs(file.shutdown_grace_s.unwrap_or(10)),
            metrics: file.metrics.unwrap_or(true),
            log_level: file.log_level,
            http_gateway: {
                let d = keygate_http::HttpGatewayConfig::default();
                let limits = crate::http::HttpLimits::default();
                let tls = match (file.http_gateway_tls_cert, file.http_gateway_tls_key) {
                    (Some(c), Some(k)) => Some((c, k)),
                    (None, None) => None,
                    _ => {
                        bail!("http_gateway_tls_cert and http_gateway_tls_key must be set together")
                    }
                };
                HttpGatewaySettings {
                    listen: self
                        .http_gateway_listen
                        .or(file.http_gateway_listen)
                        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8090))),
                    public_url: file.http_gateway_public_url,
                    limits: crate::http::HttpLimits {
                        max_connections: file
                            .http_gateway_max_connections
                            .unwrap_or(limits.max_connections),
                        max_connections_per_ip: file
                            .http_gateway_max_connections_per_ip
                            .unwrap_or(limits.max_connections_per_ip),
                        request_timeout: Duration::from_millis(
                            file.http_gateway_request_timeout_ms
                                .unwrap_or(300_000)
                                .max(1),
                        ),
                        watch_framing: true,
                        h2c: true,
                        header_timeout: file
                            .http_header_timeout_ms
                            .map_or(limits.header_timeout, |v| Duration::from_millis(v.max(1))),
                        write_timeout: file
                            .http_write_timeout_ms
                            .map_or(limits.write_timeout, |v| Duration::from_millis(v.max(1))),
                    },
                    gateway: keygate_http::HttpGatewayConfig {
                        domain: self
                            .http_gateway_domain
                            .clone()
                            .or(file.http_gateway_domain)
                            .map(|d| d.trim_matches('.').to_ascii_lowercase()),
                        scheme: if tls.is_some() { "https" } else { "http" },
                        max_request_body: file
                            .http_gateway_max_request_mb
                            .map_or(d.max_request_body, |m| m.max(1) * 1024 * 1024),
                        max_response_body: file
                            .http_gateway_max_response_mb
                            .map_or(d.max_response_body, |m| m.max(1) * 1024 * 1024),
                        upstream: keygate_http::UpstreamConfig {
                            response_timeout: file
                                .http_gateway_upstream_timeout_ms
                                .map_or(d.upstream.response_timeout, |v| {
                                    Duration::from_millis(v.max(1))
                                }),
                            ..d.upstream.clone()
                        },
                        ..d
                    },
                    tls,
                }
            },
            gateway: {
                let d = keygate_kafka::GatewayConfig::default();
                let listen_host = self
                    .gateway_listen_host
                    .or(file.gateway_listen_host)
                    .unwrap_or(d.listen_host);
                keygate_kafka::GatewayConfig {
                    listen_host,
                    advertised_host: self
                        .gateway_advertised_host
                        .clone()
                        .or(file.gateway_advertised_host)
                        .unwrap_or_else(|| listen_host.to_string()),
                    port_base: self
                        .gateway_port_base
                        .or(file.gateway_port_base)
                        .unwrap_or(d.port_base),
                    ports_per_cluster: file
                        .gateway_ports_per_cluster
                        .unwrap_or(d.ports_per_cluster)
                        .max(2),
                    max_frame: file.gateway_max_frame_bytes.unwrap_or(d.max_frame),
                    auth_timeout: file
                        .gateway_auth_timeout_ms
                        .map(Duration::from_millis)
                        .unwrap_or(d.auth_timeout),
                    auth_failure_delay: Duration::from_millis(
                        file.auth_failure_delay_ms.unwrap_or(100),
                    ),
                    max_session_lifetime: file
                        .gateway_max_session_lifetime_s
                        .map(Duration::from_secs)
                        .unwrap_or(d.max_session_lifetime),
                    max_in_flight: file.gateway_max_in_flight.unwrap_or(d.max_in_flight).max(1),
                    write_timeout: file
                        .gateway_write_timeout_ms
                        .map_or(d.write_timeout, |v| Duration::from_millis(v.max(1))),
                    max_connections: file.gateway_max_connections.unwrap_or(d.max_connections),
                    max_connections_per_ip: file
                        .gateway_max_connections_per_ip
                        .unwrap_or(d.max_connections_per_ip),
                    max_unauthenticated: file
                        .gateway_max_unauthenticated
                        .unwrap_or(d.max_unauthenticated),
                    max_connections_per_cluster: file
                        .gateway_max_connections_per_cluster
                        .unwrap_or(d.max_connections_per_cluster),
                    max_connections_per_principal: file
                        .gateway_max_connections_per_principal
                        .unwrap_or(d.max_connections_per_principal),
                    max_connection_creation_rate: file
                        .gateway_max_connection_creation_rate
                        .unwrap_or(d.max_connection_creation_rate),
                    idle_timeout: file
                        .gateway_idle_timeout_s
                        .map_or(d.idle_timeout, |v| Duration::from_secs(v.max(1))),
                    // Set by the server from `tls` once the certificate is loaded.
                    tls: None,
                    sni: self
                        .gateway_sni_domain
                        .clone()
                        .or(file.gateway_sni_domain)
                        .map(|domain| keygate_kafka::SniConfig {
                            domain: domain.trim_matches('.').to_ascii_lowercase(),
                            port: file.gateway_sni_port.unwrap_or(9092),
                        }),
                }
            },
        })
    }
}

fn read_file(p: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing {}", p.display()))
}

pub(crate) fn parse_database(url: &str) -> anyhow::Result<Database> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        if path.is_empty() {
            bail!(
                "database URL `sqlite://` needs a path, e.g. sqlite:///var/lib/keygate/keygate.db"
            );
        }
        return Ok(Database::Sqlite(PathBuf::from(path)));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Database::Postgres(
            url.to_owned(),
            keygate_store::DEFAULT_POOL_SIZE,
        ));
    }
    bail!("unsupported database URL (expected sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DB)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_parses_and_matches_defaults() {
        let f: FileConfig = toml::from_str(DEFAULT_CONFIG).expect("default config parses");
        assert_eq!(f.listen, Some(SocketAddr::from(([127, 0, 0, 1], 8080))));
        assert_eq!(f.max_keys_per_owner, Some(10));
    }

    #[test]
    fn database_urls() {
        assert!(
            matches!(parse_database("sqlite:///tmp/x.db"), Ok(Database::Sqlite(p)) if p == Path::new("/tmp/x.db"))
        );
        assert!(matches!(
            parse_database("postgres://u:pw@h:5432/db"),
            Ok(Database::Postgres(u, 16)) if u == "postgres://u:pw@h:5432/db"
        ));
        assert!(parse_database("mysql://x").is_err());
        let shown = format!(
            "{:?}",
            Database::Postgres("postgres://u:s3cret@h/db".into(), 4)
        );
        assert!(
            !shown.contains("s3cret") && shown.contains("u:***@h/db"),
            "{shown}"
        );
    }
}
