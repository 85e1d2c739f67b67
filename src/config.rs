//! Configuration: command-line flags and `SCIMD_*` environment variables,
//! with defaults that work on a laptop with nothing else installed.

use std::net::SocketAddr;

use clap::{ArgAction, Args, ValueEnum};

use crate::store::RateLimit;

/// Settings shared by every subcommand that touches the database.
#[derive(Args, Clone, Debug)]
pub struct DatabaseConfig {
    /// `sqlite://path` (created on first start) or `postgres://…`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://scimd.db",
        global = true
    )]
    pub database_url: String,

    /// Connections in the pool (PostgreSQL; readers on SQLite). Default:
    /// 16 on PostgreSQL; on SQLite twice the CPU cores (at least 4), since
    /// its readers run in this process and more threads than cores only
    /// add memory.
    #[arg(long, env = "SCIMD_DB_POOL_SIZE", global = true)]
    pub db_pool_size: Option<u32>,

    /// Single-user look-up statements (`GET /Users/{id}`, `userName eq`)
    /// run at once, and as many batched writes for `POST /Users` and for
    /// user PATCH/PUT; requests arriving meanwhile are answered together
    /// by the next ones. Default: half the CPU cores, at least 1. More suit
    /// a database on its own machine, where a statement waits on the
    /// network.
    #[arg(long, env = "SCIMD_DB_LOOKUP_STATEMENTS", global = true)]
    pub db_lookup_statements: Option<u32>,

    /// MiB of users the server keeps in memory for `GET /Users/{id}` and
    /// `userName eq` look-ups, so that those of users that have not changed
    /// since they were read cost no statement. Every write ends what it
    /// touched at once; on PostgreSQL other servers' writes arrive as
    /// notifications (`LISTEN`), and while those cannot be heard nothing
    /// is served from memory. 0 turns it off.
    #[arg(
        long,
        env = "SCIMD_USER_CACHE_MIB",
        default_value_t = 32,
        global = true
    )]
    pub user_cache_mib: u64,
}

/// How logs are written.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// The defaults of [`ServeConfig`], stated once for the flags and for
/// `ServeConfig::default()` (which tests start from).
pub(crate) mod defaults {
    use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

    pub const LISTEN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080));
    pub const MAX_PAGE_SIZE: u32 = 1000;
    pub const CURSOR_TIMEOUT_SECONDS: u64 = 3600;
    pub const MAX_BODY_BYTES: usize = 1_048_576;
    pub const BULK_MAX_OPERATIONS: usize = 1000;
    pub const KEY_CACHE_SECONDS: u64 = 30;
    pub const AUDIT_RETENTION_DAYS: u32 = 180;
    pub const AUDIT_PURGE_INTERVAL_SECONDS: u64 = 3600;
    pub const EVENT_RETENTION_DAYS: u32 = 30;
    pub const WEBHOOK_TIMEOUT_SECONDS: u64 = 10;
    pub const CONSOLE_SESSION_MINUTES: u32 = 480;
    pub const WEBHOOK_RETRY_SCHEDULE: &str = "5s,5m,30m,2h,5h,10h";
    pub const WEBHOOK_GIVE_UP_AFTER: &str = "3d";
    pub const WEBHOOK_ATTEMPT_RETENTION_DAYS: u32 = 14;
    /// Per directory: 8 times the 25 requests per second Microsoft Entra
    /// asks of gallery SCIM apps (docs/OPERATIONS.md, "Rate limits").
    pub const RATE_LIMIT_PER_SECOND: u32 = 200;
    pub const RATE_LIMIT_BURST: u32 = 1000;
    /// Per admin token.
    pub const ADMIN_RATE_LIMIT_PER_SECOND: u32 = 20;
    pub const ADMIN_RATE_LIMIT_BURST: u32 = 100;
    pub const DOMAIN_VERIFICATION_TIMEOUT_SECONDS: u64 = 5;
    pub const SMTP_FROM: &str = "scimd@localhost";
    /// The outbox's first retry comes after this; later ones after
    /// multiples of it (`mail::backoff`).
    pub const SMTP_RETRY_BASE: std::time::Duration = std::time::Duration::from_secs(30);
    /// How often the delivery worker looks for mail other processes queued.
    pub const SMTP_POLL: std::time::Duration = std::time::Duration::from_secs(5);
}

