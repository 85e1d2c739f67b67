//! Applying parsed operations to a document, all or nothing.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::parse::{check_operation_shape, in_operation};
use super::values::{
    add_item, clean, clear_null_subs, dedupe, element_from_filter, fix_primary, has_value,
    item_matches, member_filter_ids, member_ids, put_array, remove_indices, remove_sub, set_sub,
    take_array, wrap_scalar,
};
use super::{MemberChange, PatchOpKind, PatchOperation, PatchOutcome, PatchRequest, ValueParser};
use crate::scim::error::ScimError;
use crate::scim::filter::{self, Filter};
use crate::scim::json::{as_list, get_ci, normalize_key, remove_ci};
use crate::scim::path::{parse_attr_path, AttrPath, PatchPath};
use crate::scim::schema::{AttrType, AttributeDef, Mutability, ResourceTypeDef, SchemaDef};

// ---------------------------------------------------------------------------
// Resolution
// ---------------------------------------------------------------------------

/// Where an attribute lives in the document.
#[derive(Clone, Copy, Debug)]
enum Loc {
    Core,
    Ext(&'static SchemaDef),
}

/// What the attribute part of a path names.
#[derive(Clone, Copy, Debug)]
enum Named {
    Attr(Loc, &'static AttributeDef),
    /// A schema URN on its own (`urn:…:enterprise:2.0:User`): the whole
    /// extension object (or the core attributes).
    Schema(Loc),
}

fn loc_of(rt: &ResourceTypeDef, schema: &'static SchemaDef) -> Loc {
    if std::ptr::eq(schema, rt.schema) {
        Loc::Core
    } else {
        Loc::Ext(schema)
    }
}

fn schema_loc(rt: &ResourceTypeDef, urn: &str) -> Option<Loc> {
    rt.schema_by_urn(urn).map(|s| loc_of(rt, s))
}

fn loc_urn(rt: &ResourceTypeDef, loc: Loc) -> &'static str {
    match loc {
        Loc::Core => rt.schema.id,
        Loc::Ext(ext) => ext.id,
    }
}

/// `[urn:]name` through the schema's resolver ([`ResourceTypeDef::resolve`]),
/// so PATCH accepts exactly the names a filter accepts.
fn attr_named(rt: &ResourceTypeDef, urn: Option<&str>, name: &str) -> Option<Named> {
    let resolved = rt.resolve(urn, name, None)?;
    let loc = match resolved.schema {
        Some(schema) => loc_of(rt, schema),
        None => Loc::Core,
    };
    Some(Named::Attr(loc, resolved.attr))
}

/// Resolve the attribute part of a path (ignoring its sub-attribute).
fn resolve(rt: &ResourceTypeDef, ap: &AttrPath) -> Option<Named> {
    match &ap.urn {
        // The lexer splits a bare URN at its last ':'.
        Some(urn) if rt.schema_by_urn(urn).is_none() => match ap.sub_attr {
            None => schema_loc(rt, &format!("{urn}:{}", ap.attr)).map(Named::Schema),
            Some(_) => None,
        },
        urn => attr_named(rt, urn.as_deref(), &ap.attr),
    }
}

/// `schemas` belongs to no schema, so the resolver does not know it; the
/// server keeps it in step with the extensions present, so to PATCH it is
/// readOnly, as it is to PUT.
fn names_schemas(rt: &ResourceTypeDef, ap: &AttrPath) -> bool {
    ap.attr.eq_ignore_ascii_case("schemas")
        && ap
            .urn
            .as_deref()
            .is_none_or(|urn| rt.schema.id.eq_ignore_ascii_case(urn))
}

fn is_members(rt: &ResourceTypeDef, loc: Loc, def: &AttributeDef) -> bool {
    matches!(loc, Loc::Core)
        && rt.name.eq_ignore_ascii_case("Group")
        && def.name.eq_ignore_ascii_case("members")
}

fn full_name(loc: Loc, def: &AttributeDef) -> String {
    match loc {
        Loc::Core => def.name.to_string(),
        Loc::Ext(ext) => format!("{}:{}", ext.id, def.name),
    }
}

// ---------------------------------------------------------------------------
// Applying
// ---------------------------------------------------------------------------

/// Apply `req` to `doc`, all or nothing.
///
/// `value_parser(def, value, path)` type-checks and coerces a value for
/// `def`, shaped as `def` says: an array for a multi-valued attribute (a
/// single value sent by the client is wrapped first), an object for a
/// complex one; it returns `None` for null and may drop unknown
/// sub-attributes. `path` is only for error messages. This function then
/// canonicalises sub-attribute names and drops readOnly and null
/// sub-attributes from what it returns.
pub fn apply_patch(
    rt: &ResourceTypeDef,
    doc: &mut Map<String, Value>,
    req: &PatchRequest,
    value_parser: &ValueParser<'_>,
) -> Result<PatchOutcome, ScimError> {
    let mut work = doc.clone();
    let mut patcher = Patcher {
        rt,
        parse: value_parser,
        members: Vec::new(),
    };
    for (i, op) in req.operations.iter().enumerate() {
        patcher
            .apply_op(&mut work, op)
            .map_err(|e| in_operation(i, e))?;
    }
    sync_schemas(rt, &mut work);
    let mut changed = changed_attributes(rt, doc, &work);
    if !patcher.members.is_empty() {
        changed.insert("members".to_string());
    }
    *doc = work;
    Ok(PatchOutcome {
        member_changes: patcher.members,
        changed_attributes: changed.into_iter().collect(),
    })
}

/// An operation's path resolved against the schema: the attribute (and
/// sub-attribute) it changes, and the value filter that picks elements.
struct ResolvedPatchPath<'f> {
    loc: Loc,
    def: &'static AttributeDef,
    sub: Option<&'static AttributeDef>,
    filter: Option<&'f Filter>,
    /// The path as written, for messages and the value parser.
    label: String,
}

