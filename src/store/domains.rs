//! An organisation's domains: adding one, recording each check of its
//! ownership, linking it to the one directory that manages it, deleting
//! it. Whether an account is managed is derived from its domain's status,
//! so none of these writes touches an account; they count them.

use uuid::Uuid;

use super::audit::insert_event;
use super::conn::Conn;
use super::error::OnConflict;
use super::{read, transaction, Result, Store, StoreError};
use crate::audit::{Action, AuditContext, Event, Target, TargetType};
use crate::directory::domain::CheckMethod;
use crate::directory::DomainName;
use crate::time::now_micros;

/// A domain as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct DomainRow {
    pub org_id: Uuid,
    pub name: String,
    pub token: String,
    /// `unverified` or `verified`.
    pub status: String,
    pub verified_at: Option<i64>,
    pub checked_at: Option<i64>,
    pub check_method: Option<String>,
    pub check_reason: Option<String>,
    pub directory_id: Option<Uuid>,
    pub created_at: i64,
}

impl DomainRow {
    pub fn is_verified(&self) -> bool {
        self.status == VERIFIED
    }
}

const VERIFIED: &str = "verified";
const UNVERIFIED: &str = "unverified";

const DOMAIN_COLUMNS: &str = "org_id, name, token, status, verified_at, checked_at, \
     check_method, check_reason, directory_id, created_at";

/// What recording a check changed.
#[derive(Clone, Debug)]
pub struct CheckRecorded {
    pub domain: DomainRow,
    /// Accounts that were managed under the domain and no longer are
    /// (it was verified and the check failed); 0 otherwise.
    pub accounts_now_external: i64,
}

/// A domain's directory, changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryMoved {
    pub previous: Option<Uuid>,
    /// The org's accounts with an email in the domain.
    pub accounts_moved: i64,
}

/// Why a domain could not be linked to a directory.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("domain not found")]
    UnknownDomain,
    #[error("directory not found")]
    UnknownDirectory,
    #[error("the domain is not verified")]
    NotVerified,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for LinkError {
    fn from(e: sqlx::Error) -> Self {
        LinkError::Store(e.into())
    }
}

/// An event about a domain: targets have UUIDs, a domain has its name, so
/// the name is the target's identifier (and in the detail of each event).
fn domain_event(audit: &AuditContext, org_id: Uuid, action: Action, name: &str) -> Event {
    let mut target = Target::new(TargetType::Domain, None);
    target.identifier = Some(name.to_owned());
    audit.in_org(org_id).event(action).target(target)
}

/// Accounts of the org whose email is in the domain.
async fn count_accounts<C: Conn>(c: &mut C, org_id: Uuid, name: &str) -> Result<i64> {
    let (n,): (i64,) = c
        .fetch_one(
            "SELECT COUNT(*) FROM accounts WHERE org_id = $1 AND email_domain = $2",
            &[org_id.into(), name.into()],
        )
        .await?;
    Ok(n)
}

