//! Users: the SCIM document plus the hot attributes as indexed columns.

use serde_json::{Map, Value};
use uuid::Uuid;

use super::accel::paging::{fetch_keyset, fetch_keyset_rows, fetch_page};
use super::accounts;
use super::audit::{event_args, insert_event, record_subjects};
use super::conn::{Arg, Conn, SqlBuilder};
use super::filter_sql::{Keyset, ListKey, ListQuery, Page};
use super::sql::audit::EVENT_VALUES;
use super::sql::users::{
    groups_column, user_columns, CURRENT_USER, DELETE_MEMBERSHIPS_SQL, UPDATE_USER, USER_LOOKUPS,
};
use super::user_cache::Change;
use super::{read, write_job, OnConflict, Result, Store, StoreError};
use crate::audit::{Action, AuditContext, Event};
use crate::directory::account::{email_domain, linked_account};
use crate::directory::events::{self, deleted_user_subjects, user_created, user_updated};
use crate::directory::user::email_values;
use crate::directory::UserDraft;
use crate::scim::list::ListRequest;
use crate::time::now_micros;

/// The refusal of a user whose externalId another user of its directory
/// holds.
fn external_id_taken(external_id: &str, holder: Uuid) -> StoreError {
    StoreError::Taken(format!(
        "externalId '{external_id}' is already used by user {holder}"
    ))
}

/// A stored user.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct UserRow {
    pub id: Uuid,
    pub doc: String,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A deleted user as it was: its account and the groups it left.
#[derive(Clone, Debug)]
pub struct DeletedUser {
    pub account_id: Option<Uuid>,
    pub groups: Vec<Uuid>,
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

mod batches;

pub(super) use batches::UserBatches;
use batches::{
    insert_users, update_users, CreatedUser, NewUserRow, PendingUpdate, PendingUser, UpdateRow,
};

/// A user found by its lowercased userName.
#[derive(Clone, sqlx::FromRow)]
pub(super) struct NamedUser {
    #[sqlx(flatten)]
    found: UserWithGroups,
    user_name_ci: String,
    directory_id: Uuid,
}

/// A group a user belongs to (for the user's read-only `groups`).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct UserGroup {
    pub member_id: Uuid,
    pub group_id: Uuid,
    pub display_name: String,
}

/// A user's stored columns, in the order both INSERT and UPDATE name
/// them: `user_name`, `user_name_ci`, `external_id`, `active`,
/// `primary_email`, `display_name`, `doc`.
fn user_args(user: &UserDraft) -> [Arg<'_>; 7] {
    [
        (&user.user_name).into(),
        user.user_name.to_lowercase().into(),
        user.external_id.as_deref().into(),
        user.active.into(),
        user.primary_email.as_deref().into(),
        user.display_name.as_deref().into(),
        (&user.doc).into(),
    ]
}

/// Writes a user's rows in `user_emails` inside the caller's transaction,
/// replacing those it had with `replace`.
async fn store_emails<C: Conn>(
    c: &mut C,
    directory_id: Uuid,
    user_id: Uuid,
    emails: &[String],
    replace: bool,
) -> Result<()> {
    if replace {
        let sql = "DELETE FROM user_emails WHERE user_id = $1";
        c.execute(sql, &[user_id.into()]).await?;
    }
    if !emails.is_empty() {
        let mut q = SqlBuilder::new(
            C::DIALECT,
            "INSERT INTO user_emails (user_id, directory_id, value_ci) ",
        );
        q.push_values(emails, |email| {
            vec![user_id.into(), directory_id.into(), email.as_str().into()]
        });
        c.execute(q.sql(), q.args()).await?;
    }
    Ok(())
}

