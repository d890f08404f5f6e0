//! `#/queue/<queue>`: one queue's page. Its status and policy always in view with its actions
//! (publish, get, peek, policy, stop/start, purge); the last hour of length and in/out rates;
//! the waiting messages, paged; the leased ones; the dead letters with redrive; the consumers.
//! Showing the page takes nothing: it browses and reads history.

use std::collections::VecDeque;

use restmq_shared::{BrowsedMessage, HistoryReply, QueueName, QueueStatus};
use yew::{platform::spawn_local, prelude::*};

use super::dashboard::{action_runner, published, Notice};
use crate::{
    api,
    components::{plural, LineChart, PolicyControl, PublishForm, QueueAction},
    hooks::{
        now_ms,
        queue::{dead_letters_of, use_queue_page, QueuePage},
        use_stats,
    },
    model::{
        axis::{bytes, Unit},
        series::Series,
    },
    route::Route,
};

#[derive(Properties, PartialEq)]
pub struct QueueViewProps {
    pub queue: QueueName,
}

#[function_component(QueueView)]
pub fn queue_view(props: &QueueViewProps) -> Html {
    let queue = props.queue.clone();
    // Keys the pages start after: the first page is `None`.
    let pages = use_state(Vec::<String>::new);
    let (page, reread) = use_queue_page(queue.clone(), pages.last().cloned());
    let (stats, refresh) = use_stats();
    let notice = use_state(|| None::<Notice>);
    let after = Callback::from(move |()| {
        refresh.emit(());
        reread.emit(());
    });
    let on_action = action_runner(notice.clone(), after.clone());
    let on_done = {
        let (notice, after) = (notice.clone(), after.clone());
        Callback::from(move |outcome| {
            notice.set(Some(published(outcome)));
            after.emit(());
        })
    };
    let confirming = use_state(|| false);
    let figures = stats.reply.as_ref().and_then(|r| r.queues.get(queue.as_str()));
    let len = figures.map(|q| q.len).or(page.waiting.as_ref().map(|w| w.len));
    let emit = |action: QueueAction| on_action.reform(move |_: MouseEvent| action.clone());
    let status_line = html! {
        <p class="status" id="queue-status">
            <span class="meter"><output aria-live="off" id="queue-len">{ len.map(|n| n.to_string()).unwrap_or_else(|| "–".into()) }</output>{ " waiting" }</span>
            if let Some(q) = figures {
                <span class={classes!("badge", "status", q.state.as_str())}>{ q.state.as_str() }</span>
                <span class="meter" id="queue-policy">{ format!("policy {}", q.policy_name) }</span>
                <span class="meter">{ plural(q.consumers, "consumer") }</span>
            }
        </p>
    };
    let actions = figures.map(|q| {
        let (toggle, to) = match q.state {
            QueueStatus::Started => ("Stop", QueueStatus::Paused),
            QueueStatus::Paused => ("Start", QueueStatus::Started),
        };
        let ask = { let c = confirming.clone(); Callback::from(move |_: MouseEvent| c.set(true)) };
        let cancel = { let c = confirming.clone(); Callback::from(move |_: MouseEvent| c.set(false)) };
        let purge = {
            let (c, on_action, queue) = (confirming.clone(), on_action.clone(), queue.clone());
            Callback::from(move |_: MouseEvent| {
                c.set(false);
                on_action.emit(QueueAction::Purge(queue.clone()));
            })
        };
        html! {
            <div class="controls actions" id="queue-actions">
                <button class="get" aria-label={format!("Get from {queue}")} title="take the oldest message" onclick={emit(QueueAction::Get { queue: queue.clone(), soft: false })}>{ "Get" }</button>
                <button class="peek" aria-label={format!("Peek at {queue}")} title="read the oldest message without taking it" onclick={emit(QueueAction::Get { queue: queue.clone(), soft: true })}>{ "Peek" }</button>
                <button class="toggle" aria-label={format!("{toggle} {queue}")} onclick={emit(QueueAction::SetStatus(queue.clone(), to))}>{ toggle }</button>
                <PolicyControl queue={queue.clone()} current={q.policy_name} on_action={on_action.clone()} />
                if *confirming {
                    <span class="confirm" role="alert">
                        { format!("Purge every message of {queue}? ") }
                        <button class="danger confirm-purge" aria-label={format!("Purge {queue}")} onclick={purge}>{ "Purge" }</button>
                        <button class="cancel" onclick={cancel}>{ "Cancel" }</button>
                    </span>
                } else {
                    <button class="purge" aria-label={format!("Purge {queue}…")} onclick={ask}>{ "Purge…" }</button>
                }
            </div>
        }
    });
    let first_page = {
        let p = pages.clone();
        Callback::from(move |_: MouseEvent| p.set(Vec::new()))
    };
    let next_page = page.waiting.as_ref().and_then(|w| w.next.clone()).map(|next| {
        let p = pages.clone();
        Callback::from(move |_: MouseEvent| {
            let mut keys = (*p).clone();
            keys.push(next.to_string());
            p.set(keys);
        })
    });
    let dead = dead_letters_of(&queue);
    let redrive = {
        let (notice, after, queue) = (notice.clone(), after, queue.clone());
        Callback::from(move |_: MouseEvent| {
            let (notice, after, queue) = (notice.clone(), after.clone(), queue.clone());
            spawn_local(async move {
                let outcome = api::redrive(&queue)
                    .await
                    .map(|reply| format!("Redrove the dead letters of {queue}: {reply}"));
                notice.set(Some(Notice::of(outcome)));
                after.emit(());
            });
        })
    };
    html! {
        <section class="queue-page" aria-labelledby="queue-title">
            <div class="view-head">
                <h2 id="queue-title">{ format!("Queue {queue}") }</h2>
                { status_line }
                <a class="more" href={Route::Stream(Some(queue.clone())).to_hash()}>{ "Live stream →" }</a>
            </div>
            if let Some(error) = &page.error {
                <p class="notice error" role="alert" data-code={error.code().to_owned()}>{ error.to_string() }</p>
            }
            { for actions }
            <PublishForm queues={Vec::<String>::new()} queue={Some(queue.clone())} {on_done} />
            { Notice::view(notice.as_ref()) }
            if let Some(history) = &page.history { { history_charts(history) } }
            <h3 id="waiting-title">{ "Waiting" }</h3>
            <p class="hint">{ "Browsed in the order they will be handed out; reading them here takes nothing and moves no read count." }</p>
            { messages("waiting", page.waiting.as_ref().map(|w| &w.messages[..]), "Nothing waiting.") }
            <div class="controls pager">
                if !pages.is_empty() { <button id="first-page" onclick={first_page}>{ "First page" }</button> }
                if let Some(next) = next_page { <button id="next-page" onclick={next}>{ "Next page" }</button> }
            </div>
            <h3>{ "Leased" }</h3>
            { messages("leased", page.leased.as_ref().map(|w| &w.messages[..]), "No message is leased.") }
            if let Some(dead) = dead {
                <h3>{ format!("Dead letters ({dead})") }</h3>
                { messages("dead", page.dead.as_ref().map(|w| &w.messages[..]), "No dead letters.") }
                if page.dead.as_ref().is_some_and(|d| d.len > 0) {
                    <button id="redrive" aria-label={format!("Redrive the dead letters of {queue}")} onclick={redrive}>{ "Redrive" }</button>
                }
            }
            <h3>{ "Consumers" }</h3>
            { consumers(&page) }
        </section>
    }
}

