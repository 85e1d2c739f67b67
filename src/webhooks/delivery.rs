//! The deliverer: sends each webhook endpoint the org's events after its
//! cursor, in sequence order, one message at a time, signed as Standard
//! Webhooks has it.
//!
//! A process claims endpoints that have events waiting (under a lease, see
//! `store/webhooks.rs`) and runs one task per endpoint it holds, so a slow
//! or failing receiver delays only its own events. A task sends a page of
//! events, then commits the attempts and the cursor together, at least
//! every [`COMMIT_EVERY`] while it sends; a failure ends its spell with the
//! endpoint due again after the [`RetryPolicy`]'s delay. A task idle for
//! [`IDLE_RELEASE`] gives its lease up, so endpoints spread over the
//! processes that have work, and one that dies is taken over when its lease
//! runs out, from the last committed cursor: an event is sent at least
//! once, and in order.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::task::{JoinHandle, JoinSet};
use uuid::Uuid;

use super::address::{check_url, GuardedResolver};
use super::backoff::RetryPolicy;
use super::signing::{signature_header, SigningSecret};
use crate::store::{FeedQuery, FeedRow, Progress, Store, WebhookAttempt, WebhookTarget};
use crate::telemetry::ErrorChain;
use crate::time::{format_micros, now_micros};

/// Events a task reads from the feed at a time.
pub const PAGE: i64 = 500;
/// The longest a task sends before it commits its cursor.
pub const COMMIT_EVERY: Duration = Duration::from_secs(1);
/// After sending what was pending, a task lets this much time pass before
/// it reads again, so that under a stream of events it sends, and commits,
/// many at a time instead of paying a read and a commit for each few (an
/// event that arrives while the task is idle is sent at once).
pub const GATHER: Duration = Duration::from_millis(100);
/// A task with nothing to send for this long gives its endpoint up.
pub const IDLE_RELEASE: Duration = Duration::from_secs(5);
/// How often an idle task, and the claimer, look for events other
/// processes wrote (this process's own wake them at once).
pub const POLL: Duration = Duration::from_millis(250);
/// Endpoints one process holds at most.
pub const MAX_HELD: usize = 256;
/// The most of a response body the attempts log keeps.
pub const EXCERPT_BYTES: usize = 512;

/// How deliveries are made.
#[derive(Clone, Debug)]
pub struct DeliveryConfig {
    /// Send to loopback, private and metadata addresses too.
    pub allow_private: bool,
    /// A receiver must answer within this (with a 2xx) for a success.
    pub timeout: Duration,
    /// How long a claim lasts without renewal.
    pub lease: Duration,
    pub retry: RetryPolicy,
}

/// Sends messages: the HTTP client and its rules, shared by the
/// background deliverer and the admin API's test message.
#[derive(Clone, Debug)]
pub struct Deliverer {
    client: reqwest::Client,
    config: Arc<DeliveryConfig>,
    sender: Arc<SendThread>,
}

/// The thread the deliverer's messages are sent from: a runtime of its
/// own at a lower scheduling priority (nice [`SEND_NICE`] on Linux), so
/// that when the machine's cores are all busy, serving SCIM and admin
/// requests comes first and deliveries use what is left (they catch up
/// when the load eases: the queue is durable). Only the HTTP exchanges run
/// there; the store is used from the server's runtime, as everywhere.
#[derive(Debug)]
struct SendThread {
    handle: tokio::runtime::Handle,
    /// Dropped with the last deliverer: the thread then ends.
    _stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// How much lower than the server's the sending thread's priority is.
pub const SEND_NICE: i32 = 10;

impl SendThread {
    fn start() -> SendThread {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        let started = std::thread::Builder::new()
            .name("scimd-webhooks".into())
            .spawn(move || {
                #[cfg(target_os = "linux")]
                // SAFETY: setpriority has no memory effects; on Linux, `who`
                // 0 with PRIO_PROCESS names the calling thread.
                unsafe {
                    libc::setpriority(libc::PRIO_PROCESS, 0, SEND_NICE);
                }
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(_) => return,
                };
                let _ = handle_tx.send(runtime.handle().clone());
                runtime.block_on(async {
                    let _ = stopped.await;
                });
            });
        match started.ok().and_then(|_| handle_rx.recv().ok()) {
            Some(handle) => SendThread {
                handle,
                _stop: Some(stop),
            },
            // No thread: messages are sent from the caller's runtime.
            None => SendThread {
                handle: tokio::runtime::Handle::current(),
                _stop: None,
            },
        }
    }
}

