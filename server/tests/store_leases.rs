//! Store conformance, continued: leases (reserve, ack, nack, release, expiry to `<q>.dead`),
//! delayed messages and redrive, on every backend — memory, embedded and a real Redis — through
//! the `QueueStore` and `LeaseStore` traits, so all three keep the same semantics.

mod common;

use std::time::Duration;

use common::store::{add, key, q};
use restmq_server::store::{
    Delayed, EmbeddedStore, LeaseStore, MemoryStore, QueueStore, RedisOptions, RedisStore,
};

const LONG: Duration = Duration::from_secs(300);

/// A reserved message leaves the queue with its delivery count; ack removes it for good,
/// nack gives it back to the head with its count kept.
async fn reserve_ack_and_nack<S: LeaseStore + Clone>(s: S) {
    for v in ["a", "b", "c"] {
        add(&s, "l", v).await;
    }
    let leased = s.reserve(&q("l"), 2, LONG).await.unwrap();
    let got: Vec<(u64, &str, u32)> =
        leased.iter().map(|m| (m.key.n, m.value.as_str(), m.deliveries)).collect();
    assert_eq!(got, [(1, "a", 1), (2, "b", 1)]);
    assert_eq!(s.info(&q("l")).await.unwrap().unwrap().len, 1, "leased messages do not wait");
    assert!(s.ack(&key("l", 1)).await.unwrap());
    assert!(!s.ack(&key("l", 1)).await.unwrap(), "acknowledged twice");
    assert!(s.nack(&key("l", 2)).await.unwrap());
    assert!(!s.nack(&key("l", 3)).await.unwrap(), "c was never leased");
    let again = s.reserve(&q("l"), 1, LONG).await.unwrap();
    assert_eq!((again[0].key.n, again[0].deliveries), (2, 2), "b back at the head, its count kept");
    let popped = s.pop(&q("l"), 10).await.unwrap();
    assert_eq!(popped.iter().map(|m| m.value.as_str()).collect::<Vec<_>>(), ["c"]);
}

/// Release gives several leased messages back at once, in key order, ahead of the rest.
async fn release_gives_back_in_order<S: LeaseStore + Clone>(s: S) {
    for v in ["a", "b", "c", "d"] {
        add(&s, "r", v).await;
    }
    assert_eq!(s.reserve(&q("r"), 3, LONG).await.unwrap().len(), 3);
    assert_eq!(s.release(&q("r"), &[3, 1]).await.unwrap(), 2);
    let popped = s.pop(&q("r"), 10).await.unwrap();
    assert_eq!(popped.iter().map(|m| m.key.n).collect::<Vec<_>>(), [1, 3, 4]);
    assert!(s.ack(&key("r", 2)).await.unwrap(), "b is still leased");
}

/// A lease that runs out puts the message back; at the delivery limit it goes to `<q>.dead`,
/// which redrive moves back as new messages.
async fn expiry_dead_letters_and_redrive<S: LeaseStore + Clone>(s: S) {
    add(&s, "e", "once").await;
    add(&s, "e", "twice").await;
    let short = Duration::from_millis(50);
    assert_eq!(s.reserve(&q("e"), 2, short).await.unwrap().len(), 2);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let expired = s.expire_leases(2).await.unwrap();
    let returned: u64 = expired.iter().map(|e| e.returned).sum();
    assert_eq!((returned, expired.iter().map(|e| e.dead).sum::<u64>()), (2, 0), "{expired:?}");
    assert_eq!(s.info(&q("e")).await.unwrap().unwrap().len, 2, "both back");
    assert_eq!(s.reserve(&q("e"), 1, short).await.unwrap()[0].deliveries, 2);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let expired = s.expire_leases(2).await.unwrap();
    assert_eq!(expired.iter().map(|e| e.dead).sum::<u64>(), 1, "{expired:?}");
    let dead = s.info(&q("e.dead")).await.unwrap().unwrap();
    assert_eq!(dead.len, 1);
    assert_eq!(s.redrive(&q("e.dead"), &q("e"), None).await.unwrap(), 1);
    assert_eq!(s.info(&q("e.dead")).await.unwrap().map_or(0, |i| i.len), 0);
    let back = s.pop(&q("e"), 10).await.unwrap();
    let got: Vec<(u64, &str)> = back.iter().map(|m| (m.key.n, m.value.as_str())).collect();
    assert_eq!(got, [(2, "twice"), (3, "once")], "redriven under a new key, after what waited");
}

/// A delayed message is out of sight until it is due, then joins the queue.
async fn delayed_messages_appear_when_due<S: LeaseStore + Clone>(s: S) {
    let later = s
        .add_delayed(
            &q("d"),
            Delayed { value: "later".to_owned(), ttl: None, delay: Duration::from_millis(200), limit: None },
        )
        .await
        .unwrap();
    add(&s, "d", "now").await;
    assert_eq!(later, key("d", 1));
    assert!(s.promote_delayed().await.unwrap().is_empty(), "not due yet");
    assert_eq!(s.info(&q("d")).await.unwrap().unwrap().len, 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.promote_delayed().await.unwrap(), [q("d")]);
    let popped = s.pop(&q("d"), 10).await.unwrap();
    let mut values: Vec<&str> = popped.iter().map(|m| m.value.as_str()).collect();
    values.sort_unstable();
    assert_eq!(values, ["later", "now"]);
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                /// Runs the case of this name on the memory backend.
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::MemoryStore::new()).await;
                }
            )*
        }
        mod embedded {
            $(
                /// Runs the case of this name on the embedded backend.
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let dir = tempfile::tempdir().unwrap();
                    let store = super::EmbeddedStore::open(dir.path()).unwrap();
                    super::$case(store.clone()).await;
                    super::QueueStore::close(&store).await.unwrap();
                }
            )*
        }
        mod redis {
            $(
                /// Runs the case of this name on a Redis of its own.
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let redis = super::common::redis::RedisServer::start();
                    let options = super::RedisOptions { urls: vec![redis.url()], cluster: false, node_addr: "test".to_owned() };
                    let store = super::RedisStore::open(options).await.unwrap();
                    super::$case(store.clone()).await;
                    super::QueueStore::close(&store).await.unwrap();
                }
            )*
        }
    };
}

conformance!(
    reserve_ack_and_nack,
    release_gives_back_in_order,
    expiry_dead_letters_and_redrive,
    delayed_messages_appear_when_due,
);
