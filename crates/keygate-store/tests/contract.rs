//! The store contract: stories that exercise every `Store` method, written once
//! against `&dyn Store` and run unchanged against each back-end: SQLite in memory and
//! on disk, and a real PostgreSQL server (Debian's, started by `keygate-testkit` in a
//! temporary directory; each test gets a database of its own).

use chrono::Utc;
use keygate_core::crn::CrnPattern;
use keygate_core::model::{
    Account, AccountKind, Acl, ApiKey, Environment, KeyScope, Organization, Resource, RoleBinding,
};
use keygate_core::{
    AclBinding, KeyId, Operation, PatternType, Permission, Principal, ResourceKind, ResourceType,
    Role,
};
use keygate_store::{
    AclFilter, AuditQuery, BindingFilter, Bootstrap, CloudEvent, Entity, KeyFilter, Patch,
    SqlStore, Store, StoreError,
};

/// A store on a fresh PostgreSQL database of the shared test server.
async fn pg(name: &str) -> SqlStore {
    let url = keygate_testkit::PgServer::fresh_database(name);
    SqlStore::connect_postgres(&url).await.expect("connect")
}

/// A change's audit record (its content does not matter to these tests).
fn ev() -> CloudEvent {
    rec("Change", "User:u-admin", "crn://k/organization=o", None)
}

fn rec(method: &str, principal: &str, resource: &str, granted: Option<bool>) -> CloudEvent {
    let mut e = CloudEvent::new(
        keygate_audit::types::IAM_REQUEST,
        "crn://k/organization=o",
        "keygate.iam",
        method,
        resource,
        Utc::now(),
    )
    .who(
        Some(principal.into()),
        Some("HTTP_BASIC"),
        Some("KEY1".into()),
    );
    if let Some(g) = granted {
        e = e.authorization(keygate_audit::AuthorizationInfo {
            granted: g,
            operation: "WRITE".into(),
            resource_type: "Topic".into(),
            resource_name: resource.into(),
            ..Default::default()
        });
    }
    e
}

fn account(id: &str, kind: AccountKind, name: &str) -> Account {
    let now = Utc::now();
    Account {
        id: id.into(),
        kind,
        display_name: name.into(),
        description: String::new(),
        email: if kind == AccountKind::User {
            format!("{id}@x.io")
        } else {
            String::new()
        },
        auth_type: String::new(),
        created_at: now,
        updated_at: now,
    }
}

fn key(id: &str, owner: &str, scope: KeyScope) -> ApiKey {
    let now = Utc::now();
    ApiKey {
        id: KeyId::parse(id).expect("key id"),
        display_name: String::new(),
        description: String::new(),
        owner_id: owner.into(),
        owner_kind: if owner.starts_with("sa-") {
            AccountKind::ServiceAccount
        } else {
            AccountKind::User
        },
        scope,
        secret_hash: [1; 32],
        disabled: false,
        expires_at: None,
        last_used_at: None,
        created_at: now,
        updated_at: now,
    }
}

fn acl(principal: &str, name: &str, op: Operation) -> AclBinding {
    AclBinding {
        principal: Principal::parse(principal).expect("principal"),
        resource_type: ResourceType::Topic,
        resource_name: name.into(),
        pattern_type: PatternType::Literal,
        operation: op,
        permission: Permission::Allow,
    }
}

