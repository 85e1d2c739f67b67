//! Audit events: written inside the transaction of the change they record
//! ([`insert_event`]), or on their own for failures; read back as
//! newest-first keyset pages, as a stream (CSV export), and as daily
//! counters; purged in batches.

use tokio::sync::mpsc;
use uuid::Uuid;

use super::conn::{Arg, Conn, SqlBuilder};
use super::filter_sql::Bind;
use super::sql::audit::{EVENT_VALUES, INSERT_EVENT};
use super::{read, transaction, Dialect, Result, Store};
use crate::audit::{Event, TargetType};

/// Most distinct targets one user filter expands to.
const MAX_USER_TARGETS: i64 = 1_000;

/// The advisory lock that lets one replica purge at a time: this fixed
/// number with the hash of the schema, so deployments sharing a database
/// in different schemas do not wait on each other.
pub const PURGE_LOCK_KEY: i32 = 0x5c1d_a0d1;
pub const PURGE_LOCK_SQL: &str = "SELECT pg_try_advisory_xact_lock($1, hashtext(current_schema()))";

/// An [`Event`]'s values, stamped with the time inside the caller's
/// transaction (on SQLite's single writer, event times follow commit
/// order). The searchable identifiers are kept only on events without a
/// target; the others are found through their target.
pub(crate) fn event_args(e: &Event) -> [Arg<'_>; EVENT_VALUES] {
    let changed = (!e.changed_attributes.is_empty()).then(|| e.changed_attributes.join(","));
    let untargeted = e.target.id.is_none();
    [
        crate::audit::event_time().into(),
        crate::audit::event_id().into(),
        e.org_id.into(),
        e.directory_id.into(),
        e.actor.kind().into(),
        e.actor.id().into(),
        e.source_ip.as_deref().into(),
        e.request_id.as_deref().into(),
        e.action.as_str().into(),
        e.outcome.as_str().into(),
        e.status.map(i32::from).into(),
        e.scim_type.as_deref().into(),
        e.detail.as_deref().into(),
        e.target.kind.as_str().into(),
        e.target.id.into(),
        e.target.created_at.into(),
        e.target.identifier.as_deref().into(),
        e.target
            .identifier
            .as_ref()
            .filter(|_| untargeted)
            .map(|s| s.to_lowercase())
            .into(),
        e.target.email.as_deref().filter(|_| untargeted).into(),
        e.target
            .external_id
            .as_deref()
            .filter(|_| untargeted)
            .into(),
        changed.into(),
        e.members_added.map(|n| n as i64).into(),
        e.members_removed.map(|n| n as i64).into(),
    ]
}

/// Writes one [`Event`] inside the caller's transaction.
pub(crate) async fn insert_event<C: Conn>(c: &mut C, event: &Event) -> Result<()> {
    c.execute(&INSERT_EVENT, &event_args(event)).await?;
    Ok(())
}

/// Writes many [`Event`]s inside the caller's transaction, several to a
/// statement: a sync run records an event per account whose access
/// changed, tens of thousands in a run, and one round trip each would be
/// most of its time.
pub(crate) async fn insert_events<C: Conn>(c: &mut C, events: &[Event]) -> Result<()> {
    // 23 values an event: 400 stay well under SQLite's 32,766.
    for chunk in events.chunks(400) {
        let mut q = SqlBuilder::new(
            C::DIALECT,
            format!("{} ", super::sql::audit::EVENT_INSERT_COLUMNS),
        );
        q.push_values(chunk.iter(), |e| event_args(e).to_vec());
        c.execute(q.sql(), q.args()).await?;
    }
    Ok(())
}

