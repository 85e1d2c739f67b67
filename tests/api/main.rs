//! Black-box HTTP tests: every test spawns the real server on a random port
//! with a fresh database (SQLite by default, PostgreSQL when
//! `TEST_DATABASE_URL` is set). One test binary, so the crate links once.

// Test and benchmark code: an unexpected value ends the run, and the
// failure is the report (the crate denies these lints elsewhere).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod access_audit;
mod accounts;
mod admin;
mod atlassian_links;
mod attribute_names;
mod audit;
mod auth;
mod billing;
mod bulk;
mod caching;
mod concurrency;
mod console;
mod console_browser;
mod cursor_paging;
mod discovery;
mod domains;
mod errors;
mod events;
mod groups;
mod health;
mod helpers;
mod idp;
mod idp_entra;
mod idp_okta;
mod listing;
mod metrics;
mod openapi;
mod org_groups;
mod outbox;
mod rate_limits;
mod seed;
mod sites;
mod sync;
mod sync_crash;
mod sync_settings;
mod users;
mod webhooks;
