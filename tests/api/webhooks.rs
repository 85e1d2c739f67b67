//! Webhooks through the admin API, delivered to receivers on 127.0.0.1:
//! signatures verified with the Standard Webhooks algorithm written out
//! here, retries after failures with every event once and in order, a
//! hanging receiver beside a healthy one, failing endpoints, replay, secret
//! rotation, SSRF refusal, a process killed mid-delivery, and, on
//! PostgreSQL, two processes sharing the work.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::{spawn_app_with, TestApp, TestDirectory, M};
use crate::sites::assert_admin_error;
use crate::sync_crash::{database, Server};

/// One request a receiver got.
#[derive(Clone, Debug)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    raw: Vec<u8>,
    body: Value,
    /// What the receiver answered: 2xx or not (a hung request counts as not).
    accepted: bool,
}

/// How a receiver answers.
#[derive(Default)]
struct Behaviour {
    /// Answer 500 to this many requests first.
    fail_next: usize,
    /// Never answer.
    hang: bool,
    /// Answer 500 to every request.
    fail_all: bool,
}

#[derive(Clone, Default)]
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    behaviour: Arc<Mutex<Behaviour>>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, raw: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (hang, accepted) = {
        let mut b = r.behaviour.lock().unwrap();
        if b.hang {
            (true, false)
        } else if b.fail_all {
            (false, false)
        } else if b.fail_next > 0 {
            b.fail_next -= 1;
            (false, false)
        } else {
            (false, true)
        }
    };
    r.got.lock().unwrap().push(Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
        raw: raw.to_vec(),
        accepted,
    });
    if hang {
        std::future::pending::<()>().await;
    }
    if accepted {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut r = Receiver {
            url: format!("http://{}/hook", listener.local_addr().unwrap()),
            ..Receiver::default()
        };
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        r.url = r.url.clone();
        r
    }

    fn set(&self, f: impl FnOnce(&mut Behaviour)) {
        f(&mut self.behaviour.lock().unwrap());
    }

    fn all(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// The messages it accepted, in the order it got them.
    fn accepted(&self) -> Vec<Received> {
        self.all().into_iter().filter(|r| r.accepted).collect()
    }

    /// Waits (generously) until `enough` holds of what it accepted.
    async fn until(&self, what: &str, enough: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let got = self.accepted();
            if enough(&got) {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "the receiver never got {what}: {:#?}",
                types(&got)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn types(got: &[Received]) -> Vec<String> {
    got.iter()
        .map(|r| format!("{} #{}", r.body["type"], r.body["sequence"]))
        .collect()
}

/// Verifies a message as the Standard Webhooks specification says, with
/// HMAC-SHA256 of `{id}.{timestamp}.{body}` keyed by the secret's base64
/// after `whsec_`: written out here, apart from the server's own code.
fn verifies(secret: &str, r: &Received) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.", r.id, r.timestamp).as_bytes());
    mac.update(&r.raw);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    r.signature.split(' ').any(|s| s == expected)
}

async fn app() -> TestApp {
    app_with(|_| {}).await
}

async fn app_with(configure: impl FnOnce(&mut scimd::config::ServeConfig)) -> TestApp {
    spawn_app_with(|c| {
        c.webhooks.webhook_allow_private = true;
        c.admin_rate_limit_per_second = 0;
        configure(c);
    })
    .await
}

async fn create_webhook(app: &TestApp, body: Value) -> Value {
    app.ok_json_created(app.admin(M::POST, "/orgs/default/webhooks").json(&body))
        .await
}

async fn user(app: &TestApp, dir: &TestDirectory, name: &str) -> String {
    app.create_user(dir, name).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn webhook(app: &TestApp, id: &str) -> Value {
    app.ok_json(app.admin(M::GET, &format!("/orgs/default/webhooks/{id}")))
        .await
}

/// The `user.created` messages accepted, as user ids in order.
fn created_users(got: &[Received]) -> Vec<String> {
    got.iter()
        .filter(|r| r.body["type"] == "user.created")
        .map(|r| {
            r.body["data"]["user"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

/// Sequences strictly increase: in order, none twice.
fn assert_in_order_once(got: &[Received]) {
    let seqs: Vec<i64> = got
        .iter()
        .map(|r| r.body["sequence"].as_i64().unwrap())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "not once and in order: {seqs:?}"
    );
}

#[tokio::test]
async fn a_webhook_is_sent_signed_events_and_its_secret_is_shown_once() {
    let app = app().await;
    let receiver = Receiver::start().await;
    let created = create_webhook(
        &app,
        json!({"url": receiver.url, "types": ["user.*"], "description": "downstream"}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{created}");
    assert_eq!(created["types"], json!(["user.*"]));
    assert_eq!(created["status"], "active");
    let read = webhook(&app, &id).await;
    assert!(read.get("secret").is_none(), "{read}");
    assert!(!read.to_string().contains(&secret));
    let listed = app
        .ok_json(app.admin(M::GET, "/orgs/default/webhooks"))
        .await;
    assert_eq!(listed["webhooks"][0]["id"], id.as_str());
    assert!(!listed.to_string().contains(&secret));

    let dir = app.create_directory("hooks").await;
    let alice = user(&app, &dir, "alice@example.com").await;
    let got = receiver
        .until("user.created", |g| !created_users(g).is_empty())
        .await;
    let m = &got[0];
    assert_eq!(created_users(&got), std::slice::from_ref(&alice));
    // Only user.* types: the directory's creation was not sent.
    assert!(got
        .iter()
        .all(|r| r.body["type"].as_str().unwrap().starts_with("user.")));
    assert!(verifies(&secret, m), "{m:?}");
    assert_eq!(m.id, m.body["id"].as_str().unwrap());
    let ts: i64 = m.timestamp.parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - ts).abs() < 300);
    assert_eq!(m.body["directoryId"], dir.id.as_str());
    // The feed has the same event under the same id.
    let feed = app
        .ok_json(app.admin(M::GET, "/orgs/default/events?types=user.created"))
        .await;
    assert_eq!(feed["events"][0]["id"], m.body["id"]);
    assert_eq!(feed["events"][0]["sequence"], m.body["sequence"]);

    // A test message, answered with its attempt and logged.
    let attempt = app
        .ok_json(app.admin(M::POST, &format!("/orgs/default/webhooks/{id}/test")))
        .await;
    assert_eq!(attempt["succeeded"], true, "{attempt}");
    assert_eq!(attempt["status"], 204);
    assert_eq!(attempt["eventType"], "webhook.test");
    let test = receiver
        .until("webhook.test", |g| {
            g.iter().any(|r| r.body["type"] == "webhook.test")
        })
        .await;
    assert!(test
        .iter()
        .filter(|r| r.body["type"] == "webhook.test")
        .all(|r| verifies(&secret, r)));
    let attempts = app
        .ok_json(app.admin(M::GET, &format!("/orgs/default/webhooks/{id}/attempts")))
        .await;
    let attempts = attempts["attempts"].as_array().unwrap();
    assert_eq!(attempts[0]["eventType"], "webhook.test");
    assert!(attempts
        .iter()
        .any(|a| a["eventType"] == "user.created" && a["succeeded"] == true));
    assert!(!attempts.iter().any(|a| a.to_string().contains(&secret)));

    // Rotation: both secrets sign during the overlap, then only the new.
    let rotated = app
        .ok_json(app.admin(M::POST, &format!("/orgs/default/webhooks/{id}/secret")))
        .await;
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    assert!(rotated["previousSecretExpiresAt"].is_string(), "{rotated}");
    let bob = user(&app, &dir, "bob@example.com").await;
    let got = receiver
        .until("bob", |g| created_users(g).contains(&bob))
        .await;
    let m = got
        .iter()
        .find(|r| r.body["data"]["user"]["id"] == bob.as_str())
        .unwrap();
    assert!(verifies(&secret, m) && verifies(&new_secret, m), "{m:?}");
    let rotated = app
        .ok_json(app.admin(
            M::POST,
            &format!("/orgs/default/webhooks/{id}/secret?previousSecretValidFor=0"),
        ))
        .await;
    let newest = rotated["secret"].as_str().unwrap().to_owned();
    assert!(rotated["previousSecretExpiresAt"].is_null());
    let carol = user(&app, &dir, "carol@example.com").await;
    let got = receiver
        .until("carol", |g| created_users(g).contains(&carol))
        .await;
    let m = got
        .iter()
        .find(|r| r.body["data"]["user"]["id"] == carol.as_str())
        .unwrap();
    assert!(verifies(&newest, m) && !verifies(&new_secret, m), "{m:?}");
    assert_in_order_once(
        &receiver
            .accepted()
            .into_iter()
            .filter(|r| !r.body["sequence"].is_null())
            .collect::<Vec<_>>(),
    );

    // Update and delete.
    let patched = app
        .ok_json(
            app.admin(M::PATCH, &format!("/orgs/default/webhooks/{id}"))
                .json(&json!({"description": "renamed", "types": []})),
        )
        .await;
    assert_eq!(patched["description"], "renamed");
    assert_eq!(patched["types"], json!([]));
    let resp = app
        .admin(M::PATCH, &format!("/orgs/default/webhooks/{id}"))
        .json(&json!({"secret": "x"}))
        .send()
        .await
        .unwrap();
    assert_admin_error(resp, 400, "bad_request").await;
    let resp = app
        .admin(M::DELETE, &format!("/orgs/default/webhooks/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let resp = app
        .admin(M::GET, &format!("/orgs/default/webhooks/{id}"))
        .send()
        .await
        .unwrap();
    assert_admin_error(resp, 404, "not_found").await;
}

#[tokio::test]
async fn bad_webhooks_are_refused_with_the_field_named() {
    let app = app().await;
    let other_org = crate::sites::create_org(&app, "Other").await;
    let other_dir = app
        .ok_json_created(
            app.admin(M::POST, &format!("/orgs/{other_org}/directories"))
                .json(&json!({"name": "theirs"})),
        )
        .await;
    for (body, needle) in [
        (json!({"url": "ftp://example.com/"}), "url"),
        (json!({"url": "https://u:p@example.com/"}), "url"),
        (
            json!({"url": "http://127.0.0.1/", "types": ["nope"]}),
            "types",
        ),
        (
            json!({"url": "http://127.0.0.1/", "directoryIds": [other_dir["id"]]}),
            "directoryIds",
        ),
        (
            json!({"url": "http://127.0.0.1/", "description": "x".repeat(501)}),
            "description",
        ),
    ] {
        let resp = app
            .admin(M::POST, "/orgs/default/webhooks")
            .json(&body)
            .send()
            .await
            .unwrap();
        let message = assert_admin_error(resp, 400, "bad_request").await;
        assert!(message.contains(needle), "{body}: {message}");
    }
    let resp = app
        .admin(M::POST, "/orgs/default/webhooks")
        .json(&json!({"url": "http://127.0.0.1/", "extra": 1}))
        .send()
        .await
        .unwrap();
    assert_admin_error(resp, 400, "bad_request").await;
    assert_eq!(
        app.db().count("SELECT count(*) FROM webhooks").await,
        0,
        "nothing was written"
    );
}

#[tokio::test]
async fn urls_reaching_inside_the_network_are_refused_unless_allowed() {
    let app = spawn_app_with(|c| c.admin_rate_limit_per_second = 0).await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.8/",
        "http://192.168.1.20/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[fd00:ec2::254]/",
        "http://0.0.0.0/",
    ] {
        let resp = app
            .admin(M::POST, "/orgs/default/webhooks")
            .json(&json!({ "url": url }))
            .send()
            .await
            .unwrap();
        let message = assert_admin_error(resp, 400, "url_refused").await;
        assert!(message.starts_with("url: "), "{url}: {message}");
    }
    // Nor can an update point one inside.
    let allowed = app_with(|_| {}).await;
    let created = create_webhook(&allowed, json!({"url": "http://127.0.0.1:9/"})).await;
    assert_eq!(created["url"], "http://127.0.0.1:9/");
    let strict = allowed
        .spawn_on_same_db_with(|c| c.admin_rate_limit_per_second = 0)
        .await;
    let resp = strict
        .admin(
            M::PATCH,
            &format!("/orgs/default/webhooks/{}", created["id"].as_str().unwrap()),
        )
        .json(&json!({"url": "http://localhost:8080/"}))
        .send()
        .await
        .unwrap();
    assert_admin_error(resp, 400, "url_refused").await;
    // And a URL saved while allowed is not sent to once it is not.
    let attempt = strict
        .ok_json(strict.admin(
            M::POST,
            &format!(
                "/orgs/default/webhooks/{}/test",
                created["id"].as_str().unwrap()
            ),
        ))
        .await;
    assert_eq!(attempt["succeeded"], false);
    assert!(
        attempt["error"].as_str().unwrap().contains("loopback"),
        "{attempt}"
    );
    assert!(attempt["status"].is_null());
}

#[tokio::test]
async fn a_receiver_that_fails_five_times_then_recovers_gets_every_event_once_in_order() {
    let app = app_with(|c| c.webhooks.webhook_retry_schedule = "100ms".into()).await;
    let receiver = Receiver::start().await;
    receiver.set(|b| b.fail_next = 5);
    let hook = create_webhook(
        &app,
        json!({"url": receiver.url, "types": ["user.created"]}),
    )
    .await;
    let id = hook["id"].as_str().unwrap();
    let dir = app.create_directory("retries").await;
    let mut users = Vec::new();
    for i in 0..6 {
        users.push(user(&app, &dir, &format!("u{i}@example.com")).await);
    }
    let got = receiver
        .until("six users", |g| created_users(g).len() >= 6)
        .await;
    assert_eq!(created_users(&got), users);
    assert_in_order_once(&got);
    // Five refusals of the first event, then each event once.
    let all = receiver.all();
    assert_eq!(all.len(), 11, "{:#?}", types(&all));
    assert!(all[..5].iter().all(|r| r.id == all[5].id && !r.accepted));
    let hook = webhook(&app, id).await;
    assert_eq!(hook["status"], "active");
    assert_eq!(hook["consecutiveFailures"], 0);
    assert!(hook["lastError"].is_null(), "{hook}");
    let attempts = app
        .ok_json(app.admin(
            M::GET,
            &format!("/orgs/default/webhooks/{id}/attempts?limit=100"),
        ))
        .await;
    let attempts = attempts["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 11);
    let failed: Vec<&Value> = attempts
        .iter()
        .filter(|a| a["succeeded"] == false)
        .collect();
    assert_eq!(failed.len(), 5);
    assert!(failed.iter().all(|a| a["status"] == 500), "{failed:?}");
    // Paging the attempts.
    let page = app
        .ok_json(app.admin(
            M::GET,
            &format!("/orgs/default/webhooks/{id}/attempts?limit=4"),
        ))
        .await;
    let cursor = page["nextCursor"].as_str().unwrap();
    let next = app
        .ok_json(app.admin(
            M::GET,
            &format!("/orgs/default/webhooks/{id}/attempts?limit=100&cursor={cursor}"),
        ))
        .await;
    assert_eq!(next["attempts"].as_array().unwrap().len(), 7);
    assert!(next["nextCursor"].is_null());
}

#[tokio::test]
async fn a_hanging_receiver_does_not_hold_up_another_endpoint() {
    let app = app_with(|c| c.webhooks.webhook_timeout_seconds = 2).await;
    let hung = Receiver::start().await;
    hung.set(|b| b.hang = true);
    let healthy = Receiver::start().await;
    let slow = create_webhook(&app, json!({"url": hung.url, "types": ["user.created"]})).await;
    create_webhook(&app, json!({"url": healthy.url, "types": ["user.created"]})).await;
    let dir = app.create_directory("hang").await;
    let started = Instant::now();
    let mut users = Vec::new();
    for i in 0..5 {
        users.push(user(&app, &dir, &format!("h{i}@example.com")).await);
    }
    let got = healthy
        .until("five users", |g| created_users(g).len() >= 5)
        .await;
    assert_eq!(created_users(&got), users);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the healthy endpoint waited for the hung one"
    );
    // The hung one timed out, and waits to be retried.
    let id = slow["id"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let hook = webhook(&app, id).await;
        if hook["consecutiveFailures"].as_i64().unwrap() >= 1 {
            assert!(
                hook["lastError"].as_str().unwrap().contains("no answer"),
                "{hook}"
            );
            assert!(hook["nextAttemptAt"].is_string());
            break;
        }
        assert!(Instant::now() < deadline, "no timeout recorded: {hook}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_endpoint_failing_too_long_keeps_its_events_for_re_enabling_and_replay() {
    let app = app_with(|c| {
        c.webhooks.webhook_retry_schedule = "50ms".into();
        c.webhooks.webhook_give_up_after = "500ms".into();
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.set(|b| b.fail_all = true);
    let hook = create_webhook(
        &app,
        json!({"url": receiver.url, "types": ["user.created"]}),
    )
    .await;
    let id = hook["id"].as_str().unwrap();
    let start_cursor = hook["deliveredThrough"].as_str().unwrap().to_owned();
    let dir = app.create_directory("failing").await;
    let a = user(&app, &dir, "a@example.com").await;
    let b = user(&app, &dir, "b@example.com").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let failing = loop {
        let hook = webhook(&app, id).await;
        if hook["status"] == "failing" {
            break hook;
        }
        assert!(Instant::now() < deadline, "never marked failing: {hook}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(failing["failingSince"].is_string());
    // Both users wait after its cursor.
    let pending = app
        .ok_json(app.admin(
            M::GET,
            &format!(
                "/orgs/default/events?types=user.created&after={}",
                failing["deliveredThrough"].as_str().unwrap()
            ),
        ))
        .await;
    assert_eq!(pending["events"].as_array().unwrap().len(), 2, "{pending}");
    // Failing: not tried any more.
    let tries = receiver.all().len();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let attempts = app
        .ok_json(app.admin(M::GET, &format!("/orgs/default/webhooks/{id}/attempts")))
        .await;
    assert_eq!(receiver.all().len(), tries, "{attempts:#}");

    // Re-enabled, it gets what waited.
    receiver.set(|b| b.fail_all = false);
    let enabled = app
        .ok_json(
            app.admin(M::PATCH, &format!("/orgs/default/webhooks/{id}"))
                .json(&json!({"enabled": true})),
        )
        .await;
    assert_eq!(enabled["status"], "active");
    let got = receiver
        .until("a and b", |g| created_users(g).len() >= 2)
        .await;
    assert_eq!(created_users(&got), [a.clone(), b.clone()]);

    // Replayed from the cursor it had at creation: both again, same ids.
    let replayed = app
        .ok_json(
            app.admin(M::POST, &format!("/orgs/default/webhooks/{id}/replay"))
                .json(&json!({"after": start_cursor})),
        )
        .await;
    assert_eq!(replayed["deliveredThrough"], start_cursor.as_str());
    let again = receiver
        .until("the replay", |g| created_users(g).len() >= 4)
        .await;
    assert_eq!(
        created_users(&again),
        [a.clone(), b.clone(), a.clone(), b.clone()]
    );
    assert_eq!(again[0].id, again[2].id);
    // Replayed since a time: from b's creation on.
    let b_time = again[1].body["occurredAt"].as_str().unwrap().to_owned();
    app.ok_json(
        app.admin(M::POST, &format!("/orgs/default/webhooks/{id}/replay"))
            .json(&json!({ "since": b_time })),
    )
    .await;
    let again = receiver
        .until("the second replay", |g| created_users(g).len() >= 5)
        .await;
    assert_eq!(created_users(&again)[4], b);
    for (body, code) in [
        (json!({}), "bad_request"),
        (json!({"since": "yesterday"}), "bad_request"),
        (json!({"after": "nope"}), "bad_request"),
        (
            json!({"since": b_time, "after": start_cursor}),
            "bad_request",
        ),
    ] {
        let resp = app
            .admin(M::POST, &format!("/orgs/default/webhooks/{id}/replay"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_admin_error(resp, 400, code).await;
    }
    // Disabled: nothing is sent, and its events wait.
    app.ok_json(
        app.admin(M::PATCH, &format!("/orgs/default/webhooks/{id}"))
            .json(&json!({"enabled": false})),
    )
    .await;
    let before = receiver.all().len();
    user(&app, &dir, "c@example.com").await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(receiver.all().len(), before);
    assert_eq!(webhook(&app, id).await["status"], "disabled");
}

#[tokio::test]
async fn a_process_killed_mid_delivery_loses_nothing_after_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let url = database(&tmp).await;
    let flags = [
        "--webhook-allow-private",
        "--webhook-lease-seconds",
        "1",
        "--webhook-timeout-seconds",
        "2",
        "--admin-rate-limit-per-second",
        "0",
    ];
    let receiver = Receiver::start().await;
    let server = Server::start_with(&url, &flags).await;
    server
        .json(
            server
                .admin(M::POST, "/orgs/default/webhooks")
                .json(&json!({"url": receiver.url, "types": ["user.created"]})),
            201,
        )
        .await;
    let dir = server.directory().await;
    // The receiver holds the first delivery while the process is killed.
    receiver.set(|b| b.hang = true);
    let mut users = Vec::new();
    for i in 0..5 {
        let created = server
            .json(
                server
                    .scim(&dir, M::POST, "/Users")
                    .json(&crate::helpers::user_body(&format!("k{i}@example.com"))),
                201,
            )
            .await;
        users.push(created["id"].as_str().unwrap().to_owned());
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while receiver.all().is_empty() {
        assert!(
            Instant::now() < deadline,
            "nothing was sent before the kill"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill();
    receiver.set(|b| b.hang = false);
    let server = Server::start_with(&url, &flags).await;
    let dir = TestDirectory {
        base_url: format!("{}/scim/directory/{}", server.base, dir.id),
        ..dir
    };
    let created = server
        .json(
            server
                .scim(&dir, M::POST, "/Users")
                .json(&crate::helpers::user_body("after@example.com")),
            201,
        )
        .await;
    users.push(created["id"].as_str().unwrap().to_owned());
    let got = receiver
        .until("every user", |g| created_users(g).len() >= 6)
        .await;
    assert_eq!(created_users(&got), users);
    assert_in_order_once(&got);
    drop(server);
}

#[tokio::test]
async fn processes_on_one_postgresql_share_deliveries_without_sending_twice() {
    let app = app().await;
    let Some(replica) = app
        .spawn_replica_with(|c| {
            c.webhooks.webhook_allow_private = true;
            c.admin_rate_limit_per_second = 0;
        })
        .await
    else {
        return; // SQLite: one process.
    };
    let receivers = [
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    ];
    for r in &receivers {
        create_webhook(&app, json!({"url": r.url, "types": ["user.created"]})).await;
    }
    let dir = app.create_directory("shared").await;
    let mut users = Vec::new();
    for i in 0..30 {
        // Written through both processes.
        let writer = if i % 2 == 0 { &app } else { &replica };
        users.push(user(writer, &dir, &format!("s{i}@example.com")).await);
    }
    for r in &receivers {
        let got = r
            .until("thirty users", |g| created_users(g).len() >= 30)
            .await;
        let mut sorted = created_users(&got);
        sorted.sort();
        let mut expected = users.clone();
        expected.sort();
        assert_eq!(sorted, expected);
        assert_in_order_once(&got);
        assert_eq!(r.all().len(), 30, "a message was sent twice");
    }
}

#[tokio::test]
async fn the_feed_keeps_what_a_webhook_has_not_had_and_attempts_expire() {
    let app = app_with(|c| c.webhooks.webhook_retry_schedule = "1h".into()).await;
    let receiver = Receiver::start().await;
    receiver.set(|b| b.fail_all = true);
    let hook = create_webhook(
        &app,
        json!({"url": receiver.url, "types": ["user.created"]}),
    )
    .await;
    let id = hook["id"].as_str().unwrap();
    let dir = app.create_directory("kept").await;
    let ada = user(&app, &dir, "ada@example.com").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while webhook(&app, id).await["consecutiveFailures"] == 0 {
        assert!(Instant::now() < deadline, "never tried");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Past every event's retention, the purge keeps what the webhook
    // has not had.
    let everything = scimd::time::now_micros() + 1;
    app.store.prune_events(everything, 1000).await.unwrap();
    let cursor = webhook(&app, id).await["deliveredThrough"]
        .as_str()
        .unwrap()
        .to_owned();
    let pending = app
        .ok_json(app.admin(
            M::GET,
            &format!("/orgs/default/events?types=user.created&after={cursor}"),
        ))
        .await;
    assert_eq!(pending["events"][0]["data"]["user"]["id"], ada.as_str());
    // Deleted, it holds nothing.
    let resp = app
        .admin(M::DELETE, &format!("/orgs/default/webhooks/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    // (A sync run may write events meanwhile, after the cutoff.)
    app.store
        .prune_events(scimd::time::now_micros() + 1, 1000)
        .await
        .unwrap();
    let left = app
        .ok_json(app.admin(M::GET, "/orgs/default/events?types=user.created"))
        .await;
    assert_eq!(left["events"], json!([]));

    // Attempts go after their retention.
    receiver.set(|b| b.fail_all = false);
    let other = create_webhook(&app, json!({"url": receiver.url})).await;
    let other = other["id"].as_str().unwrap();
    let path = format!("/orgs/default/webhooks/{other}/attempts");
    app.ok_json(app.admin(M::POST, &format!("/orgs/default/webhooks/{other}/test")))
        .await;
    let attempts = app.ok_json(app.admin(M::GET, &path)).await;
    assert_eq!(attempts["attempts"].as_array().unwrap().len(), 1);
    let pruned = app
        .store
        .prune_webhook_attempts(scimd::time::now_micros() + 1, 1000)
        .await
        .unwrap();
    assert!(pruned >= 1);
    let attempts = app.ok_json(app.admin(M::GET, &path)).await;
    assert_eq!(attempts["attempts"], json!([]));
}
