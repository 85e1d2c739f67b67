//! The email outbox: messages queued through the store (as the sync
//! engine queues them, in its own transaction), delivered to a test SMTP
//! server on 127.0.0.1, retried after a backoff, never sent twice on
//! their own, and listed and retried through the admin API.

use std::time::{Duration, Instant};

use serde_json::Value;
use uuid::Uuid;

use scimd::config::ServeConfig;
use scimd::mail::welcome::{welcome_email, ProductAccess, Welcome};
use scimd::mail::{NewEmail, Recipient};

use crate::helpers::{spawn_app, spawn_app_until, spawn_app_with, SmtpServer, TestApp, M};
use crate::sites::{assert_admin_error, create_org, default_org, insert_account};

/// Delivery through `smtp`, with retries a few hundred milliseconds
/// apart instead of minutes.
fn deliver_to(smtp: &SmtpServer) -> impl FnOnce(&mut ServeConfig) + '_ {
    move |c| {
        c.smtp.smtp_url = Some(smtp.url.clone());
        c.smtp.smtp_from = "Directory <directory@scimd.test>".into();
        c.smtp.smtp_retry_base = Duration::from_millis(500);
        c.smtp.smtp_poll = Duration::from_millis(200);
    }
}

/// A welcome message for a new account of `org` at `email`.
async fn welcome_for(app: &TestApp, org: Uuid, email: &str) -> NewEmail {
    let account = insert_account(app, org, email).await;
    welcome_email(&Welcome {
        org_id: org,
        org_name: "Acme",
        directory_id: None,
        account_id: account,
        recipient: Recipient::parse(email).unwrap(),
        display_name: Some("Ada Lovelace"),
        access: &[ProductAccess {
            site: "acme".into(),
            site_url: Some("https://acme.example".into()),
            product: "confluence".into(),
        }],
    })
}

/// A message without an account or dedup key.
fn plain(org: Uuid, to: &str, subject: &str) -> NewEmail {
    NewEmail {
        org_id: org,
        directory_id: None,
        account_id: None,
        kind: "welcome",
        dedup_key: None,
        recipient: Recipient::parse(to).unwrap(),
        subject: subject.into(),
        body: format!("About {subject}.\n.leading dot\n"),
    }
}

async fn list(app: &TestApp, query: &str) -> Value {
    app.ok_json(app.admin(M::GET, &format!("/orgs/default/outbox{query}")))
        .await
}

async fn messages(app: &TestApp, query: &str) -> Vec<Value> {
    list(app, query).await["messages"]
        .as_array()
        .unwrap()
        .clone()
}

async fn message(app: &TestApp, id: &str) -> Value {
    app.ok_json(app.admin(M::GET, &format!("/orgs/default/outbox/{id}")))
        .await
}

