//! The welcome message an account gets when the sync engine creates it
//! and its directory's sync settings say `emailNewUsers`: plain text,
//! naming the organisation and the sites and products the account can
//! now use.

use uuid::Uuid;

use super::{NewEmail, Recipient};

/// The message kind, as the outbox lists it.
pub const KIND: &str = "welcome";

/// The longest organisation, site or product name put in a message, in
/// characters; a longer one is cut (with `…`).
const MAX_NAME_CHARS: usize = 200;

/// One site's product the new account has access to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProductAccess {
    /// The site's name.
    pub site: String,
    /// The site's URL, where the account signs in.
    pub site_url: Option<String>,
    /// The product's name or key (`jira-software`, `Confluence`).
    pub product: String,
}

/// What a welcome message is about.
#[derive(Clone, Debug)]
pub struct Welcome<'a> {
    pub org_id: Uuid,
    pub org_name: &'a str,
    pub directory_id: Option<Uuid>,
    pub account_id: Uuid,
    pub recipient: Recipient,
    /// The account's display name, if it has one.
    pub display_name: Option<&'a str>,
    /// What the account can use; empty when it has no access yet.
    pub access: &'a [ProductAccess],
}

/// The key that lets one account be welcomed once per organisation, however
/// often a run that created it is resumed or repeated.
pub fn dedup_key(account_id: Uuid) -> String {
    format!("welcome:{account_id}")
}

/// A name as one line of a message: control characters (a line break
/// would end a header early) become spaces, and a very long name is cut.
fn one_line(raw: &str) -> String {
    let clean: String = raw
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.chars().count() > MAX_NAME_CHARS {
        let mut cut: String = clean.chars().take(MAX_NAME_CHARS - 1).collect();
        cut.push('…');
        cut
    } else {
        clean
    }
}

/// The welcome message to queue for `w`.
pub fn welcome_email(w: &Welcome<'_>) -> NewEmail {
    let org = one_line(w.org_name);
    let subject = format!("Welcome to {org}");
    let greeting = match w.display_name.map(one_line).filter(|n| !n.is_empty()) {
        Some(name) => format!("Hello {name},"),
        None => "Hello,".to_owned(),
    };
    let mut body = format!(
        "{greeting}\n\n{org} has created an account for you ({}).\n",
        w.recipient.as_str()
    );
    if w.access.is_empty() {
        body.push_str("\nYour administrator will give you access to products soon.\n");
    } else {
        body.push_str("\nYou now have access to:\n\n");
        for a in w.access {
            body.push_str(&format!(
                "  - {} on {}",
                one_line(&a.product),
                one_line(&a.site)
            ));
            if let Some(url) = &a.site_url {
                body.push_str(&format!(" ({})", one_line(url)));
            }
            body.push('\n');
        }
    }
    body.push_str(&format!(
        "\nThis message was sent because your organisation's directory \
         provisioned your account. If you did not expect it, contact the \
         administrators of {org}.\n"
    ));
    NewEmail {
        org_id: w.org_id,
        directory_id: w.directory_id,
        account_id: Some(w.account_id),
        kind: KIND,
        dedup_key: Some(dedup_key(w.account_id)),
        recipient: w.recipient.clone(),
        subject,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn welcome<'a>(access: &'a [ProductAccess], name: Option<&'a str>) -> Welcome<'a> {
        Welcome {
            org_id: Uuid::nil(),
            org_name: "Acme\r\nBcc: eve@example.com",
            directory_id: None,
            account_id: Uuid::max(),
            recipient: Recipient::parse("ada@acme.example").unwrap(),
            display_name: name,
            access,
        }
    }

    #[test]
    fn names_the_organisation_and_each_product_on_its_site() {
        let access = [
            ProductAccess {
                site: "acme".into(),
                site_url: Some("https://acme.atlassian.net".into()),
                product: "jira-software".into(),
            },
            ProductAccess {
                site: "acme-docs".into(),
                site_url: None,
                product: "confluence".into(),
            },
        ];
        let m = welcome_email(&welcome(&access, Some("Ada Lovelace")));
        // The organisation's name cannot break the subject header.
        assert_eq!(m.subject, "Welcome to Acme  Bcc: eve@example.com");
        assert!(m.body.starts_with("Hello Ada Lovelace,\n"), "{}", m.body);
        assert!(m.body.contains("(ada@acme.example)"));
        assert!(m
            .body
            .contains("  - jira-software on acme (https://acme.atlassian.net)\n"));
        assert!(m.body.contains("  - confluence on acme-docs\n"));
        assert_eq!(m.kind, "welcome");
        assert_eq!(
            m.dedup_key.as_deref(),
            Some("welcome:ffffffff-ffff-ffff-ffff-ffffffffffff")
        );
        assert_eq!(m.account_id, Some(Uuid::max()));
    }

    #[test]
    fn without_access_or_name_it_still_reads() {
        let m = welcome_email(&welcome(&[], None));
        assert!(m.body.starts_with("Hello,\n"));
        assert!(m.body.contains("give you access to products soon"));
        let long = "x".repeat(500);
        let mut w = welcome(&[], None);
        w.org_name = &long;
        let m = welcome_email(&w);
        assert_eq!(m.subject.chars().count(), "Welcome to ".len() + 200);
        assert!(m.subject.ends_with('…'));
    }
}
