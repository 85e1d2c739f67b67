//! `/admin/v1/orgs/{orgId}/reports`: the provisioning report (newest-first
//! JSON pages with a cursor, or the whole report streamed as CSV) and the
//! daily counters identity-provider consoles show.

use crate::telemetry::ErrorChain;
use std::collections::BTreeMap;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::{org_id, time};
use crate::audit::{decode_cursor, encode_cursor, Action, Outcome, DAY_MICROS};
use crate::http::error::AdminError;
use crate::http::extract::AdminContext;
use crate::http::AppState;
use crate::store::{EventRow, ReportQuery, StoreError};
use crate::time::now_micros;

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

/// Rows in flight between the database and a CSV response.
const CSV_ROWS_IN_FLIGHT: usize = 1024;
/// Rows serialised into one body chunk at most.
const CSV_ROWS_PER_CHUNK: usize = 256;

/// The CSV columns, in order; the JSON fields carry the same names in
/// camelCase.
pub const CSV_COLUMNS: [&str; 18] = [
    "id",
    "time",
    "directory_id",
    "action",
    "outcome",
    "target_type",
    "target_id",
    "target_identifier",
    "changed_attributes",
    "members_added",
    "members_removed",
    "status",
    "scim_type",
    "detail",
    "actor_type",
    "actor_id",
    "source_ip",
    "request_id",
];

#[derive(Deserialize)]
pub struct OrgPath {
    org_id: String,
}

fn bad(message: impl Into<String>) -> AdminError {
    AdminError::BadRequest(message.into())
}

fn query_pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, AdminError> {
    serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|e| bad(format!("malformed query string: {e}")))
}

/// An RFC 3339 time or a `YYYY-MM-DD` date (midnight UTC), in microseconds.
fn parse_time(name: &str, value: &str) -> Result<i64, AdminError> {
    let value = value.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        return Ok(t.timestamp_micros());
    }
    chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_micros())
        .ok_or_else(|| {
            bad(format!(
                "'{name}' must be an RFC 3339 time or a YYYY-MM-DD date"
            ))
        })
}

/// The report's query parameters.
struct ReportParams {
    query: ReportQuery,
    limit: Option<i64>,
    csv: bool,
}

impl ReportParams {
    fn parse(org: Uuid, raw: Option<&str>) -> Result<Self, AdminError> {
        let mut params = ReportParams {
            query: ReportQuery {
                org_id: org,
                ..ReportQuery::default()
            },
            limit: None,
            csv: false,
        };
        let q = &mut params.query;
        for (key, value) in query_pairs(raw)? {
            match key.as_str() {
                "directory" => {
                    q.directory_id = Some(
                        Uuid::parse_str(value.trim())
                            .map_err(|_| bad("'directory' must be a directory id"))?,
                    )
                }
                "user" => {
                    let v = value.trim();
                    if !v.is_empty() {
                        q.user = Some(v.to_owned());
                    }
                }
                "action" => {
                    for a in value.split(',').filter(|a| !a.trim().is_empty()) {
                        let action =
                            Action::parse(a).ok_or_else(|| bad(format!("unknown action '{a}'")))?;
                        q.actions.push(action.as_str().to_owned());
                    }
                }
                "outcome" => {
                    let o = Outcome::parse(&value)
                        .ok_or_else(|| bad("'outcome' must be 'success' or 'failure'"))?;
                    q.outcome = Some(o.as_str().to_owned());
                }
                "since" => q.since = Some(parse_time("since", &value)?),
                "until" => q.until = Some(parse_time("until", &value)?),
                "cursor" => {
                    q.before = Some(decode_cursor(&value).ok_or_else(|| bad("invalid cursor"))?)
                }
                "limit" => {
                    let n: i64 = value
                        .trim()
                        .parse()
                        .map_err(|_| bad("'limit' must be an integer"))?;
                    params.limit = Some(n.clamp(1, MAX_LIMIT));
                }
                "format" => match value.trim().to_ascii_lowercase().as_str() {
                    "csv" => params.csv = true,
                    "json" | "" => params.csv = false,
                    _ => return Err(bad("'format' must be 'json' or 'csv'")),
                },
                _ => {}
            }
        }
        Ok(params)
    }
}

fn event_json(e: &EventRow) -> Value {
    json!({
        "id": e.id.to_string(),
        "time": time(e.occurred_at),
        "directoryId": e.directory_id,
        "action": e.action,
        "outcome": e.outcome,
        "targetType": e.target_type,
        "targetId": e.target_id,
        "targetIdentifier": e.target_identifier,
        "changedAttributes": e.changed(),
        "membersAdded": e.members_added,
        "membersRemoved": e.members_removed,
        "status": e.status,
        "scimType": e.scim_type,
        "detail": e.detail,
        "actorType": e.actor_type,
        "actorId": e.actor_id,
        "sourceIp": e.source_ip,
        "requestId": e.request_id,
    })
}

