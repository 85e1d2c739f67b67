//! HTTP: axum routers, one file per resource, and the extractors they share.

use crate::telemetry::ErrorChain;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::auth::Authenticator;
use crate::metrics::Metrics;
use crate::store::{RateLimit, Store};
use rate_limit::RateLimits;

pub mod admin;
pub mod audit;
pub mod console;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod openapi;
pub mod rate_limit;
pub mod scim;

/// What every handler may need. axum clones the state for the router,
/// each middleware and each extractor of every request, so it is one
/// `Arc`: one counter to bump instead of one per handle inside.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub store: Store,
    pub auth: Authenticator,
    pub settings: Arc<Settings>,
    /// This application's own metrics (with its store's and its
    /// authenticator's instruments).
    pub metrics: Metrics,
    /// Request-rate buckets per directory and per admin token.
    pub limits: RateLimits,
    /// The sync engine, which SCIM writes tell what they changed.
    pub sync: crate::sync::Engine,
}

impl AppState {
    pub fn new(
        store: Store,
        auth: Authenticator,
        settings: Settings,
        sync: crate::sync::Engine,
    ) -> Self {
        let metrics = Metrics::new(&store, &auth);
        AppState(Arc::new(Shared {
            store,
            auth,
            sync,
            limits: RateLimits::new(settings.scim_rate_limit, settings.admin_rate_limit),
            settings: Arc::new(settings),
            metrics,
        }))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// Request-handling settings resolved at start.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Public URL without a trailing slash.
    pub public_url: String,
    pub max_page_size: u32,
    pub max_body_bytes: usize,
    pub bulk_max_operations: usize,
    /// Write audit events (off only to measure what they cost).
    pub audit: bool,
    /// Take the source IP of events from `X-Forwarded-For`.
    pub trust_forwarded_for: bool,
    /// How long events are kept; the widest `reports/stats` window.
    pub audit_retention_days: u32,
    /// How long the event feed keeps events.
    pub event_retention_days: u32,
    /// Authenticates paging cursors; shared through the database, so every
    /// replica accepts every other's cursors.
    pub cursor_key: crate::scim::cursor::CursorKey,
    /// How long a `nextCursor` stays valid (`cursorTimeout`).
    pub cursor_timeout_seconds: u64,
    /// Each directory's request rate unless it has its own; None: off.
    pub scim_rate_limit: Option<RateLimit>,
    /// Each admin token's request rate; None: off.
    pub admin_rate_limit: Option<RateLimit>,
    /// How domain ownership is checked (DNS server, HTTP ports, timeout).
    pub domain_checker: crate::domain_check::DomainChecker,
    /// Sends webhook messages (the admin API's test message; the
    /// background deliverer has a clone).
    pub webhooks: crate::webhooks::delivery::Deliverer,
    /// How long webhook delivery attempts are kept.
    pub webhook_attempt_retention_days: u32,
    /// How long a console session lasts after sign-in.
    pub console_session_minutes: u32,
}

impl Settings {
    /// The Atlassian-style base URL of a directory.
    pub fn directory_base_url(&self, directory_id: uuid::Uuid) -> String {
        format!("{}/scim/directory/{directory_id}", self.public_url)
    }
}

pub fn router(state: AppState) -> Router {
    let body_limit = state.settings.max_body_bytes;
    let x_request_id = axum::http::HeaderName::from_static("x-request-id");
    // Rate limits are the outermost layer of the SCIM and admin routers
    // (and of nothing else): a request over its rate costs no handler, no
    // database work and no audit event.
    let scim = || {
        scim::router()
            .layer(from_fn_with_state(
                state.clone(),
                audit::record_scim_failures,
            ))
            .layer(from_fn_with_state(state.clone(), rate_limit::limit_scim))
    };
    let admin = admin::router().layer(from_fn_with_state(state.clone(), rate_limit::limit_admin));
    let atlassian = admin::atlassian::router()
        .layer(from_fn_with_state(state.clone(), rate_limit::limit_admin));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(openapi::serve))
        .nest("/scim/directory/{directory_id}", scim())
        .nest("/scim/v2", scim())
        .nest("/admin/v1", admin)
        .merge(console::router())
        .nest(admin::atlassian::PREFIX, atlassian)
        .fallback(not_found)
        .with_state(state.clone())
        .layer(from_fn_with_state(state.clone(), wake_event_sequencer))
        .layer(from_fn_with_state(state, metrics::track))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(TraceLayer::new_for_http())
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
}

/// After a write that succeeded, wakes the event feed's sequencer: the
/// write's events are committed, and a reader waiting on the feed gets
/// them at once rather than at the sequencer's next poll.
async fn wake_event_sequencer(
    State(state): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let writes = !matches!(
        *req.method(),
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    let resp = next.run(req).await;
    if writes && resp.status().is_success() {
        state.store.events_written();
    }
    resp
}

/// No route: under `/admin/v1` (its bare root, which the nested router
/// does not see) the admin API's JSON error, elsewhere an empty 404.
async fn not_found(uri: axum::http::Uri) -> axum::response::Response {
    if uri.path().starts_with("/admin/v1") {
        error::AdminError::NotFound("no such admin endpoint").into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

/// The process is up.
async fn healthz() -> &'static str {
    "ok"
}

/// The database answers.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = %ErrorChain(&e), "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}
