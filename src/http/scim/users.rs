//! `/Users`.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::verified_domain;
use super::{
    keyset, list_response, meta, not_modified, push_json_string, push_meta, query, resource_id,
    scim_text_response, CursorPage, CursorPaging, ResourceJson,
};
use crate::audit::{Target, TargetType};
use crate::directory::account::{linked_account, set_link};
use crate::directory::UserDraft;
use crate::http::error::ScimApiError;
use crate::http::extract::{if_match, ScimContext, ScimJson};
use crate::http::AppState;
use crate::scim::cursor::{CursorList, Position, Seek};
use crate::scim::list::{ListRequest, Page, Paging, Projection, QueryParams};
use crate::scim::patch::{apply_patch, parse_patch};
use crate::scim::resource::{drop_write_only, parse_attribute_value, parse_resource};
use crate::scim::schema::USER_RESOURCE;
use crate::scim::ScimError;
use crate::store::{UserGroup, UserRow};
use crate::sync::Touch;

const ATLASSIAN_EXTENSION: &str = "urn:scim:schemas:extension:atlassian-external:1.0";

#[derive(Deserialize)]
pub struct IdParam {
    pub id: String,
}

/// The user's groups as its read-only `groups` attribute lists them.
fn groups_json(ctx: &ScimContext, groups: &[&UserGroup]) -> Value {
    Value::Array(
        groups
            .iter()
            .map(|g| {
                json!({
                    "value": g.group_id.to_string(),
                    "$ref": format!("{}/Groups/{}", ctx.base_url, g.group_id),
                    "display": g.display_name,
                    "type": "direct",
                })
            })
            .collect(),
    )
}

fn user_meta(ctx: &ScimContext, row: &UserRow) -> Value {
    let location = format!("{}/Users/{}", ctx.base_url, row.id);
    meta(
        "User",
        &location,
        row.created_at,
        row.updated_at,
        row.version,
    )
}

/// The user as clients see it: the stored document plus id, groups, meta.
fn render(ctx: &ScimContext, row: &UserRow, groups: &[&UserGroup]) -> Value {
    let mut doc = row.doc_map();
    doc.insert("id".into(), Value::String(row.id.to_string()));
    if !groups.is_empty() {
        doc.insert("groups".into(), groups_json(ctx, groups));
    }
    doc.insert("meta".into(), user_meta(ctx, row));
    Value::Object(doc)
}

/// [`render`] as JSON text, written around the stored document's text
/// instead of parsing it into a map and serialising it again: that round
/// trip was a fifth of the instructions of a `GET /Users/{id}`. `None`
/// when the document is not a plain object without the server's own
/// attributes (stored documents never hold them; see `parse_resource`), so
/// the caller falls back to [`render`].
fn render_text(ctx: &ScimContext, row: &UserRow, groups: &[&UserGroup]) -> Option<String> {
    let doc = row.doc.trim();
    let inner = doc.strip_prefix('{')?.strip_suffix('}')?;
    // A key (or a whole value) equal to one of these: let serde decide.
    if ["\"id\"", "\"meta\"", "\"groups\""]
        .iter()
        .any(|k| inner.contains(k))
    {
        return None;
    }
    let mut out = String::with_capacity(doc.len() + 400 + groups.len() * 200);
    out.push('{');
    out.push_str(inner);
    if !inner.trim().is_empty() {
        out.push(',');
    }
    let mut id_buffer = Uuid::encode_buffer();
    let id = row.id.hyphenated().encode_lower(&mut id_buffer);
    out.push_str("\"id\":\"");
    out.push_str(id);
    out.push('"');
    if !groups.is_empty() {
        // As `groups_json` writes them, keys in the same order.
        out.push_str(",\"groups\":[");
        for (i, g) in groups.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let mut group_buffer = Uuid::encode_buffer();
            let group_id = g.group_id.hyphenated().encode_lower(&mut group_buffer);
            out.push_str("{\"$ref\":");
            push_json_string(&mut out, &[&ctx.base_url, "/Groups/", group_id]);
            out.push_str(",\"display\":");
            push_json_string(&mut out, &[&g.display_name]);
            out.push_str(",\"type\":\"direct\",\"value\":\"");
            out.push_str(group_id);
            out.push_str("\"}");
        }
        out.push(']');
    }
    out.push_str(",\"meta\":");
    push_meta(
        &mut out,
        "User",
        &[&ctx.base_url, "/Users/", id],
        row.created_at,
        row.updated_at,
        row.version,
    );
    out.push('}');
    Some(out)
}

