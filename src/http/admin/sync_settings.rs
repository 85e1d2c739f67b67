//! `/admin/v1/orgs/{orgId}/directories/{directoryId}/sync-settings`: when
//! the sync engine runs for a directory, which users and groups it takes,
//! which domains it claims accounts in, and whether it emails new users.
//! Saving settings starts nothing ("save and sync later").

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::{KnownFormat, RefOr};
use utoipa::{PartialSchema, ToSchema};
use uuid::Uuid;

use super::{org_id, time, DirectoryPath};
use crate::directory::sync_settings::{
    DomainListError, DomainSelection, GroupUserLimit, SyncInterval, SyncMode, SyncScope,
    SyncSettings,
};
use crate::http::error::{AdminError, AdminErrorBody};
use crate::http::extract::{AdminContext, AdminJson, AdminPath};
use crate::http::AppState;
use crate::store::{StoreError, StoredSyncSettings, SyncSettingsError};

/// When the directory syncs.
#[derive(Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ModeView {
    /// Changes are applied as the identity provider pushes them.
    Continuous,
    /// The directory is synced every `intervalMinutes`.
    Scheduled,
}

/// Which users and groups are synced.
// `All {}`, not `All`: serde lets a unit variant carry unknown fields.
// The schema is written by hand: the derived one would not say that
// unknown fields are refused (`additionalProperties: false`).
#[derive(Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum ScopeView {
    All {},
    Groups {
        #[serde(rename = "groupIds")]
        group_ids: Vec<Uuid>,
    },
}

/// Which domains accounts are claimed in.
#[derive(Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum DomainsView {
    All {},
    List { names: Vec<String> },
}

/// One variant of a `type`-tagged object: its tag, and its one list.
fn tagged(
    tag: &str,
    description: &str,
    list: Option<(&str, ObjectBuilder, &str)>,
) -> ObjectBuilder {
    let mut object = ObjectBuilder::new()
        .description(Some(description))
        .property(
            "type",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([tag])),
        )
        .required("type")
        .additional_properties(Some(AdditionalProperties::FreeForm(false)));
    if let Some((name, items, about)) = list {
        object = object
            .property(
                name,
                ArrayBuilder::new()
                    .items(items)
                    .max_items(Some(1000))
                    .description(Some(about)),
            )
            .required(name);
    }
    object
}

impl PartialSchema for ScopeView {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .description(Some("Which users and groups are synced."))
            .item(tagged(
                "all",
                "Every user and group of the directory, new ones included.",
                None,
            ))
            .item(tagged(
                "groups",
                "These SCIM groups of the directory, with their members.",
                Some((
                    "groupIds",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid))),
                    "SCIM groups of this directory, at most 1000; duplicates are folded. \
                     A group deleted later leaves the list.",
                )),
            ))
            .into()
    }
}

impl ToSchema for ScopeView {}

impl PartialSchema for DomainsView {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .description(Some("Which domains accounts are claimed in."))
            .item(tagged(
                "all",
                "Every verified domain of the organisation.",
                None,
            ))
            .item(tagged(
                "list",
                "These verified domains of the organisation.",
                Some((
                    "names",
                    ObjectBuilder::new().schema_type(Type::String),
                    "Domain names (answered normalised: lowercase, punycode), at most 1000; \
                     duplicates are folded. A domain removed from the organisation later \
                     leaves the list.",
                )),
            ))
            .into()
    }
}

impl ToSchema for DomainsView {}

/// New sync settings: they replace the old ones whole.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncSettingsBody {
    /// Whether the directory is synced at all; absent: true. While false
    /// no run starts and nothing changes access.
    #[serde(default = "enabled_by_default")]
    #[schema(default = true)]
    enabled: bool,
    mode: ModeView,
    /// Minutes between scheduled syncs (kept, unused, in continuous mode).
    #[schema(minimum = 15, maximum = 10080, example = 240)]
    interval_minutes: i64,
    scope: ScopeView,
    domains: DomainsView,
    /// Whether accounts the sync creates are emailed.
    email_new_users: bool,
    /// The users one group may bring in one sync; null or absent: the
    /// server's default, 10000.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000000)]
    group_user_limit: Option<i64>,
}

fn enabled_by_default() -> bool {
    true
}

/// A directory's sync settings.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncSettingsView {
    enabled: bool,
    mode: ModeView,
    #[schema(minimum = 15, maximum = 10080, example = 240)]
    interval_minutes: u32,
    scope: ScopeView,
    domains: DomainsView,
    email_new_users: bool,
    /// The directory's own limit; null: the server's default, 10000.
    #[schema(minimum = 1, maximum = 1000000, required = true)]
    group_user_limit: Option<u32>,
    /// When the settings were last saved (RFC 3339); null: never, these are
    /// the defaults.
    #[schema(format = DateTime, required = true)]
    updated_at: Option<String>,
}

