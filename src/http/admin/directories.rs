//! `/admin/v1/orgs/{orgId}/directories`: create a directory (base URL and
//! API key, the key shown once), list, inspect, change its settings (its
//! request rate), delete, rotate the key.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{check_name, org_id, time, DirectoryPath, OrgPath};
use crate::auth::new_api_key;
use crate::http::error::{AdminError, AdminErrorBody};
use crate::http::extract::{AdminContext, AdminJson, AdminPath};
use crate::http::AppState;
use crate::store::{Directory, RateLimit};

/// The largest `perSecond` and `burst` a directory may be given.
pub const MAX_RATE_LIMIT: u32 = 1_000_000;

/// A new directory.
#[derive(Deserialize, ToSchema)]
pub struct CreateDirectory {
    /// 1 to 200 characters, not all white space (leading and trailing
    /// white space is trimmed), without U+0000.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$",
        example = "Okta"
    )]
    name: String,
}

/// A directory: what one identity provider provisions into. Never its key.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryView {
    id: Uuid,
    org_id: Uuid,
    name: String,
    /// The SCIM base URL to give the identity provider.
    base_url: String,
    /// The visible part of the API key (`scimd_<keyId>.…`).
    key_id: String,
    /// RFC 3339, UTC, to the microsecond.
    #[schema(format = DateTime)]
    created_at: String,
    /// When the current key was issued.
    #[schema(format = DateTime)]
    key_created_at: String,
    /// When the current key was last presented, to within
    /// `--key-cache-seconds`; null: never.
    #[schema(format = DateTime)]
    key_last_used_at: Option<String>,
    #[schema(minimum = 0)]
    user_count: i64,
    #[schema(minimum = 0)]
    group_count: i64,
    /// The directory's own limit on SCIM requests; null: the server's
    /// default applies.
    rate_limit: Option<RateLimitView>,
    /// The limit that applies: its own, else the server's default; null:
    /// none.
    effective_rate_limit: Option<RateLimitView>,
    /// SCIM users must have a primary email in a verified domain of the
    /// organisation.
    require_verified_domain: bool,
    /// The domains this directory manages.
    domains: Vec<String>,
}

/// A token bucket: `perSecond` requests a second on average, bursts of up
/// to `burst`.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimitView {
    #[schema(minimum = 1, maximum = 1_000_000)]
    per_second: u32,
    #[schema(minimum = 1, maximum = 1_000_000)]
    burst: u32,
}

impl From<RateLimit> for RateLimitView {
    fn from(l: RateLimit) -> Self {
        RateLimitView {
            per_second: l.per_second,
            burst: l.burst,
        }
    }
}

/// A change to a directory's settings: the fields given change, those
/// absent stay; at least one is given. (Its schema is
/// [`DirectoryPatchFields`]' with `minProperties: 1`, which utoipa's
/// attribute of that name does not write.)
pub struct DirectoryPatch;

impl utoipa::PartialSchema for DirectoryPatch {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::Schema;
        use utoipa::openapi::RefOr;
        let mut schema = DirectoryPatchFields::schema();
        if let RefOr::T(Schema::Object(object)) = &mut schema {
            object.min_properties = Some(1);
            object.description = Some(
                "A change to a directory's settings: the fields given change, those absent \
                 stay; at least one is given."
                    .to_owned(),
            );
        }
        schema
    }
}

impl ToSchema for DirectoryPatch {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <DirectoryPatchFields as ToSchema>::schemas(schemas);
    }
}

/// The fields of [`DirectoryPatch`].
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "describes the body for the OpenAPI document; parse_change reads it"
)]
pub struct DirectoryPatchFields {
    /// The directory's limit on SCIM requests, or null for the server's
    /// default.
    #[schema(nullable)]
    rate_limit: Option<RateLimitView>,
    /// Refuse SCIM users whose primary email is not in a verified domain
    /// of the organisation (and users without an email).
    #[schema(value_type = bool, required = false)]
    require_verified_domain: Option<bool>,
}

/// A directory with its new API key, which is shown in this answer only.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryWithKey {
    #[serde(flatten)]
    directory: DirectoryView,
    /// `scimd_<keyId>.<secret>`: the bearer key for the SCIM base URL.
    api_key: String,
}

/// An organisation's directories.
#[derive(Serialize, ToSchema)]
pub struct DirectoryList {
    directories: Vec<DirectoryView>,
}

