//! Certificate identities (mTLS client authentication), as the hosted model offers
//! them: certificate authorities, and certificate identity pools whose CEL filter
//! selects the client certificates a pool stands for (`CN == 'orders-app' && O ==
//! 'Acme'`). A client presenting such a certificate authenticates with
//! `security.protocol=SSL` and no SASL, as the principal `User:pool-…` of every pool
//! it matches — the same principal, role-binding and ACL model as OAuth pools.
//!
//! A certificate authority is stored as an identity provider whose `certificate` is
//! set (its issuer is an internal name no token carries, its JWKS empty) and its pools
//! as identity pools (`identity_claim` holds the external identifier): one store, one
//! follower, one set of pool principals for both kinds. The OAuth and the certificate
//! front doors each see only their own kind.
//!
//! [`CertificateDirectory`] is the compiled form in the snapshot: the trust anchors
//! and CRLs the gateway's TLS verifier uses (rebuilt when [`CertificateDirectory::version`]
//! changes), and [`CertificateDirectory::identify`], which maps a verified client
//! certificate to its pools.

use crate::service::{check_description, check_name, with_fresh_id};
use crate::{Caller, Iam, IamError, Result};
use chrono::{DateTime, Utc};
use keygate_core::model::{CertificateAuthority, IdentityPool, IdentityProvider};
use keygate_core::{IdKind, Principal};
use keygate_oauth::Filter;
use keygate_store::Patch;
use rand::rngs::OsRng;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};
use serde_json::{Map, Value};
use sha1::{Digest, Sha1};
use x509_parser::prelude::*;

/// The fields of a client certificate a filter can read, and an external identifier
/// can name.
pub const FIELDS: &[&str] = &[
    "CN",
    "O",
    "OU",
    "C",
    "L",
    "ST",
    "DC",
    "UID",
    "EMAIL",
    "SERIAL_NUMBER",
    "SAN",
    "ISSUER",
];

/// A pool as the directory needs it.
#[derive(Debug, Clone)]
struct CertPool {
    id: String,
    external_identifier: String,
    filter: Filter,
}

/// One authority: the subjects of its chain (to recognise what it signed) and its
/// enabled pools.
#[derive(Debug, Clone)]
struct Authority {
    id: String,
    subjects: Vec<Vec<u8>>,
    pools: Vec<CertPool>,
}

/// Who a verified client certificate is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertIdentity {
    /// The pools it matches (`pool-…`), as principals they are `User:pool-…`.
    pub pools: Vec<String>,
    /// The value of the first matching pool's external identifier (for the audit log).
    pub external_id: String,
    /// The certificate's expiry (Unix seconds): the session ends there.
    pub not_after: i64,
}

impl CertIdentity {
    /// The principals of the session.
    pub fn principals(&self) -> Vec<Principal> {
        self.pools
            .iter()
            .map(|p| Principal::user(p.clone()))
            .collect()
    }
}

/// Why a certificate does not authenticate (for the log and the audit record).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertAuthError {
    /// Not a certificate X.509 parsing accepts.
    #[error("the client certificate does not parse")]
    Unparsable,
    /// No certificate authority signed it.
    #[error("no certificate authority of keygate issued this certificate")]
    UnknownIssuer,
    /// Its authority has no pool whose filter it passes.
    #[error("the certificate matches no certificate identity pool of {0}")]
    NoPool(String),
}

/// The compiled certificate authorities and pools.
#[derive(Debug, Clone, Default)]
pub struct CertificateDirectory {
    authorities: Vec<Authority>,
    /// Trust anchors: every certificate of every authority's chain.
    pub roots: Vec<CertificateDer<'static>>,
    /// Revocation lists of the authorities.
    pub crls: Vec<CertificateRevocationListDer<'static>>,
    /// Changes whenever `roots` or `crls` do.
    pub version: u64,
}

