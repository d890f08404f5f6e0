//! The dashboard's form to publish a message to a queue (new or existing).

use restmq_shared::QueueName;
use yew::prelude::*;

use super::{input_value, QueueAction};

#[derive(Properties, PartialEq)]
pub struct PublishFormProps {
    /// Known queue names, proposed while typing.
    pub queues: Vec<String>,
    pub on_action: Callback<QueueAction>,
}

#[function_component(PublishForm)]
pub fn publish_form(props: &PublishFormProps) -> Html {
    let queue = use_state(String::new);
    let value = use_state(String::new);
    let problem = use_state(|| None::<String>);
    let onsubmit = {
        let (queue, value, problem, on_action) =
            (queue.clone(), value.clone(), problem.clone(), props.on_action.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            match QueueName::try_from(queue.trim()) {
                Ok(name) => {
                    problem.set(None);
                    on_action.emit(QueueAction::Publish(name, (*value).clone()));
                    value.set(String::new());
                }
                Err(error) => problem.set(Some(error.to_string())),
            }
        })
    };
    let on_queue = {
        let queue = queue.clone();
        Callback::from(move |e: InputEvent| queue.set(input_value(&e)))
    };
    let on_value = {
        let value = value.clone();
        Callback::from(move |e: InputEvent| value.set(input_value(&e)))
    };
    html! {
        <form class="publish" {onsubmit} aria-label="publish a message">
            <label>{ "Queue" }
                <input id="publish-queue" list="known-queues" required=true placeholder="news"
                    autocomplete="off" value={(*queue).clone()} oninput={on_queue} />
            </label>
            <datalist id="known-queues">
                { for props.queues.iter().map(|q| html! { <option value={q.clone()} /> }) }
            </datalist>
            <label class="grow">{ "Message" }
                <textarea id="publish-value" rows="1" placeholder="text, or JSON such as {\"level\":\"info\"}"
                    value={(*value).clone()} oninput={on_value} />
            </label>
            <button type="submit" id="publish">{ "Publish" }</button>
            if let Some(problem) = &*problem {
                <p class="notice error" role="alert">{ problem }</p>
            }
        </form>
    }
}
