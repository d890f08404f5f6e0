//! Shared by the attacks on the access rules (`attack_guard*.rs`): the tokens, a server with
//! them, and the probes the attacks read outcomes with.

use std::time::Duration;

use tokio_tungstenite::tungstenite::Error as WsError;

/// `t-root` anything; `t-look` observe on `jobs`; `t-cons` consume on `jobs.*`;
/// `t-prod` produce on `jobs.*`; `t-jadm` admin on `jobs.*`.
pub const TOKENS: &str = r#"{"tokens": [
    {"name": "root", "token": "t-root", "queues": ["*"], "rights": ["produce", "consume", "admin"]},
    {"name": "window", "token": "t-look", "queues": ["jobs"], "rights": ["observe"]},
    {"name": "consumer", "token": "t-cons", "queues": ["jobs.*"], "rights": ["consume"]},
    {"name": "producer", "token": "t-prod", "queues": ["jobs.*"], "rights": ["produce"]},
    {"name": "jobs-admin", "token": "t-jadm", "queues": ["jobs.*"], "rights": ["admin"]}
]}"#;

pub async fn server() -> (super::TestServer, tempfile::TempDir) {
    super::TestServer::start_with_tokens(TOKENS).await
}

/// Adds with the root token.
pub async fn add(s: &super::TestServer, queue: &str, value: &str) {
    let res = s.http.post(s.url(&format!("/q/{queue}"))).bearer_auth("t-root").form(&[("value", value)]);
    assert_eq!(res.send().await.unwrap().status(), 200, "add to {queue}");
}

/// Whether a message waits in `queue` (`HEAD` with the root token).
pub async fn waiting(s: &super::TestServer, queue: &str) -> bool {
    let res = s.http.head(s.url(&format!("/q/{queue}"))).bearer_auth("t-root").send().await.unwrap();
    res.status().as_u16() == 200
}

/// The status of a request, without reading a (maybe endless) body.
pub async fn status(req: reqwest::RequestBuilder) -> u16 {
    let res =
        tokio::time::timeout(Duration::from_secs(5), req.send()).await.expect("answer in time").unwrap();
    res.status().as_u16()
}

pub fn ws_status(err: WsError) -> u16 {
    match err {
        WsError::Http(res) => res.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other}"),
    }
}
