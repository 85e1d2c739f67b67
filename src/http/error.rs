//! Errors to responses, in one place. SCIM paths answer with the RFC 7644
//! §3.12 error body; admin paths with a small JSON error. Internal failures
//! are logged with their cause and shown to clients only as a generic 500.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::scim::ScimError;
use crate::store::StoreError;

pub const SCIM_CONTENT_TYPE: &str = "application/scim+json";

/// An error on a SCIM path.
#[derive(Debug, thiserror::Error)]
pub enum ScimApiError {
    #[error(transparent)]
    Scim(#[from] ScimError),
    /// Missing or unusable credentials; carries `WWW-Authenticate`.
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    /// The store is unreachable for now; the client should retry.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for ScimApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ScimError::not_found("resource not found").into(),
            StoreError::Conflict(attr) => {
                ScimError::uniqueness(format!("{attr} is already in use in this directory")).into()
            }
            StoreError::PreconditionFailed => ScimError::new(
                412,
                None,
                "the resource has changed: If-Match does not match its current version",
            )
            .into(),
            StoreError::UnknownMembers => ScimError::invalid_value(e.to_string()).into(),
            other if other.is_unavailable() => ScimApiError::Unavailable(other.to_string()),
            other => ScimApiError::Internal(other.to_string()),
        }
    }
}

impl ScimApiError {
    /// The SCIM error a client sees.
    pub fn to_scim(&self) -> ScimError {
        match self {
            ScimApiError::Scim(e) => e.clone(),
            ScimApiError::Unauthorized(detail) => ScimError::new(401, None, *detail),
            ScimApiError::Unavailable(_) => ScimError::new(
                503,
                None,
                "the directory store is unavailable for the moment; retry the request",
            ),
            ScimApiError::Internal(_) => ScimError::new(500, None, "internal server error"),
        }
    }
}

/// Builds a response with a SCIM error body.
pub fn scim_error_response(e: &ScimError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (status, e.to_json().to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(SCIM_CONTENT_TYPE),
    );
    // For the audit layer: the error exactly as the client gets it.
    resp.extensions_mut().insert(e.clone());
    resp
}

impl IntoResponse for ScimApiError {
    fn into_response(self) -> Response {
        if let ScimApiError::Internal(cause) | ScimApiError::Unavailable(cause) = &self {
            tracing::error!(%cause, "request failed");
        }
        let mut resp = scim_error_response(&self.to_scim());
        if matches!(self, ScimApiError::Unavailable(_)) {
            // Identity providers retry failed provisioning calls; this says
            // the failure is transient and when to come back.
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if matches!(self, ScimApiError::Unauthorized(_)) {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"scimd\""),
            );
        }
        resp
    }
}

/// An error on an admin path.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("unauthorized")]
    Unauthorized,
    #[error("{0}")]
    NotFound(&'static str),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => AdminError::NotFound("not found"),
            StoreError::Conflict(attr) => AdminError::BadRequest(format!("{attr} already exists")),
            other => AdminError::Internal(other.to_string()),
        }
    }
}

impl AdminError {
    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            AdminError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            AdminError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            AdminError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            AdminError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            AdminError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            AdminError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        let message = match &self {
            AdminError::Internal(cause) => {
                tracing::error!(%cause, "admin request failed");
                "internal server error".to_owned()
            }
            AdminError::Unauthorized => "a valid admin token is required".to_owned(),
            other => other.to_string(),
        };
        let mut resp = (
            status,
            axum::Json(json!({ "status": status.as_u16(), "error": code, "message": message })),
        )
            .into_response();
        if matches!(self, AdminError::Unauthorized) {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"scimd-admin\""),
            );
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_map_to_scim_statuses() {
        let cases: Vec<(StoreError, u16, Option<&str>)> = vec![
            (StoreError::NotFound, 404, None),
            (StoreError::Conflict("userName"), 409, Some("uniqueness")),
            (StoreError::PreconditionFailed, 412, None),
            (StoreError::UnknownMembers, 400, Some("invalidValue")),
            (StoreError::Database(sqlx::Error::PoolTimedOut), 503, None),
            (
                StoreError::Database(sqlx::Error::Io(std::io::ErrorKind::BrokenPipe.into())),
                503,
                None,
            ),
            (StoreError::Database(sqlx::Error::RowNotFound), 500, None),
        ];
        for (err, status, scim_type) in cases {
            let scim = ScimApiError::from(err).to_scim();
            assert_eq!(scim.status, status);
            assert_eq!(scim.scim_type.map(|t| t.as_str()), scim_type);
        }
    }

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let e = ScimApiError::Internal("secret connection string".into()).to_scim();
        assert!(!e.detail.contains("secret"));
    }
}
