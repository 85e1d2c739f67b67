//! The audit log and provisioning reports: one event per committed change
//! and none for a rolled-back one, failures with what the client was told,
//! filters, cursor pages under concurrent writes, CSV, daily counters and
//! retention.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, user_body, TestApp, TestDirectory, M};

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const DAY: i64 = 86_400_000_000;

fn patch(ops: Value) -> Value {
    json!({ "schemas": [PATCH_OP], "Operations": ops })
}

async fn report(app: &TestApp, query: &str) -> Value {
    let resp = app
        .admin(
            M::GET,
            &format!("/orgs/default/reports/provisioning?{query}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "report {query}");
    resp.json().await.unwrap()
}

/// Every event matching `query`, newest first, following the cursor.
async fn all_events(app: &TestApp, query: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("{query}&limit=1000&cursor={c}"),
            None => format!("{query}&limit=1000"),
        };
        let page = report(app, &q).await;
        events.extend(page["events"].as_array().unwrap().iter().cloned());
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return events,
        }
    }
}

fn actions(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect()
}

fn one<'a>(events: &'a [Value], action: &str) -> &'a Value {
    let found: Vec<&Value> = events.iter().filter(|e| e["action"] == action).collect();
    assert_eq!(found.len(), 1, "one {action} in {events:#?}");
    found[0]
}

