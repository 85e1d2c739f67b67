//! The event feed (`events`): rows written in the transaction of their
//! change (by the triggers of the migration `events`, or by
//! [`insert_directory_events`] where one change is many rows, as group
//! members and access are), numbered per org by the sequencer
//! ([`Store::sequence_events`]) once committed, read in that order
//! ([`Store::feed_page`]) and pruned after their retention.
//!
//! Why numbering after the commit: a sequence taken inside the writing
//! transaction (a counter, an identity) is taken in write order, but rows
//! become visible in commit order. A reader that saw 7 and moved its
//! cursor there would never see a 6 whose transaction committed after its
//! read. The sequencer numbers only rows it can see, that is committed
//! ones, each run after the last (one at a time: PostgreSQL's advisory
//! lock, SQLite's single writer), with numbers above every number given
//! before. Each run commits its numbers at once, so what a reader sees is
//! always every event from 1 to some n: a row that commits late is simply
//! numbered later, after the rows already read, and nothing is skipped.
//!
//! That is PostgreSQL. SQLite runs one write transaction at a time, across
//! processes too, so there rows commit in the order they are written and
//! each takes its number as it is written (the triggers' next number, and
//! [`insert_directory_events`]'s): the same guarantee, without a second
//! write of every row.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Notify;
use uuid::Uuid;

use super::conn::{Arg, Conn, SqlBuilder};
use super::{read, transaction, Dialect, Result, Store};

/// Most rows one sequencer transaction numbers.
const SEQUENCE_BATCH: i64 = 2_000;

/// The advisory lock that lets one process number events at a time (with
/// the hash of the schema, as the audit purge's).
const SEQUENCER_LOCK_KEY: i32 = 0x5c1d_e7e1;
const SEQUENCER_LOCK_SQL: &str = "SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))";

/// An event as the feed serves it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct FeedRow {
    pub sequence: i64,
    pub event_id: Uuid,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub occurred_at: i64,
    pub org_id: Uuid,
    pub directory_id: Option<Uuid>,
    /// JSON text, as stored.
    pub data: String,
}

/// What a page of the feed asks for.
#[derive(Clone, Debug, Default)]
pub struct FeedQuery {
    pub org_id: Uuid,
    /// Events after this sequence.
    pub after: i64,
    /// Types wanted: exact names, or prefixes ending in `.` (`user.`);
    /// empty for all.
    pub types: Vec<String>,
    /// Only events of these directories; empty for all.
    pub directory_ids: Vec<Uuid>,
    /// Events up to this sequence only (a webhook's deliverer reads up to
    /// the bound it read first, so it knows how far an empty page reaches).
    pub until: Option<i64>,
    pub limit: i64,
}

/// An org's feed bounds: the last sequence given and the last pruned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FeedBounds {
    pub last_sequence: i64,
    pub pruned_through: i64,
}

/// Wakes the sequencer when this process commits events, and the feed's
/// long polls when it has numbered some.
#[derive(Default)]
pub(crate) struct EventSignals {
    pub(crate) written: Notify,
    pub(crate) sequenced: Notify,
}

/// One event of a change that is many rows, written by the code of the
/// change (the others are written by triggers).
pub(crate) struct NewEvent {
    pub(crate) kind: &'static str,
    pub(crate) data: String,
}

/// Whose events are written: a directory's (its org found from it) or the
/// organisation's own.
enum Owner {
    Directory(Uuid),
    Org(Uuid),
}

/// Writes `events` of directory `directory_id` inside the caller's
/// transaction. On SQLite they are numbered here, as the triggers number
/// theirs (see the migration `events`): its write transactions run one at
/// a time, so the next numbers are this transaction's to take.
pub(crate) async fn insert_directory_events<C: Conn>(
    c: &mut C,
    directory_id: Uuid,
    events: &[NewEvent],
) -> Result<()> {
    insert_events_of(c, Owner::Directory(directory_id), events).await
}

/// Writes `events` of the organisation itself (no directory), as
/// [`insert_directory_events`] writes a directory's.
pub(crate) async fn insert_org_events<C: Conn>(
    c: &mut C,
    org_id: Uuid,
    events: &[NewEvent],
) -> Result<()> {
    insert_events_of(c, Owner::Org(org_id), events).await
}

