//! The statements over `users`, both dialects side by side. Those every
//! look-up, PATCH, PUT or batch runs are built once ([`LazyLock`]), one
//! named field per shape.

use std::sync::LazyLock;

use super::audit::{
    event_params, with_event as with_event_sql, EVENT_INSERT_COLUMNS, EVENT_VALUES,
    EVENT_WRITTEN_COLUMNS,
};
use super::{Batches, BySize, PerStore};
use crate::store::Dialect;

/// `groups_json` for a query over `users`: the groups each user is a direct
/// member of as one JSON text, so a user or a page of users comes back with
/// its groups in one statement. With `wanted` false (the client excluded
/// `groups`) it is a constant and costs nothing.
pub(crate) fn groups_column(d: Dialect, wanted: bool) -> &'static str {
    match (d, wanted) {
        (_, false) => "'[]' AS groups_json",
        (Dialect::Sqlite, true) => {
            "(SELECT json_group_array(json_array(hex(g.id), g.display_name)) \
             FROM group_members gm CROSS JOIN groups g ON g.id = gm.group_id \
             WHERE gm.member_id = users.id) AS groups_json"
        }
        (Dialect::Postgres, true) => {
            "(SELECT COALESCE(json_agg(json_build_array(g.id, g.display_name)), '[]')::text \
             FROM group_members gm JOIN groups g ON g.id = gm.group_id \
             WHERE gm.member_id = users.id) AS groups_json"
        }
    }
}

pub(crate) fn user_columns(d: Dialect) -> String {
    format!(
        "id, {} AS doc, version, created_at, updated_at",
        d.doc_out()
    )
}

/// The 11 parameters of user `i` of a batch, numbered from `$1` on.
fn row_params(i: usize) -> Vec<String> {
    (1..=11).map(|n| format!("${}", i * 11 + n)).collect()
}

/// The `VALUES` rows of `rows` events, numbered after `after` other
/// parameters; with `keyed`, each starts with its position.
fn event_rows(rows: usize, after: usize, keyed: bool) -> String {
    let events: Vec<String> = (0..rows)
        .map(|i| {
            let params = event_params(after + i * EVENT_VALUES);
            match keyed {
                true => format!("({i}, {params})"),
                false => format!("({params})"),
            }
        })
        .collect();
    events.join(", ")
}

/// The statements behind the batched look-ups (`UserBatches`): the users
/// whose id is one of the JSON array `$1` (as 32 hex digits), or those of
/// directory `$1` whose lowercased userName is one of the JSON array `$2`;
/// each with or without their groups.
///
/// Ids are unique across directories, so a look-up by id names no
/// directory and the caller checks it on the rows found: given both,
/// PostgreSQL's generic plan intersects the primary key with the
/// directory's index, which reads the whole directory's entries.
pub(crate) struct UserLookups {
    by_id: String,
    by_id_with_groups: String,
    by_name: String,
    by_name_with_groups: String,
}

impl UserLookups {
    pub(crate) fn get(&self, by_name: bool, with_groups: bool) -> &str {
        match (by_name, with_groups) {
            (false, false) => &self.by_id,
            (false, true) => &self.by_id_with_groups,
            (true, false) => &self.by_name,
            (true, true) => &self.by_name_with_groups,
        }
    }
}

pub(crate) static USER_LOOKUPS: LazyLock<PerStore<UserLookups>> = LazyLock::new(|| {
    PerStore::build(|d| UserLookups {
        by_id: user_lookup(d, false, false),
        by_id_with_groups: user_lookup(d, false, true),
        by_name: user_lookup(d, true, false),
        by_name_with_groups: user_lookup(d, true, true),
    })
});

