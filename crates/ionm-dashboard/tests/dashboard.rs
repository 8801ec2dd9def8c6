//! The dashboard driven through AccessKit with egui_kittest: no display, no GPU. A [`ManualClock`] drives both
//! the app and the [`ScriptedSource`], so every frame is reproducible.

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use ionm_core::events::{
    AlarmClass, AlarmEvent, AlarmKind, AlarmState, AverageEvent, BaselineOrigin, Event, PeakValue, Waveform,
};
use ionm_core::{Gap, GapCause, LinkEvent, Stimulator};
use ionm_dashboard::demo::{DemoDrop, DemoOptions, demo_case};
use ionm_dashboard::{
    BaselineTarget, CommandLog, DashboardApp, DashboardConfig, DashboardSource, LiveTraces, ManualClock,
    ProtocolInfo, ReplayStatus, ScriptedSource, SourceStatus, SyntheticConfig, ThemeChoice, TraceKind,
    UserCommand, View,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Three traces, one average every 5 s; the third trace ("L tibial") drops to 30 % from 60 s to 100 s, so its
/// clinical alarm (id 1) is raised at 65.742 s (second average inside the drop) and cleared at 105.742 s.
fn options() -> DemoOptions {
    DemoOptions {
        duration_s: 200.0,
        average_period_s: 5.0,
        traces: 3,
        drop: Some(DemoDrop {
            trace: 2,
            from_s: 60.0,
            to_s: 100.0,
            amplitude_ratio: 0.3,
        }),
        technical: None,
        markers: vec![(30.0, "incision".into())],
        seed: 1,
    }
}

/// The whole dashboard in a `width` × `height` window.
fn harness(app: DashboardApp, width: f32, height: f32) -> Harness<'static, DashboardApp> {
    Harness::builder()
        .with_size(egui::vec2(width, height))
        .build_ui_state(|ui, app: &mut DashboardApp| app.dashboard_ui(ui), app)
}

struct Fixture {
    h: Harness<'static, DashboardApp>,
    clock: ManualClock,
    log: CommandLog,
}

impl Fixture {
    /// Stream time = `start_s` + clock seconds.
    fn new(start_s: f64, replay: bool, view: View) -> Self {
        let clock = ManualClock::new(0.0);
        let mut src = ScriptedSource::from_demo(demo_case(&options()), clock.shared())
            .with_name("scripted test")
            .with_recording("/tmp/case.bdf")
            .with_live_traces(SyntheticConfig {
                channels: 4,
                sample_rate_hz: 1000,
                window_s: 5.0,
                ..SyntheticConfig::default()
            });
        if replay {
            src = src.as_replay(200.0);
        }
        let src = src.starting_at(start_s);
        let log = src.command_log();
        let config = DashboardConfig {
            view,
            ..DashboardConfig::default()
        };
        let app = DashboardApp::with_config(Box::new(src), clock.shared(), config);
        let h = harness(app, 1600.0, 1000.0);
        Self { h, clock, log }
    }

    /// Moves the clock (and so the stream) on and lets the ui settle.
    fn advance(&mut self, seconds: f64) {
        self.clock.advance_s(seconds);
        self.settle();
    }

    /// Enough frames for a command to reach the source and its echo to come back as an event.
    fn settle(&mut self) {
        self.h.run();
        self.h.step();
        self.h.run();
    }

    fn has_label_containing(&self, text: &str) -> bool {
        self.h.query_all_by_label_contains(text).next().is_some()
    }
}

