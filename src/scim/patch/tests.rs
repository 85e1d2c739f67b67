use super::*;
use crate::scim::error::ScimType;
use crate::scim::schema::{
    AttrType, AttributeDef, Mutability, ResourceTypeDef, Returned, SchemaDef, Uniqueness,
};
use serde_json::{json, Map, Value};

// ---- a small test schema (not the real one) ----

const fn a(name: &'static str, ty: AttrType) -> AttributeDef {
    AttributeDef {
        name,
        ty,
        multi_valued: false,
        description: "",
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        returned: Returned::Default,
        uniqueness: Uniqueness::None,
        canonical_values: &[],
        reference_types: &[],
        sub_attributes: &[],
    }
}

const S: AttrType = AttrType::String;
const RO: Mutability = Mutability::ReadOnly;

static NAME_SUBS: [AttributeDef; 3] = [a("formatted", S), a("familyName", S), a("givenName", S)];
static MV_SUBS: [AttributeDef; 4] = [
    a("value", S),
    a("display", S),
    a("type", S),
    a("primary", AttrType::Boolean),
];
static ADDR_SUBS: [AttributeDef; 4] = [
    a("streetAddress", S),
    a("locality", S),
    a("type", S),
    a("primary", AttrType::Boolean),
];
static GROUPS_SUBS: [AttributeDef; 2] = [
    AttributeDef {
        mutability: RO,
        ..a("value", S)
    },
    AttributeDef {
        mutability: RO,
        ..a("display", S)
    },
];
static USER_ATTRS: [AttributeDef; 10] = [
    AttributeDef {
        required: true,
        ..a("userName", S)
    },
    AttributeDef {
        sub_attributes: &NAME_SUBS,
        ..a("name", AttrType::Complex)
    },
    a("displayName", S),
    a("active", AttrType::Boolean),
    AttributeDef {
        mutability: Mutability::WriteOnly,
        ..a("password", S)
    },
    AttributeDef {
        mutability: Mutability::Immutable,
        ..a("badgeId", S)
    },
    AttributeDef {
        multi_valued: true,
        sub_attributes: &MV_SUBS,
        ..a("emails", AttrType::Complex)
    },
    AttributeDef {
        multi_valued: true,
        sub_attributes: &MV_SUBS,
        ..a("phoneNumbers", AttrType::Complex)
    },
    AttributeDef {
        multi_valued: true,
        sub_attributes: &ADDR_SUBS,
        ..a("addresses", AttrType::Complex)
    },
    AttributeDef {
        multi_valued: true,
        mutability: RO,
        sub_attributes: &GROUPS_SUBS,
        ..a("groups", AttrType::Complex)
    },
];
static MANAGER_SUBS: [AttributeDef; 3] = [
    a("value", S),
    a("$ref", AttrType::Reference),
    AttributeDef {
        mutability: RO,
        ..a("displayName", S)
    },
];
static ENT_ATTRS: [AttributeDef; 3] = [
    a("department", S),
    a("employeeNumber", S),
    AttributeDef {
        sub_attributes: &MANAGER_SUBS,
        ..a("manager", AttrType::Complex)
    },
];
const USER_ID: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
static USER_SCHEMA: SchemaDef = SchemaDef {
    id: USER_ID,
    name: "User",
    description: "",
    attributes: &USER_ATTRS,
};
static ENT_SCHEMA: SchemaDef = SchemaDef {
    id: ENT,
    name: "EnterpriseUser",
    description: "",
    attributes: &ENT_ATTRS,
};
static USER_RT: ResourceTypeDef = ResourceTypeDef {
    name: "User",
    endpoint: "/Users",
    description: "",
    schema: &USER_SCHEMA,
    extensions: &[(&ENT_SCHEMA, false)],
};

static MEMBER_SUBS: [AttributeDef; 4] = [
    AttributeDef {
        mutability: Mutability::Immutable,
        ..a("value", S)
    },
    AttributeDef {
        mutability: RO,
        ..a("display", S)
    },
    AttributeDef {
        mutability: Mutability::Immutable,
        ..a("$ref", AttrType::Reference)
    },
    AttributeDef {
        mutability: Mutability::Immutable,
        ..a("type", S)
    },
];
static GROUP_ATTRS: [AttributeDef; 2] = [
    AttributeDef {
        required: true,
        ..a("displayName", S)
    },
    AttributeDef {
        multi_valued: true,
        sub_attributes: &MEMBER_SUBS,
        ..a("members", AttrType::Complex)
    },
];
static GROUP_SCHEMA: SchemaDef = SchemaDef {
    id: "urn:ietf:params:scim:schemas:core:2.0:Group",
    name: "Group",
    description: "",
    attributes: &GROUP_ATTRS,
};
static GROUP_RT: ResourceTypeDef = ResourceTypeDef {
    name: "Group",
    endpoint: "/Groups",
    description: "",
    schema: &GROUP_SCHEMA,
    extensions: &[],
};

/// Stand-in for the server's value parser: type checks, "True" → true,
/// unknown sub-attributes dropped, canonical names.
fn vp(def: &AttributeDef, v: &Value, path: &str) -> Result<Option<Value>, ScimError> {
    if v.is_null() {
        return Ok(None);
    }
    if def.multi_valued {
        let Value::Array(items) = v else {
            return Err(ScimError::invalid_value(format!(
                "{path}: expected an array"
            )));
        };
        let mut out = Vec::new();
        for i in items {
            if let Some(x) = single(def, i, path)? {
                out.push(x);
            }
        }
        return Ok(Some(Value::Array(out)));
    }
    single(def, v, path)
}

