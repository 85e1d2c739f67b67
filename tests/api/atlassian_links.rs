//! The admin API's accounts routes and Atlassian's user provisioning
//! admin routes (`/admin/user-provisioning/v1/org/{orgId}/…`).

use reqwest::{Method, RequestBuilder, Response};
use serde_json::{json, Value};

use crate::accounts::{account_active, account_of, body_with, default_org};
use crate::helpers::{spawn_app, TestApp, TestDirectory, ADMIN_TOKEN, M};

const NOBODY: &str = "00000000-0000-4000-8000-000000000000";

fn atlassian(app: &TestApp, method: Method, path: &str) -> RequestBuilder {
    app.client
        .request(
            method,
            format!(
                "{}/admin/user-provisioning/v1/org/default{path}",
                app.address
            ),
        )
        .bearer_auth(ADMIN_TOKEN)
}

async fn json_of(resp: Response, status: u16) -> Value {
    assert_eq!(resp.status(), status, "{}", resp.url());
    match status {
        204 => Value::Null,
        _ => resp.json().await.unwrap(),
    }
}

async fn admin_error(resp: Response, status: u16, code: &str) -> Value {
    let body = json_of(resp, status).await;
    assert_eq!(body["error"], code, "{body}");
    assert_eq!(body["status"], status, "{body}");
    body
}

async fn account_view(app: &TestApp, id: &str) -> Value {
    let resp = app
        .admin(M::GET, &format!("/orgs/default/accounts/{id}"))
        .send()
        .await
        .unwrap();
    json_of(resp, 200).await
}

async fn events(app: &TestApp, action: &str) -> Vec<Value> {
    let resp = app
        .admin(
            M::GET,
            &format!("/orgs/default/reports/provisioning?action={action}"),
        )
        .send()
        .await
        .unwrap();
    let body = json_of(resp, 200).await;
    body["events"].as_array().cloned().unwrap_or_default()
}

/// Two directories, ann in both (one account), bob in one; a group.
async fn two_directories(app: &TestApp) -> (TestDirectory, TestDirectory, Value, Value, Value) {
    let okta = app.create_directory("Okta").await;
    let entra = app.create_directory("Entra").await;
    let ann = app.create_user(&okta, "ann@corp.example").await;
    let ann2 = app
        .create_user_from(&entra, &body_with("ann", Some("ann@corp.example"), None))
        .await;
    let bob = app.create_user(&okta, "bob@gmail.example").await;
    (okta, entra, ann, ann2, bob)
}

#[tokio::test]
async fn an_account_is_read_with_its_links_groups_and_type() {
    let app = spawn_app().await;
    let org = default_org(&app).await;
    app.store
        .put_verified_domain(org, "corp.example")
        .await
        .unwrap();
    let (okta, entra, ann, ann2, bob) = two_directories(&app).await;
    let group = app
        .create_group(&okta, "Engineers", &[ann["id"].as_str().unwrap()])
        .await;
    let view = account_view(&app, &account_of(&ann)).await;
    assert_eq!(view["email"], "ann@corp.example");
    assert_eq!(view["emailDomain"], "corp.example");
    assert_eq!(view["managed"], true);
    assert_eq!(view["type"], "managed");
    assert_eq!(view["active"], true);
    assert_eq!(view["emailConflicts"], json!([]));
    let links = view["links"].as_array().unwrap();
    assert_eq!(links.len(), 2);
    assert_eq!(links[0]["directoryId"], okta.id);
    assert_eq!(links[0]["directoryName"], "Okta");
    assert_eq!(links[0]["userId"], ann["id"]);
    assert_eq!(links[0]["userName"], "ann@corp.example");
    assert_eq!(links[0]["email"], "ann@corp.example");
    assert_eq!(links[0]["active"], true);
    assert_eq!(links[1]["directoryId"], entra.id);
    assert_eq!(links[1]["userId"], ann2["id"]);
    assert_eq!(
        view["groups"],
        json!([{ "id": group["id"], "displayName": "Engineers", "directoryId": okta.id }])
    );
    let view = account_view(&app, &account_of(&bob)).await;
    assert_eq!(view["managed"], false);
    assert_eq!(view["type"], "external");
    // Unknown, or not an id: 404.
    for id in [NOBODY, "not-an-id"] {
        let resp = app
            .admin(M::GET, &format!("/orgs/default/accounts/{id}"))
            .send()
            .await
            .unwrap();
        admin_error(resp, 404, "not_found").await;
    }
}

