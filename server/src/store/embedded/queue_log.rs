//! One queue's log: its messages in order in segments `<dir>/<first seq>.seg` (see `segment`),
//! and a mapped `state` page saying where the head and the tail are. Adding and taking are
//! copies and stores into shared maps — in the kernel, safe from a crash of the process, with
//! no system call; with a background (below) also when a segment is begun or left. Only the
//! head's and the tail's segments are mapped (with a background, also the next after the
//! head's): a backlog between them is on disk only.
//!
//! # Off the request path: the background
//!
//! A log opened with [`QueueLog::open_in`] (the store's) leaves every file operation of its
//! appends and takes to a [`Background`], whose work the store's syncer thread does (see
//! `syncer`); the request path only stores into its jobs and wakes that thread:
//! - **A spare segment made ahead.** When the tail's segment passes half full, the
//!   background makes a spare of the next size, `spare` in the log's directory: created,
//!   reserved (`fallocate`: zeros), fsynced, the directory fsynced, mapped. At the rollover the
//!   appender stores the meta record and the record into the spare's map, then the tail's
//!   mark naming it — no system call — and the background then fdatasyncs the spare, renames
//!   it to its name and fsyncs the directory. Until then the spare stays mapped (nothing opens
//!   it by its name).
//! - **The old tail's fdatasync** at a rollover is the background's (it only matters for a
//!   power loss; under `--fsync everysec` the syncer also fsyncs the state page, the newest
//!   segment and the spare of each log written, within 50 ms, after the jobs of its round).
//! - **A segment the head left** is unlinked by the background once it has fdatasynced the
//!   state page naming the new head, then the directory is fsynced: a power loss never finds a
//!   head's mark naming a removed file. The head's mark leaves it first (as inline).
//! - **The next segment mapped ahead.** The segment after the head's stays mapped, and when
//!   the head moves into it the background maps the one after; a head that finds it not
//!   mapped yet maps it itself.
//! - **A burst faster than the background** (no spare ready at a rollover, or one too small
//!   for the record) makes its segment inline as a log without a background does, counted in
//!   [`INLINE_SEGMENTS`] and logged at DEBUG; so does the replacement of an empty first
//!   segment too small for the first record. On a disk too full for a spare the background's
//!   attempt fails (logged at DEBUG, nothing left), the rollover's inline one too: the add is
//!   refused with `StorageFull` (`507`), nothing written.
//! - Not moved: opening a log (at start-up, and a new queue's log at its first plain add:
//!   its directory, state page and first segment, once per queue) is inline; so is reading a
//!   segment between the head's and the tail's (browse, `visit`, `newest`).
//!
//! A spare on disk holds its blocks (up to [`MAX_SEGMENT`] per log) until used. A log dropped
//! leaves its jobs undone: its next open settles them (below).
//!
//! Records are numbered by the caller (increasing, gaps allowed) and counted by the log (`seq`).
//! A segment starts with a meta record (its first `seq`, the number before its first message),
//! synced when it is created. The state page holds two copies of the tail, two of the head and
//! two of the tail as of the last `sync`, each `(seq, segment, offset, n)` with a generation
//! and a checksum, both copies written at each step: a copy torn by a crash or damaged fails
//! its checksum and the other is used (see `queue_log_state.rs`). The tail is written after its
//! record, the head after its take, so a crash loses at most a step not yet answered. `seq`
//! names segments; the count of messages (`len`) is kept apart, damaged records not in it.
//!
//! Damage (a flipped byte, a page lost by a power loss, a file cut short) loses the damaged
//! records alone. Opening walks every record from the head to the tail (`walk`): a record
//! that fails its checksum, or whose number is out of order, is skipped to the next plausible
//! frame (`Segment::resync`), never served and never a truncation point; the log's count is
//! what can be served; each damaged record is logged at WARN (directory, file, offset) and
//! counted in `logs::DAMAGED_RECORDS`. The head skips damaged records, never moves back over
//! what it took, and the tail's number never goes below a number added (it is at least the
//! largest of any valid slot). Only what follows the tail's mark is cut (a torn append), and
//! zeros before it (pages a power loss never wrote).
//!
//! # Crash safety: the order of the file operations
//!
//! A `kill -9` may fall between any two file operations and between any two stores into a
//! map; the next open then finds a log it opens, holding every add that returned and no
//! message whose take returned. Each operation is ordered so (the crash test,
//! `queue_log_crash_tests.rs`, stops a process at each of these points and checks it):
//! - **A record before the mark that counts it; a mark before it is answered.** The tail's
//!   mark is stored after its record, the head's after its take (an add or a take in flight
//!   happened or not; a take whose mark was stored but not answered lost its one message). In
//!   a store, a frame's payload comes before its length, a mark's words before its checksum.
//! - **A file is whole before its name exists.** A segment is made as `{first:020}.new`
//!   (blocks reserved, meta record written, fsynced), renamed to its name (also over an empty
//!   tail it replaces), then the directory fsynced; a `.new` file left is removed at open.
//!   The state page is created under its name but holds zeros until a mark is stored, which
//!   read as no mark (a page left short is completed at the next open). A new log: its
//!   directory (the parent fsynced), the state page, the first segment, then its marks.
//! - **A mark never names what is not on disk.** A segment is renamed into place before the
//!   tail's mark names it; the head's mark follows the tail's into a new segment, never leads
//!   it (an emptied log's add).
//! - **A file is removed only once nothing names it.** The head's mark leaves a segment
//!   before its file is unlinked; at open, the files outside the head's to the tail's segment
//!   (left, or created for a tail never marked) are removed once the marks are read and found
//!   good.
//! - **A spare is a segment only once the tail's mark names it.** At open, before the
//!   segments are read, a `spare` whose meta record names the tail's segment, which has no
//!   file (a crash before the background renamed it), is renamed to its name (so is one
//!   naming a segment past the last when the tail's mark is lost); any other (never used,
//!   or used by a rollover whose mark was never stored) is removed — but while the tail's
//!   segment is missing: a spare whose meta record a power loss lost, the tail's mark naming
//!   a segment past the last, gets it again and is renamed; else the open fails and nothing
//!   is removed.
//! - For a power loss, the directory is fsynced after each file is created, renamed or
//!   removed, and a new segment's meta record before its name exists (a spare's before the
//!   background renames it; its entry as `spare` is fsynced when it is made).

