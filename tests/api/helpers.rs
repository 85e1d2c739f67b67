//! Spawns the real server on a random port with a fresh database: an
//! SQLite file in a temporary directory, or, when `TEST_DATABASE_URL` is
//! set, a fresh schema in that PostgreSQL database.

use reqwest::{Method, RequestBuilder, Response};
use serde_json::{json, Value};

use scimd::config::ServeConfig;
use scimd::startup::Application;
use scimd::store::{ConnectOptions, Store};

/// Rows between remembered list positions in tests, small so that a few
/// dozen users reach the hops a million would in production.
pub const TEST_LIST_HOP: i64 = 7;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

pub struct TestApp {
    pub address: String,
    /// `http://…` of the metrics listener, when `metrics_listen` was set.
    pub metrics_address: Option<String>,
    pub client: reqwest::Client,
    pub store: Store,
    db: TestDb,
    _dir: Option<tempfile::TempDir>,
}

/// Where a test's database is, for statements the store has no method for.
#[derive(Clone)]
pub struct TestDb {
    url: String,
    pg_schema: Option<String>,
}

/// A directory made through the admin API.
pub struct TestDirectory {
    pub id: String,
    pub base_url: String,
    pub api_key: String,
    /// The visible part of the key (`scimd_<keyId>.…`).
    pub key_id: String,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The servers' warnings and errors go to the output of the test that
/// spawned them, shown when it fails: a 500 names its cause there.
/// `TEST_LOG` (a `RUST_LOG`-style filter) shows more.
fn capture_server_logs() {
    let filter = std::env::var("TEST_LOG").unwrap_or_else(|_| "scimd=warn".to_owned());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

pub async fn connect_store() -> (Store, Option<tempfile::TempDir>) {
    let (store, dir, _) = connect_test_db().await;
    (store, dir)
}

async fn connect_test_db() -> (Store, Option<tempfile::TempDir>, TestDb) {
    capture_server_logs();
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => {
            let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
            let opts = ConnectOptions {
                pool_size: 8,
                pg_schema: Some(schema.clone()),
                list_hop: TEST_LIST_HOP,
                // One look-up statement at a time, so concurrent look-ups
                // in every test share statements as much as they can.
                lookup_statements: 1,
                user_cache_bytes: None,
            };
            let store = Store::connect(&url, &opts).await.expect("connect postgres");
            let db = TestDb {
                url,
                pg_schema: Some(schema),
            };
            (store, None, db)
        }
        _ => {
            let dir = tempfile::tempdir().expect("tempdir");
            let url = format!("sqlite://{}", dir.path().join("scimd.db").display());
            let opts = ConnectOptions {
                pool_size: 8,
                pg_schema: None,
                list_hop: TEST_LIST_HOP,
                // One look-up statement at a time, so concurrent look-ups
                // in every test share statements as much as they can.
                lookup_statements: 1,
                user_cache_bytes: None,
            };
            let store = Store::connect(&url, &opts).await.expect("connect sqlite");
            let db = TestDb {
                url,
                pg_schema: None,
            };
            (store, Some(dir), db)
        }
    }
}

impl TestDb {
    pub fn is_postgres(&self) -> bool {
        self.pg_schema.is_some()
    }

    /// The test's own PostgreSQL schema; the server's connections carry it
    /// in their `application_name` (`scimd/<schema>`).
    pub fn pg_schema(&self) -> Option<&str> {
        self.pg_schema.as_deref()
    }

    /// A connection of its own to the test's PostgreSQL database.
    pub async fn pg_connection(&self) -> Option<sqlx::PgConnection> {
        use sqlx::Connection;
        Some(
            sqlx::PgConnection::connect_with(&self.pg_options()?)
                .await
                .expect("connect"),
        )
    }

    /// Options for a connection to the test's PostgreSQL schema.
    fn pg_options(&self) -> Option<sqlx::postgres::PgConnectOptions> {
        use std::str::FromStr;
        let schema = self.pg_schema.as_ref()?;
        Some(
            sqlx::postgres::PgConnectOptions::from_str(&self.url)
                .expect("url")
                .options([("search_path", schema.as_str())]),
        )
    }

