//! One queue's log: its messages in order in segments `<dir>/<first seq>.seg` (see `segment`),
//! and a mapped `state` page saying where the head and the tail are. Adding and taking are
//! copies and stores into shared maps — in the kernel, safe from a crash of the process, with
//! no system call — except when a segment is created (the tail's is full) or removed (the
//! head has left it). Only the head's and the tail's segments are mapped: a backlog between
//! them is on disk only.
//!
//! Records are numbered by the caller (increasing, gaps allowed) and counted by the log (`seq`).
//! A segment starts with a meta record (its first `seq`, the number before its first message),
//! synced when it is created. The state page holds two copies of the tail, two of the head and
//! two of the tail as of the last `sync`, each `(seq, segment, offset, n)` with a checksum,
//! written in turn: a copy torn by a crash fails its checksum and the other, one step older, is
//! used. The tail is written after its record, the head after its take, so a crash loses at
//! most a step not yet answered. After a power loss the frames written since the last sync are
//! checked, and the log ends at the first one lost.

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
/// A slot: four `u64`s and their checksum (CRC-32 + 1, so zeros are never valid).
const SLOT: usize = 40;
const TAIL: usize = 0;
const HEAD: usize = 2 * SLOT;
const SYNCED: usize = 4 * SLOT;
/// The message number before each record's payload.
const NUMBER: usize = 8;
/// Where a segment's first message starts: after its meta record (first seq, number before).
const FIRST_RECORD: u64 = (HEADER + 16) as u64;

/// A place in the log: records counted so far, the segment (by its first `seq`), an offset in
/// it, and the number of the last message added (tail) or taken (head).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mark {
    seq: u64,
    segment: u64,
    offset: u64,
    n: u64,
}

fn slot_crc(bytes: &[u8]) -> u64 {
    u64::from(crc32fast::hash(bytes)) + 1
}

fn word(bytes: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(bytes[8 * i..8 * i + 8].try_into().expect("8 bytes"))
}

fn read_slot(page: &[u8], at: usize) -> Option<Mark> {
    let slot = &page[at..at + SLOT];
    let mark = Mark { seq: word(slot, 0), segment: word(slot, 1), offset: word(slot, 2), n: word(slot, 3) };
    (word(slot, 4) == slot_crc(&slot[..32])).then_some(mark)
}

fn write_slot(page: &mut [u8], at: usize, mark: Mark) {
    for (i, value) in [mark.seq, mark.segment, mark.offset, mark.n].into_iter().enumerate() {
        page[at + 8 * i..at + 8 * i + 8].copy_from_slice(&value.to_le_bytes());
    }
    let crc = slot_crc(&page[at..at + 32]);
    // The mark before the checksum that makes it valid.
    fence(Ordering::Release);
    page[at + 32..at + 40].copy_from_slice(&crc.to_le_bytes());
}