/// The stored user `id` of `directory_id` and, with `with_groups`, its
/// groups (`locked`: `FOR UPDATE`); `NotFound` if there is none. The
/// groups come with the row so that a write's response needs no statement
/// of its own for them.
async fn current_user<C: Conn>(
    c: &mut C,
    directory_id: Uuid,
    id: Uuid,
    with_groups: bool,
    locked: bool,
) -> Result<(UserRow, Vec<UserGroup>)> {
    let sql = CURRENT_USER.of(C::DIALECT).get(with_groups, locked);
    let row: Option<UserWithGroups> = c
        .fetch_optional(sql, &[directory_id.into(), id.into()])
        .await?;
    Ok(row.ok_or(StoreError::NotFound)?.split())
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
    /// What the change does to the user's account, if anything.
    account: AccountChange,
}

/// What an update of a linked user asks of its account and its identity.
#[derive(Default)]
struct AccountChange {
    /// `active` changed: the account follows its links.
    active: bool,
    /// The primary email changed: the account may follow it.
    email: bool,
    /// The externalId changed: it must not be another user's.
    external_id: bool,
}

impl AccountChange {
    fn any(&self) -> bool {
        self.active || self.email || self.external_id
    }
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
        let old = UserDraft::columns_of(&before);
        let link = linked_account(&before);
        let kept = audit.enabled.then(|| before.clone());
        // The account link is the store's, whatever the change did to it.
        let user = change(before)?.with_link(link);
        let account = AccountChange {
            active: link.is_some() && user.active != old.active,
            email: link.is_some()
                && user.primary_email.is_some()
                && user.primary_email != old.primary_email,
            external_id: user.external_id.is_some() && user.external_id != old.external_id,
        };
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
            account,
        })
    }

    /// Whether the UPDATE (with its event) is all there is to write.
    fn is_one_statement(&self) -> bool {
        !self.emails_changed && self.gone.is_empty() && !self.account.any()
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

/// Runs an [`UserUpdate`] of user `id` on `c`: the rows written, 0 when
/// the row is gone or its version moved on. On PostgreSQL that is 1 or 0
/// (the event is inserted from the updated row); SQLite's statements run
/// one after the other and count the event too (2 or 0).
async fn update_user_row<C: Conn>(
    c: &mut C,
    directory_id: Uuid,
    id: Uuid,
    update: &UserUpdate,
) -> Result<u64> {
    let mut args = Vec::with_capacity(11 + EVENT_VALUES);
    args.extend(update_args(update, directory_id, id));
    if let Some(event) = &update.event {
        args.extend(event_args(event));
    }
    let sql = UPDATE_USER.of(C::DIALECT).get(update.event.is_some());
    c.execute(sql, &args).await.on_conflict("userName")
}

/// An update's 11 values, in the order of its statements, single or
/// batched.
fn update_args(update: &UserUpdate, directory_id: Uuid, id: Uuid) -> Vec<Arg<'_>> {
    let mut args = Vec::with_capacity(11);
    args.extend(user_args(&update.user));
    args.extend([
        update.version.into(),
        update.now.into(),
        directory_id.into(),
        id.into(),
    ]);
    args
}

/// Writes an [`UserUpdate`] of user `id` in the caller's transaction:
/// the row with its event, then its emails and the identifiers it lost,
/// only if the row was written. Whether it was: not if the row is gone or
/// its version moved on.
async fn write_user_update<C: Conn>(
    c: &mut C,
    directory_id: Uuid,
    id: Uuid,
    update: &UserUpdate,
    audit: &AuditContext,
) -> Result<bool> {
    let org_id = audit.org_id;
    if update.account.external_id {
        if let Some(external_id) = &update.user.external_id {
            let sql = "SELECT id FROM users WHERE directory_id = $1 AND external_id = $2 \
                       AND id <> $3";
            let args = [directory_id.into(), external_id.as_str().into(), id.into()];
            if let Some((holder,)) = c.fetch_optional::<(Uuid,)>(sql, &args).await? {
                return Err(external_id_taken(external_id, holder));
            }
        }
    }
    let written = update_user_row(c, directory_id, id, update).await? > 0;
    if written {
        if update.emails_changed {
            store_emails(c, directory_id, id, &update.user.emails, true).await?;
        }
        record_subjects(c, org_id, (id, update.created_at), &update.gone).await?;
        if let Some(account_id) = update.user.account_id {
            if update.account.active {
                accounts::follow_links_active(c, account_id, update.now).await?;
            }
            if let (true, Some(email)) = (update.account.email, &update.user.primary_email) {
                let link = (account_id, directory_id, id);
                accounts::follow_user_email(c, audit, link, email, update.now).await?;
            }
        }
    }
    Ok(written)
}

