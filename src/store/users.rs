//! Users: the SCIM document plus the hot attributes as indexed columns.

use serde_json::{Map, Value};
use uuid::Uuid;

use super::audit::{bind_event, insert_event, record_subjects, with_event as with_event_sql};
use super::coalesce::Coalescer;
use super::query::{bind_all, fetch_page, ListKey, ListQuery, Page};
use super::user_cache::Change;
use super::{now_micros, read, write_job, OnConflict, Result, Store, StoreError};
use crate::audit::{Action, AuditContext, Event};
use crate::directory::events::{self, deleted_user_subjects, user_created, user_updated};
use crate::directory::user::email_values;
use crate::directory::UserDraft;
use crate::scim::list::ListRequest;

/// A stored user.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct UserRow {
    pub id: Uuid,
    pub doc: String,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl UserRow {
    pub fn doc_map(&self) -> Map<String, Value> {
        match serde_json::from_str(&self.doc) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        }
    }
}

/// A user with the groups it is a direct member of, read in the same
/// query (see [`groups_column`]).
#[derive(Clone, sqlx::FromRow)]
pub(super) struct UserWithGroups {
    #[sqlx(flatten)]
    user: UserRow,
    /// `[[groupId, displayName], …]` as JSON text.
    groups_json: String,
}

impl ListKey for UserWithGroups {
    fn list_key(&self) -> (i64, Uuid) {
        (self.user.created_at, self.user.id)
    }
}

impl UserWithGroups {
    fn split(self) -> (UserRow, Vec<UserGroup>) {
        let pairs: Vec<(String, String)> =
            serde_json::from_str(&self.groups_json).unwrap_or_default();
        let mut groups: Vec<UserGroup> = pairs
            .into_iter()
            .filter_map(|(gid, name)| {
                Some(UserGroup {
                    member_id: self.user.id,
                    group_id: Uuid::parse_str(&gid).ok()?,
                    display_name: name,
                })
            })
            .collect();
        groups.sort_by_key(|g| g.display_name.to_lowercase());
        (self.user, groups)
    }
}

/// A user found by its lowercased userName.
#[derive(Clone, sqlx::FromRow)]
pub(super) struct NamedUser {
    #[sqlx(flatten)]
    found: UserWithGroups,
    user_name_ci: String,
    directory_id: Uuid,
}

/// Single-user statements made at the same time, answered by shared
/// statements (see [`super::coalesce`]).
pub(super) struct UserBatches {
    /// `GET /Users/{id}`, grouped by directory.
    by_id: Coalescer<Uuid, Uuid, NamedUser>,
    /// `userName eq`, grouped by directory and whether groups are wanted,
    /// keyed by the lowercased userName.
    by_name: Coalescer<(Uuid, bool), String, NamedUser>,
    /// `POST /Users`, grouped by whether events are written.
    inserts: Coalescer<bool, PendingUser, PendingUser>,
    /// PATCH and PUT that are one statement (see
    /// [`UserUpdate::is_one_statement`]), grouped by whether events are
    /// written.
    updates: Coalescer<bool, PendingUpdate, PendingUpdate>,
}

impl UserBatches {
    /// At most `leaders` statements of each kind at once.
    pub(super) fn new(leaders: usize) -> Self {
        UserBatches {
            by_id: Coalescer::new(leaders),
            by_name: Coalescer::new(leaders),
            inserts: Coalescer::new(leaders),
            updates: Coalescer::new(leaders),
        }
    }
}

/// A user to create, waiting for a shared statement; told apart from the
/// others of its batch by the id it was given.
#[derive(Clone)]
pub(super) struct PendingUser(std::sync::Arc<NewUserRow>);

pub(super) struct NewUserRow {
    id: Uuid,
    directory_id: Uuid,
    user: UserDraft,
    now: i64,
    /// `user.emails` as a JSON array.
    emails: String,
    event: Option<Event>,
}

impl PartialEq for PendingUser {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}

