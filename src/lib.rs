//! scimd: a SCIM 2.0 directory server.
//!
//! [`startup::Application`] builds the whole service (store, auth, router)
//! so that `main` and the integration tests start it the same way.

pub mod audit;
pub mod auth;
pub mod config;
pub mod directory;
pub mod domain_check;
pub mod feed;
pub mod http;
pub mod mail;
pub mod metrics;
pub mod scim;
pub mod startup;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod time;
pub mod webhooks;

#[cfg(test)]
mod boundaries;
