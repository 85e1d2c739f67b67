//! `/admin/v1/orgs/{orgId}/accounts`: the org-level accounts its SCIM users
//! link to — list and search them, read one with its SCIM links, groups
//! and email conflicts, deactivate and reactivate it.

use axum::extract::{RawQuery, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{org_id, query_pairs, time, OrgPath};
use crate::directory::account::AccountType;
use crate::http::error::{AdminError, AdminErrorBody};
use crate::http::extract::{AdminContext, AdminJson, AdminPath};
use crate::http::AppState;
use crate::store::{AccountGroupRow, AccountQuery, AccountRow, EmailConflictRow, LinkRow};
use crate::sync::Touch;

pub(super) const DEFAULT_LIMIT: i64 = 100;
pub(super) const MAX_LIMIT: i64 = 1000;

/// An org-level account.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    id: Uuid,
    org_id: Uuid,
    /// Lowercased; null for an account made for a user without email.
    email: Option<String>,
    email_domain: Option<String>,
    display_name: Option<String>,
    active: bool,
    /// Its email's domain is verified by the organisation.
    managed: bool,
    /// `managed` or `external`, as `managed` says.
    #[schema(pattern = "^(managed|external)$")]
    r#type: String,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

impl From<&AccountRow> for AccountView {
    fn from(a: &AccountRow) -> Self {
        AccountView {
            id: a.id,
            org_id: a.org_id,
            email: a.email.clone(),
            email_domain: a.email_domain.clone(),
            display_name: a.display_name.clone(),
            active: a.active,
            managed: a.managed,
            r#type: match AccountType::of(a.managed) {
                AccountType::Managed => "managed".into(),
                AccountType::External => "external".into(),
            },
            created_at: time(a.created_at),
            updated_at: time(a.updated_at),
        }
    }
}

/// A SCIM user linked to an account.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScimLinkView {
    directory_id: Uuid,
    directory_name: String,
    user_id: Uuid,
    user_name: String,
    active: bool,
    /// The user's primary email, lowercased.
    email: Option<String>,
}

impl From<&LinkRow> for ScimLinkView {
    fn from(l: &LinkRow) -> Self {
        ScimLinkView {
            directory_id: l.directory_id,
            directory_name: l.directory_name.clone(),
            user_id: l.user_id,
            user_name: l.user_name.clone(),
            active: l.active,
            email: l.email.clone(),
        }
    }
}

/// A SCIM group a linked user belongs to.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountGroupView {
    id: Uuid,
    display_name: String,
    directory_id: Uuid,
}

impl From<&AccountGroupRow> for AccountGroupView {
    fn from(g: &AccountGroupRow) -> Self {
        AccountGroupView {
            id: g.id,
            display_name: g.display_name.clone(),
            directory_id: g.directory_id,
        }
    }
}

/// A SCIM user's email that its account did not take.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EmailConflictView {
    directory_id: Uuid,
    user_id: Uuid,
    scim_email: String,
    account_email: Option<String>,
    /// `domainNotVerified` or `emailTaken`.
    #[schema(pattern = "^(domainNotVerified|emailTaken)$")]
    reason: String,
    #[schema(format = DateTime)]
    recorded_at: String,
}

impl From<&EmailConflictRow> for EmailConflictView {
    fn from(c: &EmailConflictRow) -> Self {
        EmailConflictView {
            directory_id: c.directory_id,
            user_id: c.user_id,
            scim_email: c.scim_email.clone(),
            account_email: c.account_email.clone(),
            reason: c.reason.clone(),
            recorded_at: time(c.recorded_at),
        }
    }
}

/// An account with its SCIM links, their groups and its email conflicts.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountDetail {
    #[serde(flatten)]
    account: AccountView,
    links: Vec<ScimLinkView>,
    groups: Vec<AccountGroupView>,
    email_conflicts: Vec<EmailConflictView>,
}

/// A page of accounts.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountList {
    accounts: Vec<AccountView>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// `{orgId}` and `{accountId}`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[serde(rename_all = "camelCase")]
pub struct AccountPath {
    /// An organisation's id, or `default`.
    #[param(schema_with = super::org_id_schema)]
    pub org_id: String,
    /// An account's id. One that is not a UUID names no account: 404.
    #[param(value_type = Uuid)]
    pub account_id: String,
}

