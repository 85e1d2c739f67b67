//! Extractors: authentication, and JSON bodies whose rejections come out as
//! SCIM (or admin) errors instead of axum's plain-text ones.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{
    ConnectInfo, FromRef, FromRequest, FromRequestParts, Path, RawPathParams, Request,
};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use serde_json::Value;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use uuid::Uuid;

use super::audit::PendingFailure;
use super::error::{AdminError, ScimApiError};
use super::AppState;
use crate::audit::{Actor, AuditContext, Target};
use crate::auth::Principal;
use crate::scim::ScimError;

pub(super) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Where a request came from: the peer's address, or, only when
/// `--trust-forwarded-for` is set, the last `X-Forwarded-For` entry (the
/// one the proxy in front of scimd appended).
fn source_ip(parts: &Parts, trust_forwarded_for: bool) -> Option<String> {
    if trust_forwarded_for {
        let last = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|s| !s.is_empty());
        if let Some(raw) = last {
            let parsed = raw
                .parse::<IpAddr>()
                .or_else(|_| raw.parse::<SocketAddr>().map(|a| a.ip()));
            if let Ok(ip) = parsed {
                return Some(ip.to_string());
            }
        }
    }
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}

/// Who is calling, from where, under which request id (`X-Request-Id`,
/// set by the request-id layer and echoed to the client).
pub(crate) fn audit_context(parts: &Parts, state: &AppState, actor: Actor) -> AuditContext {
    let request_id = parts
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok());
    AuditContext::new(
        actor,
        source_ip(parts, state.settings.trust_forwarded_for),
        request_id,
        state.settings.audit,
    )
}

/// Who the bearer credential stands for: as the rate-limit layer already
/// found (the same request, the same credential), or asked now.
async fn authenticate(
    parts: &Parts,
    state: &AppState,
    token: &str,
) -> Result<Option<Principal>, crate::store::StoreError> {
    match parts.extensions.get::<Authenticated>() {
        Some(Authenticated(principal)) => Ok(principal.clone()),
        None => state.auth.authenticate(token).await,
    }
}

/// What verifying a request's credential found (a principal, or `None`
/// for a rejected one), left in its extensions by the layer that verified
/// it first, so that a wrong key is not checked with argon2 twice.
#[derive(Clone, Debug)]
pub struct Authenticated(pub Option<Principal>);

/// The directory a SCIM request acts on, proven by its API key.
#[derive(Clone, Debug)]
pub struct ScimContext {
    pub directory_id: Uuid,
    pub org_id: Uuid,
    /// Users must have a primary email in a verified domain of the org.
    pub require_verified_domain: bool,
    pub key_id: String,
    /// Base of `meta.location`: the mount the client used.
    pub base_url: String,
    /// Org, directory, key id, source IP and request id, for the events
    /// this request's writes record.
    pub audit: AuditContext,
    /// Where a failed write's target is noted for its failure event.
    failure: Option<Arc<PendingFailure>>,
}

impl ScimContext {
    /// Names what a write is about before it is attempted (e.g. the
    /// userName of a create), so that its failure event can say so.
    pub fn note_target(&self, target: impl FnOnce() -> Target) {
        if let Some(f) = &self.failure {
            f.note_target(target());
        }
    }
}

impl<S> FromRequestParts<S> for ScimContext
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ScimApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let token = bearer(&parts.headers)
            .ok_or(ScimApiError::Unauthorized("a bearer API key is required"))?;
        let principal = authenticate(parts, &state, token).await?;
        let Some(Principal::Directory {
            directory_id,
            org_id,
            key_id,
            require_verified_domain,
            ..
        }) = principal
        else {
            return Err(ScimApiError::Unauthorized("the API key is not valid"));
        };
        // A path segment that is not valid percent-encoded UTF-8 names no
        // directory or resource of ours: the client's fault, not a 500.
        let params = RawPathParams::from_request_parts(parts, &state)
            .await
            .map_err(|_| ScimError::not_found("no such resource"))?;
        let named_directory = params
            .iter()
            .find_map(|(name, value)| (name == "directory_id").then_some(value));
        let base_url = match named_directory {
            Some(named) => {
                // A key of directory A on directory B's path learns nothing
                // about B: same answer as a wrong key.
                if Uuid::parse_str(named).ok() != Some(directory_id) {
                    return Err(ScimApiError::Unauthorized("the API key is not valid"));
                }
                state.settings.directory_base_url(directory_id)
            }
            None => format!("{}/scim/v2", state.settings.public_url),
        };
        let audit = audit_context(parts, &state, Actor::ApiKey(key_id.clone()))
            .in_directory(org_id, directory_id);
        let failure = parts.extensions.get::<Arc<PendingFailure>>().cloned();
        if let Some(f) = &failure {
            f.authenticated(&audit);
        }
        Ok(ScimContext {
            directory_id,
            org_id,
            require_verified_domain,
            key_id,
            base_url,
            audit,
            failure,
        })
    }
}

