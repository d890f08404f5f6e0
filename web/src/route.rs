//! Hash routes, so every view has a link a user can bookmark. The app never reads a `queue`
//! query parameter: `/?queue=…` is RestMQ's hard get and stays the server's.

use restmq_shared::QueueName;

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
    /// `#/charts/<queue>`: line charts of the numeric fields of a queue's messages.
    Charts(QueueName),
    /// `#/worker/<queue>`: the browser worker on a job queue (`#/worker`: the default one).
    Worker(QueueName),
    /// `#/totals/<queue>`: the reduced results the workers post to a result queue.
    Totals(QueueName),
    /// Anything else, kept to say what was not understood.
    NotFound(String),
}

impl Route {
    /// Parses `location.hash` (with or without its leading `#`).
    pub fn parse(hash: &str) -> Self {
        let path = hash.trim_start_matches('#').trim_start_matches('/').trim_end_matches('/');
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
            "worker" => queue(arg, DEFAULT_JOBS).map(Self::Worker),
            "totals" => queue(arg, &results_queue_name(DEFAULT_JOBS)).map(Self::Totals),
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
            Self::Worker(queue) => format!("#/worker/{queue}"),
            Self::Totals(queue) => format!("#/totals/{queue}"),
            Self::NotFound(hash) => hash.clone(),
        }
    }

    /// Which entry of the navigation bar this route belongs to.
    pub fn section(&self) -> &'static str {
        match self {
            Self::Dashboard | Self::NotFound(_) => "dashboard",
            Self::Stream(_) => "stream",
            Self::Charts(_) => "charts",
            Self::Worker(_) | Self::Totals(_) => "worker",
        }
    }
}

/// The result queue that goes with a job queue: `<jobs>.counts`.
pub fn results_queue_name(jobs: &str) -> String {
    format!("{jobs}.counts")
}

/// [`results_queue_name`] for a valid job queue; `None` when the suffix makes it too long.
pub fn results_queue(jobs: &QueueName) -> Option<QueueName> {
    QueueName::try_from(results_queue_name(jobs.as_str())).ok()
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
            Route::Worker(q("jobs")),
            Route::Totals(q("jobs.counts")),
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
        assert_eq!(Route::parse("#/worker"), Route::Worker(q("jobs")));
        assert_eq!(Route::parse("#/totals"), Route::Totals(q("jobs.counts")));
        assert_eq!(Route::parse("#/stream/news/"), Route::Stream(Some(q("news"))));
    }

    /// Invalid queue names and unknown views are reported, not guessed at.
    #[test]
    fn bad_routes() {
        assert_eq!(Route::parse("#/stream/a b"), Route::NotFound("#/stream/a b".to_owned()));
        assert_eq!(Route::parse("#/stream/a/b"), Route::NotFound("#/stream/a/b".to_owned()));
        assert_eq!(Route::parse("#/nope"), Route::NotFound("#/nope".to_owned()));
        assert_eq!(Route::parse("#/dashboard/x"), Route::NotFound("#/dashboard/x".to_owned()));
    }

    /// The result queue is `<jobs>.counts`.
    #[test]
    fn result_queue_names() {
        assert_eq!(results_queue(&q("jobs")), Some(q("jobs.counts")));
        assert_eq!(results_queue(&q(&"j".repeat(128))), None);
    }
}
