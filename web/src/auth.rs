//! Sign-in: the bearer token is kept for the tab (`sessionStorage`), sent as
//! `Authorization: Bearer` on every HTTP call and as `?token=` on streams (a browser cannot set
//! a WebSocket's headers). A refusal (401 or 403) is announced to the app, which asks for a
//! token instead of calling the server unreachable; whatever was refused stops retrying.

use std::cell::Cell;

/// The `sessionStorage` key of the token.
const TOKEN_KEY: &str = "restmq.token";
/// The window event fired when a call is refused, or the token changes.
pub const AUTH_EVENT: &str = "restmq-auth";

thread_local! {
    /// The status of the latest refusal since the token last changed (401 or 403).
    static REFUSED: Cell<Option<u16>> = const { Cell::new(None) };
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.session_storage().ok()?
}

/// The token of this tab, if one was given.
pub fn token() -> Option<String> {
    storage()?.get_item(TOKEN_KEY).ok()?.filter(|token| !token.trim().is_empty())
}

/// Keeps `token` for the tab (`None`: signs out) and tells the app.
pub fn set_token(token: Option<&str>) {
    if let Some(storage) = storage() {
        let _ = match token.map(str::trim).filter(|t| !t.is_empty()) {
            Some(token) => storage.set_item(TOKEN_KEY, token),
            None => storage.remove_item(TOKEN_KEY),
        };
    }
    REFUSED.with(|r| r.set(None));
    announce();
}

/// The status of the latest refusal (401: no or wrong token; 403: the token lacks a right).
pub fn refused() -> Option<u16> {
    REFUSED.with(Cell::get)
}

/// Records that the server refused a call with `status`, when it is 401 or 403.
pub fn note_status(status: u16) {
    if matches!(status, 401 | 403) && refused() != Some(401) {
        REFUSED.with(|r| r.set(Some(status)));
        announce();
    }
}

/// Whether `status` is a refusal that retrying without a new token cannot fix.
pub fn is_refusal(status: u16) -> bool {
    matches!(status, 401 | 403)
}

fn announce() {
    if let Some(window) = web_sys::window() {
        if let Ok(event) = web_sys::Event::new(AUTH_EVENT) {
            let _ = window.dispatch_event(&event);
        }
    }
}

/// `path` with the tab's token as a `token` query parameter, for streams.
pub fn with_token(path: &str) -> String {
    match token() {
        Some(token) => add_query(path, "token", &token),
        None => path.to_owned(),
    }
}

/// Appends `name=value` (value percent-encoded) to `path`'s query.
pub fn add_query(path: &str, name: &str, value: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    let encoded: String = js_sys::encode_uri_component(value).into();
    format!("{path}{sep}{name}={encoded}")
}
