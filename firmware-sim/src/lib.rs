//! The signal model of `firmware-sim`, a simulated IONM amplifier and stimulator.
//!
//! The library produces what a real device would: interleaved raw 24-bit converter values, stimulus events at exact
//! sample indices, status flags and link effects, plus the ground truth to score a host against. The binary wraps
//! it with the wire encoder and a transport.
//!
//! - [`SimConfig`]: channels (1–64), sample rate (1–50 kHz), seed, mains frequency and a [`Scenario`].
//! - [`Simulator`]: [`Simulator::generate`] fills blocks of samples and reports the stimuli that fired;
//!   [`Simulator::status`], [`Simulator::link`] and [`Simulator::truth`] report the rest.
//! - [`montage`]: which channel records which response (SSEP upper and lower limb, TcMEP, BAEP), with latencies and
//!   amplitudes, and the background levels per channel group.
//! - [`scenario`]: the TOML scenario format (response changes, cautery, pops, electrode off, anaesthesia,
//!   disconnects, byte corruption) and the built-in scenarios.
//! - [`schedule`]: when each stimulator fires.
//! - [`Truth`]: stimuli, baseline and per-sweep response amplitude and latency, scenario events (serde).
//!
//! Each value is the sum of: per-channel EEG/EMG noise (1/f plus low-frequency EEG plus amplifier noise, see
//! [`noise`]), mains with harmonics and a slowly wandering frequency, ECG, a DC offset, the stimulus artifacts
//! (a pulse and an exponential recovery, ≈ 1–2 ms), the evoked responses (precomputed templates on a 10 µs grid,
//! stretched and scaled per sweep), and the scenario's effects; then it is converted at
//! [`GAIN_NV_PER_LSB`] and clamped to the rails.
//!
//! The output is a pure function of the configuration: the same config and seed give the same samples, and the
//! samples do not depend on how the stream is split into `generate` calls.

pub mod montage;
pub mod noise;
pub mod scenario;
pub mod schedule;
pub mod transmit;
pub mod truth;

pub use montage::Group;
pub use scenario::{Action, Background, Event, OffMode, Scenario, ScenarioError, Stimulation, Target};
pub use truth::Truth;

use ionm_core::{ChannelInfo, DeviceInfo, DeviceStatus, Rng, SampleIndex, Stimulator, StimulusEvent};
use montage::{ChannelSpec, ResponseKind, catalogue};
use noise::ChannelNoise;
use schedule::{Schedule, samples};
use std::f64::consts::PI;
use truth::{
    ChannelTruth, EventTruth, PeakTruth, ResponseTruth, ScenarioInfo, StimulusColumns, SweepColumns,
};

/// Converter gain of every channel, nV per LSB (an ADS1299-class front end at gain 24: ±201 mV full scale).
pub const GAIN_NV_PER_LSB: u32 = 24;
/// Lowest converter value (24-bit).
pub const ADC_MIN: i32 = -(1 << 23);
/// Highest converter value (24-bit).
pub const ADC_MAX: i32 = (1 << 23) - 1;
/// The firmware version string the device reports.
pub const FIRMWARE_VERSION: &str = concat!("firmware-sim ", env!("CARGO_PKG_VERSION"));
/// Wire protocol version reported in [`DeviceInfo`] (the lead's encoder may overwrite it).
pub const PROTOCOL_VERSION: u8 = 1;
/// Step of the precomputed response templates, ms.
pub const TEMPLATE_STEP_MS: f64 = 0.01;
/// White amplifier noise density, nV/√Hz.
pub const AMPLIFIER_NOISE_NV_RTHZ: f64 = 12.0;

/// Most phases of a muscle response.
const MAX_PHASES: usize = 5;
/// Stimulator codes 0..=10 index per-stimulator tables.
const N_CODES: usize = 11;

/// What to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Number of channels, 1–64 (default 16): the first `channels` of [`montage::catalogue`].
    pub channels: usize,
    /// Samples per second per channel, 1 000–50 000 (default 10 000).
    pub sample_rate_hz: u32,
    /// Seed of every random choice.
    pub seed: u64,
    /// Mains frequency, 50 or 60 Hz.
    pub mains_hz: f64,
    /// What happens during the run.
    pub scenario: Scenario,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            channels: 16,
            sample_rate_hz: 10_000,
            seed: 1,
            mains_hz: 50.0,
            scenario: Scenario::default(),
        }
    }
}

/// Why a simulator could not be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimError {
    /// Channel count outside 1–64.
    #[error("channels must be 1 to 64, got {0}")]
    Channels(usize),
    /// Sample rate outside 1–50 kHz.
    #[error("sample rate must be 1000 to 50000 Hz, got {0}")]
    SampleRate(u32),
    /// Mains frequency other than 50 or 60 Hz.
    #[error("mains frequency must be 50 or 60 Hz, got {0}")]
    Mains(f64),
    /// The scenario cannot run at this configuration.
    #[error("scenario {name:?}: {message}")]
    Scenario {
        /// Scenario name.
        name: String,
        /// What is wrong.
        message: String,
    },
}

/// Effects of the link at a sample index, for the transport.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkState {
    /// False while the device is disconnected: the transport sends nothing (indices keep advancing).
    pub connected: bool,
    /// Fraction of bytes the transport should corrupt (0–1).
    pub corrupt_byte_rate: f64,
}

// ---------------------------------------------------------------------------------------------------------------
// Internal state

#[derive(Debug, Clone)]
struct Pop {
    start: u64,
    step_uv: f64,
    decay: f64,
}

#[derive(Debug, Clone)]
struct Channel {
    rng: Rng,
    off_rng: Rng,
    cautery_rng: Rng,
    noise: ChannelNoise,
    dc_uv: f32,
    /// Mains coefficients for the basis (cos, sin) × harmonics 1, 2, 3, 5.
    mains: [f32; 8],
    ecg_uv: f32,
    artifact_uv: [f32; N_CODES],
    pops: Vec<Pop>,
    next_pop: usize,
    pop_level: f64,
    pop_decay: f64,
}

