//! Groups the admin keeps in the organisation (never written by SCIM), their
//! members (org accounts), and the one rule they share with SCIM groups: no
//! two groups of an org, of either kind, have the same name
//! (case-insensitively).

use std::collections::HashSet;

use uuid::Uuid;

use super::audit::insert_event;
use super::conn::{Arg, Conn, SqlBuilder};
use super::{read, transaction, Dialect, OnConflict, Result, Store, StoreError};
use crate::audit::{Action, AuditContext, Event, Target, TargetType};
use crate::time::now_micros;

/// Ids per statement: under SQLite's 32,766 bound-variable limit.
pub(super) const ID_CHUNK: usize = 10_000;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct OrgGroupRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub member_count: i64,
}

/// A member of an org group: an account of the org.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct OrgGroupMemberRow {
    pub account_id: Uuid,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub added_at: i64,
}

const GROUP_COLUMNS: &str = "g.id, g.org_id, g.name, g.description, g.created_at, g.updated_at, \
     (SELECT COUNT(*) FROM org_group_members m WHERE m.group_id = g.id) AS member_count";

/// Serialises, on PostgreSQL, the writes that give a group of either kind
/// a name, so a check for the other kind's name and the write it guards
/// are atomic (SQLite's one writer already serialises them). SCIM writes
/// take the lock shared, so they never wait for one another; an org group
/// write takes it exclusive. Keyed by the lowercased name alone: two orgs
/// naming a group alike at the same instant wait a moment, nothing more.
async fn lock_group_name<C: Conn>(c: &mut C, name_ci: &str, exclusive: bool) -> Result<()> {
    if C::DIALECT == Dialect::Postgres {
        let sql = if exclusive {
            "SELECT pg_advisory_xact_lock(7301, hashtext($1))"
        } else {
            "SELECT pg_advisory_xact_lock_shared(7301, hashtext($1))"
        };
        c.execute(sql, &[Arg::from(name_ci)]).await?;
    }
    Ok(())
}

/// Refuses a SCIM group name (lowercased) that an org group of the
/// directory's org holds, inside the SCIM write's transaction: one look-up
/// on `org_groups`' unique index (and the shared name lock on PostgreSQL).
pub(crate) async fn refuse_org_group_name<C: Conn>(
    c: &mut C,
    directory_id: Uuid,
    name_ci: &str,
) -> Result<()> {
    lock_group_name(c, name_ci, false).await?;
    let sql = "SELECT og.id FROM org_groups og JOIN directories d ON d.org_id = og.org_id \
               WHERE d.id = $1 AND og.name_ci = $2";
    let hit: Option<(Uuid,)> = c
        .fetch_optional(sql, &[directory_id.into(), name_ci.into()])
        .await?;
    match hit {
        Some(_) => Err(StoreError::Refused(
            "displayName is already the name of a group of the organisation".to_owned(),
        )),
        None => Ok(()),
    }
}

/// Refuses an org group name (lowercased) that a SCIM group of any of the
/// org's directories holds, under the exclusive name lock.
async fn refuse_scim_group_name<C: Conn>(c: &mut C, org_id: Uuid, name_ci: &str) -> Result<()> {
    lock_group_name(c, name_ci, true).await?;
    let sql = "SELECT g.id FROM groups g JOIN directories d ON d.id = g.directory_id \
               WHERE d.org_id = $1 AND g.display_name_ci = $2 LIMIT 1";
    let hit: Option<(Uuid,)> = c
        .fetch_optional(sql, &[org_id.into(), name_ci.into()])
        .await?;
    match hit {
        Some(_) => Err(StoreError::Refused(
            "a group synced from an identity provider already has this name".to_owned(),
        )),
        None => Ok(()),
    }
}

/// Adds the accounts to the default groups of the org's products whose
/// `newUsersGetAccess` is on, in one set-based statement per 10,000
/// accounts; accounts already members stay as they are. For the code that
/// creates accounts, inside its transaction. Returns the memberships added.
pub(crate) async fn join_default_groups<C: Conn>(
    c: &mut C,
    org_id: Uuid,
    account_ids: &[Uuid],
) -> Result<u64> {
    let now = now_micros();
    let mut added = 0;
    for chunk in account_ids.chunks(ID_CHUNK) {
        let mut q = SqlBuilder::new(
            C::DIALECT,
            "INSERT INTO org_group_members (group_id, account_id, added_at) \
             SELECT DISTINCT dg.group_id, a.id, ",
        );
        q.push_bind(now).push(
            " FROM accounts a JOIN sites s ON s.org_id = a.org_id \
             JOIN products p ON p.site_id = s.id AND p.new_users_get_access \
             JOIN product_default_groups dg ON dg.site_id = p.site_id \
             AND dg.product_key = p.product_key WHERE a.org_id = ",
        );
        q.push_bind(org_id).push(" AND a.id IN (");
        q.push_list(chunk.iter().copied());
        q.push(") ON CONFLICT (group_id, account_id) DO NOTHING");
        added += c.execute(q.sql(), q.args()).await?;
    }
    if added > 0 {
        super::sync::grant_org_group_access(c, org_id, account_ids).await?;
    }
    Ok(added)
}