async fn story(store: &dyn Store) {
    let now = Utc::now();
    let org = Organization {
        id: "org-1".into(),
        display_name: "o".into(),
        crn_authority: "keygate".into(),
        created_at: now,
    };
    let org_crn = org.crn();
    let admin = account("u-admin", AccountKind::User, "Admin");
    let admin_binding = RoleBinding {
        id: "rb-admin".into(),
        principal: Principal::user("u-admin"),
        role: Role::OrganizationAdmin,
        crn_pattern: org_crn.clone(),
        created_at: now,
    };
    let boot = Bootstrap {
        organization: org.clone(),
        admin,
        binding: admin_binding,
        key: key("AAAAAAAAAAAAAAAA", "u-admin", KeyScope::Cloud),
    };
    assert_eq!(store.setting("pepper_check").await.expect("setting"), None);
    assert_eq!(
        store
            .init_setting("pepper_check", "first")
            .await
            .expect("init"),
        "first"
    );
    assert_eq!(
        store
            .init_setting("pepper_check", "second")
            .await
            .expect("init"),
        "first",
        "the first value stays"
    );
    assert_eq!(
        store
            .setting("pepper_check")
            .await
            .expect("setting")
            .as_deref(),
        Some("first")
    );
    // Leases: one holder at a time, renewable, taken over once lapsed.
    let minute = std::time::Duration::from_secs(60);
    assert!(store
        .lease("audit-sink:kafka", "a", minute)
        .await
        .expect("lease"));
    assert!(!store
        .lease("audit-sink:kafka", "b", minute)
        .await
        .expect("lease"));
    assert!(store
        .lease("audit-sink:kafka", "a", std::time::Duration::ZERO)
        .await
        .expect("renew"));
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    assert!(store
        .lease("audit-sink:kafka", "b", minute)
        .await
        .expect("take over"));
    assert!(!store
        .lease("audit-sink:kafka", "a", minute)
        .await
        .expect("lease"));
    assert!(store
        .lease("audit-sink:file", "a", minute)
        .await
        .expect("another lease"));
    let mut rx = store.subscribe();
    assert!(store
        .bootstrap(boot.clone(), &ev())
        .await
        .expect("bootstrap"));
    assert!(
        !store
            .bootstrap(boot, &ev())
            .await
            .expect("second bootstrap"),
        "bootstrap is once"
    );
    assert!(
        rx.has_changed().expect("watch"),
        "a commit notifies subscribers"
    );
    let s0 = *rx.borrow_and_update();
    assert!(s0 >= 4);

    // Environments: unique names, no delete while resources exist.
    let env = Environment {
        id: "env-1".into(),
        display_name: "prod".into(),
        created_at: now,
        updated_at: now,
    };
    store
        .create_environment(env.clone(), &ev())
        .await
        .expect("env");
    let same_id = Environment {
        display_name: "other".into(),
        ..env.clone()
    };
    assert!(matches!(
        store.create_environment(same_id, &ev()).await,
        Err(StoreError::IdCollision)
    ));
    let dup = Environment {
        id: "env-2".into(),
        ..env.clone()
    };
    assert!(matches!(
        store.create_environment(dup, &ev()).await,
        Err(StoreError::Conflict(_))
    ));
    let e = store
        .update_environment(
            "env-1",
            Patch {
                display_name: Some("production".into()),
                ..Patch::default()
            },
            now,
            &ev(),
        )
        .await
        .expect("update");
    assert_eq!(e.display_name, "production");
    assert_eq!(store.list_environments().await.expect("list").len(), 1);

    // Resources.
    let lkc = Resource {
        id: "lkc-1".into(),
        kind: ResourceKind::Kafka,
        environment_id: "env-1".into(),
        display_name: "k".into(),
        upstream: "127.0.0.1:9092".into(),
        created_at: now,
        updated_at: now,
        gateway_slot: None,
        ksql: None,
        upstream_security: keygate_core::UpstreamSecurity {
            protocol: keygate_core::SecurityProtocol::SaslSsl,
            mechanism: Some(keygate_core::UpstreamMechanism::ScramSha512),
            username: Some("keygate".into()),
            password: Some(keygate_core::upstream::Sealed("v1.sealed".into())),
            ca_pem: Some("-----BEGIN CERTIFICATE-----".into()),
            ..Default::default()
        },
    };
    store
        .create_resource(lkc.clone(), &ev())
        .await
        .expect("lkc");
    // Upstream settings are stored as they were given (secrets already sealed), and
    // an update changes them.
    let back = store.get_resource("lkc-1").await.expect("read back");
    assert_eq!(back.upstream_security, lkc.upstream_security);
    let rotated = keygate_core::UpstreamSecurity {
        password: Some(keygate_core::upstream::Sealed("v1.rotated".into())),
        ..lkc.upstream_security.clone()
    };
    let updated = store
        .update_resource(
            "lkc-1",
            keygate_store::Patch {
                upstream_security: Some(rotated.clone()),
                ..Default::default()
            },
            now,
            &ev(),
        )
        .await
        .expect("update");
    assert_eq!(updated.upstream_security, rotated);
    assert_eq!(
        store
            .get_resource("lkc-1")
            .await
            .expect("read")
            .upstream_security,
        rotated
    );
    // Kafka clusters get the smallest free gateway slot and keep it: deleting one
    // never moves another, and a freed slot is reused.
    let lkc_b = Resource {
        id: "lkc-b".into(),
        ..lkc.clone()
    };
    let lkc_c = Resource {
        id: "lkc-c".into(),
        ..lkc.clone()
    };
    store
        .create_resource(lkc_b.clone(), &ev())
        .await
        .expect("lkc-b");
    store
        .create_resource(lkc_c.clone(), &ev())
        .await
        .expect("lkc-c");
    let slot = |r: Resource| r.gateway_slot;
    assert_eq!(
        slot(store.get_resource("lkc-1").await.expect("get")),
        Some(0)
    );
    assert_eq!(
        slot(store.get_resource("lkc-b").await.expect("get")),
        Some(1)
    );
    assert_eq!(
        slot(store.get_resource("lkc-c").await.expect("get")),
        Some(2)
    );
    store
        .delete_resource(
            "lkc-b",
            "crn://keygate/organization=org-1/environment=env-1/cloud-cluster=lkc-b",
            &ev(),
        )
        .await
        .expect("delete");
    assert_eq!(
        slot(store.get_resource("lkc-c").await.expect("get")),
        Some(2),
        "a deletion moved another cluster"
    );
    let lkc_d = Resource {
        id: "lkc-d".into(),
        ..lkc.clone()
    };
    store.create_resource(lkc_d, &ev()).await.expect("lkc-d");
    assert_eq!(
        slot(store.get_resource("lkc-d").await.expect("get")),
        Some(1),
        "the freed slot is reused"
    );
    store
        .delete_resource(
            "lkc-c",
            "crn://keygate/organization=org-1/environment=env-1/cloud-cluster=lkc-c",
            &ev(),
        )
        .await
        .expect("delete");
    store
        .delete_resource(
            "lkc-d",
            "crn://keygate/organization=org-1/environment=env-1/cloud-cluster=lkc-d",
            &ev(),
        )
        .await
        .expect("delete");
    // A ksqlDB cluster keeps what it runs on.
    let ksql = Resource {
        id: "lksqlc-1".into(),
        kind: ResourceKind::Ksql,
        upstream: "http://k".into(),
        upstream_security: Default::default(),
        ksql: Some(keygate_core::model::KsqlLinks {
            kafka_cluster: "lkc-1".into(),
            credential_identity: "sa-1".into(),
            csu: 4,
        }),
        ..lkc.clone()
    };
    store
        .create_resource(ksql.clone(), &ev())
        .await
        .expect("ksql");
    assert_eq!(
        store.get_resource("lksqlc-1").await.expect("get").ksql,
        ksql.ksql
    );
    store
        .delete_resource(
            "lksqlc-1",
            "crn://keygate/organization=org-1/environment=env-1/ksql=lksqlc-1",
            &ev(),
        )
        .await
        .expect("delete ksql");
    let flink = Resource {
        id: "aws.us-east-1".into(),
        kind: ResourceKind::Flink,
        upstream: "http://f".into(),
        ..lkc.clone()
    };
    store
        .create_resource(flink.clone(), &ev())
        .await
        .expect("flink");
    assert!(matches!(
        store.create_resource(flink.clone(), &ev()).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .create_resource(
                Resource {
                    environment_id: "env-none".into(),
                    id: "lkc-2".into(),
                    ..lkc.clone()
                },
                &ev()
            )
            .await,
        Err(StoreError::NotFound(..))
    ));
    assert_eq!(
        store
            .get_resource(&flink.storage_key())
            .await
            .expect("get")
            .id,
        "aws.us-east-1"
    );
    assert_eq!(
        store
            .list_resources(Some(ResourceKind::Kafka), Some("env-1"))
            .await
            .expect("list")
            .len(),
        1
    );
    assert_eq!(
        store.list_resources(None, None).await.expect("list").len(),
        2
    );
    let r = store
        .update_resource(
            "lkc-1",
            Patch {
                upstream: Some("b:9092".into()),
                ..Patch::default()
            },
            now,
            &ev(),
        )
        .await
        .expect("update");
    assert_eq!(r.upstream, "b:9092");
    assert!(matches!(
        store
            .delete_environment(
                "env-1",
                &org_crn.child("environment", "env-1").to_string(),
                &ev()
            )
            .await,
        Err(StoreError::InUse(_))
    ));

    // Accounts.
    store
        .create_account(
            account("sa-1", AccountKind::ServiceAccount, "orders"),
            &ev(),
        )
        .await
        .expect("sa");
    assert!(matches!(
        store
            .create_account(
                account("sa-2", AccountKind::ServiceAccount, "orders"),
                &ev()
            )
            .await,
        Err(StoreError::Conflict(_))
    ));
    store
        .create_account(
            account("sa-2", AccountKind::ServiceAccount, "billing"),
            &ev(),
        )
        .await
        .expect("sa2");
    assert!(matches!(
        store
            .update_account(
                "sa-2",
                Patch {
                    display_name: Some("orders".into()),
                    ..Patch::default()
                },
                now,
                &ev()
            )
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store
            .list_accounts(AccountKind::ServiceAccount)
            .await
            .expect("list")
            .len(),
        2
    );
    assert_eq!(
        store
            .list_accounts(AccountKind::User)
            .await
            .expect("list")
            .len(),
        1
    );

    // Keys: quota, filters, usage batches, disable.
    let lkc_scope = KeyScope::Resource {
        kind: ResourceKind::Kafka,
        id: "lkc-1".into(),
        environment_id: "env-1".into(),
    };
    store
        .create_api_key(key("BBBBBBBBBBBBBBBB", "sa-1", lkc_scope.clone()), 2, &ev())
        .await
        .expect("key");
    store
        .create_api_key(key("CCCCCCCCCCCCCCCC", "sa-1", KeyScope::Cloud), 2, &ev())
        .await
        .expect("key");
    assert!(matches!(
        store
            .create_api_key(key("DDDDDDDDDDDDDDDD", "sa-1", KeyScope::Cloud), 2, &ev())
            .await,
        Err(StoreError::QuotaExceeded(2))
    ));
    assert!(matches!(
        store
            .create_api_key(
                key("EEEEEEEEEEEEEEEE", "sa-none", KeyScope::Cloud),
                2,
                &ev()
            )
            .await,
        Err(StoreError::NotFound(..))
    ));
    let f = KeyFilter {
        owner_id: Some("sa-1".into()),
        resource_key: Some("lkc-1".into()),
    };
    assert_eq!(store.list_api_keys(&f).await.expect("list").len(), 1);
    let b = KeyId::parse("BBBBBBBBBBBBBBBB").expect("id");
    let later = now + chrono::Duration::seconds(5);
    store
        .record_key_usage(&[(b, later), (b, now)])
        .await
        .expect("usage");
    assert_eq!(
        store
            .get_api_key(&b)
            .await
            .expect("get")
            .last_used_at
            .map(|t| t.timestamp_micros()),
        Some(later.timestamp_micros())
    );
    assert!(
        store
            .set_api_key_disabled(&b, true, now, &ev())
            .await
            .expect("disable")
            .disabled
    );
    assert_eq!(
        store
            .update_api_key(
                &b,
                Patch {
                    description: Some("d".into()),
                    ..Patch::default()
                },
                now,
                &ev()
            )
            .await
            .expect("update")
            .description,
        "d"
    );

    // Role bindings and ACLs, with the clusters they touch in the change log.
    let topic = CrnPattern::parse("crn://keygate/organization=org-1/environment=env-1/cloud-cluster=lkc-1/kafka=lkc-1/topic=orders").expect("crn");
    let rb = RoleBinding {
        id: "rb-1".into(),
        principal: Principal::user("sa-1"),
        role: Role::DeveloperRead,
        crn_pattern: topic.clone(),
        created_at: now,
    };
    let before = store.changes_since(0, 10_000).await.expect("changes").len();
    store
        .create_role_binding(rb.clone(), Some("lkc-1"), &ev())
        .await
        .expect("rb");
    assert!(matches!(
        store
            .create_role_binding(
                RoleBinding {
                    id: "rb-9".into(),
                    ..rb.clone()
                },
                Some("lkc-1"),
                &ev()
            )
            .await,
        Err(StoreError::Conflict(_))
    ));
    let changes = store.changes_since(0, 10_000).await.expect("changes");
    assert_eq!(
        changes.len(),
        before + 1,
        "one change row per change, none for a refused one"
    );
    let last = changes.last().expect("change");
    assert_eq!(
        (last.entity, last.cluster_id.as_deref()),
        (Entity::RoleBinding, Some("lkc-1"))
    );
    assert!(
        changes.windows(2).all(|w| w[0].seq < w[1].seq),
        "sequence is monotonic"
    );
    let under_env = BindingFilter {
        crn_prefix: Some("crn://keygate/organization=org-1/environment=env-1".into()),
        ..BindingFilter::default()
    };
    assert_eq!(
        store
            .list_role_bindings(&under_env)
            .await
            .expect("list")
            .len(),
        1
    );
    let under_other = BindingFilter {
        crn_prefix: Some("crn://keygate/organization=org-1/environment=env-12".into()),
        ..BindingFilter::default()
    };
    assert_eq!(
        store
            .list_role_bindings(&under_other)
            .await
            .expect("list")
            .len(),
        0,
        "prefix match is by segment"
    );
    let acls = vec![
        Acl {
            id: "acl-1".into(),
            cluster_id: "lkc-1".into(),
            binding: acl("User:sa-1", "orders", Operation::Read),
            created_at: now,
        },
        Acl {
            id: "acl-2".into(),
            cluster_id: "lkc-1".into(),
            binding: acl("User:sa-2", "orders", Operation::Write),
            created_at: now,
        },
    ];
    store
        .create_acls("lkc-1", acls.clone(), &ev())
        .await
        .expect("acls");
    let again = vec![Acl {
        id: "acl-3".into(),
        ..acls[0].clone()
    }];
    store
        .create_acls("lkc-1", again, &ev())
        .await
        .expect("identical ACL is accepted");
    assert_eq!(
        store
            .list_acls("lkc-1", &AclFilter::default())
            .await
            .expect("list")
            .len(),
        2,
        "and not duplicated"
    );
    let f = AclFilter {
        operation: Some(Operation::Write),
        ..AclFilter::default()
    };
    let deleted = store.delete_acls("lkc-1", &f, &ev()).await.expect("delete");
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].binding.operation, Operation::Write);

    // Deleting an account cascades; the last OrganizationAdmin stays.
    store
        .delete_account("sa-1", &ev())
        .await
        .expect("delete sa");
    assert!(matches!(
        store.get_api_key(&b).await,
        Err(StoreError::NotFound(..))
    ));
    assert!(store
        .list_role_bindings(&under_env)
        .await
        .expect("list")
        .is_empty());
    assert!(store
        .list_acls("lkc-1", &AclFilter::default())
        .await
        .expect("list")
        .is_empty());
    assert!(matches!(
        store.delete_account("u-admin", &ev()).await,
        Err(StoreError::LastOrgAdmin)
    ));
    assert!(matches!(
        store.delete_role_binding("rb-admin", None, &ev()).await,
        Err(StoreError::LastOrgAdmin)
    ));

    // Deleting a resource takes its keys, ACLs and bindings; then the environment can go.
    store
        .create_api_key(key("FFFFFFFFFFFFFFFF", "sa-2", lkc_scope), 5, &ev())
        .await
        .expect("key");
    store
        .delete_resource(
            "lkc-1",
            "crn://keygate/organization=org-1/environment=env-1/cloud-cluster=lkc-1",
            &ev(),
        )
        .await
        .expect("delete lkc");
    assert!(matches!(
        store
            .get_api_key(&KeyId::parse("FFFFFFFFFFFFFFFF").expect("id"))
            .await,
        Err(StoreError::NotFound(..))
    ));
    store
        .delete_resource(
            &flink.storage_key(),
            "crn://keygate/organization=org-1/environment=env-1/flink-region=aws.us-east-1",
            &ev(),
        )
        .await
        .expect("delete flink");
    store
        .delete_environment(
            "env-1",
            "crn://keygate/organization=org-1/environment=env-1",
            &ev(),
        )
        .await
        .expect("delete env");
    assert!(matches!(
        store.get_environment("env-1").await,
        Err(StoreError::NotFound(..))
    ));

    // A full load reflects it all, at the latest sequence.
    let state = store.load_all().await.expect("load");
    assert_eq!(state.organization.map(|o| o.id), Some("org-1".into()));
    assert!(state.environments.is_empty() && state.resources.is_empty() && state.acls.is_empty());
    assert_eq!(state.role_bindings.len(), 1);
    assert_eq!(
        state.seq,
        store
            .changes_since(0, 100_000)
            .await
            .expect("changes")
            .last()
            .map(|c| c.seq)
            .unwrap_or(0)
    );
}

