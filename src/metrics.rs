//! The server's metrics, in the Prometheus (OpenMetrics) text format.
//!
//! Each application has its own [`Metrics`]: its own registry, holding the
//! instruments of its own store and authenticator beside the HTTP ones.
//! Nothing is global, so several servers in one process (the tests start
//! dozens) each report only their own traffic. docs/OPERATIONS.md lists
//! every series.

use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::auth::Authenticator;
use crate::store::Store;

/// The media type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The `route` label of a request that matched no route: a fixed value, so
/// that probes of random paths cannot create series.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Upper bounds, in seconds, of the request-duration buckets: a look-up
/// answered from memory takes well under a millisecond, a large Bulk
/// request or report seconds.
const REQUEST_DURATION_BUCKETS: [f64; 14] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScimErrorLabels {
    scim_type: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn request_duration() -> Histogram {
    Histogram::new(REQUEST_DURATION_BUCKETS)
}

/// One application's registry and the instruments it records into itself.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: HistogramFamily<RequestLabels>,
    scim_errors: Family<ScimErrorLabels, Counter>,
    audit_failures: Family<ActionLabels, Counter>,
    audit_write_failures: Counter,
    open_connections: Gauge,
    pool_max: Gauge,
    pool_connections: Family<StateLabels, Gauge>,
    /// Absent where the process's memory cannot be read (not Linux).
    resident_memory: Option<Gauge>,
    store: Store,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A registry with the HTTP instruments, and those `store` and `auth`
    /// keep themselves.
    pub fn new(store: &Store, auth: &Authenticator) -> Metrics {
        let mut registry = Registry::default();
        let resident_memory = resident_memory_bytes().map(|bytes| {
            let gauge = Gauge::default();
            gauge.set(bytes);
            registry.register_with_unit(
                "process_resident_memory",
                "Resident memory of the process (RSS)",
                Unit::Bytes,
                gauge.clone(),
            );
            gauge
        });
        let metrics = Metrics {
            registry: Registry::default(),
            requests: Family::default(),
            durations: HistogramFamily::new_with_constructor(request_duration),
            scim_errors: Family::default(),
            audit_failures: Family::default(),
            audit_write_failures: Counter::default(),
            open_connections: Gauge::default(),
            pool_max: Gauge::default(),
            pool_connections: Family::default(),
            resident_memory,
            store: store.clone(),
        };
        let scimd = registry.sub_registry_with_prefix("scimd");
        scimd.register(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            metrics.requests.clone(),
        );
        scimd.register_with_unit(
            "http_request_duration",
            "Time from a request's arrival to its response's head, by method, route template and status",
            Unit::Seconds,
            metrics.durations.clone(),
        );
        scimd.register(
            "http_open_connections",
            "Client TCP connections currently open on the main listener",
            metrics.open_connections.clone(),
        );
        scimd.register(
            "scim_errors",
            "SCIM error responses, by scimType (none when the error has none) and status",
            metrics.scim_errors.clone(),
        );
        scimd.register(
            "auth_verifications",
            "API key and admin token verifications, by credential kind and outcome",
            auth.verifications().clone(),
        );
        let store_metrics = store.metrics();
        scimd.register(
            "user_cache_hits",
            "User look-ups answered from memory",
            store_metrics.user_cache_hits.clone(),
        );
        scimd.register(
            "user_cache_misses",
            "User look-ups that read the database while users are kept in memory",
            store_metrics.user_cache_misses.clone(),
        );
        scimd.register(
            "db_pool_max_connections",
            "Database connections the pool may hold (SQLite: readers)",
            metrics.pool_max.clone(),
        );
        scimd.register(
            "db_pool_connections",
            "Database connections of the pool by state: idle, or in_use (lent to a request)",
            metrics.pool_connections.clone(),
        );
        scimd.register_with_unit(
            "db_pool_acquire_wait",
            "Time taken to get a database connection from the pool",
            Unit::Seconds,
            store_metrics.acquire_wait.clone(),
        );
        scimd.register(
            "audit_failure_events",
            "Failed SCIM writes recorded in the audit log, by attempted action",
            metrics.audit_failures.clone(),
        );
        scimd.register(
            "audit_write_failures",
            "Failure events that could not be written to the audit log",
            metrics.audit_write_failures.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }

    /// Counts one answered request. `route` is the matched route template,
    /// never the path itself (`None`: no route matched).
    pub fn observe_request(
        &self,
        method: &str,
        route: Option<&str>,
        status: u16,
        elapsed: Duration,
    ) {
        let labels = RequestLabels {
            method: method_label(method),
            route: route.unwrap_or(UNMATCHED_ROUTE).to_owned(),
            status,
        };
        self.durations
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        self.requests.get_or_create(&labels).inc();
    }

    /// Counts one SCIM error response.
    pub fn scim_error(&self, scim_type: Option<&'static str>, status: u16) {
        let labels = ScimErrorLabels {
            scim_type: scim_type.unwrap_or("none"),
            status,
        };
        self.scim_errors.get_or_create(&labels).inc();
    }

    /// Counts a failure event written to the audit log.
    pub fn audit_failure_recorded(&self, action: &'static str) {
        self.audit_failures
            .get_or_create(&ActionLabels { action })
            .inc();
    }

    /// Counts a failure event that could not be written.
    pub fn audit_write_failed(&self) {
        self.audit_write_failures.inc();
    }

    /// The gauge of open client connections.
    pub fn open_connections(&self) -> &Gauge {
        &self.open_connections
    }

    /// The whole registry as OpenMetrics text, with the gauges that are
    /// read rather than counted (the pool, the process's memory) read now.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let pool = self.store.pool_status();
        self.pool_max.set(gauge_value(pool.max));
        for (state, n) in [("idle", pool.idle), ("in_use", pool.in_use)] {
            self.pool_connections
                .get_or_create(&StateLabels { state })
                .set(gauge_value(n));
        }
        if let (Some(gauge), Some(bytes)) = (&self.resident_memory, resident_memory_bytes()) {
            gauge.set(bytes);
        }
        let mut out = String::with_capacity(16 * 1024);
        encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

fn gauge_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The `method` label: the standard methods by name, anything else as
/// `other`, so that invented methods cannot create series.
fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
    ];
    KNOWN
        .into_iter()
        .find(|known| *known == method)
        .unwrap_or("other")
}

/// The process's resident memory, from `/proc/self/statm` (its second
/// field, in pages).
#[cfg(target_os = "linux")]
fn resident_memory_bytes() -> Option<i64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: i64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf reads a constant of the system; it has no
    // preconditions.
    let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    (page_size > 0).then(|| pages.saturating_mul(page_size))
}

#[cfg(not(target_os = "linux"))]
fn resident_memory_bytes() -> Option<i64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method_label("PATCH"), "PATCH");
        assert_eq!(method_label("BREW"), "other");
        assert_eq!(method_label("get"), "other");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn resident_memory_is_read_from_proc() {
        let bytes = resident_memory_bytes().unwrap();
        // More than the 2 MB a Rust test binary cannot be smaller than,
        // less than the machine.
        assert!(bytes > 2 << 20 && bytes < 1 << 40, "{bytes}");
    }
}
