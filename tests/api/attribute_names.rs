//! Attribute names as RFC 7644 §3.10 lets clients write them: the core
//! schema's URN may be left out, and an extension attribute may go
//! unqualified when no core attribute and no other extension has its name.
//! PATCH paths and filters resolve names the same way.

use serde_json::{json, Value};

use crate::helpers::{assert_scim_error, spawn_app, TestApp, TestDirectory, M};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

async fn patch(app: &TestApp, dir: &TestDirectory, id: &str, op: Value) -> reqwest::Response {
    app.scim(dir, M::PATCH, &format!("/Users/{id}"))
        .json(&json!({ "schemas": [PATCH_OP], "Operations": [op] }))
        .send()
        .await
        .expect("request")
}

async fn list(app: &TestApp, dir: &TestDirectory, filter: &str) -> reqwest::Response {
    let query = serde_urlencoded::to_string([("filter", filter)]).unwrap();
    app.scim(dir, M::GET, &format!("/Users?{query}"))
        .send()
        .await
        .expect("request")
}

/// The ids of the users `filter` finds.
async fn found(app: &TestApp, dir: &TestDirectory, filter: &str) -> Vec<String> {
    let resp = list(app, dir, filter).await;
    assert_eq!(resp.status(), 200, "{filter}");
    let body: Value = resp.json().await.expect("json");
    let ids: Vec<String> = body["Resources"]
        .as_array()
        .map(|users| {
            users
                .iter()
                .map(|u| u["id"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(body["totalResults"], ids.len(), "{filter}");
    ids
}

#[tokio::test]
async fn unqualified_extension_attribute_in_patch_and_filter() {
    let app = spawn_app().await;
    let dir = app.create_directory("Names").await;
    let ada = app.create_user(&dir, "ada@example.com").await;
    let ada = ada["id"].as_str().unwrap();
    let bob = app.create_user(&dir, "bob@example.com").await;
    let bob = bob["id"].as_str().unwrap();

    let resp = patch(
        &app,
        &dir,
        ada,
        json!({"op": "replace", "path": "department", "value": "R&D"}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body[ENTERPRISE]["department"], "R&D", "{body}");
    assert!(body.get("department").is_none(), "{body}");
    assert!(
        body["schemas"]
            .as_array()
            .unwrap()
            .contains(&json!(ENTERPRISE)),
        "{body}"
    );
    let stored = app.get_json(&dir, &format!("/Users/{ada}")).await;
    assert_eq!(stored[ENTERPRISE]["department"], "R&D");

    for filter in [
        "department eq \"R&D\"".to_owned(),
        format!("{ENTERPRISE}:department eq \"R&D\""),
    ] {
        assert_eq!(found(&app, &dir, &filter).await, [ada], "{filter}");
    }

    // The fully-qualified path writes the same attribute.
    let resp = patch(
        &app,
        &dir,
        bob,
        json!({"op": "replace", "path": format!("{ENTERPRISE}:department"), "value": "Sales"}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let stored = app.get_json(&dir, &format!("/Users/{bob}")).await;
    assert_eq!(stored[ENTERPRISE]["department"], "Sales");
    for filter in [
        "department eq \"sales\"".to_owned(),
        format!("{ENTERPRISE}:department eq \"Sales\""),
    ] {
        assert_eq!(found(&app, &dir, &filter).await, [bob], "{filter}");
    }
    assert_eq!(found(&app, &dir, "department eq \"R&D\"").await, [ada]);

    // Removing it by the unqualified name empties the extension.
    let resp = patch(
        &app,
        &dir,
        ada,
        json!({"op": "remove", "path": "department"}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let stored = app.get_json(&dir, &format!("/Users/{ada}")).await;
    assert!(stored.get(ENTERPRISE).is_none(), "{stored}");
    assert!(found(&app, &dir, "department eq \"R&D\"").await.is_empty());
}

#[tokio::test]
async fn unknown_names_are_refused_by_patch_and_filter() {
    let app = spawn_app().await;
    let dir = app.create_directory("Unknown").await;
    let ada = app.create_user(&dir, "ada@example.com").await;
    let ada = ada["id"].as_str().unwrap();

    for name in [
        "nope".to_owned(),
        format!("{ENTERPRISE}:userName"),
        "urn:ietf:params:scim:schemas:core:2.0:User:department".to_owned(),
    ] {
        let resp = patch(
            &app,
            &dir,
            ada,
            json!({"op": "replace", "path": name, "value": "x"}),
        )
        .await;
        assert_scim_error(resp, 400, Some("invalidPath")).await;
        let resp = list(&app, &dir, &format!("{name} eq \"x\"")).await;
        assert_scim_error(resp, 400, Some("invalidFilter")).await;
    }
}
