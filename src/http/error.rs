//! Errors to responses, in one place. SCIM paths answer with the RFC 7644
//! §3.12 error body; admin paths with a small JSON error. Internal failures
//! are logged with their cause and shown to clients only as a generic 500.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::AuthError;
use crate::scim::ScimError;
use crate::store::StoreError;
use crate::telemetry::ErrorChain;

pub const SCIM_CONTENT_TYPE: &str = "application/scim+json";

/// A failure of the server itself, kept whole (with its chain of causes)
/// until it is logged.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error on a SCIM path.
#[derive(Debug, thiserror::Error)]
pub enum ScimApiError {
    #[error(transparent)]
    Scim(#[from] ScimError),
    /// Missing or unusable credentials; carries `WWW-Authenticate`.
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    /// The store is unreachable for now; the client should retry.
    #[error("store unavailable")]
    Unavailable(#[source] Cause),
    #[error("internal error")]
    Internal(#[source] Cause),
}

impl From<StoreError> for ScimApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ScimError::not_found("resource not found").into(),
            StoreError::Conflict(attr) => {
                ScimError::uniqueness(format!("{attr} is already in use in this directory")).into()
            }
            StoreError::Taken(detail) => ScimError::uniqueness(detail).into(),
            StoreError::PreconditionFailed => ScimError::precondition_failed(
                "the resource has changed: If-Match does not match its current version",
            )
            .into(),
            StoreError::UnknownMembers => ScimError::invalid_value(e.to_string()).into(),
            StoreError::Missing(m) => ScimError::not_found(m).into(),
            StoreError::Refused(m) => ScimError::uniqueness(m).into(),
            other if other.is_unavailable() => ScimApiError::Unavailable(other.into()),
            other => ScimApiError::Internal(other.into()),
        }
    }
}

impl From<AuthError> for ScimApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Store(e) => e.into(),
            other => ScimApiError::Internal(other.into()),
        }
    }
}

impl ScimApiError {
    /// The SCIM error a client sees.
    pub fn to_scim(&self) -> ScimError {
        match self {
            ScimApiError::Scim(e) => e.clone(),
            ScimApiError::Unauthorized(detail) => ScimError::unauthorized(*detail),
            ScimApiError::Unavailable(_) => ScimError::unavailable(
                "the directory store is unavailable for the moment; retry the request",
            ),
            ScimApiError::Internal(_) => ScimError::internal("internal server error"),
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
        if let ScimApiError::Internal(_) | ScimApiError::Unavailable(_) = &self {
            tracing::error!(error = %ErrorChain(&self), "request failed");
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
    /// [`AdminError::NotFound`] naming the missing thing (an id).
    #[error("{0}")]
    Missing(String),
    /// The path exists but not with this method.
    #[error("this path does not accept this method")]
    MethodNotAllowed,
    #[error("{0}")]
    BadRequest(String),
    /// The request would break a uniqueness rule (a name in use).
    #[error("{0}")]
    Conflict(String),
    /// A domain name that is not a hostname.
    #[error("{0}")]
    InvalidDomain(String),
    /// A public mail domain, which no organisation can own.
    #[error("{0}")]
    PublicMailDomain(String),
    /// Only a verified domain can do this (be linked to a directory).
    #[error("{0}")]
    DomainNotVerified(String),
    /// A sync run of the directory is running (the message names it).
    #[error("{0}")]
    SyncRunning(String),
    /// The directory's sync is switched off.
    #[error("{0}")]
    SyncDisabled(String),
    /// An event feed cursor older than the events' retention.
    #[error("{0}")]
    ExpiredCursor(String),
    /// A webhook URL that reaches inside the deployment's network (SSRF).
    #[error("{0}")]
    UrlRefused(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Over the admin token's request rate (the layer adds `Retry-After`).
    #[error("{0}")]
    TooManyRequests(String),
    #[error("internal error")]
    Internal(#[source] Cause),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => AdminError::NotFound("not found"),
            StoreError::Conflict(attr) => AdminError::Conflict(format!("{attr} already exists")),
            StoreError::Taken(detail) => AdminError::Conflict(detail),
            StoreError::UnknownMembers => AdminError::BadRequest(e.to_string()),
            StoreError::Missing(m) => AdminError::Missing(m),
            StoreError::Refused(m) => AdminError::Conflict(m),
            other => AdminError::Internal(other.into()),
        }
    }
}

impl From<AuthError> for AdminError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Store(e) => e.into(),
            other => AdminError::Internal(other.into()),
        }
    }
}

