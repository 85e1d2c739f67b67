//! Org-level accounts: every SCIM user is linked to one, shown as
//! Atlassian's read-only extension; the admin API reads and changes them.

use serde_json::{json, Value};

use crate::helpers::{assert_scim_error, spawn_app, user_body, TestApp, TestDirectory, M};

pub const EXT: &str = "urn:scim:schemas:extension:atlassian-external:1.0";

/// The account id a SCIM user shows (and `schemas` names the extension).
pub fn account_of(user: &Value) -> String {
    let schemas = user["schemas"].as_array().expect("schemas");
    assert!(schemas.iter().any(|s| s == EXT), "schemas of {user}");
    let id = user[EXT]["atlassianAccountId"]
        .as_str()
        .unwrap_or_else(|| panic!("no account on {user}"));
    uuid::Uuid::parse_str(id).expect("a UUID");
    id.to_owned()
}

pub fn body_with(user_name: &str, email: Option<&str>, external_id: Option<&str>) -> Value {
    let mut body = user_body(user_name);
    match email {
        Some(email) => body["emails"] = json!([{ "value": email, "primary": true }]),
        None => {
            body.as_object_mut().unwrap().remove("emails");
        }
    }
    if let Some(external_id) = external_id {
        body["externalId"] = json!(external_id);
    }
    body
}

pub async fn default_org(app: &TestApp) -> uuid::Uuid {
    app.store.ensure_default_org().await.unwrap().id
}

async fn accounts(app: &TestApp, filter: &str) -> i64 {
    app.db()
        .count(&format!("SELECT COUNT(*) FROM accounts WHERE {filter}"))
        .await
}

pub async fn account_active(app: &TestApp, id: &str) -> bool {
    let sql = format!(
        "SELECT COUNT(*) FROM accounts WHERE active = TRUE AND {}",
        id_is(app, id)
    );
    match app.db().count(&sql).await {
        1 => true,
        0 => false,
        n => panic!("{n} accounts"),
    }
}

/// `id = <id>` in the test database's own spelling of a UUID.
pub fn id_is(app: &TestApp, id: &str) -> String {
    match app.db().is_postgres() {
        true => format!("id = '{id}'"),
        false => format!("id = x'{}'", id.replace('-', "")),
    }
}

