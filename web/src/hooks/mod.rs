//! Hooks: the stateful IO the views use. Logic lives in `state`; these wire it to the browser.
//!
//! # Layout
//! - this file: `use_route` (the hash), `use_stats` (polling `/stats/` with rates), `now_ms`.
//! - [`stream`]: `use_queue_stream` and `use_charts`, fed once per animation frame.
//! - [`mapreduce`]: `use_job_runner`, this tab as a map/reduce worker.
//! - [`reduce`]: `use_reducer_view`, the reduce step over a result queue.
//! - [`session`]: `use_session` (sign-in) and `use_theme` (dark mode).
//! - [`queue`]: `use_queue_page`, one queue's history, messages and consumers.

pub mod mapreduce;
pub mod queue;
pub mod reduce;
pub mod session;
pub mod stream;

use std::{cell::Cell, collections::BTreeMap, rc::Rc, time::Duration};

use gloo_events::EventListener;
use restmq_shared::StatsReply;
use yew::{
    platform::{spawn_local, time::sleep},
    prelude::*,
};

use crate::{
    api::{self, ApiError},
    model::rate::{queue_rates, QueueRates},
    route::Route,
};

/// How often [`use_stats`] polls the server.
pub const STATS_REFRESH: Duration = Duration::from_secs(1);

/// Milliseconds since the epoch, from the browser's clock.
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// The route of the page's hash, updated on every `hashchange`.
#[hook]
pub fn use_route() -> Route {
    let route = use_state(current_route);
    {
        let route = route.clone();
        use_effect_with((), move |()| {
            let listener = web_sys::window()
                .map(|window| EventListener::new(&window, "hashchange", move |_| route.set(current_route())));
            move || drop(listener)
        });
    }
    (*route).clone()
}

fn current_route() -> Route {
    let hash = web_sys::window().and_then(|w| w.location().hash().ok()).unwrap_or_default();
    Route::parse(&hash)
}

/// Opens `route` (pushes its hash, so the back button works).
pub fn navigate(route: &Route) {
    if let Some(window) = web_sys::window() {
        let _ = window.location().set_hash(&route.to_hash());
    }
}

/// The latest `/stats/` reply, the rates since the one before, and the latest error. The last
/// good reply is kept while the server is unreachable.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub reply: Option<StatsReply>,
    /// When `reply` was asked for, in ms.
    pub at_ms: f64,
    pub rates: BTreeMap<String, QueueRates>,
    pub error: Option<ApiError>,
}

impl Stats {
    /// Takes a poll's result, asked for at `at_ms`; an answer older than the current one is dropped.
    fn apply(&self, result: Result<StatsReply, ApiError>, at_ms: f64) -> Option<Self> {
        match result {
            Ok(_) if at_ms < self.at_ms => None,
            Ok(reply) => {
                let rates = match &self.reply {
                    Some(prev) => queue_rates(prev, self.at_ms, &reply, at_ms),
                    None => BTreeMap::new(),
                };
                Some(Self { reply: Some(reply), at_ms, rates, error: None })
            }
            Err(error) => Some(Self { error: Some(error), ..self.clone() }),
        }
    }

    /// The queue names known to the server.
    pub fn queue_names(&self) -> Vec<String> {
        self.reply.as_ref().map(|r| r.queues.keys().cloned().collect()).unwrap_or_default()
    }
}

impl Reducible for Stats {
    type Action = (Result<StatsReply, ApiError>, f64);

    fn reduce(self: Rc<Self>, (result, at_ms): Self::Action) -> Rc<Self> {
        self.apply(result, at_ms).map_or(self, Rc::new)
    }
}

/// Polls `GET /stats/` every [`STATS_REFRESH`] while mounted; the callback asks for a poll now
/// (after an action changed something).
#[hook]
pub fn use_stats() -> (Rc<Stats>, Callback<()>) {
    let stats = use_reducer(Stats::default);
    let dispatcher = stats.dispatcher();
    let poll = use_callback(dispatcher.clone(), |(), dispatcher| {
        let dispatcher = dispatcher.clone();
        spawn_local(async move {
            let at_ms = now_ms();
            dispatcher.dispatch((api::fetch_stats().await, at_ms));
        });
    });
    use_effect_with((), move |()| {
        let stopped = Rc::new(Cell::new(false));
        let stop = stopped.clone();
        spawn_local(async move {
            while !stopped.get() {
                let at_ms = now_ms();
                let result = api::fetch_stats().await;
                if stopped.get() {
                    break;
                }
                // Refused: polling again cannot help; a new token remounts the views.
                let refused = matches!(&result, Err(error) if error.is_refusal());
                dispatcher.dispatch((result, at_ms));
                if refused {
                    break;
                }
                sleep(STATS_REFRESH).await;
            }
        });
        move || stop.set(true)
    });
    let current = Rc::new((*stats).clone());
    (current, poll)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(added: u64) -> StatsReply {
        serde_json::from_value(serde_json::json!({
            "count": 1, "store": "memory",
            "queues": {"q": {"queue": "q", "name": "q", "len": 0, "status": 1, "policy": "",
                             "state": "started", "policy_name": "broadcast", "consumers": 0, "added": added, "taken": 0, "delivered": 0}}
        }))
        .unwrap()
    }

    /// Successive replies give rates; a failed poll keeps the last reply; a late answer is ignored.
    #[test]
    fn stats_samples() {
        let stats = Stats::default().apply(Ok(reply(10)), 1000.0).unwrap();
        assert!(stats.rates.is_empty());
        let stats = stats.apply(Ok(reply(30)), 3000.0).unwrap();
        assert_eq!(stats.rates["q"].inflow, 10.0);
        let failed = stats.apply(Err(ApiError::Status(503)), 4000.0).unwrap();
        assert_eq!((failed.reply.is_some(), failed.error.is_some()), (true, true));
        assert!(stats.apply(Ok(reply(99)), 2000.0).is_none());
        assert_eq!(stats.queue_names(), ["q"]);
    }
}
