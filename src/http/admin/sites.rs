//! `/admin/v1/orgs/{orgId}/sites`: the org's sites, their products, which
//! groups a product grants access to (with a role), and a product's
//! default groups for new accounts.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{check_name, org_id, org_id_schema, time, OrgPath};
use crate::directory::access::{ProductKey, Role, SiteUrl};
use crate::http::error::{AdminError, AdminErrorBody};
use crate::http::extract::{AdminContext, AdminJson, AdminPath};
use crate::http::AppState;
use crate::store::{GrantRow, ProductRow, SiteRow};
use crate::sync::Touch;

/// `{orgId}` and `{siteId}`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[serde(rename_all = "camelCase")]
pub struct SitePath {
    /// An organisation's id, or `default`.
    #[param(schema_with = org_id_schema)]
    pub org_id: String,
    /// A site's id. One that is not a UUID names no site: 404.
    #[param(value_type = Uuid)]
    pub site_id: String,
}

/// `{orgId}`, `{siteId}` and a product's `{key}`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[serde(rename_all = "camelCase")]
pub struct ProductPath {
    /// An organisation's id, or `default`.
    #[param(schema_with = org_id_schema)]
    pub org_id: String,
    /// A site's id.
    #[param(value_type = Uuid)]
    pub site_id: String,
    /// A product's key (`jira-software`, …). One not of a key's shape
    /// names no product: 404.
    #[param(pattern = "^[a-z0-9-]{1,64}$", example = "jira-software")]
    pub key: String,
}

/// A product's path and a group's id.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[serde(rename_all = "camelCase")]
pub struct GrantPath {
    /// An organisation's id, or `default`.
    #[param(schema_with = org_id_schema)]
    pub org_id: String,
    /// A site's id.
    #[param(value_type = Uuid)]
    pub site_id: String,
    /// A product's key.
    #[param(pattern = "^[a-z0-9-]{1,64}$", example = "jira-software")]
    pub key: String,
    /// The group's id (a SCIM group or an org group).
    #[param(value_type = Uuid)]
    pub group_id: String,
}

/// A new site.
#[derive(Deserialize, ToSchema)]
pub struct CreateSite {
    /// 1 to 200 characters, not all white space (trimmed), without U+0000;
    /// unique in the org, case-insensitively.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$",
        example = "Acme"
    )]
    name: String,
    /// An absolute `http` or `https` URL, without credentials, query or
    /// fragment; unique in the org once normalised (scheme and host
    /// lowercased, default port and a bare trailing `/` dropped).
    #[schema(max_length = 2048, example = "https://acme.atlassian.net")]
    url: String,
}

/// A site of the organisation (the one in the path: `default` and the
/// org's id name one org, so the answer does not repeat it).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SiteView {
    id: Uuid,
    name: String,
    /// The normalised URL.
    url: String,
    /// RFC 3339, UTC, to the microsecond.
    #[schema(format = DateTime)]
    created_at: String,
}

impl From<&SiteRow> for SiteView {
    fn from(s: &SiteRow) -> Self {
        SiteView {
            id: s.id,
            name: s.name.clone(),
            url: s.url.clone(),
            created_at: time(s.created_at),
        }
    }
}

/// The organisation's sites, oldest first.
#[derive(Serialize, ToSchema)]
pub struct SiteList {
    sites: Vec<SiteView>,
}

/// A product to add to a site.
#[derive(Deserialize, ToSchema)]
pub struct AddProduct {
    /// `jira-software`, `jira-service-management`, `confluence`,
    /// `bitbucket`, or any other key of 1 to 64 of `a-z`, `0-9`, `-`.
    #[schema(pattern = "^[a-z0-9-]{1,64}$", example = "jira-software")]
    key: String,
}

/// A product of a site.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductView {
    site_id: Uuid,
    #[schema(example = "jira-software")]
    key: String,
    /// Whether new accounts join the default groups.
    new_users_get_access: bool,
    /// The org groups new accounts join while `newUsersGetAccess` is on.
    default_groups: Vec<Uuid>,
    #[schema(format = DateTime)]
    created_at: String,
}

