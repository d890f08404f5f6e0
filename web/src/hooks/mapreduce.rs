//! Browser map/reduce, the worker side (the user's code runs in [`crate::sandbox`]; the
//! reduce view is [`super::reduce`]): [`use_job_runner`] runs this tab as a worker. It sets the input queue to roundrobin and
//!   consumes it over `/ws/<q>?ack=1`, runs the map step on each message, and every
//!   [`FLUSH_MESSAGES`] messages (or [`FLUSH_DELAY`]) posts the partial to the result queue and
//!   only then acks the messages it covers: a tab closed mid-run loses nothing, since what it
//!   held unacked goes back to the queue. A message delivered again (its first holder went
//!   away) is posted in a partial of its own, so the reduce view can tell a repeat.

use std::{cell::RefCell, collections::VecDeque, future::Future, rc::Rc, time::Duration};

use futures_util::{future, Sink, SinkExt, StreamExt};
use gloo_net::websocket::{futures::WebSocket, Message, State};
use restmq_shared::{LeasedStreamMessage, Policy, QueueName};
use serde_json::{json, Value};
use yew::{
    platform::{pinned::oneshot, spawn_local, time::sleep},
    prelude::*,
};

use crate::{
    api::{self, ApiError},
    hooks::now_ms,
    model::job::{Job, Partial},
    sandbox::{Failure, Sandbox},
    stream::websocket_url,
};

/// A partial is posted once this many messages are covered (below the 32 an ack consumer may hold).
pub const FLUSH_MESSAGES: usize = 20;
/// Longest a processed message waits for its partial to be posted.
pub const FLUSH_DELAY: Duration = Duration::from_millis(300);
/// A batch older than this is posted after its current step, however slow the steps: well
/// within the server's lease (30 s by default), so no message comes back while still held.
pub const MAX_BATCH_AGE: Duration = Duration::from_secs(10);
/// Output messages posted per request at most.
const OUTPUT_BATCH: usize = 1000;
/// Step failures listed.
pub const REPORTS: usize = 8;

/// A failed step: the message key (or the partial's) and what happened.
pub type Report = (String, String);

/// What the worker view shows.
#[derive(Default)]
pub struct RunnerState {
    pub running: bool,
    pub connected: bool,
    pub processed: u64,
    pub skipped: u64,
    pub posted: u64,
    /// Messages the map step output, posted to the output queue.
    pub outputs: u64,
    /// Sandbox workers started (more than one: a step was stopped).
    pub sandboxes: u32,
    pub reports: VecDeque<Report>,
    pub error: Option<String>,
    /// The input's policy before this worker set it to roundrobin, when it was another one.
    pub previous_policy: Option<Policy>,
    stop: Option<oneshot::Sender<()>>,
}

impl RunnerState {
    fn report(&mut self, key: String, failure: &Failure) {
        self.reports.push_front((key, failure.to_string()));
        self.reports.truncate(REPORTS);
    }
}

/// The runner and its controls: `start` takes the job to run.
pub struct RunnerHandle {
    pub state: Rc<RefCell<RunnerState>>,
    pub start: Callback<Job>,
    pub stop: Callback<()>,
}

/// This tab as a worker of `input`, named `id`.
#[hook]
pub fn use_job_runner(input: QueueName, id: String) -> RunnerHandle {
    let state = use_mut_ref(RunnerState::default);
    let update = use_force_update();
    let stop = {
        let (state, update) = (state.clone(), update.clone());
        use_callback((), move |(), _| {
            let mut state = state.borrow_mut();
            state.stop = None; // ends the task: the socket closes, unacked messages go back
            state.running = false;
            state.connected = false;
            drop(state);
            update.force_update();
        })
    };
    let start = {
        let (state, update) = (state.clone(), update);
        use_callback((input, id), move |job: Job, (input, id)| {
            if state.borrow().running {
                return;
            }
            let (tx, stopped) = oneshot::channel();
            *state.borrow_mut() = RunnerState { running: true, stop: Some(tx), ..RunnerState::default() };
            update.force_update();
            let runner = Runner {
                input: input.clone(),
                id: id.clone(),
                job,
                state: state.clone(),
                update: update.clone(),
            };
            spawn_local(async move {
                future::select(Box::pin(runner.run()), stopped).await;
            });
        })
    };
    {
        let state = state.clone();
        use_effect_with((), move |()| move || drop(state.borrow_mut().stop.take()));
    }
    RunnerHandle { state, start, stop }
}

