//! `/admin/v1/orgs/{orgId}/directories/{directoryId}/sync…`: start a sync
//! run (or preview one), follow its status, read the history of runs.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::accounts::{decode_cursor, encode_cursor, parse_limit};
use super::{org_id, query_pairs, time, DirectoryPath};
use crate::directory::sync_settings::SyncMode;
use crate::http::error::{AdminError, AdminErrorBody};
use crate::http::extract::{AdminContext, AdminPath};
use crate::http::AppState;
use crate::store::{RunRow, StoreError};
use crate::sync::{decode_run, DryRun, Failure, Plan, Snapshot, SyncError, Trigger};

/// Runs a page lists unless `limit` says otherwise.
const DEFAULT_LIMIT: i64 = 20;

/// `{orgId}`, `{directoryId}` and `{runId}`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[serde(rename_all = "camelCase")]
pub struct RunPath {
    /// An organisation's id, or `default`.
    #[param(schema_with = super::org_id_schema)]
    pub org_id: String,
    /// A directory's id.
    #[param(value_type = Uuid)]
    pub directory_id: String,
    /// A run's id. One that is not a UUID names no run: 404.
    #[param(value_type = Uuid)]
    pub run_id: String,
}

/// `POST …/sync`'s query string.
#[derive(IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[expect(
    dead_code,
    reason = "describes the query string for the OpenAPI document"
)]
pub struct StartQueryDoc {
    /// `true`: answer with what a run would change, and write nothing.
    dry_run: Option<bool>,
}

/// `GET …/sync/runs`' query string.
#[derive(IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[expect(
    dead_code,
    reason = "describes the query string for the OpenAPI document"
)]
pub struct RunsQueryDoc {
    /// 1 to 1000 (default 20).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// `nextCursor` of the previous page.
    cursor: Option<String>,
}

/// A run started.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunStarted {
    run_id: Uuid,
    #[schema(format = DateTime)]
    started_at: String,
}

/// What a run did, as counted when each of its batches committed.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunCounts {
    /// Accounts brought into the organisation's synced accounts for the
    /// first time.
    accounts_created: i64,
    /// Synced accounts whose access changed.
    accounts_updated: i64,
    /// Inactive accounts that lost access.
    accounts_deactivated: i64,
    access_granted: i64,
    access_revoked: i64,
    emails_queued: i64,
    users_skipped_by_domain: i64,
}

/// How far a run is.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunProgress {
    accounts_done: i64,
    accounts_total: i64,
}

/// One run of the sync engine over a directory.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunView {
    run_id: Uuid,
    directory_id: Uuid,
    /// `manual`, `scheduled` or `continuous`.
    trigger: String,
    /// `running`, `succeeded` or `failed`.
    state: String,
    #[schema(format = DateTime)]
    started_at: String,
    #[schema(format = DateTime, required = true)]
    finished_at: Option<String>,
    /// The settings the run applies, as they were when it started.
    settings: Snapshot,
    /// What it applies (null until it has read the directory).
    #[schema(required = true)]
    plan: Option<Plan>,
    counts: RunCounts,
    progress: RunProgress,
    /// Groups over the limit, or why the run stopped.
    failures: Vec<Failure>,
}

impl RunView {
    fn of(run: &RunRow) -> Result<RunView, AdminError> {
        let (settings, plan, failures) = decode_run(run)?;
        Ok(RunView {
            run_id: run.id,
            directory_id: run.directory_id,
            trigger: run.trigger.clone(),
            state: run.state.clone(),
            started_at: time(run.started_at),
            finished_at: run.finished_at.map(time),
            settings,
            plan,
            counts: RunCounts {
                accounts_created: run.accounts_created,
                accounts_updated: run.accounts_updated,
                accounts_deactivated: run.accounts_deactivated,
                access_granted: run.access_granted,
                access_revoked: run.access_revoked,
                emails_queued: run.emails_queued,
                users_skipped_by_domain: run.users_skipped_by_domain,
            },
            progress: RunProgress {
                accounts_done: run.accounts_done,
                accounts_total: run.accounts_total,
            },
            failures,
        })
    }
}

/// A page of runs.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunList {
    runs: Vec<RunView>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// What the last run synced.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncedCounts {
    users: i64,
    groups: i64,
    domains: i64,
}