struct Patcher<'a> {
    rt: &'a ResourceTypeDef,
    parse: &'a ValueParser<'a>,
    members: Vec<MemberChange>,
}

impl Patcher<'_> {
    fn apply_op(
        &mut self,
        doc: &mut Map<String, Value>,
        op: &PatchOperation,
    ) -> Result<(), ScimError> {
        check_operation_shape(op)?;
        let value = op.value.as_ref();
        match &op.path {
            None => match value {
                Some(Value::Object(obj)) => self.apply_pathless(doc, op.op, obj, None),
                _ => Err(ScimError::invalid_value(format!(
                    "{} without a path needs an object of attributes as its value",
                    op.op
                ))),
            },
            Some(path) => self.apply_path(doc, op.op, path, value),
        }
    }

    fn apply_path(
        &mut self,
        doc: &mut Map<String, Value>,
        kind: PatchOpKind,
        path: &PatchPath,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        let label = path.to_string();
        let unknown = || ScimError::invalid_path(format!("unknown attribute \"{label}\""));
        if names_schemas(self.rt, &path.attr) {
            return Err(ScimError::mutability("attribute \"schemas\" is readOnly"));
        }
        let (loc, def) = match resolve(self.rt, &path.attr).ok_or_else(unknown)? {
            Named::Schema(loc) => {
                if path.filter.is_some() || path.sub_attr.is_some() {
                    return Err(unknown());
                }
                return self.apply_schema(doc, kind, loc, value, &label);
            }
            Named::Attr(loc, def) => (loc, def),
        };
        if def.mutability == Mutability::ReadOnly {
            return Err(ScimError::mutability(format!(
                "attribute \"{}\" is readOnly",
                def.name
            )));
        }
        if path.filter.is_some() && !(def.multi_valued && def.ty == AttrType::Complex) {
            return Err(ScimError::invalid_path(format!(
                "a value filter needs a multi-valued complex attribute; \"{}\" is not",
                def.name
            )));
        }
        let sub = match path.attr.sub_attr.as_ref().or(path.sub_attr.as_ref()) {
            None => None,
            Some(name) => {
                let sub = def.sub(name).ok_or_else(|| {
                    ScimError::invalid_path(format!(
                        "\"{}\" has no sub-attribute \"{name}\"",
                        def.name
                    ))
                })?;
                if sub.mutability == Mutability::ReadOnly {
                    return Err(ScimError::mutability(format!(
                        "sub-attribute \"{}.{}\" is readOnly",
                        def.name, sub.name
                    )));
                }
                Some(sub)
            }
        };
        let target = ResolvedPatchPath {
            loc,
            def,
            sub,
            filter: path.filter.as_ref(),
            label,
        };
        self.apply_target(doc, kind, &target, value)
    }

    /// A path that is just a schema URN: its value is an object of that
    /// schema's attributes; `remove` drops the whole extension.
    fn apply_schema(
        &mut self,
        doc: &mut Map<String, Value>,
        kind: PatchOpKind,
        loc: Loc,
        value: Option<&Value>,
        label: &str,
    ) -> Result<(), ScimError> {
        match (kind, loc, value) {
            (PatchOpKind::Add | PatchOpKind::Replace, _, Some(Value::Object(obj))) => {
                self.apply_pathless(doc, kind, obj, Some(loc))
            }
            (PatchOpKind::Add, _, Some(Value::Null)) => Ok(()),
            (PatchOpKind::Remove, Loc::Ext(ext), _)
            | (PatchOpKind::Replace, Loc::Ext(ext), Some(Value::Null)) => {
                let required = self
                    .rt
                    .extensions
                    .iter()
                    .any(|(s, req)| *req && s.id == ext.id);
                if required {
                    return Err(ScimError::invalid_value(format!(
                        "extension \"{}\" is required",
                        ext.id
                    )));
                }
                remove_ci(doc, ext.id);
                Ok(())
            }
            (PatchOpKind::Remove, Loc::Core, _) => Err(ScimError::invalid_path(format!(
                "cannot remove the core schema \"{label}\""
            ))),
            _ => Err(ScimError::invalid_value(format!(
                "the value for \"{label}\" must be an object of its attributes"
            ))),
        }
    }

    /// `add`/`replace` without a path (or with a schema URN as path): each
    /// key is applied as if it were the path. Unknown and readOnly keys are
    /// ignored, because IdPs echo back `id`, `meta`, `schemas` and the like.
    fn apply_pathless(
        &mut self,
        doc: &mut Map<String, Value>,
        kind: PatchOpKind,
        obj: &Map<String, Value>,
        within: Option<Loc>,
    ) -> Result<(), ScimError> {
        for (key, value) in obj {
            if within.is_none() {
                if let Some(loc) = schema_loc(self.rt, key.trim()) {
                    self.apply_schema(doc, kind, loc, Some(value), key)?;
                    continue;
                }
            }
            let Ok(ap) = parse_attr_path(key) else {
                continue;
            };
            let resolved = match within {
                None => resolve(self.rt, &ap),
                Some(_) if ap.urn.is_some() => None,
                Some(loc) => attr_named(self.rt, Some(loc_urn(self.rt, loc)), &ap.attr),
            };
            let Some(Named::Attr(loc, def)) = resolved else {
                continue;
            };
            if def.mutability == Mutability::ReadOnly {
                continue;
            }
            let sub = match &ap.sub_attr {
                None => None,
                Some(name) => match def.sub(name) {
                    Some(sub) if sub.mutability != Mutability::ReadOnly => Some(sub),
                    _ => continue,
                },
            };
            let target = ResolvedPatchPath {
                loc,
                def,
                sub,
                filter: None,
                label: key.clone(),
            };
            self.apply_target(doc, kind, &target, Some(value))?;
        }
        Ok(())
    }

    /// Apply to one attribute, enforcing immutability and `required` by
    /// comparing its value before and after.
    fn apply_target(
        &mut self,
        doc: &mut Map<String, Value>,
        kind: PatchOpKind,
        t: &ResolvedPatchPath<'_>,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        if is_members(self.rt, t.loc, t.def) {
            return self.apply_members(kind, t, value);
        }
        match t.loc {
            Loc::Core => self.apply_checked(doc, kind, t, value),
            Loc::Ext(ext) => {
                let mut container = match remove_ci(doc, ext.id) {
                    Some(Value::Object(o)) => o,
                    _ => Map::new(),
                };
                let r = self.apply_checked(&mut container, kind, t, value);
                if !container.is_empty() {
                    doc.insert(ext.id.to_string(), Value::Object(container));
                }
                r
            }
        }
    }

    fn apply_checked(
        &mut self,
        c: &mut Map<String, Value>,
        kind: PatchOpKind,
        t: &ResolvedPatchPath<'_>,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        normalize_key(c, t.def.name);
        let before = c.get(t.def.name).filter(|v| has_value(v)).cloned();
        self.apply_in(c, kind, t, value)?;
        let after = c.get(t.def.name).filter(|v| has_value(v));
        if before.is_some() && after.is_none() && t.def.required {
            return Err(ScimError::invalid_value(format!(
                "attribute \"{}\" is required and cannot be removed",
                full_name(t.loc, t.def)
            )));
        }
        if t.def.mutability == Mutability::Immutable && before.is_some() && before.as_ref() != after
        {
            return Err(ScimError::mutability(format!(
                "attribute \"{}\" is immutable and already has a value",
                full_name(t.loc, t.def)
            )));
        }
        Ok(())
    }

    fn apply_in(
        &self,
        c: &mut Map<String, Value>,
        kind: PatchOpKind,
        t: &ResolvedPatchPath<'_>,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        let raw = value.unwrap_or(&Value::Null);
        if let Some(filter) = t.filter {
            return self.apply_filtered(c, kind, t, filter, raw);
        }
        let name = t.def.name;
        match (t.sub, t.def.multi_valued) {
            (Some(sub), false) => {
                let mut obj = match c.remove(name) {
                    Some(Value::Object(o)) => o,
                    _ => Map::new(),
                };
                match kind {
                    PatchOpKind::Remove => {
                        obj.remove(sub.name);
                    }
                    _ => match self.parse_value(sub, raw, &t.label)? {
                        Some(v) => {
                            obj.insert(sub.name.to_string(), v);
                        }
                        None => {
                            obj.remove(sub.name);
                        }
                    },
                }
                if !obj.is_empty() {
                    c.insert(name.to_string(), Value::Object(obj));
                }
                Ok(())
            }
            (Some(sub), true) => {
                // `emails.display` without a filter: every value.
                let mut items = take_array(c, name);
                let all: Vec<usize> = (0..items.len()).collect();
                match kind {
                    PatchOpKind::Remove => remove_sub(&mut items, &all, sub.name),
                    _ => match self.parse_value(sub, raw, &t.label)? {
                        None => remove_sub(&mut items, &all, sub.name),
                        Some(v) if items.is_empty() => {
                            let mut obj = Map::new();
                            obj.insert(sub.name.to_string(), v);
                            items.push(Value::Object(obj));
                        }
                        Some(v) => {
                            set_sub(&mut items, &all, sub.name, &v);
                            fix_primary(&mut items, &all)?;
                        }
                    },
                }
                put_array(c, name, items);
                Ok(())
            }
            (None, false) => {
                match kind {
                    PatchOpKind::Remove => {
                        c.remove(name);
                    }
                    _ => match self.parse_value(t.def, raw, &t.label)? {
                        None if kind == PatchOpKind::Add => {}
                        None => {
                            c.remove(name);
                        }
                        Some(Value::Object(new)) if t.def.ty == AttrType::Complex => {
                            // RFC 7644 §3.5.2.1/§3.5.2.3: sub-attributes in
                            // the value are set, the others are kept.
                            let mut obj = match c.remove(name) {
                                Some(Value::Object(o)) => o,
                                _ => Map::new(),
                            };
                            obj.extend(new);
                            clear_null_subs(t.def, &mut obj, raw);
                            if !obj.is_empty() {
                                c.insert(name.to_string(), Value::Object(obj));
                            }
                        }
                        Some(v) => {
                            c.insert(name.to_string(), v);
                        }
                    },
                }
                Ok(())
            }
            (None, true) => {
                let mut items = take_array(c, name);
                match kind {
                    PatchOpKind::Remove if value.is_some_and(|v| !v.is_null()) => {
                        // Microsoft style: remove just the listed values.
                        let listed = as_list(raw);
                        items.retain(|item| !listed.iter().any(|l| item_matches(t.def, item, l)));
                    }
                    PatchOpKind::Remove => items.clear(),
                    PatchOpKind::Replace => {
                        items = self.parse_list(t.def, raw, &t.label)?;
                        let all: Vec<usize> = (0..items.len()).collect();
                        fix_primary(&mut items, &all)?;
                    }
                    PatchOpKind::Add => {
                        let mut touched = Vec::new();
                        for new in self.parse_list(t.def, raw, &t.label)? {
                            touched.push(add_item(&mut items, new));
                        }
                        fix_primary(&mut items, &touched)?;
                    }
                }
                put_array(c, name, items);
                Ok(())
            }
        }
    }

    /// `attr[filter]` and `attr[filter].sub`.
    fn apply_filtered(
        &self,
        c: &mut Map<String, Value>,
        kind: PatchOpKind,
        t: &ResolvedPatchPath<'_>,
        filter: &Filter,
        raw: &Value,
    ) -> Result<(), ScimError> {
        let def = t.def;
        let name = def.name;
        let mut items = take_array(c, name);
        let case_exact = |p: &AttrPath| def.sub(&p.attr).is_some_and(|d| d.case_exact);
        let matched: Vec<usize> = items
            .iter()
            .enumerate()
            .filter(|(_, item)| item.is_object() && filter::matches(filter, item, &case_exact))
            .map(|(i, _)| i)
            .collect();
        let no_target = || ScimError::no_target(format!("filter \"{}\" matched no value", t.label));
        // RFC 7644 §3.5.2.3 answers a `replace` whose filter matches nothing
        // with `noTarget`; Entra sends `Replace emails[type eq "home"].value`
        // to a user with no home email and expects it added. So such a
        // replace is an `add` of the element the filter describes, which
        // needs a filter of `eq` alone (else it is still `noTarget`).
        let replaced = kind == PatchOpKind::Replace && matched.is_empty();
        if replaced && element_from_filter(def, filter).is_none() {
            return Err(no_target());
        }
        let kind = if replaced { PatchOpKind::Add } else { kind };
        match (kind, t.sub) {
            (PatchOpKind::Remove, _) if matched.is_empty() => {
                return Err(no_target());
            }
            (PatchOpKind::Remove, None) => remove_indices(&mut items, &matched),
            (PatchOpKind::Remove, Some(sub)) => remove_sub(&mut items, &matched, sub.name),
            (_, Some(sub)) => match self.parse_value(sub, raw, &t.label)? {
                None if kind == PatchOpKind::Add => {}
                None => remove_sub(&mut items, &matched, sub.name),
                Some(v) if matched.is_empty() => {
                    // Entra: add `emails[type eq "work"].value` creates
                    // the work email when there is none.
                    let mut obj = element_from_filter(def, filter).ok_or_else(no_target)?;
                    obj.insert(sub.name.to_string(), v);
                    let new = self.parse_one(def, Value::Object(obj), &t.label)?;
                    let at = add_item(&mut items, new);
                    fix_primary(&mut items, &[at])?;
                }
                Some(v) => {
                    set_sub(&mut items, &matched, sub.name, &v);
                    fix_primary(&mut items, &matched)?;
                }
            },
            (PatchOpKind::Replace, None) => {
                let new = self.parse_list(def, raw, &t.label)?;
                let at = matched.first().copied().unwrap_or(items.len());
                remove_indices(&mut items, &matched);
                let at = at.min(items.len());
                let count = new.len();
                items.splice(at..at, new);
                let touched: Vec<usize> = (at..at + count).collect();
                fix_primary(&mut items, &touched)?;
            }
            (PatchOpKind::Add, None) => {
                if matched.is_empty() {
                    // Like Entra's creation above: the filter's equalities
                    // plus the value's sub-attributes.
                    let mut obj = element_from_filter(def, filter).unwrap_or_default();
                    match raw {
                        Value::Object(n) => obj.extend(n.clone()),
                        v => {
                            if let Value::Object(n) = wrap_scalar(def, v.clone()) {
                                obj.extend(n);
                            }
                        }
                    }
                    let new = self.parse_one(def, Value::Object(obj), &t.label)?;
                    let at = add_item(&mut items, new);
                    fix_primary(&mut items, &[at])?;
                } else {
                    let new = self.parse_one(def, raw.clone(), &t.label)?;
                    if let Value::Object(n) = &new {
                        for (k, v) in n {
                            set_sub(&mut items, &matched, k, v);
                        }
                    }
                    fix_primary(&mut items, &matched)?;
                }
            }
        }
        put_array(c, name, items);
        Ok(())
    }

    /// Group membership: recorded, never written to the document.
    fn apply_members(
        &mut self,
        kind: PatchOpKind,
        t: &ResolvedPatchPath<'_>,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        if t.sub.is_some() {
            return Err(ScimError::invalid_path(
                "member sub-attributes cannot be patched; add or remove whole members",
            ));
        }
        let value = value.filter(|v| !v.is_null());
        let change = match (kind, t.filter) {
            (PatchOpKind::Remove, Some(f)) => {
                let mut ids = Vec::new();
                if !member_filter_ids(f, &mut ids) {
                    return Err(ScimError::invalid_filter(
                        "only 'value eq \"…\"' filters (optionally or'ed) are supported on members",
                    ));
                }
                MemberChange::Remove(dedupe(ids))
            }
            (_, Some(_)) => {
                return Err(ScimError::invalid_path(
                    "a filter on members is only supported with remove",
                ))
            }
            (PatchOpKind::Remove, None) => match value {
                None => MemberChange::RemoveAll,
                Some(v) => MemberChange::Remove(member_ids(v)?),
            },
            (PatchOpKind::Add, None) => {
                MemberChange::Add(value.map(member_ids).transpose()?.unwrap_or_default())
            }
            (PatchOpKind::Replace, None) => {
                MemberChange::Replace(value.map(member_ids).transpose()?.unwrap_or_default())
            }
        };
        let empty =
            matches!(&change, MemberChange::Add(ids) | MemberChange::Remove(ids) if ids.is_empty());
        if !empty {
            self.members.push(change);
        }
        Ok(())
    }

    /// Run the caller's parser on a value shaped for `def`, then
    /// canonicalise what it returns.
    fn parse_value(
        &self,
        def: &'static AttributeDef,
        raw: &Value,
        label: &str,
    ) -> Result<Option<Value>, ScimError> {
        if raw.is_null() {
            return Ok(None);
        }
        let shaped = if def.multi_valued {
            let items = match raw {
                Value::Array(a) => a.clone(),
                v => vec![v.clone()],
            };
            Value::Array(items.into_iter().map(|i| wrap_scalar(def, i)).collect())
        } else {
            match raw {
                // Entra adds the single-valued `manager` as
                // `[{"$ref": …, "value": …}]`: one value in an array.
                Value::Array(a) if a.len() == 1 => {
                    wrap_scalar(def, a.first().cloned().unwrap_or(Value::Null))
                }
                v => wrap_scalar(def, v.clone()),
            }
        };
        let parsed = (self.parse)(def, &shaped, label)?;
        Ok(parsed.and_then(|v| clean(def, v)))
    }

    /// The values for a multi-valued attribute (empty for null).
    fn parse_list(
        &self,
        def: &'static AttributeDef,
        raw: &Value,
        label: &str,
    ) -> Result<Vec<Value>, ScimError> {
        Ok(match self.parse_value(def, raw, label)? {
            Some(Value::Array(a)) => a,
            Some(v) => vec![v],
            None => Vec::new(),
        })
    }

    /// Exactly one value for a multi-valued attribute.
    fn parse_one(
        &self,
        def: &'static AttributeDef,
        raw: Value,
        label: &str,
    ) -> Result<Value, ScimError> {
        let mut list = self.parse_list(def, &raw, label)?;
        match (list.pop(), list.is_empty()) {
            (Some(v), true) => Ok(v),
            _ => Err(ScimError::invalid_value(format!(
                "\"{label}\" needs exactly one value"
            ))),
        }
    }
}

