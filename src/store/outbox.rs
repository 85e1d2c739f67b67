//! The email outbox: messages queued in the transaction of the change
//! that causes them, the delivery worker's claims and outcomes, and the
//! admin API's list and retry.
//!
//! A message is sent at most once without an admin asking again: the
//! worker's claim (`sending`, with a lease) commits before it talks to the
//! SMTP server, and a claim whose lease ran out is never claimed again but
//! turned `uncertain` (see `mail::OutboxState`).

use uuid::Uuid;

use super::audit::insert_event;
use super::conn::{Conn, SqlBuilder};
use super::{read, transaction, Dialect, Result, Store};
use crate::audit::{Action, AuditContext, Target, TargetType};
use crate::mail::{NewEmail, OutboxState};
use crate::time::now_micros;

/// A queued message as the admin API shows it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub directory_id: Option<Uuid>,
    pub account_id: Option<Uuid>,
    pub kind: String,
    pub dedup_key: Option<String>,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub sent_at: Option<i64>,
}

const COLUMNS: &str = "id, org_id, directory_id, account_id, kind, dedup_key, recipient, \
     subject, body, state, attempts, next_attempt_at, last_error, created_at, updated_at, sent_at";

/// Queues `msg` in the caller's transaction, due at once. True when it was
/// queued; false when the org already has a message with its dedup key
/// (which is then left as it is, whatever its state). The caller wakes
/// the worker after its commit ([`Store::wake_outbox`]).
pub(crate) async fn enqueue_email<C: Conn>(c: &mut C, msg: &NewEmail) -> Result<bool> {
    let now = now_micros();
    // No conflict target: the one unique index besides the key is the
    // dedup key's (partial, which a target would have to restate).
    let sql = "INSERT INTO outbox (id, org_id, directory_id, account_id, kind, dedup_key, \
               recipient, subject, body, state, attempts, next_attempt_at, created_at, \
               updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', 0, $10, $10, \
               $10) ON CONFLICT DO NOTHING";
    let inserted = c
        .execute(
            sql,
            &[
                Uuid::new_v4().into(),
                msg.org_id.into(),
                msg.directory_id.into(),
                msg.account_id.into(),
                msg.kind.into(),
                msg.dedup_key.as_deref().into(),
                msg.recipient.as_str().into(),
                msg.subject.as_str().into(),
                msg.body.as_str().into(),
                now.into(),
            ],
        )
        .await?;
    Ok(inserted > 0)
}

/// Which messages of an org a list wants, and where its page starts.
#[derive(Clone, Debug)]
pub struct OutboxQuery {
    pub org_id: Uuid,
    pub state: Option<OutboxState>,
    /// The (created_at, id) of the last message of the previous page:
    /// the list is newest first, so the page holds older ones.
    pub before: Option<(i64, Uuid)>,
    pub limit: i64,
}

/// Why a message was not queued again.
#[derive(Debug, PartialEq, Eq)]
pub enum RetryRefused {
    NotFound,
    /// Only `failed` and `uncertain` messages are retried; this is where
    /// the message is.
    State(String),
}

/// A message the worker claimed: what it sends.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ClaimedEmail {
    pub id: Uuid,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    /// Attempts made, this one included.
    pub attempts: i64,
}

async fn message_in<C: Conn>(c: &mut C, org_id: Uuid, id: Uuid) -> Result<Option<OutboxRow>> {
    let sql = format!("SELECT {COLUMNS} FROM outbox WHERE id = $1 AND org_id = $2");
    Ok(c.fetch_optional(&sql, &[id.into(), org_id.into()]).await?)
}

impl Store {
    /// Queues `msg` in a transaction of its own and wakes the worker; see
    /// [`enqueue_email`], which work that queues mail with its own change
    /// calls instead.
    pub async fn enqueue_email(&self, msg: &NewEmail) -> Result<bool> {
        let queued = transaction!(self, |_d, tx| enqueue_email(&mut *tx, msg).await?);
        if queued {
            self.wake_outbox();
        }
        Ok(queued)
    }

