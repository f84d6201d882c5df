//! External OAuth in the control plane: identity providers and pools (validated and
//! authorized like every other entity), JWKS refreshes, the STS token exchange, and
//! authentication with tokens for the REST API and the gateway.
//!
//! Keys of an identity provider are fetched here and stored with the provider, so
//! every instance verifies against the same keys and the hot path never fetches.
//! Fetches run on blocking threads with timeouts (see `keygate_oauth::fetch`); an
//! unknown key id triggers at most one refresh per provider per
//! [`OAuthConfig::unknown_key_refresh_interval`].

use std::time::{Duration, Instant};

use chrono::Utc;
use keygate_authz::Capability;
use keygate_core::crn::CrnPattern;
use keygate_core::model::{IdentityPool, IdentityProvider, SigningKey};
use keygate_core::{IdKind, Principal};
use keygate_oauth::fetch::{is_http_url, FetchError, Fetcher};
use keygate_oauth::{AuthError, Filter, Identity, MAX_STS_LIFETIME_SECS};
use keygate_store::Patch;
use rand::rngs::OsRng;
use rand::RngCore as _;

use crate::service::{check_description, check_name, with_fresh_id};
use crate::snapshot::OAuthSettings;
use crate::{Caller, Iam, IamError, Result};

/// OAuth settings of the IAM service.
#[derive(Debug, Clone)]
pub struct OAuthConfig {
    /// Issuer and clock skew.
    pub settings: OAuthSettings,
    /// Client for IdP documents.
    pub fetcher: Fetcher,
    /// Minimum time between JWKS refreshes caused by unknown key ids, per provider.
    pub unknown_key_refresh_interval: Duration,
    /// How long a signing key signs before a new one takes over.
    pub sts_key_rotation: Duration,
}

impl Default for OAuthConfig {
    fn default() -> Self {
        OAuthConfig {
            settings: OAuthSettings::default(),
            fetcher: Fetcher::default(),
            unknown_key_refresh_interval: Duration::from_secs(10),
            sts_key_rotation: Duration::from_secs(24 * 3600),
        }
    }
}

/// A new identity provider.
#[derive(Debug, Clone, Default)]
pub struct NewProvider {
    /// Unique name.
    pub display_name: String,
    /// Free text.
    pub description: String,
    /// Exact issuer.
    pub issuer: String,
    /// JWKS URI; discovered from the issuer when absent.
    pub jwks_uri: Option<String>,
    /// Default identity claim (`claims.sub`).
    pub identity_claim: Option<String>,
}

/// A new identity pool.
#[derive(Debug, Clone, Default)]
pub struct NewPool {
    /// Unique per provider.
    pub display_name: String,
    /// Free text.
    pub description: String,
    /// Identity claim; the provider's when absent.
    pub identity_claim: Option<String>,
    /// CEL filter; `true` when absent.
    pub filter: Option<String>,
}

/// The outcome of `PATCH …/{id}/jwks` (the hosted anchor's values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwksStatus {
    /// New keys were stored.
    Refreshed,
    /// The keys are unchanged.
    Ok,
    /// The JWKS URI is not a usable URL.
    InvalidJwksUri,
    /// Fetching or parsing failed; the stored keys stay.
    ErrorFetchingJwks,
}

impl JwksStatus {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            JwksStatus::Refreshed => "REFRESHED",
            JwksStatus::Ok => "OK",
            JwksStatus::InvalidJwksUri => "INVALID_JWKS_URI",
            JwksStatus::ErrorFetchingJwks => "ERROR_FETCHING_JWKS",
        }
    }
}

/// Why a token exchange was refused.
#[derive(Debug, thiserror::Error)]
pub enum StsError {
    /// A required field is missing or has the wrong value (RFC 6749 `invalid_request`).
    #[error("{0}")]
    InvalidRequest(String),
    /// Not the token-exchange grant.
    #[error("only urn:ietf:params:oauth:grant-type:token-exchange is supported")]
    UnsupportedGrantType,
    /// The subject token was not accepted (the reason is logged, not returned).
    #[error("the subject token was not accepted")]
    InvalidGrant(AuthError),
    /// No signing key exists (yet).
    #[error("the token service is not ready")]
    Unavailable,
}

