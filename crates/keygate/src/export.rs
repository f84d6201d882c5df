//! `keygate export` / `keygate import`: the whole state as one versioned JSON document
//! — organization, environments, resources (with their gateway slots), accounts, API
//! keys (their secrets' hashes, never secrets), role bindings, ACLs, identity providers
//! and pools, STS signing-key ids, console password hashes — so an installation moves
//! to another database without re-issuing a single key.
//!
//! The hashes are keyed by the pepper, which is not in the document: the target data
//! directory needs the same `pepper.key`. The document carries a check value derived
//! from the pepper, and import refuses a target whose pepper differs (every key would
//! fail to authenticate). The audit log is not part of the document.
//!
//! `keygate migrate --to postgres://…` does both in one step, database to database,
//! and brings the audit log along (with each sink's delivery position, so a Kafka
//! sink does not deliver the history a second time).
//!
//! The document's shapes and their checks are `keygate_store::document`; this module
//! is the file handling, the pepper checks and the load into an empty database.

use crate::config::ServerArgs;
use anyhow::{bail, Context};
use chrono::Utc;
use clap::Args;
use keygate_iam::SecretHasher;
use keygate_store::document::Document;
use keygate_store::{AuditQuery, FullState, SqlStore, Store};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// Data directory of the installation (its pepper.key and, by default, database).
    #[arg(long, env = "KEYGATE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Database URL (default: the SQLite database in the data directory).
    #[arg(long, env = "KEYGATE_DATABASE")]
    database: Option<String>,
    /// Write here instead of standard output (created with mode 0600).
    #[arg(long, short = 'f')]
    file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// Data directory of the new installation; its pepper.key must be the source's.
    #[arg(long, env = "KEYGATE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Database URL (default: the SQLite database in the data directory). Must be empty.
    #[arg(long, env = "KEYGATE_DATABASE")]
    database: Option<String>,
    /// The exported document.
    input: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct MigrateArgs {
    /// Data directory of the installation (its pepper.key and, by default, database).
    #[arg(long, env = "KEYGATE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The pepper file, if not in the data directory.
    #[arg(long, env = "KEYGATE_PEPPER_FILE")]
    pepper_file: Option<PathBuf>,
    /// Source database URL (default: the SQLite database in the data directory).
    #[arg(long)]
    from: Option<String>,
    /// Target database URL, e.g. postgres://keygate:…@db:5432/keygate. Must be empty.
    #[arg(long)]
    to: String,
}

#[derive(Debug, Args)]
pub(crate) struct RecoverArgs {
    /// Data directory of the installation (its pepper.key and, by default, database).
    #[arg(long, env = "KEYGATE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Database URL (default: the SQLite database in the data directory).
    #[arg(long, env = "KEYGATE_DATABASE")]
    database: Option<String>,
    /// The pepper file, if not in the data directory.
    #[arg(long, env = "KEYGATE_PEPPER_FILE")]
    pepper_file: Option<PathBuf>,
    /// The OrganizationAdmin account to issue the key for (default: the first one).
    #[arg(long)]
    owner: Option<String>,
}

/// `keygate admin recover`: a new OrganizationAdmin CLOUD key, written to the
/// database directly (a running server picks it up within a second).
pub(crate) fn recover(a: RecoverArgs) -> anyhow::Result<()> {
    let rt = runtime()?;
    let (key, secret, owner) = rt.block_on(async {
        let (store, hasher, _) = open(a.data_dir, a.database, a.pepper_file).await?;
        if store.setting("pepper_check").await?.is_none() {
            bail!("this database has no installation yet: start keygate server once");
        }
        Ok::<_, anyhow::Error>(
            keygate_iam::Iam::recover_admin(store.as_ref(), &hasher, a.owner.as_deref()).await?,
        )
    })?;
    outln!(
        "Issued a recovery CLOUD key for {} ({}), role OrganizationAdmin.",
        owner.id,
        owner.email
    );
    outln!();
    outln!("  API key:    {key}");
    outln!("  API secret: {}", secret.expose());
    outln!();
    outln!(
        "!! The secret is shown only now. This was recorded in the audit log (RecoverAdminAccess)."
    );
    Ok(())
}

use crate::server::pepper_check;

