//! `scim-bench`: a load generator for a running scimd (or any SCIM server on
//! loopback). Keep-alive connections, a fixed concurrency, and every phase
//! bounded in requests and in time.
//!
//! ```sh
//! # against an existing directory
//! scim-bench --base-url http://127.0.0.1:8080/scim/directory/<id> --key <api key>
//! # or let it create a fresh directory through the admin API
//! scim-bench --server http://127.0.0.1:8080 --admin-token <admin token>
//! # the sync engine's phases over a directory loaded with `scimd seed`
//! scim-bench --base-url http://127.0.0.1:8080/scim/directory/<id> --key <api key> \
//!   --admin-token <admin token> --server-pid <pid> --phases sync-run,sync-deactivate
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use reqwest::{Client, Method, Url};
use serde_json::{json, Value};

#[derive(Parser, Clone)]
#[command(
    name = "scim-bench",
    about = "Load generator for a SCIM server on loopback"
)]
struct Args {
    /// SCIM base URL (e.g. http://127.0.0.1:8080/scim/directory/<id>).
    #[arg(long, requires = "key", conflicts_with = "server")]
    base_url: Option<String>,
    /// Bearer API key of the directory.
    #[arg(long, env = "SCIM_BENCH_KEY")]
    key: Option<String>,
    /// A scimd server to create a fresh directory on (with --admin-token).
    #[arg(long, requires = "admin_token")]
    server: Option<String>,
    /// Admin token for --server.
    #[arg(long, env = "SCIMD_ADMIN_TOKEN")]
    admin_token: Option<String>,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Users to create (and then read) in the user phases.
    #[arg(long, default_value_t = 2000)]
    users: usize,
    /// Requests per read phase.
    #[arg(long, default_value_t = 20000)]
    requests: usize,
    /// Upper bound on each phase's duration, in seconds.
    #[arg(long, default_value_t = 30)]
    max_seconds: u64,
    /// Comma-separated phases, run in order: baseline, create, get, filter,
    /// patch, put, list, members (add all users to a group in chunks of
    /// 1,000), remove (remove them again), members-one (add all in one
    /// request), delete (delete every created user), mixed (--requests
    /// over the created users: 5 in 10 by id, 4 in 10 by userName eq, 1 in
    /// 10 a PATCH). With --seeded: seeded-filter, deep-page (startIndex at
    /// 90% of the directory), cursor-first (the first cursor page),
    /// cursor-walk (follow nextCursor, one page after another, to 90% of
    /// the directory), cursor-deep (the page cursor-walk reached, again
    /// and again). The sync engine's, through the admin API (with
    /// --admin-token): sync-run (a whole run, timed from its start to
    /// its end, with the server's peak RSS given --server-pid),
    /// sync-deactivate (--samples users of granted groups deactivated one
    /// at a time, each timed until its account has no access, then
    /// reactivated), sync-group-patch (every created user added in one
    /// PATCH to a new group granted the first product found; timed until
    /// sampled users' accounts have access). A phase may repeat; each is
    /// set against the last baseline before it. Webhooks (with
    /// --admin-token; the server runs with --webhook-allow-private):
    /// webhook-on (a receiver on 127.0.0.1 and a webhook subscribed to
    /// every event), webhook-off (waits until the webhook has every event,
    /// then deletes it), webhook-lag (--users creations paced at --rate
    /// per second with the webhook on; the figures are the delay from each
    /// user.created event's occurredAt to its arrival at the receiver).
    /// The admin console (with --admin-token): console-overview (signs in,
    /// then loads the organisation's overview page --requests times, one
    /// at a time, each read whole).
    #[arg(
        long,
        default_value = "baseline,create,get,filter,patch,put,list,members,remove,members-one,delete"
    )]
    phases: String,
    /// Users already loaded with `scimd seed` (seed-<n>@example.com), for
    /// the seeded-filter and deep-page phases.
    #[arg(long, default_value_t = 0)]
    seeded: u64,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
    /// The server's process id (Linux): each phase then also reports the
    /// server's CPU time per request, which a loaded or slower machine
    /// changes far less than requests/s.
    #[arg(long)]
    server_pid: Option<u32>,
    /// The organisation of the directory, for the sync phases (an id, or
    /// `default`).
    #[arg(long, default_value = "default")]
    org: String,
    /// The directory the sync phases run, when --base-url does not name
    /// it (`…/scim/directory/<id>`).
    #[arg(long)]
    directory: Option<String>,
    /// Users the sync-deactivate phase deactivates, one at a time.
    #[arg(long, default_value_t = 100)]
    samples: usize,
    /// User creations per second the webhook-lag phase paces (--users of
    /// them).
    #[arg(long, default_value_t = 1000)]
    rate: u32,
}

#[derive(Debug, Clone, serde::Serialize)]
struct PhaseResult {
    phase: String,
    requests: usize,
    errors: usize,
    seconds: f64,
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// Throughput as a fraction of the `/healthz` baseline measured last
    /// before the phase, when one was.
    of_baseline: Option<f64>,
    /// Server CPU time (user + system) per request, with `--server-pid`.
    server_cpu_us_per_request: Option<f64>,
    /// The server's peak resident memory during the phase, in MB (sync-run
    /// with `--server-pid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    server_peak_rss_mb: Option<f64>,
    /// What else the phase found (a run's counts, a PATCH's latency).
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<Value>,
}

/// Each phase as a fraction of the `/healthz` ceiling measured last before
/// it (phases before any baseline: the first one). On a shared machine the
/// ceiling drifts from minute to minute, so `--phases
/// baseline,get,baseline,filter` sets each phase against its own.
fn fractions_of_baseline(results: &mut [PhaseResult]) {
    let mut ceiling = results
        .iter()
        .find(|r| r.phase == "baseline")
        .map(|r| r.requests_per_second);
    for r in results.iter_mut() {
        if r.phase == "baseline" {
            ceiling = Some(r.requests_per_second);
        }
        r.of_baseline = ceiling.map(|c| r.requests_per_second / c);
    }
}

/// CPU time (user + system) a process has used, from `/proc/<pid>/stat`.
fn process_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // The kernel reports in USER_HZ, 100 on every Linux this runs on.
    Some(Duration::from_millis(ticks * 10))
}

/// One request of a phase: method, URL, optional JSON body, expected status.
struct Req {
    method: Method,
    url: String,
    body: Option<Value>,
    expect: u16,
}

