//! The OpenAPI 3.1 document of the admin API, generated from the handlers'
//! own descriptions (`#[utoipa::path]` beside each one in `admin/`) and
//! the types they read and write. Served at `GET /openapi.json`; a copy is
//! committed as `docs/openapi.json`, and a test fails when the two differ.
//!
//! The errors every operation can answer are added here, once, from what
//! the operation takes (a path, a query string, a body), so no operation
//! can forget one; the operation itself lists the errors of its own
//! (a 404 for an organisation it names).

use std::sync::LazyLock;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, RefOr, Required};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use super::admin::{
    access, accounts, atlassian, billing, directories, domains, events, org_groups, orgs, outbox,
    reports, sites, sync, sync_settings, webhooks,
};
use super::error::{AdminErrorBody, AdminErrorCode};
use super::AppState;
use utoipa::openapi::schema::Schema;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "scimd admin API",
        description = "Organisations, directories (their SCIM base URL and API key) and provisioning reports. \
Every request carries an admin token (`Authorization: Bearer scimd_admin_…`). \
Every error is JSON: `{\"status\", \"error\", \"message\"}`, `error` being a stable code (see `AdminErrorCode`).",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        orgs::create,
        orgs::list,
        orgs::get,
        directories::create,
        directories::list,
        directories::get,
        directories::update,
        directories::delete,
        directories::rotate_key,
        domains::add,
        domains::list,
        domains::get,
        domains::verify,
        domains::delete,
        domains::set_directory,
        reports::provisioning,
        reports::stats,
        accounts::list,
        accounts::get,
        accounts::deactivate,
        accounts::reactivate,
        accounts::unlinked_users,
        accounts::relink,
        accounts::scim_links_for_group,
        atlassian::get_scim_links,
        atlassian::get_scim_links_for_email,
        atlassian::unlink,
        atlassian::only_delete_user_in_db,
        sites::create_site,
        sites::list_sites,
        sites::get_site,
        sites::delete_site,
        sites::add_product,
        sites::list_products,
        sites::get_product,
        sites::remove_product,
        sites::set_product_settings,
        sites::add_grant,
        sites::list_grants,
        sites::revoke_grant,
        access::product_users,
        access::account_access,
        billing::get,
        org_groups::create,
        org_groups::list,
        org_groups::get,
        org_groups::update,
        org_groups::delete,
        org_groups::add_members,
        org_groups::remove_member,
        sync_settings::get,
        sync_settings::put,
        events::list,
        webhooks::create,
        webhooks::list,
        webhooks::get,
        webhooks::update,
        webhooks::delete,
        webhooks::rotate_secret,
        webhooks::test,
        webhooks::replay,
        webhooks::attempts,
        outbox::list,
        outbox::get,
        outbox::retry,
        sync::start,
        sync::status,
        sync::list,
        sync::get,
    ),
    components(schemas(AdminErrorBody, AdminErrorCode)),
    modifiers(&AdminToken, &CommonErrors),
    security(("adminToken" = [])),
    tags(
        (name = "orgs", description = "Organisations"),
        (name = "directories", description = "Directories: what one identity provider provisions into"),
        (name = "domains", description = "The email domains an organisation claims, their verification, and the directory that manages each"),
        (name = "reports", description = "The provisioning report and its counters"),
        (name = "accounts", description = "Org-level accounts, which SCIM users link to"),
        (name = "atlassian", description = "Atlassian's user provisioning admin routes, same paths and shapes"),
        (name = "sites", description = "Sites, their products, and the groups granted access to them"),
        (name = "groups", description = "Groups of the organisation, kept by the admin (not synced by SCIM)"),
        (name = "access", description = "Product access as it is: who can use what, through which group, and the billable users it makes"),
        (name = "events", description = "The event feed: every committed change, in order, for the applications downstream"),
        (name = "webhooks", description = "Endpoints sent the org's events, signed as Standard Webhooks has it, with retries, replay and an attempts log"),
        (name = "outbox", description = "Email to provisioned users: queued, sent, or waiting for an admin"),
        (name = "sync", description = "The sync engine: runs that turn a directory's groups into product access, their status and history"),
    )
)]
struct AdminApi;

/// The admin token, a bearer token.
struct AdminToken;

impl Modify for AdminToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "adminToken",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("scimd_admin_<id>.<secret>")
                    .description(Some(
                        "An admin token: printed at first start, or made with `scimd admin-token create`.",
                    ))
                    .build(),
            ),
        );
    }
}

