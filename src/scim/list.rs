//! List requests (RFC 7644 §3.4.2, §3.4.3): `filter`, `sortBy`,
//! `sortOrder`, `startIndex`, `count`, `attributes` and
//! `excludedAttributes`, from a query string or a SearchRequest body.
//!
//! Parsing checks the syntax. [`QueryParams::list_request`] then resolves
//! the filter's and `sortBy`'s attribute paths against the resource type's
//! schema: a [`ListRequest`] names only attributes the server can filter
//! and sort by, with values of the right type, and the store compiles it.

use serde_json::Value;

use super::filter::{parse_filter, Filter};
use super::path::{parse_attr_path, AttrPath};
use super::resource::{parse_attr_list, project};
use super::schema::ResourceTypeDef;
use super::ScimError;

mod resolve;

use resolve::Resolver;
pub use resolve::{
    Comparison, ElementList, Field, IndexedList, Operand, OrderedOp, ResolvedFilter, SortKey,
    ValueKind,
};

/// Results on a list request without `count`.
pub const DEFAULT_PAGE_SIZE: u32 = 100;

const SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// `startIndex` (1-based) and `count`, already clamped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub start_index: i64,
    pub count: i64,
}

impl Page {
    /// What is left of this page for a second list that follows a first
    /// one of `first_total` items, `taken` of which are on this page: a
    /// root `POST /.search` pages over the users, then the groups.
    pub fn after(self, first_total: i64, taken: usize) -> Page {
        Page {
            start_index: (self.start_index - first_total).max(1),
            count: (self.count - taken as i64).max(0),
        }
    }
}

/// How a list request pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Paging<'a> {
    /// `startIndex` and `count` (RFC 7644 §3.4.2.4).
    Index(Page),
    /// A cursor (RFC 9865): `None` for the first page, else the
    /// `nextCursor` of the page before; `count` already clamped.
    Cursor { token: Option<&'a str>, count: i64 },
}

/// `attributes` / `excludedAttributes` of a request.
#[derive(Clone, Debug, Default)]
pub struct Projection {
    pub attributes: Vec<AttrPath>,
    pub excluded: Vec<AttrPath>,
}

impl Projection {
    /// Shapes a rendered resource. Without `attributes`/`excludedAttributes`
    /// the resource is returned as rendered: stored documents never hold a
    /// `returned: never` value (`password` is dropped before storing) and
    /// no attribute of these schemas is `returned: request`.
    pub fn apply(&self, rt: &ResourceTypeDef, full: Value) -> Value {
        if self.is_identity() {
            return full;
        }
        project(rt, &full, &self.attributes, &self.excluded)
    }

    /// Neither `attributes` nor `excludedAttributes`: resources are
    /// returned as rendered.
    pub fn is_identity(&self) -> bool {
        self.attributes.is_empty() && self.excluded.is_empty()
    }

    /// Whether a top-level attribute will be dropped anyway, so the store
    /// need not read it (e.g. `excludedAttributes=members`).
    pub fn excludes(&self, attr: &str) -> bool {
        let named = |list: &[AttrPath]| {
            list.iter()
                .any(|p| p.attr.eq_ignore_ascii_case(attr) && p.sub_attr.is_none())
        };
        named(&self.excluded)
            || (!self.attributes.is_empty()
                && !self
                    .attributes
                    .iter()
                    .any(|p| p.attr.eq_ignore_ascii_case(attr)))
    }
}

/// Query parameters of a list or a single-resource request, from the query
/// string or from a `POST …/.search` body.
#[derive(Debug, Default)]
pub struct QueryParams {
    pub filter: Option<Filter>,
    pub start_index: i64,
    /// Whether the request named `startIndex`.
    pub start_index_given: bool,
    /// RFC 9865's `cursor`: empty for the first page of a cursor-paged
    /// query, else a `nextCursor` this server returned.
    pub cursor: Option<String>,
    pub count: Option<i64>,
    pub sort_by: Option<AttrPath>,
    pub descending: bool,
    pub projection: Projection,
}

impl QueryParams {
    fn empty() -> Self {
        QueryParams {
            start_index: 1,
            ..QueryParams::default()
        }
    }

