//! SQLite has one writer; many clients writing at once must still never see
//! "database is locked" or a 500.

use serde_json::json;

use crate::helpers::{assert_scim_error, spawn_app, user_body, M};

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

/// Concurrent PATCHes of one user each add a value; none may be lost (a
/// read-modify-write without a row lock or a version check would drop
/// some), and each leaves exactly one event. Emails are written with the
/// row locked; other attributes are first written only over the version
/// read (PostgreSQL), so the phone numbers make those writes lose races.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_patches_of_one_resource_lose_no_update() {
    let app = std::sync::Arc::new(spawn_app().await);
    let dir = std::sync::Arc::new(app.create_directory("Okta").await);
    for (n, attribute) in ["emails", "phoneNumbers"].into_iter().enumerate() {
        let user_name = format!("user{n}@example.com");
        let user = app.create_user(&dir, &user_name).await;
        let id = user["id"].as_str().unwrap().to_owned();
        let before = user[attribute].as_array().map_or(0, Vec::len);
        let mut tasks = Vec::new();
        for i in 0..16 {
            let (app, dir, id) = (app.clone(), dir.clone(), id.clone());
            let value = match attribute {
                "emails" => format!("alias{i}@example.com"),
                _ => format!("+1 555 01{i:02}"),
            };
            tasks.push(tokio::spawn(async move {
                app.scim(&dir, M::PATCH, &format!("/Users/{id}"))
                    .json(&json!({
                        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                        "Operations": [{ "op": "add", "path": attribute,
                                         "value": [{ "value": value, "type": "other" }] }]
                    }))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), 200, "{attribute}");
        }
        let after = app.get_json(&dir, &format!("/Users/{id}")).await;
        assert_eq!(
            after[attribute].as_array().unwrap().len(),
            before + 16,
            "{attribute}"
        );
        assert_eq!(after["meta"]["version"], "W/\"17\"", "{attribute}");
        let report = format!(
            "/orgs/default/reports/provisioning?user={user_name}&action=user.updated&limit=100"
        );
        let events = app.ok_json(app.admin(M::GET, &report)).await;
        assert_eq!(
            events["events"].as_array().unwrap().len(),
            16,
            "{attribute}"
        );
    }
}

/// Creations arriving together are written together; one that fails among
/// them (a taken userName) must fail alone, leaving the others whole (each
/// created user's email is searchable, each has one `user.created` event)
/// and no trace of itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conflicting_writes_among_concurrent_ones_fail_alone() {
    let app = std::sync::Arc::new(spawn_app().await);
    let dir = std::sync::Arc::new(app.create_directory("Okta").await);
    let mut tasks = Vec::new();
    // Two clients send each userName: one of each pair must get 409.
    for client in 0..32 {
        let (app, dir) = (app.clone(), dir.clone());
        tasks.push(tokio::spawn(async move {
            let name = format!("pair{}@example.com", client / 2);
            let mut body = user_body(&name);
            body["emails"] =
                json!([{ "value": format!("mail{client}@example.com"), "primary": true }]);
            let resp = app
                .scim(&dir, M::POST, "/Users")
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let body: serde_json::Value = resp.json().await.unwrap();
            (client, status, body["id"].as_str().map(str::to_owned))
        }));
    }
    let mut created = Vec::new();
    let mut refused = Vec::new();
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        match t.await.unwrap() {
            (client, 201, Some(id)) => {
                created.push(client);
                ids.insert(id);
            }
            (client, 409, None) => refused.push(client),
            (client, status, _) => panic!("client {client}: status {status}"),
        }
    }
    assert_eq!(created.len(), 16);
    assert_eq!(refused.len(), 16);
    for pair in 0..16 {
        assert!(created.contains(&(2 * pair)) != created.contains(&(2 * pair + 1)));
    }
    let all = app.get_json(&dir, "/Users?count=100").await;
    assert_eq!(all["totalResults"], 16);
    let expected = created
        .iter()
        .map(|c| (c, 1))
        .chain(refused.iter().map(|c| (c, 0)));
    for (client, users) in expected {
        let found = app
            .get_json(
                &dir,
                &format!("/Users?filter=emails.value%20eq%20%22mail{client}@example.com%22"),
            )
            .await;
        assert_eq!(found["totalResults"], users, "client {client}");
    }
    let report = format!(
        "/orgs/default/reports/provisioning?directory={}&action=user.created&limit=100",
        dir.id
    );
    let events = app.ok_json(app.admin(M::GET, &report)).await;
    let logged: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["outcome"] == "success")
        .map(|e| e["targetId"].as_str().unwrap())
        .collect();
    assert_eq!(logged.len(), 16, "{logged:?}");
    assert!(logged.iter().all(|id| ids.contains(*id)), "{logged:?}");
}

/// Terminates every PostgreSQL connection of the test server (the schema
/// is part of their `application_name`); returns how many there were.
async fn terminate_backends(admin: &mut sqlx::PgConnection, schema: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(format!("scimd/{schema}"))
    .fetch_one(admin)
    .await
    .unwrap()
}