impl Store {
    /// Adds an unverified domain with its token; a domain the org already
    /// has is `Conflict("domain")`.
    pub async fn add_domain(
        &self,
        org_id: Uuid,
        name: &DomainName,
        token: &str,
        audit: &AuditContext,
    ) -> Result<DomainRow> {
        let row = DomainRow {
            org_id,
            name: name.as_str().to_owned(),
            token: token.to_owned(),
            status: UNVERIFIED.to_owned(),
            verified_at: None,
            checked_at: None,
            check_method: None,
            check_reason: None,
            directory_id: None,
            created_at: now_micros(),
        };
        transaction!(self, |_d, tx| {
            sqlx::query(
                "INSERT INTO domains (org_id, name, token, status, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(org_id)
            .bind(&row.name)
            .bind(token)
            .bind(UNVERIFIED)
            .bind(row.created_at)
            .execute(&mut *tx)
            .await
            .on_conflict("domain")?;
            if audit.enabled {
                let event = domain_event(audit, org_id, Action::DomainAdded, &row.name)
                    .detail(format!("domain {} added, unverified", row.name));
                insert_event(&mut *tx, &event).await?;
            }
        });
        Ok(row)
    }

    pub async fn list_domains(&self, org_id: Uuid) -> Result<Vec<DomainRow>> {
        let sql = format!("SELECT {DOMAIN_COLUMNS} FROM domains WHERE org_id = $1 ORDER BY name");
        read!(self, |_d, c| Ok(sqlx::query_as(&sql)
            .bind(org_id)
            .fetch_all(&mut *c)
            .await?))
    }

    pub async fn get_domain(&self, org_id: Uuid, name: &DomainName) -> Result<DomainRow> {
        let sql = format!("SELECT {DOMAIN_COLUMNS} FROM domains WHERE org_id = $1 AND name = $2");
        read!(self, |_d, c| sqlx::query_as(&sql)
            .bind(org_id)
            .bind(name.as_str())
            .fetch_optional(&mut *c)
            .await?
            .ok_or(StoreError::NotFound))
    }

    /// Names of the domains a directory manages.
    pub async fn directory_domains(&self, directory_id: Uuid) -> Result<Vec<String>> {
        read!(self, |_d, c| Ok(sqlx::query_scalar(
            "SELECT name FROM domains WHERE directory_id = $1 ORDER BY name"
        )
        .bind(directory_id)
        .fetch_all(&mut *c)
        .await?))
    }

    /// Whether `name` (a lowercased email domain) is a verified domain of
    /// the org: one primary-key look-up.
    pub async fn is_verified_domain(&self, org_id: Uuid, name: &str) -> Result<bool> {
        read!(self, |_d, c| {
            let status: Option<String> =
                sqlx::query_scalar("SELECT status FROM domains WHERE org_id = $1 AND name = $2")
                    .bind(org_id)
                    .bind(name)
                    .fetch_optional(&mut *c)
                    .await?;
            Ok(status.as_deref() == Some(VERIFIED))
        })
    }

    /// Accounts of the org with an email in the domain (managed while the
    /// domain is verified).
    pub async fn count_domain_accounts(&self, org_id: Uuid, name: &str) -> Result<i64> {
        read!(self, |_d, c| count_accounts(c, org_id, name).await)
    }

    /// Records the outcome of a check made just now. A success verifies
    /// the domain (`domain.verified`); a failure of a verified domain
    /// unverifies it (`domain.unverified`), and its accounts stop being
    /// managed. A failed check of a domain that was not verified changes
    /// only its last check, and records no event: nothing it governs
    /// changed.
    pub async fn record_domain_check(
        &self,
        org_id: Uuid,
        name: &DomainName,
        method: CheckMethod,
        verified: bool,
        reason: &str,
        audit: &AuditContext,
    ) -> Result<CheckRecorded> {
        let now = now_micros();
        let sql = format!("SELECT {DOMAIN_COLUMNS} FROM domains WHERE org_id = $1 AND name = $2");
        let recorded = transaction!(self, |_d, tx| {
            let mut row: DomainRow = sqlx::query_as(&sql)
                .bind(org_id)
                .bind(name.as_str())
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound)?;
            let was_verified = row.is_verified();
            // Another organisation holding the domain wins: a domain is
            // verified by one organisation at a time (the index
            // `domains_verified_once` settles a race of two checks).
            let held_elsewhere: Option<(Uuid,)> = if verified && !was_verified {
                sqlx::query_as(
                    "SELECT org_id FROM domains WHERE name = $1 AND org_id <> $2 \
                     AND status = 'verified'",
                )
                .bind(name.as_str())
                .bind(org_id)
                .fetch_optional(&mut *tx)
                .await?
            } else {
                None
            };
            let (verified, reason) = match held_elsewhere {
                Some(_) => (
                    false,
                    format!(
                        "{} is already verified by another organisation; it must remove \
                         the domain before this one can verify it",
                        name.as_str()
                    ),
                ),
                None => (verified, reason.to_owned()),
            };
            let reason = reason.as_str();
            row.status = if verified { VERIFIED } else { UNVERIFIED }.to_owned();
            row.checked_at = Some(now);
            row.check_method = Some(method.as_str().to_owned());
            row.check_reason = Some(reason.to_owned());
            row.verified_at = match (was_verified, verified) {
                (true, true) => row.verified_at,
                (false, true) => Some(now),
                (_, false) => None,
            };
            sqlx::query(
                "UPDATE domains SET status = $1, verified_at = $2, checked_at = $3, \
                 check_method = $4, check_reason = $5 WHERE org_id = $6 AND name = $7",
            )
            .bind(&row.status)
            .bind(row.verified_at)
            .bind(now)
            .bind(method.as_str())
            .bind(reason)
            .bind(org_id)
            .bind(name.as_str())
            .execute(&mut *tx)
            .await
            .on_conflict("domain")?;
            let accounts_now_external = if was_verified && !verified {
                count_accounts(&mut *tx, org_id, name.as_str()).await?
            } else {
                0
            };
            let action = match (was_verified, verified) {
                (_, true) => Some(Action::DomainVerified),
                (true, false) => Some(Action::DomainUnverified),
                (false, false) => None,
            };
            if let Some(action) = action.filter(|_| audit.enabled) {
                let detail = if verified {
                    format!("verified by {}: {reason}", method.as_str())
                } else {
                    format!(
                        "check by {} failed: {reason}; {accounts_now_external} accounts no longer managed",
                        method.as_str()
                    )
                };
                let event = domain_event(audit, org_id, action, name.as_str()).detail(detail);
                insert_event(&mut *tx, &event).await?;
            }
            CheckRecorded {
                domain: row,
                accounts_now_external,
            }
        });
        Ok(recorded)
    }

