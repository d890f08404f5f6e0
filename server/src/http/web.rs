//! The web app: `index.html` at `/` and the rest of Trunk's `dist/` as static files; any
//! other path is a JSON 404.

use std::path::Path;

use axum::handler::HandlerWithoutStateExt;
use axum::http::{Method, Uri};
use axum::response::{Html, IntoResponse, Response};
use tower_http::services::ServeDir;

use crate::error::ApiError;
use crate::state::AppState;

/// Shown at `/` when the web app has not been built.
const NOT_BUILT: &str = "<!doctype html><meta charset=utf-8><title>restmq</title>\
<h1>restmq</h1><p>The queue server is running. The web app is not built: run \
<code>cargo xtask demo</code>, or <code>trunk build --release</code> and pass \
<code>--web-dir dist</code>.</p>";

/// `GET /`: the built app's `index.html`.
pub async fn index(state: &AppState) -> Response {
    match tokio::fs::read_to_string(state.settings.web_dir.join("index.html")).await {
        Ok(page) => Html(page).into_response(),
        Err(_) => Html(NOT_BUILT).into_response(),
    }
}

/// The router's fallback: files of `web_dir`, else a JSON 404.
pub fn static_files(
    web_dir: &Path,
) -> ServeDir<
    impl tower::Service<
            axum::extract::Request,
            Response = Response,
            Error = std::convert::Infallible,
            Future = impl Send,
        > + Clone,
> {
    ServeDir::new(web_dir)
        .append_index_html_on_directories(false)
        .call_fallback_on_method_not_allowed(true)
        .fallback(not_found.into_service())
}

/// Any route that does not exist.
pub async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {method} {}", uri.path()))
}

/// A route that exists, called with a method it does not take.
pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!("{method} {}", uri.path()))
}
