//! `restmq pop`, `stats`, `policy`, `pause` and `resume`: one request each.

use std::fmt::Write as _;

use restmq_shared::{GetReply, Policy, PolicyReply, QueueName, QueueStats, StatsReply};

use super::client::{CliError, Client};
use super::ServerArg;

#[derive(Debug, clap::Args)]
pub struct QueueArgs {
    /// The queue.
    pub queue: QueueName,

    #[command(flatten)]
    pub server: ServerArg,
}

#[derive(Debug, clap::Args)]
pub struct PopArgs {
    /// The queue.
    pub queue: QueueName,

    /// Leave the message in the queue (a soft get).
    #[arg(long)]
    pub soft: bool,

    /// Print the whole answer (`{"key","value","count"}`) instead of the value.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub server: ServerArg,
}

#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// Only this queue.
    pub queue: Option<QueueName>,

    /// Print the server's JSON instead of a table.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub server: ServerArg,
}

#[derive(Debug, clap::Args)]
pub struct PolicyArgs {
    /// The queue.
    pub queue: QueueName,

    /// `broadcast` or `roundrobin`; without it, the current policy is shown.
    #[arg(value_parser = parse_policy)]
    pub policy: Option<Policy>,

    #[command(flatten)]
    pub server: ServerArg,
}

fn parse_policy(text: &str) -> Result<Policy, String> {
    Policy::parse(text).ok_or_else(|| "must be broadcast or roundrobin".to_owned())
}

/// `pop`: prints the value (or the JSON answer); an empty queue exits with 4.
pub async fn pop(args: PopArgs) -> Result<(), CliError> {
    let client = Client::new(&args.server)?;
    let mut request = client.http.get(client.url(&format!("/q/{}", args.queue)));
    if args.soft {
        request = request.query(&[("soft", "1")]);
    }
    let (status, body) = client.text(request).await?;
    if status == 204 {
        return Err(CliError::Nothing(format!("queue {} is empty", args.queue)));
    }
    if args.json {
        println!("{}", body.trim_end());
        return Ok(());
    }
    let reply: GetReply = decode(&body)?;
    println!("{}", reply.value);
    Ok(())
}

/// `stats`: a table of queues and feeds, or the server's JSON.
pub async fn stats(args: StatsArgs) -> Result<(), CliError> {
    let client = Client::new(&args.server)?;
    let path = match &args.queue {
        Some(queue) => format!("/stats/{queue}"),
        None => "/stats/".to_owned(),
    };
    let (_, body) = client.text(client.http.get(client.url(&path))).await?;
    if args.json {
        println!("{}", body.trim_end());
        return Ok(());
    }
    let table = match args.queue {
        Some(_) => queue_table(&[decode::<QueueStats>(&body)?]),
        None => {
            let stats: StatsReply = decode(&body)?;
            let queues: Vec<QueueStats> = stats.queues.into_values().collect();
            let mut out = format!("{}store: {}\n", queue_table(&queues), stats.store);
            if !stats.feeds.is_empty() {
                let _ = writeln!(
                    out,
                    "\n{:<24} {:<9} {:<20} {:>10} {:>9} {:>7} {:>10}",
                    "FEED", "KIND", "QUEUE", "PUBLISHED", "FILTERED", "ERRORS", "RECONNECTS"
                );
                for (name, f) in &stats.feeds {
                    let _ = writeln!(
                        out,
                        "{name:<24} {:<9} {:<20} {:>10} {:>9} {:>7} {:>10}",
                        f.kind, f.queue, f.published, f.filtered, f.errors, f.reconnects
                    );
                }
            }
            out
        }
    };
    print!("{table}");
    Ok(())
}

fn queue_table(queues: &[QueueStats]) -> String {
    let mut out = format!(
        "{:<24} {:>9} {:<8} {:<10} {:>9} {:>9} {:>9} {:>9}\n",
        "QUEUE", "LEN", "STATUS", "POLICY", "CONSUMERS", "ADDED", "TAKEN", "DELIVERED"
    );
    for q in queues {
        let _ = writeln!(
            out,
            "{:<24} {:>9} {:<8} {:<10} {:>9} {:>9} {:>9} {:>9}",
            q.name.as_str(),
            q.len,
            q.state.as_str(),
            q.policy_name.as_str(),
            q.consumers,
            q.added,
            q.taken,
            q.delivered
        );
    }
    out
}

/// `policy`: shows the policy, or sets it and says so.
pub async fn policy(args: PolicyArgs) -> Result<(), CliError> {
    let client = Client::new(&args.server)?;
    let url = client.url(&format!("/p/{}", args.queue));
    match args.policy {
        None => {
            let (_, body) = client.text(client.http.get(url)).await?;
            let reply: PolicyReply = decode(&body)?;
            println!("{}", reply.value);
        }
        Some(policy) => {
            client.text(client.http.post(url).form(&[("policy", policy.as_str())])).await?;
            eprintln!("{}: policy is now {policy}", args.queue);
        }
    }
    Ok(())
}

/// `pause` / `resume`: `POST /control/<queue>` with `stop` / `start`.
pub async fn control(args: QueueArgs, start: bool) -> Result<(), CliError> {
    let client = Client::new(&args.server)?;
    let status = if start { "start" } else { "stop" };
    let request =
        client.http.post(client.url(&format!("/control/{}", args.queue))).form(&[("status", status)]);
    client.text(request).await?;
    eprintln!("{}: {}", args.queue, if start { "started" } else { "paused" });
    Ok(())
}

fn decode<T: serde::de::DeserializeOwned>(body: &str) -> Result<T, CliError> {
    serde_json::from_str(body).map_err(|e| CliError::Other(format!("unexpected answer from the server: {e}")))
}
