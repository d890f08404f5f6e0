//! The broker's once-a-second sweep: replay history that has aged out is dropped, so a
//! queue that goes quiet frees it too.

use std::time::Duration;

use super::Broker;

/// How often the sweep runs.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

impl Broker {
    /// Sweeps every second until shutdown.
    pub(super) async fn run_sweeper(&self) {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = self.shutdown_token().cancelled() => return,
            }
            self.sweep_history();
        }
    }
}
