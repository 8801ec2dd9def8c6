//! Behaviour of the streaming engine: gaps, late stimuli, routing, latency, setup errors, robust peaks.

mod common;

use common::*;
use ionm_core::{Gap, GapCause, Rng, Stimulator};
use ionm_dsp::measure::{Measurement, Reference, Timebase, measure};
use ionm_dsp::{DropReason, Engine, Protocol, SetupError, Verdict};

const SSEP: &str =
    "[[channel]]\nlabel = \"A\"\nmodality = \"ssep-upper\"\nstimulators = [\"left_median\"]\nsweeps = 5\n";

fn noise(n: usize, seed: u64) -> Vec<i32> {
    let mut r = Rng::new(seed);
    (0..n).map(|_| (r.normal() * 400.0) as i32 + 7000).collect()
}

#[test]
fn a_gap_restarts_the_filter_and_drops_the_sweeps_it_spoils() {
    let protocol = Protocol::from_toml_str(SSEP).unwrap();
    let dev = device(10_000, &["A"], 50);
    let raw = noise(40_000, 1);
    let (gap_from, gap_to) = (15_000u64, 16_000u64);
    let mut e = Engine::new(&protocol, &dev).unwrap();
    let delay = (e.trace_info(0).unwrap().delay_ms * 10.0).round() as u64;
    let stimuli: Vec<u64> = (0..17).map(|k| 3_000 + k * 2_127).collect();
    let mut sink = Collect {
        keep_filtered: true,
        ..Collect::default()
    };
    for s in &stimuli {
        e.push_stimulus(&stim(*s, Stimulator::LeftMedian), &mut sink);
    }
    for b in blocks(0, &raw[..gap_from as usize], 200) {
        e.push_block(&b, &mut sink).unwrap();
    }
    e.push_gap(
        &Gap {
            cause: GapCause::LostFrames,
            from: gap_from,
            to: gap_to,
            frames: 5,
        },
        &mut sink,
    );
    for b in blocks(gap_to, &raw[gap_to as usize..], 200) {
        e.push_block(&b, &mut sink).unwrap();
    }
    e.finish(&mut sink);

    // A sweep [s−100, s+500) survives only if it lies D inside a segment on both sides.
    let ok = |s: u64| {
        let (ws, we) = (s - 100, s + 500);
        (ws >= delay && we + delay <= gap_from) || (ws >= gap_to + delay && we + delay <= 40_000)
    };
    let kept: Vec<u64> = sink.sweeps.iter().map(|s| s.1).collect();
    let expected: Vec<u64> = stimuli.iter().copied().filter(|s| ok(*s)).collect();
    assert_eq!(kept, expected);
    assert!(sink.dropped.iter().all(|d| d.2 == DropReason::Gap));
    assert_eq!(sink.dropped.len() + kept.len(), stimuli.len());
    assert!(!sink.dropped.is_empty());

    // After the gap the filter starts afresh: the output equals a fresh engine fed only the second segment.
    let mut fresh = Engine::new(&protocol, &dev).unwrap();
    let mut sink2 = Collect {
        keep_filtered: true,
        ..Collect::default()
    };
    for s in &stimuli {
        fresh.push_stimulus(&stim(*s, Stimulator::LeftMedian), &mut sink2);
    }
    for b in blocks(gap_to, &raw[gap_to as usize..], 200) {
        fresh.push_block(&b, &mut sink2).unwrap();
    }
    fresh.finish(&mut sink2);
    let after: Vec<_> = sink.filtered[&0]
        .iter()
        .filter(|(i, _)| *i >= gap_to)
        .copied()
        .collect();
    assert!(
        after == sink2.filtered[&0],
        "output after the gap differs from a fresh start"
    );
    // Nothing is output for the missing samples.
    assert!(
        sink.filtered[&0]
            .iter()
            .all(|(i, _)| *i < gap_from || *i >= gap_to)
    );
}

#[test]
fn a_block_that_skips_ahead_is_an_implicit_gap() {
    let protocol = Protocol::from_toml_str(SSEP).unwrap();
    let mut e = Engine::new(&protocol, &device(10_000, &["A"], 50)).unwrap();
    let raw = noise(20_000, 2);
    let mut sink = Collect::default();
    for b in blocks(0, &raw[..8_000], 100) {
        e.push_block(&b, &mut sink).unwrap();
    }
    for b in blocks(9_000, &raw[9_000..], 100) {
        e.push_block(&b, &mut sink).unwrap();
    }
    assert_eq!(e.stats().implicit_gaps, 1);
    // A duplicate block is refused and does not disturb the stream.
    let dup = blocks(9_000, &raw[9_000..9_100], 100);
    assert!(e.push_block(&dup[0], &mut sink).is_err());
}

