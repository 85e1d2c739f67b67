//! Sites, their products, the grants that give groups access to a product,
//! a product's default groups, and the effective access that follows
//! (computed by the sync engine, read by the admin API).

use std::collections::HashSet;

use uuid::Uuid;

use super::audit::insert_event;
use super::conn::{Conn, SqlBuilder};
use super::org_groups::ID_CHUNK;
use super::{read, transaction, OnConflict, Result, Store, StoreError};
use crate::audit::{Action, AuditContext, Event, Target, TargetType};
use crate::directory::access::{ProductKey, Role, SiteUrl, SYNCED_DEFAULT_GROUP};
use crate::time::now_micros;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SiteRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    pub url: String,
    pub created_at: i64,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ProductRow {
    pub site_id: Uuid,
    pub product_key: String,
    pub new_users_get_access: bool,
    pub created_at: i64,
    /// The org groups new accounts join (filled after the row is read).
    #[sqlx(skip)]
    pub default_groups: Vec<Uuid>,
}

/// A group's grant on a product, with what an admin needs to recognise the
/// group.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct GrantRow {
    pub group_id: Uuid,
    pub group_name: String,
    /// `scim` or `org`.
    pub kind: String,
    /// The SCIM group's directory; none for an org group.
    pub directory_id: Option<Uuid>,
    pub role: String,
    pub created_at: i64,
}

/// One account's access to one product through one grant.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AccessRow {
    pub account_id: Uuid,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub site_id: Uuid,
    pub site_name: String,
    pub site_url: String,
    pub product_key: String,
    pub role: String,
    pub group_id: Uuid,
    pub group_name: String,
    pub kind: String,
    pub directory_id: Option<Uuid>,
    pub granted_at: i64,
}

const ACCESS_SELECT: &str = "SELECT e.account_id, a.email, a.display_name, e.site_id, \
     s.name AS site_name, s.url AS site_url, e.product_key, e.role, \
     COALESCE(g.scim_group_id, g.org_group_id) AS group_id, \
     COALESCE(sg.display_name, og.name) AS group_name, \
     CASE WHEN g.scim_group_id IS NULL THEN 'org' ELSE 'scim' END AS kind, \
     sg.directory_id, e.granted_at \
     FROM effective_access e JOIN accounts a ON a.id = e.account_id \
     JOIN sites s ON s.id = e.site_id JOIN product_grants g ON g.id = e.grant_id \
     LEFT JOIN groups sg ON sg.id = g.scim_group_id \
     LEFT JOIN org_groups og ON og.id = g.org_group_id";

const GRANT_SELECT: &str = "SELECT COALESCE(g.scim_group_id, g.org_group_id) AS group_id, \
     COALESCE(sg.display_name, og.name) AS group_name, \
     CASE WHEN g.scim_group_id IS NULL THEN 'org' ELSE 'scim' END AS kind, \
     sg.directory_id, g.role, g.created_at FROM product_grants g \
     LEFT JOIN groups sg ON sg.id = g.scim_group_id \
     LEFT JOIN org_groups og ON og.id = g.org_group_id";

fn site_missing() -> StoreError {
    StoreError::Missing("site not found".to_owned())
}

fn product_missing(key: &ProductKey) -> StoreError {
    StoreError::Missing(format!("product {key} not found on this site"))
}

fn site_event(audit: &AuditContext, action: Action, site: &SiteRow) -> Event {
    audit
        .in_org(site.org_id)
        .event(action)
        .target(Target::named(
            TargetType::Site,
            site.id,
            site.created_at,
            &site.name,
        ))
}

/// Products have no id of their own: the event names the product and its
/// site.
fn product_event(audit: &AuditContext, action: Action, site: &SiteRow, key: &ProductKey) -> Event {
    let mut target = Target::new(TargetType::Product, None);
    target.identifier = Some(format!("{key} on {}", site.url));
    audit.in_org(site.org_id).event(action).target(target)
}

async fn fetch_site<C: Conn>(c: &mut C, org_id: Uuid, id: Uuid) -> Result<SiteRow> {
    c.fetch_optional(
        "SELECT id, org_id, name, url, created_at FROM sites WHERE org_id = $1 AND id = $2",
        &[org_id.into(), id.into()],
    )
    .await?
    .ok_or_else(site_missing)
}

