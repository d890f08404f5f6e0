//! A queue log's segment files: named `{first seq:020}.seg`, created whole under a temporary
//! name and renamed (also over an empty one they replace), removed, listed; the directory
//! synced after each change of its entries.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use super::super::crash::around;
use super::super::segment::{Segment, HEADER};
use super::state::word;
use super::{corrupt, FIRST_RECORD};

/// The suffix of a segment being created (see [`create_segment`]).
const TEMP: &str = ".new";

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

/// Creates the segment file `path`, its meta record written and synced; on an error no
/// file is left behind.
fn create_segment_at(path: &Path, seq: u64, before: u64, size: usize) -> io::Result<Segment> {
    let mut segment = Segment::create(path, size)?;
    let mut meta = seq.to_le_bytes().to_vec();
    meta.extend_from_slice(&before.to_le_bytes());
    segment.append(&meta).expect("a segment holds its meta record");
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
    let size = std::fs::metadata(path)?.len() as usize;
    Segment::open_at(path, size)
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
