//! A user as the directory accepts it.

use serde_json::{Map, Value};

use uuid::Uuid;

use super::account::{linked_account, set_link};
use crate::scim::ScimError;

/// A user ready to be written: the canonical SCIM document and the values
/// derived from it that the store keeps as columns (so filters on them use
/// indexes). Made only by [`UserDraft::from_doc`], so a draft always has a
/// userName and columns that agree with its document.
#[derive(Clone, Debug)]
pub struct UserDraft {
    pub user_name: String,
    pub external_id: Option<String>,
    pub active: bool,
    /// The primary email, lowercased (see [`primary_email`]).
    pub primary_email: Option<String>,
    pub display_name: Option<String>,
    /// Every email value, lowercased, sorted and de-duplicated.
    pub emails: Vec<String>,
    /// The account the document names (see [`super::account`]).
    pub account_id: Option<Uuid>,
    /// The canonical document as JSON text.
    pub doc: String,
}

/// The columns of a stored document that an update compares with the
/// new ones, read without making a whole draft.
pub struct UserColumns {
    pub active: bool,
    pub primary_email: Option<String>,
    pub external_id: Option<String>,
}

impl UserDraft {
    /// [`UserColumns`] of a canonical document, as [`Self::from_doc`]
    /// derives them.
    pub fn columns_of(doc: &Map<String, Value>) -> UserColumns {
        UserColumns {
            active: doc.get("active").and_then(Value::as_bool).unwrap_or(true),
            primary_email: doc
                .get("emails")
                .and_then(Value::as_array)
                .and_then(|emails| primary_email(emails))
                .map(str::to_lowercase),
            external_id: doc
                .get("externalId")
                .and_then(Value::as_str)
                .map(str::to_owned),
        }
    }

    /// A draft from a canonical user document (one that
    /// `scim::resource::parse_resource` or a PATCH produced); refuses a
    /// document without a userName.
    pub fn from_doc(doc: &Map<String, Value>) -> Result<UserDraft, ScimError> {
        let user_name = match doc.get("userName").and_then(Value::as_str) {
            Some(u) if !u.trim().is_empty() => u.to_owned(),
            _ => {
                return Err(ScimError::invalid_value(
                    "missing required attribute 'userName'",
                ))
            }
        };
        let text = |name: &str| doc.get(name).and_then(Value::as_str).map(str::to_owned);
        Ok(UserDraft {
            primary_email: doc
                .get("emails")
                .and_then(Value::as_array)
                .and_then(|emails| primary_email(emails))
                .map(str::to_lowercase),
            emails: email_values(doc),
            external_id: text("externalId"),
            display_name: text("displayName"),
            active: doc.get("active").and_then(Value::as_bool).unwrap_or(true),
            account_id: linked_account(doc),
            user_name,
            doc: Value::Object(doc.clone()).to_string(),
        })
    }

    /// The same user linked to `account` (or to none): the link is the
    /// store's to keep, whatever a change did to the document.
    pub fn with_link(self, account: Option<Uuid>) -> UserDraft {
        if self.account_id == account {
            return self;
        }
        let mut doc = match serde_json::from_str(&self.doc) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        set_link(&mut doc, account);
        UserDraft {
            account_id: account,
            doc: Value::Object(doc).to_string(),
            ..self
        }
    }
}

/// The email a user is known by: the one marked `primary`, else the first.
/// Reports and the user's `primary_email` column both use it, so a user is
/// found in a report by the address its list shows.
pub fn primary_email(emails: &[Value]) -> Option<&str> {
    emails
        .iter()
        .find(|e| e.get("primary").and_then(Value::as_bool) == Some(true))
        .or_else(|| emails.first())
        .and_then(|e| e.get("value"))
        .and_then(Value::as_str)
}

/// Every email value of a user document, lowercased, sorted,
/// de-duplicated: the addresses a user can be looked up by.
pub fn email_values(doc: &Map<String, Value>) -> Vec<String> {
    let mut all: Vec<String> = doc
        .get("emails")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("value").and_then(Value::as_str))
        .map(str::to_lowercase)
        .collect();
    all.sort();
    all.dedup();
    all
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn doc(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(map) => map,
            _ => unreachable!("test documents are objects"),
        }
    }

    #[test]
    fn a_user_needs_a_user_name() {
        for d in [json!({}), json!({"userName": "  "}), json!({"userName": 5})] {
            let e = UserDraft::from_doc(&doc(d)).unwrap_err();
            assert_eq!(e.detail, "missing required attribute 'userName'");
        }
    }

    #[test]
    fn columns_follow_the_document() {
        let u = UserDraft::from_doc(&doc(json!({
            "userName": "Ann",
            "externalId": "x1",
            "displayName": "Ann A",
            "emails": [
                {"value": "B@Example.com"},
                {"value": "ann@Example.com", "primary": true},
                {"value": "b@example.com"}
            ]
        })))
        .unwrap();
        assert_eq!(u.user_name, "Ann");
        assert_eq!(u.external_id.as_deref(), Some("x1"));
        assert_eq!(u.display_name.as_deref(), Some("Ann A"));
        assert!(u.active, "active defaults to true");
        assert_eq!(u.primary_email.as_deref(), Some("ann@example.com"));
        assert_eq!(u.emails, ["ann@example.com", "b@example.com"]);
    }

    #[test]
    fn the_first_email_is_primary_when_none_is_marked() {
        let emails = [json!({"value": "first@x"}), json!({"value": "second@x"})];
        assert_eq!(primary_email(&emails), Some("first@x"));
        assert_eq!(primary_email(&[]), None);
        let inactive = UserDraft::from_doc(&doc(json!({"userName": "a", "active": false})));
        assert!(!inactive.unwrap().active);
    }
}
