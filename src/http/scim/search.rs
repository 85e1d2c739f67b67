//! Root `POST /.search` (RFC 7644 §3.4.3): one query across Users and
//! Groups. Users come first, then groups; `startIndex`/`count` page over
//! the concatenation.

use axum::extract::State;
use axum::response::Response;

use super::{groups, list_response, users};
use crate::http::error::ScimApiError;
use crate::http::extract::{ScimContext, ScimJson};
use crate::http::AppState;
use crate::scim::list::QueryParams;
use crate::scim::schema::{GROUP_RESOURCE, USER_RESOURCE};

pub async fn search(
    State(state): State<AppState>,
    ctx: ScimContext,
    ScimJson(body): ScimJson,
) -> Result<Response, ScimApiError> {
    let params = QueryParams::from_search(&body)?;
    let (user_request, group_request) = params.list_requests(&USER_RESOURCE, &GROUP_RESOURCE)?;
    let page = params.page(state.settings.max_page_size);
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
