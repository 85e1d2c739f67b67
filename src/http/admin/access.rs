//! Product access as it is: who can use which product of which site, and
//! through which group. Read-only: the rows are the sync engine's, computed
//! from the grants and group memberships.

use axum::extract::{RawQuery, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::sites::{product_key, site_ids, GrantRole, GroupKindView, ProductPath};
use super::{org_id, org_id_schema, time};
use crate::http::error::{AdminError, AdminErrorBody};
use crate::http::extract::{AdminContext, AdminPath};
use crate::http::AppState;
use crate::store::AccessRow;

/// Accounts per page of a product's users unless `limit` says otherwise.
pub const DEFAULT_LIMIT: i64 = 100;
/// The most accounts a page holds.
pub const MAX_LIMIT: i64 = 1000;

/// `{orgId}` and `{accountId}`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[serde(rename_all = "camelCase")]
pub struct AccountPath {
    /// An organisation's id, or `default`.
    #[param(schema_with = org_id_schema)]
    pub org_id: String,
    /// An account's id. One that is not a UUID names no account: 404.
    #[param(value_type = Uuid)]
    pub account_id: String,
}

/// A page of a product's users.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsersQuery {
    /// Accounts per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// The `nextAfter` of the previous page: accounts after this id.
    after: Option<Uuid>,
}

/// A group that gives the access.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ViaGroup {
    group_id: Uuid,
    name: String,
    kind: GroupKindView,
    /// The SCIM group's directory; null for an org group.
    directory_id: Option<Uuid>,
}

impl From<&AccessRow> for ViaGroup {
    fn from(r: &AccessRow) -> Self {
        ViaGroup {
            group_id: r.group_id,
            name: r.group_name.clone(),
            kind: GroupKindView::parse(&r.kind),
            directory_id: r.directory_id,
        }
    }
}

/// One role on one product of one site, and the groups it comes through.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductAccess {
    site_id: Uuid,
    site_name: String,
    site_url: String,
    #[schema(example = "jira-software")]
    product: String,
    #[schema(value_type = GrantRole)]
    role: String,
    via: Vec<ViaGroup>,
    /// When the first of these groups gave it.
    #[schema(format = DateTime)]
    granted_at: String,
}

/// An account's access.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountAccess {
    account_id: Uuid,
    access: Vec<ProductAccess>,
}

/// One role of an account on the product, and the groups it comes
/// through.
#[derive(Serialize, ToSchema)]
pub struct RoleAccess {
    #[schema(value_type = GrantRole)]
    role: String,
    via: Vec<ViaGroup>,
}

/// An account with access to the product.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductUser {
    account_id: Uuid,
    email: Option<String>,
    display_name: Option<String>,
    roles: Vec<RoleAccess>,
}

/// A page of a product's users, by account id.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductUserPage {
    users: Vec<ProductUser>,
    /// Pass as `after` for the next page; null on the last page.
    next_after: Option<Uuid>,
}

/// Rows in order (account, site, product, role) grouped into roles with
/// their groups: consecutive rows of one key become one entry.
fn group_rows<'a, K: PartialEq, T>(
    rows: &'a [AccessRow],
    key: impl Fn(&AccessRow) -> K,
    mut make: impl FnMut(&'a AccessRow, Vec<ViaGroup>) -> T,
) -> Vec<T> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < rows.len() {
        let k = key(&rows[start]);
        let end = rows[start..]
            .iter()
            .position(|r| key(r) != k)
            .map_or(rows.len(), |n| start + n);
        let run = &rows[start..end];
        out.push(make(&run[0], run.iter().map(ViaGroup::from).collect()));
        start = end;
    }
    out
}