impl From<&StoredSyncSettings> for SyncSettingsView {
    fn from(stored: &StoredSyncSettings) -> Self {
        let s = &stored.settings;
        SyncSettingsView {
            enabled: s.enabled,
            mode: match s.mode {
                SyncMode::Continuous => ModeView::Continuous,
                SyncMode::Scheduled => ModeView::Scheduled,
            },
            interval_minutes: s.interval.minutes(),
            scope: match &s.scope {
                SyncScope::All => ScopeView::All {},
                SyncScope::Groups(g) => ScopeView::Groups {
                    group_ids: g.clone(),
                },
            },
            domains: match &s.domains {
                DomainSelection::All => DomainsView::All {},
                DomainSelection::List(d) => DomainsView::List {
                    names: d.iter().map(|n| n.as_str().to_owned()).collect(),
                },
            },
            email_new_users: s.email_new_users,
            group_user_limit: s.group_user_limit.own(),
            updated_at: stored.updated_at.map(time),
        }
    }
}

impl SyncSettingsBody {
    /// The settings the body asks for, or why they are not settings.
    fn parse(self) -> Result<SyncSettings, AdminError> {
        Ok(SyncSettings {
            enabled: self.enabled,
            mode: match self.mode {
                ModeView::Continuous => SyncMode::Continuous,
                ModeView::Scheduled => SyncMode::Scheduled,
            },
            interval: SyncInterval::parse(self.interval_minutes).map_err(AdminError::BadRequest)?,
            scope: match self.scope {
                ScopeView::All {} => SyncScope::All,
                ScopeView::Groups { group_ids } => {
                    SyncScope::groups(&group_ids).map_err(AdminError::BadRequest)?
                }
            },
            domains: match self.domains {
                DomainsView::All {} => DomainSelection::All,
                DomainsView::List { names } => {
                    DomainSelection::list(&names).map_err(|e| match e {
                        DomainListError::TooMany => AdminError::BadRequest(e.to_string()),
                        DomainListError::Invalid(e) => AdminError::InvalidDomain(e.to_string()),
                    })?
                }
            },
            email_new_users: self.email_new_users,
            group_user_limit: GroupUserLimit::parse(self.group_user_limit)
                .map_err(AdminError::BadRequest)?,
        })
    }
}

async fn resolve(state: &AppState, p: &DirectoryPath) -> Result<(Uuid, Uuid), AdminError> {
    let org = org_id(state, &p.org_id).await?;
    let id = Uuid::parse_str(&p.directory_id)
        .map_err(|_| AdminError::NotFound("directory not found"))?;
    Ok((org, id))
}

fn store_error(e: StoreError) -> AdminError {
    match e {
        StoreError::NotFound => AdminError::NotFound("directory not found"),
        other => other.into(),
    }
}

/// Reads a directory's sync settings (the defaults if never saved).
#[utoipa::path(
    get,
    path = "/admin/v1/orgs/{orgId}/directories/{directoryId}/sync-settings",
    tag = "directories",
    operation_id = "getSyncSettings",
    params(DirectoryPath),
    responses(
        (status = 200, description = "The settings", body = SyncSettingsView),
        (status = 404, description = "No such organisation, or no such directory in it", body = AdminErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    _admin: AdminContext,
    AdminPath(p): AdminPath<DirectoryPath>,
) -> Result<Json<SyncSettingsView>, AdminError> {
    let (org, id) = resolve(&state, &p).await?;
    let stored = state
        .store
        .get_sync_settings(org, id)
        .await
        .map_err(store_error)?;
    Ok(Json(SyncSettingsView::from(&stored)))
}

/// Replaces a directory's sync settings. Nothing is synced now: the
/// settings apply from the next sync.
#[utoipa::path(
    put,
    path = "/admin/v1/orgs/{orgId}/directories/{directoryId}/sync-settings",
    tag = "directories",
    operation_id = "putSyncSettings",
    params(DirectoryPath),
    request_body = SyncSettingsBody,
    responses(
        (status = 200, description = "The settings saved", body = SyncSettingsView),
        (status = 404, description = "No such organisation or directory, or a selected group or domain that is not the directory's or the organisation's (named)", body = AdminErrorBody),
        (status = 409, description = "A selected domain is not verified (`domain_not_verified`)", body = AdminErrorBody),
    )
)]
pub async fn put(
    State(state): State<AppState>,
    admin: AdminContext,
    AdminPath(p): AdminPath<DirectoryPath>,
    AdminJson(body): AdminJson<SyncSettingsBody>,
) -> Result<Json<SyncSettingsView>, AdminError> {
    let (org, id) = resolve(&state, &p).await?;
    let stored = save_sync_settings(&state, org, id, body, &admin.audit).await?;
    Ok(Json(SyncSettingsView::from(&stored)))
}

/// Checks and saves directory `id`'s sync settings; nothing is synced
/// now. (The admin API and the console both save them this way; the
/// console's form is read into the API's body.)
pub(crate) async fn save_sync_settings(
    state: &AppState,
    org: Uuid,
    id: Uuid,
    body: SyncSettingsBody,
    audit: &crate::audit::AuditContext,
) -> Result<crate::store::StoredSyncSettings, AdminError> {
    let settings = body.parse()?;
    state
        .store
        .put_sync_settings(org, id, &settings, audit)
        .await
        .map_err(|e| match e {
            SyncSettingsError::NotVerified(name) => AdminError::DomainNotVerified(format!(
                "domain {name} is not verified: only verified domains can be synced"
            )),
            SyncSettingsError::Store(e) => store_error(e),
        })
}
