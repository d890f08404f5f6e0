//! One segment of an append-only log: a file whose blocks are reserved when it is created
//! (`fallocate`, so a full disk is an error here and never a `SIGBUS` later) and mapped
//! shared, so an appended record is in the kernel's page cache — safe from a crash of the
//! process — once copied, without a system call. Records are framed with their length and a
//! CRC-32 of the payload.
//!
//! Frame: `len: u32 LE` (payload bytes, never 0), `crc: u32 LE`, payload. The zeros after the
//! last record end the segment. The header is written after the payload, so a record is
//! either whole or absent to anyone reading the file after the process died.
//!
//! Damage: a frame that fails its checksum is skipped, not taken for the end. Its length
//! cannot be trusted, so the next record is found by [`Segment::resync`]: the first later
//! offset where a frame validates, its payload is plausible to the owner (a queue log checks
//! that its message number lies between its neighbours') and what follows it looks like a
//! frame or the end. The scan meets the damaged record's own bytes before the next record, so
//! a false match needs a CRC-32 match on them at a plausible number: negligible, unless the
//! damaged record's payload was itself made to hold a frame.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};

use memmap2::MmapMut;

use super::crash::{around, point};

/// Bytes of a record's frame before its payload.
pub const HEADER: usize = 8;
/// The largest payload a frame's `u32` length holds.
pub const MAX_RECORD: usize = u32::MAX as usize;

/// A mapped segment and where its records end.
pub struct Segment {
    map: MmapMut,
    /// Bytes of whole records from the start: where the next record goes.
    end: usize,
    /// Kept open for `sync_data` (the map is what reads and writes).
    file: File,
}

fn frame(map: &[u8], at: usize) -> Option<(usize, &[u8])> {
    let header = map.get(at..at + HEADER)?;
    let len = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(header[4..].try_into().ok()?);
    let payload = map.get(at + HEADER..(at + HEADER).checked_add(len)?)?;
    (len > 0 && crc32fast::hash(payload) == crc).then_some((at + HEADER + len, payload))
}

