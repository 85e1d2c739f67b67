//! `/admin/v1/orgs/{orgId}/webhooks`: endpoints that are sent the org's
//! events, signed as Standard Webhooks has it (docs/WEBHOOKS.md), with
//! their secrets, replays, test messages and delivery attempts.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Host;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::accounts::{parse_limit, DEFAULT_LIMIT};
use super::events::{decode_cursor as decode_feed_cursor, encode_cursor as encode_feed_cursor};
use super::{check_description, org_id, org_id_schema, query_pairs, time, OrgPath};
use crate::directory::events::feed_type_filter;
use crate::http::error::{AdminError, AdminErrorBody};
use crate::http::extract::{AdminContext, AdminJson, AdminPath};
use crate::http::AppState;
use crate::store::{NewWebhook, WebhookAttempt, WebhookChange, WebhookRow};
use crate::webhooks::address::{check_url, resolve};
use crate::webhooks::delivery::Message;
use crate::webhooks::signing::SigningSecret;

/// Endpoints one organisation may have.
pub const MAX_WEBHOOKS_PER_ORG: i64 = 100;
/// The longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 500;
/// Directories one endpoint may name.
pub const MAX_DIRECTORY_IDS: usize = 100;
/// How long a rotated-out secret keeps signing by default (a day), and
/// at most (a week).
pub const DEFAULT_PREVIOUS_SECRET_SECONDS: i64 = 86_400;
pub const MAX_PREVIOUS_SECRET_SECONDS: i64 = 7 * 86_400;

/// `{orgId}` and `{webhookId}`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[serde(rename_all = "camelCase")]
pub struct WebhookPath {
    /// An organisation's id, or `default`.
    #[param(schema_with = org_id_schema)]
    pub org_id: String,
    /// A webhook's id. One that is not a UUID names no webhook: 404.
    #[param(value_type = Uuid)]
    pub webhook_id: String,
}

/// A new webhook endpoint.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateWebhook {
    /// An absolute `https` (or `http`) URL, at most 2048 characters,
    /// without credentials or fragment. One that resolves to a loopback,
    /// private, link-local or metadata address is refused
    /// (`url_refused`) unless the server runs with
    /// `--webhook-allow-private`.
    #[schema(max_length = 2048, example = "https://hooks.example.com/scimd")]
    pub(crate) url: String,
    /// Event types (`user.created`) or prefixes (`user.*`) to send;
    /// absent or empty: every type.
    pub(crate) types: Option<Vec<String>>,
    /// Only events of these directories of the org; absent or empty:
    /// every directory, and the org's own events.
    pub(crate) directory_ids: Option<Vec<Uuid>>,
    /// Up to 500 characters, without U+0000.
    #[schema(max_length = 500, pattern = r"^[^\u0000]*$")]
    pub(crate) description: Option<String>,
}

/// A change to a webhook: the fields given change, those absent stay.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "describes the body for the OpenAPI document; parse_change reads it"
)]
pub struct WebhookPatch {
    #[schema(nullable = false, max_length = 2048)]
    url: Option<String>,
    /// Empty: every type.
    #[schema(nullable = false)]
    types: Option<Vec<String>>,
    /// Empty: every directory.
    #[schema(nullable = false)]
    directory_ids: Option<Vec<Uuid>>,
    #[schema(nullable = false, max_length = 500, pattern = r"^[^\u0000]*$")]
    description: Option<String>,
    /// `false` stops deliveries (events wait); `true` re-enables a
    /// disabled or failing endpoint: it is tried at once, its failures
    /// forgotten.
    #[schema(nullable = false)]
    enabled: Option<bool>,
}

/// Where a replay starts: exactly one of `since` and `after`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplayWebhook {
    /// Send again every event (matching the endpoint's filters) written
    /// at or after this time (RFC 3339).
    #[schema(format = DateTime)]
    since: Option<String>,
    /// Send again every event after this feed cursor (an event feed
    /// `next`, or a webhook's `deliveredThrough`).
    after: Option<String>,
}

