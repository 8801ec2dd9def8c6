//! Reader cases the pyedflib fixtures do not cover, on files built byte by byte here from the EDF+ specification
//! (so the expectations are analytic, not produced by the code under test), and a mutation robustness test.

use std::cell::Cell;
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::rc::Rc;

use ionm_edf::{EdfError, EdfReader, Header, SampleFormat, SignalKind, Variant};
use proptest::prelude::*;

fn field(out: &mut Vec<u8>, text: &str, width: usize) {
    assert!(text.len() <= width, "{text}");
    out.extend_from_slice(text.as_bytes());
    out.extend(std::iter::repeat_n(b' ', width - text.len()));
}

struct Sig<'a> {
    label: &'a str,
    pmin: &'a str,
    pmax: &'a str,
    dmin: &'a str,
    dmax: &'a str,
    spr: usize,
}

fn header(
    bdf: bool,
    reserved: &str,
    records: &str,
    duration: &str,
    start_time: &str,
    sigs: &[Sig<'_>],
) -> Vec<u8> {
    let mut h = Vec::new();
    if bdf {
        h.extend_from_slice(b"\xffBIOSEMI");
    } else {
        field(&mut h, "0", 8);
    }
    field(&mut h, "X X X X", 80);
    field(&mut h, "Startdate 31-DEC-2099 X X X", 80);
    field(&mut h, "31.12.99", 8);
    field(&mut h, start_time, 8);
    field(&mut h, &(256 * (sigs.len() + 1)).to_string(), 8);
    field(&mut h, reserved, 44);
    field(&mut h, records, 8);
    field(&mut h, duration, 8);
    field(&mut h, &sigs.len().to_string(), 4);
    for s in sigs {
        field(&mut h, s.label, 16);
    }
    for _ in sigs {
        field(&mut h, "", 80);
    }
    for _ in sigs {
        field(&mut h, "uV", 8);
    }
    for s in sigs {
        field(&mut h, s.pmin, 8);
    }
    for s in sigs {
        field(&mut h, s.pmax, 8);
    }
    for s in sigs {
        field(&mut h, s.dmin, 8);
    }
    for s in sigs {
        field(&mut h, s.dmax, 8);
    }
    for _ in sigs {
        field(&mut h, "", 80);
    }
    for s in sigs {
        field(&mut h, &s.spr.to_string(), 8);
    }
    for _ in sigs {
        field(&mut h, "", 32);
    }
    h
}

fn annotation_bytes(text: &str, n: usize) -> Vec<u8> {
    let mut b = text.as_bytes().to_vec();
    assert!(b.len() <= n);
    b.resize(n, 0);
    b
}

fn ann(spr: usize) -> Sig<'static> {
    Sig {
        label: "EDF Annotations",
        pmin: "-1",
        pmax: "1",
        dmin: "-32768",
        dmax: "32767",
        spr,
    }
}