/// Adds to each operation the errors that follow from its shape.
struct CommonErrors;

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let ops = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for op in ops.into_iter().flatten() {
                for code in common_errors(op) {
                    let status = code.status().as_u16().to_string();
                    op.responses
                        .responses
                        .entry(status)
                        .or_insert_with(|| RefOr::T(error_response(code)));
                }
            }
        }
    }
}

/// The errors an operation can answer because of what it takes.
fn common_errors(op: &Operation) -> Vec<AdminErrorCode> {
    let params = op.parameters.as_deref().unwrap_or_default();
    let has_path = params.iter().any(|p| p.parameter_in == ParameterIn::Path);
    let has_query = params.iter().any(|p| p.parameter_in == ParameterIn::Query);
    let mut codes = Vec::new();
    if op.request_body.is_some() || has_query {
        codes.push(AdminErrorCode::BadRequest);
    }
    codes.push(AdminErrorCode::Unauthorized);
    if has_path {
        codes.push(AdminErrorCode::NotFound);
    }
    if op.request_body.is_some() {
        codes.push(AdminErrorCode::PayloadTooLarge);
        codes.push(AdminErrorCode::UnsupportedMediaType);
    }
    codes.push(AdminErrorCode::TooManyRequests);
    codes.push(AdminErrorCode::Internal);
    codes
}

fn error_response(code: AdminErrorCode) -> utoipa::openapi::Response {
    let description = match code {
        AdminErrorCode::BadRequest => "Malformed JSON, a body or query parameter that is not valid",
        AdminErrorCode::Unauthorized => "No admin token, or not a valid one",
        AdminErrorCode::NotFound => {
            "No such organisation or directory (a path id that is not a UUID names none)"
        }
        AdminErrorCode::MethodNotAllowed => "The path does not take this method",
        AdminErrorCode::Conflict => "A name that must be unique is taken",
        AdminErrorCode::PayloadTooLarge => "The body is larger than the server accepts",
        AdminErrorCode::UnsupportedMediaType => {
            "The body is not JSON (`Content-Type` must name JSON)"
        }
        AdminErrorCode::TooManyRequests => "Too many requests; retry after `Retry-After` seconds",
        AdminErrorCode::Internal => "A fault of the server; the cause is in its log",
        AdminErrorCode::InvalidDomain => "Not a domain name",
        AdminErrorCode::PublicMailDomain => "A public mail domain, which no organisation can own",
        AdminErrorCode::DomainNotVerified => "The domain must be verified first",
        AdminErrorCode::SyncRunning => "A sync run of the directory is running",
        AdminErrorCode::SyncDisabled => "Sync is switched off for the directory",
        AdminErrorCode::ExpiredCursor => "The cursor is older than the events' retention",
        AdminErrorCode::UrlRefused => "The webhook URL reaches inside the network (SSRF)",
    };
    let mut builder = ResponseBuilder::new()
        .description(format!("`{}`: {description}", code.as_str()))
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(AdminErrorBody::schema_ref()))
                .build(),
        );
    if code == AdminErrorCode::Unauthorized {
        builder = builder.header(
            "WWW-Authenticate",
            utoipa::openapi::HeaderBuilder::new()
                .schema(String::schema())
                .description(Some("`Bearer realm=\"scimd-admin\"`"))
                .build(),
        );
    }
    if code == AdminErrorCode::TooManyRequests {
        builder = builder.header(
            "Retry-After",
            utoipa::openapi::HeaderBuilder::new()
                .schema(u32::schema())
                .description(Some("Whole seconds to wait before the next request"))
                .build(),
        );
    }
    builder.build()
}

trait SchemaRef {
    fn schema_ref() -> RefOr<utoipa::openapi::schema::Schema>;
}

impl<T: ToSchema> SchemaRef for T {
    fn schema_ref() -> RefOr<utoipa::openapi::schema::Schema> {
        RefOr::Ref(utoipa::openapi::Ref::from_schema_name(T::name()))
    }
}

/// The document, as a value, for a server with the default settings.
pub fn document() -> utoipa::openapi::OpenApi {
    document_for(crate::config::defaults::AUDIT_RETENTION_DAYS)
}

