//! The few things the store's shared algorithms ask of a connection.
//!
//! Paging, the audit log's inserts and the other work that reads and writes
//! the same way on both stores is written once, as functions generic over
//! [`Conn`], which SQLite's and PostgreSQL's connections implement. A
//! statement is SQL text and a slice of [`Arg`]s; rows come back as any
//! type both drivers can decode ([`Record`]). sqlx's own bounds stay here.

use std::borrow::Cow;
use std::future::Future;

use futures_util::stream::BoxStream;

use sqlx::postgres::{PgArguments, PgRow};
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Arguments, FromRow, PgConnection, SqliteConnection};
use uuid::Uuid;

use super::filter_sql::Bind;
use super::Dialect;

/// A value bound to a placeholder, typed as the column it meets: a `NULL`
/// keeps its type, which PostgreSQL checks.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Arg<'a> {
    Text(Option<Cow<'a, str>>),
    BigInt(Option<i64>),
    Int(Option<i32>),
    Float(f64),
    Bool(bool),
    Uuid(Option<Uuid>),
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(Some(Cow::Borrowed(v)))
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Text(Some(Cow::Borrowed(v)))
    }
}

impl From<String> for Arg<'_> {
    fn from(v: String) -> Self {
        Arg::Text(Some(Cow::Owned(v)))
    }
}

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Arg::Text(v.map(Cow::Borrowed))
    }
}

impl From<Option<String>> for Arg<'_> {
    fn from(v: Option<String>) -> Self {
        Arg::Text(v.map(Cow::Owned))
    }
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::BigInt(Some(v))
    }
}

impl From<Option<i64>> for Arg<'_> {
    fn from(v: Option<i64>) -> Self {
        Arg::BigInt(v)
    }
}

impl From<Option<i32>> for Arg<'_> {
    fn from(v: Option<i32>) -> Self {
        Arg::Int(v)
    }
}

impl From<bool> for Arg<'_> {
    fn from(v: bool) -> Self {
        Arg::Bool(v)
    }
}

impl From<Uuid> for Arg<'_> {
    fn from(v: Uuid) -> Self {
        Arg::Uuid(Some(v))
    }
}

impl From<Option<Uuid>> for Arg<'_> {
    fn from(v: Option<Uuid>) -> Self {
        Arg::Uuid(v)
    }
}

impl<'a> From<&'a Bind> for Arg<'a> {
    fn from(b: &'a Bind) -> Self {
        match b {
            Bind::Text(v) => v.into(),
            Bind::Uuid(v) => (*v).into(),
            Bind::Int(v) => (*v).into(),
            Bind::Float(v) => Arg::Float(*v),
            Bind::Bool(v) => (*v).into(),
        }
    }
}

/// A row type both drivers can decode: a `sqlx::FromRow` struct, or a
/// tuple (`(i64,)` for a scalar).
pub(crate) trait Record:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin + 'static
{
}

impl<T> Record for T where
    T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin + 'static
{
}

/// A connection (or a transaction on one) of either store. Every future is
/// `Send`: SQLite's writer runs its jobs on a task of its own, and requests
/// are spawned.
pub(crate) trait Conn: Send {
    const DIALECT: Dialect;

    /// Runs a statement; the rows it changed.
    fn execute<'a>(
        &'a mut self,
        sql: &'a str,
        args: &'a [Arg<'a>],
    ) -> impl Future<Output = Result<u64, sqlx::Error>> + Send + 'a;

    fn fetch_all<'a, R: Record>(
        &'a mut self,
        sql: &'a str,
        args: &'a [Arg<'a>],
    ) -> impl Future<Output = Result<Vec<R>, sqlx::Error>> + Send + 'a;

    fn fetch_optional<'a, R: Record>(
        &'a mut self,
        sql: &'a str,
        args: &'a [Arg<'a>],
    ) -> impl Future<Output = Result<Option<R>, sqlx::Error>> + Send + 'a;

    /// The one row a statement returns (a count, an aggregate).
    fn fetch_one<'a, R: Record>(
        &'a mut self,
        sql: &'a str,
        args: &'a [Arg<'a>],
    ) -> impl Future<Output = Result<R, sqlx::Error>> + Send + 'a;

    /// The rows one by one, as the database sends them.
    fn fetch<'a, R: Record>(
        &'a mut self,
        sql: &'a str,
        args: &'a [Arg<'a>],
    ) -> BoxStream<'a, Result<R, sqlx::Error>>;
}

