//! Tests of `queue_log` recovering from crashes, power losses and damaged files: each shows
//! a finding of the review in `docs/design/log-store.md` fixed.

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

/// A log of 300 messages numbered 1 to 300 in three segments.
fn three_segments(dir: &Path) -> QueueLog {
    let mut log = QueueLog::open(dir, 0).unwrap();
    for n in 1..=300u64 {
        log.append(n, &body(n, 1000)).unwrap();
    }
    assert_eq!(segment_count(dir), 3);
    log
}

fn numbers(log: &QueueLog) -> Vec<u64> {
    log.peek(usize::MAX).unwrap().into_iter().map(|m| m.0).collect()
}

/// `kill -9` in `take` after the head's segment was removed, before the head's mark left it:
/// the mark names a missing file. Reopening starts the head at the next segment's start and
/// loses nothing (it took the next segment for an empty one and removed it too).
#[test]
fn a_kill_after_removing_the_left_segment_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = three_segments(dir.path());
    let second = segment_files(dir.path()).unwrap()[1].0;
    for n in 1..second {
        assert_eq!(log.take().unwrap(), Some(n));
    }
    // The last take of the first segment, its mark written as before the fix, the file gone.
    let record = log.front().unwrap().read(log.head.offset as usize).unwrap();
    let offset = log.head.offset + (HEADER + record.len()) as u64;
    log.head = Mark { seq: second, segment: 0, offset, n: second };
    log.write(HEAD);
    drop(log);
    std::fs::remove_file(segment_path(dir.path(), 0)).unwrap();

    let log = QueueLog::open(dir.path(), 0).unwrap();
    assert_eq!(numbers(&log), (second + 1..=300).collect::<Vec<_>>());
    assert_eq!(segment_count(dir.path()), 2);
}

/// A power loss lost records the head had taken (their pages never written: zeros): the tail
/// ends back where the records do, its number kept, and the head is clamped to it, each mark
/// written once. At the next opens those marks are read, not older copies further on (with
/// them the head skipped the messages added since).
#[test]
fn marks_moved_back_are_the_ones_read_at_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = QueueLog::open(dir.path(), 0).unwrap();
    for n in 1..=4 {
        log.append(n, &body(n, 50)).unwrap();
        if n == 2 {
            log.sync().unwrap();
        }
    }
    for n in 1..=4 {
        assert_eq!(log.take().unwrap(), Some(n));
    }
    drop(log);
    let third = FIRST_RECORD as usize + 2 * (HEADER + NUMBER + 50);
    let segment = OpenOptions::new().write(true).open(segment_path(dir.path(), 0)).unwrap();
    segment.write_all_at(&[0; 2 * (HEADER + NUMBER + 50)], third as u64).unwrap();
    drop(segment);
    for _ in 0..2 {
        let log = QueueLog::open(dir.path(), 0).unwrap();
        assert_eq!((log.len(), log.last_number(), log.head.offset), (0, 4, third as u64));
    }
    let mut log = QueueLog::open(dir.path(), 0).unwrap();
    log.append(5, &body(5, 50)).unwrap();
    log.append(6, &body(6, 50)).unwrap();
    drop(log);
    let log = QueueLog::open(dir.path(), 0).unwrap();
    assert_eq!((numbers(&log), log.last_number()), (vec![5, 6], 6));
}

/// A first message larger than the first segment replaces the empty segment with one of its
/// size (it collided with `0.seg`, `AlreadyExists` for ever); it comes back after reopening.
#[test]
fn a_first_message_larger_than_the_first_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = QueueLog::open(dir.path(), 0).unwrap();
    let big = body(1, 200 * 1024);
    log.append(1, &big).unwrap();
    drop(log);
    let mut log = QueueLog::open(dir.path(), 0).unwrap();
    assert_eq!(log.head(), Some((1, &big[..])));
    for n in 2..=100 {
        log.append(n, &body(n, 1000)).unwrap();
    }
    drop(log);
    let log = QueueLog::open(dir.path(), 0).unwrap();
    assert_eq!(numbers(&log), (1..=100).collect::<Vec<_>>());
}

