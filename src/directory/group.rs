//! A group and changes to its membership, as the directory accepts them.

use std::collections::HashSet;

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::scim::patch::MemberChange as RequestedMemberChange;
use crate::scim::ScimError;

/// A group ready to be written. Made only by [`GroupDraft::from_doc`], so
/// a draft always has a displayName.
#[derive(Clone, Debug)]
pub struct GroupDraft {
    pub display_name: String,
    pub external_id: Option<String>,
    /// The canonical document as JSON text (members are rows, never part
    /// of it).
    pub doc: String,
}

impl GroupDraft {
    /// A draft from a canonical group document; refuses one without a
    /// displayName.
    pub fn from_doc(doc: &Map<String, Value>) -> Result<GroupDraft, ScimError> {
        let display_name = match doc.get("displayName").and_then(Value::as_str) {
            Some(n) if !n.trim().is_empty() => n.to_owned(),
            _ => {
                return Err(ScimError::invalid_value(
                    "missing required attribute 'displayName'",
                ))
            }
        };
        Ok(GroupDraft {
            display_name,
            external_id: doc
                .get("externalId")
                .and_then(Value::as_str)
                .map(str::to_owned),
            doc: Value::Object(doc.clone()).to_string(),
        })
    }
}

/// A change to a group's membership with the member ids parsed, distinct
/// within each change, in request order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberChange {
    Add(Vec<Uuid>),
    Remove(Vec<Uuid>),
    RemoveAll,
    Replace(Vec<Uuid>),
}

impl MemberChange {
    /// Parses the ids a request named. Only ids of this directory can be
    /// members, and every id here is a UUID, so a value that is not one
    /// names no member.
    pub fn parse(requested: &RequestedMemberChange) -> Result<MemberChange, ScimError> {
        Ok(match requested {
            RequestedMemberChange::Add(v) => MemberChange::Add(member_ids(v)?),
            RequestedMemberChange::Remove(v) => MemberChange::Remove(member_ids(v)?),
            RequestedMemberChange::RemoveAll => MemberChange::RemoveAll,
            RequestedMemberChange::Replace(v) => MemberChange::Replace(member_ids(v)?),
        })
    }

    /// The ids it adds (a replaced list is added after the old one is
    /// cleared).
    pub fn added(&self) -> &[Uuid] {
        match self {
            MemberChange::Add(ids) | MemberChange::Replace(ids) => ids,
            MemberChange::Remove(_) | MemberChange::RemoveAll => &[],
        }
    }
}

/// A group's new state and the member changes that lead to it: what a PUT
/// or PATCH of a group asks the store to write.
#[derive(Clone, Debug)]
pub struct GroupChange {
    pub group: GroupDraft,
    pub members: Vec<MemberChange>,
}

impl GroupChange {
    /// Checks the member changes for group `group_id`: ids must parse, and
    /// a group cannot be a member of itself. Whether each member exists in
    /// the directory is the store's to find out.
    pub fn new(
        group_id: Uuid,
        group: GroupDraft,
        requested: &[RequestedMemberChange],
    ) -> Result<GroupChange, ScimError> {
        let mut members = Vec::with_capacity(requested.len());
        for change in requested {
            let change = MemberChange::parse(change)?;
            if change.added().contains(&group_id) {
                return Err(ScimError::invalid_value(
                    "a group cannot be a member of itself",
                ));
            }
            members.push(change);
        }
        Ok(GroupChange { group, members })
    }
}

/// Parses member ids, keeping the first of each.
pub fn member_ids(values: &[String]) -> Result<Vec<Uuid>, ScimError> {
    let mut seen = HashSet::with_capacity(values.len());
    let mut ids = Vec::with_capacity(values.len());
    for v in values {
        let id = Uuid::parse_str(v)
            .map_err(|_| ScimError::invalid_value(format!("member '{v}' does not exist")))?;
        if seen.insert(id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_group_needs_a_display_name() {
        let Value::Object(doc) = json!({"displayName": " "}) else {
            unreachable!("an object")
        };
        let e = GroupDraft::from_doc(&doc).unwrap_err();
        assert_eq!(e.detail, "missing required attribute 'displayName'");
    }

    #[test]
    fn member_ids_parse_and_deduplicate() {
        let a = Uuid::new_v4();
        let b = Uuid::new_v4();
        let ids = member_ids(&[a.to_string(), b.to_string(), a.to_string()]).unwrap();
        assert_eq!(ids, [a, b]);
        let e = member_ids(&["nope".into()]).unwrap_err();
        assert_eq!(e.detail, "member 'nope' does not exist");
    }

    #[test]
    fn a_group_cannot_contain_itself() {
        let Value::Object(doc) = json!({"displayName": "g"}) else {
            unreachable!("an object")
        };
        let group = GroupDraft::from_doc(&doc).unwrap();
        let id = Uuid::new_v4();
        for requested in [
            RequestedMemberChange::Add(vec![id.to_string()]),
            RequestedMemberChange::Replace(vec![id.to_string()]),
        ] {
            let e = GroupChange::new(id, group.clone(), &[requested]).unwrap_err();
            assert_eq!(e.detail, "a group cannot be a member of itself");
        }
        let removal = [RequestedMemberChange::Remove(vec![id.to_string()])];
        assert!(GroupChange::new(id, group, &removal).is_ok());
    }
}
