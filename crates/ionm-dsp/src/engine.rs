//! The streaming processor: raw sample blocks and stimuli in; filtered stream, sweeps, averages and
//! measurements out, through a [`DspSink`].
//!
//! Data path per device channel used by the protocol:
//!
//! ```text
//! raw i32 ─► raw ring (rejection: rails, flatness)
//!        └─► µV f32 − segment's first sample ─► staging ─(blanking)─► StreamingFir ─► filtered ring
//! stimulus ─► blank queue; pending sweep per trace ─► sweep ─► rejection ─► Averager ─► measure
//! ```
//!
//! - **Segments.** A [`Gap`] (or a block that does not follow the previous one) ends the segment: the filters
//!   are flushed with the last sample held, sweeps that the gap spoils are dropped ([`DropReason::Gap`]), and
//!   the next block starts fresh filters. A sweep is kept only if its window lies at least the filter's delay
//!   `D` inside the segment on both sides, so no sweep ever contains output computed across a gap or from the
//!   extrapolated ends.
//! - **Blanking.** Samples are held back `stimulus_lag_ms` + the pre-stimulus blanking before they reach the
//!   filters, so a stimulus event may arrive that late and its window (default −0.5…+2 ms) is still replaced
//!   by a straight line between the samples on either side before filtering. A device that declares the
//!   stimulus lead (device-info revision ≥ [`ionm_wire::DEVICE_REVISION_STIMULUS_LEAD`]) sends every stimulus
//!   1 ms before its samples: nothing is held back for it (only a pre-blanking longer than 1 ms). A stimulus
//!   that comes later than allowed cannot be blanked; its sweeps are dropped as [`DropReason::Late`].
//! - **Latency.** A sweep is emitted when the filtered output has reached its window end. Samples go to the
//!   filters in batches and filters transform blocks of `L` samples for throughput; call
//!   [`Engine::flush_ready`] whenever the input queue is empty (live data) so that a sweep is out as soon as
//!   `window end + D + hold` has arrived (only the streams where that completes a sweep are flushed, with the
//!   shortest FFT that holds the partial block). During replay, don't: full blocks are several times cheaper.
//! - **Skipped blocks.** If the sink does not want the continuous filtered stream
//!   ([`DspSink::wants_filtered`]), filter blocks that no pending sweep overlaps are not transformed.
//! - **No allocation** after [`Engine::new`]: every ring, queue, sweep, average and measurement buffer is
//!   sized there (proved by `tests/no_alloc.rs` with a counting allocator).
//!
//! Numbers: stream samples are `f32` µV relative to the segment's first raw sample (the filters' DC gain
//! times that offset is added back on output), so a large electrode offset costs no precision; averages and
//! measurements are `f64`.

use crate::average::{AverageStats, Averager};
use crate::design::{DesignError, FilterSpec, design};
use crate::filter::{FftWork, FirKernel, KernelError, PairSide, StreamingFir, push_pair_lazy};
use crate::measure::{MeasureSpec, Measurement, Reference, Timebase, measure};
use crate::protocol::{BlankingSpec, ChannelRef, ChannelSpec, Modality, Protocol, RejectSpec, Site};
use ionm_core::{
    Acquired, DeviceInfo, Gap, MAX_BLOCK_VALUES, MAX_CHANNELS, SampleBlock, SampleIndex, Stimulator,
    StimulusEvent,
};
use realfft::RealFftPlanner;
use std::collections::VecDeque;
use std::sync::Arc;

/// Why a sweep was rejected (it was complete, but bad).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// A raw sample touched the converter's rails.
    Saturated,
    /// The raw sweep's peak-to-peak is at most the flat threshold.
    Flat,
    /// The filtered sweep's peak-to-peak exceeds the threshold.
    PeakToPeak,
}

/// Why a sweep could not be made at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Its window (± the filter's delay) overlaps missing data or the start or end of the stream.
    Gap,
    /// The stimulus arrived too late to blank it, or after its data had left the buffers.
    Late,
    /// Too many stimuli were waiting for their data; the oldest was dropped.
    Overflow,
}

/// Accepted or rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted into the average.
    Accepted,
    /// Rejected.
    Rejected(RejectReason),
}

/// Sweep counts of one trace since the engine started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SweepCounts {
    /// Accepted.
    pub accepted: u64,
    /// Rejected: rails.
    pub saturated: u64,
    /// Rejected: flat.
    pub flat: u64,
    /// Rejected: peak-to-peak.
    pub peak_to_peak: u64,
    /// Dropped: gap.
    pub gap: u64,
    /// Dropped: late.
    pub late: u64,
    /// Dropped: overflow.
    pub overflow: u64,
}

impl SweepCounts {
    /// All rejected.
    pub fn rejected(&self) -> u64 {
        self.saturated + self.flat + self.peak_to_peak
    }

    /// All dropped.
    pub fn dropped(&self) -> u64 {
        self.gap + self.late + self.overflow
    }
}

/// Engine-wide counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EngineStats {
    /// Sample instants taken in.
    pub samples: u64,
    /// Explicit gaps.
    pub gaps: u64,
    /// Blocks that did not follow the previous one without a gap (handled as a gap).
    pub implicit_gaps: u64,
    /// Sample instants received twice (ignored).
    pub duplicate_samples: u64,
    /// Stimulus events received.
    pub stimuli: u64,
    /// Stimulus events with no trace for their stimulator.
    pub unrouted_stimuli: u64,
    /// Stimuli that came too late to be blanked.
    pub late_blanks: u64,
    /// Samples released to the filters before a pending blank could be applied because the buffers were full.
    pub forced_releases: u64,
    /// Filter blocks transformed (all streams).
    pub filter_blocks: u64,
    /// Filter blocks skipped because no sweep needed them and the sink did not want the filtered stream.
    pub filter_blocks_skipped: u64,
    /// Transforms that filtered a block of two streams at once (a pair in step: `filter::push_pair_lazy`).
    pub filter_pair_blocks: u64,
}

/// Static description of one trace (protocol channel × stimulator).
#[derive(Debug, Clone, PartialEq)]
pub struct TraceInfo {
    /// Index of the protocol channel.
    pub channel: usize,
    /// Display name (the channel's name, plus the stimulator when the channel has several).
    pub name: String,
    /// Device channel index.
    pub device_channel: usize,
    /// Device channel label.
    pub label: String,
    /// Stimulator.
    pub stimulator: Stimulator,
    /// Modality.
    pub modality: Modality,
    /// Site.
    pub site: Option<Site>,
    /// Time base of sweeps and averages.
    pub timebase: Timebase,
    /// Samples per sweep.
    pub window_len: usize,
    /// Filtered stream index (see [`DspSink::filtered`]).
    pub stream: usize,
    /// Filter taps.
    pub taps: usize,
    /// Filter group delay, ms (compensated).
    pub delay_ms: f64,
    /// FFT length of the filter.
    pub fft_len: usize,
    /// Measurement spec (names of peaks and amplitudes, primary).
    pub measure: MeasureSpec,
}

/// One sweep, handed to [`DspSink::sweep`].
#[derive(Debug, Clone, Copy)]
pub struct SweepView<'a> {
    /// Trace index.
    pub trace: usize,
    /// The trace's description.
    pub info: &'a TraceInfo,
    /// The stimulus.
    pub stimulus: &'a StimulusEvent,
    /// Absolute index of `data[0]`.
    pub first_index: SampleIndex,
    /// Filtered, delay-compensated samples, µV.
    pub data: &'a [f32],
    /// Accepted or why not.
    pub verdict: Verdict,
    /// The trace's counts, this sweep included.
    pub counts: SweepCounts,
}