    /// Tells this process's delivery worker that mail was queued (after
    /// the queuing transaction committed). Harmless without a worker.
    pub fn wake_outbox(&self) {
        self.outbox_wake.notify_one();
    }

    /// What [`Store::wake_outbox`] wakes.
    pub(crate) fn outbox_waker(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.outbox_wake.clone()
    }

    /// A page of `q.limit` messages, newest first, and whether more follow.
    pub async fn list_outbox(&self, q: &OutboxQuery) -> Result<(Vec<OutboxRow>, bool)> {
        let mut b = SqlBuilder::new(
            self.dialect(),
            format!("SELECT {COLUMNS} FROM outbox WHERE org_id = "),
        );
        b.push_bind(q.org_id);
        if let Some(state) = q.state {
            b.push(" AND state = ").push_bind(state.as_str());
        }
        if let Some((created_at, id)) = q.before {
            b.push(" AND (created_at < ")
                .push_bind(created_at)
                .push(" OR (created_at = ")
                .push_bind(created_at)
                .push(" AND id < ")
                .push_bind(id)
                .push("))");
        }
        b.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .push_bind(q.limit + 1);
        let mut rows: Vec<OutboxRow> = read!(self, |_d, c| c.fetch_all(b.sql(), b.args()).await?);
        let more = rows.len() as i64 > q.limit;
        rows.truncate(q.limit.max(0) as usize);
        Ok((rows, more))
    }

    /// Message `id` of `org_id`, if there is one.
    pub async fn get_outbox_message(&self, org_id: Uuid, id: Uuid) -> Result<Option<OutboxRow>> {
        Ok(read!(self, |_d, c| message_in(c, org_id, id).await?))
    }

    /// Queues a `failed` or `uncertain` message again, due at once with
    /// its attempts counted from zero, records `email.retried` with it,
    /// and wakes the worker.
    pub async fn retry_outbox_message(
        &self,
        org_id: Uuid,
        id: Uuid,
        audit: &AuditContext,
    ) -> Result<std::result::Result<OutboxRow, RetryRefused>> {
        let now = now_micros();
        let outcome = transaction!(self, |_d, tx| {
            let before: Option<(String,)> = Conn::fetch_optional(
                &mut *tx,
                "SELECT state FROM outbox WHERE id = $1 AND org_id = $2",
                &[id.into(), org_id.into()],
            )
            .await?;
            let changed = Conn::execute(
                &mut *tx,
                "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = $3, \
                 lease_owner = NULL, lease_expires_at = NULL, updated_at = $3 \
                 WHERE id = $1 AND org_id = $2 AND state IN ('failed', 'uncertain')",
                &[id.into(), org_id.into(), now.into()],
            )
            .await?;
            match message_in(&mut *tx, org_id, id).await? {
                None => Err(RetryRefused::NotFound),
                Some(row) if changed == 0 => Err(RetryRefused::State(row.state)),
                Some(row) => {
                    if audit.enabled {
                        let mut target = Target::new(TargetType::Email, Some(row.id));
                        target.created_at = Some(row.created_at);
                        target.identifier = Some(row.recipient.clone());
                        target.email = Some(row.recipient.to_lowercase());
                        let was = before.map_or_else(String::new, |(s,)| s);
                        let scope = match row.directory_id {
                            Some(dir) => audit.in_directory(org_id, dir),
                            None => audit.in_org(org_id),
                        };
                        let event = scope
                            .event(Action::EmailRetried)
                            .target(target)
                            .detail(format!("{} message, was {was}: {}", row.kind, row.subject));
                        insert_event(&mut *tx, &event).await?;
                    }
                    Ok(row)
                }
            }
        });
        if outcome.is_ok() {
            self.wake_outbox();
        }
        Ok(outcome)
    }

