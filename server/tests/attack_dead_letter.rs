//! Attack: dead letters of a queue whose name is 124 to 128 bytes go to a dead-letter queue
//! cut to 123 bytes, which is the dead-letter queue of another queue: redriving it hands
//! one queue's messages to the consumers of a different queue.

mod common;

use std::time::Duration;

use common::TestServer;
use restmq_server::config::StoreKind;

/// A dead-lettered message of queue `<p>tail` must never come out of queue `<p>`.
async fn long_name_dead_letters_stay_with_their_queue(store: StoreKind) {
    let s = TestServer::start_with(store, |c| c.max_deliveries = 1).await;
    let prefix = "p".repeat(123);
    let long = format!("{prefix}tail1"); // 128 bytes, a valid name
    s.add(&long, "secret of the long queue").await;
    let (status, body) = s.get(&format!("/q/{long}?reserve=1")).await;
    assert_eq!(status, 200, "{body}");
    // The lease ends unacknowledged; with max_deliveries = 1 the message is dead-lettered.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    // Another queue, `<prefix>`, redrives its own dead-letter queue.
    let (status, body) = s.post_form(&format!("/q/{prefix}.dead/redrive"), &[]).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = s.get(&format!("/q/{prefix}")).await;
    assert!(
        !(status == 200 && body.contains("secret of the long queue")),
        "queue {prefix} handed out a message of queue {long}: {body}"
    );
}

on_every_store!(long_name_dead_letters_stay_with_their_queue);
