//! Org-level accounts: the changes SCIM writes make to them (inside the
//! SCIM write's transaction) and the admin API's reads and writes.

use uuid::Uuid;

use super::audit::insert_event;
use super::conn::{Conn, SqlBuilder};
use super::{Dialect, Result, StoreError};
use crate::audit::{Action, AuditContext, Event, Target, TargetType};
use crate::directory::account::{email_change, email_domain, ConflictReason, EmailChange};

/// `FOR UPDATE` where there is such a thing: SQLite's single writer
/// already serialises the writes that read an account to change it.
fn lock(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => "",
        Dialect::Postgres => " FOR UPDATE",
    }
}

/// Whether `domain` is a verified domain of `org_id`.
pub(super) async fn domain_verified<C: Conn>(
    c: &mut C,
    org_id: Uuid,
    domain: &str,
) -> Result<bool> {
    let found: Option<(i32,)> = c
        .fetch_optional(
            "SELECT 1 FROM domains WHERE org_id = $1 AND name = $2 AND status = 'verified'",
            &[org_id.into(), domain.into()],
        )
        .await?;
    Ok(found.is_some())
}

/// Whether account `account_id` of `org_id` is managed (its email's
/// domain is verified by the org).
async fn is_managed<C: Conn>(c: &mut C, org_id: Uuid, account_id: Uuid) -> Result<bool> {
    let sql = "SELECT 1 FROM accounts a JOIN domains d ON d.org_id = a.org_id \
               AND d.name = a.email_domain AND d.status = 'verified' \
               WHERE a.id = $1 AND a.org_id = $2";
    let found: Option<(i32,)> = c
        .fetch_optional(sql, &[account_id.into(), org_id.into()])
        .await?;
    Ok(found.is_some())
}

/// Sets account `account_id` active exactly when one of its SCIM users is:
/// after a user's `active` changed, or a user went away. The account's
/// row is locked first, so that two links deactivated at once (each
/// seeing the other still active, in its snapshot) cannot both leave it
/// active: the second reads the users after the first committed.
/// Whether the account changed.
pub(super) async fn follow_links_active<C: Conn>(
    c: &mut C,
    account_id: Uuid,
    now: i64,
) -> Result<bool> {
    let sql = format!("SELECT id FROM accounts WHERE id = $1{}", lock(C::DIALECT));
    let found: Option<(Uuid,)> = c.fetch_optional(&sql, &[account_id.into()]).await?;
    if found.is_none() {
        return Ok(false);
    }
    let sql = "UPDATE accounts SET active = NOT active, updated_at = $2 WHERE id = $1 \
               AND active <> EXISTS (SELECT 1 FROM users WHERE users.account_id = $1 \
               AND users.active)";
    Ok(c.execute(sql, &[account_id.into(), now.into()]).await? > 0)
}

/// What a SCIM user's removal does to its account: a managed account
/// goes inactive unless another active SCIM user keeps it; an external
/// one is left as it is. The row always stays.
pub(super) async fn after_user_deleted<C: Conn>(
    c: &mut C,
    org_id: Uuid,
    account_id: Uuid,
    now: i64,
) -> Result<()> {
    if is_managed(c, org_id, account_id).await? {
        follow_links_active(c, account_id, now).await?;
    }
    Ok(())
}

