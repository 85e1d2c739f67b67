use serde_json::{json, Value};

use crate::helpers::{assert_scim_error, spawn_app, user_body, M};

fn member_ids(group: &Value) -> Vec<String> {
    let mut ids: Vec<String> = group["members"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|v| v["value"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

fn sorted(ids: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

#[tokio::test]
async fn groups_hold_members_and_users_show_their_groups() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let ada = app.create_user(&dir, "ada@example.com").await;
    let ada_id = ada["id"].as_str().unwrap();
    let group = app.create_group(&dir, "Engineering", &[ada_id]).await;
    let gid = group["id"].as_str().unwrap();
    assert_eq!(group["displayName"], "Engineering");
    assert_eq!(group["meta"]["resourceType"], "Group");
    assert_eq!(group["members"][0]["value"], ada_id);
    assert_eq!(group["members"][0]["display"], "Ada Lovelace");
    assert_eq!(group["members"][0]["type"], "User");

    let user: Value = app
        .scim(&dir, M::GET, &format!("/Users/{ada_id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(user["groups"][0]["value"], gid);
    assert_eq!(user["groups"][0]["display"], "Engineering");

    // A write's response is the user as a GET right after it reads it,
    // groups included, unless they are excluded.
    let patch = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{ "op": "replace", "path": "title", "value": "Countess" }]
    });
    let mut put = user.clone();
    put.as_object_mut().unwrap().remove("meta");
    put["title"] = json!("Analyst");
    for (method, body) in [(M::PATCH, &patch), (M::PUT, &put)] {
        let path = format!("/Users/{ada_id}");
        let written = app
            .ok_json(app.scim(&dir, method.clone(), &path).json(body))
            .await;
        assert_eq!(written["groups"][0]["value"], gid, "{method}");
        assert_eq!(written, app.get_json(&dir, &path).await, "{method}");
        let path = format!("{path}?excludedAttributes=groups");
        let without = app
            .ok_json(app.scim(&dir, method.clone(), &path).json(body))
            .await;
        assert!(without.get("groups").is_none(), "{method}");
        assert!(without.get("title").is_some(), "{method}");
    }

    let by_name: Value = app
        .scim(&dir, M::GET, "/Groups")
        .query(&[("filter", "displayName eq \"engineering\"")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(by_name["totalResults"], 1);
    let by_member: Value = app
        .scim(&dir, M::GET, "/Groups")
        .query(&[("filter", format!("members.value eq \"{ada_id}\""))])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(by_member["totalResults"], 1);
}

#[tokio::test]
async fn patch_adds_and_removes_members_in_every_shape_idps_send() {
    let app = spawn_app().await;
    let dir = app.create_directory("Entra").await;
    let mut ids = Vec::new();
    for i in 0..4 {
        let u = app.create_user(&dir, &format!("u{i}@example.com")).await;
        ids.push(u["id"].as_str().unwrap().to_owned());
    }
    let group = app.create_group(&dir, "Eng", &[]).await;
    let gid = group["id"].as_str().unwrap();
    let patch = |ops: Value| {
        app.scim(&dir, M::PATCH, &format!("/Groups/{gid}"))
            .json(&json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": ops
            }))
            .send()
    };
    let get = || async {
        app.scim(&dir, M::GET, &format!("/Groups/{gid}"))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };

    // Add (Entra style).
    let resp = patch(json!([{ "op": "Add", "path": "members",
        "value": [{ "value": ids[0] }, { "value": ids[1] }, { "value": ids[2] }] }]))
    .await
    .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(
        member_ids(&get().await),
        sorted(&[&ids[0], &ids[1], &ids[2]])
    );

    // Remove with a value filter (Okta style).
    let resp = patch(json!([{ "op": "remove",
        "path": format!("members[value eq \"{}\"]", ids[0]) }]))
    .await
    .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(member_ids(&get().await), sorted(&[&ids[1], &ids[2]]));

    // Remove with a value list (Entra style), plus a rename, atomically.
    let resp = patch(json!([
        { "op": "Remove", "path": "members", "value": [{ "value": ids[1] }] },
        { "op": "Replace", "path": "displayName", "value": "Engineering" }
    ]))
    .await
    .unwrap();
    assert_eq!(resp.status(), 204);
    let g = get().await;
    assert_eq!(member_ids(&g), sorted(&[&ids[2]]));
    assert_eq!(g["displayName"], "Engineering");

    // Replace all members.
    let resp = patch(json!([{ "op": "replace", "path": "members",
        "value": [{ "value": ids[3] }] }]))
    .await
    .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(member_ids(&get().await), sorted(&[&ids[3]]));

    // Asking for attributes returns the group.
    let resp = app
        .scim(
            &dir,
            M::PATCH,
            &format!("/Groups/{gid}?attributes=displayName"),
        )
        .json(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{ "op": "add", "path": "members", "value": [{ "value": ids[0] }] }]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["displayName"], "Engineering");
    assert!(body.get("members").is_none());
}

#[tokio::test]
async fn unknown_members_are_refused_and_nothing_is_written() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let other = app.create_directory("Other").await;
    let stranger = app.create_user(&other, "eve@example.com").await;
    let ada = app.create_user(&dir, "ada@example.com").await;
    let group = app.create_group(&dir, "Eng", &[]).await;
    let gid = group["id"].as_str().unwrap();
    for bad in [
        uuid::Uuid::new_v4().to_string(),
        "not-an-id".to_owned(),
        stranger["id"].as_str().unwrap().to_owned(),
    ] {
        let resp = app
            .scim(&dir, M::PATCH, &format!("/Groups/{gid}"))
            .json(&json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [
                    { "op": "replace", "path": "displayName", "value": "Renamed" },
                    { "op": "add", "path": "members",
                      "value": [{ "value": ada["id"] }, { "value": bad }] }
                ]
            }))
            .send()
            .await
            .unwrap();
        assert_scim_error(resp, 400, Some("invalidValue")).await;
    }
    let g: Value = app
        .scim(&dir, M::GET, &format!("/Groups/{gid}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(g["displayName"], "Eng");
    assert!(member_ids(&g).is_empty());
    assert_eq!(g["meta"]["version"], "W/\"1\"");

    let resp = app
        .scim(&dir, M::POST, "/Groups")
        .json(&json!({ "displayName": "Ops", "members": [{ "value": uuid::Uuid::new_v4() }] }))
        .send()
        .await
        .unwrap();
    assert_scim_error(resp, 400, Some("invalidValue")).await;
    let list: Value = app
        .scim(&dir, M::GET, "/Groups")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["totalResults"], 1, "the failed POST left no group");
}

