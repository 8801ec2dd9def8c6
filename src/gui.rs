//! The dashboard on a running pipeline: [`PipelineSource`] implements the dashboard's `DashboardSource` by
//! reading the event bus and the live-signal taps, and sends the user's commands back. It runs on the UI thread
//! and never touches the processing thread's state: events arrive over a channel, samples over SPSC rings.

use crate::events::EventSink;
use ionm_core::events::Event;
use ionm_dashboard::{
    BaselineTarget, DashboardSource, LiveTraces, ProtocolInfo, RecordingStatus, ReplayStatus, SourceStatus,
    TraceKind, TraceThresholds, UserCommand, min_max_decimate,
};
use ionm_io::ReplaySpeed;
use ionm_monitor::Criteria;
use ionm_pipeline::{Command, Pipeline, PipelineEvent, ScopeTap};
use ringbuf::traits::*;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::mpsc;

/// Seconds of signal kept for the live view.
const HISTORY_S: f64 = 12.0;

/// A running pipeline as the dashboard's source.
pub struct PipelineSource {
    pipeline: Option<Pipeline>,
    commands: mpsc::Sender<Command>,
    sink: Option<EventSink>,
    taps: Option<mpsc::Receiver<ScopeTap>>,
    tap: Option<ScopeTap>,
    raw: Vec<VecDeque<f32>>,
    filtered: Vec<VecDeque<f32>>,
    protocol: Arc<ProtocolInfo>,
    thresholds: BTreeMap<String, TraceThresholds>,
    source_name: String,
    record: Option<std::path::PathBuf>,
    epoch: u64,
    fatal: Option<String>,
    finished: bool,
}

impl PipelineSource {
    /// Wraps `pipeline` (started with `scope: true` and waveforms on). Events also go to `sink`.
    pub fn new(
        mut pipeline: Pipeline,
        sink: Option<EventSink>,
        protocol_name: String,
        source_name: String,
        record: Option<std::path::PathBuf>,
    ) -> Self {
        let taps = pipeline.take_scope();
        let commands = pipeline.commands();
        Self {
            pipeline: Some(pipeline),
            commands,
            sink,
            taps,
            tap: None,
            raw: Vec::new(),
            filtered: Vec::new(),
            protocol: Arc::new(ProtocolInfo {
                name: protocol_name,
                ..Default::default()
            }),
            thresholds: BTreeMap::new(),
            source_name,
            record,
            epoch: 0,
            fatal: None,
            finished: false,
        }
    }

    fn take(&mut self, ev: PipelineEvent, out: &mut Vec<Event>) {
        match ev {
            PipelineEvent::Event(e) => {
                if let Some(s) = self.sink.as_mut()
                    && let Err(err) = s.write(&e)
                {
                    tracing::error!(error = %err, "cannot write the events file");
                }
                if let Some(line) = crate::run::describe(&e) {
                    tracing::info!("{line}");
                }
                if let Event::Average(a) = &e
                    && !self.thresholds.contains_key(&a.trace)
                {
                    let c = Criteria::for_modality(&a.modality);
                    self.thresholds.insert(
                        a.trace.clone(),
                        TraceThresholds {
                            trace: a.trace.clone(),
                            amplitude_ratio: c.amplitude_ratio,
                            latency_ratio: c.latency_ratio,
                        },
                    );
                    let mut info = (*self.protocol).clone();
                    info.thresholds = self.thresholds.values().cloned().collect();
                    self.protocol = Arc::new(info);
                }
                if let Event::Device { device, .. } = &e {
                    let mut info = (*self.protocol).clone();
                    info.montage = device.channels.iter().map(|c| c.label.clone()).collect();
                    self.protocol = Arc::new(info);
                }
                out.push(e);
            }
            PipelineEvent::Fatal(msg) => {
                tracing::error!("{msg}");
                self.fatal = Some(msg);
            }
            PipelineEvent::Finished => self.finished = true,
        }
    }

    fn drain_scope(&mut self) {
        if let Some(rx) = &self.taps {
            while let Ok(tap) = rx.try_recv() {
                let n = tap.labels.len();
                self.raw = vec![VecDeque::new(); n];
                self.filtered = vec![VecDeque::new(); n];
                self.tap = Some(tap);
            }
        }
        let Some(tap) = self.tap.as_mut() else { return };
        let cap = (HISTORY_S * tap.sample_rate_hz) as usize;
        for (ring, hist) in tap
            .raw
            .iter_mut()
            .zip(&mut self.raw)
            .chain(tap.filtered.iter_mut().zip(&mut self.filtered))
        {
            hist.extend(ring.pop_iter());
            let excess = hist.len().saturating_sub(cap);
            hist.drain(..excess);
        }
    }
}

impl Drop for PipelineSource {
    /// The window closed: stop the pipeline and write what it published last.
    fn drop(&mut self) {
        if let Some(p) = self.pipeline.take() {
            for ev in p.stop() {
                self.take(ev, &mut Vec::new());
            }
        }
    }
}

