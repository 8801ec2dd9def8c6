//! What the dashboard knows: everything derived from the event stream, bounded, with no egui in sight
//! except the plot-point type of the trends (stored ready to draw, so a frame never copies 100 000 points).

use egui_plot::PlotPoint;
use ionm_core::events::{
    AlarmClass, AlarmEvent, AlarmState, AverageEvent, BaselineEvent, CorrectionEvent, Event, MarkerEvent,
    StatsEvent,
};
use ionm_core::{DeviceInfo, DeviceStatus, Stimulator};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

/// Bounds on everything the model keeps, so that a case of any length runs in bounded memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelLimits {
    /// Averages kept per trace for the stack view.
    pub stack_depth: usize,
    /// Trend points kept per trace and measure; past it the trend is thinned to every other point, so it still
    /// spans the whole case.
    pub trend_points: usize,
    /// Baselines kept per trace.
    pub baselines_per_trace: usize,
    /// Peak corrections kept per trace.
    pub corrections_per_trace: usize,
    /// Alarm transitions kept in the log.
    pub alarm_log: usize,
    /// Alarms active at once (the oldest is dropped from the banner beyond it).
    pub active_alarms: usize,
    /// Markers kept.
    pub markers: usize,
    /// Technical notices (link, gaps, device status) kept.
    pub notices: usize,
    /// Traces tracked; averages of further traces are ignored.
    pub traces: usize,
}

impl Default for ModelLimits {
    fn default() -> Self {
        Self {
            stack_depth: 200,
            trend_points: 100_000,
            baselines_per_trace: 32,
            corrections_per_trace: 1000,
            alarm_log: 10_000,
            active_alarms: 1000,
            markers: 10_000,
            notices: 1000,
            traces: 256,
        }
    }
}

/// One average of the stack view with the alarm state of its trace when it arrived.
#[derive(Debug, Clone, PartialEq)]
pub struct StackEntry {
    /// The average.
    pub average: Arc<AverageEvent>,
    /// The worst alarm class active on its trace (or raised right after it).
    pub alarm: Option<AlarmClass>,
}

/// Everything known about one trace (channel × stimulator).
#[derive(Debug, Clone)]
pub struct TraceModel {
    /// Trace name.
    pub name: String,
    /// Device channel label.
    pub channel: String,
    /// Modality (`ssep`, `mep`, …), empty until the first average.
    pub modality: String,
    /// Stimulator, once known.
    pub stimulator: Option<Stimulator>,
    history: VecDeque<StackEntry>,
    baselines: VecDeque<Arc<BaselineEvent>>,
    amplitude_trend: Vec<PlotPoint>,
    latency_trend: Vec<PlotPoint>,
    corrections: VecDeque<CorrectionEvent>,
}

impl TraceModel {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            channel: String::new(),
            modality: String::new(),
            stimulator: None,
            history: VecDeque::new(),
            baselines: VecDeque::new(),
            amplitude_trend: Vec::new(),
            latency_trend: Vec::new(),
            corrections: VecDeque::new(),
        }
    }

    /// The averages kept, oldest first.
    pub fn history(&self) -> &VecDeque<StackEntry> {
        &self.history
    }

    /// The newest average with `stream_s ≤ until` (the newest of all when `until` is `None`).
    pub fn average_until(&self, until: Option<f64>) -> Option<&StackEntry> {
        match until {
            None => self.history.back(),
            Some(t) => self.history.iter().rev().find(|e| e.average.stream_s <= t),
        }
    }

    /// The newest baseline with `stream_s ≤ until` (the newest of all when `until` is `None`).
    pub fn baseline_until(&self, until: Option<f64>) -> Option<&Arc<BaselineEvent>> {
        match until {
            None => self.baselines.back(),
            Some(t) => self.baselines.iter().rev().find(|b| b.stream_s <= t),
        }
    }

    /// Amplitude in % of baseline against stream time in minutes.
    pub fn amplitude_trend(&self) -> &[PlotPoint] {
        &self.amplitude_trend
    }

    /// Latency in % of baseline against stream time in minutes.
    pub fn latency_trend(&self) -> &[PlotPoint] {
        &self.latency_trend
    }

    /// The latest user correction of `peak` on the average `sequence`.
    pub fn correction(&self, sequence: u64, peak: &str) -> Option<&CorrectionEvent> {
        self.corrections
            .iter()
            .rev()
            .find(|c| c.sequence == sequence && c.peak == peak)
    }
}

