//! Replay of other tools' files: every pyedflib test file (expectations from pyedflib, see
//! tests/data/make_foreign_expected.py), an EDF+D file with a gap, broken files, files without usable signals.

mod common;

use common::{Summary, scratch};
use ionm_core::{Acquired, GapCause, Stimulator};
use ionm_edf::{EdfWriter, SampleFormat, SignalSpec, StartDateTime, WriterConfig};
use ionm_record::{AnnotationRule, ReplayConfig, ReplayError, ReplaySource};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn edf_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../ionm-edf/tests/data")
}

/// CRC-32 (IEEE, as zlib.crc32), bitwise: independent of the code under test.
fn crc32(bytes: impl IntoIterator<Item = u8>) -> u32 {
    let mut crc = !0u32;
    for b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn replay(path: &Path, config: &ReplayConfig) -> Result<Vec<Acquired>, ReplayError> {
    let mut src = ReplaySource::open(path, config)?;
    let mut items = Vec::new();
    while let Some(i) = src.next_item()? {
        items.push(i);
    }
    common::check_order(&items);
    Ok(items)
}

#[test]
fn every_pyedflib_test_file_replays_as_pyedflib_reads_it() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/foreign_expected.json"),
    )
    .unwrap();
    let expected: Value = serde_json::from_str(&text).unwrap();
    let config = ReplayConfig {
        annotation_rules: vec![AnnotationRule::prefix("XLSpike", Stimulator::LeftMedian)],
        ..Default::default()
    };
    let files = expected.as_object().unwrap();
    assert_eq!(files.len(), 8);
    for (name, exp) in files {
        let path = edf_data().join("pyedflib").join(name);
        let src = ReplaySource::open(&path, &config).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!src.is_native(), "{name}");
        let device = src.device().clone();
        let chans = exp["channels"].as_array().unwrap();
        assert_eq!(
            u64::from(device.sample_rate_hz),
            exp["rate"].as_u64().unwrap(),
            "{name}"
        );
        let labels: Vec<&str> = chans.iter().map(|c| c["label"].as_str().unwrap()).collect();
        assert_eq!(
            device
                .channels
                .iter()
                .map(|c| c.label.as_str())
                .collect::<Vec<_>>(),
            labels,
            "{name}"
        );
        assert!(device.channels.iter().all(|c| c.gain_nv_per_lsb == 1), "{name}");
        let adc_min = chans.iter().map(|c| c["adc"][0].as_i64().unwrap()).min().unwrap();
        let adc_max = chans.iter().map(|c| c["adc"][1].as_i64().unwrap()).max().unwrap();
        assert_eq!(
            (i64::from(device.adc_min), i64::from(device.adc_max)),
            (adc_min, adc_max),
            "{name}"
        );

        let items = replay(&path, &config).unwrap();
        let s = Summary::of(&items);
        assert_eq!(s.runs.len(), 1, "{name}: one continuous run");
        assert!(s.gaps.is_empty(), "{name}");
        let (first, values) = &s.runs[0];
        assert_eq!(*first, 0);
        let nch = chans.len();
        for (c, ch) in chans.iter().enumerate() {
            let raw: Vec<i32> = values.iter().skip(c).step_by(nch).copied().collect();
            assert_eq!(
                raw.len() as u64,
                ch["n"].as_u64().unwrap(),
                "{name} {}",
                labels[c]
            );
            let head: Vec<i64> = ch["head"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap())
                .collect();
            assert_eq!(
                raw[..head.len()]
                    .iter()
                    .map(|&v| i64::from(v))
                    .collect::<Vec<_>>(),
                head,
                "{name}"
            );
            let crc = crc32(raw.iter().flat_map(|v| v.to_le_bytes()));
            assert_eq!(
                u64::from(crc),
                ch["crc32"].as_u64().unwrap(),
                "{name} {}: raw values differ",
                labels[c]
            );
        }
        let want: Vec<u64> = exp["xlspike_indices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        let got: Vec<u64> = s.stimuli.iter().map(|st| st.sample_index).collect();
        assert_eq!(got, want, "{name}: stimuli from annotations");
        assert!(s.stimuli.iter().all(|st| st.stimulator == Stimulator::LeftMedian));
    }
}

#[test]
fn skipped_signals_are_named() {
    let path = edf_data().join("pyedflib/tests/data/test_generator_datarec_generator_2.bdf");
    let src = ReplaySource::open(&path, &ReplayConfig::default()).unwrap();
    let skipped = src.skipped_signals().join("; ");
    for what in ["square 6.5Hz", "400 Hz", "487.5", "whole number", "ramp 3.5Hz"] {
        assert!(skipped.contains(what), "{skipped}");
    }
    let legacy = edf_data().join("pyedflib/tests/data/test_legacy.edf");
    let src = ReplaySource::open(&legacy, &ReplayConfig::default()).unwrap();
    assert!(
        src.skipped_signals()[0].contains("EDF Annotations"),
        "{:?}",
        src.skipped_signals()
    );
}

#[test]
fn explicit_channels_are_replayed_in_the_order_asked() {
    let path = edf_data().join("pyedflib/tests/data/test_generator.edf");
    let config = ReplayConfig {
        channels: Some(vec!["sine 50 Hz".into(), "ramp".into()]),
        ..Default::default()
    };
    let src = ReplaySource::open(&path, &config).unwrap();
    let labels: Vec<&str> = src.device().channels.iter().map(|c| c.label.as_str()).collect();
    assert_eq!(labels, ["sine 50 Hz", "ramp"]);
    let bad = ReplayConfig {
        channels: Some(vec!["Cz".into()]),
        ..Default::default()
    };
    let err = ReplaySource::open(&path, &bad).unwrap_err().to_string();
    assert!(err.contains("\"Cz\"") && err.contains("\"ramp\""), "{err}");
    let mixed = edf_data().join("pyedflib/tests/data/test_generator.bdf");
    let config = ReplayConfig {
        channels: Some(vec!["sine 5Hz".into(), "square 13Hz".into()]),
        ..Default::default()
    };
    let err = ReplaySource::open(&mixed, &config).unwrap_err().to_string();
    assert!(err.contains("one whole-number rate"), "{err}");
}

