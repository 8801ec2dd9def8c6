//! Change detectors behind one trait ([`ChangeDetector`]), selected per protocol ([`DetectorSettings`]):
//!
//! - [`BlockDetector`] (`block`): the standard method. Each N-sweep average is compared with the baseline
//!   under the trace's [`crate::Criteria`] (SSEP: amplitude ≤ 50% and/or latency ≥ 110%), confirmed on
//!   consecutive averages, cleared with hysteresis.
//! - [`SequentialBank`] (`sequential`): one [`SequentialDetector`] per SSEP trace; every accepted sweep is
//!   scored (matched filter + CUSUM on the amplitude, cross-correlation of short averages + CUSUM on the
//!   latency), thresholds from a false-alarm rate for the whole case.
//!
//! Both emit the same [`AlarmEvent`]s (`detector` says which), both are suspended while a technical alarm is
//! active on the trace's channel (the monitor does not call them), both tag a cortical alarm `systemic` when
//! the cortical traces are depressed together and the peripheral controls are not, and both restart on a
//! user's re-baseline. The [`Monitor`](crate::Monitor) keeps the baselines and the technical alarms and drives
//! every enabled detector.

use crate::sequential::{ChangeLabel, Decision, SequentialConfig, SequentialDetector};
use crate::{AverageInput, Role, TraceMeta, TraceState, acknowledged, alarm};
pub use ionm_core::DetectorSettings;
use ionm_core::events::{AlarmEvent, AlarmKind, AlarmState, BaselineOrigin, Event, EvidenceValue};

/// How one average compares with its trace's baseline (computed once by the monitor).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Comparison {
    /// Baseline amplitude, µV.
    pub baseline_amplitude_uv: f64,
    /// Amplitude / baseline.
    pub amplitude_ratio: Option<f64>,
    /// Latency / baseline.
    pub latency_ratio: Option<f64>,
    /// Latency − baseline, ms.
    pub latency_delta_ms: Option<f64>,
}

/// What a detector may read of the monitor's state, and where it emits.
pub struct DetectorContext<'a> {
    pub(crate) traces: &'a [TraceState],
    pub(crate) next_id: &'a mut u64,
    pub(crate) raised: &'a mut u64,
    pub(crate) out: &'a mut Vec<Event>,
}

impl DetectorContext<'_> {
    /// Number of traces.
    pub fn trace_count(&self) -> usize {
        self.traces.len()
    }

    /// A trace's description.
    pub fn meta(&self, t: usize) -> Option<&TraceMeta> {
        self.traces.get(t).map(|s| &s.meta)
    }

    /// The trace's baseline latency, ms (primary peak), if it has a baseline.
    pub fn baseline_latency_ms(&self, t: usize) -> Option<f64> {
        self.traces.get(t)?.baseline.as_ref()?.latency_ms
    }

    /// The block averages' verdict on a systemic change: at least two cortical traces with a baseline and a
    /// measurement, three quarters of them at ≤ 80% of baseline, and the median peripheral control at ≥ 80%;
    /// each trace's ratio is the mean over its latest [`crate::SYSTEMIC_AVERAGES`] averages since the baseline.
    /// A systemic change (anaesthesia, blood pressure) lasts; judged on the latest average alone, two unchanged
    /// noisy cortical traces each reading ≤ 80% once (the s.d. of one average's ratio is 0.11–0.14 on the
    /// simulator's noisy cortical traces, ≤ 80% in 5–12% of their averages) made a focal cord alarm systemic —
    /// the dangerous mistake. Two averages, not more: a sudden global drop is confirmed on its second average,
    /// and the other traces must count as depressed by then.
    pub fn block_systemic(&self) -> bool {
        let ratios = |role: Role| -> Vec<f64> {
            (0..self.traces.len())
                .filter(|&t| self.traces[t].meta.role == role)
                .filter_map(|t| self.block_ratio(t))
                .collect()
        };
        systemic_rule(&ratios(Role::Cortical), ratios(Role::Peripheral), 0.8)
    }

    /// Trace `t`'s mean amplitude ratio over its latest [`crate::SYSTEMIC_AVERAGES`] block averages since its
    /// baseline (`None` without a baseline, or when the latest average had no amplitude).
    pub fn block_ratio(&self, t: usize) -> Option<f64> {
        let tr = self.traces.get(t)?;
        tr.baseline.as_ref()?;
        tr.recent_ratio()
    }

    /// A new alarm id (counted as raised).
    pub fn new_alarm_id(&mut self) -> u64 {
        let id = *self.next_id;
        *self.next_id += 1;
        *self.raised += 1;
        id
    }

    /// Emits an event.
    pub fn emit(&mut self, e: Event) {
        self.out.push(e);
    }
}

