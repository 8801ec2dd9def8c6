//! Property test: any cut into blocks, any gaps (inside records, across them, at their boundaries, at the end),
//! any stimuli (coincident, in gaps, after the last sample) come back exactly from a recording.

mod common;

use common::{Summary, replay_all, scratch};
use ionm_core::{Acquired, ChannelInfo, DeviceInfo, Gap, GapCause, SampleBlock, Stimulator, StimulusEvent};
use ionm_record::{RecorderConfig, RecorderStats, RecordingWriter, ReplayConfig};
use proptest::prelude::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug, Clone)]
struct Plan {
    nch: usize,
    rate: u32,
    first: u64,
    /// (samples delivered, block cuts as fractions, samples missing after).
    segments: Vec<(u64, Vec<u8>, u64)>,
    stimuli: Vec<(u64, u8, u16, u16, u8)>,
    seed: u64,
    discontinuous: bool,
}

fn plan() -> impl Strategy<Value = Plan> {
    (
        1usize..=3,
        prop_oneof![Just(1000u32), Just(2000), Just(999)],
        0u64..3000,
        prop::collection::vec(
            (
                1u64..700,
                prop::collection::vec(any::<u8>(), 0..6),
                prop_oneof![Just(0u64), 1u64..1500],
            ),
            1..6,
        ),
        prop::collection::vec(
            (any::<u64>(), 1u8..=255, any::<u16>(), any::<u16>(), 1u8..9),
            0..30,
        ),
        any::<u64>(),
        any::<bool>(),
    )
        .prop_map(
            |(nch, rate, first, segments, stimuli, seed, discontinuous)| Plan {
                nch,
                rate,
                first,
                segments,
                stimuli,
                seed,
                discontinuous,
            },
        )
}

fn build(p: &Plan) -> Vec<Acquired> {
    let device = Arc::new(DeviceInfo {
        protocol_version: 3,
        sample_rate_hz: p.rate,
        channels: (0..p.nch)
            .map(|c| ChannelInfo {
                label: format!("C{c}"),
                gain_nv_per_lsb: 7 + 1000 * c as u32,
            })
            .collect(),
        adc_min: -(1 << 23),
        adc_max: (1 << 23) - 1,
        firmware_version: "prop fw".into(),
        session_id: 99,
    });
    let mut rng = ionm_core::Rng::new(p.seed);
    let span: u64 = p.segments.iter().map(|s| s.0 + s.2).sum();
    // Stimuli: distinct (index, stimulator), from the first sample to a little after the end.
    let mut stims: Vec<StimulusEvent> = Vec::new();
    for &(r, code, int, pw, pulses) in &p.stimuli {
        let s = StimulusEvent {
            sample_index: p.first + r % (span + 50),
            stimulator: Stimulator::from_code(code),
            intensity_tenths: int % 10_000,
            pulse_width_us: pw,
            pulses,
        };
        if !stims
            .iter()
            .any(|t| t.sample_index == s.sample_index && t.stimulator == s.stimulator)
        {
            stims.push(s);
        }
    }
    stims.sort_by_key(|s| s.sample_index);
    let mut items = vec![Acquired::Device(device)];
    let mut at = p.first;
    let mut sent = 0;
    let mut gap: Option<Gap> = None;
    for (len, cuts, missing) in &p.segments {
        let mut cuts: Vec<u64> = cuts
            .iter()
            .map(|&c| u64::from(c) * len / 256)
            .filter(|&c| c > 0)
            .collect();
        cuts.push(*len);
        cuts.sort();
        cuts.dedup();
        let mut a = 0;
        for &b in &cuts {
            let n = (b - a) as usize;
            let first = at + a;
            while sent < stims.len() && stims[sent].sample_index < first + n as u64 {
                items.push(Acquired::Stimulus(stims[sent]));
                sent += 1;
            }
            if let Some(g) = gap.take() {
                items.push(Acquired::Gap(g));
            }
            let max = ionm_core::MAX_BLOCK_VALUES / p.nch;
            for chunk_start in (0..n).step_by(max) {
                let m = (n - chunk_start).min(max);
                let v: Vec<i32> = (0..m * p.nch)
                    .map(|_| match rng.next_u64() % 16 {
                        0 => -(1 << 23),
                        1 => (1 << 23) - 1,
                        _ => (rng.next_u64() % (1 << 24)) as i32 - (1 << 23),
                    })
                    .collect();
                items.push(Acquired::Samples(
                    SampleBlock::from_interleaved(first + chunk_start as u64, p.nch, &v).unwrap(),
                ));
            }
            a = b;
        }
        at += len;
        if *missing > 0 {
            gap = Some(Gap {
                cause: GapCause::LostFrames,
                from: at,
                to: at + missing,
                frames: (missing % 7) as u32,
            });
            at += missing;
        }
    }
    if let Some(g) = gap.take() {
        items.push(Acquired::Gap(g));
    }
    items.extend(stims[sent..].iter().map(|s| Acquired::Stimulus(*s)));
    items
}

static CASE: AtomicUsize = AtomicUsize::new(0);

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(64), ..ProptestConfig::default() })]

    #[test]
    fn any_stream_structure_round_trips(p in plan()) {
        let items = build(&p);
        let path = scratch(&format!("prop_{}.bdf", CASE.fetch_add(1, Ordering::Relaxed)));
        let config = RecorderConfig { discontinuous: p.discontinuous, ..Default::default() };
        let mut w = RecordingWriter::new(&path, config, Arc::new(RecorderStats::default())).unwrap();
        for item in &items {
            w.handle(item).unwrap();
        }
        w.finish().unwrap();
        let (got, _) = replay_all(&path, &ReplayConfig::default());
        let exp = Summary::of(&items);
        prop_assert_eq!(&got.devices, &exp.devices);
        prop_assert_eq!(got.runs.len(), exp.runs.len());
        for (g, e) in got.runs.iter().zip(&exp.runs) {
            prop_assert_eq!(g.0, e.0);
            prop_assert!(g.1 == e.1, "samples of the run at {} differ", e.0);
        }
        prop_assert_eq!(&got.gaps, &exp.gaps);
        prop_assert_eq!(&got.stimuli, &exp.stimuli);
        std::fs::remove_file(&path).unwrap();
        std::fs::remove_file(ionm_record::sidecar_path(&path)).unwrap();
    }
}
