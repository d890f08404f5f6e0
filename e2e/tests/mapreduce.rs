//! Browser map/reduce in headless Chromium against a real server: a job the user edits in the
//! page, shared with a second tab by its link, run over 2,000 messages while one tab closes
//! mid-run; and a job whose step loops forever, stopped while the page stays responsive.

mod harness;

use std::collections::BTreeMap;
use std::time::Duration;

use harness::browser::{Browser, WAIT};
use harness::{eventually, run, Server};
use serde_json::{json, Value};

/// Messages of the shared run.
const MESSAGES: u64 = 2000;

/// The edited map step: a few milliseconds of work per message, so the run lasts long enough
/// to close a tab in the middle of it.
const MAP: &str = "const m = JSON.parse(value); const t = Date.now(); while (Date.now() - t < 3) {} \
    emit('k' + (m.n % 7), m.n * 3);";
const REDUCE: &str = "return a + b;";

/// What the job computes, done here: the sum of 3n per n mod 7.
fn expected() -> BTreeMap<String, u64> {
    let mut sums = BTreeMap::new();
    for n in 1..=MESSAGES {
        *sums.entry(format!("k{}", n % 7)).or_insert(0) += n * 3;
    }
    sums
}

/// Publishes `values` to `queue` in one NDJSON batch.
async fn publish_batch(server: &Server, queue: &str, values: &[Value]) {
    let lines: Vec<String> = values.iter().map(Value::to_string).collect();
    let res = server
        .http
        .post(server.url(&format!("/q/{queue}")))
        .header("content-type", "application/x-ndjson")
        .body(lines.join("\n"))
        .send()
        .await
        .expect("POST a batch");
    assert_eq!(res.status(), 200, "POST a batch to {queue}");
}

/// The value of the form field `css`.
async fn field(browser: &Browser, css: &str) -> String {
    let value = browser.js("return document.querySelector(arguments[0]).value", vec![json!(css)]).await;
    value.as_str().unwrap_or_default().to_owned()
}

/// The reduce view's top keys and their values, as shown.
async fn reduced(browser: &Browser) -> BTreeMap<String, u64> {
    let rows = browser
        .js(
            "return [...document.querySelectorAll('#reduce-top tr[data-key]')]\
             .map(tr => [tr.dataset.key, tr.querySelector('td').textContent])",
            vec![],
        )
        .await;
    let rows = rows.as_array().cloned().unwrap_or_default();
    rows.iter()
        .filter_map(|row| Some((row[0].as_str()?.to_owned(), row[1].as_str()?.trim().parse().ok()?)))
        .collect()
}

