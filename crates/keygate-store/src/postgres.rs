//! PostgreSQL back-end: a connection pool shared by any number of keygate instances'
//! worth of traffic, plus one listening connection per instance for the change feed.
//!
//! Three things make many instances over one database behave like one:
//! - **Changes are serialised** by a transaction-scoped advisory lock taken first in
//!   every change ([`Lock::Changes`]). The change log's `seq` is assigned under that
//!   lock, so sequence order is commit order and a follower reading `seq > n` can never
//!   pass over a change that commits later. (A plain sequence would allow exactly that:
//!   two transactions take 10 and 11, 11 commits first, the follower moves to 11 and
//!   10 is lost to it.) Audit appends are serialised the same way for the sinks'
//!   cursors. Control-plane writes are rare; the lock costs nothing that matters.
//! - **LISTEN/NOTIFY** carries "the log reached seq N" to every instance at commit
//!   (`pg_notify` inside the transaction is delivered only if it commits). It is only a
//!   wake-up: followers read the log itself by sequence number, on every wake-up and on
//!   a timer, so a notification lost to a reconnect delays a change by at most the
//!   timer's period and never loses it.
//! - **Migrations run once**: under a session advisory lock, so instances starting
//!   together queue behind the first; a database whose schema is newer than the binary
//!   is refused.
//!
//! TLS: `sslmode=require` in the URL means TLS with the server's certificate verified
//! (chain and host name, as libpq's `verify-full`) against the system's trust store or
//! `sslrootcert=FILE`; without it the connection is plaintext (loopback, private
//! networks). A certificate that does not verify is an error, never a fallback.
//!
//! Blocking seam: the store's logic is synchronous ([`crate::sql::Db`]) and runs on a
//! blocking thread; each statement is driven there with `Handle::block_on` on the
//! pool's async client. Statements are prepared once per connection and cached.

use crate::engine::{publish, Backend, Feed, SqlStore};
use crate::sql::{dollar_placeholders, Db, DbError, DbResult, Lock, Mode, Row, Value};
use crate::{Result, StoreError};
use bytes::BytesMut;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Handle;
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};
use tokio_postgres::{AsyncMessage, IsolationLevel, NoTls, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

/// (version reached, statements) in ascending order.
const MIGRATIONS: &[(i64, &str)] = &[
    (5, include_str!("postgres/schema_v5.sql")),
    (6, include_str!("postgres/schema_v6.sql")),
    (7, include_str!("postgres/schema_v7.sql")),
    (8, include_str!("postgres/schema_v8.sql")),
    (9, include_str!("postgres/schema_v9.sql")),
    (10, include_str!("postgres/schema_v10.sql")),
    (11, include_str!("postgres/schema_v11.sql")),
];
/// Advisory lock keys ("keygate" in ASCII, then a number).
const MIGRATION_LOCK: i64 = 0x6b65_7967_6174_0001;
const CHANGES_LOCK: i64 = 0x6b65_7967_6174_0002;
const AUDIT_LOCK: i64 = 0x6b65_7967_6174_0003;
const CHANGES_CHANNEL: &str = "keygate_changes";
const AUDIT_CHANNEL: &str = "keygate_audit";

/// Pooled connections per instance unless configured.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// The PostgreSQL database.
pub(crate) struct Postgres {
    pool: Pool,
    rt: Handle,
}

/// Aborts a background task when dropped (the store's listener ends with the store).
#[derive(Debug)]
pub(crate) struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn pg_err(e: tokio_postgres::Error) -> DbError {
    if let Some(db) = e.as_db_error() {
        if *db.code() == SqlState::UNIQUE_VIOLATION {
            return match db.constraint() {
                Some(c) if c.ends_with("_pkey") => DbError::PrimaryKey,
                c => DbError::Unique(c.unwrap_or_default().to_owned()),
            };
        }
        let code = db.code().code();
        // Class 08: connection exception; 57P01-57P03: shutdown, cannot connect now.
        if code.starts_with("08") || code.starts_with("57P") {
            return DbError::Unavailable(format!("PostgreSQL: {}", db.message()));
        }
        // Only the message: a constraint's DETAIL would quote the stored values.
        return DbError::Other(format!("PostgreSQL: {} ({code})", db.message()));
    }
    let io = e
        .source()
        .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some());
    let why = e.source().map(|s| format!(": {s}")).unwrap_or_default();
    if e.is_closed() || io {
        DbError::Unavailable(format!("PostgreSQL connection lost: {e}{why}"))
    } else {
        DbError::Other(format!("PostgreSQL: {e}{why}"))
    }
}

