//! The typed event stream: what the pipeline tells the terminal, the JSON Lines sink, the recorder and the
//! dashboard. Everything here is in *stream time* (seconds since the start of the stream, from sample indices),
//! never wall-clock time, so that the same input gives the same events, byte for byte.
//!
//! Serialised as one JSON object per line with `"v"` ([`SCHEMA_VERSION`]) and `"type"`; README.md documents the
//! schema.

use crate::{DeviceInfo, DeviceStatus, Gap, LinkEvent, Stimulator};
use serde::{Deserialize, Serialize};

/// Version of the event schema. Additive changes (new event types, new optional fields) keep the version.
pub const SCHEMA_VERSION: u32 = 1;

/// One event of the stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A device (re)declared itself.
    Device {
        /// Stream time, s.
        stream_s: f64,
        /// The device.
        device: DeviceInfo,
    },
    /// The link changed state.
    Link {
        /// Stream time, s.
        stream_s: f64,
        /// What happened.
        link: LinkEvent,
    },
    /// Samples are missing.
    Gap {
        /// Stream time, s.
        stream_s: f64,
        /// Which.
        gap: Gap,
    },
    /// A device status with something flagged.
    Status {
        /// Stream time, s.
        stream_s: f64,
        /// The status.
        status: DeviceStatus,
    },
    /// A new average with its measurements.
    Average(AverageEvent),
    /// A baseline was set (automatically or by the user).
    Baseline(BaselineEvent),
    /// An alarm was raised, cleared or acknowledged.
    Alarm(AlarmEvent),
    /// A surgical or user marker.
    Marker(MarkerEvent),
    /// A user corrected a peak marker.
    Correction(CorrectionEvent),
    /// Periodic counters (every few stream seconds) and, with `final: true`, at the end.
    Stats(StatsEvent),
}

impl Event {
    /// Stream time of the event, s.
    pub fn stream_s(&self) -> f64 {
        match self {
            Self::Device { stream_s, .. }
            | Self::Link { stream_s, .. }
            | Self::Gap { stream_s, .. }
            | Self::Status { stream_s, .. } => *stream_s,
            Self::Average(e) => e.stream_s,
            Self::Baseline(e) => e.stream_s,
            Self::Alarm(e) => e.stream_s,
            Self::Marker(e) => e.stream_s,
            Self::Correction(e) => e.stream_s,
            Self::Stats(e) => e.stream_s,
        }
    }
}

/// A named peak of an average.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeakValue {
    /// Peak name (N20, P25, V, onset…).
    pub name: String,
    /// Latency after the stimulus, ms (`None`: not found).
    pub latency_ms: Option<f64>,
    /// Amplitude at the peak against the pre-stimulus baseline, µV (`None`: not found).
    pub amplitude_uv: Option<f64>,
}

/// A waveform on a regular time base.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Waveform {
    /// Time of the first sample after the stimulus, ms (negative for a pre-stimulus part).
    pub t0_ms: f64,
    /// Sample period, ms.
    pub dt_ms: f64,
    /// Values, µV.
    pub values_uv: Vec<f32>,
}

/// A new average and what was measured on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AverageEvent {
    /// Stream time of the last stimulus in the average, s.
    pub stream_s: f64,
    /// Trace (channel × stimulator) name, unique in the protocol.
    pub trace: String,
    /// Device channel label.
    pub channel: String,
    /// Stimulator.
    pub stimulator: Stimulator,
    /// Modality (`ssep`, `mep`, `baep`, …).
    pub modality: String,
    /// 0 for the trace's first average, then 1, 2, …
    pub sequence: u64,
    /// Sweeps in the average.
    pub sweeps: u64,
    /// Sweeps rejected since the trace's previous average.
    pub rejected: u64,
    /// Sweeps that could not be made (gaps) since the previous average.
    pub dropped: u64,
    /// Named peaks.
    pub peaks: Vec<PeakValue>,
    /// Primary amplitude (e.g. N20–P25 peak-to-peak), µV.
    pub amplitude_uv: Option<f64>,
    /// Primary latency (e.g. N20), ms.
    pub latency_ms: Option<f64>,
    /// Amplitude / baseline amplitude.
    pub amplitude_ratio: Option<f64>,
    /// Latency / baseline latency.
    pub latency_ratio: Option<f64>,
    /// Fsp (Elberling & Don) of the average.
    pub fsp: Option<f64>,
    /// Residual noise from the ± average, µV RMS.
    pub residual_noise_uv: Option<f64>,
    /// Why the clinical criteria were not applied to this average (a technical alarm on its channel, no
    /// baseline yet…); `None` when they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended: Option<String>,
    /// The average itself, when the sink asks for waveforms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waveform: Option<Waveform>,
}

