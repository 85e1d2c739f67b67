//! `POST /Bulk` (RFC 7644 §3.7): many writes in one request, each applied
//! on its own (Bulk is not a transaction), with `bulkId` references so a
//! group can be created with members created earlier in the same request.

use std::collections::{HashMap, HashSet};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::{groups, resource_id, scim_response, users};
use crate::audit::{attempted, Target, TargetType};
use crate::http::audit::record_failure;
use crate::http::error::ScimApiError;
use crate::http::extract::{etag, parse_etag, ScimContext, ScimJson};
use crate::http::AppState;
use crate::scim::ScimError;

const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
const BULK_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";
const BULK_ID_PREFIX: &str = "bulkId:";

/// One operation as the client sent it.
struct Operation {
    method: String,
    path: String,
    bulk_id: Option<String>,
    version: Option<i64>,
    data: Value,
    /// `bulkId`s this operation refers to (in its path or data).
    needs: HashSet<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Users,
    Groups,
}

fn get_ci<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// Collects every `bulkId:x` reference in a JSON value.
fn references(value: &Value, out: &mut HashSet<String>) {
    match value {
        Value::String(s) => {
            if let Some(id) = s.strip_prefix(BULK_ID_PREFIX) {
                out.insert(id.to_owned());
            }
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, out)),
        Value::Object(map) => map.values().for_each(|v| references(v, out)),
        _ => {}
    }
}

/// Replaces `bulkId:x` references with the ids they were resolved to.
fn substitute(value: &mut Value, resolved: &HashMap<String, Uuid>) {
    match value {
        Value::String(s) => {
            if let Some(id) = s.strip_prefix(BULK_ID_PREFIX).and_then(|b| resolved.get(b)) {
                *s = id.to_string();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| substitute(v, resolved)),
        Value::Object(map) => map.values_mut().for_each(|v| substitute(v, resolved)),
        _ => {}
    }
}

fn parse_request(
    body: &Value,
    max_operations: usize,
) -> Result<(Vec<Operation>, Option<usize>), ScimError> {
    let obj = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("a BulkRequest must be a JSON object"))?;
    if let Some(schemas) = get_ci(obj, "schemas") {
        let ok = schemas.as_array().is_some_and(|a| {
            a.iter().any(|s| {
                s.as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case(BULK_REQUEST))
            })
        });
        if !ok {
            return Err(ScimError::invalid_value(format!(
                "'schemas' must contain {BULK_REQUEST}"
            )));
        }
    }
    let fail_on_errors = match get_ci(obj, "failOnErrors") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 => Some(n as usize),
            _ => {
                return Err(ScimError::invalid_value(
                    "'failOnErrors' must be a positive integer",
                ))
            }
        },
    };
    let ops = get_ci(obj, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| ScimError::invalid_syntax("a BulkRequest needs an 'Operations' array"))?;
    if ops.len() > max_operations {
        return Err(ScimError::new(
            413,
            None,
            format!(
                "the request has {} operations; at most {max_operations} are accepted",
                ops.len()
            ),
        ));
    }
    let mut parsed = Vec::with_capacity(ops.len());
    let mut seen_bulk_ids = HashSet::new();
    for (i, op) in ops.iter().enumerate() {
        let o = op.as_object().ok_or_else(|| {
            ScimError::invalid_syntax(format!("Operations[{i}] must be an object"))
        })?;
        let text = |name: &str| get_ci(o, name).and_then(Value::as_str).map(str::to_owned);
        let method = text("method")
            .ok_or_else(|| ScimError::invalid_syntax(format!("Operations[{i}] needs a 'method'")))?
            .to_ascii_uppercase();
        let path = text("path")
            .ok_or_else(|| ScimError::invalid_syntax(format!("Operations[{i}] needs a 'path'")))?;
        let bulk_id = text("bulkId");
        if method == "POST" && bulk_id.is_none() {
            return Err(ScimError::invalid_syntax(format!(
                "Operations[{i}]: POST needs a 'bulkId'"
            )));
        }
        if let Some(b) = &bulk_id {
            if !seen_bulk_ids.insert(b.clone()) {
                return Err(ScimError::invalid_value(format!(
                    "Operations[{i}]: bulkId '{b}' is used twice"
                )));
            }
        }
        let version = text("version").map(|v| parse_etag(&v).unwrap_or(-1));
        let data = get_ci(o, "data").cloned().unwrap_or(Value::Null);
        let mut needs = HashSet::new();
        references(&data, &mut needs);
        references(&Value::String(path.clone()), &mut needs);
        if let Some(rest) = path.split('/').next_back() {
            references(&Value::String(rest.to_owned()), &mut needs);
        }
        parsed.push(Operation {
            method,
            path,
            bulk_id,
            version,
            data,
            needs,
        });
    }
    Ok((parsed, fail_on_errors))
}

