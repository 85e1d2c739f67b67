//! `/admin/orgs/{orgId}/directories/{directoryId}`: a directory's base URL
//! and key, "Regenerate key" (the new key shown once), deletion with its
//! name typed to confirm, and its users and groups, searchable and paged
//! without ever counting the directory.

use axum::extract::{Path, Query, RawForm, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;
use uuid::Uuid;

use super::{page, ConsoleRejection, FormFields, Session};
use crate::http::admin::directories::{regenerate_key as rotate, remove_directory};
use crate::http::admin::sync::sync_error;
use crate::http::admin::sync_settings::save_sync_settings;
use crate::http::error::AdminError;
use crate::http::AppState;
use crate::scim::list::ListRequest;
use crate::store::{Directory, Keyset};

/// Users, or groups, a page lists.
pub const USERS_PER_PAGE: i64 = 50;

#[derive(Deserialize)]
pub struct DirectoryPath {
    #[serde(rename = "orgId")]
    org_id: String,
    #[serde(rename = "directoryId")]
    directory_id: String,
}

/// The lists' query: a userName prefix and where the user page starts, a
/// displayName prefix and where the group page starts.
#[derive(Deserialize, Default)]
pub struct UserQuery {
    #[serde(default)]
    q: String,
    /// `<createdAt>.<id>` of the last user of the previous page.
    #[serde(default)]
    after: String,
    #[serde(default)]
    gq: String,
    /// `<createdAt>.<id>` of the last group of the previous page.
    #[serde(default)]
    gafter: String,
}

async fn find(state: &AppState, p: &DirectoryPath) -> Result<Directory, ConsoleRejection> {
    let org = crate::http::admin::org_id(state, &p.org_id).await?;
    let id = Uuid::parse_str(&p.directory_id).map_err(|_| ConsoleRejection::NotFound)?;
    match state.store.get_directory(org, id).await {
        Ok(d) => Ok(d),
        Err(crate::store::StoreError::NotFound) => Err(ConsoleRejection::NotFound),
        Err(e) => Err(e.into()),
    }
}

fn base(p: &DirectoryPath) -> String {
    format!("/admin/orgs/{}/directories/{}", p.org_id, p.directory_id)
}

pub async fn show(
    State(state): State<AppState>,
    session: Session,
    Path(p): Path<DirectoryPath>,
    Query(q): Query<UserQuery>,
) -> Result<Response, ConsoleRejection> {
    let dir = find(&state, &p).await?;
    let sections = sections(&state, &session, &dir, &p, &q, SyncNotice::default()).await?;
    Ok(render(&state, &session, &dir, &p, None, None, sections).into_response())
}

/// The page; `new_key` once after a regeneration, `delete_error` by the
/// confirmation field when it did not match.
fn render(
    state: &AppState,
    session: &Session,
    dir: &Directory,
    p: &DirectoryPath,
    new_key: Option<&str>,
    delete_error: Option<&str>,
    sections: Sections,
) -> Markup {
    let base = base(p);
    let content = html! {
        p { a href=(format!("/admin/orgs/{}", p.org_id)) { "← Organisation" } }
        h1 { (dir.name) }
        dl {
            dt { "Base URL" } dd { code { (state.settings.directory_base_url(dir.id)) } }
            dt { "Key id" } dd { code { (dir.key_id) } }
            dt { "Key issued" } dd { (crate::time::format_micros(dir.key_created_at)) }
            dt { "Key last used" } dd { @match dir.key_last_used_at {
                Some(at) => (crate::time::format_micros(at)),
                None => "never",
            } }
            dt { "Created" } dd { (crate::time::format_micros(dir.created_at)) }
            dt { "Users" } dd { (dir.user_count) }
            dt { "Groups" } dd { (dir.group_count) }
        }
        @if let Some(key) = new_key {
            section.notice aria-labelledby="new-key-title" {
                h2 id="new-key-title" { "The new API key" }
                @if dir.key_created_at == dir.created_at {
                    p.warning { "This key is shown only this once. Copy it and the base URL into your identity provider now." }
                } @else {
                    p.warning { "This key is shown only this once. Copy it into your identity provider now; the old key no longer works." }
                }
                p { code id="new-key" { (key) } " "
                    button type="button" data-copy="new-key" hidden { "Copy" }
                    span id="new-key-status" role="status" {} }
            }
        }
        h2 { "API key" }
        form method="post" action=(format!("{base}/key")) {
            input type="hidden" name="csrf" value=(session.csrf);
            p { "A new key replaces the current one at once: the identity provider must be given the new key." }
            button type="submit" { "Regenerate key" }
        }
        h2 { "Sync" }
        (sections.sync)
        h2 { "Sync settings" }
        (sections.settings)
        h2 id="users" { "Users" }
        (sections.users)
        h2 id="groups" { "Groups" }
        (sections.groups)
        h2 { "Delete this directory" }
        form method="post" action=(format!("{base}/delete")) {
            input type="hidden" name="csrf" value=(session.csrf);
            p { "Deleting removes its users, groups and key for good." }
            label for="confirm" { "Type the directory's name, " strong { (dir.name) } ", to confirm" }
            input id="confirm" name="confirm" type="text" autocomplete="off" required
                aria-describedby=[delete_error.map(|_| "confirm-error")];
            @if let Some(e) = delete_error {
                p.error id="confirm-error" role="alert" { (e) }
            }
            p { button.danger type="submit" { "Delete directory" } }
        }
    };
    page(&dir.name, Some(session), content)
}

/// The parts of the page read from the store.
struct Sections {
    sync: Markup,
    settings: Markup,
    users: Markup,
    groups: Markup,
}

/// What the sync part of the page says after an action.
#[derive(Default)]
struct SyncNotice<'a> {
    /// Why "Sync now" was refused.
    refused: Option<&'a str>,
    /// Why the settings were not saved.
    settings_error: Option<&'a str>,
    /// What a run would change now.
    preview: Option<&'a crate::sync::DryRun>,
}

