//! Sorting, paging with sorting, and POST …/.search.

use serde_json::{json, Value};

use crate::helpers::{assert_scim_error, spawn_app, user_body, TestApp, TestDirectory, M};

async fn seed(app: &TestApp, dir: &TestDirectory) -> Vec<Value> {
    let mut users = Vec::new();
    for (name, title) in [
        ("carol@example.com", Some("Engineer")),
        ("Alice@example.com", None),
        ("bob@example.com", Some("architect")),
        ("dave@example.com", Some("Boss")),
    ] {
        let mut body = user_body(name);
        if let Some(t) = title {
            body["title"] = json!(t);
        }
        let resp = app
            .scim(dir, M::POST, "/Users")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        users.push(resp.json().await.unwrap());
    }
    users
}

fn names(list: &Value, attr: &str) -> Vec<String> {
    each(&list["Resources"], attr)
}

/// The `attr` of each element of the array `items` ("-" where absent).
fn each(items: &Value, attr: &str) -> Vec<String> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u[attr].as_str().unwrap_or("-").to_owned())
        .collect()
}

#[tokio::test]
async fn sort_by_any_simple_attribute_in_either_order() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    seed(&app, &dir).await;
    let get = |q: &'static str| {
        let app = &app;
        let dir = &dir;
        async move {
            app.scim(dir, M::GET, &format!("/Users?{q}"))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        names(&get("sortBy=userName").await, "userName"),
        [
            "Alice@example.com",
            "bob@example.com",
            "carol@example.com",
            "dave@example.com"
        ],
        "case-insensitive order"
    );
    assert_eq!(
        names(
            &get("sortBy=userName&sortOrder=descending").await,
            "userName"
        ),
        [
            "dave@example.com",
            "carol@example.com",
            "bob@example.com",
            "Alice@example.com"
        ]
    );
    // Absent values sort last in both directions.
    assert_eq!(
        names(&get("sortBy=title").await, "title"),
        ["architect", "Boss", "Engineer", "-"]
    );
    assert_eq!(
        names(&get("sortBy=title&sortOrder=descending").await, "title"),
        ["Engineer", "Boss", "architect", "-"]
    );
    // Paging stays correct with sorting.
    let second = get("sortBy=userName&startIndex=2&count=2").await;
    assert_eq!(second["totalResults"], 4);
    assert_eq!(
        names(&second, "userName"),
        ["bob@example.com", "carol@example.com"]
    );
    let by_created = get("sortBy=meta.created&sortOrder=descending&count=1").await;
    assert_eq!(names(&by_created, "userName"), ["dave@example.com"]);
    let by_email = get("sortBy=emails.value&count=1").await;
    assert_eq!(names(&by_email, "userName"), ["Alice@example.com"]);
}

#[tokio::test]
async fn bad_sort_parameters_are_refused() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    for q in [
        "sortBy=noSuchThing",
        "sortBy=phoneNumbers",
        "sortBy=userName&sortOrder=sideways",
    ] {
        let resp = app
            .scim(&dir, M::GET, &format!("/Users?{q}"))
            .send()
            .await
            .unwrap();
        assert_scim_error(resp, 400, Some("invalidValue")).await;
    }
}

#[tokio::test]
async fn search_requests_list_users_groups_and_both() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let users = seed(&app, &dir).await;
    let bob = users[2]["id"].as_str().unwrap();
    app.create_group(&dir, "Engineering", &[bob]).await;
    app.create_group(&dir, "Bosses", &[]).await;

    let resp = app
        .scim(&dir, M::POST, "/Users/.search")
        .json(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": "title pr",
            "attributes": ["userName", "title"],
            "sortBy": "title",
            "sortOrder": "descending",
            "startIndex": 1,
            "count": 2
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["totalResults"], 3);
    assert_eq!(names(&body, "title"), ["Engineer", "Boss"]);
    assert!(body["Resources"][0].get("emails").is_none());

    let resp = app
        .scim(&dir, M::POST, "/Groups/.search")
        .json(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": format!("members.value eq \"{bob}\""),
            "excludedAttributes": ["members"]
        }))
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["totalResults"], 1);
    assert_eq!(body["Resources"][0]["displayName"], "Engineering");
    assert!(body["Resources"][0].get("members").is_none());

    // Root search: users first, then groups, paged as one list.
    let resp = app
        .scim(&dir, M::POST, "/.search")
        .json(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "startIndex": 4,
            "count": 2
        }))
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["totalResults"], 6);
    let kinds: Vec<&str> = body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["meta"]["resourceType"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["User", "Group"]);

    // A filter on an attribute only groups have finds only groups.
    let resp = app
        .scim(&dir, M::POST, "/.search")
        .json(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": "displayName sw \"Eng\""
        }))
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["totalResults"], 1);

    let resp = app
        .scim(&dir, M::POST, "/Users/.search")
        .json(&json!({ "schemas": ["urn:example:nope"] }))
        .send()
        .await
        .unwrap();
    assert_scim_error(resp, 400, Some("invalidValue")).await;
    let resp = app
        .scim(&dir, M::POST, "/Users/.search")
        .json(&json!({ "filter": "userName xx \"a\"" }))
        .send()
        .await
        .unwrap();
    assert_scim_error(resp, 400, Some("invalidFilter")).await;
}

