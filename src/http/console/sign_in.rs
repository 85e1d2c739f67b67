//! `/admin/sign-in` and `/admin/sign-out`.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;
use serde::Deserialize;

use super::{
    cookie, page, random_token, same_secret, session_hash, set_cookie, ConsoleRejection, Session,
    SESSION_COOKIE, SIGN_IN_COOKIE,
};
use crate::auth::Principal;
use crate::http::AppState;

/// How long the sign-in form's CSRF cookie lasts, in seconds.
const SIGN_IN_FORM_SECONDS: i64 = 3600;

/// A missing field is an empty one: refused like a wrong one.
#[derive(Deserialize)]
pub struct SignIn {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
}

#[derive(Deserialize)]
pub struct SignOut {
    #[serde(default)]
    csrf: String,
}

/// The form, with a fresh CSRF value in a cookie and in a hidden field.
fn form_page(state: &AppState, status: StatusCode, error: Option<&str>) -> Response {
    let csrf = random_token();
    let body = page(
        "Sign in",
        None,
        html! {
            h1 { "Sign in to the scimd console" }
            form method="post" action="/admin/sign-in" {
                input type="hidden" name="csrf" value=(csrf);
                label for="token" { "Admin token" }
                input id="token" name="token" type="password" autocomplete="off" required
                    aria-describedby=[error.map(|_| "token-error")];
                @if let Some(e) = error {
                    p.error id="token-error" role="alert" { (e) }
                }
                p { button type="submit" { "Sign in" } }
            }
            p { "An admin token is printed once when the server first starts, or made with "
                code { "scimd admin-token create" } "." }
        },
    );
    (
        status,
        [(
            header::SET_COOKIE,
            set_cookie(state, SIGN_IN_COOKIE, &csrf, SIGN_IN_FORM_SECONDS),
        )],
        body,
    )
        .into_response()
}

/// The sign-in form (or, signed in already, the console).
pub async fn form(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ConsoleRejection> {
    if Session::read(&state, &headers).await?.is_some() {
        return Ok(Redirect::to("/admin/").into_response());
    }
    Ok(form_page(&state, StatusCode::OK, None))
}

/// Checks the token and starts a session.
pub async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<SignIn>,
) -> Result<Response, ConsoleRejection> {
    let expected = cookie(&headers, SIGN_IN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same_secret(expected, &f.csrf) {
        return Err(ConsoleRejection::Csrf);
    }
    let token_id = match state.auth.authenticate(f.token.trim()).await? {
        Some(Principal::Admin { token_id }) => token_id,
        _ => {
            return Ok(form_page(
                &state,
                StatusCode::UNAUTHORIZED,
                Some("That is not an admin token of this server."),
            ))
        }
    };
    let value = random_token();
    let now = crate::time::now_micros();
    let seconds = i64::from(state.settings.console_session_minutes) * 60;
    state
        .store
        .create_console_session(
            &session_hash(&value),
            &token_id,
            &random_token(),
            now,
            now + seconds * 1_000_000,
        )
        .await?;
    let mut resp = Redirect::to("/admin/").into_response();
    let h = resp.headers_mut();
    for cookie in [
        set_cookie(&state, SESSION_COOKIE, &value, seconds),
        set_cookie(&state, SIGN_IN_COOKIE, "", 0),
    ] {
        if let Ok(v) = cookie.parse() {
            h.append(header::SET_COOKIE, v);
        }
    }
    Ok(resp)
}

/// Ends the session.
pub async fn sign_out(
    State(state): State<AppState>,
    session: Session,
    Form(f): Form<SignOut>,
) -> Result<Response, ConsoleRejection> {
    session.check_csrf(&f.csrf)?;
    state.store.delete_console_session(&session.id_hash).await?;
    Ok((
        [(
            header::SET_COOKIE,
            set_cookie(&state, SESSION_COOKIE, "", 0),
        )],
        Redirect::to("/admin/sign-in"),
    )
        .into_response())
}