/// Settings of `scimd serve`.
#[derive(Args, Clone, Debug)]
pub struct ServeConfig {
    /// Address to listen on.
    #[arg(long, env = "SCIMD_LISTEN", default_value_t = defaults::LISTEN)]
    pub listen: SocketAddr,

    /// Public URL clients reach this server at; base URLs and
    /// `meta.location` are built from it. Defaults to `http://{listen}`.
    #[arg(long, env = "SCIMD_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Largest `count` a list request may ask for.
    #[arg(long, env = "SCIMD_MAX_PAGE_SIZE", default_value_t = defaults::MAX_PAGE_SIZE)]
    pub max_page_size: u32,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "SCIMD_MAX_BODY_BYTES", default_value_t = defaults::MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// Most operations one `POST /Bulk` may carry (its payload is bounded
    /// by --max-body-bytes).
    #[arg(long, env = "SCIMD_BULK_MAX_OPERATIONS", default_value_t = defaults::BULK_MAX_OPERATIONS)]
    pub bulk_max_operations: usize,

    /// Seconds a verified API key or admin token is trusted from memory
    /// before its stored hash is re-read (a rotation made by another
    /// process is noticed within this time; this process's own are
    /// immediate).
    #[arg(long, env = "SCIMD_KEY_CACHE_SECONDS", default_value_t = defaults::KEY_CACHE_SECONDS)]
    pub key_cache_seconds: u64,

    /// Seconds a paging cursor (`nextCursor`, RFC 9865) stays valid;
    /// advertised as `cursorTimeout`.
    #[arg(long, env = "SCIMD_CURSOR_TIMEOUT_SECONDS", default_value_t = defaults::CURSOR_TIMEOUT_SECONDS)]
    pub cursor_timeout_seconds: u64,

    /// Record audit events. Switching them off (`--audit=false`) exists
    /// only to measure what they cost.
    #[arg(
        long,
        env = "SCIMD_AUDIT",
        default_value_t = true,
        action = ArgAction::Set,
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub audit: bool,

    /// Days audit events are kept before the background purge deletes them.
    #[arg(
        long,
        env = "SCIMD_AUDIT_RETENTION_DAYS",
        default_value_t = defaults::AUDIT_RETENTION_DAYS,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub audit_retention_days: u32,

    /// Seconds between runs of the audit purge.
    #[arg(
        long,
        env = "SCIMD_AUDIT_PURGE_INTERVAL_SECONDS",
        default_value_t = defaults::AUDIT_PURGE_INTERVAL_SECONDS
    )]
    pub audit_purge_interval_seconds: u64,

    /// Days the event feed keeps events before the background purge
    /// (every `--audit-purge-interval-seconds`) deletes them.
    #[arg(
        long,
        env = "SCIMD_EVENT_RETENTION_DAYS",
        default_value_t = defaults::EVENT_RETENTION_DAYS,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub event_retention_days: u32,

    /// Take the source IP of audit events from the last `X-Forwarded-For`
    /// entry instead of the peer address. Only behind a proxy that sets it:
    /// otherwise clients choose their own address.
    #[arg(
        long,
        env = "SCIMD_TRUST_FORWARDED_FOR",
        default_value_t = false,
        action = ArgAction::Set,
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub trust_forwarded_for: bool,

    /// SCIM requests per second each directory may make (token bucket,
    /// keyed by the directory its API key belongs to); a directory's own
    /// limit, set through the admin API, takes precedence. 0 turns the
    /// default off (directories with their own limit keep it).
    #[arg(
        long,
        env = "SCIMD_RATE_LIMIT_PER_SECOND",
        default_value_t = defaults::RATE_LIMIT_PER_SECOND
    )]
    pub rate_limit_per_second: u32,

    /// SCIM requests a directory may make at once above its rate (the
    /// bucket's size).
    #[arg(
        long,
        env = "SCIMD_RATE_LIMIT_BURST",
        default_value_t = defaults::RATE_LIMIT_BURST,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub rate_limit_burst: u32,

    /// Admin API requests per second per admin token. 0 turns it off.
    #[arg(
        long,
        env = "SCIMD_ADMIN_RATE_LIMIT_PER_SECOND",
        default_value_t = defaults::ADMIN_RATE_LIMIT_PER_SECOND
    )]
    pub admin_rate_limit_per_second: u32,

    /// Admin API requests a token may make at once above its rate.
    #[arg(
        long,
        env = "SCIMD_ADMIN_RATE_LIMIT_BURST",
        default_value_t = defaults::ADMIN_RATE_LIMIT_BURST,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub admin_rate_limit_burst: u32,

    /// Serve `GET /metrics` (Prometheus) on this address instead of on
    /// the main listener, e.g. one only the monitoring network reaches.
    /// Unset, `/metrics` is on the main listener, without authentication
    /// (docs/OPERATIONS.md).
    #[arg(long, env = "SCIMD_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// A fixed admin token (for automation). When unset and the database
    /// has no admin token, one is generated and printed once at start.
    #[arg(long, env = "SCIMD_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    #[command(flatten)]
    pub domain_verification: DomainVerificationConfig,

    #[command(flatten)]
    pub smtp: SmtpConfig,

    #[command(flatten)]
    pub sync: SyncEngineConfig,

    #[command(flatten)]
    pub webhooks: WebhookConfig,

    /// Minutes a sign-in to the admin console (`/admin/`) lasts.
    #[arg(long, env = "SCIMD_CONSOLE_SESSION_MINUTES", default_value_t = defaults::CONSOLE_SESSION_MINUTES,
          value_parser = clap::value_parser!(u32).range(1..=10_080))]
    pub console_session_minutes: u32,
}

