//! Fetching an identity provider's keys: OpenID discovery and the JWKS document.
//!
//! Blocking by design (ureq): callers run it on a blocking thread, beside the hot
//! path, never in it. Every fetch has a connect and an overall timeout and a size
//! limit, so a slow or hostile IdP cannot hold a thread or memory for long.

use std::io::Read as _;
use std::time::Duration;

use crate::jwks::{Jwks, JwksError, MAX_JWKS_BYTES};

/// Why a fetch failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// Not an http(s) URL.
    #[error("`{0}` is not an http or https URL")]
    InvalidUri(String),
    /// Connection, TLS, HTTP status or timeout.
    #[error("could not fetch {url}: {reason}")]
    Http {
        /// What was fetched.
        url: String,
        /// Why it failed.
        reason: String,
    },
    /// The discovery document has no `jwks_uri`.
    #[error("the OpenID configuration at {0} has no jwks_uri")]
    NoJwksUri(String),
    /// The document is not a usable key set.
    #[error(transparent)]
    Jwks(#[from] JwksError),
}

/// An HTTP client for IdP documents.
#[derive(Debug, Clone)]
pub struct Fetcher {
    agent: ureq::Agent,
}

impl Default for Fetcher {
    fn default() -> Self {
        Self::new(Duration::from_secs(2), Duration::from_secs(5))
    }
}

/// Whether `s` is an absolute http(s) URL with a host.
pub fn is_http_url(s: &str) -> bool {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or("");
        !host.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control())
    })
}

impl Fetcher {
    /// A client with these timeouts.
    pub fn new(connect: Duration, overall: Duration) -> Self {
        Fetcher {
            agent: ureq::AgentBuilder::new()
                .timeout_connect(connect)
                .timeout(overall)
                .redirects(2)
                .build(),
        }
    }

    fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        if !is_http_url(url) {
            return Err(FetchError::InvalidUri(url.chars().take(200).collect()));
        }
        let http = |reason: String| FetchError::Http {
            url: url.to_owned(),
            reason,
        };
        let resp = self
            .agent
            .get(url)
            .set("Accept", "application/json")
            .call()
            .map_err(|e| http(e.to_string()))?;
        let mut body = Vec::new();
        resp.into_reader()
            .take(MAX_JWKS_BYTES as u64 + 1)
            .read_to_end(&mut body)
            .map_err(|e| http(e.to_string()))?;
        if body.len() > MAX_JWKS_BYTES {
            return Err(FetchError::Jwks(JwksError::TooLarge));
        }
        Ok(body)
    }

    /// The `jwks_uri` of `issuer`'s OpenID configuration.
    pub fn discover_jwks_uri(&self, issuer: &str) -> Result<String, FetchError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let body = self.get(&url)?;
        let doc: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| FetchError::Http {
                url: url.clone(),
                reason: format!("not JSON: {e}"),
            })?;
        doc.get("jwks_uri")
            .and_then(serde_json::Value::as_str)
            .filter(|u| is_http_url(u))
            .map(str::to_owned)
            .ok_or(FetchError::NoJwksUri(url))
    }

    /// The bytes at `url` (a certificate revocation list), size-capped like a JWKS.
    pub fn bytes(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        self.get(url)
    }

    /// Fetch and parse a JWKS document; returns the parsed set and its public form.
    pub fn jwks(&self, uri: &str) -> Result<Jwks, FetchError> {
        let body = self.get(uri)?;
        Ok(Jwks::parse(&body)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(is_http_url("https://idp.example/jwks"));
        assert!(is_http_url("http://127.0.0.1:3000"));
        assert!(!is_http_url("file:///etc/passwd"));
        assert!(!is_http_url("https://"));
        assert!(!is_http_url("https://a b"));
        assert_eq!(
            Fetcher::default().jwks("ftp://x").err(),
            Some(FetchError::InvalidUri("ftp://x".into()))
        );
    }
}
