//! The admin console in a real headless Chromium, driven over WebDriver:
//! sign in, create a directory and read its key once, regenerate it and
//! see the old key refused by the SCIM endpoint, verify a domain against
//! the tests' own DNS server, grant a group a product, run a sync and see
//! its status change, filter the provisioning report and download its CSV.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs
//! them). Without them these tests say so and pass, unless
//! `SCIMD_BROWSER_TESTS=require`, which `.ci/run` sets. With
//! `UPDATE_SCREENSHOTS=1` they also write the screenshots of
//! `docs/console.md` into `docs/console/`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::domains::{world, Zone};
use crate::helpers::{TestApp, ADMIN_TOKEN};

/// A headless Chromium behind its own chromedriver, both ended on drop.
struct Browser {
    client: Client,
    driver: Child,
    downloads: tempfile::TempDir,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver leads its own process group, Chromium included.
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.wait();
    }
}

fn program(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

/// Starts Chromium, or None (the test then passes, saying why) when it is
/// not installed and not required.
async fn browser() -> Option<Browser> {
    let driver = program("CHROMEDRIVER", "/usr/bin/chromedriver");
    let chromium = program("CHROMIUM", "/usr/bin/chromium");
    if !driver.exists() || !chromium.exists() {
        let required = std::env::var("SCIMD_BROWSER_TESTS").is_ok_and(|v| v == "require");
        assert!(
            !required,
            "SCIMD_BROWSER_TESTS=require, but {} or {} is missing",
            driver.display(),
            chromium.display()
        );
        eprintln!(
            "browser test skipped: {} or {} is missing (apt-get install chromium chromium-driver)",
            driver.display(),
            chromium.display()
        );
        return None;
    }
    let profile = tempfile::tempdir().unwrap();
    let downloads = tempfile::tempdir().unwrap();
    let capabilities = json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-breakpad",
                "--window-size=1280,1000",
                format!("--user-data-dir={}", profile.path().display()),
            ],
            "prefs": {
                "download.default_directory": downloads.path(),
                "download.prompt_for_download": false,
            },
        }
    });
    let capabilities = match capabilities {
        Value::Object(map) => map,
        _ => unreachable!(),
    };
    // A port of its own: retried on another if a parallel test took it.
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = Command::new(&driver);
        command
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command.spawn().unwrap();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            let connected =
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(capabilities.clone())
                    .connect(&format!("http://127.0.0.1:{port}"))
                    .await;
            match connected {
                Ok(client) => {
                    return Some(Browser {
                        client,
                        driver: child,
                        downloads,
                        _profile: profile,
                    })
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("chromedriver did not start");
}

impl Browser {
    async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    async fn css(&self, selector: &str) -> Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(selector))
            .await
            .unwrap_or_else(|e| panic!("no {selector}: {e}"))
    }

    /// The button (or link) whose text is `text`.
    async fn labelled(&self, text: &str) -> Element {
        let xpath =
            format!("//button[normalize-space()='{text}'] | //a[normalize-space()='{text}']");
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("no button or link {text:?}: {e}"))
    }

    async fn click(&self, text: &str) {
        self.labelled(text).await.click().await.unwrap();
    }

    async fn fill(&self, selector: &str, value: &str) {
        let field = self.css(selector).await;
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    /// The text of `selector`, found again if the page's script replaced
    /// it (live status) between finding and reading.
    async fn text(&self, selector: &str) -> String {
        let mut last = None;
        for _ in 0..20 {
            match self.css(selector).await.text().await {
                Ok(text) => return text,
                // Stale, or "does not belong to the document": replaced.
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{selector} kept being replaced: {last:?}");
    }

    async fn body(&self) -> String {
        self.text("body").await
    }

    /// Waits until the page's text contains `wanted`.
    async fn until_text(&self, wanted: &str) {
        let started = Instant::now();
        loop {
            let body = self.body().await;
            if body.contains(wanted) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "the page never said {wanted:?}; it says:\n{body}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Saves the page as `docs/console/<name>.png` when asked to.
    async fn screenshot(&self, name: &str) {
        if std::env::var_os("UPDATE_SCREENSHOTS").is_none() {
            return;
        }
        let png = self.client.screenshot().await.unwrap();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/console");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// The file Chromium downloaded into its download folder, once whole.
    async fn downloaded(&self) -> (String, String) {
        let started = Instant::now();
        loop {
            let done: Vec<PathBuf> = std::fs::read_dir(self.downloads.path())
                .unwrap()
                .map(|e| e.unwrap().path())
                // Chromium writes into a hidden or `.crdownload` file, then
                // renames it: a file by its final name is whole.
                .filter(|p| {
                    let name = p.file_name().unwrap().to_string_lossy();
                    !name.starts_with('.') && !name.ends_with(".crdownload")
                })
                .collect();
            if let [file] = done.as_slice() {
                let name = file.file_name().unwrap().to_string_lossy().into_owned();
                return (name, std::fs::read_to_string(file).unwrap());
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "nothing was downloaded: {done:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn scim_status(app: &TestApp, base_url: &str, key: &str) -> u16 {
    app.client
        .get(format!("{base_url}/Users"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Signs in through the form and lands on the default organisation.
async fn sign_in(b: &Browser, app: &TestApp) {
    b.goto(&format!("{}/admin/", app.address)).await;
    b.css("#token").await;
    assert!(b.client.current_url().await.unwrap().path() == "/admin/sign-in");
    b.screenshot("sign-in").await;
    b.fill("#token", ADMIN_TOKEN).await;
    b.click("Sign in").await;
    b.css("#directory-name").await;
}

#[tokio::test]
async fn a_directory_is_created_its_key_read_once_and_regenerated_in_a_browser() {
    let w = world().await;
    let app = &w.app;
    let Some(b) = browser().await else { return };
    sign_in(&b, app).await;

    // From the keyboard: the first Tab reaches the skip link, shown with a
    // visible focus outline; Enter follows it to the page's content.
    b.css("body").await.send_keys("\u{e004}").await.unwrap();
    let focused = b.client.active_element().await.unwrap();
    assert_eq!(focused.text().await.unwrap(), "Skip to content");
    let outline = focused.css_value("outline-style").await.unwrap();
    assert_eq!(outline, "solid", "focus must be visible");
    focused.send_keys("\u{e007}").await.unwrap();
    assert_eq!(
        b.client.current_url().await.unwrap().fragment(),
        Some("main")
    );

    // Create a directory: its key is shown this once.
    b.fill("#directory-name", "Okta").await;
    b.click("Create directory").await;
    let first_key = b.text("#new-key").await;
    assert!(first_key.starts_with("scimd_"), "{first_key}");
    let base_url = b.text("dl dd code").await;
    assert!(base_url.starts_with(&app.address), "{base_url}");
    assert_eq!(scim_status(app, &base_url, &first_key).await, 200);
    let directory_page = b.client.current_url().await.unwrap();
    let directory_path = {
        let id = base_url.rsplit('/').next().unwrap();
        format!("{}/admin/orgs/default/directories/{id}", app.address)
    };
    assert!(directory_page.path().ends_with("/directories"));
    b.goto(&directory_path).await;
    b.css("h1").await;
    assert!(
        b.client.find(Locator::Css("#new-key")).await.is_err(),
        "the key is shown again"
    );
    assert!(!b.body().await.contains(&first_key));

    // Regenerate: a new key, once; the old one is refused at once.
    b.click("Regenerate key").await;
    let second_key = b.text("#new-key").await;
    assert_ne!(second_key, first_key);
    assert_eq!(scim_status(app, &base_url, &first_key).await, 401);
    assert_eq!(scim_status(app, &base_url, &second_key).await, 200);
    // Its use shows as the key's last use.
    b.goto(&directory_path).await;
    let last_used = b
        .text("dl")
        .await
        .lines()
        .skip_while(|l| *l != "Key last used")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    assert_ne!(last_used, "never");
    assert!(last_used.starts_with("20"), "{last_used}");
    b.screenshot("directory").await;
    b.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn a_domain_is_verified_a_group_granted_a_sync_run_and_the_report_downloaded_in_a_browser() {
    let w = world().await;
    let app = &w.app;
    let dir = app.create_directory("Entra").await;
    let domain = "browser-acme.com";
    app.create_user(&dir, &format!("ada@{domain}")).await;
    let ada = app
        .get_json(&dir, &format!("/Users?filter=userName eq \"ada@{domain}\""))
        .await["Resources"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.create_group(&dir, "Engineering", &[&ada]).await;
    let Some(b) = browser().await else { return };
    sign_in(&b, app).await;

    // A domain, verified by the DNS record the page asks for.
    b.goto(&format!("{}/admin/orgs/default/domains", app.address))
        .await;
    b.fill("#name", domain).await;
    b.click("Add domain").await;
    b.until_text("To verify it").await;
    let record = b
        .text("section dl:nth-of-type(2) dd:nth-of-type(2) code")
        .await;
    assert!(record.contains('='), "{record}");
    w.zone(
        domain,
        Zone {
            txt: vec![record],
            a: false,
            silent: false,
        },
    );
    b.click("Verify now").await;
    b.until_text("Verified: ").await;
    b.screenshot("domains").await;

    // A site and its product, then the group granted the product.
    b.goto(&format!("{}/admin/orgs/default/sites", app.address))
        .await;
    b.fill("#site-name", "Acme").await;
    b.fill("#site-url", "https://acme.atlassian.net").await;
    b.click("Add site").await;
    b.fill("input[name=key]", "jira-software").await;
    b.click("Add product").await;
    b.until_text("No group is granted this product.").await;
    let select = b.css("select[name=group]").await;
    let option = select
        .find(Locator::XPath(
            "option[starts-with(normalize-space(), 'Engineering')]",
        ))
        .await
        .unwrap();
    option.click().await.unwrap();
    b.click("Grant").await;
    b.until_text("Revoke").await;
    let grants = b.text("table").await;
    assert!(grants.contains("Engineering"), "{grants}");
    b.screenshot("sites").await;

    // A sync: started, then seen ending without reloading the page.
    b.goto(&format!(
        "{}/admin/orgs/default/directories/{}",
        app.address, dir.id
    ))
    .await;
    b.until_text("No sync is running.").await;
    b.click("Sync now").await;
    let started = Instant::now();
    loop {
        let live = b.text("#sync-live").await;
        if live.contains("No sync is running.") && live.contains("succeeded") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the run never showed as ended: {live}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    b.screenshot("sync").await;

    // The report, filtered, and its CSV downloaded.
    b.goto(&format!("{}/admin/orgs/default/report", app.address))
        .await;
    b.fill("#user", &format!("ada@{domain}")).await;
    b.css("#outcome option[value=success]")
        .await
        .click()
        .await
        .unwrap();
    b.click("Filter").await;
    b.until_text("user.created").await;
    let url = b.client.current_url().await.unwrap();
    assert!(url.query().unwrap_or_default().contains("outcome=success"));
    b.screenshot("report").await;
    b.click("Download CSV").await;
    let (name, csv) = b.downloaded().await;
    assert!(name.ends_with(".csv"), "{name}");
    let mut lines = csv.lines();
    let header = lines.next().unwrap();
    assert!(header.contains("action"), "{header}");
    let rows: Vec<&str> = lines.collect();
    assert!(!rows.is_empty());
    assert!(
        rows.iter().all(|r| r.contains(&format!("ada@{domain}"))),
        "{csv}"
    );
    assert!(rows.iter().any(|r| r.contains("user.created")), "{csv}");

    b.goto(&format!("{}/admin/orgs/default", app.address)).await;
    b.css("svg").await;
    b.screenshot("overview").await;
    b.client.clone().close().await.unwrap();
}
