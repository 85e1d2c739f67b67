//! `/admin/v1/orgs`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{org_id, time};
use crate::http::error::AdminError;
use crate::http::extract::{AdminContext, AdminJson};
use crate::http::AppState;
use crate::store::Org;

#[derive(Deserialize)]
pub struct CreateOrg {
    name: String,
}

fn org_json(org: &Org) -> Value {
    json!({
        "id": org.id,
        "name": org.name,
        "default": org.is_default,
        "createdAt": time(org.created_at),
    })
}

pub async fn create(
    State(state): State<AppState>,
    admin: AdminContext,
    AdminJson(body): AdminJson<CreateOrg>,
) -> Result<(StatusCode, Json<Value>), AdminError> {
    let name = body.name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(AdminError::BadRequest(
            "name must be 1 to 200 characters".into(),
        ));
    }
    let org = state.store.create_org(name, &admin.audit).await?;
    Ok((StatusCode::CREATED, Json(org_json(&org))))
}

pub async fn list(
    State(state): State<AppState>,
    _admin: AdminContext,
) -> Result<Json<Value>, AdminError> {
    let orgs = state.store.list_orgs().await?;
    Ok(Json(
        json!({ "orgs": orgs.iter().map(org_json).collect::<Vec<_>>() }),
    ))
}

#[derive(Deserialize)]
pub struct OrgPath {
    org_id: String,
}

pub async fn get(
    State(state): State<AppState>,
    _admin: AdminContext,
    Path(p): Path<OrgPath>,
) -> Result<Json<Value>, AdminError> {
    let id = org_id(&state, &p.org_id).await?;
    let org = state
        .store
        .get_org(id)
        .await?
        .ok_or(AdminError::NotFound("organisation not found"))?;
    Ok(Json(org_json(&org)))
}
