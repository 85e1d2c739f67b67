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

/// First key equal to `name` ignoring ASCII case; JSON keys are
/// case-sensitive but SCIM attribute names are not (RFC 7643 §2.1).
fn get_ci<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
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
const IGNORED_CLIENT_SCHEMAS: &[(&str, &str)] = &[(
    "Group",
    "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group",
)];

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
mod tests {
    use super::*;
    use crate::scim::error::ScimType;
    use crate::scim::schema::{
        ATLASSIAN_EXTERNAL_URN, ENTERPRISE_USER_URN, GROUP_RESOURCE, GROUP_URN, USER_RESOURCE,
        USER_URN,
    };
    use serde_json::json;

    fn user(v: Value) -> Result<Value, ScimError> {
        parse_resource(&USER_RESOURCE, &v).map(Value::Object)
    }

    fn invalid_value(r: Result<Value, ScimError>, mentions: &str) {
        let e = r.unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(e.scim_type, Some(ScimType::InvalidValue), "{e}");
        assert!(
            e.detail.contains(mentions),
            "{:?} lacks {mentions:?}",
            e.detail
        );
    }

    fn path(urn: Option<&str>, attr: &str, sub: Option<&str>) -> AttrPath {
        AttrPath {
            urn: urn.map(str::to_owned),
            attr: attr.to_owned(),
            sub_attr: sub.map(str::to_owned),
        }
    }

