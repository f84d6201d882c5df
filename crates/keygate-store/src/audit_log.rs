//! The audit pipeline's view of the store: the audit table is the database sink and
//! the outbox of every other sink (see `keygate_audit::pipeline`).

use crate::{AuditQuery, Store};
use async_trait::async_trait;
use keygate_audit::{AuditLog, CloudEvent, SinkError};
use std::sync::Arc;
use tokio::sync::watch;

/// A [`Store`]'s audit table as the pipeline's [`AuditLog`].
#[derive(Clone)]
pub struct StoreAuditLog(pub Arc<dyn Store>);

impl std::fmt::Debug for StoreAuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreAuditLog")
    }
}

fn err(e: crate::StoreError) -> SinkError {
    SinkError(e.to_string())
}

#[async_trait]
impl AuditLog for StoreAuditLog {
    async fn append(&self, events: Vec<CloudEvent>) -> Result<(), SinkError> {
        self.0.append_audit(events).await.map_err(err)
    }

    async fn read_after(&self, seq: i64, limit: u32) -> Result<Vec<(i64, CloudEvent)>, SinkError> {
        let rows = self
            .0
            .query_audit(&AuditQuery {
                after: Some(seq),
                limit,
                ..AuditQuery::default()
            })
            .await
            .map_err(err)?;
        Ok(rows.into_iter().map(|r| (r.seq, r.event)).collect())
    }

    async fn cursor(&self, sink: &str) -> Result<i64, SinkError> {
        self.0.audit_cursor(sink).await.map_err(err)
    }

    async fn set_cursor(&self, sink: &str, seq: i64) -> Result<(), SinkError> {
        self.0.set_audit_cursor(sink, seq).await.map_err(err)
    }

    async fn prune(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        sinks: &[String],
    ) -> Result<u64, SinkError> {
        self.0.prune_audit(before, sinks).await.map_err(err)
    }

    async fn lease(
        &self,
        sink: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<bool, SinkError> {
        self.0
            .lease(&format!("audit-sink:{sink}"), holder, ttl)
            .await
            .map_err(err)
    }

    fn subscribe(&self) -> watch::Receiver<i64> {
        self.0.subscribe_audit()
    }
}
