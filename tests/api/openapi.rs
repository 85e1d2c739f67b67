//! The admin API's contract: the OpenAPI document served at
//! `/openapi.json` is the committed `docs/openapi.json`, and every
//! operation it lists answers its errors as the document says, as JSON
//! `{"status", "error", "message"}`, never as axum's plain text.

use reqwest::{Method, RequestBuilder, Response};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, TestApp, ADMIN_TOKEN, M};

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");

/// Asserts an admin error: the status, the JSON body with its code, and
/// that the document lists this status for the operation.
async fn assert_admin_error(resp: Response, status: u16, code: &str) -> Value {
    let url = resp.url().to_string();
    assert_eq!(resp.status(), status, "{url}");
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert_eq!(ct, "application/json", "{url}");
    let body: Value = resp.json().await.expect("a JSON error body");
    assert_eq!(body["error"], code, "{url}: {body}");
    assert_eq!(body["status"], status, "{url}: {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body
}

async fn served_document(app: &TestApp) -> String {
    // No token: the document is public.
    let resp = app
        .client
        .get(format!("{}/openapi.json", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    resp.text().await.unwrap()
}

/// The committed document is what the code generates. When the admin API
/// changes, regenerate it with
/// `UPDATE_OPENAPI=1 cargo test --test api openapi` (or
/// `scimd openapi > docs/openapi.json`) and commit the difference.
#[tokio::test]
async fn the_committed_document_is_the_served_one() {
    let app = spawn_app().await;
    let served = served_document(&app).await;
    assert_eq!(served, scimd::http::openapi::json());
    if std::env::var_os("UPDATE_OPENAPI").is_some_and(|v| v == "1") {
        std::fs::write(COMMITTED, &served).unwrap();
    }
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    assert!(
        committed == served,
        "docs/openapi.json is not the document the code generates; regenerate it with \
         `UPDATE_OPENAPI=1 cargo test --test api openapi` (or `scimd openapi > docs/openapi.json`) \
         and commit it"
    );
    let doc: Value = serde_json::from_str(&served).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
}

/// A server states its own retention as the most days `reports/stats`
/// counts, and refuses one more.
#[tokio::test]
async fn the_served_document_states_the_servers_retention() {
    let app = spawn_app_with(|c| c.audit_retention_days = 7).await;
    let doc: Value = serde_json::from_str(&served_document(&app).await).unwrap();
    let params = &doc["paths"]["/admin/v1/orgs/{orgId}/reports/stats"]["get"]["parameters"];
    let days = params
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "days")
        .unwrap();
    assert_eq!(days["schema"]["maximum"], 7);
    assert_eq!(days["schema"]["minimum"], 1);
    let resp = app
        .admin(M::GET, "/orgs/default/reports/stats?days=7")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = app
        .admin(M::GET, "/orgs/default/reports/stats?days=8")
        .send()
        .await
        .unwrap();
    assert_admin_error(resp, 400, "bad_request").await;
}

/// Every operation of the document, `(method, path)`, with its responses.
fn operations(doc: &Value) -> Vec<(Method, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            out.push((method, path.clone(), op.clone()));
        }
    }
    out
}

/// The operation's path (with its prefix: `/admin/v1`, or that of
/// Atlassian's routes) with these ids; the ids of things inside the org
/// are those of `Things`, a SCIM user's one that names none.
fn fill(path: &str, org: &str, directory: &str) -> String {
    path.replace("{orgId}", org)
        .replace("{directoryId}", directory)
        .replace("{domainName}", DOMAIN)
        .replace("{userId}", "00000000-0000-4000-8000-000000000000")
}

/// A request to a path of the document, with the admin token.
fn at(app: &TestApp, method: Method, path: &str) -> RequestBuilder {
    app.client
        .request(method, format!("{}{path}", app.address))
        .bearer_auth(ADMIN_TOKEN)
}

/// The domain of the default organisation that `{domainName}` names.
const DOMAIN: &str = "contract.example";

