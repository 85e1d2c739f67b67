//! `/admin/user-provisioning/v1/org/{orgId}/…`: Atlassian's user
//! provisioning admin routes, with the same paths, bodies and answers, so
//! that scripts written for Atlassian's API run against this server. Same
//! admin token and rate limit as `/admin/v1`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::accounts::{resolve, AccountPath};
use super::{org_id, OrgPath};
use crate::http::error::{AdminError, AdminErrorBody};
use crate::http::extract::{AdminContext, AdminJson, AdminPath};
use crate::http::AppState;
use crate::store::{DeleteRecordsRefused, LinkRow, StoreError};

/// Where this router is mounted.
pub const PREFIX: &str = "/admin/user-provisioning/v1";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/org/{orgId}/user/{accountId}/get-scim-links",
            get(get_scim_links),
        )
        .route(
            "/org/{orgId}/get-scim-links-for-email",
            post(get_scim_links_for_email),
        )
        .route(
            "/org/{orgId}/scimDirectoryId/{directoryId}/scimUserId/{userId}/unlink",
            patch(unlink),
        )
        .route(
            "/org/{orgId}/user/{accountId}/onlyDeleteUserInDB",
            delete(only_delete_user_in_db),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

async fn not_found() -> Response {
    AdminError::NotFound("no such admin endpoint").into_response()
}

async fn method_not_allowed() -> Response {
    AdminError::MethodNotAllowed.into_response()
}

/// A SCIM user and the account it is linked to, as Atlassian shows it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScimLink {
    scim_user_id: Uuid,
    /// Null for a record linked to no account.
    atlassian_account_id: Option<Uuid>,
    directory_id: Uuid,
    org_id: Uuid,
}

/// SCIM links.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScimLinks {
    scim_links: Vec<ScimLink>,
}

impl ScimLinks {
    pub(super) fn new(org: Uuid, links: &[LinkRow]) -> Self {
        ScimLinks {
            scim_links: links
                .iter()
                .map(|l| ScimLink {
                    scim_user_id: l.user_id,
                    atlassian_account_id: l.account_id,
                    directory_id: l.directory_id,
                    org_id: org,
                })
                .collect(),
        }
    }
}

/// The email whose SCIM links are wanted.
#[derive(Deserialize, ToSchema)]
pub struct EmailLookup {
    /// Compared with each SCIM user's primary email, case-insensitively.
    #[schema(
        min_length = 1,
        max_length = 320,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    email: String,
}

/// `{orgId}`, `{directoryId}` and `{userId}`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[serde(rename_all = "camelCase")]
pub struct ScimUserPath {
    /// An organisation's id, or `default`.
    #[param(schema_with = super::org_id_schema)]
    pub org_id: String,
    /// A directory of the organisation. One that is not a UUID names
    /// none: 404.
    #[param(value_type = Uuid)]
    pub directory_id: String,
    /// A SCIM user of the directory. One that is not a UUID names none:
    /// 404.
    #[param(value_type = Uuid)]
    pub user_id: String,
}

/// The org, directory and user a path names.
pub(super) async fn resolve_user(
    state: &AppState,
    p: &ScimUserPath,
) -> Result<(Uuid, Uuid, Uuid), AdminError> {
    let org = org_id(state, &p.org_id).await?;
    let parse =
        |raw: &str| Uuid::parse_str(raw).map_err(|_| AdminError::NotFound("SCIM user not found"));
    Ok((org, parse(&p.directory_id)?, parse(&p.user_id)?))
}

/// Gets the SCIM links of an account: the SCIM users of every directory
/// of the organisation linked to it.
#[utoipa::path(
    get,
    path = "/admin/user-provisioning/v1/org/{orgId}/user/{accountId}/get-scim-links",
    tag = "atlassian",
    operation_id = "getScimLinks",
    params(AccountPath),
    responses(
        (status = 200, description = "The account's SCIM links", body = ScimLinks),
        (status = 404, description = "No such organisation, or no such account in it", body = AdminErrorBody),
    )
)]
pub async fn get_scim_links(
    State(state): State<AppState>,
    _admin: AdminContext,
    AdminPath(p): AdminPath<AccountPath>,
) -> Result<Json<ScimLinks>, AdminError> {
    let (org, id) = resolve(&state, &p).await?;
    state
        .store
        .get_account(org, id)
        .await?
        .ok_or(AdminError::NotFound("account not found"))?;
    let links = state.store.account_links(id).await?;
    Ok(Json(ScimLinks::new(org, &links)))
}