fn single(def: &AttributeDef, v: &Value, path: &str) -> Result<Option<Value>, ScimError> {
    let bad = || ScimError::invalid_value(format!("{path}: bad value for {}", def.name));
    Ok(Some(match (def.ty, v) {
        (_, Value::Null) => return Ok(None),
        (AttrType::Boolean, Value::Bool(_)) => v.clone(),
        (AttrType::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("true") => json!(true),
        (AttrType::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("false") => {
            json!(false)
        }
        (AttrType::Complex, Value::Object(o)) => {
            let mut out = Map::new();
            for (k, x) in o {
                if let Some(sd) = def
                    .sub_attributes
                    .iter()
                    .find(|d| d.name.eq_ignore_ascii_case(k))
                {
                    if let Some(x) = single(sd, x, path)? {
                        out.insert(sd.name.to_string(), x);
                    }
                }
            }
            Value::Object(out)
        }
        (AttrType::String | AttrType::Reference, Value::String(_)) => v.clone(),
        _ => return Err(bad()),
    }))
}

fn req(ops: Value) -> PatchRequest {
    let body = json!({"schemas": [PATCH_OP_SCHEMA], "Operations": ops});
    match parse_patch(&body) {
        Ok(r) => r,
        Err(e) => panic!("parse failed: {e}"),
    }
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(o) => o,
        v => panic!("not an object: {v}"),
    }
}

fn base_user() -> Map<String, Value> {
    obj(json!({
        "schemas": [USER_ID],
        "userName": "bjensen",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "active": true,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ]
    }))
}

fn run(
    rt: &ResourceTypeDef,
    doc: &mut Map<String, Value>,
    ops: Value,
) -> Result<PatchOutcome, ScimError> {
    apply_patch(rt, doc, &req(ops), &vp)
}

fn ok(doc: &mut Map<String, Value>, ops: Value) -> PatchOutcome {
    match run(&USER_RT, doc, ops) {
        Ok(o) => o,
        Err(e) => panic!("patch failed: {e}"),
    }
}

/// Runs a failing patch and checks the document is untouched.
fn fails(rt: &ResourceTypeDef, doc: &Map<String, Value>, ops: Value) -> ScimType {
    let mut d = doc.clone();
    match run(rt, &mut d, ops) {
        Ok(o) => panic!("unexpectedly succeeded: {o:?} -> {}", Value::Object(d)),
        Err(e) => {
            assert_eq!(&d, doc, "document changed by a failed patch");
            assert_eq!(e.status, 400);
            match e.scim_type {
                Some(t) => t,
                None => panic!("no scimType: {e}"),
            }
        }
    }
}

// ---- parse_patch ----

#[test]
fn parse_lenient_forms() {
    let r = match parse_patch(&json!({
        "operations": [
            {"OP": "Add", "Path": "displayName", "Value": "x"},
            {"op": "REPLACE", "value": {"active": false}},
            {"op": "remove", "path": "emails[type eq \"work\"]"},
            {"op": "replace", "path": "", "value": {"active": true}}
        ]
    })) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(r.operations.len(), 4);
    assert_eq!(r.operations[0].op, PatchOpKind::Add);
    assert_eq!(r.operations[1].op, PatchOpKind::Replace);
    assert_eq!(r.operations[1].path, None);
    assert_eq!(r.operations[2].op, PatchOpKind::Remove);
    assert!(r.operations[2]
        .path
        .as_ref()
        .is_some_and(|p| p.filter.is_some()));
    assert_eq!(r.operations[3].path, None);
}

#[test]
fn parse_errors() {
    let t = |body: Value| match parse_patch(&body) {
        Ok(r) => panic!("parsed {r:?}"),
        Err(e) => e.scim_type,
    };
    let op = |o: Value| json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [o]});
    assert_eq!(t(json!([])), Some(ScimType::InvalidSyntax));
    assert_eq!(
        t(json!({"schemas": ["urn:x"], "Operations": [{"op": "add", "value": {}}]})),
        Some(ScimType::InvalidSyntax)
    );
    assert_eq!(
        t(json!({"schemas": [PATCH_OP_SCHEMA]})),
        Some(ScimType::InvalidSyntax)
    );
    assert_eq!(t(json!({"Operations": {}})), Some(ScimType::InvalidSyntax));
    assert_eq!(t(json!({"Operations": []})), Some(ScimType::InvalidSyntax));
    assert_eq!(t(op(json!("add"))), Some(ScimType::InvalidSyntax));
    assert_eq!(
        t(op(json!({"path": "a", "value": 1}))),
        Some(ScimType::InvalidSyntax)
    );
    assert_eq!(
        t(op(json!({"op": "move", "path": "a"}))),
        Some(ScimType::InvalidSyntax)
    );
    assert_eq!(
        t(op(json!({"op": 1, "path": "a"}))),
        Some(ScimType::InvalidSyntax)
    );
    assert_eq!(
        t(op(
            json!({"op": "add", "path": "emails[type eq]", "value": 1})
        )),
        Some(ScimType::InvalidPath)
    );
    assert_eq!(
        t(op(json!({"op": "add", "path": 5, "value": 1}))),
        Some(ScimType::InvalidPath)
    );
    assert_eq!(
        t(op(json!({"op": "add", "path": "a"}))),
        Some(ScimType::InvalidValue)
    );
    assert_eq!(
        t(op(json!({"op": "replace"}))),
        Some(ScimType::InvalidValue)
    );
    assert_eq!(t(op(json!({"op": "remove"}))), Some(ScimType::NoTarget));
    let e = match parse_patch(
        &json!({"Operations": [{"op": "add", "path": "a", "value": 1}, {"op": "x"}]}),
    ) {
        Ok(_) => panic!(),
        Err(e) => e,
    };
    assert!(e.detail.starts_with("Operations[1]:"), "{}", e.detail);
}

