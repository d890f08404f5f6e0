//! Tests of `queue_log`: order, numbering, reopening, torn marks, power loss, full disk.

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;

use super::*;
use crate::store::embedded::segment::tests::Tmpfs;

fn body(n: u64, size: usize) -> Vec<u8> {
    let mut m = n.to_le_bytes().to_vec();
    m.resize(size, b'x');
    m
}

fn segment_count(dir: &Path) -> usize {
    segment_files(dir).unwrap().len()
}

/// Messages come back in order across segments of growing size, numbered by the caller
/// (gaps allowed); a segment the head has left is removed.
#[test]
fn messages_come_back_in_order_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = QueueLog::open(dir.path(), 0).unwrap();
    for n in 1..=300u64 {
        log.append(2 * n, &body(n, 1000)).unwrap();
    }
    assert_eq!(
        (log.len(), log.last_number(), segment_count(dir.path())),
        (300, 600, 3),
        "64 + 128 + 256 KiB"
    );
    let mapped = || log.segments.iter().filter(|(_, s)| s.is_some()).count();
    assert_eq!(mapped(), 2, "only the head's and the tail's segments are mapped");
    for n in 1..=300u64 {
        let (got, payload) = log.head().unwrap();
        assert_eq!((got, &payload[..8]), (2 * n, &n.to_le_bytes()[..]));
        assert_eq!(log.take().unwrap(), Some(2 * n));
    }
    assert_eq!(log.head(), None);
    assert_eq!(log.take().unwrap(), None);
    assert_eq!(segment_count(dir.path()), 1, "only the tail's segment is left");
    log.append(601, b"after").unwrap();
    assert_eq!(log.head(), Some((601, &b"after"[..])));
}

#[test]
fn a_number_not_above_the_last_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = QueueLog::open(dir.path(), 10).unwrap();
    assert_eq!(log.append(10, b"x").unwrap_err().kind(), io::ErrorKind::InvalidInput);
    log.append(11, b"x").unwrap();
    assert_eq!(log.append(11, b"y").unwrap_err().kind(), io::ErrorKind::InvalidInput);
    assert_eq!(log.len(), 1);
}

/// The head and the tail come back after reopening, also with a backlog across unmapped
/// segments in between.
#[test]
fn the_head_and_the_tail_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = QueueLog::open(dir.path(), 6).unwrap();
    for n in 7..1007 {
        log.append(n, &body(n, 900)).unwrap();
    }
    for _ in 0..30 {
        log.take().unwrap();
    }
    drop(log);
    let mut log = QueueLog::open(dir.path(), 0).unwrap();
    assert_eq!((log.len(), log.last_number()), (970, 1006));
    for n in 37..1007u64 {
        assert_eq!(log.head().map(|(n, p)| (n, p[..8].to_vec())), Some((n, n.to_le_bytes().to_vec())));
        assert_eq!(log.take().unwrap(), Some(n));
    }
    assert!(log.is_empty());
}

/// A flipped byte in either copy of the tail or of the head loses nothing: both copies hold
/// the mark (the newest was in one copy only: the last message was zeroed and its number
/// given again, or the last one taken served again).
#[test]
fn a_damaged_copy_of_a_mark_loses_nothing() {
    for slot in [TAIL, TAIL + SLOT, HEAD, HEAD + SLOT] {
        let dir = tempfile::tempdir().unwrap();
        let mut log = QueueLog::open(dir.path(), 0).unwrap();
        for n in 1..=3 {
            log.append(n, &body(n, 20)).unwrap();
        }
        assert_eq!(log.take().unwrap(), Some(1));
        drop(log);
        let state = OpenOptions::new().write(true).open(dir.path().join(STATE)).unwrap();
        state.write_all_at(&[0xFF], (slot + 32) as u64).unwrap();
        drop(state);
        let mut log = QueueLog::open(dir.path(), 0).unwrap();
        assert_eq!((log.len(), log.last_number()), (2, 3), "slot at {slot}");
        assert_eq!(log.take().unwrap(), Some(2));
        assert_eq!(log.take().unwrap(), Some(3));
        log.append(3, b"again").unwrap_err();
    }
}

