//! Webhook endpoints (`webhooks`) and their delivery attempts
//! (`webhook_attempts`): the admin API's reads and writes, and the
//! deliverers' claims, progress and leases.
//!
//! An endpoint's queue is the org's event feed after its cursor
//! (`delivered_through`), so nothing is copied per endpoint and an event
//! waits exactly as long as its endpoint has not had it. A deliverer holds
//! an endpoint under a lease and commits its cursor with the attempts that
//! moved it; a deliverer that dies leaves the cursor where it last
//! committed, and the next holder sends from there again (at least once).

use uuid::Uuid;

use super::conn::{Conn, SqlBuilder};
use super::{read, transaction, Dialect, Result, Store};
use crate::time::now_micros;

/// An endpoint as the admin API shows it: everything but its secrets.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct WebhookRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub url: String,
    pub description: String,
    /// JSON array text.
    pub types: String,
    /// JSON array text.
    pub directory_ids: String,
    pub state: String,
    pub delivered_through: i64,
    pub failures: i64,
    pub failing_since: Option<i64>,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub last_delivered_at: Option<i64>,
    pub previous_secret_until: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, org_id, url, description, types, directory_ids, state, \
     delivered_through, failures, failing_since, next_attempt_at, last_error, last_delivered_at, \
     previous_secret_until, created_at, updated_at";

/// What a deliverer needs of an endpoint it holds: where, what, and how
/// to sign.
#[derive(Clone, sqlx::FromRow)]
pub struct WebhookTarget {
    pub id: Uuid,
    pub org_id: Uuid,
    pub url: String,
    pub types: String,
    pub directory_ids: String,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<i64>,
    pub delivered_through: i64,
    pub generation: i64,
    pub failures: i64,
    pub failing_since: Option<i64>,
}

impl std::fmt::Debug for WebhookTarget {
    /// Without the secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookTarget")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("delivered_through", &self.delivered_through)
            .finish_non_exhaustive()
    }
}

const TARGET_COLUMNS: &str = "id, org_id, url, types, directory_ids, secret, previous_secret, \
     previous_secret_until, delivered_through, generation, failures, failing_since";

/// A new endpoint.
#[derive(Clone, Debug)]
pub struct NewWebhook {
    pub org_id: Uuid,
    pub url: String,
    pub description: String,
    pub types: String,
    pub directory_ids: String,
    pub secret: String,
}

/// What an update changes; `None` keeps a field.
#[derive(Clone, Debug, Default)]
pub struct WebhookChange {
    pub url: Option<String>,
    pub description: Option<String>,
    pub types: Option<String>,
    pub directory_ids: Option<String>,
    /// `true` re-enables a failing or disabled endpoint (due at once, its
    /// failures forgotten); `false` disables it.
    pub enabled: Option<bool>,
}

/// One attempt to deliver a message.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct WebhookAttempt {
    pub id: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub sequence: Option<i64>,
    pub attempted_at: i64,
    pub status: Option<i32>,
    pub latency_ms: i64,
    pub succeeded: bool,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
}

/// How a deliverer's spell with an endpoint went, committed with its
/// attempts.
#[derive(Clone, Debug)]
pub enum Progress {
    /// Every event up to `through` was delivered or passed over.
    Delivered { through: i64 },
    /// The events up to `through` were delivered, the next one failed:
    /// tried again at `retry_at`, or, with `None`, the endpoint gives up
    /// and is marked failing.
    Failed {
        through: i64,
        error: String,
        retry_at: Option<i64>,
    },
}