async fn add_domain(app: &TestApp) {
    let resp = app
        .admin(M::POST, "/orgs/default/domains")
        .json(&json!({ "name": DOMAIN }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
}

/// Things of the default org that paths name: a site with a product, an
/// org group and an account in it, and a message in its outbox.
struct Things {
    site: String,
    key: String,
    group: String,
    account: String,
    message: String,
    webhook: String,
}

impl Things {
    async fn make(app: &TestApp) -> Things {
        let site = app
            .ok_json_created(
                app.admin(M::POST, "/orgs/default/sites")
                    .json(&json!({ "name": "Real", "url": "https://real.example" })),
            )
            .await;
        let site = site["id"].as_str().unwrap().to_owned();
        app.ok_json_created(
            app.admin(M::POST, &format!("/orgs/default/sites/{site}/products"))
                .json(&json!({ "key": "confluence" })),
        )
        .await;
        let group = app
            .ok_json_created(
                app.admin(M::POST, "/orgs/default/groups")
                    .json(&json!({ "name": "Real" })),
            )
            .await;
        let org = app.ok_json(app.admin(M::GET, "/orgs/default")).await;
        let org: uuid::Uuid = org["id"].as_str().unwrap().parse().unwrap();
        let account = crate::sites::insert_account(app, org, "real@example.com").await;
        let queued = app
            .store
            .enqueue_email(&scimd::mail::NewEmail {
                org_id: org,
                directory_id: None,
                account_id: Some(account),
                kind: "welcome",
                dedup_key: None,
                recipient: scimd::mail::Recipient::parse("real@example.com").unwrap(),
                subject: "Welcome".into(),
                body: "Hello.".into(),
            })
            .await
            .unwrap();
        assert!(queued);
        let outbox = app.ok_json(app.admin(M::GET, "/orgs/default/outbox")).await;
        let message = outbox["messages"][0]["id"].as_str().unwrap().to_owned();
        // Its receiver is a closed port on 127.0.0.1: sends fail there.
        let webhook = app
            .ok_json_created(
                app.admin(M::POST, "/orgs/default/webhooks")
                    .json(&json!({ "url": "http://127.0.0.1:9/" })),
            )
            .await;
        let webhook = webhook["id"].as_str().unwrap().to_owned();
        Things {
            site,
            key: "confluence".to_owned(),
            group: group["id"].as_str().unwrap().to_owned(),
            account: account.to_string(),
            message,
            webhook,
        }
    }

    /// `path` with the ids of these things, one of them replaced by `bad`
    /// when `bad` names its parameter.
    fn fill(&self, path: &str, bad: Option<(&str, &str)>) -> String {
        let mut out = path.to_owned();
        for (param, real) in [
            ("{siteId}", &self.site),
            ("{key}", &self.key),
            ("{groupId}", &self.group),
            ("{accountId}", &self.account),
            ("{messageId}", &self.message),
            ("{webhookId}", &self.webhook),
        ] {
            let value = match bad {
                Some((p, v)) if p == param => v,
                _ => real.as_str(),
            };
            out = out.replace(param, value);
        }
        out
    }

    /// Values that name none of the thing a parameter names.
    fn bad_values(param: &str) -> Vec<String> {
        let unknown = uuid::Uuid::new_v4().to_string();
        match param {
            "{key}" => vec![
                "unknown-product".into(),
                "NOT_A_KEY".into(),
                "%C3%28".into(),
            ],
            _ => vec![unknown, "not-a-uuid".into(), "%C3%28".into()],
        }
    }
}

/// The request the operation expects, with a valid body if it takes one.
fn request(
    app: &TestApp,
    method: &Method,
    path: &str,
    op: &Value,
    things: &Things,
) -> RequestBuilder {
    let req = at(app, method.clone(), path);
    if op.get("requestBody").is_none() {
        return req;
    }
    let body = match op["operationId"].as_str().unwrap_or("") {
        "updateDirectory" => json!({ "rateLimit": null }),
        "verifyDomain" => json!({ "method": "dns" }),
        "setDomainDirectory" => json!({ "directoryId": null }),
        "createSite" => json!({ "name": "Contract", "url": "https://contract.example" }),
        "addProduct" => json!({ "key": "bitbucket" }),
        "setProductSettings" => json!({ "newUsersGetAccess": false, "defaultGroups": [] }),
        "addGrant" => json!({ "groupId": things.group, "role": "user" }),
        "addOrgGroupMembers" => json!({ "accountIds": [things.account] }),
        "relinkScimUser" => json!({ "accountId": things.account }),
        "getScimLinksForEmail" => json!({ "email": "a@example.com" }),
        "createWebhook" => json!({ "url": "http://127.0.0.1:9/" }),
        "updateWebhook" => json!({ "description": "contract" }),
        "replayWebhook" => json!({ "since": "2026-01-01T00:00:00Z" }),
        "putSyncSettings" => json!({
            "mode": "continuous",
            "intervalMinutes": 240,
            "scope": { "type": "all" },
            "domains": { "type": "all" },
            "emailNewUsers": false,
        }),
        _ => json!({ "name": "Contract" }),
    };
    req.json(&body)
}

fn documents(op: &Value, status: u16) -> bool {
    op["responses"].get(status.to_string()).is_some()
}

/// For every documented operation: a wrong or missing token is 401, an
/// unknown organisation or directory 404, an id that is not a UUID 404
/// (as is one that cannot be decoded), each status listed by the document.
#[tokio::test]
async fn every_operation_answers_auth_and_path_errors_as_documented() {
    // Hundreds of requests: the admin rate limit has its own tests.
    let app = spawn_app_with(|c| {
        c.admin_rate_limit_per_second = 0;
        c.webhooks.webhook_allow_private = true;
    })
    .await;
    let doc: Value = serde_json::from_str(&served_document(&app).await).unwrap();
    let dir = app.create_directory("Real").await;
    add_domain(&app).await;
    let things = Things::make(&app).await;
    let unknown = uuid::Uuid::new_v4().to_string();
    let ops = operations(&doc);
    assert!(ops.len() >= 10);
    for (method, path, op) in &ops {
        let real = things.fill(&fill(path, "default", &dir.id), None);
        let url = format!("{}{real}", app.address);

        for token in [
            None,
            Some("scimd_admin_0000000000000000.wrong"),
            Some("nonsense"),
        ] {
            let mut req = app.client.request(method.clone(), &url);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let resp = req.json(&json!({ "name": "x" })).send().await.unwrap();
            assert_eq!(
                resp.headers()["www-authenticate"],
                "Bearer realm=\"scimd-admin\""
            );
            assert_admin_error(resp, 401, "unauthorized").await;
            assert!(documents(op, 401), "{method} {path}");
        }

        if !path.contains('{') {
            continue;
        }
        let mut bad_ids = vec![
            fill(path, &unknown, &dir.id),
            fill(path, "not-a-uuid", &dir.id),
            fill(path, "%FF%FE", &dir.id),
        ];
        if path.contains("{directoryId}") {
            bad_ids.push(fill(path, "default", &unknown));
            bad_ids.push(fill(path, "default", "not-a-uuid"));
            bad_ids.push(fill(path, "default", "%C3%28"));
        }
        if path.contains("{domainName}") {
            let real = fill(path, "default", &dir.id);
            bad_ids.push(real.replace(DOMAIN, "missing.example"));
            bad_ids.push(real.replace(DOMAIN, "not%20a%20name"));
            bad_ids.push(real.replace(DOMAIN, "%C3%28"));
        }
        let mut bad_ids: Vec<String> = bad_ids.iter().map(|p| things.fill(p, None)).collect();
        for param in [
            "{siteId}",
            "{key}",
            "{groupId}",
            "{accountId}",
            "{messageId}",
            "{webhookId}",
        ] {
            if path.contains(param) {
                for value in Things::bad_values(param) {
                    let bad = things.fill(&fill(path, "default", &dir.id), Some((param, &value)));
                    bad_ids.push(bad);
                }
            }
        }
        for bad in bad_ids {
            let resp = request(&app, method, &bad, op, &things)
                .send()
                .await
                .unwrap();
            assert_admin_error(resp, 404, "not_found").await;
            assert!(documents(op, 404), "{method} {path}");
        }
    }
    // Nothing of the above reached the directory: it is still there.
    let resp = app
        .admin(M::GET, &format!("/orgs/default/directories/{}", dir.id))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

/// For every documented operation that takes a body: malformed JSON and
/// a body of the wrong shape are 400, another content type 415, a body
/// over the limit 413; and nothing is written.
#[tokio::test]
async fn every_body_is_checked_as_documented() {
    let app = spawn_app_with(|c| {
        c.max_body_bytes = 1024;
        c.admin_rate_limit_per_second = 0;
        c.webhooks.webhook_allow_private = true;
    })
    .await;
    let doc: Value = serde_json::from_str(&served_document(&app).await).unwrap();
    let with_body: Vec<_> = operations(&doc)
        .into_iter()
        .filter(|(_, _, op)| op.get("requestBody").is_some())
        .collect();
    assert!(with_body.len() >= 2);
    let orgs_before = app.ok_json(app.admin(M::GET, "/orgs")).await["orgs"]
        .as_array()
        .unwrap()
        .len();
    let dir = app.create_directory("Real").await;
    add_domain(&app).await;
    let things = Things::make(&app).await;
    for (method, path, op) in &with_body {
        let path = things.fill(&fill(path, "default", &dir.id), None);
        let send = |ct: &'static str, body: Vec<u8>| {
            at(&app, method.clone(), &path)
                .header("content-type", ct)
                .body(body)
                .send()
        };
        let json_ct = "application/json";
        // A domain's name is a name of its own kind, refused with its own
        // code.
        let name_code = if path.ends_with("/domains") {
            "invalid_domain"
        } else {
            "bad_request"
        };
        for (body, what) in [
            (&b"{\"name\": "[..], "truncated JSON"),
            (b"not json", "not JSON"),
            (b"", "an empty body"),
            (b"[]", "an array"),
            (b"{}", "no name"),
            (b"{\"name\": 7}", "a name that is not a string"),
            (b"{\"name\": \"   \"}", "a blank name"),
            (b"{\"name\": \"a\\u0000b\"}", "a name with U+0000"),
        ] {
            let resp = send(json_ct, body.to_vec()).await.unwrap();
            let code = if matches!(what, "a blank name" | "a name with U+0000") {
                name_code
            } else {
                "bad_request"
            };
            let err = assert_admin_error(resp, 400, code).await;
            assert!(documents(op, 400), "{method} {path}: {what}: {err}");
        }
        for long in ["é".repeat(201), format!(" {} ", "é".repeat(199))] {
            let long = format!("{{\"name\": \"{long}\"}}");
            let resp = send(json_ct, long.into_bytes()).await.unwrap();
            assert_admin_error(resp, 400, name_code).await;
        }

        for ct in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/xml",
        ] {
            let resp = send(ct, b"{\"name\": \"x\"}".to_vec()).await.unwrap();
            assert_admin_error(resp, 415, "unsupported_media_type").await;
            assert!(documents(op, 415), "{method} {path}");
        }

        let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(4096));
        let resp = send(json_ct, huge.into_bytes()).await.unwrap();
        assert_admin_error(resp, 413, "payload_too_large").await;
        assert!(documents(op, 413), "{method} {path}");
    }
    let orgs = app.ok_json(app.admin(M::GET, "/orgs")).await;
    assert_eq!(orgs["orgs"].as_array().unwrap().len(), orgs_before);
    let dirs = app
        .ok_json(app.admin(M::GET, "/orgs/default/directories"))
        .await;
    assert_eq!(dirs["directories"].as_array().unwrap().len(), 1);
    assert_eq!(dirs["directories"][0]["rateLimit"], Value::Null);

    // 200 characters (not bytes) is the longest name, white space
    // around it included; the name is kept trimmed, and keys the API
    // does not read are ignored whatever they hold.
    let name = "é".repeat(196);
    let resp = app
        .admin(M::POST, "/orgs")
        .json(&json!({ "name": format!("  {name}  "), "ignored\u{0}": "\u{0}" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let org: Value = resp.json().await.unwrap();
    assert_eq!(org["name"], name);
}

/// Query parameters the document lists are checked: a bad value is 400.
#[tokio::test]
async fn bad_query_parameters_are_400() {
    let app = spawn_app().await;
    for query in [
        "/orgs/default/reports/provisioning?limit=many",
        "/orgs/default/reports/provisioning?directory=nope",
        "/orgs/default/reports/provisioning?since=yesterday",
        "/orgs/default/reports/provisioning?format=xml",
        "/orgs/default/reports/provisioning?format=",
        "/orgs/default/reports/provisioning?since=",
        "/orgs/default/reports/provisioning?directory=",
        "/orgs/default/reports/provisioning?cursor=zz",
        "/orgs/default/reports/provisioning?outcome=maybe",
        "/orgs/default/reports/provisioning?action=user.exploded",
        "/orgs/default/reports/provisioning?action=",
        "/orgs/default/reports/provisioning?action=user.created,,user.deleted",
        "/orgs/default/reports/stats?days=0",
        "/orgs/default/reports/stats?days=x",
        "/orgs/default/reports/stats?directory=nope",
        "/orgs/default/reports/stats?directory=",
        "/orgs/default/reports/stats?days=181",
        "/orgs/default/outbox?state=lost",
        "/orgs/default/outbox?limit=0",
        "/orgs/default/outbox?cursor=zz",
    ] {
        let resp = app.admin(M::GET, query).send().await.unwrap();
        assert_admin_error(resp, 400, "bad_request").await;
    }
}

/// Paths the API does not have are 404, methods a path does not take 405
/// with `Allow`, both as JSON; the token is not needed to learn either.
#[tokio::test]
async fn unknown_paths_and_methods_are_json_errors() {
    let app = spawn_app().await;
    for path in [
        "/nope",
        "/orgs/default/nope",
        "/orgs/default/directories/x/y/z",
        "/",
        "",
    ] {
        let resp = app.admin(M::GET, path).send().await.unwrap();
        assert_admin_error(resp, 404, "not_found").await;
    }
    for (method, path, allow) in [
        (M::DELETE, "/orgs", "GET,HEAD,POST"),
        (M::PUT, "/orgs/default", "GET,HEAD"),
        (M::PATCH, "/orgs/default/reports/stats", "GET,HEAD"),
        (M::GET, "/orgs/default/directories/x/api-key", "POST"),
    ] {
        let resp = app
            .client
            .request(method.clone(), format!("{}/admin/v1{path}", app.address))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        let got: Vec<String> = resp.headers()["allow"]
            .to_str()
            .unwrap()
            .split(',')
            .map(|m| m.trim().to_owned())
            .collect();
        let mut got = got;
        got.sort();
        let mut want: Vec<&str> = allow.split(',').collect();
        want.sort();
        assert_eq!(got, want, "{method} {path}");
        assert_admin_error(resp, 405, "method_not_allowed").await;
    }
}
