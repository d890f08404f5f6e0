//! `GET /browse/<queue>`: pages through waiting, leased and dead-lettered messages in order,
//! on every store, and changes nothing: lengths, soft-read counts and the next get.

mod common;

use common::TestServer;
use restmq_server::config::StoreKind;
use restmq_shared::BrowseReply;

/// Adds `count` messages `m0…` in batches of 1,000.
async fn fill(s: &TestServer, queue: &str, count: usize) {
    for start in (0..count).step_by(1000) {
        let batch: Vec<String> = (start..count.min(start + 1000)).map(|i| format!("m{i}")).collect();
        let body = serde_json::to_string(&batch).unwrap();
        let (status, answer) = s.post_raw(&format!("/q/{queue}?batch=1"), "application/json", &body).await;
        assert_eq!(status, 200, "{answer}");
    }
}

async fn page(s: &TestServer, path: &str) -> BrowseReply {
    serde_json::from_value(s.get_json(path).await).unwrap()
}

/// 10,000 waiting messages, paged 1,000 (then the default 50) at a time: every one in order,
/// once, with nothing taken and no soft read counted.
async fn browse_pages_through_ten_thousand_in_order(store: StoreKind) {
    let s = TestServer::start(store).await;
    fill(&s, "deep", 10_000).await;
    let peeked = s.get_json("/q/deep?soft=1").await;
    assert_eq!(peeked["count"], 1);

    let (mut seen, mut after, mut pages) = (Vec::new(), None::<String>, 0);
    loop {
        let path = match &after {
            Some(key) => format!("/browse/deep?limit=1000&after={key}"),
            None => "/browse/deep?limit=1000".to_owned(),
        };
        let reply = page(&s, &path).await;
        pages += 1;
        assert_eq!(reply.len, 10_000, "browsing changed the length");
        assert!(reply.messages.len() <= 1000);
        seen.extend(reply.messages.iter().map(|m| (m.key.to_string(), m.value.clone(), m.count)));
        match reply.next {
            Some(next) => after = Some(next.to_string()),
            None => break,
        }
        assert!(pages <= 11, "paging does not end");
    }
    assert_eq!(seen.len(), 10_000);
    for (i, (key, value, count)) in seen.iter().enumerate() {
        assert_eq!(
            (key.as_str(), value.as_str()),
            (format!("deep:{}", i + 1).as_str(), format!("m{i}").as_str())
        );
        assert_eq!(*count, u64::from(i == 0), "soft-read count of {key}");
    }
    let first = page(&s, "/browse/deep").await;
    assert_eq!(first.messages.len(), 50, "the default page");
    assert_eq!(first.next.map(|k| k.to_string()).as_deref(), Some("deep:50"));
    let again = s.get_json("/q/deep?soft=1").await;
    assert_eq!((again["key"].as_str(), again["count"].as_u64()), (Some("deep:1"), Some(2)));
    let (status, taken) = s.get("/q/deep").await;
    assert_eq!((status, taken.contains("\"deep:1\"")), (200, true), "{taken}");
    s.stop().await;
}

/// Leased messages are listed apart, with deadline and deliveries; dead letters browse like
/// any queue; a message with a ttl shows its expiry.
async fn browse_shows_leases_dead_letters_and_expiry(store: StoreKind) {
    let s = TestServer::start_with(store, |c| c.max_deliveries = 1).await;
    for v in ["a", "b", "c"] {
        s.add("work", v).await;
    }
    let (status, _) = s.post_form("/q/work", &[("value", "d"), ("ttl", "600")]).await;
    assert_eq!(status, 200);
    let reserved = s.get_json("/q/work?reserve=300").await;
    assert_eq!(reserved["key"], "work:1");

    let waiting = page(&s, "/browse/work").await;
    let keys: Vec<String> = waiting.messages.iter().map(|m| m.key.to_string()).collect();
    assert_eq!((waiting.len, keys), (3, vec!["work:2".into(), "work:3".into(), "work:4".into()]));
    assert!(waiting.messages[..2].iter().all(|m| m.expires.is_none() && m.deadline.is_none()));
    // After a key no longer waiting (leased): the page starts at the next one that is.
    let after_gone = page(&s, "/browse/work?after=work:1&limit=1").await;
    assert_eq!(after_gone.messages[0].key.to_string(), "work:2");
    assert_eq!(after_gone.next.map(|k| k.to_string()).as_deref(), Some("work:2"));
    let now_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let expires = waiting.messages[2].expires.expect("work:4 has a ttl");
    assert!(expires > now_ms + 500_000 && expires <= now_ms + 601_000, "expires {expires} vs now {now_ms}");

    let leased = page(&s, "/browse/work?leased=1").await;
    assert_eq!(leased.messages.len(), 1);
    let lease = &leased.messages[0];
    assert_eq!(
        (lease.key.to_string().as_str(), lease.value.as_str(), lease.deliveries),
        ("work:1", "a", Some(1))
    );
    let deadline = lease.deadline.expect("a leased message has a deadline");
    assert!(deadline > now_ms + 200_000 && deadline <= now_ms + 301_000, "deadline {deadline}");

    let (status, _) = s.get("/q/work?reserve=1").await;
    assert_eq!(status, 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let dead = loop {
        let dead = page(&s, "/browse/work.dead").await;
        if !dead.messages.is_empty() || std::time::Instant::now() > deadline {
            break dead;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(dead.messages.iter().map(|m| m.value.as_str()).collect::<Vec<_>>(), ["b"]);
    assert_eq!(s.get_json("/stats/work").await["len"], 2, "browsing took nothing");
    s.stop().await;
}

/// Bad arguments get a 400 JSON error; an unknown queue browses as empty.
async fn browse_refuses_bad_arguments(store: StoreKind) {
    let s = TestServer::start(store).await;
    s.add("q1", "x").await;
    for path in [
        "/browse/q1?limit=0",
        "/browse/q1?limit=1001",
        "/browse/q1?limit=ten",
        "/browse/q1?after=q2:1",
        "/browse/q1?after=nokey",
    ] {
        let (status, body) = s.get(path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains("\"error\""), "{path}: {body}");
    }
    let empty = page(&s, "/browse/nothing-here").await;
    assert_eq!((empty.len, empty.messages.len(), empty.next), (0, 0, None));
    let past = page(&s, "/browse/q1?after=q1:5").await;
    assert!(past.messages.is_empty());
    s.stop().await;
}

on_every_store!(
    browse_pages_through_ten_thousand_in_order,
    browse_shows_leases_dead_letters_and_expiry,
    browse_refuses_bad_arguments
);
