use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use uuid::Uuid;

use super::*;
use crate::scim::filter::parse_filter;
use crate::scim::ScimType;

const NOW: i64 = 1_800_000_000;

fn key() -> CursorKey {
    CursorKey::new(b"0123456789abcdef0123456789abcdef")
}

fn dir() -> Uuid {
    Uuid::from_u128(0x1234)
}

fn scope(filter: Option<&str>) -> CursorScope {
    let f = filter.map(|f| parse_filter(f).unwrap());
    CursorScope::new(dir(), "Users", f.as_ref())
}

fn at() -> Position {
    Position {
        list: CursorList::Groups,
        created_at: 1_700_000_000_123_456,
        id: Uuid::from_u128(0xdead_beef),
    }
}

fn refused(token: &str, scope: &CursorScope, count: i64, now: i64) -> (ScimType, String) {
    let e = key().decode(token, scope, count, now).unwrap_err();
    assert_eq!(e.status, 400);
    (e.scim_type.unwrap(), e.detail)
}

#[test]
fn a_cursor_names_the_position_it_was_made_at() {
    let s = scope(Some(r#"userName sw "J""#));
    let token = key().encode(&s, at(), 10, NOW + 600);
    assert_eq!(key().decode(&token, &s, 10, NOW), Ok(at()));
    // Until and including its expiry second.
    assert_eq!(key().decode(&token, &s, 10, NOW + 600), Ok(at()));
    let start = Position::start(CursorList::Users);
    let token = key().encode(&s, start, 1, NOW);
    assert_eq!(key().decode(&token, &s, 1, NOW), Ok(start));
}

#[test]
fn cursors_use_only_unreserved_characters() {
    let token = key().encode(&scope(None), at(), 100, NOW);
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)),
        "{token}"
    );
}

#[test]
fn the_same_filter_however_written_is_the_same_query() {
    let token = key().encode(&scope(Some(r#"userName sw "J""#)), at(), 5, NOW);
    let same = scope(Some(r#"  userName  SW   "J" "#));
    assert_eq!(key().decode(&token, &same, 5, NOW), Ok(at()));
}

#[test]
fn another_query_directory_endpoint_or_key_is_an_invalid_cursor() {
    let s = scope(Some(r#"userName sw "J""#));
    let token = key().encode(&s, at(), 5, NOW + 60);
    let others = [
        scope(Some(r#"userName sw "K""#)),
        scope(None),
        CursorScope::new(Uuid::from_u128(0x5678), "Users", None),
        CursorScope::new(
            dir(),
            "Groups",
            Some(&parse_filter(r#"userName sw "J""#).unwrap()),
        ),
    ];
    for other in others {
        assert_eq!(refused(&token, &other, 5, NOW).0, ScimType::InvalidCursor);
    }
    let foreign = CursorKey::new(b"another secret");
    let e = foreign.decode(&token, &s, 5, NOW).unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::InvalidCursor));
}

#[test]
fn altered_or_malformed_cursors_are_invalid() {
    let s = scope(None);
    let token = key().encode(&s, at(), 5, NOW + 60);
    let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
    // Every byte matters: the position, the expiry, the count, the MAC.
    for i in 0..bytes.len() {
        bytes[i] ^= 1;
        let altered = URL_SAFE_NO_PAD.encode(&bytes);
        bytes[i] ^= 1;
        assert_eq!(
            refused(&altered, &s, 5, NOW).0,
            ScimType::InvalidCursor,
            "byte {i}"
        );
    }
    let short = URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() - 1]);
    for bad in ["x", "!!!!", "", &short, &format!("{token}A"), "a b"] {
        assert_eq!(refused(bad, &s, 5, NOW).0, ScimType::InvalidCursor, "{bad}");
    }
}

#[test]
fn an_authentic_cursor_past_its_time_is_expired() {
    let s = scope(None);
    let token = key().encode(&s, at(), 5, NOW);
    let (t, detail) = refused(&token, &s, 5, NOW + 1);
    assert_eq!(t, ScimType::ExpiredCursor);
    assert!(detail.contains("expired"), "{detail}");
    // An altered expiry is not an expired cursor but an invalid one.
    let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
    bytes[26 + 7] ^= 0x10;
    let altered = URL_SAFE_NO_PAD.encode(&bytes);
    assert_eq!(refused(&altered, &s, 5, NOW + 1).0, ScimType::InvalidCursor);
}

#[test]
fn another_count_is_an_invalid_count() {
    let s = scope(None);
    let token = key().encode(&s, at(), 5, NOW + 60);
    let (t, detail) = refused(&token, &s, 6, NOW);
    assert_eq!(t, ScimType::InvalidCount);
    assert!(detail.contains("count must stay 5"), "{detail}");
}

#[test]
fn scim_types_are_the_rfcs_names() {
    assert_eq!(ScimType::InvalidCursor.as_str(), "invalidCursor");
    assert_eq!(ScimType::ExpiredCursor.as_str(), "expiredCursor");
    assert_eq!(ScimType::InvalidCount.as_str(), "invalidCount");
}