/// One average with its measurement, handed to [`DspSink::average`].
#[derive(Debug, Clone, Copy)]
pub struct AverageView<'a> {
    /// Trace index.
    pub trace: usize,
    /// The trace's description.
    pub info: &'a TraceInfo,
    /// 0 for the trace's first average, then 1, 2, …
    pub sequence: u64,
    /// Sample index of the last stimulus in the average.
    pub last_stimulus: SampleIndex,
    /// The average, µV.
    pub mean: &'a [f64],
    /// The ± average, µV.
    pub plus_minus: Option<&'a [f64]>,
    /// Sweeps, Fsp, residual noise.
    pub stats: AverageStats,
    /// Peaks, amplitudes, primary measurement.
    pub measurement: &'a Measurement,
    /// The trace's counts.
    pub counts: SweepCounts,
}

/// Receives the engine's output. Every method has an empty default.
pub trait DspSink {
    /// Delay-compensated filtered samples of stream `stream`, starting at absolute index `first_index`.
    /// Called only when [`DspSink::wants_filtered`] says so.
    fn filtered(&mut self, stream: usize, first_index: SampleIndex, data: &[f32]) {
        let _ = (stream, first_index, data);
    }
    /// Whether this sink wants the whole filtered stream ([`DspSink::filtered`]). When it does not, the engine
    /// filters only the blocks that a sweep needs (for sparse stimuli such as TcMEP, most are skipped); the
    /// sweeps are the same either way. Default: true.
    fn wants_filtered(&self) -> bool {
        true
    }
    /// A complete sweep, accepted or rejected.
    fn sweep(&mut self, sweep: &SweepView<'_>) {
        let _ = sweep;
    }
    /// A sweep that could not be made.
    fn dropped(&mut self, trace: usize, stimulus: &StimulusEvent, reason: DropReason) {
        let _ = (trace, stimulus, reason);
    }
    /// A new average.
    fn average(&mut self, average: &AverageView<'_>) {
        let _ = average;
    }
}

/// A sink that ignores everything (and so lets the engine skip filter blocks no sweep needs).
impl DspSink for () {
    fn wants_filtered(&self) -> bool {
        false
    }
}

/// Why the engine could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SetupError {
    /// Sample rate outside 100 Hz…200 kHz.
    #[error("sample rate {0} Hz is not supported (100 Hz…200 kHz)")]
    SampleRate(u32),
    /// No channels, or more than [`MAX_CHANNELS`].
    #[error("the device declares {0} channels (1…{MAX_CHANNELS} supported)")]
    ChannelCount(usize),
    /// A protocol channel names a device channel that does not exist.
    #[error(
        "channel `{channel}` (protocol line {line}): the device has no channel {wanted} (it has: {available})"
    )]
    UnknownChannel {
        /// Protocol channel name.
        channel: String,
        /// Its line in the protocol file.
        line: usize,
        /// The label or index asked for.
        wanted: String,
        /// The device's labels.
        available: String,
    },
    /// A filter could not be designed at the device's sample rate.
    #[error("channel `{channel}` (protocol line {line}): filter: {source}")]
    Filter {
        /// Protocol channel name.
        channel: String,
        /// Its line.
        line: usize,
        /// Why.
        source: DesignError,
    },
    /// A kernel could not be prepared.
    #[error("filter kernel: {0}")]
    Kernel(#[from] KernelError),
    /// A window or average too small or too large.
    #[error("channel `{channel}` (protocol line {line}): {what}")]
    Size {
        /// Protocol channel name.
        channel: String,
        /// Its line.
        line: usize,
        /// What.
        what: String,
    },
}

/// Bad input on the data path. The engine stays usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// A block with another channel count than the device's.
    #[error("block has {got} channels, the device {expected}")]
    ChannelCount {
        /// The device's.
        expected: usize,
        /// The block's.
        got: usize,
    },
    /// A block lying wholly before data already received (ignored).
    #[error("block at {first_index} lies before sample {expected}, already received")]
    Duplicate {
        /// The block's first index.
        first_index: SampleIndex,
        /// The next index expected.
        expected: SampleIndex,
    },
    /// A device description that does not fit this engine (rebuild it).
    #[error("the device changed (channels or sample rate): build a new engine")]
    DeviceChanged,
    /// A block that lacks channels the protocol uses (the source did not decode them; ignored).
    #[error("block at {first_index} lacks channels the protocol uses (mask {missing:#x}): not decoded")]
    NotDecoded {
        /// The block's first index.
        first_index: SampleIndex,
        /// The device channels used and not decoded (bit `c`: channel `c`).
        missing: u64,
    },
}

/// Options that are not part of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineOptions {
    /// FFT length for every filter (`None`: chosen per filter).
    pub fft_len: Option<usize>,
    /// Stimuli that may wait for their data, per trace.
    pub pending_capacity: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            fft_len: None,
            pending_capacity: 1024,
        }
    }
}

struct DevChannel {
    index: usize,
    gain_uv: f64,
    dc_ref: i32,
    raw: Vec<i32>,
    staging: Vec<f32>,
}

struct Stream {
    dev: usize,
    spec: FilterSpec,
    fir: StreamingFir,
    delay: u64,
    dc_gain: f64,
    dc_offset: f32,
    out: Vec<f32>,
    out_end: u64,
    /// The traces cut from this stream.
    traces: Vec<usize>,
    /// Blocks no pending sweep needs may be skipped: the filter's look-ahead covers the longest pre-stimulus
    /// part of its traces' windows, so every stimulus that could need a block is known when it is transformed.
    skippable: bool,
}

/// What to do with every stream's filter (see `Engine::run_filters`).
#[derive(Clone, Copy)]
enum FirOp {
    /// Feed the staged samples up to this index.
    Push(u64),
    /// Transform the partial block now.
    Flush,
    /// Transform the partial block now if it is long and a sweep still waits for the stream's output.
    PreFlush,
    /// End the segment.
    Finish,
}

struct Trace {
    info: TraceInfo,
    dev: usize,
    a: i64,
    b: i64,
    reject: RejectSpec,
    pending: VecDeque<(StimulusEvent, bool)>,
    sweep: Vec<f32>,
    averager: Averager,
    measurement: Measurement,
    reference: Option<Reference>,
    counts: SweepCounts,
    sequence: u64,
}

#[derive(Clone, Copy)]
struct Blank {
    from: u64,
    to: u64,
}

