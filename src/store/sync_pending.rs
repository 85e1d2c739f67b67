//! Marks of SCIM changes the continuous sync has not applied yet: one row
//! per directory and process, written before the first such change
//! commits and removed once the process has applied them all. A row whose
//! process died stops being renewed and expires; whoever finds it
//! reconciles the directory with a run (see `sync::Engine::will_change`).

use uuid::Uuid;

use super::{read, transaction, write_job, Result, Store};
use crate::store::conn::Conn;

impl Store {
    /// Marks the directory as having changes `owner` has yet to apply, or
    /// renews the mark under a new generation.
    pub async fn mark_sync_pending(
        &self,
        directory_id: Uuid,
        owner: &str,
        generation: i64,
        expires_at: i64,
    ) -> Result<()> {
        let owner = owner.to_owned();
        write_job!(self, |_d, tx| {
            // A directory deleted meanwhile has nothing left to sync.
            sqlx::query(
                "INSERT INTO sync_pending (directory_id, owner, generation, expires_at) \
                 SELECT id, $2, $3, $4 FROM directories WHERE id = $1 \
                 ON CONFLICT (directory_id, owner) DO UPDATE \
                 SET generation = excluded.generation, expires_at = excluded.expires_at",
            )
            .bind(directory_id)
            .bind(owner)
            .bind(generation)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
        });
        Ok(())
    }

    /// Removes `owner`'s mark of the directory, unless a later generation
    /// replaced it.
    pub async fn clear_sync_pending(
        &self,
        directory_id: Uuid,
        owner: &str,
        generation: i64,
    ) -> Result<()> {
        let owner = owner.to_owned();
        write_job!(self, |_d, tx| {
            sqlx::query(
                "DELETE FROM sync_pending WHERE directory_id = $1 AND owner = $2 \
                 AND generation = $3",
            )
            .bind(directory_id)
            .bind(owner)
            .bind(generation)
            .execute(&mut *tx)
            .await?;
        });
        Ok(())
    }

    /// Moves the expiry of all of `owner`'s marks: it is alive.
    pub async fn renew_sync_pending(&self, owner: &str, expires_at: i64) -> Result<()> {
        transaction!(self, |_d, tx| Conn::execute(
            &mut *tx,
            "UPDATE sync_pending SET expires_at = $1 WHERE owner = $2",
            &[expires_at.into(), owner.into()],
        )
        .await?);
        Ok(())
    }

    /// Marks other processes left to expire: (directory, owner).
    pub async fn abandoned_sync_pending(
        &self,
        owner: &str,
        now: i64,
    ) -> Result<Vec<(Uuid, String)>> {
        read!(self, |_d, c| Ok(c
            .fetch_all(
                "SELECT directory_id, owner FROM sync_pending \
                 WHERE expires_at < $1 AND owner <> $2 ORDER BY expires_at LIMIT 100",
                &[now.into(), owner.into()],
            )
            .await?))
    }

    /// Removes an expired mark; true when this call removed it, so across
    /// processes one takes over its changes.
    pub async fn claim_sync_pending(
        &self,
        directory_id: Uuid,
        owner: &str,
        now: i64,
    ) -> Result<bool> {
        let n = transaction!(self, |_d, tx| {
            Conn::execute(
            &mut *tx,
            "DELETE FROM sync_pending WHERE directory_id = $1 AND owner = $2 AND expires_at < $3",
            &[directory_id.into(), owner.into(), now.into()],
        )
        .await?
        });
        Ok(n == 1)
    }
}