/// The stable code of an admin error: clients branch on it, never on the
/// message. Each code has one HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AdminErrorCode {
    /// 400: a malformed body, query parameter or value.
    BadRequest,
    /// 401: no admin token, or not a valid one.
    Unauthorized,
    /// 404: no such path, organisation or directory (a path id that is not
    /// a UUID names nothing, so it is 404 too).
    NotFound,
    /// 405: the path exists, the method does not (`Allow` lists those that do).
    MethodNotAllowed,
    /// 409: a name that must be unique is taken.
    Conflict,
    /// 413: the body is larger than `--max-body-bytes`.
    PayloadTooLarge,
    /// 415: a body that is not JSON.
    UnsupportedMediaType,
    /// 429: too many requests; retry after `Retry-After` seconds.
    TooManyRequests,
    /// 500: a fault of the server; the cause is in its log, never here.
    Internal,
    /// 400: a domain name that is not a hostname.
    InvalidDomain,
    /// 400: a public mail domain (gmail.com, …), which no organisation
    /// can own.
    PublicMailDomain,
    /// 409: the domain must be verified first.
    DomainNotVerified,
    /// 409: a sync run of the directory is running; it cannot be stopped.
    SyncRunning,
    /// 409: the directory's sync is switched off (`enabled: false`).
    SyncDisabled,
    /// 400: an event feed cursor older than the events' retention.
    ExpiredCursor,
    /// 400: a webhook URL that resolves to a loopback, private, link-local
    /// or metadata address (refused unless `--webhook-allow-private`).
    UrlRefused,
}

impl AdminErrorCode {
    /// Every code, in the order of the table in docs/ADMIN_API.md.
    pub const ALL: [AdminErrorCode; 16] = [
        AdminErrorCode::BadRequest,
        AdminErrorCode::Unauthorized,
        AdminErrorCode::NotFound,
        AdminErrorCode::MethodNotAllowed,
        AdminErrorCode::Conflict,
        AdminErrorCode::PayloadTooLarge,
        AdminErrorCode::UnsupportedMediaType,
        AdminErrorCode::TooManyRequests,
        AdminErrorCode::Internal,
        AdminErrorCode::InvalidDomain,
        AdminErrorCode::PublicMailDomain,
        AdminErrorCode::DomainNotVerified,
        AdminErrorCode::SyncRunning,
        AdminErrorCode::SyncDisabled,
        AdminErrorCode::ExpiredCursor,
        AdminErrorCode::UrlRefused,
    ];

    pub fn status(self) -> StatusCode {
        match self {
            AdminErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            AdminErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            AdminErrorCode::NotFound => StatusCode::NOT_FOUND,
            AdminErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            AdminErrorCode::Conflict => StatusCode::CONFLICT,
            AdminErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AdminErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AdminErrorCode::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            AdminErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            AdminErrorCode::InvalidDomain
            | AdminErrorCode::PublicMailDomain
            | AdminErrorCode::ExpiredCursor
            | AdminErrorCode::UrlRefused => StatusCode::BAD_REQUEST,
            AdminErrorCode::DomainNotVerified
            | AdminErrorCode::SyncRunning
            | AdminErrorCode::SyncDisabled => StatusCode::CONFLICT,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AdminErrorCode::BadRequest => "bad_request",
            AdminErrorCode::Unauthorized => "unauthorized",
            AdminErrorCode::NotFound => "not_found",
            AdminErrorCode::MethodNotAllowed => "method_not_allowed",
            AdminErrorCode::Conflict => "conflict",
            AdminErrorCode::PayloadTooLarge => "payload_too_large",
            AdminErrorCode::UnsupportedMediaType => "unsupported_media_type",
            AdminErrorCode::TooManyRequests => "too_many_requests",
            AdminErrorCode::Internal => "internal",
            AdminErrorCode::InvalidDomain => "invalid_domain",
            AdminErrorCode::PublicMailDomain => "public_mail_domain",
            AdminErrorCode::DomainNotVerified => "domain_not_verified",
            AdminErrorCode::SyncRunning => "sync_running",
            AdminErrorCode::SyncDisabled => "sync_disabled",
            AdminErrorCode::ExpiredCursor => "expired_cursor",
            AdminErrorCode::UrlRefused => "url_refused",
        }
    }
}

/// The body of every admin error.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"status": 404, "error": "not_found", "message": "directory not found"}))]
pub struct AdminErrorBody {
    /// The HTTP status, repeated.
    #[schema(minimum = 400, maximum = 599)]
    pub status: u16,
    pub error: AdminErrorCode,
    /// For people: what went wrong, in English. May change between versions.
    pub message: String,
}

