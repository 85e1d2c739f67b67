//! The delivery worker: a background task that sends the outbox's due
//! messages through one SMTP server (`--smtp-url`), started only when
//! one is configured; without it, messages stay `pending` in the outbox.
//!
//! Each round it turns expired leases into `uncertain`, claims a few due
//! messages under a lease (committed before anything is sent), sends them
//! at once, and records each outcome. The lease outlives the longest a
//! send may take ([`SEND_TIMEOUT`]), so a claim still `sending` after its
//! lease means its process died mid-send; such a message is never sent
//! again on its own, since SMTP cannot tell whether it arrived.
//!
//! An outcome decides what happens next:
//! - accepted: `sent`;
//! - a 4xx reply, or no connection at all: tried again after [`backoff`]
//!   until [`MAX_ATTEMPTS`](super::MAX_ATTEMPTS), then `failed`;
//! - a 5xx reply, or a message the client refuses to send: `failed`;
//! - the connection lost or timed out mid-conversation: `uncertain`, for
//!   the same reason as an expired lease (the server may have taken the
//!   message before it went silent).

use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::{AsyncTransport, Message, Tokio1Executor};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::backoff;
use crate::store::{ClaimedEmail, Store};
use crate::telemetry::ErrorChain;

/// The longest one send may take, connection and TLS included.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a claim holds a message: well past [`SEND_TIMEOUT`], so only
/// a worker that died leaves a lease to expire.
pub const LEASE: Duration = Duration::from_secs(300);
/// Messages claimed (and sent concurrently) per round.
pub const BATCH: i64 = 10;
/// The shortest pause between rounds when a due message could not be
/// claimed (another process holds it).
const MIN_PAUSE: Duration = Duration::from_millis(50);

/// Why the SMTP settings were refused at start.
#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    #[error(
        "--smtp-url is not a usable SMTP URL (smtp://host:port, smtps://…, smtp://…?tls=required)"
    )]
    Url(#[source] lettre::transport::smtp::Error),
    #[error("--smtp-from is not an email address: {0}")]
    From(String),
}

/// One SMTP server and the sender address messages carry.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

/// How one message's attempt ended.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Sent,
    /// Nothing was accepted; may be tried again.
    Transient(String),
    /// Refused for good.
    Permanent(String),
    /// May or may not have been accepted.
    Uncertain(String),
}

impl Mailer {
    /// `url` as lettre reads it: `smtp://host:port` (plain), `smtp://…?
    /// tls=required` (STARTTLS), `smtps://host` (TLS from the start), with
    /// `user:password@` for authentication.
    pub fn new(url: &str, from: &str) -> Result<Mailer, MailerError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(MailerError::Url)?
            .timeout(Some(SEND_TIMEOUT / 2))
            .build();
        let from = from
            .parse::<Mailbox>()
            .map_err(|e| MailerError::From(format!("{from}: {e}")))?;
        Ok(Mailer { transport, from })
    }

    async fn send(&self, msg: &ClaimedEmail) -> Outcome {
        let to = match msg.recipient.parse::<Mailbox>() {
            Ok(to) => to,
            Err(e) => return Outcome::Permanent(format!("recipient {}: {e}", msg.recipient)),
        };
        let email = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(msg.subject.as_str())
            // The outbox id: a receiver that sees it twice (an admin's
            // retry of an uncertain message) can tell it is one message.
            .message_id(Some(format!(
                "<{}@{}>",
                msg.id.simple(),
                self.from.email.domain()
            )))
            .header(ContentType::TEXT_PLAIN)
            .body(msg.body.clone());
        let email = match email {
            Ok(email) => email,
            Err(e) => return Outcome::Permanent(format!("message not built: {e}")),
        };
        match tokio::time::timeout(SEND_TIMEOUT, self.transport.send(email)).await {
            Ok(Ok(_)) => Outcome::Sent,
            Ok(Err(e)) => classify(&e),
            Err(_) => Outcome::Uncertain(format!(
                "no answer from the SMTP server within {} s",
                SEND_TIMEOUT.as_secs()
            )),
        }
    }
}

fn classify(e: &lettre::transport::smtp::Error) -> Outcome {
    let text = ErrorChain(e).to_string();
    if e.is_transient() {
        Outcome::Transient(text)
    } else if e.is_permanent() || e.is_client() {
        Outcome::Permanent(text)
    } else if is_connect_failure(e) {
        Outcome::Transient(text)
    } else {
        Outcome::Uncertain(text)
    }
}

/// The connection (or its TLS handshake) failed before any command, so
/// no message can have been taken: refused, unreachable, or a failure
/// lettre reports as a connection error (it uses that kind only while
/// connecting, and says so only in its `Debug` form).
fn is_connect_failure(e: &lettre::transport::smtp::Error) -> bool {
    use std::io::ErrorKind;
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                ErrorKind::ConnectionRefused
                    | ErrorKind::HostUnreachable
                    | ErrorKind::NetworkUnreachable
                    | ErrorKind::AddrNotAvailable
            ) {
                return true;
            }
        }
        source = s.source();
    }
    e.is_tls() || format!("{e:?}").contains("kind: Connection")
}

