//! A queue log's segment files: named `{first seq:020}.seg`, created whole under a temporary
//! name and renamed (also over an empty one they replace), removed, listed; the directory
//! synced after each change of its entries. And the file work a log leaves to a background
//! thread ([`Background`], run by the store's syncer thread): its spare segment made ahead,
//! a spare put in use placed under its name, the fdatasync of a segment the tail left, the
//! unlink of a segment the head left (see `queue_log`'s module doc).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use super::super::crash::around;
use super::super::segment::{Segment, HEADER};
use super::state::word;
use super::{corrupt, FIRST_RECORD};

/// The suffix of a segment being created (see [`create_segment`]).
const TEMP: &str = ".new";
/// The name of a log's spare segment: reserved, zeroed and synced ahead of its use, its meta
/// record stored when a rollover puts it in use, then renamed to its name by the background.
pub(super) const SPARE: &str = "spare";

/// Segments a rollover made inline, on the request path, for want of a spare (a burst faster
/// than the background, a record too large for the spare, a full disk), since the process
/// started.
pub static INLINE_SEGMENTS: AtomicU64 = AtomicU64::new(0);

pub(super) fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}.seg"))
}

/// Creates segment `seq` of `size` bytes, its meta record written and synced — in place of
/// one of that name if there is one (a tail holding no message): made whole as
/// `{seq:020}.new`, then renamed to its name, then the directory synced. A crash leaves
/// either no segment of that name (or the one replaced) or the whole new one, never a file
/// without its meta record under a segment's name; a `.new` file left is removed at the
/// log's next open ([`remove_temps`]).
pub(super) fn create_segment(dir: &Path, seq: u64, before: u64, size: usize) -> io::Result<Segment> {
    let new = temp_path(dir, seq);
    remove_segment(&new)?;
    let segment = create_segment_at(&new, seq, before, size)?;
    if let Err(error) = around("segment: rename", || std::fs::rename(&new, segment_path(dir, seq))) {
        drop(segment);
        let _ = remove_segment(&new);
        return Err(error);
    }
    sync_dir(dir)?;
    Ok(segment)
}

fn temp_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}{TEMP}"))
}

/// Stores segment `seq`'s meta record (its first seq, the number before its first message)
/// into `segment`, empty.
pub(super) fn write_meta(segment: &mut Segment, seq: u64, before: u64) {
    let mut meta = seq.to_le_bytes().to_vec();
    meta.extend_from_slice(&before.to_le_bytes());
    segment.append(&meta).expect("a segment holds its meta record");
}

/// Creates the segment file `path`, its meta record written and synced; on an error no
/// file is left behind.
fn create_segment_at(path: &Path, seq: u64, before: u64, size: usize) -> io::Result<Segment> {
    let mut segment = Segment::create(path, size)?;
    write_meta(&mut segment, seq, before);
    if let Err(error) = segment.sync() {
        drop(segment);
        let _ = remove_segment(path);
        return Err(error);
    }
    Ok(segment)
}

/// Removes a segment's file, if it is there.
pub(super) fn remove_segment(path: &Path) -> io::Result<()> {
    match around("segment: unlink", || std::fs::remove_file(path)) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// Writes `dir`'s entries (files created, renamed or removed) to the disk.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    around("directory: fsync", || File::open(dir)?.sync_all())
}

/// A segment's meta record, read from its file: its first seq and the number before.
pub(super) fn meta(path: &Path) -> io::Result<(u64, u64)> {
    use std::os::unix::fs::FileExt;
    let mut frame = [0; FIRST_RECORD as usize];
    File::open(path)?.read_exact_at(&mut frame, 0)?;
    let (len, crc) = (word(&frame, 0) as u32, (word(&frame, 0) >> 32) as u32);
    let meta = &frame[HEADER..];
    if len != 16 || crc != crc32fast::hash(meta) {
        return Err(corrupt("a segment without its meta record"));
    }
    Ok((word(meta, 0), word(meta, 1)))
}

/// A segment the tail has left: its records end where its frames do (the zeros to its end).
pub(super) fn open_full(path: &Path) -> io::Result<Segment> {
    around("segment: open and map", || {
        let size = std::fs::metadata(path)?.len() as usize;
        Segment::open_at(path, size)
    })
}

