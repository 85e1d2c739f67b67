//! `/admin/v1/orgs/{orgId}/groups`: groups the admin keeps in the
//! organisation, with org accounts as members. Never written by SCIM; a
//! name a SCIM group of the org holds is refused (and the other way round).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{check_description, check_name, org_id, org_id_schema, time, OrgPath};
use crate::directory::access::MAX_DESCRIPTION_CHARS;
use crate::http::error::{AdminError, AdminErrorBody};
use crate::http::extract::{AdminContext, AdminJson, AdminPath};
use crate::http::AppState;
use crate::store::{OrgGroupChange, OrgGroupMemberRow, OrgGroupRow};

/// The most accounts one request adds to a group.
pub const MAX_MEMBERS_PER_REQUEST: usize = 10_000;

/// `{orgId}` and `{groupId}`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[serde(rename_all = "camelCase")]
pub struct OrgGroupPath {
    /// An organisation's id, or `default`.
    #[param(schema_with = org_id_schema)]
    pub org_id: String,
    /// An org group's id. One that is not a UUID names no group: 404.
    #[param(value_type = Uuid)]
    pub group_id: String,
}

/// `{orgId}`, `{groupId}` and `{accountId}`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[serde(rename_all = "camelCase")]
pub struct OrgGroupMemberPath {
    /// An organisation's id, or `default`.
    #[param(schema_with = org_id_schema)]
    pub org_id: String,
    /// An org group's id.
    #[param(value_type = Uuid)]
    pub group_id: String,
    /// A member's account id.
    #[param(value_type = Uuid)]
    pub account_id: String,
}

/// A new org group.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrgGroup {
    /// 1 to 200 characters, not all white space (trimmed), without U+0000;
    /// no other group of the org, SCIM groups included, has it
    /// (case-insensitively).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$",
        example = "confluence-users"
    )]
    name: String,
    /// Up to 1000 characters, without U+0000.
    #[schema(max_length = 1000, pattern = r"^[^\u0000]*$")]
    description: Option<String>,
}

/// A change to an org group: the fields given change (`description` null
/// clears it), those absent stay; at least one is given. (Its schema is
/// [`OrgGroupPatchFields`]' with `minProperties: 1`, which utoipa's
/// attribute of that name does not write.)
pub struct OrgGroupPatch;

impl utoipa::PartialSchema for OrgGroupPatch {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::Schema;
        use utoipa::openapi::RefOr;
        let mut schema = OrgGroupPatchFields::schema();
        if let RefOr::T(Schema::Object(object)) = &mut schema {
            object.min_properties = Some(1);
            object.description = Some(
                "A change to an org group: the fields given change (`description` null clears \
                 it), those absent stay; at least one is given."
                    .to_owned(),
            );
        }
        schema
    }
}

impl ToSchema for OrgGroupPatch {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <OrgGroupPatchFields as ToSchema>::schemas(schemas);
    }
}

/// The fields of [`OrgGroupPatch`].
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "describes the body for the OpenAPI document; parse_change reads it"
)]
pub struct OrgGroupPatchFields {
    /// Not null: a group always has a name.
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    name: Option<String>,
    #[schema(nullable, max_length = 1000, pattern = r"^[^\u0000]*$")]
    description: Option<String>,
}

/// Accounts to add to a group.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddMembers {
    /// Accounts of the org, 1 to 10,000; ids already members are left as
    /// they are.
    #[schema(min_items = 1, max_items = 10000)]
    account_ids: Vec<Uuid>,
}

/// An org group (of the org in the path).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrgGroupView {
    id: Uuid,
    name: String,
    description: Option<String>,
    #[schema(minimum = 0)]
    member_count: i64,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

impl From<&OrgGroupRow> for OrgGroupView {
    fn from(g: &OrgGroupRow) -> Self {
        OrgGroupView {
            id: g.id,
            name: g.name.clone(),
            description: g.description.clone(),
            member_count: g.member_count,
            created_at: time(g.created_at),
            updated_at: time(g.updated_at),
        }
    }
}

/// A member of an org group.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberView {
    account_id: Uuid,
    email: Option<String>,
    display_name: Option<String>,
    #[schema(format = DateTime)]
    added_at: String,
}

impl From<&OrgGroupMemberRow> for MemberView {
    fn from(m: &OrgGroupMemberRow) -> Self {
        MemberView {
            account_id: m.account_id,
            email: m.email.clone(),
            display_name: m.display_name.clone(),
            added_at: time(m.added_at),
        }
    }
}

/// An org group with its members.
#[derive(Serialize, ToSchema)]
pub struct OrgGroupWithMembers {
    #[serde(flatten)]
    group: OrgGroupView,
    members: Vec<MemberView>,
}