#[test]
fn alarm_banner_appears_on_the_scripted_drop_and_acknowledge_then_clear_remove_it() {
    let mut fx = Fixture::new(50.0, false, View::Averages);
    fx.settle();
    assert!(!fx.has_label_containing("CLINICAL ALARM · L tibial"));
    fx.advance(16.0); // stream 66 s: past the raise at 65.742 s
    assert!(fx.has_label_containing("CLINICAL ALARM · L tibial · amplitude drop"));
    assert!(fx.h.state().model().active_alarms().contains_key(&1));

    fx.h.get_by_label("Acknowledge").click();
    fx.settle();
    assert!(
        fx.log
            .snapshot()
            .contains(&UserCommand::AcknowledgeAlarm { id: 1 })
    );
    // The source echoed the acknowledgement: still active (until cleared), shown muted, no button.
    let active = &fx.h.state().model().active_alarms()[&1];
    assert!(active.is_acknowledged());
    assert!(fx.has_label_containing("CLINICAL ALARM · L tibial"));
    assert!(fx.has_label_containing("acknowledged at"));
    assert!(fx.h.query_by_label("Acknowledge").is_none());

    fx.advance(40.0); // stream 106 s: past the clear at 105.742 s
    assert!(!fx.has_label_containing("CLINICAL ALARM · L tibial"));
    assert!(fx.h.state().model().active_alarms().is_empty());
    let states: Vec<AlarmState> = fx.h.state().model().alarm_log().iter().map(|a| a.state).collect();
    assert_eq!(
        states,
        [AlarmState::Raised, AlarmState::Acknowledged, AlarmState::Cleared]
    );
}

#[test]
fn marker_buttons_and_free_text_write_marker_events() {
    let mut fx = Fixture::new(40.0, false, View::Averages);
    fx.settle();
    fx.h.get_by_label("Incision").click();
    fx.settle();
    fx.h.get_by_role(Role::TextInput).focus();
    fx.h.step();
    fx.h.get_by_role(Role::TextInput).type_text("bleeding at T10");
    fx.settle();
    fx.h.get_by_label("Add note").click();
    fx.settle();
    let cmds = fx.log.snapshot();
    assert!(cmds.contains(&UserCommand::Marker {
        kind: "incision".into(),
        text: String::new()
    }));
    assert!(cmds.contains(&UserCommand::Marker {
        kind: "note".into(),
        text: "bleeding at T10".into()
    }));
    // Echoed by the source into the event stream, stamped with its stream time (the scripted one at 30 s too).
    let markers = fx.h.state().model().markers();
    let kinds: Vec<&str> = markers.iter().map(|m| m.kind.as_str()).collect();
    assert_eq!(kinds, ["incision", "incision", "note"]);
    assert!(markers.iter().skip(1).all(|m| m.stream_s == 40.0));
    // The Log view lists them.
    fx.h.get_by_label("Log").click();
    fx.settle();
    assert!(fx.has_label_containing("bleeding at T10"));
}

#[test]
fn rebaseline_all_and_one_trace() {
    let mut fx = Fixture::new(30.0, false, View::Averages);
    fx.settle();
    assert_eq!(fx.h.get_all_by_label_contains("BL #1 (auto)").count(), 3);
    fx.h.get_by_label("Re-baseline all").click();
    fx.settle();
    assert_eq!(fx.log.snapshot(), [UserCommand::SetBaseline(BaselineTarget::All)]);
    for tr in fx.h.state().model().traces() {
        let b = tr.baseline_until(None).expect("baseline");
        assert_eq!((b.number, b.origin), (2, BaselineOrigin::User), "{}", tr.name);
    }
    assert_eq!(fx.h.get_all_by_label_contains("BL #2 (user)").count(), 3);

    // The first panel's button re-baselines its trace only.
    fx.h.get_all_by_label("Re-baseline")
        .next()
        .expect("button")
        .click();
    fx.settle();
    assert_eq!(
        fx.log.snapshot().last(),
        Some(&UserCommand::SetBaseline(BaselineTarget::Trace(
            "L median".into()
        )))
    );
    assert_eq!(fx.h.get_all_by_label_contains("BL #3 (user)").count(), 1);
    // Later averages are measured against the new baseline.
    fx.advance(5.0);
    let tr = fx.h.state().model().trace("L median").expect("trace");
    let bl = tr.baseline_until(None).expect("baseline");
    let avg = &tr.history().back().expect("average").average;
    assert!(avg.stream_s > bl.stream_s);
    let want = avg.amplitude_uv.unwrap() / bl.amplitude_uv.unwrap();
    assert_eq!(avg.amplitude_ratio, Some(want));
}