fn user_lookup(d: Dialect, by_name: bool, with_groups: bool) -> String {
    // PostgreSQL: `= ANY` of an array computed once, so the plan is an
    // index scan whatever the number of keys.
    let keys = match (d, by_name) {
        (Dialect::Sqlite, false) => "id IN (SELECT unhex(value) FROM json_each($1))",
        (Dialect::Sqlite, true) => {
            "directory_id = $1 AND user_name_ci IN (SELECT value FROM json_each($2))"
        }
        (Dialect::Postgres, false) => {
            "id = ANY(ARRAY(SELECT k::uuid FROM jsonb_array_elements_text($1::jsonb) AS k))"
        }
        (Dialect::Postgres, true) => {
            "directory_id = $1 \
             AND user_name_ci = ANY(ARRAY(SELECT jsonb_array_elements_text($2::jsonb)))"
        }
    };
    format!(
        "SELECT {}, {}, user_name_ci, directory_id FROM users WHERE {keys}",
        user_columns(d),
        groups_column(d, with_groups)
    )
}

/// Reading a user (`$1` its directory, `$2` its id) and, with its groups
/// or without, for a write; `locked` adds `FOR UPDATE` (PostgreSQL only).
/// Every PATCH and PUT that lost a race runs one.
pub(crate) struct CurrentUser {
    alone: String,
    with_groups: String,
    locked: String,
    locked_with_groups: String,
}

impl CurrentUser {
    pub(crate) fn get(&self, with_groups: bool, locked: bool) -> &str {
        match (locked, with_groups) {
            (false, false) => &self.alone,
            (false, true) => &self.with_groups,
            (true, false) => &self.locked,
            (true, true) => &self.locked_with_groups,
        }
    }
}

pub(crate) static CURRENT_USER: LazyLock<PerStore<CurrentUser>> = LazyLock::new(|| {
    PerStore::build(|d| CurrentUser {
        alone: current_user(d, false, ""),
        with_groups: current_user(d, true, ""),
        locked: current_user(d, false, " FOR UPDATE"),
        locked_with_groups: current_user(d, true, " FOR UPDATE"),
    })
});

fn current_user(d: Dialect, with_groups: bool, lock: &str) -> String {
    format!(
        "SELECT {}, {} FROM users WHERE directory_id = $1 AND id = $2{lock}",
        user_columns(d),
        groups_column(d, with_groups)
    )
}

/// Updating a user's row (`$1`-`$11`) and, with its event, inserting the
/// event (after `$11`), as one call. The row is written only if its
/// version is still the one before the update (`$8 - 1`), which is what
/// lets a write go without a lock (see `modify_user`); the event is
/// inserted only with the row (on SQLite, a second statement, only if the
/// first changed a row).
pub(crate) struct UpdateUser {
    alone: String,
    with_event: String,
}

impl UpdateUser {
    pub(crate) fn get(&self, with_event: bool) -> &str {
        match with_event {
            false => &self.alone,
            true => &self.with_event,
        }
    }
}

pub(crate) static UPDATE_USER: LazyLock<PerStore<UpdateUser>> = LazyLock::new(|| {
    PerStore::build(|d| UpdateUser {
        alone: update_user(d, false),
        with_event: update_user(d, true),
    })
});

fn update_user(d: Dialect, with_event: bool) -> String {
    let update = format!(
        "UPDATE users SET user_name = $1, user_name_ci = $2, external_id = $3, active = $4, \
         primary_email = $5, display_name = $6, doc = {}, version = $8, updated_at = $9 \
         WHERE directory_id = $10 AND id = $11 AND version = $8 - 1",
        d.doc_in(7)
    );
    match (with_event, d) {
        (false, _) => update,
        (true, Dialect::Postgres) => with_event_sql(d, &update, 11),
        (true, Dialect::Sqlite) => format!(
            "{update}; {} SELECT {} WHERE changes() > 0",
            EVENT_INSERT_COLUMNS,
            event_params(11)
        ),
    }
}