impl CertificateDirectory {
    /// Compile the certificate authorities among `providers` and their pools.
    pub fn build(providers: &[IdentityProvider], pools: &[IdentityPool]) -> Self {
        let mut dir = CertificateDirectory::default();
        let mut digest = Sha1::new();
        for p in providers.iter().filter(|p| p.enabled) {
            let Some(ca) = &p.certificate else { continue };
            let chain: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(ca.chain_pem.as_bytes())
                    .filter_map(std::result::Result::ok)
                    .collect();
            let subjects = chain
                .iter()
                .filter_map(|c| X509Certificate::from_der(c).ok())
                .map(|(_, c)| c.subject().as_raw().to_vec())
                .collect();
            for c in &chain {
                digest.update(c.as_ref());
            }
            dir.roots.extend(chain);
            if let Some(crl) = &ca.crl_pem {
                for c in CertificateRevocationListDer::pem_slice_iter(crl.as_bytes())
                    .filter_map(std::result::Result::ok)
                {
                    digest.update(c.as_ref());
                    dir.crls.push(c);
                }
            }
            let pools = pools
                .iter()
                .filter(|pool| pool.provider_id == p.id && pool.enabled)
                .filter_map(|pool| {
                    Some(CertPool {
                        id: pool.id.clone(),
                        external_identifier: pool.identity_claim.clone(),
                        filter: Filter::compile(&pool.filter).ok()?,
                    })
                })
                .collect();
            dir.authorities.push(Authority {
                id: p.id.clone(),
                subjects,
                pools,
            });
        }
        let d = digest.finalize();
        dir.version = u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]);
        dir
    }

    /// Whether any certificate authority is configured.
    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    /// The pools a client certificate (already verified by TLS against [`Self::roots`]
    /// and [`Self::crls`]) belongs to.
    pub fn identify(&self, leaf: &[u8]) -> std::result::Result<CertIdentity, CertAuthError> {
        let (_, cert) = X509Certificate::from_der(leaf).map_err(|_| CertAuthError::Unparsable)?;
        let issuer = cert.issuer().as_raw();
        let authority = self
            .authorities
            .iter()
            .find(|a| a.subjects.iter().any(|s| s.as_slice() == issuer))
            .ok_or(CertAuthError::UnknownIssuer)?;
        let fields = fields(&cert);
        let matching: Vec<&CertPool> = authority
            .pools
            .iter()
            .filter(|p| p.filter.matches_fields(&fields))
            .collect();
        let first = matching
            .first()
            .ok_or_else(|| CertAuthError::NoPool(authority.id.clone()))?;
        let external_id = match fields.get(&first.external_identifier) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(a)) => a.first().and_then(Value::as_str).unwrap_or("").to_owned(),
            _ => String::new(),
        };
        Ok(CertIdentity {
            pools: matching.iter().map(|p| p.id.clone()).collect(),
            external_id,
            not_after: cert.validity().not_after.timestamp(),
        })
    }
}

/// The fields of [`FIELDS`] a certificate has: subject attributes as strings (the
/// first of each), `SAN` as a list, `SERIAL_NUMBER` in hex, `ISSUER` as text.
fn fields(cert: &X509Certificate<'_>) -> Map<String, Value> {
    let mut m = Map::new();
    let subject = cert.subject();
    let mut put = |k: &str, v: Option<&str>| {
        if let Some(v) = v {
            m.entry(k.to_owned())
                .or_insert_with(|| Value::String(v.to_owned()));
        }
    };
    let first = |it: &mut dyn Iterator<Item = &AttributeTypeAndValue<'_>>| {
        it.next().and_then(|a| a.as_str().ok().map(str::to_owned))
    };
    put("CN", first(&mut subject.iter_common_name()).as_deref());
    put("O", first(&mut subject.iter_organization()).as_deref());
    put(
        "OU",
        first(&mut subject.iter_organizational_unit()).as_deref(),
    );
    put("C", first(&mut subject.iter_country()).as_deref());
    put("L", first(&mut subject.iter_locality()).as_deref());
    put(
        "ST",
        first(&mut subject.iter_state_or_province()).as_deref(),
    );
    let by_oid = |oid: &str| {
        subject
            .iter_attributes()
            .find(|a| a.attr_type().to_id_string() == oid)
            .and_then(|a| a.as_str().ok().map(str::to_owned))
    };
    put("DC", by_oid("0.9.2342.19200300.100.1.25").as_deref());
    put("EMAIL", first(&mut subject.iter_email()).as_deref());
    // userId, which x509-parser has no accessor for.
    put("UID", by_oid("0.9.2342.19200300.100.1.1").as_deref());
    m.insert(
        "SERIAL_NUMBER".into(),
        Value::String(cert.raw_serial_as_string().replace(':', "").to_uppercase()),
    );
    m.insert("ISSUER".into(), Value::String(cert.issuer().to_string()));
    let sans: Vec<Value> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(d) => Some(Value::String((*d).to_owned())),
                    GeneralName::RFC822Name(e) => Some(Value::String((*e).to_owned())),
                    GeneralName::URI(u) => Some(Value::String((*u).to_owned())),
                    GeneralName::IPAddress(ip) => ip_text(ip).map(Value::String),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    m.insert("SAN".into(), Value::Array(sans));
    m
}

