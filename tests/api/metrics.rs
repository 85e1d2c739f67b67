//! `GET /metrics`: each series appears, and moves with the traffic that
//! should move it. Every test runs its own server, and each server counts
//! only its own requests, so the counts are exact.

use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use crate::helpers::{assert_scim_error, spawn_app, spawn_app_with, TestApp, ADMIN_TOKEN, M};

const USER_ROUTE: &str = "/scim/directory/{directory_id}/Users/{id}";
const USERS_ROUTE: &str = "/scim/directory/{directory_id}/Users";

/// A scrape of one server.
struct Scrape(String);

impl Scrape {
    /// The value of the sample `name` whose labels include all of
    /// `labels`, summed over the samples that match (`None`: no sample).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut found = None;
        for line in self.0.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let (series_name, series_labels) = match series.split_once('{') {
                Some((n, rest)) => (n, parse_labels(rest.trim_end_matches('}'))),
                None => (series, Vec::new()),
            };
            let matches = series_name == name
                && labels
                    .iter()
                    .all(|(k, v)| series_labels.iter().any(|(lk, lv)| lk == k && lv == v));
            if matches {
                let v: f64 = value.parse().expect("a number");
                found = Some(found.unwrap_or(0.0) + v);
            }
        }
        found
    }

    fn count(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels).unwrap_or(0.0)
    }
}

/// `k="v",k2="v2"` (values in these tests hold no quotes or commas).
fn parse_labels(text: &str) -> Vec<(String, String)> {
    text.split("\",")
        .filter_map(|pair| {
            let (k, v) = pair.split_once("=\"")?;
            Some((k.to_owned(), v.trim_end_matches('"').to_owned()))
        })
        .collect()
}

async fn scrape_at(app: &TestApp, base: &str) -> Scrape {
    let resp = app
        .client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    let text = resp.text().await.expect("text");
    assert!(text.ends_with("# EOF\n"), "{text}");
    Scrape(text)
}

async fn scrape(app: &TestApp) -> Scrape {
    scrape_at(app, &app.address).await
}

#[tokio::test]
async fn a_missing_user_counts_under_its_route_template_as_an_error_without_scim_type() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let missing = Uuid::new_v4();
    let request = [("method", "GET"), ("route", USER_ROUTE), ("status", "404")];
    let not_found = [("scim_type", "none"), ("status", "404")];
    let before = scrape(&app).await;
    assert_eq!(before.value("scimd_http_requests_total", &request), None);
    for n in 1..=2 {
        let resp = app
            .scim(&dir, M::GET, &format!("/Users/{missing}"))
            .send()
            .await
            .unwrap();
        assert_scim_error(resp, 404, None).await;
        let after = scrape(&app).await;
        assert_eq!(after.count("scimd_http_requests_total", &request), n as f64);
        assert_eq!(
            after.count("scimd_http_request_duration_seconds_count", &request),
            n as f64
        );
        assert_eq!(after.count("scimd_scim_errors_total", &not_found), n as f64);
        // The path itself, with its ids, is never a label.
        assert!(!after.0.contains(&missing.to_string()));
        assert!(!after.0.contains(&dir.id));
    }
}

#[tokio::test]
async fn an_invalid_filter_counts_as_invalid_filter() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let labels = [("scim_type", "invalidFilter"), ("status", "400")];
    assert_eq!(
        scrape(&app).await.value("scimd_scim_errors_total", &labels),
        None
    );
    let resp = app
        .scim(&dir, M::GET, "/Users?filter=userName%20zz%20%22x%22")
        .send()
        .await
        .unwrap();
    assert_scim_error(resp, 400, Some("invalidFilter")).await;
    let after = scrape(&app).await;
    assert_eq!(after.count("scimd_scim_errors_total", &labels), 1.0);
    let request = [("method", "GET"), ("route", USERS_ROUTE), ("status", "400")];
    assert_eq!(after.count("scimd_http_requests_total", &request), 1.0);
}