#[tokio::test]
async fn email_lookups_follow_every_write() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let user = app.create_user(&dir, "ada@example.com").await;
    let id = user["id"].as_str().unwrap();
    let count = |email: &'static str| {
        let app = &app;
        let dir = &dir;
        async move {
            let body: Value = app
                .scim(dir, M::GET, "/Users")
                .query(&[("filter", format!("emails.value eq \"{email}\""))])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["totalResults"].as_i64().unwrap()
        }
    };
    assert_eq!(count("ADA@example.com").await, 1);
    let resp = app
        .scim(&dir, M::PATCH, &format!("/Users/{id}"))
        .json(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{ "op": "replace", "path": "emails",
                             "value": [{ "value": "lovelace@example.com", "primary": true }] }]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(count("ada@example.com").await, 0);
    assert_eq!(count("lovelace@example.com").await, 1);
    let resp = app
        .scim(&dir, M::DELETE, &format!("/Users/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(count("lovelace@example.com").await, 0);
}

#[tokio::test]
async fn date_time_filters_compare_meta_times() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let users = seed(&app, &dir).await;
    let third_created = users[2]["meta"]["created"].as_str().unwrap().to_owned();
    let count = |filter: String| {
        let app = &app;
        let dir = &dir;
        async move {
            let body: Value = app
                .scim(dir, M::GET, "/Users")
                .query(&[("filter", filter)])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["totalResults"].as_i64().unwrap()
        }
    };
    assert_eq!(
        count("meta.created gt \"2000-01-01T00:00:00Z\"".into()).await,
        4
    );
    assert_eq!(
        count("meta.lastModified lt \"2000-01-01T00:00:00Z\"".into()).await,
        0
    );
    assert_eq!(
        count(format!("meta.created ge \"{third_created}\"")).await,
        2
    );
    assert_eq!(
        count(format!("meta.created lt \"{third_created}\"")).await,
        2
    );
}

