//! `/Groups`. Members live in their own table; they are read only when the
//! response will show them.

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::users::IdParam;
use super::{
    keyset, list_response, meta, not_modified, query, resource_id, scim_response, CursorPage,
    CursorPaging, ResourceJson,
};
use crate::audit::{Target, TargetType};
use crate::directory::{group::member_ids, GroupChange, GroupDraft};
use crate::http::error::ScimApiError;
use crate::http::extract::{etag, if_match, ScimContext, ScimJson};
use crate::http::AppState;
use crate::scim::cursor::{CursorList, Position, Seek};
use crate::scim::list::{ListRequest, Page, Paging, Projection, QueryParams};
use crate::scim::patch::{apply_patch, parse_patch, MemberChange};
use crate::scim::resource::{
    drop_write_only, parse_attribute_value, parse_members, parse_resource,
};
use crate::scim::schema::GROUP_RESOURCE;
use crate::scim::ScimError;
use crate::store::{GroupRow, MemberRow};
use crate::sync::Touch;
use std::sync::{Arc, Mutex};

/// One entry of a group's `members`.
pub(super) fn member_json(base_url: &str, m: &MemberRow) -> Value {
    let endpoint = if m.member_type == "Group" {
        "Groups"
    } else {
        "Users"
    };
    let mut v = json!({
        "value": m.member_id.to_string(),
        "$ref": format!("{base_url}/{endpoint}/{}", m.member_id),
        "type": m.member_type,
    });
    if let Some(d) = &m.display {
        v["display"] = Value::String(d.clone());
    }
    v
}

pub(super) fn render(ctx: &ScimContext, row: &GroupRow, members: Option<&[&MemberRow]>) -> Value {
    let mut doc = row.doc_map();
    let location = format!("{}/Groups/{}", ctx.base_url, row.id);
    doc.insert("id".into(), Value::String(row.id.to_string()));
    if let Some(members) = members {
        let list: Vec<Value> = members
            .iter()
            .map(|m| member_json(&ctx.base_url, m))
            .collect();
        doc.insert("members".into(), Value::Array(list));
    }
    doc.insert(
        "meta".into(),
        meta(
            "Group",
            &location,
            row.created_at,
            row.updated_at,
            row.version,
        ),
    );
    Value::Object(doc)
}

async fn members_for(
    state: &AppState,
    ids: &[Uuid],
    projection: &Projection,
) -> Result<Option<Vec<MemberRow>>, ScimApiError> {
    if projection.excludes("members") {
        return Ok(None);
    }
    Ok(Some(state.store.members_of(ids).await?))
}

async fn respond(
    state: &AppState,
    ctx: &ScimContext,
    status: StatusCode,
    row: &GroupRow,
    projection: &Projection,
) -> Result<Response, ScimApiError> {
    let members = members_for(state, &[row.id], projection).await?;
    let refs: Option<Vec<&MemberRow>> = members.as_ref().map(|m| m.iter().collect());
    let full = render(ctx, row, refs.as_deref());
    let location =
        (status == StatusCode::CREATED).then(|| format!("{}/Groups/{}", ctx.base_url, row.id));
    Ok(scim_response(
        status,
        &projection.apply(&GROUP_RESOURCE, full),
        Some(row.version),
        location.as_deref(),
    ))
}

/// Parses a POST/PUT body into the group and its member ids.
fn new_group(body: &Value) -> Result<(GroupDraft, Vec<String>), ScimApiError> {
    let doc = parse_resource(&GROUP_RESOURCE, body)?;
    let members = parse_members(body)?
        .unwrap_or_default()
        .into_iter()
        .map(|m| m.value)
        .collect();
    Ok((GroupDraft::from_doc(&doc)?, members))
}

pub async fn create(
    State(state): State<AppState>,
    ctx: ScimContext,
    raw: RawQuery,
    ScimJson(body): ScimJson,
) -> Result<Response, ScimApiError> {
    let params = query(&raw)?;
    let row = create_row(&state, &ctx, &body).await?;
    respond(&state, &ctx, StatusCode::CREATED, &row, &params.projection).await
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
    let row = state.store.get_group(ctx.directory_id, id).await?;
    if let Some(resp) = not_modified(&headers, row.version) {
        return Ok(resp);
    }
    let p = &params.projection;
    if p.attributes.is_empty() && p.excluded.is_empty() {
        // Members are streamed from the store in batches, so a group of
        // 100,000 members is never held in memory at once.
        return Ok(super::group_stream::stream_group(state, ctx, row));
    }
    respond(&state, &ctx, StatusCode::OK, &row, &params.projection).await
}

pub async fn list(
    State(state): State<AppState>,
    ctx: ScimContext,
    raw: RawQuery,
) -> Result<Response, ScimApiError> {
    let params = query(&raw)?;
    respond_list(&state, &ctx, &params).await
}

/// `POST /Groups/.search`: the same listing with a SearchRequest body.
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
    let request = params.list_request(&GROUP_RESOURCE)?;
    match params.paging(state.settings.max_page_size)? {
        Paging::Index(page) => {
            let (total, resources) = list_page(state, ctx, params, &request, page).await?;
            Ok(list_response(total, page.start_index, resources))
        }
        Paging::Cursor { token, count } => {
            let cursors =
                CursorPaging::new(state, ctx, "Groups", params, count, CursorList::Groups);
            let seek = cursors.start(token)?;
            if seek.position().list != CursorList::Groups {
                return Err(ScimError::invalid_cursor("the cursor is not one of this list").into());
            }
            let found = cursor_page(state, ctx, params, &request, seek, count).await?;
            Ok(cursors.respond(seek, found))
        }
    }
}

