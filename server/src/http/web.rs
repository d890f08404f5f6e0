//! The web app: `index.html` at `/` and the rest of Trunk's `dist/` as static files; any
//! other path is a JSON 404. Files come from `--web-dir` when it holds the app; a binary built
//! with the `embed-web` feature carries `dist/` and serves that otherwise, so `restmq serve`
//! alone shows the console.

use std::path::Path;

use axum::handler::HandlerWithoutStateExt;
use axum::http::{header, Method, Uri};
use axum::response::{Html, IntoResponse, Response};
use tower_http::services::ServeDir;

use crate::app_state::AppState;
use crate::error::ApiError;

/// Shown at `/` when the web app has not been built.
const NOT_BUILT: &str = "<!doctype html><meta charset=utf-8><title>restmq</title>\
<h1>restmq</h1><p>The queue server is running. The web app is not built: run \
<code>cargo xtask demo</code>, or <code>trunk build --release</code> and pass \
<code>--web-dir dist</code>.</p>";

/// The app built into the binary (`embed-web`): Trunk's `dist/` at build time.
#[cfg(feature = "embed-web")]
static EMBEDDED: include_dir::Dir<'static> = include_dir::include_dir!("$CARGO_MANIFEST_DIR/../dist");

/// The embedded file at `path` (relative, no leading `/`), if the binary carries the app.
fn embedded(path: &str) -> Option<&'static [u8]> {
    #[cfg(feature = "embed-web")]
    {
        EMBEDDED.get_file(path).map(include_dir::File::contents)
    }
    #[cfg(not(feature = "embed-web"))]
    {
        let _ = path;
        None
    }
}

/// `GET /`: the app's `index.html`, from `--web-dir`, else the embedded one.
pub async fn index(state: &AppState) -> Response {
    match tokio::fs::read_to_string(state.settings.web_dir.join("index.html")).await {
        Ok(page) => Html(page).into_response(),
        Err(_) => match embedded("index.html") {
            Some(page) => Html(page).into_response(),
            None => Html(NOT_BUILT).into_response(),
        },
    }
}

/// The router's fallback: files of `web_dir`, else the embedded app's, else a JSON 404.
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
        .fallback(embedded_file.into_service())
}

/// A file of the embedded app (`GET`/`HEAD` only), else a JSON 404. Its `index.html` is the
/// page at `/` only, so a server with the app embedded answers every other path as one without.
async fn embedded_file(method: Method, uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    let readable = (method == Method::GET || method == Method::HEAD) && path != "index.html";
    let found = readable.then(|| embedded(path)).flatten();
    match found {
        Some(body) => ([(header::CONTENT_TYPE, content_type(path))], body).into_response(),
        None => not_found(method, uri).await.into_response(),
    }
}

/// The media type of an app file, from its extension.
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map_or("", |(_, ext)| ext) {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "wasm" => "application/wasm",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        _ => "application/octet-stream",
    }
}

/// Any route that does not exist.
pub async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {method} {}", uri.path()))
}

/// A route that exists, called with a method it does not take.
pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!("{method} {}", uri.path()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The app's files get the media types browsers need (wasm streaming compiles only `application/wasm`).
    #[test]
    fn content_types() {
        assert_eq!(content_type("web-1a2b_bg.wasm"), "application/wasm");
        assert_eq!(content_type("sandbox.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("LICENSE"), "application/octet-stream");
    }
}
