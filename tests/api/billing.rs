//! Billable users: distinct active accounts with effective access, per
//! site and product and in all, read from the access table at request
//! time. The access rows are written through the store, as the sync
//! engine writes them (with the engine off, so it does not rewrite them);
//! `access_audit.rs` has real runs write them.

use serde_json::{json, Value};
use uuid::Uuid;

use scimd::directory::access::{ProductKey, Role};

use crate::accounts::account_of;
use crate::helpers::{spawn_app, TestApp, M};
use crate::sites::{assert_admin_error, create_org, created, default_org, insert_account};
use crate::sync::{put_settings, settings};

async fn billing(app: &TestApp, org: &str) -> Value {
    app.ok_json(app.admin(M::GET, &format!("/orgs/{org}/billing")))
        .await
}

/// `(site name, [(product key, billable users)])` of each site, in order.
fn shape(billing: &Value) -> Vec<(String, Vec<(String, i64)>)> {
    billing["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let products = s["products"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        p["productKey"].as_str().unwrap().to_owned(),
                        p["billableUsers"].as_i64().unwrap(),
                    )
                })
                .collect();
            (s["siteName"].as_str().unwrap().to_owned(), products)
        })
        .collect()
}

fn site(name: &str, products: &[(&str, i64)]) -> (String, Vec<(String, i64)>) {
    (
        name.to_owned(),
        products
            .iter()
            .map(|(k, n)| ((*k).to_owned(), *n))
            .collect(),
    )
}

/// A site of `org` with `products`; its id.
async fn site_with(app: &TestApp, org: &str, name: &str, products: &[&str]) -> Uuid {
    let url = format!("https://{}.atlassian.net", name.to_lowercase());
    let site = created(
        app,
        &format!("/orgs/{org}/sites"),
        json!({ "name": name, "url": url }),
    )
    .await;
    let id = site["id"].as_str().unwrap().to_owned();
    for key in products {
        created(
            app,
            &format!("/orgs/{org}/sites/{id}/products"),
            json!({ "key": key }),
        )
        .await;
    }
    id.parse().unwrap()
}

/// Grants `group` `role` on a product; the grant's id.
async fn grant(app: &TestApp, org: &str, site: Uuid, key: &str, group: &str, role: Role) -> Uuid {
    created(
        app,
        &format!("/orgs/{org}/sites/{site}/products/{key}/grants"),
        json!({ "groupId": group, "role": role.as_str() }),
    )
    .await;
    app.store
        .grant_id(
            site,
            &ProductKey::parse(key).unwrap(),
            group.parse().unwrap(),
            role,
        )
        .await
        .unwrap()
        .unwrap()
}