impl Segment {
    /// Creates the segment `path` of `size` bytes with its blocks reserved. On an error (the
    /// disk is full: `StorageFull`) no file is left behind.
    pub fn create(path: &Path, size: usize) -> io::Result<Self> {
        let file = around("segment: create", || {
            OpenOptions::new().read(true).write(true).create_new(true).open(path)
        })?;
        let reserved = around("segment: fallocate", || {
            rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, size as u64)
        })
        .map_err(io::Error::from)
        .and_then(|()| around("segment: fsync", || file.sync_all()));
        if let Err(error) = reserved {
            drop(file);
            let _ = around("segment: unlink", || std::fs::remove_file(path));
            return Err(error);
        }
        Self::map(file, 0)
    }

    #[cfg(test)]
    /// Opens the segment `path`: its records are those up to the first frame that is empty,
    /// runs past the end or fails its checksum; whatever follows is zeroed (a torn tail).
    pub fn open(path: &Path) -> io::Result<Self> {
        let size = std::fs::metadata(path)?.len() as usize;
        let mut segment = Self::open_at(path, size)?;
        let end = segment.records(0).last().map_or(0, |(at, payload)| at + HEADER + payload.len());
        segment.cut(end)?;
        Ok(segment)
    }

    /// Opens the segment `path` whose records end at `end` (as its owner recorded; no further
    /// than the file): nothing is checked or changed — its owner walks the frames
    /// ([`Segment::frame_at`], [`Segment::resync`]) and [`Segment::cut`]s what follows its end.
    pub fn open_at(path: &Path, end: usize) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let mut segment = Self::map(file, 0)?;
        segment.end = end.min(segment.map.len());
        Ok(segment)
    }

    /// Ends the records at `end` and zeroes whatever follows (a torn append; frames appended
    /// after the owner's last mark), the zeros synced before anything is appended: they would
    /// otherwise come back after the next power loss in place of records appended there and
    /// lost again.
    pub fn cut(&mut self, end: usize) -> io::Result<()> {
        self.end = end.min(self.map.len());
        self.zero_tail()
    }

    /// Zeroes whatever follows the end (a torn append; frames past the owner's mark), so no
    /// stale frame can follow a later record, and writes the zeros to the disk. Read with
    /// `pread` in chunks, not through the map, so the scan does not bring the tail into memory.
    fn zero_tail(&mut self) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        const CHUNK: usize = 64 * 1024;
        let mut buf = vec![0; CHUNK];
        let mut at = self.end;
        let mut zeroed: Option<(usize, usize)> = None;
        while at < self.map.len() {
            let n = CHUNK.min(self.map.len() - at);
            self.file.read_exact_at(&mut buf[..n], at as u64)?;
            if buf[..n].iter().any(|&b| b != 0) {
                around("segment: zero the tail", || self.map[at..at + n].fill(0));
                zeroed = Some((zeroed.map_or(at, |z| z.0), at + n));
            }
            at += n;
        }
        if let Some((from, to)) = zeroed {
            around("segment: msync", || self.map.flush_range(from, to - from))?;
            around("segment: fdatasync", || self.file.sync_data())?;
        }
        Ok(())
    }

    fn map(file: File, end: usize) -> io::Result<Self> {
        // SAFETY: the map is of a file of the data directory, which the store holds locked
        // (`lock::DirLock`) for as long as it runs, and never truncated while mapped; nothing
        // else in this process writes the file but through this map.
        #[allow(unsafe_code)]
        let map = unsafe { MmapMut::map_mut(&file)? };
        Ok(Self { map, end, file })
    }

    /// Appends a record of `payload` (not empty, at most [`MAX_RECORD`] bytes) and returns its
    /// offset, or `None` when it does not fit in what is left (the caller starts another
    /// segment) or in a frame.
    pub fn append(&mut self, payload: &[u8]) -> Option<usize> {
        assert!(!payload.is_empty(), "a record is never empty");
        let len = u32::try_from(payload.len()).ok()?;
        let at = self.end;
        let next = at.checked_add(HEADER + payload.len()).filter(|&n| n <= self.map.len())?;
        point("segment: append");
        self.map[at + HEADER..next].copy_from_slice(payload);
        self.map[at + 4..at + HEADER].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
        point("segment: append, the payload stored, not its length");
        // The payload and checksum before the length that makes the record visible: the
        // length's bytes are stored as atomics with `Release` (a fence orders only atomics, and
        // the length is not aligned for an `AtomicU32`), so neither the compiler nor the CPU
        // moves the plain stores above after them. A length seen in part fails the checksum.
        for (i, byte) in len.to_le_bytes().into_iter().enumerate() {
            let place: *mut u8 = &mut self.map[at + i];
            // SAFETY: `place` is a valid, exclusively borrowed byte of the map (an `AtomicU8`
            // has the size and alignment of a `u8`), accessed only through this store while
            // the borrow lasts.
            #[allow(unsafe_code)]
            unsafe { AtomicU8::from_ptr(place) }.store(byte, Ordering::Release);
            point("segment: append, a byte of the length stored");
        }
        self.end = next;
        Some(at)
    }

    /// The payload of the record at `offset`, if a whole record starts there.
    pub fn read(&self, offset: usize) -> Option<&[u8]> {
        (offset < self.end).then(|| frame(&self.map, offset)).flatten().map(|(_, payload)| payload)
    }

    /// The record at `at` (ending no further than the records): where the next one starts and
    /// its payload; `None` for a frame that is empty, runs past the end or fails its checksum.
    pub fn frame_at(&self, at: usize) -> Option<(usize, &[u8])> {
        frame(&self.map[..self.end], at)
    }

    /// Whether nothing but zeros lies from `at` to the end of the records (the end of a
    /// segment's records when its end is its size).
    pub fn zeros_from(&self, at: usize) -> bool {
        self.map.get(at..self.end).is_none_or(|rest| rest.iter().all(|&b| b == 0))
    }

    /// After a frame at `bad` that fails its check: the first offset past it where a frame
    /// validates whose payload `plausible` accepts, followed by the end, zeros to the end, or
    /// a header whose length fits. `None`: nothing valid follows (the damage runs to the end).
    pub fn resync(&self, bad: usize, plausible: impl Fn(&[u8]) -> bool) -> Option<usize> {
        let map = &self.map[..self.end];
        let fits = |at: usize| {
            let len = map.get(at..at + 4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")));
            let room = map.len().checked_sub(at + HEADER);
            len.zip(room).is_some_and(|(len, room)| len > 0 && len as usize <= room)
        };
        (bad + 1..map.len().saturating_sub(HEADER)).find(|&at| {
            // The length first: it rejects nearly every offset without a checksum.
            fits(at)
                && frame(map, at).is_some_and(|(next, payload)| {
                    plausible(payload) && (next == map.len() || fits(next) || self.zeros_from(next))
                })
        })
    }

    #[cfg(test)]
    /// The records from `offset` on, with their offsets, up to the first bad frame.
    pub fn records(&self, offset: usize) -> impl Iterator<Item = (usize, &[u8])> {
        let mut at = offset;
        std::iter::from_fn(move || {
            let (next, payload) = frame(&self.map[..self.end], at)?;
            let this = at;
            at = next;
            Some((this, payload))
        })
    }

    /// Bytes of whole records from the start.
    pub fn end(&self) -> usize {
        self.end
    }

    /// The segment's size: the room for records, headers included.
    pub fn size(&self) -> usize {
        self.map.len()
    }

    /// Writes the records appended so far to the disk (for `--fsync`): the written pages of
    /// the map, then the file's data.
    pub fn sync(&self) -> io::Result<()> {
        around("segment: msync", || self.map.flush_range(0, self.end))?;
        around("segment: fdatasync", || self.file.sync_data())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::os::unix::fs::FileExt;
    use std::process::Command;

    use super::*;

    fn payloads(segment: &Segment) -> Vec<Vec<u8>> {
        segment.records(0).map(|(_, payload)| payload.to_vec()).collect()
    }

    #[test]
    fn records_come_back_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.seg");
        let mut segment = Segment::create(&path, 4096).unwrap();
        let first = segment.append(b"first").unwrap();
        let second = segment.append(b"second").unwrap();
        drop(segment);
        let segment = Segment::open(&path).unwrap();
        assert_eq!(segment.read(first), Some(&b"first"[..]));
        assert_eq!(segment.read(second), Some(&b"second"[..]));
        assert_eq!(segment.read(second + 1), None, "no record starts there");
        assert_eq!(payloads(&segment), [b"first".to_vec(), b"second".to_vec()]);
        assert_eq!(segment.end(), 2 * HEADER + 11);
    }

    /// Once copied into the map a record is in the kernel: reading the file (not the map)
    /// sees it with no sync — what survives `kill -9` of the process.
    #[test]
    fn an_appended_record_is_in_the_file_without_a_sync() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.seg");
        let mut segment = Segment::create(&path, 4096).unwrap();
        segment.append(b"in the kernel").unwrap();
        let file = std::fs::read(&path).unwrap();
        assert_eq!(&file[HEADER..HEADER + 13], b"in the kernel");
        assert_eq!(u32::from_le_bytes(file[..4].try_into().unwrap()), 13);
    }

    #[test]
    fn a_record_that_does_not_fit_is_refused_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.seg");
        let mut segment = Segment::create(&path, 64).unwrap();
        assert_eq!(segment.append(&[1; 40]), Some(0));
        assert_eq!(segment.append(&[2; 20]), None, "48 + 28 bytes > 64");
        assert_eq!(segment.end(), 48);
        assert_eq!(segment.append(&[3; 8]), Some(48), "exactly the rest");
        assert_eq!(segment.append(&[4; 1]), None);
        drop(segment);
        assert_eq!(payloads(&Segment::open(&path).unwrap()), [vec![1; 40], vec![3; 8]]);
    }

    /// A process killed after copying a payload, before its length: the bytes are there with
    /// no header. Opening cuts and zeroes them — also a valid-looking frame further on, which
    /// a shorter later record would otherwise expose.
    #[test]
    fn a_torn_append_is_cut_and_never_comes_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.seg");
        let mut segment = Segment::create(&path, 4096).unwrap();
        segment.append(b"kept").unwrap();
        let end = segment.end();
        drop(segment);
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&[0xAB; 100], (end + HEADER) as u64).unwrap();
        // A stale frame right after where a 4-byte record will end.
        let stale = end + HEADER + 4;
        let mut frame = 5u32.to_le_bytes().to_vec();
        frame.extend_from_slice(&crc32fast::hash(b"stale").to_le_bytes());
        frame.extend_from_slice(b"stale");
        file.write_all_at(&frame, stale as u64).unwrap();
        drop(file);

        let mut segment = Segment::open(&path).unwrap();
        assert_eq!(segment.end(), end);
        assert_eq!(payloads(&segment), [b"kept".to_vec()]);
        assert_eq!(segment.append(b"next"), Some(end));
        drop(segment);
        let segment = Segment::open(&path).unwrap();
        assert_eq!(payloads(&segment), [b"kept".to_vec(), b"next".to_vec()]);
        assert!(std::fs::read(&path).unwrap()[segment.end()..].iter().all(|&b| b == 0));
    }

    /// Writes records "one", "two", "three" to a new segment at `path`, then damages "two"
    /// on the disk; returns where "two" starts and where the records ended.
    fn three_records_the_second_damaged(path: &Path) -> (usize, usize) {
        let mut segment = Segment::create(path, 4096).unwrap();
        segment.append(b"one").unwrap();
        let two = segment.append(b"two").unwrap();
        segment.append(b"three").unwrap();
        let end = segment.end();
        drop(segment);
        let file = OpenOptions::new().write(true).open(path).unwrap();
        file.write_all_at(b"T", (two + HEADER) as u64).unwrap();
        (two, end)
    }

    /// A record that fails its checksum is skipped: `resync` finds the next one, also with
    /// the damaged frame's length bytes wrong; a damaged last record has nothing after it.
    #[test]
    fn resync_finds_the_record_after_a_damaged_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.seg");
        let (two, end) = three_records_the_second_damaged(&path);
        let three = two + HEADER + 3;
        let segment = Segment::open_at(&path, end).unwrap();
        assert_eq!(segment.frame_at(two), None);
        assert_eq!(segment.resync(two, |_| true), Some(three));
        assert_eq!(segment.resync(two, |p| p != b"three"), None, "not plausible");
        assert_eq!(segment.resync(three, |_| true), None);
        drop(segment);
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&[0xEE], two as u64).unwrap();
        let segment = Segment::open_at(&path, end).unwrap();
        assert_eq!(segment.resync(two, |_| true), Some(three), "a bad length");
        assert!(!segment.zeros_from(three) && segment.zeros_from(end));
    }

    /// Frames after a cut are zeroed on the disk, so after a second power loss — the record
    /// appended in their place lost too, the owner's mark again past it — they do not come back.
    #[test]
    fn frames_after_a_cut_are_zeroed_and_never_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.seg");
        let (two, marked) = three_records_the_second_damaged(&path);

        let mut segment = Segment::open_at(&path, marked).unwrap();
        segment.cut(two).unwrap();
        assert_eq!(segment.end(), two);
        assert!(std::fs::read(&path).unwrap()[two..].iter().all(|&b| b == 0), "zeroed on the disk");
        assert_eq!(segment.append(b"new"), Some(two));
        let appended = segment.end();
        drop(segment);
        let segment = Segment::open_at(&path, appended).unwrap();
        assert_eq!(payloads(&segment), [b"one".to_vec(), b"new".to_vec()]);
        assert_eq!(segment.resync(two, |_| true), None, "nothing stale after it");
    }

    /// A small tmpfs on a temporary directory, unmounted when dropped (needs root, as the
    /// test machines run; a failed mount fails the test).
    pub struct Tmpfs(pub tempfile::TempDir);

    impl Tmpfs {
        pub fn mount(size: &str) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let out = Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(dir.path())
                .output()
                .expect("run mount");
            assert!(
                out.status.success(),
                "cannot mount a tmpfs (needs root): {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Self(dir)
        }
    }

    impl Drop for Tmpfs {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0.path()).status();
        }
    }

    /// On a full disk creating a segment fails with `StorageFull` and leaves no file; a
    /// created segment has its blocks, so appends into it never meet the full disk.
    #[test]
    fn a_full_disk_refuses_the_segment_not_the_appends() {
        let disk = Tmpfs::mount("1m");
        let dir = disk.0.path();
        let mut kept = Segment::create(&dir.join("1.seg"), 512 * 1024).unwrap();
        let refused = Segment::create(&dir.join("2.seg"), 1024 * 1024).err().expect("no room");
        assert_eq!(refused.kind(), io::ErrorKind::StorageFull);
        assert!(!dir.join("2.seg").exists());
        // The rest of the disk filled: the appends below still have their blocks.
        std::fs::write(dir.join("filler"), vec![1; 1024 * 1024]).unwrap_err();
        let record = vec![7; 1000];
        let mut appended = 0;
        while kept.append(&record).is_some() {
            appended += 1;
        }
        assert_eq!(appended, 512 * 1024 / (1000 + HEADER));
        kept.sync().unwrap();
    }
}
