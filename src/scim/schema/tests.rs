use super::*;

const BASE: &str = "https://example.com/scim/v2/";

fn attr_json<'a>(schema: &'a Value, name: &str) -> &'a Value {
    schema["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("no attribute {name}"))
}

fn sub_json<'a>(attr: &'a Value, name: &str) -> &'a Value {
    attr["subAttributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("no sub-attribute {name}"))
}

fn check_defs(defs: &[AttributeDef], seen: &mut Vec<String>, nested: bool) {
    for d in defs {
        let lower = d.name.to_ascii_lowercase();
        assert!(!seen.contains(&lower), "duplicate attribute {}", d.name);
        seen.push(lower);
        assert!(!d.description.is_empty(), "{} has no description", d.name);
        assert_eq!(
            d.ty == AttrType::Complex,
            !d.sub_attributes.is_empty(),
            "{}: complex iff sub-attributes",
            d.name
        );
        assert_eq!(
            d.ty == AttrType::Reference,
            !d.reference_types.is_empty(),
            "{}: reference iff referenceTypes",
            d.name
        );
        if nested {
            assert_ne!(d.ty, AttrType::Complex, "{}: nested complex", d.name);
        }
        let mut sub_seen = Vec::new();
        check_defs(d.sub_attributes, &mut sub_seen, true);
    }
}

#[test]
fn tables_are_consistent() {
    for s in all_schemas() {
        let mut seen: Vec<String> = COMMON_ATTRIBUTES
            .iter()
            .map(|a| a.name.to_ascii_lowercase())
            .collect();
        check_defs(s.attributes, &mut seen, false);
    }
    let mut seen = Vec::new();
    check_defs(COMMON_ATTRIBUTES, &mut seen, false);
    let ids: Vec<&str> = all_schemas().iter().map(|s| s.id).collect();
    assert_eq!(
        ids,
        [
            USER_URN,
            GROUP_URN,
            ENTERPRISE_USER_URN,
            ATLASSIAN_EXTERNAL_URN
        ]
    );
}

#[test]
fn rfc_characteristics() {
    let user_name = USER_SCHEMA.attr("userName").unwrap();
    assert!(user_name.required && !user_name.case_exact);
    assert_eq!(user_name.uniqueness, Uniqueness::Server);
    let password = USER_SCHEMA.attr("password").unwrap();
    assert_eq!(password.mutability, Mutability::WriteOnly);
    assert_eq!(password.returned, Returned::Never);
    let groups = USER_SCHEMA.attr("groups").unwrap();
    assert!(groups.multi_valued && groups.is_read_only());
    assert!(groups.sub_attributes.iter().all(|s| s.is_read_only()));
    let id = common_attr("ID").unwrap();
    assert!(id.case_exact && id.is_read_only());
    assert_eq!(id.returned, Returned::Always);
    let external = common_attr("externalid").unwrap();
    assert!(external.case_exact);
    assert_eq!(external.mutability, Mutability::ReadWrite);
    assert_eq!(external.returned, Returned::Default);
    let meta = common_attr("meta").unwrap();
    assert!(meta.is_read_only() && meta.sub_attributes.iter().all(|s| s.is_read_only()));
    let members = GROUP_SCHEMA.attr("members").unwrap();
    assert_eq!(
        members.sub("value").unwrap().mutability,
        Mutability::Immutable
    );
    assert!(members.sub("display").unwrap().is_read_only());
    assert_eq!(
        members.sub("type").unwrap().canonical_values,
        ["User", "Group"]
    );
    let display_name = GROUP_SCHEMA.attr("displayName").unwrap();
    assert!(display_name.required && !display_name.case_exact);
    assert_eq!(display_name.uniqueness, Uniqueness::Server);
    let manager = ENTERPRISE_USER_SCHEMA.attr("manager").unwrap();
    assert!(manager.sub("displayName").unwrap().is_read_only());
    assert_eq!(manager.sub("$REF").unwrap().reference_types, ["User"]);
    let account = ATLASSIAN_EXTERNAL_SCHEMA
        .attr("atlassianAccountId")
        .unwrap();
    assert!(account.is_read_only());
    assert_eq!(account.returned, Returned::Default);
}

