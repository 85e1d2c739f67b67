//! API keys and admin tokens: generation, argon2id hashing, verification,
//! and a cache so argon2 runs once per key rather than once per request.
//!
//! A secret looks like `scimd_<id>.<secret>` (API keys) or
//! `scimd_admin_<id>.<secret>` (admin tokens). The visible id finds the
//! stored hash without knowing the directory; only the argon2id hash of the
//! secret part is stored.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::store::{RateLimit, Store, StoreError};

const API_KEY_PREFIX: &str = "scimd_";
const ADMIN_PREFIX: &str = "scimd_admin_";

/// A failure to make or check a credential. Hashing failures are the
/// server's, never the database's, so they are told apart from store
/// errors all the way to the log.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("hashing a new secret failed")]
    Hash(#[source] argon2::password_hash::Error),
    #[error("the hashing task did not finish")]
    HashingTask(#[source] tokio::task::JoinError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A freshly generated secret: the id to store, the hash to store, and the
/// full secret to show once.
pub struct NewSecret {
    pub id: String,
    pub hash: String,
    pub secret: String,
}

fn random_id() -> String {
    let mut bytes = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn hash_secret(secret: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(AuthError::Hash)
}

fn verify_secret(secret: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(secret.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Generates a directory API key. Hashing is CPU-heavy, so it runs on the
/// blocking pool.
pub async fn new_api_key() -> Result<NewSecret, AuthError> {
    new_secret(API_KEY_PREFIX).await
}

pub async fn new_admin_token() -> Result<NewSecret, AuthError> {
    new_secret(ADMIN_PREFIX).await
}

async fn new_secret(prefix: &'static str) -> Result<NewSecret, AuthError> {
    tokio::task::spawn_blocking(move || {
        let id = random_id();
        let secret_part = random_secret();
        let hash = hash_secret(&secret_part)?;
        Ok(NewSecret {
            secret: format!("{prefix}{id}.{secret_part}"),
            id,
            hash,
        })
    })
    .await
    .map_err(AuthError::HashingTask)?
}

/// Splits `prefix<id>.<secret>`.
fn split<'a>(presented: &'a str, prefix: &str) -> Option<(&'a str, &'a str)> {
    let rest = presented.strip_prefix(prefix)?;
    let (id, secret) = rest.split_once('.')?;
    let well_formed = id.len() == 16
        && id.bytes().all(|b| b.is_ascii_hexdigit())
        && !secret.is_empty()
        && secret.len() <= 128;
    well_formed.then_some((id, secret))
}

/// Who a verified credential belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// A directory's API key (with its org and visible key id, for audit),
    /// and the directory's own request rate if it has one, read with the
    /// key (so a change made elsewhere is seen within the cache window).
    Directory {
        directory_id: Uuid,
        org_id: Uuid,
        key_id: String,
        rate_limit: Option<RateLimit>,
        /// The directory refuses users outside the org's verified domains
        /// (read with the key, like the rate).
        require_verified_domain: bool,
    },
    /// An admin token (`id` is "env" for the configured one).
    Admin { token_id: String },
}

impl Principal {
    /// Whether both stand for the same credential's holder, whatever
    /// their settings (a changed rate limit needs no new argon2 run).
    fn same_holder(&self, other: &Principal) -> bool {
        match (self, other) {
            (
                Principal::Directory {
                    directory_id: a,
                    org_id: ao,
                    key_id: ak,
                    ..
                },
                Principal::Directory {
                    directory_id: b,
                    org_id: bo,
                    key_id: bk,
                    ..
                },
            ) => a == b && ao == bo && ak == bk,
            (Principal::Admin { token_id: a }, Principal::Admin { token_id: b }) => a == b,
            _ => false,
        }
    }
}

/// How long a cached verification is trusted, by default, before the
/// stored hash is looked up again. Revocations through this process take
/// effect at once; this bounds how long one made elsewhere (another
/// replica, the CLI) takes to be noticed. The re-check is one indexed read,
/// never argon2.
pub const DEFAULT_REVALIDATE_AFTER: Duration = Duration::from_secs(30);

/// A verified credential: who it is, and the stored hash it matched.
#[derive(Clone)]
struct Verified {
    principal: Principal,
    hash: String,
    checked: Instant,
}

/// How a presented credential was dealt with, for `/metrics`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Verified earlier and trusted from memory: no database, no argon2.
    CacheHit,
    /// Verified earlier; its stored hash, read again after
    /// `--key-cache-seconds`, had not changed: no argon2.
    Revalidated,
    /// Checked with argon2 against its stored hash, and right.
    Argon2Verified,
    /// The `SCIMD_ADMIN_TOKEN` given at start.
    Configured,
    /// Unknown id, malformed, or a wrong secret.
    Rejected,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::CacheHit => "cache_hit",
            Outcome::Revalidated => "revalidated",
            Outcome::Argon2Verified => "argon2_verified",
            Outcome::Configured => "configured",
            Outcome::Rejected => "rejected",
        }
    }
}

