//! A `kill -9` at every crash point (see `crash`) of a scenario on one queue log: its
//! creation, adds across rollovers, takes that leave (remove) segments, an emptied log whose
//! next add opens a segment, reopening and going on.
//!
//! What must hold after each crash, once the directory is opened again (it must open):
//! - every add acknowledged (its `append` returned) is on the log exactly once, in order,
//!   unless a take was acknowledged for it;
//! - a message whose take was acknowledged (its `take` returned) never comes back;
//! - the step in flight may have happened or not: an add in flight may be on the log (after
//!   the acknowledged ones); a take in flight may have taken its message — a hard get's
//!   message leaves the log when the head's mark is stored, before it is answered, so a crash
//!   between the two loses that one message, never answered (at most once) — or not (it is
//!   served again: it was never answered either);
//! - the log goes on: a next add and take work, and they survive a reopen;
//! - nothing is left behind: the directory holds the state page and the log's segments only.
//!
//! The scenario runs twice: with its file work inline, and with a background
//! (`QueueLog::open_in`) whose work runs after each step on the same thread (so the points are
//! the same in each run): spares made, placed (synced, renamed), the segments the tail left
//! synced, those the head left unlinked after the state page is synced — but for the adds 27
//! to 30, a burst the background does not keep up with (their rollover makes its segment
//! inline while a spare is not placed yet).

use super::*;
use crate::store::embedded::crash;

/// Message n's payload size: with its number and frame, message 1 does not fit the first
/// segment (replaced by one of 128 KiB, which 1 to 4 fill); 5 to 20 fill the next (256 KiB)
/// exactly; 27 to 30 are large enough to roll the one after over.
fn size(n: u64) -> usize {
    match n {
        1 => 70_000,
        27.. => 150_000,
        _ => 16_000,
    }
}

#[derive(Debug, Clone, Copy)]
enum Step {
    /// A new log (numbered after 0).
    Create,
    Add(u64),
    /// Takes message n (the oldest).
    Take(u64),
    Reopen,
}

fn scenario() -> Vec<Step> {
    use Step::*;
    let mut steps = vec![Create];
    // The first segment replaced, then one rollover to a segment filled exactly.
    steps.extend((1..=20).map(Add));
    // Leaves the first segment (removed).
    steps.extend((1..=6).map(Take));
    steps.push(Reopen);
    // Empties the log at the end of its full segment: the next add opens a segment.
    steps.extend((7..=20).map(Take));
    steps.extend((21..=26).map(Add));
    steps.push(Reopen);
    steps.extend((21..=23).map(Take));
    // Across a rollover of a non-empty log.
    steps.extend((27..=30).map(Add));
    // Leaves the segment of 21 (removed).
    steps.extend((24..=30).map(Take));
    steps.push(Reopen);
    steps
}

fn body(n: u64) -> Vec<u8> {
    let mut m = n.to_le_bytes().to_vec();
    m.resize(size(n), b'x');
    m
}

/// The scenario, in the child process: each step acknowledged once it returned.
#[test]
fn child() {
    run_child(false);
}

/// The scenario with a background, in the child process.
#[test]
fn child_in_background() {
    run_child(true);
}

fn run_child(in_background: bool) {
    let Some(dir) = crash::child_dir() else { return };
    let background = Arc::new(Background::default());
    let mut log = None;
    for (i, step) in scenario().into_iter().enumerate() {
        match step {
            Step::Create | Step::Reopen => {
                drop(log.take());
                log = Some(match in_background {
                    true => QueueLog::open_in(&dir, 0, &background).unwrap(),
                    false => QueueLog::open(&dir, 0).unwrap(),
                });
            }
            Step::Add(n) => log.as_mut().unwrap().append(n, &body(n)).unwrap(),
            Step::Take(n) => assert_eq!(log.as_mut().unwrap().take().unwrap(), Some(n)),
        }
        // A burst: 27 to 30 do not wait for the background (done with the take of 24).
        if !matches!(step, Step::Add(27..=30)) {
            background.work();
        }
        let sizes: Vec<u64> =
            segment_files(&dir).unwrap().iter().map(|(_, p)| std::fs::metadata(p).unwrap().len()).collect();
        // The layout the scenario's comments say.
        match step {
            Step::Add(1) => assert_eq!(sizes, [128 << 10], "the first segment replaced"),
            Step::Add(20) => assert_eq!(sizes, [128 << 10, 256 << 10]),
            Step::Take(6) => assert_eq!(sizes, [256 << 10], "the first segment left"),
            Step::Add(21) => assert_eq!(sizes, [512 << 10], "the emptied log rolled over"),
            Step::Add(30) if !in_background => assert_eq!(sizes, [512 << 10, 1 << 20]),
            Step::Take(30) => assert_eq!(sizes, [1 << 20]),
            _ => {}
        }
        crash::ack(i);
    }
    crash::finish();
}

