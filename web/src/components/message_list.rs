//! The rows of the live view, newest first. Values are text nodes: JSON pretty-printed in a
//! `<pre>`, anything else as it came; nothing is ever parsed as HTML.

use std::rc::Rc;

use yew::prelude::*;

use crate::model::Row;

#[derive(Properties, PartialEq)]
pub struct MessageListProps {
    /// The rows to show, newest first (already capped).
    pub rows: Vec<Rc<Row>>,
}

#[function_component(MessageList)]
pub fn message_list(props: &MessageListProps) -> Html {
    html! {
        <ol id="rows" class="rows" aria-label="messages, newest first">
            { for props.rows.iter().map(|row| html! { <MessageRow key={row.seq} row={row.clone()} /> }) }
        </ol>
    }
}

#[derive(Properties, PartialEq)]
struct MessageRowProps {
    row: Rc<Row>,
}

/// One row; re-renders only when its row changes (rows are immutable once made, and `Rc`
/// equality of an `Eq` type checks the pointer first).
#[function_component(MessageRow)]
fn message_row(props: &MessageRowProps) -> Html {
    let row = &props.row;
    let kind = if row.pretty.is_some() { "json" } else { "text" };
    html! {
        <li class="row">
            <span class="key">{ &row.key }</span>
            <pre class={classes!("value", kind)}>{ row.text() }</pre>
            if row.is_cut() {
                <span class="cut">{ format!("… {} bytes in all", row.bytes) }</span>
            }
        </li>
    }
}