/// A token exchange request (RFC 8693 form fields).
#[derive(Debug, Clone, Default)]
pub struct Exchange {
    /// `grant_type`
    pub grant_type: String,
    /// `subject_token`
    pub subject_token: String,
    /// `subject_token_type`
    pub subject_token_type: Option<String>,
    /// `requested_token_type`
    pub requested_token_type: Option<String>,
    /// `identity_pool_id`
    pub identity_pool_id: String,
    /// `expires_in`
    pub expires_in: Option<i64>,
}

/// An issued STS token.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The token.
    pub access_token: String,
    /// Its lifetime, seconds.
    pub expires_in: i64,
}

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

fn check_claim_path(pointer: &str, s: &str) -> Result<String> {
    let ok = s.strip_prefix("claims.").is_some_and(|rest| {
        !rest.is_empty()
            && s.len() <= 128
            && rest.split('.').all(|seg| {
                !seg.is_empty()
                    && seg
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == ':')
            })
    });
    if ok {
        Ok(s.to_owned())
    } else {
        Err(IamError::invalid(
            pointer,
            "must be a claim path such as claims.sub",
        ))
    }
}

fn check_url(pointer: &str, s: &str) -> Result<String> {
    let s = s.trim();
    if is_http_url(s) && s.len() <= 2048 {
        Ok(s.to_owned())
    } else {
        Err(IamError::invalid(
            pointer,
            "must be an http:// or https:// URL",
        ))
    }
}

fn check_filter(s: &str) -> Result<String> {
    Filter::compile(s)
        .map(|_| s.to_owned())
        .map_err(|e| IamError::invalid("/filter", e.to_string()))
}

impl Iam {
    fn provider_crn(&self, id: &str) -> CrnPattern {
        self.org_crn().child("identity-provider", id)
    }

