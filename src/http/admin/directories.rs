//! `/admin/v1/orgs/{orgId}/directories`: create a directory (base URL and
//! API key, the key shown once), list, inspect, change its settings (its
//! request rate), delete, rotate the key.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{org_id, time};
use crate::auth::new_api_key;
use crate::http::error::AdminError;
use crate::http::extract::{AdminContext, AdminJson};
use crate::http::AppState;
use crate::store::{Directory, RateLimit};

/// The largest `perSecond` and `burst` a directory may be given.
pub const MAX_RATE_LIMIT: u32 = 1_000_000;

#[derive(Deserialize)]
pub struct CreateDirectory {
    name: String,
}

#[derive(Deserialize)]
pub struct OrgPath {
    org_id: String,
}

#[derive(Deserialize)]
pub struct DirectoryPath {
    org_id: String,
    directory_id: String,
}

fn directory_json(state: &AppState, d: &Directory) -> Value {
    json!({
        "id": d.id,
        "orgId": d.org_id,
        "name": d.name,
        "baseUrl": state.settings.directory_base_url(d.id),
        "keyId": d.key_id,
        "createdAt": time(d.created_at),
        "keyCreatedAt": time(d.key_created_at),
        "userCount": d.user_count,
        "groupCount": d.group_count,
        "rateLimit": d.rate_limit.get().map(rate_limit_json),
        "effectiveRateLimit": d
            .rate_limit
            .get()
            .or(state.settings.scim_rate_limit)
            .map(rate_limit_json),
    })
}

fn rate_limit_json(l: RateLimit) -> Value {
    json!({ "perSecond": l.per_second, "burst": l.burst })
}

/// A change to a directory's settings: each field absent (unchanged),
/// null (back to the default) or a value.
#[derive(Debug, Default, PartialEq)]
struct DirectoryChange {
    rate_limit: Option<Option<RateLimit>>,
}

/// The fields `PATCH` accepts, for the message that refuses others.
const PATCHABLE: &str = "rateLimit";

fn parse_change(body: &Value) -> Result<DirectoryChange, String> {
    let Value::Object(fields) = body else {
        return Err(format!(
            "the body must be a JSON object with the fields to change ({PATCHABLE})"
        ));
    };
    if fields.is_empty() {
        return Err(format!("the body names no field to change ({PATCHABLE})"));
    }
    let mut change = DirectoryChange::default();
    for (name, value) in fields {
        match name.as_str() {
            "rateLimit" => change.rate_limit = Some(parse_rate_limit(value)?),
            other => {
                return Err(format!(
                    "unknown field '{other}': a directory's PATCH accepts {PATCHABLE}"
                ))
            }
        }
    }
    Ok(change)
}

fn parse_rate_limit(value: &Value) -> Result<Option<RateLimit>, String> {
    let fields = match value {
        Value::Null => return Ok(None),
        Value::Object(fields) => fields,
        _ => {
            return Err(
                "rateLimit must be an object {\"perSecond\": n, \"burst\": m}, or null for the server's default"
                    .into(),
            )
        }
    };
    if let Some(other) = fields
        .keys()
        .find(|k| !matches!(k.as_str(), "perSecond" | "burst"))
    {
        return Err(format!(
            "unknown field 'rateLimit.{other}': rateLimit has perSecond and burst"
        ));
    }
    let bounded = |name: &str| -> Result<u32, String> {
        let raw = fields
            .get(name)
            .ok_or_else(|| format!("rateLimit.{name} is required"))?;
        raw.as_u64()
            .filter(|n| (1..=u64::from(MAX_RATE_LIMIT)).contains(n))
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| {
                format!("rateLimit.{name} must be an integer from 1 to {MAX_RATE_LIMIT}, not {raw}")
            })
    };
    Ok(Some(RateLimit {
        per_second: bounded("perSecond")?,
        burst: bounded("burst")?,
    }))
}

async fn resolve(state: &AppState, p: &DirectoryPath) -> Result<(Uuid, Uuid), AdminError> {
    let org = org_id(state, &p.org_id).await?;
    let id = Uuid::parse_str(&p.directory_id)
        .map_err(|_| AdminError::NotFound("directory not found"))?;
    Ok((org, id))
}

pub async fn create(
    State(state): State<AppState>,
    admin: AdminContext,
    Path(p): Path<OrgPath>,
    AdminJson(body): AdminJson<CreateDirectory>,
) -> Result<(StatusCode, Json<Value>), AdminError> {
    let org = org_id(&state, &p.org_id).await?;
    let name = body.name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(AdminError::BadRequest(
            "name must be 1 to 200 characters".into(),
        ));
    }
    let key = new_api_key().await?;
    let dir = state
        .store
        .create_directory(org, name, &key.id, &key.hash, &admin.audit)
        .await?;
    let mut body = directory_json(&state, &dir);
    body["apiKey"] = Value::String(key.secret);
    Ok((StatusCode::CREATED, Json(body)))
}

