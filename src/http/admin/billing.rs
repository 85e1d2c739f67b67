//! `/admin/v1/orgs/{orgId}/billing`: billable users per site and product,
//! and in all. Nothing is kept between requests: the counts are read from
//! the access table each time, so they agree with it whenever asked.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{org_id, time, OrgPath};
use crate::http::error::{AdminError, AdminErrorBody};
use crate::http::extract::{AdminContext, AdminPath};
use crate::http::AppState;
use crate::store::BillingRow;

/// A product's billable users.
#[derive(Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductBilling {
    #[schema(example = "jira-software")]
    product_key: String,
    /// Distinct active accounts with access to the product, whatever
    /// their role and however many groups give it.
    billable_users: i64,
}

/// A site's products and their billable users.
#[derive(Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SiteBilling {
    site_id: Uuid,
    site_name: String,
    site_url: String,
    /// Every product of the site, by key, those with no billable user
    /// included (0).
    products: Vec<ProductBilling>,
}

/// An organisation's billable users.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BillingView {
    /// Distinct active accounts with access to any product of any site,
    /// each counted once.
    total: i64,
    /// Every site of the organisation, oldest first, those without
    /// products included.
    sites: Vec<SiteBilling>,
    /// When the counts were read (RFC 3339, UTC).
    #[schema(format = DateTime)]
    computed_at: String,
}

/// Rows in site order (a site's products consecutive, a site without
/// products one row without a product) as one entry per site.
fn by_site(rows: &[BillingRow]) -> Vec<SiteBilling> {
    let mut sites: Vec<SiteBilling> = Vec::new();
    for r in rows {
        if sites.last().is_none_or(|s| s.site_id != r.site_id) {
            sites.push(SiteBilling {
                site_id: r.site_id,
                site_name: r.site_name.clone(),
                site_url: r.site_url.clone(),
                products: Vec::new(),
            });
        }
        let Some(site) = sites.last_mut() else {
            continue;
        };
        if let Some(key) = &r.product_key {
            site.products.push(ProductBilling {
                product_key: key.clone(),
                billable_users: r.billable_users,
            });
        }
    }
    sites
}

/// Billable users per site and product, and the organisation's total:
/// distinct active accounts with effective access, counted now.
#[utoipa::path(
    get,
    path = "/admin/v1/orgs/{orgId}/billing",
    tag = "access",
    operation_id = "getBilling",
    params(OrgPath),
    responses(
        (status = 200, description = "Billable users per site and product, and in all", body = BillingView),
        (status = 404, description = "No such organisation", body = AdminErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    _admin: AdminContext,
    AdminPath(p): AdminPath<OrgPath>,
) -> Result<Json<BillingView>, AdminError> {
    let org = org_id(&state, &p.org_id).await?;
    let billing = state.store.billing(org).await?;
    Ok(Json(BillingView {
        total: billing.total,
        sites: by_site(&billing.rows),
        computed_at: time(billing.computed_at),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(site: u128, product: Option<&str>, users: i64) -> BillingRow {
        BillingRow {
            site_id: Uuid::from_u128(site),
            site_name: format!("site {site}"),
            site_url: format!("https://s{site}.example"),
            product_key: product.map(str::to_owned),
            billable_users: users,
            total: 0,
        }
    }

    /// Consecutive rows of a site make one entry; a site's row without a
    /// product makes an entry with no products.
    #[test]
    fn rows_become_sites_with_their_products() {
        let rows = [
            row(2, Some("confluence"), 3),
            row(2, Some("jira-software"), 0),
            row(1, None, 0),
            row(3, Some("bitbucket"), 7),
        ];
        let sites = by_site(&rows);
        let shape: Vec<(u128, Vec<(&str, i64)>)> = sites
            .iter()
            .map(|s| {
                (
                    s.site_id.as_u128(),
                    s.products
                        .iter()
                        .map(|p| (p.product_key.as_str(), p.billable_users))
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            [
                (2, vec![("confluence", 3), ("jira-software", 0)]),
                (1, vec![]),
                (3, vec![("bitbucket", 7)]),
            ]
        );
        assert_eq!(sites[0].site_url, "https://s2.example");
        assert!(by_site(&[]).is_empty());
    }
}