/// A process killed while writing a mark: in the first copy (torn) the second, one step older,
/// is read (the add was not answered: its number may be given again); between the copies the
/// first, newer, is.
#[test]
fn a_kill_while_writing_a_mark_falls_back_at_most_one_step() {
    for torn in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let mut log = QueueLog::open(dir.path(), 0).unwrap();
        log.append(1, &body(1, 20)).unwrap();
        log.append(2, &body(2, 20)).unwrap();
        let page = std::fs::read(dir.path().join(STATE)).unwrap();
        log.append(3, &body(3, 20)).unwrap();
        drop(log);
        let state = OpenOptions::new().write(true).open(dir.path().join(STATE)).unwrap();
        // The second copy not written yet: as it was before the third add.
        state.write_all_at(&page[TAIL + SLOT..TAIL + 2 * SLOT], (TAIL + SLOT) as u64).unwrap();
        if torn {
            state.write_all_at(&[0xFF], (TAIL + 24) as u64).unwrap();
        }
        drop(state);
        let mut log = QueueLog::open(dir.path(), 0).unwrap();
        let last = if torn { 2 } else { 3 };
        assert_eq!((log.len(), log.last_number(), log.lost()), (last, last, 0), "torn: {torn}");
        log.append(4, b"next").unwrap();
        drop(log);
        assert_eq!(QueueLog::open(dir.path(), 0).unwrap().len(), last + 1);
    }
}

/// After a power loss records written since the last sync may be damaged: only those are
/// lost, the records after them and the count kept, no number given again.
#[test]
fn records_lost_since_the_last_sync_lose_only_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = QueueLog::open(dir.path(), 0).unwrap();
    log.append(1, &body(1, 50)).unwrap();
    log.append(2, &body(2, 50)).unwrap();
    log.sync().unwrap();
    log.append(3, &body(3, 50)).unwrap();
    log.append(4, &body(4, 50)).unwrap();
    drop(log);
    let third = FIRST_RECORD as usize + 2 * (HEADER + NUMBER + 50) + HEADER + NUMBER;
    let segment = OpenOptions::new().write(true).open(segment_path(dir.path(), 0)).unwrap();
    segment.write_all_at(b"lost", third as u64).unwrap();
    drop(segment);
    let mut log = QueueLog::open(dir.path(), 0).unwrap();
    assert_eq!((log.len(), log.last_number(), log.lost()), (3, 4, 1));
    assert_eq!(log.take().unwrap(), Some(1));
    assert_eq!(log.take().unwrap(), Some(2));
    assert_eq!(log.take().unwrap(), Some(4));
    assert_eq!(log.take().unwrap(), None);
    log.append(5, b"next").unwrap();
    assert_eq!(log.head(), Some((5, &b"next"[..])));
}

/// The same in a segment created after the last sync, its last record damaged: it is lost,
/// its number is not given again.
#[test]
fn records_lost_in_a_new_segment_are_counted_from_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = QueueLog::open(dir.path(), 0).unwrap();
    let mut n = 0;
    while segment_count(dir.path()) < 2 {
        n += 1;
        log.append(n, &body(n, 1000)).unwrap();
    }
    log.append(n + 1, &body(n + 1, 1000)).unwrap();
    drop(log);
    let second = segment_files(dir.path()).unwrap()[1].0;
    assert_eq!(second, n - 1, "the segment is named by its first seq");
    let lost = FIRST_RECORD as usize + HEADER + 1000 + NUMBER + HEADER + NUMBER;
    let segment = OpenOptions::new().write(true).open(segment_path(dir.path(), second)).unwrap();
    segment.write_all_at(b"lost", lost as u64).unwrap();
    drop(segment);
    let log = QueueLog::open(dir.path(), 0).unwrap();
    assert_eq!((log.len(), log.last_number()), (n, n + 1));
}

