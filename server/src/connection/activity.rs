//! What a connection is doing — waiting for a request (idle, or part-way through its head)
//! or serving one — and so when it is due to be closed.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a connection may wait.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// From a request's first byte (or from connecting) to its complete head.
    pub header_read: Duration,
    /// Between requests of a keep-alive connection.
    pub idle: Duration,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// No request is being served; `reading` once bytes of the next head arrived.
    Waiting { since: Instant, reading: bool },
    /// Requests handed to the router whose responses are not finished.
    Serving { requests: usize },
}

/// One connection's phase, written by its socket (reads) and its service (requests).
#[derive(Debug)]
pub struct Activity(Mutex<Phase>);

impl Activity {
    /// A connection accepted at `now`: its first head is due from then.
    pub fn new(now: Instant) -> Self {
        Self(Mutex::new(Phase::Waiting { since: now, reading: true }))
    }

    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes arrived: between requests, the next head has begun.
    pub fn on_read(&self, now: Instant) {
        let mut phase = self.phase();
        if let Phase::Waiting { reading: false, .. } = *phase {
            *phase = Phase::Waiting { since: now, reading: true };
        }
    }

    /// A request reached the router; it is served until the returned guard drops (with the
    /// response body).
    pub fn begin(self: &Arc<Self>) -> Serving {
        let mut phase = self.phase();
        *phase = match *phase {
            Phase::Waiting { .. } => Phase::Serving { requests: 1 },
            Phase::Serving { requests } => Phase::Serving { requests: requests + 1 },
        };
        Serving(Arc::clone(self))
    }

    fn end(&self, now: Instant) {
        let mut phase = self.phase();
        *phase = match *phase {
            Phase::Serving { requests } if requests > 1 => Phase::Serving { requests: requests - 1 },
            _ => Phase::Waiting { since: now, reading: false },
        };
    }

    /// When the connection is to be closed if nothing changes; `None` while it serves.
    pub fn deadline(&self, timeouts: &Timeouts) -> Option<Instant> {
        match *self.phase() {
            Phase::Waiting { since, reading: true } => Some(since + timeouts.header_read),
            Phase::Waiting { since, reading: false } => Some(since + timeouts.idle),
            Phase::Serving { .. } => None,
        }
    }

    /// Since when the connection has waited for a request, if it is waiting.
    pub fn waiting_since(&self) -> Option<Instant> {
        match *self.phase() {
            Phase::Waiting { since, .. } => Some(since),
            Phase::Serving { .. } => None,
        }
    }
}

/// A request in progress; dropping it ends the request.
#[derive(Debug)]
pub struct Serving(Arc<Activity>);

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.end(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUTS: Timeouts =
        Timeouts { header_read: Duration::from_secs(30), idle: Duration::from_secs(60) };

    /// A new connection owes its head within the header timeout; once served, it may idle for
    /// the idle timeout, and its next head is due from its first byte.
    #[test]
    fn deadlines_follow_the_phase() {
        let start = Instant::now();
        let activity = Arc::new(Activity::new(start));
        assert_eq!(activity.deadline(&TIMEOUTS), Some(start + TIMEOUTS.header_read));
        let serving = activity.begin();
        let second = activity.begin();
        assert_eq!(activity.deadline(&TIMEOUTS), None, "serving has no deadline");
        assert_eq!(activity.waiting_since(), None);
        drop(serving);
        assert_eq!(activity.deadline(&TIMEOUTS), None, "one request still in progress");
        drop(second);
        let idle_since = activity.waiting_since().expect("waiting again");
        assert_eq!(activity.deadline(&TIMEOUTS), Some(idle_since + TIMEOUTS.idle));
        let first_byte = idle_since + Duration::from_secs(5);
        activity.on_read(first_byte);
        assert_eq!(activity.deadline(&TIMEOUTS), Some(first_byte + TIMEOUTS.header_read));
        activity.on_read(first_byte + Duration::from_secs(1));
        assert_eq!(
            activity.deadline(&TIMEOUTS),
            Some(first_byte + TIMEOUTS.header_read),
            "a trickle does not extend it"
        );
    }
}
