//! Per-stage profile of the DSP engine on 16 channels × 20 kHz with the simulator's default protocol
//! (`protocols/sim-default.toml`) and white noise: `cargo run --release -p ionm-dsp --example profile [seconds]`.
//! Prints ns per channel-sample for the whole engine and for the filters alone (each stream's kernel over
//! the same number of samples), so the rest of the engine is the difference. Run it under `perf record` for
//! a function-level profile.
#![allow(missing_docs)]
// A command-line measuring tool: its output is the report.
#![allow(clippy::print_stdout)]

use ionm_core::{ChannelInfo, DeviceInfo, Rng, SampleBlock, Stimulator, StimulusEvent};
use ionm_dsp::filter::{FftWork, StreamingFir};
use ionm_dsp::{Engine, Protocol};
use std::hint::black_box;
use std::time::Instant;

const SIM_DEFAULT: &str = include_str!("../../../protocols/sim-default.toml");
const LABELS: [&str; 16] = [
    "Erb L", "Erb R", "Cv5-Fz", "CP4-Fz", "CP3-Fz", "Pop L", "Pop R", "Cz-Fpz", "APB L", "APB R", "TA L",
    "TA R", "AH L", "AH R", "Cz-A1", "Cz-A2",
];

/// CPU time of this thread, ns (`/proc/thread-self/schedstat`; the machine may be shared, so wall time is
/// less telling).
fn cpu_ns() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

fn main() {
    let seconds: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(20);
    let rate = 20_000u32;
    let nc = LABELS.len();
    let device = DeviceInfo {
        protocol_version: 1,
        sample_rate_hz: rate,
        channels: LABELS
            .iter()
            .map(|l| ChannelInfo {
                label: (*l).into(),
                gain_nv_per_lsb: 50,
            })
            .collect(),
        adc_min: -(1 << 23),
        adc_max: (1 << 23) - 1,
        firmware_version: "profile".into(),
        session_id: 1,
    };
    let protocol = Protocol::from_toml_str(SIM_DEFAULT).expect("protocol");
    let mut engine = Engine::new(&protocol, &device).expect("engine");
    let per = 20usize;
    let mut r = Rng::new(5);
    // One second of data, reused with moving indices.
    let raw: Vec<i32> = (0..rate as usize * nc)
        .map(|_| (r.normal() * 100.0) as i32)
        .collect();
    let stims = [
        (Stimulator::LeftMedian, 4255u64),
        (Stimulator::RightMedian, 4255),
        (Stimulator::LeftTibial, 4255),
        (Stimulator::RightTibial, 4255),
        (Stimulator::LeftEar, 1801),
        (Stimulator::RightEar, 1801),
        (Stimulator::Tes, 300_000),
    ];
    let mut next: Vec<u64> = (0..stims.len()).map(|i| 1000 + 97 * i as u64).collect();
    let t = Instant::now();
    let c0 = cpu_ns();
    let mut at = 0u64;
    for _ in 0..seconds {
        for k in 0..rate as usize / per {
            for (i, (st, period)) in stims.iter().enumerate() {
                while next[i] < at + per as u64 {
                    engine.push_stimulus(
                        &StimulusEvent {
                            sample_index: next[i],
                            stimulator: *st,
                            intensity_tenths: 200,
                            pulse_width_us: 200,
                            pulses: if *st == Stimulator::Tes { 5 } else { 1 },
                        },
                        &mut (),
                    );
                    next[i] += period;
                }
            }
            let blk = SampleBlock::from_interleaved(at, nc, &raw[k * per * nc..(k + 1) * per * nc]).unwrap();
            engine.push_block(&blk, &mut ()).unwrap();
            at += per as u64;
        }
    }
    let wall = t.elapsed().as_secs_f64();
    let total = (cpu_ns() - c0) * 1e-9;
    let cs = (seconds * rate as usize * nc) as f64;
    println!(
        "engine: {seconds} s of 16 ch x 20 kHz in {:.3} s CPU ({wall:.3} s wall): {:.0}x real time, {:.2} ns per channel-sample; {} streams, {} traces",
        total,
        seconds as f64 / total,
        total * 1e9 / cs,
        engine.stream_count(),
        engine.trace_count()
    );
    if std::env::args().nth(2).as_deref() == Some("engine") {
        return;
    }
    // The filters alone: each stream's kernel over the same samples.
    let mut work = FftWork::new();
    let x: Vec<f32> = (0..rate as usize).map(|_| r.normal() as f32).collect();
    let mut ft = 0.0;
    let mut sum = 0.0f32;
    for s in 0..engine.stream_count() {
        let k = engine.stream_kernel(s).clone();
        let mut f = StreamingFir::new(k);
        let t = Instant::now();
        for _ in 0..seconds {
            f.push(&x, &mut work, &mut |y| sum += y[0]);
        }
        ft += t.elapsed().as_secs_f64();
    }
    black_box(sum);
    // What a multirate split would leave at the full rate: the low-pass edge alone (the high-pass and notch
    // terms moved to a decimated rate), against the whole kernel.
    for (name, preset, ch) in [
        ("ssep cortical", "ssep-upper", 0usize),
        ("mep", "mep", 0),
        ("baep", "baep", 0),
    ] {
        let full = Protocol::preset(preset).unwrap().channels[ch].filter;
        let lp_only = ionm_dsp::design::FilterSpec {
            highpass: None,
            notch: None,
            ..full
        };
        for (what, spec) in [("whole kernel", full), ("low-pass edge only", lp_only)] {
            let d = ionm_dsp::design::design(&spec, f64::from(rate)).unwrap();
            let k = std::sync::Arc::new(
                ionm_dsp::filter::FirKernel::new(&d, None, &mut realfft::RealFftPlanner::new()).unwrap(),
            );
            let mut f = StreamingFir::new(k.clone());
            let t = Instant::now();
            for _ in 0..seconds {
                f.push(&x, &mut work, &mut |y| sum += y[0]);
            }
            let e = t.elapsed().as_secs_f64();
            println!(
                "{name:>14}, {what:<19}: {:5} taps, FFT {:6}: {:.2} ns per sample",
                d.len(),
                k.fft_len(),
                e * 1e9 / (seconds as f64 * f64::from(rate))
            );
        }
    }
    black_box(sum);
    println!(
        "filters alone: {:.3} s, {:.2} ns per channel-sample ({:.0}% of the engine)",
        ft,
        ft * 1e9 / cs,
        100.0 * ft / total
    );
}
