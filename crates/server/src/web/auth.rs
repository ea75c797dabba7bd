//! Who may read the web UI. With `anonymous_read` on (the default) everyone may. With it off,
//! a reader shows an API token (any role) once, either through the sign-in form at `/login` or
//! as `?token=` in a link; the server checks it against the store (sha256, as the REST API
//! does), keeps it in an `HttpOnly`, `SameSite=Strict` cookie (`Secure` when the public URL is
//! https), and redirects to the same address without the token, so it does not stay in the
//! address bar, the history or a referrer. Each request checks the cookie's token again, so a
//! deleted token stops working at once. `/logout` clears the cookie.
//!
//! Pages send a reader without a valid token to the sign-in form; the live stream and the JSON
//! state answer 401 instead ([`DataReader`]).

use super::display::{encode_query_value, query_string};
use super::{Layout, PageError};
use crate::app::AppState;
use crate::store::hash_token;
use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::sync::Arc;

/// The cookie that holds a signed-in reader's token.
pub const COOKIE: &str = "gantry_token";

/// How long the cookie lasts (30 days); the token itself may be deleted sooner.
const COOKIE_MAX_AGE_S: u64 = 30 * 24 * 3600;

/// A reader allowed to see pages. Rejects with a redirect to the sign-in form.
#[derive(Clone, Copy, Debug)]
pub struct Reader {
    /// The reader signed in with a token (the layout offers to sign out).
    pub signed_in: bool,
}

/// A reader allowed to read the live stream and JSON state. Rejects with 401.
#[derive(Clone, Copy, Debug)]
pub struct DataReader;

enum Denied {
    /// No valid token: sign in.
    SignIn,
    /// A valid `?token=`: the cookie is set, go to the same address without it.
    Store(Response),
    Error(PageError),
}

/// The token in the request's cookie, percent-decoded.
fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .and_then(|(_, value)| percent_decode(value))
        .filter(|token| !token.is_empty())
}

/// Decodes `%XX` escapes; `None` when they are malformed or the result is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Whether `token` is a stored API token.
async fn token_is_valid(state: &AppState, token: &str) -> Result<bool, PageError> {
    Ok(state
        .db
        .find_api_token_by_hash(&hash_token(token))
        .await?
        .is_some())
}

