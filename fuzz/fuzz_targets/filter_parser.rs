//! Any UTF-8 text through the filter parser. Whatever parses must print
//! (`Display`) to a filter that parses back to the same AST and prints the
//! same again, and evaluating it against a user must not panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scimd::scim::filter::{matches, parse_filter};
use serde_json::{json, Value};
use std::sync::OnceLock;

fn user() -> &'static Value {
    static USER: OnceLock<Value> = OnceLock::new();
    USER.get_or_init(|| {
        json!({
            "id": "2819c223-7f76-453a-919d-413861904646",
            "userName": "bjensen@example.com",
            "active": true,
            "loginCount": 12,
            "ratio": 0.5,
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "meta": {"lastModified": "2011-05-13T04:42:34Z"},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "department": "Sales",
                "manager": {"value": "26118915"}
            }
        })
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(filter) = parse_filter(input) else {
        return;
    };
    let printed = filter.to_string();
    let reparsed = match parse_filter(&printed) {
        Ok(f) => f,
        Err(e) => panic!("{input:?} printed as {printed:?}, which does not parse: {e}"),
    };
    assert_eq!(
        reparsed, filter,
        "{input:?} printed as {printed:?}, which parses differently"
    );
    assert_eq!(reparsed.to_string(), printed, "printing is not canonical");
    let _ = matches(&filter, user(), &|p| p.attr == "id");
});
