use serde_json::Value;

use crate::helpers::{assert_scim_error, spawn_app, M};

#[tokio::test]
async fn service_provider_config_describes_what_is_supported() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let resp = app
        .scim(&dir, M::GET, "/ServiceProviderConfig")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["schemas"][0],
        "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
    );
    assert_eq!(body["patch"]["supported"], true);
    assert_eq!(body["bulk"]["supported"], true);
    assert_eq!(body["bulk"]["maxOperations"], 1000);
    assert_eq!(body["bulk"]["maxPayloadSize"], 1_048_576);
    assert_eq!(body["sort"]["supported"], true);
    assert_eq!(body["filter"]["supported"], true);
    assert_eq!(body["etag"]["supported"], true);
    assert_eq!(body["authenticationSchemes"][0]["type"], "oauthbearertoken");
}

#[tokio::test]
async fn schemas_and_resource_types_are_listed_and_fetched_by_id() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let list: Value = app
        .scim(&dir, M::GET, "/Schemas")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = list["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    for urn in [
        "urn:ietf:params:scim:schemas:core:2.0:User",
        "urn:ietf:params:scim:schemas:core:2.0:Group",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        "urn:scim:schemas:extension:atlassian-external:1.0",
    ] {
        assert!(ids.contains(&urn), "{urn} in {ids:?}");
    }
    let user: Value = app
        .scim(
            &dir,
            M::GET,
            "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User",
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let user_name = user["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "userName")
        .unwrap();
    assert_eq!(user_name["caseExact"], false);
    assert_eq!(user_name["uniqueness"], "server");
    assert_eq!(user_name["required"], true);

    let types: Value = app
        .scim(&dir, M::GET, "/ResourceTypes")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(types["totalResults"], 2);
    let user_type: Value = app
        .scim(&dir, M::GET, "/ResourceTypes/User")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(user_type["endpoint"], "/Users");
    assert_eq!(
        user_type["schemaExtensions"][0]["schema"],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    );
    let missing = app
        .scim(&dir, M::GET, "/Schemas/urn:nope")
        .send()
        .await
        .unwrap();
    assert_scim_error(missing, 404, None).await;
}
