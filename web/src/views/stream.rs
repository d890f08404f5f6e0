//! `#/stream/<queue>`: the live view. Messages arrive over WebSocket (or SSE, or COMET), are
//! rendered once per animation frame, newest first, at most `ROW_CAP` rows; with the rate, a
//! sparkline, pause/clear, a filter and the connection state. It observes (takes nothing)
//! unless the user picks the labelled consume mode.

use std::rc::Rc;

use restmq_shared::QueueName;
use wasm_bindgen::JsCast;
use yew::prelude::*;

use crate::{
    components::{input_value, LinkBadge, MessageList, QueuePicker, Sparkline},
    hooks::{navigate, stream::use_queue_stream, use_stats},
    model::{rate::format_rate, Action, Row, HISTORY_CAP, ROW_CAP},
    route::Route,
};

#[derive(Properties, PartialEq)]
pub struct StreamViewProps {
    pub queue: Option<QueueName>,
}

#[function_component(StreamView)]
pub fn stream_view(props: &StreamViewProps) -> Html {
    let (stats, _) = use_stats();
    html! {
        <section class="stream" aria-labelledby="stream-title">
            <div class="view-head">
                <h2 id="stream-title">{ "Live stream" }</h2>
                <QueuePicker id="stream-queue" label="Queue" action="Watch" queue={props.queue.clone()}
                    queues={stats.queue_names()} on_pick={Callback::from(|q| navigate(&Route::Stream(Some(q))))} />
            </div>
            if let Some(queue) = &props.queue {
                <StreamPanel key={queue.as_str().to_owned()} queue={queue.clone()} />
            } else {
                <p class="empty">{ "Pick a queue to watch its messages as they arrive." }</p>
                <ul class="queue-links">
                    { for stats.queue_names().into_iter().map(|name| html! {
                        <li><a href={format!("#/stream/{name}")}>{ name }</a></li>
                    }) }
                </ul>
            }
        </section>
    }
}

#[derive(Properties, PartialEq)]
struct StreamPanelProps {
    queue: QueueName,
}

#[function_component(StreamPanel)]
fn stream_panel(props: &StreamPanelProps) -> Html {
    let consume = use_state(|| false);
    let state = use_queue_stream(Some(props.queue.clone()), !*consume);
    let set_mode = |to: bool| {
        let consume = consume.clone();
        Callback::from(move |_: Event| consume.set(to))
    };
    let rows: Vec<Rc<Row>> = state.visible().cloned().collect();
    let dispatch = |action: fn(bool) -> Action, arg: bool| {
        let state = state.clone();
        Callback::from(move |_: MouseEvent| state.dispatch(action(arg)))
    };
    let pause = dispatch(Action::Pause, !state.paused);
    let clear = dispatch(|_| Action::Clear, false);
    let on_filter = {
        let state = state.clone();
        Callback::from(move |e: InputEvent| state.dispatch(Action::Filter(input_value(&e))))
    };
    let shown = rows.len();
    let wasm_bytes = wasm_memory_bytes();
    html! {
        <div class="panel">
            <div class="meters">
                <LinkBadge link={state.link.clone()} />
                <span class="meter"><output aria-live="off" id="received" data-count={state.received.to_string()}>{ state.received }</output>{ " received" }</span>
                <span class="meter"><output aria-live="off" id="rate">{ format_rate(state.rate()) }</output>{ " msg/s" }</span>
                <Sparkline counts={state.rate.spark()} />
                <a class="more" href={Route::Queue(props.queue.clone()).to_hash()}>{ "Queue page →" }</a>
                <a class="more" href={Route::Charts(props.queue.clone()).to_hash()}>{ "Charts →" }</a>
            </div>
            <fieldset class="mode" id="mode" data-mode={if *consume { "consume" } else { "observe" }}>
                <legend>{ "Mode" }</legend>
                <label><input type="radio" name="mode" id="mode-observe" checked={!*consume} onchange={set_mode(false)} />{ "Observe" }</label>
                <label><input type="radio" name="mode" id="mode-consume" checked={*consume} onchange={set_mode(true)} />{ format!("Consume {}", props.queue) }</label>
                <span class="hint" id="mode-hint">{ if *consume {
                    "Consuming: every message shown is taken off the queue, as a hard get does; workers get nothing while you watch."
                } else {
                    "Observing: you see every message added from now on; nothing leaves the queue."
                } }</span>
            </fieldset>
            <div class="controls">
                <button id="pause" aria-pressed={state.paused.to_string()} onclick={pause}>
                    { if state.paused { "Resume" } else { "Pause" } }
                </button>
                <button id="clear" onclick={clear}>{ "Clear" }</button>
                <label class="filter">{ "Filter" }
                    <input id="filter" type="search" placeholder="text in key or value" value={state.filter().to_owned()} oninput={on_filter} />
                </label>
                <span class="hint" id="shown" data-wasm-bytes={wasm_bytes.to_string()}>
                    { format!("showing {shown} of {} kept (at most {ROW_CAP} shown, {HISTORY_CAP} kept)", state.kept()) }
                    { format!(" · wasm memory {:.1} MiB", f64::from(wasm_bytes) / 1_048_576.0) }
                    if state.paused { { format!(" · paused, {} new", state.held()) } }
                    if state.missed > 0 { { format!(" · {} missed while disconnected", state.missed) } }
                </span>
            </div>
            <MessageList {rows} />
        </div>
    }
}

/// The size of the app's wasm linear memory, in bytes.
fn wasm_memory_bytes() -> u32 {
    let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().unchecked_into();
    memory.buffer().unchecked_into::<js_sys::ArrayBuffer>().byte_length()
}
