//! `/admin/orgs/{orgId}/domains`: the organisation's domains, what to
//! publish to verify each (a DNS TXT record or an HTTP file), "Verify now"
//! with the reason when it fails, and the directory a verified domain is
//! linked to.

use axum::extract::{Path, RawForm, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::{page, refusal, ConsoleRejection, FormFields, Session};
use crate::directory::domain::{expected_text, CheckMethod, DomainName, HTTP_FILE_PATH};
use crate::http::admin::domains::{add_domain, check_domain};
use crate::http::error::AdminError;
use crate::http::AppState;
use crate::time::format_micros;

#[derive(Deserialize)]
pub struct DomainPath {
    #[serde(rename = "orgId")]
    org_id: String,
    #[serde(rename = "domainName")]
    domain_name: String,
}

/// What the page says after an action: beside the add form, or beside one
/// domain.
enum Notice {
    None,
    AddError(String),
    Checked {
        domain: String,
        verified: bool,
        reason: String,
    },
}

async fn render(
    state: &AppState,
    session: &Session,
    raw_org: &str,
    notice: Notice,
) -> Result<maud::Markup, ConsoleRejection> {
    let org = crate::http::admin::org_id(state, raw_org).await?;
    let domains = state.store.list_domains(org).await?;
    let directories = state.store.directory_names(org).await?;
    let add_error = match &notice {
        Notice::AddError(e) => Some(e.as_str()),
        _ => None,
    };
    let content = html! {
        p { a href=(format!("/admin/orgs/{raw_org}")) { "← Organisation" } }
        h1 { "Domains" }
        form method="post" action=(format!("/admin/orgs/{raw_org}/domains")) {
            input type="hidden" name="csrf" value=(session.csrf);
            label for="name" { "Add a domain" }
            input id="name" name="name" type="text" placeholder="example.com" required
                aria-describedby=[add_error.map(|_| "name-error")];
            @if let Some(e) = add_error {
                p.error id="name-error" role="alert" { (e) }
            }
            p { button type="submit" { "Add domain" } }
        }
        @if domains.is_empty() {
            p { "No domain yet." }
        }
        @for d in &domains {
            @let id = format!("domain-{}", d.name.replace('.', "-"));
            section aria-labelledby=(id) {
                h2 id=(id) { (d.name) " — " (d.status) }
                @if let Notice::Checked { domain, verified, reason } = &notice {
                    @if domain == &d.name {
                        p role="status" class=(if *verified { "ok" } else { "error" }) {
                            @if *verified { "Verified: " } @else { "Not verified: " } (reason)
                        }
                    }
                }
                dl {
                    @if let Some(at) = d.verified_at { dt { "Verified" } dd { (format_micros(at)) } }
                    @if let (Some(at), Some(reason)) = (d.checked_at, &d.check_reason) {
                        dt { "Last check" } dd { (format_micros(at)) ": " (reason) }
                    }
                    dt { "Directory" } dd {
                        @match d.directory_id.and_then(|id| directories.iter().find(|(dir, _)| *dir == id)) {
                            Some((dir, name)) => a href=(format!("/admin/orgs/{raw_org}/directories/{dir}")) { (name) },
                            None => "none",
                        }
                    }
                }
                h3 { "To verify it" }
                p { "Either publish a DNS TXT record:" }
                dl {
                    dt { "Name" } dd { code { (d.name) } }
                    dt { "Value" } dd { code { (expected_text(&d.token)) } }
                }
                p { "or serve a file over HTTPS (or HTTP):" }
                dl {
                    dt { "URL" } dd { code { "https://" (d.name) (HTTP_FILE_PATH) } }
                    dt { "Content" } dd { code { (expected_text(&d.token)) } }
                }
                form method="post" action=(format!("/admin/orgs/{raw_org}/domains/{}/verify", d.name)) {
                    input type="hidden" name="csrf" value=(session.csrf);
                    fieldset {
                        legend { "Check by" }
                        label { input type="radio" name="method" value="dns" checked; " DNS TXT record" }
                        label { input type="radio" name="method" value="http"; " HTTP file" }
                    }
                    button type="submit" { "Verify now" }
                }
            }
        }
    };
    Ok(page("Domains", Some(session), content))
}

pub async fn show(
    State(state): State<AppState>,
    session: Session,
    Path(raw_org): Path<String>,
) -> Result<Response, ConsoleRejection> {
    Ok(render(&state, &session, &raw_org, Notice::None)
        .await?
        .into_response())
}

/// Adds a domain, or says why not beside the field.
pub async fn add(
    State(state): State<AppState>,
    session: Session,
    Path(raw_org): Path<String>,
    form: RawForm,
) -> Result<Response, ConsoleRejection> {
    let f = FormFields::read(&form);
    session.check_csrf(f.get("csrf"))?;
    let org = crate::http::admin::org_id(&state, &raw_org).await?;
    match add_domain(&state, org, f.get("name"), &session.audit).await {
        Ok(_) => Ok(Redirect::to(&format!("/admin/orgs/{raw_org}/domains")).into_response()),
        Err(e) => {
            let (status, message) = refusal(e)?;
            let page = render(&state, &session, &raw_org, Notice::AddError(message)).await?;
            Ok((status, page).into_response())
        }
    }
}

/// Checks a domain now and shows what was found beside it.
pub async fn verify(
    State(state): State<AppState>,
    session: Session,
    Path(p): Path<DomainPath>,
    form: RawForm,
) -> Result<Response, ConsoleRejection> {
    let f = FormFields::read(&form);
    session.check_csrf(f.get("csrf"))?;
    let org = crate::http::admin::org_id(&state, &p.org_id).await?;
    let name = DomainName::parse(&p.domain_name).map_err(|_| ConsoleRejection::NotFound)?;
    let method = match f.get("method") {
        "http" => CheckMethod::Http,
        _ => CheckMethod::Dns,
    };
    let notice = match check_domain(&state, org, &name, method, &session.audit).await {
        Ok((recorded, reason)) => Notice::Checked {
            domain: recorded.domain.name.clone(),
            verified: recorded.domain.is_verified(),
            reason,
        },
        Err(AdminError::Conflict(m)) => Notice::Checked {
            domain: name.as_str().to_owned(),
            verified: false,
            reason: m,
        },
        Err(e) => return Err(e.into()),
    };
    Ok(render(&state, &session, &p.org_id, notice)
        .await?
        .into_response())
}
