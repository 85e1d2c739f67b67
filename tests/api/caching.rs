//! Users read by id or by `userName eq` are kept in memory: every later
//! read must still show every write made before it, whichever resource the
//! write was on, and on PostgreSQL whichever server made it.

use std::time::{Duration, Instant};

use reqwest::Method as M;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp, TestDirectory};

fn patch(ops: Value) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": ops,
    })
}

/// The user as `GET /Users/{id}` and as a `userName eq` filter (with and
/// without groups) return it; the three must agree.
async fn read_both_ways(app: &TestApp, dir: &TestDirectory, id: &str, user_name: &str) -> Value {
    let by_id = app.get_json(dir, &format!("/Users/{id}")).await;
    let filter = format!("userName eq \"{user_name}\"");
    let list = app
        .ok_json(
            app.scim(dir, M::GET, "/Users")
                .query(&[("filter", &filter)]),
        )
        .await;
    assert_eq!(list["totalResults"], 1, "{filter}");
    assert_eq!(list["Resources"][0], by_id, "{filter}");
    let bare = app
        .ok_json(app.scim(dir, M::GET, "/Users").query(&[
            ("filter", filter.as_str()),
            ("excludedAttributes", "groups"),
        ]))
        .await;
    assert!(bare["Resources"][0].get("groups").is_none());
    assert_eq!(bare["Resources"][0]["meta"], by_id["meta"]);
    by_id
}

