//! `ReplaySource::decode_only`: a replay that decodes some channels gives their samples bit for bit as a full
//! replay does, marks the others as not decoded, changes nothing else (device, stimuli, gaps, block layout),
//! and fails on a record cut short exactly as a full replay does.

mod common;

use common::{replay_all, scratch};
use ionm_core::{Acquired, GapCause, SampleBlock, Stimulator};
use ionm_edf::EdfReader;
use ionm_record::{AnnotationRule, ReplayConfig, ReplaySource};
use std::cell::Cell;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::rc::Rc;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn edf_data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../ionm-edf/tests/data/pyedflib")
        .join(name)
}

/// Every item of a replay that decodes only `mask` (`None`: the default, everything).
fn replay<R: Read + Seek>(mut src: ReplaySource<R>, mask: Option<u64>) -> Vec<Acquired> {
    if let Some(m) = mask {
        src.decode_only(m).unwrap();
        assert_eq!(src.decoded_channels(), m);
    }
    let mut items = Vec::new();
    while let Some(item) = src.next_item().unwrap() {
        items.push(item);
    }
    common::check_order(&items);
    items
}

/// `part` is `full` with only the channels of `mask` decoded: the same non-sample items (device, stimuli, gaps)
/// in the same order; the same sample instants (each contiguous run: its first index and length); the decoded
/// channels' values identical; the others marked as not decoded (and read as UNDECODED). Blocks may be cut
/// differently (a block of fewer decoded channels holds more instants), so stimuli are compared as a sequence
/// and `replay` checks each list's own order (a stimulus comes before the block holding its sample).
fn assert_same_but_undecoded(full: &[Acquired], part: &[Acquired], mask: u64, what: &str) {
    /// The non-sample items (as text) and the contiguous runs of samples: (first index, per-channel values).
    type Runs = Vec<(u64, Vec<Vec<i32>>)>;
    fn split(items: &[Acquired], mask: Option<u64>, what: &str) -> (Vec<String>, Runs) {
        let (mut other, mut runs): (Vec<String>, Runs) = (Vec::new(), Vec::new());
        for (k, item) in items.iter().enumerate() {
            let Acquired::Samples(b) = item else {
                other.push(format!("{item:?}"));
                continue;
            };
            match mask {
                Some(m) => {
                    assert_eq!(b.decoded_channels(), m, "{what}: item {k}");
                    assert_eq!(b.all_decoded(), m == ionm_core::channel_mask(b.n_channels()));
                }
                None => assert!(
                    b.all_decoded(),
                    "{what}: item {k}: a full replay decodes everything"
                ),
            }
            let continues = runs
                .last()
                .is_some_and(|(first, v)| first + v[0].len() as u64 == b.first_index());
            if !continues {
                runs.push((b.first_index(), vec![Vec::new(); b.n_channels()]));
            }
            let run = &mut runs.last_mut().expect("just pushed").1;
            for (c, v) in run.iter_mut().enumerate() {
                if !b.is_decoded(c) {
                    assert!(
                        b.channel(c).all(|x| x == SampleBlock::UNDECODED),
                        "{what}: item {k}"
                    );
                }
                v.extend(b.channel(c));
            }
        }
        (other, runs)
    }
    let (items_a, runs_a) = split(full, None, what);
    let (items_b, runs_b) = split(part, Some(mask), what);
    assert_eq!(items_a, items_b, "{what}: device, stimuli and gaps");
    assert_eq!(runs_a.len(), runs_b.len(), "{what}: runs of samples");
    for (k, (x, y)) in runs_a.iter().zip(&runs_b).enumerate() {
        assert_eq!(x.0, y.0, "{what}: run {k} starts at the same instant");
        assert_eq!(x.1.len(), y.1.len(), "{what}: run {k}: channels");
        for (c, (u, v)) in x.1.iter().zip(&y.1).enumerate() {
            assert_eq!(u.len(), v.len(), "{what}: run {k}: instants");
            if mask & (1 << c) != 0 {
                assert!(u == v, "{what}: run {k}, channel {c}");
            }
        }
    }
    assert!(
        runs_a.iter().any(|r| !r.1[0].is_empty()),
        "{what}: some samples were compared"
    );
}

#[test]
fn decoded_channels_are_bit_identical_and_the_others_are_marked() {
    let path = data("recording.bdf");
    let (summary, full) = replay_all(&path, &ReplayConfig::default());
    assert!(!summary.gaps.is_empty() && !summary.stimuli.is_empty());
    assert!(summary.gaps.iter().all(|g| g.cause == GapCause::LostFrames));
    for mask in [0b0001, 0b1000, 0b0110, 0b1010, 0b0000, 0b1111] {
        let src = ReplaySource::open(&path, &ReplayConfig::default()).unwrap();
        let part = replay(src, Some(mask));
        assert_same_but_undecoded(&full, &part, mask, &format!("recording.bdf, mask {mask:#b}"));
    }
    // Without a trigger channel the annotations still give every stimulus.
    let config = ReplayConfig {
        trigger_label: None,
        ..Default::default()
    };
    let (_, full) = replay_all(&path, &config);
    let part = replay(ReplaySource::open(&path, &config).unwrap(), Some(0b0100));
    assert_same_but_undecoded(&full, &part, 0b0100, "recording.bdf without trigger");

    // A channel the device does not have is refused, and the selection is left as it was.
    let mut src = ReplaySource::open(&path, &ReplayConfig::default()).unwrap();
    assert_eq!(src.decoded_channels(), 0b1111);
    assert!(src.decode_only(0b1_0001).is_err());
    assert_eq!(src.decoded_channels(), 0b1111);
}

