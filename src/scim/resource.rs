//! Resource documents: turning client bodies into the stored canonical form
//! (RFC 7644 §3.3, §3.5.1) and cutting returned resources down to what the
//! client asked for (RFC 7644 §3.4.2.5, §3.9).
//!
//! The canonical document is a JSON object keyed by schema-cased attribute
//! names: core attributes and `externalId` at the top level, extension
//! attributes nested under the extension URN, and a `schemas` array naming
//! the core schema plus every extension present. It never holds `id`,
//! `meta`, `groups` or `members` (the server keeps those itself), nor
//! readOnly or writeOnly values, so what is stored is exactly what a client
//! may set.

use serde_json::{Map, Value};

use crate::scim::error::ScimError;
use crate::scim::json::get_ci;
use crate::scim::path::AttrPath;
use crate::scim::schema::{
    all_schemas, common_attr, AttrType, AttributeDef, Mutability, ResourceTypeDef, Returned,
    SchemaDef,
};

/// A group member reference from a client body (`members[].value/type`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberRef {
    /// The member's `id`.
    pub value: String,
    /// `User` or `Group` as the client wrote it, when given.
    pub type_: Option<String>,
}

/// `urn:…:attr` → `("urn:…", "attr")`. Attribute names contain no ':', so
/// the last one separates the URN.
fn split_qualified(key: &str) -> Option<(&str, &str)> {
    let is_urn = key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"));
    if !is_urn {
        return None;
    }
    key.rsplit_once(':')
}

/// `members`/`groups` are relationships, stored apart from the document.
fn is_membership(def: &AttributeDef) -> bool {
    matches!(def.name, "members" | "groups")
}

/// Inserts `value` under the canonical `name`, refusing two different values
/// for the same attribute (e.g. `userName` and `USERNAME`, or an extension
/// attribute sent both nested and fully qualified).
fn insert_once(
    map: &mut Map<String, Value>,
    name: &str,
    value: Value,
    path: &str,
) -> Result<(), ScimError> {
    match map.get(name) {
        Some(existing) if *existing != value => Err(ScimError::invalid_value(format!(
            "attribute '{path}' is given more than once with different values"
        ))),
        Some(_) => Ok(()),
        None => {
            map.insert(name.to_owned(), value);
            Ok(())
        }
    }
}

/// Parses one top-level attribute into `map`, skipping what a client may not
/// set: readOnly values are ignored (RFC 7644 §3.3) and writeOnly ones are
/// accepted but never stored.
fn store(map: &mut Map<String, Value>, def: &AttributeDef, value: &Value) -> Result<(), ScimError> {
    if matches!(def.mutability, Mutability::ReadOnly | Mutability::WriteOnly) || is_membership(def)
    {
        return Ok(());
    }
    match parse_attribute_value(def, value, def.name)? {
        Some(v) => insert_once(map, def.name, v, def.name),
        None => Ok(()),
    }
}

/// Schema URIs that identity providers list in `schemas` beside the core
/// one although no such schema exists here, as `(resource type, URI)`. They
/// carry no attributes, so they are accepted and dropped. Microsoft Entra
/// ID sends its own group schema on every group it creates.
/// Its tutorial's user creation also lists the enterprise extension
/// without the colon before `User`; the extension's attributes, if any,
/// still come under the right URN.
const IGNORED_CLIENT_SCHEMAS: &[(&str, &str)] = &[
    (
        "Group",
        "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group",
    ),
    (
        "User",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0User",
    ),
];

fn ignored_schema(rt: &ResourceTypeDef, urn: &str) -> bool {
    IGNORED_CLIENT_SCHEMAS
        .iter()
        .any(|(ty, uri)| rt.name.eq_ignore_ascii_case(ty) && uri.eq_ignore_ascii_case(urn))
}

/// Checks a client's `schemas` array. Absent or null is tolerated (several
/// IdPs omit it); anything present must name schemas this type has, or be
/// one of the [`IGNORED_CLIENT_SCHEMAS`].
fn check_schemas(rt: &ResourceTypeDef, value: &Value) -> Result<(), ScimError> {
    let items = match value {
        Value::Null => return Ok(()),
        Value::Array(items) => items,
        _ => {
            return Err(ScimError::invalid_value(
                "attribute 'schemas' must be an array of schema URNs",
            ))
        }
    };
    for item in items {
        let urn = item.as_str().ok_or_else(|| {
            ScimError::invalid_value("attribute 'schemas' must be an array of schema URNs")
        })?;
        if rt.schema_by_urn(urn).is_none() && !ignored_schema(rt, urn) {
            return Err(ScimError::invalid_value(format!(
                "unknown schema URN '{urn}' for resource type {}",
                rt.name
            )));
        }
    }
    Ok(())
}

