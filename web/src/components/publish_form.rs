//! The form that publishes a message to a queue (new or existing, or the one of the queue page):
//! value, TTL and delay; Ctrl+Enter publishes; JSON is checked when the value looks like JSON;
//! what was typed stays when the server refuses it.

use restmq_shared::QueueName;
use yew::{platform::spawn_local, prelude::*};

use super::input_value;
use crate::api::{self, ApiError, Publish};

#[derive(Properties, PartialEq)]
pub struct PublishFormProps {
    /// Known queue names, proposed while typing.
    pub queues: Vec<String>,
    /// The queue to publish to; `None`: the user types one.
    #[prop_or_default]
    pub queue: Option<QueueName>,
    /// The outcome of each publish: the new key, or the server's refusal.
    pub on_done: Callback<Result<String, ApiError>>,
}

#[function_component(PublishForm)]
pub fn publish_form(props: &PublishFormProps) -> Html {
    let queue = use_state(|| props.queue.as_ref().map(|q| q.to_string()).unwrap_or_default());
    let value = use_state(String::new);
    let ttl = use_state(String::new);
    let delay = use_state(String::new);
    let problem = use_state(|| None::<String>);
    let busy = use_state(|| false);
    let submit = {
        let (queue, value, ttl, delay, problem, busy) =
            (queue.clone(), value.clone(), ttl.clone(), delay.clone(), problem.clone(), busy.clone());
        let on_done = props.on_done.clone();
        Callback::from(move |()| {
            let publish = match parse(&queue, &value, &ttl, &delay) {
                Ok(publish) => publish,
                Err(why) => return problem.set(Some(why)),
            };
            problem.set(None);
            busy.set(true);
            let (value, problem, busy, on_done) =
                (value.clone(), problem.clone(), busy.clone(), on_done.clone());
            spawn_local(async move {
                let outcome = api::publish_form(&publish).await;
                busy.set(false);
                match &outcome {
                    Ok(_) => value.set(String::new()),
                    // Kept: the user fixes it and sends again.
                    Err(error) => problem.set(Some(format!("Not published: {error}"))),
                }
                on_done.emit(outcome);
            });
        })
    };
    let onsubmit = submit.reform(|e: SubmitEvent| e.prevent_default());
    let onkeydown = Callback::from(move |e: KeyboardEvent| {
        if e.key() == "Enter" && (e.ctrl_key() || e.meta_key()) {
            e.prevent_default();
            submit.emit(());
        }
    });
    let bind = |state: &UseStateHandle<String>| {
        let state = state.clone();
        Callback::from(move |e: InputEvent| state.set(input_value(&e)))
    };
    let target = props.queue.as_ref().map(|q| q.to_string()).unwrap_or_else(|| (*queue).clone());
    html! {
        <form class="publish" {onsubmit} aria-label="publish a message">
            if props.queue.is_none() {
                <label>{ "Queue" }
                    <input id="publish-queue" list="known-queues" required=true placeholder="news"
                        autocomplete="off" value={(*queue).clone()} oninput={bind(&queue)} />
                </label>
                <datalist id="known-queues">
                    { for props.queues.iter().map(|q| html! { <option value={q.clone()} /> }) }
                </datalist>
            }
            <label class="grow">{ "Message" }
                <textarea id="publish-value" rows="2" placeholder="text, or JSON such as {\"level\":\"info\"}"
                    value={(*value).clone()} oninput={bind(&value)} {onkeydown} />
            </label>
            <label class="short">{ "TTL (s)" }
                <input id="publish-ttl" type="number" min="1" inputmode="numeric" placeholder="none"
                    value={(*ttl).clone()} oninput={bind(&ttl)} />
            </label>
            <label class="short">{ "Delay (s)" }
                <input id="publish-delay" type="number" min="1" inputmode="numeric" placeholder="none"
                    value={(*delay).clone()} oninput={bind(&delay)} />
            </label>
            <button type="submit" id="publish" disabled={*busy}>
                { if target.is_empty() { "Publish".to_owned() } else { format!("Publish to {target}") } }
            </button>
            <span class="hint">{ "Ctrl+Enter publishes." }</span>
            if let Some(problem) = &*problem {
                <p class="notice error" id="publish-problem" role="alert">{ problem }</p>
            }
        </form>
    }
}

/// What to send, or why not.
fn parse(queue: &str, value: &str, ttl: &str, delay: &str) -> Result<Publish, String> {
    let queue = QueueName::try_from(queue.trim()).map_err(|e| e.to_string())?;
    check_json(value)?;
    let seconds = |text: &str, what: &str| match text.trim() {
        "" => Ok(None),
        text => match text.parse::<u32>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(format!("{what} is a whole number of seconds, 1 or more")),
        },
    };
    Ok(Publish { queue, value: value.to_owned(), ttl: seconds(ttl, "TTL")?, delay: seconds(delay, "Delay")? })
}

/// A value that looks like JSON (starts with `{` or `[`) must parse as JSON.
fn check_json(value: &str) -> Result<(), String> {
    let text = value.trim_start();
    if !(text.starts_with('{') || text.starts_with('[')) {
        return Ok(());
    }
    serde_json::from_str::<serde_json::Value>(text)
        .map(drop)
        .map_err(|e| format!("This looks like JSON but is not valid: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values that look like JSON are checked; text is sent as it is; TTL and delay are positive seconds.
    #[test]
    fn checks_before_publishing() {
        assert!(parse("q", r#"{"a":1}"#, "", "").is_ok());
        assert!(parse("q", "plain text {", "", "").is_ok());
        let bad = parse("q", r#"{"a":}"#, "", "").unwrap_err();
        assert!(bad.starts_with("This looks like JSON"), "{bad}");
        assert!(parse("q", "[1,", "", "").is_err());
        let ok = parse(" q ", "v", "60", " 5 ").unwrap();
        assert_eq!((ok.queue.as_str(), ok.ttl, ok.delay), ("q", Some(60), Some(5)));
        assert!(parse("q", "v", "0", "").is_err());
        assert!(parse("q", "v", "", "soon").is_err());
        assert!(parse("a b", "v", "", "").is_err());
    }
}