async fn patch_user(app: &TestApp, dir: &TestDirectory, id: &str, ops: Value) -> Value {
    let resp = app
        .scim(dir, M::PATCH, &format!("/Users/{id}"))
        .json(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": ops,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

async fn set_active(app: &TestApp, dir: &TestDirectory, id: &str, active: bool) {
    let user = patch_user(
        app,
        dir,
        id,
        json!([{ "op": "replace", "path": "active", "value": active }]),
    )
    .await;
    assert_eq!(user["active"], active);
}

#[tokio::test]
async fn users_of_one_email_share_one_account_across_directories() {
    let app = spawn_app().await;
    let okta = app.create_directory("Okta").await;
    let entra = app.create_directory("Entra").await;
    let a = app.create_user(&okta, "Ann@Example.com").await;
    let b = app
        .create_user_from(
            &entra,
            &body_with("ann.entra", Some("ann@EXAMPLE.com"), None),
        )
        .await;
    assert_eq!(account_of(&a), account_of(&b));
    let c = app.create_user(&okta, "bob@example.com").await;
    assert_ne!(account_of(&a), account_of(&c));
    assert_eq!(accounts(&app, "email = 'ann@example.com'").await, 1);
    assert_eq!(
        accounts(&app, "email_domain = 'example.com'").await,
        2,
        "a new account for a new email, with its domain"
    );
}

#[tokio::test]
async fn a_user_without_email_gets_an_account_of_its_own() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let a = app
        .create_user_from(&dir, &body_with("a", None, None))
        .await;
    let b = app
        .create_user_from(&dir, &body_with("b", None, None))
        .await;
    assert_ne!(account_of(&a), account_of(&b));
    assert_eq!(accounts(&app, "email IS NULL").await, 2);
    // An inactive user makes an inactive account.
    let mut body = body_with("c", None, None);
    body["active"] = json!(false);
    let c = app.create_user_from(&dir, &body).await;
    assert!(!account_active(&app, &account_of(&c)).await);
    assert!(account_active(&app, &account_of(&a)).await);
}

#[tokio::test]
async fn the_extension_is_on_every_read_and_read_only_on_write() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let mut body = user_body("ann@example.com");
    body[EXT] = json!({ "atlassianAccountId": "chosen-by-client" });
    body["schemas"] = json!(["urn:ietf:params:scim:schemas:core:2.0:User", EXT]);
    let created = app.create_user_from(&dir, &body).await;
    let account = account_of(&created);
    let id = created["id"].as_str().unwrap();
    let got = app.get_json(&dir, &format!("/Users/{id}")).await;
    assert_eq!(account_of(&got), account);
    let listed = app.get_json(&dir, "/Users").await;
    assert_eq!(account_of(&listed["Resources"][0]), account);
    let filtered = app
        .get_json(&dir, "/Users?filter=userName%20eq%20%22ann@example.com%22")
        .await;
    assert_eq!(account_of(&filtered["Resources"][0]), account);
    let searched = app
        .ok_json(
            app.scim(&dir, M::POST, "/Users/.search").json(
                &json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"] }),
            ),
        )
        .await;
    assert_eq!(account_of(&searched["Resources"][0]), account);
    // A PUT without it, or naming another, keeps it.
    let put = app
        .ok_json(app.scim(&dir, M::PUT, &format!("/Users/{id}")).json(&body))
        .await;
    assert_eq!(account_of(&put), account);
    let put = app
        .ok_json(
            app.scim(&dir, M::PUT, &format!("/Users/{id}"))
                .json(&user_body("ann@example.com")),
        )
        .await;
    assert_eq!(account_of(&put), account);
    // PATCH cannot set it, nor remove it.
    let resp = app
        .scim(&dir, M::PATCH, &format!("/Users/{id}"))
        .json(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{ "op": "replace", "path": format!("{EXT}:atlassianAccountId"), "value": "x" }],
        }))
        .send()
        .await
        .unwrap();
    assert_scim_error(resp, 400, Some("mutability")).await;
    let resp = app
        .scim(&dir, M::PATCH, &format!("/Users/{id}"))
        .json(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{ "op": "remove", "path": EXT }],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // Echoed back without a path, it is ignored.
    let patched = patch_user(
        &app,
        &dir,
        id,
        json!([{ "op": "replace", "value": {
            EXT: { "atlassianAccountId": "x" },
            "title": "Countess"
        } }]),
    )
    .await;
    assert_eq!(patched["title"], "Countess");
    assert_eq!(account_of(&patched), account);
    assert_eq!(
        account_of(&app.get_json(&dir, &format!("/Users/{id}")).await),
        account
    );
    // Filters reach it.
    let filter = format!("{EXT}:atlassianAccountId eq \"{account}\"");
    let found = app
        .ok_json(
            app.scim(&dir, M::GET, "/Users")
                .query(&[("filter", filter.as_str())]),
        )
        .await;
    assert_eq!(found["totalResults"], 1);
}

