//! [`DashboardApp`]: the egui app. It owns a [`DashboardSource`] and a [`Clock`], folds events into a
//! [`DashboardModel`] once per frame, draws the views and turns clicks into [`UserCommand`]s.

use crate::clock::Clock;
use crate::model::{DashboardModel, ModelLimits};
use crate::source::{DashboardSource, LiveTraces, SourceStatus, TraceKind, UserCommand};
use crate::ui::Palette;
use ionm_core::events::{AlarmEvent, AlarmState, Event};
use std::sync::Arc;
use std::time::Duration;

/// The views of the central area.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum View {
    /// Latest average over baseline for every trace, with draggable peak markers.
    #[default]
    Averages,
    /// History of one trace's averages, stacked like a waterfall, newest on top.
    Stack,
    /// Amplitude and latency in % of baseline over the whole case.
    Trends,
    /// The continuous signal of every channel.
    Live,
    /// Alarm log, markers and technical notices.
    Log,
}

impl View {
    /// All views, in tab order.
    pub const ALL: [View; 5] = [View::Averages, View::Stack, View::Trends, View::Live, View::Log];

    /// Tab label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Averages => "Averages",
            Self::Stack => "Stack",
            Self::Trends => "Trends",
            Self::Live => "Live",
            Self::Log => "Log",
        }
    }
}

/// Light or dark theme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ThemeChoice {
    /// Light text on dark grey (the default: less glare in a dim operating room).
    #[default]
    Dark,
    /// Dark text on white.
    Light,
}

/// Start-up settings of the dashboard.
#[derive(Debug, Clone, PartialEq)]
pub struct DashboardConfig {
    /// Bounds on the histories.
    pub limits: ModelLimits,
    /// Initial theme.
    pub theme: ThemeChoice,
    /// Initial view.
    pub view: View,
    /// Live view: raw or filtered.
    pub trace_kind: TraceKind,
    /// Live view: seconds shown.
    pub live_seconds: f64,
    /// Multiplies every text size (1.0 is already sized for an OR monitor at 2 m).
    pub text_scale: f32,
    /// Time between frames while nothing else asks for a repaint.
    pub repaint_interval: Duration,
    /// Averages shown in the stack view.
    pub stack_shown: usize,
    /// Close the window after this many clock seconds (for screenshots); `None` keeps it open.
    pub close_after_s: Option<f64>,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        Self {
            limits: ModelLimits::default(),
            theme: ThemeChoice::Dark,
            view: View::Averages,
            trace_kind: TraceKind::Filtered,
            live_seconds: 5.0,
            text_scale: 1.0,
            repaint_interval: Duration::from_millis(16),
            stack_shown: 24,
            close_after_s: None,
        }
    }
}

/// A peak marker being dragged.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PeakDrag {
    pub(crate) trace: String,
    pub(crate) sequence: u64,
    pub(crate) peak: String,
    pub(crate) latency_ms: f64,
    /// Amplitude minus the waveform's value at the original latency (the pipeline's amplitude convention).
    pub(crate) offset_uv: f64,
}

/// Where a peak marker was drawn this frame (for hit-testing a drag and for tests).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MarkerHit {
    pub(crate) trace: String,
    pub(crate) peak: String,
    pub(crate) pos: egui::Pos2,
}

/// A hook called when a new alarm is raised while the sound is on.
pub type AlarmSound = Box<dyn FnMut(&AlarmEvent) + Send>;

