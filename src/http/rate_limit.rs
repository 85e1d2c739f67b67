//! Request rates: a token bucket per directory (SCIM requests, keyed by
//! the directory the API key authenticates) and per admin token (the admin
//! API). Over its rate a request is answered `429` with `Retry-After`, in
//! whole seconds, before any handler, database work or audit event.
//!
//! The layers sit on the SCIM and admin routers only: `/healthz`,
//! `/readyz` and `/metrics` are never limited. A request without a valid
//! credential passes through to the extractor that refuses it (it belongs
//! to no bucket). The principal the layer verified is left in the
//! request's extensions, so the extractor does not verify it again.
//!
//! Buckets are governor's keyed rate limiters: one for the default quota,
//! and one for each distinct quota a directory has been given through the
//! admin API. A directory whose quota changes starts with a full bucket in
//! the limiter of its new quota. Every minute the buckets that have filled
//! up again (indistinguishable from new ones) are dropped, so memory follows
//! the directories and tokens active within the last minute, not all of
//! them.

use std::collections::HashMap;
use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use uuid::Uuid;

use super::error::{scim_error_response, AdminError};
use super::extract::{bearer, Authenticated};
use super::AppState;
use crate::auth::Principal;
use crate::scim::{ScimError, ScimType};
use crate::store::RateLimit;

/// How often buckets that filled up again are dropped.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

fn quota(limit: RateLimit) -> Option<Quota> {
    let per_second = NonZeroU32::new(limit.per_second)?;
    let burst = NonZeroU32::new(limit.burst)?;
    Some(Quota::per_second(per_second).allow_burst(burst))
}

/// `Retry-After` for a wait: whole seconds, rounded up, at least 1.
pub fn retry_after_seconds(wait: Duration) -> u64 {
    let whole = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    whole.max(1)
}

/// Buckets keyed by `K`, under a default limit (None: unlimited) and any
/// number of other limits given to some keys.
pub struct Buckets<K: Hash + Eq + Clone> {
    default: Option<(RateLimit, DefaultKeyedRateLimiter<K>)>,
    others: RwLock<HashMap<RateLimit, Arc<DefaultKeyedRateLimiter<K>>>>,
    clock: DefaultClock,
    started: Instant,
    /// Milliseconds after `started` of the last sweep.
    swept_at: AtomicU64,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    pub fn new(default: Option<RateLimit>) -> Self {
        Buckets {
            default: default.and_then(|l| Some((l, DefaultKeyedRateLimiter::keyed(quota(l)?)))),
            others: RwLock::new(HashMap::new()),
            clock: DefaultClock::default(),
            started: Instant::now(),
            swept_at: AtomicU64::new(0),
        }
    }

    /// Takes a token from `key`'s bucket under `own` (its own limit) or
    /// the default; Err is how long until one is available.
    pub fn check(&self, key: &K, own: Option<RateLimit>) -> Result<(), Duration> {
        self.sweep_if_due();
        let checked = match own {
            Some(limit) if self.default.as_ref().map(|(l, _)| *l) != Some(limit) => {
                self.limiter_for(limit).map(|l| l.check_key(key))
            }
            _ => self.default.as_ref().map(|(_, l)| l.check_key(key)),
        };
        match checked {
            None | Some(Ok(())) => Ok(()),
            Some(Err(not_until)) => Err(not_until.wait_time_from(self.clock.now())),
        }
    }

    fn limiter_for(&self, limit: RateLimit) -> Option<Arc<DefaultKeyedRateLimiter<K>>> {
        if let Some(found) = self.others.read().ok()?.get(&limit) {
            return Some(found.clone());
        }
        let mut others = self.others.write().ok()?;
        let limiter = others
            .entry(limit)
            .or_insert(Arc::new(DefaultKeyedRateLimiter::keyed(quota(limit)?)));
        Some(limiter.clone())
    }