/// Creating users, linked to their accounts, with their emails and their
/// events or without, in one call that evaluates to the ids of the users
/// created and the accounts they are linked to. A user whose userName or
/// externalId is taken is skipped with its emails and event, so one
/// conflict costs the others nothing. Each user binds [`INSERT_VALUES`]
/// values (id, directory, the 7 stored columns, the time, its emails as a
/// JSON array, its org, the id of the account to make for it, that id as
/// its document writes it, its email's domain); the events follow, 23
/// values each.
///
/// A user links to the account of its org with its (lowercased primary)
/// email, or to a new one; users of a batch with one email share one new
/// id (the caller's doing). The document names the new id, replaced by
/// the linked one.
///
/// On PostgreSQL it is one statement of data-modifying CTEs. Accounts
/// come first, `ON CONFLICT … DO UPDATE … RETURNING`: under READ
/// COMMITTED that returns the account another transaction committed while
/// this one waited on the unique index, which `DO NOTHING` would not
/// (and the snapshot does not show), so two creations of one new email
/// end with one account. Accounts are written in (org, email) order, so
/// two batches wait for each other's emails in one order, never in a
/// cycle. An account a user links to again is made active again if the
/// user is. On SQLite, whose single writer runs one batch at a time, it
/// is four statements in one hand-off to the connection's thread (users
/// of one email share one account id, so a batch's accounts are grouped
/// by it); ids are new, so a user's emails and event are written exactly
/// when a row with its id exists.
pub(crate) static INSERT_USERS: LazyLock<PerStore<Batches>> = LazyLock::new(|| {
    PerStore::build(|d| {
        Batches::build(match d {
            Dialect::Sqlite => insert_users_sqlite,
            Dialect::Postgres => insert_users_postgres,
        })
    })
});

/// The values each user of [`INSERT_USERS`] binds.
pub(crate) const INSERT_VALUES: usize = 15;

/// The parameters of user `i` of a creation batch.
fn insert_params(i: usize) -> Vec<String> {
    (1..=INSERT_VALUES)
        .map(|n| format!("${}", i * INSERT_VALUES + n))
        .collect()
}

/// The `VALUES` rows of a creation batch, the parameters at `pick` of
/// each user, with PostgreSQL's casts.
fn insert_rows(d: Dialect, rows: usize, pick: &[usize]) -> String {
    let users: Vec<String> = (0..rows)
        .map(|i| {
            let p = insert_params(i);
            let values: Vec<String> = pick
                .iter()
                .map(|&k| match (d, k) {
                    (Dialect::Postgres, 10) => format!("{}::jsonb", p[k]),
                    (Dialect::Postgres, 0 | 1 | 11 | 12) => format!("{}::uuid", p[k]),
                    (Dialect::Postgres, 5) => format!("{}::boolean", p[k]),
                    (Dialect::Postgres, 9) => format!("{}::bigint", p[k]),
                    (Dialect::Postgres, _) => format!("{}::text", p[k]),
                    // Anonymous: see `SQLITE_INSERT_PICKS`.
                    (Dialect::Sqlite, _) => "?".to_owned(),
                })
                .collect();
            format!("({})", values.join(", "))
        })
        .collect();
    users.join(", ")
}

/// The columns of [`INSERT_VALUES`], by position.
const INSERT_COLUMNS: [&str; INSERT_VALUES] = [
    "id",
    "directory_id",
    "user_name",
    "user_name_ci",
    "external_id",
    "active",
    "primary_email",
    "display_name",
    "doc",
    "now",
    "emails",
    "org_id",
    "account_id",
    "account_text",
    "email_domain",
];

/// `v (columns) AS (VALUES …)` of the values at `pick`.
fn insert_cte(d: Dialect, rows: usize, pick: &[usize]) -> String {
    let names: Vec<&str> = pick.iter().map(|&k| INSERT_COLUMNS[k]).collect();
    format!(
        "v ({}) AS (VALUES {})",
        names.join(", "),
        insert_rows(d, rows, pick)
    )
}

/// A user whose userName or externalId is taken in its directory gets no
/// account made for it (its creation will be skipped).
const NOT_TAKEN: &str = "NOT EXISTS (SELECT 1 FROM users u WHERE u.directory_id = v.directory_id \
     AND u.user_name_ci = v.user_name_ci) \
     AND NOT EXISTS (SELECT 1 FROM users u WHERE u.directory_id = v.directory_id \
     AND u.external_id = v.external_id)";

const ALL_VALUES: [usize; INSERT_VALUES] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14];

