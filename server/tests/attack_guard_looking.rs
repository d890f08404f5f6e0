//! Attacks on what an `observe`-only token may do: it looks (soft gets, `HEAD`, observing
//! streams, browse) and never takes, whatever flags it adds that the route does not obey.

mod common;

use std::time::Duration;

use common::guard::{add, server, status, waiting, ws_status};
use futures_util::StreamExt;

/// `GET /q/jobs?observe=1`: a REST get obeys `soft`, not `observe`, so this is a hard get and
/// an observe-only token must not be able to take the message (it could, until the guard
/// counted only the flag each route obeys).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_flag_on_rest_get_does_not_let_observer_take() {
    let (s, _dir) = server().await;
    add(&s, "jobs", "secret-work").await;
    let res = s.http.get(s.url("/q/jobs?observe=1")).bearer_auth("t-look").send().await.unwrap();
    let code = res.status().as_u16();
    let body = res.text().await.unwrap();
    assert!(waiting(&s, "jobs").await, "an observe-only token took the message: {code} {body}");
    assert_eq!(code, 403, "GET /q/jobs?observe=1 with an observe-only token: {body}");
}

/// Same hole with the token in the query string.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_flag_on_rest_get_with_query_token() {
    let (s, _dir) = server().await;
    add(&s, "jobs", "secret-work").await;
    let (code, body) = s.get("/q/jobs?observe=1&token=t-look").await;
    assert!(waiting(&s, "jobs").await, "an observe-only token took the message: {code} {body}");
    assert_eq!(code, 403, "{body}");
}

/// `GET /c/jobs?soft=1` and `/sse/jobs?soft=1`: streams obey `observe=1`, not `soft`, so
/// `soft=1` opens a consuming stream and an observe-only token must be refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_flag_on_comet_and_sse_streams_does_not_let_observer_consume() {
    let (s, _dir) = server().await;
    add(&s, "jobs", "secret-work").await;
    for (transport, path) in [("COMET", "/c/jobs?soft=1"), ("SSE", "/sse/jobs?soft=1")] {
        let code = status(s.http.get(s.url(path)).bearer_auth("t-look")).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let still = waiting(&s, "jobs").await;
        assert_eq!(
            code, 403,
            "{transport} ?soft=1 with an observe-only token (message still waiting: {still})"
        );
        assert!(still, "the observe-only {transport} stream took the message");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_flag_on_websocket_does_not_let_observer_consume() {
    let (s, _dir) = server().await;
    add(&s, "jobs", "secret-work").await;
    match tokio_tungstenite::connect_async(s.ws_url("/ws/jobs?soft=1&token=t-look")).await {
        Err(err) => assert_eq!(ws_status(err), 403),
        Ok((mut ws, _)) => {
            let frame = tokio::time::timeout(Duration::from_secs(2), ws.next()).await;
            panic!("observe-only token opened a consuming WebSocket with ?soft=1; first frame: {frame:?}");
        }
    }
    assert!(waiting(&s, "jobs").await);
}

/// What an observe-only token may do (must keep passing) and the takes it must not do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_token_looks_but_never_takes() {
    let (s, _dir) = server().await;
    add(&s, "jobs", "v").await;
    let look = |path: &str| s.http.get(s.url(path)).bearer_auth("t-look");
    assert_eq!(status(look("/q/jobs?soft=1")).await, 200, "soft get");
    assert_eq!(status(s.http.head(s.url("/q/jobs")).bearer_auth("t-look")).await, 200, "HEAD");
    assert_eq!(status(look("/q/jobs")).await, 403, "hard get");
    assert_eq!(status(look("/q/jobs?soft=1&reserve=30")).await, 403, "reserve");
    assert_eq!(status(look("/q/jobs?soft=1&ack=1")).await, 403, "ack flag");
    assert_eq!(status(look("/q/jobs?soft=1&soft=0")).await, 403, "last soft wins");
    // A form body would be merged on top of the query: never counted as looking.
    let body = s
        .http
        .get(s.url("/q/jobs?soft=1"))
        .bearer_auth("t-look")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("soft=0");
    assert_eq!(status(body).await, 403, "GET with a form body");
    assert_eq!(status(look("/q/jobs.x?soft=1")).await, 403, "another queue");
    assert_eq!(status(look("/browse/jobs")).await, 200, "browse");
    assert_eq!(status(look("/c/jobs?observe=1")).await, 200, "observing COMET");
    assert_eq!(status(look("/c/jobs")).await, 403, "consuming COMET");
    assert_eq!(status(s.http.head(s.url("/c/jobs")).bearer_auth("t-look")).await, 403, "HEAD on a stream");
    assert_eq!(status(look("/c/jobs?observe=1&ack=1")).await, 403, "observe+ack");
    assert_eq!(status(look("/?queue=jobs")).await, 403, "root hard get");
    assert_eq!(status(s.http.delete(s.url("/q/jobs")).bearer_auth("t-look")).await, 403, "purge");
    assert!(waiting(&s, "jobs").await, "nothing was taken");
}

/// A WebSocket that only observes passes with an observe-only token (correct client), also
/// with `soft=1` next to `observe=1`; it gets the adds without taking them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observing_websocket_is_allowed_and_takes_nothing() {
    let (s, _dir) = server().await;
    let (mut ws, _) = tokio_tungstenite::connect_async(s.ws_url("/ws/jobs?observe=1&soft=1&token=t-look"))
        .await
        .expect("observer accepted");
    add(&s, "jobs", "seen").await;
    let frame = common::ws::next_json(&mut ws).await;
    assert_eq!(frame["value"], "seen", "{frame}");
    assert!(waiting(&s, "jobs").await, "observer took nothing");
}