async fn fetch_product<C: Conn>(c: &mut C, site_id: Uuid, key: &ProductKey) -> Result<ProductRow> {
    let mut product: ProductRow = c
        .fetch_optional(
            "SELECT site_id, product_key, new_users_get_access, created_at FROM products \
             WHERE site_id = $1 AND product_key = $2",
            &[site_id.into(), key.as_str().into()],
        )
        .await?
        .ok_or_else(|| product_missing(key))?;
    let groups: Vec<(Uuid,)> = c
        .fetch_all(
            "SELECT dg.group_id FROM product_default_groups dg \
             JOIN org_groups og ON og.id = dg.group_id \
             WHERE dg.site_id = $1 AND dg.product_key = $2 ORDER BY og.created_at, og.id",
            &[site_id.into(), key.as_str().into()],
        )
        .await?;
    product.default_groups = groups.into_iter().map(|(g,)| g).collect();
    Ok(product)
}

/// Which kind of group of the org `group_id` is: an org group, or a SCIM
/// group of one of its directories (with its name); none: no group of
/// this org.
async fn find_group<C: Conn>(
    c: &mut C,
    org_id: Uuid,
    group_id: Uuid,
) -> Result<Option<(bool, String)>> {
    let org: Option<(String,)> = c
        .fetch_optional(
            "SELECT name FROM org_groups WHERE org_id = $1 AND id = $2",
            &[org_id.into(), group_id.into()],
        )
        .await?;
    if let Some((name,)) = org {
        return Ok(Some((false, name)));
    }
    let scim: Option<(String,)> = c
        .fetch_optional(
            "SELECT g.display_name FROM groups g JOIN directories d ON d.id = g.directory_id \
             WHERE d.org_id = $1 AND g.id = $2",
            &[org_id.into(), group_id.into()],
        )
        .await?;
    Ok(scim.map(|(name,)| (true, name)))
}

/// The accounts' effective access replaced by `access` (account, grant)
/// pairs, for the sync engine's batches (up to 10,000 accounts each):
/// rows still given keep their `granted_at`, rows no longer given go, in
/// one transaction of the caller's. Pairs naming an account or a grant
/// outside the org are ignored.
pub(crate) async fn replace_effective_access<C: Conn>(
    c: &mut C,
    org_id: Uuid,
    account_ids: &[Uuid],
    access: &[(Uuid, Uuid)],
) -> Result<()> {
    let now = now_micros();
    // Two values a pair: 10,000 pairs a statement stay under SQLite's limit.
    for chunk in access.chunks(ID_CHUNK) {
        let mut q = SqlBuilder::new(
            C::DIALECT,
            "INSERT INTO effective_access (site_id, product_key, account_id, grant_id, org_id, \
             role, granted_at, computed_at) SELECT g.site_id, g.product_key, a.id, g.id, a.org_id, \
             g.role, ",
        );
        q.push_bind(now).push(", ").push_bind(now).push(" FROM (");
        q.push_values(chunk.iter().copied(), |(a, g)| vec![a.into(), g.into()]);
        q.push(
            ") v JOIN accounts a ON a.id = v.column1 \
             JOIN product_grants g ON g.id = v.column2 \
             JOIN sites s ON s.id = g.site_id AND s.org_id = a.org_id WHERE a.org_id = ",
        );
        q.push_bind(org_id).push(
            " ON CONFLICT (site_id, product_key, account_id, grant_id) \
             DO UPDATE SET computed_at = excluded.computed_at",
        );
        c.execute(q.sql(), q.args()).await?;
    }
    for chunk in account_ids.chunks(ID_CHUNK) {
        let mut q = SqlBuilder::new(C::DIALECT, "DELETE FROM effective_access WHERE org_id = ");
        q.push_bind(org_id).push(" AND computed_at <> ");
        q.push_bind(now).push(" AND account_id IN (");
        q.push_list(chunk.iter().copied()).push(")");
        c.execute(q.sql(), q.args()).await?;
    }
    Ok(())
}