/// A request made with an admin token.
#[derive(Clone, Debug)]
pub struct AdminContext {
    pub token_id: String,
    /// The token id, source IP and request id, for events of admin writes
    /// (scoped to an org with [`AuditContext::in_org`]).
    pub audit: AuditContext,
}

impl<S> FromRequestParts<S> for AdminContext
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let token = bearer(&parts.headers).ok_or(AdminError::Unauthorized)?;
        match authenticate(parts, &state, token).await? {
            Some(Principal::Admin { token_id }) => Ok(AdminContext {
                audit: audit_context(parts, &state, Actor::AdminToken(token_id.clone())),
                token_id,
            }),
            _ => Err(AdminError::Unauthorized),
        }
    }
}

/// Why a body could not be read, before any JSON parsing.
enum BodyFault {
    TooLarge(String),
    WrongType(String),
    Syntax(String),
    /// Valid JSON holding a value no resource may hold.
    Value(String),
}

async fn json_body<S: Send + Sync>(req: Request, state: &S) -> Result<Value, BodyFault> {
    if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
        if !ct.contains("json") {
            return Err(BodyFault::WrongType(format!(
                "unsupported content type '{ct}': send application/scim+json or application/json"
            )));
        }
    }
    let bytes = Bytes::from_request(req, state)
        .await
        .map_err(|e: BytesRejection| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                BodyFault::TooLarge("request body is larger than the server accepts".into())
            } else {
                BodyFault::Syntax(format!("request body could not be read: {e}"))
            }
        })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| BodyFault::Syntax(format!("request body is not valid JSON: {e}")))
}

/// Whether any string or key in `value` contains U+0000.
fn holds_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
}

/// A SCIM JSON body (`application/scim+json` or `application/json`).
pub struct ScimJson(pub Value);

impl<S: Send + Sync> FromRequest<S> for ScimJson {
    type Rejection = ScimApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let body = json_body(req, state).await.and_then(|body| {
            if holds_nul(&body) {
                // PostgreSQL text cannot hold U+0000, and no directory
                // value needs it: refused on every store alike, before
                // anything is written. (An admin body is checked where
                // its values are: a name.)
                return Err(BodyFault::Value(
                    "strings may not contain U+0000".to_owned(),
                ));
            }
            Ok(ScimJson(body))
        });
        body.map_err(|f| {
            match f {
                BodyFault::TooLarge(m) => ScimError::payload_too_large(m),
                BodyFault::WrongType(m) => ScimError::unsupported_media_type(m),
                BodyFault::Syntax(m) => ScimError::invalid_syntax(m),
                BodyFault::Value(m) => ScimError::invalid_value(m),
            }
            .into()
        })
    }
}

/// An admin API JSON body.
pub struct AdminJson<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for AdminJson<T> {
    type Rejection = AdminError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let value = json_body(req, state).await.map_err(|f| match f {
            BodyFault::TooLarge(m) => AdminError::PayloadTooLarge(m),
            BodyFault::WrongType(m) => AdminError::UnsupportedMediaType(m),
            BodyFault::Syntax(m) | BodyFault::Value(m) => AdminError::BadRequest(m),
        })?;
        serde_json::from_value(value)
            .map(AdminJson)
            .map_err(|e| AdminError::BadRequest(format!("invalid request body: {e}")))
    }
}

/// An admin route's path parameters. A segment that cannot be decoded
/// (percent-encoding that is not UTF-8) names no organisation or
/// directory: `404 not_found`, as a well-formed id that names nothing is,
/// never axum's plain-text rejection.
pub struct AdminPath<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> FromRequestParts<S> for AdminPath<T> {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(p)| AdminPath(p))
            .map_err(|_| AdminError::NotFound("no such resource"))
    }
}

/// `If-Match: W/"3"` -> Some(3); absent or `*` -> None. A tag that is not
/// one of ours can never match, so it becomes an impossible version.
pub fn if_match(headers: &HeaderMap) -> Option<i64> {
    let raw = headers.get(header::IF_MATCH)?.to_str().ok()?.trim();
    if raw == "*" {
        return None;
    }
    Some(parse_etag(raw).unwrap_or(-1))
}

/// Parses `W/"n"` (or `"n"`).
pub fn parse_etag(raw: &str) -> Option<i64> {
    let raw = raw.trim();
    let raw = raw.strip_prefix("W/").unwrap_or(raw);
    raw.trim_matches('"').parse().ok()
}

pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}