/// A spreadsheet would run a cell that starts like a formula; such cells
/// get a leading `'` (identifiers and details come from clients).
fn cell(value: &str) -> std::borrow::Cow<'_, str> {
    match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}").into(),
        _ => value.into(),
    }
}

fn csv_record(e: &EventRow) -> Vec<String> {
    let opt = |v: &Option<String>| {
        v.as_deref()
            .map(|s| cell(s).into_owned())
            .unwrap_or_default()
    };
    let num = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
    let id = |v: Option<Uuid>| v.map(|u| u.to_string()).unwrap_or_default();
    vec![
        e.id.to_string(),
        time(e.occurred_at),
        id(e.directory_id),
        e.action.clone(),
        e.outcome.clone(),
        e.target_type.clone(),
        id(e.target_id),
        opt(&e.target_identifier),
        opt(&e.changed_attributes),
        num(e.members_added),
        num(e.members_removed),
        num(e.status.map(i64::from)),
        opt(&e.scim_type),
        opt(&e.detail),
        e.actor_type.clone(),
        opt(&e.actor_id),
        opt(&e.source_ip),
        opt(&e.request_id),
    ]
}

/// `GET /orgs/{orgId}/reports/provisioning`.
pub async fn provisioning(
    State(state): State<AppState>,
    _admin: AdminContext,
    Path(p): Path<OrgPath>,
    RawQuery(raw): RawQuery,
) -> Result<Response, AdminError> {
    let org = org_id(&state, &p.org_id).await?;
    let mut params = ReportParams::parse(org, raw.as_deref())?;
    if params.csv {
        params.query.limit = params.limit;
        return Ok(csv_response(&state, params.query));
    }
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    // One more than a page tells whether there is a next one.
    params.query.limit = Some(limit + 1);
    let mut rows = state.store.audit_report(&params.query).await?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| encode_cursor(r.occurred_at, r.id))
    } else {
        None
    };
    let events: Vec<Value> = rows.iter().map(event_json).collect();
    Ok(Json(json!({ "events": events, "nextCursor": next })).into_response())
}

/// Streams the report as CSV: rows go from the database's cursor through a
/// bounded channel into the response body a chunk at a time, so the
/// report is never held in memory whole and a slow client slows the query.
/// A database error mid-way ends the body early (the client sees a
/// truncated transfer, never a complete-looking file).
fn csv_response(state: &AppState, query: ReportQuery) -> Response {
    let (rows_tx, rows_rx) = mpsc::channel::<EventRow>(CSV_ROWS_IN_FLIGHT);
    let (err_tx, err_rx) = oneshot::channel::<StoreError>();
    let store = state.store.clone();
    tokio::spawn(async move {
        let result = store.stream_audit_report(&query, &rows_tx).await;
        drop(rows_tx);
        if let Err(e) = result {
            let _ = err_tx.send(e);
        }
    });

    struct Csv {
        rows: mpsc::Receiver<EventRow>,
        failed: Option<oneshot::Receiver<StoreError>>,
        header: bool,
    }
    /// One chunk of CSV text.
    fn chunk(records: impl Iterator<Item = Vec<String>>) -> std::io::Result<Bytes> {
        let mut writer = csv::Writer::from_writer(Vec::with_capacity(64 * 1024));
        for r in records {
            writer.write_record(&r)?;
        }
        let bytes = writer.into_inner().map_err(|e| e.into_error())?;
        Ok(Bytes::from(bytes))
    }
    let state = Csv {
        rows: rows_rx,
        failed: Some(err_rx),
        header: false,
    };
    let stream = futures_util::stream::unfold(state, |mut s| async move {
        if !s.header {
            s.header = true;
            let header = CSV_COLUMNS.iter().map(|c| c.to_string()).collect();
            return Some((chunk(std::iter::once(header)), s));
        }
        let Some(first) = s.rows.recv().await else {
            // The producer is done: cleanly, or with an error to end on.
            let failed = s.failed.take()?;
            let cause = failed.await.ok()?;
            tracing::error!(error = %ErrorChain(&cause), "CSV report export failed");
            let err = std::io::Error::other("the report could not be read to the end");
            return Some((Err(err), s));
        };
        let mut rows = vec![csv_record(&first)];
        while rows.len() < CSV_ROWS_PER_CHUNK {
            match s.rows.try_recv() {
                Ok(row) => rows.push(csv_record(&row)),
                Err(_) => break,
            }
        }
        Some((chunk(rows.into_iter()), s))
    });
    let mut resp = Body::from_stream(stream).into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"provisioning-report.csv\""),
    );
    resp
}

