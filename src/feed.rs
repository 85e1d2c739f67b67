//! The event feed's background work: the sequencer, which numbers
//! committed events (see `store/events.rs` for why only committed ones),
//! and the retention purge (of events, and of webhook delivery attempts).
//!
//! The sequencer runs when this process's writes wake it
//! ([`crate::store::Store::events_written`]) and, for the writes of other
//! processes on the same PostgreSQL, whenever its poll finds an event
//! without a number. Every process runs one; they take turns on an
//! advisory lock, so any of them may number another's events.

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::audit::DAY_MICROS;
use crate::store::Store;
use crate::telemetry::ErrorChain;

/// How often the sequencer looks for events it was not woken for.
pub const SEQUENCER_POLL: Duration = Duration::from_millis(200);

/// After a run that numbered events, the sequencer lets this much time
/// pass before the next, so that under a steady stream of writes one run
/// numbers many events instead of each write paying a run of its own.
pub const SEQUENCER_GATHER: Duration = Duration::from_millis(10);

/// Events the purge deletes per transaction.
pub const PURGE_BATCH: i64 = 10_000;

/// The feed's running tasks.
pub struct FeedTasks {
    sequencer: JoinHandle<()>,
    purger: JoinHandle<()>,
}

impl FeedTasks {
    pub async fn stop(self) {
        self.sequencer.abort();
        self.purger.abort();
        let _ = self.sequencer.await;
        let _ = self.purger.await;
    }
}

/// How long the feed keeps what it keeps, in days.
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    pub events_days: u32,
    pub webhook_attempts_days: u32,
}

/// Starts the sequencer and the purge (events and webhook attempts past
/// their retention, checked every `purge_every`).
pub fn spawn(store: Store, retention: Retention, purge_every: Duration) -> FeedTasks {
    let signals = store.event_signals();
    let sequencer_store = store.clone();
    let sequencer = tokio::spawn(async move {
        let store = sequencer_store;
        loop {
            let woken = tokio::select! {
                _ = signals.written.notified() => true,
                _ = tokio::time::sleep(SEQUENCER_POLL) => false,
            };
            let due = woken || store.events_unsequenced().await.unwrap_or(true);
            if !due {
                continue;
            }
            match store.sequence_events().await {
                Ok(0) => {}
                Ok(_) => tokio::time::sleep(SEQUENCER_GATHER).await,
                Err(e) => {
                    tracing::warn!(error = %ErrorChain(&e), "numbering events failed; retrying");
                    tokio::time::sleep(SEQUENCER_POLL).await;
                }
            }
        }
    });
    let purger = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(purge_every.max(Duration::from_secs(1)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let now = crate::time::now_micros();
            let retention_days = retention.events_days;
            let cutoff = now - i64::from(retention_days) * DAY_MICROS;
            match store.prune_events(cutoff, PURGE_BATCH).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, retention_days, "purged old feed events"),
                Err(e) => {
                    tracing::warn!(error = %ErrorChain(&e), "event purge failed; retrying at the next interval")
                }
            }
            let retention_days = retention.webhook_attempts_days;
            let cutoff = now - i64::from(retention_days) * DAY_MICROS;
            match store.prune_webhook_attempts(cutoff, PURGE_BATCH).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, retention_days, "purged old webhook attempts"),
                Err(e) => {
                    tracing::warn!(error = %ErrorChain(&e), "webhook attempt purge failed; retrying at the next interval")
                }
            }
        }
    });
    FeedTasks { sequencer, purger }
}
