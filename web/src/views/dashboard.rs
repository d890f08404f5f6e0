//! `#/dashboard`: every queue, live, with its actions and a publish form; each row links to the
//! queue's page. The outcome of each action is shown in a notice, server errors by their code.
//! Empty, it says what restmq is and how to start; when the server stops answering it shows
//! since when the figures are stale, with a retry.

use restmq_shared::{Policy, QueueStatus};
use yew::{platform::spawn_local, prelude::*};

use crate::{
    api::{self, ApiError},
    components::{plural, PublishForm, QueueAction, QueueTable},
    hooks::use_stats,
};

/// Characters of a message value shown in a notice.
const NOTICE_VALUE_CHARS: usize = 300;

/// The outcome of the last action.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub text: String,
    /// The error code, when the action failed.
    pub code: Option<String>,
}

impl Notice {
    pub fn of(outcome: Result<String, ApiError>) -> Self {
        match outcome {
            Ok(text) => Self { text, code: None },
            Err(error) => Self { text: error.to_string(), code: Some(error.code().to_owned()) },
        }
    }

    pub fn view(notice: Option<&Self>) -> Html {
        html! {
            <div id="notice" aria-live="polite">
                if let Some(notice) = notice {
                    <p class={classes!("notice", notice.code.is_some().then_some("error"))}
                        data-code={notice.code.clone().unwrap_or_default()}>
                        if let Some(code) = &notice.code { <code class="code">{ code }</code>{ " " } }
                        { &notice.text }
                    </p>
                }
            </div>
        }
    }
}

/// Runs queue actions, shows their outcome in `notice`, then calls `after`.
pub fn action_runner(notice: UseStateHandle<Option<Notice>>, after: Callback<()>) -> Callback<QueueAction> {
    Callback::from(move |action: QueueAction| {
        let (notice, after) = (notice.clone(), after.clone());
        spawn_local(async move {
            notice.set(Some(Notice::of(perform(action).await)));
            after.emit(());
        });
    })
}

/// What a publish tells the user.
pub fn published(outcome: Result<String, ApiError>) -> Notice {
    Notice::of(outcome.map(|key| format!("Published {key}")))
}

#[function_component(Dashboard)]
pub fn dashboard() -> Html {
    let (stats, refresh) = use_stats();
    let notice = use_state(|| None::<Notice>);
    let on_action = action_runner(notice.clone(), refresh.clone());
    let on_done = {
        let (notice, refresh) = (notice.clone(), refresh.clone());
        Callback::from(move |outcome| {
            notice.set(Some(published(outcome)));
            refresh.emit(());
        })
    };
    let retry = refresh.reform(|_: MouseEvent| ());
    let summary = match (&stats.reply, &stats.error) {
        (_, Some(error)) if error.is_refusal() => {
            html! { <p class="status error" role="alert">{ format!("Not signed in: {error}") }</p> }
        }
        (reply, Some(error)) => html! {
            <p class="status error" role="alert" id="outage">
                { format!("Cannot load stats: {error}. ") }
                if reply.is_some() { { format!("The figures below are from {}. ", clock(stats.at_ms)) } }
                <button id="retry" onclick={retry}>{ "Retry now" }</button>
            </p>
        },
        (None, None) => html! { <p class="status">{ "Loading…" }</p> },
        (Some(reply), None) => html! {
            <p class="status">{ format!("{} · store: {}", plural(reply.count, "queue"), reply.store) }</p>
        },
    };
    let queues = stats.reply.as_ref().map(|r| r.queues.values().cloned().collect::<Vec<_>>());
    let empty = queues.as_ref().is_some_and(Vec::is_empty);
    html! {
        <section class="dashboard" aria-labelledby="dashboard-title">
            <div class="view-head">
                <h2 id="dashboard-title">{ "Queues" }</h2>
                { summary }
            </div>
            if empty { { first_run() } }
            <PublishForm queues={stats.queue_names()} {on_done} />
            { Notice::view(notice.as_ref()) }
            if let Some(queues) = queues {
                <QueueTable {queues} rates={stats.rates.clone()} {on_action} />
            }
        </section>
    }
}

/// What an empty server shows: what restmq is, and lines to copy.
fn first_run() -> Html {
    let origin = web_sys::window().and_then(|w| w.location().origin().ok()).unwrap_or_default();
    html! {
        <div class="first-run" id="first-run">
            <p>{ "restmq is a message queue over plain HTTP: add a message with a POST, take it with a GET, or watch a queue live over WebSocket, SSE or COMET. A queue appears with its first message." }</p>
            <p>{ "The demo (" }<code>{ "cargo xtask demo" }</code>{ ") fills " }<a href="#/queue/system">{ "system" }</a>{ " (host metrics, see " }<a href="#/charts/system">{ "Charts" }</a>{ ") and " }<a href="#/queue/text">{ "text" }</a>{ ". Try:" }</p>
            <pre class="copy">{ format!("curl -d value=hello {origin}/q/jobs\ncurl {origin}/q/jobs\ncurl -N '{origin}/c/jobs?observe=1'\nrestmq push jobs hello\nrestmq tail jobs --observe") }</pre>
        </div>
    }
}

/// `HH:MM:SS` of a time in ms, in the browser's zone.
fn clock(at_ms: f64) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(at_ms));
    format!("{:02}:{:02}:{:02}", date.get_hours(), date.get_minutes(), date.get_seconds())
}

/// Runs one action against the server; returns what to tell the user.
async fn perform(action: QueueAction) -> Result<String, ApiError> {
    Ok(match action {
        QueueAction::Get { queue, soft } => match api::get_message(&queue, soft).await? {
            None => format!("{queue} is empty"),
            Some(got) => {
                let verb = match got.count {
                    Some(count) => format!("Peeked at (read {count}×)"),
                    None => "Took".to_owned(),
                };
                format!("{verb} {}: {}", got.key, shorten(&got.value))
            }
        },
        QueueAction::SetPolicy(queue, policy) => {
            api::set_policy(&queue, policy).await?;
            let what = match policy {
                Policy::Broadcast => "every consumer gets every message",
                Policy::Roundrobin => "each message goes to one consumer",
            };
            format!("{queue} is now {policy}: {what}")
        }
        QueueAction::SetStatus(queue, status) => {
            api::set_status(&queue, status).await?;
            match status {
                QueueStatus::Started => format!("{queue} started: delivery resumes"),
                QueueStatus::Paused => format!("{queue} stopped: messages wait"),
            }
        }
        QueueAction::Purge(queue) => match api::purge(&queue).await? {
            true => format!("Purged {queue}"),
            false => format!("{queue} had nothing to purge"),
        },
    })
}

fn shorten(value: &str) -> String {
    match value.char_indices().nth(NOTICE_VALUE_CHARS) {
        Some((end, _)) => format!("{}…", &value[..end]),
        None => value.to_owned(),
    }
}
