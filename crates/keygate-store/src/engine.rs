//! The store's logic, written once over [`Db`] for every database.
//!
//! Every change runs in [`Mode::Write`]: one transaction, serialised with every other
//! change (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: an advisory transaction lock), that
//! writes the entity, its change-log rows and its audit record, and announces the new
//! sequence numbers at commit. Serialising changes is what keeps the integrity rules
//! (key quota, unique names, the last OrganizationAdmin) simple and true under any
//! number of instances, and what makes the change log commit in sequence order.

use crate::sql::{params, Db, DbError, DbResult, Lock, Mode, OptionalExt, Params, Row, ToValue};
use crate::{
    AclFilter, AuditQuery, AuditRow, BindingFilter, Bootstrap, Change, ConsoleSession, Entity,
    FullState, KeyFilter, Patch, Result, Store, StoreError,
};
use async_trait::async_trait;
use chrono::DateTime;
use keygate_audit::CloudEvent;
use keygate_core::crn::CrnPattern;
use keygate_core::model::{
    Account, AccountKind, Acl, ApiKey, Environment, IdentityPool, IdentityProvider, KeyScope,
    Organization, Resource, RoleBinding, SigningKey, Timestamp,
};
use keygate_core::{
    AclBinding, KeyId, Operation, PatternType, Permission, Principal, ResourceKind, ResourceType,
    Role,
};
use std::sync::Arc;
use tokio::sync::watch;

/// Where a store's changes are announced inside this process.
#[derive(Debug)]
pub(crate) struct Feed {
    /// The change log's last sequence number known here.
    pub(crate) changes: watch::Sender<i64>,
    /// The audit log's.
    pub(crate) audit: watch::Sender<i64>,
}

impl Feed {
    pub(crate) fn new(changes: i64, audit: i64) -> Arc<Self> {
        Arc::new(Feed {
            changes: watch::channel(changes).0,
            audit: watch::channel(audit).0,
        })
    }
}

/// The database behind a [`SqlStore`].
pub(crate) enum Backend {
    Sqlite(crate::sqlite::Sqlite),
    Postgres(crate::postgres::Postgres),
}

impl Backend {
    fn with<T, E: From<DbError>>(
        &self,
        mode: Mode,
        f: impl FnOnce(&dyn Db) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        match self {
            Backend::Sqlite(b) => b.with(mode, f),
            Backend::Postgres(b) => b.with(mode, f),
        }
    }
}

/// The store over SQL: embedded SQLite (one instance) or PostgreSQL (any number).
/// Open one with [`SqlStore::open_sqlite`] or [`SqlStore::connect_postgres`].
pub struct SqlStore {
    pub(crate) backend: Arc<Backend>,
    pub(crate) feed: Arc<Feed>,
    /// Background tasks (the PostgreSQL listener) that end with the store.
    pub(crate) _tasks: Vec<crate::postgres::AbortOnDrop>,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match *self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        };
        f.debug_struct("SqlStore")
            .field("backend", &kind)
            .finish_non_exhaustive()
    }
}

impl SqlStore {
    /// Which database this is (`sqlite` or `postgres`).
    pub fn kind(&self) -> &'static str {
        match *self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    async fn with<T, E, F>(&self, mode: Mode, f: F) -> std::result::Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + From<StoreError> + Send + 'static,
        F: FnOnce(&dyn Db) -> std::result::Result<T, E> + Send + 'static,
    {
        let backend = self.backend.clone();
        let started = std::time::Instant::now();
        let result = tokio::task::spawn_blocking(move || backend.with(mode, f))
            .await
            .map_err(|e| E::from(StoreError::Database(format!("database task failed: {e}"))))?;
        let operation = match mode {
            Mode::Read => "read",
            Mode::Snapshot => "snapshot",
            Mode::Write => "change",
            Mode::Batch => "batch",
        };
        metrics::histogram!(keygate_metrics::STORE_OPERATION, "operation" => operation)
            .record(started.elapsed().as_secs_f64());
        result
    }

    async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Db) -> Result<T> + Send + 'static,
    {
        self.with(Mode::Read, f).await
    }

    /// Run `f` as a change, add its audit record (when `f` succeeded), commit, then
    /// publish the new sequences. A change and its record commit together or not at all.
    async fn write<T, F>(&self, audit: Option<CloudEvent>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Db) -> Result<T> + Send + 'static,
    {
        let (value, seq, audit_seq) = self
            .with(Mode::Write, move |tx| {
                let value = f(tx)?;
                if let Some(a) = &audit {
                    insert_audit(tx, a)?;
                }
                let seq = max_seq(tx)?;
                let audit_seq = max_audit_seq(tx)?;
                tx.announce(seq, audit_seq)?;
                Ok::<_, StoreError>((value, seq, audit_seq))
            })
            .await?;
        publish(&self.feed.changes, seq);
        publish(&self.feed.audit, audit_seq);
        Ok(value)
    }
}

/// Raise a watch to `seq` (never lower it).
pub(crate) fn publish(w: &watch::Sender<i64>, seq: i64) {
    w.send_if_modified(|cur| {
        let newer = seq > *cur;
        if newer {
            *cur = seq;
        }
        newer
    });
}

fn is_unique_violation(e: &DbError) -> bool {
    matches!(e, DbError::Unique(_))
}

fn ts(t: Timestamp) -> i64 {
    t.timestamp_micros()
}

fn from_ts(v: i64) -> DbResult<Timestamp> {
    DateTime::from_timestamp_micros(v).ok_or_else(|| crate::sql::corrupt(format!("timestamp {v}")))
}