/// The arguments of a statement. Plain values (text, numbers, booleans,
/// UUIDs) always encode, as sqlx's `QueryBuilder` also assumes; should one
/// ever fail, the statement fails with sqlx's own encoding error.
fn sqlite_args<'a>(args: &'a [Arg<'a>]) -> Result<SqliteArguments<'a>, sqlx::Error> {
    let mut out = SqliteArguments::default();
    for arg in args {
        match arg {
            Arg::Text(v) => out.add(v.as_deref()),
            Arg::BigInt(v) => out.add(*v),
            Arg::Int(v) => out.add(*v),
            Arg::Float(v) => out.add(*v),
            Arg::Bool(v) => out.add(*v),
            Arg::Uuid(v) => out.add(*v),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    Ok(out)
}

/// [`sqlite_args`] for PostgreSQL.
fn pg_args(args: &[Arg<'_>]) -> Result<PgArguments, sqlx::Error> {
    let mut out = PgArguments::default();
    for arg in args {
        match arg {
            Arg::Text(v) => out.add(v.as_deref()),
            Arg::BigInt(v) => out.add(*v),
            Arg::Int(v) => out.add(*v),
            Arg::Float(v) => out.add(*v),
            Arg::Bool(v) => out.add(*v),
            Arg::Uuid(v) => out.add(*v),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    Ok(out)
}

/// A stream that fails at once, for a statement whose arguments did not
/// encode.
fn failed<'a, R: Send + 'a>(e: sqlx::Error) -> BoxStream<'a, Result<R, sqlx::Error>> {
    Box::pin(futures_util::stream::once(async move { Err(e) }))
}

impl Conn for SqliteConnection {
    const DIALECT: Dialect = Dialect::Sqlite;

    async fn execute<'a>(
        &'a mut self,
        sql: &'a str,
        args: &'a [Arg<'a>],
    ) -> Result<u64, sqlx::Error> {
        let q = sqlx::query_with(sql, sqlite_args(args)?);
        Ok(q.execute(self).await?.rows_affected())
    }

    async fn fetch_all<'a, R: Record>(
        &'a mut self,
        sql: &'a str,
        args: &'a [Arg<'a>],
    ) -> Result<Vec<R>, sqlx::Error> {
        sqlx::query_as_with(sql, sqlite_args(args)?)
            .fetch_all(self)
            .await
    }

    async fn fetch_optional<'a, R: Record>(
        &'a mut self,
        sql: &'a str,
        args: &'a [Arg<'a>],
    ) -> Result<Option<R>, sqlx::Error> {
        sqlx::query_as_with(sql, sqlite_args(args)?)
            .fetch_optional(self)
            .await
    }

    async fn fetch_one<'a, R: Record>(
        &'a mut self,
        sql: &'a str,
        args: &'a [Arg<'a>],
    ) -> Result<R, sqlx::Error> {
        sqlx::query_as_with(sql, sqlite_args(args)?)
            .fetch_one(self)
            .await
    }

    fn fetch<'a, R: Record>(
        &'a mut self,
        sql: &'a str,
        args: &'a [Arg<'a>],
    ) -> BoxStream<'a, Result<R, sqlx::Error>> {
        match sqlite_args(args) {
            Ok(args) => sqlx::query_as_with(sql, args).fetch(self),
            Err(e) => failed(e),
        }
    }
}

impl Conn for PgConnection {
    const DIALECT: Dialect = Dialect::Postgres;

    async fn execute<'a>(
        &'a mut self,
        sql: &'a str,
        args: &'a [Arg<'a>],
    ) -> Result<u64, sqlx::Error> {
        let q = sqlx::query_with(sql, pg_args(args)?);
        Ok(q.execute(self).await?.rows_affected())
    }

    async fn fetch_all<'a, R: Record>(
        &'a mut self,
        sql: &'a str,
        args: &'a [Arg<'a>],
    ) -> Result<Vec<R>, sqlx::Error> {
        sqlx::query_as_with(sql, pg_args(args)?)
            .fetch_all(self)
            .await
    }

    async fn fetch_optional<'a, R: Record>(
        &'a mut self,
        sql: &'a str,
        args: &'a [Arg<'a>],
    ) -> Result<Option<R>, sqlx::Error> {
        sqlx::query_as_with(sql, pg_args(args)?)
            .fetch_optional(self)
            .await
    }

    async fn fetch_one<'a, R: Record>(
        &'a mut self,
        sql: &'a str,
        args: &'a [Arg<'a>],
    ) -> Result<R, sqlx::Error> {
        sqlx::query_as_with(sql, pg_args(args)?)
            .fetch_one(self)
            .await
    }

    fn fetch<'a, R: Record>(
        &'a mut self,
        sql: &'a str,
        args: &'a [Arg<'a>],
    ) -> BoxStream<'a, Result<R, sqlx::Error>> {
        match pg_args(args) {
            Ok(args) => sqlx::query_as_with(sql, args).fetch(self),
            Err(e) => failed(e),
        }
    }
}