/// Turns a client's POST/PUT body into the canonical stored document (see
/// the module docs). Unknown attributes are dropped rather than rejected
/// because IdPs routinely send attributes of their own.
pub fn parse_resource(
    rt: &ResourceTypeDef,
    input: &Value,
) -> Result<Map<String, Value>, ScimError> {
    let obj = input
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("the request body must be a JSON object"))?;

    let mut doc = Map::new();
    let mut ext_docs: Vec<(&'static SchemaDef, bool, Map<String, Value>)> = rt
        .extensions
        .iter()
        .map(|(s, required)| (*s, *required, Map::new()))
        .collect();

    for (key, value) in obj {
        if key.eq_ignore_ascii_case("schemas") {
            check_schemas(rt, value)?;
        } else if let Some((schema, _, ext_doc)) = ext_docs
            .iter_mut()
            .find(|(s, _, _)| s.id.eq_ignore_ascii_case(key))
        {
            match value {
                Value::Null => {}
                Value::Object(inner) => {
                    for (k, v) in inner {
                        if let Some(def) = schema.attr(k) {
                            store(ext_doc, def, v)?;
                        }
                    }
                }
                _ => {
                    return Err(ScimError::invalid_value(format!(
                        "attribute '{}' must be an object",
                        schema.id
                    )))
                }
            }
        } else if let Some(def) = common_attr(key).or_else(|| rt.schema.attr(key)) {
            store(&mut doc, def, value)?;
        } else if let Some((urn, name)) = split_qualified(key) {
            if rt.schema.id.eq_ignore_ascii_case(urn) {
                if let Some(def) = rt.schema.attr(name).or_else(|| common_attr(name)) {
                    store(&mut doc, def, value)?;
                }
            } else if let Some((schema, _, ext_doc)) = ext_docs
                .iter_mut()
                .find(|(s, _, _)| s.id.eq_ignore_ascii_case(urn))
            {
                if let Some(def) = schema.attr(name) {
                    store(ext_doc, def, value)?;
                }
            }
        }
        // Anything else is an attribute we do not know: dropped.
    }

    check_required(rt.schema, &doc)?;
    let mut schemas = vec![Value::from(rt.schema.id)];
    for (schema, required, ext_doc) in ext_docs {
        if ext_doc.is_empty() {
            if required {
                return Err(ScimError::invalid_value(format!(
                    "missing required schema extension '{}'",
                    schema.id
                )));
            }
            continue;
        }
        check_required(schema, &ext_doc)?;
        schemas.push(Value::from(schema.id));
        doc.insert(schema.id.to_owned(), Value::Object(ext_doc));
    }
    doc.insert("schemas".to_owned(), Value::Array(schemas));
    Ok(doc)
}

/// Removes writeOnly values (and writeOnly sub-values) from a canonical
/// document. PATCH may write them, as RFC 7643 §2.2 allows, but what is
/// stored never holds them: `password` is accepted and discarded whichever
/// way it arrives.
pub fn drop_write_only(rt: &ResourceTypeDef, doc: &mut Map<String, Value>) {
    fn strip(attrs: &[AttributeDef], obj: &mut Map<String, Value>) {
        obj.retain(|key, value| {
            let Some(def) = attrs.iter().find(|d| d.name.eq_ignore_ascii_case(key)) else {
                return true;
            };
            if def.mutability == Mutability::WriteOnly {
                return false;
            }
            match value {
                Value::Object(o) => strip(def.sub_attributes, o),
                Value::Array(items) => {
                    for item in items.iter_mut() {
                        if let Value::Object(o) = item {
                            strip(def.sub_attributes, o);
                        }
                    }
                }
                _ => {}
            }
            true
        });
    }
    strip(rt.schema.attributes, doc);
    for (ext, _) in rt.extensions {
        for (key, value) in doc.iter_mut() {
            if let (true, Value::Object(o)) = (key.eq_ignore_ascii_case(ext.id), value) {
                strip(ext.attributes, o);
            }
        }
    }
}

