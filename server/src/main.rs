//! The `restmq` binary: parses the command line, sets up logging, raises the open-file limit,
//! binds, and runs the server, a standalone feed, or a client command.

use std::num::NonZeroUsize;
use std::process::ExitCode;

use clap::Parser;
use restmq_server::config::{Cli, Command};

/// mimalloc: faster than the system allocator for the many small, short-lived allocations
/// of request handling.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<ExitCode> {
    let args = match restmq_server::config_file::with_config_file(std::env::args_os().collect()) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("restmq: {message}");
            return Ok(ExitCode::from(2));
        }
    };
    runtime()?.block_on(run(Cli::parse_from(args)))
}

/// On one core, a current-thread runtime: no hand-offs between threads that cannot run at
/// the same time anyway. On more, one worker thread per core.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let mut builder = if cores == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    builder.enable_all().build()
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(config) => {
            restmq_server::telemetry::init();
            restmq_server::connection::raise_fd_limit();
            let listener = tokio::net::TcpListener::bind(config.listen).await?;
            restmq_server::run(config, listener, restmq_server::shutdown::on_signal()).await?;
        }
        Command::Feed(config) => {
            restmq_server::telemetry::init();
            restmq_server::feed::run_standalone(config, restmq_server::shutdown::on_signal()).await?;
        }
        // Client commands keep stdout for their output: no log subscriber.
        Command::Client(command) => return Ok(restmq_server::cli::run(command).await),
    }
    Ok(ExitCode::SUCCESS)
}
