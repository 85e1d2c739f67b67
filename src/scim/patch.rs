//! PATCH (RFC 7644 §3.5.2) applied to a canonical resource document.
//!
//! The document is a JSON object with schema-cased attribute names: core
//! attributes and `externalId` at the top level, extension attributes under
//! their schema URN, plus `schemas`. It never holds `id`, `meta`, `groups`
//! or `members`: those are owned by storage. Group membership changes are
//! therefore not applied here but returned as [`MemberChange`]s, in order,
//! so storage can apply them set-based on a large membership table.
//!
//! Everything is pure: the caller supplies a value parser that type-checks
//! and coerces one attribute's value (the same one used for POST/PUT), and
//! the request is applied to a clone that only replaces the document when
//! every operation succeeded.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::{Map, Value};

use crate::scim::error::ScimError;
use crate::scim::filter::{self, get_ci, CompValue, CompareOp, Filter};
use crate::scim::path::{parse_attr_path, parse_patch_path, AttrPath, PatchPath};
use crate::scim::schema::{
    AttrType, AttributeDef, Mutability, ResourceTypeDef, Returned, SchemaDef, Uniqueness,
};

/// `schemas` value of a PATCH request body.
pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// A parsed `PatchOp` request.
#[derive(Clone, Debug, PartialEq)]
pub struct PatchRequest {
    pub operations: Vec<PatchOperation>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchOpKind {
    Add,
    Replace,
    Remove,
}

impl PatchOpKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PatchOpKind::Add => "add",
            PatchOpKind::Replace => "replace",
            PatchOpKind::Remove => "remove",
        }
    }
}

impl fmt::Display for PatchOpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct PatchOperation {
    pub op: PatchOpKind,
    pub path: Option<PatchPath>,
    /// `Some(Value::Null)` when the client sent `"value": null`.
    pub value: Option<Value>,
}

/// A change to a group's membership, in request order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberChange {
    Add(Vec<String>),
    Remove(Vec<String>),
    RemoveAll,
    Replace(Vec<String>),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PatchOutcome {
    pub member_changes: Vec<MemberChange>,
    /// Canonical top-level names whose value changed (extension attributes
    /// as `urn:…:department`; `members` when any member change was
    /// requested), sorted; for the audit log.
    pub changed_attributes: Vec<String>,
}

/// Type-checks and coerces one attribute's value; see [`apply_patch`].
pub type ValueParser<'a> =
    dyn Fn(&AttributeDef, &Value, &str) -> Result<Option<Value>, ScimError> + 'a;

// ---------------------------------------------------------------------------
// Request parsing
// ---------------------------------------------------------------------------

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