impl AdminError {
    pub(crate) fn code(&self) -> AdminErrorCode {
        match self {
            AdminError::Unauthorized => AdminErrorCode::Unauthorized,
            AdminError::NotFound(_) | AdminError::Missing(_) => AdminErrorCode::NotFound,
            AdminError::MethodNotAllowed => AdminErrorCode::MethodNotAllowed,
            AdminError::BadRequest(_) => AdminErrorCode::BadRequest,
            AdminError::Conflict(_) => AdminErrorCode::Conflict,
            AdminError::PayloadTooLarge(_) => AdminErrorCode::PayloadTooLarge,
            AdminError::UnsupportedMediaType(_) => AdminErrorCode::UnsupportedMediaType,
            AdminError::TooManyRequests(_) => AdminErrorCode::TooManyRequests,
            AdminError::Internal(_) => AdminErrorCode::Internal,
            AdminError::InvalidDomain(_) => AdminErrorCode::InvalidDomain,
            AdminError::PublicMailDomain(_) => AdminErrorCode::PublicMailDomain,
            AdminError::DomainNotVerified(_) => AdminErrorCode::DomainNotVerified,
            AdminError::SyncRunning(_) => AdminErrorCode::SyncRunning,
            AdminError::SyncDisabled(_) => AdminErrorCode::SyncDisabled,
            AdminError::ExpiredCursor(_) => AdminErrorCode::ExpiredCursor,
            AdminError::UrlRefused(_) => AdminErrorCode::UrlRefused,
        }
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let code = self.code();
        let message = match &self {
            AdminError::Internal(_) => {
                tracing::error!(error = %ErrorChain(&self), "admin request failed");
                "internal server error".to_owned()
            }
            AdminError::Unauthorized => "a valid admin token is required".to_owned(),
            other => other.to_string(),
        };
        let status = code.status();
        let body = AdminErrorBody {
            status: status.as_u16(),
            error: code,
            message,
        };
        let mut resp = (status, axum::Json(body)).into_response();
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
            (
                StoreError::Taken("externalId 'x' is taken".into()),
                409,
                Some("uniqueness"),
            ),
            (StoreError::PreconditionFailed, 412, None),
            (StoreError::UnknownMembers, 400, Some("invalidValue")),
            (StoreError::Missing("x".into()), 404, None),
            (StoreError::Refused("x".into()), 409, Some("uniqueness")),
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

    /// A failure is logged with every cause under it, not just its own
    /// message.
    #[test]
    fn internal_errors_keep_their_causes_for_the_log() {
        let io = std::io::Error::other("disk on fire");
        let e = ScimApiError::from(StoreError::Database(sqlx::Error::Io(io)));
        assert!(matches!(e, ScimApiError::Unavailable(_)));
        let logged = ErrorChain(&e).to_string();
        assert!(logged.contains("disk on fire"), "{logged}");
        let e = AdminError::from(StoreError::Database(sqlx::Error::RowNotFound));
        assert!(ErrorChain(&e).to_string().starts_with("internal error: "));
    }

    /// Each code's status, and its name as clients see it (the serialised
    /// name, the one the OpenAPI document lists, is the same string).
    #[test]
    fn admin_error_codes_have_one_status_and_one_name() {
        let expected = [
            (400, "bad_request"),
            (401, "unauthorized"),
            (404, "not_found"),
            (405, "method_not_allowed"),
            (409, "conflict"),
            (413, "payload_too_large"),
            (415, "unsupported_media_type"),
            (429, "too_many_requests"),
            (500, "internal"),
            (400, "invalid_domain"),
            (400, "public_mail_domain"),
            (409, "domain_not_verified"),
            (409, "sync_running"),
            (409, "sync_disabled"),
            (400, "expired_cursor"),
            (400, "url_refused"),
        ];
        assert_eq!(AdminErrorCode::ALL.len(), expected.len());
        for (code, (status, name)) in AdminErrorCode::ALL.into_iter().zip(expected) {
            assert_eq!(code.status().as_u16(), status);
            assert_eq!(code.as_str(), name);
            assert_eq!(serde_json::to_value(code).unwrap(), name);
        }
    }

    #[test]
    fn admin_conflicts_are_409() {
        let e = AdminError::from(StoreError::Conflict("name"));
        assert_eq!(e.code(), AdminErrorCode::Conflict);
        assert_eq!(e.code().status(), StatusCode::CONFLICT);
    }
}