/// A SCIM user's primary email changed to `scim_email`: the account
/// takes it when the org verified its domain and no other account holds
/// it ([`email_change`]); otherwise the link stays and the conflict is
/// recorded (one per user, replaced), until the emails agree again.
/// Whether the account's email moved.
pub(super) async fn follow_user_email<C: Conn>(
    c: &mut C,
    audit: &AuditContext,
    link: (Uuid, Uuid, Uuid),
    scim_email: &str,
    now: i64,
) -> Result<bool> {
    let (account_id, directory_id, user_id) = link;
    let org_id = audit.org_id;
    let sql = format!(
        "SELECT email FROM accounts WHERE id = $1{}",
        lock(C::DIALECT)
    );
    let Some((account_email,)): Option<(Option<String>,)> =
        c.fetch_optional(&sql, &[account_id.into()]).await?
    else {
        return Ok(false);
    };
    let domain = email_domain(scim_email);
    let verified = match domain {
        Some(domain) => domain_verified(c, org_id, domain).await?,
        None => false,
    };
    let taken: Option<(Uuid,)> = c
        .fetch_optional(
            "SELECT id FROM accounts WHERE org_id = $1 AND email = $2 AND id <> $3",
            &[org_id.into(), scim_email.into(), account_id.into()],
        )
        .await?;
    let outcome = email_change(
        account_email.as_deref(),
        scim_email,
        verified,
        taken.is_some(),
    );
    let moved = outcome == EmailChange::Move;
    if moved {
        c.execute(
            "UPDATE accounts SET email = $2, email_domain = $3, updated_at = $4 WHERE id = $1",
            &[
                account_id.into(),
                scim_email.into(),
                domain.into(),
                now.into(),
            ],
        )
        .await?;
        // Rare, and the account's identity: recorded, unlike the account
        // work every creation does.
        if audit.enabled {
            let mut target = Target::new(TargetType::Account, Some(account_id));
            target.identifier = Some(scim_email.to_owned());
            target.email = Some(scim_email.to_owned());
            let from = account_email.as_deref().unwrap_or("no email");
            let event = audit
                .event(Action::AccountEmailChanged)
                .target(target)
                .detail(format!(
                    "from {from}, following SCIM user {user_id} of directory {directory_id}"
                ));
            insert_event(c, &event).await?;
        }
    }
    match outcome {
        EmailChange::Agree | EmailChange::Move => clear_conflict(c, user_id).await?,
        EmailChange::Conflict(reason) => {
            record_conflict(
                c,
                (account_id, directory_id, user_id),
                scim_email,
                account_email.as_deref(),
                reason,
                now,
            )
            .await?
        }
    }
    Ok(moved)
}

async fn clear_conflict<C: Conn>(c: &mut C, user_id: Uuid) -> Result<()> {
    c.execute(
        "DELETE FROM account_email_conflicts WHERE user_id = $1",
        &[user_id.into()],
    )
    .await?;
    Ok(())
}

async fn record_conflict<C: Conn>(
    c: &mut C,
    (account_id, directory_id, user_id): (Uuid, Uuid, Uuid),
    scim_email: &str,
    account_email: Option<&str>,
    reason: ConflictReason,
    now: i64,
) -> Result<()> {
    let sql = "INSERT INTO account_email_conflicts (user_id, account_id, directory_id, \
               scim_email, account_email, reason, recorded_at) \
               VALUES ($1, $2, $3, $4, $5, $6, $7) \
               ON CONFLICT (user_id) DO UPDATE SET account_id = excluded.account_id, \
               directory_id = excluded.directory_id, scim_email = excluded.scim_email, \
               account_email = excluded.account_email, reason = excluded.reason, \
               recorded_at = excluded.recorded_at";
    c.execute(
        sql,
        &[
            user_id.into(),
            account_id.into(),
            directory_id.into(),
            scim_email.into(),
            account_email.into(),
            reason.as_str().into(),
            now.into(),
        ],
    )
    .await?;
    Ok(())
}

impl super::Store {
    /// Records `name` as a verified domain of `org_id` (a domain's checks
    /// are the domains API's; this is what they end with). For tests and
    /// tools that need a managed account without DNS.
    pub async fn put_verified_domain(&self, org_id: Uuid, name: &str) -> Result<()> {
        let now = crate::time::now_micros();
        let name = name.to_lowercase();
        super::transaction!(self, |_d, tx| {
            sqlx::query(
                "INSERT INTO domains (org_id, name, token, status, verified_at, created_at) \
                 VALUES ($1, $2, $3, 'verified', $4, $4) \
                 ON CONFLICT (org_id, name) DO UPDATE SET status = 'verified', \
                 verified_at = excluded.verified_at",
            )
            .bind(org_id)
            .bind(&name)
            .bind(Uuid::new_v4().simple().to_string())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        });
        Ok(())
    }
}

/// An account as the admin API shows it; `managed` derived from the
/// org's verified domains as it is read.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AccountRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub email: Option<String>,
    pub email_domain: Option<String>,
    pub display_name: Option<String>,
    pub active: bool,
    pub managed: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

