//! Identity-provider fixtures: the request sequences Microsoft Entra ID, Okta
//! and Google Workspace send while provisioning, replayed in order over HTTP
//! against the real server. Ids the server hands out are captured from the
//! responses and substituted into later requests, as the IdP would.
//!
//! Request bodies follow the shapes in Microsoft's and Okta's public SCIM
//! documentation (named above each section); Google's sequence is assumed
//! (see its section). The assertions are what the IdP needs from each
//! answer to carry on.

use reqwest::header::HeaderMap;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp, TestDirectory, M};

pub(crate) const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub(crate) const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub(crate) const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub(crate) const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub(crate) const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub(crate) const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// One identity provider's provisioning connection: the base URL and key
/// pasted into it, and how it labels its requests (only Okta documents a
/// User-Agent).
pub(crate) struct Idp<'a> {
    pub(crate) app: &'a TestApp,
    pub(crate) dir: TestDirectory,
    pub(crate) user_agent: Option<&'static str>,
    pub(crate) content_type: &'static str,
}

/// A response as the IdP sees it. `body` is `Null` when there is none.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Value,
}

impl Reply {
    pub(crate) fn id(&self) -> String {
        self.body["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no id in {}", self.body))
            .to_owned()
    }

    pub(crate) fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// A SCIM list: asserts the envelope (integers, not strings, as Okta
    /// insists) and returns the resources.
    pub(crate) fn list(&self, total: u64) -> &Vec<Value> {
        assert_eq!(self.status, 200, "{}", self.body);
        assert_eq!(self.body["schemas"], json!([LIST]));
        assert_eq!(
            self.body["totalResults"].as_u64(),
            Some(total),
            "{}",
            self.body
        );
        assert!(self.body["startIndex"].is_u64(), "{}", self.body);
        assert!(self.body["itemsPerPage"].is_u64(), "{}", self.body);
        let resources = self.body["Resources"]
            .as_array()
            .unwrap_or_else(|| panic!("no Resources array in {}", self.body));
        assert_eq!(
            self.body["itemsPerPage"].as_u64(),
            Some(resources.len() as u64)
        );
        resources
    }

    /// A SCIM error with this status, the way both IdPs read it.
    pub(crate) fn error(&self, status: u16) {
        assert_eq!(self.status, status, "{}", self.body);
        assert!(self.content_type().starts_with("application/scim+json"));
        assert_eq!(self.body["schemas"], json!([ERROR]));
        assert_eq!(self.body["status"], status.to_string());
    }
}