    /// Claims up to `limit` due messages for worker `owner` until
    /// `lease_until`, counting the attempt, and commits the claim before
    /// returning it: a message is `sending` before anything reaches the
    /// SMTP server. On PostgreSQL rows another process is claiming are
    /// skipped (`SKIP LOCKED`), so several processes share the work; on
    /// SQLite the single writer serialises the claims.
    pub async fn claim_due_emails(
        &self,
        owner: Uuid,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<ClaimedEmail>> {
        let lock = match self.dialect() {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        };
        let sql = format!(
            "UPDATE outbox SET state = 'sending', attempts = attempts + 1, lease_owner = $1, \
             lease_expires_at = $2, updated_at = $3 \
             WHERE state = 'pending' AND id IN (SELECT id FROM outbox WHERE state = 'pending' \
             AND next_attempt_at <= $3 ORDER BY next_attempt_at, id LIMIT $4{lock}) \
             RETURNING id, recipient, subject, body, attempts"
        );
        Ok(transaction!(self, |_d, tx| {
            Conn::fetch_all(
                &mut *tx,
                &sql,
                &[owner.into(), lease_until.into(), now.into(), limit.into()],
            )
            .await?
        }))
    }

    /// Turns every `sending` message whose lease ended before `now` into
    /// `uncertain`: its worker stopped mid-send, and whether the message
    /// arrived is unknown. How many there were.
    pub async fn expire_email_leases(&self, now: i64) -> Result<u64> {
        Ok(transaction!(self, |_d, tx| {
            Conn::execute(
                &mut *tx,
                "UPDATE outbox SET state = 'uncertain', updated_at = $1, last_error = \
                 'the process sending it stopped before the SMTP server answered; \
                 it may or may not have been delivered' \
                 WHERE state = 'sending' AND lease_expires_at < $1",
                &[now.into()],
            )
            .await?
        }))
    }

    /// Records that the SMTP server accepted message `id`. Also from
    /// `uncertain`: a worker that outlived its lease did send it.
    pub async fn mark_email_sent(&self, id: Uuid, owner: Uuid, now: i64) -> Result<()> {
        transaction!(self, |_d, tx| {
            Conn::execute(
                &mut *tx,
                "UPDATE outbox SET state = 'sent', sent_at = $3, updated_at = $3, \
                 lease_expires_at = NULL, last_error = NULL \
                 WHERE id = $1 AND lease_owner = $2 AND state IN ('sending', 'uncertain')",
                &[id.into(), owner.into(), now.into()],
            )
            .await?;
        });
        Ok(())
    }

    /// Records a failed attempt of message `id`: due again at `retry_at`,
    /// or `failed` for good when `None`.
    pub async fn mark_email_attempt_failed(
        &self,
        id: Uuid,
        owner: Uuid,
        error: &str,
        retry_at: Option<i64>,
        now: i64,
    ) -> Result<()> {
        let (state, next) = match retry_at {
            Some(at) => (OutboxState::Pending, at),
            None => (OutboxState::Failed, now),
        };
        transaction!(self, |_d, tx| {
            Conn::execute(
                &mut *tx,
                "UPDATE outbox SET state = $3, next_attempt_at = $4, last_error = $5, \
                 updated_at = $6, lease_expires_at = NULL \
                 WHERE id = $1 AND lease_owner = $2 AND state = 'sending'",
                &[
                    id.into(),
                    owner.into(),
                    state.as_str().into(),
                    next.into(),
                    error.into(),
                    now.into(),
                ],
            )
            .await?;
        });
        Ok(())
    }

    /// Records that message `id`'s attempt ended without knowing whether
    /// the SMTP server took it (the connection dropped mid-conversation):
    /// `uncertain`, sent again only if an admin retries it.
    pub async fn mark_email_uncertain(
        &self,
        id: Uuid,
        owner: Uuid,
        error: &str,
        now: i64,
    ) -> Result<()> {
        transaction!(self, |_d, tx| {
            Conn::execute(
                &mut *tx,
                "UPDATE outbox SET state = 'uncertain', last_error = $3, updated_at = $4, \
                 lease_expires_at = NULL WHERE id = $1 AND lease_owner = $2 AND state = 'sending'",
                &[id.into(), owner.into(), error.into(), now.into()],
            )
            .await?;
        });
        Ok(())
    }

    /// When the earliest pending message is due, if there is one.
    pub async fn next_email_due(&self) -> Result<Option<i64>> {
        let (at,): (Option<i64>,) = read!(self, |_d, c| c
            .fetch_one(
                "SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending'",
                &[]
            )
            .await?);
        Ok(at)
    }
}
