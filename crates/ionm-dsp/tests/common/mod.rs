//! Helpers shared by the integration tests.
#![allow(dead_code)]

use ionm_core::{ChannelInfo, DeviceInfo, SampleBlock, SampleIndex, Stimulator, StimulusEvent};
use ionm_dsp::{AverageView, DropReason, DspSink, Measurement, SweepView, Verdict};
use std::collections::BTreeMap;

pub const ADC_MIN: i32 = -(1 << 23);
pub const ADC_MAX: i32 = (1 << 23) - 1;

pub fn device(rate: u32, labels: &[&str], gain_nv: u32) -> DeviceInfo {
    DeviceInfo {
        protocol_version: 1,
        sample_rate_hz: rate,
        channels: labels
            .iter()
            .map(|l| ChannelInfo {
                label: (*l).to_string(),
                gain_nv_per_lsb: gain_nv,
            })
            .collect(),
        adc_min: ADC_MIN,
        adc_max: ADC_MAX,
        firmware_version: "test".into(),
        session_id: 1,
    }
}

pub fn stim(sample_index: SampleIndex, stimulator: Stimulator) -> StimulusEvent {
    StimulusEvent {
        sample_index,
        stimulator,
        intensity_tenths: 200,
        pulses: 1,
        pulse_width_us: 200,
    }
}

/// Blocks of `per_block` instants of one channel.
pub fn blocks(first: SampleIndex, raw: &[i32], per_block: usize) -> Vec<SampleBlock> {
    raw.chunks(per_block)
        .enumerate()
        .map(|(k, c)| SampleBlock::from_interleaved(first + (k * per_block) as u64, 1, c).unwrap())
        .collect()
}

/// Reads a fixture written by `tests/data/make_fixtures.py`.
pub fn fixture(name: &str) -> serde_json::Value {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["data"].clone()
}

pub fn f64s(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// The integer test signal of make_fixtures.py (`test_signal`).
pub fn test_signal(n: usize) -> Vec<i32> {
    let mut x: u32 = 2_463_534_242;
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let noise = (x % 2001) as i64 - 1000;
            let saw = ((i * 37) % 4000) as i64 - 2000;
            let step = if (i / 3000) % 2 == 1 { 5000 } else { 0 };
            let spike = if i % 2500 == 100 { 20_000 } else { 0 };
            (300_000 + noise + saw + step + spike) as i32
        })
        .collect()
}

/// An owned copy of one average.
#[derive(Debug, Clone)]
pub struct OwnedAverage {
    pub trace: usize,
    pub sweeps: u32,
    pub mean: Vec<f64>,
    pub measurement: Measurement,
    pub fsp: Option<f64>,
    pub residual_noise_uv: Option<f64>,
}

/// Collects everything (allocates: tests only).
#[derive(Default)]
pub struct Collect {
    pub filtered: BTreeMap<usize, Vec<(SampleIndex, f32)>>,
    pub keep_filtered: bool,
    pub sweeps: Vec<(usize, SampleIndex, SampleIndex, Verdict, Vec<f32>)>,
    pub dropped: Vec<(usize, SampleIndex, DropReason)>,
    pub averages: Vec<OwnedAverage>,
}

impl DspSink for Collect {
    // Without `keep_filtered` the engine may skip filter blocks no sweep needs: every test that does not look
    // at the filtered stream runs that path.
    fn wants_filtered(&self) -> bool {
        self.keep_filtered
    }
    fn filtered(&mut self, stream: usize, first_index: SampleIndex, data: &[f32]) {
        if self.keep_filtered {
            let v = self.filtered.entry(stream).or_default();
            v.extend(data.iter().enumerate().map(|(k, y)| (first_index + k as u64, *y)));
        }
    }
    fn sweep(&mut self, s: &SweepView<'_>) {
        self.sweeps.push((
            s.trace,
            s.stimulus.sample_index,
            s.first_index,
            s.verdict,
            s.data.to_vec(),
        ));
    }
    fn dropped(&mut self, trace: usize, stimulus: &StimulusEvent, reason: DropReason) {
        self.dropped.push((trace, stimulus.sample_index, reason));
    }
    fn average(&mut self, a: &AverageView<'_>) {
        self.averages.push(OwnedAverage {
            trace: a.trace,
            sweeps: a.stats.sweeps,
            mean: a.mean.to_vec(),
            measurement: a.measurement.clone(),
            fsp: a.stats.fsp,
            residual_noise_uv: a.stats.residual_noise_uv,
        });
    }
}