#[test]
fn lookups_are_case_insensitive() {
    assert_eq!(USER_SCHEMA.attr("USERNAME").unwrap().name, "userName");
    assert_eq!(
        USER_SCHEMA
            .attr("Emails")
            .unwrap()
            .sub("VALUE")
            .unwrap()
            .name,
        "value"
    );
    assert!(USER_SCHEMA.attr("nope").is_none());
    assert!(USER_SCHEMA.attr("name").unwrap().sub("nope").is_none());
    assert_eq!(
        USER_RESOURCE
            .extension("URN:IETF:params:scim:schemas:extension:enterprise:2.0:user")
            .unwrap()
            .id,
        ENTERPRISE_USER_URN
    );
    assert!(USER_RESOURCE.extension(USER_URN).is_none());
    assert!(GROUP_RESOURCE.extension(ENTERPRISE_USER_URN).is_none());
    let ids: Vec<&str> = USER_RESOURCE.schemas().map(|s| s.id).collect();
    assert_eq!(ids, [USER_URN, ENTERPRISE_USER_URN, ATLASSIAN_EXTERNAL_URN]);
    assert_eq!(GROUP_RESOURCE.schemas().count(), 1);
}

#[test]
fn resolve_unqualified() {
    let r = USER_RESOURCE.resolve(None, "username", None).unwrap();
    assert!(std::ptr::eq(r.schema.unwrap(), &USER_SCHEMA));
    assert_eq!(r.attr.name, "userName");
    assert!(r.sub.is_none());
    assert!(!r.is_extension(&USER_RESOURCE));

    let r = USER_RESOURCE.resolve(None, "id", None).unwrap();
    assert!(r.schema.is_none());
    let r = USER_RESOURCE
        .resolve(None, "meta", Some("LASTMODIFIED"))
        .unwrap();
    assert!(r.schema.is_none());
    assert_eq!(r.sub.unwrap().name, "lastModified");

    let r = USER_RESOURCE.resolve(None, "department", None).unwrap();
    assert!(std::ptr::eq(r.schema.unwrap(), &ENTERPRISE_USER_SCHEMA));
    assert!(r.is_extension(&USER_RESOURCE));
    let r = USER_RESOURCE.resolve(None, "emails", Some("type")).unwrap();
    assert_eq!(r.sub.unwrap().canonical_values, ["work", "home", "other"]);

    assert!(USER_RESOURCE
        .resolve(None, "emails", Some("nope"))
        .is_none());
    assert!(USER_RESOURCE.resolve(None, "userName", Some("x")).is_none());
    assert!(USER_RESOURCE.resolve(None, "members", None).is_none());
    assert!(GROUP_RESOURCE.resolve(None, "department", None).is_none());
    assert!(GROUP_RESOURCE
        .resolve(None, "members", Some("value"))
        .is_some());
}

#[test]
fn resolve_qualified() {
    let r = USER_RESOURCE
        .resolve(
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:user"),
            "manager",
            Some("value"),
        )
        .unwrap();
    assert_eq!(r.schema.unwrap().id, ENTERPRISE_USER_URN);
    assert_eq!(r.attr.name, "manager");
    assert_eq!(r.sub.unwrap().name, "value");

    let r = USER_RESOURCE
        .resolve(Some(USER_URN), "name", Some("givenName"))
        .unwrap();
    assert_eq!(r.schema.unwrap().id, USER_URN);
    let r = USER_RESOURCE
        .resolve(Some(USER_URN), "externalId", None)
        .unwrap();
    assert!(r.schema.is_none());

    // Wrong schema for the attribute, or a schema this type lacks.
    assert!(USER_RESOURCE
        .resolve(Some(USER_URN), "department", None)
        .is_none());
    assert!(USER_RESOURCE
        .resolve(Some(ENTERPRISE_USER_URN), "userName", None)
        .is_none());
    assert!(USER_RESOURCE
        .resolve(Some(ENTERPRISE_USER_URN), "id", None)
        .is_none());
    assert!(USER_RESOURCE
        .resolve(Some(GROUP_URN), "displayName", None)
        .is_none());
    assert!(GROUP_RESOURCE
        .resolve(Some(ENTERPRISE_USER_URN), "department", None)
        .is_none());
    assert!(USER_RESOURCE
        .resolve(Some("urn:x"), "userName", None)
        .is_none());
}

