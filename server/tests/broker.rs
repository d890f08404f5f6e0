//! The broker's delivery guarantees, driven directly: no message lost when a consumer
//! leaves mid-stream, slow consumers cut off without holding others, shutdown puts back.

use std::time::Duration;

use restmq_server::broker::{Broker, BrokerConfig, CloseReason, Subscription};
use restmq_server::store::{MemoryStore, Store};
use restmq_shared::{Policy, QueueName};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

fn broker(buffer: usize) -> (Broker, CancellationToken) {
    let token = CancellationToken::new();
    let config = BrokerConfig {
        consumer_buffer: buffer,
        slow_consumer_timeout: Duration::from_millis(300),
        batch: 64,
        ..BrokerConfig::default()
    };
    (Broker::new(Store::from(MemoryStore::new()), config, token.clone(), TaskTracker::new()), token)
}

fn q(name: &str) -> QueueName {
    name.parse().unwrap()
}

async fn recv_n(sub: &mut Subscription, queue: &str) -> u64 {
    let d = tokio::time::timeout(Duration::from_secs(5), sub.recv()).await.expect("in time").expect("open");
    d.mark_delivered();
    assert_eq!(d.message.key.queue.as_str(), queue);
    d.message.key.n
}

/// Hard-gets until `want` messages came back or time runs out; returns their numbers.
async fn drain(broker: &Broker, queue: &QueueName, want: usize) -> Vec<u64> {
    let mut got = Vec::new();
    for _ in 0..200 {
        while let Some(m) = broker.take(queue).await.unwrap() {
            got.push(m.key.n);
        }
        if got.len() >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    got
}

/// A consumer that leaves after 3 of 10 messages: the 7 it never got go back, in order.
#[tokio::test]
async fn leaving_consumer_loses_nothing() {
    let (broker, _token) = broker(16);
    let queue = q("jobs");
    let mut sub = broker.subscribe(&queue);
    for i in 0..10 {
        broker.add(&queue, format!("m{i}"), None).await.unwrap();
    }
    let seen =
        [recv_n(&mut sub, "jobs").await, recv_n(&mut sub, "jobs").await, recv_n(&mut sub, "jobs").await];
    assert_eq!(seen, [1, 2, 3]);
    drop(sub);
    assert_eq!(drain(&broker, &queue, 7).await, (4..=10).collect::<Vec<_>>());
}

/// Roundrobin: what a leaving consumer held goes to the other one; all 30 arrive once.
#[tokio::test]
async fn roundrobin_hands_over_on_leave() {
    let (broker, _token) = broker(4);
    let queue = q("rr");
    broker.set_policy(&queue, Policy::Roundrobin).await.unwrap();
    let leaver = broker.subscribe(&queue);
    let mut stayer = broker.subscribe(&queue);
    for i in 0..30 {
        broker.add(&queue, format!("m{i}"), None).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(leaver);
    let mut got = Vec::new();
    while got.len() < 30 {
        got.push(recv_n(&mut stayer, "rr").await);
    }
    got.sort_unstable();
    assert_eq!(got, (1..=30).collect::<Vec<_>>());
}

/// Broadcast: a consumer that never reads is cut off after the timeout; the other one
/// gets all 100 messages.
#[tokio::test]
async fn slow_consumer_is_cut_off() {
    let (broker, _token) = broker(4);
    let queue = q("fan");
    let mut slow = broker.subscribe(&queue);
    let mut fast = broker.subscribe(&queue);
    let producer = {
        let (broker, queue) = (broker.clone(), queue.clone());
        tokio::spawn(async move {
            for i in 0..100 {
                broker.add(&queue, format!("m{i}"), None).await.unwrap();
            }
        })
    };
    for want in 1..=100 {
        assert_eq!(recv_n(&mut fast, "fan").await, want);
    }
    producer.await.unwrap();
    assert!(slow.recv().await.is_none());
    assert_eq!(slow.close_reason(), Some(CloseReason::SlowConsumer));
}

/// Shutdown: messages buffered for a consumer but never written go back to the queue.
#[tokio::test]
async fn shutdown_puts_buffered_messages_back() {
    let (broker, token) = broker(8);
    let queue = q("stop");
    let mut sub = broker.subscribe(&queue);
    for i in 0..5 {
        broker.add(&queue, format!("m{i}"), None).await.unwrap();
    }
    assert_eq!(recv_n(&mut sub, "stop").await, 1);
    tokio::time::sleep(Duration::from_millis(50)).await;
    token.cancel();
    drop(sub);
    broker.flush_requeues().await;
    let mut left = Vec::new();
    while let Some(m) = broker.take(&queue).await.unwrap() {
        left.push(m.key.n);
    }
    assert_eq!(left, vec![2, 3, 4, 5]);
}