async fn send(app: &TestApp, dir: &TestDirectory, method: M, path: &str, body: Value) -> u16 {
    app.scim(dir, method, path)
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn every_committed_write_has_exactly_one_event_naming_what_changed() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let resp = app
        .scim(&dir, M::POST, "/Users")
        .json(&json!({
            "userName": "ada@example.com",
            "externalId": "ext-ada",
            "emails": [{ "value": "Ada@Example.com", "primary": true }],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    let ada: Value = resp.json().await.unwrap();
    let uid = ada["id"].as_str().unwrap().to_owned();
    let user_path = format!("/Users/{uid}");

    let deactivate = patch(json!([{ "op": "replace", "path": "active", "value": false }]));
    assert_eq!(
        send(&app, &dir, M::PATCH, &user_path, deactivate).await,
        200
    );
    let reactivate =
        patch(json!([{ "op": "replace", "value": { "active": true, "title": "Countess" } }]));
    assert_eq!(
        send(&app, &dir, M::PATCH, &user_path, reactivate).await,
        200
    );
    let put = json!({
        "userName": "ada@example.com", "externalId": "ext-ada", "title": "Countess",
        "displayName": "Ada L", "emails": [{ "value": "Ada@Example.com", "primary": true }],
    });
    assert_eq!(send(&app, &dir, M::PUT, &user_path, put).await, 200);

    let bob = app.create_user(&dir, "bob@example.com").await;
    let bob_id = bob["id"].as_str().unwrap();
    let group = app.create_group(&dir, "Engineering", &[&uid]).await;
    let group_path = format!("/Groups/{}", group["id"].as_str().unwrap());
    let rename_and_add = patch(json!([
        { "op": "replace", "path": "displayName", "value": "Eng" },
        { "op": "add", "path": "members", "value": [{ "value": bob_id }] },
    ]));
    assert_eq!(
        send(&app, &dir, M::PATCH, &group_path, rename_and_add).await,
        204
    );
    let remove = patch(json!([
        { "op": "remove", "path": format!("members[value eq \"{uid}\"]") }
    ]));
    assert_eq!(send(&app, &dir, M::PATCH, &group_path, remove).await, 204);
    assert_eq!(
        send(&app, &dir, M::DELETE, &user_path, Value::Null).await,
        204
    );
    assert_eq!(
        send(&app, &dir, M::DELETE, &group_path, Value::Null).await,
        204
    );

    let events = all_events(&app, &format!("directory={}", dir.id)).await;
    let mut in_order = actions(&events);
    in_order.reverse();
    assert_eq!(
        in_order,
        [
            "directory.created",
            "user.created",
            "user.deactivated",
            "user.reactivated",
            "user.updated",
            "user.created",
            "group.created",
            // One PATCH that renames and adds: one event per fact.
            "group.updated",
            "group.members_added",
            "group.members_removed",
            "user.deleted",
            "group.deleted",
        ]
    );
    let ids: HashSet<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), events.len(), "event ids are unique");
    assert!(events.iter().all(|e| e["outcome"] == "success"));

    let created = &events[events.len() - 2];
    assert_eq!(created["action"], "user.created");
    assert_eq!(created["targetType"], "user");
    assert_eq!(created["targetId"], uid.as_str());
    assert_eq!(created["targetIdentifier"], "ada@example.com");
    assert_eq!(created["directoryId"], dir.id.as_str());
    assert_eq!(created["actorType"], "api_key");
    assert_eq!(created["actorId"], dir.key_id.as_str());
    assert_eq!(created["sourceIp"], "127.0.0.1");
    assert_eq!(created["requestId"], request_id.as_str());
    assert_eq!(created["changedAttributes"], json!([]));
    assert!(created["status"].is_null() && created["detail"].is_null());

    assert_eq!(
        one(&events, "user.deactivated")["changedAttributes"],
        json!(["active"])
    );
    assert_eq!(
        one(&events, "user.reactivated")["changedAttributes"],
        json!(["active", "title"])
    );
    assert_eq!(
        one(&events, "user.updated")["changedAttributes"],
        json!(["displayName"])
    );
    assert_eq!(one(&events, "group.created")["membersAdded"], 1);
    let renamed = one(&events, "group.updated");
    assert_eq!(renamed["changedAttributes"], json!(["displayName"]));
    assert_eq!(renamed["targetIdentifier"], "Eng");
    let added = one(&events, "group.members_added");
    assert_eq!(added["membersAdded"], 1);
    assert_eq!(added["requestId"], renamed["requestId"]);
    assert_eq!(one(&events, "group.members_removed")["membersRemoved"], 1);
    assert_eq!(
        one(&events, "user.deleted")["targetIdentifier"],
        "ada@example.com"
    );
    let dir_created = one(&events, "directory.created");
    assert_eq!(dir_created["actorType"], "admin_token");
    assert_eq!(dir_created["actorId"], "env");
    assert_eq!(dir_created["targetIdentifier"], "Okta");
}

#[tokio::test]
async fn replacing_members_counts_what_changed_and_bulk_records_each_operation() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let mut ids = Vec::new();
    for i in 0..4 {
        let u = app.create_user(&dir, &format!("u{i}@example.com")).await;
        ids.push(u["id"].as_str().unwrap().to_owned());
    }
    let group = app
        .create_group(&dir, "Team", &[&ids[0], &ids[1], &ids[2]])
        .await;
    let gid = group["id"].as_str().unwrap();
    // PUT keeps u1 and u2, drops u0, adds u3.
    let put = json!({
        "displayName": "Team",
        "members": [{ "value": ids[1] }, { "value": ids[2] }, { "value": ids[3] }],
    });
    assert_eq!(
        send(&app, &dir, M::PUT, &format!("/Groups/{gid}"), put).await,
        200
    );
    let events = all_events(
        &app,
        "action=group.members_added,group.members_removed,group.updated",
    )
    .await;
    assert_eq!(
        actions(&events),
        ["group.members_removed", "group.members_added"]
    );
    assert_eq!(events[0]["membersRemoved"], 1);
    assert_eq!(events[1]["membersAdded"], 1);

    let resp = app
        .scim(&dir, M::POST, "/Bulk")
        .json(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "Operations": [
                { "method": "POST", "path": "/Users", "bulkId": "a",
                  "data": { "userName": "bulk@example.com" } },
                { "method": "POST", "path": "/Users", "bulkId": "b",
                  "data": { "userName": "u0@example.com" } },
                { "method": "PATCH", "path": format!("/Users/{}", ids[3]),
                  "data": patch(json!([{ "op": "replace", "path": "active", "value": false }])) },
            ]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    let events: Vec<Value> = all_events(&app, "")
        .await
        .into_iter()
        .filter(|e| e["requestId"] == request_id.as_str())
        .collect();
    let mut got: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
                e["targetIdentifier"].as_str().unwrap(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("user.created", "failure", "u0@example.com"),
            ("user.created", "success", "bulk@example.com"),
            ("user.deactivated", "success", "u3@example.com"),
        ]
    );
}

/// Makes the event of some changes impossible to write, to show that the
/// change then does not happen either: event and change share one
/// transaction.
async fn refuse_events(app: &TestApp) {
    let condition = "NEW.outcome = 'success' AND (lower(NEW.target_identifier) LIKE 'boom%' \
                     OR (NEW.action = 'user.deleted' AND NEW.target_identifier = 'keep@example.com'))";
    let sql = if app.db().is_postgres() {
        format!(
            "CREATE FUNCTION refuse_event() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'event refused'; END $$; \
             CREATE TRIGGER refuse_event BEFORE INSERT ON audit_events FOR EACH ROW \
             WHEN ({condition}) EXECUTE FUNCTION refuse_event();"
        )
    } else {
        format!(
            "CREATE TRIGGER refuse_event BEFORE INSERT ON audit_events WHEN {condition} \
             BEGIN SELECT RAISE(ABORT, 'event refused'); END;"
        )
    };
    app.db().execute(&sql).await;
}

