//! A sync run whose process is killed midway finishes after a restart,
//! counting nothing twice, and a change the continuous path had not
//! applied when its process was killed is applied after: the real `scimd`
//! binary, killed with SIGKILL.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{TestDirectory, ADMIN_TOKEN};

/// A `scimd` process on `database_url`, slowed so a run lasts long enough
/// to be killed in the middle.
pub(crate) struct Server {
    child: Child,
    pub(crate) base: String,
    client: reqwest::Client,
}

impl Server {
    async fn start(database_url: &str) -> Server {
        Server::start_with(database_url, &[]).await
    }

    /// Starts the binary on a free port. The port is found by binding one
    /// and letting it go, so another test may take it first: a process that
    /// exits because it cannot listen is started again on another. One that
    /// fails otherwise, or does not answer, fails the test with its log.
    pub(crate) async fn start_with(database_url: &str, extra: &[&str]) -> Server {
        for _ in 0..3 {
            let port = {
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                l.local_addr().unwrap().port()
            };
            let log = tempfile::NamedTempFile::new().unwrap();
            let child = Command::new(env!("CARGO_BIN_EXE_scimd"))
                .args([
                    "--database-url",
                    database_url,
                    "--listen",
                    &format!("127.0.0.1:{port}"),
                    "--admin-token",
                    ADMIN_TOKEN,
                    "--sync-batch-size",
                    "1",
                    "--sync-batch-pause-ms",
                    "150",
                    "--sync-lease-seconds",
                    "1",
                    "--sync-tick-ms",
                    "100",
                ])
                .args(extra)
                .env("RUST_LOG", "warn")
                .env("NO_COLOR", "1")
                .stdout(Stdio::null())
                .stderr(log.reopen().unwrap())
                .spawn()
                .expect("start scimd");
            let mut server = Server {
                child,
                base: format!("http://127.0.0.1:{port}"),
                client: reqwest::Client::new(),
            };
            let written = || std::fs::read_to_string(log.path()).unwrap_or_default();
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let up = server
                    .client
                    .get(format!("{}/healthz", server.base))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if up {
                    return server;
                }
                if server.child.try_wait().unwrap().is_some() {
                    let output = written();
                    assert!(
                        output.contains("cannot listen"),
                        "scimd exited at start:\n{output}"
                    );
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "scimd did not answer within 60 s:\n{}",
                    written()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        panic!("scimd found no free port in three tries");
    }

    pub(crate) fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}/admin/v1{path}", self.base))
            .bearer_auth(ADMIN_TOKEN)
    }

    pub(crate) async fn json(&self, request: reqwest::RequestBuilder, status: u16) -> Value {
        let resp = request.send().await.unwrap();
        assert_eq!(resp.status(), status, "{}", resp.url());
        resp.json().await.unwrap()
    }

    pub(crate) fn scim(
        &self,
        dir: &TestDirectory,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", dir.base_url))
            .bearer_auth(&dir.api_key)
    }

    /// A new directory of the default organisation.
    pub(crate) async fn directory(&self) -> TestDirectory {
        let created = self
            .json(
                self.admin(reqwest::Method::POST, "/orgs/default/directories")
                    .json(&json!({"name": "Okta"})),
                201,
            )
            .await;
        TestDirectory {
            id: created["id"].as_str().unwrap().to_owned(),
            base_url: created["baseUrl"].as_str().unwrap().to_owned(),
            api_key: created["apiKey"].as_str().unwrap().to_owned(),
            key_id: String::new(),
        }
    }

    /// A site with Jira: the path of its products.
    async fn jira(&self) -> String {
        let site = self
            .json(
                self.admin(reqwest::Method::POST, "/orgs/default/sites")
                    .json(&json!({"name": "Acme", "url": "https://acme.atlassian.net"})),
                201,
            )
            .await;
        let product = format!(
            "/orgs/default/sites/{}/products",
            site["id"].as_str().unwrap()
        );
        self.json(
            self.admin(reqwest::Method::POST, &product)
                .json(&json!({"key": "jira-software"})),
            201,
        )
        .await;
        product
    }

    /// A group of `members` granted Jira's `user` role.
    async fn granted_group(&self, dir: &TestDirectory, product: &str, members: Vec<Value>) {
        let group = self
            .json(
                self.scim(dir, reqwest::Method::POST, "/Groups")
                    .json(&json!({
                        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                        "displayName": "Everyone",
                        "members": members,
                    })),
                201,
            )
            .await;
        self.json(
            self.admin(
                reqwest::Method::POST,
                &format!("{product}/jira-software/grants"),
            )
            .json(&json!({"groupId": group["id"], "role": "user"})),
            201,
        )
        .await;
    }

    pub(crate) fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A database of its own: an SQLite file, or a schema of the test
/// PostgreSQL database.
pub(crate) async fn database(dir: &tempfile::TempDir) -> String {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => {
            use sqlx::Connection;
            let schema = format!("crash_{}", uuid::Uuid::new_v4().simple());
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::query(&format!("CREATE SCHEMA \"{schema}\""))
                .execute(&mut c)
                .await
                .unwrap();
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}options=-csearch_path%3D{schema}")
        }
        _ => format!("sqlite://{}", dir.path().join("scimd.db").display()),
    }
}

