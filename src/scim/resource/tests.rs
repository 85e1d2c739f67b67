use super::*;
use crate::scim::error::ScimType;
use crate::scim::schema::{
    ATLASSIAN_EXTERNAL_URN, ENTERPRISE_USER_URN, GROUP_RESOURCE, GROUP_URN, USER_RESOURCE, USER_URN,
};
use serde_json::json;

fn user(v: Value) -> Result<Value, ScimError> {
    parse_resource(&USER_RESOURCE, &v).map(Value::Object)
}

fn invalid_value(r: Result<Value, ScimError>, mentions: &str) {
    let e = r.unwrap_err();
    assert_eq!(e.status, 400);
    assert_eq!(e.scim_type, Some(ScimType::InvalidValue), "{e}");
    assert!(
        e.detail.contains(mentions),
        "{:?} lacks {mentions:?}",
        e.detail
    );
}

fn path(urn: Option<&str>, attr: &str, sub: Option<&str>) -> AttrPath {
    AttrPath {
        urn: urn.map(str::to_owned),
        attr: attr.to_owned(),
        sub_attr: sub.map(str::to_owned),
    }
}

#[test]
fn okta_user() {
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "isaac.brock@example.com",
        "name": { "givenName": "Isaac", "familyName": "Brock" },
        "emails": [{ "primary": true, "value": "isaac.brock@example.com", "type": "work" }],
        "displayName": "Isaac Brock",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": "1mz050nq",
        "active": true
    });
    assert_eq!(
        user(body).unwrap(),
        json!({
            "schemas": [USER_URN],
            "userName": "isaac.brock@example.com",
            "name": { "givenName": "Isaac", "familyName": "Brock" },
            "emails": [{ "primary": true, "value": "isaac.brock@example.com", "type": "work" }],
            "displayName": "Isaac Brock",
            "locale": "en-US",
            "externalId": "00ujl29u0le5T6Aj10h7",
            "active": true
        })
    );
}

#[test]
fn entra_user() {
    let body = json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        ],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_ab6490ee@contoso.com",
        "active": "True",
        "displayName": "BHRFZLYGFWIJ",
        "emails": [{ "primary": "True", "type": "work", "value": "Test_User_fd0ea19b@contoso.com" }],
        "phoneNumbers": [
            { "type": "mobile", "value": "+1 555 0100", "primary": "False" },
            { "type": "fax", "value": "+1 555 0101" }
        ],
        "meta": { "resourceType": "User" },
        "name": { "formatted": "Ruby Ng", "familyName": "Ng", "givenName": "Ruby" },
        "roles": [],
        "title": "Engineer",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": "701984",
            "department": "Sales",
            "manager": { "value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "Boss" }
        },
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter": "CC-9"
    });
    assert_eq!(
        user(body).unwrap(),
        json!({
            "schemas": [USER_URN, ENTERPRISE_USER_URN],
            "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
            "userName": "Test_User_ab6490ee@contoso.com",
            "active": true,
            "displayName": "BHRFZLYGFWIJ",
            "emails": [{ "primary": true, "type": "work", "value": "Test_User_fd0ea19b@contoso.com" }],
            "phoneNumbers": [
                { "type": "mobile", "value": "+1 555 0100", "primary": false },
                { "type": "fax", "value": "+1 555 0101" }
            ],
            "name": { "formatted": "Ruby Ng", "familyName": "Ng", "givenName": "Ruby" },
            "title": "Engineer",
            ENTERPRISE_USER_URN: {
                "employeeNumber": "701984",
                "department": "Sales",
                "costCenter": "CC-9",
                "manager": { "value": "26118915-6090-4610-87e4-49d8ca9f808d" }
            }
        })
    );
}

