//! Monitoring: what the neurophysiologist acts on.
//!
//! - [`Monitor`]: per trace, takes the baseline (automatically from the first averages that pass a quality gate,
//!   or on command), compares every new average with it under the trace's [`Criteria`], confirms a change over
//!   consecutive averages, clears it with hysteresis, and lets the user acknowledge it. It also raises the
//!   technical alarms (signal lost, noisy, electrode off, saturation, link errors, overrun), and a technical alarm
//!   on a channel suspends the clinical criteria of its traces — the alarm says so, and so does every average.
//!   Cortical alarms are tagged `systemic` when every cortical trace is depressed together while the peripheral
//!   controls are not (anaesthesia or blood pressure rather than a focal injury).
//! - [`TraceMeta`]: what the monitor needs to know of a trace; [`AverageInput`]: the numbers of one average.
//! - [`Criteria`] / [`Role`]: the configurable criteria with presets per modality.
//! - Change detectors behind one trait, [`ChangeDetector`] ([`detector`]), selected per protocol
//!   ([`DetectorSettings`]): the [`BlockDetector`] (averages against the baseline under the [`Criteria`]) and the
//!   [`SequentialBank`] (a single-sweep matched-filter CUSUM per SSEP trace, [`SequentialDetector`] in
//!   [`sequential`], with the latency estimated from short averages by cross-correlation). Both may run at once;
//!   every alarm says which detector raised it.
//!
//! The monitor is pure and deterministic: events come out in stream time, in the order their causes came in.
//! It allocates only when it emits an event (at most a few per average), never per sweep or per sample.

mod criteria;
pub mod detector;
pub mod sequential;
mod technical;

pub use criteria::{Criteria, Role};
pub use detector::{
    BlockDetector, ChangeDetector, Comparison, DetectorContext, DetectorSettings, SequentialBank,
};
pub use sequential::{ChangeLabel, Decision, SequentialConfig, SequentialDetector, SweepOutcome};

use ionm_core::events::{
    AlarmClass, AlarmEvent, AlarmKind, AlarmState, BaselineEvent, BaselineOrigin, Event, EvidenceValue,
    MarkerEvent, Waveform,
};
use ionm_core::{DeviceStatus, Gap, LinkEvent, Stimulator};
use technical::Technical;

/// What the monitor knows of one trace (a protocol channel × stimulator).
#[derive(Debug, Clone, PartialEq)]
pub struct TraceMeta {
    /// Unique trace name.
    pub name: String,
    /// Device channel label.
    pub label: String,
    /// Device channel index.
    pub device_channel: usize,
    /// Stimulator.
    pub stimulator: Stimulator,
    /// Modality name.
    pub modality: String,
    /// Role (cortical, peripheral…).
    pub role: Role,
    /// Criteria.
    pub criteria: Criteria,
}

/// The numbers of one average.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AverageInput {
    /// Trace index.
    pub trace: usize,
    /// Stream time of the average's last stimulus, s.
    pub stream_s: f64,
    /// Sweeps in it.
    pub sweeps: u64,
    /// Primary amplitude, µV (`None`: not found).
    pub amplitude_uv: Option<f64>,
    /// Primary latency, ms (`None`: not found).
    pub latency_ms: Option<f64>,
    /// Fsp.
    pub fsp: Option<f64>,
    /// Residual noise, µV.
    pub residual_noise_uv: Option<f64>,
}

/// What the caller measured for a baseline about to be taken ([`Monitor::on_average_with`]): the averages'
/// own numbers were measured before there was a baseline (peaks searched in the full windows), later averages
/// will be measured against the baseline (narrow tracking windows), so the caller measures the baseline's
/// averages again the way later ones will be (`ionm_dsp::measure_baseline`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BaselineMeasure {
    /// The baseline's waveform for the event (`None`: not kept).
    pub waveform: Option<Waveform>,
    /// The baseline's primary amplitude, µV; `None`: the mean of its averages' own amplitudes.
    pub amplitude_uv: Option<f64>,
    /// The baseline's primary latency, ms; `None`: the mean of its averages' own latencies.
    pub latency_ms: Option<f64>,
}

