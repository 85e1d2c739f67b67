use serde_json::{json, Value};

use crate::helpers::{assert_scim_error, spawn_app, user_body, M};

#[tokio::test]
async fn create_returns_the_stored_user_with_meta() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let mut body = user_body("ada@example.com");
    body["password"] = json!("hunter2");
    body["id"] = json!("client-chosen-id");
    body["favouriteColour"] = json!("green");
    body["externalId"] = json!("00u1");
    body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] =
        json!({ "department": "R&D", "manager": { "value": "boss" } });
    body["schemas"] = json!([
        "urn:ietf:params:scim:schemas:core:2.0:User",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    ]);
    let resp = app
        .scim(&dir, M::POST, "/Users")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/scim+json"
    );
    assert_eq!(resp.headers()["etag"].to_str().unwrap(), "W/\"1\"");
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let user: Value = resp.json().await.unwrap();
    let id = user["id"].as_str().unwrap();
    assert_ne!(id, "client-chosen-id", "id is readOnly");
    assert_eq!(location, format!("{}/Users/{id}", dir.base_url));
    assert_eq!(user["meta"]["location"], location);
    assert_eq!(user["meta"]["resourceType"], "User");
    assert_eq!(user["meta"]["version"], "W/\"1\"");
    assert!(user["meta"]["created"].as_str().unwrap().ends_with('Z'));
    assert_eq!(user["userName"], "ada@example.com");
    assert_eq!(user["name"]["familyName"], "Lovelace");
    assert_eq!(user["externalId"], "00u1");
    assert_eq!(user["active"], true);
    assert!(user.get("password").is_none(), "password is never returned");
    assert!(
        user.get("favouriteColour").is_none(),
        "unknown attrs dropped"
    );
    assert_eq!(
        user["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"],
        "R&D"
    );

    let fetched: Value = app
        .scim(&dir, M::GET, &format!("/Users/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fetched, user);
    // The password is not stored at all.
    let doc = app
        .store
        .get_user(dir.id.parse().unwrap(), id.parse().unwrap())
        .await
        .unwrap()
        .doc;
    assert!(!doc.contains("hunter2"));
}

#[tokio::test]
async fn user_names_are_unique_per_directory_ignoring_case() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let other = app.create_directory("Other").await;
    app.create_user(&dir, "Ada@Example.com").await;
    let dup = app
        .scim(&dir, M::POST, "/Users")
        .json(&user_body("ada@example.COM"))
        .send()
        .await
        .unwrap();
    assert_scim_error(dup, 409, Some("uniqueness")).await;
    // Another directory may hold the same name.
    app.create_user(&other, "ada@example.com").await;
}