fn ip_text(raw: &[u8]) -> Option<String> {
    match raw.len() {
        4 => Some(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(raw).ok()?).to_string()),
        16 => Some(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(raw).ok()?).to_string()),
        _ => None,
    }
}

/// What the REST API shows of a chain: per certificate, its SHA-1 fingerprint, expiry
/// and serial number (upper-case hex, as the hosted API).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainFacts {
    /// SHA-1 of each certificate's DER.
    pub fingerprints: Vec<String>,
    /// `notAfter` of each.
    pub expiration_dates: Vec<DateTime<Utc>>,
    /// Serial of each.
    pub serial_numbers: Vec<String>,
}

/// The facts of a PEM chain, or why it is not one.
pub fn chain_facts(pem: &str) -> std::result::Result<ChainFacts, String> {
    let mut facts = ChainFacts::default();
    for der in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let der = der.map_err(|e| format!("not PEM: {e}"))?;
        let (_, cert) = X509Certificate::from_der(&der)
            .map_err(|e| format!("not an X.509 certificate: {e}"))?;
        facts
            .fingerprints
            .push(hex_upper(&Sha1::digest(der.as_ref())));
        facts.expiration_dates.push(
            DateTime::from_timestamp(cert.validity().not_after.timestamp(), 0).unwrap_or_default(),
        );
        facts.serial_numbers.push(hex_upper(cert.raw_serial()));
    }
    if facts.fingerprints.is_empty() {
        return Err("holds no PEM certificate".into());
    }
    Ok(facts)
}

/// A fetched CRL as PEM (CRLs are published as DER or PEM); an error when it holds none.
fn crl_pem(body: &[u8]) -> std::result::Result<String, String> {
    use base64::Engine as _;
    let pem = if body.starts_with(b"-----BEGIN") {
        String::from_utf8_lossy(body).into_owned()
    } else {
        let b64 = base64::engine::general_purpose::STANDARD.encode(body);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        format!(
            "-----BEGIN X509 CRL-----\n{}\n-----END X509 CRL-----\n",
            lines.join("\n")
        )
    };
    let parsed = CertificateRevocationListDer::pem_slice_iter(pem.as_bytes())
        .filter_map(std::result::Result::ok)
        .filter(|c| x509_parser::revocation_list::CertificateRevocationList::from_der(c).is_ok())
        .count();
    if parsed == 0 {
        return Err("the URL does not serve a CRL (DER or PEM)".into());
    }
    Ok(pem)
}

fn hex_upper(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

/// A new certificate authority, as the REST API receives it.
#[derive(Debug, Clone, Default)]
pub struct NewAuthority {
    /// Name (unique among identity providers).
    pub display_name: String,
    /// Free text.
    pub description: String,
    /// PEM chain.
    pub certificate_chain: String,
    /// Its file name.
    pub certificate_chain_filename: String,
    /// PEM CRL.
    pub crl_chain: Option<String>,
    /// CRL URL (recorded).
    pub crl_url: Option<String>,
}

/// Changes to a certificate authority; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct AuthorityPatch {
    /// New name.
    pub display_name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New chain (with its file name).
    pub certificate_chain: Option<(String, String)>,
    /// New CRL.
    pub crl_chain: Option<String>,
    /// New CRL URL.
    pub crl_url: Option<String>,
}

