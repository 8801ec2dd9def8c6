//! Per-stage costs of the processing path, on simulator data. Figures to read:
//! - `dsp_path/16ch_10k_1s`, `16ch_20k_1s`, `32ch_20k_1s`: time for one second of signal through the whole DSP
//!   engine (artifact blanking, FIR filtering, sweeps, rejection, averaging, measurement), fed with simulator
//!   blocks of 20 instants and their stimuli, as the pipeline feeds it. 16 channels use the `sim-default`
//!   protocol, 32 channels one generated from the simulator's montage (as `ionm bench --protocol auto`).
//!   Real-time factor = 1 s / the time shown.
//! - `monitor/on_average_steady`: one alarm evaluation (`Monitor::on_average`) of a trace with a baseline.
//!
//! Peak measurement per average is benchmarked in `crates/ionm-dsp/benches/dsp.rs` (`measure/*`), the FIR filters
//! alone there too (`filter/*`), the wire decoder in `benches/decode.rs`, the simulator in
//! `firmware-sim/benches/generate.rs`, the recorder in `crates/ionm-record/benches/recorder.rs`; the whole pipeline
//! with threads, ring and decoder is `ionm bench`.
#![allow(missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use firmware_sim::montage::{Group, ResponseKind};
use firmware_sim::{Scenario, SimConfig, Simulator};
use ionm_core::{SampleBlock, Stimulator, StimulusEvent};
use ionm_dsp::protocol::{Modality, Site};
use ionm_dsp::{Engine, Protocol};
use ionm_monitor::{AverageInput, Criteria, Monitor, Role, TraceMeta};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

const SIM_DEFAULT: &str = include_str!("../protocols/sim-default.toml");
/// Instants per block, as the simulator's transport sends them at 20 kHz (1 ms frames).
const BLOCK: usize = 20;

/// Same rule as `ionm bench --protocol auto` (src/bench.rs): every montage channel with its modality defaults.
fn montage_protocol(channels: usize) -> String {
    let mut text = String::from("name = \"bench\"\nmains_hz = 50\n");
    for spec in firmware_sim::montage::catalogue().into_iter().take(channels) {
        let mut groups: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for r in &spec.responses {
            let m = match (spec.group, r.kind, r.stimulator) {
                (Group::Muscle, ResponseKind::Muscle, Stimulator::Tes) => "mep",
                (Group::Muscle, _, _) => continue,
                (Group::Brainstem, _, Stimulator::LeftEar | Stimulator::RightEar) => "baep",
                (_, _, Stimulator::LeftMedian | Stimulator::RightMedian) => "ssep-upper",
                (_, _, Stimulator::LeftUlnar | Stimulator::RightUlnar) => "ssep-upper",
                (_, _, Stimulator::LeftTibial | Stimulator::RightTibial) => "ssep-lower",
                _ => continue,
            };
            groups
                .entry(m)
                .or_default()
                .push(format!("\"{}\"", r.stimulator.name()));
        }
        let site = match spec.group {
            Group::Cortical => "cortical",
            Group::Subcortical => "cervical",
            _ => "peripheral",
        };
        for (m, s) in groups {
            text += &format!(
                "\n[[channel]]\nlabel = \"{0}\"\nname = \"{0} ({m})\"\nmodality = \"{m}\"\nstimulators = [{1}]\n",
                spec.label,
                s.join(", ")
            );
            if m.starts_with("ssep") {
                text += &format!("site = \"{site}\"\n");
            }
        }
    }
    text
}

/// One second of simulator output: blocks of raw values with the stimuli that fall in each.
struct Second {
    channels: usize,
    rate: u32,
    blocks: Vec<(Vec<i32>, Vec<StimulusEvent>)>,
}

fn second(channels: usize, rate: u32) -> (Second, ionm_core::DeviceInfo) {
    let mut sim = Simulator::new(SimConfig {
        channels,
        sample_rate_hz: rate,
        seed: 3,
        mains_hz: 50.0,
        scenario: Scenario::builtin("ssep-stable").expect("built-in"),
    })
    .expect("valid simulator");
    sim.set_record_sweeps(false);
    let per = BLOCK.min(ionm_core::MAX_BLOCK_VALUES / channels);
    // Skip the first 10 s so that one second holds TES trains as well as SSEP and BAEP stimuli.
    let mut scratch = vec![0i32; per * channels];
    let mut stims = Vec::new();
    for _ in 0..(10 * rate as usize / per) {
        stims.clear();
        sim.generate(per, &mut scratch, &mut stims);
    }
    let blocks = (0..rate as usize / per)
        .map(|_| {
            let mut v = vec![0i32; per * channels];
            let mut s = Vec::new();
            sim.generate(per, &mut v, &mut s);
            (v, s)
        })
        .collect();
    let dev = sim.device_info();
    (
        Second {
            channels,
            rate,
            blocks,
        },
        dev,
    )
}

