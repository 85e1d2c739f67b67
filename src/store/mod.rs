//! Persistence behind one domain-level interface, on SQLite or PostgreSQL.
//!
//! SQL that both dialects accept is written once; where they differ (JSON
//! columns, a few functions) [`Dialect`] supplies the fragment. Queries are
//! checked at runtime, so a clean clone builds with no database running; the
//! shared integration suite runs on both stores to catch what compile-time
//! checks would.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};

mod accel;
mod accounts;
pub mod audit;
mod billing;
mod conn;
mod console;
mod directories;
mod domains;
mod error;
/// The event feed; `events::insert_directory_events` writes in a caller's transaction.
pub(crate) mod events;
mod filter_sql;
mod groups;
mod org_groups;
mod orgs;
/// `outbox::enqueue_email` queues mail in a caller's transaction.
pub(crate) mod outbox;
mod postgres;
mod secrets;
#[cfg(feature = "tools")]
pub mod seed;
mod sites;
mod sql;
mod sqlite;
mod stats;
mod sync;
mod sync_pending;
mod sync_settings;
mod users;
mod webhooks;

use accel::{cursors, user_cache};
use sqlite::{readers, writer};

pub use accounts::{
    AccountGroupRow, AccountQuery, AccountRow, DeleteRecordsRefused, EmailConflictRow, LinkRow,
};
pub use audit::{DailyStats, EventRow, ReportQuery};
pub use billing::{Billing, BillingRow};
pub use console::ConsoleSession;
pub use directories::{Directory, DirectoryKey, RateLimit, StoredRateLimit};
pub use domains::{CheckRecorded, DirectoryMoved, DomainRow, LinkError};
pub(crate) use error::OnConflict;
pub use error::{Result, StoreError};
pub use events::{FeedBounds, FeedQuery, FeedRow};
pub use filter_sql::Keyset;
pub use groups::{GroupRow, MemberRow};
pub use org_groups::{OrgGroupChange, OrgGroupMemberRow, OrgGroupRow};
pub use orgs::Org;
pub use outbox::{ClaimedEmail, OutboxQuery, OutboxRow, RetryRefused};
pub use sites::{AccessRow, GrantRow, ProductRow, SiteRow};
pub use stats::{PoolStatus, StoreMetrics, ACQUIRE_WAIT_BUCKETS};
pub use sync::{
    AccountsContents, BatchCounts, BatchWrite, DirectoryContents, GroupStateRow, RunLease, RunRow,
    StartRunError, StoredAnalysis, RUN_RUNNING,
};
pub use sync_settings::{StoredSyncSettings, SyncSettingsError};
pub use users::{DeletedUser, UserGroup, UserRow};
pub use webhooks::{
    NewWebhook, Progress, WebhookAttempt, WebhookChange, WebhookRow, WebhookTarget,
};

/// The SQL dialect of the connected store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The `doc` column as JSON text.
    pub(crate) fn doc_out(self) -> &'static str {
        match self {
            Dialect::Sqlite => "doc",
            Dialect::Postgres => "doc::text",
        }
    }

    /// A bound JSON text parameter stored into a `doc` column.
    pub(crate) fn doc_in(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => format!("${n}"),
            Dialect::Postgres => format!("${n}::jsonb"),
        }
    }
}

pub(crate) enum Db {
    /// SQLite allows one writer at a time: every write goes through the
    /// one connection of [`writer::SqliteWriter`], so writers queue
    /// in-process instead of failing with "database is locked"; readers
    /// use WAL snapshots.
    Sqlite {
        readers: readers::SqliteReaders,
        writer: writer::SqliteWriter,
    },
    Postgres(Box<postgres::connections::PgConnections>),
}

/// Runs `$body` with `$c` bound to a read connection (`&mut`) of whichever
/// backend is connected, held until the body ends. A body fails by `?` (or
/// `return Err`), not by evaluating to an `Err`: on PostgreSQL the failure
/// is what marks the connection to be tested before its next use. The body is expanded
/// once per backend, so the same query code is type-checked against both
/// drivers.
macro_rules! read {
    ($store:expr, |$d:ident, $c:ident| $body:expr) => {
        match &*$store.db {
            $crate::store::Db::Sqlite { readers, .. } => {
                let $d = $crate::store::Dialect::Sqlite;
                let mut conn = readers.acquire().await?;
                let $c: &mut sqlx::SqliteConnection = &mut conn;
                $body
            }
            $crate::store::Db::Postgres(pg) => {
                let $d = $crate::store::Dialect::Postgres;
                $crate::store::pg_lend!(pg, |$c| $body)
            }
        }
    };
}

