//! The store's errors, in domain terms.

/// A failure of the store, in domain terms.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A unique constraint rejected the write; names the SCIM attribute.
    #[error("{0} is already taken")]
    Conflict(&'static str),
    /// A unique constraint rejected the write, said in full (which value
    /// is taken, and by what).
    #[error("{0}")]
    Taken(String),
    /// `If-Match` named a version that is no longer current.
    #[error("version mismatch")]
    PreconditionFailed,
    /// Members to add named ids that are not users or groups of the
    /// directory; nothing was written.
    #[error("one or more members do not exist in this directory")]
    UnknownMembers,
    /// A thing an admin write names does not exist; says which.
    #[error("{0}")]
    Missing(String),
    /// An admin write refused by a rule of the organisation model (a
    /// name another kind of group holds, a synced default group); says why.
    #[error("{0}")]
    Refused(String),
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database URL names no store this server can use.
    #[error("unsupported database URL (use sqlite:// or postgres://): {0}")]
    UnsupportedUrl(String),
    /// A write job of SQLite's writer panicked and was rolled back: a fault
    /// of the server, not a passing unavailability.
    #[error("a write failed inside the server and was rolled back")]
    WriteJobPanicked,
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    /// The database itself failed the work (as opposed to refusing what
    /// the client asked for): a PostgreSQL connection is tested before it
    /// is used again after one.
    pub fn is_database_failure(&self) -> bool {
        matches!(self, StoreError::Database(_) | StoreError::Migrate(_))
    }

    /// The database could not be reached, or dropped the connection
    /// mid-query (a restart, a failover, an exhausted pool): nothing is
    /// wrong with the request, and the same request may succeed if retried.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Database(e) => match e {
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed => true,
                // PostgreSQL: class 08 is a connection exception; 57P01-03
                // are the server shutting down or not yet accepting.
                sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                    code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03")
                }),
                _ => false,
            },
            _ => false,
        }
    }
}

/// Turns a unique-constraint violation into [`StoreError::Conflict`] right
/// where the query runs, instead of `map_err` noise at every call site.
pub(crate) trait OnConflict<T> {
    fn on_conflict(self, attr: &'static str) -> Result<T>;
}

impl<T> OnConflict<T> for std::result::Result<T, sqlx::Error> {
    fn on_conflict(self, attr: &'static str) -> Result<T> {
        self.map_err(|e| match &e {
            sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::UniqueViolation => {
                StoreError::Conflict(attr)
            }
            _ => StoreError::Database(e),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Refusals of what the client asked leave a connection sound; what
    /// the database itself failed makes it doubtful.
    #[test]
    fn only_database_failures_make_a_connection_doubtful() {
        for client in [
            StoreError::NotFound,
            StoreError::Conflict("userName"),
            StoreError::Taken("externalId 'x' is already used by user 1".into()),
            StoreError::PreconditionFailed,
            StoreError::UnknownMembers,
            StoreError::Missing("group 1 not found".into()),
            StoreError::Refused("a synced group".into()),
        ] {
            assert!(!client.is_database_failure(), "{client}");
        }
        for database in [
            StoreError::Database(sqlx::Error::Io(std::io::ErrorKind::BrokenPipe.into())),
            StoreError::Database(sqlx::Error::Protocol("garbled".into())),
        ] {
            assert!(database.is_database_failure(), "{database}");
        }
    }
}
