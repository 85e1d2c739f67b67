//! The admin console (`/admin/`): server-rendered pages over the same
//! store and rules as the admin API, for admins who work in a browser.
//!
//! Signing in with an admin token starts a session: an `HttpOnly`,
//! `SameSite=Strict` cookie (`Secure` when the public URL is https) whose
//! value is random and whose SHA-256 is kept in the store. The token itself
//! is never put in a page, a URL or the cookie. Every form carries the
//! session's CSRF token, compared with the stored one; the sign-in form,
//! before any session, carries one that must match a cookie set with the
//! form (double submit). Every page is sent with a Content Security Policy
//! that allows no inline script, and may not be framed.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use maud::{html, Markup, DOCTYPE};
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::AppState;
use crate::telemetry::ErrorChain;

mod directory;
mod domains;
mod overview;
mod report;
mod sign_in;
mod sites;
mod webhooks;

/// The session cookie.
pub const SESSION_COOKIE: &str = "scimd_console";
/// The sign-in form's CSRF cookie.
pub const SIGN_IN_COOKIE: &str = "scimd_console_signin";

/// The console's routes, beside the admin API's `/admin/v1`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(|| async { Redirect::to("/admin/") }))
        .route("/admin/", get(home))
        .route("/admin/sign-in", get(sign_in::form).post(sign_in::submit))
        .route("/admin/sign-out", post(sign_in::sign_out))
        .route("/admin/orgs/{orgId}", get(overview::show))
        .route(
            "/admin/orgs/{orgId}/directories",
            post(overview::create_directory),
        )
        .route(
            "/admin/orgs/{orgId}/directories/{directoryId}",
            get(directory::show),
        )
        .route(
            "/admin/orgs/{orgId}/directories/{directoryId}/key",
            post(directory::regenerate_key),
        )
        .route(
            "/admin/orgs/{orgId}/directories/{directoryId}/delete",
            post(directory::delete),
        )
        .route(
            "/admin/orgs/{orgId}/directories/{directoryId}/sync",
            post(directory::sync_now),
        )
        .route(
            "/admin/orgs/{orgId}/directories/{directoryId}/sync/status",
            get(directory::sync_status),
        )
        .route(
            "/admin/orgs/{orgId}/directories/{directoryId}/sync/preview",
            post(directory::preview),
        )
        .route(
            "/admin/orgs/{orgId}/directories/{directoryId}/sync-settings",
            post(directory::save_settings),
        )
        .route(
            "/admin/orgs/{orgId}/domains",
            get(domains::show).post(domains::add),
        )
        .route(
            "/admin/orgs/{orgId}/domains/{domainName}/verify",
            post(domains::verify),
        )
        .route(
            "/admin/orgs/{orgId}/sites",
            get(sites::show).post(sites::add_site),
        )
        .route(
            "/admin/orgs/{orgId}/sites/{siteId}/products",
            post(sites::add_product),
        )
        .route(
            "/admin/orgs/{orgId}/sites/{siteId}/products/{key}/grants",
            post(sites::grant),
        )
        .route(
            "/admin/orgs/{orgId}/sites/{siteId}/products/{key}/grants/{groupId}/revoke",
            post(sites::revoke),
        )
        .route(
            "/admin/orgs/{orgId}/sites/{siteId}/products/{key}/settings",
            post(sites::settings),
        )
        .route("/admin/orgs/{orgId}/report", get(report::show))
        .route("/admin/orgs/{orgId}/report.csv", get(report::csv))
        .route(
            "/admin/orgs/{orgId}/webhooks",
            get(webhooks::list).post(webhooks::create),
        )
        .route(
            "/admin/orgs/{orgId}/webhooks/{webhookId}",
            get(webhooks::attempts),
        )
        .route("/admin/assets/console.js", get(script))
        .route("/admin/assets/console.css", get(stylesheet))
        .layer(axum::middleware::from_fn(security_headers))
}

async fn home(_session: Session) -> Redirect {
    Redirect::to("/admin/orgs/default")
}

const CSS: &str = include_str!("console.css");
const JS: &str = include_str!("console.js");

/// The console's one script: progressive (every page works without it),
/// loaded from a file as the CSP requires.
async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        JS,
    )
        .into_response()
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