/// The streaming processor. See the [module docs](self).
pub struct Engine {
    fs: f64,
    nc: usize,
    adc_min: i32,
    adc_max: i32,
    session: u32,
    devch: Vec<DevChannel>,
    /// Bit `c` set: device channel `c` is used (a block must have it decoded).
    used: u64,
    streams: Vec<Stream>,
    /// The streams as they are filtered: two that share a kernel go through one complex FFT
    /// ([`push_pair_lazy`]), the rest alone.
    units: Vec<(usize, Option<usize>)>,
    traces: Vec<Trace>,
    work: FftWork,
    ring_mask: u64,
    stage_mask: u64,
    segment: Option<u64>,
    fresh: bool,
    raw_end: u64,
    released: u64,
    blanks: VecDeque<Blank>,
    blank_cap: usize,
    flags: Vec<u8>,
    blanking: BlankingSpec,
    /// Samples currently held back from the filters (`pre_hold` or `lag_hold`, see [`hold_for`]).
    hold: u64,
    /// The pre-stimulus blanking, samples.
    pre_hold: u64,
    /// `stimulus_lag_ms` + the pre-stimulus blanking, samples.
    lag_hold: u64,
    stats: EngineStats,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("sample_rate_hz", &self.fs)
            .field("traces", &self.traces.len())
            .field("streams", &self.streams.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Samples released to the filters at a time when nobody waits for them (see `Engine::advance`).
const RELEASE_BATCH: u64 = 1024;
/// Live flushes keep a stream's partial block below about this many samples while a sweep waits for it.
const PRE_FLUSH_MIN: usize = 512;

fn ms_to_samples(ms: f64, fs: f64) -> i64 {
    (ms * fs / 1000.0).round() as i64
}

impl Engine {
    /// Builds the engine for `protocol` on `device` with default options.
    pub fn new(protocol: &Protocol, device: &DeviceInfo) -> Result<Self, SetupError> {
        Self::with_options(protocol, device, EngineOptions::default())
    }

    /// Builds the engine. All memory the data path needs is allocated here.
    pub fn with_options(
        protocol: &Protocol,
        device: &DeviceInfo,
        options: EngineOptions,
    ) -> Result<Self, SetupError> {
        let rate = device.sample_rate_hz;
        if !(100..=200_000).contains(&rate) {
            return Err(SetupError::SampleRate(rate));
        }
        let fs = f64::from(rate);
        let nc = device.n_channels();
        if nc == 0 || nc > MAX_CHANNELS {
            return Err(SetupError::ChannelCount(nc));
        }
        let mut planner = RealFftPlanner::<f32>::new();
        let mut complex_planner = rustfft::FftPlanner::<f32>::new();
        let mut kernels: Vec<(FilterSpec, Arc<FirKernel>)> = Vec::new();
        let mut devch: Vec<DevChannel> = Vec::new();
        let mut streams: Vec<Stream> = Vec::new();
        let mut traces: Vec<Trace> = Vec::new();
        let mut work = FftWork::new();

        for (ci, ch) in protocol.channels.iter().enumerate() {
            let dev_index = resolve(ch, device)?;
            let dev = match devch.iter().position(|d| d.index == dev_index) {
                Some(p) => p,
                None => {
                    devch.push(DevChannel {
                        index: dev_index,
                        gain_uv: f64::from(device.channels[dev_index].gain_nv_per_lsb) * 1e-3,
                        dc_ref: 0,
                        raw: Vec::new(),
                        staging: Vec::new(),
                    });
                    devch.len() - 1
                }
            };
            let kernel = match kernels.iter().find(|(s, _)| *s == ch.filter) {
                Some((_, k)) => k.clone(),
                None => {
                    let d = design(&ch.filter, fs).map_err(|source| SetupError::Filter {
                        channel: ch.name.clone(),
                        line: ch.line,
                        source,
                    })?;
                    let mut k = FirKernel::new(&d, options.fft_len, &mut planner)?;
                    k.enable_pairs(&mut complex_planner);
                    let k = Arc::new(k);
                    work.reserve(&k);
                    kernels.push((ch.filter, k.clone()));
                    k
                }
            };
            let stream = match streams.iter().position(|s| s.dev == dev && s.spec == ch.filter) {
                Some(p) => p,
                None => {
                    streams.push(Stream {
                        dev,
                        spec: ch.filter,
                        delay: kernel.delay() as u64,
                        dc_gain: kernel.dc_gain(),
                        fir: StreamingFir::new(kernel.clone()),
                        dc_offset: 0.0,
                        out: Vec::new(),
                        out_end: 0,
                        traces: Vec::new(),
                        skippable: true,
                    });
                    streams.len() - 1
                }
            };
            let size_err = |what: String| SetupError::Size {
                channel: ch.name.clone(),
                line: ch.line,
                what,
            };
            let a = ms_to_samples(ch.window_ms.0, fs);
            let b = ms_to_samples(ch.window_ms.1, fs);
            let w = (b - a).max(0) as usize;
            if w < 3 {
                return Err(size_err(format!(
                    "the window holds {w} samples at {fs} Hz (at least 3)"
                )));
            }
            if w > 1 << 18 {
                return Err(size_err(format!(
                    "the window holds {w} samples (at most {})",
                    1 << 18
                )));
            }
            if matches!(ch.average.mode, crate::average::AverageMode::Moving { .. })
                && (ch.average.sweeps as usize).saturating_mul(w) > 1 << 26
            {
                return Err(size_err(
                    "moving average of sweeps × window > 2^26 samples".into(),
                ));
            }
            let tb = Timebase {
                start_offset: a,
                sample_rate_hz: fs,
            };
            for &stim in &ch.stimulators {
                let st = &mut streams[stream];
                st.traces.push(traces.len());
                st.skippable &= st.delay as i64 >= -a;
                let quality = ch
                    .quality_ms
                    .or_else(|| {
                        let start = protocol.blanking.window_for(stim).map_or(0.0, |w| w.1.max(0.0));
                        Some((start.max(ch.window_ms.0), ch.window_ms.1))
                    })
                    .map(|(q0, q1)| {
                        let i0 = (ms_to_samples(q0, fs) - a).clamp(0, w as i64) as usize;
                        let i1 = (ms_to_samples(q1, fs) - a).clamp(0, w as i64) as usize;
                        (i0, i1)
                    })
                    .unwrap_or((0, w));
                let name = if ch.stimulators.len() > 1 {
                    format!("{} ({stim})", ch.name)
                } else {
                    ch.name.clone()
                };
                traces.push(Trace {
                    info: TraceInfo {
                        channel: ci,
                        name,
                        device_channel: dev_index,
                        label: device.channels[dev_index].label.clone(),
                        stimulator: stim,
                        modality: ch.modality,
                        site: ch.site,
                        timebase: tb,
                        window_len: w,
                        stream,
                        taps: kernel.taps(),
                        delay_ms: kernel.delay() as f64 * 1000.0 / fs,
                        fft_len: kernel.fft_len(),
                        measure: ch.measure.clone(),
                    },
                    dev,
                    a,
                    b,
                    reject: ch.reject,
                    pending: VecDeque::with_capacity(options.pending_capacity.max(1)),
                    sweep: vec![0.0; w],
                    averager: Averager::new(ch.average, w, quality),
                    measurement: Measurement::for_spec(&ch.measure),
                    reference: None,
                    counts: SweepCounts::default(),
                    sequence: 0,
                });
            }
        }

        // Buffer sizes. `hold`: samples kept from the filters so that late stimuli can still be blanked.
        let windows = std::iter::once(protocol.blanking.window_ms)
            .chain(protocol.blanking.per_stimulator.iter().map(|p| p.1))
            .flatten();
        let max_pre = windows.map(|(pre, _)| -ms_to_samples(pre, fs)).max().unwrap_or(0);
        // Train extension is capped so that no blank lasts longer than MAX_MS.
        let max_blank = ms_to_samples(BlankingSpec::MAX_MS, fs) + 2;
        let pre_hold = max_pre.max(0) as u64;
        let lag_hold = ms_to_samples(protocol.stimulus_lag_ms, fs).max(0) as u64 + pre_hold;
        let hold = hold_for(device, pre_hold, lag_hold);
        // Sized for the longer hold, so that a device description that withdraws the lead needs no new memory.
        let stage =
            (lag_hold as usize + RELEASE_BATCH as usize + max_blank as usize + 2 * MAX_BLOCK_VALUES + 64)
                .next_power_of_two();
        let max_w = traces.iter().map(|t| t.info.window_len).max().unwrap_or(0);
        let max_d = streams.iter().map(|s| s.delay as usize).max().unwrap_or(0);
        let max_l = streams
            .iter()
            .map(|s| s.fir.kernel().block_len())
            .max()
            .unwrap_or(0);
        let ring =
            (max_w + max_d + lag_hold as usize + max_l + stage + MAX_BLOCK_VALUES + 64).next_power_of_two();
        for d in &mut devch {
            d.raw = vec![0; ring];
            d.staging = vec![0.0; stage];
        }
        for s in &mut streams {
            s.out = vec![0.0; ring];
        }
        // Streams that share a kernel go through the filters two by two: all streams get the same samples at
        // the same time, so a pair stays in step until a live flush transforms one without the other (see
        // `run_filters`).
        let mut units: Vec<(usize, Option<usize>)> = Vec::new();
        let mut alone: Vec<usize> = Vec::new();
        for (i, st) in streams.iter().enumerate() {
            let partner = alone
                .iter()
                .position(|&j| Arc::ptr_eq(streams[j].fir.kernel(), st.fir.kernel()));
            match partner {
                Some(p) if st.fir.kernel().pairs_enabled() => units.push((alone.swap_remove(p), Some(i))),
                _ => alone.push(i),
            }
        }
        units.extend(alone.into_iter().map(|i| (i, None)));
        units.sort_unstable();
        let blank_cap = 256;
        for (i, s) in streams.iter().enumerate() {
            tracing::debug!(
                stream = i,
                device_channel = devch[s.dev].index,
                taps = s.fir.kernel().taps(),
                fft_len = s.fir.kernel().fft_len(),
                delay_ms = s.delay as f64 * 1000.0 / fs,
                "ionm-dsp filter ready"
            );
        }
        tracing::debug!(traces = traces.len(), ring, stage, hold, "ionm-dsp engine ready");
        Ok(Self {
            fs,
            nc,
            adc_min: device.adc_min,
            adc_max: device.adc_max,
            session: device.session_id,
            used: devch.iter().fold(0, |m, d| m | 1u64 << d.index),
            devch,
            streams,
            units,
            traces,
            work,
            ring_mask: ring as u64 - 1,
            stage_mask: stage as u64 - 1,
            segment: None,
            fresh: false,
            raw_end: 0,
            released: 0,
            blanks: VecDeque::with_capacity(blank_cap),
            blank_cap,
            flags: vec![0; ring],
            blanking: protocol.blanking.clone(),
            hold,
            pre_hold,
            lag_hold,
            stats: EngineStats::default(),
        })
    }

    /// Sample rate, Hz.
    pub fn sample_rate_hz(&self) -> f64 {
        self.fs
    }

    /// Number of traces.
    pub fn trace_count(&self) -> usize {
        self.traces.len()
    }

    /// Description of trace `t`.
    pub fn trace_info(&self, t: usize) -> Option<&TraceInfo> {
        self.traces.get(t).map(|t| &t.info)
    }

    /// Sweep counts of trace `t`.
    pub fn counts(&self, t: usize) -> Option<SweepCounts> {
        self.traces.get(t).map(|t| t.counts)
    }

    /// Engine-wide counters.
    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// The device channels the protocol uses (bit `c`: channel `c`): the only ones read from sample blocks.
    pub fn device_channels(&self) -> u64 {
        self.used
    }

    /// Number of filtered streams.
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// The filter kernel of stream `s` (panics if there is no such stream).
    pub fn stream_kernel(&self, s: usize) -> &Arc<FirKernel> {
        self.streams[s].fir.kernel()
    }

    /// Samples held back from the filters for blanking: `stimulus_lag_ms` + the pre-stimulus blanking for a
    /// device that does not announce its stimuli ahead; for one that does (device-info revision ≥
    /// [`ionm_wire::DEVICE_REVISION_STIMULUS_LEAD`]) only the part of the pre-stimulus blanking that exceeds
    /// the announced lead, usually 0.
    pub fn hold_samples(&self) -> u64 {
        self.hold
    }

    /// Sets (or with `None` clears) the reference trace `t`'s peaks are tracked against. Returns false when
    /// `t` does not exist or the reference does not fit the trace's time base, window or peak list.
    pub fn set_reference(&mut self, t: usize, reference: Option<Reference>) -> bool {
        let Some(tr) = self.traces.get_mut(t) else {
            return false;
        };
        if let Some(r) = &reference
            && (r.timebase != tr.info.timebase
                || r.template.len() != tr.info.window_len
                || r.peak_latencies_ms.len() != tr.info.measure.peaks.len())
        {
            return false;
        }
        tr.reference = reference;
        true
    }

    /// A reference made from trace `t`'s latest average (allocates; not for the real-time path).
    pub fn reference_from_latest(&self, t: usize) -> Option<Reference> {
        let tr = self.traces.get(t)?;
        (tr.sequence > 0).then(|| Reference::new(tr.averager.mean(), tr.info.timebase, &tr.measurement))
    }

    /// Discards the sweeps accumulated towards trace `t`'s next average.
    pub fn reset_average(&mut self, t: usize) {
        if let Some(tr) = self.traces.get_mut(t) {
            tr.averager.reset();
        }
    }

    /// Handles one item of the acquisition stream.
    pub fn push(&mut self, item: &Acquired, sink: &mut impl DspSink) -> Result<(), InputError> {
        match item {
            Acquired::Samples(b) => self.push_block(b, sink),
            Acquired::Stimulus(s) => {
                self.push_stimulus(s, sink);
                Ok(())
            }
            Acquired::Gap(g) => {
                self.push_gap(g, sink);
                Ok(())
            }
            Acquired::Device(d) => self.set_device(d, sink),
            // Status and link events carry no samples; gaps are reported explicitly.
            _ => Ok(()),
        }
    }

    /// A new device description: a new session restarts the stream (like a gap); new gains apply from now on.
    /// Another channel count or sample rate is an error: build a new engine.
    pub fn set_device(&mut self, device: &DeviceInfo, sink: &mut impl DspSink) -> Result<(), InputError> {
        if device.n_channels() != self.nc || f64::from(device.sample_rate_hz) != self.fs {
            return Err(InputError::DeviceChanged);
        }
        if device.session_id != self.session {
            // Sample indices start again: nothing queued for the old session applies.
            self.end_segment(None, sink);
            self.blanks.clear();
            self.session = device.session_id;
        }
        self.hold = hold_for(device, self.pre_hold, self.lag_hold);
        self.adc_min = device.adc_min;
        self.adc_max = device.adc_max;
        for d in &mut self.devch {
            d.gain_uv = f64::from(device.channels[d.index].gain_nv_per_lsb) * 1e-3;
        }
        for s in &mut self.streams {
            let d = &self.devch[s.dev];
            s.dc_offset = (f64::from(d.dc_ref) * d.gain_uv * s.dc_gain) as f32;
        }
        Ok(())
    }

    /// Takes in a block of raw samples. Only the channels the protocol uses ([`device_channels`]) are read;
    /// a block that lacks one of them (the source did not decode it) is refused with
    /// [`InputError::NotDecoded`].
    ///
    /// [`device_channels`]: Self::device_channels
    pub fn push_block(&mut self, block: &SampleBlock, sink: &mut impl DspSink) -> Result<(), InputError> {
        if block.n_channels() != self.nc {
            return Err(InputError::ChannelCount {
                expected: self.nc,
                got: block.n_channels(),
            });
        }
        let missing = self.used & !block.decoded_channels();
        if missing != 0 {
            return Err(InputError::NotDecoded {
                first_index: block.first_index(),
                missing,
            });
        }
        let n = block.n_samples();
        if n == 0 {
            return Ok(());
        }
        let first = block.first_index();
        let mut skip = 0usize;
        match self.segment {
            None => self.start_segment(first),
            Some(_) if first > self.raw_end => {
                self.stats.implicit_gaps += 1;
                self.end_segment(Some(first), sink);
                self.start_segment(first);
            }
            Some(_) if first < self.raw_end => {
                let dup = self.raw_end - first;
                if dup >= n as u64 {
                    self.stats.duplicate_samples += n as u64;
                    return Err(InputError::Duplicate {
                        first_index: first,
                        expected: self.raw_end,
                    });
                }
                self.stats.duplicate_samples += dup;
                skip = dup as usize;
            }
            Some(_) => {}
        }
        if self.fresh {
            self.fresh = false;
            let inst = block.instant(skip);
            for d in &mut self.devch {
                // Every channel the engine uses is decoded (checked above); stored at its column.
                d.dc_ref = block.column(d.index).map_or(0, |c| inst[c]);
            }
            for s in &mut self.streams {
                let d = &self.devch[s.dev];
                s.dc_offset = (f64::from(d.dc_ref) * d.gain_uv * s.dc_gain) as f32;
            }
        }
        let count = n - skip;
        // Room in staging: if pending blanks held back too much, release before overwriting.
        let stage_len = self.stage_mask + 1;
        if self.raw_end - self.released + count as u64 > stage_len {
            self.stats.forced_releases += 1;
            let limit = self.raw_end + count as u64 - stage_len;
            self.release_to_with(limit, false, sink);
        }
        let stride = block.stride();
        let values = &block.values()[skip * stride..];
        let start = self.raw_end;
        let (rm, sm) = (self.ring_mask as usize, self.stage_mask as usize);
        let (r0, s0) = (start as usize & rm, start as usize & sm);
        for d in &mut self.devch {
            let gain = d.gain_uv as f32;
            // Same value as `(i64::from(v) − dc) as f32`: the f64 difference of two i32 is exact.
            let dc = f64::from(d.dc_ref);
            let (raw, staging) = (&mut d.raw[..], &mut d.staging[..]);
            // Checked above: every channel the engine uses is decoded.
            let col = block.column(d.index).unwrap_or(0);
            // The channel's column of the block into the raw ring (strided reads), then the ring's new,
            // contiguous run converted into staging: loops without wrap-around masks, which the compiler
            // vectorises (the per-sample masks of both rings were most of the ingest's time).
            let mut column = values[col.min(values.len())..].iter().step_by(stride.max(1));
            let (a, b) = ring_runs_mut(raw, r0, count);
            for dst in [a, b] {
                for (r, v) in dst.iter_mut().zip(&mut column) {
                    *r = *v;
                }
            }
            let (a, b) = ring_runs_mut(raw, r0, count);
            let mut new = a.iter().chain(b.iter());
            let (sa, sb) = ring_runs_mut(staging, s0, count);
            for dst in [sa, sb] {
                for (s, v) in dst.iter_mut().zip(&mut new) {
                    *s = (f64::from(*v) - dc) as f32 * gain;
                }
            }
        }
        let first = (self.flags.len() - r0).min(count);
        self.flags[r0..r0 + first].fill(0);
        self.flags[..count - first].fill(0);
        self.raw_end += count as u64;
        self.stats.samples += count as u64;
        self.advance(false, sink);
        Ok(())
    }

    /// Takes in a stimulus. It may come before or after its samples (up to `stimulus_lag_ms` after).
    pub fn push_stimulus(&mut self, ev: &StimulusEvent, sink: &mut impl DspSink) {
        self.stats.stimuli += 1;
        let s = ev.sample_index;
        let mut late = false;
        if let Some((pre, post)) = self.blanking.window_for(ev.stimulator) {
            let train = f64::from(ev.pulses.saturating_sub(1)) * self.blanking.train_isi_ms;
            let post = (post + train).min(pre + BlankingSpec::MAX_MS);
            let from = (s as i64 + ms_to_samples(pre, self.fs)).max(0) as u64;
            let to = (s as i64 + ms_to_samples(post, self.fs)).max(0) as u64;
            let queued = self.segment.is_none() || from >= self.released;
            if queued && self.blanks.len() < self.blank_cap {
                self.blanks.push_back(Blank { from, to });
            } else {
                // Part of its window has already gone to the filters (or the queue is full): too late to
                // blank.
                self.stats.late_blanks += 1;
                late = true;
            }
        }
        let mut routed = false;
        for t in 0..self.traces.len() {
            let tr = &mut self.traces[t];
            if tr.info.stimulator != ev.stimulator {
                continue;
            }
            routed = true;
            if tr.pending.len() == tr.pending.capacity()
                && let Some((old, _)) = tr.pending.pop_front()
            {
                tr.counts.overflow += 1;
                sink.dropped(t, &old, DropReason::Overflow);
            }
            tr.pending.push_back((*ev, late));
        }
        if !routed {
            self.stats.unrouted_stimuli += 1;
        }
        self.advance(false, sink);
    }

    /// Data is missing: ends the current segment (see the [module docs](self)).
    pub fn push_gap(&mut self, gap: &Gap, sink: &mut impl DspSink) {
        self.stats.gaps += 1;
        if self.segment.is_some() {
            self.end_segment(Some(gap.to.max(self.raw_end)), sink);
        }
    }

    /// Transforms the samples the filters have buffered, so that every sweep whose data (plus the filter's
    /// delay and the blanking hold) has arrived is emitted now. Call when the input queue is empty.
    pub fn flush_ready(&mut self, sink: &mut impl DspSink) {
        if self.segment.is_none() {
            return;
        }
        self.advance(true, sink);
        self.run_filters(FirOp::Flush, true, sink);
        self.extract(sink, None);
        // With the sweeps out, keep the partial blocks of streams still waiting for a sweep short, so that the
        // flush that completes it needs only a short transform (a TcMEP stream would otherwise wait up to a
        // whole 1.3 s block and flush it with the full 32k FFT, six or more streams at once).
        self.run_filters(FirOp::PreFlush, true, sink);
    }

    /// End of the stream: flushes everything; sweeps whose window plus delay is not complete are dropped.
    pub fn finish(&mut self, sink: &mut impl DspSink) {
        self.end_segment(None, sink);
        self.blanks.clear();
    }

    // ---- internals ----

    fn start_segment(&mut self, first: u64) {
        self.segment = Some(first);
        self.fresh = true;
        self.raw_end = first;
        self.released = first;
        for s in &mut self.streams {
            s.fir.reset();
            s.out_end = first;
        }
        self.blanks.retain(|b| b.to >= first);
    }

    /// Ends the segment. `next`: where the next one starts, if known (pending sweeps that fit wholly in it
    /// stay pending).
    fn end_segment(&mut self, next: Option<u64>, sink: &mut impl DspSink) {
        let Some(_) = self.segment else { return };
        self.resolve_blanks(true);
        let end = self.raw_end;
        self.release_to(end, sink);
        self.run_filters(FirOp::Finish, true, sink);
        self.extract(sink, Some(next));
        self.segment = None;
    }

    /// Releases what may go to the filters and emits the sweeps that are complete. Unless `now`, samples are
    /// released in batches of at least [`RELEASE_BATCH`] (per-call costs of 16 filters and 20 traces on every
    /// 1 ms block otherwise cost more than the filtering); `now` (live flushes) releases everything there is.
    fn advance(&mut self, now: bool, sink: &mut impl DspSink) {
        if self.segment.is_none() {
            return;
        }
        self.resolve_blanks(false);
        let mut limit = self.raw_end.saturating_sub(self.hold).max(self.released);
        for b in &self.blanks {
            if b.from < limit && b.to >= self.released {
                limit = b.from.max(self.released);
            }
        }
        if !now && limit - self.released < RELEASE_BATCH {
            return;
        }
        if limit > self.released {
            self.release_to(limit, sink);
        }
        self.extract(sink, None);
    }

    /// Applies the blanks whose right anchor has arrived (all that touch the data when `final_`).
    fn resolve_blanks(&mut self, final_: bool) {
        let Some(seg) = self.segment else { return };
        let mut i = 0;
        while i < self.blanks.len() {
            let b = self.blanks[i];
            let ready = b.to + 1 < self.raw_end;
            if ready || (final_ && b.from < self.raw_end) {
                self.apply_blank(b, seg);
            }
            if ready || (final_ && b.to < self.raw_end) {
                self.blanks.remove(i);
            } else {
                i += 1;
            }
        }
    }

    fn apply_blank(&mut self, b: Blank, seg: u64) {
        let lo = b.from.max(seg).max(self.released);
        let hi = b.to.min(self.raw_end.saturating_sub(1));
        if self.raw_end == 0 || lo > hi {
            return;
        }
        let stage_len = self.stage_mask + 1;
        let oldest = self.raw_end.saturating_sub(stage_len);
        let left = (b.from > seg && b.from > oldest).then_some(b.from - 1);
        let right = (b.to + 1 < self.raw_end).then_some(b.to + 1);
        let span = (b.to + 2 - b.from) as f32;
        for d in &mut self.devch {
            let at = |i: u64| d.staging[(i & self.stage_mask) as usize];
            let (l, r) = (left.map(at), right.map(at));
            for i in lo..=hi {
                let v = match (l, r) {
                    (Some(l), Some(r)) => l + (r - l) * ((i + 1 - b.from) as f32 / span),
                    (Some(l), None) => l,
                    (None, Some(r)) => r,
                    (None, None) => 0.0,
                };
                d.staging[(i & self.stage_mask) as usize] = v;
            }
        }
        for i in lo..=hi {
            self.flags[(i & self.ring_mask) as usize] = 1;
        }
    }

    fn release_to(&mut self, limit: u64, sink: &mut impl DspSink) {
        self.release_to_with(limit, true, sink);
    }

    /// Feeds the filters up to `limit`. `lazy`: blocks that no sweep needs may be skipped (not for forced
    /// releases, where a stimulus that needs them may still come).
    fn release_to_with(&mut self, limit: u64, lazy: bool, sink: &mut impl DspSink) {
        if limit <= self.released {
            return;
        }
        self.run_filters(FirOp::Push(limit), lazy, sink);
        self.released = limit;
    }

    /// Runs `op` on every stream's filter, writes the output to the stream's ring and hands it to the sink.
    /// With `lazy` (and a sink that does not want the filtered stream), a block whose outputs no pending sweep
    /// overlaps is not transformed: its ring positions are set to NaN, so that a sweep that would read them
    /// anyway (a stimulus later than its contract) is dropped as late instead of using stale data.
    fn run_filters(&mut self, op: FirOp, lazy: bool, sink: &mut impl DspSink) {
        let wants = sink.wants_filtered();
        for u in 0..self.units.len() {
            let (a, b) = self.units[u];
            let from = (self.streams[a].out_end, b.map(|b| self.streams[b].out_end));
            match (b, op) {
                (Some(b), FirOp::Push(limit)) => self.push_pair(a, b, limit, lazy && !wants),
                // Flushes stay per stream: flushing a partner whose sweeps do not need it would double the
                // cost of a live flush (measured: 32-channel p50 latency 0.82 -> 1.17 ms). A stream flushed
                // alone leaves its pair out of step, and the pair is then filtered one by one until the
                // segment ends; replays and lossless simulators never flush, so they keep their pairs.
                _ => {
                    for si in std::iter::once(a).chain(b) {
                        if self.op_applies(op, wants, si) {
                            self.run_stream(si, op, lazy && !wants);
                        }
                    }
                }
            }
            if wants {
                notify(sink, a, &self.streams[a], from.0, self.ring_mask);
                if let (Some(b), Some(fb)) = (b, from.1) {
                    notify(sink, b, &self.streams[b], fb, self.ring_mask);
                }
            }
        }
    }

    /// Whether `op` is to run on stream `si` by itself (a flush only where it lets a sweep out).
    fn op_applies(&self, op: FirOp, wants: bool, si: usize) -> bool {
        match op {
            FirOp::Push(_) | FirOp::Finish => true,
            // A partial block costs a whole FFT: transform it now only if that lets a sweep out.
            FirOp::Flush => wants || self.flush_completes_a_sweep(si),
            FirOp::PreFlush => {
                !wants && self.streams[si].fir.buffered() >= PRE_FLUSH_MIN && self.awaits_a_sweep(si)
            }
        }
    }

    /// Runs `op` on stream `si` alone.
    fn run_stream(&mut self, si: usize, op: FirOp, lazy: bool) {
        let (io, fir, dev) = StreamIo::split(&mut self.streams[si], lazy, self.ring_mask, &self.traces);
        let (mut needed, mut emit, mut skip) = (|n| io.needed(n), |y: &[f32]| io.emit(y), |n| io.skip(n));
        match op {
            FirOp::Push(limit) => {
                let staging = &self.devch[dev].staging;
                for r in staged_runs(self.released, limit, staging.len()) {
                    fir.push_lazy(&staging[r], &mut self.work, &mut needed, &mut emit, &mut skip);
                }
            }
            FirOp::Flush | FirOp::PreFlush => {
                fir.flush_lazy(&mut self.work, &mut needed, &mut emit, &mut skip)
            }
            FirOp::Finish => fir.finish_lazy(&mut self.work, &mut needed, &mut emit, &mut skip),
        }
        io.finish(&mut self.stats);
    }

    /// Feeds the staged samples up to `limit` to the pair of streams `a` and `b`.
    fn push_pair(&mut self, a: usize, b: usize, limit: u64, lazy: bool) {
        let Ok([sa, sb]) = self.streams.get_disjoint_mut([a, b]) else {
            // Not two distinct streams (cannot happen: the units are built from distinct indices); were they
            // one, feeding it once is right.
            self.run_stream(a, FirOp::Push(limit), lazy);
            return;
        };
        let (io_a, fir_a, dev_a) = StreamIo::split(sa, lazy, self.ring_mask, &self.traces);
        let (io_b, fir_b, dev_b) = StreamIo::split(sb, lazy, self.ring_mask, &self.traces);
        let (mut need_a, mut emit_a, mut skip_a) =
            (|n| io_a.needed(n), |y: &[f32]| io_a.emit(y), |n| io_a.skip(n));
        let (mut need_b, mut emit_b, mut skip_b) =
            (|n| io_b.needed(n), |y: &[f32]| io_b.emit(y), |n| io_b.skip(n));
        let (xa, xb) = (&self.devch[dev_a].staging, &self.devch[dev_b].staging);
        for r in staged_runs(self.released, limit, xa.len()) {
            self.stats.filter_pair_blocks += push_pair_lazy(
                PairSide {
                    fir: &mut *fir_a,
                    x: &xa[r.clone()],
                    needed: &mut need_a,
                    out: &mut emit_a,
                    skipped: &mut skip_a,
                },
                PairSide {
                    fir: &mut *fir_b,
                    x: &xb[r],
                    needed: &mut need_b,
                    out: &mut emit_b,
                    skipped: &mut skip_b,
                },
                &mut self.work,
            ) as u64;
        }
        io_a.finish(&mut self.stats);
        io_b.finish(&mut self.stats);
    }

    /// Whether flushing stream `si` now would complete a pending sweep (its window end lies between the
    /// stream's output and what the output will be once everything fed to the filter is transformed).
    fn flush_completes_a_sweep(&self, si: usize) -> bool {
        let st = &self.streams[si];
        let after = st.out_end + st.fir.buffered() as u64;
        st.traces.iter().any(|&t| {
            let tr = &self.traces[t];
            tr.pending.iter().any(|(ev, _)| {
                let we = ev.sample_index as i64 + tr.b;
                we > st.out_end as i64 && we <= after as i64
            })
        })
    }

    /// Whether a pending sweep of stream `si` still waits for output the stream has not produced.
    fn awaits_a_sweep(&self, si: usize) -> bool {
        let st = &self.streams[si];
        st.traces.iter().any(|&t| {
            let tr = &self.traces[t];
            tr.pending
                .iter()
                .any(|(ev, _)| ev.sample_index as i64 + tr.b > st.out_end as i64)
        })
    }

    /// Emits every pending sweep whose filtered data is complete. At the end of a segment (`end =
    /// Some(next)`), sweeps not complete without the extrapolated tail are dropped, unless they lie wholly in
    /// the next segment.
    fn extract(&mut self, sink: &mut impl DspSink, end: Option<Option<u64>>) {
        let Some(seg) = self.segment else { return };
        for t in 0..self.traces.len() {
            loop {
                let tr = &self.traces[t];
                let Some(&(ev, late)) = tr.pending.front() else {
                    break;
                };
                let st = &self.streams[tr.info.stream];
                let s = ev.sample_index as i64;
                let (ws, we) = (s + tr.a, s + tr.b);
                let d = st.delay as i64;
                let mut keep_for_next = false;
                let reason = if ws - d < seg as i64 {
                    // Before this segment's settled part: it can only belong to an earlier segment or overlap
                    // the gap.
                    Some(DropReason::Gap)
                } else if we > st.out_end as i64 {
                    match end {
                        None => break,
                        Some(Some(next)) if ws - d >= next as i64 => {
                            keep_for_next = true;
                            None
                        }
                        Some(_) => Some(DropReason::Gap),
                    }
                } else if end.is_some() && we + d > self.raw_end as i64 {
                    Some(DropReason::Gap)
                } else if late
                    || self.raw_end as i64 - ws > self.ring_mask as i64
                    || st.out_end as i64 - ws > self.ring_mask as i64
                {
                    Some(DropReason::Late)
                } else {
                    None
                };
                if keep_for_next {
                    break;
                }
                let tr = &mut self.traces[t];
                tr.pending.pop_front();
                if let Some(r) = reason {
                    match r {
                        DropReason::Gap => tr.counts.gap += 1,
                        DropReason::Late => tr.counts.late += 1,
                        DropReason::Overflow => tr.counts.overflow += 1,
                    }
                    sink.dropped(t, &ev, r);
                    continue;
                }
                self.emit_sweep(t, ev, ws as u64, sink);
            }
        }
    }

    fn emit_sweep(&mut self, t: usize, ev: StimulusEvent, ws: u64, sink: &mut impl DspSink) {
        let mask = self.ring_mask;
        let tr = &mut self.traces[t];
        let st = &self.streams[tr.info.stream];
        let w = tr.info.window_len;
        // The window as (at most) two contiguous runs of the rings.
        let p0 = (ws & mask) as usize;
        let n0 = w.min(st.out.len() - p0);
        tr.sweep[..n0].copy_from_slice(&st.out[p0..p0 + n0]);
        tr.sweep[n0..].copy_from_slice(&st.out[..w - n0]);
        if tr.sweep.iter().any(|v| v.is_nan()) {
            // Part of it was skipped as unneeded: its stimulus came later than it may (see `run_filters`).
            tr.counts.late += 1;
            sink.dropped(t, &ev, DropReason::Late);
            return;
        }
        // Rejection on raw samples (outside blanked ones) and on the filtered sweep.
        let dev = &self.devch[tr.dev];
        let (mut mn, mut mx) = (i32::MAX, i32::MIN);
        for (a, b) in [(p0, p0 + n0), (0, w - n0)] {
            for (&v, &f) in dev.raw[a..b].iter().zip(&self.flags[a..b]) {
                // Blanked samples (flag 1) do not count: push their value out of the way.
                let (lo, hi) = if f == 0 { (v, v) } else { (i32::MAX, i32::MIN) };
                mn = mn.min(lo);
                mx = mx.max(hi);
            }
        }
        let sat = mx >= mn && (mn <= self.adc_min || mx >= self.adc_max);
        let raw_pp = if mx >= mn {
            (f64::from(mx) - f64::from(mn)) * dev.gain_uv
        } else {
            0.0
        };
        let (fmn, fmx) = tr
            .sweep
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), v| {
                (a.min(*v), b.max(*v))
            });
        let verdict = if tr.reject.saturation && sat {
            tr.counts.saturated += 1;
            Verdict::Rejected(RejectReason::Saturated)
        } else if tr.reject.flat_uv.is_some_and(|f| raw_pp <= f) {
            tr.counts.flat += 1;
            Verdict::Rejected(RejectReason::Flat)
        } else if tr
            .reject
            .peak_to_peak_uv
            .is_some_and(|p| f64::from(fmx - fmn) > p || !(fmx - fmn).is_finite())
        {
            tr.counts.peak_to_peak += 1;
            Verdict::Rejected(RejectReason::PeakToPeak)
        } else {
            tr.counts.accepted += 1;
            Verdict::Accepted
        };
        sink.sweep(&SweepView {
            trace: t,
            info: &tr.info,
            stimulus: &ev,
            first_index: ws,
            data: &tr.sweep,
            verdict,
            counts: tr.counts,
        });
        if verdict == Verdict::Accepted && tr.averager.add(&tr.sweep) {
            measure(
                tr.averager.mean(),
                tr.info.timebase,
                &tr.info.measure,
                tr.reference.as_ref(),
                &mut tr.measurement,
            );
            sink.average(&AverageView {
                trace: t,
                info: &tr.info,
                sequence: tr.sequence,
                last_stimulus: ev.sample_index,
                mean: tr.averager.mean(),
                plus_minus: tr.averager.plus_minus(),
                stats: tr.averager.stats(),
                measurement: &tr.measurement,
                counts: tr.counts,
            });
            tr.sequence += 1;
        }
    }
}

