//! `keygate server`: wire the store, the IAM service, the snapshot follower, the key
//! usage recorder and the REST API together, and run until SIGINT/SIGTERM.

use crate::config::{Database, ServerConfig};
use anyhow::{bail, Context};
use keygate_api::{ApiConfig, AppState};
use keygate_iam::{
    Iam, IamConfig, OAuthConfig, OAuthSettings, SecretHasher, UsageRecorder, PEPPER_LEN,
};
use keygate_oauth::fetch::Fetcher;
use keygate_store::{SqlStore, Store};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Open the configured database (PostgreSQL: connect, migrate, follow its changes).
pub(crate) async fn open_store(db: &Database) -> anyhow::Result<Arc<SqlStore>> {
    Ok(Arc::new(match db {
        Database::Sqlite(path) => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                create_data_dir(parent)?;
            }
            SqlStore::open_sqlite(path).with_context(|| format!("opening {}", path.display()))?
        }
        Database::Postgres(url, pool) => SqlStore::connect_postgres_with(url, *pool)
            .await
            .with_context(|| format!("connecting to {db:?}"))?,
    }))
}

/// HMAC of a constant under the pepper: tells whether two installations (or two
/// instances of one) use the same pepper, without revealing it.
pub(crate) fn pepper_check(h: &SecretHasher) -> String {
    h.derive("export-check", "v1")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The pepper for this database: loaded (or, for a new installation, created), then
/// checked against the one every other instance of the installation uses.
pub(crate) async fn pepper_for(store: &dyn Store, path: &Path) -> anyhow::Result<SecretHasher> {
    let recorded = store.setting("pepper_check").await?;
    if recorded.is_some() && !path.exists() {
        bail!(
            "{} does not exist, but this database already belongs to an installation: copy its pepper.key there (mode 0600) or point --pepper-file at it. Every key's hash depends on it",
            path.display()
        );
    }
    let hasher = SecretHasher::new(&load_pepper(path)?);
    let check = pepper_check(&hasher);
    if store.init_setting("pepper_check", &check).await? != check {
        bail!(
            "{} is not the pepper of this database's installation: no key would authenticate. Use the pepper.key every other instance uses",
            path.display()
        );
    }
    Ok(hasher)
}

/// Read the pepper, or create it (mode 0600) at first start.
pub(crate) fn load_pepper(path: &Path) -> anyhow::Result<[u8; PEPPER_LEN]> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_data_dir(dir)?;
    }
    match std::fs::read(path) {
        Ok(bytes) => {
            let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "pepper file is readable by others; chmod 600 it");
            }
            bytes.try_into().map_err(|_| {
                anyhow::anyhow!("{} is not a {PEPPER_LEN}-byte pepper file", path.display())
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut pepper = [0u8; PEPPER_LEN];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut pepper);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("creating {}", path.display()))?;
            f.write_all(&pepper)?;
            f.sync_all()?;
            Ok(pepper)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn create_data_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    Ok(())
}

