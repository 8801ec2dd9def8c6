//! The protocol file (TOML): which channels to process and how. The format is documented in `PROTOCOL.md`.
//!
//! [`Protocol::from_toml_str`] parses and validates a file; every error names the line, the column and the
//! key ([`ProtocolError`]). Unset keys take the defaults of the channel's modality and site (see
//! [`ChannelDefaults`]); [`Protocol::preset`] returns one of the built-in protocols (`ssep-upper`,
//! `ssep-lower`, `mep`, `baep`), which are ordinary protocol files shipped in the crate.

use crate::average::{AverageMode, AverageSpec};
use crate::design::{Edge, FilterSpec, NotchSpec};
use crate::measure::{
    AmplitudeKind, AmplitudeSpec, IntervalSpec, LatencyRef, MeasureSpec, OnsetSpec, PeakSpec, Polarity,
    PrimarySpec, TrackingSpec,
};
pub use ionm_core::DetectorSettings;
use ionm_core::Stimulator;
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

/// Names of the built-in presets.
pub const PRESETS: [&str; 4] = ["ssep-upper", "ssep-lower", "mep", "baep"];

/// The evoked-potential modality of a channel; it selects the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Modality {
    /// Upper-limb SSEP (median, ulnar).
    SsepUpper,
    /// Lower-limb SSEP (posterior tibial).
    SsepLower,
    /// Transcranial motor evoked potentials (muscle).
    Mep,
    /// Brainstem auditory evoked potentials.
    Baep,
}

impl Modality {
    /// The name used in protocol files.
    pub fn name(self) -> &'static str {
        match self {
            Self::SsepUpper => "ssep-upper",
            Self::SsepLower => "ssep-lower",
            Self::Mep => "mep",
            Self::Baep => "baep",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::SsepUpper, Self::SsepLower, Self::Mep, Self::Baep]
            .into_iter()
            .find(|m| m.name() == s)
    }
}

/// Recording site of an SSEP channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Site {
    /// Scalp (N20/P25, P37/N45).
    Cortical,
    /// Cervical spine (N13, N30).
    Cervical,
    /// Peripheral nerve (Erb's point N9, popliteal fossa N8).
    Peripheral,
}

impl Site {
    /// The name used in protocol files.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cortical => "cortical",
            Self::Cervical => "cervical",
            Self::Peripheral => "peripheral",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::Cortical, Self::Cervical, Self::Peripheral]
            .into_iter()
            .find(|m| m.name() == s)
    }
}

/// Which device channel a protocol channel reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelRef {
    /// By the label the device declares.
    Label(String),
    /// By position (0-based).
    Index(usize),
}

/// Sweep rejection thresholds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RejectSpec {
    /// Reject when the filtered sweep's peak-to-peak exceeds this, µV.
    pub peak_to_peak_uv: Option<f64>,
    /// Reject when the raw sweep's peak-to-peak (outside blanked samples) is at most this, µV.
    pub flat_uv: Option<f64>,
    /// Reject when a raw sample (outside blanked samples) touches the converter's rails.
    pub saturation: bool,
}

/// One processed channel.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelSpec {
    /// Display name.
    pub name: String,
    /// Device channel.
    pub source: ChannelRef,
    /// Modality.
    pub modality: Modality,
    /// Site (SSEP only).
    pub site: Option<Site>,
    /// Stimulators whose stimuli make sweeps on this channel (one trace each).
    pub stimulators: Vec<Stimulator>,
    /// Sweep window, ms relative to the stimulus, `[start, end)`.
    pub window_ms: (f64, f64),
    /// Filter.
    pub filter: FilterSpec,
    /// Rejection.
    pub reject: RejectSpec,
    /// Averaging.
    pub average: AverageSpec,
    /// Measurements.
    pub measure: MeasureSpec,
    /// Window for Fsp and residual noise, ms; `None`: from the end of the stimulus blanking to the window
    /// end.
    pub quality_ms: Option<(f64, f64)>,
    /// Line of the channel's table in the file (0 for channels built in code).
    pub line: usize,
}

/// Stimulus-artifact blanking.
#[derive(Debug, Clone, PartialEq)]
pub struct BlankingSpec {
    /// Window replaced by linear interpolation, ms around each stimulus, for stimulators not listed below.
    pub window_ms: Option<(f64, f64)>,
    /// Per-stimulator windows (`None`: not blanked).
    pub per_stimulator: Vec<(Stimulator, Option<(f64, f64)>)>,
    /// For trains (`pulses > 1`), the window end is extended by `(pulses − 1) × train_isi_ms`.
    pub train_isi_ms: f64,
}

impl Default for BlankingSpec {
    fn default() -> Self {
        Self {
            window_ms: Some((-0.5, 2.0)),
            per_stimulator: vec![(Stimulator::LeftEar, None), (Stimulator::RightEar, None)],
            train_isi_ms: 4.0,
        }
    }
}

impl BlankingSpec {
    /// Longest blanking allowed, ms (bounds the buffering).
    pub const MAX_MS: f64 = 100.0;

    /// The window for stimuli of `s`, ms (`None`: no blanking).
    pub fn window_for(&self, s: Stimulator) -> Option<(f64, f64)> {
        self.per_stimulator
            .iter()
            .find(|(t, _)| *t == s)
            .map_or(self.window_ms, |(_, w)| *w)
    }
}

