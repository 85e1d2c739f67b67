//! What only PostgreSQL needs: connections lent without a ping, and the
//! feed of other processes' changes.

pub(crate) mod changes;
pub(crate) mod connections;
