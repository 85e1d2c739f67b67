//! `/admin/orgs/{orgId}`: the organisation at a glance — its directories
//! with their users and groups, and a 30-day chart of users created,
//! deactivated and deleted and of failed writes, drawn on the server as
//! SVG.

use axum::extract::{Path, RawForm, State};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};

use super::{page, refusal, ConsoleRejection, FormFields, Session};
use crate::http::admin::directories::add_directory;
use crate::http::AppState;
use crate::store::DailyStats;

/// Days the chart shows, today included.
pub const CHART_DAYS: i64 = 30;
const DAY_MICROS: i64 = 86_400_000_000;

pub async fn show(
    State(state): State<AppState>,
    session: Session,
    Path(raw_org): Path<String>,
) -> Result<Response, ConsoleRejection> {
    Ok(render(&state, &session, &raw_org, None)
        .await?
        .into_response())
}

/// `POST /admin/orgs/{orgId}/directories`: creates a directory and shows
/// its page with the key, once; a refused name is shown beside the field.
pub async fn create_directory(
    State(state): State<AppState>,
    session: Session,
    Path(raw_org): Path<String>,
    form: RawForm,
) -> Result<Response, ConsoleRejection> {
    let f = FormFields::read(&form);
    session.check_csrf(f.get("csrf"))?;
    let org = crate::http::admin::org_id(&state, &raw_org).await?;
    match add_directory(&state, org, f.get("name"), &session.audit).await {
        Ok((dir, secret)) => {
            super::directory::created(&state, &session, &raw_org, &dir, &secret).await
        }
        Err(e) => {
            let (status, message) = refusal(e)?;
            let page = render(&state, &session, &raw_org, Some((f.get("name"), &message))).await?;
            Ok((status, page).into_response())
        }
    }
}

/// The overview; `refused` is a directory name the API refused, and why.
async fn render(
    state: &AppState,
    session: &Session,
    raw_org: &str,
    refused: Option<(&str, &str)>,
) -> Result<Markup, ConsoleRejection> {
    let org = crate::http::admin::org(state, raw_org).await?;
    let directories = state.store.list_directories(org.id).await?;
    let today = crate::time::now_micros().div_euclid(DAY_MICROS);
    let first = today - (CHART_DAYS - 1);
    let stats = state
        .store
        .audit_stats(org.id, None, first, today + 1)
        .await?;
    let days = per_day(&stats, first);
    let content = html! {
        h1 { (org.name) }
        h2 { "Directories" }
        @if directories.is_empty() {
            p { "No directory yet. Create one to give an identity provider its base URL and key." }
        } @else {
            table {
                caption.visually-hidden { "Directories of " (org.name) }
                thead { tr {
                    th scope="col" { "Name" }
                    th scope="col" { "Key id" }
                    th.num scope="col" { "Users" }
                    th.num scope="col" { "Groups" }
                    th scope="col" { "Created" }
                } }
                tbody {
                    @for d in &directories {
                        tr {
                            td { a href=(format!("/admin/orgs/{}/directories/{}", raw_org, d.id)) { (d.name) } }
                            td { code { (d.key_id) } }
                            td.num { (d.user_count) }
                            td.num { (d.group_count) }
                            td { (crate::time::format_micros(d.created_at).get(..10).unwrap_or_default()) }
                        }
                    }
                }
            }
        }
        nav aria-label="Organisation" {
            ul {
                li { a href=(format!("/admin/orgs/{raw_org}/domains")) { "Domains" } }
                li { a href=(format!("/admin/orgs/{raw_org}/sites")) { "Sites and product access" } }
                li { a href=(format!("/admin/orgs/{raw_org}/report")) { "Provisioning report" } }
                li { a href=(format!("/admin/orgs/{raw_org}/webhooks")) { "Webhooks" } }
            }
        }
        h2 { "Create a directory" }
        form method="post" action=(format!("/admin/orgs/{raw_org}/directories")) {
            input type="hidden" name="csrf" value=(session.csrf);
            label for="directory-name" { "Name (for example, the identity provider's)" }
            input id="directory-name" name="name" type="text" required maxlength="200"
                value=[refused.map(|(name, _)| name)]
                aria-describedby=[refused.map(|_| "directory-name-error")];
            @if let Some((_, why)) = refused {
                p.error id="directory-name-error" role="alert" { (why) }
            }
            p { button type="submit" { "Create directory" } }
        }
        h2 { "The last 30 days" }
        (chart(&days, first))
    };
    Ok(page(&org.name, Some(session), content))
}

