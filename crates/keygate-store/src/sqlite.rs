//! SQLite back-end: one connection behind a mutex, used from blocking threads.
//!
//! SQLite serialises writers anyway, so one connection costs nothing in write
//! throughput and makes transactions simple. The database runs in WAL mode with
//! `synchronous=FULL`: a create call that returned success survives `kill -9` and power
//! loss. Schema versions are tracked with `PRAGMA user_version`; a database newer than
//! the binary is refused rather than misread.

use crate::engine::{Backend, Feed, SqlStore};
use crate::sql::{Db, DbError, DbResult, Lock, Mode, Row, Value};
use crate::{Result, StoreError};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ErrorCode, TransactionBehavior};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const MIGRATIONS: &[&str] = &[
    include_str!("sqlite/schema_v1.sql"),
    include_str!("sqlite/schema_v2.sql"),
    include_str!("sqlite/schema_v3.sql"),
    include_str!("sqlite/schema_v4.sql"),
    include_str!("sqlite/schema_v5.sql"),
    include_str!("sqlite/schema_v6.sql"),
    include_str!("sqlite/schema_v7.sql"),
    include_str!("sqlite/schema_v8.sql"),
    include_str!("sqlite/schema_v9.sql"),
    include_str!("sqlite/schema_v10.sql"),
    include_str!("sqlite/schema_v11.sql"),
];
const SQLITE_CONSTRAINT_PRIMARYKEY: i32 = 1555;
const SQLITE_CONSTRAINT_UNIQUE: i32 = 2067;

/// The SQLite database.
pub(crate) struct Sqlite {
    conn: Mutex<Connection>,
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::SqliteFailure(f, _)
                if f.extended_code == SQLITE_CONSTRAINT_PRIMARYKEY =>
            {
                DbError::PrimaryKey
            }
            rusqlite::Error::SqliteFailure(f, m)
                if f.code == ErrorCode::ConstraintViolation
                    && f.extended_code == SQLITE_CONSTRAINT_UNIQUE =>
            {
                DbError::Unique(m.unwrap_or_default())
            }
            rusqlite::Error::QueryReturnedNoRows => DbError::NoRow,
            other => DbError::Other(other.to_string()),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        DbError::from(e).into()
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Integer(*i),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

impl Db for Connection {
    fn exec(&self, sql: &str, params: Vec<Value>) -> DbResult<u64> {
        let mut st = self.prepare_cached(sql)?;
        Ok(st.execute(rusqlite::params_from_iter(params.iter()))? as u64)
    }

    fn each(
        &self,
        sql: &str,
        params: Vec<Value>,
        f: &mut dyn FnMut(Row) -> DbResult<()>,
    ) -> DbResult<()> {
        let mut st = self.prepare_cached(sql)?;
        let n = st.column_count();
        let mut rows = st.query(rusqlite::params_from_iter(params.iter()))?;
        while let Some(r) = rows.next()? {
            let mut values = Vec::with_capacity(n);
            for i in 0..n {
                values.push(match r.get_ref(i)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(v) => Value::Int(v),
                    ValueRef::Real(v) => {
                        return Err(crate::sql::corrupt(format!("unexpected real {v}")))
                    }
                    ValueRef::Text(t) => Value::Text(
                        String::from_utf8(t.to_vec())
                            .map_err(|_| crate::sql::corrupt("text is not UTF-8"))?,
                    ),
                    ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                });
            }
            f(Row::new(values))?;
        }
        Ok(())
    }

    fn lock(&self, _: Lock) -> DbResult<()> {
        Ok(())
    }

    fn announce(&self, _: i64, _: i64) -> DbResult<()> {
        Ok(())
    }
}

impl Sqlite {
    pub(crate) fn with<T, E: From<DbError>>(
        &self,
        mode: Mode,
        f: impl FnOnce(&dyn Db) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let mut c = self
            .conn
            .lock()
            .map_err(|_| DbError::Other("connection lock poisoned".into()))?;
        let behavior = match mode {
            Mode::Read => return f(&*c),
            Mode::Snapshot => TransactionBehavior::Deferred,
            Mode::Write | Mode::Batch => TransactionBehavior::Immediate,
        };
        let tx = c
            .transaction_with_behavior(behavior)
            .map_err(DbError::from)?;
        let value = f(&*tx)?;
        tx.commit().map_err(DbError::from)?;
        Ok(value)
    }
}

impl SqlStore {
    /// Open (creating if needed) the SQLite database at `path` and bring its schema up
    /// to date.
    pub fn open_sqlite(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)?;
        Self::from_connection(conn)
    }

    /// A private in-memory SQLite database (tests).
    pub fn sqlite_in_memory() -> Result<Self> {
        Self::from_connection(Connection::open_in_memory()?)
    }

    fn from_connection(mut conn: Connection) -> Result<Self> {
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.set_prepared_statement_cache_capacity(256);
        migrate(&mut conn)?;
        let max = |table: &str| -> rusqlite::Result<i64> {
            conn.query_row(
                &format!("SELECT COALESCE(MAX(seq), 0) FROM {table}"),
                [],
                |r| r.get(0),
            )
        };
        let feed = Feed::new(max("changes")?, max("audit_events")?);
        Ok(SqlStore {
            backend: Arc::new(Backend::Sqlite(Sqlite {
                conn: Mutex::new(conn),
            })),
            feed,
            _tasks: Vec::new(),
        })
    }
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let supported = MIGRATIONS.len() as i64;
    if version > supported {
        return Err(StoreError::SchemaTooNew {
            found: version,
            supported,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "applied database migration");
    }
    Ok(())
}