/// Creating `rows` users, with their emails and (`with_events`) their
/// events, in one call that evaluates to the ids of the users created. A
/// user whose userName is taken is skipped with its emails and event, so
/// one conflict costs the others nothing. Each user binds 11 values (id,
/// directory, the 7 of [`bind_user!`], the time, its emails as a JSON
/// array); the events follow, 23 values each.
///
/// On PostgreSQL it is one statement of data-modifying CTEs. On SQLite it
/// is three statements in one hand-off to the connection's thread; ids are
/// new, so a user's emails and event are written exactly when a row with
/// its id exists.
fn insert_users_sql(d: super::Dialect, rows: usize, with_events: bool) -> &'static str {
    use std::sync::LazyLock;
    fn users(d: super::Dialect, rows: usize) -> String {
        let users: Vec<String> = (0..rows)
            .map(|i| {
                let p = row_params(i);
                match d {
                    super::Dialect::Postgres => format!(
                        "({}, {}::jsonb, {}, {}::jsonb)",
                        p[..8].join(", "),
                        p[8],
                        p[9],
                        p[10]
                    ),
                    super::Dialect::Sqlite => {
                        format!("({}, 1, {}, {})", p[..9].join(", "), p[9], p[9])
                    }
                }
            })
            .collect();
        users.join(", ")
    }
    fn postgres(rows: usize, with_events: bool) -> String {
        let mut sql = format!(
            "WITH v (id, directory_id, user_name, user_name_ci, external_id, active, \
             primary_email, display_name, doc, now, emails) AS (VALUES {}), \
             written AS (INSERT INTO users (id, directory_id, user_name, user_name_ci, \
             external_id, active, primary_email, display_name, doc, version, created_at, \
             updated_at) SELECT id, directory_id, user_name, user_name_ci, external_id, active, \
             primary_email, display_name, doc, 1, now, now FROM v \
             ON CONFLICT DO NOTHING RETURNING id), \
             emails AS (INSERT INTO user_emails (user_id, directory_id, value_ci) \
             SELECT v.id, v.directory_id, e FROM v JOIN written USING (id), \
             jsonb_array_elements_text(v.emails) AS e)",
            users(super::Dialect::Postgres, rows)
        );
        if with_events {
            sql.push_str(&format!(
                ", events ({}) AS (VALUES {}), \
                 logged AS ({} SELECT events.* FROM events \
                 JOIN written ON written.id = events.target_id)",
                super::audit::EVENT_WRITTEN_COLUMNS,
                event_rows(rows, rows * 11, false),
                super::audit::EVENT_INSERT_COLUMNS,
            ));
        }
        sql.push_str(" SELECT id FROM written");
        sql
    }
    fn sqlite(rows: usize, with_events: bool) -> String {
        let emails: Vec<String> = (0..rows)
            .map(|i| {
                let p = row_params(i);
                format!("({}, {}, {})", p[0], p[1], p[10])
            })
            .collect();
        let mut sql = format!(
            "INSERT INTO users (id, directory_id, user_name, user_name_ci, external_id, active, \
             primary_email, display_name, doc, version, created_at, updated_at) VALUES {} \
             ON CONFLICT DO NOTHING RETURNING id; \
             WITH v (id, directory_id, emails) AS (VALUES {}) \
             INSERT INTO user_emails (user_id, directory_id, value_ci) \
             SELECT v.id, v.directory_id, e.value FROM v, json_each(v.emails) AS e \
             WHERE EXISTS (SELECT 1 FROM users WHERE users.id = v.id)",
            users(super::Dialect::Sqlite, rows),
            emails.join(", ")
        );
        if with_events {
            sql.push_str(&format!(
                "; WITH events ({}) AS (VALUES {}) {} SELECT * FROM events \
                 WHERE EXISTS (SELECT 1 FROM users WHERE users.id = events.target_id)",
                super::audit::EVENT_WRITTEN_COLUMNS,
                event_rows(rows, rows * 11, false),
                super::audit::EVENT_INSERT_COLUMNS,
            ));
        }
        sql
    }
    static POSTGRES: LazyLock<Vec<[String; 2]>> = LazyLock::new(|| batch_shapes(postgres));
    static SQLITE: LazyLock<Vec<[String; 2]>> = LazyLock::new(|| batch_shapes(sqlite));
    let shapes = match d {
        super::Dialect::Postgres => &POSTGRES,
        super::Dialect::Sqlite => &SQLITE,
    };
    &shapes[rows - 1][usize::from(with_events)]
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
            let params = super::audit::event_params(after + i * super::audit::EVENT_VALUES);
            match keyed {
                true => format!("({i}, {params})"),
                false => format!("({params})"),
            }
        })
        .collect();
    events.join(", ")
}

/// A batch statement for each number of rows a batch can hold, without
/// and with events, built once.
fn batch_shapes(build: fn(usize, bool) -> String) -> Vec<[String; 2]> {
    (1..=super::coalesce::MOST_PER_BATCH)
        .map(|rows| [build(rows, false), build(rows, true)])
        .collect()
}

/// The statement behind [`UserBatches`]' look-ups: the users whose id is one of the
/// JSON array `$1` (as 32 hex digits), or with `by_name` the users of
/// directory `$1` whose lowercased userName is one of the JSON array `$2`;
/// with their groups if `with_groups`. Built once per store and shape.
///
/// Ids are unique across directories, so a look-up by id names no
/// directory and the caller checks it on the rows found: given both,
/// PostgreSQL's generic plan intersects the primary key with the
/// directory's index, which reads the whole directory's entries.
fn users_by_keys_sql(d: super::Dialect, by_name: bool, with_groups: bool) -> &'static str {
    use std::sync::LazyLock;
    fn build(d: super::Dialect, by_name: bool, with_groups: bool) -> String {
        // PostgreSQL: `= ANY` of an array computed once, so the plan is an
        // index scan whatever the number of keys.
        let keys = match (d, by_name) {
            (super::Dialect::Sqlite, false) => "id IN (SELECT unhex(value) FROM json_each($1))",
            (super::Dialect::Sqlite, true) => {
                "directory_id = $1 AND user_name_ci IN (SELECT value FROM json_each($2))"
            }
            (super::Dialect::Postgres, false) => {
                "id = ANY(ARRAY(SELECT k::uuid FROM jsonb_array_elements_text($1::jsonb) AS k))"
            }
            (super::Dialect::Postgres, true) => {
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
    static SQL: LazyLock<Vec<String>> = LazyLock::new(|| {
        let mut all = Vec::new();
        for d in [super::Dialect::Sqlite, super::Dialect::Postgres] {
            for by_name in [false, true] {
                for with_groups in [false, true] {
                    all.push(build(d, by_name, with_groups));
                }
            }
        }
        all
    });
    let store = match d {
        super::Dialect::Sqlite => 0,
        super::Dialect::Postgres => 4,
    };
    &SQL[store + 2 * usize::from(by_name) + usize::from(with_groups)]
}

/// `groups_json` for a query over `users`: the groups each user is a direct
/// member of as one JSON text, so a user or a page of users comes back with
/// its groups in one statement. With `wanted` false (the client excluded
/// `groups`) it is a constant and costs nothing.
fn groups_column(d: super::Dialect, wanted: bool) -> &'static str {
    match (d, wanted) {
        (_, false) => "'[]' AS groups_json",
        (super::Dialect::Sqlite, true) => {
            "(SELECT json_group_array(json_array(hex(g.id), g.display_name)) \
             FROM group_members gm CROSS JOIN groups g ON g.id = gm.group_id \
             WHERE gm.member_id = users.id) AS groups_json"
        }
        (super::Dialect::Postgres, true) => {
            "(SELECT COALESCE(json_agg(json_build_array(g.id, g.display_name)), '[]')::text \
             FROM group_members gm JOIN groups g ON g.id = gm.group_id \
             WHERE gm.member_id = users.id) AS groups_json"
        }
    }
}

/// A group a user belongs to (for the user's read-only `groups`).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct UserGroup {
    pub member_id: Uuid,
    pub group_id: Uuid,
    pub display_name: String,
}