async fn run_phase<F>(
    name: &str,
    client: &Client,
    key: &str,
    concurrency: usize,
    total: usize,
    max: Duration,
    make: F,
) -> (PhaseResult, Vec<Value>)
where
    F: Fn(usize) -> Req + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + max;
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, key, make, next) =
            (client.clone(), key.to_owned(), make.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            let mut bodies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total || Instant::now() >= deadline {
                    break;
                }
                let req = make(i);
                let mut builder = client.request(req.method, &req.url).bearer_auth(&key);
                if let Some(body) = &req.body {
                    builder = builder
                        .header("content-type", "application/scim+json")
                        .body(body.to_string());
                }
                let t = Instant::now();
                match builder.send().await {
                    Ok(resp) => {
                        let ok = resp.status().as_u16() == req.expect;
                        let body = resp.bytes().await;
                        latencies.push(t.elapsed());
                        match (ok, body) {
                            (true, Ok(bytes)) => {
                                if req.expect == 201 {
                                    if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
                                        bodies.push(v);
                                    }
                                }
                            }
                            _ => errors += 1,
                        }
                    }
                    Err(_) => {
                        latencies.push(t.elapsed());
                        errors += 1;
                    }
                }
            }
            (latencies, errors, bodies)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut bodies = Vec::new();
    for w in workers {
        if let Ok((l, e, b)) = w.await {
            latencies.extend(l);
            errors += e;
            bodies.extend(b);
        }
    }
    let result = summarise(name, latencies, errors, started.elapsed().as_secs_f64());
    (result, bodies)
}

/// A phase's figures from its requests' latencies.
fn summarise(name: &str, mut latencies: Vec<Duration>, errors: usize, seconds: f64) -> PhaseResult {
    latencies.sort();
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let idx = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies[idx.min(latencies.len() - 1)].as_secs_f64() * 1000.0
    };
    PhaseResult {
        phase: name.to_owned(),
        requests: latencies.len(),
        errors,
        seconds,
        requests_per_second: latencies.len() as f64 / seconds.max(1e-9),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        max_ms: latencies
            .last()
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0),
        of_baseline: None,
        server_cpu_us_per_request: None,
        server_peak_rss_mb: None,
        detail: None,
    }
}

/// Follows `nextCursor` from the first page of `GET /Users?count=100` for
/// `pages` pages, one request at a time (each needs the one before), and
/// returns the figures of those requests and the last `nextCursor`.
async fn walk_cursor(
    name: &str,
    client: &Client,
    key: &str,
    base: &str,
    pages: u64,
) -> Result<(PhaseResult, String), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(pages as usize);
    let mut cursor = String::new();
    for page in 0..pages {
        let t = Instant::now();
        let resp = client
            .get(format!("{base}/Users?count=100&cursor={cursor}"))
            .bearer_auth(key)
            .send()
            .await?;
        if resp.status() != 200 {
            return Err(format!("cursor page {page}: status {}", resp.status()).into());
        }
        let body: Value = resp.json().await?;
        latencies.push(t.elapsed());
        cursor = body["nextCursor"]
            .as_str()
            .ok_or_else(|| format!("cursor page {page} has no nextCursor"))?
            .to_owned();
    }
    let result = summarise(name, latencies, 0, started.elapsed().as_secs_f64());
    Ok((result, cursor))
}