pub(crate) async fn run(cfg: ServerConfig, args: crate::config::ServerArgs) -> anyhow::Result<()> {
    if let Some(level) = &cfg.log_level {
        crate::logging::set_level(level)?;
    }
    // Before anything records: the store's first queries are measured too.
    let exporter = match cfg.metrics {
        true => Some(crate::metrics::install()?),
        false => None,
    };
    let metrics_listener = match cfg.metrics_listen.filter(|_| cfg.metrics) {
        Some(a) => Some(
            tokio::net::TcpListener::bind(a)
                .await
                .with_context(|| format!("binding the metrics listener on {a}"))?,
        ),
        None => None,
    };
    create_data_dir(&cfg.data_dir)?;
    let sql = open_store(&cfg.database).await?;
    tracing::info!(database = ?cfg.database, "database ready");
    let store: Arc<dyn Store> = sql.clone();
    let hasher = pepper_for(store.as_ref(), &cfg.pepper_file).await?;

    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("binding {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    let hg = &cfg.http_gateway;
    let services_listener = tokio::net::TcpListener::bind(hg.listen)
        .await
        .with_context(|| format!("binding the HTTP gateway on {}", hg.listen))?;
    let services_addr = services_listener.local_addr()?;
    let Certificates {
        http: http_tls,
        gateway: gateway_tls,
        services: services_tls,
    } = load_certificates(&cfg.tls, hg.tls.as_ref())?;
    if cfg.gateway.sni.is_some() && gateway_tls.is_none() {
        bail!("gateway_sni_domain routes by TLS server name: it needs gateway_tls_cert and gateway_tls_key");
    }
    let scheme = if http_tls.is_some() { "https" } else { "http" };
    let public_url = cfg
        .public_url
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{addr}"));
    let services_url = hg.public_url.clone().unwrap_or_else(|| {
        let scheme = if services_tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{services_addr}")
    });

    let created = Iam::bootstrap(
        store.as_ref(),
        &hasher,
        &cfg.organization_name,
        &cfg.admin_email,
        &cfg.crn_authority,
    )
    .await?;
    let iam = Arc::new(
        Iam::open(
            store.clone(),
            hasher,
            IamConfig {
                max_keys_per_owner: cfg.max_keys_per_owner,
                oauth: OAuthConfig {
                    settings: OAuthSettings {
                        // STS tokens are issued by this server's public URL.
                        issuer: public_url.clone(),
                        skew_secs: cfg.oauth.clock_skew.as_secs() as i64,
                    },
                    fetcher: Fetcher::new(
                        cfg.oauth.fetch_timeout.min(Duration::from_secs(2)),
                        cfg.oauth.fetch_timeout,
                    ),
                    unknown_key_refresh_interval: cfg.oauth.unknown_kid_refresh,
                    sts_key_rotation: cfg.oauth.sts_key_rotation,
                },
                max_staleness: cfg.max_staleness,
                auth_throttle: cfg.auth_throttle,
                password_concurrency: cfg.password_concurrency,
                password_wait: cfg.password_wait,
            },
        )
        .await?,
    );

    let mut out = std::io::stdout().lock();
    if let Some((key, secret, admin)) = created {
        writeln!(
            out,
            "keygate initialised a new organization ({}) in {:?}",
            iam.org().id,
            cfg.database
        )?;
        writeln!(
            out,
            "First administrator: {} ({}), role OrganizationAdmin",
            admin.email, admin.id
        )?;
        writeln!(out)?;
        writeln!(out, "  API key:    {key}")?;
        writeln!(out, "  API secret: {}", secret.expose())?;
        writeln!(out)?;
        writeln!(out, "!! The secret is shown only now. keygate stores only a keyed hash of it and cannot show it again.")?;
        writeln!(
            out,
            "!! Save it in your password manager, or log in right away:"
        )?;
        writeln!(
            out,
            "     keygate login --url {public_url} --api-key {key} --api-secret <secret>"
        )?;
        writeln!(out)?;
    }
    writeln!(
        out,
        "HTTP gateway (Schema Registry, ksqlDB, Flink, Tableflow) listening on {services_url}"
    )?;
    writeln!(out, "keygate is listening on {public_url}")?;
    writeln!(
        out,
        "  Web console: {public_url}/console    (set a password: keygate iam user set-password <user-id>)"
    )?;
    writeln!(out, "  REST API docs: {public_url}/docs    OpenAPI: {public_url}/openapi.json    health: {public_url}/healthz")?;
    match (&metrics_listener, cfg.metrics) {
        (Some(l), _) => writeln!(
            out,
            "  Prometheus metrics: http://{}/metrics",
            l.local_addr()?
        )?,
        (None, true) => writeln!(out, "  Prometheus metrics: {public_url}/metrics")?,
        (None, false) => {}
    }
    out.flush()?;
    drop(out);

    tokio::spawn(iam.follower().clone().run(Duration::from_secs(1)));
    // STS signing keys: one exists before the first request; rotation on schedule.
    if let Err(e) = iam.maintain_signing_keys().await {
        tracing::warn!(error = %e, "could not prepare the STS signing key");
    }
    tokio::spawn({
        let iam = iam.clone();
        async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                if let Err(e) = iam.maintain_signing_keys().await {
                    tracing::warn!(error = %e, "STS signing-key maintenance failed");
                }
            }
        }
    });
    // Identity providers' keys and certificate authorities' published CRLs, fetched
    // again on schedule (CRLs at start too).
    tokio::spawn({
        let iam = iam.clone();
        let every = cfg.oauth.jwks_refresh;
        async move {
            loop {
                iam.refresh_crls().await;
                tokio::time::sleep(every).await;
                iam.refresh_all_jwks().await;
            }
        }
    });
    let usage = Arc::new(UsageRecorder::default());
    tokio::spawn(usage.clone().run(store.clone(), cfg.key_usage_flush));
    let auditor = start_audit(&cfg, store.clone(), iam.org().crn().to_string())?;
    // Refusals are recorded by the IAM service, whichever front door asked.
    iam.attach_auditor(auditor.clone());

    let console_secure = public_url.starts_with("https://");
    let api_auditor = auditor.clone();
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let audit_handle = auditor.clone();
    // File descriptors shared out: the HTTP side can never take the gateway's (each
    // gateway connection holds two: client and upstream), nor the other way round.
    let mut gateway_cfg = cfg.gateway.clone();
    gateway_cfg.tls = gateway_tls;
    let mut http_limits = cfg.http.clone();
    let mut services_limits = hg.limits.clone();
    let budget = keygate_net::FdBudget::raise();
    if let [http, kafka, services] = budget.share(&[
        ("http", http_limits.max_connections, 1),
        ("kafka gateway", gateway_cfg.max_connections, 2),
        ("http gateway", services_limits.max_connections, 2),
    ])[..]
    {
        http_limits.max_connections = http;
        gateway_cfg.max_connections = kafka;
        services_limits.max_connections = services;
    }
    tracing::info!(
        fd_limit = budget.limit,
        http_connections = http_limits.max_connections,
        gateway_connections = gateway_cfg.max_connections,
        "connection caps"
    );
    let state = AppState {
        iam: iam.clone(),
        usage: usage.clone(),
        cfg: Arc::new(ApiConfig {
            public_url,
            auth_failure_delay: cfg.auth_failure_delay,
            kafka_gateway: Some(gateway_address(&cfg.gateway)),
            http_gateway: Some(services_url.clone()),
            limits: enforced_limits(&gateway_cfg, &http_limits, &services_limits, &hg.gateway),
        }),
        auditor: api_auditor,
    };
    let services = keygate_http::HttpGateway::new(
        keygate_iam::Gate::new(iam.clone(), auditor.clone(), cfg.auth_failure_delay),
        hg.gateway.clone(),
    );
    tokio::spawn(crate::http::serve(
        services_listener,
        services.router(),
        services_limits,
        services_tls,
        stopping(&stop),
    ));
    let gateway = keygate_kafka::Gateway::new(gateway_cfg, iam.clone(), usage.clone(), auditor);
    let gateway_drain = gateway.drain_handle();
    tokio::spawn(reload_on_sighup(args, gateway.live_limits()));
    tokio::spawn(gateway.run());
    // SIGTERM (or Ctrl-C): every listener stops accepting at once; REST requests in
    // progress and Kafka requests already sent are finished within the grace period.
    tokio::spawn({
        let (stop, drain, grace) = (stop_tx.clone(), gateway_drain.clone(), cfg.shutdown_grace);
        async move {
            shutdown_signal().await;
            tracing::info!(
                grace_s = grace.as_secs(),
                "shutting down: draining connections"
            );
            let _ = stop.send(true);
            drain.run(grace).await;
        }
    });
    let console = keygate_console::ConsoleState::new(
        iam.clone(),
        keygate_console::ConsoleConfig {
            secure_cookies: console_secure,
            session_ttl: Duration::from_secs(8 * 3600),
            failure_delay: cfg.auth_failure_delay,
            gateway: Some(gateway_address(&cfg.gateway)),
            http_gateway: Some(services_url.clone()),
        },
        audit_handle.clone(),
    );
    let mut app = keygate_api::router(state).merge(keygate_console::router(console));
    if let Some(exporter) = exporter {
        match metrics_listener {
            Some(l) => {
                tokio::spawn(crate::http::serve(
                    l,
                    exporter.router(),
                    http_limits.clone(),
                    None,
                    stopping(&stop),
                ));
            }
            None => app = app.merge(exporter.router()),
        }
        app = app.layer(axum::middleware::from_fn(crate::metrics::track));
    }
    if http_tls.is_some() {
        app = app.layer(axum::middleware::map_response(hsts));
    }
    tokio::spawn(crate::logging::report_suppressed());
    crate::http::serve(listener, app, http_limits, http_tls, stopping(&stop)).await;
    // The Kafka gateway drained alongside (it started when the signal came).
    let open = gateway_drain.run(cfg.shutdown_grace).await;
    if open > 0 {
        tracing::warn!(
            connections = open,
            "Kafka connections still open after the shutdown grace period; closing them"
        );
    }
    usage.flush(store.as_ref()).await;
    // Records still queued (and the open Produce/Fetch summary window) are written
    // before the process ends.
    if tokio::time::timeout(Duration::from_secs(5), audit_handle.flush())
        .await
        .is_err()
    {
        tracing::warn!("audit records still queued at shutdown were not all written");
    }
    tracing::info!("keygate stopped");
    Ok(())
}

