//! `#/worker/<queue>?job=…`: this tab as a map/reduce worker. The user edits a job (or opens
//! someone's link), starts it, and the tab consumes the input queue with the other tabs on it
//! (roundrobin, ack mode), running the job in a sandboxed Web Worker.

use std::{cell::RefCell, rc::Rc};

use restmq_shared::{Policy, QueueName};
use yew::{platform::spawn_local, prelude::*};

use crate::{
    api,
    components::{plural, JobEditor, QueuePicker},
    hooks::{
        mapreduce::{use_job_runner, RunnerState},
        navigate, use_stats,
    },
    model::job::{presets, Job},
    route::Route,
};

#[derive(Properties, PartialEq)]
pub struct WorkerViewProps {
    pub input: QueueName,
    pub job: Option<Job>,
}

#[function_component(WorkerView)]
pub fn worker_view(props: &WorkerViewProps) -> Html {
    let (stats, _) = use_stats();
    let queue = stats.reply.as_ref().and_then(|r| r.queues.get(props.input.as_str()));
    let consumers = queue.map(|q| q.consumers);
    let waiting = queue.map(|q| q.len);
    let job = use_state(|| props.job.clone().unwrap_or_else(|| presets().remove(0)));
    let id = use_state(worker_id);
    let runner = use_job_runner(props.input.clone(), (*id).clone());
    let state = runner.state.borrow();
    let input = props.input.clone();
    let route = Route::Worker(input.clone(), Some((*job).clone()));
    let link = page_link(&route);
    let start = {
        let (job, start) = (job.clone(), runner.start.clone());
        let hash = route.to_hash();
        Callback::from(move |_: MouseEvent| {
            // The address bar carries the job, without reloading the view.
            if let Some(history) = web_sys::window().and_then(|w| w.history().ok()) {
                let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&hash));
            }
            start.emit((*job).clone());
        })
    };
    let stop = runner.stop.reform(|_: MouseEvent| ());
    let copy = {
        let link = link.clone();
        Callback::from(move |_: MouseEvent| {
            if let Some(window) = web_sys::window() {
                let _ = window.navigator().clipboard().write_text(&link);
            }
        })
    };
    let on_change = {
        let job = job.clone();
        Callback::from(move |edited: Job| job.set(edited))
    };
    let results = job.results_for(input.as_str());
    let reduce_href = Route::Reduce(input.clone(), (*job).clone()).to_hash();
    html! {
        <section class="worker" aria-labelledby="worker-title">
            <div class="view-head">
                <h2 id="worker-title">{ "Browser map/reduce" }</h2>
                <QueuePicker id="worker-jobs" label="Input queue" action="Use" queue={Some(input.clone())}
                    queues={stats.queue_names()} on_pick={Callback::from(|q| navigate(&Route::Worker(q, None)))} />
            </div>
            <p class="lead">{ "Worker: this tab takes messages from a queue and runs your job on them, sharing the queue with every other tab that opens the same link." }</p>
            <p class="hint">
                { "Write a job, or start from a preset; Start runs it in a sandboxed Web Worker on the messages of " }
                <code>{ input.as_str() }</code>
                { " (this tab joins it as a roundrobin consumer in ack mode) and posts partial results to " }
                <code>{ &results }</code>{ " (and what it outputs to " }<code>{ job.output_for(input.as_str()) }</code>{ "). Open the link in more tabs, or on other machines, to share the work." }
            </p>
            <JobEditor job={(*job).clone()} input={AttrValue::from(input.to_string())} disabled={state.running} {on_change} />
            <div class="controls">
                if state.running {
                    <button id="worker-stop" onclick={stop}>{ "Stop" }</button>
                } else {
                    <button id="worker-start" class="primary" onclick={start}>{ "Start" }</button>
                }
                <span class="link" data-link={if state.connected { "live" } else if state.running { "connecting" } else { "idle" }}>
                    { if state.connected { "consuming" } else if state.running { "connecting…" } else { "stopped" } }
                </span>
                <button id="job-copy" onclick={copy}>{ "Copy link" }</button>
                <input id="job-link" class="job-link" readonly=true value={link} aria-label="link to this job" />
                <a id="job-reduce-link" class="more" href={reduce_href}>{ "Totals →" }</a>
            </div>
            if let Some(error) = &state.error {
                <p class="notice error" role="alert">{ error }</p>
            }
            if let Some(previous) = state.previous_policy {
                <p class="notice" id="policy-changed">
                    { format!("This worker set {input} to roundrobin, so that tabs share its messages (it was {previous}). ") }
                    <button id="restore-policy" onclick={restore(input.clone(), previous, runner.state.clone())}>{ format!("Restore {previous}") }</button>
                </p>
            }
            <dl class="figures">
                <div><dt>{ "worker" }</dt><dd><code id="worker-id">{ &*id }</code></dd></div>
                <div><dt>{ "processed" }</dt><dd><output aria-live="off" id="worker-processed">{ state.processed }</output></dd></div>
                <div><dt>{ "skipped" }</dt><dd><output aria-live="off" id="worker-skipped">{ state.skipped }</output></dd></div>
                <div><dt>{ "partials posted" }</dt><dd><output aria-live="off" id="worker-posted">{ state.posted }</output></dd></div>
                <div><dt>{ "messages output" }</dt><dd><output aria-live="off" id="worker-outputs">{ state.outputs }</output></dd></div>
                <div><dt>{ "waiting" }</dt><dd><output aria-live="off" id="worker-waiting">{ waiting.map(|n| n.to_string()).unwrap_or_default() }</output></dd></div>
            </dl>
            if let Some(consumers) = consumers {
                <p class="meter">{ format!("{} on {input}", plural(consumers, "consumer")) }</p>
            }
            if !state.reports.is_empty() {
                <ol id="job-reports" class="reports" aria-label="skipped steps">
                    { for state.reports.iter().map(|(key, why)| html! {
                        <li><span class="key">{ key }</span>{ format!(" {why}") }</li>
                    }) }
                </ol>
            }
        </section>
    }
}

/// Sets `input` back to the policy it had before the worker, and forgets it.
fn restore(input: QueueName, previous: Policy, state: Rc<RefCell<RunnerState>>) -> Callback<MouseEvent> {
    Callback::from(move |_: MouseEvent| {
        let (input, state) = (input.clone(), state.clone());
        spawn_local(async move {
            match api::set_policy(&input, previous).await {
                Ok(()) => state.borrow_mut().previous_policy = None,
                Err(error) => {
                    state.borrow_mut().error = Some(format!("Could not restore {previous}: {error}"))
                }
            }
        });
    })
}

/// The whole address of `route` on this page, to share.
fn page_link(route: &Route) -> String {
    let location = web_sys::window().map(|w| w.location());
    let origin = location.as_ref().and_then(|l| l.origin().ok()).unwrap_or_default();
    let path = location.as_ref().and_then(|l| l.pathname().ok()).unwrap_or_default();
    format!("{origin}{path}{}", route.to_hash())
}

/// A short random id for this tab's worker.
fn worker_id() -> String {
    let n = (js_sys::Math::random() * 36f64.powi(6)) as u64;
    let digits: String = (0..6)
        .scan(n, |n, _| {
            let digit = char::from_digit((*n % 36) as u32, 36);
            *n /= 36;
            digit
        })
        .collect();
    format!("w-{digits}")
}
