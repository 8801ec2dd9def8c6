//! Writer → reader round trips, crash safety, truncation, and the committed files that
//! tests/data/check_written.py verifies with pyedflib and MNE.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use ionm_edf::{
    EdfError, EdfReader, EdfWriter, PatientId, RecordingId, SampleFormat, SignalSpec, StartDateTime, Variant,
    WriterConfig,
};
use proptest::prelude::*;

fn start() -> StartDateTime {
    StartDateTime {
        year: 2024,
        month: 5,
        day: 6,
        hour: 7,
        minute: 8,
        second: 9,
    }
}

fn config(
    format: SampleFormat,
    discontinuous: bool,
    duration: f64,
    signals: Vec<SignalSpec>,
) -> WriterConfig {
    WriterConfig {
        format,
        discontinuous,
        patient: PatientId {
            code: "P-01".into(),
            sex: "F".into(),
            name: "Test Patient".into(),
            ..Default::default()
        },
        recording: RecordingId {
            equipment: "ionm".into(),
            ..Default::default()
        },
        start: start(),
        first_record_offset: 0.0,
        record_duration: duration,
        signals,
        annotation_bytes_per_record: 120,
    }
}

fn write_to_vec(cfg: &WriterConfig, f: impl FnOnce(&mut EdfWriter<Cursor<&mut Vec<u8>>>)) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut w = EdfWriter::new(Cursor::new(&mut buf), cfg).unwrap();
    f(&mut w);
    match w.finish() {
        Ok(_) => {}
        // Annotations with no record to hold them: the file is still finalised.
        Err(EdfError::AnnotationsDropped { .. }) => {}
        Err(e) => panic!("{e}"),
    }
    buf
}

#[derive(Debug, Clone)]
struct Case {
    format: SampleFormat,
    discontinuous: bool,
    duration_ms: u32,
    offset_ms: u32,
    /// Per signal: samples per record, digital min, digital max.
    signals: Vec<(usize, i32, i32)>,
    /// Per record: gap before it (ms, only used when discontinuous), and a seed for its samples.
    records: Vec<(u32, u64)>,
    /// onset (ms), duration (ms), text
    annotations: Vec<(i64, Option<u32>, String)>,
}

fn case() -> impl Strategy<Value = Case> {
    (any::<bool>(), any::<bool>(), 1u32..3000, 0u32..1000).prop_flat_map(
        |(bdf, disc, duration_ms, offset_ms)| {
            let format = if bdf {
                SampleFormat::Bdf24
            } else {
                SampleFormat::Edf16
            };
            let (lo, hi) = format.digital_limits();
            let signal = (1usize..40, lo..hi - 1)
                .prop_flat_map(move |(spr, dmin)| (Just(spr), Just(dmin), dmin + 1..=hi));
            (
                prop::collection::vec(signal, 1..5),
                prop::collection::vec((0u32..5000, any::<u64>()), 0..6),
                prop::collection::vec(
                    (
                        -2000i64..20000,
                        prop::option::of(0u32..10_000),
                        "[a-zA-Z0-9 µé✓_.-]{1,16}",
                    ),
                    0..5,
                ),
            )
                .prop_map(move |(signals, records, annotations)| Case {
                    format,
                    discontinuous: disc,
                    duration_ms,
                    offset_ms,
                    signals,
                    records,
                    annotations,
                })
        },
    )
}

