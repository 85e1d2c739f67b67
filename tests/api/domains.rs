//! An organisation's domains: adding, verifying by DNS and by HTTP against
//! servers of the test's own on 127.0.0.1 (a DNS server answering from a
//! table, an HTTP server answering what the test says), linking to a
//! directory, deleting, and directories that require verified domains.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, TXT};
use hickory_proto::rr::{RData, Record, RecordType};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

use crate::helpers::{assert_scim_error, spawn_app_with, user_body, TestApp, TestDirectory};

/// What the test DNS server answers for one name.
#[derive(Clone, Default)]
pub(crate) struct Zone {
    pub(crate) txt: Vec<String>,
    /// Answer A queries with 127.0.0.1.
    pub(crate) a: bool,
    /// Never answer (a timeout).
    pub(crate) silent: bool,
}

type Zones = Arc<Mutex<HashMap<String, Zone>>>;

/// A DNS server on 127.0.0.1 (UDP) answering from `Zones`; a name not in
/// the table is NXDOMAIN.
async fn dns_server() -> (SocketAddr, Zones) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let zones: Zones = Arc::default();
    let table = zones.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        loop {
            let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                return;
            };
            let Ok(query) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let Some(q) = query.queries().first().cloned() else {
                continue;
            };
            let name = q.name().to_ascii().trim_end_matches('.').to_lowercase();
            let zone = table.lock().unwrap().get(&name).cloned();
            let mut reply = Message::new();
            reply
                .set_id(query.id())
                .set_message_type(MessageType::Response)
                .set_op_code(query.op_code())
                .set_recursion_desired(query.recursion_desired())
                .set_recursion_available(true)
                .set_authoritative(true)
                .add_query(q.clone());
            match zone {
                None => {
                    reply.set_response_code(ResponseCode::NXDomain);
                }
                Some(zone) if zone.silent => continue,
                Some(zone) => match q.query_type() {
                    RecordType::TXT => {
                        for value in &zone.txt {
                            let rdata = RData::TXT(TXT::new(vec![value.clone()]));
                            reply.add_answer(Record::from_rdata(q.name().clone(), 60, rdata));
                        }
                    }
                    RecordType::A if zone.a => {
                        let rdata = RData::A(A(Ipv4Addr::LOCALHOST));
                        reply.add_answer(Record::from_rdata(q.name().clone(), 60, rdata));
                    }
                    _ => {}
                },
            }
            if let Ok(bytes) = reply.to_vec() {
                let _ = socket.send_to(&bytes, peer).await;
            }
        }
    });
    (addr, zones)
}

/// What the test HTTP server answers: a whole raw response.
type Reply = Arc<Mutex<Vec<u8>>>;

fn http_reply(status: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(body);
    out.into_bytes()
}

/// An HTTP server on 127.0.0.1 answering every request with `Reply`, and
/// the paths it was asked for.
async fn http_server() -> (u16, Reply, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let reply: Reply = Arc::new(Mutex::new(http_reply("404 Not Found", &[], "")));
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let (answer, log) = (reply.clone(), seen.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let answer = answer.lock().unwrap().clone();
            let log = log.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&request).into_owned();
                let line = text.lines().next().unwrap_or_default().to_owned();
                let host = text
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix("host: ")
                            .or_else(|| l.strip_prefix("Host: "))
                    })
                    .unwrap_or_default()
                    .to_owned();
                log.lock().unwrap().push(format!("{host} {line}"));
                let _ = stream.write_all(&answer).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (port, reply, seen)
}

/// A port nothing listens on (so `https://` cannot connect).
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

pub(crate) struct World {
    pub(crate) app: TestApp,
    zones: Zones,
    reply: Reply,
    seen: Arc<Mutex<Vec<String>>>,
}

pub(crate) async fn world() -> World {
    let (dns, zones) = dns_server().await;
    let (http_port, reply, seen) = http_server().await;
    let https_port = closed_port().await;
    let app = spawn_app_with(|c| {
        c.domain_verification.dns_nameserver = Some(dns);
        c.domain_verification.domain_verification_http_port = Some(http_port);
        c.domain_verification.domain_verification_https_port = Some(https_port);
        c.domain_verification.domain_verification_timeout_seconds = Some(1);
    })
    .await;
    World {
        app,
        zones,
        reply,
        seen,
    }
}