/// The org's groups, oldest first.
#[derive(Serialize, ToSchema)]
pub struct OrgGroupList {
    groups: Vec<OrgGroupView>,
}

/// How many accounts a request added.
#[derive(Serialize, ToSchema)]
pub struct MembersAdded {
    /// Accounts that were not members before.
    #[schema(minimum = 0)]
    added: u64,
}

/// The fields `PATCH` accepts, for the message that refuses others.
const PATCHABLE: &str = "name, description";

fn parse_change(body: &Value) -> Result<OrgGroupChange, AdminError> {
    let bad = |m: String| AdminError::BadRequest(m);
    let Value::Object(fields) = body else {
        return Err(bad(format!(
            "the body must be a JSON object with the fields to change ({PATCHABLE})"
        )));
    };
    if fields.is_empty() {
        return Err(bad(format!(
            "the body names no field to change ({PATCHABLE})"
        )));
    }
    let mut change = OrgGroupChange::default();
    for (name, value) in fields {
        match (name.as_str(), value) {
            ("name", Value::String(n)) => change.name = Some(check_name(n)?.to_owned()),
            ("name", _) => return Err(bad("name must be a string".to_owned())),
            ("description", Value::Null) => change.description = Some(None),
            ("description", Value::String(d)) => {
                change.description = Some(Some(check_description(d, MAX_DESCRIPTION_CHARS)?))
            }
            ("description", _) => {
                return Err(bad("description must be a string or null".to_owned()))
            }
            (other, _) => {
                return Err(bad(format!(
                    "unknown field '{other}': a group's PATCH accepts {PATCHABLE}"
                )))
            }
        }
    }
    Ok(change)
}

async fn group_ids(state: &AppState, org: &str, group: &str) -> Result<(Uuid, Uuid), AdminError> {
    let org = org_id(state, org).await?;
    let group = Uuid::parse_str(group).map_err(|_| AdminError::NotFound("group not found"))?;
    Ok((org, group))
}