use std::collections::{BTreeSet, VecDeque};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::segment::{Segment, HEADER, MAX_RECORD};
use files::{
    create_segment, meta, open_full, remove_segment, remove_temps, segment_files, segment_path, settle_spare,
    sync_dir, write_meta, Files, SPARE,
};
pub use files::{Background, INLINE_SEGMENTS};
use state::{word, Mark, State, HEAD, STATE, TAIL};
#[cfg(test)]
use state::{SLOT, SYNCED};

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

/// The number before a segment's first message, from its meta record (if that is whole).
fn before(segment: &Segment) -> Option<u64> {
    segment.read(0).filter(|m| m.len() == 16).map(|m| word(m, 1))
}

/// What a walk of a segment's records meets, from offset `at` to `next` (where the next
/// record starts, or the records end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item<'a> {
    Message {
        at: usize,
        next: usize,
        n: u64,
        payload: &'a [u8],
    },
    /// A record that fails its checksum or is out of order (or a run of them).
    Damaged {
        at: usize,
        next: usize,
    },
}

/// Walks `segment`'s records from offset `at`, numbered above `after` and at most `upto`, to
/// the end of its records or to zeros up to it. A frame that fails its check, or a number out
/// of that order, is a damaged record: skipped to the next plausible frame, or to the end.
fn walk(segment: &Segment, mut at: usize, mut after: u64, upto: u64) -> impl Iterator<Item = Item<'_>> {
    std::iter::from_fn(move || {
        if at >= segment.end() || segment.zeros_from(at) {
            return None;
        }
        let this = at;
        let in_order = |n: u64, after: u64| n > after && n <= upto;
        match segment.frame_at(at).and_then(|(next, record)| Some((next, message(record)?))) {
            Some((next, (n, payload))) if in_order(n, after) => {
                (at, after) = (next, n);
                Some(Item::Message { at: this, next, n, payload })
            }
            _ => {
                let plausible = |record: &[u8]| message(record).is_some_and(|(n, _)| in_order(n, after));
                at = segment.resync(this, plausible).unwrap_or(segment.end());
                Some(Item::Damaged { at: this, next: at })
            }
        }
    })
}

