//! `scimd seed`: what it loads must read through SCIM and the admin API as
//! if an identity provider and an admin had made it, so benchmarks of the
//! sync engine measure the work a real directory gives it.

use serde_json::{json, Value};
use uuid::Uuid;

use scimd::audit::AuditContext;
use scimd::store::seed::{SeedPlan, SEED_PRODUCT, SEED_SITE, SEED_SITE_URL};
use scimd::store::StoreError;

use crate::helpers::{spawn_app, TestApp, TestDirectory, M};

const EXTENSION: &str = "urn:scim:schemas:extension:atlassian-external:1.0";

fn plan(users: u64, groups: u64, members_per_group: usize) -> SeedPlan {
    SeedPlan {
        users,
        groups,
        members_per_group,
        ..SeedPlan::default()
    }
}

async fn seed(app: &TestApp, dir: &TestDirectory, plan: &SeedPlan) -> scimd::store::seed::Seeded {
    app.store
        .seed(dir.id.parse().unwrap(), plan, &AuditContext::system("test"))
        .await
        .unwrap()
}

fn account_of(user: &Value) -> &str {
    user[EXTENSION]["atlassianAccountId"].as_str().unwrap()
}

#[tokio::test]
async fn seeded_users_are_linked_to_accounts_as_scim_users_are() {
    let app = spawn_app().await;
    let other = app.create_directory("Entra").await;
    // An account the org already has (through another directory), made
    // inactive by the admin: the seeded user with its email takes it, and
    // makes it active again, as a creation through SCIM does.
    let existing = app.create_user(&other, "seed-3@example.com").await;
    let existing_account = account_of(&existing).to_owned();
    app.ok_json(app.admin(
        M::POST,
        &format!("/orgs/default/accounts/{existing_account}/deactivate"),
    ))
    .await;
    // A product whose new users join a group of the org.
    let site = app
        .ok_json_created(
            app.admin(M::POST, "/orgs/default/sites")
                .json(&json!({ "name": "Acme", "url": "https://acme.atlassian.net" })),
        )
        .await;
    let site = site["id"].as_str().unwrap();
    app.ok_json_created(
        app.admin(M::POST, &format!("/orgs/default/sites/{site}/products"))
            .json(&json!({ "key": "confluence" })),
    )
    .await;
    let everyone = app
        .ok_json_created(
            app.admin(M::POST, "/orgs/default/groups")
                .json(&json!({ "name": "confluence-users" })),
        )
        .await;
    let everyone = everyone["id"].as_str().unwrap();
    app.ok_json(
        app.admin(
            M::PUT,
            &format!("/orgs/default/sites/{site}/products/confluence/settings"),
        )
        .json(&json!({ "newUsersGetAccess": true, "defaultGroups": [everyone] })),
    )
    .await;

    let dir = app.create_directory("Okta").await;
    let seeded = seed(&app, &dir, &plan(20, 2, 5)).await;
    assert_eq!(seeded.user_ids.len(), 20);

    // Each seeded user names its account as a SCIM user does.
    let created = app.create_user(&dir, "ada@example.com").await;
    let user = app
        .get_json(&dir, &format!("/Users/{}", seeded.user_ids[7]))
        .await;
    assert_eq!(user["schemas"], created["schemas"]);
    assert_eq!(user["userName"], "seed-7@example.com");
    let account = account_of(&user);
    let detail = app
        .ok_json(app.admin(M::GET, &format!("/orgs/default/accounts/{account}")))
        .await;
    assert_eq!(detail["email"], "seed-7@example.com");
    assert_eq!(detail["emailDomain"], "example.com");
    assert_eq!(detail["displayName"], "Seed User 7");
    assert_eq!(detail["active"], true);
    assert_eq!(detail["links"][0]["userId"], seeded.user_ids[7].to_string());
    assert_eq!(detail["links"][0]["directoryId"], dir.id);
    // Found by SCIM's filter on the extension, as Atlassian's clients ask.
    let found = app
        .get_json(
            &dir,
            &format!("/Users?filter={EXTENSION}:atlassianAccountId%20eq%20%22{account}%22"),
        )
        .await;
    assert_eq!(found["totalResults"], 1, "{found}");

    // The org's account with the email is taken, and active again.
    let third = app
        .get_json(&dir, &format!("/Users/{}", seeded.user_ids[3]))
        .await;
    assert_eq!(account_of(&third), existing_account);
    let detail = app
        .ok_json(app.admin(
            M::GET,
            &format!("/orgs/default/accounts/{existing_account}"),
        ))
        .await;
    assert_eq!(detail["active"], true);
    assert_eq!(detail["links"].as_array().unwrap().len(), 2);

    // Every seeded user is linked; the directory's accounts are one per
    // user, the 19 new ones in the product's default group.
    let unlinked = app
        .ok_json(app.admin(M::GET, "/orgs/default/unlinked-users"))
        .await;
    assert_eq!(unlinked["users"], json!([]));
    let accounts = app
        .ok_json(app.admin(
            M::GET,
            &format!("/orgs/default/accounts?directoryId={}&limit=1000", dir.id),
        ))
        .await;
    assert_eq!(accounts["accounts"].as_array().unwrap().len(), 21);
    assert_eq!(
        app.db()
            .count("SELECT COUNT(*) FROM users WHERE account_id IS NULL")
            .await,
        0
    );
    let group = app
        .ok_json(app.admin(M::GET, &format!("/orgs/default/groups/{everyone}")))
        .await;
    // The 19 seeded accounts made new, and ada's.
    assert_eq!(group["members"].as_array().unwrap().len(), 20, "{group}");
}

