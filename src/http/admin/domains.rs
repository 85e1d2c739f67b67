//! `/admin/v1/orgs/{orgId}/domains`: the email domains an organisation
//! claims. A domain is added unverified with a token; the owner publishes
//! the token (a DNS TXT record or a file over HTTP) and asks for a check,
//! which verifies it or, for one verified before, unverifies it. A
//! verified domain may be linked to the one directory that manages it.
//! Accounts in a verified domain are managed: that is derived from the
//! domain's status, so these routes count accounts and never rewrite them.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{org_id, org_id_schema, time, OrgPath};
use crate::directory::domain::{expected_text, new_token, CheckMethod, DomainNameError};
use crate::directory::DomainName;
use crate::http::error::{AdminError, AdminErrorBody};
use crate::http::extract::{AdminContext, AdminJson, AdminPath};
use crate::http::AppState;
use crate::store::{DomainRow, LinkError, StoreError};

/// `{orgId}` and `{domainName}`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[serde(rename_all = "camelCase")]
pub struct DomainPath {
    /// An organisation's id, or `default` for the default organisation.
    /// Anything else names no organisation: 404.
    #[param(schema_with = org_id_schema)]
    pub org_id: String,
    /// A domain of the organisation (case and a trailing dot do not
    /// matter; Unicode names may be given as such or as punycode). One
    /// that is not a domain name names nothing: 404.
    pub domain_name: String,
}

/// A domain to add.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddDomain {
    /// A hostname: LDH labels of 1 to 63 characters, at least two, at most
    /// 253 characters; a trailing dot and upper case are accepted and
    /// normalised, Unicode is converted to punycode. Not an IP address,
    /// not a public mail domain.
    #[schema(example = "example.com", max_length = 1024)]
    name: String,
}

/// How a check is made.
#[derive(Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum VerificationMethod {
    /// A TXT record on the domain.
    Dns,
    /// A file at `/.well-known/scimd-verification.txt` on the domain.
    Http,
}

impl From<VerificationMethod> for CheckMethod {
    fn from(m: VerificationMethod) -> Self {
        match m {
            VerificationMethod::Dns => CheckMethod::Dns,
            VerificationMethod::Http => CheckMethod::Http,
        }
    }
}

/// A check to make now.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyDomain {
    method: VerificationMethod,
}

/// A domain's status: managed accounts are those in `verified` domains.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DomainStatus {
    Unverified,
    Verified,
}

/// The TXT record to publish.
#[derive(Serialize, ToSchema)]
pub struct DnsTxt {
    /// The record's name: the domain itself.
    #[schema(example = "example.com")]
    name: String,
    /// The record's value.
    #[schema(example = "scimd-verification=3q2-7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")]
    value: String,
}

/// The file to publish.
#[derive(Serialize, ToSchema)]
pub struct HttpFile {
    /// Where it is fetched (over HTTPS, else HTTP when HTTPS cannot
    /// connect).
    #[schema(example = "https://example.com/.well-known/scimd-verification.txt")]
    url: String,
    /// A line the file must contain.
    content: String,
}

/// What the owner publishes, either way.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    dns_txt: DnsTxt,
    http_file: HttpFile,
}

/// The last check.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastCheck {
    #[schema(format = DateTime)]
    checked_at: String,
    method: VerificationMethod,
    /// What the check found, in a sentence.
    reason: String,
}

/// A domain of an organisation.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DomainView {
    /// Lowercase ASCII (punycode), without a trailing dot.
    #[schema(example = "example.com")]
    name: String,
    status: DomainStatus,
    verification: Verification,
    /// The directory that manages the domain, if any.
    directory_id: Option<Uuid>,
    #[schema(format = DateTime)]
    created_at: String,
    /// Since when it has been verified; null while unverified.
    #[schema(format = DateTime)]
    verified_at: Option<String>,
    /// Null until it is first checked.
    last_check: Option<LastCheck>,
}