#[tokio::test]
async fn list_pages_and_counts() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    for i in 0..5 {
        app.create_user(&dir, &format!("user{i}@example.com")).await;
    }
    let page: Value = app
        .scim(&dir, M::GET, "/Users?startIndex=2&count=2")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        page["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:ListResponse"
    );
    assert_eq!(page["totalResults"], 5);
    assert_eq!(page["startIndex"], 2);
    assert_eq!(page["itemsPerPage"], 2);
    let names: Vec<&str> = page["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["user1@example.com", "user2@example.com"]);

    let totals: Value = app
        .scim(&dir, M::GET, "/Users?count=0")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(totals["totalResults"], 5);
    assert_eq!(totals["Resources"].as_array().unwrap().len(), 0);

    let below_one: Value = app
        .scim(&dir, M::GET, "/Users?startIndex=0&count=1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(below_one["startIndex"], 1);
    assert_eq!(below_one["Resources"][0]["userName"], "user0@example.com");
}

#[tokio::test]
async fn the_filters_identity_providers_use_find_users() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let mut body = user_body("Ada@Example.com");
    body["externalId"] = json!("00uAbC");
    body["displayName"] = json!("Ada Lovelace");
    body["emails"] = json!([
        { "value": "ada@home.example", "type": "home" },
        { "value": "Ada@Work.example", "type": "work", "primary": true }
    ]);
    let resp = app
        .scim(&dir, M::POST, "/Users")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let mut bob = user_body("bob@example.com");
    bob["displayName"] = json!("Bob Babbage");
    let resp = app
        .scim(&dir, M::POST, "/Users")
        .json(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);

    let cases = [
        ("userName eq \"ada@example.com\"", 1),
        ("USERNAME EQ \"ADA@EXAMPLE.COM\"", 1),
        ("userName eq \"nobody@example.com\"", 0),
        ("externalId eq \"00uAbC\"", 1),
        ("externalId eq \"00uabc\"", 0),
        ("emails.value eq \"ada@home.example\"", 1),
        ("emails.value eq \"ada@work.example\"", 1),
        (
            "emails[type eq \"work\" and value eq \"ada@work.example\"]",
            1,
        ),
        ("displayName eq \"ada lovelace\"", 1),
        ("userName sw \"ADA\"", 1),
        ("userName co \"example\"", 2),
        ("not (userName eq \"bob@example.com\")", 1),
        ("active eq true", 2),
        ("title pr", 0),
        (
            "userName eq \"bob@example.com\" or externalId eq \"00uAbC\"",
            2,
        ),
    ];
    for (filter, expected) in cases {
        let resp = app
            .scim(&dir, M::GET, "/Users")
            .query(&[("filter", filter)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{filter}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["totalResults"], expected, "{filter}");
        assert_eq!(
            body["Resources"].as_array().unwrap().len(),
            expected,
            "{filter}"
        );
    }
}

#[tokio::test]
async fn put_replaces_the_user() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let user = app.create_user(&dir, "ada@example.com").await;
    let id = user["id"].as_str().unwrap();
    let resp = app
        .scim(&dir, M::PUT, &format!("/Users/{id}"))
        .json(&json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "ada.lovelace@example.com",
            "title": "Countess",
            "active": false,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["etag"].to_str().unwrap(), "W/\"2\"");
    let put: Value = resp.json().await.unwrap();
    assert_eq!(put["userName"], "ada.lovelace@example.com");
    assert_eq!(put["title"], "Countess");
    assert_eq!(put["active"], false);
    assert!(put.get("name").is_none(), "PUT replaces, it does not merge");
    assert_eq!(put["meta"]["created"], user["meta"]["created"]);

    let missing = app
        .scim(&dir, M::PUT, &format!("/Users/{}", uuid::Uuid::new_v4()))
        .json(&user_body("x@example.com"))
        .send()
        .await
        .unwrap();
    assert_scim_error(missing, 404, None).await;
}

#[tokio::test]
async fn patch_deactivates_the_way_entra_and_okta_send_it() {
    let app = spawn_app().await;
    let dir = app.create_directory("Entra").await;
    let user = app.create_user(&dir, "ada@example.com").await;
    let id = user["id"].as_str().unwrap();
    // Entra ID: capitalised op, boolean as a string.
    let resp = app
        .scim(&dir, M::PATCH, &format!("/Users/{id}"))
        .json(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{ "op": "Replace", "path": "active", "value": "False" }]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["active"], false);
    let inactive: Value = app
        .scim(&dir, M::GET, "/Users")
        .query(&[("filter", "active eq false")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(inactive["totalResults"], 1);

    // Okta: no path, a value object.
    let resp = app
        .scim(&dir, M::PATCH, &format!("/Users/{id}"))
        .json(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{ "op": "replace", "value": { "active": true, "name.givenName": "Augusta" } }]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["active"], true);
    assert_eq!(body["name"]["givenName"], "Augusta");
    assert_eq!(body["meta"]["version"], "W/\"3\"");
}

