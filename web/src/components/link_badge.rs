//! The connection state of a stream: live, connecting, or waiting to reconnect (and why).

use yew::prelude::*;

use crate::model::dial::Link;

#[derive(Properties, PartialEq)]
pub struct LinkBadgeProps {
    pub link: Link,
}

#[function_component(LinkBadge)]
pub fn link_badge(props: &LinkBadgeProps) -> Html {
    html! {
        <span class={classes!("link", props.link.class())} role="status" aria-live="polite" data-link={props.link.class()}>
            { props.link.to_string() }
        </span>
    }
}