    /// The first column of the first row of `sql`, a count, on the test's
    /// database.
    pub async fn count(&self, sql: &str) -> i64 {
        match self.pg_options() {
            Some(options) => {
                let pool = sqlx::PgPool::connect_with(options).await.expect("connect");
                let n = sqlx::query_scalar(sql)
                    .fetch_one(&pool)
                    .await
                    .expect("count");
                pool.close().await;
                n
            }
            None => {
                let pool = sqlx::SqlitePool::connect(&self.url).await.expect("connect");
                let n = sqlx::query_scalar(sql)
                    .fetch_one(&pool)
                    .await
                    .expect("count");
                pool.close().await;
                n
            }
        }
    }

    /// Runs SQL (several statements allowed) on the test's database.
    pub async fn execute(&self, sql: &str) {
        match self.pg_options() {
            Some(options) => {
                let pool = sqlx::PgPool::connect_with(options).await.expect("connect");
                sqlx::raw_sql(sql).execute(&pool).await.expect("execute");
                pool.close().await;
            }
            None => {
                let pool = sqlx::SqlitePool::connect(&self.url).await.expect("connect");
                sqlx::raw_sql(sql).execute(&pool).await.expect("execute");
                pool.close().await;
            }
        }
    }
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut ServeConfig)) -> TestApp {
    let (store, dir, db) = connect_test_db().await;
    serve(store, dir, db, configure).await
}

async fn serve(
    store: Store,
    dir: Option<tempfile::TempDir>,
    db: TestDb,
    configure: impl FnOnce(&mut ServeConfig),
) -> TestApp {
    serve_until(store, dir, db, configure, std::future::pending())
        .await
        .0
}

/// The server's task, which ends when it has shut down.
pub type Served = tokio::task::JoinHandle<Result<(), scimd::startup::StartupError>>;

async fn serve_until(
    store: Store,
    dir: Option<tempfile::TempDir>,
    db: TestDb,
    configure: impl FnOnce(&mut ServeConfig),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> (TestApp, Served) {
    let mut config = ServeConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        admin_token: Some(ADMIN_TOKEN.into()),
        ..ServeConfig::default()
    };
    configure(&mut config);
    let app = Application::build(&config, store.clone())
        .await
        .expect("build app");
    let address = app.public_url().to_owned();
    let metrics_address = app.metrics_addr().map(|a| format!("http://{a}"));
    let served = tokio::spawn(app.run_until(shutdown));
    let app = TestApp {
        address,
        metrics_address,
        client: reqwest::Client::new(),
        store,
        db,
        _dir: dir,
    };
    (app, served)
}

