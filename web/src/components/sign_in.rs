//! The sign-in form, shown when the server refuses a call: a "Token" field whose value is kept
//! for the tab and sent with every call from then on.

use yew::prelude::*;

use super::input_value;
use crate::auth;

#[derive(Properties, PartialEq)]
pub struct SignInProps {
    /// The refusal: 401 (no or wrong token) or 403 (the token lacks a right).
    pub status: u16,
    /// Whether a token was sent.
    pub signed_in: bool,
}

#[function_component(SignIn)]
pub fn sign_in(props: &SignInProps) -> Html {
    let token = use_state(String::new);
    let on_input = {
        let token = token.clone();
        Callback::from(move |e: InputEvent| token.set(input_value(&e)))
    };
    let onsubmit = {
        let token = token.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            auth::set_token(Some(&token));
        })
    };
    let why = match (props.status, props.signed_in) {
        (401, false) => "This server needs a token: paste yours to sign in.",
        (401, true) => "The server did not accept this token: paste another one.",
        _ => {
            "This token may not do that here (HTTP 403): sign in with a token that has the right, or go back."
        }
    };
    html! {
        <form class="sign-in" id="sign-in" {onsubmit} aria-labelledby="sign-in-title">
            <h2 id="sign-in-title">{ "Sign in" }</h2>
            <p role="alert">{ why }</p>
            <label>{ "Token" }
                <input id="token" type="password" autocomplete="current-password" required=true
                    value={(*token).clone()} oninput={on_input} />
            </label>
            <button type="submit" id="sign-in-submit">{ "Sign in" }</button>
            <p class="hint">{ "Kept for this tab only (sessionStorage); sent as a Bearer header, and as ?token= on streams." }</p>
        </form>
    }
}