async fn org_group(app: &TestApp, org: &str, name: &str) -> String {
    created(app, &format!("/orgs/{org}/groups"), json!({ "name": name })).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn set_active(app: &TestApp, account: Uuid, active: bool) {
    let action = if active { "reactivate" } else { "deactivate" };
    let view = app
        .ok_json(app.admin(
            M::POST,
            &format!("/orgs/default/accounts/{account}/{action}"),
        ))
        .await;
    assert_eq!(view["active"], active);
}

#[tokio::test]
async fn billable_users_are_distinct_active_accounts_per_product_and_in_all() {
    let app = spawn_app().await;
    let org = default_org(&app).await;
    let okta = app.create_directory("Okta").await;
    // The access rows are this test's own: the sync engine leaves them be.
    let mut off = settings("scheduled", json!({"type": "all"}), json!({"type": "all"}));
    off["enabled"] = json!(false);
    put_settings(&app, &okta, &off).await;
    let mut accounts = Vec::new();
    for name in ["ann", "bob", "cid", "dan"] {
        let user = app
            .create_user(&okta, &format!("{name}@corp.example"))
            .await;
        accounts.push(account_of(&user).parse::<Uuid>().unwrap());
    }
    let (ann, bob, cid, dan) = (accounts[0], accounts[1], accounts[2], accounts[3]);
    let engineering = app.create_group(&okta, "Engineering", &[]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let jira_users = org_group(&app, "default", "jira-users").await;

    let acme = site_with(
        &app,
        "default",
        "Acme",
        &["jira-software", "confluence", "bitbucket"],
    )
    .await;
    let beta = site_with(&app, "default", "Beta", &["jira-software"]).await;
    site_with(&app, "default", "Gamma", &[]).await;

    let g = "default";
    let acme_jira_eng = grant(&app, g, acme, "jira-software", &engineering, Role::User).await;
    let acme_jira_user = grant(&app, g, acme, "jira-software", &jira_users, Role::User).await;
    let acme_jira_admin = grant(&app, g, acme, "jira-software", &jira_users, Role::Admin).await;
    let acme_wiki_eng = grant(&app, g, acme, "confluence", &engineering, Role::User).await;
    let beta_jira_user = grant(&app, g, beta, "jira-software", &jira_users, Role::User).await;

    // Before any access: every product is listed, with no one to bill.
    let empty = billing(&app, "default").await;
    assert_eq!(empty["total"], 0);
    assert_eq!(
        shape(&empty),
        [
            site(
                "Acme",
                &[("bitbucket", 0), ("confluence", 0), ("jira-software", 0)]
            ),
            site("Beta", &[("jira-software", 0)]),
            site("Gamma", &[]),
        ]
    );

    // Ann has Acme's Jira through three grants (two roles), and its
    // Confluence; Bob Acme's Jira; Cid and Dan Beta's Jira.
    app.store
        .replace_effective_access(
            org,
            &accounts,
            &[
                (ann, acme_jira_eng),
                (ann, acme_jira_user),
                (ann, acme_jira_admin),
                (ann, acme_wiki_eng),
                (bob, acme_jira_eng),
                (cid, beta_jira_user),
                (dan, beta_jira_user),
            ],
        )
        .await
        .unwrap();
    let all = billing(&app, "default").await;
    assert_eq!(all["total"], 4, "{all}");
    assert_eq!(
        shape(&all),
        [
            site(
                "Acme",
                &[("bitbucket", 0), ("confluence", 1), ("jira-software", 2)]
            ),
            site("Beta", &[("jira-software", 2)]),
            site("Gamma", &[]),
        ]
    );
    let acme_view = &all["sites"][0];
    assert_eq!(acme_view["siteId"], acme.to_string());
    assert_eq!(acme_view["siteUrl"], "https://acme.atlassian.net");
    let computed = all["computedAt"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(computed).is_ok(),
        "{computed}"
    );

    // A deactivated account loses its access, and its bill, at once.
    set_active(&app, dan, false).await;
    let after = billing(&app, "default").await;
    assert_eq!(after["total"], 3);
    assert_eq!(after["sites"][1]["products"][0]["billableUsers"], 1);
    // An inactive account is not billed even while access rows name it.
    app.store
        .replace_effective_access(org, &[dan], &[(dan, beta_jira_user)])
        .await
        .unwrap();
    assert_eq!(billing(&app, "default").await["total"], 3);
    set_active(&app, dan, true).await;
    assert_eq!(billing(&app, "default").await["total"], 4);

    // The counts follow the access table at once: a revoked grant takes
    // its access, and its billable users, with it.
    let resp = app
        .admin(
            M::DELETE,
            &format!("/orgs/default/sites/{beta}/products/jira-software/grants/{jira_users}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let revoked = billing(&app, "default").await;
    assert_eq!(revoked["total"], 2);
    assert_eq!(revoked["sites"][1]["products"][0]["billableUsers"], 0);
    // Ann keeps Jira through Engineering when jira-users' grants go.
    app.store
        .replace_effective_access(org, &[ann], &[(ann, acme_jira_eng)])
        .await
        .unwrap();
    assert_eq!(
        shape(&billing(&app, "default").await)[0],
        site(
            "Acme",
            &[("bitbucket", 0), ("confluence", 0), ("jira-software", 2)]
        )
    );
}

#[tokio::test]
async fn another_orgs_access_is_its_own_and_an_org_with_nothing_counts_zero() {
    let app = spawn_app().await;
    let other = create_org(&app, "Other").await;
    let other_path = other.to_string();
    let before = billing(&app, &other_path).await;
    assert_eq!(before["total"], 0);
    assert_eq!(before["sites"], json!([]));

    let zeta = site_with(&app, &other_path, "Zeta", &["confluence"]).await;
    let group = org_group(&app, &other_path, "wiki").await;
    let wiki = grant(&app, &other_path, zeta, "confluence", &group, Role::User).await;
    let zed = insert_account(&app, other, "zed@other.example").await;
    let amy = insert_account(&app, other, "amy@other.example").await;
    app.store
        .replace_effective_access(other, &[zed, amy], &[(zed, wiki), (amy, wiki)])
        .await
        .unwrap();
    let theirs = billing(&app, &other_path).await;
    assert_eq!(theirs["total"], 2);
    assert_eq!(shape(&theirs), [site("Zeta", &[("confluence", 2)])]);

    // The default org sees none of it.
    let ours = billing(&app, "default").await;
    assert_eq!(ours["total"], 0);
    assert_eq!(ours["sites"], json!([]));

    // An account of the default org cannot be given the other org's
    // product: the pair is ignored.
    let org = default_org(&app).await;
    let stranger = insert_account(&app, org, "s@corp.example").await;
    app.store
        .replace_effective_access(org, &[stranger], &[(stranger, wiki)])
        .await
        .unwrap();
    assert_eq!(billing(&app, &other_path).await["total"], 2);
    assert_eq!(billing(&app, "default").await["total"], 0);

    for missing in [Uuid::new_v4().to_string(), "nope".to_owned()] {
        let resp = app
            .admin(M::GET, &format!("/orgs/{missing}/billing"))
            .send()
            .await
            .unwrap();
        assert_admin_error(resp, 404, "not_found").await;
    }
}