/// The list's query string (read by `parse_query`, which gives each bad
/// value its own message; this describes it for the document).
#[derive(IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[expect(
    dead_code,
    reason = "describes the query string for the OpenAPI document"
)]
pub struct AccountQueryDoc {
    /// Accounts whose email starts with this, case-insensitively (a whole
    /// address matches itself and any longer address it begins).
    #[param(pattern = r"^[^\u0000]*$")]
    email: Option<String>,
    /// `active` or `inactive`.
    #[param(pattern = "^(active|inactive)$")]
    status: Option<String>,
    /// `managed` or `external`.
    #[param(pattern = "^(managed|external)$")]
    r#type: Option<String>,
    /// Accounts linked to a user of this directory.
    directory_id: Option<Uuid>,
    /// 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// `nextCursor` of the previous page.
    cursor: Option<String>,
}

fn bad(message: impl Into<String>) -> AdminError {
    AdminError::BadRequest(message.into())
}

/// A page's `limit`: 1 to [`MAX_LIMIT`].
pub(super) fn parse_limit(value: &str) -> Result<i64, AdminError> {
    value
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|n| (1..=MAX_LIMIT).contains(n))
        .ok_or_else(|| bad(format!("'limit' must be an integer from 1 to {MAX_LIMIT}")))
}

/// A keyset cursor: the (creation time, id) of a page's last row.
pub(super) fn encode_cursor(created_at: i64, id: Uuid) -> String {
    format!("{created_at}.{}", id.simple())
}

pub(super) fn decode_cursor(raw: &str) -> Result<(i64, Uuid), AdminError> {
    let invalid = || bad("'cursor' is not a cursor this list returned");
    let (at, id) = raw.trim().split_once('.').ok_or_else(invalid)?;
    let at = at.parse::<i64>().map_err(|_| invalid())?;
    let id = Uuid::try_parse(id).map_err(|_| invalid())?;
    Ok((at, id))
}

fn parse_query(org: Uuid, raw: Option<&str>) -> Result<AccountQuery, AdminError> {
    let mut q = AccountQuery {
        org_id: org,
        limit: DEFAULT_LIMIT,
        ..AccountQuery::default()
    };
    for (key, value) in query_pairs(raw)? {
        match key.as_str() {
            "email" => {
                if value.contains('\0') {
                    return Err(bad("'email' may not contain U+0000"));
                }
                q.email_prefix = Some(value.trim().to_lowercase()).filter(|v| !v.is_empty());
            }
            "status" => {
                q.active = Some(match value.trim() {
                    "active" => true,
                    "inactive" => false,
                    _ => return Err(bad("'status' must be 'active' or 'inactive'")),
                })
            }
            "type" => {
                q.managed = Some(match value.trim() {
                    "managed" => true,
                    "external" => false,
                    _ => return Err(bad("'type' must be 'managed' or 'external'")),
                })
            }
            "directoryId" => {
                q.directory_id = Some(
                    Uuid::parse_str(value.trim())
                        .map_err(|_| bad("'directoryId' must be a directory id"))?,
                )
            }
            "limit" => q.limit = parse_limit(&value)?,
            "cursor" => q.after = Some(decode_cursor(&value)?),
            other => return Err(bad(format!("unknown query parameter '{other}'"))),
        }
    }
    Ok(q)
}

/// The org and account a path names; an account id that is not a UUID
/// names no account.
pub(super) async fn resolve(state: &AppState, p: &AccountPath) -> Result<(Uuid, Uuid), AdminError> {
    let org = org_id(state, &p.org_id).await?;
    let id =
        Uuid::parse_str(&p.account_id).map_err(|_| AdminError::NotFound("account not found"))?;
    Ok((org, id))
}

