//! Wire types shared by the restmq server and the browser client: names, keys, the JSON
//! protocol, replies and error codes. Builds for native targets and `wasm32-unknown-unknown`.
//!
//! # Layout
//! - [`name`]: `QueueName` and `MessageKey`, validated once.
//! - [`queue`]: `Policy` and `QueueStatus`.
//! - [`protocol`]: the JSON protocol of `POST /queue` (`Command`, replies).
//! - [`reply`]: the JSON bodies of the REST routes and streams.
//! - [`look`]: browse, history and consumers list (looking without taking).
//! - [`error`]: `ErrorCode` and the `{"error":{"code","message"}}` body.

pub mod error;
pub mod look;
pub mod name;
pub mod protocol;
pub mod queue;
pub mod reply;

pub use error::{ErrorBody, ErrorCode, ErrorResponse};
pub use look::*;
pub use name::{MessageKey, NameError, QueueName};
pub use protocol::{Command, CommandReply};
pub use queue::{Policy, QueueStatus};
pub use reply::*;
