//! Recorder → file → replay: samples, stimuli, gaps and the device come back exactly.

mod common;

use common::{Summary, replay_all, scratch, sim_config, sim_stream};
use ionm_core::events::{AlarmClass, AlarmEvent, AlarmKind, AlarmState, Event, MarkerEvent};
use ionm_core::{Acquired, Gap, GapCause, SampleBlock, Stimulator, StimulusEvent};
use ionm_edf::{EdfReader, StartDateTime};
use ionm_record::{
    Recorder, RecorderConfig, RecorderStats, RecordingWriter, ReplayConfig, ReplaySource, Sidecar,
};
use std::sync::Arc;

fn fixed_start() -> StartDateTime {
    StartDateTime {
        year: 2025,
        month: 3,
        day: 4,
        hour: 5,
        minute: 6,
        second: 7,
    }
}

/// The original stream without the items the recording does not keep (statuses, links).
fn expected(items: &[Acquired]) -> Summary {
    Summary::of(items)
}

#[test]
fn firmware_sim_round_trip_through_the_threaded_recorder() {
    sim_round_trip(false);
}

#[test]
fn firmware_sim_round_trip_discontinuous() {
    sim_round_trip(true);
}

fn sim_round_trip(discontinuous: bool) {
    let rate = 10_000;
    // Records are 0.1 s = 1000 samples. Gaps: crossing a record boundary from inside a record, inside one
    // record, exactly at a record boundary, and one at the very end (no samples after it).
    let gaps = [
        (9_950, 10_230),
        (15_100, 15_400),
        (20_000, 21_000),
        (29_900, 30_000),
    ];
    let stream = sim_stream(sim_config(16, rate, 7), 30_000, &gaps, 11);
    let path = scratch(&format!("sim_round_trip_{discontinuous}.bdf"));
    let config = RecorderConfig {
        start: Some(fixed_start()),
        discontinuous,
        protocol: Some("name = \"test\"\n".into()),
        ..Default::default()
    };
    let mut rec = Recorder::create(&path, config).unwrap();
    let alarm = Event::Alarm(AlarmEvent {
        stream_s: 1.5,
        id: 1,
        trace: Some("CP3-Fz/left_median".into()),
        kind: AlarmKind::AmplitudeDrop,
        class: AlarmClass::Clinical,
        state: AlarmState::Raised,
        value: Some(0.45),
        threshold: Some(0.5),
        systemic: false,
        detector: "block".into(),
        message: "amplitude 45% of baseline".into(),
    });
    let marker = Event::Marker(MarkerEvent {
        stream_s: 2.25,
        kind: "incision".into(),
        text: "skin \u{14}incision".into(),
    });
    for (k, item) in stream.items.iter().enumerate() {
        assert!(rec.try_send(item));
        if k == stream.items.len() / 2 {
            assert!(rec.try_send_event(&alarm));
            assert!(rec.try_send_event(&marker));
        }
    }
    let stats = rec.stats().clone();
    let summary = rec.finish().unwrap();
    let snap = stats.snapshot();
    assert_eq!(snap.dropped_items, 0);
    assert!(!snap.failed);
    assert_eq!(summary.files.len(), 1);
    let counts = &summary.files[0].counts;
    let exp = expected(&stream.items);
    assert_eq!(counts.samples as usize * 16, exp.samples());
    assert_eq!(counts.gaps, 4);
    assert_eq!(counts.stimuli as usize, exp.stimuli.len());
    assert_eq!(counts.late_stimuli, 0);

    let (got, _) = replay_all(&path, &ReplayConfig::default());
    assert_eq!(got.devices, vec![(*stream.device).clone()]);
    assert_eq!(got.runs.len(), exp.runs.len());
    for (g, e) in got.runs.iter().zip(&exp.runs) {
        assert_eq!(g.0, e.0, "run start");
        assert!(g.1 == e.1, "samples of the run at {} differ", e.0);
    }
    assert_eq!(got.gaps, exp.gaps);
    assert!(!exp.stimuli.is_empty());
    if !discontinuous {
        // Every gap is padded: the file covers the whole time span without a jump.
        assert_eq!(ionm_edf::EdfReader::open(&path).unwrap().num_records(), 30);
    }
    assert!(
        exp.stimuli
            .iter()
            .any(|s| s.stimulator == Stimulator::Tes && s.pulses == 5)
    );
    assert_eq!(got.stimuli, exp.stimuli);

    // The file as another reader sees it.
    let mut r = EdfReader::open(&path).unwrap();
    let h = r.header().clone();
    assert_eq!(h.patient, "X X X X");
    assert!(
        h.recording
            .starts_with("Startdate 04-MAR-2025 X X ionm firmware-sim_"),
        "{}",
        h.recording
    );
    assert_eq!(h.reserved, if discontinuous { "BDF+D" } else { "BDF+C" });
    assert_eq!(h.record_duration, 0.1);
    assert_eq!(h.signals.len(), 18);
    assert_eq!(h.signals[16].label, "Stimulus");
    assert_eq!(h.declared_records as u64, r.num_records());
    for (c, ch) in stream.device.channels.iter().enumerate() {
        let s = &h.signals[c];
        assert_eq!(s.label, ch.label);
        assert_eq!(s.physical_dimension, "uV");
        assert_eq!(
            (s.digital_min, s.digital_max),
            (stream.device.adc_min, stream.device.adc_max)
        );
        // 24 nV/LSB, within the rounding of the 8-character physical fields.
        assert!((s.gain() * 1000.0 / 24.0 - 1.0).abs() < 1e-5, "{}", s.gain());
    }
    let scan = r.scan_annotations().unwrap();
    let texts: Vec<&str> = scan.annotations.iter().map(|a| a.text.as_str()).collect();
    assert!(texts[0].starts_with("ionm start session "));
    assert!(
        texts.contains(&"alarm raised clinical amplitude_drop CP3-Fz/left_median: amplitude 45% of baseline")
    );
    assert!(texts.contains(&"marker incision: skin  incision"));
    assert!(texts.contains(&"BAD_gap lost_frames 280 samples 3 frames"));
    assert!(texts.contains(&"BAD_end_padding"));
    let alarm_onset = scan
        .annotations
        .iter()
        .find(|a| a.text.starts_with("alarm"))
        .unwrap()
        .onset;
    assert!((alarm_onset - 1.5).abs() < 1e-9);
    // Trigger channel, read directly: each stimulus code at its sample (lowest code if two share one).
    let trig = r.read_signal_digital(16).unwrap();
    let starts = scan.record_starts;
    if !discontinuous {
        for (k, s) in starts.iter().enumerate() {
            assert!(
                (s - k as f64 * 0.1).abs() < 1e-9,
                "BDF+C: record {k} starts at {s}"
            );
        }
    }
    let index_of = |k: usize| -> u64 { (starts[k / 1000] * 10_000.0).round() as u64 + (k % 1000) as u64 };
    let mut marked: Vec<(u64, i32)> = (0..trig.len())
        .filter(|&k| trig[k] != 0)
        .map(|k| (index_of(k), trig[k]))
        .collect();
    marked.sort();
    let mut want: Vec<(u64, i32)> = Vec::new();
    for s in &exp.stimuli {
        let in_gap = gaps
            .iter()
            .any(|&(f, t)| f <= s.sample_index && s.sample_index < t);
        if !in_gap && !want.iter().any(|w| w.0 == s.sample_index) {
            want.push((s.sample_index, i32::from(s.stimulator.code())));
        }
    }
    let marked: Vec<(u64, i32)> = marked
        .into_iter()
        .filter(|m| !gaps.iter().any(|&(f, t)| f <= m.0 && m.0 < t))
        .collect();
    assert_eq!(marked, want);

    let side = Sidecar::read(&path).unwrap().unwrap();
    assert!(side.finished);
    assert_eq!(side.device, *stream.device);
    assert_eq!(side.protocol.as_deref(), Some("name = \"test\"\n"));
    assert_eq!(side.counts.end_index, Some(29_900));
}

