//! The map/reduce job editor: a preset to start from, the map and reduce steps (JavaScript
//! function bodies), the result and output queues, the time budget and the keys listed. Every edit goes out as a whole job.

use yew::prelude::*;

use super::input_value;
use crate::model::job::{presets, Job};

#[derive(Properties, PartialEq)]
pub struct JobEditorProps {
    pub job: Job,
    /// The input queue, to show the default result queue.
    pub input: AttrValue,
    /// Read-only while the job runs.
    pub disabled: bool,
    pub on_change: Callback<Job>,
}

#[function_component(JobEditor)]
pub fn job_editor(props: &JobEditorProps) -> Html {
    let field = |edit: fn(&mut Job, String)| {
        let (job, on_change) = (props.job.clone(), props.on_change.clone());
        Callback::from(move |event: InputEvent| {
            let mut job = job.clone();
            edit(&mut job, input_value(&event));
            on_change.emit(job);
        })
    };
    let on_preset = {
        let on_change = props.on_change.clone();
        Callback::from(move |event: Event| {
            let name = input_value(&event);
            if let Some(job) = presets().into_iter().find(|job| job.name == name) {
                on_change.emit(job);
            }
        })
    };
    let job = &props.job;
    let disabled = props.disabled;
    let default_results = format!("{}.results", props.input);
    let default_output = format!("{}.out", props.input);
    html! {
        <fieldset class="job" {disabled}>
            <legend>{ "Job" }</legend>
            <div class="job-row">
                <label>{ "Start from " }
                    <select id="job-preset" onchange={on_preset}>
                        <option value="" selected=true>{ "a preset…" }</option>
                        { for presets().iter().map(|p| html! { <option value={p.name.clone()}>{ &p.name }</option> }) }
                    </select>
                </label>
                <label>{ "Name " }
                    <input id="job-name" value={job.name.clone()} oninput={field(|j, v| j.name = v)} />
                </label>
                <label>{ "Results to " }
                    <input id="job-results" value={job.results.clone()} placeholder={default_results}
                        oninput={field(|j, v| j.results = v)} />
                </label>
                <label>{ "Output to " }
                    <input id="job-output" value={job.output.clone()} placeholder={default_output}
                        oninput={field(|j, v| j.output = v)} />
                </label>
                <label>{ "Budget (ms per step) " }
                    <input id="job-budget" inputmode="numeric" value={shown(job.budget_ms)}
                        oninput={field(|j, v| j.budget_ms = number(&v, j.budget_ms))} />
                </label>
                <label>{ "Top keys " }
                    <input id="job-top" inputmode="numeric" value={shown(job.top)}
                        oninput={field(|j, v| j.top = number(&v, j.top))} />
                </label>
            </div>
            <label class="code-field">
                <span><code>{ "map(value, emit, output)" }</code>{ " — value is the message text; call emit(key, value) for each pair, output(message) to add a message to the output queue" }</span>
                <textarea id="job-map" rows="6" spellcheck="false" value={job.map.clone()} oninput={field(|j, v| j.map = v)} />
            </label>
            <label class="code-field">
                <span><code>{ "reduce(a, b, key)" }</code>{ " — combines two values of one key, in any order" }</span>
                <textarea id="job-reduce" rows="3" spellcheck="false" value={job.reduce.clone()} oninput={field(|j, v| j.reduce = v)} />
            </label>
        </fieldset>
    }
}

/// A number field's text: empty for 0 (the field was cleared, the default applies).
fn shown(n: u32) -> String {
    if n == 0 {
        String::new()
    } else {
        n.to_string()
    }
}

/// A number field's value: 0 when cleared, the previous one while the text is not a number.
fn number(text: &str, previous: u32) -> u32 {
    match text.trim() {
        "" => 0,
        digits => digits.parse().unwrap_or(previous),
    }
}
