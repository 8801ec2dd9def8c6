//! [`ScriptedSource`]: a deterministic fake pipeline driven by a list of timed events and a synthetic
//! continuous signal, for tests, examples and screenshots.

use crate::clock::Clock;
use crate::decimate::{min_max_decimate, min_max_decimate_pairs};
use crate::demo::DemoCase;
use crate::source::{
    BaselineTarget, DashboardSource, LiveTraces, ProtocolInfo, RecordingStatus, ReplayStatus, SourceStatus,
    TraceKind, UserCommand,
};
use ionm_core::Rng;
use ionm_core::events::{
    AlarmEvent, AlarmState, AverageEvent, BaselineEvent, BaselineOrigin, Event, MarkerEvent,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The commands a [`ScriptedSource`] received, readable from a test while the app owns the source.
#[derive(Debug, Clone, Default)]
pub struct CommandLog(Arc<Mutex<Vec<UserCommand>>>);

impl CommandLog {
    /// All commands so far, oldest first.
    pub fn snapshot(&self) -> Vec<UserCommand> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Takes the commands so far, leaving the log empty.
    pub fn take(&self) -> Vec<UserCommand> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn push(&self, cmd: UserCommand) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(cmd);
    }
}

/// The synthetic continuous signal of a [`ScriptedSource`].
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticConfig {
    /// Number of channels.
    pub channels: usize,
    /// Samples per second per channel.
    pub sample_rate_hz: u32,
    /// Longest window the live view may ask for, s (memory: channels × 2 kinds × 2 × 1000/s × 8 bytes).
    pub window_s: f64,
    /// Seed of the noise.
    pub seed: u64,
    /// Channel labels (missing ones are `ch N`).
    pub labels: Vec<String>,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        Self {
            channels: 8,
            sample_rate_hz: 20_000,
            window_s: 10.0,
            seed: 1,
            labels: Vec::new(),
        }
    }
}

/// A fake source: replays `script` (events sorted by stream time) as the injected clock advances, answers
/// commands the way the pipeline would (a baseline, an acknowledgement, a marker, a correction come back as
/// events), records every command in a [`CommandLog`], and generates a synthetic continuous signal.
///
/// Stream time is `start + (clock − clock at creation) × speed`; in replay mode it stops at the end and can be
/// sought, paused and sped up. After a seek the epoch increments and the script is re-sent from its start up to
/// the new position, so the dashboard rebuilds the same state it would have had when playing from the start.
/// Amplitude and latency ratios of scripted averages are recomputed against the source's current baseline, so
/// a user re-baseline behaves as in the pipeline; alarms follow the script.
pub struct ScriptedSource {
    clock: Arc<dyn Clock>,
    script: Vec<Event>,
    next: usize,
    anchor_clock_s: f64,
    anchor_stream_s: f64,
    speed: f64,
    paused: bool,
    replay_duration_s: Option<f64>,
    epoch: u64,
    pending: Vec<Event>,
    log: CommandLog,
    name: String,
    protocol: Arc<ProtocolInfo>,
    recording: Option<PathBuf>,
    baselines: BTreeMap<String, BaselineEvent>,
    latest: BTreeMap<String, AverageEvent>,
    active: BTreeMap<u64, AlarmEvent>,
    acknowledged: BTreeSet<u64>,
    synth: Option<Synth>,
}

impl ScriptedSource {
    /// A live source replaying `script` from stream time 0 as `clock` advances.
    pub fn new(mut script: Vec<Event>, clock: Arc<dyn Clock>) -> Self {
        script.sort_by(|a, b| a.stream_s().total_cmp(&b.stream_s()));
        let now = clock.now_s();
        Self {
            clock,
            script,
            next: 0,
            anchor_clock_s: now,
            anchor_stream_s: 0.0,
            speed: 1.0,
            paused: false,
            replay_duration_s: None,
            epoch: 0,
            pending: Vec::new(),
            log: CommandLog::default(),
            name: "scripted".into(),
            protocol: Arc::new(ProtocolInfo::default()),
            recording: None,
            baselines: BTreeMap::new(),
            latest: BTreeMap::new(),
            active: BTreeMap::new(),
            acknowledged: BTreeSet::new(),
            synth: None,
        }
    }