impl DirectoryView {
    fn new(state: &AppState, d: &Directory) -> Self {
        DirectoryView {
            id: d.id,
            org_id: d.org_id,
            name: d.name.clone(),
            base_url: state.settings.directory_base_url(d.id),
            key_id: d.key_id.clone(),
            created_at: time(d.created_at),
            key_created_at: time(d.key_created_at),
            key_last_used_at: d.key_last_used_at.map(time),
            user_count: d.user_count,
            group_count: d.group_count,
            rate_limit: d.rate_limit.get().map(RateLimitView::from),
            effective_rate_limit: d
                .rate_limit
                .get()
                .or(state.settings.scim_rate_limit)
                .map(RateLimitView::from),
            require_verified_domain: d.require_verified_domain,
            domains: Vec::new(),
        }
    }

    /// With the domains it manages (one indexed read).
    async fn with_domains(mut self, state: &AppState) -> Result<Self, AdminError> {
        self.domains = state.store.directory_domains(self.id).await?;
        Ok(self)
    }
}

/// A change to a directory's settings: each field absent (unchanged),
/// null (back to the default) or a value.
#[derive(Debug, Default, PartialEq)]
struct DirectoryChange {
    rate_limit: Option<Option<RateLimit>>,
    require_verified_domain: Option<bool>,
}

/// The fields `PATCH` accepts, for the message that refuses others.
const PATCHABLE: &str = "rateLimit, requireVerifiedDomain";

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
            "requireVerifiedDomain" => {
                change.require_verified_domain = Some(value.as_bool().ok_or_else(|| {
                    format!("requireVerifiedDomain must be true or false, not {value}")
                })?)
            }
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
        // JSON Schema counts 5.0 as the integer 5; so does this.
        raw.as_u64()
            .or_else(|| {
                raw.as_f64()
                    .filter(|f| f.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(f))
                    .map(|f| f as u64)
            })
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

