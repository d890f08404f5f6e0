//! Request arguments as RestMQ reads them: query string, then form fields (urlencoded or
//! multipart) on top; the last repeat wins and empty values count as missing. Also the
//! queue-name path extractor and JSONP callback validation. Shared by the REST routes, the
//! streaming transports and the access checks.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Multipart, Path, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use restmq_shared::QueueName;

use crate::broker::MAX_IDEMPOTENCY_KEY_BYTES;
use crate::error::ApiError;

/// The longest `ttl` accepted: ten years, in seconds.
pub const MAX_TTL_SECS: u64 = 10 * 365 * 24 * 3600;

/// The lease of a reserved message when none is given, in seconds.
pub const DEFAULT_LEASE_SECS: u64 = 30;

/// The longest lease: twelve hours, in seconds.
pub const MAX_LEASE_SECS: u64 = 12 * 3600;

/// A lease of 1 to [`MAX_LEASE_SECS`] seconds.
pub fn lease_duration(secs: u64) -> Result<std::time::Duration, ApiError> {
    match secs {
        1..=MAX_LEASE_SECS => Ok(std::time::Duration::from_secs(secs)),
        _ => Err(ApiError::InvalidArgument(format!("a lease is 1 to {MAX_LEASE_SECS} seconds, not {secs}"))),
    }
}

/// A body that is not a form, kept for routes that read it (raw JSON, NDJSON, …).
#[derive(Debug, Clone)]
pub struct RawBody {
    pub content_type: Option<mime::Mime>,
    pub bytes: Bytes,
}

/// The merged arguments of a request.
#[derive(Debug, Default, Clone)]
pub struct Args {
    /// In arrival order; a request has a handful, so a list beats a map.
    fields: Vec<(String, String)>,
    pub raw: Option<RawBody>,
}

impl Args {
    /// An argument, if present and non-empty (the last repeat wins).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// A required argument.
    pub fn require(&self, name: &'static str) -> Result<&str, ApiError> {
        self.get(name).ok_or(ApiError::MissingArgument(name))
    }

    /// The message value: `value`, or RestMQ's older `msg`.
    pub fn value(&self) -> Result<&str, ApiError> {
        self.get("value").or_else(|| self.get("msg")).ok_or(ApiError::MissingArgument("value"))
    }

    /// A flag such as `soft=1`: present and not `0`/`false`.
    pub fn flag(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| !matches!(v, "0" | "false" | "no"))
    }

    /// The optional `ttl` argument: 1 to [`MAX_TTL_SECS`] seconds.
    pub fn ttl(&self) -> Result<Option<std::time::Duration>, ApiError> {
        self.get("ttl")
            .map(|t| match t.parse::<u64>() {
                Ok(secs @ 1..=MAX_TTL_SECS) => Ok(std::time::Duration::from_secs(secs)),
                _ => Err(ApiError::InvalidArgument(format!(
                    "ttl must be 1 to {MAX_TTL_SECS} seconds, not {t:?}"
                ))),
            })
            .transpose()
    }

    /// The lease named by argument `name` (`reserve=SECONDS`), if present.
    pub fn lease(&self, name: &str) -> Result<Option<std::time::Duration>, ApiError> {
        self.get(name)
            .map(|v| {
                let secs = v
                    .parse()
                    .map_err(|_| ApiError::InvalidArgument(format!("{name} must be seconds, not {v:?}")))?;
                lease_duration(secs)
            })
            .transpose()
    }

    /// An optional whole number of seconds, 1 to `max`.
    pub fn seconds(&self, name: &str, max: u64) -> Result<Option<std::time::Duration>, ApiError> {
        self.get(name)
            .map(|v| match v.parse::<u64>() {
                Ok(secs) if (1..=max).contains(&secs) => Ok(std::time::Duration::from_secs(secs)),
                _ => Err(ApiError::InvalidArgument(format!("{name} must be 1 to {max} seconds, not {v:?}"))),
            })
            .transpose()
    }

    /// The validated JSONP `callback`, if any.
    pub fn callback(&self) -> Result<Option<&str>, ApiError> {
        match self.get("callback") {
            Some(cb) if is_callback(cb) => Ok(Some(cb)),
            Some(_) => Err(ApiError::InvalidCallback),
            None => Ok(None),
        }
    }

    /// The arguments of a query string alone, read as the handlers read them.
    pub fn from_query(query: &str) -> Result<Self, ApiError> {
        let mut args = Self::default();
        args.merge_form(query.as_bytes())?;
        Ok(args)
    }

    /// Adds the pairs of a query string or urlencoded body (`+` is a space, `%XX` a byte). A
    /// name or value that is not UTF-8 once decoded is refused, not patched with U+FFFD.
    fn merge_form(&mut self, form: &[u8]) -> Result<(), ApiError> {
        for pair in form.split(|&b| b == b'&').filter(|pair| !pair.is_empty()) {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &[][..]),
            };
            let name = form_component(name)
                .map_err(|()| ApiError::InvalidArgument("an argument name is not valid UTF-8".to_owned()))?;
            let value = form_component(value).map_err(|()| not_utf8(&name))?;
            self.insert(name, value);
        }
        Ok(())
    }

    fn insert(&mut self, name: String, value: String) {
        if !value.is_empty() {
            self.fields.push((name, value));
        }
    }
}

/// One decoded name or value of a form: `+` is a space, `%XX` a byte; `Err` if not UTF-8.
fn form_component(raw: &[u8]) -> Result<String, ()> {
    let spaced: Vec<u8> = raw.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect();
    String::from_utf8(percent_encoding::percent_decode(&spaced).collect()).map_err(drop)
}

