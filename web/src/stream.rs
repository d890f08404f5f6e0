//! Streaming a queue into the page: a task that opens a WebSocket (gloo-net), or an
//! EventSource, or a COMET fetch whose body is read line by line (web-sys), as
//! [`Dialer`] decides, and reconnects with back-off until its [`Subscription`] is dropped.

use std::cell::{Cell, RefCell};
use std::pin::Pin;
use std::time::Duration;

use futures_util::{future, Sink, StreamExt};
use gloo_net::http::Request;
use gloo_net::websocket::{futures::WebSocket, Message, State, WebSocketError};
use restmq_shared::{CloseNotice, GapNotice, GapRange, QueueName, StreamMessage};
use wasm_bindgen::{closure::Closure, JsCast};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    AbortController, EventSource, MessageEvent, ReadableStreamDefaultReader, ReadableStreamReadResult,
};
use yew::platform::{
    pinned::{mpsc, oneshot},
    spawn_local,
    time::sleep,
};
use yew::Callback;

use crate::model::dial::{stream_path, Dialer, Link, Transport};

/// The longest COMET line buffered while waiting for its end.
const MAX_LINE_BYTES: usize = 4 << 20;

/// What a subscription reports.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    Link(Link),
    Message(StreamMessage),
    /// On resuming, the server could not replay these messages any more.
    Gap(GapRange),
}

/// A running subscription; dropping it closes the connection and stops reconnecting.
pub struct Subscription {
    _stop: oneshot::Sender<()>,
}

/// Streams `queue` to `on_event` until the returned [`Subscription`] is dropped. With `resume`,
/// reconnections ask for what was missed (`?since=<last key>`); with `observe`, the stream
/// takes nothing (`?observe=1`).
pub fn subscribe(
    queue: QueueName,
    resume: bool,
    observe: bool,
    on_event: Callback<StreamEvent>,
) -> Subscription {
    let (stop, stopped) = oneshot::channel::<()>();
    spawn_local(async move {
        let run = Box::pin(run(queue, resume, observe, on_event));
        // Dropping `run` drops the open connection with it.
        future::select(run, stopped).await;
    });
    Subscription { _stop: stop }
}

async fn run(queue: QueueName, resume: bool, observe: bool, on_event: Callback<StreamEvent>) {
    let mut dialer = Dialer::default();
    let mut since: Option<String> = None;
    loop {
        let transport = dialer.transport();
        on_event.emit(StreamEvent::Link(Link::Connecting(transport)));
        let sink = Session::new(on_event.clone());
        let path = crate::auth::with_token(&stream_path(
            transport,
            &queue,
            since.as_deref().filter(|_| resume),
            observe,
        ));
        match transport {
            Transport::WebSocket => websocket(&path, &sink).await,
            Transport::Sse => sse(&path, &sink).await,
            Transport::Comet => comet(&path, &sink).await,
        }
        if let Some(key) = sink.last_key.take() {
            since = Some(key);
        }
        if let Some(status) = sink.refused.get() {
            // Retrying cannot help: the app asks for a token, and a new one restarts the view.
            on_event.emit(StreamEvent::Link(Link::Refused(status)));
            return;
        }
        let delay_ms = dialer.ended(sink.opened.get());
        let reason = sink.reason.take();
        // After a server restart, keys may start again from 1: resuming after the old last key
        // would skip the new messages. A purge keeps keys going (they are never reused), so an
        // observer resumes after it and misses nothing added meanwhile; a consumer starts afresh.
        let reset = match reason.as_deref() {
            Some("shutdown") => true,
            Some("purged") => !observe,
            _ => false,
        };
        if reset {
            since = None;
        }
        on_event.emit(StreamEvent::Link(Link::Waiting { delay_ms, failures: dialer.failures(), reason }));
        if delay_ms > 0 {
            sleep(Duration::from_millis(delay_ms.into())).await;
        }
    }
}

/// One connection attempt: whether it opened, the last key and why it ended.
struct Session {
    on_event: Callback<StreamEvent>,
    opened: Cell<bool>,
    last_key: RefCell<Option<String>>,
    reason: RefCell<Option<String>>,
    /// The HTTP status of a refusal (401, 403), which ends the retries.
    refused: Cell<Option<u16>>,
}

impl Session {
    fn new(on_event: Callback<StreamEvent>) -> Self {
        Self {
            on_event,
            opened: Cell::new(false),
            last_key: RefCell::new(None),
            reason: RefCell::new(None),
            refused: Cell::new(None),
        }
    }

    fn open(&self, transport: Transport) {
        self.opened.set(true);
        self.on_event.emit(StreamEvent::Link(Link::Live(transport)));
    }

    fn end(&self, reason: impl Into<String>) {
        self.reason.borrow_mut().get_or_insert_with(|| reason.into());
    }

