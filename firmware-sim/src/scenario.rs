//! Scenarios: what happens during a simulated case, written in TOML.
//!
//! A scenario has a name, a description, an optional duration, optional stimulation and background settings, and
//! a list of timed events. Times are seconds (`at_s`) or minutes (`at_min`) from the first sample.
//!
//! ```toml
//! name = "my-case"
//! description = "Left-tibial SSEP falls by 60% at minute 4, cautery at 2:00"
//! duration_s = 600            # or duration_min; omit to run for ever
//!
//! [stimulation]               # all optional; defaults shown
//! ssep = true                 # median and tibial SSEP stimulators
//! ssep_rate_hz = 4.7          # per stimulator
//! baep = true                 # clicks (only if BAEP channels exist)
//! click_rate_hz = 11.1        # per ear
//! tes = true                  # TES trains (only if muscle channels exist)
//! tes_interval_s = 15.0
//! tes_first_s = 10.0
//! tes_pulses = 5
//! tes_isi_ms = 3.0
//!
//! [background]                # scale factors, all optional, default 1
//! noise = 1.0                 # EEG/EMG and amplifier noise
//! mains = 1.0
//! ecg = 1.0
//! artifact = 1.0              # stimulus artifacts
//! dc = 1.0                    # electrode DC offsets
//! variability = 1.0           # sweep-to-sweep variability of the responses (0 = identical sweeps)
//!
//! [[event]]
//! kind = "response"           # change of response amplitude and/or latency
//! at_min = 4
//! ramp_s = 20                 # 0 (default) = step; else a linear ramp over ramp_s
//! stimulator = "left_tibial"  # optional filters: stimulator, group, channels (all must match)
//! group = "cortical"          # cortical | subcortical | peripheral | muscle | brainstem
//! amplitude_pct = -60         # −100 = abolished
//! latency_pct = 0             # % of the primary peak latency (+12 = 12% later)
//! latency_ms = 0              # or/and an absolute delay of the primary peak
//!
//! [[event]]
//! kind = "cautery"            # saturates the selected channels (default: all)
//! at_s = 120
//! duration_s = 4
//! channels = ["CP3-Fz", "CP4-Fz"]
//! ```
//!
//! Event kinds and their keys (besides `kind` and `at_s`/`at_min`):
//!
//! | kind | keys |
//! |---|---|
//! | `response` | selection; `amplitude_pct`, `latency_pct`, `latency_ms` (default 0), `ramp_s` (0) |
//! | `anaesthesia` | `amplitude_pct` (−50), `latency_pct` (+5), `ramp_s` (300); applies to every cortical response |
//! | `cautery` | selection (default all channels); `duration_s` (3) |
//! | `pop` | selection; `step_uv` (20000), `tau_s` (1.0): DC step decaying exponentially |
//! | `electrode_off` | selection; `duration_s` (until the end); `mode` = `flat` (default), `mains` or `noise`; `level_uv` (100000, flat only) |
//! | `disconnect` | `duration_s` (required): the link is down, samples keep advancing |
//! | `corrupt_link` | `byte_rate` (required, 0–1); `duration_s` (until the end) |
//!
//! Selection keys: `channel = "label"` or `channels = [labels]`, `group = "…"`, `stimulator = "…"` (names as
//! in `ionm_core::Stimulator::name`, e.g. `left_median`, `tes`, `left_ear`). Labels are those of
//! [`crate::montage::LABELS`]; an event whose channels are not in the configured montage affects nothing.
//! Several `response` events on the same response compose: amplitude factors multiply and latency delays add.
//!
//! Errors name the key (a dotted path such as `event[2].amplitude_pct`, events counted from 1) and its line.

use crate::montage::{Group, LABELS};
use ionm_core::Stimulator;
use std::borrow::Cow;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Largest scenario text accepted, bytes.
pub const MAX_SCENARIO_BYTES: usize = 1 << 20;
/// Most events in one scenario.
pub const MAX_EVENTS: usize = 10_000;

/// Why a scenario could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScenarioError {
    /// The text is not valid TOML.
    #[error("scenario TOML syntax error at line {line}{}: {message}", key.as_ref().map(|k| format!(", key `{k}`")).unwrap_or_default())]
    Syntax {
        /// 1-based line.
        line: usize,
        /// The key on that line, if one could be identified.
        key: Option<String>,
        /// The parser's message.
        message: String,
    },
    /// A key is unknown, missing, of the wrong type or out of range.
    #[error("scenario key `{key}` at line {line}: {message}")]
    Invalid {
        /// Dotted path of the key, e.g. `event[2].amplitude_pct` (events counted from 1).
        key: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The text is larger than [`MAX_SCENARIO_BYTES`].
    #[error("scenario text of {0} bytes exceeds the limit of {MAX_SCENARIO_BYTES} bytes")]
    TooLarge(usize),
}

