//! `last_used_at` of keys, recorded in memory on each authentication and written to
//! the store in batches: one transaction per interval, never one write per request.

use keygate_core::model::Timestamp;
use keygate_core::KeyId;
use keygate_store::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Collects key uses between flushes.
#[derive(Debug, Default)]
pub struct UsageRecorder {
    pending: Mutex<HashMap<KeyId, Timestamp>>,
}

impl UsageRecorder {
    /// Note that `key` was used now. Called once per authentication (per REST call, or
    /// per Kafka connection), not per Kafka request.
    pub fn record(&self, key: KeyId) {
        let now = chrono::Utc::now();
        if let Ok(mut p) = self.pending.lock() {
            p.insert(key, now);
        }
    }

    /// Write what was collected; on failure it is kept for the next flush.
    pub async fn flush(&self, store: &dyn Store) {
        let batch: Vec<(KeyId, Timestamp)> = match self.pending.lock() {
            Ok(mut p) => p.drain().collect(),
            Err(_) => return,
        };
        if batch.is_empty() {
            return;
        }
        if let Err(e) = store.record_key_usage(&batch).await {
            tracing::warn!(error = %e, keys = batch.len(), "could not record key usage; will retry");
            if let Ok(mut p) = self.pending.lock() {
                for (k, t) in batch {
                    let slot = p.entry(k).or_insert(t);
                    *slot = (*slot).max(t);
                }
            }
        }
    }

    /// Flush every `interval` until the process ends.
    pub async fn run(self: Arc<Self>, store: Arc<dyn Store>, interval: Duration) {
        loop {
            tokio::time::sleep(interval).await;
            self.flush(store.as_ref()).await;
        }
    }
}
