//! Root `POST /.search` (RFC 7644 §3.4.3): one query across Users and
//! Groups. Users come first, then groups; `startIndex`/`count` page over
//! the concatenation, and so do cursors: a cursor names the list it is in.

use axum::extract::State;
use axum::response::Response;

use super::{cursor_list_response, groups, list_response, users, CursorPaging};
use crate::http::error::ScimApiError;
use crate::http::extract::{ScimContext, ScimJson};
use crate::http::AppState;
use crate::scim::cursor::{CursorList, Position};
use crate::scim::list::{ListRequest, Paging, QueryParams};
use crate::scim::schema::{GROUP_RESOURCE, USER_RESOURCE};

pub async fn search(
    State(state): State<AppState>,
    ctx: ScimContext,
    ScimJson(body): ScimJson,
) -> Result<Response, ScimApiError> {
    let params = QueryParams::from_search(&body)?;
    let (user_request, group_request) = params.list_requests(&USER_RESOURCE, &GROUP_RESOURCE)?;
    let page = match params.paging(state.settings.max_page_size)? {
        Paging::Index(page) => page,
        Paging::Cursor { token, count } => {
            let cursors = CursorPaging::new(&state, &ctx, "search", &params, count);
            let at = cursors.start(token, CursorList::Users)?;
            let lists = (user_request.as_ref(), group_request.as_ref());
            return cursor_search(&state, &ctx, &params, lists, &cursors, at, count).await;
        }
    };
    let mut resources = Vec::new();
    let mut user_total = 0;
    if let Some(request) = &user_request {
        let (total, found) = users::list_page(&state, &ctx, &params, request, page).await?;
        user_total = total;
        resources.extend(found);
    }
    let mut group_total = 0;
    if let Some(request) = &group_request {
        let group_page = page.after(user_total, resources.len());
        let (total, found) = groups::list_page(&state, &ctx, &params, request, group_page).await?;
        group_total = total;
        resources.extend(found);
    }
    Ok(list_response(
        user_total + group_total,
        page.start_index,
        resources,
    ))
}

/// A cursor page of the users, then the groups: a cursor in the users
/// continues them and fills what room is left with the first groups; one
/// in the groups continues the groups. Both totals are counted each time.
async fn cursor_search(
    state: &AppState,
    ctx: &ScimContext,
    params: &QueryParams,
    (user_request, group_request): (Option<&ListRequest<'_>>, Option<&ListRequest<'_>>),
    cursors: &CursorPaging<'_>,
    at: Position,
    count: i64,
) -> Result<Response, ScimApiError> {
    let in_users = at.list == CursorList::Users;
    let mut resources = Vec::new();
    let mut next = None;
    let mut total = 0;
    if let Some(request) = user_request {
        // Past the users, only their total is read.
        let (from, room) = if in_users {
            (at, count)
        } else {
            (Position::start(CursorList::Users), 0)
        };
        let found = users::cursor_page(state, ctx, params, request, from, room).await?;
        total += found.total;
        resources.extend(found.resources);
        next = found.next;
    }
    if let Some(request) = group_request {
        let (from, room) = if in_users {
            let left = if next.is_some() {
                0
            } else {
                count - resources.len() as i64
            };
            (Position::start(CursorList::Groups), left.max(0))
        } else {
            (at, count)
        };
        let found = groups::cursor_page(state, ctx, params, request, from, room).await?;
        total += found.total;
        resources.extend(found.resources);
        if next.is_none() {
            next = found.next;
            // The users filled the page and groups follow.
            if next.is_none() && in_users && room == 0 && count > 0 && found.total > 0 {
                next = Some(Position::start(CursorList::Groups));
            }
        }
    }
    let next = next.map(|at| cursors.next(at));
    Ok(cursor_list_response(total, resources, next.as_deref()))
}