/// How webhooks are delivered (docs/WEBHOOKS.md).
#[derive(Args, Clone, Debug)]
pub struct WebhookConfig {
    /// Allow webhook URLs that reach loopback, private, link-local or
    /// cloud-metadata addresses (on-premises receivers, tests). Off, they
    /// are refused when saved and at every delivery.
    #[arg(long, env = "SCIMD_WEBHOOK_ALLOW_PRIVATE")]
    pub webhook_allow_private: bool,

    /// Seconds a receiver has to answer a delivery with a 2xx.
    #[arg(long, env = "SCIMD_WEBHOOK_TIMEOUT_SECONDS", default_value_t = defaults::WEBHOOK_TIMEOUT_SECONDS,
          value_parser = clap::value_parser!(u64).range(1..=60))]
    pub webhook_timeout_seconds: u64,

    /// The delays before each retry of a failed delivery, comma-separated;
    /// the last one repeats. Units ms, s, m, h, d.
    #[arg(long, env = "SCIMD_WEBHOOK_RETRY_SCHEDULE", default_value = defaults::WEBHOOK_RETRY_SCHEDULE,
          value_parser = check_retry_schedule)]
    pub webhook_retry_schedule: String,

    /// How long an endpoint may keep failing before it is marked failing
    /// and waits for an admin.
    #[arg(long, env = "SCIMD_WEBHOOK_GIVE_UP_AFTER", default_value = defaults::WEBHOOK_GIVE_UP_AFTER,
          value_parser = check_duration)]
    pub webhook_give_up_after: String,

    /// Days delivery attempts are kept for `GET …/webhooks/{id}/attempts`.
    #[arg(long, env = "SCIMD_WEBHOOK_ATTEMPT_RETENTION_DAYS", default_value_t = defaults::WEBHOOK_ATTEMPT_RETENTION_DAYS,
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub webhook_attempt_retention_days: u32,

    /// Seconds a process's hold on an endpoint lasts without renewal: an
    /// endpoint whose process died is taken over this long after. At
    /// least the timeout and 5 seconds.
    #[arg(
        long,
        env = "SCIMD_WEBHOOK_LEASE_SECONDS",
        default_value_t = 30,
        hide = true
    )]
    pub webhook_lease_seconds: u64,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            webhook_allow_private: false,
            webhook_timeout_seconds: defaults::WEBHOOK_TIMEOUT_SECONDS,
            webhook_retry_schedule: defaults::WEBHOOK_RETRY_SCHEDULE.to_owned(),
            webhook_give_up_after: defaults::WEBHOOK_GIVE_UP_AFTER.to_owned(),
            webhook_attempt_retention_days: defaults::WEBHOOK_ATTEMPT_RETENTION_DAYS,
            webhook_lease_seconds: 30,
        }
    }
}