impl<'a> Idp<'a> {
    /// Entra ID is given the directory's own base URL.
    pub(crate) async fn entra(app: &'a TestApp) -> Idp<'a> {
        Idp {
            app,
            dir: app.create_directory("Microsoft Entra ID").await,
            user_agent: None,
            content_type: "application/scim+json",
        }
    }

    /// Okta's documentation calls `/scim/v2/...`: the base URL where the key
    /// alone names the directory.
    pub(crate) async fn okta(app: &'a TestApp) -> Idp<'a> {
        let dir = app.create_directory("Okta").await;
        Idp {
            app,
            dir: TestDirectory {
                base_url: format!("{}/scim/v2", app.address),
                ..dir
            },
            user_agent: Some("Okta SCIM Client 1.0.0"),
            content_type: "application/json",
        }
    }

    pub(crate) async fn google(app: &'a TestApp) -> Idp<'a> {
        Idp {
            app,
            dir: app.create_directory("Google Workspace").await,
            user_agent: None,
            content_type: "application/json",
        }
    }

    pub(crate) async fn send(&self, method: M, path: &str, body: Option<Value>) -> Reply {
        self.send_with(method, path, body, &[]).await
    }

    /// `send` with extra headers (`If-Match`, another content type, …);
    /// a header given here replaces the IdP's own.
    pub(crate) async fn send_with(
        &self,
        method: M,
        path: &str,
        body: Option<Value>,
        extra: &[(&str, &str)],
    ) -> Reply {
        let mut req = self
            .app
            .scim(&self.dir, method, path)
            .header("accept", "application/scim+json");
        if let Some(agent) = self.user_agent {
            req = req.header("user-agent", agent);
        }
        let own_type = !extra
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
        if let Some(body) = body {
            if own_type {
                req = req.header("content-type", self.content_type);
            }
            req = req.body(body.to_string());
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    pub(crate) async fn get(&self, path: &str) -> Reply {
        self.send(M::GET, path, None).await
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(M::POST, path, Some(body)).await
    }

    pub(crate) async fn put(&self, path: &str, body: Value) -> Reply {
        self.send(M::PUT, path, Some(body)).await
    }

    pub(crate) async fn patch(&self, path: &str, body: Value) -> Reply {
        self.send(M::PATCH, path, Some(body)).await
    }

    pub(crate) async fn delete(&self, path: &str) -> Reply {
        self.send(M::DELETE, path, None).await
    }

    /// `GET {endpoint}?filter=…` with the filter form-encoded, plus any
    /// further raw query.
    pub(crate) async fn filter(&self, endpoint: &str, filter: &str, extra: &str) -> Reply {
        let q = serde_urlencoded::to_string([("filter", filter)]).unwrap();
        let sep = if extra.is_empty() { "" } else { "&" };
        self.get(&format!("{endpoint}?{extra}{sep}{q}")).await
    }

    /// Create a user (201 asserted) and return its id.
    pub(crate) async fn user(&self, body: Value) -> String {
        let created = self.post("/Users", body).await;
        assert_eq!(created.status, 201, "{}", created.body);
        created.id()
    }

    /// Member ids of a group, sorted, read back with a plain GET.
    pub(crate) async fn members(&self, group_id: &str) -> Vec<String> {
        let g = self.get(&format!("/Groups/{group_id}")).await;
        assert_eq!(g.status, 200);
        let mut ids: Vec<String> = g.body["members"]
            .as_array()
            .map(|m| {
                m.iter()
                    .map(|v| v["value"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }
}

pub(crate) fn sorted(ids: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

pub(crate) fn patch_op(ops: Value) -> Value {
    json!({ "schemas": [PATCH_OP], "Operations": ops })
}

// ---------------------------------------------------------------------------
// Microsoft Entra ID
//
// Source: Microsoft Entra documentation, "Tutorial: Develop and plan
// provisioning for a SCIM endpoint" (use-scim-to-provision-users-and-groups),
// sections "User Operations" and "Group Operations"; and "Known issues and
// resolutions with SCIM 2.0 protocol compliance"
// (application-provisioning-config-problem-scim-compatibility).
// ---------------------------------------------------------------------------

/// Test Connection, then one user's life: lookup miss, create, get, lookup
/// hit, duplicate create, the multi- and single-valued updates, disable,
/// delete.
#[tokio::test]
async fn entra_user_lifecycle() {
    let app = spawn_app().await;
    let entra = Idp::entra(&app).await;

    // Test Connection: a lookup on a random GUID must be 200 with an empty
    // ListResponse (a 404 fails the connection).
    let probe = entra
        .filter(
            "/Users",
            "userName eq \"3b9f5a52-0c52-4a8e-9f0e-6bd1c2b4f1a7\"",
            "",
        )
        .await;
    assert!(probe.list(0).is_empty());
    assert!(probe.content_type().starts_with("application/scim+json"));

    // Get User by query - Zero results.
    let user_name = "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee";
    let lookup = format!("userName eq \"{user_name}\"");
    let miss = entra.filter("/Users", &lookup, "").await;
    assert!(miss.list(0).is_empty());
    assert_eq!(miss.body["startIndex"], 1);

    // Create User.
    let create = json!({
        "schemas": [USER, ENTERPRISE],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": user_name,
        "active": true,
        "emails": [{
            "primary": true,
            "type": "work",
            "value": "Test_User_11bb11bb-cc22-dd33-ee44-55ff55ff55ff@testuser.com"
        }],
        "meta": { "resourceType": "User" },
        "name": {
            "formatted": "givenName familyName",
            "familyName": "familyName",
            "givenName": "givenName"
        },
        "roles": []
    });
    let created = entra.post("/Users", create.clone()).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert!(created.content_type().starts_with("application/scim+json"));
    let id = created.id();
    let u = &created.body;
    assert_eq!(u["schemas"][0], USER);
    assert_eq!(u["userName"], user_name);
    assert_eq!(u["externalId"], "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef");
    assert_eq!(u["active"], true);
    assert_eq!(u["name"]["formatted"], "givenName familyName");
    assert_eq!(u["name"]["familyName"], "familyName");
    assert_eq!(
        u["emails"],
        json!([{
            "primary": true,
            "type": "work",
            "value": "Test_User_11bb11bb-cc22-dd33-ee44-55ff55ff55ff@testuser.com"
        }])
    );
    assert_eq!(u["meta"]["resourceType"], "User");
    assert!(u["meta"]["created"].is_string());
    assert!(u["meta"]["lastModified"].is_string());

    // Get User.
    let got = entra.get(&format!("/Users/{id}")).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body, created.body);

    // Get User, not found: the detail is optional, the status is not. Entra
    // ids are opaque to it, so a malformed one is just as missing.
    entra.get("/Users/5171a35d82074e068ce2").await.error(404);
    entra
        .get("/Users/3b9f5a52-0c52-4a8e-9f0e-6bd1c2b4f1a7")
        .await
        .error(404);

    // Get User by query.
    let hit = entra.filter("/Users", &lookup, "").await;
    let found = hit.list(1);
    assert_eq!(found[0]["id"], id.as_str());
    assert_eq!(found[0]["userName"], user_name);
    assert_eq!(hit.body["startIndex"], 1);

    // The same user again (a sync that lost track of it) must be a 409 so
    // Entra falls back to matching.
    let dup = entra.post("/Users", create).await;
    dup.error(409);
    assert_eq!(dup.body["scimType"], "uniqueness");

    // Update User [Multi-valued properties].
    let updated = entra
        .patch(
            &format!("/Users/{id}"),
            patch_op(json!([
                {
                    "op": "Replace",
                    "path": "emails[type eq \"work\"].value",
                    "value": "updatedEmail@microsoft.com"
                },
                {
                    "op": "Replace",
                    "path": "name.familyName",
                    "value": "updatedFamilyName"
                }
            ])),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(updated.body["id"], id.as_str());
    assert_eq!(
        updated.body["emails"],
        json!([{ "value": "updatedEmail@microsoft.com", "type": "work", "primary": true }])
    );
    assert_eq!(updated.body["name"]["familyName"], "updatedFamilyName");
    assert_eq!(updated.body["name"]["givenName"], "givenName");

    // Update User [Single-valued properties].
    let renamed_to = "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com";
    let renamed = entra
        .patch(
            &format!("/Users/{id}"),
            patch_op(json!([{ "op": "Replace", "path": "userName", "value": renamed_to }])),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    assert_eq!(renamed.body["userName"], renamed_to);
    assert!(entra.filter("/Users", &lookup, "").await.list(0).is_empty());
    let by_new = entra
        .filter("/Users", &format!("userName eq \"{renamed_to}\""), "")
        .await;
    assert_eq!(by_new.list(1)[0]["id"], id.as_str());

    // Disable User ("Operations" before "schemas", as documented).
    let disabled = entra
        .patch(
            &format!("/Users/{id}"),
            json!({
                "Operations": [{ "op": "Replace", "path": "active", "value": false }],
                "schemas": [PATCH_OP]
            }),
        )
        .await;
    assert_eq!(disabled.status, 200, "{}", disabled.body);
    assert_eq!(disabled.body["active"], false);
    // A soft-deleted user must still be returned, by id and by query.
    let still = entra.get(&format!("/Users/{id}")).await;
    assert_eq!(still.status, 200);
    assert_eq!(still.body["active"], false);
    let queried = entra
        .filter("/Users", &format!("userName eq \"{renamed_to}\""), "")
        .await;
    assert_eq!(queried.list(1)[0]["active"], false);

    // Delete User.
    let deleted = entra.delete(&format!("/Users/{id}")).await;
    assert_eq!(deleted.status, 204);
    assert_eq!(deleted.body, Value::Null);
    entra.get(&format!("/Users/{id}")).await.error(404);
    assert!(entra
        .filter("/Users", &format!("userName eq \"{renamed_to}\""), "")
        .await
        .list(0)
        .is_empty());
}

/// The user PATCH requests of the compatibility article, as sent without
/// and with the `aadOptscim062020` flag, applied one after the other to the
/// same user.
#[tokio::test]
async fn entra_user_patches_with_and_without_the_compliance_flag() {
    let app = spawn_app().await;
    let entra = Idp::entra(&app).await;
    let created = entra
        .post(
            "/Users",
            json!({
                "schemas": [USER, ENTERPRISE],
                "externalId": "bjensen",
                "userName": "bjensen@testuser.com",
                "active": true,
                "displayName": "Barbara Jensen",
                "emails": [{ "type": "work", "value": "bjensen@testuser.com", "primary": true }],
                "name": { "familyName": "Jensen", "givenName": "Barbara" }
            }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let user = format!("/Users/{}", created.id());

    // Disable: "Replace" with the string "False" (no flag)...
    let r = entra
        .patch(
            &user,
            patch_op(json!([{ "op": "Replace", "path": "active", "value": "False" }])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["active"], false);
    // ...and back on with the string "True", which Entra sends to restore.
    let r = entra
        .patch(
            &user,
            patch_op(json!([{ "op": "Replace", "path": "active", "value": "True" }])),
        )
        .await;
    assert_eq!(r.body["active"], true);
    // ...then "replace" with a real boolean (flag).
    let r = entra
        .patch(
            &user,
            patch_op(json!([{ "op": "replace", "path": "active", "value": false }])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["active"], false);

    // Add a single-value string attribute: "Add" (no flag), "add" (flag).
    let r = entra
        .patch(
            &user,
            patch_op(json!([{ "op": "Add", "path": "nickName", "value": "Babs" }])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["nickName"], "Babs");
    let r = entra
        .patch(
            &user,
            json!({
                "schemas": [PATCH_OP],
                "Operations": [{ "op": "add", "path": "nickName", "value": "Barbie" }]
            }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["nickName"], "Barbie");

    // Replace several attributes, one operation each (no flag).
    let r = entra
        .patch(
            &user,
            patch_op(json!([
                { "op": "Replace", "path": "displayName", "value": "Pvlo" },
                {
                    "op": "Replace",
                    "path": "emails[type eq \"work\"].value",
                    "value": "TestBcwqnm@test.microsoft.com"
                },
                { "op": "Replace", "path": "name.givenName", "value": "Gtfd" },
                { "op": "Replace", "path": "name.familyName", "value": "Pkqf" },
                { "op": "Replace", "path": "externalId", "value": "Eqpj" },
                {
                    "op": "Replace",
                    "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
                    "value": "Eqpj"
                }
            ])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let u = &r.body;
    assert_eq!(u["displayName"], "Pvlo");
    assert_eq!(u["emails"][0]["value"], "TestBcwqnm@test.microsoft.com");
    assert_eq!(u["emails"][0]["type"], "work");
    assert_eq!(u["emails"].as_array().unwrap().len(), 1);
    assert_eq!(
        u["name"],
        json!({ "givenName": "Gtfd", "familyName": "Pkqf" })
    );
    assert_eq!(u["externalId"], "Eqpj");
    assert_eq!(u[ENTERPRISE]["employeeNumber"], "Eqpj");
    assert!(u["schemas"]
        .as_array()
        .unwrap()
        .contains(&json!(ENTERPRISE)));
    // The new externalId is what Entra matches on next cycle.
    let by_external = entra.filter("/Users", "externalId eq \"Eqpj\"", "").await;
    assert_eq!(by_external.list(1)[0]["userName"], "bjensen@testuser.com");

    // Replace several attributes (flag): the filtered email on its own, the
    // rest as one path-less value object with dotted and URN-qualified keys.
    let r = entra
        .patch(
            &user,
            patch_op(json!([
                {
                    "op": "replace",
                    "path": "emails[type eq \"work\"].value",
                    "value": "TestMhvaes@test.microsoft.com"
                },
                {
                    "op": "replace",
                    "value": {
                        "displayName": "Bjfe",
                        "name.givenName": "Kkom",
                        "name.familyName": "Unua",
                        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "Aklq"
                    }
                }
            ])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let u = &r.body;
    assert_eq!(u["displayName"], "Bjfe");
    assert_eq!(u["emails"][0]["value"], "TestMhvaes@test.microsoft.com");
    assert_eq!(
        u["name"],
        json!({ "givenName": "Kkom", "familyName": "Unua" })
    );
    assert_eq!(u[ENTERPRISE]["employeeNumber"], "Aklq");
    assert_eq!(u["active"], false, "untouched by the other operations");
    assert_eq!(u["nickName"], "Barbie");

    // Work email lookup, the other matching attribute the tutorial names,
    // in the form Entra sends it (not RFC 7644 grammar; scimd reads it as
    // `emails[type eq "work" and value eq "…"]`) and in the RFC form.
    for filter in [
        "emails[type eq \"work\"].value eq \"testmhvaes@test.microsoft.com\"",
        "emails[type eq \"work\" and value eq \"testmhvaes@test.microsoft.com\"]",
    ] {
        let by_email = entra.filter("/Users", filter, "").await;
        assert_eq!(by_email.list(1)[0]["userName"], "bjensen@testuser.com");
    }
    let other_type = entra
        .filter(
            "/Users",
            "emails[type eq \"home\"].value eq \"testmhvaes@test.microsoft.com\"",
            "",
        )
        .await;
    other_type.list(0);
}

/// The manager reference: mapped to the enterprise extension's `manager`,
/// which Entra sends as a bare id rather than the complex value RFC 7643
/// §4.3 defines, both on create (the tutorial's example resource has
/// `"manager": "123456"`) and in PATCH.
#[tokio::test]
async fn entra_manager_is_a_bare_id() {
    let app = spawn_app().await;
    let entra = Idp::entra(&app).await;
    let boss = entra
        .post(
            "/Users",
            json!({ "schemas": [USER], "userName": "boss@testuser.com", "active": true }),
        )
        .await;
    assert_eq!(boss.status, 201, "{}", boss.body);
    let boss_id = boss.id();

    let created = entra
        .post(
            "/Users",
            json!({
                "schemas": [USER, ENTERPRISE],
                "userName": "bjensen@testuser.com",
                "externalId": "bjensen",
                "name": { "familyName": "Jensen", "givenName": "Barbara" },
                ENTERPRISE: { "manager": boss_id, "department": "Sales" }
            }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(
        created.body[ENTERPRISE]["manager"]["value"],
        boss_id.as_str()
    );
    assert_eq!(created.body[ENTERPRISE]["department"], "Sales");
    let user = format!("/Users/{}", created.id());

    // A new manager, then the department, by URN-qualified path.
    let other = entra
        .post(
            "/Users",
            json!({ "schemas": [USER], "userName": "other.boss@testuser.com" }),
        )
        .await;
    let other_id = other.id();
    let r = entra
        .patch(
            &user,
            patch_op(json!([
                { "op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": other_id },
                { "op": "Replace", "path": format!("{ENTERPRISE}:department"), "value": "R&D" }
            ])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body[ENTERPRISE]["manager"]["value"], other_id.as_str());
    assert_eq!(r.body[ENTERPRISE]["department"], "R&D");

    // Entra reads the reference back by its sub-attribute.
    let q = entra
        .filter(
            "/Users",
            &format!("{ENTERPRISE}:manager.value eq \"{other_id}\""),
            "",
        )
        .await;
    assert_eq!(q.list(1)[0]["userName"], "bjensen@testuser.com");

    // The manager left: Entra removes the reference.
    let r = entra
        .patch(
            &user,
            patch_op(json!([{ "op": "Remove", "path": format!("{ENTERPRISE}:manager") }])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body[ENTERPRISE].get("manager").is_none());
    assert_eq!(r.body[ENTERPRISE]["department"], "R&D");
}

/// A group's life: create (with Microsoft's own schema URI next to the
/// core one), get and query without members, duplicate, rename, add and
/// remove members in every documented shape, delete.
#[tokio::test]
async fn entra_group_lifecycle() {
    let app = spawn_app().await;
    let entra = Idp::entra(&app).await;
    let mut users = Vec::new();
    for name in ["u1@testuser.com", "u2@testuser.com", "u3@testuser.com"] {
        let u = entra
            .post(
                "/Users",
                json!({ "schemas": [USER], "userName": name, "active": true }),
            )
            .await;
        assert_eq!(u.status, 201, "{}", u.body);
        users.push(u.id());
    }

    // Matching first: Entra looks the group up by displayName, without
    // members.
    let miss = entra
        .filter(
            "/Groups",
            "displayName eq \"displayName\"",
            "excludedAttributes=members",
        )
        .await;
    assert!(miss.list(0).is_empty());

    // Create Group: created with no members at all.
    let create = json!({
        "schemas": [
            GROUP,
            "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
        ],
        "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
        "displayName": "displayName",
        "meta": { "resourceType": "Group" }
    });
    let created = entra.post("/Groups", create.clone()).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let gid = created.id();
    assert_eq!(created.body["schemas"], json!([GROUP]));
    assert_eq!(created.body["displayName"], "displayName");
    assert_eq!(
        created.body["externalId"],
        "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159"
    );
    assert_eq!(created.body["meta"]["resourceType"], "Group");
    assert_eq!(
        created.body["members"]
            .as_array()
            .map(Vec::len)
            .unwrap_or(0),
        0
    );
    let group = format!("/Groups/{gid}");

    // Groups must be unique by displayName for Entra to match them.
    let dup = entra.post("/Groups", create).await;
    dup.error(409);
    assert_eq!(dup.body["scimType"], "uniqueness");

    // Get Group.
    let got = entra
        .get(&format!("{group}?excludedAttributes=members"))
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body["id"], gid.as_str());
    assert_eq!(got.body["displayName"], "displayName");
    assert!(got.body.get("members").is_none());

    // Get Group by displayName.
    let hit = entra
        .filter(
            "/Groups",
            "displayName eq \"displayName\"",
            "excludedAttributes=members",
        )
        .await;
    let found = hit.list(1);
    assert_eq!(found[0]["id"], gid.as_str());
    assert!(found[0].get("members").is_none());

    // Update Group [Non-member attributes]: 204 No Content.
    let new_name = "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName";
    let r = entra
        .patch(
            &group,
            patch_op(json!([{ "op": "Replace", "path": "displayName", "value": new_name }])),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(r.body, Value::Null);
    let got = entra.get(&group).await;
    assert_eq!(got.body["displayName"], new_name);

    // Update Group [Add Members], with the null "$ref" Entra sends; then
    // several members in one PATCH (the gallery checklist asks for it).
    let r = entra
        .patch(
            &group,
            patch_op(json!([{
                "op": "Add",
                "path": "members",
                "value": [{ "$ref": null, "value": users[0] }]
            }])),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(entra.members(&gid).await, sorted(&[&users[0]]));
    let r = entra
        .patch(
            &group,
            patch_op(json!([{
                "op": "Add",
                "path": "members",
                "value": [
                    { "$ref": null, "value": users[1] },
                    { "$ref": null, "value": users[2] }
                ]
            }])),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(
        entra.members(&gid).await,
        sorted(&[&users[0], &users[1], &users[2]])
    );

    // Membership check: is this user in the group? (`eq` and `and` are the
    // only operators Entra uses.)
    let check = entra
        .filter(
            "/Groups",
            &format!("id eq \"{gid}\" and members.value eq \"{}\"", users[1]),
            "excludedAttributes=members",
        )
        .await;
    assert_eq!(check.list(1)[0]["id"], gid.as_str());

    // Update Group [Remove Members]: a value list with "$ref": null (also
    // the compatibility article's shape without the flag)...
    let r = entra
        .patch(
            &group,
            patch_op(json!([{
                "op": "Remove",
                "path": "members",
                "value": [{ "$ref": null, "value": users[0] }]
            }])),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(entra.members(&gid).await, sorted(&[&users[1], &users[2]]));
    // ...and the value filter sent with the flag.
    let r = entra
        .patch(
            &group,
            patch_op(json!([{
                "op": "remove",
                "path": format!("members[value eq \"{}\"]", users[1])
            }])),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(entra.members(&gid).await, sorted(&[&users[2]]));
    // Removing someone already gone is not an error: Entra retries.
    let r = entra
        .patch(
            &group,
            patch_op(json!([{
                "op": "Remove",
                "path": "members",
                "value": [{ "value": users[0] }]
            }])),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);

    // Delete Group.
    let deleted = entra.delete(&group).await;
    assert_eq!(deleted.status, 204);
    entra.get(&group).await.error(404);
    // The members are still users.
    assert_eq!(entra.get(&format!("/Users/{}", users[2])).await.status, 200);
}

/// Discover schema: Entra reads /Schemas when the provisioning
/// configuration is saved or edited. It needs a ListResponse, camel-cased
/// property values, and no nulls for values that are absent.
#[tokio::test]
async fn entra_schema_discovery() {
    let app = spawn_app().await;
    let entra = Idp::entra(&app).await;
    let r = entra.get("/Schemas").await;
    let schemas = r.list(r.body["totalResults"].as_u64().unwrap());
    fn no_nulls(v: &Value, at: &str) {
        match v {
            Value::Null => panic!("null at {at}"),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .for_each(|(i, x)| no_nulls(x, &format!("{at}[{i}]"))),
            Value::Object(o) => o
                .iter()
                .for_each(|(k, x)| no_nulls(x, &format!("{at}.{k}"))),
            _ => {}
        }
    }
    no_nulls(&r.body, "");
    let by_id = |urn: &str| {
        schemas
            .iter()
            .find(|s| s["id"] == urn)
            .unwrap_or_else(|| panic!("{urn} not listed"))
    };
    let attr = |schema: &Value, name: &str| {
        schema["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .unwrap_or_else(|| panic!("{name} not in {}", schema["id"]))
            .clone()
    };
    let user = by_id(USER);
    assert_eq!(
        user["schemas"][0],
        "urn:ietf:params:scim:schemas:core:2.0:Schema"
    );
    let user_name = attr(user, "userName");
    assert_eq!(user_name["type"], "string");
    assert_eq!(user_name["multiValued"], false);
    assert_eq!(user_name["required"], true);
    assert_eq!(user_name["caseExact"], false);
    assert_eq!(user_name["mutability"], "readWrite");
    assert_eq!(user_name["returned"], "default");
    assert_eq!(user_name["uniqueness"], "server");
    assert_eq!(attr(by_id(GROUP), "displayName")["type"], "string");
    assert_eq!(
        attr(by_id(ENTERPRISE), "employeeNumber")["mutability"],
        "readWrite"
    );
    assert_eq!(attr(by_id(ENTERPRISE), "manager")["type"], "complex");
}

// ---------------------------------------------------------------------------
// Okta
//
// Source: Okta developer documentation, "SCIM 2.0 Protocol Reference"
// (docs/reference/scim/scim-20), sections "SCIM User operations" and "SCIM
// Group operations".
// ---------------------------------------------------------------------------

/// Assignment to the app: lookup, create, import, read, PUT update,
/// deactivate and reactivate by PATCH, password sync. Okta never deletes
/// users.
#[tokio::test]
async fn okta_user_lifecycle() {
    let app = spawn_app().await;
    let okta = Idp::okta(&app).await;

    // Determine if the User already exists: 200 with an empty list.
    let lookup =
        "/Users?filter=userName%20eq%20%22test.user%40okta.local%22&startIndex=1&count=100";
    let miss = okta.get(lookup).await;
    assert!(miss.list(0).is_empty());
    assert_eq!(miss.body["startIndex"], 1);
    assert_eq!(miss.body["itemsPerPage"], 0);

    // Create the User.
    let create = json!({
        "schemas": [USER],
        "userName": "test.user@okta.local",
        "name": { "givenName": "Test", "familyName": "User" },
        "emails": [{ "primary": true, "value": "test.user@okta.local", "type": "work" }],
        "displayName": "Test User",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": "1mz050nq",
        "active": true
    });
    let created = okta.post("/Users", create.clone()).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.id();
    let u = &created.body;
    assert_eq!(u["userName"], "test.user@okta.local");
    assert_eq!(
        u["name"],
        json!({ "givenName": "Test", "familyName": "User" })
    );
    assert_eq!(u["displayName"], "Test User");
    assert_eq!(u["locale"], "en-US");
    assert_eq!(u["externalId"], "00ujl29u0le5T6Aj10h7");
    assert_eq!(u["active"], true);
    assert_eq!(u["meta"]["resourceType"], "User");
    assert!(u.get("password").is_none());
    // Okta's base URL is /scim/v2, and so are the locations it is given.
    assert_eq!(
        u["meta"]["location"],
        format!("{}/scim/v2/Users/{id}", app.address)
    );

    // Already there: 409 stops the job instead of creating a twin.
    okta.post("/Users", create).await.error(409);

    // The lookup now matches, and Okta links the user.
    let hit = okta.get(lookup).await;
    assert_eq!(hit.list(1)[0]["id"], id.as_str());

    // Import: pages of 100, integers throughout.
    let import = okta.get("/Users?startIndex=1&count=100").await;
    assert_eq!(import.list(1)[0]["id"], id.as_str());

    // Retrieve the User, then Update the User (PUT) with the whole profile,
    // id, meta and read-only groups included.
    let got = okta.get(&format!("/Users/{id}")).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body, created.body);
    let put = okta
        .put(
            &format!("/Users/{id}"),
            json!({
                "schemas": [USER],
                "id": id,
                "userName": "test.user@okta.local",
                "name": { "givenName": "Another", "middleName": "Excited", "familyName": "User" },
                "emails": [{
                    "primary": true,
                    "value": "test.user@okta.local",
                    "type": "work",
                    "display": "test.user@okta.local"
                }],
                "active": true,
                "groups": [],
                "meta": { "resourceType": "User" }
            }),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.body["id"], id.as_str());
    assert_eq!(
        put.body["name"],
        json!({ "givenName": "Another", "middleName": "Excited", "familyName": "User" })
    );
    assert_eq!(put.body["emails"][0]["value"], "test.user@okta.local");
    assert_eq!(put.body["active"], true);
    assert!(put.body.get("externalId").is_none(), "PUT replaces");

    // Deactivate: a path-less replace. Okta wants the user back (200).
    let off = okta
        .patch(
            &format!("/Users/{id}"),
            patch_op(json!([{ "op": "replace", "value": { "active": false } }])),
        )
        .await;
    assert_eq!(off.status, 200, "{}", off.body);
    assert_eq!(off.body["id"], id.as_str());
    assert_eq!(off.body["active"], false);
    assert_eq!(off.body["name"]["middleName"], "Excited");
    let inactive = okta
        .get("/Users?filter=userName%20eq%20%22test.user%40okta.local%22&startIndex=1&count=100")
        .await;
    assert_eq!(inactive.list(1)[0]["active"], false);

    // Reactivate, then password sync (accepted, never stored or shown).
    let on = okta
        .patch(
            &format!("/Users/{id}"),
            patch_op(json!([{ "op": "replace", "value": { "active": true } }])),
        )
        .await;
    assert_eq!(on.status, 200, "{}", on.body);
    assert_eq!(on.body["active"], true);
    let pw = okta
        .patch(
            &format!("/Users/{id}"),
            patch_op(json!([{ "op": "replace", "value": { "password": "t1meMa$heen" } }])),
        )
        .await;
    assert_eq!(pw.status, 200, "{}", pw.body);
    assert!(pw.body.get("password").is_none());
    let doc = app
        .store
        .get_user(okta.dir.id.parse().unwrap(), id.parse().unwrap())
        .await
        .unwrap()
        .doc;
    assert!(!doc.contains("t1meMa$heen") && !doc.contains("1mz050nq"));
}

/// Group Push: create, import and read, rename by PATCH (with the group's
/// own id in the value), membership changes by add/remove and by full
/// replace, unlink with delete.
#[tokio::test]
async fn okta_group_push() {
    let app = spawn_app().await;
    let okta = Idp::okta(&app).await;
    let mut users = Vec::new();
    for (name, external) in [
        ("test.user@okta.local", "00ujl29u0le5T6Aj10h7"),
        ("other.user@okta.local", "00ujl29u0le5T6Aj10h8"),
    ] {
        let u = okta
            .post(
                "/Users",
                json!({
                    "schemas": [USER],
                    "userName": name,
                    "externalId": external,
                    "name": { "givenName": "Test", "familyName": "User" },
                    "active": true
                }),
            )
            .await;
        assert_eq!(u.status, 201, "{}", u.body);
        users.push(u.id());
    }
    let (test_user, other_user) = (users[0].as_str(), users[1].as_str());

    // Create Groups.
    let created = okta
        .post(
            "/Groups",
            json!({ "schemas": [GROUP], "displayName": "Test SCIMv2", "members": [] }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let gid = created.id();
    assert_eq!(created.body["displayName"], "Test SCIMv2");
    // An empty list and no list at all are the same state (RFC 7643 §2.5).
    assert_eq!(
        created.body["members"]
            .as_array()
            .map(Vec::len)
            .unwrap_or(0),
        0
    );
    assert_eq!(created.body["meta"]["resourceType"], "Group");
    let group = format!("/Groups/{gid}");

    // Retrieve Groups (import) and a specific Group.
    let all = okta.get("/Groups?startIndex=1&count=100").await;
    assert_eq!(all.list(1)[0]["id"], gid.as_str());
    let got = okta.get(&group).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body["displayName"], "Test SCIMv2");

    // Update a specific Group name: a path-less replace whose value echoes
    // the (read-only) id. 204 is an accepted answer.
    let r = okta
        .patch(
            &group,
            patch_op(json!([{
                "op": "replace",
                "value": { "id": gid, "displayName": "Test SCIMv20" }
            }])),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let got = okta.get(&group).await;
    assert_eq!(got.body["displayName"], "Test SCIMv20");
    assert_eq!(got.body["id"], gid.as_str());

    // Update specific Group membership: remove one member by filter and add
    // another, in one request. The other user starts as a member.
    let r = okta
        .patch(
            &group,
            patch_op(
                json!([{ "op": "add", "path": "members", "value": [{ "value": other_user }] }]),
            ),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let r = okta
        .patch(
            &group,
            patch_op(json!([
                { "op": "remove", "path": format!("members[value eq \"{other_user}\"]") },
                {
                    "op": "add",
                    "path": "members",
                    "value": [{ "value": test_user, "display": "test.user@okta.local" }]
                }
            ])),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(okta.members(&gid).await, sorted(&[test_user]));
    // The member's groups show it, and the rename that Okta sends with every
    // membership update changes nothing.
    let u = okta.get(&format!("/Users/{test_user}")).await;
    assert_eq!(u.body["groups"][0]["value"], gid.as_str());
    assert_eq!(u.body["groups"][0]["display"], "Test SCIMv20");
    let r = okta
        .patch(
            &group,
            patch_op(json!([{
                "op": "replace",
                "value": { "id": gid, "displayName": "Test SCIMv20" }
            }])),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(okta.members(&gid).await, sorted(&[test_user]));

    // A full push of the membership with replace.
    let r = okta
        .patch(
            &group,
            patch_op(json!([{
                "op": "replace",
                "path": "members",
                "value": [
                    { "value": test_user, "display": "test.user@okta.local" },
                    { "value": other_user, "display": "test.user@okta.local" }
                ]
            }])),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(okta.members(&gid).await, sorted(&[test_user, other_user]));

    // Delete a specific Group (unlink, deleting it in the app).
    let deleted = okta.delete(&group).await;
    assert_eq!(deleted.status, 204);
    okta.get(&group).await.error(404);
    let u = okta.get(&format!("/Users/{test_user}")).await;
    assert!(u.body.get("groups").is_none());
}

// ---------------------------------------------------------------------------
// Google Workspace
//
// Google publishes little about the requests its auto-provisioning sends
// to a custom SAML app's SCIM endpoint, so this sequence is assumed, not
// documented: a probe on /Users when the connection is set up, a userName
// lookup before create, PATCH replace of the mapped profile attributes,
// deactivation by `active: false` when a user is suspended, and deletion
// when the admin chooses it for users leaving scope.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn google_workspace_provisioning() {
    let app = spawn_app().await;
    let google = Idp::google(&app).await;

    // Connection probe.
    let probe = google.get("/Users?count=1").await;
    assert!(probe.list(0).is_empty());

    // Lookup, then create.
    let lookup = "userName eq \"alex@example.com\"";
    assert!(google.filter("/Users", lookup, "").await.list(0).is_empty());
    let created = google
        .post(
            "/Users",
            json!({
                "schemas": [USER],
                "userName": "alex@example.com",
                "name": { "givenName": "Alex", "familyName": "Smith" },
                "emails": [{ "value": "alex@example.com", "type": "work", "primary": true }],
                "active": true
            }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.id();
    let user = format!("/Users/{id}");
    assert_eq!(
        google.filter("/Users", lookup, "").await.list(1)[0]["id"],
        id.as_str()
    );

    // Profile changes: name and emails replaced whole.
    let r = google
        .patch(
            &user,
            patch_op(json!([
                { "op": "replace", "path": "name", "value": { "givenName": "Alexandra", "familyName": "Smith" } },
                {
                    "op": "replace",
                    "path": "emails",
                    "value": [
                        { "value": "alexandra@example.com", "type": "work", "primary": true },
                        { "value": "alex@example.com", "type": "other" }
                    ]
                }
            ])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["name"]["givenName"], "Alexandra");
    assert_eq!(r.body["emails"].as_array().unwrap().len(), 2);
    assert_eq!(r.body["emails"][0]["value"], "alexandra@example.com");
    let by_email = google
        .filter("/Users", "emails.value eq \"alexandra@example.com\"", "")
        .await;
    assert_eq!(by_email.list(1)[0]["id"], id.as_str());

    // Suspended in Workspace: deactivated, still readable.
    let r = google
        .patch(
            &user,
            patch_op(json!([{ "op": "replace", "path": "active", "value": false }])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["active"], false);
    assert_eq!(google.get(&user).await.body["active"], false);

    // Removed from scope with "delete" chosen.
    assert_eq!(google.delete(&user).await.status, 204);
    google.get(&user).await.error(404);
    assert!(google.filter("/Users", lookup, "").await.list(0).is_empty());
}