fn respond(
    ctx: &ScimContext,
    status: StatusCode,
    row: &UserRow,
    groups: &[UserGroup],
    projection: &Projection,
) -> Response {
    let groups: Vec<&UserGroup> = groups.iter().filter(|g| g.member_id == row.id).collect();
    let location =
        (status == StatusCode::CREATED).then(|| format!("{}/Users/{}", ctx.base_url, row.id));
    scim_text_response(
        status,
        render_projected(ctx, row, &groups, projection),
        Some(row.version),
        location.as_deref(),
    )
}

/// The user as the request asked for it, as JSON text: around the stored
/// text when nothing is projected away ([`render_text`]), through the map
/// otherwise.
fn render_projected(
    ctx: &ScimContext,
    row: &UserRow,
    groups: &[&UserGroup],
    projection: &Projection,
) -> String {
    if projection.is_identity() {
        if let Some(text) = render_text(ctx, row, groups) {
            return text;
        }
    }
    projection
        .apply(&USER_RESOURCE, render(ctx, row, groups))
        .to_string()
}

/// Parses a POST body into the user to store. `active` defaults to
/// true, as Atlassian's directory does. It names a new account id, which
/// the store keeps if no account of the org has the user's email (and
/// replaces with that account's otherwise).
fn new_user(body: &Value) -> Result<UserDraft, ScimApiError> {
    let mut doc = user_doc(body)?;
    doc.entry("active").or_insert(Value::Bool(true));
    set_link(&mut doc, Some(Uuid::new_v4()));
    Ok(UserDraft::from_doc(&doc)?)
}

/// A POST/PUT body as the document to store, `active` as sent (or not).
fn user_doc(body: &Value) -> Result<Map<String, Value>, ScimApiError> {
    let mut doc = parse_resource(&USER_RESOURCE, body)?;
    // The Atlassian account link is the server's to set, never the client's.
    doc.remove(ATLASSIAN_EXTENSION);
    Ok(doc)
}

pub async fn create(
    State(state): State<AppState>,
    ctx: ScimContext,
    raw: RawQuery,
    ScimJson(body): ScimJson,
) -> Result<Response, ScimApiError> {
    let params = query(&raw)?;
    let row = create_row(&state, &ctx, &body).await?;
    Ok(respond(
        &ctx,
        StatusCode::CREATED,
        &row,
        &[],
        &params.projection,
    ))
}

pub async fn get(
    State(state): State<AppState>,
    ctx: ScimContext,
    Path(p): Path<IdParam>,
    raw: RawQuery,
    headers: HeaderMap,
) -> Result<Response, ScimApiError> {
    let params = query(&raw)?;
    let id = resource_id(&p.id)?;
    let (row, groups) = state
        .store
        .get_user_with_groups(ctx.directory_id, id)
        .await?;
    if let Some(resp) = not_modified(&headers, row.version) {
        return Ok(resp);
    }
    Ok(respond(
        &ctx,
        StatusCode::OK,
        &row,
        &groups,
        &params.projection,
    ))
}

pub async fn list(
    State(state): State<AppState>,
    ctx: ScimContext,
    raw: RawQuery,
) -> Result<Response, ScimApiError> {
    let params = query(&raw)?;
    respond_list(&state, &ctx, &params).await
}

/// `POST /Users/.search`: the same listing with a SearchRequest body.
pub async fn search(
    State(state): State<AppState>,
    ctx: ScimContext,
    ScimJson(body): ScimJson,
) -> Result<Response, ScimApiError> {
    let params = QueryParams::from_search(&body)?;
    respond_list(&state, &ctx, &params).await
}