async fn sections(
    state: &AppState,
    session: &Session,
    dir: &Directory,
    p: &DirectoryPath,
    q: &UserQuery,
    notice: SyncNotice<'_>,
) -> Result<Sections, ConsoleRejection> {
    Ok(Sections {
        sync: sync_section(state, session, dir, p, notice.refused, notice.preview).await?,
        settings: settings_section(state, session, dir, p, notice.settings_error).await?,
        users: users_section(state, dir, p, q).await?,
        groups: groups_section(state, dir, p, q).await?,
    })
}

/// The sync settings form, filled with what is saved.
async fn settings_section(
    state: &AppState,
    session: &Session,
    dir: &Directory,
    p: &DirectoryPath,
    error: Option<&str>,
) -> Result<Markup, ConsoleRejection> {
    use crate::directory::sync_settings::{DomainSelection, SyncMode, SyncScope};
    let saved = state
        .store
        .get_sync_settings(dir.org_id, dir.id)
        .await?
        .settings;
    let (groups, _) = state
        .store
        .browse_groups(
            dir.id,
            &ListRequest::all(&crate::scim::schema::GROUP_RESOURCE),
            Keyset::After(i64::MIN, Uuid::nil()),
            500,
        )
        .await?;
    let domains: Vec<String> = state
        .store
        .list_domains(dir.org_id)
        .await?
        .into_iter()
        .filter(|d| d.is_verified())
        .map(|d| d.name)
        .collect();
    let scoped: Vec<Uuid> = match &saved.scope {
        SyncScope::All => Vec::new(),
        SyncScope::Groups(g) => g.clone(),
    };
    let chosen: Vec<String> = match &saved.domains {
        DomainSelection::All => Vec::new(),
        DomainSelection::List(d) => d.iter().map(|n| n.as_str().to_owned()).collect(),
    };
    let continuous = matches!(saved.mode, SyncMode::Continuous);
    Ok(html! {
        form method="post" action=(format!("{}/sync-settings", base(p))) aria-describedby=[error.map(|_| "settings-error")] {
            input type="hidden" name="csrf" value=(session.csrf);
            label { input type="checkbox" name="enabled" value="true" checked[saved.enabled]; " Sync this directory" }
            fieldset {
                legend { "When" }
                label { input type="radio" name="mode" value="continuous" checked[continuous]; " As changes arrive (continuous)" }
                label { input type="radio" name="mode" value="scheduled" checked[!continuous]; " On a schedule" }
            }
            label for="interval" { "Minutes between scheduled syncs (15 to 10080)" }
            input id="interval" name="intervalMinutes" type="number" min="15" max="10080" value=(saved.interval.minutes());
            fieldset {
                legend { "Which users" }
                label { input type="radio" name="scope" value="all" checked[scoped.is_empty()]; " Every user of the directory" }
                label { input type="radio" name="scope" value="groups" checked[!scoped.is_empty()]; " Members of these groups:" }
                @for g in &groups {
                    @let doc: serde_json::Value = serde_json::from_str(&g.doc).unwrap_or_default();
                    label { input type="checkbox" name="group" value=(g.id) checked[scoped.contains(&g.id)]; " " (doc["displayName"].as_str().unwrap_or_default()) }
                }
            }
            fieldset {
                legend { "Which domains" }
                label { input type="radio" name="domains" value="all" checked[chosen.is_empty()]; " Every verified domain" }
                label { input type="radio" name="domains" value="list" checked[!chosen.is_empty()]; " These domains:" }
                @for d in &domains {
                    label { input type="checkbox" name="domain" value=(d) checked[chosen.contains(d)]; " " (d) }
                }
            }
            label { input type="checkbox" name="emailNewUsers" value="true" checked[saved.email_new_users]; " Email the accounts a sync creates" }
            label for="limit" { "Users one group may bring in one sync (empty: the server's default)" }
            input id="limit" name="groupUserLimit" type="number" min="1" max="1000000"
                value=[saved.group_user_limit.own()];
            @if let Some(e) = error {
                p.error id="settings-error" role="alert" { (e) }
            }
            p { button type="submit" { "Save and sync later" } }
        }
    })
}

