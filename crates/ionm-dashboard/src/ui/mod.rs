//! The views, as `impl DashboardApp` blocks, and what they share: colours, text sizes, formatting.

mod alarms;
mod averages;
mod controls;
mod live;
mod stack;
mod trends;

use egui::{Color32, FontId, TextStyle};
use ionm_core::events::{AlarmClass, AlarmKind, Waveform};

/// Size of the large figures (amplitude, latency, stream time), points.
pub(crate) const BIG: f32 = 30.0;

/// Colours of one theme. Clinical red and technical amber are the conventional alarm colours; the alarm class
/// is always written out too, so colour is never the only cue.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Palette {
    pub(crate) clinical: Color32,
    pub(crate) clinical_muted: Color32,
    pub(crate) technical: Color32,
    pub(crate) technical_muted: Color32,
    /// Text on a saturated alarm fill.
    pub(crate) on_clinical: Color32,
    pub(crate) on_technical: Color32,
    pub(crate) on_muted: Color32,
    pub(crate) baseline: Color32,
    pub(crate) latest: Color32,
    pub(crate) marker: Color32,
    pub(crate) ok: Color32,
    pub(crate) weak: Color32,
    pub(crate) trace: Color32,
    pub(crate) row_alt: Color32,
}

impl Palette {
    pub(crate) fn new(dark: bool) -> Self {
        if dark {
            Self {
                clinical: Color32::from_rgb(220, 30, 30),
                clinical_muted: Color32::from_rgb(95, 35, 35),
                technical: Color32::from_rgb(255, 176, 0),
                technical_muted: Color32::from_rgb(100, 80, 20),
                on_clinical: Color32::WHITE,
                on_technical: Color32::BLACK,
                on_muted: Color32::from_gray(225),
                baseline: Color32::from_rgb(90, 170, 255),
                latest: Color32::from_gray(240),
                marker: Color32::from_rgb(210, 140, 255),
                ok: Color32::from_rgb(90, 210, 120),
                weak: Color32::from_rgb(255, 176, 0),
                trace: Color32::from_rgb(120, 230, 160),
                row_alt: Color32::from_gray(32),
            }
        } else {
            Self {
                clinical: Color32::from_rgb(200, 0, 0),
                clinical_muted: Color32::from_rgb(245, 200, 200),
                technical: Color32::from_rgb(245, 160, 0),
                technical_muted: Color32::from_rgb(250, 225, 170),
                on_clinical: Color32::WHITE,
                on_technical: Color32::BLACK,
                on_muted: Color32::from_gray(20),
                baseline: Color32::from_rgb(0, 90, 200),
                latest: Color32::from_gray(10),
                marker: Color32::from_rgb(120, 30, 170),
                ok: Color32::from_rgb(0, 120, 50),
                weak: Color32::from_rgb(170, 90, 0),
                trace: Color32::from_rgb(0, 90, 40),
                row_alt: Color32::from_gray(238),
            }
        }
    }

    /// The colour of an alarm class (`None`: the normal trace colour).
    pub(crate) fn alarm(&self, class: Option<AlarmClass>) -> Color32 {
        match class {
            Some(AlarmClass::Clinical) => self.clinical,
            Some(AlarmClass::Technical) => self.technical,
            None => self.latest,
        }
    }
}

/// Large text for an OR monitor read from 2 m: body 18 pt, headings 26 pt (× `scale`), and big click targets.
pub(crate) fn apply_text_sizes(style: &mut egui::Style, scale: f32) {
    use egui::FontFamily::{Monospace, Proportional};
    style.text_styles = [
        (TextStyle::Small, FontId::new(14.0 * scale, Proportional)),
        (TextStyle::Body, FontId::new(18.0 * scale, Proportional)),
        (TextStyle::Button, FontId::new(18.0 * scale, Proportional)),
        (TextStyle::Monospace, FontId::new(18.0 * scale, Monospace)),
        (TextStyle::Heading, FontId::new(26.0 * scale, Proportional)),
    ]
    .into();
    style.spacing.interact_size.y = 30.0 * scale;
    style.spacing.button_padding = egui::vec2(10.0, 5.0) * scale;
    style.spacing.item_spacing = egui::vec2(10.0, 6.0) * scale;
}

/// An x axis whose tick labels show at 30 px spacing (egui_plot's default of 60 px leaves a 70 ms average
/// with a single label at the large text sizes used here).
pub(crate) fn x_axis(label: &str) -> egui_plot::AxisHints<'static> {
    egui_plot::AxisHints::new_x()
        .label(label.to_owned())
        .label_spacing(30.0..=45.0)
}

/// `H:MM:SS` of a stream time (`--:--:--` when not finite).
pub(crate) fn hms(s: f64) -> String {
    if !s.is_finite() {
        return "--:--:--".into();
    }
    let total = s.max(0.0).floor() as u64;
    format!("{}:{:02}:{:02}", total / 3600, total / 60 % 60, total % 60)
}

/// `H:MM:SS.s` of a stream time.
pub(crate) fn hms_tenths(s: f64) -> String {
    if !s.is_finite() {
        return "--:--:--.-".into();
    }
    let s = s.max(0.0);
    let tenths = ((s * 10.0).floor() as u64) % 10;
    format!("{}.{tenths}", hms(s))
}

