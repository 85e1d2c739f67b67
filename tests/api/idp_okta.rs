//! Okta, one replayed fixture per documented behaviour.
//!
//! Source, cited above each test: Okta developer documentation, "SCIM 2.0
//! Protocol Reference" (okta/okta-developer-docs, docs/reference/scim/scim-20,
//! "Okta and SCIM Version 2.0"), and for the connection test its SCIM 1.1
//! counterpart ("Okta and SCIM Version 1.1", "Create Users"), which lists the
//! constant requests Okta makes when the integration is saved.
//!
//! The whole user and Group Push sequences are replayed in `idp.rs`; these
//! tests each pin one behaviour.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, M};
use crate::idp::{patch_op, sorted, Idp, GROUP, USER};

fn okta_user(name: &str) -> Value {
    json!({
        "schemas": [USER],
        "userName": name,
        "name": { "givenName": "Test", "familyName": "User" },
        "emails": [{ "primary": true, "value": name, "type": "work" }],
        "displayName": "Test User",
        "locale": "en-US",
        // Okta's user id: one per user (a directory refuses a second
        // user with one externalId).
        "externalId": format!("00u{}", name.split('@').next().unwrap_or(name)),
        "groups": [],
        "password": "1mz050nq",
        "active": true
    })
}

/// "Okta and SCIM Version 1.1", "Create Users": after the integration is
/// saved Okta sends `GET /Users?startIndex=1&count=2` and `GET
/// /Groups?startIndex=1&count=100` ("the query parameters … are always
/// constant"); a page of one, the smallest probe, is checked too. Each
/// must be a ListResponse whose numbers are integers (SCIM 2.0 reference,
/// "Retrieve Users": "need to be exchanged as integers, not as strings"),
/// on an empty directory and on a larger one.
#[tokio::test]
async fn okta_test_connection_pages() {
    let app = spawn_app().await;
    let okta = Idp::okta(&app).await;
    for (path, total) in [
        ("/Users?startIndex=1&count=2", 0),
        ("/Users?startIndex=1&count=1", 0),
        ("/Groups?startIndex=1&count=100", 0),
    ] {
        let r = okta.get(path).await;
        assert!(r.list(total).is_empty(), "{path}");
        assert_eq!(r.body["startIndex"], 1);
        assert_eq!(r.body["itemsPerPage"], 0);
    }
    for i in 0..3 {
        okta.user(okta_user(&format!("user{i}@okta.local"))).await;
    }
    let g = okta
        .post(
            "/Groups",
            json!({ "schemas": [GROUP], "displayName": "Test SCIMv2", "members": [] }),
        )
        .await;
    assert_eq!(g.status, 201, "{}", g.body);
    let two = okta.get("/Users?startIndex=1&count=2").await;
    assert_eq!(two.list(3).len(), 2);
    assert_eq!(two.body["itemsPerPage"], 2);
    let one = okta.get("/Users?startIndex=1&count=1").await;
    assert_eq!(one.list(3).len(), 1);
    let groups = okta.get("/Groups?startIndex=1&count=100").await;
    assert_eq!(groups.list(1)[0]["displayName"], "Test SCIMv2");
}

/// "Retrieve Users" and "Retrieve Groups": Okta imports page by page with
/// `count=100`, then `startIndex+100`, "until all pages are viewed"; "the
/// SCIM server must consistently return the same ordering of results …
/// regardless of which values are provided for the count and startIndex".
/// Pages of 2 over 5 users give each user once, in the order of one big
/// page; a page past the end is empty with the same totalResults.
#[tokio::test]
async fn okta_import_pages_by_start_index_and_count() {
    let app = spawn_app().await;
    let okta = Idp::okta(&app).await;
    for i in 0..5 {
        okta.user(okta_user(&format!("import{i}@okta.local"))).await;
        let g = okta
            .post(
                "/Groups",
                json!({ "schemas": [GROUP], "displayName": format!("Group {i}") }),
            )
            .await;
        assert_eq!(g.status, 201, "{}", g.body);
    }
    for endpoint in ["/Users", "/Groups"] {
        let whole: Vec<Value> = okta
            .get(&format!("{endpoint}?startIndex=1&count=100"))
            .await
            .list(5)
            .iter()
            .map(|r| r["id"].clone())
            .collect();
        assert_eq!(whole.len(), 5);
        let mut paged = Vec::new();
        let mut start = 1;
        while start <= 5 {
            let page = okta
                .get(&format!("{endpoint}?startIndex={start}&count=2"))
                .await;
            assert_eq!(page.body["startIndex"], start);
            let items = page.list(5);
            assert_eq!(items.len(), 2.min(6 - start), "{endpoint} at {start}");
            paged.extend(items.iter().map(|r| r["id"].clone()));
            start += 2;
        }
        assert_eq!(paged, whole, "{endpoint}");
        let past = okta
            .get(&format!("{endpoint}?startIndex=101&count=100"))
            .await;
        assert!(past.list(5).is_empty());
        assert_eq!(past.body["startIndex"], 101);
    }
}