    fn sweep_if_due(&self) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.swept_at.load(Ordering::Relaxed);
        let due = now.saturating_sub(last) >= SWEEP_EVERY.as_millis() as u64;
        if due
            && self
                .swept_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.sweep();
        }
    }

    /// Drops the buckets that are full again, and the limiters of other
    /// limits that hold no bucket any more.
    pub fn sweep(&self) {
        if let Some((_, limiter)) = &self.default {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        // Under the read lock, so that requests go on meanwhile; only the
        // removal of empty limiters takes the write lock.
        if let Ok(others) = self.others.read() {
            for limiter in others.values() {
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        }
        if let Ok(mut others) = self.others.write() {
            others.retain(|_, limiter| !limiter.is_empty());
        }
    }

    /// Buckets kept in memory (for tests and diagnostics).
    pub fn len(&self) -> usize {
        let default = self.default.as_ref().map_or(0, |(_, l)| l.len());
        let others = self
            .others
            .read()
            .map_or(0, |o| o.values().map(|l| l.len()).sum());
        default + others
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The server's buckets: per directory, per admin token.
pub struct RateLimits {
    pub directories: Buckets<Uuid>,
    pub admin_tokens: Buckets<String>,
}

impl RateLimits {
    pub fn new(scim: Option<RateLimit>, admin: Option<RateLimit>) -> Self {
        RateLimits {
            directories: Buckets::new(scim),
            admin_tokens: Buckets::new(admin),
        }
    }
}

/// The layer on the SCIM routers.
pub async fn limit_scim(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let verified = match bearer(req.headers()) {
        Some(token) => state.auth.authenticate(token).await,
        None => return next.run(req).await,
    };
    // A failure to verify is the extractor's to report.
    if let Ok(Some(principal)) = verified {
        if let Principal::Directory {
            directory_id,
            rate_limit,
            ..
        } = &principal
        {
            if let Err(wait) = state.limits.directories.check(directory_id, *rate_limit) {
                tracing::debug!(%directory_id, ?wait, "directory over its request rate");
                return too_many_scim(wait);
            }
        }
        req.extensions_mut().insert(Authenticated(principal));
    }
    next.run(req).await
}

/// The layer on the admin router.
pub async fn limit_admin(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let verified = match bearer(req.headers()) {
        Some(token) => state.auth.authenticate(token).await,
        None => return next.run(req).await,
    };
    if let Ok(Some(principal)) = verified {
        if let Principal::Admin { token_id } = &principal {
            if let Err(wait) = state.limits.admin_tokens.check(token_id, None) {
                tracing::debug!(%token_id, ?wait, "admin token over its request rate");
                return too_many_admin(wait);
            }
        }
        req.extensions_mut().insert(Authenticated(principal));
    }
    next.run(req).await
}

fn with_retry_after(mut resp: Response, wait: Duration) -> Response {
    resp.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(retry_after_seconds(wait)),
    );
    resp
}

fn too_many_scim(wait: Duration) -> Response {
    let error = ScimError::new(
        429,
        Some(ScimType::TooMany),
        format!(
            "too many requests for this directory; retry after {} s",
            retry_after_seconds(wait)
        ),
    );
    with_retry_after(scim_error_response(&error), wait)
}

fn too_many_admin(wait: Duration) -> Response {
    let error = AdminError::TooManyRequests(format!(
        "too many requests for this admin token; retry after {} s",
        retry_after_seconds(wait)
    ));
    with_retry_after(error.into_response(), wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(per_second: u32, burst: u32) -> RateLimit {
        RateLimit { per_second, burst }
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up_and_at_least_one() {
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_seconds(Duration::from_secs(1)), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_seconds(Duration::from_secs(7)), 7);
    }

    #[test]
    fn a_bucket_allows_its_burst_then_refuses_with_a_wait() {
        let buckets: Buckets<u32> = Buckets::new(Some(limit(1, 3)));
        for _ in 0..3 {
            assert_eq!(buckets.check(&1, None), Ok(()));
        }
        let wait = buckets.check(&1, None).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        // Another key has its own bucket.
        assert_eq!(buckets.check(&2, None), Ok(()));
    }

    #[test]
    fn no_default_means_unlimited_unless_a_key_has_its_own() {
        let buckets: Buckets<u32> = Buckets::new(None);
        for _ in 0..1000 {
            assert_eq!(buckets.check(&1, None), Ok(()));
        }
        assert_eq!(buckets.check(&2, Some(limit(1, 1))), Ok(()));
        assert!(buckets.check(&2, Some(limit(1, 1))).is_err());
    }

    #[test]
    fn a_key_of_its_own_limit_is_not_held_to_the_default() {
        let buckets: Buckets<u32> = Buckets::new(Some(limit(1, 1)));
        for _ in 0..50 {
            assert_eq!(buckets.check(&1, Some(limit(1, 50))), Ok(()));
        }
        assert!(buckets.check(&1, Some(limit(1, 50))).is_err());
        // Its own limit equal to the default shares the default's bucket.
        assert_eq!(buckets.check(&2, Some(limit(1, 1))), Ok(()));
        assert!(buckets.check(&2, None).is_err());
    }

    #[test]
    fn sweeping_keeps_only_buckets_in_use() {
        let buckets: Buckets<u32> = Buckets::new(Some(limit(1_000_000, 1)));
        let _ = buckets.check(&1, None);
        let _ = buckets.check(&2, Some(limit(1_000_000, 2)));
        assert_eq!(buckets.len(), 2);
        // A millionth of a second refills both.
        std::thread::sleep(Duration::from_millis(5));
        buckets.sweep();
        assert!(buckets.is_empty());
        assert!(buckets.others.read().unwrap().is_empty());
        // One that is still draining stays.
        let slow: Buckets<u32> = Buckets::new(Some(limit(1, 5)));
        let _ = slow.check(&1, None);
        slow.sweep();
        assert_eq!(slow.len(), 1);
    }
}
