//! Denials and failures summarised per window, and a cap per credential.
//!
//! Why: a denied request costs a client a few bytes and, recorded one by one, costs the
//! server a database row. A key with no permissions looping on Produce would fill the
//! disk with identical rows for the whole retention period. So, as allowed traffic is
//! already counted rather than logged (see `usage`), a denial or failure is recorded in
//! full the first time in a window for its (kind, method, principal, credential,
//! resource, operation, result, client host), and every repeat is only counted; the
//! count is written as one summary record (the first record's shape with `summary`)
//! when the window closes. On top of that, one credential (or, without one, one client
//! host) may write at most `per_credential` records per window; the rest are counted
//! in an `audit.RecordsSuppressed` record. Memory is bounded by `max_keys` entries per
//! window; beyond it records are counted, not kept.

use crate::event::{status, types, CloudEvent, Summary};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// Limits of the summariser.
#[derive(Debug, Clone, Copy)]
pub struct RepeatLimits {
    /// Records one credential may write per window (allowed ones included).
    pub per_credential: u32,
    /// Distinct keys remembered per window.
    pub max_keys: usize,
}

impl Default for RepeatLimits {
    fn default() -> Self {
        RepeatLimits {
            per_credential: 1000,
            max_keys: 10_000,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Repeats {
    limits: RepeatLimits,
    since: DateTime<Utc>,
    /// Repeatable records seen this window: the first one, and how many repeats.
    seen: HashMap<String, (CloudEvent, u64)>,
    /// Records written and suppressed per credential this window.
    written: HashMap<String, (u32, u64)>,
    /// Records that found no room in the maps.
    overflow: u64,
}

/// Denials and failures repeat; successes and changes do not.
fn repeatable(e: &CloudEvent) -> bool {
    e.granted() == Some(false) || e.data.result.status != status::SUCCESS
}

/// The client's host, without the port (a new connection has a new port).
fn host(e: &CloudEvent) -> &str {
    let a = e
        .data
        .request_metadata
        .as_ref()
        .map_or("", |m| m.client_address.as_str());
    match a.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => a,
    }
}

fn credential(e: &CloudEvent) -> String {
    e.identifier()
        .or(e.principal())
        .map_or_else(|| format!("host {}", host(e)), str::to_owned)
}

fn repeat_key(e: &CloudEvent) -> String {
    let a = e.data.authorization_info.as_ref();
    [
        e.kind.as_str(),
        e.data.method_name.as_str(),
        e.principal().unwrap_or(""),
        e.identifier().unwrap_or(""),
        e.data.resource_name.as_str(),
        a.map_or("", |a| a.operation.as_str()),
        a.map_or("", |a| a.resource_name.as_str()),
        e.data.result.status.as_str(),
        e.data.result.message.as_deref().unwrap_or(""),
        host(e),
    ]
    .join("\u{1f}")
}

impl Repeats {
    pub(crate) fn new(limits: RepeatLimits, now: DateTime<Utc>) -> Self {
        Repeats {
            limits,
            since: now,
            seen: HashMap::new(),
            written: HashMap::new(),
            overflow: 0,
        }
    }

    /// The record to write now, if any (`None`: counted for the window's summary).
    pub(crate) fn admit(&mut self, e: CloudEvent) -> Option<CloudEvent> {
        let e = e.sanitized();
        if e.data.summary.is_some() || e.kind == types::AUDIT_PIPELINE {
            return Some(e);
        }
        if repeatable(&e) {
            let key = repeat_key(&e);
            if let Some((_, n)) = self.seen.get_mut(&key) {
                *n += 1;
                return None;
            }
            if self.seen.len() >= self.limits.max_keys {
                self.overflow += 1;
                return None;
            }
            self.seen.insert(key, (e.clone(), 0));
        }
        let cred = credential(&e);
        let full = self.written.len() >= self.limits.max_keys;
        match self.written.get_mut(&cred) {
            Some((n, suppressed)) if *n >= self.limits.per_credential => {
                *suppressed += 1;
                None
            }
            Some((n, _)) => {
                *n += 1;
                Some(e)
            }
            None if full => {
                self.overflow += 1;
                None
            }
            None => {
                self.written.insert(cred, (1, 0));
                Some(e)
            }
        }
    }

    /// Close the window: one summary per repeated record, one record per credential
    /// over its cap, one for what found no room.
    pub(crate) fn close(&mut self, now: DateTime<Utc>, source: &str) -> Vec<CloudEvent> {
        let since = std::mem::replace(&mut self.since, now);
        let mut out = Vec::new();
        for (_, (first, n)) in self.seen.drain() {
            if n == 0 {
                continue;
            }
            let mut e = CloudEvent::new(
                &first.kind,
                first.source.clone(),
                first.data.service_name.clone(),
                first.data.method_name.clone(),
                first.data.resource_name.clone(),
                now,
            );
            e.subject = first.subject.clone();
            e.data = first.data;
            e.data.summary = Some(Summary {
                requests: n,
                bytes: 0,
                window_start: since,
                window_end: now,
            });
            out.push(e);
        }
        let pipeline = |message: String| {
            CloudEvent::new(
                types::AUDIT_PIPELINE,
                source.to_owned(),
                "keygate.audit",
                "audit.RecordsSuppressed",
                source.to_owned(),
                now,
            )
            .result(status::FAILURE, Some(message))
        };
        for (cred, (_, suppressed)) in self.written.drain() {
            if suppressed > 0 {
                out.push(pipeline(format!(
                    "{suppressed} records of {cred} not written: over {} per window",
                    self.limits.per_credential
                )));
            }
        }
        if self.overflow > 0 {
            out.push(pipeline(format!(
                "{} records not written: more than {} distinct records in the window",
                self.overflow, self.limits.max_keys
            )));
            self.overflow = 0;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::AuthorizationInfo;

    fn denial(topic: &str, port: u16) -> CloudEvent {
        CloudEvent::new(
            types::KAFKA_AUTHORIZATION,
            "crn://k/o",
            "crn://k/o",
            "kafka.Produce",
            format!("crn://k/o/topic={topic}"),
            Utc::now(),
        )
        .who(
            Some("User:sa-1".into()),
            Some("SASL_PLAIN"),
            Some("KEY1".into()),
        )
        .authorization(AuthorizationInfo {
            granted: false,
            operation: "WRITE".into(),
            resource_type: "Topic".into(),
            resource_name: topic.into(),
            ..Default::default()
        })
        .client_address(Some(format!("127.0.0.1:{port}")))
    }

    #[test]
    fn repeats_are_counted_once_per_window() {
        let mut r = Repeats::new(RepeatLimits::default(), Utc::now());
        let written = (0..10_000)
            .filter_map(|i| r.admit(denial("orders", 1000 + (i % 50) as u16)))
            .count();
        assert_eq!(written, 1);
        assert!(r.admit(denial("payments", 1)).is_some());
        let out = r.close(Utc::now(), "crn://k/o");
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].data.summary.as_ref().map(|s| s.requests),
            Some(9_999)
        );
        assert_eq!(out[0].granted(), Some(false));
        // A new window records the first one in full again.
        assert!(r.admit(denial("orders", 1)).is_some());
    }

    #[test]
    fn one_credential_is_capped() {
        let limits = RepeatLimits {
            per_credential: 5,
            max_keys: 100,
        };
        let mut r = Repeats::new(limits, Utc::now());
        let written = (0..1000)
            .filter_map(|i| r.admit(denial(&format!("t{i}"), 1)))
            .count();
        assert_eq!(written, 5);
        let out = r.close(Utc::now(), "crn://k/o");
        let msgs: Vec<String> = out
            .iter()
            .filter_map(|e| e.data.result.message.clone())
            .collect();
        assert!(
            msgs.iter()
                .any(|m| m.contains("records of KEY1 not written")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter().any(|m| m.contains("distinct records")),
            "{msgs:?}"
        );
    }
}