fn set_cookie(state: &AppState, token: &str) -> HeaderValue {
    let secure = if state.config.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let value = format!(
        "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={COOKIE_MAX_AGE_S}{secure}",
        encode_query_value(token)
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("gantry_token=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// A local path to go to after signing in: only `/...` on this server (not `//host`), in
/// printable ASCII (it becomes a `Location` header).
fn safe_next(next: &str) -> &str {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && next.bytes().all(|b| b.is_ascii_graphic());
    if local { next } else { "/" }
}

async fn check(parts: &Parts, state: &AppState) -> Result<bool, Denied> {
    let query: Vec<(String, String)> = Query::try_from_uri(&parts.uri)
        .map(|Query(pairs)| pairs)
        .unwrap_or_default();
    if let Some((_, token)) = query.iter().find(|(key, _)| key == "token") {
        if !token_is_valid(state, token).await.map_err(Denied::Error)? {
            return Err(Denied::SignIn);
        }
        let rest: Vec<(&str, &str)> = query
            .iter()
            .filter(|(key, _)| key != "token")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let target = format!("{}{}", parts.uri.path(), query_string(&rest));
        let mut response = Redirect::to(safe_next(&target)).into_response();
        response
            .headers_mut()
            .insert(header::SET_COOKIE, set_cookie(state, token));
        return Err(Denied::Store(response));
    }
    if state.config.anonymous_read {
        return Ok(cookie_token(&parts.headers).is_some());
    }
    match cookie_token(&parts.headers) {
        Some(token) if token_is_valid(state, &token).await.map_err(Denied::Error)? => Ok(true),
        _ => Err(Denied::SignIn),
    }
}

impl FromRequestParts<Arc<AppState>> for Reader {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Reader, Response> {
        match check(parts, state).await {
            Ok(signed_in) => Ok(Reader { signed_in }),
            Err(Denied::SignIn) => {
                let here = match parts.uri.path_and_query() {
                    Some(pq) => pq.as_str().to_owned(),
                    None => "/".to_owned(),
                };
                let next = strip_token(&here);
                Err(
                    Redirect::to(&format!("/login{}", query_string(&[("next", &next)])))
                        .into_response(),
                )
            }
            Err(Denied::Store(response)) => Err(response),
            Err(Denied::Error(error)) => Err(error.into_response()),
        }
    }
}

impl FromRequestParts<Arc<AppState>> for DataReader {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<DataReader, Response> {
        match check(parts, state).await {
            Ok(_) => Ok(DataReader),
            Err(Denied::SignIn) => {
                Err((StatusCode::UNAUTHORIZED, "sign in at /login first").into_response())
            }
            Err(Denied::Store(response)) => Err(response),
            Err(Denied::Error(error)) => Err(error.into_response()),
        }
    }
}

/// A path and query without any `token` parameter.
fn strip_token(path_and_query: &str) -> String {
    match path_and_query.split_once('?') {
        None => path_and_query.to_owned(),
        Some((path, query)) => {
            let kept: Vec<&str> = query
                .split('&')
                .filter(|pair| !pair.starts_with("token=") && *pair != "token")
                .collect();
            if kept.is_empty() {
                path.to_owned()
            } else {
                format!("{path}?{}", kept.join("&"))
            }
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    next: String,
    message: String,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    next: String,
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    next: String,
}

/// `GET /login`: the sign-in form (straight on when no sign-in is needed).
pub async fn login_form(
    State(state): State<Arc<AppState>>,
    query: Result<Query<LoginQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let next = query.map(|Query(q)| q.next).unwrap_or_default();
    let next = safe_next(&next).to_owned();
    if state.config.anonymous_read {
        return Redirect::to(&next).into_response();
    }
    LoginPage {
        layout: Layout::new("Sign in"),
        next,
        message: String::new(),
    }
    .into_response()
}

/// `POST /login`: checks the token, sets the cookie, goes to `next`.
pub async fn login(
    State(state): State<Arc<AppState>>,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    let next = safe_next(&form.next).to_owned();
    let token = form.token.trim();
    if token.is_empty() || !token_is_valid(&state, token).await? {
        let page = LoginPage {
            layout: Layout::new("Sign in"),
            next,
            message: "That token is not valid.".to_owned(),
        };
        return Ok((StatusCode::UNAUTHORIZED, page).into_response());
    }
    let mut response = Redirect::to(&next).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, set_cookie(&state, token));
    Ok(response)
}

/// `POST /logout`: forgets the token.
pub async fn logout() -> Response {
    let mut response = Redirect::to("/login").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, clear_cookie());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next("/runs/run_1?x=1"), "/runs/run_1?x=1");
        assert_eq!(safe_next("//evil.example/"), "/");
        assert_eq!(safe_next("/\\evil.example/"), "/");
        assert_eq!(safe_next("https://evil.example/"), "/");
        assert_eq!(safe_next(""), "/");
        assert_eq!(safe_next("/\u{e9}"), "/", "a Location header is ASCII");
        assert_eq!(safe_next("/a b"), "/");
    }

    #[test]
    fn the_token_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; gantry_token=abc%2Bd; b=2"),
        );
        assert_eq!(cookie_token(&headers).as_deref(), Some("abc+d"));
        assert_eq!(percent_decode("%zz"), None);
    }

    #[test]
    fn tokens_are_taken_out_of_addresses() {
        assert_eq!(strip_token("/jobs/j?token=x&a=1"), "/jobs/j?a=1");
        assert_eq!(strip_token("/?token=x"), "/");
        assert_eq!(strip_token("/runs"), "/runs");
    }
}
