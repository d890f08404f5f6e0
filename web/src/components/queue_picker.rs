//! A queue name field, proposing the queues the server knows, that reports the queue typed.

use restmq_shared::QueueName;
use yew::prelude::*;

use super::input_value;

#[derive(Properties, PartialEq)]
pub struct QueuePickerProps {
    /// The field's id (its list of proposals is `<id>-names`).
    pub id: AttrValue,
    pub label: AttrValue,
    /// The button's text.
    pub action: AttrValue,
    /// The queue shown at first.
    pub queue: Option<QueueName>,
    /// Queue names to propose.
    pub queues: Vec<String>,
    /// Called with the queue typed, once it is a valid name.
    pub on_pick: Callback<QueueName>,
}

/// A queue name field (proposing the known queues) with its button.
#[function_component(QueuePicker)]
pub fn queue_picker(props: &QueuePickerProps) -> Html {
    let text = use_state(|| props.queue.as_ref().map(ToString::to_string).unwrap_or_default());
    let problem = use_state(|| None::<String>);
    let onsubmit = {
        let (text, problem, on_pick) = (text.clone(), problem.clone(), props.on_pick.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            match QueueName::try_from(text.trim()) {
                Ok(queue) => {
                    problem.set(None);
                    on_pick.emit(queue);
                }
                Err(error) => problem.set(Some(error.to_string())),
            }
        })
    };
    let oninput = {
        let text = text.clone();
        Callback::from(move |e: InputEvent| text.set(input_value(&e)))
    };
    let list = format!("{}-names", props.id);
    html! {
        <form class="picker" {onsubmit}>
            <label>{ &props.label }
                <input id={props.id.clone()} list={list.clone()} required=true autocomplete="off"
                    value={(*text).clone()} {oninput} />
            </label>
            <datalist id={list}>{ for props.queues.iter().map(|q| html! { <option value={q.clone()} /> }) }</datalist>
            <button type="submit">{ &props.action }</button>
            if let Some(problem) = &*problem { <p class="notice error" role="alert">{ problem }</p> }
        </form>
    }
}
