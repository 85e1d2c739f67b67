//! What the store counts for `/metrics`: hits and misses of the users kept
//! in memory, and how long callers waited for a database connection; and
//! the state of the connections, read when the metrics are scraped.
//!
//! The store keeps its own instruments (cheap shared counters) rather than
//! writing to a process-wide recorder, so that each store, and each server
//! built on it, counts only its own work.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;

/// Upper bounds, in seconds, of the acquire-wait buckets: a connection at
/// hand takes microseconds; waits of milliseconds mean every connection was
/// busy; seconds, a pool far too small or a database not answering (the
/// acquire gives up after 30 s on PostgreSQL).
pub const ACQUIRE_WAIT_BUCKETS: [f64; 12] = [
    0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0,
];

/// The store's instruments; clones count into the same series.
#[derive(Clone, Debug)]
pub struct StoreMetrics {
    /// Look-ups (`GET /Users/{id}`, `userName eq`) answered from memory.
    pub user_cache_hits: Counter,
    /// Look-ups that read the database while users are kept in memory.
    pub user_cache_misses: Counter,
    /// Time from asking for a read connection (SQLite) or any connection
    /// (PostgreSQL) to having one, opening or testing it included.
    pub acquire_wait: Histogram,
}

impl Default for StoreMetrics {
    fn default() -> Self {
        StoreMetrics {
            user_cache_hits: Counter::default(),
            user_cache_misses: Counter::default(),
            acquire_wait: Histogram::new(ACQUIRE_WAIT_BUCKETS),
        }
    }
}

/// The connections a store lends, at one moment: SQLite's readers (its one
/// writer is not lent), or PostgreSQL's connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolStatus {
    /// Connections there may be at most (`--db-pool-size`).
    pub max: usize,
    /// Open and waiting to be lent.
    pub idle: usize,
    /// Lent to a caller (on PostgreSQL, being opened or tested included).
    pub in_use: usize,
}