// ---- add ----

#[test]
fn add_without_path() {
    let mut d = base_user();
    let out = ok(
        &mut d,
        json!([{"op": "add", "value": {
            "displayName": "Babs",
            "name.formatted": "Ms. Barbara J Jensen",
            "emails": [{"value": "new@example.com", "type": "other"}],
            "unknownThing": 1,
            "id": "ignored",
            "meta": {"version": "W/\"1\""},
            "schemas": ["whatever"],
            ENT: {"department": "Sales", "bogus": 1},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "701984"
        }}]),
    );
    assert_eq!(d["displayName"], json!("Babs"));
    assert_eq!(d["name"]["formatted"], json!("Ms. Barbara J Jensen"));
    assert_eq!(d["name"]["givenName"], json!("Barbara"));
    assert_eq!(d["emails"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        d[ENT],
        json!({"department": "Sales", "employeeNumber": "701984"})
    );
    assert_eq!(d["schemas"], json!([USER_ID, ENT]));
    assert!(!d.contains_key("id") && !d.contains_key("meta") && !d.contains_key("unknownThing"));
    assert_eq!(
        out.changed_attributes,
        vec![
            "displayName".to_string(),
            "emails".into(),
            "name".into(),
            format!("{ENT}:department"),
            format!("{ENT}:employeeNumber"),
        ]
    );
    assert!(out.member_changes.is_empty());
}

#[test]
fn add_single_valued_and_complex_merge() {
    let mut d = base_user();
    ok(
        &mut d,
        json!([
            {"op": "add", "path": "displayName", "value": "Babs"},
            {"op": "add", "path": "name", "value": {"formatted": "B J", "givenName": "Barb"}},
            {"op": "add", "path": "name.familyName", "value": "J"},
            {"op": "add", "path": "externalId", "value": "ext-1"}
        ]),
    );
    assert_eq!(d["displayName"], json!("Babs"));
    assert_eq!(
        d["name"],
        json!({"formatted": "B J", "givenName": "Barb", "familyName": "J"})
    );
    assert_eq!(d["externalId"], json!("ext-1"));
}

#[test]
fn add_multi_valued_appends_and_dedupes() {
    let mut d = base_user();
    let out = ok(
        &mut d,
        json!([
            {"op": "add", "path": "emails", "value": [
                {"value": "babs@jensen.org", "type": "home"},
                {"value": "x@y.z", "type": "other"}
            ]},
            {"op": "add", "path": "phoneNumbers", "value": {"value": "555", "type": "work"}}
        ]),
    );
    assert_eq!(d["emails"].as_array().map(Vec::len), Some(3));
    assert_eq!(d["phoneNumbers"], json!([{"value": "555", "type": "work"}]));
    assert_eq!(
        out.changed_attributes,
        vec!["emails".to_string(), "phoneNumbers".into()]
    );

    // Adding only existing values is not a change.
    let out = ok(
        &mut d,
        json!([{"op": "add", "path": "emails", "value": [{"value": "x@y.z", "type": "other"}]}]),
    );
    assert!(out.changed_attributes.is_empty());
}

#[test]
fn add_new_primary_clears_old_primary() {
    let mut d = base_user();
    ok(
        &mut d,
        json!([{"op": "add", "path": "emails", "value": [{"value": "n@x", "type": "work", "primary": true}]}]),
    );
    let emails = d["emails"].as_array().cloned().unwrap_or_default();
    let primaries: Vec<_> = emails
        .iter()
        .filter(|e| e["primary"] == json!(true))
        .collect();
    assert_eq!(primaries.len(), 1);
    assert_eq!(primaries[0]["value"], json!("n@x"));

    // Re-adding an existing value as primary merges instead of duplicating.
    ok(
        &mut d,
        json!([{"op": "add", "path": "emails", "value": [{"value": "babs@jensen.org", "type": "home", "primary": "True"}]}]),
    );
    let emails = d["emails"].as_array().cloned().unwrap_or_default();
    assert_eq!(emails.len(), 3);
    let primaries: Vec<_> = emails
        .iter()
        .filter(|e| e["primary"] == json!(true))
        .collect();
    assert_eq!(primaries.len(), 1);
    assert_eq!(primaries[0]["value"], json!("babs@jensen.org"));

    // Two new primaries at once is an error.
    let t = fails(
        &USER_RT,
        &d,
        json!([{"op": "add", "path": "emails", "value": [
            {"value": "p@1", "primary": true}, {"value": "p@2", "primary": true}
        ]}]),
    );
    assert_eq!(t, ScimType::InvalidValue);
}

#[test]
fn add_filtered_sub_attribute() {
    let mut d = base_user();
    ok(
        &mut d,
        json!([{"op": "add", "path": "emails[type eq \"WORK\"].display", "value": "Work"}]),
    );
    assert_eq!(d["emails"][0]["display"], json!("Work"));
    assert!(d["emails"][1].get("display").is_none());
}

#[test]
fn entra_add_filtered_creates_element() {
    let mut d = obj(json!({"userName": "a", "schemas": [USER_ID]}));
    ok(
        &mut d,
        json!([
            {"op": "Add", "path": "emails[type eq \"work\"].value", "value": "x@y"},
            {"op": "Add", "path": "addresses[type eq \"work\"].streetAddress", "value": "1 Main St"},
            {"op": "Add", "path": "addresses[type eq \"work\"].locality", "value": "Town"},
            {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"]", "value": {"value": "555"}}
        ]),
    );
    assert_eq!(d["emails"], json!([{"type": "work", "value": "x@y"}]));
    assert_eq!(
        d["addresses"],
        json!([{"type": "work", "streetAddress": "1 Main St", "locality": "Town"}])
    );
    assert_eq!(
        d["phoneNumbers"],
        json!([{"type": "mobile", "value": "555"}])
    );
    // A filter that does not describe a value cannot create one.
    let t = fails(
        &USER_RT,
        &d,
        json!([{"op": "add", "path": "emails[type ne \"home\" and value co \"q\"].display", "value": "x"}]),
    );
    assert_eq!(t, ScimType::NoTarget);
}

#[test]
fn entra_manager_string_and_extension_paths() {
    let mut d = base_user();
    let out = ok(
        &mut d,
        json!([
            {"op": "Add", "path": format!("{ENT}:manager"), "value": "mgr-1"},
            {"op": "Add", "path": format!("{ENT}:department"), "value": "Eng"}
        ]),
    );
    assert_eq!(
        d[ENT],
        json!({"manager": {"value": "mgr-1"}, "department": "Eng"})
    );
    assert_eq!(d["schemas"], json!([USER_ID, ENT]));
    assert_eq!(
        out.changed_attributes,
        vec![format!("{ENT}:department"), format!("{ENT}:manager")]
    );

    ok(
        &mut d,
        json!([{"op": "replace", "path": format!("{ENT}:manager.value"), "value": "mgr-2"}]),
    );
    assert_eq!(d[ENT]["manager"], json!({"value": "mgr-2"}));
    // readOnly manager.displayName inside a value is dropped...
    ok(
        &mut d,
        json!([{"op": "replace", "path": format!("{ENT}:manager"), "value": {"value": "m3", "displayName": "Boss"}}]),
    );
    assert_eq!(d[ENT]["manager"], json!({"value": "m3"}));
    // ...and targeting it is a mutability error.
    let t = fails(
        &USER_RT,
        &d,
        json!([{"op": "replace", "path": format!("{ENT}:manager.displayName"), "value": "x"}]),
    );
    assert_eq!(t, ScimType::Mutability);

    // Removing the last extension attribute drops the object and URN.
    let out = ok(
        &mut d,
        json!([
            {"op": "remove", "path": format!("{ENT}:manager")},
            {"op": "remove", "path": format!("{ENT}:department")}
        ]),
    );
    assert!(!d.contains_key(ENT));
    assert_eq!(d["schemas"], json!([USER_ID]));
    assert_eq!(
        out.changed_attributes,
        vec![format!("{ENT}:department"), format!("{ENT}:manager")]
    );
}

#[test]
fn extension_urn_as_path() {
    let mut d = base_user();
    ok(
        &mut d,
        json!([{"op": "add", "path": ENT, "value": {"department": "X", "id": "ignored"}}]),
    );
    assert_eq!(d[ENT], json!({"department": "X"}));
    ok(&mut d, json!([{"op": "remove", "path": ENT}]));
    assert!(!d.contains_key(ENT));
    assert_eq!(d["schemas"], json!([USER_ID]));
    // Core URN-qualified attribute.
    ok(
        &mut d,
        json!([{"op": "replace", "path": format!("{USER_ID}:displayName"), "value": "D"}]),
    );
    assert_eq!(d["displayName"], json!("D"));
}

// ---- replace ----

#[test]
fn replace_forms() {
    let mut d = base_user();
    ok(
        &mut d,
        json!([
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "replace", "path": "name", "value": {"givenName": "B", "familyName": null}},
            {"op": "replace", "path": "phoneNumbers", "value": [{"value": "1"}]},
            {"op": "replace", "path": "emails", "value": [{"value": "only@x", "primary": true}]}
        ]),
    );
    assert_eq!(d["active"], json!(false));
    assert_eq!(d["name"], json!({"givenName": "B"}));
    assert_eq!(d["phoneNumbers"], json!([{"value": "1"}]));
    assert_eq!(d["emails"], json!([{"value": "only@x", "primary": true}]));
}