/// A new certificate pool.
#[derive(Debug, Clone, Default)]
pub struct NewCertPool {
    /// Name (unique per authority).
    pub display_name: String,
    /// Free text.
    pub description: String,
    /// The certificate field naming the identity in audit records (`CN`, `UID`, …).
    pub external_identifier: String,
    /// CEL over the certificate's fields.
    pub filter: String,
}

fn check_chain(pem: &str) -> Result<()> {
    chain_facts(pem)
        .map(drop)
        .map_err(|e| IamError::invalid("/certificate_chain", e))
}

fn check_crl(pem: &str) -> Result<()> {
    let n = CertificateRevocationListDer::pem_slice_iter(pem.as_bytes())
        .filter(std::result::Result::is_ok)
        .count();
    if n == 0 {
        return Err(IamError::invalid("/crl_chain", "holds no PEM CRL"));
    }
    Ok(())
}

fn check_external_identifier(s: &str) -> Result<String> {
    let s = s.trim().to_ascii_uppercase();
    if FIELDS.contains(&s.as_str()) {
        Ok(s)
    } else {
        Err(IamError::invalid(
            "/external_identifier",
            format!("must be one of {}", FIELDS.join(", ")),
        ))
    }
}

fn check_cert_filter(s: &str) -> Result<String> {
    Filter::compile(s)
        .map(|_| s.to_owned())
        .map_err(|e| IamError::invalid("/filter", e.to_string()))
}

impl Iam {
    /// The CRN of a certificate authority.
    pub fn certificate_authority_crn(&self, id: &str) -> String {
        self.org_crn()
            .child("certificate-authority", id)
            .to_string()
    }

    /// The CRN of a certificate identity pool.
    pub fn certificate_pool_crn(&self, ca: &str, id: &str) -> String {
        self.org_crn()
            .child("certificate-authority", ca)
            .child("identity-pool", id)
            .to_string()
    }

    /// A certificate authority (not found: an OAuth provider's id is not one).
    pub async fn get_certificate_authority(
        &self,
        _c: &Caller,
        id: &str,
    ) -> Result<IdentityProvider> {
        let p = self.store.get_provider(id).await?;
        if p.certificate.is_none() {
            return Err(IamError::NotFound("certificate authority", id.to_owned()));
        }
        Ok(p)
    }

    /// Every certificate authority.
    pub async fn list_certificate_authorities(&self, _c: &Caller) -> Result<Vec<IdentityProvider>> {
        let mut all = self.store.list_providers().await?;
        all.retain(|p| p.certificate.is_some());
        Ok(all)
    }

    /// Register a certificate authority (AccountAdmin or OrganizationAdmin).
    pub async fn create_certificate_authority(
        &self,
        c: &Caller,
        n: NewAuthority,
    ) -> Result<IdentityProvider> {
        let name = check_name("/display_name", &n.display_name)?;
        let description = check_description("/description", &n.description)?;
        check_chain(&n.certificate_chain)?;
        if let Some(crl) = &n.crl_chain {
            check_crl(crl)?;
        }
        self.require_identity_admin(c, "manage certificate authorities")?;
        let now = Utc::now();
        let p = with_fresh_id(|| {
            let id = IdKind::IdentityProvider.generate(&mut OsRng);
            let p = IdentityProvider {
                issuer: IdentityProvider::certificate_issuer(&id),
                id,
                display_name: name.clone(),
                description: description.clone(),
                jwks_uri: String::new(),
                identity_claim: "CN".into(),
                enabled: true,
                jwks: String::new(),
                jwks_fetched_at: None,
                created_at: now,
                updated_at: now,
                certificate: Some(CertificateAuthority {
                    chain_pem: n.certificate_chain.clone(),
                    chain_filename: n.certificate_chain_filename.clone(),
                    crl_pem: n.crl_chain.clone(),
                    crl_url: n.crl_url.clone(),
                    crl_updated_at: n.crl_chain.as_ref().map(|_| now),
                }),
            };
            let store = self.store.clone();
            let rec = self.change(
                c,
                "CreateCertificateAuthority",
                "CertificateAuthority",
                self.certificate_authority_crn(&p.id),
            );
            async move { store.create_provider(p.clone(), &rec).await.map(|_| p) }
        })
        .await?;
        self.settle().await;
        Ok(p)
    }

