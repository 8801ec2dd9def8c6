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
//! - [`SequentialDetector`] ([`sequential`]): a single-sweep matched-filter CUSUM per trace, for faster
//!   detection of drops than block averages allow (not yet wired into the pipeline).
//!
//! The monitor is pure and deterministic: events come out in stream time, in the order their causes came in.
//! It allocates only when it emits an event (at most a few per average), never per sweep or per sample.

mod criteria;
pub mod sequential;
mod technical;

pub use criteria::{Criteria, Role};
pub use sequential::{Decision, SequentialConfig, SequentialDetector, SweepOutcome};

use ionm_core::events::{
    AlarmClass, AlarmEvent, AlarmKind, AlarmState, BaselineEvent, BaselineOrigin, Event, MarkerEvent,
    Waveform,
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
struct Baseline {
    amplitude_uv: f64,
    latency_ms: Option<f64>,
    stream_s: f64,
    number: u32,
}

/// The state of one clinical criterion of one trace.
#[derive(Debug, Clone, Default)]
struct Criterion {
    breaches: u32,
    recoveries: u32,
    active: Option<u64>,
    acknowledged: bool,
}

#[derive(Debug, Clone)]
struct TraceState {
    meta: TraceMeta,
    baseline: Option<Baseline>,
    gate_passes: u32,
    /// The latest averages that passed the quality gate in a row (at most `baseline_after`).
    passing: Vec<AverageInput>,
    last: Option<AverageInput>,
    last_ratio: Option<f64>,
    amplitude: Criterion,
    latency: Criterion,
    lost: Criterion,
    rebaseline_requested: bool,
}

/// See the crate documentation.
#[derive(Debug)]
pub struct Monitor {
    traces: Vec<TraceState>,
    technical: Technical,
    next_id: u64,
    raised: u64,
}

impl Monitor {
    /// A monitor for these traces, with no baselines yet. `n_channels` is the device's channel count and
    /// `labels` its channel labels (for channel-wide technical alarms).
    pub fn new(traces: Vec<TraceMeta>, labels: Vec<String>) -> Self {
        let technical = Technical::new(&traces, labels);
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
                    amplitude: Criterion::default(),
                    latency: Criterion::default(),
                    lost: Criterion::default(),
                    rebaseline_requested: false,
                })
                .collect(),
            technical,
            next_id: 1,
            raised: 0,
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
            out.push(Event::Baseline(BaselineEvent {
                stream_s: a.stream_s,
                trace: tr.meta.name.clone(),
                number,
                origin,
                sweeps: a.sweeps,
                amplitude_uv: None,
                latency_ms: None,
                fsp: a.fsp,
                residual_noise_uv: a.residual_noise_uv,
                replaces_s: tr.baseline.as_ref().map(|b| b.stream_s),
                waveform: waveform(),
            }));
            // An automatic baseline is the mean of the averages that passed the gate in a row (replicated, and
            // √n less noisy than one); a user's baseline is the average they chose.
            let from: &[AverageInput] = if origin == BaselineOrigin::Automatic {
                &tr.passing
            } else {
                std::slice::from_ref(a)
            };
            let mean = |f: fn(&AverageInput) -> Option<f64>| {
                let v: Vec<f64> = from.iter().filter_map(f).collect();
                (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
            };
            let amplitude_uv = mean(|x| x.amplitude_uv).unwrap_or(0.0);
            let latency_ms = mean(|x| x.latency_ms);
            tr.baseline = Some(Baseline {
                amplitude_uv,
                latency_ms,
                stream_s: a.stream_s,
                number,
            });
            tr.passing.clear();
            if let Some(Event::Baseline(ev)) = out.last_mut() {
                ev.amplitude_uv = Some(amplitude_uv);
                ev.latency_ms = latency_ms;
            }
            // A new baseline restarts the comparison: pending confirmations are void; active alarms are
            // re-evaluated against it and clear through the usual hysteresis.
            for crit in [&mut tr.amplitude, &mut tr.latency, &mut tr.lost] {
                crit.breaches = 0;
            }
            assessment.baseline_taken = true;
        }
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
        let lat_ratio = a.latency_ms.zip(b.latency_ms).map(|(l, bl)| l / bl);
        let lat_delta = a.latency_ms.zip(b.latency_ms).map(|(l, bl)| l - bl);
        assessment.amplitude_ratio = amp_ratio;
        assessment.latency_ratio = lat_ratio;
        tr.last_ratio = amp_ratio;
        if suspended.is_some() {
            for crit in [&mut tr.amplitude, &mut tr.latency, &mut tr.lost] {
                crit.breaches = 0;
                crit.recoveries = 0;
            }
            return assessment;
        }
        // Each criterion: (met, recovered with hysteresis, value, threshold).
        let amp_thr = c.amplitude_ratio;
        let drop_stands_out = a
            .amplitude_uv
            .zip(a.residual_noise_uv)
            .is_none_or(|(amp, n)| b.amplitude_uv - amp >= c.min_drop_snr * std::f64::consts::SQRT_2 * n);
        let amp_met = amp_thr.zip(amp_ratio).is_some_and(|(t, r)| r <= t) && drop_stands_out;
        let amp_recovered = amp_thr
            .zip(amp_ratio)
            .is_none_or(|(t, r)| r > t + c.clear_margin_amplitude);
        let (lat_met, lat_recovered, lat_value, lat_threshold) =
            match (c.latency_ratio, c.latency_increase_ms) {
                (Some(t), _) => (
                    lat_ratio.is_some_and(|r| r >= t),
                    lat_ratio.is_none_or(|r| r < t - c.clear_margin_latency),
                    lat_ratio,
                    Some(t),
                ),
                (None, Some(ms)) => (
                    lat_delta.is_some_and(|d| d >= ms),
                    lat_delta.is_none_or(|d| d < ms - 10.0 * c.clear_margin_latency),
                    lat_delta,
                    Some(ms),
                ),
                (None, None) => (false, true, None, None),
            };
        let noise = a.residual_noise_uv.unwrap_or(0.0);
        // Lost: the primary peak is not found at all, or its amplitude is within the noise. A peak found whose
        // paired trough is not (amplitude unmeasurable) is not a loss.
        let found = a.latency_ms.is_some() || a.amplitude_uv.is_some();
        let lost_met = c
            .loss_snr
            .is_some_and(|k| !found || a.amplitude_uv.is_some_and(|amp| amp < k * noise));
        let lost_recovered = c
            .loss_snr
            .is_none_or(|k| found && a.amplitude_uv.is_none_or(|amp| amp >= (k + 0.5) * noise));
        let (amp_met, lat_met, amp_recovered, lat_recovered) = if c.require_both {
            let both = amp_met && lat_met;
            (false, both, true, amp_recovered || lat_recovered)
        } else {
            (amp_met, lat_met, amp_recovered, lat_recovered)
        };
        let name = tr.meta.name.clone();
        let role = tr.meta.role;
        let confirm = c.confirm.max(1);
        let mut raised = Vec::new();
        for (kind, crit, met, recovered, value, threshold) in [
            (
                AlarmKind::AmplitudeDrop,
                &mut tr.amplitude,
                amp_met,
                amp_recovered,
                amp_ratio,
                amp_thr,
            ),
            (
                AlarmKind::LatencyIncrease,
                &mut tr.latency,
                lat_met,
                lat_recovered,
                lat_value,
                lat_threshold,
            ),
            (
                AlarmKind::ResponseLost,
                &mut tr.lost,
                lost_met,
                lost_recovered,
                a.amplitude_uv,
                c.loss_snr,
            ),
        ] {
            crit.breaches = if met { crit.breaches + 1 } else { 0 };
            crit.recoveries = if recovered { crit.recoveries + 1 } else { 0 };
            if let Some(id) = crit.active {
                if crit.recoveries >= confirm {
                    crit.active = None;
                    crit.acknowledged = false;
                    out.push(Event::Alarm(alarm(
                        a.stream_s,
                        id,
                        &name,
                        kind,
                        AlarmState::Cleared,
                        value,
                        threshold,
                        false,
                    )));
                }
            } else if crit.breaches >= confirm {
                let id = self.next_id;
                self.next_id += 1;
                crit.active = Some(id);
                crit.acknowledged = false;
                raised.push((id, kind, value, threshold));
            }
        }
        for (id, kind, value, threshold) in raised {
            self.raised += 1;
            let systemic = role == Role::Cortical && self.is_systemic();
            out.push(Event::Alarm(alarm(
                a.stream_s,
                id,
                &name,
                kind,
                AlarmState::Raised,
                value,
                threshold,
                systemic,
            )));
        }
        assessment
    }

    /// True when the cortical traces are depressed together while the peripheral controls are not: at least two
    /// cortical traces with a baseline and a measurement, three quarters of them at ≤ 80% of baseline, and the
    /// median peripheral control at ≥ 80%. Medians and fractions, not "every", because single averages are noisy.
    fn is_systemic(&self) -> bool {
        let ratios = |role: Role| -> Vec<f64> {
            self.traces
                .iter()
                .filter(|t| t.meta.role == role && t.baseline.is_some())
                .filter_map(|t| t.last_ratio)
                .collect()
        };
        let cortical = ratios(Role::Cortical);
        let mut peripheral = ratios(Role::Peripheral);
        if cortical.len() < 2 || peripheral.is_empty() {
            return false;
        }
        let depressed = cortical.iter().filter(|&&r| r <= 0.8).count() as f64 / cortical.len() as f64;
        peripheral.sort_by(f64::total_cmp);
        let median = peripheral[peripheral.len() / 2];
        depressed >= 0.75 && median >= 0.8
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
        for tr in &mut self.traces {
            for (kind, crit) in [
                (AlarmKind::AmplitudeDrop, &mut tr.amplitude),
                (AlarmKind::LatencyIncrease, &mut tr.latency),
                (AlarmKind::ResponseLost, &mut tr.lost),
            ] {
                if crit.active == Some(id) && !crit.acknowledged {
                    crit.acknowledged = true;
                    out.push(Event::Alarm(alarm(
                        stream_s,
                        id,
                        &tr.meta.name,
                        kind,
                        AlarmState::Acknowledged,
                        None,
                        None,
                        false,
                    )));
                    return true;
                }
            }
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
