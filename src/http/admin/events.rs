//! `GET /admin/v1/orgs/{orgId}/events`: the organisation's event feed, in
//! sequence order, paged by an opaque cursor, with a long poll.

use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::accounts::{parse_limit, DEFAULT_LIMIT};
use super::{org_id, query_pairs, time, OrgPath};
use crate::directory::events::feed_type_filter;
use crate::http::error::{AdminError, AdminErrorBody};
use crate::http::extract::{AdminContext, AdminPath};
use crate::http::AppState;
use crate::store::{FeedQuery, FeedRow};

/// Longest `wait`, in seconds.
pub const MAX_WAIT_SECONDS: u64 = 30;

/// How often a long poll looks at the store for events numbered by
/// another process (this process's own wake it at once).
const POLL: Duration = Duration::from_millis(250);

/// One event of the feed.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeedEvent {
    /// Stable: the same event always has this id (de-duplicate by it).
    id: Uuid,
    /// `user.created`, `group.members_added`, … (docs/EVENTS.md lists
    /// each type with its `data`).
    #[serde(rename = "type")]
    kind: String,
    /// When the change was written (RFC 3339, microseconds).
    #[schema(format = DateTime)]
    occurred_at: String,
    org_id: Uuid,
    /// The directory it happened in; null for org-level events (accounts).
    directory_id: Option<Uuid>,
    /// Its place in the org's feed: increasing, without gaps until
    /// retention removes the oldest.
    sequence: i64,
    /// What changed; its shape depends on `type`.
    #[schema(value_type = Object)]
    data: serde_json::Value,
}

impl From<FeedRow> for FeedEvent {
    fn from(r: FeedRow) -> Self {
        FeedEvent {
            id: r.event_id,
            kind: r.kind,
            occurred_at: time(r.occurred_at),
            org_id: r.org_id,
            directory_id: r.directory_id,
            sequence: r.sequence,
            data: serde_json::from_str(&r.data).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// A page of the feed.
#[derive(Serialize, ToSchema)]
pub struct EventPage {
    events: Vec<FeedEvent>,
    /// Pass as `after` for the events that follow; the same cursor when
    /// the page is empty.
    next: String,
}

/// The feed's query string (read by `parse_query`; this describes it for
/// the document).
#[derive(IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[expect(
    dead_code,
    reason = "describes the query string for the OpenAPI document"
)]
pub struct EventQueryDoc {
    /// `next` of a previous page; absent: from the oldest event kept.
    #[param(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    after: Option<String>,
    /// Comma-separated types (`user.created`) or prefixes (`user.*`).
    types: Option<String>,
    /// Only events of this directory.
    directory_id: Option<Uuid>,
    /// 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// 0 to 30: with no event to return, wait up to this many seconds for
    /// one (default 0).
    #[param(minimum = 0, maximum = 30)]
    wait: Option<u64>,
}

/// The cursor after `sequence`: opaque to clients.
pub fn encode_cursor(sequence: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("ev1:{sequence}"))
}

/// The sequence a cursor stands for.
pub fn decode_cursor(cursor: &str) -> Option<i64> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim()).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    let n: i64 = text.strip_prefix("ev1:")?.parse().ok()?;
    (n >= 0 && n.to_string().len() == text.len() - 4).then_some(n)
}

fn bad(message: impl Into<String>) -> AdminError {
    AdminError::BadRequest(message.into())
}

struct Parsed {
    query: FeedQuery,
    after: Option<i64>,
    wait: Duration,
}

fn parse_query(org: Uuid, raw: Option<&str>) -> Result<Parsed, AdminError> {
    let mut p = Parsed {
        query: FeedQuery {
            org_id: org,
            limit: DEFAULT_LIMIT,
            ..FeedQuery::default()
        },
        after: None,
        wait: Duration::ZERO,
    };
    let mut seen: Vec<String> = Vec::new();
    for (key, value) in query_pairs(raw)? {
        if seen.contains(&key) {
            return Err(bad(format!("query parameter '{key}' given twice")));
        }
        seen.push(key.clone());
        match key.as_str() {
            "after" => {
                p.after = Some(
                    decode_cursor(&value)
                        .ok_or_else(|| bad("'after' is not a cursor this feed returned"))?,
                )
            }
            "types" => {
                for t in value.split(',').filter(|t| !t.trim().is_empty()) {
                    let t = feed_type_filter(t).ok_or_else(|| {
                        bad(format!(
                            "'types': '{}' is not an event type nor a prefix like 'user.*'",
                            t.trim()
                        ))
                    })?;
                    if !p.query.types.contains(&t) {
                        p.query.types.push(t);
                    }
                }
            }
            "directoryId" => {
                p.query.directory_ids = vec![Uuid::parse_str(value.trim())
                    .map_err(|_| bad("'directoryId' must be a UUID"))?]
            }
            "limit" => p.query.limit = parse_limit(&value)?,
            "wait" => {
                let secs = value
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|s| *s <= MAX_WAIT_SECONDS)
                    .ok_or_else(|| {
                        bad(format!(
                            "'wait' must be an integer from 0 to {MAX_WAIT_SECONDS}"
                        ))
                    })?;
                p.wait = Duration::from_secs(secs);
            }
            other => return Err(bad(format!("unknown query parameter '{other}'"))),
        }
    }
    Ok(p)
}

