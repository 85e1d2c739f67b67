//! SQLite's single writer, with group commit.
//!
//! SQLite lets one connection write at a time, so every write goes through
//! one connection. Each statement sqlx runs on it is a hand-off to the
//! connection's own thread and back, and on a small machine those thread
//! switches, not SQLite, were most of the cost of a write: `BEGIN`, the
//! statements, `COMMIT`, and the ping sqlx sends when a pooled connection
//! is returned.
//!
//! Hot writes (creating, replacing, patching and deleting resources) are
//! therefore sent as jobs to one task that owns the connection. The task
//! takes every job waiting in its queue and runs them in one transaction,
//! each inside a savepoint, so a failing job is rolled back alone; the
//! savepoint of one job is released and the next one's taken in a single
//! statement. Callers get their answers only once the transaction is
//! committed, so a response still means the change is durable. Under load
//! one `BEGIN`/`COMMIT` (and one write of the shared index pages to the
//! WAL) serves many writes; alone, a job runs in its own transaction with
//! no savepoint.
//!
//! Because the task owns the connection, a client that disconnects cannot
//! cut a job short halfway: the job runs to its end and only its answer is
//! dropped. Writes that are not jobs (administration, bulk loads,
//! migrations) lock the same connection between batches with [`lock`].
//!
//! Checkpoints, which copy the WAL back into the database file, run on a
//! connection of their own (see [`checkpoint_wal`]). SQLite would otherwise
//! run one on the writer after the commit that takes the WAL past 1,000
//! pages, and every write waits for its copying and its two `fsync`s: under
//! load that was a third of the writer's time and most of its p99.
//!
//! [`lock`]: SqliteWriter::lock

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use sqlx::SqliteConnection;
use tokio::sync::{mpsc, oneshot, Mutex, MutexGuard, Notify};
use tokio::task::JoinHandle;

use crate::store::{Result, StoreError};

/// Most jobs committed together: bounds how long the first of them waits
/// for the commit, and the work lost to a failed commit.
const MAX_BATCH: usize = 64;

/// A write waiting for the writer task.
trait Job: Send {
    /// Runs the job on the writer's connection, inside the open
    /// transaction; returns whether it succeeded and what to do once the
    /// transaction ends.
    fn run(self: Box<Self>, conn: &mut SqliteConnection) -> BoxFuture<'_, Ran>;
    /// Answers the job with `error` without running it.
    fn fail(self: Box<Self>, error: StoreError);
}

/// Answers a job's caller, given the error of its transaction's commit.
type Answer = Box<dyn FnOnce(Option<&sqlx::Error>) + Send>;

/// A job that has run, waiting for the end of its transaction.
struct Ran {
    succeeded: bool,
    /// Answers the caller: with the job's own result if the transaction
    /// committed (or the job failed and was rolled back alone), with the
    /// commit's error otherwise.
    answer: Answer,
}

struct Task<T, F> {
    body: F,
    reply: oneshot::Sender<Result<T>>,
}

impl<T, F> Job for Task<T, F>
where
    T: Send + 'static,
    F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
{
    fn run(self: Box<Self>, conn: &mut SqliteConnection) -> BoxFuture<'_, Ran> {
        let Task { body, reply } = *self;
        Box::pin(async move {
            let result = body(conn).await;
            Ran {
                succeeded: result.is_ok(),
                answer: Box::new(move |commit_error| {
                    let answer = match (result, commit_error) {
                        (Ok(_), Some(e)) => Err(shared_error(e)),
                        (result, _) => result,
                    };
                    // The caller may have gone (a dropped request); the
                    // write stands, only its answer is lost.
                    let _ = reply.send(answer);
                }),
            }
        })
    }

    fn fail(self: Box<Self>, error: StoreError) {
        let _ = self.reply.send(Err(error));
    }
}

/// One error for each job of a batch whose transaction failed: sqlx's
/// errors cannot be cloned, so each gets the message, and an I/O error
/// stays one (the store is unavailable, not the request wrong).
fn shared_error(e: &sqlx::Error) -> StoreError {
    StoreError::Database(match e {
        sqlx::Error::Io(io) => sqlx::Error::Io(std::io::Error::new(io.kind(), io.to_string())),
        sqlx::Error::PoolClosed => sqlx::Error::PoolClosed,
        other => sqlx::Error::Protocol(format!("the write transaction failed: {other}")),
    })
}