#[tokio::test]
async fn a_failed_patch_changes_nothing() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let user = app.create_user(&dir, "ada@example.com").await;
    let id = user["id"].as_str().unwrap();
    let resp = app
        .scim(&dir, M::PATCH, &format!("/Users/{id}"))
        .json(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                { "op": "replace", "path": "title", "value": "Countess" },
                { "op": "replace", "path": "active", "value": 42 }
            ]
        }))
        .send()
        .await
        .unwrap();
    assert_scim_error(resp, 400, Some("invalidValue")).await;
    let after: Value = app
        .scim(&dir, M::GET, &format!("/Users/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(after, user, "no partial write");
}

#[tokio::test]
async fn delete_removes_the_user_and_its_memberships() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let user = app.create_user(&dir, "ada@example.com").await;
    let id = user["id"].as_str().unwrap();
    let group = app.create_group(&dir, "Eng", &[id]).await;
    let gid = group["id"].as_str().unwrap();

    let resp = app
        .scim(&dir, M::DELETE, &format!("/Users/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let gone = app
        .scim(&dir, M::GET, &format!("/Users/{id}"))
        .send()
        .await
        .unwrap();
    assert_scim_error(gone, 404, None).await;
    let again = app
        .scim(&dir, M::DELETE, &format!("/Users/{id}"))
        .send()
        .await
        .unwrap();
    assert_scim_error(again, 404, None).await;
    let group: Value = app
        .scim(&dir, M::GET, &format!("/Groups/{gid}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(group["members"].as_array().map(Vec::len).unwrap_or(0), 0);
}

#[tokio::test]
async fn versions_guard_writes_and_reads() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let user = app.create_user(&dir, "ada@example.com").await;
    let id = user["id"].as_str().unwrap();
    let stale = app
        .scim(&dir, M::PUT, &format!("/Users/{id}"))
        .header("if-match", "W/\"7\"")
        .json(&user_body("ada@example.com"))
        .send()
        .await
        .unwrap();
    assert_scim_error(stale, 412, None).await;
    let current = app
        .scim(&dir, M::PUT, &format!("/Users/{id}"))
        .header("if-match", "W/\"1\"")
        .json(&user_body("ada@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(current.status(), 200);
    let cached = app
        .scim(&dir, M::GET, &format!("/Users/{id}"))
        .header("if-none-match", "W/\"2\"")
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 304);
    let changed = app
        .scim(&dir, M::GET, &format!("/Users/{id}"))
        .header("if-none-match", "W/\"1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
}

#[tokio::test]
async fn attributes_and_excluded_attributes_shape_responses() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let user = app.create_user(&dir, "ada@example.com").await;
    let id = user["id"].as_str().unwrap();
    let only: Value = app
        .scim(&dir, M::GET, &format!("/Users/{id}?attributes=userName"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(only["userName"], "ada@example.com");
    assert_eq!(only["id"], id, "id is always returned");
    assert!(only.get("name").is_none());
    let without: Value = app
        .scim(
            &dir,
            M::GET,
            &format!("/Users/{id}?excludedAttributes=emails"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(without.get("emails").is_none());
    assert_eq!(without["name"]["givenName"], "Ada");
}

#[tokio::test]
async fn plain_json_requests_are_accepted() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let resp = app
        .scim(&dir, M::POST, "/Users")
        .header("content-type", "application/json")
        .body(user_body("ada@example.com").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let resp = app
        .scim(&dir, M::POST, "/Users")
        .header("content-type", "application/scim+json; charset=utf-8")
        .body(user_body("bob@example.com").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
}

#[tokio::test]
async fn writes_honour_attributes_too() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let resp = app
        .scim(&dir, M::POST, "/Users?attributes=userName")
        .json(&user_body("ada@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let created: Value = resp.json().await.unwrap();
    assert_eq!(created["userName"], "ada@example.com");
    assert!(created["id"].is_string());
    assert!(created.get("name").is_none());
    let id = created["id"].as_str().unwrap();
    let patched: Value = app
        .scim(
            &dir,
            M::PATCH,
            &format!("/Users/{id}?excludedAttributes=name,emails"),
        )
        .json(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{ "op": "replace", "path": "title", "value": "Countess" }]
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(patched["title"], "Countess");
    assert!(patched.get("name").is_none() && patched.get("emails").is_none());
}
