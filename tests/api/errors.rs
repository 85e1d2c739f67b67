//! Bad input: each case is a SCIM error and writes nothing.

use serde_json::{json, Value};

use crate::helpers::{assert_scim_error, spawn_app, spawn_app_with, user_body, M};

async fn user_count(app: &crate::helpers::TestApp, dir: &crate::helpers::TestDirectory) -> i64 {
    let list: Value = app
        .scim(dir, M::GET, "/Users?count=0")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list["totalResults"].as_i64().unwrap()
}

#[tokio::test]
async fn bad_bodies_get_scim_errors_and_write_nothing() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let raw = |body: &str| {
        app.scim(&dir, M::POST, "/Users")
            .header("content-type", "application/scim+json")
            .body(body.to_owned())
            .send()
    };
    assert_scim_error(
        raw("{\"userName\": ").await.unwrap(),
        400,
        Some("invalidSyntax"),
    )
    .await;
    assert_scim_error(raw("[1, 2]").await.unwrap(), 400, Some("invalidSyntax")).await;

    let cases: Vec<(Value, &str)> = vec![
        (
            json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"] }),
            "invalidValue",
        ),
        (json!({ "userName": "" }), "invalidValue"),
        (json!({ "userName": 42 }), "invalidValue"),
        (
            json!({ "userName": "a@example.com", "active": 5 }),
            "invalidValue",
        ),
        (
            json!({ "userName": "a@example.com", "emails": "a@example.com" }),
            "invalidValue",
        ),
        (
            json!({ "userName": "a@example.com", "name": "Ada" }),
            "invalidValue",
        ),
        (
            json!({ "schemas": ["urn:example:unknown"], "userName": "a@example.com" }),
            "invalidValue",
        ),
        (
            json!({ "userName": "a@example.com", "emails": [
                { "value": "a@x", "primary": true }, { "value": "b@x", "primary": true }
            ] }),
            "invalidValue",
        ),
    ];
    for (body, scim_type) in cases {
        let resp = app
            .scim(&dir, M::POST, "/Users")
            .json(&body)
            .send()
            .await
            .unwrap();
        let err = assert_scim_error(resp, 400, Some(scim_type)).await;
        assert!(!err["detail"].as_str().unwrap().is_empty(), "{body}");
    }
    assert_eq!(user_count(&app, &dir).await, 0);
}

#[tokio::test]
async fn wrong_content_type_is_refused() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let resp = app
        .scim(&dir, M::POST, "/Users")
        .header("content-type", "text/plain")
        .body(user_body("a@example.com").to_string())
        .send()
        .await
        .unwrap();
    assert_scim_error(resp, 415, None).await;
    assert_eq!(user_count(&app, &dir).await, 0);
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let app = spawn_app_with(|c| c.max_body_bytes = 2_048).await;
    let dir = app.create_directory("Okta").await;
    let mut body = user_body("a@example.com");
    body["title"] = json!("x".repeat(4_096));
    let resp = app
        .scim(&dir, M::POST, "/Users")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_scim_error(resp, 413, None).await;
    assert_eq!(user_count(&app, &dir).await, 0);
}

#[tokio::test]
async fn unknown_ids_endpoints_and_methods() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    for path in [
        format!("/Users/{}", uuid::Uuid::new_v4()),
        "/Users/not-a-uuid".to_owned(),
        format!("/Groups/{}", uuid::Uuid::new_v4()),
        "/Nope".to_owned(),
    ] {
        let resp = app.scim(&dir, M::GET, &path).send().await.unwrap();
        assert_scim_error(resp, 404, None).await;
    }
    let resp = app.scim(&dir, M::DELETE, "/Users").send().await.unwrap();
    assert_scim_error(resp, 405, None).await;
    let resp = app
        .scim(&dir, M::PUT, "/ServiceProviderConfig")
        .send()
        .await
        .unwrap();
    assert_scim_error(resp, 405, None).await;
}

