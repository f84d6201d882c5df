//! Confluent-style resource names: `crn://<authority>/organization=<id>/environment=env-…/
//! cloud-cluster=lkc-…/kafka=lkc-…/topic=orders`.
//!
//! A CRN names one thing; a [`CrnPattern`] is what role bindings carry: the same shape,
//! where the last value may end with `*` (a prefix match). A pattern *covers* a CRN
//! when its segments are a prefix of the CRN's segments: a binding at an environment
//! covers everything inside it, a binding at `topic=orders*` covers `topic=orders-eu`.

use std::fmt;

/// Segment keys keygate understands, in no particular order.
pub const KNOWN_KEYS: &[&str] = &[
    "organization",
    "environment",
    "cloud-cluster",
    "kafka",
    "topic",
    "group",
    "transactional-id",
    "schema-registry",
    "subject",
    "ksql",
    "flink-region",
    "compute-pool",
    "tableflow",
    "service-account",
    "user",
    "identity-provider",
    "identity-pool",
];

const MAX_LEN: usize = 2048;

/// Why a CRN or pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrnError {
    /// Does not start with `crn://`.
    #[error("a CRN must start with `crn://`")]
    Scheme,
    /// Empty authority or too long.
    #[error("a CRN needs an authority and at least one segment, at most {MAX_LEN} characters")]
    Shape,
    /// A segment without `=` or with an empty key/value.
    #[error("CRN segment `{0}` must be `key=value`")]
    Segment(String),
    /// A key keygate does not know.
    #[error("unknown CRN segment key `{0}`")]
    UnknownKey(String),
    /// A value with characters CRNs do not allow.
    #[error("CRN value `{0}` contains a character that is not allowed")]
    Value(String),
    /// A `*` somewhere other than the end of the last value.
    #[error("`*` is only allowed at the end of the last segment of a pattern")]
    Wildcard,
}

/// A parsed CRN pattern: an authority plus `key=value` segments; the last value may
/// end with `*`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CrnPattern {
    authority: String,
    segments: Vec<(String, String)>,
}

/// A CRN naming one resource: a pattern without a wildcard.
pub type Crn = CrnPattern;

fn valid_value(v: &str) -> bool {
    !v.is_empty()
        && v.chars()
            .all(|c| !c.is_control() && !c.is_whitespace() && c != '/' && c != '=')
}

impl CrnPattern {
    /// Parse a pattern (a trailing `*` on the last value is allowed).
    pub fn parse(s: &str) -> Result<Self, CrnError> {
        let rest = s.strip_prefix("crn://").ok_or(CrnError::Scheme)?;
        if s.len() > MAX_LEN {
            return Err(CrnError::Shape);
        }
        let mut parts = rest.split('/');
        let authority = parts
            .next()
            .filter(|a| valid_value(a))
            .ok_or(CrnError::Shape)?;
        let mut segments = Vec::new();
        for part in parts {
            let (k, v) = part
                .split_once('=')
                .filter(|(k, v)| !k.is_empty() && !v.is_empty())
                .ok_or_else(|| CrnError::Segment(part.chars().take(80).collect()))?;
            if !KNOWN_KEYS.contains(&k) {
                return Err(CrnError::UnknownKey(k.chars().take(40).collect()));
            }
            if !valid_value(v) {
                return Err(CrnError::Value(v.chars().take(80).collect()));
            }
            segments.push((k.to_owned(), v.to_owned()));
        }
        if segments.is_empty() {
            return Err(CrnError::Shape);
        }
        let last = segments.len() - 1;
        for (i, (_, v)) in segments.iter().enumerate() {
            let stars = v.matches('*').count();
            let ok = stars == 0 || (i == last && stars == 1 && v.ends_with('*'));
            if !ok {
                return Err(CrnError::Wildcard);
            }
        }
        Ok(CrnPattern {
            authority: authority.to_owned(),
            segments,
        })
    }

    /// Parse a CRN that must name one thing (no `*`).
    pub fn parse_exact(s: &str) -> Result<Crn, CrnError> {
        let p = Self::parse(s)?;
        if p.is_prefix() {
            return Err(CrnError::Wildcard);
        }
        Ok(p)
    }

    /// Start a CRN under `authority` at the organization.
    pub fn organization(authority: &str, org: &str) -> Self {
        CrnPattern {
            authority: authority.to_owned(),
            segments: vec![("organization".to_owned(), org.to_owned())],
        }
    }

    /// This CRN with one more segment. The caller guarantees key and value are valid
    /// (keys are constants; values are ids or validated names).
    pub fn child(&self, key: &str, value: &str) -> Self {
        let mut c = self.clone();
        c.segments.push((key.to_owned(), value.to_owned()));
        c
    }

    /// The authority (`keygate` by default).
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The `key=value` segments.
    pub fn segments(&self) -> &[(String, String)] {
        &self.segments
    }

