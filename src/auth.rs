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

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::store::{Store, StoreError};

const API_KEY_PREFIX: &str = "scimd_";
const ADMIN_PREFIX: &str = "scimd_admin_";

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

fn hash_secret(secret: &str) -> Result<String, StoreError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Database(sqlx::Error::Protocol(format!("argon2: {e}"))))
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
pub async fn new_api_key() -> Result<NewSecret, StoreError> {
    new_secret(API_KEY_PREFIX).await
}

pub async fn new_admin_token() -> Result<NewSecret, StoreError> {
    new_secret(ADMIN_PREFIX).await
}

async fn new_secret(prefix: &'static str) -> Result<NewSecret, StoreError> {
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
    .map_err(|e| StoreError::Database(sqlx::Error::Protocol(format!("hashing task: {e}"))))?
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
    /// A directory's API key (with its visible key id, for audit).
    Directory { directory_id: Uuid, key_id: String },
    /// An admin token (`id` is "env" for the configured one).
    Admin { token_id: String },
}

/// Verifies credentials and remembers the verified ones by SHA-256.
#[derive(Clone)]
pub struct Authenticator {
    store: Store,
    /// SHA-256 of the `SCIMD_ADMIN_TOKEN`, if one is configured.
    configured_admin: Option<[u8; 32]>,
    cache: Arc<RwLock<HashMap<[u8; 32], Principal>>>,
    /// Bumped whenever keys are revoked: a verification that started before
    /// a revocation must not put the revoked key back into the cache.
    epoch: Arc<AtomicU64>,
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

impl Authenticator {
    pub fn new(store: Store, configured_admin: Option<&str>) -> Self {
        Authenticator {
            store,
            configured_admin: configured_admin.map(digest),
            cache: Arc::new(RwLock::new(HashMap::new())),
            epoch: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The principal a bearer credential stands for, or None.
    pub async fn authenticate(&self, presented: &str) -> Result<Option<Principal>, StoreError> {
        let key = digest(presented);
        if self.configured_admin == Some(key) {
            return Ok(Some(Principal::Admin {
                token_id: "env".into(),
            }));
        }
        if let Some(hit) = self.cache.read().ok().and_then(|c| c.get(&key).cloned()) {
            return Ok(Some(hit));
        }
        let epoch = self.epoch.load(Ordering::SeqCst);
        let (principal, hash) = if let Some((id, _)) = split(presented, ADMIN_PREFIX) {
            match self.store.admin_token_hash(id).await? {
                Some(hash) => (
                    Principal::Admin {
                        token_id: id.to_owned(),
                    },
                    hash,
                ),
                None => return Ok(None),
            }
        } else if let Some((id, _)) = split(presented, API_KEY_PREFIX) {
            match self.store.find_directory_key(id).await? {
                Some(k) => (
                    Principal::Directory {
                        directory_id: k.directory_id,
                        key_id: id.to_owned(),
                    },
                    k.key_hash,
                ),
                None => return Ok(None),
            }
        } else {
            return Ok(None);
        };
        let secret = presented
            .rsplit_once('.')
            .map(|(_, s)| s.to_owned())
            .unwrap_or_default();
        let ok = tokio::task::spawn_blocking(move || verify_secret(&secret, &hash))
            .await
            .unwrap_or(false);
        if !ok {
            return Ok(None);
        }
        if let Ok(mut cache) = self.cache.write() {
            // Checked under the write lock, which revocation also takes.
            if self.epoch.load(Ordering::SeqCst) == epoch {
                cache.insert(key, principal.clone());
            }
        }
        Ok(Some(principal))
    }

    /// Forgets every cached key of a directory (key rotated, or deleted).
    pub fn forget_directory(&self, directory_id: Uuid) {
        if let Ok(mut cache) = self.cache.write() {
            self.epoch.fetch_add(1, Ordering::SeqCst);
            cache.retain(|_, p| {
                !matches!(p, Principal::Directory { directory_id: d, .. } if *d == directory_id)
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
