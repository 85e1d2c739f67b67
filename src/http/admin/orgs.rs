//! `/admin/v1/orgs`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{check_name, org_id, time, OrgPath};
use crate::http::error::AdminError;
use crate::http::extract::{AdminContext, AdminJson, AdminPath};
use crate::http::AppState;
use crate::store::Org;

/// A new organisation.
#[derive(Deserialize, ToSchema)]
pub struct CreateOrg {
    /// 1 to 200 characters, not all white space (leading and trailing
    /// white space is trimmed), without U+0000.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$",
        example = "Acme"
    )]
    name: String,
}

/// An organisation.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrgView {
    id: Uuid,
    name: String,
    /// Whether this is the default organisation (the path word `default`).
    default: bool,
    /// RFC 3339, UTC, to the microsecond.
    #[schema(format = DateTime)]
    created_at: String,
}

/// Every organisation.
#[derive(Serialize, ToSchema)]
pub struct OrgList {
    orgs: Vec<OrgView>,
}

impl From<&Org> for OrgView {
    fn from(org: &Org) -> Self {
        OrgView {
            id: org.id,
            name: org.name.clone(),
            default: org.is_default,
            created_at: time(org.created_at),
        }
    }
}

/// Creates an organisation.
#[utoipa::path(
    post,
    path = "/admin/v1/orgs",
    tag = "orgs",
    operation_id = "createOrg",
    request_body = CreateOrg,
    responses(
        (status = 201, description = "The organisation, created", body = OrgView),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    admin: AdminContext,
    AdminJson(body): AdminJson<CreateOrg>,
) -> Result<(StatusCode, Json<OrgView>), AdminError> {
    let name = check_name(&body.name)?;
    let org = state.store.create_org(name, &admin.audit).await?;
    Ok((StatusCode::CREATED, Json(OrgView::from(&org))))
}

/// Lists the organisations.
#[utoipa::path(
    get,
    path = "/admin/v1/orgs",
    tag = "orgs",
    operation_id = "listOrgs",
    responses((status = 200, description = "Every organisation", body = OrgList))
)]
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminContext,
) -> Result<Json<OrgList>, AdminError> {
    let orgs = state.store.list_orgs().await?;
    Ok(Json(OrgList {
        orgs: orgs.iter().map(OrgView::from).collect(),
    }))
}

/// Reads one organisation.
#[utoipa::path(
    get,
    path = "/admin/v1/orgs/{orgId}",
    tag = "orgs",
    operation_id = "getOrg",
    params(OrgPath),
    responses((status = 200, description = "The organisation", body = OrgView))
)]
pub async fn get(
    State(state): State<AppState>,
    _admin: AdminContext,
    AdminPath(p): AdminPath<OrgPath>,
) -> Result<Json<OrgView>, AdminError> {
    let id = org_id(&state, &p.org_id).await?;
    let org = state
        .store
        .get_org(id)
        .await?
        .ok_or(AdminError::NotFound("organisation not found"))?;
    Ok(Json(OrgView::from(&org)))
}