/// Of the pair of slots at `at`, the further valid one, and which slot to write next.
fn newest(page: &[u8], at: usize) -> Option<(Mark, usize)> {
    let key = |m: &Mark| (m.seq, m.segment, m.offset);
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

/// A record's message number and payload.
fn message(record: &[u8]) -> Option<(u64, &[u8])> {
    let number = record.get(..NUMBER)?;
    Some((word(number, 0), &record[NUMBER..]))
}

/// A queue's log, open.
pub struct QueueLog {
    dir: PathBuf,
    state: MmapMut,
    /// The segments from the head's to the tail's, by first `seq`; only those two mapped.
    segments: VecDeque<(u64, Option<Segment>)>,
    head: Mark,
    tail: Mark,
    /// The slot of each pair (tail, head, synced) written next.
    turn: [usize; 3],
}

impl QueueLog {
    /// Opens the log in `dir`; a new one starts after message number `after`. Segments outside
    /// the head's to the tail's (left behind, or created and never written) are removed.
    pub fn open(dir: &Path, after: u64) -> io::Result<Self> {
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
                create_segment(dir, 0, after, FIRST_SEGMENT)?;
                let start = Mark { seq: 0, segment: 0, offset: FIRST_RECORD, n: after };
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
                segments.push_back((first, Some(Segment::open_at(&path, tail.offset as usize, verified)?)));
            } else if first == head.segment {
                segments.push_back((first, Some(open_full(&path)?)));
            } else {
                segments.push_back((first, None));
            }
        }
        let mut log = Self { dir: dir.to_owned(), state, segments, head, tail, turn };
        if log.segments.back().is_none_or(|(first, _)| *first != log.tail.segment) {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "the tail's segment is missing"));
        }
        log.recount_tail()?;
        if log.head.seq > log.tail.seq {
            log.head = log.tail;
            log.write(HEAD);
        }
        let before = log.head;
        log.settle_head()?;
        if log.head != before {
            log.write(HEAD);
        }
        Ok(log)
    }

    /// After a power loss the tail's segment may end short of the tail's mark: the tail is
    /// then its last whole record.
    fn recount_tail(&mut self) -> io::Result<()> {
        let Some((first, Some(tail))) = self.segments.back() else { return Ok(()) };
        if tail.end() as u64 >= self.tail.offset {
            return Ok(());
        }
        let meta = tail.read(0).filter(|m| m.len() == 16);
        let Some(before) = meta.map(|m| word(m, 1)) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the tail's segment lost its meta record",
            ));
        };
        let (mut seq, mut n, mut end) = (*first, before, FIRST_RECORD);
        for (offset, record) in tail.records(FIRST_RECORD as usize) {
            seq += 1;
            n = message(record).map_or(n, |(number, _)| number);
            end = (offset + HEADER + record.len()) as u64;
        }
        self.tail = Mark { seq, segment: *first, offset: end, n };
        self.write(TAIL);
        Ok(())
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

    fn front(&self) -> Option<&Segment> {
        self.segments.front().and_then(|(_, s)| s.as_ref())
    }

    /// Leaves the head's segment while it is not the tail's and has no record at the head:
    /// removes its file and maps the next one.
    fn settle_head(&mut self) -> io::Result<()> {
        while self.segments.len() > 1
            && self.front().is_none_or(|s| s.read(self.head.offset as usize).is_none())
        {
            let (first, segment) = self.segments.pop_front().expect("more than one");
            drop(segment);
            std::fs::remove_file(segment_path(&self.dir, first))?;
            let (next, slot) = self.segments.front_mut().expect("more than one");
            if slot.is_none() {
                *slot = Some(open_full(&segment_path(&self.dir, *next))?);
            }
            (self.head.segment, self.head.offset) = (*next, FIRST_RECORD);
        }
        Ok(())
    }

    /// Appends message `n` (larger than any before) with `payload`. Fails, changing nothing,
    /// when `n` is not larger, or when a new segment was needed and the disk has no room.
    pub fn append(&mut self, n: u64, payload: &[u8]) -> io::Result<()> {
        if n <= self.tail.n {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("message {n} after {}", self.tail.n),
            ));
        }
        let mut record = Vec::with_capacity(NUMBER + payload.len());
        record.extend_from_slice(&n.to_le_bytes());
        record.extend_from_slice(payload);
        let (first, tail) = self.segments.back_mut().expect("the tail's segment is open");
        let tail = tail.as_mut().expect("the tail's segment is mapped");
        let (segment, offset) = match tail.append(&record) {
            Some(offset) => (*first, offset),
            None => {
                tail.sync()?;
                // Doubled; on a disk too full for that, as small as the record allows.
                let least = FIRST_SEGMENT.max(FIRST_RECORD as usize + HEADER + record.len());
                let size = (tail.size() * 2).clamp(FIRST_SEGMENT, MAX_SEGMENT).max(least);
                let seq = self.tail.seq;
                let mut next = match create_segment(&self.dir, seq, self.tail.n, size) {
                    Err(e) if e.kind() == io::ErrorKind::StorageFull && size > least => {
                        create_segment(&self.dir, seq, self.tail.n, least)?
                    }
                    created => created?,
                };
                let offset = next.append(&record).expect("sized for the record");
                if self.segments.len() > 1 {
                    // The old tail is not the head's segment: it need not stay mapped.
                    self.segments.back_mut().expect("a tail").1 = None;
                }
                self.segments.push_back((seq, Some(next)));
                if self.head.seq == seq {
                    // The log was empty: its head moves on to the new segment with the tail.
                    self.settle_head()?;
                    self.write(HEAD);
                }
                (seq, offset)
            }
        };
        let end = (offset + HEADER + record.len()) as u64;
        self.tail = Mark { seq: self.tail.seq + 1, segment, offset: end, n };
        self.write(TAIL);
        Ok(())
    }

    /// The oldest message: its number and payload.
    pub fn head(&self) -> Option<(u64, &[u8])> {
        if self.head.seq == self.tail.seq {
            return None;
        }
        message(self.front()?.read(self.head.offset as usize)?)
    }

    /// Takes the oldest message off the log (its number), removing a segment it leaves.
    pub fn take(&mut self) -> io::Result<Option<u64>> {
        if self.head.seq == self.tail.seq {
            return Ok(None);
        }
        let Some(record) = self.front().and_then(|s| s.read(self.head.offset as usize)) else {
            return Ok(None);
        };
        let (len, n) = (record.len(), message(record).map_or(self.head.n, |m| m.0));
        self.head = Mark {
            seq: self.head.seq + 1,
            segment: self.head.segment,
            offset: self.head.offset + (HEADER + len) as u64,
            n,
        };
        self.settle_head()?;
        self.write(HEAD);
        Ok(Some(n))
    }

    /// Up to `max` messages from the head, copied, without taking them.
    pub fn peek(&self, max: usize) -> io::Result<Vec<(u64, Vec<u8>)>> {
        let want = usize::try_from(self.len()).unwrap_or(usize::MAX).min(max);
        let mut out = Vec::with_capacity(want.min(1024));
        let mut offset = self.head.offset as usize;
        for (first, mapped) in &self.segments {
            if out.len() == want {
                break;
            }
            let opened;
            let segment = match mapped {
                Some(segment) => segment,
                None => {
                    opened = open_full(&segment_path(&self.dir, *first))?;
                    &opened
                }
            };
            for (_, record) in segment.records(offset).take(want - out.len()) {
                let (n, payload) = message(record).ok_or_else(|| corrupt("a record without its number"))?;
                out.push((n, payload.to_vec()));
            }
            offset = FIRST_RECORD as usize;
        }
        Ok(out)
    }

    /// Takes every message numbered `n` or less off the log; how many.
    pub fn take_through(&mut self, n: u64) -> io::Result<u64> {
        let mut taken = 0;
        while self.head().is_some_and(|(m, _)| m <= n) {
            self.take()?;
            taken += 1;
        }
        Ok(taken)
    }

    /// Messages on the log.
    pub fn len(&self) -> u64 {
        self.tail.seq - self.head.seq
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of the last message appended (or the log's `after` when none was).
    pub fn last_number(&self) -> u64 {
        self.tail.n
    }

    /// Writes what was appended and taken to the disk (for `--fsync`): the tail's segment,
    /// then the state with the tail marked as synced.
    pub fn sync(&mut self) -> io::Result<()> {
        if let Some((_, Some(tail))) = self.segments.back() {
            tail.sync()?;
        }
        self.write(SYNCED);
        self.state.flush()
    }
}

fn corrupt(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// Creates segment `seq` of `size` bytes, its meta record written and synced.
fn create_segment(dir: &Path, seq: u64, before: u64, size: usize) -> io::Result<Segment> {
    let mut segment = Segment::create(&segment_path(dir, seq), size)?;
    let mut meta = seq.to_le_bytes().to_vec();
    meta.extend_from_slice(&before.to_le_bytes());
    segment.append(&meta).expect("a segment holds its meta record");
    segment.sync()?;
    Ok(segment)
}

/// A segment the tail has left: its records end where its frames do.
fn open_full(path: &Path) -> io::Result<Segment> {
    let size = std::fs::metadata(path)?.len() as usize;
    Segment::open_at(path, size, size)
}

/// The segment files in `dir`, by first `seq`.
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
#[path = "queue_log_tests.rs"]
mod tests;