fn pool_err(e: deadpool_postgres::PoolError) -> DbError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => match pg_err(e) {
            DbError::Other(m) => DbError::Unavailable(m),
            other => other,
        },
        other => DbError::Unavailable(format!("PostgreSQL unreachable: {other}")),
    }
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::BOOL => (*i != 0).to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT8 => i.to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => i.to_string().to_sql(ty, out),
                _ => Err(format!("cannot send an integer as {ty}").into()),
            },
            Value::Text(s) => match *ty {
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                    s.as_str().to_sql(ty, out)
                }
                _ => Err(format!("cannot send text as {ty}").into()),
            },
            Value::Blob(b) => match *ty {
                Type::BYTEA => b.as_slice().to_sql(ty, out),
                _ => Err(format!("cannot send bytes as {ty}").into()),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

impl<'a> FromSql<'a> for Value {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(match *ty {
            Type::BOOL => Value::Int(i64::from(bool::from_sql(ty, raw)?)),
            Type::INT2 => Value::Int(i16::from_sql(ty, raw)?.into()),
            Type::INT4 => Value::Int(i32::from_sql(ty, raw)?.into()),
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::BYTEA => Value::Blob(Vec::<u8>::from_sql(ty, raw)?),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
                Value::Text(String::from_sql(ty, raw)?)
            }
            Type::VOID => Value::Null,
            _ => return Err(format!("unexpected column type {ty}").into()),
        })
    }

    fn from_sql_null(_: &Type) -> std::result::Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(Value::Null)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// A connection or transaction of the pool, driven from a blocking thread.
struct PgDb<'a, C> {
    client: &'a C,
    rt: &'a Handle,
}

impl<C: GenericClient> Db for PgDb<'_, C> {
    fn exec(&self, sql: &str, params: Vec<Value>) -> DbResult<u64> {
        let sql = dollar_placeholders(sql);
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|v| v as _).collect();
        self.rt
            .block_on(async {
                let st = self.client.prepare_cached(&sql).await?;
                self.client.execute(&st, &refs).await
            })
            .map_err(pg_err)
    }

    fn each(
        &self,
        sql: &str,
        params: Vec<Value>,
        f: &mut dyn FnMut(Row) -> DbResult<()>,
    ) -> DbResult<()> {
        use futures_util::StreamExt;
        let sql = dollar_placeholders(sql);
        self.rt.block_on(async {
            let st = self.client.prepare_cached(&sql).await.map_err(pg_err)?;
            let rows = self
                .client
                .query_raw(&st, params.iter())
                .await
                .map_err(pg_err)?;
            let mut rows = std::pin::pin!(rows);
            while let Some(r) = rows.next().await {
                let r = r.map_err(pg_err)?;
                let values = (0..r.len())
                    .map(|i| r.try_get::<_, Value>(i))
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| {
                        let why = e.source().map(ToString::to_string).unwrap_or_default();
                        crate::sql::corrupt(format!("{e}: {why}"))
                    })?;
                f(Row::new(values))?;
            }
            Ok(())
        })
    }

    fn lock(&self, lock: Lock) -> DbResult<()> {
        let key = match lock {
            Lock::Changes => CHANGES_LOCK,
            Lock::Audit => AUDIT_LOCK,
        };
        self.each(
            &format!("SELECT pg_advisory_xact_lock({key})"),
            vec![],
            &mut |_| Ok(()),
        )
    }

    fn announce(&self, changes: i64, audit: i64) -> DbResult<()> {
        for (channel, seq) in [(CHANGES_CHANNEL, changes), (AUDIT_CHANNEL, audit)] {
            if seq > 0 {
                self.each(
                    &format!("SELECT pg_notify('{channel}', ?1)"),
                    vec![Value::Text(seq.to_string())],
                    &mut |_| Ok(()),
                )?;
            }
        }
        Ok(())
    }
}

impl Postgres {
    pub(crate) fn with<T, E: From<DbError>>(
        &self,
        mode: Mode,
        f: impl FnOnce(&dyn Db) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let rt = &self.rt;
        let mut client = rt.block_on(self.pool.get()).map_err(pool_err)?;
        if mode == Mode::Read {
            return f(&PgDb {
                client: &client,
                rt,
            });
        }
        let builder = client.build_transaction();
        let builder = match mode {
            Mode::Snapshot => builder
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true),
            _ => builder,
        };
        let tx = rt.block_on(builder.start()).map_err(pg_err)?;
        let db = PgDb { client: &tx, rt };
        if mode == Mode::Write {
            db.lock(Lock::Changes)?;
        }
        let value = f(&db)?;
        rt.block_on(tx.commit()).map_err(pg_err)?;
        Ok(value)
    }
}

