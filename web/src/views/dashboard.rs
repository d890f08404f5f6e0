//! `#/dashboard`: every queue, live, with its actions and a publish form. The outcome of each
//! action is shown in a notice; server errors by their code.

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
struct Notice {
    text: String,
    /// The error code, when the action failed.
    code: Option<String>,
}

#[function_component(Dashboard)]
pub fn dashboard() -> Html {
    let (stats, refresh) = use_stats();
    let notice = use_state(|| None::<Notice>);
    let on_action = {
        let notice = notice.clone();
        Callback::from(move |action: QueueAction| {
            let (notice, refresh) = (notice.clone(), refresh.clone());
            spawn_local(async move {
                let outcome = match perform(action).await {
                    Ok(text) => Notice { text, code: None },
                    Err(error) => Notice { text: error.to_string(), code: Some(error.code().to_owned()) },
                };
                notice.set(Some(outcome));
                refresh.emit(());
            });
        })
    };
    let summary = match (&stats.reply, &stats.error) {
        (_, Some(error)) => {
            html! { <p class="status error" role="alert">{ format!("Cannot load stats: {error}") }</p> }
        }
        (None, None) => html! { <p class="status">{ "Loading…" }</p> },
        (Some(reply), None) => html! {
            <p class="status">{ format!("{} · store: {}", plural(reply.count, "queue"), reply.store) }</p>
        },
    };
    let queues = stats.reply.as_ref().map(|r| r.queues.values().cloned().collect::<Vec<_>>());
    html! {
        <section class="dashboard" aria-labelledby="dashboard-title">
            <div class="view-head">
                <h2 id="dashboard-title">{ "Queues" }</h2>
                { summary }
            </div>
            <PublishForm queues={stats.queue_names()} on_action={on_action.clone()} />
            <div id="notice" aria-live="polite">
                if let Some(notice) = &*notice {
                    <p class={classes!("notice", notice.code.is_some().then_some("error"))}
                        data-code={notice.code.clone().unwrap_or_default()}>
                        if let Some(code) = &notice.code { <code class="code">{ code }</code>{ " " } }
                        { &notice.text }
                    </p>
                }
            </div>
            if let Some(queues) = queues {
                <QueueTable {queues} rates={stats.rates.clone()} {on_action} />
            }
        </section>
    }
}

/// Runs one action against the server; returns what to tell the user.
async fn perform(action: QueueAction) -> Result<String, ApiError> {
    Ok(match action {
        QueueAction::Publish(queue, value) => format!("Published {}", api::publish(&queue, value).await?),
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