/// EDF+D, two annotation signals, a sub-second start, a gap, a negative onset, several texts in one TAL, and a
/// duration of 0.25 s with a 4 Hz and an 8 Hz signal.
#[test]
fn discontinuous_file_with_two_annotation_signals() {
    let sigs = [
        Sig {
            label: "A",
            pmin: "-8",
            pmax: "7",
            dmin: "-8",
            dmax: "7",
            spr: 1,
        },
        ann(16),
        Sig {
            label: "B",
            pmin: "10",
            pmax: "-10",
            dmin: "0",
            dmax: "100",
            spr: 2,
        },
        ann(10),
    ];
    let mut f = header(false, "EDF+D", "3", "0.25", "23.59.58", &sigs);
    let records: [(&str, &str, [i16; 3]); 3] = [
        ("+0.125\x14\x14\0", "+1\x14one\x14\0", [-8, 0, 100]),
        (
            "+0.375\x14\x14\0+-0.5\x14\0",
            "-0.5\x15\x31\x14neg\x14\0",
            [7, 50, 25],
        ),
        ("+10.5\x14\x14a\x14b\x14\0", "", [1, 2, 3]),
    ];
    for (a1, a2, [x, y0, y1]) in records {
        f.extend_from_slice(&x.to_le_bytes());
        f.extend(annotation_bytes(a1, 32));
        f.extend_from_slice(&y0.to_le_bytes());
        f.extend_from_slice(&y1.to_le_bytes());
        f.extend(annotation_bytes(a2, 20));
    }
    // "+-0.5" is not a valid onset: make record 1's first annotation signal valid again but keep the second's
    // negative onset ("-0.5", valid).
    let bad = f.clone();
    let pos = f.windows(5).position(|w| w == b"+-0.5").unwrap();
    f[pos..pos + 5].copy_from_slice(b"+0.40");

    let mut r = EdfReader::new(Cursor::new(f)).unwrap();
    let h = r.header().clone();
    assert_eq!(h.variant, Variant::Discontinuous);
    assert_eq!(
        h.start.year, 2099,
        "EDF+ takes the 4-digit year from the recording field"
    );
    assert_eq!((h.start.hour, h.start.minute, h.start.second), (23, 59, 58));
    assert_eq!(h.data_signals().collect::<Vec<_>>(), vec![0, 2]);
    assert_eq!(h.annotation_signals().collect::<Vec<_>>(), vec![1, 3]);
    assert_eq!(h.signals[1].kind, SignalKind::Annotation);
    assert_eq!(h.sample_rate(0), Some(4.0));
    assert_eq!(h.sample_rate(2), Some(8.0));
    assert_eq!(r.read_signal_digital(0).unwrap(), vec![-8, 7, 1]);
    // A: pmin=-8 at dmin=-8, 1 per step. B: inverted, 10 at dmin=0, -10 at dmax=100, -0.2 per step.
    assert_eq!(r.read_signal_physical(0).unwrap(), vec![-8.0, 7.0, 1.0]);
    let b = r.read_signal_physical(2).unwrap();
    let want = [10.0, -10.0, 0.0, 5.0, 9.6, 9.4];
    for (x, w) in b.iter().zip(want) {
        assert!((x - w).abs() < 1e-12, "{b:?}");
    }
    let scan = r.scan_annotations().unwrap();
    assert_eq!(
        scan.record_starts,
        vec![0.125, 0.375, 10.5],
        "the gap before record 2 is visible"
    );
    let got: Vec<(f64, Option<f64>, &str, u64, usize)> = scan
        .annotations
        .iter()
        .map(|a| (a.onset, a.duration, a.text.as_str(), a.record, a.signal))
        .collect();
    assert_eq!(
        got,
        vec![
            (1.0, None, "one", 0, 3),
            (-0.5, Some(1.0), "neg", 1, 3),
            (10.5, None, "a", 2, 1),
            (10.5, None, "b", 2, 1),
        ]
    );
    // The TAL at 0.40 s has no text: nothing to report.
    assert_eq!(r.read_tals(1, 1).unwrap().len(), 2);

    // With the malformed onset, the error names the record, the signal and the byte.
    let mut r = EdfReader::new(Cursor::new(bad)).unwrap();
    match r.scan_annotations() {
        Err(EdfError::Tal { record, location, .. }) => {
            assert_eq!(record, 1);
            assert_eq!(location.signal, Some(1));
            assert_eq!(location.offset as usize, pos);
        }
        other => panic!("{other:?}"),
    }
}

/// Record duration 0 is allowed when every signal is an annotation signal.
#[test]
fn annotation_only_file_with_zero_duration() {
    let mut f = header(true, "BDF+C", "2", "0", "00.00.00", &[ann(10)]);
    let f0 = f.len();
    f.extend(annotation_bytes("+0\x14\x14\0+0.5\x14start\x14\0", 30));
    f.extend(annotation_bytes("+7\x14\x14\0+7\x15\x32\x14end\x14\0", 30));
    let h = Header::parse(&f).unwrap();
    assert_eq!(h.format, SampleFormat::Bdf24);
    assert_eq!(h.header_bytes, f0);
    let mut r = EdfReader::new(Cursor::new(f)).unwrap();
    assert_eq!(r.num_records(), 2);
    assert_eq!(r.header().sample_rate(0), None);
    let scan = r.scan_annotations().unwrap();
    assert_eq!(scan.record_starts, vec![0.0, 7.0]);
    assert_eq!(scan.annotations.len(), 2);
    assert_eq!(scan.annotations[1].duration, Some(2.0));
    assert_eq!(scan.annotations[1].text, "end");
}