fn group_names(user: &Value) -> Vec<String> {
    let mut names: Vec<String> = user["groups"]
        .as_array()
        .map(|groups| {
            groups
                .iter()
                .map(|g| g["display"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

async fn send_ok(request: reqwest::RequestBuilder) {
    let resp = request.send().await.expect("request");
    assert!(resp.status().is_success(), "{}", resp.status());
}

#[tokio::test]
async fn a_user_read_again_shows_every_write_made_since() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let user = app.create_user(&dir, "ada@example.com").await;
    let id = user["id"].as_str().unwrap().to_owned();
    let path = format!("/Users/{id}");
    // Read twice: the second read may come from memory.
    read_both_ways(&app, &dir, &id, "ada@example.com").await;
    read_both_ways(&app, &dir, &id, "ada@example.com").await;

    // The user's own PATCH and PUT.
    send_ok(app.scim(&dir, M::PATCH, &path).json(&patch(
        json!([{ "op": "replace", "path": "title", "value": "Countess" }]),
    )))
    .await;
    let read = read_both_ways(&app, &dir, &id, "ada@example.com").await;
    assert_eq!(read["title"], "Countess");
    let mut body = crate::helpers::user_body("ada@example.com");
    body["displayName"] = json!("Augusta Ada King");
    send_ok(app.scim(&dir, M::PUT, &path).json(&body)).await;
    let read = read_both_ways(&app, &dir, &id, "ada@example.com").await;
    assert_eq!(read["displayName"], "Augusta Ada King");
    assert!(read.get("title").is_none(), "PUT replaced the whole user");

    // Groups: created with the user, joined, renamed, left, deleted.
    let staff = app.create_group(&dir, "Staff", &[&id]).await;
    let staff_path = format!("/Groups/{}", staff["id"].as_str().unwrap());
    assert_eq!(
        group_names(&read_both_ways(&app, &dir, &id, "ada@example.com").await),
        ["Staff"]
    );
    let admins = app.create_group(&dir, "Admins", &[]).await;
    let admins_path = format!("/Groups/{}", admins["id"].as_str().unwrap());
    read_both_ways(&app, &dir, &id, "ada@example.com").await;
    send_ok(app.scim(&dir, M::PATCH, &admins_path).json(&patch(
        json!([{ "op": "add", "path": "members", "value": [{ "value": id }] }]),
    )))
    .await;
    assert_eq!(
        group_names(&read_both_ways(&app, &dir, &id, "ada@example.com").await),
        ["Admins", "Staff"]
    );
    send_ok(app.scim(&dir, M::PATCH, &staff_path).json(&patch(
        json!([{ "op": "replace", "path": "displayName", "value": "Engineers" }]),
    )))
    .await;
    assert_eq!(
        group_names(&read_both_ways(&app, &dir, &id, "ada@example.com").await),
        ["Admins", "Engineers"]
    );
    send_ok(app.scim(&dir, M::PUT, &admins_path).json(&json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "Admins",
        "members": [],
    })))
    .await;
    assert_eq!(
        group_names(&read_both_ways(&app, &dir, &id, "ada@example.com").await),
        ["Engineers"]
    );
    send_ok(app.scim(&dir, M::DELETE, &staff_path)).await;
    assert!(group_names(&read_both_ways(&app, &dir, &id, "ada@example.com").await).is_empty());

    // Renamed: not found by the old name, even once another user takes it.
    send_ok(app.scim(&dir, M::PATCH, &path).json(&patch(
        json!([{ "op": "replace", "path": "userName", "value": "augusta@example.com" }]),
    )))
    .await;
    read_both_ways(&app, &dir, &id, "augusta@example.com").await;
    let old = app
        .ok_json(
            app.scim(&dir, M::GET, "/Users")
                .query(&[("filter", "userName eq \"ada@example.com\"")]),
        )
        .await;
    assert_eq!(old["totalResults"], 0);
    let newcomer = app.create_user(&dir, "ada@example.com").await;
    let newcomer_id = newcomer["id"].as_str().unwrap();
    let read = read_both_ways(&app, &dir, newcomer_id, "ada@example.com").await;
    assert_eq!(read["id"], newcomer_id);

    // Deleted: gone by id and by name.
    send_ok(app.scim(&dir, M::DELETE, &path)).await;
    let resp = app.scim(&dir, M::GET, &path).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let gone = app
        .ok_json(
            app.scim(&dir, M::GET, "/Users")
                .query(&[("filter", "userName eq \"augusta@example.com\"")]),
        )
        .await;
    assert_eq!(gone["totalResults"], 0);
}

/// Writes through `POST /Bulk` go through the same store, and end what
/// they touched the same way.
#[tokio::test]
async fn bulk_writes_are_seen_by_later_reads() {
    let app = spawn_app().await;
    let dir = app.create_directory("Entra").await;
    let user = app.create_user(&dir, "grace@example.com").await;
    let id = user["id"].as_str().unwrap().to_owned();
    read_both_ways(&app, &dir, &id, "grace@example.com").await;
    let resp = app
        .scim(&dir, M::POST, "/Bulk")
        .json(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "Operations": [
                {
                    "method": "PATCH",
                    "path": format!("/Users/{id}"),
                    "data": patch(json!([{ "op": "replace", "path": "title", "value": "Rear Admiral" }])),
                },
                {
                    "method": "POST",
                    "path": "/Groups",
                    "bulkId": "g",
                    "data": {
                        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                        "displayName": "Navy",
                        "members": [{ "value": id }],
                    },
                },
            ],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let read = read_both_ways(&app, &dir, &id, "grace@example.com").await;
    assert_eq!(read["title"], "Rear Admiral");
    assert_eq!(group_names(&read), ["Navy"]);
}

/// Deleting a directory deletes its users: its key stops working, and a
/// directory made afterwards does not see them.
#[tokio::test]
async fn a_deleted_directorys_users_are_not_served() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let user = app.create_user(&dir, "ada@example.com").await;
    let id = user["id"].as_str().unwrap().to_owned();
    read_both_ways(&app, &dir, &id, "ada@example.com").await;
    let resp = app
        .admin(M::DELETE, &format!("/orgs/default/directories/{}", dir.id))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let resp = app
        .scim(&dir, M::GET, &format!("/Users/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let other = app.create_directory("Entra").await;
    let resp = app
        .scim(&other, M::GET, &format!("/Users/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

/// On PostgreSQL, servers A and B on one database, a directory made on A
/// (and the same reached through B), and its user `ada@example.com`.
async fn two_servers_and_a_user() -> Option<(TestApp, TestApp, TestDirectory, TestDirectory, String)>
{
    let a = spawn_app().await;
    let b = a.spawn_replica().await?;
    let dir = a.create_directory("Okta").await;
    let on_b = through(&b, &a, &dir);
    let user = a.create_user(&dir, "ada@example.com").await;
    let id = user["id"].as_str().unwrap().to_owned();
    Some((a, b, dir, on_b, id))
}

/// `dir`, made on server `a`, as reached through server `b`.
fn through(b: &TestApp, a: &TestApp, dir: &TestDirectory) -> TestDirectory {
    let on_b = TestDirectory {
        base_url: dir.base_url.replace(&a.address, &b.address),
        id: dir.id.clone(),
        api_key: dir.api_key.clone(),
        key_id: dir.key_id.clone(),
    };
    assert_ne!(on_b.base_url, dir.base_url);
    on_b
}

/// Reads `path` on `app` until `done` holds for the body, for up to five
/// seconds (another server hears of a change by notification, a moment
/// after its commit).
async fn eventually(app: &TestApp, dir: &TestDirectory, path: &str, done: impl Fn(&Value) -> bool) {
    within(Duration::from_secs(5), app, dir, path, done).await
}

async fn within(
    limit: Duration,
    app: &TestApp,
    dir: &TestDirectory,
    path: &str,
    done: impl Fn(&Value) -> bool,
) {
    let start = Instant::now();
    loop {
        let body = app.get_json(dir, path).await;
        if done(&body) {
            return;
        }
        assert!(start.elapsed() < limit, "{path} still reads {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Two servers on one PostgreSQL database, as replicas behind a load
/// balancer: what one writes, the other stops serving from memory.
#[tokio::test]
async fn another_servers_writes_reach_this_ones_reads() {
    let Some((a, b, dir, on_b, id)) = two_servers_and_a_user().await else {
        return; // SQLite: one server per database file
    };
    let path = format!("/Users/{id}");
    let by_name = "/Users?filter=userName%20eq%20%22ada%40example.com%22";
    // B's feed must be listening before B keeps anything; give it a moment,
    // then read on B so that it keeps the user.
    tokio::time::sleep(Duration::from_millis(200)).await;
    read_both_ways(&b, &on_b, &id, "ada@example.com").await;
    read_both_ways(&b, &on_b, &id, "ada@example.com").await;

    send_ok(a.scim(&dir, M::PATCH, &path).json(&patch(
        json!([{ "op": "replace", "path": "title", "value": "Countess" }]),
    )))
    .await;
    eventually(&b, &on_b, &path, |u| u["title"] == "Countess").await;
    eventually(&b, &on_b, by_name, |l| {
        l["Resources"][0]["title"] == "Countess"
    })
    .await;

    let group = a.create_group(&dir, "Staff", &[&id]).await;
    eventually(&b, &on_b, &path, |u| group_names(u) == ["Staff"]).await;
    send_ok(
        a.scim(
            &dir,
            M::PATCH,
            &format!("/Groups/{}", group["id"].as_str().unwrap()),
        )
        .json(&patch(json!([
            { "op": "replace", "path": "displayName", "value": "Engineers" }
        ]))),
    )
    .await;
    eventually(&b, &on_b, &path, |u| group_names(u) == ["Engineers"]).await;

    // B's feed is cut (a restart of PostgreSQL, a failover): changes made
    // while it reconnects are unheard, so B must not serve what it held.
    read_both_ways(&b, &on_b, &id, "ada@example.com").await;
    let mut admin = a.db().pg_connection().await.expect("postgres");
    let schema = a.db().pg_schema().unwrap().to_owned();
    let cut: i64 = sqlx::query_scalar(
        "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE application_name = $1",
    )
    .bind(format!("scimd/{schema}/changes"))
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(cut, 2, "each server listens on one connection");
    // Once the backends are gone, no notice reaches B until it listens
    // again, at least a second after it noticed.
    let start = Instant::now();
    loop {
        let left: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = $1")
                .bind(format!("scimd/{schema}/changes"))
                .fetch_one(&mut admin)
                .await
                .unwrap();
        if left == 0 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "backends linger");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    send_ok(a.scim(&dir, M::PATCH, &path).json(&patch(
        json!([{ "op": "replace", "path": "title", "value": "Analyst" }]),
    )))
    .await;
    // Not heard, so B must read it from the database: well before it
    // could have reconnected.
    within(Duration::from_millis(500), &b, &on_b, &path, |u| {
        u["title"] == "Analyst"
    })
    .await;
    // And once it listens again, it hears changes again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    read_both_ways(&b, &on_b, &id, "ada@example.com").await;
    send_ok(a.scim(&dir, M::DELETE, &path)).await;
    let start = Instant::now();
    loop {
        let status = b.scim(&on_b, M::GET, &path).send().await.unwrap().status();
        if status == 404 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "still {status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A write checks `If-Match` against the stored version, not against what
/// this server holds in memory: another server's change may not have
/// reached it yet. Here B never hears of A's change at all (its notice is
/// switched off), and B's PATCH with A's new version still succeeds.
#[tokio::test]
async fn a_write_checks_the_stored_version_not_the_one_in_memory() {
    let Some((a, b, dir, on_b, id)) = two_servers_and_a_user().await else {
        return; // SQLite: one server per database file
    };
    let path = format!("/Users/{id}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    b.get_json(&on_b, &path).await;
    b.get_json(&on_b, &path).await;

    a.db()
        .execute("ALTER TABLE users DISABLE TRIGGER users_announce_updates")
        .await;
    let resp = a
        .scim(&dir, M::PATCH, &path)
        .json(&patch(
            json!([{ "op": "replace", "path": "title", "value": "Countess" }]),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let version = resp.headers()["etag"].to_str().unwrap().to_owned();
    a.db()
        .execute("ALTER TABLE users ENABLE TRIGGER users_announce_updates")
        .await;

    let resp = b
        .scim(&on_b, M::PATCH, &path)
        .header("If-Match", &version)
        .json(&patch(
            json!([{ "op": "replace", "path": "nickName", "value": "Ada" }]),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let patched: Value = resp.json().await.unwrap();
    assert_eq!(patched["title"], "Countess", "built on the stored user");
    assert_eq!(patched["nickName"], "Ada");
    // And B's own write ended what it held.
    let read = b.get_json(&on_b, &path).await;
    assert_eq!(read["title"], "Countess");
}
