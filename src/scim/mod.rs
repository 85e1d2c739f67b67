//! The SCIM 2.0 protocol, pure: no I/O, no HTTP, no SQL.

pub mod bulk;
pub mod cursor;
pub mod error;
pub mod filter;
pub(crate) mod json;
pub mod list;
pub mod patch;
pub mod path;
pub mod resource;
pub mod schema;

pub use error::{ScimError, ScimType};