#[tokio::test]
async fn a_run_killed_midway_finishes_after_a_restart_without_counting_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let url = database(&tmp).await;
    let server = Server::start(&url).await;
    use reqwest::Method as M;
    let dir = server.directory().await;
    server
        .json(
            server
                .admin(
                    M::PUT,
                    &format!("/orgs/default/directories/{}/sync-settings", dir.id),
                )
                .json(&crate::sync::settings(
                    "scheduled",
                    json!({"type": "all"}),
                    json!({"type": "all"}),
                )),
            200,
        )
        .await;
    let product = server.jira().await;
    const USERS: usize = 12;
    let mut members = Vec::new();
    for n in 0..USERS {
        let u = server
            .json(
                server
                    .scim(&dir, M::POST, "/Users")
                    .json(&crate::helpers::user_body(&format!("u{n}@example.com"))),
                201,
            )
            .await;
        members.push(json!({"value": u["id"]}));
    }
    server.granted_group(&dir, &product, members).await;
    let sync = format!("/orgs/default/directories/{}/sync", dir.id);
    let started = server.json(server.admin(M::POST, &sync), 202).await;
    let run_id = started["runId"].as_str().unwrap().to_owned();
    let run_path = format!("{sync}/runs/{run_id}");
    // Killed once some batches, not all, are written.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let run = server.json(server.admin(M::GET, &run_path), 200).await;
        let done = run["progress"]["accountsDone"].as_i64().unwrap();
        if done >= 3 {
            assert!(done < USERS as i64, "the run ended before the kill");
            break;
        }
        assert!(Instant::now() < deadline, "the run made no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill();

    let server = Server::start(&url).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let run = loop {
        let run = server.json(server.admin(M::GET, &run_path), 200).await;
        if run["state"] != "running" {
            break run;
        }
        assert!(Instant::now() < deadline, "the run was not taken over");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(run["state"], "succeeded", "{run}");
    assert_eq!(run["progress"]["accountsDone"], USERS);
    assert_eq!(run["counts"]["accessGranted"], USERS);
    assert_eq!(run["counts"]["accountsCreated"], USERS);
    let users = server
        .json(
            server.admin(M::GET, &format!("{product}/jira-software/users?limit=100")),
            200,
        )
        .await;
    assert_eq!(users["users"].as_array().unwrap().len(), USERS);
    let report = server
        .json(
            server.admin(
                M::GET,
                "/orgs/default/reports/provisioning?action=access.granted&limit=100",
            ),
            200,
        )
        .await;
    assert_eq!(report["events"].as_array().unwrap().len(), USERS);
}

#[tokio::test]
async fn a_change_not_yet_applied_when_the_process_is_killed_is_applied_after_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let url = database(&tmp).await;
    // The continuous path holds what it is told: killed, the process
    // leaves the change committed and unapplied.
    let server = Server::start_with(&url, &["--sync-apply-pause-ms", "600000"]).await;
    use reqwest::Method as M;
    let dir = server.directory().await;
    let product = server.jira().await;
    let user = server
        .json(
            server
                .scim(&dir, M::POST, "/Users")
                .json(&crate::helpers::user_body("ada@example.com")),
            201,
        )
        .await;
    server
        .granted_group(&dir, &product, vec![json!({"value": user["id"]})])
        .await;
    // A run (not held back) gives the access.
    let sync = format!("/orgs/default/directories/{}/sync", dir.id);
    let started = server.json(server.admin(M::POST, &sync), 202).await;
    let run_path = format!("{sync}/runs/{}", started["runId"].as_str().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.json(server.admin(M::GET, &run_path), 200).await["state"] == "running" {
        assert!(Instant::now() < deadline, "the run did not end");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let users_path = format!("{product}/jira-software/users?limit=100");
    let holders = |v: Value| v["users"].as_array().unwrap().len();
    assert_eq!(
        holders(server.json(server.admin(M::GET, &users_path), 200).await),
        1
    );
    // The identity provider deactivates the user; the change is committed
    // and, held back, not applied.
    let path = format!("/Users/{}", user["id"].as_str().unwrap());
    server
        .json(
            server.scim(&dir, M::PATCH, &path).json(&json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "active", "value": false}],
            })),
            200,
        )
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        holders(server.json(server.admin(M::GET, &users_path), 200).await),
        1,
        "the change was applied before the kill"
    );
    server.kill();

    // Restarted, the process finds the change it never applied and
    // reconciles the directory, with no run asked for.
    let server = Server::start(&url).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while holders(server.json(server.admin(M::GET, &users_path), 200).await) != 0 {
        assert!(
            Instant::now() < deadline,
            "the deactivation was lost with the process"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let runs = server
        .json(server.admin(M::GET, &format!("{sync}/runs")), 200)
        .await;
    let triggers: Vec<&str> = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["trigger"].as_str().unwrap())
        .collect();
    assert_eq!(triggers, ["continuous", "manual"], "{runs}");
}
