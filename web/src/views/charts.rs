//! `#/charts/<queue>`: live line charts of the numeric fields of a queue's JSON messages (the
//! `system` feed's CPU, memory, network and load), one chart per top-level field, a few
//! minutes of history.

use restmq_shared::QueueName;
use yew::prelude::*;

use crate::{
    components::{LineChart, LinkBadge, QueuePicker},
    hooks::{navigate, now_ms, stream::use_charts, use_stats},
    model::{axis::Unit, series::HISTORY_SECS},
    route::Route,
};

#[derive(Properties, PartialEq)]
pub struct ChartsViewProps {
    pub queue: QueueName,
}

#[function_component(ChartsView)]
pub fn charts_view(props: &ChartsViewProps) -> Html {
    let (stats, _) = use_stats();
    html! {
        <section class="charts" aria-labelledby="charts-title">
            <div class="view-head">
                <h2 id="charts-title">{ "Charts" }</h2>
                <QueuePicker id="charts-queue" label="Queue" action="Chart" queue={Some(props.queue.clone())}
                    queues={stats.queue_names()} on_pick={Callback::from(|q| navigate(&Route::Charts(q)))} />
            </div>
            <ChartsPanel key={props.queue.as_str().to_owned()} queue={props.queue.clone()} />
        </section>
    }
}

#[derive(Properties, PartialEq)]
struct ChartsPanelProps {
    queue: QueueName,
}

#[function_component(ChartsPanel)]
fn charts_panel(props: &ChartsPanelProps) -> Html {
    let state = use_charts(props.queue.clone());
    let span = state.charts.span(now_ms());
    let groups = state.charts.groups();
    html! {
        <div class="panel">
            <div class="meters">
                <LinkBadge link={state.link.clone()} />
                <span class="meter"><output aria-live="off" id="samples">{ state.charts.samples }</output>{ " samples" }</span>
                <span class="meter">{ format!("{} series · last {} min", state.charts.series_count(), HISTORY_SECS / 60.0) }</span>
                <a class="more" href={Route::Stream(Some(props.queue.clone())).to_hash()}>{ "Messages →" }</a>
            </div>
            if groups.is_empty() {
                <p class="empty">
                    { format!("Waiting for JSON messages with numbers on {} ({} received", props.queue, state.received) }
                    { format!(", {} without numbers). ", state.charts.skipped) }
                    { "Start the system feed, or publish e.g. " }<code>{ r#"{"cpu":[12,40],"load":0.5}"# }</code>
                </p>
            } else {
                <div class="chart-grid">
                    { for groups.into_iter().map(|(title, members)| {
                        let lines = members.into_iter().map(|m| (m.name.to_owned(), m.label.to_owned(), m.series.clone())).collect::<Vec<_>>();
                        let unit = Unit::of_group(&title);
                        html! { <LineChart key={title.clone()} title={title.clone()} {lines} {span} {unit} /> }
                    }) }
                </div>
            }
        </div>
    }
}
