//! `GET /ws/<queue>?ack=1`: at-least-once WebSocket consumers. Each message frame carries
//! its delivery count (`{"key","value","deliveries"}`) and is leased until the client sends
//! `{"cmd":"ack","key":"q:7"}` (or `"nack"` to give it back). Unacknowledged messages come
//! back after the lease; when the socket closes, they go back at once.

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use restmq_shared::{ErrorCode, ErrorResponse, LeasedStreamMessage, MessageKey, QueueName};
use serde::Deserialize;

use super::heartbeat::{beat, heard, Beat, Pinger};
use crate::broker::{AckedSubscription, Broker, StreamInfo};

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
        // Not raced against anything: what it leases must be recorded as held.
        match sub.try_reserve().await {
            Ok(batch) if !batch.is_empty() => {
                for m in batch {
                    let frame = LeasedStreamMessage { key: m.key, value: m.value, deliveries: m.deliveries };
                    let text = serde_json::to_string(&frame).unwrap_or_default();
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        return; // what this consumer holds goes back as `sub` drops
                    }
                }
                continue;
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(%queue, %err, "ack consumer: store failed"),
        }
        tokio::select! {
            () = waiter => {}
            beat = beat(&mut pinger) => match beat {
                Beat::Ping => {
                    if socket.send(Message::Ping(Default::default())).await.is_err() {
                        return;
                    }
                }
                Beat::Silent => return, // gone without closing: what it holds goes back
            },
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(Message::Text(text))) => {
                    heard(&mut pinger);
                    if let Err(message) = handle(&mut sub, &text).await {
                        let error = ErrorResponse::new(ErrorCode::InvalidArgument, message);
                        let _ = socket.send(Message::Text(serde_json::to_string(&error).unwrap_or_default().into())).await;
                    }
                }
                Some(Ok(_)) => {
                    heard(&mut pinger);
                }
            },
            () = shutdown.cancelled() => {
                let frame = CloseFrame { code: super::ws::GOING_AWAY, reason: Utf8Bytes::from_static("shutdown") };
                let _ = socket.send(Message::Close(Some(frame))).await;
                return;
            }
        }
    }
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