/// Required attributes must be present and, for strings, not blank: an
/// empty `userName` is as useless as a missing one.
fn check_required(schema: &SchemaDef, doc: &Map<String, Value>) -> Result<(), ScimError> {
    for def in schema.attributes.iter().filter(|a| a.required) {
        if def.mutability == Mutability::ReadOnly {
            continue;
        }
        let missing = match doc.get(def.name) {
            None => true,
            Some(Value::String(s)) => s.trim().is_empty(),
            Some(_) => false,
        };
        if missing {
            return Err(ScimError::invalid_value(format!(
                "missing required attribute '{}'",
                def.name
            )));
        }
    }
    Ok(())
}

/// Validates and normalises one attribute value against its definition.
/// `Ok(None)` means unassigned: `null`, `[]`, or a complex value left empty
/// once unknown, readOnly and writeOnly sub-attributes are dropped. The
/// attribute's own mutability is the caller's business (PATCH and PUT treat
/// it differently). `path_for_errors` names the attribute in error details.
pub fn parse_attribute_value(
    attr: &AttributeDef,
    v: &Value,
    path_for_errors: &str,
) -> Result<Option<Value>, ScimError> {
    if !attr.multi_valued {
        return parse_single(attr, v, path_for_errors);
    }
    let items = match v {
        Value::Null => return Ok(None),
        Value::Array(items) => items,
        _ => {
            return Err(ScimError::invalid_value(format!(
                "attribute '{path_for_errors}' must be an array"
            )))
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if let Some(parsed) = parse_single(attr, item, path_for_errors)? {
            out.push(parsed);
        }
    }
    // RFC 7643 §2.4: at most one value may be primary.
    let primaries = out
        .iter()
        .filter(|x| x.get("primary") == Some(&Value::Bool(true)))
        .count();
    if primaries > 1 {
        return Err(ScimError::invalid_value(format!(
            "attribute '{path_for_errors}' has more than one primary value"
        )));
    }
    Ok((!out.is_empty()).then_some(Value::Array(out)))
}

/// One (non-array) value of `attr`.
fn parse_single(attr: &AttributeDef, v: &Value, path: &str) -> Result<Option<Value>, ScimError> {
    let wrong = |what: &str| ScimError::invalid_value(format!("attribute '{path}' must be {what}"));
    if v.is_null() {
        return Ok(None);
    }
    let parsed = match attr.ty {
        AttrType::String | AttrType::Reference | AttrType::Binary => match v {
            Value::String(_) => v.clone(),
            _ => return Err(wrong("a string")),
        },
        // Microsoft Entra sends booleans as "True"/"False".
        AttrType::Boolean => match v {
            Value::Bool(_) => v.clone(),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Value::Bool(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Value::Bool(false),
            _ => return Err(wrong("a boolean")),
        },
        AttrType::Integer => match v {
            Value::Number(n) if n.is_i64() || n.is_u64() => v.clone(),
            _ => return Err(wrong("an integer")),
        },
        AttrType::Decimal => match v {
            Value::Number(_) => v.clone(),
            _ => return Err(wrong("a number")),
        },
        AttrType::DateTime => match v {
            Value::String(s) if chrono::DateTime::parse_from_rfc3339(s).is_ok() => v.clone(),
            _ => return Err(wrong("a dateTime (RFC 3339)")),
        },
        AttrType::Complex => {
            let wrapped;
            let obj = match v {
                Value::Object(obj) => obj,
                // Microsoft Entra ID sends the enterprise `manager` as the
                // manager's bare id: a scalar for a single-valued complex
                // attribute with a `value` sub-attribute is that
                // sub-attribute (as PATCH already reads it).
                Value::String(_) | Value::Number(_) | Value::Bool(_)
                    if !attr.multi_valued && attr.sub("value").is_some() =>
                {
                    wrapped = Map::from_iter([("value".to_owned(), v.clone())]);
                    &wrapped
                }
                _ => return Err(wrong("an object")),
            };
            let mut out = Map::new();
            for (k, sv) in obj {
                let Some(sub) = attr.sub(k) else { continue };
                if matches!(sub.mutability, Mutability::ReadOnly | Mutability::WriteOnly) {
                    continue;
                }
                let sub_path = format!("{path}.{}", sub.name);
                if let Some(parsed) = parse_attribute_value(sub, sv, &sub_path)? {
                    insert_once(&mut out, sub.name, parsed, &sub_path)?;
                }
            }
            if out.is_empty() {
                return Ok(None);
            }
            Value::Object(out)
        }
    };
    Ok(Some(parsed))
}

/// Reads a Group body's `members` (any key case). `None` when the body has
/// no `members` key, so PUT can tell "leave alone" from "clear" (`null` or
/// `[]`, which give an empty list).
pub fn parse_members(input: &Value) -> Result<Option<Vec<MemberRef>>, ScimError> {
    let obj = input
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("the request body must be a JSON object"))?;
    match get_ci(obj, "members") {
        None => Ok(None),
        Some(v) => parse_member_list(v).map(Some),
    }
}

/// Parses a `members` value (also a PATCH operation's value): an array of
/// objects with a non-empty string `value` and optional string `type`.
/// Repeated ids are collapsed, keeping the first.
pub fn parse_member_list(v: &Value) -> Result<Vec<MemberRef>, ScimError> {
    let items = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        _ => {
            return Err(ScimError::invalid_value(
                "attribute 'members' must be an array",
            ))
        }
    };
    let mut out: Vec<MemberRef> = Vec::with_capacity(items.len());
    for item in items {
        let obj = match item {
            Value::Null => continue,
            Value::Object(obj) => obj,
            _ => {
                return Err(ScimError::invalid_value(
                    "each value of attribute 'members' must be an object",
                ))
            }
        };
        let value = match get_ci(obj, "value") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => {
                return Err(ScimError::invalid_value(
                    "attribute 'members.value' must be a non-empty string",
                ))
            }
        };
        let type_ = match get_ci(obj, "type") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                return Err(ScimError::invalid_value(
                    "attribute 'members.type' must be a string",
                ))
            }
        };
        if !out.iter().any(|m| m.value == value) {
            out.push(MemberRef { value, type_ });
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Projection
// ---------------------------------------------------------------------------

/// RFC 7643 ATTRNAME, plus the leading `$` of `$ref`.
fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | '-'))
}

