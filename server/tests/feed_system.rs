//! The `system` feed on this host: real samples at the configured interval, the map option,
//! counters, and a clean stop at shutdown.

mod common;
mod feed_util;

use std::time::Duration;

use common::TestServer;
use feed_util::{take, take_json, wait_stats};
use restmq_server::config::StoreKind;
use restmq_shared::SystemSample;

/// Samples arrive every interval with this host's figures: per-core CPU, memory, top processes.
#[tokio::test]
async fn samples_describe_this_host() {
    let spec = "system:interval=200ms,top=3".parse().unwrap();
    let s = TestServer::start_with(StoreKind::Memory, |c| c.feeds = vec![spec]).await;
    let got = take(&s, "system", 3, 10).await;
    let samples: Vec<SystemSample> = got.iter().map(|m| serde_json::from_str(m).unwrap()).collect();
    let cores = std::thread::available_parallelism().unwrap().get();
    for sample in &samples {
        assert!(!sample.host.is_empty());
        assert!(
            sample.cpu.cores.len() >= cores,
            "{} cores listed, {cores} available",
            sample.cpu.cores.len()
        );
        assert!(sample.cpu.cores.iter().all(|c| (0.0..=101.0).contains(c)), "{:?}", sample.cpu.cores);
        assert!(sample.memory.total > 0 && sample.memory.used <= sample.memory.total);
        assert!(!sample.top.is_empty() && sample.top.len() <= 3, "{:?}", sample.top);
        assert!(sample.net.rx >= 0.0 && sample.load.one >= 0.0);
    }
    assert!(samples.windows(2).all(|w| w[1].ts > w[0].ts), "timestamps increase");
    let gap = samples[2].ts - samples[1].ts;
    assert!((100..2000).contains(&gap), "samples {gap} ms apart at a 200 ms interval");
    wait_stats(&s, "system:system", 5, |f| f["published"].as_u64() >= Some(3)).await;
    tokio::time::timeout(Duration::from_secs(10), s.stop()).await.expect("the feed stops with the server");
}

/// `map=` trims each sample to the chosen fields, into the chosen queue and name.
#[tokio::test]
async fn map_keeps_chosen_fields() {
    let spec = "system:queue=cpu,name=cpu-only,interval=100ms,map=cpu.total,host".parse().unwrap();
    let s = TestServer::start_with(StoreKind::Memory, |c| c.feeds = vec![spec]).await;
    let got = take_json(&s, "cpu", 2, 10).await;
    for sample in got {
        let object = sample.as_object().unwrap();
        assert_eq!(object.keys().collect::<Vec<_>>(), ["cpu", "host"], "{sample}");
        assert_eq!(object["cpu"].as_object().unwrap().keys().collect::<Vec<_>>(), ["total"]);
    }
    let stats = wait_stats(&s, "cpu-only", 5, |f| f["published"].as_u64() >= Some(2)).await;
    assert_eq!((stats["kind"].as_str(), stats["queue"].as_str()), (Some("system"), Some("cpu")));
}
