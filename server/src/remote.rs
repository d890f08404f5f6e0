//! Talking to a restmq server over HTTP, for the client commands and `restmq feed`: the
//! `--server` argument and how a failed request is described.

/// `--server`, shared by every client command and `restmq feed`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArg {
    /// URL of the restmq server.
    #[arg(long, env = "RESTMQ_SERVER", default_value = "http://127.0.0.1:8888")]
    pub server: String,
}

/// The innermost cause of a reqwest error ("Connection refused (os error 111)"), which says
/// more than its outer "error sending request".
pub fn describe_reqwest(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        return "timed out".to_owned();
    }
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text = cause.to_string();
        source = cause.source();
    }
    text
}
