//! The live dashboard of ionm, as a library: an egui app that reads only events and decimated snapshots from
//! the pipeline, and sends user commands back. It never touches the DSP state, so a slow frame never slows
//! acquisition.
//!
//! Main types:
//! - [`DashboardSource`]: what the app reads from — [`DashboardSource::poll_events`] (the typed event stream
//!   of [`ionm_core::events`]), [`DashboardSource::live_traces`] (min/max columns, [`LiveTraces`]),
//!   [`DashboardSource::status`] ([`SourceStatus`]) — and where its [`UserCommand`]s go. The pipeline
//!   implements it.
//! - [`DashboardApp`]: the app (averages, stack, trends, live traces, alarm banner and log, markers, status
//!   bar, controls, light and dark themes). [`DashboardApp::dashboard_ui`] draws one frame into any
//!   [`egui::Ui`]; it also implements [`eframe::App`].
//! - [`run_native`]: opens it in a window, or returns [`DashboardError::NoDisplay`] when there is no display.
//! - [`Clock`]: the injected time source ([`SystemClock`], [`ManualClock`] for reproducible tests).
//! - [`DashboardModel`]: what the app derived from events, bounded by [`ModelLimits`].
//! - [`ScriptedSource`]: a deterministic fake source (timed events, synthetic live signal, a [`CommandLog`]),
//!   with [`demo::demo_case`] to generate a realistic case.
//! - [`min_max_decimate`]: the allocation-free reduction to pixel columns, for the pipeline side.

mod app;
mod clock;
mod decimate;
pub mod demo;
mod model;
mod native;
mod scripted;
mod source;
mod ui;

pub use app::{AlarmSound, DashboardApp, DashboardConfig, ThemeChoice, View};
pub use clock::{Clock, ManualClock, SystemClock};
pub use decimate::{min_max_decimate, min_max_decimate_pairs};
pub use model::{ActiveAlarm, DashboardModel, ModelLimits, Notice, StackEntry, TraceModel};
pub use native::{DashboardError, display_available, run_native};
pub use scripted::{CommandLog, ScriptedSource, SyntheticConfig};
pub use source::{
    BaselineTarget, DashboardSource, LiveChannel, LiveTraces, ProtocolInfo, RecordingStatus, ReplayStatus,
    SourceStatus, TraceKind, TraceThresholds, UserCommand,
};

// The egui crates the public API speaks in, re-exported so that users build against the same versions.
pub use {eframe, egui, egui_plot};