#[test]
fn user_schema_json() {
    let v = schema_json(&USER_SCHEMA, BASE);
    assert_eq!(v["schemas"], json!([SCHEMA_URN]));
    assert_eq!(v["id"], USER_URN);
    assert_eq!(v["name"], "User");
    assert_eq!(v["meta"]["resourceType"], "Schema");
    assert_eq!(
        v["meta"]["location"],
        format!("https://example.com/scim/v2/Schemas/{USER_URN}")
    );

    let user_name = attr_json(&v, "userName");
    assert_eq!(user_name["type"], "string");
    assert_eq!(user_name["multiValued"], false);
    assert_eq!(user_name["required"], true);
    assert_eq!(user_name["caseExact"], false);
    assert_eq!(user_name["mutability"], "readWrite");
    assert_eq!(user_name["returned"], "default");
    assert_eq!(user_name["uniqueness"], "server");
    assert!(user_name.get("subAttributes").is_none());
    assert!(user_name.get("referenceTypes").is_none());
    assert!(user_name.get("canonicalValues").is_none());

    let password = attr_json(&v, "password");
    assert_eq!(password["returned"], "never");
    assert_eq!(password["mutability"], "writeOnly");

    assert_eq!(attr_json(&v, "active")["type"], "boolean");
    assert_eq!(
        attr_json(&v, "profileUrl")["referenceTypes"],
        json!(["external"])
    );

    let emails = attr_json(&v, "emails");
    assert_eq!(emails["type"], "complex");
    assert_eq!(emails["multiValued"], true);
    assert_eq!(
        sub_json(emails, "type")["canonicalValues"],
        json!(["work", "home", "other"])
    );
    assert_eq!(sub_json(emails, "primary")["type"], "boolean");

    let groups = attr_json(&v, "groups");
    assert_eq!(groups["mutability"], "readOnly");
    assert_eq!(sub_json(groups, "$ref")["type"], "reference");
    assert_eq!(
        sub_json(groups, "$ref")["referenceTypes"],
        json!(["User", "Group"])
    );
    assert_eq!(
        sub_json(attr_json(&v, "x509Certificates"), "value")["type"],
        "binary"
    );

    // Common attributes belong to no schema.
    let names: Vec<&str> = v["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    for common in ["id", "externalId", "meta", "schemas"] {
        assert!(!names.contains(&common), "{common} listed in User schema");
    }
}

#[test]
fn other_schema_json() {
    let v = schema_json(&ENTERPRISE_USER_SCHEMA, "https://h/scim");
    assert_eq!(v["id"], ENTERPRISE_USER_URN);
    let manager = attr_json(&v, "manager");
    assert_eq!(sub_json(manager, "displayName")["mutability"], "readOnly");
    assert_eq!(sub_json(manager, "$ref")["referenceTypes"], json!(["User"]));

    let v = schema_json(&GROUP_SCHEMA, "https://h/scim");
    let members = attr_json(&v, "members");
    assert_eq!(sub_json(members, "value")["mutability"], "immutable");
    assert_eq!(
        sub_json(members, "type")["canonicalValues"],
        json!(["User", "Group"])
    );
    assert_eq!(attr_json(&v, "displayName")["required"], true);

    let v = schema_json(&ATLASSIAN_EXTERNAL_SCHEMA, "https://h/scim");
    assert_eq!(
        v["meta"]["location"],
        format!("https://h/scim/Schemas/{ATLASSIAN_EXTERNAL_URN}")
    );
    assert_eq!(
        attr_json(&v, "atlassianAccountId")["mutability"],
        "readOnly"
    );
}

#[test]
fn common_attribute_json() {
    let id = attribute_json(common_attr("id").unwrap());
    assert_eq!(id["returned"], "always");
    assert_eq!(id["caseExact"], true);
    assert_eq!(id["mutability"], "readOnly");
    assert_eq!(id["uniqueness"], "server");
    let meta = attribute_json(common_attr("meta").unwrap());
    assert_eq!(sub_json(&meta, "created")["type"], "dateTime");
    assert_eq!(
        sub_json(&meta, "location")["referenceTypes"],
        json!(["uri"])
    );
}

#[test]
fn resource_type_documents() {
    let v = resource_type_json(&USER_RESOURCE, BASE);
    assert_eq!(
        v,
        json!({
            "schemas": [RESOURCE_TYPE_URN],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "User Account",
            "schema": USER_URN,
            "schemaExtensions": [
                { "schema": ENTERPRISE_USER_URN, "required": false },
                { "schema": ATLASSIAN_EXTERNAL_URN, "required": false },
            ],
            "meta": {
                "resourceType": "ResourceType",
                "location": "https://example.com/scim/v2/ResourceTypes/User",
            },
        })
    );
    let v = resource_type_json(&GROUP_RESOURCE, "https://h/scim");
    assert_eq!(v["schema"], GROUP_URN);
    assert_eq!(v["endpoint"], "/Groups");
    assert!(v.get("schemaExtensions").is_none());
    assert_eq!(v["meta"]["location"], "https://h/scim/ResourceTypes/Group");
    assert_eq!(all_resource_types().len(), 2);
}