impl Store {
    /// Creates a site; a name (case-insensitively) or URL the org already
    /// has is refused.
    pub async fn create_site(
        &self,
        org_id: Uuid,
        name: &str,
        url: &SiteUrl,
        audit: &AuditContext,
    ) -> Result<SiteRow> {
        let site = SiteRow {
            id: Uuid::new_v4(),
            org_id,
            name: name.to_owned(),
            url: url.as_str().to_owned(),
            created_at: now_micros(),
        };
        transaction!(self, |_d, tx| {
            // Say which one is taken; the unique indexes still decide.
            let taken: Option<(String, String)> = Conn::fetch_optional(
                &mut *tx,
                "SELECT name_ci, url FROM sites WHERE org_id = $1 AND (name_ci = $2 OR url = $3) \
                 LIMIT 1",
                &[
                    org_id.into(),
                    name.to_lowercase().into(),
                    url.as_str().into(),
                ],
            )
            .await?;
            if let Some((_, taken_url)) = taken {
                let what = if taken_url == site.url { "url" } else { "name" };
                return Err(StoreError::Refused(format!(
                    "the organisation already has a site with this {what}"
                )));
            }
            sqlx::query(
                "INSERT INTO sites (id, org_id, name, name_ci, url, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(site.id)
            .bind(org_id)
            .bind(name)
            .bind(name.to_lowercase())
            .bind(url.as_str())
            .bind(site.created_at)
            .execute(&mut *tx)
            .await
            .on_conflict("a site with this name or url")?;
            if audit.enabled {
                let event = site_event(audit, Action::SiteCreated, &site).detail(&site.url);
                insert_event(&mut *tx, &event).await?;
            }
        });
        Ok(site)
    }

    pub async fn list_sites(&self, org_id: Uuid) -> Result<Vec<SiteRow>> {
        read!(self, |_d, c| Ok(Conn::fetch_all(
            c,
            "SELECT id, org_id, name, url, created_at FROM sites WHERE org_id = $1 \
             ORDER BY created_at, id",
            &[org_id.into()],
        )
        .await?))
    }

    pub async fn get_site(&self, org_id: Uuid, id: Uuid) -> Result<SiteRow> {
        read!(self, |_d, c| Ok(fetch_site(c, org_id, id).await?))
    }

    /// Deletes a site with its products, grants, default groups and the
    /// access they gave (by cascade).
    pub async fn delete_site(&self, org_id: Uuid, id: Uuid, audit: &AuditContext) -> Result<()> {
        transaction!(self, |_d, tx| {
            let site = fetch_site(&mut *tx, org_id, id).await?;
            sqlx::query("DELETE FROM sites WHERE org_id = $1 AND id = $2")
                .bind(org_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if audit.enabled {
                let event = site_event(audit, Action::SiteDeleted, &site).detail(&site.url);
                insert_event(&mut *tx, &event).await?;
            }
        });
        Ok(())
    }

    pub async fn add_product(
        &self,
        org_id: Uuid,
        site_id: Uuid,
        key: &ProductKey,
        audit: &AuditContext,
    ) -> Result<ProductRow> {
        let now = now_micros();
        transaction!(self, |_d, tx| {
            let site = fetch_site(&mut *tx, org_id, site_id).await?;
            sqlx::query(
                "INSERT INTO products (site_id, product_key, new_users_get_access, created_at) \
                 VALUES ($1, $2, FALSE, $3)",
            )
            .bind(site_id)
            .bind(key.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await
            .on_conflict("this product on this site")?;
            if audit.enabled {
                let event = product_event(audit, Action::ProductAdded, &site, key);
                insert_event(&mut *tx, &event).await?;
            }
        });
        Ok(ProductRow {
            site_id,
            product_key: key.as_str().to_owned(),
            new_users_get_access: false,
            created_at: now,
            default_groups: Vec::new(),
        })
    }

    pub async fn list_products(&self, org_id: Uuid, site_id: Uuid) -> Result<Vec<ProductRow>> {
        read!(self, |_d, c| {
            fetch_site(c, org_id, site_id).await?;
            let mut products: Vec<ProductRow> = Conn::fetch_all(
                c,
                "SELECT site_id, product_key, new_users_get_access, created_at FROM products \
                 WHERE site_id = $1 ORDER BY product_key",
                &[site_id.into()],
            )
            .await?;
            let defaults: Vec<(String, Uuid)> = Conn::fetch_all(
                c,
                "SELECT dg.product_key, dg.group_id FROM product_default_groups dg \
                 JOIN org_groups og ON og.id = dg.group_id WHERE dg.site_id = $1 \
                 ORDER BY og.created_at, og.id",
                &[site_id.into()],
            )
            .await?;
            for p in &mut products {
                p.default_groups = defaults
                    .iter()
                    .filter(|(k, _)| *k == p.product_key)
                    .map(|(_, g)| *g)
                    .collect();
            }
            Ok(products)
        })
    }

    pub async fn get_product(
        &self,
        org_id: Uuid,
        site_id: Uuid,
        key: &ProductKey,
    ) -> Result<ProductRow> {
        read!(self, |_d, c| {
            fetch_site(c, org_id, site_id).await?;
            Ok(fetch_product(c, site_id, key).await?)
        })
    }

    /// Removes a product with its grants, default groups and the access
    /// they gave (by cascade).
    pub async fn remove_product(
        &self,
        org_id: Uuid,
        site_id: Uuid,
        key: &ProductKey,
        audit: &AuditContext,
    ) -> Result<()> {
        transaction!(self, |_d, tx| {
            let site = fetch_site(&mut *tx, org_id, site_id).await?;
            let removed =
                sqlx::query("DELETE FROM products WHERE site_id = $1 AND product_key = $2")
                    .bind(site_id)
                    .bind(key.as_str())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            if removed == 0 {
                return Err(product_missing(key));
            }
            if audit.enabled {
                let event = product_event(audit, Action::ProductRemoved, &site, key);
                insert_event(&mut *tx, &event).await?;
            }
        });
        Ok(())
    }

    /// Sets whether new accounts get the product and which org groups they
    /// join for it. A SCIM group is refused (its members are the identity
    /// provider's), an unknown one named; nothing is written then.
    pub async fn set_product_settings(
        &self,
        org_id: Uuid,
        site_id: Uuid,
        key: &ProductKey,
        new_users_get_access: bool,
        default_groups: &[Uuid],
        audit: &AuditContext,
    ) -> Result<ProductRow> {
        let mut seen = HashSet::new();
        let groups: Vec<Uuid> = default_groups
            .iter()
            .copied()
            .filter(|g| seen.insert(*g))
            .collect();
        let product = transaction!(self, |d, tx| {
            let site = fetch_site(&mut *tx, org_id, site_id).await?;
            let before = fetch_product(&mut *tx, site_id, key).await?;
            for group in &groups {
                match find_group(&mut *tx, org_id, *group).await? {
                    Some((false, _)) => {}
                    Some((true, name)) => {
                        return Err(StoreError::Refused(format!(
                            "group {group} ({name}): {SYNCED_DEFAULT_GROUP}"
                        )))
                    }
                    None => return Err(StoreError::Missing(format!("group {group} not found"))),
                }
            }
            sqlx::query(
                "UPDATE products SET new_users_get_access = $1 WHERE site_id = $2 AND product_key = $3",
            )
            .bind(new_users_get_access)
            .bind(site_id)
            .bind(key.as_str())
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "DELETE FROM product_default_groups WHERE site_id = $1 AND product_key = $2",
            )
            .bind(site_id)
            .bind(key.as_str())
            .execute(&mut *tx)
            .await?;
            if !groups.is_empty() {
                let mut q = SqlBuilder::new(
                    d,
                    "INSERT INTO product_default_groups (site_id, product_key, group_id) ",
                );
                q.push_values(groups.iter().copied(), |g| {
                    vec![site_id.into(), key.as_str().into(), g.into()]
                });
                Conn::execute(&mut *tx, q.sql(), q.args()).await?;
            }
            if audit.enabled {
                let mut changed = Vec::new();
                if before.new_users_get_access != new_users_get_access {
                    changed.push("newUsersGetAccess".to_owned());
                }
                if before.default_groups != groups {
                    changed.push("defaultGroups".to_owned());
                }
                let list: Vec<String> = groups.iter().map(Uuid::to_string).collect();
                let event = product_event(audit, Action::ProductSettingsChanged, &site, key)
                    .changed(changed)
                    .detail(format!(
                        "newUsersGetAccess {new_users_get_access}; default groups [{}]",
                        list.join(", ")
                    ));
                insert_event(&mut *tx, &event).await?;
            }
            fetch_product(&mut *tx, site_id, key).await?
        });
        Ok(product)
    }
}

impl Store {
    /// Grants a group of the org (a SCIM group of any of its directories,
    /// or an org group) a role on a product.
    pub async fn add_grant(
        &self,
        org_id: Uuid,
        site_id: Uuid,
        key: &ProductKey,
        group_id: Uuid,
        role: Role,
        audit: &AuditContext,
    ) -> Result<GrantRow> {
        let now = now_micros();
        let grant = transaction!(self, |_d, tx| {
            let site = fetch_site(&mut *tx, org_id, site_id).await?;
            fetch_product(&mut *tx, site_id, key).await?;
            let (scim, name) = find_group(&mut *tx, org_id, group_id)
                .await?
                .ok_or_else(|| StoreError::Missing(format!("group {group_id} not found")))?;
            let (scim_id, org_id_col) = if scim {
                (Some(group_id), None)
            } else {
                (None, Some(group_id))
            };
            sqlx::query(
                "INSERT INTO product_grants (id, site_id, product_key, scim_group_id, \
                 org_group_id, role, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(Uuid::new_v4())
            .bind(site_id)
            .bind(key.as_str())
            .bind(scim_id)
            .bind(org_id_col)
            .bind(role.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await
            .on_conflict("this group's grant of this role")?;
            let sql = format!(
                "{GRANT_SELECT} WHERE g.site_id = $1 AND g.product_key = $2 \
                 AND COALESCE(g.scim_group_id, g.org_group_id) = $3 AND g.role = $4"
            );
            let grant: GrantRow = Conn::fetch_one(
                &mut *tx,
                &sql,
                &[
                    site_id.into(),
                    key.as_str().into(),
                    group_id.into(),
                    role.as_str().into(),
                ],
            )
            .await?;
            if audit.enabled {
                let event = product_event(audit, Action::GrantsChanged, &site, key).detail(
                    format!("granted {} to group {name} ({group_id})", role.as_str()),
                );
                insert_event(&mut *tx, &event).await?;
            }
            grant
        });
        Ok(grant)
    }

    /// A product's grants, by group name.
    pub async fn list_grants(
        &self,
        org_id: Uuid,
        site_id: Uuid,
        key: &ProductKey,
    ) -> Result<Vec<GrantRow>> {
        let sql = format!(
            "{GRANT_SELECT} WHERE g.site_id = $1 AND g.product_key = $2 \
             ORDER BY group_name, group_id, g.role"
        );
        read!(self, |_d, c| {
            fetch_site(c, org_id, site_id).await?;
            fetch_product(c, site_id, key).await?;
            Ok(Conn::fetch_all(c, &sql, &[site_id.into(), key.as_str().into()]).await?)
        })
    }

    /// Revokes a group's grant of `role` on a product, or, with no role,
    /// each of its grants there; the access they gave goes with them.
    pub async fn remove_grant(
        &self,
        org_id: Uuid,
        site_id: Uuid,
        key: &ProductKey,
        group_id: Uuid,
        role: Option<Role>,
        audit: &AuditContext,
    ) -> Result<()> {
        transaction!(self, |d, tx| {
            let site = fetch_site(&mut *tx, org_id, site_id).await?;
            fetch_product(&mut *tx, site_id, key).await?;
            let mut q = SqlBuilder::new(d, "DELETE FROM product_grants WHERE site_id = ");
            q.push_bind(site_id).push(" AND product_key = ");
            q.push_bind(key.as_str());
            q.push(" AND COALESCE(scim_group_id, org_group_id) = ");
            q.push_bind(group_id);
            if let Some(role) = role {
                q.push(" AND role = ").push_bind(role.as_str());
            }
            let removed = Conn::execute(&mut *tx, q.sql(), q.args()).await?;
            if removed == 0 {
                return Err(StoreError::Missing(format!(
                    "group {group_id} has no such grant on this product"
                )));
            }
            if audit.enabled {
                let what = role.map_or("every role", Role::as_str);
                let event = product_event(audit, Action::GrantsChanged, &site, key)
                    .detail(format!("revoked {what} from group {group_id}"));
                insert_event(&mut *tx, &event).await?;
            }
        });
        Ok(())
    }

    /// Every access an account of the org has, by site, product, role and
    /// group; an account of another org (or none) is missing.
    pub async fn account_access(&self, org_id: Uuid, account_id: Uuid) -> Result<Vec<AccessRow>> {
        let sql = format!(
            "{ACCESS_SELECT} WHERE e.account_id = $1 \
             ORDER BY s.name_ci, e.site_id, e.product_key, e.role, group_name, group_id"
        );
        read!(self, |_d, c| {
            let account: Option<(Uuid,)> = Conn::fetch_optional(
                c,
                "SELECT id FROM accounts WHERE org_id = $1 AND id = $2",
                &[org_id.into(), account_id.into()],
            )
            .await?;
            if account.is_none() {
                return Err(StoreError::Missing(format!(
                    "account {account_id} not found"
                )));
            }
            Ok(Conn::fetch_all(c, &sql, &[account_id.into()]).await?)
        })
    }

    /// The accounts with access to a product, `limit` of them after the
    /// account id `after`, in account id order, with every row of each
    /// (one range of the primary key, then the page's rows).
    pub async fn product_users(
        &self,
        org_id: Uuid,
        site_id: Uuid,
        key: &ProductKey,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<(Vec<Uuid>, Vec<AccessRow>)> {
        read!(self, |d, c| {
            fetch_site(c, org_id, site_id).await?;
            fetch_product(c, site_id, key).await?;
            let mut q = SqlBuilder::new(
                d,
                "SELECT DISTINCT account_id FROM effective_access WHERE site_id = ",
            );
            q.push_bind(site_id).push(" AND product_key = ");
            q.push_bind(key.as_str());
            if let Some(after) = after {
                q.push(" AND account_id > ").push_bind(after);
            }
            q.push(" ORDER BY account_id LIMIT ").push_bind(limit);
            let ids: Vec<(Uuid,)> = Conn::fetch_all(c, q.sql(), q.args()).await?;
            let ids: Vec<Uuid> = ids.into_iter().map(|(a,)| a).collect();
            if ids.is_empty() {
                Ok((ids, Vec::new()))
            } else {
                let mut q = SqlBuilder::new(d, format!("{ACCESS_SELECT} WHERE e.site_id = "));
                q.push_bind(site_id).push(" AND e.product_key = ");
                q.push_bind(key.as_str()).push(" AND e.account_id IN (");
                q.push_list(ids.iter().copied());
                q.push(") ORDER BY e.account_id, e.role, group_name, group_id");
                let rows = Conn::fetch_all(c, q.sql(), q.args()).await?;
                Ok((ids, rows))
            }
        })
    }

    /// [`replace_effective_access`] in a transaction of its own.
    pub async fn replace_effective_access(
        &self,
        org_id: Uuid,
        account_ids: &[Uuid],
        access: &[(Uuid, Uuid)],
    ) -> Result<()> {
        transaction!(self, |_d, tx| {
            replace_effective_access(&mut *tx, org_id, account_ids, access).await?;
        });
        Ok(())
    }

    /// The grant that gives a group a role on a product, for tests and the
    /// sync engine.
    pub async fn grant_id(
        &self,
        site_id: Uuid,
        key: &ProductKey,
        group_id: Uuid,
        role: Role,
    ) -> Result<Option<Uuid>> {
        read!(self, |_d, c| {
            let id: Option<(Uuid,)> = Conn::fetch_optional(
                c,
                "SELECT id FROM product_grants WHERE site_id = $1 AND product_key = $2 \
                 AND COALESCE(scim_group_id, org_group_id) = $3 AND role = $4",
                &[
                    site_id.into(),
                    key.as_str().into(),
                    group_id.into(),
                    role.as_str().into(),
                ],
            )
            .await?;
            Ok(id.map(|(g,)| g))
        })
    }
}
