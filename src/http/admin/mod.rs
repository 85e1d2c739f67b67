//! The admin REST API (`/admin/v1`), authenticated with an admin token.
//! Every handler is described for the OpenAPI document (`http/openapi.rs`)
//! next to its code, so the document cannot say what the code does not.

use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::Router;
use serde::Deserialize;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::KnownFormat;
use utoipa::IntoParams;
use uuid::Uuid;

use super::error::AdminError;
use super::AppState;

pub(crate) mod access;
pub(crate) mod accounts;
pub(crate) mod atlassian;
pub(crate) mod billing;
pub(crate) mod directories;
pub(crate) mod domains;
pub(crate) mod events;
pub(crate) mod org_groups;
pub(crate) mod orgs;
pub(crate) mod outbox;
pub(crate) mod reports;
pub(crate) mod sites;
pub(crate) mod sync;
pub(crate) mod sync_settings;
pub(crate) mod webhooks;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/orgs", get(orgs::list).post(orgs::create))
        .route("/orgs/{orgId}", get(orgs::get))
        .route(
            "/orgs/{orgId}/directories",
            get(directories::list).post(directories::create),
        )
        .route(
            "/orgs/{orgId}/directories/{directoryId}",
            get(directories::get)
                .patch(directories::update)
                .delete(directories::delete),
        )
        .route(
            "/orgs/{orgId}/directories/{directoryId}/api-key",
            post(directories::rotate_key),
        )
        .route(
            "/orgs/{orgId}/directories/{directoryId}/sync-settings",
            get(sync_settings::get).put(sync_settings::put),
        )
        .route(
            "/orgs/{orgId}/directories/{directoryId}/sync",
            post(sync::start),
        )
        .route(
            "/orgs/{orgId}/directories/{directoryId}/sync/status",
            get(sync::status),
        )
        .route(
            "/orgs/{orgId}/directories/{directoryId}/sync/runs",
            get(sync::list),
        )
        .route(
            "/orgs/{orgId}/directories/{directoryId}/sync/runs/{runId}",
            get(sync::get),
        )
        .route(
            "/orgs/{orgId}/domains",
            get(domains::list).post(domains::add),
        )
        .route(
            "/orgs/{orgId}/domains/{domainName}",
            get(domains::get).delete(domains::delete),
        )
        .route(
            "/orgs/{orgId}/domains/{domainName}/verify",
            post(domains::verify),
        )
        .route(
            "/orgs/{orgId}/domains/{domainName}/directory",
            put(domains::set_directory),
        )
        .route(
            "/orgs/{orgId}/reports/provisioning",
            get(reports::provisioning),
        )
        .route("/orgs/{orgId}/reports/stats", get(reports::stats))
        .route("/orgs/{orgId}/accounts", get(accounts::list))
        .route("/orgs/{orgId}/accounts/{accountId}", get(accounts::get))
        .route(
            "/orgs/{orgId}/accounts/{accountId}/deactivate",
            post(accounts::deactivate),
        )
        .route(
            "/orgs/{orgId}/accounts/{accountId}/reactivate",
            post(accounts::reactivate),
        )
        .route(
            "/orgs/{orgId}/unlinked-users",
            get(accounts::unlinked_users),
        )
        .route(
            "/orgs/{orgId}/directories/{directoryId}/users/{userId}/account",
            put(accounts::relink),
        )
        .route(
            "/orgs/{orgId}/scim-links",
            get(accounts::scim_links_for_group),
        )
        // Sites, products, grants, org groups and product access.
        .route(
            "/orgs/{orgId}/sites",
            get(sites::list_sites).post(sites::create_site),
        )
        .route(
            "/orgs/{orgId}/sites/{siteId}",
            get(sites::get_site).delete(sites::delete_site),
        )
        .route(
            "/orgs/{orgId}/sites/{siteId}/products",
            get(sites::list_products).post(sites::add_product),
        )
        .route(
            "/orgs/{orgId}/sites/{siteId}/products/{key}",
            get(sites::get_product).delete(sites::remove_product),
        )
        .route(
            "/orgs/{orgId}/sites/{siteId}/products/{key}/settings",
            put(sites::set_product_settings),
        )
        .route(
            "/orgs/{orgId}/sites/{siteId}/products/{key}/grants",
            get(sites::list_grants).post(sites::add_grant),
        )
        .route(
            "/orgs/{orgId}/sites/{siteId}/products/{key}/grants/{groupId}",
            delete(sites::revoke_grant),
        )
        .route(
            "/orgs/{orgId}/sites/{siteId}/products/{key}/users",
            get(access::product_users),
        )
        .route(
            "/orgs/{orgId}/accounts/{accountId}/access",
            get(access::account_access),
        )
        .route("/orgs/{orgId}/billing", get(billing::get))
        .route(
            "/orgs/{orgId}/groups",
            get(org_groups::list).post(org_groups::create),
        )
        .route(
            "/orgs/{orgId}/groups/{groupId}",
            get(org_groups::get)
                .patch(org_groups::update)
                .delete(org_groups::delete),
        )
        .route(
            "/orgs/{orgId}/groups/{groupId}/members",
            post(org_groups::add_members),
        )
        .route(
            "/orgs/{orgId}/groups/{groupId}/members/{accountId}",
            delete(org_groups::remove_member),
        )
        .route("/orgs/{orgId}/events", get(events::list))
        .route(
            "/orgs/{orgId}/webhooks",
            get(webhooks::list).post(webhooks::create),
        )
        .route(
            "/orgs/{orgId}/webhooks/{webhookId}",
            get(webhooks::get)
                .patch(webhooks::update)
                .delete(webhooks::delete),
        )
        .route(
            "/orgs/{orgId}/webhooks/{webhookId}/secret",
            post(webhooks::rotate_secret),
        )
        .route(
            "/orgs/{orgId}/webhooks/{webhookId}/test",
            post(webhooks::test),
        )
        .route(
            "/orgs/{orgId}/webhooks/{webhookId}/replay",
            post(webhooks::replay),
        )
        .route(
            "/orgs/{orgId}/webhooks/{webhookId}/attempts",
            get(webhooks::attempts),
        )
        .route("/orgs/{orgId}/outbox", get(outbox::list))
        .route("/orgs/{orgId}/outbox/{messageId}", get(outbox::get))
        .route(
            "/orgs/{orgId}/outbox/{messageId}/retry",
            post(outbox::retry),
        )
        .fallback(not_found)
        // After the routes: it applies to the routes already added.
        .method_not_allowed_fallback(method_not_allowed)
}

