//! `/admin/v1/orgs/{orgId}/reports`: the provisioning report (newest-first
//! JSON pages with a cursor, or the whole report streamed as CSV) and the
//! daily counters identity-provider consoles show.

use crate::telemetry::ErrorChain;
use std::collections::BTreeMap;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::KnownFormat;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{org_id, query_pairs, time, OrgPath};
use crate::audit::{decode_cursor, encode_cursor, Action, Outcome, TargetType, DAY_MICROS};
use crate::http::error::{AdminError, AdminErrorBody};
use crate::http::extract::{AdminContext, AdminPath};
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

fn bad(message: impl Into<String>) -> AdminError {
    AdminError::BadRequest(message.into())
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
pub(crate) struct ReportParams {
    pub(crate) query: ReportQuery,
    pub(crate) limit: Option<i64>,
    pub(crate) csv: bool,
}

impl ReportParams {
    pub(crate) fn parse(org: Uuid, raw: Option<&str>) -> Result<Self, AdminError> {
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
                    for a in value.split(',') {
                        let action =
                            Action::parse(a).ok_or_else(|| bad(format!("unknown action '{a}'")))?;
                        q.actions.push(action.as_str().to_owned());
                    }
                }
                "account" => {
                    q.account_id = Some(
                        Uuid::parse_str(value.trim())
                            .map_err(|_| bad("'account' must be an account id"))?,
                    )
                }
                "targetType" => {
                    for t in value.split(',') {
                        let kind = TargetType::parse(t)
                            .ok_or_else(|| bad(format!("unknown target type '{t}'")))?;
                        q.target_types.push(kind.as_str().to_owned());
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
                    "json" => params.csv = false,
                    _ => return Err(bad("'format' must be 'json' or 'csv'")),
                },
                _ => {}
            }
        }
        Ok(params)
    }
}

/// One event of the audit log.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    /// The event's id, as a string of digits.
    id: String,
    /// RFC 3339, UTC, to the microsecond.
    #[schema(format = DateTime)]
    time: String,
    /// The directory, if the event is about one (not an organisation's
    /// creation).
    directory_id: Option<Uuid>,
    #[schema(schema_with = action_schema)]
    action: String,
    #[schema(schema_with = outcome_schema)]
    outcome: String,
    #[schema(schema_with = target_type_schema)]
    target_type: String,
    /// The target's id, when it has one (a failed creation has none).
    target_id: Option<Uuid>,
    /// The target's name as it was (a userName, a group's displayName, …).
    target_identifier: Option<String>,
    /// Top-level attributes an update changed.
    changed_attributes: Vec<String>,
    members_added: Option<i64>,
    members_removed: Option<i64>,
    /// A failure's HTTP status.
    status: Option<i32>,
    /// A failure's SCIM `scimType`.
    scim_type: Option<String>,
    /// A failure's detail.
    detail: Option<String>,
    /// `api_key` (SCIM), `admin_token` (admin API) or `system` (the
    /// command line).
    actor_type: String,
    /// The API key's or admin token's visible id.
    actor_id: Option<String>,
    source_ip: Option<String>,
    request_id: Option<String>,
}

/// Every action the log records.
fn action_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(Action::ALL.map(Action::as_str)))
        .into()
}

/// What an event can be about.
fn target_type_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(TargetType::ALL.map(TargetType::as_str)))
        .into()
}

/// Target types, comma-separated.
fn target_types_schema() -> Schema {
    let one = TargetType::ALL.map(TargetType::as_str).join("|");
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(format!("^({one})(,({one}))*$")))
        .into()
}

/// Actions, comma-separated.
fn actions_schema() -> Schema {
    let one = Action::ALL
        .map(|a| a.as_str().replace('.', "\\."))
        .join("|");
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(format!("^({one})(,({one}))*$")))
        .into()
}

fn outcome_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(
            [Outcome::Success, Outcome::Failure].map(Outcome::as_str),
        ))
        .into()
}