#[tokio::test]
async fn totals_are_right_on_every_kind_of_page() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    seed(&app, &dir).await;
    for (q, total, items) in [
        ("count=10", 4, 4),
        ("count=4", 4, 4),
        ("count=2", 4, 2),
        ("startIndex=3&count=10", 4, 2),
        ("startIndex=3&count=2", 4, 2),
        ("startIndex=4&count=2", 4, 1),
        ("startIndex=9&count=2", 4, 0),
        ("count=0", 4, 0),
        ("filter=userName%20eq%20%22nobody%22", 0, 0),
        ("filter=userName%20eq%20%22nobody%22&startIndex=5", 0, 0),
        ("filter=title%20pr&startIndex=2&count=1", 3, 1),
    ] {
        let body: Value = app
            .scim(&dir, M::GET, &format!("/Users?{q}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["totalResults"], total, "{q}");
        assert_eq!(body["Resources"].as_array().unwrap().len(), items, "{q}");
    }
}

/// Asserts that each `(startIndex, count)` page of `/{resource}` is exactly
/// that slice of `expected` (userNames or displayNames in creation order)
/// and that `totalResults` is its length.
async fn assert_pages(
    app: &TestApp,
    dir: &TestDirectory,
    resource: &str,
    expected: &[String],
    pages: impl IntoIterator<Item = (usize, usize)>,
    when: &str,
) {
    let attr = if resource == "Users" {
        "userName"
    } else {
        "displayName"
    };
    for (start, count) in pages {
        let body = app
            .get_json(
                dir,
                &format!("/{resource}?startIndex={start}&count={count}"),
            )
            .await;
        let from = (start - 1).min(expected.len());
        let to = (from + count).min(expected.len());
        assert_eq!(
            names(&body, attr),
            expected[from..to],
            "{when}, startIndex={start}"
        );
        assert_eq!(
            body["totalResults"],
            expected.len(),
            "{when}, startIndex={start}"
        );
    }
}

/// Deep pages of a whole directory seek from remembered positions (marks
/// every `TEST_LIST_HOP` rows in tests). Whatever the marks hold, every page
/// must be exactly the slice of the creation order it names, before and
/// after deletions made here or by another replica.
#[tokio::test]
async fn deep_pages_are_exact_slices_of_creation_order() {
    let app = spawn_app().await;
    let dir = app.create_directory("Deep").await;
    let dir_id: uuid::Uuid = dir.id.parse().unwrap();
    app.store.seed_users(dir_id, 0, 120).await.unwrap();
    app.store.seed_groups(dir_id, 30, &[], 0).await.unwrap();
    // Positions are remembered only for rows older than a minute.
    app.db()
        .execute(
            "UPDATE users SET created_at = created_at - 3600000000; \
             UPDATE groups SET created_at = created_at - 3600000000",
        )
        .await;
    let mut expected: Vec<String> = (0..120).map(scimd::store::seed::seeded_user_name).collect();

    // Cold jumps, then the same pages again (now from marks), then a walk.
    let jumps = [(101, 10), (57, 5), (101, 10), (119, 10), (121, 3), (500, 5)];
    assert_pages(&app, &dir, "Users", &expected, jumps, "jumps").await;
    let walk = (1..=120).step_by(9).map(|start| (start, 9));
    assert_pages(&app, &dir, "Users", &expected, walk, "walk").await;

    // A deletion through this server moves every later row up by one.
    let (victim, _) = app
        .store
        .list_users(
            dir_id,
            &scimd::scim::list::ListRequest::all(&scimd::scim::schema::USER_RESOURCE),
            scimd::scim::list::Page {
                start_index: 31,
                count: 1,
            },
            false,
        )
        .await
        .unwrap()
        .1
        .remove(0);
    let resp = app
        .scim(&dir, M::DELETE, &format!("/Users/{}", victim.id))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    expected.remove(30);
    let pages = [(101, 10), (29, 4), (110, 20)];
    assert_pages(&app, &dir, "Users", &expected, pages, "after delete").await;

    // Another replica deleting: the rows go and the epoch moves, with no
    // word to this process.
    app.db()
        .execute(
            "DELETE FROM user_emails WHERE value_ci IN ('seed-2@example.com', 'seed-90@example.com'); \
             DELETE FROM users WHERE user_name IN ('seed-2@example.com', 'seed-90@example.com'); \
             UPDATE directories SET list_epoch = list_epoch + 1",
        )
        .await;
    expected.retain(|n| n != "seed-2@example.com" && n != "seed-90@example.com");
    let pages = [(101, 10), (85, 9), (1, 5), (60, 30)];
    assert_pages(
        &app,
        &dir,
        "Users",
        &expected,
        pages,
        "after replica delete",
    )
    .await;

    // Groups are paged the same way, separately from users.
    let groups: Vec<String> = (0..30).map(|k| format!("seed-group-{k}")).collect();
    let pages = [(21, 5), (9, 3), (21, 5), (29, 5)];
    assert_pages(&app, &dir, "Groups", &groups, pages, "groups").await;
}

/// Clients arriving together at deep pages of a directory nobody has paged
/// yet take turns walking it (the later ones starting from the marks the
/// earlier ones laid); each still gets exactly its slice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_cold_deep_pages_are_exact() {
    let app = std::sync::Arc::new(spawn_app().await);
    let dir = std::sync::Arc::new(app.create_directory("Deep").await);
    let dir_id: uuid::Uuid = dir.id.parse().unwrap();
    app.store.seed_users(dir_id, 0, 150).await.unwrap();
    app.db()
        .execute("UPDATE users SET created_at = created_at - 3600000000")
        .await;
    let expected: Vec<String> = (0..150).map(scimd::store::seed::seeded_user_name).collect();
    let starts = [141, 120, 141, 99, 77, 141, 130, 60];
    let pages: Vec<_> = starts
        .iter()
        .map(|&start| {
            let (app, dir) = (app.clone(), dir.clone());
            tokio::spawn(async move {
                let body = app
                    .get_json(&dir, &format!("/Users?startIndex={start}&count=5"))
                    .await;
                (
                    start,
                    names(&body, "userName"),
                    body["totalResults"].clone(),
                )
            })
        })
        .collect();
    for page in pages {
        let (start, got, total) = page.await.unwrap();
        let from = start - 1;
        let to = (from + 5).min(expected.len());
        assert_eq!(got, expected[from..to], "startIndex={start}");
        assert_eq!(total, 150, "startIndex={start}");
    }
}