/// How connections are made: plaintext, or TLS with a verified certificate.
#[derive(Clone)]
enum Tls {
    Off,
    On(MakeRustlsConnect),
}

impl Tls {
    fn manager(&self, cfg: tokio_postgres::Config) -> Manager {
        let mc = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        match self {
            Tls::Off => Manager::from_config(cfg, NoTls, mc),
            Tls::On(t) => Manager::from_config(cfg, t.clone(), mc),
        }
    }

    /// A client whose connection runs as a task (ended with the client).
    async fn connect(
        &self,
        cfg: &tokio_postgres::Config,
    ) -> std::result::Result<tokio_postgres::Client, tokio_postgres::Error> {
        match self {
            Tls::Off => {
                let (client, conn) = cfg.connect(NoTls).await?;
                tokio::spawn(conn);
                Ok(client)
            }
            Tls::On(t) => {
                let (client, conn) = cfg.connect(t.clone()).await?;
                tokio::spawn(conn);
                Ok(client)
            }
        }
    }
}

/// Trusted roots: `sslrootcert` when given, else the system's store.
fn tls(cfg: &tokio_postgres::Config, root_file: Option<&str>) -> Result<Tls> {
    if cfg.get_ssl_mode() != SslMode::Require {
        return Ok(Tls::Off);
    }
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    match root_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| StoreError::Database(format!("sslrootcert {path}: {e}")))?;
            for c in certs {
                roots
                    .add(c)
                    .map_err(|e| StoreError::Database(format!("sslrootcert {path}: {e}")))?;
            }
        }
        None => {
            for c in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(c);
            }
        }
    }
    if roots.is_empty() {
        return Err(StoreError::Database(
            "sslmode=require but no trusted certificate authority: set sslrootcert=FILE in the URL"
                .into(),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Database(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Tls::On(MakeRustlsConnect::new(config)))
}

/// The URL without libpq's `sslrootcert` parameter (tokio-postgres does not know it),
/// and that parameter's value.
fn split_root_cert(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut root = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|p| match p.strip_prefix("sslrootcert=") {
            Some(v) => {
                root = Some(v.to_owned());
                false
            }
            None => true,
        })
        .collect();
    let url = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    (url, root)
}

fn config(url: &str) -> Result<(tokio_postgres::Config, Tls)> {
    let (url, root) = split_root_cert(url);
    let mut cfg: tokio_postgres::Config = url.parse().map_err(|e: tokio_postgres::Error| {
        StoreError::Database(format!("invalid PostgreSQL URL: {e}"))
    })?;
    let tls = tls(&cfg, root.as_deref())?;
    if cfg.get_connect_timeout().is_none() {
        cfg.connect_timeout(Duration::from_secs(5));
    }
    if cfg.get_application_name().is_none() {
        cfg.application_name("keygate");
    }
    cfg.keepalives(true)
        .keepalives_idle(Duration::from_secs(10))
        .keepalives_interval(Duration::from_secs(2))
        .keepalives_retries(3);
    Ok((cfg, tls))
}

impl SqlStore {
    /// Connect to PostgreSQL at `url` (`postgres://user:pass@host:port/db`), bring the
    /// schema up to date (once, under an advisory lock, however many instances start
    /// together) and start following the change feed. Needs a Tokio runtime.
    pub async fn connect_postgres(url: &str) -> Result<Self> {
        Self::connect_postgres_with(url, DEFAULT_POOL_SIZE).await
    }

    /// [`SqlStore::connect_postgres`] with at most `pool_size` pooled connections (plus
    /// one for the change feed). Every instance holds its own pool: size them so that
    /// instances × (pool + 1) stays under the server's `max_connections`.
    pub async fn connect_postgres_with(url: &str, pool_size: usize) -> Result<Self> {
        let (cfg, tls) = config(url)?;
        migrate(&cfg, &tls).await?;
        let manager = tls.manager(cfg.clone());
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(5)))
            .create_timeout(Some(Duration::from_secs(5)))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|e| StoreError::Database(format!("PostgreSQL pool: {e}")))?;
        let client = pool
            .get()
            .await
            .map_err(|e| StoreError::from(pool_err(e)))?;
        let row = client
            .query_one(
                "SELECT (SELECT COALESCE(MAX(seq), 0) FROM changes), \
                 (SELECT COALESCE(MAX(seq), 0) FROM audit_events)",
                &[],
            )
            .await
            .map_err(|e| StoreError::from(pg_err(e)))?;
        drop(client);
        let feed = Feed::new(row.get(0), row.get(1));
        let listener = tokio::spawn(listen(cfg, tls, feed.clone()));
        Ok(SqlStore {
            backend: Arc::new(Backend::Postgres(Postgres {
                pool,
                rt: Handle::current(),
            })),
            feed,
            _tasks: vec![AbortOnDrop(listener)],
        })
    }
}