/// Logs `records` records lost to damage at `offset` of `file` in the log `dir`.
fn warn_damage(dir: &Path, file: &Path, offset: usize, records: u64) {
    tracing::warn!(
        dir = %dir.display(),
        file = %file.display(),
        offset,
        records,
        "queue log: damaged records (their checksum fails, or they are cut off) are lost"
    );
}

/// Counts `records` records lost to damage (process-wide, for `/metrics`).
fn count_damage(records: u64) {
    super::logs::DAMAGED_RECORDS.fetch_add(records, std::sync::atomic::Ordering::Relaxed);
}

/// Logs and counts `records` records lost to damage.
fn report_damage(dir: &Path, file: &Path, offset: usize, records: u64) {
    warn_damage(dir, file, offset, records);
    count_damage(records);
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
    /// Messages that can be served: the records from the head to the tail less the damaged.
    len: u64,
    /// The damaged records ahead of the head found at open (already not in `len`), by
    /// segment and offset.
    damaged: BTreeSet<(u64, usize)>,
    /// Records this log found lost to damage.
    lost: u64,
    /// The background that does this log's file work (see the module doc); `None`: done
    /// inline (a log opened alone, in tests and tools).
    files: Option<Arc<Files>>,
    /// A spare was asked for since the last rollover.
    asked: bool,
    /// Segments this log's rollovers made inline with a background (no spare ready).
    inline: u64,
}

