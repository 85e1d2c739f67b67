//! Directories: the unit an identity provider provisions into.

use uuid::Uuid;

use super::audit::insert_event;
use super::user_cache::Change;
use super::{read, transaction, Result, Store, StoreError};
use crate::audit::{Action, AuditContext, Event, Target, TargetType};
use crate::time::now_micros;

/// A directory as admins see it: never its key, but its counts.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Directory {
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    pub key_id: String,
    pub created_at: i64,
    pub key_created_at: i64,
    /// When the key was last presented, to the minute; never, if `None`.
    pub key_last_used_at: Option<i64>,
    /// Kept by triggers in `directory_counts`, so reading it counts nothing.
    pub user_count: i64,
    pub group_count: i64,
    /// The directory's own request rate, when it has one.
    #[sqlx(flatten)]
    pub rate_limit: StoredRateLimit,
    /// SCIM users must have a primary email in a verified domain of the org.
    pub require_verified_domain: bool,
}

/// A token bucket: requests per second, and how many may come at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RateLimit {
    pub per_second: u32,
    pub burst: u32,
}

/// A directory's rate-limit columns, both set or neither.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredRateLimit {
    rate_limit_per_second: Option<i32>,
    rate_limit_burst: Option<i32>,
}

impl StoredRateLimit {
    /// The directory's own limit; None when the server's default applies.
    /// A value no admin could have set (not positive) counts as none.
    pub fn get(&self) -> Option<RateLimit> {
        let per_second = u32::try_from(self.rate_limit_per_second?).ok()?;
        let burst = u32::try_from(self.rate_limit_burst?).ok()?;
        (per_second > 0 && burst > 0).then_some(RateLimit { per_second, burst })
    }

    fn columns(limit: Option<RateLimit>) -> (Option<i32>, Option<i32>) {
        let to_sql = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
        match limit {
            Some(l) => (Some(to_sql(l.per_second)), Some(to_sql(l.burst))),
            None => (None, None),
        }
    }
}

/// What authentication needs to check a presented API key.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct DirectoryKey {
    pub directory_id: Uuid,
    pub org_id: Uuid,
    pub key_hash: String,
    #[sqlx(flatten)]
    pub rate_limit: StoredRateLimit,
    pub require_verified_domain: bool,
}

const DIRECTORY_COLUMNS: &str =
    "d.id, d.org_id, d.name, d.key_id, d.created_at, d.key_created_at, d.key_last_used_at, \
     d.rate_limit_per_second, d.rate_limit_burst, d.require_verified_domain, \
     CAST(COALESCE((SELECT SUM(c.users) FROM directory_counts c \
       WHERE c.directory_id = d.id), 0) AS BIGINT) AS user_count, \
     CAST(COALESCE((SELECT SUM(c.groups) FROM directory_counts c \
       WHERE c.directory_id = d.id), 0) AS BIGINT) AS group_count";

/// An event about a directory, in its org and under its own id.
fn directory_event(
    audit: &AuditContext,
    org_id: Uuid,
    (id, created_at): (Uuid, i64),
    action: Action,
    name: &str,
) -> Event {
    audit
        .in_directory(org_id, id)
        .event(action)
        .target(Target::named(TargetType::Directory, id, created_at, name))
}