/// In a plain EDF file an "EDF Annotations" label is an ordinary signal (as EDFlib reads test_legacy.edf), and
/// BDF's "24BIT" reserved field is plain BDF.
#[test]
fn plain_files_have_no_annotation_signals() {
    let mut f = header(true, "24BIT", "1", "1", "01.02.03", &[ann(2)]);
    f.extend([1, 0, 0, 0xff, 0xff, 0xff]);
    let mut r = EdfReader::new(Cursor::new(f)).unwrap();
    assert_eq!(r.header().variant, Variant::Plain);
    assert_eq!(r.header().signals[0].kind, SignalKind::Data);
    assert_eq!(r.read_signal_digital(0).unwrap(), vec![1, -1]);
    assert!(r.annotations().unwrap().is_empty());
}

/// A file that can shrink after it was opened (`len`), and counts the bytes read from it.
struct Shrinking {
    data: Vec<u8>,
    pos: u64,
    len: Rc<Cell<usize>>,
    read: Rc<Cell<usize>>,
}

impl Read for Shrinking {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let end = self.len.get();
        let at = (self.pos as usize).min(end);
        let n = buf.len().min(end - at);
        buf[..n].copy_from_slice(&self.data[at..at + n]);
        self.pos += n as u64;
        self.read.set(self.read.get() + n);
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

/// `read_record_signals` reads the wanted signals' bytes and no others (bytes counted at the source), decodes
/// them as `read_record` does, refuses the others, and fails on a record cut short wherever the cut is.
#[test]
fn partial_record_reads_skip_the_other_signals() {
    // Plain BDF, 4 signals of 3, 2, 3 and 1 samples per record, 2 records; sample k of signal s in record r is
    // 100 r + 10 s + k (- for odd s, to see the sign extension), stored as 24-bit little endian.
    let spr = [3usize, 2, 3, 1];
    let sig = |i: usize| Sig {
        label: ["A", "B", "C", "D"][i],
        pmin: "-100",
        pmax: "100",
        dmin: "-8388608",
        dmax: "8388607",
        spr: spr[i],
    };
    let value = |r: usize, s: usize, k: usize| {
        let v = (100 * r + 10 * s + k) as i32;
        if s % 2 == 1 { -v } else { v }
    };
    let mut f = header(
        true,
        "24BIT",
        "2",
        "1",
        "01.02.03",
        &(0..4).map(sig).collect::<Vec<_>>(),
    );
    let header_len = f.len();
    for r in 0..2 {
        for (s, &n) in spr.iter().enumerate() {
            for k in 0..n {
                f.extend_from_slice(&value(r, s, k).to_le_bytes()[..3]);
            }
        }
    }
    let record_bytes = 3 * spr.iter().sum::<usize>();
    let full_len = f.len();
    let (len, read) = (Rc::new(Cell::new(full_len)), Rc::new(Cell::new(0)));
    let source = Shrinking {
        data: f,
        pos: 0,
        len: len.clone(),
        read: read.clone(),
    };
    let mut r = EdfReader::new(source).unwrap();
    assert_eq!(r.num_records(), 2);

    for rec in 0..2u64 {
        let want: Vec<Vec<i32>> = (0..4)
            .map(|s| (0..spr[s]).map(|k| value(rec as usize, s, k)).collect())
            .collect();
        let full = r.read_record(rec).unwrap();
        for (s, w) in want.iter().enumerate() {
            assert!(full.is_read(s));
            assert_eq!(
                &full.digital(s).unwrap().collect::<Vec<_>>(),
                w,
                "record {rec} signal {s}"
            );
        }
        // Signals 0 and 2 (given out of order): two runs, then the record's last byte (signal 3 is not read).
        let before = read.get();
        let part = r.read_record_signals(rec, &[2, 0]).unwrap();
        assert_eq!(
            read.get() - before,
            3 * (3 + 3) + 1,
            "bytes read for record {rec}"
        );
        for s in [0, 2] {
            assert!(part.is_read(s));
            let mut got = Vec::new();
            part.digital_into(s, &mut got).unwrap();
            assert_eq!(got, want[s], "record {rec} signal {s}");
        }
        for s in [1, 3] {
            assert!(!part.is_read(s));
            assert!(matches!(
                part.signal_bytes(s),
                Err(EdfError::SignalNotRead { index, record }) if index == s && record == rec
            ));
            assert!(part.digital(s).is_err());
        }
        // What the full read left of signals 1 and 3 is not passed off as this record's bytes.
        assert_eq!(&part.bytes()[9..15], &[0; 6]);
        assert_eq!(&part.bytes()[24..27], &[0; 3]);
        assert!(!part.is_read(4));
        // The last signal is in the set: no extra byte.
        let before = read.get();
        r.read_record_signals(rec, &[3]).unwrap();
        assert_eq!(read.get() - before, 3);
    }
    assert!(matches!(
        r.read_record_signals(2, &[0]),
        Err(EdfError::NoSuchRecord { index: 2, count: 2 })
    ));
    assert!(matches!(
        r.read_record_signals(0, &[4]),
        Err(EdfError::NoSuchSignal { index: 4, count: 4 })
    ));

    // The file loses its tail after it was opened: record 1 is cut short, first by its last byte only (in
    // signal 3, not wanted), then inside signal 1 (between the wanted ones). Both reads fail like the full one.
    let eof =
        |e: EdfError| matches!(e, EdfError::Io(ref io) if io.kind() == std::io::ErrorKind::UnexpectedEof);
    let record1 = header_len + record_bytes;
    for cut in [full_len - 1, record1 + 10] {
        len.set(cut);
        assert!(eof(r.read_record(1).unwrap_err()), "full read, cut at {cut}");
        assert!(
            eof(r.read_record_signals(1, &[0, 2]).unwrap_err()),
            "partial read, cut at {cut}"
        );
        assert!(
            eof(r.read_record_signals(1, &[0]).unwrap_err()),
            "partial read, cut at {cut}"
        );
        // Record 0 is still whole.
        assert_eq!(
            r.read_record_signals(0, &[0])
                .unwrap()
                .digital(0)
                .unwrap()
                .count(),
            3
        );
    }
}

fn valid_edf() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/broken/valid.edf"
    ))
    .unwrap()
}