#[test]
fn replay_seek_restarts_the_stream_at_the_position() {
    let mut fx = Fixture::new(100.0, true, View::Averages);
    fx.settle();
    assert!(fx.has_label_containing("CLINICAL ALARM")); // raised at 65.7 s, cleared only at 105.7 s
    assert!(fx.h.state().model().latest_stream_s() > 95.0);

    fx.h.get_by_role_and_label(Role::Slider, "Seek")
        .set_value_accesskit(30.0);
    fx.settle();
    assert!(fx.log.snapshot().contains(&UserCommand::Seek { stream_s: 30.0 }));
    let app = fx.h.state();
    assert_eq!(app.status().epoch, 1);
    assert_eq!(app.status().stream_s, 30.0);
    assert_eq!(app.model().epoch(), 1);
    // The model was rebuilt from the start of the recording up to 30 s: nothing later, the alarm is gone.
    assert!(app.model().latest_stream_s() <= 30.0 && app.model().latest_stream_s() > 25.0);
    assert!(app.model().active_alarms().is_empty());
    assert!(!fx.has_label_containing("CLINICAL ALARM"));
    assert!(fx.has_label_containing("0:00:30 / 0:03:20"));

    // Pause, then speed.
    fx.h.get_by_label("Pause replay").click();
    fx.settle();
    fx.advance(10.0);
    assert_eq!(fx.h.state().status().stream_s, 30.0);
    fx.h.get_by_label("Play").click();
    fx.settle();
    fx.h.get_by_label("Speed").click();
    fx.settle();
    fx.h.get_by_label("4×").click();
    fx.settle();
    assert!(
        fx.log
            .snapshot()
            .contains(&UserCommand::SetReplaySpeed { speed: 4.0 })
    );
    fx.advance(5.0);
    // 30 s + 5 s × 4; the clock counts whole nanoseconds, hence the 1e-6 s tolerance.
    assert!((fx.h.state().status().stream_s - 50.0).abs() < 1e-6);
}

#[test]
fn dragging_a_peak_marker_sends_a_correction() {
    let mut fx = Fixture::new(30.0, false, View::Averages);
    fx.settle();
    let (lat0, seq) = {
        let tr = fx.h.state().model().trace("L median").expect("trace");
        let avg = &tr.history().back().expect("average").average;
        (avg.peaks[0].latency_ms.expect("latency"), avg.sequence)
    };
    let start =
        fx.h.state()
            .peak_marker_pos("L median", "N20")
            .expect("marker drawn");
    let end = start + egui::vec2(30.0, 0.0);
    fx.h.hover_at(start);
    fx.h.step();
    fx.h.drag_at(start);
    fx.h.step();
    for k in 1..=6 {
        fx.h.hover_at(start + egui::vec2(5.0 * k as f32, 0.0));
        fx.h.step();
    }
    fx.h.drop_at(end);
    fx.settle();
    let cmds = fx.log.snapshot();
    let Some(UserCommand::CorrectPeak(c)) = cmds.last() else {
        panic!("no correction sent: {cmds:?}");
    };
    assert_eq!(
        (c.trace.as_str(), c.peak.as_str(), c.sequence),
        ("L median", "N20", seq)
    );
    assert!(
        c.latency_ms > lat0 + 0.5,
        "moved right: {} → {}",
        lat0,
        c.latency_ms
    );
    assert!(c.amplitude_uv.is_finite());
    // Echoed back and shown as corrected; the marker stays where it was dropped.
    let tr = fx.h.state().model().trace("L median").expect("trace");
    assert_eq!(
        tr.correction(seq, "N20").map(|x| x.latency_ms),
        Some(c.latency_ms)
    );
    let now = fx.h.state().peak_marker_pos("L median", "N20").expect("marker");
    assert!((now.x - end.x).abs() < 3.0, "{now:?} vs {end:?}");
}

