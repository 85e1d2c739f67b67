//! The sync engine through the admin API: runs, scope with nested groups,
//! the domain rule, the per-group limit, dropped groups, continuous and
//! scheduled modes, dry runs, status and history.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, user_body, TestApp, TestDirectory, M};
use crate::sites::{assert_admin_error, created, default_org};

pub const ACCOUNT_EXT: &str = "urn:scim:schemas:extension:atlassian-external:1.0";

/// The account a SCIM user links to.
pub fn account_of(user: &Value) -> String {
    user[ACCOUNT_EXT]["atlassianAccountId"]
        .as_str()
        .expect("account id")
        .to_owned()
}

/// A site with Jira; the product's admin path.
pub async fn jira(app: &TestApp) -> String {
    let site = created(
        app,
        "/orgs/default/sites",
        json!({ "name": "Acme", "url": "https://acme.atlassian.net" }),
    )
    .await;
    let site = site["id"].as_str().unwrap();
    created(
        app,
        &format!("/orgs/default/sites/{site}/products"),
        json!({ "key": "jira-software" }),
    )
    .await;
    format!("/orgs/default/sites/{site}/products/jira-software")
}

pub async fn grant(app: &TestApp, product: &str, group: &str, role: &str) {
    created(
        app,
        &format!("{product}/grants"),
        json!({ "groupId": group, "role": role }),
    )
    .await;
}

/// `(group id, role)` pairs of an account's access.
pub async fn access(app: &TestApp, account: &str) -> BTreeSet<(String, String)> {
    let body = app
        .ok_json(app.admin(M::GET, &format!("/orgs/default/accounts/{account}/access")))
        .await;
    let mut out = BTreeSet::new();
    for a in body["access"].as_array().unwrap() {
        for via in a["via"].as_array().unwrap() {
            out.insert((
                via["groupId"].as_str().unwrap().to_owned(),
                a["role"].as_str().unwrap().to_owned(),
            ));
        }
    }
    out
}

pub fn settings(mode: &str, scope: Value, domains: Value) -> Value {
    json!({
        "mode": mode, "intervalMinutes": 240, "scope": scope, "domains": domains,
        "emailNewUsers": false,
    })
}

pub async fn put_settings(app: &TestApp, dir: &TestDirectory, body: &Value) {
    let resp = app
        .admin(
            M::PUT,
            &format!("/orgs/default/directories/{}/sync-settings", dir.id),
        )
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
}

pub async fn scheduled(app: &TestApp, dir: &TestDirectory) {
    put_settings(
        app,
        dir,
        &settings("scheduled", json!({"type": "all"}), json!({"type": "all"})),
    )
    .await;
}

fn sync_path(dir: &TestDirectory) -> String {
    format!("/orgs/default/directories/{}/sync", dir.id)
}

/// Starts a run (202) and returns its id; waits for a run the
/// continuous path started to end first.
pub async fn start(app: &TestApp, dir: &TestDirectory) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let resp = app.admin(M::POST, &sync_path(dir)).send().await.unwrap();
        if resp.status() == 409 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        assert_eq!(resp.status(), 202, "{}", resp.text().await.unwrap());
        let body: Value = resp.json().await.unwrap();
        return body["runId"].as_str().unwrap().to_owned();
    }
}