#[test]
fn an_edf_plus_d_file_replays_its_time_gap_as_a_gap() {
    // ionm-edf's committed EDF+D file: Fz at 200 Hz (and Cz at 100 Hz, skipped), records of 0.5 s starting at
    // 0, 0.5, 2.0 and 2.5 s; Fz digital values d_k = (300 k mod 65536) − 32768 with 0.1 µV per step
    // (see ionm-edf/tests/data/check_written.py), so raw = 100 d_k nV.
    let path = edf_data().join("written/ionm_written_d.edf");
    let items = replay(&path, &ReplayConfig::default()).unwrap();
    let s = Summary::of(&items);
    let d = |k: i64| ((k * 300 % 65536) - 32768) * 100;
    assert_eq!(s.runs.len(), 2);
    assert_eq!(s.runs[0].0, 0);
    assert_eq!(s.runs[1].0, 400);
    let first: Vec<i64> = s.runs[0].1.iter().map(|&v| i64::from(v)).collect();
    let second: Vec<i64> = s.runs[1].1.iter().map(|&v| i64::from(v)).collect();
    assert_eq!(first, (0..200).map(d).collect::<Vec<_>>());
    assert_eq!(second, (200..400).map(d).collect::<Vec<_>>());
    assert_eq!(s.gaps.len(), 1);
    assert_eq!(
        (s.gaps[0].from, s.gaps[0].to, s.gaps[0].cause),
        (200, 400, GapCause::Disconnected)
    );
    let mut src = ReplaySource::open(&path, &ReplayConfig::default()).unwrap();
    assert_eq!(src.duration_s(), 3.0);
    src.seek(1.5);
    assert_eq!(src.position_s(), 2.0);
}

#[test]
fn broken_files_give_errors_not_panics() {
    let mut n = 0;
    for entry in std::fs::read_dir(edf_data().join("broken")).unwrap() {
        let path = entry.unwrap().path();
        match replay(&path, &ReplayConfig::default()) {
            Ok(items) => assert!(
                matches!(items.first(), Some(Acquired::Device(_))),
                "{}",
                path.display()
            ),
            Err(e) => assert!(!e.to_string().is_empty()),
        }
        n += 1;
    }
    assert!(n >= 20);
}

fn write_edf(path: &Path, signals: Vec<SignalSpec>) {
    let config = WriterConfig {
        format: SampleFormat::Edf16,
        discontinuous: false,
        patient: Default::default(),
        recording: Default::default(),
        start: StartDateTime {
            year: 2024,
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
        },
        first_record_offset: 0.0,
        record_duration: 1.0,
        signals,
        annotation_bytes_per_record: 64,
    };
    let mut w = EdfWriter::create(path, &config).unwrap();
    let data: Vec<Vec<i32>> = config
        .signals
        .iter()
        .map(|s| vec![7; s.samples_per_record])
        .collect();
    let slices: Vec<&[i32]> = data.iter().map(Vec::as_slice).collect();
    w.write_record(&slices).unwrap();
    w.finish().unwrap();
}

#[test]
fn a_file_without_usable_signal_is_a_clear_error() {
    let path = scratch("temperature.edf");
    write_edf(
        &path,
        vec![SignalSpec::new(
            "Temp",
            "degC",
            10,
            (-50.0, 50.0),
            SampleFormat::Edf16,
        )],
    );
    let err = ReplaySource::open(&path, &ReplayConfig::default()).unwrap_err();
    assert!(matches!(err, ReplayError::NoUsableSignal(_)));
    let msg = err.to_string();
    assert!(msg.contains("\"Temp\"") && msg.contains("degC"), "{msg}");
    // Asked for explicitly, it is read as µV (with a warning).
    let config = ReplayConfig {
        channels: Some(vec!["Temp".into()]),
        ..Default::default()
    };
    let items = replay(&path, &config).unwrap();
    assert_eq!(Summary::of(&items).samples(), 10);

    // Units: mV and V scale to nV; a range too wide for 2^30 nV gets a power-of-ten gain.
    let path = scratch("units.edf");
    write_edf(
        &path,
        vec![
            SignalSpec::new("A", "mV", 10, (-3.2768, 3.2767), SampleFormat::Edf16),
            SignalSpec::new("B", "V", 10, (-10.0, 10.0), SampleFormat::Edf16),
        ],
    );
    let mut src = ReplaySource::open(&path, &ReplayConfig::default()).unwrap();
    let gains: Vec<u32> = src.device().channels.iter().map(|c| c.gain_nv_per_lsb).collect();
    // 10 V = 1e10 nV: 10 nV/LSB gives 1e9 < 2^30.
    assert_eq!(gains, [1, 10]);
    let mut values = Vec::new();
    while let Some(item) = src.next_item().unwrap() {
        if let Acquired::Samples(b) = item {
            values.extend_from_slice(b.instant(0));
        }
    }
    // Digital 7: A = 7 × 0.1 µV = 700 nV; B = (7 + 32768) × 20 / 65535 − 10 V = 2.2889e-3 V → /10 nV.
    let b: f64 = ((7.0 + 32768.0) * 20.0 / 65535.0 - 10.0) * 1e9 / 10.0;
    assert_eq!(values, [700, b.round() as i32]);
}
