//! The bench tool end to end at a tiny scale: every scenario against an in-process restmq on
//! the memory store. Counts are checked, never timings.

use restmq_bench::http_load::{pop, publish};
use restmq_bench::stream::{e2e, fanout, idle, E2eOpts, FanoutOpts};
use restmq_bench::suite::Plan;
use restmq_bench::target::{Flavor, Target};
use restmq_server::config::{ServeConfig, StoreKind};
use tokio_util::sync::CancellationToken;

/// publish, pop, e2e, fanout and idle all run and count what they should.
#[tokio::test]
async fn every_scenario_runs() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServeConfig::defaults();
    config.store = StoreKind::Memory;
    config.data_dir = dir.path().join("data");
    config.web_dir = dir.path().join("web");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(restmq_server::run(config, listener, shutdown.clone()));
    let target =
        Target { name: "restmq-memory".into(), flavor: Flavor::Restmq, addr, pid: Some(std::process::id()) };
    let plan = Plan::quick();

    let s = publish(&target, "pub", &plan.publish).await.unwrap();
    assert!(s.count > 0 && s.rate > 0.0 && s.p50() > 0.0 && s.p99() >= s.p50(), "{s:?}");

    let s = pop(&target, "pop", 2, 64, 40).await.unwrap();
    assert_eq!(s.count, 40);
    assert!(s.p50() > 0.0);

    let opts = E2eOpts { rate: 200, duration: std::time::Duration::from_millis(250), size: 64, producers: 2 };
    let s = e2e(&target, "e2e", &opts).await.unwrap();
    assert_eq!(s.count, 50);
    assert!(s.p99() > 0.0 && s.load_cpu >= 0.0);

    let s = fanout(&target, "fan", &FanoutOpts { consumers: 5, messages: 8, size: 64 }).await.unwrap();
    assert_eq!(s.count, 40);
    assert!(s.rate > 0.0 && s.p50() > 0.0);

    let s = idle(&target, "idle", 10).await.unwrap();
    assert_eq!(s.count, 10);

    shutdown.cancel();
    let _ = server.await;
}