impl DashboardSource for PipelineSource {
    fn poll_events(&mut self, out: &mut Vec<Event>) {
        let Some(p) = self.pipeline.as_ref() else { return };
        let evs: Vec<PipelineEvent> = p.events().try_iter().collect();
        for ev in evs {
            self.take(ev, out);
        }
    }

    fn live_traces(&mut self, kind: TraceKind, seconds: f64, columns: usize, out: &mut LiveTraces) -> bool {
        self.drain_scope();
        let (Some(tap), Some(p)) = (self.tap.as_ref(), self.pipeline.as_ref()) else {
            return false;
        };
        let rate = tap.sample_rate_hz;
        let want = ((seconds * rate) as usize).max(1);
        let hist = match kind {
            TraceKind::Raw => &mut self.raw,
            TraceKind::Filtered => &mut self.filtered,
        };
        out.reshape(hist.len(), columns);
        out.kind = kind;
        out.seconds = seconds;
        let s = p.stats().snapshot();
        out.end_s = if s.sample_rate_hz > 0 {
            s.stream_index as f64 / s.sample_rate_hz as f64
        } else {
            0.0
        };
        for ((h, ch), label) in hist.iter_mut().zip(&mut out.channels).zip(&tap.labels) {
            ch.label.clone_from(label);
            let len = h.len();
            let have = len.min(want);
            let data = &h.make_contiguous()[len - have..];
            // Right-align: the newest sample is at the right edge; missing history stays NaN on the left.
            let used = ((have as f64 / want as f64) * columns as f64).round() as usize;
            let start = columns - used.min(columns);
            min_max_decimate(data, used.min(columns), &mut ch.columns[start..]);
        }
        true
    }

    fn status(&self) -> SourceStatus {
        let Some(p) = self.pipeline.as_ref() else {
            return SourceStatus::default();
        };
        let i = p.ingest().snapshot();
        let s = p.stats().snapshot();
        let rate = s.sample_rate_hz as f64;
        let replay = p.replay_control().map(|c| ReplayStatus {
            position_s: c.position_s(),
            duration_s: c.duration_s().unwrap_or(0.0),
            speed: match c.speed() {
                ReplaySpeed::Max => f64::INFINITY,
                ReplaySpeed::Factor(f) => f,
            },
            paused: c.paused.load(std::sync::atomic::Ordering::Relaxed),
        });
        SourceStatus {
            source: self.source_name.clone(),
            sample_rate_hz: rate,
            channels: self.tap.as_ref().map_or(0, |t| t.labels.len()),
            stream_s: if rate > 0.0 {
                s.stream_index as f64 / rate
            } else {
                0.0
            },
            frames: i.frames,
            crc_errors: i.crc_errors,
            gaps: s.gaps,
            queue_depth: s.queue_depth as usize,
            queue_capacity: 0,
            latency_ms: Some(
                p.stats()
                    .process_ns_last
                    .load(std::sync::atomic::Ordering::Relaxed) as f64
                    * 1e-6,
            ),
            recording: self.record.as_ref().map(|path| RecordingStatus {
                path: path.clone(),
                bytes: std::fs::metadata(path).map_or(0, |m| m.len()),
            }),
            replay,
            protocol: self.protocol.clone(),
            epoch: self.epoch,
        }
    }

    fn command(&mut self, cmd: UserCommand) {
        let to_pipeline = match cmd {
            UserCommand::SetBaseline(BaselineTarget::All) => Some(Command::Baseline { trace: None }),
            UserCommand::SetBaseline(BaselineTarget::Trace(t)) => Some(Command::Baseline { trace: Some(t) }),
            UserCommand::AcknowledgeAlarm { id } => Some(Command::Acknowledge { id }),
            UserCommand::Marker { kind, text } => Some(Command::Marker { kind, text }),
            UserCommand::CorrectPeak(c) => Some(Command::Correction {
                trace: c.trace,
                sequence: c.sequence,
                peak: c.peak,
                latency_ms: c.latency_ms,
                amplitude_uv: c.amplitude_uv,
            }),
            UserCommand::Seek { stream_s } => {
                if let Some(c) = self.pipeline.as_ref().and_then(|p| p.replay_control()) {
                    c.seek(stream_s);
                    self.epoch += 1;
                }
                None
            }
            UserCommand::SetReplaySpeed { speed } => {
                if let Some(c) = self.pipeline.as_ref().and_then(|p| p.replay_control()) {
                    c.set_speed(if speed.is_finite() {
                        ReplaySpeed::Factor(speed)
                    } else {
                        ReplaySpeed::Max
                    });
                }
                None
            }
            UserCommand::SetReplayPaused { paused } => {
                if let Some(c) = self.pipeline.as_ref().and_then(|p| p.replay_control()) {
                    c.paused.store(paused, std::sync::atomic::Ordering::Relaxed);
                }
                None
            }
        };
        if let Some(c) = to_pipeline {
            // The processing thread may have ended (source finished); nothing to do then.
            let _ = self.commands.send(c);
        }
    }
}