/// Parses the comma-separated `attributes` / `excludedAttributes` query
/// parameter. An item that is exactly a known schema URN (e.g. the
/// enterprise extension) selects that whole schema and comes back with an
/// empty `attr`; splitting it at its last ':' would mangle
/// `…atlassian-external:1.0`.
pub fn parse_attr_list(s: &str) -> Result<Vec<AttrPath>, ScimError> {
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        out.push(parse_attr_item(item)?);
    }
    Ok(out)
}

fn parse_attr_item(item: &str) -> Result<AttrPath, ScimError> {
    let bad = || ScimError::invalid_value(format!("invalid attribute name '{item}'"));
    if all_schemas()
        .iter()
        .any(|s| s.id.eq_ignore_ascii_case(item))
    {
        return Ok(AttrPath {
            urn: Some(item.to_owned()),
            attr: String::new(),
            sub_attr: None,
        });
    }
    let (urn, rest) = match split_qualified(item) {
        Some((urn, rest)) => (Some(urn), rest),
        None => (None, item),
    };
    if urn.is_some_and(|u| u.chars().any(char::is_whitespace)) {
        return Err(bad());
    }
    let (attr, sub) = match rest.split_once('.') {
        Some((a, s)) => (a, Some(s)),
        None => (rest, None),
    };
    if !valid_name(attr) || !sub.is_none_or(valid_name) {
        return Err(bad());
    }
    Ok(AttrPath {
        urn: urn.map(str::to_owned),
        attr: attr.to_owned(),
        sub_attr: sub.map(str::to_owned),
    })
}

/// Whether `p` names the attribute `name` of schema `schema_urn` (common
/// attributes count as the core schema's), either directly or by naming the
/// whole schema.
fn path_hits(p: &AttrPath, schema_urn: &str, name: &str) -> bool {
    match &p.urn {
        None => p.attr.eq_ignore_ascii_case(name),
        Some(urn) if p.attr.is_empty() => urn.eq_ignore_ascii_case(schema_urn),
        Some(urn) if urn.eq_ignore_ascii_case(schema_urn) => p.attr.eq_ignore_ascii_case(name),
        // A whole schema split at its last ':' by another parser.
        Some(urn) => {
            p.sub_attr.is_none()
                && schema_urn.len() == urn.len() + 1 + p.attr.len()
                && schema_urn
                    .get(..urn.len())
                    .is_some_and(|u| u.eq_ignore_ascii_case(urn))
                && schema_urn
                    .get(urn.len() + 1..)
                    .is_some_and(|a| a.eq_ignore_ascii_case(&p.attr))
        }
    }
}