/// Lists and searches an organisation's accounts, oldest first, in pages.
#[utoipa::path(
    get,
    path = "/admin/v1/orgs/{orgId}/accounts",
    tag = "accounts",
    operation_id = "listAccounts",
    params(OrgPath, AccountQueryDoc),
    responses(
        (status = 200, description = "A page of accounts", body = AccountList),
        (status = 404, description = "No such organisation", body = AdminErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminContext,
    AdminPath(p): AdminPath<OrgPath>,
    RawQuery(raw): RawQuery,
) -> Result<Json<AccountList>, AdminError> {
    let org = org_id(&state, &p.org_id).await?;
    let q = parse_query(org, raw.as_deref())?;
    let (rows, more) = state.store.list_accounts(&q).await?;
    let next_cursor = match (more, rows.last()) {
        (true, Some(last)) => Some(encode_cursor(last.created_at, last.id)),
        _ => None,
    };
    Ok(Json(AccountList {
        accounts: rows.iter().map(AccountView::from).collect(),
        next_cursor,
    }))
}

/// Reads an account with its SCIM links, the groups of its linked users
/// and its email conflicts.
#[utoipa::path(
    get,
    path = "/admin/v1/orgs/{orgId}/accounts/{accountId}",
    tag = "accounts",
    operation_id = "getAccount",
    params(AccountPath),
    responses(
        (status = 200, description = "The account", body = AccountDetail),
        (status = 404, description = "No such organisation, or no such account in it", body = AdminErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    _admin: AdminContext,
    AdminPath(p): AdminPath<AccountPath>,
) -> Result<Json<AccountDetail>, AdminError> {
    let (org, id) = resolve(&state, &p).await?;
    let account = state
        .store
        .get_account(org, id)
        .await?
        .ok_or(AdminError::NotFound("account not found"))?;
    let links = state.store.account_links(id).await?;
    let groups = state.store.account_groups(id).await?;
    let conflicts = state.store.account_email_conflicts(id).await?;
    Ok(Json(AccountDetail {
        account: AccountView::from(&account),
        links: links.iter().map(ScimLinkView::from).collect(),
        groups: groups.iter().map(AccountGroupView::from).collect(),
        email_conflicts: conflicts.iter().map(EmailConflictView::from).collect(),
    }))
}

async fn set_active(
    state: &AppState,
    admin: &AdminContext,
    p: &AccountPath,
    active: bool,
) -> Result<Json<AccountView>, AdminError> {
    let (org, id) = resolve(state, p).await?;
    // The store revokes a deactivated account's access, and gives back its
    // org groups' access, in the same transaction; its SCIM users'
    // directories apply the rest as for a change of theirs: at once when
    // continuous, at the next run when scheduled.
    let mut users: BTreeMap<Uuid, Vec<Uuid>> = BTreeMap::new();
    for link in state.store.account_links(id).await? {
        users
            .entry(link.directory_id)
            .or_default()
            .push(link.user_id);
    }
    let mut changes = Vec::with_capacity(users.len());
    for directory in users.keys() {
        changes.push(state.sync.will_change(*directory).await?);
    }
    let row = state
        .store
        .set_account_active(org, id, active, &admin.audit)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound => AdminError::NotFound("account not found"),
            other => other.into(),
        })?;
    for (change, (directory, users)) in changes.into_iter().zip(users) {
        change.touch(Touch::Users(directory, users));
    }
    Ok(Json(AccountView::from(&row)))
}

/// Deactivates an account (its SCIM users are left as they are; a SCIM
/// user made active again reactivates it). Records `account.deactivated`.
#[utoipa::path(
    post,
    path = "/admin/v1/orgs/{orgId}/accounts/{accountId}/deactivate",
    tag = "accounts",
    operation_id = "deactivateAccount",
    params(AccountPath),
    responses(
        (status = 200, description = "The account, inactive", body = AccountView),
        (status = 404, description = "No such organisation, or no such account in it", body = AdminErrorBody),
    )
)]
pub async fn deactivate(
    State(state): State<AppState>,
    admin: AdminContext,
    AdminPath(p): AdminPath<AccountPath>,
) -> Result<Json<AccountView>, AdminError> {
    set_active(&state, &admin, &p, false).await
}

/// Reactivates an account. Records `account.reactivated`.
#[utoipa::path(
    post,
    path = "/admin/v1/orgs/{orgId}/accounts/{accountId}/reactivate",
    tag = "accounts",
    operation_id = "reactivateAccount",
    params(AccountPath),
    responses(
        (status = 200, description = "The account, active", body = AccountView),
        (status = 404, description = "No such organisation, or no such account in it", body = AdminErrorBody),
    )
)]
pub async fn reactivate(
    State(state): State<AppState>,
    admin: AdminContext,
    AdminPath(p): AdminPath<AccountPath>,
) -> Result<Json<AccountView>, AdminError> {
    set_active(&state, &admin, &p, true).await
}

/// A page of SCIM users linked to no account.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnlinkedUsers {
    users: Vec<ScimLinkView>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// The paging of `unlinked-users` (read by `unlinked_users`).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "describes the query string for the OpenAPI document"
)]
pub struct PageQueryDoc {
    /// 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// `nextCursor` of the previous page.
    cursor: Option<String>,
}

