//! `/admin/v1/orgs/{orgId}/directories`: create a directory (base URL and
//! API key, the key shown once), list, inspect, delete, rotate the key.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{org_id, time};
use crate::auth::new_api_key;
use crate::http::error::AdminError;
use crate::http::extract::{AdminContext, AdminJson};
use crate::http::AppState;
use crate::store::Directory;

#[derive(Deserialize)]
pub struct CreateDirectory {
    name: String,
}

#[derive(Deserialize)]
pub struct OrgPath {
    org_id: String,
}

#[derive(Deserialize)]
pub struct DirectoryPath {
    org_id: String,
    directory_id: String,
}

fn directory_json(state: &AppState, d: &Directory) -> Value {
    json!({
        "id": d.id,
        "orgId": d.org_id,
        "name": d.name,
        "baseUrl": state.settings.directory_base_url(d.id),
        "keyId": d.key_id,
        "createdAt": time(d.created_at),
        "keyCreatedAt": time(d.key_created_at),
        "userCount": d.user_count,
        "groupCount": d.group_count,
    })
}

async fn resolve(state: &AppState, p: &DirectoryPath) -> Result<(Uuid, Uuid), AdminError> {
    let org = org_id(state, &p.org_id).await?;
    let id = Uuid::parse_str(&p.directory_id)
        .map_err(|_| AdminError::NotFound("directory not found"))?;
    Ok((org, id))
}

pub async fn create(
    State(state): State<AppState>,
    admin: AdminContext,
    Path(p): Path<OrgPath>,
    AdminJson(body): AdminJson<CreateDirectory>,
) -> Result<(StatusCode, Json<Value>), AdminError> {
    let org = org_id(&state, &p.org_id).await?;
    let name = body.name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(AdminError::BadRequest(
            "name must be 1 to 200 characters".into(),
        ));
    }
    let key = new_api_key().await?;
    let dir = state
        .store
        .create_directory(org, name, &key.id, &key.hash, &admin.audit)
        .await?;
    let mut body = directory_json(&state, &dir);
    body["apiKey"] = Value::String(key.secret);
    Ok((StatusCode::CREATED, Json(body)))
}

pub async fn list(
    State(state): State<AppState>,
    _admin: AdminContext,
    Path(p): Path<OrgPath>,
) -> Result<Json<Value>, AdminError> {
    let org = org_id(&state, &p.org_id).await?;
    let dirs = state.store.list_directories(org).await?;
    let list: Vec<Value> = dirs.iter().map(|d| directory_json(&state, d)).collect();
    Ok(Json(json!({ "directories": list })))
}

pub async fn get(
    State(state): State<AppState>,
    _admin: AdminContext,
    Path(p): Path<DirectoryPath>,
) -> Result<Json<Value>, AdminError> {
    let (org, id) = resolve(&state, &p).await?;
    let dir = state.store.get_directory(org, id).await?;
    Ok(Json(directory_json(&state, &dir)))
}

pub async fn delete(
    State(state): State<AppState>,
    admin: AdminContext,
    Path(p): Path<DirectoryPath>,
) -> Result<StatusCode, AdminError> {
    let (org, id) = resolve(&state, &p).await?;
    state.store.delete_directory(org, id, &admin.audit).await?;
    state.auth.forget_directory(id);
    Ok(StatusCode::NO_CONTENT)
}

/// Issues a new key; the old one stops working immediately.
pub async fn rotate_key(
    State(state): State<AppState>,
    admin: AdminContext,
    Path(p): Path<DirectoryPath>,
) -> Result<Json<Value>, AdminError> {
    let (org, id) = resolve(&state, &p).await?;
    let key = new_api_key().await?;
    state
        .store
        .set_directory_key(org, id, &key.id, &key.hash, &admin.audit)
        .await?;
    state.auth.forget_directory(id);
    let dir = state.store.get_directory(org, id).await?;
    let mut body = directory_json(&state, &dir);
    body["apiKey"] = Value::String(key.secret);
    Ok(Json(body))
}