/// Gets the SCIM links of an email: the SCIM users of the organisation's
/// directories whose primary email it is, linked or not.
#[utoipa::path(
    post,
    path = "/admin/user-provisioning/v1/org/{orgId}/get-scim-links-for-email",
    tag = "atlassian",
    operation_id = "getScimLinksForEmail",
    params(OrgPath),
    request_body = EmailLookup,
    responses(
        (status = 200, description = "The SCIM links of that email (none: an empty list)", body = ScimLinks),
        (status = 404, description = "No such organisation", body = AdminErrorBody),
    )
)]
pub async fn get_scim_links_for_email(
    State(state): State<AppState>,
    _admin: AdminContext,
    AdminPath(p): AdminPath<OrgPath>,
    AdminJson(body): AdminJson<EmailLookup>,
) -> Result<Json<ScimLinks>, AdminError> {
    let org = org_id(&state, &p.org_id).await?;
    let email = super::trim_space(&body.email);
    if email.is_empty() || body.email.chars().count() > 320 || email.contains('\0') {
        return Err(AdminError::BadRequest(
            "email must be 1 to 320 characters, without U+0000".into(),
        ));
    }
    let links = state.store.links_for_email(org, email).await?;
    Ok(Json(ScimLinks::new(org, &links)))
}

/// Unlinks a SCIM user from its account without deleting either: the
/// user loses `atlassianAccountId` until it is relinked
/// (`PUT /admin/v1/orgs/{orgId}/directories/{directoryId}/users/{userId}/account`).
/// Records `account.unlinked`.
#[utoipa::path(
    patch,
    path = "/admin/user-provisioning/v1/org/{orgId}/scimDirectoryId/{directoryId}/scimUserId/{userId}/unlink",
    tag = "atlassian",
    operation_id = "unlinkScimUser",
    params(ScimUserPath),
    responses(
        (status = 204, description = "Unlinked (or linked to nothing already)"),
        (status = 404, description = "No such organisation, directory of it, or user of that directory", body = AdminErrorBody),
    )
)]
pub async fn unlink(
    State(state): State<AppState>,
    admin: AdminContext,
    AdminPath(p): AdminPath<ScimUserPath>,
) -> Result<StatusCode, AdminError> {
    let (org, directory, user) = resolve_user(&state, &p).await?;
    state
        .store
        .set_user_link(org, directory, user, None, &admin.audit)
        .await
        .map_err(user_not_found)?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) fn user_not_found(e: StoreError) -> AdminError {
    match e {
        StoreError::NotFound => AdminError::NotFound("SCIM user not found"),
        other => other.into(),
    }
}

/// Deletes the SCIM records of a managed account, in every directory of
/// the organisation, without deprovisioning: the account stays as it is
/// (active or not) and the identity provider may provision the user again,
/// which links back to it. The records' group memberships go with them.
/// Refused for an external account. Records `account.deleted`.
#[utoipa::path(
    delete,
    path = "/admin/user-provisioning/v1/org/{orgId}/user/{accountId}/onlyDeleteUserInDB",
    tag = "atlassian",
    operation_id = "onlyDeleteUserInDB",
    params(AccountPath),
    responses(
        (status = 204, description = "The account's SCIM records were deleted"),
        (status = 404, description = "No such organisation, or no such account in it", body = AdminErrorBody),
        (status = 409, description = "The account is not managed by the organisation", body = AdminErrorBody),
    )
)]
pub async fn only_delete_user_in_db(
    State(state): State<AppState>,
    admin: AdminContext,
    AdminPath(p): AdminPath<AccountPath>,
) -> Result<StatusCode, AdminError> {
    let (org, id) = resolve(&state, &p).await?;
    let outcome = state
        .store
        .delete_account_records(org, id, &admin.audit)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => AdminError::NotFound("account not found"),
            other => other.into(),
        })?;
    match outcome {
        Ok(_) => Ok(StatusCode::NO_CONTENT),
        Err(DeleteRecordsRefused::NotManaged) => Err(AdminError::Conflict(
            "only a managed account's SCIM records can be deleted this way".into(),
        )),
    }
}