/// Lists the SCIM users of the organisation's directories that are linked
/// to no account (unlinked through the Atlassian-compatible route), oldest
/// first, in pages.
#[utoipa::path(
    get,
    path = "/admin/v1/orgs/{orgId}/unlinked-users",
    tag = "accounts",
    operation_id = "listUnlinkedUsers",
    params(OrgPath, PageQueryDoc),
    responses(
        (status = 200, description = "A page of unlinked SCIM users", body = UnlinkedUsers),
        (status = 404, description = "No such organisation", body = AdminErrorBody),
    )
)]
pub async fn unlinked_users(
    State(state): State<AppState>,
    _admin: AdminContext,
    AdminPath(p): AdminPath<OrgPath>,
    RawQuery(raw): RawQuery,
) -> Result<Json<UnlinkedUsers>, AdminError> {
    let org = org_id(&state, &p.org_id).await?;
    let (mut limit, mut after) = (DEFAULT_LIMIT, None);
    for (key, value) in query_pairs(raw.as_deref())? {
        match key.as_str() {
            "limit" => limit = parse_limit(&value)?,
            "cursor" => after = Some(decode_cursor(&value)?),
            other => return Err(bad(format!("unknown query parameter '{other}'"))),
        }
    }
    let (rows, more) = state.store.unlinked_users(org, after, limit).await?;
    let next_cursor = match (more, rows.last()) {
        (true, Some(last)) => Some(encode_cursor(last.created_at, last.user_id)),
        _ => None,
    };
    Ok(Json(UnlinkedUsers {
        users: rows.iter().map(ScimLinkView::from).collect(),
        next_cursor,
    }))
}

/// The account to link a SCIM user to.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Relink {
    account_id: Uuid,
}

/// A SCIM user and the account it is now linked to.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinkedUser {
    #[serde(flatten)]
    user: ScimLinkView,
    account_id: Option<Uuid>,
}

/// Links a SCIM user to a chosen account of the organisation (a record
/// that was unlinked, or one linked to the wrong account); its
/// `atlassianAccountId` names that account from then on. Records
/// `account.relinked`.
#[utoipa::path(
    put,
    path = "/admin/v1/orgs/{orgId}/directories/{directoryId}/users/{userId}/account",
    tag = "accounts",
    operation_id = "relinkScimUser",
    params(super::atlassian::ScimUserPath),
    request_body = Relink,
    responses(
        (status = 200, description = "The SCIM user, linked", body = LinkedUser),
        (status = 404, description = "No such organisation, directory of it, user of that directory, or account of the organisation", body = AdminErrorBody),
    )
)]
pub async fn relink(
    State(state): State<AppState>,
    admin: AdminContext,
    AdminPath(p): AdminPath<super::atlassian::ScimUserPath>,
    AdminJson(body): AdminJson<Relink>,
) -> Result<Json<LinkedUser>, AdminError> {
    let (org, directory, user) = super::atlassian::resolve_user(&state, &p).await?;
    let row = state
        .store
        .set_user_link(org, directory, user, Some(body.account_id), &admin.audit)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound => {
                AdminError::NotFound("no such SCIM user, or no such account in the organisation")
            }
            other => other.into(),
        })?;
    Ok(Json(LinkedUser {
        user: ScimLinkView::from(&row),
        account_id: row.account_id,
    }))
}

/// `groupName`, required.
#[derive(IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[expect(
    dead_code,
    reason = "describes the query string for the OpenAPI document"
)]
pub struct GroupNameQueryDoc {
    /// A SCIM group's displayName, compared case-insensitively, in every
    /// directory of the organisation.
    #[param(min_length = 1, pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$")]
    group_name: String,
}

/// The SCIM links (Atlassian's shape) of the members of the groups of
/// that name, across the organisation's directories.
#[utoipa::path(
    get,
    path = "/admin/v1/orgs/{orgId}/scim-links",
    tag = "accounts",
    operation_id = "getScimLinksForGroup",
    params(OrgPath, GroupNameQueryDoc),
    responses(
        (status = 200, description = "The members' SCIM links (no such group: an empty list)", body = super::atlassian::ScimLinks),
        (status = 404, description = "No such organisation", body = AdminErrorBody),
    )
)]
pub async fn scim_links_for_group(
    State(state): State<AppState>,
    _admin: AdminContext,
    AdminPath(p): AdminPath<OrgPath>,
    RawQuery(raw): RawQuery,
) -> Result<Json<super::atlassian::ScimLinks>, AdminError> {
    let org = org_id(&state, &p.org_id).await?;
    let mut name = None;
    for (key, value) in query_pairs(raw.as_deref())? {
        match key.as_str() {
            "groupName" => name = Some(value),
            other => return Err(bad(format!("unknown query parameter '{other}'"))),
        }
    }
    let name = name
        .filter(|n| !super::trim_space(n).is_empty() && !n.contains('\0'))
        .ok_or_else(|| bad("'groupName' is required: a group's displayName"))?;
    let links = state
        .store
        .links_for_group_name(org, super::trim_space(&name))
        .await?;
    Ok(Json(super::atlassian::ScimLinks::new(org, &links)))
}
