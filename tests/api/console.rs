//! The admin console over HTTP: sign-in with an admin token, the session
//! cookie's flags, CSRF refusals, expiry, sign-out, security headers, and
//! the organisation overview.

use reqwest::header::{HeaderMap, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::json;

use crate::helpers::{spawn_app, TestApp, ADMIN_TOKEN, M};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// The `Set-Cookie` header that sets `name`.
fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

fn value_of(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .and_then(|p| p.split_once('='))
        .map(|(_, v)| v.to_owned())
        .unwrap()
}

fn hidden_csrf(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    html[at..].split('"').next().unwrap().to_owned()
}

/// Signs in with the test's admin token; the session cookie's value.
async fn sign_in(app: &TestApp) -> String {
    sign_in_with(app, ADMIN_TOKEN).await
}

async fn sign_in_with(app: &TestApp, token: &str) -> String {
    let c = client();
    let form = c
        .get(format!("{}/admin/sign-in", app.address))
        .send()
        .await
        .unwrap();
    let csrf_cookie = value_of(&set_cookie(form.headers(), "scimd_console_signin").unwrap());
    let csrf = hidden_csrf(&form.text().await.unwrap());
    assert_eq!(csrf, csrf_cookie);
    let resp = c
        .post(format!("{}/admin/sign-in", app.address))
        .header("cookie", format!("scimd_console_signin={csrf_cookie}"))
        .form(&[("token", token), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/admin/");
    let session = set_cookie(resp.headers(), "scimd_console").unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/admin"] {
        assert!(session.contains(flag), "{session}");
    }
    assert!(!session.contains("Secure"), "plain http: {session}");
    assert!(!session.contains(ADMIN_TOKEN));
    value_of(&session)
}

async fn get(app: &TestApp, path: &str, session: Option<&str>) -> reqwest::Response {
    let mut req = client().get(format!("{}{path}", app.address));
    if let Some(s) = session {
        req = req.header("cookie", format!("scimd_console={s}"));
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn the_sign_in_page_is_labelled_and_guarded() {
    let app = spawn_app().await;
    let resp = get(&app, "/admin/sign-in", None).await;
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["x-content-type-options"], "nosniff");
    let cookie = set_cookie(&h, "scimd_console_signin").unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("<label for=\"token\">Admin token</label>"),
        "{html}"
    );
    assert!(html.contains("type=\"password\""));
    assert!(html.contains("href=\"/admin/assets/console.css\""));
    assert!(!html.contains("<script>") && !html.contains(" style="));

    // Not signed in: every page leads to the sign-in page.
    for path in ["/admin/", "/admin/orgs/default", "/admin"] {
        let resp = get(&app, path, None).await;
        assert!(resp.status().is_redirection(), "{path}");
    }
    let resp = get(&app, "/admin/orgs/default", Some("made-up")).await;
    assert_eq!(resp.headers()["location"], "/admin/sign-in");
    let css = get(&app, "/admin/assets/console.css", None).await;
    assert_eq!(css.status(), 200);
    assert!(css.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
}

#[tokio::test]
async fn a_wrong_token_or_a_forged_form_is_refused() {
    let app = spawn_app().await;
    let c = client();
    let form = get(&app, "/admin/sign-in", None).await;
    let csrf = value_of(&set_cookie(form.headers(), "scimd_console_signin").unwrap());
    // Without the form's cookie (another site's form): refused.
    let resp = c
        .post(format!("{}/admin/sign-in", app.address))
        .form(&[("token", ADMIN_TOKEN), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(set_cookie(resp.headers(), "scimd_console").is_none());
    // A wrong token: the form again, with the reason by the field.
    let resp = c
        .post(format!("{}/admin/sign-in", app.address))
        .header("cookie", format!("scimd_console_signin={csrf}"))
        .form(&[("token", "not-a-token"), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(set_cookie(resp.headers(), "scimd_console").is_none());
    let html = resp.text().await.unwrap();
    assert!(html.contains("id=\"token-error\""), "{html}");
    assert!(html.contains("aria-describedby=\"token-error\""));
    assert!(!html.contains("not-a-token"));
}

#[tokio::test]
async fn a_session_shows_the_organisation_until_it_ends() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta production").await;
    app.create_user(&dir, "ada@example.com").await;
    app.create_group(&dir, "Engineering", &[]).await;
    let session = sign_in(&app).await;

    let resp = get(&app, "/admin/", Some(&session)).await;
    assert_eq!(resp.headers()["location"], "/admin/orgs/default");
    let resp = get(&app, "/admin/orgs/default", Some(&session)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let html = resp.text().await.unwrap();
    assert!(html.contains("Okta production"), "{html}");
    assert!(html.contains(&dir.key_id), "{html}");
    assert!(html.contains("<td class=\"num\">1</td>"), "{html}");
    assert!(html.contains("<svg"), "{html}");
    assert!(html.contains("Users created (1)"), "{html}");
    assert!(!html.contains(ADMIN_TOKEN));
    let csrf = hidden_csrf(&html);
    let resp = get(
        &app,
        &format!("/admin/orgs/{}", uuid::Uuid::new_v4()),
        Some(&session),
    )
    .await;
    assert_eq!(resp.status(), 404);

    // Signing out needs the session's CSRF token.
    let c = client();
    let resp = c
        .post(format!("{}/admin/sign-out", app.address))
        .header("cookie", format!("scimd_console={session}"))
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(
        get(&app, "/admin/orgs/default", Some(&session))
            .await
            .status(),
        200
    );
    let resp = c
        .post(format!("{}/admin/sign-out", app.address))
        .header("cookie", format!("scimd_console={session}"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert!(set_cookie(resp.headers(), "scimd_console")
        .unwrap()
        .contains("Max-Age=0"));
    let resp = get(&app, "/admin/orgs/default", Some(&session)).await;
    assert_eq!(resp.headers()["location"], "/admin/sign-in");

    // A session past its time is over too.
    let other = sign_in(&app).await;
    assert_eq!(
        get(&app, "/admin/orgs/default", Some(&other))
            .await
            .status(),
        200
    );
    app.db()
        .execute("UPDATE console_sessions SET expires_at = 0")
        .await;
    let resp = get(&app, "/admin/orgs/default", Some(&other)).await;
    assert_eq!(resp.headers()["location"], "/admin/sign-in");
    // The admin API is unchanged beside it.
    let orgs = app.ok_json(app.admin(M::GET, "/orgs")).await;
    assert!(orgs["orgs"].is_array(), "{}", json!(orgs));
}

async fn post_form(
    app: &TestApp,
    path: &str,
    session: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    client()
        .post(format!("{}{path}", app.address))
        .header("cookie", format!("scimd_console={session}"))
        .form(form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_directory_page_regenerates_its_key_once_and_deletes_it_when_named() {
    let app = spawn_app().await;
    let dir = app.create_directory("Entra").await;
    for i in 0..55 {
        app.create_user(&dir, &format!("user{i:02}@example.com"))
            .await;
    }
    let session = sign_in(&app).await;
    let path = format!("/admin/orgs/default/directories/{}", dir.id);
    let html = get(&app, &path, Some(&session)).await.text().await.unwrap();
    assert!(html.contains(&dir.base_url), "{html}");
    assert!(html.contains(&dir.key_id));
    assert!(!html.contains(&dir.api_key), "the key is never shown again");
    assert_eq!(html.matches("@example.com</td>").count(), 50);
    let next = html
        .split("href=\"")
        .find(|s| s.contains("after="))
        .unwrap();
    let next = next.split('"').next().unwrap().replace("&amp;", "&");
    let page2 = get(&app, &next, Some(&session)).await.text().await.unwrap();
    assert_eq!(page2.matches("@example.com</td>").count(), 5, "{page2}");
    let found = get(&app, &format!("{path}?q=user07"), Some(&session))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(found.matches("@example.com</td>").count(), 1);
    assert!(found.contains("user07@example.com"));
    let csrf = hidden_csrf(&html);

    // Regenerating needs the session's token; the new key is shown once
    // and the old one is refused at once.
    let resp = post_form(
        &app,
        &format!("{path}/key"),
        &session,
        &[("csrf", "forged")],
    )
    .await;
    assert_eq!(resp.status(), 403);
    let still = app
        .scim(&dir, M::GET, "/Users?count=1")
        .send()
        .await
        .unwrap();
    assert_eq!(still.status(), 200);
    let resp = post_form(&app, &format!("{path}/key"), &session, &[("csrf", &csrf)]).await;
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    assert!(html.contains("shown only this once"), "{html}");
    assert!(html.contains("data-copy=\"new-key\""));
    let at = html.find("id=\"new-key\">").unwrap() + "id=\"new-key\">".len();
    let new_key = html[at..].split('<').next().unwrap().to_owned();
    assert!(new_key.starts_with("scimd_"), "{new_key}");
    let old = app
        .scim(&dir, M::GET, "/Users?count=1")
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), 401);
    let fresh = app
        .client
        .get(format!("{}/Users?count=1", dir.base_url))
        .bearer_auth(&new_key)
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), 200);
    let again = get(&app, &path, Some(&session)).await.text().await.unwrap();
    assert!(!again.contains(&new_key), "shown once only");

    // Deleting needs the name typed.
    let resp = post_form(
        &app,
        &format!("{path}/delete"),
        &session,
        &[("csrf", &csrf), ("confirm", "Okta")],
    )
    .await;
    assert_eq!(resp.status(), 400);
    let html = resp.text().await.unwrap();
    assert!(html.contains("id=\"confirm-error\""), "{html}");
    let api = format!("/orgs/default/directories/{}", dir.id);
    assert_eq!(app.admin(M::GET, &api).send().await.unwrap().status(), 200);
    let resp = post_form(
        &app,
        &format!("{path}/delete"),
        &session,
        &[("csrf", &csrf), ("confirm", "Entra")],
    )
    .await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/admin/orgs/default");
    assert_eq!(app.admin(M::GET, &api).send().await.unwrap().status(), 404);
    assert_eq!(get(&app, &path, Some(&session)).await.status(), 404);
}

#[tokio::test]
async fn sync_now_starts_a_run_that_the_history_shows() {
    let app = spawn_app().await;
    let dir = app.create_directory("Sync me").await;
    app.create_user(&dir, "ada@example.com").await;
    let session = sign_in(&app).await;
    let path = format!("/admin/orgs/default/directories/{}", dir.id);
    let html = get(&app, &path, Some(&session)).await.text().await.unwrap();
    let csrf = hidden_csrf(&html);
    let resp = post_form(&app, &format!("{path}/sync"), &session, &[("csrf", "x")]).await;
    assert_eq!(resp.status(), 403);
    // The user's creation may have started a run of its own; while one
    // runs, "Sync now" is refused with the reason beside the button.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let resp = post_form(&app, &format!("{path}/sync"), &session, &[("csrf", &csrf)]).await;
        if resp.status() == 303 {
            assert_eq!(resp.headers()["location"], path.as_str());
            break;
        }
        assert_eq!(resp.status(), 409);
        let html = resp.text().await.unwrap();
        assert!(html.contains("id=\"sync-message\""), "{html}");
        assert!(html.contains("is running"), "{html}");
        assert!(std::time::Instant::now() < deadline, "never idle");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    loop {
        let html = get(&app, &path, Some(&session)).await.text().await.unwrap();
        if html.contains("<td>manual</td><td>succeeded</td>") {
            assert!(html.contains("No sync is running."), "{html}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no finished run: {html}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_webhooks_page_lists_endpoints_and_their_attempts() {
    let app = crate::helpers::spawn_app_with(|c| c.webhooks.webhook_allow_private = true).await;
    let hook = app
        .ok_json_created(
            app.admin(M::POST, "/orgs/default/webhooks")
                .json(&json!({"url": "http://127.0.0.1:9/closed", "description": "nobody there"})),
        )
        .await;
    let id = hook["id"].as_str().unwrap();
    app.ok_json(app.admin(M::POST, &format!("/orgs/default/webhooks/{id}/test")))
        .await;
    let session = sign_in(&app).await;
    let html = get(&app, "/admin/orgs/default/webhooks", Some(&session))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("http://127.0.0.1:9/closed"), "{html}");
    assert!(html.contains(&format!("/admin/orgs/default/webhooks/{id}")));
    assert!(!html.contains("whsec_"), "no secret on a page");
    let html = get(
        &app,
        &format!("/admin/orgs/default/webhooks/{id}"),
        Some(&session),
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(html.contains("nobody there"), "{html}");
    assert!(html.contains("<td>webhook.test</td>"), "{html}");
    assert!(!html.contains("<td>delivered</td>"), "{html}");
    let resp = get(
        &app,
        &format!("/admin/orgs/default/webhooks/{}", uuid::Uuid::new_v4()),
        Some(&session),
    )
    .await;
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn the_report_filters_pages_and_downloads_as_csv() {
    let app = spawn_app().await;
    let dir = app.create_directory("Reported").await;
    for i in 0..52 {
        app.create_user(&dir, &format!("r{i:02}@example.com")).await;
    }
    let session = sign_in(&app).await;
    let html = get(
        &app,
        "/admin/orgs/default/report?action=user.created",
        Some(&session),
    )
    .await
    .text()
    .await
    .unwrap();
    assert_eq!(html.matches("<td>user.created</td>").count(), 50, "{html}");
    assert!(html.contains("<label for=\"action\">Action</label>"));
    assert!(
        html.contains("<option value=\"user.created\" selected>"),
        "{html}"
    );
    let older = html
        .split("href=\"")
        .find(|s| s.contains("cursor="))
        .unwrap();
    let older = older.split('"').next().unwrap().replace("&amp;", "&");
    let page2 = get(&app, &older, Some(&session))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(page2.matches("<td>user.created</td>").count(), 2, "{page2}");

    // An empty form's fields are no filters; a user narrows it down.
    let html = get(
        &app,
        "/admin/orgs/default/report?user=r07%40example.com&action=&outcome=&since=&until=",
        Some(&session),
    )
    .await
    .text()
    .await
    .unwrap();
    assert_eq!(
        html.matches("<td>r07@example.com</td>").count(),
        1,
        "{html}"
    );
    let none = get(
        &app,
        "/admin/orgs/default/report?action=user.deleted",
        Some(&session),
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(none.contains("No event matches."));
    let resp = get(
        &app,
        "/admin/orgs/default/report?since=yesterday",
        Some(&session),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let html = resp.text().await.unwrap();
    assert!(html.contains("id=\"report-error\""), "{html}");
    assert!(
        html.contains("&#39;since&#39; must be") || html.contains("'since' must be"),
        "{html}"
    );

    let resp = get(
        &app,
        "/admin/orgs/default/report.csv?action=user.created&outcome=",
        Some(&session),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let csv = resp.text().await.unwrap();
    assert_eq!(csv.lines().count(), 53, "a header and 52 users");
    assert!(csv.contains("r51@example.com"));
    // Not signed in: no download.
    let resp = get(&app, "/admin/orgs/default/report.csv", None).await;
    assert!(resp.status().is_redirection());
}

#[tokio::test]
async fn domains_are_added_and_verified_with_the_reason_shown() {
    use crate::domains::{world, Zone};
    let w = world().await;
    let app = &w.app;
    let dir = app.create_directory("Linked").await;
    let session = sign_in(app).await;
    let path = "/admin/orgs/default/domains";
    let html = get(app, path, Some(&session)).await.text().await.unwrap();
    assert!(
        html.contains("<label for=\"name\">Add a domain</label>"),
        "{html}"
    );
    let csrf = hidden_csrf(&html);
    for (name, status, code) in [
        ("not a domain", 400, "name-error"),
        ("gmail.com", 400, "name-error"),
    ] {
        let resp = post_form(app, path, &session, &[("csrf", &csrf), ("name", name)]).await;
        assert_eq!(resp.status(), status, "{name}");
        assert!(resp.text().await.unwrap().contains(code));
    }
    let resp = post_form(
        app,
        path,
        &session,
        &[("csrf", "x"), ("name", "acme.example")],
    )
    .await;
    assert_eq!(resp.status(), 403);
    let resp = post_form(
        app,
        path,
        &session,
        &[("csrf", &csrf), ("name", "acme.example")],
    )
    .await;
    assert_eq!(resp.status(), 303);
    let html = get(app, path, Some(&session)).await.text().await.unwrap();
    assert!(html.contains("acme.example — unverified"), "{html}");
    let at = html.find("scimd-verification=").unwrap();
    let txt = html[at..].split('<').next().unwrap().to_owned();
    assert!(html.contains("/.well-known/scimd-verification.txt"));

    // Not published yet: not verified, and why.
    let verify = format!("{path}/acme.example/verify");
    let resp = post_form(
        app,
        &verify,
        &session,
        &[("csrf", &csrf), ("method", "dns")],
    )
    .await;
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    assert!(html.contains("Not verified: "), "{html}");
    // Published: verified, and the API agrees.
    w.zone(
        "acme.example",
        Zone {
            txt: vec![txt],
            ..Zone::default()
        },
    );
    let resp = post_form(
        app,
        &verify,
        &session,
        &[("csrf", &csrf), ("method", "dns")],
    )
    .await;
    let html = resp.text().await.unwrap();
    assert!(html.contains("Verified: "), "{html}");
    assert!(html.contains("acme.example — verified"));
    let api = app
        .ok_json(app.admin(M::GET, "/orgs/default/domains/acme.example"))
        .await;
    assert_eq!(api["status"], "verified");
    // Linked through the API, the page names the directory.
    let resp = app
        .admin(M::PUT, "/orgs/default/domains/acme.example/directory")
        .json(&json!({ "directoryId": dir.id }))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let html = get(app, path, Some(&session)).await.text().await.unwrap();
    assert!(
        html.contains(&format!("directories/{}\">Linked</a>", dir.id)),
        "{html}"
    );
}

#[tokio::test]
async fn groups_are_granted_and_revoked_products_with_refusals_beside_them() {
    let app = spawn_app().await;
    let dir = app.create_directory("Okta").await;
    let product = crate::sync::jira(&app).await;
    let scim_group = app.create_group(&dir, "Jira users", &[]).await;
    let scim_group = scim_group["id"].as_str().unwrap().to_owned();
    let org_group = app
        .ok_json_created(
            app.admin(M::POST, "/orgs/default/groups")
                .json(&json!({"name": "Everyone"})),
        )
        .await;
    let org_group = org_group["id"].as_str().unwrap().to_owned();
    let session = sign_in(&app).await;
    let html = get(&app, "/admin/orgs/default/sites", Some(&session))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("Acme — https://acme.atlassian.net"), "{html}");
    assert!(html.contains("<h3>jira-software</h3>"));
    assert!(html.contains("Jira users (Okta)"), "{html}");
    assert!(html.contains("Everyone (org group)"));
    assert!(html.contains("No group is granted this product."));
    let csrf = hidden_csrf(&html);
    let base = format!("/admin{}", product);
    let grant = [
        ("csrf", csrf.as_str()),
        ("group", scim_group.as_str()),
        ("role", "user"),
    ];
    let resp = post_form(&app, &format!("{base}/grants"), &session, &grant).await;
    assert_eq!(resp.status(), 303);
    let grants = app
        .ok_json(app.admin(M::GET, &format!("{product}/grants")))
        .await;
    assert_eq!(grants["grants"][0]["groupId"], scim_group.as_str());
    // The same grant again: refused, the reason beside the product.
    let resp = post_form(&app, &format!("{base}/grants"), &session, &grant).await;
    assert_eq!(resp.status(), 409);
    let html = resp.text().await.unwrap();
    assert!(html.contains("role=\"alert\""), "{html}");
    assert!(html.contains("<td>Jira users</td>"), "{html}");

    // A synced group cannot be a default group: the API's refusal, shown.
    let settings = format!("{base}/settings");
    let resp = post_form(
        &app,
        &settings,
        &session,
        &[
            ("csrf", &csrf),
            ("newUsersGetAccess", "true"),
            ("defaultGroup", &scim_group),
        ],
    )
    .await;
    assert_eq!(resp.status(), 409);
    assert!(resp.text().await.unwrap().contains("role=\"alert\""));
    let resp = post_form(
        &app,
        &settings,
        &session,
        &[
            ("csrf", &csrf),
            ("newUsersGetAccess", "true"),
            ("defaultGroup", &org_group),
        ],
    )
    .await;
    assert_eq!(resp.status(), 303);
    let view = app.ok_json(app.admin(M::GET, &product)).await;
    assert_eq!(view["defaultGroups"], json!([org_group]));
    assert_eq!(view["newUsersGetAccess"], true);

    let resp = post_form(
        &app,
        &format!("{base}/grants/{scim_group}/revoke"),
        &session,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(resp.status(), 303);
    let grants = app
        .ok_json(app.admin(M::GET, &format!("{product}/grants")))
        .await;
    assert_eq!(grants["grants"], json!([]));
    let resp = post_form(
        &app,
        &format!("{base}/grants/{scim_group}/revoke"),
        &session,
        &[("csrf", "forged")],
    )
    .await;
    assert_eq!(resp.status(), 403);
}

#[tokio::test]
async fn sync_settings_are_saved_through_the_api_rules_and_a_sync_previewed() {
    let app = spawn_app().await;
    let dir = app.create_directory("Settings").await;
    app.create_user(&dir, "ada@example.com").await;
    let group = app.create_group(&dir, "Scoped", &[]).await;
    let group = group["id"].as_str().unwrap().to_owned();
    let session = sign_in(&app).await;
    let path = format!("/admin/orgs/default/directories/{}", dir.id);
    let html = get(&app, &path, Some(&session)).await.text().await.unwrap();
    assert!(html.contains("Save and sync later"), "{html}");
    assert!(html.contains(&format!("value=\"{group}\"")));
    let csrf = hidden_csrf(&html);
    let settings = format!("{path}/sync-settings");
    let resp = post_form(
        &app,
        &settings,
        &session,
        &[
            ("csrf", csrf.as_str()),
            ("enabled", "true"),
            ("mode", "scheduled"),
            ("intervalMinutes", "5"),
            ("scope", "all"),
            ("domains", "all"),
        ],
    )
    .await;
    assert_eq!(resp.status(), 400);
    let html = resp.text().await.unwrap();
    assert!(html.contains("id=\"settings-error\""), "{html}");
    let resp = post_form(
        &app,
        &settings,
        &session,
        &[
            ("csrf", csrf.as_str()),
            ("enabled", "true"),
            ("mode", "scheduled"),
            ("intervalMinutes", "60"),
            ("scope", "groups"),
            ("group", group.as_str()),
            ("domains", "all"),
            ("groupUserLimit", "500"),
        ],
    )
    .await;
    assert_eq!(resp.status(), 303);
    let saved = app
        .ok_json(app.admin(
            M::GET,
            &format!("/orgs/default/directories/{}/sync-settings", dir.id),
        ))
        .await;
    assert_eq!(saved["mode"], "scheduled");
    assert_eq!(saved["intervalMinutes"], 60);
    assert_eq!(saved["scope"]["groupIds"], json!([group]));
    assert_eq!(saved["groupUserLimit"], 500);
    assert_eq!(saved["emailNewUsers"], false);
    let html = get(&app, &path, Some(&session)).await.text().await.unwrap();
    assert!(
        html.contains(&format!("value=\"{group}\" checked")),
        "{html}"
    );

    let resp = post_form(
        &app,
        &format!("{path}/sync/preview"),
        &session,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    assert!(html.contains("What a sync would do now"), "{html}");
    assert!(html.contains("accounts created"));
}

#[tokio::test]
async fn revoking_the_token_signed_in_with_ends_its_sessions() {
    let app = spawn_app().await;
    let token = scimd::auth::new_admin_token().await.unwrap();
    app.store
        .insert_admin_token(&token.id, &token.hash)
        .await
        .unwrap();
    let session = sign_in_with(&app, &token.secret).await;
    let page = get(&app, "/admin/orgs/default", Some(&session)).await;
    assert_eq!(page.status(), 200);
    assert!(!page.text().await.unwrap().contains(&token.secret));
    app.db()
        .execute(&format!(
            "DELETE FROM admin_tokens WHERE id = '{}'",
            token.id
        ))
        .await;
    let resp = get(&app, "/admin/orgs/default", Some(&session)).await;
    assert_eq!(resp.headers()["location"], "/admin/sign-in");
    assert_eq!(
        app.db()
            .count("SELECT count(*) FROM console_sessions")
            .await,
        0,
        "the session is gone"
    );
}

/// The text between `start` and the next `end` in `html`.
fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let at = html
        .find(start)
        .unwrap_or_else(|| panic!("no {start}: {html}"))
        + start.len();
    html[at..].split(end).next().unwrap()
}

#[tokio::test]
async fn a_directory_is_created_in_the_console_with_its_key_shown_once() {
    let app = spawn_app().await;
    let session = sign_in(&app).await;
    let html = get(&app, "/admin/orgs/default", Some(&session))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("<label for=\"directory-name\">"), "{html}");
    let csrf = hidden_csrf(&html);
    let create = "/admin/orgs/default/directories";
    let resp = post_form(&app, create, &session, &[("csrf", "x"), ("name", "Okta")]).await;
    assert_eq!(resp.status(), 403);

    // A refused name: the API's reason beside the field, nothing made.
    let resp = post_form(&app, create, &session, &[("csrf", &csrf), ("name", "  ")]).await;
    assert_eq!(resp.status(), 400);
    let html = resp.text().await.unwrap();
    assert!(html.contains("id=\"directory-name-error\""), "{html}");
    assert!(html.contains("name must be 1 to"), "{html}");
    let list = app
        .ok_json(app.admin(M::GET, "/orgs/default/directories"))
        .await;
    assert_eq!(list["directories"].as_array().unwrap().len(), 0);

    let resp = post_form(&app, create, &session, &[("csrf", &csrf), ("name", "Okta")]).await;
    assert_eq!(resp.status(), 201);
    let html = resp.text().await.unwrap();
    let key = between(&html, "<code id=\"new-key\">", "<").to_owned();
    assert!(key.starts_with("scimd_"), "{key}");
    assert!(html.contains("shown only this once"), "{html}");
    let list = app
        .ok_json(app.admin(M::GET, "/orgs/default/directories"))
        .await;
    let dir = &list["directories"][0];
    assert_eq!(dir["name"], "Okta");
    let base_url = dir["baseUrl"].as_str().unwrap();
    assert!(html.contains(base_url), "{html}");
    let resp = app
        .client
        .get(format!("{base_url}/Users"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // Never again: not on its page, not on the overview.
    let page = format!(
        "/admin/orgs/default/directories/{}",
        dir["id"].as_str().unwrap()
    );
    for path in [page.as_str(), "/admin/orgs/default"] {
        let html = get(&app, path, Some(&session)).await.text().await.unwrap();
        assert!(html.contains("Okta"), "{html}");
        assert!(!html.contains(&key), "{path} shows the key");
    }
}

#[tokio::test]
async fn counts_follow_users_and_groups_and_a_key_shows_its_last_use() {
    let app = spawn_app().await;
    let dir = app.create_directory("Counted").await;
    let path = format!("/orgs/default/directories/{}", dir.id);
    let got = app.ok_json(app.admin(M::GET, &path)).await;
    assert_eq!(got["keyLastUsedAt"], serde_json::Value::Null);
    let mut ids = Vec::new();
    for name in ["a@example.com", "b@example.com", "c@example.com"] {
        ids.push(
            app.create_user(&dir, name).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    app.create_group(&dir, "Team", &[&ids[0]]).await;
    let resp = app
        .scim(&dir, M::DELETE, &format!("/Users/{}", ids[2]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    // A failed write counts nothing.
    let resp = app
        .scim(&dir, M::POST, "/Users")
        .json(&crate::helpers::user_body("a@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    let got = app.ok_json(app.admin(M::GET, &path)).await;
    assert_eq!(
        (got["userCount"].as_i64(), got["groupCount"].as_i64()),
        (Some(2), Some(1))
    );
    let session = sign_in(&app).await;
    let html = get(&app, "/admin/orgs/default", Some(&session))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("<td class=\"num\">2</td><td class=\"num\">1</td>"),
        "{html}"
    );

    // The key was used: its last use is recorded (off the request path).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let used = loop {
        let got = app.ok_json(app.admin(M::GET, &path)).await;
        if let Some(at) = got["keyLastUsedAt"].as_str() {
            break at.to_owned();
        }
        assert!(std::time::Instant::now() < deadline, "no last use: {got}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(
        used.as_str() >= got["keyCreatedAt"].as_str().unwrap(),
        "{used}"
    );
    let html = get(&app, &format!("/admin{path}"), Some(&session))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(&format!("<dt>Key last used</dt><dd>{}", &used[..19])),
        "{html}"
    );
    // A new key has not been used yet.
    let rotated = app
        .ok_json(app.admin(M::POST, &format!("{path}/api-key")))
        .await;
    assert_eq!(rotated["keyLastUsedAt"], serde_json::Value::Null);

    // Deleting the directory leaves no counts behind.
    let resp = app.admin(M::DELETE, &path).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(
        app.db()
            .count("SELECT COUNT(*) FROM directory_counts")
            .await,
        0
    );
}

#[tokio::test]
async fn groups_are_browsed_and_the_sync_status_comes_alone_for_the_script() {
    let app = spawn_app().await;
    let dir = app.create_directory("Browse").await;
    for name in ["Alpha", "Alps", "Beta"] {
        app.create_group(&dir, name, &[]).await;
    }
    let session = sign_in(&app).await;
    let path = format!("/admin/orgs/default/directories/{}", dir.id);
    let html = get(&app, &format!("{path}?gq=Al"), Some(&session))
        .await
        .text()
        .await
        .unwrap();
    let groups = between(&html, "id=\"groups\"", "</table>");
    assert!(
        groups.contains("<td>Alpha</td>") && groups.contains("<td>Alps</td>"),
        "{groups}"
    );
    assert!(!groups.contains("<td>Beta</td>"), "{groups}");
    assert!(html.contains("<label for=\"gq\">"), "{html}");

    let resp = get(&app, &format!("{path}/sync/status"), Some(&session)).await;
    assert_eq!(resp.status(), 200);
    let fragment = resp.text().await.unwrap();
    assert!(fragment.starts_with("<div id=\"sync-live\""), "{fragment}");
    assert!(!fragment.contains("<html"), "{fragment}");
    // Signed out, the script is sent to sign in (and stops polling).
    let resp = get(&app, &format!("{path}/sync/status"), None).await;
    assert_eq!(resp.headers()["location"], "/admin/sign-in");
    let js = get(&app, "/admin/assets/console.js", None)
        .await
        .text()
        .await
        .unwrap();
    assert!(js.contains("data-poll"), "{js}");
}

#[tokio::test]
async fn the_console_spends_the_admin_tokens_request_rate() {
    let app = crate::helpers::spawn_app_with(|c| {
        c.admin_rate_limit_per_second = 1;
        c.admin_rate_limit_burst = 3;
    })
    .await;
    let session = sign_in(&app).await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let resp = get(&app, "/admin/orgs/default", Some(&session)).await;
        if resp.status() == 429 {
            assert!(resp.headers().contains_key("retry-after"));
            let html = resp.text().await.unwrap();
            assert!(html.contains("Too many requests"), "{html}");
            statuses.push(429);
            break;
        }
        statuses.push(resp.status().as_u16());
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
}

#[tokio::test]
async fn sites_and_products_are_added_with_refusals_beside_their_forms() {
    let app = spawn_app().await;
    let session = sign_in(&app).await;
    let page = "/admin/orgs/default/sites";
    let html = get(&app, page, Some(&session)).await.text().await.unwrap();
    assert!(html.contains("<label for=\"site-name\">"), "{html}");
    let csrf = hidden_csrf(&html);
    let resp = post_form(&app, page, &session, &[("csrf", "x"), ("name", "Acme")]).await;
    assert_eq!(resp.status(), 403);
    let site = |url: &'static str| vec![("csrf", csrf.as_str()), ("name", "Acme"), ("url", url)];
    let resp = post_form(&app, page, &session, &site("ftp://acme")).await;
    assert_eq!(resp.status(), 400);
    let html = resp.text().await.unwrap();
    assert!(html.contains("id=\"site-error\""), "{html}");
    let form = site("https://acme.atlassian.net");
    let resp = post_form(&app, page, &session, &form).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], page);
    // The same site again: the API's conflict, beside the form.
    let resp = post_form(&app, page, &session, &form).await;
    assert_eq!(resp.status(), 409);
    assert!(resp.text().await.unwrap().contains("id=\"site-error\""));
    let sites = app.ok_json(app.admin(M::GET, "/orgs/default/sites")).await;
    assert_eq!(sites["sites"].as_array().unwrap().len(), 1);
    let id = sites["sites"][0]["id"].as_str().unwrap();

    let products = format!("{page}/{id}/products");
    let resp = post_form(
        &app,
        &products,
        &session,
        &[("csrf", &csrf), ("key", "Jira!")],
    )
    .await;
    assert_eq!(resp.status(), 400);
    let html = resp.text().await.unwrap();
    assert!(
        html.contains(&format!("id=\"product-{id}-error\"")),
        "{html}"
    );
    assert!(html.contains("a product key is"), "{html}");
    let resp = post_form(
        &app,
        &products,
        &session,
        &[("csrf", &csrf), ("key", "jira-software")],
    )
    .await;
    assert_eq!(resp.status(), 303);
    let html = get(&app, page, Some(&session)).await.text().await.unwrap();
    assert!(html.contains("<h3>jira-software</h3>"), "{html}");
    let listed = app
        .ok_json(app.admin(M::GET, &format!("/orgs/default/sites/{id}/products")))
        .await;
    assert_eq!(listed["products"][0]["key"], "jira-software");
    // A site that is not there.
    let resp = post_form(
        &app,
        &format!("{page}/{}/products", uuid_nil()),
        &session,
        &[("csrf", &csrf), ("key", "confluence")],
    )
    .await;
    assert_eq!(resp.status(), 404);
}

fn uuid_nil() -> &'static str {
    "00000000-0000-0000-0000-000000000000"
}

#[tokio::test]
async fn a_webhook_is_added_with_its_secret_shown_once_and_a_refused_url_beside_the_form() {
    // Refused: the receiver would be on this machine.
    let app = spawn_app().await;
    let session = sign_in(&app).await;
    let page = "/admin/orgs/default/webhooks";
    let html = get(&app, page, Some(&session)).await.text().await.unwrap();
    assert!(html.contains("<label for=\"webhook-url\">"), "{html}");
    let csrf = hidden_csrf(&html);
    let resp = post_form(
        &app,
        page,
        &session,
        &[("csrf", "x"), ("url", "https://a.example")],
    )
    .await;
    assert_eq!(resp.status(), 403);
    let resp = post_form(
        &app,
        page,
        &session,
        &[("csrf", &csrf), ("url", "http://127.0.0.1:9/hook")],
    )
    .await;
    assert_eq!(resp.status(), 400);
    let html = resp.text().await.unwrap();
    assert!(html.contains("id=\"webhook-error\""), "{html}");
    let resp = post_form(
        &app,
        page,
        &session,
        &[
            ("csrf", &csrf),
            ("url", "https://hooks.example.com/x"),
            ("types", "not a type!"),
        ],
    )
    .await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("id=\"webhook-error\""));
    let listed = app
        .ok_json(app.admin(M::GET, "/orgs/default/webhooks"))
        .await;
    assert!(listed["webhooks"].as_array().unwrap().is_empty());

    // Allowed with --webhook-allow-private: made, its secret shown once.
    let app = crate::helpers::spawn_app_with(|c| c.webhooks.webhook_allow_private = true).await;
    let session = sign_in(&app).await;
    let html = get(&app, page, Some(&session)).await.text().await.unwrap();
    let csrf = hidden_csrf(&html);
    let resp = post_form(
        &app,
        page,
        &session,
        &[
            ("csrf", &csrf),
            ("url", "http://127.0.0.1:9/hook"),
            ("types", "user.*, access.granted"),
            ("description", "audit sink"),
        ],
    )
    .await;
    assert_eq!(resp.status(), 201);
    let html = resp.text().await.unwrap();
    let secret = between(&html, "<code id=\"webhook-secret\">", "<").to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let listed = app
        .ok_json(app.admin(M::GET, "/orgs/default/webhooks"))
        .await;
    let hook = &listed["webhooks"][0];
    assert_eq!(hook["url"], "http://127.0.0.1:9/hook");
    assert_eq!(
        hook["types"],
        serde_json::json!(["user.*", "access.granted"])
    );
    assert_eq!(hook["description"], "audit sink");
    let id = hook["id"].as_str().unwrap();
    for path in [page.to_owned(), format!("{page}/{id}")] {
        let html = get(&app, &path, Some(&session)).await.text().await.unwrap();
        assert!(html.contains("http://127.0.0.1:9/hook"), "{html}");
        assert!(!html.contains(&secret), "{path} shows the secret again");
    }
}
