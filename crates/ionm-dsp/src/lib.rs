//! Signal processing of ionm: from raw ADC samples and stimulus events to sweeps, averages and measurements.
//!
//! Main types:
//!
//! - [`Protocol`] (module [`protocol`]): the TOML protocol file — channels, modality, stimulators, windows,
//!   filters, rejection, averaging, peaks — with built-in presets (`ssep-upper`, `ssep-lower`, `mep`,
//!   `baep`).
//! - [`Engine`] (module [`engine`]): the streaming processor a DSP thread drives with
//!   [`ionm_core::SampleBlock`]s, [`ionm_core::StimulusEvent`]s and [`ionm_core::Gap`]s; results come out
//!   through a [`DspSink`] ([`SweepView`], [`AverageView`] with its [`Measurement`]). No allocation after
//!   start-up.
//! - [`design::FirDesign`] / [`design::design`]: linear-phase band-pass, high-/low-pass and mains-notch FIR
//!   design by the Kaiser-windowed sinc method (reproduces `scipy.signal.firwin`).
//! - [`filter::StreamingFir`]: overlap-save FFT filtering (realfft) of a continuous stream, delay-compensated
//!   so the output at index `i` belongs to input index `i` (zero-phase: latencies are unbiased).
//! - [`average::Averager`]: block and moving averages, ± average, residual noise, Fsp.
//! - [`measure::measure`]: named peaks with sub-sample latency, amplitudes, onset, intervals, the primary
//!   measurement, and reference tracking that keeps peak picking stable in noise; [`measure::measure_baseline`]
//!   measures a baseline of several averages the way later averages are measured against it.

pub mod average;
pub mod design;
pub mod engine;
pub mod filter;
pub mod measure;
pub mod protocol;

pub use engine::{
    AverageView, DropReason, DspSink, Engine, EngineOptions, EngineStats, InputError, RejectReason,
    SetupError, SweepCounts, SweepView, TraceInfo, Verdict,
};
pub use measure::{BaselineMeasurement, Measurement, Reference, measure_baseline};
pub use protocol::{Protocol, ProtocolError};
