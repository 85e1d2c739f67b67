//! Bulk loading of synthetic users and groups, for measuring large
//! directories (`scimd seed`). Set-based inserts in large batches; the
//! rows are those SCIM writes leave: documents of the shape `POST /Users`
//! stores, each user linked to an org-level account by its email, and
//! (when asked) nested groups and product grants as the admin API makes
//! them, so a sync run over a seeded directory has the work a real one
//! has.

use std::collections::HashMap;
use std::time::Instant;

use serde_json::{json, Value};
use uuid::Uuid;

use super::conn::Conn;
use super::user_cache::Change;
use super::{read, transaction, Result, Store, StoreError};
use crate::audit::AuditContext;
use crate::directory::access::{ProductKey, Role, SiteUrl};
use crate::directory::account::{email_domain, set_link};
use crate::time::now_micros;

/// Rows per INSERT: 9 bound values a user stays under SQLite's 32,766
/// bound variables (and PostgreSQL's 65,535).
const BATCH: usize = 3_000;

/// The site `--grants` grants a product of (made when the org lacks it).
pub const SEED_SITE: &str = "seed-site";
/// Its URL.
pub const SEED_SITE_URL: &str = "https://seed-site.atlassian.net";
/// The product of [`SEED_SITE`] the seeded grants are on.
pub const SEED_PRODUCT: &str = "jira-software";
/// Groups per chain of nesting (see [`nesting_pairs`]).
pub const NESTING_CHAIN: usize = 4;

/// The userName of the `i`-th seeded user (so benchmarks can look them up).
pub fn seeded_user_name(i: u64) -> String {
    format!("seed-{i}@example.com")
}

/// What `scimd seed` loads into a directory.
#[derive(Clone, Debug, Default)]
pub struct SeedPlan {
    /// Users to add, named [`seeded_user_name`] from `first`.
    pub users: u64,
    pub first: u64,
    /// Groups `seed-group-{k}` to add.
    pub groups: u64,
    /// Members of each group, drawn in turn from the users added.
    pub members_per_group: usize,
    /// Members of one more group `seed-big` (the first users added).
    pub big_group: usize,
    /// Groups (the first added) granted [`SEED_PRODUCT`] on [`SEED_SITE`]
    /// with role `user`.
    pub grants: usize,
    /// Groups made members of other seeded groups (see [`nesting_pairs`]).
    pub nesting: usize,
}

/// What a seed wrote, with how long each step took.
#[derive(Clone, Debug, Default)]
pub struct Seeded {
    pub user_ids: Vec<Uuid>,
    pub group_ids: Vec<Uuid>,
    /// [`SEED_SITE`], when grants were asked for.
    pub site_id: Option<Uuid>,
    /// `(parent, child)` group ids of the nesting added.
    pub nested: Vec<(Uuid, Uuid)>,
    /// Each step, said as `scimd seed` prints it, with its seconds.
    pub steps: Vec<(String, f64)>,
}

/// The nesting `--nesting n` adds over `groups` seeded groups, as
/// `(parent, child)` positions: chains of [`NESTING_CHAIN`] groups, each
/// a member of the one before it (0 ⊃ 1 ⊃ 2 ⊃ 3, 4 ⊃ 5 ⊃ 6 ⊃ 7, …), so
/// a group flattens to at most four groups' members and a benchmark's
/// groups stay under the sync engine's 10,000-user limit. Refused when
/// the groups cannot hold `n` such links.
pub fn nesting_pairs(groups: usize, n: usize) -> std::result::Result<Vec<(usize, usize)>, String> {
    let most = groups - groups.div_ceil(NESTING_CHAIN);
    if n > most {
        return Err(format!(
            "--nesting {n} needs more groups: {groups} groups nest at most {most} \
             (chains of {NESTING_CHAIN})"
        ));
    }
    Ok((1..groups)
        .filter(|k| k % NESTING_CHAIN != 0)
        .take(n)
        .map(|k| (k - 1, k))
        .collect())
}

impl SeedPlan {
    /// Refuses a plan that cannot be loaded as asked, before anything is
    /// written.
    pub fn check(&self) -> std::result::Result<(), String> {
        let groups = usize::try_from(self.groups).unwrap_or(usize::MAX);
        if self.grants > groups {
            return Err(format!(
                "--grants {} needs as many groups (--groups is {groups})",
                self.grants
            ));
        }
        nesting_pairs(groups, self.nesting).map(|_| ())
    }
}