/// A message to one endpoint.
pub struct Message {
    pub id: String,
    pub event_type: String,
    pub sequence: Option<i64>,
    pub body: String,
}

impl Message {
    /// An event of the feed as its message: the feed's fields, and
    /// Standard Webhooks' `type`, `timestamp` and `data`.
    pub fn of_event(row: &FeedRow) -> Message {
        let head = serde_json::json!({
            "id": row.event_id,
            "type": row.kind,
            "timestamp": format_micros(row.occurred_at),
            "occurredAt": format_micros(row.occurred_at),
            "sequence": row.sequence,
            "orgId": row.org_id,
            "directoryId": row.directory_id,
        })
        .to_string();
        // `data` is stored as JSON text: spliced in as it is rather than
        // parsed and written again for every message.
        let data = match row.data.trim() {
            "" => "null",
            text => text,
        };
        let mut body = String::with_capacity(head.len() + data.len() + 8);
        body.push_str(head.strip_suffix('}').unwrap_or(&head));
        body.push_str(",\"data\":");
        body.push_str(data);
        body.push('}');
        Message {
            id: row.event_id.to_string(),
            event_type: row.kind.clone(),
            sequence: Some(row.sequence),
            body,
        }
    }

    /// A `webhook.test` message for endpoint `webhook_id` of `org_id`.
    pub fn test(org_id: Uuid, webhook_id: Uuid) -> Message {
        let id = Uuid::new_v4();
        let now = format_micros(now_micros());
        let body = serde_json::json!({
            "id": id,
            "type": "webhook.test",
            "timestamp": now,
            "occurredAt": now,
            "sequence": null,
            "orgId": org_id,
            "directoryId": null,
            "data": { "webhookId": webhook_id },
        });
        Message {
            id: id.to_string(),
            event_type: "webhook.test".to_owned(),
            sequence: None,
            body: body.to_string(),
        }
    }
}

/// An endpoint made ready to send to, once per read of its row rather
/// than per message: its URL checked and parsed, its secrets decoded.
pub struct Endpoint {
    url: Result<reqwest::Url, String>,
    secret: Option<SigningSecret>,
    /// The rotated-out secret, and until when it also signs.
    previous: Option<(SigningSecret, i64)>,
}

impl Endpoint {
    /// The secrets that sign at `now`: the current one, and the previous
    /// while its overlap lasts.
    fn secrets(&self, now: i64) -> Vec<&SigningSecret> {
        let mut secrets: Vec<&SigningSecret> = self.secret.iter().collect();
        if let Some((previous, until)) = &self.previous {
            if *until > now {
                secrets.push(previous);
            }
        }
        secrets
    }
}

