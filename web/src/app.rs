//! The root component: the header with its navigation, and the view of the current hash route.

use yew::prelude::*;

use crate::{
    hooks::use_route,
    route::{Route, DEFAULT_JOBS, SYSTEM_QUEUE},
    views::{ChartsView, Dashboard, ReduceView, StreamView, WorkerView},
};

#[function_component(App)]
pub fn app() -> Html {
    let route = use_route();
    let section = route.section();
    let link = |href: String, name: &'static str, label: &'static str| {
        let current = (section == name).then_some("page");
        html! { <a {href} class={classes!((section == name).then_some("active"))} aria-current={current}>{ label }</a> }
    };
    let stream_href = match &route {
        Route::Stream(Some(queue)) | Route::Charts(queue) => Route::Stream(Some(queue.clone())).to_hash(),
        _ => Route::Stream(None).to_hash(),
    };
    let view = match &route {
        Route::Dashboard => html! { <Dashboard /> },
        Route::Stream(queue) => html! { <StreamView key={route.to_hash()} queue={queue.clone()} /> },
        Route::Charts(queue) => html! { <ChartsView key={route.to_hash()} queue={queue.clone()} /> },
        Route::Worker(input, job) => {
            html! { <WorkerView key={route.to_hash()} input={input.clone()} job={job.clone()} /> }
        }
        Route::Reduce(input, job) => {
            html! { <ReduceView key={route.to_hash()} input={input.clone()} job={job.clone()} /> }
        }
        Route::NotFound(hash) => html! {
            <p class="notice error" role="alert">
                { format!("Nothing at “{hash}”: queue names are letters, digits and . _ - : @. ") }
                <a href="#/dashboard">{ "Back to the dashboard" }</a>
            </p>
        },
    };
    html! {
        <>
            <header>
                <h1><a href="#/dashboard">{ "restmq" }</a></h1>
                <nav aria-label="views">
                    { link("#/dashboard".to_owned(), "dashboard", "Dashboard") }
                    { link(stream_href, "stream", "Live stream") }
                    { link(format!("#/charts/{SYSTEM_QUEUE}"), "charts", "Charts") }
                    { link(format!("#/worker/{DEFAULT_JOBS}"), "worker", "Worker") }
                </nav>
            </header>
            <main>{ view }</main>
        </>
    }
}