/// Runs `$body` inside a write transaction bound to `$tx`; commits when the
/// body finishes, rolls back when it returns early with `?`.
macro_rules! transaction {
    ($store:expr, |$d:ident, $tx:ident| $body:expr) => {
        match &*$store.db {
            $crate::store::Db::Sqlite { writer, .. } => {
                let $d = $crate::store::Dialect::Sqlite;
                let mut conn = writer.lock().await?;
                let mut $tx = sqlx::Connection::begin(&mut *conn).await?;
                let out = $body;
                $tx.commit().await?;
                out
            }
            $crate::store::Db::Postgres(pg) => {
                $crate::store::pg_write!(pg, |$d, $tx| $body)
            }
        }
    };
}
/// [`transaction!`] for the hot writes: on SQLite `$body` runs as a job of the
/// writer task, committed together with the other writes waiting then
/// (see [`writer`]), so it must own what it uses (`async move`); `return`
/// in it ends the job. On PostgreSQL it runs in place, in its own
/// transaction, as with [`transaction!`].
macro_rules! write_job {
    ($store:expr, |$d:ident, $tx:ident| $body:expr) => {
        match &*$store.db {
            $crate::store::Db::Sqlite { writer, .. } => {
                writer
                    .run(move |$tx: &mut sqlx::SqliteConnection| {
                        let $d = $crate::store::Dialect::Sqlite;
                        Box::pin(async move { Ok($body) })
                    })
                    .await?
            }
            $crate::store::Db::Postgres(pg) => {
                $crate::store::pg_write!(pg, |$d, $tx| $body)
            }
        }
    };
}
/// The PostgreSQL side of [`transaction!`] and [`write_job!`]: `$body` in a
/// transaction on a lent connection, which the outcome (early returns
/// included) marks as sound or doubtful. A transaction left by an error
/// is rolled back by sqlx before the connection's next query.
macro_rules! pg_write {
    ($pg:expr, |$d:ident, $tx:ident| $body:expr) => {{
        let $d = $crate::store::Dialect::Postgres;
        $crate::store::pg_lend!($pg, |conn| {
            let mut $tx = sqlx::Connection::begin(&mut *conn).await?;
            let out = $body;
            $tx.commit().await?;
            out
        })
    }};
}
/// Runs `$body` with `$c` bound to a lent PostgreSQL connection. The body's
/// outcome, early returns by `?` included, marks the connection sound or
/// doubtful (see `postgres::connections`); a body fails by `?`.
macro_rules! pg_lend {
    ($pg:expr, |$c:ident| $body:expr) => {{
        let mut conn = $pg.acquire().await?;
        let outcome = async {
            let $c: &mut sqlx::PgConnection = &mut conn;
            Ok::<_, $crate::store::StoreError>($body)
        }
        .await;
        conn.end(&outcome);
        outcome?
    }};
}
pub(crate) use {pg_lend, pg_write, read, transaction, write_job};

/// Connection options that only tests and tools need.
#[derive(Clone, Debug, Default)]
pub struct ConnectOptions {
    /// 0: the default for the backend (see `DatabaseConfig`).
    pub pool_size: u32,
    /// PostgreSQL schema to create and use (tests isolate themselves so).
    pub pg_schema: Option<String>,
    /// Rows between remembered list positions; 0 for the default
    /// ([`cursors::HOP`]). Tests make it small to reach hops with few rows.
    pub list_hop: i64,
    /// Single-user look-up statements run at once (see [`accel::coalesce`]); 0
    /// for half the CPU cores, at least 1. On two cores one does best:
    /// the database, the server and its clients share them, and a larger
    /// batch costs the database little more than a single look-up.
    pub lookup_statements: usize,
    /// Bytes of users kept in memory for `GET /Users/{id}` and `userName
    /// eq` (see [`user_cache`]); `None` for [`DEFAULT_USER_CACHE_BYTES`],
    /// 0 for none. Commands that only write (the CLI) keep none.
    pub user_cache_bytes: Option<u64>,
}

/// The user cache's budget unless configured: 32 MiB, about 40,000 users
/// of a typical size.
pub const DEFAULT_USER_CACHE_BYTES: u64 = 32 << 20;

/// The store: one handle, cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: std::sync::Arc<Db>,
    /// Remembered list positions, so deep pages seek instead of walking.
    cursors: std::sync::Arc<cursors::PageCursors>,
    /// Concurrent single-user look-ups, answered together.
    batches: std::sync::Arc<users::UserBatches>,
    /// Users as the look-ups read them, while current.
    cache: std::sync::Arc<user_cache::UserCache>,
    /// On PostgreSQL, the task that hears other processes' changes.
    change_feed: Option<std::sync::Arc<ChangeFeed>>,
    /// What this store counts for `/metrics`.
    metrics: std::sync::Arc<StoreMetrics>,
    /// Woken when this process queues email, so the delivery worker sends
    /// it at once instead of at its next poll.
    outbox_wake: std::sync::Arc<tokio::sync::Notify>,
    /// Wakes this process's webhook deliverer.
    webhooks_wake: std::sync::Arc<tokio::sync::Notify>,
    /// The event feed's wake-ups: events committed, events numbered.
    events: std::sync::Arc<events::EventSignals>,
}