async fn not_found() -> Response {
    AdminError::NotFound("no such admin endpoint").into_response()
}

/// axum keeps the `Allow` header it computed for the path.
async fn method_not_allowed() -> Response {
    AdminError::MethodNotAllowed.into_response()
}

/// `{orgId}`: an organisation's id, or `default`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[serde(rename_all = "camelCase")]
pub struct OrgPath {
    /// An organisation's id, or `default` for the default organisation.
    /// Anything else names no organisation: 404.
    #[param(schema_with = org_id_schema)]
    pub org_id: String,
}

/// `{orgId}` and `{directoryId}`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryPath {
    /// An organisation's id, or `default` for the default organisation.
    /// Anything else names no organisation: 404.
    #[param(schema_with = org_id_schema)]
    pub org_id: String,
    /// A directory's id. One that is not a UUID names no directory: 404.
    #[param(value_type = Uuid)]
    pub directory_id: String,
}

/// A UUID, or the word `default`.
pub(super) fn org_id_schema() -> Schema {
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid))),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["default"])),
        )
        .into()
}

/// Resolves an org id from the path; `default` names the default org.
pub(crate) async fn org_id(state: &AppState, raw: &str) -> Result<Uuid, AdminError> {
    Ok(org(state, raw).await?.id)
}

/// The organisation the path names, as [`org_id`] resolves it.
pub(crate) async fn org(state: &AppState, raw: &str) -> Result<crate::store::Org, AdminError> {
    if raw.eq_ignore_ascii_case("default") {
        return Ok(state.store.ensure_default_org().await?);
    }
    let id = Uuid::parse_str(raw).map_err(|_| AdminError::NotFound("organisation not found"))?;
    state
        .store
        .get_org(id)
        .await?
        .ok_or(AdminError::NotFound("organisation not found"))
}

/// White space as the document's patterns mean it (`\s` of ECMAScript
/// regular expressions): Rust's own counts U+0085 and not U+FEFF, so a
/// name the document allows could have been refused as blank.
pub(super) fn is_pattern_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}'
                | '\u{feff}'
    )
}

/// `raw` without leading and trailing [`is_pattern_space`].
pub(super) fn trim_space(raw: &str) -> &str {
    raw.trim_matches(is_pattern_space)
}

/// The longest name of an organisation or directory, in characters.
pub(super) const MAX_NAME_CHARS: usize = 200;

/// A name as given, trimmed: 1 to [`MAX_NAME_CHARS`] characters, without
/// U+0000. (The document says so with a pattern on each name.)
pub(super) fn check_name(raw: &str) -> Result<&str, AdminError> {
    let name = trim_space(raw);
    // The length is the name's as sent, as the document's `maxLength` is.
    if name.is_empty() || raw.chars().count() > MAX_NAME_CHARS {
        return Err(AdminError::BadRequest(format!(
            "name must be 1 to {MAX_NAME_CHARS} characters"
        )));
    }
    if name.contains('\0') {
        // PostgreSQL text cannot hold it; refused on both stores alike.
        return Err(AdminError::BadRequest(
            "name may not contain U+0000".to_owned(),
        ));
    }
    Ok(name)
}

/// A description as given: at most `max` characters, without U+0000
/// (which PostgreSQL text cannot hold).
pub(super) fn check_description(raw: &str, max: usize) -> Result<String, AdminError> {
    if raw.chars().count() > max || raw.contains('\0') {
        return Err(AdminError::BadRequest(format!(
            "description must be at most {max} characters, without U+0000"
        )));
    }
    Ok(raw.to_owned())
}

/// Stored microseconds as RFC 3339 for JSON responses.
/// The pairs of a query string, in order (a parameter may repeat); a
/// malformed one is the client's 400.
pub(super) fn query_pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, AdminError> {
    serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|e| AdminError::BadRequest(format!("malformed query string: {e}")))
}

pub(super) fn time(micros: i64) -> String {
    crate::time::format_micros(micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blank is what the document's pattern calls blank: a name of U+0085
    /// alone is a name, one of U+FEFF alone is not.
    #[test]
    fn names_are_blank_as_the_document_says() {
        assert_eq!(check_name("\u{85}").unwrap(), "\u{85}");
        assert_eq!(check_name(" Okta\u{feff}").unwrap(), "Okta");
        for blank in ["", " ", "\u{feff}", "\u{3000}\t"] {
            assert!(check_name(blank).is_err(), "{blank:?}");
        }
    }
}