/// The worker's timing: the base of [`backoff`] and how often it looks
/// for messages other processes queued.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub retry_base: Duration,
    pub poll: Duration,
}

/// The running worker.
pub struct Worker {
    task: JoinHandle<()>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Worker {
    /// Stops the worker between rounds: sends in flight finish (within
    /// [`SEND_TIMEOUT`]) and their outcomes are recorded, so a restart
    /// leaves no message `uncertain`. Past `SEND_TIMEOUT` and a little
    /// more it is aborted, and what it was sending becomes `uncertain`
    /// when its lease ends.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        let grace = SEND_TIMEOUT + Duration::from_secs(5);
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            task.abort();
            let _ = task.await;
        }
    }
}

/// Starts the worker; it runs until [`Worker::stop`].
pub fn spawn(store: Store, mailer: Mailer, timing: Timing) -> Worker {
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        let owner = Uuid::new_v4();
        let wake = store.outbox_waker();
        let mailer = Arc::new(mailer);
        while !*stopped.borrow() {
            let claimed = round(&store, &mailer, owner, timing).await;
            if claimed == BATCH {
                continue;
            }
            let pause = pause(&store, timing.poll).await;
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(pause) => {}
                // Dropped without `stop`: nothing can stop it any more,
                // so it stops now.
                changed = stopped.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
            }
        }
    });
    Worker { task, stop }
}

/// Until the next pending message is due, at most `poll`.
async fn pause(store: &Store, poll: Duration) -> Duration {
    match store.next_email_due().await {
        Ok(Some(at)) => {
            let wait = at.saturating_sub(crate::time::now_micros()).max(0);
            Duration::from_micros(wait as u64).clamp(MIN_PAUSE, poll.max(MIN_PAUSE))
        }
        Ok(None) => poll,
        Err(e) => {
            tracing::warn!(error = %ErrorChain(&e), "outbox: could not read when mail is next due");
            poll
        }
    }
}

/// One round; how many messages it claimed.
async fn round(store: &Store, mailer: &Arc<Mailer>, owner: Uuid, timing: Timing) -> i64 {
    let now = crate::time::now_micros();
    match store.expire_email_leases(now).await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(
            messages = n,
            "outbox: messages left mid-send by a stopped process are now uncertain; \
             retry them through the admin API if they did not arrive"
        ),
        Err(e) => tracing::warn!(error = %ErrorChain(&e), "outbox: could not check leases"),
    }
    let lease_until = now.saturating_add(LEASE.as_micros() as i64);
    let claimed = match store.claim_due_emails(owner, now, lease_until, BATCH).await {
        Ok(claimed) => claimed,
        Err(e) => {
            tracing::warn!(error = %ErrorChain(&e), "outbox: could not claim due mail");
            return 0;
        }
    };
    let count = claimed.len() as i64;
    let sends = claimed.into_iter().map(|msg| {
        let mailer = mailer.clone();
        let store = store.clone();
        async move {
            let outcome = mailer.send(&msg).await;
            record(&store, owner, &msg, outcome, timing.retry_base).await;
        }
    });
    futures_util::future::join_all(sends).await;
    count
}

async fn record(store: &Store, owner: Uuid, msg: &ClaimedEmail, outcome: Outcome, base: Duration) {
    let now = crate::time::now_micros();
    let result = match &outcome {
        Outcome::Sent => store.mark_email_sent(msg.id, owner, now).await,
        Outcome::Transient(error) => {
            let failed = u32::try_from(msg.attempts).unwrap_or(u32::MAX);
            let retry_at = backoff(base, failed, rand::random::<f64>())
                .map(|d| now.saturating_add(d.as_micros() as i64));
            store
                .mark_email_attempt_failed(msg.id, owner, error, retry_at, now)
                .await
        }
        Outcome::Permanent(error) => {
            store
                .mark_email_attempt_failed(msg.id, owner, error, None, now)
                .await
        }
        Outcome::Uncertain(error) => store.mark_email_uncertain(msg.id, owner, error, now).await,
    };
    match (&outcome, result) {
        (_, Err(e)) => tracing::error!(
            error = %ErrorChain(&e), id = %msg.id, outcome = ?outcome,
            "outbox: the outcome of a send could not be recorded; its lease will make it uncertain"
        ),
        (Outcome::Sent, Ok(())) => tracing::info!(id = %msg.id, "outbox: message sent"),
        (other, Ok(())) => {
            tracing::warn!(id = %msg.id, attempts = msg.attempts, outcome = ?other, "outbox: message not sent")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_senders_are_checked_at_start() {
        assert!(Mailer::new("smtp://127.0.0.1:2525", "scimd@localhost").is_ok());
        assert!(Mailer::new("smtps://mail.example.com", "Directory <dir@example.com>").is_ok());
        assert!(Mailer::new("smtp://mail.example.com?tls=required", "a@example.com").is_ok());
        assert!(matches!(
            Mailer::new("http://mail.example.com", "a@example.com"),
            Err(MailerError::Url(_))
        ));
        assert!(matches!(
            Mailer::new("smtp://127.0.0.1:2525", "not an address"),
            Err(MailerError::From(_))
        ));
    }
}