    /// A live source on a [`DemoCase`] (with its protocol).
    pub fn from_demo(case: DemoCase, clock: Arc<dyn Clock>) -> Self {
        Self::new(case.events, clock).with_protocol(case.protocol)
    }

    /// Names the source in the status bar.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets the protocol shown.
    pub fn with_protocol(mut self, protocol: ProtocolInfo) -> Self {
        self.protocol = Arc::new(protocol);
        self
    }

    /// Pretends to record to `path` (its size grows with stream time).
    pub fn with_recording(mut self, path: impl Into<PathBuf>) -> Self {
        self.recording = Some(path.into());
        self
    }

    /// Adds a synthetic continuous signal for the live view.
    pub fn with_live_traces(mut self, config: SyntheticConfig) -> Self {
        self.synth = Some(Synth::new(config));
        self
    }

    /// Makes this a replay of a recording of `duration_s` stream seconds (seek, speed and pause work).
    pub fn as_replay(mut self, duration_s: f64) -> Self {
        self.replay_duration_s = Some(if duration_s.is_finite() {
            duration_s.max(0.0)
        } else {
            0.0
        });
        self
    }

    /// Starts at this stream time instead of 0 (what lies before it is sent on the first poll).
    pub fn starting_at(mut self, stream_s: f64) -> Self {
        self.anchor_stream_s = self.clamp_position(stream_s);
        self.anchor_clock_s = self.clock.now_s();
        self
    }

    /// The log of received commands (clone it before handing the source to the app).
    pub fn command_log(&self) -> CommandLog {
        self.log.clone()
    }

    /// The current stream time, s.
    pub fn stream_s(&self) -> f64 {
        if self.paused {
            return self.anchor_stream_s;
        }
        let elapsed = (self.clock.now_s() - self.anchor_clock_s).max(0.0);
        self.clamp_position(self.anchor_stream_s + elapsed * self.speed)
    }

    fn clamp_position(&self, s: f64) -> f64 {
        let s = if s.is_finite() { s.max(0.0) } else { 0.0 };
        match self.replay_duration_s {
            Some(d) => s.min(d),
            None => s,
        }
    }

    fn reanchor(&mut self) {
        self.anchor_stream_s = self.stream_s();
        self.anchor_clock_s = self.clock.now_s();
    }

    fn emit(&mut self, event: Event, out: &mut Vec<Event>) {
        match event {
            Event::Average(mut a) => {
                if let Some(b) = self.baselines.get(&a.trace) {
                    a.amplitude_ratio = ratio(a.amplitude_uv, b.amplitude_uv);
                    a.latency_ratio = ratio(a.latency_ms, b.latency_ms);
                }
                self.latest.insert(a.trace.clone(), a.clone());
                out.push(Event::Average(a));
            }
            Event::Baseline(b) => {
                self.baselines.insert(b.trace.clone(), b.clone());
                out.push(Event::Baseline(b));
            }
            Event::Alarm(a) => {
                match a.state {
                    AlarmState::Raised => {
                        self.active.insert(a.id, a.clone());
                        self.acknowledged.remove(&a.id);
                    }
                    AlarmState::Acknowledged => {
                        self.acknowledged.insert(a.id);
                    }
                    AlarmState::Cleared => {
                        self.active.remove(&a.id);
                        self.acknowledged.remove(&a.id);
                    }
                }
                out.push(Event::Alarm(a));
            }
            other => out.push(other),
        }
    }

    fn user_baseline(&mut self, trace: &str, now: f64) {
        let Some(a) = self.latest.get(trace) else {
            tracing::warn!(trace, "no average yet: cannot set a baseline");
            return;
        };
        let prev = self.baselines.get(trace);
        let b = BaselineEvent {
            stream_s: now,
            trace: trace.to_owned(),
            number: prev.map_or(1, |p| p.number + 1),
            origin: BaselineOrigin::User,
            sweeps: a.sweeps,
            amplitude_uv: a.amplitude_uv,
            latency_ms: a.latency_ms,
            fsp: a.fsp,
            residual_noise_uv: a.residual_noise_uv,
            replaces_s: prev.map(|p| p.stream_s),
            waveform: a.waveform.clone(),
        };
        self.baselines.insert(trace.to_owned(), b.clone());
        self.pending.push(Event::Baseline(b));
    }
}

fn ratio(v: Option<f64>, base: Option<f64>) -> Option<f64> {
    match (v, base) {
        (Some(v), Some(b)) if b != 0.0 && b.is_finite() => Some(v / b),
        _ => None,
    }
}