#[test]
fn a_message_larger_than_a_segment_gets_one_of_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = QueueLog::open(dir.path(), 0).unwrap();
    log.append(1, b"small").unwrap();
    let big = vec![9; 3 * FIRST_SEGMENT];
    log.append(2, &big).unwrap();
    drop(log);
    let mut log = QueueLog::open(dir.path(), 0).unwrap();
    log.take().unwrap();
    assert_eq!(log.head().map(|(n, p)| (n, p.len())), Some((2, big.len())));
}

/// On a full disk the add that needs a new segment fails and changes nothing; once the
/// head frees segments, adds go on.
#[test]
fn a_full_disk_refuses_the_add_that_needs_a_segment() {
    let disk = Tmpfs::mount("1m");
    let path = disk.0.path().join("q");
    let mut log = QueueLog::open(&path, 0).unwrap();
    let mut added = 0;
    let refused = loop {
        match log.append(added + 1, &body(added + 1, 1000)) {
            Ok(()) => added += 1,
            Err(error) => break error,
        }
    };
    assert_eq!(refused.kind(), io::ErrorKind::StorageFull);
    assert!(added > 300, "{added} adds before the disk was full");
    assert_eq!((log.len(), log.last_number()), (added, added));
    log.append(added + 1, &body(0, 1000)).unwrap_err();
    for n in 1..=added / 2 {
        assert_eq!(log.take().unwrap(), Some(n));
    }
    let mut more = 0;
    while log.append(added + more + 1, &body(0, 1000)).is_ok() {
        more += 1;
    }
    assert!(more > 0);
    drop(log);
    let log = QueueLog::open(&path, 0).unwrap();
    assert_eq!(log.len(), added - added / 2 + more);
}

/// `peek` copies messages from the head across segments (mapped or not) without taking them;
/// `take_through` takes those numbered up to its argument.
#[test]
fn peek_reads_across_segments_and_take_through_takes_a_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = QueueLog::open(dir.path(), 10).unwrap();
    for n in 11..=310u64 {
        log.append(n, &body(n, 1000)).unwrap();
    }
    let all = log.peek(usize::MAX).unwrap();
    assert_eq!(all.len(), 300);
    assert!(all.iter().zip(11..).all(|((n, p), want)| *n == want && p[..8] == want.to_le_bytes()));
    assert_eq!(log.peek(5).unwrap().iter().map(|m| m.0).collect::<Vec<_>>(), [11, 12, 13, 14, 15]);
    assert_eq!(log.len(), 300, "peeking takes nothing");
    assert_eq!(log.take_through(200).unwrap(), 190);
    assert_eq!((log.len(), log.head().unwrap().0), (110, 201));
    assert_eq!(log.peek(usize::MAX).unwrap().len(), 110);
    assert_eq!(log.take_through(u64::MAX).unwrap(), 110);
    assert!(log.is_empty() && log.peek(10).unwrap().is_empty());
}

/// A consumer that keeps up (each message taken right after its append) goes on across
/// segments: the head follows the tail into each new segment.
#[test]
fn a_log_kept_empty_follows_its_tail_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = QueueLog::open(dir.path(), 0).unwrap();
    for n in 1..=500u64 {
        log.append(n, &body(n, 1000)).unwrap();
        assert_eq!(log.head().map(|m| m.0), Some(n), "message {n} is at the head");
        assert_eq!(log.take().unwrap(), Some(n));
    }
    assert_eq!(segment_count(dir.path()), 1, "the segments left behind are removed");
    drop(log);
    let mut log = QueueLog::open(dir.path(), 0).unwrap();
    log.append(501, b"after").unwrap();
    assert_eq!(log.head().map(|m| m.0), Some(501));
}

/// Runs `background`'s work on another thread (as the syncer's does) and waits for it; the
/// file operations it made.
fn work_elsewhere(background: &Background) -> u64 {
    std::thread::scope(|s| {
        s.spawn(|| {
            background.work();
            crate::store::embedded::crash::file_ops_here()
        })
        .join()
        .unwrap()
    })
}