const ACCOUNT_COLUMNS: &str = "a.id, a.org_id, a.email, a.email_domain, a.display_name, \
     a.active, EXISTS (SELECT 1 FROM domains d WHERE d.org_id = a.org_id \
     AND d.name = a.email_domain AND d.status = 'verified') AS managed, \
     a.created_at, a.updated_at";

/// Which accounts of an org a list wants, and where its page starts.
#[derive(Clone, Debug, Default)]
pub struct AccountQuery {
    pub org_id: Uuid,
    /// Accounts whose (lowercased) email starts with this.
    pub email_prefix: Option<String>,
    pub active: Option<bool>,
    pub managed: Option<bool>,
    /// Accounts linked to a user of this directory.
    pub directory_id: Option<Uuid>,
    /// The (created_at, id) of the last account of the previous page.
    pub after: Option<(i64, Uuid)>,
    pub limit: i64,
}

/// A SCIM user linked to an account.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct LinkRow {
    pub account_id: Option<Uuid>,
    pub directory_id: Uuid,
    pub directory_name: String,
    pub user_id: Uuid,
    pub user_name: String,
    pub active: bool,
    pub email: Option<String>,
    pub created_at: i64,
}

const LINK_COLUMNS: &str = "u.account_id, u.directory_id, dir.name AS directory_name, \
     u.id AS user_id, u.user_name, u.active, u.primary_email AS email, u.created_at";

/// A SCIM group one of an account's users belongs to.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AccountGroupRow {
    pub id: Uuid,
    pub display_name: String,
    pub directory_id: Uuid,
}

/// A recorded disagreement between a SCIM user's email and its account's.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct EmailConflictRow {
    pub directory_id: Uuid,
    pub user_id: Uuid,
    pub scim_email: String,
    pub account_email: Option<String>,
    pub reason: String,
    pub recorded_at: i64,
}

/// `%`, `_` and the escape itself, escaped for `LIKE … ESCAPE '\'`.
fn like_prefix(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for ch in prefix.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('%');
    out
}

async fn account_in<C: Conn>(c: &mut C, org_id: Uuid, id: Uuid) -> Result<Option<AccountRow>> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.id = $1 AND a.org_id = $2");
    Ok(c.fetch_optional(&sql, &[id.into(), org_id.into()]).await?)
}

async fn links_of<C: Conn>(c: &mut C, account_id: Uuid) -> Result<Vec<LinkRow>> {
    let sql = format!(
        "SELECT {LINK_COLUMNS} FROM users u JOIN directories dir ON dir.id = u.directory_id \
         WHERE u.account_id = $1 ORDER BY u.created_at, u.id"
    );
    Ok(c.fetch_all(&sql, &[account_id.into()]).await?)
}

/// An account event of the admin API, in its org.
fn account_event(audit: &AuditContext, action: Action, account: &AccountRow) -> Event {
    let mut target = Target::new(TargetType::Account, Some(account.id));
    target.created_at = Some(account.created_at);
    target.identifier = account.email.clone();
    target.email = account.email.clone();
    audit.in_org(account.org_id).event(action).target(target)
}

impl super::Store {
    /// A page of `q.limit` accounts in creation order after `q.after`, and
    /// whether more follow.
    pub async fn list_accounts(&self, q: &AccountQuery) -> Result<(Vec<AccountRow>, bool)> {
        let d = self.dialect();
        let mut b = SqlBuilder::new(
            d,
            format!("SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.org_id = "),
        );
        b.push_bind(q.org_id);
        if let Some(prefix) = &q.email_prefix {
            b.push(" AND a.email LIKE ")
                .push_bind(like_prefix(&prefix.to_lowercase()))
                .push(" ESCAPE '\\'");
        }
        if let Some(active) = q.active {
            b.push(" AND a.active = ").push_bind(active);
        }
        if let Some(managed) = q.managed {
            b.push(match managed {
                true => " AND EXISTS",
                false => " AND NOT EXISTS",
            })
            .push(
                " (SELECT 1 FROM domains d WHERE d.org_id = a.org_id \
                 AND d.name = a.email_domain AND d.status = 'verified')",
            );
        }
        if let Some(directory_id) = q.directory_id {
            b.push(" AND EXISTS (SELECT 1 FROM users u WHERE u.account_id = a.id AND u.directory_id = ")
                .push_bind(directory_id)
                .push(")");
        }
        if let Some((created_at, id)) = q.after {
            b.push(" AND (a.created_at > ")
                .push_bind(created_at)
                .push(" OR (a.created_at = ")
                .push_bind(created_at)
                .push(" AND a.id > ")
                .push_bind(id)
                .push("))");
        }
        b.push(" ORDER BY a.created_at, a.id LIMIT ")
            .push_bind(q.limit + 1);
        let mut rows: Vec<AccountRow> =
            super::read!(self, |_d, c| c.fetch_all(b.sql(), b.args()).await?);
        let more = rows.len() as i64 > q.limit;
        rows.truncate(q.limit.max(0) as usize);
        Ok((rows, more))
    }