#[tokio::test]
async fn bad_query_parameters_are_client_errors() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    for filter in [
        "userName eq",
        "userName zz \"a\"",
        "(userName eq \"a\"",
        "noSuchAttribute eq \"a\"",
        "active eq \"yes\"",
    ] {
        let resp = app
            .scim(&dir, M::GET, "/Users")
            .query(&[("filter", filter)])
            .send()
            .await
            .unwrap();
        let err = assert_scim_error(resp, 400, Some("invalidFilter")).await;
        assert!(!err["detail"].as_str().unwrap().is_empty());
    }
    let resp = app
        .scim(&dir, M::GET, "/Users?count=many")
        .send()
        .await
        .unwrap();
    assert_scim_error(resp, 400, Some("invalidValue")).await;
}

#[tokio::test]
async fn bad_patch_requests_are_refused() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let user = app.create_user(&dir, "ada@example.com").await;
    let id = user["id"].as_str().unwrap();
    let cases: Vec<(Value, &str)> = vec![
        (json!({ "Operations": "nope" }), "invalidSyntax"),
        (
            json!({ "Operations": [{ "op": "explode", "path": "title" }] }),
            "invalidSyntax",
        ),
        (
            json!({ "Operations": [{ "op": "replace", "path": "title[[", "value": "x" }] }),
            "invalidPath",
        ),
        (
            json!({ "Operations": [{ "op": "replace", "path": "id", "value": "x" }] }),
            "mutability",
        ),
        (
            json!({ "Operations": [{ "op": "remove", "path": "emails[type eq \"fax\"]" }] }),
            "noTarget",
        ),
    ];
    for (body, scim_type) in cases {
        let resp = app
            .scim(&dir, M::PATCH, &format!("/Users/{id}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_scim_error(resp, 400, Some(scim_type)).await;
    }
    let after: Value = app
        .scim(&dir, M::GET, &format!("/Users/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(after, user);
}

#[tokio::test]
async fn undecodable_path_segments_are_404_not_500() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let resp = app
        .scim(&dir, M::GET, "/Users/%FF%FE")
        .send()
        .await
        .unwrap();
    assert_scim_error(resp, 404, None).await;
    let resp = app
        .client
        .get(format!("{}/scim/directory/%FF/Users", app.address))
        .bearer_auth(&dir.api_key)
        .send()
        .await
        .unwrap();
    assert_scim_error(resp, 404, None).await;
}

/// U+0000 cannot be stored by PostgreSQL; a body or filter holding it is
/// the client's fault on every store: 400, and nothing is written.
#[tokio::test]
async fn strings_holding_u0000_are_400_not_500() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let user = app.create_user(&dir, "ada@example.com").await;
    let id = user["id"].as_str().unwrap();

    let nul_in_value = user_body("nul\u{0}@example.com");
    let mut nul_in_key = user_body("fine@example.com");
    nul_in_key["name"] = json!({ "givenName\u{0}": "Ada" });
    let patch = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{ "op": "replace", "path": "title", "value": "a\u{0}b" }]
    });
    let user_path = format!("/Users/{id}");
    for (method, path, body) in [
        (M::POST, "/Users", &nul_in_value),
        (M::POST, "/Users", &nul_in_key),
        (M::PATCH, user_path.as_str(), &patch),
    ] {
        let resp = app
            .scim(&dir, method, path)
            .json(body)
            .send()
            .await
            .unwrap();
        assert_scim_error(resp, 400, Some("invalidValue")).await;
    }
    let resp = app
        .admin(M::POST, "/orgs/default/directories")
        .json(&json!({ "name": "bad\u{0}name" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    for filter in [
        "userName eq \"a\\u0000b\"",
        "title eq \"a\\u0000b\"",
        "userName sw \"a%00b\"",
    ] {
        let resp = app
            .scim(&dir, M::GET, &format!("/Users?filter={filter}"))
            .send()
            .await
            .unwrap();
        assert_scim_error(resp, 400, Some("invalidFilter")).await;
    }
    let list = app.get_json(&dir, "/Users").await;
    assert_eq!(list["totalResults"], 1);
    assert_eq!(app.get_json(&dir, &format!("/Users/{id}")).await, user);
}