/// Creates the empty group the member phases fill.
async fn create_group(
    client: &Client,
    base: &str,
    key: &str,
    run_id: u32,
) -> Result<String, Box<dyn std::error::Error>> {
    let resp = client
        .post(format!("{base}/Groups"))
        .bearer_auth(key)
        .json(&json!({ "displayName": format!("scim-bench {run_id}") }))
        .send()
        .await?;
    if resp.status().as_u16() != 201 {
        return Err(format!("creating a group failed: HTTP {}", resp.status()).into());
    }
    let body: Value = resp.json().await?;
    body["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "group without id".into())
}

/// Creates a directory named after this run, with the highest request rate
/// the server allows (the default limit would measure the limit, not the
/// server); returns its base URL and key.
async fn create_directory(
    server: &str,
    token: &str,
) -> Result<(String, String), Box<dyn std::error::Error>> {
    let server = server.trim_end_matches('/');
    ensure_loopback(&Url::parse(server)?)?;
    let resp = Client::new()
        .post(format!("{server}/admin/v1/orgs/default/directories"))
        .bearer_auth(token)
        .json(&json!({ "name": format!("scim-bench {}", std::process::id()) }))
        .send()
        .await?;
    if resp.status().as_u16() != 201 {
        return Err(format!("creating a directory failed: HTTP {}", resp.status()).into());
    }
    let body: Value = resp.json().await?;
    let id = body["id"].as_str().unwrap_or_default();
    let raised = Client::new()
        .patch(format!("{server}/admin/v1/orgs/default/directories/{id}"))
        .bearer_auth(token)
        .json(&json!({ "rateLimit": { "perSecond": 1_000_000, "burst": 1_000_000 } }))
        .send()
        .await?;
    if !raised.status().is_success() {
        // A server from before rate limits has none to raise.
        eprintln!(
            "note: the directory's rate limit was not raised (HTTP {})",
            raised.status()
        );
    }
    match (body["baseUrl"].as_str(), body["apiKey"].as_str()) {
        (Some(b), Some(k)) => Ok((b.to_owned(), k.to_owned())),
        _ => Err("unexpected admin API response".into()),
    }
}

fn ensure_loopback(url: &Url) -> Result<(), String> {
    match url.host_str() {
        Some("127.0.0.1") | Some("localhost") | Some("[::1]") | Some("::1") => Ok(()),
        other => Err(format!(
            "refusing to load a non-loopback host ({other:?}): scim-bench targets 127.0.0.1 only"
        )),
    }
}

/// The admin API of one directory, for the sync engine's phases.
struct SyncTarget {
    client: Client,
    token: String,
    /// `…/admin/v1/orgs/{org}`.
    org: String,
    /// `…/admin/v1/orgs/{org}/directories/{directory}`.
    directory: String,
    directory_id: String,
}

/// The directory a SCIM base URL names (`…/scim/directory/<id>`).
fn directory_of(base: &str) -> Option<String> {
    let (_, id) = base.trim_end_matches('/').rsplit_once("/scim/directory/")?;
    (!id.is_empty() && !id.contains('/')).then(|| id.to_owned())
}

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

impl SyncTarget {
    async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> BenchResult<(u16, Value)> {
        let mut req = self.client.request(method, url).bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok((status, body))
    }

    /// `GET`, which must answer 200.
    async fn get(&self, url: &str) -> BenchResult<Value> {
        match self.send(Method::GET, url, None).await? {
            (200, body) => Ok(body),
            (status, body) => Err(format!("GET {url}: HTTP {status} {body}").into()),
        }
    }

    /// How many grants give the account access now.
    async fn access_count(&self, account: &str) -> BenchResult<usize> {
        let body = self
            .get(&format!("{}/accounts/{account}/access", self.org))
            .await?;
        Ok(body["access"].as_array().map_or(0, Vec::len))
    }

    /// Polls the account's access every millisecond until `done` says so
    /// of its grant count; how long that took from `since`, or `None` when
    /// `max` passed first.
    async fn wait_for_access(
        &self,
        account: &str,
        since: Instant,
        max: Duration,
        done: impl Fn(usize) -> bool,
    ) -> BenchResult<Option<Duration>> {
        loop {
            if done(self.access_count(account).await?) {
                return Ok(Some(since.elapsed()));
            }
            if since.elapsed() > max {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// The SCIM groups of this directory that grants name, with the
    /// `(siteId, product)` of the first grant found.
    async fn granted_groups(&self) -> BenchResult<(Vec<String>, Option<(String, String)>)> {
        let mut groups: Vec<String> = Vec::new();
        let mut first = None;
        let sites = self.get(&format!("{}/sites", self.org)).await?;
        for site in sites["sites"].as_array().into_iter().flatten() {
            let site = site["id"].as_str().unwrap_or_default();
            let url = format!("{}/sites/{site}/products", self.org);
            let products = self.get(&url).await?;
            for product in products["products"].as_array().into_iter().flatten() {
                let key = product["key"].as_str().unwrap_or_default();
                let grants = self.get(&format!("{url}/{key}/grants")).await?;
                for grant in grants["grants"].as_array().into_iter().flatten() {
                    if grant["directoryId"].as_str() != Some(&self.directory_id) {
                        continue;
                    }
                    if let Some(id) = grant["groupId"].as_str() {
                        first.get_or_insert_with(|| (site.to_owned(), key.to_owned()));
                        if !groups.iter().any(|g| g == id) {
                            groups.push(id.to_owned());
                        }
                    }
                }
            }
        }
        Ok((groups, first))
    }
}

/// The `(user, account)` of up to `wanted` distinct users of the granted
/// `groups`, taken from the groups in turn so that every group gives some.
async fn sample_granted_users(
    client: &Client,
    base: &str,
    key: &str,
    groups: &[String],
    wanted: usize,
) -> BenchResult<Vec<(String, String)>> {
    let mut members: Vec<Vec<String>> = Vec::new();
    let mut total = 0;
    for group in groups {
        if total >= wanted {
            break;
        }
        let resp = client
            .get(format!("{base}/Groups/{group}?attributes=members"))
            .bearer_auth(key)
            .send()
            .await?;
        if resp.status() != 200 {
            return Err(format!("GET /Groups/{group}: HTTP {}", resp.status()).into());
        }
        let body: Value = resp.json().await?;
        let users: Vec<String> = body["members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m["type"].as_str() != Some("Group"))
            .filter_map(|m| m["value"].as_str().map(str::to_owned))
            .collect();
        total += users.len();
        members.push(users);
    }
    let mut chosen: Vec<String> = Vec::new();
    let mut round = 0;
    while chosen.len() < wanted && members.iter().any(|m| round < m.len()) {
        for m in &members {
            if let Some(user) = m.get(round) {
                if chosen.len() < wanted && !chosen.contains(user) {
                    chosen.push(user.clone());
                }
            }
        }
        round += 1;
    }
    let mut sampled = Vec::with_capacity(chosen.len());
    for user in chosen {
        let resp = client
            .get(format!("{base}/Users/{user}"))
            .bearer_auth(key)
            .send()
            .await?;
        let body: Value = resp.json().await?;
        match account_of(&body) {
            Some(account) => sampled.push((user, account)),
            None => return Err(format!("user {user} names no atlassianAccountId").into()),
        }
    }
    Ok(sampled)
}

/// The account a SCIM user's document names.
fn account_of(user: &Value) -> Option<String> {
    user["urn:scim:schemas:extension:atlassian-external:1.0"]["atlassianAccountId"]
        .as_str()
        .map(str::to_owned)
}

/// A SCIM PATCH setting `active`.
fn active_patch(active: bool) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{ "op": "replace", "path": "active", "value": active }]
    })
}

/// A kB figure of `/proc/<pid>/status` (`VmRSS`, `VmHWM`).
fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Samples a process's resident memory every 20 ms on a thread of its
/// own, so a busy runtime cannot skip the peak. The kernel's high-water
/// mark is reset first where the process allows it (its owner may), so
/// `VmHWM` at the end is the peak of this phase alone, between samples
/// too.
struct RssSampler {
    pid: u32,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
    hwm_reset: bool,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let hwm_reset = std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = 0;
            while !stopped.load(Ordering::Relaxed) {
                peak = peak.max(status_kb(pid, "VmRSS").unwrap_or(0));
                std::thread::sleep(Duration::from_millis(20));
            }
            peak.max(status_kb(pid, "VmRSS").unwrap_or(0))
        });
        RssSampler {
            pid,
            stop,
            thread,
            hwm_reset,
        }
    }

    /// The peak in MB, and how it was found.
    fn finish(self) -> (f64, &'static str) {
        self.stop.store(true, Ordering::Relaxed);
        let sampled = self.thread.join().unwrap_or(0);
        let hwm = status_kb(self.pid, "VmHWM").unwrap_or(0);
        let mb = |kb: u64| kb as f64 / 1024.0;
        match self.hwm_reset {
            true => (mb(hwm.max(sampled)), "VmHWM, reset at the start"),
            false => (mb(sampled), "VmRSS sampled every 20 ms"),
        }
    }
}

/// Seconds between two RFC 3339 times.
fn seconds_between(from: &Value, to: &Value) -> Option<f64> {
    let parse = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str()?).ok();
    let (from, to) = (parse(from)?, parse(to)?);
    Some((to - from).num_microseconds()? as f64 / 1e6)
}

