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
