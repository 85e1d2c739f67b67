//! Org-level accounts and their links to SCIM users: the rules, without
//! SQL. A SCIM user names its account in Atlassian's read-only extension
//! (`atlassianAccountId`), kept in the stored document so that every read,
//! filter and cache serves it with no join; the store keeps that value and
//! `users.account_id` equal.

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::scim::schema::ATLASSIAN_EXTERNAL_URN;

/// The extension's one attribute.
pub const ACCOUNT_ID_ATTR: &str = "atlassianAccountId";

/// The account a user document is linked to, as its extension says.
pub fn linked_account(doc: &Map<String, Value>) -> Option<Uuid> {
    doc.get(ATLASSIAN_EXTERNAL_URN)?
        .get(ACCOUNT_ID_ATTR)?
        .as_str()
        .and_then(|id| Uuid::parse_str(id).ok())
}

/// Links a user document to `account` (or unlinks it with `None`),
/// keeping `schemas` in step with the extension's presence.
pub fn set_link(doc: &mut Map<String, Value>, account: Option<Uuid>) {
    let schemas = doc
        .entry("schemas")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(list) = schemas {
        list.retain(|s| s.as_str() != Some(ATLASSIAN_EXTERNAL_URN));
        if account.is_some() {
            list.push(Value::from(ATLASSIAN_EXTERNAL_URN));
        }
    }
    match account {
        Some(id) => {
            let mut ext = Map::new();
            ext.insert(ACCOUNT_ID_ATTR.to_owned(), Value::from(id.to_string()));
            doc.insert(ATLASSIAN_EXTERNAL_URN.to_owned(), Value::Object(ext));
        }
        None => {
            doc.remove(ATLASSIAN_EXTERNAL_URN);
        }
    }
}

/// The domain of a lowercased email: what follows its last `@`, if
/// anything does. Whether an account is managed is decided by it.
pub fn email_domain(email: &str) -> Option<&str> {
    match email.rsplit_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() => Some(domain),
        _ => None,
    }
}

/// Managed accounts belong to the org (their email's domain is one it
/// verified); external ones only take part in it. Derived, never stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountType {
    Managed,
    External,
}

impl AccountType {
    pub fn of(managed: bool) -> Self {
        match managed {
            true => AccountType::Managed,
            false => AccountType::External,
        }
    }
}

/// Why a SCIM user's new email was not given to its account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConflictReason {
    /// The new email's domain is not verified by the org: the org may
    /// not take an address it has not proved it owns.
    DomainNotVerified,
    /// Another account of the org holds the address.
    EmailTaken,
}

impl ConflictReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictReason::DomainNotVerified => "domainNotVerified",
            ConflictReason::EmailTaken => "emailTaken",
        }
    }
}

/// What a SCIM user's new primary email makes of its account's email.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmailChange {
    /// They agree (any recorded conflict is over).
    Agree,
    /// The account takes the new email.
    Move,
    /// The account keeps its email; the disagreement is recorded.
    Conflict(ConflictReason),
}

/// The rule for a user's new primary email `scim_email` and its
/// account's `account_email`: the account follows only to a domain the
/// org verified (`domain_verified`) and only to an address no other
/// account holds (`taken`).
pub fn email_change(
    account_email: Option<&str>,
    scim_email: &str,
    domain_verified: bool,
    taken: bool,
) -> EmailChange {
    if account_email == Some(scim_email) {
        EmailChange::Agree
    } else if !domain_verified {
        EmailChange::Conflict(ConflictReason::DomainNotVerified)
    } else if taken {
        EmailChange::Conflict(ConflictReason::EmailTaken)
    } else {
        EmailChange::Move
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_link_keeps_schemas_in_step() {
        let mut doc =
            json!({"userName": "a", "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]})
                .as_object()
                .unwrap()
                .clone();
        let id = Uuid::new_v4();
        set_link(&mut doc, Some(id));
        set_link(&mut doc, Some(id));
        assert_eq!(linked_account(&doc), Some(id));
        let schemas = doc["schemas"].as_array().unwrap();
        assert_eq!(schemas.len(), 2);
        assert_eq!(schemas[1], ATLASSIAN_EXTERNAL_URN);
        set_link(&mut doc, None);
        assert_eq!(linked_account(&doc), None);
        assert_eq!(doc["schemas"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn domains_of_emails() {
        assert_eq!(email_domain("ann@example.com"), Some("example.com"));
        assert_eq!(email_domain("a@b@example.com"), Some("example.com"));
        for bad in ["ann", "@example.com", "ann@"] {
            assert_eq!(email_domain(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_account_follows_only_to_a_verified_free_address() {
        use ConflictReason::*;
        let rule = email_change;
        assert_eq!(
            rule(Some("a@x.com"), "a@x.com", false, true),
            EmailChange::Agree
        );
        assert_eq!(
            rule(Some("a@x.com"), "b@x.com", true, false),
            EmailChange::Move
        );
        assert_eq!(rule(None, "b@x.com", true, false), EmailChange::Move);
        assert_eq!(
            rule(Some("a@x.com"), "b@y.com", false, false),
            EmailChange::Conflict(DomainNotVerified)
        );
        assert_eq!(
            rule(Some("a@x.com"), "b@x.com", true, true),
            EmailChange::Conflict(EmailTaken)
        );
    }
}
