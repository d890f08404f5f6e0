//! One queue's log: its messages in order in segments `<dir>/<first n>.seg` (see `segment`),
//! and a mapped `state` page saying where the head and the tail are. Adding and taking are
//! copies and stores into shared maps — in the kernel, safe from a crash of the process, with
//! no system call — except when a segment is created (the tail's is full) or removed (the
//! head has left it).
//!
//! The state page holds two copies of the tail `(next n, segment, end)` and two of the head
//! `(n, segment, offset)`, each with a checksum, written in turn: a copy torn by a crash fails
//! its checksum and the other one (one step older) is used. The tail is written after its
//! record, the head after its take, so a crash loses at most the step not yet answered. A
//! third pair keeps the tail as of the last `sync`: after a power loss the frames written
//! since are checked, and the log ends at the first one lost.

use std::collections::VecDeque;
use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{fence, Ordering};

use memmap2::MmapMut;

use super::segment::{Segment, HEADER};

/// The first segment's size; each next one doubles, up to [`MAX_SEGMENT`] (or the record).
pub const FIRST_SEGMENT: usize = 64 * 1024;
pub const MAX_SEGMENT: usize = 8 << 20;
const STATE: &str = "state";
const STATE_BYTES: u64 = 4096;
/// A slot: three `u64`s and their checksum (CRC-32 + 1, so zeros are never valid).
const SLOT: usize = 32;
const TAIL: usize = 0;
const HEAD: usize = 2 * SLOT;
/// The tail as of the last sync: the frames after it are checked at open.
const SYNCED: usize = 4 * SLOT;
/// The message number before each record's payload.
const NUMBER: usize = 8;

/// A place in the log: a message number, the segment (by its first number), an offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mark {
    n: u64,
    segment: u64,
    offset: u64,
}

fn slot_crc(bytes: &[u8]) -> u64 {
    u64::from(crc32fast::hash(bytes)) + 1
}

fn read_slot(page: &[u8], at: usize) -> Option<Mark> {
    let word = |i: usize| {
        let bytes: [u8; 8] = page[at + 8 * i..at + 8 * i + 8].try_into().expect("8 bytes");
        u64::from_le_bytes(bytes)
    };
    (word(3) == slot_crc(&page[at..at + 24])).then(|| Mark { n: word(0), segment: word(1), offset: word(2) })
}

fn write_slot(page: &mut [u8], at: usize, mark: Mark) {
    page[at..at + 8].copy_from_slice(&mark.n.to_le_bytes());
    page[at + 8..at + 16].copy_from_slice(&mark.segment.to_le_bytes());
    page[at + 16..at + 24].copy_from_slice(&mark.offset.to_le_bytes());
    let crc = slot_crc(&page[at..at + 24]);
    // The mark before the checksum that makes it valid.
    fence(Ordering::Release);
    page[at + 24..at + 32].copy_from_slice(&crc.to_le_bytes());
}

/// Of the pair of slots at `at`, the further valid one, and which slot to write next.
fn newest(page: &[u8], at: usize) -> Option<(Mark, usize)> {
    let key = |m: &Mark| (m.n, m.segment, m.offset);
    match (read_slot(page, at), read_slot(page, at + SLOT)) {
        (Some(a), Some(b)) if key(&b) > key(&a) => Some((b, 0)),
        (Some(a), _) => Some((a, 1)),
        (None, Some(b)) => Some((b, 0)),
        (None, None) => None,
    }
}

fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}.seg"))
}

/// A queue's log, open.
pub struct QueueLog {
    dir: PathBuf,
    state: MmapMut,
    /// The segments from the head's to the tail's, by first message number.
    segments: VecDeque<(u64, Segment)>,
    head: Mark,
    tail: Mark,
    /// The slot of each pair (tail, head, synced) written next.
    turn: [usize; 3],
}

