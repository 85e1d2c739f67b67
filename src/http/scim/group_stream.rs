//! `GET /Groups/{id}` for groups of any size: the group is written first,
//! then its members in keyset batches, straight to the connection. Memory
//! stays bounded by a few batches however many members the group has.

use crate::telemetry::ErrorChain;
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

use super::groups::render;
use crate::http::error::SCIM_CONTENT_TYPE;
use crate::http::extract::{etag, ScimContext};
use crate::http::AppState;
use crate::store::{GroupRow, MemberRow};

/// Writes members as `members` lists them (the shape `groups::member_json`
/// builds) straight into a chunk. This runs once per member of groups with
/// hundreds of thousands of them, so it appends bytes instead of building a
/// `Value` or formatting a `$ref` string per member.
struct MemberWriter {
    /// `{base_url}/Users/` and `{base_url}/Groups/`, JSON-escaped, unquoted.
    users_ref: String,
    groups_ref: String,
}

impl MemberWriter {
    fn new(base_url: &str) -> Self {
        let escaped = |endpoint: &str| {
            let quoted = serde_json::Value::String(format!("{base_url}/{endpoint}/")).to_string();
            quoted[1..quoted.len() - 1].to_owned()
        };
        MemberWriter {
            users_ref: escaped("Users"),
            groups_ref: escaped("Groups"),
        }
    }

    fn write(&self, out: &mut Vec<u8>, m: &MemberRow) {
        let (kind, reference) = if m.member_type == "Group" {
            ("Group", &self.groups_ref)
        } else {
            ("User", &self.users_ref)
        };
        let mut buf = uuid::Uuid::encode_buffer();
        let id = m.member_id.hyphenated().encode_lower(&mut buf).as_bytes();
        out.extend_from_slice(b"{\"value\":\"");
        out.extend_from_slice(id);
        out.extend_from_slice(b"\",\"$ref\":\"");
        out.extend_from_slice(reference.as_bytes());
        out.extend_from_slice(id);
        out.extend_from_slice(b"\",\"type\":\"");
        out.extend_from_slice(kind.as_bytes());
        out.push(b'"');
        if let Some(display) = &m.display {
            out.extend_from_slice(b",\"display\":");
            // Writing a string into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, display);
        }
        out.push(b'}');
    }
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
    let writer = MemberWriter::new(&ctx.base_url);
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
                    tracing::error!(error = %ErrorChain(&e), group = %row.id, "streaming members failed");
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
                writer.write(&mut chunk, m);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::scim::groups::member_json;
    use uuid::Uuid;

    fn member(member_type: &str, display: Option<&str>) -> MemberRow {
        MemberRow {
            group_id: Uuid::new_v4(),
            member_id: Uuid::new_v4(),
            member_type: member_type.to_owned(),
            display: display.map(str::to_owned),
        }
    }

    #[test]
    fn streamed_members_match_the_members_of_a_rendered_group() {
        let base_url = "http://127.0.0.1:8080/scim/directory/a\"b";
        let writer = MemberWriter::new(base_url);
        for m in [
            member("User", Some("Ada \"the\" Countess \\ of Lovelace\u{1}")),
            member("User", None),
            member("Group", Some("Engineering")),
        ] {
            let mut out = Vec::new();
            writer.write(&mut out, &m);
            let streamed: serde_json::Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(streamed, member_json(base_url, &m));
        }
    }
}
