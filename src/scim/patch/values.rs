//! One attribute's values: shaping what the client sent for the value
//! parser, cleaning what it returns, and editing multi-valued lists.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::scim::error::ScimError;
use crate::scim::filter::{CompValue, CompareOp, Filter};
use crate::scim::json::{as_list, get_ci};
use crate::scim::schema::{AttrType, AttributeDef, Mutability};

/// Entra sends a bare id for `manager`: a scalar for a complex attribute
/// with a `value` sub-attribute means that sub-attribute.
pub(super) fn wrap_scalar(def: &AttributeDef, v: Value) -> Value {
    if def.ty == AttrType::Complex && !v.is_object() && !v.is_null() {
        if let Some(value_def) = def.sub("value") {
            let mut obj = Map::new();
            obj.insert(value_def.name.to_string(), v);
            return Value::Object(obj);
        }
    }
    v
}

/// Canonical sub-attribute names; unknown, readOnly and null sub-attributes
/// dropped; empty objects and arrays become "no value".
pub(super) fn clean(def: &AttributeDef, v: Value) -> Option<Value> {
    if def.multi_valued {
        let items = match v {
            Value::Array(a) => a,
            Value::Null => return None,
            v => vec![v],
        };
        let items: Vec<Value> = items
            .into_iter()
            .filter_map(|i| clean_one(def, i))
            .collect();
        return (!items.is_empty()).then_some(Value::Array(items));
    }
    clean_one(def, v)
}