async fn respond_list(
    state: &AppState,
    ctx: &ScimContext,
    params: &QueryParams,
) -> Result<Response, ScimApiError> {
    let request = params.list_request(&USER_RESOURCE)?;
    match params.paging(state.settings.max_page_size)? {
        Paging::Index(page) => {
            let (total, resources) = list_page(state, ctx, params, &request, page).await?;
            Ok(list_response(total, page.start_index, resources))
        }
        Paging::Cursor { token, count } => {
            let cursors = CursorPaging::new(state, ctx, "Users", params, count, CursorList::Users);
            let seek = cursors.start(token)?;
            if seek.position().list != CursorList::Users {
                return Err(ScimError::invalid_cursor("the cursor is not one of this list").into());
            }
            let found = cursor_page(state, ctx, params, &request, seek, count).await?;
            Ok(cursors.respond(seek, found))
        }
    }
}

/// A cursor page of users (RFC 9865): up to `count` after, or before, the
/// key `seek` names.
pub(super) async fn cursor_page(
    state: &AppState,
    ctx: &ScimContext,
    params: &QueryParams,
    request: &ListRequest<'_>,
    seek: Seek,
    count: i64,
) -> Result<CursorPage, ScimApiError> {
    let (total, rows, more) = state
        .store
        .list_users_keyset(
            ctx.directory_id,
            request,
            keyset(seek),
            count,
            !params.projection.excludes("groups"),
        )
        .await?;
    let key = |row: &UserRow| Position {
        list: CursorList::Users,
        created_at: row.created_at,
        id: row.id,
    };
    let resources = rows
        .iter()
        .map(|(row, groups)| {
            let groups: Vec<&UserGroup> = groups.iter().collect();
            ResourceJson::from_rendered(render_projected(ctx, row, &groups, &params.projection))
        })
        .collect();
    Ok(CursorPage {
        total,
        resources,
        before: rows.first().map(|(row, _)| key(row)),
        after: rows.last().map(|(row, _)| key(row)),
        more,
    })
}

/// One page of users, rendered and projected, and the total count.
pub(super) async fn list_page(
    state: &AppState,
    ctx: &ScimContext,
    params: &QueryParams,
    request: &ListRequest<'_>,
    page: Page,
) -> Result<(i64, Vec<ResourceJson>), ScimApiError> {
    let (total, rows) = state
        .store
        .list_users(
            ctx.directory_id,
            request,
            page,
            !params.projection.excludes("groups"),
        )
        .await?;
    let resources = rows
        .iter()
        .map(|(row, groups)| {
            let groups: Vec<&UserGroup> = groups.iter().collect();
            ResourceJson::from_rendered(render_projected(ctx, row, &groups, &params.projection))
        })
        .collect();
    Ok((total, resources))
}

pub async fn replace(
    State(state): State<AppState>,
    ctx: ScimContext,
    Path(p): Path<IdParam>,
    raw: RawQuery,
    headers: HeaderMap,
    ScimJson(body): ScimJson,
) -> Result<Response, ScimApiError> {
    let params = query(&raw)?;
    let id = resource_id(&p.id)?;
    let with_groups = !params.projection.excludes("groups");
    let (row, groups) =
        replace_row(&state, &ctx, id, &body, if_match(&headers), with_groups).await?;
    Ok(respond(
        &ctx,
        StatusCode::OK,
        &row,
        &groups,
        &params.projection,
    ))
}

pub async fn patch(
    State(state): State<AppState>,
    ctx: ScimContext,
    Path(p): Path<IdParam>,
    raw: RawQuery,
    headers: HeaderMap,
    ScimJson(body): ScimJson,
) -> Result<Response, ScimApiError> {
    let params = query(&raw)?;
    let id = resource_id(&p.id)?;
    let with_groups = !params.projection.excludes("groups");
    let (row, groups) = patch_row(&state, &ctx, id, &body, if_match(&headers), with_groups).await?;
    Ok(respond(
        &ctx,
        StatusCode::OK,
        &row,
        &groups,
        &params.projection,
    ))
}