impl Store {
    /// Creates a user linked to its org's account with its email, or to a
    /// new account (the id its document names); see `INSERT_USERS`.
    pub async fn insert_user(
        &self,
        directory_id: Uuid,
        user: UserDraft,
        audit: &AuditContext,
    ) -> Result<UserRow> {
        let id = Uuid::new_v4();
        let now = now_micros();
        // Every user is linked: one that names no account yet gets a new id.
        let user = match user.account_id {
            Some(_) => user,
            None => user.with_link(Some(Uuid::new_v4())),
        };
        let account_id = user.account_id.unwrap_or_default();
        let event = audit
            .enabled
            .then(|| user_created(audit, directory_id, (id, now), &user));
        let doc = user.doc.clone();
        let external_id = user.external_id.clone();
        let user_name_ci = user.user_name.to_lowercase();
        let emails = Value::from(user.emails.as_slice()).to_string();
        let email_domain = user
            .primary_email
            .as_deref()
            .and_then(email_domain)
            .map(str::to_owned);
        // Creations made at the same time share one call (see
        // `INSERT_USERS`).
        let pending = PendingUser(std::sync::Arc::new(NewUserRow {
            id,
            directory_id,
            org_id: audit.org_id,
            account_id,
            account_text: account_id.to_string(),
            email_domain,
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
                |created| created.0.clone(),
            )
            .await?;
        // Skipped: its userName or its externalId is taken.
        let Some(CreatedUser(_, linked)) = created else {
            return Err(self
                .creation_conflict(directory_id, &user_name_ci, external_id)
                .await);
        };
        let doc = match linked == account_id {
            true => doc,
            false => doc.replace(&account_id.to_string(), &linked.to_string()),
        };
        Ok(UserRow {
            id,
            doc,
            version: 1,
            created_at: now,
            updated_at: now,
        })
    }

    /// Why a creation was skipped: its externalId names a user of the
    /// directory (said with that user's id: an identity provider that
    /// re-keyed a user learns which record holds it), or its userName is
    /// taken.
    async fn creation_conflict(
        &self,
        directory_id: Uuid,
        user_name_ci: &str,
        external_id: Option<String>,
    ) -> StoreError {
        let Some(external_id) = external_id else {
            return StoreError::Conflict("userName");
        };
        let holder = self
            .external_id_holder(directory_id, &external_id, user_name_ci)
            .await;
        match holder {
            Ok(Some(holder)) => external_id_taken(&external_id, holder),
            Ok(None) => StoreError::Conflict("userName"),
            Err(e) => e,
        }
    }

    /// The user of `directory_id` other than the one named `user_name_ci`
    /// whose externalId is `external_id`.
    async fn external_id_holder(
        &self,
        directory_id: Uuid,
        external_id: &str,
        user_name_ci: &str,
    ) -> Result<Option<Uuid>> {
        Ok(read!(self, |_d, c| {
            sqlx::query_scalar(
                "SELECT id FROM users WHERE directory_id = $1 AND external_id = $2 \
                 AND user_name_ci <> $3",
            )
            .bind(directory_id)
            .bind(external_id)
            .bind(user_name_ci)
            .fetch_optional(&mut *c)
            .await?
        }))
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
            self.metrics.user_cache_hits.inc();
            return Ok((kept.user.clone(), kept.groups.clone()));
        }
        self.count_cache_miss();
        let load = self.cache.begin_user(directory_id, id);
        let (user_name_ci, user, groups) = self.read_user_with_groups(directory_id, id).await?;
        if let Some(load) = load {
            let kept = user.clone();
            self.cache
                .fill(load, directory_id, user_name_ci, kept, groups.clone());
        }
        Ok((user, groups))
    }

    /// A look-up that memory did not answer, when users are kept at all.
    fn count_cache_miss(&self) {
        if self.cache.is_enabled() {
            self.metrics.user_cache_misses.inc();
        }
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
            self.metrics.user_cache_hits.inc();
            let groups = if with_groups {
                kept.groups.clone()
            } else {
                Vec::new()
            };
            return Ok(Some((kept.user.clone(), groups)));
        }
        self.count_cache_miss();
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
    /// that directory by lowercased userName (see [`USER_LOOKUPS`]).
    async fn users_by_keys(
        &self,
        by_name_in: Option<Uuid>,
        with_groups: bool,
        keys: Vec<String>,
    ) -> Result<Vec<NamedUser>> {
        let keys = Value::from(keys).to_string();
        Ok(read!(self, |d, c| {
            let q = sqlx::query_as(USER_LOOKUPS.of(d).get(by_name_in.is_some(), with_groups));
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
        let filter = &ListQuery::build(self.dialect(), request);
        if let Some(name_ci) = filter.user_name_eq() {
            let found = self
                .user_by_name(directory_id, name_ci, with_groups)
                .await?;
            let total = i64::from(found.is_some());
            let first_page = page.start_index <= 1 && page.count > 0;
            return Ok((total, found.filter(|_| first_page).into_iter().collect()));
        }
        let (total, rows) = read!(self, |d, c| {
            let columns = format!("{}, {}", user_columns(d), groups_column(d, with_groups));
            let cursors = &self.cursors;
            fetch_page::<_, UserWithGroups>(
                c,
                cursors,
                filter,
                "users",
                &columns,
                directory_id,
                page,
            )
            .await?
        });
        Ok((total, rows.into_iter().map(UserWithGroups::split).collect()))
    }

    /// Up to `count` users matching `request` after, or before, the key
    /// of `keyset` (creation time, id), in the default order, each with
    /// its groups unless `with_groups` is false; whether more follow in
    /// that direction; the total count. A cursor page (RFC 9865): an index
    /// seek, wherever it starts.
    pub async fn list_users_keyset(
        &self,
        directory_id: Uuid,
        request: &ListRequest<'_>,
        keyset: Keyset,
        count: i64,
        with_groups: bool,
    ) -> Result<(i64, Vec<(UserRow, Vec<UserGroup>)>, bool)> {
        debug_assert_eq!(request.resource_type().name, "User");
        let filter = &ListQuery::build(self.dialect(), request);
        let (total, rows, more) = read!(self, |d, c| {
            let columns = format!("{}, {}", user_columns(d), groups_column(d, with_groups));
            fetch_keyset::<_, UserWithGroups>(
                c,
                &self.cursors,
                filter,
                "users",
                &columns,
                directory_id,
                keyset,
                count,
            )
            .await?
        });
        let rows = rows.into_iter().map(UserWithGroups::split).collect();
        Ok((total, rows, more))
    }

    /// [`Self::list_users_keyset`] without the total or the groups, for
    /// the console: browsing a page never counts the directory.
    pub async fn browse_users(
        &self,
        directory_id: Uuid,
        request: &ListRequest<'_>,
        keyset: Keyset,
        count: i64,
    ) -> Result<(Vec<UserRow>, bool)> {
        debug_assert_eq!(request.resource_type().name, "User");
        let filter = &ListQuery::build(self.dialect(), request);
        let (rows, more) = read!(self, |d, c| {
            let columns = format!("{}, {}", user_columns(d), groups_column(d, false));
            fetch_keyset_rows::<_, UserWithGroups>(
                c,
                filter,
                "users",
                &columns,
                directory_id,
                keyset,
                count,
            )
            .await?
        });
        Ok((
            rows.into_iter()
                .map(|r| UserWithGroups::split(r).0)
                .collect(),
            more,
        ))
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
    /// `UPDATE_USERS_POSTGRES`, `UPDATE_USERS_SQLITE`): on PostgreSQL
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
            let (row, changed) = write_job!(self, |_d, tx| {
                let written =
                    write_user_update(&mut *tx, directory_id, id, &update, &audit).await?;
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
            let (current, groups) =
                current_user(&mut *tx, directory_id, id, with_groups, locked).await?;
            // A refusal ends the job before it wrote anything.
            let update =
                match UserUpdate::plan(&audit, directory_id, &current, expected_version, &change) {
                    Ok(update) => update,
                    Err(refused) => return Ok((Err(refused), changed)),
                };
            write_user_update(&mut *tx, directory_id, id, &update, &audit).await?;
            (Ok((update.into_row(id), groups)), changed)
        });
        drop(changed);
        written
    }

    /// Deletes a user and its memberships; returns what the sync engine
    /// must know of it.
    pub async fn delete_user(
        &self,
        directory_id: Uuid,
        id: Uuid,
        expected_version: Option<i64>,
        audit: &AuditContext,
    ) -> Result<DeletedUser> {
        let audit = audit.clone();
        let changed = self.change_guard(Change::User(id));
        let (changed, deleted) = write_job!(self, |_d, tx| {
            type Current = (
                i64,
                i64,
                String,
                Option<String>,
                Option<String>,
                Option<Uuid>,
            );
            let current: Option<Current> = sqlx::query_as(
                "SELECT version, created_at, user_name, primary_email, external_id, account_id \
                     FROM users WHERE directory_id = $1 AND id = $2",
            )
            .bind(directory_id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let (version, created_at, user_name, email, external_id, account_id) =
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
                record_subjects(&mut *tx, audit.org_id, (id, created_at), &keys).await?;
            }
            let groups: Vec<Uuid> = sqlx::query_scalar(
                "SELECT gm.group_id FROM group_members gm JOIN groups g ON g.id = gm.group_id \
                 WHERE gm.member_id = $1 AND g.directory_id = $2",
            )
            .bind(id)
            .bind(directory_id)
            .fetch_all(&mut *tx)
            .await?;
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
            super::bump_list_epoch(&mut *tx, directory_id).await?;
            if let Some(account_id) = account_id {
                accounts::after_user_deleted(&mut *tx, audit.org_id, account_id, now_micros())
                    .await?;
            }
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
                insert_event(&mut *tx, &event).await?;
            }
            (changed, DeletedUser { account_id, groups })
        });
        drop(changed);
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sql::users::UPDATE_USERS_SQLITE;
    use crate::store::{ConnectOptions, Dialect};

    /// The batched look-ups and updates, and a delete's removal from its
    /// groups, search indexes on SQLite: a scan would make every
    /// `GET /Users/{id}` or PATCH read the whole table, and listing the
    /// directory's groups made every delete read all of them. (On PostgreSQL the
    /// generic plan is what shaped the statement; see `USER_LOOKUPS`.)
    #[tokio::test]
    async fn sqlite_look_ups_search_indexes() -> Result<()> {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("plan.db").display());
        let store = Store::connect(&url, &ConnectOptions::default()).await?;
        store.migrate().await?;
        let statements = [(false, true), (true, true), (true, false)]
            .map(|(by_name, with_groups)| {
                USER_LOOKUPS.of(Dialect::Sqlite).get(by_name, with_groups)
            })
            .into_iter()
            .chain([UPDATE_USERS_SQLITE.rows(3)]);
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