#[test]
fn stimuli_later_than_the_hold_are_dropped_as_late() {
    let protocol = Protocol::from_toml_str(SSEP).unwrap();
    let mut e = Engine::new(&protocol, &device(10_000, &["A"], 50)).unwrap();
    let raw = noise(30_000, 3);
    let mut sink = Collect::default();
    for b in blocks(0, &raw[..20_000], 100) {
        e.push_block(&b, &mut sink).unwrap();
    }
    // Data is up to 20 000; the hold is 20 ms + 0.5 ms = 205 samples. A stimulus at 19 900 is in time,
    // one at 10 000 is not.
    assert_eq!(e.hold_samples(), 205);
    e.push_stimulus(&stim(19_900, Stimulator::LeftMedian), &mut sink);
    e.push_stimulus(&stim(10_000, Stimulator::LeftMedian), &mut sink);
    for b in blocks(20_000, &raw[20_000..], 100) {
        e.push_block(&b, &mut sink).unwrap();
    }
    e.finish(&mut sink);
    assert_eq!(e.stats().late_blanks, 1);
    assert_eq!(sink.sweeps.iter().map(|s| s.1).collect::<Vec<_>>(), vec![19_900]);
    assert_eq!(sink.dropped, vec![(0, 10_000, DropReason::Late)]);
}

#[test]
fn interleaved_stimulators_go_to_their_channels_and_flush_gives_low_latency() {
    let protocol = Protocol::preset("ssep-upper").unwrap();
    let labels = ["Erb L", "Erb R", "Cv5-Fz", "CP4-Fz", "CP3-Fz"];
    let mut e = Engine::new(&protocol, &device(10_000, &labels, 50)).unwrap();
    // Cv5-Fz has two stimulators: two traces.
    assert_eq!(e.trace_count(), 6);
    let mut sink = Collect::default();
    let mut r = Rng::new(4);
    let n = 30_000usize;
    let raw: Vec<i32> = (0..n * 5).map(|_| (r.normal() * 300.0) as i32).collect();
    let stimuli: Vec<(u64, Stimulator)> = (0..12)
        .map(|k| {
            (
                4_000 + k * 1_064,
                if k % 2 == 0 {
                    Stimulator::LeftMedian
                } else {
                    Stimulator::RightMedian
                },
            )
        })
        .collect();
    for (s, st) in &stimuli {
        e.push_stimulus(&stim(*s, *st), &mut sink);
    }
    let delay = (e.trace_info(4).unwrap().delay_ms * 10.0).round() as u64;
    let hold = e.hold_samples();
    let first = stimuli[0].0;
    let mut at = 0;
    let mut emitted_at = None;
    while at < n {
        let m = 400.min(n - at);
        let b = ionm_core::SampleBlock::from_interleaved(at as u64, 5, &raw[5 * at..5 * (at + m)]).unwrap();
        e.push_block(&b, &mut sink).unwrap();
        at += m;
        e.flush_ready(&mut sink);
        if emitted_at.is_none() && sink.sweeps.iter().any(|s| s.0 == 4 && s.1 == first) {
            emitted_at = Some(at as u64);
        }
    }
    e.finish(&mut sink);
    // With flush_ready the first cortical sweep is out within one block of window end + delay + hold.
    let needed = first + 500 + delay + hold;
    let got = emitted_at.unwrap();
    assert!(
        got >= needed && got < needed + 400,
        "emitted at {got}, data complete at {needed}"
    );
    for t in 0..e.trace_count() {
        let stimulator = e.trace_info(t).unwrap().stimulator;
        let mine: Vec<u64> = sink.sweeps.iter().filter(|s| s.0 == t).map(|s| s.1).collect();
        let expected: Vec<u64> = stimuli
            .iter()
            .filter(|s| s.1 == stimulator)
            .map(|s| s.0)
            .collect();
        assert_eq!(mine, expected, "trace {t}");
    }
    assert!(sink.sweeps.iter().all(|s| s.3 == Verdict::Accepted));
}