#[derive(Debug, Clone)]
struct Response {
    channel: usize,
    stimulator: Stimulator,
    muscle: bool,
    /// One table for evoked responses, one per phase for muscle responses (µV on a [`TEMPLATE_STEP_MS`] grid).
    tables: Vec<Vec<f32>>,
    len_ms: f64,
    pivot_ms: f64,
    amplitude_cv: f64,
    jitter_ms: f64,
    phase_spread: f64,
    base_latency_ms: f64,
    base_amplitude_uv: f64,
    mods: Vec<usize>,
}

#[derive(Debug, Clone, Copy)]
struct Sweep {
    resp: usize,
    onset: u64,
    end: u64,
    amp: f32,
    weights: [f32; MAX_PHASES],
    inv_stretch: f64,
    shift_ms: f64,
}

#[derive(Debug, Clone)]
struct Mod {
    start: u64,
    ramp: u64,
    amplitude_pct: f64,
    latency_pct: f64,
    latency_ms: f64,
}

#[derive(Debug, Clone)]
struct Interval {
    start: u64,
    end: u64,
    mask: u64,
}

#[derive(Debug, Clone)]
struct OffInterval {
    start: u64,
    end: u64,
    mask: u64,
    mode: OffMode,
    level_uv: f32,
}

/// Mains: a phase accumulator whose frequency wanders by a bounded random walk (grid frequency deviation).
#[derive(Debug, Clone)]
struct Mains {
    f0: f64,
    dev_hz: f64,
    phase: f64,
    rng: Rng,
    update_every: u64,
    fs: f64,
}

impl Mains {
    fn fill(&mut self, start: u64, basis: &mut [[f32; 8]]) {
        for (j, b) in basis.iter_mut().enumerate() {
            let i = start + j as u64;
            if i.is_multiple_of(self.update_every) {
                // Ornstein–Uhlenbeck-like wander of ±0.02 Hz, updated ten times a second.
                self.dev_hz = (0.98 * self.dev_hz + 0.004 * self.rng.normal()).clamp(-0.05, 0.05);
            }
            let (s1, c1) = self.phase.sin_cos();
            let (c2, s2) = (c1 * c1 - s1 * s1, 2.0 * s1 * c1);
            let (c3, s3) = (c2 * c1 - s2 * s1, s2 * c1 + c2 * s1);
            let (c5, s5) = (c3 * c2 - s3 * s2, s3 * c2 + c3 * s2);
            *b = [
                c1 as f32, s1 as f32, c2 as f32, s2 as f32, c3 as f32, s3 as f32, c5 as f32, s5 as f32,
            ];
            self.phase += 2.0 * PI * (self.f0 + self.dev_hz) / self.fs;
            if self.phase > 2.0 * PI {
                self.phase -= 2.0 * PI;
            }
        }
    }
}

/// ECG: a P-QRS-T template repeated with a heart rate of ≈ 70/min and beat-to-beat variability.
#[derive(Debug, Clone)]
struct Ecg {
    template: Vec<f32>,
    pre: u64,
    beats: Vec<u64>,
    next_r: u64,
    rr_s: f64,
    rng: Rng,
    fs: f64,
}

impl Ecg {
    fn new(fs: f64, rng: Rng) -> Self {
        let pre = samples(0.25, fs);
        let post = samples(0.45, fs);
        // (time s, amplitude relative to R, σ s)
        const WAVES: [(f64, f64, f64); 5] = [
            (-0.16, 0.12, 0.025),
            (-0.035, -0.12, 0.010),
            (0.0, 1.0, 0.012),
            (0.035, -0.3, 0.012),
            (0.26, 0.3, 0.05),
        ];
        let template = (0..pre + post)
            .map(|k| {
                let t = (k as f64 - pre as f64) / fs;
                WAVES
                    .iter()
                    .map(|&(t0, a, s)| a * (-0.5 * ((t - t0) / s).powi(2)).exp())
                    .sum::<f64>() as f32
            })
            .collect();
        Self {
            template,
            pre,
            beats: Vec::with_capacity(8),
            next_r: samples(0.3, fs),
            rr_s: 0.85,
            rng,
            fs,
        }
    }

    fn fill(&mut self, start: u64, out: &mut [f32]) {
        let end = start + out.len() as u64;
        out.fill(0.0);
        let len = self.template.len() as u64;
        // Beats whose window starts before the block ends.
        while self.next_r < end + self.pre {
            self.beats.push(self.next_r);
            self.rr_s = (self.rr_s + 0.01 * self.rng.normal()).clamp(0.75, 1.0);
            let rr = self.rr_s * (1.0 + 0.03 * self.rng.normal());
            self.next_r += samples(rr.max(0.6), self.fs);
        }
        for &r in &self.beats {
            // The first R wave is at 0.3 s > pre, so r ≥ pre.
            let w0 = r - self.pre;
            let (from, to) = (w0.max(start), (w0 + len).min(end));
            for i in from..to {
                out[(i - start) as usize] += self.template[(i + self.pre - r) as usize];
            }
        }
        let pre = self.pre;
        self.beats.retain(|&r| r + len > end + pre);
    }
}

/// The simulated amplifier and stimulator. See the crate documentation.
#[derive(Debug, Clone)]
pub struct Simulator {
    config: SimConfig,
    fs: f64,
    labels: Vec<&'static str>,
    channels: Vec<Channel>,
    responses: Vec<Response>,
    /// Response indices by stimulator code.
    by_stim: Vec<Vec<usize>>,
    artifact_tables: Vec<Vec<f32>>,
    schedule: Schedule,
    mods: Vec<Mod>,
    cautery: Vec<Interval>,
    offs: Vec<OffInterval>,
    disconnects: Vec<(u64, u64)>,
    corrupts: Vec<(u64, u64, f64)>,
    mains: Mains,
    ecg: Ecg,
    sweep_rng: Rng,
    variability: f64,
    sweeps: Vec<Sweep>,
    artifacts: Vec<(u64, usize)>,
    acc: Vec<f32>,
    basis: Vec<[f32; 8]>,
    ecg_buf: Vec<f32>,
    new_stims: Vec<StimulusEvent>,
    next: SampleIndex,
    saturated: u64,
    record_sweeps: bool,
    truth: Truth,
}

