//! The stimulation schedule: periodic trains at exact integer sample indices.
//!
//! - SSEP stimulators (left median, left tibial, right median, right tibial, in that slot order) share one period
//!   `P = round(fs / ssep_rate_hz)` and are offset by `P/4` from each other, so their onsets never coincide and each
//!   response has ≈ 53 ms (at 4.7 Hz) before the next stimulus. The first left-median stimulus is at 50 ms.
//! - BAEP clicks, left and right ear, share the period `Q = round(fs / click_rate_hz)`, offset by `Q/2`, the first
//!   left click at 20 ms. A click that would fall on the same sample as an SSEP stimulus is delayed by one sample
//!   (repeatedly if needed), so no two stimuli ever share a sample index.
//! - TES trains (one [`StimulusEvent`] with `pulses` pulses `isi` apart) every `round(tes_interval_s · fs)` samples
//!   from `tes_first_s`. Like a real machine, the device pauses the other stimulators around a TES train: no SSEP
//!   stimulus or click has its onset within 100 ms before to 150 ms after a TES onset.
//!
//! Only stimulators that at least one channel of the montage responds to are fired; the slots of the others stay
//! empty, so a stimulator's onsets do not depend on the number of channels. Every onset is a pure function of its
//! index in the train, so the schedule does not depend on how the caller splits the stream into blocks.

use crate::scenario::Stimulation;
use ionm_core::{SampleIndex, Stimulator, StimulusEvent};

/// Silence of the other stimulators before a TES onset, seconds.
pub const TES_QUIET_BEFORE_S: f64 = 0.100;
/// Silence of the other stimulators after a TES onset, seconds.
pub const TES_QUIET_AFTER_S: f64 = 0.150;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TrainKind {
    Ssep,
    Click,
    Tes,
}

#[derive(Debug, Clone)]
struct Train {
    kind: TrainKind,
    offset: u64,
    period: u64,
    next_k: u64,
    event: StimulusEvent,
}

/// All trains of one device.
#[derive(Debug, Clone)]
pub struct Schedule {
    trains: Vec<Train>,
    /// (offset, period) of every SSEP train: clicks avoid these onsets.
    ssep: Vec<(u64, u64)>,
    /// (offset, period) of the TES train, if any.
    tes: Option<(u64, u64)>,
    quiet_before: u64,
    quiet_after: u64,
}

fn event(stimulator: Stimulator, intensity_tenths: u16, pulse_width_us: u16, pulses: u8) -> StimulusEvent {
    StimulusEvent {
        sample_index: 0,
        stimulator,
        intensity_tenths,
        pulse_width_us,
        pulses,
    }
}

/// Rounds `seconds · fs` to a sample count (callers validated that the result is finite and non-negative).
pub fn samples(seconds: f64, fs: f64) -> u64 {
    (seconds * fs).round().max(0.0) as u64
}

impl Schedule {
    /// A schedule for the stimulators in `active` (those some channel responds to).
    pub fn new(plan: &Stimulation, fs: f64, active: &[Stimulator]) -> Self {
        let has = |s: Stimulator| active.contains(&s);
        let mut trains = Vec::new();
        let mut ssep = Vec::new();
        if plan.ssep {
            let period = samples(1.0 / plan.ssep_rate_hz, fs).max(4);
            let first = samples(0.050, fs);
            let slots = [
                (Stimulator::LeftMedian, 0, 250, 200),
                (Stimulator::LeftTibial, 1, 400, 200),
                (Stimulator::RightMedian, 2, 250, 200),
                (Stimulator::RightTibial, 3, 400, 200),
            ];
            for (stim, slot, intensity, width) in slots {
                let offset = first + slot * period / 4;
                ssep.push((offset, period));
                if has(stim) {
                    trains.push(Train {
                        kind: TrainKind::Ssep,
                        offset,
                        period,
                        next_k: 0,
                        event: event(stim, intensity, width, 1),
                    });
                }
            }
        }
        if plan.baep {
            let period = samples(1.0 / plan.click_rate_hz, fs).max(4);
            let first = samples(0.020, fs);
            for (stim, off) in [(Stimulator::LeftEar, 0), (Stimulator::RightEar, period / 2)] {
                if has(stim) {
                    trains.push(Train {
                        kind: TrainKind::Click,
                        offset: first + off,
                        period,
                        next_k: 0,
                        event: event(stim, 900, 100, 1),
                    });
                }
            }
        }
        let mut tes = None;
        if plan.tes && has(Stimulator::Tes) {
            let period = samples(plan.tes_interval_s, fs).max(1);
            let offset = samples(plan.tes_first_s, fs);
            tes = Some((offset, period));
            trains.push(Train {
                kind: TrainKind::Tes,
                offset,
                period,
                next_k: 0,
                event: event(Stimulator::Tes, 4000, 50, plan.tes_pulses),
            });
        }
        Self {
            trains,
            ssep,
            tes,
            quiet_before: samples(TES_QUIET_BEFORE_S, fs),
            quiet_after: samples(TES_QUIET_AFTER_S, fs),
        }
    }

    /// True if a non-TES stimulus at `x` falls in the quiet window around a TES train.
    fn in_tes_quiet(&self, x: u64) -> bool {
        let Some((t0, period)) = self.tes else {
            return false;
        };
        let d = x + self.quiet_before;
        if d < t0 {
            return false;
        }
        let j = (d - t0) / period;
        d - t0 - j * period < self.quiet_before + self.quiet_after
    }

