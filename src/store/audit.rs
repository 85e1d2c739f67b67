//! Audit events: written inside the transaction of the change they record
//! ([`insert_event!`]), or on their own for failures; read back as
//! newest-first keyset pages, as a stream (CSV export), and as daily
//! counters; purged in batches.

use tokio::sync::mpsc;
use uuid::Uuid;

use super::query::{bind_all, Bind};
use super::{read, write, Result, Store};
use crate::audit::{Event, TargetType};

/// Most distinct targets one user filter expands to.
const MAX_USER_TARGETS: i64 = 1_000;

/// The advisory lock that lets one replica purge at a time: this fixed
/// number with the hash of the schema, so deployments sharing a database
/// in different schemas do not wait on each other.
pub const PURGE_LOCK_KEY: i32 = 0x5c1d_a0d1;
pub const PURGE_LOCK_SQL: &str = "SELECT pg_try_advisory_xact_lock($1, hashtext(current_schema()))";

pub(crate) const INSERT_EVENT: &str = "INSERT INTO audit_events (occurred_at, org_id, \
    directory_id, actor_type, actor_id, source_ip, request_id, action, outcome, status, \
    scim_type, detail, target_type, target_id, target_identifier, identifier_ci, email_ci, \
    external_id, changed_attributes, members_added, members_removed) VALUES ($1, $2, $3, $4, \
    $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)";

/// Writes one [`Event`] inside the caller's transaction, stamped with the
/// time inside that transaction (on SQLite's single writer, so event times
/// follow commit order).
macro_rules! insert_event {
    ($tx:ident, $event:expr) => {{
        let e: &$crate::audit::Event = $event;
        let changed = (!e.changed_attributes.is_empty()).then(|| e.changed_attributes.join(","));
        sqlx::query($crate::store::audit::INSERT_EVENT)
            .bind($crate::store::now_micros())
            .bind(e.org_id)
            .bind(e.directory_id)
            .bind(e.actor.kind())
            .bind(e.actor.id())
            .bind(e.source_ip.as_deref())
            .bind(e.request_id.as_deref())
            .bind(e.action.as_str())
            .bind(e.outcome.as_str())
            .bind(e.status.map(i32::from))
            .bind(e.scim_type.as_deref())
            .bind(e.detail.as_deref())
            .bind(e.target.kind.as_str())
            .bind(e.target.id)
            .bind(e.target.identifier.as_deref())
            .bind(e.target.identifier.as_ref().map(|s| s.to_lowercase()))
            .bind(e.target.email.as_deref())
            .bind(e.target.external_id.as_deref())
            .bind(changed)
            .bind(e.members_added.map(|n| n as i64))
            .bind(e.members_removed.map(|n| n as i64))
            .execute(&mut *$tx)
            .await?;
    }};
}
pub(crate) use insert_event;

/// A stored event.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct EventRow {
    pub id: i64,
    pub occurred_at: i64,
    pub org_id: Uuid,
    pub directory_id: Option<Uuid>,
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub source_ip: Option<String>,
    pub request_id: Option<String>,
    pub action: String,
    pub outcome: String,
    pub status: Option<i32>,
    pub scim_type: Option<String>,
    pub detail: Option<String>,
    pub target_type: String,
    pub target_id: Option<Uuid>,
    pub target_identifier: Option<String>,
    pub changed_attributes: Option<String>,
    pub members_added: Option<i64>,
    pub members_removed: Option<i64>,
}

impl EventRow {
    pub fn changed(&self) -> Vec<&str> {
        self.changed_attributes
            .as_deref()
            .map(|s| s.split(',').filter(|a| !a.is_empty()).collect())
            .unwrap_or_default()
    }
}

const EVENT_COLUMNS: &str = "id, occurred_at, org_id, directory_id, actor_type, actor_id, \
    source_ip, request_id, action, outcome, status, scim_type, detail, target_type, target_id, \
    target_identifier, changed_attributes, members_added, members_removed";

/// What a provisioning report asks for. Times are microseconds; `since` is
/// inclusive, `until` exclusive.
#[derive(Clone, Debug, Default)]
pub struct ReportQuery {
    pub org_id: Uuid,
    pub directory_id: Option<Uuid>,
    /// A userName, email, externalId, accountId or user id.
    pub user: Option<String>,
    pub actions: Vec<String>,
    pub outcome: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Only events strictly older than this `(time, id)` (the cursor).
    pub before: Option<(i64, i64)>,
    pub limit: Option<i64>,
}

/// One directory's counters for one UTC day.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct DailyStats {
    pub directory_id: Uuid,
    /// Days since the Unix epoch (UTC).
    pub day: i64,
    pub users_created: i64,
    pub users_deactivated: i64,
    pub users_deleted: i64,
    pub failures: i64,
}