/// The document of a server that keeps audit events `retention_days`
/// days: the most days `reports/stats` counts.
fn document_for(retention_days: u32) -> utoipa::openapi::OpenApi {
    let mut doc = AdminApi::openapi();
    for item in doc.paths.paths.values_mut() {
        let ops = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for op in ops.into_iter().flatten() {
            // A body, where there is one, is required; so is every path
            // parameter (OpenAPI requires it; a parameter whose schema is
            // given by a function is not marked so by the derive).
            if let Some(body) = op.request_body.as_mut() {
                body.required = Some(Required::True);
            }
            for p in op.parameters.iter_mut().flatten() {
                if p.parameter_in == ParameterIn::Path {
                    p.required = Required::True;
                }
                if op.operation_id.as_deref() == Some("provisioningStats") && p.name == "days" {
                    if let Some(RefOr::T(Schema::Object(o))) = p.schema.as_mut() {
                        o.maximum = Some(f64::from(retention_days).into());
                    }
                }
            }
        }
    }
    doc
}

/// The document as pretty JSON with a final newline: what `GET
/// /openapi.json` serves with the default settings, what `scimd openapi`
/// prints and `docs/openapi.json` holds.
pub fn json() -> String {
    static JSON: LazyLock<String> = LazyLock::new(|| to_json(&document()));
    JSON.clone()
}

fn to_json(doc: &utoipa::openapi::OpenApi) -> String {
    match doc.to_pretty_json() {
        Ok(mut s) => {
            s.push('\n');
            s
        }
        Err(e) => {
            tracing::error!(error = %e, "the OpenAPI document could not be serialised");
            String::new()
        }
    }
}

/// `GET /openapi.json`, unauthenticated: the document of this server.
pub async fn serve(State(state): State<AppState>) -> Response {
    let retention = state.settings.audit_retention_days;
    let body = if retention == crate::config::defaults::AUDIT_RETENTION_DAYS {
        json()
    } else {
        to_json(&document_for(retention))
    };
    let mut resp = body.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// `(METHOD, /admin/v1/path)` of every `.route(…)` in the admin
    /// router's source, path parameters spelt as in the document.
    fn routed() -> BTreeSet<(String, String)> {
        let mut out = routed_in(include_str!("admin/mod.rs"), "/admin/v1");
        out.extend(routed_in(
            include_str!("admin/atlassian.rs"),
            atlassian::PREFIX,
        ));
        out
    }

    /// [`routed`] of one router's source, mounted at `prefix`.
    fn routed_in(src: &str, prefix: &str) -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        for (start, _) in src.match_indices(".route(") {
            // The call's text, up to its closing parenthesis.
            let mut depth = 0;
            let mut end = start;
            for (i, c) in src[start..].char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            end = start + i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let call = &src[start..end];
            let path = call.split('"').nth(1).unwrap();
            for method in ["get", "post", "put", "patch", "delete"] {
                let called = call
                    .match_indices(&format!("{method}("))
                    .any(|(i, _)| i > 0 && matches!(&call[i - 1..i], "(" | "." | " " | "\n"));
                if called {
                    out.insert((method.to_uppercase(), format!("{prefix}{path}")));
                }
            }
        }
        out
    }

    fn documented() -> BTreeSet<(String, String)> {
        let doc: serde_json::Value = serde_json::from_str(&json()).unwrap();
        let mut out = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
        out
    }

    /// An endpoint added to the router without `#[utoipa::path]` and a
    /// line in `AdminApi`'s `paths(…)` fails here.
    #[test]
    fn every_admin_route_is_documented_and_nothing_else() {
        let routed = routed();
        assert!(routed.len() >= 10, "{routed:?}");
        assert_eq!(routed, documented());
    }

    #[test]
    fn every_operation_lists_its_errors() {
        let doc: serde_json::Value = serde_json::from_str(&json()).unwrap();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let responses = op["responses"].as_object().unwrap();
                let mut expected = vec!["401", "429", "500"];
                if path.contains('{') {
                    expected.push("404");
                }
                if op.get("requestBody").is_some() {
                    expected.extend(["400", "413", "415"]);
                }
                for status in expected {
                    let r = &responses[status];
                    assert_eq!(
                        r["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/AdminErrorBody",
                        "{method} {path} {status}"
                    );
                }
                for p in op["parameters"].as_array().into_iter().flatten() {
                    if p["in"] == "path" {
                        assert_eq!(p["required"], true, "{method} {path}");
                    }
                }
            }
        }
        let codes = &doc["components"]["schemas"]["AdminErrorCode"]["enum"];
        let listed: Vec<&str> = AdminErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(codes, &serde_json::json!(listed));
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(
            doc["components"]["securitySchemes"]["adminToken"]["scheme"],
            "bearer"
        );
    }
}
