//! What only SQLite needs: one writer task with group commit, and read
//! connections lent without a round trip.

pub(crate) mod readers;
pub(crate) mod writer;
