//! Heartbeats on every stream, on one clock (`--heartbeat-secs`): a proxy in front (nginx's
//! `proxy_read_timeout`) never sees an idle stream, and a WebSocket peer that stops answering
//! pings is noticed. WebSocket: a ping each beat, and the connection ends when nothing has
//! been heard from the peer for two beats (what it held goes back, as for any consumer that
//! leaves). SSE: a comment each beat. COMET: an empty line (`\r\n`) after a beat without a
//! message, which RestMQ's line clients skip (they drop lines shorter than two characters).

use std::time::Duration;

use tokio::time::{Instant, Interval, MissedTickBehavior};

/// What a beat asks the WebSocket transport to do.
pub(crate) enum Beat {
    /// Send a ping.
    Ping,
    /// Nothing heard for two beats: the peer is gone; end the connection.
    Silent,
}

/// The WebSocket side of the heartbeat: when to ping, and whether the peer still answers.
pub(crate) struct Pinger {
    every: Duration,
    tick: Interval,
    heard: Instant,
}

impl Pinger {
    /// A pinger beating every `every`, or none when heartbeats are off.
    pub(crate) fn new(every: Option<Duration>) -> Option<Self> {
        let every = every?;
        let mut tick = tokio::time::interval_at(Instant::now() + every, every);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Some(Self { every, tick, heard: Instant::now() })
    }

    /// Notes that the peer said something (a pong, or any frame).
    pub(crate) fn heard(&mut self) {
        self.heard = Instant::now();
    }
}

/// Notes that the peer said something, when there are heartbeats.
pub(crate) fn heard(pinger: &mut Option<Pinger>) {
    if let Some(p) = pinger {
        p.heard();
    }
}

/// The next beat of `pinger`; never, when there is none.
pub(crate) async fn beat(pinger: &mut Option<Pinger>) -> Beat {
    let Some(p) = pinger else { return std::future::pending().await };
    p.tick.tick().await;
    if p.heard.elapsed() >= p.every * 2 {
        Beat::Silent
    } else {
        Beat::Ping
    }
}