fn opt_ts(v: Option<i64>) -> DbResult<Option<Timestamp>> {
    v.map(from_ts).transpose()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

use crate::sql::corrupt;

mod quotas;

fn log(tx: &dyn Db, entity: Entity, id: &str, cluster: Option<&str>) -> DbResult<()> {
    tx.execute(
        "INSERT INTO changes (at, entity, entity_id, cluster_id) VALUES (?1, ?2, ?3, ?4)",
        params![now(), entity.as_str(), id, cluster],
    )
    .map(drop)
}

/// The Kafka cluster a role-binding pattern points into, if any.
fn cluster_of(pattern: &str) -> Option<String> {
    CrnPattern::parse(pattern)
        .ok()?
        .get("cloud-cluster")
        .map(str::to_owned)
}

// ---- row mapping ----------------------------------------------------------------

fn org_row(r: &Row) -> DbResult<Organization> {
    Ok(Organization {
        id: r.get(0)?,
        display_name: r.get(1)?,
        crn_authority: r.get(2)?,
        created_at: from_ts(r.get(3)?)?,
    })
}

fn env_row(r: &Row) -> DbResult<Environment> {
    Ok(Environment {
        id: r.get(0)?,
        display_name: r.get(1)?,
        created_at: from_ts(r.get(2)?)?,
        updated_at: from_ts(r.get(3)?)?,
    })
}
const ENV_COLS: &str = "id, display_name, created_at, updated_at";

fn resource_row(r: &Row) -> DbResult<Resource> {
    let kind: String = r.get(1)?;
    Ok(Resource {
        id: r.get(0)?,
        kind: ResourceKind::parse(&kind).ok_or_else(|| corrupt(format!("resource kind {kind}")))?,
        environment_id: r.get(2)?,
        display_name: r.get(3)?,
        upstream: r.get(4)?,
        created_at: from_ts(r.get(5)?)?,
        updated_at: from_ts(r.get(6)?)?,
        gateway_slot: r.get(7)?,
        upstream_security: crate::columns::decode(r.get(8)?)
            .map_err(|e| corrupt(format!("upstream_security: {e}")))?,
        ksql: crate::columns::decode_ksql(r.get(9)?).map_err(|e| corrupt(format!("ksql: {e}")))?,
    })
}
const RESOURCE_COLS: &str =
    "id, kind, environment_id, display_name, upstream, created_at, updated_at, gateway_slot, upstream_security, ksql";

fn account_row(r: &Row) -> DbResult<Account> {
    let kind: String = r.get(1)?;
    Ok(Account {
        id: r.get(0)?,
        kind: AccountKind::parse(&kind).ok_or_else(|| corrupt(format!("account kind {kind}")))?,
        display_name: r.get(2)?,
        description: r.get(3)?,
        email: r.get(4)?,
        auth_type: r.get(5)?,
        created_at: from_ts(r.get(6)?)?,
        updated_at: from_ts(r.get(7)?)?,
    })
}
const ACCOUNT_COLS: &str =
    "id, kind, display_name, description, email, auth_type, created_at, updated_at";

fn key_row(r: &Row) -> DbResult<ApiKey> {
    let id: String = r.get(0)?;
    let owner_kind: String = r.get(4)?;
    let resource_key: String = r.get(5)?;
    let scope = if resource_key == "CLOUD" {
        KeyScope::Cloud
    } else {
        let kind: String = r.get(6)?;
        KeyScope::Resource {
            kind: ResourceKind::parse(&kind)
                .ok_or_else(|| corrupt(format!("resource kind {kind}")))?,
            id: r.get(7)?,
            environment_id: r.get(8)?,
        }
    };
    let hash: Vec<u8> = r.get(9)?;
    Ok(ApiKey {
        id: KeyId::parse(&id).ok_or_else(|| corrupt("key id"))?,
        display_name: r.get(1)?,
        description: r.get(2)?,
        owner_id: r.get(3)?,
        owner_kind: AccountKind::parse(&owner_kind).ok_or_else(|| corrupt("owner kind"))?,
        scope,
        secret_hash: hash.try_into().map_err(|_| corrupt("secret hash length"))?,
        disabled: r.get(10)?,
        expires_at: opt_ts(r.get(11)?)?,
        last_used_at: opt_ts(r.get(12)?)?,
        created_at: from_ts(r.get(13)?)?,
        updated_at: from_ts(r.get(14)?)?,
    })
}
const KEY_COLS: &str = "id, display_name, description, owner_id, owner_kind, resource_key, resource_kind, \
    resource_id, environment_id, secret_hash, disabled, expires_at, last_used_at, created_at, updated_at";

fn binding_row(r: &Row) -> DbResult<RoleBinding> {
    let principal: String = r.get(1)?;
    let role: String = r.get(2)?;
    let pattern: String = r.get(3)?;
    Ok(RoleBinding {
        id: r.get(0)?,
        principal: Principal::parse(&principal).map_err(|e| corrupt(e.to_string()))?,
        role: Role::parse(&role).ok_or_else(|| corrupt(format!("role {role}")))?,
        crn_pattern: CrnPattern::parse(&pattern).map_err(|e| corrupt(e.to_string()))?,
        created_at: from_ts(r.get(4)?)?,
    })
}
const BINDING_COLS: &str = "id, principal, role, crn_pattern, created_at";

fn acl_row(r: &Row) -> DbResult<Acl> {
    let get = |i: usize| -> DbResult<String> { r.get(i) };
    let (p, rt, pt, op, perm) = (get(2)?, get(3)?, get(5)?, get(6)?, get(7)?);
    Ok(Acl {
        id: r.get(0)?,
        cluster_id: r.get(1)?,
        binding: AclBinding {
            principal: Principal::parse(&p).map_err(|e| corrupt(e.to_string()))?,
            resource_type: ResourceType::parse(&rt).ok_or_else(|| corrupt("resource type"))?,
            resource_name: r.get(4)?,
            pattern_type: PatternType::parse(&pt).ok_or_else(|| corrupt("pattern type"))?,
            operation: Operation::parse(&op).ok_or_else(|| corrupt("operation"))?,
            permission: Permission::parse(&perm).ok_or_else(|| corrupt("permission"))?,
        },
        created_at: from_ts(r.get(8)?)?,
    })
}
const ACL_COLS: &str =
    "id, cluster_id, principal, resource_type, resource_name, pattern_type, operation, permission, created_at";

fn query_all<T>(
    c: &dyn Db,
    sql: &str,
    p: impl Params,
    f: impl FnMut(&Row) -> DbResult<T>,
) -> Result<Vec<T>> {
    Ok(c.query_all(sql, p, f)?)
}

// ---- writes shared by several operations ------------------------------------------

fn insert_account(tx: &dyn Db, a: &Account) -> Result<()> {
    tx.execute(
        &format!("INSERT INTO accounts ({ACCOUNT_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
        params![
            a.id,
            a.kind.as_str(),
            a.display_name,
            a.description,
            a.email,
            a.auth_type,
            ts(a.created_at),
            ts(a.updated_at)
        ],
    )?;
    log(tx, Entity::Account, &a.id, None)?;
    Ok(())
}

fn get_org(tx: &dyn Db) -> Result<Organization> {
    tx.query_row(
        "SELECT id, display_name, crn_authority, created_at FROM organization",
        params![],
        org_row,
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound("organization", String::new()))
}

fn insert_org(tx: &dyn Db, o: &Organization) -> Result<()> {
    tx.execute(
        "INSERT INTO organization (id, display_name, crn_authority, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![o.id, o.display_name, o.crn_authority, ts(o.created_at)],
    )?;
    log(tx, Entity::Organization, &o.id, None)?;
    Ok(())
}

fn insert_env(tx: &dyn Db, e: &Environment) -> Result<()> {
    let res = tx.execute(
        &format!("INSERT INTO environments ({ENV_COLS}) VALUES (?1, ?2, ?3, ?4)"),
        params![e.id, e.display_name, ts(e.created_at), ts(e.updated_at)],
    );
    match res {
        Err(err) if is_unique_violation(&err) => {
            return Err(StoreError::Conflict(format!(
                "environment name `{}` is already in use",
                e.display_name
            )))
        }
        r => r?,
    };
    log(tx, Entity::Environment, &e.id, None)?;
    Ok(())
}

/// A resource with the given gateway slot.
fn insert_resource(tx: &dyn Db, r: &Resource, slot: Option<u32>) -> Result<()> {
    let key = r.storage_key();
    tx.execute(
        &format!("INSERT INTO resources (key, {RESOURCE_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"),
        params![
            key,
            r.id,
            r.kind.as_str(),
            r.environment_id,
            r.display_name,
            r.upstream,
            ts(r.created_at),
            ts(r.updated_at),
            slot,
            crate::columns::encode(&r.upstream_security),
            r.ksql.as_ref().map(crate::columns::encode_ksql)
        ],
    )?;
    let cluster = (r.kind == ResourceKind::Kafka).then_some(r.id.as_str());
    log(tx, Entity::Resource, &key, cluster)?;
    Ok(())
}

/// ACLs of one cluster (an existing identical ACL is kept as it is).
fn insert_acls(tx: &dyn Db, cluster: &str, acls: &[&Acl]) -> Result<()> {
    {
        let sql = format!(
            "INSERT INTO acls ({ACL_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
             ON CONFLICT (cluster_id, principal, resource_type, resource_name, pattern_type, operation, permission) DO NOTHING"
        );
        for a in acls {
            let b = &a.binding;
            tx.execute(
                &sql,
                params![
                    a.id,
                    cluster,
                    b.principal.to_string(),
                    b.resource_type.as_str(),
                    b.resource_name,
                    b.pattern_type.as_str(),
                    b.operation.as_str(),
                    b.permission.as_str(),
                    ts(a.created_at)
                ],
            )?;
        }
    }
    log(tx, Entity::Acls, cluster, Some(cluster))?;
    Ok(())
}

fn insert_signing_key(tx: &dyn Db, k: &SigningKey) -> Result<()> {
    tx.execute(
        "INSERT INTO signing_keys (kid, created_at, retired_at) VALUES (?1, ?2, ?3)",
        params![k.kid, ts(k.created_at), k.retired_at.map(ts)],
    )?;
    log(tx, Entity::SigningKey, &k.kid, None)?;
    Ok(())
}

fn insert_key(tx: &dyn Db, k: &ApiKey) -> Result<()> {
    let (kind, rid, env) = match &k.scope {
        KeyScope::Cloud => (None, None, None),
        KeyScope::Resource {
            kind,
            id,
            environment_id,
        } => (
            Some(kind.as_str()),
            Some(id.as_str()),
            Some(environment_id.as_str()),
        ),
    };
    tx.execute(
        &format!("INSERT INTO api_keys ({KEY_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"),
        params![
            k.id.as_str(),
            k.display_name,
            k.description,
            k.owner_id,
            k.owner_kind.as_str(),
            k.scope.storage_key(),
            kind,
            rid,
            env,
            &k.secret_hash[..],
            k.disabled,
            k.expires_at.map(ts),
            k.last_used_at.map(ts),
            ts(k.created_at),
            ts(k.updated_at)
        ],
    )?;
    log(tx, Entity::ApiKey, k.id.as_str(), None)?;
    Ok(())
}

fn insert_binding(tx: &dyn Db, rb: &RoleBinding, cluster: Option<&str>) -> Result<()> {
    let res = tx.execute(
        &format!("INSERT INTO role_bindings ({BINDING_COLS}) VALUES (?1, ?2, ?3, ?4, ?5)"),
        params![
            rb.id,
            rb.principal.to_string(),
            rb.role.as_str(),
            rb.crn_pattern.to_string(),
            ts(rb.created_at)
        ],
    );
    match res {
        Err(e) if is_unique_violation(&e) => {
            return Err(StoreError::Conflict(format!(
                "{} already has role {} on {}",
                rb.principal, rb.role, rb.crn_pattern
            )))
        }
        r => r?,
    };
    log(tx, Entity::RoleBinding, &rb.id, cluster)?;
    Ok(())
}

/// Other OrganizationAdmin bindings than those of `principal` / binding `except_id`.
fn other_org_admins(tx: &dyn Db, principal: Option<&str>, except_id: Option<&str>) -> Result<i64> {
    Ok(tx.query_row(
        "SELECT COUNT(*) FROM role_bindings WHERE role = 'OrganizationAdmin' \
         AND (CAST(?1 AS TEXT) IS NULL OR principal <> ?1) AND (CAST(?2 AS TEXT) IS NULL OR id <> ?2)",
        params![principal, except_id],
        |r| r.get(0),
    )?)
}

/// Whether some OrganizationAdmin can still authenticate: an account bound to
/// OrganizationAdmin with an enabled, unexpired CLOUD key or a console password.
fn admin_can_authenticate(tx: &dyn Db, now: Timestamp) -> Result<bool> {
    Ok(tx.query_row(
        "SELECT EXISTS(SELECT 1 FROM role_bindings rb JOIN accounts a ON rb.principal = 'User:' || a.id \
         WHERE rb.role = 'OrganizationAdmin' AND ( \
           EXISTS(SELECT 1 FROM api_keys k WHERE k.owner_id = a.id AND k.resource_key = 'CLOUD' \
                  AND k.disabled = ?1 AND (k.expires_at IS NULL OR k.expires_at > ?2)) \
           OR EXISTS(SELECT 1 FROM user_passwords p WHERE p.user_id = a.id)))",
        params![false, ts(now)],
        |r| r.get(0),
    )?)
}

/// Run `change` in the transaction, and refuse it if it took away the last way an
/// OrganizationAdmin could authenticate (nothing in keygate could undo that; the way
/// back is `keygate admin recover` on the database itself).
fn keeping_admin_access<T>(
    tx: &dyn Db,
    now: Timestamp,
    change: impl FnOnce(&dyn Db) -> Result<T>,
) -> Result<T> {
    let before = admin_can_authenticate(tx, now)?;
    let out = change(tx)?;
    if before && !admin_can_authenticate(tx, now)? {
        return Err(StoreError::LastAdminCredential);
    }
    Ok(out)
}

fn delete_bindings_where(tx: &dyn Db, sql_where: &str, p: impl Params) -> Result<()> {
    let ids: Vec<(String, String)> = query_all(
        tx,
        &format!("SELECT id, crn_pattern FROM role_bindings WHERE {sql_where} ORDER BY id"),
        p,
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    for (id, pattern) in ids {
        tx.execute("DELETE FROM role_bindings WHERE id = ?1", [&id])?;
        log(
            tx,
            Entity::RoleBinding,
            &id,
            cluster_of(&pattern).as_deref(),
        )?;
    }
    Ok(())
}

fn delete_keys_where(tx: &dyn Db, sql_where: &str, p: impl Params) -> Result<()> {
    let ids: Vec<String> = query_all(
        tx,
        &format!("SELECT id FROM api_keys WHERE {sql_where} ORDER BY id"),
        p,
        |r| r.get(0),
    )?;
    for id in ids {
        tx.execute("DELETE FROM api_keys WHERE id = ?1", [&id])?;
        log(tx, Entity::ApiKey, &id, None)?;
    }
    Ok(())
}

const UNDER_CRN: &str = "(crn_pattern = ?1 OR substr(crn_pattern, 1, length(CAST(?1 AS TEXT)) + 1) = CAST(?1 AS TEXT) || '/')";

fn acl_where(f: &AclFilter) -> (String, Vec<String>) {
    let mut clauses = vec!["cluster_id = ?1".to_owned()];
    let mut values = Vec::new();
    let mut add = |col: &str, v: Option<String>| {
        if let Some(v) = v {
            values.push(v);
            clauses.push(format!("{col} = ?{}", values.len() + 1));
        }
    };
    add("principal", f.principal.as_ref().map(|p| p.to_string()));
    add(
        "resource_type",
        f.resource_type.map(|t| t.as_str().to_owned()),
    );
    add("resource_name", f.resource_name.clone());
    add(
        "pattern_type",
        f.pattern_type.map(|t| t.as_str().to_owned()),
    );
    add("operation", f.operation.map(|t| t.as_str().to_owned()));
    add("permission", f.permission.map(|t| t.as_str().to_owned()));
    (clauses.join(" AND "), values)
}

fn select_acls(c: &dyn Db, cluster_id: &str, f: &AclFilter) -> Result<Vec<Acl>> {
    let (w, values) = acl_where(f);
    let mut all = params![cluster_id];
    all.extend(values.iter().map(ToValue::to_value));
    query_all(
        c,
        &format!("SELECT {ACL_COLS} FROM acls WHERE {w} ORDER BY created_at, id"),
        all,
        acl_row,
    )
}

fn get_key(c: &dyn Db, id: &str) -> Result<ApiKey> {
    c.query_row(
        &format!("SELECT {KEY_COLS} FROM api_keys WHERE id = ?1"),
        [id],
        key_row,
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound("API key", id.to_owned()))
}

fn get_account(c: &dyn Db, id: &str) -> Result<Account> {
    c.query_row(
        &format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE id = ?1"),
        [id],
        account_row,
    )
    .optional()?
    .ok_or_else(|| {
        StoreError::NotFound(
            if id.starts_with("sa-") {
                "service account"
            } else {
                "user"
            },
            id.to_owned(),
        )
    })
}

fn get_env(c: &dyn Db, id: &str) -> Result<Environment> {
    c.query_row(
        &format!("SELECT {ENV_COLS} FROM environments WHERE id = ?1"),
        [id],
        env_row,
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound("environment", id.to_owned()))
}

fn get_resource(c: &dyn Db, key: &str) -> Result<Resource> {
    c.query_row(
        &format!("SELECT {RESOURCE_COLS} FROM resources WHERE key = ?1"),
        [key],
        resource_row,
    )
    .optional()?
    .ok_or_else(|| {
        StoreError::NotFound("resource", key.rsplit(':').next().unwrap_or(key).to_owned())
    })
}

fn check_account_names(tx: &dyn Db, a: &Account) -> Result<()> {
    let taken: bool = match a.kind {
        AccountKind::ServiceAccount => tx.query_row(
            "SELECT EXISTS(SELECT 1 FROM accounts WHERE kind = 'service-account' AND display_name = ?1 AND id <> ?2)",
            params![a.display_name, a.id],
            |r| r.get(0),
        )?,
        AccountKind::User => tx.query_row(
            "SELECT EXISTS(SELECT 1 FROM accounts WHERE kind = 'user' AND email = ?1 AND id <> ?2)",
            params![a.email, a.id],
            |r| r.get(0),
        )?,
    };
    if taken {
        return Err(StoreError::Conflict(match a.kind {
            AccountKind::ServiceAccount => "Service name is already in use".to_owned(),
            AccountKind::User => "a user with this email already exists".to_owned(),
        }));
    }
    Ok(())
}

/// Delete a principal's role bindings and ACLs (its owner is going away).
fn delete_grants(tx: &dyn Db, principal: &str) -> Result<()> {
    delete_bindings_where(tx, "principal = ?1", [principal])?;
    let clusters: Vec<String> = query_all(
        tx,
        "SELECT DISTINCT cluster_id FROM acls WHERE principal = ?1",
        [principal],
        |r| r.get(0),
    )?;
    tx.execute("DELETE FROM acls WHERE principal = ?1", [principal])?;
    for c in clusters {
        log(tx, Entity::Acls, &c, Some(&c))?;
    }
    Ok(())
}

const PROVIDER_COLS: &str = "id, display_name, description, issuer, jwks_uri, identity_claim, enabled, jwks, jwks_fetched_at, created_at, updated_at, certificate";

fn provider_row(r: &Row) -> DbResult<IdentityProvider> {
    Ok(IdentityProvider {
        id: r.get(0)?,
        display_name: r.get(1)?,
        description: r.get(2)?,
        issuer: r.get(3)?,
        jwks_uri: r.get(4)?,
        identity_claim: r.get(5)?,
        enabled: r.get(6)?,
        jwks: r.get(7)?,
        jwks_fetched_at: opt_ts(r.get(8)?)?,
        created_at: from_ts(r.get(9)?)?,
        updated_at: from_ts(r.get(10)?)?,
        certificate: crate::columns::decode_authority(r.get(11)?)
            .map_err(|e| corrupt(format!("identity provider certificate: {e}")))?,
    })
}

const POOL_COLS: &str = "id, provider_id, display_name, description, identity_claim, filter, enabled, created_at, updated_at";

fn pool_row(r: &Row) -> DbResult<IdentityPool> {
    Ok(IdentityPool {
        id: r.get(0)?,
        provider_id: r.get(1)?,
        display_name: r.get(2)?,
        description: r.get(3)?,
        identity_claim: r.get(4)?,
        filter: r.get(5)?,
        enabled: r.get(6)?,
        created_at: from_ts(r.get(7)?)?,
        updated_at: from_ts(r.get(8)?)?,
    })
}

fn signing_key_row(r: &Row) -> DbResult<SigningKey> {
    Ok(SigningKey {
        kid: r.get(0)?,
        created_at: from_ts(r.get(1)?)?,
        retired_at: opt_ts(r.get(2)?)?,
    })
}

fn get_provider(c: &dyn Db, id: &str) -> Result<IdentityProvider> {
    c.query_row(
        &format!("SELECT {PROVIDER_COLS} FROM identity_providers WHERE id = ?1"),
        [id],
        provider_row,
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound("identity provider", id.to_owned()))
}

fn get_pool(c: &dyn Db, id: &str) -> Result<IdentityPool> {
    c.query_row(
        &format!("SELECT {POOL_COLS} FROM identity_pools WHERE id = ?1"),
        [id],
        pool_row,
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound("identity pool", id.to_owned()))
}

fn write_provider(tx: &dyn Db, p: &IdentityProvider, insert: bool) -> Result<()> {
    let sql = if insert {
        format!("INSERT INTO identity_providers ({PROVIDER_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)")
    } else {
        "UPDATE identity_providers SET display_name = ?2, description = ?3, issuer = ?4, jwks_uri = ?5, identity_claim = ?6, enabled = ?7, jwks = ?8, jwks_fetched_at = ?9, created_at = ?10, updated_at = ?11, certificate = ?12 WHERE id = ?1".to_owned()
    };
    let res = tx.execute(
        &sql,
        params![
            p.id,
            p.display_name,
            p.description,
            p.issuer,
            p.jwks_uri,
            p.identity_claim,
            p.enabled,
            p.jwks,
            p.jwks_fetched_at.map(ts),
            ts(p.created_at),
            ts(p.updated_at),
            p.certificate.as_ref().map(crate::columns::encode_authority)
        ],
    );
    match res {
        Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(
            "an identity provider with this name or issuer already exists".into(),
        )),
        r => {
            r?;
            log(tx, Entity::IdentityProvider, &p.id, None)?;
            Ok(())
        }
    }
}

fn write_pool(tx: &dyn Db, p: &IdentityPool, insert: bool) -> Result<()> {
    let sql = if insert {
        format!(
            "INSERT INTO identity_pools ({POOL_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        )
    } else {
        "UPDATE identity_pools SET provider_id = ?2, display_name = ?3, description = ?4, identity_claim = ?5, filter = ?6, enabled = ?7, created_at = ?8, updated_at = ?9 WHERE id = ?1".to_owned()
    };
    let res = tx.execute(
        &sql,
        params![
            p.id,
            p.provider_id,
            p.display_name,
            p.description,
            p.identity_claim,
            p.filter,
            p.enabled,
            ts(p.created_at),
            ts(p.updated_at)
        ],
    );
    match res {
        Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
            "identity pool name `{}` is already in use for this provider",
            p.display_name
        ))),
        r => {
            r?;
            log(tx, Entity::IdentityPool, &p.id, None)?;
            Ok(())
        }
    }
}