impl Store {
    /// Creates an endpoint whose cursor is the org's last event now: it is
    /// sent what happens from now on.
    pub async fn create_webhook(&self, new: &NewWebhook) -> Result<WebhookRow> {
        let id = Uuid::new_v4();
        let now = now_micros();
        let sql = format!(
            "INSERT INTO webhooks (id, org_id, url, description, types, directory_ids, secret, \
             state, delivered_through, generation, failures, next_attempt_at, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', \
             COALESCE((SELECT max(sequence) FROM events WHERE org_id = $2 \
             AND sequence IS NOT NULL), (SELECT pruned_through FROM event_orgs \
             WHERE org_id = $2), 0), 0, 0, $8, $8, $8) RETURNING {COLUMNS}"
        );
        Ok(transaction!(self, |_d, tx| {
            Conn::fetch_one(
                &mut *tx,
                &sql,
                &[
                    id.into(),
                    new.org_id.into(),
                    new.url.as_str().into(),
                    new.description.as_str().into(),
                    new.types.as_str().into(),
                    new.directory_ids.as_str().into(),
                    new.secret.as_str().into(),
                    now.into(),
                ],
            )
            .await?
        }))
    }

    /// How many endpoints `org_id` has.
    pub async fn count_webhooks(&self, org_id: Uuid) -> Result<i64> {
        let (n,): (i64,) = read!(self, |_d, c| c
            .fetch_one(
                "SELECT count(*) FROM webhooks WHERE org_id = $1",
                &[org_id.into()]
            )
            .await?);
        Ok(n)
    }