/// [`spawn_app_with`], shut down gracefully when `shutdown` resolves; the
/// database outlives it (reach it with `spawn_on_same_db_with`).
pub async fn spawn_app_until(
    configure: impl FnOnce(&mut ServeConfig),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> (TestApp, Served) {
    let (store, dir, db) = connect_test_db().await;
    serve_until(store, dir, db, configure, shutdown).await
}

impl TestApp {
    pub fn db(&self) -> &TestDb {
        &self.db
    }

    /// On PostgreSQL, a second server on this one's database, as another
    /// replica behind a load balancer would be; `None` on SQLite.
    pub async fn spawn_replica(&self) -> Option<TestApp> {
        self.spawn_replica_with(|_| {}).await
    }

    /// [`Self::spawn_replica`] with its own configuration.
    pub async fn spawn_replica_with(
        &self,
        configure: impl FnOnce(&mut ServeConfig),
    ) -> Option<TestApp> {
        let schema = self.db.pg_schema.clone()?;
        let opts = ConnectOptions {
            pool_size: 8,
            pg_schema: Some(schema),
            list_hop: TEST_LIST_HOP,
            lookup_statements: 1,
            user_cache_bytes: None,
        };
        let store = Store::connect(&self.db.url, &opts)
            .await
            .expect("connect postgres");
        Some(serve(store, None, self.db.clone(), configure).await)
    }

    /// A second server on this one's database, on either store, as the
    /// same deployment started again (after a crash, say) would be; this
    /// one keeps running.
    pub async fn spawn_on_same_db_with(&self, configure: impl FnOnce(&mut ServeConfig)) -> TestApp {
        let opts = ConnectOptions {
            pool_size: 8,
            pg_schema: self.db.pg_schema.clone(),
            list_hop: TEST_LIST_HOP,
            lookup_statements: 1,
            user_cache_bytes: None,
        };
        let store = Store::connect(&self.db.url, &opts).await.expect("connect");
        serve(store, None, self.db.clone(), configure).await
    }

    pub fn admin(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}/admin/v1{path}", self.address))
            .bearer_auth(ADMIN_TOKEN)
    }

    pub async fn create_directory(&self, name: &str) -> TestDirectory {
        let resp = self
            .admin(Method::POST, "/orgs/default/directories")
            .json(&json!({ "name": name }))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 201);
        let body: Value = resp.json().await.expect("json");
        TestDirectory {
            id: body["id"].as_str().expect("id").to_owned(),
            base_url: body["baseUrl"].as_str().expect("baseUrl").to_owned(),
            api_key: body["apiKey"].as_str().expect("apiKey").to_owned(),
            key_id: body["keyId"].as_str().expect("keyId").to_owned(),
        }
    }

    /// A request to `{directory base URL}{path}` with the directory's key.
    pub fn scim(&self, dir: &TestDirectory, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", dir.base_url))
            .bearer_auth(&dir.api_key)
    }

    /// `GET {directory base URL}{path}`, which must answer 200, as JSON.
    pub async fn get_json(&self, dir: &TestDirectory, path: &str) -> Value {
        let resp = self
            .scim(dir, Method::GET, path)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 200, "GET {path}");
        resp.json().await.expect("json")
    }

    /// Sends `request`, which must answer 200, and returns its JSON body.
    pub async fn ok_json(&self, request: RequestBuilder) -> Value {
        let resp = request.send().await.expect("request");
        assert_eq!(resp.status(), 200, "{}", resp.url());
        resp.json().await.expect("json")
    }

    /// Sends `request`, which must answer 201, and returns its JSON body.
    pub async fn ok_json_created(&self, request: RequestBuilder) -> Value {
        let resp = request.send().await.expect("request");
        assert_eq!(resp.status(), 201, "{}", resp.url());
        resp.json().await.expect("json")
    }

    pub async fn create_user(&self, dir: &TestDirectory, user_name: &str) -> Value {
        self.create_user_from(dir, &user_body(user_name)).await
    }

    /// Creates a user from a whole body; asserts 201 and returns the user.
    pub async fn create_user_from(&self, dir: &TestDirectory, body: &Value) -> Value {
        let resp = self
            .scim(dir, Method::POST, "/Users")
            .json(body)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 201, "create user {}", body["userName"]);
        resp.json().await.expect("json")
    }

    pub async fn create_group(&self, dir: &TestDirectory, name: &str, members: &[&str]) -> Value {
        let members: Vec<Value> = members.iter().map(|m| json!({ "value": m })).collect();
        let resp = self
            .scim(dir, Method::POST, "/Groups")
            .json(&json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": name,
                "members": members,
            }))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 201, "create group {name}");
        resp.json().await.expect("json")
    }
}

pub fn user_body(user_name: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "name": { "givenName": "Ada", "familyName": "Lovelace" },
        "displayName": "Ada Lovelace",
        "emails": [{ "value": user_name, "type": "work", "primary": true }],
        "active": true,
    })
}