/// When the checkpointer copies the WAL into the database file.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CheckpointPolicy {
    /// Rest after each checkpoint, so that a burst of commits is copied
    /// (and synced) once rather than once per commit.
    pub pause: Duration,
    /// WAL frames (pages) past which the checkpointer holds the writer
    /// between two batches while it copies the rest. A WAL starts again
    /// from its beginning only when a write finds it wholly copied, which
    /// under steady writes, with commits landing during every checkpoint,
    /// would never happen: the WAL would grow for as long as they last.
    pub restart_frames: i64,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        CheckpointPolicy {
            pause: Duration::from_millis(100),
            // 64 MiB of 4 KiB pages.
            restart_frames: 16_384,
        }
    }
}

/// The writer's signal to the checkpointer.
#[derive(Default)]
struct Commits {
    /// Something was committed since the checkpointer last looked.
    committed: Notify,
    /// The writer is closing or gone: the checkpointer stops.
    closed: AtomicBool,
}

impl Commits {
    fn committed(&self) {
        self.committed.notify_one();
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.committed.notify_one();
    }
}

/// The handle to SQLite's writer: cheap to share, one per store.
pub(crate) struct SqliteWriter {
    conn: Arc<Mutex<Option<SqliteConnection>>>,
    jobs: mpsc::UnboundedSender<Box<dyn Job>>,
    commits: Arc<Commits>,
    checkpointer: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl SqliteWriter {
    /// Starts the writer task on `conn` and the checkpointer on
    /// `checkpoints`, a second connection to the same database. Both run
    /// until the writer is closed or dropped. `conn` must not checkpoint
    /// by itself (`PRAGMA wal_autocheckpoint = 0`).
    pub(crate) fn start(
        conn: SqliteConnection,
        checkpoints: SqliteConnection,
        policy: CheckpointPolicy,
    ) -> SqliteWriter {
        let conn = Arc::new(Mutex::new(Some(conn)));
        let commits = Arc::new(Commits::default());
        let (jobs, queue) = mpsc::unbounded_channel();
        tokio::spawn(run_jobs(conn.clone(), queue, commits.clone()));
        let checkpointer = tokio::spawn(checkpoint_wal(
            checkpoints,
            conn.clone(),
            commits.clone(),
            policy,
        ));
        SqliteWriter {
            conn,
            jobs,
            commits,
            checkpointer: std::sync::Mutex::new(Some(checkpointer)),
        }
    }

    /// Runs `body` in a write transaction on the writer task and answers
    /// once that transaction has committed. `body` owns what it uses: it
    /// runs on another task, and runs to its end even if the caller is
    /// dropped.
    pub(crate) async fn run<T, F>(&self, body: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Box::new(Task { body, reply }))
            .map_err(|_| StoreError::Database(sqlx::Error::PoolClosed))?;
        answer.await.unwrap_or_else(|_| {
            // The job panicked and was rolled back: a fault of the server,
            // not a passing unavailability, so no invitation to retry.
            Err(StoreError::WriteJobPanicked)
        })
    }

    /// The connection itself, between batches, for writes that are not
    /// jobs. The caller runs its own transaction on it.
    pub(crate) async fn lock(&self) -> Result<Locked<'_>> {
        let guard = self.conn.lock().await;
        if guard.is_none() {
            return Err(StoreError::Database(sqlx::Error::PoolClosed));
        }
        Ok(Locked {
            conn: guard,
            commits: &self.commits,
        })
    }

    /// Stops the checkpointer and closes the connection once the current
    /// batch is done (the last connection to close checkpoints the WAL);
    /// later writes fail as on a closed pool.
    pub(crate) async fn close(&self) {
        self.commits.close();
        let checkpointer = self
            .checkpointer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(checkpointer) = checkpointer {
            let _ = checkpointer.await;
        }
        if let Some(conn) = self.conn.lock().await.take() {
            let _ = sqlx::Connection::close(conn).await;
        }
    }
}

impl Drop for SqliteWriter {
    fn drop(&mut self) {
        self.commits.close();
    }
}

/// The writer's connection, held by one caller.
pub(crate) struct Locked<'a> {
    conn: MutexGuard<'a, Option<SqliteConnection>>,
    commits: &'a Commits,
}

impl std::ops::Deref for Locked<'_> {
    type Target = SqliteConnection;
    #[expect(
        clippy::expect_used,
        reason = "the connection is checked when locked and held until dropped"
    )]
    fn deref(&self) -> &SqliteConnection {
        self.conn.as_ref().expect("checked when locked")
    }
}