/// How many samples must be held back from the filters so that a stimulus can still be blanked when its event
/// comes. A device of revision ≥ [`ionm_wire::DEVICE_REVISION_STIMULUS_LEAD`] sends every stimulus before the
/// samples from `lead` before its index, so only a pre-stimulus blanking longer than the lead is held; any other
/// source (revision 1 devices, replays of files, unknown) may deliver a stimulus up to `stimulus_lag_ms` after
/// its samples.
fn hold_for(device: &DeviceInfo, pre_hold: u64, lag_hold: u64) -> u64 {
    if device.protocol_version >= ionm_wire::DEVICE_REVISION_STIMULUS_LEAD {
        pre_hold.saturating_sub(ionm_wire::stimulus_lead_samples(device.sample_rate_hz))
    } else {
        lag_hold
    }
}

/// The index ranges of the staging ring (`len` slots, a power of two) that hold samples `from..limit`, in order:
/// one run, or two where the ring wraps.
fn staged_runs(from: u64, limit: u64, len: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    let mask = len as u64 - 1;
    let mut i = from;
    std::iter::from_fn(move || {
        (i < limit).then(|| {
            let p = (i & mask) as usize;
            let n = ((limit - i) as usize).min(len - p);
            i += n as u64;
            p..p + n
        })
    })
}