fn delete_pool_in(tx: &dyn Db, id: &str) -> Result<()> {
    delete_grants(tx, &Principal::user(id.to_owned()).to_string())?;
    tx.execute("DELETE FROM identity_pools WHERE id = ?1", [id])?;
    log(tx, Entity::IdentityPool, id, None)?;
    Ok(())
}

#[async_trait]
impl Store for SqlStore {
    async fn bootstrap(&self, b: Bootstrap, audit: &CloudEvent) -> Result<bool> {
        let audit = audit.clone();
        self.write(None, move |tx| {
            let exists: bool = tx.query_row(
                "SELECT EXISTS(SELECT 1 FROM organization)",
                params![],
                |r| r.get(0),
            )?;
            if exists {
                return Ok(false);
            }
            insert_org(tx, &b.organization)?;
            insert_account(tx, &b.admin)?;
            insert_binding(tx, &b.binding, None)?;
            insert_key(tx, &b.key)?;
            insert_audit(tx, &audit)?;
            Ok(true)
        })
        .await
    }

    async fn setting(&self, name: &str) -> Result<Option<String>> {
        let name = name.to_owned();
        self.run(move |c| {
            Ok(
                c.query_row("SELECT value FROM settings WHERE name = ?1", [&name], |r| {
                    r.get(0)
                })
                .optional()?,
            )
        })
        .await
    }