impl From<&ProductRow> for ProductView {
    fn from(p: &ProductRow) -> Self {
        ProductView {
            site_id: p.site_id,
            key: p.product_key.clone(),
            new_users_get_access: p.new_users_get_access,
            default_groups: p.default_groups.clone(),
            created_at: time(p.created_at),
        }
    }
}

/// A site's products, by key.
#[derive(Serialize, ToSchema)]
pub struct ProductList {
    products: Vec<ProductView>,
}

/// The largest number of default groups a product may have.
pub const MAX_DEFAULT_GROUPS: usize = 100;

/// A product's settings for new accounts; both fields are required (this
/// replaces them).
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProductSettings {
    /// Whether new accounts join the default groups.
    new_users_get_access: bool,
    /// Org groups only (never a group synced by SCIM), at most 100.
    #[schema(max_items = 100)]
    default_groups: Vec<Uuid>,
}

/// What a grant gives the group's members.
#[derive(Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GrantRole {
    User,
    Admin,
}

impl From<GrantRole> for Role {
    fn from(r: GrantRole) -> Self {
        match r {
            GrantRole::User => Role::User,
            GrantRole::Admin => Role::Admin,
        }
    }
}

/// A grant to add: a group of the org and a role.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddGrant {
    /// A SCIM group of any directory of the org, or an org group.
    group_id: Uuid,
    role: GrantRole,
}

/// Where a group lives.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GroupKindView {
    /// A SCIM group, synced from an identity provider.
    Scim,
    /// An org group, kept by the admin.
    Org,
}

impl GroupKindView {
    pub(super) fn parse(kind: &str) -> Self {
        if kind == "scim" {
            GroupKindView::Scim
        } else {
            GroupKindView::Org
        }
    }
}

/// A group's grant on a product.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrantView {
    group_id: Uuid,
    /// The group's name now.
    name: String,
    kind: GroupKindView,
    /// The SCIM group's directory; null for an org group.
    directory_id: Option<Uuid>,
    #[schema(value_type = GrantRole)]
    role: String,
    #[schema(format = DateTime)]
    created_at: String,
}

impl From<&GrantRow> for GrantView {
    fn from(g: &GrantRow) -> Self {
        GrantView {
            group_id: g.group_id,
            name: g.group_name.clone(),
            kind: GroupKindView::parse(&g.kind),
            directory_id: g.directory_id,
            role: g.role.clone(),
            created_at: time(g.created_at),
        }
    }
}

/// A product's grants, by group name.
#[derive(Serialize, ToSchema)]
pub struct GrantList {
    grants: Vec<GrantView>,
}

/// `?role=` of a grant's removal.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RevokeQuery {
    /// Only this role's grant; absent: each of the group's grants on the
    /// product.
    #[param(inline)]
    role: Option<GrantRole>,
}

pub(super) async fn site_ids(
    state: &AppState,
    org: &str,
    site: &str,
) -> Result<(Uuid, Uuid), AdminError> {
    let org = org_id(state, org).await?;
    let site = Uuid::parse_str(site).map_err(|_| AdminError::NotFound("site not found"))?;
    Ok((org, site))
}

/// A key not of a key's shape names no product.
pub(super) fn product_key(raw: &str) -> Result<ProductKey, AdminError> {
    ProductKey::parse(raw).map_err(|_| AdminError::NotFound("product not found on this site"))
}

/// Creates a site.
#[utoipa::path(
    post,
    path = "/admin/v1/orgs/{orgId}/sites",
    tag = "sites",
    operation_id = "createSite",
    params(OrgPath),
    request_body = CreateSite,
    responses(
        (status = 201, description = "The site", body = SiteView),
        (status = 404, description = "No such organisation", body = AdminErrorBody),
        (status = 409, description = "The org has a site with this name or URL", body = AdminErrorBody),
    )
)]
pub async fn create_site(
    State(state): State<AppState>,
    admin: AdminContext,
    AdminPath(p): AdminPath<OrgPath>,
    AdminJson(body): AdminJson<CreateSite>,
) -> Result<(StatusCode, Json<SiteView>), AdminError> {
    let org = org_id(&state, &p.org_id).await?;
    let site = new_site(&state, org, &body.name, &body.url, &admin.audit).await?;
    Ok((StatusCode::CREATED, Json(SiteView::from(&site))))
}