/// A webhook endpoint (never with its secret, which only its creation and
/// rotation show).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookView {
    id: Uuid,
    url: String,
    description: String,
    /// Types and prefixes sent; empty: every type.
    types: Vec<String>,
    /// Directories whose events are sent; empty: all.
    directory_ids: Vec<Uuid>,
    /// `active`: delivering (or retrying after a failure);
    /// `failing`: failed for longer than the retry window, waiting for an
    /// admin (its events are kept); `disabled`: stopped by an admin.
    #[schema(pattern = "^(active|failing|disabled)$")]
    status: String,
    /// The feed cursor of the last event delivered or passed over by the
    /// filters: events after it are pending.
    delivered_through: String,
    /// Failed attempts in a row at the event after `deliveredThrough`.
    #[schema(minimum = 0)]
    consecutive_failures: i64,
    #[schema(format = DateTime)]
    failing_since: Option<String>,
    /// When a failed delivery is tried again (while `consecutiveFailures`
    /// is above 0).
    #[schema(format = DateTime)]
    next_attempt_at: Option<String>,
    last_error: Option<String>,
    #[schema(format = DateTime)]
    last_delivered_at: Option<String>,
    /// Until when the secret rotated out still signs, beside the new one.
    #[schema(format = DateTime)]
    previous_secret_expires_at: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

impl From<&WebhookRow> for WebhookView {
    fn from(w: &WebhookRow) -> Self {
        let types: Vec<String> = serde_json::from_str::<Vec<String>>(&w.types)
            .unwrap_or_default()
            .into_iter()
            .map(|t| if t.ends_with('.') { format!("{t}*") } else { t })
            .collect();
        let now = crate::time::now_micros();
        WebhookView {
            id: w.id,
            url: w.url.clone(),
            description: w.description.clone(),
            types,
            directory_ids: serde_json::from_str(&w.directory_ids).unwrap_or_default(),
            status: w.state.clone(),
            delivered_through: encode_feed_cursor(w.delivered_through),
            consecutive_failures: w.failures,
            failing_since: w.failing_since.map(time),
            next_attempt_at: (w.failures > 0 && w.state == "active")
                .then(|| time(w.next_attempt_at)),
            last_error: w.last_error.clone(),
            last_delivered_at: w.last_delivered_at.map(time),
            previous_secret_expires_at: w.previous_secret_until.filter(|u| *u > now).map(time),
            created_at: time(w.created_at),
            updated_at: time(w.updated_at),
        }
    }
}

/// A webhook with its signing secret, shown this once.
#[derive(Serialize, ToSchema)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    webhook: WebhookView,
    /// `whsec_…`: verify each message's `webhook-signature` with it
    /// (docs/WEBHOOKS.md). Not shown again.
    secret: String,
}

/// The org's webhooks, oldest first.
#[derive(Serialize, ToSchema)]
pub struct WebhookList {
    webhooks: Vec<WebhookView>,
}

/// One delivery attempt.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptView {
    /// The message's `webhook-id` (the event's id).
    event_id: Uuid,
    event_type: String,
    /// The event's place in the feed; null for a test message.
    sequence: Option<i64>,
    #[schema(format = DateTime)]
    attempted_at: String,
    /// The receiver's HTTP status; null when none came.
    status: Option<i32>,
    #[schema(minimum = 0)]
    latency_ms: i64,
    /// A 2xx within the timeout.
    succeeded: bool,
    error: Option<String>,
    /// The start of the response body (at most 512 bytes).
    response_excerpt: Option<String>,
}

impl From<&WebhookAttempt> for AttemptView {
    fn from(a: &WebhookAttempt) -> Self {
        AttemptView {
            event_id: a.event_id,
            event_type: a.event_type.clone(),
            sequence: a.sequence,
            attempted_at: time(a.attempted_at),
            status: a.status,
            latency_ms: a.latency_ms,
            succeeded: a.succeeded,
            error: a.error.clone(),
            response_excerpt: a.response_excerpt.clone(),
        }
    }
}