impl From<&EventRow> for EventView {
    fn from(e: &EventRow) -> Self {
        EventView {
            id: e.id.to_string(),
            time: time(e.occurred_at),
            directory_id: e.directory_id,
            action: e.action.clone(),
            outcome: e.outcome.clone(),
            target_type: e.target_type.clone(),
            target_id: e.target_id,
            target_identifier: e.target_identifier.clone(),
            changed_attributes: e.changed().into_iter().map(str::to_owned).collect(),
            members_added: e.members_added,
            members_removed: e.members_removed,
            status: e.status,
            scim_type: e.scim_type.clone(),
            detail: e.detail.clone(),
            actor_type: e.actor_type.clone(),
            actor_id: e.actor_id.clone(),
            source_ip: e.source_ip.clone(),
            request_id: e.request_id.clone(),
        }
    }
}

/// A page of the provisioning report, newest first.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportPage {
    events: Vec<EventView>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<String>,
}

/// The report's query string (read by `ReportParams::parse`, which gives
/// each bad value its own message; this describes it for the document).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "describes the query string for the OpenAPI document"
)]
pub struct ReportQueryDoc {
    /// Only this directory's events.
    directory: Option<Uuid>,
    /// Only events about this user: a userName, an email, an externalId,
    /// an accountId or a user id, current or former (empty: every user).
    user: Option<String>,
    /// Only these actions, comma-separated (`user.created,user.deleted`).
    #[param(schema_with = actions_schema)]
    action: Option<String>,
    /// Only events about this org-level account (its access granted and
    /// revoked, its deactivation, …).
    account: Option<Uuid>,
    /// Only events about these kinds of target, comma-separated
    /// (`account` for the access the sync engine grants and revokes).
    #[param(rename = "targetType", schema_with = target_types_schema)]
    target_type: Option<String>,
    /// `success` or `failure`.
    #[param(schema_with = outcome_schema)]
    outcome: Option<String>,
    /// Events at or after this time: RFC 3339, or `YYYY-MM-DD` (midnight UTC).
    #[param(schema_with = time_schema)]
    since: Option<String>,
    /// Events before this time: RFC 3339, or `YYYY-MM-DD` (midnight UTC).
    #[param(schema_with = time_schema)]
    until: Option<String>,
    /// The `nextCursor` of the previous page.
    cursor: Option<String>,
    /// Events per page (JSON, default 100), or in all (CSV, default all);
    /// clamped to 1..=1000.
    limit: Option<i64>,
    /// `json` (the default) or `csv`, the whole report streamed.
    #[param(schema_with = format_schema)]
    format: Option<String>,
}

/// An RFC 3339 time or a date.
fn time_schema() -> Schema {
    let string = |format| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(format)))
    };
    OneOfBuilder::new()
        .item(string(KnownFormat::DateTime))
        .item(string(KnownFormat::Date))
        .into()
}

fn format_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["json", "csv"]))
        .into()
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

/// The provisioning report: the audit log, newest first, as JSON pages or
/// the whole of it as CSV.
#[utoipa::path(
    get,
    path = "/admin/v1/orgs/{orgId}/reports/provisioning",
    tag = "reports",
    operation_id = "provisioningReport",
    params(OrgPath, ReportQueryDoc),
    responses(
        (status = 200, description = "A page of events (JSON), or every event that matches (CSV, streamed, with a header row)",
            content(
                (ReportPage = "application/json"),
                (String = "text/csv"),
            )
        ),
        (status = 404, description = "No such organisation", body = AdminErrorBody),
    )
)]
pub async fn provisioning(
    State(state): State<AppState>,
    _admin: AdminContext,
    AdminPath(p): AdminPath<OrgPath>,
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
    Ok(Json(ReportPage {
        events: rows.iter().map(EventView::from).collect(),
        next_cursor: next,
    })
    .into_response())
}

/// Streams the report as CSV: rows go from the database's cursor through a
/// bounded channel into the response body a chunk at a time, so the
/// report is never held in memory whole and a slow client slows the query.
/// A database error mid-way ends the body early (the client sees a
/// truncated transfer, never a complete-looking file).
pub(crate) fn csv_response(state: &AppState, query: ReportQuery) -> Response {
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

/// Counters of one directory over a day or a window.
#[derive(Clone, Copy, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Counters {
    users_created: i64,
    users_deactivated: i64,
    users_deleted: i64,
    /// Failed SCIM writes.
    failures: i64,
    /// Accounts the sync engine gave access (one per account and run).
    access_granted: i64,
    /// Accounts the sync engine took access from (one per account and
    /// run).
    access_revoked: i64,
}

/// One UTC day's counters.
#[derive(Serialize, ToSchema)]
pub struct DailyCounters {
    /// `YYYY-MM-DD`.
    #[schema(format = Date)]
    date: String,
    #[serde(flatten)]
    counters: Counters,
}