/// Start the audit pipeline: the writer into the audit table, a shipper per
/// configured sink, retention. Returns the emitters' handle.
fn start_audit(
    cfg: &ServerConfig,
    store: Arc<dyn Store>,
    org_crn: String,
) -> anyhow::Result<keygate_audit::Auditor> {
    use keygate_audit::pipeline;
    let a = &cfg.audit;
    // Names this instance in the sinks' leases (one instance ships each sink).
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let instance = format!("{}-{:08x}", host.trim(), rand::random::<u32>());
    let log: Arc<dyn keygate_audit::AuditLog> = Arc::new(keygate_store::StoreAuditLog(store));
    let auditor = if a.enabled {
        let (auditor, rx) = keygate_audit::channel(a.queue, a.summary_interval);
        let rx = rx.with_limits(a.limits);
        tokio::spawn(pipeline::run_writer(rx, log.clone(), org_crn));
        auditor
    } else {
        keygate_audit::Auditor::disabled()
    };
    let mut sinks = Vec::new();
    if let Some(path) = &a.file {
        let sink = keygate_audit::file::FileSink::new(path.clone(), a.file_max_bytes, a.file_keep);
        tokio::spawn(pipeline::run_shipper(
            "file".into(),
            instance.clone(),
            log.clone(),
            Box::new(sink),
        ));
        sinks.push("file".to_owned());
        tracing::info!(path = %path.display(), "audit records go to a JSON-lines file");
    }
    if let Some(k) = &a.kafka {
        let sink = keygate_audit::kafka::KafkaSink::new(k.clone())
            .map_err(|e| anyhow::anyhow!("audit Kafka sink: {e}"))?;
        tokio::spawn(pipeline::run_shipper(
            "kafka".into(),
            instance.clone(),
            log.clone(),
            Box::new(sink),
        ));
        sinks.push("kafka".to_owned());
        tracing::info!(
            bootstrap = k.bootstrap,
            topic = k.topic,
            "audit records go to a Kafka topic"
        );
    }
    let keep = if a.database {
        a.retention
    } else {
        Duration::ZERO
    };
    let every = if a.database {
        Duration::from_secs(600).min(a.retention.max(Duration::from_secs(1)))
    } else {
        Duration::from_secs(10)
    };
    tokio::spawn(pipeline::run_retention(log, keep, sinks, every));
    Ok(auditor)
}

