//! The page's side of the map/reduce sandbox (`web/sandbox.js`, a dedicated Web Worker that
//! runs a job's user code): one request at a time, each answered within a time budget. A step
//! that throws is reported; a step that does not answer in time gets the worker terminated
//! (the only way to stop a running script) and a fresh one started on the next request, so a
//! job with an endless loop never freezes the page.

use std::fmt;
use std::time::Duration;

use futures_util::{future, StreamExt};
use serde_json::{json, Value};
use wasm_bindgen::{closure::Closure, JsCast, JsValue};
use web_sys::{MessageEvent, Worker};
use yew::platform::{pinned::mpsc, time::sleep};

use crate::model::job::Job;

/// Where Trunk puts the worker script (`copy-file` in index.html).
const SCRIPT: &str = "/sandbox.js";
/// Time to start a worker and compile the job.
const START_BUDGET: Duration = Duration::from_secs(10);

/// Why a request has no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The user's code threw (or did not compile): its message.
    Threw(String),
    /// The step ran past its budget; the worker was terminated.
    TimedOut(Duration),
    /// The worker could not start or answered nonsense.
    Broken(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Threw(error) => write!(f, "threw {error}"),
            Self::TimedOut(budget) => {
                write!(f, "ran past its time budget of {} ms and was stopped", budget.as_millis())
            }
            Self::Broken(why) => write!(f, "the sandbox failed: {why}"),
        }
    }
}

/// One running Web Worker and its handlers.
struct Live {
    worker: Worker,
    replies: mpsc::UnboundedReceiver<Result<String, String>>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(JsValue)>,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.worker.set_onmessage(None);
        self.worker.set_onerror(None);
        self.worker.terminate();
    }
}

/// A job's sandbox; the worker is terminated when this is dropped.
pub struct Sandbox {
    job: Value,
    budget: Duration,
    live: Option<Live>,
    /// Workers started, the first included.
    pub started: u32,
}

impl Sandbox {
    /// A sandbox for `job`; its worker starts on the first request.
    pub fn new(job: &Job) -> Self {
        let code = json!({ "job": { "map": job.map, "reduce": job.reduce } });
        let budget = Duration::from_millis(job.budget().into());
        Self { job: code, budget, live: None, started: 0 }
    }

    /// Starts the worker now if none runs, compiling the job: a compile error is reported here.
    pub async fn ready(&mut self) -> Result<(), Failure> {
        if self.live.is_some() {
            return Ok(());
        }
        let mut live = spawn().map_err(Failure::Broken)?;
        self.started += 1;
        exchange(&mut live, &self.job.to_string(), START_BUDGET).await?;
        self.live = Some(live);
        Ok(())
    }

    /// Sends `request` and waits for its answer, at most the job's budget.
    pub async fn call(&mut self, request: &Value) -> Result<Value, Failure> {
        self.ready().await?;
        let live = self.live.as_mut().expect("started above");
        let answer = exchange(live, &request.to_string(), self.budget).await;
        if matches!(answer, Err(Failure::TimedOut(_) | Failure::Broken(_))) {
            self.live = None; // terminates it
        }
        answer
    }
}

fn spawn() -> Result<Live, String> {
    let worker = Worker::new(SCRIPT).map_err(|e| format!("cannot start {SCRIPT}: {e:?}"))?;
    let (tx, replies) = mpsc::unbounded();
    let on_message = {
        let tx = tx.clone();
        Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            let _ =
                tx.send_now(event.data().as_string().ok_or_else(|| "a reply that is not text".to_owned()));
        })
    };
    let on_error = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
        let message = js_sys::Reflect::get(&event, &"message".into()).ok().and_then(|m| m.as_string());
        let _ = tx.send_now(Err(message.unwrap_or_else(|| format!("{SCRIPT} failed to load"))));
    });
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    Ok(Live { worker, replies, _on_message: on_message, _on_error: on_error })
}

/// One request and its answer, within `budget`.
async fn exchange(live: &mut Live, request: &str, budget: Duration) -> Result<Value, Failure> {
    live.worker.post_message(&JsValue::from_str(request)).map_err(|e| Failure::Broken(format!("{e:?}")))?;
    let reply = live.replies.next();
    let timer = sleep(budget);
    let text = match future::select(reply, Box::pin(timer)).await {
        future::Either::Left((Some(Ok(text)), _)) => text,
        future::Either::Left((Some(Err(error)), _)) => return Err(Failure::Broken(error)),
        future::Either::Left((None, _)) => return Err(Failure::Broken("the worker is gone".to_owned())),
        future::Either::Right(_) => return Err(Failure::TimedOut(budget)),
    };
    let answer: Value = serde_json::from_str(&text).map_err(|e| Failure::Broken(e.to_string()))?;
    match answer.get("error") {
        Some(error) => Err(Failure::Threw(error.as_str().unwrap_or("an error").to_owned())),
        None => Ok(answer),
    }
}