/// Other tools' files (physical values converted to raw, EDF 16-bit and BDF 24-bit, stimuli from annotation
/// rules): every other channel.
#[test]
fn foreign_files_decode_only_the_selected_channels_too() {
    let config = ReplayConfig {
        annotation_rules: vec![AnnotationRule::prefix("XLSpike", Stimulator::LeftMedian)],
        ..Default::default()
    };
    for name in [
        "data/test_generator.edf",
        "tests/data/test_legacy.edf",
        "tests/data/test_generator.bdf",
    ] {
        let path = edf_data(name);
        let full = replay(ReplaySource::open(&path, &config).unwrap(), None);
        let src = ReplaySource::open(&path, &config).unwrap();
        let mask = 0x5555_5555_5555_5555 & ionm_core::channel_mask(src.device().n_channels());
        let part = replay(src, Some(mask));
        assert_same_but_undecoded(&full, &part, mask, name);
    }
}

/// A copy of `bytes` that can lose its tail after it was opened (`len`).
struct Shrinking {
    bytes: Rc<Vec<u8>>,
    pos: u64,
    len: Rc<Cell<usize>>,
}

impl Read for Shrinking {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let end = self.len.get();
        let at = (self.pos as usize).min(end);
        let n = buf.len().min(end - at);
        buf[..n].copy_from_slice(&self.bytes[at..at + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Shrinking {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        self.pos = match to {
            SeekFrom::Start(p) => p,
            SeekFrom::End(d) => (self.len.get() as i64 + d) as u64,
            SeekFrom::Current(d) => (self.pos as i64 + d) as u64,
        };
        Ok(self.pos)
    }
}

/// Replays until the end or the first error: the items before it, and the error's text.
fn replay_until_error<R: Read + Seek>(src: &mut ReplaySource<R>) -> (Vec<Acquired>, Option<String>) {
    let mut items = Vec::new();
    loop {
        match src.next_item() {
            Ok(Some(item)) => items.push(item),
            Ok(None) => return (items, None),
            Err(e) => return (items, Some(e.to_string())),
        }
    }
}

/// A file cut inside a record is read up to its last complete record with or without a selection; a file
/// that loses its tail while it is replayed fails at the same record, with the same error, whether the cut
/// lies in a channel that is decoded, in one that is skipped, or at the record's very last byte.
#[test]
fn a_truncated_file_fails_or_ends_the_same_with_a_selection() {
    let bytes = std::fs::read(data("recording.bdf")).unwrap();
    let reader = EdfReader::open(data("recording.bdf")).unwrap();
    let (header_len, record_bytes) = (
        reader.header().header_bytes,
        reader.layout().record_bytes as usize,
    );
    let records = reader.num_records() as usize;
    // Signal 0 (skipped below) starts each record; signal 3 (decoded) ends the data channels.
    let spr_bytes = 3 * reader.header().signals[0].samples_per_record;
    let record = |r: usize| header_len + r * record_bytes;
    let mask = 0b1000;
    // Record 15 holds samples 3000..3200 (the recording's gaps are at 2345..2700 and 4000..4200).
    const R: usize = 15;

    // Cut inside record R before the file is opened: both read records 0..R and end without error.
    let path = scratch("decode_only_cut.bdf");
    std::fs::write(&path, &bytes[..record(R) + spr_bytes / 2]).unwrap();
    let full = replay(ReplaySource::open(&path, &ReplayConfig::default()).unwrap(), None);
    let src = ReplaySource::open(&path, &ReplayConfig::default()).unwrap();
    let end_s = src.end_s();
    let part = replay(src, Some(mask));
    assert_same_but_undecoded(&full, &part, mask, "cut before opening");
    let last = full.iter().rev().find_map(|i| match i {
        Acquired::Samples(b) => Some(b.end_index()),
        _ => None,
    });
    assert_eq!(last, Some(R as u64 * 200));
    assert_eq!((end_s * 2000.0).round(), (R * 200) as f64);

    // Cuts after opening: in skipped signal 0 of record R, in decoded signal 3, at the record's last byte
    // (in the annotation signal, which a selection does not read).
    let bytes = Rc::new(bytes);
    for cut in [
        record(R) + spr_bytes / 2,
        record(R) + 3 * spr_bytes + 1,
        record(R + 1) - 1,
    ] {
        let run = |mask: Option<u64>| {
            let len = Rc::new(Cell::new(bytes.len()));
            let source = Shrinking {
                bytes: bytes.clone(),
                pos: 0,
                len: len.clone(),
            };
            let mut src =
                ReplaySource::new(EdfReader::new(source).unwrap(), &ReplayConfig::default(), None).unwrap();
            if let Some(m) = mask {
                src.decode_only(m).unwrap();
            }
            len.set(cut);
            replay_until_error(&mut src)
        };
        let (full, full_err) = run(None);
        let (part, part_err) = run(Some(mask));
        let what = format!("cut at byte {cut} of {}", bytes.len());
        assert!(
            full_err
                .as_deref()
                .is_some_and(|e| e.contains("failed to fill whole buffer")),
            "{what}: {full_err:?}"
        );
        assert_eq!(part_err, full_err, "{what}");
        assert_same_but_undecoded(&full, &part, mask, &what);
        // Records 0..R were replayed, record R was not.
        let last = part.iter().rev().find_map(|i| match i {
            Acquired::Samples(b) => Some(b.end_index()),
            _ => None,
        });
        assert_eq!(last, Some(R as u64 * 200), "{what}");
        assert!(records > R + 1);
    }
}

/// The same items: sample blocks equal (values, mask, shape), other items with the same contents.
fn assert_same_items(x: &[Acquired], y: &[Acquired], what: &str) {
    assert_eq!(x.len(), y.len(), "{what}: item count");
    for (k, (a, b)) in x.iter().zip(y).enumerate() {
        match (a, b) {
            (Acquired::Samples(a), Acquired::Samples(b)) => assert_eq!(a, b, "{what}: item {k}"),
            (a, b) => assert_eq!(format!("{a:?}"), format!("{b:?}"), "{what}: item {k}"),
        }
    }
}

/// `next_into` with one reused slot (as the replay thread does: blocks written in place) gives exactly the items
/// of `next_item`, with or without a selection, after a seek, and when the selection changes between items
/// (it applies from the next record on, so the blocks of one record keep one mask).
#[test]
fn next_into_a_reused_slot_gives_the_same_items_as_next_item() {
    let path = data("recording.bdf");
    let drain = |src: &mut ReplaySource<_>, into: bool, limit: usize| -> Vec<Acquired> {
        let mut items = Vec::new();
        let mut slot = Acquired::Samples(SampleBlock::empty());
        while items.len() < limit {
            let item = if into {
                if !src.next_into(&mut slot).unwrap() {
                    break;
                }
                slot.clone()
            } else {
                match src.next_item().unwrap() {
                    Some(i) => i,
                    None => break,
                }
            };
            items.push(item);
        }
        items
    };
    for mask in [None, Some(0b0110)] {
        let open = || {
            let mut s = ReplaySource::open(&path, &ReplayConfig::default()).unwrap();
            if let Some(m) = mask {
                s.decode_only(m).unwrap();
            }
            s
        };
        let (mut a, mut b) = (open(), open());
        let what = format!("mask {mask:?}");
        let (x, y) = (drain(&mut a, false, usize::MAX), drain(&mut b, true, usize::MAX));
        assert!(
            x.iter().filter(|i| matches!(i, Acquired::Samples(_))).count() > 10,
            "{what}"
        );
        assert_same_items(&x, &y, &what);
        // After a seek into the middle (and again to the start).
        for to in [a.duration_s() / 2.0, 0.0] {
            a.seek(a.start_s() + to);
            b.seek(b.start_s() + to);
            let (x, y) = (drain(&mut a, false, usize::MAX), drain(&mut b, true, usize::MAX));
            assert!(
                matches!(x.first(), Some(Acquired::Device(_))),
                "{what}: a seek restarts with the device"
            );
            assert_same_items(&x, &y, &format!("{what}, after a seek to +{to} s"));
        }
    }
    // The selection changed after a few items: both ways agree, and every block has one of the two masks
    // (whole records with each), the first ones all channels.
    let (mut a, mut b) = (
        ReplaySource::open(&path, &ReplayConfig::default()).unwrap(),
        ReplaySource::open(&path, &ReplayConfig::default()).unwrap(),
    );
    let (mut x, mut y) = (drain(&mut a, false, 5), drain(&mut b, true, 5));
    a.decode_only(0b1000).unwrap();
    b.decode_only(0b1000).unwrap();
    x.extend(drain(&mut a, false, usize::MAX));
    y.extend(drain(&mut b, true, usize::MAX));
    assert_same_items(&x, &y, "selection changed after 5 items");
    let masks: Vec<u64> = x
        .iter()
        .filter_map(|i| match i {
            Acquired::Samples(b) => Some(b.decoded_channels()),
            _ => None,
        })
        .collect();
    assert_eq!(masks.first(), Some(&0b1111));
    assert_eq!(masks.last(), Some(&0b1000));
    assert!(masks.iter().all(|&m| m == 0b1111 || m == 0b1000));
}