/// One whole sync run: started, followed every 20 ms until it ends.
async fn sync_run(
    target: &SyncTarget,
    max: Duration,
    server_pid: Option<u32>,
) -> BenchResult<PhaseResult> {
    let sampler = server_pid.map(RssSampler::start);
    let started = Instant::now();
    let run_id = match target
        .send(Method::POST, &format!("{}/sync", target.directory), None)
        .await?
    {
        (202, body) => body["runId"]
            .as_str()
            .ok_or("a started run without runId")?
            .to_owned(),
        (status, body) => return Err(format!("starting a run: HTTP {status} {body}").into()),
    };
    let url = format!("{}/sync/runs/{run_id}", target.directory);
    let mut polls = 0usize;
    let run = loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        polls += 1;
        let run = target.get(&url).await?;
        match run["state"].as_str() {
            Some("running") if started.elapsed() > max => {
                return Err(format!(
                    "run {run_id} still running after {}s (--max-seconds): {}",
                    max.as_secs(),
                    run["progress"]
                )
                .into())
            }
            Some("running") => continue,
            _ => break run,
        }
    };
    let wall = started.elapsed();
    let rss = sampler.map(RssSampler::finish);
    let errors = usize::from(run["state"].as_str() != Some("succeeded"));
    let mut result = summarise("sync-run", vec![wall], errors, wall.as_secs_f64());
    result.server_peak_rss_mb = rss.map(|(mb, _)| mb);
    result.detail = Some(json!({
        "runId": run_id,
        "state": run["state"],
        "serverSeconds": seconds_between(&run["startedAt"], &run["finishedAt"]),
        "counts": run["counts"],
        "progress": run["progress"],
        "failures": run["failures"],
        "polls": polls,
        "rss": rss.map(|(_, how)| how),
    }));
    Ok(result)
}

/// `--samples` users of granted groups, one at a time: deactivated by a
/// PATCH, timed until their account has no access left, then reactivated
/// and timed until the access is back. The first result is the
/// deactivations', the second the reactivations'.
async fn sync_deactivate(
    target: &SyncTarget,
    base: &str,
    key: &str,
    samples: usize,
    max: Duration,
) -> BenchResult<(PhaseResult, PhaseResult)> {
    let (groups, _) = target.granted_groups().await?;
    if groups.is_empty() {
        return Err("no group of this directory is granted a product (scimd seed --grants)".into());
    }
    let users = sample_granted_users(&target.client, base, key, &groups, samples).await?;
    let started = Instant::now();
    let (mut gone, mut back, mut patches) = (Vec::new(), Vec::new(), Vec::new());
    let mut errors = (0usize, 0usize);
    for (user, account) in &users {
        let had = target.access_count(account).await?;
        if had == 0 {
            return Err(format!(
                "account {account} (user {user}) of a granted group has no access: \
                 run a sync first (the sync-run phase)"
            )
            .into());
        }
        let url = format!("{base}/Users/{user}");
        let t = Instant::now();
        let (status, _) = target_send_scim(&target.client, key, &url, &active_patch(false)).await?;
        patches.push(t.elapsed());
        if status != 200 {
            return Err(format!("deactivating {user}: HTTP {status}").into());
        }
        match target.wait_for_access(account, t, max, |n| n == 0).await? {
            Some(d) => gone.push(d),
            None => errors.0 += 1,
        }
        let t = Instant::now();
        let (status, _) = target_send_scim(&target.client, key, &url, &active_patch(true)).await?;
        if status != 200 {
            return Err(format!("reactivating {user}: HTTP {status}").into());
        }
        match target
            .wait_for_access(account, t, max, |n| n >= had)
            .await?
        {
            Some(d) => back.push(d),
            None => errors.1 += 1,
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let patch = summarise("patch", patches, 0, seconds);
    let mut deactivate = summarise("sync-deactivate", gone, errors.0, seconds);
    deactivate.detail = Some(json!({
        "users": users.len(),
        "grantedGroups": groups.len(),
        "measured": "from sending PATCH active=false until GET …/access is empty",
        "patchP50Ms": patch.p50_ms,
        "patchP99Ms": patch.p99_ms,
    }));
    let mut reactivate = summarise("sync-reactivate", back, errors.1, seconds);
    reactivate.detail = Some(json!({
        "measured": "from sending PATCH active=true until the access is back",
    }));
    Ok((deactivate, reactivate))
}

/// A SCIM PATCH with the directory's key: its status and body.
async fn target_send_scim(
    client: &Client,
    key: &str,
    url: &str,
    body: &Value,
) -> BenchResult<(u16, Value)> {
    let resp = client
        .patch(url)
        .bearer_auth(key)
        .header("content-type", "application/scim+json")
        .body(body.to_string())
        .send()
        .await?;
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

/// Users sync-group-patch follows after its PATCH.
const GROUP_PATCH_SAMPLES: usize = 5;

/// Every created user added in one PATCH to a new group, granted (role
/// `user`) the first product a grant of this directory is on; the PATCH
/// is timed, and so is the wait from its start until sampled added
/// users' accounts have access.
async fn sync_group_patch(
    target: &SyncTarget,
    base: &str,
    key: &str,
    users: &[(String, String)],
    run_id: u32,
    max: Duration,
) -> BenchResult<PhaseResult> {
    let (_, product) = target.granted_groups().await?;
    let Some((site, product)) = product else {
        return Err("no group of this directory is granted a product (scimd seed --grants)".into());
    };
    let group = create_group(&target.client, base, key, run_id).await?;
    let grant = json!({ "groupId": group, "role": "user" });
    let url = format!("{}/sites/{site}/products/{product}/grants", target.org);
    match target.send(Method::POST, &url, Some(&grant)).await? {
        (201, _) => {}
        (status, body) => return Err(format!("granting the group: HTTP {status} {body}").into()),
    }
    // Spread over the list: its first, its last and between.
    let step = (users.len() / GROUP_PATCH_SAMPLES).max(1);
    let sampled: Vec<&(String, String)> = users
        .iter()
        .step_by(step)
        .chain(users.last())
        .take(GROUP_PATCH_SAMPLES + 1)
        .collect();
    for (user, account) in &sampled {
        if target.access_count(account).await? != 0 {
            return Err(format!("user {user} had access before the PATCH").into());
        }
    }
    let members: Vec<Value> = users.iter().map(|(id, _)| json!({ "value": id })).collect();
    let body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{ "op": "add", "path": "members", "value": members }]
    });
    let started = Instant::now();
    let (status, answer) = target_send_scim(
        &target.client,
        key,
        &format!("{base}/Groups/{group}"),
        &body,
    )
    .await?;
    let patch = started.elapsed();
    if status != 204 && status != 200 {
        return Err(format!(
            "the PATCH of {} members: HTTP {status} {answer}",
            users.len()
        )
        .into());
    }
    let mut waits = Vec::new();
    let mut errors = 0;
    for (_, account) in &sampled {
        match target
            .wait_for_access(account, started, max, |n| n > 0)
            .await?
        {
            Some(d) => waits.push(d),
            None => errors += 1,
        }
    }
    let mut result = summarise(
        "sync-group-patch",
        vec![patch],
        0,
        started.elapsed().as_secs_f64(),
    );
    let waits_ms: Vec<f64> = waits.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    result.errors = errors;
    result.detail = Some(json!({
        "members": users.len(),
        "group": group,
        "patchMs": patch.as_secs_f64() * 1000.0,
        "accessAfterMs": waits_ms,
        "accessAllMs": waits_ms.iter().copied().fold(0.0, f64::max),
        "measured": "PATCH latency; then from sending the PATCH until each sampled user's account has access",
    }));
    Ok(result)
}