/// With a background that keeps up, adds and takes across several rollovers and segments
/// left make no file operation (creation, fallocate, fsync, msync, rename, unlink) on the
/// calling thread: the background made each segment ahead, placed it, synced the old tail and
/// removed what the head left. (With `QueueLog::open`, inline, the same loop makes dozens.)
#[test]
fn steady_adds_and_takes_make_no_file_operation_on_the_calling_thread() {
    use crate::store::embedded::crash::file_ops_here;
    let dir = tempfile::tempdir().unwrap();
    let background = Arc::new(Background::default());
    let mut log = QueueLog::open_in(dir.path(), 0, &background).unwrap();
    let before = file_ops_here();
    let (mut firsts, mut elsewhere, mut taken) = (BTreeSet::new(), 0, 0);
    for n in 1..=3000u64 {
        log.append(n, &body(n, 1000)).unwrap();
        if n % 2 == 0 {
            taken += 1;
            assert_eq!(log.take().unwrap(), Some(taken));
        }
        firsts.insert(log.segments.back().unwrap().0);
        elsewhere += work_elsewhere(&background);
    }
    assert_eq!(file_ops_here() - before, 0, "file operations on the calling thread");
    assert!(firsts.len() >= 6, "rollovers: {firsts:?}");
    assert!(elsewhere > 0, "the background's file operations");
    assert_eq!(log.inline_segments(), 0, "every segment was a spare");
    assert!(segment_count(dir.path()) < firsts.len(), "the segments left are removed");
    assert_eq!(segment_count(dir.path()), log.segments.len());
    drop(log);
    let log = QueueLog::open(dir.path(), 0).unwrap();
    let numbers: Vec<u64> = log.peek(usize::MAX).unwrap().iter().map(|m| m.0).collect();
    assert_eq!(numbers, (taken + 1..=3000).collect::<Vec<_>>());
}

/// A burst faster than the background: rollovers with no spare ready make their segment
/// inline (counted), one right after a spare put in use too (the spare stays mapped until it
/// is renamed); takes go through them all; once the background catches up, every segment is
/// under its name, and a reopen finds every message.
#[test]
fn a_burst_faster_than_the_background_goes_on_inline() {
    let dir = tempfile::tempdir().unwrap();
    let background = Arc::new(Background::default());
    let mut log = QueueLog::open_in(dir.path(), 0, &background).unwrap();
    for n in 1..=1000u64 {
        log.append(n, &body(n, 1000)).unwrap();
    }
    let inline = log.inline_segments();
    assert!(inline >= 3, "{inline} segments made inline");
    // A spare made, then two rollovers with no work between them: the spare's, then inline.
    background.work();
    let mut n = 1000;
    let mut firsts = BTreeSet::new();
    while firsts.len() < 3 {
        n += 1;
        log.append(n, &body(n, 1000)).unwrap();
        firsts.insert(log.segments.back().unwrap().0);
    }
    assert_eq!(log.inline_segments(), inline + 1, "the spare served one rollover");
    assert!(dir.path().join(SPARE).exists(), "the spare in use is not renamed yet");
    for m in 1..=n - 10 {
        assert_eq!(log.take().unwrap(), Some(m));
    }
    background.work();
    assert!(log.segments.iter().all(|s| segment_path(dir.path(), s.0).exists()), "every segment placed");
    assert_eq!(segment_count(dir.path()), log.segments.len(), "the segments left are removed");
    drop(log);
    let log = QueueLog::open(dir.path(), 0).unwrap();
    let numbers: Vec<u64> = log.peek(usize::MAX).unwrap().iter().map(|m| m.0).collect();
    assert_eq!(numbers, (n - 9..=n).collect::<Vec<_>>());
}

/// A log whose last rollover put the spare in use (with one record) and whose background
/// never placed it: its messages' count, the spare's segment.
fn a_spare_in_use_not_placed(dir: &Path) -> (u64, u64) {
    let background = Arc::new(Background::default());
    let mut log = QueueLog::open_in(dir, 0, &background).unwrap();
    let mut n = 0;
    while log.segments.len() < 2 {
        n += 1;
        log.append(n, &body(n, 1000)).unwrap();
        background.work();
    }
    let first = loop {
        n += 1;
        log.append(n, &body(n, 1000)).unwrap();
        if log.segments.len() == 3 {
            break log.segments.back().unwrap().0;
        }
        background.work();
    };
    assert!(dir.join(SPARE).exists() && !segment_path(dir, first).exists());
    (n, first)
}

