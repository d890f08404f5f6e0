//! The one streaming skeleton every transport uses: [`open`] checks the stream limit, joins
//! the queue as a consumer or an observer with the replay after `since`
//! (`Broker::subscribe_from`), lists the connection and arranges the cut when the client stops
//! reading; [`Source::next`] then gives the replay, the live messages and the end in that order; [`frames`] turns a source into a
//! body stream through a transport's [`Encoder`] (COMET line, SSE event, WebSocket frame).

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use bytes::Bytes;
use futures_util::{stream, Stream};
use restmq_shared::{CloseNotice, GapNotice, GapRange, MessageKey, QueueName};
use tokio_util::sync::CancellationToken;

use super::Peer;
use crate::app_state::AppState;
use crate::broker::{CloseReason, Delivery, Mode, Replay, StreamInfo, Streamed, Subscription};
use crate::connection::ConnectionCut;
use crate::error::ApiError;
use crate::extract::Args;
use crate::metrics::ConnectionGuard;

/// How a stream is opened, whatever its transport.
pub(crate) struct Opening {
    pub queue: QueueName,
    /// `ws`, `sse` or `comet`.
    pub transport: &'static str,
    /// Resume after this key (`since`, or SSE's `Last-Event-ID`).
    pub since: Option<MessageKey>,
    pub peer: Peer,
    pub cut: Option<Extension<ConnectionCut>>,
}

/// A replayed message, or a gap notice (`key` is `None`).
pub(crate) struct ReplayFrame {
    pub key: Option<MessageKey>,
    pub json: Bytes,
}

/// What a stream sends next.
pub(crate) enum Next {
    Replayed(ReplayFrame),
    Message(Arc<Delivery>),
    Closed(CloseReason),
}

/// An open stream: the subscription (its replay, then its live messages).
pub(crate) struct Source {
    sub: Subscription,
    shutdown: CancellationToken,
    /// Keeps the connection counted in `restmq_connections` while the stream lives.
    _counted: ConnectionGuard,
}

/// `observe=1`: the stream only looks (an observer, which takes nothing). An observer has
/// nothing to acknowledge, so `ack=1` with it is refused.
pub(crate) fn observing(args: &Args) -> Result<bool, ApiError> {
    let observe = args.flag("observe");
    if observe && args.flag("ack") {
        return Err(ApiError::InvalidArgument(
            "observe=1 takes nothing, so there is nothing to acknowledge: drop ack=1 or observe=1".to_owned(),
        ));
    }
    Ok(observe)
}

/// Opens a stream of `opening.queue` for a consumer, or with `observe` for an observer.
pub(crate) async fn open(state: &AppState, opening: Opening, observe: bool) -> Result<Source, ApiError> {
    state.check_stream_capacity()?;
    let Opening { queue, transport, since, peer, cut } = opening;
    let broker = &state.broker;
    let mode = if observe { Mode::Observe } else { Mode::Consume };
    let mut sub = broker.subscribe_from(&queue, since.as_ref(), mode).await?;
    sub.list_as(StreamInfo { observer: observe, transport, addr: peer.0, ack: false });
    if let Some(Extension(cut)) = cut {
        // Its client is not reading, so the transport is stuck writing and would never
        // notice by itself.
        sub.when_slow(move || cut.cut());
    }
    let shutdown = broker.shutdown_token().clone();
    Ok(Source { sub, shutdown, _counted: broker.metrics().open_connection() })
}

/// A replayed message, or a gap notice, as the stream sends it.
fn replayed(missed: Replay) -> ReplayFrame {
    match missed {
        Replay::Gap { from, to } => {
            let notice = GapNotice { gap: GapRange { from, to } };
            ReplayFrame { key: None, json: Bytes::from(serde_json::to_vec(&notice).unwrap_or_default()) }
        }
        Replay::Message { key, json } => ReplayFrame { key: Some(key), json },
    }
}

impl Source {
    /// The next thing to send; waits for a live message.
    pub async fn next(&mut self) -> Next {
        tokio::select! {
            next = self.sub.next() => match next {
                Some(Streamed::Replayed(missed)) => Next::Replayed(replayed(missed)),
                Some(Streamed::Live(d)) => Next::Message(d),
                None => Next::Closed(self.sub.close_reason().unwrap_or(CloseReason::Shutdown)),
            },
            () = self.shutdown.cancelled() => Next::Closed(CloseReason::Shutdown),
        }
    }

    /// The JSON told to the client when the server ends its stream.
    pub fn close_notice(&self, reason: CloseReason) -> String {
        let notice = CloseNotice { queue: self.sub.queue().clone(), closed: reason.as_str().to_owned() };
        serde_json::to_string(&notice).unwrap_or_default()
    }
}

/// How one transport writes what a stream sends.
pub(crate) trait Encoder {
    type Frame;
    /// A message, live or replayed, with its key; a gap notice has none.
    fn message(&self, key: Option<&MessageKey>, json: &Bytes) -> Self::Frame;
    /// The last frame when the server ends the stream, carrying `notice`.
    fn closed(&self, reason: CloseReason, notice: String) -> Self::Frame;
    /// What keeps an idle stream alive, if the transport sends it itself.
    fn heartbeat(&self) -> Option<Self::Frame> {
        None
    }
}

/// The body stream of `source`: replay, live messages, then the closing frame; every
/// `beat` without a message, the encoder's heartbeat. A live message counts as delivered
/// once its frame is handed to the connection.
pub(crate) fn frames<E>(
    source: Source,
    encoder: E,
    beat: Option<Duration>,
) -> impl Stream<Item = E::Frame> + Send
where
    E: Encoder + Send + Sync + 'static,
    E::Frame: Send,
{
    let encoder = Arc::new(encoder);
    stream::unfold(Some(source), move |source| {
        let encoder = encoder.clone();
        async move {
            let mut source = source?;
            let waited = match (beat, encoder.heartbeat().is_some()) {
                (Some(every), true) => tokio::time::timeout(every, source.next()).await.ok(),
                _ => Some(source.next().await),
            };
            let (frame, more) = match waited {
                None => (encoder.heartbeat()?, true),
                Some(Next::Replayed(f)) => (encoder.message(f.key.as_ref(), &f.json), true),
                Some(Next::Message(delivery)) => {
                    let frame = encoder.message(Some(&delivery.message.key), &delivery.json);
                    delivery.mark_delivered();
                    (frame, true)
                }
                Some(Next::Closed(reason)) => (encoder.closed(reason, source.close_notice(reason)), false),
            };
            Some((frame, more.then_some(source)))
        }
    })
}