async fn migrate(cfg: &tokio_postgres::Config, tls: &Tls) -> Result<()> {
    let db = |e| StoreError::from(pg_err(e));
    let mut client = tls.connect(cfg).await.map_err(|e| match pg_err(e) {
        DbError::Other(m) => StoreError::Unavailable(m),
        other => other.into(),
    })?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db)?;
    let result = async {
        let exists: bool = client
            .query_one("SELECT to_regclass('keygate_schema') IS NOT NULL", &[])
            .await
            .map_err(db)?
            .get(0);
        if !exists {
            client
                .batch_execute("CREATE TABLE keygate_schema (version BIGINT NOT NULL)")
                .await
                .map_err(db)?;
        }
        let found: i64 = client
            .query_opt("SELECT version FROM keygate_schema", &[])
            .await
            .map_err(db)?
            .map_or(0, |r| r.get(0));
        let supported = MIGRATIONS.last().map_or(0, |m| m.0);
        if found > supported {
            return Err(StoreError::SchemaTooNew { found, supported });
        }
        for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > found) {
            let tx = client.transaction().await.map_err(db)?;
            tx.batch_execute(sql).await.map_err(db)?;
            tx.execute("DELETE FROM keygate_schema", &[])
                .await
                .map_err(db)?;
            tx.execute(
                "INSERT INTO keygate_schema (version) VALUES ($1)",
                &[version],
            )
            .await
            .map_err(db)?;
            tx.commit().await.map_err(db)?;
            tracing::info!(version, "applied database migration");
        }
        Ok(())
    }
    .await;
    // Closing the session releases the lock even if unlocking fails.
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    drop(client);
    result
}

/// Follow the change feed until the store is dropped: LISTEN on a connection of its
/// own, raise the in-process watches on every notification, reconnect with backoff.
async fn listen(cfg: tokio_postgres::Config, tls: Tls, feed: Arc<Feed>) {
    let mut delay = Duration::from_millis(100);
    loop {
        let result = match &tls {
            Tls::Off => listen_once(&cfg, NoTls, &feed).await,
            Tls::On(t) => listen_once(&cfg, t.clone(), &feed).await,
        };
        match result {
            Ok(()) => {
                tracing::warn!(
                    "change feed: PostgreSQL closed the listening connection; reconnecting"
                );
                delay = Duration::from_millis(100);
            }
            Err(e) => {
                tracing::warn!(error = %pg_err(e), "change feed: cannot listen to PostgreSQL; retrying");
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

async fn listen_once<T>(
    cfg: &tokio_postgres::Config,
    tls: T,
    feed: &Feed,
) -> std::result::Result<(), tokio_postgres::Error>
where
    T: MakeTlsConnect<Socket>,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let (client, mut conn) = cfg.connect(tls).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let driver = AbortOnDrop(tokio::spawn(async move {
        while let Some(m) = std::future::poll_fn(|cx| conn.poll_message(cx)).await {
            match m {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx.send(n).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    }));
    client
        .batch_execute(&format!("LISTEN {CHANGES_CHANNEL}; LISTEN {AUDIT_CHANNEL}"))
        .await?;
    // Whatever committed before LISTEN took effect.
    let row = client
        .query_one(
            "SELECT (SELECT COALESCE(MAX(seq), 0) FROM changes), \
             (SELECT COALESCE(MAX(seq), 0) FROM audit_events)",
            &[],
        )
        .await?;
    publish(&feed.changes, row.get(0));
    publish(&feed.audit, row.get(1));
    tracing::debug!("change feed: listening");
    while let Some(n) = rx.recv().await {
        let Ok(seq) = n.payload().parse::<i64>() else {
            continue;
        };
        match n.channel() {
            CHANGES_CHANNEL => publish(&feed.changes, seq),
            AUDIT_CHANNEL => publish(&feed.audit, seq),
            _ => {}
        }
    }
    drop(driver);
    Ok(())
}