#[test]
fn okta_replace_without_path() {
    let mut d = base_user();
    let out = ok(
        &mut d,
        json!([{"op": "replace", "value": {"id": "abc", "active": false}}]),
    );
    assert_eq!(d["active"], json!(false));
    assert_eq!(out.changed_attributes, vec!["active".to_string()]);

    let out = ok(
        &mut d,
        json!([{"op": "replace", "value": {
            "emails": [{"value": "z@z"}],
            "name": {"familyName": "Z"}
        }}]),
    );
    assert_eq!(d["emails"], json!([{"value": "z@z"}]));
    assert_eq!(
        d["name"],
        json!({"givenName": "Barbara", "familyName": "Z"})
    );
    assert_eq!(
        out.changed_attributes,
        vec!["emails".to_string(), "name".into()]
    );
}

#[test]
fn replace_with_value_filter() {
    let mut d = base_user();
    ok(
        &mut d,
        json!([
            {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "new@example.com"},
            {"op": "replace", "path": "emails[type eq \"home\"]", "value": {"value": "h@h", "type": "home", "primary": true}}
        ]),
    );
    assert_eq!(
        d["emails"],
        json!([
            {"value": "new@example.com", "type": "work"},
            {"value": "h@h", "type": "home", "primary": true}
        ])
    );
    // caseExact is honoured: `type` is not caseExact here.
    ok(
        &mut d,
        json!([{"op": "replace", "path": "emails[TYPE eq \"HOME\"].display", "value": "H"}]),
    );
    assert_eq!(d["emails"][1]["display"], json!("H"));
    // A filter that matches nothing: noTarget unless it describes the value
    // to add (see `entra_replace_without_match_adds`).
    let t = fails(
        &USER_RT,
        &d,
        json!([{"op": "replace", "path": "emails[value co \"zz\"].display", "value": "x"}]),
    );
    assert_eq!(t, ScimType::NoTarget);
    let t = fails(
        &USER_RT,
        &d,
        json!([{"op": "replace", "path": "emails[type eq \"other\" or type eq \"x\"]", "value": {"value": "x"}}]),
    );
    assert_eq!(t, ScimType::NoTarget);
}