/// The segment files in `dir`, by first `seq`: only names `{first:020}.seg`.
pub(super) fn segment_files(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    numbered(dir, ".seg")
}

/// Removes the files a crash left while creating segments (named `{first:020}.new`): none is
/// a segment yet, nothing names them. Whether there was one.
pub(super) fn remove_temps(dir: &Path) -> io::Result<bool> {
    let temps = numbered(dir, TEMP)?;
    for (_, path) in &temps {
        remove_segment(path)?;
    }
    Ok(!temps.is_empty())
}

/// The files in `dir` named `{first:020}{suffix}`, by `first`.
fn numbered(dir: &Path, suffix: &str) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let first = name.to_str().and_then(|n| n.strip_suffix(suffix)).filter(|n| n.len() == 20);
        if let Some(first) =
            first.filter(|n| n.bytes().all(|b| b.is_ascii_digit())).and_then(|n| n.parse().ok())
        {
            files.push((first, entry.path()));
        }
    }
    files.sort_unstable();
    Ok(files)
}

/// At open, before the segments are read: a spare left in `dir` by the last run. One put in
/// use (its meta record names the tail's segment, which has no file yet: a crash came before
/// the background renamed it) is renamed to its name; one never used, or used by a rollover
/// whose tail's mark was never stored, is removed. One whose meta record is lost while the
/// tail's mark names a segment past the last, with no file (a power loss), gets its meta
/// record again and is renamed. One that cannot be told (the tail's segment missing and the
/// spare's meta record naming another) is left: the open fails.
/// Whether an entry of `dir` changed.
pub(super) fn settle_spare(dir: &Path, tail: Option<u64>, files: &[(u64, PathBuf)]) -> io::Result<bool> {
    let path = dir.join(SPARE);
    if !path.exists() {
        return Ok(false);
    }
    let named = meta(&path).ok().map(|m| m.0);
    let has = |first: u64| files.iter().any(|f| f.0 == first);
    let last = files.last().map(|f| f.0);
    match (named, tail) {
        (Some(seq), Some(tail)) if seq == tail && !has(seq) => place(dir, &path, seq)?,
        // The tail's mark lost: the spare is the newest segment.
        (Some(seq), None) if last.is_none_or(|last| seq > last) => place(dir, &path, seq)?,
        // A power loss kept the tail's mark naming it, not its meta record (nor the records
        // in its first page: lost, counted by the open).
        (None, Some(tail)) if !has(tail) && last.is_none_or(|last| tail > last) => {
            // A bound below its numbers: the number before the previous segment's first.
            let before = files.last().and_then(|f| meta(&f.1).ok()).map_or(0, |m| m.1);
            rebuild_meta(&path, tail, before)?;
            place(dir, &path, tail)?;
        }
        (_, Some(tail)) if !has(tail) => return Ok(false),
        _ => remove_segment(&path)?,
    }
    Ok(true)
}

/// Writes segment `seq`'s meta record (`before`: the number before its first message) into
/// the file `path`, synced.
fn rebuild_meta(path: &Path, seq: u64, before: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    tracing::warn!(
        path = %path.display(), seq,
        "queue log: the spare segment in use lost its meta record (a power loss): written again"
    );
    let mut frame = [0; FIRST_RECORD as usize];
    frame[HEADER..HEADER + 8].copy_from_slice(&seq.to_le_bytes());
    frame[HEADER + 8..].copy_from_slice(&before.to_le_bytes());
    frame[..4].copy_from_slice(&16u32.to_le_bytes());
    let crc = crc32fast::hash(&frame[HEADER..]);
    frame[4..HEADER].copy_from_slice(&crc.to_le_bytes());
    let file = File::options().write(true).open(path)?;
    around("spare: write its meta record", || file.write_all_at(&frame, 0))?;
    around("spare: fdatasync", || file.sync_data())
}

/// Renames the spare `path` to segment `seq`'s name.
fn place(dir: &Path, path: &Path, seq: u64) -> io::Result<()> {
    around("spare: rename", || std::fs::rename(path, segment_path(dir, seq)))
}