impl ScenarioError {
    /// The 1-based line of the error, if known.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::Syntax { line, .. } | Self::Invalid { line, .. } => Some(*line),
            Self::TooLarge(_) => None,
        }
    }

    /// The key the error is about, if known.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Syntax { key, .. } => key.as_deref(),
            Self::Invalid { key, .. } => Some(key),
            Self::TooLarge(_) => None,
        }
    }
}

/// Stimulation settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Stimulation {
    /// Fire the SSEP stimulators (median and tibial, left and right).
    pub ssep: bool,
    /// Rate of each SSEP stimulator, Hz.
    pub ssep_rate_hz: f64,
    /// Fire BAEP clicks (only to ears that a channel responds to).
    pub baep: bool,
    /// Click rate per ear, Hz.
    pub click_rate_hz: f64,
    /// Fire TES trains (only if a channel responds to TES).
    pub tes: bool,
    /// Seconds between TES trains.
    pub tes_interval_s: f64,
    /// Time of the first TES train, s.
    pub tes_first_s: f64,
    /// Pulses per TES train.
    pub tes_pulses: u8,
    /// Interval between the pulses of a train, ms.
    pub tes_isi_ms: f64,
}

impl Default for Stimulation {
    fn default() -> Self {
        Self {
            ssep: true,
            ssep_rate_hz: 4.7,
            baep: true,
            click_rate_hz: 11.1,
            tes: true,
            tes_interval_s: 15.0,
            tes_first_s: 10.0,
            tes_pulses: 5,
            tes_isi_ms: 3.0,
        }
    }
}

/// Scale factors of the background components (1 = the documented levels).
#[derive(Debug, Clone, PartialEq)]
pub struct Background {
    /// EEG/EMG and amplifier noise.
    pub noise: f64,
    /// Mains interference.
    pub mains: f64,
    /// ECG.
    pub ecg: f64,
    /// Stimulus artifacts.
    pub artifact: f64,
    /// Electrode DC offsets.
    pub dc: f64,
    /// Sweep-to-sweep variability of the responses (amplitude CV, latency jitter, phase spread).
    pub variability: f64,
}

impl Default for Background {
    fn default() -> Self {
        Self {
            noise: 1.0,
            mains: 1.0,
            ecg: 1.0,
            artifact: 1.0,
            dc: 1.0,
            variability: 1.0,
        }
    }
}

/// Which channels (and, for response changes, which of their responses) an event applies to. Empty = no filter.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Target {
    /// Channel labels.
    pub channels: Vec<String>,
    /// Channel group.
    pub group: Option<Group>,
    /// Stimulator: a channel must respond to it; a response change applies only to the response to it.
    pub stimulator: Option<Stimulator>,
}

/// What an electrode that came off shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffMode {
    /// A flat line at a DC level.
    Flat,
    /// Huge mains interference (8 mV) plus noise.
    Mains,
    /// Huge broadband noise (1 mV RMS).
    Noise,
}

impl OffMode {
    /// Name in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            Self::Flat => "flat",
            Self::Mains => "mains",
            Self::Noise => "noise",
        }
    }
}

/// What an event does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Changes response amplitude and latency.
    Response {
        /// Selection.
        target: Target,
        /// Amplitude change, % (−60 = to 40% of baseline).
        amplitude_pct: f64,
        /// Latency change, % of the primary latency.
        latency_pct: f64,
        /// Latency change, ms.
        latency_ms: f64,
        /// Ramp duration, s (0 = step).
        ramp_s: f64,
    },
    /// Deepening anaesthesia: all cortical responses decline.
    Anaesthesia {
        /// Amplitude change, %.
        amplitude_pct: f64,
        /// Latency change, %.
        latency_pct: f64,
        /// Ramp duration, s.
        ramp_s: f64,
    },
    /// Electrocautery saturating the selected channels.
    Cautery {
        /// Selection.
        target: Target,
        /// Duration, s.
        duration_s: f64,
    },
    /// Electrode pop: a DC step decaying exponentially.
    Pop {
        /// Selection.
        target: Target,
        /// Step, µV.
        step_uv: f64,
        /// Decay time constant, s.
        tau_s: f64,
    },
    /// Electrode off: flat, huge mains or huge noise; flagged `impedance_high`.
    ElectrodeOff {
        /// Selection.
        target: Target,
        /// Duration, s (`None` = until the end).
        duration_s: Option<f64>,
        /// What the channel shows.
        mode: OffMode,
        /// DC level of a flat channel, µV.
        level_uv: f64,
    },
    /// The link is down (the transport sends nothing); samples keep advancing.
    Disconnect {
        /// Duration, s.
        duration_s: f64,
    },
    /// The transport corrupts a fraction of the bytes.
    CorruptLink {
        /// Duration, s (`None` = until the end).
        duration_s: Option<f64>,
        /// Fraction of bytes corrupted (0–1).
        byte_rate: f64,
    },
}

