//! Groups of the organisation: kept by the admin, members are org
//! accounts, and no name shared with a SCIM group of the org.

use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{assert_scim_error, spawn_app, TestApp, M};
use crate::sites::{assert_admin_error, create_org, created, default_org, insert_account};

async fn create_group(app: &TestApp, name: &str) -> String {
    created(app, "/orgs/default/groups", json!({ "name": name })).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn org_groups_are_created_listed_read_renamed_and_deleted() {
    let app = spawn_app().await;
    let g = created(
        &app,
        "/orgs/default/groups",
        json!({ "name": " Confluence users ", "description": "Everyone on the wiki" }),
    )
    .await;
    assert_eq!(g["name"], "Confluence users");
    assert_eq!(g["description"], "Everyone on the wiki");
    assert!(g.get("orgId").is_none());
    assert_eq!(g["memberCount"], 0);
    let id = g["id"].as_str().unwrap().to_owned();
    create_group(&app, "Admins").await;

    for (body, status, code) in [
        (json!({ "name": "CONFLUENCE USERS" }), 409, "conflict"),
        (json!({ "name": "" }), 400, "bad_request"),
        (json!({ "name": "x".repeat(201) }), 400, "bad_request"),
        (
            json!({ "name": "x", "description": "d".repeat(1001) }),
            400,
            "bad_request",
        ),
        (json!({ "name": "x", "members": [] }), 400, "bad_request"),
        (json!({ "description": "no name" }), 400, "bad_request"),
    ] {
        let resp = app
            .admin(M::POST, "/orgs/default/groups")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_admin_error(resp, status, code).await;
    }

    let list = app.ok_json(app.admin(M::GET, "/orgs/default/groups")).await;
    let names: Vec<&str> = list["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Confluence users", "Admins"]);

    let path = format!("/orgs/default/groups/{id}");
    let renamed = app
        .ok_json(
            app.admin(M::PATCH, &path)
                .json(&json!({ "name": "Wiki users" })),
        )
        .await;
    assert_eq!(renamed["name"], "Wiki users");
    assert_eq!(renamed["description"], "Everyone on the wiki");
    let cleared = app
        .ok_json(
            app.admin(M::PATCH, &path)
                .json(&json!({ "description": null })),
        )
        .await;
    assert_eq!(cleared["description"], Value::Null);
    // A change of case of its own name is no clash.
    app.ok_json(
        app.admin(M::PATCH, &path)
            .json(&json!({ "name": "WIKI users" })),
    )
    .await;
    for (body, status, code) in [
        (json!({ "name": "admins" }), 409, "conflict"),
        (json!({}), 400, "bad_request"),
        (json!({ "name": 3 }), 400, "bad_request"),
        (json!({ "memberCount": 3 }), 400, "bad_request"),
    ] {
        let resp = app.admin(M::PATCH, &path).json(&body).send().await.unwrap();
        assert_admin_error(resp, status, code).await;
    }
    let got = app.ok_json(app.admin(M::GET, &path)).await;
    assert_eq!(got["name"], "WIKI users");
    assert_eq!(got["members"], json!([]));

    let resp = app.admin(M::DELETE, &path).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    for (method, p) in [
        (M::GET, path.clone()),
        (M::DELETE, path.clone()),
        (M::PATCH, path.clone()),
        (M::GET, "/orgs/default/groups/nope".to_owned()),
        (M::GET, format!("/orgs/{}/groups", Uuid::new_v4())),
    ] {
        let resp = app
            .admin(method, &p)
            .json(&json!({ "name": "y" }))
            .send()
            .await
            .unwrap();
        assert_admin_error(resp, 404, "not_found").await;
    }
    let count = |action: &'static str| {
        let app = &app;
        async move {
            app.db()
                .count(&format!(
                    "SELECT COUNT(*) FROM audit_events WHERE action = '{action}'"
                ))
                .await
        }
    };
    assert_eq!(count("org_group.created").await, 2);
    assert_eq!(count("org_group.updated").await, 3);
    assert_eq!(count("org_group.deleted").await, 1);
}