/// A user to create: `{prefix}-{i}@example.com`.
fn new_user(prefix: &str, i: usize) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": format!("{prefix}-{i}@example.com"),
        "name": { "givenName": "Bench", "familyName": format!("User {i}") },
        "emails": [{ "value": format!("{prefix}-{i}@example.com"), "type": "work", "primary": true }],
        "active": true
    })
}

/// What the benchmark's webhook receiver got: each message as it came
/// and when, read only after the phase so the receiver does little work
/// beside the server it measures.
#[derive(Clone, Default)]
struct Arrivals(Arc<std::sync::Mutex<Vec<(axum::body::Bytes, std::time::SystemTime)>>>);

/// One message the receiver got, read.
struct Arrival {
    kind: String,
    user: Option<String>,
    occurred_at: String,
    at: std::time::SystemTime,
}

impl Arrivals {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(axum::body::Bytes, std::time::SystemTime)>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    fn read(&self) -> Vec<Arrival> {
        self.lock()
            .iter()
            .filter_map(|(body, at)| {
                let v: Value = serde_json::from_slice(body).ok()?;
                Some(Arrival {
                    kind: v["type"].as_str().unwrap_or_default().to_owned(),
                    user: v["data"]["user"]["userName"].as_str().map(str::to_owned),
                    occurred_at: v["occurredAt"].as_str().unwrap_or_default().to_owned(),
                    at: *at,
                })
            })
            .collect()
    }
}

async fn receive_hook(
    axum::extract::State(arrivals): axum::extract::State<Arrivals>,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    let at = std::time::SystemTime::now();
    arrivals.lock().push((body, at));
    axum::http::StatusCode::NO_CONTENT
}

/// A webhook subscribed to every event, and its receiver.
struct WebhookOn {
    id: String,
    arrivals: Arrivals,
    receiver: tokio::task::JoinHandle<()>,
}

async fn webhook_on(target: &SyncTarget) -> BenchResult<(WebhookOn, PhaseResult)> {
    let started = Instant::now();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let arrivals = Arrivals::default();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive_hook))
        .with_state(arrivals.clone());
    let receiver = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let resp = target
        .client
        .post(format!("{}/webhooks", target.org))
        .bearer_auth(&target.token)
        .json(&json!({ "url": url, "description": "scim-bench" }))
        .send()
        .await?;
    if resp.status() != 201 {
        return Err(format!(
            "webhook-on: {} {} (does the server run with --webhook-allow-private?)",
            resp.status(),
            resp.text().await.unwrap_or_default()
        )
        .into());
    }
    let id = resp.json::<Value>().await?["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let result = summarise(
        "webhook-on",
        vec![started.elapsed()],
        0,
        started.elapsed().as_secs_f64(),
    );
    Ok((
        WebhookOn {
            id,
            arrivals,
            receiver,
        },
        result,
    ))
}