/// Adds the site `name` at `url` to `org`. (The admin API and the console
/// both add sites this way.)
pub(crate) async fn new_site(
    state: &AppState,
    org: Uuid,
    name: &str,
    url: &str,
    audit: &crate::audit::AuditContext,
) -> Result<SiteRow, AdminError> {
    let name = check_name(name)?;
    let url = SiteUrl::parse(url).map_err(AdminError::BadRequest)?;
    Ok(state.store.create_site(org, name, &url, audit).await?)
}

/// Lists the organisation's sites.
#[utoipa::path(
    get,
    path = "/admin/v1/orgs/{orgId}/sites",
    tag = "sites",
    operation_id = "listSites",
    params(OrgPath),
    responses(
        (status = 200, description = "The sites", body = SiteList),
        (status = 404, description = "No such organisation", body = AdminErrorBody),
    )
)]
pub async fn list_sites(
    State(state): State<AppState>,
    _admin: AdminContext,
    AdminPath(p): AdminPath<OrgPath>,
) -> Result<Json<SiteList>, AdminError> {
    let org = org_id(&state, &p.org_id).await?;
    let sites = state.store.list_sites(org).await?;
    Ok(Json(SiteList {
        sites: sites.iter().map(SiteView::from).collect(),
    }))
}

/// Reads a site.
#[utoipa::path(
    get,
    path = "/admin/v1/orgs/{orgId}/sites/{siteId}",
    tag = "sites",
    operation_id = "getSite",
    params(SitePath),
    responses(
        (status = 200, description = "The site", body = SiteView),
        (status = 404, description = "No such organisation, or no such site in it", body = AdminErrorBody),
    )
)]
pub async fn get_site(
    State(state): State<AppState>,
    _admin: AdminContext,
    AdminPath(p): AdminPath<SitePath>,
) -> Result<Json<SiteView>, AdminError> {
    let (org, site) = site_ids(&state, &p.org_id, &p.site_id).await?;
    Ok(Json(SiteView::from(
        &state.store.get_site(org, site).await?,
    )))
}

/// Deletes a site: its products, their grants, default groups and the
/// access they gave go with it.
#[utoipa::path(
    delete,
    path = "/admin/v1/orgs/{orgId}/sites/{siteId}",
    tag = "sites",
    operation_id = "deleteSite",
    params(SitePath),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such organisation, or no such site in it", body = AdminErrorBody),
    )
)]
pub async fn delete_site(
    State(state): State<AppState>,
    admin: AdminContext,
    AdminPath(p): AdminPath<SitePath>,
) -> Result<StatusCode, AdminError> {
    let (org, site) = site_ids(&state, &p.org_id, &p.site_id).await?;
    state.store.delete_site(org, site, &admin.audit).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Adds a product to a site.
#[utoipa::path(
    post,
    path = "/admin/v1/orgs/{orgId}/sites/{siteId}/products",
    tag = "sites",
    operation_id = "addProduct",
    params(SitePath),
    request_body = AddProduct,
    responses(
        (status = 201, description = "The product", body = ProductView),
        (status = 404, description = "No such organisation, or no such site in it", body = AdminErrorBody),
        (status = 409, description = "The site has this product already", body = AdminErrorBody),
    )
)]
pub async fn add_product(
    State(state): State<AppState>,
    admin: AdminContext,
    AdminPath(p): AdminPath<SitePath>,
    AdminJson(body): AdminJson<AddProduct>,
) -> Result<(StatusCode, Json<ProductView>), AdminError> {
    let (org, site) = site_ids(&state, &p.org_id, &p.site_id).await?;
    let product = new_product(&state, org, site, &body.key, &admin.audit).await?;
    Ok((StatusCode::CREATED, Json(ProductView::from(&product))))
}

/// Adds the product `key` to `site` of `org`. (The admin API and the
/// console both add products this way.)
pub(crate) async fn new_product(
    state: &AppState,
    org: Uuid,
    site: Uuid,
    key: &str,
    audit: &crate::audit::AuditContext,
) -> Result<ProductRow, AdminError> {
    let key = ProductKey::parse(key).map_err(AdminError::BadRequest)?;
    Ok(state.store.add_product(org, site, &key, audit).await?)
}