    /// Change a certificate authority (a new chain, CRL, name or description).
    pub async fn update_certificate_authority(
        &self,
        c: &Caller,
        id: &str,
        patch: AuthorityPatch,
    ) -> Result<IdentityProvider> {
        let mut p = self.get_certificate_authority(c, id).await?;
        if let Some(n) = &patch.display_name {
            p.display_name = check_name("/display_name", n)?;
        }
        if let Some(d) = &patch.description {
            p.description = check_description("/description", d)?;
        }
        let now = Utc::now();
        let ca = p
            .certificate
            .get_or_insert_with(CertificateAuthority::default);
        if let Some((chain, file)) = &patch.certificate_chain {
            check_chain(chain)?;
            ca.chain_pem = chain.clone();
            ca.chain_filename = file.clone();
        }
        if let Some(crl) = &patch.crl_chain {
            check_crl(crl)?;
            ca.crl_pem = Some(crl.clone());
            ca.crl_updated_at = Some(now);
        }
        if let Some(url) = &patch.crl_url {
            ca.crl_url = Some(url.clone());
        }
        self.require_identity_admin(c, "manage certificate authorities")?;
        let rec = self.change(
            c,
            "UpdateCertificateAuthority",
            "CertificateAuthority",
            self.certificate_authority_crn(id),
        );
        self.store
            .update_provider(
                id,
                Patch {
                    display_name: Some(p.display_name.clone()),
                    description: Some(p.description.clone()),
                    certificate: p.certificate.clone(),
                    ..Patch::default()
                },
                now,
                &rec,
            )
            .await?;
        self.settle().await;
        self.get_certificate_authority(c, id).await
    }