/// Creates a directory and its API key.
#[utoipa::path(
    post,
    path = "/admin/v1/orgs/{orgId}/directories",
    tag = "directories",
    operation_id = "createDirectory",
    params(OrgPath),
    request_body = CreateDirectory,
    responses(
        (status = 201, description = "The directory, with its API key (shown this once)", body = DirectoryWithKey),
        (status = 404, description = "No such organisation", body = AdminErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    admin: AdminContext,
    AdminPath(p): AdminPath<OrgPath>,
    AdminJson(body): AdminJson<CreateDirectory>,
) -> Result<(StatusCode, Json<DirectoryWithKey>), AdminError> {
    let org = org_id(&state, &p.org_id).await?;
    let (dir, api_key) = add_directory(&state, org, &body.name, &admin.audit).await?;
    Ok((
        StatusCode::CREATED,
        Json(DirectoryWithKey {
            directory: DirectoryView::new(&state, &dir),
            api_key,
        }),
    ))
}

/// Creates a directory named `name` in `org` and evaluates to it with its
/// API key's secret, shown once. (The admin API and the console both
/// create this way.)
pub(crate) async fn add_directory(
    state: &AppState,
    org: Uuid,
    name: &str,
    audit: &crate::audit::AuditContext,
) -> Result<(Directory, String), AdminError> {
    let name = check_name(name)?;
    let key = new_api_key().await?;
    let dir = state
        .store
        .create_directory(org, name, &key.id, &key.hash, audit)
        .await?;
    Ok((dir, key.secret))
}

/// Lists an organisation's directories.
#[utoipa::path(
    get,
    path = "/admin/v1/orgs/{orgId}/directories",
    tag = "directories",
    operation_id = "listDirectories",
    params(OrgPath),
    responses(
        (status = 200, description = "The organisation's directories", body = DirectoryList),
        (status = 404, description = "No such organisation", body = AdminErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminContext,
    AdminPath(p): AdminPath<OrgPath>,
) -> Result<Json<DirectoryList>, AdminError> {
    let org = org_id(&state, &p.org_id).await?;
    let dirs = state.store.list_directories(org).await?;
    // One read of the org's domains for every directory.
    let domains = state.store.list_domains(org).await?;
    Ok(Json(DirectoryList {
        directories: dirs
            .iter()
            .map(|d| {
                let mut view = DirectoryView::new(&state, d);
                view.domains = domains
                    .iter()
                    .filter(|x| x.directory_id == Some(d.id))
                    .map(|x| x.name.clone())
                    .collect();
                view
            })
            .collect(),
    }))
}

/// Reads a directory, with its user and group counts.
#[utoipa::path(
    get,
    path = "/admin/v1/orgs/{orgId}/directories/{directoryId}",
    tag = "directories",
    operation_id = "getDirectory",
    params(DirectoryPath),
    responses(
        (status = 200, description = "The directory", body = DirectoryView),
        (status = 404, description = "No such organisation, or no such directory in it", body = AdminErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    _admin: AdminContext,
    AdminPath(p): AdminPath<DirectoryPath>,
) -> Result<Json<DirectoryView>, AdminError> {
    let (org, id) = resolve(&state, &p).await?;
    let dir = state
        .store
        .get_directory(org, id)
        .await
        .map_err(not_found_directory)?;
    Ok(Json(
        DirectoryView::new(&state, &dir)
            .with_domains(&state)
            .await?,
    ))
}

/// Changes a directory's settings; the fields absent stay as they are.
#[utoipa::path(
    patch,
    path = "/admin/v1/orgs/{orgId}/directories/{directoryId}",
    tag = "directories",
    operation_id = "updateDirectory",
    params(DirectoryPath),
    request_body = DirectoryPatch,
    responses(
        (status = 200, description = "The directory, changed", body = DirectoryView),
        (status = 404, description = "No such organisation, or no such directory in it", body = AdminErrorBody),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    admin: AdminContext,
    AdminPath(p): AdminPath<DirectoryPath>,
    AdminJson(body): AdminJson<Value>,
) -> Result<Json<DirectoryView>, AdminError> {
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
    if let Some(required) = change.require_verified_domain {
        state
            .store
            .set_directory_require_verified_domain(org, id, required, &admin.audit)
            .await
            .map_err(not_found_directory)?;
        state
            .auth
            .set_directory_require_verified_domain(id, required);
    }
    let dir = state
        .store
        .get_directory(org, id)
        .await
        .map_err(not_found_directory)?;
    Ok(Json(
        DirectoryView::new(&state, &dir)
            .with_domains(&state)
            .await?,
    ))
}

/// A directory the path names but the store does not hold: every
/// directory operation says which thing was missing, as `resolve` does for
/// an id that is not one.
fn not_found_directory(e: crate::store::StoreError) -> AdminError {
    match e {
        crate::store::StoreError::NotFound => AdminError::NotFound("directory not found"),
        other => other.into(),
    }
}

/// Deletes a directory: its users, groups and memberships go with it, and
/// its key stops working at once.
#[utoipa::path(
    delete,
    path = "/admin/v1/orgs/{orgId}/directories/{directoryId}",
    tag = "directories",
    operation_id = "deleteDirectory",
    params(DirectoryPath),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such organisation, or no such directory in it", body = AdminErrorBody),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    admin: AdminContext,
    AdminPath(p): AdminPath<DirectoryPath>,
) -> Result<StatusCode, AdminError> {
    let (org, id) = resolve(&state, &p).await?;
    remove_directory(&state, org, id, &admin.audit).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes directory `id` of `org` with everything in it; its key stops
/// working at once. (The admin API and the console both delete this way.)
pub(crate) async fn remove_directory(
    state: &AppState,
    org: Uuid,
    id: Uuid,
    audit: &crate::audit::AuditContext,
) -> Result<(), AdminError> {
    state
        .store
        .delete_directory(org, id, audit)
        .await
        .map_err(not_found_directory)?;
    state.auth.forget_directory(id);
    Ok(())
}

/// Issues directory `id` of `org` a new API key and evaluates to its
/// secret, shown once; the old key stops working at once. (The admin API
/// and the console both rotate this way.)
pub(crate) async fn regenerate_key(
    state: &AppState,
    org: Uuid,
    id: Uuid,
    audit: &crate::audit::AuditContext,
) -> Result<String, AdminError> {
    let key = new_api_key().await?;
    state
        .store
        .set_directory_key(org, id, &key.id, &key.hash, audit)
        .await
        .map_err(not_found_directory)?;
    state.auth.forget_directory(id);
    Ok(key.secret)
}

/// Issues a new key; the old one stops working immediately.
#[utoipa::path(
    post,
    path = "/admin/v1/orgs/{orgId}/directories/{directoryId}/api-key",
    tag = "directories",
    operation_id = "rotateDirectoryKey",
    params(DirectoryPath),
    responses(
        (status = 200, description = "The directory, with its new API key (shown this once)", body = DirectoryWithKey),
        (status = 404, description = "No such organisation, or no such directory in it", body = AdminErrorBody),
    )
)]
pub async fn rotate_key(
    State(state): State<AppState>,
    admin: AdminContext,
    AdminPath(p): AdminPath<DirectoryPath>,
) -> Result<Json<DirectoryWithKey>, AdminError> {
    let (org, id) = resolve(&state, &p).await?;
    let api_key = regenerate_key(&state, org, id, &admin.audit).await?;
    let dir = state.store.get_directory(org, id).await?;
    Ok(Json(DirectoryWithKey {
        directory: DirectoryView::new(&state, &dir)
            .with_domains(&state)
            .await?,
        api_key,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
            ok(json!({"rateLimit": {"perSecond": 5.0, "burst": 1e1}})).rate_limit,
            limit(5, 10)
        );
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