/// The `count` slots from `start` of a ring (`count ≤` its length): the run up to the end, then the run from
/// the beginning (empty if there is no wrap).
fn ring_runs_mut<T>(ring: &mut [T], start: usize, count: usize) -> (&mut [T], &mut [T]) {
    let first = (ring.len() - start).min(count);
    let (lo, hi) = ring.split_at_mut(start);
    (&mut hi[..first], &mut lo[..count - first])
}

fn write_ring(out: &mut [f32], out_end: &mut u64, mask: u64, y: &[f32], dc: f32) {
    let mut rest = y;
    while !rest.is_empty() {
        let pos = (*out_end & mask) as usize;
        let n = rest.len().min(out.len() - pos);
        for (o, v) in out[pos..pos + n].iter_mut().zip(&rest[..n]) {
            *o = v + dc;
        }
        *out_end += n as u64;
        rest = &rest[n..];
    }
}

fn fill_ring(out: &mut [f32], out_end: &mut u64, mask: u64, n: usize, v: f32) {
    let mut left = n;
    while left > 0 {
        let pos = (*out_end & mask) as usize;
        let k = left.min(out.len() - pos);
        out[pos..pos + k].fill(v);
        *out_end += k as u64;
        left -= k;
    }
}

/// Where one stream's filter output goes while its filter runs: the ring (with the DC offset put back), NaN
/// for blocks skipped, and whether a block is needed by a pending sweep (with `lazy`). Shared by the closures
/// handed to the filter; the stream's `out_end` and the engine's block counts are updated by
/// [`StreamIo::finish`].
struct StreamIo<'a> {
    out: std::cell::RefCell<&'a mut [f32]>,
    out_end: &'a mut u64,
    pos: std::cell::Cell<u64>,
    mask: u64,
    dc: f32,
    lazy: bool,
    traces: &'a [usize],
    all: &'a [Trace],
    blocks: std::cell::Cell<u64>,
    skipped: std::cell::Cell<u64>,
}

