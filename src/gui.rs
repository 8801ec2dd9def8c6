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
        // Keep the live history (and the channel count of the status bar) current in every view.
        self.drain_scope();
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
            // Decoding of the last chunk + processing of the last item (the queue wait is shown by its depth).
            latency_ms: Some(
                (i.decode_latency_ns
                    + p.stats()
                        .process_ns_last
                        .load(std::sync::atomic::Ordering::Relaxed)) as f64
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

/// The dashboard on the real pipeline: a seeded simulator (spinal cord ischemia on the left tibial), paced at
/// 100× real time so the pipeline is still running when the user acts, the app driven through AccessKit by
/// egui_kittest with an injected clock. Then the recording it made is replayed and seeked.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::{demo_source, load_protocol, replay_source};
    use egui::accesskit::Role;
    use egui_kittest::Harness;
    use egui_kittest::kittest::Queryable;
    use firmware_sim::transmit::Speed;
    use ionm_core::events::{AlarmClass, BaselineOrigin};
    use ionm_dashboard::{DashboardApp, DashboardConfig, ManualClock};
    use ionm_io::ReaderConfig;
    use ionm_pipeline::PipelineConfig;
    use std::path::Path;
    use std::time::{Duration, Instant};

    /// Wall-time limit for any one wait: generous for a loaded 2-core CI machine in a debug build.
    const WAIT: Duration = Duration::from_secs(240);

    fn harness(source: PipelineSource, clock: &ManualClock) -> Harness<'static, DashboardApp> {
        let app = DashboardApp::with_config(Box::new(source), clock.shared(), DashboardConfig::default());
        Harness::builder()
            .with_size(egui::vec2(1600.0, 1000.0))
            .build_ui_state(|ui, app: &mut DashboardApp| app.dashboard_ui(ui), app)
    }

    // Clicks go through AccessKit (by widget id, as assistive technology does): a pointer click at a node's
    // last rectangle can miss when a new event reflows the layout between two frames.

    /// Runs frames (the clock moving 50 ms per frame) until `done` holds; panics with `what` after [`WAIT`].
    fn until(
        h: &mut Harness<'static, DashboardApp>,
        clock: &ManualClock,
        what: &str,
        mut done: impl FnMut(&Harness<'static, DashboardApp>) -> bool,
    ) {
        let start = Instant::now();
        loop {
            clock.advance_s(0.05);
            h.step();
            if done(h) {
                return;
            }
            if start.elapsed() > WAIT {
                let s = h.state().status();
                panic!(
                    "timed out waiting for: {what} (epoch {}, stream {:.1} s, replay {:?})",
                    s.epoch, s.stream_s, s.replay
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn events(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .expect("events file")
            .lines()
            .map(|l| serde_json::from_str(l).expect("an event per line"))
            .collect()
    }

    #[test]
    fn alarm_acknowledge_marker_rebaseline_on_the_live_pipeline_then_replay_seek() {
        let dir = std::env::temp_dir().join(format!("ionm-gui-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (events_path, bdf) = (dir.join("events.jsonl"), dir.join("case.bdf"));

        // Live: seeded simulator → decoder → DSP → monitor → dashboard, recording to BDF+.
        let source = demo_source(
            "ssep-cord-ischemia",
            16,
            10_000,
            7,
            Speed::Factor(100.0),
            Some(1800.0),
        )
        .expect("simulator");
        let mut config = PipelineConfig::new(load_protocol("sim-default").expect("protocol"));
        config.waveforms = true;
        config.scope = true;
        config.record = Some((bdf.clone(), ionm_record::RecorderConfig::default()));
        let reader = ReaderConfig {
            lossless: true,
            ..Default::default()
        };
        let pipeline = Pipeline::start(source, reader, config).expect("pipeline");
        let sink = EventSink::open(&events_path, false).expect("events file");
        let clock = ManualClock::new(0.0);
        let src = PipelineSource::new(
            pipeline,
            Some(sink),
            "sim-default".into(),
            "simulator".into(),
            Some(bdf.clone()),
        );
        let mut h = harness(src, &clock);

        // No alarm at baseline; the banner appears once the left tibial cortical response has fallen (4 min on).
        until(&mut h, &clock, "baselines", |h| {
            h.state()
                .model()
                .traces()
                .iter()
                .any(|t| t.baseline_until(None).is_some())
        });
        // (Technical alarms are possible here: a loaded CI machine can starve the 100× pacer past the 500 ms
        // signal-lost watchdog. Clinical ones are not.)
        let early: Vec<String> = h
            .state()
            .model()
            .active_alarms()
            .values()
            .filter(|a| a.raised.class == AlarmClass::Clinical)
            .map(|a| format!("{:?}", a.raised))
            .collect();
        assert!(early.is_empty(), "clinical alarms at baseline: {early:?}");
        until(&mut h, &clock, "a clinical alarm", |h| {
            h.state()
                .model()
                .active_alarms()
                .values()
                .any(|a| a.raised.class == AlarmClass::Clinical)
        });
        h.run();
        let (id, trace, raised_s) = {
            let a = h
                .state()
                .model()
                .active_alarms()
                .values()
                .find(|a| a.raised.class == AlarmClass::Clinical);
            let a = &a.expect("clinical alarm").raised;
            (a.id, a.trace.clone().unwrap_or_default(), a.stream_s)
        };
        assert!(
            raised_s > 240.0,
            "alarm at {raised_s} s, before the injury at 240 s"
        );
        assert!(
            trace.contains("left_tibial") || trace.contains("N34"),
            "alarm on {trace}"
        );
        assert!(h.query_all_by_label_contains("CLINICAL ALARM").next().is_some());

        // Acknowledge: goes to the monitor, comes back as an event; the banner stays (muted) until cleared.
        h.get_all_by_label("Acknowledge")
            .next()
            .expect("an Acknowledge button")
            .click_accesskit();
        // (The banner may list several alarms: whichever the first button belongs to.)
        until(&mut h, &clock, "the acknowledgement echo", |h| {
            h.state()
                .model()
                .active_alarms()
                .values()
                .any(|a| a.is_acknowledged())
        });
        h.run();
        let acked = h
            .state()
            .model()
            .active_alarms()
            .values()
            .find(|a| a.is_acknowledged())
            .map(|a| a.raised.id);
        assert!(h.query_all_by_label_contains("acknowledged at").next().is_some());

        // A one-click surgical marker is stamped with stream time by the pipeline.
        h.get_by_label("Incision").click_accesskit();
        until(&mut h, &clock, "the marker echo", |h| {
            h.state().model().markers().iter().any(|m| m.kind == "incision")
        });

        // Re-baseline all: the monitor takes the latest averages as user baselines.
        h.get_by_label("Re-baseline all").click_accesskit();
        until(&mut h, &clock, "user baselines", |h| {
            h.state().model().traces().iter().any(|t| {
                t.baseline_until(None)
                    .is_some_and(|b| b.origin == BaselineOrigin::User)
            })
        });
        let live_end_s = h.state().status().stream_s;
        drop(h); // stops the pipeline, writes the last events, closes the recording

        // The same actions are in the event stream…
        let evs = events(&events_path);
        let of = |ty: &'static str| evs.iter().filter(move |e| e["type"] == ty);
        assert!(
            of("alarm").any(|e| Some(e["id"].as_u64().unwrap_or(0)) == acked && e["state"] == "acknowledged")
        );
        assert!(of("alarm").any(|e| e["id"] == id && e["class"] == "clinical" && e["state"] == "raised"));
        assert!(of("marker").any(|e| e["kind"] == "incision"));
        assert!(of("baseline").any(|e| e["origin"] == "user"));
        // … and the marker is in the recording.
        let mut r = ionm_edf::EdfReader::open(&bdf).expect("the recording opens");
        let notes = r.annotations().expect("annotations");
        assert!(
            notes.iter().any(|a| a.text.starts_with("marker incision")),
            "no marker annotation"
        );

        // Replay the recording at 1×, seek back to 100 s from the transport slider.
        let source = replay_source(&bdf, ionm_record::TRIGGER_LABEL, &[], None, None).expect("replay source");
        let mut config = PipelineConfig::new(load_protocol("sim-default").expect("protocol"));
        config.waveforms = true;
        config.scope = true;
        let pipeline = Pipeline::replay(source, ReplaySpeed::Factor(1.0), config).expect("replay");
        let clock = ManualClock::new(0.0);
        let src = PipelineSource::new(pipeline, None, "sim-default".into(), "replay".into(), None);
        let mut h = harness(src, &clock);
        until(&mut h, &clock, "the replay's length", |h| {
            h.state()
                .status()
                .replay
                .as_ref()
                .is_some_and(|r| r.duration_s > 0.0)
        });
        let duration = h.state().status().replay.as_ref().map_or(0.0, |r| r.duration_s);
        assert!(
            (duration - live_end_s).abs() < 30.0,
            "replay {duration} s, live {live_end_s} s"
        );
        h.get_by_role_and_label(Role::Slider, "Seek")
            .set_value_accesskit(100.0);
        until(&mut h, &clock, "the seek", |h| {
            let s = h.state().status();
            s.epoch == 1 && s.stream_s >= 100.0
        });
        let s = h.state().status().stream_s;
        assert!(s < 110.0, "stream at {s} s after seeking to 100 s at 1×");
        assert_eq!(h.state().model().epoch(), 1);
        // The model restarted at the seek: the alarm and the marker (both later) are gone.
        assert!(h.state().model().active_alarms().is_empty());
        assert!(h.state().model().markers().is_empty());
        drop(h);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