/// SQL text written as values are bound, numbered as sqlx's
/// `QueryBuilder` numbers them (`?` on SQLite, `$n` on PostgreSQL), for
/// statements whose length depends on the values (`IN` lists, `VALUES`
/// rows).
pub(crate) struct SqlBuilder<'a> {
    sql: String,
    args: Vec<Arg<'a>>,
    dialect: Dialect,
}

impl<'a> SqlBuilder<'a> {
    pub(crate) fn new(dialect: Dialect, sql: impl Into<String>) -> Self {
        SqlBuilder {
            sql: sql.into(),
            args: Vec::new(),
            dialect,
        }
    }

    pub(crate) fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    pub(crate) fn push_bind(&mut self, arg: impl Into<Arg<'a>>) -> &mut Self {
        self.args.push(arg.into());
        match self.dialect {
            Dialect::Sqlite => self.sql.push('?'),
            Dialect::Postgres => {
                self.sql.push('$');
                self.sql.push_str(&self.args.len().to_string());
            }
        }
        self
    }

    /// `a, b, c`: one placeholder per value.
    pub(crate) fn push_list<T: Into<Arg<'a>>>(
        &mut self,
        values: impl IntoIterator<Item = T>,
    ) -> &mut Self {
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.push_bind(v);
        }
        self
    }

    /// `VALUES (a, b), (c, d)`: `row` binds each row's values.
    pub(crate) fn push_values<T>(
        &mut self,
        rows: impl IntoIterator<Item = T>,
        mut row: impl FnMut(T) -> Vec<Arg<'a>>,
    ) -> &mut Self {
        self.sql.push_str("VALUES ");
        for (i, r) in rows.into_iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.sql.push('(');
            self.push_list(row(r));
            self.sql.push(')');
        }
        self
    }

    pub(crate) fn sql(&self) -> &str {
        &self.sql
    }

    pub(crate) fn args(&self) -> &[Arg<'a>] {
        &self.args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Placeholders are numbered as sqlx's `QueryBuilder` numbers them, so
    /// statements built either way have the same text.
    #[test]
    fn placeholders_match_sqlx_query_builder() {
        let ids = [Uuid::nil(), Uuid::max()];
        for d in [Dialect::Sqlite, Dialect::Postgres] {
            let mut ours = SqlBuilder::new(d, "DELETE FROM t WHERE g = ");
            ours.push_bind(Uuid::nil()).push(" AND m IN (");
            ours.push_list(ids).push(")");
            let mut values = SqlBuilder::new(d, "INSERT INTO t (a, b) ");
            values.push_values(ids, |id| vec![id.into(), "x".into()]);
            let (theirs, their_values) = match d {
                Dialect::Sqlite => {
                    let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new("DELETE FROM t WHERE g = ");
                    q.push_bind(Uuid::nil()).push(" AND m IN (");
                    let mut sep = q.separated(", ");
                    for id in ids {
                        sep.push_bind(id);
                    }
                    q.push(")");
                    let mut v = sqlx::QueryBuilder::<sqlx::Sqlite>::new("INSERT INTO t (a, b) ");
                    v.push_values(ids, |mut row, id| {
                        row.push_bind(id).push_bind("x");
                    });
                    (q.sql().to_owned(), v.sql().to_owned())
                }
                Dialect::Postgres => {
                    let mut q =
                        sqlx::QueryBuilder::<sqlx::Postgres>::new("DELETE FROM t WHERE g = ");
                    q.push_bind(Uuid::nil()).push(" AND m IN (");
                    let mut sep = q.separated(", ");
                    for id in ids {
                        sep.push_bind(id);
                    }
                    q.push(")");
                    let mut v = sqlx::QueryBuilder::<sqlx::Postgres>::new("INSERT INTO t (a, b) ");
                    v.push_values(ids, |mut row, id| {
                        row.push_bind(id).push_bind("x");
                    });
                    (q.sql().to_owned(), v.sql().to_owned())
                }
            };
            assert_eq!(ours.sql(), theirs);
            assert_eq!(values.sql(), their_values);
            assert_eq!(ours.args().len(), 3);
        }
    }
}