/// Binds a user's stored columns, in the order both INSERT and UPDATE
/// name them: `user_name`, `user_name_ci`, `external_id`, `active`,
/// `primary_email`, `display_name`, `doc`.
macro_rules! bind_user {
    ($q:expr, $user:expr) => {{
        let user: &UserDraft = &$user;
        $q.bind(&user.user_name)
            .bind(user.user_name.to_lowercase())
            .bind(&user.external_id)
            .bind(user.active)
            .bind(&user.primary_email)
            .bind(&user.display_name)
            .bind(&user.doc)
    }};
}

/// Binds a batch of creations to `insert_users_sql`'s statement for it.
macro_rules! bind_new_users {
    ($q:expr, $batch:expr, $with_events:expr) => {{
        let mut q = $q;
        for p in $batch {
            q = q.bind(p.0.id).bind(p.0.directory_id);
            q = bind_user!(q, p.0.user).bind(p.0.now).bind(&p.0.emails);
        }
        if $with_events {
            for p in $batch {
                let event = p.0.event.as_ref().expect("batches are grouped by events");
                q = bind_event!(q, event);
            }
        }
        q
    }};
}

/// Creates `batch` (all with events, or all without) in one call;
/// evaluates to those created (see [`insert_users_sql`]).
async fn insert_users(
    db: &super::Db,
    with_events: bool,
    batch: Vec<PendingUser>,
) -> Result<Vec<PendingUser>> {
    let created: Vec<Uuid> = match db {
        // A job of the writer, committed with its other jobs; bound there,
        // so that event times follow the writer's order.
        super::Db::Sqlite { writer, .. } => {
            let batch = batch.clone();
            writer
                .run(move |conn| {
                    Box::pin(async move {
                        let sql =
                            insert_users_sql(super::Dialect::Sqlite, batch.len(), with_events);
                        let q = bind_new_users!(sqlx::query_scalar(sql), &batch, with_events);
                        q.fetch_all(&mut *conn).await.on_conflict("userName")
                    })
                })
                .await?
        }
        // A transaction of its own: no BEGIN and COMMIT round trips, and
        // one commit for the whole batch.
        super::Db::Postgres(pg) => {
            let sql = insert_users_sql(super::Dialect::Postgres, batch.len(), with_events);
            let q = bind_new_users!(sqlx::query_scalar(sql), &batch, with_events);
            super::pg_lend!(pg, |c| {
                q.fetch_all(&mut *c).await.on_conflict("userName")?
            })
        }
    };
    Ok(batch
        .into_iter()
        .filter(|p| created.contains(&p.0.id))
        .collect())
}

/// Writes a user's rows in `user_emails` inside the caller's transaction.
macro_rules! store_emails {
    ($tx:ident, $directory_id:expr, $user_id:expr, $emails:expr, $replace:expr) => {{
        if $replace {
            sqlx::query("DELETE FROM user_emails WHERE user_id = $1")
                .bind($user_id)
                .execute(&mut *$tx)
                .await?;
        }
        let emails: &[String] = $emails;
        if !emails.is_empty() {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO user_emails (user_id, directory_id, value_ci) ",
            );
            q.push_values(emails, |mut row, email| {
                row.push_bind($user_id)
                    .push_bind($directory_id)
                    .push_bind(email.as_str());
            });
            q.build().execute(&mut *$tx).await?;
        }
    }};
}

/// A statement `build` makes for each store and each value of its flag
/// (with or without an event, with or without groups).
fn each_shape(build: fn(super::Dialect, bool) -> String) -> [String; 4] {
    use super::Dialect::{Postgres, Sqlite};
    [
        build(Sqlite, false),
        build(Sqlite, true),
        build(Postgres, false),
        build(Postgres, true),
    ]
}

/// The statement of [`each_shape`] for `d` and `flag`.
fn one_shape(all: &[String; 4], d: super::Dialect, flag: bool) -> &str {
    let store = match d {
        super::Dialect::Sqlite => 0,
        super::Dialect::Postgres => 2,
    };
    &all[store + usize::from(flag)]
}

fn user_columns(d: super::Dialect) -> String {
    format!(
        "id, {} AS doc, version, created_at, updated_at",
        d.doc_out()
    )
}

/// Reading a user (`$1` its directory, `$2` its id) and, with
/// `with_groups`, its groups, for a write; `locked` adds `FOR UPDATE`
/// (PostgreSQL only). Built once per shape, as every PATCH and PUT runs
/// it.
fn current_user_sql(d: super::Dialect, with_groups: bool, locked: bool) -> &'static str {
    use std::sync::LazyLock;
    fn build(d: super::Dialect, with_groups: bool, lock: &str) -> String {
        format!(
            "SELECT {}, {} FROM users WHERE directory_id = $1 AND id = $2{lock}",
            user_columns(d),
            groups_column(d, with_groups)
        )
    }
    static UNLOCKED: LazyLock<[String; 4]> = LazyLock::new(|| each_shape(|d, g| build(d, g, "")));
    static LOCKED: LazyLock<[String; 4]> =
        LazyLock::new(|| each_shape(|d, g| build(d, g, " FOR UPDATE")));
    let all = if locked { &LOCKED } else { &UNLOCKED };
    one_shape(all, d, with_groups)
}

/// The stored user `$id` of `$directory_id` and, with `$with_groups`, its
/// groups, read on `$c` (`$locked`: `FOR UPDATE`); `NotFound` if there is
/// none. The groups come with the row so that a write's response needs no
/// statement of its own for them.
macro_rules! current_user {
    ($c:expr, $d:expr, $directory_id:expr, $id:expr, $with_groups:expr, $locked:expr) => {{
        let row: Option<UserWithGroups> =
            sqlx::query_as(current_user_sql($d, $with_groups, $locked))
                .bind($directory_id)
                .bind($id)
                .fetch_optional(&mut *$c)
                .await?;
        row.ok_or(StoreError::NotFound)?.split()
    }};
}

