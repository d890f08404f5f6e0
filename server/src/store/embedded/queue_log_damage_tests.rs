//! Deterministic fuzzing of a queue log's damaged files: a byte flipped in each region of a
//! segment (meta record, frame header, payload, the zeros after the records) or of the state
//! page, and segments cut short at many offsets. After reopening: no record that fails its
//! checksum is served, only the damaged records are lost and counted, nothing taken is served
//! again, and no number added is given again.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use super::*;
use crate::store::embedded::logs::DAMAGED_RECORDS;

const MESSAGES: u64 = 300;
const TAKEN: u64 = 40;

/// SplitMix64: a seeded generator, so each run fuzzes the same cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Message `n`'s payload: its own length (100 to 1,299 bytes) and bytes.
fn body(n: u64) -> Vec<u8> {
    let len = 100 + (n * 7919 % 1200) as usize;
    (0..len).map(|i| (n as usize * 31 + i * 7) as u8).collect()
}

/// A record in a pristine log: its segment (by first seq), offset, frame bytes, number
/// (`None` for a meta record).
#[derive(Debug, Clone, Copy)]
struct Place {
    segment: u64,
    at: usize,
    bytes: usize,
    n: Option<u64>,
}

/// A log of 300 messages in three segments, the first 40 taken; and where its records are.
fn pristine() -> (tempfile::TempDir, Vec<Place>) {
    let dir = tempfile::tempdir().unwrap();
    let mut log = QueueLog::open(dir.path(), 0).unwrap();
    for n in 1..=MESSAGES {
        log.append(n, &body(n)).unwrap();
    }
    for n in 1..=TAKEN {
        assert_eq!(log.take().unwrap(), Some(n));
    }
    drop(log);
    let mut places = Vec::new();
    for (segment, path) in segment_files(dir.path()).unwrap() {
        let file = std::fs::read(path).unwrap();
        let mut at = 0;
        while at + HEADER <= file.len() {
            let len = u32::from_le_bytes(file[at..at + 4].try_into().unwrap()) as usize;
            if len == 0 {
                break;
            }
            let n = (at > 0).then(|| word(&file[at + HEADER..], 0));
            places.push(Place { segment, at, bytes: HEADER + len, n });
            at += HEADER + len;
        }
    }
    assert_eq!(segment_files(dir.path()).unwrap().len(), 3);
    assert_eq!(places.iter().filter(|p| p.n.is_some()).count() as u64, MESSAGES);
    (dir, places)
}

/// A copy of the log in `from`, to damage.
fn copy(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.path().join(entry.file_name())).unwrap();
    }
    to
}

/// Reopens the damaged log in `dir` and checks it against the numbers `lost` (not yet taken)
/// that the damage destroyed: it serves every other message not taken, each whole and in
/// order, counts them and the lost ones, and gives no number added again — also after a
/// message added and the log reopened once more.
fn check(dir: &Path, lost: &[u64], case: &str) {
    let counted = DAMAGED_RECORDS.load(Ordering::Relaxed);
    let mut log = QueueLog::open(dir, 0).unwrap_or_else(|e| panic!("{case}: cannot open: {e}"));
    let want: Vec<u64> = (TAKEN + 1..=MESSAGES).filter(|n| !lost.contains(n)).collect();
    assert_eq!((log.len(), log.lost()), (want.len() as u64, lost.len() as u64), "{case}: the counts");
    assert!(DAMAGED_RECORDS.load(Ordering::Relaxed) - counted >= lost.len() as u64, "{case}: counter");
    assert!(log.last_number() >= MESSAGES, "{case}: last number {}", log.last_number());
    assert_eq!(numbers_peeked(&log), want, "{case}: peeked");
    let mut served = Vec::new();
    while let Some((n, payload)) = log.head() {
        assert_eq!(payload, body(n), "{case}: message {n} served whole");
        assert_eq!(log.take().unwrap(), Some(n));
        served.push(n);
    }
    assert_eq!(served, want, "{case}: served");
    assert_eq!(log.len(), 0, "{case}");
    let next = log.last_number() + 1;
    assert_eq!(log.append(MESSAGES, b"again").unwrap_err().kind(), io::ErrorKind::InvalidInput);
    log.append(next, &body(next)).unwrap();
    drop(log);
    let mut log = QueueLog::open(dir, 0).unwrap();
    assert_eq!(log.len(), 1, "{case}: nothing served again after a restart");
    assert_eq!(log.head().map(|(n, p)| (n, p.to_vec())), Some((next, body(next))), "{case}");
}

fn numbers_peeked(log: &QueueLog) -> Vec<u64> {
    log.peek(usize::MAX).unwrap().into_iter().map(|m| m.0).collect()
}

fn damage(dir: &Path, file: &Path, at: usize, bytes: &[u8]) {
    let file = OpenOptions::new().write(true).open(dir.join(file)).unwrap();
    file.write_all_at(bytes, at as u64).unwrap();
}

