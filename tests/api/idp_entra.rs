//! Microsoft Entra ID, one replayed fixture per documented behaviour.
//!
//! Sources, cited above each test:
//! * [Tutorial] "Tutorial: Develop and plan provisioning for a SCIM endpoint
//!   in Microsoft Entra ID" (MicrosoftDocs/entra-docs,
//!   docs/identity/app-provisioning/use-scim-to-provision-users-and-groups.md);
//! * [Known issues] "Known issues and resolutions with SCIM 2.0 protocol
//!   compliance of the Microsoft Entra user provisioning service"
//!   (application-provisioning-config-problem-scim-compatibility.md).
//!
//! The whole user and group sequences are replayed in `idp.rs`; these
//! tests each pin one behaviour, so a regression names what broke.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, M};
use crate::idp::{patch_op, sorted, Idp, ENTERPRISE, USER};

/// A user with one work email, as Entra creates it.
fn bjensen() -> Value {
    json!({
        "schemas": [USER, ENTERPRISE],
        "externalId": "bjensen",
        "userName": "bjensen@testuser.com",
        "active": true,
        "emails": [{ "primary": true, "type": "work", "value": "bjensen@testuser.com" }],
        "name": { "familyName": "Jensen", "givenName": "Barbara" }
    })
}

fn email_of<'v>(user: &'v Value, kind: &str) -> Vec<&'v Value> {
    user["emails"]
        .as_array()
        .map(|a| a.iter().filter(|e| e["type"] == kind).collect())
        .unwrap_or_default()
}

/// [Tutorial] "Integrate your SCIM endpoint", Test Connection: "queries the
/// SCIM endpoint for a user that doesn't exist, using a random GUID as the
/// matching property … The expected correct response is HTTP 200 OK with an
/// empty SCIM ListResponse message"; and "General": Entra "makes requests to
/// fetch a random user and group to ensure that the endpoint and the
/// credentials are valid". Either matching property (userName, externalId)
/// and a group's displayName.
#[tokio::test]
async fn entra_test_connection_random_guid_is_an_empty_list() {
    let app = spawn_app().await;
    let entra = Idp::entra(&app).await;
    // Some data, so an empty answer is the filter's doing.
    entra.user(bjensen()).await;
    let guid = "7d5c8e6a-95d1-4b8e-a3b4-0e1f2a3b4c5d";
    for (endpoint, filter) in [
        ("/Users", format!("userName eq \"{guid}\"")),
        ("/Users", format!("externalId eq \"{guid}\"")),
        ("/Groups", format!("displayName eq \"{guid}\"")),
    ] {
        let r = entra
            .filter(endpoint, &filter, "excludedAttributes=members")
            .await;
        assert!(r.list(0).is_empty(), "{endpoint} {filter}");
        assert_eq!(r.body["startIndex"], 1);
        assert!(r.content_type().starts_with("application/scim+json"));
    }
}

