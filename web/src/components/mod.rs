//! Presentation components: props in, HTML out, no IO. Actions go out through `on*` callbacks.

mod chart;
mod job_editor;
mod link_badge;
mod message_list;
mod publish_form;
mod queue_picker;
mod queue_table;
mod sign_in;

pub use chart::{LineChart, Sparkline};
pub use job_editor::JobEditor;
pub use link_badge::LinkBadge;
pub use message_list::MessageList;
pub use publish_form::PublishForm;
pub use queue_picker::QueuePicker;
pub use queue_table::{PolicyControl, QueueAction, QueueTable};
pub use sign_in::SignIn;

use yew::prelude::*;

/// The value of the `<input>`, `<textarea>` or `<select>` an event came from.
pub fn input_value(event: &Event) -> String {
    event
        .target()
        .and_then(|target| js_sys::Reflect::get(&target, &"value".into()).ok())
        .and_then(|value| value.as_string())
        .unwrap_or_default()
}

/// "1 queue", "2 queues".
pub fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