/// A page of attempts, newest first.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptPage {
    attempts: Vec<AttemptView>,
    /// Pass as `cursor` for older attempts; absent on the last page.
    next_cursor: Option<String>,
}

/// The attempts list's query string.
#[derive(IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[expect(
    dead_code,
    reason = "describes the query string for the OpenAPI document"
)]
pub struct AttemptQueryDoc {
    /// `nextCursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    cursor: Option<String>,
    /// 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// The rotation's query string.
#[derive(IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[expect(
    dead_code,
    reason = "describes the query string for the OpenAPI document"
)]
pub struct RotateQueryDoc {
    /// Seconds the old secret keeps signing beside the new one, 0 to
    /// 604800 (default 86400); 0 retires it at once.
    #[param(minimum = 0, maximum = 604800)]
    previous_secret_valid_for: Option<i64>,
}

/// The new secret.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotatedSecret {
    /// `whsec_…`, shown this once.
    secret: String,
    /// Until when the old secret also signs; null when retired at once.
    #[schema(format = DateTime)]
    previous_secret_expires_at: Option<String>,
}

fn bad(message: impl Into<String>) -> AdminError {
    AdminError::BadRequest(message.into())
}

fn not_found() -> AdminError {
    AdminError::NotFound("webhook not found")
}

async fn ids(state: &AppState, p: &WebhookPath) -> Result<(Uuid, Uuid), AdminError> {
    let org = org_id(state, &p.org_id).await?;
    let id = Uuid::parse_str(&p.webhook_id).map_err(|_| not_found())?;
    Ok((org, id))
}

/// A URL a webhook may have: its form, and where it points unless
/// private addresses are allowed. A name is resolved now (and again at
/// every delivery).
async fn check_webhook_url(state: &AppState, raw: &str) -> Result<String, AdminError> {
    let allow = state.settings.webhooks.config().allow_private;
    let url = check_url(raw.trim(), allow).map_err(|e| match e {
        inside @ crate::webhooks::address::Refused::Inside { .. } => {
            AdminError::UrlRefused(format!("url: {inside}"))
        }
        other => bad(format!("url: {other}")),
    })?;
    if !allow {
        if let Some(Host::Domain(host)) = url.host() {
            let port = url.port_or_known_default().unwrap_or(443);
            resolve(host, port, false)
                .await
                .map_err(|e| AdminError::UrlRefused(format!("url: {e}")))?;
        }
    }
    Ok(url.to_string())
}