#[test]
fn service_provider_config_document() {
    let features = ServiceProviderFeatures {
        patch: true,
        bulk: None,
        filter_max_results: 100,
        change_password: false,
        sort: false,
        etag: true,
        cursor_timeout_seconds: 600,
    };
    let v = service_provider_config_json(&features, BASE);
    assert_eq!(
        v["pagination"],
        json!({
            "cursor": true,
            "index": true,
            "defaultPaginationMethod": "index",
            "defaultPageSize": 100,
            "maxPageSize": 100,
            "cursorTimeout": 600,
        })
    );
    assert_eq!(v["schemas"], json!([SERVICE_PROVIDER_CONFIG_URN]));
    assert_eq!(v["patch"], json!({ "supported": true }));
    assert_eq!(
        v["bulk"],
        json!({ "supported": false, "maxOperations": 0, "maxPayloadSize": 0 })
    );
    assert_eq!(v["filter"], json!({ "supported": true, "maxResults": 100 }));
    assert_eq!(v["changePassword"], json!({ "supported": false }));
    assert_eq!(v["sort"], json!({ "supported": false }));
    assert_eq!(v["etag"], json!({ "supported": true }));
    assert_eq!(
        v["authenticationSchemes"],
        json!([{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "Authentication with the directory's API key as a bearer token",
            "specUri": "https://www.rfc-editor.org/info/rfc6750",
            "primary": true,
        }])
    );
    assert_eq!(v["meta"]["resourceType"], "ServiceProviderConfig");
    assert_eq!(
        v["meta"]["location"],
        "https://example.com/scim/v2/ServiceProviderConfig"
    );

    let v = service_provider_config_json(
        &ServiceProviderFeatures {
            bulk: Some((1000, 1_048_576)),
            ..features
        },
        BASE,
    );
    assert_eq!(
        v["bulk"],
        json!({ "supported": true, "maxOperations": 1000, "maxPayloadSize": 1_048_576 })
    );
    // A smaller maximum page is also the default page.
    let v = service_provider_config_json(
        &ServiceProviderFeatures {
            filter_max_results: 20,
            ..features
        },
        BASE,
    );
    assert_eq!(v["pagination"]["defaultPageSize"], 20);
    assert_eq!(v["pagination"]["maxPageSize"], 20);
}

static SHARED_A: SchemaDef = SchemaDef {
    id: "urn:example:a",
    name: "A",
    description: "",
    attributes: &[string("costCenter", ""), string("userName", "")],
};
static SHARED_B: SchemaDef = SchemaDef {
    id: "urn:example:b",
    name: "B",
    description: "",
    attributes: &[string("costCenter", "")],
};
static SHARED_RT: ResourceTypeDef = ResourceTypeDef {
    name: "User",
    endpoint: "/Users",
    description: "",
    schema: &USER_SCHEMA,
    extensions: &[
        (&ENTERPRISE_USER_SCHEMA, false),
        (&SHARED_A, false),
        (&SHARED_B, false),
    ],
};

/// RFC 7644 §3.10: an unqualified name is a core attribute if there is
/// one, else the one extension attribute of that name; a name several
/// extensions share needs its URN.
#[test]
fn resolve_unqualified_extension_names() {
    let r = SHARED_RT.resolve(None, "department", None).unwrap();
    assert_eq!(r.schema.unwrap().id, ENTERPRISE_USER_URN);
    let r = SHARED_RT.resolve(None, "userName", None).unwrap();
    assert!(std::ptr::eq(r.schema.unwrap(), &USER_SCHEMA));
    assert!(SHARED_RT.resolve(None, "costCenter", None).is_none());
    assert!(SHARED_RT.resolve(None, "COSTCENTER", Some("x")).is_none());
    let r = SHARED_RT
        .resolve(Some("urn:example:b"), "costCenter", None)
        .unwrap();
    assert!(std::ptr::eq(r.schema.unwrap(), &SHARED_B));
    let r = SHARED_RT
        .resolve(Some("urn:example:a"), "userName", None)
        .unwrap();
    assert!(std::ptr::eq(r.schema.unwrap(), &SHARED_A));
}
