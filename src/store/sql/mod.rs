//! SQL text, both dialects side by side, and the statement caches the hot
//! paths pick from by name. Statements short enough to read in place, or
//! built for one call (filters, `IN` lists), stay with the code that runs
//! them.

use crate::store::accel::coalesce::MOST_PER_BATCH;
use crate::store::Dialect;

pub(crate) mod audit;
pub(crate) mod groups;
pub(crate) mod users;

/// A statement family built for each store.
pub(crate) struct PerStore<T> {
    sqlite: T,
    postgres: T,
}

impl<T> PerStore<T> {
    fn build(build: impl Fn(Dialect) -> T) -> Self {
        PerStore {
            sqlite: build(Dialect::Sqlite),
            postgres: build(Dialect::Postgres),
        }
    }

    pub(crate) fn of(&self, d: Dialect) -> &T {
        match d {
            Dialect::Sqlite => &self.sqlite,
            Dialect::Postgres => &self.postgres,
        }
    }
}

/// One statement for each number of rows a batch can hold, from 1 to
/// [`MOST_PER_BATCH`].
pub(crate) struct BySize(Vec<String>);

impl BySize {
    fn build(build: impl Fn(usize) -> String) -> Self {
        BySize((1..=MOST_PER_BATCH).map(build).collect())
    }

    /// The statement for `rows` rows (at least one).
    pub(crate) fn rows(&self, rows: usize) -> &str {
        &self.0[rows - 1]
    }
}

/// A batch statement by size, without and with the rows' events.
pub(crate) struct Batches {
    without_events: BySize,
    with_events: BySize,
}

impl Batches {
    fn build(build: fn(usize, bool) -> String) -> Self {
        Batches {
            without_events: BySize::build(|rows| build(rows, false)),
            with_events: BySize::build(|rows| build(rows, true)),
        }
    }

    pub(crate) fn get(&self, rows: usize, with_events: bool) -> &str {
        match with_events {
            false => self.without_events.rows(rows),
            true => self.with_events.rows(rows),
        }
    }
}
