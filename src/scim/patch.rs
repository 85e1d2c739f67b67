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

mod apply;
mod parse;
mod values;

use std::fmt;

use serde_json::Value;

use crate::scim::error::ScimError;
use crate::scim::path::PatchPath;
use crate::scim::schema::AttributeDef;

pub use apply::{apply_patch, changed_attributes};
pub use parse::parse_patch;

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

#[cfg(test)]
mod tests;