/// The store and pepper of an installation; the pepper must exist already (a new one
/// would match no stored hash) and match the one the database recorded, if any.
async fn open(
    data_dir: Option<PathBuf>,
    database: Option<String>,
    pepper_file: Option<PathBuf>,
) -> anyhow::Result<(Arc<SqlStore>, SecretHasher, PathBuf)> {
    let cfg = ServerArgs {
        data_dir,
        database,
        pepper_file,
        ..ServerArgs::default()
    }
    .resolve()?;
    if !cfg.pepper_file.exists() {
        bail!(
            "{} does not exist: copy the source installation's pepper.key there first (mode 0600); every key's hash depends on it",
            cfg.pepper_file.display()
        );
    }
    let hasher = SecretHasher::new(&crate::server::load_pepper(&cfg.pepper_file)?);
    let store = crate::server::open_store(&cfg.database).await?;
    if let Some(recorded) = store.setting("pepper_check").await? {
        if recorded != pepper_check(&hasher) {
            bail!(
                "{} is not the pepper of the installation in {:?}",
                cfg.pepper_file.display(),
                cfg.database
            );
        }
    }
    Ok((store, hasher, cfg.pepper_file))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

pub(crate) fn export(a: ExportArgs) -> anyhow::Result<()> {
    let rt = runtime()?;
    let (state, passwords, hasher) = rt.block_on(async {
        let (store, hasher, _) = open(a.data_dir, a.database, None).await?;
        Ok::<_, anyhow::Error>((
            store.load_all().await?,
            store.password_hashes().await?,
            hasher,
        ))
    })?;
    let keys = state.api_keys.len();
    let doc = Document::from_state(state, passwords, pepper_check(&hasher))?;
    let text = serde_json::to_string_pretty(&doc)?;
    match a.file {
        None => outln!("{text}"),
        Some(path) => {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            eprintln!(
                "Exported the organization with {keys} API keys to {}.",
                path.display()
            );
        }
    }
    Ok(())
}

pub(crate) fn import(a: ImportArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&a.input)
        .with_context(|| format!("reading {}", a.input.display()))?;
    let doc = Document::parse(&text).with_context(|| format!("reading {}", a.input.display()))?;
    if let Some(dir) = &a.data_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let rt = runtime()?;
    let (store, hasher, pepper_path) = rt.block_on(open(a.data_dir, a.database, None))?;
    if doc.pepper_check != pepper_check(&hasher) {
        bail!(
            "{} is not the pepper of the exported installation: no key would authenticate. Copy the source's pepper.key",
            pepper_path.display()
        );
    }
    let (state, passwords) = doc.into_state()?;
    let (keys, org_crn) = (
        state.api_keys.len(),
        state
            .organization
            .as_ref()
            .map(|o| o.crn().to_string())
            .unwrap_or_default(),
    );
    let summary = format!("imported from {} ({keys} API keys)", a.input.display());
    rt.block_on(import_into(
        store.as_ref(),
        state,
        passwords,
        &hasher,
        org_crn,
        summary,
    ))?;
    eprintln!("Imported the organization with {keys} API keys.");
    Ok(())
}

/// Load `state` into an empty database with its audit record (`ImportState`, by the
/// system) and record the installation's pepper check there.
async fn import_into(
    store: &dyn Store,
    state: FullState,
    passwords: Vec<(String, String)>,
    hasher: &SecretHasher,
    org_crn: String,
    summary: String,
) -> anyhow::Result<()> {
    let record = keygate_audit::CloudEvent::new(
        keygate_audit::types::IAM_REQUEST,
        org_crn.clone(),
        "keygate.iam",
        "ImportState",
        org_crn,
        Utc::now(),
    )
    .who(Some("System:keygate".into()), None, None)
    .result(keygate_audit::status::SUCCESS, Some(summary));
    store.import(state, passwords, &record).await?;
    store
        .init_setting("pepper_check", &pepper_check(hasher))
        .await?;
    Ok(())
}

/// Sinks whose delivery position moves with the audit log.
const SINKS: [&str; 2] = ["file", "kafka"];

pub(crate) fn migrate(a: MigrateArgs) -> anyhow::Result<()> {
    let rt = runtime()?;
    rt.block_on(async {
        let (source, hasher, _) = open(a.data_dir.clone(), a.from.clone(), a.pepper_file.clone()).await?;
        let target_db = crate::config::parse_database(&a.to)?;
        let target = crate::server::open_store(&target_db).await?;
        if target.load_all().await?.organization.is_some()
            || !target
                .query_audit(&AuditQuery {
                    limit: 1,
                    ..AuditQuery::default()
                })
                .await?
                .is_empty()
        {
            bail!("the target database {target_db:?} is not empty; migrate into a new one");
        }
        let state = source.load_all().await?;
        let passwords = source.password_hashes().await?;
        let keys = state.api_keys.len();
        let org_crn = state
            .organization
            .as_ref()
            .map(|o| o.crn().to_string())
            .context("the source database has no organization: nothing to migrate")?;

        // The audit log first, in order, keeping each sink's delivery position.
        let mut cursors = Vec::new();
        for sink in SINKS {
            let at = source.audit_cursor(sink).await?;
            if at > 0 {
                cursors.push((sink, at, 0i64));
            }
        }
        let (mut after, mut target_after, mut records) = (0i64, 0i64, 0usize);
        loop {
            let page = source
                .query_audit(&AuditQuery {
                    after: Some(after),
                    limit: 1000,
                    ..AuditQuery::default()
                })
                .await?;
            let Some(last) = page.last().map(|r| r.seq) else {
                break;
            };
            target
                .append_audit(page.iter().map(|r| r.event.clone()).collect())
                .await?;
            let copied = target
                .query_audit(&AuditQuery {
                    after: Some(target_after),
                    limit: 1000,
                    ..AuditQuery::default()
                })
                .await?;
            if copied.len() != page.len() {
                bail!("audit log copy out of step ({} of {} records)", copied.len(), page.len());
            }
            for (src, dst) in page.iter().zip(&copied) {
                for c in cursors.iter_mut().filter(|c| src.seq <= c.1) {
                    c.2 = dst.seq;
                }
            }
            records += page.len();
            after = last;
            target_after = copied.last().map_or(target_after, |r| r.seq);
        }
        for (sink, _, at) in &cursors {
            target.set_audit_cursor(sink, *at).await?;
        }

        let summary = format!("migrated from {} database ({keys} API keys)", source.kind());
        import_into(target.as_ref(), state, passwords, &hasher, org_crn, summary).await?;
        eprintln!(
            "Migrated the organization with {keys} API keys and {records} audit records to {target_db:?}."
        );
        eprintln!(
            "Start every instance with --database <that URL> and this installation's pepper file; keys keep working as they are."
        );
        Ok(())
    })
}