/// What a change makes of a stored user: the row to write and what to
/// record about it.
struct UserUpdate {
    user: UserDraft,
    /// The stored version plus one; the update is written only over the
    /// version it was worked out from.
    version: i64,
    now: i64,
    created_at: i64,
    event: Option<Event>,
    /// Identifiers the user no longer has, kept so its history is still
    /// found by them.
    gone: Vec<String>,
    emails_changed: bool,
}

impl UserUpdate {
    /// Applies `change` to `current`, after checking the `If-Match`
    /// version; what it records comes from the directory's rules
    /// ([`user_updated`]). A refusal by `change` is the caller's error `E`.
    fn plan<F, E>(
        audit: &AuditContext,
        directory_id: Uuid,
        current: &UserRow,
        expected_version: Option<i64>,
        change: &F,
    ) -> std::result::Result<UserUpdate, E>
    where
        F: Fn(Map<String, Value>) -> std::result::Result<UserDraft, E>,
        E: From<StoreError>,
    {
        if expected_version.is_some_and(|v| v != current.version) {
            return Err(StoreError::PreconditionFailed.into());
        }
        let before = current.doc_map();
        let old_emails = email_values(&before);
        let kept = audit.enabled.then(|| before.clone());
        let user = change(before)?;
        let (event, gone) = match &kept {
            Some(before) => {
                let stored = (current.id, current.created_at);
                let record = user_updated(audit, directory_id, stored, before, &user);
                (Some(record.event), record.gone)
            }
            None => (None, Vec::new()),
        };
        // Most updates (deactivation, a title) leave emails alone.
        let emails_changed = user.emails != old_emails;
        Ok(UserUpdate {
            user,
            version: current.version + 1,
            now: now_micros(),
            created_at: current.created_at,
            event,
            gone,
            emails_changed,
        })
    }

    /// Whether the UPDATE (with its event) is all there is to write.
    fn is_one_statement(&self) -> bool {
        !self.emails_changed && self.gone.is_empty()
    }

    fn row(&self, id: Uuid) -> UserRow {
        UserRow {
            id,
            doc: self.user.doc.clone(),
            version: self.version,
            created_at: self.created_at,
            updated_at: self.now,
        }
    }

    fn into_row(self, id: Uuid) -> UserRow {
        UserRow {
            id,
            doc: self.user.doc,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.now,
        }
    }
}

/// Updating a user's row (`$1`-`$11`) and, with `with_event`, inserting its
/// event (after `$11`), as one call. The row is written only if its
/// version is still the one before the update (`$8 - 1`), which is what
/// lets a write go without a lock (see `modify_user`); the event is
/// inserted only with the row (on SQLite, a second statement, only if the
/// first changed a row).
fn update_user_sql(d: super::Dialect, with_event: bool) -> &'static str {
    use std::sync::LazyLock;
    fn build(d: super::Dialect, with_event: bool) -> String {
        let update = format!(
            "UPDATE users SET user_name = $1, user_name_ci = $2, external_id = $3, active = $4, \
             primary_email = $5, display_name = $6, doc = {}, version = $8, updated_at = $9 \
             WHERE directory_id = $10 AND id = $11 AND version = $8 - 1",
            d.doc_in(7)
        );
        match (with_event, d) {
            (false, _) => update,
            (true, super::Dialect::Postgres) => with_event_sql(d, &update, 11),
            (true, super::Dialect::Sqlite) => format!(
                "{update}; {} SELECT {} WHERE changes() > 0",
                super::audit::EVENT_INSERT_COLUMNS,
                super::audit::event_params(11)
            ),
        }
    }
    static SQL: LazyLock<[String; 4]> = LazyLock::new(|| each_shape(build));
    one_shape(&SQL, d, with_event)
}

/// Runs an [`UserUpdate`] of user `$id` on `$c`: the rows written, 0 when
/// the row is gone or its version moved on. On PostgreSQL that is 1 or 0
/// (the event is inserted from the updated row); SQLite's statements run
/// one after the other and count the event too (2 or 0).
macro_rules! update_user_row {
    ($c:expr, $d:expr, $directory_id:expr, $id:expr, $update:expr) => {{
        let update: &UserUpdate = $update;
        let q = bind_user!(
            sqlx::query(update_user_sql($d, update.event.is_some())),
            update.user
        )
        .bind(update.version)
        .bind(update.now)
        .bind($directory_id)
        .bind($id);
        let q = match &update.event {
            Some(e) => bind_event!(q, e),
            None => q,
        };
        q.execute(&mut *$c)
            .await
            .on_conflict("userName")?
            .rows_affected()
    }};
}

/// An update of one user waiting for a shared statement. Two updates of
/// one user may share a batch, so each has a key of its own.
#[derive(Clone)]
pub(super) struct PendingUpdate(std::sync::Arc<UpdateRow>);

pub(super) struct UpdateRow {
    key: Uuid,
    directory_id: Uuid,
    id: Uuid,
    update: UserUpdate,
}

impl PartialEq for PendingUpdate {
    fn eq(&self, other: &Self) -> bool {
        self.0.key == other.0.key
    }
}

/// [`update_user_sql`] for `rows` users in one PostgreSQL statement, which
/// evaluates to the positions (from 0) of the updates written. Each row
/// binds the same 11 values in the same order; the events follow, 23
/// values each. Of two updates of one user in a batch, both worked out
/// from the same version, the row is written once, by one of them: the
/// position returned is that of the update used (`RETURNING v.k`), and
/// the other, unwritten, runs again as a lost race.
fn update_users_sql(rows: usize, with_events: bool) -> &'static str {
    use std::sync::LazyLock;
    fn build(rows: usize, with_events: bool) -> String {
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
                super::audit::EVENT_INSERT_COLUMNS,
                cols = super::audit::EVENT_WRITTEN_COLUMNS,
            ));
        }
        sql.push_str(" SELECT k FROM written");
        sql
    }
    static SQL: LazyLock<Vec<[String; 2]>> = LazyLock::new(|| batch_shapes(build));
    &SQL[rows - 1][usize::from(with_events)]
}

