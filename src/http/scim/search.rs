//! Root `POST /.search` (RFC 7644 §3.4.3): one query across Users and
//! Groups. Users come first, then groups; `startIndex`/`count` page over
//! the concatenation.

use axum::extract::State;
use axum::response::Response;

use super::{groups, list_response, users, QueryParams};
use crate::http::error::ScimApiError;
use crate::http::extract::{ScimContext, ScimJson};
use crate::http::AppState;
use crate::scim::schema::{GROUP_RESOURCE, USER_RESOURCE};
use crate::store::Page;

pub async fn search(
    State(state): State<AppState>,
    ctx: ScimContext,
    ScimJson(body): ScimJson,
) -> Result<Response, ScimApiError> {
    let params = QueryParams::from_search(&body)?;
    let dialect = state.store.dialect();
    // A filter naming an attribute only one type has matches nothing of the
    // other type; it is an error only when it fits neither.
    let user_query = params.list_query(&USER_RESOURCE, dialect);
    let group_query = params.list_query(&GROUP_RESOURCE, dialect);
    if let (Err(e), Err(_)) = (&user_query, &group_query) {
        return Err(e.clone().into());
    }
    let page = params.page(state.settings.max_page_size);
    let mut resources = Vec::new();
    let mut user_total = 0;
    if let Ok(q) = &user_query {
        let (total, found) = users::list_page(&state, &ctx, &params, q, page).await?;
        user_total = total;
        resources.extend(found);
    }
    let mut group_total = 0;
    if let Ok(q) = &group_query {
        let remaining = page.count - resources.len() as i64;
        let group_page = Page {
            start_index: (page.start_index - user_total).max(1),
            count: remaining.max(0),
        };
        let (total, found) = groups::list_page(&state, &ctx, &params, q, group_page).await?;
        group_total = total;
        resources.extend(found);
    }
    Ok(list_response(
        user_total + group_total,
        page.start_index,
        resources,
    ))
}