#[tokio::test]
async fn display_names_are_unique_per_directory() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    app.create_group(&dir, "Engineering", &[]).await;
    let dup = app
        .scim(&dir, M::POST, "/Groups")
        .json(&json!({ "displayName": "ENGINEERING" }))
        .send()
        .await
        .unwrap();
    assert_scim_error(dup, 409, Some("uniqueness")).await;
    let missing = app
        .scim(&dir, M::POST, "/Groups")
        .json(&json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"] }))
        .send()
        .await
        .unwrap();
    assert_scim_error(missing, 400, Some("invalidValue")).await;
}

#[tokio::test]
async fn put_replaces_name_and_members_and_delete_removes_the_group() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let a = app.create_user(&dir, "a@example.com").await;
    let b = app.create_user(&dir, "b@example.com").await;
    let a_id = a["id"].as_str().unwrap();
    let b_id = b["id"].as_str().unwrap();
    let group = app.create_group(&dir, "Eng", &[a_id]).await;
    let gid = group["id"].as_str().unwrap();
    let resp = app
        .scim(&dir, M::PUT, &format!("/Groups/{gid}"))
        .json(&json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Engineering",
            "members": [{ "value": b_id }]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["displayName"], "Engineering");
    assert_eq!(member_ids(&body), sorted(&[b_id]));

    let slim: Value = app
        .scim(&dir, M::GET, "/Groups?excludedAttributes=members")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(slim["Resources"][0].get("members").is_none());

    let resp = app
        .scim(&dir, M::DELETE, &format!("/Groups/{gid}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let gone = app
        .scim(&dir, M::GET, &format!("/Groups/{gid}"))
        .send()
        .await
        .unwrap();
    assert_scim_error(gone, 404, None).await;
    let user: Value = app
        .scim(&dir, M::GET, &format!("/Users/{b_id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(user.get("groups").is_none());
}

#[tokio::test]
async fn a_large_group_is_returned_whole() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let directory_id: uuid::Uuid = dir.id.parse().unwrap();
    // More members than one streamed batch (5,000) holds.
    let ids = app.store.seed_users(directory_id, 0, 5_500).await.unwrap();
    let group = app.create_group(&dir, "Everyone", &[]).await;
    let gid = group["id"].as_str().unwrap();
    let members: Vec<Value> = ids.iter().map(|id| json!({ "value": id })).collect();
    let resp = app
        .scim(&dir, M::PATCH, &format!("/Groups/{gid}"))
        .json(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{ "op": "add", "path": "members", "value": members }]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let resp = app
        .scim(&dir, M::GET, &format!("/Groups/{gid}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["etag"].to_str().unwrap(), "W/\"2\"");
    let body: Value = resp.json().await.unwrap();
    let got = member_ids(&body);
    let mut want: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(body["displayName"], "Everyone");
    assert_eq!(body["meta"]["resourceType"], "Group");
    assert_eq!(body["members"][0]["type"], "User");
    assert!(body["members"][0]["display"].is_string());

    let empty = app.create_group(&dir, "Nobody", &[]).await;
    let body: Value = app
        .scim(
            &dir,
            M::GET,
            &format!("/Groups/{}", empty["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["members"], json!([]));
}

/// A member's `display` is the user's displayName, else its userName, or a
/// nested group's displayName; `type` and `$ref` say which. A single group
/// (written member by member as it streams) and a listed group (rendered
/// whole) must agree.
#[tokio::test]
async fn members_show_the_name_of_what_they_are() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let ada = app.create_user(&dir, "ada@example.com").await;
    let ada_id = ada["id"].as_str().unwrap();
    let mut nameless = user_body("grace@example.com");
    nameless.as_object_mut().unwrap().remove("displayName");
    let grace = app.create_user_from(&dir, &nameless).await;
    let grace_id = grace["id"].as_str().unwrap();
    let nested = app.create_group(&dir, "Compilers", &[]).await;
    let nested_id = nested["id"].as_str().unwrap();
    let group = app
        .create_group(&dir, "Platform", &[ada_id, grace_id, nested_id])
        .await;
    let gid = group["id"].as_str().unwrap();

    let base = &dir.base_url;
    let mut expected = vec![
        json!({ "value": ada_id, "$ref": format!("{base}/Users/{ada_id}"),
                "type": "User", "display": "Ada Lovelace" }),
        json!({ "value": grace_id, "$ref": format!("{base}/Users/{grace_id}"),
                "type": "User", "display": "grace@example.com" }),
        json!({ "value": nested_id, "$ref": format!("{base}/Groups/{nested_id}"),
                "type": "Group", "display": "Compilers" }),
    ];
    let by_value = |v: &Value| v["value"].as_str().unwrap().to_owned();
    expected.sort_by_key(by_value);
    let sorted_members = |group: &Value| {
        let mut members = group["members"].as_array().unwrap().clone();
        members.sort_by_key(by_value);
        members
    };

    let single = app.get_json(&dir, &format!("/Groups/{gid}")).await;
    assert_eq!(sorted_members(&single), expected);
    let listed = app
        .get_json(&dir, "/Groups?filter=displayName%20eq%20%22Platform%22")
        .await;
    assert_eq!(listed["totalResults"], 1);
    assert_eq!(sorted_members(&listed["Resources"][0]), expected);
}

/// Adding members that are members already is no error, and still checks
/// the others: a missing id among them fails the whole PATCH.
#[tokio::test]
async fn re_adding_members_succeeds_and_still_checks_the_others() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let ada = app.create_user(&dir, "ada@example.com").await;
    let grace = app.create_user(&dir, "grace@example.com").await;
    let group = app
        .create_group(&dir, "Eng", &[ada["id"].as_str().unwrap()])
        .await;
    let gid = group["id"].as_str().unwrap();
    let add = |ids: Vec<Value>| {
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{ "op": "add", "path": "members",
                             "value": ids.into_iter().map(|id| json!({ "value": id })).collect::<Vec<_>>() }]
        })
    };
    let path = format!("/Groups/{gid}");
    let resp = app
        .scim(&dir, M::PATCH, &path)
        .json(&add(vec![ada["id"].clone(), grace["id"].clone()]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let missing = json!(uuid::Uuid::new_v4().to_string());
    let resp = app
        .scim(&dir, M::PATCH, &path)
        .json(&add(vec![ada["id"].clone(), missing]))
        .send()
        .await
        .unwrap();
    assert_scim_error(resp, 400, Some("invalidValue")).await;
    let g = app.get_json(&dir, &path).await;
    let mut members = member_ids(&g);
    members.sort();
    let mut expected = vec![
        ada["id"].as_str().unwrap().to_owned(),
        grace["id"].as_str().unwrap().to_owned(),
    ];
    expected.sort();
    assert_eq!(members, expected);
    assert_eq!(g["meta"]["version"], "W/\"2\"");
}

/// A deleted group's member rows go with it, and so do those of every
/// group of a deleted directory.
#[tokio::test]
async fn deleting_a_group_or_its_directory_deletes_its_members() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let ada = app.create_user(&dir, "ada@example.com").await;
    let grace = app.create_user(&dir, "grace@example.com").await;
    let (ada, grace) = (ada["id"].as_str().unwrap(), grace["id"].as_str().unwrap());
    let first = app.create_group(&dir, "First", &[ada, grace]).await;
    app.create_group(&dir, "Second", &[ada]).await;
    let members = "SELECT COUNT(*) FROM group_members";
    assert_eq!(app.db().count(members).await, 3);
    let resp = app
        .scim(
            &dir,
            M::DELETE,
            &format!("/Groups/{}", first["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(app.db().count(members).await, 1);
    let resp = app
        .admin(M::DELETE, &format!("/orgs/default/directories/{}", dir.id))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(app.db().count(members).await, 0);
}
