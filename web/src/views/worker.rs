//! `#/worker/<queue>`: this tab as a worker on a job queue (roundrobin, so tabs share the
//! jobs), counting words in wasm and posting partial counts to `<queue>.counts`; and
//! `#/totals/<queue>`: the totals reduced from such a result queue.

use restmq_shared::QueueName;
use yew::prelude::*;

use crate::{
    components::{plural, LinkBadge, QueuePicker},
    hooks::{
        navigate, use_stats,
        worker::{use_totals, use_worker},
    },
    route::{results_queue, Route},
    state::words::FLUSH_MESSAGES,
};

/// Words listed in the totals.
const TOP_WORDS: usize = 20;

#[derive(Properties, PartialEq)]
pub struct WorkerViewProps {
    pub jobs: QueueName,
}

#[function_component(WorkerView)]
pub fn worker_view(props: &WorkerViewProps) -> Html {
    let (stats, _) = use_stats();
    let consumers = stats.reply.as_ref().and_then(|r| r.queues.get(props.jobs.as_str())).map(|q| q.consumers);
    html! {
        <section class="worker" aria-labelledby="worker-title">
            <div class="view-head">
                <h2 id="worker-title">{ "Browser worker" }</h2>
                <QueuePicker id="worker-jobs" label="Job queue" action="Use" queue={Some(props.jobs.clone())}
                    queues={stats.queue_names()} on_pick={Callback::from(|q| navigate(&Route::Worker(q)))} />
            </div>
            if let Some(results) = results_queue(&props.jobs) {
                <WorkerPanel key={props.jobs.as_str().to_owned()} jobs={props.jobs.clone()} {results} {consumers} />
            } else {
                <p class="notice error">{ "That queue name is too long to add “.counts” to it." }</p>
            }
        </section>
    }
}

#[derive(Properties, PartialEq)]
struct WorkerPanelProps {
    jobs: QueueName,
    results: QueueName,
    /// Streaming consumers of the job queue, from the latest stats.
    consumers: Option<u64>,
}

#[function_component(WorkerPanel)]
fn worker_panel(props: &WorkerPanelProps) -> Html {
    let id = use_state(worker_id);
    let handle = use_worker(props.jobs.clone(), props.results.clone(), (*id).clone());
    let worker = handle.worker.borrow();
    let start = handle.start.reform(|_: MouseEvent| ());
    let stop = handle.stop.reform(|_: MouseEvent| ());
    let (jobs, results) = (&props.jobs, &props.results);
    html! {
        <div class="panel">
            <p class="hint">
                { "Joins " }<code>{ jobs.as_str() }</code>{ " as a roundrobin consumer (it sets the queue's policy), counts the words of each message in wasm, and posts partial counts as JSON to " }
                <a href={Route::Totals(results.clone()).to_hash()}><code>{ results.as_str() }</code></a>
                { format!(" every {FLUSH_MESSAGES} messages or quarter second. Open this page in more tabs to share the work.") }
            </p>
            <div class="controls">
                if worker.running {
                    <button id="worker-stop" onclick={stop}>{ "Stop worker" }</button>
                } else {
                    <button id="worker-start" class="primary" onclick={start}>{ "Start worker" }</button>
                }
                <LinkBadge link={worker.link.clone()} />
                if let Some(consumers) = props.consumers {
                    <span class="meter">{ format!("{} on {jobs}", plural(consumers, "consumer")) }</span>
                }
                <a class="more" href={Route::Totals(results.clone()).to_hash()}>{ "Totals →" }</a>
            </div>
            if let Some(error) = &worker.error {
                <p class="notice error" data-code={error.code().to_owned()} role="alert"><code class="code">{ error.code() }</code>{ " " }{ error.to_string() }</p>
            }
            <dl class="figures">
                <div><dt>{ "worker" }</dt><dd><code id="worker-id">{ &worker.tally.worker }</code></dd></div>
                <div><dt>{ "jobs done" }</dt><dd><output id="worker-processed">{ worker.tally.processed }</output></dd></div>
                <div><dt>{ "words counted" }</dt><dd><output id="worker-words">{ worker.tally.words }</output></dd></div>
                <div><dt>{ "partials posted" }</dt><dd><output id="worker-posted">{ worker.tally.posted }</output></dd></div>
            </dl>
            <ol class="recent" aria-label="latest jobs">
                { for worker.recent.iter().map(|(key, words)| html! {
                    <li><span class="key">{ key }</span>{ format!(" {}", plural(*words, "word")) }</li>
                }) }
            </ol>
        </div>
    }
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

#[derive(Properties, PartialEq)]
pub struct TotalsViewProps {
    pub results: QueueName,
}

#[function_component(TotalsView)]
pub fn totals_view(props: &TotalsViewProps) -> Html {
    let state = use_totals(props.results.clone());
    let state = state.borrow();
    let totals = &state.totals;
    html! {
        <section class="totals" aria-labelledby="totals-title">
            <div class="view-head">
                <h2 id="totals-title">{ "Word count totals" }</h2>
                <LinkBadge link={state.link.clone()} />
            </div>
            <p class="hint">
                { "Reduces the partial counts the workers post to " }<code>{ props.results.as_str() }</code>
                { " (counted from when this page connected, plus whatever was waiting in the queue)." }
            </p>
            <dl class="figures">
                <div><dt>{ "jobs" }</dt><dd><output id="totals-messages">{ totals.messages }</output></dd></div>
                <div><dt>{ "words" }</dt><dd><output id="totals-words">{ totals.words }</output></dd></div>
                <div><dt>{ "distinct words" }</dt><dd><output id="totals-distinct">{ totals.distinct_words() }</output></dd></div>
                <div><dt>{ "partials" }</dt><dd><output id="totals-partials">{ totals.partials }</output></dd></div>
            </dl>
            if totals.rejected > 0 {
                <p class="notice error">{ format!("{} messages were not partial results", totals.rejected) }</p>
            }
            <div class="columns">
                <table class="plain">
                    <caption>{ "Jobs per worker" }</caption>
                    <tbody>
                        { for totals.workers.iter().map(|(worker, n)| html! {
                            <tr data-worker={worker.clone()}><th scope="row"><code>{ worker }</code></th><td class="num">{ n }</td></tr>
                        }) }
                    </tbody>
                </table>
                <table class="plain">
                    <caption>{ format!("Top {TOP_WORDS} words") }</caption>
                    <tbody>
                        { for totals.top(TOP_WORDS).into_iter().map(|(word, n)| html! {
                            <tr data-word={word.to_owned()}><th scope="row">{ word }</th><td class="num">{ n }</td></tr>
                        }) }
                    </tbody>
                </table>
            </div>
        </section>
    }
}