/// The labels of a verification: what kind of credential it looked like
/// (`api_key`, `admin_token`, or `unrecognised`) and its [`Outcome`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerificationLabels {
    pub credential: &'static str,
    pub outcome: &'static str,
}

/// Verifications by credential kind and outcome (a family of counters;
/// clones count into the same series).
pub type Verifications = Family<VerificationLabels, Counter>;

fn credential_kind(presented: &str) -> &'static str {
    if presented.starts_with(ADMIN_PREFIX) {
        "admin_token"
    } else if presented.starts_with(API_KEY_PREFIX) {
        "api_key"
    } else {
        "unrecognised"
    }
}

/// Verifies credentials and remembers the verified ones by SHA-256.
#[derive(Clone)]
pub struct Authenticator {
    store: Store,
    /// SHA-256 of the `SCIMD_ADMIN_TOKEN`, if one is configured.
    configured_admin: Option<[u8; 32]>,
    cache: Arc<RwLock<HashMap<[u8; 32], Verified>>>,
    /// Bumped whenever keys are revoked: a verification that started before
    /// a revocation must not put the revoked key back into the cache.
    epoch: Arc<AtomicU64>,
    revalidate_after: Duration,
    /// Caps concurrent argon2 runs (each takes ~19 MiB and a core): a burst
    /// of clients presenting one uncached key verifies it once, and a flood
    /// of wrong keys cannot take every core or balloon memory.
    argon2_permits: Arc<Semaphore>,
    /// Every verification, counted by outcome.
    verifications: Verifications,
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

impl Authenticator {
    pub fn new(store: Store, configured_admin: Option<&str>, revalidate_after: Duration) -> Self {
        Authenticator {
            store,
            configured_admin: configured_admin.map(digest),
            cache: Arc::new(RwLock::new(HashMap::new())),
            epoch: Arc::new(AtomicU64::new(0)),
            revalidate_after,
            argon2_permits: Arc::new(Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            )),
            verifications: Verifications::default(),
        }
    }

    /// The verification counters, for `/metrics`.
    /// Whether this server was started with an admin token of its own
    /// (`--admin-token`), which the principal id `env` stands for.
    pub fn has_configured_admin(&self) -> bool {
        self.configured_admin.is_some()
    }

    pub fn verifications(&self) -> &Verifications {
        &self.verifications
    }

    /// The principal a credential would stand for and its stored hash, by
    /// the credential's visible id.
    async fn lookup(&self, presented: &str) -> Result<Option<(Principal, String)>, StoreError> {
        if let Some((id, _)) = split(presented, ADMIN_PREFIX) {
            let hash = self.store.admin_token_hash(id).await?;
            Ok(hash.map(|h| {
                let token_id = id.to_owned();
                (Principal::Admin { token_id }, h)
            }))
        } else if let Some((id, _)) = split(presented, API_KEY_PREFIX) {
            let key = self.store.find_directory_key(id).await?;
            Ok(key.map(|k| {
                let principal = Principal::Directory {
                    directory_id: k.directory_id,
                    org_id: k.org_id,
                    key_id: id.to_owned(),
                    rate_limit: k.rate_limit.get(),
                    require_verified_domain: k.require_verified_domain,
                };
                (principal, k.key_hash)
            }))
        } else {
            Ok(None)
        }
    }

    /// The principal a bearer credential stands for, or None; each answer
    /// is counted by its outcome (a store failure is not an answer).
    pub async fn authenticate(&self, presented: &str) -> Result<Option<Principal>, StoreError> {
        let key = digest(presented);
        if self.configured_admin == Some(key) {
            self.count("admin_token", Outcome::Configured);
            return Ok(Some(Principal::Admin {
                token_id: "env".into(),
            }));
        }
        let (outcome, principal) = self.verify(presented, key).await?;
        self.count(credential_kind(presented), outcome);
        Ok(principal)
    }

    fn count(&self, credential: &'static str, outcome: Outcome) {
        let labels = VerificationLabels {
            credential,
            outcome: outcome.as_str(),
        };
        self.verifications.get_or_create(&labels).inc();
    }