/// The last hour as two charts: the length, and messages in and out per second.
fn history_charts(history: &HistoryReply) -> Html {
    let step = history.step.max(1) as f64;
    let series = |f: &dyn Fn(&restmq_shared::HistoryPoint) -> f64| Series {
        points: history.points.iter().map(|p| (p.t as f64 * 1000.0, f(p))).collect::<VecDeque<_>>(),
    };
    let now = now_ms();
    let span = (now - 3_600_000.0, now);
    let gap = step * 1000.0 * 2.5;
    let len = vec![("len".to_owned(), "waiting".to_owned(), series(&|p| p.len as f64))];
    let rates = vec![
        ("in".to_owned(), "in".to_owned(), series(&|p| p.added as f64 / step)),
        ("out".to_owned(), "out".to_owned(), series(&|p| (p.taken + p.delivered) as f64 / step)),
    ];
    html! {
        <div class="chart-grid" id="history">
            <LineChart title="length, last hour" lines={len} {span} unit={Unit::Plain} max_gap_ms={gap} />
            <LineChart title="in / out per second, last hour" lines={rates} {span} unit={Unit::PerSec} max_gap_ms={gap} />
        </div>
    }
}

/// A list of browsed messages: key, value (pretty JSON) with a copy button, size, reads, expiry.
fn messages(id: &'static str, list: Option<&[BrowsedMessage]>, empty: &'static str) -> Html {
    let Some(list) = list else { return html! { <p class="hint">{ "Loading…" }</p> } };
    if list.is_empty() {
        return html! { <p class="empty" id={format!("{id}-empty")}>{ empty }</p> };
    }
    let now = now_ms();
    html! {
        <ol class="rows browsed" id={format!("{id}-messages")}>
            { for list.iter().map(|m| {
                let pretty = pretty(&m.value);
                let copy = { let v = m.value.clone(); Callback::from(move |_: MouseEvent| copy_text(&v)) };
                html! {
                    <li class="row" key={m.key.to_string()} data-key={m.key.to_string()}>
                        <span class="key">{ m.key.to_string() }</span>
                        <pre class={classes!("value", pretty.is_some().then_some("json"))}>{ pretty.as_deref().unwrap_or(&m.value) }</pre>
                        <span class="facts">
                            { bytes(m.value.len() as f64) }
                            if m.count > 0 { { format!(" · read {}×", m.count) } }
                            if let Some(at) = m.expires { { format!(" · expires {}", relative(at as f64, now)) } }
                            if let Some(at) = m.deadline { { format!(" · lease ends {}", relative(at as f64, now)) } }
                            if let Some(n) = m.deliveries { { format!(" · delivered {n}×") } }
                            { " " }<button class="copy" aria-label={format!("Copy the value of {}", m.key)} onclick={copy}>{ "Copy" }</button>
                        </span>
                    </li>
                }
            }) }
        </ol>
    }
}

