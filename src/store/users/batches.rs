//! Users' writes and look-ups made at the same time, answered by shared
//! statements (see [`crate::store::accel::coalesce`]): creations, and
//! PATCH and PUT that are one statement.

use std::collections::HashMap;

use uuid::Uuid;

use super::{update_args, user_args, NamedUser, UserUpdate};
use crate::audit::Event;
use crate::directory::UserDraft;
use crate::store::accel::coalesce::Coalescer;
use crate::store::audit::event_args;
use crate::store::conn::{Arg, Conn};
use crate::store::sql::audit::EVENT_VALUES;
use crate::store::sql::users::{
    INSERT_EVENTS, INSERT_USERS, INSERT_VALUES, SQLITE_INSERT_PICKS, UPDATE_USERS_POSTGRES,
    UPDATE_USERS_SQLITE,
};
use crate::store::{Db, Dialect, OnConflict, Result};

/// Single-user statements made at the same time, answered by shared
/// statements (see [`crate::store::accel::coalesce`]).
pub(crate) struct UserBatches {
    /// `GET /Users/{id}`, grouped by directory.
    pub(super) by_id: Coalescer<Uuid, Uuid, NamedUser>,
    /// `userName eq`, grouped by directory and whether groups are wanted,
    /// keyed by the lowercased userName.
    pub(super) by_name: Coalescer<(Uuid, bool), String, NamedUser>,
    /// `POST /Users`, grouped by whether events are written.
    pub(super) inserts: Coalescer<bool, PendingUser, CreatedUser>,
    /// PATCH and PUT that are one statement (see
    /// [`UserUpdate::is_one_statement`]), grouped by whether events are
    /// written.
    pub(super) updates: Coalescer<bool, PendingUpdate, PendingUpdate>,
}

impl UserBatches {
    /// At most `leaders` statements of each kind at once.
    pub(crate) fn new(leaders: usize) -> Self {
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
pub(super) struct PendingUser(pub(super) std::sync::Arc<NewUserRow>);

pub(super) struct NewUserRow {
    pub(super) id: Uuid,
    pub(super) directory_id: Uuid,
    pub(super) org_id: Uuid,
    /// The new account's id its document names ([`UserDraft::account_id`]).
    pub(super) account_id: Uuid,
    /// That id as the document writes it.
    pub(super) account_text: String,
    pub(super) email_domain: Option<String>,
    pub(super) user: UserDraft,
    pub(super) now: i64,
    /// `user.emails` as a JSON array.
    pub(super) emails: String,
    pub(super) event: Option<Event>,
}

impl PartialEq for PendingUser {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}

/// Creates `batch` (all with events, or all without) on `c`: the ids of
/// the users created, each with the account it is linked to (see
/// [`INSERT_USERS`]).
async fn insert_users_on<C: Conn>(
    c: &mut C,
    with_events: bool,
    batch: &[PendingUser],
) -> Result<Vec<(Uuid, Uuid)>> {
    // Users of the batch with one email share one new account id: the
    // statement makes one account of them.
    let mut shared: HashMap<(Uuid, &str), Uuid> = HashMap::new();
    let values: Vec<[Arg; INSERT_VALUES]> = batch
        .iter()
        .map(|p| {
            let u = &p.0;
            let account = match u.user.primary_email.as_deref() {
                Some(email) => *shared.entry((u.org_id, email)).or_insert(u.account_id),
                None => u.account_id,
            };
            let [a, b, c, d, e, f, g] = user_args(&u.user);
            [
                u.id.into(),
                u.directory_id.into(),
                a,
                b,
                c,
                d,
                e,
                f,
                g,
                u.now.into(),
                (&u.emails).into(),
                u.org_id.into(),
                account.into(),
                u.account_text.as_str().into(),
                u.email_domain.as_deref().into(),
            ]
        })
        .collect();
    let mut args = Vec::with_capacity(batch.len() * (INSERT_VALUES * 2 + EVENT_VALUES));
    match C::DIALECT {
        Dialect::Postgres => args.extend(values.iter().flatten().cloned()),
        // Each statement's values in turn (see `SQLITE_INSERT_PICKS`).
        Dialect::Sqlite => {
            for pick in SQLITE_INSERT_PICKS {
                for user in &values {
                    args.extend(pick.iter().map(|&k| user[k].clone()));
                }
            }
        }
    }
    if with_events {
        // Batches are grouped by whether they write events, so each has
        // one (were one missing, the statement would fail for want of its
        // values).
        for event in batch.iter().filter_map(|p| p.0.event.as_ref()) {
            args.extend(event_args(event));
        }
    }
    let sql = INSERT_USERS.of(C::DIALECT).get(batch.len(), with_events);
    let created: Vec<(Uuid, Uuid)> = c.fetch_all(sql, &args).await.on_conflict("userName")?;
    join_default_groups(c, batch, &created).await?;
    Ok(created)
}

/// New accounts join their products' default groups (where a product's
/// `newUsersGetAccess` is on). An account is new when its id is one this
/// batch made up: an account found by email keeps its own id. On SQLite
/// this is inside the writer's transaction; on PostgreSQL it follows the
/// creation's statement on the same connection, and is idempotent.
async fn join_default_groups<C: Conn>(
    c: &mut C,
    batch: &[PendingUser],
    created: &[(Uuid, Uuid)],
) -> Result<()> {
    let mut new_accounts: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for (_, account) in created {
        if let Some(p) = batch.iter().find(|p| p.0.account_id == *account) {
            let accounts = new_accounts.entry(p.0.org_id).or_default();
            if !accounts.contains(account) {
                accounts.push(*account);
            }
        }
    }
    for (org_id, accounts) in new_accounts {
        crate::store::org_groups::join_default_groups(c, org_id, &accounts).await?;
    }
    Ok(())
}

/// Creates `batch` (all with events, or all without) in one call;
/// evaluates to those created, each with the account it is linked to (see
/// [`INSERT_USERS`]).
pub(super) async fn insert_users(
    db: &Db,
    with_events: bool,
    batch: Vec<PendingUser>,
) -> Result<Vec<CreatedUser>> {
    let created: Vec<(Uuid, Uuid)> = match db {
        // A job of the writer, committed with its other jobs; bound there,
        // so that event times follow the writer's order.
        Db::Sqlite { writer, .. } => {
            let batch = batch.clone();
            writer
                .run(move |conn| {
                    Box::pin(async move { insert_users_on(conn, with_events, &batch).await })
                })
                .await?
        }
        // A transaction of its own: no BEGIN and COMMIT round trips, and
        // one commit for the whole batch.
        Db::Postgres(pg) => {
            crate::store::pg_lend!(pg, |c| insert_users_on(c, with_events, &batch).await?)
        }
    };
    Ok(batch
        .into_iter()
        .filter_map(|p| {
            let (_, account) = created.iter().find(|(id, _)| *id == p.0.id)?;
            Some(CreatedUser(p, *account))
        })
        .collect())
}

/// A user created, with the account it was linked to.
#[derive(Clone)]
pub(super) struct CreatedUser(pub(super) PendingUser, pub(super) Uuid);

/// An update of one user waiting for a shared statement. Two updates of
/// one user may share a batch, so each has a key of its own.
#[derive(Clone)]
pub(super) struct PendingUpdate(pub(super) std::sync::Arc<UpdateRow>);

pub(super) struct UpdateRow {
    pub(super) key: Uuid,
    pub(super) directory_id: Uuid,
    pub(super) id: Uuid,
    pub(super) update: UserUpdate,
}

impl PartialEq for PendingUpdate {
    fn eq(&self, other: &Self) -> bool {
        self.0.key == other.0.key
    }
}

/// Writes `batch` (all with events, or all without) in one call;
/// evaluates to the updates written (see [`UPDATE_USERS_POSTGRES`] and
/// [`UPDATE_USERS_SQLITE`]).
pub(super) async fn update_users(
    db: &Db,
    with_events: bool,
    batch: Vec<PendingUpdate>,
) -> Result<Vec<PendingUpdate>> {
    let written: Vec<usize> = match db {
        // A job of the writer; bound there, so that event times follow the
        // writer's order. Of two updates of one user, the first is tried
        // and the other runs again as a lost race.
        Db::Sqlite { writer, .. } => {
            let mut users = std::collections::HashSet::new();
            let firsts: Vec<(usize, PendingUpdate)> = batch
                .iter()
                .cloned()
                .enumerate()
                .filter(|(_, p)| users.insert(p.0.id))
                .collect();
            writer
                .run(move |conn| {
                    Box::pin(async move { update_users_sqlite(conn, with_events, &firsts).await })
                })
                .await?
        }
        Db::Postgres(pg) => {
            crate::store::pg_lend!(pg, |c| update_users_postgres(c, with_events, &batch)
                .await?)
        }
    };
    Ok(batch
        .into_iter()
        .enumerate()
        .filter(|(k, _)| written.contains(k))
        .map(|(_, p)| p)
        .collect())
}

fn pending_args(p: &PendingUpdate) -> Vec<Arg<'_>> {
    update_args(&p.0.update, p.0.directory_id, p.0.id)
}

/// The events of a batch, grouped by whether they write events, so each
/// update of it has one (were one missing, the statement would fail for
/// want of its values).
fn events_of<'a>(batch: impl Iterator<Item = &'a PendingUpdate>) -> Vec<Arg<'a>> {
    batch
        .filter_map(|p| p.0.update.event.as_ref())
        .flat_map(event_args)
        .collect()
}