fn expired() -> AdminError {
    AdminError::ExpiredCursor(
        "the events after this cursor are past their retention; start again without 'after'".into(),
    )
}

/// Reads an organisation's event feed: every committed change, each
/// exactly once, in `sequence` order. Keep `next` and pass it as `after`
/// to read on; with `wait`, an empty page is answered when an event
/// arrives or the wait ends. Events are kept for the server's retention
/// (`--event-retention-days`); a cursor older than that is
/// `expired_cursor`.
#[utoipa::path(
    get,
    path = "/admin/v1/orgs/{orgId}/events",
    tag = "events",
    operation_id = "listEvents",
    params(OrgPath, EventQueryDoc),
    responses(
        (status = 200, description = "A page of events, oldest first", body = EventPage),
        (status = 400, description = "A bad parameter, a cursor this feed did not return, or `expired_cursor`", body = AdminErrorBody),
        (status = 404, description = "No such organisation", body = AdminErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminContext,
    AdminPath(p): AdminPath<OrgPath>,
    RawQuery(raw): RawQuery,
) -> Result<Json<EventPage>, AdminError> {
    let org = org_id(&state, &p.org_id).await?;
    let Parsed {
        mut query,
        after,
        wait,
    } = parse_query(org, raw.as_deref())?;
    let bounds = state.store.feed_bounds(org).await?;
    query.after = match after {
        Some(a) if a < bounds.pruned_through => return Err(expired()),
        Some(a) if a > bounds.last_sequence => {
            return Err(bad("'after' is not a cursor this feed returned"))
        }
        Some(a) => a,
        None => bounds.pruned_through,
    };
    let deadline = tokio::time::Instant::now() + wait;
    let signals = state.store.event_signals();
    let rows = loop {
        // Listening before reading: an event numbered between the read
        // and the wait still wakes it.
        let sequenced = signals.sequenced.notified();
        tokio::pin!(sequenced);
        sequenced.as_mut().enable();
        let rows = state.store.feed_page(&query).await?;
        let now = tokio::time::Instant::now();
        if !rows.is_empty() || now >= deadline {
            break rows;
        }
        tokio::select! {
            _ = &mut sequenced => {}
            _ = tokio::time::sleep(POLL.min(deadline - now)) => {}
        }
    };
    // Pruned while this page was read: its events may have gone from under
    // the cursor.
    if after.is_some() && state.store.feed_bounds(org).await?.pruned_through > query.after {
        return Err(expired());
    }
    let next = encode_cursor(rows.last().map_or(query.after, |r| r.sequence));
    Ok(Json(EventPage {
        events: rows.into_iter().map(FeedEvent::from).collect(),
        next,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_nothing_else_is_one() {
        for n in [0, 1, 42, i64::MAX] {
            assert_eq!(decode_cursor(&encode_cursor(n)), Some(n));
        }
        for bad in [
            "",
            "42",
            "ev1:42",
            &URL_SAFE_NO_PAD.encode("ev1:-1"),
            &URL_SAFE_NO_PAD.encode("ev1:01"),
            &URL_SAFE_NO_PAD.encode("ev2:1"),
        ] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn types_are_names_or_prefixes() {
        let org = Uuid::nil();
        let p = parse_query(org, Some("types=user.*,group.created,user.created")).unwrap();
        assert_eq!(
            p.query.types,
            vec!["user.", "group.created", "user.created"]
        );
        for bad in [
            "types=nope",
            "types=user*",
            "types=*",
            "wait=31",
            "limit=0",
            "after=x",
            "directoryId=1",
            "x=1",
            "limit=1&limit=2",
        ] {
            assert!(parse_query(org, Some(bad)).is_err(), "{bad}");
        }
        assert_eq!(
            parse_query(org, Some("wait=30")).unwrap().wait,
            Duration::from_secs(30)
        );
    }
}