impl DashboardSource for ScriptedSource {
    fn poll_events(&mut self, out: &mut Vec<Event>) {
        let now = self.stream_s();
        while self.next < self.script.len() && self.script[self.next].stream_s() <= now {
            let ev = self.script[self.next].clone();
            self.next += 1;
            self.emit(ev, out);
        }
        out.append(&mut self.pending);
    }

    fn live_traces(&mut self, kind: TraceKind, seconds: f64, columns: usize, out: &mut LiveTraces) -> bool {
        let now = self.stream_s();
        match &mut self.synth {
            Some(s) => {
                s.advance_to(now);
                s.fill(kind, seconds, columns, out)
            }
            None => false,
        }
    }

    fn status(&self) -> SourceStatus {
        let now = self.stream_s();
        let (rate, channels) = self
            .synth
            .as_ref()
            .map_or((0.0, 0), |s| (f64::from(s.cfg.sample_rate_hz), s.cfg.channels));
        SourceStatus {
            source: self.name.clone(),
            sample_rate_hz: rate,
            channels,
            stream_s: now,
            // A frame of the simulated device carries 16 sample instants.
            frames: (now * rate / 16.0) as u64,
            crc_errors: 0,
            gaps: 0,
            queue_depth: 1,
            queue_capacity: 256,
            latency_ms: Some(8.0),
            recording: self.recording.as_ref().map(|p| RecordingStatus {
                path: p.clone(),
                // 24-bit samples.
                bytes: (now * rate * channels as f64 * 3.0) as u64,
            }),
            replay: self.replay_duration_s.map(|d| ReplayStatus {
                position_s: now,
                duration_s: d,
                speed: self.speed,
                paused: self.paused,
            }),
            protocol: Arc::clone(&self.protocol),
            epoch: self.epoch,
        }
    }

    fn command(&mut self, cmd: UserCommand) {
        self.log.push(cmd.clone());
        let now = self.stream_s();
        match cmd {
            UserCommand::SetBaseline(BaselineTarget::All) => {
                let traces: Vec<String> = self.latest.keys().cloned().collect();
                for t in traces {
                    self.user_baseline(&t, now);
                }
            }
            UserCommand::SetBaseline(BaselineTarget::Trace(t)) => self.user_baseline(&t, now),
            UserCommand::AcknowledgeAlarm { id } => match self.active.get(&id) {
                Some(a) if !self.acknowledged.contains(&id) => {
                    let mut ack = a.clone();
                    ack.stream_s = now;
                    ack.state = AlarmState::Acknowledged;
                    ack.message = format!("acknowledged: {}", a.message);
                    self.acknowledged.insert(id);
                    self.pending.push(Event::Alarm(ack));
                }
                _ => tracing::debug!(id, "acknowledge: alarm not active or already acknowledged"),
            },
            UserCommand::Marker { kind, text } => self.pending.push(Event::Marker(MarkerEvent {
                stream_s: now,
                kind,
                text,
            })),
            UserCommand::CorrectPeak(mut c) => {
                c.stream_s = now;
                self.pending.push(Event::Correction(c));
            }
            UserCommand::Seek { stream_s } => {
                if self.replay_duration_s.is_none() {
                    tracing::warn!("seek ignored: not a replay");
                    return;
                }
                self.anchor_stream_s = self.clamp_position(stream_s);
                self.anchor_clock_s = self.clock.now_s();
                self.epoch += 1;
                self.next = 0;
                self.pending.clear();
                self.baselines.clear();
                self.latest.clear();
                self.active.clear();
                self.acknowledged.clear();
                if let Some(s) = &mut self.synth {
                    s.restart_at(self.anchor_stream_s);
                }
            }
            UserCommand::SetReplaySpeed { speed } => {
                if self.replay_duration_s.is_some() && speed.is_finite() && speed > 0.0 {
                    self.reanchor();
                    self.speed = speed.clamp(0.05, 64.0);
                }
            }
            UserCommand::SetReplayPaused { paused } => {
                if self.replay_duration_s.is_some() {
                    self.reanchor();
                    self.paused = paused;
                }
            }
        }
    }
}