/// Lists a site's products.
#[utoipa::path(
    get,
    path = "/admin/v1/orgs/{orgId}/sites/{siteId}/products",
    tag = "sites",
    operation_id = "listProducts",
    params(SitePath),
    responses(
        (status = 200, description = "The site's products", body = ProductList),
        (status = 404, description = "No such organisation, or no such site in it", body = AdminErrorBody),
    )
)]
pub async fn list_products(
    State(state): State<AppState>,
    _admin: AdminContext,
    AdminPath(p): AdminPath<SitePath>,
) -> Result<Json<ProductList>, AdminError> {
    let (org, site) = site_ids(&state, &p.org_id, &p.site_id).await?;
    let products = state.store.list_products(org, site).await?;
    Ok(Json(ProductList {
        products: products.iter().map(ProductView::from).collect(),
    }))
}

/// Reads a product of a site, with its settings.
#[utoipa::path(
    get,
    path = "/admin/v1/orgs/{orgId}/sites/{siteId}/products/{key}",
    tag = "sites",
    operation_id = "getProduct",
    params(ProductPath),
    responses(
        (status = 200, description = "The product", body = ProductView),
        (status = 404, description = "No such organisation, site or product", body = AdminErrorBody),
    )
)]
pub async fn get_product(
    State(state): State<AppState>,
    _admin: AdminContext,
    AdminPath(p): AdminPath<ProductPath>,
) -> Result<Json<ProductView>, AdminError> {
    let (org, site) = site_ids(&state, &p.org_id, &p.site_id).await?;
    let key = product_key(&p.key)?;
    let product = state.store.get_product(org, site, &key).await?;
    Ok(Json(ProductView::from(&product)))
}

/// Removes a product from a site: its grants, default groups and the
/// access they gave go with it.
#[utoipa::path(
    delete,
    path = "/admin/v1/orgs/{orgId}/sites/{siteId}/products/{key}",
    tag = "sites",
    operation_id = "removeProduct",
    params(ProductPath),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such organisation, site or product", body = AdminErrorBody),
    )
)]
pub async fn remove_product(
    State(state): State<AppState>,
    admin: AdminContext,
    AdminPath(p): AdminPath<ProductPath>,
) -> Result<StatusCode, AdminError> {
    let (org, site) = site_ids(&state, &p.org_id, &p.site_id).await?;
    let key = product_key(&p.key)?;
    state
        .store
        .remove_product(org, site, &key, &admin.audit)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets whether new accounts get the product, and the org groups they
/// join for it. A group synced from an identity provider is refused
/// (409): its membership is the identity provider's.
#[utoipa::path(
    put,
    path = "/admin/v1/orgs/{orgId}/sites/{siteId}/products/{key}/settings",
    tag = "sites",
    operation_id = "setProductSettings",
    params(ProductPath),
    request_body = ProductSettings,
    responses(
        (status = 200, description = "The product, with its new settings", body = ProductView),
        (status = 404, description = "No such organisation, site, product or group (named)", body = AdminErrorBody),
        (status = 409, description = "A default group is a group synced from an identity provider", body = AdminErrorBody),
    )
)]
pub async fn set_product_settings(
    State(state): State<AppState>,
    admin: AdminContext,
    AdminPath(p): AdminPath<ProductPath>,
    AdminJson(body): AdminJson<ProductSettings>,
) -> Result<Json<ProductView>, AdminError> {
    let (org, site) = site_ids(&state, &p.org_id, &p.site_id).await?;
    let key = product_key(&p.key)?;
    if body.default_groups.len() > MAX_DEFAULT_GROUPS {
        return Err(AdminError::BadRequest(format!(
            "a product has at most {MAX_DEFAULT_GROUPS} default groups"
        )));
    }
    let product = state
        .store
        .set_product_settings(
            org,
            site,
            &key,
            body.new_users_get_access,
            &body.default_groups,
            &admin.audit,
        )
        .await?;
    Ok(Json(ProductView::from(&product)))
}