/// Waits for a run to end and returns it.
pub async fn finished(app: &TestApp, dir: &TestDirectory, run: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let body = app
            .ok_json(app.admin(M::GET, &format!("{}/runs/{run}", sync_path(dir))))
            .await;
        if body["state"] != "running" {
            return body;
        }
        assert!(Instant::now() < deadline, "run {run} did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs a sync to its end; the run.
pub async fn run(app: &TestApp, dir: &TestDirectory) -> Value {
    let id = start(app, dir).await;
    let run = finished(app, dir, &id).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    run
}

/// Waits until `check` holds (for the continuous path).
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn user(app: &TestApp, dir: &TestDirectory, email: &str) -> (String, String) {
    let u = app.create_user(dir, email).await;
    (u["id"].as_str().unwrap().to_owned(), account_of(&u))
}

pub async fn group(app: &TestApp, dir: &TestDirectory, name: &str, members: &[&str]) -> String {
    app.create_group(dir, name, members).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn set_active(app: &TestApp, dir: &TestDirectory, user: &str, active: bool) {
    let resp = app
        .scim(dir, M::PATCH, &format!("/Users/{user}"))
        .json(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": active}],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

async fn add_members(app: &TestApp, dir: &TestDirectory, group: &str, members: &[&str]) {
    let value: Vec<Value> = members.iter().map(|m| json!({ "value": m })).collect();
    let resp = app
        .scim(dir, M::PATCH, &format!("/Groups/{group}"))
        .json(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": "members", "value": value}],
        }))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
}

fn set(pairs: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    pairs
        .iter()
        .map(|(g, r)| (g.to_string(), r.to_string()))
        .collect()
}

#[tokio::test]
async fn scope_by_groups_flattens_nesting_and_walks_a_cycle_once() {
    let app = spawn_app().await;
    let product = jira(&app).await;
    let dir = app.create_directory("Okta").await;
    scheduled(&app, &dir).await;
    let (u1, a1) = user(&app, &dir, "one@example.com").await;
    let (u2, a2) = user(&app, &dir, "two@example.com").await;
    let (u3, a3) = user(&app, &dir, "three@example.com").await;
    let (u4, a4) = user(&app, &dir, "four@example.com").await;
    let inner = group(&app, &dir, "Inner", &[&u2]).await;
    let outer = group(&app, &dir, "Outer", &[&u1, &inner]).await;
    let cyc_a = group(&app, &dir, "Cycle A", &[]).await;
    let cyc_b = group(&app, &dir, "Cycle B", &[&u3, &cyc_a]).await;
    add_members(&app, &dir, &cyc_a, &[&cyc_b]).await;
    let other = group(&app, &dir, "Other", &[&u4]).await;
    grant(&app, &product, &outer, "user").await;
    grant(&app, &product, &cyc_a, "admin").await;
    grant(&app, &product, &other, "user").await;
    put_settings(
        &app,
        &dir,
        &settings(
            "scheduled",
            json!({"type": "groups", "groupIds": [outer, cyc_a]}),
            json!({"type": "all"}),
        ),
    )
    .await;
    // Saving starts nothing.
    assert!(access(&app, &a1).await.is_empty());

    let r = run(&app, &dir).await;
    assert_eq!(access(&app, &a1).await, set(&[(&outer, "user")]));
    // Inner is nested in Outer: its members get Outer's grant.
    assert_eq!(access(&app, &a2).await, set(&[(&outer, "user")]));
    // In a cycle, each group's members get the grants of both.
    assert_eq!(access(&app, &a3).await, set(&[(&cyc_a, "admin")]));
    // Other is not in scope, its grant gives nothing.
    assert!(access(&app, &a4).await.is_empty());
    assert_eq!(r["trigger"], "manual");
    assert_eq!(r["counts"]["accountsCreated"], 3);
    assert_eq!(r["counts"]["accessGranted"], 3);
    assert_eq!(r["counts"]["accessRevoked"], 0);
    assert_eq!(r["progress"]["accountsDone"], 3);
    assert_eq!(r["settings"]["scopeGroupIds"], json!([outer, cyc_a]));
    let in_scope: BTreeSet<&str> = r["plan"]["groupsInScope"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["groupName"].as_str().unwrap())
        .collect();
    assert_eq!(
        in_scope,
        BTreeSet::from(["Cycle A", "Cycle B", "Inner", "Outer"])
    );
    assert!(r["finishedAt"].is_string());
    let status = app
        .ok_json(app.admin(M::GET, &format!("{}/status", sync_path(&dir))))
        .await;
    assert_eq!(status["state"], "enabled");
    assert_eq!(status["mode"], "scheduled");
    assert_eq!(status["synced"]["users"], 3);
    assert_eq!(status["synced"]["groups"], 4);
    assert_eq!(status["lastRun"]["runId"], r["runId"]);
    assert!(status["running"].is_null());
    // A second run finds nothing to change.
    let again = run(&app, &dir).await;
    assert_eq!(again["counts"]["accessGranted"], 0);
    assert_eq!(again["counts"]["accountsCreated"], 0);
    let runs = app
        .ok_json(app.admin(M::GET, &format!("{}/runs?limit=1", sync_path(&dir))))
        .await;
    assert_eq!(runs["runs"][0]["runId"], again["runId"]);
    let cursor = runs["nextCursor"].as_str().unwrap();
    let older = app
        .ok_json(app.admin(
            M::GET,
            &format!("{}/runs?limit=1&cursor={cursor}", sync_path(&dir)),
        ))
        .await;
    assert_eq!(older["runs"][0]["runId"], r["runId"]);
    assert!(older.get("nextCursor").is_none());
    // Runs are audited.
    let started = app
        .db()
        .count("SELECT COUNT(*) FROM audit_events WHERE action = 'sync.started'")
        .await;
    let granted = app
        .db()
        .count("SELECT COUNT(*) FROM audit_events WHERE action = 'access.granted'")
        .await;
    assert_eq!((started, granted), (2, 3));
}

#[tokio::test]
async fn the_domain_rule_skips_managed_accounts_outside_it_but_syncs_external_ones() {
    let app = spawn_app().await;
    let org = default_org(&app).await;
    app.store
        .put_verified_domain(org, "acme.com")
        .await
        .unwrap();
    app.store
        .put_verified_domain(org, "other.com")
        .await
        .unwrap();
    let product = jira(&app).await;
    let dir = app.create_directory("Okta").await;
    scheduled(&app, &dir).await;
    let (u1, a1) = user(&app, &dir, "in@acme.com").await;
    let (u2, a2) = user(&app, &dir, "out@other.com").await;
    let (u3, a3) = user(&app, &dir, "guest@partner.org").await;
    let g = group(&app, &dir, "Everyone", &[&u1, &u2, &u3]).await;
    grant(&app, &product, &g, "user").await;
    put_settings(
        &app,
        &dir,
        &settings(
            "scheduled",
            json!({"type": "all"}),
            json!({"type": "list", "names": ["acme.com"]}),
        ),
    )
    .await;
    let r = run(&app, &dir).await;
    assert_eq!(access(&app, &a1).await, set(&[(&g, "user")]));
    assert!(access(&app, &a2).await.is_empty());
    // External accounts always sync.
    assert_eq!(access(&app, &a3).await, set(&[(&g, "user")]));
    assert_eq!(r["counts"]["usersSkippedByDomain"], 1);
    assert_eq!(r["plan"]["domainsInScope"], json!(["acme.com"]));
    // All verified domains: the other one syncs too.
    scheduled(&app, &dir).await;
    let r = run(&app, &dir).await;
    assert_eq!(access(&app, &a2).await, set(&[(&g, "user")]));
    assert_eq!(r["counts"]["usersSkippedByDomain"], 0);
    assert_eq!(
        r["plan"]["domainsInScope"],
        json!(["acme.com", "other.com"])
    );
}

#[tokio::test]
async fn a_group_dropped_from_scope_loses_its_access_and_is_listed() {
    let app = spawn_app().await;
    let product = jira(&app).await;
    let dir = app.create_directory("Okta").await;
    scheduled(&app, &dir).await;
    let (u1, a1) = user(&app, &dir, "one@example.com").await;
    let (u2, a2) = user(&app, &dir, "two@example.com").await;
    let keep = group(&app, &dir, "Keep", &[&u1]).await;
    let drop = group(&app, &dir, "Drop", &[&u2]).await;
    grant(&app, &product, &keep, "user").await;
    grant(&app, &product, &drop, "user").await;
    let both = settings(
        "scheduled",
        json!({"type": "groups", "groupIds": [keep, drop]}),
        json!({"type": "all"}),
    );
    put_settings(&app, &dir, &both).await;
    run(&app, &dir).await;
    assert_eq!(access(&app, &a2).await, set(&[(&drop, "user")]));

    put_settings(
        &app,
        &dir,
        &settings(
            "scheduled",
            json!({"type": "groups", "groupIds": [keep]}),
            json!({"type": "all"}),
        ),
    )
    .await;
    // The preview names the change before anything is written.
    let resp = app
        .admin(M::POST, &format!("{}?dryRun=true", sync_path(&dir)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let preview: Value = resp.json().await.unwrap();
    assert_eq!(preview["dryRun"], true);
    assert_eq!(preview["accessToRevoke"], 1);
    assert_eq!(
        preview["changesSinceLastRun"]["groupsDropped"],
        json!([{"groupId": drop, "groupName": "Drop", "reason": "deselected"}])
    );
    assert_eq!(access(&app, &a2).await, set(&[(&drop, "user")]));

    let r = run(&app, &dir).await;
    assert!(access(&app, &a2).await.is_empty());
    assert_eq!(access(&app, &a1).await, set(&[(&keep, "user")]));
    assert_eq!(r["counts"]["accessRevoked"], 1);
    assert_eq!(
        r["plan"]["changesSinceLastRun"]["groupsDropped"][0]["groupName"],
        "Drop"
    );
    // Selecting it again is how access comes back.
    put_settings(&app, &dir, &both).await;
    let r = run(&app, &dir).await;
    assert_eq!(access(&app, &a2).await, set(&[(&drop, "user")]));
    assert_eq!(
        r["plan"]["changesSinceLastRun"]["groupsAdded"][0]["groupName"],
        "Drop"
    );
    // A group the identity provider deletes is listed as deleted.
    let resp = app
        .scim(&dir, M::DELETE, &format!("/Groups/{drop}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let r = run(&app, &dir).await;
    assert_eq!(
        r["plan"]["changesSinceLastRun"]["groupsDropped"],
        json!([{"groupId": drop, "groupName": "Drop", "reason": "deleted"}])
    );
    assert!(access(&app, &a2).await.is_empty());
}

#[tokio::test]
async fn a_group_over_the_limit_is_reported_and_left_as_it_was_while_others_apply() {
    let app = spawn_app().await;
    let product = jira(&app).await;
    let dir = app.create_directory("Okta").await;
    scheduled(&app, &dir).await;
    // 10,000 users, linked to accounts of their own (as the seed links
    // them).
    let directory: uuid::Uuid = dir.id.parse().unwrap();
    let ids = app.store.seed_users(directory, 0, 10_000).await.unwrap();
    let first_account = account_of(&app.get_json(&dir, &format!("/Users/{}", ids[0])).await);
    let members: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
    let members: Vec<&str> = members.iter().map(String::as_str).collect();
    let big = group(&app, &dir, "Big", &members).await;
    let (extra, extra_account) = user(&app, &dir, "extra@example.com").await;
    let (small_user, small_account) = user(&app, &dir, "small@example.com").await;
    let small = group(&app, &dir, "Small", &[]).await;
    grant(&app, &product, &big, "user").await;
    grant(&app, &product, &small, "user").await;
    let r = run(&app, &dir).await;
    assert_eq!(r["counts"]["accessGranted"], 10_000);
    assert!(r["failures"].as_array().unwrap().is_empty());

    // One more makes 10,001: over Atlassian's limit.
    add_members(&app, &dir, &big, &[&extra]).await;
    add_members(&app, &dir, &small, &[&small_user]).await;
    let r = run(&app, &dir).await;
    let failure = &r["failures"][0];
    assert_eq!(failure["reason"], "group_too_large");
    assert_eq!(failure["groupName"], "Big");
    assert_eq!(failure["size"], 10_001);
    assert_eq!(failure["limit"], 10_000);
    assert!(failure["message"].as_str().unwrap().contains("Split"));
    assert_eq!(r["plan"]["groupsOverLimit"][0]["groupId"], big);
    // Its access is as it was: the 10,000 keep it, the new member has none;
    // the other group applied.
    assert_eq!(r["counts"]["accessGranted"], 1);
    assert_eq!(r["counts"]["accessRevoked"], 0);
    assert!(access(&app, &extra_account).await.is_empty());
    assert_eq!(access(&app, &first_account).await, set(&[(&big, "user")]));
    assert_eq!(access(&app, &small_account).await, set(&[(&small, "user")]));
    let held = app
        .db()
        .count("SELECT COUNT(*) FROM effective_access")
        .await;
    assert_eq!(held, 10_001);
}

#[tokio::test]
async fn the_limit_is_the_directorys_own_when_it_sets_one() {
    let app = spawn_app().await;
    let product = jira(&app).await;
    let dir = app.create_directory("Okta").await;
    let mut body = settings("scheduled", json!({"type": "all"}), json!({"type": "all"}));
    body["groupUserLimit"] = json!(2);
    put_settings(&app, &dir, &body).await;
    let (u1, a1) = user(&app, &dir, "one@example.com").await;
    let (u2, _) = user(&app, &dir, "two@example.com").await;
    let (u3, _) = user(&app, &dir, "three@example.com").await;
    let g = group(&app, &dir, "Three", &[&u1, &u2, &u3]).await;
    grant(&app, &product, &g, "user").await;
    let r = run(&app, &dir).await;
    assert_eq!(r["failures"][0]["limit"], 2);
    assert_eq!(r["failures"][0]["size"], 3);
    assert!(access(&app, &a1).await.is_empty());
}

/// A continuous and a scheduled directory, each with one user in one group
/// granted `product` with `role`.
struct TwoModes {
    cont: TestDirectory,
    sched: TestDirectory,
    /// The continuous directory's user and account.
    cu: String,
    ca: String,
    /// The scheduled directory's.
    su: String,
    sa: String,
    cg: String,
    sg: String,
}

async fn two_modes(app: &TestApp, product: &str, role: &str) -> TwoModes {
    let cont = app.create_directory("Continuous").await;
    let sched = app.create_directory("Scheduled").await;
    scheduled(app, &sched).await;
    let (cu, ca) = user(app, &cont, "c@example.com").await;
    let (su, sa) = user(app, &sched, "s@example.com").await;
    let cg = group(app, &cont, "C", &[&cu]).await;
    let sg = group(app, &sched, "S", &[&su]).await;
    grant(app, product, &cg, role).await;
    grant(app, product, &sg, role).await;
    TwoModes {
        cont,
        sched,
        cu,
        ca,
        su,
        sa,
        cg,
        sg,
    }
}

#[tokio::test]
async fn deactivation_revokes_access_at_once_when_continuous_and_at_the_next_run_when_scheduled() {
    let app = spawn_app().await;
    let product = jira(&app).await;
    let TwoModes {
        cont,
        sched,
        cu,
        ca,
        su,
        sa,
        cg,
        sg,
    } = two_modes(&app, &product, "user").await;
    // Continuous: the grant applies at the next change or run.
    run(&app, &cont).await;
    run(&app, &sched).await;
    assert_eq!(access(&app, &ca).await, set(&[(&cg, "user")]));
    assert_eq!(access(&app, &sa).await, set(&[(&sg, "user")]));

    set_active(&app, &cont, &cu, false).await;
    set_active(&app, &sched, &su, false).await;
    eventually("continuous deactivation revokes", || async {
        access(&app, &ca).await.is_empty()
    })
    .await;
    // Scheduled: nothing until a run.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(access(&app, &sa).await, set(&[(&sg, "user")]));
    let r = run(&app, &sched).await;
    assert!(access(&app, &sa).await.is_empty());
    assert_eq!(r["counts"]["accountsDeactivated"], 1);
    assert_eq!(r["counts"]["accessRevoked"], 1);
    // Reactivated, access comes back.
    set_active(&app, &cont, &cu, true).await;
    eventually("continuous reactivation grants", || async {
        access(&app, &ca).await == set(&[(&cg, "user")])
    })
    .await;
    // A membership change in continuous mode applies without a manual run.
    let (cu2, ca2) = user(&app, &cont, "c2@example.com").await;
    add_members(&app, &cont, &cg, &[&cu2]).await;
    eventually("continuous membership grants", || async {
        access(&app, &ca2).await == set(&[(&cg, "user")])
    })
    .await;
    let events = app
        .db()
        .count("SELECT COUNT(*) FROM audit_events WHERE action = 'access.revoked'")
        .await;
    assert_eq!(events, 2);
}

#[tokio::test]
async fn a_dry_run_writes_nothing_and_predicts_the_run() {
    let app = spawn_app().await;
    let product = jira(&app).await;
    let dir = app.create_directory("Okta").await;
    scheduled(&app, &dir).await;
    let (u1, a1) = user(&app, &dir, "one@example.com").await;
    let (u2, _) = user(&app, &dir, "two@example.com").await;
    let g = group(&app, &dir, "G", &[&u1, &u2]).await;
    let h = group(&app, &dir, "H", &[&u2]).await;
    grant(&app, &product, &g, "user").await;
    grant(&app, &product, &h, "admin").await;
    let preview = app
        .ok_json(app.admin(M::POST, &format!("{}?dryRun=true", sync_path(&dir))))
        .await;
    assert!(access(&app, &a1).await.is_empty());
    let runs = app
        .ok_json(app.admin(M::GET, &format!("{}/runs", sync_path(&dir))))
        .await;
    assert_eq!(runs["runs"], json!([]));
    let r = run(&app, &dir).await;
    assert_eq!(preview["accessToGrant"], r["counts"]["accessGranted"]);
    assert_eq!(preview["accessToGrant"], 3);
    assert_eq!(preview["accessToRevoke"], r["counts"]["accessRevoked"]);
    assert_eq!(preview["accountsToCreate"], r["counts"]["accountsCreated"]);
    assert_eq!(preview["groupsInScope"], r["plan"]["groupsInScope"]);
    // After the run, the preview is of nothing.
    let preview = app
        .ok_json(app.admin(M::POST, &format!("{}?dryRun=true", sync_path(&dir))))
        .await;
    assert_eq!(
        (
            &preview["accessToGrant"],
            &preview["accessToRevoke"],
            &preview["accountsToCreate"]
        ),
        (&json!(0), &json!(0), &json!(0))
    );
}

#[tokio::test]
async fn one_run_at_a_time_and_none_while_sync_is_off() {
    let app = spawn_app_with(|c| {
        c.sync.sync_batch_size = 1;
        c.sync.sync_batch_pause_ms = 150;
    })
    .await;
    let product = jira(&app).await;
    let dir = app.create_directory("Okta").await;
    scheduled(&app, &dir).await;
    let mut members = Vec::new();
    for n in 0..6 {
        members.push(user(&app, &dir, &format!("u{n}@example.com")).await.0);
    }
    let members: Vec<&str> = members.iter().map(String::as_str).collect();
    let g = group(&app, &dir, "G", &members).await;
    grant(&app, &product, &g, "user").await;
    let id = start(&app, &dir).await;
    let resp = app.admin(M::POST, &sync_path(&dir)).send().await.unwrap();
    let message = assert_admin_error(resp, 409, "sync_running").await;
    assert!(message.contains(&id), "{message}");
    // Once the run has read the directory, its progress has a total.
    let mut status;
    loop {
        status = app
            .ok_json(app.admin(M::GET, &format!("{}/status", sync_path(&dir))))
            .await;
        assert_eq!(status["state"], "in_progress");
        assert_eq!(status["running"]["runId"], id);
        if status["running"]["progress"]["accountsTotal"] != 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(status["running"]["progress"]["accountsTotal"], 6);
    let r = finished(&app, &dir, &id).await;
    assert_eq!(r["state"], "succeeded");
    assert_eq!(r["counts"]["accessGranted"], 6);

    let mut off = settings("scheduled", json!({"type": "all"}), json!({"type": "all"}));
    off["enabled"] = json!(false);
    put_settings(&app, &dir, &off).await;
    let saved = app
        .ok_json(app.admin(
            M::GET,
            &format!("/orgs/default/directories/{}/sync-settings", dir.id),
        ))
        .await;
    assert_eq!(saved["enabled"], false);
    let resp = app.admin(M::POST, &sync_path(&dir)).send().await.unwrap();
    assert_admin_error(resp, 409, "sync_disabled").await;
    let status = app
        .ok_json(app.admin(M::GET, &format!("{}/status", sync_path(&dir))))
        .await;
    assert_eq!(status["state"], "disabled");
}

#[tokio::test]
async fn bad_requests_and_unknown_runs_are_clear_errors() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let resp = app
        .admin(M::POST, &format!("{}?dryRun=maybe", sync_path(&dir)))
        .send()
        .await
        .unwrap();
    assert_admin_error(resp, 400, "bad_request").await;
    let resp = app
        .admin(M::GET, &format!("{}/runs?limit=0", sync_path(&dir)))
        .send()
        .await
        .unwrap();
    assert_admin_error(resp, 400, "bad_request").await;
    for path in [
        format!("{}/runs/{}", sync_path(&dir), uuid::Uuid::new_v4()),
        format!("{}/runs/not-a-uuid", sync_path(&dir)),
        format!(
            "/orgs/default/directories/{}/sync/status",
            uuid::Uuid::new_v4()
        ),
    ] {
        let resp = app.admin(M::GET, &path).send().await.unwrap();
        assert_admin_error(resp, 404, "not_found").await;
    }
    let resp = app
        .admin(
            M::POST,
            &format!("/orgs/default/directories/{}/sync", uuid::Uuid::new_v4()),
        )
        .send()
        .await
        .unwrap();
    assert_admin_error(resp, 404, "not_found").await;
    // Another org's directory is not found through this one.
    let other = crate::sites::create_org(&app, "Other").await;
    let resp = app
        .admin(
            M::GET,
            &format!("/orgs/{other}/directories/{}/sync/status", dir.id),
        )
        .send()
        .await
        .unwrap();
    assert_admin_error(resp, 404, "not_found").await;
    // Before any run the status is of nothing.
    let status = app
        .ok_json(app.admin(M::GET, &format!("{}/status", sync_path(&dir))))
        .await;
    assert_eq!(status["lastRun"], Value::Null);
    assert_eq!(
        status["synced"],
        json!({"users": 0, "groups": 0, "domains": 0})
    );
    assert_eq!(status["mode"], "continuous");
}

/// A small deterministic generator, so a failing sequence can be replayed.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// Every account's access, by account.
async fn access_table(app: &TestApp, accounts: &[String]) -> Vec<BTreeSet<(String, String)>> {
    let mut out = Vec::new();
    for a in accounts {
        out.push(access(app, a).await);
    }
    out
}

/// Waits until the continuous path has applied everything: no run
/// running, and the table the same twice over a pause.
async fn settled(app: &TestApp, dir: &TestDirectory, accounts: &[String]) {
    let mut last = None;
    loop {
        let status = app
            .ok_json(app.admin(M::GET, &format!("{}/status", sync_path(dir))))
            .await;
        if status["running"].is_null() {
            let now = access_table(app, accounts).await;
            if last.as_ref() == Some(&now) {
                return;
            }
            last = Some(now);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn the_continuous_path_gives_the_table_a_run_gives() {
    for seed in [1u64, 7, 42, 1234] {
        let app = spawn_app().await;
        let org = default_org(&app).await;
        app.store
            .put_verified_domain(org, "acme.com")
            .await
            .unwrap();
        app.store
            .put_verified_domain(org, "other.com")
            .await
            .unwrap();
        let product = jira(&app).await;
        let dir = app.create_directory("Okta").await;
        let mut rng = Lcg(seed);
        let mut users: Vec<String> = Vec::new();
        let mut accounts: Vec<String> = Vec::new();
        let mut groups: Vec<String> = Vec::new();
        for n in 0..6 {
            let domain = ["acme.com", "other.com", "partner.org"][n % 3];
            let (u, a) = user(&app, &dir, &format!("u{n}@{domain}")).await;
            users.push(u);
            accounts.push(a);
        }
        for n in 0..4 {
            let g = group(&app, &dir, &format!("G{n}"), &[]).await;
            grant(
                &app,
                &product,
                &g,
                if n % 2 == 0 { "user" } else { "admin" },
            )
            .await;
            groups.push(g);
        }
        // Half the sequences scope by groups, half take everything.
        let scope = if seed % 2 == 0 {
            json!({"type": "all"})
        } else {
            json!({"type": "groups", "groupIds": [groups[0], groups[1], groups[2]]})
        };
        let mut body = settings(
            "continuous",
            scope,
            json!({"type": "list", "names": ["acme.com"]}),
        );
        body["groupUserLimit"] = json!(3);
        put_settings(&app, &dir, &body).await;
        run(&app, &dir).await;
        let mut created_groups = 0;
        for _ in 0..40 {
            let u = users[rng.below(users.len())].clone();
            let g = groups[rng.below(groups.len())].clone();
            match rng.below(10) {
                8 if users.len() > 3 => {
                    // The user goes; its account stays in the table.
                    let resp = app
                        .scim(&dir, M::DELETE, &format!("/Users/{u}"))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(resp.status(), 204);
                    users.retain(|x| *x != u);
                }
                9 if groups.len() > 3 => {
                    let resp = app
                        .scim(&dir, M::DELETE, &format!("/Groups/{g}"))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(resp.status(), 204);
                    groups.retain(|x| *x != g);
                }
                0 | 1 => add_members(&app, &dir, &g, &[&u]).await,
                6 => {
                    // A new group, then (sometimes) a grant on it.
                    let other = users[rng.below(users.len())].clone();
                    created_groups += 1;
                    let name = format!("N{created_groups}");
                    let n = group(&app, &dir, &name, &[&u, &other]).await;
                    groups.push(n);
                }
                7 => {
                    let role = ["user", "admin"][rng.below(2)];
                    let resp = app
                        .admin(M::POST, &format!("{product}/grants"))
                        .json(&json!({ "groupId": g, "role": role }))
                        .send()
                        .await
                        .unwrap();
                    assert!(resp.status() == 201 || resp.status() == 409);
                }
                2 => {
                    let resp = app
                        .scim(&dir, M::PATCH, &format!("/Groups/{g}"))
                        .json(&json!({
                            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                            "Operations": [{"op": "remove", "path": format!("members[value eq \"{u}\"]")}],
                        }))
                        .send()
                        .await
                        .unwrap();
                    assert!(resp.status().is_success());
                }
                3 => set_active(&app, &dir, &u, rng.below(2) == 0).await,
                4 => {
                    let h = groups[rng.below(groups.len())].clone();
                    if h != g {
                        add_members(&app, &dir, &g, &[&h]).await;
                    }
                }
                _ => {
                    // An email change moves the account to another domain.
                    let n = rng.below(100);
                    let domain = ["acme.com", "other.com"][rng.below(2)];
                    let mut body = user_body(&format!("moved{n}@{domain}"));
                    body["userName"] = json!(format!("{u}@name"));
                    let resp = app
                        .scim(&dir, M::PUT, &format!("/Users/{u}"))
                        .json(&body)
                        .send()
                        .await
                        .unwrap();
                    assert!(resp.status().is_success() || resp.status() == 409);
                }
            }
        }
        settled(&app, &dir, &accounts).await;
        let continuous = access_table(&app, &accounts).await;
        let r = run(&app, &dir).await;
        assert_eq!(
            (&r["counts"]["accessGranted"], &r["counts"]["accessRevoked"]),
            (&json!(0), &json!(0)),
            "seed {seed}: a run changed what the continuous path left: {r}"
        );
        assert_eq!(
            access_table(&app, &accounts).await,
            continuous,
            "seed {seed}"
        );
    }
}

#[tokio::test]
async fn two_processes_never_run_one_directory_at_once() {
    let app = spawn_app_with(|c| {
        c.sync.sync_batch_size = 1;
        c.sync.sync_batch_pause_ms = 100;
    })
    .await;
    let Some(replica) = app
        .spawn_replica_with(|c| {
            c.sync.sync_batch_size = 1;
            c.sync.sync_batch_pause_ms = 100;
        })
        .await
    else {
        return; // SQLite: one process.
    };
    let product = jira(&app).await;
    let dir = app.create_directory("Okta").await;
    scheduled(&app, &dir).await;
    let mut members = Vec::new();
    for n in 0..4 {
        members.push(user(&app, &dir, &format!("u{n}@example.com")).await.0);
    }
    let members: Vec<&str> = members.iter().map(String::as_str).collect();
    let g = group(&app, &dir, "G", &members).await;
    grant(&app, &product, &g, "user").await;
    for _ in 0..3 {
        let (a, b) = tokio::join!(
            app.admin(M::POST, &sync_path(&dir)).send(),
            replica.admin(M::POST, &sync_path(&dir)).send(),
        );
        let mut statuses = [a.unwrap().status().as_u16(), b.unwrap().status().as_u16()];
        statuses.sort();
        assert_eq!(statuses, [202, 409]);
        let status = app
            .ok_json(app.admin(M::GET, &format!("{}/status", sync_path(&dir))))
            .await;
        let id = status["running"]["runId"].as_str().unwrap().to_owned();
        let r = finished(&app, &dir, &id).await;
        assert_eq!(r["state"], "succeeded");
    }
    // The scheduler of each process looks every 50 ms; a due directory is
    // claimed by one of them.
    let fast = |c: &mut scimd::config::ServeConfig| c.sync.sync_tick_ms = 50;
    let a = app.spawn_replica_with(fast).await.unwrap();
    let b = app.spawn_replica_with(fast).await.unwrap();
    // Their schedulers give the directory its first time, then it is due.
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.db()
        .execute("UPDATE sync_schedule SET next_run_at = 0")
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let scheduled_runs = app
        .db()
        .count("SELECT COUNT(*) FROM sync_runs WHERE trigger = 'scheduled'")
        .await;
    assert_eq!(scheduled_runs, 1);
    drop((a, b));
}

#[tokio::test]
async fn org_groups_give_their_grants_at_once_and_runs_keep_them() {
    let app = spawn_app().await;
    let product = jira(&app).await;
    let dir = app.create_directory("Okta").await;
    scheduled(&app, &dir).await;
    let default = created(
        &app,
        "/orgs/default/groups",
        json!({ "name": "jira-users" }),
    )
    .await;
    let default = default["id"].as_str().unwrap().to_owned();
    let admins = created(
        &app,
        "/orgs/default/groups",
        json!({ "name": "jira-admins" }),
    )
    .await;
    let admins = admins["id"].as_str().unwrap().to_owned();
    grant(&app, &product, &default, "user").await;
    grant(&app, &product, &admins, "admin").await;
    let resp = app
        .admin(M::PUT, &format!("{product}/settings"))
        .json(&json!({ "newUsersGetAccess": true, "defaultGroups": [default] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // A new account joins the default group, and has its access at once.
    let (u, a) = user(&app, &dir, "new@example.com").await;
    assert_eq!(access(&app, &a).await, set(&[(&default, "user")]));
    // The admin adds it to another group: at once too.
    let resp = app
        .admin(M::POST, &format!("/orgs/default/groups/{admins}/members"))
        .json(&json!({ "accountIds": [a] }))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let both = set(&[(&default, "user"), (&admins, "admin")]);
    assert_eq!(access(&app, &a).await, both);
    // A run keeps what org groups give an active account …
    let r = run(&app, &dir).await;
    assert_eq!(access(&app, &a).await, both);
    assert_eq!(r["counts"]["accessRevoked"], 0);
    // … and takes it from an inactive one.
    set_active(&app, &dir, &u, false).await;
    run(&app, &dir).await;
    assert!(access(&app, &a).await.is_empty());
}

#[tokio::test]
async fn new_accounts_are_welcomed_once_through_the_outbox() {
    let smtp = crate::helpers::SmtpServer::start().await;
    let url = smtp.url.clone();
    let app = spawn_app_with(|c| {
        c.smtp.smtp_url = Some(url);
        c.smtp.smtp_poll = Duration::from_millis(100);
    })
    .await;
    let product = jira(&app).await;
    let dir = app.create_directory("Okta").await;
    let mut body = settings("scheduled", json!({"type": "all"}), json!({"type": "all"}));
    body["emailNewUsers"] = json!(true);
    put_settings(&app, &dir, &body).await;
    let (u1, _) = user(&app, &dir, "ada@example.com").await;
    let (u2, _) = user(&app, &dir, "grace@example.com").await;
    let (u3, _) = user(&app, &dir, "inactive@example.com").await;
    set_active(&app, &dir, &u3, false).await;
    let g = group(&app, &dir, "Engineering", &[&u1]).await;
    grant(&app, &product, &g, "user").await;
    let _ = u2;
    let preview = app
        .ok_json(app.admin(M::POST, &format!("{}?dryRun=true", sync_path(&dir))))
        .await;
    assert_eq!(preview["emailsToQueue"], 2);
    let r = run(&app, &dir).await;
    assert_eq!(r["counts"]["emailsQueued"], 2);
    assert_eq!(r["counts"]["accountsCreated"], 2);
    eventually("both welcomes delivered", || async {
        smtp.received().len() == 2
    })
    .await;
    let mut to: Vec<String> = smtp.received().iter().map(|m| m.to.join(",")).collect();
    to.sort();
    assert_eq!(to, ["<ada@example.com>", "<grace@example.com>"]);
    let ada = smtp
        .received()
        .into_iter()
        .find(|m| m.to == ["<ada@example.com>"])
        .unwrap();
    assert!(ada.data.contains("jira-software"), "{}", ada.data);
    // A second run, and a reactivated account that was synced before,
    // welcome no one again; an account first synced now is welcomed.
    let r = run(&app, &dir).await;
    assert_eq!(r["counts"]["emailsQueued"], 0);
    set_active(&app, &dir, &u3, true).await;
    let r = run(&app, &dir).await;
    assert_eq!(r["counts"]["emailsQueued"], 1);
    eventually("the third welcome delivered", || async {
        smtp.received().len() == 3
    })
    .await;
    let outbox = app.ok_json(app.admin(M::GET, "/orgs/default/outbox")).await;
    assert_eq!(outbox["messages"].as_array().unwrap().len(), 3);
}

/// An admin deactivating an account takes all its access at once, in both
/// modes; reactivating gives back its org groups' access at once, and its
/// directory groups' access at once when continuous or at the next run when
/// scheduled.
#[tokio::test]
async fn an_admin_deactivation_takes_all_access_at_once_and_reactivation_gives_it_back() {
    let app = spawn_app().await;
    let product = jira(&app).await;
    let TwoModes {
        cont,
        sched,
        ca,
        sa,
        cg,
        sg,
        ..
    } = two_modes(&app, &product, "admin").await;
    let staff = created(&app, "/orgs/default/groups", json!({ "name": "staff" })).await;
    let staff = staff["id"].as_str().unwrap().to_owned();
    grant(&app, &product, &staff, "user").await;
    let resp = app
        .admin(M::POST, &format!("/orgs/default/groups/{staff}/members"))
        .json(&json!({ "accountIds": [ca, sa] }))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    run(&app, &cont).await;
    run(&app, &sched).await;
    let c_all = set(&[(&cg, "admin"), (&staff, "user")]);
    let s_all = set(&[(&sg, "admin"), (&staff, "user")]);
    assert_eq!(access(&app, &ca).await, c_all);
    assert_eq!(access(&app, &sa).await, s_all);

    let account_action = |account: &str, action: &str| {
        app.admin(
            M::POST,
            &format!("/orgs/default/accounts/{account}/{action}"),
        )
    };
    for a in [&ca, &sa] {
        let v = app.ok_json(account_action(a, "deactivate")).await;
        assert_eq!(v["active"], false);
        // Gone with the response, whatever the directory's mode.
        assert!(access(&app, a).await.is_empty(), "{a}");
    }
    let revoked = app
        .db()
        .count(
            "SELECT COUNT(*) FROM audit_events WHERE action = 'access.revoked' \
             AND detail LIKE '%\"trigger\":\"admin\"%'",
        )
        .await;
    assert_eq!(revoked, 2);
    // The feed says it too, once the events are in it.
    let feed_path = "/orgs/default/events?types=access.revoked&limit=1000";
    eventually("the feed has the admin's revocations", || async {
        let feed = app.ok_json(app.admin(M::GET, feed_path)).await;
        let by_admin: Vec<String> = feed["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["data"]["trigger"] == "admin")
            .map(|e| e["data"]["accountId"].as_str().unwrap().to_owned())
            .collect();
        by_admin == [ca.clone(), sa.clone()]
    })
    .await;
    // A run gives an inactive account nothing back.
    let r = run(&app, &cont).await;
    assert_eq!(r["counts"]["accessGranted"], 0);
    assert!(access(&app, &ca).await.is_empty());

    // Reactivated: the org group's access at once; the directory group's at
    // once when continuous …
    app.ok_json(account_action(&ca, "reactivate")).await;
    assert!(access(&app, &ca)
        .await
        .contains(&(staff.clone(), "user".to_owned())));
    eventually(
        "continuous reactivation gives the group's access back",
        || async { access(&app, &ca).await == c_all },
    )
    .await;
    // … and at the next run when scheduled.
    app.ok_json(account_action(&sa, "reactivate")).await;
    assert_eq!(access(&app, &sa).await, set(&[(&staff, "user")]));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(access(&app, &sa).await, set(&[(&staff, "user")]));
    run(&app, &sched).await;
    assert_eq!(access(&app, &sa).await, s_all);
}

/// The runs of a directory, newest first.
async fn runs_of(app: &TestApp, dir: &TestDirectory) -> Vec<Value> {
    let runs = app
        .ok_json(app.admin(M::GET, &format!("{}/runs", sync_path(dir))))
        .await;
    runs["runs"].as_array().unwrap().clone()
}

/// In continuous mode a deleted user's account loses what the directory
/// gave it, and a deleted group's members lose its grants, without a run;
/// a deleted group nested in another changes what is above it, which a
/// run works out.
#[tokio::test]
async fn deleting_a_user_or_a_group_takes_their_access_without_a_run() {
    let app = spawn_app().await;
    let product = jira(&app).await;
    let dir = app.create_directory("Okta").await;
    let (u1, a1) = user(&app, &dir, "one@example.com").await;
    let (u2, a2) = user(&app, &dir, "two@example.com").await;
    let (u3, a3) = user(&app, &dir, "three@example.com").await;
    let g = group(&app, &dir, "G", &[&u1, &u2]).await;
    let h = group(&app, &dir, "H", &[&u2]).await;
    let inner = group(&app, &dir, "Inner", &[&u3]).await;
    let outer = group(&app, &dir, "Outer", &[&inner]).await;
    grant(&app, &product, &g, "user").await;
    grant(&app, &product, &h, "admin").await;
    grant(&app, &product, &outer, "user").await;
    run(&app, &dir).await;
    assert_eq!(access(&app, &a1).await, set(&[(&g, "user")]));
    assert_eq!(access(&app, &a2).await, set(&[(&g, "user"), (&h, "admin")]));
    assert_eq!(access(&app, &a3).await, set(&[(&outer, "user")]));
    // The setup's own changes (Outer holding a group starts a run once the
    // one above ends) are behind us.
    settled(&app, &dir, &[a1.clone(), a2.clone(), a3.clone()]).await;
    let runs = runs_of(&app, &dir).await.len();

    let resp = app
        .scim(&dir, M::DELETE, &format!("/Users/{u1}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    eventually("a deleted user's account loses its access", || async {
        access(&app, &a1).await.is_empty()
    })
    .await;
    let resp = app
        .scim(&dir, M::DELETE, &format!("/Groups/{h}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    // The group's grant went with it, in the same transaction.
    assert_eq!(access(&app, &a2).await, set(&[(&g, "user")]));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(runs_of(&app, &dir).await.len(), runs, "a run was started");

    // Inner is nested in Outer: a run takes Outer's grant from its users.
    let resp = app
        .scim(&dir, M::DELETE, &format!("/Groups/{inner}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    eventually("a nested group's users lose what was above it", || async {
        access(&app, &a3).await.is_empty()
    })
    .await;
    let after = runs_of(&app, &dir).await;
    assert_eq!(after.len(), runs + 1);
    assert_eq!(after[0]["trigger"], "continuous");
    assert_eq!(access(&app, &a2).await, set(&[(&g, "user")]));
}