fn consumers(page: &QueuePage) -> Html {
    let Some(reply) = &page.consumers else { return html! {} };
    if reply.consumers.is_empty() {
        return html! { <p class="empty" id="consumers-empty">{ "Nobody streams from this queue." }</p> };
    }
    html! {
        <div class="table-wrap">
            <table class="plain" id="consumers">
                <thead><tr><th>{ "mode" }</th><th>{ "transport" }</th><th>{ "address" }</th><th>{ "since" }</th><th class="num">{ "delivered" }</th><th>{ "ack" }</th><th>{ "node" }</th></tr></thead>
                <tbody>
                    { for reply.consumers.iter().map(|c| html! {
                        <tr data-mode={c.mode.clone()}>
                            <td data-label="mode">{ &c.mode }</td><td data-label="transport">{ &c.transport }</td><td data-label="address">{ &c.addr }</td>
                            <td data-label="since">{ relative(c.since as f64 * 1000.0, now_ms()) }</td>
                            <td class="num" data-label="delivered">{ c.delivered }</td><td data-label="ack">{ if c.ack { "yes" } else { "no" } }</td><td data-label="node">{ &c.node }</td>
                        </tr>
                    }) }
                </tbody>
            </table>
        </div>
    }
}

/// JSON objects and arrays pretty-printed.
fn pretty(value: &str) -> Option<String> {
    match serde_json::from_str::<serde_json::Value>(value) {
        Ok(json @ (serde_json::Value::Object(_) | serde_json::Value::Array(_))) => {
            serde_json::to_string_pretty(&json).ok()
        }
        _ => None,
    }
}

/// "in 42 s", "3 min ago".
fn relative(at_ms: f64, now_ms: f64) -> String {
    let secs = ((at_ms - now_ms) / 1000.0).round();
    let amount = |s: f64| {
        if s.abs() >= 120.0 {
            format!("{:.0} min", s.abs() / 60.0)
        } else {
            format!("{:.0} s", s.abs())
        }
    };
    if secs >= 0.0 {
        format!("in {}", amount(secs))
    } else {
        format!("{} ago", amount(secs))
    }
}

fn copy_text(text: &str) {
    if let Some(window) = web_sys::window() {
        let _ = window.navigator().clipboard().write_text(text);
    }
}