    /// An org's endpoints, oldest first (an org has at most a hundred).
    pub async fn list_webhooks(&self, org_id: Uuid) -> Result<Vec<WebhookRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM webhooks WHERE org_id = $1 ORDER BY created_at, id LIMIT 1000"
        );
        Ok(read!(self, |_d, c| c
            .fetch_all(&sql, &[org_id.into()])
            .await?))
    }

    pub async fn get_webhook(&self, org_id: Uuid, id: Uuid) -> Result<Option<WebhookRow>> {
        let sql = format!("SELECT {COLUMNS} FROM webhooks WHERE id = $1 AND org_id = $2");
        Ok(read!(self, |_d, c| c
            .fetch_optional(&sql, &[id.into(), org_id.into()])
            .await?))
    }

    /// Endpoint `id` of `org_id` with its secrets, for a test message.
    pub async fn webhook_target(&self, org_id: Uuid, id: Uuid) -> Result<Option<WebhookTarget>> {
        let sql = format!("SELECT {TARGET_COLUMNS} FROM webhooks WHERE id = $1 AND org_id = $2");
        Ok(read!(self, |_d, c| c
            .fetch_optional(&sql, &[id.into(), org_id.into()])
            .await?))
    }

    /// Applies `change`; the endpoint as it is after, if there is one.
    pub async fn update_webhook(
        &self,
        org_id: Uuid,
        id: Uuid,
        change: &WebhookChange,
    ) -> Result<Option<WebhookRow>> {
        let now = now_micros();
        let mut b = SqlBuilder::new(self.dialect(), "UPDATE webhooks SET updated_at = ");
        b.push_bind(now);
        if let Some(url) = &change.url {
            b.push(", url = ").push_bind(url.as_str());
        }
        if let Some(d) = &change.description {
            b.push(", description = ").push_bind(d.as_str());
        }
        if let Some(t) = &change.types {
            b.push(", types = ").push_bind(t.as_str());
        }
        if let Some(dirs) = &change.directory_ids {
            b.push(", directory_ids = ").push_bind(dirs.as_str());
        }
        match change.enabled {
            Some(true) => {
                b.push(
                    ", state = 'active', failures = 0, failing_since = NULL, last_error = NULL, \
                     next_attempt_at = ",
                )
                .push_bind(now);
            }
            Some(false) => {
                b.push(", state = 'disabled'");
            }
            None => {}
        }
        b.push(" WHERE id = ")
            .push_bind(id)
            .push(" AND org_id = ")
            .push_bind(org_id)
            .push(" RETURNING ")
            .push(COLUMNS);
        Ok(transaction!(self, |_d, tx| {
            Conn::fetch_optional(&mut *tx, b.sql(), b.args()).await?
        }))
    }

    /// Deletes endpoint `id` with its attempts; whether there was one.
    pub async fn delete_webhook(&self, org_id: Uuid, id: Uuid) -> Result<bool> {
        let n = transaction!(self, |_d, tx| {
            Conn::execute(
                &mut *tx,
                "DELETE FROM webhooks WHERE id = $1 AND org_id = $2",
                &[id.into(), org_id.into()],
            )
            .await?
        });
        Ok(n > 0)
    }

    /// Replaces the signing secret with `secret`; the old one keeps
    /// signing alongside it until `previous_until` (when later than now).
    pub async fn rotate_webhook_secret(
        &self,
        org_id: Uuid,
        id: Uuid,
        secret: &str,
        previous_until: i64,
    ) -> Result<Option<WebhookRow>> {
        let now = now_micros();
        let sql = format!(
            "UPDATE webhooks SET previous_secret = CASE WHEN $4 > $5 THEN secret END, \
             previous_secret_until = CASE WHEN $4 > $5 THEN $4 END, secret = $3, updated_at = $5 \
             WHERE id = $1 AND org_id = $2 RETURNING {COLUMNS}"
        );
        Ok(transaction!(self, |_d, tx| {
            Conn::fetch_optional(
                &mut *tx,
                &sql,
                &[
                    id.into(),
                    org_id.into(),
                    secret.into(),
                    previous_until.into(),
                    now.into(),
                ],
            )
            .await?
        }))
    }

    /// Moves endpoint `id`'s cursor to `after` (its events after it are
    /// sent again), re-enables it and makes it due at once.
    pub async fn replay_webhook(
        &self,
        org_id: Uuid,
        id: Uuid,
        after: i64,
    ) -> Result<Option<WebhookRow>> {
        let now = now_micros();
        let sql = format!(
            "UPDATE webhooks SET delivered_through = $3, generation = generation + 1, \
             state = 'active', failures = 0, failing_since = NULL, last_error = NULL, \
             next_attempt_at = $4, updated_at = $4 WHERE id = $1 AND org_id = $2 \
             RETURNING {COLUMNS}"
        );
        Ok(transaction!(self, |_d, tx| {
            Conn::fetch_optional(
                &mut *tx,
                &sql,
                &[id.into(), org_id.into(), after.into(), now.into()],
            )
            .await?
        }))
    }

    /// The sequence of the last event of `org_id` written before `at`
    /// (microseconds), and the org's feed bounds: where a replay "since
    /// `at`" starts.
    pub async fn feed_sequence_before(&self, org_id: Uuid, at: i64) -> Result<Option<i64>> {
        let (seq,): (Option<i64>,) = read!(self, |_d, c| c
            .fetch_one(
                "SELECT max(sequence) FROM events WHERE org_id = $1 AND sequence IS NOT NULL \
                 AND occurred_at < $2",
                &[org_id.into(), at.into()]
            )
            .await?);
        Ok(seq)
    }

    /// A page of endpoint `id`'s attempts, newest first, before attempt
    /// `before`, and whether more follow.
    pub async fn list_webhook_attempts(
        &self,
        id: Uuid,
        before: Option<i64>,
        limit: i64,
    ) -> Result<(Vec<WebhookAttempt>, bool)> {
        let mut b = SqlBuilder::new(
            self.dialect(),
            "SELECT id, event_id, event_type, sequence, attempted_at, status, latency_ms, \
             succeeded, error, response_excerpt FROM webhook_attempts WHERE webhook_id = ",
        );
        b.push_bind(id);
        if let Some(before) = before {
            b.push(" AND id < ").push_bind(before);
        }
        b.push(" ORDER BY id DESC LIMIT ").push_bind(limit + 1);
        let mut rows: Vec<WebhookAttempt> =
            read!(self, |_d, c| c.fetch_all(b.sql(), b.args()).await?);
        let more = rows.len() as i64 > limit;
        rows.truncate(limit.max(0) as usize);
        Ok((rows, more))
    }

    /// Records attempts made outside a deliverer's spell (a test message).
    pub async fn insert_webhook_attempts(
        &self,
        webhook_id: Uuid,
        attempts: &[WebhookAttempt],
    ) -> Result<()> {
        transaction!(self, |d, tx| {
            insert_attempts(&mut *tx, d, webhook_id, attempts).await?;
        });
        Ok(())
    }

    /// Deletes attempts older than `cutoff` (microseconds), each
    /// endpoint's from its oldest on, `batch` at a time; how many. (An
    /// endpoint's attempts are written in the order they were made, so its
    /// old ones are a prefix of them by id.)
    pub async fn prune_webhook_attempts(&self, cutoff: i64, batch: i64) -> Result<u64> {
        let hooks: Vec<(Uuid,)> = read!(self, |_d, c| c
            .fetch_all("SELECT id FROM webhooks", &[])
            .await?);
        let mut total = 0;
        for (hook,) in hooks {
            loop {
                let deleted: u64 =
                    transaction!(self, |_d, tx| {
                        let rows: Vec<(i64, i64)> = Conn::fetch_all(
                            &mut *tx,
                            "SELECT id, attempted_at FROM webhook_attempts WHERE webhook_id = $1 \
                         ORDER BY id LIMIT $2",
                            &[hook.into(), batch.into()],
                        )
                        .await?;
                        match rows.iter().take_while(|(_, at)| *at < cutoff).last() {
                            None => 0,
                            Some((upto, _)) => Conn::execute(
                                &mut *tx,
                                "DELETE FROM webhook_attempts WHERE webhook_id = $1 AND id <= $2",
                                &[hook.into(), (*upto).into()],
                            )
                            .await?,
                        }
                    });
                total += deleted;
                if deleted < batch as u64 {
                    break;
                }
            }
        }
        Ok(total)
    }

    /// Claims up to `limit` endpoints that are due, not held by a live
    /// lease, and have events after their cursor, for `owner` until
    /// `lease_until`. On PostgreSQL rows another process is claiming are
    /// skipped, so processes share the endpoints.
    pub async fn claim_webhooks(
        &self,
        owner: Uuid,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<Uuid>> {
        let lock = match self.dialect() {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE OF w SKIP LOCKED",
        };
        let sql = format!(
            "UPDATE webhooks SET lease_owner = $1, lease_until = $2 \
             WHERE (lease_until IS NULL OR lease_until < $3) AND state = 'active' \
             AND id IN (SELECT w.id FROM webhooks w WHERE w.state = 'active' \
             AND w.next_attempt_at <= $3 AND (w.lease_until IS NULL OR w.lease_until < $3) \
             AND EXISTS (SELECT 1 FROM events e WHERE e.org_id = w.org_id \
             AND e.sequence > w.delivered_through) \
             ORDER BY w.next_attempt_at LIMIT $4{lock}) RETURNING id"
        );
        // Looked for first on a read connection: most rounds find
        // nothing, and need not queue for SQLite's writer to say so.
        let candidates: Vec<(Uuid,)> = read!(self, |_d, c| c
            .fetch_all(
                "SELECT w.id FROM webhooks w WHERE w.state = 'active' \
                 AND w.next_attempt_at <= $1 AND (w.lease_until IS NULL OR w.lease_until < $1) \
                 AND EXISTS (SELECT 1 FROM events e WHERE e.org_id = w.org_id \
                 AND e.sequence > w.delivered_through) LIMIT 1",
                &[now.into()]
            )
            .await?);
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<(Uuid,)> = transaction!(self, |_d, tx| {
            Conn::fetch_all(
                &mut *tx,
                &sql,
                &[owner.into(), lease_until.into(), now.into(), limit.into()],
            )
            .await?
        });
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Renews `owner`'s lease on endpoint `id` and reads it; `None` when
    /// the lease is no longer `owner`'s or the endpoint is not active
    /// (deleted, disabled), which ends the holder's spell.
    pub async fn renew_webhook(
        &self,
        id: Uuid,
        owner: Uuid,
        lease_until: i64,
    ) -> Result<Option<WebhookTarget>> {
        let sql = format!(
            "UPDATE webhooks SET lease_until = $3 WHERE id = $1 AND lease_owner = $2 \
             AND state = 'active' RETURNING {TARGET_COLUMNS}"
        );
        Ok(transaction!(self, |_d, tx| {
            Conn::fetch_optional(
                &mut *tx,
                &sql,
                &[id.into(), owner.into(), lease_until.into()],
            )
            .await?
        }))
    }

    /// Endpoint `id` as `owner` holds it, read without renewing the
    /// lease; `None` when it is no longer `owner`'s or not active.
    pub async fn held_webhook(&self, id: Uuid, owner: Uuid) -> Result<Option<WebhookTarget>> {
        let sql = format!(
            "SELECT {TARGET_COLUMNS} FROM webhooks WHERE id = $1 AND lease_owner = $2 \
             AND state = 'active'"
        );
        Ok(read!(self, |_d, c| c
            .fetch_optional(&sql, &[id.into(), owner.into()])
            .await?))
    }

    /// Commits a spell's attempts and its progress (unless a replay moved
    /// the cursor since the holder read it at `generation`), and renews
    /// the lease, or gives it up after a failure. Evaluates to the
    /// endpoint as it is now if `owner` still holds it.
    pub async fn record_webhook_progress(
        &self,
        id: Uuid,
        owner: Uuid,
        generation: i64,
        attempts: &[WebhookAttempt],
        progress: &Progress,
        lease_until: i64,
    ) -> Result<Option<WebhookTarget>> {
        Ok(transaction!(self, |_d, tx| {
            record_progress(
                &mut *tx,
                Held {
                    id,
                    owner,
                    generation,
                },
                attempts,
                progress,
                lease_until,
            )
            .await?
        }))
    }

    /// Gives up `owner`'s lease on endpoint `id` (it had nothing to send
    /// for a while), so that any process may claim it when it has.
    pub async fn release_webhook(&self, id: Uuid, owner: Uuid) -> Result<()> {
        transaction!(self, |_d, tx| {
            Conn::execute(
                &mut *tx,
                "UPDATE webhooks SET lease_owner = NULL, lease_until = NULL \
                 WHERE id = $1 AND lease_owner = $2",
                &[id.into(), owner.into()],
            )
            .await?;
        });
        Ok(())
    }

    /// Gives up every lease of `owner` (a process shutting down).
    pub async fn release_webhook_leases(&self, owner: Uuid) -> Result<()> {
        transaction!(self, |_d, tx| {
            Conn::execute(
                &mut *tx,
                "UPDATE webhooks SET lease_owner = NULL, lease_until = NULL \
                 WHERE lease_owner = $1",
                &[owner.into()],
            )
            .await?;
        });
        Ok(())
    }

    /// Wakes this process's deliverer (an endpoint became due).
    pub fn wake_webhooks(&self) {
        self.webhooks_wake.notify_one();
    }

    pub(crate) fn webhooks_waker(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.webhooks_wake.clone()
    }
}

/// Which endpoint a holder holds, and the generation of its cursor it read.
struct Held {
    id: Uuid,
    owner: Uuid,
    generation: i64,
}

/// See [`Store::record_webhook_progress`].
async fn record_progress<C: Conn>(
    c: &mut C,
    held: Held,
    attempts: &[WebhookAttempt],
    progress: &Progress,
    lease_until: i64,
) -> Result<Option<WebhookTarget>> {
    let Held {
        id,
        owner,
        generation,
    } = held;
    let now = now_micros();
    let lock = match C::DIALECT {
        Dialect::Sqlite => "",
        Dialect::Postgres => " FOR UPDATE",
    };
    let row: Option<WebhookTarget> = c
        .fetch_optional(
            &format!(
                "SELECT {TARGET_COLUMNS} FROM webhooks WHERE id = $1 AND lease_owner = $2{lock}"
            ),
            &[id.into(), owner.into()],
        )
        .await?;
    let Some(row) = row else {
        // Deleted, or taken over after this holder's lease ran out: its
        // attempts happened all the same.
        let exists: Option<(Uuid,)> = c
            .fetch_optional("SELECT id FROM webhooks WHERE id = $1", &[id.into()])
            .await?;
        if exists.is_some() {
            insert_attempts(c, C::DIALECT, id, attempts).await?;
        }
        return Ok(None);
    };
    insert_attempts(c, C::DIALECT, id, attempts).await?;
    let delivered_any = attempts.iter().any(|a| a.succeeded && a.sequence.is_some());
    if row.generation != generation {
        // A replay moved the cursor since this holder read it: its
        // progress is not the cursor's any more. A failed spell ends
        // here, so it lets the endpoint go for any process to take up.
        if matches!(progress, Progress::Failed { .. }) {
            c.execute(
                "UPDATE webhooks SET lease_owner = NULL, lease_until = NULL WHERE id = $1",
                &[id.into()],
            )
            .await?;
            return Ok(None);
        }
        c.execute(
            "UPDATE webhooks SET lease_until = $2 WHERE id = $1",
            &[id.into(), lease_until.into()],
        )
        .await?;
    } else {
        match progress {
            Progress::Delivered { through } => {
                c.execute(
                    "UPDATE webhooks SET delivered_through = $2, failures = 0, \
                     failing_since = NULL, last_error = NULL, lease_until = $3, \
                     last_delivered_at = CASE WHEN $4 THEN $5 ELSE last_delivered_at END \
                     WHERE id = $1",
                    &[
                        id.into(),
                        (*through).into(),
                        lease_until.into(),
                        delivered_any.into(),
                        now.into(),
                    ],
                )
                .await?;
            }
            Progress::Failed {
                through,
                error,
                retry_at,
            } => {
                let (state, next) = match retry_at {
                    Some(at) => ("active", *at),
                    None => ("failing", now),
                };
                // Failures count for the event at the head: one delivered
                // since starts the count again.
                let (failures, since) = if *through > row.delivered_through {
                    (1, now)
                } else {
                    (row.failures + 1, row.failing_since.unwrap_or(now))
                };
                c.execute(
                    "UPDATE webhooks SET delivered_through = $2, failures = $3, \
                     failing_since = $4, last_error = $5, state = $6, next_attempt_at = $7, \
                     lease_owner = NULL, lease_until = NULL, \
                     last_delivered_at = CASE WHEN $8 THEN $9 ELSE last_delivered_at END \
                     WHERE id = $1",
                    &[
                        id.into(),
                        (*through).into(),
                        failures.into(),
                        since.into(),
                        error.as_str().into(),
                        state.into(),
                        next.into(),
                        delivered_any.into(),
                        now.into(),
                    ],
                )
                .await?;
                return Ok(None);
            }
        }
    }
    Ok(c.fetch_optional(
        &format!("SELECT {TARGET_COLUMNS} FROM webhooks WHERE id = $1 AND state = 'active'"),
        &[id.into()],
    )
    .await?)
}

async fn insert_attempts<C: Conn>(
    c: &mut C,
    d: Dialect,
    webhook_id: Uuid,
    attempts: &[WebhookAttempt],
) -> Result<()> {
    for chunk in attempts.chunks(200) {
        let mut q = SqlBuilder::new(
            d,
            "INSERT INTO webhook_attempts (webhook_id, event_id, event_type, sequence, \
             attempted_at, status, latency_ms, succeeded, error, response_excerpt) ",
        );
        q.push_values(chunk.iter(), |a| {
            vec![
                webhook_id.into(),
                a.event_id.into(),
                a.event_type.as_str().into(),
                a.sequence.into(),
                a.attempted_at.into(),
                a.status.into(),
                a.latency_ms.into(),
                a.succeeded.into(),
                a.error.as_deref().into(),
                a.response_excerpt.as_deref().into(),
            ]
        });
        c.execute(q.sql(), q.args()).await?;
    }
    Ok(())
}
