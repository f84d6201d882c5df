//! `keygate iam provider …` and `keygate iam pool …`: external OAuth identity
//! providers and their identity pools.

use super::client;
use super::client::enc;
use super::output::{print_done, print_list, print_object, Col, Format};
use clap::Subcommand;
use serde_json::{json, Value};

#[derive(Debug, Subcommand)]
pub(crate) enum ProviderCmd {
    /// Register an identity provider; its keys are fetched at once.
    Create {
        /// Display name (the hosted CLI's positional NAME).
        #[arg(required_unless_present = "name")]
        display_name: Option<String>,
        #[arg(long, conflicts_with = "display_name")]
        name: Option<String>,
        /// Exact issuer (`iss`) of its tokens.
        #[arg(long, alias = "issuer-uri")]
        issuer: String,
        /// JWKS URI [default: discovered from the issuer's OpenID configuration]
        #[arg(long)]
        jwks_uri: Option<String>,
        /// Default identity claim of its pools [default: claims.sub]
        #[arg(long)]
        identity_claim: Option<String>,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List identity providers.
    List,
    /// Describe an identity provider (with its current public keys).
    Describe { id: String },
    /// Update an identity provider.
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        issuer: Option<String>,
        #[arg(long)]
        jwks_uri: Option<String>,
        #[arg(long)]
        identity_claim: Option<String>,
        /// ENABLED or DISABLED
        #[arg(long)]
        state: Option<String>,
    },
    /// Delete an identity provider with its pools and their role bindings and ACLs.
    Delete { id: String },
    /// Fetch the provider's keys now (REFRESHED, OK, INVALID_JWKS_URI or ERROR_FETCHING_JWKS).
    RefreshKeys { id: String },
}

#[derive(Debug, Subcommand)]
pub(crate) enum PoolCmd {
    /// Create an identity pool: the provider's tokens that pass a CEL filter.
    Create {
        #[arg(long)]
        provider: String,
        #[arg(long)]
        name: String,
        /// Claim naming the external identity [default: the provider's]
        #[arg(long)]
        identity_claim: Option<String>,
        /// CEL over `claims`, e.g. 'claims.aud == "kafka"' [default: true]
        #[arg(long)]
        filter: Option<String>,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List the pools of a provider.
    List {
        #[arg(long)]
        provider: String,
    },
    /// Describe a pool.
    Describe {
        id: String,
        #[arg(long)]
        provider: String,
    },
    /// Update a pool.
    Update {
        id: String,
        #[arg(long)]
        provider: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        identity_claim: Option<String>,
        #[arg(long)]
        filter: Option<String>,
        /// ENABLED or DISABLED
        #[arg(long)]
        state: Option<String>,
    },
    /// Delete a pool with its role bindings and ACLs.
    Delete {
        id: String,
        #[arg(long)]
        provider: String,
    },
}

const PROVIDER_COLS: &[Col] = &[
    ("ID", "/id"),
    ("Name", "/display_name"),
    ("Issuer", "/issuer"),
    ("JWKS URI", "/jwks_uri"),
    ("Identity Claim", "/identity_claim"),
    ("State", "/state"),
];
const POOL_COLS: &[Col] = &[
    ("ID", "/id"),
    ("Name", "/display_name"),
    ("Principal", "/principal"),
    ("Identity Claim", "/identity_claim"),
    ("Filter", "/filter"),
    ("State", "/state"),
];

/// Put `v` into `body[field]` when given.
pub(super) fn set(body: &mut Value, field: &str, v: Option<String>) {
    if let Some(v) = v {
        body[field] = json!(v);
    }
}

pub(crate) fn provider(c: ProviderCmd, fmt: Format) -> anyhow::Result<()> {
    let cl = client()?;
    let path = |id: &str| format!("/iam/v2/identity-providers/{}", enc(id));
    match c {
        ProviderCmd::Create {
            display_name,
            name,
            issuer,
            jwks_uri,
            identity_claim,
            description,
        } => {
            let name = display_name.or(name).unwrap_or_default();
            let mut body =
                json!({"display_name": name, "issuer": issuer, "description": description});
            set(&mut body, "jwks_uri", jwks_uri);
            set(&mut body, "identity_claim", identity_claim);
            print_object(
                fmt,
                &cl.post("/iam/v2/identity-providers", &body)?,
                PROVIDER_COLS,
            )
        }
        ProviderCmd::List => print_list(
            fmt,
            &cl.get_all("/iam/v2/identity-providers")?,
            PROVIDER_COLS,
        ),
        ProviderCmd::Describe { id } => print_object(fmt, &cl.get(&path(&id))?, PROVIDER_COLS),
        ProviderCmd::Update {
            id,
            name,
            description,
            issuer,
            jwks_uri,
            identity_claim,
            state,
        } => {
            let mut body = json!({});
            set(&mut body, "display_name", name);
            set(&mut body, "description", description);
            set(&mut body, "issuer", issuer);
            set(&mut body, "jwks_uri", jwks_uri);
            set(&mut body, "identity_claim", identity_claim);
            set(&mut body, "state", state);
            print_object(fmt, &cl.patch(&path(&id), &body)?, PROVIDER_COLS)
        }
        ProviderCmd::Delete { id } => {
            cl.delete(&path(&id))?;
            print_done(
                fmt,
                &format!("Deleted identity provider \"{id}\"."),
                &json!({"id": id, "deleted": true}),
            )
        }
        ProviderCmd::RefreshKeys { id } => {
            let r = cl.patch(&format!("{}/jwks", path(&id)), &json!({}))?;
            let status = r["status"]["jwks_status"]
                .as_str()
                .unwrap_or("?")
                .to_owned();
            print_done(fmt, &format!("Keys of \"{id}\": {status}."), &r)
        }
    }
}

pub(crate) fn pool(c: PoolCmd, fmt: Format) -> anyhow::Result<()> {
    let cl = client()?;
    let base = |p: &str| format!("/iam/v2/identity-providers/{}/identity-pools", enc(p));
    match c {
        PoolCmd::Create {
            provider,
            name,
            identity_claim,
            filter,
            description,
        } => {
            let mut body = json!({"display_name": name, "description": description});
            set(&mut body, "identity_claim", identity_claim);
            set(&mut body, "filter", filter);
            print_object(fmt, &cl.post(&base(&provider), &body)?, POOL_COLS)
        }
        PoolCmd::List { provider } => print_list(fmt, &cl.get_all(&base(&provider))?, POOL_COLS),
        PoolCmd::Describe { id, provider } => print_object(
            fmt,
            &cl.get(&format!("{}/{}", base(&provider), enc(&id)))?,
            POOL_COLS,
        ),
        PoolCmd::Update {
            id,
            provider,
            name,
            description,
            identity_claim,
            filter,
            state,
        } => {
            let mut body = json!({});
            set(&mut body, "display_name", name);
            set(&mut body, "description", description);
            set(&mut body, "identity_claim", identity_claim);
            set(&mut body, "filter", filter);
            set(&mut body, "state", state);
            print_object(
                fmt,
                &cl.patch(&format!("{}/{}", base(&provider), enc(&id)), &body)?,
                POOL_COLS,
            )
        }
        PoolCmd::Delete { id, provider } => {
            cl.delete(&format!("{}/{}", base(&provider), enc(&id)))?;
            print_done(
                fmt,
                &format!("Deleted identity pool \"{id}\"."),
                &json!({"id": id, "deleted": true}),
            )
        }
    }
}