#[tokio::test]
async fn bulk_creations_link_too() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let first = app.create_user(&dir, "ann@example.com").await;
    let resp = app
        .scim(&dir, M::POST, "/Bulk")
        .json(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "Operations": [
                { "method": "POST", "path": "/Users", "bulkId": "a",
                  "data": body_with("ann.two", Some("ann@example.com"), None) },
                { "method": "POST", "path": "/Users", "bulkId": "b",
                  "data": body_with("bob@example.com", Some("bob@example.com"), None) }
            ]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let mut accounts_seen = Vec::new();
    for op in body["Operations"].as_array().unwrap() {
        assert_eq!(op["status"], "201", "{op}");
        let location = op["location"].as_str().unwrap();
        let id = location.rsplit('/').next().unwrap();
        accounts_seen.push(account_of(
            &app.get_json(&dir, &format!("/Users/{id}")).await,
        ));
    }
    assert_eq!(accounts_seen[0], account_of(&first));
    assert_ne!(accounts_seen[1], account_of(&first));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creations_of_one_new_email_make_one_account() {
    let app = std::sync::Arc::new(spawn_app().await);
    let mut dirs = Vec::new();
    for n in 0..4 {
        dirs.push(std::sync::Arc::new(
            app.create_directory(&format!("d{n}")).await,
        ));
    }
    for round in 0..5 {
        let email = format!("same{round}@example.com");
        let mut tasks = Vec::new();
        for (n, dir) in dirs.iter().enumerate() {
            for k in 0..4 {
                let app = app.clone();
                let dir = dir.clone();
                let body = body_with(&format!("u{n}-{k}-{round}"), Some(&email), None);
                tasks.push(tokio::spawn(async move {
                    app.create_user_from(&dir, &body).await
                }));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for t in tasks {
            seen.insert(account_of(&t.await.unwrap()));
        }
        assert_eq!(seen.len(), 1, "round {round}: {seen:?}");
        assert_eq!(accounts(&app, &format!("email = '{email}'")).await, 1);
    }
    // Every user's column agrees with its document.
    assert_eq!(
        app.db()
            .count("SELECT COUNT(*) FROM users WHERE account_id IS NULL")
            .await,
        0
    );
}

#[tokio::test]
async fn an_account_stays_active_while_an_active_user_keeps_it() {
    let app = spawn_app().await;
    let okta = app.create_directory("Okta").await;
    let entra = app.create_directory("Entra").await;
    let a = app.create_user(&okta, "ann@example.com").await;
    let b = app
        .create_user_from(&entra, &body_with("ann", Some("ann@example.com"), None))
        .await;
    let account = account_of(&a);
    let (a, b) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    set_active(&app, &okta, a, false).await;
    assert!(account_active(&app, &account).await, "b keeps it");
    set_active(&app, &entra, b, false).await;
    assert!(!account_active(&app, &account).await);
    set_active(&app, &okta, a, true).await;
    assert!(account_active(&app, &account).await);
    // A PUT with active false counts the same.
    let mut body = user_body("ann@example.com");
    body["active"] = json!(false);
    app.ok_json(app.scim(&okta, M::PUT, &format!("/Users/{a}")).json(&body))
        .await;
    assert!(!account_active(&app, &account).await);
}

#[tokio::test]
async fn delete_deactivates_a_managed_account_only_and_recreating_relinks() {
    let app = spawn_app().await;
    let org = default_org(&app).await;
    app.store
        .put_verified_domain(org, "corp.example")
        .await
        .unwrap();
    let dir = app.create_directory("Okta").await;
    let managed = app.create_user(&dir, "ann@corp.example").await;
    let external = app.create_user(&dir, "bob@gmail.example").await;
    for user in [&managed, &external] {
        let resp = app
            .scim(
                &dir,
                M::DELETE,
                &format!("/Users/{}", user["id"].as_str().unwrap()),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 204);
    }
    assert!(!account_active(&app, &account_of(&managed)).await);
    assert!(account_active(&app, &account_of(&external)).await);
    assert_eq!(accounts(&app, "TRUE").await, 2, "account rows stay");
    // The same email again: the same account, active again.
    let again = app.create_user(&dir, "ann@corp.example").await;
    assert_eq!(account_of(&again), account_of(&managed));
    assert!(account_active(&app, &account_of(&managed)).await);
    let again = app.create_user(&dir, "bob@gmail.example").await;
    assert_eq!(account_of(&again), account_of(&external));
}

#[tokio::test]
async fn deleting_one_of_two_links_keeps_a_managed_account_active() {
    let app = spawn_app().await;
    let org = default_org(&app).await;
    app.store
        .put_verified_domain(org, "corp.example")
        .await
        .unwrap();
    let okta = app.create_directory("Okta").await;
    let entra = app.create_directory("Entra").await;
    let a = app.create_user(&okta, "ann@corp.example").await;
    app.create_user_from(&entra, &body_with("ann", Some("ann@corp.example"), None))
        .await;
    let resp = app
        .scim(
            &okta,
            M::DELETE,
            &format!("/Users/{}", a["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert!(account_active(&app, &account_of(&a)).await);
}

#[tokio::test]
async fn an_email_change_moves_the_account_only_to_a_free_verified_address() {
    let app = spawn_app().await;
    let org = default_org(&app).await;
    app.store
        .put_verified_domain(org, "corp.example")
        .await
        .unwrap();
    let dir = app.create_directory("Okta").await;
    let ann = app.create_user(&dir, "ann@corp.example").await;
    app.create_user(&dir, "taken@corp.example").await;
    let account = account_of(&ann);
    let id = ann["id"].as_str().unwrap();
    let email_is = |email: &str| json!([{ "op": "replace", "path": "emails", "value": [{ "value": email, "primary": true }] }]);
    // Verified and free: the account follows.
    patch_user(&app, &dir, id, email_is("ann.new@corp.example")).await;
    let moved = format!(
        "email = 'ann.new@corp.example' AND {}",
        id_is(&app, &account)
    );
    assert_eq!(accounts(&app, &moved).await, 1);
    let resp = app
        .admin(
            M::GET,
            "/orgs/default/reports/provisioning?action=account.email_changed",
        )
        .send()
        .await
        .unwrap();
    let report: Value = resp.json().await.unwrap();
    assert_eq!(report["events"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["events"][0]["targetId"], account);
    assert_eq!(
        report["events"][0]["targetIdentifier"],
        "ann.new@corp.example"
    );
    // Not verified: it stays, and the conflict is recorded.
    patch_user(&app, &dir, id, email_is("ann@elsewhere.example")).await;
    assert_eq!(accounts(&app, &moved).await, 1);
    let conflicts = "SELECT COUNT(*) FROM account_email_conflicts";
    let reason = |r: &str| format!("{conflicts} WHERE reason = '{r}'");
    assert_eq!(app.db().count(&reason("domainNotVerified")).await, 1);
    // Held by another account: recorded, replacing the last one.
    patch_user(&app, &dir, id, email_is("taken@corp.example")).await;
    assert_eq!(app.db().count(&reason("emailTaken")).await, 1);
    assert_eq!(app.db().count(conflicts).await, 1);
    // The emails agree again: the conflict is over.
    patch_user(&app, &dir, id, email_is("ann.new@corp.example")).await;
    assert_eq!(app.db().count(conflicts).await, 0);
    // The user keeps its account throughout.
    let got = app.get_json(&dir, &format!("/Users/{id}")).await;
    assert_eq!(account_of(&got), account);
}

#[tokio::test]
async fn a_taken_external_id_is_refused_naming_its_user_and_writes_nothing() {
    let app = spawn_app().await;
    let dir = app.create_directory("Entra").await;
    let first = app
        .create_user_from(
            &dir,
            &body_with("ann@example.com", Some("ann@example.com"), Some("obj-1")),
        )
        .await;
    let first_id = first["id"].as_str().unwrap();
    let users_before = app.db().count("SELECT COUNT(*) FROM users").await;
    let accounts_before = accounts(&app, "TRUE").await;
    // Entra's rename: a new userName and email, the same object id.
    let resp = app
        .scim(&dir, M::POST, "/Users")
        .json(&body_with(
            "ann.renamed@example.com",
            Some("ann.renamed@example.com"),
            Some("obj-1"),
        ))
        .send()
        .await
        .unwrap();
    let error = assert_scim_error(resp, 409, Some("uniqueness")).await;
    assert_eq!(
        error["detail"],
        format!("externalId 'obj-1' is already used by user {first_id}")
    );
    assert_eq!(
        app.db().count("SELECT COUNT(*) FROM users").await,
        users_before
    );
    assert_eq!(accounts(&app, "TRUE").await, accounts_before);
    // Another directory may use it.
    let other = app.create_directory("Other").await;
    app.create_user_from(&other, &body_with("x", None, Some("obj-1")))
        .await;
    // PUT and PATCH to a taken externalId are refused too.
    let second = app
        .create_user_from(
            &dir,
            &body_with("bob@example.com", Some("bob@example.com"), Some("obj-2")),
        )
        .await;
    let second_id = second["id"].as_str().unwrap();
    let resp = app
        .scim(&dir, M::PATCH, &format!("/Users/{second_id}"))
        .json(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{ "op": "replace", "path": "externalId", "value": "obj-1" }],
        }))
        .send()
        .await
        .unwrap();
    let error = assert_scim_error(resp, 409, Some("uniqueness")).await;
    assert_eq!(
        error["detail"],
        format!("externalId 'obj-1' is already used by user {first_id}")
    );
    let resp = app
        .scim(&dir, M::PUT, &format!("/Users/{second_id}"))
        .json(&body_with(
            "bob@example.com",
            Some("bob@example.com"),
            Some("obj-1"),
        ))
        .send()
        .await
        .unwrap();
    assert_scim_error(resp, 409, Some("uniqueness")).await;
    let got = app.get_json(&dir, &format!("/Users/{second_id}")).await;
    assert_eq!(got["externalId"], "obj-2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creations_of_one_external_id_make_one_user() {
    let app = std::sync::Arc::new(spawn_app().await);
    let dir = std::sync::Arc::new(app.create_directory("Entra").await);
    let mut tasks = Vec::new();
    for k in 0..8 {
        let app = app.clone();
        let dir = dir.clone();
        tasks.push(tokio::spawn(async move {
            let body = body_with(
                &format!("u{k}@example.com"),
                Some(&format!("u{k}@example.com")),
                Some("same"),
            );
            let resp = app
                .scim(&dir, M::POST, "/Users")
                .json(&body)
                .send()
                .await
                .unwrap();
            resp.status().as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, [201, 409, 409, 409, 409, 409, 409, 409]);
    assert_eq!(app.db().count("SELECT COUNT(*) FROM users").await, 1);
}

#[tokio::test]
async fn an_orgs_accounts_go_with_it() {
    let app = spawn_app().await;
    let resp = app
        .admin(M::POST, "/orgs")
        .json(&json!({ "name": "Gone" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let org: Value = resp.json().await.unwrap();
    let org_id = org["id"].as_str().unwrap();
    let resp = app
        .admin(M::POST, &format!("/orgs/{org_id}/directories"))
        .json(&json!({ "name": "Okta" }))
        .send()
        .await
        .unwrap();
    let dir: Value = resp.json().await.unwrap();
    let dir = TestDirectory {
        id: dir["id"].as_str().unwrap().to_owned(),
        base_url: dir["baseUrl"].as_str().unwrap().to_owned(),
        api_key: dir["apiKey"].as_str().unwrap().to_owned(),
        key_id: dir["keyId"].as_str().unwrap().to_owned(),
    };
    app.create_user(&dir, "ann@gone.example").await;
    let kept = app.create_directory("Kept").await;
    app.create_user(&kept, "bob@kept.example").await;
    assert_eq!(accounts(&app, "TRUE").await, 2);
    let org_is = id_is(&app, org_id);
    app.db()
        .execute(&format!("DELETE FROM orgs WHERE {org_is}"))
        .await;
    assert_eq!(accounts(&app, "TRUE").await, 1);
    assert_eq!(accounts(&app, "email = 'bob@kept.example'").await, 1);
}

/// Two links deactivated at once: each sees the other still active in
/// its own snapshot, unless the account's row is locked first.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_links_deactivated_at_once_deactivate_the_account() {
    let app = std::sync::Arc::new(spawn_app().await);
    let okta = std::sync::Arc::new(app.create_directory("Okta").await);
    let entra = std::sync::Arc::new(app.create_directory("Entra").await);
    for round in 0..5 {
        let email = format!("pair{round}@example.com");
        let a = app.create_user(&okta, &email).await;
        let b = app
            .create_user_from(
                &entra,
                &body_with(&format!("pair{round}"), Some(&email), None),
            )
            .await;
        let account = account_of(&a);
        let mut tasks = Vec::new();
        for (dir, user) in [(okta.clone(), a), (entra.clone(), b)] {
            let app = app.clone();
            tasks.push(tokio::spawn(async move {
                let id = user["id"].as_str().unwrap().to_owned();
                set_active(&app, &dir, &id, false).await;
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert!(!account_active(&app, &account).await, "round {round}");
    }
}
