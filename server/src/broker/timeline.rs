//! Queue history: the last hour of each queue's figures (length, added, taken, delivered,
//! consumers), one point per step, sampled by this process. On a shared store the counts are
//! every process's (each reports its own with its presence) and the length is the store's,
//! so any process draws the cluster's hour from when it started.
//!
//! Bounded: an hour of points per queue, and at most [`MAX_POINTS`] points in all (queues
//! beyond that are not tracked until others leave); a queue with no point for an hour is
//! forgotten.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::time::Duration;

use restmq_shared::{HistoryPoint, HistoryReply, QueueName};

use super::roster::unix_secs;
use super::{Broker, BrokerResult};

/// The window kept per queue.
const WINDOW: Duration = Duration::from_secs(3600);

/// Points kept in all queues together (about 17 MB).
pub const MAX_POINTS: usize = 360_000;

/// Every queue's points, oldest first, and the counts last seen of each process.
#[derive(Default)]
pub(super) struct Timeline {
    queues: BTreeMap<QueueName, VecDeque<HistoryPoint>>,
    /// Added, taken, delivered and the serial of the counting state, per (process, queue),
    /// at the last sample.
    seen: HashMap<(String, String), [u64; 4]>,
}

impl Broker {
    /// Samples every queue's figures each step until shutdown.
    pub(super) async fn run_timeline(&self) {
        let step = self.config().timeline_step;
        let mut tick = tokio::time::interval(step);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = self.shutdown_token().cancelled() => return,
            }
            if let Err(err) = self.sample().await {
                tracing::debug!(%err, "could not sample queue figures");
            }
        }
    }

    /// One point for every queue that exists or moved in this step.
    async fn sample(&self) -> BrokerResult<()> {
        let mut points: BTreeMap<QueueName, HistoryPoint> = BTreeMap::new();
        let t = unix_secs();
        for (queue, info) in self.all_infos().await? {
            if let Some(info) = info {
                points.insert(queue, HistoryPoint { t, len: info.len, ..HistoryPoint::default() });
            }
        }
        // Every process's counts since it started, and its consumers.
        let mut counts: Vec<(String, String, [u64; 4])> = Vec::new();
        for hub in self.all_hubs() {
            let c = &hub.counters;
            let [added, taken, delivered] =
                [&c.added, &c.taken, &c.delivered].map(|c| c.load(Ordering::Relaxed));
            counts.push((String::new(), hub.queue.to_string(), [added, taken, delivered, hub.serial]));
            let n = hub.consumer_count() as u64;
            if n > 0 {
                point(&mut points, &hub.queue, t).consumers += n;
            }
        }
        for node in self.other_nodes().await? {
            for (queue, n) in &node.consumers {
                if let Ok(queue) = QueueName::try_from(queue.as_str()) {
                    point(&mut points, &queue, t).consumers += n;
                }
            }
            counts.extend(node.counters.into_iter().map(|(queue, now)| (node.id.clone(), queue, now)));
        }
        let mut timeline = self.timeline();
        let mut seen = HashMap::with_capacity(counts.len());
        for (node, queue, now) in counts {
            let before = timeline.seen.get(&(node.clone(), queue.clone())).copied().unwrap_or_default();
            // Counts under another serial started again from 0 (a queue's state made anew);
            // a count below the last one, too (its process restarted).
            let fresh = before[3] != now[3];
            let moved: [u64; 3] =
                std::array::from_fn(
                    |i| if fresh || now[i] < before[i] { now[i] } else { now[i] - before[i] },
                );
            if moved != [0; 3] {
                if let Ok(queue) = QueueName::try_from(queue.as_str()) {
                    let p = point(&mut points, &queue, t);
                    (p.added, p.taken, p.delivered) =
                        (p.added + moved[0], p.taken + moved[1], p.delivered + moved[2]);
                }
            }
            seen.insert((node, queue), now);
        }
        timeline.seen = seen;
        timeline.record(points, self.config().timeline_step, t);
        Ok(())
    }

    /// The last hour of `queue`'s figures, oldest first.
    pub fn queue_history(&self, queue: &QueueName) -> HistoryReply {
        let points =
            self.timeline().queues.get(queue).map(|p| p.iter().copied().collect()).unwrap_or_default();
        HistoryReply { queue: queue.clone(), step: self.config().timeline_step.as_secs().max(1), points }
    }

    fn timeline(&self) -> std::sync::MutexGuard<'_, Timeline> {
        self.inner.timeline.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The point of `queue` in this sample, made on first use.
fn point<'a>(
    points: &'a mut BTreeMap<QueueName, HistoryPoint>,
    queue: &QueueName,
    t: u64,
) -> &'a mut HistoryPoint {
    points.entry(queue.clone()).or_insert_with(|| HistoryPoint { t, ..HistoryPoint::default() })
}

impl Timeline {
    /// Appends this sample's points, keeping an hour per queue and [`MAX_POINTS`] in all.
    fn record(&mut self, points: BTreeMap<QueueName, HistoryPoint>, step: Duration, t: u64) {
        let per_queue = (WINDOW.as_secs() / step.as_secs().max(1)).max(1) as usize;
        let oldest = t.saturating_sub(WINDOW.as_secs());
        self.queues.retain(|_, series| series.back().is_some_and(|p| p.t > oldest));
        let mut total: usize = self.queues.values().map(VecDeque::len).sum();
        for (queue, p) in points {
            let tracked = self.queues.contains_key(&queue);
            if !tracked && total + per_queue > MAX_POINTS {
                continue;
            }
            let series = self.queues.entry(queue).or_default();
            series.push_back(p);
            total += 1;
            while series.len() > per_queue || series.front().is_some_and(|p| p.t <= oldest) {
                series.pop_front();
                total -= 1;
            }
        }
    }
}