    /// Account `id` of `org_id`, if there is one.
    pub async fn get_account(&self, org_id: Uuid, id: Uuid) -> Result<Option<AccountRow>> {
        Ok(super::read!(self, |_d, c| account_in(c, org_id, id).await?))
    }

    /// The SCIM users linked to `account_id`, with their directories.
    pub async fn account_links(&self, account_id: Uuid) -> Result<Vec<LinkRow>> {
        Ok(super::read!(self, |_d, c| links_of(c, account_id).await?))
    }

    /// The groups the users linked to `account_id` are direct members of.
    pub async fn account_groups(&self, account_id: Uuid) -> Result<Vec<AccountGroupRow>> {
        let sql = "SELECT DISTINCT g.id, g.display_name, g.directory_id FROM users u \
                   JOIN group_members gm ON gm.member_id = u.id \
                   JOIN groups g ON g.id = gm.group_id \
                   WHERE u.account_id = $1 ORDER BY g.display_name, g.id";
        Ok(super::read!(self, |_d, c| c
            .fetch_all(sql, &[account_id.into()])
            .await?))
    }

    /// The email conflicts recorded for `account_id`'s users.
    pub async fn account_email_conflicts(&self, account_id: Uuid) -> Result<Vec<EmailConflictRow>> {
        let sql = "SELECT directory_id, user_id, scim_email, account_email, reason, recorded_at \
                   FROM account_email_conflicts WHERE account_id = $1 \
                   ORDER BY recorded_at, user_id";
        Ok(super::read!(self, |_d, c| c
            .fetch_all(sql, &[account_id.into()])
            .await?))
    }

    /// Sets account `id` of `org_id` active or not, recording
    /// `account.reactivated` or `account.deactivated` with it (even when
    /// it already was: the admin asked). `NotFound` if there is none.
    pub async fn set_account_active(
        &self,
        org_id: Uuid,
        id: Uuid,
        active: bool,
        audit: &AuditContext,
    ) -> Result<AccountRow> {
        let now = crate::time::now_micros();
        let audit = audit.clone();
        let row = super::transaction!(self, |_d, tx| {
            let Some(mut row) = account_in(&mut *tx, org_id, id).await? else {
                return Err(StoreError::NotFound);
            };
            if row.active != active {
                tx.execute(
                    "UPDATE accounts SET active = $2, updated_at = $3 WHERE id = $1",
                    &[id.into(), active.into(), now.into()],
                )
                .await?;
                row.active = active;
                row.updated_at = now;
            }
            if audit.enabled {
                let action = match active {
                    true => Action::AccountReactivated,
                    false => Action::AccountDeactivated,
                };
                insert_event(&mut *tx, &account_event(&audit, action, &row)).await?;
            }
            // A deactivated account has no access, whatever gave it; an
            // account made active again has its org groups' access back.
            match active {
                false => super::sync::revoke_all_access(&mut *tx, org_id, id, &audit).await?,
                true => {
                    super::sync::grant_org_group_access(&mut *tx, org_id, &[id]).await?;
                }
            }
            row
        });
        Ok(row)
    }
}

/// Why an account's SCIM records were not removed.
#[derive(Debug, PartialEq, Eq)]
pub enum DeleteRecordsRefused {
    /// Only a managed account's records may be removed this way.
    NotManaged,
}