/// Where clients reach clusters, as the REST API and console show it.
fn gateway_address(g: &keygate_kafka::GatewayConfig) -> keygate_core::model::GatewayAddress {
    keygate_core::model::GatewayAddress {
        host: g.advertised_host.clone(),
        port_base: g.port_base,
        ports_per_cluster: g.ports_per_cluster,
        sni: g.sni.as_ref().map(|s| (s.domain.clone(), s.port)),
    }
}

/// The listeners' TLS configurations (none: plaintext).
struct Certificates {
    /// REST API and console.
    http: Option<Arc<rustls::ServerConfig>>,
    /// Kafka gateway.
    gateway: Option<keygate_kafka::GatewayTls>,
    /// HTTP gateway.
    services: Option<Arc<rustls::ServerConfig>>,
}

/// The TLS configurations of the HTTP listeners and of the Kafka gateway, from their
/// certificate files; all are watched and reloaded when the files change.
fn load_certificates(
    tls: &crate::config::TlsConfig,
    services: Option<&(std::path::PathBuf, std::path::PathBuf)>,
) -> anyhow::Result<Certificates> {
    use keygate_net::tls::{server_config, CertFile, CertSet};
    let mut watched = Vec::new();
    let http = match &tls.http {
        Some((cert, key)) => {
            let c = CertFile::load(cert, key).context("the HTTPS certificate (tls_cert)")?;
            let set = CertSet::new(c, None);
            watched.push(set.clone());
            Some(server_config(set, &[b"h2", b"http/1.1"]))
        }
        None => None,
    };
    let gateway = match &tls.gateway {
        Some((cert, key)) => {
            let c =
                CertFile::load(cert, key).context("the gateway certificate (gateway_tls_cert)")?;
            let set = CertSet::new(c, tls.gateway_cluster_dir.clone());
            watched.push(set.clone());
            Some(keygate_kafka::GatewayTls::new(set, tls.gateway_require))
        }
        None => None,
    };
    let services = match services {
        Some((cert, key)) => {
            let c = CertFile::load(cert, key)
                .context("the HTTP gateway's certificate (http_gateway_tls_cert)")?;
            let set = CertSet::new(c, None);
            watched.push(set.clone());
            Some(server_config(set, &[b"h2", b"http/1.1"]))
        }
        None => None,
    };
    keygate_net::tls::watch(watched, tls.reload_check);
    Ok(Certificates {
        http,
        gateway,
        services,
    })
}