impl WebhookConfig {
    /// The deliverer's settings; the schedule was checked when parsed.
    pub fn delivery(&self) -> Result<crate::webhooks::delivery::DeliveryConfig, String> {
        let timeout = std::time::Duration::from_secs(self.webhook_timeout_seconds.max(1));
        let lease = std::time::Duration::from_secs(self.webhook_lease_seconds)
            .max(timeout + std::time::Duration::from_secs(5));
        let retry = crate::webhooks::backoff::RetryPolicy::parse(
            &self.webhook_retry_schedule,
            &self.webhook_give_up_after,
        )
        .map_err(|e| format!("webhook retry settings: {e}"))?;
        Ok(crate::webhooks::delivery::DeliveryConfig {
            allow_private: self.webhook_allow_private,
            timeout,
            lease,
            retry,
        })
    }
}

fn check_retry_schedule(text: &str) -> Result<String, String> {
    crate::webhooks::backoff::RetryPolicy::parse(text, "1s")
        .map(|_| text.to_owned())
        .map_err(|e| e.to_string())
}

fn check_duration(text: &str) -> Result<String, String> {
    crate::webhooks::backoff::parse_duration(text)
        .map(|_| text.to_owned())
        .map_err(|e| e.to_string())
}

/// How the sync engine runs (docs/ADMIN_API.md, "Sync runs").
#[derive(Args, Clone, Debug)]
pub struct SyncEngineConfig {
    /// Users one group may bring in one sync, for directories that set no
    /// limit of their own. Atlassian's limit is 10,000.
    #[arg(long, env = "SCIMD_SYNC_GROUP_USER_LIMIT", default_value_t = crate::directory::sync_settings::DEFAULT_GROUP_USER_LIMIT,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub sync_group_user_limit: u32,

    /// Accounts a run writes per transaction (at most 10,000).
    #[arg(long, env = "SCIMD_SYNC_BATCH_SIZE", default_value_t = crate::sync::MAX_BATCH,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub sync_batch_size: u32,

    /// Seconds a run's lease lasts without renewal: a process that dies
    /// mid-run has its run taken over this long after its last batch.
    #[arg(long, env = "SCIMD_SYNC_LEASE_SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub sync_lease_seconds: u64,

    /// Milliseconds between the scheduler's looks for due scheduled syncs
    /// and abandoned runs.
    #[arg(long, env = "SCIMD_SYNC_TICK_MS", default_value_t = 2000,
          value_parser = clap::value_parser!(u64).range(10..=600_000))]
    pub sync_tick_ms: u64,

    /// Milliseconds a run waits after each batch: 0 in production; tests
    /// slow runs down with it to stop one midway.
    #[arg(
        long,
        env = "SCIMD_SYNC_BATCH_PAUSE_MS",
        default_value_t = 0,
        hide = true
    )]
    pub sync_batch_pause_ms: u64,

    /// Milliseconds the continuous path waits before applying what SCIM
    /// writes changed: 0 in production; tests hold changes back with it to
    /// stop a process before it applied them.
    #[arg(
        long,
        env = "SCIMD_SYNC_APPLY_PAUSE_MS",
        default_value_t = 0,
        hide = true
    )]
    pub sync_apply_pause_ms: u64,
}

impl Default for SyncEngineConfig {
    fn default() -> Self {
        SyncEngineConfig {
            sync_group_user_limit: crate::directory::sync_settings::DEFAULT_GROUP_USER_LIMIT,
            sync_batch_size: crate::sync::MAX_BATCH,
            sync_lease_seconds: 30,
            sync_tick_ms: 2000,
            sync_batch_pause_ms: 0,
            sync_apply_pause_ms: 0,
        }
    }
}

/// How the email outbox is delivered.
#[derive(Args, Clone, Debug)]
pub struct SmtpConfig {
    /// The SMTP server that delivers the outbox's email:
    /// `smtp://host:port` (plain), `smtp://host?tls=required` (STARTTLS,
    /// port 587 by default), `smtps://host` (TLS, port 465 by default),
    /// with `user:password@` to authenticate. Unset: email stays in the
    /// outbox (`GET /admin/v1/orgs/{orgId}/outbox`), unsent.
    #[arg(long, env = "SCIMD_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// The sender of the outbox's email (`addr` or `Name <addr>`).
    #[arg(long, env = "SCIMD_SMTP_FROM", default_value = defaults::SMTP_FROM)]
    pub smtp_from: String,