/// Grants a group a role on a product.
#[utoipa::path(
    post,
    path = "/admin/v1/orgs/{orgId}/sites/{siteId}/products/{key}/grants",
    tag = "sites",
    operation_id = "addGrant",
    params(ProductPath),
    request_body = AddGrant,
    responses(
        (status = 201, description = "The grant", body = GrantView),
        (status = 404, description = "No such organisation, site or product, or no such group in the org (named)", body = AdminErrorBody),
        (status = 409, description = "The group has this role on the product already", body = AdminErrorBody),
    )
)]
pub async fn add_grant(
    State(state): State<AppState>,
    admin: AdminContext,
    AdminPath(p): AdminPath<ProductPath>,
    AdminJson(body): AdminJson<AddGrant>,
) -> Result<(StatusCode, Json<GrantView>), AdminError> {
    let (org, site) = site_ids(&state, &p.org_id, &p.site_id).await?;
    let key = product_key(&p.key)?;
    let grant = grant_group(
        &state,
        org,
        site,
        &key,
        body.group_id,
        body.role.into(),
        &admin.audit,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(GrantView::from(&grant))))
}

/// Grants `group` `role` on a product. A continuous directory applies a
/// new grant on its group at once. (The admin API and the console both
/// grant this way.)
pub(crate) async fn grant_group(
    state: &AppState,
    org: Uuid,
    site: Uuid,
    key: &ProductKey,
    group: Uuid,
    role: Role,
    audit: &crate::audit::AuditContext,
) -> Result<GrantRow, AdminError> {
    let change = match state.store.group_directory(org, group).await? {
        Some(directory) => Some(state.sync.will_change(directory).await?),
        None => None,
    };
    let grant = state
        .store
        .add_grant(org, site, key, group, role, audit)
        .await?;
    if let (Some(change), Some(directory)) = (change, grant.directory_id) {
        change.touch(Touch::Granted(directory, grant.group_id));
    }
    Ok(grant)
}

/// Lists a product's grants.
#[utoipa::path(
    get,
    path = "/admin/v1/orgs/{orgId}/sites/{siteId}/products/{key}/grants",
    tag = "sites",
    operation_id = "listGrants",
    params(ProductPath),
    responses(
        (status = 200, description = "The product's grants", body = GrantList),
        (status = 404, description = "No such organisation, site or product", body = AdminErrorBody),
    )
)]
pub async fn list_grants(
    State(state): State<AppState>,
    _admin: AdminContext,
    AdminPath(p): AdminPath<ProductPath>,
) -> Result<Json<GrantList>, AdminError> {
    let (org, site) = site_ids(&state, &p.org_id, &p.site_id).await?;
    let key = product_key(&p.key)?;
    let grants = state.store.list_grants(org, site, &key).await?;
    Ok(Json(GrantList {
        grants: grants.iter().map(GrantView::from).collect(),
    }))
}

/// Revokes a group's grant (of `role`, or every role); the access it gave
/// goes with it.
#[utoipa::path(
    delete,
    path = "/admin/v1/orgs/{orgId}/sites/{siteId}/products/{key}/grants/{groupId}",
    tag = "sites",
    operation_id = "revokeGrant",
    params(GrantPath, RevokeQuery),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such organisation, site or product, or the group has no such grant", body = AdminErrorBody),
    )
)]
pub async fn revoke_grant(
    State(state): State<AppState>,
    admin: AdminContext,
    AdminPath(p): AdminPath<GrantPath>,
    RawQuery(raw): RawQuery,
) -> Result<StatusCode, AdminError> {
    let (org, site) = site_ids(&state, &p.org_id, &p.site_id).await?;
    let key = product_key(&p.key)?;
    let query: RevokeQuery = serde_urlencoded::from_str(raw.as_deref().unwrap_or(""))
        .map_err(|_| AdminError::BadRequest("role must be user or admin".to_owned()))?;
    let group = Uuid::parse_str(&p.group_id)
        .map_err(|_| AdminError::NotFound("the group has no such grant"))?;
    state
        .store
        .remove_grant(
            org,
            site,
            &key,
            group,
            query.role.map(Role::from),
            &admin.audit,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