#[test]
fn replay_without_sidecar_recovers_the_device_from_header_and_annotations() {
    let stream = sim_stream(sim_config(4, 10_000, 3), 5_000, &[(2_345, 2_400)], 5);
    let path = scratch("no_sidecar.bdf");
    let mut w = RecordingWriter::new(
        &path,
        RecorderConfig::default(),
        Arc::new(RecorderStats::default()),
    )
    .unwrap();
    for item in &stream.items {
        w.handle(item).unwrap();
    }
    w.finish().unwrap();
    let config = ReplayConfig {
        read_sidecar: false,
        ..Default::default()
    };
    let (got, _) = replay_all(&path, &config);
    assert_eq!(got.devices, vec![(*stream.device).clone()]);
    let exp = expected(&stream.items);
    assert_eq!(got.runs, exp.runs);
    assert_eq!(got.gaps, exp.gaps);
    assert_eq!(got.stimuli, exp.stimuli);
    // Without the trigger channel the annotations alone give the same stimuli; the trigger is never a channel.
    let config = ReplayConfig {
        trigger_label: None,
        ..Default::default()
    };
    let (got, _) = replay_all(&path, &config);
    assert_eq!(got.devices, vec![(*stream.device).clone()]);
    assert_eq!(got.stimuli, exp.stimuli);
}

