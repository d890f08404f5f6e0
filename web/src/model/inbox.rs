//! Where messages wait for the next animation frame, and the batch one frame hands the reducer.

use std::collections::VecDeque;

use restmq_shared::StreamMessage;

use super::HISTORY_CAP;

/// Messages received since the last animation frame: the newest [`HISTORY_CAP`] of them, and
/// how many arrived in all.
#[derive(Debug, Default)]
pub struct Inbox {
    pending: VecDeque<StreamMessage>,
    received: u64,
}

impl Inbox {
    pub fn push(&mut self, message: StreamMessage) {
        self.received += 1;
        if self.pending.len() == HISTORY_CAP {
            self.pending.pop_front();
        }
        self.pending.push_back(message);
    }

    /// Empties the inbox into one batch.
    pub fn take(&mut self) -> Batch {
        Batch {
            messages: std::mem::take(&mut self.pending).into(),
            received: std::mem::take(&mut self.received),
        }
    }
}

/// What one animation frame hands the reducer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Batch {
    /// The newest messages, oldest first.
    pub messages: Vec<StreamMessage>,
    /// Messages received, including those the inbox dropped.
    pub received: u64,
}