/// [`update_user_sql`] for `rows` different users in one SQLite
/// statement, which evaluates to the ids of the users written. (SQLite's
/// `RETURNING` cannot name the `VALUES`, so a batch holds one update per
/// user; events are inserted after it, for the users written: see
/// [`insert_events_sql`].) Each row binds the same 11 values in the same
/// order as on PostgreSQL.
fn update_users_sqlite_sql(rows: usize) -> &'static str {
    use std::sync::LazyLock;
    fn build(rows: usize) -> String {
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
    static SQL: LazyLock<Vec<String>> =
        LazyLock::new(|| (1..=super::coalesce::MOST_PER_BATCH).map(build).collect());
    &SQL[rows - 1]
}

/// Inserting `rows` events (23 values each) in one statement.
fn insert_events_sql(rows: usize) -> &'static str {
    use std::sync::LazyLock;
    fn build(rows: usize) -> String {
        let events = event_rows(rows, 0, false);
        format!("{} VALUES {events}", super::audit::EVENT_INSERT_COLUMNS)
    }
    static SQL: LazyLock<Vec<String>> =
        LazyLock::new(|| (1..=super::coalesce::MOST_PER_BATCH).map(build).collect());
    &SQL[rows - 1]
}

/// Binds an update's 11 values, in the order of the batch statements.
macro_rules! bind_update {
    ($q:expr, $p:expr) => {{
        let p: &PendingUpdate = $p;
        bind_user!($q, p.0.update.user)
            .bind(p.0.update.version)
            .bind(p.0.update.now)
            .bind(p.0.directory_id)
            .bind(p.0.id)
    }};
}

/// Writes `batch` (all with events, or all without) in one call;
/// evaluates to the updates written (see [`update_users_sql`] and
/// [`update_users_sqlite_sql`]).
async fn update_users(
    db: &super::Db,
    with_events: bool,
    batch: Vec<PendingUpdate>,
) -> Result<Vec<PendingUpdate>> {
    fn event_of(p: &PendingUpdate) -> &Event {
        let event = p.0.update.event.as_ref();
        event.expect("batches are grouped by events")
    }
    let written: Vec<usize> = match db {
        // A job of the writer; bound there, so that event times follow the
        // writer's order. Of two updates of one user, the first is tried
        // and the other runs again as a lost race.
        super::Db::Sqlite { writer, .. } => {
            let mut users = std::collections::HashSet::new();
            let firsts: Vec<(usize, PendingUpdate)> = batch
                .iter()
                .cloned()
                .enumerate()
                .filter(|(_, p)| users.insert(p.0.id))
                .collect();
            writer
                .run(move |conn| {
                    Box::pin(async move {
                        let mut q = sqlx::query_scalar(update_users_sqlite_sql(firsts.len()));
                        for (_, p) in &firsts {
                            q = bind_update!(q, p);
                        }
                        let ids: Vec<Uuid> =
                            q.fetch_all(&mut *conn).await.on_conflict("userName")?;
                        let written: Vec<&(usize, PendingUpdate)> = firsts
                            .iter()
                            .filter(|(_, p)| ids.contains(&p.0.id))
                            .collect();
                        if with_events && !written.is_empty() {
                            let mut q = sqlx::query(insert_events_sql(written.len()));
                            for (_, p) in &written {
                                q = bind_event!(q, event_of(p));
                            }
                            q.execute(&mut *conn).await?;
                        }
                        Ok(written.into_iter().map(|(k, _)| *k).collect())
                    })
                })
                .await?
        }
        super::Db::Postgres(pg) => {
            let mut q = sqlx::query_scalar::<_, i32>(update_users_sql(batch.len(), with_events));
            for p in &batch {
                q = bind_update!(q, p);
            }
            if with_events {
                for p in &batch {
                    q = bind_event!(q, event_of(p));
                }
            }
            let written = super::pg_lend!(pg, |c| {
                q.fetch_all(&mut *c).await.on_conflict("userName")?
            });
            written.into_iter().map(|k| k as usize).collect()
        }
    };
    Ok(batch
        .into_iter()
        .enumerate()
        .filter(|(k, _)| written.contains(k))
        .map(|(_, p)| p)
        .collect())
}

/// Writes an [`UserUpdate`] of user `$id` in the transaction `$tx`: the
/// row with its event, then its emails and the identifiers it lost, only
/// if the row was written. Whether it was: not if the row is gone or its
/// version moved on.
macro_rules! write_user_update {
    ($tx:ident, $d:expr, $directory_id:expr, $id:expr, $update:expr, $audit:expr) => {{
        let update: &UserUpdate = $update;
        let written = update_user_row!($tx, $d, $directory_id, $id, update) > 0;
        if written {
            if update.emails_changed {
                store_emails!($tx, $directory_id, $id, &update.user.emails, true);
            }
            record_subjects!($tx, $audit.org_id, ($id, update.created_at), &update.gone);
        }
        written
    }};
}

/// Removing user `$1` of directory `$2` from its groups. Each membership
/// is checked against its own group: `group_id IN (SELECT id FROM groups
/// WHERE directory_id = $2)` made SQLite list every group of the
/// directory first, for every delete (11 ms each with 10,000 groups).
const DELETE_MEMBERSHIPS_SQL: &str = "DELETE FROM group_members WHERE member_id = $1 \
     AND EXISTS (SELECT 1 FROM groups WHERE groups.id = group_members.group_id \
     AND groups.directory_id = $2)";