/// When PostgreSQL drops the server's connections (a restart, a failover),
/// a request that meets a dropped connection is answered 503 with
/// `Retry-After`, never 500, and the server recovers by itself: each
/// dropped connection fails at most one request.
#[tokio::test]
async fn dropped_database_connections_answer_503_and_recover() {
    let app = spawn_app().await;
    let Some(mut admin) = app.db().pg_connection().await else {
        return; // SQLite connections live in the process and cannot drop
    };
    let dir = app.create_directory("Okta").await;
    app.create_user(&dir, "ada@example.com").await;
    // A list: every one reads the database (a user by id may be answered
    // from memory).
    let path = "/Users?count=5";
    // Open several connections, so several are dropped.
    let reads: Vec<_> = (0..6)
        .map(|_| app.scim(&dir, M::GET, path).send())
        .collect();
    for resp in futures_util::future::join_all(reads).await {
        assert_eq!(resp.unwrap().status(), 200);
    }
    let schema = app.db().pg_schema().unwrap().to_owned();
    let dropped = terminate_backends(&mut admin, &schema).await;
    assert!(dropped > 0);
    let mut failed = 0;
    for _ in 0..(dropped + 3) {
        let resp = app.scim(&dir, M::GET, path).send().await.unwrap();
        match resp.status().as_u16() {
            200 => {}
            503 => {
                assert_eq!(resp.headers()["retry-after"], "1");
                failed += 1;
            }
            other => panic!("status {other}"),
        }
    }
    assert!(
        failed <= dropped,
        "{failed} failures for {dropped} connections"
    );
    for _ in 0..5 {
        let resp = app.scim(&dir, M::GET, path).send().await.unwrap();
        assert_eq!(resp.status(), 200);
    }

    // The readiness probe alone must also recover: a probe that fails
    // marks the connection it used as doubtful, so it is not handed out
    // again untested.
    let dropped = terminate_backends(&mut admin, &schema).await;
    assert!(dropped > 0);
    let client = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..(dropped + 2) {
        let resp = client
            .get(format!("{}/readyz", app.address))
            .send()
            .await
            .unwrap();
        if resp.status() == 200 {
            ready = true;
            break;
        }
    }
    assert!(ready, "/readyz never recovered");
}

/// Look-ups made at the same time share statements (one at a time in
/// tests); each client must still get exactly its own answer: its user by
/// id or by userName in any case, 404 for a user of another directory or
/// none, an empty list for another directory's userName, and no groups
/// when it excludes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_lookups_each_get_their_own_answer() {
    let app = std::sync::Arc::new(spawn_app().await);
    let mut dirs = Vec::new();
    for name in ["Okta", "Entra"] {
        let dir = std::sync::Arc::new(app.create_directory(name).await);
        let mut ids = Vec::new();
        for i in 0..12 {
            let user = app
                .create_user(&dir, &format!("{name}-{i}@example.com"))
                .await;
            ids.push(user["id"].as_str().unwrap().to_owned());
        }
        app.create_group(&dir, &format!("{name} staff"), &[&ids[0], &ids[1]])
            .await;
        dirs.push((name, dir, ids));
    }
    let mut tasks = Vec::new();
    for round in 0..4 {
        for (d, (name, dir, ids)) in dirs.iter().enumerate() {
            let (_, _, other_ids) = &dirs[1 - d];
            for i in 0..12 {
                let (app, dir, name) = (app.clone(), dir.clone(), name.to_string());
                let (id, other_id) = (ids[i].clone(), other_ids[i].clone());
                let other_name = dirs[1 - d].0.to_owned();
                tasks.push(tokio::spawn(async move {
                    match (round + i) % 4 {
                        0 => {
                            let user = app.get_json(&dir, &format!("/Users/{id}")).await;
                            assert_eq!(user["id"], id.as_str());
                            assert_eq!(user["userName"], format!("{name}-{i}@example.com"));
                            let groups = user["groups"].as_array().map_or(0, Vec::len);
                            assert_eq!(groups, usize::from(i < 2), "{name}-{i}");
                        }
                        1 => {
                            for missing in [other_id, uuid::Uuid::new_v4().to_string()] {
                                let resp = app
                                    .scim(&dir, M::GET, &format!("/Users/{missing}"))
                                    .send()
                                    .await
                                    .unwrap();
                                assert_scim_error(resp, 404, None).await;
                            }
                        }
                        2 => {
                            let wanted = format!("{}-{i}@EXAMPLE.com", name.to_uppercase());
                            let list = app
                                .get_json(&dir, &format!("/Users?filter=userName eq \"{wanted}\""))
                                .await;
                            assert_eq!(list["totalResults"], 1, "{wanted}");
                            let user = &list["Resources"][0];
                            assert_eq!(user["id"], id.as_str());
                            let groups = user["groups"].as_array().map_or(0, Vec::len);
                            assert_eq!(groups, usize::from(i < 2), "{wanted}");
                        }
                        _ => {
                            let theirs = format!("{other_name}-{i}@example.com");
                            let list = app
                                .get_json(&dir, &format!("/Users?filter=userName eq \"{theirs}\""))
                                .await;
                            assert_eq!(list["totalResults"], 0, "{theirs}");
                            let mine = format!("{name}-{i}@example.com");
                            let list = app
                                .get_json(
                                    &dir,
                                    &format!(
                                        "/Users?filter=userName eq \"{mine}\"\
                                         &excludedAttributes=groups"
                                    ),
                                )
                                .await;
                            assert_eq!(list["totalResults"], 1, "{mine}");
                            assert!(list["Resources"][0].get("groups").is_none());
                        }
                    }
                }));
            }
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
}