/// How a baseline came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BaselineOrigin {
    /// The first average(s) that passed the quality gate.
    Automatic,
    /// The user asked for it.
    User,
}

/// A baseline of one trace. A new one never silently replaces an old one: both appear in the stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineEvent {
    /// Stream time, s.
    pub stream_s: f64,
    /// Trace name.
    pub trace: String,
    /// 1 for the first baseline of the trace, then 2, 3, …
    pub number: u32,
    /// Why.
    pub origin: BaselineOrigin,
    /// Sweeps behind it.
    pub sweeps: u64,
    /// Primary amplitude, µV.
    pub amplitude_uv: Option<f64>,
    /// Primary latency, ms.
    pub latency_ms: Option<f64>,
    /// Fsp of the baseline average.
    pub fsp: Option<f64>,
    /// Residual noise, µV.
    pub residual_noise_uv: Option<f64>,
    /// The average this baseline was replaced by, if any (stream time of the previous one).
    pub replaces_s: Option<f64>,
    /// The waveform, when the sink asks for waveforms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waveform: Option<Waveform>,
}

/// Clinical alarms concern the patient; technical ones the recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmClass {
    /// A change of the response against baseline.
    Clinical,
    /// A problem with the signal or the equipment.
    Technical,
}

/// What an alarm is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    /// Amplitude at or below the threshold ratio of baseline.
    AmplitudeDrop,
    /// Latency at or above the threshold ratio of baseline (or + ms for BAEP).
    LatencyIncrease,
    /// No response above the noise.
    ResponseLost,
    /// Evidence of change accumulated by a sequential detector.
    ChangeDetected,
    /// No data from the device.
    SignalLost,
    /// Too many sweeps rejected recently.
    Noisy,
    /// The channel is flat or the electrode is off.
    ElectrodeOff,
    /// The converter is saturating.
    Saturation,
    /// Many CRC errors or lost frames on the link.
    LinkErrors,
    /// The host fell behind and dropped data.
    Overrun,
}

impl AlarmKind {
    /// The class of this kind.
    pub fn class(self) -> AlarmClass {
        match self {
            Self::AmplitudeDrop | Self::LatencyIncrease | Self::ResponseLost | Self::ChangeDetected => {
                AlarmClass::Clinical
            }
            _ => AlarmClass::Technical,
        }
    }
}

/// Life cycle of an alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmState {
    /// The criterion was met (and confirmed).
    Raised,
    /// The user acknowledged it (it stays active until cleared).
    Acknowledged,
    /// The criterion is no longer met (with hysteresis).
    Cleared,
}

/// An alarm transition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmEvent {
    /// Stream time, s.
    pub stream_s: f64,
    /// Unique id of this alarm (raised, acknowledged and cleared share it).
    pub id: u64,
    /// Trace name, or the channel label for channel-wide technical alarms; `None` for device-wide ones.
    pub trace: Option<String>,
    /// What.
    pub kind: AlarmKind,
    /// Clinical or technical.
    pub class: AlarmClass,
    /// Raised, acknowledged or cleared.
    pub state: AlarmState,
    /// The measured value (a ratio, ms, a fraction…).
    pub value: Option<f64>,
    /// The threshold it was compared with.
    pub threshold: Option<f64>,
    /// All cortical traces changed together while peripheral controls did not: anaesthesia or blood pressure
    /// is the likely cause rather than a focal injury.
    pub systemic: bool,
    /// The detector that raised it (`block`, `sequential`, `technical`).
    pub detector: String,
    /// A sentence for the terminal and the log.
    pub message: String,
}

/// Surgical steps offered as one-click markers.
pub const SURGICAL_MARKERS: [&str; 7] = [
    "incision",
    "exposure",
    "instrumentation",
    "correction",
    "distraction",
    "closure",
    "baseline",
];