/// One directory's counters.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryStats {
    directory_id: Uuid,
    /// Null once the directory is deleted.
    name: Option<String>,
    deleted: bool,
    totals: Counters,
    /// One entry per day of the window, oldest first, zeros included.
    daily: Vec<DailyCounters>,
}

/// Daily counters of an organisation's directories.
#[derive(Serialize, ToSchema)]
pub struct Stats {
    /// Days in the window, today included.
    days: i64,
    /// The first day, `YYYY-MM-DD`.
    #[schema(format = Date)]
    from: String,
    /// The last day (today, UTC).
    #[schema(format = Date)]
    to: String,
    /// Every current directory, then deleted ones with events in the window.
    directories: Vec<DirectoryStats>,
}

/// The stats endpoint's query string (read by `stats`).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "describes the query string for the OpenAPI document"
)]
pub struct StatsQueryDoc {
    /// Days to count, today included: 1 to the server's audit retention
    /// (default 30, or the retention if shorter). The document a server
    /// serves states its own retention as the maximum.
    #[param(minimum = 1)]
    days: Option<i64>,
    /// Only this directory.
    directory: Option<Uuid>,
}

/// Users created, deactivated and deleted, failures, and accounts given
/// and denied access, per directory and UTC day.
#[utoipa::path(
    get,
    path = "/admin/v1/orgs/{orgId}/reports/stats",
    tag = "reports",
    operation_id = "provisioningStats",
    params(OrgPath, StatsQueryDoc),
    responses(
        (status = 200, description = "Counters per directory and day", body = Stats),
        (status = 404, description = "No such organisation", body = AdminErrorBody),
    )
)]
pub async fn stats(
    State(state): State<AppState>,
    _admin: AdminContext,
    AdminPath(p): AdminPath<OrgPath>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Stats>, AdminError> {
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
        .audit_stats(org, directory, first, today + 1)
        .await?;
    let mut per_dir: BTreeMap<Uuid, BTreeMap<i64, Counters>> = BTreeMap::new();
    for r in &rows {
        per_dir.entry(r.directory_id).or_default().insert(
            r.day,
            Counters {
                users_created: r.users_created,
                users_deactivated: r.users_deactivated,
                users_deleted: r.users_deleted,
                failures: r.failures,
                access_granted: r.access_granted,
                access_revoked: r.access_revoked,
            },
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
    let directories = order
        .into_iter()
        .map(|(id, name)| {
            let by_day = per_dir.remove(&id).unwrap_or_default();
            let mut totals = Counters::default();
            let daily = (first..=today)
                .map(|day| {
                    let c = by_day.get(&day).copied().unwrap_or_default();
                    totals.users_created += c.users_created;
                    totals.users_deactivated += c.users_deactivated;
                    totals.users_deleted += c.users_deleted;
                    totals.failures += c.failures;
                    totals.access_granted += c.access_granted;
                    totals.access_revoked += c.access_revoked;
                    DailyCounters {
                        date: date(day),
                        counters: c,
                    }
                })
                .collect();
            DirectoryStats {
                directory_id: id,
                deleted: name.is_none(),
                name,
                totals,
                daily,
            }
        })
        .collect();
    Ok(Json(Stats {
        days,
        from: date(first),
        to: date(today),
        directories,
    }))
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
            Some("action=user.created,access.granted&targetType=account,user&outcome=failure&since=2026-01-01&limit=5000&format=csv"),
        )
        .unwrap_or_else(|_| panic!("valid parameters"));
        assert_eq!(p.query.actions, ["user.created", "access.granted"]);
        assert_eq!(p.query.target_types, ["account", "user"]);
        assert_eq!(p.query.outcome.as_deref(), Some("failure"));
        assert_eq!(p.query.since, Some(1_767_225_600_000_000));
        assert_eq!(p.limit, Some(MAX_LIMIT));
        assert!(p.csv);
        for bad in [
            "action=user.exploded",
            "targetType=",
            "targetType=account,,user",
            "targetType=person",
            "account=ann",
            "outcome=maybe",
            "since=yesterday",
            "cursor=zz",
            "format=xml",
        ] {
            assert!(ReportParams::parse(org, Some(bad)).is_err(), "{bad}");
        }
    }
}