/// Two tabs run a job edited in the page (not a preset) over 2,000 messages, the second one
/// joining by the first one's link; the second tab closes mid-run. The reduce view, which only
/// browses the result queue, shows exactly what the test computes, and shows it again after a
/// reload.
#[test]
fn two_tabs_share_an_edited_job_and_a_closed_tab_loses_nothing() {
    run(async {
        let server = Server::start().await;
        let browser = Browser::start(&server).await;
        let client = browser.client();
        let first = client.window().await.unwrap();
        browser.open("/#/worker/e2e-mr").await;
        browser.fill("#job-map", MAP).await;
        browser.fill("#job-reduce", REDUCE).await;
        browser.fill("#job-name", "edited").await;
        browser.click("#worker-start").await;
        browser.wait_for("[data-link=live]", "tab 1 to consume").await;
        let link = field(&browser, "#job-link").await;
        assert!(link.contains("#/worker/e2e-mr?job="), "{link}");

        let second = client.new_window(true).await.unwrap().handle;
        client.switch_to_window(second.clone()).await.unwrap();
        client.goto(&link).await.unwrap();
        browser.wait_for("#job-map", "the shared job to open").await;
        assert_eq!(field(&browser, "#job-map").await, MAP, "the link carries the edited code");
        browser.click("#worker-start").await;
        browser.wait_for("[data-link=live]", "tab 2 to consume").await;
        eventually("two roundrobin consumers on e2e-mr", WAIT, || async {
            let q = server.queue_stats("e2e-mr").await?;
            (q["consumers"] == 2 && q["policy_name"] == "roundrobin").then_some(())
        })
        .await;

        let values: Vec<Value> = (1..=MESSAGES).map(|n| json!({ "n": n })).collect();
        publish_batch(&server, "e2e-mr", &values).await;
        // Tab 2 closes once it has done some of the work, holding messages it has not acked.
        eventually("tab 2 to process 100 messages", Duration::from_secs(60), || async {
            (browser.number("#worker-processed").await >= 100).then_some(())
        })
        .await;
        let second_done = browser.number("#worker-processed").await;
        assert!(second_done < MESSAGES, "tab 2 did everything before it closed");
        client.close_window().await.unwrap();
        client.switch_to_window(first.clone()).await.unwrap();

        open_reduce_view(&browser).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while browser.number("#reduce-processed").await != MESSAGES {
            if std::time::Instant::now() > deadline {
                let view = browser.text("section.reduce").await;
                let input = server.queue_stats("e2e-mr").await;
                let results = server.queue_stats("e2e-mr.results").await;
                panic!(
                    "the reduce view never read {MESSAGES}: {view:?}\ninput {input:?}\nresults {results:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let expected = expected();
        eventually("the reduce view to show the total", WAIT, || async {
            (reduced(&browser).await == expected).then_some(())
        })
        .await;
        let workers = browser.count("#reduce-workers tr[data-worker]").await;
        assert_eq!(workers, 2, "both tabs posted partials");
        let rows = browser
            .js(
                "return [...document.querySelectorAll('#reduce-workers tr')].map(tr => tr.textContent)",
                vec![],
            )
            .await;
        let left_out = browser.text(".reduce .notice").await;
        eprintln!("tab 2 processed {second_done} before it closed; per worker: {rows}; {left_out:?}");
        assert_eq!(browser.number("#reduce-skipped").await, 0);
        let input = server.queue_stats("e2e-mr").await.unwrap();
        assert_eq!(input["len"], 0, "every message was taken: {input}");

        // Looking never takes: after a reload, the same total from the same result queue.
        let results = server.queue_stats("e2e-mr.results").await.unwrap();
        let partials = results["len"].as_u64().unwrap();
        assert!(partials >= MESSAGES / 20, "the partials stay in the result queue: {results}");
        assert_eq!(browser.number("#reduce-read").await, partials, "the view read every partial");
        assert_eq!(results["consumers"], 0, "the reduce view observes, it does not consume: {results}");
        client.refresh().await.unwrap();
        browser.wait_number("#reduce-processed", MESSAGES, Duration::from_secs(30)).await;
        assert_eq!(reduced(&browser).await, expected);
        assert_eq!(server.queue_stats("e2e-mr.results").await.unwrap()["len"], partials);
        assert_eq!(browser.console_errors().await, Vec::<String>::new());
        browser.close().await;
    });
}

/// Counts animation frames in `window.__frames`: they stop when the page's thread is blocked.
const COUNT_FRAMES: &str =
    "window.__frames = 0; const tick = () => { window.__frames++; requestAnimationFrame(tick); }; tick();";

/// A step that loops forever is stopped at its time budget and reported, a step that throws (or
/// reaches for the network, or builds code from a string) is reported, all are skipped, the page keeps rendering meanwhile, and the other messages count; the worker says it set roundrobin and restores the previous policy on request.
#[test]
fn endless_loop_is_stopped_and_reported_while_the_page_stays_responsive() {
    run(async {
        let server = Server::start().await;
        let browser = Browser::start(&server).await;
        browser.open("/#/worker/e2e-loop").await;
        let map = "if (value === 'loop') { while (true) {} } if (value === 'throw') throw new Error('bad input'); \
            if (value === 'net') fetch('/stats/'); if (value === 'eval') (() => {}).constructor('return 1')(); \
            emit(value, 1);";
        browser.fill("#job-map", map).await;
        browser.fill("#job-budget", "700").await;
        browser.click("#worker-start").await;
        browser.wait_for("[data-link=live]", "the worker to consume").await;
        browser.js(COUNT_FRAMES, vec![]).await;
        let before = browser.js("return window.__frames", vec![]).await.as_u64().unwrap();

        for value in ["a", "loop", "b", "throw", "a", "loop", "net", "eval", "c"] {
            server.add("e2e-loop", value).await;
        }
        browser.wait_number("#worker-processed", 9, Duration::from_secs(30)).await;
        assert_eq!(browser.number("#worker-skipped").await, 5);
        // The worker says it set the queue to roundrobin, and puts the old policy back on request.
        let notice = browser.text("#policy-changed").await.expect("the policy notice");
        assert!(
            notice.contains("set e2e-loop to roundrobin") && notice.contains("(it was broadcast)"),
            "{notice}"
        );
        assert_eq!(server.get_json("/p/e2e-loop").await["value"], "roundrobin");
        browser.click("#restore-policy").await;
        eventually("the policy restored", WAIT, || async {
            (server.get_json("/p/e2e-loop").await["value"] == "broadcast").then_some(())
        })
        .await;
        let frames = browser.js("return window.__frames", vec![]).await.as_u64().unwrap() - before;
        // Two steps of 700 ms each ran to their budget: a blocked page would draw no frame.
        assert!(frames >= 10, "only {frames} frames while two steps looped");
        let reports = browser.text("#job-reports").await.expect("the skipped steps are listed");
        assert_eq!(reports.matches("time budget of 700 ms").count(), 2, "{reports}");
        assert!(reports.contains("bad input"), "{reports}");
        // The sandbox has no network and no way to build code from a string.
        assert!(reports.contains("e2e-loop:7 threw TypeError: fetch is not a function"), "{reports}");
        assert!(reports.contains("e2e-loop:8 threw TypeError"), "{reports}");

        // The steps that worked are in the result, and the reduce view shows them.
        open_reduce_view(&browser).await;
        browser.wait_number("#reduce-processed", 9, WAIT).await;
        let shown = eventually("the reduced counts", WAIT, || async {
            let rows = reduced(&browser).await;
            (rows.len() == 3).then_some(rows)
        })
        .await;
        assert_eq!(shown, BTreeMap::from([("a".into(), 2), ("b".into(), 1), ("c".into(), 1)]));
        assert_eq!(browser.number("#reduce-skipped").await, 5);
        assert_eq!(browser.console_errors().await, Vec::<String>::new());
        browser.close().await;
    });
}

/// Opens the reduce view of the worker tab's job in a new tab.
async fn open_reduce_view(browser: &Browser) {
    let href = browser.js("return document.querySelector('#job-reduce-link').href", vec![]).await;
    let client = browser.client();
    let tab = client.new_window(true).await.unwrap().handle;
    client.switch_to_window(tab).await.unwrap();
    client.goto(href.as_str().unwrap()).await.unwrap();
}

/// Picks the preset named `name` in the job editor.
async fn pick_preset(browser: &Browser, name: &str) {
    let script = "const s = document.querySelector('#job-preset'); s.value = arguments[0]; \
        s.dispatchEvent(new Event('change', { bubbles: true }));";
    browser.js(script, vec![json!(name)]).await;
}

/// The presets of the README's worked examples compute what they say: stats of `cpu.total`
/// over system-feed-shaped samples, the word count, and grep, whose matching lines go to the
/// output queue.
#[test]
fn presets_compute_stats_word_counts_and_grep() {
    run(async {
        let server = Server::start().await;
        let browser = Browser::start(&server).await;
        browser.open("/#/worker/e2e-sys").await;
        pick_preset(&browser, "stats of a JSON field").await;
        browser.wait_text("#job-map", "the preset's code", |_| true).await;
        assert!(field(&browser, "#job-map").await.contains("cpu?.total"));
        browser.click("#worker-start").await;
        browser.wait_for("[data-link=live]", "the worker to consume").await;
        for total in [10.0, 20.0, 30.5] {
            server.add("e2e-sys", &json!({ "cpu": { "total": total, "cores": [total] } }).to_string()).await;
        }
        browser.wait_number("#worker-processed", 3, WAIT).await;
        // Leaving the worker view would stop it, and messages it has not acked would go back: the
        // reduce view opens in another tab.
        open_reduce_view(&browser).await;
        let stats =
            browser.wait_text("tr[data-key='cpu.total'] td", "the stats row", |t| t.contains("30.5")).await;
        let stats: Value = serde_json::from_str(&stats).expect("the stats as JSON");
        assert_eq!(stats["count"], 3);
        assert_eq!(stats["sum"], 60.5);
        assert_eq!((stats["min"].as_f64(), stats["max"].as_f64()), (Some(10.0), Some(30.5)));
        assert!((stats["mean"].as_f64().unwrap() - 60.5 / 3.0).abs() < 1e-9, "{stats}");

        let first = browser.client().windows().await.unwrap()[0].clone();
        browser.client().switch_to_window(first).await.unwrap();
        browser.open("/#/worker/e2e-text").await;
        browser.click("#worker-start").await; // the word count preset is the default
        browser.wait_for("[data-link=live]", "the word count to consume").await;
        server.add("e2e-text", "The light, the LIGHT.").await;
        server.add("e2e-text", "Naïve light-keeper").await;
        browser.wait_number("#worker-processed", 2, WAIT).await;
        open_reduce_view(&browser).await;
        browser.wait_number("#reduce-processed", 2, WAIT).await;
        let counts = eventually("the word counts", WAIT, || async {
            let rows = reduced(&browser).await;
            (rows.len() == 4).then_some(rows)
        })
        .await;
        let expected = [("light", 3), ("the", 2), ("naïve", 1), ("keeper", 1)];
        assert_eq!(counts, expected.iter().map(|(w, n)| ((*w).to_owned(), *n)).collect());

        // grep outputs the matching lines to the output queue, and counts them.
        let first = browser.client().windows().await.unwrap()[0].clone();
        browser.client().switch_to_window(first).await.unwrap();
        browser.open("/#/worker/e2e-grep").await;
        pick_preset(&browser, "grep").await;
        browser.wait_text("#job-map", "the grep preset", |_| true).await;
        browser.click("#worker-start").await;
        browser.wait_for("[data-link=live]", "grep to consume").await;
        server.add("e2e-grep", "a dark night\nthe Light came on\nno match").await;
        server.add("e2e-grep", "lighthouse").await;
        server.add("e2e-grep", "nothing here").await;
        browser.wait_number("#worker-processed", 3, WAIT).await;
        browser.wait_number("#worker-outputs", 2, WAIT).await;
        let out = server.get_json("/browse/e2e-grep.out").await;
        let lines: Vec<&str> =
            out["messages"].as_array().unwrap().iter().filter_map(|m| m["value"].as_str()).collect();
        assert_eq!(lines, ["the Light came on", "lighthouse"]);
        open_reduce_view(&browser).await;
        browser.wait_number("#reduce-outputs", 2, WAIT).await;
        browser.wait_number("tr[data-key='matching lines'] td", 2, WAIT).await;
        assert_eq!(browser.console_errors().await, Vec::<String>::new());
        browser.close().await;
    });
}