/// A cursor page of groups (RFC 9865): up to `count` after, or before, the
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
        .list_groups_keyset(ctx.directory_id, request, keyset(seek), count)
        .await?;
    let key = |row: &GroupRow| Position {
        list: CursorList::Groups,
        created_at: row.created_at,
        id: row.id,
    };
    let resources = rendered(state, ctx, params, &rows).await?;
    Ok(CursorPage {
        total,
        resources,
        before: rows.first().map(key),
        after: rows.last().map(key),
        more,
    })
}

/// One page of groups, rendered and projected, and the total count.
pub(super) async fn list_page(
    state: &AppState,
    ctx: &ScimContext,
    params: &QueryParams,
    request: &ListRequest<'_>,
    page: Page,
) -> Result<(i64, Vec<ResourceJson>), ScimApiError> {
    let (total, rows) = state
        .store
        .list_groups(ctx.directory_id, request, page)
        .await?;
    Ok((total, rendered(state, ctx, params, &rows).await?))
}

/// Groups of a page, with their members unless the projection drops them.
async fn rendered(
    state: &AppState,
    ctx: &ScimContext,
    params: &QueryParams,
    rows: &[GroupRow],
) -> Result<Vec<ResourceJson>, ScimApiError> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let members = members_for(state, &ids, &params.projection).await?;
    let mut by_group: HashMap<Uuid, Vec<&MemberRow>> = HashMap::new();
    for m in members.iter().flatten() {
        by_group.entry(m.group_id).or_default().push(m);
    }
    let resources = rows
        .iter()
        .map(|row| {
            let list = members
                .as_ref()
                .map(|_| by_group.get(&row.id).map(Vec::as_slice).unwrap_or(&[]));
            params
                .projection
                .apply(&GROUP_RESOURCE, render(ctx, row, list))
                .into()
        })
        .collect();
    Ok(resources)
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
    let row = replace_row(&state, &ctx, id, &body, if_match(&headers)).await?;
    respond(&state, &ctx, StatusCode::OK, &row, &params.projection).await
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
    let row = patch_row(&state, &ctx, id, &body, if_match(&headers)).await?;
    // RFC 7644 §3.5.2 allows 204 after PATCH; Entra ID and Okta expect it
    // for groups, and it spares serialising 100,000 members. Asking for
    // attributes gets the resource back.
    let p = &params.projection;
    if p.attributes.is_empty() && p.excluded.is_empty() {
        let mut resp = StatusCode::NO_CONTENT.into_response();
        if let Ok(v) = HeaderValue::from_str(&etag(row.version)) {
            resp.headers_mut().insert(header::ETAG, v);
        }
        return Ok(resp);
    }
    respond(&state, &ctx, StatusCode::OK, &row, p).await
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
) -> Result<GroupRow, ScimApiError> {
    ctx.note_target(|| Target::from_body(TargetType::Group, None, body));
    let (group, members) = new_group(body)?;
    let members = member_ids(&members)?;
    let touched = members.clone();
    let change = state.sync.will_change(ctx.directory_id).await?;
    let row = state
        .store
        .insert_group(ctx.directory_id, group, members, &ctx.audit)
        .await?;
    change.touch(Touch::GroupCreated(ctx.directory_id, row.id, touched));
    Ok(row)
}

pub(super) async fn replace_row(
    state: &AppState,
    ctx: &ScimContext,
    id: Uuid,
    body: &Value,
    version: Option<i64>,
) -> Result<GroupRow, ScimApiError> {
    let (group, members) = new_group(body)?;
    let members = [MemberChange::Replace(members)];
    let change = state.sync.will_change(ctx.directory_id).await?;
    let row = state
        .store
        .modify_group::<_, ScimApiError>(ctx.directory_id, id, version, &ctx.audit, move |_| {
            Ok(GroupChange::new(id, group, &members)?)
        })
        .await?;
    change.touch(Touch::Groups(ctx.directory_id));
    Ok(row)
}

pub(super) async fn patch_row(
    state: &AppState,
    ctx: &ScimContext,
    id: Uuid,
    body: &Value,
    version: Option<i64>,
) -> Result<GroupRow, ScimApiError> {
    let request = parse_patch(body)?;
    // The member changes the PATCH made, for the sync engine.
    let applied: Arc<Mutex<Vec<crate::directory::MemberChange>>> = Arc::default();
    let seen = applied.clone();
    let change = state.sync.will_change(ctx.directory_id).await?;
    let row = state
        .store
        .modify_group::<_, ScimApiError>(
            ctx.directory_id,
            id,
            version,
            &ctx.audit,
            move |mut doc: Map<String, Value>| {
                let outcome =
                    apply_patch(&GROUP_RESOURCE, &mut doc, &request, &parse_attribute_value)?;
                drop_write_only(&GROUP_RESOURCE, &mut doc);
                let group = GroupDraft::from_doc(&doc)?;
                let change = GroupChange::new(id, group, &outcome.member_changes)?;
                *seen.lock().unwrap_or_else(|e| e.into_inner()) = change.members.clone();
                Ok(change)
            },
        )
        .await?;
    let changes = std::mem::take(&mut *applied.lock().unwrap_or_else(|e| e.into_inner()));
    change.touch(Touch::of_member_changes(ctx.directory_id, id, &changes));
    Ok(row)
}

pub(super) async fn delete_row(
    state: &AppState,
    ctx: &ScimContext,
    id: Uuid,
    version: Option<i64>,
) -> Result<(), ScimApiError> {
    let change = state.sync.will_change(ctx.directory_id).await?;
    let nested = state
        .store
        .delete_group(ctx.directory_id, id, version, &ctx.audit)
        .await?;
    change.touch(Touch::GroupDeleted(ctx.directory_id, nested));
    Ok(())
}
