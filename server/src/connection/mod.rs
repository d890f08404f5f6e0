//! Accepting and serving connections: HTTP/1.1 on hyper, every connection bounded in time
//! and in number, and a shutdown that ends within the grace whatever clients do.
//!
//! - A request's head must be complete within the header-read timeout of its first byte (of
//!   connecting, for the first request); a keep-alive connection may wait for its next request
//!   for the idle timeout. hyper's own `header_read_timeout` also runs while a connection idles,
//!   so it cannot tell the two apart: `activity` does, and the connection's task closes it.
//! - At most `max_connections` are open (by default the open-file limit less a reserve). When
//!   full, or when `accept` runs out of file descriptors, the connection that has waited longest
//!   for a request is closed to make room: stalled sockets cannot keep health checks out.
//!   `accept` errors never stop the loop, and it pauses rather than spins.
//! - At shutdown the listener closes, idle connections close, requests in progress and streams
//!   get the grace; then every connection still open is cut: its socket fails, so a client that
//!   never reads cannot hold a write (or a WebSocket task) past the grace.
//!
//! # Layout
//! - `activity`: a connection's phase and deadline.
//! - `io`: the socket wrapper (reads noted, slot held, cut, error pages).
//! - `error_page`: JSON bodies for hyper's own `400`/`414`/`431` answers.
//! - `service`: the router as a connection's hyper service.

mod activity;
mod error_page;
mod io;
mod service;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::activity::{Activity, Timeouts};
use self::io::TrackedIo;
pub use self::service::ConnectionCut;
use self::service::ConnectionService;
use crate::config::ServeConfig;

/// How long tasks get, once cut, to notice it.
const AFTER_CUT: Duration = Duration::from_secs(1);

/// Bounds on connections.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub timeouts: Timeouts,
    pub max_connections: usize,
    /// From the shutdown signal to the cut.
    pub grace: Duration,
}

impl Limits {
    pub fn from_config(config: &ServeConfig) -> Self {
        Self {
            timeouts: Timeouts {
                header_read: Duration::from_secs(config.header_read_timeout_secs.max(1)),
                idle: Duration::from_secs(config.idle_timeout_secs.max(1)),
            },
            max_connections: match config.max_connections {
                0 => default_max_connections(),
                n => n,
            },
            grace: Duration::from_secs(config.shutdown_grace_secs),
        }
    }
}

/// Raises the soft open-file limit to the hard one (as Go programs do at start); returns it.
pub fn raise_fd_limit() -> Option<u64> {
    rlimit::increase_nofile_limit(u64::MAX).ok()
}

/// The open-file limit less a reserve (an eighth, at least 64) for the store, feeds, static
/// files and health checks.
fn default_max_connections() -> usize {
    let files = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft);
    let reserve = (files / 8).max(64);
    usize::try_from(files.saturating_sub(reserve)).unwrap_or(usize::MAX).clamp(8, 1 << 20)
}

/// Serves `router` on `listener` until `stop`; then stops accepting and gives connections and
/// `streams` (tasks that hold upgraded sockets) the grace to finish, and cuts what is left.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    stop: CancellationToken,
    streams: &TaskTracker,
) {
    let open = Arc::new(Open::default());
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let cut = CancellationToken::new();
    let connections = TaskTracker::new();
    let mut http = http1::Builder::new();
    // Timeouts are the connection task's (see the module documentation).
    http.header_read_timeout(None);
    let mut accept_warned = None;
    loop {
        let (stream, peer) = tokio::select! {
            accepted = accept(&listener, &open, &mut accept_warned) => accepted,
            () = stop.cancelled() => break,
        };
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) if open.close_longest_waiting() => {
                match tokio::time::timeout(AFTER_CUT, slots.clone().acquire_owned()).await {
                    Ok(Ok(slot)) => slot,
                    _ => continue,
                }
            }
            Err(_) => {
                tracing::debug!(%peer, "connection refused: every connection is busy");
                continue;
            }
        };
        if let Err(err) = stream.set_nodelay(true) {
            // No Nagle: a message frame goes out at once, not after the ACK of the one before.
            tracing::debug!(%err, "TCP_NODELAY refused");
        }
        let activity = Arc::new(Activity::new(Instant::now()));
        let conn_cut = cut.child_token();
        let entry = open.insert(Watched { activity: activity.clone(), cut: conn_cut.clone() });
        let io = TrackedIo::new(stream, activity.clone(), conn_cut.clone(), slot);
        let service = ConnectionService {
            router: router.clone(),
            peer,
            activity: activity.clone(),
            cut: conn_cut.clone(),
        };
        let conn = http.serve_connection(TokioIo::new(io), service).with_upgrades();
        let watch = Watch { activity, timeouts: limits.timeouts, stop: stop.clone(), cut: conn_cut };
        connections.spawn(async move {
            watch.drive(conn).await;
            drop(entry);
        });
    }
    drop(listener);
    connections.close();
    streams.close();
    let drained = async {
        connections.wait().await;
        streams.wait().await;
    };
    if tokio::time::timeout(limits.grace, drained).await.is_err() {
        tracing::warn!(
            connections = connections.len(),
            streams = streams.len(),
            "still open at the end of the shutdown grace: closing them"
        );
        cut.cancel();
        let cut_off = async {
            connections.wait().await;
            streams.wait().await;
        };
        if tokio::time::timeout(AFTER_CUT, cut_off).await.is_err() {
            tracing::warn!(streams = streams.len(), "some tasks did not end after the cut");
        }
    }
    cut.cancel();
}