/// Fdatasyncs the file `path` (a page written through a map is the file's); one gone is not
/// an error.
fn sync_file(path: &Path, name: &'static str) -> io::Result<()> {
    match File::open(path).and_then(|file| around(name, || file.sync_data())) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// The file work of the logs of a store, left to a background thread (the syncer's): each log
/// with work queued, and how to wake the thread. A log dropped leaves its work undone (the
/// next open of its directory settles what it left).
#[derive(Default)]
pub struct Background {
    pending: Mutex<Vec<Weak<Files>>>,
    wake: OnceLock<Box<dyn Fn() + Send + Sync>>,
}

impl Background {
    /// Sets what wakes the thread that calls [`Background::work`] (once).
    pub fn set_waker(&self, wake: impl Fn() + Send + Sync + 'static) {
        let _ = self.wake.set(Box::new(wake));
    }

    /// Does the work queued by every log (on the background thread; never on a request's).
    pub fn work(&self) {
        let due = std::mem::take(&mut *lock(&self.pending));
        for files in due.iter().filter_map(Weak::upgrade) {
            files.work();
        }
    }

    fn queue(&self, files: &Arc<Files>, wake: bool) {
        lock(&self.pending).push(Arc::downgrade(files));
        if let Some(wake) = self.wake.get().filter(|_| wake) {
            wake();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// One log's file work for the background, and its spare. The request path only stores
/// into it (under a lock never held across a system call) and wakes the thread.
pub(super) struct Files {
    dir: PathBuf,
    background: Arc<Background>,
    jobs: Mutex<Jobs>,
}

#[derive(Default)]
struct Jobs {
    /// In the background's list.
    queued: bool,
    /// A spare of this size is asked for.
    want: Option<usize>,
    /// The spare, made: reserved, zeroed, synced, mapped, named [`SPARE`].
    ready: Option<Segment>,
    /// The spare was put in use as this segment: to be synced and renamed to its name.
    place: Option<u64>,
    /// Segments the tail left, to fdatasync.
    sync: Vec<u64>,
    /// Segments the head left, to unlink once the state page naming the new head is synced.
    remove: Vec<u64>,
    /// The segment after the head's, to map ahead of the head's move into it.
    ahead: Option<u64>,
    /// That segment, mapped.
    mapped: Option<(u64, Segment)>,
}

impl Files {
    pub(super) fn new(dir: &Path, background: &Arc<Background>) -> Arc<Self> {
        Arc::new(Self { dir: dir.to_owned(), background: background.clone(), jobs: Default::default() })
    }

    /// Changes the jobs, and queues this log for the background (woken if `wake`).
    fn change(self: &Arc<Self>, wake: bool, what: impl FnOnce(&mut Jobs)) {
        let queue = {
            let mut jobs = lock(&self.jobs);
            what(&mut jobs);
            !std::mem::replace(&mut jobs.queued, true)
        };
        if queue {
            self.background.queue(self, wake);
        }
    }

    /// Asks for a spare of `size` bytes, unless one is made.
    pub(super) fn ask_spare(self: &Arc<Self>, size: usize) {
        if lock(&self.jobs).ready.is_some() {
            return;
        }
        self.change(true, |jobs| jobs.want = Some(size));
    }

    /// Asks for segment `first` mapped ahead (the next after the head's).
    pub(super) fn ask_map(self: &Arc<Self>, first: u64) {
        self.change(true, |jobs| jobs.ahead = Some(first));
    }

    /// Segment `first`, if the background mapped it.
    pub(super) fn take_mapped(&self, first: u64) -> Option<Segment> {
        let mut jobs = lock(&self.jobs);
        match jobs.mapped.take() {
            Some((at, segment)) if at == first => Some(segment),
            other => {
                jobs.mapped = other;
                None
            }
        }
    }

    /// The spare, if one is made with room for `bytes` after its meta record and not placed
    /// yet (its file is free).
    pub(super) fn take_spare(&self, bytes: usize) -> Option<Segment> {
        let mut jobs = lock(&self.jobs);
        let fits = jobs.ready.as_ref().is_some_and(|s| s.size() >= bytes) && jobs.place.is_none();
        fits.then(|| jobs.ready.take()).flatten()
    }

    /// A rollover put the spare in use as segment `first` (its tail's mark stored) and left
    /// segment `old`.
    pub(super) fn placed(self: &Arc<Self>, first: u64, old: u64) {
        self.change(true, |jobs| {
            jobs.place = Some(first);
            jobs.sync.push(old);
        });
    }

    /// A rollover left segment `old` (a segment made inline).
    pub(super) fn left_tail(self: &Arc<Self>, old: u64) {
        self.change(true, |jobs| jobs.sync.push(old));
    }

    /// The head left segment `first`: its file goes.
    pub(super) fn left_head(self: &Arc<Self>, first: u64) {
        self.change(true, |jobs| jobs.remove.push(first));
    }

    /// Whether segment `first` is the spare in use, not under its name yet.
    pub(super) fn unplaced(&self, first: u64) -> bool {
        lock(&self.jobs).place == Some(first)
    }

    /// Does the queued work, in this order: the spare in use placed (synced, renamed, the
    /// directory synced), the segments the tail left synced, those the head left unlinked (the
    /// state page synced first, then the directory), a spare made. What fails is logged and
    /// tried again at the next round (a spare not made is not: a rollover then makes its
    /// segment inline).
    fn work(self: &Arc<Self>) {
        let unplaced = {
            let mut jobs = lock(&self.jobs);
            jobs.queued = false;
            jobs.place
        };
        let warn = |error: &io::Error, what: &str| {
            tracing::warn!(%error, dir = %self.dir.display(), "queue log: {what} failed; tried again");
        };
        if let Some(first) = unplaced {
            let spare = self.dir.join(SPARE);
            let placed = sync_file(&spare, "spare: fdatasync")
                .and_then(|()| place(&self.dir, &spare, first))
                .and_then(|()| sync_dir(&self.dir));
            match placed {
                Ok(()) => lock(&self.jobs).place = None,
                Err(error) => {
                    warn(&error, "placing a spare segment");
                    return self.change(false, |_| {});
                }
            }
        }
        let (sync, remove, want, ahead) = {
            let mut jobs = lock(&self.jobs);
            (std::mem::take(&mut jobs.sync), std::mem::take(&mut jobs.remove), jobs.want, jobs.ahead.take())
        };
        if let Some(first) = ahead {
            match open_full(&segment_path(&self.dir, first)) {
                Ok(segment) => lock(&self.jobs).mapped = Some((first, segment)),
                Err(error) => {
                    tracing::debug!(%error, dir = %self.dir.display(), "queue log: cannot map a segment ahead")
                }
            }
        }
        let mut failed = Vec::new();
        for old in sync {
            if let Err(error) = sync_file(&segment_path(&self.dir, old), "segment: fdatasync") {
                warn(&error, "the fdatasync of a segment");
                failed.push(old);
            }
        }
        let removed = if remove.is_empty() {
            Ok(())
        } else {
            sync_file(&self.dir.join(super::STATE), "state: fdatasync")
                .and_then(|()| {
                    remove.iter().try_for_each(|&first| remove_segment(&segment_path(&self.dir, first)))
                })
                .and_then(|()| sync_dir(&self.dir))
        };
        if let Err(error) = &removed {
            warn(error, "removing a segment the head left");
        }
        if !failed.is_empty() || removed.is_err() {
            self.change(false, |jobs| {
                jobs.sync.extend(failed);
                if removed.is_err() {
                    jobs.remove.extend(remove);
                }
            });
        }
        if let Some(size) = want {
            let spare = self.dir.join(SPARE);
            let made = remove_segment(&spare)
                .and_then(|()| Segment::create(&spare, size))
                .and_then(|segment| sync_dir(&self.dir).map(|()| segment));
            let mut jobs = lock(&self.jobs);
            jobs.want = None;
            match made {
                Ok(segment) => jobs.ready = Some(segment),
                Err(error) => tracing::debug!(
                    %error, dir = %self.dir.display(), size,
                    "queue log: cannot make a spare segment; the next rollover makes its segment inline"
                ),
            }
        }
    }
}