fn exercise(bytes: Vec<u8>) {
    if let Ok(mut r) = EdfReader::new(Cursor::new(bytes)) {
        let _ = r.scan_annotations();
        for i in 0..r.signals().len() {
            let _ = r.read_signal_physical(i);
        }
        while let Ok(Some(rec)) = r.next_record() {
            let _ = rec.start_time();
        }
        let n = r.signals().len();
        let even: Vec<usize> = (0..n).step_by(2).collect();
        for i in 0..r.num_records() {
            if let Ok(rec) = r.read_record_signals(i, &even) {
                for s in 0..n {
                    let _ = rec.digital(s).map(Iterator::count);
                    let _ = rec.tals(s);
                }
                let _ = rec.start_time();
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(512), ..ProptestConfig::default() })]

    /// Random byte edits anywhere in a valid file: errors are fine, panics are not (the fuzz target in
    /// /fuzz does the same at scale).
    #[test]
    fn mutated_files_never_panic(edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
                                 cut in any::<prop::sample::Index>()) {
        let mut f = valid_edf();
        for (i, b) in edits {
            let i = i.index(f.len());
            f[i] = b;
        }
        let cut = cut.index(f.len() + 1);
        f.truncate(cut.max(f.len() / 2));
        exercise(f);
    }

    /// Digits edited into the numeric header fields (record count, sizes, ranges) in particular.
    #[test]
    fn numeric_header_fields_never_panic(field in 0usize..40, text in "[-+0-9. e]{1,8}") {
        let mut f = valid_edf();
        // Number of records, duration, number of signals, and the per-signal numeric fields of 3 signals.
        let offsets: Vec<usize> = [184, 236, 244, 252]
            .into_iter()
            .chain((0..3).flat_map(|i| [256 + 3 * 104 + 8 * i, 256 + 3 * 112 + 8 * i, 256 + 3 * 120 + 8 * i,
                                        256 + 3 * 128 + 8 * i, 256 + 3 * 216 + 8 * i]))
            .collect();
        let at = offsets[field % offsets.len()];
        let width = if at == 252 { 4 } else { 8 };
        let mut t = text.into_bytes();
        t.resize(width, b' ');
        f[at..at + width].copy_from_slice(&t);
        exercise(f);
    }
}