/// The stored form of `types`: each checked, as the feed's filter reads it.
fn check_types(types: &[String]) -> Result<String, AdminError> {
    let mut out: Vec<String> = Vec::new();
    for t in types {
        let t = feed_type_filter(t).ok_or_else(|| {
            bad(format!(
                "types: '{}' is not an event type nor a prefix like 'user.*'",
                t.trim()
            ))
        })?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(serde_json::to_string(&out).unwrap_or_else(|_| "[]".to_owned()))
}

async fn check_directories(
    state: &AppState,
    org: Uuid,
    ids: &[Uuid],
) -> Result<String, AdminError> {
    if ids.len() > MAX_DIRECTORY_IDS {
        return Err(bad(format!(
            "directoryIds: at most {MAX_DIRECTORY_IDS} directories"
        )));
    }
    let known: Vec<Uuid> = state
        .store
        .directory_names(org)
        .await?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let mut out: Vec<Uuid> = Vec::new();
    for id in ids {
        if !known.contains(id) {
            return Err(bad(format!(
                "directoryIds: {id} is not a directory of this organisation"
            )));
        }
        if !out.contains(id) {
            out.push(*id);
        }
    }
    Ok(serde_json::to_string(&out).unwrap_or_else(|_| "[]".to_owned()))
}

/// Creates a webhook. It is sent the events written from now on; its
/// signing secret is in this response only.
#[utoipa::path(
    post,
    path = "/admin/v1/orgs/{orgId}/webhooks",
    tag = "webhooks",
    operation_id = "createWebhook",
    params(OrgPath),
    request_body = CreateWebhook,
    responses(
        (status = 201, description = "The webhook, with its signing secret (shown this once)", body = WebhookWithSecret),
        (status = 400, description = "A bad field, or `url_refused`", body = AdminErrorBody),
        (status = 404, description = "No such organisation", body = AdminErrorBody),
        (status = 409, description = "The org has 100 webhooks already", body = AdminErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    _admin: AdminContext,
    AdminPath(p): AdminPath<OrgPath>,
    AdminJson(body): AdminJson<CreateWebhook>,
) -> Result<(StatusCode, Json<WebhookWithSecret>), AdminError> {
    let org = org_id(&state, &p.org_id).await?;
    let (row, secret) = add_webhook(&state, org, &body).await?;
    Ok((
        StatusCode::CREATED,
        Json(WebhookWithSecret {
            webhook: WebhookView::from(&row),
            secret,
        }),
    ))
}

/// Creates the webhook `body` describes in `org` and evaluates to it with
/// its signing secret, shown once. (The admin API and the console both
/// create webhooks this way.)
pub(crate) async fn add_webhook(
    state: &AppState,
    org: Uuid,
    body: &CreateWebhook,
) -> Result<(WebhookRow, String), AdminError> {
    let url = check_webhook_url(state, &body.url).await?;
    let types = check_types(body.types.as_deref().unwrap_or_default())?;
    let directory_ids = check_directories(
        state,
        org,
        body.directory_ids.as_deref().unwrap_or_default(),
    )
    .await?;
    let description = check_description(
        body.description.as_deref().unwrap_or_default(),
        MAX_DESCRIPTION_CHARS,
    )?;
    if state.store.count_webhooks(org).await? >= MAX_WEBHOOKS_PER_ORG {
        return Err(AdminError::Conflict(format!(
            "an organisation has at most {MAX_WEBHOOKS_PER_ORG} webhooks"
        )));
    }
    let secret = SigningSecret::generate().expose();
    let row = state
        .store
        .create_webhook(&NewWebhook {
            org_id: org,
            url,
            description,
            types,
            directory_ids,
            secret: secret.clone(),
        })
        .await?;
    Ok((row, secret))
}

/// Lists the org's webhooks.
#[utoipa::path(
    get,
    path = "/admin/v1/orgs/{orgId}/webhooks",
    tag = "webhooks",
    operation_id = "listWebhooks",
    params(OrgPath),
    responses(
        (status = 200, description = "The webhooks, oldest first", body = WebhookList),
        (status = 404, description = "No such organisation", body = AdminErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminContext,
    AdminPath(p): AdminPath<OrgPath>,
) -> Result<Json<WebhookList>, AdminError> {
    let org = org_id(&state, &p.org_id).await?;
    let rows = state.store.list_webhooks(org).await?;
    Ok(Json(WebhookList {
        webhooks: rows.iter().map(WebhookView::from).collect(),
    }))
}

/// Reads a webhook and where its deliveries are.
#[utoipa::path(
    get,
    path = "/admin/v1/orgs/{orgId}/webhooks/{webhookId}",
    tag = "webhooks",
    operation_id = "getWebhook",
    params(WebhookPath),
    responses(
        (status = 200, description = "The webhook", body = WebhookView),
        (status = 404, description = "No such organisation, or no such webhook in it", body = AdminErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    _admin: AdminContext,
    AdminPath(p): AdminPath<WebhookPath>,
) -> Result<Json<WebhookView>, AdminError> {
    let (org, id) = ids(&state, &p).await?;
    let row = state
        .store
        .get_webhook(org, id)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(WebhookView::from(&row)))
}

/// The fields `PATCH` accepts, for the message that refuses others.
const PATCHABLE: &str = "url, types, directoryIds, description, enabled";

async fn parse_change(
    state: &AppState,
    org: Uuid,
    body: &Value,
) -> Result<WebhookChange, AdminError> {
    let Value::Object(fields) = body else {
        return Err(bad(format!(
            "the body must be a JSON object with the fields to change ({PATCHABLE})"
        )));
    };
    if fields.is_empty() {
        return Err(bad(format!(
            "the body names no field to change ({PATCHABLE})"
        )));
    }
    let mut change = WebhookChange::default();
    for (name, value) in fields {
        match (name.as_str(), value) {
            ("url", Value::String(u)) => change.url = Some(check_webhook_url(state, u).await?),
            ("description", Value::String(d)) => {
                change.description = Some(check_description(d, MAX_DESCRIPTION_CHARS)?)
            }
            ("enabled", Value::Bool(b)) => change.enabled = Some(*b),
            ("types", Value::Array(_)) => {
                let types: Vec<String> = serde_json::from_value(value.clone())
                    .map_err(|_| bad("types must be an array of strings"))?;
                change.types = Some(check_types(&types)?);
            }
            ("directoryIds", Value::Array(_)) => {
                let dirs: Vec<Uuid> = serde_json::from_value(value.clone())
                    .map_err(|_| bad("directoryIds must be an array of directory ids"))?;
                change.directory_ids = Some(check_directories(state, org, &dirs).await?);
            }
            ("url" | "description", _) => return Err(bad(format!("{name} must be a string"))),
            ("enabled", _) => return Err(bad("enabled must be true or false")),
            ("types" | "directoryIds", _) => return Err(bad(format!("{name} must be an array"))),
            (other, _) => {
                return Err(bad(format!(
                    "unknown field '{other}': a webhook's PATCH accepts {PATCHABLE}"
                )))
            }
        }
    }
    Ok(change)
}

/// Changes a webhook: its URL, filters or description, or whether it is
/// enabled (`true` also re-enables a failing one).
#[utoipa::path(
    patch,
    path = "/admin/v1/orgs/{orgId}/webhooks/{webhookId}",
    tag = "webhooks",
    operation_id = "updateWebhook",
    params(WebhookPath),
    request_body = WebhookPatch,
    responses(
        (status = 200, description = "The webhook as changed", body = WebhookView),
        (status = 400, description = "A bad field, or `url_refused`", body = AdminErrorBody),
        (status = 404, description = "No such organisation, or no such webhook in it", body = AdminErrorBody),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    _admin: AdminContext,
    AdminPath(p): AdminPath<WebhookPath>,
    AdminJson(body): AdminJson<Value>,
) -> Result<Json<WebhookView>, AdminError> {
    let (org, id) = ids(&state, &p).await?;
    let change = parse_change(&state, org, &body).await?;
    let row = state
        .store
        .update_webhook(org, id, &change)
        .await?
        .ok_or_else(not_found)?;
    state.store.wake_webhooks();
    Ok(Json(WebhookView::from(&row)))
}

/// Deletes a webhook with its attempts; its pending events are no longer
/// held for it.
#[utoipa::path(
    delete,
    path = "/admin/v1/orgs/{orgId}/webhooks/{webhookId}",
    tag = "webhooks",
    operation_id = "deleteWebhook",
    params(WebhookPath),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such organisation, or no such webhook in it", body = AdminErrorBody),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    _admin: AdminContext,
    AdminPath(p): AdminPath<WebhookPath>,
) -> Result<StatusCode, AdminError> {
    let (org, id) = ids(&state, &p).await?;
    if !state.store.delete_webhook(org, id).await? {
        return Err(not_found());
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Issues a new signing secret. The old one keeps signing beside it (two
/// signatures in `webhook-signature`) for `previousSecretValidFor`
/// seconds, so receivers can switch without losing a message.
#[utoipa::path(
    post,
    path = "/admin/v1/orgs/{orgId}/webhooks/{webhookId}/secret",
    tag = "webhooks",
    operation_id = "rotateWebhookSecret",
    params(WebhookPath, RotateQueryDoc),
    responses(
        (status = 200, description = "The new secret (shown this once)", body = RotatedSecret),
        (status = 400, description = "A bad parameter", body = AdminErrorBody),
        (status = 404, description = "No such organisation, or no such webhook in it", body = AdminErrorBody),
    )
)]
pub async fn rotate_secret(
    State(state): State<AppState>,
    _admin: AdminContext,
    AdminPath(p): AdminPath<WebhookPath>,
    RawQuery(raw): RawQuery,
) -> Result<Json<RotatedSecret>, AdminError> {
    let (org, id) = ids(&state, &p).await?;
    let mut overlap = DEFAULT_PREVIOUS_SECRET_SECONDS;
    for (key, value) in query_pairs(raw.as_deref())? {
        match key.as_str() {
            "previousSecretValidFor" => {
                overlap = value
                    .trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|s| (0..=MAX_PREVIOUS_SECRET_SECONDS).contains(s))
                    .ok_or_else(|| {
                        bad(format!(
                            "'previousSecretValidFor' must be an integer from 0 to {MAX_PREVIOUS_SECRET_SECONDS}"
                        ))
                    })?
            }
            other => return Err(bad(format!("unknown query parameter '{other}'"))),
        }
    }
    let secret = SigningSecret::generate().expose();
    let until = crate::time::now_micros() + overlap * 1_000_000;
    let row = state
        .store
        .rotate_webhook_secret(org, id, &secret, if overlap > 0 { until } else { 0 })
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(RotatedSecret {
        secret,
        previous_secret_expires_at: row.previous_secret_until.filter(|_| overlap > 0).map(time),
    }))
}

/// Sends a `webhook.test` message now and answers with the attempt (also
/// in the attempts log). It does not wait for, or hold up, the endpoint's
/// events.
#[utoipa::path(
    post,
    path = "/admin/v1/orgs/{orgId}/webhooks/{webhookId}/test",
    tag = "webhooks",
    operation_id = "testWebhook",
    params(WebhookPath),
    responses(
        (status = 200, description = "The attempt, succeeded or not", body = AttemptView),
        (status = 404, description = "No such organisation, or no such webhook in it", body = AdminErrorBody),
    )
)]
pub async fn test(
    State(state): State<AppState>,
    _admin: AdminContext,
    AdminPath(p): AdminPath<WebhookPath>,
) -> Result<Json<AttemptView>, AdminError> {
    let (org, id) = ids(&state, &p).await?;
    let target = state
        .store
        .webhook_target(org, id)
        .await?
        .ok_or_else(not_found)?;
    let deliverer = &state.settings.webhooks;
    let attempt = deliverer
        .send(&deliverer.prepare(&target), &Message::test(org, id))
        .await;
    state
        .store
        .insert_webhook_attempts(id, std::slice::from_ref(&attempt))
        .await?;
    Ok(Json(AttemptView::from(&attempt)))
}