/// Deterministic samples within [dmin, dmax] (a simple LCG; the values only need to cover the range).
fn samples(seed: u64, n: usize, dmin: i32, dmax: i32) -> Vec<i32> {
    let span = (dmax as i64 - dmin as i64 + 1) as u64;
    let mut x = seed | 1;
    (0..n)
        .map(|k| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            match k % 5 {
                0 => dmin,
                1 => dmax,
                _ => (dmin as i64 + ((x >> 11) % span) as i64) as i32,
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(96), ..ProptestConfig::default() })]

    #[test]
    fn round_trip_is_sample_exact(c in case()) {
        let signals: Vec<SignalSpec> = c.signals.iter().enumerate().map(|(i, &(spr, dmin, dmax))| SignalSpec {
            label: format!("S{i}"),
            physical_dimension: "uV".into(),
            physical_min: -500.0 - i as f64,
            physical_max: 250.5,
            digital_min: dmin,
            digital_max: dmax,
            prefiltering: "HP:1Hz".into(),
            transducer: "AgAgCl".into(),
            samples_per_record: spr,
        }).collect();
        let duration = c.duration_ms as f64 / 1000.0;
        let mut cfg = config(c.format, c.discontinuous, duration, signals);
        cfg.first_record_offset = c.offset_ms as f64 / 1000.0;
        cfg.annotation_bytes_per_record = 40 + 48 * c.annotations.len();

        let mut starts = Vec::new();
        let mut data: Vec<Vec<i32>> = vec![Vec::new(); c.signals.len()];
        let bytes = write_to_vec(&cfg, |w| {
            for (onset, dur, text) in &c.annotations {
                w.add_annotation(*onset as f64 / 1000.0, dur.map(|d| d as f64 / 1000.0), text).unwrap();
            }
            let mut t = cfg.first_record_offset;
            for (r, &(gap, seed)) in c.records.iter().enumerate() {
                if c.discontinuous && r > 0 { t += gap as f64 / 1000.0; }
                let rec: Vec<Vec<i32>> = c.signals.iter().enumerate()
                    .map(|(i, &(spr, lo, hi))| samples(seed ^ i as u64, spr, lo, hi)).collect();
                let refs: Vec<&[i32]> = rec.iter().map(Vec::as_slice).collect();
                if c.discontinuous { w.write_record_at(t, &refs).unwrap(); } else { w.write_record(&refs).unwrap(); }
                starts.push(t);
                for (d, s) in data.iter_mut().zip(rec) { d.extend(s); }
                t += duration;
            }
        });

        let mut r = EdfReader::new(Cursor::new(bytes)).unwrap();
        let h = r.header().clone();
        prop_assert_eq!(h.format, c.format);
        prop_assert_eq!(h.variant, if c.discontinuous { Variant::Discontinuous } else { Variant::Continuous });
        prop_assert_eq!(h.declared_records, c.records.len() as i64);
        prop_assert_eq!(r.num_records(), c.records.len() as u64);
        prop_assert_eq!(h.record_duration, duration);
        prop_assert_eq!(h.start, start());
        prop_assert_eq!(h.patient_id().name, "Test Patient");
        prop_assert_eq!(h.data_signals().count(), c.signals.len());
        for (i, &(spr, dmin, dmax)) in c.signals.iter().enumerate() {
            let s = &h.signals[i];
            prop_assert_eq!(&s.label, &format!("S{i}"));
            prop_assert_eq!(s.samples_per_record, spr);
            prop_assert_eq!((s.digital_min, s.digital_max), (dmin, dmax));
            prop_assert_eq!((s.physical_min, s.physical_max), (-500.0 - i as f64, 250.5));
            prop_assert_eq!(&s.prefiltering, "HP:1Hz");
            prop_assert_eq!(r.read_signal_digital(i).unwrap(), data[i].clone());
        }
        let scan = r.scan_annotations().unwrap();
        prop_assert_eq!(scan.record_starts.len(), starts.len());
        for (a, b) in scan.record_starts.iter().zip(&starts) {
            // TAL times are written to the nanosecond.
            prop_assert!((a - b).abs() < 1e-9, "{} vs {}", a, b);
        }
        if c.records.is_empty() {
            prop_assert!(scan.annotations.is_empty());
        } else {
            prop_assert_eq!(scan.annotations.len(), c.annotations.len());
            for (a, (onset, dur, text)) in scan.annotations.iter().zip(&c.annotations) {
                prop_assert!((a.onset - *onset as f64 / 1000.0).abs() < 1e-9);
                prop_assert_eq!(a.duration.map(|d| (d * 1000.0).round() as u32), *dur);
                prop_assert_eq!(&a.text, text);
                prop_assert_eq!(a.record, 0);
            }
        }
    }

    #[test]
    fn physical_round_trip_within_half_a_step(values in prop::collection::vec(-1000.0f64..1000.0, 20), bdf: bool) {
        let format = if bdf { SampleFormat::Bdf24 } else { SampleFormat::Edf16 };
        // Inverted physical range on purpose.
        let cfg = config(format, false, 0.01, vec![SignalSpec::new("X", "uV", 20, (1000.0, -1000.0), format)]);
        let bytes = write_to_vec(&cfg, |w| w.write_record_physical(&[&values]).unwrap());
        let mut r = EdfReader::new(Cursor::new(bytes)).unwrap();
        let back = r.read_signal_physical(0).unwrap();
        let step = r.header().signals[0].gain().abs();
        for (a, b) in back.iter().zip(&values) {
            prop_assert!((a - b).abs() <= step / 2.0 + 1e-9, "{} vs {} (step {})", a, b, step);
        }
    }

    #[test]
    fn any_cut_opens_up_to_the_last_complete_record(cut_frac in 0.0f64..1.0) {
        let bytes = sample_file();
        let r0 = EdfReader::new(Cursor::new(bytes.clone())).unwrap();
        let (hb, rb) = (r0.header().header_bytes, r0.layout().record_bytes as usize);
        let cut = hb + ((bytes.len() - hb) as f64 * cut_frac) as usize;
        let declared = r0.header().declared_records;
        let mut r = match EdfReader::new(Cursor::new(bytes[..cut].to_vec())) {
            Ok(r) => r,
            Err(EdfError::Field { field, .. }) => {
                // Less than half of the declared data left: refused as implausible, by design.
                prop_assert!(field == "number of data records" || field == "samples per data record");
                prop_assert!(((cut - hb) as i64) * 2 < declared * rb as i64);
                return Ok(());
            }
            Err(e) => return Err(TestCaseError::fail(e.to_string())),
        };
        let complete = ((cut - hb) / rb) as u64;
        prop_assert_eq!(r.num_records(), complete);
        prop_assert_eq!(r.layout().trailing_bytes as usize, (cut - hb) % rb);
        prop_assert_eq!(r.read_signal_digital(0).unwrap().len() as u64, complete * 50);
        prop_assert_eq!(r.record_starts().unwrap().len() as u64, complete);
    }
}

