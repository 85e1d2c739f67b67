//! The admin console's sessions (`console_sessions`).

use super::conn::Conn;
use super::{read, transaction, Result, Store};

/// A live console session.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ConsoleSession {
    pub token_id: String,
    pub csrf: String,
    pub expires_at: i64,
}

impl Store {
    /// Starts a session (and deletes the expired ones, so the table holds
    /// only live sessions and the few that ended since the last sign-in).
    pub async fn create_console_session(
        &self,
        id_hash: &str,
        token_id: &str,
        csrf: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        transaction!(self, |_d, tx| {
            Conn::execute(
                &mut *tx,
                "DELETE FROM console_sessions WHERE expires_at <= $1",
                &[now.into()],
            )
            .await?;
            Conn::execute(
                &mut *tx,
                "INSERT INTO console_sessions (id_hash, token_id, csrf, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    id_hash.into(),
                    token_id.into(),
                    csrf.into(),
                    now.into(),
                    expires_at.into(),
                ],
            )
            .await?;
        });
        Ok(())
    }

    /// The session whose cookie hashes to `id_hash`, unless it has expired
    /// by `now`.
    pub async fn console_session(&self, id_hash: &str, now: i64) -> Result<Option<ConsoleSession>> {
        Ok(read!(self, |_d, c| c
            .fetch_optional(
                "SELECT token_id, csrf, expires_at FROM console_sessions \
                 WHERE id_hash = $1 AND expires_at > $2",
                &[id_hash.into(), now.into()]
            )
            .await?))
    }

    /// Ends a session.
    pub async fn delete_console_session(&self, id_hash: &str) -> Result<()> {
        transaction!(self, |_d, tx| {
            Conn::execute(
                &mut *tx,
                "DELETE FROM console_sessions WHERE id_hash = $1",
                &[id_hash.into()],
            )
            .await?;
        });
        Ok(())
    }
}
