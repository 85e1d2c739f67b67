//! Cursor paging (RFC 9865) on `/Users`, `/Groups` and the `.search`
//! endpoints.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{assert_scim_error, spawn_app, spawn_app_with, TestApp, TestDirectory, M};

const SEARCH: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

async fn users(app: &TestApp, dir: &TestDirectory, n: usize, prefix: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let user = app
            .create_user(dir, &format!("{prefix}{i:03}@example.com"))
            .await;
        ids.push(user["id"].as_str().unwrap().to_owned());
    }
    ids
}

fn ids(page: &Value) -> Vec<String> {
    page["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

fn next(page: &Value) -> Option<String> {
    page.get("nextCursor")
        .map(|c| c.as_str().unwrap().to_owned())
}

/// Every page of `GET {path}?{query}&cursor=…`, from the first.
async fn walk_get(app: &TestApp, dir: &TestDirectory, path: &str, query: &str) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = app
            .get_json(dir, &format!("{path}?{query}&cursor={cursor}"))
            .await;
        let more = next(&page);
        pages.push(page);
        match more {
            Some(c) => cursor = c,
            None => return pages,
        }
        assert!(pages.len() < 100, "no end to the pages");
    }
}

/// Every page of `POST {path}` with a SearchRequest `body` and a cursor.
async fn walk_search(app: &TestApp, dir: &TestDirectory, path: &str, body: Value) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut cursor = String::new();
    loop {
        let mut request = body.clone();
        request["schemas"] = json!([SEARCH]);
        request["cursor"] = json!(cursor);
        let page = app
            .ok_json(app.scim(dir, M::POST, path).json(&request))
            .await;
        let more = next(&page);
        pages.push(page);
        match more {
            Some(c) => cursor = c,
            None => return pages,
        }
        assert!(pages.len() < 100, "no end to the pages");
    }
}

fn all_ids(pages: &[Value]) -> Vec<String> {
    pages.iter().flat_map(ids).collect()
}

#[tokio::test]
async fn cursors_walk_the_users_in_creation_order() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let created = users(&app, &dir, 7, "u").await;

    let pages = walk_get(&app, &dir, "/Users", "count=3").await;
    let sizes: Vec<usize> = pages.iter().map(|p| ids(p).len()).collect();
    assert_eq!(sizes, [3, 3, 1]);
    assert_eq!(all_ids(&pages), created);
    for page in &pages {
        assert_eq!(page["totalResults"], 7);
        assert_eq!(page["itemsPerPage"], ids(page).len());
        assert_eq!(
            page["schemas"],
            json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
        );
        // Cursor pages have no position, and no way back.
        assert!(page.get("startIndex").is_none(), "{page}");
        assert!(page.get("previousCursor").is_none(), "{page}");
    }
    assert!(next(&pages[1]).is_some() && next(&pages[2]).is_none());

    // `?cursor` without a value is the first page too; so is no count
    // (the default page holds them all, and is the last).
    let first = app.get_json(&dir, "/Users?cursor&count=3").await;
    assert_eq!(ids(&first), created[..3]);
    let all = app.get_json(&dir, "/Users?cursor=").await;
    assert_eq!(ids(&all), created);
    assert!(next(&all).is_none());

    // A page that ends exactly at the last user is the last page.
    let pages = walk_get(&app, &dir, "/Users", "count=7").await;
    assert_eq!(pages.len(), 1);

    // count=0: the total, no users, no next page.
    let none = app.get_json(&dir, "/Users?cursor=&count=0").await;
    assert_eq!(
        (none["totalResults"].clone(), ids(&none).len()),
        (json!(7), 0)
    );
    assert!(next(&none).is_none());

    // Index paging is unchanged beside it.
    let by_index = app.get_json(&dir, "/Users?startIndex=4&count=2").await;
    assert_eq!(ids(&by_index), created[3..5]);
    assert_eq!(by_index["startIndex"], 4);
    assert!(next(&by_index).is_none());
}

#[tokio::test]
async fn cursors_follow_filters_groups_and_searches() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let a = users(&app, &dir, 5, "a").await;
    let _b = users(&app, &dir, 3, "b").await;

    // A filter, with attributes projected.
    let query = "filter=userName%20sw%20%22a%22&count=2&attributes=userName";
    let pages = walk_get(&app, &dir, "/Users", query).await;
    assert_eq!(all_ids(&pages), a);
    assert!(pages.iter().all(|p| p["totalResults"] == 5));
    assert!(pages[0]["Resources"][0].get("emails").is_none());

    // The same through `POST /Users/.search`.
    let body = json!({ "filter": "userName sw \"a\"", "count": 2 });
    let pages = walk_search(&app, &dir, "/Users/.search", body).await;
    assert_eq!(all_ids(&pages), a);
    assert_eq!(pages.len(), 3);

    // Groups, by GET and by search.
    let mut groups = Vec::new();
    for (i, member) in a.iter().enumerate() {
        let g = app.create_group(&dir, &format!("g{i}"), &[member]).await;
        groups.push(g["id"].as_str().unwrap().to_owned());
    }
    let pages = walk_get(&app, &dir, "/Groups", "count=2").await;
    assert_eq!(all_ids(&pages), groups);
    assert_eq!(
        pages[0]["Resources"][0]["members"][0]["value"],
        a[0].as_str()
    );
    let body = json!({ "filter": "displayName ne \"g0\"", "count": 3 });
    let pages = walk_search(&app, &dir, "/Groups/.search", body).await;
    assert_eq!(all_ids(&pages), groups[1..]);
    assert!(pages.iter().all(|p| p["totalResults"] == 4));
}