/// Strict-Transport-Security on every response of an HTTPS listener: browsers that
/// have seen it never fall back to http:// for a year.
async fn hsts(mut res: axum::response::Response) -> axum::response::Response {
    res.headers_mut().insert(
        axum::http::header::STRICT_TRANSPORT_SECURITY,
        axum::http::HeaderValue::from_static("max-age=31536000"),
    );
    res
}

/// On SIGHUP, read the configuration again and apply what can change while running:
/// the log filter and the gateway's connection limits. A file that does not parse
/// changes nothing (and says why).
async fn reload_on_sighup(args: crate::config::ServerArgs, live: keygate_kafka::LiveLimits) {
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        return;
    };
    while hup.recv().await.is_some() {
        match args.resolve() {
            Ok(new) => {
                live.apply(&new.gateway);
                if let Some(level) = &new.log_level {
                    if let Err(e) = crate::logging::set_level(level) {
                        tracing::warn!(error = %e, "log_level not applied");
                    }
                }
                tracing::info!("configuration reloaded (log level, gateway limits)");
            }
            Err(e) => {
                tracing::warn!(error = %e, "configuration reload failed; the running settings stay")
            }
        }
    }
}

/// Resolves once shutdown has begun.
fn stopping(stop: &tokio::sync::watch::Receiver<bool>) -> impl std::future::Future<Output = ()> {
    let mut rx = stop.clone();
    async move {
        let _ = rx.wait_for(|s| *s).await;
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// Refuse a data directory that is a file, early and clearly.
pub(crate) fn check_data_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() && !dir.is_dir() {
        bail!("--data-dir {} exists and is not a directory", dir.display());
    }
    Ok(())
}

/// The organization-wide limits the listeners enforce, as the service-quota API shows
/// them (the values in force, after the file-descriptor budget's share).
fn enforced_limits(
    kafka: &keygate_kafka::GatewayConfig,
    http: &crate::http::HttpLimits,
    services: &crate::http::HttpLimits,
    service_cfg: &keygate_http::HttpGatewayConfig,
) -> Vec<keygate_api::EnforcedLimit> {
    let d = crate::http::HttpLimits::default();
    let sd = keygate_http::HttpGatewayConfig::default();
    let n = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
    let b = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let limit = |id, display_name, default_limit, applied_limit| keygate_api::EnforcedLimit {
        id,
        display_name,
        default_limit,
        applied_limit,
    };
    vec![
        limit(
            "kafka.max_connections",
            "Kafka gateway client connections",
            10_000,
            n(kafka.max_connections),
        ),
        limit(
            "kafka.max_connections.per_ip",
            "Kafka gateway connections from one address",
            1_000,
            n(kafka.max_connections_per_ip),
        ),
        limit(
            "kafka.max_unauthenticated_connections",
            "Kafka gateway connections not yet authenticated",
            1_000,
            n(kafka.max_unauthenticated),
        ),
        limit(
            "kafka.max_connections.per_cluster",
            "Kafka gateway client connections of one cluster",
            5_000,
            n(kafka.max_connections_per_cluster),
        ),
        limit(
            "kafka.max_connections.per_principal",
            "Kafka gateway connections of one principal to one cluster",
            1_000,
            n(kafka.max_connections_per_principal),
        ),
        limit(
            "kafka.max_connection_creation_rate.per_ip",
            "New Kafka gateway connections per second from one address",
            500,
            i64::from(kafka.max_connection_creation_rate),
        ),
        limit(
            "kafka.idle_timeout_seconds",
            "Seconds an idle authenticated Kafka connection is kept",
            600,
            b(kafka.idle_timeout.as_secs()),
        ),
        limit(
            "kafka.max_request_bytes",
            "Largest Kafka request frame (bytes)",
            104_857_600,
            n(kafka.max_frame),
        ),
        limit(
            "rest.max_connections",
            "REST API and console connections",
            n(d.max_connections),
            n(http.max_connections),
        ),
        limit(
            "rest.max_connections.per_ip",
            "REST API and console connections from one address",
            n(d.max_connections_per_ip),
            n(http.max_connections_per_ip),
        ),
        limit(
            "rest.max_request_bytes",
            "Largest REST request body (bytes)",
            n(keygate_api::error::MAX_BODY),
            n(keygate_api::error::MAX_BODY),
        ),
        limit(
            "http_gateway.max_connections",
            "HTTP gateway client connections",
            n(d.max_connections),
            n(services.max_connections),
        ),
        limit(
            "http_gateway.max_connections.per_ip",
            "HTTP gateway connections from one address",
            n(d.max_connections_per_ip),
            n(services.max_connections_per_ip),
        ),
        limit(
            "http_gateway.max_request_bytes",
            "Largest HTTP gateway request body (bytes)",
            b(sd.max_request_body),
            b(service_cfg.max_request_body),
        ),
        limit(
            "http_gateway.max_response_bytes",
            "Largest HTTP gateway response body (bytes)",
            b(sd.max_response_body),
            b(service_cfg.max_response_body),
        ),
    ]
}
