//! The reduce view's side of browser map/reduce: [`use_reducer_view`] runs a job's reduce step
//! over its result queue. It browses the queue (never takes from it) from the start, so a reload
//! or another machine gets the same total, and observes it (`/ws/<q>?observe=1`, which takes
//! nothing either) only to know when to browse again for what is new.

use std::{cell::RefCell, collections::VecDeque, rc::Rc, time::Duration};

use futures_util::{future, stream::SplitStream, FutureExt, StreamExt};
use gloo_net::websocket::futures::WebSocket;
use restmq_shared::QueueName;
use serde_json::{json, Value};
use yew::{
    platform::{pinned::oneshot, spawn_local, time::sleep},
    prelude::*,
};

use super::mapreduce::{Report, REPORTS};
use crate::{
    api::{self, ApiError},
    model::job::{Job, Progress},
    sandbox::{Failure, Sandbox},
    stream::websocket_url,
};

/// Result messages browsed per request.
const BROWSE_PAGE: u32 = 1000;
/// Longest wait between two browses when the observer says nothing (or cannot connect).
const BROWSE_EVERY: Duration = Duration::from_secs(5);

/// What the reduce view shows.
#[derive(Default)]
pub struct ReduceState {
    pub progress: Progress,
    /// Distinct keys in the total.
    pub keys: u64,
    /// The top keys with their combined values, highest first.
    pub top: Vec<(String, Value)>,
    /// Partials whose reduce step failed (left out).
    pub failed: u64,
    pub reports: VecDeque<Report>,
    pub error: Option<ApiError>,
    /// Messages of the result queue read so far.
    pub read: u64,
}

/// The reduce step of `job` over result queue `results`, kept up to date while mounted.
#[hook]
pub fn use_reducer_view(results: QueueName, job: Job) -> Rc<RefCell<ReduceState>> {
    let state = use_mut_ref(ReduceState::default);
    let update = use_force_update();
    {
        let state = state.clone();
        use_effect_with((results, job), move |(results, job)| {
            let (stop, stopped) = oneshot::channel::<()>();
            let task = reduce(results.clone(), job.clone(), state, update);
            spawn_local(async move {
                future::select(Box::pin(task), stopped).await;
            });
            move || drop(stop)
        });
    }
    state
}

async fn reduce(results: QueueName, job: Job, state: Rc<RefCell<ReduceState>>, update: UseForceUpdateHandle) {
    let job_id = job.id();
    let mut sandbox = Sandbox::new(&job);
    // Partials whose reduce step stopped the sandbox: the total is rebuilt without them.
    let mut poisoned: Vec<String> = Vec::new();
    let mut observer = Observer::default();
    'rebuild: loop {
        let reports = std::mem::take(&mut state.borrow_mut().reports);
        *state.borrow_mut() =
            ReduceState { failed: poisoned.len() as u64, reports, ..ReduceState::default() };
        let mut after: Option<String> = None;
        loop {
            let page = match api::browse(&results, after.as_deref(), BROWSE_PAGE).await {
                Ok(page) => page,
                Err(error) => {
                    state.borrow_mut().error = Some(error);
                    update.force_update();
                    sleep(Duration::from_secs(2)).await;
                    continue;
                }
            };
            state.borrow_mut().error = None;
            let last_page = page.next.is_none();
            for message in page.messages {
                let key = message.key.to_string();
                after = Some(key.clone());
                state.borrow_mut().read += 1;
                if poisoned.contains(&key) {
                    continue;
                }
                let Some(partial) = state.borrow_mut().progress.accept(&message.value, &job_id) else {
                    continue;
                };
                let request = json!({ "combine": partial.partial, "top": job.top_keys() });
                match sandbox.call(&request).await {
                    Ok(answer) => {
                        let mut state = state.borrow_mut();
                        state.keys = answer["keys"].as_u64().unwrap_or(0);
                        state.top = top_entries(&answer["top"]);
                    }
                    Err(failure) => {
                        let lost = matches!(failure, Failure::TimedOut(_) | Failure::Broken(_));
                        let mut s = state.borrow_mut();
                        s.failed += 1;
                        s.reports.push_front((key.clone(), failure.to_string()));
                        s.reports.truncate(REPORTS);
                        drop(s);
                        if lost {
                            poisoned.push(key);
                            update.force_update();
                            continue 'rebuild;
                        }
                    }
                }
            }
            update.force_update();
            if last_page {
                observer.wait(&results).await;
            }
        }
    }
}

fn top_entries(top: &Value) -> Vec<(String, Value)> {
    let entries = top.as_array().map(Vec::as_slice).unwrap_or_default();
    entries
        .iter()
        .filter_map(|entry| Some((entry.get(0)?.as_str()?.to_owned(), entry.get(1)?.clone())))
        .collect()
}

/// An observer of the result queue, used only as a doorbell: its frames say "something was
/// added", and browsing reads it.
#[derive(Default)]
struct Observer {
    frames: Option<SplitStream<WebSocket>>,
}

impl Observer {
    /// Waits until something is added to `queue` (or [`BROWSE_EVERY`] passes); when the
    /// observer is not connected, connects it and returns at once.
    async fn wait(&mut self, queue: &QueueName) {
        if self.frames.is_none() {
            let url = websocket_url(&format!("/ws/{queue}?observe=1"));
            self.frames = url.and_then(|url| WebSocket::open(&url).ok()).map(|ws| ws.split().1);
            if self.frames.is_some() {
                return; // browse once more: the observer hears only what comes after it opens
            }
        }
        let Some(frames) = self.frames.as_mut() else {
            sleep(BROWSE_EVERY).await;
            return;
        };
        match future::select(frames.next(), Box::pin(sleep(BROWSE_EVERY))).await {
            future::Either::Left((Some(Ok(_)), _)) => {
                // One browse reads every frame already waiting.
                while let Some(Some(Ok(_))) = frames.next().now_or_never() {}
            }
            future::Either::Left(_) => {
                self.frames = None;
                sleep(Duration::from_secs(1)).await;
            }
            future::Either::Right(_) => {}
        }
    }
}
