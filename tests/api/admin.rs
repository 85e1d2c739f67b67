use serde_json::{json, Value};

use crate::helpers::{spawn_app, M};
use scimd::config::ServeConfig;
use scimd::startup::Application;

#[tokio::test]
async fn creating_a_directory_returns_its_base_url_and_key_once() {
    let app = spawn_app().await;
    let resp = app
        .admin(M::POST, "/orgs/default/directories")
        .json(&json!({ "name": "Okta" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let created: Value = resp.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["name"], "Okta");
    assert_eq!(
        created["baseUrl"],
        format!("{}/scim/directory/{id}", app.address)
    );
    assert!(created["apiKey"].as_str().unwrap().starts_with("scimd_"));
    assert!(created["createdAt"].is_string());

    let one: Value = app
        .admin(M::GET, &format!("/orgs/default/directories/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(one.get("apiKey").is_none(), "key must never be shown again");
    assert_eq!(one["userCount"], 0);
    assert_eq!(one["groupCount"], 0);

    let list: Value = app
        .admin(M::GET, "/orgs/default/directories")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let dirs = list["directories"].as_array().unwrap();
    assert_eq!(dirs.len(), 1);
    assert!(dirs[0].get("apiKey").is_none());
}

#[tokio::test]
async fn directory_counts_follow_its_users_and_groups() {
    let app = spawn_app().await;
    let dir = app.create_directory("Entra").await;
    let user = app.create_user(&dir, "ada@example.com").await;
    app.create_user(&dir, "bob@example.com").await;
    app.create_group(&dir, "Engineering", &[user["id"].as_str().unwrap()])
        .await;
    let one: Value = app
        .admin(M::GET, &format!("/orgs/default/directories/{}", dir.id))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["userCount"], 2);
    assert_eq!(one["groupCount"], 1);
}

#[tokio::test]
async fn orgs_can_be_created_listed_and_read() {
    let app = spawn_app().await;
    let resp = app
        .admin(M::POST, "/orgs")
        .json(&json!({ "name": "Acme" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let org: Value = resp.json().await.unwrap();
    let id = org["id"].as_str().unwrap();

    let list: Value = app
        .admin(M::GET, "/orgs")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let orgs = list["orgs"].as_array().unwrap();
    assert_eq!(orgs.len(), 2, "the default org and Acme");
    assert!(orgs.iter().any(|o| o["default"] == true));

    let one = app
        .admin(M::GET, &format!("/orgs/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 200);
    let missing = app
        .admin(M::GET, &format!("/orgs/{}", uuid::Uuid::new_v4()))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    // Directories live in their org only.
    let resp = app
        .admin(M::POST, &format!("/orgs/{id}/directories"))
        .json(&json!({ "name": "Acme IdP" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let dir: Value = resp.json().await.unwrap();
    let other_org = app
        .admin(
            M::GET,
            &format!("/orgs/default/directories/{}", dir["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(other_org.status(), 404);
    let body: Value = other_org.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
    assert_eq!(body["message"], "directory not found");
}

#[tokio::test]
async fn admin_paths_need_an_admin_token() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let none = app
        .client
        .get(format!("{}/admin/v1/orgs", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
    assert!(none.headers().get("www-authenticate").is_some());
    for token in ["wrong", dir.api_key.as_str()] {
        let resp = app
            .client
            .get(format!("{}/admin/v1/orgs", app.address))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "token {token}");
    }
}

#[tokio::test]
async fn bad_admin_bodies_are_client_errors() {
    let app = spawn_app().await;
    let malformed = app
        .admin(M::POST, "/orgs/default/directories")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let empty_name = app
        .admin(M::POST, "/orgs/default/directories")
        .json(&json!({ "name": "  " }))
        .send()
        .await
        .unwrap();
    assert_eq!(empty_name.status(), 400);
    let missing_name = app
        .admin(M::POST, "/orgs/default/directories")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing_name.status(), 400);
    let list: Value = app
        .admin(M::GET, "/orgs/default/directories")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["directories"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn deleting_a_directory_removes_its_data_and_revokes_its_key() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let user = app.create_user(&dir, "ada@example.com").await;
    app.create_group(&dir, "Eng", &[user["id"].as_str().unwrap()])
        .await;
    // Warm the key cache, so the test proves the cache entry is dropped.
    assert_eq!(
        app.scim(&dir, M::GET, "/Users")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let resp = app
        .admin(M::DELETE, &format!("/orgs/default/directories/{}", dir.id))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);

    let after = app.scim(&dir, M::GET, "/Users").send().await.unwrap();
    assert_eq!(after.status(), 401);
    let gone = app
        .admin(M::GET, &format!("/orgs/default/directories/{}", dir.id))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    let again = app
        .admin(M::DELETE, &format!("/orgs/default/directories/{}", dir.id))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
}

#[tokio::test]
async fn rotating_the_key_revokes_the_old_one_at_once() {
    let app = spawn_app().await;
    let mut dir = app.create_directory("Okta").await;
    assert_eq!(
        app.scim(&dir, M::GET, "/Users")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let resp = app
        .admin(
            M::POST,
            &format!("/orgs/default/directories/{}/api-key", dir.id),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let new_key = body["apiKey"].as_str().unwrap().to_owned();
    assert_ne!(new_key, dir.api_key);

    assert_eq!(
        app.scim(&dir, M::GET, "/Users")
            .send()
            .await
            .unwrap()
            .status(),
        401,
        "old key"
    );
    dir.api_key = new_key;
    assert_eq!(
        app.scim(&dir, M::GET, "/Users")
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "new key"
    );
}

#[tokio::test]
async fn first_start_without_a_configured_token_generates_one_admin_token() {
    let (store, _dir) = crate::helpers::connect_store().await;
    let config = ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..ServeConfig::default()
    };
    let app = Application::build(&config, store.clone()).await.unwrap();
    let token = app
        .generated_admin_token
        .clone()
        .expect("a generated token");
    let address = app.public_url().to_owned();
    tokio::spawn(app.run_until(std::future::pending()));

    let client = reqwest::Client::new();
    let resp = client
        .get(format!("{address}/admin/v1/orgs"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // A second start on the same database prints nothing new.
    let again = Application::build(&config, store).await.unwrap();
    assert!(again.generated_admin_token.is_none());
}

#[tokio::test]
async fn a_rotation_made_by_another_process_is_noticed_after_the_cache_window() {
    // Window 0: every request re-reads the stored hash (never argon2 again).
    let app = crate::helpers::spawn_app_with(|c| c.key_cache_seconds = 0).await;
    let dir = app.create_directory("Okta").await;
    assert_eq!(
        app.scim(&dir, M::GET, "/Users")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // What `scimd directory rotate-key` does: straight to the database.
    let org = app.store.ensure_default_org().await.unwrap().id;
    let key = scimd::auth::new_api_key().await.unwrap();
    app.store
        .set_directory_key(
            org,
            dir.id.parse().unwrap(),
            &key.id,
            &key.hash,
            &scimd::audit::AuditContext::system("cli"),
        )
        .await
        .unwrap();
    assert_eq!(
        app.scim(&dir, M::GET, "/Users")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}
