//! SQL text, both dialects side by side, and the statement caches that
//! the hot paths pick from by name.

pub(crate) mod users;
