//! `#/reduce/<queue>?job=…`: the reduce step of a job, combining the partials its workers post
//! to the result queue. It browses that queue (never takes from it), so it can be reloaded or
//! opened anywhere and shows the same total; with per-worker throughput and progress.

use restmq_shared::QueueName;
use serde_json::Value;
use yew::prelude::*;

use crate::{
    hooks::{reduce::use_reducer_view, use_stats},
    model::job::Job,
    route::Route,
};

#[derive(Properties, PartialEq)]
pub struct ReduceViewProps {
    pub input: QueueName,
    pub job: Job,
}

#[function_component(ReduceView)]
pub fn reduce_view(props: &ReduceViewProps) -> Html {
    let results = props.job.results_for(props.input.as_str());
    match QueueName::try_from(results.clone()) {
        Ok(results) => {
            html! { <ReducePanel input={props.input.clone()} job={props.job.clone()} {results} /> }
        }
        Err(_) => {
            html! { <p class="notice error" role="alert">{ format!("“{results}” is not a queue name") }</p> }
        }
    }
}

#[derive(Properties, PartialEq)]
struct ReducePanelProps {
    input: QueueName,
    job: Job,
    results: QueueName,
}

#[function_component(ReducePanel)]
fn reduce_panel(props: &ReducePanelProps) -> Html {
    let results = props.results.clone();
    let (stats, _) = use_stats();
    let waiting = stats.reply.as_ref().and_then(|r| r.queues.get(props.input.as_str())).map(|q| q.len);
    let state = use_reducer_view(results.clone(), props.job.clone());
    let state = state.borrow();
    let progress = &state.progress;
    let worker_href = Route::Worker(props.input.clone(), Some(props.job.clone())).to_hash();
    let done = progress.processed;
    let total = done + waiting.unwrap_or(0);
    html! {
        <section class="reduce" aria-labelledby="reduce-title">
            <div class="view-head">
                <h2 id="reduce-title">{ format!("Totals: {}", props.job.name) }</h2>
                <a class="more" href={worker_href.clone()}>{ "← Worker" }</a>
            </div>
            <p class="lead">{ "Totals: the job's results so far, added up from what every worker posted; reading them takes nothing." }</p>
            <p class="hint">
                { "Combines the partials posted to " }<code>{ results.as_str() }</code>
                { " by the workers of " }<code>{ props.input.as_str() }</code>
                { " with the job's reduce step. It only browses and observes the result queue, never takes from it, so every reload shows the whole total. Tabs join the work with " }
                <a id="reduce-worker-link" href={worker_href.clone()}>{ "the job's worker link" }</a>{ "." }
            </p>
            if let Some(error) = &state.error {
                <p class="notice error" data-code={error.code().to_owned()} role="alert">{ error.to_string() }</p>
            }
            <dl class="figures">
                <div><dt>{ "messages reduced" }</dt><dd><output aria-live="off" id="reduce-processed">{ done }</output></dd></div>
                <div><dt>{ "skipped" }</dt><dd><output aria-live="off" id="reduce-skipped">{ progress.skipped }</output></dd></div>
                <div><dt>{ "messages output" }</dt><dd><output aria-live="off" id="reduce-outputs">{ progress.outputs }</output></dd></div>
                <div><dt>{ "keys" }</dt><dd><output aria-live="off" id="reduce-keys">{ state.keys }</output></dd></div>
                <div><dt>{ "waiting in input" }</dt><dd><output aria-live="off" id="reduce-waiting">{ waiting.map(|n| n.to_string()).unwrap_or_default() }</output></dd></div>
                <div><dt>{ "results read" }</dt><dd><output aria-live="off" id="reduce-read">{ state.read }</output></dd></div>
            </dl>
            <progress id="reduce-progress" max={total.max(1).to_string()} value={done.to_string()} />
            if progress.ignored > 0 || state.failed > 0 {
                <p class="notice">{ format!("{} result messages left out (other jobs, repeats, unreadable); {} partials failed to reduce", progress.ignored, state.failed) }</p>
            }
            if !state.reports.is_empty() {
                <ol class="reports" aria-label="failed reduce steps">
                    { for state.reports.iter().map(|(key, why)| html! { <li><span class="key">{ key }</span>{ format!(" {why}") }</li> }) }
                </ol>
            }
            <div class="columns">
                <table class="plain" id="reduce-workers">
                    <caption>{ "Workers" }</caption>
                    <thead><tr><th>{ "worker" }</th><th>{ "messages" }</th><th>{ "skipped" }</th><th>{ "partials" }</th><th>{ "per second" }</th></tr></thead>
                    <tbody>
                        { for progress.workers.iter().map(|(worker, f)| html! {
                            <tr data-worker={worker.clone()}>
                                <th scope="row"><code>{ worker }</code></th>
                                <td class="num processed">{ f.processed }</td>
                                <td class="num">{ f.skipped }</td>
                                <td class="num">{ f.partials }</td>
                                <td class="num">{ format!("{:.1}", f.rate()) }</td>
                            </tr>
                        }) }
                    </tbody>
                </table>
                <table class="plain" id="reduce-top">
                    <caption>{ format!("Top {} keys", props.job.top_keys()) }</caption>
                    <tbody>
                        { for state.top.iter().map(|(key, value)| html! {
                            <tr data-key={key.clone()}><th scope="row">{ key }</th><td class="num value">{ show(value) }</td></tr>
                        }) }
                    </tbody>
                </table>
            </div>
        </section>
    }
}

/// A reduced value as text: numbers and strings as they are, anything else as compact JSON.
fn show(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