#[test]
fn entra_manager_as_a_bare_id() {
    let doc = user(json!({
        "schemas": [USER_URN, ENTERPRISE_USER_URN],
        "userName": "bjensen@testuser.com",
        ENTERPRISE_USER_URN: { "manager": "123456", "department": "Sales" }
    }))
    .unwrap();
    assert_eq!(
        doc[ENTERPRISE_USER_URN],
        json!({ "manager": { "value": "123456" }, "department": "Sales" })
    );
    // Also fully qualified, and still type-checked.
    let doc = user(json!({
        "userName": "u",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager": "m-1"
    }))
    .unwrap();
    assert_eq!(
        doc[ENTERPRISE_USER_URN]["manager"],
        json!({ "value": "m-1" })
    );
    invalid_value(
        user(json!({ "userName": "u", ENTERPRISE_USER_URN: { "manager": 7 } })),
        "attribute 'manager.value' must be a string",
    );
    invalid_value(
        user(json!({ "userName": "u", ENTERPRISE_USER_URN: { "manager": ["m-1"] } })),
        "attribute 'manager' must be an object",
    );
}

#[test]
fn write_only_values_are_dropped_from_patched_documents() {
    use crate::scim::patch::{apply_patch, parse_patch};
    let mut doc = user(json!({ "userName": "u", "password": "first" }))
        .unwrap()
        .as_object()
        .unwrap()
        .clone();
    assert!(doc.get("password").is_none(), "POST never stores it");
    // Okta's password sync, and the same by path.
    for op in [
        json!({ "op": "replace", "value": { "password": "t1me", "active": false } }),
        json!({ "op": "add", "path": "PASSWORD", "value": "t1me" }),
    ] {
        let req = parse_patch(&json!({ "Operations": [op] })).unwrap();
        apply_patch(&USER_RESOURCE, &mut doc, &req, &parse_attribute_value).unwrap();
        drop_write_only(&USER_RESOURCE, &mut doc);
        assert!(
            !Value::Object(doc.clone()).to_string().contains("t1me"),
            "{doc:?}"
        );
    }
    assert_eq!(
        Value::Object(doc),
        json!({ "schemas": [USER_URN], "userName": "u", "active": false })
    );
}

#[test]
fn names_are_canonicalised() {
    let doc = user(json!({
        "SCHEMAS": ["URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER"],
        "USERNAME": "a",
        "Name": { "GIVENNAME": "A" },
        "emails": [{ "Value": "a@x", "TYPE": "Custom" }],
        "ExternalID": "e",
        "urn:ietf:params:scim:schemas:extension:ENTERPRISE:2.0:User": { "DEPARTMENT": "D" },
        "URN:ietf:params:scim:schemas:core:2.0:User:nickName": "nick"
    }))
    .unwrap();
    assert_eq!(
        doc,
        json!({
            "schemas": [USER_URN, ENTERPRISE_USER_URN],
            "userName": "a",
            "name": { "givenName": "A" },
            "emails": [{ "value": "a@x", "type": "Custom" }],
            "externalId": "e",
            "nickName": "nick",
            ENTERPRISE_USER_URN: { "department": "D" }
        })
    );
}

#[test]
fn unknown_and_read_only_attributes_are_dropped() {
    let doc = user(json!({
        "userName": "bob",
        "id": "client-chosen",
        "meta": { "created": "2020-01-01T00:00:00Z" },
        "groups": [{ "value": "g1" }],
        "password": "hunter2",
        "favouriteColour": "blue",
        "name": { "givenName": "Bob", "nickname": "bobby" },
        "emails": [{ "value": "b@x", "verified": true }, null, {}],
        "urn:example:custom:1.0:User": { "foo": 1 },
        "urn:example:custom:1.0:User:foo": 1,
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:nope": "x",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "manager": { "displayName": "only read-only" },
            "unknown": "x"
        },
        ATLASSIAN_EXTERNAL_URN: { "atlassianAccountId": "acc-1" }
    }))
    .unwrap();
    assert_eq!(
        doc,
        json!({
            "schemas": [USER_URN],
            "userName": "bob",
            "name": { "givenName": "Bob" },
            "emails": [{ "value": "b@x" }]
        })
    );
}

#[test]
fn nulls_and_empties() {
    let doc = user(json!({
        "schemas": null,
        "userName": "u",
        "displayName": null,
        "title": "",
        "name": {},
        "emails": [],
        "addresses": [null],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": null
    }))
    .unwrap();
    assert_eq!(
        doc,
        json!({ "schemas": [USER_URN], "userName": "u", "title": "" })
    );
}

