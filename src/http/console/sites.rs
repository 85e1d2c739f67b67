//! `/admin/orgs/{orgId}/sites`: the organisation's sites and their
//! products, each with the groups granted it (grant, revoke) and its
//! settings for new users (access, default groups). Every change runs the
//! admin API's code; its refusals are shown beside the form.

use axum::extract::{Path, RawForm, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use uuid::Uuid;

use super::{page, ConsoleRejection, FormFields, Session};
use crate::directory::access::{ProductKey, Role};
use crate::http::admin::sites::grant_group;
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

/// What the page says beside one product's forms after an action.
struct Notice {
    site: Uuid,
    key: String,
    message: String,
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
        @if sites.is_empty() {
            p { "No site yet. Add one through the admin API (" code { "POST /admin/v1/orgs/{orgId}/sites" } ")." }
        }
        @for (site, of_site) in sites.iter().zip(&products) {
            section aria-labelledby=(format!("site-{}", site.id)) {
                h2 id=(format!("site-{}", site.id)) { (site.name) " — " (site.url) }
                @if of_site.is_empty() { p { "No product on this site." } }
                @for (product, grants) in of_site {
                    @let base = format!("/admin/orgs/{raw_org}/sites/{}/products/{}", site.id, product.product_key);
                    @let fid = format!("{}-{}", site.id, product.product_key);
                    h3 { (product.product_key) }
                    @if let Some(n) = notice.as_ref().filter(|n| n.site == site.id && n.key == product.product_key) {
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
        site,
        key: p.key.clone(),
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
