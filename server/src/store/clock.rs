//! The store's clock: Unix milliseconds, the time base of expiry, delays and lease deadlines
//! in every backend.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch: the clock of message expiry.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A duration in whole milliseconds, saturating.
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The instant (Unix ms) `d` from now.
pub fn after(d: Duration) -> u64 {
    now_ms().saturating_add(millis(d))
}

/// The expiry instant of a message added now with `ttl`.
pub fn expiry(ttl: Option<Duration>) -> Option<u64> {
    ttl.map(after)
}
