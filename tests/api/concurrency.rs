//! SQLite has one writer; many clients writing at once must still never see
//! "database is locked" or a 500.

use serde_json::json;

use crate::helpers::{spawn_app, user_body, M};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_clients_writing_at_once_all_succeed() {
    let app = std::sync::Arc::new(spawn_app().await);
    let dir = std::sync::Arc::new(app.create_directory("Okta").await);
    let group = app.create_group(&dir, "Everyone", &[]).await;
    let gid = group["id"].as_str().unwrap().to_owned();
    let mut tasks = Vec::new();
    for client in 0..16 {
        let app = app.clone();
        let dir = dir.clone();
        let gid = gid.clone();
        tasks.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for i in 0..10 {
                let resp = app
                    .scim(&dir, M::POST, "/Users")
                    .json(&user_body(&format!("c{client}-u{i}@example.com")))
                    .send()
                    .await
                    .unwrap();
                statuses.push(resp.status().as_u16());
                let user: serde_json::Value = resp.json().await.unwrap();
                let resp = app
                    .scim(&dir, M::PATCH, &format!("/Groups/{gid}"))
                    .json(&json!({
                        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                        "Operations": [{ "op": "add", "path": "members",
                                         "value": [{ "value": user["id"] }] }]
                    }))
                    .send()
                    .await
                    .unwrap();
                statuses.push(resp.status().as_u16());
            }
            statuses
        }));
    }
    for task in tasks {
        for status in task.await.unwrap() {
            assert!(status == 201 || status == 204, "status {status}");
        }
    }
    let group: serde_json::Value = app
        .scim(&dir, M::GET, &format!("/Groups/{gid}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(group["members"].as_array().unwrap().len(), 160);
}

/// Concurrent PATCHes of one user each add an email; none may be lost (a
/// read-modify-write without a row lock would drop some).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_patches_of_one_resource_lose_no_update() {
    let app = std::sync::Arc::new(spawn_app().await);
    let dir = std::sync::Arc::new(app.create_directory("Okta").await);
    let user = app.create_user(&dir, "ada@example.com").await;
    let id = user["id"].as_str().unwrap().to_owned();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (app, dir, id) = (app.clone(), dir.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            app.scim(&dir, M::PATCH, &format!("/Users/{id}"))
                .json(&json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{ "op": "add", "path": "emails",
                                     "value": [{ "value": format!("alias{i}@example.com"), "type": "other" }] }]
                }))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let after: serde_json::Value = app
        .scim(&dir, M::GET, &format!("/Users/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(after["emails"].as_array().unwrap().len(), 17);
    assert_eq!(after["meta"]["version"], "W/\"17\"");
}