    async fn init_setting(&self, name: &str, value: &str) -> Result<String> {
        let (name, value) = (name.to_owned(), value.to_owned());
        self.with(Mode::Batch, move |tx| {
            tx.execute(
                "INSERT INTO settings (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
                params![name, value],
            )?;
            Ok::<_, StoreError>(tx.query_row(
                "SELECT value FROM settings WHERE name = ?1",
                [&name],
                |r| r.get(0),
            )?)
        })
        .await
    }

    async fn lease(&self, name: &str, holder: &str, ttl: std::time::Duration) -> Result<bool> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        let now = now();
        let until = now.saturating_add(ttl.as_micros().min(i64::MAX as u128) as i64);
        self.run(move |c| {
            Ok(c.execute(
                "INSERT INTO leases (name, holder, expires_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
                 WHERE leases.holder = excluded.holder OR leases.expires_at < ?4",
                params![name, holder, until, now],
            )? == 1)
        })
        .await
    }

    async fn load_all(&self) -> Result<FullState> {
        self.with(Mode::Snapshot, |tx| {
            let organization = tx
                .query_row(
                    "SELECT id, display_name, crn_authority, created_at FROM organization",
                    params![],
                    org_row,
                )
                .optional()?;
            let state = FullState {
                organization,
                environments: query_all(
                    tx,
                    &format!("SELECT {ENV_COLS} FROM environments ORDER BY created_at"),
                    params![],
                    env_row,
                )?,
                resources: query_all(
                    tx,
                    &format!("SELECT {RESOURCE_COLS} FROM resources ORDER BY created_at"),
                    params![],
                    resource_row,
                )?,
                accounts: query_all(
                    tx,
                    &format!("SELECT {ACCOUNT_COLS} FROM accounts ORDER BY created_at"),
                    params![],
                    account_row,
                )?,
                api_keys: query_all(
                    tx,
                    &format!("SELECT {KEY_COLS} FROM api_keys ORDER BY id"),
                    params![],
                    key_row,
                )?,
                role_bindings: query_all(
                    tx,
                    &format!("SELECT {BINDING_COLS} FROM role_bindings ORDER BY id"),
                    params![],
                    binding_row,
                )?,
                acls: query_all(
                    tx,
                    &format!("SELECT {ACL_COLS} FROM acls ORDER BY id"),
                    params![],
                    acl_row,
                )?,
                identity_providers: query_all(
                    tx,
                    &format!(
                        "SELECT {PROVIDER_COLS} FROM identity_providers ORDER BY created_at, id"
                    ),
                    params![],
                    provider_row,
                )?,
                identity_pools: query_all(
                    tx,
                    &format!("SELECT {POOL_COLS} FROM identity_pools ORDER BY created_at, id"),
                    params![],
                    pool_row,
                )?,
                signing_keys: query_all(
                    tx,
                    "SELECT kid, created_at, retired_at FROM signing_keys ORDER BY created_at, kid",
                    params![],
                    signing_key_row,
                )?,
                client_quotas: quotas::list(tx, None)?,
                seq: tx.query_row(
                    "SELECT COALESCE(MAX(seq), 0) FROM changes",
                    params![],
                    |r| r.get(0),
                )?,
            };
            Ok(state)
        })
        .await
    }

    async fn changes_since(&self, seq: i64, limit: u32) -> Result<Vec<Change>> {
        self.run(move |c| {
            query_all(
                c,
                "SELECT seq, entity, entity_id, cluster_id, at FROM changes WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                params![seq, limit],
                |r| {
                    let entity: String = r.get(1)?;
                    Ok(Change {
                        seq: r.get(0)?,
                        entity: Entity::parse(&entity).ok_or_else(|| corrupt(format!("entity {entity}")))?,
                        entity_id: r.get(2)?,
                        cluster_id: r.get(3)?,
                        at_micros: r.get(4)?,
                    })
                },
            )
        })
        .await
    }

    fn subscribe(&self) -> watch::Receiver<i64> {
        self.feed.changes.subscribe()
    }

    async fn create_environment(&self, e: Environment, audit: &CloudEvent) -> Result<()> {
        self.write(Some(audit.clone()), move |tx| insert_env(tx, &e))
            .await
    }

    async fn organization(&self) -> Result<Organization> {
        self.run(get_org).await
    }

    async fn rename_organization(
        &self,
        display_name: &str,
        audit: &CloudEvent,
    ) -> Result<Organization> {
        let name = display_name.to_owned();
        self.write(Some(audit.clone()), move |tx| {
            let mut o = get_org(tx)?;
            tx.execute(
                "UPDATE organization SET display_name = ?2 WHERE id = ?1",
                params![o.id, name],
            )?;
            log(tx, Entity::Organization, &o.id, None)?;
            o.display_name = name;
            Ok(o)
        })
        .await
    }

    async fn get_environment(&self, id: &str) -> Result<Environment> {
        let id = id.to_owned();
        self.run(move |c| get_env(c, &id)).await
    }

    async fn list_environments(&self) -> Result<Vec<Environment>> {
        self.run(|c| {
            query_all(
                c,
                &format!("SELECT {ENV_COLS} FROM environments ORDER BY created_at, id"),
                params![],
                env_row,
            )
        })
        .await
    }

    async fn update_environment(
        &self,
        id: &str,
        patch: Patch,
        at: Timestamp,
        audit: &CloudEvent,
    ) -> Result<Environment> {
        let id = id.to_owned();
        self.write(Some(audit.clone()), move |tx| {
            let mut e = get_env(tx, &id)?;
            if let Some(name) = patch.display_name {
                e.display_name = name;
            }
            e.updated_at = at;
            let res = tx.execute(
                "UPDATE environments SET display_name = ?2, updated_at = ?3 WHERE id = ?1",
                params![e.id, e.display_name, ts(at)],
            );
            match res {
                Err(err) if is_unique_violation(&err) => {
                    return Err(StoreError::Conflict(format!(
                        "environment name `{}` is already in use",
                        e.display_name
                    )))
                }
                r => r?,
            };
            log(tx, Entity::Environment, &id, None)?;
            Ok(e)
        })
        .await
    }

    async fn delete_environment(&self, id: &str, crn: &str, audit: &CloudEvent) -> Result<()> {
        let (id, crn) = (id.to_owned(), crn.to_owned());
        self.write(Some(audit.clone()), move |tx| {
            get_env(tx, &id)?;
            let n: i64 = tx.query_row("SELECT COUNT(*) FROM resources WHERE environment_id = ?1", [&id], |r| r.get(0))?;
            if n > 0 {
                return Err(StoreError::InUse(format!(
                    "environment {id} still contains {n} cluster(s) or other resources; delete them first"
                )));
            }
            delete_bindings_where(tx, UNDER_CRN, [&crn])?;
            tx.execute("DELETE FROM environments WHERE id = ?1", [&id])?;
            log(tx, Entity::Environment, &id, None)?;
            Ok(())
        })
        .await
    }

    async fn create_resource(&self, r: Resource, audit: &CloudEvent) -> Result<()> {
        self.write(Some(audit.clone()), move |tx| {
            get_env(tx, &r.environment_id)?;
            let key = r.storage_key();
            let exists: bool =
                tx.query_row("SELECT EXISTS(SELECT 1 FROM resources WHERE key = ?1)", [&key], |row| row.get(0))?;
            if exists {
                return match r.kind {
                    ResourceKind::Flink | ResourceKind::Tableflow => Err(StoreError::Conflict(format!(
                        "{} {} is already registered in {}",
                        r.kind.as_str(),
                        r.id,
                        r.environment_id
                    ))),
                    _ => Err(StoreError::IdCollision),
                };
            }
            // Kafka clusters take the smallest free gateway slot, for life.
            let slot: Option<u32> = if r.kind == ResourceKind::Kafka {
                let used: Vec<u32> = query_all(
                    tx,
                    "SELECT gateway_slot FROM resources WHERE gateway_slot IS NOT NULL ORDER BY gateway_slot",
                    params![],
                    |row| row.get(0),
                )?;
                Some((0u32..).find(|s| used.binary_search(s).is_err()).unwrap_or(0))
            } else {
                None
            };
            insert_resource(tx, &r, slot)
        })
        .await
    }

    async fn get_resource(&self, key: &str) -> Result<Resource> {
        let key = key.to_owned();
        self.run(move |c| get_resource(c, &key)).await
    }

    async fn list_resources(
        &self,
        kind: Option<ResourceKind>,
        env: Option<&str>,
    ) -> Result<Vec<Resource>> {
        let env = env.map(str::to_owned);
        self.run(move |c| {
            query_all(
                c,
                &format!(
                    "SELECT {RESOURCE_COLS} FROM resources WHERE (CAST(?1 AS TEXT) IS NULL OR kind = ?1) \
                     AND (CAST(?2 AS TEXT) IS NULL OR environment_id = ?2) ORDER BY created_at, key"
                ),
                params![kind.map(|k| k.as_str()), env],
                resource_row,
            )
        })
        .await
    }

    async fn update_resource(
        &self,
        key: &str,
        patch: Patch,
        at: Timestamp,
        audit: &CloudEvent,
    ) -> Result<Resource> {
        let key = key.to_owned();
        self.write(Some(audit.clone()), move |tx| {
            let mut r = get_resource(tx, &key)?;
            if let Some(n) = patch.display_name {
                r.display_name = n;
            }
            if let Some(u) = patch.upstream {
                r.upstream = u;
            }
            if let Some(u) = patch.upstream_security {
                r.upstream_security = u;
            }
            r.updated_at = at;
            tx.execute(
                "UPDATE resources SET display_name = ?2, upstream = ?3, updated_at = ?4, \
                 upstream_security = ?5 WHERE key = ?1",
                params![
                    key,
                    r.display_name,
                    r.upstream,
                    ts(at),
                    crate::columns::encode(&r.upstream_security)
                ],
            )?;
            let cluster = (r.kind == ResourceKind::Kafka).then_some(r.id.as_str());
            log(tx, Entity::Resource, &key, cluster)?;
            Ok(r)
        })
        .await
    }

    async fn delete_resource(&self, key: &str, crn: &str, audit: &CloudEvent) -> Result<()> {
        let (key, crn) = (key.to_owned(), crn.to_owned());
        self.write(Some(audit.clone()), move |tx| {
            let r = get_resource(tx, &key)?;
            delete_keys_where(tx, "resource_key = ?1", [&key])?;
            delete_bindings_where(tx, UNDER_CRN, [&crn])?;
            let cluster = (r.kind == ResourceKind::Kafka).then_some(r.id.as_str());
            if let Some(c) = cluster {
                if tx.execute("DELETE FROM acls WHERE cluster_id = ?1", [c])? > 0 {
                    log(tx, Entity::Acls, c, Some(c))?;
                }
                quotas::remove_cluster(tx, c)?;
            }
            tx.execute("DELETE FROM resources WHERE key = ?1", [&key])?;
            log(tx, Entity::Resource, &key, cluster)?;
            Ok(())
        })
        .await
    }

    async fn create_account(&self, a: Account, audit: &CloudEvent) -> Result<()> {
        self.write(Some(audit.clone()), move |tx| {
            check_account_names(tx, &a)?;
            insert_account(tx, &a)
        })
        .await
    }

    async fn get_account(&self, id: &str) -> Result<Account> {
        let id = id.to_owned();
        self.run(move |c| get_account(c, &id)).await
    }

    async fn list_accounts(&self, kind: AccountKind) -> Result<Vec<Account>> {
        self.run(move |c| {
            query_all(
                c,
                &format!(
                    "SELECT {ACCOUNT_COLS} FROM accounts WHERE kind = ?1 ORDER BY created_at, id"
                ),
                [kind.as_str()],
                account_row,
            )
        })
        .await
    }

    async fn update_account(
        &self,
        id: &str,
        patch: Patch,
        at: Timestamp,
        audit: &CloudEvent,
    ) -> Result<Account> {
        let id = id.to_owned();
        self.write(Some(audit.clone()), move |tx| {
            let mut a = get_account(tx, &id)?;
            if let Some(n) = patch.display_name {
                a.display_name = n;
            }
            if let Some(d) = patch.description {
                a.description = d;
            }
            a.updated_at = at;
            check_account_names(tx, &a)?;
            tx.execute(
                "UPDATE accounts SET display_name = ?2, description = ?3, updated_at = ?4 WHERE id = ?1",
                params![id, a.display_name, a.description, ts(at)],
            )?;
            log(tx, Entity::Account, &id, None)?;
            Ok(a)
        })
        .await
    }

    async fn delete_account(&self, id: &str, audit: &CloudEvent) -> Result<()> {
        let id = id.to_owned();
        self.write(Some(audit.clone()), move |tx| {
            get_account(tx, &id)?;
            let principal = Principal::user(id.clone()).to_string();
            let is_admin: bool = tx.query_row(
                "SELECT EXISTS(SELECT 1 FROM role_bindings WHERE principal = ?1 AND role = 'OrganizationAdmin')",
                [&principal],
                |r| r.get(0),
            )?;
            if is_admin && other_org_admins(tx, Some(&principal), None)? == 0 {
                return Err(StoreError::LastOrgAdmin);
            }
            keeping_admin_access(tx, chrono::Utc::now(), |tx| {
                delete_keys_where(tx, "owner_id = ?1", [&id])?;
                delete_grants(tx, &principal)?;
                tx.execute("DELETE FROM user_passwords WHERE user_id = ?1", [&id])?;
                tx.execute("DELETE FROM accounts WHERE id = ?1", [&id])?;
                Ok(())
            })?;
            log(tx, Entity::Account, &id, None)?;
            Ok(())
        })
        .await
    }

    async fn create_api_key(
        &self,
        k: ApiKey,
        max_per_owner: u32,
        audit: &CloudEvent,
    ) -> Result<()> {
        self.write(Some(audit.clone()), move |tx| {
            get_account(tx, &k.owner_id)?;
            let n: i64 = tx.query_row(
                "SELECT COUNT(*) FROM api_keys WHERE owner_id = ?1",
                [&k.owner_id],
                |r| r.get(0),
            )?;
            if n >= i64::from(max_per_owner) {
                return Err(StoreError::QuotaExceeded(max_per_owner));
            }
            insert_key(tx, &k)
        })
        .await
    }

    async fn get_api_key(&self, id: &KeyId) -> Result<ApiKey> {
        let id = id.as_str().to_owned();
        self.run(move |c| get_key(c, &id)).await
    }

    async fn list_api_keys(&self, f: &KeyFilter) -> Result<Vec<ApiKey>> {
        let f = f.clone();
        self.run(move |c| {
            query_all(
                c,
                &format!(
                    "SELECT {KEY_COLS} FROM api_keys WHERE (CAST(?1 AS TEXT) IS NULL OR owner_id = ?1) \
                     AND (CAST(?2 AS TEXT) IS NULL OR resource_key = ?2) ORDER BY created_at, id"
                ),
                params![f.owner_id, f.resource_key],
                key_row,
            )
        })
        .await
    }

    async fn update_api_key(
        &self,
        id: &KeyId,
        patch: Patch,
        at: Timestamp,
        audit: &CloudEvent,
    ) -> Result<ApiKey> {
        let id = id.as_str().to_owned();
        self.write(Some(audit.clone()), move |tx| {
            let mut k = get_key(tx, &id)?;
            if let Some(n) = patch.display_name {
                k.display_name = n;
            }
            if let Some(d) = patch.description {
                k.description = d;
            }
            k.updated_at = at;
            tx.execute(
                "UPDATE api_keys SET display_name = ?2, description = ?3, updated_at = ?4 WHERE id = ?1",
                params![id, k.display_name, k.description, ts(at)],
            )?;
            log(tx, Entity::ApiKey, &id, None)?;
            Ok(k)
        })
        .await
    }

    async fn set_api_key_disabled(
        &self,
        id: &KeyId,
        disabled: bool,
        at: Timestamp,
        audit: &CloudEvent,
    ) -> Result<ApiKey> {
        let id = id.as_str().to_owned();
        self.write(Some(audit.clone()), move |tx| {
            let mut k = get_key(tx, &id)?;
            k.disabled = disabled;
            k.updated_at = at;
            keeping_admin_access(tx, at, |tx| {
                tx.execute(
                    "UPDATE api_keys SET disabled = ?2, updated_at = ?3 WHERE id = ?1",
                    params![id, disabled, ts(at)],
                )
                .map_err(StoreError::from)
            })?;
            log(tx, Entity::ApiKey, &id, None)?;
            Ok(k)
        })
        .await
    }

    async fn delete_api_key(&self, id: &KeyId, audit: &CloudEvent) -> Result<()> {
        let id = id.as_str().to_owned();
        self.write(Some(audit.clone()), move |tx| {
            let deleted = keeping_admin_access(tx, chrono::Utc::now(), |tx| {
                tx.execute("DELETE FROM api_keys WHERE id = ?1", [&id])
                    .map_err(StoreError::from)
            })?;
            if deleted == 0 {
                return Err(StoreError::NotFound("API key", id));
            }
            log(tx, Entity::ApiKey, &id, None)?;
            Ok(())
        })
        .await
    }

    async fn record_key_usage(&self, uses: &[(KeyId, Timestamp)]) -> Result<()> {
        let uses: Vec<(String, i64)> = uses
            .iter()
            .map(|(k, t)| (k.as_str().to_owned(), ts(*t)))
            .collect();
        let mut uses = uses;
        // One order everywhere: concurrent batches from several instances never deadlock.
        uses.sort();
        self.with(Mode::Batch, move |tx| {
            for (id, at) in &uses {
                tx.execute(
                    "UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1 \
                     AND (last_used_at IS NULL OR last_used_at < ?2)",
                    params![id, at],
                )?;
            }
            Ok::<_, StoreError>(())
        })
        .await
    }

    async fn create_client_quota(
        &self,
        q: keygate_core::model::ClientQuota,
        audit: &CloudEvent,
    ) -> Result<()> {
        self.write(Some(audit.clone()), move |tx| {
            let r = get_resource(tx, &q.cluster_id)?;
            if r.kind != ResourceKind::Kafka || r.environment_id != q.environment_id {
                return Err(StoreError::NotFound("Kafka cluster", q.cluster_id.clone()));
            }
            quotas::insert(tx, &q)
        })
        .await
    }

    async fn get_client_quota(&self, id: &str) -> Result<keygate_core::model::ClientQuota> {
        let id = id.to_owned();
        self.run(move |c| quotas::get(c, &id)).await
    }

    async fn list_client_quotas(
        &self,
        cluster: Option<&str>,
    ) -> Result<Vec<keygate_core::model::ClientQuota>> {
        let cluster = cluster.map(str::to_owned);
        self.run(move |c| quotas::list(c, cluster.as_deref())).await
    }

    async fn update_client_quota(
        &self,
        q: keygate_core::model::ClientQuota,
        audit: &CloudEvent,
    ) -> Result<()> {
        self.write(Some(audit.clone()), move |tx| quotas::replace(tx, &q))
            .await
    }

    async fn delete_client_quota(&self, id: &str, audit: &CloudEvent) -> Result<()> {
        let id = id.to_owned();
        self.write(Some(audit.clone()), move |tx| {
            let q = quotas::get(tx, &id)?;
            quotas::remove(tx, &id)?;
            log(tx, Entity::ClientQuota, &id, Some(&q.cluster_id))?;
            Ok(())
        })
        .await
    }

    async fn create_role_binding(
        &self,
        rb: RoleBinding,
        cluster_id: Option<&str>,
        audit: &CloudEvent,
    ) -> Result<()> {
        let cluster = cluster_id.map(str::to_owned);
        self.write(Some(audit.clone()), move |tx| {
            insert_binding(tx, &rb, cluster.as_deref())
        })
        .await
    }

    async fn get_role_binding(&self, id: &str) -> Result<RoleBinding> {
        let id = id.to_owned();
        self.run(move |c| {
            c.query_row(
                &format!("SELECT {BINDING_COLS} FROM role_bindings WHERE id = ?1"),
                [&id],
                binding_row,
            )
            .optional()?
            .ok_or(StoreError::NotFound("role binding", id))
        })
        .await
    }

    async fn list_role_bindings(&self, f: &BindingFilter) -> Result<Vec<RoleBinding>> {
        let f = f.clone();
        self.run(move |c| {
            query_all(
                c,
                &format!(
                    "SELECT {BINDING_COLS} FROM role_bindings WHERE (CAST(?2 AS TEXT) IS NULL OR principal = ?2) \
                     AND (CAST(?3 AS TEXT) IS NULL OR role = ?3) AND (CAST(?1 AS TEXT) IS NULL OR {UNDER_CRN}) ORDER BY created_at, id"
                ),
                params![f.crn_prefix, f.principal.map(|p| p.to_string()), f.role.map(|r| r.as_str())],
                binding_row,
            )
        })
        .await
    }

    async fn delete_role_binding(
        &self,
        id: &str,
        cluster_id: Option<&str>,
        audit: &CloudEvent,
    ) -> Result<()> {
        let (id, cluster) = (id.to_owned(), cluster_id.map(str::to_owned));
        self.write(Some(audit.clone()), move |tx| {
            let role: Option<String> = tx
                .query_row("SELECT role FROM role_bindings WHERE id = ?1", [&id], |r| {
                    r.get(0)
                })
                .optional()?;
            let role = role.ok_or_else(|| StoreError::NotFound("role binding", id.clone()))?;
            if role == Role::OrganizationAdmin.as_str()
                && other_org_admins(tx, None, Some(&id))? == 0
            {
                return Err(StoreError::LastOrgAdmin);
            }
            keeping_admin_access(tx, chrono::Utc::now(), |tx| {
                tx.execute("DELETE FROM role_bindings WHERE id = ?1", [&id])
                    .map_err(StoreError::from)
            })?;
            log(tx, Entity::RoleBinding, &id, cluster.as_deref())?;
            Ok(())
        })
        .await
    }

    async fn create_acls(
        &self,
        cluster_id: &str,
        acls: Vec<Acl>,
        audit: &CloudEvent,
    ) -> Result<()> {
        let cluster = cluster_id.to_owned();
        self.write(Some(audit.clone()), move |tx| {
            insert_acls(tx, &cluster, &acls.iter().collect::<Vec<_>>())
        })
        .await
    }

    async fn list_acls(&self, cluster_id: &str, f: &AclFilter) -> Result<Vec<Acl>> {
        let (cluster, f) = (cluster_id.to_owned(), f.clone());
        self.run(move |c| select_acls(c, &cluster, &f)).await
    }

    async fn delete_acls(
        &self,
        cluster_id: &str,
        f: &AclFilter,
        audit: &CloudEvent,
    ) -> Result<Vec<Acl>> {
        let (cluster, f) = (cluster_id.to_owned(), f.clone());
        self.write(Some(audit.clone()), move |tx| {
            let found = select_acls(tx, &cluster, &f)?;
            for a in &found {
                tx.execute("DELETE FROM acls WHERE id = ?1", [&a.id])?;
            }
            if !found.is_empty() {
                log(tx, Entity::Acls, &cluster, Some(&cluster))?;
            }
            Ok(found)
        })
        .await
    }

    async fn create_provider(&self, p: IdentityProvider, audit: &CloudEvent) -> Result<()> {
        self.write(Some(audit.clone()), move |tx| write_provider(tx, &p, true))
            .await
    }

    async fn get_provider(&self, id: &str) -> Result<IdentityProvider> {
        let id = id.to_owned();
        self.run(move |c| get_provider(c, &id)).await
    }

    async fn list_providers(&self) -> Result<Vec<IdentityProvider>> {
        self.run(|c| {
            query_all(
                c,
                &format!("SELECT {PROVIDER_COLS} FROM identity_providers ORDER BY created_at, id"),
                params![],
                provider_row,
            )
        })
        .await
    }

    async fn update_provider(
        &self,
        id: &str,
        patch: Patch,
        at: Timestamp,
        audit: &CloudEvent,
    ) -> Result<IdentityProvider> {
        let id = id.to_owned();
        self.write(Some(audit.clone()), move |tx| {
            let mut p = get_provider(tx, &id)?;
            if let Some(v) = patch.display_name {
                p.display_name = v;
            }
            if let Some(v) = patch.description {
                p.description = v;
            }
            if let Some(v) = patch.issuer {
                p.issuer = v;
            }
            if let Some(v) = patch.jwks_uri {
                p.jwks_uri = v;
            }
            if let Some(v) = patch.identity_claim {
                p.identity_claim = v;
            }
            if let Some(v) = patch.enabled {
                p.enabled = v;
            }
            if let Some(v) = patch.certificate {
                p.certificate = Some(v);
            }
            p.updated_at = at;
            write_provider(tx, &p, false)?;
            Ok(p)
        })
        .await
    }

    async fn set_provider_jwks(
        &self,
        id: &str,
        jwks: String,
        at: Timestamp,
        audit: &CloudEvent,
    ) -> Result<bool> {
        let id = id.to_owned();
        let audit = audit.clone();
        self.write(None, move |tx| {
            let mut p = get_provider(tx, &id)?;
            let changed = p.jwks != jwks;
            p.jwks_fetched_at = Some(at);
            if changed {
                p.jwks = jwks;
                write_provider(tx, &p, false)?;
                insert_audit(tx, &audit)?;
            } else {
                tx.execute(
                    "UPDATE identity_providers SET jwks_fetched_at = ?2 WHERE id = ?1",
                    params![id, ts(at)],
                )?;
            }
            Ok(changed)
        })
        .await
    }

    async fn delete_provider(&self, id: &str, audit: &CloudEvent) -> Result<()> {
        let id = id.to_owned();
        self.write(Some(audit.clone()), move |tx| {
            get_provider(tx, &id)?;
            let pools: Vec<String> = query_all(
                tx,
                "SELECT id FROM identity_pools WHERE provider_id = ?1",
                [&id],
                |r| r.get(0),
            )?;
            for pool in pools {
                delete_pool_in(tx, &pool)?;
            }
            tx.execute("DELETE FROM identity_providers WHERE id = ?1", [&id])?;
            log(tx, Entity::IdentityProvider, &id, None)?;
            Ok(())
        })
        .await
    }

    async fn create_pool(&self, p: IdentityPool, audit: &CloudEvent) -> Result<()> {
        self.write(Some(audit.clone()), move |tx| {
            get_provider(tx, &p.provider_id)?;
            write_pool(tx, &p, true)
        })
        .await
    }

    async fn get_pool(&self, id: &str) -> Result<IdentityPool> {
        let id = id.to_owned();
        self.run(move |c| get_pool(c, &id)).await
    }

    async fn list_pools(&self, provider_id: &str) -> Result<Vec<IdentityPool>> {
        let provider_id = provider_id.to_owned();
        self.run(move |c| {
            get_provider(c, &provider_id)?;
            query_all(
                c,
                &format!("SELECT {POOL_COLS} FROM identity_pools WHERE provider_id = ?1 ORDER BY created_at, id"),
                [&provider_id],
                pool_row,
            )
        })
        .await
    }

    async fn update_pool(
        &self,
        id: &str,
        patch: Patch,
        at: Timestamp,
        audit: &CloudEvent,
    ) -> Result<IdentityPool> {
        let id = id.to_owned();
        self.write(Some(audit.clone()), move |tx| {
            let mut p = get_pool(tx, &id)?;
            if let Some(v) = patch.display_name {
                p.display_name = v;
            }
            if let Some(v) = patch.description {
                p.description = v;
            }
            if let Some(v) = patch.identity_claim {
                p.identity_claim = v;
            }
            if let Some(v) = patch.filter {
                p.filter = v;
            }
            if let Some(v) = patch.enabled {
                p.enabled = v;
            }
            p.updated_at = at;
            write_pool(tx, &p, false)?;
            Ok(p)
        })
        .await
    }

    async fn delete_pool(&self, id: &str, audit: &CloudEvent) -> Result<()> {
        let id = id.to_owned();
        self.write(Some(audit.clone()), move |tx| {
            get_pool(tx, &id)?;
            delete_pool_in(tx, &id)
        })
        .await
    }

    async fn list_signing_keys(&self) -> Result<Vec<SigningKey>> {
        self.run(|c| {
            query_all(
                c,
                "SELECT kid, created_at, retired_at FROM signing_keys ORDER BY created_at, kid",
                params![],
                signing_key_row,
            )
        })
        .await
    }

    async fn add_signing_key(
        &self,
        k: SigningKey,
        retire_others: bool,
        audit: &CloudEvent,
    ) -> Result<()> {
        self.write(Some(audit.clone()), move |tx| {
            if retire_others {
                tx.execute(
                    "UPDATE signing_keys SET retired_at = ?1 WHERE retired_at IS NULL",
                    [ts(k.created_at)],
                )?;
            }
            insert_signing_key(tx, &k)
        })
        .await
    }

    async fn retire_signing_keys(
        &self,
        before: Timestamp,
        at: Timestamp,
        audit: &CloudEvent,
    ) -> Result<u32> {
        let audit = audit.clone();
        self.write(None, move |tx| {
            let n = tx.execute(
                "UPDATE signing_keys SET retired_at = ?2 WHERE retired_at IS NULL AND created_at < ?1",
                params![ts(before), ts(at)],
            )?;
            if n > 0 {
                log(tx, Entity::SigningKey, "*", None)?;
                insert_audit(tx, &audit)?;
            }
            Ok(n as u32)
        })
        .await
    }

    async fn append_audit(&self, events: Vec<CloudEvent>) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let seq = self
            .with(Mode::Batch, move |tx| {
                for e in &events {
                    insert_audit(tx, e)?;
                }
                let seq = max_audit_seq(tx)?;
                tx.announce(0, seq)?;
                Ok::<_, StoreError>(seq)
            })
            .await?;
        publish(&self.feed.audit, seq);
        Ok(())
    }

    async fn query_audit(&self, q: &AuditQuery) -> Result<Vec<AuditRow>> {
        let q = q.clone();
        self.run(move |c| {
            use crate::sql::Value as V;
            let mut sql = String::from("SELECT seq, event FROM audit_events WHERE 1 = 1");
            let mut args: Vec<V> = Vec::new();
            // Appends a condition, numbering its `?` placeholders in order.
            let mut cond = |part: &str, vals: Vec<V>| {
                for (i, piece) in part.split('?').enumerate() {
                    if i > 0 {
                        sql.push_str(&format!("?{}", args.len() + i));
                    }
                    sql.push_str(piece);
                }
                args.extend(vals);
            };
            if let Some(a) = q.after {
                cond(" AND seq > ?", vec![V::Int(a)]);
            }
            if let Some(b) = q.before {
                cond(" AND seq < ?", vec![V::Int(b)]);
            }
            if let Some(t) = q.start_time {
                cond(" AND time >= ?", vec![V::Int(ts(t))]);
            }
            if let Some(t) = q.end_time {
                cond(" AND time < ?", vec![V::Int(ts(t))]);
            }
            if let Some(p) = q.principal {
                cond(" AND principal = ?", vec![V::Text(p)]);
            }
            if let Some(m) = q.method {
                cond(" AND method = ?", vec![V::Text(m)]);
            }
            if let Some(r) = q.resource {
                match r.strip_suffix('*') {
                    Some(prefix) => cond(
                        " AND substr(resource, 1, ?) = ?",
                        vec![
                            V::Int(prefix.chars().count() as i64),
                            V::Text(prefix.to_owned()),
                        ],
                    ),
                    None => cond(" AND resource = ?", vec![V::Text(r)]),
                }
            }
            if let Some(g) = q.granted {
                cond(" AND granted = ?", vec![V::Int(i64::from(g))]);
            }
            if let Some(i) = q.identifier {
                cond(" AND identifier = ?", vec![V::Text(i)]);
            }
            let order = if q.descending { "DESC" } else { "ASC" };
            let limit = q.limit.clamp(1, 1000);
            let sql = format!("{sql} ORDER BY seq {order} LIMIT {limit}");
            query_all(c, &sql, args, |r| {
                let json: String = r.get(1)?;
                Ok(AuditRow {
                    seq: r.get(0)?,
                    event: CloudEvent::from_json(&json).map_err(|e| corrupt(e.to_string()))?,
                })
            })
        })
        .await
    }

    async fn audit_cursor(&self, sink: &str) -> Result<i64> {
        let sink = sink.to_owned();
        self.run(move |c| {
            Ok(c.query_row(
                "SELECT seq FROM audit_cursors WHERE sink = ?1",
                [&sink],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0))
        })
        .await
    }

    async fn set_audit_cursor(&self, sink: &str, seq: i64) -> Result<()> {
        let sink = sink.to_owned();
        self.run(move |c| {
            c.execute(
                "INSERT INTO audit_cursors (sink, seq) VALUES (?1, ?2) \
                 ON CONFLICT (sink) DO UPDATE SET seq = excluded.seq WHERE audit_cursors.seq < excluded.seq",
                params![sink, seq],
            )?;
            Ok(())
        })
        .await
    }

    async fn record_service_object(
        &self,
        resource_key: &str,
        object_id: &str,
        principal: &str,
        at: Timestamp,
    ) -> Result<()> {
        let (key, id, who) = (
            resource_key.to_owned(),
            object_id.to_owned(),
            principal.to_owned(),
        );
        self.run(move |c| {
            c.execute(
                "INSERT INTO service_objects (resource_key, object_id, principal, created_at) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (resource_key, object_id) DO NOTHING",
                params![key, id, who, ts(at)],
            )?;
            Ok(())
        })
        .await
    }

    async fn service_object_owners(
        &self,
        resource_key: &str,
        object_ids: &[String],
    ) -> Result<Vec<(String, String)>> {
        let key = resource_key.to_owned();
        let ids = object_ids.to_vec();
        self.run(move |c| {
            let mut out = Vec::new();
            for id in ids {
                let owner: Option<String> = c
                    .query_row(
                        "SELECT principal FROM service_objects WHERE resource_key = ?1 AND object_id = ?2",
                        params![key, id],
                        |r| r.get(0),
                    )
                    .optional()?;
                if let Some(o) = owner {
                    out.push((id, o));
                }
            }
            Ok(out)
        })
        .await
    }

    async fn prune_audit(&self, before: Timestamp, sinks: &[String]) -> Result<u64> {
        let sinks = sinks.to_vec();
        self.with(Mode::Batch, move |tx| {
            let mut limit = i64::MAX;
            for s in &sinks {
                let seq: i64 = tx
                    .query_row("SELECT seq FROM audit_cursors WHERE sink = ?1", [s], |r| {
                        r.get(0)
                    })
                    .optional()?
                    .unwrap_or(0);
                limit = limit.min(seq);
            }
            let n = tx.execute(
                "DELETE FROM audit_events WHERE time < ?1 AND seq <= ?2",
                params![ts(before), limit],
            )?;
            Ok::<_, StoreError>(n)
        })
        .await
    }

    fn subscribe_audit(&self) -> watch::Receiver<i64> {
        self.feed.audit.subscribe()
    }

    async fn password_hashes(&self) -> Result<Vec<(String, String)>> {
        self.run(|c| {
            query_all(
                c,
                "SELECT user_id, hash FROM user_passwords ORDER BY user_id",
                params![],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
        .await
    }

    async fn import(
        &self,
        state: FullState,
        passwords: Vec<(String, String)>,
        audit: &CloudEvent,
    ) -> Result<()> {
        self.write(Some(audit.clone()), move |tx| {
            let exists: bool = tx.query_row(
                "SELECT EXISTS(SELECT 1 FROM organization)",
                params![],
                |r| r.get(0),
            )?;
            if exists {
                return Err(StoreError::Conflict(
                    "the database already holds an organization; import into an empty one".into(),
                ));
            }
            let o = state
                .organization
                .ok_or_else(|| StoreError::Conflict("the export has no organization".into()))?;
            insert_org(tx, &o)?;
            for e in &state.environments {
                insert_env(tx, e)?;
            }
            for r in &state.resources {
                insert_resource(tx, r, r.gateway_slot)?;
            }
            for a in &state.accounts {
                insert_account(tx, a)?;
            }
            for k in &state.api_keys {
                insert_key(tx, k)?;
            }
            for rb in &state.role_bindings {
                insert_binding(tx, rb, cluster_of(&rb.crn_pattern.to_string()).as_deref())?;
            }
            let mut by_cluster: std::collections::BTreeMap<&str, Vec<&Acl>> = Default::default();
            for a in &state.acls {
                by_cluster.entry(&a.cluster_id).or_default().push(a);
            }
            for (cluster, acls) in by_cluster {
                insert_acls(tx, cluster, &acls)?;
            }
            for p in &state.identity_providers {
                write_provider(tx, p, true)?;
            }
            for p in &state.identity_pools {
                write_pool(tx, p, true)?;
            }
            for q in &state.client_quotas {
                quotas::insert(tx, q)?;
            }
            for k in &state.signing_keys {
                insert_signing_key(tx, k)?;
            }
            for (user, hash) in &passwords {
                tx.execute(
                    "INSERT INTO user_passwords (user_id, hash, updated_at) VALUES (?1, ?2, ?3)",
                    params![user, hash, now()],
                )?;
            }
            Ok(())
        })
        .await
    }

    async fn find_user_by_email(&self, email: &str) -> Result<Option<Account>> {
        let email = email.trim().to_ascii_lowercase();
        self.run(move |c| {
            Ok(c.query_row(
                &format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE kind = 'user' AND email = ?1"),
                [&email],
                account_row,
            )
            .optional()?)
        })
        .await
    }

    async fn set_password(&self, user_id: &str, hash: String, audit: &CloudEvent) -> Result<()> {
        let id = user_id.to_owned();
        self.write(Some(audit.clone()), move |tx| {
            let a = get_account(tx, &id)?;
            if a.kind != AccountKind::User {
                return Err(StoreError::NotFound("user", id));
            }
            tx.execute(
                "INSERT INTO user_passwords (user_id, hash, updated_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (user_id) DO UPDATE SET hash = excluded.hash, updated_at = excluded.updated_at",
                params![id, hash, now()],
            )?;
            tx.execute("DELETE FROM console_sessions WHERE user_id = ?1", [&id])?;
            Ok(())
        })
        .await
    }

    async fn password_hash(&self, user_id: &str) -> Result<Option<String>> {
        let id = user_id.to_owned();
        self.run(move |c| {
            Ok(c.query_row(
                "SELECT hash FROM user_passwords WHERE user_id = ?1",
                [&id],
                |r| r.get(0),
            )
            .optional()?)
        })
        .await
    }

    async fn create_session(&self, s: ConsoleSession) -> Result<()> {
        self.run(move |c| {
            c.execute(
                "INSERT INTO console_sessions (id_hash, user_id, csrf, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![&s.id_hash[..], s.user_id, s.csrf, ts(s.created_at), ts(s.expires_at)],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_session(
        &self,
        id_hash: [u8; 32],
        at: Timestamp,
    ) -> Result<Option<ConsoleSession>> {
        self.run(move |c| {
            Ok(c.query_row(
                "SELECT id_hash, user_id, csrf, created_at, expires_at FROM console_sessions \
                 WHERE id_hash = ?1 AND expires_at > ?2",
                params![&id_hash[..], ts(at)],
                |r| {
                    let h: Vec<u8> = r.get(0)?;
                    Ok(ConsoleSession {
                        id_hash: h.try_into().map_err(|_| corrupt("session id length"))?,
                        user_id: r.get(1)?,
                        csrf: r.get(2)?,
                        created_at: from_ts(r.get(3)?)?,
                        expires_at: from_ts(r.get(4)?)?,
                    })
                },
            )
            .optional()?)
        })
        .await
    }

    async fn delete_session(&self, id_hash: [u8; 32], at: Timestamp) -> Result<()> {
        self.run(move |c| {
            c.execute(
                "DELETE FROM console_sessions WHERE id_hash = ?1 OR expires_at <= ?2",
                params![&id_hash[..], ts(at)],
            )?;
            Ok(())
        })
        .await
    }
}

fn insert_audit(tx: &dyn Db, e: &CloudEvent) -> Result<()> {
    tx.lock(Lock::Audit)?;
    tx.execute(
        "INSERT INTO audit_events (id, time, type, source, principal, method, resource, granted, identifier, event) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            e.id,
            ts(e.time),
            e.kind,
            e.source,
            e.principal(),
            e.data.method_name,
            e.data.resource_name,
            e.granted(),
            e.identifier(),
            e.to_json()
        ],
    )?;
    Ok(())
}

fn max_audit_seq(c: &dyn Db) -> DbResult<i64> {
    c.query_row(
        "SELECT COALESCE(MAX(seq), 0) FROM audit_events",
        params![],
        |r| r.get(0),
    )
}

fn max_seq(c: &dyn Db) -> DbResult<i64> {
    c.query_row(
        "SELECT COALESCE(MAX(seq), 0) FROM changes",
        params![],
        |r| r.get(0),
    )
}
