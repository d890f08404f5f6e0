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
//! two of the tail as of the last `sync`, each `(seq, segment, offset, n)` with a generation
//! and a checksum, written in turn: a copy torn by a crash fails its checksum and the other, one
//! step older, is used (see `queue_log_state.rs`). The tail is written after its record, the head after its take, so a crash loses at
//! most a step not yet answered. After a power loss the frames written since the last sync are
//! checked, and the log ends at the first one lost.

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};

use super::segment::{Segment, HEADER, MAX_RECORD};
use files::{
    create_segment, meta, open_full, remove_segment, replace_segment, segment_files, segment_path, sync_dir,
};
#[cfg(test)]
use state::SLOT;
use state::{word, Mark, State, HEAD, STATE, SYNCED, TAIL};

#[path = "queue_log_files.rs"]
mod files;
#[path = "queue_log_state.rs"]
mod state;

/// The first segment's size; each next one doubles, up to [`MAX_SEGMENT`] (or the record).
pub const FIRST_SEGMENT: usize = 64 * 1024;
pub const MAX_SEGMENT: usize = 8 << 20;
/// The message number before each record's payload.
const NUMBER: usize = 8;
/// Where a segment's first message starts: after its meta record (first seq, number before).
const FIRST_RECORD: u64 = (HEADER + 16) as u64;

/// A record's message number and payload.
fn message(record: &[u8]) -> Option<(u64, &[u8])> {
    let number = record.get(..NUMBER)?;
    Some((word(number, 0), &record[NUMBER..]))
}

/// The fewest bytes a record takes in a segment: its frame's header and its number.
pub const LEAST_RECORD: u64 = (HEADER + NUMBER) as u64;

/// What a log's files say of it without opening it (read only: for a log that may not open).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traces {
    /// A segment file or a valid mark is there: a log whose creation failed (a full disk)
    /// leaves neither, and holds no message.
    pub begun: bool,
    /// The highest message number a valid mark of its state page names.
    pub marked: u64,
    /// At least the records ever appended to it (its count, `seq`), from its marks and from
    /// its segments' names and sizes.
    pub count_bound: u64,
}

/// Reads the [`Traces`] of the log in `dir`; what cannot be read counts as begun.
pub fn traces(dir: &Path) -> Traces {
    let marks = match std::fs::read(dir.join(STATE)) {
        Ok(page) => state::marks_in(&page),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(_) => return Traces { begun: true, ..Traces::default() },
    };
    let Ok(files) = segment_files(dir) else { return Traces { begun: true, ..Traces::default() } };
    let from_files = files.iter().map(|(first, path)| {
        let size = std::fs::metadata(path).map_or(MAX_SEGMENT as u64, |m| m.len());
        first.saturating_add(size / LEAST_RECORD)
    });
    let from_marks = marks.iter().map(|m| m.seq);
    Traces {
        begun: !files.is_empty() || !marks.is_empty(),
        marked: marks.iter().map(|m| m.n).max().unwrap_or(0),
        count_bound: from_files.chain(from_marks).max().unwrap_or(0),
    }
}

/// A queue's log, open.
pub struct QueueLog {
    dir: PathBuf,
    state: State,
    /// The segments from the head's to the tail's, by first `seq`; only those two mapped.
    segments: VecDeque<(u64, Option<Segment>)>,
    head: Mark,
    tail: Mark,
}