impl QueueLog {
    /// Opens the log in `dir`; a new one numbers its messages from `first`. Segments outside
    /// the head's to the tail's (left behind, or created and never written) are removed.
    pub fn open(dir: &Path, first: u64) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(dir.join(STATE))?;
        if file.metadata()?.len() < STATE_BYTES {
            file.set_len(STATE_BYTES)?;
        }
        // SAFETY: as in `segment`: a file of our locked data directory, never truncated while
        // mapped, written only through this map.
        #[allow(unsafe_code)]
        let mut state = unsafe { MmapMut::map_mut(&file)? };
        let (tail, head, turn) = match (newest(&state, TAIL), newest(&state, HEAD)) {
            (Some((tail, t)), Some((head, h))) => {
                (tail, head, [t, h, newest(&state, SYNCED).map_or(0, |s| s.1)])
            }
            _ => {
                for (_, path) in segment_files(dir)? {
                    std::fs::remove_file(path)?;
                }
                Segment::create(&segment_path(dir, first), FIRST_SEGMENT)?;
                let start = Mark { n: first, segment: first, offset: 0 };
                for at in [TAIL, TAIL + SLOT, HEAD, HEAD + SLOT, SYNCED, SYNCED + SLOT] {
                    write_slot(&mut state, at, start);
                }
                (start, start, [0, 0, 0])
            }
        };
        let synced = newest(&state, SYNCED).map(|s| s.0).filter(|s| s.segment == tail.segment);
        let verified = synced.map_or(0, |s| s.offset as usize);
        let mut segments = VecDeque::new();
        for (first, path) in segment_files(dir)? {
            if first < head.segment || first > tail.segment {
                std::fs::remove_file(path)?;
            } else if first == tail.segment {
                segments.push_back((first, Segment::open_at(&path, tail.offset as usize, verified)?));
            } else {
                // A full segment: its records end where its frames do.
                let size = std::fs::metadata(&path)?.len() as usize;
                segments.push_back((first, Segment::open_at(&path, size, size)?));
            }
        }
        let mut log = Self { dir: dir.to_owned(), state, segments, head, tail, turn };
        // A power loss may have cut the tail's segment short of its mark (the records lost
        // were written after the last sync), or kept the head's mark and not the tail's.
        let end = log.segments.back().map_or(0, |(_, s)| s.end() as u64);
        if end < log.tail.offset {
            let mut mark = log.head;
            while let Some(at) = log.located(mark) {
                mark = log.step(at);
            }
            log.tail = mark;
            log.write(TAIL);
        }
        if log.head.n > log.tail.n {
            log.head = log.tail;
            log.write(HEAD);
        }
        Ok(log)
    }

    fn write(&mut self, at: usize) {
        let (mark, i) = match at {
            TAIL => (self.tail, 0),
            HEAD => (self.head, 1),
            _ => (self.tail, 2),
        };
        write_slot(&mut self.state, at + self.turn[i] * SLOT, mark);
        self.turn[i] ^= 1;
    }

    fn segment(&self, first: u64) -> Option<&Segment> {
        self.segments.iter().find(|(f, _)| *f == first).map(|(_, s)| s)
    }

    /// The record at `mark`, if there is one there.
    fn record(&self, mark: Mark) -> Option<&[u8]> {
        self.segment(mark.segment)?.read(mark.offset as usize)
    }

    /// The place after the record at `at`.
    fn step(&self, at: Mark) -> Mark {
        let len = self.record(at).map_or(0, <[u8]>::len);
        Mark { n: at.n + 1, segment: at.segment, offset: at.offset + (HEADER + len) as u64 }
    }

    /// Appends `payload` as the next message; returns its number. Fails (and changes
    /// nothing) only when a new segment was needed and the disk has no room for it.
    pub fn append(&mut self, payload: &[u8]) -> io::Result<u64> {
        let n = self.tail.n;
        let mut record = Vec::with_capacity(NUMBER + payload.len());
        record.extend_from_slice(&n.to_le_bytes());
        record.extend_from_slice(payload);
        let (first, tail) = self.segments.back_mut().expect("the tail's segment is open");
        let (segment, offset) = match tail.append(&record) {
            Some(offset) => (*first, offset),
            None => {
                tail.sync()?;
                // Doubled; on a disk too full for that, as small as the record allows.
                let least = FIRST_SEGMENT.max(HEADER + record.len());
                let size = (tail.size() * 2).clamp(FIRST_SEGMENT, MAX_SEGMENT).max(least);
                let path = segment_path(&self.dir, n);
                let mut next = match Segment::create(&path, size) {
                    Err(e) if e.kind() == io::ErrorKind::StorageFull && size > least => {
                        Segment::create(&path, least)?
                    }
                    created => created?,
                };
                let offset = next.append(&record).expect("sized for the record");
                self.segments.push_back((n, next));
                (n, offset)
            }
        };
        let end = offset + HEADER + record.len();
        self.tail = Mark { n: n + 1, segment, offset: end as u64 };
        self.write(TAIL);
        Ok(n)
    }

    /// The oldest message: its number and payload.
    pub fn head(&self) -> Option<(u64, &[u8])> {
        if self.head.n == self.tail.n {
            return None;
        }
        let mark = self.located(self.head)?;
        let record = self.record(mark)?;
        Some((mark.n, &record[NUMBER..]))
    }

    /// Where the record of `mark` is: there, or at the start of the next segment when `mark`
    /// is the end of a full one; `None` when there is no record.
    fn located(&self, mark: Mark) -> Option<Mark> {
        if self.record(mark).is_some() {
            return Some(mark);
        }
        let later = self.segments.iter().map(|(f, _)| *f).find(|f| *f > mark.segment)?;
        let next = Mark { n: mark.n, segment: later, offset: 0 };
        self.record(next).is_some().then_some(next)
    }

    /// Takes the oldest message off the log (its number), removing a segment it leaves.
    pub fn take(&mut self) -> io::Result<Option<u64>> {
        if self.head.n == self.tail.n {
            return Ok(None);
        }
        let Some(mark) = self.located(self.head) else { return Ok(None) };
        self.head = self.step(mark);
        self.write(HEAD);
        while self.segments.front().is_some_and(|(first, _)| *first < self.head.segment) {
            let (first, segment) = self.segments.pop_front().expect("checked");
            drop(segment);
            std::fs::remove_file(segment_path(&self.dir, first))?;
        }
        Ok(Some(mark.n))
    }

    /// Messages on the log.
    pub fn len(&self) -> u64 {
        self.tail.n - self.head.n
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number the next message gets.
    pub fn next_number(&self) -> u64 {
        self.tail.n
    }

    /// Writes what was appended and taken to the disk (for `--fsync`): the tail's segment,
    /// then the state with the tail marked as synced.
    pub fn sync(&mut self) -> io::Result<()> {
        if let Some((_, tail)) = self.segments.back() {
            tail.sync()?;
        }
        self.write(SYNCED);
        self.state.flush()
    }
}