fn insert_users_postgres(rows: usize, with_events: bool) -> String {
    let mut sql = format!(
        "WITH {}, \
         linked AS (INSERT INTO accounts (id, org_id, email, email_domain, display_name, \
         active, created_at, updated_at) \
         SELECT DISTINCT ON (org_id, primary_email, account_id) account_id, org_id, \
         primary_email, email_domain, display_name, active, now, now FROM v WHERE {NOT_TAKEN} \
         ORDER BY org_id, primary_email, account_id \
         ON CONFLICT (org_id, email) WHERE email IS NOT NULL DO UPDATE \
         SET active = accounts.active OR EXCLUDED.active, \
         updated_at = CASE WHEN accounts.active OR NOT EXCLUDED.active \
         THEN accounts.updated_at ELSE EXCLUDED.updated_at END \
         RETURNING id, org_id, email), \
         l AS (SELECT v.*, linked.id AS linked_id FROM v JOIN linked \
         ON linked.org_id = v.org_id AND (linked.email = v.primary_email \
         OR (v.primary_email IS NULL AND linked.id = v.account_id))), \
         written AS (INSERT INTO users (id, directory_id, user_name, user_name_ci, \
         external_id, active, primary_email, display_name, account_id, doc, version, \
         created_at, updated_at) SELECT id, directory_id, user_name, user_name_ci, \
         external_id, active, primary_email, display_name, linked_id, \
         replace(doc, account_text, linked_id::text)::jsonb, 1, now, now FROM l \
         ON CONFLICT DO NOTHING RETURNING id, account_id), \
         emails AS (INSERT INTO user_emails (user_id, directory_id, value_ci) \
         SELECT v.id, v.directory_id, e FROM v JOIN written USING (id), \
         jsonb_array_elements_text(v.emails) AS e)",
        insert_cte(Dialect::Postgres, rows, &ALL_VALUES)
    );
    if with_events {
        sql.push_str(&format!(
            ", events ({}) AS (VALUES {}), \
             logged AS ({} SELECT events.* FROM events \
             JOIN written ON written.id = events.target_id)",
            EVENT_WRITTEN_COLUMNS,
            event_rows(rows, rows * INSERT_VALUES, false),
            EVENT_INSERT_COLUMNS,
        ));
    }
    sql.push_str(" SELECT id, account_id FROM written");
    sql
}

/// A BLOB id as the hyphenated lowercase text a document holds.
fn sqlite_uuid_text(blob: &str) -> String {
    let part = |from: usize, len: usize| format!("substr(hex({blob}), {from}, {len})");
    format!(
        "lower({} || '-' || {} || '-' || {} || '-' || {} || '-' || {})",
        part(1, 8),
        part(9, 4),
        part(13, 4),
        part(17, 4),
        part(21, 12)
    )
}

/// The values of each user that SQLite's creation statements take, in
/// order: the accounts', the users', the emails'. Their parameters are
/// anonymous (`?`), bound in the order the statements name them (the
/// caller binds them so, then the events'): with `$n`, sqlx finds each
/// parameter's number by name, and SQLite's look-up of a name is a walk
/// of the statement's list of names, so binding a batch cost time in the
/// square of its parameters.
pub(crate) const SQLITE_INSERT_PICKS: [&[usize]; 3] = [
    &[0, 1, 3, 4, 5, 6, 7, 9, 11, 12, 14],
    &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13],
    &[0, 1, 10],
];