#[test]
fn pausing_the_display_freezes_the_waveforms_but_not_the_alarms() {
    let mut fx = Fixture::new(50.0, false, View::Live);
    fx.settle();
    let end0 = fx.h.state().live_traces().end_s;
    assert!((end0 - 50.0).abs() < 0.01, "{end0}");
    assert_eq!(fx.h.state().live_traces().channels.len(), 4);
    fx.h.get_by_label("Pause display").click();
    fx.settle();
    assert!(fx.h.state().is_display_paused());
    fx.advance(20.0);
    assert_eq!(fx.h.state().live_traces().end_s, end0);
    assert!(fx.has_label_containing("DISPLAY PAUSED"));
    // Acquisition and alarms went on.
    assert!(fx.has_label_containing("CLINICAL ALARM · L tibial"));
    assert!(fx.h.state().model().latest_stream_s() > 65.0);
    fx.h.get_by_label("Resume display").click();
    fx.settle();
    assert!((fx.h.state().live_traces().end_s - 70.0).abs() < 0.01);
}

#[test]
fn sound_is_off_by_default_and_rings_once_turned_on() {
    let mut fx = Fixture::new(50.0, true, View::Log);
    let rings = Arc::new(AtomicUsize::new(0));
    let r = Arc::clone(&rings);
    fx.h.state_mut().set_alarm_sound(Box::new(move |a: &AlarmEvent| {
        assert_eq!((a.id, a.state), (1, AlarmState::Raised));
        r.fetch_add(1, Ordering::Relaxed);
    }));
    fx.advance(16.0); // the raise at 65.7 s
    assert!(fx.h.state().model().active_alarms().contains_key(&1));
    assert_eq!(rings.load(Ordering::Relaxed), 0, "off by default");
    fx.h.get_by_label("Sound: off").click();
    fx.settle();
    assert!(fx.h.query_by_label("Sound: on").is_some());
    // Replay the raise: back to 60 s, then on past 65.7 s.
    fx.h.get_by_role_and_label(Role::Slider, "Seek")
        .set_value_accesskit(60.0);
    fx.settle();
    assert_eq!(rings.load(Ordering::Relaxed), 0);
    fx.advance(6.0);
    assert_eq!(rings.load(Ordering::Relaxed), 1);
    // A seek that re-sends a raise which is cleared within the same batch does not ring.
    fx.h.get_by_role_and_label(Role::Slider, "Seek")
        .set_value_accesskit(150.0);
    fx.settle();
    assert_eq!(rings.load(Ordering::Relaxed), 1);
}

/// A source that returns hostile data: NaN and infinite waveforms, empty waveforms, zero sample periods,
/// unknown traces, NaN stream times, live columns with NaN and infinities.
struct HostileSource {
    sent: bool,
}

