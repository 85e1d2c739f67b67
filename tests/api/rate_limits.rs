//! Request rates: a token bucket per directory on the SCIM paths and per
//! admin token on the admin API; `429` with `Retry-After` over it.
//! Limits are small and set by configuration or PATCH, so every test
//! empties a bucket in a few requests.

use std::time::{Duration, Instant};

use reqwest::{Method, Response};
use serde_json::{json, Value};

use crate::helpers::{assert_scim_error, spawn_app_with, TestApp, TestDirectory};

/// Requests a bucket that holds `burst` tokens must refuse within: the
/// burst, then as many more as could refill while a slow machine sends
/// them (at 1 per second, far fewer than this).
const PATIENCE: usize = 20;

async fn list_users(app: &TestApp, dir: &TestDirectory) -> Response {
    app.scim(dir, Method::GET, "/Users?count=1")
        .send()
        .await
        .unwrap()
}

/// Sends `burst` requests, which must all succeed, then more until one
/// is refused; returns the refusal.
async fn exhaust(app: &TestApp, dir: &TestDirectory, burst: usize) -> Response {
    for i in 0..burst {
        let resp = list_users(app, dir).await;
        assert_eq!(resp.status(), 200, "request {i} of the burst of {burst}");
    }
    for _ in 0..PATIENCE {
        let resp = list_users(app, dir).await;
        if resp.status() == 429 {
            return resp;
        }
        assert_eq!(resp.status(), 200);
    }
    panic!("no 429 after {burst} + {PATIENCE} requests");
}

fn retry_after(resp: &Response) -> u64 {
    resp.headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in whole seconds")
}

