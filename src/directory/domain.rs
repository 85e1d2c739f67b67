//! An organisation's email domains: what a domain name is (a parsed
//! [`DomainName`], never a raw string past the edge), which public mail
//! domains no organisation can claim, the token an owner publishes to prove
//! a domain is theirs, and how a published record or file is judged.
//! Pure: the DNS and HTTP look-ups themselves are `domain_check.rs`'s.

use std::fmt;

use base64::Engine;
use rand::RngCore;

/// The longest domain name, in characters, without the trailing dot
/// (RFC 1035 §2.3.4).
pub const MAX_NAME_LEN: usize = 253;

/// The longest label (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;

/// Where an owner publishes the token over HTTP, on the domain itself.
pub const HTTP_FILE_PATH: &str = "/.well-known/scimd-verification.txt";

/// What the TXT record and the file start with, before the token.
pub const TOKEN_PREFIX: &str = "scimd-verification=";

/// Mail services anyone can get an address at: an organisation cannot own
/// them, so their users can never be its managed accounts, and adding one
/// is refused outright (subdomains too). Sorted, for the docs.
pub const PUBLIC_MAIL_DOMAINS: &[&str] = &[
    "126.com",
    "163.com",
    "aol.com",
    "fastmail.com",
    "gmail.com",
    "gmx.com",
    "gmx.de",
    "gmx.net",
    "googlemail.com",
    "hey.com",
    "hotmail.com",
    "icloud.com",
    "live.com",
    "mail.com",
    "mail.ru",
    "me.com",
    "msn.com",
    "naver.com",
    "outlook.com",
    "pm.me",
    "proton.me",
    "protonmail.com",
    "qq.com",
    "rambler.ru",
    "tutanota.com",
    "web.de",
    "yahoo.com",
    "yandex.com",
    "yandex.ru",
    "zoho.com",
];

/// A domain name in its one stored form: ASCII (international names as
/// punycode), lowercase, without a trailing dot; LDH labels of 1 to 63
/// characters, at least two of them, at most 253 characters; not an IP
/// address.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainName(String);

/// Why a string is not a domain name an organisation can add.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DomainNameError {
    #[error("'{0}' is not a domain name: {1}")]
    Invalid(String, &'static str),
    #[error(
        "'{0}' is a public mail domain: anyone can have an address there, so no organisation \
         can verify it or manage its accounts"
    )]
    PublicMailDomain(String),
}

impl DomainName {
    /// Parses what a person typed: surrounding white space, upper case and
    /// one trailing dot are forgiven; Unicode is converted to punycode
    /// (IDNA, UTS #46).
    pub fn parse(raw: &str) -> Result<DomainName, DomainNameError> {
        let shown: String = raw.chars().take(MAX_NAME_LEN + 2).collect();
        let invalid = |why: &'static str| DomainNameError::Invalid(shown.clone(), why);
        let trimmed = raw.trim();
        if trimmed.parse::<std::net::IpAddr>().is_ok()
            || (trimmed.starts_with('[') && trimmed.ends_with(']'))
        {
            return Err(invalid("an IP address is not a domain name"));
        }
        let name = trimmed.strip_suffix('.').unwrap_or(trimmed);
        if name.is_empty() {
            return Err(invalid("it is empty"));
        }
        // Checked before IDNA, which would otherwise work on any length.
        if name.len() > 4 * MAX_NAME_LEN {
            return Err(invalid("it is longer than 253 characters"));
        }
        let ascii = if name.is_ascii() {
            name.to_ascii_lowercase()
        } else {
            idna::domain_to_ascii(name)
                .map_err(|_| invalid("it is not a valid internationalised domain name"))?
        };
        check_ldh(&ascii).map_err(invalid)?;
        Ok(DomainName(ascii))
    }

