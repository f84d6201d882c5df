//! The small SQL surface the store needs, the same over SQLite and PostgreSQL.
//!
//! The store's logic (integrity rules, cascades, the change log) is written once, in
//! [`crate::engine`], against [`Db`]: execute a statement, query rows, take a lock,
//! announce a change. Each back-end implements those four verbs; values travel as
//! [`Value`] (integer, text, bytes, null), which both databases read and write
//! natively, so one statement text serves both (placeholders are written `?N` and
//! renumbered `$N` for PostgreSQL).
//!
//! Why not one of the "any database" layers: the store's transactions are synchronous
//! closures (the SQLite back-end runs on a blocking thread, and keeping the rules in
//! plain sequential code is what makes them easy to audit); this seam is ~300 lines
//! and keeps every statement visible.

use crate::StoreError;

/// A value bound to or read from a statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
}

/// Why a statement failed, as far as the store's logic cares.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DbError {
    /// A unique constraint other than the primary key.
    #[error("unique constraint violated: {0}")]
    Unique(String),
    /// The primary key (a generated id collided).
    #[error("primary key violated")]
    PrimaryKey,
    /// A query expected one row and found none.
    #[error("no row")]
    NoRow,
    /// The database cannot be reached right now.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else the database said.
    #[error("{0}")]
    Other(String),
    /// A stored value that does not decode.
    #[error("{0}")]
    Corrupt(String),
}

pub(crate) type DbResult<T> = std::result::Result<T, DbError>;

pub(crate) fn corrupt(msg: impl Into<String>) -> DbError {
    DbError::Corrupt(msg.into())
}

impl From<DbError> for StoreError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unique(m) => {
                StoreError::Conflict(format!("conflicts with an existing entry ({m})"))
            }
            DbError::PrimaryKey => StoreError::IdCollision,
            DbError::NoRow => StoreError::Database("query returned no row".into()),
            DbError::Unavailable(m) => StoreError::Unavailable(m),
            DbError::Other(m) => StoreError::Database(m),
            DbError::Corrupt(m) => StoreError::Corrupt(m),
        }
    }
}

/// Advisory locks taken inside write transactions (no-ops on SQLite, whose writers
/// are serialised anyway).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Lock {
    /// Serialises every change: the change log's sequence numbers then commit in order,
    /// so a follower reading `seq > n` never skips one committed later.
    Changes,
    /// Serialises appends to the audit log, for the same reason (sink cursors).
    Audit,
}

/// One connection or transaction.
pub(crate) trait Db {
    fn exec(&self, sql: &str, params: Vec<Value>) -> DbResult<u64>;
    /// Run a query and hand each row to `f` as it arrives (a snapshot's million rows
    /// are never all held twice).
    fn each(
        &self,
        sql: &str,
        params: Vec<Value>,
        f: &mut dyn FnMut(Row) -> DbResult<()>,
    ) -> DbResult<()>;
    fn lock(&self, lock: Lock) -> DbResult<()>;
    /// Tell other instances, at commit, that the change log (or audit log) reached `seq`.
    fn announce(&self, changes: i64, audit: i64) -> DbResult<()>;
}

impl dyn Db + '_ {
    pub(crate) fn execute(&self, sql: &str, p: impl Params) -> DbResult<u64> {
        self.exec(sql, p.values())
    }

    pub(crate) fn query_row<T>(
        &self,
        sql: &str,
        p: impl Params,
        f: impl FnOnce(&Row) -> DbResult<T>,
    ) -> DbResult<T> {
        let mut first = None;
        self.each(sql, p.values(), &mut |r| {
            if first.is_none() {
                first = Some(r);
            }
            Ok(())
        })?;
        f(&first.ok_or(DbError::NoRow)?)
    }

    pub(crate) fn query_all<T>(
        &self,
        sql: &str,
        p: impl Params,
        mut f: impl FnMut(&Row) -> DbResult<T>,
    ) -> DbResult<Vec<T>> {
        let mut out = Vec::new();
        self.each(sql, p.values(), &mut |r| {
            out.push(f(&r)?);
            Ok(())
        })?;
        Ok(out)
    }
}

/// `.optional()` on a single-row query, as in rusqlite.
pub(crate) trait OptionalExt<T> {
    fn optional(self) -> DbResult<Option<T>>;
}

impl<T> OptionalExt<T> for DbResult<T> {
    fn optional(self) -> DbResult<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(DbError::NoRow) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// One result row. Each column is read at most once: reading moves the value out
/// (no copy of a million keys' strings while a snapshot loads).
#[derive(Debug)]
pub(crate) struct Row(std::cell::RefCell<Vec<Option<Value>>>);

impl Row {
    pub(crate) fn new(values: Vec<Value>) -> Self {
        Row(std::cell::RefCell::new(
            values.into_iter().map(Some).collect(),
        ))
    }