#[test]
fn type_errors() {
    let cases = [
        (
            json!({ "userName": 5 }),
            "attribute 'userName' must be a string",
        ),
        (
            json!({ "userName": "u", "active": "yes" }),
            "attribute 'active' must be a boolean",
        ),
        (
            json!({ "userName": "u", "active": 1 }),
            "attribute 'active' must be a boolean",
        ),
        (
            json!({ "userName": "u", "name": "Bob" }),
            "attribute 'name' must be an object",
        ),
        (
            json!({ "userName": "u", "emails": { "value": "a@x" } }),
            "attribute 'emails' must be an array",
        ),
        (
            json!({ "userName": "u", "emails": ["a@x"] }),
            "attribute 'emails' must be an object",
        ),
        (
            json!({ "userName": "u", "emails": [{ "value": 7 }] }),
            "attribute 'emails.value' must be a string",
        ),
        (
            json!({ "userName": "u", "emails": [{ "primary": "yes" }] }),
            "emails.primary",
        ),
        (
            json!({ "userName": "u", "externalId": 12 }),
            "attribute 'externalId' must be a string",
        ),
        (json!({ "userName": "u", "profileUrl": true }), "profileUrl"),
        (
            json!({ "userName": "u", ENTERPRISE_USER_URN: { "department": ["x"] } }),
            "attribute 'department' must be a string",
        ),
        (
            json!({ "userName": "u", ENTERPRISE_USER_URN: "Sales" }),
            "must be an object",
        ),
        (json!({ "userName": "u", "schemas": USER_URN }), "schemas"),
        (json!({ "userName": "u", "schemas": [1] }), "schemas"),
        (
            json!({ "userName": "a", "USERNAME": "b" }),
            "more than once",
        ),
    ];
    for (body, mentions) in cases {
        invalid_value(user(body), mentions);
    }
}

#[test]
fn scalar_types() {
    let date = AttributeDef {
        name: "when",
        ty: AttrType::DateTime,
        multi_valued: false,
        description: "",
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        returned: Returned::Default,
        uniqueness: crate::scim::schema::Uniqueness::None,
        canonical_values: &[],
        reference_types: &[],
        sub_attributes: &[],
    };
    let ok = |d: &AttributeDef, v: Value| parse_attribute_value(d, &v, d.name).unwrap();
    let err = |d: &AttributeDef, v: Value| parse_attribute_value(d, &v, d.name).unwrap_err();
    assert_eq!(
        ok(&date, json!("2024-05-01T10:00:00.5+02:00")),
        Some(json!("2024-05-01T10:00:00.5+02:00"))
    );
    assert_eq!(
        err(&date, json!("2024-05-01")).scim_type,
        Some(ScimType::InvalidValue)
    );
    assert_eq!(
        err(&date, json!(17)).scim_type,
        Some(ScimType::InvalidValue)
    );

    let int = AttributeDef {
        ty: AttrType::Integer,
        ..date
    };
    assert_eq!(ok(&int, json!(-3)), Some(json!(-3)));
    assert!(err(&int, json!(1.5)).detail.contains("must be an integer"));
    assert!(err(&int, json!("3")).detail.contains("must be an integer"));

    let dec = AttributeDef {
        ty: AttrType::Decimal,
        ..int
    };
    assert_eq!(ok(&dec, json!(1.5)), Some(json!(1.5)));
    assert_eq!(ok(&dec, json!(2)), Some(json!(2)));
    assert!(err(&dec, json!("1.5")).detail.contains("must be a number"));

    let boolean = AttributeDef {
        ty: AttrType::Boolean,
        ..dec
    };
    assert_eq!(ok(&boolean, json!("FALSE")), Some(json!(false)));
    assert_eq!(ok(&boolean, json!("true")), Some(json!(true)));
    assert_eq!(ok(&boolean, Value::Null), None);

    let bin = AttributeDef {
        ty: AttrType::Binary,
        ..boolean
    };
    assert_eq!(ok(&bin, json!("TUlJ")), Some(json!("TUlJ")));
    assert!(err(&bin, json!([])).detail.contains("must be a string"));
}

