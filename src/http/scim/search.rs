//! Root `POST /.search` (RFC 7644 §3.4.3): one query across Users and
//! Groups. Users come first, then groups; `startIndex`/`count` page over
//! the concatenation, and so do cursors: a cursor names the list it is in,
//! and a previous page may reach back from the groups into the users.

use axum::extract::State;
use axum::response::Response;

use super::{groups, list_response, users, CursorPage, CursorPaging};
use crate::http::error::ScimApiError;
use crate::http::extract::{ScimContext, ScimJson};
use crate::http::AppState;
use crate::scim::cursor::{CursorList, Position, Seek};
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
            let cursors =
                CursorPaging::new(&state, &ctx, "search", &params, count, CursorList::Users);
            let seek = cursors.start(token)?;
            let lists = (user_request.as_ref(), group_request.as_ref());
            let found = match seek {
                Seek::After(at) => search_after(&state, &ctx, &params, lists, at, count).await?,
                Seek::Before(at) => search_before(&state, &ctx, &params, lists, at, count).await?,
            };
            return Ok(cursors.respond(seek, found));
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

/// The two lists of a root search: users' and groups' requests, either
/// absent when the query leaves that resource type out.
type Lists<'a, 'r> = (Option<&'a ListRequest<'r>>, Option<&'a ListRequest<'r>>);

/// A cursor page of the users, then the groups, after `at`: a cursor in
/// the users continues them and fills what room is left with the first
/// groups; one in the groups continues the groups. Both totals are counted
/// each time.
async fn search_after(
    state: &AppState,
    ctx: &ScimContext,
    params: &QueryParams,
    (user_request, group_request): Lists<'_, '_>,
    at: Position,
    count: i64,
) -> Result<CursorPage, ScimApiError> {
    let in_users = at.list == CursorList::Users;
    let mut page = CursorPage::default();
    if let Some(request) = user_request {
        // Past the users, only their total is read.
        let (from, room) = if in_users {
            (at, count)
        } else {
            (Position::start(CursorList::Users), 0)
        };
        let found =
            users::cursor_page(state, ctx, params, request, Seek::After(from), room).await?;
        page = found;
    }
    if let Some(request) = group_request {
        let (from, room) = if in_users {
            let left = if page.more {
                0
            } else {
                count - page.resources.len() as i64
            };
            (Position::start(CursorList::Groups), left.max(0))
        } else {
            (at, count)
        };
        let found =
            groups::cursor_page(state, ctx, params, request, Seek::After(from), room).await?;
        // The users filled the page and groups follow.
        if !page.more && in_users && room == 0 && count > 0 && found.total > 0 {
            page.more = true;
            page.after = Some(Position::start(CursorList::Groups));
        }
        page.total += found.total;
        page.resources.extend(found.resources);
        page.before = page.before.or(found.before);
        page.after = found.after.or(page.after);
        page.more |= found.more;
    }
    Ok(page)
}

/// A cursor page of the users, then the groups, before `at` (a
/// `previousCursor`): one in the users reads the users before it; one in
/// the groups reads the groups before it and, when they run out before
/// the page is full, the last users. Both totals are counted each time.
async fn search_before(
    state: &AppState,
    ctx: &ScimContext,
    params: &QueryParams,
    (user_request, group_request): Lists<'_, '_>,
    at: Position,
    count: i64,
) -> Result<CursorPage, ScimApiError> {
    let in_users = at.list == CursorList::Users;
    let mut page = CursorPage::default();
    if let Some(request) = group_request {
        // Before the groups, only their total is read.
        let (from, room) = if in_users {
            (Position::start(CursorList::Groups), 0)
        } else {
            (at, count)
        };
        let found =
            groups::cursor_page(state, ctx, params, request, Seek::Before(from), room).await?;
        page = found;
    }
    if let Some(request) = user_request {
        let (from, room) = if in_users {
            (at, count)
        } else {
            let left = if page.more {
                0
            } else {
                count - page.resources.len() as i64
            };
            (Position::end(CursorList::Users), left.max(0))
        };
        let found =
            users::cursor_page(state, ctx, params, request, Seek::Before(from), room).await?;
        // The groups filled the page and users come before them.
        if !page.more && !in_users && room == 0 && count > 0 && found.total > 0 {
            page.more = true;
        }
        page.total += found.total;
        let mut resources = found.resources;
        resources.append(&mut page.resources);
        page.resources = resources;
        page.before = found.before.or(page.before);
        page.after = page.after.or(found.after);
        page.more |= found.more;
    }
    Ok(page)
}