/// An account's access to every product of every site of the org.
#[utoipa::path(
    get,
    path = "/admin/v1/orgs/{orgId}/accounts/{accountId}/access",
    tag = "access",
    operation_id = "getAccountAccess",
    params(AccountPath),
    responses(
        (status = 200, description = "The account's access, by site, product and role", body = AccountAccess),
        (status = 404, description = "No such organisation, or no such account in it", body = AdminErrorBody),
    )
)]
pub async fn account_access(
    State(state): State<AppState>,
    _admin: AdminContext,
    AdminPath(p): AdminPath<AccountPath>,
) -> Result<Json<AccountAccess>, AdminError> {
    let org = org_id(&state, &p.org_id).await?;
    let account =
        Uuid::parse_str(&p.account_id).map_err(|_| AdminError::NotFound("account not found"))?;
    let rows = state.store.account_access(org, account).await?;
    let access = group_rows(
        &rows,
        |r| (r.site_id, r.product_key.clone(), r.role.clone()),
        |first, via| ProductAccess {
            site_id: first.site_id,
            site_name: first.site_name.clone(),
            site_url: first.site_url.clone(),
            product: first.product_key.clone(),
            role: first.role.clone(),
            via,
            granted_at: time(first.granted_at),
        },
    );
    // The earliest grant of each entry, not its first group's.
    let access = access
        .into_iter()
        .map(|mut a| {
            if let Some(earliest) = rows
                .iter()
                .filter(|r| {
                    r.site_id == a.site_id && r.product_key == a.product && r.role == a.role
                })
                .map(|r| r.granted_at)
                .min()
            {
                a.granted_at = time(earliest);
            }
            a
        })
        .collect();
    Ok(Json(AccountAccess {
        account_id: account,
        access,
    }))
}

/// The accounts with access to a product, paged by account id.
#[utoipa::path(
    get,
    path = "/admin/v1/orgs/{orgId}/sites/{siteId}/products/{key}/users",
    tag = "access",
    operation_id = "listProductUsers",
    params(ProductPath, UsersQuery),
    responses(
        (status = 200, description = "A page of the product's users", body = ProductUserPage),
        (status = 404, description = "No such organisation, site or product", body = AdminErrorBody),
    )
)]
pub async fn product_users(
    State(state): State<AppState>,
    _admin: AdminContext,
    AdminPath(p): AdminPath<ProductPath>,
    RawQuery(raw): RawQuery,
) -> Result<Json<ProductUserPage>, AdminError> {
    let query: UsersQuery = serde_urlencoded::from_str(raw.as_deref().unwrap_or(""))
        .map_err(|e| AdminError::BadRequest(format!("invalid query string: {e}")))?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(AdminError::BadRequest(format!(
            "limit must be from 1 to {MAX_LIMIT}"
        )));
    }
    let (org, site) = site_ids(&state, &p.org_id, &p.site_id).await?;
    let key = product_key(&p.key)?;
    // One more than a page tells whether there is a next one.
    let (mut ids, rows) = state
        .store
        .product_users(org, site, &key, query.after, limit + 1)
        .await?;
    let next_after = if ids.len() as i64 > limit {
        ids.truncate(limit as usize);
        ids.last().copied()
    } else {
        None
    };
    let users = ids
        .iter()
        .map(|id| {
            let mine: Vec<AccessRow> = rows
                .iter()
                .filter(|r| r.account_id == *id)
                .cloned()
                .collect();
            let roles = group_rows(
                &mine,
                |r| r.role.clone(),
                |first, via| RoleAccess {
                    role: first.role.clone(),
                    via,
                },
            );
            ProductUser {
                account_id: *id,
                email: mine.first().and_then(|r| r.email.clone()),
                display_name: mine.first().and_then(|r| r.display_name.clone()),
                roles,
            }
        })
        .collect();
    Ok(Json(ProductUserPage { users, next_after }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(role: &str, group: &str) -> AccessRow {
        AccessRow {
            account_id: Uuid::nil(),
            email: None,
            display_name: None,
            site_id: Uuid::nil(),
            site_name: "Acme".into(),
            site_url: "https://acme.example".into(),
            product_key: "confluence".into(),
            role: role.into(),
            group_id: Uuid::new_v4(),
            group_name: group.into(),
            kind: "org".into(),
            directory_id: None,
            granted_at: 0,
        }
    }

    /// Consecutive rows of one key make one entry with each row's group.
    #[test]
    fn runs_of_one_key_become_one_entry() {
        let rows = [row("admin", "a"), row("user", "b"), row("user", "c")];
        let entries = group_rows(
            &rows,
            |r| r.role.clone(),
            |first, via| {
                (
                    first.role.clone(),
                    via.iter().map(|v| v.name.clone()).collect::<Vec<_>>(),
                )
            },
        );
        assert_eq!(
            entries,
            [
                ("admin".to_owned(), vec!["a".to_owned()]),
                ("user".to_owned(), vec!["b".to_owned(), "c".to_owned()]),
            ]
        );
        let none = group_rows(&[], |r: &AccessRow| r.role.clone(), |_, via| via.len());
        assert!(none.is_empty());
    }
}