/// 10 records of 0.1 s: signal 0 at 500 Hz, signal 1 at 1 kHz; an annotation every record.
fn sample_file() -> Vec<u8> {
    let f = SampleFormat::Edf16;
    let cfg = config(
        f,
        false,
        0.1,
        vec![
            SignalSpec::new("A", "uV", 50, (-100.0, 100.0), f),
            SignalSpec::new("B", "uV", 100, (-1.0, 1.0), f),
        ],
    );
    write_to_vec(&cfg, |w| {
        for r in 0..10 {
            w.add_annotation(r as f64 * 0.1 + 0.05, None, &format!("event {r}"))
                .unwrap();
            let a: Vec<i32> = (0..50).map(|k| r * 100 + k).collect();
            let b: Vec<i32> = (0..100).map(|k| -(r * 100 + k)).collect();
            w.write_record(&[&a, &b]).unwrap();
        }
    })
}

#[test]
fn cut_inside_the_header_is_a_clear_error() {
    let bytes = sample_file();
    for cut in [0, 100, 255, 256, 700] {
        let err = EdfReader::new(Cursor::new(bytes[..cut].to_vec())).unwrap_err();
        assert!(matches!(err, EdfError::Truncated { .. }), "cut at {cut}: {err}");
    }
}

#[test]
fn streaming_records_match_whole_signals() {
    let mut r = EdfReader::new(Cursor::new(sample_file())).unwrap();
    let whole = r.read_signal_digital(1).unwrap();
    let mut streamed = Vec::new();
    let mut starts = Vec::new();
    while let Some(rec) = r.next_record().unwrap() {
        rec.digital_into(1, &mut streamed).unwrap();
        starts.push(rec.start_time().unwrap());
        assert_eq!(rec.tals(2).unwrap().len(), 2, "time-keeping TAL + one annotation");
        assert!(rec.tals(0).is_err(), "signal 0 is data");
    }
    assert_eq!(streamed, whole);
    assert_eq!(starts, r.record_starts().unwrap());
    let mut part = Vec::new();
    r.read_digital_into(0, 3..5, &mut part).unwrap();
    assert_eq!(part, (300..350).chain(400..450).collect::<Vec<_>>());
    assert!(matches!(
        r.read_record(10),
        Err(EdfError::NoSuchRecord { index: 10, count: 10 })
    ));
    assert!(matches!(
        r.read_signal_digital(3),
        Err(EdfError::NoSuchSignal { index: 3, count: 3 })
    ));
}