/// Days since the epoch as `YYYY-MM-DD`.
fn date(day: i64) -> String {
    chrono::DateTime::from_timestamp(day * 86_400, 0)
        .map(|t| t.date_naive().to_string())
        .unwrap_or_default()
}

/// `GET /orgs/{orgId}/reports/stats?days=30`.
pub async fn stats(
    State(state): State<AppState>,
    _admin: AdminContext,
    Path(p): Path<OrgPath>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AdminError> {
    let org = org_id(&state, &p.org_id).await?;
    let retention = i64::from(state.settings.audit_retention_days);
    let mut days = 30.min(retention);
    let mut directory = None;
    for (key, value) in query_pairs(raw.as_deref())? {
        match key.as_str() {
            "days" => {
                days = value
                    .trim()
                    .parse()
                    .ok()
                    .filter(|d| (1..=retention).contains(d))
                    .ok_or_else(|| {
                        bad(format!(
                            "'days' must be a whole number from 1 to {retention} (the retention)"
                        ))
                    })?;
            }
            "directory" => {
                directory = Some(
                    Uuid::parse_str(value.trim())
                        .map_err(|_| bad("'directory' must be a directory id"))?,
                )
            }
            _ => {}
        }
    }
    // Whole UTC days, today included.
    let today = now_micros().div_euclid(DAY_MICROS);
    let first = today - days + 1;
    let rows = state
        .store
        .audit_stats(org, directory, first * DAY_MICROS, (today + 1) * DAY_MICROS)
        .await?;
    let mut per_dir: BTreeMap<Uuid, BTreeMap<i64, [i64; 4]>> = BTreeMap::new();
    for r in &rows {
        per_dir.entry(r.directory_id).or_default().insert(
            r.day,
            [
                r.users_created,
                r.users_deactivated,
                r.users_deleted,
                r.failures,
            ],
        );
    }
    // Every current directory, with zeros where nothing happened, then
    // deleted ones that still have events in the window.
    let mut order: Vec<(Uuid, Option<String>)> = state
        .store
        .directory_names(org)
        .await?
        .into_iter()
        .filter(|(id, _)| directory.is_none_or(|d| d == *id))
        .map(|(id, name)| (id, Some(name)))
        .collect();
    for id in per_dir.keys() {
        if !order.iter().any(|(d, _)| d == id) {
            order.push((*id, None));
        }
    }
    let counters = |c: &[i64; 4]| {
        json!({
            "usersCreated": c[0],
            "usersDeactivated": c[1],
            "usersDeleted": c[2],
            "failures": c[3],
        })
    };
    let directories: Vec<Value> = order
        .into_iter()
        .map(|(id, name)| {
            let by_day = per_dir.remove(&id).unwrap_or_default();
            let mut totals = [0i64; 4];
            let daily: Vec<Value> = (first..=today)
                .map(|day| {
                    let c = by_day.get(&day).copied().unwrap_or_default();
                    for (t, v) in totals.iter_mut().zip(c) {
                        *t += v;
                    }
                    let mut v = counters(&c);
                    v["date"] = Value::String(date(day));
                    v
                })
                .collect();
            json!({
                "directoryId": id,
                "name": name,
                "deleted": name.is_none(),
                "totals": counters(&totals),
                "daily": daily,
            })
        })
        .collect();
    Ok(Json(json!({
        "days": days,
        "from": date(first),
        "to": date(today),
        "directories": directories,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_defused() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("-1"), "'-1");
        assert_eq!(cell("ada@example.com"), "ada@example.com");
    }

    #[test]
    fn report_parameters_are_checked() {
        let org = Uuid::new_v4();
        let p = ReportParams::parse(
            org,
            Some("action=user.created,user.deactivated&outcome=failure&since=2026-01-01&limit=5000&format=csv"),
        )
        .unwrap_or_else(|_| panic!("valid parameters"));
        assert_eq!(p.query.actions, ["user.created", "user.deactivated"]);
        assert_eq!(p.query.outcome.as_deref(), Some("failure"));
        assert_eq!(p.query.since, Some(1_767_225_600_000_000));
        assert_eq!(p.limit, Some(MAX_LIMIT));
        assert!(p.csv);
        for bad in [
            "action=user.exploded",
            "outcome=maybe",
            "since=yesterday",
            "cursor=zz",
            "format=xml",
        ] {
            assert!(ReportParams::parse(org, Some(bad)).is_err(), "{bad}");
        }
    }
}