/// Entra: `Replace emails[type eq "home"].value` on a user with no home
/// email adds one (RFC 7644 §3.5.2.3 would answer noTarget), with and
/// without a sub-attribute in the path; a second replace edits it in place.
#[test]
fn entra_replace_without_match_adds() {
    let mut d = base_user();
    let before = d["emails"].as_array().unwrap().len();
    ok(
        &mut d,
        json!([
            {"op": "Replace", "path": "emails[type eq \"other\"].value", "value": "o@x"},
            {"op": "Replace", "path": "phoneNumbers[type eq \"fax\"]", "value": {"value": "555"}},
            {"op": "Replace", "path": "addresses[type eq \"work\"].streetAddress", "value": "1 Main St"},
            {"op": "Replace", "path": "emails[type eq \"other\"].value", "value": "o2@x"},
            {"op": "Replace", "path": "emails[type eq \"fax\"].value", "value": null}
        ]),
    );
    let emails = d["emails"].as_array().unwrap();
    assert_eq!(emails.len(), before + 1);
    assert_eq!(emails[before], json!({"type": "other", "value": "o2@x"}));
    assert_eq!(d["phoneNumbers"], json!([{"type": "fax", "value": "555"}]));
    assert_eq!(
        d["addresses"],
        json!([{"type": "work", "streetAddress": "1 Main St"}])
    );
    // `primary eq "True"` in the filter becomes a boolean in the element.
    let mut d = obj(json!({"userName": "a", "schemas": [USER_ID]}));
    ok(
        &mut d,
        json!([{"op": "Replace", "path": "emails[primary eq \"True\"].value", "value": "p@x"}]),
    );
    assert_eq!(d["emails"], json!([{"primary": true, "value": "p@x"}]));
    // The new element is checked like any other value.
    let t = fails(
        &USER_RT,
        &d,
        json!([{"op": "Replace", "path": "emails[type eq \"home\"].value", "value": {"a": 1}}]),
    );
    assert_eq!(t, ScimType::InvalidValue);
}

/// Entra adds the single-valued `manager` as a one-element array.
#[test]
fn entra_single_value_in_an_array() {
    let mut d = base_user();
    ok(
        &mut d,
        json!([{"op": "Add", "path": "manager", "value": [{"$ref": "https://x/Users/m-1", "value": "m-1"}]}]),
    );
    assert_eq!(d[ENT]["manager"]["value"], json!("m-1"));
    ok(
        &mut d,
        json!([{"op": "replace", "path": "displayName", "value": ["One"]}]),
    );
    assert_eq!(d["displayName"], json!("One"));
    let t = fails(
        &USER_RT,
        &d,
        json!([{"op": "replace", "path": "displayName", "value": ["One", "Two"]}]),
    );
    assert_eq!(t, ScimType::InvalidValue);
}

// ---- remove ----

#[test]
fn remove_forms() {
    let mut d = base_user();
    d.insert(
        "phoneNumbers".into(),
        json!([{"value": "1", "type": "work"}, {"value": "2", "type": "home"}]),
    );
    let out = ok(
        &mut d,
        json!([
            {"op": "remove", "path": "name.familyName"},
            {"op": "remove", "path": "emails[type eq \"work\"]"},
            {"op": "remove", "path": "phoneNumbers[type eq \"home\"].type"},
            {"op": "remove", "path": "active"}
        ]),
    );
    assert_eq!(d["name"], json!({"givenName": "Barbara"}));
    assert_eq!(
        d["emails"],
        json!([{"value": "babs@jensen.org", "type": "home"}])
    );
    assert_eq!(
        d["phoneNumbers"],
        json!([{"value": "1", "type": "work"}, {"value": "2"}])
    );
    assert!(!d.contains_key("active"));
    assert_eq!(
        out.changed_attributes,
        vec![
            "active".to_string(),
            "emails".into(),
            "name".into(),
            "phoneNumbers".into()
        ]
    );

    // Removing the last value removes the attribute; removing an absent
    // attribute is a no-op.
    ok(
        &mut d,
        json!([{"op": "remove", "path": "emails[value ew \"jensen.org\"]"}, {"op": "remove", "path": "displayName"}]),
    );
    assert!(!d.contains_key("emails"));
    ok(&mut d, json!([{"op": "remove", "path": "name"}]));
    assert!(!d.contains_key("name"));
}