pub async fn delete(
    State(state): State<AppState>,
    ctx: ScimContext,
    Path(p): Path<IdParam>,
    headers: HeaderMap,
) -> Result<StatusCode, ScimApiError> {
    let id = resource_id(&p.id)?;
    delete_row(&state, &ctx, id, if_match(&headers)).await?;
    Ok(StatusCode::NO_CONTENT)
}

// The writes themselves, shared by the handlers above and by Bulk.

pub(super) async fn create_row(
    state: &AppState,
    ctx: &ScimContext,
    body: &Value,
) -> Result<UserRow, ScimApiError> {
    ctx.note_target(|| Target::from_body(TargetType::User, None, body));
    let user = new_user(body)?;
    verified_domain::check_user(state, ctx, &user).await?;
    let change = state.sync.will_change(ctx.directory_id).await?;
    let row = state
        .store
        .insert_user(ctx.directory_id, user, &ctx.audit)
        .await?;
    change.touch(Touch::Users(ctx.directory_id, vec![row.id]));
    Ok(row)
}

pub(super) async fn replace_row(
    state: &AppState,
    ctx: &ScimContext,
    id: Uuid,
    body: &Value,
    version: Option<i64>,
    with_groups: bool,
) -> Result<(UserRow, Vec<UserGroup>), ScimApiError> {
    let doc = user_doc(body)?;
    // Check the body before reading the user, as for any other write.
    let draft = UserDraft::from_doc(&doc)?;
    verified_domain::check_user(state, ctx, &draft).await?;
    let change = state.sync.will_change(ctx.directory_id).await?;
    let written = state
        .store
        .modify_user::<_, ScimApiError>(
            ctx.directory_id,
            id,
            version,
            with_groups,
            &ctx.audit,
            move |current: Map<String, Value>| {
                let mut doc = doc.clone();
                // The account link is the server's: it stays as it was.
                set_link(&mut doc, linked_account(&current));
                // A PUT that leaves `active` out keeps the user's status:
                // Okta changes a status only through `active`, so a whole
                // profile without it must not reactivate a deactivated user.
                if !doc.contains_key("active") {
                    let active = current
                        .get("active")
                        .and_then(Value::as_bool)
                        .unwrap_or(true);
                    doc.insert("active".to_string(), Value::Bool(active));
                }
                Ok(UserDraft::from_doc(&doc)?)
            },
        )
        .await?;
    change.touch(Touch::Users(ctx.directory_id, vec![id]));
    Ok(written)
}

pub(super) async fn patch_row(
    state: &AppState,
    ctx: &ScimContext,
    id: Uuid,
    body: &Value,
    version: Option<i64>,
    with_groups: bool,
) -> Result<(UserRow, Vec<UserGroup>), ScimApiError> {
    let request = parse_patch(body)?;
    let guard = verified_domain::DomainGuard::for_patch(state, ctx, id, &request).await?;
    let change = state.sync.will_change(ctx.directory_id).await?;
    let written = state
        .store
        .modify_user::<_, ScimApiError>(
            ctx.directory_id,
            id,
            version,
            with_groups,
            &ctx.audit,
            move |mut doc: Map<String, Value>| {
                apply_patch(&USER_RESOURCE, &mut doc, &request, &parse_attribute_value)?;
                // PATCH may set `password`; it is accepted but never stored.
                drop_write_only(&USER_RESOURCE, &mut doc);
                guard.check(UserDraft::from_doc(&doc)?)
            },
        )
        .await?;
    change.touch(Touch::Users(ctx.directory_id, vec![id]));
    Ok(written)
}

pub(super) async fn delete_row(
    state: &AppState,
    ctx: &ScimContext,
    id: Uuid,
    version: Option<i64>,
) -> Result<(), ScimApiError> {
    let change = state.sync.will_change(ctx.directory_id).await?;
    let deleted = state
        .store
        .delete_user(ctx.directory_id, id, version, &ctx.audit)
        .await?;
    // Its account loses what this directory gave it; its groups are
    // smaller, which matters only to a group over the limit.
    change.touch(Touch::UserDeleted(
        ctx.directory_id,
        deleted.account_id,
        deleted.groups,
    ));
    Ok(())
}