    /// One frame, line or event: a message, the server's notice that it closes the stream, or
    /// its notice that some messages could not be replayed.
    fn text(&self, text: &str) {
        if let Ok(message) = serde_json::from_str::<StreamMessage>(text) {
            *self.last_key.borrow_mut() = Some(message.key.to_string());
            self.on_event.emit(StreamEvent::Message(message));
        } else if let Ok(notice) = serde_json::from_str::<CloseNotice>(text) {
            self.end(notice.closed);
        } else if let Ok(notice) = serde_json::from_str::<GapNotice>(text) {
            self.on_event.emit(StreamEvent::Gap(notice.gap));
        }
    }
}

/// The absolute `ws://` / `wss://` URL of `path` on the page's server, with the tab's token.
pub fn websocket_url(path: &str) -> Option<String> {
    let location = web_sys::window()?.location();
    let scheme = if location.protocol().ok()? == "https:" { "wss" } else { "ws" };
    let path = if path.contains("token=") { path.to_owned() } else { crate::auth::with_token(path) };
    Some(format!("{scheme}://{}{path}", location.host().ok()?))
}

async fn websocket(path: &str, session: &Session) {
    let Some(mut ws) = websocket_url(path).and_then(|url| WebSocket::open(&url).ok()) else { return };
    // The sink is ready once the socket is open, or as soon as it failed to open.
    let ready = future::poll_fn(|cx| Pin::new(&mut ws).poll_ready(cx)).await;
    if ready.is_err() || !matches!(ws.state(), State::Open) {
        return;
    }
    session.open(Transport::WebSocket);
    while let Some(item) = ws.next().await {
        match item {
            Ok(Message::Text(text)) => session.text(&text),
            Ok(Message::Bytes(_)) => {}
            Err(WebSocketError::ConnectionClose(close)) => {
                if !close.reason.is_empty() {
                    session.end(close.reason);
                } else if !close.was_clean {
                    session.end("connection lost");
                }
                break;
            }
            Err(_) => {} // an error event; the close event follows
        }
    }
}

enum SseEvent {
    Open,
    Data(String),
    Close(String),
    Error,
}

/// Keeps an EventSource's handlers alive, and closes it when dropped.
struct EventSourceGuard {
    source: EventSource,
    _handlers: Vec<Closure<dyn FnMut(MessageEvent)>>,
}

impl Drop for EventSourceGuard {
    fn drop(&mut self) {
        self.source.close();
        self.source.set_onopen(None);
        self.source.set_onmessage(None);
        self.source.set_onerror(None);
    }
}

async fn sse(path: &str, session: &Session) {
    let Ok(source) = EventSource::new(path) else { return };
    let (tx, mut rx) = mpsc::unbounded::<SseEvent>();
    let handler = |make: fn(&MessageEvent) -> SseEvent| {
        let tx = tx.clone();
        Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            let _ = tx.send_now(make(&event));
        })
    };
    let on_open = handler(|_| SseEvent::Open);
    let on_message = handler(|event| SseEvent::Data(event_data(event)));
    let on_close = handler(|event| SseEvent::Close(event_data(event)));
    let on_error = handler(|_| SseEvent::Error);
    source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    source.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    let _ = source.add_event_listener_with_callback("close", on_close.as_ref().unchecked_ref());
    let _guard = EventSourceGuard { source, _handlers: vec![on_open, on_message, on_close, on_error] };
    while let Some(event) = rx.next().await {
        match event {
            SseEvent::Open => session.open(Transport::Sse),
            SseEvent::Data(text) => session.text(&text),
            SseEvent::Close(text) => {
                session.text(&text);
                break;
            }
            // The browser would retry by itself; reconnecting here resumes with `since`.
            SseEvent::Error => break,
        }
    }
}

fn event_data(event: &MessageEvent) -> String {
    event.data().as_string().unwrap_or_default()
}

/// Aborts a fetch when dropped.
struct AbortOnDrop(AbortController);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn comet(path: &str, session: &Session) {
    let Ok(controller) = AbortController::new() else { return };
    let signal = controller.signal();
    let _abort = AbortOnDrop(controller);
    let Ok(response) = Request::get(path).abort_signal(Some(&signal)).send().await else { return };
    if !response.ok() {
        let status = response.status();
        if crate::auth::is_refusal(status) {
            session.refused.set(Some(status));
            crate::auth::note_status(status);
        }
        session.end(format!("HTTP {status}"));
        return;
    }
    let Some(body) = response.body() else { return };
    session.open(Transport::Comet);
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut buffer: Vec<u8> = Vec::new();
    while let Ok(chunk) = JsFuture::from(reader.read()).await {
        let chunk: ReadableStreamReadResult = chunk.unchecked_into();
        if chunk.get_done().unwrap_or(true) {
            break;
        }
        buffer.extend(js_sys::Uint8Array::new(&chunk.get_value()).to_vec());
        let mut start = 0;
        while let Some(end) = buffer[start..].iter().position(|&b| b == b'\n') {
            if let Ok(line) = std::str::from_utf8(&buffer[start..start + end]) {
                if !line.trim().is_empty() {
                    session.text(line.trim());
                }
            }
            start += end + 1;
        }
        buffer.drain(..start);
        if buffer.len() > MAX_LINE_BYTES {
            buffer.clear();
        }
    }
}
