//! Behaviour of the streaming engine: gaps, late stimuli, routing, latency, setup errors, robust peaks.

mod common;

use common::*;
use ionm_core::{Gap, GapCause, Rng, SampleBlock, Stimulator};
use ionm_dsp::measure::{Measurement, Reference, Timebase, measure};
use ionm_dsp::{DropReason, Engine, InputError, Protocol, SetupError, Verdict};

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

/// The engine reads only the channels its protocol uses: blocks whose other channels were not decoded give
/// the same sweeps as whole blocks, and a block without a used channel is refused.
#[test]
fn only_the_protocols_channels_need_decoding() {
    let protocol = Protocol::from_toml_str(SSEP).unwrap();
    let dev = device(10_000, &["X", "A", "Y"], 50);
    assert_eq!(protocol.device_channels(&dev).unwrap(), 0b010);
    assert!(matches!(
        protocol.device_channels(&device(10_000, &["B"], 50)),
        Err(SetupError::UnknownChannel { .. })
    ));
    let raw = noise(30_000, 5);
    let stimuli: Vec<u64> = (0..10).map(|k| 2_000 + k * 2_500).collect();
    let run = |decoded: u64| {
        let mut e = Engine::new(&protocol, &dev).unwrap();
        assert_eq!(e.device_channels(), 0b010);
        let mut sink = Collect::default();
        for s in &stimuli {
            e.push_stimulus(&stim(*s, Stimulator::LeftMedian), &mut sink);
        }
        for (k, chunk) in raw.chunks(200).enumerate() {
            let mut b = SampleBlock::empty();
            // Stored: the decoded channels in channel order. Whatever the unused channels hold (rails here,
            // when they are decoded) must not matter.
            let stride = (decoded & 0b111).count_ones() as usize;
            let col = (decoded & 0b001).count_ones() as usize;
            b.fill_decoded((k * 200) as u64, 3, chunk.len(), decoded, |dst| {
                for (i, &v) in chunk.iter().enumerate() {
                    let at = &mut dst[stride * i..stride * (i + 1)];
                    at.fill(ADC_MAX);
                    if decoded & 0b100 != 0 {
                        at[stride - 1] = ADC_MIN;
                    }
                    at[col] = v;
                }
            })
            .unwrap();
            e.push_block(&b, &mut sink).unwrap();
        }
        e.finish(&mut sink);
        sink.sweeps
    };
    let full = run(0b111);
    assert!(full.len() >= 8, "{} sweeps", full.len());
    assert!(full.iter().all(|s| s.3 == Verdict::Accepted));
    assert_eq!(run(0b010), full);

    let mut e = Engine::new(&protocol, &dev).unwrap();
    let mut b = SampleBlock::empty();
    b.fill_decoded(0, 3, 10, 0b101, |_| {}).unwrap();
    assert_eq!(
        e.push_block(&b, &mut Collect::default()),
        Err(InputError::NotDecoded {
            first_index: 0,
            missing: 0b010
        })
    );
    assert_eq!(e.stats().samples, 0);
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

/// Live latency: a device that announces its stimuli 1 ms ahead (device-info revision 2) is not held back, so
/// with `flush_ready` after every 1 ms block a sweep is out with the very block that brings the last sample its
/// filtered window depends on (window end + the filter's look-ahead). A revision-1 device is held back
/// `stimulus_lag_ms` + the pre-blanking. Both give the same sweep (to f32 FFT rounding).
#[test]
fn a_device_with_stimulus_lead_is_not_held_back() {
    let rate = 20_000u32;
    let protocol = Protocol::from_toml_str(SSEP).unwrap();
    let raw = noise(40_000, 9);
    let s = 12_345u64;
    let run = |revision: u8| {
        let mut dev = device(rate, &["A"], 50);
        dev.protocol_version = revision;
        let mut e = Engine::new(&protocol, &dev).unwrap();
        let mut sink = Collect::default();
        let mut emitted_at = None;
        for b in blocks(0, &raw, 20) {
            // Revision 2 promise: the stimulus comes before the block holding sample s − 20 (1 ms).
            if b.end_index() > s - 20 && b.first_index() <= s - 20 {
                e.push_stimulus(&stim(s, Stimulator::LeftMedian), &mut sink);
            }
            e.push_block(&b, &mut sink).unwrap();
            e.flush_ready(&mut sink);
            if emitted_at.is_none() && !sink.sweeps.is_empty() {
                emitted_at = Some(b.end_index());
            }
        }
        e.finish(&mut sink);
        assert_eq!(e.stats().late_blanks, 0);
        let info = e.trace_info(0).unwrap();
        let end = (info.timebase.start_offset + info.window_len as i64) as u64;
        let delay = (info.taps as u64 - 1) / 2;
        (e.hold_samples(), emitted_at.unwrap(), s + end + delay, sink)
    };
    let (hold2, at2, need, sink2) = run(2);
    let (hold1, at1, _, sink1) = run(1);
    assert_eq!(hold2, 0, "0.5 ms pre-blanking < 1 ms lead");
    assert_eq!(hold1, 400 + 10, "20 ms lag + 0.5 ms pre-blanking at 20 kHz");
    // `need` = one past the last input sample the sweep depends on; blocks end on multiples of 20.
    assert_eq!(at2, need.div_ceil(20) * 20);
    assert_eq!(at1, (need + hold1).div_ceil(20) * 20);
    let (a, b) = (&sink2.sweeps[0].4, &sink1.sweeps[0].4);
    let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-5 * scale));
}