/// What the log may hold after a crash with the first `acked` steps acknowledged.
fn allowed(acked: usize) -> Vec<Vec<u64>> {
    let steps = scenario();
    let (mut added, mut taken) = (Vec::new(), 0);
    for step in &steps[..acked] {
        match *step {
            Step::Add(n) => added.push(n),
            Step::Take(_) => taken += 1,
            Step::Create | Step::Reopen => {}
        }
    }
    let waiting = added[taken..].to_vec();
    let mut allowed = vec![waiting.clone()];
    match steps.get(acked) {
        Some(Step::Add(n)) => allowed.push([&waiting[..], &[*n]].concat()),
        Some(Step::Take(n)) => {
            assert_eq!(waiting.first(), Some(n), "the scenario takes in order");
            allowed.push(waiting[1..].to_vec());
        }
        _ => {}
    }
    allowed
}

/// The messages on `log`, their payloads checked.
fn messages(log: &QueueLog) -> Vec<u64> {
    let peeked = log.peek(usize::MAX).unwrap();
    for (n, payload) in &peeked {
        assert!(*payload == body(*n), "message {n}'s payload");
    }
    peeked.into_iter().map(|(n, _)| n).collect()
}

/// Only the state page and the log's segments are in `dir`.
fn nothing_left_behind(log: &QueueLog, dir: &Path) {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    let mut expected: Vec<String> =
        log.segments.iter().map(|(first, _)| format!("{first:020}.seg")).collect();
    expected.push(STATE.to_owned());
    assert_eq!(names, expected);
}

/// After a crash at any point of the scenario the log opens, with every acknowledged add once
/// and in order, no acknowledged take back, and goes on (see the module's doc).
#[test]
fn a_crash_at_any_point_keeps_every_acknowledged_step() {
    each_crash_of("child");
}

/// The same with the file work left to a background (spares, deferred renames, syncs and
/// unlinks).
#[test]
fn a_crash_at_any_point_with_a_background_keeps_every_acknowledged_step() {
    each_crash_of("child_in_background");
}

fn each_crash_of(child: &str) {
    let test = format!("{}::{child}", module_path!().split_once("::").unwrap().1);
    let points = crash::each_crash(&test, |k, dir, acked| {
        let mut log = QueueLog::open(dir, 0)
            .unwrap_or_else(|e| panic!("crash point {k} (after {acked} steps): the log does not open: {e}"));
        let found = messages(&log);
        let allowed = allowed(acked);
        assert!(
            allowed.contains(&found),
            "crash point {k} (after {acked} steps): found {found:?}, expected one of {allowed:?}"
        );
        nothing_left_behind(&log, dir);
        let next = log.last_number() + 1;
        log.append(next, &body(next)).unwrap();
        drop(log);
        let mut log = QueueLog::open(dir, 0).unwrap();
        let all = [&found[..], &[next]].concat();
        assert_eq!(messages(&log), all, "crash point {k}: the add after the crash");
        for n in all {
            assert_eq!(log.take().unwrap(), Some(n), "crash point {k}: taken after the crash");
        }
        assert!(log.is_empty());
        nothing_left_behind(&log, dir);
    });
    assert!(points > 200, "every step crossed its points: {points}");
}
