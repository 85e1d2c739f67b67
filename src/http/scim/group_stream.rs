//! `GET /Groups/{id}` for groups of any size: the group is written first,
//! then its members in keyset batches, straight to the connection. Memory
//! stays bounded by a few batches however many members the group has.

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

use super::groups::render;
use crate::http::error::SCIM_CONTENT_TYPE;
use crate::http::extract::{etag, ScimContext};
use crate::http::AppState;
use crate::store::{GroupRow, MemberRow};

/// A member as `members` lists it (the same shape `groups::member_json`
/// builds), serialised straight into the chunk without a `Value` per member.
#[derive(serde::Serialize)]
struct MemberOut<'a> {
    value: String,
    #[serde(rename = "$ref")]
    reference: String,
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    display: Option<&'a str>,
}

fn write_member(out: &mut Vec<u8>, base_url: &str, m: &MemberRow) {
    let endpoint = if m.member_type == "Group" {
        "Groups"
    } else {
        "Users"
    };
    let member = MemberOut {
        value: m.member_id.to_string(),
        reference: format!("{base_url}/{endpoint}/{}", m.member_id),
        kind: &m.member_type,
        display: m.display.as_deref(),
    };
    // Writing plain strings into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, &member);
}

/// Members per database round trip and per chunk written.
const BATCH: i64 = 5_000;

/// Chunks buffered between the database and the socket.
const IN_FLIGHT: usize = 4;

pub(super) fn stream_group(state: AppState, ctx: ScimContext, row: GroupRow) -> Response {
    let version = row.version;
    // The group without members, its closing brace replaced by the array.
    let mut head = render(&ctx, &row, None).to_string();
    head.pop();
    head.push_str(if head.ends_with('{') {
        "\"members\":["
    } else {
        ",\"members\":["
    });
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(IN_FLIGHT);
    tokio::spawn(async move {
        if tx.send(Ok(Bytes::from(head))).await.is_err() {
            return;
        }
        let mut after = None;
        let mut first = true;
        loop {
            let batch = match state.store.members_after(row.id, after, BATCH).await {
                Ok(b) => b,
                Err(e) => {
                    // Headers are gone already: end the body abnormally so
                    // the client sees a failed response, not a short group.
                    tracing::error!(error = %e, group = %row.id, "streaming members failed");
                    let _ = tx
                        .send(Err(std::io::Error::other("member stream failed")))
                        .await;
                    return;
                }
            };
            let mut chunk: Vec<u8> = Vec::with_capacity(batch.len() * 200);
            for m in &batch {
                if !first {
                    chunk.push(b',');
                }
                first = false;
                write_member(&mut chunk, &ctx.base_url, m);
            }
            let full = batch.len() as i64 == BATCH;
            after = batch.last().map(|m| m.member_id);
            if !chunk.is_empty() && tx.send(Ok(Bytes::from(chunk))).await.is_err() {
                return;
            }
            if !full {
                break;
            }
        }
        let _ = tx.send(Ok(Bytes::from_static(b"]}"))).await;
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let mut resp = (StatusCode::OK, Body::from_stream(stream)).into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(SCIM_CONTENT_TYPE),
    );
    if let Ok(v) = HeaderValue::from_str(&etag(version)) {
        headers.insert(header::ETAG, v);
    }
    resp
}
