//! Technical alarms: about the recording, not the patient. Shown and logged apart from clinical ones, and while
//! one is active on a channel the clinical criteria of that channel's traces are suspended.

use crate::{TraceMeta, acknowledged, alarm};
use ionm_core::events::{AlarmKind, AlarmState, Event};
use ionm_core::{DeviceStatus, Gap, GapCause, LinkEvent};
use std::collections::VecDeque;

/// Sweeps looked back on for rejection rates.
const WINDOW: u32 = 32;
/// Rejected fraction that raises `noisy` (with at least half a window seen), and that clears it.
const NOISY_RAISE: f64 = 0.5;
const NOISY_CLEAR: f64 = 0.25;
/// Flat fraction that calls an electrode off, and that clears it.
const FLAT_RAISE: f64 = 0.75;
const FLAT_CLEAR: f64 = 0.1;
/// Consecutive status reports with a channel saturated before `saturation` is raised, and clean ones to clear.
const SAT_RAISE: u32 = 2;
const SAT_CLEAR: u32 = 2;
/// Link errors: this many lost-frame gaps within `LINK_WINDOW_S` raise `link_errors`.
const LINK_ERRORS: usize = 5;
const LINK_WINDOW_S: f64 = 10.0;
/// An overrun alarm clears this long after the last overrun.
const OVERRUN_HOLD_S: f64 = 10.0;

#[derive(Debug, Clone, Copy)]
struct Active {
    id: u64,
    acknowledged: bool,
}

/// Recent sweep outcomes of one trace, as bit masks.
#[derive(Debug, Clone, Copy, Default)]
struct Recent {
    rejected: u32,
    flat: u32,
    seen: u32,
}

impl Recent {
    fn push(&mut self, rejected: Option<bool>) {
        self.rejected = (self.rejected << 1) | u32::from(rejected.is_some());
        self.flat = (self.flat << 1) | u32::from(rejected == Some(true));
        self.seen = (self.seen + 1).min(WINDOW);
    }
    fn rate(bits: u32, seen: u32) -> f64 {
        if seen == 0 {
            0.0
        } else {
            f64::from((bits & mask(seen)).count_ones()) / f64::from(seen)
        }
    }
    fn rejected_rate(&self) -> f64 {
        Self::rate(self.rejected, self.seen)
    }
    fn flat_rate(&self) -> f64 {
        Self::rate(self.flat, self.seen)
    }
}

fn mask(seen: u32) -> u32 {
    if seen >= 32 { u32::MAX } else { (1 << seen) - 1 }
}

#[derive(Debug)]
pub(crate) struct Technical {
    trace_names: Vec<String>,
    trace_channel: Vec<usize>,
    labels: Vec<String>,
    recent: Vec<Recent>,
    noisy: Vec<Option<Active>>,
    electrode: Vec<Option<Active>>,
    impedance_high: Vec<bool>,
    saturation: Vec<Option<Active>>,
    sat_run: Vec<u32>,
    clean_run: Vec<u32>,
    signal_lost: Option<Active>,
    overrun: Option<Active>,
    last_overrun_s: f64,
    link_errors: Option<Active>,
    recorder_behind: Option<Active>,
    last_recorder_s: f64,
    link_marks: VecDeque<f64>,
    raised: u64,
}

impl Technical {
    pub(crate) fn new(traces: &[TraceMeta], labels: Vec<String>) -> Self {
        let n = labels.len();
        Self {
            trace_names: traces.iter().map(|t| t.name.clone()).collect(),
            trace_channel: traces.iter().map(|t| t.device_channel).collect(),
            recent: vec![Recent::default(); traces.len()],
            noisy: vec![None; traces.len()],
            electrode: vec![None; n],
            impedance_high: vec![false; n],
            saturation: vec![None; n],
            sat_run: vec![0; n],
            clean_run: vec![0; n],
            labels,
            signal_lost: None,
            overrun: None,
            last_overrun_s: f64::NEG_INFINITY,
            link_errors: None,
            recorder_behind: None,
            last_recorder_s: f64::NEG_INFINITY,
            link_marks: VecDeque::with_capacity(LINK_ERRORS + 1),
            raised: 0,
        }
    }

