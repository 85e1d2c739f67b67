//! The event feed through the admin API: each type after its change, no
//! event for a change that failed, paging, filters, the long poll,
//! retention, restarts, and, on PostgreSQL, several processes and a
//! transaction that commits after a later one.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_until, spawn_app_with, TestApp, TestDirectory, M};
use crate::sites::{assert_admin_error, default_org};
use crate::sync::{account_of, grant, group, jira, put_settings, run, settings, user};

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// A consumer of the feed that keeps its cursor.
struct Follower {
    cursor: Option<String>,
    seen: Vec<Value>,
}

impl Follower {
    fn new() -> Self {
        Follower {
            cursor: None,
            seen: Vec::new(),
        }
    }

    /// One page (long-polling up to `wait` seconds); its events.
    async fn page(&mut self, app: &TestApp, wait: u64) -> Vec<Value> {
        let mut path = format!("/orgs/default/events?limit=50&wait={wait}");
        if let Some(c) = &self.cursor {
            path += &format!("&after={c}");
        }
        let body = app.ok_json(app.admin(M::GET, &path)).await;
        let events = body["events"].as_array().unwrap().clone();
        let next = body["next"].as_str().unwrap().to_owned();
        if events.is_empty() {
            if let Some(c) = &self.cursor {
                assert_eq!(&next, c, "an empty page keeps the cursor");
            }
        }
        self.cursor = Some(next);
        self.seen.extend(events.iter().cloned());
        events
    }

    /// Reads on until an event satisfies `found` (generous deadline).
    async fn until(&mut self, app: &TestApp, what: &str, found: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        if let Some(e) = self.seen.iter().find(|e| found(e)) {
            return e.clone();
        }
        loop {
            for e in self.page(app, 2).await {
                if found(&e) {
                    return e;
                }
            }
            assert!(
                Instant::now() < deadline,
                "never saw {what}: {:#?}",
                self.types()
            );
        }
    }

    /// The event of `kind` whose data says `pointer` = `value`.
    async fn of(&mut self, app: &TestApp, kind: &str, pointer: &str, value: &str) -> Value {
        self.until(app, &format!("{kind} {pointer}={value}"), |e| {
            e["type"] == kind && e["data"].pointer(pointer).and_then(Value::as_str) == Some(value)
        })
        .await
    }