struct Runner {
    input: QueueName,
    id: String,
    job: Job,
    state: Rc<RefCell<RunnerState>>,
    update: UseForceUpdateHandle,
}

/// Messages processed since the last post: key, value, and whether the map step succeeded.
#[derive(Default)]
struct Batch {
    covered: Vec<(String, String, bool)>,
    skipped: u64,
    first_at: f64,
}

impl Runner {
    fn set(&self, change: impl FnOnce(&mut RunnerState)) {
        change(&mut self.state.borrow_mut());
        self.update.force_update();
    }

    fn fail(&self, error: String) {
        self.set(|s| {
            s.error = Some(error);
            s.running = false;
            s.connected = false;
        });
    }

    async fn run(self) {
        let queue = |name: String| QueueName::try_from(name.clone()).map_err(|e| format!("“{name}”: {e}"));
        let outlets = queue(self.job.results_for(self.input.as_str()))
            .and_then(|results| Ok((results, queue(self.job.output_for(self.input.as_str()))?)));
        let (results, output) = match outlets {
            Ok(queues) => queues,
            Err(error) => return self.fail(error),
        };
        let previous = api::policy(&self.input).await.ok().filter(|p| *p != Policy::Roundrobin);
        if let Err(error) = api::set_policy(&self.input, Policy::Roundrobin).await {
            return self.fail(error.to_string());
        }
        if previous.is_some() {
            self.set(|s| s.previous_policy = previous);
        }
        let mut sandbox = Sandbox::new(&self.job);
        if let Err(failure) = sandbox.ready().await {
            return self.fail(format!("the job {failure}"));
        }
        let out = Outlets { results, output, since: now_ms() };
        loop {
            let path = format!("/ws/{}?ack=1", self.input);
            if let Some(ws) = websocket_url(&path).and_then(|url| WebSocket::open(&url).ok()) {
                self.consume(ws, &mut sandbox, &out).await;
            }
            self.set(|s| s.connected = false);
            // Whatever the sandbox holds covers messages that went back unacked: drop it.
            let _ = sandbox.call(&json!({ "take": true })).await;
            sleep(Duration::from_secs(1)).await;
        }
    }

