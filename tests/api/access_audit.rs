//! The sync engine's events in the provisioning report and the counters:
//! `sync.started` / `sync.finished` about a directory, and
//! `access.granted` / `access.revoked` about an account, with the detail
//! the engine writes. Most are written through the store, in the engine's
//! shape, so each filter meets events it must leave out; the last test
//! has real runs write them, and reads billing beside them.

use serde_json::{json, Value};
use uuid::Uuid;

use scimd::audit::{Action, AuditContext, Target, TargetType};

use crate::accounts::{account_of, default_org};
use crate::helpers::{TestApp, TestDirectory, M};

async fn report(app: &TestApp, query: &str) -> Vec<Value> {
    let page = app
        .ok_json(app.admin(
            M::GET,
            &format!("/orgs/default/reports/provisioning?{query}"),
        ))
        .await;
    page["events"].as_array().unwrap().clone()
}

fn actions(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect()
}

/// An access event of one run, as the engine records it.
async fn access_event(
    app: &TestApp,
    dir: &TestDirectory,
    action: Action,
    account: Uuid,
    run: Uuid,
    grants: &[Value],
) {
    let org = default_org(app).await;
    let dir_id: Uuid = dir.id.parse().unwrap();
    let detail =
        json!({ "directoryId": dir_id, "runId": run, "trigger": "manual", "grants": grants })
            .to_string();
    let event = AuditContext::system("sync")
        .in_directory(org, dir_id)
        .event(action)
        .target(Target::new(TargetType::Account, Some(account)))
        .detail(detail);
    app.store.record_event(&event).await.unwrap();
}

async fn run_event(app: &TestApp, dir: &TestDirectory, action: Action, run: Uuid) {
    let org = default_org(app).await;
    let event = AuditContext::system("sync")
        .in_directory(org, dir.id.parse().unwrap())
        .event(action)
        .target(Target::new(
            TargetType::Directory,
            Some(dir.id.parse().unwrap()),
        ))
        .detail(json!({ "runId": run }).to_string());
    app.store.record_event(&event).await.unwrap();
}

/// Two directories, a run in each: Okta grants Ann two products and
/// revokes Bob's, Entra grants Cid one.
async fn two_runs(app: &TestApp) -> (TestDirectory, TestDirectory, [String; 3]) {
    let okta = app.create_directory("Okta").await;
    let entra = app.create_directory("Entra").await;
    let ann = account_of(&app.create_user(&okta, "ann@corp.example").await);
    let bob = account_of(&app.create_user(&okta, "bob@corp.example").await);
    let cid = account_of(&app.create_user(&entra, "cid@corp.example").await);
    let site = Uuid::new_v4();
    let grant = |key: &str, role: &str| {
        json!({ "grantId": Uuid::new_v4(), "groupId": Uuid::new_v4(), "siteId": site,
                "productKey": key, "role": role })
    };
    let run = Uuid::new_v4();
    run_event(app, &okta, Action::SyncStarted, run).await;
    access_event(
        app,
        &okta,
        Action::AccessGranted,
        ann.parse().unwrap(),
        run,
        &[grant("jira-software", "user"), grant("confluence", "admin")],
    )
    .await;
    access_event(
        app,
        &okta,
        Action::AccessRevoked,
        bob.parse().unwrap(),
        run,
        &[grant("jira-software", "user")],
    )
    .await;
    run_event(app, &okta, Action::SyncFinished, run).await;
    let run = Uuid::new_v4();
    run_event(app, &entra, Action::SyncStarted, run).await;
    access_event(
        app,
        &entra,
        Action::AccessGranted,
        cid.parse().unwrap(),
        run,
        &[grant("confluence", "user")],
    )
    .await;
    run_event(app, &entra, Action::SyncFinished, run).await;
    (okta, entra, [ann, bob, cid])
}

