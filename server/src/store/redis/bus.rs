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

/// Relays bus messages to `events` until `stop`, resubscribing after connection loss.
/// `up` says whether the subscription is in place.
pub async fn run(
    client: redis::Client,
    mut pubsub: PubSub,
    node: String,
    events: broadcast::Sender<StoreEvent>,
    up: Arc<AtomicBool>,
    stop: CancellationToken,
) {
    let mut delay = Duration::from_millis(100);
    loop {
        up.store(true, Ordering::Release);
        {
            let mut messages = pubsub.on_message();
            loop {
                tokio::select! {
                    msg = messages.next() => match msg {
                        Some(msg) => {
                            if let Some(event) = parse(msg.get_payload_bytes(), &node) {
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
            match subscribe(&client).await {
                Ok(p) => break p,
                Err(err) => {
                    tracing::debug!(%err, "redis bus resubscribe failed");
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
            }
        };
        delay = Duration::from_millis(100);
        let _ = events.send(StoreEvent::Resync);
    }
}

/// `a <q>`, `s <q>`, `p <q>`, or `m <origin> <q> <n> <value>`.
fn parse(payload: &[u8], node: &str) -> Option<StoreEvent> {
    let text = std::str::from_utf8(payload).ok()?;
    let (kind, rest) = text.split_once(' ')?;
    Some(match kind {
        "a" => StoreEvent::Added(QueueName::try_from(rest).ok()?),
        "s" => StoreEvent::Settings(QueueName::try_from(rest).ok()?),
        "p" => StoreEvent::Purged(QueueName::try_from(rest).ok()?),
        "m" => {
            let mut parts = rest.splitn(4, ' ');
            let origin = parts.next()?;
            let queue = QueueName::try_from(parts.next()?).ok()?;
            let n: u64 = parts.next()?.parse().ok()?;
            let value = parts.next().unwrap_or_default().to_owned();
            StoreEvent::Broadcast {
                message: StoredMessage { key: client_key(&queue, n), value },
                own: origin == node,
            }
        }
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
        assert_eq!(parse(b"a jobs", "me"), Some(StoreEvent::Added(q.clone())));
        assert_eq!(parse(b"p jobs", "me"), Some(StoreEvent::Purged(q)));
        let Some(StoreEvent::Broadcast { message, own }) = parse(b"m me jobs 7 hello big world", "me") else {
            panic!("not a broadcast")
        };
        assert!(own);
        assert_eq!(
            (message.key.to_string(), message.value.as_str()),
            ("jobs:7".to_owned(), "hello big world")
        );
        assert!(matches!(parse(b"m other jobs 8 ", "me"), Some(StoreEvent::Broadcast { own: false, .. })));
        let Some(StoreEvent::Observed(seen)) = parse(b"o jobs 9 a b ", "me") else { panic!("not observed") };
        assert_eq!((seen.key.to_string(), seen.value.as_str()), ("jobs:9".to_owned(), "a b "));
        assert_eq!(parse(b"x jobs", "me"), None);
        assert_eq!(parse(b"a bad name", "me"), None);
    }
}