impl super::Store {
    /// The SCIM users of `org_id`'s directories whose primary email is
    /// `email` (lowercased), linked or not.
    pub async fn links_for_email(&self, org_id: Uuid, email: &str) -> Result<Vec<LinkRow>> {
        let sql = format!(
            "SELECT {LINK_COLUMNS} FROM users u JOIN directories dir ON dir.id = u.directory_id \
             WHERE dir.org_id = $1 AND u.primary_email = $2 ORDER BY u.created_at, u.id"
        );
        let email = email.to_lowercase();
        Ok(super::read!(self, |_d, c| c
            .fetch_all(&sql, &[org_id.into(), email.as_str().into()])
            .await?))
    }

    /// The SCIM users of `org_id`'s directories members of a group named
    /// `name` (case-insensitively), each once.
    pub async fn links_for_group_name(&self, org_id: Uuid, name: &str) -> Result<Vec<LinkRow>> {
        let sql = format!(
            "SELECT {LINK_COLUMNS} FROM users u JOIN directories dir ON dir.id = u.directory_id \
             WHERE dir.org_id = $1 AND u.id IN (SELECT gm.member_id FROM groups g \
             JOIN group_members gm ON gm.group_id = g.id \
             JOIN directories gd ON gd.id = g.directory_id \
             WHERE gd.org_id = $1 AND g.display_name_ci = $2) \
             ORDER BY u.created_at, u.id"
        );
        let name = name.to_lowercase();
        Ok(super::read!(self, |_d, c| c
            .fetch_all(&sql, &[org_id.into(), name.as_str().into()])
            .await?))
    }

    /// A page of the SCIM users of `org_id`'s directories linked to no
    /// account, in creation order after `after`, and whether more follow.
    pub async fn unlinked_users(
        &self,
        org_id: Uuid,
        after: Option<(i64, Uuid)>,
        limit: i64,
    ) -> Result<(Vec<LinkRow>, bool)> {
        let (at, id) = after.unwrap_or((i64::MIN, Uuid::nil()));
        let sql = format!(
            "SELECT {LINK_COLUMNS} FROM users u JOIN directories dir ON dir.id = u.directory_id \
             WHERE dir.org_id = $1 AND u.account_id IS NULL \
             AND (u.created_at > $2 OR (u.created_at = $2 AND u.id > $3)) \
             ORDER BY u.created_at, u.id LIMIT $4"
        );
        let mut rows: Vec<LinkRow> = super::read!(self, |_d, c| c
            .fetch_all(
                &sql,
                &[org_id.into(), at.into(), id.into(), (limit + 1).into()]
            )
            .await?);
        let more = rows.len() as i64 > limit;
        rows.truncate(limit.max(0) as usize);
        Ok((rows, more))
    }