struct SeedUser {
    id: Uuid,
    /// The new account's id, used unless the org has an account with the
    /// user's email.
    account_id: Uuid,
    user_name: String,
    display_name: String,
    k: u64,
    created_at: i64,
}

impl Store {
    /// Loads `plan` into a directory (see [`SeedPlan`]); a plan that
    /// cannot be loaded is refused before anything is written.
    pub async fn seed(
        &self,
        directory_id: Uuid,
        plan: &SeedPlan,
        audit: &AuditContext,
    ) -> Result<Seeded> {
        plan.check().map_err(StoreError::Refused)?;
        let org_id = self
            .directory_org(directory_id)
            .await?
            .ok_or_else(|| StoreError::Missing(format!("no directory {directory_id}")))?;
        let mut seeded = Seeded::default();
        let started = Instant::now();
        seeded.user_ids = self
            .seed_users(directory_id, plan.first, plan.users)
            .await?;
        seeded.steps.push((
            format!("{} users, linked to accounts", plan.users),
            started.elapsed().as_secs_f64(),
        ));
        let started = Instant::now();
        seeded.group_ids = self
            .seed_groups(
                directory_id,
                plan.groups,
                &seeded.user_ids,
                plan.members_per_group,
            )
            .await?;
        seeded.steps.push((
            format!("{} groups", plan.groups),
            started.elapsed().as_secs_f64(),
        ));
        if plan.nesting > 0 {
            let started = Instant::now();
            seeded.nested = self
                .seed_nesting(directory_id, &seeded.group_ids, plan.nesting)
                .await?;
            seeded.steps.push((
                format!("{} groups nested in others", seeded.nested.len()),
                started.elapsed().as_secs_f64(),
            ));
        }
        if plan.grants > 0 {
            let started = Instant::now();
            let granted = seeded.group_ids.get(..plan.grants).unwrap_or_default();
            seeded.site_id = Some(self.seed_grants(org_id, granted, audit).await?);
            seeded.steps.push((
                format!(
                    "{} groups granted {SEED_PRODUCT} on {SEED_SITE}",
                    granted.len()
                ),
                started.elapsed().as_secs_f64(),
            ));
        }
        if plan.big_group > 0 {
            let started = Instant::now();
            let members = seeded
                .user_ids
                .get(..plan.big_group.min(seeded.user_ids.len()))
                .unwrap_or_default();
            self.seed_big_group(directory_id, members).await?;
            seeded.steps.push((
                format!("group seed-big with {} members", members.len()),
                started.elapsed().as_secs_f64(),
            ));
        }
        self.analyze().await?;
        Ok(seeded)
    }