/// The running run with its progress, "Sync now", and the last runs.
async fn sync_section(
    state: &AppState,
    session: &Session,
    dir: &Directory,
    p: &DirectoryPath,
    message: Option<&str>,
    preview: Option<&crate::sync::DryRun>,
) -> Result<Markup, ConsoleRejection> {
    let base = base(p);
    let live = sync_live(state, dir, p).await?;
    Ok(html! {
        (live)
        @if let Some(d) = preview {
            section.notice aria-labelledby="preview-title" {
                h3 id="preview-title" { "What a sync would do now" }
                ul {
                    li { (d.accounts_to_create) " accounts created" }
                    li { (d.access_to_grant) " access granted" }
                    li { (d.access_to_revoke) " access revoked" }
                    li { (d.emails_to_queue) " emails sent" }
                    li { (d.users_skipped_by_domain) " users skipped for their domain" }
                }
            }
        }
        form method="post" action=(format!("{base}/sync/preview")) {
            input type="hidden" name="csrf" value=(session.csrf);
            button type="submit" { "Preview a sync" }
        }
        form method="post" action=(format!("{base}/sync")) {
            input type="hidden" name="csrf" value=(session.csrf);
            button type="submit" aria-describedby=[message.map(|_| "sync-message")] { "Sync now" }
            @if let Some(m) = message {
                p.error id="sync-message" role="alert" { (m) }
            }
        }
    })
}

/// Whether a sync runs, with its progress, and the last runs. While one
/// runs, the script fetches this again every two seconds (`data-poll`) in
/// place; without the script, "Refresh" does it.
async fn sync_live(
    state: &AppState,
    dir: &Directory,
    p: &DirectoryPath,
) -> Result<Markup, ConsoleRejection> {
    let running = state.store.running_sync_run(dir.id).await?;
    let runs = state.store.list_sync_runs(dir.id, None, 10).await?;
    let base = base(p);
    let poll = running.as_ref().map(|_| format!("{base}/sync/status"));
    Ok(html! {
        div id="sync-live" data-poll=[poll] {
        @if let Some(run) = &running {
            p role="status" { "A sync is running: " (run.accounts_done) " of " (run.accounts_total)
                " accounts done. " a href=(base) { "Refresh" } }
        } @else {
            p role="status" { "No sync is running." }
        }
        @if !runs.is_empty() {
            table {
                caption { "The last runs" }
                thead { tr {
                    th scope="col" { "Started" }
                    th scope="col" { "Trigger" }
                    th scope="col" { "State" }
                    th.num scope="col" { "Accounts" }
                    th.num scope="col" { "Created" }
                    th.num scope="col" { "Deactivated" }
                    th.num scope="col" { "Access granted" }
                    th.num scope="col" { "Access revoked" }
                    th scope="col" { "Failures" }
                } }
                tbody {
                    @for r in &runs {
                        tr {
                            td { (crate::time::format_micros(r.started_at)) }
                            td { (r.trigger) }
                            td { (r.state) }
                            td.num { (r.accounts_total) }
                            td.num { (r.accounts_created) }
                            td.num { (r.accounts_deactivated) }
                            td.num { (r.access_granted) }
                            td.num { (r.access_revoked) }
                            td { (r.failures.as_deref().map_or(0, |f| {
                                serde_json::from_str::<Vec<serde_json::Value>>(f).map_or(0, |v| v.len())
                            })) }
                        }
                    }
                }
            }
        }
        }
    })
}

