//! NATS JetStream as a durable peer of the embedded store: each queue is a stream of its own
//! (subject = queue name) with work-queue retention and file storage. `publish` sends from K
//! connections (one async-nats client each), each waiting for its publish ack before the next;
//! `pop` fills the stream, then K connections take from one durable pull consumer: each asks
//! for one message without waiting (`{"batch":1,"no_wait":true}`) on a reply subject of its
//! own, acks it (`+ACK`, sent before its next request, as a consumer does), and stops at the
//! server's `404 No Messages`.

use std::net::SocketAddr;

use anyhow::{bail, Context as _};
use async_nats::jetstream::{self, consumer, stream};
use async_nats::{Client, StatusCode, Subject};
use bytes::Bytes;
use futures_util::StreamExt as _;

use crate::http_load::{closed_loop, send_all, take_all, PublishOpts, Publisher, Taker};
use crate::measure::Sample;
use crate::target::{payload, Target};

/// The durable pull consumer `pop` takes from.
const CONSUMER: &str = "pop";

/// One pull request: one message, answered at once (`404` when the stream has none ready).
const PULL_ONE: &[u8] = br#"{"batch":1,"no_wait":true}"#;

/// A client publishing one body to one subject, waiting for each publish ack.
struct Publish {
    js: jetstream::Context,
    subject: Subject,
    body: Bytes,
}

impl Publisher for Publish {
    async fn send(&mut self) -> anyhow::Result<()> {
        self.js.publish(self.subject.clone(), self.body.clone()).await?.await?;
        Ok(())
    }
}

/// Publishes `size`-byte messages to `queue` for a while from `opts.conns` connections, each
/// waiting for the publish ack of one message before it sends the next.
pub async fn publish(target: &Target, queue: &str, opts: &PublishOpts) -> anyhow::Result<Sample> {
    create_stream(&connect(target.addr).await?, queue).await?;
    let body = Bytes::from(payload(opts.size, 0));
    let subject = Subject::from(queue);
    let mut publishers = Vec::with_capacity(opts.conns);
    for _ in 0..opts.conns {
        let js = jetstream::new(connect(target.addr).await?);
        publishers.push(Publish { js, subject: subject.clone(), body: body.clone() });
    }
    closed_loop(target.pid, opts, publishers).await
}

/// A client pulling one message at a time from the durable consumer, acking each.
struct Pull {
    client: Client,
    next: Subject,
    inbox: Subject,
    replies: async_nats::Subscriber,
}

impl Taker for Pull {
    async fn take(&mut self) -> anyhow::Result<bool> {
        let request = Bytes::from_static(PULL_ONE);
        self.client.publish_with_reply(self.next.clone(), self.inbox.clone(), request).await?;
        let message = self.replies.next().await.context("the reply subscription ended")?;
        match message.status {
            None => {}
            Some(StatusCode::NOT_FOUND) => return Ok(false), // no message ready: the stream is drained
            Some(status) => bail!("pull request answered {status}: {:?}", message.description),
        }
        let reply = message.reply.context("a message without its ack subject")?;
        self.client.publish(reply, Bytes::from_static(b"+ACK")).await?;
        Ok(true)
    }

    /// The last ack is at the server before the CPU reading.
    async fn finish(&mut self) -> anyhow::Result<()> {
        Ok(self.client.flush().await?)
    }
}

/// Fills `queue`'s stream with `prefill` messages, then takes them with `conns` connections
/// from one durable pull consumer until it has none. The sample counts the messages taken.
pub async fn pop(
    target: &Target,
    queue: &str,
    conns: usize,
    size: usize,
    prefill: u64,
) -> anyhow::Result<Sample> {
    let stream = create_stream(&connect(target.addr).await?, queue).await?;
    let (body, subject) = (Bytes::from(payload(size, 0)), Subject::from(queue));
    let mut publishers = Vec::with_capacity(conns);
    for _ in 0..conns {
        let js = jetstream::new(connect(target.addr).await?);
        publishers.push(Publish { js, subject: subject.clone(), body: body.clone() });
    }
    send_all(publishers, prefill).await?;
    let config = consumer::pull::Config {
        durable_name: Some(CONSUMER.to_owned()),
        ack_policy: consumer::AckPolicy::Explicit,
        ..Default::default()
    };
    stream.create_consumer(config).await?;
    let next = Subject::from(format!("$JS.API.CONSUMER.MSG.NEXT.{queue}.{CONSUMER}"));
    let mut pulls = Vec::with_capacity(conns);
    for _ in 0..conns {
        let client = connect(target.addr).await?;
        let inbox = Subject::from(client.new_inbox());
        let replies = client.subscribe(inbox.clone()).await?;
        pulls.push(Pull { client, next: next.clone(), inbox, replies });
    }
    take_all(target.pid, pulls).await
}

/// Creates the stream `queue` on subject `queue`: work-queue retention, file storage, one
/// replica (the server's defaults for everything else).
async fn create_stream(client: &Client, queue: &str) -> anyhow::Result<stream::Stream> {
    let config = stream::Config {
        name: queue.to_owned(),
        subjects: vec![queue.to_owned()],
        retention: stream::RetentionPolicy::WorkQueue,
        storage: stream::StorageType::File,
        ..Default::default()
    };
    let js = jetstream::new(client.clone());
    js.create_stream(config).await.with_context(|| format!("creating the stream {queue}"))
}

/// A client connection of its own (one TCP connection).
async fn connect(addr: SocketAddr) -> anyhow::Result<Client> {
    let url = format!("nats://{addr}");
    async_nats::connect(url.as_str()).await.with_context(|| format!("connecting to {url}"))
}