impl ReportQuery {
    /// The report's SELECT: every value bound, `user_targets` being the
    /// user ids the `user` filter resolved to.
    fn sql(&self, user_targets: &[Uuid]) -> (String, Vec<Bind>) {
        let mut sql = format!("SELECT {EVENT_COLUMNS} FROM audit_events WHERE org_id = $1");
        let mut binds = vec![Bind::Uuid(self.org_id)];
        let next = |binds: &mut Vec<Bind>, b: Bind| {
            binds.push(b);
            format!("${}", binds.len())
        };
        if let Some(d) = self.directory_id {
            sql += &format!(" AND directory_id = {}", next(&mut binds, Bind::Uuid(d)));
        }
        if !self.actions.is_empty() {
            let list: Vec<String> = self
                .actions
                .iter()
                .map(|a| next(&mut binds, Bind::Text(a.clone())))
                .collect();
            sql += &format!(" AND action IN ({})", list.join(", "));
        }
        if let Some(o) = &self.outcome {
            sql += &format!(" AND outcome = {}", next(&mut binds, Bind::Text(o.clone())));
        }
        if let Some(t) = self.since {
            sql += &format!(" AND occurred_at >= {}", next(&mut binds, Bind::Int(t)));
        }
        if let Some(t) = self.until {
            sql += &format!(" AND occurred_at < {}", next(&mut binds, Bind::Int(t)));
        }
        if let Some((t, id)) = self.before {
            let t = next(&mut binds, Bind::Int(t));
            let id = next(&mut binds, Bind::Int(id));
            sql += &format!(" AND (occurred_at, id) < ({t}, {id})");
        }
        if let Some(user) = &self.user {
            let lower = next(&mut binds, Bind::Text(user.to_lowercase()));
            let exact = next(&mut binds, Bind::Text(user.clone()));
            let user_type = next(&mut binds, Bind::Text(TargetType::User.as_str().into()));
            sql += &format!(
                " AND target_type = {user_type} AND (identifier_ci = {lower} OR email_ci = {lower} \
                 OR external_id = {exact}"
            );
            if !user_targets.is_empty() {
                let ids: Vec<String> = user_targets
                    .iter()
                    .map(|id| next(&mut binds, Bind::Uuid(*id)))
                    .collect();
                sql += &format!(" OR target_id IN ({})", ids.join(", "));
            }
            sql += ")";
        }
        sql += " ORDER BY occurred_at DESC, id DESC";
        if let Some(limit) = self.limit {
            sql += &format!(" LIMIT {}", next(&mut binds, Bind::Int(limit)));
        }
        (sql, binds)
    }
}

impl Store {
    /// Writes one event in its own transaction (failures, whose change
    /// never happened). For a user or group target that still exists, the
    /// identifiers it lacks are read from its current row.
    pub async fn record_event(&self, event: &Event) -> Result<()> {
        let mut event = event.clone();
        let lookup = match (event.target.kind, event.target.id, event.directory_id) {
            (TargetType::User, Some(id), Some(dir)) => Some((
                "SELECT user_name, primary_email, external_id FROM users \
                 WHERE directory_id = $1 AND id = $2",
                dir,
                id,
            )),
            (TargetType::Group, Some(id), Some(dir)) => Some((
                "SELECT display_name, NULL, external_id FROM groups \
                 WHERE directory_id = $1 AND id = $2",
                dir,
                id,
            )),
            _ => None,
        };
        write!(self, |_d, tx| {
            if let Some((sql, dir, id)) = lookup.filter(|_| event.target.identifier.is_none()) {
                let row: Option<(String, Option<String>, Option<String>)> = sqlx::query_as(sql)
                    .bind(dir)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some((identifier, email, external_id)) = row {
                    event.target.identifier = Some(identifier);
                    event.target.email = email;
                    event.target.external_id = external_id;
                }
            }
            insert_event!(tx, &event);
        });
        Ok(())
    }