    /// Links user `user_id` of directory `directory_id` (of `org_id`) to
    /// `account` (an account of the org), or unlinks it with `None`: the
    /// column and the document's extension together, a new version of the
    /// user. Records `account.relinked` or `account.unlinked` (about the
    /// account it was linked to) unless nothing changed. `NotFound` when
    /// the directory, the user or the account is not the org's; the user
    /// as it now is.
    pub async fn set_user_link(
        &self,
        org_id: Uuid,
        directory_id: Uuid,
        user_id: Uuid,
        account: Option<Uuid>,
        audit: &AuditContext,
    ) -> Result<LinkRow> {
        let now = crate::time::now_micros();
        let audit = audit.clone();
        let changed = self.change_guard(super::user_cache::Change::User(user_id));
        let row = super::transaction!(self, |d, tx| {
            let sql = format!(
                "SELECT u.account_id, {} AS doc, u.version FROM users u \
                 JOIN directories dir ON dir.id = u.directory_id \
                 WHERE u.id = $1 AND u.directory_id = $2 AND dir.org_id = $3{}",
                match d {
                    Dialect::Sqlite => "u.doc",
                    Dialect::Postgres => "u.doc::text",
                },
                match d {
                    Dialect::Sqlite => "",
                    Dialect::Postgres => " FOR UPDATE OF u",
                }
            );
            let current: Option<(Option<Uuid>, String, i64)> = tx
                .fetch_optional(&sql, &[user_id.into(), directory_id.into(), org_id.into()])
                .await?;
            let (linked, doc, version) = current.ok_or(StoreError::NotFound)?;
            let target = match account.or(linked) {
                Some(id) => Some(
                    account_in(&mut *tx, org_id, id)
                        .await?
                        .ok_or(StoreError::NotFound)?,
                ),
                None => None,
            };
            if linked != account {
                let mut map = match serde_json::from_str(&doc) {
                    Ok(serde_json::Value::Object(map)) => map,
                    _ => serde_json::Map::new(),
                };
                crate::directory::account::set_link(&mut map, account);
                let doc = serde_json::Value::Object(map).to_string();
                let sql = format!(
                    "UPDATE users SET account_id = $1, doc = {}, version = $3, updated_at = $4 \
                     WHERE id = $5",
                    d.doc_in(2)
                );
                tx.execute(
                    &sql,
                    &[
                        account.into(),
                        doc.as_str().into(),
                        (version + 1).into(),
                        now.into(),
                        user_id.into(),
                    ],
                )
                .await?;
                if let (true, Some(target)) = (audit.enabled, &target) {
                    let action = match account {
                        Some(_) => Action::AccountRelinked,
                        None => Action::AccountUnlinked,
                    };
                    let event = account_event(&audit, action, target)
                        .detail(format!("SCIM user {user_id} of directory {directory_id}"));
                    insert_event(&mut *tx, &event).await?;
                }
            }
            let sql = format!(
                "SELECT {LINK_COLUMNS} FROM users u JOIN directories dir ON dir.id = u.directory_id \
                 WHERE u.id = $1"
            );
            let row: LinkRow = tx.fetch_one(&sql, &[user_id.into()]).await?;
            row
        });
        drop(changed);
        Ok(row)
    }

    /// Removes the SCIM records (users, and their group memberships) linked
    /// to managed account `account_id` of `org_id`, in every directory,
    /// without deprovisioning: the account is left as it is, active or
    /// not, so the identity provider can provision the user again (with a
    /// new email, say) and link back to it. Records `account.deleted`.
    /// The ids of the users removed; `NotFound` for an unknown account.
    pub async fn delete_account_records(
        &self,
        org_id: Uuid,
        account_id: Uuid,
        audit: &AuditContext,
    ) -> Result<std::result::Result<Vec<Uuid>, DeleteRecordsRefused>> {
        let linked = self.account_links(account_id).await?;
        let guards: Vec<_> = linked
            .iter()
            .map(|l| self.change_guard(super::user_cache::Change::User(l.user_id)))
            .collect();
        let audit = audit.clone();
        let deleted = super::transaction!(self, |_d, tx| {
            let account = account_in(&mut *tx, org_id, account_id)
                .await?
                .ok_or(StoreError::NotFound)?;
            if !account.managed {
                return Ok(Err(DeleteRecordsRefused::NotManaged));
            }
            let users: Vec<(Uuid, Uuid)> = tx
                .fetch_all(
                    "SELECT id, directory_id FROM users WHERE account_id = $1",
                    &[account_id.into()],
                )
                .await?;
            let mut directories = std::collections::BTreeSet::new();
            for (user_id, directory_id) in &users {
                tx.execute(
                    crate::store::sql::users::DELETE_MEMBERSHIPS_SQL,
                    &[(*user_id).into(), (*directory_id).into()],
                )
                .await?;
                tx.execute("DELETE FROM users WHERE id = $1", &[(*user_id).into()])
                    .await?;
                directories.insert(*directory_id);
            }
            for directory_id in directories {
                super::bump_list_epoch(&mut *tx, directory_id).await?;
            }
            if audit.enabled {
                let event = account_event(&audit, Action::AccountDeleted, &account).detail(
                    format!("{} SCIM record(s) removed, not deprovisioned", users.len()),
                );
                insert_event(&mut *tx, &event).await?;
            }
            Ok::<Vec<Uuid>, DeleteRecordsRefused>(users.into_iter().map(|(id, _)| id).collect())
        });
        drop(guards);
        let deleted = match deleted {
            Ok(deleted) => deleted,
            Err(refused) => return Ok(Err(refused)),
        };
        for id in &deleted {
            self.cache.changed(super::user_cache::Change::User(*id));
        }
        Ok(Ok(deleted))
    }
}