impl Action {
    /// The `kind` name in scenario files.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Response { .. } => "response",
            Self::Anaesthesia { .. } => "anaesthesia",
            Self::Cautery { .. } => "cautery",
            Self::Pop { .. } => "pop",
            Self::ElectrodeOff { .. } => "electrode_off",
            Self::Disconnect { .. } => "disconnect",
            Self::CorruptLink { .. } => "corrupt_link",
        }
    }
}

/// A timed event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Onset, seconds from the first sample.
    pub at_s: f64,
    /// What happens.
    pub action: Action,
}

/// A complete scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Short name.
    pub name: String,
    /// What the scenario shows.
    pub description: String,
    /// Length of the run, s (`None` = unbounded).
    pub duration_s: Option<f64>,
    /// Stimulation settings.
    pub stimulation: Stimulation,
    /// Background scale factors.
    pub background: Background,
    /// Events in file order.
    pub events: Vec<Event>,
}

impl Default for Scenario {
    /// The `ssep-stable` scenario.
    fn default() -> Self {
        Self::builtin("ssep-stable").unwrap_or_else(|| Self {
            name: "ssep-stable".into(),
            description: String::new(),
            duration_s: None,
            stimulation: Stimulation::default(),
            background: Background::default(),
            events: Vec::new(),
        })
    }
}

const BUILTINS: [(&str, &str); 10] = [
    (
        "ssep-stable",
        r#"name = "ssep-stable"
description = "Stable baseline: every response at its baseline, ordinary background (EEG/EMG, mains, ECG, artifacts), no events. Runs until stopped."
"#,
    ),
    (
        "ssep-cord-ischemia",
        r#"name = "ssep-cord-ischemia"
description = "Spinal cord ischemia: from minute 4 the left-tibial cortical (P37/N45) and cervical (N34) responses fall by 60% over 20 s; median, right-tibial and peripheral responses stay at baseline."
duration_s = 600

[[event]]
kind = "response"
at_min = 4
ramp_s = 20
stimulator = "left_tibial"
group = "cortical"
amplitude_pct = -60

[[event]]
kind = "response"
at_min = 4
ramp_s = 20
stimulator = "left_tibial"
channels = ["Cv5-Fz", "Cv2-Fpz"]
amplitude_pct = -60
"#,
    ),
    (
        "ssep-latency",
        r#"name = "ssep-latency"
description = "From minute 3 the cortical latency to the right median (N20/P25 at CP3-Fz) increases by 12% over 60 s; amplitudes and all other responses unchanged."
duration_s = 480

[[event]]
kind = "response"
at_min = 3
ramp_s = 60
stimulator = "right_median"
group = "cortical"
latency_pct = 12
"#,
    ),
    (
        "mep-loss",
        r#"name = "mep-loss"
description = "At minute 3 the TcMEPs of the left leg muscles disappear (all-or-none loss); arm and right-leg MEPs and all SSEPs unchanged."
duration_s = 480

[[event]]
kind = "response"
at_min = 3
stimulator = "tes"
channels = ["TA L", "AH L", "Quad L", "Gastroc L", "Iliopsoas L", "Adductor L", "Gluteus L", "Hamstr L", "Peroneus L", "EHL L"]
amplitude_pct = -100
"#,
    ),
    (
        "baep-wave-v",
        r#"name = "baep-wave-v"
description = "From minute 3 the left-ear BAEP wave V is delayed by 1.0 ms and halved over 60 s (wave I unchanged, III partly delayed), as in cerebellopontine-angle retraction."
duration_s = 480

[[event]]
kind = "response"
at_min = 3
ramp_s = 60
stimulator = "left_ear"
amplitude_pct = -50
latency_ms = 1.0
"#,
    ),
    (
        "noisy-or",
        r#"name = "noisy-or"
description = "A noisy operating room: electrocautery saturating every channel for 3 s at 45 s, the cortical channels for 5 s at 2:00 and the scalp channels for 4 s at 3:30; electrode pops on Erb L, CP4-Fz and TA R; doubled mains. Responses unchanged."
duration_s = 300

[background]
mains = 2.0

[[event]]
kind = "cautery"
at_s = 45
duration_s = 3

[[event]]
kind = "cautery"
at_s = 120
duration_s = 5
group = "cortical"

[[event]]
kind = "cautery"
at_s = 210
duration_s = 4
channels = ["CP3-Fz", "CP4-Fz", "Cz-Fpz", "Cz-A1", "Cz-A2"]

[[event]]
kind = "pop"
at_s = 80
channel = "Erb L"
step_uv = 15000
tau_s = 0.8

[[event]]
kind = "pop"
at_s = 150
channel = "CP4-Fz"
step_uv = -25000
tau_s = 1.5

[[event]]
kind = "pop"
at_s = 230
channel = "TA R"
step_uv = 8000
tau_s = 0.5
"#,
    ),
    (
        "electrode-off",
        r#"name = "electrode-off"
description = "Electrodes come off: CP4-Fz reads flat from 60 s on, Erb R shows huge mains from 120 s to 180 s, Pop L shows huge noise from 200 s to 260 s; each is flagged impedance_high while off."
duration_s = 300

[[event]]
kind = "electrode_off"
at_s = 60
channel = "CP4-Fz"
mode = "flat"
level_uv = 100000

[[event]]
kind = "electrode_off"
at_s = 120
duration_s = 60
channel = "Erb R"
mode = "mains"

[[event]]
kind = "electrode_off"
at_s = 200
duration_s = 60
channel = "Pop L"
mode = "noise"
"#,
    ),
    (
        "anaesthesia",
        r#"name = "anaesthesia"
description = "Deepening anaesthesia from minute 1: every cortical response declines by 50% and slows by 5% over 5 min; subcortical, peripheral, muscle and brainstem responses unchanged."
duration_s = 480

[[event]]
kind = "anaesthesia"
at_min = 1
ramp_s = 300
amplitude_pct = -50
latency_pct = 5
"#,
    ),
    (
        "disconnect",
        r#"name = "disconnect"
description = "The device link drops for 5 s at 90 s and for 0.5 s at 200 s; sampling and stimulation continue, so the host sees gaps in the sample indices."
duration_s = 300

[[event]]
kind = "disconnect"
at_s = 90
duration_s = 5

[[event]]
kind = "disconnect"
at_s = 200
duration_s = 0.5
"#,
    ),
    (
        "corrupt-link",
        r#"name = "corrupt-link"
description = "A bad cable: the transport corrupts 1% of the bytes for the whole run."
duration_s = 300

[[event]]
kind = "corrupt_link"
at_s = 0
byte_rate = 0.01
"#,
    ),
];