    /// The user ids a `user` filter stands for: every user target of an
    /// event recorded under that userName, email or externalId (so a
    /// renamed user's whole history is found by either name), users whose
    /// account id it is, and the value itself when it is a user id.
    async fn report_user_targets(&self, org_id: Uuid, user: &str) -> Result<Vec<Uuid>> {
        let mut ids: Vec<Uuid> = read!(self, |_d, c| {
            let mut ids: Vec<Uuid> = sqlx::query_scalar(
                "SELECT DISTINCT target_id FROM audit_events WHERE org_id = $1 \
                 AND target_type = $2 AND target_id IS NOT NULL \
                 AND (identifier_ci = $3 OR email_ci = $3 OR external_id = $4) LIMIT $5",
            )
            .bind(org_id)
            .bind(TargetType::User.as_str())
            .bind(user.to_lowercase())
            .bind(user)
            .bind(MAX_USER_TARGETS)
            .fetch_all(c)
            .await?;
            let accounts: Vec<Uuid> = sqlx::query_scalar(
                "SELECT id FROM users WHERE account_id = $1 \
                 AND directory_id IN (SELECT id FROM directories WHERE org_id = $2)",
            )
            .bind(user)
            .bind(org_id)
            .fetch_all(c)
            .await?;
            ids.extend(accounts);
            Ok::<_, super::StoreError>(ids)
        })?;
        if let Ok(id) = Uuid::parse_str(user.trim()) {
            ids.push(id);
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// One page of a provisioning report, newest first.
    pub async fn audit_report(&self, q: &ReportQuery) -> Result<Vec<EventRow>> {
        let targets = match &q.user {
            Some(u) => self.report_user_targets(q.org_id, u).await?,
            None => Vec::new(),
        };
        let (sql, binds) = q.sql(&targets);
        read!(self, |_d, c| Ok(bind_all!(sqlx::query_as(&sql), binds)
            .fetch_all(c)
            .await?))
    }

    /// Sends the whole report, row by row as the database returns it, to
    /// `out` (bounded, so a slow reader slows the query instead of filling
    /// memory). Stops early when the receiver is gone.
    pub async fn stream_audit_report(
        &self,
        q: &ReportQuery,
        out: &mpsc::Sender<EventRow>,
    ) -> Result<()> {
        use futures_util::TryStreamExt;
        let targets = match &q.user {
            Some(u) => self.report_user_targets(q.org_id, u).await?,
            None => Vec::new(),
        };
        let (sql, binds) = q.sql(&targets);
        read!(self, |_d, c| {
            let mut rows = bind_all!(sqlx::query_as::<_, EventRow>(&sql), binds).fetch(c);
            while let Some(row) = rows.try_next().await? {
                if out.send(row).await.is_err() {
                    break;
                }
            }
            Ok(())
        })
    }

    /// Per directory and UTC day, in `[since, until)`: users created,
    /// deactivated and deleted, and failed writes.
    pub async fn audit_stats(
        &self,
        org_id: Uuid,
        directory_id: Option<Uuid>,
        since: i64,
        until: i64,
    ) -> Result<Vec<DailyStats>> {
        let mut sql = String::from(
            "SELECT directory_id, occurred_at / 86400000000 AS day, \
             SUM(CASE WHEN action = 'user.created' AND outcome = 'success' THEN 1 ELSE 0 END) AS users_created, \
             SUM(CASE WHEN action = 'user.deactivated' AND outcome = 'success' THEN 1 ELSE 0 END) AS users_deactivated, \
             SUM(CASE WHEN action = 'user.deleted' AND outcome = 'success' THEN 1 ELSE 0 END) AS users_deleted, \
             SUM(CASE WHEN outcome = 'failure' THEN 1 ELSE 0 END) AS failures \
             FROM audit_events WHERE org_id = $1 AND occurred_at >= $2 AND occurred_at < $3 \
             AND (outcome = 'failure' OR action IN ('user.created', 'user.deactivated', 'user.deleted'))",
        );
        sql += if directory_id.is_some() {
            " AND directory_id = $4"
        } else {
            " AND directory_id IS NOT NULL"
        };
        sql += " GROUP BY directory_id, day ORDER BY directory_id, day";
        read!(self, |_d, c| {
            let mut q = sqlx::query_as(&sql).bind(org_id).bind(since).bind(until);
            if let Some(d) = directory_id {
                q = q.bind(d);
            }
            Ok(q.fetch_all(c).await?)
        })
    }

    /// Deletes events older than `cutoff`, `batch` rows per transaction,
    /// until none are left. On PostgreSQL each batch first takes a
    /// transaction-scoped advisory lock; when another replica holds it,
    /// this one stops and leaves the work to it.
    pub async fn purge_audit_events(&self, cutoff: i64, batch: i64) -> Result<u64> {
        let orgs: Vec<Uuid> = read!(self, |_d, c| Ok::<_, super::StoreError>(
            sqlx::query_scalar("SELECT id FROM orgs")
                .fetch_all(c)
                .await?
        ))?;
        let mut total = 0u64;
        for org in orgs {
            loop {
                let deleted: Option<u64> = write!(self, |d, tx| {
                    let locked = if d == super::Dialect::Postgres {
                        sqlx::query_scalar::<_, bool>(PURGE_LOCK_SQL)
                            .bind(PURGE_LOCK_KEY)
                            .fetch_one(&mut *tx)
                            .await?
                    } else {
                        true
                    };
                    if locked {
                        Some(
                            sqlx::query(
                                "DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events \
                                 WHERE org_id = $1 AND occurred_at < $2 LIMIT $3)",
                            )
                            .bind(org)
                            .bind(cutoff)
                            .bind(batch)
                            .execute(&mut *tx)
                            .await?
                            .rows_affected(),
                        )
                    } else {
                        None
                    }
                });
                match deleted {
                    None => return Ok(total),
                    Some(n) => {
                        total += n;
                        if n < batch as u64 {
                            break;
                        }
                    }
                }
            }
        }
        Ok(total)
    }
}
