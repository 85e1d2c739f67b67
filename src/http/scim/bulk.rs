//! `POST /Bulk` (RFC 7644 §3.7): many writes in one request, each applied
//! on its own (Bulk is not a transaction), with `bulkId` references so a
//! group can be created with members created earlier in the same request.
//! [`crate::scim::bulk`] parses the request and orders its operations;
//! this runs them against the store and answers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{groups, resource_id, scim_response, users};
use crate::audit::{attempted, Target, TargetType};
use crate::http::audit::record_failure;
use crate::http::error::ScimApiError;
use crate::http::extract::{etag, parse_etag, ScimContext, ScimJson};
use crate::http::AppState;
use crate::scim::bulk::{parse_request, route, Kind, Operation, Schedule, Step, BULK_RESPONSE};
use crate::scim::ScimError;
use crate::telemetry::ErrorChain;

/// What one successful operation produced: the resource id and version.
struct Done {
    id: Uuid,
    version: Option<i64>,
    status: u16,
    kind: Kind,
}

async fn execute(
    state: &AppState,
    ctx: &ScimContext,
    op: &Operation,
    path: &str,
    data: &Value,
) -> Result<Done, ScimApiError> {
    let (kind, id) = route(path)?;
    let not_allowed = || {
        ScimApiError::from(ScimError::method_not_allowed(format!(
            "{} is not supported on '{path}'",
            op.method
        )))
    };
    match (op.method.as_str(), id) {
        ("POST", None) => {
            let (id, version) = match kind {
                Kind::Users => {
                    let row = users::create_row(state, ctx, data).await?;
                    (row.id, row.version)
                }
                Kind::Groups => {
                    let row = groups::create_row(state, ctx, data).await?;
                    (row.id, row.version)
                }
            };
            Ok(Done {
                id,
                version: Some(version),
                status: 201,
                kind,
            })
        }
        ("PUT" | "PATCH" | "DELETE", Some(raw)) => {
            let id = resource_id(raw)?;
            let v = op.version.as_deref().map(|v| parse_etag(v).unwrap_or(-1));
            let version = match (op.method.as_str(), kind) {
                ("PUT", Kind::Users) => Some(
                    users::replace_row(state, ctx, id, data, v, false)
                        .await?
                        .0
                        .version,
                ),
                ("PUT", Kind::Groups) => {
                    Some(groups::replace_row(state, ctx, id, data, v).await?.version)
                }
                ("PATCH", Kind::Users) => Some(
                    users::patch_row(state, ctx, id, data, v, false)
                        .await?
                        .0
                        .version,
                ),
                ("PATCH", Kind::Groups) => {
                    Some(groups::patch_row(state, ctx, id, data, v).await?.version)
                }
                (_, Kind::Users) => {
                    users::delete_row(state, ctx, id, v).await?;
                    None
                }
                (_, Kind::Groups) => {
                    groups::delete_row(state, ctx, id, v).await?;
                    None
                }
            };
            let status = if version.is_some() { 200 } else { 204 };
            Ok(Done {
                id,
                version,
                status,
                kind,
            })
        }
        _ => Err(not_allowed()),
    }
}

pub async fn bulk(
    State(state): State<AppState>,
    ctx: ScimContext,
    ScimJson(body): ScimJson,
) -> Result<Response, ScimApiError> {
    let (ops, fail_on_errors) = parse_request(&body, state.settings.bulk_max_operations)?;
    let mut results: Vec<Option<Value>> = vec![None; ops.len()];
    let mut schedule = Schedule::new(&ops);
    let mut errors = 0usize;

    while let Some((i, step)) = schedule.next() {
        let op = &ops[i];
        let (path, data, outcome) = match step {
            Step::Run { path, data } => {
                let outcome = execute(&state, &ctx, op, &path, &data).await;
                (path, data, outcome)
            }
            Step::Unresolved { path, data, error } => (path, data, Err(error.into())),
            Step::Circular(err) => {
                record_operation_failure(&state, &ctx, op, &op.path, &op.data, &err).await;
                let mut r = json!({
                    "method": op.method,
                    "status": "409",
                    "response": err.to_json(),
                });
                if let Some(b) = &op.bulk_id {
                    r["bulkId"] = Value::String(b.clone());
                }
                results[i] = Some(r);
                continue;
            }
        };
        results[i] = Some(match outcome {
            Ok(done) => {
                schedule.succeeded(i, &done.id.to_string());
                let endpoint = if done.kind == Kind::Users {
                    "Users"
                } else {
                    "Groups"
                };
                let mut r = json!({
                    "method": op.method,
                    "location": format!("{}/{endpoint}/{}", ctx.base_url, done.id),
                    "status": done.status.to_string(),
                });
                if let Some(b) = &op.bulk_id {
                    r["bulkId"] = Value::String(b.clone());
                }
                if let Some(v) = done.version {
                    r["version"] = Value::String(etag(v));
                }
                r
            }
            Err(e) => {
                errors += 1;
                schedule.failed(i);
                let scim = e.to_scim();
                if let ScimApiError::Internal(_) | ScimApiError::Unavailable(_) = &e {
                    tracing::error!(error = %ErrorChain(&e), "bulk operation failed");
                }
                record_operation_failure(&state, &ctx, op, &path, &data, &scim).await;
                let mut r = json!({
                    "method": op.method,
                    "status": scim.status.to_string(),
                    "response": scim.to_json(),
                });
                if let Some(b) = &op.bulk_id {
                    r["bulkId"] = Value::String(b.clone());
                }
                r
            }
        });
        if fail_on_errors.is_some_and(|limit| errors >= limit) {
            break;
        }
    }
    // Operations not processed (after failOnErrors was reached) are left out,
    // as RFC 7644 §3.7.3 says.
    let body = json!({
        "schemas": [BULK_RESPONSE],
        "Operations": results.into_iter().flatten().collect::<Vec<_>>(),
    });
    Ok(scim_response(StatusCode::OK, &body, None, None))
}

/// Records a failed operation as the audit event the same request outside
/// Bulk would have produced. Operations on unknown endpoints or with
/// methods that write nothing are not writes, and are not recorded.
async fn record_operation_failure(
    state: &AppState,
    ctx: &ScimContext,
    op: &Operation,
    path: &str,
    data: &Value,
    error: &ScimError,
) {
    let Ok((kind, id)) = route(path) else {
        return;
    };
    let kind = match kind {
        Kind::Users => TargetType::User,
        Kind::Groups => TargetType::Group,
    };
    if id.is_some() == (op.method == "POST") {
        return;
    }
    let Some(action) = attempted(kind, &op.method) else {
        return;
    };
    let target = match id {
        None => Target::from_body(kind, None, data),
        Some(raw) => Target::new(kind, Uuid::parse_str(raw).ok()),
    };
    record_failure(state, &ctx.audit, action, target, error).await;
}
