//! The directory's domain rules: what a valid user or group is, which of a
//! user's emails is its primary one, and which audit events a change
//! produces. No SQL and no HTTP here: the HTTP layer parses requests into
//! the types of this module, and the store persists them, calling back into
//! it where a rule needs the stored state (the events of an update compare
//! the stored document with the new one).
//!
//! The organisation model (domains, accounts, sites, product access) grows
//! here too.

pub mod access;
pub mod account;
pub mod domain;
pub mod events;
pub mod group;
pub mod sync_settings;
pub mod user;

pub use domain::DomainName;
pub use group::{GroupChange, GroupDraft, MemberChange};
pub use user::UserDraft;