/// The dashboard. Show it with [`DashboardApp::dashboard_ui`] (what [`eframe::App::ui`] does), or in a window
/// with [`crate::run_native`].
pub struct DashboardApp {
    pub(crate) source: Box<dyn DashboardSource>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: DashboardConfig,
    pub(crate) model: DashboardModel,
    pub(crate) status: SourceStatus,
    pub(crate) events: Vec<Event>,
    pub(crate) live: LiveTraces,
    pub(crate) live_valid: bool,
    pub(crate) view: View,
    pub(crate) theme: ThemeChoice,
    pub(crate) style_applied: Option<(ThemeChoice, u32)>,
    pub(crate) trace_kind: TraceKind,
    pub(crate) live_seconds: f64,
    /// Live view: fixed half-range in µV, or automatic per channel.
    pub(crate) live_range_uv: Option<f32>,
    /// Display paused at this stream time (acquisition goes on).
    pub(crate) paused_at: Option<f64>,
    pub(crate) commands: Vec<UserCommand>,
    pub(crate) note: String,
    pub(crate) stack_trace: Option<String>,
    pub(crate) seek_value: f64,
    pub(crate) drag: Option<PeakDrag>,
    pub(crate) marker_hits: Vec<MarkerHit>,
    pub(crate) sound_on: bool,
    pub(crate) sound: Option<AlarmSound>,
    pub(crate) start_clock_s: f64,
    pub(crate) last_stream_s: f64,
    pub(crate) last_stream_change_s: f64,
    pub(crate) frame_ms: f64,
    pub(crate) now_s: f64,
}

impl DashboardApp {
    /// A dashboard on `source`, timed by `clock`, with the default configuration.
    pub fn new(source: Box<dyn DashboardSource>, clock: Arc<dyn Clock>) -> Self {
        Self::with_config(source, clock, DashboardConfig::default())
    }

    /// A dashboard with these settings.
    pub fn with_config(
        source: Box<dyn DashboardSource>,
        clock: Arc<dyn Clock>,
        config: DashboardConfig,
    ) -> Self {
        let now = clock.now_s();
        let live_seconds = if config.live_seconds.is_finite() {
            config.live_seconds.clamp(0.5, 60.0)
        } else {
            5.0
        };
        Self {
            source,
            clock,
            model: DashboardModel::new(config.limits),
            status: SourceStatus::default(),
            events: Vec::new(),
            live: LiveTraces::default(),
            live_valid: false,
            view: config.view,
            theme: config.theme,
            style_applied: None,
            trace_kind: config.trace_kind,
            live_seconds,
            live_range_uv: None,
            paused_at: None,
            commands: Vec::new(),
            note: String::new(),
            stack_trace: None,
            seek_value: 0.0,
            drag: None,
            marker_hits: Vec::new(),
            sound_on: false,
            sound: None,
            start_clock_s: now,
            last_stream_s: f64::NAN,
            last_stream_change_s: now,
            frame_ms: 0.0,
            now_s: now,
            config,
        }
    }

    /// Installs what plays the alarm sound (none by default; the sound stays off until the user turns it on).
    pub fn set_alarm_sound(&mut self, sound: AlarmSound) {
        self.sound = Some(sound);
    }

    /// What the dashboard has derived from the events so far.
    pub fn model(&self) -> &DashboardModel {
        &self.model
    }

    /// The status as of the last frame.
    pub fn status(&self) -> &SourceStatus {
        &self.status
    }

    /// The live traces as of the last frame they were fetched.
    pub fn live_traces(&self) -> &LiveTraces {
        &self.live
    }

    /// The view shown.
    pub fn view(&self) -> View {
        self.view
    }

    /// Shows another view.
    pub fn set_view(&mut self, view: View) {
        self.view = view;
    }

    /// The theme in use.
    pub fn theme(&self) -> ThemeChoice {
        self.theme
    }

    /// True while the display is paused (acquisition and alarms go on).
    pub fn is_display_paused(&self) -> bool {
        self.paused_at.is_some()
    }

    /// CPU time of the last frame, ms, measured with the injected clock.
    pub fn last_frame_ms(&self) -> f64 {
        self.frame_ms
    }

    /// Screen position of a peak marker drawn in the last frame (for automation and tests).
    pub fn peak_marker_pos(&self, trace: &str, peak: &str) -> Option<egui::Pos2> {
        self.marker_hits
            .iter()
            .find(|h| h.trace == trace && h.peak == peak)
            .map(|h| h.pos)
    }

    /// Queues a command for the source (sent at the end of the frame).
    pub(crate) fn send(&mut self, cmd: UserCommand) {
        tracing::info!(?cmd, "user command");
        self.commands.push(cmd);
    }

