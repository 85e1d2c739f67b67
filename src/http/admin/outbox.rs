//! `/admin/v1/orgs/{orgId}/outbox`: the organisation's queued email —
//! list it newest first, read one message, and send a `failed` or
//! `uncertain` one again.

use axum::extract::{RawQuery, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::accounts::{decode_cursor, encode_cursor, parse_limit, DEFAULT_LIMIT};
use super::{org_id, query_pairs, time, OrgPath};
use crate::http::error::{AdminError, AdminErrorBody};
use crate::http::extract::{AdminContext, AdminPath};
use crate::http::AppState;
use crate::mail::OutboxState;
use crate::store::{OutboxQuery, OutboxRow, RetryRefused};

/// A queued message and where its delivery is.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutboxMessage {
    id: Uuid,
    org_id: Uuid,
    /// The directory whose sync queued it, while it exists.
    directory_id: Option<Uuid>,
    /// The account it is about, while it exists.
    account_id: Option<Uuid>,
    /// What kind of message it is: `welcome`.
    kind: String,
    recipient: String,
    subject: String,
    /// Plain text.
    body: String,
    /// `pending` (waiting for `nextAttemptAt`), `sending`, `sent`,
    /// `failed` (refused for good, or every attempt used) or `uncertain`
    /// (its sender stopped mid-send, so it may or may not have arrived).
    /// `failed` and `uncertain` messages are sent again only by `retry`.
    #[schema(pattern = "^(pending|sending|sent|failed|uncertain)$")]
    state: String,
    /// Attempts made since it was queued or last retried.
    attempts: i64,
    /// When a `pending` message is next tried; null in other states.
    #[schema(format = DateTime)]
    next_attempt_at: Option<String>,
    /// Why the last attempt did not send it; null once sent.
    last_error: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
    /// When the SMTP server accepted it.
    #[schema(format = DateTime)]
    sent_at: Option<String>,
}

impl From<&OutboxRow> for OutboxMessage {
    fn from(m: &OutboxRow) -> Self {
        OutboxMessage {
            id: m.id,
            org_id: m.org_id,
            directory_id: m.directory_id,
            account_id: m.account_id,
            kind: m.kind.clone(),
            recipient: m.recipient.clone(),
            subject: m.subject.clone(),
            body: m.body.clone(),
            state: m.state.clone(),
            attempts: m.attempts,
            next_attempt_at: (m.state == OutboxState::Pending.as_str())
                .then(|| time(m.next_attempt_at)),
            last_error: m.last_error.clone(),
            created_at: time(m.created_at),
            updated_at: time(m.updated_at),
            sent_at: m.sent_at.map(time),
        }
    }
}

/// A page of messages, newest first.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutboxList {
    messages: Vec<OutboxMessage>,
    /// Pass as `cursor` for the next (older) page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// `{orgId}` and `{messageId}`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[serde(rename_all = "camelCase")]
pub struct MessagePath {
    /// An organisation's id, or `default`.
    #[param(schema_with = super::org_id_schema)]
    pub org_id: String,
    /// A message's id. One that is not a UUID names no message: 404.
    #[param(value_type = Uuid)]
    pub message_id: String,
}

/// The list's query string (read by `parse_query`, which gives each bad
/// value its own message; this describes it for the document).
#[derive(IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[expect(
    dead_code,
    reason = "describes the query string for the OpenAPI document"
)]
pub struct OutboxQueryDoc {
    /// Only messages in this state.
    #[param(pattern = "^(pending|sending|sent|failed|uncertain)$")]
    state: Option<String>,
    /// 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// `nextCursor` of the previous page (its creation time in
    /// microseconds and its id: only a cursor this list returned is one).
    #[param(pattern = r"^-?[0-9]{1,18}\.[0-9a-f]{32}$")]
    cursor: Option<String>,
}

fn bad(message: impl Into<String>) -> AdminError {
    AdminError::BadRequest(message.into())
}

fn parse_query(org: Uuid, raw: Option<&str>) -> Result<OutboxQuery, AdminError> {
    let mut q = OutboxQuery {
        org_id: org,
        state: None,
        before: None,
        limit: DEFAULT_LIMIT,
    };
    for (key, value) in query_pairs(raw)? {
        match key.as_str() {
            "state" => {
                q.state = Some(OutboxState::parse(value.trim()).ok_or_else(|| {
                    bad("'state' must be pending, sending, sent, failed or uncertain")
                })?)
            }
            "limit" => q.limit = parse_limit(&value)?,
            "cursor" => q.before = Some(decode_cursor(&value)?),
            other => return Err(bad(format!("unknown query parameter '{other}'"))),
        }
    }
    Ok(q)
}