#[test]
fn remove_errors() {
    let d = base_user();
    assert_eq!(
        fails(
            &USER_RT,
            &d,
            json!([{"op": "remove", "path": "emails[type eq \"other\"]"}])
        ),
        ScimType::NoTarget
    );
    assert_eq!(
        fails(&USER_RT, &d, json!([{"op": "remove", "path": "userName"}])),
        ScimType::InvalidValue
    );
    assert_eq!(
        fails(
            &USER_RT,
            &d,
            json!([{"op": "replace", "path": "userName", "value": null}])
        ),
        ScimType::InvalidValue
    );
    assert_eq!(
        fails(&USER_RT, &d, json!([{"op": "remove", "path": "groups"}])),
        ScimType::Mutability
    );
    assert_eq!(
        fails(&USER_RT, &d, json!([{"op": "remove", "path": "id"}])),
        ScimType::Mutability
    );
    assert_eq!(
        fails(
            &USER_RT,
            &d,
            json!([{"op": "replace", "path": "meta.created", "value": "x"}])
        ),
        ScimType::Mutability
    );
    assert_eq!(
        fails(&USER_RT, &d, json!([{"op": "remove", "path": "nope"}])),
        ScimType::InvalidPath
    );
    assert_eq!(
        fails(
            &USER_RT,
            &d,
            json!([{"op": "add", "path": "name.nope", "value": "x"}])
        ),
        ScimType::InvalidPath
    );
    assert_eq!(
        fails(
            &USER_RT,
            &d,
            json!([{"op": "add", "path": "userName.x", "value": "x"}])
        ),
        ScimType::InvalidPath
    );
    assert_eq!(
        fails(
            &USER_RT,
            &d,
            json!([{"op": "add", "path": "name[givenName pr]", "value": "x"}])
        ),
        ScimType::InvalidPath
    );
    assert_eq!(
        fails(
            &USER_RT,
            &d,
            json!([{"op": "add", "path": "urn:x:y:z", "value": "x"}])
        ),
        ScimType::InvalidPath
    );
    assert_eq!(
        fails(&USER_RT, &d, json!([{"op": "add", "value": "notAnObject"}])),
        ScimType::InvalidValue
    );
    assert_eq!(
        fails(
            &USER_RT,
            &d,
            json!([{"op": "replace", "path": "active", "value": "maybe"}])
        ),
        ScimType::InvalidValue
    );
    assert_eq!(
        fails(
            &USER_RT,
            &d,
            json!([{"op": "add", "path": "emails", "value": [{"value": 5}]}])
        ),
        ScimType::InvalidValue
    );
    // A programmatic remove without a path.
    let mut d2 = d.clone();
    let r = PatchRequest {
        operations: vec![PatchOperation {
            op: PatchOpKind::Remove,
            path: None,
            value: None,
        }],
    };
    let e = apply_patch(&USER_RT, &mut d2, &r, &vp)
        .err()
        .map(|e| e.scim_type);
    assert_eq!(e, Some(Some(ScimType::NoTarget)));
}

#[test]
fn microsoft_style_remove_with_value() {
    let mut d = base_user();
    ok(
        &mut d,
        json!([{"op": "remove", "path": "emails", "value": [{"value": "BJENSEN@example.com"}]}]),
    );
    assert_eq!(
        d["emails"],
        json!([{"value": "babs@jensen.org", "type": "home"}])
    );
}

#[test]
fn immutable_and_all_or_nothing() {
    let mut d = base_user();
    // Unset immutable may be set once, and re-setting the same value is fine.
    ok(
        &mut d,
        json!([{"op": "add", "path": "badgeId", "value": "B1"}]),
    );
    ok(
        &mut d,
        json!([{"op": "replace", "path": "badgeId", "value": "B1"}]),
    );
    assert_eq!(
        fails(
            &USER_RT,
            &d,
            json!([{"op": "replace", "path": "badgeId", "value": "B2"}])
        ),
        ScimType::Mutability
    );
    assert_eq!(
        fails(&USER_RT, &d, json!([{"op": "remove", "path": "badgeId"}])),
        ScimType::Mutability
    );
    assert_eq!(
        fails(
            &USER_RT,
            &d,
            json!([{"op": "replace", "value": {"badgeId": "B3"}}])
        ),
        ScimType::Mutability
    );
    // Earlier successful ops in a failing request are not applied.
    assert_eq!(
        fails(
            &USER_RT,
            &d,
            json!([
                {"op": "replace", "path": "displayName", "value": "changed"},
                {"op": "remove", "path": "emails[type eq \"nothing\"]"}
            ])
        ),
        ScimType::NoTarget
    );
    // writeOnly is writable.
    ok(
        &mut d,
        json!([{"op": "replace", "path": "password", "value": "s3cret"}]),
    );
    assert_eq!(d["password"], json!("s3cret"));
}