impl DashboardSource for HostileSource {
    fn poll_events(&mut self, out: &mut Vec<Event>) {
        if std::mem::replace(&mut self.sent, true) {
            return;
        }
        let avg = |trace: &str, values: Vec<f32>, dt: f64, t: f64| {
            Event::Average(AverageEvent {
                stream_s: t,
                trace: trace.into(),
                channel: "c".into(),
                stimulator: Stimulator::LeftMedian,
                modality: "ssep".into(),
                sequence: 0,
                sweeps: 0,
                rejected: 0,
                dropped: 0,
                peaks: vec![
                    PeakValue {
                        name: "N20".into(),
                        latency_ms: Some(f64::NAN),
                        amplitude_uv: None,
                    },
                    PeakValue {
                        name: "P25".into(),
                        latency_ms: Some(1e9),
                        amplitude_uv: Some(f64::INFINITY),
                    },
                ],
                amplitude_uv: Some(f64::NAN),
                latency_ms: None,
                amplitude_ratio: Some(f64::INFINITY),
                latency_ratio: Some(f64::NAN),
                fsp: Some(-1.0),
                residual_noise_uv: None,
                suspended: Some("no baseline yet".into()),
                waveform: Some(Waveform {
                    t0_ms: -10.0,
                    dt_ms: dt,
                    values_uv: values,
                }),
            })
        };
        out.push(avg("nan", vec![f32::NAN; 100], 0.1, 1.0));
        out.push(avg("flat", vec![0.0; 100], 0.1, 2.0));
        out.push(avg("huge", vec![1e30, -1e30, f32::INFINITY, 0.0], 0.1, 3.0));
        out.push(avg("empty", vec![], 0.1, f64::NAN));
        out.push(avg("zero dt", vec![1.0; 10], 0.0, 4.0));
        out.push(avg("single", vec![5.0], 0.1, -1.0));
        out.push(Event::Alarm(AlarmEvent {
            stream_s: 5.0,
            id: 99,
            trace: Some("nobody".into()),
            kind: AlarmKind::SignalLost,
            class: AlarmClass::Technical,
            state: AlarmState::Raised,
            value: None,
            threshold: None,
            systemic: true,
            detector: "technical".into(),
            message: String::new(),
        }));
        out.push(Event::Link {
            stream_s: 6.0,
            link: LinkEvent::Ended {
                reason: "end of recording".into(),
            },
        });
        out.push(Event::Gap {
            stream_s: 7.0,
            gap: Gap {
                cause: GapCause::LostFrames,
                from: 10,
                to: 5,
                frames: 0,
            },
        });
    }

    fn live_traces(&mut self, kind: TraceKind, seconds: f64, columns: usize, out: &mut LiveTraces) -> bool {
        out.reshape(3, columns);
        out.kind = kind;
        out.seconds = seconds;
        out.end_s = f64::NAN;
        for (j, c) in out.channels[1].columns.iter_mut().enumerate() {
            *c = if j % 3 == 0 { (f32::NAN, 1.0) } else { (-1.0, 1.0) };
        }
        for c in &mut out.channels[2].columns {
            *c = (f32::NEG_INFINITY, f32::INFINITY);
        }
        true
    }

    fn status(&self) -> SourceStatus {
        SourceStatus {
            stream_s: f64::NAN,
            latency_ms: Some(f64::NAN),
            ..SourceStatus::default()
        }
    }

    fn command(&mut self, _cmd: UserCommand) {}
}

#[test]
fn every_view_survives_hostile_data_in_both_themes() {
    let clock = ManualClock::new(0.0);
    let app = DashboardApp::new(Box::new(HostileSource { sent: false }), clock.shared());
    let mut h = harness(app, 1280.0, 900.0);
    h.run();
    assert_eq!(h.state().model().traces().len(), 6);
    assert!(
        h.query_by_label_contains("TECHNICAL ALARM · nobody · signal lost")
            .is_some()
    );
    for theme in ["Light", "Dark"] {
        h.get_by_label(theme).click();
        h.run();
        for view in View::ALL {
            h.get_by_label(view.label()).click();
            h.run();
            assert_eq!(h.state().view(), view);
        }
    }
    assert_eq!(h.state().theme(), ThemeChoice::Dark);
    h.get_by_label("Light").click();
    h.run();
    assert_eq!(h.ctx.theme(), egui::Theme::Light);
}

/// The dashboard at 41 s of the demo case, with a stats event at 40 s carrying `evidence` (one trace's).
fn with_evidence(evidence: ionm_core::events::EvidenceValue) -> Harness<'static, DashboardApp> {
    let mut case = demo_case(&options());
    let at = case
        .events
        .iter()
        .position(|e| e.stream_s() > 40.0)
        .unwrap_or(case.events.len());
    let mut stats = case
        .events
        .iter()
        .find_map(|e| match e {
            Event::Stats(s) => Some(s.clone()),
            _ => None,
        })
        .expect("the demo case has stats events");
    stats.stream_s = 40.0;
    stats.evidence = vec![evidence];
    case.events.insert(at, Event::Stats(stats));
    let clock = ManualClock::new(0.0);
    let src = ScriptedSource::from_demo(case, clock.shared()).starting_at(41.0);
    let app = DashboardApp::with_config(Box::new(src), clock.shared(), DashboardConfig::default());
    let mut h = harness(app, 1600.0, 1000.0);
    h.run();
    h
}

