//! The pub/sub bus every restmq process on one Redis shares: adds, settings changes,
//! purges and broadcast messages, turned into [`StoreEvent`]s. Reconnects by itself and
//! asks for a resync after a gap.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::PubSub;
use restmq_shared::QueueName;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::keys::{client_key, BUS};
use crate::store::{StoreEvent, StoredMessage};

/// Subscribes to the bus; returns once the subscription is in place, so nothing published
/// after this is missed.
pub async fn subscribe(client: &redis::Client) -> redis::RedisResult<PubSub> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(BUS).await?;
    Ok(pubsub)
}

/// Relays bus messages to `events` until `stop`, resubscribing after connection loss to the
/// next node that answers, in turn (a cluster forwards every node's publishes to all, so any
/// node will do). `up` says whether the subscription is in place.
pub async fn run(
    nodes: Vec<redis::Client>,
    mut pubsub: PubSub,
    events: broadcast::Sender<StoreEvent>,
    up: Arc<AtomicBool>,
    stop: CancellationToken,
) {
    let mut delay = Duration::from_millis(100);
    let mut turn = 0;
    loop {
        up.store(true, Ordering::Release);
        {
            let mut messages = pubsub.on_message();
            loop {
                tokio::select! {
                    msg = messages.next() => match msg {
                        Some(msg) => {
                            if let Some(event) = parse(msg.get_payload_bytes()) {
                                let _ = events.send(event);
                            }
                        }
                        None => break,
                    },
                    () = stop.cancelled() => return,
                }
            }
        }
        up.store(false, Ordering::Release);
        tracing::warn!("redis bus connection lost; resubscribing");
        pubsub = loop {
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = stop.cancelled() => return,
            }
            turn = (turn + 1) % nodes.len().max(1);
            let attempt = tokio::time::timeout(SUBSCRIBE_TIMEOUT, subscribe(&nodes[turn])).await;
            match attempt {
                Ok(Ok(p)) => break p,
                Ok(Err(err)) => tracing::debug!(%err, "redis bus resubscribe failed"),
                Err(_) => tracing::debug!("redis bus resubscribe timed out"),
            }
            delay = (delay * 2).min(Duration::from_secs(1));
        };
        delay = Duration::from_millis(100);
        let _ = events.send(StoreEvent::Resync);
    }
}

/// How long one node may take to accept the bus subscription.
pub const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(2);

/// `a <q>`, `s <q>`, `p <q>`, or `o <q> <n> <value>`.
fn parse(payload: &[u8]) -> Option<StoreEvent> {
    let text = std::str::from_utf8(payload).ok()?;
    let (kind, rest) = text.split_once(' ')?;
    Some(match kind {
        "a" => StoreEvent::Added(QueueName::try_from(rest).ok()?),
        "s" => StoreEvent::Settings(QueueName::try_from(rest).ok()?),
        "p" => StoreEvent::Purged(QueueName::try_from(rest).ok()?),
        "o" => {
            let mut parts = rest.splitn(3, ' ');
            let queue = QueueName::try_from(parts.next()?).ok()?;
            let n: u64 = parts.next()?.parse().ok()?;
            let value = parts.next().unwrap_or_default().to_owned();
            StoreEvent::Observed(StoredMessage { key: client_key(&queue, n), value })
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bus lines parse into events; values keep their spaces; unknown lines are ignored.
    #[test]
    fn parses_bus_lines() {
        let q: QueueName = "jobs".parse().unwrap();
        assert_eq!(parse(b"a jobs"), Some(StoreEvent::Added(q.clone())));
        assert_eq!(parse(b"p jobs"), Some(StoreEvent::Purged(q)));
        let Some(StoreEvent::Observed(seen)) = parse(b"o jobs 9 a b ") else { panic!("not observed") };
        assert_eq!((seen.key.to_string(), seen.value.as_str()), ("jobs:9".to_owned(), "a b "));
        assert_eq!(parse(b"x jobs"), None);
        assert_eq!(parse(b"a bad name"), None);
    }
}