/// `GET …/sync/status`: [`sync_live`] alone, for the page's script.
pub async fn sync_status(
    State(state): State<AppState>,
    _session: Session,
    Path(p): Path<DirectoryPath>,
) -> Result<Response, ConsoleRejection> {
    let dir = find(&state, &p).await?;
    Ok(sync_live(&state, &dir, &p).await?.into_response())
}

/// A filter for the attribute starting with `prefix`, or none for all.
fn starting_with(attribute: &str, prefix: &str) -> Option<crate::scim::filter::Filter> {
    if prefix.is_empty() {
        return None;
    }
    let value = serde_json::Value::String(prefix.to_owned());
    crate::scim::filter::parse_filter(&format!("{attribute} sw {value}")).ok()
}

/// All of `resource`, or those `filter` matches.
fn list_request<'a>(
    resource: &'static crate::scim::schema::ResourceTypeDef,
    filter: Option<&'a crate::scim::filter::Filter>,
) -> ListRequest<'a> {
    ListRequest::resolve(resource, filter, None, false)
        .unwrap_or_else(|_| ListRequest::all(resource))
}

fn keyset_after(raw: &str) -> Keyset {
    parse_after(raw)
        .map(|(at, id)| Keyset::After(at, id))
        .unwrap_or(Keyset::After(i64::MIN, Uuid::nil()))
}

/// Users whose userName starts with `q.q`, a page after `q.after`.
async fn users_section(
    state: &AppState,
    dir: &Directory,
    p: &DirectoryPath,
    q: &UserQuery,
) -> Result<Markup, ConsoleRejection> {
    let search = q.q.trim();
    let filter = starting_with("userName", search);
    let request = list_request(&crate::scim::schema::USER_RESOURCE, filter.as_ref());
    let (rows, more) = state
        .store
        .browse_users(dir.id, &request, keyset_after(&q.after), USERS_PER_PAGE)
        .await?;
    let next = rows
        .last()
        .filter(|_| more)
        .map(|u| format!("{}.{}", u.created_at, u.id));
    let base = base(p);
    Ok(html! {
        form method="get" action=(format!("{base}#users")) role="search" {
            label for="q" { "Search by userName (starts with)" }
            input id="q" name="q" type="text" value=(search);
            input type="hidden" name="gq" value=(q.gq.trim());
            " " button type="submit" { "Search users" }
        }
        @if rows.is_empty() {
            p { "No user." }
        } @else {
            table {
                caption.visually-hidden { "Users" }
                thead { tr {
                    th scope="col" { "userName" }
                    th scope="col" { "Name" }
                    th scope="col" { "Active" }
                    th scope="col" { "Created" }
                } }
                tbody {
                    @for u in &rows {
                        @let doc: serde_json::Value = serde_json::from_str(&u.doc).unwrap_or_default();
                        tr {
                            td { (doc["userName"].as_str().unwrap_or_default()) }
                            td { (doc["displayName"].as_str().unwrap_or_default()) }
                            td { @if doc["active"].as_bool().unwrap_or(true) { "yes" } @else { "no" } }
                            td { (crate::time::format_micros(u.created_at).get(..10).unwrap_or_default()) }
                        }
                    }
                }
            }
        }
        @if let Some(after) = next {
            p { a href=(format!("{base}?q={}&after={after}&gq={}#users", urlencode(search), urlencode(q.gq.trim()))) { "Next page of users" } }
        }
    })
}

