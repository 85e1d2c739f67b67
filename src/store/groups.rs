//! Groups and their members. Membership changes are set-based: adding or
//! removing thousands of members is a few statements, not one per member.

use std::collections::HashSet;

use serde_json::{Map, Value};
use uuid::Uuid;

use super::accel::paging::{fetch_keyset, fetch_keyset_rows, fetch_page};
use super::audit::insert_event;
use super::conn::{Arg, Conn, SqlBuilder};
use super::events::{chunked_events, insert_directory_events, NewEvent};
use super::filter_sql::{Keyset, ListQuery, Page};
use super::org_groups::refuse_org_group_name;
use super::sql::groups::{group_columns, MEMBER_SELECT};
use super::user_cache::Change;
use super::{read, write_job, OnConflict, Result, Store, StoreError};
use crate::audit::{Action, AuditContext};
use crate::directory::events::{group_changed, group_created, group_event};
use crate::directory::{GroupChange, GroupDraft, MemberChange};
use crate::scim::list::ListRequest;
use crate::time::now_micros;

/// Ids per statement when members are added or removed: under SQLite's
/// 32,766 bound-variable limit, so 10,000 members take one statement.
const MEMBER_CHUNK: usize = 10_000;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct GroupRow {
    pub id: Uuid,
    pub doc: String,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl super::filter_sql::ListKey for GroupRow {
    fn list_key(&self) -> (i64, Uuid) {
        (self.created_at, self.id)
    }
}

impl GroupRow {
    pub fn doc_map(&self) -> Map<String, Value> {
        match serde_json::from_str(&self.doc) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        }
    }
}

/// One member of a group, with what a client needs to show it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct MemberRow {
    pub group_id: Uuid,
    pub member_id: Uuid,
    pub member_type: String,
    pub display: Option<String>,
}

/// What a group's member changes did: the members that joined and left,
/// each once, sorted (a member removed and added back by one request is
/// neither).
#[derive(Debug, Default)]
pub(crate) struct MemberDiff {
    pub(crate) added: Vec<Uuid>,
    pub(crate) removed: Vec<Uuid>,
}

impl MemberDiff {
    fn counts(&self) -> (u64, u64) {
        (self.added.len() as u64, self.removed.len() as u64)
    }

    /// The feed's `group.members_added` and `group.members_removed`
    /// events, at most [`crate::directory::events::FEED_MEMBERS_PER_EVENT`]
    /// ids each.
    fn feed_events(&self, group_id: Uuid) -> Vec<NewEvent> {
        let per = crate::directory::events::FEED_MEMBERS_PER_EVENT;
        let data = |ids: &[Uuid]| serde_json::json!({ "groupId": group_id, "members": ids });
        let mut events = chunked_events("group.members_added", &self.added, per, data);
        events.extend(chunked_events(
            "group.members_removed",
            &self.removed,
            per,
            data,
        ));
        events
    }
}

