//! Retention: events older than `--audit-retention-days` are deleted by a
//! background task, in batches, so a purge never holds a long write
//! transaction (on SQLite, SCIM writes get the writer between batches).

use crate::telemetry::ErrorChain;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::store::{Store, StoreError};

use super::DAY_MICROS;

/// Events deleted per statement.
pub const BATCH: i64 = 10_000;

/// Deletes every event older than `retention_days` before `now_micros`;
/// returns how many went. On PostgreSQL, when another replica is purging
/// at the same moment, this one stops early and leaves the rest to it.
pub async fn purge(store: &Store, now_micros: i64, retention_days: u32) -> Result<u64, StoreError> {
    let cutoff = now_micros - i64::from(retention_days) * DAY_MICROS;
    store.purge_audit_events(cutoff, BATCH).await
}

/// Runs [`purge`] at start and then every `every`, until aborted.
pub fn spawn(store: Store, retention_days: u32, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every.max(Duration::from_secs(1)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match purge(&store, crate::time::now_micros(), retention_days).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, retention_days, "purged old audit events"),
                Err(e) => {
                    tracing::warn!(error = %ErrorChain(&e), "audit purge failed; retrying at the next interval")
                }
            }
        }
    })
}