impl World {
    pub(crate) fn zone(&self, name: &str, zone: Zone) {
        self.zones.lock().unwrap().insert(name.to_owned(), zone);
    }

    fn serve(&self, raw: Vec<u8>) {
        *self.reply.lock().unwrap() = raw;
    }
}

async fn add(app: &TestApp, name: &str) -> reqwest::Response {
    app.admin(Method::POST, "/orgs/default/domains")
        .json(&json!({ "name": name }))
        .send()
        .await
        .unwrap()
}

async fn added(app: &TestApp, name: &str) -> Value {
    let resp = add(app, name).await;
    assert_eq!(resp.status(), 201, "add {name}");
    resp.json().await.unwrap()
}

async fn verify(app: &TestApp, name: &str, method: &str) -> Value {
    let resp = app
        .admin(
            Method::POST,
            &format!("/orgs/default/domains/{name}/verify"),
        )
        .json(&json!({ "method": method }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "verify {name} by {method}");
    resp.json().await.unwrap()
}

async fn admin_error(resp: reqwest::Response, status: u16, code: &str) -> String {
    assert_eq!(resp.status(), status);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], code, "{body}");
    body["message"].as_str().unwrap().to_owned()
}

async fn events(app: &TestApp, action: &str) -> i64 {
    app.db()
        .count(&format!(
            "SELECT COUNT(*) FROM audit_events WHERE action = '{action}'"
        ))
        .await
}

/// Inserts accounts of the default org with emails in `domain`, as the
/// account engine would (it has no API of its own here).
async fn insert_accounts(app: &TestApp, domain: &str, n: usize) {
    for i in 0..n {
        let email = format!("person{i}-{}@{domain}", uuid::Uuid::new_v4().simple());
        let (id, yes) = if app.db().is_postgres() {
            ("gen_random_uuid()", "TRUE")
        } else {
            ("randomblob(16)", "1")
        };
        app.db()
            .execute(&format!(
                "INSERT INTO accounts (id, org_id, email, email_domain, active, created_at, updated_at) \
                 SELECT {id}, id, '{email}', '{domain}', {yes}, 0, 0 FROM orgs WHERE is_default = {yes}"
            ))
            .await;
    }
}

