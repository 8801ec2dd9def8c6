//! What the dashboard reads from: the [`DashboardSource`] trait and the plain data it exchanges.
//!
//! The pipeline implements [`DashboardSource`]; the dashboard only ever *reads* snapshots and events through it
//! and *sends* [`UserCommand`]s. Every method must return promptly and must never take a lock that the
//! acquisition or DSP threads need for longer than a copy, so that a slow frame never slows acquisition.

use ionm_core::events::{CorrectionEvent, Event};
use std::path::PathBuf;
use std::sync::Arc;

/// The interface between the pipeline and the dashboard.
///
/// All methods are called from the UI thread, once per frame at most (`poll_events`, `status`, and
/// `live_traces` when the live view is shown) or on a user action (`command`).
pub trait DashboardSource: Send {
    /// Appends the events that happened since the last call to `out` (never blocks, never clears `out`).
    fn poll_events(&mut self, out: &mut Vec<Event>);

    /// Fills `out` with the last `seconds` of the continuous signal of every channel (`kind` picks the raw or the
    /// filtered stream), reduced to `columns` (min, max) pairs per channel with [`crate::min_max_decimate`] or an
    /// equivalent. Implementations should reuse `out`'s allocations ([`LiveTraces::reshape`]). Returns false
    /// (and may leave `out` untouched) when nothing is available yet.
    fn live_traces(&mut self, kind: TraceKind, seconds: f64, columns: usize, out: &mut LiveTraces) -> bool;

    /// The figures of the status bar, as of now.
    fn status(&self) -> SourceStatus;

    /// A user command. The effect comes back as events: a baseline as [`Event::Baseline`], an acknowledgement
    /// as [`Event::Alarm`] with the `acknowledged` state, a marker as [`Event::Marker`], a correction as
    /// [`Event::Correction`]; a seek bumps [`SourceStatus::epoch`]. Never blocks.
    fn command(&mut self, cmd: UserCommand);
}

impl<S: DashboardSource + ?Sized> DashboardSource for Box<S> {
    fn poll_events(&mut self, out: &mut Vec<Event>) {
        (**self).poll_events(out);
    }
    fn live_traces(&mut self, kind: TraceKind, seconds: f64, columns: usize, out: &mut LiveTraces) -> bool {
        (**self).live_traces(kind, seconds, columns, out)
    }
    fn status(&self) -> SourceStatus {
        (**self).status()
    }
    fn command(&mut self, cmd: UserCommand) {
        (**self).command(cmd);
    }
}

/// Which continuous signal the live view shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TraceKind {
    /// After the pipeline's band-pass and notch filters (what the averages are made of).
    #[default]
    Filtered,
    /// As the converter delivered it, scaled to µV.
    Raw,
}

impl TraceKind {
    /// A short name for the UI.
    pub fn label(self) -> &'static str {
        match self {
            Self::Filtered => "Filtered",
            Self::Raw => "Raw",
        }
    }
}

/// The decimated live signal of one channel.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveChannel {
    /// Channel label (montage derivation).
    pub label: String,
    /// (min, max) in µV of each column, oldest column first. `(NaN, NaN)` marks a column without data
    /// (a gap, or before the stream started).
    pub columns: Vec<(f32, f32)>,
}

/// The decimated live signal of every channel, as filled by [`DashboardSource::live_traces`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveTraces {
    /// Stream time of the right edge (the end of the newest column), s.
    pub end_s: f64,
    /// Time covered by all the columns, s.
    pub seconds: f64,
    /// Raw or filtered.
    pub kind: TraceKind,
    /// One entry per channel, in device order; all have the same number of columns.
    pub channels: Vec<LiveChannel>,
}

impl LiveTraces {
    /// Sets the number of channels and of columns per channel, keeping existing allocations (no allocation
    /// once the buffers have reached their size). Columns are reset to `(NaN, NaN)`.
    pub fn reshape(&mut self, n_channels: usize, columns: usize) {
        self.channels.truncate(n_channels);
        while self.channels.len() < n_channels {
            self.channels.push(LiveChannel::default());
        }
        for ch in &mut self.channels {
            ch.columns.clear();
            ch.columns.resize(columns, (f32::NAN, f32::NAN));
        }
    }

    /// Columns per channel (0 without channels).
    pub fn columns(&self) -> usize {
        self.channels.first().map_or(0, |c| c.columns.len())
    }
}