/// Drop empty extension objects and make `schemas` list exactly the
/// extensions present (plus whatever else it already listed).
fn sync_schemas(rt: &ResourceTypeDef, doc: &mut Map<String, Value>) {
    for (ext, _) in rt.extensions {
        let present = match remove_ci(doc, ext.id) {
            Some(Value::Object(o)) if !o.is_empty() => {
                doc.insert(ext.id.to_string(), Value::Object(o));
                true
            }
            _ => false,
        };
        normalize_key(doc, "schemas");
        let listed = doc
            .get("schemas")
            .and_then(Value::as_array)
            .is_some_and(|a| {
                a.iter()
                    .any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(ext.id)))
            });
        if present && !listed {
            let schemas = doc
                .entry("schemas")
                .or_insert_with(|| Value::Array(vec![Value::from(rt.schema.id)]));
            if !schemas.is_array() {
                *schemas = Value::Array(vec![Value::from(rt.schema.id)]);
            }
            if let Value::Array(a) = schemas {
                a.push(Value::from(ext.id));
            }
        } else if !present && listed {
            if let Some(Value::Array(a)) = doc.get_mut("schemas") {
                a.retain(|s| !s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(ext.id)));
            }
        }
    }
}

/// Canonical names of the attributes whose values differ.
pub fn changed_attributes(
    rt: &ResourceTypeDef,
    before: &Map<String, Value>,
    after: &Map<String, Value>,
) -> BTreeSet<String> {
    let is_ext = |k: &str| rt.extension(k).is_some() || k.eq_ignore_ascii_case("schemas");
    let mut changed = BTreeSet::new();
    for key in before.keys().chain(after.keys()) {
        if !is_ext(key) && before.get(key) != after.get(key) {
            changed.insert(key.clone());
        }
    }
    let empty = Map::new();
    for (ext, _) in rt.extensions {
        let obj = |m: &Map<String, Value>| match get_ci(m, ext.id) {
            Some(Value::Object(o)) => o.clone(),
            _ => empty.clone(),
        };
        let (b, a) = (obj(before), obj(after));
        for key in b.keys().chain(a.keys()) {
            if b.get(key) != a.get(key) {
                changed.insert(format!("{}:{key}", ext.id));
            }
        }
    }
    changed
}
