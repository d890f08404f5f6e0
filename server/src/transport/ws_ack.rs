//! `GET /ws/<queue>?ack=1`: at-least-once WebSocket consumers. Each message frame carries
//! its delivery count (`{"key","value","deliveries"}`) and is leased until the client sends
//! `{"cmd":"ack","key":"q:7"}` (or `"nack"` to give it back). Unacknowledged messages come
//! back after the lease; when the socket closes, they go back at once.

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use restmq_shared::{ErrorCode, ErrorResponse, LeasedStreamMessage, MessageKey, QueueName};
use serde::Deserialize;

use super::heartbeat::{beat, heard, Beat, Pinger};
use crate::broker::{AckedSubscription, Broker, LeasedMessage, StreamInfo};

/// A frame from an `ack=1` client.
#[derive(Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase")]
enum ClientFrame {
    Ack { key: MessageKey },
    Nack { key: MessageKey },
}

pub async fn serve_acked(
    mut socket: WebSocket,
    broker: Broker,
    queue: QueueName,
    heartbeat: Option<std::time::Duration>,
    info: StreamInfo,
) {
    let mut pinger = Pinger::new(heartbeat);
    let mut sub = broker.subscribe_acked(&queue);
    sub.list_as(info);
    let shutdown = broker.shutdown_token().clone();
    loop {
        let waiter = sub.waiter();
        match lease_more(&mut socket, &mut sub, &queue).await {
            Some(true) => continue,
            Some(false) => return, // what this consumer holds goes back as `sub` drops
            None => {}
        }
        let open = tokio::select! {
            () = waiter => true,
            beat = beat(&mut pinger) => match beat {
                Beat::Ping => socket.send(Message::Ping(Default::default())).await.is_ok(),
                Beat::Silent => false, // gone without closing: what it holds goes back
            },
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => false,
                Some(Ok(message)) => {
                    heard(&mut pinger); // a pong or a ping the socket answers, or a command
                    match message {
                        Message::Text(text) => answer(&mut socket, &mut sub, &text).await,
                        _ => true,
                    }
                }
            },
            () = shutdown.cancelled() => {
                let _ = socket.send(Message::Close(Some(GOING_AWAY_FRAME))).await;
                false
            }
        };
        if !open {
            return;
        }
    }
}

/// The close frame at shutdown.
const GOING_AWAY_FRAME: CloseFrame =
    CloseFrame { code: super::ws::GOING_AWAY, reason: Utf8Bytes::from_static("shutdown") };

/// Leases what the window has room for and writes it: `None` when there was nothing,
/// `Some(false)` once the socket is gone. Not raced against anything: what it leases must be
/// recorded as held.
async fn lease_more(socket: &mut WebSocket, sub: &mut AckedSubscription, queue: &QueueName) -> Option<bool> {
    match sub.try_reserve().await {
        Ok(batch) if !batch.is_empty() => Some(send_leased(socket, batch).await),
        Ok(_) => None,
        Err(err) => {
            tracing::warn!(%queue, %err, "ack consumer: store failed");
            None
        }
    }
}

/// Writes a batch of leased messages; `false` once the socket is gone.
async fn send_leased(socket: &mut WebSocket, batch: Vec<LeasedMessage>) -> bool {
    for m in batch {
        let frame = LeasedStreamMessage { key: m.key, value: m.value, deliveries: m.deliveries };
        let text = serde_json::to_string(&frame).unwrap_or_default();
        if socket.send(Message::Text(text.into())).await.is_err() {
            return false;
        }
    }
    true
}

/// Runs an `ack`/`nack` frame, answering a bad one with an error frame; `false` once the
/// socket is gone.
async fn answer(socket: &mut WebSocket, sub: &mut AckedSubscription, text: &str) -> bool {
    let Err(message) = handle(sub, text).await else { return true };
    let error = ErrorResponse::new(ErrorCode::InvalidArgument, message);
    socket.send(Message::Text(serde_json::to_string(&error).unwrap_or_default().into())).await.is_ok()
}

async fn handle(sub: &mut AckedSubscription, text: &str) -> Result<(), String> {
    let frame: ClientFrame = serde_json::from_str(text)
        .map_err(|e| format!("expected {{\"cmd\":\"ack\"|\"nack\",\"key\":…}}: {e}"))?;
    let result = match &frame {
        ClientFrame::Ack { key } => sub.ack(key).await,
        ClientFrame::Nack { key } => sub.nack(key).await,
    };
    result.map(drop).map_err(|e| e.to_string())
}