/// With the disk full, opening a new log fails with `StorageFull`: the sparse state page was
/// a `SIGBUS` at its first touch (on tmpfs a read of the hole allocates the page).
#[test]
fn a_full_disk_is_an_error_at_open_not_a_sigbus() {
    let disk = Tmpfs::mount("1m");
    std::fs::write(disk.0.path().join("filler"), vec![1; 1024 * 1024]).unwrap();
    let refused = QueueLog::open(&disk.0.path().join("q"), 0).err().expect("no room");
    assert_eq!(refused.kind(), io::ErrorKind::StorageFull);
}

/// Both copies of the head damaged: the head is rebuilt at the first segment's start (its
/// messages may come again); nothing is removed (every segment was).
#[test]
fn a_damaged_head_restarts_at_the_first_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = three_segments(dir.path());
    let second = segment_files(dir.path()).unwrap()[1].0;
    log.take_through(second + 5).unwrap();
    drop(log);
    let state = OpenOptions::new().write(true).open(dir.path().join(STATE)).unwrap();
    state.write_all_at(&[0; 2 * SLOT], HEAD as u64).unwrap();
    drop(state);
    let log = QueueLog::open(dir.path(), 0).unwrap();
    assert_eq!(numbers(&log), (second + 1..=300).collect::<Vec<_>>());
}

/// A state page of zeros beside segments: the head is rebuilt at the first segment, the tail
/// by counting the last one's records; nothing is lost.
#[test]
fn a_zeroed_state_page_keeps_the_messages() {
    let dir = tempfile::tempdir().unwrap();
    drop(three_segments(dir.path()));
    std::fs::write(dir.path().join(STATE), [0; 4096]).unwrap();
    let mut log = QueueLog::open(dir.path(), 0).unwrap();
    assert_eq!((numbers(&log), log.last_number()), ((1..=300).collect::<Vec<_>>(), 300));
    log.append(301, b"more").unwrap();
    drop(log);
    assert_eq!(QueueLog::open(dir.path(), 0).unwrap().len(), 301);
}

/// A head past the tail (a valid mark, wrong) is refused with `InvalidData` and no file is
/// removed (every segment was, before the error).
#[test]
fn a_head_past_the_tail_is_refused_and_removes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = three_segments(dir.path());
    log.head = Mark { seq: 0, segment: 1 << 40, offset: FIRST_RECORD, n: 0 };
    log.write(HEAD);
    log.write(HEAD);
    drop(log);
    let refused = QueueLog::open(dir.path(), 0).err().expect("refused");
    assert_eq!(refused.kind(), io::ErrorKind::InvalidData);
    assert_eq!(segment_count(dir.path()), 3);
}

/// A count at its end is an error, not an overflow.
#[test]
fn a_count_at_its_end_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = QueueLog::open(dir.path(), 0).unwrap();
    log.tail.seq = u64::MAX;
    log.head.seq = u64::MAX;
    assert_eq!(log.append(1, b"x").unwrap_err().kind(), io::ErrorKind::InvalidData);
    assert_eq!(log.last_number(), 0);
}

/// Only `{first:020}.seg` names are segments: a stray `0.seg` is left alone (it was a second
/// segment 0: the head's segment was removed for it, messages added into it).
#[test]
fn a_stray_segment_name_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = QueueLog::open(dir.path(), 0).unwrap();
    for n in 1..=3 {
        log.append(n, &body(n, 100)).unwrap();
    }
    drop(log);
    std::fs::write(dir.path().join("0.seg"), [0; 4096]).unwrap();
    for n in 4..=5 {
        let mut log = QueueLog::open(dir.path(), 0).unwrap();
        log.append(n, &body(n, 100)).unwrap();
        assert_eq!(log.take().unwrap(), Some(n - 3));
    }
    let log = QueueLog::open(dir.path(), 0).unwrap();
    assert_eq!(numbers(&log), [3, 4, 5]);
    assert_eq!(std::fs::read(dir.path().join("0.seg")).unwrap(), [0; 4096]);
}

/// A payload longer than a frame's `u32` length is refused with `InvalidInput`, before it
/// is copied (it panicked, after creating a segment of its size).
#[test]
fn a_payload_too_long_for_a_frame_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = QueueLog::open(dir.path(), 0).unwrap();
    let huge = memmap2::MmapOptions::new().len(u32::MAX as usize).map_anon().unwrap();
    assert_eq!(log.append(1, &huge).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    assert_eq!((log.len(), segment_count(dir.path())), (0, 1));
}