#[tokio::test]
async fn sqlite_in_memory() {
    story(&SqlStore::sqlite_in_memory().expect("open")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_story() {
    story(&pg("story").await).await;
}

#[tokio::test]
async fn sqlite_on_disk_and_reopened() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("k.db");
    story(&SqlStore::open_sqlite(&path).expect("open")).await;
    let again = SqlStore::open_sqlite(&path).expect("reopen");
    assert_eq!(again.load_all().await.expect("load").role_bindings.len(), 1);
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("k.db");
    drop(SqlStore::open_sqlite(&path).expect("open"));
    let conn = rusqlite::Connection::open(&path).expect("raw");
    conn.pragma_update(None, "user_version", 99).expect("bump");
    drop(conn);
    assert!(matches!(
        SqlStore::open_sqlite(&path),
        Err(StoreError::SchemaTooNew { found: 99, .. })
    ));
}

#[tokio::test]
async fn migrating_from_v1_assigns_slots_in_creation_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("k.db");
    {
        let conn = rusqlite::Connection::open(&path).expect("raw");
        conn.execute_batch(include_str!("../src/sqlite/schema_v1.sql"))
            .expect("v1");
        conn.pragma_update(None, "user_version", 1)
            .expect("version");
        conn.execute_batch(
            "INSERT INTO environments VALUES ('env-1', 'e', 1, 1);
             INSERT INTO resources VALUES ('lkc-late', 'lkc-late', 'kafka', 'env-1', 'b', 'h:1', 20, 20);
             INSERT INTO resources VALUES ('lkc-early', 'lkc-early', 'kafka', 'env-1', 'a', 'h:1', 10, 10);
             INSERT INTO resources VALUES ('lsrc-x', 'lsrc-x', 'schema-registry', 'env-1', 's', 'http://s', 5, 5);",
        )
        .expect("rows");
    }
    let store = SqlStore::open_sqlite(&path).expect("migrate");
    assert_eq!(
        store
            .get_resource("lkc-early")
            .await
            .expect("get")
            .gateway_slot,
        Some(0)
    );
    assert_eq!(
        store
            .get_resource("lkc-late")
            .await
            .expect("get")
            .gateway_slot,
        Some(1)
    );
    assert_eq!(
        store
            .get_resource("lsrc-x")
            .await
            .expect("get")
            .gateway_slot,
        None
    );
}

