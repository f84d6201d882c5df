//! Saved CLI contexts: server URL and credentials, plus secrets of other keys saved
//! with `api-key store` / `create`. One JSON file, mode 0600, at `$KEYGATE_CLI_CONFIG`
//! or `~/.config/keygate/cli.json`.

use anyhow::{anyhow, Context as _};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct CliConfig {
    pub(crate) current: Option<String>,
    #[serde(default)]
    pub(crate) contexts: BTreeMap<String, Context>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Context {
    pub(crate) url: String,
    pub(crate) api_key: String,
    pub(crate) api_secret: String,
    /// Secrets of resource keys, by key id.
    #[serde(default)]
    pub(crate) stored_keys: BTreeMap<String, StoredKey>,
    /// The key in use per resource (`api-key use`).
    #[serde(default)]
    pub(crate) active_keys: BTreeMap<String, String>,
    /// The environment in use (`environment use`): `--current-environment` and
    /// commands that need an environment default to it.
    #[serde(default)]
    pub(crate) environment: Option<String>,
    /// The service account in use (`iam service-account use`): `api-key create`
    /// makes keys for it unless told otherwise.
    #[serde(default)]
    pub(crate) service_account: Option<String>,
    /// The Kafka cluster in use (`kafka cluster use`): `kafka acl` defaults to it.
    #[serde(default)]
    pub(crate) kafka_cluster: Option<String>,
}

/// A value of the current context, if logged in and set.
pub(crate) fn in_use(pick: impl Fn(&Context) -> Option<String>) -> Option<String> {
    CliConfig::load().ok()?.current().ok().and_then(pick)
}

/// Change the current context and save it.
pub(crate) fn set_in_use(change: impl FnOnce(&mut Context)) -> anyhow::Result<()> {
    let mut cfg = CliConfig::load()?;
    change(cfg.current_mut()?);
    cfg.save()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct StoredKey {
    pub(crate) secret: String,
    #[serde(default)]
    pub(crate) resource: Option<String>,
}

pub(crate) fn path() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("KEYGATE_CLI_CONFIG") {
        return Ok(PathBuf::from(p));
    }
    let home = std::env::var_os("HOME")
        .ok_or_else(|| anyhow!("HOME is not set; set KEYGATE_CLI_CONFIG"))?;
    Ok(PathBuf::from(home).join(".config/keygate/cli.json"))
}

impl CliConfig {
    pub(crate) fn load() -> anyhow::Result<Self> {
        let p = path()?;
        match std::fs::read_to_string(&p) {
            Ok(t) => serde_json::from_str(&t).with_context(|| format!("parsing {}", p.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CliConfig::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
        }
    }

    /// Write atomically with mode 0600 (the file holds secrets).
    pub(crate) fn save(&self) -> anyhow::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let p = path()?;
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let tmp = p.with_extension("tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(serde_json::to_string_pretty(self)?.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &p).with_context(|| format!("writing {}", p.display()))?;
        Ok(())
    }

    pub(crate) fn current(&self) -> anyhow::Result<&Context> {
        let name = self.current.as_ref().ok_or_else(|| {
            anyhow!("not logged in: run `keygate login --url … --api-key … --api-secret …`")
        })?;
        self.contexts
            .get(name)
            .ok_or_else(|| anyhow!("context `{name}` is missing; log in again"))
    }

    pub(crate) fn current_mut(&mut self) -> anyhow::Result<&mut Context> {
        let name = self
            .current
            .clone()
            .ok_or_else(|| anyhow!("not logged in"))?;
        self.contexts
            .get_mut(&name)
            .ok_or_else(|| anyhow!("context `{name}` is missing; log in again"))
    }
}
