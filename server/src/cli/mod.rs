//! The client commands of the `restmq` binary: `push`, `pop`, `tail`, `browse`, `consumers`,
//! `stats`, `policy`, `pause` and `resume`, talking to a server over HTTP and WebSocket.
//!
//! Output goes to stdout, messages for people to stderr. Exit codes: 0 done, 1 the server
//! answered an error, 2 bad usage, 3 the server cannot be reached, 4 nothing to show (empty
//! queue on `pop`, `tail --count` not reached before `--timeout`).
//!
//! # Layout
//! - [`client`]: the HTTP client, server URLs and error answers.
//! - [`push`]: `push`, one value or standard input's lines, in order.
//! - [`tail`]: `tail` over WebSocket.
//! - [`look`]: `browse` and `consumers`, which take nothing.
//! - [`admin`]: `pop`, `stats`, `policy`, `pause`, `resume`.

pub mod admin;
pub mod client;
pub mod look;
pub mod push;
pub mod tail;

use std::process::ExitCode;

use clap::Subcommand;

pub use crate::remote::{describe_reqwest, ServerArg};
pub use client::CliError;

/// The client commands; `config::Command` flattens them into the top level.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Add a message, or one message per line of standard input (VALUE `-` or none).
    Push(push::PushArgs),
    /// Take the oldest message of a queue (or only look with --soft) and print its value.
    Pop(admin::PopArgs),
    /// Stream a queue's messages over WebSocket, one JSON line each (--observe: take none).
    Tail(tail::TailArgs),
    /// List a queue's waiting (or leased) messages, oldest first, taking none.
    Browse(look::BrowseArgs),
    /// List who streams from a queue: consumers and observers, on every process.
    Consumers(look::ConsumersArgs),
    /// Show every queue's figures and the feeds' counters.
    Stats(admin::StatsArgs),
    /// Show a queue's delivery policy, or set it.
    Policy(admin::PolicyArgs),
    /// Pause streaming delivery of a queue (messages accumulate).
    Pause(admin::QueueArgs),
    /// Resume streaming delivery of a queue.
    Resume(admin::QueueArgs),
}

/// Runs a client command, printing any error on stderr; returns the exit code.
pub async fn run(command: ClientCommand) -> ExitCode {
    let result = match command {
        ClientCommand::Push(args) => push::run(args).await,
        ClientCommand::Pop(args) => admin::pop(args).await,
        ClientCommand::Tail(args) => tail::run(args).await,
        ClientCommand::Browse(args) => look::browse(args).await,
        ClientCommand::Consumers(args) => look::consumers(args).await,
        ClientCommand::Stats(args) => admin::stats(args).await,
        ClientCommand::Policy(args) => admin::policy(args).await,
        ClientCommand::Pause(args) => admin::control(args, false).await,
        ClientCommand::Resume(args) => admin::control(args, true).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("restmq: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}