fn segment_name(segment: u64) -> PathBuf {
    segment_path(Path::new(""), segment)
}

/// A byte flipped in each region of each segment: a meta record, a frame's header (its
/// length or checksum), a payload, the zeros after a full segment's records. Only the record
/// holding the byte is lost, when it was not taken.
#[test]
fn a_flipped_byte_in_a_segment_loses_its_record_alone() {
    let (original, places) = pristine();
    let mut rng = Rng(0x5EED_0001);
    let segments: Vec<u64> = segment_files(original.path()).unwrap().into_iter().map(|s| s.0).collect();
    for case in 0..240 {
        let segment = segments[case % 3];
        let records: Vec<&Place> = places.iter().filter(|p| p.segment == segment).collect();
        let (at, lost) = match (case / 3) % 4 {
            0 => (rng.below(FIRST_RECORD as usize), None),
            region @ (1 | 2) => {
                let place = records[1 + rng.below(records.len() - 1)];
                let at = match region {
                    1 => place.at + rng.below(HEADER),
                    _ => place.at + HEADER + rng.below(place.bytes - HEADER),
                };
                (at, place.n.filter(|&n| n > TAKEN))
            }
            // The zeros after the segment's records (after the tail's mark: cut).
            _ => {
                let last = records.last().expect("records");
                let end = last.at + last.bytes;
                let size =
                    std::fs::metadata(original.path().join(segment_name(segment))).unwrap().len() as usize;
                if end >= size {
                    continue;
                }
                (end + rng.below(size - end), None)
            }
        };
        let dir = copy(original.path());
        let xor = 1 + rng.below(255) as u8;
        let name = segment_name(segment);
        let mut byte = [0];
        OpenOptions::new()
            .read(true)
            .open(dir.path().join(&name))
            .unwrap()
            .read_exact_at(&mut byte, at as u64)
            .unwrap();
        damage(dir.path(), &name, at, &[byte[0] ^ xor]);
        let lost: Vec<u64> = lost.into_iter().collect();
        check(dir.path(), &lost, &format!("case {case}: {} at {at} ^ {xor:#x}", name.display()));
    }
}

/// Runs of bytes overwritten with random bytes or zeros, across a record's end: the records
/// they touch are lost, no other (a damaged length is resynchronised past).
#[test]
fn a_damaged_run_of_bytes_loses_the_records_it_touches() {
    let (original, places) = pristine();
    let mut rng = Rng(0x5EED_0002);
    let messages: Vec<&Place> = places.iter().filter(|p| p.n.is_some()).collect();
    for case in 0..60 {
        let first = messages[rng.below(messages.len())];
        let at = first.at + rng.below(first.bytes);
        let len = 1 + rng.below(40);
        let end = at + len;
        let touched: Vec<u64> = messages
            .iter()
            .filter(|p| p.segment == first.segment && p.at < end && p.at + p.bytes > at)
            .filter_map(|p| p.n.filter(|&n| n > TAKEN))
            .collect();
        let mut run: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if case % 2 == 1 {
            run.fill(0);
        }
        let dir = copy(original.path());
        damage(dir.path(), &segment_name(first.segment), at, &run);
        // A run past the segment's size makes it longer: still its record lost alone.
        check(dir.path(), &touched, &format!("case {case}: {} at {at}..{end}", first.segment));
    }
}

/// A segment cut short at many offsets (also inside its meta record and at 0): the records
/// cut off are lost and counted, the others kept, no number given again.
#[test]
fn a_segment_cut_short_loses_the_records_cut_off() {
    let (original, places) = pristine();
    let mut rng = Rng(0x5EED_0003);
    let segments: Vec<u64> = segment_files(original.path()).unwrap().into_iter().map(|s| s.0).collect();
    for case in 0..90 {
        let segment = segments[case % 3];
        let records: Vec<&Place> = places.iter().filter(|p| p.segment == segment).collect();
        let last = records.last().expect("records");
        let cut = match case / 3 % 3 {
            0 => rng.below(FIRST_RECORD as usize + 1),
            _ => rng.below(last.at + last.bytes + 1),
        };
        let lost: Vec<u64> = records
            .iter()
            .filter(|p| p.at + p.bytes > cut)
            .filter_map(|p| p.n.filter(|&n| n > TAKEN))
            .collect();
        let dir = copy(original.path());
        let file = OpenOptions::new().write(true).open(dir.path().join(segment_name(segment))).unwrap();
        file.set_len(cut as u64).unwrap();
        drop(file);
        check(dir.path(), &lost, &format!("case {case}: segment {segment} cut at {cut}"));
    }
}