impl From<&DomainRow> for DomainView {
    fn from(row: &DomainRow) -> Self {
        let text = expected_text(&row.token);
        let last_check = match (row.checked_at, row.check_method.as_deref()) {
            (Some(at), Some(method)) => Some(LastCheck {
                checked_at: time(at),
                method: match CheckMethod::parse(method) {
                    Some(CheckMethod::Http) => VerificationMethod::Http,
                    _ => VerificationMethod::Dns,
                },
                reason: row.check_reason.clone().unwrap_or_default(),
            }),
            _ => None,
        };
        DomainView {
            name: row.name.clone(),
            status: if row.is_verified() {
                DomainStatus::Verified
            } else {
                DomainStatus::Unverified
            },
            verification: Verification {
                dns_txt: DnsTxt {
                    name: row.name.clone(),
                    value: text.clone(),
                },
                http_file: HttpFile {
                    url: format!(
                        "https://{}{}",
                        row.name,
                        crate::directory::domain::HTTP_FILE_PATH
                    ),
                    content: text,
                },
            },
            directory_id: row.directory_id,
            created_at: time(row.created_at),
            verified_at: row.verified_at.map(time),
            last_check,
        }
    }
}

/// An organisation's domains.
#[derive(Serialize, ToSchema)]
pub struct DomainList {
    domains: Vec<DomainView>,
}

/// A check's result: the domain as it now is, and what changed.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifyResult {
    #[serde(flatten)]
    domain: DomainView,
    /// What the check found, in a sentence.
    reason: String,
    /// Accounts that were managed under the domain and now are external
    /// (it was verified and this check failed); 0 otherwise.
    #[schema(minimum = 0)]
    accounts_now_external: i64,
}

/// A deleted domain.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeletedDomain {
    name: String,
    /// Accounts that were managed under the domain and now are external
    /// (0 unless it was verified). They are not deleted.
    #[schema(minimum = 0)]
    accounts_now_external: i64,
}

/// The directory that manages a domain, to set.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "describes the body for the OpenAPI document; parse_link reads it"
)]
pub struct LinkDirectory {
    /// A directory of the same organisation, or null to unlink.
    #[schema(nullable, required = true)]
    directory_id: Option<Uuid>,
}

/// A domain's directory, changed.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryLinked {
    name: String,
    directory_id: Option<Uuid>,
    previous_directory_id: Option<Uuid>,
    /// Accounts of the organisation with an email in the domain: managed
    /// by the new directory from now on.
    #[schema(minimum = 0)]
    accounts_moved: i64,
}

fn parse_link(body: &Value) -> Result<Option<Uuid>, String> {
    let Value::Object(fields) = body else {
        return Err("the body must be a JSON object {\"directoryId\": id or null}".into());
    };
    if let Some(other) = fields.keys().find(|k| *k != "directoryId") {
        return Err(format!(
            "unknown field '{other}': the body has only directoryId"
        ));
    }
    match fields.get("directoryId") {
        None => Err("directoryId is required (null unlinks the domain)".into()),
        Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Uuid::parse_str(s).map(Some).map_err(|_| {
            format!("directoryId must be a directory's id (a UUID) or null, not '{s}'")
        }),
        Some(other) => Err(format!(
            "directoryId must be a directory's id (a UUID) or null, not {other}"
        )),
    }
}

/// A domain named by the path: one that is not a name names nothing.
async fn resolve(state: &AppState, p: &DomainPath) -> Result<(Uuid, DomainName), AdminError> {
    let org = org_id(state, &p.org_id).await?;
    let name = DomainName::parse(&p.domain_name).map_err(|_| domain_not_found())?;
    Ok((org, name))
}

fn domain_not_found() -> AdminError {
    AdminError::NotFound("domain not found")
}

fn not_found_domain(e: StoreError) -> AdminError {
    match e {
        StoreError::NotFound => domain_not_found(),
        other => other.into(),
    }
}

/// Adds a domain, unverified, with the token to publish.
#[utoipa::path(
    post,
    path = "/admin/v1/orgs/{orgId}/domains",
    tag = "domains",
    operation_id = "addDomain",
    params(OrgPath),
    request_body = AddDomain,
    responses(
        (status = 201, description = "The domain, unverified, with what to publish to verify it", body = DomainView),
        (status = 400, description = "Not a domain name (`invalid_domain`), a public mail domain (`public_mail_domain`), or a malformed body (`bad_request`)", body = AdminErrorBody),
        (status = 404, description = "No such organisation", body = AdminErrorBody),
        (status = 409, description = "The organisation already has this domain", body = AdminErrorBody),
    )
)]
pub async fn add(
    State(state): State<AppState>,
    admin: AdminContext,
    AdminPath(p): AdminPath<OrgPath>,
    AdminJson(body): AdminJson<AddDomain>,
) -> Result<(StatusCode, Json<DomainView>), AdminError> {
    let org = org_id(&state, &p.org_id).await?;
    let row = add_domain(&state, org, &body.name, &admin.audit).await?;
    Ok((StatusCode::CREATED, Json(DomainView::from(&row))))
}

