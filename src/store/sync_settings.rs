//! A directory's sync settings: one row per configured directory, with the
//! selected SCIM groups and domains in tables of their own so the sync
//! engine can join them, and a deleted group or domain leaves the
//! selection by cascade.

use uuid::Uuid;

use super::audit::insert_event;
use super::conn::{Conn, SqlBuilder};
use super::{read, transaction, Result, Store, StoreError};
use crate::audit::{Action, AuditContext, Target, TargetType};
use crate::directory::sync_settings::{
    DomainSelection, GroupUserLimit, SyncInterval, SyncMode, SyncScope, SyncSettings,
};
use crate::directory::DomainName;
use crate::time::now_micros;

/// A directory's settings as stored, with when they were last written
/// (none: never configured, the defaults).
#[derive(Clone, Debug)]
pub struct StoredSyncSettings {
    pub settings: SyncSettings,
    pub updated_at: Option<i64>,
}

/// Why settings were not written.
#[derive(Debug, thiserror::Error)]
pub enum SyncSettingsError {
    /// A selected domain of the org is not verified (named).
    #[error("domain {0} is not verified")]
    NotVerified(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(sqlx::FromRow)]
struct SettingsRow {
    enabled: bool,
    mode: String,
    interval_minutes: i64,
    scope_type: String,
    domains_type: String,
    email_new_users: bool,
    group_user_limit: Option<i64>,
    updated_at: i64,
}

/// A stored value that the rules refuse means the database was written
/// around the server: better a loud 500 than a sync with made-up settings.
fn corrupt(what: &str) -> StoreError {
    StoreError::Database(sqlx::Error::Protocol(format!(
        "stored sync settings hold an invalid {what}"
    )))
}

/// A selected group or domain deleted between its check and the insert
/// (another transaction, on PostgreSQL): the foreign key refuses the row.
/// The same answer as if it had been missing at the check.
fn deleted_meanwhile(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::ForeignKeyViolation => {
            StoreError::Missing("a selected group or domain was deleted meanwhile".to_owned())
        }
        _ => e.into(),
    }
}

async fn directory_row<C: Conn>(c: &mut C, org_id: Uuid, id: Uuid) -> Result<(String, i64)> {
    c.fetch_optional(
        "SELECT name, created_at FROM directories WHERE org_id = $1 AND id = $2",
        &[org_id.into(), id.into()],
    )
    .await?
    .ok_or(StoreError::NotFound)
}

async fn load<C: Conn>(c: &mut C, id: Uuid) -> Result<StoredSyncSettings> {
    let row: Option<SettingsRow> = c
        .fetch_optional(
            "SELECT enabled, mode, interval_minutes, scope_type, domains_type, email_new_users, \
             group_user_limit, updated_at FROM sync_settings WHERE directory_id = $1",
            &[id.into()],
        )
        .await?;
    let Some(row) = row else {
        return Ok(StoredSyncSettings {
            settings: SyncSettings::default(),
            updated_at: None,
        });
    };
    let scope = if row.scope_type == "groups" {
        let groups: Vec<(Uuid,)> = c
            .fetch_all(
                "SELECT group_id FROM sync_scope_groups WHERE directory_id = $1 \
                 ORDER BY position",
                &[id.into()],
            )
            .await?;
        SyncScope::Groups(groups.into_iter().map(|(g,)| g).collect())
    } else {
        SyncScope::All
    };
    let domains = if row.domains_type == "list" {
        let names: Vec<(String,)> = c
            .fetch_all(
                "SELECT name FROM sync_domains WHERE directory_id = $1 ORDER BY position",
                &[id.into()],
            )
            .await?;
        let names = names
            .iter()
            .map(|(n,)| DomainName::parse(n).map_err(|_| corrupt("domain")))
            .collect::<Result<Vec<_>>>()?;
        DomainSelection::List(names)
    } else {
        DomainSelection::All
    };
    Ok(StoredSyncSettings {
        settings: SyncSettings {
            enabled: row.enabled,
            mode: SyncMode::parse(&row.mode).ok_or_else(|| corrupt("mode"))?,
            interval: SyncInterval::parse(row.interval_minutes).map_err(|_| corrupt("interval"))?,
            scope,
            domains,
            email_new_users: row.email_new_users,
            group_user_limit: GroupUserLimit::parse(row.group_user_limit)
                .map_err(|_| corrupt("group user limit"))?,
        },
        updated_at: Some(row.updated_at),
    })
}

fn describe(s: &SyncSettings) -> String {
    let scope = match &s.scope {
        SyncScope::All => "all users".to_owned(),
        SyncScope::Groups(g) => format!("{} groups", g.len()),
    };
    let domains = match &s.domains {
        DomainSelection::All => "all verified domains".to_owned(),
        DomainSelection::List(d) => {
            let names: Vec<&str> = d.iter().map(DomainName::as_str).collect();
            format!("domains [{}]", names.join(", "))
        }
    };
    let limit = match s.group_user_limit.own() {
        Some(n) => n.to_string(),
        None => "default".to_owned(),
    };
    format!(
        "{}{} every {} minutes; {scope}; {domains}; emailNewUsers {}; groupUserLimit {limit}",
        if s.enabled { "" } else { "disabled; " },
        s.mode.as_str(),
        s.interval.minutes(),
        s.email_new_users
    )
}