impl<'a> StreamIo<'a> {
    /// Splits `st` into its filter, its device channel and the output side.
    fn split(
        st: &'a mut Stream,
        lazy: bool,
        mask: u64,
        all: &'a [Trace],
    ) -> (Self, &'a mut StreamingFir, usize) {
        let Stream {
            fir,
            out,
            out_end,
            dc_offset,
            dev,
            traces,
            skippable,
            ..
        } = st;
        let io = Self {
            pos: std::cell::Cell::new(*out_end),
            out: std::cell::RefCell::new(&mut out[..]),
            out_end,
            mask,
            dc: *dc_offset,
            lazy: lazy && *skippable,
            traces,
            all,
            blocks: std::cell::Cell::new(0),
            skipped: std::cell::Cell::new(0),
        };
        (io, fir, *dev)
    }

    /// Whether the next `n` outputs overlap a pending sweep's window (always, unless lazy).
    fn needed(&self, n: usize) -> bool {
        let (lo, hi) = (self.pos.get() as i64, (self.pos.get() + n as u64) as i64);
        let yes = !self.lazy
            || self.traces.iter().any(|&t| {
                let tr = &self.all[t];
                tr.pending.iter().any(|(ev, _)| {
                    let s = ev.sample_index as i64;
                    s + tr.a < hi && s + tr.b > lo
                })
            });
        let count = if yes { &self.blocks } else { &self.skipped };
        count.set(count.get() + 1);
        yes
    }