#[tokio::test]
async fn seeded_grants_and_nesting_read_as_the_admin_api_and_scim_make_them() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let seeded = seed(
        &app,
        &dir,
        &SeedPlan {
            grants: 3,
            nesting: 4,
            ..plan(40, 6, 5)
        },
    )
    .await;
    let g = &seeded.group_ids;
    assert_eq!(g.len(), 6);

    // The site and product, made because the org had neither, and the
    // first three groups granted.
    let sites = app.ok_json(app.admin(M::GET, "/orgs/default/sites")).await;
    let sites = sites["sites"].as_array().unwrap();
    assert_eq!(sites.len(), 1);
    assert_eq!(sites[0]["name"], SEED_SITE);
    assert_eq!(sites[0]["url"], SEED_SITE_URL);
    let site = sites[0]["id"].as_str().unwrap();
    assert_eq!(Some(site.parse::<Uuid>().unwrap()), seeded.site_id);
    let grants = app
        .ok_json(app.admin(
            M::GET,
            &format!("/orgs/default/sites/{site}/products/{SEED_PRODUCT}/grants"),
        ))
        .await;
    let grants = grants["grants"].as_array().unwrap();
    let granted: Vec<(&str, &str, &str, &str)> = grants
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap(),
                g["kind"].as_str().unwrap(),
                g["role"].as_str().unwrap(),
                g["directoryId"].as_str().unwrap(),
            )
        })
        .collect();
    let d = dir.id.as_str();
    assert_eq!(
        granted,
        [
            ("seed-group-0", "scim", "user", d),
            ("seed-group-1", "scim", "user", d),
            ("seed-group-2", "scim", "user", d),
        ]
    );

    // Chains of four: 1 in 0, 2 in 1, 3 in 2; then 5 in 4.
    let members_of = |k: usize| {
        let path = format!("/Groups/{}", g[k]);
        let app = &app;
        let dir = &dir;
        async move {
            let group = app.get_json(dir, &path).await;
            let mut groups: Vec<String> = Vec::new();
            let mut users = 0;
            for m in group["members"].as_array().unwrap() {
                match m["type"].as_str().unwrap() {
                    "Group" => groups.push(m["value"].as_str().unwrap().to_owned()),
                    _ => users += 1,
                }
            }
            (groups, users)
        }
    };
    for (parent, child) in [(0, 1), (1, 2), (2, 3), (4, 5)] {
        assert_eq!(
            members_of(parent).await,
            (vec![g[child].to_string()], 5),
            "group {parent}"
        );
    }
    assert_eq!(members_of(3).await, (vec![], 5));
    assert_eq!(
        seeded.nested,
        [(g[0], g[1]), (g[1], g[2]), (g[2], g[3]), (g[4], g[5])]
    );
    // A nested group is filtered for as SCIM writes one.
    let filter = "/Groups?filter=members%5Btype%20eq%20%22Group%22%5D&attributes=displayName";
    let nesting = app.get_json(&dir, filter).await;
    assert_eq!(nesting["totalResults"], 4, "{nesting}");

    // A second directory of the org seeded with grants reuses the site
    // and its product.
    let other = app.create_directory("Entra").await;
    let again = seed(
        &app,
        &other,
        &SeedPlan {
            grants: 1,
            first: 1_000,
            ..plan(5, 1, 5)
        },
    )
    .await;
    assert_eq!(again.site_id, seeded.site_id);
    let grants = app
        .ok_json(app.admin(
            M::GET,
            &format!("/orgs/default/sites/{site}/products/{SEED_PRODUCT}/grants"),
        ))
        .await;
    assert_eq!(grants["grants"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn a_plan_it_cannot_load_is_refused_before_anything_is_written() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let id: Uuid = dir.id.parse().unwrap();
    let audit = AuditContext::system("test");
    for (bad, says) in [
        (
            SeedPlan {
                grants: 7,
                ..plan(10, 6, 2)
            },
            "--grants 7",
        ),
        (
            SeedPlan {
                nesting: 5,
                ..plan(10, 6, 2)
            },
            "nest at most 4",
        ),
    ] {
        match app.store.seed(id, &bad, &audit).await {
            Err(StoreError::Refused(why)) => assert!(why.contains(says), "{why}"),
            other => panic!("{says}: {:?}", other.map(|s| s.steps)),
        }
    }
    match app.store.seed(Uuid::new_v4(), &plan(1, 0, 0), &audit).await {
        Err(StoreError::Missing(why)) => assert!(why.starts_with("no directory"), "{why}"),
        other => panic!("{:?}", other.map(|s| s.steps)),
    }
    for table in ["users", "groups", "accounts", "sites"] {
        let n = app
            .db()
            .count(&format!("SELECT COUNT(*) FROM {table}"))
            .await;
        assert_eq!(n, 0, "{table}");
    }
}
