//! Email to people the directory provisions: what a message is before it
//! is queued ([`NewEmail`]), the welcome message a new account gets
//! ([`welcome`]), the states a queued message goes through
//! ([`OutboxState`]) and when a failed one is tried again ([`backoff`]).
//! All of that is pure; [`delivery`] is the one part that talks to an
//! SMTP server.
//!
//! Messages are queued in the `outbox` table inside the transaction of
//! the change that causes them (`store::outbox::enqueue_email`), so a
//! change that rolls back queues nothing and a committed one cannot lose
//! its message.

use std::time::Duration;

use uuid::Uuid;

pub mod delivery;
pub mod welcome;

/// The longest recipient address accepted (RFC 5321's path limit).
pub const MAX_RECIPIENT_CHARS: usize = 254;

/// An address a message can be sent to: one `@` with something on each
/// side, no white space, no control characters and none of the characters
/// that would let it be read as several addresses or a display name.
/// Whether the mailbox exists is the receiving server's to say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient(String);

impl Recipient {
    pub fn parse(raw: &str) -> Result<Recipient, String> {
        let addr = raw.trim();
        let bad = || format!("'{}' is not an email address", addr.escape_debug());
        if addr.is_empty() || addr.chars().count() > MAX_RECIPIENT_CHARS {
            return Err(bad());
        }
        if addr.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"')
        }) {
            return Err(bad());
        }
        match addr.split_once('@') {
            Some((local, domain))
                if !local.is_empty() && !domain.is_empty() && !domain.contains('@') =>
            {
                Ok(Recipient(addr.to_owned()))
            }
            _ => Err(bad()),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A message to queue: who it goes to, what it says, what it is about,
/// and the key that keeps it from being queued twice.
#[derive(Clone, Debug)]
pub struct NewEmail {
    pub org_id: Uuid,
    /// The directory whose sync caused it, if any.
    pub directory_id: Option<Uuid>,
    /// The account it is about, if any.
    pub account_id: Option<Uuid>,
    /// What kind of message it is (`welcome`), for the admin's list.
    pub kind: &'static str,
    /// At most one message per key and organisation: a second enqueue
    /// with the same key is a no-op. `None`: no such guard.
    pub dedup_key: Option<String>,
    pub recipient: Recipient,
    pub subject: String,
    /// Plain text.
    pub body: String,
}

/// Where a queued message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutboxState {
    /// Waiting for its next attempt (`nextAttemptAt`).
    Pending,
    /// A worker holds it and is talking to the SMTP server now.
    Sending,
    /// The SMTP server accepted it.
    Sent,
    /// Refused for good (a permanent SMTP error, or every attempt used);
    /// an admin may retry it.
    Failed,
    /// Its worker stopped mid-send: it may or may not have arrived, so it
    /// is not sent again unless an admin retries it.
    Uncertain,
}

impl OutboxState {
    pub const ALL: [OutboxState; 5] = [
        OutboxState::Pending,
        OutboxState::Sending,
        OutboxState::Sent,
        OutboxState::Failed,
        OutboxState::Uncertain,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Pending => "pending",
            OutboxState::Sending => "sending",
            OutboxState::Sent => "sent",
            OutboxState::Failed => "failed",
            OutboxState::Uncertain => "uncertain",
        }
    }

    pub fn parse(raw: &str) -> Option<OutboxState> {
        OutboxState::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// An admin may send it again.
    pub fn retryable(self) -> bool {
        matches!(self, OutboxState::Failed | OutboxState::Uncertain)
    }
}

/// Attempts a message gets before it is `failed`.
pub const MAX_ATTEMPTS: u32 = 6;

/// The delay before attempt `n + 1`, after `n` failed ones, as multiples
/// of the base delay: with the default 30 s base, 30 s, 2 min, 10 min,
/// 1 h and 3 h. A mail server that refuses for a while (greylisting, a
/// restart) is given hours, not seconds, before the message is given up.
const BACKOFF_STEPS: [u32; 5] = [1, 4, 20, 120, 360];

/// When attempt `failed + 1` may run, after `failed` (at least 1) failed
/// attempts; `None` once [`MAX_ATTEMPTS`] are used. `jitter` in `[0, 1)`
/// spreads the delay by ±20%, so messages that failed together (a server
/// down for a minute) do not all come back at one instant.
pub fn backoff(base: Duration, failed: u32, jitter: f64) -> Option<Duration> {
    if failed >= MAX_ATTEMPTS {
        return None;
    }
    let step = BACKOFF_STEPS
        .get(failed.saturating_sub(1) as usize)
        .or(BACKOFF_STEPS.last())
        .copied()
        .unwrap_or(1);
    let factor = 0.8 + 0.4 * jitter.clamp(0.0, 1.0);
    Some(base.saturating_mul(step).mul_f64(factor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_are_single_plain_addresses() {
        assert_eq!(
            Recipient::parse(" ada@example.com ").unwrap().as_str(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "a@b@c",
            "ada lovelace@example.com",
            "ada@example.com\r\nBcc: eve@example.com",
            "ada@example.com, eve@example.com",
            "Ada <ada@example.com>",
        ] {
            assert!(Recipient::parse(bad).is_err(), "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Recipient::parse(&long).is_err());
    }

    #[test]
    fn states_round_trip_and_only_failed_and_uncertain_are_retried() {
        for s in OutboxState::ALL {
            assert_eq!(OutboxState::parse(s.as_str()), Some(s));
        }
        assert_eq!(OutboxState::parse("Sent"), None);
        let retryable: Vec<_> = OutboxState::ALL
            .into_iter()
            .filter(|s| s.retryable())
            .collect();
        assert_eq!(retryable, [OutboxState::Failed, OutboxState::Uncertain]);
    }

    #[test]
    fn backoff_grows_then_gives_up() {
        let base = Duration::from_secs(30);
        let mid: Vec<u64> = (1..MAX_ATTEMPTS)
            .map(|n| backoff(base, n, 0.5).unwrap().as_secs())
            .collect();
        assert_eq!(mid, [30, 120, 600, 3600, 10_800]);
        assert_eq!(backoff(base, MAX_ATTEMPTS, 0.5), None);
        // Jitter stays within ±20%.
        assert_eq!(backoff(base, 1, 0.0).unwrap(), Duration::from_secs(24));
        assert_eq!(backoff(base, 1, 1.0).unwrap(), Duration::from_secs(36));
        assert_eq!(backoff(base, 1, 7.0).unwrap(), Duration::from_secs(36));
    }
}