/// `/Users`, `/Users/{id}`, `/Groups`, `/Groups/{id}`.
fn route(path: &str) -> Result<(Kind, Option<&str>), ScimError> {
    let trimmed = path.trim().trim_start_matches('/');
    let (head, id) = match trimmed.split_once('/') {
        Some((h, id)) => (h, Some(id)),
        None => (trimmed, None),
    };
    let kind = if head.eq_ignore_ascii_case("Users") {
        Kind::Users
    } else if head.eq_ignore_ascii_case("Groups") {
        Kind::Groups
    } else {
        return Err(ScimError::not_found(format!("no such endpoint '{path}'")));
    };
    Ok((kind, id.filter(|s| !s.is_empty())))
}

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
        ScimApiError::from(ScimError::new(
            405,
            None,
            format!("{} is not supported on '{path}'", op.method),
        ))
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
            let v = op.version;
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
    let defined: HashSet<&str> = ops.iter().filter_map(|o| o.bulk_id.as_deref()).collect();
    let mut results: Vec<Option<Value>> = vec![None; ops.len()];
    let mut resolved: HashMap<String, Uuid> = HashMap::new();
    let mut failed_bulk_ids: HashSet<String> = HashSet::new();
    let mut pending: Vec<usize> = (0..ops.len()).collect();
    let mut errors = 0usize;
    let mut stopped = false;

    // Operations run in request order; one that refers to a bulkId created
    // later waits for it, so passes repeat until nothing more can run.
    while !pending.is_empty() && !stopped {
        let mut progressed = false;
        let mut still_pending = Vec::new();
        for &i in &pending {
            let op = &ops[i];
            let unknown = op
                .needs
                .iter()
                .find(|b| !defined.contains(b.as_str()) || failed_bulk_ids.contains(*b))
                .cloned();
            let waiting = op.needs.iter().any(|b| !resolved.contains_key(b));
            if unknown.is_none() && waiting {
                still_pending.push(i);
                continue;
            }
            let mut data = op.data.clone();
            substitute(&mut data, &resolved);
            let mut path = Value::String(op.path.clone());
            substitute(&mut path, &resolved);
            let path = path.as_str().unwrap_or_default().to_owned();
            let path = resolve_path_reference(&path, &resolved);
            let outcome = match unknown {
                Some(b) => Err(ScimApiError::from(ScimError::new(
                    409,
                    Some(crate::scim::ScimType::InvalidValue),
                    format!("bulkId '{b}' is not defined by a successful operation"),
                ))),
                None => execute(&state, &ctx, op, &path, &data).await,
            };
            progressed = true;
            results[i] = Some(match outcome {
                Ok(done) => {
                    if let Some(b) = &op.bulk_id {
                        resolved.insert(b.clone(), done.id);
                    }
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
                    if let Some(b) = &op.bulk_id {
                        failed_bulk_ids.insert(b.clone());
                    }
                    let scim = e.to_scim();
                    if let ScimApiError::Internal(cause) | ScimApiError::Unavailable(cause) = &e {
                        tracing::error!(%cause, "bulk operation failed");
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
                stopped = true;
                break;
            }
        }
        pending = still_pending;
        if !progressed {
            // Every remaining operation waits on another: a cycle.
            for &i in &pending {
                let op = &ops[i];
                let err = ScimError::new(
                    409,
                    Some(crate::scim::ScimType::InvalidValue),
                    "circular bulkId references",
                );
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
            }
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

/// `/Groups/bulkId:x` after substitution is already `/Groups/<id>`; this
/// also accepts the reference as the whole last segment.
fn resolve_path_reference(path: &str, resolved: &HashMap<String, Uuid>) -> String {
    match path.rsplit_once('/') {
        Some((head, last)) => match last
            .strip_prefix(BULK_ID_PREFIX)
            .and_then(|b| resolved.get(b))
        {
            Some(id) => format!("{head}/{id}"),
            None => path.to_owned(),
        },
        None => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_found_and_substituted() {
        let mut data = json!({ "members": [{ "value": "bulkId:u1" }, { "value": "x" }] });
        let mut refs = HashSet::new();
        references(&data, &mut refs);
        assert_eq!(refs, HashSet::from(["u1".to_owned()]));
        let id = Uuid::new_v4();
        substitute(&mut data, &HashMap::from([("u1".to_owned(), id)]));
        assert_eq!(data["members"][0]["value"], id.to_string());
        assert_eq!(data["members"][1]["value"], "x");
    }

    #[test]
    fn routes_and_limits() {
        assert!(matches!(route("/Users"), Ok((Kind::Users, None))));
        assert!(matches!(
            route("/groups/abc"),
            Ok((Kind::Groups, Some("abc")))
        ));
        assert!(route("/Nope").is_err());
        let body = json!({ "Operations": [
            { "method": "DELETE", "path": "/Users/x" },
            { "method": "DELETE", "path": "/Users/y" }
        ]});
        assert_eq!(parse_request(&body, 1).err().map(|e| e.status), Some(413));
        assert!(parse_request(&body, 2).is_ok());
        let no_bulk_id =
            json!({ "Operations": [{ "method": "POST", "path": "/Users", "data": {} }] });
        assert!(parse_request(&no_bulk_id, 10).is_err());
    }
}