#[tokio::test]
async fn credentials_are_counted_by_outcome() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let verifications = "scimd_auth_verifications_total";
    let api_key = |outcome| [("credential", "api_key"), ("outcome", outcome)];
    let before = scrape(&app).await;
    // Creating the directory used the configured admin token.
    assert!(before.count(verifications, &[("outcome", "configured")]) >= 1.0);
    assert_eq!(before.value(verifications, &api_key("rejected")), None);

    let wrong = format!("{}.wrong-secret", dir.api_key.rsplit_once('.').unwrap().0);
    let resp = app
        .client
        .get(format!("{}/Users", dir.base_url))
        .bearer_auth(&wrong)
        .send()
        .await
        .unwrap();
    assert_scim_error(resp, 401, None).await;
    let after_wrong = scrape(&app).await;
    assert_eq!(after_wrong.count(verifications, &api_key("rejected")), 1.0);
    assert_eq!(
        after_wrong.count(
            "scimd_scim_errors_total",
            &[("scim_type", "none"), ("status", "401")]
        ),
        1.0
    );

    // The right key: argon2 once, then from memory.
    for _ in 0..3 {
        app.get_json(&dir, "/Users").await;
    }
    let after = scrape(&app).await;
    assert_eq!(after.count(verifications, &api_key("argon2_verified")), 1.0);
    assert_eq!(after.count(verifications, &api_key("cache_hit")), 2.0);
    assert_eq!(after.count(verifications, &api_key("rejected")), 1.0);

    // A malformed token names no credential kind.
    let resp = app
        .client
        .get(format!("{}/Users", dir.base_url))
        .bearer_auth("not-a-key")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let after = scrape(&app).await;
    let unrecognised = [("credential", "unrecognised"), ("outcome", "rejected")];
    assert_eq!(after.count(verifications, &unrecognised), 1.0);
}

#[tokio::test]
async fn user_cache_hits_and_misses_are_counted() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let user = app.create_user(&dir, "ada@example.com").await;
    let id = user["id"].as_str().unwrap();
    let before = scrape(&app).await;
    let hits = before.count("scimd_user_cache_hits_total", &[]);
    let misses = before.count("scimd_user_cache_misses_total", &[]);
    // On PostgreSQL nothing is served from memory until the change feed
    // listens, so a hit may take a few reads.
    let mut after = before;
    for _ in 0..100 {
        app.get_json(&dir, &format!("/Users/{id}")).await;
        after = scrape(&app).await;
        if after.count("scimd_user_cache_hits_total", &[]) > hits {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let new_hits = after.count("scimd_user_cache_hits_total", &[]) - hits;
    let new_misses = after.count("scimd_user_cache_misses_total", &[]) - misses;
    assert!(new_hits >= 1.0, "{new_hits}");
    assert!(new_misses >= 1.0, "the first read is a miss: {new_misses}");
}

#[tokio::test]
async fn the_pool_is_reported() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    app.get_json(&dir, "/Users?filter=userName%20eq%20%22x%22")
        .await;
    let s = scrape(&app).await;
    // The tests' stores have 8 connections.
    assert_eq!(s.value("scimd_db_pool_max_connections", &[]), Some(8.0));
    let idle = s.value("scimd_db_pool_connections", &[("state", "idle")]);
    let in_use = s.value("scimd_db_pool_connections", &[("state", "in_use")]);
    let (idle, in_use) = (idle.unwrap(), in_use.unwrap());
    assert!(idle >= 1.0 && idle + in_use <= 8.0, "{idle} {in_use}");
    let waits = s.count("scimd_db_pool_acquire_wait_seconds_count", &[]);
    assert!(waits >= 1.0, "{waits}");
    assert_eq!(
        s.count(
            "scimd_db_pool_acquire_wait_seconds_bucket",
            &[("le", "+Inf")]
        ),
        waits
    );
}

#[tokio::test]
async fn failed_writes_recorded_in_the_audit_log_are_counted() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    app.create_user(&dir, "taken@example.com").await;
    let created = [("action", "user.created")];
    assert_eq!(
        scrape(&app)
            .await
            .value("scimd_audit_failure_events_total", &created),
        None
    );
    let resp = app
        .scim(&dir, M::POST, "/Users")
        .json(&crate::helpers::user_body("taken@example.com"))
        .send()
        .await
        .unwrap();
    assert_scim_error(resp, 409, Some("uniqueness")).await;
    let s = scrape(&app).await;
    assert_eq!(s.count("scimd_audit_failure_events_total", &created), 1.0);
    assert_eq!(s.value("scimd_audit_write_failures_total", &[]), Some(0.0));

    // A failure event that cannot be written is counted as such.
    let sql = if app.db().is_postgres() {
        "CREATE FUNCTION refuse_failure() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'failure refused'; END $$; \
         CREATE TRIGGER refuse_failure BEFORE INSERT ON audit_events FOR EACH ROW \
         WHEN (NEW.outcome = 'failure') EXECUTE FUNCTION refuse_failure();"
    } else {
        "CREATE TRIGGER refuse_failure BEFORE INSERT ON audit_events \
         WHEN NEW.outcome = 'failure' BEGIN SELECT RAISE(ABORT, 'failure refused'); END;"
    };
    app.db().execute(sql).await;
    let resp = app
        .scim(&dir, M::POST, "/Users")
        .json(&crate::helpers::user_body("taken@example.com"))
        .send()
        .await
        .unwrap();
    assert_scim_error(resp, 409, Some("uniqueness")).await;
    let s = scrape(&app).await;
    assert_eq!(s.count("scimd_audit_failure_events_total", &created), 1.0);
    assert_eq!(s.value("scimd_audit_write_failures_total", &[]), Some(1.0));
}