#[test]
fn a_new_session_restarts_the_stream() {
    let protocol = Protocol::from_toml_str(SSEP).unwrap();
    let mut dev = device(10_000, &["A"], 50);
    let mut e = Engine::new(&protocol, &dev).unwrap();
    let raw = noise(20_000, 5);
    let mut sink = Collect::default();
    e.push_stimulus(&stim(19_000, Stimulator::LeftMedian), &mut sink);
    for b in blocks(0, &raw[..19_500], 100) {
        e.push_block(&b, &mut sink).unwrap();
    }
    dev.session_id = 2;
    e.set_device(&dev, &mut sink).unwrap();
    // The pending sweep of the old session is dropped; the new session starts at 0 again.
    assert_eq!(sink.dropped, vec![(0, 19_000, DropReason::Gap)]);
    for b in blocks(0, &raw, 100) {
        e.push_block(&b, &mut sink).unwrap();
    }
    assert_eq!(e.stats().duplicate_samples, 0);
    dev.channels.push(dev.channels[0].clone());
    assert!(e.set_device(&dev, &mut sink).is_err());
}

#[test]
fn the_engine_can_move_to_a_dsp_thread() {
    fn is_send<T: Send>() {}
    is_send::<Engine>();
}

#[test]
fn setup_errors_name_the_channel() {
    let protocol = Protocol::from_toml_str(SSEP).unwrap();
    let err = Engine::new(&protocol, &device(10_000, &["B", "C"], 50)).unwrap_err();
    assert!(matches!(err, SetupError::UnknownChannel { .. }));
    assert!(
        err.to_string().contains("`A`") && err.to_string().contains("`B`"),
        "{err}"
    );
    // A 1000 Hz low-pass with its transition does not fit under the Nyquist frequency of 2 kHz sampling.
    let err = Engine::new(&protocol, &device(2_000, &["A"], 50)).unwrap_err();
    assert!(matches!(err, SetupError::Filter { line: 1, .. }), "{err}");
}

/// Noise comparable to the response: tracking against a reference keeps N20 where it is.
#[test]
fn tracking_keeps_peak_picking_stable_in_noise() {
    let fs = 10_000.0;
    let tb = Timebase {
        start_offset: -100,
        sample_rate_hz: fs,
    };
    let protocol = Protocol::preset("ssep-upper").unwrap();
    let spec = protocol.channels[3].measure.clone();
    let t = |j: usize| (j as f64 - 100.0) / 10.0;
    let response = |shift: f64| -> Vec<f64> {
        (0..600)
            .map(|j| {
                let x = t(j) - shift;
                -2.0 * (-0.5 * ((x - 19.6) / 1.1f64).powi(2)).exp()
                    + 1.6 * (-0.5 * ((x - 24.8) / 1.6f64).powi(2)).exp()
            })
            .collect()
    };
    let clean = response(0.0);
    let mut m = Measurement::for_spec(&spec);
    measure(&clean, tb, &spec, None, &mut m);
    let reference = Reference::new(&clean, tb, &m);
    let mut r = Rng::new(11);
    let (mut bad_free, mut bad_tracked, trials) = (0, 0, 300);
    for k in 0..trials {
        // The response shifted by up to ±1 ms, plus smooth noise (RMS ≈ 1 µV ≈ half the N20) and a drift.
        let shift = (k % 5) as f64 * 0.5 - 1.0;
        let mut white: Vec<f64> = (0..620).map(|_| r.normal()).collect();
        for _ in 0..3 {
            white = white.windows(7).map(|w| w.iter().sum::<f64>() / 7.0).collect();
        }
        let rms = (white.iter().map(|v| v * v).sum::<f64>() / white.len() as f64).sqrt();
        let slope = r.range(-0.08, 0.08);
        let y: Vec<f64> = response(shift)
            .iter()
            .enumerate()
            .map(|(j, v)| v + white[j] / rms * 1.0 + slope * t(j))
            .collect();
        let truth = 19.6 + shift;
        for (tracked, bad) in [(false, &mut bad_free), (true, &mut bad_tracked)] {
            measure(&y, tb, &spec, tracked.then_some(&reference), &mut m);
            match m.peaks[0] {
                Some(p) => {
                    // Never the window edge (16…25 ms).
                    assert!(p.latency_ms > 16.0 && p.latency_ms < 25.0, "{}", p.latency_ms);
                    if (p.latency_ms - truth).abs() > 2.0 {
                        *bad += 1;
                    }
                }
                None => *bad += 1,
            }
        }
    }
    // Noise this strong displaces the peak itself by ~0.5 ms (no method fixes that); what tracking prevents
    // is
    // the jump to another wiggle. Measured on this seed: jumps (> 2 ms, or not found) 23/300 free, 7/300
    // tracked. Asserted with margin: tracking at least halves them and keeps them ≤ 4%.
    assert!(
        bad_tracked * 2 < bad_free,
        "tracked {bad_tracked}, free {bad_free} of {trials}"
    );
    assert!(
        bad_tracked * 100 <= 4 * trials,
        "tracked {bad_tracked} of {trials}"
    );
}