    /// A query string, without its `?`. Unknown parameters are ignored.
    pub fn parse(raw: Option<&str>) -> Result<Self, ScimError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
            .map_err(|e| ScimError::invalid_syntax(format!("malformed query string: {e}")))?;
        let mut params = QueryParams::empty();
        for (key, value) in pairs {
            match key.to_ascii_lowercase().as_str() {
                "filter" => params.filter = Some(parse_filter(&value)?),
                "startindex" => {
                    params.start_index = parse_int(&key, &value)?.max(1);
                    params.start_index_given = true;
                }
                "cursor" => params.cursor = Some(value),
                "count" => params.count = Some(parse_int(&key, &value)?.max(0)),
                "sortby" => params.sort_by = Some(parse_attr_path(value.trim())?),
                "sortorder" => params.descending = parse_sort_order(&value)?,
                "attributes" => params.projection.attributes = parse_attr_list(&value)?,
                "excludedattributes" => params.projection.excluded = parse_attr_list(&value)?,
                _ => {}
            }
        }
        Ok(params)
    }

    /// A SearchRequest body (RFC 7644 §3.4.3).
    pub fn from_search(body: &Value) -> Result<Self, ScimError> {
        let obj = body
            .as_object()
            .ok_or_else(|| ScimError::invalid_syntax("a SearchRequest must be a JSON object"))?;
        let mut params = QueryParams::empty();
        for (key, value) in obj {
            let text = |what: &str| {
                value
                    .as_str()
                    .ok_or_else(|| ScimError::invalid_value(format!("'{key}' must be {what}")))
            };
            let int = || match value {
                Value::Number(n) => n
                    .as_i64()
                    .ok_or_else(|| ScimError::invalid_value(format!("'{key}' must be an integer"))),
                Value::String(s) => parse_int(key, s),
                _ => Err(ScimError::invalid_value(format!(
                    "'{key}' must be an integer"
                ))),
            };
            // Attribute lists may be arrays (the RFC) or comma-separated.
            let list = || -> Result<Vec<AttrPath>, ScimError> {
                match value {
                    Value::Array(items) => {
                        let mut out = Vec::new();
                        for item in items {
                            let s = item.as_str().ok_or_else(|| {
                                ScimError::invalid_value(format!("'{key}' must list strings"))
                            })?;
                            out.extend(parse_attr_list(s)?);
                        }
                        Ok(out)
                    }
                    Value::String(s) => parse_attr_list(s),
                    _ => Err(ScimError::invalid_value(format!(
                        "'{key}' must be a list of attributes"
                    ))),
                }
            };
            match key.to_ascii_lowercase().as_str() {
                "schemas" => {
                    let known = value.as_array().is_some_and(|a| {
                        a.iter().any(|s| {
                            s.as_str()
                                .is_some_and(|s| s.eq_ignore_ascii_case(SEARCH_REQUEST))
                        })
                    });
                    if !known {
                        return Err(ScimError::invalid_value(format!(
                            "'schemas' must contain {SEARCH_REQUEST}"
                        )));
                    }
                }
                "filter" => params.filter = Some(parse_filter(text("a string")?)?),
                "startindex" => {
                    params.start_index = int()?.max(1);
                    params.start_index_given = true;
                }
                "cursor" => match value {
                    Value::String(s) => params.cursor = Some(s.clone()),
                    // An explicit null is no cursor at all.
                    Value::Null => {}
                    _ => return Err(ScimError::invalid_cursor("'cursor' must be a string")),
                },
                "count" => params.count = Some(int()?.max(0)),
                "sortby" => params.sort_by = Some(parse_attr_path(text("a string")?.trim())?),
                "sortorder" => params.descending = parse_sort_order(text("a string")?)?,
                "attributes" => params.projection.attributes = list()?,
                "excludedattributes" => params.projection.excluded = list()?,
                _ => {}
            }
        }
        Ok(params)
    }

    /// The page asked for: `count` defaults to [`DEFAULT_PAGE_SIZE`] and is
    /// capped at the server's `max_page_size`.
    pub fn page(&self, max_page_size: u32) -> Page {
        Page {
            start_index: self.start_index,
            count: self
                .count
                .unwrap_or(i64::from(DEFAULT_PAGE_SIZE))
                .min(i64::from(max_page_size)),
        }
    }

    /// How the request pages: by index (the default, as RFC 9865 §2.4
    /// asks of servers that paged by index before) or, when it names a
    /// `cursor`, by cursor. A cursor with `startIndex`, or with `sortBy`
    /// (cursor pages follow the default order only), is refused.
    pub fn paging(&self, max_page_size: u32) -> Result<Paging<'_>, ScimError> {
        let page = self.page(max_page_size);
        let Some(cursor) = &self.cursor else {
            return Ok(Paging::Index(page));
        };
        if self.start_index_given {
            return Err(ScimError::invalid_value(
                "'cursor' and 'startIndex' cannot be used together: page by cursor or by index",
            ));
        }
        if self.sort_by.is_some() {
            return Err(ScimError::invalid_value(
                "'sortBy' cannot be used with 'cursor': cursor pages follow creation order",
            ));
        }
        let cursor = cursor.trim();
        Ok(Paging::Cursor {
            token: (!cursor.is_empty()).then_some(cursor),
            count: page.count,
        })
    }

    /// This request's filter and sort, resolved against `rt`.
    pub fn list_request(&self, rt: &'static ResourceTypeDef) -> Result<ListRequest<'_>, ScimError> {
        ListRequest::resolve(
            rt,
            self.filter.as_ref(),
            self.sort_by.as_ref(),
            self.descending,
        )
    }

    /// A search across two resource types (the root `POST /.search`): a
    /// filter naming an attribute only one type has matches nothing of the
    /// other type, so that type is left out (`None`). It is an error only
    /// when it fits neither; the error is the first type's.
    pub fn list_requests(
        &self,
        first: &'static ResourceTypeDef,
        second: &'static ResourceTypeDef,
    ) -> Result<(Option<ListRequest<'_>>, Option<ListRequest<'_>>), ScimError> {
        match (self.list_request(first), self.list_request(second)) {
            (Err(e), Err(_)) => Err(e),
            (a, b) => Ok((a.ok(), b.ok())),
        }
    }
}

