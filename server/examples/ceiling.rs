//! Ceilings for the HTTP benchmarks, on the same runtime as `restmq serve`:
//! `POST /hello/{queue}` answers a fixed line (axum alone), and `POST /lpush/{queue}` does
//! one `LPUSH` on Redis per request (axum plus the cheapest possible Redis add).
//!
//! `cargo run --release --example ceiling -- 127.0.0.1:8899 redis://127.0.0.1:6379`

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8899".to_owned());
    let redis_url = args.next().unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned());
    let redis = ConnectionManager::new(redis::Client::open(redis_url)?).await?;
    let app = Router::new()
        .route("/hello/{queue}", post(|| async { "q:1\r\n" }))
        .route("/lpush/{queue}", post(lpush))
        .with_state(redis);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

async fn lpush(
    State(mut redis): State<ConnectionManager>,
    Path(queue): Path<String>,
) -> Result<String, StatusCode> {
    let len: u64 =
        redis.lpush(format!("{queue}:queue"), "value").await.map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    Ok(format!("{queue}:{len}\r\n"))
}
