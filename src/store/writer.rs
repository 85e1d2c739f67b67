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
//! [`lock`]: SqliteWriter::lock

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use sqlx::SqliteConnection;
use tokio::sync::{mpsc, oneshot, Mutex, MutexGuard};

use super::{Result, StoreError};

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

/// The handle to SQLite's writer: cheap to share, one per store.
pub(crate) struct SqliteWriter {
    conn: Arc<Mutex<Option<SqliteConnection>>>,
    jobs: mpsc::UnboundedSender<Box<dyn Job>>,
}

impl SqliteWriter {
    /// Starts the writer task on `conn`. It ends when the writer is
    /// dropped.
    pub(crate) fn start(conn: SqliteConnection) -> SqliteWriter {
        let conn = Arc::new(Mutex::new(Some(conn)));
        let (jobs, queue) = mpsc::unbounded_channel();
        tokio::spawn(run_jobs(conn.clone(), queue));
        SqliteWriter { conn, jobs }
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
            Err(StoreError::Database(sqlx::Error::Protocol(
                "a write failed inside the server and was rolled back".into(),
            )))
        })
    }

    /// The connection itself, between batches, for writes that are not
    /// jobs. The caller runs its own transaction on it.
    pub(crate) async fn lock(&self) -> Result<Locked<'_>> {
        let guard = self.conn.lock().await;
        if guard.is_none() {
            return Err(StoreError::Database(sqlx::Error::PoolClosed));
        }
        Ok(Locked(guard))
    }

    /// Closes the connection once the current batch is done (which
    /// checkpoints the WAL); later writes fail as on a closed pool.
    pub(crate) async fn close(&self) {
        if let Some(conn) = self.conn.lock().await.take() {
            let _ = sqlx::Connection::close(conn).await;
        }
    }
}

/// The writer's connection, held by one caller.
pub(crate) struct Locked<'a>(MutexGuard<'a, Option<SqliteConnection>>);

impl std::ops::Deref for Locked<'_> {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        self.0.as_ref().expect("checked when locked")
    }
}

impl std::ops::DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.0.as_mut().expect("checked when locked")
    }
}

async fn run_jobs(
    conn: Arc<Mutex<Option<SqliteConnection>>>,
    mut queue: mpsc::UnboundedReceiver<Box<dyn Job>>,
) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut guard = conn.lock().await;
        match guard.as_mut() {
            Some(conn) => run_batch(conn, std::mem::take(&mut batch)).await,
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
        let conn = SqliteConnectOptions::from_str("sqlite::memory:")
            .unwrap()
            .connect()
            .await
            .unwrap();
        let writer = SqliteWriter::start(conn);
        sqlx::query("CREATE TABLE t (n INTEGER PRIMARY KEY)")
            .execute(&mut *writer.lock().await.unwrap())
            .await
            .unwrap();
        writer
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
