//! Any bytes as a PATCH request body, applied the way the server applies
//! it: decoded as JSON, parsed with `parse_patch`, then `apply_patch` with
//! the server's own value parser on a realistic user (enterprise extension
//! included) and on a group. Applying must never panic; a failed request
//! must be a 400 with a `scimType` and leave the document exactly as it
//! was; group membership never lands in the document.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scimd::scim::patch::{apply_patch, parse_patch};
use scimd::scim::resource::{parse_attribute_value, parse_resource};
use scimd::scim::schema::{ResourceTypeDef, GROUP_RESOURCE, USER_RESOURCE};
use serde_json::{json, Map, Value};
use std::sync::OnceLock;

fn canonical(rt: &ResourceTypeDef, body: Value) -> Map<String, Value> {
    match parse_resource(rt, &body) {
        Ok(doc) => doc,
        Err(e) => panic!("the fixed {} document does not parse: {e}", rt.name),
    }
}

fn user() -> &'static Map<String, Value> {
    static USER: OnceLock<Map<String, Value>> = OnceLock::new();
    USER.get_or_init(|| {
        canonical(
            &USER_RESOURCE,
            json!({
                "schemas": [
                    "urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
                ],
                "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c12aed4b",
                "userName": "barbara.jensen@contoso.com",
                "active": true,
                "displayName": "Barbara Jensen",
                "title": "Tour Guide",
                "userType": "Employee",
                "preferredLanguage": "en-US",
                "name": {
                    "formatted": "Ms. Barbara J Jensen III",
                    "familyName": "Jensen",
                    "givenName": "Barbara"
                },
                "emails": [
                    {"value": "barbara.jensen@contoso.com", "type": "work", "primary": true},
                    {"value": "babs@jensen.org", "type": "home"}
                ],
                "phoneNumbers": [
                    {"value": "+1 425 555 0100", "type": "work"},
                    {"value": "+1 425 555 0199", "type": "mobile"}
                ],
                "addresses": [{
                    "type": "work",
                    "streetAddress": "100 Universal City Plaza",
                    "locality": "Hollywood",
                    "region": "CA",
                    "postalCode": "91608",
                    "country": "US",
                    "primary": true
                }],
                "roles": [{"value": "guide", "primary": true}],
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                    "employeeNumber": "701984",
                    "costCenter": "4130",
                    "organization": "Universal Studios",
                    "division": "Theme Park",
                    "department": "Tour Operations",
                    "manager": {"value": "26118915"}
                }
            }),
        )
    })
}

fn group() -> &'static Map<String, Value> {
    static GROUP: OnceLock<Map<String, Value>> = OnceLock::new();
    GROUP.get_or_init(|| {
        canonical(
            &GROUP_RESOURCE,
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "externalId": "e9e30dba-f08f-4109-8486-d5c6a331660a",
                "displayName": "Tour Guides"
            }),
        )
    })
}

fn check(rt: &ResourceTypeDef, start: &Map<String, Value>, body: &Value) {
    let Ok(request) = parse_patch(body) else {
        return;
    };
    let mut doc = start.clone();
    match apply_patch(rt, &mut doc, &request, &parse_attribute_value) {
        Err(e) => {
            assert_eq!(&doc, start, "a failed PATCH changed the document: {e}");
            assert_eq!(e.status, 400, "{e}");
            assert!(e.scim_type.is_some(), "no scimType: {e}");
        }
        Ok(_) => {
            for owned in ["id", "meta", "members", "groups"] {
                assert!(
                    !doc.contains_key(owned),
                    "PATCH wrote {owned:?} into the document"
                );
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    check(&USER_RESOURCE, user(), &body);
    check(&GROUP_RESOURCE, group(), &body);
});