    fn is_ssep_onset(&self, x: u64) -> bool {
        self.ssep
            .iter()
            .any(|&(o, p)| x >= o && (x - o).is_multiple_of(p))
    }

    /// Onset of stimulus `k` of train `t`, or `None` if the device skips it (TES quiet window).
    fn onset(&self, t: usize, k: u64) -> Option<u64> {
        let train = &self.trains[t];
        let mut x = train.offset + k * train.period;
        match train.kind {
            TrainKind::Tes => Some(x),
            TrainKind::Ssep => (!self.in_tes_quiet(x)).then_some(x),
            TrainKind::Click => {
                while self.is_ssep_onset(x) {
                    x += 1;
                }
                (!self.in_tes_quiet(x)).then_some(x)
            }
        }
    }

    /// Appends every stimulus with onset in `[start, end)` to `out`, sorted by onset (then by stimulator code).
    /// Calls must cover consecutive ranges.
    pub fn collect(&mut self, start: SampleIndex, end: SampleIndex, out: &mut Vec<StimulusEvent>) {
        let first = out.len();
        for t in 0..self.trains.len() {
            loop {
                let k = self.trains[t].next_k;
                let raw = self.trains[t].offset + k * self.trains[t].period;
                if raw >= end {
                    break;
                }
                match self.onset(t, k) {
                    Some(x) if x >= end => break,
                    Some(x) if x >= start => {
                        out.push(StimulusEvent {
                            sample_index: x,
                            ..self.trains[t].event
                        });
                    }
                    _ => {}
                }
                self.trains[t].next_k += 1;
            }
        }
        out[first..].sort_unstable_by_key(|e| (e.sample_index, e.stimulator.code()));
    }

    /// The onsets of all stimuli of `stimulator` before `end`, without consuming the schedule (for tests and
    /// tools). Allocates.
    pub fn onsets_before(&self, stimulator: Stimulator, end: SampleIndex) -> Vec<SampleIndex> {
        let mut v = Vec::new();
        for (t, train) in self.trains.iter().enumerate() {
            if train.event.stimulator != stimulator {
                continue;
            }
            let mut k = 0;
            while train.offset + k * train.period < end {
                if let Some(x) = self.onset(t, k).filter(|&x| x < end) {
                    v.push(x);
                }
                k += 1;
            }
        }
        v
    }

    /// Samples between the pulses of a TES train.
    pub fn tes_isi_samples(plan: &Stimulation, fs: f64) -> u64 {
        samples(plan.tes_isi_ms * 1e-3, fs).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clicks_step_aside_from_ssep_onsets_and_blocks_do_not_matter() {
        // At 1 kHz the click period (90) and the SSEP period (213) share the factor 3, so clicks do land on SSEP
        // onsets: each such click must move to the next free sample.
        let plan = Stimulation::default();
        let fs = 1000.0;
        let all = [
            Stimulator::LeftMedian,
            Stimulator::RightMedian,
            Stimulator::LeftTibial,
            Stimulator::RightTibial,
            Stimulator::LeftEar,
            Stimulator::RightEar,
            Stimulator::Tes,
        ];
        let end = 600_000;
        let mut whole = Vec::new();
        Schedule::new(&plan, fs, &all).collect(0, end, &mut whole);
        let mut pieces = Vec::new();
        let mut s = Schedule::new(&plan, fs, &all);
        let mut at = 0;
        for len in [1, 7, 500, 3, 10_000].iter().cycle() {
            let to = (at + len).min(end);
            s.collect(at, to, &mut pieces);
            at = to;
            if at == end {
                break;
            }
        }
        assert_eq!(whole, pieces);
        assert!(
            whole.windows(2).all(|w| w[0].sample_index < w[1].sample_index),
            "unique onsets"
        );
        // Clicks at 20 + 90·j hit the SSEP onsets 50 + 213·k + {0, 53, 106, 159} where 90·j ≡ o − 20 (mod 213)
        // is solvable, i.e. for the two slots with 3 | (o − 20). Over lcm(90, 213) = 6390 samples (71 clicks, 30
        // periods of each slot) the map (j, k) ↦ 90·j − 213·k is one-to-one onto the multiples of 3, so each of
        // those slots is hit once: 2/71 of the clicks move, each by exactly one sample.
        let q = samples(1.0 / plan.click_rate_hz, fs);
        let ssep: Vec<u64> = whole
            .iter()
            .filter(|e| e.stimulator.code() <= 6)
            .map(|e| e.sample_index)
            .collect();
        let clicks: Vec<u64> = whole
            .iter()
            .filter(|e| e.stimulator == Stimulator::LeftEar)
            .map(|e| e.sample_index)
            .collect();
        let moved: Vec<u64> = clicks
            .iter()
            .copied()
            .filter(|&x| !(x - 20).is_multiple_of(q))
            .collect();
        assert!(
            moved
                .iter()
                .all(|&x| (x - 21).is_multiple_of(q) && ssep.contains(&(x - 1)))
        );
        let fraction = moved.len() as f64 / clicks.len() as f64;
        assert!((fraction - 2.0 / 71.0).abs() < 0.002, "{fraction}");
    }
}
