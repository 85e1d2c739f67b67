//! A PatchOp body → [`PatchRequest`]: the operations as the client wrote
//! them, checked for everything that needs no resource.

use serde_json::Value;

use super::{PatchOpKind, PatchOperation, PatchRequest, PATCH_OP_SCHEMA};
use crate::scim::error::ScimError;
use crate::scim::json::get_ci;
use crate::scim::path::parse_patch_path;

/// Parse a PatchOp body. Lenient where identity providers differ
/// (`Operations`/`op`/`path`/`value` keys and op names in any case, a
/// missing `schemas`, an empty `path` meaning none), strict about
/// everything that changes meaning.
pub fn parse_patch(body: &Value) -> Result<PatchRequest, ScimError> {
    let Value::Object(obj) = body else {
        return Err(ScimError::invalid_syntax(
            "PATCH body must be a JSON object",
        ));
    };
    if let Some(schemas) = get_ci(obj, "schemas") {
        let is_patch = |v: &Value| {
            v.as_str()
                .is_some_and(|s| s.eq_ignore_ascii_case(PATCH_OP_SCHEMA))
        };
        let ok = match schemas {
            Value::Array(a) => a.iter().any(is_patch),
            v => is_patch(v),
        };
        if !ok {
            return Err(ScimError::invalid_syntax(format!(
                "schemas must contain \"{PATCH_OP_SCHEMA}\""
            )));
        }
    }
    let ops = match get_ci(obj, "Operations") {
        None => {
            return Err(ScimError::invalid_syntax(
                "PATCH body has no \"Operations\" member",
            ))
        }
        Some(Value::Array(ops)) => ops,
        Some(_) => return Err(ScimError::invalid_syntax("\"Operations\" must be an array")),
    };
    if ops.is_empty() {
        return Err(ScimError::invalid_syntax(
            "\"Operations\" must contain at least one operation",
        ));
    }
    let operations = ops
        .iter()
        .enumerate()
        .map(|(i, op)| parse_operation(op).map_err(|e| in_operation(i, e)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PatchRequest { operations })
}

pub(super) fn in_operation(index: usize, e: ScimError) -> ScimError {
    ScimError {
        detail: format!("Operations[{index}]: {}", e.detail),
        ..e
    }
}

fn parse_operation(v: &Value) -> Result<PatchOperation, ScimError> {
    let Value::Object(obj) = v else {
        return Err(ScimError::invalid_syntax("operation must be a JSON object"));
    };
    let op = match get_ci(obj, "op") {
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "add" => PatchOpKind::Add,
            "replace" => PatchOpKind::Replace,
            "remove" => PatchOpKind::Remove,
            _ => {
                return Err(ScimError::invalid_syntax(format!(
                    "unknown op \"{s}\": expected add, replace or remove"
                )))
            }
        },
        Some(_) => return Err(ScimError::invalid_syntax("\"op\" must be a string")),
        None => return Err(ScimError::invalid_syntax("operation has no \"op\"")),
    };
    let path = match get_ci(obj, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(parse_patch_path(s)?),
        Some(_) => return Err(ScimError::invalid_path("\"path\" must be a string")),
    };
    let value = get_ci(obj, "value").cloned();
    let op = PatchOperation { op, path, value };
    check_operation_shape(&op)?;
    Ok(op)
}

/// Checks that need no resource: `remove` needs a path (RFC 7644
/// §3.5.2.2 says `noTarget`), `add`/`replace` need a value.
pub(super) fn check_operation_shape(op: &PatchOperation) -> Result<(), ScimError> {
    match op.op {
        PatchOpKind::Remove if op.path.is_none() => {
            Err(ScimError::no_target("remove requires a \"path\""))
        }
        PatchOpKind::Add | PatchOpKind::Replace if op.value.is_none() => Err(
            ScimError::invalid_value(format!("{} requires a \"value\"", op.op)),
        ),
        _ => Ok(()),
    }
}
