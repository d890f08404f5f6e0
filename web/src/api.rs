//! HTTP calls to the restmq server. All IO of the client goes through here, typed with the
//! wire types of `restmq-shared`.

use gloo_net::http::Request;
use restmq_shared::StatsReply;

/// `GET /stats/`: every queue's figures.
pub async fn fetch_stats() -> Result<StatsReply, String> {
    let response = Request::get("/stats/").send().await.map_err(|e| e.to_string())?;
    if !response.ok() {
        return Err(format!("GET /stats/ answered {} {}", response.status(), response.status_text()));
    }
    response.json::<StatsReply>().await.map_err(|e| format!("bad /stats/ reply: {e}"))
}