/// Bytes with a binary-free SI unit (`12.3 MB`).
pub(crate) fn bytes(n: u64) -> String {
    let n = n as f64;
    if n < 1e3 {
        format!("{n:.0} B")
    } else if n < 1e6 {
        format!("{:.1} kB", n / 1e3)
    } else if n < 1e9 {
        format!("{:.1} MB", n / 1e6)
    } else {
        format!("{:.2} GB", n / 1e9)
    }
}

/// A value with `decimals`, or an en dash when missing or not finite.
pub(crate) fn opt(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.decimals$}"),
        _ => "–".into(),
    }
}

/// An amplitude in µV with three significant figures at most (`2.31`, `23.1`, `231`), or an en dash.
pub(crate) fn amp(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() && x.abs() >= 100.0 => format!("{x:.0}"),
        Some(x) if x.is_finite() && x.abs() >= 10.0 => format!("{x:.1}"),
        other => opt(other, 2),
    }
}

/// A ratio as a percentage, or an en dash.
pub(crate) fn pct(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{:.0}%", x * 100.0),
        _ => "–".into(),
    }
}

/// Words for an alarm kind.
pub(crate) fn kind_words(kind: AlarmKind) -> &'static str {
    match kind {
        AlarmKind::AmplitudeDrop => "amplitude drop",
        AlarmKind::LatencyIncrease => "latency increase",
        AlarmKind::ResponseLost => "response lost",
        AlarmKind::ChangeDetected => "change detected",
        AlarmKind::SignalLost => "signal lost",
        AlarmKind::Noisy => "noisy",
        AlarmKind::ElectrodeOff => "electrode off",
        AlarmKind::Saturation => "saturation",
        AlarmKind::LinkErrors => "link errors",
        AlarmKind::Overrun => "overrun",
    }
}

/// Capitalised first letter (`incision` → `Incision`).
pub(crate) fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Most points drawn for one waveform (longer ones are strided; averages are a few hundred points).
const MAX_WAVEFORM_POINTS: usize = 20_000;

/// A waveform as plot points (x ms, y µV + `offset`), skipping non-finite values; empty if the time base is
/// unusable.
pub(crate) fn waveform_points(wf: &Waveform, offset: f64) -> Vec<[f64; 2]> {
    if !valid_time_base(wf) {
        return Vec::new();
    }
    let stride = wf.values_uv.len().div_ceil(MAX_WAVEFORM_POINTS).max(1);
    wf.values_uv
        .iter()
        .enumerate()
        .step_by(stride)
        .filter(|(_, v)| v.is_finite())
        .map(|(i, &v)| [wf.t0_ms + i as f64 * wf.dt_ms, f64::from(v) + offset])
        .collect()
}

/// True if the waveform has samples and a finite, positive sample period.
pub(crate) fn valid_time_base(wf: &Waveform) -> bool {
    !wf.values_uv.is_empty() && wf.t0_ms.is_finite() && wf.dt_ms.is_finite() && wf.dt_ms > 0.0
}

/// Time span of a waveform, ms.
pub(crate) fn waveform_span(wf: &Waveform) -> Option<(f64, f64)> {
    valid_time_base(wf).then(|| (wf.t0_ms, wf.t0_ms + (wf.values_uv.len() - 1) as f64 * wf.dt_ms))
}

/// The waveform's value at `ms`, linearly interpolated (`None` outside it or on a non-finite sample).
pub(crate) fn waveform_at(wf: &Waveform, ms: f64) -> Option<f64> {
    let (a, b) = waveform_span(wf)?;
    if !(a..=b).contains(&ms) {
        return None;
    }
    let x = (ms - wf.t0_ms) / wf.dt_ms;
    let i = (x.floor() as usize).min(wf.values_uv.len() - 1);
    let j = (i + 1).min(wf.values_uv.len() - 1);
    let f = x - i as f64;
    let v = f64::from(wf.values_uv[i]) * (1.0 - f) + f64::from(wf.values_uv[j]) * f;
    v.is_finite().then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting() {
        assert_eq!(hms(3725.9), "1:02:05");
        assert_eq!(hms_tenths(65.25), "0:01:05.2");
        assert_eq!(hms(f64::NAN), "--:--:--");
        assert_eq!(bytes(1_234_567), "1.2 MB");
        assert_eq!(pct(Some(0.456)), "46%");
        assert_eq!(amp(Some(303.81)), "304");
        assert_eq!(amp(Some(-12.345)), "-12.3");
        assert_eq!(amp(Some(1.234)), "1.23");
        assert_eq!(amp(None), "–");
        assert_eq!(opt(Some(f64::INFINITY), 1), "–");
        assert_eq!(capitalise("incision"), "Incision");
    }

    #[test]
    fn waveform_interpolation_is_linear() {
        let wf = Waveform {
            t0_ms: -1.0,
            dt_ms: 0.5,
            values_uv: vec![0.0, 2.0, 4.0, f32::NAN],
        };
        // Analytic: halfway between samples 1 (t = −0.5, 2 µV) and 2 (t = 0, 4 µV).
        assert_eq!(waveform_at(&wf, -0.25), Some(3.0));
        assert_eq!(waveform_at(&wf, 5.0), None);
        assert_eq!(waveform_at(&wf, 0.5), None);
        assert_eq!(waveform_points(&wf, 1.0).len(), 3);
        let bad = Waveform {
            t0_ms: 0.0,
            dt_ms: 0.0,
            values_uv: vec![1.0],
        };
        assert!(waveform_points(&bad, 0.0).is_empty());
        assert_eq!(waveform_at(&bad, 0.0), None);
    }
}