/// Identity providers, pools and STS signing keys: uniqueness, cascades, the change
/// log, and "unchanged keys are not a change".
async fn oauth_story(store: &dyn Store) {
    use keygate_core::model::{IdentityPool, IdentityProvider, SigningKey};
    let now = Utc::now();
    let provider = |id: &str, name: &str, issuer: &str| IdentityProvider {
        id: id.into(),
        display_name: name.into(),
        description: String::new(),
        issuer: issuer.into(),
        jwks_uri: format!("{issuer}/jwks"),
        identity_claim: "claims.sub".into(),
        enabled: true,
        jwks: String::new(),
        jwks_fetched_at: None,
        created_at: now,
        updated_at: now,
        certificate: None,
    };
    let pool = |id: &str, op: &str, name: &str| IdentityPool {
        id: id.into(),
        provider_id: op.into(),
        display_name: name.into(),
        description: String::new(),
        identity_claim: "claims.sub".into(),
        filter: "true".into(),
        enabled: true,
        created_at: now,
        updated_at: now,
    };
    store
        .create_provider(provider("op-1", "corp", "https://idp.example"), &ev())
        .await
        .expect("provider");
    for dup in [
        provider("op-2", "corp", "https://other.example"),
        provider("op-2", "other", "https://idp.example"),
    ] {
        assert!(matches!(
            store.create_provider(dup, &ev()).await,
            Err(StoreError::Conflict(_))
        ));
    }
    store
        .create_pool(pool("pool-1", "op-1", "payments"), &ev())
        .await
        .expect("pool");
    assert!(matches!(
        store
            .create_pool(pool("pool-2", "op-1", "payments"), &ev())
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .create_pool(pool("pool-3", "op-nope", "x"), &ev())
            .await,
        Err(StoreError::NotFound(..))
    ));
    let p = store
        .update_pool(
            "pool-1",
            Patch {
                filter: Some("claims.aud == \"kafka\"".into()),
                enabled: Some(false),
                ..Patch::default()
            },
            Utc::now(),
            &ev(),
        )
        .await
        .expect("update pool");
    assert!(!p.enabled && p.filter.contains("kafka"));
    // Fetched keys: a change only when they differ.
    let seq = |s: Vec<keygate_store::Change>| s.last().map(|c| c.seq).unwrap_or(0);
    assert!(store
        .set_provider_jwks("op-1", r#"{"keys":[]}"#.into(), Utc::now(), &ev())
        .await
        .expect("jwks"));
    let before = seq(store.changes_since(0, 100_000).await.expect("changes"));
    assert!(!store
        .set_provider_jwks("op-1", r#"{"keys":[]}"#.into(), Utc::now(), &ev())
        .await
        .expect("jwks"));
    assert_eq!(
        seq(store.changes_since(0, 100_000).await.expect("changes")),
        before,
        "unchanged keys log nothing"
    );
    assert!(store
        .get_provider("op-1")
        .await
        .expect("get")
        .jwks_fetched_at
        .is_some());
    // A pool's grants go with its provider.
    let rb = RoleBinding {
        id: "rb-pool".into(),
        principal: Principal::user("pool-1"),
        role: Role::AccountAdmin,
        crn_pattern: CrnPattern::parse("crn://keygate/organization=org-1").expect("crn"),
        created_at: now,
    };
    store
        .create_role_binding(rb, None, &ev())
        .await
        .expect("binding");
    store
        .delete_provider("op-1", &ev())
        .await
        .expect("delete provider");
    assert!(matches!(
        store.get_pool("pool-1").await,
        Err(StoreError::NotFound(..))
    ));
    assert!(matches!(
        store.get_role_binding("rb-pool").await,
        Err(StoreError::NotFound(..))
    ));
    let kinds: Vec<Entity> = store
        .changes_since(0, 100_000)
        .await
        .expect("changes")
        .into_iter()
        .map(|c| c.entity)
        .collect();
    assert!(kinds.contains(&Entity::IdentityProvider) && kinds.contains(&Entity::IdentityPool));

    // Signing keys: the lifecycle only.
    let k = |kid: &str, secs: i64| SigningKey {
        kid: kid.into(),
        created_at: now + chrono::Duration::seconds(secs),
        retired_at: None,
    };
    store
        .add_signing_key(k("kgk-1", 0), false, &ev())
        .await
        .expect("k1");
    store
        .add_signing_key(k("kgk-2", 10), false, &ev())
        .await
        .expect("k2");
    let live = |ks: Vec<SigningKey>| -> Vec<String> {
        ks.into_iter()
            .filter(|k| k.retired_at.is_none())
            .map(|k| k.kid)
            .collect()
    };
    assert_eq!(
        live(store.list_signing_keys().await.expect("keys")),
        ["kgk-1", "kgk-2"]
    );
    let n = store
        .retire_signing_keys(now + chrono::Duration::seconds(10), Utc::now(), &ev())
        .await
        .expect("retire");
    assert_eq!(n, 1);
    assert_eq!(
        live(store.list_signing_keys().await.expect("keys")),
        ["kgk-2"]
    );
    store
        .add_signing_key(k("kgk-3", 20), true, &ev())
        .await
        .expect("k3");
    assert_eq!(
        live(store.list_signing_keys().await.expect("keys")),
        ["kgk-3"]
    );
    let state = store.load_all().await.expect("load");
    assert_eq!(state.signing_keys.len(), 3);
    assert!(state.identity_providers.is_empty() && state.identity_pools.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_oauth_entities() {
    oauth_story(&pg("oauth").await).await;
}

#[tokio::test]
async fn sqlite_oauth_entities() {
    oauth_story(&SqlStore::sqlite_in_memory().expect("open")).await;
    let dir = tempfile::tempdir().expect("tempdir");
    oauth_story(&SqlStore::open_sqlite(&dir.path().join("o.db")).expect("open")).await;
}

/// Changes and their records commit together; queries filter and page; sinks' cursors
/// hold back retention.
async fn audit_story(store: &dyn Store) {
    let all = |q: AuditQuery| async move {
        store
            .query_audit(&AuditQuery { limit: 1000, ..q })
            .await
            .expect("query")
    };
    let now = Utc::now();
    let env = |id: &str, name: &str| Environment {
        id: id.into(),
        display_name: name.into(),
        created_at: now,
        updated_at: now,
    };
    let ticks = store.subscribe_audit();
    let first = rec(
        "CreateEnvironment",
        "User:u-a",
        "crn://k/organization=o/environment=env-1",
        Some(true),
    );
    store
        .create_environment(env("env-1", "prod"), &first)
        .await
        .expect("create");
    assert!(
        ticks.has_changed().unwrap_or(false),
        "appending ticks the watch"
    );
    // A change that fails leaves no record.
    let dup = rec(
        "CreateEnvironment",
        "User:u-a",
        "crn://k/organization=o/environment=env-2",
        Some(true),
    );
    assert!(matches!(
        store.create_environment(env("env-2", "prod"), &dup).await,
        Err(StoreError::Conflict(_))
    ));
    let rows = all(AuditQuery::default()).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].event, first, "stored as written");

    store
        .append_audit(vec![
            rec(
                "kafka.Authentication",
                "User:sa-1",
                "crn://k/organization=o/kafka=lkc-1",
                None,
            ),
            rec(
                "kafka.Produce",
                "User:sa-1",
                "crn://k/organization=o/kafka=lkc-1/topic=orders",
                Some(false),
            ),
            rec(
                "kafka.Produce",
                "User:sa-2",
                "crn://k/organization=o/kafka=lkc-1/topic=payments",
                Some(true),
            ),
        ])
        .await
        .expect("append");
    let rows = all(AuditQuery::default()).await;
    assert_eq!(rows.len(), 4);
    assert!(rows.windows(2).all(|w| w[0].seq < w[1].seq), "in order");
    let methods = |rows: Vec<keygate_store::AuditRow>| -> Vec<String> {
        rows.into_iter().map(|r| r.event.data.method_name).collect()
    };
    assert_eq!(
        methods(
            all(AuditQuery {
                principal: Some("User:sa-1".into()),
                ..Default::default()
            })
            .await
        ),
        ["kafka.Authentication", "kafka.Produce"]
    );
    assert_eq!(
        methods(
            all(AuditQuery {
                granted: Some(false),
                ..Default::default()
            })
            .await
        ),
        ["kafka.Produce"]
    );
    assert_eq!(
        all(AuditQuery {
            method: Some("kafka.Produce".into()),
            ..Default::default()
        })
        .await
        .len(),
        2
    );
    assert_eq!(
        all(AuditQuery {
            resource: Some("crn://k/organization=o/kafka=lkc-1*".into()),
            ..Default::default()
        })
        .await
        .len(),
        3
    );
    assert_eq!(
        all(AuditQuery {
            resource: Some("crn://k/organization=o/kafka=lkc-1".into()),
            ..Default::default()
        })
        .await
        .len(),
        1
    );
    assert_eq!(
        all(AuditQuery {
            identifier: Some("KEY1".into()),
            ..Default::default()
        })
        .await
        .len(),
        4
    );
    assert!(all(AuditQuery {
        identifier: Some("KEY2".into()),
        ..Default::default()
    })
    .await
    .is_empty());
    assert!(all(AuditQuery {
        start_time: Some(Utc::now() + chrono::Duration::seconds(5)),
        ..Default::default()
    })
    .await
    .is_empty());
    assert_eq!(
        all(AuditQuery {
            end_time: Some(Utc::now() + chrono::Duration::seconds(5)),
            ..Default::default()
        })
        .await
        .len(),
        4
    );
    // Paging both ways.
    let page1 = store
        .query_audit(&AuditQuery {
            limit: 3,
            ..Default::default()
        })
        .await
        .expect("page");
    assert_eq!(page1.len(), 3);
    let page2 = all(AuditQuery {
        after: Some(page1[2].seq),
        ..Default::default()
    })
    .await;
    assert_eq!(page2.len(), 1);
    let newest = store
        .query_audit(&AuditQuery {
            limit: 2,
            descending: true,
            ..Default::default()
        })
        .await
        .expect("page");
    assert_eq!(newest[0].seq, page2[0].seq);
    let older = all(AuditQuery {
        before: Some(newest[1].seq),
        descending: true,
        ..Default::default()
    })
    .await;
    assert_eq!(older.len(), 2);

    // Cursors only move forwards; retention keeps what a sink has not delivered.
    assert_eq!(store.audit_cursor("kafka").await.expect("cursor"), 0);
    store
        .set_audit_cursor("kafka", page1[1].seq)
        .await
        .expect("set");
    store
        .set_audit_cursor("kafka", page1[0].seq)
        .await
        .expect("set");
    assert_eq!(
        store.audit_cursor("kafka").await.expect("cursor"),
        page1[1].seq
    );
    let later = Utc::now() + chrono::Duration::seconds(1);
    let pruned = store
        .prune_audit(later, &["kafka".into(), "file".into()])
        .await
        .expect("prune");
    assert_eq!(pruned, 0, "the file sink has delivered nothing");
    let pruned = store
        .prune_audit(later, &["kafka".into()])
        .await
        .expect("prune");
    assert_eq!(pruned, 2, "only what the Kafka sink has");
    assert_eq!(all(AuditQuery::default()).await.len(), 2);
    let pruned = store
        .prune_audit(now - chrono::Duration::days(1), &[])
        .await
        .expect("prune");
    assert_eq!(pruned, 0, "nothing is old enough");
    assert_eq!(store.prune_audit(later, &[]).await.expect("prune"), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_audit_log() {
    audit_story(&pg("audit").await).await;
}

#[tokio::test]
async fn sqlite_audit_log() {
    audit_story(&SqlStore::sqlite_in_memory().expect("open")).await;
    let dir = tempfile::tempdir().expect("tempdir");
    audit_story(&SqlStore::open_sqlite(&dir.path().join("a.db")).expect("open")).await;
}

/// Passwords and console sessions: a new password ends the user's sessions; deleting
/// the user removes both; expired sessions are not returned.
async fn console_story(store: &dyn Store) {
    use keygate_store::ConsoleSession;
    let now = Utc::now();
    let u = account("u-console1", AccountKind::User, "Con Sole");
    store.create_account(u.clone(), &ev()).await.expect("user");
    let sa = account("sa-console1", AccountKind::ServiceAccount, "robot");
    store.create_account(sa, &ev()).await.expect("sa");
    assert_eq!(
        store
            .find_user_by_email("U-CONSOLE1@x.io ")
            .await
            .expect("find")
            .map(|a| a.id),
        Some("u-console1".to_owned())
    );
    assert!(store
        .find_user_by_email("nobody@x.io")
        .await
        .expect("find")
        .is_none());
    assert!(store
        .password_hash("u-console1")
        .await
        .expect("hash")
        .is_none());
    assert!(matches!(
        store
            .set_password("sa-console1", "$argon2id$x".into(), &ev())
            .await,
        Err(StoreError::NotFound(..))
    ));
    let session = |id: u8, ttl: i64| ConsoleSession {
        id_hash: [id; 32],
        user_id: "u-console1".into(),
        csrf: format!("csrf-{id}"),
        created_at: now,
        expires_at: now + chrono::Duration::seconds(ttl),
    };
    store
        .create_session(session(1, 3600))
        .await
        .expect("session");
    store
        .create_session(session(2, -1))
        .await
        .expect("expired session");
    assert_eq!(
        store
            .get_session([1; 32], now)
            .await
            .expect("get")
            .map(|s| s.csrf),
        Some("csrf-1".to_owned())
    );
    assert!(
        store
            .get_session([2; 32], now)
            .await
            .expect("get")
            .is_none(),
        "expired"
    );
    store
        .set_password("u-console1", "$argon2id$v1".into(), &ev())
        .await
        .expect("set");
    assert_eq!(
        store
            .password_hash("u-console1")
            .await
            .expect("hash")
            .as_deref(),
        Some("$argon2id$v1")
    );
    assert!(
        store
            .get_session([1; 32], now)
            .await
            .expect("get")
            .is_none(),
        "a new password ends sessions"
    );
    store
        .create_session(session(3, 3600))
        .await
        .expect("session");
    store.delete_session([3; 32], now).await.expect("sign out");
    assert!(store
        .get_session([3; 32], now)
        .await
        .expect("get")
        .is_none());
    store
        .create_session(session(4, 3600))
        .await
        .expect("session");
    store
        .delete_account("u-console1", &ev())
        .await
        .expect("delete user");
    assert!(store
        .get_session([4; 32], now)
        .await
        .expect("get")
        .is_none());
    assert!(store
        .password_hash("u-console1")
        .await
        .expect("hash")
        .is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_console_sign_in() {
    console_story(&pg("console").await).await;
}

#[tokio::test]
async fn sqlite_console_sign_in() {
    console_story(&SqlStore::sqlite_in_memory().expect("open")).await;
}

/// Export and import: everything the stories leave behind moves to an empty database
/// unchanged (ids, slots, hashes, times); a second import is refused.
#[tokio::test]
async fn sqlite_import_reproduces_an_exported_state() {
    let a = SqlStore::sqlite_in_memory().expect("open");
    let b = SqlStore::sqlite_in_memory().expect("open");
    import_story(&a, &b).await;
}

/// SQLite to PostgreSQL: what `keygate migrate` does.
#[tokio::test(flavor = "multi_thread")]
async fn sqlite_state_imports_into_postgres() {
    let a = SqlStore::sqlite_in_memory().expect("open");
    import_story(&a, &pg("import").await).await;
}

async fn import_story(a: &dyn Store, b: &dyn Store) {
    story(a).await;
    oauth_story(a).await;
    a.set_password(
        "u-admin",
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        &ev(),
    )
    .await
    .expect("password");
    // Something of every kind the stories may have cleaned up.
    let now = Utc::now();
    a.create_account(
        account("sa-export", AccountKind::ServiceAccount, "exported"),
        &ev(),
    )
    .await
    .expect("sa");
    a.create_api_key(
        key("EXPORTEXPORTEXPO", "sa-export", KeyScope::Cloud),
        10,
        &ev(),
    )
    .await
    .expect("key");
    a.create_environment(
        Environment {
            id: "env-export".into(),
            display_name: "exported".into(),
            created_at: now,
            updated_at: now,
        },
        &ev(),
    )
    .await
    .expect("env");
    a.create_resource(
        Resource {
            id: "lkc-export".into(),
            kind: ResourceKind::Kafka,
            environment_id: "env-export".into(),
            display_name: "main".into(),
            upstream: "127.0.0.1:9092".into(),
            created_at: now,
            updated_at: now,
            gateway_slot: None,
            upstream_security: Default::default(),
            ksql: None,
        },
        &ev(),
    )
    .await
    .expect("cluster");
    a.create_acls(
        "lkc-export",
        vec![Acl {
            id: "acl-export".into(),
            cluster_id: "lkc-export".into(),
            binding: acl("User:sa-export", "orders", Operation::Write),
            created_at: now,
        }],
        &ev(),
    )
    .await
    .expect("acl");
    let state = a.load_all().await.expect("load");
    assert!(state.organization.is_some() && !state.api_keys.is_empty());
    assert!(
        state.resources.iter().any(|r| r.gateway_slot.is_some()),
        "a cluster with its gateway slot"
    );
    let passwords = a.password_hashes().await.expect("hashes");
    assert_eq!(passwords.len(), 1);

    b.import(state.clone(), passwords.clone(), &ev())
        .await
        .expect("import");
    let got = b.load_all().await.expect("load");
    let dbg = |s: &keygate_store::FullState| {
        format!(
            "{:?}{:?}{:?}{:?}{:?}{:?}{:?}{:?}{:?}{:?}",
            s.organization,
            s.environments,
            s.resources,
            s.accounts,
            s.api_keys,
            s.role_bindings,
            s.acls,
            s.identity_providers,
            s.identity_pools,
            s.signing_keys
        )
    };
    assert_eq!(dbg(&got), dbg(&state), "the same state");
    assert!(got.seq > 0, "followers see the imported state as changes");
    assert_eq!(b.password_hashes().await.expect("hashes"), passwords);
    assert!(matches!(
        b.import(state, passwords, &ev()).await,
        Err(StoreError::Conflict(_))
    ));
}

// ---- PostgreSQL: several instances over one database --------------------------------

/// Two instances start together on an empty database: the schema is created once and
/// both work; a database with a newer schema than this binary is refused.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_migrations_run_once_and_refuse_a_newer_schema() {
    let url = keygate_testkit::PgServer::fresh_database("migrate");
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { SqlStore::connect_postgres(&url).await })
        })
        .collect();
    for s in starts {
        s.await.expect("task").expect("concurrent start");
    }
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("raw");
    tokio::spawn(conn);
    let rows = client
        .query("SELECT version FROM keygate_schema", &[])
        .await
        .expect("version");
    assert_eq!(rows.len(), 1, "one version row");
    client
        .execute("UPDATE keygate_schema SET version = 99", &[])
        .await
        .expect("bump");
    assert!(matches!(
        SqlStore::connect_postgres(&url).await,
        Err(StoreError::SchemaTooNew { found: 99, .. })
    ));
    assert!(matches!(
        SqlStore::connect_postgres("postgres://keygate@127.0.0.1:1/nothing").await,
        Err(StoreError::Unavailable(_))
    ));
}

/// A change made through one instance reaches the other's subscribers by NOTIFY and
/// is read back by sequence number; integrity rules hold across instances.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_instances_share_changes_and_rules() {
    let url = keygate_testkit::PgServer::fresh_database("instances");
    let a = std::sync::Arc::new(SqlStore::connect_postgres(&url).await.expect("a"));
    let b = std::sync::Arc::new(SqlStore::connect_postgres(&url).await.expect("b"));
    let mut rx = b.subscribe();
    let seen = *rx.borrow_and_update();
    a.create_account(
        account("sa-shared", AccountKind::ServiceAccount, "shared"),
        &ev(),
    )
    .await
    .expect("sa");
    tokio::time::timeout(std::time::Duration::from_secs(2), rx.changed())
        .await
        .expect("B notified within 2 s")
        .expect("watch");
    let changes = b.changes_since(seen, 100).await.expect("changes");
    assert!(changes
        .iter()
        .any(|c| c.entity == Entity::Account && c.entity_id == "sa-shared"));

    // Key quota: 20 concurrent creations through both instances, at most 5 per owner.
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                let id = format!("QUOTA{i:011}");
                store
                    .create_api_key(key(&id, "sa-shared", KeyScope::Cloud), 5, &ev())
                    .await
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(()) => ok += 1,
            Err(StoreError::QuotaExceeded(5)) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(ok, 5, "exactly the quota, whatever the instance");

    // Sequence order is commit order: concurrent writers on both instances, and every
    // follower that read `seq > n` after each commit saw a gap-free prefix.
    let before = a.changes_since(0, 100_000).await.expect("all").len();
    let writers: Vec<_> = (0..40)
        .map(|i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                store
                    .create_account(
                        account(
                            &format!("sa-w{i}"),
                            AccountKind::ServiceAccount,
                            &format!("w{i}"),
                        ),
                        &ev(),
                    )
                    .await
            })
        })
        .collect();
    let follower = {
        let b = b.clone();
        tokio::spawn(async move {
            let mut cursor = 0;
            let mut got = Vec::new();
            for _ in 0..400 {
                for c in b.changes_since(cursor, 1000).await.expect("read") {
                    cursor = c.seq;
                    got.push(c.seq);
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            got
        })
    };
    for w in writers {
        w.await.expect("task").expect("write");
    }
    let followed = follower.await.expect("follower");
    let all: Vec<i64> = a
        .changes_since(0, 100_000)
        .await
        .expect("all")
        .iter()
        .map(|c| c.seq)
        .collect();
    assert_eq!(all.len(), before + 40);
    assert_eq!(followed, all, "the follower saw every change, in order");
}

/// `sslmode=require`: TLS with the server's certificate verified against `sslrootcert`
/// (or the system's roots); an unverifiable certificate is refused, never downgraded.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_tls_verifies_the_server_certificate() {
    let server = keygate_testkit::PgServer::start(false);
    let ca = server.enable_tls();
    let url = server.create_database("tls");
    let tls_url = format!("{url}?sslmode=require&sslrootcert={}", ca.display());
    let store = SqlStore::connect_postgres(&tls_url)
        .await
        .expect("TLS connect");
    story(&store).await;
    // Really encrypted: this server accepts TCP clients over TLS only (`hostssl`), so
    // the story above ran over TLS, and a plaintext connection is turned away.
    assert!(
        SqlStore::connect_postgres(&url).await.is_err(),
        "the server refuses plaintext"
    );
    // A certificate no trusted root vouches for is refused, with a clear error.
    let other = tempfile::tempdir().expect("tempdir");
    let stranger = keygate_testkit::PgServer::start(false);
    let untrusted = stranger.enable_tls();
    std::fs::copy(&untrusted, other.path().join("ca.crt")).expect("copy");
    let wrong = format!(
        "{url}?sslmode=require&sslrootcert={}",
        other.path().join("ca.crt").display()
    );
    match SqlStore::connect_postgres(&wrong).await {
        Err(StoreError::Unavailable(m)) | Err(StoreError::Database(m)) => {
            assert!(
                m.to_lowercase().contains("certificate") || m.contains("tls") || m.contains("TLS"),
                "{m}"
            )
        }
        other => panic!("an untrusted certificate must be refused: {other:?}"),
    }
}
