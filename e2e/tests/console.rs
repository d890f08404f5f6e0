//! The queue console in headless Chromium against a real server: looking never takes, the
//! queue page, sign-in with a token, the publish form, pause, charts, and (with `embed-web`)
//! the app served from inside the server.

mod harness;

use std::time::Duration;

use harness::browser::{Browser, WAIT};
use harness::{eventually, run, Server};
use serde_json::json;

/// The waiting length of `queue` on the server (0 when it does not exist).
async fn len(server: &Server, queue: &str) -> u64 {
    server.queue_stats(queue).await.map_or(0, |q| q["len"].as_u64().unwrap_or(0))
}

/// The live view, the charts and the queue page show a queue's messages and leave its length
/// unchanged; only the labelled consume mode takes them.
#[test]
fn looking_never_takes() {
    run(async {
        let server = Server::start().await;
        for n in 0..5 {
            server.add("e2e-look", &format!(r#"{{"cpu":{n},"memory":{}}}"#, n * 4096)).await;
        }
        let browser = Browser::start(&server).await;
        browser.open("/#/stream/e2e-look").await;
        browser.wait_for("[data-link=live]", "the live view to connect").await;
        assert_eq!(browser.text("#mode").await.map(|t| t.contains("nothing leaves the queue")), Some(true));
        server.add("e2e-look", r#"{"cpu":50,"memory":8192}"#).await;
        browser.wait_number("#received", 1, WAIT).await;
        assert_eq!(len(&server, "e2e-look").await, 6, "the live view took nothing");

        browser.open("/#/charts/e2e-look").await;
        browser.wait_for("[data-link=live]", "the charts to connect").await;
        server.add("e2e-look", r#"{"cpu":60,"memory":1048576}"#).await;
        browser.wait_for("figure.chart[data-group=cpu] text.tick", "a chart with axis labels").await;
        let legend = browser
            .wait_text("figure.chart[data-group=memory] .legend", "memory in bytes", |t| t.contains("MiB"))
            .await;
        assert!(legend.contains("1.0 MiB"), "{legend}");
        let cpu_axis = browser.js("return [...document.querySelectorAll('figure.chart[data-group=cpu] text.tick')].map(t => t.textContent)", vec![]).await;
        let cpu_axis: Vec<&str> = cpu_axis.as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
        assert!(cpu_axis.contains(&"0 %") && cpu_axis.contains(&"100 %"), "percentages from 0: {cpu_axis:?}");
        assert!(
            cpu_axis.iter().any(|t| t.len() >= 5 && t.as_bytes()[2] == b':'),
            "a time label: {cpu_axis:?}"
        );
        assert_eq!(len(&server, "e2e-look").await, 7, "the charts took nothing");

        browser.open("/#/queue/e2e-look").await;
        browser.wait_number("#queue-len", 7, WAIT).await;
        eventually("the waiting messages", WAIT, || async {
            (browser.count("#waiting-messages > li").await == 7).then_some(())
        })
        .await;
        browser.wait_for("#history figure.chart", "the last hour's charts").await;
        assert_eq!(browser.js("return document.title", vec![]).await, "restmq · queue · e2e-look");
        assert_eq!(len(&server, "e2e-look").await, 7, "the queue page took nothing");

        // Consuming is explicit: the live view in consume mode takes the backlog.
        browser.open("/#/stream/e2e-look").await;
        browser.wait_for("[data-link=live]", "the live view to connect").await;
        assert_eq!(len(&server, "e2e-look").await, 7);
        browser.click("#mode-consume").await;
        browser.wait_for("#mode[data-mode=consume]", "consume mode").await;
        eventually("the consume mode to take the backlog", WAIT, || async {
            (len(&server, "e2e-look").await == 0).then_some(())
        })
        .await;
        assert_eq!(browser.console_errors().await, Vec::<String>::new());
        browser.close().await;
    });
}

/// The queue page pages through waiting messages, lists leased ones and consumers, redrives the
/// dead letters, and its actions reach the server.
#[test]
fn queue_page_browses_redrives_and_acts() {
    run(async {
        let server = Server::start().await;
        for n in 1..=25 {
            server.add("e2e-page", &format!(r#"{{"n":{n}}}"#)).await;
        }
        server.add("e2e-page.dead", "died once").await;
        server.add("e2e-page.dead", "died twice").await;
        let reserve = json!({"cmd": "reserve", "queue": "e2e-page"});
        let leased = server.http.post(server.url("/queue")).json(&reserve).send().await.unwrap();
        assert_eq!(leased.status(), 200);
        let browser = Browser::start(&server).await;
        browser.open("/#/dashboard").await;
        browser.click("tr[data-queue='e2e-page'] th.name a").await;
        browser.wait_text("#queue-title", "the queue page", |t| t == "Queue e2e-page").await;
        eventually("a first page of 20", WAIT, || async {
            (browser.count("#waiting-messages > li").await == 20).then_some(())
        })
        .await;
        assert_eq!(
            browser.text("#waiting-messages > li:first-child .key").await.as_deref(),
            Some("e2e-page:2")
        );
        assert_eq!(
            browser.text("#waiting-messages > li:first-child pre.value.json").await.as_deref(),
            Some("{\n  \"n\": 2\n}")
        );
        browser.click("#next-page").await;
        eventually("the second page", WAIT, || async {
            (browser.count("#waiting-messages > li").await == 4).then_some(())
        })
        .await;
        browser.wait_for("#leased-messages li[data-key='e2e-page:1']", "the leased message").await;
        assert!(browser.text("#leased-messages li").await.unwrap().contains("lease ends in"));
        assert_eq!(browser.count("#dead-messages > li").await, 2);
        assert!(browser.text("#consumers-empty").await.is_some());
        assert_eq!(len(&server, "e2e-page").await, 24, "browsing took nothing");

        browser.click("#redrive").await;
        browser.wait_text("#notice .notice", "the redrive outcome", |t| t.starts_with("Redrove")).await;
        eventually("the dead letters back in the queue", WAIT, || async {
            (len(&server, "e2e-page").await == 26).then_some(())
        })
        .await;
        browser.wait_for("#dead-empty", "an empty dead-letter list").await;

        // Actions, named with their queue; the policy changes only with Set.
        browser.click("#queue-actions button.peek").await;
        browser.wait_text("#notice .notice", "a peek", |t| t.starts_with("Peeked at")).await;
        let select =
            browser.client().find(fantoccini::Locator::Css("#queue-actions select.policy")).await.unwrap();
        select.select_by_value("roundrobin").await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            server.get_json("/p/e2e-page").await["value"],
            "broadcast",
            "choosing alone changes nothing"
        );
        assert_eq!(
            browser
                .js(
                    "return document.querySelector('#queue-actions .set-policy').getAttribute('aria-label')",
                    vec![]
                )
                .await,
            "Set e2e-page to roundrobin"
        );
        browser.click("#queue-actions .set-policy").await;
        eventually("the policy to change", WAIT, || async {
            (server.get_json("/p/e2e-page").await["value"] == "roundrobin").then_some(())
        })
        .await;
        browser.wait_text("#queue-policy", "the policy shown", |t| t == "policy roundrobin").await;
        browser.click("#queue-actions button.purge").await;
        assert_eq!(len(&server, "e2e-page").await, 26, "nothing purged before confirming");
        browser.click("#queue-actions button.confirm-purge").await;
        browser.wait_text("#notice .notice", "the purge", |t| t == "Purged e2e-page").await;
        browser.wait_number("#queue-len", 0, WAIT).await;
        browser.close().await;
    });
}

/// With auth on, the page asks for a token instead of calling the server unreachable; the token
/// typed in signs in, streams with it, survives a reload, and Sign out forgets it.
#[test]
fn token_signs_in_and_survives_reload() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens.json");
        let body = json!({"tokens": [{"name": "ops", "token": "e2e-secret", "queues": ["*"], "rights": ["produce", "consume", "admin"]}]});
        std::fs::write(&tokens, body.to_string()).unwrap();
        let server = Server::start_with(|c| c.auth.auth_tokens = Some(tokens.clone())).await;
        let added = server
            .http
            .post(server.url("/q/e2e-auth"))
            .bearer_auth("e2e-secret")
            .form(&[("value", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(added.status(), 200);
        let browser = Browser::start(&server).await;
        browser.open("/#/dashboard").await;
        browser.wait_for("#sign-in #token", "the sign-in form").await;
        let text = browser.text("main").await.unwrap();
        assert!(!text.contains("cannot reach"), "{text}");
        assert_eq!(
            browser.js("return document.querySelector('label:has(#token)').textContent.trim()", vec![]).await,
            "Token"
        );
        browser.fill("#token", "e2e-secret").await;
        browser.click("#sign-in-submit").await;
        browser.wait_for("tr[data-queue='e2e-auth']", "the dashboard once signed in").await;
        assert_eq!(browser.count("#sign-in").await, 0);

        browser.client().refresh().await.unwrap();
        browser.wait_for("tr[data-queue='e2e-auth']", "the dashboard after a reload").await;
        assert_eq!(browser.count("#sign-in").await, 0, "the token survives a reload");
        browser.open("/#/stream/e2e-auth").await;
        browser.wait_for("[data-link=live]", "the live view with the token").await;
        server
            .http
            .post(server.url("/q/e2e-auth"))
            .bearer_auth("e2e-secret")
            .form(&[("value", "signed")])
            .send()
            .await
            .unwrap();
        browser
            .wait_text("#rows > li:first-child .value", "a message over the signed stream", |t| t == "signed")
            .await;

        browser.click("#sign-out").await;
        browser.wait_for("#sign-in #token", "the sign-in form after signing out").await;
        browser
            .wait_text("[data-link]", "the stream to stop retrying", |t| t.starts_with("sign-in required"))
            .await;
        browser.close().await;
    });
}

/// The publish form keeps what was typed when the server refuses it or the JSON is broken;
/// Ctrl+Enter publishes, with a TTL.
#[test]
fn refused_publish_keeps_its_text() {
    run(async {
        let server = Server::start_with(|config| config.max_message_bytes = 100).await;
        let browser = Browser::start(&server).await;
        browser.open("/#/dashboard").await;
        browser.wait_for("#first-run", "the first-run help").await;
        browser.fill("#publish-queue", "e2e-pub").await;
        let big = "y".repeat(150);
        browser.fill("#publish-value", &big).await;
        browser.click("#publish").await;
        browser.wait_for("#notice .notice.error[data-code='too_large']", "the too_large error").await;
        let kept = browser.js("return document.querySelector('#publish-value').value", vec![]).await;
        assert_eq!(kept, big.as_str(), "the refused text is kept");

        browser.fill("#publish-value", r#"{"broken": }"#).await;
        browser.click("#publish").await;
        browser.wait_text("#publish-problem", "the JSON check", |t| t.contains("not valid")).await;
        assert_eq!(len(&server, "e2e-pub").await, 0, "nothing was sent");

        browser.fill("#publish-value", r#"{"fixed": 1}"#).await;
        browser.fill("#publish-ttl", "60").await;
        let ctrl_enter = "document.querySelector('#publish-value').dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', ctrlKey: true, bubbles: true}))";
        browser.js(ctrl_enter, vec![]).await;
        browser.wait_text("#notice .notice", "the publish", |t| t == "Published e2e-pub:1").await;
        let page = server.get_json("/browse/e2e-pub").await;
        assert_eq!(page["messages"][0]["value"], r#"{"fixed": 1}"#);
        assert!(page["messages"][0]["expires"].as_u64().is_some(), "sent with its TTL: {page}");
        assert_eq!(browser.js("return document.querySelector('#publish-value').value", vec![]).await, "");
        browser.close().await;
    });
}

/// While paused, the rows on screen stay exactly as they were however many messages arrive.
#[test]
fn pause_freezes_the_view() {
    run(async {
        let server = Server::start().await;
        let browser = Browser::start(&server).await;
        browser.open("/#/stream/e2e-pause").await;
        browser.wait_for("[data-link=live]", "the live view to connect").await;
        for n in 1..=3 {
            server.add("e2e-pause", &format!("before {n}")).await;
        }
        browser.wait_number("#received", 3, WAIT).await;
        let rows = "return [...document.querySelectorAll('#rows > li .value')].map(v => v.textContent)";
        let before = browser.js(rows, vec![]).await;
        browser.click("#pause").await;
        // In batches of 100, below the stream's buffer (a bigger batch would cut a stream as slow).
        for first in (1..=1500).step_by(100) {
            let lines: Vec<String> =
                (first..first + 100).map(|n| json!(format!("after {n}")).to_string()).collect();
            let batch =
                server.http.post(server.url("/q/e2e-pause")).header("content-type", "application/x-ndjson");
            assert_eq!(batch.body(lines.join("\n")).send().await.unwrap().status(), 200);
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        browser.wait_number("#received", 1503, WAIT).await;
        assert_eq!(browser.js(rows, vec![]).await, before, "the paused view did not change");
        browser.click("#pause").await;
        browser
            .wait_text("#rows > li:first-child .value", "the newest row on resume", |t| t == "after 1500")
            .await;
        browser.close().await;
    });
}

/// A server built with `embed-web` and no app in `--web-dir` serves the app it carries.
#[cfg(feature = "embed-web")]
#[test]
fn embedded_app_is_served_without_web_dir() {
    run(async {
        let empty = tempfile::tempdir().unwrap();
        let server = Server::start_with(|c| c.web_dir = empty.path().join("none")).await;
        let index = server.http.get(server.url("/")).send().await.unwrap().text().await.unwrap();
        let wasm = index
            .split('"')
            .find(|part| part.ends_with(".wasm"))
            .expect("index.html names its wasm")
            .to_owned();
        let res =
            server.http.get(server.url(&format!("/{}", wasm.trim_start_matches('/')))).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "application/wasm");
        let browser = Browser::start(&server).await;
        browser.open("/#/dashboard").await;
        browser.wait_text("h2", "the dashboard", |t| t == "Queues").await;
        browser.close().await;
    });
}