/// A parsed, validated protocol.
#[derive(Debug, Clone, PartialEq)]
pub struct Protocol {
    /// Free-text name.
    pub name: String,
    /// Mains frequency, Hz (for the notch).
    pub mains_hz: f64,
    /// Longest delay, ms, with which a stimulus event may arrive after the samples it marks; samples are held
    /// back that long before filtering so that late events can still be blanked.
    pub stimulus_lag_ms: f64,
    /// Blanking.
    pub blanking: BlankingSpec,
    /// Channels.
    pub channels: Vec<ChannelSpec>,
    /// Which change detectors the monitor runs (`detectors`, `[sequential]`).
    pub detectors: DetectorSettings,
}

/// A bad protocol file: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(self))]
pub struct ProtocolError {
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// The key (path), when known, e.g. `channel[2].window_ms`.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

fn describe(e: &ProtocolError) -> String {
    let mut s = String::new();
    if let Some(l) = e.line {
        s += &format!("line {l}");
        if let Some(c) = e.column {
            s += &format!(", column {c}");
        }
        s += ": ";
    }
    if let Some(k) = &e.key {
        s += &format!("`{k}`: ");
    }
    s + &e.message
}

/// Defaults of one modality and site (documented in PROTOCOL.md).
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelDefaults {
    /// Sweep window, ms.
    pub window_ms: (f64, f64),
    /// High-pass `(cutoff, transition)`, Hz.
    pub highpass: (f64, f64),
    /// Low-pass `(cutoff, transition)`, Hz.
    pub lowpass: (f64, f64),
    /// Notch on by default.
    pub notch: bool,
    /// Notch harmonics.
    pub notch_harmonics: u32,
    /// Peak-to-peak rejection threshold, µV (`None`: off).
    pub reject_peak_to_peak_uv: Option<f64>,
    /// Sweeps per average.
    pub sweeps: u32,
    /// Measurements.
    pub measure: MeasureSpec,
}

fn peak(name: &str, polarity: Polarity, w: (f64, f64), after: Option<usize>) -> PeakSpec {
    PeakSpec {
        name: name.into(),
        polarity,
        window_ms: w,
        after,
    }
}

fn amp(name: &str, kind: AmplitudeKind) -> AmplitudeSpec {
    AmplitudeSpec {
        name: name.into(),
        kind,
    }
}

impl ChannelDefaults {
    /// The defaults for `modality` at `site` (site is ignored for MEP and BAEP; SSEP defaults to cortical).
    pub fn of(modality: Modality, site: Option<Site>) -> Self {
        use Polarity::{Negative as Neg, Positive as Pos};
        let track = |max_shift_ms, tolerance_ms| TrackingSpec {
            max_shift_ms,
            tolerance_ms,
        };
        let single = |name: &str, pol, w: (f64, f64), baseline: Option<(f64, f64)>, t| MeasureSpec {
            peaks: vec![peak(name, pol, w, None)],
            amplitudes: vec![amp(name, AmplitudeKind::ToBaseline { peak: 0 })],
            intervals: vec![],
            onset: None,
            baseline_ms: baseline,
            primary: PrimarySpec {
                latency: Some(LatencyRef::Peak(0)),
                amplitude: Some(0),
            },
            tracking: t,
        };
        let pair = |a: &str, pa, wa, b: &str, pb, wb, baseline: Option<(f64, f64)>, t| MeasureSpec {
            peaks: vec![peak(a, pa, wa, None), peak(b, pb, wb, Some(0))],
            amplitudes: vec![amp(
                &format!("{a}-{b}"),
                AmplitudeKind::Between { from: 0, to: 1 },
            )],
            intervals: vec![],
            onset: None,
            baseline_ms: baseline,
            primary: PrimarySpec {
                latency: Some(LatencyRef::Peak(0)),
                amplitude: Some(0),
            },
            tracking: t,
        };
        let cortical_band = ((30.0, 20.0), (1000.0, 400.0));
        let peripheral_band = ((10.0, 10.0), (2000.0, 500.0));
        let ssep = |window: (f64, f64), band: ((f64, f64), (f64, f64)), pp, measure| Self {
            window_ms: window,
            highpass: band.0,
            lowpass: band.1,
            notch: true,
            notch_harmonics: 3,
            reject_peak_to_peak_uv: Some(pp),
            sweeps: 200,
            measure,
        };
        let base_u = Some((-10.0, -1.0));
        match (modality, site.unwrap_or(Site::Cortical)) {
            (Modality::SsepUpper, Site::Cortical) => ssep(
                (-10.0, 50.0),
                cortical_band,
                100.0,
                pair(
                    "N20",
                    Neg,
                    (16.0, 25.0),
                    "P25",
                    Pos,
                    (20.0, 32.0),
                    base_u,
                    track(3.0, 1.0),
                ),
            ),
            (Modality::SsepUpper, Site::Cervical) => ssep(
                (-10.0, 50.0),
                cortical_band,
                100.0,
                single("N13", Neg, (10.0, 17.0), base_u, track(2.0, 0.75)),
            ),
            (Modality::SsepUpper, Site::Peripheral) => ssep(
                (-10.0, 50.0),
                peripheral_band,
                200.0,
                single("N9", Neg, (7.0, 13.0), base_u, track(2.0, 0.75)),
            ),
            (Modality::SsepLower, Site::Cortical) => ssep(
                (-10.0, 100.0),
                cortical_band,
                100.0,
                pair(
                    "P37",
                    Pos,
                    (32.0, 45.0),
                    "N45",
                    Neg,
                    (38.0, 58.0),
                    base_u,
                    track(4.0, 1.5),
                ),
            ),
            (Modality::SsepLower, Site::Cervical) => ssep(
                (-10.0, 100.0),
                cortical_band,
                100.0,
                single("N30", Neg, (24.0, 36.0), base_u, track(3.0, 1.0)),
            ),
            (Modality::SsepLower, Site::Peripheral) => ssep(
                (-10.0, 100.0),
                peripheral_band,
                200.0,
                single("N8", Neg, (5.0, 12.0), base_u, track(2.0, 0.75)),
            ),
            (Modality::Mep, _) => Self {
                window_ms: (0.0, 100.0),
                highpass: (10.0, 10.0),
                lowpass: (2000.0, 500.0),
                notch: false,
                notch_harmonics: 3,
                reject_peak_to_peak_uv: None,
                sweeps: 1,
                measure: MeasureSpec {
                    peaks: vec![],
                    amplitudes: vec![amp(
                        "pp",
                        AmplitudeKind::WindowPeakToPeak {
                            window_ms: (8.0, 90.0),
                        },
                    )],
                    intervals: vec![],
                    onset: Some(OnsetSpec {
                        threshold_uv: 20.0,
                        window_ms: (8.0, 90.0),
                    }),
                    baseline_ms: None,
                    primary: PrimarySpec {
                        latency: Some(LatencyRef::Onset),
                        amplitude: Some(0),
                    },
                    tracking: track(5.0, 2.0),
                },
            },
            (Modality::Baep, _) => Self {
                window_ms: (0.0, 12.0),
                highpass: (100.0, 50.0),
                lowpass: (3000.0, 1000.0),
                notch: true,
                notch_harmonics: 5,
                reject_peak_to_peak_uv: Some(25.0),
                sweeps: 1000,
                measure: MeasureSpec {
                    peaks: vec![
                        peak("I", Pos, (1.2, 2.4), None),
                        peak("In", Neg, (1.6, 3.6), Some(0)),
                        peak("III", Pos, (3.2, 4.8), None),
                        peak("V", Pos, (5.0, 7.5), None),
                        peak("Vn", Neg, (5.5, 9.5), Some(3)),
                    ],
                    amplitudes: vec![
                        amp("I-In", AmplitudeKind::Between { from: 0, to: 1 }),
                        amp("V-Vn", AmplitudeKind::Between { from: 3, to: 4 }),
                    ],
                    intervals: vec![
                        IntervalSpec {
                            name: "I-III".into(),
                            from: 0,
                            to: 2,
                        },
                        IntervalSpec {
                            name: "III-V".into(),
                            from: 2,
                            to: 3,
                        },
                        IntervalSpec {
                            name: "I-V".into(),
                            from: 0,
                            to: 3,
                        },
                    ],
                    onset: None,
                    baseline_ms: None,
                    primary: PrimarySpec {
                        latency: Some(LatencyRef::Peak(3)),
                        amplitude: Some(1),
                    },
                    tracking: track(1.0, 0.3),
                },
            },
        }
    }
}

// ---- raw TOML structures ----

type S<T> = Spanned<T>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProtocol {
    name: Option<String>,
    mains_hz: Option<S<f64>>,
    stimulus_lag_ms: Option<S<f64>>,
    blanking: Option<RawBlanking>,
    detectors: Option<S<Vec<S<String>>>>,
    sequential: Option<RawSequential>,
    #[serde(default)]
    channel: Vec<S<RawChannel>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSequential {
    false_alarm_hours: Option<S<f64>>,
    design_drop: Option<S<f64>>,
    design_latency: Option<S<f64>>,
    template_sweeps: Option<S<i64>>,
    calibration_sweeps: Option<S<i64>>,
    block_floor: Option<bool>,
    latency_cusum: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBlanking {
    window_ms: Option<S<Vec<f64>>>,
    train_isi_ms: Option<S<f64>>,
    off: Option<S<Vec<S<String>>>>,
    windows: Option<BTreeMap<String, S<Vec<f64>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChannel {
    label: Option<S<String>>,
    index: Option<S<i64>>,
    name: Option<String>,
    modality: S<String>,
    site: Option<S<String>>,
    stimulators: S<Vec<S<String>>>,
    window_ms: Option<S<Vec<f64>>>,
    highpass_hz: Option<S<f64>>,
    highpass_transition_hz: Option<S<f64>>,
    lowpass_hz: Option<S<f64>>,
    lowpass_transition_hz: Option<S<f64>>,
    attenuation_db: Option<S<f64>>,
    notch: Option<bool>,
    notch_harmonics: Option<S<i64>>,
    notch_width_hz: Option<S<f64>>,
    notch_transition_hz: Option<S<f64>>,
    notch_attenuation_db: Option<S<f64>>,
    reject_peak_to_peak_uv: Option<S<f64>>,
    reject_flat_uv: Option<S<f64>>,
    reject_saturation: Option<bool>,
    average: Option<S<String>>,
    sweeps: Option<S<i64>>,
    every: Option<S<i64>>,
    baseline_ms: Option<S<Vec<f64>>>,
    quality_ms: Option<S<Vec<f64>>>,
    peaks: Option<S<Vec<RawPeak>>>,
    amplitudes: Option<S<Vec<RawAmplitude>>>,
    intervals: Option<S<Vec<RawInterval>>>,
    onset: Option<S<RawOnset>>,
    primary_latency: Option<S<String>>,
    primary_amplitude: Option<S<String>>,
    track_max_shift_ms: Option<S<f64>>,
    track_tolerance_ms: Option<S<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPeak {
    name: S<String>,
    polarity: S<String>,
    window_ms: S<Vec<f64>>,
    after: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAmplitude {
    name: S<String>,
    from: Option<S<String>>,
    to: Option<S<String>>,
    window_ms: Option<S<Vec<f64>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInterval {
    name: S<String>,
    from: S<String>,
    to: S<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOnset {
    threshold_uv: S<f64>,
    window_ms: S<Vec<f64>>,
}

/// Turns byte spans into line/column errors.
struct Ctx<'a> {
    src: &'a str,
}

impl Ctx<'_> {
    fn at(&self, span: std::ops::Range<usize>, key: &str, message: impl Into<String>) -> ProtocolError {
        let (line, column) = line_col(self.src, span.start);
        ProtocolError {
            line: Some(line),
            column: Some(column),
            key: Some(key.into()),
            message: message.into(),
        }
    }

    fn pair(&self, v: &S<Vec<f64>>, key: &str) -> Result<(f64, f64), ProtocolError> {
        let x = v.get_ref();
        if x.len() != 2 || !x.iter().all(|f| f.is_finite()) {
            return Err(self.at(v.span(), key, "expected two finite numbers, e.g. [-10.0, 50.0]"));
        }
        if x[0] >= x[1] {
            return Err(self.at(
                v.span(),
                key,
                format!("start {} must be below end {}", x[0], x[1]),
            ));
        }
        Ok((x[0], x[1]))
    }

    fn range(&self, v: &S<f64>, key: &str, lo: f64, hi: f64) -> Result<f64, ProtocolError> {
        let x = *v.get_ref();
        if !(x.is_finite() && x >= lo && x <= hi) {
            return Err(self.at(v.span(), key, format!("{x} is out of range ({lo}…{hi})")));
        }
        Ok(x)
    }

    fn int(&self, v: &S<i64>, key: &str, lo: i64, hi: i64) -> Result<i64, ProtocolError> {
        let x = *v.get_ref();
        if x < lo || x > hi {
            return Err(self.at(v.span(), key, format!("{x} is out of range ({lo}…{hi})")));
        }
        Ok(x)
    }

    fn stimulator(&self, v: &S<String>, key: &str) -> Result<Stimulator, ProtocolError> {
        Stimulator::from_name(v.get_ref()).ok_or_else(|| {
            let names: Vec<String> = Stimulator::NAMED.iter().map(|s| s.name()).collect();
            self.at(
                v.span(),
                key,
                format!(
                    "unknown stimulator `{}` (known: {}, other_<code>)",
                    v.get_ref(),
                    names.join(", ")
                ),
            )
        })
    }
}

fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = &src.as_bytes()[..offset];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let start = before.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
    let column = String::from_utf8_lossy(&before[start..]).chars().count() + 1;
    (line, column)
}

fn syntax_error(src: &str, e: &toml::de::Error) -> ProtocolError {
    let Some(span) = e.span() else {
        return ProtocolError {
            line: None,
            column: None,
            key: None,
            message: e.message().to_string(),
        };
    };
    let (line, column) = line_col(src, span.start);
    let text = src.lines().nth(line - 1).unwrap_or("").trim();
    let key = if text.starts_with('[') {
        Some(text.trim_matches(|c| c == '[' || c == ']').trim().to_string())
    } else {
        text.split_once('=')
            .map(|(k, _)| k.trim().to_string())
            .filter(|k| {
                !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '"'))
            })
    };
    ProtocolError {
        line: Some(line),
        column: Some(column),
        key,
        message: e.message().trim().to_string(),
    }
}

impl Protocol {
    /// Parses and validates a protocol file.
    pub fn from_toml_str(src: &str) -> Result<Self, ProtocolError> {
        let raw: RawProtocol = toml::from_str(src).map_err(|e| syntax_error(src, &e))?;
        let cx = Ctx { src };
        let mains_hz = raw
            .mains_hz
            .as_ref()
            .map_or(Ok(50.0), |v| cx.range(v, "mains_hz", 40.0, 70.0))?;
        let stimulus_lag_ms = raw
            .stimulus_lag_ms
            .as_ref()
            .map_or(Ok(20.0), |v| cx.range(v, "stimulus_lag_ms", 0.0, 1000.0))?;
        let blanking = match &raw.blanking {
            None => BlankingSpec::default(),
            Some(b) => parse_blanking(&cx, b)?,
        };
        if raw.channel.is_empty() {
            return Err(ProtocolError {
                line: None,
                column: None,
                key: Some("channel".into()),
                message: "the protocol has no [[channel]] table".into(),
            });
        }
        if raw.channel.len() > 256 {
            return Err(cx.at(raw.channel[256].span(), "channel", "at most 256 channels"));
        }
        let channels = raw
            .channel
            .iter()
            .enumerate()
            .map(|(i, c)| parse_channel(&cx, i, c, mains_hz))
            .collect::<Result<Vec<_>, _>>()?;
        let detectors = parse_detectors(&cx, raw.detectors.as_ref(), raw.sequential.as_ref())?;
        Ok(Self {
            name: raw.name.unwrap_or_default(),
            mains_hz,
            stimulus_lag_ms,
            blanking,
            channels,
            detectors,
        })
    }

    /// Reads and parses a protocol file; the path is prefixed to the error message.
    pub fn from_file(path: &std::path::Path) -> Result<Self, ProtocolError> {
        let meta = std::fs::metadata(path).map_err(|e| ProtocolError {
            line: None,
            column: None,
            key: None,
            message: format!("{}: {e}", path.display()),
        })?;
        if meta.len() > 1 << 20 {
            return Err(ProtocolError {
                line: None,
                column: None,
                key: None,
                message: format!("{}: larger than 1 MiB, not a protocol file", path.display()),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|e| ProtocolError {
            line: None,
            column: None,
            key: None,
            message: format!("{}: {e}", path.display()),
        })?;
        Self::from_toml_str(&text).map_err(|e| ProtocolError {
            message: format!("{}: {}", path.display(), e.message),
            ..e
        })
    }

    /// The built-in preset `name` (one of [`PRESETS`]).
    pub fn preset(name: &str) -> Option<Self> {
        Self::preset_text(name).map(|t| Self::from_toml_str(t).expect("built-in presets are valid"))
    }

    /// The TOML text of the built-in preset `name`.
    pub fn preset_text(name: &str) -> Option<&'static str> {
        match name {
            "ssep-upper" => Some(include_str!("presets/ssep-upper.toml")),
            "ssep-lower" => Some(include_str!("presets/ssep-lower.toml")),
            "mep" => Some(include_str!("presets/mep.toml")),
            "baep" => Some(include_str!("presets/baep.toml")),
            _ => None,
        }
    }
}

fn parse_detectors(
    cx: &Ctx<'_>,
    list: Option<&S<Vec<S<String>>>>,
    seq: Option<&RawSequential>,
) -> Result<DetectorSettings, ProtocolError> {
    let mut d = DetectorSettings::default();
    if let Some(list) = list {
        d.block = false;
        for name in list.get_ref() {
            match name.get_ref().as_str() {
                "block" => d.block = true,
                "sequential" => d.sequential = true,
                other => {
                    return Err(cx.at(
                        name.span(),
                        "detectors",
                        format!("unknown detector `{other}` (expected `block` or `sequential`)"),
                    ));
                }
            }
        }
        if !d.block && !d.sequential {
            return Err(cx.at(list.span(), "detectors", "name at least one detector"));
        }
    }
    if let Some(s) = seq {
        if let Some(v) = &s.false_alarm_hours {
            d.false_alarm_hours = cx.range(v, "sequential.false_alarm_hours", 0.01, 1e6)?;
        }
        if let Some(v) = &s.design_drop {
            d.design_drop = cx.range(v, "sequential.design_drop", 0.05, 1.0)?;
        }
        if let Some(v) = &s.design_latency {
            d.design_latency = cx.range(v, "sequential.design_latency", 0.01, 1.0)?;
        }
        if let Some(v) = &s.template_sweeps {
            d.template_sweeps = cx.int(v, "sequential.template_sweeps", 2, 100_000)? as u32;
        }
        if let Some(v) = &s.calibration_sweeps {
            d.calibration_sweeps = cx.int(v, "sequential.calibration_sweeps", 2, 100_000)? as u32;
        }
        if let Some(v) = s.block_floor {
            d.block_floor = v;
        }
        if let Some(v) = s.latency_cusum {
            d.latency_cusum = v;
        }
    }
    Ok(d)
}

fn parse_blanking(cx: &Ctx<'_>, b: &RawBlanking) -> Result<BlankingSpec, ProtocolError> {
    let window = |v: &S<Vec<f64>>, key: &str| -> Result<(f64, f64), ProtocolError> {
        let x = v.get_ref();
        if x.len() != 2 || !x.iter().all(|f| f.is_finite()) || x[0] > x[1] {
            return Err(cx.at(
                v.span(),
                key,
                "expected [start, end] in ms with start ≤ end, e.g. [-0.5, 2.0]",
            ));
        }
        if x[0] < -20.0 || x[1] - x[0] > BlankingSpec::MAX_MS {
            return Err(cx.at(
                v.span(),
                key,
                format!(
                    "must start at −20 ms or later and last at most {} ms",
                    BlankingSpec::MAX_MS
                ),
            ));
        }
        Ok((x[0], x[1]))
    };
    let mut spec = BlankingSpec::default();
    if let Some(w) = &b.window_ms {
        spec.window_ms = Some(window(w, "blanking.window_ms")?);
    }
    if let Some(t) = &b.train_isi_ms {
        spec.train_isi_ms = cx.range(t, "blanking.train_isi_ms", 0.0, 20.0)?;
    }
    if let Some(off) = &b.off {
        spec.per_stimulator.clear();
        for s in off.get_ref() {
            spec.per_stimulator
                .push((cx.stimulator(s, "blanking.off")?, None));
        }
    }
    if let Some(ws) = &b.windows {
        for (name, w) in ws {
            let key = format!("blanking.windows.{name}");
            let s = Stimulator::from_name(name)
                .ok_or_else(|| cx.at(w.span(), &key, format!("unknown stimulator `{name}`")))?;
            let w = window(w, &key)?;
            spec.per_stimulator.retain(|(t, _)| *t != s);
            spec.per_stimulator.push((s, Some(w)));
        }
    }
    Ok(spec)
}

fn parse_channel(
    cx: &Ctx<'_>,
    i: usize,
    c: &S<RawChannel>,
    mains_hz: f64,
) -> Result<ChannelSpec, ProtocolError> {
    let line = line_col(cx.src, c.span().start).0;
    let c = c.get_ref();
    let k = |name: &str| format!("channel[{i}].{name}");

    let source = match (&c.label, &c.index) {
        (Some(l), None) => {
            if l.get_ref().is_empty() {
                return Err(cx.at(l.span(), &k("label"), "must not be empty"));
            }
            ChannelRef::Label(l.get_ref().clone())
        }
        (None, Some(ix)) => ChannelRef::Index(cx.int(ix, &k("index"), 0, 63)? as usize),
        (Some(l), Some(_)) => {
            return Err(cx.at(l.span(), &k("label"), "give either `label` or `index`, not both"));
        }
        (None, None) => {
            return Err(ProtocolError {
                line: Some(line),
                column: None,
                key: Some(k("label")),
                message: "missing: give `label` (the device's channel label) or `index`".into(),
            });
        }
    };
    let modality = Modality::parse(c.modality.get_ref()).ok_or_else(|| {
        cx.at(
            c.modality.span(),
            &k("modality"),
            format!(
                "unknown modality `{}` (known: ssep-upper, ssep-lower, mep, baep)",
                c.modality.get_ref()
            ),
        )
    })?;
    let site = match &c.site {
        None => None,
        Some(s) => {
            let site = Site::parse(s.get_ref()).ok_or_else(|| {
                cx.at(
                    s.span(),
                    &k("site"),
                    format!(
                        "unknown site `{}` (known: cortical, cervical, peripheral)",
                        s.get_ref()
                    ),
                )
            })?;
            if !matches!(modality, Modality::SsepUpper | Modality::SsepLower) {
                return Err(cx.at(s.span(), &k("site"), "only SSEP channels have a site"));
            }
            Some(site)
        }
    };
    let d = ChannelDefaults::of(modality, site);
    let name = c.name.clone().unwrap_or_else(|| match &source {
        ChannelRef::Label(l) => l.clone(),
        ChannelRef::Index(ix) => format!("channel {ix}"),
    });

    if c.stimulators.get_ref().is_empty() {
        return Err(cx.at(
            c.stimulators.span(),
            &k("stimulators"),
            "list at least one stimulator",
        ));
    }
    let mut stimulators = Vec::new();
    for s in c.stimulators.get_ref() {
        let st = cx.stimulator(s, &k("stimulators"))?;
        if stimulators.contains(&st) {
            return Err(cx.at(
                s.span(),
                &k("stimulators"),
                format!("`{}` is listed twice", s.get_ref()),
            ));
        }
        stimulators.push(st);
    }

    let window_ms = match &c.window_ms {
        None => d.window_ms,
        Some(w) => {
            let w2 = cx.pair(w, &k("window_ms"))?;
            if w2.0 < -500.0 || w2.1 > 1000.0 || w2.1 <= 0.0 {
                return Err(cx.at(
                    w.span(),
                    &k("window_ms"),
                    "must lie within −500…1000 ms and end after 0 ms",
                ));
            }
            w2
        }
    };

    let f = |v: &Option<S<f64>>, key: &str, default: f64, lo: f64, hi: f64| -> Result<f64, ProtocolError> {
        v.as_ref().map_or(Ok(default), |v| cx.range(v, &k(key), lo, hi))
    };
    let hp = f(&c.highpass_hz, "highpass_hz", d.highpass.0, 0.0, 1e6)?;
    let hp_t = f(
        &c.highpass_transition_hz,
        "highpass_transition_hz",
        d.highpass.1,
        1e-3,
        1e6,
    )?;
    let lp = f(&c.lowpass_hz, "lowpass_hz", d.lowpass.0, 0.0, 1e6)?;
    let lp_t = f(
        &c.lowpass_transition_hz,
        "lowpass_transition_hz",
        d.lowpass.1,
        1e-3,
        1e6,
    )?;
    if hp > 0.0
        && lp > 0.0
        && hp >= lp
        && let Some(v) = c.highpass_hz.as_ref().or(c.lowpass_hz.as_ref())
    {
        return Err(cx.at(
            v.span(),
            &k("highpass_hz"),
            format!("high-pass {hp} Hz must be below low-pass {lp} Hz"),
        ));
    }
    let attenuation_db = f(&c.attenuation_db, "attenuation_db", 60.0, 21.0, 150.0)?;
    let notch_on = c.notch.unwrap_or(d.notch);
    let notch = if notch_on {
        let harmonics = c
            .notch_harmonics
            .as_ref()
            .map_or(Ok(i64::from(d.notch_harmonics)), |v| {
                cx.int(v, &k("notch_harmonics"), 1, 50)
            })? as u32;
        let width_hz = f(&c.notch_width_hz, "notch_width_hz", 6.0, 0.1, 100.0)?;
        let transition_hz = f(&c.notch_transition_hz, "notch_transition_hz", 4.0, 0.1, 100.0)?;
        if transition_hz >= width_hz {
            let span = c
                .notch_transition_hz
                .as_ref()
                .or(c.notch_width_hz.as_ref())
                .map_or(0..0, |v| v.span());
            return Err(cx.at(
                span,
                &k("notch_transition_hz"),
                format!(
                    "notch transition {transition_hz} Hz must be narrower than the notch width {width_hz} Hz"
                ),
            ));
        }
        let attenuation_db = f(&c.notch_attenuation_db, "notch_attenuation_db", 40.0, 21.0, 150.0)?;
        Some(NotchSpec {
            mains_hz,
            harmonics,
            width_hz,
            transition_hz,
            attenuation_db,
        })
    } else {
        None
    };
    let filter = FilterSpec {
        highpass: (hp > 0.0).then_some(Edge {
            cutoff_hz: hp,
            transition_hz: hp_t,
        }),
        lowpass: (lp > 0.0).then_some(Edge {
            cutoff_hz: lp,
            transition_hz: lp_t,
        }),
        attenuation_db,
        notch,
    };

    let pp = match &c.reject_peak_to_peak_uv {
        None => d.reject_peak_to_peak_uv,
        Some(v) => Some(cx.range(v, &k("reject_peak_to_peak_uv"), 0.0, 1e7)?).filter(|x| *x > 0.0),
    };
    let flat = Some(f(&c.reject_flat_uv, "reject_flat_uv", 0.1, 0.0, 1e4)?).filter(|x| *x > 0.0);
    let reject = RejectSpec {
        peak_to_peak_uv: pp,
        flat_uv: flat,
        saturation: c.reject_saturation.unwrap_or(true),
    };

    let sweeps = c
        .sweeps
        .as_ref()
        .map_or(Ok(i64::from(d.sweeps)), |v| cx.int(v, &k("sweeps"), 1, 10_000))? as u32;
    let mode = match c.average.as_ref().map(|s| (s.get_ref().as_str(), s.span())) {
        None | Some(("block", _)) => {
            if let Some(e) = &c.every {
                return Err(cx.at(
                    e.span(),
                    &k("every"),
                    "`every` only applies to average = \"moving\"",
                ));
            }
            AverageMode::Block
        }
        Some(("moving", _)) => {
            let every =
                c.every
                    .as_ref()
                    .map_or(Ok(1), |v| cx.int(v, &k("every"), 1, i64::from(sweeps)))? as u32;
            AverageMode::Moving { every }
        }
        Some((other, span)) => {
            return Err(cx.at(
                span,
                &k("average"),
                format!("unknown mode `{other}` (known: block, moving)"),
            ));
        }
    };
    let average = AverageSpec { sweeps, mode };

    let measure = parse_measure(cx, i, c, &d)?;
    let quality_ms = c
        .quality_ms
        .as_ref()
        .map(|v| cx.pair(v, &k("quality_ms")))
        .transpose()?;

    Ok(ChannelSpec {
        name,
        source,
        modality,
        site,
        stimulators,
        window_ms,
        filter,
        reject,
        average,
        measure,
        quality_ms,
        line,
    })
}

fn parse_measure(
    cx: &Ctx<'_>,
    i: usize,
    c: &RawChannel,
    d: &ChannelDefaults,
) -> Result<MeasureSpec, ProtocolError> {
    let k = |name: &str| format!("channel[{i}].{name}");
    let custom = c.peaks.is_some()
        || c.amplitudes.is_some()
        || c.intervals.is_some()
        || c.onset.is_some()
        || c.primary_latency.is_some()
        || c.primary_amplitude.is_some();
    let mut m = if custom {
        MeasureSpec {
            peaks: vec![],
            amplitudes: vec![],
            intervals: vec![],
            onset: None,
            baseline_ms: d.measure.baseline_ms,
            primary: PrimarySpec::default(),
            tracking: d.measure.tracking,
        }
    } else {
        d.measure.clone()
    };
    if let Some(b) = &c.baseline_ms {
        m.baseline_ms = Some(cx.pair(b, &k("baseline_ms"))?);
    }
    if let Some(v) = &c.track_max_shift_ms {
        m.tracking.max_shift_ms = cx.range(v, &k("track_max_shift_ms"), 0.01, 50.0)?;
    }
    if let Some(v) = &c.track_tolerance_ms {
        m.tracking.tolerance_ms = cx.range(v, &k("track_tolerance_ms"), 0.01, 50.0)?;
    }
    if !custom {
        return Ok(m);
    }
    if let Some(peaks) = &c.peaks {
        if peaks.get_ref().len() > 32 {
            return Err(cx.at(peaks.span(), &k("peaks"), "at most 32 peaks"));
        }
        for (j, p) in peaks.get_ref().iter().enumerate() {
            let key = k(&format!("peaks[{j}]"));
            let name = p.name.get_ref().clone();
            if name.is_empty() || m.peaks.iter().any(|q| q.name == name) {
                return Err(cx.at(
                    p.name.span(),
                    &format!("{key}.name"),
                    format!("peak name `{name}` is empty or repeated"),
                ));
            }
            let polarity = match p.polarity.get_ref().as_str() {
                "positive" => Polarity::Positive,
                "negative" => Polarity::Negative,
                other => {
                    return Err(cx.at(
                        p.polarity.span(),
                        &format!("{key}.polarity"),
                        format!("unknown polarity `{other}` (known: positive, negative)"),
                    ));
                }
            };
            let window_ms = cx.pair(&p.window_ms, &format!("{key}.window_ms"))?;
            let after =
                match &p.after {
                    None => None,
                    Some(a) => Some(m.peaks.iter().position(|q| q.name == *a.get_ref()).ok_or_else(
                        || {
                            cx.at(
                                a.span(),
                                &format!("{key}.after"),
                                format!("`{}` is not an earlier peak", a.get_ref()),
                            )
                        },
                    )?),
                };
            m.peaks.push(PeakSpec {
                name,
                polarity,
                window_ms,
                after,
            });
        }
    }
    let peak_ix = |s: &S<String>, key: &str| -> Result<usize, ProtocolError> {
        m.peaks
            .iter()
            .position(|q| q.name == *s.get_ref())
            .ok_or_else(|| {
                cx.at(
                    s.span(),
                    key,
                    format!("`{}` is not one of this channel's peaks", s.get_ref()),
                )
            })
    };
    if let Some(amps) = &c.amplitudes {
        for (j, a) in amps.get_ref().iter().enumerate() {
            let key = k(&format!("amplitudes[{j}]"));
            let name = a.name.get_ref().clone();
            if name.is_empty() || m.amplitudes.iter().any(|q| q.name == name) {
                return Err(cx.at(
                    a.name.span(),
                    &format!("{key}.name"),
                    format!("amplitude name `{name}` is empty or repeated"),
                ));
            }
            let kind = match (&a.from, &a.to, &a.window_ms) {
                (Some(f), Some(t), None) => {
                    let from = peak_ix(f, &format!("{key}.from"))?;
                    if t.get_ref() == "baseline" {
                        AmplitudeKind::ToBaseline { peak: from }
                    } else {
                        AmplitudeKind::Between {
                            from,
                            to: peak_ix(t, &format!("{key}.to"))?,
                        }
                    }
                }
                (None, None, Some(w)) => AmplitudeKind::WindowPeakToPeak {
                    window_ms: cx.pair(w, &format!("{key}.window_ms"))?,
                },
                _ => {
                    return Err(cx.at(
                        a.name.span(),
                        &key,
                        "give either `from` and `to` (a peak or \"baseline\") or `window_ms`",
                    ));
                }
            };
            m.amplitudes.push(AmplitudeSpec { name, kind });
        }
    }
    if let Some(ivs) = &c.intervals {
        for (j, iv) in ivs.get_ref().iter().enumerate() {
            let key = k(&format!("intervals[{j}]"));
            let from = peak_ix(&iv.from, &format!("{key}.from"))?;
            let to = peak_ix(&iv.to, &format!("{key}.to"))?;
            m.intervals.push(IntervalSpec {
                name: iv.name.get_ref().clone(),
                from,
                to,
            });
        }
    }
    if let Some(o) = &c.onset {
        let o = o.get_ref();
        let threshold_uv = cx.range(&o.threshold_uv, &k("onset.threshold_uv"), 1e-6, 1e7)?;
        let window_ms = cx.pair(&o.window_ms, &k("onset.window_ms"))?;
        m.onset = Some(OnsetSpec {
            threshold_uv,
            window_ms,
        });
    }
    if let Some(p) = &c.primary_latency {
        m.primary.latency = Some(if p.get_ref() == "onset" {
            if m.onset.is_none() {
                return Err(cx.at(p.span(), &k("primary_latency"), "`onset` needs an `onset` table"));
            }
            LatencyRef::Onset
        } else {
            LatencyRef::Peak(peak_ix(p, &k("primary_latency"))?)
        });
    }
    if let Some(p) = &c.primary_amplitude {
        m.primary.amplitude = Some(
            m.amplitudes
                .iter()
                .position(|a| a.name == *p.get_ref())
                .ok_or_else(|| {
                    cx.at(
                        p.span(),
                        &k("primary_amplitude"),
                        format!("`{}` is not one of this channel's amplitudes", p.get_ref()),
                    )
                })?,
        );
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_parse() {
        for p in PRESETS {
            let proto = Protocol::preset(p).unwrap();
            assert!(!proto.channels.is_empty(), "{p}");
        }
    }

    #[test]
    fn errors_name_line_and_key() {
        let src = "name = \"x\"\n[[channel]]\nlabel = \"C3\"\nmodality = \"ssep-upper\"\nstimulators = [\"left_median\"]\nwindow_ms = [50, -10]\n";
        let e = Protocol::from_toml_str(src).unwrap_err();
        assert_eq!(e.line, Some(6));
        assert_eq!(e.key.as_deref(), Some("channel[0].window_ms"));

        let src = "[[channel]]\nlabel = \"C3\"\nmodality = \"ssep-upper\"\nstimulators = [\"left_median\"]\nhighpass_hz = \"thirty\"\n";
        let e = Protocol::from_toml_str(src).unwrap_err();
        assert_eq!(e.line, Some(5), "{e}");
        assert_eq!(e.key.as_deref(), Some("highpass_hz"), "{e}");

        let src = "[[channel]]\nlabel = \"C3\"\nmodality = \"ssep-upper\"\nstimulators = [\"left_medain\"]\n";
        let e = Protocol::from_toml_str(src).unwrap_err();
        assert_eq!(e.line, Some(4));
        assert!(e.to_string().contains("left_medain"), "{e}");

        let src = "[[channel]]\nlabel = \"C3\"\nmodality = \"ssep-upper\"\nstimulators = [\"left_median\"]\nwindw_ms = [1, 2]\n";
        let e = Protocol::from_toml_str(src).unwrap_err();
        assert_eq!(e.line, Some(5), "{e}");
        assert!(e.to_string().contains("windw_ms"), "{e}");
    }

    #[test]
    fn detectors_key_selects_and_validates() {
        let ch = "[[channel]]\nlabel = \"C3\"\nmodality = \"ssep-upper\"\nstimulators = [\"left_median\"]\n";
        let p = Protocol::from_toml_str(ch).unwrap();
        assert_eq!(p.detectors, DetectorSettings::default());
        assert!(p.detectors.block && !p.detectors.sequential);
        let src = format!(
            "detectors = [\"block\", \"sequential\"]\n[sequential]\nfalse_alarm_hours = 24\ndesign_drop = 0.4\nblock_floor = false\nlatency_cusum = false\n{ch}"
        );
        let d = Protocol::from_toml_str(&src).unwrap().detectors;
        assert!(d.block && d.sequential);
        assert_eq!((d.false_alarm_hours, d.design_drop), (24.0, 0.4));
        assert!(!d.block_floor && DetectorSettings::default().block_floor);
        assert!(!d.latency_cusum && DetectorSettings::default().latency_cusum);
        let e = Protocol::from_toml_str(&format!("detectors = [\"cusum\"]\n{ch}")).unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(1), Some("detectors")), "{e}");
        let e = Protocol::from_toml_str(&format!("[sequential]\ndesign_drop = 2\n{ch}")).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("sequential.design_drop"), "{e}");
    }
}