    pub(crate) fn raised(&self) -> u64 {
        self.raised
    }

    /// Why the clinical criteria of trace `t` are suspended, if they are.
    pub(crate) fn suspension(&self, t: usize, meta: &TraceMeta) -> Option<String> {
        self.suspension_reason(t, meta)
            .map(|why| format!("suspended: {why}"))
    }

    /// The same without allocating (per sweep).
    pub(crate) fn suspension_reason(&self, t: usize, meta: &TraceMeta) -> Option<&'static str> {
        let ch = meta.device_channel;
        Some(if self.signal_lost.is_some() {
            "signal lost"
        } else if self.overrun.is_some() {
            "data dropped (overrun)"
        } else if self.electrode.get(ch).is_some_and(Option::is_some) {
            "electrode off / flat channel"
        } else if self.saturation.get(ch).is_some_and(Option::is_some) {
            "converter saturation"
        } else if self.noisy.get(t).is_some_and(Option::is_some) {
            "too many sweeps rejected (noisy)"
        } else {
            return None;
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn raise(
        slot: &mut Option<Active>,
        raised: &mut u64,
        next_id: &mut u64,
        stream_s: f64,
        who: &str,
        kind: AlarmKind,
        value: Option<f64>,
        threshold: Option<f64>,
        out: &mut Vec<Event>,
    ) {
        if slot.is_some() {
            return;
        }
        let id = *next_id;
        *next_id += 1;
        *raised += 1;
        *slot = Some(Active {
            id,
            acknowledged: false,
        });
        tracing::warn!(who, ?kind, "technical alarm raised");
        out.push(Event::Alarm(alarm(
            stream_s,
            id,
            who,
            kind,
            AlarmState::Raised,
            value,
            threshold,
            false,
        )));
    }

    fn clear(
        slot: &mut Option<Active>,
        stream_s: f64,
        who: &str,
        kind: AlarmKind,
        value: Option<f64>,
        out: &mut Vec<Event>,
    ) {
        if let Some(a) = slot.take() {
            out.push(Event::Alarm(alarm(
                stream_s,
                a.id,
                who,
                kind,
                AlarmState::Cleared,
                value,
                None,
                false,
            )));
        }
    }

    pub(crate) fn on_sweep(
        &mut self,
        t: usize,
        rejected: Option<bool>,
        stream_s: f64,
        next_id: &mut u64,
        out: &mut Vec<Event>,
    ) {
        let Some(r) = self.recent.get_mut(t) else { return };
        r.push(rejected);
        let r = *r;
        let name = &self.trace_names[t];
        let rate = r.rejected_rate();
        if r.seen >= WINDOW / 2 && rate >= NOISY_RAISE {
            Self::raise(
                &mut self.noisy[t],
                &mut self.raised,
                next_id,
                stream_s,
                name,
                AlarmKind::Noisy,
                Some(rate),
                Some(NOISY_RAISE),
                out,
            );
        } else if rate <= NOISY_CLEAR {
            Self::clear(
                &mut self.noisy[t],
                stream_s,
                name,
                AlarmKind::Noisy,
                Some(rate),
                out,
            );
        }
        let ch = self.trace_channel[t];
        self.update_electrode(ch, stream_s, next_id, out);
    }

    /// The worst flat rate of the traces recorded on channel `ch`.
    fn flat_rate(&self, ch: usize) -> (f64, u32) {
        self.trace_channel
            .iter()
            .zip(&self.recent)
            .filter(|(c, _)| **c == ch)
            .map(|(_, r)| (r.flat_rate(), r.seen))
            .fold((0.0, 0), |a, b| if b.0 > a.0 { b } else { a })
    }

    fn update_electrode(&mut self, ch: usize, stream_s: f64, next_id: &mut u64, out: &mut Vec<Event>) {
        let Some(label) = self.labels.get(ch).cloned() else {
            return;
        };
        let (flat, seen) = self.flat_rate(ch);
        let off = self.impedance_high[ch] || (seen >= 8 && flat >= FLAT_RAISE);
        if off {
            Self::raise(
                &mut self.electrode[ch],
                &mut self.raised,
                next_id,
                stream_s,
                &label,
                AlarmKind::ElectrodeOff,
                Some(flat),
                Some(FLAT_RAISE),
                out,
            );
        } else if !self.impedance_high[ch] && flat <= FLAT_CLEAR {
            Self::clear(
                &mut self.electrode[ch],
                stream_s,
                &label,
                AlarmKind::ElectrodeOff,
                Some(flat),
                out,
            );
        }
    }

    pub(crate) fn on_status(
        &mut self,
        s: &DeviceStatus,
        stream_s: f64,
        next_id: &mut u64,
        out: &mut Vec<Event>,
    ) {
        for ch in 0..self.labels.len().min(64) {
            let bit = 1u64 << ch;
            self.impedance_high[ch] = s.impedance_high & bit != 0;
            self.update_electrode(ch, stream_s, next_id, out);
            let label = self.labels[ch].clone();
            if s.saturated & bit != 0 {
                self.sat_run[ch] += 1;
                self.clean_run[ch] = 0;
                if self.sat_run[ch] >= SAT_RAISE {
                    Self::raise(
                        &mut self.saturation[ch],
                        &mut self.raised,
                        next_id,
                        stream_s,
                        &label,
                        AlarmKind::Saturation,
                        None,
                        None,
                        out,
                    );
                }
            } else {
                self.sat_run[ch] = 0;
                self.clean_run[ch] += 1;
                if self.clean_run[ch] >= SAT_CLEAR {
                    Self::clear(
                        &mut self.saturation[ch],
                        stream_s,
                        &label,
                        AlarmKind::Saturation,
                        None,
                        out,
                    );
                }
            }
        }
    }

    pub(crate) fn on_link(&mut self, l: &LinkEvent, stream_s: f64, next_id: &mut u64, out: &mut Vec<Event>) {
        match l {
            LinkEvent::SignalLost { silent_ms } => Self::raise(
                &mut self.signal_lost,
                &mut self.raised,
                next_id,
                stream_s,
                "",
                AlarmKind::SignalLost,
                Some(*silent_ms as f64 / 1000.0),
                None,
                out,
            ),
            LinkEvent::HandshakeTimeout { .. } | LinkEvent::Disconnected { .. } => Self::raise(
                &mut self.signal_lost,
                &mut self.raised,
                next_id,
                stream_s,
                "",
                AlarmKind::SignalLost,
                None,
                None,
                out,
            ),
            LinkEvent::SignalRestored { silent_ms } => Self::clear(
                &mut self.signal_lost,
                stream_s,
                "",
                AlarmKind::SignalLost,
                Some(*silent_ms as f64 / 1000.0),
                out,
            ),
            LinkEvent::Connected { .. } | LinkEvent::Ended { .. } => {}
        }
    }

    /// Samples flow again: a signal-lost alarm raised for a disconnect clears.
    fn data_flows(&mut self, stream_s: f64, out: &mut Vec<Event>) {
        Self::clear(
            &mut self.signal_lost,
            stream_s,
            "",
            AlarmKind::SignalLost,
            None,
            out,
        );
    }

    pub(crate) fn on_gap(&mut self, g: &Gap, stream_s: f64, next_id: &mut u64, out: &mut Vec<Event>) {
        match g.cause {
            GapCause::Overrun => {
                self.last_overrun_s = stream_s;
                Self::raise(
                    &mut self.overrun,
                    &mut self.raised,
                    next_id,
                    stream_s,
                    "",
                    AlarmKind::Overrun,
                    Some(g.samples() as f64),
                    None,
                    out,
                );
            }
            GapCause::LostFrames => self.link_mark(stream_s, 1, next_id, out),
            GapCause::Disconnected => {}
        }
    }

    fn link_mark(&mut self, stream_s: f64, n: u64, next_id: &mut u64, out: &mut Vec<Event>) {
        for _ in 0..n.min(LINK_ERRORS as u64) {
            if self.link_marks.len() == LINK_ERRORS {
                self.link_marks.pop_front();
            }
            self.link_marks.push_back(stream_s);
        }
        if self.link_marks.len() == LINK_ERRORS
            && self
                .link_marks
                .front()
                .is_some_and(|&t0| stream_s - t0 <= LINK_WINDOW_S)
        {
            Self::raise(
                &mut self.link_errors,
                &mut self.raised,
                next_id,
                stream_s,
                "",
                AlarmKind::LinkErrors,
                Some(LINK_ERRORS as f64),
                Some(LINK_ERRORS as f64),
                out,
            );
        }
    }

    /// Link errors are judged from the lost-frame gaps in the stream (each CRC failure of a sample frame is one),
    /// not from the reader's counters, so that a replay of the same bytes raises the same alarms.
    pub(crate) fn on_time(&mut self, stream_s: f64, out: &mut Vec<Event>) {
        self.data_flows(stream_s, out);
        if self
            .link_marks
            .back()
            .is_none_or(|&t| stream_s - t > LINK_WINDOW_S)
        {
            Self::clear(
                &mut self.link_errors,
                stream_s,
                "",
                AlarmKind::LinkErrors,
                None,
                out,
            );
        }
        if stream_s - self.last_recorder_s > OVERRUN_HOLD_S {
            Self::clear(
                &mut self.recorder_behind,
                stream_s,
                "recorder",
                AlarmKind::Overrun,
                None,
                out,
            );
        }
        if stream_s - self.last_overrun_s > OVERRUN_HOLD_S {
            Self::clear(&mut self.overrun, stream_s, "", AlarmKind::Overrun, None, out);
        }
    }

    /// Not a suspension: acquisition and monitoring are intact, only the file has holes.
    pub(crate) fn on_recorder_behind(
        &mut self,
        dropped: u64,
        stream_s: f64,
        next_id: &mut u64,
        out: &mut Vec<Event>,
    ) {
        self.last_recorder_s = stream_s;
        Self::raise(
            &mut self.recorder_behind,
            &mut self.raised,
            next_id,
            stream_s,
            "recorder",
            AlarmKind::Overrun,
            Some(dropped as f64),
            None,
            out,
        );
    }

    pub(crate) fn acknowledge(&mut self, id: u64, stream_s: f64, out: &mut Vec<Event>) -> bool {
        let mut slots: Vec<(&mut Option<Active>, String, AlarmKind)> = Vec::new();
        for (i, s) in self.noisy.iter_mut().enumerate() {
            slots.push((s, self.trace_names[i].clone(), AlarmKind::Noisy));
        }
        for (i, s) in self.electrode.iter_mut().enumerate() {
            slots.push((s, self.labels[i].clone(), AlarmKind::ElectrodeOff));
        }
        for (i, s) in self.saturation.iter_mut().enumerate() {
            slots.push((s, self.labels[i].clone(), AlarmKind::Saturation));
        }
        slots.push((&mut self.signal_lost, String::new(), AlarmKind::SignalLost));
        slots.push((&mut self.overrun, String::new(), AlarmKind::Overrun));
        slots.push((&mut self.link_errors, String::new(), AlarmKind::LinkErrors));
        slots.push((
            &mut self.recorder_behind,
            "recorder".to_owned(),
            AlarmKind::Overrun,
        ));
        for (slot, who, kind) in slots {
            if let Some(a) = slot
                && a.id == id
                && !a.acknowledged
            {
                a.acknowledged = true;
                out.push(Event::Alarm(acknowledged(stream_s, id, &who, kind)));
                return true;
            }
        }
        false
    }
}