async fn insert_events_of<C: Conn>(c: &mut C, owner: Owner, events: &[NewEvent]) -> Result<()> {
    // The owner as a one-row table `o (org_id, directory_id)`.
    let (owner_sql, owner_id) = match owner {
        Owner::Directory(id) => (
            "SELECT d.org_id, d.id FROM directories d WHERE d.id = $1",
            id,
        ),
        Owner::Org(id) => (
            "SELECT g.id, CAST(NULL AS {uuid}) FROM orgs g WHERE g.id = $1",
            id,
        ),
    };
    // Both end with their one parameter, bound again by the insert.
    let owner_sql = owner_sql.replace(
        "{uuid}",
        match C::DIALECT {
            Dialect::Sqlite => "BLOB",
            Dialect::Postgres => "UUID",
        },
    );
    let mut next: Option<i64> = None;
    if C::DIALECT == Dialect::Sqlite {
        let (last,): (i64,) = c
            .fetch_one(
                &format!(
                    "WITH o (org_id, directory_id) AS ({owner_sql}) \
                     SELECT COALESCE((SELECT max(e.sequence) FROM events e \
                     WHERE e.org_id = o.org_id AND e.sequence IS NOT NULL), \
                     (SELECT p.pruned_through FROM event_orgs p WHERE p.org_id = o.org_id), 0) \
                     FROM o"
                ),
                &[owner_id.into()],
            )
            .await?;
        next = Some(last + 1);
    }
    // 3 values an event, after the owner's one.
    for chunk in events.chunks(500) {
        let mut q = SqlBuilder::new(C::DIALECT, "WITH o (org_id, directory_id) AS (");
        q.push(&owner_sql.replace("$1", "")).push_bind(owner_id);
        q.push("), v (kind, data, seq) AS (");
        q.push_values(chunk.iter(), |e| {
            let seq = next;
            next = next.map(|n| n + 1);
            vec![e.kind.into(), e.data.as_str().into(), seq.into()]
        });
        q.push(
            ") INSERT INTO events (org_id, directory_id, type, data, sequence) \
             SELECT o.org_id, o.directory_id, v.kind, v.data, v.seq FROM v CROSS JOIN o",
        );
        c.execute(q.sql(), q.args()).await?;
    }
    Ok(())
}

/// `ids` as events of `kind`, at most `chunk` ids to an event, each event's
/// data `{key: <subject>, "members"/"…": [ids]}` built by `data`.
pub(crate) fn chunked_events<T>(
    kind: &'static str,
    ids: &[T],
    chunk: usize,
    mut data: impl FnMut(&[T]) -> serde_json::Value,
) -> Vec<NewEvent> {
    ids.chunks(chunk.max(1))
        .map(|part| NewEvent {
            kind,
            data: data(part).to_string(),
        })
        .collect()
}

impl FeedQuery {
    fn sql(&self, d: Dialect) -> (String, Vec<Arg<'_>>) {
        let mut q = SqlBuilder::new(
            d,
            "SELECT sequence, event_id, type, occurred_at, org_id, directory_id, data \
             FROM events WHERE org_id = ",
        );
        q.push_bind(self.org_id)
            .push(" AND sequence IS NOT NULL AND sequence > ")
            .push_bind(self.after);
        if let Some(until) = self.until {
            q.push(" AND sequence <= ").push_bind(until);
        }
        match self.directory_ids.as_slice() {
            [] => {}
            [dir] => {
                q.push(" AND directory_id = ").push_bind(*dir);
            }
            dirs => {
                q.push(" AND directory_id IN (")
                    .push_list(dirs.iter().copied())
                    .push(")");
            }
        }
        let (prefixes, exact): (Vec<&String>, Vec<&String>) =
            self.types.iter().partition(|t| t.ends_with('.'));
        if !self.types.is_empty() {
            q.push(" AND (");
            let mut first = true;
            if !exact.is_empty() {
                q.push("type IN (")
                    .push_list(exact.iter().map(|t| t.as_str()))
                    .push(")");
                first = false;
            }
            for p in prefixes {
                if !first {
                    q.push(" OR ");
                }
                // Type names are `[a-z_.]`: no LIKE wildcard to escape.
                q.push("type LIKE ").push_bind(format!("{p}%"));
                first = false;
            }
            q.push(")");
        }
        q.push(" ORDER BY sequence LIMIT ").push_bind(self.limit);
        (q.sql().to_owned(), q.args().to_vec())
    }
}

impl Store {
    pub(crate) fn event_signals(&self) -> Arc<EventSignals> {
        self.events.clone()
    }