impl Deliverer {
    pub fn new(config: DeliveryConfig) -> Deliverer {
        let client = reqwest::Client::builder()
            .dns_resolver(GuardedResolver::shared(config.allow_private))
            // A redirect would lead past the address check: a 3xx is a
            // failure the attempts log shows.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .user_agent(concat!("scimd-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Deliverer {
            client,
            config: Arc::new(config),
            sender: Arc::new(SendThread::start()),
        }
    }

    /// Sends `messages` to `endpoint` in order, from the sending thread,
    /// until one fails or [`COMMIT_EVERY`] has passed; the attempts made.
    /// Empty only when the sending thread has stopped.
    pub async fn send_in_order(
        &self,
        endpoint: Arc<Endpoint>,
        messages: Vec<Message>,
    ) -> Vec<WebhookAttempt> {
        let this = self.clone();
        let sent = self.sender.handle.spawn(async move {
            let started = Instant::now();
            let mut attempts = Vec::with_capacity(messages.len());
            for message in &messages {
                let attempt = this.send(&endpoint, message).await;
                let failed = !attempt.succeeded;
                attempts.push(attempt);
                if failed || started.elapsed() >= COMMIT_EVERY {
                    break;
                }
            }
            attempts
        });
        sent.await.unwrap_or_default()
    }

    pub fn config(&self) -> &DeliveryConfig {
        &self.config
    }

    /// `target` ready to send to. Its URL is checked here, so a URL saved
    /// under --webhook-allow-private is refused once that is off (names
    /// are checked by the resolver at each connection).
    pub fn prepare(&self, target: &WebhookTarget) -> Endpoint {
        Endpoint {
            url: check_url(&target.url, self.config.allow_private).map_err(|e| e.to_string()),
            secret: SigningSecret::parse(&target.secret).ok(),
            previous: target
                .previous_secret
                .as_deref()
                .and_then(|p| SigningSecret::parse(p).ok())
                .zip(target.previous_secret_until),
        }
    }

    /// Sends `message` to `endpoint` once; the attempt as the log keeps it.
    pub async fn send(&self, endpoint: &Endpoint, message: &Message) -> WebhookAttempt {
        let attempted_at = now_micros();
        let started = Instant::now();
        let mut attempt = WebhookAttempt {
            id: 0,
            event_id: message.id.parse().unwrap_or_default(),
            event_type: message.event_type.clone(),
            sequence: message.sequence,
            attempted_at,
            status: None,
            latency_ms: 0,
            succeeded: false,
            error: None,
            response_excerpt: None,
        };
        let outcome = self.post(endpoint, message, attempted_at).await;
        attempt.latency_ms = started.elapsed().as_millis() as i64;
        match outcome {
            Ok((status, excerpt)) => {
                attempt.status = Some(i32::from(status));
                attempt.succeeded = (200..300).contains(&status);
                attempt.response_excerpt = Some(excerpt);
                if !attempt.succeeded {
                    attempt.error = Some(format!("the receiver answered {status}"));
                }
            }
            Err(error) => attempt.error = Some(error),
        }
        attempt
    }

    async fn post(
        &self,
        endpoint: &Endpoint,
        message: &Message,
        attempted_at: i64,
    ) -> Result<(u16, String), String> {
        let url = endpoint.url.clone()?;
        let secrets = endpoint.secrets(attempted_at);
        if secrets.is_empty() {
            return Err("the endpoint's signing secret is unreadable".to_owned());
        }
        let timestamp = attempted_at / 1_000_000;
        let signature = signature_header(&secrets, &message.id, timestamp, message.body.as_bytes());
        let exchange = async {
            let mut response = self
                .client
                .post(url)
                .header("content-type", "application/json")
                .header("webhook-id", &message.id)
                .header("webhook-timestamp", timestamp.to_string())
                .header("webhook-signature", signature)
                .body(message.body.clone())
                .send()
                .await?;
            let status = response.status().as_u16();
            let mut excerpt = Vec::new();
            while excerpt.len() < EXCERPT_BYTES {
                match response.chunk().await? {
                    Some(chunk) => excerpt.extend_from_slice(&chunk),
                    None => break,
                }
            }
            excerpt.truncate(EXCERPT_BYTES);
            Ok::<_, reqwest::Error>((status, excerpt))
        };
        match tokio::time::timeout(self.config.timeout, exchange).await {
            Err(_) => Err(format!(
                "no answer within {} s",
                self.config.timeout.as_secs_f64()
            )),
            Ok(Err(e)) if e.is_timeout() => Err(format!(
                "no answer within {} s",
                self.config.timeout.as_secs_f64()
            )),
            // Without the URL: it may carry a receiver's token.
            Ok(Err(e)) => Err(ErrorChain(&e.without_url()).to_string()),
            Ok(Ok((status, excerpt))) => Ok((
                status,
                String::from_utf8_lossy(&excerpt).replace('\0', "\u{fffd}"),
            )),
        }
    }
}

