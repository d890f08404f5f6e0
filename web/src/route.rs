//! Hash routes, so every view has a link a user can bookmark. The app never reads a `queue`
//! query parameter: `/?queue=…` is RestMQ's hard get and stays the server's.

use restmq_shared::QueueName;

use crate::model::job::{presets, Job};

/// The queue the charts view opens on: the system feed's.
pub const SYSTEM_QUEUE: &str = "system";
/// The queue the worker view proposes when the link names none.
pub const DEFAULT_JOBS: &str = "jobs";

/// One view of the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `#/dashboard` (and the empty hash): every queue, with actions.
    Dashboard,
    /// `#/stream/<queue>`: the live view of a queue; `#/stream` asks for one.
    Stream(Option<QueueName>),
    /// `#/queue/<queue>`: one queue's page: its last hour, waiting, leased and dead messages,
    /// consumers and actions.
    Queue(QueueName),
    /// `#/charts/<queue>`: line charts of the numeric fields of a queue's messages.
    Charts(QueueName),
    /// `#/worker/<queue>?job=<link>`: this tab as a map/reduce worker on an input queue
    /// (`#/worker`: the default one), with the job of the link or a preset to edit.
    Worker(QueueName, Option<Job>),
    /// `#/reduce/<queue>?job=<link>`: the reduced results of a job over an input queue, read
    /// from its result queue (without a job: the word count preset).
    Reduce(QueueName, Job),
    /// Anything else, kept to say what was not understood.
    NotFound(String),
}

impl Route {
    /// Parses `location.hash` (with or without its leading `#`).
    pub fn parse(hash: &str) -> Self {
        let path = hash.trim_start_matches('#').trim_start_matches('/');
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let path = path.trim_end_matches('/');
        let job = match query.split('&').find_map(|pair| pair.strip_prefix("job=")) {
            Some(text) => match Job::decode(text) {
                Some(job) => Some(job),
                None => return Self::NotFound(hash.to_owned()),
            },
            None => None,
        };
        let (view, arg) = match path.split_once('/') {
            Some((view, arg)) => (view, Some(arg)),
            None => (path, None),
        };
        let queue = |arg: Option<&str>, default: &str| QueueName::try_from(arg.unwrap_or(default)).ok();
        let route = match view {
            "" | "dashboard" if arg.is_none() => Some(Self::Dashboard),
            "stream" => match arg {
                None => Some(Self::Stream(None)),
                Some(name) => QueueName::try_from(name).ok().map(|q| Self::Stream(Some(q))),
            },
            "charts" => queue(arg, SYSTEM_QUEUE).map(Self::Charts),
            "queue" => arg.and_then(|name| QueueName::try_from(name).ok()).map(Self::Queue),
            "worker" => queue(arg, DEFAULT_JOBS).map(|q| Self::Worker(q, job)),
            "reduce" => {
                queue(arg, DEFAULT_JOBS).map(|q| Self::Reduce(q, job.unwrap_or_else(|| presets().remove(0))))
            }
            _ => None,
        };
        route.unwrap_or_else(|| Self::NotFound(hash.to_owned()))
    }

    /// The hash that opens this route, `#/…`.
    pub fn to_hash(&self) -> String {
        match self {
            Self::Dashboard => "#/dashboard".to_owned(),
            Self::Stream(None) => "#/stream".to_owned(),
            Self::Stream(Some(queue)) => format!("#/stream/{queue}"),
            Self::Charts(queue) => format!("#/charts/{queue}"),
            Self::Queue(queue) => format!("#/queue/{queue}"),
            Self::Worker(queue, None) => format!("#/worker/{queue}"),
            Self::Worker(queue, Some(job)) => format!("#/worker/{queue}?job={}", job.encode()),
            Self::Reduce(queue, job) => format!("#/reduce/{queue}?job={}", job.encode()),
            Self::NotFound(hash) => hash.clone(),
        }
    }

    /// Which entry of the navigation bar this route belongs to.
    pub fn section(&self) -> &'static str {
        match self {
            Self::Dashboard | Self::Queue(_) | Self::NotFound(_) => "dashboard",
            Self::Stream(_) => "stream",
            Self::Charts(_) => "charts",
            Self::Worker(..) | Self::Reduce(..) => "worker",
        }
    }

    /// The document title: `restmq · <view> · <queue>`.
    pub fn title(&self) -> String {
        match self {
            Self::Dashboard => "restmq · dashboard".to_owned(),
            Self::Stream(None) => "restmq · stream".to_owned(),
            Self::Stream(Some(queue)) => format!("restmq · stream · {queue}"),
            Self::Queue(queue) => format!("restmq · queue · {queue}"),
            Self::Charts(queue) => format!("restmq · charts · {queue}"),
            Self::Worker(queue, _) => format!("restmq · worker · {queue}"),
            Self::Reduce(queue, _) => format!("restmq · totals · {queue}"),
            Self::NotFound(_) => "restmq · not found".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(name: &str) -> QueueName {
        name.parse().unwrap()
    }

    /// Every view parses from its hash and prints back to the same hash.
    #[test]
    fn routes_round_trip() {
        for route in [
            Route::Dashboard,
            Route::Stream(None),
            Route::Stream(Some(q("syslogd:web-1"))),
            Route::Charts(q("system")),
            Route::Queue(q("jobs.dead")),
            Route::Worker(q("jobs"), None),
            Route::Worker(q("text"), Some(presets().remove(1))),
            Route::Reduce(q("system"), presets().remove(2)),
        ] {
            assert_eq!(Route::parse(&route.to_hash()), route, "{}", route.to_hash());
        }
    }

    /// The empty hash is the dashboard; short forms get their default queue; a trailing slash is ignored.
    #[test]
    fn defaults_and_short_forms() {
        assert_eq!(Route::parse(""), Route::Dashboard);
        assert_eq!(Route::parse("#"), Route::Dashboard);
        assert_eq!(Route::parse("#/"), Route::Dashboard);
        assert_eq!(Route::parse("#/stream/"), Route::Stream(None));
        assert_eq!(Route::parse("#/charts"), Route::Charts(q("system")));
        assert_eq!(Route::parse("#/worker"), Route::Worker(q("jobs"), None));
        assert_eq!(Route::parse("#/reduce/text"), Route::Reduce(q("text"), presets().remove(0)));
        assert_eq!(Route::parse("#/stream/news/"), Route::Stream(Some(q("news"))));
        assert_eq!(Route::parse("#/queue"), Route::NotFound("#/queue".to_owned()));
        assert_eq!(Route::parse("#/stream/system").title(), "restmq · stream · system");
    }

    /// Invalid queue names and unknown views are reported, not guessed at.
    #[test]
    fn bad_routes() {
        assert_eq!(Route::parse("#/stream/a b"), Route::NotFound("#/stream/a b".to_owned()));
        assert_eq!(Route::parse("#/stream/a/b"), Route::NotFound("#/stream/a/b".to_owned()));
        assert_eq!(Route::parse("#/nope"), Route::NotFound("#/nope".to_owned()));
        assert_eq!(Route::parse("#/dashboard/x"), Route::NotFound("#/dashboard/x".to_owned()));
        assert_eq!(Route::parse("#/worker/q?job=%%"), Route::NotFound("#/worker/q?job=%%".to_owned()));
    }
}
