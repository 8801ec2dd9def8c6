//! Edge cases of the recorder: wall-time flushes, bad configuration, nothing to record, blocks with channels
//! that were not decoded.

mod common;

use common::{replay_all, scratch, sim_config, sim_stream};
use ionm_core::{Acquired, SampleBlock};
use ionm_edf::{EdfReader, PatientId};
use ionm_record::{
    Recorder, RecorderConfig, RecorderError, RecorderStats, RecordingWriter, ReplayConfig, ReplaySource,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn wall_time_flushes_what_stream_time_has_not() {
    // 0.35 s of stream: three complete records, less than the 1 s of stream that triggers a flush.
    let s = sim_stream(sim_config(2, 10_000, 1), 3_500, &[], 1);
    let path = scratch("wall_flush.bdf");
    let stats = Arc::new(RecorderStats::default());
    let config = RecorderConfig {
        flush_interval: Duration::from_secs(1),
        ..RecorderConfig::default()
    };
    let mut w = RecordingWriter::new(&path, config, stats.clone()).unwrap();
    for item in &s.items {
        w.handle(item).unwrap();
    }
    let declared = || EdfReader::open(&path).unwrap().layout().declared_records;
    assert_eq!(declared(), 0, "only the header is flushed so far");
    let now = Instant::now();
    w.poll(now).unwrap();
    assert_eq!(declared(), 0, "the interval has not passed");
    assert!(w.time_to_poll(now) <= Duration::from_secs(1));
    w.poll(now + Duration::from_secs(2)).unwrap();
    assert_eq!(declared(), 3);
    assert_eq!(stats.snapshot().flushes, 1);
    // Nothing new: no further flush.
    w.poll(now + Duration::from_secs(4)).unwrap();
    assert_eq!(stats.snapshot().flushes, 1);
    w.finish().unwrap();
    assert_eq!(declared(), 4, "the partial fourth record is padded at the end");
}

#[test]
fn bad_configuration_is_refused_up_front() {
    let path = scratch("bad_config.bdf");
    let config = RecorderConfig {
        patient: PatientId {
            name: "Zoë".into(),
            ..Default::default()
        },
        ..Default::default()
    };
    assert!(matches!(
        Recorder::create(&path, config),
        Err(RecorderError::Config(_))
    ));
    let config = RecorderConfig {
        queue_capacity: 0,
        ..Default::default()
    };
    assert!(matches!(
        Recorder::create(&path, config),
        Err(RecorderError::Config(_))
    ));
    let missing_dir = scratch("no/such/dir.bdf");
    assert!(matches!(
        Recorder::create(&missing_dir, RecorderConfig::default()),
        Err(RecorderError::Io { .. })
    ));
    // A record duration that is not a whole number of samples fails when the device is known.
    let config = RecorderConfig {
        record_duration_s: Some(0.00015),
        ..Default::default()
    };
    let mut rec = Recorder::create(&path, config).unwrap();
    let s = sim_stream(sim_config(2, 10_000, 1), 100, &[], 1);
    for item in &s.items {
        rec.try_send(item);
    }
    let stats = rec.stats().clone();
    assert!(matches!(rec.finish(), Err(RecorderError::Config(_))));
    assert!(stats.snapshot().failed);
}

#[test]
fn a_device_without_samples_gives_a_header_only_file_and_no_device_no_file() {
    let s = sim_stream(sim_config(3, 10_000, 1), 10, &[], 1);
    let path = scratch("header_only.bdf");
    let rec = {
        let mut rec = Recorder::create(&path, RecorderConfig::default()).unwrap();
        assert!(rec.try_send(&s.items[0]));
        rec
    };
    rec.finish().unwrap();
    let r = EdfReader::open(&path).unwrap();
    assert_eq!(r.layout().declared_records, 0);
    let mut src = ReplaySource::open(&path, &ReplayConfig::default()).unwrap();
    assert!(matches!(src.next_item().unwrap(), Some(Acquired::Device(d)) if *d == *s.device));
    assert!(src.next_item().unwrap().is_none());

    let path = scratch("nothing.bdf");
    let summary = Recorder::create(&path, RecorderConfig::default())
        .unwrap()
        .finish()
        .unwrap();
    assert!(summary.files.is_empty());
    assert!(!path.exists());
}

/// A block with channels that were not decoded is not recorded: its instants become a gap in the recording,
/// whether it reaches the writer directly or through the recorder thread's packing.
#[test]
fn recorders_refuse_blocks_with_channels_not_decoded() {
    let s = sim_stream(sim_config(3, 10_000, 1), 3_000, &[], 1);
    // Blocks that overlap 1000..2000 lose channel 1.
    let items: Vec<Acquired> = s
        .items
        .iter()
        .map(|item| match item {
            Acquired::Samples(b) if b.first_index() < 2_000 && b.end_index() > 1_000 => {
                let mut p = SampleBlock::empty();
                let nch = b.n_channels();
                // Only channels 0 and 2 are stored, in channel order.
                let kept = b.values().iter().enumerate().filter(|(k, _)| k % nch != 1);
                p.fill_decoded(b.first_index(), nch, b.n_samples(), 0b101, |dst| {
                    for (d, (_, v)) in dst.iter_mut().zip(kept) {
                        *d = *v;
                    }
                })
                .unwrap();
                Acquired::Samples(p)
            }
            other => other.clone(),
        })
        .collect();
    let refused: Vec<(u64, u64)> = items
        .iter()
        .filter_map(|i| match i {
            Acquired::Samples(b) if !b.all_decoded() => Some((b.first_index(), b.end_index())),
            _ => None,
        })
        .collect();
    assert!(refused.len() >= 2);
    let (from, to) = (refused[0].0, refused[refused.len() - 1].1);

    let direct = scratch("decode_only_writer.bdf");
    let mut w =
        RecordingWriter::new(&direct, Default::default(), Arc::new(RecorderStats::default())).unwrap();
    for item in &items {
        w.handle(item).unwrap();
    }
    w.finish().unwrap();
    let threaded = scratch("decode_only_recorder.bdf");
    let mut rec = ionm_record::Recorder::create(&threaded, Default::default()).unwrap();
    rec.set_blocking(true);
    for item in &items {
        assert!(rec.try_send(item));
    }
    rec.finish().unwrap();

    for path in [direct, threaded] {
        let (got, _) = replay_all(&path, &ReplayConfig::default());
        let gaps: Vec<(u64, u64)> = got.gaps.iter().map(|g| (g.from, g.to)).collect();
        assert_eq!(gaps, vec![(from, to)], "{}", path.display());
        // Every sample outside the gap is recorded exactly.
        let want: Vec<i32> = s
            .items
            .iter()
            .filter_map(|i| match i {
                Acquired::Samples(b) if b.end_index() <= from || b.first_index() >= to => Some(b.values()),
                _ => None,
            })
            .flatten()
            .copied()
            .collect();
        let have: Vec<i32> = got.runs.iter().flat_map(|(_, v)| v.iter().copied()).collect();
        assert_eq!(have, want, "{}", path.display());
    }
}
