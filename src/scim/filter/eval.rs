//! Filters evaluated in memory, against one JSON value (PATCH value
//! filters). Lists are filtered in SQL instead (`store::query`).

use serde_json::Value;

use super::{CompValue, CompareOp, Filter};
use crate::scim::json::{as_list, get_ci};
use crate::scim::path::AttrPath;

/// Evaluate a filter against one JSON object (a resource, or one element of
/// a multi-valued complex attribute for a relative filter).
///
/// * keys are looked up case-insensitively; a URN-qualified path looks
///   inside the object under that URN key when there is one (extension
///   attributes), else at the top level (core attributes);
/// * a multi-valued attribute matches if any of its values matches; a
///   complex value compared without a sub-attribute uses its `value`;
/// * strings compare case-insensitively unless `case_exact(path)`; inside
///   `attr[…]` the callback gets `attr.sub` so callers see full paths;
/// * `gt`/`ge`/`lt`/`le` order strings lexicographically (fine for RFC 3339
///   dateTimes) and numbers numerically; booleans support only `eq`/`ne`,
///   and match the strings `"true"`/`"false"` in any case as well;
/// * `pr` means present and not null, `[]`, `{}` or `""`; `eq null` means
///   "not present" and `ne null` "present"; `ne x` is `not (eq x)`.
pub fn matches(filter: &Filter, value: &Value, case_exact: &dyn Fn(&AttrPath) -> bool) -> bool {
    match filter {
        Filter::And(l, r) => matches(l, value, case_exact) && matches(r, value, case_exact),
        Filter::Or(l, r) => matches(l, value, case_exact) || matches(r, value, case_exact),
        Filter::Not(inner) => !matches(inner, value, case_exact),
        Filter::Present(path) => raw_values(value, path).into_iter().any(is_non_empty),
        Filter::ValuePath { path, filter } => {
            let base = AttrPath {
                urn: path.urn.clone(),
                attr: path.attr.clone(),
                sub_attr: None,
            };
            let nested = |p: &AttrPath| {
                case_exact(&AttrPath {
                    urn: path.urn.clone(),
                    attr: path.attr.clone(),
                    sub_attr: Some(p.attr.clone()),
                })
            };
            raw_values(value, &base)
                .into_iter()
                .any(|elem| elem.is_object() && matches(filter, elem, &nested))
        }
        Filter::Compare {
            path,
            op,
            value: lit,
        } => {
            let exact = case_exact(path);
            let candidates: Vec<&Value> = raw_values(value, path)
                .into_iter()
                .filter_map(|v| match v {
                    // `emails eq "x"` means `emails.value eq "x"`.
                    Value::Object(o) if path.sub_attr.is_none() => get_ci(o, "value"),
                    v => Some(v),
                })
                .collect();
            match (op, lit) {
                (CompareOp::Eq, CompValue::Null) => !candidates.into_iter().any(is_non_empty),
                (CompareOp::Ne, CompValue::Null) => candidates.into_iter().any(is_non_empty),
                (_, CompValue::Null) => false,
                (CompareOp::Ne, lit) => !candidates
                    .into_iter()
                    .any(|c| compare(c, CompareOp::Eq, lit, exact)),
                (op, lit) => candidates.into_iter().any(|c| compare(c, *op, lit, exact)),
            }
        }
    }
}

fn is_non_empty(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => a.iter().any(is_non_empty),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

/// All values `path` denotes in `root`, arrays flattened one level.
fn raw_values<'v>(root: &'v Value, path: &AttrPath) -> Vec<&'v Value> {
    let Value::Object(obj) = root else {
        return Vec::new();
    };
    let base = match &path.urn {
        Some(urn) => match get_ci(obj, urn) {
            Some(Value::Object(ext)) => ext,
            _ => obj,
        },
        None => obj,
    };
    let Some(top) = get_ci(base, &path.attr) else {
        return Vec::new();
    };
    let tops = as_list(top);
    match &path.sub_attr {
        None => tops,
        Some(sub) => tops
            .into_iter()
            .filter_map(|v| v.as_object().and_then(|o| get_ci(o, sub)))
            .flat_map(as_list)
            .collect(),
    }
}

fn compare(candidate: &Value, op: CompareOp, lit: &CompValue, exact: bool) -> bool {
    use std::cmp::Ordering;
    let ordering_ok = |o: Ordering| match op {
        CompareOp::Eq => o == Ordering::Equal,
        CompareOp::Ne => o != Ordering::Equal,
        CompareOp::Gt => o == Ordering::Greater,
        CompareOp::Ge => o != Ordering::Less,
        CompareOp::Lt => o == Ordering::Less,
        CompareOp::Le => o != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    };
    match (candidate, lit) {
        (Value::String(c), CompValue::Str(l)) => {
            let (c, l) = if exact {
                (c.clone(), l.clone())
            } else {
                (c.to_lowercase(), l.to_lowercase())
            };
            match op {
                CompareOp::Co => c.contains(&l),
                CompareOp::Sw => c.starts_with(&l),
                CompareOp::Ew => c.ends_with(&l),
                _ => ordering_ok(c.cmp(&l)),
            }
        }
        (Value::Number(c), CompValue::Num(l)) => compare_numbers(c, l).is_some_and(ordering_ok),
        // A string literal counts as a boolean only against a boolean
        // value: Entra's `primary eq "True"`.
        (Value::Bool(c), lit) => match (op, lit.as_bool()) {
            (CompareOp::Eq, Some(l)) => *c == l,
            (CompareOp::Ne, Some(l)) => *c != l,
            _ => false,
        },
        _ => false,
    }
}

/// Integers compare exactly; anything involving a float goes through f64.
fn compare_numbers(a: &serde_json::Number, b: &serde_json::Number) -> Option<std::cmp::Ordering> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return Some(x.cmp(&y));
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return Some(x.cmp(&y));
    }
    if a.is_i64() && b.is_u64() {
        // a is negative (else as_u64 would have succeeded), b non-negative.
        return Some(std::cmp::Ordering::Less);
    }
    if a.is_u64() && b.is_i64() {
        return Some(std::cmp::Ordering::Greater);
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}