    /// The value of the first segment with this key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.segments
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The keys, in order, joined with `/` (the pattern's *shape*).
    pub fn shape(&self) -> String {
        self.segments
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>()
            .join("/")
    }

    /// Whether the last value ends with `*`.
    pub fn is_prefix(&self) -> bool {
        self.segments.last().is_some_and(|(_, v)| v.ends_with('*'))
    }

    /// The last segment.
    pub fn last(&self) -> (&str, &str) {
        let (k, v) = &self.segments[self.segments.len() - 1];
        (k, v)
    }

    /// Whether this pattern covers `crn` (the same thing, or something inside it).
    pub fn covers(&self, crn: &CrnPattern) -> bool {
        if self.authority != crn.authority || self.segments.len() > crn.segments.len() {
            return false;
        }
        let last = self.segments.len() - 1;
        self.segments
            .iter()
            .zip(&crn.segments)
            .enumerate()
            .all(|(i, ((pk, pv), (ck, cv)))| {
                pk == ck
                    && match pv.strip_suffix('*') {
                        Some(prefix) if i == last => cv.starts_with(prefix),
                        _ => pv == cv,
                    }
            })
    }
}

impl fmt::Display for CrnPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "crn://{}", self.authority)?;
        for (k, v) in &self.segments {
            write!(f, "/{k}={v}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for CrnPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> CrnPattern {
        CrnPattern::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn coverage_by_segment_and_prefix() {
        let topic = p("crn://keygate/organization=o/environment=env-a/cloud-cluster=lkc-1/kafka=lkc-1/topic=orders-eu");
        assert!(p("crn://keygate/organization=o").covers(&topic));
        assert!(p("crn://keygate/organization=o/environment=env-a").covers(&topic));
        assert!(!p("crn://keygate/organization=o/environment=env-b").covers(&topic));
        assert!(p("crn://keygate/organization=o/environment=env-a/cloud-cluster=lkc-1/kafka=lkc-1/topic=orders*").covers(&topic));
        assert!(!p("crn://keygate/organization=o/environment=env-a/cloud-cluster=lkc-1/kafka=lkc-1/topic=orders").covers(&topic));
        assert!(!p("crn://keygate/organization=o/environment=env-a/cloud-cluster=lkc-1/kafka=lkc-1/group=orders*").covers(&topic));
        assert!(!p("crn://other/organization=o").covers(&topic));
        // A prefix star only applies to the last segment of the pattern.
        assert!(!p("crn://keygate/organization=o/environment=env*")
            .covers(&p("crn://keygate/organization=o")));
        assert!(p("crn://keygate/organization=o/environment=env*").covers(&topic));
    }

    #[test]
    fn rejects_malformed() {
        for (s, e) in [
            ("http://x/organization=o", CrnError::Scheme),
            ("crn://", CrnError::Shape),
            ("crn://keygate", CrnError::Shape),
            (
                "crn://keygate/organization",
                CrnError::Segment("organization".into()),
            ),
            (
                "crn://keygate/planet=earth",
                CrnError::UnknownKey("planet".into()),
            ),
            (
                "crn://keygate/organization=o*/environment=e",
                CrnError::Wildcard,
            ),
            ("crn://keygate/organization=o/topic=a*b", CrnError::Wildcard),
            (
                "crn://keygate/organization=o/topic=a b",
                CrnError::Value("a b".into()),
            ),
        ] {
            assert_eq!(CrnPattern::parse(s), Err(e), "{s}");
        }
        assert_eq!(
            CrnPattern::parse_exact("crn://k/organization=o/topic=x*"),
            Err(CrnError::Wildcard)
        );
    }

    fn value() -> impl Strategy<Value = String> {
        "[A-Za-z0-9._:-]{1,12}"
    }

    proptest! {
        #[test]
        fn parse_print_round_trip(
            authority in "[a-z][a-z0-9.]{0,15}",
            segs in proptest::collection::vec((proptest::sample::select(KNOWN_KEYS), value()), 1..6),
            star in any::<bool>(),
        ) {
            let mut s = format!("crn://{authority}");
            for (k, v) in &segs {
                s.push_str(&format!("/{k}={v}"));
            }
            if star { s.push('*'); }
            let parsed = CrnPattern::parse(&s).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(parsed.to_string(), s.clone());
            prop_assert_eq!(CrnPattern::parse(&parsed.to_string()), Ok(parsed.clone()));
            prop_assert_eq!(parsed.is_prefix(), star);
            // A pattern always covers itself when it has no star, and a star pattern
            // covers the CRN with its prefix completed.
            if !star {
                prop_assert!(parsed.covers(&parsed));
            } else {
                let exact = CrnPattern::parse(&s.replace('*', "zz")).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert!(parsed.covers(&exact));
            }
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,80}") {
            let _ = CrnPattern::parse(&s);
            let _ = CrnPattern::parse(&format!("crn://{s}"));
        }
    }
}