/// A surgical or user marker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarkerEvent {
    /// Stream time, s.
    pub stream_s: f64,
    /// One of [`SURGICAL_MARKERS`] or `note`.
    pub kind: String,
    /// Free text.
    pub text: String,
}

/// A user's correction of a peak marker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CorrectionEvent {
    /// Stream time, s.
    pub stream_s: f64,
    /// Trace name.
    pub trace: String,
    /// Average sequence number corrected.
    pub sequence: u64,
    /// Peak name.
    pub peak: String,
    /// Corrected latency, ms.
    pub latency_ms: f64,
    /// Corrected amplitude, µV.
    pub amplitude_uv: f64,
}

/// Counters derived from the stream only (deterministic).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct StatsEvent {
    /// Stream time, s.
    pub stream_s: f64,
    /// True for the last record of a run.
    #[serde(rename = "final")]
    pub is_final: bool,
    /// Sample instants processed.
    pub samples: u64,
    /// Stimuli processed.
    pub stimuli: u64,
    /// Gaps.
    pub gaps: u64,
    /// Samples missing in gaps.
    pub gap_samples: u64,
    /// Link counters, in the final record only (they are counted by the reader thread, whose timing relative
    /// to the stream is not deterministic during a run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<LinkTotals>,
    /// Blocks that continued the stream without a gap where one was needed (must be 0).
    pub discontinuities: u64,
    /// Sweeps accepted, all traces.
    pub sweeps_accepted: u64,
    /// Sweeps rejected, all traces.
    pub sweeps_rejected: u64,
    /// Sweeps dropped (gaps), all traces.
    pub sweeps_dropped: u64,
    /// Averages made.
    pub averages: u64,
    /// Alarms raised (all kinds).
    pub alarms_raised: u64,
    /// The current evidence of change of the sequential detector, per trace it monitors (absent when it does
    /// not run): lets a display show evidence rising before a block average would. Added in schema 1
    /// (additive).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<EvidenceValue>,
}

/// A detector's evidence of change on one trace at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct EvidenceValue {
    /// Trace name.
    pub trace: String,
    /// Detector (`sequential`).
    pub detector: String,
    /// Evidence of an amplitude drop (CUSUM statistic, standard deviations of one sweep's amplitude).
    pub evidence: f64,
    /// The alarm threshold of `evidence`.
    pub threshold: f64,
    /// The CUSUM's reference value `k` (standard deviations).
    pub reference: f64,
    /// s.d. of one sweep's amplitude estimate, baseline units (the per-sweep noise the detector measured).
    pub sigma: f64,
    /// Recent amplitude (mean of ≈ 32 sweeps), baseline units (1 = baseline).
    pub amplitude: f64,
    /// Latest latency shift estimate from a short average, ms (positive: later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_shift_ms: Option<f64>,
    /// s.d. of one short average's latency estimate, ms (measured at calibration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_sd_ms: Option<f64>,
    /// Sweeps per short average of the latency estimate.
    pub latency_block: u32,
    /// Evidence of a latency increase (CUSUM of the latency matched filter, standard deviations of one sweep's
    /// projection; 0 while not running).
    pub latency_evidence: f64,
    /// Its threshold (0 while not running).
    pub latency_threshold: f64,
    /// The latency filter's separation: standard deviations of one sweep's projection that the design latency
    /// shift moves it (absent while not calibrated). Added in schema 1 (additive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_separation: Option<f64>,
    /// An alarm of this detector is active on the trace.
    pub active: bool,
    /// The detector calibrated but found the trace's single sweeps too noisy to show even a lost response
    /// sooner than the block averages: it scores nothing on this trace until the next re-baseline (the block detector still
    /// does). `evidence` and `threshold` are then 0.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insensitive: bool,
}

/// What the reader counted over a whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct LinkTotals {
    /// Bytes read.
    pub bytes: u64,
    /// Frames with a valid CRC.
    pub frames: u64,
    /// CRC errors.
    pub crc_errors: u64,
    /// Bytes discarded while resynchronising.
    pub bytes_discarded: u64,
    /// Frames lost (sequence numbers).
    pub frames_lost: u64,
    /// Frames rejected as malformed or inconsistent.
    pub frames_rejected: u64,
    /// Ring-buffer overruns.
    pub overruns: u64,
    /// Reconnections.
    pub reconnects: u64,
    /// Times the signal was lost.
    pub signal_lost: u64,
}