/// "Retrieve Groups": "Okta checks that the Group object exists … with the
/// `filter=displayName eq "${groupName}"`", sent with `startIndex` and
/// `count`; a match is a one-element list, no match an empty one.
#[tokio::test]
async fn okta_group_lookup_by_display_name_with_paging() {
    let app = spawn_app().await;
    let okta = Idp::okta(&app).await;
    let q = "/Groups?filter=displayName%20eq%20%22Test%20SCIMv2%22&startIndex=1&count=100";
    assert!(okta.get(q).await.list(0).is_empty());
    let g = okta
        .post(
            "/Groups",
            json!({ "schemas": [GROUP], "displayName": "Test SCIMv2", "members": [] }),
        )
        .await;
    assert_eq!(g.status, 201, "{}", g.body);
    let hit = okta.get(q).await;
    assert_eq!(hit.list(1)[0]["id"], g.id().as_str());
    assert_eq!(hit.body["itemsPerPage"], 1);
}

/// "Update a specific User (PUT)": Okta sends the whole profile it read
/// back. A profile without `active` (an app whose mappings leave it out)
/// must not reactivate a deactivated user, nor deactivate an active one:
/// RFC 7644 §3.5.1 would reset an omitted attribute to its default, but a
/// user's status is Okta's to change only through `active` itself ("Delete
/// Users": deactivation is the one deprovisioning event). scimd keeps the
/// stored `active` when a PUT omits it.
#[tokio::test]
async fn okta_put_without_active_keeps_the_current_status() {
    let app = spawn_app().await;
    let okta = Idp::okta(&app).await;
    let id = okta.user(okta_user("test.user@okta.local")).await;
    let user = format!("/Users/{id}");
    let profile = |given: &str| {
        json!({
            "schemas": [USER],
            "id": id,
            "userName": "test.user@okta.local",
            "name": { "givenName": given, "middleName": "", "familyName": "User" },
            "emails": [{ "primary": true, "value": "test.user@okta.local", "type": "work" }],
            "groups": [],
            "meta": { "resourceType": "User" }
        })
    };

    let r = okta.put(&user, profile("Another")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["active"], true);
    assert_eq!(r.body["name"]["givenName"], "Another");

    let off = okta
        .patch(
            &user,
            patch_op(json!([{ "op": "replace", "value": { "active": false } }])),
        )
        .await;
    assert_eq!(off.body["active"], false);
    let r = okta.put(&user, profile("Third")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["active"], false, "PUT without active reactivated");
    assert_eq!(r.body["name"]["givenName"], "Third");
    assert_eq!(okta.get(&user).await.body["active"], false);

    // A new user created without `active` is active (the directory's
    // default), as before.
    let mut bare = okta_user("bare@okta.local");
    bare.as_object_mut().unwrap().remove("active");
    let created = okta.post("/Users", bare).await;
    assert_eq!(created.body["active"], true);
}

/// "Delete Users": for app integrations made with the App Integration
/// Wizard, deactivation "is sent through a PUT method request" with
/// `active: false`; the user stays readable (Okta never deletes), and a PUT
/// with `active: true` reactivates it.
#[tokio::test]
async fn okta_put_deactivates_and_reactivates() {
    let app = spawn_app().await;
    let okta = Idp::okta(&app).await;
    let id = okta.user(okta_user("aiw.user@okta.local")).await;
    let user = format!("/Users/{id}");
    let mut profile = okta_user("aiw.user@okta.local");
    profile["id"] = json!(id);
    profile["active"] = json!(false);
    let r = okta.put(&user, profile.clone()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["active"], false);
    let lookup = okta
        .get("/Users?filter=userName%20eq%20%22aiw.user%40okta.local%22&startIndex=1&count=100")
        .await;
    assert_eq!(lookup.list(1)[0]["active"], false);
    profile["active"] = json!(true);
    let r = okta.put(&user, profile).await;
    assert_eq!(r.body["active"], true);
}

