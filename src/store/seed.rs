//! Bulk loading of synthetic users and groups, for measuring large
//! directories (`scimd seed`). Set-based inserts in large batches; the
//! documents are the same shape `POST /Users` stores.

use serde_json::json;
use uuid::Uuid;

use super::user_cache::Change;
use super::{transaction, Result, Store};
use crate::time::now_micros;

/// Rows per INSERT: 6 values each stays under SQLite's 32,766 bound
/// variables and PostgreSQL's 65,535.
const BATCH: usize = 4_000;

/// The userName of the `i`-th seeded user (so benchmarks can look them up).
pub fn seeded_user_name(i: u64) -> String {
    format!("seed-{i}@example.com")
}

struct SeedUser {
    id: Uuid,
    user_name: String,
    doc: String,
    created_at: i64,
}

impl Store {
    /// Inserts users `first..first+count` (see [`seeded_user_name`]) and
    /// returns their ids.
    pub async fn seed_users(
        &self,
        directory_id: Uuid,
        first: u64,
        count: u64,
    ) -> Result<Vec<Uuid>> {
        let mut ids = Vec::with_capacity(count as usize);
        let base_time = now_micros();
        let mut i = first;
        while i < first + count {
            let n = BATCH.min((first + count - i) as usize);
            let batch: Vec<SeedUser> = (i..i + n as u64)
                .map(|k| {
                    let user_name = seeded_user_name(k);
                    let doc = json!({
                        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                        "userName": user_name,
                        "name": { "givenName": "Seed", "familyName": format!("User {k}") },
                        "displayName": format!("Seed User {k}"),
                        "emails": [{ "value": user_name, "type": "work", "primary": true }],
                        "active": true,
                    })
                    .to_string();
                    SeedUser {
                        id: Uuid::new_v4(),
                        user_name,
                        doc,
                        // Distinct, increasing creation times keep list order
                        // equal to seed order.
                        created_at: base_time + k as i64,
                    }
                })
                .collect();
            transaction!(self, |d, tx| {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO users (id, directory_id, user_name, user_name_ci, external_id, \
                     active, primary_email, display_name, doc, version, created_at, updated_at) ",
                );
                q.push_values(&batch, |mut row, u| {
                    row.push_bind(u.id)
                        .push_bind(directory_id)
                        .push_bind(u.user_name.as_str())
                        .push_bind(u.user_name.as_str())
                        .push("NULL")
                        .push("TRUE")
                        .push_bind(u.user_name.as_str())
                        .push("NULL")
                        .push_bind(u.doc.as_str());
                    if d == super::Dialect::Postgres {
                        row.push_unseparated("::jsonb");
                    }
                    row.push("1")
                        .push_bind(u.created_at)
                        .push_bind(u.created_at);
                });
                q.build().execute(&mut *tx).await?;
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO user_emails (user_id, directory_id, value_ci) ",
                );
                q.push_values(&batch, |mut row, u| {
                    row.push_bind(u.id)
                        .push_bind(directory_id)
                        .push_bind(u.user_name.as_str());
                });
                q.build().execute(&mut *tx).await?;
                // Seeded rows may sort before rows already listed.
                super::bump_list_epoch(&mut *tx, directory_id).await?;
            });
            ids.extend(batch.iter().map(|u| u.id));
            i += n as u64;
        }
        Ok(ids)
    }

    /// Inserts one group `seed-big` holding all of `members`.
    pub async fn seed_big_group(&self, directory_id: Uuid, members: &[Uuid]) -> Result<()> {
        let id = Uuid::new_v4();
        let doc = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "seed-big",
        })
        .to_string();
        transaction!(self, |d, tx| {
            let sql = format!(
                "INSERT INTO groups (id, directory_id, display_name, display_name_ci, \
                 external_id, doc, version, created_at, updated_at) \
                 VALUES ($1, $2, 'seed-big', 'seed-big', NULL, {}, 1, $4, $4)",
                d.doc_in(3)
            );
            sqlx::query(&sql)
                .bind(id)
                .bind(directory_id)
                .bind(&doc)
                .bind(now_micros())
                .execute(&mut *tx)
                .await?;
            for chunk in members.chunks(BATCH) {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO group_members (group_id, member_id, member_type) ",
                );
                q.push_values(chunk, |mut row, m| {
                    row.push_bind(id).push_bind(*m).push("'User'");
                });
                q.build().execute(&mut *tx).await?;
            }
            super::bump_list_epoch(&mut *tx, directory_id).await?;
        });
        self.cache.changed(Change::Directory(directory_id));
        Ok(())
    }

    /// Inserts `count` groups named `seed-group-{k}`, each with `members`
    /// drawn round-robin from `user_ids`.
    pub async fn seed_groups(
        &self,
        directory_id: Uuid,
        count: u64,
        user_ids: &[Uuid],
        members: usize,
    ) -> Result<()> {
        let now = now_micros();
        let mut next_member = 0usize;
        for k in 0..count {
            let id = Uuid::new_v4();
            let name = format!("seed-group-{k}");
            let doc = json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": name,
            })
            .to_string();
            let chosen: Vec<Uuid> = if user_ids.is_empty() {
                Vec::new()
            } else {
                (0..members.min(user_ids.len()))
                    .map(|j| user_ids[(next_member + j) % user_ids.len()])
                    .collect()
            };
            next_member = next_member.wrapping_add(chosen.len());
            transaction!(self, |d, tx| {
                let sql = format!(
                    "INSERT INTO groups (id, directory_id, display_name, display_name_ci, \
                     external_id, doc, version, created_at, updated_at) \
                     VALUES ($1, $2, $3, $3, NULL, {}, 1, $5, $5)",
                    d.doc_in(4)
                );
                sqlx::query(&sql)
                    .bind(id)
                    .bind(directory_id)
                    .bind(&name)
                    .bind(&doc)
                    .bind(now + k as i64)
                    .execute(&mut *tx)
                    .await?;
                for chunk in chosen.chunks(BATCH) {
                    let mut q = sqlx::QueryBuilder::new(
                        "INSERT INTO group_members (group_id, member_id, member_type) ",
                    );
                    q.push_values(chunk, |mut row, m| {
                        row.push_bind(id).push_bind(*m).push("'User'");
                    });
                    q.push(" ON CONFLICT DO NOTHING");
                    q.build().execute(&mut *tx).await?;
                }
            });
        }
        // Seeded rows may sort before groups already listed.
        transaction!(self, |_d, tx| {
            super::bump_list_epoch(&mut *tx, directory_id).await?;
        });
        // The members' `groups` changed: once, after every group committed,
        // ends whatever was read before.
        self.cache.changed(Change::Directory(directory_id));
        Ok(())
    }
}

