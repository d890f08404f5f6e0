//! The dashboard's table: every queue with its figures and rates, and its actions (start/stop,
//! policy, hard and soft get, purge after a confirmation). Buttons are named with their queue;
//! a policy changes only with its Set button, never by moving through the select.

use std::collections::BTreeMap;

use restmq_shared::{Policy, QueueName, QueueStats, QueueStatus};
use yew::prelude::*;

use super::input_value;
use crate::model::rate::{format_rate, QueueRates};
use crate::route::Route;

/// What the user asked to do with a queue.
#[derive(Debug, Clone, PartialEq)]
pub enum QueueAction {
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
        return html! {};
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
    html! {
        <tr key={name.as_str().to_owned()} data-queue={name.as_str().to_owned()}>
            <th scope="row" class="name">
                <a href={Route::Queue(name.clone()).to_hash()} title="the queue's page">{ name.as_str() }</a>
                <a class="watch" href={Route::Stream(Some(name.clone())).to_hash()} aria-label={format!("Watch {name} live")}>{ "live" }</a>
            </th>
            <td class="num len" data-label="length">{ queue.len }</td>
            <td data-label="status"><span class={classes!("badge", "status", queue.state.as_str())}>{ queue.state.as_str() }</span></td>
            <td data-label="policy"><PolicyControl queue={name.clone()} current={queue.policy_name} on_action={on_action.clone()} /></td>
            <td class="num consumers" data-label="consumers">{ queue.consumers }</td>
            <td class="num" data-label="in/s">{ rate(|r| r.inflow) }</td>
            <td class="num" data-label="out/s">{ rate(|r| r.outflow) }</td>
            <td class="actions">
                <button class="toggle" aria-label={format!("{toggle_label} {name}")} onclick={emit(QueueAction::SetStatus(name.clone(), toggle_to))}>{ toggle_label }</button>
                <button class="get" aria-label={format!("Get from {name}")} title="take the oldest message" onclick={emit(QueueAction::Get { queue: name.clone(), soft: false })}>{ "Get" }</button>
                <button class="peek" aria-label={format!("Peek at {name}")} title="read the oldest message without taking it" onclick={emit(QueueAction::Get { queue: name.clone(), soft: true })}>{ "Peek" }</button>
                if let Some(confirm_button) = awaiting_confirmation {
                    <span class="confirm" role="alert">
                        { format!("Purge every message of {name}? ") }
                        <button class="danger confirm-purge" ref={confirm_button.clone()} aria-label={format!("Purge {name}")} onclick={purge}>{ "Purge" }</button>
                        <button class="cancel" onclick={cancel}>{ "Cancel" }</button>
                    </span>
                } else {
                    <button class="purge" aria-label={format!("Purge {name}…")} onclick={ask}>{ "Purge…" }</button>
                }
            </td>
        </tr>
    }
}

#[derive(Properties, PartialEq)]
pub struct PolicyControlProps {
    pub queue: QueueName,
    /// The policy in force.
    pub current: Policy,
    pub on_action: Callback<QueueAction>,
}

/// A policy select and its Set button: choosing in the select (arrow keys included) changes
/// nothing until Set is pressed.
#[function_component(PolicyControl)]
pub fn policy_control(props: &PolicyControlProps) -> Html {
    let choice = use_state(|| None::<Policy>);
    let chosen = choice.unwrap_or(props.current);
    let on_change = {
        let choice = choice.clone();
        Callback::from(move |e: Event| choice.set(Policy::parse(&input_value(&e))))
    };
    let set = {
        let (choice, on_action, queue) = (choice, props.on_action.clone(), props.queue.clone());
        Callback::from(move |_: MouseEvent| {
            on_action.emit(QueueAction::SetPolicy(queue.clone(), chosen));
            choice.set(None);
        })
    };
    let option = |policy: Policy| {
        html! { <option value={policy.as_str()} selected={chosen == policy}>{ policy.as_str() }</option> }
    };
    let name = &props.queue;
    html! {
        <span class="policy-control">
            <select class="policy" aria-label={format!("policy of {name}")} onchange={on_change}>
                { option(Policy::Broadcast) }
                { option(Policy::Roundrobin) }
            </select>
            if chosen != props.current {
                <button class="set-policy" aria-label={format!("Set {name} to {chosen}")} onclick={set}>{ "Set" }</button>
            }
        </span>
    }
}