impl Store {
    pub async fn insert_user(
        &self,
        directory_id: Uuid,
        user: UserDraft,
        audit: &AuditContext,
    ) -> Result<UserRow> {
        let id = Uuid::new_v4();
        let now = now_micros();
        let event = audit
            .enabled
            .then(|| user_created(audit, directory_id, (id, now), &user));
        let doc = user.doc.clone();
        let emails = serde_json::to_string(&user.emails).expect("strings serialise");
        // Creations made at the same time share one call (see
        // `insert_users_sql`).
        let pending = PendingUser(std::sync::Arc::new(NewUserRow {
            id,
            directory_id,
            user,
            now,
            emails,
            event,
        }));
        let created = self
            .batches
            .inserts
            .get_detached(
                pending.0.event.is_some(),
                pending,
                |with_events, batch| {
                    let db = self.db.clone();
                    async move { insert_users(&db, with_events, batch).await }
                },
                PendingUser::clone,
            )
            .await?;
        // Skipped: its userName is taken.
        if created.is_none() {
            return Err(StoreError::Conflict("userName"));
        }
        Ok(UserRow {
            id,
            doc,
            version: 1,
            created_at: now,
            updated_at: now,
        })
    }

    pub async fn get_user(&self, directory_id: Uuid, id: Uuid) -> Result<UserRow> {
        read!(self, |d, c| {
            let sql = format!(
                "SELECT {} FROM users WHERE directory_id = $1 AND id = $2",
                user_columns(d)
            );
            sqlx::query_as(&sql)
                .bind(directory_id)
                .bind(id)
                .fetch_optional(&mut *c)
                .await?
                .ok_or(StoreError::NotFound)
        })
    }

    /// A user and the groups it is a direct member of, in one query (the hot
    /// path of `GET /Users/{id}`), shared with look-ups made at the same time.
    pub async fn get_user_with_groups(
        &self,
        directory_id: Uuid,
        id: Uuid,
    ) -> Result<(UserRow, Vec<UserGroup>)> {
        if let Some(kept) = self.cache.user(directory_id, id) {
            return Ok((kept.user.clone(), kept.groups.clone()));
        }
        let load = self.cache.begin_user(directory_id, id);
        let (user_name_ci, user, groups) = self.read_user_with_groups(directory_id, id).await?;
        if let Some(load) = load {
            let kept = user.clone();
            self.cache
                .fill(load, directory_id, user_name_ci, kept, groups.clone());
        }
        Ok((user, groups))
    }

    /// [`Self::get_user_with_groups`] from the database, never from memory,
    /// with the user's lowercased userName.
    async fn read_user_with_groups(
        &self,
        directory_id: Uuid,
        id: Uuid,
    ) -> Result<(String, UserRow, Vec<UserGroup>)> {
        let found = self
            .batches
            .by_id
            .get(
                directory_id,
                id,
                |directory_id, ids| async move {
                    let keys: Vec<String> = ids.iter().map(|id| id.simple().to_string()).collect();
                    let found = self.users_by_keys(None, true, keys).await?;
                    Ok(found
                        .into_iter()
                        .filter(|n| n.directory_id == directory_id)
                        .collect())
                },
                |found| found.found.user.id,
            )
            .await?;
        let found = found.ok_or(StoreError::NotFound)?;
        let (user, groups) = found.found.split();
        Ok((found.user_name_ci, user, groups))
    }

    /// The user whose lowercased userName is `name_ci`, if any, shared with
    /// look-ups made at the same time.
    async fn user_by_name(
        &self,
        directory_id: Uuid,
        name_ci: &str,
        with_groups: bool,
    ) -> Result<Option<(UserRow, Vec<UserGroup>)>> {
        if let Some(kept) = self.cache.user_named(directory_id, name_ci) {
            let groups = if with_groups {
                kept.groups.clone()
            } else {
                Vec::new()
            };
            return Ok(Some((kept.user.clone(), groups)));
        }
        let load = self.cache.begin();
        let found = self
            .batches
            .by_name
            .get(
                (directory_id, with_groups),
                name_ci.to_owned(),
                |(directory_id, with_groups), names| {
                    self.users_by_keys(Some(directory_id), with_groups, names)
                },
                |found| found.user_name_ci.clone(),
            )
            .await?;
        let Some(found) = found else {
            return Ok(None);
        };
        let user_name_ci = found.user_name_ci;
        let (user, groups) = found.found.split();
        // Read without its groups, it is not what `GET` returns.
        if let (Some(load), true) = (load, with_groups) {
            self.cache.fill(
                load,
                directory_id,
                user_name_ci,
                user.clone(),
                groups.clone(),
            );
        }
        Ok(Some((user, groups)))
    }

    /// Users by id (of any directory), or with `by_name_in` the users of
    /// that directory by lowercased userName (see [`users_by_keys_sql`]).
    async fn users_by_keys(
        &self,
        by_name_in: Option<Uuid>,
        with_groups: bool,
        keys: Vec<String>,
    ) -> Result<Vec<NamedUser>> {
        let keys = serde_json::to_string(&keys).expect("strings serialise");
        Ok(read!(self, |d, c| {
            let q = sqlx::query_as(users_by_keys_sql(d, by_name_in.is_some(), with_groups));
            let q = match by_name_in {
                Some(directory_id) => q.bind(directory_id),
                None => q,
            };
            q.bind(&keys).fetch_all(&mut *c).await?
        }))
    }

    /// One page of users matching `request`, each with its groups unless
    /// `with_groups` is false, and the total count. A first page that is
    /// not full is one query. A bare `userName eq`, the look-up identity
    /// providers make before every create, is no list query at all: it is
    /// answered by a keyed look-up shared with those made at the same time.
    pub async fn list_users(
        &self,
        directory_id: Uuid,
        request: &ListRequest<'_>,
        page: Page,
        with_groups: bool,
    ) -> Result<(i64, Vec<(UserRow, Vec<UserGroup>)>)> {
        debug_assert_eq!(request.resource_type().name, "User");
        let filter =
            &ListQuery::build(self.dialect(), request).map_err(StoreError::ListNotCompiled)?;
        if let Some(name_ci) = filter.user_name_eq() {
            let found = self
                .user_by_name(directory_id, name_ci, with_groups)
                .await?;
            let total = i64::from(found.is_some());
            let first_page = page.start_index <= 1 && page.count > 0;
            return Ok((total, found.filter(|_| first_page).into_iter().collect()));
        }
        let (total, rows) = read!(self, |d, c| {
            fetch_page!(
                self,
                c,
                filter,
                "users",
                format!("{}, {}", user_columns(d), groups_column(d, with_groups)),
                directory_id,
                page,
                UserWithGroups
            )
        });
        Ok((total, rows.into_iter().map(UserWithGroups::split).collect()))
    }