#[tokio::test]
async fn a_root_search_walks_the_users_then_the_groups() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let u = users(&app, &dir, 3, "u").await;
    let mut g = Vec::new();
    for i in 0..2 {
        let group = app.create_group(&dir, &format!("g{i}"), &[]).await;
        g.push(group["id"].as_str().unwrap().to_owned());
    }
    let everyone: Vec<String> = u.iter().chain(&g).cloned().collect();
    for (count, sizes) in [
        (2, vec![2, 2, 1]),
        // The users fill the first page exactly: the groups follow.
        (3, vec![3, 2]),
        (4, vec![4, 1]),
        (5, vec![5]),
        (9, vec![5]),
        (1, vec![1, 1, 1, 1, 1]),
    ] {
        let pages = walk_search(&app, &dir, "/.search", json!({ "count": count })).await;
        let got: Vec<usize> = pages.iter().map(|p| ids(p).len()).collect();
        assert_eq!(got, sizes, "count={count}");
        assert_eq!(all_ids(&pages), everyone, "count={count}");
        assert!(pages.iter().all(|p| p["totalResults"] == 5));
    }
    // A filter only users fit.
    let body = json!({ "filter": "userName sw \"u\"", "count": 2 });
    let pages = walk_search(&app, &dir, "/.search", body).await;
    assert_eq!(all_ids(&pages), u);
}

#[tokio::test]
async fn foreign_altered_and_misused_cursors_are_refused() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let other = app.create_directory("Entra").await;
    users(&app, &dir, 5, "u").await;
    users(&app, &other, 5, "u").await;
    app.create_group(&dir, "g", &[]).await;
    let first = app.get_json(&dir, "/Users?cursor&count=2").await;
    let cursor = next(&first).unwrap();
    let get = |dir: &TestDirectory, query: String| {
        app.scim(dir, M::GET, &format!("/Users?{query}")).send()
    };

    // Altered: each of a few characters changed.
    for at in [0, cursor.len() / 2, cursor.len() - 1] {
        let mut altered: Vec<char> = cursor.chars().collect();
        altered[at] = if altered[at] == 'A' { 'B' } else { 'A' };
        let altered: String = altered.into_iter().collect();
        let resp = get(&dir, format!("cursor={altered}&count=2"))
            .await
            .unwrap();
        assert_scim_error(resp, 400, Some("invalidCursor")).await;
    }
    for garbage in ["x", "%21%21", "AAAA"] {
        let resp = get(&dir, format!("cursor={garbage}&count=2"))
            .await
            .unwrap();
        assert_scim_error(resp, 400, Some("invalidCursor")).await;
    }
    // Another directory, another filter, another list.
    let resp = get(&other, format!("cursor={cursor}&count=2"))
        .await
        .unwrap();
    assert_scim_error(resp, 400, Some("invalidCursor")).await;
    let resp = get(
        &dir,
        format!("cursor={cursor}&count=2&filter=active%20eq%20true"),
    )
    .await
    .unwrap();
    assert_scim_error(resp, 400, Some("invalidCursor")).await;
    let resp = app
        .scim(&dir, M::GET, &format!("/Groups?cursor={cursor}&count=2"))
        .send()
        .await
        .unwrap();
    assert_scim_error(resp, 400, Some("invalidCursor")).await;
    let resp = app
        .scim(&dir, M::POST, "/.search")
        .json(&json!({ "schemas": [SEARCH], "cursor": cursor, "count": 2 }))
        .send()
        .await
        .unwrap();
    assert_scim_error(resp, 400, Some("invalidCursor")).await;
    // Another count.
    let resp = get(&dir, format!("cursor={cursor}&count=3")).await.unwrap();
    let body = assert_scim_error(resp, 400, Some("invalidCount")).await;
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("count must stay 2"));
    // With startIndex, or with sortBy.
    for query in [
        format!("cursor={cursor}&count=2&startIndex=3"),
        "cursor=&startIndex=1".to_owned(),
        "cursor=&sortBy=userName".to_owned(),
    ] {
        let resp = get(&dir, query.clone()).await.unwrap();
        assert_scim_error(resp, 400, Some("invalidValue")).await;
    }
    let resp = app
        .scim(&dir, M::POST, "/Users/.search")
        .json(&json!({ "schemas": [SEARCH], "cursor": "", "startIndex": 1 }))
        .send()
        .await
        .unwrap();
    assert_scim_error(resp, 400, Some("invalidValue")).await;
    let resp = app
        .scim(&dir, M::POST, "/Users/.search")
        .json(&json!({ "schemas": [SEARCH], "cursor": 12 }))
        .send()
        .await
        .unwrap();
    assert_scim_error(resp, 400, Some("invalidCursor")).await;
    // The cursor itself is still good.
    let second = app
        .get_json(&dir, &format!("/Users?cursor={cursor}&count=2"))
        .await;
    assert_eq!(ids(&second).len(), 2);
}

