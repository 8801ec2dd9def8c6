//! Reader cases the pyedflib fixtures do not cover, on files built byte by byte here from the EDF+ specification
//! (so the expectations are analytic, not produced by the code under test), and a mutation robustness test.

use std::io::Cursor;

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