    /// Tells the sequencer that this process committed events.
    pub fn events_written(&self) {
        self.events.written.notify_one();
    }

    /// One page of an org's feed, in sequence order.
    pub async fn feed_page(&self, q: &FeedQuery) -> Result<Vec<FeedRow>> {
        read!(self, |d, c| {
            let (sql, args) = q.sql(d);
            Ok(c.fetch_all(&sql, &args).await?)
        })
    }

    /// An org's feed bounds (zeros for an org with no event yet), as one
    /// snapshot sees them.
    pub async fn feed_bounds(&self, org_id: Uuid) -> Result<FeedBounds> {
        let (last, pruned): (i64, i64) = read!(self, |_d, c| {
            c.fetch_one(
                "SELECT COALESCE((SELECT max(sequence) FROM events WHERE org_id = $1 \
                 AND sequence IS NOT NULL), 0), COALESCE((SELECT pruned_through FROM event_orgs \
                 WHERE org_id = $1), 0)",
                &[org_id.into()],
            )
            .await?
        });
        Ok(FeedBounds {
            last_sequence: last.max(pruned),
            pruned_through: pruned,
        })
    }

    /// Numbers committed events, oldest written first, until none is left;
    /// evaluates to how many it numbered. On PostgreSQL each batch holds the
    /// sequencer's advisory lock until it commits, so processes take turns.
    pub async fn sequence_events(&self) -> Result<u64> {
        if self.dialect() == Dialect::Sqlite {
            // Numbered as written (see [`insert_directory_events`]): what
            // woke the sequencer is in the feed already.
            self.events.sequenced.notify_waiters();
            return Ok(0);
        }
        let mut total = 0u64;
        loop {
            let n = self.sequence_batch().await?;
            total += n;
            if n > 0 {
                self.events.sequenced.notify_waiters();
            }
            if n < SEQUENCE_BATCH as u64 {
                return Ok(total);
            }
        }
    }

    async fn sequence_batch(&self) -> Result<u64> {
        let numbered: u64 = transaction!(self, |d, tx| {
            if d == Dialect::Postgres {
                // Waits for a run of another process to commit, so the
                // next statement's snapshot sees its numbers.
                sqlx::query(SEQUENCER_LOCK_SQL)
                    .bind(SEQUENCER_LOCK_KEY)
                    .execute(&mut *tx)
                    .await?;
            }
            let rows: Vec<(i64, Uuid)> = sqlx::query_as(
                "SELECT id, org_id FROM events WHERE sequence IS NULL ORDER BY id LIMIT $1",
            )
            .bind(SEQUENCE_BATCH)
            .fetch_all(&mut *tx)
            .await?;
            let mut by_org: HashMap<Uuid, Vec<i64>> = HashMap::new();
            for (id, org) in &rows {
                by_org.entry(*org).or_default().push(*id);
            }
            let mut numbers: Vec<(i64, i64)> = Vec::with_capacity(rows.len());
            for (org, ids) in &by_org {
                let last: i64 = sqlx::query_scalar(
                    "INSERT INTO event_orgs (org_id, last_sequence, pruned_through) \
                     VALUES ($1, $2, 0) ON CONFLICT (org_id) DO UPDATE \
                     SET last_sequence = event_orgs.last_sequence + excluded.last_sequence \
                     RETURNING last_sequence",
                )
                .bind(*org)
                .bind(ids.len() as i64)
                .fetch_one(&mut *tx)
                .await?;
                let first = last - ids.len() as i64 + 1;
                numbers.extend(
                    ids.iter()
                        .enumerate()
                        .map(|(i, id)| (*id, first + i as i64)),
                );
            }
            for chunk in numbers.chunks(1_000) {
                let mut q = SqlBuilder::new(d, "WITH v (id, seq) AS (");
                q.push_values(chunk.iter(), |(id, seq)| vec![(*id).into(), (*seq).into()]);
                q.push(") UPDATE events SET sequence = v.seq FROM v WHERE events.id = v.id");
                Conn::execute(&mut *tx, q.sql(), q.args()).await?;
            }
            rows.len() as u64
        });
        Ok(numbered)
    }