/// A cortical trace whose slow single-sweep amplitude is at or below this (baseline units) counts as changed for
/// the sequential detector's systemic tag ([`SequentialBank`]).
const SYSTEMIC_DEPRESSED: f64 = 0.85;

/// The largest standard error of a cortical trace's slow amplitude for which it votes by the
/// [`SYSTEMIC_DEPRESSED`] threshold alone (1.5 standard errors from both no change and a 30% decline).
const SYSTEMIC_RESOLVED_SE: f64 = 0.1;

/// Cortical `ratios` mostly (≥ 75%, at least two traces) at or below `depressed`, peripheral median ≥ 0.8.
fn systemic_rule(cortical: &[f64], mut peripheral: Vec<f64>, depressed: f64) -> bool {
    if cortical.len() < 2 || peripheral.is_empty() {
        return false;
    }
    let n = cortical.iter().filter(|&&r| r <= depressed).count() as f64 / cortical.len() as f64;
    peripheral.sort_by(f64::total_cmp);
    n >= 0.75 && peripheral[peripheral.len() / 2] >= 0.8
}

/// A change detector driven by the monitor. Every method has a no-op default: a detector implements what it
/// uses. None may allocate per sweep (emitting an event is allowed: a few per change).
pub trait ChangeDetector: std::fmt::Debug + Send {
    /// The name in [`AlarmEvent::detector`](ionm_core::events::AlarmEvent::detector).
    fn name(&self) -> &'static str;

    /// Trace `t`'s sweeps have `window_len` samples at `dt_ms`, the first `start_ms` from the stimulus (set-up,
    /// before any sweep).
    fn set_timebase(
        &mut self,
        _t: usize,
        _meta: &TraceMeta,
        _window_len: usize,
        _dt_ms: f64,
        _start_ms: f64,
    ) {
    }