fn block(first: u64, nch: usize, n: usize, f: impl Fn(u64, usize) -> i32) -> Acquired {
    let v: Vec<i32> = (0..n)
        .flat_map(|s| (0..nch).map(move |c| (s, c)))
        .map(|(s, c)| f(first + s as u64, c))
        .collect();
    Acquired::Samples(SampleBlock::from_interleaved(first, nch, &v).unwrap())
}

fn device(session: u32, nch: usize, rate: u32) -> Arc<ionm_core::DeviceInfo> {
    Arc::new(ionm_core::DeviceInfo {
        protocol_version: 1,
        sample_rate_hz: rate,
        channels: (0..nch)
            .map(|c| ionm_core::ChannelInfo {
                label: format!("ch {c}"),
                gain_nv_per_lsb: 100 + c as u32,
            })
            .collect(),
        adc_min: -(1 << 23),
        adc_max: (1 << 23) - 1,
        firmware_version: "test fw 1.0".into(),
        session_id: session,
    })
}

#[test]
fn a_device_restart_continues_in_a_numbered_file() {
    let path = scratch("restart.bdf");
    let second = ionm_record::numbered_path(&path, 2);
    let third = ionm_record::numbered_path(&path, 3);
    let _ = std::fs::remove_file(&second);
    let _ = std::fs::remove_file(&third);
    let stats = Arc::new(RecorderStats::default());
    let mut w = RecordingWriter::new(&path, RecorderConfig::default(), stats.clone()).unwrap();
    let a = device(1, 2, 1000);
    let b = device(2, 2, 1000);
    let c = device(2, 3, 1000);
    let items = vec![
        Acquired::Device(a.clone()),
        block(500, 2, 250, |i, c| (i * 2 + c as u64) as i32),
        // Same description again: ignored.
        Acquired::Device(a.clone()),
        block(750, 2, 100, |i, c| (i * 2 + c as u64) as i32),
        Acquired::Device(b.clone()),
        block(0, 2, 130, |i, c| -((i * 3 + c as u64) as i32)),
        // Same session, new layout: another file too.
        Acquired::Device(c.clone()),
        block(130, 3, 70, |i, c| (i + c as u64) as i32),
    ];
    for item in &items {
        w.handle(item).unwrap();
    }
    let summary = w.finish().unwrap();
    assert_eq!(summary.files.len(), 3);
    assert_eq!(summary.files[1].path, second);
    assert_eq!(summary.files[2].path, third);
    assert_eq!(stats.snapshot().files, 3);
    let segments = [(&path, 0..4), (&second, 4..6), (&third, 6..8)];
    for (p, range) in segments {
        let (got, _) = replay_all(p, &ReplayConfig::default());
        let exp = Summary::of(&items[range.clone()]);
        assert_eq!(got.devices[0], exp.devices[0], "{}", p.display());
        assert_eq!(got.runs, exp.runs, "{}", p.display());
        assert!(got.gaps.is_empty());
    }
    let s1 = Sidecar::read(&path).unwrap().unwrap();
    assert_eq!(s1.end_reason.as_deref(), Some("device_restart"));
    assert_eq!(s1.next_file.as_deref(), Some("restart-2.bdf"));
    let s2 = Sidecar::read(&second).unwrap().unwrap();
    assert_eq!(s2.previous_file.as_deref(), Some("restart.bdf"));
    assert_eq!(s2.end_reason.as_deref(), Some("device_changed"));
    let s3 = Sidecar::read(&third).unwrap().unwrap();
    assert_eq!(s3.end_reason.as_deref(), Some("finished"));
    assert_eq!(s3.first_index, 130);
}

