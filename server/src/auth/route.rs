//! What each route needs: a right (on one queue or on all), the `acl.conf` section that
//! guards it, or nothing. Routes are told apart by their matched path template; the queue
//! comes from the `{queue}` segment, or, for `/` and `POST /queue`, from the request's
//! arguments, read from a buffered copy of the body that the handler then reads again.

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::Method;
use serde_json::Value;

use super::acl::Section;
use super::tokens::{Right, Scope};
use crate::error::ApiError;
use crate::extract::{read_body, Args, ParsedArgs};

/// What a request must show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// Nothing: health checks, the web app and unknown paths (which answer 404).
    Open,
    /// Any valid credentials; the handler will refuse the request as malformed anyway.
    Authenticated,
    /// A right on a scope.
    Right(Right, Scope),
    /// Every one of these rights: redrive takes from `<q>.dead` (admin) and adds to `<q>`
    /// (produce).
    Rights(Vec<(Right, Scope)>),
}

/// The classification of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub need: Need,
    /// The `acl.conf` section that applies, as RestMQ chose it.
    pub section: Option<Section>,
}

impl Access {
    fn open() -> Self {
        Self { need: Need::Open, section: None }
    }

    /// The rights to check, each on its scope (none for [`Need::Open`] and
    /// [`Need::Authenticated`]).
    pub fn rights(&self) -> Vec<(Right, Scope)> {
        match &self.need {
            Need::Right(right, scope) => vec![(*right, scope.clone())],
            Need::Rights(rights) => rights.clone(),
            Need::Open | Need::Authenticated => Vec::new(),
        }
    }

    /// What the `add` frames of a WebSocket need, checked at its upgrade: exactly what
    /// `POST /q/<queue>` needs. `None` for every other route.
    pub fn for_add_frames(&self) -> Option<Access> {
        match (&self.need, self.section) {
            (Need::Right(_, Scope::Queue(queue)), Some(Section::WebsocketConsumer)) => {
                Some(Access { need: right(Right::Produce, queue), section: Some(Section::RestProducer) })
            }
            _ => None,
        }
    }
}

