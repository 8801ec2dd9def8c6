//! Property tests: chunking invariance, averaging identities, rejection of saturated sweeps.

mod common;

use common::*;
use ionm_core::{Rng, SampleBlock, Stimulator};
use ionm_dsp::average::{AverageMode, AverageSpec, Averager};
use ionm_dsp::design::{Edge, FilterSpec, design};
use ionm_dsp::filter::{FftWork, FirKernel, StreamingFir};
use ionm_dsp::{Engine, Protocol, RejectReason, Verdict};
use proptest::prelude::*;
use realfft::RealFftPlanner;
use std::sync::Arc;

fn kernel() -> Arc<FirKernel> {
    let spec = FilterSpec {
        highpass: Some(Edge {
            cutoff_hz: 100.0,
            transition_hz: 100.0,
        }),
        lowpass: Some(Edge {
            cutoff_hz: 1000.0,
            transition_hz: 400.0,
        }),
        attenuation_db: 50.0,
        notch: None,
    };
    let d = design(&spec, 10_000.0).unwrap();
    // A short FFT (L = 730) so that a few thousand samples span several blocks.
    Arc::new(FirKernel::new(&d, Some(1024), &mut RealFftPlanner::new()).unwrap())
}

fn signal(len: usize, seed: u64) -> Vec<f32> {
    let mut r = Rng::new(seed);
    (0..len)
        .map(|i| (r.normal() * 20.0 + (i as f64 * 0.01).sin() * 50.0) as f32)
        .collect()
}