fn insert_users_sqlite(rows: usize, with_events: bool) -> String {
    let [accounts, users, emails] = SQLITE_INSERT_PICKS;
    let mut sql = format!(
        "WITH {} INSERT INTO accounts (id, org_id, email, email_domain, display_name, active, \
         created_at, updated_at) SELECT account_id, org_id, primary_email, email_domain, \
         display_name, max(active), now, now FROM v WHERE {NOT_TAKEN} GROUP BY account_id \
         ON CONFLICT (org_id, email) WHERE email IS NOT NULL DO UPDATE \
         SET active = 1, updated_at = excluded.updated_at \
         WHERE excluded.active AND NOT accounts.active; \
         WITH {}, \
         l AS (SELECT v.*, COALESCE((SELECT a.id FROM accounts a WHERE a.org_id = v.org_id \
         AND a.email = v.primary_email), (SELECT a.id FROM accounts a \
         WHERE a.id = v.account_id)) AS linked_id FROM v) \
         INSERT INTO users (id, directory_id, user_name, user_name_ci, external_id, active, \
         primary_email, display_name, account_id, doc, version, created_at, updated_at) \
         SELECT id, directory_id, user_name, user_name_ci, external_id, active, primary_email, \
         display_name, linked_id, CASE WHEN linked_id = account_id THEN doc \
         ELSE replace(doc, account_text, {}) END, 1, now, now FROM l \
         WHERE linked_id IS NOT NULL ON CONFLICT DO NOTHING RETURNING id, account_id; \
         WITH {} INSERT INTO user_emails (user_id, directory_id, value_ci) \
         SELECT v.id, v.directory_id, e.value FROM v, json_each(v.emails) AS e \
         WHERE EXISTS (SELECT 1 FROM users WHERE users.id = v.id)",
        insert_cte(Dialect::Sqlite, rows, accounts),
        insert_cte(Dialect::Sqlite, rows, users),
        sqlite_uuid_text("linked_id"),
        insert_cte(Dialect::Sqlite, rows, emails),
    );
    if with_events {
        let event = vec!["?"; EVENT_VALUES].join(", ");
        let events = vec![format!("({event})"); rows].join(", ");
        sql.push_str(&format!(
            "; WITH events ({}) AS (VALUES {events}) {} SELECT * FROM events \
             WHERE EXISTS (SELECT 1 FROM users WHERE users.id = events.target_id)",
            EVENT_WRITTEN_COLUMNS, EVENT_INSERT_COLUMNS,
        ));
    }
    sql
}

/// [`UPDATE_USER`] for a batch of users in one PostgreSQL statement, which
/// evaluates to the positions (from 0) of the updates written. Each row
/// binds the same 11 values in the same order; the events follow, 23
/// values each. Of two updates of one user in a batch, both worked out
/// from the same version, the row is written once, by one of them: the
/// position returned is that of the update used (`RETURNING v.k`), and
/// the other, unwritten, runs again as a lost race.
pub(crate) static UPDATE_USERS_POSTGRES: LazyLock<Batches> =
    LazyLock::new(|| Batches::build(update_users_postgres));

fn update_users_postgres(rows: usize, with_events: bool) -> String {
    let users: Vec<String> = (0..rows)
        .map(|i| {
            let p = row_params(i);
            format!(
                "({i}, {}, {}::jsonb, {})",
                p[..6].join(", "),
                p[6],
                p[7..].join(", ")
            )
        })
        .collect();
    let mut sql = format!(
        "WITH v (k, user_name, user_name_ci, external_id, active, primary_email, \
         display_name, doc, version, now, directory_id, id) AS (VALUES {}), \
         written AS (UPDATE users AS u SET user_name = v.user_name, \
         user_name_ci = v.user_name_ci, external_id = v.external_id, active = v.active, \
         primary_email = v.primary_email, display_name = v.display_name, doc = v.doc, \
         version = v.version, updated_at = v.now FROM v \
         WHERE u.directory_id = v.directory_id AND u.id = v.id \
         AND u.version = v.version - 1 RETURNING v.k)",
        users.join(", ")
    );
    if with_events {
        sql.push_str(&format!(
            ", events (k, {cols}) AS (VALUES {}), \
             logged AS ({} SELECT {cols} FROM events JOIN written USING (k))",
            event_rows(rows, rows * 11, true),
            EVENT_INSERT_COLUMNS,
            cols = EVENT_WRITTEN_COLUMNS,
        ));
    }
    sql.push_str(" SELECT k FROM written");
    sql
}

/// [`UPDATE_USER`] for a batch of different users in one SQLite
/// statement, which evaluates to the ids of the users written. (SQLite's
/// `RETURNING` cannot name the `VALUES`, so a batch holds one update per
/// user; events are inserted after it, for the users written: see
/// [`INSERT_EVENTS`].) Each row binds the same 11 values in the same
/// order as on PostgreSQL.
pub(crate) static UPDATE_USERS_SQLITE: LazyLock<BySize> =
    LazyLock::new(|| BySize::build(update_users_sqlite));