/// The TXT value a domain's view asks for.
fn txt_value(view: &Value) -> String {
    view["verification"]["dnsTxt"]["value"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn domains_are_added_normalised_listed_and_refused_when_not_claimable() {
    let w = world().await;
    let app = &w.app;
    let view = added(app, "Example.COM.").await;
    assert_eq!(view["name"], "example.com");
    assert_eq!(view["status"], "unverified");
    assert_eq!(view["directoryId"], Value::Null);
    assert_eq!(view["lastCheck"], Value::Null);
    assert_eq!(view["verifiedAt"], Value::Null);
    let value = txt_value(&view);
    let token = value.strip_prefix("scimd-verification=").unwrap();
    assert!(token.len() >= 43, "{token}");
    assert_eq!(view["verification"]["dnsTxt"]["name"], "example.com");
    assert_eq!(
        view["verification"]["httpFile"]["url"],
        "https://example.com/.well-known/scimd-verification.txt"
    );
    assert_eq!(view["verification"]["httpFile"]["content"], value);
    // Each domain its own token.
    let other = added(app, "bücher.example").await;
    assert_eq!(other["name"], "xn--bcher-kva.example");
    assert_ne!(txt_value(&other), value);

    let list = app
        .ok_json(app.admin(Method::GET, "/orgs/default/domains"))
        .await;
    let names: Vec<&str> = list["domains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["example.com", "xn--bcher-kva.example"]);
    let one = app
        .ok_json(app.admin(Method::GET, "/orgs/default/domains/EXAMPLE.com."))
        .await;
    assert_eq!(one, view);

    let msg = admin_error(add(app, "example.com").await, 409, "conflict").await;
    assert!(msg.contains("example.com"), "{msg}");
    for bad in [
        "localhost",
        "192.168.1.1",
        "exa_mple.com",
        "-x.com",
        "a..b",
        "",
    ] {
        admin_error(add(app, bad).await, 400, "invalid_domain").await;
    }
    let msg = admin_error(add(app, "Gmail.com").await, 400, "public_mail_domain").await;
    assert!(msg.contains("public mail domain"), "{msg}");
    admin_error(add(app, "mail.yahoo.com").await, 400, "public_mail_domain").await;
    let resp = app
        .admin(Method::POST, "/orgs/default/domains")
        .json(&json!({ "name": 5 }))
        .send()
        .await
        .unwrap();
    admin_error(resp, 400, "bad_request").await;

    let missing = format!("/orgs/{}/domains", uuid::Uuid::new_v4());
    let resp = app.admin(Method::GET, &missing).send().await.unwrap();
    admin_error(resp, 404, "not_found").await;
    for path in [
        "/orgs/default/domains/nope.example",
        "/orgs/default/domains/not%20a%20name",
    ] {
        let resp = app.admin(Method::GET, path).send().await.unwrap();
        admin_error(resp, 404, "not_found").await;
        let resp = app.admin(Method::DELETE, path).send().await.unwrap();
        admin_error(resp, 404, "not_found").await;
    }
    assert_eq!(events(app, "domain.added").await, 2);
    let report = app
        .ok_json(app.admin(
            Method::GET,
            "/orgs/default/reports/provisioning?action=domain.added",
        ))
        .await;
    let added: Vec<(&str, &str)> = report["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["actorType"], "admin_token");
            (
                e["targetType"].as_str().unwrap(),
                e["targetIdentifier"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        added,
        [
            ("domain", "xn--bcher-kva.example"),
            ("domain", "example.com")
        ],
        "newest first"
    );
}

#[tokio::test]
async fn dns_verification_says_why_it_fails_and_a_failed_recheck_unverifies() {
    let w = world().await;
    let app = &w.app;
    let view = added(app, "example.com").await;
    let value = txt_value(&view);

    // NXDOMAIN: the name is not in the server's table.
    let r = verify(app, "example.com", "dns").await;
    assert_eq!(r["status"], "unverified");
    let reason = r["reason"].as_str().unwrap();
    assert!(reason.contains("does not exist (NXDOMAIN)"), "{reason}");
    assert_eq!(r["lastCheck"]["method"], "dns");
    assert_eq!(r["lastCheck"]["reason"], r["reason"]);
    assert_eq!(r["accountsNowExternal"], 0);

    // The name exists, without the record.
    w.zone(
        "example.com",
        Zone {
            txt: vec!["v=spf1 -all".into()],
            ..Zone::default()
        },
    );
    let r = verify(app, "example.com", "dns").await;
    assert_eq!(r["status"], "unverified");
    assert_eq!(
        r["reason"],
        format!("no TXT record {value} found at example.com; found: \"v=spf1 -all\"")
    );

    // Another token.
    w.zone(
        "example.com",
        Zone {
            txt: vec!["scimd-verification=not-yours".into()],
            ..Zone::default()
        },
    );
    let r = verify(app, "example.com", "dns").await;
    assert_eq!(r["status"], "unverified");
    assert!(r["reason"].as_str().unwrap().contains("not-yours"), "{r}");

    // No answer at all.
    w.zone(
        "example.com",
        Zone {
            silent: true,
            ..Zone::default()
        },
    );
    let r = verify(app, "example.com", "dns").await;
    assert_eq!(r["status"], "unverified");
    let reason = r["reason"].as_str().unwrap();
    assert!(reason.contains("timed out after 1 s"), "{reason}");
    assert_eq!(events(app, "domain.verified").await, 0);

    // Published: verified.
    w.zone(
        "example.com",
        Zone {
            txt: vec!["v=spf1 -all".into(), value.clone()],
            ..Zone::default()
        },
    );
    let r = verify(app, "example.com", "dns").await;
    assert_eq!(r["status"], "verified", "{r}");
    assert!(r["verifiedAt"].is_string());
    assert_eq!(events(app, "domain.verified").await, 1);
    let got = app
        .ok_json(app.admin(Method::GET, "/orgs/default/domains/example.com"))
        .await;
    assert_eq!(got["status"], "verified");
    assert_eq!(got["lastCheck"]["reason"], r["reason"]);

    // The record is taken down: the re-check unverifies it, and its
    // accounts are no longer managed.
    insert_accounts(app, "example.com", 3).await;
    insert_accounts(app, "elsewhere.example", 1).await;
    w.zone("example.com", Zone::default());
    let r = verify(app, "example.com", "dns").await;
    assert_eq!(r["status"], "unverified");
    assert_eq!(r["verifiedAt"], Value::Null);
    assert_eq!(r["accountsNowExternal"], 3);
    assert_eq!(events(app, "domain.unverified").await, 1);
    // Nothing of the accounts is lost.
    assert_eq!(app.db().count("SELECT COUNT(*) FROM accounts").await, 4);

    let resp = app
        .admin(Method::POST, "/orgs/default/domains/example.com/verify")
        .json(&json!({ "method": "smtp" }))
        .send()
        .await
        .unwrap();
    admin_error(resp, 400, "bad_request").await;
    let resp = app
        .admin(Method::POST, "/orgs/default/domains/missing.example/verify")
        .json(&json!({ "method": "dns" }))
        .send()
        .await
        .unwrap();
    admin_error(resp, 404, "not_found").await;
}

#[tokio::test]
async fn http_verification_fetches_the_file_with_limits() {
    let w = world().await;
    let app = &w.app;
    let view = added(app, "example.com").await;
    let value = txt_value(&view);
    w.zone(
        "example.com",
        Zone {
            a: true,
            ..Zone::default()
        },
    );

    w.serve(http_reply("404 Not Found", &[], "nothing here"));
    let r = verify(app, "example.com", "http").await;
    assert_eq!(r["status"], "unverified");
    let reason = r["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("HTTP 404 from http://example.com:"),
        "{reason}"
    );
    assert!(
        reason.ends_with("/.well-known/scimd-verification.txt"),
        "{reason}"
    );
    {
        let seen = w.seen.lock().unwrap();
        assert!(
            seen.last()
                .unwrap()
                .ends_with("GET /.well-known/scimd-verification.txt HTTP/1.1"),
            "{seen:?}"
        );
        assert!(seen.last().unwrap().starts_with("example.com:"), "{seen:?}");
    }

    w.serve(http_reply(
        "200 OK",
        &[],
        "scimd-verification=someone-else\n",
    ));
    let r = verify(app, "example.com", "http").await;
    assert_eq!(r["status"], "unverified");
    let reason = r["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("does not contain the line {value}")),
        "{reason}"
    );
    assert!(
        !reason.contains("someone-else"),
        "the body is not quoted: {reason}"
    );

    let big = format!("{value}\n{}", "x".repeat(5000));
    w.serve(http_reply("200 OK", &[], &big));
    let r = verify(app, "example.com", "http").await;
    assert_eq!(r["status"], "unverified");
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains("larger than 4096 bytes"),
        "{r}"
    );

    w.serve(http_reply(
        "302 Found",
        &[(
            "Location",
            "http://attacker.example/.well-known/scimd-verification.txt",
        )],
        "",
    ));
    let r = verify(app, "example.com", "http").await;
    assert_eq!(r["status"], "unverified");
    let reason = r["reason"].as_str().unwrap();
    assert!(reason.contains("HTTP 302"), "{reason}");
    assert!(reason.contains("attacker.example"), "{reason}");

    // A redirect to the same host is followed, a few times at most.
    w.serve(http_reply(
        "302 Found",
        &[("Location", "/.well-known/scimd-verification.txt?again")],
        "",
    ));
    let before = w.seen.lock().unwrap().len();
    let r = verify(app, "example.com", "http").await;
    assert_eq!(r["status"], "unverified");
    assert!(r["reason"].as_str().unwrap().contains("HTTP 302"), "{r}");
    assert_eq!(
        w.seen.lock().unwrap().len() - before,
        4,
        "the first GET and 3 redirects"
    );

    // No address for the name.
    w.zone("example.com", Zone::default());
    w.serve(http_reply("200 OK", &[], &value));
    let r = verify(app, "example.com", "http").await;
    assert_eq!(r["status"], "unverified");
    assert!(
        r["reason"].as_str().unwrap().contains("could not connect"),
        "{r}"
    );

    w.zone(
        "example.com",
        Zone {
            a: true,
            ..Zone::default()
        },
    );
    w.serve(http_reply(
        "200 OK",
        &[("Content-Type", "text/plain")],
        &format!("\r\n{value}\r\n"),
    ));
    let r = verify(app, "example.com", "http").await;
    assert_eq!(r["status"], "verified", "{r}");
    assert_eq!(r["lastCheck"]["method"], "http");
    assert_eq!(events(app, "domain.verified").await, 1);
}

async fn link(app: &TestApp, name: &str, directory: Value) -> reqwest::Response {
    app.admin(
        Method::PUT,
        &format!("/orgs/default/domains/{name}/directory"),
    )
    .json(&json!({ "directoryId": directory }))
    .send()
    .await
    .unwrap()
}

/// Adds `name` and verifies it by DNS.
async fn verified(w: &World, name: &str) {
    let view = added(&w.app, name).await;
    w.zone(
        name,
        Zone {
            txt: vec![txt_value(&view)],
            ..Zone::default()
        },
    );
    let r = verify(&w.app, name, "dns").await;
    assert_eq!(r["status"], "verified", "{r}");
}

#[tokio::test]
async fn a_verified_domain_is_linked_to_one_directory_moved_and_deleted_with_counts() {
    let w = world().await;
    let app = &w.app;
    let okta = app.create_directory("Okta").await;
    let entra = app.create_directory("Entra").await;
    added(app, "pending.example").await;
    let msg = admin_error(
        link(app, "pending.example", json!(okta.id)).await,
        409,
        "domain_not_verified",
    )
    .await;
    assert!(msg.contains("not verified"), "{msg}");

    verified(&w, "example.com").await;
    insert_accounts(app, "example.com", 2).await;
    admin_error(
        link(app, "example.com", json!(uuid::Uuid::new_v4())).await,
        404,
        "not_found",
    )
    .await;
    admin_error(
        link(app, "missing.example", json!(okta.id)).await,
        404,
        "not_found",
    )
    .await;
    admin_error(
        link(app, "example.com", json!("not-a-uuid")).await,
        400,
        "bad_request",
    )
    .await;
    let resp = app
        .admin(Method::PUT, "/orgs/default/domains/example.com/directory")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    admin_error(resp, 400, "bad_request").await;

    // A directory of another organisation is not one of this one.
    let org: Value = app
        .admin(Method::POST, "/orgs")
        .json(&json!({ "name": "Other" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let foreign: Value = app
        .admin(
            Method::POST,
            &format!("/orgs/{}/directories", org["id"].as_str().unwrap()),
        )
        .json(&json!({ "name": "Foreign" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    admin_error(
        link(app, "example.com", foreign["id"].clone()).await,
        404,
        "not_found",
    )
    .await;

    let resp = link(app, "example.com", json!(okta.id)).await;
    assert_eq!(resp.status(), 200);
    let moved: Value = resp.json().await.unwrap();
    assert_eq!(
        moved,
        json!({"name": "example.com", "directoryId": okta.id, "previousDirectoryId": null, "accountsMoved": 2})
    );
    let dir = app
        .ok_json(app.admin(
            Method::GET,
            &format!("/orgs/default/directories/{}", okta.id),
        ))
        .await;
    assert_eq!(dir["domains"], json!(["example.com"]));
    let resp = link(app, "example.com", json!(entra.id)).await;
    let moved: Value = resp.json().await.unwrap();
    assert_eq!(moved["previousDirectoryId"], okta.id.as_str());
    assert_eq!(moved["directoryId"], entra.id.as_str());
    assert_eq!(moved["accountsMoved"], 2);
    let list = app
        .ok_json(app.admin(Method::GET, "/orgs/default/directories"))
        .await;
    let domains: Vec<&Value> = list["directories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["domains"])
        .collect();
    assert_eq!(domains, [&json!([]), &json!(["example.com"])]);
    let got = app
        .ok_json(app.admin(Method::GET, "/orgs/default/domains/example.com"))
        .await;
    assert_eq!(got["directoryId"], entra.id.as_str());
    assert_eq!(events(app, "domain.directory_changed").await, 2);

    let resp = link(app, "example.com", Value::Null).await;
    let moved: Value = resp.json().await.unwrap();
    assert_eq!(moved["directoryId"], Value::Null);
    assert_eq!(moved["previousDirectoryId"], entra.id.as_str());
    assert_eq!(events(app, "domain.directory_changed").await, 3);

    // Deleting: the accounts stay, no longer managed.
    let resp = app
        .admin(Method::DELETE, "/orgs/default/domains/example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"name": "example.com", "accountsNowExternal": 2})
    );
    assert_eq!(app.db().count("SELECT COUNT(*) FROM accounts").await, 2);
    assert_eq!(events(app, "domain.deleted").await, 1);
    let resp = app
        .admin(Method::GET, "/orgs/default/domains/example.com")
        .send()
        .await
        .unwrap();
    admin_error(resp, 404, "not_found").await;
    // An unverified domain managed nothing.
    let resp = app
        .admin(Method::DELETE, "/orgs/default/domains/pending.example")
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["accountsNowExternal"], 0);
}

async fn set_required(app: &TestApp, dir: &TestDirectory, on: bool) -> Value {
    app.ok_json(
        app.admin(
            Method::PATCH,
            &format!("/orgs/default/directories/{}", dir.id),
        )
        .json(&json!({ "requireVerifiedDomain": on })),
    )
    .await
}

async fn users(app: &TestApp, dir: &TestDirectory) -> i64 {
    app.get_json(dir, "/Users?count=0").await["totalResults"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn a_directory_that_requires_verified_domains_refuses_other_users() {
    let w = world().await;
    let app = &w.app;
    let dir = app.create_directory("Okta").await;
    // Off by default: anything goes.
    let view = app
        .ok_json(app.admin(
            Method::GET,
            &format!("/orgs/default/directories/{}", dir.id),
        ))
        .await;
    assert_eq!(view["requireVerifiedDomain"], false);
    app.create_user(&dir, "early@example.org").await;

    let view = set_required(app, &dir, true).await;
    assert_eq!(view["requireVerifiedDomain"], true);
    assert_eq!(events(app, "directory.settings_changed").await, 1);
    let resp = app
        .admin(
            Method::PATCH,
            &format!("/orgs/default/directories/{}", dir.id),
        )
        .json(&json!({ "requireVerifiedDomain": "yes" }))
        .send()
        .await
        .unwrap();
    admin_error(resp, 400, "bad_request").await;

    // Unverified domain (added but not verified) and unknown domain.
    added(app, "example.org").await;
    for email in ["ann@example.org", "ann@nowhere.example"] {
        let resp = app
            .scim(&dir, Method::POST, "/Users")
            .json(&user_body(email))
            .send()
            .await
            .unwrap();
        let body = assert_scim_error(resp, 400, Some("invalidValue")).await;
        let domain = email.split('@').nth(1).unwrap();
        assert_eq!(
            body["detail"],
            format!("the email domain '{domain}' is not a verified domain of this organisation")
        );
    }
    let mut no_email = user_body("noemail");
    no_email.as_object_mut().unwrap().remove("emails");
    let resp = app
        .scim(&dir, Method::POST, "/Users")
        .json(&no_email)
        .send()
        .await
        .unwrap();
    let body = assert_scim_error(resp, 400, Some("invalidValue")).await;
    assert!(
        body["detail"].as_str().unwrap().contains("has no email"),
        "{body}"
    );
    assert_eq!(users(app, &dir).await, 1, "nothing written");

    // Verified: allowed.
    let view = app
        .ok_json(app.admin(Method::GET, "/orgs/default/domains/example.org"))
        .await;
    w.zone(
        "example.org",
        Zone {
            txt: vec![txt_value(&view)],
            ..Zone::default()
        },
    );
    assert_eq!(
        verify(app, "example.org", "dns").await["status"],
        "verified"
    );
    let ann = app.create_user(&dir, "Ann@Example.ORG").await;
    let id = ann["id"].as_str().unwrap();
    let path = format!("/Users/{id}");

    // PUT and PATCH to another domain are refused, and change nothing.
    let resp = app
        .scim(&dir, Method::PUT, &path)
        .json(&user_body("ann@other.example"))
        .send()
        .await
        .unwrap();
    let body = assert_scim_error(resp, 400, Some("invalidValue")).await;
    assert!(
        body["detail"].as_str().unwrap().contains("'other.example'"),
        "{body}"
    );
    let patch = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{ "op": "replace", "path": "emails", "value": [{ "value": "ann@other.example", "primary": true }] }]
    });
    let resp = app
        .scim(&dir, Method::PATCH, &path)
        .json(&patch)
        .send()
        .await
        .unwrap();
    let body = assert_scim_error(resp, 400, Some("invalidValue")).await;
    assert!(
        body["detail"].as_str().unwrap().contains("'other.example'"),
        "{body}"
    );
    let stored = app.get_json(&dir, &path).await;
    assert_eq!(stored["emails"][0]["value"], "Ann@Example.ORG");
    assert_eq!(stored["meta"]["version"], ann["meta"]["version"]);
    // Within the domain, both are fine.
    let ok = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{ "op": "replace", "path": "displayName", "value": "Ann" }]
    });
    app.ok_json(app.scim(&dir, Method::PATCH, &path).json(&ok))
        .await;
    app.ok_json(
        app.scim(&dir, Method::PUT, &path)
            .json(&user_body("ann@example.org")),
    )
    .await;

    // Bulk: each write is checked on its own.
    let resp = app
        .scim(&dir, Method::POST, "/Bulk")
        .json(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "Operations": [
                { "method": "POST", "path": "/Users", "bulkId": "a", "data": user_body("bob@example.org") },
                { "method": "POST", "path": "/Users", "bulkId": "b", "data": user_body("eve@other.example") },
                { "method": "PATCH", "path": path, "data": patch },
            ]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let statuses: Vec<&str> = body["Operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["201", "400", "400"], "{body}");
    assert_eq!(
        body["Operations"][1]["response"]["scimType"],
        "invalidValue"
    );
    assert_eq!(users(app, &dir).await, 3, "early, ann and bob");

    // Off again: anything goes.
    set_required(app, &dir, false).await;
    app.create_user(&dir, "late@other.example").await;
}

/// A domain is verified by one organisation at a time: another
/// organisation that publishes its own token too is told who holds it, and
/// verifies once the first lets it go.
#[tokio::test]
async fn a_domain_verified_by_one_organisation_is_not_verified_by_another() {
    let w = world().await;
    let app = &w.app;
    let first = added(app, "shared.example").await;
    let other: Value = app
        .ok_json_created(
            app.admin(Method::POST, "/orgs")
                .json(&json!({ "name": "Other" })),
        )
        .await;
    let other = other["id"].as_str().unwrap().to_owned();
    let resp = app
        .admin(Method::POST, &format!("/orgs/{other}/domains"))
        .json(&json!({ "name": "shared.example" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let second: Value = resp.json().await.unwrap();
    w.zone(
        "shared.example",
        Zone {
            txt: vec![txt_value(&first), txt_value(&second)],
            ..Zone::default()
        },
    );
    assert_eq!(
        verify(app, "shared.example", "dns").await["status"],
        "verified"
    );

    let verify_other = || async {
        let resp = app
            .admin(
                Method::POST,
                &format!("/orgs/{other}/domains/shared.example/verify"),
            )
            .json(&json!({ "method": "dns" }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.json::<Value>().await.unwrap()
    };
    let refused = verify_other().await;
    assert_eq!(refused["status"], "unverified", "{refused}");
    let reason = refused["reason"].as_str().unwrap();
    assert!(
        reason.contains("already verified by another organisation"),
        "{reason}"
    );
    assert_eq!(
        refused["lastCheck"]["reason"], refused["reason"],
        "{refused}"
    );
    // The holder keeps it.
    let held = app
        .ok_json(app.admin(Method::GET, "/orgs/default/domains/shared.example"))
        .await;
    assert_eq!(held["status"], "verified");

    let resp = app
        .admin(Method::DELETE, "/orgs/default/domains/shared.example")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(verify_other().await["status"], "verified");
}
