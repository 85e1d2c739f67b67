//! The organisation's access model: sites, their products, the roles a
//! group's grant gives, and which groups may be a product's default
//! groups. Values are parsed once here ("parse, don't validate"), so the
//! store and the HTTP layer only ever see valid ones.

use std::fmt;

/// The product keys Atlassian's sites offer; any other key of the same
/// shape is accepted too, so a new product needs no release.
pub const KNOWN_PRODUCTS: [&str; 4] = [
    "jira-software",
    "jira-service-management",
    "confluence",
    "bitbucket",
];

/// The longest product key, in characters.
pub const MAX_PRODUCT_KEY: usize = 64;

/// A product's key: 1 to 64 of `a-z`, `0-9` and `-`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProductKey(String);

impl ProductKey {
    pub fn parse(raw: &str) -> Result<ProductKey, String> {
        let shaped = (1..=MAX_PRODUCT_KEY).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if shaped {
            Ok(ProductKey(raw.to_owned()))
        } else {
            Err(format!(
                "a product key is 1 to {MAX_PRODUCT_KEY} of a-z, 0-9 and '-' (such as {}), not '{}'",
                KNOWN_PRODUCTS.join(", "),
                raw.chars().take(80).collect::<String>()
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProductKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The longest site URL, in characters as sent and in bytes once
/// normalised.
pub const MAX_SITE_URL: usize = 2048;

/// A site's address: an absolute `http` or `https` URL with a host and no
/// credentials, normalised (scheme and host lowercased, default port
/// dropped, no trailing `/` on a bare host) so one site has one spelling
/// and a duplicate is found by equality.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteUrl(String);

impl SiteUrl {
    pub fn parse(raw: &str) -> Result<SiteUrl, String> {
        let refuse = |why: &str| Err(format!("url must be an absolute http(s) URL: {why}"));
        if raw.chars().count() > MAX_SITE_URL {
            return refuse("it is too long");
        }
        let url = match url::Url::parse(raw.trim()) {
            Ok(url) => url,
            Err(e) => return refuse(&e.to_string()),
        };
        if !matches!(url.scheme(), "http" | "https") {
            return refuse("the scheme is not http or https");
        }
        if url.host_str().is_none_or(str::is_empty) {
            return refuse("it has no host");
        }
        if !url.username().is_empty() || url.password().is_some() {
            return refuse("it may not carry credentials");
        }
        if url.query().is_some() || url.fragment().is_some() {
            return refuse("it may not have a query or a fragment");
        }
        let mut text = url.as_str().to_owned();
        if url.path() == "/" {
            text.pop();
        }
        if text.len() > MAX_SITE_URL {
            return refuse("it is too long");
        }
        Ok(SiteUrl(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a grant gives a group's members on a product.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn parse(raw: &str) -> Option<Role> {
        match raw {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }
}

/// Where a group lives: synced from an identity provider (a SCIM group of
/// a directory) or kept by the admin in the org.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupKind {
    Scim,
    Org,
}

impl GroupKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupKind::Scim => "scim",
            GroupKind::Org => "org",
        }
    }
}

/// Why a synced group is never a default group (Atlassian's own advice).
pub const SYNCED_DEFAULT_GROUP: &str = "a group synced from an identity provider cannot be a \
     default group: its membership is managed by the identity provider, and adding users \
     outside it would collide with provisioning";

/// The longest org group description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 1000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_keys_are_the_known_ones_or_of_their_shape() {
        for ok in KNOWN_PRODUCTS
            .iter()
            .copied()
            .chain(["x", "a-1", "statuspage"])
        {
            assert_eq!(ProductKey::parse(ok).unwrap().as_str(), ok);
        }
        let longest = "a".repeat(MAX_PRODUCT_KEY);
        assert!(ProductKey::parse(&longest).is_ok());
        for bad in [
            "",
            "Jira",
            "jira software",
            "jira_software",
            "é",
            &format!("{longest}a"),
        ] {
            assert!(ProductKey::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn site_urls_are_absolute_http_and_normalised() {
        let norm = |s: &str| SiteUrl::parse(s).unwrap().as_str().to_owned();
        assert_eq!(
            norm("https://Acme.Atlassian.NET/"),
            "https://acme.atlassian.net"
        );
        assert_eq!(
            norm("https://acme.atlassian.net"),
            "https://acme.atlassian.net"
        );
        assert_eq!(
            norm("HTTPS://acme.atlassian.net:443"),
            "https://acme.atlassian.net"
        );
        assert_eq!(
            norm("http://localhost:8080/wiki"),
            "http://localhost:8080/wiki"
        );
        for bad in [
            "",
            "acme.atlassian.net",
            "/wiki",
            "ftp://acme.example",
            "mailto:a@b.c",
            "https://user:pw@acme.example",
            "https://acme.example/?q=1",
            "https://acme.example/#top",
            "https://",
        ] {
            assert!(SiteUrl::parse(bad).is_err(), "{bad}");
        }
        let long = format!("https://a.example/{}", "p".repeat(MAX_SITE_URL));
        assert!(SiteUrl::parse(&long).is_err());
    }

    #[test]
    fn roles_are_user_or_admin() {
        assert_eq!(Role::parse("user"), Some(Role::User));
        assert_eq!(Role::parse("admin"), Some(Role::Admin));
        assert_eq!(Role::parse("Admin"), None);
        assert_eq!(Role::Admin.as_str(), "admin");
    }
}