/// A byte flipped anywhere in the state page's marks loses nothing and serves nothing taken
/// again: the other copy of the mark holds the same.
#[test]
fn a_flipped_byte_in_the_state_page_loses_nothing() {
    let (original, _) = pristine();
    let mut rng = Rng(0x5EED_0004);
    for case in 0..120 {
        let at = rng.below(6 * SLOT);
        let dir = copy(original.path());
        let mut byte = [0];
        let path = dir.path().join(STATE);
        OpenOptions::new().read(true).open(&path).unwrap().read_exact_at(&mut byte, at as u64).unwrap();
        let xor = 1 + rng.below(255) as u8;
        damage(dir.path(), Path::new(STATE), at, &[byte[0] ^ xor]);
        check(dir.path(), &[], &format!("case {case}: state at {at} ^ {xor:#x}"));
    }
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A damaged record is logged at WARN with the log's directory, the file and the offset, and
/// counted in `DAMAGED_RECORDS`.
#[test]
fn a_damaged_record_is_logged_with_its_file_and_offset() {
    let (original, places) = pristine();
    let place = places.iter().find(|p| p.n == Some(TAKEN + 10)).unwrap();
    let dir = copy(original.path());
    let name = segment_name(place.segment);
    damage(dir.path(), &name, place.at + HEADER + 20, b"flipped");
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let counted = DAMAGED_RECORDS.load(Ordering::Relaxed);
    let log = tracing::subscriber::with_default(subscriber, || QueueLog::open(dir.path(), 0).unwrap());
    assert!(DAMAGED_RECORDS.load(Ordering::Relaxed) > counted);
    assert_eq!(log.lost(), 1);
    let lines = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let line =
        lines.lines().find(|l| l.contains("damaged")).unwrap_or_else(|| panic!("no WARN in {lines:?}"));
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains(&dir.path().display().to_string()), "{line}");
    assert!(line.contains(&name.display().to_string()), "{line}");
    assert!(line.contains(&format!("offset={}", place.at)), "{line}");
}

/// Several bytes flipped at once across the segments and the state page: whatever is lost,
/// nothing damaged or taken is served, the count is what is served, no number is given again.
#[test]
fn many_flipped_bytes_never_serve_garbage() {
    let (original, _) = pristine();
    let mut rng = Rng(0x5EED_0005);
    let mut files: Vec<PathBuf> = segment_files(original.path()).unwrap().into_iter().map(|s| s.1).collect();
    files.push(original.path().join(STATE));
    for case in 0..40 {
        let dir = copy(original.path());
        for _ in 0..1 + rng.below(6) {
            let name = files[rng.below(files.len())].file_name().unwrap().to_owned();
            let path = dir.path().join(&name);
            let size = std::fs::metadata(&path).unwrap().len() as usize;
            let at = rng.below(if name == STATE { 6 * SLOT } else { size.min(80_000) });
            let mut byte = [0];
            OpenOptions::new().read(true).open(&path).unwrap().read_exact_at(&mut byte, at as u64).unwrap();
            damage(dir.path(), Path::new(&name), at, &[byte[0] ^ (1 + rng.below(255) as u8)]);
        }
        let mut log = QueueLog::open(dir.path(), 0).unwrap_or_else(|e| panic!("case {case}: {e}"));
        let (len, last) = (log.len(), log.last_number());
        assert!(last >= MESSAGES, "case {case}: last number {last}");
        let mut served = Vec::new();
        while let Some((n, payload)) = log.head() {
            assert_eq!(payload, body(n), "case {case}: message {n} served whole");
            assert_eq!(log.take().unwrap(), Some(n));
            served.push(n);
        }
        assert_eq!(served.len() as u64, len, "case {case}: the count is what is served");
        assert!(served.iter().all(|&n| n > TAKEN && n <= MESSAGES), "case {case}: {served:?}");
        assert!(served.windows(2).all(|w| w[0] < w[1]), "case {case}: in order");
        log.append(last + 1, b"next").unwrap();
    }
}

/// Damage that appears in a backlog segment while the log is open (read from the disk when
/// the head reaches it): the record is skipped, counted and leaves the count.
#[test]
fn damage_found_after_open_is_skipped_and_counted() {
    let (original, places) = pristine();
    let dir = copy(original.path());
    let mut log = QueueLog::open(dir.path(), 0).unwrap();
    let middle = segment_files(dir.path()).unwrap()[1].0;
    let place = places.iter().find(|p| p.segment == middle && p.n.is_some()).unwrap();
    let name = segment_name(middle);
    let mut byte = [0];
    let path = dir.path().join(&name);
    OpenOptions::new()
        .read(true)
        .open(&path)
        .unwrap()
        .read_exact_at(&mut byte, (place.at + 12) as u64)
        .unwrap();
    damage(dir.path(), &name, place.at + 12, &[!byte[0]]);
    let mut served = Vec::new();
    while let Some((n, payload)) = log.head() {
        assert_eq!(payload, body(n));
        log.take().unwrap();
        served.push(n);
    }
    let lost = place.n.unwrap();
    assert_eq!(served, (TAKEN + 1..=MESSAGES).filter(|&n| n != lost).collect::<Vec<_>>());
    assert_eq!((log.len(), log.lost()), (0, 1));
}
