//! The feeding side: packing of small blocks, and what a full queue does to the recording.

mod common;

use common::{Summary, replay_all, scratch, sim_config, sim_stream};
use ionm_core::{Acquired, GapCause, SampleBlock};
use ionm_record::{Recorder, RecorderConfig, ReplayConfig};

#[test]
fn small_blocks_are_packed_before_they_are_queued() {
    let s = sim_stream(sim_config(8, 10_000, 1), 10_000, &[], 1);
    let path = scratch("packed.bdf");
    let mut rec = Recorder::create(&path, RecorderConfig::default()).unwrap();
    let mut blocks = 0;
    for item in &s.items {
        match item {
            // Re-cut every block into one-instant blocks, as a slow device might send them.
            Acquired::Samples(b) => {
                for k in 0..b.n_samples() {
                    let one =
                        SampleBlock::from_interleaved(b.first_index() + k as u64, 8, b.instant(k)).unwrap();
                    assert!(rec.try_send(&Acquired::Samples(one)));
                    blocks += 1;
                }
            }
            other => assert!(rec.try_send(other)),
        }
    }
    let stats = rec.stats().clone();
    rec.finish().unwrap();
    let snap = stats.snapshot();
    assert_eq!(blocks, 10_000);
    // 8 channels: at most 256 instants per packed block; stimuli cut the packing short.
    let stimuli = Summary::of(&s.items).stimuli.len() as u64;
    assert!(snap.items <= 1 + 2 * stimuli + 10_000 / 256 + 1, "{snap:?}");
    assert_eq!(snap.samples, 10_000);
    assert_eq!(snap.queued, 0);
    let (got, _) = replay_all(&path, &ReplayConfig::default());
    assert_eq!(got.runs, Summary::of(&s.items).runs);
}

#[test]
fn a_full_queue_drops_and_the_file_shows_recorder_overrun_gaps() {
    let s = sim_stream(sim_config(8, 10_000, 2), 40_000, &[], 3);
    let path = scratch("overrun.bdf");
    let config = RecorderConfig {
        queue_capacity: 1,
        ..Default::default()
    };
    let mut rec = Recorder::create(&path, config).unwrap();
    // The first item must arrive or there is no device to record.
    assert!(rec.try_send(&s.items[0]));
    while rec.stats().snapshot().items == 0 {
        std::thread::yield_now();
    }
    for item in &s.items[1..] {
        rec.try_send(item);
    }
    let stats = rec.stats().clone();
    rec.finish().unwrap();
    let snap = stats.snapshot();
    let exp = Summary::of(&s.items);
    let (got, _) = replay_all(&path, &ReplayConfig::default());
    // Whatever was dropped, what is in the file is exactly the original at the same indices…
    let original: Vec<i32> = exp.runs[0].1.clone();
    for (first, values) in &got.runs {
        let a = *first as usize * 8;
        assert!(values[..] == original[a..a + values.len()], "run at {first}");
    }
    // …every sample is either recorded or counted as dropped…
    let recorded = got.samples() as u64 / 8;
    assert!(
        recorded + snap.dropped_samples >= 40_000 - 4_000,
        "{recorded} + {snap:?}"
    );
    assert!(recorded <= 40_000);
    // …and the holes between recorded runs are gaps caused by the recorder's overrun.
    assert_eq!(got.gaps.len() + 1, got.runs.len().max(1));
    assert!(got.gaps.iter().all(|g| g.cause == GapCause::Overrun));
    tracing::info!(
        dropped = snap.dropped_items,
        gaps = got.gaps.len(),
        "overrun test"
    );
    let gap_samples: u64 = got.gaps.iter().map(|g| g.samples()).sum();
    assert!(gap_samples <= snap.dropped_samples);
}