const BUILTIN_NAMES: [&str; 10] = [
    BUILTINS[0].0,
    BUILTINS[1].0,
    BUILTINS[2].0,
    BUILTINS[3].0,
    BUILTINS[4].0,
    BUILTINS[5].0,
    BUILTINS[6].0,
    BUILTINS[7].0,
    BUILTINS[8].0,
    BUILTINS[9].0,
];

impl Scenario {
    /// A built-in scenario by name (see [`Scenario::builtin_names`]).
    pub fn builtin(name: &str) -> Option<Scenario> {
        let text = Self::builtin_toml(name)?;
        // The built-ins are parsed by the tests; a failure here is a bug in this file.
        Some(Self::from_toml(text).unwrap_or_else(|e| panic!("built-in scenario {name} is invalid: {e}")))
    }

    /// The TOML text of a built-in scenario (a ready-made example).
    pub fn builtin_toml(name: &str) -> Option<&'static str> {
        BUILTINS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
    }

    /// Names of the built-in scenarios.
    pub fn builtin_names() -> &'static [&'static str] {
        &BUILTIN_NAMES
    }

    /// The scenario's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the scenario shows.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Sets (or, with `None`, removes) the duration, e.g. from a command-line override. Non-finite or negative
    /// values remove it.
    pub fn set_duration_s(&mut self, duration_s: Option<f64>) {
        self.duration_s = duration_s.filter(|d| d.is_finite() && *d >= 0.0);
    }

    /// Parses a scenario. Errors name the key and its line.
    pub fn from_toml(text: &str) -> Result<Scenario, ScenarioError> {
        if text.len() > MAX_SCENARIO_BYTES {
            return Err(ScenarioError::TooLarge(text.len()));
        }
        let root = DeTable::parse(text).map_err(|e| syntax_error(text, &e))?;
        let p = Parser { text };
        p.scenario(root.get_ref())
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset].iter().filter(|&&b| b == b'\n').count() + 1
}