fn filter(k: &Arc<FirKernel>, x: &[f32], chunks: &[usize], flush_every: Option<usize>) -> Vec<f32> {
    let mut f = StreamingFir::new(k.clone());
    let mut work = FftWork::new();
    let mut y = Vec::new();
    let mut rest = x;
    let mut i = 0;
    while !rest.is_empty() {
        let n = chunks[i % chunks.len()].min(rest.len());
        f.push(&rest[..n], &mut work, &mut |o| y.extend_from_slice(o));
        rest = &rest[n..];
        i += 1;
        if flush_every.is_some_and(|e| i % e == 0) {
            f.flush(&mut work, &mut |o| y.extend_from_slice(o));
        }
    }
    f.finish(&mut work, &mut |o| y.extend_from_slice(o));
    y
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(40)))]

    /// Without flushes the FFT blocks are aligned to the stream start whatever the chunking: bit-identical.
    #[test]
    fn filtering_by_blocks_of_any_size_equals_filtering_at_once(
        len in 1usize..4000,
        chunks in prop::collection::vec(1usize..900, 1..20),
        seed in any::<u64>(),
    ) {
        let k = kernel();
        let x = signal(len, seed);
        let once = filter(&k, &x, &[len], None);
        let blocks = filter(&k, &x, &chunks, None);
        prop_assert_eq!(once.len(), len);
        prop_assert_eq!(once, blocks);
    }

    /// Flushes (partial blocks) move block boundaries: outputs then agree to f32 FFT rounding. Bound:
    /// 1e-5 of the largest output (rounding is ≈ 1e-7 × log2(1024) relative).
    #[test]
    fn flushing_changes_output_only_by_rounding(
        len in 1usize..4000,
        chunks in prop::collection::vec(1usize..900, 1..20),
        flush_every in 1usize..5,
        seed in any::<u64>(),
    ) {
        let k = kernel();
        let x = signal(len, seed);
        let once = filter(&k, &x, &[len], None);
        let flushed = filter(&k, &x, &chunks, Some(flush_every));
        prop_assert_eq!(once.len(), flushed.len());
        let scale = once.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
        for (a, b) in once.iter().zip(&flushed) {
            prop_assert!((a - b).abs() <= 1e-5 * scale, "{} vs {}", a, b);
        }
    }

    /// The same through the engine: sample blocks of any size (≤ the block capacity), stimuli included,
    /// give bit-identical filtered streams, sweeps and averages.
    #[test]
    fn engine_output_does_not_depend_on_block_sizes(
        sizes in prop::collection::vec(1usize..1024, 1..10),
        seed in any::<u64>(),
    ) {
        let text = "[[channel]]\nlabel = \"A\"\nmodality = \"ssep-upper\"\nstimulators = [\"left_median\"]\n\
            window_ms = [-5, 20]\nhighpass_hz = 100\nhighpass_transition_hz = 100\nlowpass_transition_hz = 400\n\
            notch = false\nsweeps = 4\n\
            [[channel]]\nlabel = \"B\"\nmodality = \"ssep-upper\"\nstimulators = [\"left_median\"]\nwindow_ms = [-5, 20]\nnotch = false\nhighpass_hz = 300\nhighpass_transition_hz = 200\nsweeps = 3\n";
        let protocol = Protocol::from_toml_str(text).unwrap();
        let dev = device(10_000, &["A", "B"], 100);
        let mut r = Rng::new(seed);
        let n = 8000;
        let raw: Vec<i32> = (0..2 * n).map(|_| (r.normal() * 300.0) as i32 + 1000).collect();
        let stimuli: Vec<u64> = (0..20).map(|k| 300 + k * 377).collect();
        let run = |sizes: &[usize]| {
            let mut e = Engine::new(&protocol, &dev).unwrap();
            let mut sink = Collect { keep_filtered: true, ..Collect::default() };
            let (mut at, mut i, mut next) = (0usize, 0usize, 0usize);
            while at < n {
                let m = sizes[i % sizes.len()].min(n - at);
                while next < stimuli.len() && stimuli[next] < (at + m) as u64 {
                    e.push_stimulus(&stim(stimuli[next], Stimulator::LeftMedian), &mut sink);
                    next += 1;
                }
                let b = SampleBlock::from_interleaved(at as u64, 2, &raw[2 * at..2 * (at + m)]).unwrap();
                e.push_block(&b, &mut sink).unwrap();
                at += m;
                i += 1;
            }
            e.finish(&mut sink);
            sink
        };
        let mut once = run(&[1024]);
        let mut any = run(&sizes);
        prop_assert_eq!(&once.filtered, &any.filtered);
        // Per trace, sweeps come in stimulus order; how sweeps of different traces interleave depends on
        // when the engine extracts them (it releases samples to the filters in batches), so compare per trace.
        once.sweeps.sort_by_key(|s| s.0);
        any.sweeps.sort_by_key(|s| s.0);
        prop_assert_eq!(&once.sweeps, &any.sweeps);
        prop_assert_eq!(once.averages.len(), any.averages.len());
        once.averages.sort_by_key(|a| a.trace);
        any.averages.sort_by_key(|a| a.trace);
        for (a, b) in once.averages.iter().zip(&any.averages) {
            prop_assert_eq!(&a.mean, &b.mean);
        }
    }

    /// f32 sweeps summed in f64 and divided by N give back the sweep exactly (N·x is exact in f64).
    #[test]
    fn averages_of_identical_sweeps_equal_the_sweep(
        sweep in prop::collection::vec(-1e4f32..1e4, 3..300),
        n in 1u32..60,
        moving in any::<bool>(),
        every in 1u32..10,
    ) {
        let mode = if moving { AverageMode::Moving { every: every.min(n) } } else { AverageMode::Block };
        let w = sweep.len();
        let mut a = Averager::new(AverageSpec { sweeps: n, mode }, w, (0, w));
        let mut ready = 0;
        for _ in 0..(2 * n + every) {
            if a.add(&sweep) {
                ready += 1;
                for (m, s) in a.mean().iter().zip(&sweep) {
                    prop_assert_eq!(*m, f64::from(*s));
                }
                if let Some(pm) = a.plus_minus() {
                    prop_assert!(pm.iter().all(|v| *v == 0.0));
                }
            }
        }
        prop_assert!(ready >= 1);
    }

    /// No sweep with a rail-touching raw sample in its window (outside the blanked samples) is accepted.
    #[test]
    fn rejection_never_lets_a_saturated_sweep_through(
        rails in prop::collection::vec((0usize..6000, any::<bool>()), 0..12),
        jitter in prop::collection::vec(0u64..200, 15),
        seed in any::<u64>(),
    ) {
        let text = "[[channel]]\nlabel = \"A\"\nmodality = \"ssep-upper\"\nstimulators = [\"left_median\"]\n\
            window_ms = [-2, 10]\nhighpass_hz = 0\nlowpass_hz = 0\nnotch = false\nreject_flat_uv = 0\n\
            reject_peak_to_peak_uv = 0\nsweeps = 2\n";
        let protocol = Protocol::from_toml_str(text).unwrap();
        let mut e = Engine::new(&protocol, &device(10_000, &["A"], 100)).unwrap();
        let mut r = Rng::new(seed);
        let mut raw: Vec<i32> = (0..6000).map(|_| (r.normal() * 100.0) as i32).collect();
        for (p, hi) in &rails {
            raw[*p] = if *hi { ADC_MAX } else { ADC_MIN };
        }
        let stimuli: Vec<u64> = jitter.iter().enumerate().map(|(k, j)| 100 + k as u64 * 380 + j).collect();
        let mut sink = Collect::default();
        for s in &stimuli {
            e.push_stimulus(&stim(*s, Stimulator::LeftMedian), &mut sink);
        }
        for b in blocks(0, &raw, 250) {
            e.push_block(&b, &mut sink).unwrap();
        }
        e.finish(&mut sink);
        // Blanked: −0.5…+2 ms = samples s−5 … s+20.
        let blanked = |p: u64| stimuli.iter().any(|s| p + 5 >= *s && p <= s + 20);
        prop_assert!(!sink.sweeps.is_empty());
        for (_, _, first, verdict, data) in &sink.sweeps {
            let saturated = (*first..*first + data.len() as u64)
                .any(|p| !blanked(p) && (raw[p as usize] == ADC_MAX || raw[p as usize] == ADC_MIN));
            if saturated {
                prop_assert_eq!(*verdict, Verdict::Rejected(RejectReason::Saturated));
            } else {
                prop_assert_eq!(*verdict, Verdict::Accepted);
            }
        }
    }
}