#[tokio::test]
async fn a_change_whose_event_cannot_be_written_is_rolled_back() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let ok = app.create_user(&dir, "ok@example.com").await;
    let keep = app.create_user(&dir, "keep@example.com").await;
    let team = app.create_group(&dir, "Team", &[]).await;
    refuse_events(&app).await;

    // A create: no user, no success event, one failure event.
    let resp = app
        .scim(&dir, M::POST, "/Users")
        .json(&user_body("boom@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);
    let found: Value = app
        .scim(
            &dir,
            M::GET,
            "/Users?filter=userName eq \"boom@example.com\"",
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["totalResults"], 0);

    // An update: the user keeps its name and version.
    let rename =
        patch(json!([{ "op": "replace", "path": "userName", "value": "boom2@example.com" }]));
    let ok_path = format!("/Users/{}", ok["id"].as_str().unwrap());
    assert_eq!(send(&app, &dir, M::PATCH, &ok_path, rename).await, 500);
    let now: Value = app
        .scim(&dir, M::GET, &ok_path)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(now["userName"], "ok@example.com");
    assert_eq!(now["meta"]["version"], ok["meta"]["version"]);

    // A delete: the user is still there.
    let keep_path = format!("/Users/{}", keep["id"].as_str().unwrap());
    assert_eq!(
        send(&app, &dir, M::DELETE, &keep_path, Value::Null).await,
        500
    );
    let resp = app.scim(&dir, M::GET, &keep_path).send().await.unwrap();
    assert_eq!(resp.status(), 200);

    // A group create with a member, and a group rename: neither happened.
    let ok_id = ok["id"].as_str().unwrap();
    let resp = app
        .scim(&dir, M::POST, "/Groups")
        .json(&json!({ "displayName": "boomers", "members": [{ "value": ok_id }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);
    let team_path = format!("/Groups/{}", team["id"].as_str().unwrap());
    let rename = patch(json!([{ "op": "replace", "path": "displayName", "value": "boom team" }]));
    assert_eq!(send(&app, &dir, M::PATCH, &team_path, rename).await, 500);
    let groups: Value = app
        .scim(&dir, M::GET, "/Groups")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(groups["totalResults"], 1);
    assert_eq!(groups["Resources"][0]["displayName"], "Team");
    let user: Value = app
        .scim(&dir, M::GET, &ok_path)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(user.get("groups").is_none(), "no membership was written");

    // What the log holds: the three setup writes and five failures.
    let events = all_events(&app, &format!("directory={}", dir.id)).await;
    let successes: Vec<&str> = events
        .iter()
        .filter(|e| e["outcome"] == "success")
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        successes,
        [
            "group.created",
            "user.created",
            "user.created",
            "directory.created"
        ]
    );
    let failures: Vec<(&str, i64)> = events
        .iter()
        .filter(|e| e["outcome"] == "failure")
        .map(|e| (e["action"].as_str().unwrap(), e["status"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        failures,
        [
            ("group.updated", 500),
            ("group.created", 500),
            ("user.deleted", 500),
            ("user.updated", 500),
            ("user.created", 500),
        ]
    );
}

#[tokio::test]
async fn failed_writes_are_recorded_with_what_the_client_was_told() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let ada = app.create_user(&dir, "ada@example.com").await;
    let ada_path = format!("/Users/{}", ada["id"].as_str().unwrap());

    // Duplicate userName: 409 uniqueness, found under the name it tried.
    let resp = app
        .scim(&dir, M::POST, "/Users")
        .json(&user_body("ADA@example.com"))
        .send()
        .await
        .unwrap();
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body = crate::helpers::assert_scim_error(resp, 409, Some("uniqueness")).await;
    // Unknown id: 404, with the id it named.
    let missing = uuid::Uuid::new_v4();
    let disable = patch(json!([{ "op": "replace", "path": "active", "value": false }]));
    assert_eq!(
        send(&app, &dir, M::PATCH, &format!("/Users/{missing}"), disable).await,
        404
    );
    // Stale If-Match: 412, named by the user's current userName.
    let resp = app
        .scim(&dir, M::DELETE, &ada_path)
        .header("if-match", "W/\"99\"")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 412);
    // Malformed JSON: 400 invalidSyntax.
    let resp = app
        .scim(&dir, M::POST, "/Groups")
        .header("content-type", "application/scim+json")
        .body("{\"displayName\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // A whole Bulk request refused.
    assert_eq!(
        send(&app, &dir, M::POST, "/Bulk", json!({ "nope": 1 })).await,
        400
    );
    // Not recorded: a wrong key (no directory is proven), and reads.
    let resp = app
        .client
        .post(format!("{}/Users", dir.base_url))
        .bearer_auth("scimd_0123456789abcdef.wrong")
        .json(&user_body("eve@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = app
        .scim(&dir, M::GET, "/Users?filter=bad")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    let failures = all_events(&app, "outcome=failure").await;
    assert_eq!(
        actions(&failures),
        [
            "bulk.rejected",
            "group.created",
            "user.deleted",
            "user.updated",
            "user.created"
        ]
    );
    let dup = &failures[4];
    assert_eq!(dup["status"], 409);
    assert_eq!(dup["scimType"], "uniqueness");
    assert_eq!(dup["detail"], body["detail"]);
    assert_eq!(dup["targetIdentifier"], "ADA@example.com");
    assert_eq!(dup["requestId"], request_id.as_str());
    assert_eq!(dup["actorId"], dir.key_id.as_str());
    assert!(dup["targetId"].is_null());
    let not_found = &failures[3];
    assert_eq!(not_found["status"], 404);
    assert_eq!(not_found["targetId"], missing.to_string());
    assert!(not_found["targetIdentifier"].is_null());
    let stale = &failures[2];
    assert_eq!(stale["status"], 412);
    assert!(stale["scimType"].is_null());
    assert_eq!(stale["targetIdentifier"], "ada@example.com");
    assert_eq!(failures[1]["scimType"], "invalidSyntax");
    assert_eq!(failures[0]["targetType"], "request");
    // The user is found by the report, failures included.
    let history = all_events(&app, "user=ada@example.com").await;
    assert_eq!(
        actions(&history),
        ["user.deleted", "user.created", "user.created"]
    );
}

#[tokio::test]
async fn reports_filter_by_user_identifier_action_outcome_directory_and_time() {
    let app = spawn_app().await;
    let okta = app.create_directory("Okta").await;
    let entra = app.create_directory("Entra").await;
    let resp = app
        .scim(&okta, M::POST, "/Users")
        .json(&json!({
            "userName": "ada@example.com",
            "externalId": "00u-ada",
            "emails": [{ "value": "ada.lovelace@example.com", "primary": true }],
        }))
        .send()
        .await
        .unwrap();
    let ada: Value = resp.json().await.unwrap();
    let ada_path = format!("/Users/{}", ada["id"].as_str().unwrap());
    app.create_user(&okta, "bob@example.com").await;
    app.create_user(&entra, "ada@example.com").await;
    // Renamed: the history is found by the old and the new name.
    let rename =
        patch(json!([{ "op": "replace", "path": "userName", "value": "ada.king@example.com" }]));
    assert_eq!(send(&app, &okta, M::PATCH, &ada_path, rename).await, 200);
    let deactivate = patch(json!([{ "op": "replace", "path": "active", "value": false }]));
    assert_eq!(
        send(&app, &okta, M::PATCH, &ada_path, deactivate).await,
        200
    );

    let okta_ada = format!("directory={}&user=", okta.id);
    for who in [
        "ada@example.com",
        "ADA.KING@example.com",
        "Ada.Lovelace@Example.com",
        "00u-ada",
        ada["id"].as_str().unwrap(),
    ] {
        let events = all_events(&app, &format!("{okta_ada}{who}")).await;
        assert_eq!(
            actions(&events),
            ["user.deactivated", "user.updated", "user.created"],
            "user={who}"
        );
    }
    // externalId compares exactly; other directories count without the filter.
    assert!(all_events(&app, &format!("{okta_ada}00U-ADA"))
        .await
        .is_empty());
    assert_eq!(all_events(&app, "user=ada@example.com").await.len(), 4);
    assert_eq!(
        all_events(&app, &format!("directory={}", entra.id))
            .await
            .len(),
        2
    );
    let created = all_events(&app, "action=user.created").await;
    assert_eq!(created.len(), 3);
    let two = all_events(&app, "action=user.created,directory.created").await;
    assert_eq!(two.len(), 5);
    assert!(all_events(&app, "outcome=failure").await.is_empty());
    assert_eq!(all_events(&app, "outcome=success").await.len(), 7);

    let newest = &all_events(&app, "").await[0];
    let t = newest["time"].as_str().unwrap();
    assert!(!all_events(&app, &format!("since={}", enc(t)))
        .await
        .is_empty());
    assert!(all_events(&app, "since=2999-01-01").await.is_empty());
    assert!(all_events(&app, "until=2000-01-01").await.is_empty());
    assert_eq!(
        all_events(&app, "since=2000-01-01&until=2999-01-01")
            .await
            .len(),
        7
    );

    for bad in [
        "action=user.exploded",
        "outcome=meh",
        "since=now",
        "cursor=xyz",
        "directory=1",
        "limit=x",
    ] {
        let resp = app
            .admin(M::GET, &format!("/orgs/default/reports/provisioning?{bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{bad}");
    }
    let resp = app
        .admin(
            M::GET,
            &format!("/orgs/{}/reports/provisioning", uuid::Uuid::new_v4()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let resp = app
        .client
        .get(format!(
            "{}/admin/v1/orgs/default/reports/provisioning",
            app.address
        ))
        .bearer_auth(&okta.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "a directory key cannot read reports");
}

#[tokio::test]
async fn a_deleted_users_history_is_still_found_by_its_identifiers() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let resp = app
        .scim(&dir, M::POST, "/Users")
        .json(&json!({
            "userName": "ada@example.com",
            "externalId": "00u-ada",
            "emails": [{ "value": "ada.l@example.com", "primary": true }],
        }))
        .send()
        .await
        .unwrap();
    let ada: Value = resp.json().await.unwrap();
    let id = ada["id"].as_str().unwrap();
    let path = format!("/Users/{id}");
    let rename =
        patch(json!([{ "op": "replace", "path": "userName", "value": "ada.k@example.com" }]));
    assert_eq!(send(&app, &dir, M::PATCH, &path, rename).await, 200);
    assert_eq!(send(&app, &dir, M::DELETE, &path, Value::Null).await, 204);
    // An identity provider that has not noticed yet.
    let off = patch(json!([{ "op": "replace", "path": "active", "value": false }]));
    assert_eq!(send(&app, &dir, M::PATCH, &path, off).await, 404);

    for who in [
        "ada@example.com",
        "Ada.K@example.com",
        "ada.l@example.com",
        "00u-ada",
        id,
    ] {
        let events = all_events(&app, &format!("user={who}")).await;
        assert_eq!(
            actions(&events),
            [
                "user.updated",
                "user.deleted",
                "user.updated",
                "user.created"
            ],
            "user={who}"
        );
        assert_eq!(events[0]["outcome"], "failure");
    }

    // Users deleted with their directory too.
    let other = app.create_directory("Entra").await;
    app.create_user(&other, "bob@example.com").await;
    let resp = app
        .admin(
            M::DELETE,
            &format!("/orgs/default/directories/{}", other.id),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let events = all_events(&app, "user=BOB@example.com").await;
    assert_eq!(actions(&events), ["user.created"]);
    assert!(all_events(&app, "user=nobody@example.com").await.is_empty());
}

fn enc(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cursor_pages_neither_repeat_nor_skip_while_events_arrive() {
    let app = std::sync::Arc::new(spawn_app().await);
    let dir = std::sync::Arc::new(app.create_directory("Okta").await);
    for i in 0..40 {
        app.create_user(&dir, &format!("before-{i}@example.com"))
            .await;
    }
    let before: Vec<String> = all_events(&app, "")
        .await
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(before.len(), 41);

    let writer = {
        let (app, dir) = (app.clone(), dir.clone());
        tokio::spawn(async move {
            for i in 0..40 {
                app.create_user(&dir, &format!("during-{i}@example.com"))
                    .await;
            }
        })
    };
    let mut seen: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("limit=3&cursor={c}"),
            None => "limit=3".to_owned(),
        };
        let page = report(&app, &q).await;
        seen.extend(page["events"].as_array().unwrap().iter().cloned());
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    writer.await.unwrap();

    let ids: Vec<&str> = seen.iter().map(|e| e["id"].as_str().unwrap()).collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "no event on two pages");
    for id in &before {
        assert!(unique.contains(id.as_str()), "event {id} was skipped");
    }
    let times: Vec<&str> = seen.iter().map(|e| e["time"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    // Events that arrived meanwhile are newer than every page but the
    // first could show; they appear on a fresh read.
    assert_eq!(all_events(&app, "").await.len(), 81);
}

#[tokio::test]
async fn the_report_streams_as_csv() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    app.create_user(&dir, "=HYPERLINK(\"x\")@example.com").await;
    let ada = app.create_user(&dir, "ada@example.com").await;
    let ada_path = format!("/Users/{}", ada["id"].as_str().unwrap());
    let update = patch(
        json!([{ "op": "replace", "value": { "title": "Countess", "displayName": "Ada, Countess" } }]),
    );
    assert_eq!(send(&app, &dir, M::PATCH, &ada_path, update).await, 200);
    let resp = app
        .scim(&dir, M::POST, "/Users")
        .json(&user_body("ada@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);

    let resp = app
        .admin(M::GET, "/orgs/default/reports/provisioning?format=csv")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(resp.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    let text = resp.text().await.unwrap();
    assert!(!text.contains(&dir.api_key), "no secret in the report");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        header,
        [
            "id",
            "time",
            "directory_id",
            "action",
            "outcome",
            "target_type",
            "target_id",
            "target_identifier",
            "changed_attributes",
            "members_added",
            "members_removed",
            "status",
            "scim_type",
            "detail",
            "actor_type",
            "actor_id",
            "source_ip",
            "request_id"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 5);
    assert!(rows.iter().all(|r| r.len() == header.len()));
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let by_action = |a: &str| rows.iter().find(|r| &r[col("action")] == a).unwrap();
    let failure = &rows[0];
    assert_eq!(&failure[col("outcome")], "failure");
    assert_eq!(&failure[col("status")], "409");
    assert_eq!(&failure[col("scim_type")], "uniqueness");
    assert_eq!(
        &by_action("user.updated")[col("changed_attributes")],
        "displayName,title"
    );
    assert_eq!(
        &rows[3][col("target_identifier")],
        "'=HYPERLINK(\"x\")@example.com"
    );
    assert_eq!(&by_action("directory.created")[col("actor_id")], "env");

    // The same filters as JSON, and the JSON page agrees with the CSV.
    let text = app
        .admin(
            M::GET,
            "/orgs/default/reports/provisioning?format=csv&outcome=success&user=ada@example.com",
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let rows: Vec<csv::StringRecord> = csv::Reader::from_reader(text.as_bytes())
        .records()
        .map(Result::unwrap)
        .collect();
    let json = all_events(&app, "outcome=success&user=ada@example.com").await;
    assert_eq!(rows.len(), json.len());
    for (r, e) in rows.iter().zip(&json) {
        assert_eq!(&r[0], e["id"].as_str().unwrap());
    }
}

#[tokio::test]
async fn stats_count_users_created_deactivated_deleted_and_failures_per_day() {
    let app = spawn_app().await;
    let okta = app.create_directory("Okta").await;
    let entra = app.create_directory("Entra").await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let u = app.create_user(&okta, &format!("u{i}@example.com")).await;
        ids.push(u["id"].as_str().unwrap().to_owned());
    }
    app.create_user(&entra, "e@example.com").await;
    let off = patch(json!([{ "op": "replace", "path": "active", "value": "False" }]));
    assert_eq!(
        send(&app, &okta, M::PATCH, &format!("/Users/{}", ids[0]), off).await,
        200
    );
    assert_eq!(
        send(
            &app,
            &okta,
            M::DELETE,
            &format!("/Users/{}", ids[1]),
            Value::Null
        )
        .await,
        204
    );
    for _ in 0..2 {
        let resp = app
            .scim(&okta, M::POST, "/Users")
            .json(&user_body("u2@example.com"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 409);
    }

    let stats: Value = app
        .admin(M::GET, "/orgs/default/reports/stats?days=7")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["days"], 7);
    let dirs = stats["directories"].as_array().unwrap();
    assert_eq!(dirs.len(), 2);
    let okta_stats = dirs
        .iter()
        .find(|d| d["directoryId"] == okta.id.as_str())
        .unwrap();
    assert_eq!(okta_stats["name"], "Okta");
    assert_eq!(
        okta_stats["totals"],
        json!({ "usersCreated": 3, "usersDeactivated": 1, "usersDeleted": 1, "failures": 2,
                "accessGranted": 0, "accessRevoked": 0 })
    );
    let daily = okta_stats["daily"].as_array().unwrap();
    assert_eq!(daily.len(), 7);
    assert_eq!(daily[6]["date"], stats["to"]);
    assert_eq!(daily[6]["usersCreated"], 3);
    assert_eq!(daily[0]["usersCreated"], 0);
    let entra_stats = dirs
        .iter()
        .find(|d| d["directoryId"] == entra.id.as_str())
        .unwrap();
    assert_eq!(entra_stats["totals"]["usersCreated"], 1);

    let one: Value = app
        .admin(
            M::GET,
            &format!("/orgs/default/reports/stats?days=1&directory={}", entra.id),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["directories"].as_array().unwrap().len(), 1);
    assert_eq!(one["directories"][0]["daily"].as_array().unwrap().len(), 1);
    for bad in ["days=0", "days=181", "days=x", "directory=nope"] {
        let resp = app
            .admin(M::GET, &format!("/orgs/default/reports/stats?{bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{bad}");
    }
}

#[tokio::test]
async fn admin_writes_are_recorded_and_outlive_their_directory() {
    let app = spawn_app().await;
    let resp = app
        .admin(M::POST, "/orgs")
        .json(&json!({ "name": "Acme" }))
        .send()
        .await
        .unwrap();
    let acme: Value = resp.json().await.unwrap();
    let acme_id = acme["id"].as_str().unwrap();
    let dir = app.create_directory("Okta").await;
    let resp = app
        .admin(
            M::POST,
            &format!("/orgs/default/directories/{}/api-key", dir.id),
        )
        .send()
        .await
        .unwrap();
    let rotated: Value = resp.json().await.unwrap();
    let resp = app
        .admin(M::DELETE, &format!("/orgs/default/directories/{}", dir.id))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);

    let events = all_events(&app, &format!("directory={}", dir.id)).await;
    assert_eq!(
        actions(&events),
        [
            "directory.deleted",
            "directory.key_rotated",
            "directory.created"
        ]
    );
    let rotation = &events[1];
    assert_eq!(
        rotation["detail"],
        format!(
            "API key {} replaces {}",
            rotated["keyId"].as_str().unwrap(),
            dir.key_id
        )
    );
    assert!(events
        .iter()
        .all(|e| e["actorType"] == "admin_token" && e["targetIdentifier"] == "Okta"));
    let resp = app
        .admin(M::GET, &format!("/orgs/{acme_id}/reports/provisioning"))
        .send()
        .await
        .unwrap();
    let acme_events: Value = resp.json().await.unwrap();
    assert_eq!(
        actions(acme_events["events"].as_array().unwrap()),
        ["org.created"]
    );
    // A deleted directory without user events in the window is not counted.
    let stats: Value = app
        .admin(M::GET, "/orgs/default/reports/stats")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["days"], 30);
    assert!(
        stats["directories"].as_array().unwrap().is_empty(),
        "no user events, no rows"
    );
}

#[tokio::test]
async fn source_ip_is_the_peer_unless_forwarded_for_is_trusted() {
    for trust in [false, true] {
        let app = spawn_app_with(|c| c.trust_forwarded_for = trust).await;
        let dir = app.create_directory("Okta").await;
        let resp = app
            .scim(&dir, M::POST, "/Users")
            .header("x-forwarded-for", "198.51.100.7, 203.0.113.9")
            .json(&user_body("ada@example.com"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        let events = all_events(&app, "action=user.created").await;
        let expected = if trust { "203.0.113.9" } else { "127.0.0.1" };
        assert_eq!(events[0]["sourceIp"], expected);
    }
}

#[tokio::test]
async fn with_auditing_off_nothing_is_recorded() {
    let app = spawn_app_with(|c| c.audit = false).await;
    let dir = app.create_directory("Okta").await;
    app.create_user(&dir, "ada@example.com").await;
    let resp = app
        .scim(&dir, M::POST, "/Users")
        .json(&user_body("ada@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    assert!(all_events(&app, "").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_each_have_exactly_one_event() {
    let app = std::sync::Arc::new(spawn_app().await);
    let dir = std::sync::Arc::new(app.create_directory("Okta").await);
    let group = app.create_group(&dir, "Everyone", &[]).await;
    let gid = group["id"].as_str().unwrap().to_owned();
    let mut tasks = Vec::new();
    for client in 0..8 {
        let (app, dir, gid) = (app.clone(), dir.clone(), gid.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..5 {
                let user = app
                    .create_user(&dir, &format!("c{client}-{i}@example.com"))
                    .await;
                let add = patch(
                    json!([{ "op": "add", "path": "members", "value": [{ "value": user["id"] }] }]),
                );
                assert_eq!(
                    send(&app, &dir, M::PATCH, &format!("/Groups/{gid}"), add).await,
                    204
                );
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let events = all_events(&app, &format!("directory={}", dir.id)).await;
    let created: HashSet<&str> = events
        .iter()
        .filter(|e| e["action"] == "user.created")
        .map(|e| e["targetId"].as_str().unwrap())
        .collect();
    assert_eq!(created.len(), 40);
    assert_eq!(
        actions(&events)
            .iter()
            .filter(|a| **a == "user.created")
            .count(),
        40
    );
    assert_eq!(
        actions(&events)
            .iter()
            .filter(|a| **a == "group.members_added")
            .count(),
        40
    );
    assert_eq!(events.len(), 40 + 40 + 2);
}

#[tokio::test]
async fn purge_deletes_events_past_retention_in_batches() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    app.create_user(&dir, "ada@example.com").await;
    let org = app.store.ensure_default_org().await.unwrap().id;
    // 25,000 events spread over the 170 days before now.
    app.store
        .seed_audit_events(org, dir.id.parse().unwrap(), 25_000, 100, 170)
        .await
        .unwrap();
    let now = scimd::time::now_micros();

    // The daily counters (the overview's chart, `reports/stats`) are the
    // events' sums, whatever was inserted or purged.
    let counted = || async {
        let daily = app
            .db()
            .count(
                "SELECT CAST(COALESCE(SUM(users_created + users_deactivated + users_deleted \
                 + failures + access_granted + access_revoked), 0) AS BIGINT) FROM audit_daily",
            )
            .await;
        let events = app
            .db()
            .count(
                "SELECT COUNT(*) FROM audit_events WHERE directory_id IS NOT NULL AND \
                 (outcome = 'failure' OR action IN ('user.created', 'user.deactivated', \
                 'user.deleted', 'access.granted', 'access.revoked'))",
            )
            .await;
        assert_eq!(daily, events, "daily counters and events disagree");
        daily
    };
    assert!(counted().await > 1_000);

    // Nothing is 180 days old yet.
    let purge = scimd::audit::purge::purge;
    assert_eq!(purge(&app.store, now, 180).await.unwrap(), 0);
    // 100 days on, events older than 80 days before today go: 90 of the
    // 170 days, in two batches of 10,000 and one more.
    let later = now + 100 * DAY;
    let deleted = purge(&app.store, later, 180).await.unwrap();
    assert_eq!(deleted, 13_236);
    assert_eq!(purge(&app.store, later, 180).await.unwrap(), 0);
    assert!(counted().await > 0);
    let cutoff = scimd::time::format_micros(later - 180 * DAY);
    assert!(
        report(&app, &format!("until={}&limit=1", enc(&cutoff))).await["events"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let kept = report(&app, &format!("since={}&limit=1", enc(&cutoff))).await;
    assert_eq!(kept["events"].as_array().unwrap().len(), 1);
    // On PostgreSQL, while another replica purges (holds the lock), this
    // one leaves the work to it.
    if let Some(mut other) = app.db().pg_connection().await {
        let key = scimd::store::audit::PURGE_LOCK_KEY;
        sqlx::query("SELECT pg_advisory_lock($1, hashtext(current_schema()))")
            .bind(key)
            .execute(&mut other)
            .await
            .unwrap();
        assert_eq!(purge(&app.store, now + 365 * DAY, 180).await.unwrap(), 0);
        sqlx::query("SELECT pg_advisory_unlock($1, hashtext(current_schema()))")
            .bind(key)
            .execute(&mut other)
            .await
            .unwrap();
    }
    // A year on, everything goes.
    let left = 25_000 - 13_236 + 2;
    assert_eq!(purge(&app.store, now + 365 * DAY, 180).await.unwrap(), left);
    assert!(all_events(&app, "").await.is_empty());
    assert_eq!(counted().await, 0);
    let stats = app
        .ok_json(app.admin(M::GET, "/orgs/default/reports/stats?days=7"))
        .await;
    assert_eq!(
        stats["directories"][0]["totals"],
        json!({ "usersCreated": 0, "usersDeactivated": 0, "usersDeleted": 0, "failures": 0,
                "accessGranted": 0, "accessRevoked": 0 }),
        "{stats}"
    );
}