    /// Inserts users `first..first+count` (see [`seeded_user_name`]) and
    /// returns their ids. Each is linked to its org's account with its
    /// email, made (with the products' default groups) when there is none,
    /// as a creation through SCIM does.
    pub async fn seed_users(
        &self,
        directory_id: Uuid,
        first: u64,
        count: u64,
    ) -> Result<Vec<Uuid>> {
        let org_id = self
            .directory_org(directory_id)
            .await?
            .ok_or_else(|| StoreError::Missing(format!("no directory {directory_id}")))?;
        // Only an org with default groups has any to join: the join's
        // statement scans the org's accounts, which grow with every batch.
        let (defaults,): (i64,) = read!(self, |_d, c| Ok::<_, StoreError>(
            Conn::fetch_one(
                c,
                "SELECT COUNT(*) FROM product_default_groups dg JOIN products p \
             ON p.site_id = dg.site_id AND p.product_key = dg.product_key \
             JOIN sites s ON s.id = p.site_id WHERE s.org_id = $1 AND p.new_users_get_access",
                &[org_id.into()],
            )
            .await?
        ))?;
        let join_defaults = defaults > 0;
        let mut ids = Vec::with_capacity(count as usize);
        let base_time = now_micros();
        let mut i = first;
        while i < first + count {
            let n = BATCH.min((first + count - i) as usize);
            let batch: Vec<SeedUser> = (i..i + n as u64)
                .map(|k| SeedUser {
                    id: Uuid::new_v4(),
                    account_id: Uuid::new_v4(),
                    user_name: seeded_user_name(k),
                    display_name: format!("Seed User {k}"),
                    k,
                    // Distinct, increasing creation times keep list order
                    // equal to seed order.
                    created_at: base_time + k as i64,
                })
                .collect();
            transaction!(self, |d, tx| {
                // The account of each email: a new one, or the org's own
                // (re-activated, as a creation through SCIM does).
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO accounts (id, org_id, email, email_domain, display_name, \
                     active, created_at, updated_at) ",
                );
                q.push_values(&batch, |mut row, u| {
                    row.push_bind(u.account_id)
                        .push_bind(org_id)
                        .push_bind(u.user_name.as_str())
                        .push_bind(email_domain(&u.user_name))
                        .push_bind(u.display_name.as_str())
                        .push("TRUE")
                        .push_bind(u.created_at)
                        .push_bind(u.created_at);
                });
                q.push(
                    " ON CONFLICT (org_id, email) WHERE email IS NOT NULL DO UPDATE \
                     SET updated_at = CASE WHEN accounts.active THEN accounts.updated_at \
                     ELSE excluded.updated_at END, active = TRUE RETURNING id, email",
                );
                let linked: HashMap<String, Uuid> = q
                    .build_query_as::<(Uuid, String)>()
                    .fetch_all(&mut *tx)
                    .await?
                    .into_iter()
                    .map(|(id, email)| (email, id))
                    .collect();
                let rows: Vec<(&SeedUser, Uuid, String)> = batch
                    .iter()
                    .map(|u| {
                        let account = linked.get(&u.user_name).copied().unwrap_or(u.account_id);
                        (u, account, user_doc(u, account))
                    })
                    .collect();
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO users (id, directory_id, user_name, user_name_ci, external_id, \
                     active, primary_email, display_name, account_id, doc, version, created_at, \
                     updated_at) ",
                );
                q.push_values(&rows, |mut row, (u, account, doc)| {
                    row.push_bind(u.id)
                        .push_bind(directory_id)
                        .push_bind(u.user_name.as_str())
                        .push_bind(u.user_name.as_str())
                        .push("NULL")
                        .push("TRUE")
                        .push_bind(u.user_name.as_str())
                        .push_bind(u.display_name.as_str())
                        .push_bind(*account)
                        .push_bind(doc.as_str());
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
                // New accounts join their products' default groups.
                let new_accounts: Vec<Uuid> = rows
                    .iter()
                    .filter(|(u, account, _)| u.account_id == *account)
                    .map(|(_, account, _)| *account)
                    .collect();
                if join_defaults {
                    super::org_groups::join_default_groups(&mut *tx, org_id, &new_accounts).await?;
                }
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
    /// drawn round-robin from `user_ids`; returns their ids, in order.
    pub async fn seed_groups(
        &self,
        directory_id: Uuid,
        count: u64,
        user_ids: &[Uuid],
        members: usize,
    ) -> Result<Vec<Uuid>> {
        let now = now_micros();
        let mut next_member = 0usize;
        let mut ids = Vec::with_capacity(count as usize);
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
            ids.push(id);
        }
        // Seeded rows may sort before groups already listed.
        transaction!(self, |_d, tx| {
            super::bump_list_epoch(&mut *tx, directory_id).await?;
        });
        // The members' `groups` changed: once, after every group committed,
        // ends whatever was read before.
        self.cache.changed(Change::Directory(directory_id));
        Ok(ids)
    }

    /// Makes `n` of `groups` members of others, in chains (see
    /// [`nesting_pairs`]), with the member rows a SCIM PATCH of a group's
    /// members writes for a group (`member_type` `Group`); returns the
    /// `(parent, child)` ids.
    pub async fn seed_nesting(
        &self,
        directory_id: Uuid,
        groups: &[Uuid],
        n: usize,
    ) -> Result<Vec<(Uuid, Uuid)>> {
        let pairs: Vec<(Uuid, Uuid)> = nesting_pairs(groups.len(), n)
            .map_err(StoreError::Refused)?
            .into_iter()
            .filter_map(|(p, c)| Some((*groups.get(p)?, *groups.get(c)?)))
            .collect();
        transaction!(self, |_d, tx| {
            for chunk in pairs.chunks(BATCH) {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO group_members (group_id, member_id, member_type) ",
                );
                q.push_values(chunk, |mut row, (parent, child)| {
                    row.push_bind(*parent).push_bind(*child).push("'Group'");
                });
                q.push(" ON CONFLICT DO NOTHING");
                q.build().execute(&mut *tx).await?;
            }
        });
        self.cache.changed(Change::Directory(directory_id));
        Ok(pairs)
    }

    /// Grants each of `groups` the role `user` on [`SEED_PRODUCT`] of
    /// [`SEED_SITE`], through the admin API's own writes (audited as
    /// `audit` says), making the site and the product when the org lacks
    /// them; returns the site's id.
    pub async fn seed_grants(
        &self,
        org_id: Uuid,
        groups: &[Uuid],
        audit: &AuditContext,
    ) -> Result<Uuid> {
        let key = ProductKey::parse(SEED_PRODUCT).map_err(StoreError::Refused)?;
        let site = match self
            .list_sites(org_id)
            .await?
            .into_iter()
            .find(|s| s.name.eq_ignore_ascii_case(SEED_SITE))
        {
            Some(site) => site,
            None => {
                let url = SiteUrl::parse(SEED_SITE_URL).map_err(StoreError::Refused)?;
                self.create_site(org_id, SEED_SITE, &url, audit).await?
            }
        };
        match self.get_product(org_id, site.id, &key).await {
            Ok(_) => {}
            Err(StoreError::Missing(_)) => {
                self.add_product(org_id, site.id, &key, audit).await?;
            }
            Err(e) => return Err(e),
        }
        for group in groups {
            self.add_grant(org_id, site.id, &key, *group, Role::User, audit)
                .await?;
        }
        Ok(site.id)
    }
}

/// A seeded user's document: what `POST /Users` stores for it, linked to
/// its account.
fn user_doc(u: &SeedUser, account: Uuid) -> String {
    let mut doc = match json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": u.user_name,
        "name": { "givenName": "Seed", "familyName": format!("User {}", u.k) },
        "displayName": u.display_name,
        "emails": [{ "value": u.user_name, "type": "work", "primary": true }],
        "active": true,
    }) {
        Value::Object(doc) => doc,
        _ => serde_json::Map::new(),
    };
    set_link(&mut doc, Some(account));
    Value::Object(doc).to_string()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_makes_chains_of_four() {
        assert_eq!(
            nesting_pairs(10, 5).unwrap(),
            [(0, 1), (1, 2), (2, 3), (4, 5), (5, 6)]
        );
        assert_eq!(nesting_pairs(10, 0).unwrap(), []);
        // 10 groups: chains 0-3, 4-7, 8-9 hold 3 + 3 + 1 links.
        assert_eq!(nesting_pairs(10, 7).unwrap().len(), 7);
        let refused = nesting_pairs(10, 8).unwrap_err();
        assert!(refused.contains("at most 7"), "{refused}");
        assert!(nesting_pairs(0, 1).is_err());
        assert_eq!(nesting_pairs(1_000, 100).unwrap().last(), Some(&(132, 133)));
    }

    #[test]
    fn a_plan_is_refused_before_anything_is_written() {
        let plan = SeedPlan {
            groups: 10,
            grants: 11,
            ..SeedPlan::default()
        };
        assert!(plan.check().unwrap_err().contains("--grants 11"));
        let plan = SeedPlan {
            groups: 10,
            grants: 10,
            nesting: 7,
            ..SeedPlan::default()
        };
        assert_eq!(plan.check(), Ok(()));
    }

    #[test]
    fn a_seeded_user_names_its_account() {
        let u = SeedUser {
            id: Uuid::new_v4(),
            account_id: Uuid::new_v4(),
            user_name: seeded_user_name(7),
            display_name: "Seed User 7".to_owned(),
            k: 7,
            created_at: 0,
        };
        let account = Uuid::new_v4();
        let doc: Value = serde_json::from_str(&user_doc(&u, account)).unwrap();
        let doc = doc.as_object().unwrap();
        assert_eq!(
            crate::directory::account::linked_account(doc),
            Some(account)
        );
        assert_eq!(doc["schemas"].as_array().unwrap().len(), 2);
        assert_eq!(doc["userName"], "seed-7@example.com");
    }
}
