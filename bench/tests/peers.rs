//! The durable peers end to end at a tiny scale: `nats-server` with JetStream and `beanstalkd`
//! with its binlog (Debian packages, installed by `scripts/setup.sh`), started as the suite
//! starts them, each through `publish` and `pop`. Counts are checked, never timings.

use std::time::{Duration, Instant};

use restmq_bench::beanstalk::Beanstalk;
use restmq_bench::servers::{Env, Server};
use restmq_bench::suite::{one, Plan};

/// The queue `suite::one` gives the first run of `pop`.
const POP_QUEUE: &str = "popr0";

fn env() -> Env {
    Env { restmq_bin: "restmq".into(), ceiling_bin: "ceiling".into(), server_cpus: None }
}

/// Publishes for a while and pops exactly what was pre-filled, on the server `name`.
async fn publish_and_pop(server: &Server, name: &str) {
    let mut plan = Plan::quick();
    plan.pop_prefill = 120;
    let s = one(&server.target, &plan, "publish", 0).await.unwrap();
    assert!(s.count > 0 && s.rate > 0.0 && s.p50() > 0.0 && s.p99() >= s.p50(), "{name}: {s:?}");
    assert!(s.server_cpu > 0.0, "{name}: the server's CPU is read: {s:?}");
    let s = one(&server.target, &plan, "pop", 0).await.unwrap();
    assert_eq!(s.count, 120, "{name}: every pre-filled message taken once");
    assert!(s.p50() > 0.0, "{name}: {s:?}");
    let err = one(&server.target, &plan, "e2e 100", 0).await.unwrap_err();
    assert!(err.to_string().contains("only publish and pop"), "{name}: {err}");
}

/// JetStream on files: publishes with acks, and a pull consumer drains the work queue.
#[tokio::test]
async fn jetstream_publish_and_pop() {
    let server = env().jetstream().expect("nats-server (Debian `nats-server`; scripts/setup.sh installs it)");
    publish_and_pop(&server, "nats-jetstream").await;
    // Acked, so gone from the work queue (not only delivered, to come back after the ack wait).
    let client = async_nats::connect(format!("nats://{}", server.target.addr)).await.unwrap();
    let mut stream = async_nats::jetstream::new(client).get_stream(POP_QUEUE).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut left = u64::MAX;
    while left > 0 && Instant::now() < deadline {
        left = stream.info().await.unwrap().state.messages;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(left, 0, "messages left in the stream after pop");
}

/// beanstalkd with its binlog: puts, then reserves and deletes until none is ready.
#[tokio::test]
async fn beanstalkd_publish_and_pop() {
    let server = env().beanstalkd().expect("beanstalkd (Debian `beanstalkd`; scripts/setup.sh installs it)");
    publish_and_pop(&server, "beanstalkd").await;
    // Deleted, not only reserved: the jobs of closed connections would be ready again.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut conn = Beanstalk::connect(server.target.addr).await.unwrap();
    conn.watch_only(POP_QUEUE).await.unwrap();
    assert_eq!(conn.delete_and_reserve(None).await.unwrap(), None, "a job left in the tube after pop");
}
