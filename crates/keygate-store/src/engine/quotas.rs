//! Client quotas: rows in `client_quotas` (principals as a JSON list, for reading) and
//! one row per (cluster, principal) in `client_quota_principals`, whose unique index
//! keeps a principal in at most one quota per cluster — checked by the database in
//! the same transaction as the change, not by a read before it.

use super::{from_ts, log, query_all, ts};
use crate::sql::{params, Db, DbError, DbResult, OptionalExt, Row};
use crate::{Entity, Result, StoreError};
use keygate_core::model::ClientQuota;

pub(super) const COLS: &str =
    "id, cluster_id, environment_id, display_name, description, principals, \
     ingress_byte_rate, egress_byte_rate, request_rate, created_at, updated_at";

fn rate(v: i64) -> DbResult<u64> {
    u64::try_from(v).map_err(|_| crate::sql::corrupt(format!("negative rate {v}")))
}

fn stored(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(super) fn row(r: &Row) -> DbResult<ClientQuota> {
    let principals: String = r.get(5)?;
    Ok(ClientQuota {
        id: r.get(0)?,
        cluster_id: r.get(1)?,
        environment_id: r.get(2)?,
        display_name: r.get(3)?,
        description: r.get(4)?,
        principals: serde_json::from_str(&principals)
            .map_err(|e| crate::sql::corrupt(format!("quota principals: {e}")))?,
        ingress_byte_rate: rate(r.get(6)?)?,
        egress_byte_rate: rate(r.get(7)?)?,
        request_rate: r.get::<Option<i64>>(8)?.map(rate).transpose()?,
        created_at: from_ts(r.get(9)?)?,
        updated_at: from_ts(r.get(10)?)?,
    })
}

/// Insert `q` with its principals; a principal already in another quota of the
/// cluster is a conflict.
pub(super) fn insert(tx: &dyn Db, q: &ClientQuota) -> Result<()> {
    let principals = serde_json::to_string(&q.principals)
        .map_err(|e| StoreError::Database(format!("quota principals: {e}")))?;
    tx.execute(
        &format!("INSERT INTO client_quotas ({COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"),
        params![
            q.id,
            q.cluster_id,
            q.environment_id,
            q.display_name,
            q.description,
            principals,
            stored(q.ingress_byte_rate),
            stored(q.egress_byte_rate),
            q.request_rate.map(stored),
            ts(q.created_at),
            ts(q.updated_at)
        ],
    )?;
    for p in &q.principals {
        let res = tx.execute(
            "INSERT INTO client_quota_principals (quota_id, cluster_id, principal) VALUES (?1, ?2, ?3)",
            params![q.id, q.cluster_id, p],
        );
        if let Err(DbError::Unique(_)) = res {
            return Err(StoreError::Conflict(format!(
                "{p} already has a client quota on cluster {}",
                q.cluster_id
            )));
        }
        res?;
    }
    log(tx, Entity::ClientQuota, &q.id, Some(&q.cluster_id))?;
    Ok(())
}

pub(super) fn get(c: &dyn Db, id: &str) -> Result<ClientQuota> {
    c.query_row(
        &format!("SELECT {COLS} FROM client_quotas WHERE id = ?1"),
        [id],
        row,
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound("client quota", id.to_owned()))
}

pub(super) fn list(c: &dyn Db, cluster: Option<&str>) -> Result<Vec<ClientQuota>> {
    query_all(
        c,
        &format!(
            "SELECT {COLS} FROM client_quotas WHERE (CAST(?1 AS TEXT) IS NULL OR cluster_id = ?1) \
             ORDER BY created_at, id"
        ),
        params![cluster],
        row,
    )
}

/// Remove quota `id` (rows and principals); whether it existed.
pub(super) fn remove(tx: &dyn Db, id: &str) -> Result<bool> {
    tx.execute(
        "DELETE FROM client_quota_principals WHERE quota_id = ?1",
        [id],
    )?;
    Ok(tx.execute("DELETE FROM client_quotas WHERE id = ?1", [id])? > 0)
}

/// Replace quota `q.id` by `q` (same id, cluster and creation time).
pub(super) fn replace(tx: &dyn Db, q: &ClientQuota) -> Result<()> {
    if !remove(tx, &q.id)? {
        return Err(StoreError::NotFound("client quota", q.id.clone()));
    }
    insert(tx, q)
}

/// Remove every quota of `cluster` (the cluster is being deleted).
pub(super) fn remove_cluster(tx: &dyn Db, cluster: &str) -> Result<()> {
    tx.execute(
        "DELETE FROM client_quota_principals WHERE cluster_id = ?1",
        [cluster],
    )?;
    if tx.execute("DELETE FROM client_quotas WHERE cluster_id = ?1", [cluster])? > 0 {
        log(tx, Entity::ClientQuota, cluster, Some(cluster))?;
    }
    Ok(())
}
