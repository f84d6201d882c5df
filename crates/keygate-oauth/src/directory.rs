//! Who a token stands for: the providers, pools and STS keys of one snapshot, and
//! the authentication rule shared by the gateway (OAUTHBEARER) and the REST API
//! (Bearer).

use std::collections::HashMap;

use serde_json::Value;

use crate::filter::Filter;
use crate::jwks::Jwks;
use crate::token::{claim_at, peek, verify_peeked, TokenError};

/// An identity provider as the directory needs it.
#[derive(Debug, Clone)]
pub struct ProviderEntry {
    /// `op-…`
    pub id: String,
    /// Exact `iss` of its tokens.
    pub issuer: String,
    /// Its keys (as last fetched).
    pub jwks: Jwks,
    /// Disabled providers authenticate nobody.
    pub enabled: bool,
}

/// An identity pool as the directory needs it.
#[derive(Debug, Clone)]
pub struct PoolEntry {
    /// `pool-…`
    pub id: String,
    /// Its provider.
    pub provider_id: String,
    /// Path of the claim naming the external identity (`claims.sub`).
    pub identity_claim: String,
    /// Which tokens belong to the pool.
    pub filter: Filter,
    /// Disabled pools match nothing.
    pub enabled: bool,
}

/// Why a token did not authenticate (for the log; clients see one message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The token itself failed a check.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// No provider has the token's issuer.
    #[error("no identity provider has this issuer")]
    UnknownIssuer,
    /// The token's key id is not in its provider's JWKS: refresh, then retry once.
    #[error("key `{kid}` is not in the JWKS of {provider_id}")]
    UnknownKey {
        /// The provider to refresh.
        provider_id: String,
        /// The key id the token names.
        kid: String,
    },
    /// The provider is disabled.
    #[error("identity provider {0} is disabled")]
    ProviderDisabled(String),
    /// The named pool does not exist.
    #[error("identity pool {0} does not exist")]
    PoolNotFound(String),
    /// The named pool belongs to another provider.
    #[error("identity pool {0} belongs to another provider")]
    PoolOfOtherProvider(String),
    /// The named pool is disabled.
    #[error("identity pool {0} is disabled")]
    PoolDisabled(String),
    /// The token lacks the pool's identity claim.
    #[error("the token has no identity claim {0}")]
    MissingIdentityClaim(String),
    /// The named pool's filter does not match the token.
    #[error("the filter of identity pool {0} does not match")]
    FilterFalse(String),
    /// No pool was named and none matches.
    #[error("no identity pool matches the token")]
    NoPoolMatches,
    /// An STS token without a valid `pool` claim.
    #[error("the STS token names no pool")]
    NoPoolClaim,
}

/// Who a token authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The pools it acts as (`pool-…`); their permissions are united.
    pub pools: Vec<String>,
    /// The external identity (the identity claim's value).
    pub subject: String,
    /// When the token expires (seconds since the epoch).
    pub expires_at: i64,
    /// Whether this is one of keygate's own STS tokens.
    pub sts: bool,
}

/// Providers, pools and STS keys of one snapshot.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    providers: HashMap<String, ProviderEntry>,
    by_issuer: HashMap<String, String>,
    pools: HashMap<String, PoolEntry>,
    sts_issuer: String,
    sts_keys: Jwks,
    skew_secs: i64,
}

impl Directory {
    /// A directory; `sts_issuer` is keygate's own issuer (its public URL), whose
    /// tokens verify against `sts_keys`.
    pub fn new(
        providers: impl IntoIterator<Item = ProviderEntry>,
        pools: impl IntoIterator<Item = PoolEntry>,
        sts_issuer: String,
        sts_keys: Jwks,
        skew_secs: i64,
    ) -> Self {
        let providers: HashMap<String, ProviderEntry> =
            providers.into_iter().map(|p| (p.id.clone(), p)).collect();
        let by_issuer = providers
            .values()
            .map(|p| (p.issuer.clone(), p.id.clone()))
            .collect();
        Directory {
            providers,
            by_issuer,
            pools: pools.into_iter().map(|p| (p.id.clone(), p)).collect(),
            sts_issuer,
            sts_keys,
            skew_secs,
        }
    }

    /// keygate's issuer.
    pub fn sts_issuer(&self) -> &str {
        &self.sts_issuer
    }

    /// keygate's verification keys (published at `/.well-known/jwks.json`).
    pub fn sts_keys(&self) -> &Jwks {
        &self.sts_keys
    }