/// Adds domain `raw` to `org`, unverified, with a new token. (The admin
/// API and the console both add domains this way.)
pub(crate) async fn add_domain(
    state: &AppState,
    org: Uuid,
    raw: &str,
    audit: &crate::audit::AuditContext,
) -> Result<DomainRow, AdminError> {
    let name = DomainName::parse_claimable(raw).map_err(|e| match e {
        DomainNameError::Invalid(..) => AdminError::InvalidDomain(e.to_string()),
        DomainNameError::PublicMailDomain(_) => AdminError::PublicMailDomain(e.to_string()),
    })?;
    state
        .store
        .add_domain(org, &name, &new_token(), audit)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => {
                AdminError::Conflict(format!("the organisation already has the domain {name}"))
            }
            other => other.into(),
        })
}

/// Checks domain `name` of `org` now by `method` and records the outcome:
/// the domain as it now is, and why. (The admin API and the console both
/// verify this way.)
pub(crate) async fn check_domain(
    state: &AppState,
    org: Uuid,
    name: &DomainName,
    method: CheckMethod,
    audit: &crate::audit::AuditContext,
) -> Result<(crate::store::CheckRecorded, String), AdminError> {
    let row = state
        .store
        .get_domain(org, name)
        .await
        .map_err(not_found_domain)?;
    let outcome = state
        .settings
        .domain_checker
        .check(method, name, &row.token)
        .await;
    let recorded = state
        .store
        .record_domain_check(org, name, method, outcome.verified, &outcome.reason, audit)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => AdminError::Conflict(format!(
                "{name} was verified by another organisation during this check"
            )),
            other => not_found_domain(other),
        })?;
    // The store's verdict: a domain another organisation holds is not
    // verified whatever the check found.
    let reason = recorded
        .domain
        .check_reason
        .clone()
        .unwrap_or(outcome.reason);
    Ok((recorded, reason))
}

/// Lists an organisation's domains, by name.
#[utoipa::path(
    get,
    path = "/admin/v1/orgs/{orgId}/domains",
    tag = "domains",
    operation_id = "listDomains",
    params(OrgPath),
    responses(
        (status = 200, description = "The organisation's domains", body = DomainList),
        (status = 404, description = "No such organisation", body = AdminErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminContext,
    AdminPath(p): AdminPath<OrgPath>,
) -> Result<Json<DomainList>, AdminError> {
    let org = org_id(&state, &p.org_id).await?;
    let rows = state.store.list_domains(org).await?;
    Ok(Json(DomainList {
        domains: rows.iter().map(DomainView::from).collect(),
    }))
}

/// Reads a domain, with its last check.
#[utoipa::path(
    get,
    path = "/admin/v1/orgs/{orgId}/domains/{domainName}",
    tag = "domains",
    operation_id = "getDomain",
    params(DomainPath),
    responses(
        (status = 200, description = "The domain", body = DomainView),
        (status = 404, description = "No such organisation, or no such domain in it", body = AdminErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    _admin: AdminContext,
    AdminPath(p): AdminPath<DomainPath>,
) -> Result<Json<DomainView>, AdminError> {
    let (org, name) = resolve(&state, &p).await?;
    let row = state
        .store
        .get_domain(org, &name)
        .await
        .map_err(not_found_domain)?;
    Ok(Json(DomainView::from(&row)))
}

/// Checks the domain now, by DNS or HTTP. A domain that cannot be
/// verified is an answer (`status: unverified` and the reason), not an
/// error; a verified domain that fails becomes unverified, and its
/// accounts external.
#[utoipa::path(
    post,
    path = "/admin/v1/orgs/{orgId}/domains/{domainName}/verify",
    tag = "domains",
    operation_id = "verifyDomain",
    params(DomainPath),
    request_body = VerifyDomain,
    responses(
        (status = 200, description = "What the check found, and the domain as it now is", body = VerifyResult),
        (status = 404, description = "No such organisation, or no such domain in it", body = AdminErrorBody),
        (status = 409, description = "Another organisation verified the domain during this check", body = AdminErrorBody),
    )
)]
pub async fn verify(
    State(state): State<AppState>,
    admin: AdminContext,
    AdminPath(p): AdminPath<DomainPath>,
    AdminJson(body): AdminJson<Value>,
) -> Result<Json<VerifyResult>, AdminError> {
    // What the path names is looked up first: an unknown domain is 404
    // whatever the body.
    let (org, name) = resolve(&state, &p).await?;
    state
        .store
        .get_domain(org, &name)
        .await
        .map_err(not_found_domain)?;
    let body: VerifyDomain = serde_json::from_value(body)
        .map_err(|e| AdminError::BadRequest(format!("invalid request body: {e}")))?;
    let method = CheckMethod::from(body.method);
    let (recorded, reason) = check_domain(&state, org, &name, method, &admin.audit).await?;
    Ok(Json(VerifyResult {
        domain: DomainView::from(&recorded.domain),
        reason,
        accounts_now_external: recorded.accounts_now_external,
    }))
}