fn group_event(audit: &AuditContext, action: Action, g: &OrgGroupRow) -> Event {
    audit.in_org(g.org_id).event(action).target(Target::named(
        TargetType::OrgGroup,
        g.id,
        g.created_at,
        &g.name,
    ))
}

async fn fetch_group<C: Conn>(c: &mut C, org_id: Uuid, id: Uuid) -> Result<OrgGroupRow> {
    let sql = format!("SELECT {GROUP_COLUMNS} FROM org_groups g WHERE g.org_id = $1 AND g.id = $2");
    c.fetch_optional(&sql, &[org_id.into(), id.into()])
        .await?
        .ok_or_else(|| StoreError::Missing(format!("group {id} not found")))
}

/// A change to an org group: each field absent (unchanged) or a value
/// (`description` null clears it).
#[derive(Clone, Debug, Default)]
pub struct OrgGroupChange {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
}

impl Store {
    pub async fn create_org_group(
        &self,
        org_id: Uuid,
        name: &str,
        description: Option<&str>,
        audit: &AuditContext,
    ) -> Result<OrgGroupRow> {
        let row = OrgGroupRow {
            id: Uuid::new_v4(),
            org_id,
            name: name.to_owned(),
            description: description.map(str::to_owned),
            created_at: now_micros(),
            updated_at: now_micros(),
            member_count: 0,
        };
        let name_ci = name.to_lowercase();
        transaction!(self, |_d, tx| {
            refuse_scim_group_name(&mut *tx, org_id, &name_ci).await?;
            sqlx::query(
                "INSERT INTO org_groups (id, org_id, name, name_ci, description, created_at, \
                 updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
            )
            .bind(row.id)
            .bind(org_id)
            .bind(name)
            .bind(&name_ci)
            .bind(description)
            .bind(row.created_at)
            .execute(&mut *tx)
            .await
            .on_conflict("a group with this name")?;
            if audit.enabled {
                insert_event(&mut *tx, &group_event(audit, Action::OrgGroupCreated, &row)).await?;
            }
        });
        Ok(row)
    }

    pub async fn list_org_groups(&self, org_id: Uuid) -> Result<Vec<OrgGroupRow>> {
        let sql = format!(
            "SELECT {GROUP_COLUMNS} FROM org_groups g WHERE g.org_id = $1 \
             ORDER BY g.created_at, g.id"
        );
        read!(self, |_d, c| Ok(c
            .fetch_all(&sql, &[org_id.into()])
            .await?))
    }

    /// A group with its members (by email, then id).
    pub async fn get_org_group(
        &self,
        org_id: Uuid,
        id: Uuid,
    ) -> Result<(OrgGroupRow, Vec<OrgGroupMemberRow>)> {
        read!(self, |_d, c| {
            let group = fetch_group(c, org_id, id).await?;
            let members = c
                .fetch_all(
                    "SELECT m.account_id, a.email, a.display_name, m.added_at \
                     FROM org_group_members m JOIN accounts a ON a.id = m.account_id \
                     WHERE m.group_id = $1 ORDER BY a.email, m.account_id",
                    &[id.into()],
                )
                .await?;
            Ok((group, members))
        })
    }

    pub async fn update_org_group(
        &self,
        org_id: Uuid,
        id: Uuid,
        change: &OrgGroupChange,
        audit: &AuditContext,
    ) -> Result<OrgGroupRow> {
        let now = now_micros();
        let after = transaction!(self, |_d, tx| {
            let before = fetch_group(&mut *tx, org_id, id).await?;
            let mut after = before.clone();
            let mut changed = Vec::new();
            if let Some(name) = &change.name {
                let name_ci = name.to_lowercase();
                if name_ci != before.name.to_lowercase() {
                    refuse_scim_group_name(&mut *tx, org_id, &name_ci).await?;
                }
                if *name != before.name {
                    changed.push("name".to_owned());
                }
                after.name = name.clone();
            }
            if let Some(description) = &change.description {
                if *description != before.description {
                    changed.push("description".to_owned());
                }
                after.description = description.clone();
            }
            after.updated_at = now;
            sqlx::query(
                "UPDATE org_groups SET name = $1, name_ci = $2, description = $3, updated_at = $4 \
                 WHERE org_id = $5 AND id = $6",
            )
            .bind(&after.name)
            .bind(after.name.to_lowercase())
            .bind(&after.description)
            .bind(now)
            .bind(org_id)
            .bind(id)
            .execute(&mut *tx)
            .await
            .on_conflict("a group with this name")?;
            if audit.enabled && !changed.is_empty() {
                let mut event = group_event(audit, Action::OrgGroupUpdated, &after);
                if after.name != before.name {
                    event = event.detail(format!("renamed from {}", before.name));
                }
                insert_event(&mut *tx, &event.changed(changed)).await?;
            }
            after
        });
        Ok(after)
    }