/// The recording in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingStatus {
    /// File being written.
    pub path: PathBuf,
    /// Bytes written so far.
    pub bytes: u64,
}

/// Replay position and speed, when the source replays a recording.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplayStatus {
    /// Current position, stream seconds.
    pub position_s: f64,
    /// Length of the recording, stream seconds.
    pub duration_s: f64,
    /// Playback speed (1.0 = real time).
    pub speed: f64,
    /// Playback is paused.
    pub paused: bool,
}

/// Alarm thresholds of one trace, as configured in the protocol, drawn on the trends.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceThresholds {
    /// Trace name.
    pub trace: String,
    /// Amplitude alarm at or below this ratio of baseline (e.g. 0.5).
    pub amplitude_ratio: Option<f64>,
    /// Latency alarm at or above this ratio of baseline (e.g. 1.1).
    pub latency_ratio: Option<f64>,
}

/// The protocol and montage in use, shown in the toolbar.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProtocolInfo {
    /// Protocol name, e.g. `"scoliosis: SSEP + TcMEP"`.
    pub name: String,
    /// Channel derivations in device order, e.g. `"CP3-Fz"`.
    pub montage: Vec<String>,
    /// Alarm thresholds per trace.
    pub thresholds: Vec<TraceThresholds>,
}

/// The figures of the status bar. Cheap to clone: the protocol is shared.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceStatus {
    /// What the data comes from, e.g. `"simulator"`, `"serial /dev/ttyUSB0"`, `"replay case.bdf"`.
    pub source: String,
    /// Samples per second per channel (0 before the device declared itself).
    pub sample_rate_hz: f64,
    /// Number of channels.
    pub channels: usize,
    /// Stream time of the newest sample, s.
    pub stream_s: f64,
    /// Frames with a valid CRC.
    pub frames: u64,
    /// Frames with a CRC error.
    pub crc_errors: u64,
    /// Gaps in the stream.
    pub gaps: u64,
    /// Items waiting in the acquisition queue.
    pub queue_depth: usize,
    /// Capacity of the acquisition queue (0: unknown).
    pub queue_capacity: usize,
    /// Time from a sample's arrival to its effect on the event stream, ms.
    pub latency_ms: Option<f64>,
    /// The recording in progress, if any.
    pub recording: Option<RecordingStatus>,
    /// Replay position and speed, when replaying a recording (`None` when live).
    pub replay: Option<ReplayStatus>,
    /// Protocol and montage.
    pub protocol: Arc<ProtocolInfo>,
    /// Incremented whenever the stream starts over (a replay seek). The dashboard then drops everything it
    /// derived from earlier events; the source re-sends what the new position needs (at least the events
    /// from the new position on; ideally the whole history up to it, as [`crate::ScriptedSource`] does).
    pub epoch: u64,
}

/// Which traces a re-baseline concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaselineTarget {
    /// Every trace of the protocol.
    All,
    /// One trace, by name.
    Trace(String),
}

/// A user action, sent to the pipeline with [`DashboardSource::command`].
#[derive(Debug, Clone, PartialEq)]
pub enum UserCommand {
    /// Make the latest average(s) the new baseline.
    SetBaseline(BaselineTarget),
    /// Acknowledge the alarm with this [`ionm_core::events::AlarmEvent::id`].
    AcknowledgeAlarm {
        /// Alarm id.
        id: u64,
    },
    /// A surgical or free-text marker; the source stamps it with its stream time and writes it into the event
    /// stream and the recording.
    Marker {
        /// One of [`ionm_core::events::SURGICAL_MARKERS`] or `"note"`.
        kind: String,
        /// Free text (may be empty).
        text: String,
    },
    /// A peak marker moved by the user (its `stream_s` is the dashboard's latest stream time; the source may
    /// restamp it).
    CorrectPeak(CorrectionEvent),
    /// Replay only: jump to this stream time, s.
    Seek {
        /// Target position, stream seconds.
        stream_s: f64,
    },
    /// Replay only: playback speed (1.0 = real time).
    SetReplaySpeed {
        /// Speed factor.
        speed: f64,
    },
    /// Replay only: pause or resume playback (not the same as pausing the display).
    SetReplayPaused {
        /// Pause when true.
        paused: bool,
    },
}