/// What the monitor concluded about one average.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Assessment {
    /// Amplitude / baseline amplitude.
    pub amplitude_ratio: Option<f64>,
    /// Latency / baseline latency.
    pub latency_ratio: Option<f64>,
    /// Why the clinical criteria were not applied, if they were not.
    pub suspended: Option<String>,
    /// This average became the trace's new baseline.
    pub baseline_taken: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Baseline {
    pub(crate) amplitude_uv: f64,
    pub(crate) latency_ms: Option<f64>,
    stream_s: f64,
    number: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct TraceState {
    pub(crate) meta: TraceMeta,
    pub(crate) baseline: Option<Baseline>,
    gate_passes: u32,
    /// The latest averages that passed the quality gate in a row (at most `baseline_after`).
    passing: Vec<AverageInput>,
    last: Option<AverageInput>,
    pub(crate) last_ratio: Option<f64>,
    /// The latest amplitude ratios since the baseline (a ring of [`SYSTEMIC_AVERAGES`]) and how many were pushed.
    ratios: [f64; SYSTEMIC_AVERAGES],
    n_ratios: usize,
    rebaseline_requested: bool,
}

/// How many of a trace's latest averages the block detector's systemic rule averages their amplitude ratios
/// over ([`DetectorContext::block_systemic`]).
pub const SYSTEMIC_AVERAGES: usize = 2;

impl TraceState {
    /// The mean amplitude ratio of the latest [`SYSTEMIC_AVERAGES`] averages since the baseline; `None` when the
    /// latest average has no ratio (no amplitude measured).
    pub(crate) fn recent_ratio(&self) -> Option<f64> {
        self.last_ratio?;
        let n = self.n_ratios.min(SYSTEMIC_AVERAGES);
        (n > 0).then(|| {
            (0..n)
                .map(|k| self.ratios[(self.n_ratios - 1 - k) % SYSTEMIC_AVERAGES])
                .sum::<f64>()
                / n as f64
        })
    }
}

/// See the crate documentation.
#[derive(Debug)]
pub struct Monitor {
    traces: Vec<TraceState>,
    technical: Technical,
    detectors: Vec<Box<dyn ChangeDetector>>,
    sequential: bool,
    next_id: u64,
    raised: u64,
}

impl Monitor {
    /// A monitor for these traces with the block detector only, with no baselines yet. `labels` are the
    /// device's channel labels (for channel-wide technical alarms).
    pub fn new(traces: Vec<TraceMeta>, labels: Vec<String>) -> Self {
        Self::with_detectors(traces, labels, &DetectorSettings::default())
    }

    /// A monitor running the detectors `settings` selects. The sequential detector needs each trace's sweep
    /// shape: [`Monitor::set_sweep_timebase`].
    pub fn with_detectors(traces: Vec<TraceMeta>, labels: Vec<String>, settings: &DetectorSettings) -> Self {
        let technical = Technical::new(&traces, labels);
        let n = traces.len();
        let mut detectors: Vec<Box<dyn ChangeDetector>> = Vec::new();
        if settings.block {
            detectors.push(Box::new(BlockDetector::new(n)));
        }
        if settings.sequential {
            detectors.push(Box::new(SequentialBank::new(settings.clone(), n)));
        }
        Self {
            traces: traces
                .into_iter()
                .map(|meta| TraceState {
                    meta,
                    baseline: None,
                    gate_passes: 0,
                    passing: Vec::new(),
                    last: None,
                    last_ratio: None,
                    ratios: [0.0; SYSTEMIC_AVERAGES],
                    n_ratios: 0,
                    rebaseline_requested: false,
                })
                .collect(),
            technical,
            sequential: settings.sequential,
            detectors,
            next_id: 1,
            raised: 0,
        }
    }

    /// The names of the detectors that run (`block`, `sequential`).
    pub fn detector_names(&self) -> Vec<&'static str> {
        self.detectors.iter().map(|d| d.name()).collect()
    }

    /// Declares trace `t`'s sweeps: `window_len` samples at `dt_ms`, the first `start_ms` from the stimulus
    /// (negative: a pre-stimulus part). For the sequential detector; a no-op when it does not run or the trace
    /// is not an SSEP trace.
    pub fn set_sweep_timebase(&mut self, t: usize, window_len: usize, dt_ms: f64, start_ms: f64) {
        if !self.sequential {
            return;
        }
        let Some(meta) = self.traces.get(t).map(|s| s.meta.clone()) else {
            return;
        };
        for d in &mut self.detectors {
            d.set_timebase(t, &meta, window_len, dt_ms, start_ms);
        }
    }

    /// An accepted sweep of trace `t` (filtered, µV, the trace's window) for the detectors that use single
    /// sweeps; ignored while a technical alarm suspends the trace. Allocates only when it emits an alarm.
    pub fn on_sweep_data(&mut self, t: usize, data: &[f32], stream_s: f64, out: &mut Vec<Event>) {
        if !self.sequential {
            return;
        }
        let Some(tr) = self.traces.get(t) else { return };
        if self.technical.suspension_reason(t, &tr.meta).is_some() {
            return;
        }
        self.dispatch(out, |d, cx| {
            d.on_sweep(t, data, stream_s, cx);
            false
        });
    }

    /// Calls `f` on every detector in order with a context over this monitor's traces, until one returns true;
    /// returns whether one did.
    fn dispatch(
        &mut self,
        out: &mut Vec<Event>,
        mut f: impl FnMut(&mut dyn ChangeDetector, &mut DetectorContext<'_>) -> bool,
    ) -> bool {
        let mut cx = DetectorContext {
            traces: &self.traces,
            next_id: &mut self.next_id,
            raised: &mut self.raised,
            out,
        };
        self.detectors.iter_mut().any(|d| f(d.as_mut(), &mut cx))
    }

    /// The detectors' current evidence per trace (for the periodic stats event).
    pub fn evidence(&mut self, out: &mut Vec<EvidenceValue>) {
        let mut scratch = Vec::new();
        let cx = DetectorContext {
            traces: &self.traces,
            next_id: &mut self.next_id,
            raised: &mut self.raised,
            out: &mut scratch,
        };
        for d in &self.detectors {
            d.evidence(&cx, out);
        }
    }

    /// The traces.
    pub fn trace_meta(&self, t: usize) -> Option<&TraceMeta> {
        self.traces.get(t).map(|s| &s.meta)
    }

    /// Alarms raised so far (all kinds).
    pub fn alarms_raised(&self) -> u64 {
        self.raised + self.technical.raised()
    }

    /// Assesses one average. Events it causes (baseline, alarms) are appended to `out`; the caller publishes its
    /// average event first. `waveform` is called only if a baseline is taken (to keep it in the event).
    pub fn on_average(
        &mut self,
        a: &AverageInput,
        waveform: impl FnOnce() -> Option<Waveform>,
        out: &mut Vec<Event>,
    ) -> Assessment {
        self.on_average_with(
            a,
            |_| BaselineMeasure {
                waveform: waveform(),
                ..BaselineMeasure::default()
            },
            out,
        )
    }

    /// [`Monitor::on_average`] where a baseline taken on this average is measured by `baseline`, which is
    /// given the averages the baseline is made of (the latest is `a`; an automatic baseline is the mean of the
    /// averages that passed the quality gate in a row, a user's the one average they chose) and is called
    /// only when a baseline is taken.
    pub fn on_average_with(
        &mut self,
        a: &AverageInput,
        baseline: impl FnOnce(&[AverageInput]) -> BaselineMeasure,
        out: &mut Vec<Event>,
    ) -> Assessment {
        let suspended = self.technical.suspension(a.trace, &self.traces[a.trace].meta);
        let Some(tr) = self.traces.get_mut(a.trace) else {
            return Assessment::default();
        };
        let c = tr.meta.criteria.clone();
        tr.last = Some(*a);
        let mut assessment = Assessment {
            suspended: suspended.clone(),
            ..Default::default()
        };
        // Baseline: on request (the latest average, whatever its quality: the user decides), or automatically.
        let passes_gate = a.amplitude_uv.is_some_and(|amp| {
            let noise_ok = a
                .residual_noise_uv
                .is_none_or(|n| c.baseline_max_noise_uv.is_none_or(|m| n <= m));
            let snr = a
                .residual_noise_uv
                .map(|n| if n > 0.0 { amp / n } else { f64::INFINITY });
            let fsp_path =
                a.fsp.unwrap_or(0.0) >= c.baseline_min_fsp && snr.is_none_or(|s| s >= c.baseline_min_snr);
            let snr_path = snr.is_some_and(|s| s >= c.baseline_snr_alone);
            noise_ok && (fsp_path || snr_path)
        });
        if suspended.is_none() {
            tr.gate_passes = if passes_gate { tr.gate_passes + 1 } else { 0 };
            if passes_gate {
                if tr.passing.len() >= c.baseline_after.max(1) as usize {
                    tr.passing.remove(0);
                }
                tr.passing.push(*a);
            } else {
                tr.passing.clear();
            }
        }
        let take = tr.rebaseline_requested && a.amplitude_uv.is_some()
            || tr.baseline.is_none() && suspended.is_none() && tr.gate_passes >= c.baseline_after.max(1);
        if take {
            let origin = if tr.rebaseline_requested {
                BaselineOrigin::User
            } else {
                BaselineOrigin::Automatic
            };
            tr.rebaseline_requested = false;
            let number = tr.baseline.as_ref().map_or(1, |b| b.number + 1);
            // An automatic baseline is the mean of the averages that passed the gate in a row (replicated, and
            // √n less noisy than one); a user's baseline is the average they chose.
            let from: &[AverageInput] = if origin == BaselineOrigin::Automatic {
                &tr.passing
            } else {
                std::slice::from_ref(a)
            };
            let measured = baseline(from);
            let mean = |f: fn(&AverageInput) -> Option<f64>| {
                let v: Vec<f64> = from.iter().filter_map(f).collect();
                (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
            };
            let amplitude_uv = measured
                .amplitude_uv
                .or_else(|| mean(|x| x.amplitude_uv))
                .unwrap_or(0.0);
            let latency_ms = measured.latency_ms.or_else(|| mean(|x| x.latency_ms));
            out.push(Event::Baseline(BaselineEvent {
                stream_s: a.stream_s,
                trace: tr.meta.name.clone(),
                number,
                origin,
                sweeps: a.sweeps,
                amplitude_uv: Some(amplitude_uv),
                latency_ms,
                fsp: a.fsp,
                residual_noise_uv: a.residual_noise_uv,
                replaces_s: tr.baseline.as_ref().map(|b| b.stream_s),
                waveform: measured.waveform,
            }));
            tr.baseline = Some(Baseline {
                amplitude_uv,
                latency_ms,
                stream_s: a.stream_s,
                number,
            });
            tr.passing.clear();
            tr.n_ratios = 0;
            assessment.baseline_taken = true;
            self.dispatch(out, |d, cx| {
                d.on_baseline(a.trace, origin, latency_ms, a.stream_s, cx);
                false
            });
        }
        let tr = &mut self.traces[a.trace];
        let Some(b) = tr.baseline.clone() else {
            assessment
                .suspended
                .get_or_insert_with(|| "no baseline yet".to_owned());
            return assessment;
        };
        let amp_ratio = a.amplitude_uv.map(|x| {
            if b.amplitude_uv > 0.0 {
                x / b.amplitude_uv
            } else {
                0.0
            }
        });
        let cmp = Comparison {
            baseline_amplitude_uv: b.amplitude_uv,
            amplitude_ratio: amp_ratio,
            latency_ratio: a.latency_ms.zip(b.latency_ms).map(|(l, bl)| l / bl),
            latency_delta_ms: a.latency_ms.zip(b.latency_ms).map(|(l, bl)| l - bl),
        };
        assessment.amplitude_ratio = cmp.amplitude_ratio;
        assessment.latency_ratio = cmp.latency_ratio;
        tr.last_ratio = amp_ratio;
        if let Some(r) = amp_ratio {
            tr.ratios[tr.n_ratios % SYSTEMIC_AVERAGES] = r;
            tr.n_ratios += 1;
        }
        if suspended.is_some() {
            for d in &mut self.detectors {
                d.on_average_suspended(a.trace);
            }
            return assessment;
        }
        self.dispatch(out, |d, cx| {
            d.on_average(a, &cmp, cx);
            false
        });
        assessment
    }

    /// Takes the next average of `trace` (or of every trace) as its new baseline. The old baseline stays in the
    /// event stream; the new one says which it replaces.
    pub fn request_baseline(&mut self, trace: Option<usize>) {
        for (i, t) in self.traces.iter_mut().enumerate() {
            if trace.is_none_or(|x| x == i) {
                t.rebaseline_requested = true;
            }
        }
    }

    /// Acknowledges alarm `id` (clinical or technical). Returns false if no such alarm is active.
    pub fn acknowledge(&mut self, id: u64, stream_s: f64, out: &mut Vec<Event>) -> bool {
        if self.dispatch(out, |d, cx| d.acknowledge(id, stream_s, cx)) {
            return true;
        }
        self.technical.acknowledge(id, stream_s, out)
    }

    /// A surgical or user marker.
    pub fn marker(&mut self, kind: &str, text: &str, stream_s: f64, out: &mut Vec<Event>) {
        out.push(Event::Marker(MarkerEvent {
            stream_s,
            kind: kind.to_owned(),
            text: text.to_owned(),
        }));
    }

    /// A sweep of `trace` was accepted (`rejected == None`) or rejected (flat or not).
    pub fn on_sweep(&mut self, trace: usize, rejected: Option<bool>, stream_s: f64, out: &mut Vec<Event>) {
        self.technical
            .on_sweep(trace, rejected, stream_s, &mut self.next_id, out);
    }

    /// A device status report.
    pub fn on_status(&mut self, status: &DeviceStatus, stream_s: f64, out: &mut Vec<Event>) {
        self.technical.on_status(status, stream_s, &mut self.next_id, out);
    }

    /// A link event.
    pub fn on_link(&mut self, link: &LinkEvent, stream_s: f64, out: &mut Vec<Event>) {
        self.technical.on_link(link, stream_s, &mut self.next_id, out);
    }

    /// A gap.
    pub fn on_gap(&mut self, gap: &Gap, stream_s: f64, out: &mut Vec<Event>) {
        self.technical.on_gap(gap, stream_s, &mut self.next_id, out);
    }

    /// The recorder could not keep up and dropped `dropped` items: a technical alarm (the recording has holes;
    /// acquisition and monitoring are unaffected), cleared by the usual overrun hold time.
    pub fn on_recorder_behind(&mut self, dropped: u64, stream_s: f64, out: &mut Vec<Event>) {
        self.technical
            .on_recorder_behind(dropped, stream_s, &mut self.next_id, out);
    }

    /// Stream time advanced (call at least once a second of stream): time-based technical alarms clear here.
    pub fn on_time(&mut self, stream_s: f64, out: &mut Vec<Event>) {
        self.technical.on_time(stream_s, out);
    }
}

/// The event for `who`'s alarm `id` being acknowledged (no value, threshold or systemic tag).
pub(crate) fn acknowledged(stream_s: f64, id: u64, who: &str, kind: AlarmKind) -> AlarmEvent {
    alarm(
        stream_s,
        id,
        who,
        kind,
        AlarmState::Acknowledged,
        None,
        None,
        false,
    )
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn alarm(
    stream_s: f64,
    id: u64,
    trace: &str,
    kind: AlarmKind,
    state: AlarmState,
    value: Option<f64>,
    threshold: Option<f64>,
    systemic: bool,
) -> AlarmEvent {
    let class = kind.class();
    let what = match kind {
        AlarmKind::AmplitudeDrop => "amplitude drop",
        AlarmKind::LatencyIncrease => "latency increase",
        AlarmKind::ResponseLost => "response lost",
        AlarmKind::ChangeDetected => "change detected",
        AlarmKind::SignalLost => "signal lost",
        AlarmKind::Noisy => "noisy",
        AlarmKind::ElectrodeOff => "electrode off / flat",
        AlarmKind::Saturation => "saturation",
        AlarmKind::LinkErrors => "link errors",
        AlarmKind::Overrun => "overrun",
    };
    let state_word = match state {
        AlarmState::Raised => "RAISED",
        AlarmState::Acknowledged => "acknowledged",
        AlarmState::Cleared => "cleared",
    };
    let mut message = format!(
        "{state_word}: {what} on {}",
        if trace.is_empty() { "device" } else { trace }
    );
    if let (Some(v), Some(t)) = (value, threshold) {
        message.push_str(&format!(" (value {v:.3}, threshold {t:.3})"));
    }
    if systemic {
        message.push_str(" — systemic: all cortical traces depressed, peripheral controls unchanged");
    }
    if class == AlarmClass::Technical && state == AlarmState::Raised && trace != "recorder" {
        message.push_str(" — clinical criteria of the affected traces suspended");
    }
    AlarmEvent {
        stream_s,
        id,
        trace: (!trace.is_empty()).then(|| trace.to_owned()),
        kind,
        class,
        state,
        value,
        threshold,
        systemic,
        detector: if class == AlarmClass::Clinical {
            "block"
        } else {
            "technical"
        }
        .to_owned(),
        message,
    }
}