    /// [`Self::parse`], refusing public mail domains too: the rule for a
    /// domain an organisation adds.
    pub fn parse_claimable(raw: &str) -> Result<DomainName, DomainNameError> {
        let name = DomainName::parse(raw)?;
        if name.is_public_mail_domain() {
            return Err(DomainNameError::PublicMailDomain(name.0));
        }
        Ok(name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is a public mail domain or a subdomain of one.
    pub fn is_public_mail_domain(&self) -> bool {
        PUBLIC_MAIL_DOMAINS.iter().any(|public| {
            self.0 == *public
                || self
                    .0
                    .strip_suffix(public)
                    .is_some_and(|rest| rest.ends_with('.'))
        })
    }

    /// The TXT record's name: the domain itself.
    pub fn txt_record_name(&self) -> &str {
        &self.0
    }

    /// Where the file is expected, by default over HTTPS.
    pub fn file_url(&self) -> String {
        format!("https://{}{HTTP_FILE_PATH}", self.0)
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// LDH labels (RFC 1123 §2.1), at least two, the last not all digits (a
/// dotted IPv4 address is not a name).
fn check_ldh(name: &str) -> Result<(), &'static str> {
    if name.len() > MAX_NAME_LEN {
        return Err("it is longer than 253 characters");
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 {
        return Err("it needs at least two labels (like example.com)");
    }
    for label in &labels {
        if label.is_empty() {
            return Err("it has an empty label (two dots in a row)");
        }
        if label.len() > MAX_LABEL_LEN {
            return Err("a label is longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err("labels may hold only letters, digits and hyphens");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label may not start or end with a hyphen");
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("an IP address is not a domain name");
    }
    Ok(())
}

/// The domain of an email address (after its last `@`), lowercased, or
/// None when there is none.
pub fn email_domain(email: &str) -> Option<String> {
    let (_, domain) = email.rsplit_once('@')?;
    let domain = domain.trim().trim_end_matches('.');
    (!domain.is_empty()).then(|| domain.to_lowercase())
}

/// A fresh token: 32 random bytes, base64url without padding (43
/// characters), so it is safe in a TXT record, a URL and a file alike.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The text the owner publishes, as the TXT record's value and as the
/// file's content.
pub fn expected_text(token: &str) -> String {
    format!("{TOKEN_PREFIX}{token}")
}

/// How a domain's ownership is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckMethod {
    /// A TXT record on the domain.
    Dns,
    /// A file at [`HTTP_FILE_PATH`] on the domain.
    Http,
}

impl CheckMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckMethod::Dns => "dns",
            CheckMethod::Http => "http",
        }
    }

    pub fn parse(s: &str) -> Option<CheckMethod> {
        match s {
            "dns" => Some(CheckMethod::Dns),
            "http" => Some(CheckMethod::Http),
            _ => None,
        }
    }
}

/// What a check found: verified or not, and a sentence that says why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckOutcome {
    pub verified: bool,
    pub reason: String,
}

impl CheckOutcome {
    pub fn verified(reason: impl Into<String>) -> Self {
        CheckOutcome {
            verified: true,
            reason: reason.into(),
        }
    }

    pub fn failed(reason: impl Into<String>) -> Self {
        CheckOutcome {
            verified: false,
            reason: reason.into(),
        }
    }
}

/// The most found records a reason quotes.
const QUOTED_RECORDS: usize = 5;

/// Judges the TXT records found at the domain (each one's strings joined,
/// as RFC 7208 §3.3 does for long values).
pub fn judge_txt(domain: &DomainName, token: &str, records: &[String]) -> CheckOutcome {
    let expected = expected_text(token);
    if records.iter().any(|r| r.trim() == expected) {
        return CheckOutcome::verified(format!("TXT record {expected} found at {domain}"));
    }
    let found = if records.is_empty() {
        "no TXT records".to_owned()
    } else {
        let mut quoted: Vec<String> = records
            .iter()
            .take(QUOTED_RECORDS)
            .map(|r| format!("\"{}\"", truncate(r, 100)))
            .collect();
        if records.len() > QUOTED_RECORDS {
            quoted.push(format!("and {} more", records.len() - QUOTED_RECORDS));
        }
        quoted.join(", ")
    };
    CheckOutcome::failed(format!(
        "no TXT record {expected} found at {domain}; found: {found}"
    ))
}

/// Judges the file's body: it must have the expected text on a line of
/// its own (white space around it ignored).
pub fn judge_file(url: &str, token: &str, body: &str) -> CheckOutcome {
    let expected = expected_text(token);
    if body.lines().any(|line| line.trim() == expected) {
        CheckOutcome::verified(format!("{url} contains {expected}"))
    } else {
        // The body is not quoted: the URL may reach a host the admin
        // could not otherwise read from.
        CheckOutcome::failed(format!("{url} does not contain the line {expected}"))
    }
}

