//! Which transport to open next, and when: WebSocket first, then SSE, then COMET when one cannot
//! open; exponential back-off once all three failed; a quick reconnect after a stream that was
//! live ends (the server purged the queue, restarted, or dropped a slow consumer).

use std::fmt;

use restmq_shared::QueueName;

/// Delay before reconnecting a stream that was live, and the first step of the back-off.
pub const BACKOFF_BASE_MS: u32 = 500;
/// The longest wait between two rounds of attempts.
pub const BACKOFF_MAX_MS: u32 = 15_000;

/// How the client streams a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `/ws/<queue>`
    WebSocket,
    /// `/sse/<queue>`
    Sse,
    /// `/c/<queue>`
    Comet,
}

impl Transport {
    /// The transport to try when this one cannot open, if any is left.
    pub fn fallback(self) -> Option<Self> {
        match self {
            Self::WebSocket => Some(Self::Sse),
            Self::Sse => Some(Self::Comet),
            Self::Comet => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::WebSocket => "WebSocket",
            Self::Sse => "SSE",
            Self::Comet => "COMET",
        }
    }

    /// The route prefix: `ws`, `sse` or `c`.
    pub fn route(self) -> &'static str {
        match self {
            Self::WebSocket => "ws",
            Self::Sse => "sse",
            Self::Comet => "c",
        }
    }
}

/// The state of a stream's connection, as shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Link {
    /// Not subscribed.
    #[default]
    Idle,
    /// Opening `Transport`.
    Connecting(Transport),
    /// Open: messages flow.
    Live(Transport),
    /// Ended; the next attempt starts after `delay_ms`.
    Waiting { delay_ms: u32, failures: u32, reason: Option<String> },
    /// The server refused the stream (HTTP 401 or 403): no retry until a token is given.
    Refused(u16),
}

impl Link {
    /// A short class name for styling: `idle`, `connecting`, `live`, `waiting`.
    pub fn class(&self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Connecting(_) => "connecting",
            Self::Live(_) => "live",
            Self::Waiting { .. } => "waiting",
            Self::Refused(_) => "refused",
        }
    }
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Idle => f.write_str("not connected"),
            Self::Connecting(t) => write!(f, "connecting ({})", t.label()),
            Self::Live(t) => write!(f, "live ({})", t.label()),
            Self::Refused(401) => f.write_str("sign-in required: not retrying"),
            Self::Refused(status) => write!(f, "refused (HTTP {status}): this token may not read the queue"),
            Self::Waiting { delay_ms, failures, reason } => {
                if let Some(reason) = reason {
                    write!(f, "closed: {reason}; ")?;
                }
                if *failures > 0 {
                    write!(f, "server unreachable ({failures}×); ")?;
                }
                write!(f, "reconnecting in {:.1} s", f64::from(*delay_ms) / 1000.0)
            }
        }
    }
}

/// Chooses the transport of each attempt and the delay after each failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialer {
    next: Transport,
    /// Rounds in a row in which no transport could open.
    failures: u32,
}

impl Default for Dialer {
    fn default() -> Self {
        Self { next: Transport::WebSocket, failures: 0 }
    }
}

impl Dialer {
    /// The transport to open now.
    pub fn transport(&self) -> Transport {
        self.next
    }

    /// Rounds in a row in which no transport could open.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Records how the last attempt ended (`opened`: whether it was ever live) and returns the
    /// delay in milliseconds before the next one.
    pub fn ended(&mut self, opened: bool) -> u32 {
        if opened {
            self.failures = 0;
            return BACKOFF_BASE_MS;
        }
        match self.next.fallback() {
            Some(next) => {
                self.next = next;
                0
            }
            None => {
                self.next = Transport::WebSocket;
                self.failures += 1;
                backoff_ms(self.failures)
            }
        }
    }
}

/// The path that streams `queue` over `transport`, asking to resume after the key `since`;
/// an observer (`observe`) sees every add and takes nothing.
pub fn stream_path(transport: Transport, queue: &QueueName, since: Option<&str>, observe: bool) -> String {
    let mut query: Vec<String> = Vec::new();
    if observe {
        query.push("observe=1".to_owned());
    }
    query.extend(since.map(|key| format!("since={key}")));
    let path = format!("/{}/{queue}", transport.route());
    if query.is_empty() {
        path
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

/// The wait after the `failures`-th failed round: 0.5 s, 1 s, 2 s … up to [`BACKOFF_MAX_MS`].
pub fn backoff_ms(failures: u32) -> u32 {
    let doublings = failures.saturating_sub(1).min(16);
    BACKOFF_BASE_MS.saturating_mul(1 << doublings).min(BACKOFF_MAX_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A transport that cannot open falls back at once: WebSocket, then SSE, then COMET.
    #[test]
    fn falls_back_in_order() {
        let mut dialer = Dialer::default();
        assert_eq!(dialer.transport(), Transport::WebSocket);
        assert_eq!(dialer.ended(false), 0);
        assert_eq!(dialer.transport(), Transport::Sse);
        assert_eq!(dialer.ended(false), 0);
        assert_eq!(dialer.transport(), Transport::Comet);
    }

    /// When no transport opens, rounds restart at WebSocket with a doubling, capped delay.
    #[test]
    fn backs_off_after_full_rounds() {
        let mut dialer = Dialer::default();
        let mut delays = Vec::new();
        for _ in 0..8 {
            dialer.ended(false);
            dialer.ended(false);
            delays.push(dialer.ended(false));
            assert_eq!(dialer.transport(), Transport::WebSocket);
        }
        assert_eq!(delays, [500, 1000, 2000, 4000, 8000, 15_000, 15_000, 15_000]);
        assert_eq!(dialer.failures(), 8);
    }

    /// A stream that was live reconnects quickly on the same transport and forgets past failures.
    #[test]
    fn live_stream_reconnects_on_same_transport() {
        let mut dialer = Dialer::default();
        for _ in 0..3 {
            dialer.ended(false);
        }
        dialer.ended(false); // WebSocket failed again: SSE is next
        assert_eq!(dialer.transport(), Transport::Sse);
        assert_eq!(dialer.ended(true), BACKOFF_BASE_MS);
        assert_eq!(dialer.transport(), Transport::Sse);
        assert_eq!(dialer.failures(), 0);
    }

    /// Stream paths name the transport's route and resume with `since`.
    #[test]
    fn stream_paths() {
        let queue: QueueName = "syslogd:web-1".parse().unwrap();
        assert_eq!(stream_path(Transport::WebSocket, &queue, None, false), "/ws/syslogd:web-1");
        assert_eq!(
            stream_path(Transport::Sse, &queue, Some("syslogd:web-1:7"), false),
            "/sse/syslogd:web-1?since=syslogd:web-1:7"
        );
        assert_eq!(stream_path(Transport::Comet, &queue, None, false), "/c/syslogd:web-1");
        assert_eq!(
            stream_path(Transport::WebSocket, &queue, Some("syslogd:web-1:7"), true),
            "/ws/syslogd:web-1?observe=1&since=syslogd:web-1:7"
        );
    }

    /// The connection line tells the state, the reason and the wait.
    #[test]
    fn link_text() {
        assert_eq!(Link::Live(Transport::Sse).to_string(), "live (SSE)");
        let waiting = Link::Waiting { delay_ms: 2000, failures: 2, reason: Some("purged".into()) };
        assert_eq!(waiting.to_string(), "closed: purged; server unreachable (2×); reconnecting in 2.0 s");
        assert_eq!(waiting.class(), "waiting");
        assert_eq!(Link::Refused(401).to_string(), "sign-in required: not retrying");
    }
}