pub async fn list(
    State(state): State<AppState>,
    _admin: AdminContext,
    Path(p): Path<OrgPath>,
) -> Result<Json<Value>, AdminError> {
    let org = org_id(&state, &p.org_id).await?;
    let dirs = state.store.list_directories(org).await?;
    let list: Vec<Value> = dirs.iter().map(|d| directory_json(&state, d)).collect();
    Ok(Json(json!({ "directories": list })))
}

pub async fn get(
    State(state): State<AppState>,
    _admin: AdminContext,
    Path(p): Path<DirectoryPath>,
) -> Result<Json<Value>, AdminError> {
    let (org, id) = resolve(&state, &p).await?;
    let dir = state.store.get_directory(org, id).await?;
    Ok(Json(directory_json(&state, &dir)))
}

/// Changes a directory's settings; the fields absent stay as they are.
pub async fn update(
    State(state): State<AppState>,
    admin: AdminContext,
    Path(p): Path<DirectoryPath>,
    AdminJson(body): AdminJson<Value>,
) -> Result<Json<Value>, AdminError> {
    let (org, id) = resolve(&state, &p).await?;
    let change = parse_change(&body).map_err(AdminError::BadRequest)?;
    if let Some(limit) = change.rate_limit {
        state
            .store
            .set_directory_rate_limit(org, id, limit, &admin.audit)
            .await
            .map_err(not_found_directory)?;
        // This process applies it from the next request; others when they
        // re-read the key (--key-cache-seconds).
        state.auth.set_directory_rate_limit(id, limit);
    }
    let dir = state
        .store
        .get_directory(org, id)
        .await
        .map_err(not_found_directory)?;
    Ok(Json(directory_json(&state, &dir)))
}

fn not_found_directory(e: crate::store::StoreError) -> AdminError {
    match e {
        crate::store::StoreError::NotFound => AdminError::NotFound("directory not found"),
        other => other.into(),
    }
}

pub async fn delete(
    State(state): State<AppState>,
    admin: AdminContext,
    Path(p): Path<DirectoryPath>,
) -> Result<StatusCode, AdminError> {
    let (org, id) = resolve(&state, &p).await?;
    state.store.delete_directory(org, id, &admin.audit).await?;
    state.auth.forget_directory(id);
    Ok(StatusCode::NO_CONTENT)
}

/// Issues a new key; the old one stops working immediately.
pub async fn rotate_key(
    State(state): State<AppState>,
    admin: AdminContext,
    Path(p): Path<DirectoryPath>,
) -> Result<Json<Value>, AdminError> {
    let (org, id) = resolve(&state, &p).await?;
    let key = new_api_key().await?;
    state
        .store
        .set_directory_key(org, id, &key.id, &key.hash, &admin.audit)
        .await?;
    state.auth.forget_directory(id);
    let dir = state.store.get_directory(org, id).await?;
    let mut body = directory_json(&state, &dir);
    body["apiKey"] = Value::String(key.secret);
    Ok(Json(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(per_second: u32, burst: u32) -> Option<Option<RateLimit>> {
        Some(Some(RateLimit { per_second, burst }))
    }

    #[test]
    fn a_change_names_each_field_or_is_refused() {
        let ok = |v: Value| parse_change(&v).unwrap();
        let err = |v: Value| parse_change(&v).unwrap_err();
        assert_eq!(
            ok(json!({"rateLimit": {"perSecond": 5, "burst": 10}})).rate_limit,
            limit(5, 10)
        );
        assert_eq!(ok(json!({"rateLimit": null})).rate_limit, Some(None));
        assert_eq!(
            ok(json!({"rateLimit": {"perSecond": MAX_RATE_LIMIT, "burst": 1}})).rate_limit,
            limit(MAX_RATE_LIMIT, 1)
        );
        assert!(err(json!({})).contains("no field"));
        assert!(err(json!([])).contains("JSON object"));
        assert!(err(json!({"name": "x"})).contains("unknown field 'name'"));
        for bad in [
            json!({"perSecond": 0, "burst": 1}),
            json!({"perSecond": -1, "burst": 1}),
            json!({"perSecond": 1.5, "burst": 1}),
            json!({"perSecond": "5", "burst": 1}),
            json!({"perSecond": 1, "burst": MAX_RATE_LIMIT + 1}),
            json!({"perSecond": 1}),
            json!({"perSecond": 1, "burst": 1, "window": 3}),
            json!(5),
        ] {
            assert!(parse_change(&json!({ "rateLimit": bad })).is_err(), "{bad}");
        }
    }
}
