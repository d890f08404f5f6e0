//! The `restmq` binary: parses the command line, sets up logging, binds, and runs.

use clap::Parser;
use restmq_server::config::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    restmq_server::telemetry::init();
    match cli.command {
        Command::Serve(config) => {
            let listener = tokio::net::TcpListener::bind(config.listen).await?;
            restmq_server::run(config, listener, restmq_server::shutdown::on_signal()).await
        }
    }
}
