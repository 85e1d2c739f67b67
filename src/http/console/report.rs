//! `/admin/orgs/{orgId}/report`: the provisioning report, filtered by
//! user, action, outcome and time span, paged, and downloadable as CSV —
//! the admin API's report (`GET …/reports/provisioning`), its parameters
//! read by the same code.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};

use super::{page, ConsoleRejection, Session};
use crate::audit::{encode_cursor, Action};
use crate::http::admin::reports::{csv_response, ReportParams};
use crate::http::error::AdminError;
use crate::http::AppState;
use crate::time::format_micros;

/// Events a page shows.
pub const EVENTS_PER_PAGE: i64 = 50;

/// The filters given, without empty fields (a form sends them all) and
/// without `format`, which the page decides.
fn filters(raw: Option<&str>) -> Vec<(String, String)> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(raw.unwrap_or(""))
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, v)| !v.trim().is_empty() && k != "format" && k != "limit")
        .collect()
}

fn encode(pairs: &[(String, String)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

fn value<'a>(pairs: &'a [(String, String)], key: &str) -> &'a str {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map_or("", |(_, v)| v.as_str())
}

fn form(raw_org: &str, pairs: &[(String, String)], error: Option<&str>) -> Markup {
    let action = value(pairs, "action");
    let outcome = value(pairs, "outcome");
    html! {
        form method="get" action=(format!("/admin/orgs/{raw_org}/report")) aria-describedby=[error.map(|_| "report-error")] {
            label for="user" { "User (userName, email or id)" }
            input id="user" name="user" type="text" value=(value(pairs, "user"));
            label for="action" { "Action" }
            select id="action" name="action" {
                option value="" selected[action.is_empty()] { "Any" }
                @for a in Action::ALL {
                    option value=(a.as_str()) selected[action == a.as_str()] { (a.as_str()) }
                }
            }
            label for="outcome" { "Outcome" }
            select id="outcome" name="outcome" {
                option value="" selected[outcome.is_empty()] { "Any" }
                option value="success" selected[outcome == "success"] { "success" }
                option value="failure" selected[outcome == "failure"] { "failure" }
            }
            label for="since" { "From (date or RFC 3339 time)" }
            input id="since" name="since" type="text" placeholder="2026-12-01" value=(value(pairs, "since"));
            label for="until" { "Until" }
            input id="until" name="until" type="text" placeholder="2026-12-31" value=(value(pairs, "until"));
            @if let Some(e) = error {
                p.error id="report-error" role="alert" { (e) }
            }
            p { button type="submit" { "Filter" } }
        }
    }
}

pub async fn show(
    State(state): State<AppState>,
    session: Session,
    Path(raw_org): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ConsoleRejection> {
    let org = crate::http::admin::org_id(&state, &raw_org).await?;
    let pairs = filters(raw.as_deref());
    let mut params = match ReportParams::parse(org, Some(&encode(&pairs))) {
        Ok(p) => p,
        Err(AdminError::BadRequest(message)) => {
            let content =
                html! { h1 { "Provisioning report" } (form(&raw_org, &pairs, Some(&message))) };
            return Ok((
                StatusCode::BAD_REQUEST,
                page("Provisioning report", Some(&session), content),
            )
                .into_response());
        }
        Err(e) => return Err(e.into()),
    };
    params.query.limit = Some(EVENTS_PER_PAGE + 1);
    let mut rows = state.store.audit_report(&params.query).await?;
    let more = rows.len() as i64 > EVENTS_PER_PAGE;
    rows.truncate(EVENTS_PER_PAGE as usize);
    let without_cursor: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| k != "cursor")
        .cloned()
        .collect();
    let next = rows.last().filter(|_| more).map(|r| {
        let mut next = without_cursor.clone();
        next.push(("cursor".into(), encode_cursor(r.occurred_at, r.id)));
        encode(&next)
    });
    let content = html! {
        h1 { "Provisioning report" }
        (form(&raw_org, &pairs, None))
        p { a href=(format!("/admin/orgs/{raw_org}/report.csv?{}", encode(&without_cursor))) download { "Download CSV" }
            " (every event that matches)" }
        @if rows.is_empty() {
            p { "No event matches." }
        } @else {
            table {
                caption.visually-hidden { "Events, newest first" }
                thead { tr {
                    th scope="col" { "Time" }
                    th scope="col" { "Action" }
                    th scope="col" { "Outcome" }
                    th scope="col" { "Target" }
                    th scope="col" { "Detail" }
                    th scope="col" { "By" }
                } }
                tbody {
                    @for e in &rows {
                        tr {
                            td { (format_micros(e.occurred_at)) }
                            td { (e.action) }
                            td { (e.outcome) }
                            td { (e.target_identifier.as_deref().unwrap_or("")) }
                            td { (e.detail.as_deref().unwrap_or("")) }
                            td { (e.actor_type) " " (e.actor_id.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
        @if let Some(next) = next {
            p { a href=(format!("/admin/orgs/{raw_org}/report?{next}")) { "Older events" } }
        }
    };
    Ok(page("Provisioning report", Some(&session), content).into_response())
}

/// The whole matching report as CSV, streamed as the admin API streams it.
pub async fn csv(
    State(state): State<AppState>,
    _session: Session,
    Path(raw_org): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ConsoleRejection> {
    let org = crate::http::admin::org_id(&state, &raw_org).await?;
    let pairs: Vec<(String, String)> = filters(raw.as_deref())
        .into_iter()
        .filter(|(k, _)| k != "cursor")
        .collect();
    match ReportParams::parse(org, Some(&encode(&pairs))) {
        Ok(params) => Ok(csv_response(&state, params.query)),
        Err(AdminError::BadRequest(m)) => Ok((StatusCode::BAD_REQUEST, m).into_response()),
        Err(e) => Err(e.into()),
    }
}
