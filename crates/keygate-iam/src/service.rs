//! The [`Iam`] service.

use crate::hasher::SecretHasher;
use crate::snapshot::{Follower, KeyRejection, ScopeCheck, Snapshot};
use crate::{IamError, Result};
use chrono::Utc;
use keygate_audit::{types, AuthorizationInfo, CloudEvent};
use keygate_authz::{Authorizer, Capability};
use keygate_core::acl::CLUSTER_RESOURCE_NAME;
use keygate_core::crn::CrnPattern;
use keygate_core::id::is_flink_region;
use keygate_core::model::{
    Account, AccountKind, Acl, ApiKey, Environment, KeyScope, KsqlLinks, Organization, Resource,
    RoleBinding, Timestamp,
};
use keygate_core::role::Scope;
use keygate_core::{
    AclBinding, IdKind, KeyId, Operation, Principal, ResourceKind, ResourceType, Role, Secret,
};
use keygate_store::{AclFilter, BindingFilter, Bootstrap, KeyFilter, Patch, Store, StoreError};
use rand::rngs::OsRng;
use std::net::IpAddr;
use std::sync::Arc;

/// Settings of the IAM service.
#[derive(Debug, Clone)]
pub struct IamConfig {
    /// Maximum API keys per owner (402 beyond).
    pub max_keys_per_owner: u32,
    /// External OAuth and STS.
    pub oauth: crate::oauth::OAuthConfig,
    /// How long the snapshot may go without reaching the database before new
    /// authentications are refused.
    pub max_staleness: std::time::Duration,
    /// Failed-authentication penalties per source address (and per account for
    /// console sign-in), shared by every front door.
    pub auth_throttle: crate::ThrottleConfig,
    /// Concurrent argon2id hashes, and how long a sign-in waits for its turn.
    pub password_concurrency: usize,
    /// See `password_concurrency`.
    pub password_wait: std::time::Duration,
}

impl Default for IamConfig {
    fn default() -> Self {
        IamConfig {
            max_keys_per_owner: 10,
            oauth: Default::default(),
            max_staleness: crate::snapshot::DEFAULT_MAX_STALENESS,
            auth_throttle: crate::ThrottleConfig::default(),
            password_concurrency: std::thread::available_parallelism().map_or(2, usize::from),
            password_wait: std::time::Duration::from_secs(2),
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// `User:<account id>`.
    pub principal: Principal,
    /// The account.
    pub account_id: String,
    /// The key used, if any.
    pub key_id: Option<KeyId>,
    /// How it authenticated: `HTTP_BASIC`, `HTTP_BEARER`, `SASL_PLAIN`,
    /// `SASL_OAUTHBEARER` (for audit records).
    pub mechanism: &'static str,
    /// The peer's address, when known (for audit records).
    pub client_address: Option<String>,
    /// What the front door calls the request (`POST /org/v2/environments`,
    /// `kafka.CreateAcls`), for the record of a refusal.
    pub request: Option<String>,
}

impl Caller {
    /// The credential's identifier for audit records: the key id, or the identity
    /// pool of a token. Never a secret or token.
    pub fn identifier(&self) -> String {
        match &self.key_id {
            Some(k) => k.to_string(),
            None => self.account_id.clone(),
        }
    }
}

/// A new resource registration.
#[derive(Debug, Clone)]
pub struct NewResource {
    /// Kind.
    pub kind: ResourceKind,
    /// Environment.
    pub environment_id: String,
    /// Display name.
    pub display_name: String,
    /// Upstream (`host:port,…` for Kafka; a URL otherwise).
    pub upstream: String,
    /// Flink only: the region (`aws.us-east-1`).
    pub region: Option<String>,
    /// Kafka only: how the gateway connects and authenticates to the brokers.
    pub upstream_security: crate::UpstreamInput,
    /// ksqlDB only (required there): what it runs on.
    pub ksql: KsqlInput,
}

/// A ksqlDB cluster's links as given: its Kafka cluster (same environment) and the
/// account whose credential it uses are required; CSUs default to 1.
#[derive(Debug, Clone, Default)]
pub struct KsqlInput {
    /// `lkc-…`.
    pub kafka_cluster: Option<String>,
    /// `u-…` or `sa-…`.
    pub credential_identity: Option<String>,
    /// 1–1024.
    pub csu: Option<i64>,
}

/// Changes to a resource; `None` (or an empty input) leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct ResourceChanges {
    /// New display name.
    pub display_name: Option<String>,
    /// New upstream.
    pub upstream: Option<String>,
    /// Kafka: changed upstream connection settings.
    pub upstream_security: crate::UpstreamInput,
}

/// A new API key.
#[derive(Debug, Clone, Default)]
pub struct NewApiKey {
    /// Display name (optional).
    pub display_name: String,
    /// Description (optional).
    pub description: String,
    /// Owner; the caller when `None`.
    pub owner_id: Option<String>,
    /// `CLOUD`, `TABLEFLOW`, a cluster id or a Flink region.
    pub resource_id: String,
    /// Environment (required for Flink and Tableflow).
    pub environment_id: Option<String>,
    /// Optional expiry.
    pub expires_at: Option<Timestamp>,
}

/// The control-plane service.
pub struct Iam {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) follower: Arc<Follower>,
    pub(crate) cfg: IamConfig,
    /// When each provider's JWKS was last refreshed because of an unknown key id.
    pub(crate) unknown_key_refreshes:
        std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
    pub(crate) passwords: crate::PasswordWork,
    /// Failed authentications per front door and source address.
    pub(crate) sources: crate::Throttle<(Door, std::net::IpAddr)>,
    /// Failed console sign-ins per account and source address.
    pub(crate) accounts: crate::Throttle<(String, std::net::IpAddr)>,
    /// Seals the secrets keygate must read back (upstream credentials).
    pub(crate) sealer: crate::seal::Sealer,
    /// Each cluster's upstream health, as the gateway reports it.
    pub(crate) health: crate::upstream::Health,
    /// Where refusals are recorded (attached once the audit pipeline runs).
    pub(crate) auditor: std::sync::OnceLock<keygate_audit::Auditor>,
}

/// A front door, for per-source throttling (a source failing at one door is not
/// slowed at another).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Door {
    /// The console's sign-in form.
    Console,
    /// The REST API (HTTP Basic, Bearer).
    Rest,
    /// The Kafka gateway (SASL).
    Kafka,
    /// The HTTP gateway (Basic, Bearer, catalog tokens).
    Http,
}

impl std::fmt::Debug for Iam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iam")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

const MAX_NAME: usize = 64;
const MAX_DESCRIPTION: usize = 1024;

pub(crate) fn check_name(pointer: &str, s: &str) -> Result<String> {
    let t = s.trim();
    if t.is_empty() {
        return Err(IamError::invalid(pointer, "must not be empty"));
    }
    if t.chars().count() > MAX_NAME {
        return Err(IamError::invalid(
            pointer,
            format!("must be at most {MAX_NAME} characters"),
        ));
    }
    if t.chars().any(char::is_control) {
        return Err(IamError::invalid(
            pointer,
            "must not contain control characters",
        ));
    }
    Ok(t.to_owned())
}

pub(crate) fn check_description(pointer: &str, s: &str) -> Result<String> {
    if s.chars().count() > MAX_DESCRIPTION {
        return Err(IamError::invalid(
            pointer,
            format!("must be at most {MAX_DESCRIPTION} characters"),
        ));
    }
    Ok(s.to_owned())
}

fn check_upstream(kind: ResourceKind, s: &str) -> Result<String> {
    let pointer = "/spec/upstream";
    let s = s.trim();
    match kind {
        ResourceKind::Kafka => {
            if s.is_empty() {
                return Err(IamError::invalid(
                    pointer,
                    "must list at least one broker as host:port",
                ));
            }
            for part in s.split(',') {
                let part = part.trim();
                let ok = part.rsplit_once(':').is_some_and(|(h, p)| {
                    !h.is_empty()
                        && !h.contains(char::is_whitespace)
                        && p.parse::<u16>().is_ok_and(|p| p > 0)
                });
                if !ok {
                    return Err(IamError::invalid(
                        pointer,
                        format!("`{part}` is not host:port"),
                    ));
                }
            }
            Ok(s.split(',').map(str::trim).collect::<Vec<_>>().join(","))
        }
        _ => {
            let rest = s
                .strip_prefix("http://")
                .or_else(|| s.strip_prefix("https://"));
            if rest.is_none_or(|r| r.is_empty() || r.contains(char::is_whitespace)) {
                return Err(IamError::invalid(
                    pointer,
                    "must be an http:// or https:// URL",
                ));
            }
            Ok(s.to_owned())
        }
    }
}