    /// The stream time up to which views show data: the pause time, or everything.
    pub(crate) fn view_until(&self) -> Option<f64> {
        self.paused_at
    }

    pub(crate) fn palette(&self) -> Palette {
        Palette::new(self.theme == ThemeChoice::Dark)
    }

    /// Runs one frame of the dashboard in `ui` (the whole window's ui).
    pub fn dashboard_ui(&mut self, ui: &mut egui::Ui) {
        let t0 = self.clock.now_s();
        self.now_s = t0;
        self.apply_style(ui.ctx());
        self.poll();

        if !self.model.active_alarms().is_empty() {
            egui::Panel::top("ionm_alarm_banner").show(ui, |ui| self.banner_ui(ui));
        }
        egui::Panel::top("ionm_toolbar").show(ui, |ui| self.toolbar_ui(ui));
        egui::Panel::bottom("ionm_status").show(ui, |ui| self.status_bar_ui(ui));
        egui::Panel::bottom("ionm_markers").show(ui, |ui| self.markers_ui(ui));
        egui::CentralPanel::default().show(ui, |ui| match self.view {
            View::Averages => self.averages_ui(ui),
            View::Stack => self.stack_ui(ui),
            View::Trends => self.trends_ui(ui),
            View::Live => self.live_ui(ui),
            View::Log => self.log_ui(ui),
        });

        for cmd in std::mem::take(&mut self.commands) {
            self.source.command(cmd);
        }
        if let Some(limit) = self.config.close_after_s
            && self.clock.now_s() - self.start_clock_s >= limit
        {
            ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
        }
        ui.ctx().request_repaint_after(self.config.repaint_interval);
        self.frame_ms = (self.clock.now_s() - t0) * 1000.0;
    }

    /// Reads the status and the new events.
    fn poll(&mut self) {
        self.status = self.source.status();
        if self.status.epoch != self.model.epoch() {
            tracing::info!(
                epoch = self.status.epoch,
                "stream restarted: clearing the dashboard"
            );
            self.model.reset(self.status.epoch);
            self.drag = None;
            self.live_valid = false;
            if self.paused_at.is_some() {
                self.paused_at = Some(self.status.stream_s);
            }
        }
        self.events.clear();
        self.source.poll_events(&mut self.events);
        let events = std::mem::take(&mut self.events);
        let mut raised = Vec::new();
        for (k, ev) in events.iter().enumerate() {
            if self.model.apply(ev).is_some() {
                raised.push(k);
            }
        }
        // Ring only for alarms still active after the whole batch (a seek re-sends old, cleared ones).
        if self.sound_on
            && let Some(sound) = self.sound.as_mut()
        {
            for k in raised {
                if let Event::Alarm(a) = &events[k]
                    && a.state == AlarmState::Raised
                    && self.model.active_alarms().contains_key(&a.id)
                {
                    sound(a);
                }
            }
        }
        self.events = events;
        if self.status.stream_s != self.last_stream_s {
            self.last_stream_s = self.status.stream_s;
            self.last_stream_change_s = self.now_s;
        }
    }

    /// Seconds without stream progress (0 when replay is paused on purpose).
    pub(crate) fn stalled_s(&self) -> f64 {
        if self
            .status
            .replay
            .is_some_and(|r| r.paused || r.position_s >= r.duration_s)
        {
            return 0.0;
        }
        (self.now_s - self.last_stream_change_s).max(0.0)
    }

    fn apply_style(&mut self, ctx: &egui::Context) {
        let scale = if self.config.text_scale.is_finite() {
            self.config.text_scale.clamp(0.5, 3.0)
        } else {
            1.0
        };
        let key = (self.theme, scale.to_bits());
        if self.style_applied == Some(key) {
            return;
        }
        ctx.set_theme(match self.theme {
            ThemeChoice::Dark => egui::Theme::Dark,
            ThemeChoice::Light => egui::Theme::Light,
        });
        ctx.all_styles_mut(|style| crate::ui::apply_text_sizes(style, scale));
        self.style_applied = Some(key);
    }
}

impl eframe::App for DashboardApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.dashboard_ui(ui);
    }
}