#[tokio::test]
async fn email_conflicts_show_on_the_account() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let ann = app.create_user(&dir, "ann@corp.example").await;
    let resp = app
        .scim(
            &dir,
            M::PATCH,
            &format!("/Users/{}", ann["id"].as_str().unwrap()),
        )
        .json(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{ "op": "replace", "path": "emails",
                "value": [{ "value": "Ann@Other.example", "primary": true }] }],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let view = account_view(&app, &account_of(&ann)).await;
    let conflicts = view["emailConflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 1, "{view}");
    assert_eq!(conflicts[0]["directoryId"], dir.id);
    assert_eq!(conflicts[0]["userId"], ann["id"]);
    assert_eq!(conflicts[0]["scimEmail"], "ann@other.example");
    assert_eq!(conflicts[0]["accountEmail"], "ann@corp.example");
    assert_eq!(conflicts[0]["reason"], "domainNotVerified");
    assert!(conflicts[0]["recordedAt"].as_str().is_some());
}

#[tokio::test]
async fn accounts_are_listed_filtered_and_paged() {
    let app = spawn_app().await;
    let org = default_org(&app).await;
    app.store
        .put_verified_domain(org, "corp.example")
        .await
        .unwrap();
    let (okta, entra, ann, _ann2, bob) = two_directories(&app).await;
    let cid = app.create_user(&entra, "cid@corp.example").await;
    let list = |query: &'static str| {
        let app = &app;
        async move {
            let resp = app
                .admin(M::GET, &format!("/orgs/default/accounts{query}"))
                .send()
                .await
                .unwrap();
            json_of(resp, 200).await
        }
    };
    fn ids(body: &Value) -> Vec<&str> {
        body["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap())
            .collect()
    }
    let (ann, bob, cid) = (account_of(&ann), account_of(&bob), account_of(&cid));
    let (ann, bob, cid) = (ann.as_str(), bob.as_str(), cid.as_str());
    assert_eq!(ids(&list("").await), [ann, bob, cid]);
    assert_eq!(ids(&list("?type=managed").await), [ann, cid]);
    assert_eq!(ids(&list("?type=external").await), [bob]);
    assert_eq!(ids(&list("?email=ANN").await), [ann]);
    assert_eq!(ids(&list("?email=bob@gmail.example").await), [bob]);
    assert_eq!(
        ids(&list("?email=%25").await),
        Vec::<&str>::new(),
        "% is literal"
    );
    let entra_only = format!("?directoryId={}", entra.id);
    let resp = app
        .admin(M::GET, &format!("/orgs/default/accounts{entra_only}"))
        .send()
        .await
        .unwrap();
    assert_eq!(ids(&json_of(resp, 200).await), [ann, cid]);
    let _ = okta;
    // Deactivated: the status filter sees it.
    let resp = app
        .admin(M::POST, &format!("/orgs/default/accounts/{bob}/deactivate"))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(resp, 200).await["active"], false);
    assert_eq!(ids(&list("?status=inactive").await), [bob]);
    assert_eq!(ids(&list("?status=active").await), [ann, cid]);
    // Pages of one, by cursor.
    let first = list("?limit=1").await;
    assert_eq!(ids(&first), [ann]);
    let cursor = first["nextCursor"].as_str().unwrap().to_owned();
    let resp = app
        .admin(M::GET, "/orgs/default/accounts")
        .query(&[("limit", "2"), ("cursor", cursor.as_str())])
        .send()
        .await
        .unwrap();
    let second = json_of(resp, 200).await;
    assert_eq!(ids(&second), [bob, cid]);
    assert!(second.get("nextCursor").is_none());
    // Bad input: 400.
    for query in [
        "?status=maybe",
        "?type=other",
        "?limit=0",
        "?limit=1001",
        "?cursor=nope",
        "?directoryId=x",
        "?colour=red",
    ] {
        let resp = app
            .admin(M::GET, &format!("/orgs/default/accounts{query}"))
            .send()
            .await
            .unwrap();
        admin_error(resp, 400, "bad_request").await;
    }
    let resp = app
        .admin(M::GET, &format!("/orgs/{NOBODY}/accounts"))
        .send()
        .await
        .unwrap();
    admin_error(resp, 404, "not_found").await;
}