fn stream(seed: u64, k: u64) -> Rng {
    Rng::new(seed ^ k.wrapping_mul(0xD1B5_4A32_D192_ED03))
}

fn code(s: Stimulator) -> usize {
    usize::from(s.code()).min(N_CODES - 1)
}

/// Value of a template set at `u` ms (linear interpolation on the grid).
#[inline]
fn template_at(tables: &[Vec<f32>], weights: &[f32; MAX_PHASES], u: f64) -> f32 {
    if u < 0.0 {
        return 0.0;
    }
    let x = u / TEMPLATE_STEP_MS;
    let k = x as usize;
    let f = (x - k as f64) as f32;
    let mut v = 0.0;
    for (t, w) in tables.iter().zip(weights) {
        if k + 1 < t.len() {
            v += w * (t[k] + f * (t[k + 1] - t[k]));
        }
    }
    v
}

/// Extremum of `table` near `latency_ms` (within ±1.5 σ), refined by a parabola through the three grid points
/// around it: (latency ms, value µV).
fn find_peak(table: &[f32], latency_ms: f64, width_ms: f64, positive: bool) -> (f64, f64) {
    let lo = ((latency_ms - 1.5 * width_ms) / TEMPLATE_STEP_MS).max(1.0) as usize;
    let hi = (((latency_ms + 1.5 * width_ms) / TEMPLATE_STEP_MS) as usize).min(table.len().saturating_sub(2));
    let sign = if positive { 1.0 } else { -1.0 };
    let mut best = lo.min(hi);
    for k in lo..=hi {
        if sign * table[k] > sign * table[best] {
            best = k;
        }
    }
    let best = best.clamp(1, table.len().saturating_sub(2).max(1));
    let (a, b, c) = (
        f64::from(table[best - 1]),
        f64::from(table[best]),
        f64::from(table[best + 1]),
    );
    let denom = a - 2.0 * b + c;
    let d = if denom.abs() > 1e-12 {
        (0.5 * (a - c) / denom).clamp(-0.5, 0.5)
    } else {
        0.0
    };
    ((best as f64 + d) * TEMPLATE_STEP_MS, b - 0.25 * (a - c) * d)
}

/// Peak-to-peak amplitude and onset (first crossing of [`montage::ONSET_FRACTION`] of max |v|, linearly
/// interpolated) of a weighted muscle response, in template time (ms). `None` onset if the response is flat.
fn muscle_measure(tables: &[Vec<f32>], weights: &[f32; MAX_PHASES]) -> (f64, Option<f64>) {
    let len = tables.iter().map(Vec::len).max().unwrap_or(0);
    let value = |k: usize| -> f64 {
        tables
            .iter()
            .zip(weights)
            .map(|(t, &w)| f64::from(w) * f64::from(t.get(k).copied().unwrap_or(0.0)))
            .sum()
    };
    let (mut lo, mut hi, mut amax) = (0.0f64, 0.0f64, 0.0f64);
    for k in 0..len {
        let v = value(k);
        lo = lo.min(v);
        hi = hi.max(v);
        amax = amax.max(v.abs());
    }
    if amax <= 0.0 {
        return (0.0, None);
    }
    let thr = montage::ONSET_FRACTION * amax;
    let mut prev = 0.0;
    for k in 0..len {
        let v = value(k).abs();
        if v >= thr {
            let frac = if k > 0 && v > prev {
                (thr - prev) / (v - prev)
            } else {
                0.0
            };
            return (hi - lo, Some((k as f64 - 1.0 + frac).max(0.0) * TEMPLATE_STEP_MS));
        }
        prev = v;
    }
    (hi - lo, None)
}

fn build_response(channel: usize, spec: &montage::ResponseSpec) -> (Response, ResponseTruth) {
    let len_ms = spec
        .peaks
        .iter()
        .map(|p| p.latency_ms + 5.0 * p.width_ms)
        .fold(1.0, f64::max);
    let n = (len_ms / TEMPLATE_STEP_MS).ceil() as usize + 2;
    let gauss_table = |peaks: &[montage::Peak]| -> Vec<f32> {
        (0..n)
            .map(|k| {
                let t = k as f64 * TEMPLATE_STEP_MS;
                peaks
                    .iter()
                    .map(|p| p.amplitude_uv * (-0.5 * ((t - p.latency_ms) / p.width_ms).powi(2)).exp())
                    .sum::<f64>() as f32
            })
            .collect()
    };
    let (tables, muscle, base_latency_ms, base_amplitude_uv, peaks, amplitude_measure, latency_measure) =
        match spec.kind {
            ResponseKind::Evoked { first, second } => {
                let table = gauss_table(&spec.peaks);
                let peaks: Vec<PeakTruth> = spec
                    .peaks
                    .iter()
                    .map(|p| {
                        let (latency_ms, amplitude_uv) =
                            find_peak(&table, p.latency_ms, p.width_ms, p.amplitude_uv > 0.0);
                        PeakTruth {
                            name: p.name.to_owned(),
                            latency_ms,
                            amplitude_uv,
                        }
                    })
                    .collect();
                let get = |name: &str| peaks.iter().find(|p| p.name == name);
                let (lat, amp) = match (get(first), get(second)) {
                    (Some(a), Some(b)) => (a.latency_ms, (a.amplitude_uv - b.amplitude_uv).abs()),
                    _ => (0.0, 0.0),
                };
                (
                    vec![table],
                    false,
                    lat,
                    amp,
                    peaks,
                    format!("{first}-{second} peak-to-peak"),
                    format!("{first} peak"),
                )
            }
            ResponseKind::Muscle => {
                let tables: Vec<Vec<f32>> = spec
                    .peaks
                    .iter()
                    .take(MAX_PHASES)
                    .map(|p| gauss_table(std::slice::from_ref(p)))
                    .collect();
                let (p2p, onset) = muscle_measure(&tables, &[1.0; MAX_PHASES]);
                let peaks = spec
                    .peaks
                    .iter()
                    .map(|p| PeakTruth {
                        name: p.name.to_owned(),
                        latency_ms: p.latency_ms,
                        amplitude_uv: p.amplitude_uv,
                    })
                    .collect();
                (
                    tables,
                    true,
                    onset.unwrap_or(0.0),
                    p2p,
                    peaks,
                    "peak-to-peak".to_owned(),
                    "onset (5% of max |v|)".to_owned(),
                )
            }
        };
    let response = Response {
        channel,
        stimulator: spec.stimulator,
        muscle,
        tables,
        len_ms,
        pivot_ms: spec.pivot_ms,
        amplitude_cv: spec.amplitude_cv,
        jitter_ms: spec.jitter_ms,
        phase_spread: spec.phase_spread,
        base_latency_ms,
        base_amplitude_uv,
        mods: Vec::new(),
    };
    let truth = ResponseTruth {
        channel,
        label: String::new(),
        stimulator: spec.stimulator,
        kind: if muscle { "muscle" } else { "evoked" }.to_owned(),
        amplitude_measure,
        latency_measure,
        baseline_latency_ms: base_latency_ms,
        baseline_amplitude_uv: base_amplitude_uv,
        peaks,
        sweeps: SweepColumns::default(),
    };
    (response, truth)
}