/// SQLite's batch: one update per user (`firsts`, each with its position
/// in the batch), then the events of those written; the positions written.
async fn update_users_sqlite(
    conn: &mut sqlx::SqliteConnection,
    with_events: bool,
    firsts: &[(usize, PendingUpdate)],
) -> Result<Vec<usize>> {
    let args: Vec<Arg> = firsts.iter().flat_map(|(_, p)| pending_args(p)).collect();
    let sql = UPDATE_USERS_SQLITE.rows(firsts.len());
    let ids: Vec<(Uuid,)> = conn.fetch_all(sql, &args).await.on_conflict("userName")?;
    let written: Vec<&(usize, PendingUpdate)> = firsts
        .iter()
        .filter(|(_, p)| ids.contains(&(p.0.id,)))
        .collect();
    if with_events && !written.is_empty() {
        let args = events_of(written.iter().map(|(_, p)| p));
        conn.execute(INSERT_EVENTS.rows(written.len()), &args)
            .await?;
    }
    Ok(written.into_iter().map(|(k, _)| *k).collect())
}

/// PostgreSQL's batch, one statement: the positions written.
async fn update_users_postgres(
    conn: &mut sqlx::PgConnection,
    with_events: bool,
    batch: &[PendingUpdate],
) -> Result<Vec<usize>> {
    let mut args: Vec<Arg> = batch.iter().flat_map(pending_args).collect();
    if with_events {
        args.extend(events_of(batch.iter()));
    }
    let sql = UPDATE_USERS_POSTGRES.get(batch.len(), with_events);
    let written: Vec<(i32,)> = conn.fetch_all(sql, &args).await.on_conflict("userName")?;
    Ok(written.into_iter().map(|(k,)| k as usize).collect())
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value};

    use super::*;
    use crate::audit::AuditContext;
    use crate::store::{ConnectOptions, Store, StoreError};

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
}
