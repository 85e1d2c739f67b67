//! Sites, products, grants, default groups and product access, through
//! the admin API.

use reqwest::Response;
use serde_json::{json, Value};
use uuid::Uuid;

use scimd::directory::access::{ProductKey, Role};

use crate::helpers::{spawn_app, TestApp, M};

/// The id of the default organisation.
pub async fn default_org(app: &TestApp) -> Uuid {
    let org = app.ok_json(app.admin(M::GET, "/orgs/default")).await;
    org["id"].as_str().unwrap().parse().unwrap()
}

/// An org of its own, through the admin API.
pub async fn create_org(app: &TestApp, name: &str) -> Uuid {
    let resp = app
        .admin(M::POST, "/orgs")
        .json(&json!({ "name": name }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    body["id"].as_str().unwrap().parse().unwrap()
}

/// A UUID as a SQL literal of the test's store.
fn uuid_sql(app: &TestApp, id: Uuid) -> String {
    if app.db().is_postgres() {
        format!("'{id}'")
    } else {
        format!("X'{}'", id.simple())
    }
}

/// An account of `org` (accounts are made by provisioning, which has no
/// admin route to make one).
pub async fn insert_account(app: &TestApp, org: Uuid, email: &str) -> Uuid {
    let id = Uuid::new_v4();
    let domain = email.split('@').nth(1).unwrap_or("");
    app.db()
        .execute(&format!(
            "INSERT INTO accounts (id, org_id, email, email_domain, display_name, active, \
             created_at, updated_at) VALUES ({}, {}, '{email}', '{domain}', 'Name of {email}', \
             TRUE, 1, 1)",
            uuid_sql(app, id),
            uuid_sql(app, org)
        ))
        .await;
    id
}

/// Asserts an admin error and returns its message.
pub async fn assert_admin_error(resp: Response, status: u16, code: &str) -> String {
    assert_eq!(resp.status(), status, "{}", resp.url());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert_eq!(body["error"], code, "{body}");
    body["message"].as_str().unwrap().to_owned()
}

/// POSTs `body` to an admin path, which must answer 201; its JSON.
pub async fn created(app: &TestApp, path: &str, body: Value) -> Value {
    let resp = app.admin(M::POST, path).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 201, "POST {path} {body}");
    resp.json().await.unwrap()
}

async fn create_site(app: &TestApp, name: &str, url: &str) -> String {
    let site = created(
        app,
        "/orgs/default/sites",
        json!({ "name": name, "url": url }),
    )
    .await;
    site["id"].as_str().unwrap().to_owned()
}

async fn audit_count(app: &TestApp, action: &str) -> i64 {
    app.db()
        .count(&format!(
            "SELECT COUNT(*) FROM audit_events WHERE action = '{action}'"
        ))
        .await
}

#[tokio::test]
async fn sites_are_created_listed_read_and_deleted() {
    let app = spawn_app().await;
    let site = created(
        &app,
        "/orgs/default/sites",
        json!({ "name": "Acme", "url": "https://Acme.Atlassian.net/" }),
    )
    .await;
    assert_eq!(site["name"], "Acme");
    assert_eq!(site["url"], "https://acme.atlassian.net");
    assert!(site.get("orgId").is_none());
    let id = site["id"].as_str().unwrap();
    created(
        &app,
        "/orgs/default/sites",
        json!({ "name": "Beta", "url": "http://beta.example:8080/wiki" }),
    )
    .await;

    let list = app.ok_json(app.admin(M::GET, "/orgs/default/sites")).await;
    let names: Vec<&str> = list["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Acme", "Beta"]);
    let got = app
        .ok_json(app.admin(M::GET, &format!("/orgs/default/sites/{id}")))
        .await;
    assert_eq!(got, site);

    let resp = app
        .admin(M::DELETE, &format!("/orgs/default/sites/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let resp = app
        .admin(M::GET, &format!("/orgs/default/sites/{id}"))
        .send()
        .await
        .unwrap();
    assert_admin_error(resp, 404, "not_found").await;
    assert_eq!(audit_count(&app, "site.created").await, 2);
    assert_eq!(audit_count(&app, "site.deleted").await, 1);
}

#[tokio::test]
async fn site_bodies_are_checked_and_names_and_urls_are_unique_in_the_org() {
    let app = spawn_app().await;
    create_site(&app, "Acme", "https://acme.atlassian.net").await;
    for (body, status, code) in [
        (
            json!({ "name": "acme", "url": "https://other.example" }),
            409,
            "conflict",
        ),
        (
            json!({ "name": "Other", "url": "HTTPS://ACME.atlassian.net:443/" }),
            409,
            "conflict",
        ),
        (
            json!({ "name": "", "url": "https://x.example" }),
            400,
            "bad_request",
        ),
        (
            json!({ "name": "   ", "url": "https://x.example" }),
            400,
            "bad_request",
        ),
        (
            json!({ "name": "x".repeat(201), "url": "https://x.example" }),
            400,
            "bad_request",
        ),
        (
            json!({ "name": "X", "url": "ftp://x.example" }),
            400,
            "bad_request",
        ),
        (
            json!({ "name": "X", "url": "x.example" }),
            400,
            "bad_request",
        ),
        (
            json!({ "name": "X", "url": "https://u:p@x.example" }),
            400,
            "bad_request",
        ),
        (json!({ "name": "X" }), 400, "bad_request"),
        (json!([]), 400, "bad_request"),
    ] {
        let resp = app
            .admin(M::POST, "/orgs/default/sites")
            .json(&body)
            .send()
            .await
            .unwrap();
        let message = assert_admin_error(resp, status, code).await;
        if status == 409 {
            assert!(message.contains("already has a site"), "{message}");
        }
    }
    // Another org may use the same name and URL.
    let other = create_org(&app, "Other").await;
    let resp = app
        .admin(M::POST, &format!("/orgs/{other}/sites"))
        .json(&json!({ "name": "Acme", "url": "https://acme.atlassian.net" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let theirs: Value = resp.json().await.unwrap();
    // ...and its site is not the default org's.
    let resp = app
        .admin(
            M::GET,
            &format!("/orgs/default/sites/{}", theirs["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_admin_error(resp, 404, "not_found").await;
    for path in [
        "/orgs/default/sites/not-a-uuid".to_owned(),
        format!("/orgs/default/sites/{}", Uuid::new_v4()),
        format!("/orgs/{}/sites", Uuid::new_v4()),
    ] {
        let resp = app.admin(M::GET, &path).send().await.unwrap();
        assert_admin_error(resp, 404, "not_found").await;
    }
}

#[tokio::test]
async fn products_are_added_listed_read_and_removed() {
    let app = spawn_app().await;
    let site = create_site(&app, "Acme", "https://acme.atlassian.net").await;
    let products = format!("/orgs/default/sites/{site}/products");
    for key in ["jira-software", "confluence", "statuspage-2"] {
        let p = created(&app, &products, json!({ "key": key })).await;
        assert_eq!(p["key"], key);
        assert_eq!(p["newUsersGetAccess"], false);
        assert_eq!(p["defaultGroups"], json!([]));
    }
    for (body, status, code) in [
        (json!({ "key": "confluence" }), 409, "conflict"),
        (json!({ "key": "Confluence" }), 400, "bad_request"),
        (json!({ "key": "jira software" }), 400, "bad_request"),
        (json!({ "key": "" }), 400, "bad_request"),
        (json!({ "key": "a".repeat(65) }), 400, "bad_request"),
        (json!({}), 400, "bad_request"),
    ] {
        let resp = app
            .admin(M::POST, &products)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_admin_error(resp, status, code).await;
    }
    let list = app.ok_json(app.admin(M::GET, &products)).await;
    let keys: Vec<&str> = list["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["confluence", "jira-software", "statuspage-2"]);
    let got = app
        .ok_json(app.admin(M::GET, &format!("{products}/confluence")))
        .await;
    assert_eq!(got["siteId"], site);
    let resp = app
        .admin(M::DELETE, &format!("{products}/confluence"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    for path in [
        format!("{products}/confluence"),
        format!("{products}/NOT_A_KEY"),
        format!("/orgs/default/sites/{}/products/confluence", Uuid::new_v4()),
        format!("/orgs/default/sites/{}/products", Uuid::new_v4()),
    ] {
        let resp = app.admin(M::GET, &path).send().await.unwrap();
        assert_admin_error(resp, 404, "not_found").await;
    }
    let resp = app
        .admin(M::DELETE, &format!("{products}/confluence"))
        .send()
        .await
        .unwrap();
    assert_admin_error(resp, 404, "not_found").await;
    let resp = app
        .admin(
            M::POST,
            &format!("/orgs/default/sites/{}/products", Uuid::new_v4()),
        )
        .json(&json!({ "key": "confluence" }))
        .send()
        .await
        .unwrap();
    assert_admin_error(resp, 404, "not_found").await;
    assert_eq!(audit_count(&app, "product.added").await, 3);
    assert_eq!(audit_count(&app, "product.removed").await, 1);
}

/// A site with Jira, a directory with a SCIM group, a second directory
/// with another, and an org group.
struct Fixture {
    app: TestApp,
    org: Uuid,
    site: String,
    product: String,
    scim_a: String,
    scim_b: String,
    dir_a: crate::helpers::TestDirectory,
    dir_b_id: String,
    local: String,
}

async fn fixture() -> Fixture {
    let app = spawn_app().await;
    let org = default_org(&app).await;
    let site = create_site(&app, "Acme", "https://acme.atlassian.net").await;
    let product = format!("/orgs/default/sites/{site}/products/jira-software");
    created(
        &app,
        &format!("/orgs/default/sites/{site}/products"),
        json!({ "key": "jira-software" }),
    )
    .await;
    let dir_a = app.create_directory("Okta").await;
    let dir_b = app.create_directory("Entra").await;
    // These tests write access rows by hand: no sync may recompute them.
    crate::sync::scheduled(&app, &dir_a).await;
    crate::sync::scheduled(&app, &dir_b).await;
    let scim_a = app.create_group(&dir_a, "Engineering", &[]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let scim_b = app.create_group(&dir_b, "Sales", &[]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let local = created(
        &app,
        "/orgs/default/groups",
        json!({ "name": "jira-users" }),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    Fixture {
        app,
        org,
        site,
        product,
        scim_a,
        scim_b,
        dir_a,
        dir_b_id: dir_b.id,
        local,
    }
}

/// The grant of `role` to `group` on the fixture's Jira.
async fn grant_id(f: &Fixture, group: &str, role: Role) -> Uuid {
    let key = ProductKey::parse("jira-software").unwrap();
    f.app
        .store
        .grant_id(f.site.parse().unwrap(), &key, group.parse().unwrap(), role)
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn grants_name_groups_of_any_directory_or_the_org() {
    let f = fixture().await;
    let app = &f.app;
    let grants = format!("{}/grants", f.product);
    let g = created(app, &grants, json!({ "groupId": f.scim_a, "role": "user" })).await;
    assert_eq!(g["kind"], "scim");
    assert_eq!(g["name"], "Engineering");
    assert_eq!(g["directoryId"], f.dir_a.id);
    assert_eq!(g["role"], "user");
    created(
        app,
        &grants,
        json!({ "groupId": f.scim_a, "role": "admin" }),
    )
    .await;
    created(app, &grants, json!({ "groupId": f.scim_b, "role": "user" })).await;
    let g = created(app, &grants, json!({ "groupId": f.local, "role": "admin" })).await;
    assert_eq!(g["kind"], "org");
    assert_eq!(g["directoryId"], Value::Null);

    let resp = app
        .admin(M::POST, &grants)
        .json(&json!({ "groupId": f.scim_a, "role": "user" }))
        .send()
        .await
        .unwrap();
    assert_admin_error(resp, 409, "conflict").await;
    // An unknown group, and another org's group, are named.
    let other = create_org(app, "Other").await;
    let theirs = created(
        app,
        &format!("/orgs/{other}/groups"),
        json!({ "name": "x" }),
    )
    .await;
    for group in [
        Uuid::new_v4().to_string(),
        theirs["id"].as_str().unwrap().to_owned(),
    ] {
        let resp = app
            .admin(M::POST, &grants)
            .json(&json!({ "groupId": group, "role": "user" }))
            .send()
            .await
            .unwrap();
        let message = assert_admin_error(resp, 404, "not_found").await;
        assert!(message.contains(&group), "{message}");
    }
    for body in [
        json!({ "groupId": f.local, "role": "owner" }),
        json!({ "groupId": "nope", "role": "user" }),
        json!({ "role": "user" }),
    ] {
        let resp = app
            .admin(M::POST, &grants)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_admin_error(resp, 400, "bad_request").await;
    }

    let list = app.ok_json(app.admin(M::GET, &grants)).await;
    let rows: Vec<(String, String, String)> = list["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap().to_owned(),
                g["kind"].as_str().unwrap().to_owned(),
                g["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expect = |n: &str, k: &str, r: &str| (n.to_owned(), k.to_owned(), r.to_owned());
    assert_eq!(
        rows,
        [
            expect("Engineering", "scim", "admin"),
            expect("Engineering", "scim", "user"),
            expect("Sales", "scim", "user"),
            expect("jira-users", "org", "admin"),
        ]
    );
    assert_eq!(list["grants"][2]["directoryId"], f.dir_b_id);

    // Revoking one role leaves the other; without a role, all go.
    let one = format!("{grants}/{}", f.scim_a);
    let resp = app
        .admin(M::DELETE, &format!("{one}?role=admin"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let resp = app
        .admin(M::DELETE, &format!("{one}?role=admin"))
        .send()
        .await
        .unwrap();
    assert_admin_error(resp, 404, "not_found").await;
    let resp = app
        .admin(M::DELETE, &format!("{one}?role=boss"))
        .send()
        .await
        .unwrap();
    assert_admin_error(resp, 400, "bad_request").await;
    let resp = app.admin(M::DELETE, &one).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    let resp = app
        .admin(M::DELETE, &format!("{grants}/not-a-uuid"))
        .send()
        .await
        .unwrap();
    assert_admin_error(resp, 404, "not_found").await;
    let list = app.ok_json(app.admin(M::GET, &grants)).await;
    assert_eq!(list["grants"].as_array().unwrap().len(), 2);
    assert_eq!(audit_count(app, "grants.changed").await, 6);
}

#[tokio::test]
async fn a_scim_group_deleted_by_scim_or_with_its_directory_takes_its_grants() {
    let f = fixture().await;
    let app = &f.app;
    let grants = format!("{}/grants", f.product);
    for group in [&f.scim_a, &f.scim_b, &f.local] {
        created(app, &grants, json!({ "groupId": group, "role": "user" })).await;
    }
    let account = insert_account(app, f.org, "ada@acme.example").await;
    let grant_a = grant_id(&f, &f.scim_a, Role::User).await;
    let grant_local = grant_id(&f, &f.local, Role::User).await;
    app.store
        .replace_effective_access(
            f.org,
            &[account],
            &[(account, grant_a), (account, grant_local)],
        )
        .await
        .unwrap();

    let resp = app
        .scim(&f.dir_a, M::DELETE, &format!("/Groups/{}", f.scim_a))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let list = app.ok_json(app.admin(M::GET, &grants)).await;
    let names: Vec<&str> = list["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Sales", "jira-users"]);
    // The access it gave went with it; the other stays.
    let access = app
        .ok_json(app.admin(M::GET, &format!("/orgs/default/accounts/{account}/access")))
        .await;
    assert_eq!(access["access"].as_array().unwrap().len(), 1);
    assert_eq!(access["access"][0]["via"][0]["name"], "jira-users");

    let resp = app
        .admin(
            M::DELETE,
            &format!("/orgs/default/directories/{}", f.dir_b_id),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let list = app.ok_json(app.admin(M::GET, &grants)).await;
    assert_eq!(list["grants"].as_array().unwrap().len(), 1);
    assert_eq!(list["grants"][0]["name"], "jira-users");
}

#[tokio::test]
async fn default_groups_are_org_groups_and_new_accounts_join_them_when_switched_on() {
    let f = fixture().await;
    let app = &f.app;
    let settings = format!("{}/settings", f.product);
    let second = created(app, "/orgs/default/groups", json!({ "name": "everyone" })).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // A synced group is refused, and says why; nothing is written.
    let resp = app
        .admin(M::PUT, &settings)
        .json(&json!({ "newUsersGetAccess": true, "defaultGroups": [f.local, f.scim_a] }))
        .send()
        .await
        .unwrap();
    let message = assert_admin_error(resp, 409, "conflict").await;
    assert!(
        message.contains("synced from an identity provider cannot be a default group"),
        "{message}"
    );
    assert!(message.contains("collide with provisioning"), "{message}");
    let unknown = Uuid::new_v4();
    let resp = app
        .admin(M::PUT, &settings)
        .json(&json!({ "newUsersGetAccess": true, "defaultGroups": [unknown] }))
        .send()
        .await
        .unwrap();
    let message = assert_admin_error(resp, 404, "not_found").await;
    assert!(message.contains(&unknown.to_string()), "{message}");
    for body in [
        json!({ "newUsersGetAccess": true }),
        json!({ "newUsersGetAccess": "yes", "defaultGroups": [] }),
        json!({ "newUsersGetAccess": true, "defaultGroups": ["x"] }),
        json!({ "newUsersGetAccess": true, "defaultGroups": [], "extra": 1 }),
    ] {
        let resp = app
            .admin(M::PUT, &settings)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_admin_error(resp, 400, "bad_request").await;
    }
    let product = app.ok_json(app.admin(M::GET, &f.product)).await;
    assert_eq!(product["newUsersGetAccess"], false);
    assert_eq!(product["defaultGroups"], json!([]));

    // Switched off: new accounts join nothing.
    let product = app
        .ok_json(
            app.admin(M::PUT, &settings)
                .json(&json!({ "newUsersGetAccess": false, "defaultGroups": [f.local, second] })),
        )
        .await;
    assert_eq!(product["defaultGroups"], json!([f.local, second]));
    let early = insert_account(app, f.org, "early@acme.example").await;
    assert_eq!(
        app.store
            .join_default_groups(f.org, &[early])
            .await
            .unwrap(),
        0
    );

    let product = app
        .ok_json(app.admin(M::PUT, &settings).json(
            &json!({ "newUsersGetAccess": true, "defaultGroups": [f.local, second, f.local] }),
        ))
        .await;
    assert_eq!(product["newUsersGetAccess"], true);
    assert_eq!(product["defaultGroups"], json!([f.local, second]));
    let a = insert_account(app, f.org, "a@acme.example").await;
    let b = insert_account(app, f.org, "b@acme.example").await;
    // Another org's account joins nothing here.
    let other = create_org(app, "Other").await;
    let stranger = insert_account(app, other, "c@other.example").await;
    assert_eq!(
        app.store
            .join_default_groups(f.org, &[a, b, stranger])
            .await
            .unwrap(),
        4
    );
    // Again: already members, nothing added.
    assert_eq!(app.store.join_default_groups(f.org, &[a]).await.unwrap(), 0);
    let group = app
        .ok_json(app.admin(M::GET, &format!("/orgs/default/groups/{}", f.local)))
        .await;
    let members: Vec<&str> = group["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["email"].as_str().unwrap())
        .collect();
    assert_eq!(members, ["a@acme.example", "b@acme.example"]);

    // Deleting a default group takes it off the list.
    let resp = app
        .admin(M::DELETE, &format!("/orgs/default/groups/{second}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let product = app.ok_json(app.admin(M::GET, &f.product)).await;
    assert_eq!(product["defaultGroups"], json!([f.local]));
    assert_eq!(audit_count(app, "product.settings_changed").await, 2);
}

#[tokio::test]
async fn access_is_read_by_account_and_by_product_with_pages() {
    let f = fixture().await;
    let app = &f.app;
    let grants = format!("{}/grants", f.product);
    created(app, &grants, json!({ "groupId": f.scim_a, "role": "user" })).await;
    created(app, &grants, json!({ "groupId": f.local, "role": "user" })).await;
    created(app, &grants, json!({ "groupId": f.local, "role": "admin" })).await;
    let (via_scim, via_local, via_admin) = (
        grant_id(&f, &f.scim_a, Role::User).await,
        grant_id(&f, &f.local, Role::User).await,
        grant_id(&f, &f.local, Role::Admin).await,
    );
    let mut made = Vec::new();
    for i in 0..3 {
        let email = format!("u{i}@acme.example");
        made.push((insert_account(app, f.org, &email).await, email));
    }
    made.sort();
    let accounts: Vec<Uuid> = made.iter().map(|(id, _)| *id).collect();
    let (a, b, c) = (accounts[0], accounts[1], accounts[2]);
    app.store
        .replace_effective_access(
            f.org,
            &accounts,
            &[
                (a, via_scim),
                (a, via_local),
                (a, via_admin),
                (b, via_scim),
                (c, via_local),
            ],
        )
        .await
        .unwrap();

    let access = app
        .ok_json(app.admin(M::GET, &format!("/orgs/default/accounts/{a}/access")))
        .await;
    assert_eq!(access["accountId"], a.to_string());
    let entries = access["access"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{access}");
    assert_eq!(entries[0]["role"], "admin");
    assert_eq!(entries[0]["siteUrl"], "https://acme.atlassian.net");
    assert_eq!(entries[0]["product"], "jira-software");
    assert_eq!(entries[1]["role"], "user");
    let via: Vec<(&str, &str)> = entries[1]["via"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(via, [("Engineering", "scim"), ("jira-users", "org")]);
    assert_eq!(entries[1]["via"][0]["directoryId"], f.dir_a.id);

    // A product's users, one page at a time.
    let users = format!("{}/users", f.product);
    let page = app
        .ok_json(app.admin(M::GET, &format!("{users}?limit=2")))
        .await;
    let ids: Vec<&str> = page["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["accountId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [a.to_string(), b.to_string()]);
    assert_eq!(page["users"][0]["roles"].as_array().unwrap().len(), 2);
    assert_eq!(page["users"][1]["email"], made[1].1);
    assert_eq!(
        page["users"][1]["displayName"],
        format!("Name of {}", made[1].1)
    );
    assert_eq!(page["nextAfter"], b.to_string());
    let page = app
        .ok_json(app.admin(M::GET, &format!("{users}?limit=2&after={b}")))
        .await;
    assert_eq!(page["users"].as_array().unwrap().len(), 1);
    assert_eq!(page["users"][0]["accountId"], c.to_string());
    assert_eq!(page["users"][0]["roles"][0]["via"][0]["name"], "jira-users");
    assert_eq!(page["nextAfter"], Value::Null);
    for q in ["limit=0", "limit=1001", "limit=x", "after=nope"] {
        let resp = app
            .admin(M::GET, &format!("{users}?{q}"))
            .send()
            .await
            .unwrap();
        assert_admin_error(resp, 400, "bad_request").await;
    }

    // Recomputing a batch drops what is no longer given and keeps the
    // rest, with the time it was first given.
    let before = app
        .ok_json(app.admin(M::GET, &format!("/orgs/default/accounts/{a}/access")))
        .await;
    let first_granted = before["access"][1]["grantedAt"].clone();
    assert!(first_granted.is_string());
    app.store
        .replace_effective_access(f.org, &[a], &[(a, via_local)])
        .await
        .unwrap();
    let access = app
        .ok_json(app.admin(M::GET, &format!("/orgs/default/accounts/{a}/access")))
        .await;
    assert_eq!(access["access"].as_array().unwrap().len(), 1);
    assert_eq!(access["access"][0]["via"].as_array().unwrap().len(), 1);
    assert_eq!(access["access"][0]["via"][0]["name"], "jira-users");
    assert_eq!(access["access"][0]["grantedAt"], first_granted);

    // Removing c from the org group removes the access it gave at once.
    let resp = app
        .admin(
            M::POST,
            &format!("/orgs/default/groups/{}/members", f.local),
        )
        .json(&json!({ "accountIds": [c] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = app
        .admin(
            M::DELETE,
            &format!("/orgs/default/groups/{}/members/{c}", f.local),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let access = app
        .ok_json(app.admin(M::GET, &format!("/orgs/default/accounts/{c}/access")))
        .await;
    assert_eq!(access["access"], json!([]));

    // Revoking a grant removes the access it gave.
    let resp = app
        .admin(M::DELETE, &format!("{grants}/{}?role=user", f.scim_a))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let page = app.ok_json(app.admin(M::GET, &users)).await;
    let ids: Vec<&str> = page["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["accountId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [a.to_string()]);

    // Unknown account, another org's account, unknown product: 404.
    let other = create_org(app, "Other").await;
    let stranger = insert_account(app, other, "s@other.example").await;
    for path in [
        format!("/orgs/default/accounts/{}/access", Uuid::new_v4()),
        format!("/orgs/default/accounts/{stranger}/access"),
        "/orgs/default/accounts/nope/access".to_owned(),
        format!("/orgs/default/sites/{}/products/confluence/users", f.site),
        format!(
            "/orgs/default/sites/{}/products/jira-software/users",
            Uuid::new_v4()
        ),
    ] {
        let resp = app.admin(M::GET, &path).send().await.unwrap();
        assert_admin_error(resp, 404, "not_found").await;
    }

    // Deleting the site takes its products, grants and access with it.
    let resp = app
        .admin(M::DELETE, &format!("/orgs/default/sites/{}", f.site))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    for table in [
        "products",
        "product_grants",
        "effective_access",
        "product_default_groups",
    ] {
        let n = app
            .db()
            .count(&format!("SELECT COUNT(*) FROM {table}"))
            .await;
        assert_eq!(n, 0, "{table}");
    }
}

/// An account made for a new SCIM user joins the default groups; a user
/// that links to an existing account does not put it back in a group the
/// admin took it out of.
#[tokio::test]
async fn accounts_made_by_scim_creations_join_the_default_groups() {
    let f = fixture().await;
    let app = &f.app;
    let group_path = format!("/orgs/default/groups/{}", f.local);
    let members = || async {
        let group = app.ok_json(app.admin(M::GET, &group_path)).await;
        let mut ids: Vec<String> = group["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["accountId"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    let account_of = |user: &Value| {
        user["urn:scim:schemas:extension:atlassian-external:1.0"]["atlassianAccountId"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let with_email = |name: &str, email: &str| {
        let mut body = crate::helpers::user_body(name);
        body["emails"] = json!([{ "value": email, "primary": true }]);
        body
    };

    // Switched off: a new account joins nothing.
    app.create_user_from(&f.dir_a, &with_email("before", "before@acme.example"))
        .await;
    assert!(members().await.is_empty());

    app.ok_json(
        app.admin(M::PUT, &format!("{}/settings", f.product))
            .json(&json!({ "newUsersGetAccess": true, "defaultGroups": [f.local] })),
    )
    .await;
    // Created alone and together (a Bulk request's creations share
    // statements), with and without an email.
    let ann = app
        .create_user_from(&f.dir_a, &with_email("ann", "Ann@Acme.example"))
        .await;
    let no_email = app.create_user(&f.dir_a, "no-email").await;
    let ops: Vec<Value> = (0..5)
        .map(|i| {
            let body = with_email(&format!("bulk{i}"), &format!("bulk{i}@acme.example"));
            json!({ "method": "POST", "path": "/Users", "bulkId": format!("b{i}"), "data": body })
        })
        .collect();
    let response = app
        .ok_json(app.scim(&f.dir_a, M::POST, "/Bulk").json(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "Operations": ops,
        })))
        .await;
    let mut expected = vec![account_of(&ann), account_of(&no_email)];
    for op in response["Operations"].as_array().unwrap() {
        assert_eq!(op["status"], "201", "{op}");
        let location = op["location"].as_str().unwrap();
        let id = location.rsplit('/').next().unwrap();
        let user = app.get_json(&f.dir_a, &format!("/Users/{id}")).await;
        expected.push(account_of(&user));
    }
    expected.sort();
    assert_eq!(members().await, expected);

    // The admin takes Ann out; Ann provisioned by a second directory links
    // to her account, which stays out.
    let resp = app
        .admin(
            M::DELETE,
            &format!("{group_path}/members/{}", account_of(&ann)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let google = app.create_directory("Google").await;
    let again = app
        .create_user_from(&google, &with_email("ann-again", "ann@acme.example"))
        .await;
    assert_eq!(account_of(&again), account_of(&ann));
    assert!(!members().await.contains(&account_of(&ann)));
}
