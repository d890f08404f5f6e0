//! The browser worker: joins a job queue as a roundrobin consumer, counts the words of each
//! message in wasm, and posts partial counts to a result queue; and the totals view, which
//! reduces a result queue. Work is done as messages arrive (not per animation frame), so a
//! worker in a background tab keeps working.

use std::{cell::RefCell, collections::VecDeque, rc::Rc, time::Duration};

use restmq_shared::{Policy, QueueName};
use yew::{
    platform::{spawn_local, time::sleep},
    prelude::*,
};

use crate::{
    api::{self, ApiError},
    state::{
        dial::Link,
        words::{Tally, Totals, FLUSH_MESSAGES},
    },
    stream::{self, StreamEvent, Subscription},
};

/// Longest time a counted message waits before its partial is posted.
const FLUSH_DELAY: Duration = Duration::from_millis(250);
/// Recent jobs listed in the worker view.
const RECENT_JOBS: usize = 8;

/// A worker's state, as its view shows it.
#[derive(Default)]
pub struct Worker {
    pub tally: Tally,
    pub link: Link,
    pub running: bool,
    pub error: Option<ApiError>,
    /// The latest jobs: key and word count, newest first.
    pub recent: VecDeque<(String, u64)>,
    flush_scheduled: bool,
    subscription: Option<Subscription>,
}

/// A worker and its controls.
pub struct WorkerHandle {
    pub worker: Rc<RefCell<Worker>>,
    pub start: Callback<()>,
    pub stop: Callback<()>,
}

/// The worker of this page on `jobs`, posting to `results`.
#[hook]
pub fn use_worker(jobs: QueueName, results: QueueName, id: String) -> WorkerHandle {
    let worker = use_mut_ref(|| Worker { tally: Tally::new(id), ..Worker::default() });
    let update = use_force_update();
    let ctx = Ctx { worker: worker.clone(), results, update };
    let start = {
        let ctx = ctx.clone();
        use_callback(jobs, move |(), jobs| ctx.clone().start(jobs.clone()))
    };
    let stop = {
        let ctx = ctx.clone();
        use_callback((), move |(), _| ctx.stop())
    };
    use_effect_with((), move |()| move || ctx.stop());
    WorkerHandle { worker, start, stop }
}

#[derive(Clone)]
struct Ctx {
    worker: Rc<RefCell<Worker>>,
    results: QueueName,
    update: UseForceUpdateHandle,
}

impl Ctx {
    fn start(self, jobs: QueueName) {
        {
            let mut worker = self.worker.borrow_mut();
            if worker.running {
                return;
            }
            worker.running = true;
            worker.error = None;
        }
        self.update.force_update();
        spawn_local(async move {
            // Roundrobin: each job goes to one worker, so tabs share the work.
            if let Err(error) = api::set_policy(&jobs, Policy::Roundrobin).await {
                let mut worker = self.worker.borrow_mut();
                worker.running = false;
                worker.error = Some(error);
                drop(worker);
                self.update.force_update();
                return;
            }
            let ctx = self.clone();
            let on_event = Callback::from(move |event| ctx.on_event(event));
            let subscription = stream::subscribe(jobs, false, on_event);
            let mut worker = self.worker.borrow_mut();
            if worker.running {
                worker.subscription = Some(subscription);
            }
        });
    }

    fn stop(&self) {
        {
            let mut worker = self.worker.borrow_mut();
            worker.subscription = None;
            worker.running = false;
            worker.link = Link::Idle;
        }
        self.flush();
        self.update.force_update();
    }

    fn on_event(&self, event: StreamEvent) {
        let mut worker = self.worker.borrow_mut();
        match event {
            StreamEvent::Link(link) => {
                worker.link = link;
                drop(worker);
                self.update.force_update();
            }
            StreamEvent::Gap(_) => {}
            StreamEvent::Message(message) => {
                let words = worker.tally.process(&message.value);
                worker.recent.push_front((message.key.to_string(), words));
                worker.recent.truncate(RECENT_JOBS);
                let full = worker.tally.pending_messages() >= FLUSH_MESSAGES;
                let schedule = !full && !std::mem::replace(&mut worker.flush_scheduled, true);
                drop(worker);
                if full {
                    self.flush();
                } else if schedule {
                    self.flush_later();
                }
            }
        }
    }

    fn flush_later(&self) {
        let ctx = self.clone();
        spawn_local(async move {
            sleep(FLUSH_DELAY).await;
            ctx.worker.borrow_mut().flush_scheduled = false;
            ctx.flush();
        });
    }

    /// Posts the pending partial; on failure it goes back to be posted with the next one.
    fn flush(&self) {
        let Some(partial) = self.worker.borrow_mut().tally.take_partial() else { return };
        let ctx = self.clone();
        spawn_local(async move {
            let value = serde_json::to_string(&partial).unwrap_or_default();
            let result = api::publish(&ctx.results, value).await;
            let retry = {
                let mut worker = ctx.worker.borrow_mut();
                match result {
                    Ok(_) => false,
                    Err(error) => {
                        worker.tally.restore(&partial);
                        worker.error = Some(error);
                        !std::mem::replace(&mut worker.flush_scheduled, true)
                    }
                }
            };
            if retry {
                sleep(Duration::from_secs(1)).await;
                ctx.worker.borrow_mut().flush_scheduled = false;
                ctx.flush();
            }
            ctx.update.force_update();
        });
    }
}

/// The totals reduced from a result queue, and the connection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TotalsState {
    pub totals: Totals,
    pub link: Link,
}

/// Reduces every partial posted to `results`.
#[hook]
pub fn use_totals(results: QueueName) -> Rc<RefCell<TotalsState>> {
    let state = use_mut_ref(TotalsState::default);
    let update = use_force_update();
    {
        let state = state.clone();
        use_effect_with(results, move |results| {
            *state.borrow_mut() = TotalsState::default();
            let on_event = Callback::from(move |event| {
                match event {
                    StreamEvent::Link(link) => state.borrow_mut().link = link,
                    StreamEvent::Message(message) => state.borrow_mut().totals.reduce_text(&message.value),
                    StreamEvent::Gap(_) => {}
                }
                update.force_update();
            });
            let subscription = stream::subscribe(results.clone(), false, on_event);
            move || drop(subscription)
        });
    }
    state
}