/// A sink that does not want the filtered stream lets the engine skip the filter blocks no sweep needs
/// (sparse TcMEP stimuli: most of them); the sweeps are bit-identical to those of a full run.
#[test]
fn skipping_unneeded_filter_blocks_leaves_sweeps_unchanged() {
    let protocol = Protocol::from_toml_str(
        "[[channel]]\nlabel = \"APB\"\nmodality = \"mep\"\nstimulators = [\"tes\"]\n",
    )
    .unwrap();
    let raw = noise(200_000, 11);
    let run = |keep_filtered: bool| {
        let mut e = Engine::new(&protocol, &device(10_000, &["APB"], 50)).unwrap();
        let mut sink = Collect {
            keep_filtered,
            ..Collect::default()
        };
        for b in blocks(0, &raw, 128) {
            // A train every 4 s.
            let s = b.first_index() / 40_000 * 40_000 + 1_000;
            if (b.first_index()..b.end_index()).contains(&s) {
                e.push_stimulus(&stim(s, Stimulator::Tes), &mut sink);
            }
            e.push_block(&b, &mut sink).unwrap();
        }
        e.finish(&mut sink);
        (*e.stats(), sink)
    };
    let (lazy, lazy_sink) = run(false);
    let (full, full_sink) = run(true);
    assert_eq!(full.filter_blocks_skipped, 0);
    assert!(
        lazy.filter_blocks_skipped > 2 * lazy.filter_blocks,
        "{} skipped, {} done",
        lazy.filter_blocks_skipped,
        lazy.filter_blocks
    );
    // Five trains; the first (at 0.1 s) lies within the filter's delay of the stream's start.
    assert_eq!(lazy_sink.sweeps.len(), 4);
    assert_eq!(lazy_sink.dropped, vec![(0, 1_000, DropReason::Gap)]);
    assert_eq!(lazy_sink.sweeps, full_sink.sweeps);
}

/// A stimulus later than its contract whose data was skipped as unneeded is dropped as late, never cut from
/// stale ring contents (ear clicks are not blanked, so only the skip check can catch it).
#[test]
fn a_stimulus_later_than_allowed_never_reads_skipped_blocks() {
    let protocol = Protocol::preset("baep").unwrap();
    let labels = ["Cz-A1", "Cz-A2"];
    let mut r = Rng::new(5);
    let n = 80_000usize;
    let raw: Vec<i32> = (0..2 * n).map(|_| (r.normal() * 300.0) as i32).collect();
    let run = |keep_filtered: bool| {
        let mut e = Engine::new(&protocol, &device(20_000, &labels, 50)).unwrap();
        let mut sink = Collect {
            keep_filtered,
            ..Collect::default()
        };
        let mut at = 0;
        while at < n {
            let m = 100.min(n - at);
            let b =
                ionm_core::SampleBlock::from_interleaved(at as u64, 2, &raw[2 * at..2 * (at + m)]).unwrap();
            e.push_block(&b, &mut sink).unwrap();
            at += m;
            if at == 70_000 {
                // 3 s after its sample, far beyond the 20 ms allowed, but still in the engine's buffers.
                e.push_stimulus(&stim(10_000, Stimulator::LeftEar), &mut sink);
            }
        }
        e.finish(&mut sink);
        sink
    };
    let lazy = run(false);
    assert!(lazy.sweeps.is_empty());
    assert_eq!(lazy.dropped, vec![(0, 10_000, DropReason::Late)]);
    // With the whole stream filtered the data is there and the (late) sweep is cut as before.
    let full = run(true);
    assert_eq!(full.sweeps.len(), 1);
}

