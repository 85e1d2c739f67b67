//! SCIM 2.0 endpoints, mounted at `/scim/directory/{directoryId}` and at
//! `/scim/v2` (where the API key alone names the directory).

use axum::extract::RawQuery;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use super::error::{scim_error_response, ScimApiError, SCIM_CONTENT_TYPE};
use super::extract::etag;
use super::AppState;
use crate::http::extract::ScimContext;
use crate::scim::cursor::{CursorList, CursorScope, Position, Seek};
use crate::scim::list::QueryParams;
use crate::scim::ScimError;
use crate::store::Keyset;
use crate::time::{format_micros, now_micros};

mod bulk;
mod discovery;
mod group_stream;
mod groups;
mod search;
mod users;
mod verified_domain;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/Users", get(users::list).post(users::create))
        .route("/Users/.search", post(users::search))
        .route(
            "/Users/{id}",
            get(users::get)
                .put(users::replace)
                .patch(users::patch)
                .delete(users::delete),
        )
        .route("/Groups", get(groups::list).post(groups::create))
        .route("/Groups/.search", post(groups::search))
        .route("/.search", post(search::search))
        .route("/Bulk", post(bulk::bulk))
        .route(
            "/Groups/{id}",
            get(groups::get)
                .put(groups::replace)
                .patch(groups::patch)
                .delete(groups::delete),
        )
        .route(
            "/ServiceProviderConfig",
            get(discovery::service_provider_config),
        )
        .route("/Schemas", get(discovery::schemas))
        .route("/Schemas/{id}", get(discovery::schema))
        .route("/ResourceTypes", get(discovery::resource_types))
        .route("/ResourceTypes/{id}", get(discovery::resource_type))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

async fn not_found() -> Response {
    scim_error_response(&ScimError::not_found("no such SCIM endpoint"))
}

async fn method_not_allowed() -> Response {
    scim_error_response(&ScimError::method_not_allowed(
        "this method is not supported on this endpoint",
    ))
}

/// The list parameters of a request's query string.
pub fn query(raw: &RawQuery) -> Result<QueryParams, ScimApiError> {
    Ok(QueryParams::parse(raw.0.as_deref())?)
}

/// `meta` of a stored resource.
pub fn meta(
    resource_type: &str,
    location: &str,
    created: i64,
    updated: i64,
    version: i64,
) -> Value {
    json!({
        "resourceType": resource_type,
        "created": format_micros(created),
        "lastModified": format_micros(updated),
        "location": location,
        "version": etag(version),
    })
}

/// [`meta`] written as JSON text onto `out`, without building a `Value`
/// (the hot paths render many resources). Keys in the same order as
/// [`meta`]'s; the location is the concatenation of `location`.
pub fn push_meta(
    out: &mut String,
    resource_type: &str,
    location: &[&str],
    created: i64,
    updated: i64,
    version: i64,
) {
    use std::fmt::Write;
    out.push_str("{\"created\":");
    push_json_string(out, &[&format_micros(created)]);
    out.push_str(",\"lastModified\":");
    push_json_string(out, &[&format_micros(updated)]);
    out.push_str(",\"location\":");
    push_json_string(out, location);
    out.push_str(",\"resourceType\":");
    push_json_string(out, &[resource_type]);
    // The ETag `W/"n"`, its quotes escaped.
    let _ = write!(out, ",\"version\":\"W/\\\"{version}\\\"\"}}");
}

/// The concatenation of `parts` as a JSON string onto `out`. Text that
/// needs no escaping (ids, URLs, timestamps, most names) is copied as it
/// is; anything else goes through serde_json.
pub fn push_json_string(out: &mut String, parts: &[&str]) {
    let plain = parts
        .iter()
        .all(|p| !p.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\'));
    if plain {
        out.push('"');
        for p in parts {
            out.push_str(p);
        }
        out.push('"');
    } else {
        out.push_str(&Value::String(parts.concat()).to_string());
    }
}

/// A SCIM response with the right content type, and for single resources
/// `ETag` (and `Location` on create).
pub fn scim_response(
    status: StatusCode,
    body: &Value,
    version: Option<i64>,
    location: Option<&str>,
) -> Response {
    scim_text_response(status, body.to_string(), version, location)
}

/// [`scim_response`] for a body already serialised.
pub fn scim_text_response(
    status: StatusCode,
    body: String,
    version: Option<i64>,
    location: Option<&str>,
) -> Response {
    let mut resp = (status, body).into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(SCIM_CONTENT_TYPE),
    );
    if let Some(v) = version.and_then(|v| HeaderValue::from_str(&etag(v)).ok()) {
        headers.insert(header::ETAG, v);
    }
    if let Some(l) = location.and_then(|l| HeaderValue::from_str(l).ok()) {
        headers.insert(header::LOCATION, l);
    }
    resp
}