impl QueueLog {
    /// Opens the log in `dir`; a new one starts after message number `after`. Segments outside
    /// the head's to the tail's (left behind, or created and never written) are removed —
    /// once the marks are known good. A mark lost (both copies damaged) is rebuilt from the
    /// segments: the head at the first one's start, the tail by counting the last one's
    /// records; a log that cannot be made consistent is `InvalidData`, and nothing removed.
    pub fn open(dir: &Path, after: u64) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut state = State::open(dir)?;
        let mut files = segment_files(dir)?;
        if files.is_empty() {
            if state.any() {
                return Err(corrupt("the log's segments are missing"));
            }
            create_segment(dir, 0, after, FIRST_SEGMENT)?;
            state.init(Mark { seq: 0, segment: 0, offset: FIRST_RECORD, n: after });
            files = segment_files(dir)?;
        }
        let has = |first: u64| files.iter().any(|f| f.0 == first);
        let (first, last) = (files[0].0, files[files.len() - 1].0);
        // Lost: recounted from the last segment's start (`recount_tail`).
        let tail = state.read(TAIL).unwrap_or(Mark { seq: last, segment: last, offset: u64::MAX, n: 0 });
        if !has(tail.segment) {
            return Err(corrupt("the tail's segment is missing"));
        }
        let head = match state.read(HEAD) {
            Some(head) if has(head.segment) => head,
            // Left by a `take` that removed it: the head is at the start of the next one.
            Some(head) => match files.iter().find(|f| f.0 > head.segment) {
                Some(&(next, ref path)) if next == head.seq && meta(path)?.0 == next => {
                    Mark { seq: next, segment: next, offset: FIRST_RECORD, n: head.n }
                }
                _ => return Err(corrupt("the head's segment is missing")),
            },
            None => {
                let (seq, before) = meta(&files[0].1)?;
                Mark { seq, segment: first, offset: FIRST_RECORD, n: before }
            }
        };
        if head.segment > tail.segment || head.seq < head.segment || tail.seq < tail.segment {
            return Err(corrupt("the head and the tail disagree"));
        }
        let synced = state.read(SYNCED).filter(|s| s.segment == tail.segment && tail.offset != u64::MAX);
        let verified = synced.map_or(0, |s| s.offset as usize);
        let mut segments = VecDeque::new();
        let mut removed = false;
        for (first, path) in files {
            if first < head.segment || first > tail.segment {
                remove_segment(&path)?;
                removed = true;
            } else if first == tail.segment {
                let end = usize::try_from(tail.offset).unwrap_or(usize::MAX);
                segments.push_back((first, Some(Segment::open_at(&path, end, verified)?)));
            } else if first == head.segment {
                segments.push_back((first, Some(open_full(&path)?)));
            } else {
                segments.push_back((first, None));
            }
        }
        if removed {
            sync_dir(dir)?;
        }
        let mut log = Self { dir: dir.to_owned(), state, segments, head, tail };
        log.recount_tail()?;
        if log.head.seq > log.tail.seq {
            log.head = log.tail;
            log.write(HEAD);
        }
        log.check_head()?;
        log.settle_head()?;
        Ok(log)
    }

    /// After a power loss the tail's segment may end short of the tail's mark (or the mark
    /// was lost): the tail is then its last whole record.
    fn recount_tail(&mut self) -> io::Result<()> {
        let Some((first, Some(tail))) = self.segments.back() else { return Ok(()) };
        if tail.end() as u64 >= self.tail.offset {
            return Ok(());
        }
        let meta = tail.read(0).filter(|m| m.len() == 16);
        let Some(before) = meta.map(|m| word(m, 1)) else {
            return Err(corrupt("the tail's segment lost its meta record"));
        };
        let (mut seq, mut n, mut end) = (*first, before, FIRST_RECORD);
        for (offset, record) in tail.records(FIRST_RECORD as usize) {
            seq = seq.checked_add(1).ok_or_else(|| corrupt("the log's count is at its end"))?;
            n = message(record).map_or(n, |(number, _)| number);
            end = (offset + HEADER + record.len()) as u64;
        }
        self.tail = Mark { seq, segment: *first, offset: end, n };
        self.write(TAIL);
        Ok(())
    }

    /// A head whose offset is not where its count says (walking the records from its
    /// segment's start) restarts at that start: its messages may come again, none is lost.
    fn check_head(&mut self) -> io::Result<()> {
        let Some(&(first, Some(ref front))) = self.segments.front() else { return Ok(()) };
        let (mut at, mut seq) = (FIRST_RECORD, first);
        for (offset, record) in front.records(FIRST_RECORD as usize) {
            if at >= self.head.offset || seq >= self.head.seq {
                break;
            }
            (at, seq) = ((offset + HEADER + record.len()) as u64, seq + 1);
        }
        if (at, seq) == (self.head.offset, self.head.seq) {
            return Ok(());
        }
        let before = front.read(0).filter(|m| m.len() == 16).map(|m| word(m, 1));
        let n = before.ok_or_else(|| corrupt("the head's segment lost its meta record"))?;
        self.head = Mark { seq: first, segment: first, offset: FIRST_RECORD, n };
        self.write(HEAD);
        Ok(())
    }

    fn write(&mut self, at: usize) {
        let mark = if at == HEAD { self.head } else { self.tail };
        self.state.write(at, mark);
    }

    fn front(&self) -> Option<&Segment> {
        self.segments.front().and_then(|(_, s)| s.as_ref())
    }

    /// Maps the `i`th segment, if it is not.
    fn map(&mut self, i: usize) -> io::Result<()> {
        let (first, slot) = &mut self.segments[i];
        if slot.is_none() {
            *slot = Some(open_full(&segment_path(&self.dir, *first))?);
        }
        Ok(())
    }

    /// Leaves the head's segment while it is not the tail's and has no record at the head:
    /// maps the next one, writes the head there, then removes the left one's file (in this
    /// order, so a crash between them leaves a file the next open removes). Whether it moved.
    fn settle_head(&mut self) -> io::Result<bool> {
        let mut moved = false;
        while self.segments.len() > 1 {
            // Mapped (never taken for empty because it is not), then the next one.
            self.map(0)?;
            if self.front().is_some_and(|s| s.read(self.head.offset as usize).is_some()) {
                break;
            }
            self.map(1)?;
            let next = self.segments[1].0;
            (self.head.segment, self.head.offset) = (next, FIRST_RECORD);
            self.write(HEAD);
            let (first, segment) = self.segments.pop_front().expect("more than one");
            drop(segment);
            remove_segment(&segment_path(&self.dir, first))?;
            sync_dir(&self.dir)?;
            moved = true;
        }
        Ok(moved)
    }

    /// Appends message `n` (larger than any before) with `payload`. Fails, changing nothing,
    /// when `n` is not larger, the payload too long for a record (`InvalidInput`), or when a
    /// new segment was needed and the disk has no room.
    pub fn append(&mut self, n: u64, payload: &[u8]) -> io::Result<()> {
        if n <= self.tail.n {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("message {n} after {}", self.tail.n),
            ));
        }
        if payload.len() > MAX_RECORD - NUMBER {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "a payload too long for a record"));
        }
        let seq = self.tail.seq.checked_add(1).ok_or_else(|| corrupt("the log's count is at its end"))?;
        let mut record = Vec::with_capacity(NUMBER + payload.len());
        record.extend_from_slice(&n.to_le_bytes());
        record.extend_from_slice(payload);
        let (first, tail) = self.segments.back_mut().expect("the tail's segment is open");
        let tail = tail.as_mut().expect("the tail's segment is mapped");
        let (segment, offset) = match tail.append(&record) {
            Some(offset) => (*first, offset),
            None => {
                tail.sync()?;
                // An empty tail (a new log's) is replaced by one large enough, under its name.
                let empty = tail.end() == FIRST_RECORD as usize;
                // Doubled; on a disk too full for that, as small as the record allows.
                let least = FIRST_SEGMENT.max(FIRST_RECORD as usize + HEADER + record.len());
                let size = (tail.size() * 2).clamp(FIRST_SEGMENT, MAX_SEGMENT).max(least);
                let (dir, first, before) = (&self.dir, self.tail.seq, self.tail.n);
                let create = |size| match empty {
                    true => replace_segment(dir, first, before, size),
                    false => create_segment(dir, first, before, size),
                };
                let mut next = match create(size) {
                    Err(e) if e.kind() == io::ErrorKind::StorageFull && size > least => create(least)?,
                    created => created?,
                };
                let offset = next.append(&record).expect("sized for the record");
                if empty {
                    self.segments.pop_back();
                } else if self.segments.len() > 1 {
                    // The old tail is not the head's segment: it need not stay mapped.
                    self.segments.back_mut().expect("a tail").1 = None;
                }
                self.segments.push_back((first, Some(next)));
                if self.head.seq == first {
                    // The log was empty: its head moves on to the new segment with the tail.
                    self.settle_head()?;
                }
                (first, offset)
            }
        };
        let end = (offset + HEADER + record.len()) as u64;
        self.tail = Mark { seq, segment, offset: end, n };
        self.write(TAIL);
        Ok(())
    }

    /// The oldest message: its number and payload. A head left at the end of its segment (a
    /// move to the next one failed before) moves on first.
    pub fn head(&mut self) -> Option<(u64, &[u8])> {
        if self.head.seq == self.tail.seq {
            return None;
        }
        let stuck = self.front().is_none_or(|s| s.read(self.head.offset as usize).is_none());
        if stuck && self.segments.len() > 1 {
            if let Err(error) = self.settle_head() {
                tracing::warn!(%error, dir = %self.dir.display(), "queue log: cannot move to the next segment yet");
                return None;
            }
        }
        message(self.front()?.read(self.head.offset as usize)?)
    }

    /// Takes the oldest message off the log (its number), removing a segment it leaves.
    pub fn take(&mut self) -> io::Result<Option<u64>> {
        if self.head.seq == self.tail.seq {
            return Ok(None);
        }
        if self.head().is_none() {
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
        // The message is taken: a segment that cannot be left yet is left at the next read.
        let moved = self.settle_head().unwrap_or_else(|error| {
            tracing::warn!(%error, dir = %self.dir.display(), "queue log: cannot leave a segment yet");
            false
        });
        if !moved {
            self.write(HEAD);
        }
        Ok(Some(n))
    }

    #[cfg(test)]
    /// Up to `max` messages from the head, copied, without taking them.
    pub fn peek(&self, max: usize) -> io::Result<Vec<(u64, Vec<u8>)>> {
        let mut out = Vec::new();
        self.visit(max, |n, payload| {
            out.push((n, payload.to_vec()));
            Ok(true)
        })?;
        Ok(out)
    }

    /// Calls `each` with up to `max` messages from the head, in order, taking none, until it
    /// answers `false`; a segment between the head's and the tail's is mapped only while read.
    pub fn visit(&self, max: usize, mut each: impl FnMut(u64, &[u8]) -> io::Result<bool>) -> io::Result<()> {
        let mut left = usize::try_from(self.len()).unwrap_or(usize::MAX).min(max);
        let mut offset = self.head.offset as usize;
        for (first, mapped) in &self.segments {
            if left == 0 {
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
            for (_, record) in segment.records(offset).take(left) {
                let (n, payload) = message(record).ok_or_else(|| corrupt("a record without its number"))?;
                if !each(n, payload)? {
                    return Ok(());
                }
                left -= 1;
            }
            offset = FIRST_RECORD as usize;
        }
        Ok(())
    }

    /// The numbers of the newest `max` messages, newest first, read from the tail's segment
    /// back (a segment between the head's and the tail's is mapped only while read): numbers
    /// may skip (a gap after a restart, numbers given through SQLite).
    pub fn newest(&self, max: usize) -> io::Result<Vec<u64>> {
        let mut out = Vec::new();
        for (i, (first, mapped)) in self.segments.iter().enumerate().rev() {
            if out.len() >= max {
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
            let from = if i == 0 { self.head.offset as usize } else { FIRST_RECORD as usize };
            let mut newest = VecDeque::with_capacity(max - out.len());
            for (_, record) in segment.records(from) {
                let (n, _) = message(record).ok_or_else(|| corrupt("a record without its number"))?;
                if newest.len() == max - out.len() {
                    newest.pop_front();
                }
                newest.push_back(n);
            }
            out.extend(newest.into_iter().rev());
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

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of the last message appended (or the log's `after` when none was).
    pub fn last_number(&self) -> u64 {
        self.tail.n
    }

    /// The files of the log in `dir` that an fsync from another thread must cover: its state
    /// page and its newest segment (a segment the tail left was synced as it did).
    pub fn files_to_sync(dir: &Path) -> io::Result<Vec<PathBuf>> {
        let newest = segment_files(dir)?.pop().map(|(_, path)| path);
        Ok(std::iter::once(dir.join(STATE)).chain(newest).collect())
    }

    #[cfg(test)]
    /// Writes what was appended and taken to the disk (for `--fsync`): the tail's segment,
    /// then the state with the tail marked as synced.
    pub fn sync(&mut self) -> io::Result<()> {
        if let Some((_, Some(tail))) = self.segments.back() {
            tail.sync()?;
        }
        self.state.write(SYNCED, self.tail);
        self.state.flush()
    }
}

fn corrupt(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

#[cfg(test)]
#[path = "queue_log_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "queue_log_recovery_tests.rs"]
mod recovery_tests;
