//! The app's views, one per route: each owns its hooks and lays out components.

mod charts;
mod dashboard;
mod queue;
mod reduce;
mod stream;
mod worker;

pub use charts::ChartsView;
pub use dashboard::Dashboard;
pub use queue::QueueView;
pub use reduce::ReduceView;
pub use stream::StreamView;
pub use worker::WorkerView;