/// A power loss after a rollover put the spare in use kept the state page (its tail's mark
/// names the spare's segment) but not the spare's first page (its meta record and first
/// record): the open writes its meta record again and renames it; that record is lost,
/// counted, the others kept, and the log goes on.
#[test]
fn a_spare_in_use_that_lost_its_meta_record_is_placed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let (n, first) = a_spare_in_use_not_placed(dir.path());
    let spare = OpenOptions::new().write(true).open(dir.path().join(SPARE)).unwrap();
    spare.write_all_at(&[0; 4096], 0).unwrap();
    drop(spare);
    let mut log = QueueLog::open(dir.path(), 0).unwrap();
    assert!(!dir.path().join(SPARE).exists() && segment_path(dir.path(), first).exists());
    let numbers: Vec<u64> = log.peek(usize::MAX).unwrap().iter().map(|m| m.0).collect();
    assert_eq!(numbers, (1..n).collect::<Vec<_>>(), "the record in the lost page is lost alone");
    assert_eq!(log.lost(), 1);
    log.append(n + 1, b"after").unwrap();
    assert_eq!(log.last_number(), n + 1);
}

/// A crash after a rollover put the spare in use, before the background renamed it: the
/// next open renames it into place (its meta record names the tail's segment) and keeps its
/// messages; a spare never used is removed.
#[test]
fn a_spare_in_use_is_placed_at_open_and_an_unused_one_removed() {
    let dir = tempfile::tempdir().unwrap();
    let (mut n, first) = a_spare_in_use_not_placed(dir.path());
    let background = Arc::new(Background::default());
    let log = QueueLog::open(dir.path(), 0).unwrap();
    assert!(!dir.path().join(SPARE).exists() && segment_path(dir.path(), first).exists());
    assert_eq!(log.peek(usize::MAX).unwrap().len() as u64, n);
    drop(log);
    // A spare made and never used.
    let mut log = QueueLog::open_in(dir.path(), 0, &background).unwrap();
    while !dir.path().join(SPARE).exists() {
        n += 1;
        log.append(n, &body(n, 1000)).unwrap();
        background.work();
    }
    drop(log);
    let log = QueueLog::open(dir.path(), 0).unwrap();
    assert!(!dir.path().join(SPARE).exists());
    assert_eq!(log.peek(usize::MAX).unwrap().len() as u64, n);
}

/// With a background, on a disk too full for a spare: the background cannot make it (nothing
/// left behind), the add that needs a segment makes none inline either and is refused with
/// `StorageFull`, changing nothing; once the head frees segments, adds go on.
#[test]
fn a_disk_too_full_for_a_spare_refuses_the_add_that_needs_a_segment() {
    let disk = Tmpfs::mount("1m");
    let path = disk.0.path().join("q");
    let background = Arc::new(Background::default());
    let mut log = QueueLog::open_in(&path, 0, &background).unwrap();
    let mut added = 0;
    let refused = loop {
        match log.append(added + 1, &body(added + 1, 1000)) {
            Ok(()) => added += 1,
            Err(error) => break error,
        }
        work_elsewhere(&background);
    };
    assert_eq!(refused.kind(), io::ErrorKind::StorageFull);
    assert!(added > 300, "{added} adds before the disk was full");
    assert_eq!((log.len(), log.last_number()), (added, added));
    assert!(!path.join(SPARE).exists(), "no spare left behind");
    for n in 1..=added / 2 {
        assert_eq!(log.take().unwrap(), Some(n));
    }
    work_elsewhere(&background);
    let mut more = 0;
    while log.append(added + more + 1, &body(0, 1000)).is_ok() {
        more += 1;
        work_elsewhere(&background);
    }
    assert!(more > 0);
    drop(log);
    let log = QueueLog::open(&path, 0).unwrap();
    assert_eq!(log.len(), added - added / 2 + more);
}