/// The segment files in `dir`, by first number.
fn segment_files(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if let Some(first) = name.to_str().and_then(|n| n.strip_suffix(".seg")).and_then(|n| n.parse().ok()) {
            files.push((first, entry.path()));
        }
    }
    files.sort_unstable();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileExt;

    use super::*;
    use crate::store::embedded::segment::tests::Tmpfs;

    fn message(n: u64, size: usize) -> Vec<u8> {
        let mut m = n.to_le_bytes().to_vec();
        m.resize(size, b'x');
        m
    }

    fn segment_count(dir: &Path) -> usize {
        segment_files(dir).unwrap().len()
    }

    /// Messages come back in order across segments of growing size, and a segment the head
    /// has left is removed.
    #[test]
    fn messages_come_back_in_order_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = QueueLog::open(dir.path(), 1).unwrap();
        for n in 1..=300 {
            assert_eq!(log.append(&message(n, 1000)).unwrap(), n);
        }
        assert_eq!((log.len(), segment_count(dir.path())), (300, 3), "64 + 128 + 256 KiB");
        for n in 1..=300u64 {
            let (got, payload) = log.head().unwrap();
            assert_eq!((got, &payload[..8]), (n, &n.to_le_bytes()[..]));
            assert_eq!(log.take().unwrap(), Some(n));
        }
        assert_eq!(log.head(), None);
        assert_eq!(log.take().unwrap(), None);
        assert_eq!(segment_count(dir.path()), 1, "only the tail's segment is left");
        assert_eq!(log.append(b"after").unwrap(), 301);
        assert_eq!(log.head(), Some((301, &b"after"[..])));
    }

    #[test]
    fn the_head_and_the_tail_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = QueueLog::open(dir.path(), 7).unwrap();
        for n in 7..107 {
            log.append(&message(n, 900)).unwrap();
        }
        for _ in 0..30 {
            log.take().unwrap();
        }
        drop(log);
        let mut log = QueueLog::open(dir.path(), 1).unwrap();
        assert_eq!((log.len(), log.next_number()), (70, 107));
        assert_eq!(log.head().unwrap().0, 37);
        assert_eq!(log.append(b"next").unwrap(), 107);
    }

    /// A crash that tore the newest copy of the tail loses only that step: the add it
    /// recorded was not answered. Its number is given again, and its record overwritten.
    #[test]
    fn a_torn_tail_mark_falls_back_one_step() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = QueueLog::open(dir.path(), 1).unwrap();
        for n in 1..=3 {
            log.append(&message(n, 20)).unwrap();
        }
        drop(log);
        // The third add wrote tail slot A (A, B, A).
        let state = OpenOptions::new().write(true).open(dir.path().join(STATE)).unwrap();
        state.write_all_at(&[0xFF], (TAIL + 24) as u64).unwrap();
        drop(state);
        let mut log = QueueLog::open(dir.path(), 1).unwrap();
        assert_eq!((log.len(), log.next_number()), (2, 3));
        assert_eq!(log.append(b"again").unwrap(), 3);
        log.take().unwrap();
        log.take().unwrap();
        assert_eq!(log.head(), Some((3, &b"again"[..])));
    }

    /// After a power loss the records written since the last sync may be gone: the log ends
    /// at the first one that fails its check.
    #[test]
    fn records_lost_since_the_last_sync_end_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = QueueLog::open(dir.path(), 1).unwrap();
        log.append(&message(1, 50)).unwrap();
        log.append(&message(2, 50)).unwrap();
        log.sync().unwrap();
        log.append(&message(3, 50)).unwrap();
        log.append(&message(4, 50)).unwrap();
        drop(log);
        let third = (2 * (HEADER + NUMBER + 50) + HEADER + NUMBER) as u64;
        let segment = OpenOptions::new().write(true).open(segment_path(dir.path(), 1)).unwrap();
        segment.write_all_at(b"lost", third).unwrap();
        drop(segment);
        let mut log = QueueLog::open(dir.path(), 1).unwrap();
        assert_eq!((log.len(), log.next_number()), (2, 3));
        assert_eq!(log.take().unwrap(), Some(1));
        assert_eq!(log.take().unwrap(), Some(2));
        assert_eq!(log.take().unwrap(), None);
    }

    #[test]
    fn a_message_larger_than_a_segment_gets_one_of_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = QueueLog::open(dir.path(), 1).unwrap();
        log.append(b"small").unwrap();
        let big = vec![9; 3 * FIRST_SEGMENT];
        assert_eq!(log.append(&big).unwrap(), 2);
        drop(log);
        let mut log = QueueLog::open(dir.path(), 1).unwrap();
        log.take().unwrap();
        assert_eq!(log.head().map(|(n, p)| (n, p.len())), Some((2, big.len())));
    }

    /// On a full disk the add that needs a new segment fails and changes nothing; once the
    /// head frees segments, adds go on.
    #[test]
    fn a_full_disk_refuses_the_add_that_needs_a_segment() {
        let disk = Tmpfs::mount("1m");
        let mut log = QueueLog::open(&disk.0.path().join("q"), 1).unwrap();
        let mut added = 0;
        let refused = loop {
            match log.append(&message(added + 1, 1000)) {
                Ok(n) => added = n,
                Err(error) => break error,
            }
        };
        assert_eq!(refused.kind(), io::ErrorKind::StorageFull);
        assert!(added > 300, "{added} adds before the disk was full");
        assert_eq!((log.len(), log.next_number()), (added, added + 1));
        log.append(&message(0, 1000)).unwrap_err();
        for n in 1..=added / 2 {
            assert_eq!(log.take().unwrap(), Some(n));
        }
        let mut more = 0;
        while log.append(&message(0, 1000)).is_ok() {
            more += 1;
        }
        assert!(more > 0);
        drop(log);
        let log = QueueLog::open(&disk.0.path().join("q"), 1).unwrap();
        assert_eq!(log.len(), added - added / 2 + more);
    }
}
