//! Org-level accounts: the changes SCIM writes make to them (inside the
//! SCIM write's transaction) and the admin API's reads and writes.

use uuid::Uuid;

use super::conn::Conn;
use super::{Dialect, Result};
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
    org_id: Uuid,
    link: (Uuid, Uuid, Uuid),
    scim_email: &str,
    now: i64,
) -> Result<bool> {
    let (account_id, directory_id, user_id) = link;
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