/// Waits until the webhook has every event of the feed, then deletes it;
/// timed from the call.
async fn webhook_off(
    target: &SyncTarget,
    on: WebhookOn,
    max: Duration,
) -> BenchResult<PhaseResult> {
    let started = Instant::now();
    let hook = format!("{}/webhooks/{}", target.org, on.id);
    loop {
        let w: Value = target
            .client
            .get(&hook)
            .bearer_auth(&target.token)
            .send()
            .await?
            .json()
            .await?;
        let cursor = w["deliveredThrough"].as_str().unwrap_or_default();
        let page: Value = target
            .client
            .get(format!("{}/events?limit=1&after={cursor}", target.org))
            .bearer_auth(&target.token)
            .send()
            .await?
            .json()
            .await?;
        if page["events"].as_array().is_some_and(|e| e.is_empty()) {
            break;
        }
        if started.elapsed() > max {
            return Err(format!(
                "webhook-off: still delivering after {}s: {w}",
                max.as_secs()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drained = started.elapsed();
    target
        .client
        .delete(&hook)
        .bearer_auth(&target.token)
        .send()
        .await?;
    on.receiver.abort();
    let received = on.arrivals.len();
    let mut result = summarise("webhook-off", vec![drained], 0, drained.as_secs_f64());
    result.requests = received;
    Ok(result)
}

/// How webhook-lag paces its creations.
struct Pacing {
    total: usize,
    rate: f64,
    concurrency: usize,
}

/// Creates `pacing.total` users at `pacing.rate` per second and measures
/// the delay from each creation's event to its arrival at the receiver.
async fn webhook_lag(
    client: &Client,
    base: &str,
    key: &str,
    on: &WebhookOn,
    prefix: &str,
    pacing: Pacing,
    max: Duration,
) -> BenchResult<PhaseResult> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + max;
    let mut workers = Vec::new();
    for _ in 0..pacing.concurrency.max(1) {
        let (client, key, next) = (client.clone(), key.to_owned(), next.clone());
        let (url, prefix) = (format!("{base}/Users"), prefix.to_owned());
        let (total, rate) = (pacing.total, pacing.rate);
        workers.push(tokio::spawn(async move {
            let mut created = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total || Instant::now() >= deadline {
                    return created;
                }
                let slot = started + Duration::from_secs_f64(i as f64 / rate);
                tokio::time::sleep_until(slot.into()).await;
                let resp = client
                    .post(&url)
                    .bearer_auth(&key)
                    .header("content-type", "application/scim+json")
                    .body(new_user(&prefix, i).to_string())
                    .send()
                    .await;
                if resp.is_ok_and(|r| r.status() == 201) {
                    created += 1;
                }
            }
        }));
    }
    let mut created = 0;
    for w in workers {
        created += w.await.unwrap_or(0);
    }
    let sending = started.elapsed().as_secs_f64();
    let mine = |a: &Arrival| {
        a.kind == "user.created" && a.user.as_deref().is_some_and(|u| u.starts_with(prefix))
    };
    let wait_until = Instant::now() + max;
    loop {
        let arrived = on.arrivals.read().iter().filter(|a| mine(a)).count();
        if arrived >= created || Instant::now() > wait_until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let lags: Vec<Duration> = on
        .arrivals
        .read()
        .iter()
        .filter(|a| mine(a))
        .filter_map(|a| {
            let occurred = chrono::DateTime::parse_from_rfc3339(&a.occurred_at).ok()?;
            let at = chrono::DateTime::<chrono::Utc>::from(a.at);
            (at - occurred.with_timezone(&chrono::Utc)).to_std().ok()
        })
        .collect();
    let missing = created.saturating_sub(lags.len());
    // Requests/s is the creation rate reached; the latencies are lags.
    let mut result = summarise("webhook-lag", lags, missing, sending);
    result.requests_per_second = created as f64 / sending;
    Ok(result)
}

/// The `name=value` of the cookie `name` a response sets.
fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|pair| pair.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// Signs in to the console with `token` as a browser would (the sign-in
/// form's CSRF cookie and field, then the session cookie), then loads the
/// organisation's overview `requests` times in a row.
async fn console_overview(
    client: &Client,
    origin: &str,
    token: &str,
    org: &str,
    requests: usize,
    max: Duration,
) -> BenchResult<PhaseResult> {
    let form = client.get(format!("{origin}/admin/sign-in")).send().await?;
    let sign_in_cookie = set_cookie(&form, "scimd_console_signin")
        .ok_or("the sign-in form set no scimd_console_signin cookie")?;
    let csrf = sign_in_cookie
        .split_once('=')
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default();
    // Signing in answers with a redirect that carries the session cookie.
    let no_redirects = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let signed_in = no_redirects
        .post(format!("{origin}/admin/sign-in"))
        .header(reqwest::header::COOKIE, &sign_in_cookie)
        .form(&[("csrf", csrf.as_str()), ("token", token)])
        .send()
        .await?;
    let session = set_cookie(&signed_in, "scimd_console")
        .ok_or_else(|| format!("signing in answered HTTP {}", signed_in.status()))?;
    let url = format!("{origin}/admin/orgs/{org}");
    let deadline = Instant::now() + max;
    let started = Instant::now();
    let (mut latencies, mut errors) = (Vec::new(), 0usize);
    while latencies.len() < requests && Instant::now() < deadline {
        let t = Instant::now();
        let resp = client
            .get(&url)
            .header(reqwest::header::COOKIE, &session)
            .send()
            .await?;
        let ok = resp.status().as_u16() == 200;
        let body = resp.bytes().await?;
        latencies.push(t.elapsed());
        if !ok || body.is_empty() {
            errors += 1;
        }
    }
    Ok(summarise(
        "console-overview",
        latencies,
        errors,
        started.elapsed().as_secs_f64(),
    ))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let (base, key) = match (&args.base_url, &args.key, &args.server, &args.admin_token) {
        (Some(base), Some(key), _, _) => (base.trim_end_matches('/').to_owned(), key.clone()),
        (None, _, Some(server), Some(token)) => create_directory(server, token).await?,
        _ => return Err("give --base-url and --key, or --server and --admin-token".into()),
    };
    let url = Url::parse(&base)?;
    ensure_loopback(&url)?;
    let origin = format!(
        "{}://{}{}",
        url.scheme(),
        url.host_str().unwrap_or("127.0.0.1"),
        url.port().map(|p| format!(":{p}")).unwrap_or_default()
    );
    let client = Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .tcp_nodelay(true)
        .build()?;
    let max = Duration::from_secs(args.max_seconds);
    let phases: Vec<&str> = args.phases.split(',').map(str::trim).collect();
    let run_id = std::process::id();
    let mut results: Vec<PhaseResult> = Vec::new();
    let mut user_ids: Vec<String> = Vec::new();
    let mut user_names: Vec<String> = Vec::new();
    let mut group_id: Option<String> = None;
    let mut deep_cursor: Option<String> = None;
    // Each created user's account, for sync-group-patch.
    let mut user_accounts: Vec<(String, String)> = Vec::new();
    let mut creates = 0usize;
    let mut hook: Option<WebhookOn> = None;
    let sync = match phases
        .iter()
        .any(|p| p.starts_with("sync-") || p.starts_with("webhook-"))
    {
        false => None,
        true => {
            let token = args
                .admin_token
                .clone()
                .ok_or("the sync phases need --admin-token")?;
            let directory_id = args
                .directory
                .clone()
                .or_else(|| directory_of(&base))
                .ok_or("the sync phases need --directory (--base-url names none)")?;
            let org = format!("{origin}/admin/v1/orgs/{}", args.org);
            Some(SyncTarget {
                client: client.clone(),
                token,
                directory: format!("{org}/directories/{directory_id}"),
                org,
                directory_id,
            })
        }
    };

    for phase in phases {
        let cpu_before = args.server_pid.and_then(process_cpu);
        // Rows a phase reports after its own.
        let mut more: Vec<PhaseResult> = Vec::new();
        let (mut result, bodies) = match phase {
            "baseline" => {
                let url = format!("{origin}/healthz");
                run_phase(
                    phase,
                    &client,
                    &key,
                    args.concurrency,
                    args.requests,
                    max,
                    move |_| Req {
                        method: Method::GET,
                        url: url.clone(),
                        body: None,
                        expect: 200,
                    },
                )
                .await
            }
            "create" => {
                let url = format!("{base}/Users");
                // A phase repeated creates users of its own.
                creates += 1;
                let prefix = match creates {
                    1 => format!("bench-{run_id}"),
                    n => format!("bench-{run_id}-{n}"),
                };
                run_phase(
                    phase,
                    &client,
                    &key,
                    args.concurrency,
                    args.users,
                    max,
                    move |i| Req {
                        method: Method::POST,
                        url: url.clone(),
                        body: Some(new_user(&prefix, i)),
                        expect: 201,
                    },
                )
                .await
            }
            "webhook-on" | "webhook-off" | "webhook-lag" => {
                let Some(target) = &sync else {
                    return Err(format!("the {phase} phase needs --admin-token").into());
                };
                let result = match phase {
                    "webhook-on" => {
                        if hook.is_some() {
                            return Err("webhook-on: a webhook is on already".into());
                        }
                        let (on, result) = webhook_on(target).await?;
                        hook = Some(on);
                        result
                    }
                    "webhook-off" => {
                        let on = hook.take().ok_or("webhook-off: no webhook is on")?;
                        webhook_off(target, on, max).await?
                    }
                    _ => {
                        let on = hook.as_ref().ok_or("webhook-lag needs webhook-on first")?;
                        creates += 1;
                        let pacing = Pacing {
                            total: args.users,
                            rate: f64::from(args.rate.max(1)),
                            concurrency: args.concurrency,
                        };
                        webhook_lag(
                            &client,
                            &base,
                            &key,
                            on,
                            &format!("bench-{run_id}-lag{creates}"),
                            pacing,
                            max,
                        )
                        .await?
                    }
                };
                (result, Vec::new())
            }
            "get" | "filter" | "patch" | "put" | "delete" | "mixed" => {
                if user_ids.is_empty() {
                    return Err(format!("the {phase} phase needs the create phase first").into());
                }
                let ids = Arc::new(user_ids.clone());
                let names = Arc::new(user_names.clone());
                let base = base.clone();
                let kind = phase.to_owned();
                // Writes touch each user once; reads cycle over them.
                let total = match phase {
                    "get" | "filter" | "mixed" => args.requests,
                    _ => ids.len(),
                };
                run_phase(phase, &client, &key, args.concurrency, total, max, move |i| {
                    let id = &ids[i % ids.len()];
                    let name = &names[i % names.len()];
                    let user_url = format!("{base}/Users/{id}");
                    // An identity provider's steady traffic: mostly
                    // look-ups, one request in ten an update.
                    let kind = match (kind.as_str(), i % 10) {
                        ("mixed", 9) => "patch",
                        ("mixed", k) if k % 2 == 0 => "get",
                        ("mixed", _) => "filter",
                        (kind, _) => kind,
                    };
                    match kind {
                        "filter" => Req {
                            method: Method::GET,
                            url: format!("{base}/Users?filter=userName%20eq%20%22{name}%22"),
                            body: None,
                            expect: 200,
                        },
                        "patch" => Req {
                            method: Method::PATCH,
                            url: user_url,
                            body: Some(json!({
                                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                                "Operations": [{ "op": "replace", "path": "title", "value": format!("Title {i}") }]
                            })),
                            expect: 200,
                        },
                        "put" => Req {
                            method: Method::PUT,
                            url: user_url,
                            body: Some(json!({
                                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                                "userName": name,
                                "name": { "givenName": "Put", "familyName": format!("User {i}") },
                                "emails": [{ "value": name, "type": "work", "primary": true }],
                                "title": "Replaced",
                                "active": true
                            })),
                            expect: 200,
                        },
                        "delete" => Req {
                            method: Method::DELETE,
                            url: user_url,
                            body: None,
                            expect: 204,
                        },
                        _ => Req {
                            method: Method::GET,
                            url: user_url,
                            body: None,
                            expect: 200,
                        },
                    }
                })
                .await
            }
            "seeded-filter" => {
                if args.seeded == 0 {
                    return Err("seeded-filter needs --seeded <n>".into());
                }
                let base = base.clone();
                let seeded = args.seeded;
                run_phase(
                    phase,
                    &client,
                    &key,
                    args.concurrency,
                    args.requests,
                    max,
                    move |i| {
                        // A fixed stride walks the whole seeded range.
                        let n = (i as u64).wrapping_mul(7_919) % seeded;
                        Req {
                            method: Method::GET,
                            url: format!(
                                "{base}/Users?filter=userName%20eq%20%22seed-{n}%40example.com%22"
                            ),
                            body: None,
                            expect: 200,
                        }
                    },
                )
                .await
            }
            "deep-page" => {
                if args.seeded < 100 {
                    return Err("deep-page needs --seeded <n>".into());
                }
                let base = base.clone();
                let start = args.seeded * 9 / 10 + 1;
                run_phase(
                    phase,
                    &client,
                    &key,
                    args.concurrency,
                    args.requests.min(2_000),
                    max,
                    move |_| Req {
                        method: Method::GET,
                        url: format!("{base}/Users?startIndex={start}&count=100"),
                        body: None,
                        expect: 200,
                    },
                )
                .await
            }
            "list" => {
                let pages = user_ids.len().div_ceil(100).max(1);
                let base = base.clone();
                run_phase(
                    phase,
                    &client,
                    &key,
                    args.concurrency,
                    args.requests.min(pages * 10),
                    max,
                    move |i| Req {
                        method: Method::GET,
                        url: format!(
                            "{base}/Users?startIndex={}&count=100",
                            (i % pages) * 100 + 1
                        ),
                        body: None,
                        expect: 200,
                    },
                )
                .await
            }
            "members" | "remove" | "members-one" => {
                if user_ids.is_empty() {
                    return Err(format!("the {phase} phase needs the create phase first").into());
                }
                let group = match &group_id {
                    Some(g) => g.clone(),
                    None => {
                        let g = create_group(&client, &base, &key, run_id).await?;
                        group_id = Some(g.clone());
                        g
                    }
                };
                let chunk = if phase == "members-one" {
                    user_ids.len()
                } else {
                    1000
                };
                let chunks: Arc<Vec<Vec<String>>> =
                    Arc::new(user_ids.chunks(chunk).map(<[String]>::to_vec).collect());
                let url = format!("{base}/Groups/{group}");
                let op = if phase == "remove" { "remove" } else { "add" };
                // Chunks touch one group: sequential, as an IdP sends them.
                run_phase(phase, &client, &key, 1, chunks.len(), max, move |i| {
                    let members: Vec<Value> =
                        chunks[i].iter().map(|id| json!({ "value": id })).collect();
                    Req {
                        method: Method::PATCH,
                        url: url.clone(),
                        body: Some(json!({
                            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                            "Operations": [{ "op": op, "path": "members", "value": members }]
                        })),
                        expect: 204,
                    }
                })
                .await
            }
            "cursor-first" => {
                let base = base.clone();
                run_phase(
                    phase,
                    &client,
                    &key,
                    args.concurrency,
                    args.requests.min(2_000),
                    max,
                    move |_| Req {
                        method: Method::GET,
                        url: format!("{base}/Users?count=100&cursor="),
                        body: None,
                        expect: 200,
                    },
                )
                .await
            }
            "cursor-walk" => {
                if args.seeded < 100 {
                    return Err("cursor-walk needs --seeded <n>".into());
                }
                // To the page that starts at 90% of the directory.
                let pages = args.seeded * 9 / 10 / 100;
                let (result, cursor) = walk_cursor(phase, &client, &key, &base, pages).await?;
                deep_cursor = Some(cursor);
                (result, Vec::new())
            }
            "cursor-deep" => {
                let Some(cursor) = deep_cursor.clone() else {
                    return Err("the cursor-deep phase needs the cursor-walk phase first".into());
                };
                let base = base.clone();
                run_phase(
                    phase,
                    &client,
                    &key,
                    args.concurrency,
                    args.requests.min(2_000),
                    max,
                    move |_| Req {
                        method: Method::GET,
                        url: format!("{base}/Users?count=100&cursor={cursor}"),
                        body: None,
                        expect: 200,
                    },
                )
                .await
            }
            "sync-run" | "sync-deactivate" | "sync-group-patch" => {
                let Some(target) = &sync else {
                    return Err(format!("the {phase} phase needs --admin-token").into());
                };
                let result = match phase {
                    "sync-run" => sync_run(target, max, args.server_pid).await?,
                    "sync-deactivate" => {
                        let (gone, back) =
                            sync_deactivate(target, &base, &key, args.samples, max).await?;
                        more.push(back);
                        gone
                    }
                    _ => {
                        if user_accounts.is_empty() {
                            return Err(
                                "the sync-group-patch phase needs the create phase first".into()
                            );
                        }
                        sync_group_patch(target, &base, &key, &user_accounts, run_id, max).await?
                    }
                };
                (result, Vec::new())
            }
            "console-overview" => {
                let token = args
                    .admin_token
                    .as_deref()
                    .ok_or("the console-overview phase needs --admin-token")?;
                let result = console_overview(
                    &client,
                    &origin,
                    token,
                    &args.org,
                    args.requests.min(2_000),
                    max,
                )
                .await?;
                (result, Vec::new())
            }
            other => return Err(format!("unknown phase '{other}'").into()),
        };
        if let (Some(before), Some(after)) = (cpu_before, args.server_pid.and_then(process_cpu)) {
            result.server_cpu_us_per_request = Some(
                (after.saturating_sub(before)).as_secs_f64() * 1e6 / result.requests.max(1) as f64,
            );
        }
        if phase == "create" {
            for b in &bodies {
                if let (Some(id), Some(name)) = (b["id"].as_str(), b["userName"].as_str()) {
                    user_ids.push(id.to_owned());
                    user_names.push(name.to_owned());
                    if let Some(account) = account_of(b) {
                        user_accounts.push((id.to_owned(), account));
                    }
                }
            }
        }
        results.push(result);
        results.extend(more);
    }

    fractions_of_baseline(&mut results);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        println!(
            "{:<16} {:>9} {:>7} {:>10} {:>9} {:>9} {:>9} {:>11} {:>14} {:>12}",
            "phase",
            "requests",
            "errors",
            "req/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "of /healthz",
            "server CPU µs",
            "peak RSS MB"
        );
        for r in &results {
            println!(
                "{:<16} {:>9} {:>7} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>11} {:>14} {:>12}",
                r.phase,
                r.requests,
                r.errors,
                r.requests_per_second,
                r.p50_ms,
                r.p99_ms,
                r.max_ms,
                r.of_baseline
                    .map(|f| format!("{:.0}%", f * 100.0))
                    .unwrap_or_default(),
                r.server_cpu_us_per_request
                    .map(|us| format!("{us:.0}"))
                    .unwrap_or_default(),
                r.server_peak_rss_mb
                    .map(|mb| format!("{mb:.0}"))
                    .unwrap_or_default()
            );
        }
        for r in &results {
            if let Some(detail) = &r.detail {
                println!("{}: {detail}", r.phase);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(name: &str, requests_per_second: f64) -> PhaseResult {
        PhaseResult {
            phase: name.to_owned(),
            requests: 0,
            errors: 0,
            seconds: 0.0,
            requests_per_second,
            p50_ms: 0.0,
            p99_ms: 0.0,
            max_ms: 0.0,
            of_baseline: None,
            server_cpu_us_per_request: None,
            server_peak_rss_mb: None,
            detail: None,
        }
    }

    #[test]
    fn each_phase_is_set_against_the_baseline_before_it() {
        let mut results = vec![
            phase("create", 10.0),
            phase("baseline", 100.0),
            phase("get", 50.0),
            phase("baseline", 200.0),
            phase("filter", 50.0),
        ];
        fractions_of_baseline(&mut results);
        let fractions: Vec<Option<f64>> = results.iter().map(|r| r.of_baseline).collect();
        assert_eq!(
            fractions,
            [Some(0.1), Some(1.0), Some(0.5), Some(1.0), Some(0.25)]
        );
    }

    #[test]
    fn the_sync_phases_find_the_directory_in_the_base_url() {
        assert_eq!(
            directory_of("http://127.0.0.1:8080/scim/directory/6a0f/").as_deref(),
            Some("6a0f")
        );
        assert_eq!(directory_of("http://127.0.0.1:8080/scim/v2"), None);
        assert_eq!(directory_of("http://127.0.0.1:8080/scim/directory/"), None);
    }

    #[test]
    fn a_process_status_gives_its_memory() {
        let pid = std::process::id();
        let rss = status_kb(pid, "VmRSS").unwrap();
        assert!(rss > 0);
        assert!(status_kb(pid, "VmHWM").unwrap() >= rss);
        assert_eq!(status_kb(pid, "NoSuchField"), None);
    }

    #[test]
    fn run_times_are_read_from_rfc3339() {
        let s = seconds_between(
            &json!("2026-12-04T12:00:00.000000Z"),
            &json!("2026-12-04T12:00:02.500000Z"),
        );
        assert_eq!(s, Some(2.5));
        assert_eq!(seconds_between(&json!("x"), &Value::Null), None);
    }

    #[test]
    fn without_a_baseline_there_is_no_fraction() {
        let mut results = vec![phase("get", 50.0)];
        fractions_of_baseline(&mut results);
        assert_eq!(results[0].of_baseline, None);
    }
}
