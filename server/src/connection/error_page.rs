//! JSON bodies for the answers hyper writes by itself, before any request reaches the router:
//! `400` for a request it cannot parse, `414` for a URI too long, `431` for too many or too
//! large headers. hyper has no hook for these, so the connection's socket swaps each for the
//! server's `{"error":{"code","message"}}` answer as it is written.

use axum::http::StatusCode;
use bytes::Bytes;
use restmq_shared::{ErrorCode, ErrorResponse};

/// If `written` starts with one of hyper's own error answers (a head with no body): how many
/// bytes of it that answer takes, and the answer to send instead.
pub fn replace(written: &[u8]) -> Option<(usize, Bytes)> {
    let end = written.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = &written[..end];
    let (code, message) = match head.get(..13)? {
        b"HTTP/1.1 400 " => (ErrorCode::BadRequest, "the request is not valid HTTP/1.1"),
        b"HTTP/1.1 414 " => (ErrorCode::UriTooLong, "the request line is too long"),
        b"HTTP/1.1 431 " => (ErrorCode::HeadersTooLarge, "the request has too many or too large headers"),
        _ => return None,
    };
    // hyper's answers have no body; every error of the router's has one.
    if !head.windows(21).any(|w| w == b"\r\ncontent-length: 0\r\n") {
        return None;
    }
    let status = StatusCode::from_u16(code.http_status()).ok()?;
    let body = serde_json::to_string(&ErrorResponse::new(code, message)).ok()?;
    let page = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    Some((end, Bytes::from(page)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// hyper's bodiless 414 becomes a JSON 414; the router's own answers pass untouched.
    #[test]
    fn only_hyper_answers_are_replaced() {
        let hyper = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let (taken, page) = replace(hyper).expect("replaced");
        assert_eq!(taken, hyper.len());
        let page = String::from_utf8(page.to_vec()).unwrap();
        assert!(page.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{page}");
        let body = page.split("\r\n\r\n").nth(1).unwrap();
        let parsed: ErrorResponse = serde_json::from_str(body).unwrap();
        assert_eq!(parsed.error.code, ErrorCode::UriTooLong);
        assert!(page.contains(&format!("content-length: {}\r\n", body.len())));

        let router =
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 60\r\n\r\n{}";
        assert!(replace(router).is_none());
        assert!(replace(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(
            replace(b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-le").is_none(),
            "partial head"
        );
    }
}