impl Store {
    pub async fn create_directory(
        &self,
        org_id: Uuid,
        name: &str,
        key_id: &str,
        key_hash: &str,
        audit: &AuditContext,
    ) -> Result<Directory> {
        let now = now_micros();
        let id = Uuid::new_v4();
        transaction!(self, |_d, tx| {
            sqlx::query(
                "INSERT INTO directories (id, org_id, name, key_id, key_hash, created_at, key_created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6)",
            )
            .bind(id)
            .bind(org_id)
            .bind(name)
            .bind(key_id)
            .bind(key_hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if audit.enabled {
                let event =
                    directory_event(audit, org_id, (id, now), Action::DirectoryCreated, name)
                        .detail(format!("API key {key_id} issued"));
                insert_event(&mut *tx, &event).await?;
            }
        });
        Ok(Directory {
            id,
            org_id,
            name: name.to_owned(),
            key_id: key_id.to_owned(),
            created_at: now,
            key_created_at: now,
            key_last_used_at: None,
            user_count: 0,
            group_count: 0,
            rate_limit: StoredRateLimit::default(),
            require_verified_domain: false,
        })
    }

    pub async fn list_directories(&self, org_id: Uuid) -> Result<Vec<Directory>> {
        let sql = format!(
            "SELECT {DIRECTORY_COLUMNS} FROM directories d WHERE d.org_id = $1 ORDER BY d.created_at, d.id"
        );
        read!(self, |_d, c| Ok(sqlx::query_as(&sql)
            .bind(org_id)
            .fetch_all(&mut *c)
            .await?))
    }

    pub async fn get_directory(&self, org_id: Uuid, id: Uuid) -> Result<Directory> {
        let sql = format!(
            "SELECT {DIRECTORY_COLUMNS} FROM directories d WHERE d.org_id = $1 AND d.id = $2"
        );
        read!(self, |_d, c| sqlx::query_as(&sql)
            .bind(org_id)
            .bind(id)
            .fetch_optional(&mut *c)
            .await?
            .ok_or(StoreError::NotFound))
    }

    /// Ids and names of an org's directories (without the counts).
    pub async fn directory_names(&self, org_id: Uuid) -> Result<Vec<(Uuid, String)>> {
        read!(self, |_d, c| Ok(sqlx::query_as(
            "SELECT id, name FROM directories WHERE org_id = $1 ORDER BY created_at, id"
        )
        .bind(org_id)
        .fetch_all(&mut *c)
        .await?))
    }

    /// Deletes a directory with its users, groups and memberships.
    /// Its audit events stay (they outlive the directory until purged).
    pub async fn delete_directory(
        &self,
        org_id: Uuid,
        id: Uuid,
        audit: &AuditContext,
    ) -> Result<()> {
        // Its users are gone (and its key with them, so no request could
        // read them from memory anyway).
        let _changed = self.change_guard(Change::Directory(id));
        transaction!(self, |d, tx| {
            let (name, created_at): (String, i64) = sqlx::query_as(
                "SELECT name, created_at FROM directories WHERE org_id = $1 AND id = $2",
            )
            .bind(org_id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
            if audit.enabled {
                // The users' identifiers stop being current: keep finding
                // their history by them.
                let hex_id = match d {
                    super::Dialect::Sqlite => "lower(hex(u.id))",
                    super::Dialect::Postgres => "replace(u.id::text, '-', '')",
                };
                for value in [
                    "'i:' || u.user_name_ci".to_owned(),
                    "'x:' || u.external_id".to_owned(),
                    format!("'u:' || {hex_id}"),
                ] {
                    sqlx::query(&format!(
                        "INSERT INTO audit_subjects (org_id, value, target_id, target_created_at, \
                         recorded_at) SELECT $1, {value}, u.id, u.created_at, $2 FROM users u \
                         WHERE u.directory_id = $3 AND {value} IS NOT NULL \
                         ON CONFLICT (org_id, value, target_id) \
                         DO UPDATE SET recorded_at = excluded.recorded_at"
                    ))
                    .bind(org_id)
                    .bind(now_micros())
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                }
                sqlx::query(
                    "INSERT INTO audit_subjects (org_id, value, target_id, target_created_at, \
                     recorded_at) SELECT $1, 'i:' || e.value_ci, e.user_id, u.created_at, $2 \
                     FROM user_emails e JOIN users u ON u.id = e.user_id WHERE e.directory_id = $3 \
                     ON CONFLICT (org_id, value, target_id) \
                     DO UPDATE SET recorded_at = excluded.recorded_at",
                )
                .bind(org_id)
                .bind(now_micros())
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            // Memberships of the directory's groups go by cascade; users may
            // also be members of nothing else, since groups are per directory.
            sqlx::query("DELETE FROM directories WHERE org_id = $1 AND id = $2")
                .bind(org_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            // The cascade's triggers have counted the users and groups down.
            sqlx::query("DELETE FROM directory_counts WHERE directory_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if audit.enabled {
                let event = directory_event(
                    audit,
                    org_id,
                    (id, created_at),
                    Action::DirectoryDeleted,
                    &name,
                );
                insert_event(&mut *tx, &event).await?;
            }
        });
        Ok(())
    }

    /// Replaces the directory's key; the old one stops matching at once.
    pub async fn set_directory_key(
        &self,
        org_id: Uuid,
        id: Uuid,
        key_id: &str,
        key_hash: &str,
        audit: &AuditContext,
    ) -> Result<()> {
        transaction!(self, |_d, tx| {
            let (name, old_key, created_at): (String, String, i64) = sqlx::query_as(
                "SELECT name, key_id, created_at FROM directories WHERE org_id = $1 AND id = $2",
            )
            .bind(org_id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
            sqlx::query(
                "UPDATE directories SET key_id = $1, key_hash = $2, key_created_at = $3, \
                 key_last_used_at = NULL \
                 WHERE org_id = $4 AND id = $5",
            )
            .bind(key_id)
            .bind(key_hash)
            .bind(now_micros())
            .bind(org_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            if audit.enabled {
                let event = directory_event(
                    audit,
                    org_id,
                    (id, created_at),
                    Action::DirectoryKeyRotated,
                    &name,
                )
                .detail(format!("API key {key_id} replaces {old_key}"));
                insert_event(&mut *tx, &event).await?;
            }
        });
        Ok(())
    }

    /// Sets the directory's own request rate, or, with None, returns it
    /// to the server's default.
    pub async fn set_directory_rate_limit(
        &self,
        org_id: Uuid,
        id: Uuid,
        limit: Option<RateLimit>,
        audit: &AuditContext,
    ) -> Result<()> {
        let (per_second, burst) = StoredRateLimit::columns(limit);
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
                "UPDATE directories SET rate_limit_per_second = $1, rate_limit_burst = $2 \
                 WHERE org_id = $3 AND id = $4",
            )
            .bind(per_second)
            .bind(burst)
            .bind(org_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            if audit.enabled {
                let detail = match limit {
                    Some(l) => format!(
                        "rate limit set to {} requests per second, burst {}",
                        l.per_second, l.burst
                    ),
                    None => "rate limit returned to the server's default".to_owned(),
                };
                let event = directory_event(
                    audit,
                    org_id,
                    (id, created_at),
                    Action::DirectorySettingsChanged,
                    &name,
                )
                .detail(detail);
                insert_event(&mut *tx, &event).await?;
            }
        });
        Ok(())
    }

    /// Looks a presented key up by its visible key id.
    pub async fn find_directory_key(&self, key_id: &str) -> Result<Option<DirectoryKey>> {
        read!(self, |_d, c| {
            Ok(sqlx::query_as(
            "SELECT id AS directory_id, org_id, key_hash, rate_limit_per_second, rate_limit_burst, \
             require_verified_domain FROM directories WHERE key_id = $1"
        )
        .bind(key_id)
        .fetch_optional(&mut *c)
        .await?)
        })
    }

    /// Notes that a directory's key was just presented (see `auth`).
    pub async fn record_key_use(&self, key_id: &str) -> Result<()> {
        transaction!(self, |_d, tx| {
            sqlx::query("UPDATE directories SET key_last_used_at = $1 WHERE key_id = $2")
                .bind(now_micros())
                .bind(key_id)
                .execute(&mut *tx)
                .await?;
        });
        Ok(())
    }

    /// The directory's organisation, if the directory exists.
    pub async fn directory_org(&self, id: Uuid) -> Result<Option<Uuid>> {
        read!(self, |_d, c| Ok(sqlx::query_scalar(
            "SELECT org_id FROM directories WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(&mut *c)
        .await?))
    }

    /// The directory of `org_id`'s SCIM group `group_id`; none for an org
    /// group or an unknown id.
    pub async fn group_directory(&self, org_id: Uuid, group_id: Uuid) -> Result<Option<Uuid>> {
        read!(self, |_d, c| Ok(sqlx::query_scalar(
            "SELECT g.directory_id FROM groups g JOIN directories d ON d.id = g.directory_id \
             WHERE g.id = $1 AND d.org_id = $2"
        )
        .bind(group_id)
        .bind(org_id)
        .fetch_optional(&mut *c)
        .await?))
    }
}
