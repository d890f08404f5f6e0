//! Hooks: the stateful IO the components use.

use std::{cell::Cell, rc::Rc, time::Duration};

use restmq_shared::StatsReply;
use yew::{
    platform::{spawn_local, time::sleep},
    prelude::*,
};

use crate::api;

/// How often [`use_stats`] polls the server.
pub const STATS_REFRESH: Duration = Duration::from_secs(2);

/// The latest `/stats/` reply and the error of the latest poll, if it failed. The last good
/// reply is kept while the server is unreachable.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub reply: Option<StatsReply>,
    pub error: Option<String>,
}

/// Polls `GET /stats/` every [`STATS_REFRESH`] while the component is mounted. One request is
/// in flight at a time: the next starts once the previous has answered and the delay passed.
#[hook]
pub fn use_stats() -> Stats {
    let stats = use_state(Stats::default);
    {
        let stats = stats.clone();
        use_effect_with((), move |()| {
            let stopped = Rc::new(Cell::new(false));
            let stop = stopped.clone();
            spawn_local(async move {
                let mut last = Stats::default();
                while !stopped.get() {
                    let result = api::fetch_stats().await;
                    if stopped.get() {
                        break;
                    }
                    match result {
                        Ok(reply) => last = Stats { reply: Some(reply), error: None },
                        Err(error) => last.error = Some(error),
                    }
                    stats.set(last.clone());
                    sleep(STATS_REFRESH).await;
                }
            });
            move || stop.set(true)
        });
    }
    (*stats).clone()
}
