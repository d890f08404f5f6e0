//! Response helpers for RestMQ's body formats: `text/plain` lines, JSON (with RestMQ's
//! `\r\n` where it had one) and JSONP.

use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::ApiError;

const JSON: &str = "application/json";

/// A `text/plain` body.
pub fn text(body: String) -> Response {
    ([(CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

/// A JSON body, or `cb(<json>);\r\n` when a JSONP callback was given (RestMQ's form).
pub fn json<T: Serialize>(value: &T, callback: Option<&str>) -> Result<Response, ApiError> {
    encode(value, callback, false)
}

/// Like [`json`], with RestMQ's trailing `\r\n` on the plain JSON form.
pub fn json_line<T: Serialize>(value: &T, callback: Option<&str>) -> Result<Response, ApiError> {
    encode(value, callback, true)
}

fn encode<T: Serialize>(value: &T, callback: Option<&str>, line: bool) -> Result<Response, ApiError> {
    let mut body = serde_json::to_vec(value).map_err(|e| ApiError::InvalidArgument(e.to_string()))?;
    Ok(match callback {
        Some(cb) => {
            let mut wrapped = Vec::with_capacity(body.len() + cb.len() + 5);
            wrapped.extend_from_slice(cb.as_bytes());
            wrapped.push(b'(');
            wrapped.append(&mut body);
            wrapped.extend_from_slice(b");\r\n");
            ([(CONTENT_TYPE, "application/javascript; charset=utf-8")], wrapped).into_response()
        }
        None => {
            if line {
                body.extend_from_slice(b"\r\n");
            }
            ([(CONTENT_TYPE, JSON)], body).into_response()
        }
    })
}
