//! A directory's sync settings through the admin API: defaults, a whole
//! replacement, each refusal, and what deleting a selected group does.

use reqwest::Response;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp, TestDirectory, M};
use crate::sites::{assert_admin_error, create_org, default_org};

fn path(dir: &TestDirectory) -> String {
    format!("/orgs/default/directories/{}/sync-settings", dir.id)
}

async fn put(app: &TestApp, dir: &TestDirectory, body: &Value) -> Response {
    app.admin(M::PUT, &path(dir))
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn get(app: &TestApp, dir: &TestDirectory) -> Value {
    app.ok_json(app.admin(M::GET, &path(dir))).await
}

/// A whole, valid body: scheduled, all users, all domains.
fn body() -> Value {
    json!({
        "mode": "scheduled",
        "intervalMinutes": 60,
        "scope": { "type": "all" },
        "domains": { "type": "all" },
        "emailNewUsers": true,
    })
}

async fn settings_events(app: &TestApp) -> Vec<Value> {
    let report = app
        .ok_json(app.admin(
            M::GET,
            "/orgs/default/reports/provisioning?action=directory.settings_changed",
        ))
        .await;
    report["events"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_directory_never_configured_has_the_defaults() {
    let app = spawn_app().await;
    let dir = app.create_directory("Entra").await;
    assert_eq!(
        get(&app, &dir).await,
        json!({
            "enabled": true,
            "mode": "continuous",
            "intervalMinutes": 240,
            "scope": { "type": "all" },
            "domains": { "type": "all" },
            "emailNewUsers": false,
            "groupUserLimit": null,
            "updatedAt": null,
        })
    );
}

#[tokio::test]
async fn settings_are_replaced_whole_and_read_back_normalised() {
    let app = spawn_app().await;
    let org = default_org(&app).await;
    app.store
        .put_verified_domain(org, "corp.example")
        .await
        .unwrap();
    let dir = app.create_directory("Entra").await;
    let a = app.create_group(&dir, "Engineering", &[]).await;
    let b = app.create_group(&dir, "Sales", &[]).await;
    let (a, b) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    let resp = put(
        &app,
        &dir,
        &json!({
            "mode": "scheduled",
            "intervalMinutes": 15,
            "scope": { "type": "groups", "groupIds": [b, a, b] },
            "domains": { "type": "list", "names": ["CORP.example.", "corp.example"] },
            "emailNewUsers": true,
            "groupUserLimit": 20000,
        }),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let saved: Value = resp.json().await.unwrap();
    assert_eq!(
        saved["scope"],
        json!({ "type": "groups", "groupIds": [b, a] })
    );
    assert_eq!(
        saved["domains"],
        json!({ "type": "list", "names": ["corp.example"] })
    );
    assert_eq!(saved["groupUserLimit"], 20000);
    assert_eq!(saved["intervalMinutes"], 15);
    assert!(saved["updatedAt"].is_string());
    assert_eq!(get(&app, &dir).await, saved);

    // A second PUT replaces everything; groupUserLimit absent is null.
    let resp = put(&app, &dir, &body()).await;
    assert_eq!(resp.status(), 200);
    let again = get(&app, &dir).await;
    assert_eq!(again["scope"], json!({ "type": "all" }));
    assert_eq!(again["domains"], json!({ "type": "all" }));
    assert_eq!(again["groupUserLimit"], Value::Null);
    assert_eq!(again["mode"], "scheduled");
    assert_eq!(again["emailNewUsers"], true);
    // Nothing about the directory's groups changed: saving syncs nothing.
    assert_eq!(
        app.get_json(&dir, "/Groups").await["totalResults"],
        2,
        "saving settings must not touch the directory"
    );
}

#[tokio::test]
async fn bad_bodies_are_refused_with_400() {
    let app = spawn_app().await;
    let dir = app.create_directory("Entra").await;
    let with = |key: &str, value: Value| {
        let mut b = body();
        b[key] = value;
        b
    };
    let without = |key: &str| {
        let mut b = body();
        b.as_object_mut().unwrap().remove(key);
        b
    };
    let many: Vec<String> = (0..1001)
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    let cases = [
        with("intervalMinutes", json!(14)),
        with("intervalMinutes", json!(10081)),
        with("intervalMinutes", json!(60.5)),
        with("mode", json!("hourly")),
        with("groupUserLimit", json!(0)),
        with("groupUserLimit", json!(1_000_001)),
        with("scope", json!({ "type": "some" })),
        with("scope", json!({ "type": "groups" })),
        with("scope", json!({ "type": "groups", "groupIds": ["nope"] })),
        with("scope", json!({ "type": "groups", "groupIds": many })),
        with("scope", json!({ "type": "all", "groupIds": [] })),
        with("domains", json!({ "type": "list" })),
        with("domains", json!({ "type": "all", "names": [] })),
        with("unknown", json!(true)),
        without("mode"),
        without("intervalMinutes"),
        without("scope"),
        without("domains"),
        without("emailNewUsers"),
    ];
    for case in cases {
        let resp = put(&app, &dir, &case).await;
        assert_eq!(resp.status(), 400, "{case}");
        assert_admin_error(resp, 400, "bad_request").await;
    }
    let resp = put(
        &app,
        &dir,
        &with(
            "domains",
            json!({ "type": "list", "names": ["not a domain"] }),
        ),
    )
    .await;
    assert_admin_error(resp, 400, "invalid_domain").await;
    // Nothing was saved.
    assert_eq!(get(&app, &dir).await["updatedAt"], Value::Null);
}

#[tokio::test]
async fn selected_groups_and_domains_must_be_the_directorys_and_verified() {
    let app = spawn_app().await;
    let dir = app.create_directory("Entra").await;
    let other = app.create_directory("Okta").await;
    let foreign = app.create_group(&other, "Okta people", &[]).await;
    let foreign = foreign["id"].as_str().unwrap();
    let unknown = uuid::Uuid::new_v4().to_string();
    for group in [foreign, unknown.as_str()] {
        let mut b = body();
        b["scope"] = json!({ "type": "groups", "groupIds": [group] });
        let message = assert_admin_error(put(&app, &dir, &b).await, 404, "not_found").await;
        assert!(message.contains(group), "{message}");
    }

    let mut b = body();
    b["domains"] = json!({ "type": "list", "names": ["nowhere.example"] });
    let message = assert_admin_error(put(&app, &dir, &b).await, 404, "not_found").await;
    assert!(message.contains("nowhere.example"), "{message}");

    let resp = app
        .admin(M::POST, "/orgs/default/domains")
        .json(&json!({ "name": "pending.example" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    b["domains"] = json!({ "type": "list", "names": ["pending.example"] });
    let message = assert_admin_error(put(&app, &dir, &b).await, 409, "domain_not_verified").await;
    assert!(message.contains("pending.example"), "{message}");

    // A domain of another organisation is not this one's.
    let acme = create_org(&app, "Acme").await;
    app.store
        .put_verified_domain(acme, "acme.example")
        .await
        .unwrap();
    b["domains"] = json!({ "type": "list", "names": ["acme.example"] });
    assert_admin_error(put(&app, &dir, &b).await, 404, "not_found").await;
    assert_eq!(get(&app, &dir).await["updatedAt"], Value::Null);
    assert!(settings_events(&app).await.is_empty());
}

#[tokio::test]
async fn unknown_organisations_and_directories_are_404() {
    let app = spawn_app().await;
    let dir = app.create_directory("Entra").await;
    let acme = create_org(&app, "Acme").await;
    let paths = [
        format!("/orgs/{acme}/directories/{}/sync-settings", dir.id),
        format!(
            "/orgs/{}/directories/{}/sync-settings",
            uuid::Uuid::new_v4(),
            dir.id
        ),
        format!(
            "/orgs/default/directories/{}/sync-settings",
            uuid::Uuid::new_v4()
        ),
        "/orgs/default/directories/not-a-uuid/sync-settings".to_owned(),
    ];
    for p in &paths {
        let resp = app.admin(M::GET, p).send().await.unwrap();
        assert_admin_error(resp, 404, "not_found").await;
        let resp = app.admin(M::PUT, p).json(&body()).send().await.unwrap();
        assert_admin_error(resp, 404, "not_found").await;
    }
    // Deleting the directory takes its settings with it.
    assert_eq!(put(&app, &dir, &body()).await.status(), 200);
    let resp = app
        .admin(M::DELETE, &format!("/orgs/default/directories/{}", dir.id))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(
        app.db().count("SELECT COUNT(*) FROM sync_settings").await,
        0
    );
}

#[tokio::test]
async fn a_save_is_one_audit_event_naming_what_changed() {
    let app = spawn_app().await;
    let dir = app.create_directory("Entra").await;
    assert_eq!(put(&app, &dir, &body()).await.status(), 200);
    let events = settings_events(&app).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event["targetId"], dir.id.as_str());
    assert_eq!(event["directoryId"], dir.id.as_str());
    assert_eq!(
        event["changedAttributes"],
        json!(["mode", "intervalMinutes", "emailNewUsers"]),
        "{event}"
    );
    let detail = event["detail"].as_str().unwrap();
    assert!(detail.contains("scheduled every 60 minutes"), "{detail}");
    // The same settings again: an event with nothing changed.
    assert_eq!(put(&app, &dir, &body()).await.status(), 200);
    let events = settings_events(&app).await;
    assert_eq!(events.len(), 2);
    assert!(events
        .iter()
        .any(|e| e["changedAttributes"].as_array().is_none_or(Vec::is_empty)));
}

#[tokio::test]
async fn a_deleted_scim_group_drops_out_of_the_scope() {
    let app = spawn_app().await;
    let dir = app.create_directory("Entra").await;
    let a = app.create_group(&dir, "Engineering", &[]).await;
    let b = app.create_group(&dir, "Sales", &[]).await;
    let (a, b) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    let mut settings = body();
    settings["scope"] = json!({ "type": "groups", "groupIds": [a, b] });
    assert_eq!(put(&app, &dir, &settings).await.status(), 200);
    let resp = app
        .scim(&dir, M::DELETE, &format!("/Groups/{a}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(
        get(&app, &dir).await["scope"],
        json!({ "type": "groups", "groupIds": [b] })
    );
    // The last one too: the scope stays "groups", selecting none.
    let resp = app
        .scim(&dir, M::DELETE, &format!("/Groups/{b}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(
        get(&app, &dir).await["scope"],
        json!({ "type": "groups", "groupIds": [] })
    );
}

#[tokio::test]
async fn a_deleted_domain_drops_out_of_the_list() {
    let app = spawn_app().await;
    let org = default_org(&app).await;
    for name in ["corp.example", "labs.example"] {
        app.store.put_verified_domain(org, name).await.unwrap();
    }
    let dir = app.create_directory("Entra").await;
    let mut settings = body();
    settings["domains"] = json!({ "type": "list", "names": ["labs.example", "corp.example"] });
    assert_eq!(put(&app, &dir, &settings).await.status(), 200);
    let resp = app
        .admin(M::DELETE, "/orgs/default/domains/labs.example")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        get(&app, &dir).await["domains"],
        json!({ "type": "list", "names": ["corp.example"] })
    );
}