#[tokio::test]
async fn unmatched_paths_share_one_label_and_scrapes_are_not_counted() {
    let app = spawn_app().await;
    let resp = app
        .client
        .get(format!("{}/no/such/path-4f1c", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    // Under the SCIM prefix too.
    let dir = app.create_directory("Okta").await;
    let resp = app.scim(&dir, M::GET, "/Nope-9e2d").send().await.unwrap();
    assert_eq!(resp.status(), 404);
    scrape(&app).await;
    let s = scrape(&app).await;
    let unmatched = [("method", "GET"), ("route", "unmatched"), ("status", "404")];
    assert_eq!(
        s.count("scimd_http_requests_total", &unmatched),
        2.0,
        "{}",
        s.0
    );
    assert!(!s.0.contains("path-4f1c"));
    assert!(!s.0.contains("Nope-9e2d"));
    assert!(!s.0.contains("route=\"/metrics\""));
    // Invented methods share a label too.
    let brew = reqwest::Method::from_bytes(b"BREW").unwrap();
    app.client
        .request(brew, format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    let s = scrape(&app).await;
    assert!(!s.0.contains("BREW"));

    assert_eq!(
        s.count(
            "scimd_http_requests_total",
            &[("method", "other"), ("route", "/healthz")]
        ),
        1.0
    );
}

#[tokio::test]
async fn admin_requests_count_under_their_templates() {
    let app = spawn_app().await;
    let resp = app
        .admin(
            M::GET,
            &format!("/orgs/default/directories/{}", Uuid::new_v4()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let s = scrape(&app).await;
    let found: Vec<&str> =
        s.0.lines()
            .filter(|l| l.starts_with("scimd_http_requests_total{") && l.contains("status=\"404\""))
            .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("route=\"/admin/v1/orgs/{"),
        "{}",
        found[0]
    );
    // Admin errors are not SCIM errors.
    assert_eq!(s.value("scimd_scim_errors_total", &[]), None);
}

#[tokio::test]
async fn each_server_counts_only_its_own_requests() {
    let a = spawn_app().await;
    let b = spawn_app().await;
    for _ in 0..3 {
        a.client
            .get(format!("{}/healthz", a.address))
            .send()
            .await
            .unwrap();
    }
    let healthz = [("route", "/healthz"), ("status", "200")];
    assert_eq!(
        scrape(&a)
            .await
            .count("scimd_http_requests_total", &healthz),
        3.0
    );
    assert_eq!(
        scrape(&b)
            .await
            .value("scimd_http_requests_total", &healthz),
        None
    );
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_process_memory_is_reported() {
    let app = spawn_app().await;
    let rss = scrape(&app)
        .await
        .value("process_resident_memory_bytes", &[])
        .unwrap();
    assert!(rss > 1_000_000.0, "{rss}");
}

#[tokio::test]
async fn metrics_can_move_to_a_listener_of_their_own() {
    let app = spawn_app_with(|c| c.metrics_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    let metrics = app.metrics_address.clone().expect("a metrics listener");
    // No longer on the main listener.
    let resp = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let s = scrape_at(&app, &metrics).await;
    assert_eq!(
        s.count(
            "scimd_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ),
        1.0
    );
    // The admin API is not served there.
    let resp = app
        .client
        .get(format!("{metrics}/admin/v1/orgs/default/directories"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

/// Polls the open-connections gauge (scraped on the metrics listener, whose
/// own connections are not counted) until it is `want`.
async fn wait_for_open_connections(app: &TestApp, want: f64) {
    let metrics = app.metrics_address.clone().unwrap();
    let mut got = None;
    for _ in 0..200 {
        got = scrape_at(app, &metrics)
            .await
            .value("scimd_http_open_connections", &[]);
        if got == Some(want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("open connections: {got:?}, expected {want}");
}

#[tokio::test]
async fn open_connections_are_counted_while_open() {
    let app = spawn_app_with(|c| c.metrics_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    wait_for_open_connections(&app, 0.0).await;
    let main = app.address.trim_start_matches("http://").to_owned();
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(tokio::net::TcpStream::connect(&main).await.unwrap());
    }
    wait_for_open_connections(&app, 3.0).await;
    // A connection that made a request is one connection.
    let client = reqwest::Client::new();
    let resp = client
        .post(format!("{}/admin/v1/orgs/default/directories", app.address))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "name": "kept-alive" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    wait_for_open_connections(&app, 4.0).await;
    drop(open);
    wait_for_open_connections(&app, 1.0).await;
    drop(client);
    wait_for_open_connections(&app, 0.0).await;
}