/// A new CLOUD key for `owner` (bootstrap and recovery), with its secret.
fn cloud_key(
    owner: &Account,
    hasher: &SecretHasher,
    name: &str,
    description: String,
    now: Timestamp,
) -> (ApiKey, Secret) {
    let secret = Secret::generate(&mut OsRng);
    let key = ApiKey {
        id: KeyId::generate(&mut OsRng),
        display_name: name.into(),
        description,
        owner_id: owner.id.clone(),
        owner_kind: owner.kind,
        scope: KeyScope::Cloud,
        secret_hash: hasher.hash(secret.expose()),
        disabled: false,
        expires_at: None,
        last_used_at: None,
        created_at: now,
        updated_at: now,
    };
    (key, secret)
}

pub(crate) fn forbidden(what: impl std::fmt::Display) -> IamError {
    IamError::Forbidden(format!("the caller is not allowed to {what}"))
}

/// Retry `f` with a fresh id while the store reports an id collision.
pub(crate) async fn with_fresh_id<T, F, Fut>(mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, StoreError>>,
{
    for _ in 0..8 {
        match f().await {
            Err(StoreError::IdCollision) => continue,
            other => return other.map_err(IamError::from),
        }
    }
    Err(IamError::Internal("could not generate a unique id".into()))
}

impl Iam {
    /// Create the organization, its first admin user, the OrganizationAdmin binding
    /// and a CLOUD key — unless already done. Returns the key and its secret when it
    /// created them (the only time the secret exists in the clear).
    pub async fn bootstrap(
        store: &dyn Store,
        hasher: &SecretHasher,
        org_name: &str,
        admin_email: &str,
        crn_authority: &str,
    ) -> Result<Option<(KeyId, Secret, Account)>> {
        let now = Utc::now();
        let org = Organization {
            id: IdKind::Organization.generate(&mut OsRng),
            display_name: org_name.to_owned(),
            crn_authority: crn_authority.to_owned(),
            created_at: now,
        };
        let admin = Account {
            id: IdKind::User.generate(&mut OsRng),
            kind: AccountKind::User,
            display_name: "Administrator".into(),
            description: String::new(),
            email: admin_email.to_owned(),
            auth_type: "AUTH_TYPE_LOCAL".into(),
            created_at: now,
            updated_at: now,
        };
        let binding = RoleBinding {
            id: IdKind::RoleBinding.generate(&mut OsRng),
            principal: admin.principal(),
            role: Role::OrganizationAdmin,
            crn_pattern: org.crn(),
            created_at: now,
        };
        let (key, secret) = cloud_key(
            &admin,
            hasher,
            "bootstrap admin key",
            "Created at first start".into(),
            now,
        );
        let key_id = key.id;
        let org_crn = org.crn().to_string();
        let record = CloudEvent::new(
            types::IAM_REQUEST,
            org_crn.clone(),
            "keygate.iam",
            "BootstrapOrganization",
            org_crn,
            now,
        )
        .who(Some("System:keygate".into()), None, None)
        .result(
            keygate_audit::status::SUCCESS,
            Some(format!(
                "created the organization, user {} (OrganizationAdmin) and CLOUD key {}",
                admin.id, key.id
            )),
        );
        let created = store
            .bootstrap(
                Bootstrap {
                    organization: org,
                    admin: admin.clone(),
                    binding,
                    key,
                },
                &record,
            )
            .await?;
        Ok(created.then_some((key_id, secret, admin)))
    }

    /// Break-glass recovery for an operator with the database and the pepper: a new
    /// CLOUD key for an OrganizationAdmin account (`owner`, or the first one found),
    /// outside every front door and quota. Recorded in the audit log as
    /// `RecoverAdminAccess` by `System:keygate-recover`. Returns the key, its secret
    /// (the only time it exists in the clear) and the owner.
    pub async fn recover_admin(
        store: &dyn Store,
        hasher: &SecretHasher,
        owner: Option<&str>,
    ) -> Result<(KeyId, Secret, Account)> {
        let state = store.load_all().await?;
        let org = state.organization.ok_or_else(|| {
            IamError::Internal(
                "this database has no organization: start keygate server once".into(),
            )
        })?;
        let admins: Vec<&str> = state
            .role_bindings
            .iter()
            .filter(|b| b.role == Role::OrganizationAdmin)
            .map(|b| b.principal.name())
            .collect();
        let account = state
            .accounts
            .iter()
            .filter(|a| admins.contains(&a.id.as_str()))
            .find(|a| owner.is_none_or(|o| o == a.id))
            .cloned()
            .ok_or_else(|| match owner {
                Some(o) => IamError::invalid(
                    "--owner",
                    format!("`{o}` is not an OrganizationAdmin account"),
                ),
                None => IamError::Internal("no OrganizationAdmin account exists".into()),
            })?;
        let now = Utc::now();
        let (key, secret) = cloud_key(
            &account,
            hasher,
            "recovery admin key",
            format!("Issued by keygate admin recover at {}", now.to_rfc3339()),
            now,
        );
        let org_crn = org.crn().to_string();
        let record = CloudEvent::new(
            types::IAM_REQUEST,
            org_crn.clone(),
            "keygate.iam",
            "RecoverAdminAccess",
            format!("{org_crn}/api-key={}", key.id),
            now,
        )
        .who(
            Some("System:keygate-recover".into()),
            Some("LOCAL_DATABASE"),
            None,
        )
        .result(
            keygate_audit::status::SUCCESS,
            Some(format!(
                "break-glass CLOUD key {} issued for {} (OrganizationAdmin)",
                key.id, account.id
            )),
        );
        let id = key.id;
        store.create_api_key(key, u32::MAX, &record).await?;
        Ok((id, secret, account))
    }

    /// Load the state and build the snapshot. The organization must exist.
    pub async fn open(store: Arc<dyn Store>, hasher: SecretHasher, cfg: IamConfig) -> Result<Self> {
        let state = store.load_all().await?;
        let org = state.organization.clone().ok_or_else(|| {
            IamError::Internal("the organization has not been bootstrapped".into())
        })?;
        let sealer = crate::seal::Sealer::new(&hasher);
        let (snapshot, fs) = Snapshot::build_with(&state, org, hasher, cfg.oauth.settings.clone());
        snapshot.set_max_staleness(cfg.max_staleness);
        let follower = Arc::new(Follower::new(store.clone(), Arc::new(snapshot), fs));
        Ok(Iam {
            store,
            follower,
            passwords: crate::PasswordWork::new(cfg.password_concurrency, cfg.password_wait),
            sources: crate::Throttle::new(cfg.auth_throttle),
            // A person mistypes a few times; a guesser of one account gets slowed after 5.
            accounts: crate::Throttle::new(crate::ThrottleConfig {
                free_failures: cfg.auth_throttle.free_failures.min(5),
                ..cfg.auth_throttle
            }),
            cfg,
            unknown_key_refreshes: Default::default(),
            sealer,
            health: Default::default(),
            auditor: std::sync::OnceLock::new(),
        })
    }

    /// The snapshot.
    pub fn snapshot(&self) -> &Arc<Snapshot> {
        self.follower.snapshot()
    }

    /// The follower (spawn [`Follower::run`]).
    pub fn follower(&self) -> &Arc<Follower> {
        &self.follower
    }

    /// The store (for the binary's wiring; front doors go through the service).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The organization.
    pub fn org(&self) -> Arc<Organization> {
        self.snapshot().org()
    }

    pub(crate) fn org_crn(&self) -> CrnPattern {
        self.org().crn()
    }

    pub(crate) fn authz(&self) -> arc_swap::Guard<Arc<Authorizer>> {
        self.snapshot().authz()
    }

    /// Make the snapshot reflect this process's own writes before answering.
    pub(crate) async fn settle(&self) {
        if let Err(e) = self.follower.catch_up().await {
            tracing::warn!(error = %e, "snapshot catch-up after write failed; the follower will retry");
        }
    }

    /// Authenticate a key for a REST call: a CLOUD key, or — on the Kafka REST paths
    /// of one cluster (`/kafka/v3/clusters/{id}/…`), where the hosted API and its
    /// Terraform provider use that cluster's own key — a key for `cluster`.
    pub fn authenticate_rest(
        &self,
        key_id: &str,
        secret: &Secret,
        cluster: Option<&str>,
    ) -> std::result::Result<Caller, KeyRejection> {
        let scope = match cluster {
            Some(cluster) => ScopeCheck::CloudOr(ResourceKind::Kafka, cluster),
            None => ScopeCheck::Cloud,
        };
        let entry = self.snapshot().verify(key_id, secret, scope, Utc::now())?;
        Ok(Caller {
            principal: Principal::user(entry.owner_id.to_string()),
            account_id: entry.owner_id.to_string(),
            key_id: Some(entry.id),
            mechanism: "HTTP_BASIC",
            client_address: None,
            request: None,
        })
    }

    pub(crate) fn require(
        &self,
        c: &Caller,
        cap: Capability,
        target: &CrnPattern,
        what: &str,
    ) -> Result<()> {
        if self.authz().can(&c.principal, cap, target) {
            Ok(())
        } else {
            Err(self.deny(c, what, Some(target)))
        }
    }

    /// `c` may act on `target` (a user, service account or pool id) only when it holds
    /// at least what the target holds — within `within` when the act reaches only
    /// that scope (a resource key). See `keygate_authz::rank`.
    pub(crate) fn require_outranks(
        &self,
        c: &Caller,
        target: &str,
        within: Option<&CrnPattern>,
        what: &str,
    ) -> Result<()> {
        if self
            .authz()
            .holds_at_least(&c.principal, &Principal::user(target), within)
        {
            Ok(())
        } else {
            Err(self.deny(
                c,
                format!("{what}: `{target}` holds permissions the caller does not"),
                within,
            ))
        }
    }

    /// Refuse `c` the act `what` (on `target`, when there is one): the error, and its
    /// audit record — the one place a refusal is recorded, whichever front door asked.
    pub(crate) fn deny(
        &self,
        c: &Caller,
        what: impl std::fmt::Display,
        target: Option<&CrnPattern>,
    ) -> IamError {
        let err = forbidden(what);
        if let Some(a) = self.auditor.get().filter(|a| a.enabled()) {
            let org = self.org_crn().to_string();
            let resource = target.map_or_else(|| org.clone(), |t| t.to_string());
            let method = c.request.clone().unwrap_or_else(|| "iam.Request".into());
            let operation = method.split(' ').next().unwrap_or_default().to_owned();
            let message = match &err {
                IamError::Forbidden(m) => Some(m.clone()),
                _ => None,
            };
            a.record(
                CloudEvent::new(
                    types::IAM_REQUEST,
                    org,
                    "keygate.iam",
                    method,
                    resource.clone(),
                    Utc::now(),
                )
                .who(
                    Some(c.principal.to_string()),
                    Some(c.mechanism),
                    Some(c.identifier()),
                )
                .client_address(c.client_address.clone())
                .authorization(AuthorizationInfo {
                    granted: false,
                    operation,
                    resource_type: "Resource".into(),
                    resource_name: resource,
                    ..Default::default()
                })
                .result(keygate_audit::status::UNAUTHORIZED, message),
            );
        }
        err
    }

    /// Record refusals into `auditor` from now on (the audit pipeline starts after the
    /// IAM service).
    pub fn attach_auditor(&self, auditor: keygate_audit::Auditor) {
        let _ = self.auditor.set(auditor);
    }

    /// Whether `c` holds `cap` on `target`; a refusal is recorded like every other.
    pub fn check(
        &self,
        c: &Caller,
        cap: Capability,
        target: &CrnPattern,
        what: &str,
    ) -> Result<()> {
        self.require(c, cap, target, what)
    }

    /// The audit record of a change `c` makes: `method` (`CreateAPIKey`, …) on
    /// `resource` (its CRN) of `resource_type`. Written by the store in the change's
    /// own transaction.
    pub(crate) fn change(
        &self,
        c: &Caller,
        method: &str,
        resource_type: &str,
        resource: impl Into<String>,
    ) -> CloudEvent {
        self.change_by(Some(c), method, resource_type, resource)
    }

    /// A change's record; `None` for changes keygate makes itself (key rotation,
    /// JWKS refresh), whose principal is `System:keygate`.
    pub(crate) fn change_by(
        &self,
        c: Option<&Caller>,
        method: &str,
        resource_type: &str,
        resource: impl Into<String>,
    ) -> CloudEvent {
        let resource = resource.into();
        let operation = [
            "Create",
            "Update",
            "Delete",
            "Disable",
            "Enable",
            "Rotate",
            "Refresh",
            "Retire",
            "Bootstrap",
        ]
        .into_iter()
        .find(|v| method.starts_with(v))
        .map(|v| match v {
            "Create" | "Bootstrap" => "CREATE",
            "Delete" | "Retire" => "DELETE",
            _ => "ALTER",
        })
        .unwrap_or("ALTER");
        let org = self.org_crn().to_string();
        let e = CloudEvent::new(
            types::IAM_REQUEST,
            org,
            "keygate.iam",
            method,
            resource.clone(),
            Utc::now(),
        );
        let e = match c {
            Some(c) => e
                .who(
                    Some(c.principal.to_string()),
                    Some(c.mechanism),
                    Some(c.identifier()),
                )
                .client_address(c.client_address.clone()),
            None => e.who(Some("System:keygate".into()), None, None),
        };
        e.authorization(AuthorizationInfo {
            granted: true,
            operation: operation.into(),
            resource_type: resource_type.into(),
            resource_name: resource,
            super_user_authorization: c
                .map(|c| self.authz().is_super_user(&c.principal))
                .filter(|s| *s),
            ..Default::default()
        })
    }

    // ---- environments ------------------------------------------------------------

    /// Create an environment (OrganizationAdmin).
    pub async fn create_environment(&self, c: &Caller, display_name: &str) -> Result<Environment> {
        let name = check_name("/display_name", display_name)?;
        self.require(
            c,
            Capability::ManageEnvironment,
            &self.org_crn(),
            "create environments",
        )?;
        let now = Utc::now();
        let env = with_fresh_id(|| {
            let e = Environment {
                id: IdKind::Environment.generate(&mut OsRng),
                display_name: name.clone(),
                created_at: now,
                updated_at: now,
            };
            let store = self.store.clone();
            let rec = self.change(
                c,
                "CreateEnvironment",
                "Environment",
                self.org_crn().child("environment", &e.id).to_string(),
            );
            async move { store.create_environment(e.clone(), &rec).await.map(|_| e) }
        })
        .await?;
        self.settle().await;
        Ok(env)
    }

    /// Every environment (any member of the organization).
    pub async fn list_environments(&self, _c: &Caller) -> Result<Vec<Environment>> {
        Ok(self.store.list_environments().await?)
    }

    /// One environment.
    pub async fn get_environment(&self, _c: &Caller, id: &str) -> Result<Environment> {
        Ok(self.store.get_environment(id).await?)
    }

    /// Rename (OrganizationAdmin or EnvironmentAdmin of it).
    pub async fn update_environment(
        &self,
        c: &Caller,
        id: &str,
        display_name: Option<&str>,
    ) -> Result<Environment> {
        let name = display_name
            .map(|n| check_name("/display_name", n))
            .transpose()?;
        self.store.get_environment(id).await?;
        self.require(
            c,
            Capability::ManageEnvironment,
            &self.org_crn().child("environment", id),
            "update this environment",
        )?;
        let e = self
            .store
            .update_environment(
                id,
                Patch {
                    display_name: name,
                    ..Patch::default()
                },
                Utc::now(),
                &self.change(
                    c,
                    "UpdateEnvironment",
                    "Environment",
                    self.org_crn().child("environment", id).to_string(),
                ),
            )
            .await?;
        self.settle().await;
        Ok(e)
    }

    /// Rename the organization (OrganizationAdmin). `id` must be its id.
    pub async fn rename_organization(
        &self,
        c: &Caller,
        id: &str,
        display_name: Option<&str>,
    ) -> Result<Organization> {
        if id != self.org().id {
            return Err(IamError::NotFound("organization", id.to_owned()));
        }
        let org = self.org_crn();
        self.require(
            c,
            Capability::ManageEnvironment,
            &org,
            "rename the organization",
        )?;
        let Some(name) = display_name else {
            return Ok(Organization::clone(&self.org()));
        };
        let name = check_name("/display_name", name)?;
        let o = self
            .store
            .rename_organization(
                &name,
                &self.change(c, "UpdateOrganization", "Organization", org.to_string()),
            )
            .await?;
        self.settle().await;
        Ok(o)
    }

    /// Delete an empty environment (OrganizationAdmin).
    pub async fn delete_environment(&self, c: &Caller, id: &str) -> Result<()> {
        self.store.get_environment(id).await?;
        self.require(
            c,
            Capability::ManageEnvironment,
            &self.org_crn(),
            "delete environments",
        )?;
        let crn = self.org_crn().child("environment", id).to_string();
        let rec = self.change(c, "DeleteEnvironment", "Environment", crn.clone());
        self.store.delete_environment(id, &crn, &rec).await?;
        self.settle().await;
        Ok(())
    }

    // ---- resources -----------------------------------------------------------------

    /// Register a resource in an environment (EnvironmentAdmin or above).
    pub async fn create_resource(&self, c: &Caller, n: NewResource) -> Result<Resource> {
        let name = check_name("/spec/display_name", &n.display_name)?;
        let upstream = check_upstream(n.kind, &n.upstream)?;
        if n.environment_id.is_empty() {
            return Err(IamError::invalid("/spec/environment/id", "is required"));
        }
        match self.store.get_environment(&n.environment_id).await {
            Err(StoreError::NotFound(..)) => {
                return Err(IamError::invalid(
                    "/spec/environment/id",
                    format!("environment `{}` does not exist", n.environment_id),
                ))
            }
            r => r?,
        };
        let env_crn = self.org_crn().child("environment", &n.environment_id);
        self.require(
            c,
            Capability::ManageResource,
            &env_crn,
            "create resources in this environment",
        )?;
        let fixed_id = match n.kind {
            ResourceKind::Flink => {
                let region = n.region.clone().unwrap_or_default();
                if !is_flink_region(&region) {
                    return Err(IamError::invalid(
                        "/spec/region",
                        "must be <cloud>.<region>, e.g. aws.us-east-1",
                    ));
                }
                Some(region)
            }
            ResourceKind::Tableflow => Some("tableflow".to_owned()),
            _ => None,
        };
        let security = crate::upstream::check_for(
            n.kind,
            &upstream,
            &Default::default(),
            &n.upstream_security,
        )?;
        let ksql = match n.kind {
            ResourceKind::Ksql => Some(self.check_ksql(&n.environment_id, &n.ksql).await?),
            _ => None,
        };
        let now = Utc::now();
        let r = with_fresh_id(|| {
            let id = match (&fixed_id, n.kind.id_kind()) {
                (Some(id), _) => id.clone(),
                (None, Some(k)) => k.generate(&mut OsRng),
                (None, None) => String::new(),
            };
            // Sealed for this id: a retry with a fresh id seals again.
            let upstream_security = security.seal(
                &self.sealer,
                n.kind,
                &Resource::key(n.kind, &n.environment_id, &id),
            );
            let r = Resource {
                id,
                kind: n.kind,
                environment_id: n.environment_id.clone(),
                display_name: name.clone(),
                upstream: upstream.clone(),
                upstream_security,
                created_at: now,
                updated_at: now,
                // Assigned by the store, in the same transaction.
                gateway_slot: None,
                ksql: ksql.clone(),
            };
            let store = self.store.clone();
            let rec = self.change(
                c,
                &format!("Create{}", resource_noun(r.kind)),
                resource_noun(r.kind),
                r.crn(&self.org_crn()).to_string(),
            );
            async move { store.create_resource(r.clone(), &rec).await.map(|_| r) }
        })
        .await?;
        self.settle().await;
        // Read back what the store assigned (the gateway slot).
        Ok(self.store.get_resource(&r.storage_key()).await?)
    }

    /// Resources of a kind (optionally in one environment).
    pub async fn list_resources(
        &self,
        _c: &Caller,
        kind: ResourceKind,
        env: Option<&str>,
    ) -> Result<Vec<Resource>> {
        Ok(self.store.list_resources(Some(kind), env).await?)
    }

    /// A ksqlDB cluster's links, checked: the Kafka cluster exists in the same
    /// environment and the credential identity is an existing user or service account.
    async fn check_ksql(&self, environment_id: &str, k: &KsqlInput) -> Result<KsqlLinks> {
        let given = |v: &Option<String>, at: &'static str| match v.as_deref() {
            Some(v) if !v.is_empty() => Ok(v.to_owned()),
            _ => Err(IamError::invalid(at, "is required for a ksqlDB cluster")),
        };
        let kafka_cluster = given(&k.kafka_cluster, "/spec/kafka_cluster/id")?;
        let credential_identity = given(&k.credential_identity, "/spec/credential_identity/id")?;
        match self.store.get_resource(&kafka_cluster).await {
            Ok(r) if r.kind == ResourceKind::Kafka && r.environment_id == environment_id => {}
            Ok(_) | Err(StoreError::NotFound(..)) => {
                return Err(IamError::invalid(
                    "/spec/kafka_cluster/id",
                    format!("no Kafka cluster `{kafka_cluster}` in environment `{environment_id}`"),
                ))
            }
            Err(e) => return Err(e.into()),
        }
        match self.store.get_account(&credential_identity).await {
            Ok(_) => {}
            Err(StoreError::NotFound(..)) => {
                return Err(IamError::invalid(
                    "/spec/credential_identity/id",
                    format!("no user or service account `{credential_identity}`"),
                ))
            }
            Err(e) => return Err(e.into()),
        }
        let csu = match k.csu {
            None => 1,
            Some(n @ 1..=1024) => n as u32,
            Some(_) => return Err(IamError::invalid("/spec/csu", "must be 1–1024")),
        };
        Ok(KsqlLinks {
            kafka_cluster,
            credential_identity,
            csu,
        })
    }

    /// One resource. `env` is required for Flink regions and Tableflow.
    pub async fn get_resource(
        &self,
        _c: &Caller,
        kind: ResourceKind,
        env: Option<&str>,
        id: &str,
    ) -> Result<Resource> {
        let key = self.resource_key(kind, env, id)?;
        let r = self.store.get_resource(&key).await?;
        if r.kind != kind || env.is_some_and(|e| e != r.environment_id) {
            return Err(IamError::NotFound("resource", id.to_owned()));
        }
        Ok(r)
    }

    fn resource_key(&self, kind: ResourceKind, env: Option<&str>, id: &str) -> Result<String> {
        match kind {
            ResourceKind::Flink | ResourceKind::Tableflow => {
                let env = env.ok_or_else(|| {
                    IamError::invalid("environment", "is required for this resource kind")
                })?;
                Ok(Resource::key(kind, env, &id.to_ascii_lowercase()))
            }
            _ => Ok(id.to_owned()),
        }
    }

    /// Rename or re-point a resource.
    pub async fn update_resource(
        &self,
        c: &Caller,
        kind: ResourceKind,
        env: Option<&str>,
        id: &str,
        changes: &ResourceChanges,
    ) -> Result<Resource> {
        let r = self.get_resource(c, kind, env, id).await?;
        let display_name = changes
            .display_name
            .as_deref()
            .map(|n| check_name("/spec/display_name", n))
            .transpose()?;
        let upstream = changes
            .upstream
            .as_deref()
            .map(|u| check_upstream(kind, u))
            .transpose()?;
        let upstream_security = &changes.upstream_security;
        // A new upstream URL is checked against the settings too (TLS needs https).
        let url = upstream.as_deref().unwrap_or(&r.upstream);
        let upstream_security = if upstream_security.is_empty() && upstream.is_none() {
            None
        } else {
            Some(
                crate::upstream::check_for(kind, url, &r.upstream_security, upstream_security)?
                    .seal(&self.sealer, kind, &r.storage_key()),
            )
        };
        self.require(
            c,
            Capability::ManageResource,
            &r.crn(&self.org_crn()),
            "update this resource",
        )?;
        let r = self
            .store
            .update_resource(
                &r.storage_key(),
                Patch {
                    display_name,
                    upstream,
                    upstream_security,
                    ..Patch::default()
                },
                Utc::now(),
                &self.change(
                    c,
                    &format!("Update{}", resource_noun(kind)),
                    resource_noun(kind),
                    r.crn(&self.org_crn()).to_string(),
                ),
            )
            .await?;
        self.settle().await;
        Ok(r)
    }

    /// Delete a resource, its keys, ACLs and role bindings (EnvironmentAdmin or above).
    pub async fn delete_resource(
        &self,
        c: &Caller,
        kind: ResourceKind,
        env: Option<&str>,
        id: &str,
    ) -> Result<()> {
        let r = self.get_resource(c, kind, env, id).await?;
        let env_crn = self.org_crn().child("environment", &r.environment_id);
        if !self
            .authz()
            .can(&c.principal, Capability::ManageEnvironment, &env_crn)
        {
            return Err(self.deny(c, "delete resources in this environment", Some(&env_crn)));
        }
        let crn = r.crn(&self.org_crn()).to_string();
        let rec = self.change(
            c,
            &format!("Delete{}", resource_noun(kind)),
            resource_noun(kind),
            crn.clone(),
        );
        self.store
            .delete_resource(&r.storage_key(), &crn, &rec)
            .await?;
        self.settle().await;
        Ok(())
    }

    // ---- accounts ------------------------------------------------------------------

    fn account_crn(&self, id: &str) -> CrnPattern {
        match IdKind::of(id) {
            Some(IdKind::ServiceAccount) => self.org_crn().child("service-account", id),
            _ => self.org_crn().child("user", id),
        }
    }

    /// Create a service account (AccountAdmin or OrganizationAdmin).
    pub async fn create_service_account(
        &self,
        c: &Caller,
        display_name: &str,
        description: &str,
    ) -> Result<Account> {
        let name = check_name("/display_name", display_name)?;
        let description = check_description("/description", description)?;
        self.require(
            c,
            Capability::ManageAccounts,
            &self.org_crn(),
            "create service accounts",
        )?;
        let now = Utc::now();
        let a = with_fresh_id(|| {
            let a = Account {
                id: IdKind::ServiceAccount.generate(&mut OsRng),
                kind: AccountKind::ServiceAccount,
                display_name: name.clone(),
                description: description.clone(),
                email: String::new(),
                auth_type: String::new(),
                created_at: now,
                updated_at: now,
            };
            let store = self.store.clone();
            let rec = self.change(
                c,
                "CreateServiceAccount",
                "ServiceAccount",
                self.account_crn(&a.id).to_string(),
            );
            async move { store.create_account(a.clone(), &rec).await.map(|_| a) }
        })
        .await?;
        self.settle().await;
        Ok(a)
    }

    /// Create a user directly (AccountAdmin or OrganizationAdmin).
    pub async fn create_user(
        &self,
        c: &Caller,
        email: &str,
        full_name: &str,
        auth_type: Option<&str>,
    ) -> Result<Account> {
        let email = email.trim();
        if email.len() > 254
            || !email.contains('@')
            || email.starts_with('@')
            || email.ends_with('@')
            || email.contains(char::is_whitespace)
        {
            return Err(IamError::invalid("/email", "must be an e-mail address"));
        }
        let full_name = check_name("/full_name", full_name)?;
        let auth_type = auth_type.unwrap_or("AUTH_TYPE_LOCAL");
        if !matches!(auth_type, "AUTH_TYPE_LOCAL" | "AUTH_TYPE_SSO") {
            return Err(IamError::invalid(
                "/auth_type",
                "must be AUTH_TYPE_LOCAL or AUTH_TYPE_SSO",
            ));
        }
        self.require(
            c,
            Capability::ManageAccounts,
            &self.org_crn(),
            "create users",
        )?;
        let now = Utc::now();
        let a = with_fresh_id(|| {
            let a = Account {
                id: IdKind::User.generate(&mut OsRng),
                kind: AccountKind::User,
                display_name: full_name.clone(),
                description: String::new(),
                email: email.to_ascii_lowercase(),
                auth_type: auth_type.to_owned(),
                created_at: now,
                updated_at: now,
            };
            let store = self.store.clone();
            let rec = self.change(c, "CreateUser", "User", self.account_crn(&a.id).to_string());
            async move { store.create_account(a.clone(), &rec).await.map(|_| a) }
        })
        .await?;
        self.settle().await;
        Ok(a)
    }

    /// Accounts of one kind (any member).
    pub async fn list_accounts(&self, _c: &Caller, kind: AccountKind) -> Result<Vec<Account>> {
        Ok(self.store.list_accounts(kind).await?)
    }

    /// The per-owner key limit, and how many keys each account holds (the
    /// service-quota API shows both). Visible to every caller, like the accounts.
    pub async fn key_quota(&self, _c: &Caller) -> Result<(u32, Vec<(Account, u32)>)> {
        let mut held: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
        for k in self.store.list_api_keys(&KeyFilter::default()).await? {
            *held.entry(k.owner_id).or_default() += 1;
        }
        let mut out = Vec::new();
        for kind in [AccountKind::User, AccountKind::ServiceAccount] {
            for a in self.store.list_accounts(kind).await? {
                let n = held.get(&a.id).copied().unwrap_or(0);
                out.push((a, n));
            }
        }
        Ok((self.cfg.max_keys_per_owner, out))
    }

    /// One account of the given kind.
    pub async fn get_account(&self, _c: &Caller, kind: AccountKind, id: &str) -> Result<Account> {
        let what = match kind {
            AccountKind::User => "user",
            AccountKind::ServiceAccount => "service account",
        };
        match self.store.get_account(id).await {
            Ok(a) if a.kind == kind => Ok(a),
            Ok(_) | Err(StoreError::NotFound(..)) => Err(IamError::NotFound(what, id.to_owned())),
            Err(e) => Err(e.into()),
        }
    }

    /// Update an account's names. Users may update themselves.
    pub async fn update_account(
        &self,
        c: &Caller,
        kind: AccountKind,
        id: &str,
        display_name: Option<&str>,
        description: Option<&str>,
    ) -> Result<Account> {
        self.get_account(c, kind, id).await?;
        let pointer = if kind == AccountKind::User {
            "/full_name"
        } else {
            "/display_name"
        };
        let display_name = display_name.map(|n| check_name(pointer, n)).transpose()?;
        let description = description
            .map(|d| check_description("/description", d))
            .transpose()?;
        if c.account_id != id {
            self.require(
                c,
                Capability::ManageAccounts,
                &self.account_crn(id),
                "update this account",
            )?;
            self.require_outranks(c, id, None, "update this account")?;
        }
        let a = self
            .store
            .update_account(
                id,
                Patch {
                    display_name,
                    description,
                    ..Patch::default()
                },
                Utc::now(),
                &self.change(
                    c,
                    account_method("Update", kind),
                    account_noun(kind),
                    self.account_crn(id).to_string(),
                ),
            )
            .await?;
        self.settle().await;
        Ok(a)
    }

    /// Delete an account with its keys, role bindings and ACLs.
    pub async fn delete_account(&self, c: &Caller, kind: AccountKind, id: &str) -> Result<()> {
        self.get_account(c, kind, id).await?;
        self.require(
            c,
            Capability::ManageAccounts,
            &self.account_crn(id),
            "delete this account",
        )?;
        self.require_outranks(c, id, None, "delete this account")?;
        let rec = self.change(
            c,
            account_method("Delete", kind),
            account_noun(kind),
            self.account_crn(id).to_string(),
        );
        self.store.delete_account(id, &rec).await?;
        self.settle().await;
        Ok(())
    }

    // ---- API keys ------------------------------------------------------------------

    fn key_target_crn(&self, scope: &KeyScope) -> Option<CrnPattern> {
        scope.resource_crn(&self.org_crn())
    }

    /// Whether `c` may manage keys of `owner` scoped to `scope` (reference/roles.md).
    fn can_manage_key(
        &self,
        c: &Caller,
        owner_id: &str,
        owner_kind: AccountKind,
        scope: &KeyScope,
    ) -> bool {
        if owner_id == c.account_id {
            return true;
        }
        let authz = self.authz();
        if authz.is_super_user(&c.principal) {
            return true;
        }
        if owner_kind == AccountKind::User {
            return false;
        }
        if authz.can(
            &c.principal,
            Capability::ManageAccountKeys,
            &self.account_crn(owner_id),
        ) {
            return true;
        }
        match self.key_target_crn(scope) {
            None => false,
            Some(target) => authz.can(&c.principal, Capability::ManageResourceKeys, &target),
        }
    }

    async fn resolve_scope(&self, resource_id: &str, env: Option<&str>) -> Result<KeyScope> {
        let pointer = "/spec/resource/id";
        let env = env.filter(|e| !e.is_empty());
        let upper = resource_id.to_ascii_uppercase();
        if upper == "CLOUD" {
            return Ok(KeyScope::Cloud);
        }
        if upper == "GLOBAL" {
            return Err(IamError::invalid(
                pointer,
                "GLOBAL keys are not supported by keygate; use CLOUD or a resource",
            ));
        }
        let (kind, id) = if upper == "TABLEFLOW" {
            (ResourceKind::Tableflow, "tableflow".to_owned())
        } else if is_flink_region(resource_id) {
            (ResourceKind::Flink, resource_id.to_owned())
        } else {
            match IdKind::of(resource_id) {
                Some(IdKind::KafkaCluster) => (ResourceKind::Kafka, resource_id.to_owned()),
                Some(IdKind::SchemaRegistry) => (ResourceKind::SchemaRegistry, resource_id.to_owned()),
                Some(IdKind::KsqlCluster) => (ResourceKind::Ksql, resource_id.to_owned()),
                _ => {
                    return Err(IamError::invalid(
                        pointer,
                        "must be CLOUD, TABLEFLOW, a cluster id (lkc-, lsrc-, lksqlc-) or a Flink region (aws.us-east-1)",
                    ))
                }
            }
        };
        // The hosted API's Tableflow keys name no environment: keygate's Tableflow
        // endpoints are per environment, so the organization's only one is meant.
        let only_tableflow;
        let env = match (kind, env) {
            (ResourceKind::Tableflow, None) => {
                let all = self.store.list_resources(Some(kind), None).await?;
                match all.as_slice() {
                    [one] => {
                        only_tableflow = one.environment_id.clone();
                        Some(only_tableflow.as_str())
                    }
                    _ => {
                        return Err(IamError::invalid(
                            "/spec/resource/environment",
                            "is required for a Tableflow key unless exactly one environment has a Tableflow endpoint",
                        ))
                    }
                }
            }
            (ResourceKind::Flink, None) => {
                return Err(IamError::invalid(
                    "/spec/resource/environment",
                    "is required for Flink keys",
                ))
            }
            (_, env) => env,
        };
        let key = Resource::key(kind, env.unwrap_or_default(), &id);
        let r = match self.store.get_resource(&key).await {
            Ok(r) => r,
            Err(StoreError::NotFound(..)) => {
                return Err(IamError::invalid(
                    pointer,
                    format!("resource `{resource_id}` does not exist"),
                ))
            }
            Err(e) => return Err(e.into()),
        };
        if env.is_some_and(|e| e != r.environment_id) {
            return Err(IamError::invalid(
                "/spec/resource/environment",
                format!("`{resource_id}` is not in that environment"),
            ));
        }
        Ok(KeyScope::Resource {
            kind,
            id: r.id,
            environment_id: r.environment_id,
        })
    }

    /// Create a key; returns it with its secret (shown once).
    pub async fn create_api_key(&self, c: &Caller, n: NewApiKey) -> Result<(ApiKey, Secret)> {
        let display_name = if n.display_name.trim().is_empty() {
            String::new()
        } else {
            check_name("/spec/display_name", &n.display_name)?
        };
        let description = check_description("/spec/description", &n.description)?;
        let now = Utc::now();
        if n.expires_at.is_some_and(|e| e <= now) {
            return Err(IamError::invalid(
                "/spec/expires_at",
                "must be in the future",
            ));
        }
        let owner_id = n
            .owner_id
            .clone()
            .filter(|o| !o.is_empty())
            .unwrap_or_else(|| c.account_id.clone());
        let owner = match self.store.get_account(&owner_id).await {
            Ok(a) => a,
            Err(StoreError::NotFound(..)) => {
                return Err(IamError::invalid(
                    "/spec/owner/id",
                    format!("owner `{owner_id}` does not exist"),
                ))
            }
            Err(e) => return Err(e.into()),
        };
        let scope = self
            .resolve_scope(&n.resource_id, n.environment_id.as_deref())
            .await?;
        if !self.can_manage_key(c, &owner.id, owner.kind, &scope) {
            return Err(self.deny(
                c,
                format!(
                    "create {} keys for {}",
                    if scope == KeyScope::Cloud {
                        "CLOUD"
                    } else {
                        "resource"
                    },
                    owner.id
                ),
                None,
            ));
        }
        if owner.id != c.account_id {
            let within = self.key_target_crn(&scope);
            self.require_outranks(c, &owner.id, within.as_ref(), "create keys for this owner")?;
        }
        let hasher = self.snapshot().hasher().clone();
        let max = self.cfg.max_keys_per_owner;
        let (key, secret) = with_fresh_id(|| {
            let secret = Secret::generate(&mut OsRng);
            let key = ApiKey {
                id: KeyId::generate(&mut OsRng),
                display_name: display_name.clone(),
                description: description.clone(),
                owner_id: owner.id.clone(),
                owner_kind: owner.kind,
                scope: scope.clone(),
                secret_hash: hasher.hash(secret.expose()),
                disabled: false,
                expires_at: n.expires_at,
                last_used_at: None,
                created_at: now,
                updated_at: now,
            };
            let store = self.store.clone();
            let rec = self.change(c, "CreateAPIKey", "APIKey", self.key_crn(&key.id));
            async move {
                store
                    .create_api_key(key.clone(), max, &rec)
                    .await
                    .map(|_| (key, secret))
            }
        })
        .await?;
        self.settle().await;
        Ok((key, secret))
    }

    /// Keys the caller may manage, filtered by owner and resource.
    pub async fn list_api_keys(
        &self,
        c: &Caller,
        owner: Option<&str>,
        resource: Option<(&str, Option<&str>)>,
    ) -> Result<Vec<ApiKey>> {
        let resource_key = match resource {
            None => None,
            Some((id, env)) => Some(match self.resolve_scope(id, env).await {
                Ok(scope) => scope.storage_key(),
                // An unknown resource simply has no keys.
                Err(IamError::Invalid { .. }) => return Ok(Vec::new()),
                Err(e) => return Err(e),
            }),
        };
        let keys = self
            .store
            .list_api_keys(&KeyFilter {
                owner_id: owner.map(str::to_owned),
                resource_key,
            })
            .await?;
        Ok(keys
            .into_iter()
            .filter(|k| self.can_manage_key(c, &k.owner_id, k.owner_kind, &k.scope))
            .collect())
    }

    /// A key the caller may see; with `act`, one it may also change, enable, disable
    /// or delete — which, for another owner's key, needs the caller to hold at least
    /// what that owner holds where the key reaches.
    async fn managed_key(&self, c: &Caller, id: &str, act: bool) -> Result<ApiKey> {
        let not_found = || IamError::NotFound("API key", id.to_owned());
        let key_id = KeyId::parse(id).ok_or_else(not_found)?;
        let k = match self.store.get_api_key(&key_id).await {
            Err(StoreError::NotFound(..)) => return Err(not_found()),
            r => r?,
        };
        // Keys the caller may not manage look exactly like keys that do not exist.
        if !self.can_manage_key(c, &k.owner_id, k.owner_kind, &k.scope) {
            return Err(not_found());
        }
        if act && k.owner_id != c.account_id {
            let within = self.key_target_crn(&k.scope);
            self.require_outranks(c, &k.owner_id, within.as_ref(), "change this key")?;
        }
        Ok(k)
    }

    /// One key.
    pub async fn get_api_key(&self, c: &Caller, id: &str) -> Result<ApiKey> {
        self.managed_key(c, id, false).await
    }

    /// Change a key's name or description.
    pub async fn update_api_key(
        &self,
        c: &Caller,
        id: &str,
        display_name: Option<&str>,
        description: Option<&str>,
    ) -> Result<ApiKey> {
        let k = self.managed_key(c, id, true).await?;
        let display_name = display_name
            .map(|n| check_name("/spec/display_name", n))
            .transpose()?;
        let description = description
            .map(|d| check_description("/spec/description", d))
            .transpose()?;
        let k = self
            .store
            .update_api_key(
                &k.id,
                Patch {
                    display_name,
                    description,
                    ..Patch::default()
                },
                Utc::now(),
                &self.change(c, "UpdateAPIKey", "APIKey", self.key_crn(&k.id)),
            )
            .await?;
        self.settle().await;
        Ok(k)
    }

    /// Disable or enable a key.
    pub async fn set_api_key_disabled(
        &self,
        c: &Caller,
        id: &str,
        disabled: bool,
    ) -> Result<ApiKey> {
        let k = self.managed_key(c, id, true).await?;
        let k = self
            .store
            .set_api_key_disabled(
                &k.id,
                disabled,
                Utc::now(),
                &self.change(
                    c,
                    if disabled {
                        "DisableAPIKey"
                    } else {
                        "EnableAPIKey"
                    },
                    "APIKey",
                    self.key_crn(&k.id),
                ),
            )
            .await?;
        self.settle().await;
        Ok(k)
    }

    /// Delete a key.
    pub async fn delete_api_key(&self, c: &Caller, id: &str) -> Result<()> {
        let k = self.managed_key(c, id, true).await?;
        let rec = self.change(c, "DeleteAPIKey", "APIKey", self.key_crn(&k.id));
        self.store.delete_api_key(&k.id, &rec).await?;
        self.settle().await;
        Ok(())
    }

    // ---- role bindings ---------------------------------------------------------------

    async fn check_pattern_targets(&self, pattern: &CrnPattern) -> Result<()> {
        let pointer = "/crn_pattern";
        let org = self.org();
        if pattern.authority() != org.crn_authority
            || pattern.get("organization") != Some(org.id.as_str())
        {
            return Err(IamError::invalid(
                pointer,
                format!("must start with {}", org.crn()),
            ));
        }
        let exact = |v: &str| !v.ends_with('*');
        if let Some(env) = pattern.get("environment").filter(|v| exact(v)) {
            if matches!(
                self.store.get_environment(env).await,
                Err(StoreError::NotFound(..))
            ) {
                return Err(IamError::invalid(
                    pointer,
                    format!("environment `{env}` does not exist"),
                ));
            }
        }
        for seg in ["cloud-cluster", "schema-registry", "ksql"] {
            if let Some(id) = pattern.get(seg).filter(|v| exact(v)) {
                if matches!(
                    self.store.get_resource(id).await,
                    Err(StoreError::NotFound(..))
                ) {
                    return Err(IamError::invalid(pointer, format!("`{id}` does not exist")));
                }
            }
        }
        Ok(())
    }

    /// Bind a role.
    pub async fn create_role_binding(
        &self,
        c: &Caller,
        principal: &str,
        role: &str,
        crn_pattern: &str,
    ) -> Result<RoleBinding> {
        let principal = Principal::parse(principal)
            .map_err(|e| IamError::invalid("/principal", e.to_string()))?;
        if principal == Principal::AnyUser {
            return Err(IamError::invalid(
                "/principal",
                "roles cannot be bound to User:*",
            ));
        }
        let role = Role::parse(role).ok_or_else(|| {
            let all = Role::ALL
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            IamError::invalid(
                "/role_name",
                format!(
                    "unknown role `{}`; roles: {all}",
                    role.chars().take(64).collect::<String>()
                ),
            )
        })?;
        let pattern = CrnPattern::parse(crn_pattern)
            .map_err(|e| IamError::invalid("/crn_pattern", e.to_string()))?;
        role.check_scope(&pattern)
            .map_err(|e| IamError::invalid("/crn_pattern", e.to_string()))?;
        self.check_pattern_targets(&pattern).await?;
        if let Principal::User(id) = &principal {
            if IdKind::of(id).is_some_and(|k| matches!(k, IdKind::User | IdKind::ServiceAccount))
                && matches!(
                    self.store.get_account(id).await,
                    Err(StoreError::NotFound(..))
                )
            {
                return Err(IamError::invalid(
                    "/principal",
                    format!("account `{id}` does not exist"),
                ));
            }
        }
        if !self.authz().can_grant(&c.principal, role, &pattern) {
            return Err(self.deny(c, format!("grant {role} on {pattern}"), Some(&pattern)));
        }
        let cluster = pattern.get("cloud-cluster").map(str::to_owned);
        let now = Utc::now();
        let rb = with_fresh_id(|| {
            let rb = RoleBinding {
                id: IdKind::RoleBinding.generate(&mut OsRng),
                principal: principal.clone(),
                role,
                crn_pattern: pattern.clone(),
                created_at: now,
            };
            let store = self.store.clone();
            let cluster = cluster.clone();
            let rec = self
                .change(
                    c,
                    "CreateRoleBinding",
                    "RoleBinding",
                    self.org_crn().child("role-binding", &rb.id).to_string(),
                )
                .result(
                    keygate_audit::status::SUCCESS,
                    Some(format!(
                        "{} bound to {} on {}",
                        rb.principal, rb.role, rb.crn_pattern
                    )),
                );
            async move {
                store
                    .create_role_binding(rb.clone(), cluster.as_deref(), &rec)
                    .await
                    .map(|_| rb)
            }
        })
        .await?;
        self.settle().await;
        Ok(rb)
    }

    fn can_see_binding(&self, c: &Caller, rb: &RoleBinding) -> bool {
        rb.principal == c.principal
            || self
                .authz()
                .can_grant(&c.principal, rb.role, &rb.crn_pattern)
    }

    /// Bindings at or below `crn_pattern` that the caller may see.
    pub async fn list_role_bindings(
        &self,
        c: &Caller,
        crn_pattern: &str,
        principal: Option<&str>,
        role: Option<&str>,
    ) -> Result<Vec<RoleBinding>> {
        let pattern = CrnPattern::parse(crn_pattern)
            .map_err(|e| IamError::invalid("crn_pattern", e.to_string()))?;
        let principal = principal
            .map(|p| Principal::parse(p).map_err(|e| IamError::invalid("principal", e.to_string())))
            .transpose()?;
        let role = role
            .map(|r| {
                Role::parse(r)
                    .ok_or_else(|| IamError::invalid("role_name", format!("unknown role `{r}`")))
            })
            .transpose()?;
        let all = self
            .store
            .list_role_bindings(&BindingFilter {
                principal,
                role,
                crn_prefix: Some(pattern.to_string()),
            })
            .await?;
        Ok(all
            .into_iter()
            .filter(|rb| self.can_see_binding(c, rb))
            .collect())
    }

    /// One binding.
    pub async fn get_role_binding(&self, c: &Caller, id: &str) -> Result<RoleBinding> {
        let rb = self.store.get_role_binding(id).await?;
        if !self.can_see_binding(c, &rb) {
            return Err(IamError::NotFound("role binding", id.to_owned()));
        }
        Ok(rb)
    }

    /// Revoke a binding.
    pub async fn delete_role_binding(&self, c: &Caller, id: &str) -> Result<RoleBinding> {
        let rb = self.get_role_binding(c, id).await?;
        if !self
            .authz()
            .can_grant(&c.principal, rb.role, &rb.crn_pattern)
        {
            return Err(self.deny(
                c,
                format!("revoke {} on {}", rb.role, rb.crn_pattern),
                Some(&rb.crn_pattern),
            ));
        }
        let rec = self
            .change(
                c,
                "DeleteRoleBindingById",
                "RoleBinding",
                self.org_crn().child("role-binding", id).to_string(),
            )
            .result(
                keygate_audit::status::SUCCESS,
                Some(format!(
                    "{} unbound from {} on {}",
                    rb.principal, rb.role, rb.crn_pattern
                )),
            );
        self.store
            .delete_role_binding(id, rb.crn_pattern.get("cloud-cluster"), &rec)
            .await?;
        self.settle().await;
        Ok(rb)
    }

    // ---- ACLs ------------------------------------------------------------------------

    pub(crate) async fn kafka_cluster(&self, cluster_id: &str) -> Result<Resource> {
        match self.store.get_resource(cluster_id).await {
            Ok(r) if r.kind == ResourceKind::Kafka => Ok(r),
            Ok(_) | Err(StoreError::NotFound(..)) => {
                Err(IamError::NotFound("Kafka cluster", cluster_id.to_owned()))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) fn require_cluster_op(
        &self,
        c: &Caller,
        cluster_id: &str,
        op: Operation,
        what: &str,
    ) -> Result<()> {
        let d = self.authz().authorize(
            cluster_id,
            &c.principal,
            ResourceType::Cluster,
            CLUSTER_RESOURCE_NAME,
            op,
        );
        if d.allowed {
            Ok(())
        } else {
            Err(self.deny(c, what, None))
        }
    }

    /// Add ACLs (ALTER on the cluster, as in Kafka). All are validated first; none is
    /// written if one is invalid.
    pub async fn create_acls(
        &self,
        c: &Caller,
        cluster_id: &str,
        acls: Vec<AclBinding>,
    ) -> Result<Vec<Acl>> {
        let cluster = self.kafka_cluster(cluster_id).await?;
        for (i, a) in acls.iter().enumerate() {
            a.validate().map_err(|e| {
                IamError::invalid(
                    if acls.len() == 1 {
                        String::new()
                    } else {
                        format!("/data/{i}")
                    },
                    e.to_string(),
                )
            })?;
        }
        self.require_cluster_op(
            c,
            cluster_id,
            Operation::Alter,
            "alter ACLs of this cluster",
        )?;
        let now = Utc::now();
        let rows: Vec<Acl> = acls
            .into_iter()
            .map(|binding| Acl {
                id: IdKind::Acl.generate(&mut OsRng),
                cluster_id: cluster_id.to_owned(),
                binding,
                created_at: now,
            })
            .collect();
        let rec = self
            .change(
                c,
                "CreateAcls",
                "Cluster",
                cluster.crn(&self.org_crn()).to_string(),
            )
            .result(keygate_audit::status::SUCCESS, Some(describe_acls(&rows)));
        with_fresh_id(|| {
            let store = self.store.clone();
            let rows = rows.clone();
            let rec = rec.clone();
            async move { store.create_acls(cluster_id, rows, &rec).await }
        })
        .await?;
        self.settle().await;
        Ok(rows)
    }

    /// ACLs matching a filter (DESCRIBE on the cluster).
    pub async fn list_acls(&self, c: &Caller, cluster_id: &str, f: &AclFilter) -> Result<Vec<Acl>> {
        self.kafka_cluster(cluster_id).await?;
        self.require_cluster_op(
            c,
            cluster_id,
            Operation::Describe,
            "describe ACLs of this cluster",
        )?;
        if !f.matches_some_host() {
            return Ok(Vec::new());
        }
        Ok(self.store.list_acls(cluster_id, f).await?)
    }

    /// Delete ACLs matching a filter (ALTER on the cluster); returns them.
    pub async fn delete_acls(
        &self,
        c: &Caller,
        cluster_id: &str,
        f: &AclFilter,
    ) -> Result<Vec<Acl>> {
        let cluster = self.kafka_cluster(cluster_id).await?;
        self.require_cluster_op(
            c,
            cluster_id,
            Operation::Alter,
            "alter ACLs of this cluster",
        )?;
        if !f.matches_some_host() {
            return Ok(Vec::new());
        }
        let rec = self
            .change(
                c,
                "DeleteAcls",
                "Cluster",
                cluster.crn(&self.org_crn()).to_string(),
            )
            .result(
                keygate_audit::status::SUCCESS,
                Some(format!("filter: {f:?}")),
            );
        let deleted = self.store.delete_acls(cluster_id, f, &rec).await?;
        self.settle().await;
        Ok(deleted)
    }

    fn key_crn(&self, id: &KeyId) -> String {
        self.org_crn().child("api-key", id.as_str()).to_string()
    }

    /// Whether a binding pattern is at a scope where it can name Kafka resources.
    pub fn scope_of(pattern: &CrnPattern) -> Option<Scope> {
        Scope::of(pattern)
    }
}

fn resource_noun(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Kafka => "KafkaCluster",
        ResourceKind::SchemaRegistry => "SchemaRegistry",
        ResourceKind::Ksql => "KsqlCluster",
        ResourceKind::Flink => "FlinkRegion",
        ResourceKind::Tableflow => "Tableflow",
    }
}

fn account_noun(kind: AccountKind) -> &'static str {
    match kind {
        AccountKind::User => "User",
        AccountKind::ServiceAccount => "ServiceAccount",
    }
}