/// Groups whose displayName starts with `q.gq`, a page after `q.gafter`.
async fn groups_section(
    state: &AppState,
    dir: &Directory,
    p: &DirectoryPath,
    q: &UserQuery,
) -> Result<Markup, ConsoleRejection> {
    let search = q.gq.trim();
    let filter = starting_with("displayName", search);
    let request = list_request(&crate::scim::schema::GROUP_RESOURCE, filter.as_ref());
    let (rows, more) = state
        .store
        .browse_groups(dir.id, &request, keyset_after(&q.gafter), USERS_PER_PAGE)
        .await?;
    let next = rows
        .last()
        .filter(|_| more)
        .map(|g| format!("{}.{}", g.created_at, g.id));
    let base = base(p);
    Ok(html! {
        form method="get" action=(format!("{base}#groups")) role="search" {
            label for="gq" { "Search by displayName (starts with)" }
            input id="gq" name="gq" type="text" value=(search);
            input type="hidden" name="q" value=(q.q.trim());
            " " button type="submit" { "Search groups" }
        }
        @if rows.is_empty() {
            p { "No group." }
        } @else {
            table {
                caption.visually-hidden { "Groups" }
                thead { tr {
                    th scope="col" { "displayName" }
                    th scope="col" { "externalId" }
                    th scope="col" { "Created" }
                } }
                tbody {
                    @for g in &rows {
                        @let doc: serde_json::Value = serde_json::from_str(&g.doc).unwrap_or_default();
                        tr {
                            td { (doc["displayName"].as_str().unwrap_or_default()) }
                            td { (doc["externalId"].as_str().unwrap_or_default()) }
                            td { (crate::time::format_micros(g.created_at).get(..10).unwrap_or_default()) }
                        }
                    }
                }
            }
        }
        @if let Some(after) = next {
            p { a href=(format!("{base}?gq={}&gafter={after}&q={}#groups", urlencode(search), urlencode(q.q.trim()))) { "Next page of groups" } }
        }
    })
}

fn parse_after(raw: &str) -> Option<(i64, Uuid)> {
    let (at, id) = raw.split_once('.')?;
    Some((at.parse().ok()?, Uuid::parse_str(id).ok()?))
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The start of every action: the form read, its CSRF token checked, the
/// directory found.
async fn act(
    state: &AppState,
    session: &Session,
    p: &DirectoryPath,
    form: &RawForm,
) -> Result<(FormFields, Directory), ConsoleRejection> {
    let f = FormFields::read(form);
    session.check_csrf(f.get("csrf"))?;
    Ok((f, find(state, p).await?))
}

/// The page again after an action, with what the action has to say.
async fn after_action(
    state: &AppState,
    session: &Session,
    dir: &Directory,
    p: &DirectoryPath,
    shown: Shown<'_>,
) -> Result<Markup, ConsoleRejection> {
    let sections = sections(state, session, dir, p, &UserQuery::default(), shown.sync).await?;
    Ok(render(
        state,
        session,
        dir,
        p,
        shown.new_key,
        shown.delete_error,
        sections,
    ))
}

/// What an action shows on the page it answers with.
#[derive(Default)]
struct Shown<'a> {
    new_key: Option<&'a str>,
    delete_error: Option<&'a str>,
    sync: SyncNotice<'a>,
}

/// Issues a new key and shows it once.
pub async fn regenerate_key(
    State(state): State<AppState>,
    session: Session,
    Path(p): Path<DirectoryPath>,
    form: RawForm,
) -> Result<Response, ConsoleRejection> {
    let (_, dir) = act(&state, &session, &p, &form).await?;
    let secret = rotate(&state, dir.org_id, dir.id, &session.audit).await?;
    let dir = find(&state, &p).await?;
    let shown = Shown {
        new_key: Some(&secret),
        ..Shown::default()
    };
    Ok(after_action(&state, &session, &dir, &p, shown)
        .await?
        .into_response())
}

/// The page of a directory just created in the overview, with its key
/// shown this once.
pub(super) async fn created(
    state: &AppState,
    session: &Session,
    raw_org: &str,
    dir: &Directory,
    secret: &str,
) -> Result<Response, ConsoleRejection> {
    let p = DirectoryPath {
        org_id: raw_org.to_owned(),
        directory_id: dir.id.to_string(),
    };
    let shown = Shown {
        new_key: Some(secret),
        ..Shown::default()
    };
    let page = after_action(state, session, dir, &p, shown).await?;
    Ok((StatusCode::CREATED, page).into_response())
}

/// Deletes the directory when its name was typed.
pub async fn delete(
    State(state): State<AppState>,
    session: Session,
    Path(p): Path<DirectoryPath>,
    form: RawForm,
) -> Result<Response, ConsoleRejection> {
    let (f, dir) = act(&state, &session, &p, &form).await?;
    if f.get("confirm").trim() != dir.name {
        let shown = Shown {
            delete_error: Some("The name typed is not the directory's: nothing was deleted."),
            ..Shown::default()
        };
        let page = after_action(&state, &session, &dir, &p, shown).await?;
        return Ok((StatusCode::BAD_REQUEST, page).into_response());
    }
    remove_directory(&state, dir.org_id, dir.id, &session.audit).await?;
    Ok(Redirect::to(&format!("/admin/orgs/{}", p.org_id)).into_response())
}