impl std::ops::DerefMut for Locked<'_> {
    #[expect(
        clippy::expect_used,
        reason = "the connection is checked when locked and held until dropped"
    )]
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.conn.as_mut().expect("checked when locked")
    }
}

impl Drop for Locked<'_> {
    /// The holder may have committed: the checkpointer looks.
    fn drop(&mut self) {
        self.commits.committed();
    }
}

async fn run_jobs(
    conn: Arc<Mutex<Option<SqliteConnection>>>,
    mut queue: mpsc::UnboundedReceiver<Box<dyn Job>>,
    commits: Arc<Commits>,
) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut guard = conn.lock().await;
        match guard.as_mut() {
            Some(conn) => {
                run_batch(conn, std::mem::take(&mut batch)).await;
                commits.committed();
            }
            None => {
                for job in batch.drain(..) {
                    job.fail(StoreError::Database(sqlx::Error::PoolClosed));
                }
            }
        }
    }
}

/// Runs `jobs` in one transaction, each in its own savepoint unless it is
/// alone, and answers them once it ends.
async fn run_batch(conn: &mut SqliteConnection, jobs: Vec<Box<dyn Job>>) {
    let alone = jobs.len() == 1;
    let begin = if alone {
        "BEGIN IMMEDIATE"
    } else {
        "BEGIN IMMEDIATE; SAVEPOINT job"
    };
    if let Err(e) = execute(conn, begin).await {
        for job in jobs {
            job.fail(shared_error(&e));
        }
        return;
    }
    let mut ran = Vec::with_capacity(jobs.len());
    let mut failure = None;
    for (i, job) in jobs.into_iter().enumerate() {
        if let Some(e) = &failure {
            job.fail(shared_error(e));
            continue;
        }
        if i > 0 {
            if let Err(e) = execute(conn, "RELEASE job; SAVEPOINT job").await {
                job.fail(shared_error(&e));
                failure = Some(e);
                continue;
            }
        }
        // A panicking job must not take the writer down with it: it is
        // rolled back like a failed one, and its caller, whose answer was
        // dropped with it, gets an error.
        let job = AssertUnwindSafe(job.run(conn)).catch_unwind().await.ok();
        if !job.as_ref().is_some_and(|job| job.succeeded) {
            let undo = if alone { "ROLLBACK" } else { "ROLLBACK TO job" };
            if let Err(e) = execute(conn, undo).await {
                failure = Some(e);
            }
        }
        ran.extend(job);
    }
    // A job alone that failed has already been rolled back.
    let nothing_to_commit = alone && !ran.iter().any(|job| job.succeeded);
    let end = match (nothing_to_commit, alone) {
        (true, _) => Ok(()),
        (false, true) => execute(conn, "COMMIT").await,
        (false, false) => execute(conn, "RELEASE job; COMMIT").await,
    };
    if let Some(e) = failure.or(end.err()) {
        tracing::error!(error = %e, "write transaction failed; rolled back");
        let _ = execute(conn, "ROLLBACK").await;
        for job in ran {
            (job.answer)(Some(&e));
        }
        return;
    }
    for job in ran {
        (job.answer)(None);
    }
}