    pub(crate) fn require_identity_admin(&self, c: &Caller, what: &str) -> Result<()> {
        self.require(c, Capability::ManageAccounts, &self.org_crn(), what)
    }

    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(Fetcher) -> T + Send + 'static,
    ) -> Result<T> {
        let fetcher = self.cfg.oauth.fetcher.clone();
        tokio::task::spawn_blocking(move || f(fetcher))
            .await
            .map_err(|e| IamError::Internal(format!("fetch task failed: {e}")))
    }

    // ---- identity providers ----------------------------------------------------------

    /// Register an identity provider (AccountAdmin or OrganizationAdmin). Its keys are
    /// fetched now; a provider whose keys cannot be fetched yet is still created (and
    /// authenticates nobody until a refresh succeeds).
    pub async fn create_provider(&self, c: &Caller, n: NewProvider) -> Result<IdentityProvider> {
        let name = check_name("/display_name", &n.display_name)?;
        let description = check_description("/description", &n.description)?;
        let issuer = check_url("/issuer", &n.issuer)?;
        let identity_claim = check_claim_path(
            "/identity_claim",
            n.identity_claim.as_deref().unwrap_or("claims.sub"),
        )?;
        let given = n
            .jwks_uri
            .as_deref()
            .filter(|u| !u.trim().is_empty())
            .map(|u| check_url("/jwks_uri", u))
            .transpose()?;
        self.require_identity_admin(c, "manage identity providers")?;
        let jwks_uri = match given {
            Some(u) => u,
            None => {
                let iss = issuer.clone();
                self.blocking(move |f| f.discover_jwks_uri(&iss))
                    .await?
                    .map_err(|e| {
                        IamError::invalid(
                            "/jwks_uri",
                            format!("not given, and discovery from the issuer failed: {e}"),
                        )
                    })?
            }
        };
        let uri = jwks_uri.clone();
        let (jwks, fetched_at) = match self.blocking(move |f| f.jwks(&uri)).await? {
            Ok(set) => (set.to_document().to_string(), Some(Utc::now())),
            Err(e) => {
                tracing::warn!(issuer = %issuer, error = %e, "could not fetch the new provider's JWKS");
                (String::new(), None)
            }
        };
        let now = Utc::now();
        let p = with_fresh_id(|| {
            let p = IdentityProvider {
                id: IdKind::IdentityProvider.generate(&mut OsRng),
                display_name: name.clone(),
                description: description.clone(),
                issuer: issuer.clone(),
                jwks_uri: jwks_uri.clone(),
                identity_claim: identity_claim.clone(),
                enabled: true,
                jwks: jwks.clone(),
                jwks_fetched_at: fetched_at,
                created_at: now,
                updated_at: now,
                certificate: None,
            };
            let store = self.store.clone();
            let rec = self.change(
                c,
                "CreateIdentityProvider",
                "IdentityProvider",
                self.provider_crn(&p.id).to_string(),
            );
            async move { store.create_provider(p.clone(), &rec).await.map(|_| p) }
        })
        .await?;
        self.settle().await;
        Ok(p)
    }

    /// Every OAuth provider (certificate authorities have their own listing).
    pub async fn list_providers(&self, _c: &Caller) -> Result<Vec<IdentityProvider>> {
        let mut all = self.store.list_providers().await?;
        all.retain(|p| p.certificate.is_none());
        Ok(all)
    }

    /// One OAuth provider.
    pub async fn get_provider(&self, _c: &Caller, id: &str) -> Result<IdentityProvider> {
        self.oauth_provider(id).await
    }

    /// The OAuth provider `id`: a certificate authority's id is not found here.
    async fn oauth_provider(&self, id: &str) -> Result<IdentityProvider> {
        let p = self.store.get_provider(id).await?;
        if p.certificate.is_some() {
            return Err(IamError::NotFound("identity provider", id.to_owned()));
        }
        Ok(p)
    }

    /// Update a provider's name, description, issuer, JWKS URI, identity claim or state.
    pub async fn update_provider(
        &self,
        c: &Caller,
        id: &str,
        mut patch: Patch,
    ) -> Result<IdentityProvider> {
        if let Some(v) = &patch.display_name {
            patch.display_name = Some(check_name("/display_name", v)?);
        }
        if let Some(v) = &patch.description {
            patch.description = Some(check_description("/description", v)?);
        }
        if let Some(v) = &patch.issuer {
            patch.issuer = Some(check_url("/issuer", v)?);
        }
        if let Some(v) = &patch.jwks_uri {
            patch.jwks_uri = Some(check_url("/jwks_uri", v)?);
        }
        if let Some(v) = &patch.identity_claim {
            patch.identity_claim = Some(check_claim_path("/identity_claim", v)?);
        }
        self.oauth_provider(id).await?;
        self.require_identity_admin(c, "manage identity providers")?;
        let uri_changed = patch.jwks_uri.is_some();
        let rec = self.change(
            c,
            "UpdateIdentityProvider",
            "IdentityProvider",
            self.provider_crn(id).to_string(),
        );
        self.store
            .update_provider(id, patch, Utc::now(), &rec)
            .await?;
        if uri_changed {
            self.refresh_jwks(id).await?;
        }
        self.settle().await;
        Ok(self.store.get_provider(id).await?)
    }

    /// Delete a provider with its pools and their grants.
    pub async fn delete_provider(&self, c: &Caller, id: &str) -> Result<()> {
        self.oauth_provider(id).await?;
        self.require_identity_admin(c, "manage identity providers")?;
        let rec = self.change(
            c,
            "DeleteIdentityProvider",
            "IdentityProvider",
            self.provider_crn(id).to_string(),
        );
        self.store.delete_provider(id, &rec).await?;
        self.settle().await;
        Ok(())
    }

    /// `PATCH …/{id}/jwks`: fetch the provider's keys now.
    pub async fn refresh_provider_jwks(
        &self,
        c: &Caller,
        id: &str,
    ) -> Result<(IdentityProvider, JwksStatus)> {
        self.oauth_provider(id).await?;
        self.require_identity_admin(c, "manage identity providers")?;
        let status = self.refresh_jwks(id).await?;
        Ok((self.store.get_provider(id).await?, status))
    }

    /// Fetch a provider's keys and store them if they changed.
    pub async fn refresh_jwks(&self, id: &str) -> Result<JwksStatus> {
        let p = self.store.get_provider(id).await?;
        if !is_http_url(&p.jwks_uri) {
            return Ok(JwksStatus::InvalidJwksUri);
        }
        let uri = p.jwks_uri.clone();
        let status = match self.blocking(move |f| f.jwks(&uri)).await? {
            Ok(set) => {
                let changed = self
                    .store
                    .set_provider_jwks(
                        id,
                        set.to_document().to_string(),
                        Utc::now(),
                        &self
                            .change_by(
                                None,
                                "RefreshIdentityProviderKeys",
                                "IdentityProvider",
                                self.provider_crn(id).to_string(),
                            )
                            .result(
                                keygate_audit::status::SUCCESS,
                                Some(format!("{} signing keys", set.keys.len())),
                            ),
                    )
                    .await?;
                if changed {
                    tracing::info!(provider = %id, keys = set.keys.len(), "identity provider keys refreshed");
                    JwksStatus::Refreshed
                } else {
                    JwksStatus::Ok
                }
            }
            Err(FetchError::InvalidUri(_)) => JwksStatus::InvalidJwksUri,
            Err(e) => {
                tracing::warn!(provider = %id, error = %e, "JWKS refresh failed; keeping the stored keys");
                JwksStatus::ErrorFetchingJwks
            }
        };
        self.settle().await;
        Ok(status)
    }

    /// Refresh every provider's keys (the periodic refresh: keys removed at the IdP
    /// stop working).
    pub async fn refresh_all_jwks(&self) {
        let providers = match self.store.list_providers().await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "could not list identity providers");
                return;
            }
        };
        for p in providers.iter().filter(|p| p.certificate.is_none()) {
            if let Err(e) = self.refresh_jwks(&p.id).await {
                tracing::warn!(provider = %p.id, error = %e, "JWKS refresh failed");
            }
        }
    }

    // ---- identity pools -----------------------------------------------------------------

    fn pool_in<'p>(provider_id: &str, p: &'p IdentityPool) -> Result<&'p IdentityPool> {
        if p.provider_id == provider_id {
            Ok(p)
        } else {
            Err(IamError::NotFound("identity pool", p.id.clone()))
        }
    }

    /// Create a pool of a provider.
    pub async fn create_pool(
        &self,
        c: &Caller,
        provider_id: &str,
        n: NewPool,
    ) -> Result<IdentityPool> {
        let name = check_name("/display_name", &n.display_name)?;
        let description = check_description("/description", &n.description)?;
        let filter = check_filter(n.filter.as_deref().unwrap_or("true"))?;
        let provider = self.oauth_provider(provider_id).await?;
        let identity_claim = check_claim_path(
            "/identity_claim",
            n.identity_claim
                .as_deref()
                .unwrap_or(&provider.identity_claim),
        )?;
        self.require_identity_admin(c, "manage identity pools")?;
        let now = Utc::now();
        let p = with_fresh_id(|| {
            let p = IdentityPool {
                id: IdKind::IdentityPool.generate(&mut OsRng),
                provider_id: provider_id.to_owned(),
                display_name: name.clone(),
                description: description.clone(),
                identity_claim: identity_claim.clone(),
                filter: filter.clone(),
                enabled: true,
                created_at: now,
                updated_at: now,
            };
            let store = self.store.clone();
            let rec = self.change(
                c,
                "CreateIdentityPool",
                "IdentityPool",
                self.identity_pool_crn(provider_id, &p.id),
            );
            async move { store.create_pool(p.clone(), &rec).await.map(|_| p) }
        })
        .await?;
        self.settle().await;
        Ok(p)
    }

    /// The pools of a provider.
    pub async fn list_pools(&self, _c: &Caller, provider_id: &str) -> Result<Vec<IdentityPool>> {
        self.oauth_provider(provider_id).await?;
        Ok(self.store.list_pools(provider_id).await?)
    }

    /// One pool of a provider.
    pub async fn get_pool(&self, _c: &Caller, provider_id: &str, id: &str) -> Result<IdentityPool> {
        self.oauth_provider(provider_id).await?;
        let p = self.store.get_pool(id).await?;
        Self::pool_in(provider_id, &p)?;
        Ok(p)
    }

    /// Whether a token with `claims` (JSON) would act as the pool: the pool and the
    /// verdict, or why the claims or the filter cannot be evaluated. The filter is
    /// compiled here, as for real tokens, so no front door evaluates CEL itself.
    pub async fn test_pool_filter(
        &self,
        c: &Caller,
        provider_id: &str,
        id: &str,
        claims: &str,
    ) -> Result<(IdentityPool, std::result::Result<bool, String>)> {
        let pool = self.get_pool(c, provider_id, id).await?;
        let verdict = match serde_json::from_str::<serde_json::Value>(claims) {
            Err(e) => Err(format!("the claims are not JSON: {e}")),
            Ok(claims) => keygate_oauth::Filter::compile(&pool.filter)
                .map(|f| f.matches(&claims))
                .map_err(|e| format!("the pool's filter does not compile: {e}")),
        };
        Ok((pool, verdict))
    }

    /// Update a pool's name, description, identity claim, filter or state.
    pub async fn update_pool(
        &self,
        c: &Caller,
        provider_id: &str,
        id: &str,
        mut patch: Patch,
    ) -> Result<IdentityPool> {
        if let Some(v) = &patch.display_name {
            patch.display_name = Some(check_name("/display_name", v)?);
        }
        if let Some(v) = &patch.description {
            patch.description = Some(check_description("/description", v)?);
        }
        if let Some(v) = &patch.identity_claim {
            patch.identity_claim = Some(check_claim_path("/identity_claim", v)?);
        }
        if let Some(v) = &patch.filter {
            patch.filter = Some(check_filter(v)?);
        }
        patch.issuer = None;
        patch.jwks_uri = None;
        self.oauth_provider(provider_id).await?;
        let p = self.store.get_pool(id).await?;
        Self::pool_in(provider_id, &p)?;
        self.require_identity_admin(c, "manage identity pools")?;
        let rec = self.change(
            c,
            "UpdateIdentityPool",
            "IdentityPool",
            self.identity_pool_crn(provider_id, id),
        );
        let p = self.store.update_pool(id, patch, Utc::now(), &rec).await?;
        self.settle().await;
        Ok(p)
    }

    /// Delete a pool and its grants.
    pub async fn delete_pool(&self, c: &Caller, provider_id: &str, id: &str) -> Result<()> {
        self.oauth_provider(provider_id).await?;
        let p = self.store.get_pool(id).await?;
        Self::pool_in(provider_id, &p)?;
        self.require_identity_admin(c, "manage identity pools")?;
        let rec = self.change(
            c,
            "DeleteIdentityPool",
            "IdentityPool",
            self.identity_pool_crn(provider_id, id),
        );
        self.store.delete_pool(id, &rec).await?;
        self.settle().await;
        Ok(())
    }

    // ---- authentication with tokens ----------------------------------------------------

    /// Authenticate a token: an IdP token (for `pool`, or every matching pool) or,
    /// when `accept_sts`, one of keygate's STS tokens. A token naming a key id its
    /// provider does not publish (yet) triggers one rate-limited refresh, then one
    /// retry.
    pub async fn authenticate_token(
        &self,
        token: &str,
        pool: Option<&str>,
        accept_sts: bool,
    ) -> std::result::Result<Identity, AuthError> {
        let now = Utc::now().timestamp();
        let first = self
            .snapshot()
            .oauth()
            .directory
            .authenticate(token, pool, now, accept_sts);
        let Err(AuthError::UnknownKey { provider_id, kid }) = first else {
            return first;
        };
        if !self.may_refresh_for_unknown_key(&provider_id) {
            return Err(AuthError::UnknownKey { provider_id, kid });
        }
        tracing::info!(provider = %provider_id, kid = %kid, "unknown key id: refreshing the provider's JWKS");
        if let Err(e) = self.refresh_jwks(&provider_id).await {
            tracing::warn!(provider = %provider_id, error = %e, "JWKS refresh failed");
        }
        self.snapshot().oauth().directory.authenticate(
            token,
            pool,
            Utc::now().timestamp(),
            accept_sts,
        )
    }

    fn may_refresh_for_unknown_key(&self, provider_id: &str) -> bool {
        let Ok(mut last) = self.unknown_key_refreshes.lock() else {
            return false;
        };
        let now = Instant::now();
        match last.get(provider_id) {
            Some(t) if now.duration_since(*t) < self.cfg.oauth.unknown_key_refresh_interval => {
                false
            }
            _ => {
                last.insert(provider_id.to_owned(), now);
                true
            }
        }
    }

    /// Authenticate a REST caller by an STS token (`Authorization: Bearer`).
    pub async fn authenticate_bearer(&self, token: &str) -> std::result::Result<Caller, AuthError> {
        let id = self.authenticate_token(token, None, true).await?;
        if !id.sts {
            // IdP tokens are exchanged first; the REST API accepts only keygate's.
            return Err(AuthError::UnknownIssuer);
        }
        let pool = id.pools.into_iter().next().ok_or(AuthError::NoPoolClaim)?;
        Ok(Caller {
            principal: Principal::user(pool.clone()),
            account_id: pool,
            key_id: None,
            mechanism: "HTTP_BEARER",
            client_address: None,
            request: None,
        })
    }

    // ---- STS ----------------------------------------------------------------------------

    /// RFC 8693 token exchange: an IdP token for a keygate access token for one pool.
    pub async fn exchange(&self, x: Exchange) -> std::result::Result<Issued, StsError> {
        if x.grant_type != TOKEN_EXCHANGE {
            return Err(StsError::UnsupportedGrantType);
        }
        if x.subject_token.is_empty() {
            return Err(StsError::InvalidRequest("subject_token is required".into()));
        }
        if x.identity_pool_id.is_empty() {
            return Err(StsError::InvalidRequest(
                "identity_pool_id is required".into(),
            ));
        }
        if x.subject_token_type
            .as_deref()
            .is_some_and(|t| t != JWT_TYPE && t != ACCESS_TOKEN_TYPE)
        {
            return Err(StsError::InvalidRequest(format!(
                "subject_token_type must be {JWT_TYPE}"
            )));
        }
        if x.requested_token_type
            .as_deref()
            .is_some_and(|t| t != ACCESS_TOKEN_TYPE)
        {
            return Err(StsError::InvalidRequest(format!(
                "requested_token_type must be {ACCESS_TOKEN_TYPE}"
            )));
        }
        let lifetime = x.expires_in.unwrap_or(MAX_STS_LIFETIME_SECS);
        if !(1..=MAX_STS_LIFETIME_SECS).contains(&lifetime) {
            return Err(StsError::InvalidRequest(format!(
                "expires_in must be between 1 and {MAX_STS_LIFETIME_SECS}"
            )));
        }
        let id = self
            .authenticate_token(&x.subject_token, Some(&x.identity_pool_id), false)
            .await
            .map_err(StsError::InvalidGrant)?;
        let now = Utc::now().timestamp();
        // Never outlive the subject token.
        let lifetime = lifetime.min(id.expires_at - now).max(1);
        let oauth = self.snapshot().oauth();
        let signer = oauth.signer.as_ref().ok_or(StsError::Unavailable)?;
        let mut jti = [0u8; 16];
        OsRng.fill_bytes(&mut jti);
        let jti: String = jti.iter().map(|b| format!("{b:02x}")).collect();
        let token = signer
            .issue(
                oauth.directory.sts_issuer(),
                &x.identity_pool_id,
                &id.subject,
                &self.org().id,
                now,
                lifetime,
                &jti,
            )
            .ok_or(StsError::Unavailable)?;
        Ok(Issued {
            access_token: token,
            expires_in: lifetime,
        })
    }

    /// Make sure a signing key exists and rotate on schedule: a new key signs once the
    /// newest is older than the rotation period; keys superseded longer than the
    /// longest token lifetime ago are retired.
    pub async fn maintain_signing_keys(&self) -> Result<()> {
        let now = Utc::now();
        let keys = self.store.list_signing_keys().await?;
        let live: Vec<&SigningKey> = keys.iter().filter(|k| k.retired_at.is_none()).collect();
        let rotation = chrono::Duration::from_std(self.cfg.oauth.sts_key_rotation)
            .unwrap_or(chrono::Duration::days(1));
        let newest = live.iter().map(|k| k.created_at).max();
        if newest.is_none_or(|t| now - t >= rotation) {
            self.add_signing_key(None, false).await?;
        } else if let Some(newest) = newest {
            let grace = chrono::Duration::seconds(MAX_STS_LIFETIME_SECS + 60);
            if now - newest > grace {
                let rec = self.change_by(
                    None,
                    "RetireSigningKeys",
                    "SigningKey",
                    self.org_crn().child("sts-signing-key", "*").to_string(),
                );
                let n = self.store.retire_signing_keys(newest, now, &rec).await?;
                if n > 0 {
                    tracing::info!(retired = n, "superseded STS signing keys retired");
                }
            }
        }
        self.settle().await;
        Ok(())
    }

    async fn add_signing_key(&self, by: Option<&Caller>, retire_others: bool) -> Result<String> {
        let mut raw = [0u8; 8];
        OsRng.fill_bytes(&mut raw);
        let kid = format!(
            "kgk-{}",
            raw.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        self.store
            .add_signing_key(
                SigningKey {
                    kid: kid.clone(),
                    created_at: Utc::now(),
                    retired_at: None,
                },
                retire_others,
                &self
                    .change_by(
                        by,
                        "RotateSigningKey",
                        "SigningKey",
                        self.org_crn().child("sts-signing-key", &kid).to_string(),
                    )
                    .result(
                        keygate_audit::status::SUCCESS,
                        retire_others.then(|| "every earlier key retired".to_owned()),
                    ),
            )
            .await?;
        tracing::info!(kid = %kid, retire_others, "new STS signing key");
        Ok(kid)
    }

    /// Rotate the STS signing key now (OrganizationAdmin); with `retire_previous`,
    /// every token signed so far stops working at once (a suspected compromise).
    pub async fn rotate_signing_key(&self, c: &Caller, retire_previous: bool) -> Result<String> {
        self.require(
            c,
            Capability::GrantRoles,
            &self.org_crn(),
            "rotate the token signing key",
        )?;
        let kid = self.add_signing_key(Some(c), retire_previous).await?;
        self.settle().await;
        Ok(kid)
    }

    /// The provider's CRN (for API metadata).
    pub fn identity_provider_crn(&self, id: &str) -> String {
        self.provider_crn(id).to_string()
    }

    /// A pool's CRN (for API metadata).
    pub fn identity_pool_crn(&self, provider_id: &str, id: &str) -> String {
        self.provider_crn(provider_id)
            .child("identity-pool", id)
            .to_string()
    }
}