    /// A pool.
    pub fn pool(&self, id: &str) -> Option<&PoolEntry> {
        self.pools.get(id)
    }

    /// Whether a pool exists, is enabled and its provider is too (open sessions of
    /// a pool end when this turns false).
    pub fn pool_active(&self, id: &str) -> bool {
        self.pools.get(id).is_some_and(|p| {
            p.enabled
                && self
                    .providers
                    .get(&p.provider_id)
                    .is_some_and(|pr| pr.enabled)
        })
    }

    /// Authenticate an external IdP token (optionally for one named pool) or, when
    /// `accept_sts`, one of keygate's STS tokens, at `now`.
    pub fn authenticate(
        &self,
        token: &str,
        pool: Option<&str>,
        now: i64,
        accept_sts: bool,
    ) -> Result<Identity, AuthError> {
        let p = peek(token)?;
        let iss = p
            .claims
            .get("iss")
            .and_then(Value::as_str)
            .ok_or(TokenError::WrongIssuer)?;
        if accept_sts && iss == self.sts_issuer {
            let claims = verify_peeked(
                token,
                &p,
                &self.sts_keys,
                &self.sts_issuer,
                now,
                self.skew_secs,
            )?;
            return self.sts_identity(&claims, pool);
        }
        let provider_id = self.by_issuer.get(iss).ok_or(AuthError::UnknownIssuer)?;
        let provider = &self.providers[provider_id];
        if !provider.enabled {
            return Err(AuthError::ProviderDisabled(provider.id.clone()));
        }
        let claims = verify_peeked(
            token,
            &p,
            &provider.jwks,
            &provider.issuer,
            now,
            self.skew_secs,
        )
        .map_err(|e| match e {
            TokenError::UnknownKey(kid) => AuthError::UnknownKey {
                provider_id: provider.id.clone(),
                kid,
            },
            other => AuthError::Token(other),
        })?;
        let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(now);
        let check = |pool: &PoolEntry| -> Result<String, AuthError> {
            if pool.provider_id != provider.id {
                return Err(AuthError::PoolOfOtherProvider(pool.id.clone()));
            }
            if !pool.enabled {
                return Err(AuthError::PoolDisabled(pool.id.clone()));
            }
            let subject = claim_at(&claims, &pool.identity_claim)
                .ok_or_else(|| AuthError::MissingIdentityClaim(pool.identity_claim.clone()))?;
            if !pool.filter.matches(&claims) {
                return Err(AuthError::FilterFalse(pool.id.clone()));
            }
            Ok(subject.into_owned())
        };
        match pool {
            Some(id) => {
                let entry = self
                    .pools
                    .get(id)
                    .ok_or_else(|| AuthError::PoolNotFound(id.to_owned()))?;
                let subject = check(entry)?;
                Ok(Identity {
                    pools: vec![id.to_owned()],
                    subject,
                    expires_at: exp,
                    sts: false,
                })
            }
            None => {
                let mut pools: Vec<(&String, String)> = self
                    .pools
                    .values()
                    .filter(|p| p.provider_id == provider.id)
                    .filter_map(|p| check(p).ok().map(|s| (&p.id, s)))
                    .collect();
                pools.sort();
                let subject = pools.first().ok_or(AuthError::NoPoolMatches)?.1.clone();
                Ok(Identity {
                    pools: pools.into_iter().map(|(id, _)| id.clone()).collect(),
                    subject,
                    expires_at: exp,
                    sts: false,
                })
            }
        }
    }

    fn sts_identity(&self, claims: &Value, pool: Option<&str>) -> Result<Identity, AuthError> {
        let pool_id = claims
            .get("pool")
            .and_then(Value::as_str)
            .ok_or(AuthError::NoPoolClaim)?;
        if pool.is_some_and(|p| p != pool_id) {
            return Err(AuthError::PoolNotFound(pool.unwrap_or_default().to_owned()));
        }
        let entry = self
            .pools
            .get(pool_id)
            .ok_or_else(|| AuthError::PoolNotFound(pool_id.to_owned()))?;
        if !entry.enabled {
            return Err(AuthError::PoolDisabled(pool_id.to_owned()));
        }
        match self.providers.get(&entry.provider_id) {
            Some(p) if p.enabled => {}
            _ => return Err(AuthError::ProviderDisabled(entry.provider_id.clone())),
        }
        Ok(Identity {
            pools: vec![pool_id.to_owned()],
            subject: claims
                .get("sub")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            expires_at: claims.get("exp").and_then(Value::as_i64).unwrap_or(0),
            sts: true,
        })
    }
}
