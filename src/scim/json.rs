//! Small helpers over JSON objects. SCIM attribute names are
//! case-insensitive (RFC 7643 §2.1) while JSON keys are not, so documents
//! and request bodies are read through these.

use serde_json::{Map, Value};

/// The member called `name`: the exact key first (canonical documents),
/// then the first key equal to it ignoring ASCII case.
pub(crate) fn get_ci<'v>(obj: &'v Map<String, Value>, name: &str) -> Option<&'v Value> {
    obj.get(name).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// Removes and returns the first member whose key equals `name` ignoring
/// ASCII case.
pub(crate) fn remove_ci(obj: &mut Map<String, Value>, name: &str) -> Option<Value> {
    let key = obj.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()?;
    obj.remove(&key)
}

/// Makes an existing member use the schema's spelling `name` as its key.
pub(crate) fn normalize_key(obj: &mut Map<String, Value>, name: &str) {
    if !obj.contains_key(name) {
        if let Some(v) = remove_ci(obj, name) {
            obj.insert(name.to_string(), v);
        }
    }
}

/// The values of a possibly multi-valued attribute: an array's elements,
/// or a single value as a list of one.
pub(crate) fn as_list(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(a) => a.iter().collect(),
        v => vec![v],
    }
}