#[tokio::test]
async fn the_report_filters_sync_and_access_events_by_action_target_type_and_directory() {
    let app = crate::helpers::spawn_app().await;
    let (okta, entra, [ann, bob, cid]) = two_runs(&app).await;

    let access = report(&app, "action=access.granted,access.revoked").await;
    assert_eq!(
        actions(&access),
        ["access.granted", "access.revoked", "access.granted"]
    );
    let targets: Vec<&str> = access
        .iter()
        .map(|e| e["targetId"].as_str().unwrap())
        .collect();
    assert_eq!(targets, [cid.as_str(), bob.as_str(), ann.as_str()]);

    let okta_access = report(
        &app,
        &format!("action=access.granted,access.revoked&directory={}", okta.id),
    )
    .await;
    assert_eq!(actions(&okta_access), ["access.revoked", "access.granted"]);
    let granted = &okta_access[1];
    assert_eq!(granted["targetType"], "account");
    assert_eq!(granted["directoryId"], okta.id);
    assert_eq!(granted["actorType"], "system");
    let detail: Value = serde_json::from_str(granted["detail"].as_str().unwrap()).unwrap();
    assert_eq!(detail["directoryId"], okta.id);
    assert_eq!(detail["trigger"], "manual");
    assert_eq!(detail["grants"][1]["productKey"], "confluence");
    assert_eq!(detail["grants"][1]["role"], "admin");

    // Every event about an account: the access events, and nothing the
    // SCIM writes recorded about users.
    let about_accounts = report(&app, "targetType=account").await;
    assert_eq!(
        actions(&about_accounts),
        ["access.granted", "access.revoked", "access.granted"]
    );
    assert!(about_accounts.iter().all(|e| e["targetType"] == "account"));
    // One account's history.
    let anns = report(&app, &format!("account={ann}")).await;
    assert_eq!(actions(&anns), ["access.granted"]);
    assert_eq!(anns[0]["targetId"], ann.as_str());
    let bobs = report(&app, &format!("account={bob}&action=access.granted")).await;
    assert!(bobs.is_empty(), "{bobs:?}");
    let users_or_accounts = report(
        &app,
        &format!("targetType=user,account&directory={}", entra.id),
    )
    .await;
    assert_eq!(
        actions(&users_or_accounts),
        ["access.granted", "user.created"]
    );

    let runs = report(
        &app,
        &format!("action=sync.started,sync.finished&directory={}", entra.id),
    )
    .await;
    assert_eq!(actions(&runs), ["sync.finished", "sync.started"]);
    assert!(runs
        .iter()
        .all(|e| e["targetType"] == "directory" && e["targetId"] == entra.id.as_str()));
    let by_type = report(&app, "targetType=directory&action=sync.finished").await;
    assert_eq!(by_type.len(), 2);

    // The CSV export filters alike.
    let csv = app
        .admin(
            M::GET,
            "/orgs/default/reports/provisioning?format=csv&targetType=account&action=access.revoked",
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[1].contains(&bob), "{csv}");

    for bad in [
        "targetType=",
        "targetType=person",
        "targetType=account,,user",
        "action=access.lost",
        "account=ann",
    ] {
        let resp = app
            .admin(M::GET, &format!("/orgs/default/reports/provisioning?{bad}"))
            .send()
            .await
            .unwrap();
        crate::sites::assert_admin_error(resp, 400, "bad_request").await;
    }
}