async fn patch_directory(app: &TestApp, id: &str, body: Value) -> Response {
    app.admin(Method::PATCH, &format!("/orgs/default/directories/{id}"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn admin_error(resp: Response, status: u16, code: &str) -> String {
    assert_eq!(resp.status(), status);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], code, "{body}");
    body["message"].as_str().expect("message").to_owned()
}

#[tokio::test]
async fn over_its_rate_a_directory_gets_429_too_many_with_retry_after() {
    let app = spawn_app_with(|c| {
        c.rate_limit_per_second = 1;
        c.rate_limit_burst = 3;
    })
    .await;
    let dir = app.create_directory("Okta").await;
    let refused = exhaust(&app, &dir, 3).await;
    assert_eq!(retry_after(&refused), 1);
    let body = assert_scim_error(refused, 429, Some("tooMany")).await;
    assert!(body["detail"].as_str().unwrap().contains("retry"), "{body}");

    // A write over the rate is refused before anything is written or
    // recorded.
    let mut refused_write = None;
    for _ in 0..PATIENCE {
        let resp = app
            .scim(&dir, Method::POST, "/Users")
            .json(&crate::helpers::user_body("late@example.com"))
            .send()
            .await
            .unwrap();
        if resp.status() == 429 {
            refused_write = Some(resp);
            break;
        }
        // Refilled meanwhile: written, and a second try is a 409.
        assert!(matches!(resp.status().as_u16(), 201 | 409));
    }
    let resp = refused_write.expect("a refused write");
    assert!(retry_after(&resp) >= 1);
    assert_scim_error(resp, 429, Some("tooMany")).await;
    let recorded = app
        .db()
        .count("SELECT COUNT(*) FROM audit_events WHERE status = 429")
        .await;
    assert_eq!(recorded, 0, "a refused request is not an audit event");

    // The /scim/v2 mount is the same directory, and the same bucket.
    let resp = app
        .client
        .get(format!("{}/scim/v2/Users", app.address))
        .bearer_auth(&dir.api_key)
        .send()
        .await
        .unwrap();
    assert_scim_error(resp, 429, Some("tooMany")).await;

    // A request without a valid key is answered 401 as before.
    let resp = app
        .client
        .get(format!("{}/Users", dir.base_url))
        .bearer_auth("scimd_0123456789abcdef.wrong")
        .send()
        .await
        .unwrap();
    assert_scim_error(resp, 401, None).await;
}

#[tokio::test]
async fn a_directory_at_its_limit_never_slows_or_limits_another() {
    let app = spawn_app_with(|c| {
        c.rate_limit_per_second = 1;
        c.rate_limit_burst = 5;
    })
    .await;
    let busy = app.create_directory("Busy").await;
    let quiet = app.create_directory("Quiet").await;
    exhaust(&app, &busy, 5).await;
    // The busy directory stays refused while the quiet one spends its
    // whole burst, each request answered at once.
    let mut slowest = Duration::ZERO;
    for i in 0..5 {
        let started = Instant::now();
        let resp = list_users(&app, &quiet).await;
        slowest = slowest.max(started.elapsed());
        assert_eq!(resp.status(), 200, "quiet request {i}");
        let resp = list_users(&app, &busy).await;
        assert_eq!(resp.status(), 429, "busy request {i}");
    }
    assert!(slowest < Duration::from_secs(2), "slowest {slowest:?}");
}

#[tokio::test]
async fn a_directory_limit_set_by_patch_beats_the_global_one() {
    let app = spawn_app_with(|c| {
        c.rate_limit_per_second = 1;
        c.rate_limit_burst = 2;
    })
    .await;
    let roomy = app.create_directory("Roomy").await;
    let tight = app.create_directory("Tight").await;

    let resp = patch_directory(
        &app,
        &roomy.id,
        json!({ "rateLimit": { "perSecond": 1, "burst": 8 } }),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["rateLimit"], json!({ "perSecond": 1, "burst": 8 }));
    assert_eq!(
        body["effectiveRateLimit"],
        json!({ "perSecond": 1, "burst": 8 })
    );
    assert_eq!(body["id"], roomy.id.as_str());
    exhaust(&app, &roomy, 8).await;

    let resp = patch_directory(
        &app,
        &tight.id,
        json!({ "rateLimit": { "perSecond": 1, "burst": 1 } }),
    )
    .await;
    assert_eq!(resp.status(), 200);
    exhaust(&app, &tight, 1).await;

    // Back to the default: the global burst of 2, in a fresh bucket.
    let resp = patch_directory(&app, &roomy.id, json!({ "rateLimit": null })).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["rateLimit"], Value::Null);
    assert_eq!(
        body["effectiveRateLimit"],
        json!({ "perSecond": 1, "burst": 2 })
    );
    exhaust(&app, &roomy, 2).await;

    // GET shows what is stored; the list too.
    let got: Value = app
        .ok_json(app.admin(
            Method::GET,
            &format!("/orgs/default/directories/{}", tight.id),
        ))
        .await;
    assert_eq!(got["rateLimit"], json!({ "perSecond": 1, "burst": 1 }));
    let list: Value = app
        .ok_json(app.admin(Method::GET, "/orgs/default/directories"))
        .await;
    let listed = list["directories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == tight.id.as_str())
        .unwrap();
    assert_eq!(listed["rateLimit"], json!({ "perSecond": 1, "burst": 1 }));
}

#[tokio::test]
async fn with_the_default_off_only_directories_with_their_own_limit_are_limited() {
    let app = spawn_app_with(|c| c.rate_limit_per_second = 0).await;
    let free = app.create_directory("Free").await;
    let limited = app.create_directory("Limited").await;
    let got: Value = app
        .ok_json(app.admin(
            Method::GET,
            &format!("/orgs/default/directories/{}", free.id),
        ))
        .await;
    assert_eq!(got["rateLimit"], Value::Null);
    assert_eq!(got["effectiveRateLimit"], Value::Null);
    let resp = patch_directory(
        &app,
        &limited.id,
        json!({ "rateLimit": { "perSecond": 1, "burst": 2 } }),
    )
    .await;
    assert_eq!(resp.status(), 200);
    exhaust(&app, &limited, 2).await;
    for _ in 0..30 {
        assert_eq!(list_users(&app, &free).await.status(), 200);
    }
}

#[tokio::test]
async fn a_patch_is_validated_and_names_an_existing_directory() {
    let app = spawn_app_with(|_| {}).await;
    let dir = app.create_directory("Entra").await;

    let got: Value = app
        .ok_json(app.admin(
            Method::GET,
            &format!("/orgs/default/directories/{}", dir.id),
        ))
        .await;
    assert_eq!(got["rateLimit"], Value::Null);
    assert_eq!(
        got["effectiveRateLimit"],
        json!({ "perSecond": 200, "burst": 1000 }),
        "the default"
    );

    for (body, says) in [
        (json!({}), "no field"),
        (json!({ "name": "renamed" }), "unknown field 'name'"),
        (
            json!({ "rateLimit": { "perSecond": 5, "burst": 5 }, "extra": 1 }),
            "unknown field 'extra'",
        ),
        (json!({ "rateLimit": 5 }), "rateLimit must be an object"),
        (
            json!({ "rateLimit": { "perSecond": 0, "burst": 5 } }),
            "perSecond must be an integer from 1",
        ),
        (
            json!({ "rateLimit": { "perSecond": -3, "burst": 5 } }),
            "perSecond must be",
        ),
        (
            json!({ "rateLimit": { "perSecond": 2.5, "burst": 5 } }),
            "perSecond must be",
        ),
        (
            json!({ "rateLimit": { "perSecond": "5", "burst": 5 } }),
            "perSecond must be",
        ),
        (
            json!({ "rateLimit": { "perSecond": 5, "burst": 1_000_001 } }),
            "burst must be an integer from 1 to 1000000",
        ),
        (
            json!({ "rateLimit": { "perSecond": 5 } }),
            "burst is required",
        ),
        (
            json!({ "rateLimit": { "perSecond": 5, "burst": 5, "window": 60 } }),
            "unknown field 'rateLimit.window'",
        ),
        (json!([1]), "JSON object"),
    ] {
        let resp = patch_directory(&app, &dir.id, body.clone()).await;
        let message = admin_error(resp, 400, "bad_request").await;
        assert!(message.contains(says), "{body}: {message}");
    }
    // Malformed JSON too.
    let resp = app
        .admin(
            Method::PATCH,
            &format!("/orgs/default/directories/{}", dir.id),
        )
        .header("content-type", "application/json")
        .body("{\"rateLimit\":")
        .send()
        .await
        .unwrap();
    admin_error(resp, 400, "bad_request").await;

    // Nothing of the refused bodies was kept.
    let got: Value = app
        .ok_json(app.admin(
            Method::GET,
            &format!("/orgs/default/directories/{}", dir.id),
        ))
        .await;
    assert_eq!(got["rateLimit"], Value::Null);

    let valid = json!({ "rateLimit": { "perSecond": 5, "burst": 5 } });
    for id in [uuid::Uuid::new_v4().to_string(), "not-a-uuid".to_owned()] {
        let resp = patch_directory(&app, &id, valid.clone()).await;
        admin_error(resp, 404, "not_found").await;
    }
    let resp = app
        .client
        .patch(format!(
            "{}/admin/v1/orgs/default/directories/{}",
            app.address, dir.id
        ))
        .json(&valid)
        .send()
        .await
        .unwrap();
    admin_error(resp, 401, "unauthorized").await;

    // The change is recorded.
    let resp = patch_directory(&app, &dir.id, valid).await;
    assert_eq!(resp.status(), 200);
    let events = app
        .db()
        .count("SELECT COUNT(*) FROM audit_events WHERE action = 'directory.settings_changed'")
        .await;
    assert_eq!(events, 1);
}

#[tokio::test]
async fn over_its_rate_an_admin_token_gets_429_with_retry_after() {
    let app = spawn_app_with(|c| {
        c.admin_rate_limit_per_second = 1;
        c.admin_rate_limit_burst = 3;
        c.rate_limit_per_second = 1;
        c.rate_limit_burst = 3;
    })
    .await;
    let dir = app.create_directory("Okta").await;
    let mut refused = None;
    for _ in 0..PATIENCE {
        let resp = app
            .admin(Method::GET, "/orgs/default/directories")
            .send()
            .await
            .unwrap();
        if resp.status() == 429 {
            refused = Some(resp);
            break;
        }
        assert_eq!(resp.status(), 200);
    }
    let refused = refused.expect("a 429 for the admin token");
    assert_eq!(retry_after(&refused), 1);
    let message = admin_error(refused, 429, "too_many_requests").await;
    assert!(message.contains("retry"), "{message}");
    // The directory's own bucket is another one.
    exhaust(&app, &dir, 3).await;
}

#[tokio::test]
async fn health_endpoints_are_never_limited() {
    let app = spawn_app_with(|c| {
        c.rate_limit_per_second = 1;
        c.rate_limit_burst = 1;
        c.admin_rate_limit_per_second = 1;
        c.admin_rate_limit_burst = 1;
    })
    .await;
    let dir = app.create_directory("Busy").await;
    exhaust(&app, &dir, 1).await;
    for _ in 0..30 {
        for path in ["/healthz", "/readyz"] {
            let resp = app
                .client
                .get(format!("{}{path}", app.address))
                .bearer_auth(&dir.api_key)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "{path}");
        }
    }
}

/// On PostgreSQL, a limit set through one server applies on another once
/// that one re-reads the key (`--key-cache-seconds`).
#[tokio::test]
async fn a_limit_set_on_one_server_reaches_the_others() {
    let configure = |c: &mut scimd::config::ServeConfig| {
        c.rate_limit_per_second = 1;
        c.rate_limit_burst = 2;
        c.key_cache_seconds = 1;
    };
    let app = spawn_app_with(configure).await;
    let Some(replica) = app.spawn_replica_with(configure).await else {
        return; // one process on SQLite
    };
    let dir = app.create_directory("Shared").await;
    exhaust(&replica, &dir, 2).await;
    let resp = patch_directory(
        &app,
        &dir.id,
        json!({ "rateLimit": { "perSecond": 1, "burst": 12 } }),
    )
    .await;
    assert_eq!(resp.status(), 200);
    // After the key's cache window, the replica reads the new limit: a
    // fresh bucket of 12, far more than the default's refill in the wait.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    exhaust(&replica, &dir, 12).await;
}