/// Sends the endpoint's events again from a point in the feed (`since` a
/// time, or `after` a cursor), and re-enables it if it was failing or
/// disabled. Events past the feed's retention cannot be replayed.
#[utoipa::path(
    post,
    path = "/admin/v1/orgs/{orgId}/webhooks/{webhookId}/replay",
    tag = "webhooks",
    operation_id = "replayWebhook",
    params(WebhookPath),
    request_body = ReplayWebhook,
    responses(
        (status = 200, description = "The webhook, its cursor moved", body = WebhookView),
        (status = 400, description = "Neither or both of `since` and `after`, a bad value, or `expired_cursor`", body = AdminErrorBody),
        (status = 404, description = "No such organisation, or no such webhook in it", body = AdminErrorBody),
    )
)]
pub async fn replay(
    State(state): State<AppState>,
    _admin: AdminContext,
    AdminPath(p): AdminPath<WebhookPath>,
    AdminJson(body): AdminJson<ReplayWebhook>,
) -> Result<Json<WebhookView>, AdminError> {
    let (org, id) = ids(&state, &p).await?;
    if state.store.get_webhook(org, id).await?.is_none() {
        return Err(not_found());
    }
    let bounds = state.store.feed_bounds(org).await?;
    let expired = || {
        AdminError::ExpiredCursor(
            "some of the events asked for are past the feed's retention; replay from later".into(),
        )
    };
    let after = match (&body.since, &body.after) {
        (Some(since), None) => {
            let at = crate::time::parse_rfc3339_micros(since)
                .ok_or_else(|| bad("since must be an RFC 3339 time"))?;
            let before = state.store.feed_sequence_before(org, at).await?;
            match before {
                Some(seq) => seq,
                // Nothing kept is older: from the oldest kept, unless
                // older events were pruned (those are lost).
                None if bounds.pruned_through > 0 => return Err(expired()),
                None => 0,
            }
        }
        (None, Some(cursor)) => {
            let seq = decode_feed_cursor(cursor)
                .filter(|s| *s <= bounds.last_sequence)
                .ok_or_else(|| bad("after is not a cursor of this organisation's feed"))?;
            if seq < bounds.pruned_through {
                return Err(expired());
            }
            seq
        }
        _ => return Err(bad("give exactly one of 'since' and 'after'")),
    };
    let row = state
        .store
        .replay_webhook(org, id, after)
        .await?
        .ok_or_else(not_found)?;
    state.store.wake_webhooks();
    Ok(Json(WebhookView::from(&row)))
}