/// An alarm between `raised` and `cleared`.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveAlarm {
    /// The event that raised it (or the first one seen, when the dashboard started late).
    pub raised: AlarmEvent,
    /// Stream time of the acknowledgement, if acknowledged.
    pub acknowledged_s: Option<f64>,
}

impl ActiveAlarm {
    /// True once acknowledged (it stays active until cleared).
    pub fn is_acknowledged(&self) -> bool {
        self.acknowledged_s.is_some()
    }
}

/// A technical happening for the log (link, gap, device status).
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// Stream time, s.
    pub stream_s: f64,
    /// What happened.
    pub text: String,
}

/// The dashboard's state derived from events. Applying the same events gives the same model.
#[derive(Debug, Clone, Default)]
pub struct DashboardModel {
    limits: ModelLimits,
    epoch: u64,
    traces: Vec<TraceModel>,
    index: HashMap<String, usize>,
    alarms: BTreeMap<u64, ActiveAlarm>,
    alarm_log: VecDeque<AlarmEvent>,
    markers: VecDeque<MarkerEvent>,
    notices: VecDeque<Notice>,
    device: Option<DeviceInfo>,
    stats: Option<StatsEvent>,
    device_status: Option<DeviceStatus>,
    latest_s: f64,
    events: u64,
}

