//! The root component: header, connection line, queue table.

use yew::prelude::*;

use crate::{components::QueueTable, hooks::use_stats};

#[function_component(App)]
pub fn app() -> Html {
    let stats = use_stats();

    let status = match (&stats.reply, &stats.error) {
        (_, Some(error)) => html! { <p class="status error">{ format!("Cannot load stats: {error}") }</p> },
        (None, None) => html! { <p class="status">{ "Loading…" }</p> },
        (Some(reply), None) => html! {
            <p class="status">{ format!("{} · store: {}", plural(reply.count, "queue"), reply.store) }</p>
        },
    };

    html! {
        <>
            <header>
                <h1>{ "restmq" }</h1>
                { status }
            </header>
            <main>
                if let Some(reply) = &stats.reply {
                    <QueueTable queues={reply.queues.values().cloned().collect::<Vec<_>>()} />
                }
            </main>
        </>
    }
}

fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