/// The running deliverer.
pub struct Worker {
    task: JoinHandle<()>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Worker {
    /// Stops every task (a send in flight is abandoned: its event is sent
    /// again by the next holder) and gives this process's leases up, so
    /// the next process does not wait for them to run out.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Starts the deliverer.
pub fn spawn(store: Store, deliverer: Deliverer) -> Worker {
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        let owner = Uuid::new_v4();
        let wake = store.webhooks_waker();
        let signals = store.event_signals();
        let mut spells: JoinSet<()> = JoinSet::new();
        loop {
            while spells.try_join_next().is_some() {}
            // A claimed endpoint has no live lease: a spell that held it
            // has given it up and is ending, so a new one may start.
            let room = MAX_HELD.saturating_sub(spells.len());
            if room > 0 {
                let now = now_micros();
                let until = now + deliverer.config.lease.as_micros() as i64;
                match store.claim_webhooks(owner, now, until, room as i64).await {
                    Ok(ids) => {
                        for id in ids {
                            let store = store.clone();
                            let deliverer = deliverer.clone();
                            spells.spawn(async move { spell(&store, &deliverer, owner, id).await });
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %ErrorChain(&e), "webhooks: claiming endpoints failed")
                    }
                }
            }
            let sequenced = signals.sequenced.notified();
            tokio::select! {
                _ = wake.notified() => {}
                _ = sequenced => {}
                _ = tokio::time::sleep(POLL) => {}
                changed = stopped.changed() => {
                    if changed.is_err() || *stopped.borrow() {
                        break;
                    }
                }
            }
            // Under a stream of events, one claim in a while is enough.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        spells.shutdown().await;
        if let Err(e) = store.release_webhook_leases(owner).await {
            tracing::warn!(error = %ErrorChain(&e), "webhooks: could not give up leases at stop; they run out on their own");
        }
    });
    Worker { task, stop }
}

fn lease_until(deliverer: &Deliverer) -> i64 {
    now_micros() + deliverer.config.lease.as_micros() as i64
}

/// The feed query of a target's pending events, up to `until`.
fn pending(target: &WebhookTarget, until: i64) -> FeedQuery {
    FeedQuery {
        org_id: target.org_id,
        after: target.delivered_through,
        types: serde_json::from_str(&target.types).unwrap_or_default(),
        directory_ids: serde_json::from_str(&target.directory_ids).unwrap_or_default(),
        until: Some(until),
        limit: PAGE,
    }
}

/// Holds endpoint `id` while it has events to send.
async fn spell(store: &Store, deliverer: &Deliverer, owner: Uuid, id: Uuid) {
    if let Err(e) = hold(store, deliverer, owner, id).await {
        tracing::warn!(webhook = %id, error = %ErrorChain(&e), "webhooks: delivery interrupted; the endpoint is taken up again");
        let _ = store.release_webhook(id, owner).await;
    }
}

async fn hold(
    store: &Store,
    deliverer: &Deliverer,
    owner: Uuid,
    id: Uuid,
) -> crate::store::Result<()> {
    let Some(mut target) = store
        .renew_webhook(id, owner, lease_until(deliverer))
        .await?
    else {
        return Ok(());
    };
    let signals = store.event_signals();
    let renew_every = deliverer.config.lease / 3;
    let mut renewed = Instant::now();
    let mut idle_since = Instant::now();
    // Whether `target` was read since the last wait: an admin's change
    // (a rotated secret, a new URL or filter) applies from the next send.
    let mut fresh = true;
    loop {
        let sequenced = signals.sequenced.notified();
        tokio::pin!(sequenced);
        sequenced.as_mut().enable();
        let bound = store.feed_bounds(target.org_id).await?.last_sequence;
        if bound <= target.delivered_through {
            if idle_since.elapsed() >= IDLE_RELEASE {
                store.release_webhook(id, owner).await?;
                return Ok(());
            }
            tokio::select! {
                _ = &mut sequenced => {}
                _ = tokio::time::sleep(POLL) => {}
            }
            fresh = false;
            if renewed.elapsed() >= renew_every {
                match store
                    .renew_webhook(id, owner, lease_until(deliverer))
                    .await?
                {
                    Some(t) => target = t,
                    None => return Ok(()),
                }
                renewed = Instant::now();
            }
            continue;
        }
        if !fresh {
            match store.held_webhook(id, owner).await? {
                Some(t) => target = t,
                None => return Ok(()),
            }
            fresh = true;
            if bound <= target.delivered_through {
                continue;
            }
        }
        let rows = store.feed_page(&pending(&target, bound)).await?;
        let endpoint = Arc::new(deliverer.prepare(&target));
        let attempts = deliverer
            .send_in_order(endpoint, rows.iter().map(Message::of_event).collect())
            .await;
        if attempts.is_empty() && !rows.is_empty() {
            // The sending thread has stopped: the server is shutting down.
            store.release_webhook(id, owner).await?;
            return Ok(());
        }
        // The attempts are in order, each a success but perhaps the last.
        let delivered = attempts.iter().take_while(|a| a.succeeded).count();
        let mut through = match delivered {
            0 => target.delivered_through,
            n => rows[n - 1].sequence,
        };
        let failure = attempts
            .last()
            .filter(|a| !a.succeeded)
            .map(|a| a.error.clone().unwrap_or_else(|| "failed".to_owned()));
        let finished =
            failure.is_none() && attempts.len() == rows.len() && rows.len() < PAGE as usize;
        if finished {
            // Every pending event up to the bound was in the page.
            through = bound;
        }
        let progress = match failure {
            None => Progress::Delivered { through },
            Some(error) => {
                let now = now_micros();
                let moved = through > target.delivered_through;
                let (failures, since) = if moved {
                    (1, now)
                } else {
                    (target.failures + 1, target.failing_since.unwrap_or(now))
                };
                let failing_for = Duration::from_micros((now - since).max(0) as u64);
                let retry_at = (!deliverer.config.retry.gives_up(failing_for)).then(|| {
                    let delay = deliverer
                        .config
                        .retry
                        .delay(failures as u32, rand::thread_rng().gen::<f64>());
                    now + delay.as_micros() as i64
                });
                if retry_at.is_none() {
                    tracing::warn!(webhook = %id, "webhooks: the endpoint has failed for too long and is marked failing; its events wait for an admin");
                }
                Progress::Failed {
                    through,
                    error,
                    retry_at,
                }
            }
        };
        let failed = matches!(progress, Progress::Failed { .. });
        let next = store
            .record_webhook_progress(
                id,
                owner,
                target.generation,
                &attempts,
                &progress,
                lease_until(deliverer),
            )
            .await?;
        match next {
            Some(t) if !failed => target = t,
            _ => return Ok(()),
        }
        renewed = Instant::now();
        idle_since = Instant::now();
        if finished && !attempts.is_empty() {
            tokio::time::sleep(GATHER).await;
            fresh = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(previous_until: Option<i64>) -> WebhookTarget {
        WebhookTarget {
            id: Uuid::nil(),
            org_id: Uuid::nil(),
            url: "https://example.com/".into(),
            types: r#"["user."]"#.into(),
            directory_ids: "[]".into(),
            secret: SigningSecret::generate().expose(),
            previous_secret: Some(SigningSecret::generate().expose()),
            previous_secret_until: previous_until,
            delivered_through: 7,
            generation: 0,
            failures: 0,
            failing_since: None,
        }
    }

    fn deliverer() -> Deliverer {
        Deliverer::new(DeliveryConfig {
            allow_private: false,
            timeout: Duration::from_secs(1),
            lease: Duration::from_secs(10),
            retry: RetryPolicy::default(),
        })
    }

    #[test]
    fn the_previous_secret_signs_only_while_its_overlap_lasts() {
        let d = deliverer();
        assert_eq!(d.prepare(&target(Some(100))).secrets(99).len(), 2);
        assert_eq!(d.prepare(&target(Some(100))).secrets(100).len(), 1);
        assert_eq!(d.prepare(&target(None)).secrets(0).len(), 1);
    }

    #[test]
    fn an_inside_url_is_refused_when_prepared() {
        let d = deliverer();
        let mut t = target(None);
        assert!(d.prepare(&t).url.is_ok());
        t.url = "http://127.0.0.1:9/".into();
        assert!(d.prepare(&t).url.unwrap_err().contains("loopback"));
    }

    #[test]
    fn a_message_carries_the_event_and_standard_webhooks_fields() {
        let row = FeedRow {
            sequence: 9,
            event_id: Uuid::new_v4(),
            kind: "user.created".into(),
            occurred_at: 1_700_000_000_000_000,
            org_id: Uuid::nil(),
            directory_id: None,
            data: r#"{"userId":"u"}"#.into(),
        };
        let m = Message::of_event(&row);
        assert_eq!(m.id, row.event_id.to_string());
        let body: serde_json::Value = serde_json::from_str(&m.body).unwrap();
        assert_eq!(body.as_object().unwrap().len(), 8);
        assert_eq!(body["type"], "user.created");
        assert_eq!(body["sequence"], 9);
        assert_eq!(body["data"]["userId"], "u");
        assert_eq!(body["timestamp"], body["occurredAt"]);
        let q = pending(&target(None), 20);
        assert_eq!((q.after, q.until, q.types.len()), (7, Some(20), 1));
    }
}