fn account_method(verb: &str, kind: AccountKind) -> &'static str {
    match (verb, kind) {
        ("Update", AccountKind::User) => "UpdateUser",
        ("Update", AccountKind::ServiceAccount) => "UpdateServiceAccount",
        (_, AccountKind::User) => "DeleteUser",
        (_, AccountKind::ServiceAccount) => "DeleteServiceAccount",
    }
}

/// The ACLs of a CreateAcls record, in Kafka's notation.
fn describe_acls(rows: &[Acl]) -> String {
    rows.iter()
        .map(|a| {
            let b = &a.binding;
            format!(
                "({} {} {} on {}:{}:{})",
                b.principal,
                b.permission.as_str(),
                b.operation.as_str(),
                b.resource_type.as_str(),
                b.pattern_type.as_str(),
                b.resource_name
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl Iam {
    /// Query the audit log. Operators of the organization (ViewOperations on it) see
    /// everything; anyone may see the records of a key they manage (`identifier`).
    pub async fn query_audit(
        &self,
        c: &Caller,
        q: &keygate_store::AuditQuery,
    ) -> Result<Vec<keygate_store::AuditRow>> {
        let org_wide = self
            .authz()
            .can(&c.principal, Capability::ViewOperations, &self.org_crn());
        if !org_wide {
            match &q.identifier {
                Some(id) => {
                    // A key the caller may not manage looks like one without records.
                    if self.managed_key(c, id, false).await.is_err() {
                        return Ok(Vec::new());
                    }
                }
                None => return Err(self.deny(c, "read the organization's audit log", None)),
            }
        }
        Ok(self.store.query_audit(q).await?)
    }
}

/// Shortest password accepted for console sign-in.
pub const MIN_PASSWORD_LEN: usize = 12;
const MAX_PASSWORD_LEN: usize = 256;

impl Iam {
    /// Whether `c` holds `cap` at `target` (for showing or hiding actions; every
    /// action is still checked when it is taken).
    pub fn can(&self, c: &Caller, cap: Capability, target: &CrnPattern) -> bool {
        self.authz().can(&c.principal, cap, target)
    }

    /// The organization's CRN.
    pub fn organization_crn(&self) -> CrnPattern {
        self.org_crn()
    }

    /// Set a user's console password (the user themself, or an account admin). Hashed
    /// with argon2id; ends the user's console sessions.
    ///
    /// Another user's password: only by an account admin who holds at least what that
    /// user holds (a password is the user's whole identity). One's own: with an API
    /// key (a credential presented with this very request), or with the current
    /// password — a console session alone is not enough.
    pub async fn set_password(
        &self,
        c: &Caller,
        user_id: &str,
        password: &str,
        current: Option<&str>,
    ) -> Result<()> {
        Self::check_password(password)?;
        self.get_account(c, AccountKind::User, user_id).await?;
        if c.account_id != user_id {
            self.require(
                c,
                Capability::ManageAccounts,
                &self.account_crn(user_id),
                "set this user's password",
            )?;
            self.require_outranks(c, user_id, None, "set this user's password")?;
        } else if let Some(current) = current {
            self.check_current_password(user_id, current).await?;
        } else if c.key_id.is_none() {
            return Err(IamError::invalid(
                "/current_password",
                "is required to change your own password from a session",
            ));
        }
        let hash = self.passwords.hash(password).await?;
        let rec = self.change(
            c,
            "SetPassword",
            "User",
            self.account_crn(user_id).to_string(),
        );
        self.store.set_password(user_id, hash, &rec).await?;
        Ok(())
    }

    /// The password rules (length), checked before anything is written.
    pub fn check_password(password: &str) -> Result<()> {
        let n = password.chars().count();
        if n < MIN_PASSWORD_LEN {
            return Err(IamError::invalid(
                "/password",
                format!("must be at least {MIN_PASSWORD_LEN} characters"),
            ));
        }
        if n > MAX_PASSWORD_LEN {
            return Err(IamError::invalid(
                "/password",
                format!("must be at most {MAX_PASSWORD_LEN} characters"),
            ));
        }
        Ok(())
    }

    /// Console sign-in by e-mail and password, from `source`. Every failure is the
    /// same error after the same work (an unknown address is verified against a dummy
    /// hash). A source with too many recent failures is refused without any work
    /// ([`IamError::Throttled`]); so is a source with too many failures for one
    /// account — per source, so that a stranger cannot lock a user out.
    pub async fn sign_in(&self, email: &str, password: &str, source: IpAddr) -> Result<Caller> {
        let now = std::time::Instant::now();
        let email = email.trim().to_ascii_lowercase();
        let account = (email.clone(), source);
        let blocked = [
            self.sources.blocked(&(Door::Console, source), now),
            self.accounts.blocked(&account, now),
        ];
        if let Some(wait) = blocked.into_iter().flatten().max() {
            return Err(IamError::Throttled(wait));
        }
        let user = self.store.find_user_by_email(&email).await?;
        let hash = match &user {
            Some(u) => self.store.password_hash(&u.id).await?,
            None => None,
        };
        let ok = self.passwords.verify(password, hash).await?;
        match user {
            Some(u) if ok => {
                self.accounts.clear(&account);
                Ok(Caller {
                    principal: Principal::user(u.id.clone()),
                    account_id: u.id,
                    key_id: None,
                    mechanism: "CONSOLE_PASSWORD",
                    client_address: Some(source.to_string()),
                    request: None,
                })
            }
            _ => {
                self.sources.failed(&(Door::Console, source), now);
                self.accounts.failed(&account, now);
                Err(IamError::Unauthenticated)
            }
        }
    }

    /// Record a failed authentication at `door` from `source`; returns the penalty
    /// the source now has (the front door delays or refuses accordingly).
    pub fn auth_failed(&self, door: Door, source: IpAddr) -> crate::Penalty {
        self.sources
            .failed(&(door, source), std::time::Instant::now())
    }

    /// Check a user's current password (own password changes from a session).
    async fn check_current_password(&self, user_id: &str, current: &str) -> Result<()> {
        let hash = self.store.password_hash(user_id).await?;
        if self.passwords.verify(current, hash).await? {
            Ok(())
        } else {
            Err(IamError::invalid(
                "/current_password",
                "does not match the current password",
            ))
        }
    }

    /// The caller of a console session, if its user still exists.
    pub async fn session_caller(&self, user_id: &str) -> Result<Option<Caller>> {
        match self.store.get_account(user_id).await {
            Ok(a) if a.kind == AccountKind::User => Ok(Some(Caller {
                principal: Principal::user(a.id.clone()),
                account_id: a.id,
                key_id: None,
                mechanism: "CONSOLE_SESSION",
                client_address: None,
                request: None,
            })),
            Ok(_) | Err(StoreError::NotFound(..)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

impl Iam {
    /// Readiness: the database answers a read.
    pub async fn ready(&self) -> Result<()> {
        self.store.changes_since(i64::MAX, 1).await?;
        Ok(())
    }

    /// Start a console session (the SHA-256 of its cookie value is stored).
    pub async fn create_session(&self, session: crate::ConsoleSession) -> Result<()> {
        Ok(self.store.create_session(session).await?)
    }

    /// The unexpired console session with this cookie hash, if any.
    pub async fn session(&self, id_hash: [u8; 32]) -> Result<Option<crate::ConsoleSession>> {
        Ok(self.store.get_session(id_hash, Utc::now()).await?)
    }

    /// End a console session.
    pub async fn end_session(&self, id_hash: [u8; 32]) -> Result<()> {
        Ok(self.store.delete_session(id_hash, Utc::now()).await?)
    }

    /// How many Kafka ACLs name `principal` on every cluster (what deleting it takes
    /// along).
    pub async fn count_acls_of(&self, principal: &Principal) -> Result<usize> {
        let mut n = 0;
        for cluster in self.snapshot().kafka_clusters().keys() {
            let f = AclFilter {
                principal: Some(principal.clone()),
                ..AclFilter::default()
            };
            n += self.store.list_acls(cluster, &f).await?.len();
        }
        Ok(n)
    }
}