/// One day's totals over every directory.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Day {
    pub created: i64,
    pub deactivated: i64,
    pub deleted: i64,
    pub failures: i64,
}

/// The [`CHART_DAYS`] days from day `first` on, each with its totals.
pub fn per_day(stats: &[DailyStats], first: i64) -> Vec<Day> {
    let mut days = vec![Day::default(); CHART_DAYS as usize];
    for s in stats {
        if let Some(d) = usize::try_from(s.day - first)
            .ok()
            .and_then(|i| days.get_mut(i))
        {
            d.created += s.users_created;
            d.deactivated += s.users_deactivated;
            d.deleted += s.users_deleted;
            d.failures += s.failures;
        }
    }
    days
}

/// Grouped bars, one group a day, scaled to the largest count; the same
/// numbers as a table for screen readers.
pub fn chart(days: &[Day], first: i64) -> Markup {
    const W: i64 = 900;
    const H: i64 = 200;
    let max = days
        .iter()
        .flat_map(|d| [d.created, d.deactivated, d.deleted, d.failures])
        .max()
        .unwrap_or(0)
        .max(1);
    let slot = W / days.len().max(1) as i64;
    let bar = (slot - 4) / 4;
    let height = |n: i64| n * (H - 20) / max;
    let date = |i: usize| {
        crate::time::format_micros((first + i as i64) * DAY_MICROS)
            .get(..10)
            .unwrap_or_default()
            .to_owned()
    };
    let totals = days.iter().fold(Day::default(), |t, d| Day {
        created: t.created + d.created,
        deactivated: t.deactivated + d.deactivated,
        deleted: t.deleted + d.deleted,
        failures: t.failures + d.failures,
    });
    html! {
        figure {
            svg xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {W} {H}")) role="img"
                aria-label=(format!(
                    "Per day: {} users created, {} deactivated, {} deleted, {} failures in 30 days",
                    totals.created, totals.deactivated, totals.deleted, totals.failures)) {
                line x1="0" y1=(H - 20) x2=(W) y2=(H - 20) stroke="#c8c8c8" {}
                @for (i, d) in days.iter().enumerate() {
                    @for (k, (class, n)) in [("created", d.created), ("deactivated", d.deactivated),
                        ("deleted", d.deleted), ("failures", d.failures)].into_iter().enumerate() {
                        @if n > 0 {
                            rect class=(class) x=(i as i64 * slot + 2 + k as i64 * bar)
                                y=(H - 20 - height(n)) width=(bar) height=(height(n)) {
                                title { (date(i)) ": " (n) " " (class) }
                            }
                        }
                    }
                }
                text x="0" y=(H - 4) font-size="12" { (date(0)) }
                text x=(W) y=(H - 4) font-size="12" text-anchor="end" { (date(days.len().saturating_sub(1))) }
            }
            figcaption.legend {
                span { span.swatch.created {} "Users created (" (totals.created) ")" }
                span { span.swatch.deactivated {} "Deactivated (" (totals.deactivated) ")" }
                span { span.swatch.deleted {} "Deleted (" (totals.deleted) ")" }
                span { span.swatch.failures {} "Failures (" (totals.failures) ")" }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn stat(day: i64, created: i64, failures: i64) -> DailyStats {
        DailyStats {
            directory_id: Uuid::nil(),
            day,
            users_created: created,
            users_deactivated: 0,
            users_deleted: 0,
            failures,
            access_granted: 0,
            access_revoked: 0,
        }
    }

    #[test]
    fn days_sum_directories_and_ignore_days_outside_the_chart() {
        let days = per_day(
            &[
                stat(100, 2, 0),
                stat(100, 3, 1),
                stat(129, 1, 0),
                stat(130, 9, 9),
                stat(99, 9, 9),
            ],
            100,
        );
        assert_eq!(days.len(), 30);
        assert_eq!(days[0].created, 5);
        assert_eq!(days[0].failures, 1);
        assert_eq!(days[29].created, 1);
        assert_eq!(days.iter().map(|d| d.created).sum::<i64>(), 6);
    }

    #[test]
    fn the_chart_draws_a_bar_per_nonzero_count_scaled_to_the_largest() {
        let mut days = vec![Day::default(); 30];
        days[3].created = 10;
        days[3].failures = 5;
        let svg = chart(&days, 0).into_string();
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(svg.contains("height=\"180\""), "{svg}");
        assert!(svg.contains("height=\"90\""), "{svg}");
        assert!(svg.contains("10 users created"), "{svg}");
    }
}