/// Applies member changes inside the caller's transaction, and writes
/// their feed events; returns the members added and removed.
async fn apply_member_changes<C: Conn>(
    c: &mut C,
    directory_id: Uuid,
    group_id: Uuid,
    changes: &[MemberChange],
) -> Result<MemberDiff> {
    let mut added: HashSet<Uuid> = HashSet::new();
    let mut removed: HashSet<Uuid> = HashSet::new();
    for change in changes {
        let (clear, add, remove): (bool, &[Uuid], &[Uuid]) = match change {
            MemberChange::Add(v) => (false, v.as_slice(), &[]),
            MemberChange::Remove(v) => (false, &[], v.as_slice()),
            MemberChange::RemoveAll => (true, &[], &[]),
            MemberChange::Replace(v) => (true, v.as_slice(), &[]),
        };
        let group = [Arg::from(group_id)];
        // A replaced list is cleared and re-inserted; what changed is
        // the difference between the rows deleted and those inserted.
        let mut gone: HashSet<Uuid> = HashSet::new();
        if clear {
            let sql = "DELETE FROM group_members WHERE group_id = $1 RETURNING member_id";
            let ids: Vec<(Uuid,)> = c.fetch_all(sql, &group).await?;
            gone.extend(ids.into_iter().map(|(id,)| id));
        }
        for chunk in remove.chunks(MEMBER_CHUNK) {
            let mut q = SqlBuilder::new(C::DIALECT, "DELETE FROM group_members WHERE group_id = ");
            q.push_bind(group_id).push(" AND member_id IN (");
            q.push_list(chunk.iter().copied())
                .push(") RETURNING member_id");
            let ids: Vec<(Uuid,)> = c.fetch_all(q.sql(), q.args()).await?;
            gone.extend(ids.into_iter().map(|(id,)| id));
        }
        let mut came: HashSet<Uuid> = HashSet::new();
        for chunk in add.chunks(MEMBER_CHUNK) {
            let mut added_here = 0u64;
            for (table, member_type) in [("users", "User"), ("groups", "Group")] {
                if added_here == chunk.len() as u64 {
                    // Every id was a user: no group to look for.
                    break;
                }
                // Insert-select both checks that each id is in this
                // directory and adds it, in one statement.
                let mut q = SqlBuilder::new(
                    C::DIALECT,
                    "INSERT INTO group_members (group_id, member_id, member_type) SELECT ",
                );
                q.push_bind(group_id).push(", id, ").push_bind(member_type);
                q.push(&format!(" FROM {table} WHERE directory_id = "));
                q.push_bind(directory_id).push(" AND id IN (");
                q.push_list(chunk.iter().copied());
                q.push(") ON CONFLICT (group_id, member_id) DO NOTHING RETURNING member_id");
                let ids: Vec<(Uuid,)> = c.fetch_all(q.sql(), q.args()).await?;
                added_here += ids.len() as u64;
                came.extend(ids.into_iter().map(|(id,)| id));
            }
            if added_here == chunk.len() as u64 {
                // Each id (they are distinct) was added, so each exists.
                continue;
            }
            // Some ids were members already, or are not in this
            // directory: count those that exist.
            let mut found = 0u64;
            for table in ["users", "groups"] {
                let mut q = SqlBuilder::new(
                    C::DIALECT,
                    format!("SELECT COUNT(*) FROM {table} WHERE directory_id = "),
                );
                q.push_bind(directory_id).push(" AND id IN (");
                q.push_list(chunk.iter().copied()).push(")");
                let (n,): (i64,) = c.fetch_one(q.sql(), q.args()).await?;
                found += n as u64;
            }
            if found < chunk.len() as u64 {
                return Err(StoreError::UnknownMembers);
            }
        }
        // Earlier changes of the same request are netted out too.
        for id in gone.difference(&came) {
            if !added.remove(id) {
                removed.insert(*id);
            }
        }
        for id in came.difference(&gone) {
            if !removed.remove(id) {
                added.insert(*id);
            }
        }
    }
    let mut diff = MemberDiff {
        added: added.into_iter().collect(),
        removed: removed.into_iter().collect(),
    };
    diff.added.sort();
    diff.removed.sort();
    let events = diff.feed_events(group_id);
    if !events.is_empty() {
        insert_directory_events(c, directory_id, &events).await?;
    }
    Ok(diff)
}

impl Store {
    pub async fn insert_group(
        &self,
        directory_id: Uuid,
        group: GroupDraft,
        members: Vec<Uuid>,
        audit: &AuditContext,
    ) -> Result<GroupRow> {
        let id = Uuid::new_v4();
        let now = now_micros();
        // Its members' `groups` now name it.
        let changed =
            (!members.is_empty()).then(|| self.change_guard(Change::Directory(directory_id)));
        let changes = [MemberChange::Add(members)];
        let audit = audit.clone();
        let doc = group.doc.clone();
        let name_ci = group.display_name.to_lowercase();
        let changed = write_job!(self, |d, tx| {
            refuse_org_group_name(&mut *tx, directory_id, &name_ci).await?;
            let sql = format!(
                "INSERT INTO groups (id, directory_id, display_name, display_name_ci, external_id, \
                 doc, version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, {}, 1, $7, $7)",
                d.doc_in(6)
            );
            sqlx::query(&sql)
                .bind(id)
                .bind(directory_id)
                .bind(&group.display_name)
                .bind(&name_ci)
                .bind(&group.external_id)
                .bind(&group.doc)
                .bind(now)
                .execute(&mut *tx)
                .await
                .on_conflict("displayName")?;
            let (added, _) = apply_member_changes(&mut *tx, directory_id, id, &changes)
                .await?
                .counts();
            if audit.enabled {
                let event = group_created(&audit, directory_id, (id, now), &group, added);
                insert_event(&mut *tx, &event).await?;
            }
            changed
        });
        drop(changed);
        Ok(GroupRow {
            id,
            doc,
            version: 1,
            created_at: now,
            updated_at: now,
        })
    }

