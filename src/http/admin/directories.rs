//! `/admin/v1/orgs/{orgId}/directories`: create a directory (base URL and
//! API key, the key shown once), list, inspect, delete, rotate the key.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{check_name, org_id, time, DirectoryPath, OrgPath};
use crate::auth::new_api_key;
use crate::http::error::{AdminError, AdminErrorBody};
use crate::http::extract::{AdminContext, AdminJson, AdminPath};
use crate::http::AppState;
use crate::store::Directory;

/// A new directory.
#[derive(Deserialize, ToSchema)]
pub struct CreateDirectory {
    /// 1 to 200 characters, not all white space (leading and trailing
    /// white space is trimmed), without U+0000.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$",
        example = "Okta"
    )]
    name: String,
}

/// A directory: what one identity provider provisions into. Never its key.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryView {
    id: Uuid,
    org_id: Uuid,
    name: String,
    /// The SCIM base URL to give the identity provider.
    base_url: String,
    /// The visible part of the API key (`scimd_<keyId>.…`).
    key_id: String,
    /// RFC 3339, UTC, to the microsecond.
    #[schema(format = DateTime)]
    created_at: String,
    /// When the current key was issued.
    #[schema(format = DateTime)]
    key_created_at: String,
    #[schema(minimum = 0)]
    user_count: i64,
    #[schema(minimum = 0)]
    group_count: i64,
}

/// A directory with its new API key, which is shown in this answer only.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryWithKey {
    #[serde(flatten)]
    directory: DirectoryView,
    /// `scimd_<keyId>.<secret>`: the bearer key for the SCIM base URL.
    api_key: String,
}

/// An organisation's directories.
#[derive(Serialize, ToSchema)]
pub struct DirectoryList {
    directories: Vec<DirectoryView>,
}

impl DirectoryView {
    fn new(state: &AppState, d: &Directory) -> Self {
        DirectoryView {
            id: d.id,
            org_id: d.org_id,
            name: d.name.clone(),
            base_url: state.settings.directory_base_url(d.id),
            key_id: d.key_id.clone(),
            created_at: time(d.created_at),
            key_created_at: time(d.key_created_at),
            user_count: d.user_count,
            group_count: d.group_count,
        }
    }
}

async fn resolve(state: &AppState, p: &DirectoryPath) -> Result<(Uuid, Uuid), AdminError> {
    let org = org_id(state, &p.org_id).await?;
    let id = Uuid::parse_str(&p.directory_id)
        .map_err(|_| AdminError::NotFound("directory not found"))?;
    Ok((org, id))
}

/// Creates a directory and its API key.
#[utoipa::path(
    post,
    path = "/admin/v1/orgs/{orgId}/directories",
    tag = "directories",
    operation_id = "createDirectory",
    params(OrgPath),
    request_body = CreateDirectory,
    responses(
        (status = 201, description = "The directory, with its API key (shown this once)", body = DirectoryWithKey),
        (status = 404, description = "No such organisation", body = AdminErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    admin: AdminContext,
    AdminPath(p): AdminPath<OrgPath>,
    AdminJson(body): AdminJson<CreateDirectory>,
) -> Result<(StatusCode, Json<DirectoryWithKey>), AdminError> {
    let org = org_id(&state, &p.org_id).await?;
    let name = check_name(&body.name)?;
    let key = new_api_key().await?;
    let dir = state
        .store
        .create_directory(org, name, &key.id, &key.hash, &admin.audit)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(DirectoryWithKey {
            directory: DirectoryView::new(&state, &dir),
            api_key: key.secret,
        }),
    ))
}

/// Lists an organisation's directories.
#[utoipa::path(
    get,
    path = "/admin/v1/orgs/{orgId}/directories",
    tag = "directories",
    operation_id = "listDirectories",
    params(OrgPath),
    responses(
        (status = 200, description = "The organisation's directories", body = DirectoryList),
        (status = 404, description = "No such organisation", body = AdminErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminContext,
    AdminPath(p): AdminPath<OrgPath>,
) -> Result<Json<DirectoryList>, AdminError> {
    let org = org_id(&state, &p.org_id).await?;
    let dirs = state.store.list_directories(org).await?;
    Ok(Json(DirectoryList {
        directories: dirs.iter().map(|d| DirectoryView::new(&state, d)).collect(),
    }))
}

/// Reads a directory, with its user and group counts.
#[utoipa::path(
    get,
    path = "/admin/v1/orgs/{orgId}/directories/{directoryId}",
    tag = "directories",
    operation_id = "getDirectory",
    params(DirectoryPath),
    responses(
        (status = 200, description = "The directory", body = DirectoryView),
        (status = 404, description = "No such organisation, or no such directory in it", body = AdminErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    _admin: AdminContext,
    AdminPath(p): AdminPath<DirectoryPath>,
) -> Result<Json<DirectoryView>, AdminError> {
    let (org, id) = resolve(&state, &p).await?;
    let dir = state.store.get_directory(org, id).await?;
    Ok(Json(DirectoryView::new(&state, &dir)))
}

/// Deletes a directory: its users, groups and memberships go with it, and
/// its key stops working at once.
#[utoipa::path(
    delete,
    path = "/admin/v1/orgs/{orgId}/directories/{directoryId}",
    tag = "directories",
    operation_id = "deleteDirectory",
    params(DirectoryPath),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such organisation, or no such directory in it", body = AdminErrorBody),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    admin: AdminContext,
    AdminPath(p): AdminPath<DirectoryPath>,
) -> Result<StatusCode, AdminError> {
    let (org, id) = resolve(&state, &p).await?;
    state.store.delete_directory(org, id, &admin.audit).await?;
    state.auth.forget_directory(id);
    Ok(StatusCode::NO_CONTENT)
}

/// Issues a new key; the old one stops working immediately.
#[utoipa::path(
    post,
    path = "/admin/v1/orgs/{orgId}/directories/{directoryId}/api-key",
    tag = "directories",
    operation_id = "rotateDirectoryKey",
    params(DirectoryPath),
    responses(
        (status = 200, description = "The directory, with its new API key (shown this once)", body = DirectoryWithKey),
        (status = 404, description = "No such organisation, or no such directory in it", body = AdminErrorBody),
    )
)]
pub async fn rotate_key(
    State(state): State<AppState>,
    admin: AdminContext,
    AdminPath(p): AdminPath<DirectoryPath>,
) -> Result<Json<DirectoryWithKey>, AdminError> {
    let (org, id) = resolve(&state, &p).await?;
    let key = new_api_key().await?;
    state
        .store
        .set_directory_key(org, id, &key.id, &key.hash, &admin.audit)
        .await?;
    state.auth.forget_directory(id);
    let dir = state.store.get_directory(org, id).await?;
    Ok(Json(DirectoryWithKey {
        directory: DirectoryView::new(&state, &dir),
        api_key: key.secret,
    }))
}
