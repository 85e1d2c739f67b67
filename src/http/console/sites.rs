//! `/admin/orgs/{orgId}/sites`: the organisation's sites (add one) and
//! their products (add one), each with the groups granted it (grant,
//! revoke) and its settings for new users (access, default groups). Every
//! change runs the admin API's code; its refusals are shown beside the
//! form.

use axum::extract::{Path, RawForm, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use uuid::Uuid;

use super::{page, refusal, ConsoleRejection, FormFields, Session};
use crate::directory::access::{ProductKey, Role, KNOWN_PRODUCTS};
use crate::http::admin::sites::{grant_group, new_product, new_site};
use crate::http::error::AdminError;
use crate::http::AppState;
use crate::scim::list::ListRequest;
use crate::store::{Keyset, StoreError};

/// SCIM groups of each directory offered for a grant.
pub const GROUPS_PER_DIRECTORY: i64 = 500;

#[derive(Deserialize)]
pub struct ProductPath {
    #[serde(rename = "orgId")]
    org_id: String,
    #[serde(rename = "siteId")]
    site_id: String,
    key: String,
}

#[derive(Deserialize)]
pub struct GrantPath {
    #[serde(rename = "orgId")]
    org_id: String,
    #[serde(rename = "siteId")]
    site_id: String,
    key: String,
    #[serde(rename = "groupId")]
    group_id: String,
}

/// What the page says after an action, and beside which form: the "Add a
/// site" form (no site), a site's "Add a product" form (no key), or one
/// product's forms.
struct Notice {
    site: Option<Uuid>,
    key: Option<String>,
    message: String,
}

#[derive(Deserialize)]
pub struct SitePath {
    #[serde(rename = "orgId")]
    org_id: String,
    #[serde(rename = "siteId")]
    site_id: String,
}

async fn render(
    state: &AppState,
    session: &Session,
    raw_org: &str,
    notice: Option<Notice>,
) -> Result<maud::Markup, ConsoleRejection> {
    let org = crate::http::admin::org_id(state, raw_org).await?;
    let sites = state.store.list_sites(org).await?;
    let org_groups = state.store.list_org_groups(org).await?;
    // Groups a grant may name: the org's own and each directory's.
    let mut groups: Vec<(Uuid, String)> = org_groups
        .iter()
        .map(|g| (g.id, format!("{} (org group)", g.name)))
        .collect();
    for (dir, dir_name) in state.store.directory_names(org).await? {
        let (rows, _) = state
            .store
            .browse_groups(
                dir,
                &ListRequest::all(&crate::scim::schema::GROUP_RESOURCE),
                Keyset::After(i64::MIN, Uuid::nil()),
                GROUPS_PER_DIRECTORY,
            )
            .await?;
        for g in rows {
            let doc: serde_json::Value = serde_json::from_str(&g.doc).unwrap_or_default();
            let name = doc["displayName"].as_str().unwrap_or_default();
            groups.push((g.id, format!("{name} ({dir_name})")));
        }
    }
    let mut products = Vec::new();
    for site in &sites {
        let mut of_site = Vec::new();
        for p in state.store.list_products(org, site.id).await? {
            let key = ProductKey::parse(&p.product_key).map_err(|_| ConsoleRejection::Internal)?;
            let grants = state.store.list_grants(org, site.id, &key).await?;
            of_site.push((p, grants));
        }
        products.push(of_site);
    }
    let content = html! {
        p { a href=(format!("/admin/orgs/{raw_org}")) { "← Organisation" } }
        h1 { "Sites and product access" }
        @let site_error = notice.as_ref().filter(|n| n.site.is_none()).map(|n| n.message.as_str());
        form method="post" action=(format!("/admin/orgs/{raw_org}/sites")) aria-describedby=[site_error.map(|_| "site-error")] {
            input type="hidden" name="csrf" value=(session.csrf);
            h2 { "Add a site" }
            label for="site-name" { "Name" }
            input id="site-name" name="name" type="text" required maxlength="200";
            label for="site-url" { "URL" }
            input id="site-url" name="url" type="text" required placeholder="https://example.atlassian.net";
            @if let Some(e) = site_error {
                p.error id="site-error" role="alert" { (e) }
            }
            p { button type="submit" { "Add site" } }
        }
        datalist id="known-products" {
            @for key in KNOWN_PRODUCTS { option value=(key) {} }
        }
        @if sites.is_empty() {
            p { "No site yet." }
        }
        @for (site, of_site) in sites.iter().zip(&products) {
            section aria-labelledby=(format!("site-{}", site.id)) {
                h2 id=(format!("site-{}", site.id)) { (site.name) " — " (site.url) }
                @if of_site.is_empty() { p { "No product on this site." } }
                @let product_error = notice.as_ref().filter(|n| n.site == Some(site.id) && n.key.is_none()).map(|n| n.message.as_str());
                @let pid = format!("product-{}", site.id);
                form method="post" action=(format!("/admin/orgs/{raw_org}/sites/{}/products", site.id)) {
                    input type="hidden" name="csrf" value=(session.csrf);
                    label for=(pid) { "Add a product to " (site.name) }
                    input id=(pid) name="key" type="text" list="known-products" required
                        placeholder="jira-software" aria-describedby=[product_error.map(|_| format!("{pid}-error"))];
                    @if let Some(e) = product_error {
                        p.error id=(format!("{pid}-error")) role="alert" { (e) }
                    }
                    p { button type="submit" { "Add product" } }
                }
                @for (product, grants) in of_site {
                    @let base = format!("/admin/orgs/{raw_org}/sites/{}/products/{}", site.id, product.product_key);
                    @let fid = format!("{}-{}", site.id, product.product_key);
                    h3 { (product.product_key) }
                    @if let Some(n) = notice.as_ref().filter(|n| n.site == Some(site.id) && n.key.as_deref() == Some(product.product_key.as_str())) {
                        p.error id=(format!("notice-{fid}")) role="alert" { (n.message) }
                    }
                    @if grants.is_empty() {
                        p { "No group is granted this product." }
                    } @else {
                        table {
                            caption.visually-hidden { "Groups granted " (product.product_key) }
                            thead { tr { th scope="col" { "Group" } th scope="col" { "Kind" } th scope="col" { "Role" } th scope="col" { span.visually-hidden { "Action" } } } }
                            tbody {
                                @for g in grants {
                                    tr {
                                        td { (g.group_name) }
                                        td { (g.kind) }
                                        td { (g.role) }
                                        td {
                                            form method="post" action=(format!("{base}/grants/{}/revoke", g.group_id)) {
                                                input type="hidden" name="csrf" value=(session.csrf);
                                                button type="submit" aria-label=(format!("Revoke {} from {}", product.product_key, g.group_name)) { "Revoke" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    form method="post" action=(format!("{base}/grants")) {
                        input type="hidden" name="csrf" value=(session.csrf);
                        label for=(format!("group-{fid}")) { "Grant a group" }
                        select id=(format!("group-{fid}")) name="group" {
                            @for (id, name) in &groups { option value=(id) { (name) } }
                        }
                        label for=(format!("role-{fid}")) { "Role" }
                        select id=(format!("role-{fid}")) name="role" {
                            option value="user" { "user" }
                            option value="admin" { "admin" }
                        }
                        p { button type="submit" { "Grant" } }
                    }
                    form method="post" action=(format!("{base}/settings")) {
                        input type="hidden" name="csrf" value=(session.csrf);
                        fieldset {
                            legend { "New users of " (product.product_key) }
                            label { input type="checkbox" name="newUsersGetAccess" value="true" checked[product.new_users_get_access]; " get access" }
                            @for g in &org_groups {
                                label { input type="checkbox" name="defaultGroup" value=(g.id) checked[product.default_groups.contains(&g.id)]; " join " (g.name) }
                            }
                        }
                        button type="submit" { "Save settings" }
                    }
                }
            }
        }
    };
    Ok(page("Sites and product access", Some(session), content))
}

pub async fn show(
    State(state): State<AppState>,
    session: Session,
    Path(raw_org): Path<String>,
) -> Result<Response, ConsoleRejection> {
    Ok(render(&state, &session, &raw_org, None)
        .await?
        .into_response())
}

/// Back to the page, or the page with the refusal beside the product.
async fn answer(
    state: &AppState,
    session: &Session,
    p: &ProductPath,
    site: Uuid,
    outcome: Result<(), AdminError>,
) -> Result<Response, ConsoleRejection> {
    let status = match &outcome {
        Ok(()) => {
            return Ok(Redirect::to(&format!("/admin/orgs/{}/sites", p.org_id)).into_response())
        }
        Err(AdminError::Conflict(_)) => StatusCode::CONFLICT,
        Err(AdminError::BadRequest(_)) => StatusCode::BAD_REQUEST,
        Err(AdminError::Missing(_)) => StatusCode::NOT_FOUND,
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let Err(e) = outcome else { unreachable!() };
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        return Err(e.into());
    }
    let notice = Notice {
        site: Some(site),
        key: Some(p.key.clone()),
        message: e.to_string(),
    };
    let page = render(state, session, &p.org_id, Some(notice)).await?;
    Ok((status, page).into_response())
}

async fn ids(
    state: &AppState,
    p: &ProductPath,
) -> Result<(Uuid, Uuid, ProductKey), ConsoleRejection> {
    let org = crate::http::admin::org_id(state, &p.org_id).await?;
    let site = Uuid::parse_str(&p.site_id).map_err(|_| ConsoleRejection::NotFound)?;
    let key = ProductKey::parse(&p.key).map_err(|_| ConsoleRejection::NotFound)?;
    Ok((org, site, key))
}

pub async fn grant(
    State(state): State<AppState>,
    session: Session,
    Path(p): Path<ProductPath>,
    form: RawForm,
) -> Result<Response, ConsoleRejection> {
    let f = FormFields::read(&form);
    session.check_csrf(f.get("csrf"))?;
    let (org, site, key) = ids(&state, &p).await?;
    let group = Uuid::parse_str(f.get("group"))
        .map_err(|_| AdminError::BadRequest("choose a group".into()));
    let role = match f.get("role") {
        "admin" => Role::Admin,
        _ => Role::User,
    };
    let outcome = match group {
        Ok(group) => grant_group(&state, org, site, &key, group, role, &session.audit)
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    answer(&state, &session, &p, site, outcome).await
}

pub async fn revoke(
    State(state): State<AppState>,
    session: Session,
    Path(p): Path<GrantPath>,
    form: RawForm,
) -> Result<Response, ConsoleRejection> {
    let f = FormFields::read(&form);
    session.check_csrf(f.get("csrf"))?;
    let product = ProductPath {
        org_id: p.org_id,
        site_id: p.site_id,
        key: p.key,
    };
    let (org, site, key) = ids(&state, &product).await?;
    let group = Uuid::parse_str(&p.group_id).map_err(|_| ConsoleRejection::NotFound)?;
    let outcome = state
        .store
        .remove_grant(org, site, &key, group, None, &session.audit)
        .await
        .map_err(AdminError::from);
    answer(&state, &session, &product, site, outcome).await
}

pub async fn settings(
    State(state): State<AppState>,
    session: Session,
    Path(p): Path<ProductPath>,
    form: RawForm,
) -> Result<Response, ConsoleRejection> {
    let f = FormFields::read(&form);
    session.check_csrf(f.get("csrf"))?;
    let (org, site, key) = ids(&state, &p).await?;
    let new_users = f.get("newUsersGetAccess") == "true";
    let defaults: Vec<Uuid> = f
        .all("defaultGroup")
        .iter()
        .filter_map(|v| Uuid::parse_str(v).ok())
        .collect();
    let outcome = state
        .store
        .set_product_settings(org, site, &key, new_users, &defaults, &session.audit)
        .await
        .map(|_| ())
        .map_err(|e| match e {
            StoreError::NotFound => AdminError::Missing("product not found on this site".into()),
            other => AdminError::from(other),
        });
    answer(&state, &session, &p, site, outcome).await
}

/// `POST …/sites`: adds a site, or says why not beside the form.
pub async fn add_site(
    State(state): State<AppState>,
    session: Session,
    Path(raw_org): Path<String>,
    form: RawForm,
) -> Result<Response, ConsoleRejection> {
    let f = FormFields::read(&form);
    session.check_csrf(f.get("csrf"))?;
    let org = crate::http::admin::org_id(&state, &raw_org).await?;
    let outcome = new_site(&state, org, f.get("name"), f.get("url"), &session.audit).await;
    added(&state, &session, &raw_org, None, outcome.map(|_| ())).await
}

/// `POST …/sites/{siteId}/products`: adds a product to the site, or says
/// why not beside the site's form.
pub async fn add_product(
    State(state): State<AppState>,
    session: Session,
    Path(p): Path<SitePath>,
    form: RawForm,
) -> Result<Response, ConsoleRejection> {
    let f = FormFields::read(&form);
    session.check_csrf(f.get("csrf"))?;
    let org = crate::http::admin::org_id(&state, &p.org_id).await?;
    let site = Uuid::parse_str(&p.site_id).map_err(|_| ConsoleRejection::NotFound)?;
    let outcome = new_product(&state, org, site, f.get("key").trim(), &session.audit).await;
    added(&state, &session, &p.org_id, Some(site), outcome.map(|_| ())).await
}

/// Back to the page after adding a site (`site` None) or a product, or the
/// page with the API's refusal beside the form that was sent.
async fn added(
    state: &AppState,
    session: &Session,
    raw_org: &str,
    site: Option<Uuid>,
    outcome: Result<(), AdminError>,
) -> Result<Response, ConsoleRejection> {
    let Err(e) = outcome else {
        return Ok(Redirect::to(&format!("/admin/orgs/{raw_org}/sites")).into_response());
    };
    let (status, message) = refusal(e)?;
    let notice = Notice {
        site,
        key: None,
        message,
    };
    let page = render(state, session, raw_org, Some(notice)).await?;
    Ok((status, page).into_response())
}
