//! `GET /ws/<queue>`: WebSocket, one text frame per message (the message JSON). The server
//! ends the stream with a close frame saying why.

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::Extension;

use axum::response::Response;
use restmq_shared::{ErrorResponse, MessageKey, QueueName};

use super::heartbeat::{beat, heard, Beat, Pinger};
use super::{cut_when_slow, described, next, observing, resume, since_arg, Next, Peer};
use crate::auth::AddFrames;
use crate::broker::{Broker, CloseReason, StreamInfo, Subscription};
use crate::connection::ConnectionCut;
use crate::error::ApiError;
use crate::http::args::{Args, QueuePath};
use crate::state::AppState;

/// Close code for "going away" (server shutdown) and for policy ends (purge, slow).
const GOING_AWAY: u16 = 1001;
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
    state.check_stream_capacity()?;
    let broker = state.broker.clone();
    let max = state.broker.config().max_message_bytes;
    let acked = args.flag("ack");
    let since = since_arg(&args, &queue)?;
    // An observer joins before the upgrade, so a store that cannot mark it answers an error.
    let observe = observing(&args)?;
    let info = described("ws", observe, acked, peer);
    let observer = if observe { Some(state.broker.observe(&queue).await?) } else { None };
    let heartbeat = state.settings.heartbeat;
    let upgrade = upgrade.max_message_size(max + 1024).write_buffer_size(0).read_buffer_size(READ_BUFFER);
    Ok(upgrade.on_upgrade(move |socket| {
        let tracker = broker.tracker().clone();
        async move {
            let _connection = broker.metrics().open_connection();
            if acked {
                tracker
                    .track_future(super::ws_ack::serve_acked(socket, broker, queue, heartbeat, info))
                    .await;
            } else {
                let consumer = Consumer { broker, queue, since, may_add, heartbeat, observer, info };
                tracker.track_future(serve(socket, consumer, cut)).await;
            }
        }
    }))
}

/// What one WebSocket consumer was opened with.
struct Consumer {
    broker: Broker,
    queue: QueueName,
    since: Option<MessageKey>,
    /// Whether its `add` frames pass the producer rules.
    may_add: Result<(), ErrorResponse>,
    heartbeat: Option<std::time::Duration>,
    /// Set when it observes (`observe=1`) instead of consuming.
    observer: Option<Subscription>,
    /// How it shows in the consumers list.
    info: StreamInfo,
}

async fn serve(mut socket: WebSocket, consumer: Consumer, cut: Option<Extension<ConnectionCut>>) {
    let Consumer { broker, queue, since, may_add, heartbeat, observer, info } = consumer;
    let mut pinger = Pinger::new(heartbeat);
    let mut sub = observer.unwrap_or_else(|| broker.subscribe(&queue));
    sub.list_as(info);
    cut_when_slow(&sub, cut);
    for replayed in resume(&broker, &mut sub, since.as_ref()) {
        let Ok(text) = Utf8Bytes::try_from(replayed.json) else { continue };
        if socket.send(Message::Text(text)).await.is_err() {
            return;
        }
    }
    let shutdown = broker.shutdown_token().clone();
    loop {
        tokio::select! {
            next = next(&mut sub, &shutdown) => match next {
                Next::Message(delivery) => {
                    let Ok(text) = Utf8Bytes::try_from(delivery.json.clone()) else { continue };
                    if socket.send(Message::Text(text)).await.is_err() {
                        return; // the delivery drops undelivered and goes back
                    }
                    delivery.mark_delivered();
                }
                Next::Closed(reason) => {
                    let code = if reason == CloseReason::Shutdown { GOING_AWAY } else { POLICY };
                    let frame = CloseFrame { code, reason: Utf8Bytes::from_static(reason.as_str()) };
                    let _ = socket.send(Message::Close(Some(frame))).await;
                    return;
                }
            },
            beat = beat(&mut pinger) => match beat {
                Beat::Ping => {
                    if socket.send(Message::Ping(Default::default())).await.is_err() {
                        return;
                    }
                }
                Beat::Silent => return, // gone without closing: what it held goes back
            },
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(Message::Text(text))) => {
                    heard(&mut pinger);
                    let answer = match &may_add {
                        Ok(()) => produce(&broker, &queue, &text).await,
                        Err(refusal) => serde_json::to_string(refusal).unwrap_or_default(),
                    };
                    if socket.send(Message::Text(answer.into())).await.is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {
                    heard(&mut pinger); // a pong, or a ping the socket answers
                }
            },
        }
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