    /// Deletes a domain; answers how many accounts were managed under it
    /// (0 unless it was verified). The accounts stay, external.
    pub async fn delete_domain(
        &self,
        org_id: Uuid,
        name: &DomainName,
        audit: &AuditContext,
    ) -> Result<i64> {
        let external = transaction!(self, |_d, tx| {
            let status: String =
                sqlx::query_scalar("SELECT status FROM domains WHERE org_id = $1 AND name = $2")
                    .bind(org_id)
                    .bind(name.as_str())
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or(StoreError::NotFound)?;
            sqlx::query("DELETE FROM domains WHERE org_id = $1 AND name = $2")
                .bind(org_id)
                .bind(name.as_str())
                .execute(&mut *tx)
                .await?;
            let external = if status == VERIFIED {
                count_accounts(&mut *tx, org_id, name.as_str()).await?
            } else {
                0
            };
            if audit.enabled {
                let event = domain_event(audit, org_id, Action::DomainDeleted, name.as_str())
                    .detail(format!(
                        "domain {name} ({status}) deleted; {external} accounts no longer managed"
                    ));
                insert_event(&mut *tx, &event).await?;
            }
            external
        });
        Ok(external)
    }

    /// Links a verified domain to a directory of the same org, or unlinks
    /// it (`None`). Answers the previous directory and the accounts of the
    /// org in the domain.
    pub async fn set_domain_directory(
        &self,
        org_id: Uuid,
        name: &DomainName,
        directory_id: Option<Uuid>,
        audit: &AuditContext,
    ) -> std::result::Result<DirectoryMoved, LinkError> {
        let outcome: Result<std::result::Result<DirectoryMoved, LinkError>> = async {
            Ok(transaction!(self, |_d, tx| {
                'link: {
                    let found: Option<(String, Option<Uuid>)> = sqlx::query_as(
                        "SELECT status, directory_id FROM domains WHERE org_id = $1 AND name = $2",
                    )
                    .bind(org_id)
                    .bind(name.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some((status, previous)) = found else {
                        break 'link Err(LinkError::UnknownDomain);
                    };
                    let mut directory_name = None;
                    if let Some(dir) = directory_id {
                        let dir_name: Option<String> = sqlx::query_scalar(
                            "SELECT name FROM directories WHERE org_id = $1 AND id = $2",
                        )
                        .bind(org_id)
                        .bind(dir)
                        .fetch_optional(&mut *tx)
                        .await?;
                        let Some(dir_name) = dir_name else {
                            break 'link Err(LinkError::UnknownDirectory);
                        };
                        if status != VERIFIED {
                            break 'link Err(LinkError::NotVerified);
                        }
                        directory_name = Some(dir_name);
                    }
                    sqlx::query(
                        "UPDATE domains SET directory_id = $1 WHERE org_id = $2 AND name = $3",
                    )
                    .bind(directory_id)
                    .bind(org_id)
                    .bind(name.as_str())
                    .execute(&mut *tx)
                    .await?;
                    let accounts_moved = count_accounts(&mut *tx, org_id, name.as_str()).await?;
                    if audit.enabled && previous != directory_id {
                        let to = match (directory_id, &directory_name) {
                            (Some(id), Some(n)) => format!("directory {n} ({id})"),
                            _ => "no directory".to_owned(),
                        };
                        let from = previous.map_or_else(
                            || "no directory".to_owned(),
                            |p| format!("directory {p}"),
                        );
                        let mut event = domain_event(
                            audit,
                            org_id,
                            Action::DomainDirectoryChanged,
                            name.as_str(),
                        )
                        .detail(format!(
                            "domain {name} moved from {from} to {to}; {accounts_moved} accounts"
                        ));
                        event.directory_id = directory_id.or(previous);
                        insert_event(&mut *tx, &event).await?;
                    }
                    Ok(DirectoryMoved {
                        previous,
                        accounts_moved,
                    })
                }
            }))
        }
        .await;
        outcome?
    }

    /// Sets whether the directory's SCIM users must have a primary email
    /// in a verified domain of the org.
    pub async fn set_directory_require_verified_domain(
        &self,
        org_id: Uuid,
        id: Uuid,
        required: bool,
        audit: &AuditContext,
    ) -> Result<()> {
        transaction!(self, |_d, tx| {
            let (name, created_at): (String, i64) = sqlx::query_as(
                "SELECT name, created_at FROM directories WHERE org_id = $1 AND id = $2",
            )
            .bind(org_id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
            sqlx::query(
                "UPDATE directories SET require_verified_domain = $1 WHERE org_id = $2 AND id = $3",
            )
            .bind(required)
            .bind(org_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            if audit.enabled {
                let event = audit
                    .in_directory(org_id, id)
                    .event(Action::DirectorySettingsChanged)
                    .target(Target::named(TargetType::Directory, id, created_at, &name))
                    .detail(format!("requireVerifiedDomain set to {required}"));
                insert_event(&mut *tx, &event).await?;
            }
        });
        Ok(())
    }
}