    /// Replaces a user (PUT). `expected_version` is the `If-Match` version.
    pub async fn replace_user(
        &self,
        directory_id: Uuid,
        id: Uuid,
        user: UserDraft,
        expected_version: Option<i64>,
        with_groups: bool,
        audit: &AuditContext,
    ) -> Result<(UserRow, Vec<UserGroup>)> {
        let change = move |_| Ok(user.clone());
        self.modify_user(
            directory_id,
            id,
            expected_version,
            with_groups,
            audit,
            change,
        )
        .await
    }

    /// Read-modify-write of one user, so concurrent writers never lose an
    /// update. `change` gets the current document and returns the user to
    /// store; an error from it writes nothing. The event (deactivated,
    /// reactivated or updated, with the changed attributes) is derived by
    /// comparing the stored and the new document.
    ///
    /// It is first tried without a lock: read the row (with the look-ups
    /// made at the same time), then write it only if its version is still
    /// the one read. Such writes made at the same time share one call (see
    /// [`update_users_sql`], [`update_users_sqlite_sql`]): on PostgreSQL
    /// that saves the round trips of `BEGIN`, `SELECT … FOR UPDATE` and
    /// `COMMIT`, on SQLite the writer's hand-offs and working out the change
    /// on its one task, and on both each statement's own cost, which was
    /// most of a PATCH's. A change that also rewrites emails
    /// or keeps old identifiers writes them in a transaction after the
    /// guarded update. A write that lost a race with another writer runs
    /// again with the row locked: in a transaction on PostgreSQL, on the
    /// single writer's task on SQLite. Hence `change` may be called twice.
    ///
    /// With `with_groups`, the user's groups (as read with the row) come
    /// back too, for the response.
    pub async fn modify_user<F, E>(
        &self,
        directory_id: Uuid,
        id: Uuid,
        expected_version: Option<i64>,
        with_groups: bool,
        audit: &AuditContext,
        change: F,
    ) -> std::result::Result<(UserRow, Vec<UserGroup>), E>
    where
        F: Fn(Map<String, Value>) -> std::result::Result<UserDraft, E> + Send + Sync + 'static,
        E: From<StoreError> + Send + 'static,
    {
        // The row as `GET` reads it, shared with the look-ups and other
        // writes' reads made at the same time. From the database, not from
        // memory: another server's change may not have been heard yet, and
        // `If-Match` must be checked against the stored version.
        let (_, current, groups) = self.read_user_with_groups(directory_id, id).await?;
        let groups = if with_groups { groups } else { Vec::new() };
        let update = UserUpdate::plan(audit, directory_id, &current, expected_version, &change)?;
        if update.is_one_statement() {
            // Shared with the other such writes made at the same time.
            let pending = PendingUpdate(std::sync::Arc::new(UpdateRow {
                key: Uuid::new_v4(),
                directory_id,
                id,
                update,
            }));
            let written = self
                .batches
                .updates
                .get_detached(
                    pending.0.update.event.is_some(),
                    pending.clone(),
                    |with_events, batch| {
                        let db = self.db.clone();
                        let changed = self.cache.clone();
                        async move {
                            let written = update_users(&db, with_events, batch).await?;
                            for p in &written {
                                changed.changed(Change::User(p.0.id));
                            }
                            Ok(written)
                        }
                    },
                    PendingUpdate::clone,
                )
                .await?;
            if written.is_some() {
                return Ok((pending.0.update.row(id), groups));
            }
        } else {
            // More than one statement, in a transaction (on SQLite a job of
            // the writer); nothing is written if the version moved on.
            let audit = audit.clone();
            let changed = self.change_guard(Change::User(id));
            let (row, changed) = write_job!(self, |d, tx| {
                let written = write_user_update!(tx, d, directory_id, id, &update, audit);
                (written.then(|| update.into_row(id)), changed)
            });
            drop(changed);
            if let Some(row) = row {
                return Ok((row, groups));
            }
        }
        let audit = audit.clone();
        let changed = self.change_guard(Change::User(id));
        let (written, changed) = write_job!(self, |d, tx| {
            let locked = d == super::Dialect::Postgres;
            let (current, groups) = current_user!(tx, d, directory_id, id, with_groups, locked);
            // A refusal ends the job before it wrote anything.
            let update =
                match UserUpdate::plan(&audit, directory_id, &current, expected_version, &change) {
                    Ok(update) => update,
                    Err(refused) => return Ok((Err(refused), changed)),
                };
            write_user_update!(tx, d, directory_id, id, &update, audit);
            (Ok((update.into_row(id), groups)), changed)
        });
        drop(changed);
        written
    }