/// The message of a refusal to sync (a run is running, sync is off);
/// any other error stays one.
fn sync_refusal(e: AdminError) -> Result<String, ConsoleRejection> {
    match e {
        AdminError::SyncRunning(m) | AdminError::SyncDisabled(m) => Ok(m),
        other => Err(other.into()),
    }
}

/// Starts a sync run now (as the admin API's `POST …/sync`), or says why
/// not beside the button.
pub async fn sync_now(
    State(state): State<AppState>,
    session: Session,
    Path(p): Path<DirectoryPath>,
    form: RawForm,
) -> Result<Response, ConsoleRejection> {
    let (_, dir) = act(&state, &session, &p, &form).await?;
    let started = state
        .sync
        .start_run(
            dir.org_id,
            dir.id,
            crate::sync::Trigger::Manual,
            &session.audit,
        )
        .await
        .map_err(sync_error);
    let refused = match started {
        Ok(_) => return Ok(Redirect::to(&base(&p)).into_response()),
        Err(e) => sync_refusal(e)?,
    };
    let shown = Shown {
        sync: SyncNotice {
            refused: Some(&refused),
            ..SyncNotice::default()
        },
        ..Shown::default()
    };
    let page = after_action(&state, &session, &dir, &p, shown).await?;
    Ok((StatusCode::CONFLICT, page).into_response())
}

/// What a sync would change now, written nowhere.
pub async fn preview(
    State(state): State<AppState>,
    session: Session,
    Path(p): Path<DirectoryPath>,
    form: RawForm,
) -> Result<Response, ConsoleRejection> {
    let (_, dir) = act(&state, &session, &p, &form).await?;
    let (dry, refused) = match state.sync.dry_run(dir.org_id, dir.id).await {
        Ok(d) => (Some(d), None),
        Err(e) => (None, Some(sync_refusal(sync_error(e))?)),
    };
    let shown = Shown {
        sync: SyncNotice {
            refused: refused.as_deref(),
            preview: dry.as_ref(),
            ..SyncNotice::default()
        },
        ..Shown::default()
    };
    Ok(after_action(&state, &session, &dir, &p, shown)
        .await?
        .into_response())
}

/// The settings form read into the admin API's body, checked and saved by
/// its code; its refusal is shown beside the form.
pub async fn save_settings(
    State(state): State<AppState>,
    session: Session,
    Path(p): Path<DirectoryPath>,
    form: RawForm,
) -> Result<Response, ConsoleRejection> {
    let (f, dir) = act(&state, &session, &p, &form).await?;
    let limit = f.get("groupUserLimit").trim();
    let body = serde_json::json!({
        "enabled": f.get("enabled") == "true",
        "mode": if f.get("mode") == "scheduled" { "scheduled" } else { "continuous" },
        "intervalMinutes": f.get("intervalMinutes").trim().parse::<i64>().unwrap_or(0),
        "scope": if f.get("scope") == "groups" {
            serde_json::json!({"type": "groups", "groupIds": f.all("group")})
        } else {
            serde_json::json!({"type": "all"})
        },
        "domains": if f.get("domains") == "list" {
            serde_json::json!({"type": "list", "names": f.all("domain")})
        } else {
            serde_json::json!({"type": "all"})
        },
        "emailNewUsers": f.get("emailNewUsers") == "true",
        "groupUserLimit": if limit.is_empty() { serde_json::Value::Null } else {
            limit.parse::<i64>().map_or(serde_json::Value::from(0), serde_json::Value::from)
        },
    });
    let saved = match serde_json::from_value(body) {
        Ok(body) => save_sync_settings(&state, dir.org_id, dir.id, body, &session.audit)
            .await
            .map(|_| ()),
        Err(e) => Err(AdminError::BadRequest(e.to_string())),
    };
    let (status, message) = match saved {
        Ok(()) => return Ok(Redirect::to(&base(&p)).into_response()),
        Err(AdminError::BadRequest(m) | AdminError::InvalidDomain(m)) => {
            (StatusCode::BAD_REQUEST, m)
        }
        Err(AdminError::DomainNotVerified(m)) => (StatusCode::CONFLICT, m),
        Err(AdminError::Missing(m)) => (StatusCode::NOT_FOUND, m),
        Err(e) => return Err(e.into()),
    };
    let shown = Shown {
        sync: SyncNotice {
            settings_error: Some(&message),
            ..SyncNotice::default()
        },
        ..Shown::default()
    };
    let page = after_action(&state, &session, &dir, &p, shown).await?;
    Ok((status, page).into_response())
}
