//! Throughput of ionm-dsp. Figures to read:
//! - `filter/*`: time per element = ns per sample per channel of the default filters (f32, full blocks).
//! - `sweep/extract_reject_average`: ns per sweep (600-sample SSEP window) for extraction, rejection and a
//!   200-sweep block average, with the identity filter; includes taking in the 700 samples between stimuli.
//! - `measure/*`: ns per average for the SSEP cortical measurement (without and with reference tracking).
//! - `engine/16ch_20k_ssep`: ns per sample per channel for the whole engine, 16 channels at 20 kHz.
//!
//! `IONM_FFT_LEN=32768 cargo bench -p ionm-dsp` forces an FFT length for the `filter/*` benches.
#![allow(missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ionm_core::{ChannelInfo, DeviceInfo, Rng, SampleBlock, Stimulator, StimulusEvent};
use ionm_dsp::design::design;
use ionm_dsp::filter::{FftWork, FirKernel, StreamingFir};
use ionm_dsp::measure::{Measurement, Reference, Timebase, measure};
use ionm_dsp::{Engine, Protocol};
use realfft::RealFftPlanner;
use std::hint::black_box;
use std::sync::Arc;

fn device(rate: u32, n: usize) -> DeviceInfo {
    DeviceInfo {
        protocol_version: 1,
        sample_rate_hz: rate,
        channels: (0..n)
            .map(|i| ChannelInfo {
                label: format!("C{i}"),
                gain_nv_per_lsb: 50,
            })
            .collect(),
        adc_min: -(1 << 23),
        adc_max: (1 << 23) - 1,
        firmware_version: "bench".into(),
        session_id: 1,
    }
}

fn stim(s: u64, st: Stimulator) -> StimulusEvent {
    StimulusEvent {
        sample_index: s,
        stimulator: st,
        intensity_tenths: 200,
        pulse_width_us: 200,
        pulses: 1,
    }
}

fn filters(c: &mut Criterion) {
    let mut g = c.benchmark_group("filter");
    for (name, preset, ch, fs) in [
        ("ssep_cortical_10k", "ssep-upper", 3, 10_000.0),
        ("mep_10k", "mep", 0, 10_000.0),
        ("baep_20k", "baep", 0, 20_000.0),
    ] {
        let spec = Protocol::preset(preset).unwrap().channels[ch].filter;
        let d = design(&spec, fs).unwrap();
        let fft_len = std::env::var("IONM_FFT_LEN").ok().and_then(|v| v.parse().ok());
        let k = Arc::new(FirKernel::new(&d, fft_len, &mut RealFftPlanner::new()).unwrap());
        let mut work = FftWork::new();
        work.reserve(&k);
        let mut f = StreamingFir::new(k.clone());
        let mut r = Rng::new(1);
        let n = 1 << 17;
        let x: Vec<f32> = (0..n).map(|_| r.normal() as f32).collect();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("{name}_taps{}_fft{}", d.len(), k.fft_len()), |b| {
            b.iter(|| {
                f.push(&x, &mut work, &mut |y| {
                    black_box(y);
                })
            })
        });
    }
    g.finish();
}

fn sweeps(c: &mut Criterion) {
    let text = "[[channel]]\nlabel = \"C0\"\nmodality = \"ssep-upper\"\nstimulators = [\"left_median\"]\n\
        highpass_hz = 0\nlowpass_hz = 0\nnotch = false\nsweeps = 200\n";
    let protocol = Protocol::from_toml_str(text).unwrap();
    let mut e = Engine::new(&protocol, &device(10_000, 1)).unwrap();
    let mut r = Rng::new(2);
    let raw: Vec<i32> = (0..700).map(|_| (r.normal() * 400.0) as i32).collect();
    let mut at = 0u64;
    let mut g = c.benchmark_group("sweep");
    g.throughput(Throughput::Elements(1));
    g.bench_function("extract_reject_average", |b| {
        b.iter(|| {
            e.push_stimulus(&stim(at + 300, Stimulator::LeftMedian), &mut ());
            let blk = SampleBlock::from_interleaved(at, 1, &raw).unwrap();
            e.push_block(&blk, &mut ()).unwrap();
            at += 700;
        })
    });
    g.finish();
}

fn measurement(c: &mut Criterion) {
    let spec = Protocol::preset("ssep-upper").unwrap().channels[3]
        .measure
        .clone();
    let tb = Timebase {
        start_offset: -100,
        sample_rate_hz: 10_000.0,
    };
    let mut r = Rng::new(3);
    let y: Vec<f64> = (0..600)
        .map(|j| {
            let t = (j as f64 - 100.0) / 10.0;
            -2.0 * (-0.5 * ((t - 19.6) / 1.1f64).powi(2)).exp()
                + 1.6 * (-0.5 * ((t - 24.8) / 1.6f64).powi(2)).exp()
                + 0.2 * r.normal()
        })
        .collect();
    let mut m = Measurement::for_spec(&spec);
    measure(&y, tb, &spec, None, &mut m);
    let reference = Reference::new(&y, tb, &m);
    let mut g = c.benchmark_group("measure");
    g.throughput(Throughput::Elements(1));
    g.bench_function("ssep_cortical", |b| {
        b.iter(|| measure(black_box(&y), tb, &spec, None, &mut m))
    });
    g.bench_function("ssep_cortical_tracked", |b| {
        b.iter(|| measure(black_box(&y), tb, &spec, Some(&reference), &mut m))
    });
    g.finish();
}

fn engine(c: &mut Criterion) {
    let nc = 16;
    let mut text = String::new();
    for i in 0..nc {
        let (stimulator, site) = if i % 2 == 0 {
            ("left_median", "cortical")
        } else {
            ("right_median", "cervical")
        };
        text += &format!(
            "[[channel]]\nlabel = \"C{i}\"\nmodality = \"ssep-upper\"\nsite = \"{site}\"\nstimulators = [\"{stimulator}\"]\n"
        );
    }
    let protocol = Protocol::from_toml_str(&text).unwrap();
    let mut e = Engine::new(&protocol, &device(20_000, nc)).unwrap();
    let per = ionm_core::MAX_BLOCK_VALUES / nc;
    let mut r = Rng::new(4);
    let raw: Vec<i32> = (0..per * nc * 64).map(|_| (r.normal() * 400.0) as i32).collect();
    let (mut at, mut next, mut left) = (0u64, 3_000u64, true);
    let mut g = c.benchmark_group("engine");
    // One iteration: 64 blocks of 128 instants × 16 channels.
    g.throughput(Throughput::Elements((per * nc * 64) as u64));
    g.bench_function("16ch_20k_ssep", |b| {
        b.iter(|| {
            for k in 0..64 {
                while next < at + per as u64 {
                    let s = if left {
                        Stimulator::LeftMedian
                    } else {
                        Stimulator::RightMedian
                    };
                    e.push_stimulus(&stim(next, s), &mut ());
                    left = !left;
                    next += 2_128;
                }
                let blk =
                    SampleBlock::from_interleaved(at, nc, &raw[k * per * nc..(k + 1) * per * nc]).unwrap();
                e.push_block(&blk, &mut ()).unwrap();
                at += per as u64;
            }
        })
    });
    g.finish();
}

criterion_group!(benches, filters, sweeps, measurement, engine);
criterion_main!(benches);