/// Unit artifact of one stimulus, sampled at `fs`: the pulse (≥ 1 sample), then a recovery of opposite sign
/// decaying with `tau_ms`; a TES train repeats it every `isi` samples.
fn artifact_table(pw_us: f64, tau_ms: f64, pulses: u64, isi: u64, fs: f64) -> Vec<f32> {
    let pw = samples(pw_us * 1e-6, fs).max(1);
    let tail = samples(8.0 * tau_ms * 1e-3, fs).max(2);
    let len = (pulses.max(1) - 1) * isi + pw + tail;
    let mut t = vec![0.0f32; len as usize];
    for p in 0..pulses.max(1) {
        let o = p * isi;
        for k in 0..pw {
            t[(o + k) as usize] += 1.0;
        }
        for k in 0..tail {
            let dt = k as f64 / fs * 1e3;
            t[(o + pw + k) as usize] += (-0.6 * (-dt / tau_ms).exp()) as f32;
        }
    }
    t
}

impl Simulator {
    /// A simulator in its initial state (sample index 0).
    pub fn new(config: SimConfig) -> Result<Self, SimError> {
        if !(1..=ionm_core::MAX_CHANNELS).contains(&config.channels) {
            return Err(SimError::Channels(config.channels));
        }
        if !(1_000..=50_000).contains(&config.sample_rate_hz) {
            return Err(SimError::SampleRate(config.sample_rate_hz));
        }
        if config.mains_hz != 50.0 && config.mains_hz != 60.0 {
            return Err(SimError::Mains(config.mains_hz));
        }
        let sc = &config.scenario;
        let fs = f64::from(config.sample_rate_hz);
        let scen_err = |message: String| SimError::Scenario {
            name: sc.name.clone(),
            message,
        };
        let plan = &sc.stimulation;
        if plan.ssep && plan.ssep_rate_hz * 4.0 > fs / 4.0 {
            return Err(scen_err(format!(
                "SSEP rate {} Hz is too high for {fs} Hz sampling",
                plan.ssep_rate_hz
            )));
        }
        let quiet = schedule::TES_QUIET_BEFORE_S + schedule::TES_QUIET_AFTER_S;
        if plan.tes && plan.tes_interval_s <= quiet + f64::from(plan.tes_pulses) * plan.tes_isi_ms * 1e-3 {
            return Err(scen_err(format!(
                "TES interval {} s is too short",
                plan.tes_interval_s
            )));
        }
        let bg = &sc.background;
        let specs: Vec<ChannelSpec> = catalogue().into_iter().take(config.channels).collect();
        let seed = config.seed;

        // Channels: background parameters.
        let mut prng = stream(seed, 6);
        let mut channels = Vec::with_capacity(specs.len());
        let mut channel_truth = Vec::with_capacity(specs.len());
        for (c, spec) in specs.iter().enumerate() {
            let (pink_uv, lf_uv) = spec.group.noise_uv();
            let noise = ChannelNoise::new(
                pink_uv * bg.noise,
                lf_uv * bg.noise,
                AMPLIFIER_NOISE_NV_RTHZ * bg.noise,
                fs,
            );
            let dc = prng.range(-15_000.0, 15_000.0) * bg.dc;
            let mains_amp = prng.range(3.0, 12.0) * bg.mains;
            let mut mains = [0.0f32; 8];
            for (h, rel) in [1.0, 0.05, 0.3, 0.12].into_iter().enumerate() {
                let a = mains_amp * rel * if h == 0 { 1.0 } else { prng.range(0.5, 1.5) };
                let phi = prng.range(0.0, 2.0 * PI);
                mains[2 * h] = (a * phi.cos()) as f32;
                mains[2 * h + 1] = (-a * phi.sin()) as f32;
            }
            let sign = if prng.uniform() < 0.3 { -1.0 } else { 1.0 };
            let ecg = montage::ecg_uv(spec.region) * prng.range(0.6, 1.4) * sign * bg.ecg;
            let mut artifact_uv = [0.0f32; N_CODES];
            for s in Stimulator::NAMED {
                let a = montage::artifact_uv(s, spec.region, spec.side) * prng.range(0.7, 1.3) * bg.artifact;
                let sign = if prng.uniform() < 0.5 { -1.0 } else { 1.0 };
                artifact_uv[code(s)] = (a * sign) as f32;
            }
            channel_truth.push(ChannelTruth {
                index: c,
                label: spec.label.to_owned(),
                group: spec.group,
                description: spec.description.to_owned(),
                responds_to: spec.responses.iter().map(|r| r.stimulator).collect(),
                dc_offset_uv: dc,
                noise_uv_rms_30_1000_hz: noise.design_rms(30.0, 1000.0, fs),
                noise_uv_rms_broadband: noise.design_rms(0.0, fs / 2.0, fs),
                mains_uv: mains_amp,
                ecg_uv: ecg,
            });
            channels.push(Channel {
                rng: stream(seed, 1000 + c as u64),
                off_rng: stream(seed, 2000 + c as u64),
                cautery_rng: stream(seed, 3000 + c as u64),
                noise,
                dc_uv: dc as f32,
                mains,
                ecg_uv: ecg as f32,
                artifact_uv,
                pops: Vec::new(),
                next_pop: 0,
                pop_level: 0.0,
                pop_decay: 0.0,
            });
        }

        // Responses.
        let mut responses = Vec::new();
        let mut response_truth = Vec::new();
        let mut by_stim = vec![Vec::new(); N_CODES];
        for (c, spec) in specs.iter().enumerate() {
            for rs in &spec.responses {
                let (r, mut t) = build_response(c, rs);
                t.label = spec.label.to_owned();
                by_stim[code(rs.stimulator)].push(responses.len());
                responses.push(r);
                response_truth.push(t);
            }
        }
        let active: Vec<Stimulator> = Stimulator::NAMED
            .into_iter()
            .filter(|&s| !by_stim[code(s)].is_empty())
            .collect();
        let schedule = Schedule::new(plan, fs, &active);
        let isi = Schedule::tes_isi_samples(plan, fs);
        let artifact_tables: Vec<Vec<f32>> = (0..N_CODES)
            .map(|k| match Stimulator::from_code(k as u8) {
                Stimulator::Tes => artifact_table(50.0, 0.4, u64::from(plan.tes_pulses), isi, fs),
                Stimulator::LeftEar | Stimulator::RightEar => artifact_table(100.0, 0.1, 1, 1, fs),
                Stimulator::Other(_) => Vec::new(),
                _ => artifact_table(200.0, 0.3, 1, 1, fs),
            })
            .collect();

        // Scenario events.
        let mut sim_mods = Vec::new();
        let mut cautery = Vec::new();
        let mut offs = Vec::new();
        let mut disconnects = Vec::new();
        let mut corrupts = Vec::new();
        let mut events = Vec::new();
        let select = |t: &Target| -> u64 {
            let mut mask = 0u64;
            for (c, spec) in specs.iter().enumerate() {
                let ok = (t.channels.is_empty() || t.channels.iter().any(|l| l == spec.label))
                    && t.group.is_none_or(|g| g == spec.group)
                    && t.stimulator
                        .is_none_or(|s| spec.responses.iter().any(|r| r.stimulator == s));
                if ok {
                    mask |= 1 << c;
                }
            }
            mask
        };
        let labels_of = |mask: u64| -> Vec<String> {
            (0..specs.len())
                .filter(|c| mask >> c & 1 == 1)
                .map(|c| specs[c].label.to_owned())
                .collect()
        };
        let to_index = |s: f64| samples(s, fs);
        for ev in &sc.events {
            let start = to_index(ev.at_s);
            let mut et = EventTruth {
                kind: ev.action.kind().to_owned(),
                onset_s: ev.at_s,
                onset_index: start,
                ramp_s: None,
                duration_s: None,
                end_index: None,
                amplitude_pct: None,
                latency_pct: None,
                latency_ms: None,
                step_uv: None,
                tau_s: None,
                mode: None,
                level_uv: None,
                byte_rate: None,
                group: None,
                stimulator: None,
                channels: Vec::new(),
            };
            let end_of = |d: Option<f64>| d.map_or(u64::MAX, |d| start + to_index(d));
            let mut mask = 0u64;
            match &ev.action {
                Action::Response {
                    target,
                    amplitude_pct,
                    latency_pct,
                    latency_ms,
                    ramp_s,
                } => {
                    let m = sim_mods.len();
                    sim_mods.push(Mod {
                        start,
                        ramp: to_index(*ramp_s),
                        amplitude_pct: *amplitude_pct,
                        latency_pct: *latency_pct,
                        latency_ms: *latency_ms,
                    });
                    let chans = select(target);
                    for r in responses.iter_mut() {
                        if chans >> r.channel & 1 == 1 && target.stimulator.is_none_or(|s| s == r.stimulator)
                        {
                            r.mods.push(m);
                            mask |= 1 << r.channel;
                        }
                    }
                    et.ramp_s = Some(*ramp_s);
                    et.amplitude_pct = Some(*amplitude_pct);
                    et.latency_pct = Some(*latency_pct);
                    et.latency_ms = Some(*latency_ms);
                    et.group = target.group;
                    et.stimulator = target.stimulator;
                }
                Action::Anaesthesia {
                    amplitude_pct,
                    latency_pct,
                    ramp_s,
                } => {
                    let m = sim_mods.len();
                    sim_mods.push(Mod {
                        start,
                        ramp: to_index(*ramp_s),
                        amplitude_pct: *amplitude_pct,
                        latency_pct: *latency_pct,
                        latency_ms: 0.0,
                    });
                    for r in responses.iter_mut() {
                        if specs[r.channel].group == Group::Cortical {
                            r.mods.push(m);
                            mask |= 1 << r.channel;
                        }
                    }
                    et.ramp_s = Some(*ramp_s);
                    et.amplitude_pct = Some(*amplitude_pct);
                    et.latency_pct = Some(*latency_pct);
                    et.group = Some(Group::Cortical);
                }
                Action::Cautery { target, duration_s } => {
                    mask = select(target);
                    cautery.push(Interval {
                        start,
                        end: end_of(Some(*duration_s)),
                        mask,
                    });
                    et.duration_s = Some(*duration_s);
                    et.group = target.group;
                    et.stimulator = target.stimulator;
                }
                Action::Pop {
                    target,
                    step_uv,
                    tau_s,
                } => {
                    mask = select(target);
                    let decay = (-1.0 / (tau_s * fs)).exp();
                    for (c, ch) in channels.iter_mut().enumerate() {
                        if mask >> c & 1 == 1 {
                            ch.pops.push(Pop {
                                start,
                                step_uv: *step_uv,
                                decay,
                            });
                        }
                    }
                    et.step_uv = Some(*step_uv);
                    et.tau_s = Some(*tau_s);
                    et.group = target.group;
                    et.stimulator = target.stimulator;
                }
                Action::ElectrodeOff {
                    target,
                    duration_s,
                    mode,
                    level_uv,
                } => {
                    mask = select(target);
                    let end = end_of(*duration_s);
                    offs.push(OffInterval {
                        start,
                        end,
                        mask,
                        mode: *mode,
                        level_uv: *level_uv as f32,
                    });
                    et.duration_s = *duration_s;
                    et.mode = Some(mode.name().to_owned());
                    et.level_uv = (*mode == OffMode::Flat).then_some(*level_uv);
                    et.group = target.group;
                    et.stimulator = target.stimulator;
                }
                Action::Disconnect { duration_s } => {
                    disconnects.push((start, end_of(Some(*duration_s))));
                    et.duration_s = Some(*duration_s);
                }
                Action::CorruptLink {
                    duration_s,
                    byte_rate,
                } => {
                    corrupts.push((start, end_of(*duration_s), *byte_rate));
                    et.duration_s = *duration_s;
                    et.byte_rate = Some(*byte_rate);
                }
            }
            if let Some(d) = et.duration_s {
                et.end_index = Some(start + to_index(d));
            }
            if matches!(ev.action, Action::Disconnect { .. } | Action::CorruptLink { .. }) {
                mask = 0;
            } else if mask == 0 {
                tracing::warn!(
                    scenario = %sc.name,
                    kind = ev.action.kind(),
                    at_s = ev.at_s,
                    "scenario event selects no channel of this {}-channel montage",
                    specs.len()
                );
            }
            et.channels = labels_of(mask);
            events.push(et);
        }
        for ch in &mut channels {
            ch.pops.sort_by_key(|p| p.start);
        }

        let truth = Truth {
            generator: FIRMWARE_VERSION.to_owned(),
            seed,
            sample_rate_hz: config.sample_rate_hz,
            mains_hz: config.mains_hz,
            gain_nv_per_lsb: GAIN_NV_PER_LSB,
            scenario: ScenarioInfo {
                name: sc.name.clone(),
                description: sc.description.clone(),
                duration_s: sc.duration_s,
            },
            samples_generated: 0,
            channels: channel_truth,
            stimuli: StimulusColumns::default(),
            responses: response_truth,
            events,
        };
        let mut mains_rng = stream(seed, 4);
        let phase = mains_rng.range(0.0, 2.0 * PI);
        Ok(Self {
            fs,
            labels: specs.iter().map(|s| s.label).collect(),
            channels,
            responses,
            by_stim,
            artifact_tables,
            schedule,
            mods: sim_mods,
            cautery,
            offs,
            disconnects,
            corrupts,
            mains: Mains {
                f0: config.mains_hz,
                dev_hz: 0.0,
                phase,
                rng: mains_rng,
                update_every: samples(0.1, fs).max(1),
                fs,
            },
            ecg: Ecg::new(fs, stream(seed, 5)),
            sweep_rng: stream(seed, 3),
            variability: bg.variability,
            sweeps: Vec::with_capacity(64),
            artifacts: Vec::with_capacity(16),
            acc: Vec::new(),
            basis: Vec::new(),
            ecg_buf: Vec::new(),
            new_stims: Vec::with_capacity(16),
            next: 0,
            saturated: 0,
            record_sweeps: true,
            truth,
            config,
        })
    }

