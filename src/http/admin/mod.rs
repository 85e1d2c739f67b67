//! The admin REST API (`/admin/v1`), authenticated with an admin token.

use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use uuid::Uuid;

use super::error::AdminError;
use super::AppState;

mod directories;
mod orgs;
mod reports;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/orgs", get(orgs::list).post(orgs::create))
        .route("/orgs/{org_id}", get(orgs::get))
        .route(
            "/orgs/{org_id}/directories",
            get(directories::list).post(directories::create),
        )
        .route(
            "/orgs/{org_id}/directories/{directory_id}",
            get(directories::get)
                .patch(directories::update)
                .delete(directories::delete),
        )
        .route(
            "/orgs/{org_id}/directories/{directory_id}/api-key",
            post(directories::rotate_key),
        )
        .route(
            "/orgs/{org_id}/reports/provisioning",
            get(reports::provisioning),
        )
        .route("/orgs/{org_id}/reports/stats", get(reports::stats))
        .fallback(not_found)
}

async fn not_found() -> Response {
    AdminError::NotFound("no such admin endpoint").into_response()
}

/// Resolves an org id from the path; `default` names the default org.
pub(super) async fn org_id(state: &AppState, raw: &str) -> Result<Uuid, AdminError> {
    if raw.eq_ignore_ascii_case("default") {
        return Ok(state.store.ensure_default_org().await?.id);
    }
    let id = Uuid::parse_str(raw).map_err(|_| AdminError::NotFound("organisation not found"))?;
    state
        .store
        .get_org(id)
        .await?
        .map(|o| o.id)
        .ok_or(AdminError::NotFound("organisation not found"))
}

/// Stored microseconds as RFC 3339 for JSON responses.
pub(super) fn time(micros: i64) -> String {
    crate::time::format_micros(micros)
}