fn parse_sort_order(value: &str) -> Result<bool, ScimError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "ascending" | "" => Ok(false),
        "descending" => Ok(true),
        other => Err(ScimError::invalid_value(format!(
            "sortOrder must be 'ascending' or 'descending', not '{other}'"
        ))),
    }
}

fn parse_int(key: &str, value: &str) -> Result<i64, ScimError> {
    value
        .trim()
        .parse()
        .map_err(|_| ScimError::invalid_value(format!("'{key}' must be an integer")))
}

/// A list of one resource type, its filter and `sortBy` resolved: every
/// attribute they name exists, can be filtered (or sorted) by, and is
/// compared with a value of its type. Made only by
/// [`ListRequest::resolve`] (or [`ListRequest::all`]), so the store can
/// compile it without checking it again.
#[derive(Clone, Debug)]
pub struct ListRequest<'a> {
    resource_type: &'static ResourceTypeDef,
    filter: Option<ResolvedFilter<'a>>,
    sort_key: Option<SortKey>,
    descending: bool,
}

impl<'a> ListRequest<'a> {
    /// Every resource of the type, in creation order.
    pub fn all(rt: &'static ResourceTypeDef) -> Self {
        ListRequest {
            resource_type: rt,
            filter: None,
            sort_key: None,
            descending: false,
        }
    }

    /// Resolves the filter, then `sortBy`, against `rt`'s schema; the first
    /// path that does not fit is the error (`invalidFilter` for the filter,
    /// `invalidValue` for `sortBy`).
    pub fn resolve(
        rt: &'static ResourceTypeDef,
        filter: Option<&'a Filter>,
        sort_by: Option<&AttrPath>,
        descending: bool,
    ) -> Result<Self, ScimError> {
        let schema = Resolver { rt };
        let filter = filter.map(|f| schema.filter(f)).transpose()?;
        let sort_key = sort_by.map(|path| schema.sort_key(path)).transpose()?;
        Ok(ListRequest {
            resource_type: rt,
            filter,
            sort_key,
            descending,
        })
    }

