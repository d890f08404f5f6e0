//! The ceiling for HTTP benchmarks: a bare axum route that answers POST with a fixed line,
//! on the same runtime settings as `restmq serve`. `cargo run --release --example hello_axum -- 127.0.0.1:8899`

use axum::routing::post;
use axum::Router;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8899".to_owned());
    let app = Router::new().route("/q/{queue}", post(|| async { "q:1\r\n" }));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    axum::serve(listener, app).await
}