fn not_utf8(name: &str) -> ApiError {
    ApiError::InvalidArgument(format!("argument `{name}` is not valid UTF-8"))
}

/// `[A-Za-z_$][A-Za-z0-9_$.]*`, at most 128 bytes: a plain JavaScript identifier path.
pub fn is_callback(cb: &str) -> bool {
    let mut chars = cb.chars();
    cb.len() <= 128
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | '.'))
}

/// What the argument extractor needs of the router's state: how many body bytes to read.
pub trait BodyLimit {
    /// The most body bytes read for one request.
    fn body_limit(&self) -> usize;
}

impl<S: BodyLimit + Send + Sync> FromRequest<S> for Args {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let mut args = Args::default();
        if let Some(query) = req.uri().query() {
            args.merge_form(query.as_bytes())?;
        }
        let content_type = req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
        let limit = state.body_limit();
        match content_type.map(essence).unwrap_or_default() {
            form if form.eq_ignore_ascii_case("application/x-www-form-urlencoded") => {
                let bytes = read_body(req, limit).await?;
                args.merge_form(&bytes)?;
            }
            multipart if multipart.eq_ignore_ascii_case("multipart/form-data") => {
                let mut multipart = Multipart::from_request(req, state).await.map_err(|e| {
                    ApiError::InvalidArgument(format!("bad multipart body: {}", e.body_text()))
                })?;
                while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
                    let Some(name) = field.name().map(str::to_owned) else { continue };
                    let value = field.bytes().await.map_err(multipart_error)?;
                    let value = String::from_utf8(value.to_vec()).map_err(|_| not_utf8(&name))?;
                    args.insert(name, value);
                }
            }
            _ => {
                let content_type = content_type.and_then(|v| v.parse().ok());
                let bytes = read_body(req, limit).await?;
                if !bytes.is_empty() {
                    args.raw = Some(RawBody { content_type, bytes });
                }
            }
        }
        Ok(args)
    }
}

/// A media type without its parameters: `text/plain` of `text/plain; charset=utf-8`.
fn essence(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or_default().trim()
}

fn multipart_error(err: axum::extract::multipart::MultipartError) -> ApiError {
    if err.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::TooLarge("request body is too large".to_owned())
    } else {
        ApiError::InvalidArgument(format!("bad multipart body: {}", err.body_text()))
    }
}

/// Reads the whole body, refusing more than `limit` bytes with 413.
pub async fn read_body(req: Request, limit: usize) -> Result<Bytes, ApiError> {
    match Limited::new(req.into_body(), limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<LengthLimitError>() => {
            Err(ApiError::TooLarge(format!("request body is larger than {limit} bytes")))
        }
        Err(err) => Err(ApiError::InvalidArgument(format!("could not read the request body: {err}"))),
    }
}

/// The `Idempotency-Key` header, if given and not empty: one header of at most
/// [`MAX_IDEMPOTENCY_KEY_BYTES`] visible ASCII characters, else `400 invalid_idempotency_key`
/// (never silently ignored, which would add a retry twice).
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let mut values = parts.headers.get_all("idempotency-key").iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return match parts.headers.contains_key("idempotency-key") {
                true => Err(ApiError::InvalidIdempotencyKey(
                    "send one Idempotency-Key header, not several".into(),
                )),
                false => Ok(Self(None)),
            };
        };
        let key = value.as_bytes();
        if key.len() > MAX_IDEMPOTENCY_KEY_BYTES {
            return Err(ApiError::InvalidIdempotencyKey(format!(
                "Idempotency-Key is {} bytes; the limit is {MAX_IDEMPOTENCY_KEY_BYTES}",
                key.len()
            )));
        }
        if !key.iter().all(u8::is_ascii_graphic) {
            return Err(ApiError::InvalidIdempotencyKey(
                "Idempotency-Key may hold only visible ASCII characters (no spaces or control characters)"
                    .into(),
            ));
        }
        let key = String::from_utf8_lossy(key).into_owned(); // ASCII: nothing is lost
        Ok(Self(Some(key).filter(|k| !k.is_empty())))
    }
}

/// The `{queue}` path segment, validated.
pub struct QueuePath(pub QueueName);

impl<S: Send + Sync> FromRequestParts<S> for QueuePath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(name) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::InvalidQueueName("queue name is not valid UTF-8".to_owned()))?;
        Ok(QueuePath(QueueName::try_from(name)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Forms decode `+` and `%XX`; bytes that are not UTF-8 are refused, not replaced.
    #[test]
    fn forms_are_strict_utf8() {
        let mut args = Args::default();
        args.merge_form(b"value=a+b%21&&empty=&flag&value=%C3%A9").unwrap();
        assert_eq!(args.get("value"), Some("é"));
        assert!(args.flag("value") && !args.flag("flag") && args.get("empty").is_none());
        assert_eq!(form_component(b"a+b%20c%21").unwrap(), "a b c!");
        for bad in [&b"value=%FF%FE"[..], b"value=\xff", b"%FF=x", b"value=%C3"] {
            assert!(Args::default().merge_form(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    /// Callbacks are identifier paths only: nothing that could inject script.
    #[test]
    fn callbacks() {
        for ok in ["cb", "$", "_x1", "app.on_data", "jQuery123_456"] {
            assert!(is_callback(ok), "{ok}");
        }
        for bad in ["", "1cb", "a b", "alert(1)", "a;b", "a-b", "a[0]", "<script>"] {
            assert!(!is_callback(bad), "{bad}");
        }
    }
}
