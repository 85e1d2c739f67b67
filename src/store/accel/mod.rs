//! What makes the store fast without changing what it answers: look-ups
//! and creations answered together, users kept in memory while current,
//! and remembered list positions.

pub(crate) mod coalesce;
pub(crate) mod cursors;
pub(crate) mod paging;
pub(crate) mod user_cache;
