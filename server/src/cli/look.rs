//! `restmq browse` and `restmq consumers`: looking at a queue without taking from it.

use std::fmt::Write as _;

use restmq_shared::{BrowseReply, ConsumersReply, MessageKey, QueueName};

use super::client::{CliError, Client};
use super::ServerArg;

#[derive(Debug, clap::Args)]
pub struct BrowseArgs {
    /// The queue.
    pub queue: QueueName,

    /// Messages per page (1 to 1000).
    #[arg(long, default_value_t = 50)]
    pub limit: usize,

    /// Start after this key.
    #[arg(long)]
    pub after: Option<MessageKey>,

    /// Every page, not only the first.
    #[arg(long)]
    pub all: bool,

    /// The leased messages instead of the waiting ones.
    #[arg(long)]
    pub leased: bool,

    /// Print the server's JSON, one page per line, instead of a table.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub server: ServerArg,
}

#[derive(Debug, clap::Args)]
pub struct ConsumersArgs {
    /// The queue.
    pub queue: QueueName,

    /// Print the server's JSON instead of a table.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub server: ServerArg,
}

/// `browse`: the waiting (or leased) messages, oldest first, taking none.
pub async fn browse(args: BrowseArgs) -> Result<(), CliError> {
    let client = Client::new(&args.server)?;
    let mut after = args.after.clone();
    let mut header = true;
    loop {
        let mut query = vec![("limit", args.limit.to_string())];
        query.extend(after.as_ref().map(|k| ("after", k.to_string())));
        if args.leased {
            query.push(("leased", "1".to_owned()));
        }
        let request = client.http.get(client.url(&format!("/browse/{}", args.queue))).query(&query);
        let (_, body) = client.text(request).await?;
        let page: BrowseReply = decode(&body)?;
        if args.json {
            println!("{}", body.trim_end());
        } else {
            print!("{}", page_table(&page, std::mem::take(&mut header)));
        }
        match page.next {
            Some(next) if args.all => after = Some(next),
            _ => return Ok(()),
        }
    }
}

fn page_table(page: &BrowseReply, header: bool) -> String {
    let now_ms = now_ms();
    let mut out = String::new();
    if header {
        let _ = writeln!(out, "{} waiting in {}", page.len, page.queue);
        let _ = writeln!(out, "{:<24} {:>8} {:>5} {:>9}  VALUE", "KEY", "BYTES", "READS", "EXPIRES");
    }
    for m in &page.messages {
        let ends = m.deadline.or(m.expires).map_or_else(|| "-".to_owned(), |at| secs_from(now_ms, at));
        let value: String = m.value.chars().map(|c| if c.is_control() { ' ' } else { c }).take(60).collect();
        let _ = writeln!(
            out,
            "{:<24} {:>8} {:>5} {:>9}  {value}",
            m.key.to_string(),
            m.value.len(),
            m.count,
            ends
        );
    }
    out
}

/// `consumers`: every streaming connection on the queue, on every process.
pub async fn consumers(args: ConsumersArgs) -> Result<(), CliError> {
    let client = Client::new(&args.server)?;
    let (_, body) = client.text(client.http.get(client.url(&format!("/consumers/{}", args.queue)))).await?;
    if args.json {
        println!("{}", body.trim_end());
        return Ok(());
    }
    let reply: ConsumersReply = decode(&body)?;
    let now = now_ms() / 1000;
    let mut out = format!(
        "{:<9} {:<6} {:<22} {:>8} {:>10} {:<4} NODE\n",
        "MODE", "VIA", "CLIENT", "FOR", "DELIVERED", "ACK"
    );
    for c in &reply.consumers {
        let _ = writeln!(
            out,
            "{:<9} {:<6} {:<22} {:>7}s {:>10} {:<4} {}",
            c.mode,
            c.transport,
            c.addr,
            now.saturating_sub(c.since),
            c.delivered,
            if c.ack { "yes" } else { "no" },
            c.node
        );
    }
    print!("{out}");
    Ok(())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// `at` (Unix ms) as seconds from now, e.g. `in 30s`.
fn secs_from(now_ms: u64, at: u64) -> String {
    format!("{}s", at.saturating_sub(now_ms) / 1000)
}

fn decode<T: serde::de::DeserializeOwned>(body: &str) -> Result<T, CliError> {
    serde_json::from_str(body).map_err(|e| CliError::Other(format!("unexpected answer from the server: {e}")))
}