fn truncate(s: &str, max_chars: usize) -> String {
    let mut out: String = s.chars().take(max_chars).collect();
    if s.chars().nth(max_chars).is_some() {
        out.push('…');
    }
    out.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> String {
        DomainName::parse(raw).unwrap().as_str().to_owned()
    }

    fn bad(raw: &str) -> String {
        match DomainName::parse(raw) {
            Err(DomainNameError::Invalid(_, why)) => why.to_owned(),
            other => panic!("{raw}: {other:?}"),
        }
    }

    #[test]
    fn names_are_normalised() {
        assert_eq!(ok("Example.COM"), "example.com");
        assert_eq!(ok("example.com."), "example.com");
        assert_eq!(ok("  sub.example.co.uk "), "sub.example.co.uk");
        assert_eq!(ok("xn--bcher-kva.example"), "xn--bcher-kva.example");
        assert_eq!(ok("Bücher.example"), "xn--bcher-kva.example");
        assert_eq!(ok("a-b.c1"), "a-b.c1");
        assert_eq!(ok("1.example.com"), "1.example.com");
        let longest = format!("{}.com", vec!["a".repeat(63); 3].join("."));
        assert_eq!(longest.len(), 195);
        assert_eq!(ok(&longest), longest);
        let max = format!(
            "{}.{}.c{}",
            "a".repeat(63),
            vec!["b".repeat(63); 2].join("."),
            "c".repeat(60)
        );
        assert_eq!(max.len(), 253);
        assert_eq!(ok(&max), max);
    }

    #[test]
    fn what_is_not_a_hostname_is_refused_with_a_reason() {
        assert!(bad("").contains("empty"));
        assert!(bad(".").contains("empty"));
        assert!(bad("localhost").contains("two labels"));
        assert!(bad("example..com").contains("empty label"));
        assert!(bad(".example.com").contains("empty label"));
        assert!(bad("example.com..").contains("empty label"));
        assert!(bad("exa_mple.com").contains("letters, digits"));
        assert!(bad("exa mple.com").contains("letters, digits"));
        assert!(bad("-example.com").contains("hyphen"));
        assert!(bad("example-.com").contains("hyphen"));
        assert!(bad("192.168.0.1").contains("IP address"));
        assert!(bad("10.0.0.300").contains("IP address"));
        assert!(bad("::1").contains("IP address"));
        assert!(bad("[::1]").contains("IP address"));
        assert!(bad("example.123").contains("IP address"));
        assert!(bad("user@example.com").contains("letters, digits"));
        assert!(bad("http://example.com").contains("letters, digits"));
        assert!(bad(&format!("{}.com", "a".repeat(64))).contains("63"));
        let too_long = format!("{}.{}", "a".repeat(63), vec!["b".repeat(63); 3].join("."));
        assert_eq!(too_long.len(), 255);
        assert!(bad(&too_long).contains("253"));
        assert!(bad(&"a.".repeat(5000)).contains("253"));
        assert!(bad("exa\u{0}mple.com").contains("letters"));
    }

    #[test]
    fn public_mail_domains_and_their_subdomains_cannot_be_claimed() {
        for public in [
            "gmail.com",
            "GMail.com.",
            "mail.yahoo.com",
            "proton.me",
            "qq.com",
        ] {
            assert!(
                matches!(
                    DomainName::parse_claimable(public),
                    Err(DomainNameError::PublicMailDomain(_))
                ),
                "{public}"
            );
        }
        for own in ["example.com", "notgmail.com", "gmail.com.example.org"] {
            assert!(DomainName::parse_claimable(own).is_ok(), "{own}");
        }
        let mut sorted = PUBLIC_MAIL_DOMAINS.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted, PUBLIC_MAIL_DOMAINS, "sorted and without repeats");
        for d in PUBLIC_MAIL_DOMAINS {
            assert_eq!(DomainName::parse(d).unwrap().as_str(), *d);
        }
    }

    #[test]
    fn tokens_are_long_random_and_url_safe() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }

    #[test]
    fn email_domains_are_what_follows_the_last_at() {
        assert_eq!(
            email_domain("Ann@Example.COM").as_deref(),
            Some("example.com")
        );
        assert_eq!(email_domain("a\"@\"b@x.org").as_deref(), Some("x.org"));
        assert_eq!(email_domain("no-at-sign"), None);
        assert_eq!(email_domain("trailing@"), None);
    }

    #[test]
    fn txt_records_and_files_are_judged_with_reasons() {
        let d = DomainName::parse("example.com").unwrap();
        let yes = judge_txt(
            &d,
            "tok",
            &["v=spf1 -all".into(), "scimd-verification=tok".into()],
        );
        assert!(yes.verified);
        let no = judge_txt(&d, "tok", &["scimd-verification=other".into()]);
        assert!(!no.verified);
        assert_eq!(
            no.reason,
            "no TXT record scimd-verification=tok found at example.com; \
             found: \"scimd-verification=other\""
        );
        let none = judge_txt(&d, "tok", &[]);
        assert!(
            none.reason.ends_with("found: no TXT records"),
            "{}",
            none.reason
        );
        let url = "https://example.com/.well-known/scimd-verification.txt";
        assert!(judge_file(url, "tok", "scimd-verification=tok\n").verified);
        assert!(judge_file(url, "tok", "hello\r\n  scimd-verification=tok  \r\n").verified);
        assert!(!judge_file(url, "tok", "scimd-verification=tokX").verified);
        assert!(!judge_file(url, "tok", "").verified);
    }
}
