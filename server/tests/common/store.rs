//! Shorthands of the store-level suites (`store_conformance`, `store_leases`).

use restmq_server::store::QueueStore;
use restmq_shared::{MessageKey, QueueName};

pub fn q(name: &str) -> QueueName {
    QueueName::try_from(name).unwrap()
}

pub fn key(queue: &str, n: u64) -> MessageKey {
    MessageKey::new(q(queue), n)
}

pub async fn add<S: QueueStore>(s: &S, queue: &str, value: &str) -> MessageKey {
    s.add(&q(queue), value.to_owned(), None).await.unwrap()
}
