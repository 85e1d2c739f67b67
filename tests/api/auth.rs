use crate::helpers::{assert_scim_error, spawn_app, ADMIN_TOKEN, M};

#[tokio::test]
async fn scim_paths_need_the_directory_key() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let url = format!("{}/Users", dir.base_url);

    let none = app.client.get(&url).send().await.unwrap();
    let www = none
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(www.starts_with("Bearer"), "WWW-Authenticate: {www}");
    assert_scim_error(none, 401, None).await;

    for key in [
        "nonsense",
        "scimd_0123456789abcdef.wrong",
        ADMIN_TOKEN,
        &format!("{}x", dir.api_key),
    ] {
        let resp = app.client.get(&url).bearer_auth(key).send().await.unwrap();
        assert_scim_error(resp, 401, None).await;
    }
}

#[tokio::test]
async fn a_key_cannot_reach_another_directory() {
    let app = spawn_app().await;
    let a = app.create_directory("A").await;
    let b = app.create_directory("B").await;
    let user_b = app.create_user(&b, "bob@example.com").await;
    let id_b = user_b["id"].as_str().unwrap();

    // A's key on B's path: refused, and nothing of B is revealed.
    for (method, path) in [
        (M::GET, "/Users".to_owned()),
        (M::GET, format!("/Users/{id_b}")),
        (M::DELETE, format!("/Users/{id_b}")),
    ] {
        let resp = app
            .client
            .request(method, format!("{}{path}", b.base_url))
            .bearer_auth(&a.api_key)
            .send()
            .await
            .unwrap();
        assert_scim_error(resp, 401, None).await;
    }
    // Through the key-named mount, A sees only A.
    let resp = app
        .client
        .get(format!("{}/scim/v2/Users/{id_b}", app.address))
        .bearer_auth(&a.api_key)
        .send()
        .await
        .unwrap();
    assert_scim_error(resp, 404, None).await;
    let still = app
        .scim(&b, M::GET, &format!("/Users/{id_b}"))
        .send()
        .await
        .unwrap();
    assert_eq!(still.status(), 200);
}

#[tokio::test]
async fn the_v2_mount_names_the_directory_by_key() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let resp = app
        .client
        .post(format!("{}/scim/v2/Users", app.address))
        .bearer_auth(&dir.api_key)
        .json(&crate::helpers::user_body("ada@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let user: serde_json::Value = resp.json().await.unwrap();
    let id = user["id"].as_str().unwrap();
    assert_eq!(
        user["meta"]["location"],
        format!("{}/scim/v2/Users/{id}", app.address)
    );
    // The same user through the Atlassian-style base URL.
    let same = app
        .scim(&dir, M::GET, &format!("/Users/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), 200);
}