/// Reads message `id` until `done` holds (10 s at most).
async fn wait_for(app: &TestApp, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let m = message(app, id).await;
        if done(&m) {
            return m;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "still {m}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn in_state(state: &'static str) -> impl Fn(&Value) -> bool {
    move |m| m["state"] == state
}

async fn retry(app: &TestApp, id: &str) -> reqwest::Response {
    app.admin(M::POST, &format!("/orgs/default/outbox/{id}/retry"))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_welcome_email_is_delivered_once() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with(deliver_to(&smtp)).await;
    let org = default_org(&app).await;
    let msg = welcome_for(&app, org, "ada@acme.example").await;
    assert!(app.store.enqueue_email(&msg).await.unwrap());
    let id = messages(&app, "").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sent = wait_for(&app, &id, in_state("sent")).await;
    assert_eq!(sent["attempts"], 1);
    assert_eq!(sent["recipient"], "ada@acme.example");
    assert_eq!(sent["kind"], "welcome");
    assert!(sent["sentAt"].is_string());
    assert!(sent["nextAttemptAt"].is_null());
    assert!(sent["lastError"].is_null());
    // Nothing comes after it.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let received = smtp.received();
    assert_eq!(received.len(), 1);
    let mail = &received[0];
    assert_eq!(mail.to, ["<ada@acme.example>"]);
    assert_eq!(mail.from, "<directory@scimd.test>");
    assert_eq!(mail.header("Subject").as_deref(), Some("Welcome to Acme"));
    assert_eq!(mail.header("To").as_deref(), Some("ada@acme.example"));
    assert!(mail
        .header("Message-ID")
        .unwrap()
        .contains(&id.replace('-', "")));
    assert!(mail.data.contains("Hello Ada Lovelace,"), "{}", mail.data);
    assert!(mail.data.contains("confluence on acme"), "{}", mail.data);
}

#[tokio::test]
async fn without_an_smtp_url_messages_stay_pending_and_are_listed_newest_first() {
    let app = spawn_app().await;
    let org = default_org(&app).await;
    for n in 0..5 {
        let msg = plain(org, &format!("user{n}@acme.example"), &format!("m{n}"));
        assert!(app.store.enqueue_email(&msg).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let page = list(&app, "?limit=2").await;
    let subjects = |page: &Value| -> Vec<String> {
        page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["subject"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(subjects(&page), ["m4", "m3"]);
    for m in page["messages"].as_array().unwrap() {
        assert_eq!(m["state"], "pending");
        assert_eq!(m["attempts"], 0);
        assert!(m["nextAttemptAt"].is_string());
        assert!(m["body"].as_str().unwrap().contains(".leading dot"));
    }
    let cursor = page["nextCursor"].as_str().unwrap();
    let page = list(&app, &format!("?limit=2&cursor={cursor}")).await;
    assert_eq!(subjects(&page), ["m2", "m1"]);
    let cursor = page["nextCursor"].as_str().unwrap();
    let page = list(&app, &format!("?limit=2&cursor={cursor}")).await;
    assert_eq!(subjects(&page), ["m0"]);
    assert!(page.get("nextCursor").is_none());
    assert_eq!(messages(&app, "?state=pending").await.len(), 5);
    assert!(messages(&app, "?state=sent").await.is_empty());

    // A pending message is not retried.
    let id = page["messages"][0]["id"].as_str().unwrap().to_owned();
    let resp = retry(&app, &id).await;
    assert_admin_error(resp, 409, "conflict").await;

    // Another organisation sees none of them, and cannot reach them.
    let other = create_org(&app, "Other").await;
    let theirs = app
        .ok_json(app.admin(M::GET, &format!("/orgs/{other}/outbox")))
        .await;
    assert_eq!(theirs["messages"], serde_json::json!([]));
    for path in [
        format!("/orgs/{other}/outbox/{id}"),
        format!("/orgs/default/outbox/{}", Uuid::new_v4()),
        "/orgs/default/outbox/not-a-uuid".to_owned(),
        format!("/orgs/{}/outbox", Uuid::new_v4()),
        format!("/orgs/{}/outbox/{id}", Uuid::new_v4()),
    ] {
        let resp = app.admin(M::GET, &path).send().await.unwrap();
        assert_admin_error(resp, 404, "not_found").await;
    }
    for path in [
        format!("/orgs/{other}/outbox/{id}/retry"),
        format!("/orgs/default/outbox/{}/retry", Uuid::new_v4()),
    ] {
        let resp = app.admin(M::POST, &path).send().await.unwrap();
        assert_admin_error(resp, 404, "not_found").await;
    }
    for bad in [
        "?state=lost",
        "?limit=0",
        "?limit=abc",
        "?cursor=xyz",
        "?colour=red",
        "?limit=%FF",
    ] {
        let resp = app
            .admin(M::GET, &format!("/orgs/default/outbox{bad}"))
            .send()
            .await
            .unwrap();
        assert_admin_error(resp, 400, "bad_request").await;
    }
}

#[tokio::test]
async fn one_account_is_welcomed_once() {
    let app = spawn_app().await;
    let org = default_org(&app).await;
    let msg = welcome_for(&app, org, "grace@acme.example").await;
    assert!(app.store.enqueue_email(&msg).await.unwrap());
    let mut again = msg.clone();
    again.subject = "Welcome again".into();
    assert!(!app.store.enqueue_email(&again).await.unwrap());
    let listed = messages(&app, "").await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["subject"], "Welcome to Acme");
    assert_eq!(listed[0]["accountId"], msg.account_id.unwrap().to_string());
    // Another account is welcomed on its own.
    let other = welcome_for(&app, org, "alan@acme.example").await;
    assert!(app.store.enqueue_email(&other).await.unwrap());
    assert_eq!(messages(&app, "").await.len(), 2);
}

#[tokio::test]
async fn a_refusal_for_now_is_retried_after_a_backoff() {
    let smtp = SmtpServer::start().await;
    smtp.fail_next(&["451 4.3.0 try again later"]);
    let app = spawn_app_with(deliver_to(&smtp)).await;
    let org = default_org(&app).await;
    let started = Instant::now();
    assert!(app
        .store
        .enqueue_email(&plain(org, "ada@acme.example", "hello"))
        .await
        .unwrap());
    let id = messages(&app, "").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let waiting = wait_for(&app, &id, |m| m["attempts"] == 1 && m["state"] == "pending").await;
    assert!(
        waiting["lastError"].as_str().unwrap().contains("451"),
        "{waiting}"
    );
    let sent = wait_for(&app, &id, in_state("sent")).await;
    // The second attempt waited for the backoff (500 ms, less 20% jitter).
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(sent["attempts"], 2);
    assert!(sent["lastError"].is_null());
    assert_eq!(smtp.received().len(), 1);
}

#[tokio::test]
async fn a_refusal_for_good_fails_until_an_admin_retries() {
    let smtp = SmtpServer::start().await;
    smtp.fail_next(&["550 5.1.1 no such mailbox"]);
    let app = spawn_app_with(deliver_to(&smtp)).await;
    let org = default_org(&app).await;
    assert!(app
        .store
        .enqueue_email(&plain(org, "nobody@acme.example", "hello"))
        .await
        .unwrap());
    let id = messages(&app, "").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let failed = wait_for(&app, &id, in_state("failed")).await;
    assert_eq!(failed["attempts"], 1);
    assert!(failed["lastError"].as_str().unwrap().contains("550"));
    assert!(failed["nextAttemptAt"].is_null());
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(message(&app, &id).await["state"], "failed");
    assert!(smtp.received().is_empty());
    assert_eq!(messages(&app, "?state=failed").await.len(), 1);

    let resp = retry(&app, &id).await;
    assert_eq!(resp.status(), 200);
    let queued: Value = resp.json().await.unwrap();
    assert!(matches!(
        queued["state"].as_str(),
        Some("pending" | "sending" | "sent")
    ));
    let sent = wait_for(&app, &id, in_state("sent")).await;
    assert_eq!(sent["attempts"], 1);
    assert_eq!(smtp.received().len(), 1);
    let resp = retry(&app, &id).await;
    assert_admin_error(resp, 409, "conflict").await;

    // The admin's retry is on record, once (the refused one is not).
    let report = app
        .ok_json(app.admin(
            M::GET,
            "/orgs/default/reports/provisioning?action=email.retried&targetType=email",
        ))
        .await;
    let events = report["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{report}");
    assert_eq!(events[0]["targetType"], "email");
    assert_eq!(events[0]["targetId"], id.as_str());
    assert_eq!(events[0]["targetIdentifier"], "nobody@acme.example");
    assert!(events[0]["detail"].as_str().unwrap().contains("was failed"));
}

#[tokio::test]
async fn a_message_left_sending_by_a_dead_process_is_not_sent_again() {
    let smtp = SmtpServer::start().await;
    // The first process queued a message and died while sending it: the
    // row is `sending` with a lease that has run out.
    let first = spawn_app().await;
    let org = default_org(&first).await;
    assert!(first
        .store
        .enqueue_email(&plain(org, "ada@acme.example", "hello"))
        .await
        .unwrap());
    let id = messages(&first, "").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    first
        .db()
        .execute(
            "UPDATE outbox SET state = 'sending', attempts = 1, lease_expires_at = 1, \
             lease_owner = NULL",
        )
        .await;
    // Started again, with delivery on.
    let second = first.spawn_on_same_db_with(deliver_to(&smtp)).await;
    let uncertain = wait_for(&second, &id, in_state("uncertain")).await;
    assert!(uncertain["lastError"]
        .as_str()
        .unwrap()
        .contains("may or may not"));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(message(&second, &id).await["state"], "uncertain");
    assert!(smtp.received().is_empty());
    assert_eq!(messages(&second, "?state=uncertain").await.len(), 1);

    // The admin knows it did not arrive, and sends it again.
    assert_eq!(retry(&second, &id).await.status(), 200);
    wait_for(&second, &id, in_state("sent")).await;
    assert_eq!(smtp.received().len(), 1);
}

#[tokio::test]
async fn a_connection_lost_after_the_message_was_handed_over_is_uncertain() {
    let smtp = SmtpServer::start().await;
    smtp.drop_next(1);
    let app = spawn_app_with(deliver_to(&smtp)).await;
    let org = default_org(&app).await;
    assert!(app
        .store
        .enqueue_email(&plain(org, "ada@acme.example", "hello"))
        .await
        .unwrap());
    let id = messages(&app, "").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_for(&app, &id, in_state("uncertain")).await;
    // The server had it: it is not sent a second time.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(message(&app, &id).await["state"], "uncertain");
    assert_eq!(smtp.received().len(), 1);
}

/// Two processes on one database share the work: each message is sent
/// by one of them, once.
#[tokio::test]
async fn two_processes_send_each_message_once() {
    let smtp = SmtpServer::start().await;
    let first = spawn_app_with(deliver_to(&smtp)).await;
    let second = first.spawn_on_same_db_with(deliver_to(&smtp)).await;
    let org = default_org(&first).await;
    for n in 0..30 {
        let msg = plain(org, &format!("user{n}@acme.example"), &format!("m{n}"));
        let store = if n % 2 == 0 {
            &first.store
        } else {
            &second.store
        };
        assert!(store.enqueue_email(&msg).await.unwrap());
    }
    let start = Instant::now();
    while messages(&first, "?state=sent").await.len() < 30 {
        assert!(start.elapsed() < Duration::from_secs(20));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut to: Vec<String> = smtp.received().iter().map(|m| m.to[0].clone()).collect();
    to.sort();
    let before = to.len();
    to.dedup();
    assert_eq!((before, to.len()), (30, 30));
}

/// A server told to stop lets the send in flight finish and records it:
/// a restart leaves no message `uncertain`.
#[tokio::test]
async fn stopping_the_server_lets_a_send_in_flight_finish() {
    let smtp = SmtpServer::start().await;
    smtp.delay_next(Duration::from_millis(800));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (app, served) = spawn_app_until(deliver_to(&smtp), async {
        let _ = stopped.await;
    })
    .await;
    let org = default_org(&app).await;
    assert!(app
        .store
        .enqueue_email(&plain(org, "ada@acme.example", "hello"))
        .await
        .unwrap());
    let id = messages(&app, "").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_for(&app, &id, in_state("sending")).await;
    stop.send(()).unwrap();
    served.await.unwrap().unwrap();
    assert_eq!(smtp.received().len(), 1);
    let after = app.spawn_on_same_db_with(|_| {}).await;
    let sent = message(&after, &id).await;
    assert_eq!(sent["state"], "sent", "{sent}");
}