#[test]
fn missing_required() {
    for body in [
        json!({}),
        json!({ "userName": null }),
        json!({ "userName": "" }),
        json!({ "userName": "   " }),
        json!({ "displayName": "x" }),
    ] {
        invalid_value(user(body), "missing required attribute 'userName'");
    }
    invalid_value(
        parse_resource(&GROUP_RESOURCE, &json!({ "members": [] })).map(Value::Object),
        "missing required attribute 'displayName'",
    );
}

#[test]
fn unknown_schema_urn() {
    invalid_value(
        user(json!({ "schemas": [USER_URN, "urn:example:custom:1.0:User"], "userName": "u" })),
        "unknown schema URN 'urn:example:custom:1.0:User'",
    );
    invalid_value(
        parse_resource(
            &GROUP_RESOURCE,
            &json!({ "schemas": [USER_URN], "displayName": "g" }),
        )
        .map(Value::Object),
        "unknown schema URN",
    );
    // Listing an extension without sending any of it is fine; it is just
    // not recorded.
    let doc = user(json!({ "schemas": [USER_URN, ENTERPRISE_USER_URN], "userName": "u" }));
    assert_eq!(doc.unwrap()["schemas"], json!([USER_URN]));
}

#[test]
fn entra_group_schema_is_accepted_and_dropped() {
    const ADSCIM: &str = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group";
    let body = json!({
        "schemas": [GROUP_URN, ADSCIM],
        "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
        "displayName": "displayName",
        "meta": { "resourceType": "Group" }
    });
    assert_eq!(
        Value::Object(parse_resource(&GROUP_RESOURCE, &body).unwrap()),
        json!({
            "schemas": [GROUP_URN],
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "displayName": "displayName"
        })
    );
    // Only where Entra sends it: it names no user schema.
    invalid_value(
        user(json!({ "schemas": [USER_URN, ADSCIM], "userName": "u" })),
        "unknown schema URN",
    );
}

#[test]
fn entra_misspelt_enterprise_urn_is_accepted_and_dropped() {
    const MISSPELT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0User";
    let doc = user(json!({
        "schemas": [USER_URN, MISSPELT],
        "userName": "jyoung@testuser.com",
        "title": null,
        "department": null,
        "manager": null
    }))
    .unwrap();
    assert_eq!(
        doc,
        json!({ "schemas": [USER_URN], "userName": "jyoung@testuser.com" })
    );
    // With the extension's attributes under the right URN, they are kept.
    let doc = user(json!({
        "schemas": [USER_URN, MISSPELT],
        "userName": "u",
        ENTERPRISE_USER_URN: { "department": "Sales" }
    }))
    .unwrap();
    assert_eq!(doc[ENTERPRISE_USER_URN]["department"], "Sales");
    // Only on users, and only that spelling.
    invalid_value(
        parse_resource(
            &GROUP_RESOURCE,
            &json!({ "schemas": [GROUP_URN, MISSPELT], "displayName": "g" }),
        )
        .map(Value::Object),
        "unknown schema URN",
    );
    invalid_value(
        user(json!({
            "schemas": [USER_URN, "urn:ietf:params:scim:schemas:extension:enterprise:2.0Group"],
            "userName": "u"
        })),
        "unknown schema URN",
    );
}

#[test]
fn multiple_primaries() {
    invalid_value(
        user(json!({
            "userName": "u",
            "emails": [
                { "value": "a@x", "primary": true },
                { "value": "b@x", "primary": "True" }
            ]
        })),
        "attribute 'emails' has more than one primary value",
    );
    assert!(user(json!({
        "userName": "u",
        "emails": [
            { "value": "a@x", "primary": true },
            { "value": "b@x", "primary": false }
        ]
    }))
    .is_ok());
}

#[test]
fn body_must_be_object() {
    for body in [json!([]), json!("x"), Value::Null] {
        let e = parse_resource(&USER_RESOURCE, &body).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax));
        let e = parse_members(&body).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax));
    }
}

