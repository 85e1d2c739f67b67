//! `/admin/orgs/{orgId}/webhooks`: the organisation's webhooks with where
//! their deliveries are, a form to add one (its signing secret shown
//! once), and each one's latest delivery attempts.

use axum::extract::{Path, RawForm, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;
use uuid::Uuid;

use super::{page, refusal, ConsoleRejection, FormFields, Session};
use crate::http::admin::webhooks::{add_webhook, CreateWebhook};
use crate::http::AppState;
use crate::store::WebhookRow;
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
    Ok(render_list(&state, &session, &raw_org, None)
        .await?
        .into_response())
}

/// `POST …/webhooks`: adds a webhook and shows its page with the signing
/// secret, once; a refusal (`url_refused`, a bad type) beside the form.
pub async fn create(
    State(state): State<AppState>,
    session: Session,
    Path(raw_org): Path<String>,
    form: RawForm,
) -> Result<Response, ConsoleRejection> {
    let f = FormFields::read(&form);
    session.check_csrf(f.get("csrf"))?;
    let org = crate::http::admin::org_id(&state, &raw_org).await?;
    let types: Vec<String> = f
        .get("types")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    let body = CreateWebhook {
        url: f.get("url").trim().to_owned(),
        types: Some(types),
        directory_ids: None,
        description: Some(f.get("description").to_owned()),
    };
    match add_webhook(&state, org, &body).await {
        Ok((hook, secret)) => {
            let page = render_webhook(&state, &session, &raw_org, &hook, Some(&secret)).await?;
            Ok((StatusCode::CREATED, page).into_response())
        }
        Err(e) => {
            let (status, message) = refusal(e)?;
            let page = render_list(&state, &session, &raw_org, Some(&message)).await?;
            Ok((status, page).into_response())
        }
    }
}

/// The list, with the form to add one; `error` beside the form.
async fn render_list(
    state: &AppState,
    session: &Session,
    raw_org: &str,
    error: Option<&str>,
) -> Result<maud::Markup, ConsoleRejection> {
    let org = crate::http::admin::org_id(state, raw_org).await?;
    let hooks = state.store.list_webhooks(org).await?;
    let content = html! {
        p { a href=(format!("/admin/orgs/{raw_org}")) { "← Organisation" } }
        h1 { "Webhooks" }
        form method="post" action=(format!("/admin/orgs/{raw_org}/webhooks")) aria-describedby=[error.map(|_| "webhook-error")] {
            input type="hidden" name="csrf" value=(session.csrf);
            h2 { "Add a webhook" }
            label for="webhook-url" { "URL" }
            input id="webhook-url" name="url" type="text" required placeholder="https://hooks.example.com/scimd";
            label for="webhook-types" { "Event types, separated by commas (empty: every type)" }
            input id="webhook-types" name="types" type="text" placeholder="user.*, access.granted";
            label for="webhook-description" { "Description" }
            input id="webhook-description" name="description" type="text" maxlength="500";
            @if let Some(e) = error {
                p.error id="webhook-error" role="alert" { (e) }
            }
            p { button type="submit" { "Add webhook" } }
        }
        @if hooks.is_empty() {
            p { "No webhook yet." }
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
    Ok(page("Webhooks", Some(session), content))
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
    Ok(render_webhook(&state, &session, &p.org_id, &hook, None)
        .await?
        .into_response())
}

/// A webhook's page; `secret` once, right after it was made.
async fn render_webhook(
    state: &AppState,
    session: &Session,
    raw_org: &str,
    hook: &WebhookRow,
    secret: Option<&str>,
) -> Result<maud::Markup, ConsoleRejection> {
    let (attempts, _) = state
        .store
        .list_webhook_attempts(hook.id, None, ATTEMPTS_SHOWN)
        .await?;
    let content = html! {
        p { a href=(format!("/admin/orgs/{raw_org}/webhooks")) { "← Webhooks" } }
        h1 { (hook.url) }
        @if let Some(secret) = secret {
            section.notice aria-labelledby="secret-title" {
                h2 id="secret-title" { "The signing secret" }
                p.warning { "This secret is shown only this once. Give it to the receiver now: it checks each message's signature with it." }
                p { code id="webhook-secret" { (secret) } " "
                    button type="button" data-copy="webhook-secret" hidden { "Copy" }
                    span id="webhook-secret-status" role="status" {} }
            }
        }
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
    Ok(page("Webhook", Some(session), content))
}