    async fn consume(&self, ws: WebSocket, sandbox: &mut Sandbox, out: &Outlets) {
        let mut ws = ws;
        // The socket is ready once open, or as soon as it failed to open.
        let ready = future::poll_fn(|cx| std::pin::Pin::new(&mut ws).poll_ready(cx)).await;
        if ready.is_err() || !matches!(ws.state(), State::Open) {
            return;
        }
        let (mut sink, mut frames) = ws.split();
        self.set(|s| {
            s.connected = true;
            s.error = None;
        });
        let mut batch = Batch::default();
        loop {
            let frame = if batch.covered.is_empty() {
                frames.next().await
            } else {
                let wait = (batch.first_at + FLUSH_DELAY.as_millis() as f64 - now_ms()).max(0.0);
                match future::select(frames.next(), Box::pin(sleep(Duration::from_millis(wait as u64)))).await
                {
                    future::Either::Left((frame, _)) => frame,
                    future::Either::Right(_) => {
                        if !self.flush(&mut batch, sandbox, out, &mut sink).await {
                            return;
                        }
                        continue;
                    }
                }
            };
            let text = match frame {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Bytes(_))) => continue,
                Some(Err(_)) | None => return,
            };
            let Ok(message) = serde_json::from_str::<LeasedStreamMessage>(&text) else { continue };
            let again = message.deliveries > 1;
            if again && !batch.covered.is_empty() && !self.flush(&mut batch, sandbox, out, &mut sink).await {
                return;
            }
            self.process(&mut batch, sandbox, message.key.to_string(), message.value).await;
            let old = now_ms() - batch.first_at > MAX_BATCH_AGE.as_millis() as f64;
            let full = again || old || batch.covered.len() >= FLUSH_MESSAGES;
            if full && !self.flush(&mut batch, sandbox, out, &mut sink).await {
                return;
            }
        }
    }

    /// Runs the map step on one message; if the sandbox had to be replaced, runs it again on
    /// the messages of the batch whose results were lost with it.
    async fn process(&self, batch: &mut Batch, sandbox: &mut Sandbox, key: String, value: String) {
        if batch.covered.is_empty() {
            batch.first_at = now_ms();
        }
        let outcome = sandbox.call(&json!({ "map": value })).await;
        let ok = outcome.is_ok();
        let replaced = matches!(outcome, Err(Failure::TimedOut(_) | Failure::Broken(_)));
        if let Err(failure) = &outcome {
            batch.skipped += 1;
            self.set(|s| s.report(key.clone(), failure));
        }
        batch.covered.push((key, value, ok));
        if replaced {
            for index in 0..batch.covered.len() {
                let (key, value, ok) = &batch.covered[index];
                if !*ok {
                    continue;
                }
                if let Err(failure) = sandbox.call(&json!({ "map": value })).await {
                    self.set(|s| s.report(key.clone(), &failure));
                    batch.covered[index].2 = false;
                    batch.skipped += 1;
                }
            }
        }
        let sandboxes = sandbox.started;
        self.set(|s| {
            s.processed += 1;
            s.skipped += u64::from(!ok);
            s.sandboxes = sandboxes;
        });
    }

    /// Posts the batch's partial (retrying until the server takes it), then acks its messages.
    /// `false` when the socket is gone.
    async fn flush<S>(&self, batch: &mut Batch, sandbox: &mut Sandbox, out: &Outlets, sink: &mut S) -> bool
    where
        S: Sink<Message> + Unpin,
    {
        let batch = std::mem::take(batch);
        let (partial, outputs) = match sandbox.call(&json!({ "take": true })).await {
            Ok(Value::Object(mut answer)) => {
                let partial = match answer.remove("partial") {
                    Some(Value::Object(partial)) => partial,
                    _ => serde_json::Map::new(),
                };
                let outputs = match answer.remove("outputs") {
                    Some(Value::Array(outputs)) => outputs,
                    _ => Vec::new(),
                };
                (partial, outputs)
            }
            Ok(_) => (serde_json::Map::new(), Vec::new()),
            Err(failure) => {
                self.set(|s| s.report("partial".to_owned(), &failure));
                (serde_json::Map::new(), Vec::new())
            }
        };
        // Outputs first: once the partial is posted, the messages are acked.
        for chunk in outputs.chunks(OUTPUT_BATCH) {
            retry(|| api::publish_batch(&out.output, chunk), |e| self.set(|s| s.error = Some(e))).await;
        }
        let keys: Vec<String> = batch.covered.iter().map(|(key, _, _)| key.clone()).collect();
        let partial = Partial {
            worker: self.id.clone(),
            job: self.job.id(),
            processed: keys.len() as u64,
            skipped: batch.skipped,
            outputs: outputs.len() as u64,
            keys,
            since: out.since,
            at: now_ms(),
            partial,
        };
        let body = serde_json::to_string(&partial).unwrap_or_default();
        retry(|| api::publish(&out.results, body.clone()), |e| self.set(|s| s.error = Some(e))).await;
        for key in &partial.keys {
            let ack = json!({ "cmd": "ack", "key": key }).to_string();
            if sink.send(Message::Text(ack)).await.is_err() {
                return false;
            }
        }
        self.set(|s| {
            s.posted += 1;
            s.outputs += partial.outputs;
            s.error = None;
        });
        true
    }
}

/// Where a job's results go, and when its worker started (ms since the epoch).
struct Outlets {
    results: QueueName,
    output: QueueName,
    since: f64,
}

/// Runs `post` until the server takes it, a second apart, telling `on_error` each failure.
async fn retry<T, F: Future<Output = Result<T, ApiError>>>(post: impl Fn() -> F, on_error: impl Fn(String)) {
    while let Err(error) = post().await {
        on_error(error.to_string());
        sleep(Duration::from_secs(1)).await;
    }
}