fn syntax_error(text: &str, e: &toml::de::Error) -> ScenarioError {
    let offset = e.span().map_or(0, |s| s.start);
    let line = line_of(text, offset);
    // The key on the offending line, if the line looks like `key = …`.
    let line_text = text.lines().nth(line - 1).unwrap_or("");
    let key = line_text
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_owned())
        .filter(|k| !k.is_empty() && !k.starts_with('['));
    ScenarioError::Syntax {
        line,
        key,
        message: e.message().trim().to_owned(),
    }
}

struct Parser<'t> {
    text: &'t str,
}

/// A table being read: remembers which keys were used so that the rest can be reported as unknown.
struct TableReader<'a, 'i> {
    table: &'a DeTable<'i>,
    path: String,
    line: usize,
    used: Vec<&'a str>,
}

impl<'t> Parser<'t> {
    fn err(&self, key: &str, offset: usize, message: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            key: key.to_owned(),
            line: line_of(self.text, offset),
            message: message.into(),
        }
    }

    fn reader<'a, 'i>(&self, table: &'a DeTable<'i>, path: &str, offset: usize) -> TableReader<'a, 'i> {
        TableReader {
            table,
            path: path.to_owned(),
            line: line_of(self.text, offset),
            used: Vec::new(),
        }
    }

    fn scenario(&self, root: &DeTable<'_>) -> Result<Scenario, ScenarioError> {
        let mut r = self.reader(root, "", 0);
        let name = self.req_str(&mut r, "name")?;
        if name.trim().is_empty() || name.len() > 64 {
            return Err(self.key_err(&r, "name", "must be 1 to 64 characters"));
        }
        let description = self.opt_str(&mut r, "description")?.unwrap_or_default();
        let duration_s = self.time_pair(&mut r, "duration_s", "duration_min")?;
        if let Some((d, key, off)) = &duration_s
            && *d <= 0.0
        {
            return Err(self.err(key, *off, "must be > 0"));
        }
        let stimulation = match self.opt_table(&mut r, "stimulation")? {
            Some((t, off)) => self.stimulation(t, off)?,
            None => Stimulation::default(),
        };
        let background = match self.opt_table(&mut r, "background")? {
            Some((t, off)) => self.background(t, off)?,
            None => Background::default(),
        };
        let mut events = Vec::new();
        if let Some(v) = r.take("event") {
            let DeValue::Array(items) = v.get_ref() else {
                return Err(self.err("event", v.span().start, "must be an array of tables ([[event]])"));
            };
            if items.len() > MAX_EVENTS {
                return Err(self.err("event", v.span().start, format!("more than {MAX_EVENTS} events")));
            }
            for (i, item) in items.iter().enumerate() {
                let path = format!("event[{}]", i + 1);
                let DeValue::Table(t) = item.get_ref() else {
                    return Err(self.err(&path, item.span().start, "must be a table"));
                };
                events.push(self.event(t, &path, item.span().start)?);
            }
        }
        self.finish(&r)?;
        Ok(Scenario {
            name,
            description,
            duration_s: duration_s.map(|(d, _, _)| d),
            stimulation,
            background,
            events,
        })
    }

    fn stimulation(&self, t: &DeTable<'_>, off: usize) -> Result<Stimulation, ScenarioError> {
        let mut r = self.reader(t, "stimulation", off);
        let d = Stimulation::default();
        let s = Stimulation {
            ssep: self.opt_bool(&mut r, "ssep")?.unwrap_or(d.ssep),
            ssep_rate_hz: self
                .opt_range(&mut r, "ssep_rate_hz", 0.1, 50.0)?
                .unwrap_or(d.ssep_rate_hz),
            baep: self.opt_bool(&mut r, "baep")?.unwrap_or(d.baep),
            click_rate_hz: self
                .opt_range(&mut r, "click_rate_hz", 1.0, 100.0)?
                .unwrap_or(d.click_rate_hz),
            tes: self.opt_bool(&mut r, "tes")?.unwrap_or(d.tes),
            tes_interval_s: self
                .opt_range(&mut r, "tes_interval_s", 1.0, 3600.0)?
                .unwrap_or(d.tes_interval_s),
            tes_first_s: self
                .opt_range(&mut r, "tes_first_s", 0.0, 1e6)?
                .unwrap_or(d.tes_first_s),
            tes_pulses: self
                .opt_range(&mut r, "tes_pulses", 1.0, 9.0)?
                .map_or(d.tes_pulses, |v| v.round() as u8),
            tes_isi_ms: self
                .opt_range(&mut r, "tes_isi_ms", 1.0, 10.0)?
                .unwrap_or(d.tes_isi_ms),
        };
        self.finish(&r)?;
        Ok(s)
    }

    fn background(&self, t: &DeTable<'_>, off: usize) -> Result<Background, ScenarioError> {
        let mut r = self.reader(t, "background", off);
        let mut f = |key: &'static str| self.opt_range(&mut r, key, 0.0, 1000.0).map(|v| v.unwrap_or(1.0));
        let b = Background {
            noise: f("noise")?,
            mains: f("mains")?,
            ecg: f("ecg")?,
            artifact: f("artifact")?,
            dc: f("dc")?,
            variability: f("variability")?,
        };
        self.finish(&r)?;
        Ok(b)
    }

    fn event(&self, t: &DeTable<'_>, path: &str, off: usize) -> Result<Event, ScenarioError> {
        let mut r = self.reader(t, path, off);
        let kind = self.req_str(&mut r, "kind")?;
        let at = self.time_pair(&mut r, "at_s", "at_min")?;
        let at_s = match (at, kind.as_str()) {
            (Some((v, key, o)), _) if v < 0.0 => return Err(self.err(&key, o, "must be ≥ 0")),
            (Some((v, _, _)), _) => v,
            (None, "corrupt_link") => 0.0,
            (None, _) => return Err(self.missing(&r, "at_s` or `at_min")),
        };
        let action = match kind.as_str() {
            "response" => {
                let target = self.target(&mut r)?;
                let amplitude_pct = self.opt_range(&mut r, "amplitude_pct", -100.0, 1000.0)?;
                let latency_pct = self.opt_range(&mut r, "latency_pct", -50.0, 200.0)?;
                let latency_ms = self.opt_range(&mut r, "latency_ms", -10.0, 50.0)?;
                if amplitude_pct.is_none() && latency_pct.is_none() && latency_ms.is_none() {
                    return Err(self.missing(&r, "amplitude_pct`, `latency_pct` or `latency_ms"));
                }
                Action::Response {
                    target,
                    amplitude_pct: amplitude_pct.unwrap_or(0.0),
                    latency_pct: latency_pct.unwrap_or(0.0),
                    latency_ms: latency_ms.unwrap_or(0.0),
                    ramp_s: self.opt_range(&mut r, "ramp_s", 0.0, 1e6)?.unwrap_or(0.0),
                }
            }
            "anaesthesia" => Action::Anaesthesia {
                amplitude_pct: self
                    .opt_range(&mut r, "amplitude_pct", -100.0, 1000.0)?
                    .unwrap_or(-50.0),
                latency_pct: self
                    .opt_range(&mut r, "latency_pct", -50.0, 200.0)?
                    .unwrap_or(5.0),
                ramp_s: self.opt_range(&mut r, "ramp_s", 0.0, 1e6)?.unwrap_or(300.0),
            },
            "cautery" => Action::Cautery {
                target: self.target(&mut r)?,
                duration_s: self.opt_range(&mut r, "duration_s", 1e-3, 3600.0)?.unwrap_or(3.0),
            },
            "pop" => Action::Pop {
                target: self.target(&mut r)?,
                step_uv: self.opt_range(&mut r, "step_uv", -1e6, 1e6)?.unwrap_or(20_000.0),
                tau_s: self.opt_range(&mut r, "tau_s", 1e-3, 100.0)?.unwrap_or(1.0),
            },
            "electrode_off" => {
                let target = self.target(&mut r)?;
                let duration_s = self.opt_range(&mut r, "duration_s", 1e-3, 1e7)?;
                let mode = match self.opt_str_spanned(&mut r, "mode")? {
                    None => OffMode::Flat,
                    Some((m, o)) => match m.as_str() {
                        "flat" => OffMode::Flat,
                        "mains" => OffMode::Mains,
                        "noise" => OffMode::Noise,
                        other => {
                            return Err(self.err(
                                &r.key("mode"),
                                o,
                                format!("unknown mode {other:?}: expected flat, mains or noise"),
                            ));
                        }
                    },
                };
                let level_uv = self
                    .opt_range(&mut r, "level_uv", -1e6, 1e6)?
                    .unwrap_or(100_000.0);
                Action::ElectrodeOff {
                    target,
                    duration_s,
                    mode,
                    level_uv,
                }
            }
            "disconnect" => match self.opt_range(&mut r, "duration_s", 1e-3, 1e7)? {
                Some(duration_s) => Action::Disconnect { duration_s },
                None => return Err(self.missing(&r, "duration_s")),
            },
            "corrupt_link" => {
                let duration_s = self.opt_range(&mut r, "duration_s", 1e-3, 1e7)?;
                match self.opt_range(&mut r, "byte_rate", 0.0, 1.0)? {
                    Some(byte_rate) => Action::CorruptLink {
                        duration_s,
                        byte_rate,
                    },
                    None => return Err(self.missing(&r, "byte_rate")),
                }
            }
            other => {
                let off = r.table.get("kind").map_or(0, |v| v.span().start);
                return Err(self.err(
                    &r.key("kind"),
                    off,
                    format!(
                        "unknown event kind {other:?}: expected response, anaesthesia, cautery, pop, \
                         electrode_off, disconnect or corrupt_link"
                    ),
                ));
            }
        };
        self.finish(&r)?;
        Ok(Event { at_s, action })
    }

    fn target(&self, r: &mut TableReader<'_, '_>) -> Result<Target, ScenarioError> {
        let mut channels = Vec::new();
        let check = |name: &str, off: usize, key: &str| -> Result<String, ScenarioError> {
            if LABELS.contains(&name) {
                Ok(name.to_owned())
            } else {
                Err(self.err(
                    key,
                    off,
                    format!("unknown channel label {name:?} (see the montage documentation)"),
                ))
            }
        };
        if let Some((s, off)) = self.opt_str_spanned(r, "channel")? {
            channels.push(check(&s, off, &r.key("channel"))?);
        }
        if let Some(v) = r.take("channels") {
            let key = r.key("channels");
            let DeValue::Array(items) = v.get_ref() else {
                return Err(self.err(&key, v.span().start, "must be an array of channel labels"));
            };
            if items.len() > 64 {
                return Err(self.err(&key, v.span().start, "more than 64 labels"));
            }
            for item in items.iter() {
                let DeValue::String(s) = item.get_ref() else {
                    return Err(self.err(&key, item.span().start, "must be an array of strings"));
                };
                channels.push(check(s, item.span().start, &key)?);
            }
        }
        let group = match self.opt_str_spanned(r, "group")? {
            None => None,
            Some((g, off)) => Some(Group::from_name(&g).ok_or_else(|| {
                self.err(
                    &r.key("group"),
                    off,
                    format!(
                        "unknown group {g:?}: expected cortical, subcortical, peripheral, muscle or brainstem"
                    ),
                )
            })?),
        };
        let stimulator = match self.opt_str_spanned(r, "stimulator")? {
            None => None,
            Some((s, off)) => match Stimulator::from_name(&s) {
                Some(Stimulator::Other(_)) | None => {
                    return Err(self.err(
                        &r.key("stimulator"),
                        off,
                        format!(
                            "unknown stimulator {s:?}: expected left_median, right_median, left_ulnar, \
                             right_ulnar, left_tibial, right_tibial, tes, left_ear, right_ear or direct"
                        ),
                    ));
                }
                Some(st) => Some(st),
            },
        };
        Ok(Target {
            channels,
            group,
            stimulator,
        })
    }

    // ---- typed accessors

    fn key_err(&self, r: &TableReader<'_, '_>, key: &str, message: &str) -> ScenarioError {
        let off = r.table.get(key).map_or(0, |v| v.span().start);
        self.err(&r.key(key), off, message)
    }

    fn missing(&self, r: &TableReader<'_, '_>, key: &str) -> ScenarioError {
        ScenarioError::Invalid {
            key: r.key(key),
            line: r.line,
            message: format!("missing key `{key}`"),
        }
    }

    fn finish(&self, r: &TableReader<'_, '_>) -> Result<(), ScenarioError> {
        let mut unknown: Vec<(&Spanned<Cow<'_, str>>, &Spanned<DeValue<'_>>)> = r
            .table
            .iter()
            .filter(|(k, _)| !r.used.contains(&k.get_ref().as_ref()))
            .collect();
        unknown.sort_by_key(|(k, _)| k.span().start);
        match unknown.first() {
            Some((k, _)) => Err(self.err(&r.key(k.get_ref()), k.span().start, "unknown key")),
            None => Ok(()),
        }
    }

    fn opt_table<'a, 'i>(
        &self,
        r: &mut TableReader<'a, 'i>,
        key: &'a str,
    ) -> Result<Option<(&'a DeTable<'i>, usize)>, ScenarioError> {
        match r.take(key) {
            None => Ok(None),
            Some(v) => match v.get_ref() {
                DeValue::Table(t) => Ok(Some((t, v.span().start))),
                other => Err(self.err(
                    key,
                    v.span().start,
                    format!("must be a table, found {}", other.type_str()),
                )),
            },
        }
    }

    fn opt_str_spanned(
        &self,
        r: &mut TableReader<'_, '_>,
        key: &'static str,
    ) -> Result<Option<(String, usize)>, ScenarioError> {
        match r.take(key) {
            None => Ok(None),
            Some(v) => match v.get_ref() {
                DeValue::String(s) => Ok(Some((s.to_string(), v.span().start))),
                other => Err(self.err(
                    &r.key(key),
                    v.span().start,
                    format!("must be a string, found {}", other.type_str()),
                )),
            },
        }
    }

    fn opt_str(
        &self,
        r: &mut TableReader<'_, '_>,
        key: &'static str,
    ) -> Result<Option<String>, ScenarioError> {
        Ok(self.opt_str_spanned(r, key)?.map(|(s, _)| s))
    }

    fn req_str(&self, r: &mut TableReader<'_, '_>, key: &'static str) -> Result<String, ScenarioError> {
        self.opt_str(r, key)?.ok_or_else(|| self.missing(r, key))
    }

    fn opt_bool(
        &self,
        r: &mut TableReader<'_, '_>,
        key: &'static str,
    ) -> Result<Option<bool>, ScenarioError> {
        match r.take(key) {
            None => Ok(None),
            Some(v) => match v.get_ref() {
                DeValue::Boolean(b) => Ok(Some(*b)),
                other => Err(self.err(
                    &r.key(key),
                    v.span().start,
                    format!("must be true or false, found {}", other.type_str()),
                )),
            },
        }
    }

    fn opt_f64(
        &self,
        r: &mut TableReader<'_, '_>,
        key: &'static str,
    ) -> Result<Option<(f64, usize)>, ScenarioError> {
        let Some(v) = r.take(key) else { return Ok(None) };
        let off = v.span().start;
        let value = match v.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok().map(|i| i as f64),
            DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
            other => {
                return Err(self.err(
                    &r.key(key),
                    off,
                    format!("must be a number, found {}", other.type_str()),
                ));
            }
        };
        match value {
            Some(x) if x.is_finite() => Ok(Some((x, off))),
            _ => Err(self.err(&r.key(key), off, "must be a finite number")),
        }
    }

    fn opt_range(
        &self,
        r: &mut TableReader<'_, '_>,
        key: &'static str,
        lo: f64,
        hi: f64,
    ) -> Result<Option<f64>, ScenarioError> {
        match self.opt_f64(r, key)? {
            None => Ok(None),
            Some((x, _)) if (lo..=hi).contains(&x) => Ok(Some(x)),
            Some((x, off)) => Err(self.err(&r.key(key), off, format!("{x} is out of range {lo} to {hi}"))),
        }
    }

    /// A time given in seconds (`key_s`) or minutes (`key_min`), not both. Returns seconds, the key and offset.
    fn time_pair(
        &self,
        r: &mut TableReader<'_, '_>,
        key_s: &'static str,
        key_min: &'static str,
    ) -> Result<Option<(f64, String, usize)>, ScenarioError> {
        let s = self.opt_f64(r, key_s)?;
        let m = self.opt_f64(r, key_min)?;
        let out = match (s, m) {
            (Some(_), Some((_, off))) => {
                return Err(self.err(
                    &r.key(key_min),
                    off,
                    format!("give either `{key_s}` or `{key_min}`, not both"),
                ));
            }
            (Some((v, off)), None) => Some((v, r.key(key_s), off)),
            (None, Some((v, off))) => Some((v * 60.0, r.key(key_min), off)),
            (None, None) => None,
        };
        match out {
            Some((v, key, off)) if v > 1e7 => Err(self.err(&key, off, "must be at most 10^7 s")),
            other => Ok(other),
        }
    }
}

impl<'a, 'i> TableReader<'a, 'i> {
    fn key(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn take(&mut self, key: &'a str) -> Option<&'a Spanned<DeValue<'i>>> {
        let v = self.table.get(key)?;
        self.used.push(key);
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_parses_and_is_named() {
        for name in Scenario::builtin_names() {
            let s = Scenario::builtin(name).unwrap();
            assert_eq!(&s.name, name);
            assert!(!s.description.is_empty());
        }
        assert_eq!(Scenario::builtin_names().len(), 10);
        assert!(Scenario::builtin("nope").is_none());
    }

    #[test]
    fn minutes_and_defaults() {
        let s = Scenario::from_toml(
            "name = \"x\"\nduration_min = 2\n[[event]]\nkind = \"anaesthesia\"\nat_min = 1.5\n",
        )
        .unwrap();
        assert_eq!(s.duration_s, Some(120.0));
        assert_eq!(s.events[0].at_s, 90.0);
        assert_eq!(
            s.events[0].action,
            Action::Anaesthesia {
                amplitude_pct: -50.0,
                latency_pct: 5.0,
                ramp_s: 300.0
            }
        );
    }
}