    /// Deletes a group: its memberships, grants and default-group places
    /// go with it (and the access its grants gave).
    pub async fn delete_org_group(
        &self,
        org_id: Uuid,
        id: Uuid,
        audit: &AuditContext,
    ) -> Result<()> {
        transaction!(self, |_d, tx| {
            let group = fetch_group(&mut *tx, org_id, id).await?;
            sqlx::query("DELETE FROM org_groups WHERE org_id = $1 AND id = $2")
                .bind(org_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if audit.enabled {
                let event = group_event(audit, Action::OrgGroupDeleted, &group);
                insert_event(&mut *tx, &event).await?;
            }
        });
        Ok(())
    }

    /// Adds accounts of the org to a group; all or none: an id that is no
    /// account of the org is named, and nothing is written. Returns how
    /// many were not members before.
    pub async fn add_org_group_members(
        &self,
        org_id: Uuid,
        id: Uuid,
        account_ids: &[Uuid],
        audit: &AuditContext,
    ) -> Result<u64> {
        let now = now_micros();
        let distinct: Vec<Uuid> = {
            let mut seen = HashSet::new();
            account_ids
                .iter()
                .copied()
                .filter(|a| seen.insert(*a))
                .collect()
        };
        let added = transaction!(self, |d, tx| {
            let group = fetch_group(&mut *tx, org_id, id).await?;
            let mut added = 0;
            for chunk in distinct.chunks(ID_CHUNK) {
                let mut q = SqlBuilder::new(d, "SELECT id FROM accounts WHERE org_id = ");
                q.push_bind(org_id).push(" AND id IN (");
                q.push_list(chunk.iter().copied()).push(")");
                let found: Vec<(Uuid,)> = Conn::fetch_all(&mut *tx, q.sql(), q.args()).await?;
                let found: HashSet<Uuid> = found.into_iter().map(|(a,)| a).collect();
                if let Some(missing) = chunk.iter().find(|a| !found.contains(a)) {
                    return Err(StoreError::Missing(format!("account {missing} not found")));
                }
                let mut q = SqlBuilder::new(
                    d,
                    "INSERT INTO org_group_members (group_id, account_id, added_at) ",
                );
                q.push_values(chunk.iter().copied(), |a| {
                    vec![id.into(), a.into(), now.into()]
                });
                q.push(" ON CONFLICT (group_id, account_id) DO NOTHING");
                added += Conn::execute(&mut *tx, q.sql(), q.args()).await?;
            }
            // The group's grants apply to its new members at once.
            super::sync::grant_org_group_access(&mut *tx, org_id, &distinct).await?;
            if audit.enabled && added > 0 {
                let mut event = group_event(audit, Action::OrgGroupUpdated, &group)
                    .changed(vec!["members".to_owned()]);
                event.members_added = Some(added);
                insert_event(&mut *tx, &event).await?;
            }
            added
        });
        Ok(added)
    }

    /// Removes one account from a group, and at once the access the
    /// group's grants gave it (the sync engine would remove it at its next
    /// run; a revocation should not wait for one).
    pub async fn remove_org_group_member(
        &self,
        org_id: Uuid,
        id: Uuid,
        account_id: Uuid,
        audit: &AuditContext,
    ) -> Result<()> {
        transaction!(self, |_d, tx| {
            let group = fetch_group(&mut *tx, org_id, id).await?;
            let removed = sqlx::query(
                "DELETE FROM org_group_members WHERE group_id = $1 AND account_id = $2",
            )
            .bind(id)
            .bind(account_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if removed == 0 {
                return Err(StoreError::Missing(format!(
                    "account {account_id} is not a member of group {id}"
                )));
            }
            sqlx::query(
                "DELETE FROM effective_access WHERE account_id = $1 AND grant_id IN \
                 (SELECT id FROM product_grants WHERE org_group_id = $2)",
            )
            .bind(account_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            if audit.enabled {
                let mut event = group_event(audit, Action::OrgGroupUpdated, &group)
                    .changed(vec!["members".to_owned()]);
                event.members_removed = Some(removed);
                insert_event(&mut *tx, &event).await?;
            }
        });
        Ok(())
    }

    /// [`join_default_groups`] in a transaction of its own.
    pub async fn join_default_groups(&self, org_id: Uuid, account_ids: &[Uuid]) -> Result<u64> {
        Ok(transaction!(self, |_d, tx| {
            join_default_groups(&mut *tx, org_id, account_ids).await?
        }))
    }
}