#[test]
fn the_sequential_detectors_evidence_is_shown_on_its_trace() {
    // The sequential detector's evidence on "L tibial": 75% of its threshold.
    let h = with_evidence(ionm_core::events::EvidenceValue {
        trace: "L tibial".into(),
        detector: "sequential".into(),
        evidence: 6.0,
        threshold: 8.0,
        amplitude: 0.7,
        ..Default::default()
    });
    assert_eq!(h.query_all_by_label_contains("evidence 75%").count(), 1);
    assert_eq!(
        h.query_all_by_label_contains("latency evidence").count(),
        0,
        "no latency CUSUM running"
    );
}

#[test]
fn the_sequential_detectors_latency_evidence_is_shown_once_it_runs() {
    // Its latency CUSUM on "L tibial" at 40% of its threshold, the drop CUSUM at 10%.
    let h = with_evidence(ionm_core::events::EvidenceValue {
        trace: "L tibial".into(),
        detector: "sequential".into(),
        evidence: 1.0,
        threshold: 10.0,
        latency_evidence: 6.0,
        latency_threshold: 15.0,
        amplitude: 1.0,
        ..Default::default()
    });
    assert_eq!(h.query_all_by_label_contains("latency evidence 40%").count(), 1);
    assert_eq!(h.query_all_by_label_contains("evidence 10%").count(), 1);
}

#[test]
fn a_trace_too_noisy_for_the_sequential_detector_says_so() {
    // The sequential detector found "L tibial" too noisy to monitor.
    let h = with_evidence(ionm_core::events::EvidenceValue {
        trace: "L tibial".into(),
        detector: "sequential".into(),
        sigma: 6.5,
        insensitive: true,
        ..Default::default()
    });
    assert_eq!(
        h.query_all_by_label_contains("sequential off: too noisy").count(),
        1
    );
    assert_eq!(h.query_all_by_label_contains("evidence").count(), 0);
}

/// What a [`PushSource`] holds: events to hand over on the next poll, the status, the commands received.
#[derive(Default)]
struct Pushed {
    events: Vec<Event>,
    status: SourceStatus,
    commands: Vec<UserCommand>,
}

/// A source the test feeds by hand between frames, to reproduce what arrives while the user acts.
struct PushSource(Arc<std::sync::Mutex<Pushed>>);

impl DashboardSource for PushSource {
    fn poll_events(&mut self, out: &mut Vec<Event>) {
        out.append(&mut self.0.lock().expect("test source").events);
    }

    fn live_traces(
        &mut self,
        _kind: TraceKind,
        _seconds: f64,
        _columns: usize,
        _out: &mut LiveTraces,
    ) -> bool {
        false
    }

    fn status(&self) -> SourceStatus {
        self.0.lock().expect("test source").status.clone()
    }

    fn command(&mut self, cmd: UserCommand) {
        self.0.lock().expect("test source").commands.push(cmd);
    }
}

fn push_harness(status: SourceStatus) -> (Harness<'static, DashboardApp>, Arc<std::sync::Mutex<Pushed>>) {
    let shared = Arc::new(std::sync::Mutex::new(Pushed {
        status,
        ..Pushed::default()
    }));
    let clock = ManualClock::new(0.0);
    let app = DashboardApp::new(Box::new(PushSource(Arc::clone(&shared))), clock.shared());
    let h = harness(app, 1600.0, 1000.0);
    (h, shared)
}

fn clinical_alarm(id: u64, trace: &str, stream_s: f64) -> Event {
    Event::Alarm(AlarmEvent {
        stream_s,
        id,
        trace: Some(trace.into()),
        kind: AlarmKind::AmplitudeDrop,
        class: AlarmClass::Clinical,
        state: AlarmState::Raised,
        value: Some(0.4),
        threshold: Some(0.5),
        systemic: false,
        detector: "block".into(),
        message: format!("{trace} amplitude 40% of baseline"),
    })
}