fn encode_attempt_cursor(id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("wa1:{id}"))
}

fn decode_attempt_cursor(raw: &str) -> Option<i64> {
    let bytes = URL_SAFE_NO_PAD.decode(raw.trim()).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    text.strip_prefix("wa1:")?.parse().ok().filter(|n| *n > 0)
}

/// Lists a webhook's delivery attempts, newest first: each with its time,
/// status, latency and the start of the response. Kept for
/// `--webhook-attempt-retention-days`.
#[utoipa::path(
    get,
    path = "/admin/v1/orgs/{orgId}/webhooks/{webhookId}/attempts",
    tag = "webhooks",
    operation_id = "listWebhookAttempts",
    params(WebhookPath, AttemptQueryDoc),
    responses(
        (status = 200, description = "A page of attempts", body = AttemptPage),
        (status = 400, description = "A bad parameter", body = AdminErrorBody),
        (status = 404, description = "No such organisation, or no such webhook in it", body = AdminErrorBody),
    )
)]
pub async fn attempts(
    State(state): State<AppState>,
    _admin: AdminContext,
    AdminPath(p): AdminPath<WebhookPath>,
    RawQuery(raw): RawQuery,
) -> Result<Json<AttemptPage>, AdminError> {
    let (org, id) = ids(&state, &p).await?;
    let mut limit = DEFAULT_LIMIT;
    let mut before = None;
    let mut seen: Vec<String> = Vec::new();
    for (key, value) in query_pairs(raw.as_deref())? {
        if seen.contains(&key) {
            return Err(bad(format!("query parameter '{key}' given twice")));
        }
        seen.push(key.clone());
        match key.as_str() {
            "limit" => limit = parse_limit(&value)?,
            "cursor" => {
                before = Some(
                    decode_attempt_cursor(&value)
                        .ok_or_else(|| bad("'cursor' is not a cursor this list returned"))?,
                )
            }
            other => return Err(bad(format!("unknown query parameter '{other}'"))),
        }
    }
    if state.store.get_webhook(org, id).await?.is_none() {
        return Err(not_found());
    }
    let (rows, more) = state.store.list_webhook_attempts(id, before, limit).await?;
    let next_cursor = match (more, rows.last()) {
        (true, Some(last)) => Some(encode_attempt_cursor(last.id)),
        _ => None,
    };
    Ok(Json(AttemptPage {
        attempts: rows.iter().map(AttemptView::from).collect(),
        next_cursor,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_kept_as_the_feed_filters_them() {
        assert_eq!(
            check_types(&["user.*".into(), "group.created".into(), "user.*".into()]).unwrap(),
            r#"["user.","group.created"]"#
        );
        assert_eq!(check_types(&[]).unwrap(), "[]");
        assert!(check_types(&["nope".into()]).is_err());
    }

    #[test]
    fn attempt_cursors_round_trip() {
        assert_eq!(decode_attempt_cursor(&encode_attempt_cursor(42)), Some(42));
        assert_eq!(decode_attempt_cursor("42"), None);
        assert_eq!(decode_attempt_cursor(&encode_attempt_cursor(0)), None);
    }
}