#[tokio::test]
async fn members_are_accounts_of_the_org_added_all_or_none() {
    let app = spawn_app().await;
    let org = default_org(&app).await;
    let id = create_group(&app, "Ops").await;
    let a = insert_account(&app, org, "a@acme.example").await;
    let b = insert_account(&app, org, "b@acme.example").await;
    let other = create_org(&app, "Other").await;
    let stranger = insert_account(&app, other, "s@other.example").await;
    let members = format!("/orgs/default/groups/{id}/members");

    // An unknown account, or another org's, is named; nothing is added.
    for bad in [Uuid::new_v4(), stranger] {
        let resp = app
            .admin(M::POST, &members)
            .json(&json!({ "accountIds": [a, bad] }))
            .send()
            .await
            .unwrap();
        let message = assert_admin_error(resp, 404, "not_found").await;
        assert!(message.contains(&bad.to_string()), "{message}");
    }
    let group = app
        .ok_json(app.admin(M::GET, &format!("/orgs/default/groups/{id}")))
        .await;
    assert_eq!(group["memberCount"], 0);
    for body in [
        json!({ "accountIds": [] }),
        json!({ "accountIds": ["x"] }),
        json!({}),
    ] {
        let resp = app
            .admin(M::POST, &members)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_admin_error(resp, 400, "bad_request").await;
    }

    let added = app
        .ok_json(
            app.admin(M::POST, &members)
                .json(&json!({ "accountIds": [a, b, a] })),
        )
        .await;
    assert_eq!(added["added"], 2);
    let added = app
        .ok_json(
            app.admin(M::POST, &members)
                .json(&json!({ "accountIds": [a] })),
        )
        .await;
    assert_eq!(added["added"], 0);
    let group = app
        .ok_json(app.admin(M::GET, &format!("/orgs/default/groups/{id}")))
        .await;
    assert_eq!(group["memberCount"], 2);
    assert_eq!(group["members"][0]["accountId"], a.to_string());
    assert_eq!(group["members"][0]["email"], "a@acme.example");
    assert_eq!(group["members"][1]["email"], "b@acme.example");

    let resp = app
        .admin(M::DELETE, &format!("{members}/{a}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    for who in [a.to_string(), Uuid::new_v4().to_string(), "nope".to_owned()] {
        let resp = app
            .admin(M::DELETE, &format!("{members}/{who}"))
            .send()
            .await
            .unwrap();
        assert_admin_error(resp, 404, "not_found").await;
    }
    let resp = app
        .admin(
            M::POST,
            &format!("/orgs/default/groups/{}/members", Uuid::new_v4()),
        )
        .json(&json!({ "accountIds": [a] }))
        .send()
        .await
        .unwrap();
    assert_admin_error(resp, 404, "not_found").await;
    let group = app
        .ok_json(app.admin(M::GET, &format!("/orgs/default/groups/{id}")))
        .await;
    assert_eq!(group["memberCount"], 1);
}

const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

#[tokio::test]
async fn scim_groups_and_org_groups_never_share_a_name_in_the_org() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let scim = app.create_group(&dir, "Engineering", &[]).await;
    let scim_id = scim["id"].as_str().unwrap();
    create_group(&app, "Finance").await;

    // Org side: a SCIM group's name, in any case, is taken.
    let resp = app
        .admin(M::POST, "/orgs/default/groups")
        .json(&json!({ "name": "engineering" }))
        .send()
        .await
        .unwrap();
    let message = assert_admin_error(resp, 409, "conflict").await;
    assert!(message.contains("identity provider"), "{message}");
    let other = create_group(&app, "Other").await;
    let resp = app
        .admin(M::PATCH, &format!("/orgs/default/groups/{other}"))
        .json(&json!({ "name": "ENGINEERING" }))
        .send()
        .await
        .unwrap();
    assert_admin_error(resp, 409, "conflict").await;

    // SCIM side: POST, PUT, PATCH and Bulk answer a SCIM uniqueness error.
    let resp = app
        .scim(&dir, M::POST, "/Groups")
        .json(&json!({ "schemas": [GROUP], "displayName": "FINANCE" }))
        .send()
        .await
        .unwrap();
    assert_scim_error(resp, 409, Some("uniqueness")).await;
    let resp = app
        .scim(&dir, M::PUT, &format!("/Groups/{scim_id}"))
        .json(&json!({ "schemas": [GROUP], "displayName": "finance" }))
        .send()
        .await
        .unwrap();
    assert_scim_error(resp, 409, Some("uniqueness")).await;
    let resp = app
        .scim(&dir, M::PATCH, &format!("/Groups/{scim_id}"))
        .json(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{ "op": "replace", "path": "displayName", "value": "Finance" }]
        }))
        .send()
        .await
        .unwrap();
    assert_scim_error(resp, 409, Some("uniqueness")).await;
    let resp = app
        .scim(&dir, M::POST, "/Bulk")
        .json(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "Operations": [{ "method": "POST", "path": "/Groups", "bulkId": "g",
                "data": { "schemas": [GROUP], "displayName": "Finance" } }]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let bulk: Value = resp.json().await.unwrap();
    assert_eq!(bulk["Operations"][0]["status"], "409");
    assert_eq!(bulk["Operations"][0]["response"]["scimType"], "uniqueness");

    // Nothing was written by the refused writes.
    let got = app.get_json(&dir, &format!("/Groups/{scim_id}")).await;
    assert_eq!(got["displayName"], "Engineering");
    let list = app.get_json(&dir, "/Groups").await;
    assert_eq!(list["totalResults"], 1);
    // Renaming a SCIM group to a name no group has, or its own in another
    // case, is fine; and a name is free again once its group is gone.
    let resp = app
        .scim(&dir, M::PATCH, &format!("/Groups/{scim_id}"))
        .json(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{ "op": "replace", "path": "displayName", "value": "ENGINEERING" }]
        }))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let resp = app
        .admin(M::DELETE, &format!("/orgs/default/groups/{other}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    app.create_group(&dir, "Other", &[]).await;

    // Another org's groups do not clash.
    let org = create_org(&app, "Elsewhere").await;
    created(
        &app,
        &format!("/orgs/{org}/groups"),
        json!({ "name": "Engineering" }),
    )
    .await;
}

/// The check and the write it guards are one: an org group and a SCIM
/// group created with one name at the same moment never both succeed.
#[tokio::test]
async fn racing_creates_of_one_name_never_both_succeed() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let mut scim_won = 0;
    for i in 0..20 {
        let name = format!("race-{i}");
        let org_side = app
            .admin(M::POST, "/orgs/default/groups")
            .json(&json!({ "name": name }))
            .send();
        let scim_side = app
            .scim(&dir, M::POST, "/Groups")
            .json(&json!({ "schemas": [GROUP], "displayName": name.to_uppercase() }))
            .send();
        let (org_resp, scim_resp) = tokio::join!(org_side, scim_side);
        let (org_status, scim_status) = (org_resp.unwrap().status(), scim_resp.unwrap().status());
        assert!(
            (org_status == 201) != (scim_status == 201),
            "{name}: org {org_status}, SCIM {scim_status}"
        );
        assert!(org_status == 201 || org_status == 409, "{org_status}");
        assert!(scim_status == 201 || scim_status == 409, "{scim_status}");
        scim_won += usize::from(scim_status == 201);
    }
    let org_groups = app.ok_json(app.admin(M::GET, "/orgs/default/groups")).await;
    let scim_groups = app.get_json(&dir, "/Groups?count=100").await;
    assert_eq!(scim_groups["totalResults"], scim_won);
    assert_eq!(
        org_groups["groups"].as_array().unwrap().len(),
        20 - scim_won
    );
}

/// SCIM sees only its directory's groups: an org group's id names nothing
/// there, so SCIM can neither read, change nor delete it.
#[tokio::test]
async fn scim_cannot_read_or_write_an_org_group() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let id = create_group(&app, "Kept here").await;
    let path = format!("/Groups/{id}");
    let patch = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{ "op": "replace", "path": "displayName", "value": "Taken" }]
    });
    for (method, body) in [
        (M::GET, None),
        (M::PATCH, Some(patch)),
        (
            M::PUT,
            Some(json!({ "schemas": [GROUP], "displayName": "Taken" })),
        ),
        (M::DELETE, None),
    ] {
        let mut req = app.scim(&dir, method, &path);
        if let Some(body) = body {
            req = req.json(&body);
        }
        assert_scim_error(req.send().await.unwrap(), 404, None).await;
    }
    let group = app
        .ok_json(app.admin(M::GET, &format!("/orgs/default/groups/{id}")))
        .await;
    assert_eq!(group["name"], "Kept here");
}
