//! The root component: the skip link, the header with its navigation, sign-in and theme
//! controls, and the view of the current hash route (restarted when the token changes).

use yew::prelude::*;

use crate::{
    auth,
    components::SignIn,
    hooks::{
        session::{set_title, use_session, use_theme},
        use_route,
    },
    route::{Route, DEFAULT_JOBS, SYSTEM_QUEUE},
    views::{ChartsView, Dashboard, QueueView, ReduceView, StreamView, WorkerView},
};

#[function_component(App)]
pub fn app() -> Html {
    let route = use_route();
    let session = use_session();
    let (dark, toggle_theme) = use_theme();
    use_effect_with(route.title(), |title| set_title(title));
    let section = route.section();
    let link = |href: String, name: &'static str, label: &'static str| {
        let current = (section == name).then_some("page");
        html! { <a {href} class={classes!((section == name).then_some("active"))} aria-current={current}>{ label }</a> }
    };
    let stream_href = match &route {
        Route::Stream(Some(queue)) | Route::Charts(queue) | Route::Queue(queue) => {
            Route::Stream(Some(queue.clone())).to_hash()
        }
        _ => Route::Stream(None).to_hash(),
    };
    let key = format!("{}#{}", session.generation, route.to_hash());
    let view = match &route {
        Route::Dashboard => html! { <Dashboard key={key} /> },
        Route::Stream(queue) => html! { <StreamView key={key} queue={queue.clone()} /> },
        Route::Queue(queue) => html! { <QueueView key={key} queue={queue.clone()} /> },
        Route::Charts(queue) => html! { <ChartsView key={key} queue={queue.clone()} /> },
        Route::Worker(input, job) => {
            html! { <WorkerView key={key} input={input.clone()} job={job.clone()} /> }
        }
        Route::Reduce(input, job) => {
            html! { <ReduceView key={key} input={input.clone()} job={job.clone()} /> }
        }
        Route::NotFound(hash) => html! {
            <p class="notice error" role="alert">
                { format!("Nothing at “{hash}”: queue names are letters, digits and . _ - : @. ") }
                <a href="#/dashboard">{ "Back to the dashboard" }</a>
            </p>
        },
    };
    // The skip link moves focus to the view; a `#main` href would change the route.
    let skip = Callback::from(|e: MouseEvent| {
        e.prevent_default();
        let main = web_sys::window().and_then(|w| w.document()).and_then(|d| d.get_element_by_id("main"));
        if let Some(main) = main.and_then(|m| wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(m).ok())
        {
            let _ = main.focus();
        }
    });
    let sign_out = Callback::from(|_: MouseEvent| auth::set_token(None));
    html! {
        <>
            <a class="skip" href="#/dashboard" onclick={skip}>{ "Skip to content" }</a>
            <header>
                <h1><a href="#/dashboard">{ "restmq" }</a></h1>
                <nav aria-label="views">
                    { link("#/dashboard".to_owned(), "dashboard", "Dashboard") }
                    { link(stream_href, "stream", "Live stream") }
                    { link(format!("#/charts/{SYSTEM_QUEUE}"), "charts", "Charts") }
                    { link(format!("#/worker/{DEFAULT_JOBS}"), "worker", "Worker") }
                </nav>
                <div class="session">
                    <button id="theme" aria-pressed={dark.to_string()} onclick={toggle_theme.reform(|_| ())}>{ "Dark mode" }</button>
                    if session.signed_in {
                        <button id="sign-out" onclick={sign_out}>{ "Sign out" }</button>
                    }
                </div>
            </header>
            <main id="main" tabindex="-1">
                if let Some(status) = session.refused {
                    <SignIn {status} signed_in={session.signed_in} />
                }
                { view }
            </main>
        </>
    }
}
