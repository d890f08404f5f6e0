//! A queue log's `state` page: two copies of each mark (tail, head, synced), each with a
//! generation and a checksum, both written at each step, the first then the second. A copy
//! torn by a crash fails its checksum and the other is used (one step older if the first
//! was torn: a step not yet answered); a copy damaged later (a flipped byte) loses nothing,
//! the other holding the same mark. Of two valid copies the one of the later generation is
//! used, so a mark moved backwards is the one read at the next open. (Pages written before
//! both copies were written at each step hold the newest mark in one copy: read the same.)
//!
//! Slot: `seq, segment, offset, n, generation` (`u64` LE each), then the checksum of those
//! 40 bytes (CRC-32 + 1, so zeros are never valid), stored last as a `Release` atomic.

use std::fs::OpenOptions;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::MmapMut;

use super::super::crash::{around, point};

pub(super) const STATE: &str = "state";
const STATE_BYTES: u64 = 4096;
/// A slot's bytes: five words and the checksum.
pub(super) const SLOT: usize = 48;
/// Where each pair of slots starts.
pub(super) const TAIL: usize = 0;
pub(super) const HEAD: usize = 2 * SLOT;
pub(super) const SYNCED: usize = 4 * SLOT;
const PAIRS: [usize; 3] = [TAIL, HEAD, SYNCED];

/// A place in the log: records counted so far, the segment (by its first `seq`), an offset in
/// it, and the number of the last message added (tail) or taken (head).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Mark {
    pub seq: u64,
    pub segment: u64,
    pub offset: u64,
    pub n: u64,
}

pub(super) fn word(bytes: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(bytes[8 * i..8 * i + 8].try_into().expect("8 bytes"))
}

fn slot_crc(bytes: &[u8]) -> u64 {
    u64::from(crc32fast::hash(bytes)) + 1
}

/// The mark in the slot at `at` and its generation, if its checksum holds.
fn read_slot(page: &[u8], at: usize) -> Option<(Mark, u64)> {
    let slot = &page[at..at + SLOT];
    let mark = Mark { seq: word(slot, 0), segment: word(slot, 1), offset: word(slot, 2), n: word(slot, 3) };
    (word(slot, 5) == slot_crc(&slot[..40])).then_some((mark, word(slot, 4)))
}

fn write_slot(page: &mut [u8], at: usize, mark: Mark, generation: u64) {
    point("state: store a mark");
    for (i, value) in [mark.seq, mark.segment, mark.offset, mark.n, generation].into_iter().enumerate() {
        page[at + 8 * i..at + 8 * i + 8].copy_from_slice(&value.to_le_bytes());
    }
    let crc = slot_crc(&page[at..at + 40]);
    point("state: store a mark, its words stored, not its checksum");
    let place = page[at + 40..at + SLOT].as_mut_ptr().cast::<u64>();
    // SAFETY: `place` is 8 exclusively borrowed bytes of the page, 8-aligned (the map starts
    // on a page, slots are 48 bytes), only accessed through this store while borrowed. The
    // `Release` store keeps the words' plain stores above before the checksum that makes
    // them valid, for the compiler and the CPU (a `fence` orders only atomics).
    #[allow(unsafe_code)]
    unsafe { AtomicU64::from_ptr(place) }.store(crc.to_le(), Ordering::Release);
    point("state: store a mark");
}

/// Every valid mark in `page`, the bytes of a state file read without mapping it (a short
/// file holds the slots it holds whole).
pub(super) fn marks_in(page: &[u8]) -> Vec<Mark> {
    let slots = PAIRS.into_iter().flat_map(|at| [at, at + SLOT]).filter(|at| at + SLOT <= page.len());
    slots.filter_map(|at| read_slot(page, at)).map(|(mark, _)| mark).collect()
}

/// Of the pair of slots at `at`, the valid one of the later generation (the second on a tie)
/// and its generation.
fn newest(page: &[u8], at: usize) -> Option<(Mark, u64)> {
    match (read_slot(page, at), read_slot(page, at + SLOT)) {
        (Some((_, a)), Some((mark, b))) if b >= a => Some((mark, b)),
        (Some(first), _) => Some(first),
        (None, second) => second,
    }
}

/// The state page, mapped.
pub(super) struct State {
    page: MmapMut,
    /// For each pair (tail, head, synced): the generation written last.
    generation: [u64; 3],
}

fn pair(at: usize) -> usize {
    PAIRS.iter().position(|&p| p == at).expect("a pair of slots")
}

impl State {
    /// Opens (or creates) `dir/state` with its blocks reserved: a full disk is an error here,
    /// never a `SIGBUS` at the first touch of a sparse page.
    pub fn open(dir: &Path) -> io::Result<Self> {
        let file = around("state: open or create", || {
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(dir.join(STATE))
        })?;
        if file.metadata()?.len() < STATE_BYTES {
            around("state: fallocate", || {
                rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, STATE_BYTES)
            })
            .map_err(io::Error::from)?;
            around("state: fsync", || file.sync_all())?;
            super::files::sync_dir(dir)?;
        }
        // SAFETY: as in `segment`: a file of our locked data directory, never truncated while
        // mapped, written only through this map.
        #[allow(unsafe_code)]
        let page = unsafe { MmapMut::map_mut(&file)? };
        let mut state = Self { page, generation: [0; 3] };
        for (i, at) in PAIRS.into_iter().enumerate() {
            state.generation[i] = newest(&state.page, at).map_or(0, |m| m.1);
        }
        Ok(state)
    }

    /// The newest valid mark of the pair at `at`.
    pub fn read(&self, at: usize) -> Option<Mark> {
        newest(&self.page, at).map(|m| m.0)
    }

    /// The largest message number of any valid slot (a lower bound of the last one added:
    /// head and synced marks are never past the tail).
    pub fn highest_n(&self) -> Option<u64> {
        let slots = PAIRS.into_iter().flat_map(|at| [at, at + SLOT]);
        slots.filter_map(|at| read_slot(&self.page, at)).map(|(mark, _)| mark.n).max()
    }

    /// Whether any slot holds a valid mark.
    pub fn any(&self) -> bool {
        PAIRS.into_iter().any(|at| self.read(at).is_some())
    }

    /// Writes `mark` into both slots of the pair at `at`, the first then the second.
    pub fn write(&mut self, at: usize, mark: Mark) {
        let i = pair(at);
        self.generation[i] += 1;
        write_slot(&mut self.page, at, mark, self.generation[i]);
        // The first copy's stores all before any of the second's: a process killed between
        // them leaves one whole copy (the compiler keeps program order; a killed process's
        // stores already made reach the page cache, whatever the CPU's order).
        std::sync::atomic::compiler_fence(Ordering::SeqCst);
        write_slot(&mut self.page, at + SLOT, mark, self.generation[i]);
    }

    /// Writes `mark` into every slot (a new log).
    pub fn init(&mut self, mark: Mark) {
        for at in PAIRS {
            write_slot(&mut self.page, at, mark, 0);
            write_slot(&mut self.page, at + SLOT, mark, 0);
        }
        self.generation = [0; 3];
    }

    #[cfg(test)]
    /// Writes the page to the disk.
    pub fn flush(&self) -> io::Result<()> {
        around("state: msync", || self.page.flush())
    }
}