/// "Update a specific Group name" and "Update specific Group membership":
/// app integrations made with the App Integration Wizard send a PUT with
/// the group's name and its whole membership; the answer is the updated
/// group. A later PUT with fewer members removes the others.
#[tokio::test]
async fn okta_group_put_replaces_name_and_members() {
    let app = spawn_app().await;
    let okta = Idp::okta(&app).await;
    let a = okta.user(okta_user("a@okta.local")).await;
    let b = okta.user(okta_user("bb@okta.local")).await;
    let g = okta
        .post(
            "/Groups",
            json!({ "schemas": [GROUP], "displayName": "Test SCIMv2", "members": [] }),
        )
        .await;
    let gid = g.id();
    let group = format!("/Groups/{gid}");

    let r = okta
        .put(
            &group,
            json!({
                "schemas": [GROUP],
                "displayName": "Test SCIMv20",
                "members": [
                    { "value": a, "display": "a@okta.local" },
                    { "value": b, "display": "bb@okta.local" }
                ]
            }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["id"], gid.as_str());
    assert_eq!(r.body["displayName"], "Test SCIMv20");
    assert_eq!(okta.members(&gid).await, sorted(&[&a, &b]));

    let r = okta
        .put(
            &group,
            json!({
                "schemas": [GROUP],
                "id": gid,
                "displayName": "Test SCIMv20",
                "members": [{ "value": b, "display": "bb@okta.local" }],
                "meta": { "resourceType": "Group" }
            }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(okta.members(&gid).await, sorted(&[&b]));

    // A PUT replaces the whole group (RFC 7644 §3.5.1): without `members`
    // it has none. Okta's PUTs always carry the membership.
    let r = okta
        .put(
            &group,
            json!({ "schemas": [GROUP], "displayName": "Test SCIMv21" }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["displayName"], "Test SCIMv21");
    assert!(okta.members(&gid).await.is_empty());
}

/// "Update specific Group membership": the PATCH with a filtered remove
/// and an add in one request, and the name update Okta sends with every
/// membership change (path-less, echoing the read-only `id`). Okta accepts
/// 204 for either.
#[tokio::test]
async fn okta_group_patch_membership_and_rename() {
    let app = spawn_app().await;
    let okta = Idp::okta(&app).await;
    let a = okta.user(okta_user("a@okta.local")).await;
    let b = okta.user(okta_user("bb@okta.local")).await;
    let g = okta
        .post(
            "/Groups",
            json!({ "schemas": [GROUP], "displayName": "Test SCIMv2", "members": [{ "value": b }] }),
        )
        .await;
    assert_eq!(g.status, 201, "{}", g.body);
    let gid = g.id();
    let group = format!("/Groups/{gid}");
    let r = okta
        .patch(
            &group,
            patch_op(json!([
                { "op": "remove", "path": format!("members[value eq \"{b}\"]") },
                { "op": "add", "path": "members", "value": [{ "value": a, "display": "a@okta.local" }] }
            ])),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(okta.members(&gid).await, sorted(&[&a]));
    let r = okta
        .patch(
            &group,
            patch_op(json!([{
                "op": "replace",
                "value": { "id": gid, "displayName": "Test SCIMv20" }
            }])),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let got = okta.get(&group).await;
    assert_eq!(got.body["displayName"], "Test SCIMv20");
    assert_eq!(okta.members(&gid).await, sorted(&[&a]));
}

/// "Create the User": Okta's requests carry `Content-Type:
/// application/json` (with a charset in its recorded requests), not
/// `application/scim+json`; both are JSON and accepted.
#[tokio::test]
async fn okta_plain_json_content_type_is_accepted() {
    let app = spawn_app().await;
    let okta = Idp::okta(&app).await;
    let r = okta
        .send_with(
            M::POST,
            "/Users",
            Some(okta_user("charset@okta.local")),
            &[("content-type", "application/json; charset=utf-8")],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let user = format!("/Users/{}", r.id());
    let r = okta
        .send_with(
            M::PATCH,
            &user,
            Some(patch_op(
                json!([{ "op": "replace", "value": { "active": false } }]),
            )),
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["active"], false);
}