/// The run in progress.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Running {
    run_id: Uuid,
    trigger: String,
    #[schema(format = DateTime)]
    started_at: String,
    progress: RunProgress,
}

/// A directory's sync status.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncStatus {
    /// `in_progress` while a run runs, `disabled` when switched off,
    /// `enabled` otherwise.
    #[schema(pattern = "^(enabled|in_progress|disabled)$")]
    state: String,
    /// `continuous` or `scheduled`.
    mode: String,
    /// The last finished run.
    #[schema(required = true)]
    last_run: Option<RunView>,
    /// When the next scheduled run starts (scheduled mode).
    #[schema(format = DateTime, required = true)]
    next_run_at: Option<String>,
    /// What the last run synced; zeros before the first.
    synced: SyncedCounts,
    #[schema(required = true)]
    running: Option<Running>,
}

/// The answer of `POST …/sync`: a run started, or a dry run's preview.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum StartAnswer {
    Started(RunStarted),
    Preview(Box<DryRun>),
}

async fn resolve(state: &AppState, org: &str, directory: &str) -> Result<(Uuid, Uuid), AdminError> {
    let org = org_id(state, org).await?;
    let id = Uuid::parse_str(directory).map_err(|_| AdminError::NotFound("directory not found"))?;
    if state.store.directory_org(id).await? != Some(org) {
        return Err(AdminError::NotFound("directory not found"));
    }
    Ok((org, id))
}

pub(crate) fn sync_error(e: SyncError) -> AdminError {
    match e {
        SyncError::Running(run) => AdminError::SyncRunning(format!(
            "sync run {run} of this directory is running; a run cannot be stopped, wait for it \
             to finish"
        )),
        SyncError::Disabled => AdminError::SyncDisabled(
            "sync is switched off for this directory (sync-settings enabled: false)".to_owned(),
        ),
        SyncError::Store(StoreError::NotFound) => AdminError::NotFound("directory not found"),
        SyncError::Store(e) => e.into(),
    }
}

/// Starts a sync run of the directory now (`202`), or with `dryRun=true`
/// answers what a run would change and writes nothing (`200`).
#[utoipa::path(
    post,
    path = "/admin/v1/orgs/{orgId}/directories/{directoryId}/sync",
    tag = "sync",
    operation_id = "startSync",
    params(DirectoryPath, StartQueryDoc),
    responses(
        (status = 202, description = "The run started; follow it with `GET …/sync/runs/{runId}`", body = RunStarted),
        (status = 200, description = "A dry run: what a run would change now", body = DryRun),
        (status = 400, description = "A bad query string", body = AdminErrorBody),
        (status = 404, description = "No such organisation or directory", body = AdminErrorBody),
        (status = 409, description = "A run is running (`sync_running`, naming it), or sync is off (`sync_disabled`)", body = AdminErrorBody),
    )
)]
pub async fn start(
    State(state): State<AppState>,
    admin: AdminContext,
    AdminPath(p): AdminPath<DirectoryPath>,
    RawQuery(raw): RawQuery,
) -> Result<(StatusCode, Json<StartAnswer>), AdminError> {
    let (org, id) = resolve(&state, &p.org_id, &p.directory_id).await?;
    let mut dry_run = false;
    for (key, value) in query_pairs(raw.as_deref())? {
        match key.as_str() {
            "dryRun" => {
                dry_run = match value.trim() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(AdminError::BadRequest(
                            "'dryRun' must be 'true' or 'false'".to_owned(),
                        ))
                    }
                }
            }
            other => {
                return Err(AdminError::BadRequest(format!(
                    "unknown query parameter '{other}'"
                )))
            }
        }
    }
    if dry_run {
        let preview = state.sync.dry_run(org, id).await.map_err(sync_error)?;
        return Ok((
            StatusCode::OK,
            Json(StartAnswer::Preview(Box::new(preview))),
        ));
    }
    let run = state
        .sync
        .start_run(org, id, Trigger::Manual, &admin.audit)
        .await
        .map_err(sync_error)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(StartAnswer::Started(RunStarted {
            run_id: run.id,
            started_at: time(run.started_at),
        })),
    ))
}