    pub(crate) fn get<T: FromValue>(&self, i: usize) -> DbResult<T> {
        let v = self
            .0
            .borrow_mut()
            .get_mut(i)
            .ok_or_else(|| corrupt(format!("column {i} missing")))?
            .take()
            .ok_or_else(|| corrupt(format!("column {i} read twice")))?;
        T::from_value(v)
    }
}

/// Statement parameters: `params![a, b]` or an array of one type.
pub(crate) trait Params {
    fn values(self) -> Vec<Value>;
}

impl Params for Vec<Value> {
    fn values(self) -> Vec<Value> {
        self
    }
}

impl<T: ToValue, const N: usize> Params for [T; N] {
    fn values(self) -> Vec<Value> {
        self.iter().map(ToValue::to_value).collect()
    }
}

macro_rules! params {
    ($($x:expr),* $(,)?) => {
        vec![$($crate::sql::ToValue::to_value(&$x)),*]
    };
}
pub(crate) use params;

pub(crate) trait ToValue {
    fn to_value(&self) -> Value;
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}
impl ToValue for i64 {
    fn to_value(&self) -> Value {
        Value::Int(*self)
    }
}
impl ToValue for u32 {
    fn to_value(&self) -> Value {
        Value::Int(i64::from(*self))
    }
}
impl ToValue for bool {
    fn to_value(&self) -> Value {
        Value::Int(i64::from(*self))
    }
}
impl ToValue for str {
    fn to_value(&self) -> Value {
        Value::Text(self.to_owned())
    }
}
impl ToValue for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}
impl ToValue for [u8] {
    fn to_value(&self) -> Value {
        Value::Blob(self.to_vec())
    }
}
impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value {
        self.as_ref().map_or(Value::Null, ToValue::to_value)
    }
}
impl ToValue for Value {
    fn to_value(&self) -> Value {
        self.clone()
    }
}

pub(crate) trait FromValue: Sized {
    fn from_value(v: Value) -> DbResult<Self>;
}

fn mismatch(want: &str, v: &Value) -> DbError {
    corrupt(format!("expected {want}, found {v:?}"))
}

impl FromValue for i64 {
    fn from_value(v: Value) -> DbResult<Self> {
        match v {
            Value::Int(i) => Ok(i),
            other => Err(mismatch("an integer", &other)),
        }
    }
}
impl FromValue for u32 {
    fn from_value(v: Value) -> DbResult<Self> {
        let i = i64::from_value(v)?;
        u32::try_from(i).map_err(|_| mismatch("a small integer", &Value::Int(i)))
    }
}
impl FromValue for bool {
    fn from_value(v: Value) -> DbResult<Self> {
        Ok(i64::from_value(v)? != 0)
    }
}
impl FromValue for String {
    fn from_value(v: Value) -> DbResult<Self> {
        match v {
            Value::Text(s) => Ok(s),
            other => Err(mismatch("text", &other)),
        }
    }
}
impl FromValue for Vec<u8> {
    fn from_value(v: Value) -> DbResult<Self> {
        match v {
            Value::Blob(b) => Ok(b),
            other => Err(mismatch("bytes", &other)),
        }
    }
}
impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: Value) -> DbResult<Self> {
        match v {
            Value::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// How a unit of work runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Single statements, no transaction.
    Read,
    /// One consistent read-only view (snapshots).
    Snapshot,
    /// A change: serialised with every other change (the `Changes` lock is taken first).
    Write,
    /// A transaction that is not a change (batched usage times, audit appends, pruning).
    Batch,
}

/// `?N` placeholders renumbered as PostgreSQL's `$N` (statements never contain `?`
/// inside literals).
pub(crate) fn dollar_placeholders(sql: &str) -> String {
    sql.replace('?', "$")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_types() {
        assert_eq!(bool::from_value(true.to_value()).ok(), Some(true));
        assert_eq!(u32::from_value(7u32.to_value()).ok(), Some(7));
        assert!(u32::from_value(Value::Int(-1)).is_err());
        assert_eq!(
            Option::<String>::from_value(None::<String>.to_value()).ok(),
            Some(None)
        );
        assert!(String::from_value(Value::Int(1)).is_err());
        let row = Row::new(vec![Value::Text("a".into())]);
        assert_eq!(row.get::<String>(0).ok().as_deref(), Some("a"));
        assert!(row.get::<String>(0).is_err(), "a column is read once");
        assert_eq!(
            dollar_placeholders("a = ?1 AND b = ?12"),
            "a = $1 AND b = $12"
        );
    }
}