#[test]
fn group_and_members() {
    let body = json!({
        "schemas": [GROUP_URN],
        "displayName": "Engineering",
        "externalId": "okta-group-1",
        "id": "ignored",
        "Members": [
            { "value": "u1", "display": "Alice" },
            { "value": "g2", "type": "Group" },
            { "value": "u1", "type": "User" },
            null
        ]
    });
    let doc = parse_resource(&GROUP_RESOURCE, &body).unwrap();
    assert_eq!(
        Value::Object(doc),
        json!({ "schemas": [GROUP_URN], "displayName": "Engineering", "externalId": "okta-group-1" })
    );
    assert_eq!(
        parse_members(&body).unwrap(),
        Some(vec![
            MemberRef {
                value: "u1".into(),
                type_: None
            },
            MemberRef {
                value: "g2".into(),
                type_: Some("Group".into())
            },
        ])
    );
    assert_eq!(parse_members(&json!({ "displayName": "g" })).unwrap(), None);
    assert_eq!(
        parse_members(&json!({ "members": null })).unwrap(),
        Some(vec![])
    );
    assert_eq!(
        parse_members(&json!({ "members": [] })).unwrap(),
        Some(vec![])
    );
    for bad in [
        json!({ "members": "u1" }),
        json!({ "members": ["u1"] }),
        json!({ "members": [{ "display": "x" }] }),
        json!({ "members": [{ "value": 5 }] }),
        json!({ "members": [{ "value": "" }] }),
        json!({ "members": [{ "value": "u1", "type": 1 }] }),
    ] {
        invalid_value(parse_members(&bad).map(|_| Value::Null), "members");
    }
}

#[test]
fn attr_list_parsing() {
    assert_eq!(parse_attr_list("").unwrap(), vec![]);
    assert_eq!(
        parse_attr_list(" userName , name.givenName,,emails.value ").unwrap(),
        vec![
            path(None, "userName", None),
            path(None, "name", Some("givenName")),
            path(None, "emails", Some("value")),
        ]
    );
    assert_eq!(
        parse_attr_list(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.$ref,groups.$ref"
        )
        .unwrap(),
        vec![
            path(Some(ENTERPRISE_USER_URN), "manager", Some("$ref")),
            path(None, "groups", Some("$ref")),
        ]
    );
    assert_eq!(
        parse_attr_list("urn:scim:schemas:extension:atlassian-external:1.0,URN:ietf:params:scim:schemas:core:2.0:User:userName").unwrap(),
        vec![
            path(Some(ATLASSIAN_EXTERNAL_URN), "", None),
            path(Some("URN:ietf:params:scim:schemas:core:2.0:User"), "userName", None),
        ]
    );
    for bad in [
        "1abc",
        "name.given.name",
        "name.",
        ".x",
        "user name",
        "a,b c",
        "émail",
        "urn:x y:z",
        "urn:",
    ] {
        let e = parse_attr_list(bad).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidValue), "{bad}");
    }
}

fn full_user() -> Value {
    json!({
        "schemas": [USER_URN, ENTERPRISE_USER_URN, ATLASSIAN_EXTERNAL_URN],
        "id": "2819c223",
        "externalId": "ext-1",
        "meta": {
            "resourceType": "User",
            "created": "2024-01-01T00:00:00Z",
            "lastModified": "2024-01-02T00:00:00Z",
            "location": "https://h/scim/v2/Users/2819c223",
            "version": "W/\"3\""
        },
        "userName": "bjensen",
        "password": "must never leak",
        "name": { "givenName": "Barbara", "familyName": "Jensen" },
        "active": true,
        "emails": [
            { "value": "bj@work", "type": "work", "primary": true },
            { "value": "bj@home", "type": "home" },
            { "type": "other" }
        ],
        "groups": [{ "value": "g1", "display": "Eng", "$ref": "https://h/scim/v2/Groups/g1" }],
        ENTERPRISE_USER_URN: {
            "department": "Tour Operations",
            "manager": { "value": "m1", "displayName": "John Smith" }
        },
        ATLASSIAN_EXTERNAL_URN: { "atlassianAccountId": "acc-1" }
    })
}