    /// An average of `a.trace` compared with its baseline (the trace is not suspended).
    fn on_average(&mut self, _a: &AverageInput, _c: &Comparison, _cx: &mut DetectorContext<'_>) {}

    /// An average came while the trace's criteria were suspended (a technical alarm).
    fn on_average_suspended(&mut self, _trace: usize) {}

    /// An accepted sweep of `trace` (filtered, µV, the trace's window), while the trace is not suspended.
    fn on_sweep(&mut self, _trace: usize, _data: &[f32], _stream_s: f64, _cx: &mut DetectorContext<'_>) {}

    /// The trace took a baseline (its latency, ms, when measured).
    fn on_baseline(
        &mut self,
        _trace: usize,
        _origin: BaselineOrigin,
        _latency_ms: Option<f64>,
        _stream_s: f64,
        _cx: &mut DetectorContext<'_>,
    ) {
    }

    /// Acknowledges alarm `id` if it is one of this detector's active alarms.
    fn acknowledge(&mut self, _id: u64, _stream_s: f64, _cx: &mut DetectorContext<'_>) -> bool {
        false
    }

    /// Appends the detector's current evidence per trace (for the periodic stats event).
    fn evidence(&self, _cx: &DetectorContext<'_>, _out: &mut Vec<EvidenceValue>) {}
}

/// The state of one clinical criterion of one trace.
#[derive(Debug, Clone, Default)]
struct Criterion {
    breaches: u32,
    recoveries: u32,
    active: Option<u64>,
    acknowledged: bool,
}

#[derive(Debug, Clone, Default)]
struct BlockTrace {
    amplitude: Criterion,
    latency: Criterion,
    lost: Criterion,
}

/// What one average does to one criterion.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Step {
    /// Confirmed: raise (the caller assigns the id with [`BlockTrace::activate`]).
    Raise,
    /// Recovered: the alarm with this id is over (already removed from the criterion).
    Clear(u64),
    /// Nothing changes.
    Stay,
}

/// The three criteria (amplitude, latency, loss) on one average: kind, step, value and threshold.
type Steps = [(AlarmKind, Step, Option<f64>, Option<f64>); 3];

impl BlockTrace {
    /// Scores one average against the baseline under criteria `c`, with confirmation and hysteresis. A cleared
    /// criterion is reset here; a raised one is set by [`Self::activate`] once the caller has an id for it.
    fn step(&mut self, a: &AverageInput, cmp: &Comparison, c: &crate::Criteria) -> Steps {
        let (amp_ratio, lat_ratio, lat_delta) =
            (cmp.amplitude_ratio, cmp.latency_ratio, cmp.latency_delta_ms);
        let amp_thr = c.amplitude_ratio;
        let drop_stands_out = a.amplitude_uv.zip(a.residual_noise_uv).is_none_or(|(amp, n)| {
            cmp.baseline_amplitude_uv - amp >= c.min_drop_snr * std::f64::consts::SQRT_2 * n
        });
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
        let confirm = c.confirm.max(1);
        let mut steps: Steps = [
            (AlarmKind::AmplitudeDrop, Step::Stay, amp_ratio, amp_thr),
            (AlarmKind::LatencyIncrease, Step::Stay, lat_value, lat_threshold),
            (AlarmKind::ResponseLost, Step::Stay, a.amplitude_uv, c.loss_snr),
        ];
        let moves = [
            (amp_met, amp_recovered),
            (lat_met, lat_recovered),
            (lost_met, lost_recovered),
        ];
        for (i, (met, recovered)) in moves.into_iter().enumerate() {
            let crit = self.criterion(i);
            crit.breaches = if met { crit.breaches + 1 } else { 0 };
            crit.recoveries = if recovered { crit.recoveries + 1 } else { 0 };
            if let Some(id) = crit.active {
                if crit.recoveries >= confirm {
                    crit.active = None;
                    crit.acknowledged = false;
                    steps[i].1 = Step::Clear(id);
                }
            } else if crit.breaches >= confirm {
                steps[i].1 = Step::Raise;
            }
        }
        steps
    }

    /// Criterion `i` of [`Steps`] is now in alarm under `id`.
    fn activate(&mut self, i: usize, id: u64) {
        let crit = self.criterion(i);
        crit.active = Some(id);
        crit.acknowledged = false;
    }

    fn criterion(&mut self, i: usize) -> &mut Criterion {
        match i {
            0 => &mut self.amplitude,
            1 => &mut self.latency,
            _ => &mut self.lost,
        }
    }

    /// Pending confirmations and recoveries are void (suspension, new baseline).
    fn void_counts(&mut self, recoveries_too: bool) {
        for crit in [&mut self.amplitude, &mut self.latency, &mut self.lost] {
            crit.breaches = 0;
            if recoveries_too {
                crit.recoveries = 0;
            }
        }
    }
}

/// The standard block-average detector: each average against the baseline under the trace's criteria, with
/// confirmation and hysteresis (see [`crate::Criteria`]).
#[derive(Debug, Clone)]
pub struct BlockDetector {
    traces: Vec<BlockTrace>,
}

impl BlockDetector {
    /// For `n` traces.
    pub fn new(n: usize) -> Self {
        Self {
            traces: vec![BlockTrace::default(); n],
        }
    }
}

impl ChangeDetector for BlockDetector {
    fn name(&self) -> &'static str {
        "block"
    }

    fn on_average_suspended(&mut self, trace: usize) {
        if let Some(tr) = self.traces.get_mut(trace) {
            tr.void_counts(true);
        }
    }

    fn on_baseline(
        &mut self,
        trace: usize,
        _origin: BaselineOrigin,
        _latency_ms: Option<f64>,
        _stream_s: f64,
        _cx: &mut DetectorContext<'_>,
    ) {
        // A new baseline restarts the comparison: pending confirmations are void; active alarms are
        // re-evaluated against it and clear through the usual hysteresis.
        if let Some(tr) = self.traces.get_mut(trace) {
            tr.void_counts(false);
        }
    }

    fn on_average(&mut self, a: &AverageInput, cmp: &Comparison, cx: &mut DetectorContext<'_>) {
        let Some(meta) = cx.meta(a.trace) else { return };
        let Some(tr) = self.traces.get_mut(a.trace) else {
            return;
        };
        let steps = tr.step(a, cmp, &meta.criteria);
        let name = meta.name.clone();
        let role = meta.role;
        for (kind, step, value, threshold) in steps {
            if let Step::Clear(id) = step {
                cx.emit(Event::Alarm(alarm(
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
        }
        for (i, (kind, step, value, threshold)) in steps.into_iter().enumerate() {
            if !matches!(step, Step::Raise) {
                continue;
            }
            let id = cx.new_alarm_id();
            tr.activate(i, id);
            let systemic = role == Role::Cortical && cx.block_systemic();
            cx.emit(Event::Alarm(alarm(
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
    }

    fn acknowledge(&mut self, id: u64, stream_s: f64, cx: &mut DetectorContext<'_>) -> bool {
        for (t, tr) in self.traces.iter_mut().enumerate() {
            for (kind, crit) in [
                (AlarmKind::AmplitudeDrop, &mut tr.amplitude),
                (AlarmKind::LatencyIncrease, &mut tr.latency),
                (AlarmKind::ResponseLost, &mut tr.lost),
            ] {
                if crit.active == Some(id) && !crit.acknowledged {
                    crit.acknowledged = true;
                    let name = cx.meta(t).map(|m| m.name.clone()).unwrap_or_default();
                    cx.emit(Event::Alarm(acknowledged(stream_s, id, &name, kind)));
                    return true;
                }
            }
        }
        false
    }
}

/// One trace's sequential detector and its alarm.
#[derive(Debug, Clone)]
struct SeqTrace {
    det: SequentialDetector,
    /// The trace's one active alarm.
    alarm: Option<SeqAlarm>,
    /// Accepted sweeps seen and the stream time of the first, for the sweep rate.
    sweeps: u64,
    first_s: f64,
    /// The standard criteria on the block averages (when [`DetectorSettings::block_floor`]).
    floor: BlockTrace,
}

/// What raised a sequential alarm (and so what clears it).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Source {
    /// The CUSUM crossed its threshold; it clears when the CUSUM says the change is over.
    Cusum,
    /// The standard criterion (index in [`Steps`]) was confirmed on the block averages; it clears with its
    /// hysteresis.
    Floor(usize),
}

#[derive(Debug, Clone, Copy)]
struct SeqAlarm {
    id: u64,
    kind: AlarmKind,
    acknowledged: bool,
    source: Source,
}

/// The sequential detector on every SSEP trace (cortical, subcortical, peripheral); MEP and BAEP traces are
/// left to the block detector. See [`crate::sequential`] for the method.
///
/// With [`DetectorSettings::block_floor`] (the default) it is a combined Shewhart–CUSUM scheme (Lucas 1982,
/// *J. Quality Technology* 14:51): the same trace's block averages are also scored under the standard criteria
/// (the [`BlockDetector`]'s rule, confirmation and hysteresis), and a confirmed breach raises the sequential
/// alarm if the CUSUM has not already. The CUSUM is tuned to the design change and is slow on changes unlike it
/// (smaller drops, a noise-level swing it cannot tell from its calibration), and it is blind while it learns
/// its template; the floor keeps it from ever being later than the standard method on the same averages.
/// Every alarm's message says which part raised it.
#[derive(Debug, Clone)]
pub struct SequentialBank {
    settings: DetectorSettings,
    traces: Vec<Option<SeqTrace>>,
}

/// Modalities the sequential detector runs on.
fn sequential_applies(meta: &TraceMeta) -> bool {
    meta.modality.starts_with("ssep")
        && matches!(meta.role, Role::Cortical | Role::Subcortical | Role::Peripheral)
}

impl SequentialBank {
    /// For `n` traces; detectors are made by [`ChangeDetector::set_timebase`].
    pub fn new(settings: DetectorSettings, n: usize) -> Self {
        Self {
            settings,
            traces: vec![None; n],
        }
    }

    fn n_active(&self) -> usize {
        self.traces.iter().filter(|t| t.is_some()).count().max(1)
    }

    /// Systemic: the cortical traces are changed together while the median peripheral slow amplitude is ≥ 80%
    /// (the block rule, [`systemic_rule`], on the sequential detector's own amplitude estimates besides the
    /// block's). Each cortical trace votes **changed** (an alarm, evidence past the threshold, the mean ratio of
    /// its latest two block averages ≤ 80%, or a slow amplitude — 512 sweeps — ≤ 85%) or **unchanged**, and at
    /// least two votes, three quarters of them changed, make it systemic. The slow amplitude decides a vote alone
    /// only where it resolves a 30% decline: with a standard error ([`crate::SequentialDetector::amplitude_slow_se`],
    /// the slow mean's and the calibrated level's together) of at most [`SYSTEMIC_RESOLVED_SE`], 85% is 1.5
    /// standard errors from both no change and a 30% decline. A noisier trace (the simulator's tibial P37:
    /// 0.11–0.16) needs two standard errors either way — changed at ≤ min(85%, 1 − 2 s.e.), unchanged at
    /// ≥ 85% + 2 s.e. — and otherwise abstains (its alarm and block averages still count). So when every
    /// cortical trace is that noisy, a global decline is tagged only once it reads ≈ 20–30% on them.
    ///
    /// Before, every cortical trace voted by the 85% alone: a noisy one reading above it by noise vetoed the tag
    /// of an anaesthetic drift that the clean median N20 traces showed plainly, and one reading below it by noise
    /// helped call a focal drop systemic. Replayed on the votes behind the suite's sequential alarms
    /// (`benches/results/2026-11-27-vm-suite-latency/systemic/`), before → after: tuned and sets A–C, drift
    /// alarms tagged 31 → 33 of 34, focal alarms tagged systemic 0 → 0 of 139; new sets D and E, drift 16 → 16
    /// of 17, focal 1 → 0 of 69. Rules that loosened the 85% or the block's 80% (to 0.88–0.9; 0.85) tagged 2–13
    /// of the focal alarms systemic.
    fn systemic(&self, cx: &DetectorContext<'_>) -> bool {
        let mut cortical = Vec::new();
        let mut peripheral = Vec::new();
        for (t, s) in self.traces.iter().enumerate() {
            let (Some(s), Some(meta)) = (s, cx.meta(t)) else {
                continue;
            };
            // An insensitive trace raises nothing but still tracks its slow amplitude: good enough for a
            // peripheral control (the median of them), too noisy to count a cortical trace as changed.
            let usable = s.det.is_monitoring()
                || s.alarm.is_some()
                || (s.det.is_insensitive() && meta.role == Role::Peripheral);
            if !usable {
                continue;
            }
            let (slow, se, block) = (
                s.det.amplitude_slow(),
                s.det.amplitude_slow_se(),
                cx.block_ratio(t),
            );
            // Strict on purpose: calling a focal injury systemic is the dangerous mistake. On the suite, with
            // "≤ 90% or evidence past half the threshold", noisy tibial traces made 3 of 24 focal drops look
            // global.
            let hard = s.det.is_active()
                || s.alarm.is_some()
                || (meta.role == Role::Cortical && block.is_some_and(|r| r <= 0.8));
            let resolved = se <= SYSTEMIC_RESOLVED_SE;
            let vote = if hard || (slow <= SYSTEMIC_DEPRESSED && (resolved || slow <= 1.0 - 2.0 * se)) {
                Some(true)
            } else if resolved || slow >= SYSTEMIC_DEPRESSED + 2.0 * se {
                Some(false)
            } else {
                None
            };
            tracing::debug!(
                trace = meta.name.as_str(),
                role = ?meta.role,
                slow,
                se,
                block = block.unwrap_or(f64::NAN),
                active = s.det.is_active(),
                alarm = s.alarm.is_some(),
                ?vote,
                "sequential systemic vote"
            );
            match meta.role {
                // As ratios for the shared rule: changed → 0, unchanged → 1, no vote → left out.
                Role::Cortical => {
                    if let Some(changed) = vote {
                        cortical.push(if changed { 0.0 } else { 1.0 });
                    }
                }
                Role::Peripheral => peripheral.push(if s.det.is_active() { 0.0 } else { slow }),
                _ => {}
            }
        }
        systemic_rule(&cortical, peripheral, 0.5)
    }
}

/// `ev` as the sequential detector's (`detector: "sequential"`).
fn by_sequential(mut ev: AlarmEvent) -> AlarmEvent {
    ev.detector = "sequential".to_owned();
    ev
}

impl ChangeDetector for SequentialBank {
    fn name(&self) -> &'static str {
        "sequential"
    }

    /// Makes the trace's detector if it is an SSEP trace (kept if it already exists with this length).
    fn set_timebase(&mut self, t: usize, meta: &TraceMeta, window_len: usize, dt_ms: f64, start_ms: f64) {
        let Some(slot) = self.traces.get_mut(t) else {
            return;
        };
        if !sequential_applies(meta) || window_len < 8 {
            return;
        }
        if let Some(s) = slot.as_mut().filter(|s| s.det.window_len() == window_len) {
            s.det.set_sample_period_ms(dt_ms);
            s.det.set_window_start_ms(start_ms);
            return;
        }
        let s = &self.settings;
        let config = SequentialConfig {
            template_sweeps: s.template_sweeps,
            calibration_sweeps: s.calibration_sweeps,
            design_drop: s.design_drop,
            design_latency: s.design_latency,
            latency_cusum: s.latency_cusum,
            ..SequentialConfig::for_rate(4.7, s.false_alarm_hours)
        };
        let mut det = SequentialDetector::new(config, window_len);
        det.set_sample_period_ms(dt_ms);
        det.set_window_start_ms(start_ms);
        *slot = Some(SeqTrace {
            det,
            alarm: None,
            sweeps: 0,
            first_s: 0.0,
            floor: BlockTrace::default(),
        });
    }

    fn on_sweep(&mut self, trace: usize, data: &[f32], stream_s: f64, cx: &mut DetectorContext<'_>) {
        let n_active = self.n_active() as f64;
        let hours = self.settings.false_alarm_hours;
        let Some(Some(s)) = self.traces.get_mut(trace) else {
            return;
        };
        if s.sweeps == 0 {
            s.first_s = stream_s;
        }
        s.sweeps += 1;
        if !s.det.is_monitoring() && s.sweeps >= 20 && stream_s > s.first_s {
            // Accepted sweeps per second so far: the ARL is in the sweeps the CUSUM sees.
            let rate = (s.sweeps - 1) as f64 / (stream_s - s.first_s);
            s.det.set_arl_sweeps(rate * hours * 3600.0 * n_active);
        }
        let was_calibrating = !s.det.is_monitoring() && !s.det.is_insensitive();
        let outcome = s.det.on_sweep(data);
        if was_calibrating && s.det.is_insensitive() {
            let name = cx.meta(trace).map_or("?", |m| m.name.as_str());
            tracing::warn!(
                trace = name,
                sigma = s.det.sigma(),
                k = s.det.reference(),
                loss_delay_sweeps = s.det.loss_delay_sweeps(),
                "sequential detector off on this trace until re-baseline: its single sweeps are too noisy to \
                 show even a lost response sooner than the block averages (the block detector still monitors it)"
            );
        }
        let Some(o) = outcome else { return };
        let floor_alarm = s.alarm.is_some_and(|a| matches!(a.source, Source::Floor(_)));
        match o.decision {
            // The trace is already in alarm by the standard criterion: that alarm stands.
            Some(Decision::Raised) if floor_alarm => {}
            Some(Decision::Raised) => {
                let (kind, what) = match o.label {
                    Some(ChangeLabel::Latency { shift_ms, ratio }) => (
                        AlarmKind::LatencyIncrease,
                        match ratio {
                            Some(r) => format!("latency {shift_ms:+.2} ms ({:.0}% of baseline)", 100.0 * r),
                            None => format!("latency {shift_ms:+.2} ms"),
                        },
                    ),
                    Some(ChangeLabel::Amplitude { ratio }) => (
                        AlarmKind::AmplitudeDrop,
                        format!("amplitude ≈ {:.0}% of baseline", 100.0 * ratio),
                    ),
                    None => (AlarmKind::ChangeDetected, String::new()),
                };
                let Some(meta) = cx.meta(trace) else { return };
                let (name, role) = (meta.name.clone(), meta.role);
                let latency_led = o.latency_threshold > 0.0 && o.latency_evidence >= o.latency_threshold;
                let (value, threshold) = if latency_led {
                    (o.latency_evidence, o.latency_threshold)
                } else {
                    (o.evidence, o.threshold)
                };
                // From its own slow amplitude estimates only. The block averages' verdict was OR-ed in before;
                // it judges single 200-sweep averages regardless of their noise, and on a held-out seed two
                // unaffected cortical traces at 0.64 and 0.74 of baseline by noise made a focal P37 drop look
                // systemic — the dangerous mistake.
                let systemic = role == Role::Cortical && self.systemic(cx);
                tracing::debug!(stream_s, trace = name.as_str(), systemic, "sequential raise");
                let id = cx.new_alarm_id();
                if let Some(Some(s)) = self.traces.get_mut(trace) {
                    s.alarm = Some(SeqAlarm {
                        id,
                        kind,
                        acknowledged: false,
                        source: Source::Cusum,
                    });
                }
                let mut ev = by_sequential(alarm(
                    stream_s,
                    id,
                    &name,
                    kind,
                    AlarmState::Raised,
                    Some(value),
                    Some(threshold),
                    systemic,
                ));
                ev.message.push_str(&format!(
                    " — sequential evidence {value:.1} ≥ {threshold:.1}; {what}"
                ));
                cx.emit(Event::Alarm(ev));
            }
            Some(Decision::Cleared) => {
                let taken = match self.traces.get_mut(trace) {
                    Some(Some(s)) if !floor_alarm => s.alarm.take(),
                    _ => None,
                };
                if let Some(SeqAlarm { id, kind, .. }) = taken {
                    let name = cx.meta(trace).map(|m| m.name.clone()).unwrap_or_default();
                    let ev = by_sequential(alarm(
                        stream_s,
                        id,
                        &name,
                        kind,
                        AlarmState::Cleared,
                        Some(o.evidence),
                        Some(o.threshold),
                        false,
                    ));
                    cx.emit(Event::Alarm(ev));
                }
            }
            None => {}
        }
    }

    fn on_average_suspended(&mut self, trace: usize) {
        if let Some(Some(s)) = self.traces.get_mut(trace) {
            s.floor.void_counts(true);
        }
    }

    /// The floor: the standard criteria on this trace's block average (see the type's documentation).
    fn on_average(&mut self, a: &AverageInput, cmp: &Comparison, cx: &mut DetectorContext<'_>) {
        if !self.settings.block_floor || !matches!(self.traces.get(a.trace), Some(Some(_))) {
            return;
        }
        let Some(meta) = cx.meta(a.trace) else { return };
        let (name, role, criteria) = (meta.name.clone(), meta.role, meta.criteria.clone());
        // Decided before the trace is borrowed (the same rule as for the CUSUM's alarms); only used if this
        // average raises.
        let systemic = role == Role::Cortical && self.systemic(cx);
        let Some(Some(s)) = self.traces.get_mut(a.trace) else {
            return;
        };
        let steps = s.floor.step(a, cmp, &criteria);
        for (i, (kind, step, value, threshold)) in steps.into_iter().enumerate() {
            match step {
                Step::Clear(_) => {
                    if let Some(now) = s.alarm
                        && now.source == Source::Floor(i)
                    {
                        s.alarm = None;
                        let ev = by_sequential(alarm(
                            a.stream_s,
                            now.id,
                            &name,
                            kind,
                            AlarmState::Cleared,
                            value,
                            threshold,
                            false,
                        ));
                        cx.emit(Event::Alarm(ev));
                    }
                }
                // Met; it gets an alarm of its own below if the trace has none.
                Step::Raise => s.floor.activate(i, 0),
                Step::Stay => {}
            }
        }
        // A criterion met while the trace has no alarm (just confirmed, or still met when the alarm that hid it
        // cleared) raises one.
        if s.alarm.is_some() {
            return;
        }
        let Some(i) = (0..steps.len()).find(|&i| s.floor.criterion(i).active.is_some()) else {
            return;
        };
        let (kind, _, value, threshold) = steps[i];
        let id = cx.new_alarm_id();
        s.floor.activate(i, id);
        s.alarm = Some(SeqAlarm {
            id,
            kind,
            acknowledged: false,
            source: Source::Floor(i),
        });
        let mut ev = by_sequential(alarm(
            a.stream_s,
            id,
            &name,
            kind,
            AlarmState::Raised,
            value,
            threshold,
            systemic,
        ));
        ev.message.push_str(
            " — standard criterion confirmed on the block averages (ahead of the sequential evidence)",
        );
        cx.emit(Event::Alarm(ev));
    }

    fn on_baseline(
        &mut self,
        trace: usize,
        origin: BaselineOrigin,
        latency_ms: Option<f64>,
        stream_s: f64,
        cx: &mut DetectorContext<'_>,
    ) {
        let Some(Some(s)) = self.traces.get_mut(trace) else {
            return;
        };
        // As the block detector: a new baseline voids pending confirmations.
        s.floor.void_counts(false);
        if origin == BaselineOrigin::User {
            // Re-baseline: a new template from the next sweeps; an active alarm is over, and so is the floor's.
            s.det.restart();
            s.sweeps = 0;
            s.floor = BlockTrace::default();
            if let Some(SeqAlarm { id, kind, .. }) = s.alarm.take() {
                let name = cx.meta(trace).map(|m| m.name.clone()).unwrap_or_default();
                let mut ev = by_sequential(alarm(
                    stream_s,
                    id,
                    &name,
                    kind,
                    AlarmState::Cleared,
                    None,
                    None,
                    false,
                ));
                ev.message.push_str(" (re-baseline)");
                cx.emit(Event::Alarm(ev));
            }
        }
        s.det.set_reference_latency_ms(latency_ms);
    }

    fn acknowledge(&mut self, id: u64, stream_s: f64, cx: &mut DetectorContext<'_>) -> bool {
        for (t, s) in self.traces.iter_mut().enumerate() {
            let Some(s) = s else { continue };
            if let Some(a) = s.alarm.as_mut()
                && a.id == id
                && !a.acknowledged
            {
                a.acknowledged = true;
                let name = cx.meta(t).map(|m| m.name.clone()).unwrap_or_default();
                cx.emit(Event::Alarm(by_sequential(acknowledged(
                    stream_s, id, &name, a.kind,
                ))));
                return true;
            }
        }
        false
    }

    fn evidence(&self, cx: &DetectorContext<'_>, out: &mut Vec<EvidenceValue>) {
        for (t, s) in self.traces.iter().enumerate() {
            let (Some(s), Some(meta)) = (s, cx.meta(t)) else {
                continue;
            };
            if !s.det.is_monitoring() && !s.det.is_insensitive() {
                continue;
            }
            out.push(EvidenceValue {
                trace: meta.name.clone(),
                detector: "sequential".to_owned(),
                evidence: s.det.evidence(),
                threshold: s.det.threshold(),
                sigma: s.det.sigma(),
                reference: s.det.reference(),
                latency_sd_ms: s.det.latency_sd_ms(),
                latency_block: s.det.config().latency_block,
                amplitude: s.det.amplitude_avg(),
                latency_shift_ms: s.det.latency_shift_ms(),
                latency_evidence: s.det.latency_evidence(),
                latency_threshold: s.det.latency_threshold(),
                latency_separation: Some(s.det.latency_separation()).filter(|d| *d > 0.0),
                active: s.det.is_active(),
                insensitive: s.det.is_insensitive(),
            });
        }
    }
}