/// `If-None-Match` on a GET names the current version: 304, no body.
pub fn not_modified(headers: &HeaderMap, version: i64) -> Option<Response> {
    let raw = headers.get(header::IF_NONE_MATCH)?.to_str().ok()?;
    let matches = raw.split(',').any(|tag| {
        let tag = tag.trim();
        tag == "*" || super::extract::parse_etag(tag) == Some(version)
    });
    matches.then(|| {
        let mut resp = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(v) = HeaderValue::from_str(&etag(version)) {
            resp.headers_mut().insert(header::ETAG, v);
        }
        resp
    })
}

/// One resource of a list, already serialised: users are written around
/// their stored JSON text (see `users::render_text`) and go into the list
/// as they are, without a parse and a second serialisation.
pub struct ResourceJson(String);

impl ResourceJson {
    /// Text the caller built as one JSON object.
    fn from_rendered(text: String) -> Self {
        ResourceJson(text)
    }
}

impl From<Value> for ResourceJson {
    fn from(value: Value) -> Self {
        ResourceJson(value.to_string())
    }
}

pub fn list_response(total: i64, start_index: i64, resources: Vec<ResourceJson>) -> Response {
    list_body(
        &format!("\"totalResults\":{total},\"startIndex\":{start_index},"),
        resources,
    )
}

/// A page of a cursor-paged list (RFC 9865 §2): no `startIndex`, a
/// `nextCursor` unless it is the last page and a `previousCursor` unless
/// it is the first.
pub fn cursor_list_response(
    total: i64,
    resources: Vec<ResourceJson>,
    next_cursor: Option<&str>,
    previous_cursor: Option<&str>,
) -> Response {
    let mut head = format!("\"totalResults\":{total},");
    // Unreserved characters only: nothing to escape.
    for (name, cursor) in [
        ("nextCursor", next_cursor),
        ("previousCursor", previous_cursor),
    ] {
        if let Some(cursor) = cursor {
            head.push('"');
            head.push_str(name);
            head.push_str("\":");
            push_json_string(&mut head, &[cursor]);
            head.push(',');
        }
    }
    list_body(&head, resources)
}

fn list_body(head: &str, resources: Vec<ResourceJson>) -> Response {
    use std::fmt::Write;
    // Sized once: the envelope is under 200 bytes.
    let mut body = String::with_capacity(
        200 + head.len() + resources.iter().map(|r| r.0.len() + 1).sum::<usize>(),
    );
    let _ = write!(
        body,
        "{{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:ListResponse\"],\
         {head}\"itemsPerPage\":{},\"Resources\":[",
        resources.len()
    );
    for (i, resource) in resources.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&resource.0);
    }
    body.push_str("]}");
    scim_text_response(StatusCode::OK, body, None, None)
}

/// A cursor page: the total, the page's resources, the keys of its first
/// and last rows, and whether more rows follow in the direction it was
/// read.
#[derive(Default)]
pub struct CursorPage {
    pub total: i64,
    pub resources: Vec<ResourceJson>,
    /// The key of the first row served: the previous page ends before it.
    pub before: Option<Position>,
    /// The key of the last row served: the next page starts after it.
    pub after: Option<Position>,
    /// More rows follow in the direction the page was read: after it for
    /// [`Seek::After`], before it for [`Seek::Before`].
    pub more: bool,
}

/// The store's keyset for the page a cursor asks for.
pub fn keyset(seek: Seek) -> Keyset {
    match seek {
        Seek::After(at) => Keyset::After(at.created_at, at.id),
        Seek::Before(at) => Keyset::Before(at.created_at, at.id),
    }
}

