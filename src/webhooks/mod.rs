//! Webhooks: the rules a delivery follows, kept free of HTTP handlers and
//! SQL so they are tested alone — how a message is signed ([`signing`]),
//! where one may be sent ([`address`]) and when a failed one is tried
//! again ([`backoff`]). The deliverer that follows them, with the store
//! and an HTTP client, is [`delivery`].

pub mod address;
pub mod backoff;
pub mod delivery;
pub mod signing;