/// Asserts a SCIM error response and returns its body.
pub async fn assert_scim_error(resp: Response, status: u16, scim_type: Option<&str>) -> Value {
    assert_eq!(resp.status(), status);
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(ct.starts_with("application/scim+json"), "content type {ct}");
    let body: Value = resp.json().await.expect("json error body");
    assert_eq!(
        body["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );
    assert_eq!(body["status"], status.to_string());
    assert_eq!(body["scimType"].as_str(), scim_type, "body {body}");
    body
}

pub use reqwest::Method as M;

/// A message the test SMTP server took.
#[derive(Clone, Debug)]
pub struct ReceivedMail {
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent after `DATA`, dot-unstuffed, CRLF line ends.
    pub data: String,
}

impl ReceivedMail {
    /// The value of header `name` (not unfolded: the tests' are short).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

/// What the test SMTP server does with the next messages.
#[derive(Default)]
struct SmtpBehaviour {
    /// Replies to give at the end of `DATA` instead of 250, first first.
    failures: std::collections::VecDeque<&'static str>,
    /// Close the connection after the next messages' data, without a reply.
    drops: usize,
    /// Wait this long before answering the next message's data.
    delay: Option<std::time::Duration>,
    received: Vec<ReceivedMail>,
}

/// A tiny SMTP server on 127.0.0.1: enough of RFC 5321 for lettre
/// (greeting, EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT). It records
/// what it takes, and can be told to refuse or drop the next messages.
#[derive(Clone)]
pub struct SmtpServer {
    pub url: String,
    behaviour: std::sync::Arc<std::sync::Mutex<SmtpBehaviour>>,
}

impl SmtpServer {
    pub async fn start() -> SmtpServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = SmtpServer {
            url: format!("smtp://{addr}"),
            behaviour: Default::default(),
        };
        let behaviour = server.behaviour.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(smtp_session(stream, behaviour.clone()));
            }
        });
        server
    }

    /// The next messages' `DATA` is answered with these replies (e.g.
    /// `"451 4.3.0 try again later"`), one a message.
    pub fn fail_next(&self, replies: &[&'static str]) {
        self.behaviour.lock().unwrap().failures.extend(replies);
    }

    /// The next `n` messages are taken and the connection then closed
    /// without a reply, as a server that crashed would.
    pub fn drop_next(&self, n: usize) {
        self.behaviour.lock().unwrap().drops += n;
    }

    /// The next message's data is answered only after `delay`, as a slow
    /// server's would.
    pub fn delay_next(&self, delay: std::time::Duration) {
        self.behaviour.lock().unwrap().delay = Some(delay);
    }

    pub fn received(&self) -> Vec<ReceivedMail> {
        self.behaviour.lock().unwrap().received.clone()
    }
}

async fn smtp_session(
    stream: tokio::net::TcpStream,
    behaviour: std::sync::Arc<std::sync::Mutex<SmtpBehaviour>>,
) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let mut from = String::new();
    let mut to = Vec::new();
    if write
        .write_all(b"220 localhost test SMTP\r\n")
        .await
        .is_err()
    {
        return;
    }
    loop {
        let mut line = String::new();
        match lines.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let command = line.trim_end().to_owned();
        let verb = command
            .split([' ', ':'])
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let reply: String = match verb.as_str() {
            "EHLO" => "250-localhost\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n".into(),
            "HELO" | "RSET" | "NOOP" => "250 OK\r\n".into(),
            "MAIL" => {
                from = command[command.find(':').map_or(0, |i| i + 1)..]
                    .trim()
                    .to_owned();
                to.clear();
                "250 OK\r\n".into()
            }
            "RCPT" => {
                to.push(
                    command[command.find(':').map_or(0, |i| i + 1)..]
                        .trim()
                        .to_owned(),
                );
                "250 OK\r\n".into()
            }
            "DATA" => {
                if write.write_all(b"354 end with .\r\n").await.is_err() {
                    return;
                }
                let mut data = String::new();
                loop {
                    let mut line = String::new();
                    match lines.read_line(&mut line).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    if line == ".\r\n" {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                let mail = ReceivedMail {
                    from: from.clone(),
                    to: std::mem::take(&mut to),
                    data,
                };
                let delay = behaviour.lock().unwrap().delay.take();
                if let Some(delay) = delay {
                    tokio::time::sleep(delay).await;
                }
                let mut b = behaviour.lock().unwrap();
                if b.drops > 0 {
                    b.drops -= 1;
                    b.received.push(mail);
                    return;
                }
                match b.failures.pop_front() {
                    Some(reply) => format!("{reply}\r\n"),
                    None => {
                        b.received.push(mail);
                        "250 OK queued\r\n".into()
                    }
                }
            }
            "QUIT" => {
                let _ = write.write_all(b"221 bye\r\n").await;
                return;
            }
            _ => "502 command not implemented\r\n".into(),
        };
        if write.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}