fn in_operation(index: usize, e: ScimError) -> ScimError {
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
fn check_operation_shape(op: &PatchOperation) -> Result<(), ScimError> {
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

// ---------------------------------------------------------------------------
// Schema lookup
// ---------------------------------------------------------------------------

/// Common attributes (RFC 7643 §3.1) that are not part of any schema's
/// attribute list but may appear in paths.
const fn common(name: &'static str, ty: AttrType, mutability: Mutability) -> AttributeDef {
    AttributeDef {
        name,
        ty,
        multi_valued: false,
        description: "",
        required: false,
        case_exact: true,
        mutability,
        returned: Returned::Default,
        uniqueness: Uniqueness::None,
        canonical_values: &[],
        reference_types: &[],
        sub_attributes: &[],
    }
}

static COMMON_ATTRS: [AttributeDef; 4] = [
    common("id", AttrType::String, Mutability::ReadOnly),
    common("externalId", AttrType::String, Mutability::ReadWrite),
    common("meta", AttrType::Complex, Mutability::ReadOnly),
    AttributeDef {
        multi_valued: true,
        ..common("schemas", AttrType::Reference, Mutability::ReadOnly)
    },
];

fn find_def(defs: &'static [AttributeDef], name: &str) -> Option<&'static AttributeDef> {
    defs.iter().find(|d| d.name.eq_ignore_ascii_case(name))
}

/// Where an attribute lives in the document.
#[derive(Clone, Copy, Debug)]
enum Loc {
    Core,
    Ext(&'static SchemaDef),
}

#[derive(Clone, Copy, Debug)]
enum Resolved {
    Attr(Loc, &'static AttributeDef),
    /// A schema URN on its own (`urn:…:enterprise:2.0:User`): the whole
    /// extension object (or the core attributes).
    Schema(Loc),
}

fn core_attr(rt: &ResourceTypeDef, name: &str) -> Option<&'static AttributeDef> {
    find_def(rt.schema.attributes, name).or_else(|| find_def(&COMMON_ATTRS, name))
}

fn extension(rt: &ResourceTypeDef, urn: &str) -> Option<&'static SchemaDef> {
    rt.extensions
        .iter()
        .map(|(s, _)| *s)
        .find(|s| s.id.eq_ignore_ascii_case(urn))
}

fn schema_loc(rt: &ResourceTypeDef, urn: &str) -> Option<Loc> {
    if rt.schema.id.eq_ignore_ascii_case(urn) {
        Some(Loc::Core)
    } else {
        extension(rt, urn).map(Loc::Ext)
    }
}

fn attr_in(rt: &ResourceTypeDef, loc: Loc, name: &str) -> Option<&'static AttributeDef> {
    match loc {
        Loc::Core => core_attr(rt, name),
        Loc::Ext(ext) => find_def(ext.attributes, name),
    }
}

/// Resolve the attribute part of a path (ignoring its sub-attribute).
fn resolve(rt: &ResourceTypeDef, ap: &AttrPath) -> Option<Resolved> {
    match &ap.urn {
        None => core_attr(rt, &ap.attr).map(|d| Resolved::Attr(Loc::Core, d)),
        Some(urn) => match schema_loc(rt, urn) {
            Some(loc) => attr_in(rt, loc, &ap.attr).map(|d| Resolved::Attr(loc, d)),
            // The lexer splits a bare URN at its last ':'.
            None if ap.sub_attr.is_none() => {
                schema_loc(rt, &format!("{urn}:{}", ap.attr)).map(Resolved::Schema)
            }
            None => None,
        },
    }
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

/// A resolved operation target.
struct Target<'f> {
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
        let (loc, def) = match resolve(self.rt, &path.attr).ok_or_else(unknown)? {
            Resolved::Schema(loc) => {
                if path.filter.is_some() || path.sub_attr.is_some() {
                    return Err(unknown());
                }
                return self.apply_schema(doc, kind, loc, value, &label);
            }
            Resolved::Attr(loc, def) => (loc, def),
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
                let sub = find_def(def.sub_attributes, name).ok_or_else(|| {
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
        let target = Target {
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
                Some(loc) => attr_in(self.rt, loc, &ap.attr).map(|d| Resolved::Attr(loc, d)),
            };
            let Some(Resolved::Attr(loc, def)) = resolved else {
                continue;
            };
            if def.mutability == Mutability::ReadOnly {
                continue;
            }
            let sub = match &ap.sub_attr {
                None => None,
                Some(name) => match find_def(def.sub_attributes, name) {
                    Some(sub) if sub.mutability != Mutability::ReadOnly => Some(sub),
                    _ => continue,
                },
            };
            let target = Target {
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
        t: &Target<'_>,
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
        t: &Target<'_>,
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
        t: &Target<'_>,
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
        t: &Target<'_>,
        filter: &Filter,
        raw: &Value,
    ) -> Result<(), ScimError> {
        let def = t.def;
        let name = def.name;
        let mut items = take_array(c, name);
        let case_exact =
            |p: &AttrPath| find_def(def.sub_attributes, &p.attr).is_some_and(|d| d.case_exact);
        let matched: Vec<usize> = items
            .iter()
            .enumerate()
            .filter(|(_, item)| item.is_object() && filter::matches(filter, item, &case_exact))
            .map(|(i, _)| i)
            .collect();
        let no_target = || ScimError::no_target(format!("filter \"{}\" matched no value", t.label));
        match (kind, t.sub) {
            (PatchOpKind::Remove, _) | (PatchOpKind::Replace, _) if matched.is_empty() => {
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
        t: &Target<'_>,
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
            wrap_scalar(def, raw.clone())
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

/// Entra sends a bare id for `manager`: a scalar for a complex attribute
/// with a `value` sub-attribute means that sub-attribute.
fn wrap_scalar(def: &AttributeDef, v: Value) -> Value {
    if def.ty == AttrType::Complex && !v.is_object() && !v.is_null() {
        if let Some(value_def) = find_def(def.sub_attributes, "value") {
            let mut obj = Map::new();
            obj.insert(value_def.name.to_string(), v);
            return Value::Object(obj);
        }
    }
    v
}

/// Canonical sub-attribute names; unknown, readOnly and null sub-attributes
/// dropped; empty objects and arrays become "no value".
fn clean(def: &AttributeDef, v: Value) -> Option<Value> {
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

fn clean_one(def: &AttributeDef, v: Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::Object(o) if def.ty == AttrType::Complex => {
            let mut out = Map::new();
            for (k, x) in o {
                if let Some(sub) = find_def(def.sub_attributes, &k) {
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
fn clear_null_subs(def: &AttributeDef, obj: &mut Map<String, Value>, raw: &Value) {
    if let Value::Object(r) = raw {
        for (k, v) in r {
            if v.is_null() {
                if let Some(sub) = find_def(def.sub_attributes, k) {
                    if sub.mutability != Mutability::ReadOnly {
                        obj.remove(sub.name);
                    }
                }
            }
        }
    }
}

fn has_value(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

fn remove_ci(c: &mut Map<String, Value>, name: &str) -> Option<Value> {
    let key = c.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()?;
    c.remove(&key)
}

/// Make an existing key use the schema's spelling.
fn normalize_key(c: &mut Map<String, Value>, name: &str) {
    if !c.contains_key(name) {
        if let Some(v) = remove_ci(c, name) {
            c.insert(name.to_string(), v);
        }
    }
}

fn take_array(c: &mut Map<String, Value>, name: &str) -> Vec<Value> {
    match c.remove(name) {
        Some(Value::Array(a)) => a,
        None | Some(Value::Null) => Vec::new(),
        Some(v) => vec![v],
    }
}

fn put_array(c: &mut Map<String, Value>, name: &str, items: Vec<Value>) {
    if !items.is_empty() {
        c.insert(name.to_string(), Value::Array(items));
    }
}

fn as_list(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(a) => a.iter().collect(),
        v => vec![v],
    }
}

fn remove_indices(items: &mut Vec<Value>, indices: &[usize]) {
    let mut i = 0;
    items.retain(|_| {
        let keep = !indices.contains(&i);
        i += 1;
        keep
    });
}

fn set_sub(items: &mut [Value], indices: &[usize], sub: &str, v: &Value) {
    for &i in indices {
        if let Some(Value::Object(o)) = items.get_mut(i) {
            o.insert(sub.to_string(), v.clone());
        }
    }
}

/// Remove a sub-attribute; values left empty are dropped.
fn remove_sub(items: &mut Vec<Value>, indices: &[usize], sub: &str) {
    for &i in indices {
        if let Some(Value::Object(o)) = items.get_mut(i) {
            o.remove(sub);
        }
    }
    items.retain(has_value);
}

fn str_eq_ci(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (Some(Value::String(x)), Some(Value::String(y))) => x.eq_ignore_ascii_case(y),
        (x, y) => x == y,
    }
}

/// Add one value to a multi-valued attribute and return its index: an equal
/// value is not duplicated, and a complex value with the same `value` and
/// `type` as an existing one is merged into it (re-adding an email with
/// `primary: true` marks it primary rather than duplicating it).
fn add_item(items: &mut Vec<Value>, new: Value) -> usize {
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
fn item_matches(def: &AttributeDef, item: &Value, listed: &Value) -> bool {
    if item == listed {
        return true;
    }
    let Value::Object(o) = item else {
        return false;
    };
    let agree = |k: &str, want: &Value| {
        let exact = find_def(def.sub_attributes, k).is_some_and(|d| d.case_exact);
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
fn fix_primary(items: &mut [Value], touched: &[usize]) -> Result<(), ScimError> {
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
fn element_from_filter(def: &AttributeDef, f: &Filter) -> Option<Map<String, Value>> {
    fn walk(def: &AttributeDef, f: &Filter, out: &mut Map<String, Value>) -> bool {
        match f {
            Filter::And(l, r) => walk(def, l, out) && walk(def, r, out),
            Filter::Compare {
                path,
                op: CompareOp::Eq,
                value,
            } if path.urn.is_none() && path.sub_attr.is_none() && *value != CompValue::Null => {
                match find_def(def.sub_attributes, &path.attr) {
                    Some(sub) => {
                        out.insert(sub.name.to_string(), value.to_json());
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
fn member_filter_ids(f: &Filter, out: &mut Vec<String>) -> bool {
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
fn member_ids(v: &Value) -> Result<Vec<String>, ScimError> {
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

fn dedupe(ids: Vec<String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    ids.into_iter()
        .filter(|id| seen.insert(id.clone()))
        .collect()
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
    let is_ext = |k: &str| extension(rt, k).is_some() || k.eq_ignore_ascii_case("schemas");
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

#[cfg(test)]
mod tests;