impl QueueLog {
    /// Opens the log in `dir`; a new one starts after message number `after`. Segments outside
    /// the head's to the tail's (left behind, or created and never written) are removed —
    /// once the marks are known good. A mark lost (both copies damaged) is rebuilt from the
    /// segments: the head at the first one's start, the tail by counting the last one's
    /// records; a log that cannot be made consistent is `InvalidData`, and nothing removed.
    pub fn open(dir: &Path, after: u64) -> io::Result<Self> {
        create_dir(dir)?;
        let mut state = State::open(dir)?;
        let mut files = segment_files(dir)?;
        if settle_spare(dir, state.read(TAIL).map(|t| t.segment), &files)? {
            sync_dir(dir)?;
            files = segment_files(dir)?;
        }
        if files.is_empty() {
            if state.any() {
                return Err(corrupt("the log's segments are missing"));
            }
            // The segment whole under its name, then the marks naming it.
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
                // With its meta record lost too, where the log starts is not known.
                let lost = |_| corrupt("the head's mark and the first segment's meta record are lost");
                let (seq, before) = meta(&files[0].1).map_err(lost)?;
                Mark { seq, segment: first, offset: FIRST_RECORD, n: before }
            }
        };
        if head.segment > tail.segment || head.seq < head.segment || tail.seq < tail.segment {
            return Err(corrupt("the head and the tail disagree"));
        }
        let mut segments = VecDeque::new();
        let mut removed = remove_temps(dir)?;
        for (first, path) in files {
            if first < head.segment || first > tail.segment {
                remove_segment(&path)?;
                removed = true;
            } else if first == tail.segment {
                let end = usize::try_from(tail.offset).unwrap_or(usize::MAX);
                segments.push_back((first, Some(Segment::open_at(&path, end)?)));
            } else if first == head.segment {
                segments.push_back((first, Some(open_full(&path)?)));
            } else {
                segments.push_back((first, None));
            }
        }
        if removed {
            sync_dir(dir)?;
        }
        let mut log = Self {
            dir: dir.to_owned(),
            state,
            segments,
            head,
            tail,
            len: 0,
            damaged: BTreeSet::new(),
            lost: 0,
            files: None,
            asked: false,
            inline: 0,
        };
        log.recount_tail()?;
        if log.head.seq > log.tail.seq {
            log.head = log.tail;
            log.write(HEAD);
        }
        log.check_head()?;
        log.survey()?;
        log.settle_head()?;
        Ok(log)
    }

    /// Opens the log in `dir` as [`QueueLog::open`] does (inline), then leaves its file work to
    /// `background`: from then on no append or take makes a system call that can wait on the
    /// disk, but for a rollover that finds no spare ready (see the module doc).
    pub fn open_in(dir: &Path, after: u64, background: &Arc<Background>) -> io::Result<Self> {
        let mut log = Self::open(dir, after)?;
        let files = Files::new(dir, background);
        // A tail already past half full gets its spare now.
        if let Some((_, Some(tail))) = log.segments.back() {
            if tail.end() > tail.size() / 2 {
                files.ask_spare((tail.size() * 2).clamp(FIRST_SEGMENT, MAX_SEGMENT));
                log.asked = true;
            }
        }
        log.files = Some(files);
        Ok(log)
    }

    /// The tail's end: a lost mark is rebuilt by walking the tail's segment to its last whole
    /// record (damaged ones with records after them count; a torn append after the last is
    /// cut); a mark past zeros (pages a power loss never wrote) or past a file cut short ends
    /// where the records do. Whatever follows the end is cut. The tail's number is never
    /// below that of any valid slot: no number added is given again.
    fn recount_tail(&mut self) -> io::Result<()> {
        let highest = self.state.highest_n().unwrap_or(0);
        let Some((first, Some(tail))) = self.segments.back_mut() else { return Ok(()) };
        let first = *first;
        let start = FIRST_RECORD as usize;
        let lost = self.tail.offset == u64::MAX;
        let (mut seq, mut n, mut end) = (first, before(tail).unwrap_or(0), start);
        let upto = if lost { u64::MAX } else { self.tail.n.max(highest) };
        for item in walk(tail, start, n, upto) {
            match item {
                Item::Message { next, n: number, .. } => (n, end) = (number, next),
                // A torn append with nothing after it: cut (the mark would have followed it).
                Item::Damaged { next, .. } if lost && next >= tail.end() => break,
                Item::Damaged { next, .. } => end = next,
            }
            seq = seq.checked_add(1).ok_or_else(|| corrupt("the log's count is at its end"))?;
        }
        if lost {
            let path = segment_path(&self.dir, first);
            if !tail.zeros_from(end) {
                report_damage(&self.dir, &path, end, 1);
                self.lost += 1;
            }
            self.tail = Mark { seq, segment: first, offset: end as u64, n: n.max(highest) };
        } else if (end as u64) < self.tail.offset || highest > self.tail.n {
            // Zeros (or a file cut short) up to the mark: its records are lost (counted by
            // `survey`), its count and number kept.
            self.tail.offset = self.tail.offset.min(end as u64);
            self.tail.n = self.tail.n.max(highest);
        } else {
            return tail.cut(end);
        }
        tail.cut(end)?;
        self.write(TAIL);
        Ok(())
    }

    /// A head that is not at the start of a record of its segment (walked from its start)
    /// moves to the next one when it is inside damaged records or past the last (nothing
    /// before it is served again); inside a whole record its mark is wrong: it restarts at its
    /// segment's start, its messages may come again, none is lost.
    fn check_head(&mut self) -> io::Result<()> {
        let Some(&(first, Some(ref front))) = self.segments.front() else { return Ok(()) };
        let head = self.head.offset as usize;
        let mut last = FIRST_RECORD as usize;
        let mut to = None;
        if head >= last {
            for item in walk(front, last, before(front).unwrap_or(0), self.tail.n) {
                let (Item::Message { at, next, .. } | Item::Damaged { at, next }) = item;
                last = next;
                if at >= head {
                    to = Some(head);
                    break;
                }
                if next > head {
                    to = matches!(item, Item::Damaged { .. }).then_some(next);
                    break;
                }
            }
            if head >= last && to.is_none() {
                to = Some(if head == last { head } else { front.end() });
            }
        }
        match to {
            Some(to) if to == head => return Ok(()),
            Some(to) => {
                self.head.offset = to as u64;
                self.snap_head();
            }
            None => {
                let n = before(front).unwrap_or(0);
                self.head = Mark { seq: first, segment: first, offset: FIRST_RECORD, n };
            }
        }
        self.write(HEAD);
        Ok(())
    }

    /// Counts the messages from the head to the tail (`len`), walking each segment between
    /// them (mapped only while walked). Each damaged record found is logged and counted, and
    /// so are records missing from a segment (its count known from the next one's name).
    fn survey(&mut self) -> io::Result<()> {
        let mut after = self.head.n;
        for (i, (first, mapped)) in self.segments.iter().enumerate() {
            let opened;
            let segment = match mapped {
                Some(segment) => segment,
                None => {
                    opened = open_full(&segment_path(&self.dir, *first))?;
                    &opened
                }
            };
            let (from, start) = match i {
                0 => (self.head.offset as usize, self.head.seq),
                _ => (FIRST_RECORD as usize, *first),
            };
            let path = segment_path(&self.dir, *first);
            let (mut good, mut bad) = (0, 0);
            for item in walk(segment, from, after, self.tail.n) {
                match item {
                    Item::Message { n, .. } => (good, after) = (good + 1, n),
                    Item::Damaged { at, .. } => {
                        warn_damage(&self.dir, &path, at, 1);
                        self.damaged.insert((*first, at));
                        bad += 1;
                    }
                }
            }
            // Its records' count is known (from the next one's name, or the tail's): bytes
            // damaged after its last record are no record; records missing (cut off) are.
            let expected = self.segments.get(i + 1).map_or(self.tail.seq, |s| s.0).saturating_sub(start);
            let lost = if expected >= good { expected - good } else { bad };
            if lost > bad {
                warn_damage(&self.dir, &path, segment.end(), lost - bad);
            }
            count_damage(lost);
            self.lost += lost;
            self.len += good;
        }
        Ok(())
    }

    /// Moves the head past the damaged records in front of it: those found at open are not
    /// in `len`; one found now is reported and leaves it.
    fn skip_damaged(&mut self) {
        let Some(&(first, Some(ref front))) = self.segments.front() else { return };
        let found: Vec<(usize, usize)> = walk(front, self.head.offset as usize, self.head.n, self.tail.n)
            .map_while(|item| match item {
                Item::Damaged { at, next } => Some((at, next)),
                Item::Message { .. } => None,
            })
            .collect();
        let Some(&(_, to)) = found.last() else { return };
        for &(at, _) in &found {
            if !self.damaged.remove(&(first, at)) {
                report_damage(&self.dir, &segment_path(&self.dir, first), at, 1);
                (self.lost, self.len) = (self.lost + 1, self.len.saturating_sub(1));
            }
        }
        self.head.offset = to as u64;
        self.head.seq = (self.head.seq + found.len() as u64).min(self.tail.seq);
        self.snap_head();
        self.write(HEAD);
    }

    /// Whether a whole record in order (numbered past the head's) is at the head.
    fn at_message(&self) -> bool {
        let record = self.front().and_then(|s| s.read(self.head.offset as usize));
        record.and_then(message).is_some_and(|(n, _)| n > self.head.n && n <= self.tail.n)
    }

    /// A head at the tail's end has the tail's count (it may be short of it after damage).
    fn snap_head(&mut self) {
        if self.head.segment == self.tail.segment && self.head.offset >= self.tail.offset {
            self.head.seq = self.tail.seq;
        }
    }

    fn write(&mut self, at: usize) {
        let mark = if at == HEAD { self.head } else { self.tail };
        self.state.write(at, mark);
    }

    fn front(&self) -> Option<&Segment> {
        self.segments.front().and_then(|(_, s)| s.as_ref())
    }

    /// Unmaps the segments between the head's and the tail's (they need not stay mapped) —
    /// but, with a background, the next after the head's (the head moves into it without a
    /// system call; the background maps the one after, see `settle_head`) and a
    /// spare in use not yet under its name (mapped until the background renames it).
    fn unmap_between(&mut self) {
        let last = self.segments.len().saturating_sub(1);
        let from = if self.files.is_some() { 2 } else { 1 };
        for i in from..last {
            let (first, mapped) = &mut self.segments[i];
            if mapped.is_some() && !self.files.as_ref().is_some_and(|f| f.unplaced(*first)) {
                *mapped = None;
            }
        }
    }

    /// Maps the `i`th segment, if it is not.
    fn map(&mut self, i: usize) -> io::Result<()> {
        let (first, slot) = &mut self.segments[i];
        if slot.is_none() {
            let mapped = self.files.as_ref().and_then(|f| f.take_mapped(*first));
            *slot = Some(match mapped {
                Some(segment) => segment,
                None => open_full(&segment_path(&self.dir, *first))?,
            });
        }
        Ok(())
    }

    /// Leaves the head's segment while it is not the tail's and has no record at the head:
    /// maps the next one, writes the head there, then removes the left one's file (in this
    /// order, so a crash between them leaves a file the next open removes) — with a
    /// background, that does it once the state page is synced. Whether it moved.
    fn settle_head(&mut self) -> io::Result<bool> {
        let mut moved = false;
        while self.segments.len() > 1 {
            // Mapped (never taken for empty because it is not), then the next one.
            self.map(0)?;
            if self.at_message() {
                break;
            }
            self.skip_damaged();
            if self.at_message() {
                break;
            }
            self.map(1)?;
            let next = self.segments[1].0;
            (self.head.seq, self.head.segment, self.head.offset) = (next, next, FIRST_RECORD);
            self.write(HEAD);
            let (first, segment) = self.segments.pop_front().expect("more than one");
            drop(segment);
            self.damaged.retain(|&(segment, _)| segment > first);
            match &self.files {
                Some(files) => {
                    files.left_head(first);
                    if let Some(&(next, None)) = self.segments.get(1) {
                        files.ask_map(next);
                    }
                }
                None => {
                    remove_segment(&segment_path(&self.dir, first))?;
                    sync_dir(&self.dir)?;
                }
            }
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
        let (segment, offset, left) = match tail.append(&record) {
            Some(offset) => {
                let size = tail.size();
                if !self.asked && offset > size / 2 {
                    if let Some(files) = &self.files {
                        files.ask_spare((size * 2).clamp(FIRST_SEGMENT, MAX_SEGMENT));
                    }
                    self.asked = true;
                }
                (*first, offset, None)
            }
            None => {
                // An empty tail (a new log's) is replaced by one large enough, under its name.
                let empty = tail.end() <= FIRST_RECORD as usize && self.tail.seq == *first;
                // Doubled; on a disk too full for that, as small as the record allows.
                let least = FIRST_SEGMENT.max(FIRST_RECORD as usize + HEADER + record.len());
                let size = (tail.size() * 2).clamp(FIRST_SEGMENT, MAX_SEGMENT).max(least);
                let (old, first, before) = (*first, self.tail.seq, self.tail.n);
                let spare = match &self.files {
                    Some(files) if !empty => files.take_spare(least),
                    _ => None,
                };
                let spared = spare.is_some();
                let mut next = match spare {
                    Some(mut spare) => {
                        write_meta(&mut spare, first, before);
                        spare
                    }
                    None => {
                        if self.files.is_none() {
                            tail.sync()?;
                        }
                        let dir = &self.dir;
                        let create = |size| create_segment(dir, first, before, size);
                        let next = match create(size) {
                            Err(e) if e.kind() == io::ErrorKind::StorageFull && size > least => {
                                create(least)?
                            }
                            created => created?,
                        };
                        if self.files.is_some() {
                            self.inline += 1;
                            INLINE_SEGMENTS.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(dir = %self.dir.display(), "queue log: no spare segment ready; one made inline");
                        }
                        next
                    }
                };
                let offset = next.append(&record).expect("sized for the record");
                if empty {
                    self.segments.pop_back();
                }
                self.segments.push_back((first, Some(next)));
                self.unmap_between();
                self.asked = false;
                (first, offset, (!empty).then_some((old, spared)))
            }
        };
        let end = (offset + HEADER + record.len()) as u64;
        self.tail = Mark { seq, segment, offset: end, n };
        self.write(TAIL);
        self.len += 1;
        // The tail's mark names the new segment: the background may place it and sync the old.
        match (&self.files, left) {
            (Some(files), Some((old, true))) => files.placed(segment, old),
            (Some(files), Some((old, false))) => files.left_tail(old),
            _ => {}
        }
        if self.head.seq == seq - 1 && self.head.segment != segment {
            // The log was empty: its head follows the tail to the new segment — after the tail's
            // mark names it (the head's mark is never past the tail's), and the add is done:
            // a segment that cannot be left yet is left at the next read.
            if let Err(error) = self.settle_head() {
                tracing::warn!(%error, dir = %self.dir.display(), "queue log: cannot leave a segment yet");
            }
        }
        Ok(())
    }

    /// The oldest message: its number and payload. A head left at the end of its segment (a
    /// move to the next one failed before) moves on first.
    pub fn head(&mut self) -> Option<(u64, &[u8])> {
        if self.len == 0 {
            return None;
        }
        if !self.at_message() {
            self.skip_damaged();
        }
        if !self.at_message() && self.segments.len() > 1 {
            if let Err(error) = self.settle_head() {
                tracing::warn!(%error, dir = %self.dir.display(), "queue log: cannot move to the next segment yet");
                return None;
            }
        }
        message(self.front()?.read(self.head.offset as usize)?)
    }

    /// Takes the oldest message off the log (its number), removing a segment it leaves.
    pub fn take(&mut self) -> io::Result<Option<u64>> {
        if self.len == 0 {
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
        self.len -= 1;
        self.snap_head();
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
        let (mut offset, mut after) = (self.head.offset as usize, self.head.n);
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
            let messages = walk(segment, offset, after, self.tail.n).filter_map(|item| match item {
                Item::Message { n, payload, .. } => Some((n, payload)),
                Item::Damaged { .. } => None,
            });
            for (n, payload) in messages.take(left) {
                after = n;
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
            let (from, after) = match i {
                0 => (self.head.offset as usize, self.head.n),
                _ => (FIRST_RECORD as usize, before(segment).unwrap_or(0)),
            };
            let mut newest = VecDeque::with_capacity(max - out.len());
            let numbers = walk(segment, from, after, self.tail.n).filter_map(|item| match item {
                Item::Message { n, .. } => Some(n),
                Item::Damaged { .. } => None,
            });
            for n in numbers {
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
        self.len
    }

    /// Records this log found lost to damage.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// No message on the log.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of the last message appended (or the log's `after` when none was).
    pub fn last_number(&self) -> u64 {
        self.tail.n
    }

    /// The files of the log in `dir` that an fsync from another thread must cover: its state
    /// page, its newest segment and its spare (the tail's segment until the background renames
    /// it). A segment the tail left is synced by the background's job queued at the rollover
    /// (on the same thread, before this), or inline at the rollover without a background.
    pub fn files_to_sync(dir: &Path) -> io::Result<Vec<PathBuf>> {
        let newest = segment_files(dir)?.pop().map(|(_, path)| path);
        Ok([dir.join(STATE)].into_iter().chain(newest).chain([dir.join(SPARE)]).collect())
    }

    #[cfg(test)]
    /// Segments this log's rollovers made inline with a background (no spare ready).
    pub fn inline_segments(&self) -> u64 {
        self.inline
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

/// Creates the log's directory if it is not there, and syncs its parent (where its entry is).
fn create_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    super::crash::around("directory: create", || std::fs::create_dir_all(dir))?;
    dir.parent().map_or(Ok(()), sync_dir)
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

#[cfg(test)]
#[path = "queue_log_crash_tests.rs"]
mod crash_tests;

#[cfg(test)]
#[path = "queue_log_damage_tests.rs"]
mod damage_tests;
