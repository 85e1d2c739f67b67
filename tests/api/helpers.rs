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

pub async fn connect_store() -> (Store, Option<tempfile::TempDir>) {
    let (store, dir, _) = connect_test_db().await;
    (store, dir)
}

async fn connect_test_db() -> (Store, Option<tempfile::TempDir>, TestDb) {
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
    tokio::spawn(app.run_until(std::future::pending()));
    TestApp {
        address,
        metrics_address,
        client: reqwest::Client::new(),
        store,
        db,
        _dir: dir,
    }
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