    /// The first retry's delay (tests shorten it).
    #[arg(skip = defaults::SMTP_RETRY_BASE)]
    pub smtp_retry_base: std::time::Duration,

    /// How often the worker looks for mail queued by other processes
    /// (tests shorten it).
    #[arg(skip = defaults::SMTP_POLL)]
    pub smtp_poll: std::time::Duration,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            smtp_url: None,
            smtp_from: defaults::SMTP_FROM.to_owned(),
            smtp_retry_base: defaults::SMTP_RETRY_BASE,
            smtp_poll: defaults::SMTP_POLL,
        }
    }
}

/// How `POST …/domains/{name}/verify` reaches the domain.
#[derive(Args, Clone, Debug, Default)]
pub struct DomainVerificationConfig {
    /// The DNS server (`IP:PORT`) that domain checks ask, for TXT records
    /// and for the address of the HTTP check. Unset: the system's
    /// resolver configuration (`/etc/resolv.conf`).
    #[arg(long, env = "SCIMD_DNS_NAMESERVER")]
    pub dns_nameserver: Option<SocketAddr>,

    /// The port of the HTTP check's `https://` request. Unset: 443.
    #[arg(long, env = "SCIMD_DOMAIN_VERIFICATION_HTTPS_PORT")]
    pub domain_verification_https_port: Option<u16>,

    /// The port of the HTTP check's `http://` request, made when
    /// `https://` cannot connect. Unset: 80.
    #[arg(long, env = "SCIMD_DOMAIN_VERIFICATION_HTTP_PORT")]
    pub domain_verification_http_port: Option<u16>,

    /// Seconds a DNS query, a connection or a whole HTTP request of a
    /// domain check may take. Unset: 5.
    #[arg(long, env = "SCIMD_DOMAIN_VERIFICATION_TIMEOUT_SECONDS", value_parser = clap::value_parser!(u64).range(1..=60))]
    pub domain_verification_timeout_seconds: Option<u64>,
}

impl DomainVerificationConfig {
    pub fn checker(&self) -> crate::domain_check::DomainChecker {
        crate::domain_check::DomainChecker {
            nameserver: self.dns_nameserver,
            https_port: self.domain_verification_https_port,
            http_port: self.domain_verification_http_port,
            timeout: std::time::Duration::from_secs(
                self.domain_verification_timeout_seconds
                    .unwrap_or(defaults::DOMAIN_VERIFICATION_TIMEOUT_SECONDS),
            ),
        }
    }
}

impl ServeConfig {
    /// The default rate of each directory; None when off.
    pub fn scim_rate_limit(&self) -> Option<RateLimit> {
        rate_limit(self.rate_limit_per_second, self.rate_limit_burst)
    }

    /// The rate of each admin token; None when off.
    pub fn admin_rate_limit(&self) -> Option<RateLimit> {
        rate_limit(
            self.admin_rate_limit_per_second,
            self.admin_rate_limit_burst,
        )
    }

    /// The public URL without a trailing slash.
    pub fn public_url(&self, bound: SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{bound}"),
        }
    }
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: defaults::LISTEN,
            public_url: None,
            max_page_size: defaults::MAX_PAGE_SIZE,
            max_body_bytes: defaults::MAX_BODY_BYTES,
            key_cache_seconds: defaults::KEY_CACHE_SECONDS,
            cursor_timeout_seconds: defaults::CURSOR_TIMEOUT_SECONDS,
            bulk_max_operations: defaults::BULK_MAX_OPERATIONS,
            audit: true,
            audit_retention_days: defaults::AUDIT_RETENTION_DAYS,
            audit_purge_interval_seconds: defaults::AUDIT_PURGE_INTERVAL_SECONDS,
            event_retention_days: defaults::EVENT_RETENTION_DAYS,
            trust_forwarded_for: false,
            rate_limit_per_second: defaults::RATE_LIMIT_PER_SECOND,
            rate_limit_burst: defaults::RATE_LIMIT_BURST,
            admin_rate_limit_per_second: defaults::ADMIN_RATE_LIMIT_PER_SECOND,
            admin_rate_limit_burst: defaults::ADMIN_RATE_LIMIT_BURST,
            metrics_listen: None,
            admin_token: None,
            domain_verification: DomainVerificationConfig::default(),
            smtp: SmtpConfig::default(),
            sync: SyncEngineConfig::default(),
            webhooks: WebhookConfig::default(),
            console_session_minutes: defaults::CONSOLE_SESSION_MINUTES,
        }
    }
}

