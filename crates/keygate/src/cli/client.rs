//! A small blocking HTTP client for the REST API: HTTP Basic with the context's key,
//! JSON in and out, and the server's error detail as the error message.

use anyhow::{anyhow, bail};
use base64::Engine;
use serde_json::Value;
use std::time::Duration;

pub(crate) struct Client {
    agent: ureq::Agent,
    base: String,
    auth: String,
}

impl Client {
    pub(crate) fn new(url: &str, key: &str, secret: &str) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(30))
            .build();
        let auth = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{key}:{secret}"))
        );
        Client {
            agent,
            base: url.trim_end_matches('/').to_owned(),
            auth,
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let req = self
            .agent
            .request(method, &format!("{}{path}", self.base))
            .set("Authorization", &self.auth);
        let res = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        match res {
            Ok(r) if r.status() == 204 => Ok(Value::Null),
            Ok(r) => {
                let text = r.into_string()?;
                if text.trim().is_empty() {
                    Ok(Value::Null)
                } else {
                    Ok(serde_json::from_str(&text)?)
                }
            }
            Err(ureq::Error::Status(code, r)) => {
                let text = r.into_string().unwrap_or_default();
                let detail = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| {
                        v.pointer("/errors/0/detail")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    })
                    .unwrap_or(text);
                bail!("{detail} (HTTP {code})")
            }
            Err(ureq::Error::Transport(t)) => Err(anyhow!("cannot reach {}: {t}", self.base)),
        }
    }

    pub(crate) fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call("GET", path, None)
    }
    pub(crate) fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.call("POST", path, Some(body))
    }
    pub(crate) fn patch(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.call("PATCH", path, Some(body))
    }
    pub(crate) fn put(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.call("PUT", path, Some(body))
    }
    pub(crate) fn delete(&self, path: &str) -> anyhow::Result<Value> {
        self.call("DELETE", path, None)
    }

    /// Every item of a paged list.
    pub(crate) fn get_all(&self, path: &str) -> anyhow::Result<Vec<Value>> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut next = Some(format!("{path}{sep}page_size=100"));
        let mut out = Vec::new();
        while let Some(p) = next.take() {
            let page = self.get(&p)?;
            if let Some(items) = page.get("data").and_then(Value::as_array) {
                out.extend(items.iter().cloned());
            }
            next = page
                .pointer("/metadata/next")
                .and_then(Value::as_str)
                .map(|u| {
                    u.strip_prefix(&self.base)
                        .map(str::to_owned)
                        .unwrap_or_else(|| u.to_owned())
                })
                .filter(|u| u.starts_with('/'));
        }
        Ok(out)
    }
}

/// RFC 3986 unreserved characters stay; everything else is percent-encoded.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encode a query value.
pub(crate) fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, QUERY_VALUE).to_string()
}