/// Events per statement when seeding the audit log.
const AUDIT_BATCH: u64 = 200_000;

/// The id of the `k`-th seeded audit target (so reports can be asked for
/// one user): `00000000-0000-0000-0000-<k in hex>`.
pub fn seeded_audit_user_id(k: u64) -> Uuid {
    Uuid::from_u128(u128::from(k))
}

impl Store {
    /// Inserts `count` synthetic user events into a directory, spread
    /// evenly over the `span_days` before now, about `users` users in turn
    /// (userName [`seeded_user_name`], externalId `ext-<k>`, id
    /// [`seeded_audit_user_id`]): created, updated, deactivated,
    /// reactivated, with one failed create in fifty (no target, found by
    /// the identifiers it tried). The users are found by their userName
    /// and externalId as deleted users are; user k was created k
    /// microseconds after `users` microseconds before the first event. Each statement
    /// generates its rows in SQL, so loading millions of events binds a
    /// handful of values.
    pub async fn seed_audit_events(
        &self,
        org_id: Uuid,
        directory_id: Uuid,
        count: u64,
        users: u64,
        span_days: u32,
    ) -> Result<()> {
        let users = users.max(1) as i64;
        let span = i64::from(span_days.max(1)) * 86_400_000_000;
        let step = (span / count.max(1) as i64).max(1);
        let start = now_micros() - span;
        // Ids only need to be unique per org and time.
        let id_base = i64::from(rand::random::<u32>()) << 24;
        let mut first = 0u64;
        while first < count {
            let end = (first + AUDIT_BATCH).min(count);
            transaction!(self, |d, tx| {
                let (source, target_id) = match d {
                    super::Dialect::Sqlite => (
                        "WITH RECURSIVE s(i) AS (SELECT $1 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < $2) SELECT",
                        "unhex(printf('%032x', i % $7))",
                    ),
                    super::Dialect::Postgres => (
                        "SELECT",
                        "lpad(to_hex(i % $7), 32, '0')::uuid",
                    ),
                };
                let from = match d {
                    super::Dialect::Sqlite => "FROM s",
                    super::Dialect::Postgres => {
                        "FROM generate_series($1::bigint, $2::bigint - 1) AS s(i)"
                    }
                };
                let sql = format!(
                    "INSERT INTO audit_events (occurred_at, id, org_id, directory_id, actor_type, \
                     actor_id, source_ip, request_id, action, outcome, status, scim_type, detail, \
                     target_type, target_id, target_created_at, target_identifier, identifier_ci, \
                     email_ci, external_id, changed_attributes, members_added, members_removed) \
                     {source} $3 + i * $4, $8 + i, $5, $6, 'api_key', '5eed5eed5eed5eed', '127.0.0.1', NULL, \
                     CASE WHEN i % 50 = 49 THEN 'user.created' ELSE \
                     CASE (i / $7) % 4 WHEN 0 THEN 'user.created' WHEN 1 THEN 'user.updated' \
                     WHEN 2 THEN 'user.deactivated' ELSE 'user.reactivated' END END, \
                     CASE WHEN i % 50 = 49 THEN 'failure' ELSE 'success' END, \
                     CASE WHEN i % 50 = 49 THEN 409 ELSE NULL END, \
                     CASE WHEN i % 50 = 49 THEN 'uniqueness' ELSE NULL END, \
                     CASE WHEN i % 50 = 49 THEN 'userName is already in use in this directory' ELSE NULL END, \
                     'user', CASE WHEN i % 50 = 49 THEN NULL ELSE {target_id} END, \
                     CASE WHEN i % 50 = 49 THEN NULL ELSE $3 - $7 + i % $7 END, \
                     'seed-' || (i % $7) || '@example.com', \
                     CASE WHEN i % 50 = 49 THEN 'seed-' || (i % $7) || '@example.com' ELSE NULL END, \
                     CASE WHEN i % 50 = 49 THEN 'seed-' || (i % $7) || '@example.com' ELSE NULL END, \
                     CASE WHEN i % 50 = 49 THEN 'ext-' || (i % $7) ELSE NULL END, \
                     CASE (i / $7) % 4 WHEN 0 THEN NULL WHEN 1 THEN 'displayName' ELSE 'active' END, \
                     NULL, NULL {from}"
                );
                sqlx::query(&sql)
                    .bind(first as i64)
                    .bind(end as i64)
                    .bind(start)
                    .bind(step)
                    .bind(org_id)
                    .bind(directory_id)
                    .bind(users)
                    .bind(id_base)
                    .execute(&mut *tx)
                    .await?;
            });
            first = end;
        }
        let now = now_micros();
        let mut first = 0i64;
        while first < users {
            let end = (first + AUDIT_BATCH as i64).min(users);
            transaction!(self, |d, tx| {
                let (series, target_id) = match d {
                    super::Dialect::Sqlite => (
                        "(WITH RECURSIVE s(i) AS (SELECT $3 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < $4) SELECT i FROM s)",
                        "unhex(printf('%032x', i))",
                    ),
                    super::Dialect::Postgres => (
                        "(SELECT generate_series($3::bigint, $4::bigint - 1) AS i)",
                        "lpad(to_hex(i), 32, '0')::uuid",
                    ),
                };
                for value in ["'i:seed-' || i || '@example.com'", "'x:ext-' || i"] {
                    let sql = format!(
                        "INSERT INTO audit_subjects (org_id, value, target_id, target_created_at, \
                         recorded_at) SELECT $1, {value}, {target_id}, $5 - $6 + i, $2 \
                         FROM {series} AS s WHERE TRUE \
                         ON CONFLICT (org_id, value, target_id) DO NOTHING"
                    );
                    sqlx::query(&sql)
                        .bind(org_id)
                        .bind(now)
                        .bind(first)
                        .bind(end)
                        .bind(start)
                        .bind(users)
                        .execute(&mut *tx)
                        .await?;
                }
            });
            first = end;
        }
        // PostgreSQL plans report queries from statistics; after a bulk
        // load, gather them now rather than when autovacuum gets to it.
        if self.dialect() == super::Dialect::Postgres {
            transaction!(self, |_d, tx| {
                sqlx::query("ANALYZE audit_events")
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("ANALYZE audit_subjects")
                    .execute(&mut *tx)
                    .await?;
            });
        }
        Ok(())
    }
}
