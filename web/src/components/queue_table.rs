//! The dashboard's table: every queue with its figures and rates, and its actions (start/stop,
//! policy, hard and soft get, purge after a confirmation).

use std::collections::BTreeMap;

use restmq_shared::{Policy, QueueName, QueueStats, QueueStatus};
use yew::prelude::*;

use super::input_value;
use crate::route::Route;
use crate::state::rate::{format_rate, QueueRates};

/// What the user asked to do with a queue.
#[derive(Debug, Clone, PartialEq)]
pub enum QueueAction {
    Publish(QueueName, String),
    /// Hard get (`soft: false`) or soft get.
    Get {
        queue: QueueName,
        soft: bool,
    },
    SetPolicy(QueueName, Policy),
    SetStatus(QueueName, QueueStatus),
    Purge(QueueName),
}

#[derive(Properties, PartialEq)]
pub struct QueueTableProps {
    /// The queues to show, in display order.
    pub queues: Vec<QueueStats>,
    /// In/out rates by queue name (absent until two samples were taken).
    pub rates: BTreeMap<String, QueueRates>,
    pub on_action: Callback<QueueAction>,
}

#[function_component(QueueTable)]
pub fn queue_table(props: &QueueTableProps) -> Html {
    // The queue whose purge waits for a confirmation, and its button, focused when it shows
    // (the Purge… button a keyboard user pressed is gone).
    let confirming = use_state(|| None::<QueueName>);
    let confirm_button = use_node_ref();
    {
        let confirm_button = confirm_button.clone();
        use_effect_with((*confirming).clone(), move |_| {
            if let Some(button) = confirm_button.cast::<web_sys::HtmlElement>() {
                let _ = button.focus();
            }
        });
    }
    if props.queues.is_empty() {
        return html! {
            <p class="empty">{ "No queues yet: a queue appears with its first message (publish one above, or " }<code>{ "POST /q/<name>" }</code>{ ")." }</p>
        };
    }
    let rows = props.queues.iter().map(|queue| {
        let rates = props.rates.get(queue.name.as_str()).copied();
        let awaiting = confirming.as_ref() == Some(&queue.name);
        row(queue, rates, awaiting.then_some(&confirm_button), &props.on_action, &confirming)
    });
    html! {
        <div class="table-wrap">
            <table class="queues">
                <thead>
                    <tr>
                        <th scope="col">{ "queue" }</th>
                        <th scope="col" class="num">{ "length" }</th>
                        <th scope="col">{ "status" }</th>
                        <th scope="col">{ "policy" }</th>
                        <th scope="col" class="num">{ "consumers" }</th>
                        <th scope="col" class="num" title="messages added per second">{ "in/s" }</th>
                        <th scope="col" class="num" title="messages taken or delivered per second">{ "out/s" }</th>
                        <th scope="col">{ "actions" }</th>
                    </tr>
                </thead>
                <tbody>{ for rows }</tbody>
            </table>
        </div>
    }
}

fn row(
    queue: &QueueStats,
    rates: Option<QueueRates>,
    awaiting_confirmation: Option<&NodeRef>,
    on_action: &Callback<QueueAction>,
    confirming: &UseStateHandle<Option<QueueName>>,
) -> Html {
    let name = queue.name.clone();
    let emit = |action: QueueAction| {
        let on_action = on_action.clone();
        Callback::from(move |_: MouseEvent| on_action.emit(action.clone()))
    };
    let (toggle_label, toggle_to) = match queue.state {
        QueueStatus::Started => ("Stop", QueueStatus::Paused),
        QueueStatus::Paused => ("Start", QueueStatus::Started),
    };
    let on_policy = {
        let (on_action, name) = (on_action.clone(), name.clone());
        Callback::from(move |e: Event| {
            if let Some(policy) = Policy::parse(&input_value(&e)) {
                on_action.emit(QueueAction::SetPolicy(name.clone(), policy));
            }
        })
    };
    let ask = {
        let (confirming, name) = (confirming.clone(), name.clone());
        Callback::from(move |_: MouseEvent| confirming.set(Some(name.clone())))
    };
    let cancel = {
        let confirming = confirming.clone();
        Callback::from(move |_: MouseEvent| confirming.set(None))
    };
    let purge = {
        let (confirming, on_action, name) = (confirming.clone(), on_action.clone(), name.clone());
        Callback::from(move |_: MouseEvent| {
            confirming.set(None);
            on_action.emit(QueueAction::Purge(name.clone()));
        })
    };
    let rate =
        |f: fn(&QueueRates) -> f64| rates.as_ref().map(f).map(format_rate).unwrap_or_else(|| "–".to_owned());
    let policy_option = |policy: Policy| {
        html! { <option value={policy.as_str()} selected={queue.policy_name == policy}>{ policy.as_str() }</option> }
    };
    html! {
        <tr key={name.as_str().to_owned()} data-queue={name.as_str().to_owned()}>
            <th scope="row" class="name"><a href={Route::Stream(Some(name.clone())).to_hash()} title="watch live">{ name.as_str() }</a></th>
            <td class="num len">{ queue.len }</td>
            <td><span class={classes!("badge", "status", queue.state.as_str())}>{ queue.state.as_str() }</span></td>
            <td>
                <select class="policy" aria-label={format!("policy of {name}")} onchange={on_policy}>
                    { policy_option(Policy::Broadcast) }
                    { policy_option(Policy::Roundrobin) }
                </select>
            </td>
            <td class="num consumers">{ queue.consumers }</td>
            <td class="num">{ rate(|r| r.inflow) }</td>
            <td class="num">{ rate(|r| r.outflow) }</td>
            <td class="actions">
                <button class="toggle" onclick={emit(QueueAction::SetStatus(name.clone(), toggle_to))}>{ toggle_label }</button>
                <button class="get" title="take the oldest message" onclick={emit(QueueAction::Get { queue: name.clone(), soft: false })}>{ "Get" }</button>
                <button class="peek" title="read the oldest message without taking it" onclick={emit(QueueAction::Get { queue: name.clone(), soft: true })}>{ "Peek" }</button>
                if let Some(confirm_button) = awaiting_confirmation {
                    <span class="confirm" role="alert">
                        { format!("Purge every message of {name}? ") }
                        <button class="danger confirm-purge" ref={confirm_button.clone()} onclick={purge}>{ "Purge" }</button>
                        <button class="cancel" onclick={cancel}>{ "Cancel" }</button>
                    </span>
                } else {
                    <button class="purge" onclick={ask}>{ "Purge…" }</button>
                }
            </td>
        </tr>
    }
}