    /// Deletes a user and its memberships.
    pub async fn delete_user(
        &self,
        directory_id: Uuid,
        id: Uuid,
        expected_version: Option<i64>,
        audit: &AuditContext,
    ) -> Result<()> {
        let audit = audit.clone();
        let changed = self.change_guard(Change::User(id));
        let changed = write_job!(self, |_d, tx| {
            type Current = (i64, i64, String, Option<String>, Option<String>);
            let current: Option<Current> = sqlx::query_as(
                "SELECT version, created_at, user_name, primary_email, external_id FROM users \
                     WHERE directory_id = $1 AND id = $2",
            )
            .bind(directory_id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let (version, created_at, user_name, email, external_id) =
                current.ok_or(StoreError::NotFound)?;
            if expected_version.is_some_and(|v| v != version) {
                return Err(StoreError::PreconditionFailed);
            }
            if audit.enabled {
                let emails: Vec<String> =
                    sqlx::query_scalar("SELECT value_ci FROM user_emails WHERE user_id = $1")
                        .bind(id)
                        .fetch_all(&mut *tx)
                        .await?;
                let keys = deleted_user_subjects(id, &user_name, emails, external_id.as_deref());
                record_subjects!(tx, audit.org_id, (id, created_at), &keys);
            }
            sqlx::query(DELETE_MEMBERSHIPS_SQL)
                .bind(id)
                .bind(directory_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM users WHERE directory_id = $1 AND id = $2")
                .bind(directory_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            super::bump_list_epoch!(tx, directory_id);
            if audit.enabled {
                let event = events::user_event(
                    &audit,
                    directory_id,
                    Action::UserDeleted,
                    (id, created_at),
                    &user_name,
                    email.as_deref(),
                    external_id.as_deref(),
                );
                insert_event!(tx, &event);
            }
            changed
        });
        drop(changed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ConnectOptions, Dialect};

    /// A batch of creations or of updates numbers its parameters without
    /// a gap: 11 per user, then 23 per event. (SQLite's creation, three
    /// statements, names a user's id and directory again in its emails.)
    #[test]
    fn a_batch_of_writes_binds_every_value() {
        let insert_on = |d| move |rows, with_events| insert_users_sql(d, rows, with_events);
        let shapes: [Box<dyn Fn(usize, bool) -> &'static str>; 4] = [
            Box::new(insert_on(Dialect::Postgres)),
            Box::new(insert_on(Dialect::Sqlite)),
            Box::new(update_users_sql),
            // SQLite's updates, then their events in a statement of their
            // own: each numbered from `$1`.
            Box::new(|rows, with_events| match with_events {
                false => update_users_sqlite_sql(rows),
                true => insert_events_sql(rows),
            }),
        ];
        for rows in [1, 2, 7, crate::store::coalesce::MOST_PER_BATCH] {
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
                    let per_row = match (with_events, sql.starts_with("INSERT INTO audit_events")) {
                        (_, true) => 23,
                        (true, false) => 11 + 23,
                        (false, false) => 11,
                    };
                    assert_eq!(params, (1..=rows * per_row).collect::<Vec<_>>(), "{sql}");
                }
            }
        }
    }

    /// Two updates of one user worked out from the same version may meet in
    /// one batch. Exactly one is written and reported so; the other is
    /// told it lost, to run again. (SQLite's statement can name a user only
    /// once: it would write one of the two rows and report neither apart.)
    #[tokio::test]
    async fn two_updates_of_one_user_in_one_batch_write_it_once() -> Result<()> {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("batch.db").display());
        let store = Store::connect(&url, &ConnectOptions::default()).await?;
        store.migrate().await?;
        let audit = AuditContext::system("test");
        let org = store.ensure_default_org().await?.id;
        let directory = store.create_directory(org, "d", "k", "h", &audit).await?.id;
        let audit = audit.in_org(org);
        let doc = serde_json::json!({ "userName": "ada@example.com" });
        let doc = doc.as_object().unwrap();
        let current = store
            .insert_user(directory, UserDraft::from_doc(doc).unwrap(), &audit)
            .await?;
        let titled = |title: &'static str| -> Result<PendingUpdate> {
            let change = move |mut doc: Map<String, Value>| {
                doc.insert("title".into(), title.into());
                Ok::<_, StoreError>(UserDraft::from_doc(&doc).unwrap())
            };
            let update = UserUpdate::plan(&audit, directory, &current, None, &change)?;
            Ok(PendingUpdate(std::sync::Arc::new(UpdateRow {
                key: Uuid::new_v4(),
                directory_id: directory,
                id: current.id,
                update,
            })))
        };
        let batch = vec![titled("first")?, titled("second")?];
        let written = update_users(&store.db, true, batch).await?;
        assert_eq!(written.len(), 1);
        let stored = store.get_user(directory, current.id).await?;
        assert_eq!(stored.version, 2);
        assert_eq!(stored.doc, written[0].0.update.user.doc);
        store.close().await;
        Ok(())
    }

    /// The batched look-ups and updates, and a delete's removal from its
    /// groups, search indexes on SQLite: a scan would make every
    /// `GET /Users/{id}` or PATCH read the whole table, and listing the
    /// directory's groups made every delete read all of them. (On PostgreSQL the
    /// generic plan is what shaped the statement; see `users_by_keys_sql`.)
    #[tokio::test]
    async fn sqlite_look_ups_search_indexes() -> Result<()> {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("plan.db").display());
        let store = Store::connect(&url, &ConnectOptions::default()).await?;
        store.migrate().await?;
        let statements = [(false, true), (true, true), (true, false)]
            .map(|(by_name, with_groups)| users_by_keys_sql(Dialect::Sqlite, by_name, with_groups))
            .into_iter()
            .chain([update_users_sqlite_sql(3)]);
        for statement in statements.chain([DELETE_MEMBERSHIPS_SQL]) {
            let sql = format!("EXPLAIN QUERY PLAN {statement}");
            let plan: Vec<String> = read!(store, |_d, c| {
                use sqlx::Row;
                sqlx::query(&sql)
                    .fetch_all(&mut *c)
                    .await?
                    .iter()
                    .map(|row| row.get::<String, _>("detail"))
                    .collect()
            });
            // Each table is searched by its index (groups by id: a user is in
            // few of its directory's groups), never scanned or listed.
            let (table, search) = match statement.starts_with("DELETE") {
                false => (" users ", "SEARCH users USING"),
                true => (
                    " groups ",
                    "SEARCH groups USING INDEX sqlite_autoindex_groups_1 (id=?)",
                ),
            };
            let found: Vec<&String> = plan.iter().filter(|d| d.contains(table)).collect();
            assert!(
                !found.is_empty() && found.iter().all(|d| d.starts_with(search)),
                "{statement}: {plan:?}"
            );
            let lists_groups = plan.iter().any(|d| d.contains("groups_directory"));
            assert!(!lists_groups, "{statement}: {plan:?}");
        }
        store.close().await;
        Ok(())
    }
}