    pub async fn get_group(&self, directory_id: Uuid, id: Uuid) -> Result<GroupRow> {
        read!(self, |d, c| {
            let sql = format!(
                "SELECT {} FROM groups WHERE directory_id = $1 AND id = $2",
                group_columns(d)
            );
            sqlx::query_as(&sql)
                .bind(directory_id)
                .bind(id)
                .fetch_optional(&mut *c)
                .await?
                .ok_or(StoreError::NotFound)
        })
    }

    /// One page of groups matching `request`, and the total count.
    pub async fn list_groups(
        &self,
        directory_id: Uuid,
        request: &ListRequest<'_>,
        page: Page,
    ) -> Result<(i64, Vec<GroupRow>)> {
        debug_assert_eq!(request.resource_type().name, "Group");
        let filter = &ListQuery::build(self.dialect(), request);
        read!(self, |d, c| {
            let columns = group_columns(d);
            let cursors = &self.cursors;
            fetch_page::<_, GroupRow>(c, cursors, filter, "groups", &columns, directory_id, page)
                .await
        })
    }

    /// Up to `count` groups matching `request` after, or before, the key
    /// of `keyset` (creation time, id), in the default order; whether more
    /// follow in that direction; the total count. A cursor page (RFC 9865).
    pub async fn list_groups_keyset(
        &self,
        directory_id: Uuid,
        request: &ListRequest<'_>,
        keyset: Keyset,
        count: i64,
    ) -> Result<(i64, Vec<GroupRow>, bool)> {
        debug_assert_eq!(request.resource_type().name, "Group");
        let filter = &ListQuery::build(self.dialect(), request);
        read!(self, |d, c| {
            let columns = group_columns(d);
            fetch_keyset::<_, GroupRow>(
                c,
                &self.cursors,
                filter,
                "groups",
                &columns,
                directory_id,
                keyset,
                count,
            )
            .await
        })
    }

    /// [`Self::list_groups_keyset`] without the total, for the console:
    /// browsing a page never counts the directory.
    pub async fn browse_groups(
        &self,
        directory_id: Uuid,
        request: &ListRequest<'_>,
        keyset: Keyset,
        count: i64,
    ) -> Result<(Vec<GroupRow>, bool)> {
        debug_assert_eq!(request.resource_type().name, "Group");
        let filter = &ListQuery::build(self.dialect(), request);
        read!(self, |d, c| {
            let columns = group_columns(d);
            fetch_keyset_rows::<_, GroupRow>(
                c,
                filter,
                "groups",
                &columns,
                directory_id,
                keyset,
                count,
            )
            .await
        })
    }

    /// Members of the given groups, in a stable order.
    pub async fn members_of(&self, group_ids: &[Uuid]) -> Result<Vec<MemberRow>> {
        if group_ids.is_empty() {
            return Ok(Vec::new());
        }
        read!(self, |_d, c| {
            let mut q = sqlx::QueryBuilder::new(format!("{MEMBER_SELECT} WHERE gm.group_id IN ("));
            let mut sep = q.separated(", ");
            for id in group_ids {
                sep.push_bind(*id);
            }
            q.push(") ORDER BY gm.group_id, gm.member_id");
            Ok(q.build_query_as().fetch_all(&mut *c).await?)
        })
    }

