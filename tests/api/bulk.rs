//! POST /Bulk: bulkId references, failOnErrors, limits.

use serde_json::{json, Value};

use crate::helpers::{assert_scim_error, spawn_app, spawn_app_with, user_body, M};

const BULK: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

#[tokio::test]
async fn a_group_can_be_created_with_members_created_in_the_same_request() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let existing = app.create_user(&dir, "old@example.com").await;
    let existing_id = existing["id"].as_str().unwrap();
    let resp = app
        .scim(&dir, M::POST, "/Bulk")
        .json(&json!({
            "schemas": [BULK],
            "Operations": [
                // Refers to a bulkId defined later: it waits for it.
                { "method": "POST", "path": "/Groups", "bulkId": "g1", "data": {
                    "displayName": "Eng",
                    "members": [{ "value": "bulkId:u1" }, { "value": "bulkId:u2" }]
                }},
                { "method": "POST", "path": "/Users", "bulkId": "u1", "data": user_body("ada@example.com") },
                { "method": "POST", "path": "/Users", "bulkId": "u2", "data": user_body("bob@example.com") },
                { "method": "PATCH", "path": format!("/Users/{existing_id}"), "data": {
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{ "op": "replace", "path": "active", "value": false }]
                }},
                { "method": "PATCH", "path": "/Groups/bulkId:g1", "data": {
                    "Operations": [{ "op": "add", "path": "members", "value": [{ "value": existing_id }] }]
                }},
                { "method": "DELETE", "path": format!("/Users/{}", uuid::Uuid::new_v4()) }
            ]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
    );
    let ops = body["Operations"].as_array().unwrap();
    assert_eq!(ops.len(), 6);
    let statuses: Vec<&str> = ops.iter().map(|o| o["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["201", "201", "201", "200", "200", "404"]);
    assert_eq!(ops[0]["bulkId"], "g1");
    assert_eq!(ops[1]["version"], "W/\"1\"");
    assert_eq!(
        ops[5]["response"]["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );
    let location = ops[0]["location"].as_str().unwrap();
    assert!(location.starts_with(&format!("{}/Groups/", dir.base_url)));

    let group: Value = app
        .client
        .get(location)
        .bearer_auth(&dir.api_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let members: Vec<&str> = group["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["display"].as_str().unwrap())
        .collect();
    assert_eq!(members.len(), 3, "{members:?}");
    let old: Value = app
        .scim(&dir, M::GET, &format!("/Users/{existing_id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(old["active"], false);
}

#[tokio::test]
async fn fail_on_errors_stops_processing() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let resp = app
        .scim(&dir, M::POST, "/Bulk")
        .json(&json!({
            "schemas": [BULK],
            "failOnErrors": 1,
            "Operations": [
                { "method": "POST", "path": "/Users", "bulkId": "a", "data": { "userName": "" } },
                { "method": "POST", "path": "/Users", "bulkId": "b", "data": user_body("b@example.com") }
            ]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let ops = body["Operations"].as_array().unwrap();
    assert_eq!(ops.len(), 1, "processing stopped after the first error");
    assert_eq!(ops[0]["status"], "400");
    assert_eq!(ops[0]["response"]["scimType"], "invalidValue");
    let list: Value = app
        .scim(&dir, M::GET, "/Users?count=0")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["totalResults"], 0);
}

#[tokio::test]
async fn references_to_failed_or_circular_bulk_ids_are_409() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let resp = app
        .scim(&dir, M::POST, "/Bulk")
        .json(&json!({
            "schemas": [BULK],
            "Operations": [
                { "method": "POST", "path": "/Users", "bulkId": "bad", "data": { "userName": 7 } },
                { "method": "POST", "path": "/Groups", "bulkId": "g", "data": {
                    "displayName": "G", "members": [{ "value": "bulkId:bad" }] } },
                { "method": "POST", "path": "/Groups", "bulkId": "x", "data": {
                    "displayName": "X", "members": [{ "value": "bulkId:y" }] } },
                { "method": "POST", "path": "/Groups", "bulkId": "y", "data": {
                    "displayName": "Y", "members": [{ "value": "bulkId:x" }] } }
            ]
        }))
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    let statuses: Vec<&str> = body["Operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["400", "409", "409", "409"]);
}

#[tokio::test]
async fn bulk_limits_are_enforced() {
    let app = spawn_app_with(|c| c.bulk_max_operations = 2).await;
    let dir = app.create_directory("Okta").await;
    let ops: Vec<Value> = (0..3)
        .map(|i| {
            json!({ "method": "POST", "path": "/Users", "bulkId": format!("u{i}"),
                         "data": user_body(&format!("u{i}@example.com")) })
        })
        .collect();
    let resp = app
        .scim(&dir, M::POST, "/Bulk")
        .json(&json!({ "schemas": [BULK], "Operations": ops }))
        .send()
        .await
        .unwrap();
    assert_scim_error(resp, 413, None).await;
    let resp = app
        .scim(&dir, M::POST, "/Bulk")
        .json(&json!({ "schemas": [BULK] }))
        .send()
        .await
        .unwrap();
    assert_scim_error(resp, 400, Some("invalidSyntax")).await;
}