    /// Fetch the CRL of every certificate authority that publishes one at a URL (the
    /// periodic refresh, beside the JWKS refresh). A changed list is stored — through
    /// the change log, so every instance's gateway verifies against it — and applies
    /// to the next handshakes; a failed fetch keeps the list in force.
    pub async fn refresh_crls(&self) {
        let Ok(all) = self.store.list_providers().await else {
            return;
        };
        for p in all {
            let Some(ca) = p.certificate.clone() else {
                continue;
            };
            let Some(url) = ca.crl_url.clone() else {
                continue;
            };
            let fetched = self.blocking(move |f| f.bytes(&url)).await;
            let pem = match fetched {
                Ok(Ok(body)) => crl_pem(&body),
                Ok(Err(e)) => Err(e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            let pem = match pem {
                Ok(pem) => pem,
                Err(e) => {
                    tracing::warn!(authority = %p.id, error = %e, "CRL refresh failed; keeping the list in force");
                    continue;
                }
            };
            if ca.crl_pem.as_deref() == Some(pem.as_str()) {
                continue;
            }
            let now = Utc::now();
            let rec = self
                .change_by(
                    None,
                    "RefreshCertificateAuthorityCrl",
                    "CertificateAuthority",
                    self.certificate_authority_crn(&p.id),
                )
                .result(
                    keygate_audit::status::SUCCESS,
                    Some("revocation list refreshed".into()),
                );
            let certificate = CertificateAuthority {
                crl_pem: Some(pem),
                crl_updated_at: Some(now),
                ..ca
            };
            let patch = Patch {
                certificate: Some(certificate),
                ..Patch::default()
            };
            match self.store.update_provider(&p.id, patch, now, &rec).await {
                Ok(_) => tracing::info!(authority = %p.id, "certificate revocation list refreshed"),
                Err(e) => {
                    tracing::warn!(authority = %p.id, error = %e, "could not store the refreshed CRL")
                }
            }
        }
        self.settle().await;
    }

    /// Delete a certificate authority, its pools and their grants; returns what it was.
    pub async fn delete_certificate_authority(
        &self,
        c: &Caller,
        id: &str,
    ) -> Result<IdentityProvider> {
        let p = self.get_certificate_authority(c, id).await?;
        self.require_identity_admin(c, "manage certificate authorities")?;
        let rec = self.change(
            c,
            "DeleteCertificateAuthority",
            "CertificateAuthority",
            self.certificate_authority_crn(id),
        );
        self.store.delete_provider(id, &rec).await?;
        self.settle().await;
        Ok(p)
    }

    fn cert_pool_of(ca: &str, p: IdentityPool) -> Result<IdentityPool> {
        if p.provider_id == ca {
            Ok(p)
        } else {
            Err(IamError::NotFound("certificate identity pool", p.id))
        }
    }

    /// Create a pool of a certificate authority.
    pub async fn create_certificate_pool(
        &self,
        c: &Caller,
        ca: &str,
        n: NewCertPool,
    ) -> Result<IdentityPool> {
        let name = check_name("/display_name", &n.display_name)?;
        let description = check_description("/description", &n.description)?;
        let external_identifier = check_external_identifier(&n.external_identifier)?;
        let filter = check_cert_filter(&n.filter)?;
        self.get_certificate_authority(c, ca).await?;
        self.require_identity_admin(c, "manage certificate identity pools")?;
        let now = Utc::now();
        let p = with_fresh_id(|| {
            let p = IdentityPool {
                id: IdKind::IdentityPool.generate(&mut OsRng),
                provider_id: ca.to_owned(),
                display_name: name.clone(),
                description: description.clone(),
                identity_claim: external_identifier.clone(),
                filter: filter.clone(),
                enabled: true,
                created_at: now,
                updated_at: now,
            };
            let store = self.store.clone();
            let rec = self.change(
                c,
                "CreateCertificateIdentityPool",
                "CertificateIdentityPool",
                self.certificate_pool_crn(ca, &p.id),
            );
            async move { store.create_pool(p.clone(), &rec).await.map(|_| p) }
        })
        .await?;
        self.settle().await;
        Ok(p)
    }

    /// The pools of a certificate authority.
    pub async fn list_certificate_pools(&self, c: &Caller, ca: &str) -> Result<Vec<IdentityPool>> {
        self.get_certificate_authority(c, ca).await?;
        Ok(self.store.list_pools(ca).await?)
    }

    /// One pool of a certificate authority.
    pub async fn get_certificate_pool(
        &self,
        c: &Caller,
        ca: &str,
        id: &str,
    ) -> Result<IdentityPool> {
        self.get_certificate_authority(c, ca).await?;
        Self::cert_pool_of(ca, self.store.get_pool(id).await?)
    }

    /// Change a pool's name, description, external identifier or filter.
    pub async fn update_certificate_pool(
        &self,
        c: &Caller,
        ca: &str,
        id: &str,
        n: NewCertPool,
    ) -> Result<IdentityPool> {
        self.get_certificate_pool(c, ca, id).await?;
        let patch = Patch {
            display_name: Some(n.display_name.clone())
                .filter(|s| !s.is_empty())
                .map(|s| check_name("/display_name", &s))
                .transpose()?,
            description: Some(n.description.clone())
                .filter(|s| !s.is_empty())
                .map(|s| check_description("/description", &s))
                .transpose()?,
            identity_claim: Some(n.external_identifier.clone())
                .filter(|s| !s.is_empty())
                .map(|s| check_external_identifier(&s))
                .transpose()?,
            filter: Some(n.filter.clone())
                .filter(|s| !s.is_empty())
                .map(|s| check_cert_filter(&s))
                .transpose()?,
            ..Patch::default()
        };
        self.require_identity_admin(c, "manage certificate identity pools")?;
        let rec = self.change(
            c,
            "UpdateCertificateIdentityPool",
            "CertificateIdentityPool",
            self.certificate_pool_crn(ca, id),
        );
        let p = self.store.update_pool(id, patch, Utc::now(), &rec).await?;
        self.settle().await;
        Ok(p)
    }

    /// Delete a pool and its grants; returns what it was.
    pub async fn delete_certificate_pool(
        &self,
        c: &Caller,
        ca: &str,
        id: &str,
    ) -> Result<IdentityPool> {
        let p = self.get_certificate_pool(c, ca, id).await?;
        self.require_identity_admin(c, "manage certificate identity pools")?;
        let rec = self.change(
            c,
            "DeleteCertificateIdentityPool",
            "CertificateIdentityPool",
            self.certificate_pool_crn(ca, id),
        );
        self.store.delete_pool(id, &rec).await?;
        self.settle().await;
        Ok(p)
    }
}