    #[test]
    fn okta_user() {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "isaac.brock@example.com",
            "name": { "givenName": "Isaac", "familyName": "Brock" },
            "emails": [{ "primary": true, "value": "isaac.brock@example.com", "type": "work" }],
            "displayName": "Isaac Brock",
            "locale": "en-US",
            "externalId": "00ujl29u0le5T6Aj10h7",
            "groups": [],
            "password": "1mz050nq",
            "active": true
        });
        assert_eq!(
            user(body).unwrap(),
            json!({
                "schemas": [USER_URN],
                "userName": "isaac.brock@example.com",
                "name": { "givenName": "Isaac", "familyName": "Brock" },
                "emails": [{ "primary": true, "value": "isaac.brock@example.com", "type": "work" }],
                "displayName": "Isaac Brock",
                "locale": "en-US",
                "externalId": "00ujl29u0le5T6Aj10h7",
                "active": true
            })
        );
    }

    #[test]
    fn entra_user() {
        let body = json!({
            "schemas": [
                "urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
            ],
            "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
            "userName": "Test_User_ab6490ee@contoso.com",
            "active": "True",
            "displayName": "BHRFZLYGFWIJ",
            "emails": [{ "primary": "True", "type": "work", "value": "Test_User_fd0ea19b@contoso.com" }],
            "phoneNumbers": [
                { "type": "mobile", "value": "+1 555 0100", "primary": "False" },
                { "type": "fax", "value": "+1 555 0101" }
            ],
            "meta": { "resourceType": "User" },
            "name": { "formatted": "Ruby Ng", "familyName": "Ng", "givenName": "Ruby" },
            "roles": [],
            "title": "Engineer",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "employeeNumber": "701984",
                "department": "Sales",
                "manager": { "value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "Boss" }
            },
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter": "CC-9"
        });
        assert_eq!(
            user(body).unwrap(),
            json!({
                "schemas": [USER_URN, ENTERPRISE_USER_URN],
                "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
                "userName": "Test_User_ab6490ee@contoso.com",
                "active": true,
                "displayName": "BHRFZLYGFWIJ",
                "emails": [{ "primary": true, "type": "work", "value": "Test_User_fd0ea19b@contoso.com" }],
                "phoneNumbers": [
                    { "type": "mobile", "value": "+1 555 0100", "primary": false },
                    { "type": "fax", "value": "+1 555 0101" }
                ],
                "name": { "formatted": "Ruby Ng", "familyName": "Ng", "givenName": "Ruby" },
                "title": "Engineer",
                ENTERPRISE_USER_URN: {
                    "employeeNumber": "701984",
                    "department": "Sales",
                    "costCenter": "CC-9",
                    "manager": { "value": "26118915-6090-4610-87e4-49d8ca9f808d" }
                }
            })
        );
    }

    #[test]
    fn entra_manager_as_a_bare_id() {
        let doc = user(json!({
            "schemas": [USER_URN, ENTERPRISE_USER_URN],
            "userName": "bjensen@testuser.com",
            ENTERPRISE_USER_URN: { "manager": "123456", "department": "Sales" }
        }))
        .unwrap();
        assert_eq!(
            doc[ENTERPRISE_USER_URN],
            json!({ "manager": { "value": "123456" }, "department": "Sales" })
        );
        // Also fully qualified, and still type-checked.
        let doc = user(json!({
            "userName": "u",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager": "m-1"
        }))
        .unwrap();
        assert_eq!(
            doc[ENTERPRISE_USER_URN]["manager"],
            json!({ "value": "m-1" })
        );
        invalid_value(
            user(json!({ "userName": "u", ENTERPRISE_USER_URN: { "manager": 7 } })),
            "attribute 'manager.value' must be a string",
        );
        invalid_value(
            user(json!({ "userName": "u", ENTERPRISE_USER_URN: { "manager": ["m-1"] } })),
            "attribute 'manager' must be an object",
        );
    }

    #[test]
    fn write_only_values_are_dropped_from_patched_documents() {
        use crate::scim::patch::{apply_patch, parse_patch};
        let mut doc = user(json!({ "userName": "u", "password": "first" }))
            .unwrap()
            .as_object()
            .unwrap()
            .clone();
        assert!(doc.get("password").is_none(), "POST never stores it");
        // Okta's password sync, and the same by path.
        for op in [
            json!({ "op": "replace", "value": { "password": "t1me", "active": false } }),
            json!({ "op": "add", "path": "PASSWORD", "value": "t1me" }),
        ] {
            let req = parse_patch(&json!({ "Operations": [op] })).unwrap();
            apply_patch(&USER_RESOURCE, &mut doc, &req, &parse_attribute_value).unwrap();
            drop_write_only(&USER_RESOURCE, &mut doc);
            assert!(
                !Value::Object(doc.clone()).to_string().contains("t1me"),
                "{doc:?}"
            );
        }
        assert_eq!(
            Value::Object(doc),
            json!({ "schemas": [USER_URN], "userName": "u", "active": false })
        );
    }

    #[test]
    fn names_are_canonicalised() {
        let doc = user(json!({
            "SCHEMAS": ["URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER"],
            "USERNAME": "a",
            "Name": { "GIVENNAME": "A" },
            "emails": [{ "Value": "a@x", "TYPE": "Custom" }],
            "ExternalID": "e",
            "urn:ietf:params:scim:schemas:extension:ENTERPRISE:2.0:User": { "DEPARTMENT": "D" },
            "URN:ietf:params:scim:schemas:core:2.0:User:nickName": "nick"
        }))
        .unwrap();
        assert_eq!(
            doc,
            json!({
                "schemas": [USER_URN, ENTERPRISE_USER_URN],
                "userName": "a",
                "name": { "givenName": "A" },
                "emails": [{ "value": "a@x", "type": "Custom" }],
                "externalId": "e",
                "nickName": "nick",
                ENTERPRISE_USER_URN: { "department": "D" }
            })
        );
    }

    #[test]
    fn unknown_and_read_only_attributes_are_dropped() {
        let doc = user(json!({
            "userName": "bob",
            "id": "client-chosen",
            "meta": { "created": "2020-01-01T00:00:00Z" },
            "groups": [{ "value": "g1" }],
            "password": "hunter2",
            "favouriteColour": "blue",
            "name": { "givenName": "Bob", "nickname": "bobby" },
            "emails": [{ "value": "b@x", "verified": true }, null, {}],
            "urn:example:custom:1.0:User": { "foo": 1 },
            "urn:example:custom:1.0:User:foo": 1,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:nope": "x",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "manager": { "displayName": "only read-only" },
                "unknown": "x"
            },
            ATLASSIAN_EXTERNAL_URN: { "atlassianAccountId": "acc-1" }
        }))
        .unwrap();
        assert_eq!(
            doc,
            json!({
                "schemas": [USER_URN],
                "userName": "bob",
                "name": { "givenName": "Bob" },
                "emails": [{ "value": "b@x" }]
            })
        );
    }

    #[test]
    fn nulls_and_empties() {
        let doc = user(json!({
            "schemas": null,
            "userName": "u",
            "displayName": null,
            "title": "",
            "name": {},
            "emails": [],
            "addresses": [null],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": null
        }))
        .unwrap();
        assert_eq!(
            doc,
            json!({ "schemas": [USER_URN], "userName": "u", "title": "" })
        );
    }

    #[test]
    fn type_errors() {
        let cases = [
            (
                json!({ "userName": 5 }),
                "attribute 'userName' must be a string",
            ),
            (
                json!({ "userName": "u", "active": "yes" }),
                "attribute 'active' must be a boolean",
            ),
            (
                json!({ "userName": "u", "active": 1 }),
                "attribute 'active' must be a boolean",
            ),
            (
                json!({ "userName": "u", "name": "Bob" }),
                "attribute 'name' must be an object",
            ),
            (
                json!({ "userName": "u", "emails": { "value": "a@x" } }),
                "attribute 'emails' must be an array",
            ),
            (
                json!({ "userName": "u", "emails": ["a@x"] }),
                "attribute 'emails' must be an object",
            ),
            (
                json!({ "userName": "u", "emails": [{ "value": 7 }] }),
                "attribute 'emails.value' must be a string",
            ),
            (
                json!({ "userName": "u", "emails": [{ "primary": "yes" }] }),
                "emails.primary",
            ),
            (
                json!({ "userName": "u", "externalId": 12 }),
                "attribute 'externalId' must be a string",
            ),
            (json!({ "userName": "u", "profileUrl": true }), "profileUrl"),
            (
                json!({ "userName": "u", ENTERPRISE_USER_URN: { "department": ["x"] } }),
                "attribute 'department' must be a string",
            ),
            (
                json!({ "userName": "u", ENTERPRISE_USER_URN: "Sales" }),
                "must be an object",
            ),
            (json!({ "userName": "u", "schemas": USER_URN }), "schemas"),
            (json!({ "userName": "u", "schemas": [1] }), "schemas"),
            (
                json!({ "userName": "a", "USERNAME": "b" }),
                "more than once",
            ),
        ];
        for (body, mentions) in cases {
            invalid_value(user(body), mentions);
        }
    }

    #[test]
    fn scalar_types() {
        let date = AttributeDef {
            name: "when",
            ty: AttrType::DateTime,
            multi_valued: false,
            description: "",
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            uniqueness: crate::scim::schema::Uniqueness::None,
            canonical_values: &[],
            reference_types: &[],
            sub_attributes: &[],
        };
        let ok = |d: &AttributeDef, v: Value| parse_attribute_value(d, &v, d.name).unwrap();
        let err = |d: &AttributeDef, v: Value| parse_attribute_value(d, &v, d.name).unwrap_err();
        assert_eq!(
            ok(&date, json!("2024-05-01T10:00:00.5+02:00")),
            Some(json!("2024-05-01T10:00:00.5+02:00"))
        );
        assert_eq!(
            err(&date, json!("2024-05-01")).scim_type,
            Some(ScimType::InvalidValue)
        );
        assert_eq!(
            err(&date, json!(17)).scim_type,
            Some(ScimType::InvalidValue)
        );

        let int = AttributeDef {
            ty: AttrType::Integer,
            ..date
        };
        assert_eq!(ok(&int, json!(-3)), Some(json!(-3)));
        assert!(err(&int, json!(1.5)).detail.contains("must be an integer"));
        assert!(err(&int, json!("3")).detail.contains("must be an integer"));

        let dec = AttributeDef {
            ty: AttrType::Decimal,
            ..int
        };
        assert_eq!(ok(&dec, json!(1.5)), Some(json!(1.5)));
        assert_eq!(ok(&dec, json!(2)), Some(json!(2)));
        assert!(err(&dec, json!("1.5")).detail.contains("must be a number"));

        let boolean = AttributeDef {
            ty: AttrType::Boolean,
            ..dec
        };
        assert_eq!(ok(&boolean, json!("FALSE")), Some(json!(false)));
        assert_eq!(ok(&boolean, json!("true")), Some(json!(true)));
        assert_eq!(ok(&boolean, Value::Null), None);

        let bin = AttributeDef {
            ty: AttrType::Binary,
            ..boolean
        };
        assert_eq!(ok(&bin, json!("TUlJ")), Some(json!("TUlJ")));
        assert!(err(&bin, json!([])).detail.contains("must be a string"));
    }

    #[test]
    fn missing_required() {
        for body in [
            json!({}),
            json!({ "userName": null }),
            json!({ "userName": "" }),
            json!({ "userName": "   " }),
            json!({ "displayName": "x" }),
        ] {
            invalid_value(user(body), "missing required attribute 'userName'");
        }
        invalid_value(
            parse_resource(&GROUP_RESOURCE, &json!({ "members": [] })).map(Value::Object),
            "missing required attribute 'displayName'",
        );
    }

    #[test]
    fn unknown_schema_urn() {
        invalid_value(
            user(json!({ "schemas": [USER_URN, "urn:example:custom:1.0:User"], "userName": "u" })),
            "unknown schema URN 'urn:example:custom:1.0:User'",
        );
        invalid_value(
            parse_resource(
                &GROUP_RESOURCE,
                &json!({ "schemas": [USER_URN], "displayName": "g" }),
            )
            .map(Value::Object),
            "unknown schema URN",
        );
        // Listing an extension without sending any of it is fine; it is just
        // not recorded.
        let doc = user(json!({ "schemas": [USER_URN, ENTERPRISE_USER_URN], "userName": "u" }));
        assert_eq!(doc.unwrap()["schemas"], json!([USER_URN]));
    }

    #[test]
    fn entra_group_schema_is_accepted_and_dropped() {
        const ADSCIM: &str =
            "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group";
        let body = json!({
            "schemas": [GROUP_URN, ADSCIM],
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "displayName": "displayName",
            "meta": { "resourceType": "Group" }
        });
        assert_eq!(
            Value::Object(parse_resource(&GROUP_RESOURCE, &body).unwrap()),
            json!({
                "schemas": [GROUP_URN],
                "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
                "displayName": "displayName"
            })
        );
        // Only where Entra sends it: it names no user schema.
        invalid_value(
            user(json!({ "schemas": [USER_URN, ADSCIM], "userName": "u" })),
            "unknown schema URN",
        );
    }

    #[test]
    fn multiple_primaries() {
        invalid_value(
            user(json!({
                "userName": "u",
                "emails": [
                    { "value": "a@x", "primary": true },
                    { "value": "b@x", "primary": "True" }
                ]
            })),
            "attribute 'emails' has more than one primary value",
        );
        assert!(user(json!({
            "userName": "u",
            "emails": [
                { "value": "a@x", "primary": true },
                { "value": "b@x", "primary": false }
            ]
        }))
        .is_ok());
    }

    #[test]
    fn body_must_be_object() {
        for body in [json!([]), json!("x"), Value::Null] {
            let e = parse_resource(&USER_RESOURCE, &body).unwrap_err();
            assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax));
            let e = parse_members(&body).unwrap_err();
            assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax));
        }
    }

    #[test]
    fn group_and_members() {
        let body = json!({
            "schemas": [GROUP_URN],
            "displayName": "Engineering",
            "externalId": "okta-group-1",
            "id": "ignored",
            "Members": [
                { "value": "u1", "display": "Alice" },
                { "value": "g2", "type": "Group" },
                { "value": "u1", "type": "User" },
                null
            ]
        });
        let doc = parse_resource(&GROUP_RESOURCE, &body).unwrap();
        assert_eq!(
            Value::Object(doc),
            json!({ "schemas": [GROUP_URN], "displayName": "Engineering", "externalId": "okta-group-1" })
        );
        assert_eq!(
            parse_members(&body).unwrap(),
            Some(vec![
                MemberRef {
                    value: "u1".into(),
                    type_: None
                },
                MemberRef {
                    value: "g2".into(),
                    type_: Some("Group".into())
                },
            ])
        );
        assert_eq!(parse_members(&json!({ "displayName": "g" })).unwrap(), None);
        assert_eq!(
            parse_members(&json!({ "members": null })).unwrap(),
            Some(vec![])
        );
        assert_eq!(
            parse_members(&json!({ "members": [] })).unwrap(),
            Some(vec![])
        );
        for bad in [
            json!({ "members": "u1" }),
            json!({ "members": ["u1"] }),
            json!({ "members": [{ "display": "x" }] }),
            json!({ "members": [{ "value": 5 }] }),
            json!({ "members": [{ "value": "" }] }),
            json!({ "members": [{ "value": "u1", "type": 1 }] }),
        ] {
            invalid_value(parse_members(&bad).map(|_| Value::Null), "members");
        }
    }

    #[test]
    fn attr_list_parsing() {
        assert_eq!(parse_attr_list("").unwrap(), vec![]);
        assert_eq!(
            parse_attr_list(" userName , name.givenName,,emails.value ").unwrap(),
            vec![
                path(None, "userName", None),
                path(None, "name", Some("givenName")),
                path(None, "emails", Some("value")),
            ]
        );
        assert_eq!(
            parse_attr_list(
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.$ref,groups.$ref"
            )
            .unwrap(),
            vec![
                path(Some(ENTERPRISE_USER_URN), "manager", Some("$ref")),
                path(None, "groups", Some("$ref")),
            ]
        );
        assert_eq!(
            parse_attr_list("urn:scim:schemas:extension:atlassian-external:1.0,URN:ietf:params:scim:schemas:core:2.0:User:userName").unwrap(),
            vec![
                path(Some(ATLASSIAN_EXTERNAL_URN), "", None),
                path(Some("URN:ietf:params:scim:schemas:core:2.0:User"), "userName", None),
            ]
        );
        for bad in [
            "1abc",
            "name.given.name",
            "name.",
            ".x",
            "user name",
            "a,b c",
            "émail",
            "urn:x y:z",
            "urn:",
        ] {
            let e = parse_attr_list(bad).unwrap_err();
            assert_eq!(e.scim_type, Some(ScimType::InvalidValue), "{bad}");
        }
    }

    fn full_user() -> Value {
        json!({
            "schemas": [USER_URN, ENTERPRISE_USER_URN, ATLASSIAN_EXTERNAL_URN],
            "id": "2819c223",
            "externalId": "ext-1",
            "meta": {
                "resourceType": "User",
                "created": "2024-01-01T00:00:00Z",
                "lastModified": "2024-01-02T00:00:00Z",
                "location": "https://h/scim/v2/Users/2819c223",
                "version": "W/\"3\""
            },
            "userName": "bjensen",
            "password": "must never leak",
            "name": { "givenName": "Barbara", "familyName": "Jensen" },
            "active": true,
            "emails": [
                { "value": "bj@work", "type": "work", "primary": true },
                { "value": "bj@home", "type": "home" },
                { "type": "other" }
            ],
            "groups": [{ "value": "g1", "display": "Eng", "$ref": "https://h/scim/v2/Groups/g1" }],
            ENTERPRISE_USER_URN: {
                "department": "Tour Operations",
                "manager": { "value": "m1", "displayName": "John Smith" }
            },
            ATLASSIAN_EXTERNAL_URN: { "atlassianAccountId": "acc-1" }
        })
    }

    fn list(s: &str) -> Vec<AttrPath> {
        parse_attr_list(s).unwrap()
    }

    fn project_user(attributes: &str, excluded: &str) -> Value {
        project(
            &USER_RESOURCE,
            &full_user(),
            &list(attributes),
            &list(excluded),
        )
    }

    #[test]
    fn projection_default_drops_never() {
        let mut expected = full_user();
        expected.as_object_mut().unwrap().remove("password");
        assert_eq!(project_user("", ""), expected);
    }

    #[test]
    fn projection_attributes() {
        assert_eq!(
            project_user("userName,ACTIVE,password", ""),
            json!({
                "schemas": [USER_URN, ENTERPRISE_USER_URN, ATLASSIAN_EXTERNAL_URN],
                "id": "2819c223",
                "userName": "bjensen",
                "active": true
            })
        );
        assert_eq!(
            project_user("name.givenName,emails.value,meta.lastModified", ""),
            json!({
                "schemas": [USER_URN, ENTERPRISE_USER_URN, ATLASSIAN_EXTERNAL_URN],
                "id": "2819c223",
                "name": { "givenName": "Barbara" },
                "emails": [{ "value": "bj@work" }, { "value": "bj@home" }],
                "meta": { "lastModified": "2024-01-02T00:00:00Z" }
            })
        );
        // The whole attribute wins over a sub-attribute of it.
        assert_eq!(
            project_user("name.givenName,name", "")["name"],
            json!({ "givenName": "Barbara", "familyName": "Jensen" })
        );
        // Sub-attributes of simple attributes select nothing.
        assert!(project_user("userName.x", "").get("userName").is_none());
        // `excluded` is ignored once `attributes` is given.
        assert_eq!(project_user("userName", "userName")["userName"], "bjensen");
    }

    #[test]
    fn projection_extensions() {
        let v = project_user(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
            "",
        );
        assert_eq!(
            v,
            json!({
                "schemas": [USER_URN, ENTERPRISE_USER_URN, ATLASSIAN_EXTERNAL_URN],
                "id": "2819c223",
                ENTERPRISE_USER_URN: { "manager": { "value": "m1" } }
            })
        );
        // Unqualified names reach extension attributes too.
        assert_eq!(
            project_user("department", "")[ENTERPRISE_USER_URN],
            json!({ "department": "Tour Operations" })
        );
        // A URN for the wrong schema selects nothing.
        assert!(project_user(&format!("{USER_URN}:department"), "")
            .get(ENTERPRISE_USER_URN)
            .is_none());
        // A whole extension, in either split form.
        let v = project_user(ATLASSIAN_EXTERNAL_URN, "");
        assert_eq!(
            v[ATLASSIAN_EXTERNAL_URN],
            json!({ "atlassianAccountId": "acc-1" })
        );
        assert!(v.get(ENTERPRISE_USER_URN).is_none());
        let split = path(
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0"),
            "User",
            None,
        );
        let v = project(
            &USER_RESOURCE,
            &full_user(),
            std::slice::from_ref(&split),
            &[],
        );
        assert_eq!(v[ENTERPRISE_USER_URN], full_user()[ENTERPRISE_USER_URN]);
        let v = project(&USER_RESOURCE, &full_user(), &[], &[split]);
        assert!(v.get(ENTERPRISE_USER_URN).is_none());
        assert!(v.get(ATLASSIAN_EXTERNAL_URN).is_some());
    }

    #[test]
    fn projection_excluded() {
        let v = project_user("", "emails,name.familyName,id,meta,groups.$ref,department");
        assert_eq!(
            v,
            json!({
                "schemas": [USER_URN, ENTERPRISE_USER_URN, ATLASSIAN_EXTERNAL_URN],
                "id": "2819c223",
                "externalId": "ext-1",
                "userName": "bjensen",
                "name": { "givenName": "Barbara" },
                "active": true,
                "groups": [{ "value": "g1", "display": "Eng" }],
                ENTERPRISE_USER_URN: {
                    "manager": { "value": "m1", "displayName": "John Smith" }
                },
                ATLASSIAN_EXTERNAL_URN: { "atlassianAccountId": "acc-1" }
            })
        );
        let v = project_user(
            "",
            "schemas,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
        );
        assert!(v.get("schemas").is_some());
        assert_eq!(
            v[ENTERPRISE_USER_URN],
            json!({ "department": "Tour Operations" })
        );
    }

    #[test]
    fn projection_group_and_oddities() {
        let group = json!({
            "schemas": [GROUP_URN],
            "id": "g1",
            "displayName": "Eng",
            "members": [{ "value": "u1", "display": "Alice", "type": "User" }]
        });
        assert_eq!(
            project(&GROUP_RESOURCE, &group, &list("displayName"), &[]),
            json!({ "schemas": [GROUP_URN], "id": "g1", "displayName": "Eng" })
        );
        assert_eq!(
            project(&GROUP_RESOURCE, &group, &[], &list("members")),
            json!({ "schemas": [GROUP_URN], "id": "g1", "displayName": "Eng" })
        );
        assert_eq!(
            project(&GROUP_RESOURCE, &group, &list("members.value"), &[])["members"],
            json!([{ "value": "u1" }])
        );
        // Not an object: returned as is rather than panicking.
        assert_eq!(project(&GROUP_RESOURCE, &json!([1]), &[], &[]), json!([1]));
    }

    #[test]
    fn parse_attribute_value_for_patch() {
        let emails = USER_RESOURCE.resolve(None, "emails", None).unwrap().attr;
        assert_eq!(
            parse_attribute_value(
                emails,
                &json!([{ "VALUE": "a@x", "Primary": "TRUE" }]),
                "emails"
            )
            .unwrap(),
            Some(json!([{ "value": "a@x", "primary": true }]))
        );
        let manager = USER_RESOURCE.resolve(None, "manager", None).unwrap().attr;
        assert_eq!(
            parse_attribute_value(manager, &json!({ "displayName": "x" }), "manager").unwrap(),
            None
        );
        let value = USER_RESOURCE
            .resolve(None, "emails", Some("value"))
            .unwrap()
            .sub
            .unwrap();
        let e = parse_attribute_value(value, &json!(true), "emails[type eq \"work\"].value")
            .unwrap_err();
        assert!(e.detail.contains("emails[type eq \"work\"].value"));
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        fn arb_json() -> impl Strategy<Value = Value> {
            let key = prop::sample::select(vec![
                "userName",
                "USERNAME",
                "name",
                "givenName",
                "emails",
                "value",
                "primary",
                "type",
                "active",
                "members",
                "schemas",
                "id",
                "meta",
                "manager",
                "department",
                USER_URN,
                ENTERPRISE_USER_URN,
                "urn:x:y",
                "urn:",
                "x",
            ]);
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<f64>().prop_map(|f| json!(f)),
                prop::sample::select(vec![
                    "",
                    "true",
                    "False",
                    "x",
                    USER_URN,
                    "2024-01-01T00:00:00Z"
                ])
                .prop_map(Value::from),
            ];
            leaf.prop_recursive(4, 48, 6, move |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    prop::collection::vec((key.clone(), inner), 0..6).prop_map(|kv| {
                        Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
                    }),
                ]
            })
        }

        proptest! {
            /// Arbitrary input never panics, and whatever parses is a fixed
            /// point: parsing the stored document again yields it unchanged.
            #[test]
            fn parse_is_total_and_idempotent(v in arb_json()) {
                for rt in [&USER_RESOURCE, &GROUP_RESOURCE] {
                    if let Ok(doc) = parse_resource(rt, &v) {
                        let again = parse_resource(rt, &Value::Object(doc.clone()));
                        prop_assert_eq!(again, Ok(doc));
                    }
                    let _ = parse_members(&v);
                }
            }

            #[test]
            fn project_is_total(v in arb_json(), a in "[a-zA-Z.,:$]{0,20}", x in "[a-zA-Z.,:$]{0,20}") {
                let a = parse_attr_list(&a).unwrap_or_default();
                let x = parse_attr_list(&x).unwrap_or_default();
                let out = project(&USER_RESOURCE, &v, &a, &x);
                if v.is_object() {
                    prop_assert!(out.is_object());
                }
            }
        }
    }
}