fn rate_limit(per_second: u32, burst: u32) -> Option<RateLimit> {
    (per_second > 0).then_some(RateLimit {
        per_second,
        burst: burst.max(1),
    })
}

/// Default number of results on a list request without `count`.
pub use crate::scim::list::DEFAULT_PAGE_SIZE;

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Serve {
        #[command(flatten)]
        serve: ServeConfig,
    }

    fn parse(args: &[&str]) -> Result<ServeConfig, clap::Error> {
        Serve::try_parse_from(std::iter::once("scimd").chain(args.iter().copied())).map(|s| s.serve)
    }

    #[test]
    fn rate_limits_default_to_the_documented_values_and_zero_turns_them_off() {
        let config = parse(&[]).unwrap();
        assert_eq!(
            config.scim_rate_limit(),
            Some(RateLimit {
                per_second: 200,
                burst: 1000
            })
        );
        assert_eq!(
            config.admin_rate_limit(),
            Some(RateLimit {
                per_second: 20,
                burst: 100
            })
        );
        assert_eq!(
            ServeConfig::default().scim_rate_limit(),
            config.scim_rate_limit()
        );
        let config = parse(&[
            "--rate-limit-per-second",
            "0",
            "--admin-rate-limit-per-second",
            "3",
            "--admin-rate-limit-burst",
            "4",
        ])
        .unwrap();
        assert_eq!(config.scim_rate_limit(), None);
        assert_eq!(
            config.admin_rate_limit(),
            Some(RateLimit {
                per_second: 3,
                burst: 4
            })
        );
        assert!(parse(&["--rate-limit-burst", "0"]).is_err());
        assert!(parse(&["--admin-rate-limit-burst", "0"]).is_err());
        assert!(parse(&["--rate-limit-per-second", "-1"]).is_err());
    }

    #[test]
    fn smtp_is_off_unless_a_url_is_given() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.smtp.smtp_url, None);
        assert_eq!(config.smtp.smtp_from, "scimd@localhost");
        assert_eq!(config.smtp.smtp_retry_base.as_secs(), 30);
        assert_eq!(ServeConfig::default().smtp.smtp_from, config.smtp.smtp_from);
        let config = parse(&[
            "--smtp-url",
            "smtp://127.0.0.1:2525",
            "--smtp-from",
            "Directory <dir@example.com>",
        ])
        .unwrap();
        assert_eq!(
            config.smtp.smtp_url.as_deref(),
            Some("smtp://127.0.0.1:2525")
        );
        assert_eq!(config.smtp.smtp_from, "Directory <dir@example.com>");
    }

    #[test]
    fn domain_checks_default_to_the_system_resolver_and_standard_ports() {
        let checker = parse(&[]).unwrap().domain_verification.checker();
        assert_eq!(checker.nameserver, None);
        assert_eq!((checker.https_port, checker.http_port), (None, None));
        assert_eq!(checker.timeout, std::time::Duration::from_secs(5));
        assert_eq!(
            ServeConfig::default().domain_verification.checker().timeout,
            checker.timeout
        );
        let checker = parse(&[
            "--dns-nameserver",
            "127.0.0.1:5353",
            "--domain-verification-https-port",
            "8443",
            "--domain-verification-http-port",
            "8080",
            "--domain-verification-timeout-seconds",
            "2",
        ])
        .unwrap()
        .domain_verification
        .checker();
        assert_eq!(checker.nameserver, Some("127.0.0.1:5353".parse().unwrap()));
        assert_eq!(
            (checker.https_port, checker.http_port),
            (Some(8443), Some(8080))
        );
        assert_eq!(checker.timeout, std::time::Duration::from_secs(2));
        assert!(parse(&["--dns-nameserver", "dns.example:53"]).is_err());
        assert!(parse(&["--domain-verification-timeout-seconds", "0"]).is_err());
    }
}
