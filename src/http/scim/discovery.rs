//! Discovery (RFC 7644 §4): what this server supports, generated from the
//! same schema metadata that drives parsing, so it cannot drift.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::{list_response, scim_response};
use crate::http::error::ScimApiError;
use crate::http::extract::ScimContext;
use crate::http::AppState;
use crate::scim::schema::{
    all_schemas, resource_type_json, schema_json, service_provider_config_json,
    ServiceProviderFeatures, GROUP_RESOURCE, USER_RESOURCE,
};
use crate::scim::ScimError;

pub async fn service_provider_config(State(state): State<AppState>, ctx: ScimContext) -> Response {
    let features = ServiceProviderFeatures {
        patch: true,
        bulk: Some((
            u32::try_from(state.settings.bulk_max_operations).unwrap_or(u32::MAX),
            state.settings.max_body_bytes as u64,
        )),
        filter_max_results: state.settings.max_page_size,
        change_password: false,
        sort: true,
        etag: true,
        cursor_timeout_seconds: state.settings.cursor_timeout_seconds,
    };
    let body = service_provider_config_json(&features, &ctx.base_url);
    scim_response(StatusCode::OK, &body, None, None)
}

pub async fn schemas(ctx: ScimContext) -> Response {
    let all: Vec<Value> = all_schemas()
        .iter()
        .map(|s| schema_json(s, &ctx.base_url))
        .collect();
    list_response(
        all.len() as i64,
        1,
        all.into_iter().map(Into::into).collect(),
    )
}

pub async fn schema(ctx: ScimContext, Path(p): Path<IdParam>) -> Result<Response, ScimApiError> {
    let found = all_schemas()
        .into_iter()
        .find(|s| s.id.eq_ignore_ascii_case(&p.id))
        .ok_or_else(|| ScimError::not_found(format!("schema {} not found", p.id)))?;
    Ok(scim_response(
        StatusCode::OK,
        &schema_json(found, &ctx.base_url),
        None,
        None,
    ))
}

pub async fn resource_types(ctx: ScimContext) -> Response {
    let all: Vec<Value> = [&USER_RESOURCE, &GROUP_RESOURCE]
        .iter()
        .map(|rt| resource_type_json(rt, &ctx.base_url))
        .collect();
    list_response(
        all.len() as i64,
        1,
        all.into_iter().map(Into::into).collect(),
    )
}

pub async fn resource_type(
    ctx: ScimContext,
    Path(p): Path<IdParam>,
) -> Result<Response, ScimApiError> {
    let found = [&USER_RESOURCE, &GROUP_RESOURCE]
        .into_iter()
        .find(|rt| rt.name.eq_ignore_ascii_case(&p.id))
        .ok_or_else(|| ScimError::not_found(format!("resource type {} not found", p.id)))?;
    Ok(scim_response(
        StatusCode::OK,
        &resource_type_json(found, &ctx.base_url),
        None,
        None,
    ))
}

#[derive(serde::Deserialize)]
pub struct IdParam {
    id: String,
}