/// Records, inside the caller's transaction, identifiers that stop being
/// current for `target` (see [`crate::audit::user_subject_keys`]), so
/// reports still find its history by them.
pub(crate) async fn record_subjects<'k, C: Conn>(
    c: &mut C,
    org_id: Uuid,
    (target_id, created_at): (Uuid, i64),
    keys: impl IntoIterator<Item = &'k String>,
) -> Result<()> {
    let keys: Vec<&String> = keys.into_iter().collect();
    if keys.is_empty() {
        return Ok(());
    }
    let now = crate::time::now_micros();
    let mut q = SqlBuilder::new(
        C::DIALECT,
        "INSERT INTO audit_subjects (org_id, value, target_id, target_created_at, recorded_at) ",
    );
    q.push_values(keys, |key| {
        vec![
            org_id.into(),
            key.as_str().into(),
            target_id.into(),
            created_at.into(),
            now.into(),
        ]
    });
    q.push(
        " ON CONFLICT (org_id, value, target_id) \
         DO UPDATE SET recorded_at = excluded.recorded_at",
    );
    c.execute(q.sql(), q.args()).await?;
    Ok(())
}

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
    /// Only events about these kinds of target (`account`, `user`, …).
    pub target_types: Vec<String>,
    /// Only events about this org-level account.
    pub account_id: Option<Uuid>,
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
    /// `access.granted` events: accounts that gained access, once per
    /// account and sync run.
    pub access_granted: i64,
    pub access_revoked: i64,
}