    /// [`Self::authenticate`] past the configured admin token.
    async fn verify(
        &self,
        presented: &str,
        key: [u8; 32],
    ) -> Result<(Outcome, Option<Principal>), StoreError> {
        let cached = self.cache.read().ok().and_then(|c| c.get(&key).cloned());
        let epoch = self.epoch.load(Ordering::SeqCst);
        if let Some(hit) = &cached {
            if hit.checked.elapsed() < self.revalidate_after {
                return Ok((Outcome::CacheHit, Some(hit.principal.clone())));
            }
        }
        let Some((principal, hash)) = self.lookup(presented).await? else {
            self.forget(&key);
            return Ok((Outcome::Rejected, None));
        };
        // Still the hash this exact key was verified against: no argon2.
        let still_valid =
            cached.is_some_and(|hit| hit.hash == hash && hit.principal.same_holder(&principal));
        if !still_valid {
            let _permit = self.argon2_permits.acquire().await.ok();
            // While waiting, another request may have verified this key.
            let fresh = self.cache.read().ok().and_then(|c| c.get(&key).cloned());
            if let Some(hit) = fresh {
                if hit.hash == hash && hit.checked.elapsed() < self.revalidate_after {
                    return Ok((Outcome::CacheHit, Some(hit.principal)));
                }
            }
            let secret = presented
                .rsplit_once('.')
                .map(|(_, s)| s.to_owned())
                .unwrap_or_default();
            let stored = hash.clone();
            let ok = tokio::task::spawn_blocking(move || verify_secret(&secret, &stored))
                .await
                .unwrap_or(false);
            if !ok {
                self.forget(&key);
                return Ok((Outcome::Rejected, None));
            }
        }
        let outcome = if still_valid {
            Outcome::Revalidated
        } else {
            Outcome::Argon2Verified
        };
        if let Principal::Directory { key_id, .. } = &principal {
            // A key is looked up at most once per `revalidate_after`, so this
            // records its last use to within that, for one write a period
            // rather than one per request; it need not delay the request.
            let (store, key_id) = (self.store.clone(), key_id.clone());
            tokio::spawn(async move {
                if let Err(e) = store.record_key_use(&key_id).await {
                    tracing::warn!(error = %e, "could not record the key's last use");
                }
            });
        }
        if let Ok(mut cache) = self.cache.write() {
            // Checked under the write lock, which revocation also takes.
            if self.epoch.load(Ordering::SeqCst) == epoch {
                let verified = Verified {
                    principal: principal.clone(),
                    hash,
                    checked: Instant::now(),
                };
                cache.insert(key, verified);
            }
        }
        Ok((outcome, Some(principal)))
    }

    fn forget(&self, key: &[u8; 32]) {
        if let Ok(mut cache) = self.cache.write() {
            cache.remove(key);
        }
    }

    /// A directory's new rate limit, for the keys already verified in this
    /// process: applied from their next request, without verifying them
    /// again.
    pub fn set_directory_rate_limit(&self, directory_id: Uuid, limit: Option<RateLimit>) {
        if let Ok(mut cache) = self.cache.write() {
            // A verification in flight read the old limit: it must not
            // put it back.
            self.epoch.fetch_add(1, Ordering::SeqCst);
            for verified in cache.values_mut() {
                if let Principal::Directory {
                    directory_id: d,
                    rate_limit,
                    ..
                } = &mut verified.principal
                {
                    if *d == directory_id {
                        *rate_limit = limit;
                    }
                }
            }
        }
    }

    /// A directory's new `requireVerifiedDomain`, for the keys already
    /// verified in this process, as [`Self::set_directory_rate_limit`].
    pub fn set_directory_require_verified_domain(&self, directory_id: Uuid, required: bool) {
        if let Ok(mut cache) = self.cache.write() {
            self.epoch.fetch_add(1, Ordering::SeqCst);
            for verified in cache.values_mut() {
                if let Principal::Directory {
                    directory_id: d,
                    require_verified_domain,
                    ..
                } = &mut verified.principal
                {
                    if *d == directory_id {
                        *require_verified_domain = required;
                    }
                }
            }
        }
    }

    /// Forgets every cached key of a directory (key rotated, or deleted).
    pub fn forget_directory(&self, directory_id: Uuid) {
        if let Ok(mut cache) = self.cache.write() {
            self.epoch.fetch_add(1, Ordering::SeqCst);
            cache.retain(|_, v| {
                !matches!(&v.principal, Principal::Directory { directory_id: d, .. } if *d == directory_id)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_accepts_only_well_formed_keys() {
        assert_eq!(
            split("scimd_0123456789abcdef.secret", API_KEY_PREFIX),
            Some(("0123456789abcdef", "secret"))
        );
        assert_eq!(split("scimd_0123.secret", API_KEY_PREFIX), None);
        assert_eq!(split("scimd_0123456789abcdef.", API_KEY_PREFIX), None);
        assert_eq!(split("Bearer x", API_KEY_PREFIX), None);
        // An admin token is not an API key, even though the prefix overlaps.
        assert_eq!(
            split("scimd_admin_0123456789abcdef.s", API_KEY_PREFIX),
            None
        );
    }

    #[test]
    fn hashes_verify_only_their_secret() {
        let hash = hash_secret("right").unwrap();
        assert!(verify_secret("right", &hash));
        assert!(!verify_secret("wrong", &hash));
        assert!(!verify_secret("right", "not a hash"));
    }
}