    /// Read-modify-write of one group and its members in one transaction.
    /// `change` gets the current document and returns the group to store
    /// and the member changes to apply, in order, or refuses with the
    /// caller's error `E` (then nothing is written); it runs on SQLite's
    /// writer task, so it owns what it uses. The events are the directory's
    /// to choose ([`group_changed`]).
    pub async fn modify_group<F, E>(
        &self,
        directory_id: Uuid,
        id: Uuid,
        expected_version: Option<i64>,
        audit: &AuditContext,
        change: F,
    ) -> std::result::Result<GroupRow, E>
    where
        F: FnOnce(Map<String, Value>) -> std::result::Result<GroupChange, E> + Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let audit = audit.clone();
        // Its name or members may have changed: its members' `groups`
        // with them.
        let changed = self.change_guard(Change::Directory(directory_id));
        let (row, changed) = write_job!(self, |d, tx| {
            let lock = if d == super::Dialect::Postgres {
                " FOR UPDATE"
            } else {
                ""
            };
            let sql = format!(
                "SELECT {} FROM groups WHERE directory_id = $1 AND id = $2{lock}",
                group_columns(d)
            );
            let current: GroupRow = sqlx::query_as(&sql)
                .bind(directory_id)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound)?;
            if expected_version.is_some_and(|v| v != current.version) {
                return Err(StoreError::PreconditionFailed);
            }
            let before = current.doc_map();
            let name_before = before
                .get("displayName")
                .and_then(Value::as_str)
                .map(str::to_lowercase);
            let kept = audit.enabled.then(|| before.clone());
            // A refusal ends the job before it wrote anything.
            let GroupChange {
                group,
                members: changes,
            } = match change(before) {
                Ok(change) => change,
                Err(refused) => return Ok((Err(refused), changed)),
            };
            let name_ci = group.display_name.to_lowercase();
            if name_before.as_deref() != Some(name_ci.as_str()) {
                // Renamed: the new name may be an org group's.
                refuse_org_group_name(&mut *tx, directory_id, &name_ci).await?;
            }
            let now = now_micros();
            let version = current.version + 1;
            let sql = format!(
                "UPDATE groups SET display_name = $1, display_name_ci = $2, external_id = $3, \
                 doc = {}, version = $5, updated_at = $6 WHERE directory_id = $7 AND id = $8",
                d.doc_in(4)
            );
            sqlx::query(&sql)
                .bind(&group.display_name)
                .bind(&name_ci)
                .bind(&group.external_id)
                .bind(&group.doc)
                .bind(version)
                .bind(now)
                .bind(directory_id)
                .bind(id)
                .execute(&mut *tx)
                .await
                .on_conflict("displayName")?;
            let counts = apply_member_changes(&mut *tx, directory_id, id, &changes)
                .await?
                .counts();
            if let Some(before) = &kept {
                let stored = (id, current.created_at);
                for e in &group_changed(&audit, directory_id, stored, before, &group, counts) {
                    insert_event(&mut *tx, e).await?;
                }
            }
            let row = GroupRow {
                id,
                doc: group.doc,
                version,
                created_at: current.created_at,
                updated_at: now,
            };
            (Ok(row), changed)
        });
        drop(changed);
        row
    }

    /// Deletes a group, its memberships, and its membership in other
    /// groups. Returns whether it was nested: in another group, or with
    /// groups as members (what the sync engine must know of it).
    pub async fn delete_group(
        &self,
        directory_id: Uuid,
        id: Uuid,
        expected_version: Option<i64>,
        audit: &AuditContext,
    ) -> Result<bool> {
        let audit = audit.clone();
        let changed = self.change_guard(Change::Directory(directory_id));
        let (changed, nested) = write_job!(self, |_d, tx| {
            let current: Option<(i64, i64, String, Option<String>)> = sqlx::query_as(
                "SELECT version, created_at, display_name, external_id FROM groups \
                 WHERE directory_id = $1 AND id = $2",
            )
            .bind(directory_id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let (version, created_at, display_name, external_id) =
                current.ok_or(StoreError::NotFound)?;
            if expected_version.is_some_and(|v| v != version) {
                return Err(StoreError::PreconditionFailed);
            }
            let parents = sqlx::query("DELETE FROM group_members WHERE member_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let children: Option<(i32,)> = sqlx::query_as(
                "SELECT 1 FROM group_members WHERE group_id = $1 AND member_type = 'Group' LIMIT 1",
            )
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let nested = parents > 0 || children.is_some();
            sqlx::query("DELETE FROM groups WHERE directory_id = $1 AND id = $2")
                .bind(directory_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            super::bump_list_epoch(&mut *tx, directory_id).await?;
            if audit.enabled {
                let event = group_event(
                    &audit,
                    directory_id,
                    Action::GroupDeleted,
                    (id, created_at),
                    &display_name,
                    external_id.as_deref(),
                );
                insert_event(&mut *tx, &event).await?;
            }
            (changed, nested)
        });
        drop(changed);
        Ok(nested)
    }
}

impl Store {
    /// Up to `limit` members of one group after `after` (by member id), for
    /// streaming a large group in bounded batches (keyset, so each batch is
    /// an index range scan however deep it is).
    pub async fn members_after(
        &self,
        group_id: Uuid,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<MemberRow>> {
        read!(self, |_d, c| {
            let mut q = sqlx::QueryBuilder::new(format!("{MEMBER_SELECT} WHERE gm.group_id = "));
            q.push_bind(group_id);
            if let Some(after) = after {
                q.push(" AND gm.member_id > ");
                q.push_bind(after);
            }
            q.push(" ORDER BY gm.member_id LIMIT ");
            q.push_bind(limit);
            Ok(q.build_query_as().fetch_all(&mut *c).await?)
        })
    }
}
