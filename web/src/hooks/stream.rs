//! Hooks that stream a queue into a reducer: messages wait in an [`Inbox`] and reach the
//! reducer at most once per animation frame, so a fast queue costs one render per frame.

use std::{cell::Cell, cell::RefCell, rc::Rc, time::Duration};

use restmq_shared::{GapRange, QueueName};
use wasm_bindgen::{closure::Closure, JsCast};
use yew::{
    platform::{spawn_local, time::sleep},
    prelude::*,
};

use super::now_ms;
use crate::{
    model::{dial::Link, series::Charts, Action, Batch, Inbox, StreamState},
    stream::{self, StreamEvent},
};

/// How often the views' clocks tick (rates and sparklines roll on without messages).
const TICK: Duration = Duration::from_secs(1);

impl Reducible for StreamState {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        let mut next = Rc::unwrap_or_clone(self);
        next.apply(action);
        Rc::new(next)
    }
}

/// The live view of `queue` (nothing while `None`): WebSocket, else SSE, else COMET;
/// reconnects and resumes after the last key it saw. An observer (`observe`) takes nothing;
/// otherwise the view consumes what it shows.
#[hook]
pub fn use_queue_stream(queue: Option<QueueName>, observe: bool) -> UseReducerHandle<StreamState> {
    let state = use_reducer(|| StreamState::new(now_ms()));
    let dispatcher = state.dispatcher();
    use_effect_with((queue, observe), move |(queue, observe)| {
        let observe = *observe;
        let (link, gaps, batches) = (dispatcher.clone(), dispatcher.clone(), dispatcher.clone());
        let detach = queue.clone().map(|queue| {
            attach(
                queue,
                observe,
                Callback::from(move |l| link.dispatch(Action::Link(l))),
                Callback::from(move |gap: GapRange| gaps.dispatch(Action::Gap(gap.from.n, gap.to.n))),
                Callback::from(move |batch| batches.dispatch(Action::Receive(batch, now_ms()))),
            )
        });
        let stop_ticks = ticker(Callback::from(move |now| dispatcher.dispatch(Action::Tick(now))));
        move || {
            stop_ticks();
            if let Some(detach) = detach {
                detach();
            }
        }
    });
    state
}

/// The charts of a queue: the numeric series of its messages, and the connection.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChartsState {
    pub charts: Charts,
    pub link: Link,
    pub received: u64,
}

/// What changes the charts.
pub enum ChartsAction {
    Link(Link),
    Receive(Batch, f64),
    Tick(f64),
}

impl Reducible for ChartsState {
    type Action = ChartsAction;

    fn reduce(self: Rc<Self>, action: ChartsAction) -> Rc<Self> {
        let mut next = Rc::unwrap_or_clone(self);
        match action {
            ChartsAction::Link(link) => next.link = link,
            ChartsAction::Receive(batch, now_ms) => {
                next.received += batch.received;
                for message in &batch.messages {
                    next.charts.record(&message.value, now_ms);
                }
            }
            ChartsAction::Tick(now_ms) => next.charts.prune(now_ms),
        }
        Rc::new(next)
    }
}

/// Streams `queue` into charts of its numeric fields, as an observer (takes nothing).
#[hook]
pub fn use_charts(queue: QueueName) -> UseReducerHandle<ChartsState> {
    let state = use_reducer(ChartsState::default);
    let dispatcher = state.dispatcher();
    use_effect_with(queue, move |queue| {
        let (link, batches) = (dispatcher.clone(), dispatcher.clone());
        let detach = attach(
            queue.clone(),
            true,
            Callback::from(move |l| link.dispatch(ChartsAction::Link(l))),
            Callback::noop(),
            Callback::from(move |batch| batches.dispatch(ChartsAction::Receive(batch, now_ms()))),
        );
        let stop_ticks = ticker(Callback::from(move |now| dispatcher.dispatch(ChartsAction::Tick(now))));
        move || {
            stop_ticks();
            detach();
        }
    });
    state
}

/// Subscribes to `queue` (resuming after reconnects) and hands its messages to `on_batch` at
/// most once per animation frame. Returns what stops it.
fn attach(
    queue: QueueName,
    observe: bool,
    on_link: Callback<Link>,
    on_gap: Callback<GapRange>,
    on_batch: Callback<Batch>,
) -> impl FnOnce() {
    let inbox = Rc::new(RefCell::new(Inbox::default()));
    let scheduled = Rc::new(Cell::new(false));
    let alive = Rc::new(Cell::new(true));
    let on_event = {
        let alive = alive.clone();
        Callback::from(move |event| match event {
            StreamEvent::Link(link) => on_link.emit(link),
            StreamEvent::Gap(gap) => on_gap.emit(gap),
            StreamEvent::Message(message) => {
                inbox.borrow_mut().push(message);
                if !scheduled.replace(true) {
                    let (inbox, scheduled, alive) = (inbox.clone(), scheduled.clone(), alive.clone());
                    let on_batch = on_batch.clone();
                    request_frame(move || {
                        scheduled.set(false);
                        let batch = inbox.borrow_mut().take();
                        if alive.get() && batch.received > 0 {
                            on_batch.emit(batch);
                        }
                    });
                }
            }
        })
    };
    let subscription = stream::subscribe(queue, true, observe, on_event);
    move || {
        alive.set(false);
        drop(subscription);
    }
}

/// Runs `f` before the browser paints the next frame.
fn request_frame(f: impl FnOnce() + 'static) {
    if let Some(window) = web_sys::window() {
        let callback = Closure::once_into_js(f);
        let _ = window.request_animation_frame(callback.unchecked_ref());
    }
}

/// Calls `on_tick` with the time every [`TICK`]; returns what stops it.
fn ticker(on_tick: Callback<f64>) -> impl FnOnce() {
    let stopped = Rc::new(Cell::new(false));
    let stop = stopped.clone();
    spawn_local(async move {
        loop {
            sleep(TICK).await;
            if stopped.get() {
                break;
            }
            on_tick.emit(now_ms());
        }
    });
    move || stop.set(true)
}