impl Store {
    /// The directory's sync settings; the defaults if it was never
    /// configured. NotFound: no such directory in the org.
    pub async fn get_sync_settings(&self, org_id: Uuid, id: Uuid) -> Result<StoredSyncSettings> {
        read!(self, |_d, c| {
            directory_row(&mut *c, org_id, id).await?;
            Ok(load(&mut *c, id).await?)
        })
    }

    /// Replaces the directory's sync settings; starts nothing. Selected
    /// groups must be SCIM groups of this directory and selected domains
    /// verified domains of the org; an unknown one is named, and nothing
    /// is written then.
    pub async fn put_sync_settings(
        &self,
        org_id: Uuid,
        id: Uuid,
        settings: &SyncSettings,
        audit: &AuditContext,
    ) -> std::result::Result<StoredSyncSettings, SyncSettingsError> {
        let now = now_micros();
        let outcome: Result<std::result::Result<StoredSyncSettings, SyncSettingsError>> = async {
            Ok(transaction!(self, |d, tx| {
                let (name, created_at) = directory_row(&mut *tx, org_id, id).await?;
                'put: {
                    if let SyncScope::Groups(groups) = &settings.scope {
                        for group in groups {
                            let found: Option<(Uuid,)> = Conn::fetch_optional(
                                &mut *tx,
                                "SELECT id FROM groups WHERE directory_id = $1 AND id = $2",
                                &[id.into(), (*group).into()],
                            )
                            .await?;
                            if found.is_none() {
                                return Err(StoreError::Missing(format!(
                                    "group {group} not found in this directory"
                                )));
                            }
                        }
                    }
                    if let DomainSelection::List(names) = &settings.domains {
                        for domain in names {
                            let status: Option<(String,)> = Conn::fetch_optional(
                                &mut *tx,
                                "SELECT status FROM domains WHERE org_id = $1 AND name = $2",
                                &[org_id.into(), domain.as_str().into()],
                            )
                            .await?;
                            match status {
                                None => {
                                    return Err(StoreError::Missing(format!(
                                        "domain {domain} not found in this organisation"
                                    )))
                                }
                                Some((s,)) if s != "verified" => {
                                    break 'put Err(SyncSettingsError::NotVerified(
                                        domain.to_string(),
                                    ));
                                }
                                Some(_) => {}
                            }
                        }
                    }
                    let before = load(&mut *tx, id).await?;
                    // Replacing the row cascades to its groups and domains.
                    sqlx::query("DELETE FROM sync_settings WHERE directory_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(
                        "INSERT INTO sync_settings (directory_id, mode, interval_minutes, \
                         scope_type, domains_type, email_new_users, group_user_limit, updated_at, \
                         enabled) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(id)
                    .bind(settings.mode.as_str())
                    .bind(i64::from(settings.interval.minutes()))
                    .bind(match settings.scope {
                        SyncScope::All => "all",
                        SyncScope::Groups(_) => "groups",
                    })
                    .bind(match settings.domains {
                        DomainSelection::All => "all",
                        DomainSelection::List(_) => "list",
                    })
                    .bind(settings.email_new_users)
                    .bind(settings.group_user_limit.own().map(i64::from))
                    .bind(now)
                    .bind(settings.enabled)
                    .execute(&mut *tx)
                    .await?;
                    if let SyncScope::Groups(groups) = &settings.scope {
                        for (n, chunk) in groups.chunks(200).enumerate() {
                            let mut q = SqlBuilder::new(
                                d,
                                "INSERT INTO sync_scope_groups (directory_id, group_id, position) ",
                            );
                            q.push_values(chunk.iter().enumerate(), |(i, g)| {
                                vec![id.into(), (*g).into(), ((n * 200 + i) as i64).into()]
                            });
                            Conn::execute(&mut *tx, q.sql(), q.args())
                                .await
                                .map_err(deleted_meanwhile)?;
                        }
                    }
                    if let DomainSelection::List(names) = &settings.domains {
                        for (n, chunk) in names.chunks(200).enumerate() {
                            let mut q = SqlBuilder::new(
                                d,
                                "INSERT INTO sync_domains (directory_id, org_id, name, position) ",
                            );
                            q.push_values(chunk.iter().enumerate(), |(i, name)| {
                                vec![
                                    id.into(),
                                    org_id.into(),
                                    name.as_str().into(),
                                    ((n * 200 + i) as i64).into(),
                                ]
                            });
                            Conn::execute(&mut *tx, q.sql(), q.args())
                                .await
                                .map_err(deleted_meanwhile)?;
                        }
                    }
                    if audit.enabled {
                        let event = audit
                            .in_directory(org_id, id)
                            .event(Action::DirectorySettingsChanged)
                            .target(Target::named(TargetType::Directory, id, created_at, &name))
                            .changed(settings.changed_from(&before.settings))
                            .detail(format!("sync settings: {}", describe(settings)));
                        insert_event(&mut *tx, &event).await?;
                    }
                    Ok(load(&mut *tx, id).await?)
                }
            }))
        }
        .await;
        outcome?
    }
}
