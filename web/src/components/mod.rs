//! Presentation components: props in, HTML out, no IO.

mod queue_table;

pub use queue_table::QueueTable;