/// The cursors of one cursor-paged query (RFC 9865): checks the cursor a
/// request brings and makes the `nextCursor` and `previousCursor` of its
/// response.
pub struct CursorPaging<'a> {
    state: &'a AppState,
    scope: CursorScope,
    count: i64,
    /// Where the walk begins, before its first row: where a request
    /// without a cursor starts.
    origin: Position,
}

impl<'a> CursorPaging<'a> {
    /// `endpoint` names the list (`Users`, `Groups`, `search`); with the
    /// directory and the filter it is what a cursor is bound to. `first`
    /// is the list a walk begins in.
    pub fn new(
        state: &'a AppState,
        ctx: &ScimContext,
        endpoint: &str,
        params: &QueryParams,
        count: i64,
        first: CursorList,
    ) -> Self {
        CursorPaging {
            state,
            scope: CursorScope::new(ctx.directory_id, endpoint, params.filter.as_ref()),
            count,
            origin: Position::start(first),
        }
    }

    /// The page asked for: the first without a cursor, else the one the
    /// cursor names.
    pub fn start(&self, token: Option<&str>) -> Result<Seek, ScimError> {
        match token {
            None => Ok(Seek::After(self.origin)),
            Some(token) => self.state.settings.cursor_key.decode(
                token,
                &self.scope,
                self.count,
                now_micros() / 1_000_000,
            ),
        }
    }

    /// The response to the request for `seek`, with its cursors:
    /// - a page read forward has a `nextCursor` if more rows follow it, and
    ///   a `previousCursor` unless it is the first page;
    /// - a page read backward has a `previousCursor` if more rows come
    ///   before it, and always a `nextCursor`: the rows it was read back
    ///   from follow it (if none of it is left, the walk starts over).
    pub fn respond(&self, seek: Seek, page: CursorPage) -> Response {
        let (next, previous) = match seek {
            Seek::After(at) => (
                page.after.filter(|_| page.more).map(Seek::After),
                page.before.filter(|_| at != self.origin).map(Seek::Before),
            ),
            Seek::Before(_) => (
                Some(Seek::After(page.after.unwrap_or(self.origin))),
                page.before.filter(|_| page.more).map(Seek::Before),
            ),
        };
        let next = next.map(|seek| self.cursor(seek));
        let previous = previous.map(|seek| self.cursor(seek));
        cursor_list_response(
            page.total,
            page.resources,
            next.as_deref(),
            previous.as_deref(),
        )
    }

    /// The cursor of the page `seek` names, valid for `cursorTimeout`.
    fn cursor(&self, seek: Seek) -> String {
        let timeout = i64::try_from(self.state.settings.cursor_timeout_seconds).unwrap_or(i64::MAX);
        let expires_at = (now_micros() / 1_000_000).saturating_add(timeout);
        self.state
            .settings
            .cursor_key
            .encode(&self.scope, seek, self.count, expires_at)
    }
}

/// A resource id from the path; a malformed one cannot exist.
pub fn resource_id(raw: &str) -> Result<uuid::Uuid, ScimError> {
    uuid::Uuid::parse_str(raw)
        .map_err(|_| ScimError::not_found(format!("resource {raw} not found")))
}

#[cfg(test)]
mod tests {
    /// The written `meta` is the `meta` value, text that needs escaping
    /// included.
    #[test]
    fn written_meta_is_the_meta_value() {
        for base in [
            "https://scim.example.com/scim/v2",
            "http://x/\"odd\"\\path\u{1}é",
        ] {
            let location = format!("{base}/Users/42");
            let mut out = String::new();
            super::push_meta(
                &mut out,
                "User",
                &[base, "/Users/42"],
                1_700_000_000_123_456,
                1_700_000_001_000_000,
                7,
            );
            let written: serde_json::Value = serde_json::from_str(&out).expect(&out);
            let value = super::meta(
                "User",
                &location,
                1_700_000_000_123_456,
                1_700_000_001_000_000,
                7,
            );
            assert_eq!(written, value);
            assert_eq!(out, value.to_string());
        }
    }
}
