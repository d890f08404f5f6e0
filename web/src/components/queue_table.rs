//! The table of queues of the dashboard.

use restmq_shared::QueueStats;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct QueueTableProps {
    /// The queues to show, in display order.
    pub queues: Vec<QueueStats>,
}

#[function_component(QueueTable)]
pub fn queue_table(props: &QueueTableProps) -> Html {
    if props.queues.is_empty() {
        return html! {
            <p class="empty">{ "No queues yet: a queue appears with its first message (" }<code>{ "POST /q/<name>" }</code>{ ")." }</p>
        };
    }
    html! {
        <table class="queues">
            <thead>
                <tr>
                    <th>{ "queue" }</th>
                    <th class="num">{ "length" }</th>
                    <th>{ "status" }</th>
                    <th>{ "policy" }</th>
                    <th class="num">{ "consumers" }</th>
                    <th class="num">{ "added" }</th>
                    <th class="num">{ "taken" }</th>
                    <th class="num">{ "delivered" }</th>
                </tr>
            </thead>
            <tbody>
                { for props.queues.iter().map(queue_row) }
            </tbody>
        </table>
    }
}

fn queue_row(queue: &QueueStats) -> Html {
    html! {
        <tr key={queue.name.as_str().to_owned()}>
            <td class="name">{ queue.name.as_str() }</td>
            <td class="num">{ queue.len }</td>
            <td><span class={classes!("badge", queue.status.as_str())}>{ queue.status.as_str() }</span></td>
            <td>{ queue.policy.as_str() }</td>
            <td class="num">{ queue.consumers }</td>
            <td class="num">{ queue.added }</td>
            <td class="num">{ queue.taken }</td>
            <td class="num">{ queue.delivered }</td>
        </tr>
    }
}