// ---- groups ----

fn group() -> Map<String, Value> {
    obj(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "G"}))
}

fn members(ops: Value) -> Result<(Map<String, Value>, PatchOutcome), ScimError> {
    let mut d = group();
    run(&GROUP_RT, &mut d, ops).map(|o| (d, o))
}

#[test]
fn group_member_changes() {
    let (d, out) = match members(json!([
        {"op": "Add", "path": "members", "value": [{"value": "u1"}, {"value": "u2", "display": "x"}, {"value": "u1"}]},
        {"op": "Remove", "path": "members[value eq \"u1\"]"},
        {"op": "remove", "path": "members[value eq \"u3\" or value eq \"u4\"]"},
        {"op": "Remove", "path": "members", "value": [{"value": "u2"}]},
        {"op": "replace", "path": "members", "value": [{"value": "u9"}]},
        {"op": "remove", "path": "members"},
        {"op": "add", "path": "members", "value": {"value": "u5"}},
        {"op": "add", "value": {"members": [{"value": "u6"}], "displayName": "G2"}},
        {"op": "replace", "path": "members", "value": []},
        {"op": "add", "path": "members", "value": []}
    ])) {
        Ok(x) => x,
        Err(e) => panic!("{e}"),
    };
    assert!(!d.contains_key("members"));
    assert_eq!(d["displayName"], json!("G2"));
    assert_eq!(
        out.member_changes,
        vec![
            MemberChange::Add(vec!["u1".into(), "u2".into()]),
            MemberChange::Remove(vec!["u1".into()]),
            MemberChange::Remove(vec!["u3".into(), "u4".into()]),
            MemberChange::Remove(vec!["u2".into()]),
            MemberChange::Replace(vec!["u9".into()]),
            MemberChange::RemoveAll,
            MemberChange::Add(vec!["u5".into()]),
            MemberChange::Add(vec!["u6".into()]),
            MemberChange::Replace(vec![]),
        ]
    );
    assert_eq!(
        out.changed_attributes,
        vec!["displayName".to_string(), "members".into()]
    );
}

#[test]
fn group_member_errors() {
    let g = group();
    let t = |ops: Value| fails(&GROUP_RT, &g, ops);
    assert_eq!(
        t(json!([{"op": "add", "path": "members", "value": ["u1"]}])),
        ScimType::InvalidValue
    );
    assert_eq!(
        t(json!([{"op": "add", "path": "members", "value": [{"value": 1}]}])),
        ScimType::InvalidValue
    );
    assert_eq!(
        t(json!([{"op": "add", "path": "members", "value": [{"display": "x"}]}])),
        ScimType::InvalidValue
    );
    assert_eq!(
        t(json!([{"op": "remove", "path": "members[display eq \"x\"]"}])),
        ScimType::InvalidFilter
    );
    assert_eq!(
        t(json!([{"op": "remove", "path": "members[value ne \"x\"]"}])),
        ScimType::InvalidFilter
    );
    assert_eq!(
        t(json!([{"op": "replace", "path": "members[value eq \"x\"]", "value": {"value": "y"}}])),
        ScimType::InvalidPath
    );
    assert_eq!(
        t(json!([{"op": "replace", "path": "members[value eq \"x\"].display", "value": "y"}])),
        ScimType::Mutability
    );
    assert_eq!(
        t(json!([{"op": "replace", "path": "members.value", "value": "y"}])),
        ScimType::InvalidPath
    );
    assert_eq!(
        t(json!([{"op": "remove", "path": "displayName"}])),
        ScimType::InvalidValue
    );
    // A member change followed by a failure reports nothing.
    let mut d = group();
    let r = run(
        &GROUP_RT,
        &mut d,
        json!([
            {"op": "add", "path": "members", "value": [{"value": "u1"}]},
            {"op": "remove", "path": "nope"}
        ]),
    );
    assert!(r.is_err());
}

#[test]
fn members_is_ordinary_outside_groups() {
    // Only a Group's `members` is special.
    let mut d = base_user();
    let t = fails(
        &USER_RT,
        &d,
        json!([{"op": "add", "path": "members", "value": [{"value": "u1"}]}]),
    );
    assert_eq!(t, ScimType::InvalidPath);
    let out = ok(
        &mut d,
        json!([{"op": "add", "value": {"members": [{"value": "u1"}]}}]),
    );
    assert!(out.member_changes.is_empty() && out.changed_attributes.is_empty());
}

// ---- attribute names: the schema's resolver, as filters use it ----

static SHARED_A_ATTRS: [AttributeDef; 2] = [a("costCenter", S), a("displayName", S)];
static SHARED_B_ATTRS: [AttributeDef; 1] = [a("costCenter", S)];
static SHARED_A: SchemaDef = SchemaDef {
    id: "urn:example:params:scim:schemas:extension:a:2.0:User",
    name: "A",
    description: "",
    attributes: &SHARED_A_ATTRS,
};
static SHARED_B: SchemaDef = SchemaDef {
    id: "urn:example:params:scim:schemas:extension:b:2.0:User",
    name: "B",
    description: "",
    attributes: &SHARED_B_ATTRS,
};
/// A user type whose extensions share `costCenter` and reuse the core
/// `displayName`.
static SHARED_RT: ResourceTypeDef = ResourceTypeDef {
    name: "User",
    endpoint: "/Users",
    description: "",
    schema: &USER_SCHEMA,
    extensions: &[(&ENT_SCHEMA, false), (&SHARED_A, false), (&SHARED_B, false)],
};