/// Two channels with the same filter are filtered as a pair through one complex FFT; live flushes of one
/// of them put the pair out of step (then each is filtered alone). Whatever the mix, every sweep is the
/// one-channel-at-a-time result to f32 FFT rounding: the two channels (different signals, one 1000× the other)
/// do not leak into each other.
#[test]
fn paired_channels_give_the_same_sweeps_in_step_out_of_step_and_alone() {
    let protocol = Protocol::from_toml_str(
        "[[channel]]\nlabel = \"A\"\nmodality = \"ssep-upper\"\nstimulators = [\"left_median\"]\nsweeps = 5\n\
         [[channel]]\nlabel = \"B\"\nmodality = \"ssep-upper\"\nstimulators = [\"right_median\"]\nsweeps = 5\n",
    )
    .unwrap();
    let n = 120_000usize;
    let (a, b) = (noise(n, 21), noise(n, 22));
    // Channel B 1000× larger around its offset (a railing electrode next to a cortical one): a leak of its
    // rounding into A would show.
    let b: Vec<i32> = b.iter().map(|v| (v - 7000) * 1000 + 7000).collect();
    let stimuli: Vec<(u64, Stimulator)> = (0..40)
        .map(|k| {
            let s = 4_000 + k * 2_777;
            (
                s,
                if k % 2 == 0 {
                    Stimulator::LeftMedian
                } else {
                    Stimulator::RightMedian
                },
            )
        })
        .collect();
    let run = |channels: &[usize], flush: bool| {
        let labels: Vec<&str> = channels.iter().map(|&c| ["A", "B"][c]).collect();
        let proto = if channels.len() == 2 {
            protocol.clone()
        } else {
            let mut p = protocol.clone();
            p.channels
                .retain(|ch| matches!(&ch.source, ionm_dsp::protocol::ChannelRef::Label(l) if labels.contains(&l.as_str())));
            p
        };
        let mut e = Engine::new(&proto, &device(10_000, &labels, 50)).unwrap();
        let mut sink = Collect::default();
        let mut next = 0;
        for start in (0..n).step_by(20) {
            while next < stimuli.len() && stimuli[next].0 < (start + 20) as u64 {
                e.push_stimulus(&stim(stimuli[next].0, stimuli[next].1), &mut sink);
                next += 1;
            }
            let (a, b) = (&a, &b);
            let vals: Vec<i32> = (start..start + 20)
                .flat_map(|i| channels.iter().map(move |&c| if c == 0 { a[i] } else { b[i] }))
                .collect();
            let block =
                ionm_core::SampleBlock::from_interleaved(start as u64, channels.len(), &vals).unwrap();
            e.push_block(&block, &mut sink).unwrap();
            if flush {
                e.flush_ready(&mut sink);
            }
        }
        e.finish(&mut sink);
        let sweeps = sink
            .sweeps
            .into_iter()
            .map(|(_, s, _, _, data)| (s, data))
            .collect::<std::collections::BTreeMap<_, _>>();
        (sweeps, e.stats().filter_pair_blocks)
    };
    let (paired, pair_blocks) = run(&[0, 1], false);
    let (live, live_pair_blocks) = run(&[0, 1], true);
    let (mut alone, _) = run(&[0], false);
    alone.extend(run(&[1], false).0);
    // Without flushes every full block of the two went through the pair transform (12 s in blocks of
    // 32 768 − 5 583 + 1 samples: 4); with a flush after every 2 ms block (one stream at a time: the stimuli
    // alternate), the pair goes out of step.
    assert!(pair_blocks >= 4, "{pair_blocks} pair blocks");
    assert!(
        live_pair_blocks < pair_blocks,
        "{live_pair_blocks} of {pair_blocks}"
    );
    assert!(paired.len() >= 30, "{} sweeps", paired.len());
    for other in [&live, &alone] {
        assert_eq!(
            paired.keys().collect::<Vec<_>>(),
            other.keys().collect::<Vec<_>>()
        );
        for (s, x) in &paired {
            let y = &other[s];
            let scale = y.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let err = x.iter().zip(y).fold(0.0f32, |m, (p, q)| m.max((p - q).abs()));
            // f32 FFT rounding of a 65 536-point transform, relative to each channel's own size: ≈ 1e-7 × 16;
            // 1e-5 is a wide margin; without the per-stream scaling, B's rounding in A fails it.
            assert!(err <= 1e-5 * scale, "stimulus {s}: err {err}, scale {scale}");
        }
    }
}