#[tokio::test]
async fn deactivate_and_reactivate_are_audited() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let ann = app.create_user(&dir, "ann@corp.example").await;
    let account = account_of(&ann);
    let resp = app
        .admin(
            M::POST,
            &format!("/orgs/default/accounts/{account}/deactivate"),
        )
        .send()
        .await
        .unwrap();
    let view = json_of(resp, 200).await;
    assert_eq!(view["active"], false);
    assert!(!account_active(&app, &account).await);
    let resp = app
        .admin(
            M::POST,
            &format!("/orgs/default/accounts/{account}/reactivate"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(resp, 200).await["active"], true);
    assert!(account_active(&app, &account).await);
    let deactivated = events(&app, "account.deactivated").await;
    assert_eq!(deactivated.len(), 1);
    assert_eq!(deactivated[0]["targetType"], "account");
    assert_eq!(deactivated[0]["targetId"], account);
    assert_eq!(events(&app, "account.reactivated").await.len(), 1);
    for action in ["deactivate", "reactivate"] {
        let resp = app
            .admin(
                M::POST,
                &format!("/orgs/default/accounts/{NOBODY}/{action}"),
            )
            .send()
            .await
            .unwrap();
        admin_error(resp, 404, "not_found").await;
    }
}

#[tokio::test]
async fn scim_links_of_an_account_and_of_an_email() {
    let app = spawn_app().await;
    let (okta, entra, ann, ann2, _bob) = two_directories(&app).await;
    let account = account_of(&ann);
    let org = default_org(&app).await.to_string();
    let resp = atlassian(&app, M::GET, &format!("/user/{account}/get-scim-links"))
        .send()
        .await
        .unwrap();
    let body = json_of(resp, 200).await;
    assert_eq!(
        body,
        json!({ "scimLinks": [
            { "scimUserId": ann["id"], "atlassianAccountId": account, "directoryId": okta.id, "orgId": org },
            { "scimUserId": ann2["id"], "atlassianAccountId": account, "directoryId": entra.id, "orgId": org },
        ] })
    );
    let resp = atlassian(&app, M::POST, "/get-scim-links-for-email")
        .json(&json!({ "email": "ANN@corp.example" }))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(resp, 200).await, body);
    let resp = atlassian(&app, M::POST, "/get-scim-links-for-email")
        .json(&json!({ "email": "nobody@corp.example" }))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(resp, 200).await, json!({ "scimLinks": [] }));
    for bad in [
        json!({}),
        json!({ "email": "" }),
        json!({ "email": 5 }),
        json!([]),
    ] {
        let resp = atlassian(&app, M::POST, "/get-scim-links-for-email")
            .json(&bad)
            .send()
            .await
            .unwrap();
        admin_error(resp, 400, "bad_request").await;
    }
    let resp = atlassian(&app, M::GET, &format!("/user/{NOBODY}/get-scim-links"))
        .send()
        .await
        .unwrap();
    admin_error(resp, 404, "not_found").await;
    // Without the admin token: 401.
    let resp = app
        .client
        .get(format!(
            "{}/admin/user-provisioning/v1/org/default/user/{account}/get-scim-links",
            app.address
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn unlink_then_relink_a_scim_record() {
    let app = spawn_app().await;
    let (okta, _entra, ann, _ann2, bob) = two_directories(&app).await;
    let account = account_of(&ann);
    let ann_id = ann["id"].as_str().unwrap();
    let path = format!("/scimDirectoryId/{}/scimUserId/{ann_id}/unlink", okta.id);
    let resp = atlassian(&app, M::PATCH, &path).send().await.unwrap();
    json_of(resp, 204).await;
    // The record stays, without the extension; the account stays too.
    let user = app.get_json(&okta, &format!("/Users/{ann_id}")).await;
    assert!(user.get(crate::accounts::EXT).is_none(), "{user}");
    assert!(!user["schemas"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s == crate::accounts::EXT));
    assert!(account_active(&app, &account).await);
    assert_eq!(events(&app, "account.unlinked").await.len(), 1);
    // Listed as unlinked, and by email with no account.
    let resp = app
        .admin(M::GET, "/orgs/default/unlinked-users")
        .send()
        .await
        .unwrap();
    let unlinked = json_of(resp, 200).await;
    assert_eq!(unlinked["users"].as_array().unwrap().len(), 1);
    assert_eq!(unlinked["users"][0]["userId"], ann_id);
    assert_eq!(unlinked["users"][0]["directoryName"], "Okta");
    let resp = atlassian(&app, M::POST, "/get-scim-links-for-email")
        .json(&json!({ "email": "ann@corp.example" }))
        .send()
        .await
        .unwrap();
    let links = json_of(resp, 200).await;
    assert_eq!(links["scimLinks"][0]["atlassianAccountId"], Value::Null);
    // Relinked, to bob's account this time.
    let bob_account = account_of(&bob);
    let relink = format!(
        "/orgs/default/directories/{}/users/{ann_id}/account",
        okta.id
    );
    let resp = app
        .admin(M::PUT, &relink)
        .json(&json!({ "accountId": bob_account }))
        .send()
        .await
        .unwrap();
    let linked = json_of(resp, 200).await;
    assert_eq!(linked["accountId"], bob_account);
    assert_eq!(linked["userId"], ann_id);
    let user = app.get_json(&okta, &format!("/Users/{ann_id}")).await;
    assert_eq!(account_of(&user), bob_account);
    assert_eq!(events(&app, "account.relinked").await.len(), 1);
    let resp = app
        .admin(M::GET, "/orgs/default/unlinked-users")
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(resp, 200).await["users"], json!([]));
    // Unknown account, user or directory: 404; a bad body: 400.
    for (path, body) in [
        (relink.clone(), json!({ "accountId": NOBODY })),
        (
            format!(
                "/orgs/default/directories/{}/users/{NOBODY}/account",
                okta.id
            ),
            json!({ "accountId": bob_account }),
        ),
        (
            format!("/orgs/default/directories/{NOBODY}/users/{ann_id}/account"),
            json!({ "accountId": bob_account }),
        ),
    ] {
        let resp = app.admin(M::PUT, &path).json(&body).send().await.unwrap();
        admin_error(resp, 404, "not_found").await;
    }
    for body in [json!({}), json!({ "accountId": "x" })] {
        let resp = app.admin(M::PUT, &relink).json(&body).send().await.unwrap();
        admin_error(resp, 400, "bad_request").await;
    }
    let path = format!("/scimDirectoryId/{}/scimUserId/{NOBODY}/unlink", okta.id);
    let resp = atlassian(&app, M::PATCH, &path).send().await.unwrap();
    admin_error(resp, 404, "not_found").await;
    let resp = atlassian(&app, M::PATCH, "/scimDirectoryId/x/scimUserId/y/unlink")
        .send()
        .await
        .unwrap();
    admin_error(resp, 404, "not_found").await;
    // Paging of unlinked users: bad input is 400.
    let resp = app
        .admin(M::GET, "/orgs/default/unlinked-users?limit=0")
        .send()
        .await
        .unwrap();
    admin_error(resp, 400, "bad_request").await;
}

#[tokio::test]
async fn unlinked_users_are_paged() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let user = app.create_user(&dir, &format!("u{n}@corp.example")).await;
        let id = user["id"].as_str().unwrap().to_owned();
        let path = format!("/scimDirectoryId/{}/scimUserId/{id}/unlink", dir.id);
        json_of(atlassian(&app, M::PATCH, &path).send().await.unwrap(), 204).await;
        ids.push(id);
    }
    let resp = app
        .admin(M::GET, "/orgs/default/unlinked-users?limit=2")
        .send()
        .await
        .unwrap();
    let first = json_of(resp, 200).await;
    assert_eq!(first["users"][0]["userId"], ids[0]);
    assert_eq!(first["users"][1]["userId"], ids[1]);
    let cursor = first["nextCursor"].as_str().unwrap();
    let resp = app
        .admin(M::GET, "/orgs/default/unlinked-users")
        .query(&[("cursor", cursor)])
        .send()
        .await
        .unwrap();
    let second = json_of(resp, 200).await;
    assert_eq!(second["users"].as_array().unwrap().len(), 1);
    assert_eq!(second["users"][0]["userId"], ids[2]);
    assert!(second.get("nextCursor").is_none());
}

