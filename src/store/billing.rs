//! Billable users: distinct active accounts with effective access, per
//! product and in all, counted from the access table when asked, so the
//! numbers never disagree with it.

use uuid::Uuid;

use super::conn::Conn;
use super::{read, Result, Store, StoreError};
use crate::time::now_micros;

/// One product of one site with its billable users; a site without
/// products comes once, with no product.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct BillingRow {
    pub site_id: Uuid,
    pub site_name: String,
    pub site_url: String,
    pub product_key: Option<String>,
    pub billable_users: i64,
    /// The org's billable users across every site and product (the same
    /// on every row).
    pub total: i64,
}

/// The org's billable users as one statement reads them.
#[derive(Clone, Debug)]
pub struct Billing {
    /// By site (in creation order), then product key.
    pub rows: Vec<BillingRow>,
    /// Distinct active accounts with any access, each counted once.
    pub total: i64,
    /// When the counts were read (microseconds).
    pub computed_at: i64,
}

/// Every site of the org with its products and their billable users, and
/// the org's total, in one statement: one snapshot on either store, so
/// the total and the per-product counts always agree with each other.
///
/// A product's count is one range of `effective_access`'s primary key
/// (site, product, account: distinct accounts come in order) less the
/// org's inactive accounts, read once from the partial index
/// `accounts_org_inactive` (few, as a rule). The total is the org's
/// accounts with access (`accounts_org_created` holds the id; each probes
/// `effective_access_account`) less its inactive ones with access, so no
/// account row is read for its `active`. Access rows only exist for
/// products of the account's own org, so an org without products (no
/// rows here) has a total of 0.
const BILLING_SQL: &str = "SELECT s.id AS site_id, s.name AS site_name, s.url AS site_url, \
     p.product_key, \
     (SELECT COUNT(DISTINCT e.account_id) FROM effective_access e \
      WHERE e.site_id = p.site_id AND e.product_key = p.product_key \
      AND e.account_id NOT IN \
      (SELECT i.id FROM accounts i WHERE i.org_id = $1 AND i.active = FALSE)) AS billable_users, \
     (SELECT COUNT(*) FROM accounts a WHERE a.org_id = $1 \
      AND EXISTS (SELECT 1 FROM effective_access e WHERE e.account_id = a.id)) \
     - (SELECT COUNT(*) FROM accounts i WHERE i.org_id = $1 AND i.active = FALSE \
      AND EXISTS (SELECT 1 FROM effective_access e WHERE e.account_id = i.id)) AS total \
     FROM sites s LEFT JOIN products p ON p.site_id = s.id WHERE s.org_id = $1 \
     ORDER BY s.created_at, s.id, p.product_key";

impl Store {
    /// The org's billable users, read now from the access table.
    pub async fn billing(&self, org_id: Uuid) -> Result<Billing> {
        let computed_at = now_micros();
        let rows: Vec<BillingRow> = read!(self, |_d, c| Ok::<_, StoreError>(
            Conn::fetch_all(c, BILLING_SQL, &[org_id.into()]).await?
        ))?;
        let total = rows.first().map_or(0, |r| r.total);
        Ok(Billing {
            rows,
            total,
            computed_at,
        })
    }
}