    /// Deletes numbered events written before `cutoff` (microseconds), per
    /// org from its oldest on, `batch` at a time, and records the last
    /// sequence deleted, so a cursor before it is known to be expired.
    /// Only a prefix of the feed is ever deleted: an event kept after an
    /// older one keeps that one too. Nor is an event a webhook has not yet
    /// been sent (after its cursor): a failing endpoint keeps its events.
    pub async fn prune_events(&self, cutoff: i64, batch: i64) -> Result<u64> {
        let orgs: Vec<(Uuid, i64)> = read!(self, |_d, c| {
            c.fetch_all(
                "SELECT id, COALESCE((SELECT pruned_through FROM event_orgs \
                 WHERE event_orgs.org_id = orgs.id), 0) FROM orgs",
                &[],
            )
            .await?
        });
        let mut total = 0u64;
        for (org, mut through) in orgs {
            loop {
                let deleted: u64 = transaction!(self, |_d, tx| {
                    let rows: Vec<(i64, i64)> = sqlx::query_as(
                        "SELECT sequence, occurred_at FROM events WHERE org_id = $1 \
                         AND sequence IS NOT NULL AND sequence > $2 ORDER BY sequence LIMIT $3",
                    )
                    .bind(org)
                    .bind(through)
                    .bind(batch)
                    .fetch_all(&mut *tx)
                    .await?;
                    // A webhook's pending events stay until it has them.
                    let held: Option<i64> = sqlx::query_scalar(
                        "SELECT min(delivered_through) FROM webhooks WHERE org_id = $1",
                    )
                    .bind(org)
                    .fetch_one(&mut *tx)
                    .await?;
                    let held = held.unwrap_or(i64::MAX);
                    let upto = rows
                        .iter()
                        .take_while(|(seq, at)| *at < cutoff && *seq <= held)
                        .last()
                        .map(|(s, _)| *s);
                    match upto {
                        None => 0,
                        Some(upto) => {
                            let n = sqlx::query(
                                "DELETE FROM events WHERE org_id = $1 \
                                 AND sequence IS NOT NULL AND sequence > $2 AND sequence <= $3",
                            )
                            .bind(org)
                            .bind(through)
                            .bind(upto)
                            .execute(&mut *tx)
                            .await?
                            .rows_affected();
                            sqlx::query(
                                "INSERT INTO event_orgs (org_id, last_sequence, pruned_through) \
                                 VALUES ($1, $2, $2) ON CONFLICT (org_id) DO UPDATE \
                                 SET pruned_through = excluded.pruned_through \
                                 WHERE event_orgs.pruned_through < excluded.pruned_through",
                            )
                            .bind(org)
                            .bind(upto)
                            .execute(&mut *tx)
                            .await?;
                            through = upto;
                            n
                        }
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

    /// Whether events wait for a number (the sequencer's poll for other
    /// processes' writes).
    pub async fn events_unsequenced(&self) -> Result<bool> {
        let row: Option<(i64,)> = read!(self, |_d, c| {
            c.fetch_optional("SELECT id FROM events WHERE sequence IS NULL LIMIT 1", &[])
                .await?
        });
        Ok(row.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_split_a_chunk_to_an_event() {
        let ids: Vec<u32> = (0..2_500).collect();
        let events = chunked_events(
            "group.members_added",
            &ids,
            1_000,
            |part| serde_json::json!({ "members": part }),
        );
        let sizes: Vec<usize> = events
            .iter()
            .map(|e| {
                let v: serde_json::Value = serde_json::from_str(&e.data).unwrap();
                v["members"].as_array().unwrap().len()
            })
            .collect();
        assert_eq!(sizes, [1_000, 1_000, 500]);
        assert!(chunked_events("x", &[] as &[u32], 1_000, |_| serde_json::json!({})).is_empty());
    }

    #[test]
    fn a_page_filters_types_by_name_and_prefix() {
        let q = FeedQuery {
            org_id: Uuid::nil(),
            after: 7,
            types: vec!["user.".into(), "group.created".into()],
            directory_ids: vec![Uuid::nil()],
            until: None,
            limit: 10,
        };
        let (sql, args) = q.sql(Dialect::Postgres);
        assert!(sql.contains("sequence > $2"), "{sql}");
        assert!(sql.contains("directory_id = $3"), "{sql}");
        assert!(sql.contains("type IN ($4) OR type LIKE $5"), "{sql}");
        assert!(sql.ends_with("ORDER BY sequence LIMIT $6"), "{sql}");
        assert_eq!(args.len(), 6);
        let (sql, _) = FeedQuery {
            types: vec![],
            directory_ids: vec![],
            ..q
        }
        .sql(Dialect::Sqlite);
        assert!(!sql.contains("type IN") && !sql.contains("LIKE"), "{sql}");
    }
}