    fn emit(&self, y: &[f32]) {
        let mut e = self.pos.get();
        write_ring(&mut self.out.borrow_mut()[..], &mut e, self.mask, y, self.dc);
        self.pos.set(e);
    }

    fn skip(&self, n: usize) {
        let mut e = self.pos.get();
        fill_ring(&mut self.out.borrow_mut()[..], &mut e, self.mask, n, f32::NAN);
        self.pos.set(e);
    }

    /// Moves the stream's output end and adds the block counts to `stats`.
    fn finish(self, stats: &mut EngineStats) {
        *self.out_end = self.pos.get();
        stats.filter_blocks += self.blocks.get();
        stats.filter_blocks_skipped += self.skipped.get();
    }
}

fn notify(sink: &mut impl DspSink, si: usize, s: &Stream, from: u64, mask: u64) {
    let mut i = from;
    while i < s.out_end {
        let pos = (i & mask) as usize;
        let n = ((s.out_end - i) as usize).min(s.out.len() - pos);
        sink.filtered(si, i, &s.out[pos..pos + n]);
        i += n as u64;
    }
}

impl Protocol {
    /// The device channels this protocol's channels resolve to on `device` (bit `c`: channel `c`), as
    /// [`Engine::device_channels`] will have them: what a source must decode for the engine. An error when a
    /// channel does not resolve (building the engine fails the same way).
    pub fn device_channels(&self, device: &DeviceInfo) -> Result<u64, SetupError> {
        let nc = device.n_channels();
        if nc == 0 || nc > MAX_CHANNELS {
            return Err(SetupError::ChannelCount(nc));
        }
        // Every index is below nc ≤ 64.
        self.channels
            .iter()
            .try_fold(0u64, |m, ch| Ok(m | 1u64 << resolve(ch, device)?))
    }
}

fn resolve(ch: &ChannelSpec, device: &DeviceInfo) -> Result<usize, SetupError> {
    let found = match &ch.source {
        ChannelRef::Index(i) => (*i < device.n_channels()).then_some(*i),
        ChannelRef::Label(l) => device.channels.iter().position(|c| c.label == *l).or_else(|| {
            device
                .channels
                .iter()
                .position(|c| c.label.eq_ignore_ascii_case(l))
        }),
    };
    found.ok_or_else(|| SetupError::UnknownChannel {
        channel: ch.name.clone(),
        line: ch.line,
        wanted: match &ch.source {
            ChannelRef::Index(i) => format!("#{i}"),
            ChannelRef::Label(l) => format!("`{l}`"),
        },
        available: device
            .channels
            .iter()
            .map(|c| format!("`{}`", c.label))
            .collect::<Vec<_>>()
            .join(", "),
    })
}