fn list(s: &str) -> Vec<AttrPath> {
    parse_attr_list(s).unwrap()
}

fn project_user(attributes: &str, excluded: &str) -> Value {
    project(
        &USER_RESOURCE,
        &full_user(),
        &list(attributes),
        &list(excluded),
    )
}

#[test]
fn projection_default_drops_never() {
    let mut expected = full_user();
    expected.as_object_mut().unwrap().remove("password");
    assert_eq!(project_user("", ""), expected);
}

#[test]
fn projection_attributes() {
    assert_eq!(
        project_user("userName,ACTIVE,password", ""),
        json!({
            "schemas": [USER_URN, ENTERPRISE_USER_URN, ATLASSIAN_EXTERNAL_URN],
            "id": "2819c223",
            "userName": "bjensen",
            "active": true
        })
    );
    assert_eq!(
        project_user("name.givenName,emails.value,meta.lastModified", ""),
        json!({
            "schemas": [USER_URN, ENTERPRISE_USER_URN, ATLASSIAN_EXTERNAL_URN],
            "id": "2819c223",
            "name": { "givenName": "Barbara" },
            "emails": [{ "value": "bj@work" }, { "value": "bj@home" }],
            "meta": { "lastModified": "2024-01-02T00:00:00Z" }
        })
    );
    // The whole attribute wins over a sub-attribute of it.
    assert_eq!(
        project_user("name.givenName,name", "")["name"],
        json!({ "givenName": "Barbara", "familyName": "Jensen" })
    );
    // Sub-attributes of simple attributes select nothing.
    assert!(project_user("userName.x", "").get("userName").is_none());
    // `excluded` is ignored once `attributes` is given.
    assert_eq!(project_user("userName", "userName")["userName"], "bjensen");
}

#[test]
fn projection_extensions() {
    let v = project_user(
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
        "",
    );
    assert_eq!(
        v,
        json!({
            "schemas": [USER_URN, ENTERPRISE_USER_URN, ATLASSIAN_EXTERNAL_URN],
            "id": "2819c223",
            ENTERPRISE_USER_URN: { "manager": { "value": "m1" } }
        })
    );
    // Unqualified names reach extension attributes too.
    assert_eq!(
        project_user("department", "")[ENTERPRISE_USER_URN],
        json!({ "department": "Tour Operations" })
    );
    // A URN for the wrong schema selects nothing.
    assert!(project_user(&format!("{USER_URN}:department"), "")
        .get(ENTERPRISE_USER_URN)
        .is_none());
    // A whole extension, in either split form.
    let v = project_user(ATLASSIAN_EXTERNAL_URN, "");
    assert_eq!(
        v[ATLASSIAN_EXTERNAL_URN],
        json!({ "atlassianAccountId": "acc-1" })
    );
    assert!(v.get(ENTERPRISE_USER_URN).is_none());
    let split = path(
        Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0"),
        "User",
        None,
    );
    let v = project(
        &USER_RESOURCE,
        &full_user(),
        std::slice::from_ref(&split),
        &[],
    );
    assert_eq!(v[ENTERPRISE_USER_URN], full_user()[ENTERPRISE_USER_URN]);
    let v = project(&USER_RESOURCE, &full_user(), &[], &[split]);
    assert!(v.get(ENTERPRISE_USER_URN).is_none());
    assert!(v.get(ATLASSIAN_EXTERNAL_URN).is_some());
}

#[test]
fn projection_excluded() {
    let v = project_user("", "emails,name.familyName,id,meta,groups.$ref,department");
    assert_eq!(
        v,
        json!({
            "schemas": [USER_URN, ENTERPRISE_USER_URN, ATLASSIAN_EXTERNAL_URN],
            "id": "2819c223",
            "externalId": "ext-1",
            "userName": "bjensen",
            "name": { "givenName": "Barbara" },
            "active": true,
            "groups": [{ "value": "g1", "display": "Eng" }],
            ENTERPRISE_USER_URN: {
                "manager": { "value": "m1", "displayName": "John Smith" }
            },
            ATLASSIAN_EXTERNAL_URN: { "atlassianAccountId": "acc-1" }
        })
    );
    let v = project_user(
        "",
        "schemas,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
    );
    assert!(v.get("schemas").is_some());
    assert_eq!(
        v[ENTERPRISE_USER_URN],
        json!({ "department": "Tour Operations" })
    );
}