#[tokio::test]
async fn the_counters_count_access_granted_and_revoked_per_directory() {
    let app = crate::helpers::spawn_app().await;
    let (okta, entra, _) = two_runs(&app).await;
    let stats = app
        .ok_json(app.admin(M::GET, "/orgs/default/reports/stats?days=2"))
        .await;
    let of = |dir: &TestDirectory| {
        stats["directories"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["directoryId"] == dir.id.as_str())
            .unwrap()
            .clone()
    };
    let okta_stats = of(&okta);
    assert_eq!(
        okta_stats["totals"],
        json!({ "usersCreated": 2, "usersDeactivated": 0, "usersDeleted": 0, "failures": 0,
                "accessGranted": 1, "accessRevoked": 1 })
    );
    let today = &okta_stats["daily"][1];
    assert_eq!(today["date"], stats["to"]);
    assert_eq!(today["accessGranted"], 1);
    assert_eq!(today["accessRevoked"], 1);
    assert_eq!(okta_stats["daily"][0]["accessGranted"], 0);
    let entra_stats = of(&entra);
    assert_eq!(entra_stats["totals"]["accessGranted"], 1);
    assert_eq!(entra_stats["totals"]["accessRevoked"], 0);

    // One directory alone.
    let one = app
        .ok_json(app.admin(
            M::GET,
            &format!("/orgs/default/reports/stats?days=1&directory={}", entra.id),
        ))
        .await;
    assert_eq!(one["directories"].as_array().unwrap().len(), 1);
    assert_eq!(one["directories"][0]["totals"]["accessGranted"], 1);
}

async fn billing(app: &TestApp) -> Value {
    app.ok_json(app.admin(M::GET, "/orgs/default/billing"))
        .await
}

#[tokio::test]
async fn a_runs_events_reach_the_report_the_counters_and_billing() {
    use crate::sync::{grant, group, jira, run, scheduled, user};
    let app = crate::helpers::spawn_app().await;
    let dir = app.create_directory("Okta").await;
    scheduled(&app, &dir).await;
    let product = jira(&app).await;
    let (ann_user, ann) = user(&app, &dir, "ann@corp.example").await;
    let (bob_user, bob) = user(&app, &dir, "bob@corp.example").await;
    let eng = group(&app, &dir, "Engineering", &[&ann_user, &bob_user]).await;
    grant(&app, &product, &eng, "user").await;
    assert_eq!(billing(&app).await["total"], 0);

    let first = run(&app, &dir).await;
    let granted = report(&app, &format!("action=access.granted&directory={}", dir.id)).await;
    let mut targets: Vec<&str> = granted
        .iter()
        .map(|e| e["targetId"].as_str().unwrap())
        .collect();
    targets.sort();
    let mut both = [ann.as_str(), bob.as_str()];
    both.sort();
    assert_eq!(targets, both);
    let detail: Value = serde_json::from_str(granted[0]["detail"].as_str().unwrap()).unwrap();
    assert_eq!(detail["runId"], first["runId"]);
    assert_eq!(detail["grants"][0]["productKey"], "jira-software");
    let runs = report(
        &app,
        &format!("action=sync.started,sync.finished&directory={}", dir.id),
    )
    .await;
    assert_eq!(actions(&runs), ["sync.finished", "sync.started"]);
    let after_first = billing(&app).await;
    assert_eq!(after_first["total"], 2);
    assert_eq!(after_first["sites"][0]["products"][0]["billableUsers"], 2);

    // Bob deactivated by SCIM: his account is no longer billed at once;
    // his access goes at the next run (the directory is scheduled).
    let resp = app
        .scim(&dir, M::PATCH, &format!("/Users/{bob_user}"))
        .json(
            &json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{ "op": "replace", "path": "active", "value": false }] }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(billing(&app).await["total"], 1);
    assert!(
        report(&app, &format!("account={bob}&action=access.revoked"))
            .await
            .is_empty()
    );
    run(&app, &dir).await;
    let revoked = report(&app, &format!("account={bob}&action=access.revoked")).await;
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0]["directoryId"], dir.id);
    assert_eq!(billing(&app).await["total"], 1);

    let stats = app
        .ok_json(app.admin(
            M::GET,
            &format!("/orgs/default/reports/stats?days=1&directory={}", dir.id),
        ))
        .await;
    let totals = &stats["directories"][0]["totals"];
    assert_eq!(totals["accessGranted"], 2, "{stats}");
    assert_eq!(totals["accessRevoked"], 1, "{stats}");
}
