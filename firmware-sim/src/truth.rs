//! Ground truth of a simulated run, for scoring the host: what was stimulated when, what each channel should show,
//! and what the scenario did.
//!
//! Long runs stay compact: stimuli and sweeps are stored as columns (parallel arrays), not one object per item.
//! A 16-channel run records ≈ 100 sweep rows per second (≈ 1.5 kB/s of JSON); [`crate::Simulator::set_record_sweeps`]
//! turns the per-sweep columns off for unbounded runs.

use crate::montage::Group;
use ionm_core::{SampleIndex, Stimulator};
use serde::{Deserialize, Serialize};

/// Everything the simulator knows about its output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    /// `firmware-sim <version>`.
    pub generator: String,
    /// Seed of the run.
    pub seed: u64,
    /// Samples per second per channel.
    pub sample_rate_hz: u32,
    /// Mains frequency, Hz.
    pub mains_hz: f64,
    /// Converter gain of every channel, nV per LSB.
    pub gain_nv_per_lsb: u32,
    /// The scenario.
    pub scenario: ScenarioInfo,
    /// Sample instants generated so far.
    pub samples_generated: u64,
    /// One entry per channel, in interleaving order.
    pub channels: Vec<ChannelTruth>,
    /// Every stimulus delivered, in onset order.
    pub stimuli: StimulusColumns,
    /// One entry per (channel, stimulator) response.
    pub responses: Vec<ResponseTruth>,
    /// The scenario events, resolved to sample indices and channels.
    pub events: Vec<EventTruth>,
}

/// Name and description of the scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioInfo {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Duration, s (`None` = unbounded).
    pub duration_s: Option<f64>,
}

/// One channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelTruth {
    /// Position in the interleaved stream.
    pub index: usize,
    /// Montage label.
    pub label: String,
    /// Group.
    pub group: Group,
    /// What the channel is.
    pub description: String,
    /// Stimulators it responds to.
    pub responds_to: Vec<Stimulator>,
    /// Electrode DC offset, µV.
    pub dc_offset_uv: f64,
    /// Design RMS of the background noise (EEG/EMG + amplifier) within 30–1000 Hz, µV.
    pub noise_uv_rms_30_1000_hz: f64,
    /// Design RMS of the background noise over the whole band (0 to fs/2), µV.
    pub noise_uv_rms_broadband: f64,
    /// Amplitude of the mains fundamental, µV.
    pub mains_uv: f64,
    /// Amplitude of the ECG R wave (signed), µV.
    pub ecg_uv: f64,
}

/// Stimuli as columns.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StimulusColumns {
    /// Onset sample index of each stimulus.
    pub sample_index: Vec<SampleIndex>,
    /// Which stimulator fired.
    pub stimulator: Vec<Stimulator>,
}

/// A peak of the noiseless baseline waveform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeakTruth {
    /// Name (e.g. `N20`; `phase k` for muscle responses).
    pub name: String,
    /// Latency after the stimulus, ms.
    pub latency_ms: f64,
    /// Signed value at the peak, µV.
    pub amplitude_uv: f64,
}

/// The response of one channel to one stimulator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseTruth {
    /// Channel index.
    pub channel: usize,
    /// Channel label.
    pub label: String,
    /// Stimulator.
    pub stimulator: Stimulator,
    /// `evoked` (SSEP, BAEP) or `muscle` (TcMEP, M-wave).
    pub kind: String,
    /// How the amplitude is measured, e.g. `N20-P25 peak-to-peak`.
    pub amplitude_measure: String,
    /// How the latency is measured, e.g. `N20 peak` or `onset (5% of max |v|)`.
    pub latency_measure: String,
    /// Latency of the baseline waveform, ms.
    pub baseline_latency_ms: f64,
    /// Amplitude of the baseline waveform, µV.
    pub baseline_amplitude_uv: f64,
    /// Peaks of the baseline waveform (actual extrema of the evoked sum; nominal phases of muscle responses).
    pub peaks: Vec<PeakTruth>,
    /// Per-sweep truth.
    pub sweeps: SweepColumns,
}

/// Per-sweep truth as columns. A sweep whose response is abolished has amplitude 0 and latency `null`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SweepColumns {
    /// Stimulus onset sample index.
    pub onset: Vec<SampleIndex>,
    /// True amplitude of this sweep's noiseless response, µV.
    pub amplitude_uv: Vec<f32>,
    /// True latency of this sweep's noiseless response, ms (NaN, written as `null`, when abolished).
    pub latency_ms: Vec<Option<f32>>,
}

/// A scenario event as applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventTruth {
    /// Event kind (`response`, `anaesthesia`, `cautery`, `pop`, `electrode_off`, `disconnect`, `corrupt_link`).
    pub kind: String,
    /// Onset, s.
    pub onset_s: f64,
    /// Onset sample index.
    pub onset_index: SampleIndex,
    /// Ramp duration, s (response changes).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ramp_s: Option<f64>,
    /// Duration, s.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub duration_s: Option<f64>,
    /// One past the last affected sample index.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub end_index: Option<SampleIndex>,
    /// Amplitude change, %.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub amplitude_pct: Option<f64>,
    /// Latency change, % of the primary latency.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub latency_pct: Option<f64>,
    /// Latency change, ms.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub latency_ms: Option<f64>,
    /// DC step of a pop, µV.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub step_uv: Option<f64>,
    /// Decay constant of a pop, s.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tau_s: Option<f64>,
    /// What an electrode-off channel shows.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mode: Option<String>,
    /// DC level of a flat electrode-off channel, µV.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub level_uv: Option<f64>,
    /// Fraction of bytes corrupted.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub byte_rate: Option<f64>,
    /// Group filter.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub group: Option<Group>,
    /// Stimulator filter.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub stimulator: Option<Stimulator>,
    /// Labels of the affected channels present in this montage.
    pub channels: Vec<String>,
}

impl Truth {
    /// The response of channel `label` to `stimulator`.
    pub fn response(&self, label: &str, stimulator: Stimulator) -> Option<&ResponseTruth> {
        self.responses
            .iter()
            .find(|r| r.label == label && r.stimulator == stimulator)
    }

    /// Serializes to compact JSON.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
}
