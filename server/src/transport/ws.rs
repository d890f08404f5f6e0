//! `GET /ws/<queue>`: WebSocket, one text frame per message (the message JSON). The server
//! ends the stream with a close frame saying why.

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::Extension;

use axum::response::Response;
use bytes::Bytes;
use restmq_shared::{ErrorResponse, MessageKey, QueueName};

use super::heartbeat::{beat, heard, Beat, Pinger};
use super::source::{observing, open, Encoder, Next, Opening, Source};
use super::{since_arg, Peer};
use crate::app_state::AppState;
use crate::auth::AddFrames;
use crate::broker::{Broker, CloseReason, StreamInfo};
use crate::connection::ConnectionCut;
use crate::error::ApiError;
use crate::extract::{Args, QueuePath};

/// Close code for "going away" (server shutdown) and for policy ends (purge, slow).
pub(super) const GOING_AWAY: u16 = 1001;
const POLICY: u16 = 1008;

/// Bytes tungstenite reads frames into. Its 128 KiB default is touched by the first read and
/// stays resident per connection (136 KiB of RSS per idle consumer, under 9 KiB with this);
/// consumers send only small frames, and larger ones are still read, in more steps.
const READ_BUFFER: usize = 2 * 1024;

/// Upgrades and streams the queue's messages, one text frame each.
pub async fn stream_websocket(
    State(state): State<AppState>,
    QueuePath(queue): QueuePath,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    add_frames: Option<Extension<AddFrames>>,
    cut: Option<Extension<ConnectionCut>>,
    peer: Peer,
    args: Args,
) -> Result<Response, ApiError> {
    // With access checks on, add frames pass the producer rules of `POST /q/<queue>`.
    let may_add = add_frames.map_or(Ok(()), |Extension(AddFrames(verdict))| verdict);
    let upgrade = upgrade.map_err(|_| ApiError::UpgradeRequired)?;
    let observe = observing(&args)?;
    let since = since_arg(&args, &queue)?;
    let (broker, heartbeat) = (state.broker.clone(), state.settings.heartbeat);
    let max = broker.config().max_message_bytes;
    let upgrade = upgrade.max_message_size(max + 1024).write_buffer_size(0).read_buffer_size(READ_BUFFER);
    let tracker = broker.tracker().clone();
    if args.flag("ack") {
        state.check_stream_capacity()?;
        let info = StreamInfo { observer: false, transport: "ws", addr: peer.0, ack: true };
        return Ok(upgrade.on_upgrade(move |socket| async move {
            let _connection = broker.metrics().open_connection();
            tracker.track_future(super::ws_ack::serve_acked(socket, broker, queue, heartbeat, info)).await;
        }));
    }
    // The stream joins before the upgrade, so a refusal is still an HTTP answer.
    let opening = Opening { queue: queue.clone(), transport: "ws", since, peer, cut };
    let source = open(&state, opening, observe).await?;
    let consumer = Consumer { broker, queue, source, may_add, heartbeat };
    Ok(upgrade.on_upgrade(move |socket| tracker.track_future(serve(socket, consumer))))
}

/// One WebSocket stream, consumer or observer, as it was opened.
struct Consumer {
    broker: Broker,
    queue: QueueName,
    source: Source,
    /// Whether its `add` frames pass the producer rules.
    may_add: Result<(), ErrorResponse>,
    heartbeat: Option<std::time::Duration>,
}

async fn serve(mut socket: WebSocket, consumer: Consumer) {
    let Consumer { broker, queue, mut source, may_add, heartbeat } = consumer;
    let mut pinger = Pinger::new(heartbeat);
    loop {
        let open = tokio::select! {
            next = source.next() => send(&mut socket, &source, next).await,
            beat = beat(&mut pinger) => match beat {
                Beat::Ping => socket.send(Message::Ping(Default::default())).await.is_ok(),
                Beat::Silent => false, // gone without closing: what it held goes back
            },
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => false,
                Some(Ok(Message::Text(text))) => {
                    heard(&mut pinger);
                    let answer = match &may_add {
                        Ok(()) => produce(&broker, &queue, &text).await,
                        Err(refusal) => serde_json::to_string(refusal).unwrap_or_default(),
                    };
                    socket.send(Message::Text(answer.into())).await.is_ok()
                }
                Some(Ok(_)) => {
                    heard(&mut pinger); // a pong, or a ping the socket answers
                    true
                }
            },
        };
        if !open {
            return;
        }
    }
}

/// Writes what the source gave; `false` once the stream is over.
async fn send(socket: &mut WebSocket, source: &Source, next: Next) -> bool {
    match next {
        Next::Replayed(f) => socket.send(Frames.message(f.key.as_ref(), &f.json)).await.is_ok(),
        Next::Message(delivery) => {
            let frame = Frames.message(Some(&delivery.message.key), &delivery.json);
            if socket.send(frame).await.is_err() {
                return false; // the delivery drops undelivered and goes back
            }
            delivery.mark_delivered();
            true
        }
        Next::Closed(reason) => {
            let _ = socket.send(Frames.closed(reason, source.close_notice(reason))).await;
            false
        }
    }
}

/// WebSocket frames: a text frame per message or notice; a close frame saying why the
/// server ended the stream (`1001` at shutdown, `1008` for purge and slow consumers).
struct Frames;

impl Encoder for Frames {
    type Frame = Message;

    fn message(&self, _key: Option<&MessageKey>, json: &Bytes) -> Message {
        Message::Text(Utf8Bytes::try_from(json.clone()).unwrap_or_default())
    }

    fn closed(&self, reason: CloseReason, _notice: String) -> Message {
        let code = if reason == CloseReason::Shutdown { GOING_AWAY } else { POLICY };
        Message::Close(Some(CloseFrame { code, reason: Utf8Bytes::from_static(reason.as_str()) }))
    }
}

/// A producer frame `{"cmd":"add","value":…}`: adds to this socket's queue and answers
/// `{"added":"q:7"}`, or a JSON error.
async fn produce(broker: &Broker, queue: &QueueName, text: &str) -> String {
    #[derive(serde::Deserialize)]
    struct AddFrame {
        cmd: String,
        value: serde_json::Value,
    }
    let result = match serde_json::from_str::<AddFrame>(text) {
        Ok(frame) if frame.cmd == "add" => {
            let value = restmq_shared::protocol::value_to_text(frame.value);
            match broker.check_size(&value) {
                Ok(()) => broker.add(queue, value, None).await.map_err(ApiError::from),
                Err(err) => Err(err.into()),
            }
        }
        Ok(frame) => Err(ApiError::UnknownCommand { cmd: frame.cmd, known: &["add"] }),
        Err(e) => Err(ApiError::MalformedJson(format!("expected {{\"cmd\":\"add\",\"value\":…}}: {e}"))),
    };
    match result {
        Ok(key) => serde_json::json!({ "added": key }).to_string(),
        Err(err) => {
            let body = ErrorResponse::new(err.code(), err.to_string());
            serde_json::to_string(&body).unwrap_or_default()
        }
    }
}