/// Applies `keep(sub-attribute name, its definition)` to a complex value or
/// to each element of a multi-valued one. Elements left empty disappear, and
/// so does the whole value if nothing is left.
fn filter_subs(
    def: Option<&AttributeDef>,
    value: &Value,
    keep: &dyn Fn(&str, Option<&AttributeDef>) -> bool,
) -> Option<Value> {
    let filter_obj = |obj: &Map<String, Value>| -> Option<Value> {
        let kept: Map<String, Value> = obj
            .iter()
            .filter(|(k, _)| keep(k, def.and_then(|d| d.sub(k))))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        (!kept.is_empty()).then_some(Value::Object(kept))
    };
    match value {
        Value::Object(obj) => filter_obj(obj),
        Value::Array(items) => {
            let kept: Vec<Value> = items
                .iter()
                .filter_map(|item| match item {
                    Value::Object(obj) => filter_obj(obj),
                    other => Some(other.clone()),
                })
                .collect();
            (!kept.is_empty()).then_some(Value::Array(kept))
        }
        other => Some(other.clone()),
    }
}

fn returned_of(def: Option<&AttributeDef>) -> Returned {
    def.map_or(Returned::Default, |d| d.returned)
}

/// The projected value of one attribute, or `None` to leave it out.
fn project_attr(
    schema_urn: &str,
    def: Option<&AttributeDef>,
    key: &str,
    value: &Value,
    attributes: &[AttrPath],
    excluded: &[AttrPath],
) -> Option<Value> {
    let name = def.map_or(key, |d| d.name);
    let is_complex = def.is_none_or(|d| d.ty == AttrType::Complex);
    match returned_of(def) {
        Returned::Never => return None,
        Returned::Always => {
            return filter_subs(def, value, &|_, d| returned_of(d) != Returned::Never)
        }
        Returned::Default | Returned::Request => {}
    }

    if !attributes.is_empty() {
        let hits: Vec<&AttrPath> = attributes
            .iter()
            .filter(|p| path_hits(p, schema_urn, name))
            .collect();
        if hits.is_empty() {
            return None;
        }
        if hits.iter().any(|p| p.sub_attr.is_none()) {
            // Naming the attribute asks for all of it, `request` parts too.
            return filter_subs(def, value, &|_, d| returned_of(d) != Returned::Never);
        }
        if !is_complex {
            return None;
        }
        let wanted: Vec<&str> = hits.iter().filter_map(|p| p.sub_attr.as_deref()).collect();
        return filter_subs(def, value, &|k, d| match returned_of(d) {
            Returned::Never => false,
            Returned::Always => true,
            Returned::Default | Returned::Request => {
                wanted.iter().any(|w| w.eq_ignore_ascii_case(k))
            }
        });
    }

    if returned_of(def) == Returned::Request {
        return None;
    }
    let hits: Vec<&AttrPath> = excluded
        .iter()
        .filter(|p| path_hits(p, schema_urn, name))
        .collect();
    if hits.iter().any(|p| p.sub_attr.is_none()) {
        return None;
    }
    let unwanted: Vec<&str> = hits.iter().filter_map(|p| p.sub_attr.as_deref()).collect();
    filter_subs(def, value, &|k, d| match returned_of(d) {
        Returned::Never | Returned::Request => false,
        Returned::Always => true,
        Returned::Default => !unwanted.iter().any(|u| u.eq_ignore_ascii_case(k)),
    })
}

/// Cuts a complete resource (as returned to clients, with `id`, `meta`,
/// `schemas`, `groups`/`members`) down per `attributes` /
/// `excludedAttributes` (RFC 7644 §3.4.2.5). `schemas` and `returned:
/// always` attributes always stay; `returned: never` ones always go;
/// `returned: request` ones appear only when named in `attributes`.
/// `excluded` is ignored when `attributes` is non-empty.
pub fn project(
    rt: &ResourceTypeDef,
    full: &Value,
    attributes: &[AttrPath],
    excluded: &[AttrPath],
) -> Value {
    let Some(obj) = full.as_object() else {
        return full.clone();
    };
    let mut out = Map::new();
    for (key, value) in obj {
        if key.eq_ignore_ascii_case("schemas") {
            out.insert(key.clone(), value.clone());
            continue;
        }
        if let (Some(ext), Some(inner)) = (rt.extension(key), value.as_object()) {
            let projected: Map<String, Value> = inner
                .iter()
                .filter_map(|(k, v)| {
                    project_attr(ext.id, ext.attr(k), k, v, attributes, excluded)
                        .map(|pv| (k.clone(), pv))
                })
                .collect();
            if !projected.is_empty() {
                out.insert(key.clone(), Value::Object(projected));
            }
            continue;
        }
        let def = common_attr(key).or_else(|| rt.schema.attr(key));
        if let Some(pv) = project_attr(rt.schema.id, def, key, value, attributes, excluded) {
            out.insert(key.clone(), pv);
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests;