/// Creates an org group.
#[utoipa::path(
    post,
    path = "/admin/v1/orgs/{orgId}/groups",
    tag = "groups",
    operation_id = "createOrgGroup",
    params(OrgPath),
    request_body = CreateOrgGroup,
    responses(
        (status = 201, description = "The group", body = OrgGroupView),
        (status = 404, description = "No such organisation", body = AdminErrorBody),
        (status = 409, description = "A group of the org (either kind) has this name", body = AdminErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    admin: AdminContext,
    AdminPath(p): AdminPath<OrgPath>,
    AdminJson(body): AdminJson<CreateOrgGroup>,
) -> Result<(StatusCode, Json<OrgGroupView>), AdminError> {
    let org = org_id(&state, &p.org_id).await?;
    let name = check_name(&body.name)?;
    let description = body
        .description
        .as_deref()
        .map(|d| check_description(d, MAX_DESCRIPTION_CHARS))
        .transpose()?;
    let group = state
        .store
        .create_org_group(org, name, description.as_deref(), &admin.audit)
        .await?;
    Ok((StatusCode::CREATED, Json(OrgGroupView::from(&group))))
}

/// Lists the org's groups (not the SCIM groups of its directories).
#[utoipa::path(
    get,
    path = "/admin/v1/orgs/{orgId}/groups",
    tag = "groups",
    operation_id = "listOrgGroups",
    params(OrgPath),
    responses(
        (status = 200, description = "The org groups", body = OrgGroupList),
        (status = 404, description = "No such organisation", body = AdminErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminContext,
    AdminPath(p): AdminPath<OrgPath>,
) -> Result<Json<OrgGroupList>, AdminError> {
    let org = org_id(&state, &p.org_id).await?;
    let groups = state.store.list_org_groups(org).await?;
    Ok(Json(OrgGroupList {
        groups: groups.iter().map(OrgGroupView::from).collect(),
    }))
}

/// Reads an org group with its members.
#[utoipa::path(
    get,
    path = "/admin/v1/orgs/{orgId}/groups/{groupId}",
    tag = "groups",
    operation_id = "getOrgGroup",
    params(OrgGroupPath),
    responses(
        (status = 200, description = "The group and its members", body = OrgGroupWithMembers),
        (status = 404, description = "No such organisation, or no such group in it", body = AdminErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    _admin: AdminContext,
    AdminPath(p): AdminPath<OrgGroupPath>,
) -> Result<Json<OrgGroupWithMembers>, AdminError> {
    let (org, id) = group_ids(&state, &p.org_id, &p.group_id).await?;
    let (group, members) = state.store.get_org_group(org, id).await?;
    Ok(Json(OrgGroupWithMembers {
        group: OrgGroupView::from(&group),
        members: members.iter().map(MemberView::from).collect(),
    }))
}

/// Renames an org group or changes its description.
#[utoipa::path(
    patch,
    path = "/admin/v1/orgs/{orgId}/groups/{groupId}",
    tag = "groups",
    operation_id = "updateOrgGroup",
    params(OrgGroupPath),
    request_body = OrgGroupPatch,
    responses(
        (status = 200, description = "The group, changed", body = OrgGroupView),
        (status = 404, description = "No such organisation, or no such group in it", body = AdminErrorBody),
        (status = 409, description = "Another group of the org (either kind) has this name", body = AdminErrorBody),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    admin: AdminContext,
    AdminPath(p): AdminPath<OrgGroupPath>,
    AdminJson(body): AdminJson<Value>,
) -> Result<Json<OrgGroupView>, AdminError> {
    let (org, id) = group_ids(&state, &p.org_id, &p.group_id).await?;
    let change = parse_change(&body)?;
    let group = state
        .store
        .update_org_group(org, id, &change, &admin.audit)
        .await?;
    Ok(Json(OrgGroupView::from(&group)))
}

/// Deletes an org group: its memberships, grants, default-group places and
/// the access its grants gave go with it.
#[utoipa::path(
    delete,
    path = "/admin/v1/orgs/{orgId}/groups/{groupId}",
    tag = "groups",
    operation_id = "deleteOrgGroup",
    params(OrgGroupPath),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such organisation, or no such group in it", body = AdminErrorBody),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    admin: AdminContext,
    AdminPath(p): AdminPath<OrgGroupPath>,
) -> Result<StatusCode, AdminError> {
    let (org, id) = group_ids(&state, &p.org_id, &p.group_id).await?;
    state.store.delete_org_group(org, id, &admin.audit).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Adds accounts of the org to a group, all or none.
#[utoipa::path(
    post,
    path = "/admin/v1/orgs/{orgId}/groups/{groupId}/members",
    tag = "groups",
    operation_id = "addOrgGroupMembers",
    params(OrgGroupPath),
    request_body = AddMembers,
    responses(
        (status = 200, description = "How many accounts were added", body = MembersAdded),
        (status = 404, description = "No such organisation or group, or an id is no account of the org (named; nothing is added)", body = AdminErrorBody),
    )
)]
pub async fn add_members(
    State(state): State<AppState>,
    admin: AdminContext,
    AdminPath(p): AdminPath<OrgGroupPath>,
    AdminJson(body): AdminJson<AddMembers>,
) -> Result<Json<MembersAdded>, AdminError> {
    let (org, id) = group_ids(&state, &p.org_id, &p.group_id).await?;
    if body.account_ids.is_empty() || body.account_ids.len() > MAX_MEMBERS_PER_REQUEST {
        return Err(AdminError::BadRequest(format!(
            "accountIds must name 1 to {MAX_MEMBERS_PER_REQUEST} accounts"
        )));
    }
    let added = state
        .store
        .add_org_group_members(org, id, &body.account_ids, &admin.audit)
        .await?;
    Ok(Json(MembersAdded { added }))
}

/// Removes an account from a group, and the access the group's grants
/// gave it.
#[utoipa::path(
    delete,
    path = "/admin/v1/orgs/{orgId}/groups/{groupId}/members/{accountId}",
    tag = "groups",
    operation_id = "removeOrgGroupMember",
    params(OrgGroupMemberPath),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such organisation or group, or the account is not a member", body = AdminErrorBody),
    )
)]
pub async fn remove_member(
    State(state): State<AppState>,
    admin: AdminContext,
    AdminPath(p): AdminPath<OrgGroupMemberPath>,
) -> Result<StatusCode, AdminError> {
    let (org, id) = group_ids(&state, &p.org_id, &p.group_id).await?;
    let account = Uuid::parse_str(&p.account_id)
        .map_err(|_| AdminError::NotFound("the account is not a member of the group"))?;
    state
        .store
        .remove_org_group_member(org, id, account, &admin.audit)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_change_names_known_fields_with_valid_values() {
        let change = parse_change(&json!({"name": " Ops ", "description": null})).unwrap();
        assert_eq!(change.name.as_deref(), Some("Ops"));
        assert_eq!(change.description, Some(None));
        let change = parse_change(&json!({"description": "d"})).unwrap();
        assert_eq!(change.name, None);
        assert_eq!(change.description, Some(Some("d".to_owned())));
        for bad in [
            json!({}),
            json!([]),
            json!({"name": ""}),
            json!({"name": 5}),
            json!({"name": null}),
            json!({"description": 5}),
            json!({"description": "x".repeat(MAX_DESCRIPTION_CHARS + 1)}),
            json!({"members": []}),
        ] {
            assert!(parse_change(&bad).is_err(), "{bad}");
        }
    }
}