pub(super) fn clean_one(def: &AttributeDef, v: Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::Object(o) if def.ty == AttrType::Complex => {
            let mut out = Map::new();
            for (k, x) in o {
                if let Some(sub) = def.sub(&k) {
                    if sub.mutability != Mutability::ReadOnly && !x.is_null() {
                        out.insert(sub.name.to_string(), x);
                    }
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        v => Some(v),
    }
}

/// `{"givenName": null}` in a merge clears that sub-attribute (the value
/// parser reports nulls as absent, so look at the raw value).
pub(super) fn clear_null_subs(def: &AttributeDef, obj: &mut Map<String, Value>, raw: &Value) {
    if let Value::Object(r) = raw {
        for (k, v) in r {
            if v.is_null() {
                if let Some(sub) = def.sub(k) {
                    if sub.mutability != Mutability::ReadOnly {
                        obj.remove(sub.name);
                    }
                }
            }
        }
    }
}

pub(super) fn has_value(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

pub(super) fn take_array(c: &mut Map<String, Value>, name: &str) -> Vec<Value> {
    match c.remove(name) {
        Some(Value::Array(a)) => a,
        None | Some(Value::Null) => Vec::new(),
        Some(v) => vec![v],
    }
}

pub(super) fn put_array(c: &mut Map<String, Value>, name: &str, items: Vec<Value>) {
    if !items.is_empty() {
        c.insert(name.to_string(), Value::Array(items));
    }
}

pub(super) fn remove_indices(items: &mut Vec<Value>, indices: &[usize]) {
    let mut i = 0;
    items.retain(|_| {
        let keep = !indices.contains(&i);
        i += 1;
        keep
    });
}

pub(super) fn set_sub(items: &mut [Value], indices: &[usize], sub: &str, v: &Value) {
    for &i in indices {
        if let Some(Value::Object(o)) = items.get_mut(i) {
            o.insert(sub.to_string(), v.clone());
        }
    }
}

/// Remove a sub-attribute; values left empty are dropped.
pub(super) fn remove_sub(items: &mut Vec<Value>, indices: &[usize], sub: &str) {
    for &i in indices {
        if let Some(Value::Object(o)) = items.get_mut(i) {
            o.remove(sub);
        }
    }
    items.retain(has_value);
}

pub(super) fn str_eq_ci(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (Some(Value::String(x)), Some(Value::String(y))) => x.eq_ignore_ascii_case(y),
        (x, y) => x == y,
    }
}

/// Add one value to a multi-valued attribute and return its index: an equal
/// value is not duplicated, and a complex value with the same `value` and
/// `type` as an existing one is merged into it (re-adding an email with
/// `primary: true` marks it primary rather than duplicating it).
pub(super) fn add_item(items: &mut Vec<Value>, new: Value) -> usize {
    if let Some(i) = items.iter().position(|i| *i == new) {
        return i;
    }
    if let Value::Object(n) = &new {
        if n.contains_key("value") {
            let same = items.iter().position(|i| {
                i.as_object().is_some_and(|o| {
                    o.get("value") == n.get("value") && str_eq_ci(o.get("type"), n.get("type"))
                })
            });
            if let Some(Value::Object(o)) = same.and_then(|i| items.get_mut(i)) {
                o.extend(n.clone());
                return same.unwrap_or_default();
            }
        }
    }
    items.push(new);
    items.len() - 1
}

/// Whether `item` is what a Microsoft-style `remove` value entry names:
/// equal, or (for objects) agreeing on every listed sub-attribute, or a bare
/// scalar equal to the item's `value`.
pub(super) fn item_matches(def: &AttributeDef, item: &Value, listed: &Value) -> bool {
    if item == listed {
        return true;
    }
    let Value::Object(o) = item else {
        return false;
    };
    let agree = |k: &str, want: &Value| {
        let exact = def.sub(k).is_some_and(|d| d.case_exact);
        let have = get_ci(o, k);
        match (have, want) {
            (Some(Value::String(h)), Value::String(w)) if !exact => {
                h.to_lowercase() == w.to_lowercase()
            }
            (h, w) => h == Some(w),
        }
    };
    match listed {
        Value::Object(l) => !l.is_empty() && l.iter().all(|(k, w)| agree(k, w)),
        scalar => agree("value", scalar),
    }
}

/// RFC 7643 §2.4: at most one `primary: true`. If exactly one touched value
/// is primary now, the flag is cleared on all the others; two touched
/// primaries are a client error.
pub(super) fn fix_primary(items: &mut [Value], touched: &[usize]) -> Result<(), ScimError> {
    let is_primary = |v: &Value| {
        v.as_object()
            .and_then(|o| get_ci(o, "primary"))
            .is_some_and(|p| p == &Value::Bool(true))
    };
    let primaries: Vec<usize> = touched
        .iter()
        .copied()
        .filter(|&i| items.get(i).is_some_and(is_primary))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    match primaries.as_slice() {
        [] => Ok(()),
        [keep] => {
            for (i, item) in items.iter_mut().enumerate() {
                if i != *keep && is_primary(item) {
                    if let Value::Object(o) = item {
                        o.remove("primary");
                    }
                }
            }
            Ok(())
        }
        _ => Err(ScimError::invalid_value(
            "at most one value of a multi-valued attribute may be primary",
        )),
    }
}

/// The value an `eq`-only conjunction describes (`type eq "work"` →
/// `{"type":"work"}`), or `None` if the filter is anything else.
pub(super) fn element_from_filter(def: &AttributeDef, f: &Filter) -> Option<Map<String, Value>> {
    fn walk(def: &AttributeDef, f: &Filter, out: &mut Map<String, Value>) -> bool {
        match f {
            Filter::And(l, r) => walk(def, l, out) && walk(def, r, out),
            Filter::Compare {
                path,
                op: CompareOp::Eq,
                value,
            } if path.urn.is_none() && path.sub_attr.is_none() && *value != CompValue::Null => {
                match def.sub(&path.attr) {
                    Some(sub) => {
                        let v = match value.as_bool() {
                            // Entra's `emails[primary eq "True"]`.
                            Some(b) if sub.ty == AttrType::Boolean => Value::Bool(b),
                            _ => value.to_json(),
                        };
                        out.insert(sub.name.to_string(), v);
                        true
                    }
                    None => false,
                }
            }
            _ => false,
        }
    }
    let mut out = Map::new();
    walk(def, f, &mut out).then_some(out)
}

/// Member ids from `value eq "x" [or value eq "y" …]`.
pub(super) fn member_filter_ids(f: &Filter, out: &mut Vec<String>) -> bool {
    match f {
        Filter::Or(l, r) => member_filter_ids(l, out) && member_filter_ids(r, out),
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value: CompValue::Str(id),
        } if path.urn.is_none()
            && path.sub_attr.is_none()
            && path.attr.eq_ignore_ascii_case("value") =>
        {
            out.push(id.clone());
            true
        }
        _ => false,
    }
}

/// Member ids from `[{"value": "id"}, …]` (or one such object).
pub(super) fn member_ids(v: &Value) -> Result<Vec<String>, ScimError> {
    let mut ids = Vec::new();
    for item in as_list(v) {
        let id = item
            .as_object()
            .and_then(|o| get_ci(o, "value"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        match id {
            Some(id) => ids.push(id.to_string()),
            None => {
                return Err(ScimError::invalid_value(
                    "each member must be an object with a string \"value\"",
                ))
            }
        }
    }
    Ok(dedupe(ids))
}

pub(super) fn dedupe(ids: Vec<String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    ids.into_iter()
        .filter(|id| seen.insert(id.clone()))
        .collect()
}