#[test]
fn projection_group_and_oddities() {
    let group = json!({
        "schemas": [GROUP_URN],
        "id": "g1",
        "displayName": "Eng",
        "members": [{ "value": "u1", "display": "Alice", "type": "User" }]
    });
    assert_eq!(
        project(&GROUP_RESOURCE, &group, &list("displayName"), &[]),
        json!({ "schemas": [GROUP_URN], "id": "g1", "displayName": "Eng" })
    );
    assert_eq!(
        project(&GROUP_RESOURCE, &group, &[], &list("members")),
        json!({ "schemas": [GROUP_URN], "id": "g1", "displayName": "Eng" })
    );
    assert_eq!(
        project(&GROUP_RESOURCE, &group, &list("members.value"), &[])["members"],
        json!([{ "value": "u1" }])
    );
    // Not an object: returned as is rather than panicking.
    assert_eq!(project(&GROUP_RESOURCE, &json!([1]), &[], &[]), json!([1]));
}

#[test]
fn parse_attribute_value_for_patch() {
    let emails = USER_RESOURCE.resolve(None, "emails", None).unwrap().attr;
    assert_eq!(
        parse_attribute_value(
            emails,
            &json!([{ "VALUE": "a@x", "Primary": "TRUE" }]),
            "emails"
        )
        .unwrap(),
        Some(json!([{ "value": "a@x", "primary": true }]))
    );
    let manager = USER_RESOURCE.resolve(None, "manager", None).unwrap().attr;
    assert_eq!(
        parse_attribute_value(manager, &json!({ "displayName": "x" }), "manager").unwrap(),
        None
    );
    let value = USER_RESOURCE
        .resolve(None, "emails", Some("value"))
        .unwrap()
        .sub
        .unwrap();
    let e =
        parse_attribute_value(value, &json!(true), "emails[type eq \"work\"].value").unwrap_err();
    assert!(e.detail.contains("emails[type eq \"work\"].value"));
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn arb_json() -> impl Strategy<Value = Value> {
        let key = prop::sample::select(vec![
            "userName",
            "USERNAME",
            "name",
            "givenName",
            "emails",
            "value",
            "primary",
            "type",
            "active",
            "members",
            "schemas",
            "id",
            "meta",
            "manager",
            "department",
            USER_URN,
            ENTERPRISE_USER_URN,
            "urn:x:y",
            "urn:",
            "x",
        ]);
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| json!(f)),
            prop::sample::select(vec![
                "",
                "true",
                "False",
                "x",
                USER_URN,
                "2024-01-01T00:00:00Z"
            ])
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((key.clone(), inner), 0..6).prop_map(|kv| {
                    Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
                }),
            ]
        })
    }

    proptest! {
        /// Arbitrary input never panics, and whatever parses is a fixed
        /// point: parsing the stored document again yields it unchanged.
        #[test]
        fn parse_is_total_and_idempotent(v in arb_json()) {
            for rt in [&USER_RESOURCE, &GROUP_RESOURCE] {
                if let Ok(doc) = parse_resource(rt, &v) {
                    let again = parse_resource(rt, &Value::Object(doc.clone()));
                    prop_assert_eq!(again, Ok(doc));
                }
                let _ = parse_members(&v);
            }
        }

        #[test]
        fn project_is_total(v in arb_json(), a in "[a-zA-Z.,:$]{0,20}", x in "[a-zA-Z.,:$]{0,20}") {
            let a = parse_attr_list(&a).unwrap_or_default();
            let x = parse_attr_list(&x).unwrap_or_default();
            let out = project(&USER_RESOURCE, &v, &a, &x);
            if v.is_object() {
                prop_assert!(out.is_object());
            }
        }
    }
}