#[test]
fn seek_restarts_with_a_device_at_the_record_holding_the_time() {
    let stream = sim_stream(sim_config(4, 10_000, 9), 20_000, &[(12_000, 13_500)], 2);
    let path = scratch("seek.bdf");
    let mut w = RecordingWriter::new(
        &path,
        RecorderConfig::default(),
        Arc::new(RecorderStats::default()),
    )
    .unwrap();
    for item in &stream.items {
        w.handle(item).unwrap();
    }
    w.finish().unwrap();
    let mut src = ReplaySource::open(&path, &ReplayConfig::default()).unwrap();
    assert_eq!(src.start_s(), 0.0);
    assert_eq!(src.end_s(), 2.0);
    assert_eq!(src.duration_s(), 2.0);
    assert_eq!(src.position_s(), 0.0);
    // Into a record: the record's start.
    src.seek(0.5432);
    assert_eq!(src.position_s(), 0.5);
    let first = src.next_item().unwrap().unwrap();
    assert!(matches!(first, Acquired::Device(_)));
    let mut items = vec![first];
    while let Some(i) = src.next_item().unwrap() {
        items.push(i);
    }
    common::check_order(&items);
    let got = Summary::of(&items);
    let exp = Summary::of(&stream.items);
    assert_eq!(got.runs[0].0, 5_000);
    assert_eq!(got.runs[0].1[..], exp.runs[0].1[5_000 * 4..]);
    assert_eq!(got.gaps, exp.gaps);
    // Into the gap: the record after it; backwards works the same way.
    src.seek(1.25);
    assert_eq!(src.position_s(), 1.35);
    src.seek(0.0);
    assert!(matches!(src.next_item().unwrap(), Some(Acquired::Device(_))));
    match src.next_item().unwrap() {
        Some(Acquired::Stimulus(_)) | Some(Acquired::Samples(_)) => {}
        other => panic!("{other:?}"),
    }
    src.seek(99.0);
    assert_eq!(src.position_s(), 2.0);
    assert!(matches!(src.next_item().unwrap(), Some(Acquired::Device(_))));
    assert!(src.next_item().unwrap().is_none());
}

#[test]
fn two_stimulators_at_one_sample_and_stimuli_in_gaps_are_kept() {
    let path = scratch("coincident.bdf");
    let mut w = RecordingWriter::new(
        &path,
        RecorderConfig::default(),
        Arc::new(RecorderStats::default()),
    )
    .unwrap();
    let d = device(5, 1, 1000);
    let stim = |i: u64, s: Stimulator| {
        Acquired::Stimulus(StimulusEvent {
            sample_index: i,
            stimulator: s,
            intensity_tenths: 123,
            pulse_width_us: 200,
            pulses: 1,
        })
    };
    let items = vec![
        Acquired::Device(d.clone()),
        stim(40, Stimulator::RightTibial),
        stim(40, Stimulator::LeftMedian),
        block(0, 1, 150, |i, _| i as i32),
        stim(160, Stimulator::LeftEar),
        Acquired::Gap(Gap {
            cause: GapCause::Disconnected,
            from: 150,
            to: 420,
            frames: 0,
        }),
        block(420, 1, 30, |i, _| i as i32),
        stim(455, Stimulator::Other(77)),
    ];
    for item in &items {
        w.handle(item).unwrap();
    }
    w.finish().unwrap();
    let (got, replayed) = replay_all(&path, &ReplayConfig::default());
    let exp = Summary::of(&items);
    assert_eq!(got, exp);
    // The stimulus beyond the last sample comes at the very end.
    assert!(matches!(replayed.last(), Some(Acquired::Stimulus(s)) if s.sample_index == 455));
    // The trigger channel holds the lower code at the shared sample.
    let mut r = EdfReader::open(&path).unwrap();
    let trig = r.read_signal_digital(1).unwrap();
    assert_eq!(trig[40], 1);
}

#[test]
fn a_gap_too_long_to_pad_continues_in_a_numbered_file() {
    let stream = sim_stream(sim_config(2, 1_000, 4), 4_000, &[(1_234, 2_500)], 8);
    let path = scratch("long_gap.bdf");
    let second = ionm_record::numbered_path(&path, 2);
    let _ = std::fs::remove_file(&second);
    let config = RecorderConfig {
        max_padded_gap_s: 1.0,
        ..Default::default()
    };
    let mut w = RecordingWriter::new(&path, config, Arc::new(RecorderStats::default())).unwrap();
    for item in &stream.items {
        w.handle(item).unwrap();
    }
    let summary = w.finish().unwrap();
    assert_eq!(summary.files.len(), 2);
    let exp = Summary::of(&stream.items);
    let (a, _) = replay_all(&path, &ReplayConfig::default());
    let (b, _) = replay_all(&second, &ReplayConfig::default());
    assert_eq!(a.devices, exp.devices);
    assert_eq!(b.devices, exp.devices);
    assert_eq!(a.runs, exp.runs[..1]);
    assert_eq!(b.runs, exp.runs[1..]);
    // The first file ends with the gap; the second starts after it.
    assert_eq!(a.gaps, exp.gaps);
    assert!(b.gaps.is_empty());
    let mut stims = a.stimuli.clone();
    stims.extend(b.stimuli.iter().copied());
    stims.sort_by_key(|s| (s.sample_index, s.stimulator.code()));
    stims.dedup();
    assert_eq!(stims, exp.stimuli);
    assert_eq!(
        Sidecar::read(&path).unwrap().unwrap().end_reason.as_deref(),
        Some("long_gap")
    );
    assert_eq!(Sidecar::read(&second).unwrap().unwrap().first_index, 2_500);
}
