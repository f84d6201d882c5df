//! The command-line client: verbs and flags modelled on the hosted anchor's CLI, each a
//! thin call to the REST API. Two stages as in ripgrep: clap parses arguments exactly
//! as typed, each command resolves them into one request.

pub(crate) mod audit;
pub(crate) mod certs;
pub(crate) mod client;
pub(crate) mod context;
pub(crate) mod oauth;
pub(crate) mod output;
pub(crate) mod quotas;

use crate::config::ServerArgs;
use anyhow::{anyhow, bail, Context as _};
use clap::{Args, Parser, Subcommand, ValueEnum};
use client::{enc, Client};
use context::{CliConfig, StoredKey};
use output::{print_done, print_list, print_object, Col, Format};
use serde_json::{json, Value};

#[derive(Debug, Parser)]
#[command(
    name = "keygate",
    version,
    about = "Self-hosted identity and access control for Kafka platforms"
)]
pub(crate) struct Cli {
    /// Output format.
    #[arg(short = 'o', long = "output", global = true, value_enum, default_value_t = Format::Human)]
    pub(crate) output: Format,
    #[command(subcommand)]
    pub(crate) cmd: Cmd,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Cmd {
    /// Run the keygate server: the REST API, the web console and the Kafka gateway.
    Server(ServerArgs),
    /// Save the URL and a CLOUD API key of a keygate server as the current context.
    Login(LoginArgs),
    /// Manage environments.
    #[command(subcommand)]
    Environment(EnvCmd),
    /// Kafka clusters and ACLs.
    #[command(subcommand)]
    Kafka(KafkaCmd),
    /// Schema Registry registrations.
    #[command(name = "schema-registry", subcommand)]
    SchemaRegistry(ResourceCmd),
    /// ksqlDB clusters.
    #[command(subcommand)]
    Ksql(KsqlCmd),
    /// Flink regions.
    #[command(subcommand)]
    Flink(FlinkCmd),
    /// Tableflow registrations (one per environment).
    #[command(subcommand)]
    Tableflow(ResourceCmd),
    /// Users, service accounts and role bindings.
    #[command(subcommand)]
    Iam(IamCmd),
    /// API keys.
    #[command(name = "api-key", subcommand)]
    ApiKey(KeyCmd),
    /// Write the whole state (keys' hashes included) as a JSON document, to move an
    /// installation to another database without re-issuing keys.
    Export(crate::export::ExportArgs),
    /// Load an exported document into an empty database (same pepper.key required).
    Import(crate::export::ImportArgs),
    /// Move the installation to another (empty) database, e.g. SQLite to PostgreSQL,
    /// with its audit log; no key is re-issued.
    Migrate(crate::export::MigrateArgs),
    /// The audit log: every authentication, denied request and change.
    #[command(name = "audit-log", subcommand)]
    AuditLog(audit::AuditCmd),
    /// Operator commands on the database itself (local access and the pepper needed).
    #[command(subcommand)]
    Admin(AdminCmd),
}

/// `keygate admin …`
#[derive(Debug, Subcommand)]
pub(crate) enum AdminCmd {
    /// Break glass: issue a new CLOUD key for an OrganizationAdmin account, straight in
    /// the database, when no administrator can sign in any more. Prints the secret
    /// once; audited as RecoverAdminAccess.
    Recover(crate::export::RecoverArgs),
}

#[derive(Debug, Args)]
pub(crate) struct LoginArgs {
    /// Server URL, e.g. http://127.0.0.1:8080
    #[arg(long, env = "KEYGATE_URL")]
    url: String,
    /// A CLOUD API key.
    #[arg(long, env = "KEYGATE_API_KEY")]
    api_key: String,
    /// Its secret.
    #[arg(long, env = "KEYGATE_API_SECRET", hide_env_values = true)]
    api_secret: String,
    /// Name of the saved context.
    #[arg(long, default_value = "default")]
    context: String,
}

#[derive(Debug, Subcommand)]
pub(crate) enum EnvCmd {
    /// Create an environment.
    Create { name: String },
    /// List environments.
    List,
    /// Describe an environment.
    Describe { id: String },
    /// Rename an environment.
    Update {
        id: String,
        #[arg(long)]
        name: String,
    },
    /// Delete an empty environment.
    Delete { id: String },
    /// Use an environment: commands that need one default to it.
    Use { id: String },
}

#[derive(Debug, Subcommand)]
pub(crate) enum KafkaCmd {
    /// Kafka cluster registrations.
    #[command(subcommand)]
    Cluster(ResourceCmd),
    /// Kafka ACLs of a cluster.
    #[command(subcommand)]
    Acl(AclCmd),
    /// Client quotas: produce and fetch byte rates per principal on a cluster.
    #[command(subcommand)]
    Quota(quotas::QuotaCmd),
}

#[derive(Debug, Subcommand)]
pub(crate) enum KsqlCmd {
    /// ksqlDB cluster registrations.
    #[command(subcommand)]
    Cluster(ResourceCmd),
}

#[derive(Debug, Subcommand)]
pub(crate) enum FlinkCmd {
    /// Flink region registrations.
    #[command(subcommand)]
    Region(ResourceCmd),
}

/// Kafka clusters: how the gateway connects and authenticates to the brokers. Secrets
/// come from files (never the command line, where `ps` would show them); on update,
/// only what is given changes (`--upstream-password-file` alone rotates the password).
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct UpstreamArgs {
    /// PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
    #[arg(long)]
    upstream_security_protocol: Option<String>,
    /// PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
    #[arg(long)]
    upstream_sasl_mechanism: Option<String>,
    /// The gateway's SASL user name on the brokers.
    #[arg(long)]
    upstream_username: Option<String>,
    /// File holding the gateway's SASL password (one trailing newline is dropped).
    #[arg(long)]
    upstream_password_file: Option<std::path::PathBuf>,
    /// PEM CA bundle the brokers' certificates must chain to.
    #[arg(long)]
    upstream_ca_file: Option<std::path::PathBuf>,
    /// Name the brokers' certificates must hold (default: each broker's host).
    #[arg(long)]
    upstream_server_name: Option<String>,
    /// PEM client certificate chain the gateway presents (mTLS).
    #[arg(long)]
    upstream_client_cert_file: Option<std::path::PathBuf>,
    /// PEM private key of that certificate.
    #[arg(long)]
    upstream_client_key_file: Option<std::path::PathBuf>,
}

impl UpstreamArgs {
    /// The `upstream_security` object of a request, or `None` when nothing is given.
    fn to_json(&self) -> anyhow::Result<Option<Value>> {
        let read = |p: &Option<std::path::PathBuf>| -> anyhow::Result<Option<String>> {
            p.as_ref()
                .map(|p| {
                    std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
                })
                .transpose()
        };
        let mut o = serde_json::Map::new();
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                o.insert(k.into(), json!(v));
            }
        };
        put("protocol", self.upstream_security_protocol.clone());
        put("sasl_mechanism", self.upstream_sasl_mechanism.clone());
        put("username", self.upstream_username.clone());
        put(
            "password",
            read(&self.upstream_password_file)?.map(|p| {
                p.strip_suffix('\n')
                    .map(|p| p.strip_suffix('\r').unwrap_or(p))
                    .unwrap_or(&p)
                    .to_owned()
            }),
        );
        put("ca_pem", read(&self.upstream_ca_file)?);
        put("server_name", self.upstream_server_name.clone());
        put(
            "client_certificate_pem",
            read(&self.upstream_client_cert_file)?,
        );
        put("client_key_pem", read(&self.upstream_client_key_file)?);
        Ok((!o.is_empty()).then_some(Value::Object(o)))
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum ResourceCmd {
    /// Register one.
    Create {
        /// Display name.
        name: String,
        /// The environment (default: the one in use, `environment use`).
        #[arg(long)]
        environment: Option<String>,
        /// Kafka: host:port[,host:port…]; others: an http(s) URL.
        #[arg(long)]
        upstream: String,
        /// Flink only: <cloud>.<region>, e.g. aws.us-east-1.
        #[arg(long)]
        region: Option<String>,
        /// ksqlDB only: the Kafka cluster it runs on (default: the one in use).
        #[arg(long)]
        cluster: Option<String>,
        /// ksqlDB only: the user or service account it runs as.
        #[arg(long)]
        credential_identity: Option<String>,
        /// ksqlDB only: its size in CSUs (recorded; default 1).
        #[arg(long)]
        csu: Option<u32>,
        #[command(flatten)]
        security: UpstreamArgs,
    },
    /// List them.
    List {
        #[arg(long)]
        environment: Option<String>,
    },
    /// Describe one.
    Describe {
        id: Option<String>,
        #[arg(long)]
        environment: Option<String>,
    },
    /// Rename or re-point one.
    Update {
        id: Option<String>,
        #[arg(long)]
        environment: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        upstream: Option<String>,
        #[command(flatten)]
        security: UpstreamArgs,
    },
    /// Delete one with its keys, ACLs and role bindings.
    Delete {
        id: Option<String>,
        #[arg(long)]
        environment: Option<String>,
    },
    /// Kafka: use a cluster (`kafka acl` defaults to it).
    Use { id: String },
}

#[derive(Debug, Subcommand)]
pub(crate) enum IamCmd {
    /// User accounts.
    #[command(subcommand)]
    User(UserCmd),
    /// Service accounts.
    #[command(name = "service-account", subcommand)]
    ServiceAccount(SaCmd),
    /// Role-based access control.
    #[command(subcommand)]
    Rbac(RbacCmd),
    /// External OAuth identity providers.
    #[command(subcommand)]
    Provider(oauth::ProviderCmd),
    /// Identity pools of an identity provider.
    #[command(subcommand)]
    Pool(oauth::PoolCmd),
    /// Certificate authorities (mTLS client authentication).
    #[command(name = "certificate-authority", subcommand)]
    CertificateAuthority(certs::AuthorityCmd),
    /// Certificate identity pools of a certificate authority.
    #[command(name = "certificate-pool", subcommand)]
    CertificatePool(certs::CertPoolCmd),
}

#[derive(Debug, Subcommand)]
pub(crate) enum UserCmd {
    /// Create a user.
    Create {
        email: String,
        #[arg(long)]
        full_name: String,
        #[arg(long)]
        auth_type: Option<String>,
        /// Console password (at least 12 characters; or KEYGATE_NEW_PASSWORD).
        #[arg(long, env = "KEYGATE_NEW_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
    /// Set a user's console password (yourself, or as an account admin).
    SetPassword {
        id: String,
        /// The new password (at least 12 characters; or KEYGATE_NEW_PASSWORD).
        #[arg(long, env = "KEYGATE_NEW_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// List users.
    List,
    /// Describe a user.
    Describe { id: String },
    /// Update a user.
    Update {
        id: String,
        #[arg(long)]
        full_name: String,
    },
    /// Delete a user with its keys, role bindings and ACLs.
    Delete { id: String },
}

#[derive(Debug, Subcommand)]
pub(crate) enum SaCmd {
    /// Create a service account.
    Create {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List service accounts.
    List,
    /// Describe a service account.
    Describe { id: String },
    /// Update a service account.
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete a service account with its keys, role bindings and ACLs.
    Delete { id: String },
    /// Use a service account: `api-key create` makes keys for it.
    Use { id: String },
    /// Stop using a service account.
    Unset,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RbacCmd {
    /// Role bindings.
    #[command(name = "role-binding", subcommand)]
    RoleBinding(Box<RbCmd>),
    /// The predefined roles: where each may be bound and what it allows.
    #[command(subcommand)]
    Role(RoleCmd),
}

#[derive(Debug, Subcommand)]
pub(crate) enum RoleCmd {
    /// List the predefined roles.
    List,
    /// Describe one role: its scopes and what it allows at each.
    Describe { name: String },
}

/// Where a role binding applies; the CRN is built from these.
#[derive(Debug, Clone, Args, Default)]
pub(crate) struct ScopeArgs {
    #[arg(long, conflicts_with = "current_environment")]
    environment: Option<String>,
    /// The environment in use (`keygate environment use`).
    #[arg(long)]
    current_environment: bool,
    /// The Kafka cluster (the hosted CLI's flag for cluster-level bindings).
    #[arg(long)]
    cloud_cluster: Option<String>,
    /// The Kafka cluster (with `--resource`; the same cluster as `--cloud-cluster`).
    #[arg(long)]
    kafka_cluster: Option<String>,
    #[arg(long)]
    schema_registry_cluster: Option<String>,
    #[arg(long)]
    ksql_cluster: Option<String>,
    #[arg(long)]
    flink_region: Option<String>,
    /// Topic:NAME, Group:NAME, TransactionalId:NAME, Subject:NAME or ServiceAccount:sa-…
    #[arg(long)]
    resource: Option<String>,
    /// Treat the resource name as a prefix.
    #[arg(long)]
    prefix: bool,
    /// A raw CRN pattern instead of the flags above.
    #[arg(long, conflicts_with_all = ["environment", "kafka_cluster", "resource"])]
    crn_pattern: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RbCmd {
    /// Grant a role.
    Create {
        #[arg(long)]
        principal: String,
        #[arg(long)]
        role: String,
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// List role bindings: with no scope, every one in the organization; with a
    /// scope, those at it (and below it with `--inclusive`).
    List {
        #[arg(long)]
        principal: Option<String>,
        #[arg(long)]
        role: Option<String>,
        /// Also the bindings below the scope.
        #[arg(long)]
        inclusive: bool,
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// Revoke a role binding by id, or by principal, role and scope.
    Delete {
        id: Option<String>,
        #[arg(long)]
        principal: Option<String>,
        #[arg(long)]
        role: Option<String>,
        #[command(flatten)]
        scope: ScopeArgs,
    },
}

#[derive(Debug, Clone, Args)]
pub(crate) struct AclArgs {
    /// The cluster [default: the one in use, `keygate kafka cluster use`].
    #[arg(long)]
    cluster: Option<String>,
    /// Accepted for the hosted CLI's sake: a cluster id names its environment.
    #[arg(long)]
    environment: Option<String>,
    #[arg(long, conflicts_with = "deny")]
    allow: bool,
    #[arg(long)]
    deny: bool,
    #[arg(long, conflicts_with = "principal")]
    service_account: Option<String>,
    /// User:<id> or User:*
    #[arg(long)]
    principal: Option<String>,
    /// Comma-separated: read,write,create,delete,alter,describe,cluster-action,
    /// describe-configs,alter-configs,idempotent-write,all
    #[arg(long, value_delimiter = ',')]
    operations: Vec<String>,
    #[arg(long, group = "target")]
    topic: Option<String>,
    #[arg(long, group = "target")]
    consumer_group: Option<String>,
    #[arg(long, group = "target")]
    transactional_id: Option<String>,
    #[arg(long, group = "target")]
    cluster_scope: bool,
    /// The name is a prefix.
    #[arg(long)]
    prefix: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AclCmd {
    /// Create ACLs (one per operation).
    Create(AclArgs),
    /// List ACLs matching the flags.
    List(AclArgs),
    /// Delete ACLs matching the flags.
    Delete(AclArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ClientConfig {
    Librdkafka,
    Java,
    Python,
    Env,
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeyCmd {
    /// Create a key; prints its secret once.
    Create {
        /// cloud, tableflow, lkc-…, lsrc-…, lksqlc-… or a Flink region (aws.us-east-1).
        #[arg(long)]
        resource: String,
        #[arg(long)]
        environment: Option<String>,
        /// Owner (default: you).
        #[arg(long)]
        service_account: Option<String>,
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long, default_value = "")]
        name: String,
        /// Lifetime such as 90d, 12h, 30m, 2w.
        #[arg(long, conflicts_with = "expires_at")]
        expires_in: Option<String>,
        /// Expiry as RFC 3339.
        #[arg(long)]
        expires_at: Option<String>,
        /// Also write a ready client configuration.
        #[arg(long, value_enum)]
        client_config: Option<ClientConfig>,
        /// Where to write it (default: standard output).
        #[arg(long, requires = "client_config")]
        output_file: Option<std::path::PathBuf>,
        /// Use the new key for its resource at once (`api-key use`).
        #[arg(long = "use")]
        use_it: bool,
    },
    /// List keys.
    List {
        #[arg(long)]
        resource: Option<String>,
        #[arg(long)]
        environment: Option<String>,
        #[arg(long, conflicts_with = "current_user")]
        service_account: Option<String>,
        #[arg(long)]
        current_user: bool,
    },
    /// Describe a key.
    Describe { key: String },
    /// Change a key's description or name.
    Update {
        key: String,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        name: Option<String>,
    },
    /// Disable a key (it stops working at once).
    Disable { key: String },
    /// Enable a disabled key.
    Enable { key: String },
    /// Delete keys.
    Delete {
        #[arg(required = true)]
        keys: Vec<String>,
        /// Accepted for the hosted CLI's sake: keygate does not ask before deleting.
        #[arg(long)]
        force: bool,
    },
    /// Save a key's secret (made elsewhere) in the current context.
    Store {
        key: String,
        secret: String,
        #[arg(long)]
        resource: Option<String>,
    },
    /// Make a stored key the one used for its resource.
    Use {
        key: String,
        #[arg(long)]
        resource: Option<String>,
    },
}

const ENV_COLS: &[Col] = &[("ID", "/id"), ("Name", "/display_name")];
const RES_COLS: &[Col] = &[
    ("ID", "/id"),
    ("Name", "/spec/display_name"),
    ("Environment", "/spec/environment/id"),
    ("Upstream", "/spec/upstream"),
    ("Bootstrap", "/spec/kafka_bootstrap_endpoint"),
    ("Upstream Security", "/spec/upstream_security/protocol"),
    ("Upstream User", "/spec/upstream_security/username"),
    ("Upstream Healthy", "/status/upstream/healthy"),
    ("Upstream Problem", "/status/upstream/reason"),
    ("Phase", "/status/phase"),
];
const USER_COLS: &[Col] = &[
    ("ID", "/id"),
    ("Email", "/email"),
    ("Full Name", "/full_name"),
    ("Auth Type", "/auth_type"),
];
const SA_COLS: &[Col] = &[
    ("ID", "/id"),
    ("Name", "/display_name"),
    ("Description", "/description"),
];
const KEY_COLS: &[Col] = &[
    ("Key", "/id"),
    ("Description", "/spec/description"),
    ("Owner", "/spec/owner/id"),
    ("Resource", "/spec/resource/id"),
    ("Phase", "/status/phase"),
    ("Created", "/metadata/created_at"),
    ("Expires", "/spec/expires_at"),
    ("Last Used", "/status/last_used_at"),
];
const RB_COLS: &[Col] = &[
    ("ID", "/id"),
    ("Principal", "/principal"),
    ("Role", "/role_name"),
    ("CRN Pattern", "/crn_pattern"),
];
const ROLE_COLS: &[Col] = &[
    ("Name", "/name"),
    ("Scopes", "/scope_names"),
    ("Description", "/description"),
];
const ROLE_SCOPE_COLS: &[Col] = &[
    ("Scope", "/scope"),
    ("Control Plane", "/control_plane_names"),
    ("Example", "/example"),
];
const ACL_COLS: &[Col] = &[
    ("Principal", "/principal"),
    ("Permission", "/permission"),
    ("Operation", "/operation"),
    ("Resource Type", "/resource_type"),
    ("Resource Name", "/resource_name"),
    ("Pattern Type", "/pattern_type"),
    ("Host", "/host"),
];

pub(crate) fn client() -> anyhow::Result<Client> {
    let cfg = CliConfig::load()?;
    let ctx = cfg.current()?;
    Ok(Client::new(&ctx.url, &ctx.api_key, &ctx.api_secret))
}

/// Run a client command.
pub(crate) fn run(cmd: Cmd, fmt: Format) -> anyhow::Result<()> {
    match cmd {
        Cmd::Server(_) | Cmd::Export(_) | Cmd::Import(_) | Cmd::Migrate(_) | Cmd::Admin(_) => {
            unreachable!("handled by main")
        }
        Cmd::Login(a) => login(a, fmt),
        Cmd::Environment(c) => environment(c, fmt),
        Cmd::Kafka(KafkaCmd::Cluster(c)) => resource("/cmk/v2/clusters", false, c, fmt),
        Cmd::Kafka(KafkaCmd::Acl(c)) => acl(c, fmt),
        Cmd::Kafka(KafkaCmd::Quota(c)) => quotas::quota(c, fmt),
        Cmd::SchemaRegistry(c) => resource("/srcm/v3/clusters", false, c, fmt),
        Cmd::Ksql(KsqlCmd::Cluster(c)) => resource("/ksqldbcm/v2/clusters", false, c, fmt),
        Cmd::Flink(FlinkCmd::Region(c)) => resource("/fcpm/v2/regions", true, c, fmt),
        Cmd::Tableflow(c) => resource("/tableflow/v1/endpoints", true, c, fmt),
        Cmd::Iam(IamCmd::User(c)) => user(c, fmt),
        Cmd::Iam(IamCmd::ServiceAccount(c)) => service_account(c, fmt),
        Cmd::Iam(IamCmd::Provider(c)) => oauth::provider(c, fmt),
        Cmd::Iam(IamCmd::Pool(c)) => oauth::pool(c, fmt),
        Cmd::Iam(IamCmd::CertificateAuthority(c)) => certs::authority(c, fmt),
        Cmd::Iam(IamCmd::CertificatePool(c)) => certs::pool(c, fmt),
        Cmd::Iam(IamCmd::Rbac(RbacCmd::RoleBinding(c))) => role_binding(*c, fmt),
        Cmd::Iam(IamCmd::Rbac(RbacCmd::Role(c))) => role(c, fmt),
        Cmd::ApiKey(c) => api_key(c, fmt),
        Cmd::AuditLog(c) => audit::run(c, fmt),
    }
}

fn login(a: LoginArgs, fmt: Format) -> anyhow::Result<()> {
    let c = Client::new(&a.url, &a.api_key, &a.api_secret);
    let me = c
        .get(&format!("/iam/v2/api-keys/{}", enc(&a.api_key)))
        .context("checking the credentials")?;
    let mut cfg = CliConfig::load()?;
    let ctx = cfg.contexts.entry(a.context.clone()).or_default();
    ctx.url = a.url.trim_end_matches('/').to_owned();
    ctx.api_key = a.api_key;
    ctx.api_secret = a.api_secret;
    cfg.current = Some(a.context.clone());
    cfg.save()?;
    let owner = me
        .pointer("/spec/owner/id")
        .and_then(Value::as_str)
        .unwrap_or("?");
    print_done(
        fmt,
        &format!(
            "Logged in to {} as {owner} (context `{}`, saved in {}).",
            a.url,
            a.context,
            context::path()?.display()
        ),
        &me,
    )
}

fn environment(c: EnvCmd, fmt: Format) -> anyhow::Result<()> {
    let cl = client()?;
    match c {
        EnvCmd::Create { name } => print_object(
            fmt,
            &cl.post("/org/v2/environments", &json!({ "display_name": name }))?,
            ENV_COLS,
        ),
        EnvCmd::List => print_list(fmt, &cl.get_all("/org/v2/environments")?, ENV_COLS),
        EnvCmd::Describe { id } => print_object(
            fmt,
            &cl.get(&format!("/org/v2/environments/{}", enc(&id)))?,
            ENV_COLS,
        ),
        EnvCmd::Update { id, name } => print_object(
            fmt,
            &cl.patch(
                &format!("/org/v2/environments/{}", enc(&id)),
                &json!({ "display_name": name }),
            )?,
            ENV_COLS,
        ),
        EnvCmd::Use { id } => {
            cl.get(&format!("/org/v2/environments/{}", enc(&id)))?;
            context::set_in_use(|c| c.environment = Some(id.clone()))?;
            print_done(
                fmt,
                &format!("Using environment \"{id}\"."),
                &json!({ "id": id }),
            )
        }
        EnvCmd::Delete { id } => {
            cl.delete(&format!("/org/v2/environments/{}", enc(&id)))?;
            print_done(
                fmt,
                &format!("Deleted environment \"{id}\"."),
                &json!({ "id": id, "deleted": true }),
            )
        }
    }
}

fn resource(base: &str, env_scoped: bool, c: ResourceCmd, fmt: Format) -> anyhow::Result<()> {
    let cl = client()?;
    let tableflow = base.starts_with("/tableflow");
    let one = |id: Option<String>, env: &Option<String>| -> anyhow::Result<String> {
        let id = match id {
            Some(id) => id,
            None if tableflow => "tableflow".to_owned(),
            None => bail!("give the id"),
        };
        let mut p = format!("{base}/{}", enc(&id));
        if let Some(e) = env {
            p.push_str(&format!("?environment={}", enc(e)));
        } else if env_scoped {
            bail!("--environment is required");
        }
        Ok(p)
    };
    match c {
        ResourceCmd::Create {
            name,
            environment,
            upstream,
            region,
            cluster,
            credential_identity,
            csu,
            security,
        } => {
            let environment = match environment {
                Some(e) => e,
                None => context::in_use(|c| c.environment.clone())
                    .context("give --environment (or `keygate environment use ID`)")?,
            };
            let mut spec = json!({ "display_name": name, "environment": { "id": environment }, "upstream": upstream });
            if let Some(r) = region {
                spec["region"] = json!(r);
            }
            if base.starts_with("/ksqldbcm") {
                let cluster = cluster.or_else(|| context::in_use(|c| c.kafka_cluster.clone()));
                if let Some(c) = cluster {
                    spec["kafka_cluster"] = json!({ "id": c });
                }
                if let Some(c) = credential_identity {
                    spec["credential_identity"] = json!({ "id": c });
                }
                if let Some(n) = csu {
                    spec["csu"] = json!(n);
                }
            } else if cluster.is_some() || credential_identity.is_some() || csu.is_some() {
                bail!("--cluster, --credential-identity and --csu are for ksqlDB clusters");
            }
            if let Some(u) = security.to_json()? {
                spec["upstream_security"] = u;
            }
            print_object(fmt, &cl.post(base, &json!({ "spec": spec }))?, RES_COLS)
        }
        ResourceCmd::List { environment } => {
            let path = match environment {
                Some(e) => format!("{base}?environment={}", enc(&e)),
                None => base.to_owned(),
            };
            print_list(fmt, &cl.get_all(&path)?, RES_COLS)
        }
        ResourceCmd::Describe { id, environment } => {
            print_object(fmt, &cl.get(&one(id, &environment)?)?, RES_COLS)
        }
        ResourceCmd::Update {
            id,
            environment,
            name,
            upstream,
            security,
        } => {
            let mut spec = json!({});
            if let Some(n) = name {
                spec["display_name"] = json!(n);
            }
            if let Some(u) = upstream {
                spec["upstream"] = json!(u);
            }
            if let Some(u) = security.to_json()? {
                spec["upstream_security"] = u;
            }
            print_object(
                fmt,
                &cl.patch(&one(id, &environment)?, &json!({ "spec": spec }))?,
                RES_COLS,
            )
        }
        ResourceCmd::Delete { id, environment } => {
            let path = one(id, &environment)?;
            cl.delete(&path)?;
            print_done(fmt, "Deleted.", &json!({ "deleted": path }))
        }
        ResourceCmd::Use { id } => {
            if base != "/cmk/v2/clusters" {
                bail!("only Kafka clusters can be put in use (`keygate kafka cluster use lkc-…`)");
            }
            cl.get(&format!("{base}/{}", enc(&id)))?;
            context::set_in_use(|c| c.kafka_cluster = Some(id.clone()))?;
            print_done(
                fmt,
                &format!("Using Kafka cluster \"{id}\"."),
                &json!({ "id": id }),
            )
        }
    }
}

fn user(c: UserCmd, fmt: Format) -> anyhow::Result<()> {
    let cl = client()?;
    match c {
        UserCmd::Create {
            email,
            full_name,
            auth_type,
            password,
        } => {
            let mut body = json!({ "email": email, "full_name": full_name });
            if let Some(a) = auth_type {
                body["auth_type"] = json!(a);
            }
            if let Some(p) = password {
                body["password"] = json!(p);
            }
            print_object(fmt, &cl.post("/iam/v2/users", &body)?, USER_COLS)
        }
        UserCmd::SetPassword { id, password } => {
            let v = cl.post(
                &format!("/iam/v2/users/{}/password", enc(&id)),
                &json!({ "password": password }),
            )?;
            print_done(
                fmt,
                &format!("Password of {id} set; its console sessions ended."),
                &v,
            )
        }
        UserCmd::List => print_list(fmt, &cl.get_all("/iam/v2/users")?, USER_COLS),
        UserCmd::Describe { id } => print_object(
            fmt,
            &cl.get(&format!("/iam/v2/users/{}", enc(&id)))?,
            USER_COLS,
        ),
        UserCmd::Update { id, full_name } => print_object(
            fmt,
            &cl.patch(
                &format!("/iam/v2/users/{}", enc(&id)),
                &json!({ "full_name": full_name }),
            )?,
            USER_COLS,
        ),
        UserCmd::Delete { id } => {
            cl.delete(&format!("/iam/v2/users/{}", enc(&id)))?;
            print_done(
                fmt,
                &format!("Deleted user \"{id}\"."),
                &json!({ "id": id, "deleted": true }),
            )
        }
    }
}

fn service_account(c: SaCmd, fmt: Format) -> anyhow::Result<()> {
    let cl = client()?;
    match c {
        SaCmd::Create { name, description } => print_object(
            fmt,
            &cl.post(
                "/iam/v2/service-accounts",
                &json!({ "display_name": name, "description": description }),
            )?,
            SA_COLS,
        ),
        SaCmd::List => print_list(fmt, &cl.get_all("/iam/v2/service-accounts")?, SA_COLS),
        SaCmd::Describe { id } => print_object(
            fmt,
            &cl.get(&format!("/iam/v2/service-accounts/{}", enc(&id)))?,
            SA_COLS,
        ),
        SaCmd::Update {
            id,
            name,
            description,
        } => {
            let mut body = json!({});
            if let Some(n) = name {
                body["display_name"] = json!(n);
            }
            if let Some(d) = description {
                body["description"] = json!(d);
            }
            print_object(
                fmt,
                &cl.patch(&format!("/iam/v2/service-accounts/{}", enc(&id)), &body)?,
                SA_COLS,
            )
        }
        SaCmd::Use { id } => {
            cl.get(&format!("/iam/v2/service-accounts/{}", enc(&id)))?;
            context::set_in_use(|c| c.service_account = Some(id.clone()))?;
            print_done(
                fmt,
                &format!("Using service account \"{id}\"."),
                &json!({ "id": id }),
            )
        }
        SaCmd::Unset => {
            context::set_in_use(|c| c.service_account = None)?;
            print_done(fmt, "No service account in use.", &json!({ "id": null }))
        }
        SaCmd::Delete { id } => {
            cl.delete(&format!("/iam/v2/service-accounts/{}", enc(&id)))?;
            print_done(
                fmt,
                &format!("Deleted service account \"{id}\"."),
                &json!({ "id": id, "deleted": true }),
            )
        }
    }
}

fn org_crn(cl: &Client) -> anyhow::Result<String> {
    let orgs = cl.get("/org/v2/organizations")?;
    orgs.pointer("/data/0/metadata/resource_name")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("the server did not return its organization"))
}

/// Build the CRN pattern a role binding applies to from the scope flags.
pub(crate) fn build_crn(org: &str, s: &ScopeArgs) -> anyhow::Result<String> {
    if let Some(raw) = &s.crn_pattern {
        return Ok(raw.clone());
    }
    let mut s = s.clone();
    if s.current_environment {
        s.environment = Some(context::in_use(|c| c.environment.clone()).ok_or_else(|| {
            anyhow!("no environment in use: run `keygate environment use env-…`")
        })?);
    }
    match (s.cloud_cluster.take(), &s.kafka_cluster) {
        (Some(a), Some(b)) if &a != b => {
            bail!("--cloud-cluster and --kafka-cluster name different clusters")
        }
        (Some(a), None) => s.kafka_cluster = Some(a),
        _ => {}
    }
    let s = &s;
    let star = if s.prefix { "*" } else { "" };
    let mut crn = org.to_owned();
    let resource = s
        .resource
        .as_deref()
        .map(|r| {
            r.split_once(':')
                .ok_or_else(|| anyhow!("--resource must be Type:name, e.g. Topic:orders"))
        })
        .transpose()?;
    if let Some(("ServiceAccount" | "serviceaccount" | "service-account", sa)) = resource {
        return Ok(format!("{crn}/service-account={sa}"));
    }
    let needs_env = s.kafka_cluster.is_some()
        || s.schema_registry_cluster.is_some()
        || s.ksql_cluster.is_some()
        || s.flink_region.is_some();
    match &s.environment {
        Some(e) => crn.push_str(&format!("/environment={e}")),
        None if needs_env => bail!("--environment is required with a cluster or region"),
        None => {}
    }
    if let Some(c) = &s.kafka_cluster {
        crn.push_str(&format!("/cloud-cluster={c}"));
        if let Some((t, name)) = resource {
            let key = match t.to_ascii_lowercase().as_str() {
                "topic" => "topic",
                "group" | "consumergroup" | "consumer-group" => "group",
                "transactionalid" | "transactional-id" => "transactional-id",
                other => {
                    bail!("a Kafka resource is Topic, Group or TransactionalId, not `{other}`")
                }
            };
            crn.push_str(&format!("/kafka={c}/{key}={name}{star}"));
        }
    } else if let Some(sr) = &s.schema_registry_cluster {
        crn.push_str(&format!("/schema-registry={sr}"));
        if let Some((_, name)) = resource {
            crn.push_str(&format!("/subject={name}{star}"));
        }
    } else if let Some(k) = &s.ksql_cluster {
        crn.push_str(&format!("/ksql={k}"));
    } else if let Some(f) = &s.flink_region {
        crn.push_str(&format!("/flink-region={f}"));
    } else if resource.is_some() {
        bail!("--resource needs --kafka-cluster or --schema-registry-cluster");
    }
    Ok(crn)
}

/// Add the joined names the human tables show.
fn role_rows(mut r: Value) -> Value {
    let join = |v: &Value, key: &str| {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| {
                        if key.is_empty() {
                            x.as_str()
                        } else {
                            x[key].as_str()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    r["scope_names"] = json!(join(&r["scopes"], "scope"));
    if let Some(scopes) = r["scopes"].as_array_mut() {
        for s in scopes {
            s["control_plane_names"] = json!(join(&s["control_plane"], ""));
        }
    }
    r
}

fn role(c: RoleCmd, fmt: Format) -> anyhow::Result<()> {
    let cl = client()?;
    match c {
        RoleCmd::List => {
            let list = cl.get("/iam/v2/roles")?;
            let rows: Vec<Value> = list["data"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(role_rows)
                .collect();
            print_list(fmt, &rows, ROLE_COLS)
        }
        RoleCmd::Describe { name } => {
            let r = role_rows(cl.get(&format!("/iam/v2/roles/{}", enc(&name)))?);
            if !matches!(fmt, Format::Human) {
                return print_object(fmt, &r, ROLE_COLS);
            }
            outln!(
                "{}: {}",
                name,
                r["description"].as_str().unwrap_or_default()
            );
            outln!(
                "Patterns may end in `*`: {}",
                if r["allows_prefix"] == json!(true) {
                    "yes"
                } else {
                    "no"
                }
            );
            print_list(
                fmt,
                r["scopes"].as_array().map(Vec::as_slice).unwrap_or(&[]),
                ROLE_SCOPE_COLS,
            )?;
            if let Some(k) = r["kafka"].as_object().filter(|k| !k.is_empty()) {
                outln!("Kafka operations:");
                for (rt, ops) in k {
                    let ops: Vec<&str> = ops
                        .as_array()
                        .map(|a| a.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    outln!("  {rt}: {}", ops.join(", "));
                }
            }
            if let Some(s) = r["services"].as_array().filter(|s| !s.is_empty()) {
                let s: Vec<&str> = s.iter().filter_map(Value::as_str).collect();
                outln!("Service operations: {}", s.join(", "));
            }
            Ok(())
        }
    }
}

fn role_binding(c: RbCmd, fmt: Format) -> anyhow::Result<()> {
    let cl = client()?;
    let list = |principal: &Option<String>,
                role: &Option<String>,
                scope: &ScopeArgs|
     -> anyhow::Result<Vec<Value>> {
        let crn = build_crn(&org_crn(&cl)?, scope)?;
        let mut path = format!("/iam/v2/role-bindings?crn_pattern={}", enc(&crn));
        if let Some(p) = principal {
            path.push_str(&format!("&principal={}", enc(p)));
        }
        if let Some(r) = role {
            path.push_str(&format!("&role_name={}", enc(r)));
        }
        cl.get_all(&path)
    };
    match c {
        RbCmd::Create {
            principal,
            role,
            scope,
        } => {
            let crn = build_crn(&org_crn(&cl)?, &scope)?;
            let rb = cl.post(
                "/iam/v2/role-bindings",
                &json!({ "principal": principal, "role_name": role, "crn_pattern": crn }),
            )?;
            print_object(fmt, &rb, RB_COLS)
        }
        RbCmd::List {
            principal,
            role,
            inclusive,
            scope,
        } => {
            let mut all = list(&principal, &role, &scope)?;
            let scoped = scope.crn_pattern.is_some()
                || scope.environment.is_some()
                || scope.current_environment
                || scope.resource.is_some();
            if scoped && !inclusive {
                let at = build_crn(&org_crn(&cl)?, &scope)?;
                all.retain(|b| b["crn_pattern"].as_str() == Some(at.as_str()));
            }
            print_list(fmt, &all, RB_COLS)
        }
        RbCmd::Delete {
            id,
            principal,
            role,
            scope,
        } => {
            let id = match id {
                Some(id) => id,
                None => {
                    let (Some(_), Some(_)) = (&principal, &role) else {
                        bail!("give a role-binding id, or --principal, --role and the scope")
                    };
                    let crn = build_crn(&org_crn(&cl)?, &scope)?;
                    let found = list(&principal, &role, &scope)?;
                    let exact: Vec<&Value> = found
                        .iter()
                        .filter(|b| b["crn_pattern"] == json!(crn))
                        .collect();
                    match exact.as_slice() {
                        [one] => one["id"].as_str().unwrap_or_default().to_owned(),
                        [] => bail!("no such role binding"),
                        _ => bail!("several role bindings match; delete by id"),
                    }
                }
            };
            cl.delete(&format!("/iam/v2/role-bindings/{}", enc(&id)))?;
            print_done(
                fmt,
                &format!("Deleted role binding \"{id}\"."),
                &json!({ "id": id, "deleted": true }),
            )
        }
    }
}

fn acl_target(a: &AclArgs) -> Option<(&'static str, String)> {
    if let Some(t) = &a.topic {
        Some(("TOPIC", t.clone()))
    } else if let Some(g) = &a.consumer_group {
        Some(("GROUP", g.clone()))
    } else if let Some(t) = &a.transactional_id {
        Some(("TRANSACTIONAL_ID", t.clone()))
    } else if a.cluster_scope {
        Some(("CLUSTER", "kafka-cluster".to_owned()))
    } else {
        None
    }
}

fn acl_principal(a: &AclArgs) -> Option<String> {
    a.service_account
        .as_ref()
        .map(|sa| format!("User:{sa}"))
        .or_else(|| a.principal.clone())
}

fn acl_query(a: &AclArgs, op: Option<&str>) -> String {
    let mut q = Vec::new();
    if let Some(p) = acl_principal(a) {
        q.push(format!("principal={}", enc(&p)));
    }
    if let Some((t, n)) = acl_target(a) {
        q.push(format!("resource_type={t}"));
        q.push(format!("resource_name={}", enc(&n)));
        q.push(format!(
            "pattern_type={}",
            if a.prefix { "PREFIXED" } else { "LITERAL" }
        ));
    }
    if a.allow {
        q.push("permission=ALLOW".into());
    }
    if a.deny {
        q.push("permission=DENY".into());
    }
    if let Some(op) = op {
        q.push(format!("operation={}", enc(op)));
    }
    q.join("&")
}

fn acl(c: AclCmd, fmt: Format) -> anyhow::Result<()> {
    let cl = client()?;
    let (AclCmd::Create(a) | AclCmd::List(a) | AclCmd::Delete(a)) = &c;
    let cluster = a
        .cluster
        .clone()
        .or_else(|| context::in_use(|c| c.kafka_cluster.clone()))
        .ok_or_else(|| anyhow!("give --cluster, or run `keygate kafka cluster use lkc-…`"))?;
    match c {
        AclCmd::Create(a) => {
            let principal = acl_principal(&a)
                .ok_or_else(|| anyhow!("give --service-account or --principal"))?;
            let (rt, name) = acl_target(&a).ok_or_else(|| {
                anyhow!("give --topic, --consumer-group, --transactional-id or --cluster-scope")
            })?;
            if !a.allow && !a.deny {
                bail!("give --allow or --deny");
            }
            if a.operations.is_empty() {
                bail!("give --operations, e.g. --operations write,describe");
            }
            let data: Vec<Value> = a
                .operations
                .iter()
                .map(|op| {
                    json!({
                        "resource_type": rt, "resource_name": name,
                        "pattern_type": if a.prefix { "PREFIXED" } else { "LITERAL" },
                        "principal": principal, "host": "*",
                        "operation": op.trim().to_ascii_uppercase().replace('-', "_"),
                        "permission": if a.allow { "ALLOW" } else { "DENY" },
                    })
                })
                .collect();
            cl.post(
                &format!("/kafka/v3/clusters/{}/acls:batch", enc(&cluster)),
                &json!({ "data": data }),
            )?;
            print_list(fmt, &data, ACL_COLS)
        }
        AclCmd::List(a) => {
            let list = cl.get(&format!(
                "/kafka/v3/clusters/{}/acls?{}",
                enc(&cluster),
                acl_query(&a, None)
            ))?;
            print_list(
                fmt,
                list["data"].as_array().map(Vec::as_slice).unwrap_or(&[]),
                ACL_COLS,
            )
        }
        AclCmd::Delete(a) => {
            let ops: Vec<Option<String>> = if a.operations.is_empty() {
                vec![None]
            } else {
                a.operations
                    .iter()
                    .map(|o| Some(o.trim().to_ascii_uppercase().replace('-', "_")))
                    .collect()
            };
            let mut deleted = Vec::new();
            for op in ops {
                // Kafka REST's delete names all four of these; ANY where not given.
                let mut q = acl_query(&a, op.as_deref());
                for k in ["resource_type", "pattern_type", "operation", "permission"] {
                    if !q.split('&').any(|p| p.starts_with(&format!("{k}="))) {
                        q.push_str(&format!("{}{k}=ANY", if q.is_empty() { "" } else { "&" }));
                    }
                }
                let r = cl.delete(&format!("/kafka/v3/clusters/{}/acls?{q}", enc(&cluster),))?;
                deleted.extend(r["data"].as_array().cloned().unwrap_or_default());
            }
            if matches!(fmt, Format::Human) {
                outln!("Deleted {} ACL(s).", deleted.len());
            }
            print_list(fmt, &deleted, ACL_COLS)
        }
    }
}

/// Parse `90d`, `12h`, `30m`, `2w`, `45s`.
pub(crate) fn parse_duration(s: &str) -> anyhow::Result<chrono::Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(
        s.find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| anyhow!("`{s}` needs a unit: s, m, h, d or w"))?,
    );
    let n: i64 = num
        .parse()
        .map_err(|_| anyhow!("`{s}` is not a duration like 90d"))?;
    let d = match unit {
        "s" => chrono::Duration::try_seconds(n),
        "m" => chrono::Duration::try_minutes(n),
        "h" => chrono::Duration::try_hours(n),
        "d" => chrono::Duration::try_days(n),
        "w" => chrono::Duration::try_weeks(n),
        _ => bail!("`{s}`: unknown unit `{unit}` (s, m, h, d, w)"),
    };
    d.filter(|d| *d > chrono::Duration::zero())
        .ok_or_else(|| anyhow!("`{s}` is out of range"))
}

fn client_config(
    kind: ClientConfig,
    key_obj: &Value,
    secret: &str,
    cl: &Client,
) -> anyhow::Result<String> {
    let key = key_obj["id"].as_str().unwrap_or_default();
    let res = &key_obj["spec"]["resource"];
    let rid = res["id"].as_str().unwrap_or_default();
    if rid.starts_with("lkc-") {
        let cluster = cl.get(&format!("/cmk/v2/clusters/{}", enc(rid)))?;
        let bootstrap = cluster
            .pointer("/spec/kafka_bootstrap_endpoint")
            .or_else(|| cluster.pointer("/spec/upstream"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        return Ok(match kind {
            ClientConfig::Librdkafka => format!(
                "# librdkafka / kcat -F / confluent-kafka: key {key} for {rid}\nbootstrap.servers={bootstrap}\nsecurity.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.username={key}\nsasl.password={secret}\n"
            ),
            ClientConfig::Java => format!(
                "# Java client: key {key} for {rid}\nbootstrap.servers={bootstrap}\nsecurity.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username='{key}' password='{secret}';\n"
            ),
            ClientConfig::Python => format!(
                "# confluent-kafka-python: key {key} for {rid}\nconfig = {{\n    \"bootstrap.servers\": \"{bootstrap}\",\n    \"security.protocol\": \"SASL_PLAINTEXT\",\n    \"sasl.mechanism\": \"PLAIN\",\n    \"sasl.username\": \"{key}\",\n    \"sasl.password\": \"{secret}\",\n}}\n"
            ),
            ClientConfig::Env => format!(
                "KAFKA_BOOTSTRAP_SERVERS={bootstrap}\nKAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT\nKAFKA_SASL_MECHANISM=PLAIN\nKAFKA_SASL_USERNAME={key}\nKAFKA_SASL_PASSWORD={secret}\n"
            ),
        });
    }
    if rid == "CLOUD" {
        return Ok(match kind {
            ClientConfig::Env => format!("KEYGATE_API_KEY={key}\nKEYGATE_API_SECRET={secret}\n"),
            ClientConfig::Python => {
                format!("config = {{\"api_key\": \"{key}\", \"api_secret\": \"{secret}\"}}\n")
            }
            _ => format!("api.key={key}\napi.secret={secret}\n"),
        });
    }
    // HTTP services (Schema Registry and friends): Basic credentials.
    Ok(match kind {
        ClientConfig::Env => format!("BASIC_AUTH_USER_INFO={key}:{secret}\n"),
        ClientConfig::Python => {
            format!("config = {{\"basic.auth.credentials.source\": \"USER_INFO\", \"basic.auth.user.info\": \"{key}:{secret}\"}}\n")
        }
        _ => format!(
            "basic.auth.credentials.source=USER_INFO\nbasic.auth.user.info={key}:{secret}\n"
        ),
    })
}

fn write_secret_file(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

fn my_account(cl: &Client) -> anyhow::Result<String> {
    let cfg = CliConfig::load()?;
    let me = cl.get(&format!(
        "/iam/v2/api-keys/{}",
        enc(&cfg.current()?.api_key)
    ))?;
    me.pointer("/spec/owner/id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("cannot tell who you are"))
}

fn api_key(c: KeyCmd, fmt: Format) -> anyhow::Result<()> {
    let cl = client()?;
    match c {
        KeyCmd::Create {
            resource,
            environment,
            service_account,
            description,
            name,
            expires_in,
            expires_at,
            client_config: cc,
            output_file,
            use_it,
        } => {
            let service_account =
                service_account.or_else(|| context::in_use(|c| c.service_account.clone()));
            let expires_at = match (expires_in, expires_at) {
                (Some(d), _) => Some((chrono::Utc::now() + parse_duration(&d)?).to_rfc3339()),
                (None, Some(t)) => Some(t),
                (None, None) => None,
            };
            let mut spec = json!({ "display_name": name, "description": description, "resource": { "id": resource } });
            if let Some(e) = environment {
                spec["resource"]["environment"] = json!(e);
            }
            if let Some(sa) = service_account {
                spec["owner"] = json!({ "id": sa });
            }
            if let Some(t) = expires_at {
                spec["expires_at"] = json!(t);
            }
            let k = cl.post("/iam/v2/api-keys", &json!({ "spec": spec }))?;
            let key = k["id"].as_str().unwrap_or_default().to_owned();
            let secret = k
                .pointer("/spec/secret")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let rid = k
                .pointer("/spec/resource/id")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let mut cfg = CliConfig::load()?;
            let ctx = cfg.current_mut()?;
            if let Some(r) = rid.clone().filter(|_| use_it) {
                ctx.active_keys.insert(r, key.clone());
            }
            ctx.stored_keys.insert(
                key.clone(),
                StoredKey {
                    secret: secret.clone(),
                    resource: rid,
                },
            );
            cfg.save()?;
            match fmt {
                Format::Human => {
                    outln!("The API key works immediately.");
                    outln!("Save the API key and secret now: the secret is shown only once and cannot be retrieved later.");
                    outln!("(It was also saved in your local CLI context.)");
                    print_object(
                        fmt,
                        &json!({ "key": key, "secret": secret }),
                        &[("API Key", "/key"), ("API Secret", "/secret")],
                    )?;
                }
                _ => print_object(fmt, &k, &[])?,
            }
            if let Some(kind) = cc {
                let text = client_config(kind, &k, &secret, &cl)?;
                match output_file {
                    Some(p) => {
                        write_secret_file(&p, &text)?;
                        if matches!(fmt, Format::Human) {
                            outln!(
                                "Client configuration written to {} (mode 0600).",
                                p.display()
                            );
                        }
                    }
                    None => out!("{text}"),
                }
            }
            Ok(())
        }
        KeyCmd::List {
            resource,
            environment,
            service_account,
            current_user,
        } => {
            let mut q = Vec::new();
            let owner = if current_user {
                Some(my_account(&cl)?)
            } else {
                service_account
            };
            if let Some(o) = owner {
                q.push(format!("spec.owner={}", enc(&o)));
            }
            if let Some(r) = resource {
                q.push(format!("spec.resource={}", enc(&r)));
            }
            if let Some(e) = environment {
                q.push(format!("spec.resource.environment={}", enc(&e)));
            }
            let path = if q.is_empty() {
                "/iam/v2/api-keys".to_owned()
            } else {
                format!("/iam/v2/api-keys?{}", q.join("&"))
            };
            print_list(fmt, &cl.get_all(&path)?, KEY_COLS)
        }
        KeyCmd::Describe { key } => {
            let mut k = cl.get(&format!("/iam/v2/api-keys/{}", enc(&key)))?;
            // Its recent authentications and calls, newest first, from the audit log.
            let recent = cl
                .get(&format!(
                    "/audit/v1/events?identifier={}&order=desc&page_size=10",
                    enc(&key)
                ))?
                .get("data")
                .cloned()
                .unwrap_or(Value::Array(Vec::new()));
            match fmt {
                Format::Human => {
                    print_object(fmt, &k, KEY_COLS)?;
                    let items = recent.as_array().cloned().unwrap_or_default();
                    outln!();
                    if items.is_empty() {
                        outln!("  No recent authentications in the audit log.");
                        Ok(())
                    } else {
                        outln!("  Recent authentications and calls (newest first):");
                        print_list(fmt, &items, audit::EVENT_COLS)
                    }
                }
                _ => {
                    k["recent_activity"] = recent;
                    print_object(fmt, &k, KEY_COLS)
                }
            }
        }
        KeyCmd::Update {
            key,
            description,
            name,
        } => {
            let mut spec = json!({});
            if let Some(d) = description {
                spec["description"] = json!(d);
            }
            if let Some(n) = name {
                spec["display_name"] = json!(n);
            }
            print_object(
                fmt,
                &cl.patch(
                    &format!("/iam/v2/api-keys/{}", enc(&key)),
                    &json!({ "spec": spec }),
                )?,
                KEY_COLS,
            )
        }
        KeyCmd::Disable { key } => print_object(
            fmt,
            &cl.post(
                &format!("/iam/v2/api-keys/{}/disable", enc(&key)),
                &json!({}),
            )?,
            KEY_COLS,
        ),
        KeyCmd::Enable { key } => print_object(
            fmt,
            &cl.post(
                &format!("/iam/v2/api-keys/{}/enable", enc(&key)),
                &json!({}),
            )?,
            KEY_COLS,
        ),
        KeyCmd::Delete { keys, force: _ } => {
            let mut done = Vec::new();
            for key in keys {
                cl.delete(&format!("/iam/v2/api-keys/{}", enc(&key)))?;
                let mut cfg = CliConfig::load()?;
                let ctx = cfg.current_mut()?;
                ctx.stored_keys.remove(&key);
                ctx.active_keys.retain(|_, k| k != &key);
                cfg.save()?;
                done.push(key);
            }
            let listed = done.iter().map(|k| format!("\"{k}\"")).collect::<Vec<_>>();
            print_done(
                fmt,
                &format!("Deleted API key(s) {}.", listed.join(", ")),
                &json!({ "ids": done, "deleted": true }),
            )
        }
        KeyCmd::Store {
            key,
            secret,
            resource,
        } => {
            let resource = resource.or_else(|| {
                cl.get(&format!("/iam/v2/api-keys/{}", enc(&key)))
                    .ok()
                    .and_then(|k| {
                        k.pointer("/spec/resource/id")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    })
            });
            let mut cfg = CliConfig::load()?;
            cfg.current_mut()?
                .stored_keys
                .insert(key.clone(), StoredKey { secret, resource });
            cfg.save()?;
            print_done(
                fmt,
                &format!("Stored the secret of API key \"{key}\"."),
                &json!({ "id": key, "stored": true }),
            )
        }
        KeyCmd::Use { key, resource } => {
            let mut cfg = CliConfig::load()?;
            let ctx = cfg.current_mut()?;
            let stored = ctx.stored_keys.get(&key).ok_or_else(|| anyhow!("the secret of \"{key}\" is not stored; run `keygate api-key store {key} SECRET` first"))?;
            let resource = resource
                .or_else(|| stored.resource.clone())
                .ok_or_else(|| anyhow!("give --resource"))?;
            ctx.active_keys.insert(resource.clone(), key.clone());
            cfg.save()?;
            print_done(
                fmt,
                &format!("Using API key \"{key}\" for resource \"{resource}\"."),
                &json!({ "id": key, "resource": resource }),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        // Catches clashing argument ids (e.g. a subcommand's `output` and the global
        // `-o/--output`) at test time instead of as a panic when the flag is used.
        <Cli as clap::CommandFactory>::command().debug_assert();
    }

    #[test]
    fn crn_from_flags() {
        let org = "crn://keygate/organization=org-1";
        let s = ScopeArgs {
            environment: Some("env-1".into()),
            kafka_cluster: Some("lkc-1".into()),
            resource: Some("Topic:orders".into()),
            prefix: true,
            ..ScopeArgs::default()
        };
        assert_eq!(build_crn(org, &s).ok().as_deref(), Some("crn://keygate/organization=org-1/environment=env-1/cloud-cluster=lkc-1/kafka=lkc-1/topic=orders*"));
        assert_eq!(
            build_crn(org, &ScopeArgs::default()).ok().as_deref(),
            Some(org)
        );
        let sa = ScopeArgs {
            resource: Some("ServiceAccount:sa-1".into()),
            ..ScopeArgs::default()
        };
        assert_eq!(
            build_crn(org, &sa).ok().as_deref(),
            Some("crn://keygate/organization=org-1/service-account=sa-1")
        );
        assert!(build_crn(
            org,
            &ScopeArgs {
                kafka_cluster: Some("lkc-1".into()),
                ..ScopeArgs::default()
            }
        )
        .is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90d").ok(), chrono::Duration::try_days(90));
        assert!(parse_duration("90").is_err());
        assert!(parse_duration("0d").is_err());
        assert!(parse_duration("5y").is_err());
    }
}
