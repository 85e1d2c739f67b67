//! Failed SCIM writes become audit events here, in one place: a layer
//! around the SCIM routes sees every write request's response, and when it
//! is an error (4xx or 5xx) for an authenticated caller, records it with
//! the status, `scimType` and detail the client got. Bulk operations fail
//! inside a `200`, so `bulk.rs` records each failed one through
//! [`record_failure`] as well.
//!
//! Recording a failure never changes the response: if it cannot be
//! written, that is logged.

use crate::telemetry::ErrorChain;
use std::sync::{Arc, Mutex};

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use uuid::Uuid;

use super::AppState;
use crate::audit::{attempted, Action, AuditContext, Target, TargetType};
use crate::scim::ScimError;

/// What the failure recorder learns while a write request is handled: the
/// caller (once its key is verified) and, if a handler noted one, the
/// target.
#[derive(Debug, Default)]
pub struct PendingFailure {
    slot: Mutex<(Option<AuditContext>, Option<Target>)>,
}

impl PendingFailure {
    pub fn authenticated(&self, ctx: &AuditContext) {
        if let Ok(mut slot) = self.slot.lock() {
            slot.0 = Some(ctx.clone());
        }
    }

    pub fn note_target(&self, target: Target) {
        if let Ok(mut slot) = self.slot.lock() {
            slot.1 = Some(target);
        }
    }

    fn take(&self) -> (Option<AuditContext>, Option<Target>) {
        self.slot
            .lock()
            .map(|mut s| (s.0.take(), s.1.take()))
            .unwrap_or((None, None))
    }
}

/// The write a route template and method stand for: the target kind, the
/// attempted action, and the id in the path.
fn write_attempt(
    template: &str,
    method: &Method,
    path: &str,
) -> Option<(TargetType, Action, Option<Uuid>)> {
    let (kind, with_id) = [
        ("/Users", TargetType::User, false),
        ("/Users/{id}", TargetType::User, true),
        ("/Groups", TargetType::Group, false),
        ("/Groups/{id}", TargetType::Group, true),
        ("/Bulk", TargetType::Request, false),
    ]
    .into_iter()
    .find(|(suffix, _, _)| template.ends_with(suffix))
    .map(|(_, kind, with_id)| (kind, with_id))?;
    if with_id == (*method == Method::POST) {
        return None;
    }
    let action = attempted(kind, method.as_str())?;
    let id = with_id
        .then(|| {
            path.rsplit('/')
                .next()
                .and_then(|s| Uuid::parse_str(s).ok())
        })
        .flatten();
    Some((kind, action, id))
}

/// The layer: only write methods on Users, Groups and Bulk are watched.
pub async fn record_scim_failures(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let watched = matches!(
        *req.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) && state.settings.audit;
    let attempt = watched
        .then(|| {
            let template = req.extensions().get::<MatchedPath>()?;
            write_attempt(template.as_str(), req.method(), req.uri().path())
        })
        .flatten();
    let Some((kind, action, id)) = attempt else {
        return next.run(req).await;
    };
    let pending = Arc::new(PendingFailure::default());
    req.extensions_mut().insert(pending.clone());
    let resp = next.run(req).await;
    let status = resp.status();
    if status.is_client_error() || status.is_server_error() {
        // Unauthenticated requests are not recorded: they belong to no
        // directory, and anyone could fill the log with them.
        if let (Some(ctx), noted) = pending.take() {
            let error = resp
                .extensions()
                .get::<ScimError>()
                .cloned()
                .unwrap_or_else(|| {
                    ScimError::new(
                        status.as_u16(),
                        None,
                        status.canonical_reason().unwrap_or("error"),
                    )
                });
            let target = noted.unwrap_or_else(|| Target::new(kind, id));
            record_failure(&state, &ctx, action, target, &error).await;
        }
    }
    resp
}

/// Writes a failure event in its own transaction; a failure to do so is
/// logged, never passed on.
pub async fn record_failure(
    state: &AppState,
    ctx: &AuditContext,
    action: Action,
    target: Target,
    error: &ScimError,
) {
    if !ctx.enabled {
        return;
    }
    let event = ctx.event(action).target(target).failed(error);
    match state.store.record_event(&event).await {
        Ok(()) => state.metrics.audit_failure_recorded(action.as_str()),
        Err(e) => {
            state.metrics.audit_write_failed();
            tracing::error!(error = %ErrorChain(&e), action = action.as_str(), "could not record a failed write in the audit log");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_routes_name_their_attempt() {
        let id = Uuid::new_v4();
        let t = "/scim/directory/{directory_id}/Users/{id}";
        assert_eq!(
            write_attempt(t, &Method::PATCH, &format!("/scim/directory/x/Users/{id}")),
            Some((TargetType::User, Action::UserUpdated, Some(id)))
        );
        assert_eq!(
            write_attempt("/scim/v2/Groups", &Method::POST, "/scim/v2/Groups"),
            Some((TargetType::Group, Action::GroupCreated, None))
        );
        assert_eq!(
            write_attempt("/scim/v2/Bulk", &Method::POST, "/scim/v2/Bulk"),
            Some((TargetType::Request, Action::BulkRejected, None))
        );
        assert_eq!(write_attempt("/scim/v2/Users", &Method::DELETE, "/"), None);
        assert_eq!(
            write_attempt("/scim/v2/Users/{id}", &Method::POST, "/"),
            None
        );
        assert_eq!(
            write_attempt("/scim/v2/Users/.search", &Method::POST, "/"),
            None
        );
    }
}