#[tokio::test]
async fn cursors_expire_after_the_advertised_timeout() {
    let app = spawn_app_with(|c| c.cursor_timeout_seconds = 1).await;
    let dir = app.create_directory("Okta").await;
    users(&app, &dir, 3, "u").await;
    let config = app.get_json(&dir, "/ServiceProviderConfig").await;
    assert_eq!(config["pagination"]["cursorTimeout"], 1);
    let first = app.get_json(&dir, "/Users?cursor&count=1").await;
    let cursor = next(&first).unwrap();
    // Expiry is counted in whole seconds: two of them leave no doubt.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let resp = app
        .scim(&dir, M::GET, &format!("/Users?cursor={cursor}&count=1"))
        .send()
        .await
        .unwrap();
    let body = assert_scim_error(resp, 400, Some("expiredCursor")).await;
    assert!(body["detail"].as_str().unwrap().contains("expired"));
}

#[tokio::test]
async fn the_service_provider_config_advertises_both_methods() {
    let app = spawn_app_with(|c| c.max_page_size = 250).await;
    let dir = app.create_directory("Okta").await;
    let config = app.get_json(&dir, "/ServiceProviderConfig").await;
    assert_eq!(
        config["pagination"],
        json!({
            "cursor": true,
            "index": true,
            "defaultPaginationMethod": "index",
            "defaultPageSize": 100,
            "maxPageSize": 250,
            "cursorTimeout": 3600,
        })
    );
}

/// Users that exist for the whole walk are each seen exactly once, while
/// others are created and deleted around them.
#[tokio::test]
async fn a_walk_sees_every_stable_user_once_under_concurrent_changes() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    // Stable users interleaved with ones that will be deleted mid-walk.
    let mut stable = Vec::new();
    let mut doomed = Vec::new();
    for i in 0..40 {
        let user = app.create_user(&dir, &format!("s{i:03}@example.com")).await;
        stable.push(user["id"].as_str().unwrap().to_owned());
        let user = app.create_user(&dir, &format!("d{i:03}@example.com")).await;
        doomed.push(user["id"].as_str().unwrap().to_owned());
    }
    let churn = {
        let client = reqwest::Client::new();
        let base = dir.base_url.clone();
        let key = dir.api_key.clone();
        let doomed = doomed.clone();
        tokio::spawn(async move {
            for (i, id) in doomed.iter().enumerate() {
                let resp = client
                    .delete(format!("{base}/Users/{id}"))
                    .bearer_auth(&key)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 204);
                let resp = client
                    .post(format!("{base}/Users"))
                    .bearer_auth(&key)
                    .json(&crate::helpers::user_body(&format!("n{i:03}@example.com")))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 201);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let mut seen = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let page = app
            .get_json(&dir, &format!("/Users?count=3&cursor={cursor}"))
            .await;
        seen.extend(ids(&page));
        pages += 1;
        tokio::time::sleep(Duration::from_millis(3)).await;
        match next(&page) {
            Some(c) => cursor = c,
            None => break,
        }
        assert!(pages < 200, "no end to the pages");
    }
    churn.await.unwrap();
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a user was listed twice");
    for id in &stable {
        assert_eq!(
            seen.iter().filter(|s| *s == id).count(),
            1,
            "stable user {id} missed"
        );
    }
    // The walk kept creation order.
    let order: Vec<&String> = seen.iter().filter(|s| stable.contains(s)).collect();
    assert_eq!(order, stable.iter().collect::<Vec<_>>());
}

/// On PostgreSQL the secret is the database's: a replica accepts the
/// cursors another returned.
#[tokio::test]
async fn replicas_accept_each_others_cursors() {
    let app = spawn_app().await;
    let Some(replica) = app.spawn_replica().await else {
        return;
    };
    let dir = app.create_directory("Okta").await;
    let created = users(&app, &dir, 4, "u").await;
    let first = app.get_json(&dir, "/Users?cursor&count=2").await;
    let cursor = next(&first).unwrap();
    let second = replica
        .get_json(&dir, &format!("/Users?cursor={cursor}&count=2"))
        .await;
    assert_eq!(ids(&second), created[2..]);
}