    /// What the device declares about itself: 24-bit converter, [`GAIN_NV_PER_LSB`], the montage labels,
    /// [`FIRMWARE_VERSION`], and a session id derived from the seed.
    pub fn device_info(&self) -> DeviceInfo {
        let mut r = stream(self.config.seed, 7);
        DeviceInfo {
            protocol_version: PROTOCOL_VERSION,
            sample_rate_hz: self.config.sample_rate_hz,
            channels: self
                .labels
                .iter()
                .map(|l| ChannelInfo {
                    label: (*l).to_owned(),
                    gain_nv_per_lsb: GAIN_NV_PER_LSB,
                })
                .collect(),
            adc_min: ADC_MIN,
            adc_max: ADC_MAX,
            firmware_version: FIRMWARE_VERSION.to_owned(),
            session_id: (r.next_u64() >> 32) as u32,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Index of the next sample instant [`Simulator::generate`] will produce.
    pub fn next_index(&self) -> SampleIndex {
        self.next
    }

    /// The scenario duration in samples, if the scenario sets one.
    pub fn duration_samples(&self) -> Option<u64> {
        self.config.scenario.duration_s.map(|d| samples(d, self.fs))
    }

    /// The ground truth so far.
    pub fn truth(&self) -> &Truth {
        &self.truth
    }

    /// Whether per-sweep truth (and the stimulus list) is recorded (default on). Turn it off for unbounded runs
    /// that do not need it: the truth then keeps a constant size.
    pub fn set_record_sweeps(&mut self, on: bool) {
        self.record_sweeps = on;
    }

    /// Status since the last call: channels that touched the rails, channels whose electrode is off (at the last
    /// generated sample).
    pub fn status(&mut self) -> DeviceStatus {
        DeviceStatus {
            sample_index: self.next,
            battery_percent: None,
            saturated: std::mem::take(&mut self.saturated),
            impedance_high: self.impedance_high_at(self.next.saturating_sub(1)),
            stimulator_fault: false,
        }
    }

    /// Channels whose electrode is off at sample `index` (bit `c` = channel `c`).
    pub fn impedance_high_at(&self, index: SampleIndex) -> u64 {
        self.offs
            .iter()
            .filter(|o| (o.start..o.end).contains(&index))
            .fold(0, |m, o| m | o.mask)
    }

    /// Link effects at the current index ([`Simulator::next_index`], the first sample of the next block).
    pub fn link(&self) -> LinkState {
        self.link_at(self.next)
    }

    /// Link effects at sample `index`.
    pub fn link_at(&self, index: SampleIndex) -> LinkState {
        LinkState {
            connected: !self.disconnects.iter().any(|&(s, e)| (s..e).contains(&index)),
            corrupt_byte_rate: self
                .corrupts
                .iter()
                .filter(|&&(s, e, _)| (s..e).contains(&index))
                .map(|&(_, _, r)| r)
                .fold(0.0, f64::max),
        }
    }

    /// Onsets of every stimulus of `stimulator` before `end`, computed from the schedule without generating
    /// anything (allocates; for tools and tests).
    pub fn planned_onsets(&self, stimulator: Stimulator, end: SampleIndex) -> Vec<SampleIndex> {
        self.schedule.onsets_before(stimulator, end)
    }

    /// Produces the next `n` sample instants: writes `n × channels` interleaved raw converter values (clamped to
    /// [`ADC_MIN`]..=[`ADC_MAX`]) into `out[..n × channels]` and appends every stimulus whose onset falls in this
    /// range to `stimuli`. Does not allocate once its scratch buffers have grown to the largest `n` used, apart
    /// from the amortised growth of the truth's columns (see [`Simulator::set_record_sweeps`]).
    ///
    /// # Panics
    /// If `out` is shorter than `n × channels`.
    pub fn generate(&mut self, n: usize, out: &mut [i32], stimuli: &mut Vec<StimulusEvent>) {
        let nc = self.channels.len();
        assert!(
            out.len() >= n * nc,
            "generate: out holds {} values, {} × {} needed",
            out.len(),
            n,
            nc
        );
        if n == 0 {
            return;
        }
        let start = self.next;
        let end = start + n as u64;
        if self.acc.len() < n * nc {
            self.acc.resize(n * nc, 0.0);
        }
        if self.basis.len() < n {
            self.basis.resize(n, [0.0; 8]);
            self.ecg_buf.resize(n, 0.0);
        }

        // 1. Stimuli and the sweeps they start.
        self.new_stims.clear();
        self.schedule.collect(start, end, &mut self.new_stims);
        for k in 0..self.new_stims.len() {
            let ev = self.new_stims[k];
            self.start_stimulus(ev);
        }
        stimuli.extend_from_slice(&self.new_stims);

        // 2. Shared waveforms.
        self.mains.fill(start, &mut self.basis[..n]);
        self.ecg.fill(start, &mut self.ecg_buf[..n]);

        // 3. Background, channel by channel (channel-major scratch).
        let basis = &self.basis[..n];
        let ecg = &self.ecg_buf[..n];
        for (c, ch) in self.channels.iter_mut().enumerate() {
            let dst = &mut self.acc[c * n..(c + 1) * n];
            let m = ch.mains;
            for ((d, b), e) in dst.iter_mut().zip(basis).zip(ecg) {
                let noise = ch.noise.step(&mut ch.rng) as f32;
                let mains = m[0] * b[0]
                    + m[1] * b[1]
                    + m[2] * b[2]
                    + m[3] * b[3]
                    + m[4] * b[4]
                    + m[5] * b[5]
                    + m[6] * b[6]
                    + m[7] * b[7];
                *d = noise + mains + ch.ecg_uv * e + ch.dc_uv;
            }
        }

        // 4. Responses.
        let dt_ms = 1000.0 / self.fs;
        for s in &self.sweeps {
            let r = &self.responses[s.resp];
            let dst = &mut self.acc[r.channel * n..(r.channel + 1) * n];
            let (from, to) = (s.onset.max(start), s.end.min(end));
            for i in from..to {
                let t = (i - s.onset) as f64 * dt_ms - s.shift_ms;
                let u = if t <= r.pivot_ms {
                    t
                } else {
                    r.pivot_ms + (t - r.pivot_ms) * s.inv_stretch
                };
                dst[(i - start) as usize] += s.amp * template_at(&r.tables, &s.weights, u);
            }
        }

        // 5. Stimulus artifacts.
        for &(onset, k) in &self.artifacts {
            let table = &self.artifact_tables[k];
            let (from, to) = (onset.max(start), (onset + table.len() as u64).min(end));
            for (c, ch) in self.channels.iter().enumerate() {
                let a = ch.artifact_uv[k];
                if a == 0.0 {
                    continue;
                }
                let dst = &mut self.acc[c * n..(c + 1) * n];
                for i in from..to {
                    dst[(i - start) as usize] += a * table[(i - onset) as usize];
                }
            }
        }

        // 6. Scenario effects.
        self.apply_effects(start, n);

        // 7. Convert, clamp, interleave.
        let scale = 1000.0 / GAIN_NV_PER_LSB as f32;
        let (lo, hi) = (ADC_MIN as f32, ADC_MAX as f32);
        for c in 0..nc {
            let src = &self.acc[c * n..(c + 1) * n];
            let mut sat = false;
            for (i, &v) in src.iter().enumerate() {
                let r = (v * scale).round().clamp(lo, hi) as i32;
                sat |= r <= ADC_MIN || r >= ADC_MAX;
                out[i * nc + c] = r;
            }
            if sat {
                self.saturated |= 1 << c;
            }
        }

        // 8. Retire what has ended.
        self.sweeps.retain(|s| s.end > end);
        let tables = &self.artifact_tables;
        self.artifacts.retain(|&(o, k)| o + tables[k].len() as u64 > end);
        self.next = end;
        self.truth.samples_generated = end;
    }

    /// Starts the sweeps and the artifact of one stimulus, and records its truth.
    fn start_stimulus(&mut self, ev: StimulusEvent) {
        let x = ev.sample_index;
        let k = code(ev.stimulator);
        if self.record_sweeps {
            self.truth.stimuli.sample_index.push(x);
            self.truth.stimuli.stimulator.push(ev.stimulator);
        }
        if !self.artifact_tables[k].is_empty() {
            self.artifacts.push((x, k));
        }
        for j in 0..self.by_stim[k].len() {
            let ri = self.by_stim[k][j];
            let r = &self.responses[ri];
            // Scenario modulation at the onset.
            let mut amp_factor = 1.0f64;
            let mut delta_ms = 0.0f64;
            for &m in &r.mods {
                let m = &self.mods[m];
                if x < m.start {
                    continue;
                }
                let p = if m.ramp == 0 {
                    1.0
                } else {
                    ((x - m.start) as f64 / m.ramp as f64).min(1.0)
                };
                amp_factor *= 1.0 + m.amplitude_pct / 100.0 * p;
                delta_ms += (m.latency_pct / 100.0 * r.base_latency_ms + m.latency_ms) * p;
            }
            let amp_factor = amp_factor.max(0.0);
            // Sweep-to-sweep variability.
            let v = self.variability;
            let cv = r.amplitude_cv * v;
            let sigma = (1.0 + cv * cv).ln().sqrt();
            let z = self.sweep_rng.normal();
            let amp = amp_factor * (sigma * z - 0.5 * sigma * sigma).exp();
            let shift_ms = r.jitter_ms * v * self.sweep_rng.normal();
            let mut weights = [0.0f32; MAX_PHASES];
            weights[0] = 1.0;
            if r.muscle {
                for w in weights.iter_mut().take(r.tables.len()) {
                    *w = (1.0 + r.phase_spread * v * self.sweep_rng.range(-1.0, 1.0)) as f32;
                }
            }
            let span = (r.base_latency_ms - r.pivot_ms).max(0.1);
            let stretch = (1.0 + delta_ms / span).max(0.2);
            let t_end = shift_ms.max(0.0) + r.pivot_ms + (r.len_ms - r.pivot_ms).max(0.0) * stretch;
            let end = x + (t_end / 1000.0 * self.fs).ceil() as u64 + 2;
            if self.record_sweeps {
                let warp = |u: f64| {
                    if u <= r.pivot_ms {
                        u
                    } else {
                        r.pivot_ms + (u - r.pivot_ms) * stretch
                    }
                };
                let (amplitude, latency) = if amp <= 0.0 {
                    (0.0, None)
                } else if r.muscle {
                    let (p2p, onset) = muscle_measure(&r.tables, &weights);
                    (amp * p2p, onset.map(|u| shift_ms + warp(u)))
                } else {
                    (
                        amp * r.base_amplitude_uv,
                        Some(shift_ms + warp(r.base_latency_ms)),
                    )
                };
                let cols = &mut self.truth.responses[ri].sweeps;
                cols.onset.push(x);
                cols.amplitude_uv.push(amplitude as f32);
                cols.latency_ms.push(latency.map(|l| l as f32));
            }
            self.sweeps.push(Sweep {
                resp: ri,
                onset: x,
                end,
                amp: amp as f32,
                weights,
                inv_stretch: 1.0 / stretch,
                shift_ms,
            });
        }
    }

    /// Pops, electrodes off and cautery over `[start, start + n)`.
    fn apply_effects(&mut self, start: u64, n: usize) {
        let end = start + n as u64;
        // Pops: a DC step at onset, then exponential decay, sample by sample.
        for (c, ch) in self.channels.iter_mut().enumerate() {
            let pending = ch.pops.get(ch.next_pop).is_some_and(|p| p.start < end);
            if ch.pop_level == 0.0 && !pending {
                continue;
            }
            let dst = &mut self.acc[c * n..(c + 1) * n];
            for (j, d) in dst.iter_mut().enumerate() {
                let i = start + j as u64;
                while let Some(p) = ch.pops.get(ch.next_pop).filter(|p| p.start <= i) {
                    ch.pop_level += p.step_uv;
                    ch.pop_decay = p.decay;
                    ch.next_pop += 1;
                }
                *d += ch.pop_level as f32;
                ch.pop_level *= ch.pop_decay;
                if ch.pop_level.abs() < 1e-3 {
                    ch.pop_level = 0.0;
                }
            }
        }
        // Electrodes off: the channel shows a flat level, huge mains or huge noise instead of its signal.
        for off in &self.offs {
            let (from, to) = (off.start.max(start), off.end.min(end));
            if from >= to {
                continue;
            }
            for (c, ch) in self.channels.iter_mut().enumerate() {
                if off.mask >> c & 1 == 0 {
                    continue;
                }
                let dst = &mut self.acc[c * n..(c + 1) * n];
                for i in from..to {
                    let j = (i - start) as usize;
                    dst[j] = match off.mode {
                        OffMode::Flat => off.level_uv,
                        OffMode::Mains => {
                            let b = &self.basis[j];
                            8000.0 * b[0] + 1500.0 * b[4] + 150.0 * noise::gauss(&mut ch.off_rng) as f32
                        }
                        OffMode::Noise => 1000.0 * noise::gauss(&mut ch.off_rng) as f32,
                    };
                }
            }
        }
        // Cautery: ±2 V of broadband interference, far beyond the ±201 mV input range.
        for cau in &self.cautery {
            let (from, to) = (cau.start.max(start), cau.end.min(end));
            if from >= to {
                continue;
            }
            for (c, ch) in self.channels.iter_mut().enumerate() {
                if cau.mask >> c & 1 == 0 {
                    continue;
                }
                let dst = &mut self.acc[c * n..(c + 1) * n];
                for i in from..to {
                    dst[(i - start) as usize] += ch.cautery_rng.range(-2.0e6, 2.0e6) as f32;
                }
            }
        }
    }
}