fn update_users_sqlite(rows: usize) -> String {
    let users: Vec<String> = (0..rows)
        .map(|i| format!("({})", row_params(i).join(", ")))
        .collect();
    format!(
        "WITH v (user_name, user_name_ci, external_id, active, primary_email, \
         display_name, doc, version, now, directory_id, id) AS (VALUES {}) \
         UPDATE users SET user_name = v.user_name, user_name_ci = v.user_name_ci, \
         external_id = v.external_id, active = v.active, primary_email = v.primary_email, \
         display_name = v.display_name, doc = v.doc, version = v.version, \
         updated_at = v.now FROM v \
         WHERE users.id = v.id AND users.directory_id = v.directory_id \
         AND users.version = v.version - 1 RETURNING users.id",
        users.join(", ")
    )
}

/// Inserting a batch of events (23 values each) in one statement.
pub(crate) static INSERT_EVENTS: LazyLock<BySize> = LazyLock::new(|| BySize::build(insert_events));

fn insert_events(rows: usize) -> String {
    let events = event_rows(rows, 0, false);
    format!("{} VALUES {events}", EVENT_INSERT_COLUMNS)
}

/// Removing user `$1` of directory `$2` from its groups. Each membership
/// is checked against its own group: `group_id IN (SELECT id FROM groups
/// WHERE directory_id = $2)` made SQLite list every group of the
/// directory first, for every delete (11 ms each with 10,000 groups).
pub(crate) const DELETE_MEMBERSHIPS_SQL: &str = "DELETE FROM group_members WHERE member_id = $1 \
     AND EXISTS (SELECT 1 FROM groups WHERE groups.id = group_members.group_id \
     AND groups.directory_id = $2)";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::accel::coalesce::MOST_PER_BATCH;

    /// A batch of creations or of updates numbers its parameters without
    /// a gap: 11 per user, then 23 per event. (SQLite's creation, three
    /// statements, names a user's id and directory again in its emails.)
    #[test]
    fn a_batch_of_writes_binds_every_value() {
        let insert_on = |d| move |rows, with_events| INSERT_USERS.of(d).get(rows, with_events);
        let shapes: [Box<dyn Fn(usize, bool) -> &'static str>; 3] = [
            Box::new(insert_on(Dialect::Postgres)),
            Box::new(|rows, with_events| UPDATE_USERS_POSTGRES.get(rows, with_events)),
            // SQLite's updates, then their events in a statement of their
            // own: each numbered from `$1`.
            Box::new(|rows, with_events| match with_events {
                false => UPDATE_USERS_SQLITE.rows(rows),
                true => INSERT_EVENTS.rows(rows),
            }),
        ];
        // SQLite's creation binds its parameters anonymously: one `?` for
        // each value it takes.
        for rows in [1, 2, 7, MOST_PER_BATCH] {
            for with_events in [false, true] {
                let sql = INSERT_USERS.of(Dialect::Sqlite).get(rows, with_events);
                let per_row: usize = SQLITE_INSERT_PICKS.iter().map(|p| p.len()).sum();
                let events = if with_events { EVENT_VALUES } else { 0 };
                assert_eq!(sql.matches('?').count(), rows * (per_row + events));
                assert!(!sql.contains('$'), "{sql}");
            }
        }
        for rows in [1, 2, 7, MOST_PER_BATCH] {
            for with_events in [false, true] {
                for build in &shapes {
                    let sql = build(rows, with_events);
                    let mut params: Vec<usize> = sql
                        .split('$')
                        .skip(1)
                        .map(|p| p.split(|c: char| !c.is_ascii_digit()).next().unwrap())
                        .map(|n| n.parse().unwrap())
                        .collect();
                    params.sort();
                    params.dedup();
                    let values = match sql.contains("INSERT INTO accounts") {
                        true => INSERT_VALUES,
                        false => 11,
                    };
                    let per_row = match (with_events, sql.starts_with("INSERT INTO audit_events")) {
                        (_, true) => 23,
                        (true, false) => values + 23,
                        (false, false) => values,
                    };
                    assert_eq!(params, (1..=rows * per_row).collect::<Vec<_>>(), "{sql}");
                }
            }
        }
    }
}
