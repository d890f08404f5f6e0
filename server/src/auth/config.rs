//! The `restmq serve` flags of access control; every one is off unless given.

use std::path::PathBuf;

use super::ip::IpNet;

/// Tokens, address lists, `acl.conf` and CORS.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Access control (all off by default)")]
pub struct AuthConfig {
    /// Bearer tokens and their rights on queue patterns: a JSON file (format in the README).
    #[arg(long, value_name = "FILE", env = "RESTMQ_AUTH_TOKENS")]
    pub auth_tokens: Option<PathBuf>,

    /// Serve only clients in this address block (`10.0.0.0/8`, `127.0.0.1`); repeatable.
    #[arg(long, value_name = "CIDR", env = "RESTMQ_ALLOW_IP", value_delimiter = ',')]
    pub allow_ip: Vec<IpNet>,

    /// Never serve clients in this address block; repeatable; wins over `--allow-ip`.
    #[arg(long, value_name = "CIDR", env = "RESTMQ_DENY_IP", value_delimiter = ',')]
    pub deny_ip: Vec<IpNet>,

    /// Believe `X-Forwarded-For` from peers in this address block; repeatable.
    #[arg(long, value_name = "CIDR", env = "RESTMQ_TRUSTED_PROXY", value_delimiter = ',')]
    pub trusted_proxy: Vec<IpNet>,

    /// RestMQ's `acl.conf` (sections rest:producer, rest:consumer, comet:consumer,
    /// websocket:consumer); re-read when it changes.
    #[arg(long, value_name = "FILE", env = "RESTMQ_ACL")]
    pub acl: Option<PathBuf>,

    /// Answer CORS requests from this origin (`https://app.example.com`, or `*`); repeatable.
    #[arg(long, value_name = "ORIGIN", env = "RESTMQ_CORS_ORIGIN", value_delimiter = ',')]
    pub cors_origin: Vec<String>,
}
