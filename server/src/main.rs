//! The `restmq` binary: parses the command line, sets up logging, binds, and runs the server,
//! a standalone feed, or a client command.

use std::process::ExitCode;

use clap::Parser;
use restmq_server::config::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(config) => {
            restmq_server::telemetry::init();
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