/// Synthetic continuous signal kept as 1 ms (min, max) blocks in a double-written ring, so that any window is
/// one contiguous slice and a frame re-decimates ~1000 pairs per second shown instead of every sample.
struct Synth {
    cfg: SyntheticConfig,
    /// Samples per block.
    block: usize,
    block_s: f64,
    /// Blocks in the ring.
    cap: usize,
    /// Per channel, per kind (0 filtered, 1 raw): 2 × cap pairs, slot i mirrored at i + cap.
    rings: Vec<[Vec<(f32, f32)>; 2]>,
    /// Blocks generated since the start of the stream.
    head: u64,
    /// First block held (after a restart).
    first: u64,
    rng: Rng,
    scratch: [Vec<f32>; 2],
}

impl Synth {
    fn new(mut cfg: SyntheticConfig) -> Self {
        cfg.channels = cfg.channels.clamp(1, ionm_core::MAX_CHANNELS);
        cfg.sample_rate_hz = cfg.sample_rate_hz.clamp(100, 100_000);
        let block = (cfg.sample_rate_hz as usize / 1000).max(1);
        let block_s = block as f64 / f64::from(cfg.sample_rate_hz);
        let window = if cfg.window_s.is_finite() {
            cfg.window_s.clamp(0.1, 60.0)
        } else {
            10.0
        };
        let cap = (window / block_s).ceil() as usize;
        for i in cfg.labels.len()..cfg.channels {
            cfg.labels.push(format!("ch {}", i + 1));
        }
        let rings = (0..cfg.channels)
            .map(|_| {
                [
                    vec![(f32::NAN, f32::NAN); 2 * cap],
                    vec![(f32::NAN, f32::NAN); 2 * cap],
                ]
            })
            .collect();
        Self {
            rng: Rng::new(cfg.seed),
            cfg,
            block,
            block_s,
            cap,
            rings,
            head: 0,
            first: 0,
            scratch: [vec![0.0; block], vec![0.0; block]],
        }
    }

    fn restart_at(&mut self, stream_s: f64) {
        let target = (stream_s / self.block_s).floor().max(0.0) as u64;
        self.head = target.saturating_sub(self.cap as u64);
        self.first = self.head;
    }

    fn advance_to(&mut self, stream_s: f64) {
        let target = (stream_s / self.block_s).floor().max(0.0) as u64;
        if target <= self.head {
            return;
        }
        if target - self.head > self.cap as u64 {
            self.head = target - self.cap as u64;
            self.first = self.head;
        }
        while self.head < target {
            self.generate(self.head);
            self.head += 1;
        }
    }

    fn generate(&mut self, b: u64) {
        let rate = f64::from(self.cfg.sample_rate_hz);
        let n = self.cfg.channels;
        let slot = (b % self.cap as u64) as usize;
        // Uniform noise of unit variance: (u − ½)·√12.
        let sqrt12 = 12f64.sqrt();
        for ch in 0..n {
            let emg = ch % 2 == 1;
            for i in 0..self.block {
                let idx = b * self.block as u64 + i as u64;
                let t = idx as f64 / rate;
                let mut f = 4.0 * (self.rng.uniform() - 0.5) * sqrt12;
                // Evoked response 15–45 ms after each stimulus at 4.7 Hz.
                let phase = t % (1.0 / 4.7);
                if (0.015..0.045).contains(&phase) {
                    let x = (phase - 0.015) / 0.03;
                    f += 10.0 * (std::f64::consts::TAU * x).sin() * (1.0 - x);
                }
                // EMG bursts of 300 ms every 7 s on odd channels.
                if emg && (t + ch as f64) % 7.0 < 0.3 {
                    f += 40.0 * (self.rng.uniform() - 0.5) * sqrt12;
                }
                let raw = f
                    + 25.0 * (std::f64::consts::TAU * 50.0 * t).sin()
                    + 15.0 * (ch as f64 - n as f64 / 2.0)
                    + 10.0 * (std::f64::consts::TAU * 0.3 * t + ch as f64).sin();
                self.scratch[0][i] = f as f32;
                self.scratch[1][i] = raw as f32;
            }
            for kind in 0..2 {
                let mut pair = [(0.0, 0.0)];
                min_max_decimate(&self.scratch[kind], 1, &mut pair);
                let ring = &mut self.rings[ch][kind];
                ring[slot] = pair[0];
                ring[slot + self.cap] = pair[0];
            }
        }
    }

