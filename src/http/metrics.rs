//! `GET /metrics`, the layer that counts requests by route template, and
//! the count of open client connections.
//!
//! `/metrics` is mounted after every other layer (see `startup.rs`): it is
//! neither counted as traffic, traced, nor subject to what guards the API.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::metrics::gauge::Gauge;
use tower::Service;

use super::AppState;
use crate::metrics::CONTENT_TYPE;
use crate::scim::ScimError;
use crate::telemetry::ErrorChain;

/// The router of `GET /metrics` alone: merged into the main router, or
/// served on `--metrics-listen`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(state)
}

async fn scrape(State(state): State<AppState>) -> Response {
    match state.metrics.render() {
        Ok(text) => {
            let mut resp = text.into_response();
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
            resp
        }
        Err(e) => {
            tracing::error!(error = %ErrorChain(&e), "metrics could not be encoded");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The layer around every route: counts the request by method, route
/// template (axum's `MatchedPath`, never the path itself) and status, times
/// it to its response's head, and counts a SCIM error response by its
/// `scimType`.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    state.metrics.observe_request(
        method.as_str(),
        route.as_ref().map(MatchedPath::as_str),
        status,
        started.elapsed(),
    );
    if let Some(error) = resp.extensions().get::<ScimError>() {
        state
            .metrics
            .scim_error(error.scim_type.map(|t| t.as_str()), error.status);
    }
    resp
}

/// A make-service that counts the connections it serves: the gauge goes up
/// when a connection is accepted and down when the service made for it, and
/// every clone of it, is dropped, which hyper does when the connection
/// closes.
#[derive(Clone)]
pub struct CountConnections<M> {
    inner: M,
    open: Gauge,
}

impl<M> CountConnections<M> {
    pub fn new(inner: M, open: Gauge) -> Self {
        CountConnections { inner, open }
    }
}

/// Held by a connection's service and its clones; its drop is the close.
struct OpenConnection(Gauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The service of one counted connection.
#[derive(Clone)]
pub struct Counted<S> {
    inner: S,
    _open: Arc<OpenConnection>,
}

type Made<S, E> = Pin<Box<dyn Future<Output = Result<Counted<S>, E>> + Send>>;

impl<M, T> Service<T> for CountConnections<M>
where
    M: Service<T>,
    M::Future: Send + 'static,
    M::Response: 'static,
    M::Error: 'static,
{
    type Response = Counted<M::Response>;
    type Error = M::Error;
    type Future = Made<M::Response, M::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, target: T) -> Self::Future {
        self.open.inc();
        let open = Arc::new(OpenConnection(self.open.clone()));
        let made = self.inner.call(target);
        Box::pin(async move {
            let inner = made.await?;
            Ok(Counted { inner, _open: open })
        })
    }
}

impl<S, R> Service<R> for Counted<S>
where
    S: Service<R, Error = Infallible>,
{
    type Response = S::Response;
    type Error = Infallible;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        self.inner.call(req)
    }
}