#[test]
fn annotations_spill_into_later_records_and_leftovers_are_reported() {
    let f = SampleFormat::Edf16;
    let mut cfg = config(f, false, 1.0, vec![SignalSpec::new("A", "uV", 2, (-1.0, 1.0), f)]);
    cfg.annotation_bytes_per_record = 48; // time-keeping TAL + one short annotation
    let mut w = EdfWriter::new(Cursor::new(Vec::new()), &cfg).unwrap();
    for k in 0..4 {
        // 23-byte TALs: one fits beside the time-keeping TAL in 48 bytes, two do not.
        w.add_annotation(k as f64, Some(0.5), &format!("event number {k}"))
            .unwrap();
    }
    assert!(matches!(
        w.add_annotation(0.0, None, &"x".repeat(40)),
        Err(EdfError::Annotation(_))
    ));
    assert!(matches!(
        w.add_annotation(0.0, None, "bad\u{14}text"),
        Err(EdfError::Annotation(_))
    ));
    for _ in 0..3 {
        w.write_record(&[&[0, 1]]).unwrap();
    }
    assert_eq!(w.pending_annotations(), 1);
    let err = w.finish().unwrap_err();
    assert!(matches!(err, EdfError::AnnotationsDropped { count: 1 }), "{err}");
}

#[test]
fn record_shape_and_time_errors() {
    let f = SampleFormat::Bdf24;
    let cfg = config(f, false, 0.5, vec![SignalSpec::new("A", "uV", 3, (-1.0, 1.0), f)]);
    let mut w = EdfWriter::new(Cursor::new(Vec::new()), &cfg).unwrap();
    assert!(matches!(
        w.write_record(&[&[1, 2]]),
        Err(EdfError::RecordShape { signal: 0, .. })
    ));
    assert!(matches!(w.write_record(&[]), Err(EdfError::RecordShape { .. })));
    assert!(matches!(
        w.write_record(&[&[1, 2, 1 << 23]]),
        Err(EdfError::RecordShape { .. })
    ));
    w.write_record(&[&[1, 2, 3]]).unwrap();
    assert!(matches!(
        w.write_record_at(3.0, &[&[1, 2, 3]]),
        Err(EdfError::RecordTime { record: 1, .. })
    ));
    w.write_record_at(0.5, &[&[1, 2, 3]]).unwrap();

    let mut cfg = cfg;
    cfg.discontinuous = true;
    let mut w = EdfWriter::new(Cursor::new(Vec::new()), &cfg).unwrap();
    w.write_record_at(10.0, &[&[1, 2, 3]]).unwrap();
    assert!(
        matches!(
            w.write_record_at(10.2, &[&[1, 2, 3]]),
            Err(EdfError::RecordTime { .. })
        ),
        "overlap"
    );
    w.write_record_at(12.0, &[&[1, 2, 3]]).unwrap();
    w.write_record(&[&[4, 5, 6]]).unwrap(); // continues at 12.5
    let mut r = EdfReader::new(Cursor::new(w.finish().unwrap().into_inner())).unwrap();
    assert_eq!(r.record_starts().unwrap(), vec![10.0, 12.0, 12.5]);

    for bad in [
        WriterConfig {
            record_duration: 0.0,
            ..cfg.clone()
        },
        WriterConfig {
            annotation_bytes_per_record: 8,
            ..cfg.clone()
        },
        WriterConfig {
            signals: vec![SignalSpec::new("EDF Annotations", "", 1, (0.0, 1.0), f)],
            ..cfg.clone()
        },
        WriterConfig {
            signals: vec![SignalSpec::new("A", "uV", 1, (1.0, 1.0), f)],
            ..cfg.clone()
        },
        WriterConfig {
            signals: vec![SignalSpec::new(
                "A label that is too long",
                "uV",
                1,
                (0.0, 1.0),
                f,
            )],
            ..cfg.clone()
        },
        WriterConfig {
            start: StartDateTime {
                year: 1970,
                ..start()
            },
            ..cfg.clone()
        },
        WriterConfig {
            signals: vec![SignalSpec::new("A", "uV", 1, (0.0, 123456789.0), f)],
            ..cfg.clone()
        },
    ] {
        assert!(
            matches!(
                EdfWriter::new(Cursor::new(Vec::new()), &bad),
                Err(EdfError::Config(_))
            ),
            "{bad:?}"
        );
    }
}

fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ionm-edf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A recorder killed after a flush (simulated by leaking the writer: nothing after the flush is written by
/// it) leaves a file whose header count is the flushed one and which opens up to the last complete record.
#[test]
fn killed_writer_leaves_a_valid_file_up_to_the_last_flush() {
    let path = temp_path("killed.bdf");
    let f = SampleFormat::Bdf24;
    let cfg = config(
        f,
        false,
        0.1,
        vec![SignalSpec::new("A", "uV", 1000, (-1.0, 1.0), f)],
    );
    let mut w = EdfWriter::create(&path, &cfg).unwrap();
    let rec: Vec<i32> = (0..1000).collect();
    for _ in 0..3 {
        w.write_record(&[&rec]).unwrap();
    }
    // Before any flush the header says -1 (unknown); the reader derives the count from the file size.
    w.flush().unwrap();
    assert_eq!(w.header().declared_records, 3);
    for _ in 0..2 {
        w.write_record(&[&rec]).unwrap();
    }
    std::mem::forget(w); // the process dies: no drop, no flush of the BufWriter
    let mut r = EdfReader::open(&path).unwrap();
    assert_eq!(r.header().declared_records, 3);
    assert!(r.num_records() >= 3);
    assert_eq!(
        r.read_signal_digital(0).unwrap()[..3000],
        (0..3000).map(|k| k % 1000).collect::<Vec<_>>()[..]
    );

    // A killed writer that never flushed: header -1, records present are still served.
    let path2 = temp_path("never_flushed.edf");
    let f = SampleFormat::Edf16;
    let cfg = config(f, false, 0.1, vec![SignalSpec::new("A", "uV", 4, (-1.0, 1.0), f)]);
    let mut w = EdfWriter::new(std::fs::File::create(&path2).unwrap(), &cfg).unwrap();
    w.write_record(&[&[1, 2, 3, 4]]).unwrap();
    w.write_record(&[&[5, 6, 7, 8]]).unwrap();
    let mut r = EdfReader::open(&path2).unwrap();
    assert_eq!(r.header().declared_records, -1);
    assert_eq!(r.num_records(), 2);
    assert_eq!(r.read_signal_digital(0).unwrap(), vec![1, 2, 3, 4, 5, 6, 7, 8]);
    // Following a live recording: the reader sees new records after refresh().
    w.write_record(&[&[9, 10, 11, 12]]).unwrap();
    assert_eq!(r.refresh().unwrap(), 3);
    assert_eq!(r.read_signal_digital(0).unwrap()[8..], [9, 10, 11, 12]);
    std::mem::forget(w);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

// ---------------------------------------------------------------------------------------------------------------
// Files for tests/data/check_written.py (pyedflib + MNE). The recipe is restated independently in that script.

fn written_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/written")
}

/// BDF+C: 3 signals at 5 kHz, 10 kHz (inverted physical range) and 100 Hz, 10 records of 0.1 s starting 0.25 s
/// after 2024-05-06 07:08:09, three annotations (one UTF-8).
fn written_bdf() -> Vec<u8> {
    let f = SampleFormat::Bdf24;
    let (lo, hi) = f.digital_limits();
    let mut cfg = config(
        f,
        false,
        0.1,
        vec![
            SignalSpec {
                prefiltering: "HP:30Hz LP:1000Hz".into(),
                ..SignalSpec::new("C3'-Fz", "uV", 500, (-1000.0, 1000.0), f)
            },
            SignalSpec::new("EMG TA", "uV", 1000, (5000.0, -5000.0), f),
            SignalSpec {
                digital_min: 0,
                digital_max: 1,
                ..SignalSpec::new("Trigger", "", 10, (0.0, 1.0), f)
            },
        ],
    );
    cfg.first_record_offset = 0.25;
    let span = hi as i64 - lo as i64 + 1;
    write_to_vec(&cfg, |w| {
        w.add_annotation(0.3, Some(0.0002), "stim 1").unwrap();
        w.add_annotation(0.55, None, "baseline").unwrap();
        w.add_annotation(0.95, Some(0.05), "UTF-8 µV ✓").unwrap();
        for r in 0..10i64 {
            let a: Vec<i32> = (0..500)
                .map(|k| ((r * 500 + k) * 7919 + 12345).rem_euclid(span) as i32 + lo)
                .collect();
            let b: Vec<i32> = (0..1000)
                .map(|k| ((r * 1000 + k) * 104729).rem_euclid(span) as i32 + lo)
                .collect();
            let t: Vec<i32> = (0..10).map(|k| i32::from((r * 10 + k) % 7 == 0)).collect();
            w.write_record(&[&a, &b, &t]).unwrap();
            if r == 4 {
                w.flush().unwrap();
            }
        }
    })
}

/// EDF+D: 2 signals (200 Hz, 100 Hz), records of 0.5 s at 0, 0.5, 2.0 and 2.5 s (a 1 s gap), two annotations;
/// EDF+C: the same with records at 0, 0.5, 1.0, 1.5 s and the second annotation at 1.2 s.
fn written_edf(discontinuous: bool) -> Vec<u8> {
    let f = SampleFormat::Edf16;
    let starts = if discontinuous {
        [0.0, 0.5, 2.0, 2.5]
    } else {
        [0.0, 0.5, 1.0, 1.5]
    };
    let cfg = config(
        f,
        discontinuous,
        0.5,
        vec![
            SignalSpec::new("Fz", "uV", 100, (-3276.8, 3276.7), f),
            SignalSpec {
                digital_min: -2048,
                digital_max: 2047,
                ..SignalSpec::new("Cz", "mV", 50, (-2.0, 2.0), f)
            },
        ],
    );
    write_to_vec(&cfg, |w| {
        w.add_annotation(0.25, None, "start").unwrap();
        w.add_annotation(if discontinuous { 2.1 } else { 1.2 }, Some(1.5), "after gap")
            .unwrap();
        for (r, t) in starts.into_iter().enumerate() {
            let r = r as i32;
            let a: Vec<i32> = (0..100).map(|k| (r * 100 + k) * 300 % 65536 - 32768).collect();
            let b: Vec<i32> = (0..50).map(|k| (r * 50 + k) * 37 % 4096 - 2048).collect();
            w.write_record_at(t, &[&a, &b]).unwrap();
        }
    })
}

#[test]
fn written_files_are_current() {
    // IONM_EDF_REGENERATE=1 rewrites them (then run tests/data/check_written.py).
    let regenerate = std::env::var_os("IONM_EDF_REGENERATE").is_some();
    for (name, bytes) in [
        ("ionm_written.bdf", written_bdf()),
        ("ionm_written.edf", written_edf(false)),
        ("ionm_written_d.edf", written_edf(true)),
    ] {
        let path = written_dir().join(name);
        if regenerate {
            std::fs::create_dir_all(written_dir()).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        }
        let committed = std::fs::read(&path).unwrap_or_default();
        assert!(
            committed == bytes,
            "{name} differs from the writer's output; regenerate and re-run check_written.py"
        );
        // And our own reader agrees with the recipe.
        let mut r = EdfReader::new(Cursor::new(bytes)).unwrap();
        assert!(r.num_records() == 10 || r.num_records() == 4);
        let scan = r.scan_annotations().unwrap();
        assert!(scan.annotations.len() >= 2);
    }
}