/// The listening task of [`postgres::changes`], stopped with the last handle of
/// its store.
struct ChangeFeed(tokio::task::JoinHandle<()>);

impl Drop for ChangeFeed {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Store {
    pub async fn connect(url: &str, opts: &ConnectOptions) -> Result<Store> {
        let pool_size = match opts.pool_size {
            0 if url.starts_with("sqlite:") => {
                let cores = std::thread::available_parallelism().map_or(2, |n| n.get() as u32);
                (2 * cores).max(4)
            }
            0 => 16,
            n => n.max(2),
        };
        let cache_bytes = opts.user_cache_bytes.unwrap_or(DEFAULT_USER_CACHE_BYTES);
        let metrics = StoreMetrics::default();
        let mut feed_options = None;
        let db = if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let mut options = PgConnectOptions::from_str(url)?;
            if let Some(schema) = &opts.pg_schema {
                let admin = PgPoolOptions::new()
                    .max_connections(1)
                    .connect_with(options.clone())
                    .await?;
                sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
                    .execute(&admin)
                    .await?;
                admin.close().await;
                options = options.options([("search_path", schema.as_str())]);
            }
            // Named in `pg_stat_activity`, unless the URL names it; an
            // isolated schema (tests) is part of the name, so its
            // connections can be told apart.
            if options.get_application_name().is_none() {
                let name = match &opts.pg_schema {
                    Some(schema) => format!("scimd/{schema}"),
                    None => "scimd".to_owned(),
                };
                options = options.application_name(&name);
            }
            feed_options = Some(options.clone());
            Db::Postgres(Box::new(postgres::connections::PgConnections::new(
                options,
                pool_size as usize,
                Duration::from_secs(30),
                metrics.acquire_wait.clone(),
            )))
        } else if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(30))
                .foreign_keys(true)
                .pragma("temp_store", "memory")
                // The writer's checkpointer copies the WAL back, on its own
                // connection (see `writer`).
                .pragma("wal_autocheckpoint", "0");
            // The connections live in this process and cannot be dropped
            // by a server: they are held by the store itself, without
            // sqlx's pool and the pings it sends (see `readers`, `writer`).
            let writer = writer::SqliteWriter::start(
                sqlx::ConnectOptions::connect(&options).await?,
                sqlx::ConnectOptions::connect(&options).await?,
                writer::CheckpointPolicy::default(),
            );
            let mut conns = Vec::new();
            for _ in 0..pool_size {
                conns.push(sqlx::ConnectOptions::connect(&options).await?);
            }
            let readers = readers::SqliteReaders::new(conns, metrics.acquire_wait.clone());
            Db::Sqlite { readers, writer }
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };
        // On PostgreSQL nothing is served from memory until the feed of
        // others' changes listens; SQLite's writers are all in this process
        // (the CLI's writes add directories, keys and new users, which no
        // cached entry describes).
        let cache = std::sync::Arc::new(user_cache::UserCache::new(
            cache_bytes,
            feed_options.is_none(),
        ));
        let change_feed = feed_options.filter(|_| cache.is_enabled()).map(|options| {
            std::sync::Arc::new(ChangeFeed(postgres::changes::start(options, cache.clone())))
        });
        Ok(Store {
            cache,
            change_feed,
            metrics: std::sync::Arc::new(metrics),
            outbox_wake: std::sync::Arc::new(tokio::sync::Notify::new()),
            webhooks_wake: std::sync::Arc::new(tokio::sync::Notify::new()),
            events: std::sync::Arc::default(),
            db: std::sync::Arc::new(db),
            cursors: std::sync::Arc::new(match opts.list_hop {
                0 => cursors::PageCursors::default(),
                hop => cursors::PageCursors::with_hop(hop),
            }),
            batches: std::sync::Arc::new(users::UserBatches::new(match opts.lookup_statements {
                0 => std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
                n => n,
            })),
        })
    }

    pub fn dialect(&self) -> Dialect {
        match &*self.db {
            Db::Sqlite { .. } => Dialect::Sqlite,
            Db::Postgres(_) => Dialect::Postgres,
        }
    }

    /// What this store has counted (user cache, connection waits).
    pub fn metrics(&self) -> &StoreMetrics {
        &self.metrics
    }

    /// Whether users are kept in memory at all (`--user-cache-mib` not 0).
    pub fn user_cache_enabled(&self) -> bool {
        self.cache.is_enabled()
    }

    /// The connections lent out and idle now: SQLite's readers, or
    /// PostgreSQL's connections.
    pub fn pool_status(&self) -> PoolStatus {
        match &*self.db {
            Db::Sqlite { readers, .. } => readers.status(),
            Db::Postgres(pg) => pg.status(),
        }
    }

    /// Applies the embedded migrations of the connected backend.
    pub async fn migrate(&self) -> Result<()> {
        match &*self.db {
            Db::Sqlite { writer, .. } => {
                sqlx::migrate!("./migrations/sqlite")
                    .run(&mut *writer.lock().await?)
                    .await?
            }
            Db::Postgres(pg) => pg_lend!(pg, |c| {
                sqlx::migrate!("./migrations/postgres").run(&mut *c).await?
            }),
        }
        Ok(())
    }

    /// Refreshes the planner's statistics. Bulk loads (`scimd seed`) call
    /// it; PostgreSQL's autovacuum and SQLite's `PRAGMA optimize` at start
    /// keep them current otherwise. On PostgreSQL it also vacuums, which
    /// marks the loaded pages all-visible: until then an index-only scan
    /// (a group's member names, a page's ids) still visits every row.
    pub async fn analyze(&self) -> Result<()> {
        match &*self.db {
            Db::Sqlite { writer, .. } => {
                sqlx::query("ANALYZE")
                    .execute(&mut *writer.lock().await?)
                    .await?;
            }
            Db::Postgres(pg) => {
                // VACUUM refuses to run in a transaction block, so it goes
                // over the simple query protocol.
                pg_lend!(pg, |c| {
                    sqlx::raw_sql(
                        "VACUUM (ANALYZE) users, user_emails, groups, group_members, accounts",
                    )
                    .execute(&mut *c)
                    .await?;
                });
            }
        }
        Ok(())
    }

    /// Cheap statistics upkeep at start (SQLite analyses only tables whose
    /// statistics are missing or stale, bounded by `analysis_limit`).
    pub async fn optimize(&self) -> Result<()> {
        if let Db::Sqlite { writer, .. } = &*self.db {
            let mut conn = writer.lock().await?;
            sqlx::query("PRAGMA analysis_limit = 1000")
                .execute(&mut *conn)
                .await?;
            sqlx::query("PRAGMA optimize = 0x10002")
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    /// Readiness: the database answers a trivial query.
    pub async fn ping(&self) -> Result<()> {
        read!(self, |_d, c| {
            sqlx::query("SELECT 1").execute(&mut *c).await?;
        });
        Ok(())
    }

    pub async fn close(&self) {
        if let Some(feed) = &self.change_feed {
            feed.0.abort();
        }
        match &*self.db {
            Db::Sqlite { readers, writer } => {
                readers.close().await;
                writer.close().await;
            }
            Db::Postgres(pg) => pg.close().await,
        }
    }
}

impl Store {
    /// Records `change` in the user cache when the returned guard is
    /// dropped. A write returns the guard with its result: on SQLite that
    /// result is dropped, by the caller or (if the caller has gone) by the
    /// writer, only after the transaction ended; on PostgreSQL after
    /// `COMMIT` returned, or, if the request was dropped during it, at once,
    /// and then the change's own notice ends the entry again.
    pub(crate) fn change_guard(&self, change: user_cache::Change) -> user_cache::ChangeGuard {
        self.cache.on_drop(change)
    }
}

/// Marks a change that moves rows in list order (a deletion, a bulk load),
/// which invalidates remembered list positions ([`cursors`]). Runs inside
/// the writing transaction, so readers see the rows and the epoch change
/// together.
pub(crate) async fn bump_list_epoch<C: conn::Conn>(
    tx: &mut C,
    directory_id: uuid::Uuid,
) -> Result<()> {
    let sql = "UPDATE directories SET list_epoch = list_epoch + 1 WHERE id = $1";
    tx.execute(sql, &[directory_id.into()]).await?;
    Ok(())
}

#[cfg(test)]
mod sqlite_build_tests {
    use sqlx::ConnectOptions;

    /// The bundled SQLite is built without STAT4 (`.cargo/config.toml`):
    /// with it, every look-up by an indexed column is prepared again at
    /// each execution once `ANALYZE` has run, which `PRAGMA optimize` at
    /// start does.
    #[tokio::test]
    async fn sqlite_is_built_without_stat4() {
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .in_memory(true)
            .connect()
            .await
            .unwrap();
        let stat4: i64 = sqlx::query_scalar("SELECT sqlite_compileoption_used('ENABLE_STAT4')")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(stat4, 0);
    }
}