/// [Tutorial] "Design your user and group schema": Entra's mail maps to
/// `emails[type eq "work"].value`, mobile to `phoneNumbers[type eq
/// "mobile"].value`, postalCode to `addresses[type eq "work"].postalCode`,
/// proxy-Addresses to `emails[type eq "other"].Value` and the office to
/// `addresses[type eq "other"].Formatted` (sub-attribute names as written
/// there), all sent as `Replace` on a user that may not have that element
/// yet. RFC 7644 §3.5.2.3 answers `noTarget` when a value filter matches
/// nothing; Entra expects the element to be added, carrying the filter's
/// `type`.
#[tokio::test]
async fn entra_replace_on_a_filtered_path_with_no_match_adds_the_element() {
    let app = spawn_app().await;
    let entra = Idp::entra(&app).await;
    let user = format!("/Users/{}", entra.user(bjensen()).await);

    let r = entra
        .patch(
            &user,
            patch_op(json!([
                { "op": "Replace", "path": "emails[type eq \"home\"].value", "value": "x@example.com" },
                { "op": "Replace", "path": "emails[type eq \"other\"].Value", "value": "smtp:bj@example.com" },
                { "op": "Replace", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "55555555555" },
                { "op": "Replace", "path": "addresses[type eq \"work\"].postalCode", "value": "98052" },
                { "op": "Replace", "path": "addresses[type eq \"other\"].Formatted", "value": "Building 92" }
            ])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let u = &r.body;
    assert_eq!(
        email_of(u, "home"),
        [&json!({ "type": "home", "value": "x@example.com" })]
    );
    assert_eq!(
        email_of(u, "other"),
        [&json!({ "type": "other", "value": "smtp:bj@example.com" })]
    );
    // The work email keeps its value and stays the primary one.
    assert_eq!(
        email_of(u, "work"),
        [&json!({ "primary": true, "type": "work", "value": "bjensen@testuser.com" })]
    );
    assert_eq!(
        u["phoneNumbers"],
        json!([{ "type": "mobile", "value": "55555555555" }])
    );
    assert_eq!(
        u["addresses"],
        json!([
            { "type": "work", "postalCode": "98052" },
            { "type": "other", "formatted": "Building 92" }
        ])
    );

    // The next cycle replaces the element now there, in place.
    let r = entra
        .patch(
            &user,
            patch_op(json!([
                { "op": "Replace", "path": "emails[type eq \"home\"].value", "value": "y@example.com" },
                { "op": "Replace", "path": "addresses[type eq \"work\"].streetAddress", "value": "1 Microsoft Way" }
            ])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        email_of(&r.body, "home"),
        [&json!({ "type": "home", "value": "y@example.com" })]
    );
    assert_eq!(r.body["emails"].as_array().unwrap().len(), 3);
    assert_eq!(
        r.body["addresses"][0],
        json!({ "type": "work", "postalCode": "98052", "streetAddress": "1 Microsoft Way" })
    );
    // Stored, not just echoed: the new element is found by a filter.
    let found = entra
        .filter(
            "/Users",
            "emails[type eq \"home\"].value eq \"y@example.com\"",
            "",
        )
        .await;
    assert_eq!(found.list(1)[0]["userName"], "bjensen@testuser.com");

    // A value that does not fit the attribute is still refused, and
    // nothing of the request is written.
    let bad = entra
        .patch(
            &user,
            patch_op(json!([
                { "op": "Replace", "path": "emails[type eq \"home\"].value", "value": "z@example.com" },
                { "op": "Replace", "path": "emails[type eq \"fax\"].value", "value": { "no": "object" } }
            ])),
        )
        .await;
    bad.error(400);
    let now = entra.get(&user).await;
    assert_eq!(email_of(&now.body, "home")[0]["value"], "y@example.com");
    assert!(email_of(&now.body, "fax").is_empty());
}

/// The same Entra mapping with the whole element as the value (the form
/// without a sub-attribute, which RFC 7644 §3.5.2.3 also answers with
/// `noTarget` when nothing matches): the element is added with the
/// filter's `type` and the value's sub-attributes, and a filter that names
/// no value to copy (not `eq` alone) still gets `noTarget`.
/// [Tutorial] "Design your user and group schema"; [Known issues]
/// "Patch requests for multi-value attributes".
#[tokio::test]
async fn entra_replace_whole_filtered_element_with_no_match_adds_it() {
    let app = spawn_app().await;
    let entra = Idp::entra(&app).await;
    let user = format!("/Users/{}", entra.user(bjensen()).await);

    let r = entra
        .patch(
            &user,
            patch_op(json!([{
                "op": "Replace",
                "path": "phoneNumbers[type eq \"work\"]",
                "value": { "value": "+1 425 555 0100" }
            }])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["phoneNumbers"],
        json!([{ "type": "work", "value": "+1 425 555 0100" }])
    );

    let r = entra
        .patch(
            &user,
            patch_op(json!([{
                "op": "Replace",
                "path": "phoneNumbers[value co \"999\"]",
                "value": { "value": "999" }
            }])),
        )
        .await;
    r.error(400);
    assert_eq!(r.body["scimType"], "noTarget");
}

/// [Known issues] "Requests made to disable users": without the
/// `aadOptscim062020` flag Entra sends `"value": "False"`, a string, for the
/// boolean `active`; and Entra's filters carry booleans the same way
/// (`primary eq "True"`). RFC 7644 §3.4.2.2 wants the JSON literal; a
/// string `"true"`/`"false"` (any case) is read as the boolean wherever the
/// attribute is boolean: in list filters, in PATCH value filters, and in
/// PATCH values (path-less too). Any other string is still refused.
#[tokio::test]
async fn entra_string_booleans_compare_as_booleans() {
    let app = spawn_app().await;
    let entra = Idp::entra(&app).await;
    let mut body = bjensen();
    body["emails"] = json!([
        { "type": "work", "value": "bjensen@testuser.com", "primary": true },
        { "type": "home", "value": "babs@example.com" }
    ]);
    let id = entra.user(body).await;
    let user = format!("/Users/{id}");

    // A PATCH value filter on a boolean sub-attribute.
    let r = entra
        .patch(
            &user,
            patch_op(json!([{
                "op": "Replace",
                "path": "emails[primary eq \"True\"].value",
                "value": "barbara@testuser.com"
            }])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        email_of(&r.body, "work")[0]["value"],
        "barbara@testuser.com"
    );
    assert_eq!(email_of(&r.body, "home")[0]["value"], "babs@example.com");

    // List filters, on a column (`active`) and inside an element.
    for filter in [
        "active eq \"True\"",
        "active ne \"false\"",
        "emails[primary eq \"TRUE\"].value eq \"barbara@testuser.com\"",
        "emails[type eq \"work\" and primary ne \"false\"]",
    ] {
        let r = entra.filter("/Users", filter, "").await;
        assert_eq!(r.list(1)[0]["id"], id.as_str(), "{filter}");
    }
    for filter in [
        "active eq \"False\"",
        "emails[primary eq \"true\"].value eq \"babs@example.com\"",
    ] {
        assert!(entra.filter("/Users", filter, "").await.list(0).is_empty());
    }

    // A path-less replace with the string form.
    let r = entra
        .patch(
            &user,
            patch_op(json!([{ "op": "Replace", "value": { "active": "False" } }])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["active"], false);
    let r = entra.filter("/Users", "active eq \"false\"", "").await;
    assert_eq!(r.list(1)[0]["id"], id.as_str());

    // Not a boolean at all: a client error, never a silent miss.
    let r = entra.filter("/Users", "active eq \"yes\"", "").await;
    r.error(400);
    assert_eq!(r.body["scimType"], "invalidFilter");
    let r = entra
        .patch(
            &user,
            patch_op(json!([{ "op": "Replace", "path": "active", "value": "maybe" }])),
        )
        .await;
    r.error(400);
}

/// [Tutorial] "General": "Don't require a case-sensitive match on
/// structural elements in SCIM, in particular PATCH op operation values …
/// Microsoft Entra ID emits the values of op as Add, Replace, and Remove."
#[tokio::test]
async fn entra_patch_op_names_in_any_case() {
    let app = spawn_app().await;
    let entra = Idp::entra(&app).await;
    let user = format!("/Users/{}", entra.user(bjensen()).await);
    let r = entra
        .patch(
            &user,
            patch_op(json!([
                { "op": "Add", "path": "nickName", "value": "Babs" },
                { "op": "Replace", "path": "title", "value": "Tour Guide" },
                { "op": "REPLACE", "path": "displayName", "value": "Babs Jensen" },
                { "op": "Remove", "path": "name.givenName" }
            ])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["nickName"], "Babs");
    assert_eq!(r.body["title"], "Tour Guide");
    assert_eq!(r.body["displayName"], "Babs Jensen");
    assert_eq!(r.body["name"], json!({ "familyName": "Jensen" }));
    // An op that is none of the three, in any case, is refused.
    let r = entra
        .patch(
            &user,
            patch_op(json!([{ "op": "Merge", "path": "title", "value": "x" }])),
        )
        .await;
    r.error(400);
    assert_eq!(r.body["scimType"], "invalidSyntax");
}

/// [Tutorial] "Gallery onboarding checklist": "Support updating multiple
/// group memberships with a single PATCH"; "Update Group [Add Members]" and
/// "[Remove Members]" with `"$ref": null`; [Known issues] "Requests made to
/// remove a group member", with and without the flag. Several members in
/// one operation, several operations in one request, members removed by a
/// value list and by `members[value eq "…"]`.
#[tokio::test]
async fn entra_group_membership_changes_in_one_patch() {
    let app = spawn_app().await;
    let entra = Idp::entra(&app).await;
    let mut users = Vec::new();
    for i in 0..5 {
        users.push(
            entra
                .user(json!({ "schemas": [USER], "userName": format!("u{i}@testuser.com") }))
                .await,
        );
    }
    let g = entra
        .post(
            "/Groups",
            json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Sales" }),
        )
        .await;
    assert_eq!(g.status, 201, "{}", g.body);
    let gid = g.id();
    let group = format!("/Groups/{gid}");

    let r = entra
        .patch(
            &group,
            patch_op(json!([{
                "op": "Add",
                "path": "members",
                "value": users.iter().map(|u| json!({ "$ref": null, "value": u })).collect::<Vec<_>>()
            }])),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let all: Vec<&str> = users.iter().map(String::as_str).collect();
    assert_eq!(entra.members(&gid).await, sorted(&all));

    let r = entra
        .patch(
            &group,
            patch_op(json!([
                {
                    "op": "Remove",
                    "path": "members",
                    "value": [{ "$ref": null, "value": users[0] }, { "$ref": null, "value": users[1] }]
                },
                { "op": "remove", "path": format!("members[value eq \"{}\"]", users[2]) },
                { "op": "Add", "path": "members", "value": [{ "value": users[0] }] }
            ])),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(
        entra.members(&gid).await,
        sorted(&[&users[0], &users[3], &users[4]])
    );

    // Removing members already gone, by either form, is no error: Entra
    // retries.
    let r = entra
        .patch(
            &group,
            patch_op(json!([
                { "op": "remove", "path": format!("members[value eq \"{}\"]", users[2]) },
                { "op": "Remove", "path": "members", "value": [{ "value": users[1] }] }
            ])),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);

    // A member that is not a user of this directory fails the whole
    // request: nothing of it is applied.
    let r = entra
        .patch(
            &group,
            patch_op(json!([
                { "op": "Remove", "path": "members", "value": [{ "value": users[3] }] },
                { "op": "Add", "path": "members", "value": [{ "value": "3b9f5a52-0c52-4a8e-9f0e-6bd1c2b4f1a7" }] }
            ])),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        entra.members(&gid).await,
        sorted(&[&users[0], &users[3], &users[4]])
    );
}

/// [Tutorial] "Handling provisioning and deprovisioning of users",
/// Example 5: the manager is added with an unqualified `manager` path and
/// a one-element array holding `$ref` and `value`, though `manager` is a
/// single-valued attribute of the enterprise extension; Example 4: Entra
/// checks the current manager with a filter on `id` and an unqualified
/// `manager` compared without a sub-attribute, asking only for the id.
/// RFC 7644 §3.10 resolves the unqualified name to the one extension that
/// has it; scimd reads `manager eq "x"` as `manager.value eq "x"` and a
/// one-element array for a single-valued attribute as its element.
#[tokio::test]
async fn entra_manager_added_as_an_array_and_queried_without_sub_attribute() {
    let app = spawn_app().await;
    let entra = Idp::entra(&app).await;
    let boss = entra
        .user(json!({ "schemas": [USER], "userName": "boss@testuser.com" }))
        .await;
    let id = entra.user(bjensen()).await;
    let user = format!("/Users/{id}");

    let r = entra
        .patch(
            &user,
            patch_op(json!([{
                "op": "Add",
                "path": "manager",
                "value": [{ "$ref": format!("{}/Users/{boss}", entra.dir.base_url), "value": boss }]
            }])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body[ENTERPRISE]["manager"]["value"], boss.as_str());

    let q = entra
        .filter(
            "/Users",
            &format!("id eq \"{id}\" and manager eq \"{boss}\""),
            "attributes=id",
        )
        .await;
    let found = q.list(1);
    assert_eq!(found[0]["id"], id.as_str());
    assert!(found[0].get("userName").is_none(), "{}", found[0]);
    // Whatever is asked for, every resource keeps its `id` ("General":
    // "Every response that returns a resource should ensure each resource
    // has this property").
    let q = entra
        .filter(
            "/Users",
            &format!("manager eq \"{boss}\""),
            "attributes=userName",
        )
        .await;
    let found = q.list(1);
    assert_eq!(found[0]["id"], id.as_str());
    assert_eq!(found[0]["userName"], "bjensen@testuser.com");
    assert!(found[0].get("emails").is_none(), "{}", found[0]);
    assert!(entra
        .filter(
            "/Users",
            &format!("id eq \"{id}\" and manager eq \"{id}\""),
            "attributes=id"
        )
        .await
        .list(0)
        .is_empty());

    // More than one value for the single-valued manager is refused.
    let r = entra
        .patch(
            &user,
            patch_op(json!([{
                "op": "Add",
                "path": "manager",
                "value": [{ "value": boss }, { "value": id }]
            }])),
        )
        .await;
    r.error(400);
    assert_eq!(r.body["scimType"], "invalidValue");
}

/// [Tutorial] "Handling provisioning and deprovisioning of users",
/// Example 2: the create request lists the enterprise URN without its last
/// colon (`…:enterprise:2.0User`), sends `null` for the attributes it has
/// no value for, and puts `department` and `manager` at the top level.
/// None of this may fail the create; the nulls mean "no value".
#[tokio::test]
async fn entra_create_with_nulls_and_a_misspelt_schema() {
    let app = spawn_app().await;
    let entra = Idp::entra(&app).await;
    let r = entra
        .post(
            "/Users",
            json!({
                "schemas": [USER, "urn:ietf:params:scim:schemas:extension:enterprise:2.0User"],
                "externalId": "jyoung",
                "userName": "jyoung@testuser.com",
                "active": true,
                "addresses": null,
                "displayName": "Joy Young",
                "emails": [{ "type": "work", "value": "jyoung@Contoso.com", "primary": true }],
                "meta": { "resourceType": "User" },
                "name": { "familyName": "Young", "givenName": "Joy" },
                "phoneNumbers": null,
                "preferredLanguage": null,
                "title": null,
                "department": null,
                "manager": null
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let u = &r.body;
    for absent in [
        "addresses",
        "phoneNumbers",
        "preferredLanguage",
        "title",
        "department",
        "manager",
    ] {
        assert!(u.get(absent).is_none(), "{absent} in {u}");
    }
    // The account link (Atlassian's extension) is the server's own.
    assert_eq!(
        u["schemas"],
        json!([USER, "urn:scim:schemas:extension:atlassian-external:1.0"])
    );
    assert_eq!(u["displayName"], "Joy Young");
    // Example 1: the lookup by the matching attribute (externalId, quoted
    // as Entra sends it in "Get User by query").
    let q = entra.filter("/Users", "externalId eq \"jyoung\"", "").await;
    assert_eq!(q.list(1)[0]["userName"], "jyoung@testuser.com");
}

/// [Tutorial] "Handling provisioning and deprovisioning of users",
/// Example 1 writes the lookup as `filter=externalId eq jyoung`, without
/// quotes; that is the reference library's parsed form, while the requests
/// Entra sends ("Get User by query") quote the value, as RFC 7644 §3.4.2.2
/// requires. scimd keeps the RFC grammar: a bare word is refused with
/// `invalidFilter` rather than guessed at (`eq truex` must stay an error).
#[tokio::test]
async fn entra_unquoted_filter_value_is_an_invalid_filter() {
    let app = spawn_app().await;
    let entra = Idp::entra(&app).await;
    let r = entra.filter("/Users", "externalId eq jyoung", "").await;
    r.error(400);
    assert_eq!(r.body["scimType"], "invalidFilter");
}

/// [Tutorial] "General": "Values sent should be stored in the same format
/// they were sent … A phone number sent as 55555555555 shouldn't be
/// saved/returned as +5 (555) 555-5555"; and "/Users": attributes used for
/// uniqueness must be usable in a filter (`userName eq`, and
/// `emails[type eq "work"].value eq`), which compare without regard to
/// case as RFC 7643 §4.1 makes them caseExact false.
#[tokio::test]
async fn entra_values_are_stored_as_sent() {
    let app = spawn_app().await;
    let entra = Idp::entra(&app).await;
    let id = entra
        .user(json!({
            "schemas": [USER],
            "userName": "JYoung@Contoso.com",
            "emails": [{ "type": "work", "value": "JYoung@Contoso.com", "primary": true }],
            "phoneNumbers": [{ "type": "work", "value": "55555555555" }],
            "name": { "givenName": "joy", "familyName": "YOUNG" }
        }))
        .await;
    let u = entra.get(&format!("/Users/{id}")).await.body;
    assert_eq!(u["userName"], "JYoung@Contoso.com");
    assert_eq!(u["emails"][0]["value"], "JYoung@Contoso.com");
    assert_eq!(u["phoneNumbers"][0]["value"], "55555555555");
    assert_eq!(
        u["name"],
        json!({ "givenName": "joy", "familyName": "YOUNG" })
    );
    for filter in [
        "userName eq \"jyoung@contoso.com\"",
        "emails[type eq \"work\"].value eq \"JYOUNG@CONTOSO.COM\"",
    ] {
        let r = entra.filter("/Users", filter, "").await;
        assert_eq!(r.list(1)[0]["id"], id.as_str(), "{filter}");
    }
}

/// [Tutorial] "General": "The header for all the responses should be of
/// content-Type: application/scim+json": resources, lists, PATCH answers,
/// errors (404, 409, 400) and discovery.
#[tokio::test]
async fn entra_every_response_is_scim_json() {
    let app = spawn_app().await;
    let entra = Idp::entra(&app).await;
    let created = entra.post("/Users", bjensen()).await;
    assert_eq!(created.status, 201);
    let user = format!("/Users/{}", created.id());
    let replies = [
        created,
        entra.get(&user).await,
        entra
            .filter("/Users", "userName eq \"bjensen@testuser.com\"", "")
            .await,
        entra
            .patch(
                &user,
                patch_op(json!([{ "op": "Replace", "path": "title", "value": "x" }])),
            )
            .await,
        entra.post("/Users", bjensen()).await,
        entra.get("/Users/5171a35d82074e068ce2").await,
        entra.filter("/Users", "userName zz \"x\"", "").await,
        entra.get("/Schemas").await,
        entra.get("/ServiceProviderConfig").await,
        entra.get("/ResourceTypes").await,
    ];
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [201, 200, 200, 200, 409, 404, 400, 200, 200, 200]);
    for r in &replies {
        assert!(
            r.content_type().starts_with("application/scim+json"),
            "{} {}",
            r.status,
            r.content_type()
        );
    }
}

/// [Tutorial] "Design your user and group schema": the example resource's
/// `meta.version` is a weak entity tag (RFC 7644 §3.14). Entra sends no
/// `If-Match`, so its writes are never refused for want of one; a client
/// that does send a stale tag gets 412, and the current tag on a GET with
/// `If-None-Match` gets 304.
#[tokio::test]
async fn entra_etag_is_meta_version_and_optional_on_writes() {
    let app = spawn_app().await;
    let entra = Idp::entra(&app).await;
    let created = entra.post("/Users", bjensen()).await;
    let user = format!("/Users/{}", created.id());
    let tag = created.headers["etag"].to_str().unwrap().to_owned();
    assert!(tag.starts_with("W/\""), "{tag}");
    assert_eq!(created.body["meta"]["version"], tag.as_str());

    let r = entra
        .patch(
            &user,
            patch_op(json!([{ "op": "Replace", "path": "title", "value": "x" }])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let new_tag = r.headers["etag"].to_str().unwrap().to_owned();
    assert_ne!(new_tag, tag);
    assert_eq!(r.body["meta"]["version"], new_tag.as_str());

    let stale = entra
        .send_with(
            M::PATCH,
            &user,
            Some(patch_op(
                json!([{ "op": "Replace", "path": "title", "value": "y" }]),
            )),
            &[("if-match", &tag)],
        )
        .await;
    stale.error(412);
    assert_eq!(entra.get(&user).await.body["title"], "x");

    let same = entra
        .send_with(M::GET, &user, None, &[("if-none-match", &new_tag)])
        .await;
    assert_eq!(same.status, 304);
}

/// [Known issues] "SCIM 2.0 compliance issues and status": before December
/// 2018 Entra wrote extension attributes with a dot before the attribute
/// name (`…:enterprise:2.0:User.employeeNumber`); the fix is the default on
/// every `scim` job and the old `customappsso` behaviour "isn't supported
/// anymore". scimd reads only the RFC 7644 §3.10 form, with a colon, and
/// refuses the dotted one as an unknown path rather than guessing.
#[tokio::test]
async fn entra_legacy_dotted_extension_path_is_refused() {
    let app = spawn_app().await;
    let entra = Idp::entra(&app).await;
    let user = format!("/Users/{}", entra.user(bjensen()).await);
    let r = entra
        .patch(
            &user,
            patch_op(json!([{
                "op": "Replace",
                "path": format!("{ENTERPRISE}.employeeNumber"),
                "value": "701984"
            }])),
        )
        .await;
    r.error(400);
    assert_eq!(r.body["scimType"], "invalidPath");
    let r = entra
        .patch(
            &user,
            patch_op(json!([{
                "op": "Replace",
                "path": format!("{ENTERPRISE}:employeeNumber"),
                "value": "701984"
            }])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body[ENTERPRISE]["employeeNumber"], "701984");
}
