//! `/admin/orgs/{orgId}/webhooks`: the organisation's webhooks with where
//! their deliveries are, and each one's latest delivery attempts.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;
use uuid::Uuid;

use super::{page, ConsoleRejection, Session};
use crate::http::AppState;
use crate::time::format_micros;

/// Attempts a webhook's page lists, newest first.
pub const ATTEMPTS_SHOWN: i64 = 50;

#[derive(Deserialize)]
pub struct WebhookPath {
    #[serde(rename = "orgId")]
    org_id: String,
    #[serde(rename = "webhookId")]
    webhook_id: String,
}

pub async fn list(
    State(state): State<AppState>,
    session: Session,
    Path(raw_org): Path<String>,
) -> Result<Response, ConsoleRejection> {
    let org = crate::http::admin::org_id(&state, &raw_org).await?;
    let hooks = state.store.list_webhooks(org).await?;
    let content = html! {
        p { a href=(format!("/admin/orgs/{raw_org}")) { "← Organisation" } }
        h1 { "Webhooks" }
        @if hooks.is_empty() {
            p { "No webhook. Add one through the admin API (" code { "POST /admin/v1/orgs/{orgId}/webhooks" } ")." }
        } @else {
            table {
                caption.visually-hidden { "Webhooks" }
                thead { tr {
                    th scope="col" { "URL" }
                    th scope="col" { "Status" }
                    th.num scope="col" { "Failures in a row" }
                    th scope="col" { "Last error" }
                    th scope="col" { "Last delivered" }
                } }
                tbody {
                    @for w in &hooks {
                        tr {
                            td { a href=(format!("/admin/orgs/{raw_org}/webhooks/{}", w.id)) { (w.url) } }
                            td { (w.state) }
                            td.num { (w.failures) }
                            td { (w.last_error.as_deref().unwrap_or("")) }
                            td { (w.last_delivered_at.map(format_micros).unwrap_or_default()) }
                        }
                    }
                }
            }
        }
    };
    Ok(page("Webhooks", Some(&session), content).into_response())
}

pub async fn attempts(
    State(state): State<AppState>,
    session: Session,
    Path(p): Path<WebhookPath>,
) -> Result<Response, ConsoleRejection> {
    let org = crate::http::admin::org_id(&state, &p.org_id).await?;
    let id = Uuid::parse_str(&p.webhook_id).map_err(|_| ConsoleRejection::NotFound)?;
    let hook = state
        .store
        .get_webhook(org, id)
        .await?
        .ok_or(ConsoleRejection::NotFound)?;
    let (attempts, _) = state
        .store
        .list_webhook_attempts(id, None, ATTEMPTS_SHOWN)
        .await?;
    let content = html! {
        p { a href=(format!("/admin/orgs/{}/webhooks", p.org_id)) { "← Webhooks" } }
        h1 { (hook.url) }
        dl {
            dt { "Status" } dd { (hook.state) }
            dt { "Description" } dd { (hook.description) }
            dt { "Failures in a row" } dd { (hook.failures) }
            @if let Some(e) = &hook.last_error { dt { "Last error" } dd { (e) } }
        }
        h2 { "Latest attempts" }
        @if attempts.is_empty() {
            p { "No attempt yet." }
        } @else {
            table {
                caption.visually-hidden { "Delivery attempts, newest first" }
                thead { tr {
                    th scope="col" { "Time" }
                    th scope="col" { "Event" }
                    th.num scope="col" { "Sequence" }
                    th.num scope="col" { "Status" }
                    th.num scope="col" { "Latency (ms)" }
                    th scope="col" { "Outcome" }
                } }
                tbody {
                    @for a in &attempts {
                        tr {
                            td { (format_micros(a.attempted_at)) }
                            td { (a.event_type) }
                            td.num { (a.sequence.map(|s| s.to_string()).unwrap_or_default()) }
                            td.num { (a.status.map(|s| s.to_string()).unwrap_or_default()) }
                            td.num { (a.latency_ms) }
                            td { @if a.succeeded { "delivered" } @else { (a.error.as_deref().unwrap_or("failed")) } }
                        }
                    }
                }
            }
        }
    };
    Ok(page("Webhook", Some(&session), content).into_response())
}
