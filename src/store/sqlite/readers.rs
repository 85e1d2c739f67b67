//! SQLite's read connections, handed out without a round trip.
//!
//! sqlx's pool pings a connection when it is returned, and for SQLite a
//! ping is a hand-off to the connection's thread and back; with the pool's
//! own bookkeeping that cost about as much as the query of a
//! `GET /Users/{id}`. An in-process SQLite connection cannot be dropped by
//! a server, so there is nothing to test: these connections are opened
//! once and lent out by a semaphore and a list.

use std::sync::Mutex;
use std::time::Instant;

use prometheus_client::metrics::histogram::Histogram;
use sqlx::SqliteConnection;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::store::stats::PoolStatus;
use crate::store::{Result, StoreError};

pub(crate) struct SqliteReaders {
    idle: Mutex<Vec<SqliteConnection>>,
    /// One permit per connection: a caller holding one is sure to find
    /// an idle connection.
    permits: Semaphore,
    size: usize,
    /// How long each [`Self::acquire`] waited.
    wait: Histogram,
}

impl SqliteReaders {
    pub(crate) fn new(conns: Vec<SqliteConnection>, wait: Histogram) -> SqliteReaders {
        SqliteReaders {
            permits: Semaphore::new(conns.len()),
            size: conns.len(),
            idle: Mutex::new(conns),
            wait,
        }
    }

    /// A connection, waiting for one to be returned if all are lent.
    pub(crate) async fn acquire(&self) -> Result<Reader<'_>> {
        let closed = || StoreError::Database(sqlx::Error::PoolClosed);
        let started = Instant::now();
        let permit = self.permits.acquire().await.map_err(|_| closed())?;
        let conn = self.idle().pop().ok_or_else(closed)?;
        self.wait.observe(started.elapsed().as_secs_f64());
        Ok(Reader {
            conn: Some(conn),
            readers: self,
            _permit: permit,
        })
    }

    /// How many connections there are, idle and lent.
    pub(crate) fn status(&self) -> PoolStatus {
        let idle = self.idle().len();
        PoolStatus {
            max: self.size,
            idle,
            in_use: self.size.saturating_sub(idle),
        }
    }

    /// Refuses new readers and closes the idle connections; one still lent
    /// is dropped (and so closed) with the store.
    pub(crate) async fn close(&self) {
        self.permits.close();
        let idle = std::mem::take(&mut *self.idle());
        for conn in idle {
            let _ = sqlx::Connection::close(conn).await;
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<SqliteConnection>> {
        // The list is consistent between statements: a panic elsewhere
        // while it was locked leaves nothing half done.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A lent connection; it goes back to the list when dropped. A query cut
/// short by a dropped request is reset by sqlx before the connection's
/// next command, so it can be lent again as it is.
pub(crate) struct Reader<'a> {
    conn: Option<SqliteConnection>,
    readers: &'a SqliteReaders,
    _permit: SemaphorePermit<'a>,
}

impl std::ops::Deref for Reader<'_> {
    type Target = SqliteConnection;
    #[expect(clippy::expect_used, reason = "the connection is taken only on drop")]
    fn deref(&self) -> &SqliteConnection {
        self.conn.as_ref().expect("held until dropped")
    }
}

impl std::ops::DerefMut for Reader<'_> {
    #[expect(clippy::expect_used, reason = "the connection is taken only on drop")]
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.conn.as_mut().expect("held until dropped")
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.readers.idle().push(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;
    use std::time::Duration;

    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::ConnectOptions;

    use super::*;

    async fn readers(n: usize) -> SqliteReaders {
        let mut conns = Vec::new();
        for _ in 0..n {
            conns.push(
                SqliteConnectOptions::from_str("sqlite::memory:")
                    .unwrap()
                    .connect()
                    .await
                    .unwrap(),
            );
        }
        SqliteReaders::new(conns, Histogram::new([1.0]))
    }

    /// With every connection lent, a caller waits for one to come back
    /// instead of failing or opening another.
    #[tokio::test]
    async fn a_caller_waits_for_a_returned_connection() {
        let readers = readers(1).await;
        let held = readers.acquire().await.unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(20), readers.acquire())
                .await
                .is_err()
        );
        drop(held);
        let mut again = readers.acquire().await.unwrap();
        let one: i64 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&mut *again)
            .await
            .unwrap();
        assert_eq!(one, 1);
    }

    /// The status counts lent and idle connections, and each acquire is
    /// timed.
    #[tokio::test]
    async fn the_status_follows_the_lent_connections() {
        let mut conns = Vec::new();
        for _ in 0..2 {
            conns.push(
                SqliteConnectOptions::from_str("sqlite::memory:")
                    .unwrap()
                    .connect()
                    .await
                    .unwrap(),
            );
        }
        let wait = Histogram::new([1.0]);
        let readers = SqliteReaders::new(conns, wait.clone());
        let status = |max, idle, in_use| PoolStatus { max, idle, in_use };
        assert_eq!(readers.status(), status(2, 2, 0));
        let held = readers.acquire().await.unwrap();
        assert_eq!(readers.status(), status(2, 1, 1));
        drop(held);
        assert_eq!(readers.status(), status(2, 2, 0));
        let mut text = String::new();
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register("wait", "", wait);
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("wait_count 1\n"), "{text}");
    }

    /// A query dropped halfway (a client gone) leaves a connection that
    /// answers the next query correctly.
    #[tokio::test]
    async fn a_connection_is_reusable_after_a_dropped_query() {
        use futures_util::TryStreamExt;
        let readers = readers(1).await;
        {
            let mut conn = readers.acquire().await.unwrap();
            let mut rows = sqlx::query_scalar::<_, i64>(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000) \
                 SELECT i FROM n",
            )
            .fetch(&mut *conn);
            assert_eq!(rows.try_next().await.unwrap(), Some(1));
        }
        let mut conn = readers.acquire().await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT 42")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(n, 42);
    }

    #[tokio::test]
    async fn a_closed_set_refuses_callers() {
        let readers = readers(2).await;
        readers.close().await;
        assert!(matches!(
            readers.acquire().await,
            Err(StoreError::Database(sqlx::Error::PoolClosed))
        ));
    }
}