/// The directory's sync status: running or not, the last run, the next.
#[utoipa::path(
    get,
    path = "/admin/v1/orgs/{orgId}/directories/{directoryId}/sync/status",
    tag = "sync",
    operation_id = "getSyncStatus",
    params(DirectoryPath),
    responses(
        (status = 200, description = "The status", body = SyncStatus),
        (status = 404, description = "No such organisation or directory", body = AdminErrorBody),
    )
)]
pub async fn status(
    State(state): State<AppState>,
    _admin: AdminContext,
    AdminPath(p): AdminPath<DirectoryPath>,
) -> Result<Json<SyncStatus>, AdminError> {
    let (org, id) = resolve(&state, &p.org_id, &p.directory_id).await?;
    let settings = state.store.get_sync_settings(org, id).await?.settings;
    let running = state.store.running_sync_run(id).await?;
    let last = state.store.last_finished_sync_run(id).await?;
    let next = match settings.mode {
        SyncMode::Scheduled if settings.enabled => state.store.next_scheduled_sync(id).await?,
        _ => None,
    };
    let (users, groups, domains) = state
        .store
        .sync_synced_counts(id)
        .await?
        .unwrap_or_default();
    let state_name = if running.is_some() {
        "in_progress"
    } else if settings.enabled {
        "enabled"
    } else {
        "disabled"
    };
    Ok(Json(SyncStatus {
        state: state_name.to_owned(),
        mode: settings.mode.as_str().to_owned(),
        last_run: last.as_ref().map(RunView::of).transpose()?,
        next_run_at: next.map(time),
        synced: SyncedCounts {
            users,
            groups,
            domains,
        },
        running: running.map(|r| Running {
            run_id: r.id,
            trigger: r.trigger.clone(),
            started_at: time(r.started_at),
            progress: RunProgress {
                accounts_done: r.accounts_done,
                accounts_total: r.accounts_total,
            },
        }),
    }))
}

/// The directory's runs, newest first, in pages.
#[utoipa::path(
    get,
    path = "/admin/v1/orgs/{orgId}/directories/{directoryId}/sync/runs",
    tag = "sync",
    operation_id = "listSyncRuns",
    params(DirectoryPath, RunsQueryDoc),
    responses(
        (status = 200, description = "A page of runs", body = RunList),
        (status = 400, description = "A bad query string", body = AdminErrorBody),
        (status = 404, description = "No such organisation or directory", body = AdminErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminContext,
    AdminPath(p): AdminPath<DirectoryPath>,
    RawQuery(raw): RawQuery,
) -> Result<Json<RunList>, AdminError> {
    let (_, id) = resolve(&state, &p.org_id, &p.directory_id).await?;
    let mut limit = DEFAULT_LIMIT;
    let mut before = None;
    for (key, value) in query_pairs(raw.as_deref())? {
        match key.as_str() {
            "limit" => limit = parse_limit(&value)?,
            "cursor" => before = Some(decode_cursor(&value)?),
            other => {
                return Err(AdminError::BadRequest(format!(
                    "unknown query parameter '{other}'"
                )))
            }
        }
    }
    let mut rows = state.store.list_sync_runs(id, before, limit + 1).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = match (more, rows.last()) {
        (true, Some(last)) => Some(encode_cursor(last.started_at, last.id)),
        _ => None,
    };
    Ok(Json(RunList {
        runs: rows.iter().map(RunView::of).collect::<Result<_, _>>()?,
        next_cursor,
    }))
}

/// One run: when, why, with which settings, what it did and what failed.
#[utoipa::path(
    get,
    path = "/admin/v1/orgs/{orgId}/directories/{directoryId}/sync/runs/{runId}",
    tag = "sync",
    operation_id = "getSyncRun",
    params(RunPath),
    responses(
        (status = 200, description = "The run", body = RunView),
        (status = 404, description = "No such organisation, directory or run", body = AdminErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    _admin: AdminContext,
    AdminPath(p): AdminPath<RunPath>,
) -> Result<Json<RunView>, AdminError> {
    let (_, id) = resolve(&state, &p.org_id, &p.directory_id).await?;
    let run_id = Uuid::parse_str(&p.run_id).map_err(|_| AdminError::NotFound("run not found"))?;
    let run = state
        .store
        .get_sync_run(id, run_id)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => AdminError::NotFound("run not found"),
            other => other.into(),
        })?;
    Ok(Json(RunView::of(&run)?))
}