/// Deletes a domain. Its accounts stay, external from now on.
#[utoipa::path(
    delete,
    path = "/admin/v1/orgs/{orgId}/domains/{domainName}",
    tag = "domains",
    operation_id = "deleteDomain",
    params(DomainPath),
    responses(
        (status = 200, description = "Deleted; how many accounts were managed under it", body = DeletedDomain),
        (status = 404, description = "No such organisation, or no such domain in it", body = AdminErrorBody),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    admin: AdminContext,
    AdminPath(p): AdminPath<DomainPath>,
) -> Result<Json<DeletedDomain>, AdminError> {
    let (org, name) = resolve(&state, &p).await?;
    let external = state
        .store
        .delete_domain(org, &name, &admin.audit)
        .await
        .map_err(not_found_domain)?;
    Ok(Json(DeletedDomain {
        name: name.to_string(),
        accounts_now_external: external,
    }))
}

/// Links a verified domain to the one directory of the organisation that
/// manages it (moving it from another), or unlinks it with null.
#[utoipa::path(
    put,
    path = "/admin/v1/orgs/{orgId}/domains/{domainName}/directory",
    tag = "domains",
    operation_id = "setDomainDirectory",
    params(DomainPath),
    request_body = LinkDirectory,
    responses(
        (status = 200, description = "The domain's directory, changed", body = DirectoryLinked),
        (status = 404, description = "No such organisation, no such domain in it, or no such directory in it", body = AdminErrorBody),
        (status = 409, description = "The domain is not verified (`domain_not_verified`)", body = AdminErrorBody),
    )
)]
pub async fn set_directory(
    State(state): State<AppState>,
    admin: AdminContext,
    AdminPath(p): AdminPath<DomainPath>,
    AdminJson(body): AdminJson<Value>,
) -> Result<Json<DirectoryLinked>, AdminError> {
    let (org, name) = resolve(&state, &p).await?;
    let directory_id = parse_link(&body).map_err(AdminError::BadRequest)?;
    let moved = state
        .store
        .set_domain_directory(org, &name, directory_id, &admin.audit)
        .await
        .map_err(|e| match e {
            LinkError::UnknownDomain => domain_not_found(),
            LinkError::UnknownDirectory => AdminError::NotFound("directory not found"),
            LinkError::NotVerified => AdminError::DomainNotVerified(format!(
                "the domain {name} is not verified: verify it before linking it to a directory"
            )),
            LinkError::Store(e) => e.into(),
        })?;
    Ok(Json(DirectoryLinked {
        name: name.to_string(),
        directory_id,
        previous_directory_id: moved.previous,
        accounts_moved: moved.accounts_moved,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_link_names_a_directory_or_null() {
        let id = Uuid::new_v4();
        assert_eq!(
            parse_link(&json!({"directoryId": id.to_string()})),
            Ok(Some(id))
        );
        assert_eq!(parse_link(&json!({"directoryId": null})), Ok(None));
        assert!(parse_link(&json!({})).unwrap_err().contains("required"));
        assert!(parse_link(&json!({"directoryId": "x"})).is_err());
        assert!(parse_link(&json!({"directoryId": 5})).is_err());
        assert!(parse_link(&json!({"directoryId": null, "x": 1})).is_err());
        assert!(parse_link(&json!([])).is_err());
    }
}