/// Classifies the request; for `/` and `/queue` the body is read and put back.
pub async fn classify<S: super::Guarded>(
    state: &S,
    mut parts: Parts,
    body: Body,
) -> Result<(Request, Access), ApiError> {
    let Some(template) = parts.extensions.get::<MatchedPath>().map(|p| p.as_str().to_owned()) else {
        // The router's fallback: the web app's files, or a JSON 404.
        return Ok((Request::from_parts(parts, body), Access::open()));
    };
    let method = parts.method.clone();
    let reading = method == Method::GET || method == Method::HEAD;
    let section = |streaming: Option<Section>| {
        streaming.or(Some(if reading { Section::RestConsumer } else { Section::RestProducer }))
    };
    if template == "/" || template == "/queue" {
        let (mut req, args) = buffered_args(state, parts, body).await?;
        let access = match (template.as_str(), &args) {
            ("/", Ok(args)) if reading => match args.get("queue") {
                Some(queue) => Access { need: right(Right::Consume, queue), section: section(None) },
                None => Access::open(),
            },
            ("/", Ok(args)) if method == Method::POST => match args.get("queue") {
                Some(queue) => Access { need: right(Right::Produce, queue), section: section(None) },
                None => Access { need: Need::Authenticated, section: section(None) },
            },
            ("/queue", Ok(args)) => Access { need: command_need(args), section: Some(Section::RestProducer) },
            _ => Access { need: Need::Authenticated, section: section(None) },
        };
        if let Ok(args) = args {
            // The handler takes these: the body is parsed once.
            req.extensions_mut().insert(ParsedArgs(args));
        }
        return Ok((req, access));
    }
    let params: Vec<(String, String)> = RawPathParams::from_request_parts(&mut parts, &())
        .await
        .map(|params| params.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
        .unwrap_or_default();
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let queue = param("queue");
    let redrive = param("item").as_deref() == Some("redrive");
    // Redrive adds the dead letters to the live queue: that needs produce there too.
    let live = queue.as_deref().and_then(|q| q.strip_suffix(".dead")).map(str::to_owned);
    let scope = queue.map_or(Scope::All, Scope::Queue);
    let need = |right: Right| Need::Right(right, scope.clone());
    // Reads that only look (soft gets, observers) need `observe`, which `consume` implies.
    let looks = reading && only_looks(&parts, &template);
    let take = |right: Right| need(if looks { Right::Observe } else { right });
    let access = match (template.as_str(), &method) {
        ("/healthz" | "/readyz", _) => Access::open(),
        ("/q/{queue}", _) if reading => Access { need: take(Right::Consume), section: section(None) },
        ("/q/{queue}", &Method::POST) => Access { need: need(Right::Produce), section: section(None) },
        // Ack (DELETE) and nack (POST) of a leased message; `POST /q/<q>.dead/redrive` is admin
        // on `<q>.dead` and produce on `<q>`.
        ("/q/{queue}/{item}", &Method::DELETE | &Method::POST) if !redrive => {
            Access { need: need(Right::Consume), section: Some(Section::RestConsumer) }
        }
        ("/q/{queue}/{item}", &Method::POST) if live.is_some() => Access {
            need: Need::Rights(vec![
                (Right::Admin, scope.clone()),
                (Right::Produce, Scope::Queue(live.unwrap_or_default())),
            ]),
            section: section(None),
        },
        ("/c/{queue}" | "/sse/{queue}", _) if reading => {
            Access { need: take(Right::Consume), section: section(Some(Section::CometConsumer)) }
        }
        ("/ws/{queue}", _) if reading => {
            Access { need: take(Right::Consume), section: section(Some(Section::WebsocketConsumer)) }
        }
        ("/browse/{queue}" | "/history/{queue}" | "/consumers/{queue}", _) if reading => {
            Access { need: need(Right::Observe), section: section(None) }
        }
        ("/collectd/data" | "/collectd/event", &Method::POST) => {
            let (data, event) = state.collectd_queues();
            let queue = if template == "/collectd/data" { data } else { event };
            Access { need: right(Right::Produce, queue.as_str()), section: section(None) }
        }
        // Purge, policy, pause, figures, listings, and any route not named here.
        _ => Access { need: need(Right::Admin), section: section(None) },
    };
    Ok((Request::from_parts(parts, body), access))
}

/// Whether a read only looks: `HEAD /q/<q>` (which says whether a message waits), or a
/// query asking for a soft get (`soft`) or an observer (`observe`) and nothing that takes
/// (`reserve`, `ack`). Only the query counts, so a request with a body (whose fields the
/// handler would read too) never qualifies; a `HEAD` on a stream is served as a `GET`,
/// which consumes, so it looks only with `observe=1` like that `GET`.
fn only_looks(parts: &Parts, template: &str) -> bool {
    if parts.method == Method::HEAD && template == "/q/{queue}" {
        return true;
    }
    let has_body = parts.headers.contains_key(axum::http::header::TRANSFER_ENCODING)
        || parts
            .headers
            .get(axum::http::header::CONTENT_LENGTH)
            .is_some_and(|v| v.to_str().map_or(true, |v| v.trim() != "0"));
    if has_body {
        return false;
    }
    let Ok(args) = Args::from_query(parts.uri.query().unwrap_or_default()) else { return false };
    (args.flag("soft") || args.flag("observe")) && args.get("reserve").is_none() && !args.flag("ack")
}

fn right(right: Right, queue: &str) -> Need {
    Need::Right(right, Scope::Queue(queue.to_owned()))
}

/// The request rebuilt from its buffered body, and its arguments as the handler will read
/// them (or the handler's own error).
async fn buffered_args<S: super::Guarded>(
    state: &S,
    parts: Parts,
    body: Body,
) -> Result<(Request, Result<Args, ApiError>), ApiError> {
    let bytes = read_body(Request::from_parts(parts.clone(), body), state.body_limit()).await?;
    let copy = Request::from_parts(parts.clone(), Body::from(bytes.clone()));
    let args = Args::from_request(copy, state).await;
    Ok((Request::from_parts(parts, Body::from(bytes)), args))
}

/// The right a JSON-protocol command needs: `add` produces; `get`, `take`, `del` and the
/// lease commands consume; anything else needs admin. A document the handler will refuse
/// needs only valid credentials.
fn command_need(args: &Args) -> Need {
    let text = match args.get("body").or_else(|| args.get("msg")) {
        Some(field) => field,
        None => match args.raw.as_ref().map(|raw| std::str::from_utf8(&raw.bytes)) {
            Some(Ok(text)) => text,
            _ => return Need::Authenticated,
        },
    };
    let Ok(doc) = serde_json::from_str::<Value>(text) else { return Need::Authenticated };
    let (Some(cmd), Some(queue)) =
        (doc.get("cmd").and_then(Value::as_str), doc.get("queue").and_then(Value::as_str))
    else {
        return Need::Authenticated;
    };
    let needed = match cmd {
        "add" => Right::Produce,
        "get" | "take" | "del" | "reserve" | "ack" | "nack" => Right::Consume,
        _ => Right::Admin,
    };
    right(needed, queue)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args_with_body(body: &str) -> Args {
        let mut args = Args::default();
        args.raw = Some(crate::extract::RawBody { content_type: None, bytes: body.to_owned().into() });
        args
    }

    #[test]
    fn commands_need_their_rights() {
        let need = |body: &str| command_need(&args_with_body(body));
        assert_eq!(need(r#"{"cmd":"add","queue":"q","value":"v"}"#), right(Right::Produce, "q"));
        assert_eq!(need(r#"{"cmd":"take","queue":"q"}"#), right(Right::Consume, "q"));
        assert_eq!(need(r#"{"cmd":"del","queue":"q","key":"q:1"}"#), right(Right::Consume, "q"));
        assert_eq!(need(r#"{"cmd":"purge","queue":"q"}"#), right(Right::Admin, "q"));
        assert_eq!(need(r#"{"cmd":"add"}"#), Need::Authenticated);
        assert_eq!(need("not json"), Need::Authenticated);
    }
}