    pub fn resource_type(&self) -> &'static ResourceTypeDef {
        self.resource_type
    }

    pub fn filter(&self) -> Option<&ResolvedFilter<'a>> {
        self.filter.as_ref()
    }

    pub fn sort_key(&self) -> Option<&SortKey> {
        self.sort_key.as_ref()
    }

    pub fn descending(&self) -> bool {
        self.descending
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::scim::schema::{
        all_schemas, AttributeDef, Mutability, Returned, COMMON_ATTRIBUTES, GROUP_RESOURCE,
        USER_RESOURCE,
    };
    use crate::scim::ScimType;

    fn parse(raw: &str) -> Result<QueryParams, ScimError> {
        QueryParams::parse(Some(raw))
    }

    fn detail(result: Result<QueryParams, ScimError>) -> (u16, Option<ScimType>, String) {
        let e = result.expect_err("an error");
        (e.status, e.scim_type, e.detail)
    }

    fn names(list: &[AttrPath]) -> Vec<String> {
        list.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn an_empty_query_lists_from_the_first_item() {
        for raw in [None, Some(""), Some("unknown=1&Other")] {
            let p = QueryParams::parse(raw).unwrap();
            assert!(p.filter.is_none() && p.sort_by.is_none() && !p.descending);
            assert_eq!((p.start_index, p.count), (1, None));
            assert!(p.projection.is_identity());
        }
    }

    #[test]
    fn names_are_case_insensitive_and_values_decoded() {
        let p = parse(
            "FILTER=userName%20eq%20%22a%2Bb%40x%22&StartIndex=%203&COUNT=7\
             &sortby=name.familyName&SortOrder=DESCENDING&Attributes=userName,emails.value",
        )
        .unwrap();
        assert_eq!(
            p.filter.map(|f| f.to_string()).as_deref(),
            Some(r#"userName eq "a+b@x""#)
        );
        assert_eq!((p.start_index, p.count), (3, Some(7)));
        assert_eq!(
            p.sort_by.map(|s| s.to_string()).as_deref(),
            Some("name.familyName")
        );
        assert!(p.descending);
        assert_eq!(
            names(&p.projection.attributes),
            ["userName", "emails.value"]
        );
    }

    #[test]
    fn paging_is_clamped() {
        let p = parse("startIndex=0&count=-5").unwrap();
        assert_eq!((p.start_index, p.count), (1, Some(0)));
        let p = parse("startIndex=-10").unwrap();
        assert_eq!(p.start_index, 1);
        assert_eq!(
            parse("count=5000").unwrap().page(1000),
            Page {
                start_index: 1,
                count: 1000
            }
        );
        assert_eq!(
            parse("startIndex=11").unwrap().page(1000),
            Page {
                start_index: 11,
                count: i64::from(DEFAULT_PAGE_SIZE)
            }
        );
        assert_eq!(parse("").unwrap().page(10).count, 10);
    }

    #[test]
    fn bad_paging_values_are_invalid_values() {
        for (raw, key) in [
            ("startIndex=abc", "startIndex"),
            ("count=1.5", "count"),
            ("COUNT=", "COUNT"),
            ("startindex=99999999999999999999", "startindex"),
        ] {
            assert_eq!(
                detail(parse(raw)),
                (
                    400,
                    Some(ScimType::InvalidValue),
                    format!("'{key}' must be an integer")
                ),
                "{raw}"
            );
        }
    }

    #[test]
    fn a_cursor_asks_for_cursor_paging() {
        let paging = |raw: &str| {
            let p = parse(raw).unwrap();
            format!("{:?}", p.paging(50))
        };
        let paging_of = |p: Result<Paging<'_>, ScimError>| format!("{p:?}");
        assert_eq!(
            paging(""),
            paging_of(Ok(Paging::Index(Page {
                start_index: 1,
                count: 50
            })))
        );
        assert_eq!(
            paging("startIndex=3&count=5"),
            paging_of(Ok(Paging::Index(Page {
                start_index: 3,
                count: 5
            })))
        );
        // `?cursor`, `?cursor=` and a blank cursor all ask for the first page.
        for raw in ["cursor", "cursor=", "CURSOR=%20&count=7"] {
            let expected = if raw.contains("count") { 7 } else { 50 };
            assert_eq!(
                paging(raw),
                paging_of(Ok(Paging::Cursor {
                    token: None,
                    count: expected
                })),
                "{raw}"
            );
        }
        assert_eq!(
            paging("cursor=abc-_&count=500"),
            paging_of(Ok(Paging::Cursor {
                token: Some("abc-_"),
                count: 50
            }))
        );
        let p = QueryParams::from_search(&json!({"cursor": "", "count": 2})).unwrap();
        assert_eq!(
            p.paging(50),
            Ok(Paging::Cursor {
                token: None,
                count: 2
            })
        );
        let p = QueryParams::from_search(&json!({"cursor": null})).unwrap();
        assert_eq!(
            p.paging(50),
            Ok(Paging::Index(Page {
                start_index: 1,
                count: 50
            }))
        );
        let e = QueryParams::from_search(&json!({"cursor": 5})).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidCursor));
    }

    #[test]
    fn a_cursor_goes_with_neither_start_index_nor_sort_by() {
        for (raw, message) in [
            (
                "cursor=&startIndex=1",
                "'cursor' and 'startIndex' cannot be used together: page by cursor or by index",
            ),
            (
                "cursor=x&sortBy=userName",
                "'sortBy' cannot be used with 'cursor': cursor pages follow creation order",
            ),
        ] {
            let e = parse(raw).unwrap().paging(50).unwrap_err();
            assert_eq!(
                (e.status, e.scim_type, e.detail.as_str()),
                (400, Some(ScimType::InvalidValue), message),
                "{raw}"
            );
        }
        let p = QueryParams::from_search(&json!({"cursor": "", "startIndex": 2})).unwrap();
        assert!(p.paging(50).is_err());
    }

    #[test]
    fn sort_order_is_ascending_or_descending() {
        assert!(!parse("sortOrder=ascending").unwrap().descending);
        assert!(!parse("sortOrder=").unwrap().descending);
        assert!(parse("sortOrder=%20Descending%20").unwrap().descending);
        assert_eq!(
            detail(parse("sortOrder=Sideways")),
            (
                400,
                Some(ScimType::InvalidValue),
                "sortOrder must be 'ascending' or 'descending', not 'sideways'".to_owned()
            )
        );
    }

    #[test]
    fn attribute_lists_are_comma_separated_paths() {
        let p = parse(
            "excludedAttributes=%20emails%20,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
        )
        .unwrap();
        assert_eq!(
            names(&p.projection.excluded),
            [
                "emails",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value"
            ]
        );
        assert!(p.projection.excludes("emails"));
        assert!(!p.projection.excludes("groups"));
        let p = parse("attributes=userName").unwrap();
        assert!(p.projection.excludes("groups"));
        assert!(!p.projection.excludes("USERNAME"));
        assert!(parse("attributes=a..b").is_err());
        assert!(parse("filter=userName%20eq").is_err());
        assert!(parse("sortBy=%5B").is_err());
    }

    #[test]
    fn search_requests_read_like_query_strings() {
        let p = QueryParams::from_search(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": "displayName sw \"E\"",
            "startIndex": 4,
            "count": "2",
            "sortBy": " displayName ",
            "sortOrder": "descending",
            "attributes": ["displayName", "members.value,id"],
            "excludedAttributes": "members",
            "unknown": {"ignored": true},
        }))
        .unwrap();
        assert_eq!(
            p.filter.map(|f| f.to_string()).as_deref(),
            Some(r#"displayName sw "E""#)
        );
        assert_eq!((p.start_index, p.count), (4, Some(2)));
        assert_eq!(p.sort_by.unwrap().to_string(), "displayName");
        assert!(p.descending);
        assert_eq!(
            names(&p.projection.attributes),
            ["displayName", "members.value", "id"]
        );
        assert_eq!(names(&p.projection.excluded), ["members"]);
        // Without `schemas` it is still a search.
        let p = QueryParams::from_search(&json!({ "COUNT": -3, "startIndex": 0 })).unwrap();
        assert_eq!((p.start_index, p.count), (1, Some(0)));
    }

    #[test]
    fn bad_search_requests_say_which_member_is_wrong() {
        use ScimType::*;
        let cases = [
            (
                json!([]),
                InvalidSyntax,
                "a SearchRequest must be a JSON object",
            ),
            (
                json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"] }),
                InvalidValue,
                "'schemas' must contain urn:ietf:params:scim:api:messages:2.0:SearchRequest",
            ),
            (
                json!({ "schemas": "urn:ietf:params:scim:api:messages:2.0:SearchRequest" }),
                InvalidValue,
                "'schemas' must contain urn:ietf:params:scim:api:messages:2.0:SearchRequest",
            ),
            (
                json!({ "filter": 1 }),
                InvalidValue,
                "'filter' must be a string",
            ),
            (
                json!({ "count": 1.5 }),
                InvalidValue,
                "'count' must be an integer",
            ),
            (
                json!({ "startIndex": true }),
                InvalidValue,
                "'startIndex' must be an integer",
            ),
            (
                json!({ "startIndex": "x" }),
                InvalidValue,
                "'startIndex' must be an integer",
            ),
            (
                json!({ "sortBy": ["a"] }),
                InvalidValue,
                "'sortBy' must be a string",
            ),
            (
                json!({ "sortOrder": "up" }),
                InvalidValue,
                "sortOrder must be 'ascending' or 'descending', not 'up'",
            ),
            (
                json!({ "attributes": [1] }),
                InvalidValue,
                "'attributes' must list strings",
            ),
            (
                json!({ "excludedAttributes": {} }),
                InvalidValue,
                "'excludedAttributes' must be a list of attributes",
            ),
        ];
        for (body, scim_type, message) in cases {
            let e = QueryParams::from_search(&body).expect_err(&body.to_string());
            assert_eq!(
                (e.status, e.scim_type, e.detail.as_str()),
                (400, Some(scim_type), message),
                "{body}"
            );
        }
        let e = QueryParams::from_search(&json!({ "filter": "userName xx \"a\"" })).unwrap_err();
        assert_eq!(e.scim_type, Some(InvalidFilter));
    }

    fn resolve(rt: &'static ResourceTypeDef, raw: &str) -> Result<(), ScimError> {
        let p = parse(raw).unwrap();
        p.list_request(rt).map(drop)
    }

    #[test]
    fn resolving_accepts_what_the_store_can_filter_and_sort() {
        let ok = [
            (&USER_RESOURCE, "filter=userName eq \"a\" and active eq true"),
            (&USER_RESOURCE, "filter=emails[type eq \"work\" and value co \"@x\"]"),
            (&USER_RESOURCE, "filter=groups eq \"not-a-uuid\""),
            (&USER_RESOURCE, "filter=meta.lastModified gt \"2024-01-01T00:00:00Z\""),
            (&USER_RESOURCE, "filter=name pr and not (title eq null)"),
            (
                &USER_RESOURCE,
                "filter=urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq \"m\"",
            ),
            (&USER_RESOURCE, "sortBy=emails&sortOrder=descending"),
            (&USER_RESOURCE, "sortBy=meta.created"),
            (&GROUP_RESOURCE, "filter=members[type eq \"User\"] or id ne \"x\""),
            (&GROUP_RESOURCE, "sortBy=displayName"),
        ];
        for (rt, raw) in ok {
            let raw = raw.replace(' ', "%20").replace('"', "%22");
            assert_eq!(resolve(rt, &raw), Ok(()), "{raw}");
        }
        let p = parse("sortBy=userName&sortOrder=descending&filter=title%20pr").unwrap();
        let request = p.list_request(&USER_RESOURCE).unwrap();
        assert!(std::ptr::eq(request.resource_type(), &USER_RESOURCE));
        let title = Operand {
            field: Field::Document(vec!["title"]),
            kind: ValueKind::Text { case_exact: false },
        };
        assert_eq!(request.filter(), Some(&ResolvedFilter::Present(title)));
        let user_name = Operand {
            field: Field::UserName,
            kind: ValueKind::Text { case_exact: false },
        };
        assert_eq!(request.sort_key(), Some(&SortKey::Value(user_name)));
        assert!(request.descending());
        let all = ListRequest::all(&GROUP_RESOURCE);
        assert!(all.filter().is_none() && all.sort_key().is_none() && !all.descending());
    }

    #[test]
    fn resolving_refuses_paths_the_store_cannot_use() {
        use ScimType::*;
        let refused = [
            (&USER_RESOURCE, r#"filter=nope eq "x""#, InvalidFilter, "cannot filter on 'nope': no such attribute"),
            (&GROUP_RESOURCE, r#"filter=userName eq "x""#, InvalidFilter, "cannot filter on 'userName': no such attribute"),
            (&USER_RESOURCE, r#"filter=meta.resourceType eq "User""#, InvalidFilter, "cannot filter on 'meta.resourceType': not a filterable attribute"),
            (&USER_RESOURCE, r#"filter=name eq "x""#, InvalidFilter, "cannot filter on 'name': a complex attribute needs a sub-attribute"),
            (&USER_RESOURCE, "filter=active gt true", InvalidFilter, "cannot filter on 'active': booleans compare only with eq and ne"),
            (&USER_RESOURCE, r#"filter=active eq "yes""#, InvalidFilter, "cannot filter on 'active': expects true or false"),
            (&USER_RESOURCE, r#"filter=active gt "true""#, InvalidFilter, "cannot filter on 'active': booleans compare only with eq and ne"),
            (&USER_RESOURCE, "filter=userName eq 1", InvalidFilter, "cannot filter on 'userName': expects a string value"),
            (&USER_RESOURCE, r#"filter=id co "x""#, InvalidFilter, "cannot filter on 'id': ids compare only with eq and ne"),
            (&USER_RESOURCE, "filter=title gt null", InvalidFilter, "cannot filter on 'title': null compares only with eq and ne"),
            (&USER_RESOURCE, r#"filter=meta.created gt "yesterday""#, InvalidFilter, "cannot filter on 'meta.created': expects an RFC 3339 dateTime string"),
            (&USER_RESOURCE, r#"filter=meta.created co "2024-01-01T00:00:00Z""#, InvalidFilter, "cannot filter on 'meta.created': dateTimes compare only with eq ne gt ge lt le"),
            (&USER_RESOURCE, r#"filter=groups.display eq "x""#, InvalidFilter, "cannot filter on 'groups.display': only groups.value is filterable"),
            (&GROUP_RESOURCE, r#"filter=members.display eq "x""#, InvalidFilter, "cannot filter on 'members.display': only members.value and members.type are filterable"),
            (&GROUP_RESOURCE, r#"filter=members[display eq "x"]"#, InvalidFilter, "cannot filter on 'display': only value and type are filterable"),
            (&USER_RESOURCE, r#"filter=name[givenName eq "x"]"#, InvalidFilter, "cannot filter on 'name': […] needs a multi-valued complex attribute"),
            (&USER_RESOURCE, r#"filter=emails[nope eq "x"]"#, InvalidFilter, "cannot filter on 'nope': no such sub-attribute"),
            // The first path that does not fit is the one named.
            (&USER_RESOURCE, r#"filter=active gt true or nope eq "x""#, InvalidFilter, "cannot filter on 'active': booleans compare only with eq and ne"),
            (&USER_RESOURCE, r#"filter=userName eq "a"&sortBy=nope"#, InvalidValue, "cannot sort by 'nope': cannot filter on 'nope': no such attribute"),
            (&USER_RESOURCE, r#"filter=nope eq "a"&sortBy=nope"#, InvalidFilter, "cannot filter on 'nope': no such attribute"),
            (&USER_RESOURCE, "sortBy=name", InvalidValue, "cannot sort by 'name': it is complex; name a sub-attribute"),
            (&USER_RESOURCE, "sortBy=phoneNumbers.value", InvalidValue, "cannot sort by 'phoneNumbers.value': it is multi-valued"),
            (&GROUP_RESOURCE, "sortBy=emails", InvalidValue, "cannot sort by 'emails': cannot filter on 'emails': no such attribute"),
        ];
        for (rt, raw, scim_type, message) in refused {
            let query = raw.replace(' ', "%20").replace('"', "%22");
            let e = resolve(rt, &query).expect_err(raw);
            assert_eq!(
                (e.status, e.scim_type, e.detail.as_str()),
                (400, Some(scim_type), message),
                "{raw}"
            );
        }
    }

    /// What the store compiles: each path resolved to where its value is
    /// kept, each value checked and converted for its kind.
    #[test]
    fn resolving_names_where_each_value_is_kept() {
        let resolved = |rt: &'static ResourceTypeDef, filter: &str| {
            let f = crate::scim::filter::parse_filter(filter).unwrap();
            let request = ListRequest::resolve(rt, Some(&f), None, false).unwrap();
            format!("{:?}", request.filter().unwrap())
        };
        assert_eq!(
            resolved(&USER_RESOURCE, r#"userName eq "Ada""#),
            r#"Compare(Operand { field: UserName, kind: Text { case_exact: false } }, Text { op: Eq, value: "Ada" })"#
        );
        assert_eq!(
            resolved(&USER_RESOURCE, r#"emails[type eq "work"]"#),
            r#"AnyElement { list: Document(["emails"]), filter: Compare(Operand { field: Element(Some("type")), kind: Text { case_exact: false } }, Text { op: Eq, value: "work" }) }"#
        );
        assert_eq!(
            resolved(&USER_RESOURCE, r#"emails.value eq "a@x" or groups pr"#),
            r#"Or(ListedValue(Emails, "a@x"), HasElements { list: Groups, element: Some(Operand { field: GroupId, kind: Id }) })"#
        );
        assert_eq!(
            resolved(
                &GROUP_RESOURCE,
                r#"members.type ne "User" and not (meta.created ge "1970-01-01T00:00:01Z")"#
            ),
            r#"And(AnyElement { list: Members, filter: Compare(Operand { field: MemberType, kind: Text { case_exact: false } }, Text { op: Ne, value: "User" }) }, Not(Compare(Operand { field: Created, kind: DateTime }, DateTime { op: Ge, micros: 1000000 })))"#
        );
        assert_eq!(
            resolved(
                &USER_RESOURCE,
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq null"
            ),
            r#"Compare(Operand { field: Document(["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "manager", "value"]), kind: Text { case_exact: false } }, Null { equal: true })"#
        );
        // Entra's string booleans, on a column and inside an element.
        assert_eq!(
            resolved(&USER_RESOURCE, r#"active eq "False""#),
            r#"Compare(Operand { field: Active, kind: Boolean }, Boolean { equal: true, value: false })"#
        );
        assert_eq!(
            resolved(&USER_RESOURCE, r#"emails[primary ne "TRUE"]"#),
            r#"AnyElement { list: Document(["emails"]), filter: Compare(Operand { field: Element(Some("primary")), kind: Boolean }, Boolean { equal: false, value: true }) }"#
        );
        // Entra's `manager eq "id"`: a single-valued complex attribute with
        // a `value` compares by it.
        assert_eq!(
            resolved(&USER_RESOURCE, r#"manager eq "m-1""#),
            r#"Compare(Operand { field: Document(["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "manager", "value"]), kind: Text { case_exact: false } }, Text { op: Eq, value: "m-1" })"#
        );
        let sort = |path: &str| {
            let path = crate::scim::path::parse_attr_path(path).unwrap();
            let request = ListRequest::resolve(&USER_RESOURCE, None, Some(&path), false).unwrap();
            format!("{:?}", request.sort_key().unwrap())
        };
        assert_eq!(sort("emails"), "PrimaryEmail");
        assert_eq!(
            sort("meta.lastModified"),
            "Value(Operand { field: LastModified, kind: DateTime })"
        );
    }

    #[test]
    fn a_search_across_types_leaves_out_the_type_that_does_not_fit() {
        let both = |raw: &str| {
            let p = parse(&raw.replace(' ', "%20").replace('"', "%22")).unwrap();
            p.list_requests(&USER_RESOURCE, &GROUP_RESOURCE)
                .map(|(u, g)| (u.is_some(), g.is_some()))
        };
        assert_eq!(both(""), Ok((true, true)));
        assert_eq!(both(r#"filter=displayName eq "x""#), Ok((true, true)));
        assert_eq!(both(r#"filter=userName eq "x""#), Ok((true, false)));
        assert_eq!(both(r#"filter=members pr"#), Ok((false, true)));
        assert_eq!(both("sortBy=emails"), Ok((true, false)));
        let e = both(r#"filter=nope eq "x""#).unwrap_err();
        assert_eq!(e.detail, "cannot filter on 'nope': no such attribute");
    }

    #[test]
    fn a_page_continues_into_a_second_list() {
        let page = Page {
            start_index: 4,
            count: 5,
        };
        // Three users: the users' part of the page is empty, the groups
        // start at their first.
        assert_eq!(
            page.after(3, 0),
            Page {
                start_index: 1,
                count: 5
            }
        );
        // Six users: three on this page, two groups after them.
        assert_eq!(
            page.after(6, 3),
            Page {
                start_index: 1,
                count: 2
            }
        );
        // No users at all: the groups from the fourth.
        assert_eq!(page.after(0, 0), page);
        // A full page of users leaves no room.
        assert_eq!(page.after(50, 5).count, 0);
    }

    /// `Projection::apply` returns a resource untouched when no attributes
    /// are named; that is right only while these hold.
    #[test]
    fn unprojected_responses_need_no_filtering() {
        fn check(a: &AttributeDef) {
            assert_ne!(
                a.returned,
                Returned::Request,
                "{} is returned on request",
                a.name
            );
            if a.returned == Returned::Never {
                assert_eq!(
                    a.mutability,
                    Mutability::WriteOnly,
                    "{} is never returned",
                    a.name
                );
            }
            a.sub_attributes.iter().for_each(check);
        }
        all_schemas()
            .iter()
            .flat_map(|s| s.attributes.iter())
            .chain(COMMON_ATTRIBUTES.iter())
            .for_each(check);
    }
}
