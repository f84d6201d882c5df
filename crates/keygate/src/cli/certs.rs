//! `keygate iam certificate-authority …` and `keygate iam certificate-pool …`:
//! certificate identities (mTLS), in the hosted CLI's verbs.

use super::client;
use super::client::enc;
use super::oauth::set;
use super::output::{print_done, print_list, print_object, Col, Format};
use anyhow::Context;
use clap::Subcommand;
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub(crate) enum AuthorityCmd {
    /// Register a certificate authority: client certificates it signed can
    /// authenticate (security.protocol=SSL) as the pools they match.
    Create {
        /// Name.
        name: String,
        /// PEM file with the signing certificate chain.
        #[arg(long)]
        certificate_chain: PathBuf,
        #[arg(long, default_value = "")]
        description: String,
        /// PEM file with the CRL of revoked client certificates.
        #[arg(long)]
        crl_file: Option<PathBuf>,
        /// Where the CRL is published (recorded).
        #[arg(long)]
        crl_url: Option<String>,
    },
    /// List certificate authorities.
    List,
    /// Describe one (fingerprints, expiration dates, serial numbers).
    Describe { id: String },
    /// Update one: name, description, chain or CRL (a new CRL applies at once).
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        certificate_chain: Option<PathBuf>,
        #[arg(long)]
        crl_file: Option<PathBuf>,
        #[arg(long)]
        crl_url: Option<String>,
    },
    /// Delete one with its pools and their role bindings and ACLs.
    Delete { id: String },
}

#[derive(Debug, Subcommand)]
pub(crate) enum CertPoolCmd {
    /// Create a certificate identity pool: the authority's certificates passing a CEL
    /// filter over CN, O, OU, C, L, ST, DC, UID, EMAIL, SERIAL_NUMBER, SAN, ISSUER.
    Create {
        /// Name.
        name: String,
        /// The certificate authority (op-…).
        #[arg(long)]
        provider: String,
        /// The certificate field naming the identity in audit records (CN, UID, …).
        #[arg(long)]
        external_identifier: String,
        /// CEL filter, e.g. "CN == 'orders-app' && O == 'Acme'".
        #[arg(long)]
        filter: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List the pools of a certificate authority.
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
        external_identifier: Option<String>,
        #[arg(long)]
        filter: Option<String>,
    },
    /// Delete a pool with its role bindings and ACLs.
    Delete {
        id: String,
        #[arg(long)]
        provider: String,
    },
}

const AUTHORITY_COLS: &[Col] = &[
    ("ID", "/id"),
    ("Name", "/display_name"),
    ("Certificate Chain Filename", "/certificate_chain_filename"),
    ("Fingerprints", "/fingerprints"),
    ("Expiration Dates", "/expiration_dates"),
    ("CRL Source", "/crl_source"),
    ("State", "/state"),
];
const POOL_COLS: &[Col] = &[
    ("ID", "/id"),
    ("Name", "/display_name"),
    ("Principal", "/principal"),
    ("External Identifier", "/external_identifier"),
    ("Filter", "/filter"),
];

fn read(p: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub(crate) fn authority(c: AuthorityCmd, fmt: Format) -> anyhow::Result<()> {
    let cl = client()?;
    let base = "/iam/v2/certificate-authorities";
    let path = |id: &str| format!("{base}/{}", enc(id));
    match c {
        AuthorityCmd::Create {
            name,
            certificate_chain,
            description,
            crl_file,
            crl_url,
        } => {
            let mut body = json!({
                "display_name": name,
                "description": description,
                "certificate_chain": read(&certificate_chain)?,
                "certificate_chain_filename": file_name(&certificate_chain),
            });
            set(
                &mut body,
                "crl_chain",
                crl_file.as_deref().map(read).transpose()?,
            );
            set(&mut body, "crl_url", crl_url);
            print_object(fmt, &cl.post(base, &body)?, AUTHORITY_COLS)
        }
        AuthorityCmd::List => print_list(fmt, &cl.get_all(base)?, AUTHORITY_COLS),
        AuthorityCmd::Describe { id } => print_object(fmt, &cl.get(&path(&id))?, AUTHORITY_COLS),
        AuthorityCmd::Update {
            id,
            name,
            description,
            certificate_chain,
            crl_file,
            crl_url,
        } => {
            let mut body = json!({});
            set(&mut body, "display_name", name);
            set(&mut body, "description", description);
            if let Some(chain) = certificate_chain {
                body["certificate_chain"] = json!(read(&chain)?);
                body["certificate_chain_filename"] = json!(file_name(&chain));
            }
            set(
                &mut body,
                "crl_chain",
                crl_file.as_deref().map(read).transpose()?,
            );
            set(&mut body, "crl_url", crl_url);
            print_object(fmt, &cl.put(&path(&id), &body)?, AUTHORITY_COLS)
        }
        AuthorityCmd::Delete { id } => {
            cl.delete(&path(&id))?;
            print_done(
                fmt,
                &format!("Deleted certificate authority \"{id}\"."),
                &json!({"id": id, "deleted": true}),
            )
        }
    }
}

pub(crate) fn pool(c: CertPoolCmd, fmt: Format) -> anyhow::Result<()> {
    let cl = client()?;
    let base = |p: &str| format!("/iam/v2/certificate-authorities/{}/identity-pools", enc(p));
    match c {
        CertPoolCmd::Create {
            name,
            provider,
            external_identifier,
            filter,
            description,
        } => {
            let body = json!({"display_name": name, "description": description,
                "external_identifier": external_identifier, "filter": filter});
            print_object(fmt, &cl.post(&base(&provider), &body)?, POOL_COLS)
        }
        CertPoolCmd::List { provider } => {
            print_list(fmt, &cl.get_all(&base(&provider))?, POOL_COLS)
        }
        CertPoolCmd::Describe { id, provider } => print_object(
            fmt,
            &cl.get(&format!("{}/{}", base(&provider), enc(&id)))?,
            POOL_COLS,
        ),
        CertPoolCmd::Update {
            id,
            provider,
            name,
            description,
            external_identifier,
            filter,
        } => {
            let mut body = json!({});
            set(&mut body, "display_name", name);
            set(&mut body, "description", description);
            set(&mut body, "external_identifier", external_identifier);
            set(&mut body, "filter", filter);
            print_object(
                fmt,
                &cl.put(&format!("{}/{}", base(&provider), enc(&id)), &body)?,
                POOL_COLS,
            )
        }
        CertPoolCmd::Delete { id, provider } => {
            cl.delete(&format!("{}/{}", base(&provider), enc(&id)))?;
            print_done(
                fmt,
                &format!("Deleted certificate identity pool \"{id}\"."),
                &json!({"id": id, "deleted": true}),
            )
        }
    }
}