#[test]
fn unqualified_extension_attribute_is_patched_in_its_extension() {
    for path in ["department", "DEPARTMENT", &format!("{ENT}:department")] {
        let mut d = base_user();
        let out = ok(
            &mut d,
            json!([{"op": "replace", "path": path, "value": "R&D"}]),
        );
        assert_eq!(d[ENT], json!({"department": "R&D"}), "{path}");
        assert_eq!(d["schemas"], json!([USER_ID, ENT]), "{path}");
        assert_eq!(
            out.changed_attributes,
            vec![format!("{ENT}:department")],
            "{path}"
        );

        ok(&mut d, json!([{"op": "remove", "path": path}]));
        assert!(!d.contains_key(ENT), "{path}");
        assert_eq!(d["schemas"], json!([USER_ID]), "{path}");
    }

    let mut d = base_user();
    ok(
        &mut d,
        json!([{"op": "add", "path": "manager.value", "value": "m-1"}]),
    );
    assert_eq!(d[ENT], json!({"manager": {"value": "m-1"}}));
}

/// A key of a path-less value is applied as if it were the path.
#[test]
fn unqualified_extension_attribute_without_path() {
    let mut d = base_user();
    ok(
        &mut d,
        json!([{"op": "replace", "value": {"department": "R&D", "active": false}}]),
    );
    assert_eq!(d[ENT], json!({"department": "R&D"}));
    assert_eq!(d["active"], json!(false));
}

#[test]
fn ambiguous_and_unknown_names_are_refused() {
    let d = base_user();
    for path in ["costCenter", "nope", "costCenter.value"] {
        assert_eq!(
            fails(
                &SHARED_RT,
                &d,
                json!([{"op": "replace", "path": path, "value": "x"}])
            ),
            ScimType::InvalidPath,
            "{path}"
        );
    }
    // Qualified, each is its own attribute.
    let mut d = base_user();
    let path = format!("{}:costCenter", SHARED_B.id);
    run(
        &SHARED_RT,
        &mut d,
        json!([{"op": "add", "path": path, "value": "42"}]),
    )
    .unwrap();
    assert_eq!(d[SHARED_B.id], json!({"costCenter": "42"}));
    assert!(!d.contains_key(SHARED_A.id));

    // An ambiguous key of a path-less value is dropped like an unknown one.
    let mut d = base_user();
    run(
        &SHARED_RT,
        &mut d,
        json!([{"op": "add", "value": {"costCenter": "42", "active": false}}]),
    )
    .unwrap();
    assert_eq!(d["active"], json!(false));
    assert!(!d.contains_key(SHARED_A.id) && !d.contains_key(SHARED_B.id));
}

#[test]
fn core_attribute_wins_over_an_extension_of_the_same_name() {
    let mut d = base_user();
    run(
        &SHARED_RT,
        &mut d,
        json!([{"op": "replace", "path": "displayName", "value": "Babs"}]),
    )
    .unwrap();
    assert_eq!(d["displayName"], json!("Babs"));
    assert!(!d.contains_key(SHARED_A.id));
}

/// `schemas` belongs to no schema; PATCH refuses it as readOnly.
#[test]
fn schemas_is_read_only() {
    let d = base_user();
    for path in ["schemas", &format!("{USER_ID}:schemas")] {
        assert_eq!(
            fails(
                &USER_RT,
                &d,
                json!([{"op": "replace", "path": path, "value": [USER_ID]}])
            ),
            ScimType::Mutability,
            "{path}"
        );
    }
}

/// A name PATCH accepts is one a filter resolves, to the same attribute,
/// and a name PATCH refuses is one a filter cannot resolve.
#[test]
fn patch_and_filters_resolve_names_alike() {
    use crate::scim::filter::{parse_filter, Filter};
    for name in [
        "department",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
        "userName",
        "displayName",
        "costCenter",
        "urn:example:params:scim:schemas:extension:a:2.0:User:costCenter",
        "nope",
    ] {
        let Ok(Filter::Compare { path, .. }) = parse_filter(&format!("{name} eq \"x\"")) else {
            panic!("{name}: not a comparison");
        };
        let in_filter = SHARED_RT.resolve(path.urn.as_deref(), &path.attr, None);
        let mut d = base_user();
        let in_patch = run(
            &SHARED_RT,
            &mut d,
            json!([{"op": "replace", "path": name, "value": "x"}]),
        );
        match (in_filter, in_patch) {
            (Some(r), Ok(out)) => {
                let stored = match r.schema {
                    Some(s) if r.is_extension(&SHARED_RT) => format!("{}:{}", s.id, r.attr.name),
                    _ => r.attr.name.to_string(),
                };
                assert_eq!(out.changed_attributes, vec![stored], "{name}");
            }
            (None, Err(e)) => assert_eq!(e.scim_type, Some(ScimType::InvalidPath), "{name}"),
            (f, p) => panic!("{name}: filter {f:?}, patch {p:?}"),
        }
    }
}