    fn types(&self) -> Vec<String> {
        self.seen
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Every event once, numbered one after the other.
    fn assert_exactly_once_in_order(&self) {
        let mut ids = HashSet::new();
        for pair in self.seen.windows(2) {
            assert_eq!(
                pair[1]["sequence"].as_i64().unwrap(),
                pair[0]["sequence"].as_i64().unwrap() + 1,
                "{:#?}",
                pair
            );
        }
        for e in &self.seen {
            assert!(
                ids.insert(e["id"].as_str().unwrap().to_owned()),
                "twice: {e}"
            );
        }
    }
}

async fn patch(app: &TestApp, dir: &TestDirectory, path: &str, ops: Value) {
    let resp = app
        .scim(dir, M::PATCH, path)
        .json(&json!({ "schemas": [PATCH_OP], "Operations": ops }))
        .send()
        .await
        .unwrap();
    assert!(
        resp.status().is_success(),
        "PATCH {path}: {}",
        resp.status()
    );
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn each_change_of_a_directory_its_users_and_groups_is_in_the_feed() {
    let app = spawn_app().await;
    let org = default_org(&app).await.to_string();
    let mut feed = Follower::new();
    let dir = app.create_directory("events").await;
    let created = feed
        .of(&app, "directory.created", "/directory/id", &dir.id)
        .await;
    assert_eq!(created["orgId"], org.as_str());
    assert_eq!(created["directoryId"], dir.id.as_str());
    assert_eq!(created["data"]["directory"]["name"], "events");

    let ada = id(&app.create_user(&dir, "ada@example.com").await);
    let e = feed.of(&app, "user.created", "/user/id", &ada).await;
    assert_eq!(e["data"]["user"]["userName"], "ada@example.com");
    assert_eq!(e["directoryId"], dir.id.as_str());
    assert!(e["occurredAt"].as_str().unwrap().ends_with('Z'));

    let user_path = format!("/Users/{ada}");
    patch(
        &app,
        &dir,
        &user_path,
        json!([{"op": "add", "path": "title", "value": "Countess"}]),
    )
    .await;
    let e = feed.of(&app, "user.updated", "/user/id", &ada).await;
    assert_eq!(e["data"]["user"]["title"], "Countess");
    assert_eq!(e["data"]["previousAttributes"], json!({ "title": null }));

    patch(
        &app,
        &dir,
        &user_path,
        json!([{"op": "replace", "path": "active", "value": false}]),
    )
    .await;
    let e = feed.of(&app, "user.deactivated", "/user/id", &ada).await;
    assert_eq!(e["data"]["previousAttributes"]["active"], true);
    patch(
        &app,
        &dir,
        &user_path,
        json!([{"op": "replace", "path": "active", "value": true}]),
    )
    .await;
    feed.of(&app, "user.reactivated", "/user/id", &ada).await;

    let g = group(&app, &dir, "Engineers", &[&ada]).await;
    feed.of(&app, "group.created", "/group/id", &g).await;
    let added = feed.of(&app, "group.members_added", "/groupId", &g).await;
    assert_eq!(added["data"]["members"], json!([ada]));
    let group_path = format!("/Groups/{g}");
    patch(
        &app,
        &dir,
        &group_path,
        json!([{"op": "replace", "path": "displayName", "value": "Engineering"}]),
    )
    .await;
    let e = feed.of(&app, "group.updated", "/group/id", &g).await;
    assert_eq!(e["data"]["group"]["displayName"], "Engineering");
    assert_eq!(
        e["data"]["previousAttributes"],
        json!({ "displayName": "Engineers" })
    );
    patch(
        &app,
        &dir,
        &group_path,
        json!([{"op": "remove", "path": format!("members[value eq \"{ada}\"]")}]),
    )
    .await;
    let removed = feed.of(&app, "group.members_removed", "/groupId", &g).await;
    assert_eq!(removed["data"]["members"], json!([ada]));

    let resp = app.scim(&dir, M::DELETE, &group_path).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    feed.of(&app, "group.deleted", "/group/id", &g).await;
    let resp = app.scim(&dir, M::DELETE, &user_path).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    let e = feed.of(&app, "user.deleted", "/user/id", &ada).await;
    assert_eq!(e["data"]["user"]["userName"], "ada@example.com");

    let dir_path = format!("/orgs/default/directories/{}", dir.id);
    let resp = app
        .admin(M::POST, &format!("{dir_path}/api-key"))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let e = feed
        .of(&app, "directory.key_rotated", "/directory/id", &dir.id)
        .await;
    assert_eq!(e["data"]["previousKeyId"], dir.key_id.as_str());
    let resp = app.admin(M::DELETE, &dir_path).send().await.unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    feed.of(&app, "directory.deleted", "/directory/id", &dir.id)
        .await;

    // In the order the changes were made.
    let order: Vec<String> = feed
        .types()
        .into_iter()
        .filter(|t| !t.starts_with("account.") && !t.starts_with("sync."))
        .collect();
    assert_eq!(
        order,
        [
            "directory.created",
            "user.created",
            "user.updated",
            "user.deactivated",
            "user.reactivated",
            "group.created",
            "group.members_added",
            "group.updated",
            "group.members_removed",
            "group.deleted",
            "user.deleted",
            "directory.key_rotated",
            "directory.deleted",
        ]
    );
    feed.assert_exactly_once_in_order();
}

#[tokio::test]
async fn a_change_that_fails_writes_no_event_and_audit_off_changes_nothing() {
    let app = spawn_app_with(|c| c.audit = false).await;
    let dir = app.create_directory("failures").await;
    let ada = id(&app.create_user(&dir, "ada@example.com").await);
    let resp = app
        .scim(&dir, M::POST, "/Users")
        .json(&crate::helpers::user_body("ADA@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    let resp = app
        .scim(&dir, M::PATCH, &format!("/Users/{ada}"))
        .json(&json!({ "schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "nope", "value": 1}] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = app
        .scim(&dir, M::POST, "/Groups")
        .json(&json!({ "displayName": "G", "members": [{"value": uuid::Uuid::new_v4()}] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let marker = id(&app.create_user(&dir, "marker@example.com").await);
    let mut feed = Follower::new();
    feed.of(&app, "user.created", "/user/id", &marker).await;
    let kinds: Vec<String> = feed
        .types()
        .into_iter()
        .filter(|t| !t.starts_with("account.") && !t.starts_with("sync."))
        .collect();
    assert_eq!(kinds, ["directory.created", "user.created", "user.created"]);
    feed.assert_exactly_once_in_order();
}

#[tokio::test]
async fn members_are_listed_a_thousand_to_an_event() {
    // Its pages are many: no admin rate limit.
    let app = spawn_app_with(|c| c.admin_rate_limit_per_second = 0).await;
    let dir = app.create_directory("big").await;
    // 1,001 users in two Bulk requests.
    let mut ids = Vec::new();
    for part in [0..1000, 1000..1001] {
        let ops: Vec<Value> = part
            .map(|i| {
                json!({
                    "method": "POST", "path": "/Users", "bulkId": format!("u{i}"),
                    "data": crate::helpers::user_body(&format!("u{i}@example.com")),
                })
            })
            .collect();
        let body = app
            .ok_json(app.scim(&dir, M::POST, "/Bulk").json(&json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                "Operations": ops,
            })))
            .await;
        for op in body["Operations"].as_array().unwrap() {
            assert_eq!(op["status"], "201", "{op}");
            let location = op["location"].as_str().unwrap();
            ids.push(location.rsplit('/').next().unwrap().to_owned());
        }
    }
    let members: Vec<&str> = ids.iter().map(String::as_str).collect();
    let g = group(&app, &dir, "Everyone", &members).await;
    let mut feed = Follower::new();
    feed.of(&app, "group.created", "/group/id", &g).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut sizes, mut listed) = (Vec::new(), Vec::new());
    while listed.len() < ids.len() {
        assert!(Instant::now() < deadline, "members never all listed");
        feed.page(&app, 1).await;
        let added: Vec<&Value> = feed
            .seen
            .iter()
            .filter(|e| e["type"] == "group.members_added" && e["data"]["groupId"] == g.as_str())
            .collect();
        sizes = added
            .iter()
            .map(|e| e["data"]["members"].as_array().unwrap().len())
            .collect();
        listed = added
            .iter()
            .flat_map(|e| e["data"]["members"].as_array().unwrap().iter())
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
    }
    assert_eq!(sizes, [1000, 1]);
    let mut expected = ids.clone();
    expected.sort();
    listed.sort();
    assert_eq!(listed, expected);
    feed.assert_exactly_once_in_order();
}

#[tokio::test]
async fn pages_follow_the_cursor_and_filters_narrow_them() {
    let app = spawn_app().await;
    let one = app.create_directory("one").await;
    let two = app.create_directory("two").await;
    let mut users = Vec::new();
    for i in 0..5 {
        users.push(id(&app
            .create_user(&one, &format!("one{i}@example.com"))
            .await));
        app.create_user(&two, &format!("two{i}@example.com")).await;
    }
    g_and_wait(&app, &one, &users).await;
    // Everything, a page of 7 at a time, then pages of 2 give the same.
    let mut all = Follower::new();
    all.until(&app, "the group's members", |e| {
        e["type"] == "group.members_added"
            && e["data"]["members"]
                .as_array()
                .is_some_and(|m| m.len() == 5)
    })
    .await;
    all.page(&app, 0).await;
    all.assert_exactly_once_in_order();
    let mut small = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/orgs/default/events?limit=2".to_owned();
        if let Some(c) = &cursor {
            path += &format!("&after={c}");
        }
        let body = app.ok_json(app.admin(M::GET, &path)).await;
        let events = body["events"].as_array().unwrap();
        assert!(events.len() <= 2);
        let next = body["next"].as_str().unwrap().to_owned();
        if events.is_empty() {
            assert_eq!(Some(&next), cursor.as_ref());
            break;
        }
        small.extend(events.iter().cloned());
        cursor = Some(next);
    }
    assert_eq!(small, all.seen);

    let list = |query: String| {
        let app = &app;
        async move {
            let body = app
                .ok_json(app.admin(M::GET, &format!("/orgs/default/events?limit=1000&{query}")))
                .await;
            body["events"].as_array().unwrap().clone()
        }
    };
    let created = list("types=user.created".into()).await;
    assert_eq!(created.len(), 10);
    assert!(created.iter().all(|e| e["type"] == "user.created"));
    let of_users = list("types=user.*,group.created".into()).await;
    assert_eq!(of_users.len(), 11);
    let of_one = list(format!("directoryId={}&types=user.created", one.id)).await;
    assert_eq!(of_one.len(), 5);
    assert!(of_one.iter().all(|e| e["directoryId"] == one.id.as_str()));
    let after_first = list(format!(
        "after={}",
        encode(all.seen[0]["sequence"].as_i64().unwrap())
    ))
    .await;
    assert_eq!(after_first[..], all.seen[1..]);

    for bad in [
        "limit=0",
        "limit=1001",
        "types=user.nope",
        "types=*",
        "after=not-a-cursor",
        "wait=31",
        "wait=-1",
        "directoryId=nope",
        "colour=blue",
    ] {
        let resp = app
            .admin(M::GET, &format!("/orgs/default/events?{bad}"))
            .send()
            .await
            .unwrap();
        assert_admin_error(resp, 400, "bad_request").await;
    }
    // A cursor beyond the feed is no cursor this feed returned.
    let resp = app
        .admin(
            M::GET,
            &format!("/orgs/default/events?after={}", encode(1_000_000)),
        )
        .send()
        .await
        .unwrap();
    assert_admin_error(resp, 400, "bad_request").await;
    let resp = app
        .admin(M::GET, &format!("/orgs/{}/events", uuid::Uuid::new_v4()))
        .send()
        .await
        .unwrap();
    assert_admin_error(resp, 404, "not_found").await;
}

async fn g_and_wait(app: &TestApp, dir: &TestDirectory, users: &[String]) {
    let members: Vec<&str> = users.iter().map(String::as_str).collect();
    group(app, dir, "All of one", &members).await;
}

/// The cursor the feed gives after `sequence` (opaque to clients; the
/// tests know its form to make one the feed never gave).
fn encode(sequence: i64) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("ev1:{sequence}"))
}

#[tokio::test]
async fn a_long_poll_returns_when_an_event_arrives_and_an_empty_page_when_it_ends() {
    let app = spawn_app().await;
    let dir = app.create_directory("poll").await;
    let mut feed = Follower::new();
    feed.of(&app, "directory.created", "/directory/id", &dir.id)
        .await;
    while !feed.page(&app, 0).await.is_empty() {}
    let cursor = feed.cursor.clone().unwrap();
    // Nothing happens: the wait ends with an empty page and the cursor.
    let body = app
        .ok_json(app.admin(
            M::GET,
            &format!("/orgs/default/events?after={cursor}&wait=1"),
        ))
        .await;
    assert_eq!(body["events"], json!([]));
    assert_eq!(body["next"], cursor.as_str());
    // A change while a poll waits answers it.
    let waiting = {
        let request = app.admin(
            M::GET,
            &format!("/orgs/default/events?after={cursor}&wait=30"),
        );
        tokio::spawn(async move { request.send().await.unwrap().json::<Value>().await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ada = id(&app.create_user(&dir, "ada@example.com").await);
    let body = waiting.await.unwrap();
    let events = body["events"].as_array().unwrap();
    assert!(!events.is_empty(), "{body}");
    let mut feed = Follower {
        cursor: Some(cursor),
        seen: Vec::new(),
    };
    feed.of(&app, "user.created", "/user/id", &ada).await;
    assert_eq!(feed.seen[0], events[0]);
}

#[tokio::test]
async fn a_cursor_survives_a_restart_and_expires_with_retention() {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (app, served) = spawn_app_until(|_| {}, async {
        let _ = stopped.await;
    })
    .await;
    let dir = app.create_directory("restart").await;
    // No sync run of its own may add events behind the test's back.
    crate::sync::scheduled(&app, &dir).await;
    let ada = id(&app.create_user(&dir, "ada@example.com").await);
    let mut feed = Follower::new();
    feed.of(&app, "user.created", "/user/id", &ada).await;
    while !feed.page(&app, 0).await.is_empty() {}
    let before_restart = feed.seen.len();
    stop.send(()).unwrap();
    served.await.unwrap().unwrap();

    let again = app.spawn_on_same_db_with(|_| {}).await;
    let dir_key = TestDirectory {
        id: dir.id.clone(),
        base_url: dir.base_url.replace(&app.address, &again.address),
        api_key: dir.api_key.clone(),
        key_id: dir.key_id.clone(),
    };
    let bob = id(&again.create_user(&dir_key, "bob@example.com").await);
    let e = feed.of(&again, "user.created", "/user/id", &bob).await;
    let after_restart: Vec<&Value> = feed.seen[before_restart..].iter().collect();
    assert!(after_restart.iter().any(|x| x["id"] == e["id"]));
    assert!(
        after_restart
            .iter()
            .all(|x| x["type"] != "user.created" || x["id"] == e["id"]),
        "nothing read before is read again"
    );
    feed.assert_exactly_once_in_order();

    // Retention: everything up to now is pruned; the old cursor has expired,
    // a consumer without one starts after what was pruned.
    let old = encode(feed.seen[0]["sequence"].as_i64().unwrap());
    let pruned = again
        .store
        .prune_events(scimd::time::now_micros() + 1, 1000)
        .await
        .unwrap();
    assert!(pruned as usize >= feed.seen.len());
    let resp = again
        .admin(M::GET, &format!("/orgs/default/events?after={old}"))
        .send()
        .await
        .unwrap();
    assert_admin_error(resp, 400, "expired_cursor").await;
    let body = again
        .ok_json(again.admin(M::GET, "/orgs/default/events"))
        .await;
    assert_eq!(body["events"], json!([]));
    let latest = feed.cursor.clone().unwrap();
    let body = again
        .ok_json(again.admin(M::GET, &format!("/orgs/default/events?after={latest}")))
        .await;
    assert_eq!(body["next"], latest.as_str());
}

#[tokio::test]
async fn sync_runs_access_and_accounts_are_in_the_feed() {
    let app = spawn_app().await;
    let dir = app.create_directory("sync").await;
    let product = jira(&app).await;
    let (ada, account) = user(&app, &dir, "ada@example.com").await;
    let g = group(&app, &dir, "Jira users", &[&ada]).await;
    grant(&app, &product, &g, "user").await;
    put_settings(
        &app,
        &dir,
        &settings("scheduled", json!({"type": "all"}), json!({"type": "all"})),
    )
    .await;
    let finished = run(&app, &dir).await;
    let run_id = finished["id"]
        .as_str()
        .unwrap_or_else(|| finished["runId"].as_str().unwrap());
    let mut feed = Follower::new();
    let started = feed.of(&app, "sync.run_started", "/run/id", run_id).await;
    assert_eq!(started["directoryId"], dir.id.as_str());
    let granted = feed
        .of(&app, "access.granted", "/accountId", &account)
        .await;
    // A run's, or the continuous path's when it got there first.
    assert!(
        granted["data"]["runId"].is_string() || granted["data"]["trigger"] == "continuous",
        "{granted}"
    );
    assert_eq!(granted["data"]["grants"][0]["groupId"], g.as_str());
    assert_eq!(granted["data"]["grants"][0]["productKey"], "jira-software");
    let done = feed.of(&app, "sync.run_finished", "/run/id", run_id).await;
    assert_eq!(done["data"]["run"]["state"], "succeeded");
    assert!(done["data"]["run"]["accessGranted"].is_i64(), "{done}");

    let resp = app
        .admin(
            M::POST,
            &format!("/orgs/default/accounts/{account}/deactivate"),
        )
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let e = feed
        .of(&app, "account.deactivated", "/account/id", &account)
        .await;
    assert_eq!(e["directoryId"], Value::Null);
    assert_eq!(e["data"]["account"]["active"], false);
    let resp = app
        .admin(
            M::POST,
            &format!("/orgs/default/accounts/{account}/reactivate"),
        )
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    feed.of(&app, "account.reactivated", "/account/id", &account)
        .await;

    patch(
        &app,
        &dir,
        &format!("/Groups/{g}"),
        json!([{"op": "remove", "path": "members"}]),
    )
    .await;
    run(&app, &dir).await;
    let revoked = feed
        .of(&app, "access.revoked", "/accountId", &account)
        .await;
    assert_eq!(revoked["data"]["grants"][0]["groupId"], g.as_str());
    let _ = account_of;
    feed.assert_exactly_once_in_order();
}

/// PostgreSQL: two processes write at once while a consumer follows the
/// feed through a third view; and a transaction that took its row before
/// others commits after them. Every event is seen once, in order.
#[tokio::test]
async fn several_processes_and_a_late_commit_lose_nothing() {
    let app = spawn_app().await;
    let Some(replica) = app.spawn_replica().await else {
        return;
    };
    let org = default_org(&app).await;
    let dir = app.create_directory("replicas").await;
    let on_replica = TestDirectory {
        id: dir.id.clone(),
        base_url: dir.base_url.replace(&app.address, &replica.address),
        api_key: dir.api_key.clone(),
        key_id: dir.key_id.clone(),
    };
    let mut feed = Follower::new();
    feed.of(&app, "directory.created", "/directory/id", &dir.id)
        .await;

    // A row inserted as the store's writes insert theirs (no sequence),
    // in a transaction held open while others commit.
    let mut late = app.db().pg_connection().await.unwrap();
    sqlx::query("BEGIN").execute(&mut late).await.unwrap();
    sqlx::query(
        "INSERT INTO events (org_id, directory_id, type, data) \
         VALUES ($1, $2::uuid, 'user.updated', '{\"late\": true}')",
    )
    .bind(org)
    .bind(&dir.id)
    .execute(&mut late)
    .await
    .unwrap();

    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (app, dir) = if w == 0 {
                (&app, &dir)
            } else {
                (&replica, &on_replica)
            };
            async move {
                let mut ids = Vec::new();
                for i in 0..15 {
                    ids.push(id(&app
                        .create_user(dir, &format!("w{w}u{i}@example.com"))
                        .await));
                }
                ids
            }
        })
        .collect();
    let reading = async {
        // The consumer reads while the writers write.
        for _ in 0..10 {
            feed.page(&app, 1).await;
        }
    };
    let (ids, ()) = tokio::join!(futures_util::future::join_all(writers), reading);
    let ids: Vec<String> = ids.into_iter().flatten().collect();
    for user in &ids {
        feed.of(&app, "user.created", "/user/id", user).await;
    }
    let read_before_commit = feed.seen.len();
    sqlx::query("COMMIT").execute(&mut late).await.unwrap();
    let e = feed
        .until(&app, "the late row", |e| e["data"]["late"] == true)
        .await;
    assert!(
        feed.seen.iter().position(|x| x["id"] == e["id"]).unwrap() >= read_before_commit,
        "the late row is read after those committed before it"
    );
    let created: Vec<&Value> = feed
        .seen
        .iter()
        .filter(|e| e["type"] == "user.created")
        .collect();
    assert_eq!(created.len(), ids.len());
    feed.assert_exactly_once_in_order();
    // The replica's consumer sees the same feed.
    let mut other = Follower::new();
    other
        .until(&replica, "the late row", |e| e["data"]["late"] == true)
        .await;
    while !other.page(&replica, 0).await.is_empty() {}
    assert_eq!(other.seen.len(), feed.seen.len());
}