#[tokio::test]
async fn only_delete_user_in_db_removes_a_managed_accounts_records_only() {
    let app = spawn_app().await;
    let org = default_org(&app).await;
    app.store
        .put_verified_domain(org, "corp.example")
        .await
        .unwrap();
    let (okta, entra, ann, ann2, bob) = two_directories(&app).await;
    app.create_group(&okta, "Engineers", &[ann["id"].as_str().unwrap()])
        .await;
    let account = account_of(&ann);
    let resp = atlassian(
        &app,
        M::DELETE,
        &format!("/user/{account}/onlyDeleteUserInDB"),
    )
    .send()
    .await
    .unwrap();
    json_of(resp, 204).await;
    for (dir, user) in [(&okta, &ann), (&entra, &ann2)] {
        let resp = app
            .scim(
                dir,
                M::GET,
                &format!("/Users/{}", user["id"].as_str().unwrap()),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404);
    }
    // Not deprovisioned: the account is as it was, and a new record links
    // back to it.
    assert!(account_active(&app, &account).await);
    let view = account_view(&app, &account).await;
    assert_eq!(view["links"], json!([]));
    assert_eq!(view["groups"], json!([]));
    assert_eq!(events(&app, "account.deleted").await.len(), 1);
    let again = app.create_user(&okta, "ann@corp.example").await;
    assert_eq!(account_of(&again), account);
    // An external account's records are not the org's to delete.
    let bob_account = account_of(&bob);
    let resp = atlassian(
        &app,
        M::DELETE,
        &format!("/user/{bob_account}/onlyDeleteUserInDB"),
    )
    .send()
    .await
    .unwrap();
    admin_error(resp, 409, "conflict").await;
    app.get_json(&okta, &format!("/Users/{}", bob["id"].as_str().unwrap()))
        .await;
    let resp = atlassian(
        &app,
        M::DELETE,
        &format!("/user/{NOBODY}/onlyDeleteUserInDB"),
    )
    .send()
    .await
    .unwrap();
    admin_error(resp, 404, "not_found").await;
}