/// `userName eq`, the look-up identity providers make before every create,
/// returns the user with its groups, case-insensitively, with or without the
/// schema URN, honouring paging and projection, as any listing page does.
#[tokio::test]
async fn user_name_lookups_return_what_a_listing_would() {
    let app = spawn_app().await;
    let dir = app.create_directory("Lookup").await;
    let users = seed(&app, &dir).await;
    let bob = users[2]["id"].as_str().unwrap();
    app.create_group(&dir, "Zeta", &[bob]).await;
    app.create_group(&dir, "alpha", &[bob]).await;
    let get = |q: &str| {
        let path = format!("/Users?{q}");
        let (app, dir) = (&app, &dir);
        async move { app.get_json(dir, &path).await }
    };
    for filter in [
        "userName%20eq%20%22BOB%40example.com%22",
        "urn%3Aietf%3Aparams%3Ascim%3Aschemas%3Acore%3A2.0%3AUser%3AuserName%20eq%20%22bob%40example.com%22",
    ] {
        let body = get(&format!("filter={filter}")).await;
        assert_eq!(body["totalResults"], 1, "{filter}");
        let user = &body["Resources"][0];
        assert_eq!(user["id"], bob);
        assert_eq!(user["userName"], "bob@example.com");
        assert_eq!(each(&user["groups"], "display"), ["alpha", "Zeta"]);
        assert!(user["meta"]["location"].as_str().unwrap().ends_with(bob));
        // The same user read by id is the same document.
        let by_id = app.get_json(&dir, &format!("/Users/{bob}")).await;
        assert_eq!(user, &by_id);
    }
    let body = get("filter=userName%20eq%20%22bob%40example.com%22&startIndex=2").await;
    assert_eq!(body["totalResults"], 1);
    assert_eq!(body["Resources"].as_array().unwrap().len(), 0);
    let body = get("filter=userName%20eq%20%22bob%40example.com%22&count=0").await;
    assert_eq!(body["totalResults"], 1);
    assert_eq!(body["Resources"].as_array().unwrap().len(), 0);
    let body = get("filter=userName%20eq%20%22bob%40example.com%22&attributes=userName").await;
    assert_eq!(body["Resources"][0]["userName"], "bob@example.com");
    assert!(body["Resources"][0].get("groups").is_none());
    let body = get("filter=userName%20eq%20%22bob%40example.co%22").await;
    assert_eq!(body["totalResults"], 0);

    // Every way a page is read carries each user's groups: a first page, a
    // later page of the whole directory (from a remembered position), and a
    // later filtered page (ids first); excluding `groups` drops them.
    let by_id = app.get_json(&dir, &format!("/Users/{bob}")).await;
    for q in [
        "count=50",
        "startIndex=3&count=1",
        "filter=userName%20pr&startIndex=3&count=1",
    ] {
        let body = get(q).await;
        let listed = body["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["id"] == bob)
            .unwrap_or_else(|| panic!("{q}: bob not on the page"));
        assert_eq!(listed, &by_id, "{q}");
    }
    let body = get("count=50&excludedAttributes=groups").await;
    let resources = body["Resources"].as_array().unwrap();
    assert!(resources.iter().all(|u| u.get("groups").is_none()));
}

/// A user is written around its stored text on the hot path and through a
/// map otherwise (here: values that spell the server's own keys); both give
/// the same document as a listing does.
#[tokio::test]
async fn users_read_the_same_whichever_way_they_are_rendered() {
    let app = spawn_app().await;
    let dir = app.create_directory("Render").await;
    let mut body = user_body("keys@example.com");
    body["title"] = json!("id");
    body["nickName"] = json!("meta");
    let tricky = app.create_user_from(&dir, &body).await;
    let plain = app.create_user(&dir, "plain@example.com").await;
    for user in [&tricky, &plain] {
        let id = user["id"].as_str().unwrap();
        let by_id = app.get_json(&dir, &format!("/Users/{id}")).await;
        let listed = app
            .get_json(&dir, &format!("/Users?filter=id%20eq%20%22{id}%22"))
            .await;
        assert_eq!(by_id, listed["Resources"][0]);
        assert_eq!(&by_id, user);
        assert_eq!(by_id["id"], id);
        assert_eq!(by_id["meta"]["resourceType"], "User");
    }
    // With groups, one named with characters JSON escapes: the text
    // written on the hot path and the map (any projection takes it) agree.
    let plain_id = plain["id"].as_str().unwrap();
    app.create_group(&dir, "Eng \"core\" \\ team\u{7}", &[plain_id])
        .await;
    app.create_group(&dir, "Plain", &[plain_id]).await;
    let hot = app.get_json(&dir, &format!("/Users/{plain_id}")).await;
    let mapped = app
        .get_json(
            &dir,
            &format!("/Users/{plain_id}?excludedAttributes=password"),
        )
        .await;
    assert_eq!(hot, mapped);
    assert_eq!(
        each(&hot["groups"], "display"),
        ["Eng \"core\" \\ team\u{7}", "Plain"]
    );
    assert_eq!(tricky["title"], "id");
    assert_eq!(tricky["nickName"], "meta");
}