impl DashboardModel {
    /// An empty model with these bounds.
    pub fn new(limits: ModelLimits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// The bounds in force.
    pub fn limits(&self) -> ModelLimits {
        self.limits
    }

    /// Forgets everything (the stream started over) and remembers the new epoch.
    pub fn reset(&mut self, epoch: u64) {
        *self = Self {
            limits: self.limits,
            epoch,
            ..Self::default()
        };
    }

    /// The [`crate::SourceStatus::epoch`] these events belong to.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Applies one event. Returns the class of a newly raised alarm (to ring a bell), if it was one.
    pub fn apply(&mut self, event: &Event) -> Option<AlarmClass> {
        self.events += 1;
        let t = event.stream_s();
        if t.is_finite() && t > self.latest_s {
            self.latest_s = t;
        }
        match event {
            Event::Average(a) => {
                self.apply_average(a);
                None
            }
            Event::Baseline(b) => {
                if let Some(i) = self.trace_index_or_insert(&b.trace) {
                    let tr = &mut self.traces[i];
                    push_bounded(
                        &mut tr.baselines,
                        Arc::new(b.clone()),
                        self.limits.baselines_per_trace,
                    );
                }
                None
            }
            Event::Alarm(a) => self.apply_alarm(a),
            Event::Marker(m) => {
                push_bounded(&mut self.markers, m.clone(), self.limits.markers);
                None
            }
            Event::Correction(c) => {
                self.apply_correction(c);
                None
            }
            Event::Stats(s) => {
                self.stats = Some(s.clone());
                None
            }
            Event::Device { stream_s, device } => {
                self.notice(
                    *stream_s,
                    format!(
                        "device {} ({} ch at {} Hz, session {})",
                        device.firmware_version,
                        device.n_channels(),
                        device.sample_rate_hz,
                        device.session_id
                    ),
                );
                self.device = Some(device.clone());
                None
            }
            Event::Link { stream_s, link } => {
                self.notice(*stream_s, format!("link: {link:?}"));
                None
            }
            Event::Gap { stream_s, gap } => {
                self.notice(
                    *stream_s,
                    format!("gap of {} samples ({:?})", gap.samples(), gap.cause),
                );
                None
            }
            Event::Status { stream_s, status } => {
                self.notice(*stream_s, device_status_text(status));
                self.device_status = Some(*status);
                None
            }
        }
    }

    /// Records a correction the user just made, before the source echoes it back as an event (the marker then
    /// stays where it was dropped instead of jumping back for a frame).
    pub fn apply_correction(&mut self, c: &CorrectionEvent) {
        if let Some(i) = self.trace_index_or_insert(&c.trace) {
            let tr = &mut self.traces[i];
            if tr.correction(c.sequence, &c.peak) != Some(c) {
                push_bounded(&mut tr.corrections, c.clone(), self.limits.corrections_per_trace);
            }
        }
    }

    fn apply_average(&mut self, a: &AverageEvent) {
        let Some(i) = self.trace_index_or_insert(&a.trace) else {
            return;
        };
        let alarm = self.trace_alarm_class(&self.traces[i]);
        let limits = self.limits;
        let tr = &mut self.traces[i];
        tr.channel.clone_from(&a.channel);
        tr.modality.clone_from(&a.modality);
        tr.stimulator = Some(a.stimulator);
        let entry = StackEntry {
            average: Arc::new(a.clone()),
            alarm,
        };
        push_bounded(&mut tr.history, entry, limits.stack_depth);
        let minutes = a.stream_s / 60.0;
        if let Some(r) = a.amplitude_ratio.filter(|r| r.is_finite() && minutes.is_finite()) {
            push_trend(
                &mut tr.amplitude_trend,
                PlotPoint::new(minutes, r * 100.0),
                limits.trend_points,
            );
        }
        if let Some(r) = a.latency_ratio.filter(|r| r.is_finite() && minutes.is_finite()) {
            push_trend(
                &mut tr.latency_trend,
                PlotPoint::new(minutes, r * 100.0),
                limits.trend_points,
            );
        }
    }

    fn apply_alarm(&mut self, a: &AlarmEvent) -> Option<AlarmClass> {
        push_bounded(&mut self.alarm_log, a.clone(), self.limits.alarm_log);
        match a.state {
            AlarmState::Raised => {
                self.alarms.insert(
                    a.id,
                    ActiveAlarm {
                        raised: a.clone(),
                        acknowledged_s: None,
                    },
                );
                // Colour the average that caused it.
                if let Some(name) = &a.trace {
                    for tr in self
                        .traces
                        .iter_mut()
                        .filter(|t| &t.name == name || &t.channel == name)
                    {
                        if let Some(last) = tr.history.back_mut() {
                            last.alarm = worse(last.alarm, Some(a.class));
                        }
                    }
                }
                self.bound_active_alarms();
                Some(a.class)
            }
            AlarmState::Acknowledged => {
                self.alarms
                    .entry(a.id)
                    .or_insert_with(|| ActiveAlarm {
                        raised: a.clone(),
                        acknowledged_s: None,
                    })
                    .acknowledged_s = Some(a.stream_s);
                self.bound_active_alarms();
                None
            }
            AlarmState::Cleared => {
                self.alarms.remove(&a.id);
                None
            }
        }
    }

    fn bound_active_alarms(&mut self) {
        while self.alarms.len() > self.limits.active_alarms {
            if let Some((id, _)) = self.alarms.pop_first() {
                tracing::warn!(id, "too many active alarms: dropping the oldest from the banner");
            }
        }
    }

    fn notice(&mut self, stream_s: f64, text: String) {
        push_bounded(&mut self.notices, Notice { stream_s, text }, self.limits.notices);
    }

    fn trace_index_or_insert(&mut self, name: &str) -> Option<usize> {
        if let Some(&i) = self.index.get(name) {
            return Some(i);
        }
        if self.traces.len() >= self.limits.traces {
            tracing::warn!(
                trace = name,
                "too many traces: ignoring this one on the dashboard"
            );
            return None;
        }
        self.traces.push(TraceModel::new(name));
        self.index.insert(name.to_owned(), self.traces.len() - 1);
        Some(self.traces.len() - 1)
    }

    /// The traces in order of first appearance.
    pub fn traces(&self) -> &[TraceModel] {
        &self.traces
    }

    /// A trace by name.
    pub fn trace(&self, name: &str) -> Option<&TraceModel> {
        self.index.get(name).map(|&i| &self.traces[i])
    }

    /// The worst class of the alarms active on this trace (by trace name or channel label).
    pub fn trace_alarm_class(&self, trace: &TraceModel) -> Option<AlarmClass> {
        self.alarms
            .values()
            .filter(|a| {
                a.raised
                    .trace
                    .as_deref()
                    .is_some_and(|t| t == trace.name || (!trace.channel.is_empty() && t == trace.channel))
            })
            .fold(None, |acc, a| worse(acc, Some(a.raised.class)))
    }

    /// Alarms between raised and cleared, by id.
    pub fn active_alarms(&self) -> &BTreeMap<u64, ActiveAlarm> {
        &self.alarms
    }

    /// Alarm transitions, oldest first.
    pub fn alarm_log(&self) -> &VecDeque<AlarmEvent> {
        &self.alarm_log
    }

    /// Markers, oldest first.
    pub fn markers(&self) -> &VecDeque<MarkerEvent> {
        &self.markers
    }

    /// Link, gap and device notices, oldest first.
    pub fn notices(&self) -> &VecDeque<Notice> {
        &self.notices
    }

    /// The device, once declared.
    pub fn device(&self) -> Option<&DeviceInfo> {
        self.device.as_ref()
    }

    /// The latest counters.
    pub fn stats(&self) -> Option<&StatsEvent> {
        self.stats.as_ref()
    }

    /// The latest flagged device status.
    pub fn device_status(&self) -> Option<&DeviceStatus> {
        self.device_status.as_ref()
    }

    /// Latest stream time seen in an event, s.
    pub fn latest_stream_s(&self) -> f64 {
        self.latest_s
    }

    /// Events applied since the last reset.
    pub fn events_applied(&self) -> u64 {
        self.events
    }
}

/// Clinical is worse than technical, which is worse than none.
pub fn worse(a: Option<AlarmClass>, b: Option<AlarmClass>) -> Option<AlarmClass> {
    match (a, b) {
        (Some(AlarmClass::Clinical), _) | (_, Some(AlarmClass::Clinical)) => Some(AlarmClass::Clinical),
        (Some(AlarmClass::Technical), _) | (_, Some(AlarmClass::Technical)) => Some(AlarmClass::Technical),
        _ => None,
    }
}

fn push_bounded<T>(q: &mut VecDeque<T>, item: T, cap: usize) {
    if cap == 0 {
        return;
    }
    while q.len() >= cap {
        q.pop_front();
    }
    q.push_back(item);
}

/// Appends, thinning to every other point when the cap is reached (the trend keeps spanning the whole case).
fn push_trend(v: &mut Vec<PlotPoint>, p: PlotPoint, cap: usize) {
    if cap == 0 {
        return;
    }
    if v.len() >= cap {
        let mut k = 0;
        v.retain(|_| {
            k += 1;
            k % 2 == 1
        });
    }
    v.push(p);
}

fn device_status_text(s: &DeviceStatus) -> String {
    let mut parts = Vec::new();
    if let Some(b) = s.battery_percent {
        parts.push(format!("battery {b}%"));
    }
    if s.saturated != 0 {
        parts.push(format!("saturated channels {}", bit_list(s.saturated)));
    }
    if s.impedance_high != 0 {
        parts.push(format!(
            "high impedance on channels {}",
            bit_list(s.impedance_high)
        ));
    }
    if s.stimulator_fault {
        parts.push("stimulator fault".to_owned());
    }
    if parts.is_empty() {
        "device status: ok".to_owned()
    } else {
        format!("device status: {}", parts.join(", "))
    }
}

fn bit_list(bits: u64) -> String {
    (0..64)
        .filter(|b| bits & (1 << b) != 0)
        .map(|b| b.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ionm_core::events::{AlarmKind, BaselineOrigin};

    fn avg(trace: &str, t: f64, seq: u64, ratio: f64) -> Event {
        Event::Average(AverageEvent {
            stream_s: t,
            trace: trace.into(),
            channel: format!("{trace}-ch"),
            stimulator: Stimulator::LeftMedian,
            modality: "ssep".into(),
            sequence: seq,
            sweeps: 200,
            rejected: 0,
            dropped: 0,
            peaks: vec![],
            amplitude_uv: Some(2.0 * ratio),
            latency_ms: Some(20.0),
            amplitude_ratio: Some(ratio),
            latency_ratio: Some(1.0),
            fsp: Some(5.0),
            residual_noise_uv: Some(0.2),
            suspended: None,
            waveform: None,
        })
    }

    fn alarm(id: u64, t: f64, trace: Option<&str>, kind: AlarmKind, state: AlarmState) -> Event {
        Event::Alarm(AlarmEvent {
            stream_s: t,
            id,
            trace: trace.map(Into::into),
            kind,
            class: kind.class(),
            state,
            value: Some(0.4),
            threshold: Some(0.5),
            systemic: false,
            detector: "block".into(),
            message: "x".into(),
        })
    }

    #[test]
    fn alarm_is_active_from_raised_to_cleared() {
        let mut m = DashboardModel::new(ModelLimits::default());
        m.apply(&avg("a", 1.0, 0, 1.0));
        assert_eq!(
            m.apply(&alarm(
                7,
                2.0,
                Some("a"),
                AlarmKind::AmplitudeDrop,
                AlarmState::Raised
            )),
            Some(AlarmClass::Clinical)
        );
        assert_eq!(m.trace_alarm_class(&m.traces()[0]), Some(AlarmClass::Clinical));
        // The average that caused it is coloured.
        assert_eq!(m.traces()[0].history()[0].alarm, Some(AlarmClass::Clinical));
        m.apply(&alarm(
            7,
            3.0,
            Some("a"),
            AlarmKind::AmplitudeDrop,
            AlarmState::Acknowledged,
        ));
        assert!(m.active_alarms()[&7].is_acknowledged());
        // A technical alarm addressed by channel label.
        m.apply(&alarm(
            8,
            3.5,
            Some("a-ch"),
            AlarmKind::ElectrodeOff,
            AlarmState::Raised,
        ));
        m.apply(&alarm(
            7,
            4.0,
            Some("a"),
            AlarmKind::AmplitudeDrop,
            AlarmState::Cleared,
        ));
        assert_eq!(m.trace_alarm_class(&m.traces()[0]), Some(AlarmClass::Technical));
        m.apply(&alarm(
            8,
            5.0,
            Some("a-ch"),
            AlarmKind::ElectrodeOff,
            AlarmState::Cleared,
        ));
        assert!(m.active_alarms().is_empty());
        assert_eq!(m.alarm_log().len(), 5);
        // Acknowledged without a raise seen (dashboard started late): active and acknowledged.
        m.apply(&alarm(
            9,
            6.0,
            None,
            AlarmKind::LinkErrors,
            AlarmState::Acknowledged,
        ));
        assert!(m.active_alarms()[&9].is_acknowledged());
    }

    #[test]
    fn histories_are_bounded_and_trends_thinned() {
        let limits = ModelLimits {
            stack_depth: 5,
            trend_points: 8,
            alarm_log: 3,
            traces: 2,
            ..ModelLimits::default()
        };
        let mut m = DashboardModel::new(limits);
        for k in 0..100 {
            m.apply(&avg("a", f64::from(k), u64::from(k as u8), 1.0));
        }
        let tr = &m.traces()[0];
        assert_eq!(tr.history().len(), 5);
        assert_eq!(tr.history().back().unwrap().average.sequence, 99);
        assert!(tr.amplitude_trend().len() <= 8);
        // Still spans the case from its start to the last point.
        assert_eq!(tr.amplitude_trend()[0].x, 0.0);
        assert_eq!(tr.amplitude_trend().last().unwrap().x, 99.0 / 60.0);
        for k in 0..10 {
            m.apply(&alarm(k, 1.0, None, AlarmKind::Overrun, AlarmState::Raised));
        }
        assert_eq!(m.alarm_log().len(), 3);
        m.apply(&avg("b", 1.0, 0, 1.0));
        m.apply(&avg("c", 1.0, 0, 1.0));
        assert_eq!(m.traces().len(), 2);
    }

    #[test]
    fn non_finite_ratios_are_not_plotted_and_reset_forgets() {
        let mut m = DashboardModel::new(ModelLimits::default());
        m.apply(&avg("a", 1.0, 0, f64::NAN));
        assert!(m.traces()[0].amplitude_trend().is_empty());
        m.apply(&Event::Baseline(BaselineEvent {
            stream_s: 2.0,
            trace: "a".into(),
            number: 1,
            origin: BaselineOrigin::Automatic,
            sweeps: 200,
            amplitude_uv: Some(2.0),
            latency_ms: Some(20.0),
            fsp: None,
            residual_noise_uv: None,
            replaces_s: None,
            waveform: None,
        }));
        assert!(m.traces()[0].baseline_until(Some(1.5)).is_none());
        assert!(m.traces()[0].baseline_until(None).is_some());
        m.reset(3);
        assert!(m.traces().is_empty());
        assert_eq!(m.epoch(), 3);
    }
}