    fn fill(&self, kind: TraceKind, seconds: f64, columns: usize, out: &mut LiveTraces) -> bool {
        let avail = (self.head - self.first).min(self.cap as u64) as usize;
        if avail == 0 || columns == 0 {
            return false;
        }
        let seconds = if seconds.is_finite() { seconds } else { 1.0 };
        let want = ((seconds / self.block_s).ceil() as usize).clamp(1, self.cap);
        let have = avail.min(want);
        let s = ((self.head - 1) % self.cap as u64) as usize;
        let range = s + self.cap + 1 - have..s + self.cap + 1;
        let cols_have = if have == want {
            columns
        } else {
            (columns * have / want).max(1)
        };
        out.reshape(self.cfg.channels, columns);
        out.end_s = self.head as f64 * self.block_s;
        out.seconds = want as f64 * self.block_s;
        out.kind = kind;
        let k = match kind {
            TraceKind::Filtered => 0,
            TraceKind::Raw => 1,
        };
        for (ch, dst) in out.channels.iter_mut().enumerate() {
            dst.label.clone_from(&self.cfg.labels[ch]);
            let cols = &mut dst.columns[columns - cols_have..];
            min_max_decimate_pairs(&self.rings[ch][k][range.clone()], cols_have, cols);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::demo::{DemoOptions, demo_case};

    #[test]
    fn events_follow_the_clock_and_commands_come_back_as_events() {
        let clock = ManualClock::new(100.0);
        let case = demo_case(&DemoOptions {
            duration_s: 120.0,
            average_period_s: 5.0,
            traces: 2,
            ..DemoOptions::default()
        });
        let mut src = ScriptedSource::from_demo(case, clock.shared()).as_replay(120.0);
        let log = src.command_log();
        let mut ev = Vec::new();
        src.poll_events(&mut ev);
        assert_eq!(ev.len(), 1, "only the device event at t = 0");
        clock.advance_s(20.0);
        ev.clear();
        src.poll_events(&mut ev);
        assert!(ev.iter().all(|e| e.stream_s() <= 20.0));
        assert!(ev.iter().any(|e| matches!(e, Event::Baseline(_))));
        src.command(UserCommand::SetBaseline(BaselineTarget::Trace("L median".into())));
        ev.clear();
        src.poll_events(&mut ev);
        let b = ev.iter().find_map(|e| match e {
            Event::Baseline(b) => Some(b),
            _ => None,
        });
        assert_eq!(b.map(|b| (b.number, b.origin)), Some((2, BaselineOrigin::User)));
        src.command(UserCommand::Seek { stream_s: 10.0 });
        assert_eq!(src.status().epoch, 1);
        assert_eq!(src.status().stream_s, 10.0);
        ev.clear();
        src.poll_events(&mut ev);
        assert!(ev.iter().all(|e| e.stream_s() <= 10.0) && !ev.is_empty());
        src.command(UserCommand::SetReplayPaused { paused: true });
        clock.advance_s(5.0);
        assert_eq!(src.stream_s(), 10.0);
        assert_eq!(log.snapshot().len(), 3);
    }

    #[test]
    fn live_traces_cover_the_window_and_pad_the_start_with_nan() {
        let clock = ManualClock::new(0.0);
        let mut src = ScriptedSource::new(Vec::new(), clock.shared()).with_live_traces(SyntheticConfig {
            channels: 3,
            sample_rate_hz: 2000,
            window_s: 4.0,
            ..SyntheticConfig::default()
        });
        let mut lt = LiveTraces::default();
        assert!(!src.live_traces(TraceKind::Raw, 2.0, 100, &mut lt));
        clock.advance_s(1.0);
        assert!(src.live_traces(TraceKind::Raw, 2.0, 100, &mut lt));
        assert_eq!(lt.channels.len(), 3);
        // One second of two: the left half is empty.
        let ch = &lt.channels[0].columns;
        assert!(ch[..50].iter().all(|p| p.0.is_nan()));
        assert!(ch[50..].iter().all(|p| p.0.is_finite() && p.0 <= p.1));
        clock.advance_s(100.0);
        assert!(src.live_traces(TraceKind::Filtered, 2.0, 100, &mut lt));
        assert!(lt.channels[2].columns.iter().all(|p| p.0.is_finite()));
        assert!((lt.end_s - 101.0).abs() < 1e-9);
    }
}