#[tokio::test]
async fn scim_links_of_a_group_name_across_directories() {
    let app = spawn_app().await;
    let (okta, entra, ann, ann2, bob) = two_directories(&app).await;
    app.create_group(
        &okta,
        "Engineers",
        &[ann["id"].as_str().unwrap(), bob["id"].as_str().unwrap()],
    )
    .await;
    app.create_group(&entra, "engineers", &[ann2["id"].as_str().unwrap()])
        .await;
    app.create_group(&okta, "Other", &[]).await;
    let resp = app
        .admin(M::GET, "/orgs/default/scim-links?groupName=ENGINEERS")
        .send()
        .await
        .unwrap();
    let body = json_of(resp, 200).await;
    let links = body["scimLinks"].as_array().unwrap();
    let users: Vec<&Value> = links.iter().map(|l| &l["scimUserId"]).collect();
    assert_eq!(users, [&ann["id"], &ann2["id"], &bob["id"]]);
    assert_eq!(links[0]["atlassianAccountId"], account_of(&ann));
    assert_eq!(links[2]["atlassianAccountId"], account_of(&bob));
    let resp = app
        .admin(M::GET, "/orgs/default/scim-links?groupName=Other")
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(resp, 200).await, json!({ "scimLinks": [] }));
    for query in ["", "?groupName=", "?group=x"] {
        let resp = app
            .admin(M::GET, &format!("/orgs/default/scim-links{query}"))
            .send()
            .await
            .unwrap();
        admin_error(resp, 400, "bad_request").await;
    }
}
