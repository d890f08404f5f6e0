//! Every view at desktop (1280 px) and phone (390 px) width: nothing scrolls sideways on a
//! phone, each view has its own title, buttons have names, and (with `RESTMQ_SCREENSHOT=1`, or
//! when missing) the screenshots in `docs/screenshots/` are rewritten.

mod harness;

use std::time::Duration;

use harness::browser::{Browser, WAIT};
use harness::{repo_root, run, Server};
use serde_json::json;

/// The views shown, with the file name of their screenshots.
const VIEWS: [(&str, &str); 6] = [
    ("dashboard", "/#/dashboard"),
    ("stream", "/#/stream/orders"),
    ("queue", "/#/queue/orders"),
    ("charts", "/#/charts/system"),
    ("worker", "/#/worker/jobs"),
    ("totals", "/#/reduce/jobs"),
];

/// One system-feed-like sample.
fn sample(n: u64) -> String {
    let cores: Vec<f64> = (0..4).map(|c| ((n * 7 + c * 13) % 60) as f64 + 5.0).collect();
    json!({
        "host": "demo", "cpu": {"total": 20.0 + (n % 15) as f64, "cores": cores},
        "memory": {"total": 8u64 << 30, "used": (3u64 << 30) + n * (16 << 20)},
        "net": {"rx": 120_000 + n * 900, "tx": 40_000 + n * 300},
        "load": {"one": 0.4 + (n % 5) as f64 / 10.0},
        "top": [{"pid": 10, "name": "restmq", "cpu": 12.0, "memory": 48u64 << 20}, {"pid": 11, "name": "postgres", "cpu": 4.0 + (n % 3) as f64, "memory": 300u64 << 20}]
    })
    .to_string()
}

/// At 390 px no view is wider than the screen; every view sets its title; every button has a
/// name; the screenshots are taken at both widths.
#[test]
fn views_fit_a_phone_and_are_named() {
    run(async {
        let server = Server::start().await;
        for n in 1..=12u64 {
            let order = json!({"order": 1000 + n, "customer": format!("c-{n}"), "total": 9.5 * n as f64, "items": ["book", "pen"]});
            server.add("orders", &order.to_string()).await;
        }
        server.add("jobs", "the quick brown fox").await;
        let browser = Browser::start(&server).await;
        let write = std::env::var_os("RESTMQ_SCREENSHOT").is_some();
        let dir = repo_root().join("docs/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        for (width, height) in [(1280u32, 900u32), (390, 844)] {
            browser.client().set_window_size(width, height).await.unwrap();
            for (name, path) in VIEWS {
                browser.open(path).await;
                match name {
                    "stream" => {
                        browser.wait_for("[data-link=live]", "the live view").await;
                        for n in 0..6u64 {
                            let event =
                                json!({"order": 2000 + n, "status": "paid", "total": 12.5 + n as f64});
                            server.add("orders", &event.to_string()).await;
                        }
                        browser.wait_number("#received", 6, WAIT).await;
                    }
                    "queue" => browser.wait_for("#waiting-messages", "the waiting messages").await,
                    "charts" => {
                        browser.wait_for("[data-link=live]", "the charts").await;
                        for n in 0..20 {
                            server.add("system", &sample(n)).await;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        browser.wait_for("figure.chart[data-group=memory]", "the memory chart").await;
                    }
                    _ => tokio::time::sleep(Duration::from_millis(800)).await,
                }
                let title = browser.js("return document.title", vec![]).await;
                assert!(title.as_str().is_some_and(|t| t.starts_with("restmq · ")), "{name}: {title}");
                let overflow = browser
                    .js("return document.documentElement.scrollWidth - window.innerWidth", vec![])
                    .await;
                assert!(
                    overflow.as_i64().unwrap_or(1) <= 0,
                    "{name} at {width} px scrolls sideways by {overflow} px"
                );
                let unnamed = browser
                    .js("return [...document.querySelectorAll('button')].filter(b => !(b.getAttribute('aria-label') || b.textContent).trim()).length", vec![])
                    .await;
                assert_eq!(unnamed, 0, "{name}: a button without a name");
                let file = dir.join(format!("{name}-{width}.png"));
                if write || !file.exists() {
                    let png = browser.screenshot().await;
                    assert!(png.starts_with(b"\x89PNG"), "a real screenshot");
                    std::fs::write(&file, png).unwrap();
                }
            }
        }
        assert_eq!(browser.console_errors().await, Vec::<String>::new());
        browser.close().await;
    });
}