impl ReportQuery {
    /// The report's SELECT: every value bound, `user_targets` being the
    /// user ids the `user` filter resolved to.
    fn sql(&self, d: Dialect, user_targets: &[(Option<i64>, Uuid)]) -> (String, Vec<Bind>) {
        // One user's events are a few index lookups; without statistics
        // SQLite would rather walk the org's whole key in time order, so
        // `+` keeps it from using the key for the org.
        let org = if self.user.is_some() && d == Dialect::Sqlite {
            "+org_id"
        } else {
            "org_id"
        };
        let mut sql = format!("SELECT {EVENT_COLUMNS} FROM audit_events WHERE {org} = $1");
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
        if !self.target_types.is_empty() {
            let list: Vec<String> = self
                .target_types
                .iter()
                .map(|t| next(&mut binds, Bind::Text(t.clone())))
                .collect();
            sql += &format!(" AND target_type IN ({})", list.join(", "));
        }
        if let Some(a) = self.account_id {
            let kind = next(&mut binds, Bind::Text(TargetType::Account.as_str().into()));
            let id = next(&mut binds, Bind::Uuid(a));
            sql += &format!(" AND target_type = {kind} AND target_id = {id}");
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
            // The events of the users the identifier stands for, and
            // failed creates (no target yet) that tried it. Each arm of
            // the OR is one index lookup.
            let lower = next(&mut binds, Bind::Text(user.to_lowercase()));
            let exact = next(&mut binds, Bind::Text(user.clone()));
            let user_type = next(&mut binds, Bind::Text(TargetType::User.as_str().into()));
            sql += &format!(
                " AND target_type = {user_type} AND ((target_id IS NULL AND identifier_ci = {lower}) \
                 OR (target_id IS NULL AND email_ci = {lower}) \
                 OR (target_id IS NULL AND external_id = {exact})"
            );
            for (created_at, id) in user_targets {
                let id = next(&mut binds, Bind::Uuid(*id));
                sql += &match created_at {
                    Some(t) => {
                        let t = next(&mut binds, Bind::Int(*t));
                        format!(" OR (target_created_at = {t} AND target_id = {id})")
                    }
                    None => format!(" OR (target_created_at IS NULL AND target_id = {id})"),
                };
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
                "SELECT created_at, user_name, primary_email, external_id FROM users \
                 WHERE directory_id = $1 AND id = $2",
                dir,
                id,
            )),
            (TargetType::Group, Some(id), Some(dir)) => Some((
                "SELECT created_at, display_name, NULL, external_id FROM groups \
                 WHERE directory_id = $1 AND id = $2",
                dir,
                id,
            )),
            _ => None,
        };
        transaction!(self, |_d, tx| {
            if let Some((sql, dir, id)) = lookup.filter(|_| event.target.created_at.is_none()) {
                type Row = (i64, String, Option<String>, Option<String>);
                let row: Option<Row> = sqlx::query_as(sql)
                    .bind(dir)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some((created_at, identifier, email, external_id)) = row {
                    event.target.created_at = Some(created_at);
                    event.target.identifier = Some(identifier);
                    event.target.email = email;
                    event.target.external_id = external_id;
                } else if event.target.kind == TargetType::User {
                    // A user deleted before: keep it with the rest of its
                    // history.
                    event.target.created_at = sqlx::query_scalar(
                        "SELECT target_created_at FROM audit_subjects \
                         WHERE org_id = $1 AND value = $2",
                    )
                    .bind(event.org_id)
                    .bind(crate::audit::id_subject_key(id))
                    .fetch_optional(&mut *tx)
                    .await?
                    .flatten();
                }
            }
            insert_event(&mut *tx, &event).await?;
        });
        Ok(())
    }

    /// The users a `user` filter stands for, as (created, id) — how the
    /// target index is keyed: users of the org that have the identifier
    /// now (userName, any email, externalId, accountId, id), and users that
    /// had it before a rename or their deletion. Through the id, the whole
    /// history of a renamed user is found by either name.
    async fn report_user_targets(
        &self,
        org_id: Uuid,
        user: &str,
    ) -> Result<Vec<(Option<i64>, Uuid)>> {
        let as_id = Uuid::parse_str(user.trim()).ok();
        let mut targets: Vec<(Option<i64>, Uuid)> = read!(self, |_d, c| {
            let in_org = "directory_id IN (SELECT id FROM directories WHERE org_id = $1)";
            let sql = format!(
                "SELECT created_at, id FROM users WHERE {in_org} AND user_name_ci = $2 \
                 UNION SELECT u.created_at, u.id FROM user_emails e JOIN users u ON u.id = e.user_id \
                 WHERE e.{in_org} AND e.value_ci = $2 \
                 UNION SELECT created_at, id FROM users WHERE {in_org} AND external_id = $3 \
                 UNION SELECT created_at, id FROM users WHERE {in_org} AND account_id = $7 \
                 UNION SELECT created_at, id FROM users WHERE {in_org} AND id = $7 \
                 UNION SELECT target_created_at, target_id FROM audit_subjects \
                 WHERE org_id = $1 AND value IN ($4, $5, $6) \
                 LIMIT $8"
            );
            let lower = user.to_lowercase();
            let rows: Vec<(Option<i64>, Uuid)> = sqlx::query_as(&sql)
                .bind(org_id)
                .bind(&lower)
                .bind(user)
                .bind(format!("i:{lower}"))
                .bind(format!("x:{user}"))
                .bind(as_id.map(crate::audit::id_subject_key).unwrap_or_default())
                .bind(as_id)
                .bind(MAX_USER_TARGETS)
                .fetch_all(&mut *c)
                .await?;
            Ok::<_, super::StoreError>(rows)
        })?;
        // Failures on an id no user had (yet) are kept under no creation time.
        if let Some(id) = as_id {
            targets.push((None, id));
        }
        targets.sort();
        targets.dedup();
        Ok(targets)
    }

    /// One page of a provisioning report, newest first.
    pub async fn audit_report(&self, q: &ReportQuery) -> Result<Vec<EventRow>> {
        let targets = match &q.user {
            Some(u) => self.report_user_targets(q.org_id, u).await?,
            None => Vec::new(),
        };
        read!(self, |d, c| {
            let (sql, binds) = q.sql(d, &targets);
            let args: Vec<Arg> = binds.iter().map(Arg::from).collect();
            Ok(c.fetch_all(&sql, &args).await?)
        })
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
        read!(self, |d, c| {
            let (sql, binds) = q.sql(d, &targets);
            let args: Vec<Arg> = binds.iter().map(Arg::from).collect();
            let mut rows = c.fetch::<EventRow>(&sql, &args);
            while let Some(row) = rows.try_next().await? {
                if out.send(row).await.is_err() {
                    break;
                }
            }
            Ok(())
        })
    }

    /// Per directory and UTC day, days `[first_day, end_day)` since the
    /// epoch: users created, deactivated and deleted, failed writes, and
    /// accounts the sync engine granted or revoked access. Read from
    /// `audit_daily`, which triggers keep equal to the events' sums, so the
    /// cost is a row per directory and day however many events there are.
    pub async fn audit_stats(
        &self,
        org_id: Uuid,
        directory_id: Option<Uuid>,
        first_day: i64,
        end_day: i64,
    ) -> Result<Vec<DailyStats>> {
        let mut sql = String::from(
            "SELECT directory_id, day, \
             CAST(SUM(users_created) AS BIGINT) AS users_created, \
             CAST(SUM(users_deactivated) AS BIGINT) AS users_deactivated, \
             CAST(SUM(users_deleted) AS BIGINT) AS users_deleted, \
             CAST(SUM(failures) AS BIGINT) AS failures, \
             CAST(SUM(access_granted) AS BIGINT) AS access_granted, \
             CAST(SUM(access_revoked) AS BIGINT) AS access_revoked \
             FROM audit_daily WHERE org_id = $1 AND day >= $2 AND day < $3",
        );
        if directory_id.is_some() {
            sql += " AND directory_id = $4";
        }
        // A day whose events were all purged keeps a row of zeros.
        sql += " GROUP BY directory_id, day HAVING SUM(users_created + users_deactivated \
                + users_deleted + failures + access_granted + access_revoked) > 0 \
                ORDER BY directory_id, day";
        read!(self, |_d, c| {
            let mut q = sqlx::query_as(&sql)
                .bind(org_id)
                .bind(first_day)
                .bind(end_day);
            if let Some(d) = directory_id {
                q = q.bind(d);
            }
            Ok(q.fetch_all(&mut *c).await?)
        })
    }

    /// Deletes events older than `cutoff`, `batch` rows per transaction,
    /// until none are left. On PostgreSQL each batch first takes a
    /// transaction-scoped advisory lock; when another replica holds it,
    /// this one stops and leaves the work to it.
    pub async fn purge_audit_events(&self, cutoff: i64, batch: i64) -> Result<u64> {
        let orgs: Vec<Uuid> = read!(self, |_d, c| Ok::<_, super::StoreError>(
            sqlx::query_scalar("SELECT id FROM orgs")
                .fetch_all(&mut *c)
                .await?
        ))?;
        let mut total = 0u64;
        for org in orgs {
            let sql = "DELETE FROM audit_events WHERE (org_id, occurred_at, id) IN \
                       (SELECT org_id, occurred_at, id FROM audit_events \
                       WHERE org_id = $1 AND occurred_at < $2 LIMIT $3)";
            match self.purge_batches(sql, Some(org), cutoff, batch).await? {
                Some(n) => total += n,
                None => return Ok(total),
            }
        }
        // Identifiers no longer current for longer than the retention
        // belong to history that is gone.
        let sql = "DELETE FROM audit_subjects WHERE (org_id, value, target_id) IN \
                   (SELECT org_id, value, target_id FROM audit_subjects \
                   WHERE recorded_at < $1 LIMIT $2)";
        self.purge_batches(sql, None, cutoff, batch).await?;
        Ok(total)
    }

    /// Runs a batched DELETE (`$1`/`$2`/`$3` = org, cutoff, batch; or
    /// cutoff, batch without an org) until a batch comes back short. `None`
    /// when another replica holds the purge lock.
    async fn purge_batches(
        &self,
        sql: &str,
        org: Option<Uuid>,
        cutoff: i64,
        batch: i64,
    ) -> Result<Option<u64>> {
        let mut total = 0u64;
        loop {
            let deleted: Option<u64> = transaction!(self, |d, tx| {
                let locked = if d == super::Dialect::Postgres {
                    sqlx::query_scalar::<_, bool>(PURGE_LOCK_SQL)
                        .bind(PURGE_LOCK_KEY)
                        .fetch_one(&mut *tx)
                        .await?
                } else {
                    true
                };
                if locked {
                    let mut q = sqlx::query(sql);
                    if let Some(org) = org {
                        q = q.bind(org);
                    }
                    Some(
                        q.bind(cutoff)
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
                None => return Ok(None),
                Some(n) => {
                    total += n;
                    if n < batch as u64 {
                        return Ok(Some(total));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sql::audit::{EVENT_INSERT_COLUMNS, EVENT_WRITTEN_COLUMNS};

    /// The columns an event's INSERT names are the columns its values are
    /// written to, in the same order.
    #[test]
    fn an_event_insert_names_the_written_columns() {
        assert_eq!(
            EVENT_INSERT_COLUMNS,
            format!("INSERT INTO audit_events ({EVENT_WRITTEN_COLUMNS})")
        );
        let event = crate::audit::AuditContext::system("test")
            .in_org(Uuid::nil())
            .event(crate::audit::Action::OrgCreated);
        assert_eq!(
            EVENT_WRITTEN_COLUMNS.split(", ").count(),
            event_args(&event).len()
        );
    }
}
