//! Secrets shared by every process serving the database.

use rand::RngCore;

use super::{read, transaction, Result, Store, StoreError};

impl Store {
    /// The secret named `name`, made of 32 random bytes the first time it
    /// is asked for. Replicas starting together each try to write theirs;
    /// the first written is kept and every one reads it back.
    pub async fn shared_secret(&self, name: &str) -> Result<Vec<u8>> {
        let mut fresh = vec![0u8; 32];
        rand::thread_rng().fill_bytes(&mut fresh);
        transaction!(self, |_d, tx| {
            sqlx::query(
                "INSERT INTO server_secrets (name, secret) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(name)
            .bind(&fresh)
            .execute(&mut *tx)
            .await?;
        });
        let stored: Option<(Vec<u8>,)> = read!(self, |_d, c| {
            sqlx::query_as("SELECT secret FROM server_secrets WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *c)
                .await?
        });
        stored.map(|(s,)| s).ok_or(StoreError::NotFound)
    }
}
