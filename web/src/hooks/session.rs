//! The tab's session: sign-in (the token and the server's refusals, from [`crate::auth`]) and
//! the colour theme (following `prefers-color-scheme` until the user picks one).

use gloo_events::EventListener;
use yew::prelude::*;

use crate::auth;

/// `localStorage` key of the theme the user picked.
const THEME_KEY: &str = "restmq.theme";

/// What the app knows of sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Session {
    /// The latest refusal since the token changed: 401 (sign in) or 403 (not allowed).
    pub refused: Option<u16>,
    /// Whether the tab holds a token.
    pub signed_in: bool,
    /// Bumped when the token changes: the views restart with it.
    pub generation: u32,
}

/// Follows sign-in: refusals reported by any call, and token changes.
#[hook]
pub fn use_session() -> Session {
    let session = use_state(|| Session { refused: None, signed_in: auth::token().is_some(), generation: 0 });
    {
        let session = session.clone();
        use_effect_with((), move |()| {
            let listener = web_sys::window().map(|window| {
                EventListener::new(&window, auth::AUTH_EVENT, move |_| {
                    let signed_in = auth::token().is_some();
                    let refused = auth::refused();
                    // A new token (or none) clears the refusal: restart the views with it.
                    let generation = session.generation + u32::from(refused.is_none());
                    session.set(Session { refused, signed_in, generation });
                })
            });
            move || drop(listener)
        });
    }
    *session
}

/// The theme in force (`true`: dark) and a callback that switches it.
#[hook]
pub fn use_theme() -> (bool, Callback<()>) {
    let dark = use_state(|| match stored_theme().as_deref() {
        Some("dark") => true,
        Some("light") => false,
        _ => prefers_dark(),
    });
    {
        let dark = *dark;
        use_effect_with(dark, move |_| apply_theme(dark));
    }
    let toggle = {
        let dark = dark.clone();
        Callback::from(move |()| {
            let next = !*dark;
            if let Some(storage) = web_sys::window().and_then(|w| w.local_storage().ok().flatten()) {
                let _ = storage.set_item(THEME_KEY, if next { "dark" } else { "light" });
            }
            dark.set(next);
        })
    };
    (*dark, toggle)
}

fn stored_theme() -> Option<String> {
    web_sys::window()?.local_storage().ok()??.get_item(THEME_KEY).ok()?
}

fn prefers_dark() -> bool {
    let query = web_sys::window().and_then(|w| w.match_media("(prefers-color-scheme: dark)").ok().flatten());
    query.is_some_and(|q| q.matches())
}

/// Sets `data-theme` on `<html>`, which the style sheet's colours follow.
fn apply_theme(dark: bool) {
    let root = web_sys::window().and_then(|w| w.document()).and_then(|d| d.document_element());
    if let Some(root) = root {
        let _ = root.set_attribute("data-theme", if dark { "dark" } else { "light" });
    }
}

/// Sets the document's title.
pub fn set_title(title: &str) {
    if let Some(document) = web_sys::window().and_then(|w| w.document()) {
        document.set_title(title);
    }
}