/// Copies committed WAL frames into the database file after commits, off
/// the writer's path: a `PASSIVE` checkpoint neither waits for the writer
/// nor holds it up. Ends when the writer closes.
async fn checkpoint_wal(
    mut conn: SqliteConnection,
    writer: Arc<Mutex<Option<SqliteConnection>>>,
    commits: Arc<Commits>,
    policy: CheckpointPolicy,
) {
    loop {
        commits.committed.notified().await;
        if commits.closed.load(Ordering::Acquire) {
            break;
        }
        if let Err(e) = checkpoint(&mut conn, &writer, policy.restart_frames).await {
            // The WAL only grows meanwhile; the next commit tries again,
            // and closing the store checkpoints it whole.
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
        tokio::time::sleep(policy.pause).await;
    }
    let _ = sqlx::Connection::close(conn).await;
}

/// One checkpoint. Once the WAL holds `restart_frames`, the writer is
/// held between batches for a second one, which then copies all of it (but
/// for frames a reader still uses), so that the next write starts the WAL
/// again from its beginning. Holding the writer here, rather than with
/// SQLite's `RESTART`, keeps SQLite's busy handler and its sleeps out of
/// the way.
async fn checkpoint(
    conn: &mut SqliteConnection,
    writer: &Mutex<Option<SqliteConnection>>,
    restart_frames: i64,
) -> sqlx::Result<()> {
    if passive_checkpoint(conn).await? >= restart_frames {
        let _between_batches = writer.lock().await;
        passive_checkpoint(conn).await?;
    }
    Ok(())
}

async fn passive_checkpoint(conn: &mut SqliteConnection) -> sqlx::Result<i64> {
    // (busy, frames in the WAL, frames copied); -1 when not in WAL mode.
    let (_, frames, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(conn)
        .await?;
    Ok(frames)
}

async fn execute(conn: &mut SqliteConnection, sql: &'static str) -> sqlx::Result<()> {
    sqlx::query(sql).execute(conn).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::ConnectOptions;

    use super::*;

    async fn writer() -> SqliteWriter {
        let options = SqliteConnectOptions::from_str("sqlite::memory:").unwrap();
        // A database in memory has no WAL: the checkpointer finds nothing.
        let writer = SqliteWriter::start(
            options.connect().await.unwrap(),
            options.connect().await.unwrap(),
            CheckpointPolicy::default(),
        );
        sqlx::query("CREATE TABLE t (n INTEGER PRIMARY KEY)")
            .execute(&mut *writer.lock().await.unwrap())
            .await
            .unwrap();
        writer
    }

    /// A writer on a database file in WAL mode that never checkpoints by
    /// itself, as the store opens it, with a table of 64 KiB rows.
    async fn writer_on_file(
        dir: &tempfile::TempDir,
        policy: CheckpointPolicy,
    ) -> (Arc<SqliteWriter>, std::path::PathBuf) {
        let path = dir.path().join("w.db");
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .pragma("wal_autocheckpoint", "0");
        let writer = SqliteWriter::start(
            options.connect().await.unwrap(),
            options.connect().await.unwrap(),
            policy,
        );
        sqlx::query("CREATE TABLE b (n INTEGER PRIMARY KEY, data BLOB)")
            .execute(&mut *writer.lock().await.unwrap())
            .await
            .unwrap();
        (Arc::new(writer), path)
    }

    async fn insert_blobs(writer: &SqliteWriter, rows: std::ops::Range<i64>) {
        for n in rows {
            writer
                .run(move |conn| {
                    Box::pin(async move {
                        sqlx::query("INSERT INTO b (n, data) VALUES ($1, zeroblob(65536))")
                            .bind(n)
                            .execute(&mut *conn)
                            .await?;
                        Ok(())
                    })
                })
                .await
                .unwrap();
        }
    }

    /// Waits up to ten seconds for `done` to hold of the file at `path`.
    async fn file_becomes(path: &std::path::Path, done: impl Fn(u64) -> bool) -> u64 {
        let mut len = 0;
        for _ in 0..200 {
            len = std::fs::metadata(path).map_or(0, |m| m.len());
            if done(len) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        len
    }

    /// Commits reach the database file without the writer checkpointing:
    /// the checkpointer copies them.
    #[tokio::test]
    async fn the_checkpointer_copies_commits_into_the_database_file() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, path) = writer_on_file(&dir, CheckpointPolicy::default()).await;
        insert_blobs(&writer, 0..32).await;
        // 32 rows of 64 KiB: 2 MiB, which only a checkpoint puts in the file.
        let len = file_becomes(&path, |len| len >= 2 << 20).await;
        assert!(len >= 2 << 20, "database file is {len} bytes");
        writer.close().await;
    }

    async fn rows(writer: &SqliteWriter) -> Vec<i64> {
        sqlx::query_scalar("SELECT n FROM t ORDER BY n")
            .fetch_all(&mut *writer.lock().await.unwrap())
            .await
            .unwrap()
    }

    /// Inserts `n`, then fails if `fail` (after writing: only a rollback
    /// can take the row back out).
    fn insert(
        writer: &Arc<SqliteWriter>,
        n: i64,
        fail: bool,
    ) -> tokio::task::JoinHandle<Result<i64>> {
        let writer = writer.clone();
        tokio::spawn(async move {
            writer
                .run(move |conn| {
                    Box::pin(async move {
                        sqlx::query("INSERT INTO t (n) VALUES ($1)")
                            .bind(n)
                            .execute(&mut *conn)
                            .await?;
                        if fail {
                            return Err(StoreError::NotFound);
                        }
                        Ok(n)
                    })
                })
                .await
        })
    }

    /// Jobs queued while the connection is held run as one batch when it
    /// is released; the one that fails after writing is undone alone.
    #[tokio::test]
    async fn a_failing_job_in_a_batch_is_rolled_back_alone() {
        let writer = Arc::new(writer().await);
        let held = writer.lock().await.unwrap();
        let jobs: Vec<_> = (1..=5).map(|n| insert(&writer, n, n % 2 == 0)).collect();
        // Let every job reach the queue before the writer can run them.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        drop(held);
        let mut answers = Vec::new();
        for job in jobs {
            answers.push(job.await.unwrap());
        }
        assert!(matches!(answers[0], Ok(1)));
        assert!(matches!(answers[1], Err(StoreError::NotFound)));
        assert!(matches!(answers[2], Ok(3)));
        assert!(matches!(answers[3], Err(StoreError::NotFound)));
        assert!(matches!(answers[4], Ok(5)));
        assert_eq!(rows(&writer).await, vec![1, 3, 5]);
    }

    /// A job alone runs without a savepoint; failing, it leaves nothing.
    #[tokio::test]
    async fn a_failing_job_alone_leaves_nothing() {
        let writer = Arc::new(writer().await);
        assert!(matches!(
            insert(&writer, 7, true).await.unwrap(),
            Err(StoreError::NotFound)
        ));
        assert!(matches!(insert(&writer, 8, false).await.unwrap(), Ok(8)));
        assert_eq!(rows(&writer).await, vec![8]);
    }

    /// A job that panics after writing is undone, its caller gets an
    /// error, and the writer goes on serving the others.
    #[tokio::test]
    async fn a_panicking_job_does_not_stop_the_writer() {
        let writer = Arc::new(writer().await);
        let held = writer.lock().await.unwrap();
        let before = insert(&writer, 1, false);
        let panicking = {
            let writer = writer.clone();
            tokio::spawn(async move {
                writer
                    .run(|conn| {
                        Box::pin(async move {
                            sqlx::query("INSERT INTO t (n) VALUES (2)")
                                .execute(&mut *conn)
                                .await?;
                            panic!("a bug in a job");
                            #[allow(unreachable_code)]
                            Ok(())
                        })
                    })
                    .await
            })
        };
        let after = insert(&writer, 3, false);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        drop(held);
        assert!(matches!(before.await.unwrap(), Ok(1)));
        let panicked = panicking.await.unwrap();
        assert!(panicked.is_err());
        // A bug, not an outage: no 503 inviting the client to retry it.
        assert!(!panicked.unwrap_err().is_unavailable());
        assert!(matches!(after.await.unwrap(), Ok(3)));
        assert!(matches!(insert(&writer, 4, false).await.unwrap(), Ok(4)));
        assert_eq!(rows(&writer).await, vec![1, 3, 4]);
    }

    /// Under writes that never pause, a WAL that reaches the policy's
    /// length still starts again from its beginning instead of growing.
    #[tokio::test]
    async fn a_long_wal_starts_again_under_steady_writes() {
        let dir = tempfile::tempdir().unwrap();
        let policy = CheckpointPolicy {
            pause: std::time::Duration::from_millis(5),
            restart_frames: 64,
        };
        let (writer, _) = writer_on_file(&dir, policy).await;
        let wal = dir.path().join("w.db-wal");
        // Four writers, 12.5 MiB in all, with no pause between commits.
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let writer = writer.clone();
                tokio::spawn(async move { insert_blobs(&writer, w * 50..w * 50 + 50).await })
            })
            .collect();
        let mut longest = 0;
        while !writers.iter().all(|w| w.is_finished()) {
            longest = longest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        for w in writers {
            w.await.unwrap();
        }
        assert!(longest < 6 << 20, "the WAL grew to {longest} bytes");
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM b")
            .fetch_one(&mut *writer.lock().await.unwrap())
            .await
            .unwrap();
        assert_eq!(rows, 200);
        writer.close().await;
    }

    /// After close, writes fail as on a closed pool instead of hanging.
    #[tokio::test]
    async fn writes_after_close_fail() {
        let writer = Arc::new(writer().await);
        writer.close().await;
        assert!(matches!(
            insert(&writer, 1, false).await.unwrap(),
            Err(StoreError::Database(sqlx::Error::PoolClosed))
        ));
        assert!(writer.lock().await.is_err());
    }
}