async fn resolve(state: &AppState, p: &MessagePath) -> Result<(Uuid, Uuid), AdminError> {
    let org = org_id(state, &p.org_id).await?;
    let id =
        Uuid::parse_str(&p.message_id).map_err(|_| AdminError::NotFound("message not found"))?;
    Ok((org, id))
}

/// Lists an organisation's queued, sent and undeliverable email, newest
/// first, in pages.
#[utoipa::path(
    get,
    path = "/admin/v1/orgs/{orgId}/outbox",
    tag = "outbox",
    operation_id = "listOutbox",
    params(OrgPath, OutboxQueryDoc),
    responses(
        (status = 200, description = "A page of messages", body = OutboxList),
        (status = 404, description = "No such organisation", body = AdminErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminContext,
    AdminPath(p): AdminPath<OrgPath>,
    RawQuery(raw): RawQuery,
) -> Result<Json<OutboxList>, AdminError> {
    let org = org_id(&state, &p.org_id).await?;
    let q = parse_query(org, raw.as_deref())?;
    let (rows, more) = state.store.list_outbox(&q).await?;
    let next_cursor = match (more, rows.last()) {
        (true, Some(last)) => Some(encode_cursor(last.created_at, last.id)),
        _ => None,
    };
    Ok(Json(OutboxList {
        messages: rows.iter().map(OutboxMessage::from).collect(),
        next_cursor,
    }))
}

/// Reads one message.
#[utoipa::path(
    get,
    path = "/admin/v1/orgs/{orgId}/outbox/{messageId}",
    tag = "outbox",
    operation_id = "getOutboxMessage",
    params(MessagePath),
    responses(
        (status = 200, description = "The message", body = OutboxMessage),
        (status = 404, description = "No such organisation, or no such message in it", body = AdminErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    _admin: AdminContext,
    AdminPath(p): AdminPath<MessagePath>,
) -> Result<Json<OutboxMessage>, AdminError> {
    let (org, id) = resolve(&state, &p).await?;
    let row = state
        .store
        .get_outbox_message(org, id)
        .await?
        .ok_or(AdminError::NotFound("message not found"))?;
    Ok(Json(OutboxMessage::from(&row)))
}

/// Sends a `failed` or `uncertain` message again: it becomes `pending`,
/// due at once, with its attempts counted from zero. An `uncertain` one
/// may then arrive twice; that is the admin's call. Records
/// `email.retried`.
#[utoipa::path(
    post,
    path = "/admin/v1/orgs/{orgId}/outbox/{messageId}/retry",
    tag = "outbox",
    operation_id = "retryOutboxMessage",
    params(MessagePath),
    responses(
        (status = 200, description = "The message, pending again", body = OutboxMessage),
        (status = 404, description = "No such organisation, or no such message in it", body = AdminErrorBody),
        (status = 409, description = "The message is pending, being sent or sent", body = AdminErrorBody),
    )
)]
pub async fn retry(
    State(state): State<AppState>,
    admin: AdminContext,
    AdminPath(p): AdminPath<MessagePath>,
) -> Result<Json<OutboxMessage>, AdminError> {
    let (org, id) = resolve(&state, &p).await?;
    match state
        .store
        .retry_outbox_message(org, id, &admin.audit)
        .await?
    {
        Ok(row) => Ok(Json(OutboxMessage::from(&row))),
        Err(RetryRefused::NotFound) => Err(AdminError::NotFound("message not found")),
        Err(RetryRefused::State(s)) => Err(AdminError::Conflict(format!(
            "the message is {s}; only a failed or uncertain message can be retried"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_checked_one_by_one() {
        let org = Uuid::nil();
        let q = parse_query(org, Some("state=failed&limit=5")).unwrap();
        assert_eq!((q.state, q.limit), (Some(OutboxState::Failed), 5));
        assert_eq!(parse_query(org, None).unwrap().limit, DEFAULT_LIMIT);
        for bad in [
            "state=lost",
            "limit=0",
            "limit=1001",
            "cursor=nope",
            "colour=red",
        ] {
            assert!(
                matches!(parse_query(org, Some(bad)), Err(AdminError::BadRequest(_))),
                "{bad}"
            );
        }
    }
}