#[test]
fn acknowledge_reaches_the_alarm_the_user_read_when_a_newer_one_arrives_before_the_click() {
    let (mut h, shared) = push_harness(SourceStatus::default());
    shared
        .lock()
        .unwrap()
        .events
        .push(clinical_alarm(1, "L tibial", 100.0));
    h.run();
    assert_eq!(h.query_all_by_label("Acknowledge").count(), 1);
    let button = h.get_by_label("Acknowledge");
    // A newer alarm is raised between the user's reading and the click; the banner shows it on top.
    shared
        .lock()
        .unwrap()
        .events
        .push(clinical_alarm(2, "R tibial", 101.0));
    button.click_accesskit();
    h.run();
    assert_eq!(h.state().model().active_alarms().len(), 2);
    assert_eq!(
        shared.lock().unwrap().commands,
        [UserCommand::AcknowledgeAlarm { id: 1 }],
        "the click acknowledged another alarm than the one it was aimed at"
    );
}

#[test]
fn a_seek_is_not_lost_when_the_toolbar_changes_before_it_lands() {
    let replay = Some(ReplayStatus {
        position_s: 10.0,
        duration_s: 200.0,
        speed: 1.0,
        paused: false,
    });
    let (mut h, shared) = push_harness(SourceStatus {
        replay,
        ..SourceStatus::default()
    });
    h.run();
    let slider = h.get_by_role_and_label(Role::Slider, "Seek");
    // The device declares itself (the montage appears in the toolbar, before the transport) as the seek lands.
    shared.lock().unwrap().status.protocol = Arc::new(ProtocolInfo {
        name: "sim-default".into(),
        montage: vec!["CP3-Fz".into(), "CP4-Fz".into()],
        thresholds: Vec::new(),
    });
    slider.set_value_accesskit(100.0);
    h.run();
    assert_eq!(
        shared.lock().unwrap().commands,
        [UserCommand::Seek { stream_s: 100.0 }]
    );
}

fn average(trace: &str, stream_s: f64) -> Event {
    Event::Average(AverageEvent {
        stream_s,
        trace: trace.into(),
        channel: format!("{trace} channel"),
        stimulator: Stimulator::LeftTibial,
        modality: "ssep".into(),
        sequence: 0,
        sweeps: 200,
        rejected: 0,
        dropped: 0,
        peaks: Vec::new(),
        amplitude_uv: Some(1.0),
        latency_ms: Some(37.0),
        amplitude_ratio: Some(1.0),
        latency_ratio: Some(1.0),
        fsp: Some(5.0),
        residual_noise_uv: Some(0.1),
        suspended: None,
        waveform: Some(Waveform {
            t0_ms: -10.0,
            dt_ms: 0.1,
            values_uv: (0..600).map(|i| (i as f32 * 0.05).sin()).collect(),
        }),
    })
}

#[test]
fn rebaseline_reaches_the_trace_it_was_aimed_at_when_an_alarm_appears_before_the_click() {
    let (mut h, shared) = push_harness(SourceStatus::default());
    shared
        .lock()
        .unwrap()
        .events
        .extend([average("A", 40.0), average("B", 40.0)]);
    h.run();
    assert_eq!(h.query_all_by_label("Re-baseline").count(), 2);
    let first = h.get_all_by_label("Re-baseline").next().expect("A's button");
    // An alarm on A (its panel gains a "CLINICAL ALARM" label before the button) as the user clicks.
    shared.lock().unwrap().events.push(clinical_alarm(1, "A", 41.0));
    first.click_accesskit();
    h.run();
    assert!(h.query_by_label("CLINICAL ALARM").is_some());
    assert_eq!(
        shared.lock().unwrap().commands,
        [UserCommand::SetBaseline(BaselineTarget::Trace("A".into()))]
    );
}
