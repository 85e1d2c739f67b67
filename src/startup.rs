//! Builds and runs the application: config -> store -> router -> listener.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::auth::{new_admin_token, AuthError, Authenticator};
use crate::config::ServeConfig;
use crate::http::metrics::CountConnections;
use crate::http::{router, AppState, Settings};
use crate::scim::cursor::CursorKey;
use crate::store::{Store, StoreError};

/// A bound, ready-to-serve application.
pub struct Application {
    listener: TcpListener,
    /// `--metrics-listen`: `/metrics` on a listener of its own.
    metrics_listener: Option<TcpListener>,
    state: AppState,
    purge_every: Duration,
    /// `--smtp-url`: the outbox's delivery worker, started by `run_until`.
    mailer: Option<(crate::mail::delivery::Mailer, crate::mail::delivery::Timing)>,
    /// What the sync engine's continuous worker reads.
    touches: tokio::sync::mpsc::UnboundedReceiver<crate::sync::Touch>,
    /// An admin token generated at this start (first start, empty database,
    /// no configured token); `main` prints it once.
    pub generated_admin_token: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("server error")]
    Serve(#[source] std::io::Error),
    #[error(transparent)]
    Mailer(#[from] crate::mail::delivery::MailerError),
    #[error("{0}")]
    Config(String),
}

impl Application {
    /// Migrates the store, makes sure the default organisation and an admin
    /// credential exist, and binds the listener (port 0 picks a free port).
    pub async fn build(config: &ServeConfig, store: Store) -> Result<Self, StartupError> {
        store.migrate().await?;
        store.optimize().await?;
        store.ensure_default_org().await?;
        let generated_admin_token =
            if config.admin_token.is_none() && store.count_admin_tokens().await? == 0 {
                let token = new_admin_token().await?;
                store.insert_admin_token(&token.id, &token.hash).await?;
                Some(token.secret)
            } else {
                None
            };
        // Checked before the listener binds: a mistyped URL stops the
        // start instead of leaving email unsent.
        let mailer = match &config.smtp.smtp_url {
            Some(url) => Some((
                crate::mail::delivery::Mailer::new(url, &config.smtp.smtp_from)?,
                crate::mail::delivery::Timing {
                    retry_base: config.smtp.smtp_retry_base,
                    poll: config.smtp.smtp_poll,
                },
            )),
            None => None,
        };
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartupError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartupError::Bind { addr, source })?,
            ),
            None => None,
        };
        let bound = listener.local_addr().map_err(|source| StartupError::Bind {
            addr: config.listen,
            source,
        })?;
        let settings = Settings {
            public_url: config.public_url(bound),
            max_page_size: config.max_page_size.max(1),
            max_body_bytes: config.max_body_bytes,
            bulk_max_operations: config.bulk_max_operations,
            audit: config.audit,
            trust_forwarded_for: config.trust_forwarded_for,
            audit_retention_days: config.audit_retention_days.max(1),
            event_retention_days: config.event_retention_days.max(1),
            cursor_key: CursorKey::new(&store.shared_secret("cursor").await?),
            cursor_timeout_seconds: config.cursor_timeout_seconds.max(1),
            scim_rate_limit: config.scim_rate_limit(),
            admin_rate_limit: config.admin_rate_limit(),
            domain_checker: config.domain_verification.checker(),
            webhooks: crate::webhooks::delivery::Deliverer::new(
                config.webhooks.delivery().map_err(StartupError::Config)?,
            ),
            webhook_attempt_retention_days: config.webhooks.webhook_attempt_retention_days.max(1),
            console_session_minutes: config.console_session_minutes.max(1),
        };
        let auth = Authenticator::new(
            store.clone(),
            config.admin_token.as_deref(),
            Duration::from_secs(config.key_cache_seconds),
        );
        let (engine, touches) =
            crate::sync::Engine::new(store.clone(), config.sync.clone(), config.audit);
        Ok(Application {
            listener,
            metrics_listener,
            touches,
            state: AppState::new(store, auth, settings, engine),
            purge_every: Duration::from_secs(config.audit_purge_interval_seconds),
            mailer,
            generated_admin_token,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Where `/metrics` is served when it has a listener of its own.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    pub fn public_url(&self) -> &str {
        &self.state.settings.public_url
    }

    /// Serves until `shutdown` resolves; in-flight requests then finish.
    /// The audit purge runs in the background meanwhile, and so do the
    /// outbox's delivery worker (with `--smtp-url`) and the metrics
    /// listener if there is one; otherwise `/metrics` is merged
    /// into the main router after its layers, so a scrape is neither
    /// counted nor traced.
    pub async fn run_until<F>(self, shutdown: F) -> Result<(), StartupError>
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let _sync = self.state.sync.spawn_background(self.touches);
        let purger = crate::audit::purge::spawn(
            self.state.store.clone(),
            self.state.settings.audit_retention_days,
            self.purge_every,
        );
        let feed = crate::feed::spawn(
            self.state.store.clone(),
            crate::feed::Retention {
                events_days: self.state.settings.event_retention_days,
                webhook_attempts_days: self.state.settings.webhook_attempt_retention_days,
            },
            self.purge_every,
        );
        let webhooks = crate::webhooks::delivery::spawn(
            self.state.store.clone(),
            self.state.settings.webhooks.clone(),
        );
        let delivery = self.mailer.map(|(mailer, timing)| {
            crate::mail::delivery::spawn(self.state.store.clone(), mailer, timing)
        });
        let metrics = crate::http::metrics::router(self.state.clone());
        let (app, metrics_server) = match self.metrics_listener {
            Some(listener) => (
                router(self.state.clone()),
                Some(tokio::spawn(async move {
                    if let Err(e) = axum::serve(listener, metrics).await {
                        tracing::error!(error = %crate::telemetry::ErrorChain(&e), "the metrics listener stopped");
                    }
                })),
            ),
            // Merged into `/metrics`'s router, not the other way round:
            // merging two routers keeps the fallback of the one merged in,
            // and the main router's is the one its layers (the request
            // metrics among them) wrap.
            None => (metrics.merge(router(self.state.clone())), None),
        };
        let connections = CountConnections::new(
            app.into_make_service_with_connect_info::<SocketAddr>(),
            self.state.metrics.open_connections().clone(),
        );
        let served = axum::serve(self.listener, connections)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(StartupError::Serve);
        if let Some(server) = metrics_server {
            server.abort();
            let _ = server.await;
        }
        purger.abort();
        let _ = purger.await;
        webhooks.stop().await;
        feed.stop().await;
        if let Some(delivery) = delivery {
            delivery.stop().await;
        }
        self.state.store.close().await;
        served
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