/// How often a failing `accept` is logged.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Accepts the next connection. Out of file descriptors (or memory), it closes the connection
/// that has waited longest for a request, or pauses; it never spins and never gives up.
/// `warned` is when that was last logged.
async fn accept(
    listener: &TcpListener,
    open: &Open,
    warned: &mut Option<Instant>,
) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(accepted) => return accepted,
            // The client gave up before it was accepted.
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::ConnectionReset
                ) => {}
            Err(err) => {
                if warned.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                    tracing::warn!(%err, "accept failed; closing a waiting connection or pausing");
                    *warned = Some(Instant::now());
                }
                let pause = if open.close_longest_waiting() { 10 } else { 100 };
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
        }
    }
}

/// One open connection, as the accept loop sees it.
struct Watched {
    activity: Arc<Activity>,
    cut: CancellationToken,
}

/// The connections being served (not those handed to a WebSocket).
#[derive(Default)]
struct Open {
    next: AtomicU64,
    watched: Mutex<HashMap<u64, Watched>>,
}

impl Open {
    fn insert(self: &Arc<Self>, watched: Watched) -> OpenEntry {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.watched.lock().unwrap_or_else(PoisonError::into_inner).insert(id, watched);
        OpenEntry { open: Arc::clone(self), id }
    }

    /// Cuts the connection that has waited longest for a request; false if none waits.
    fn close_longest_waiting(&self) -> bool {
        let mut watched = self.watched.lock().unwrap_or_else(PoisonError::into_inner);
        let longest = watched
            .iter()
            .filter_map(|(&id, w)| w.activity.waiting_since().map(|since| (since, id)))
            .min()
            .map(|(_, id)| id);
        match longest.and_then(|id| watched.remove(&id)) {
            Some(w) => {
                tracing::debug!("closing the connection that has waited longest, to make room");
                w.cut.cancel();
                true
            }
            None => false,
        }
    }
}

/// Removes its connection from [`Open`] on drop.
struct OpenEntry {
    open: Arc<Open>,
    id: u64,
}

impl Drop for OpenEntry {
    fn drop(&mut self) {
        self.open.watched.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.id);
    }
}

/// What ends one connection: its timeouts, shutdown and the cut.
struct Watch {
    activity: Arc<Activity>,
    timeouts: Timeouts,
    stop: CancellationToken,
    cut: CancellationToken,
}

impl Watch {
    async fn drive(self, conn: http1::UpgradeableConnection<TokioIo<TrackedIo>, ConnectionService>) {
        let mut conn = std::pin::pin!(conn);
        let mut draining = false;
        loop {
            // While serving, look again after a while: the request may end.
            let deadline = self
                .activity
                .deadline(&self.timeouts)
                .unwrap_or_else(|| Instant::now() + self.timeouts.header_read);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(err) = result {
                        tracing::debug!(%err, "connection ended");
                    }
                    return;
                }
                () = tokio::time::sleep_until(deadline.into()) => {
                    if self.activity.deadline(&self.timeouts).is_some_and(|d| d <= Instant::now()) {
                        tracing::debug!("closing a connection that stalled or idled past its timeout");
                        return;
                    }
                }
                () = self.stop.cancelled(), if !draining => {
                    draining = true;
                    conn.as_mut().graceful_shutdown();
                }
                () = self.cut.cancelled() => return,
            }
        }
    }
}