fn dsp_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("dsp_path");
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(2));
    g.measurement_time(Duration::from_secs(8));
    for (channels, rate) in [(16usize, 10_000u32), (16, 20_000), (32, 20_000)] {
        let text = if channels == 16 {
            SIM_DEFAULT.to_owned()
        } else {
            montage_protocol(channels)
        };
        let protocol = Protocol::from_toml_str(&text).expect("protocol");
        let (data, device) = second(channels, rate);
        let mut engine = Engine::new(&protocol, &device).expect("protocol fits");
        let per = data.blocks[0].0.len() / channels;
        // The data repeats every second, with indices moving on so that the stream stays continuous; the
        // simulator's own indices start 10 s in.
        let first = 10 * u64::from(data.rate);
        let mut offset = 0u64;
        g.throughput(Throughput::Elements(u64::from(rate) * channels as u64));
        g.bench_function(format!("{channels}ch_{}k_1s", rate / 1000), |b| {
            b.iter(|| {
                for (k, (values, stims)) in data.blocks.iter().enumerate() {
                    let at = first + offset + (k * per) as u64;
                    for s in stims {
                        let mut s = *s;
                        s.sample_index += offset;
                        engine.push_stimulus(&s, &mut ());
                    }
                    let blk = SampleBlock::from_interleaved(at, data.channels, values).expect("block");
                    engine.push_block(&blk, &mut ()).expect("continuous");
                }
                offset += u64::from(data.rate);
                black_box(engine.stats().samples)
            })
        });
    }
    g.finish();
}

fn monitor(c: &mut Criterion) {
    let protocol = Protocol::from_toml_str(SIM_DEFAULT).expect("protocol");
    let (_, device) = second(16, 10_000);
    let engine = Engine::new(&protocol, &device).expect("protocol fits");
    let traces: Vec<TraceMeta> = (0..engine.trace_count())
        .filter_map(|t| engine.trace_info(t))
        .map(|info| {
            let modality = info.modality.name().to_owned();
            TraceMeta {
                name: info.name.clone(),
                label: info.label.clone(),
                device_channel: info.device_channel,
                stimulator: info.stimulator,
                role: match (info.modality, info.site) {
                    (Modality::Mep, _) => Role::Muscle,
                    (Modality::Baep, _) => Role::Brainstem,
                    (_, Some(Site::Peripheral)) => Role::Peripheral,
                    (_, Some(Site::Cervical)) => Role::Subcortical,
                    _ => Role::Cortical,
                },
                criteria: Criteria::for_modality(&modality),
                modality,
            }
        })
        .collect();
    let labels = device.channels.iter().map(|c| c.label.clone()).collect();
    let mut m = Monitor::new(traces, labels);
    let mut out = Vec::with_capacity(16);
    let mut t = 0.0;
    let input = |t: f64, amplitude: f64| AverageInput {
        trace: 4,
        stream_s: t,
        sweeps: 200,
        amplitude_uv: Some(amplitude),
        latency_ms: Some(19.4),
        fsp: Some(8.0),
        residual_noise_uv: Some(0.2),
    };
    // Baseline first (three passing averages), then steady state with a little scatter.
    for _ in 0..3 {
        t += 40.0;
        m.on_average(&input(t, 2.5), || None, &mut out);
    }
    let mut k = 0u32;
    let mut g = c.benchmark_group("monitor");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(1));
    g.bench_function("on_average_steady", |b| {
        b.iter(|| {
            out.clear();
            t += 40.0;
            k = k.wrapping_add(1);
            let amp = 2.4 + 0.05 * f64::from(k % 5);
            black_box(m.on_average(&input(t, amp), || None, &mut out))
        })
    });
    g.finish();
}

criterion_group!(benches, dsp_path, monitor);
criterion_main!(benches);