/// What every console response carries.
async fn security_headers(req: axum::extract::Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

/// A submitted form's fields, in order (a name may repeat: checkboxes).
/// A form that cannot be read has no fields, and so no CSRF token: it is
/// refused like a forged one.
pub(crate) struct FormFields(Vec<(String, String)>);

impl FormFields {
    pub(crate) fn read(raw: &axum::extract::RawForm) -> FormFields {
        FormFields(serde_urlencoded::from_bytes(&raw.0).unwrap_or_default())
    }

    /// The first value of `name`; empty when absent.
    pub(crate) fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Every value of `name`.
    pub(crate) fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// A random value for a cookie or a CSRF token: 32 bytes, base64url.
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What the store keeps of a session cookie's value.
pub(crate) fn session_hash(value: &str) -> String {
    Sha256::digest(value.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Compares two secrets in time that does not depend on where they differ.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The value of cookie `name` in a request's headers.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value for the console: scoped to `/admin`, `HttpOnly`,
/// `SameSite=Strict`, and `Secure` behind https.
pub(crate) fn set_cookie(state: &AppState, name: &str, value: &str, max_age: i64) -> String {
    let secure = if state.settings.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    format!("{name}={value}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

/// A signed-in admin: the request carried a live session's cookie.
pub struct Session {
    pub token_id: String,
    pub csrf: String,
    /// The hash the store keeps the session under.
    pub id_hash: String,
    /// Who acts, for the audit events of the console's writes: the admin
    /// token signed in with, as through the admin API.
    pub audit: crate::audit::AuditContext,
}

/// Why a console request was not served.
pub enum ConsoleRejection {
    /// No session, or an expired one: to the sign-in page.
    SignIn,
    /// A form without the session's CSRF token.
    Csrf,
    /// A fault of the server; logged, shown as a plain page.
    Internal,
    /// No such organisation or directory.
    NotFound,
    /// The admin token's request rate is spent: try again after this.
    TooMany(std::time::Duration),
}

impl IntoResponse for ConsoleRejection {
    fn into_response(self) -> Response {
        match self {
            ConsoleRejection::SignIn => Redirect::to("/admin/sign-in").into_response(),
            ConsoleRejection::TooMany(wait) => {
                let seconds = crate::http::rate_limit::retry_after_seconds(wait);
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::RETRY_AFTER, seconds.to_string())],
                    page(
                        "Too many requests",
                        None,
                        html! {
                            h1 { "Too many requests" }
                            p { "This admin token has made more requests than its rate allows. Try again in " (seconds) " s." }
                        },
                    ),
                )
                    .into_response()
            }
            ConsoleRejection::Csrf => (
                StatusCode::FORBIDDEN,
                page(
                    "Refused",
                    None,
                    html! {
                        h1 { "This form has expired" }
                        p { "The form was not sent from this console session. Go back, reload the page and try again." }
                    },
                ),
            )
                .into_response(),
            ConsoleRejection::NotFound => (
                StatusCode::NOT_FOUND,
                page(
                    "Not found",
                    None,
                    html! {
                        h1 { "Not found" }
                        p { "There is no such organisation or directory. " a href="/admin/" { "Back to the console" } }
                    },
                ),
            )
                .into_response(),
            ConsoleRejection::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                page(
                    "Error",
                    None,
                    html! {
                        h1 { "Something went wrong" }
                        p { "The server could not answer; its log says why. Try again in a moment." }
                    },
                ),
            )
                .into_response(),
        }
    }
}

impl From<crate::http::error::AdminError> for ConsoleRejection {
    fn from(e: crate::http::error::AdminError) -> Self {
        use crate::http::error::AdminError;
        match e {
            AdminError::NotFound(_) | AdminError::Missing(_) => ConsoleRejection::NotFound,
            other => {
                tracing::error!(error = %ErrorChain(&other), "console request failed");
                ConsoleRejection::Internal
            }
        }
    }
}

/// The API's refusal of what the admin asked for, as its status and the
/// message to show beside the field; anything else (not found, a server
/// fault) stays a rejection.
pub(super) fn refusal(
    e: crate::http::error::AdminError,
) -> Result<(StatusCode, String), ConsoleRejection> {
    use crate::http::error::AdminError;
    let status = e.code().status();
    if status.is_client_error() && !matches!(e, AdminError::NotFound(_) | AdminError::Missing(_)) {
        Ok((status, e.to_string()))
    } else {
        Err(e.into())
    }
}

impl From<crate::store::StoreError> for ConsoleRejection {
    fn from(e: crate::store::StoreError) -> Self {
        tracing::error!(error = %ErrorChain(&e), "console request failed");
        ConsoleRejection::Internal
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = ConsoleRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let mut session = Session::read(state, &parts.headers)
            .await?
            .ok_or(ConsoleRejection::SignIn)?;
        // The console spends its token's admin request rate, as the API does.
        if let Err(wait) = state.limits.admin_tokens.check(&session.token_id, None) {
            return Err(ConsoleRejection::TooMany(wait));
        }
        session.audit = crate::http::extract::audit_context(
            parts,
            state,
            crate::audit::Actor::AdminToken(session.token_id.clone()),
        );
        Ok(session)
    }
}

impl Session {
    /// The live session a request's cookie names, if any.
    pub async fn read(
        state: &AppState,
        headers: &HeaderMap,
    ) -> Result<Option<Session>, crate::store::StoreError> {
        let Some(value) = cookie(headers, SESSION_COOKIE) else {
            return Ok(None);
        };
        let id_hash = session_hash(value);
        let Some(session) = state
            .store
            .console_session(&id_hash, crate::time::now_micros())
            .await?
        else {
            return Ok(None);
        };
        // A session lasts no longer than the token signed in with: one
        // revoked since (or a configured token the server no longer has)
        // ends it.
        let token_lives = if session.token_id == "env" {
            state.auth.has_configured_admin()
        } else {
            state
                .store
                .admin_token_hash(&session.token_id)
                .await?
                .is_some()
        };
        if !token_lives {
            state.store.delete_console_session(&id_hash).await?;
            return Ok(None);
        }
        Ok(Some(session).map(|s| Session {
            audit: crate::audit::AuditContext::new(
                crate::audit::Actor::AdminToken(s.token_id.clone()),
                None,
                None,
                state.settings.audit,
            ),
            token_id: s.token_id,
            csrf: s.csrf,
            id_hash,
        }))
    }

    /// Refuses a form that does not carry this session's CSRF token.
    pub fn check_csrf(&self, presented: &str) -> Result<(), ConsoleRejection> {
        if same_secret(presented, &self.csrf) {
            Ok(())
        } else {
            Err(ConsoleRejection::Csrf)
        }
    }
}

/// A whole page: the layout around `content`; with a session, the header
/// has the sign-out form.
pub(crate) fn page(title: &str, session: Option<&Session>, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · scimd" }
                link rel="stylesheet" href="/admin/assets/console.css";
                script src="/admin/assets/console.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/admin/" { "scimd" }
                    @if let Some(s) = session {
                        form method="post" action="/admin/sign-out" {
                            input type="hidden" name="csrf" value=(s.csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" { (content) }
            }
        }
    }
}
