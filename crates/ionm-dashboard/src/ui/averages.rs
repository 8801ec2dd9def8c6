//! The averages view: per trace, the latest average over its baseline, big figures, quality, peak markers that
//! the user can drag to correct.

use super::{BIG, amp, hms, opt, pct, waveform_at, waveform_points, waveform_span};
use crate::app::{DashboardApp, MarkerHit, PeakDrag};
use crate::model::StackEntry;
use crate::source::{BaselineTarget, UserCommand};
use egui::{Align2, RichText};
use egui_plot::{Line, LineStyle, MarkerShape, Plot, PlotPoint, Points, Text};
use ionm_core::events::{AlarmClass, BaselineEvent, BaselineOrigin, CorrectionEvent, EvidenceValue};
use std::sync::Arc;

/// Fsp at or above which a response is present at 99 % (Elberling & Don).
const FSP_PRESENT: f64 = 3.1;

/// Pixels within which a press grabs a peak marker.
const GRAB_RADIUS: f32 = 18.0;

/// A peak marker to draw.
struct Mark {
    peak: String,
    latency_ms: f64,
    /// Where it sits on the trace.
    y: f64,
    /// The amplitude shown (the pipeline's convention).
    amplitude_uv: Option<f64>,
    corrected: bool,
    editing: bool,
}

impl DashboardApp {
    pub(crate) fn averages_ui(&mut self, ui: &mut egui::Ui) {
        self.marker_hits.clear();
        let n = self.model.traces().len();
        if n == 0 {
            ui.label(RichText::new("Waiting for the first averages…").size(BIG));
            return;
        }
        let width = ui.available_width();
        let cols = if width > 1500.0 {
            3
        } else if width > 900.0 {
            2
        } else {
            1
        }
        .min(n);
        let rows = n.div_ceil(cols);
        let gap = ui.spacing().item_spacing.y;
        let panel_h = ((ui.available_height() - gap * rows as f32) / rows as f32).max(280.0);
        // Panels in montage order (the device's channel order, then first appearance), not in the order the
        // first averages happened to arrive (single-sweep MEPs would always come first).
        let mut order: Vec<usize> = (0..n).collect();
        if let Some(device) = self.model.device() {
            let traces = self.model.traces();
            order.sort_by_key(|&i| {
                let pos = device.channels.iter().position(|c| c.label == traces[i].channel);
                (pos.unwrap_or(usize::MAX), i)
            });
        }
        egui::ScrollArea::vertical()
            .id_salt("averages_scroll")
            .show(ui, |ui| {
                ui.columns(cols, |columns| {
                    for (c, col) in columns.iter_mut().enumerate() {
                        for k in (c..n).step_by(cols) {
                            self.trace_panel_ui(col, order[k], panel_h);
                        }
                    }
                });
            });
    }

    fn trace_panel_ui(&mut self, ui: &mut egui::Ui, idx: usize, height: f32) {
        let pal = self.palette();
        let until = self.view_until();
        let (name, channel, modality, entry, baseline, alarm) = {
            let tr = &self.model.traces()[idx];
            (
                tr.name.clone(),
                tr.channel.clone(),
                tr.modality.clone(),
                tr.average_until(until).cloned(),
                tr.baseline_until(until).cloned(),
                self.model.trace_alarm_class(tr),
            )
        };
        let thresholds = self
            .status
            .protocol
            .thresholds
            .iter()
            .find(|t| t.trace == name)
            .cloned();
        let stroke = match alarm {
            Some(_) => egui::Stroke::new(4.0, pal.alarm(alarm)),
            None => ui.visuals().widgets.noninteractive.bg_stroke,
        };
        egui::Frame::group(ui.style()).stroke(stroke).show(ui, |ui| {
            let bottom = ui.cursor().min.y + height - 16.0;
            ui.set_min_height(height - 16.0);
            ui.set_width(ui.available_width());
            ui.horizontal(|ui| {
                ui.label(RichText::new(&name).heading().strong().color(pal.alarm(alarm)));
                match alarm {
                    Some(AlarmClass::Clinical) => {
                        ui.label(RichText::new("CLINICAL ALARM").strong().color(pal.clinical));
                    }
                    Some(AlarmClass::Technical) => {
                        ui.label(RichText::new("TECHNICAL ALARM").strong().color(pal.technical));
                    }
                    None => {}
                }
                ui.label(RichText::new(format!("{channel} · {}", modality.to_uppercase())).small());
                // The button's id is the trace's, not its place in the layout (an alarm label appears before
                // it): a click always re-baselines the trace it was aimed at, or none.
                let button = egui::UiBuilder::new()
                    .scope_id(ui.make_persistent_id(("ionm_rebaseline", &name)))
                    .layout(egui::Layout::right_to_left(egui::Align::Center));
                ui.scope_builder(button, |ui| {
                    if ui
                        .button("Re-baseline")
                        .on_hover_text(format!("Make the latest average of {name} its new baseline"))
                        .clicked()
                    {
                        self.send(UserCommand::SetBaseline(BaselineTarget::Trace(name.clone())));
                    }
                });
            });
            let Some(entry) = entry else {
                ui.label("no average yet");
                return;
            };
            let evidence = self
                .model
                .stats()
                .and_then(|st| st.evidence.iter().find(|e| e.trace == name))
                .cloned();
            figures_ui(
                ui,
                &pal,
                &entry,
                baseline.as_deref(),
                thresholds.as_ref(),
                evidence.as_ref(),
            );
            let plot_h = (bottom - ui.cursor().min.y).max(140.0);
            self.average_plot_ui(ui, &name, &entry, baseline.as_ref(), alarm, plot_h);
        });
    }

    fn average_plot_ui(
        &mut self,
        ui: &mut egui::Ui,
        name: &str,
        entry: &StackEntry,
        baseline: Option<&Arc<BaselineEvent>>,
        alarm: Option<AlarmClass>,
        plot_h: f32,
    ) {
        let pal = self.palette();
        let avg = &entry.average;
        let Some(wf) = avg.waveform.as_ref().filter(|w| waveform_span(w).is_some()) else {
            ui.label("no waveform");
            return;
        };
        let latest = waveform_points(wf, 0.0);
        let base = baseline
            .and_then(|b| b.waveform.as_ref())
            .map(|w| waveform_points(w, 0.0));
        let drag = self
            .drag
            .clone()
            .filter(|d| d.trace == name && d.sequence == avg.sequence);
        let mean = {
            let (s, k) = latest.iter().fold((0.0, 0usize), |(s, k), p| (s + p[1], k + 1));
            if k > 0 { s / k as f64 } else { 0.0 }
        };
        let mut marks = Vec::new();
        for p in &avg.peaks {
            let corr = self
                .model
                .trace(name)
                .and_then(|t| t.correction(avg.sequence, &p.name));
            let (lat, amp, corrected) = match corr {
                Some(c) => (Some(c.latency_ms), Some(c.amplitude_uv), true),
                None => (p.latency_ms, p.amplitude_uv, false),
            };
            let Some(mut lat) = lat.filter(|l| l.is_finite()) else {
                continue;
            };
            let mut amp = amp.filter(|a| a.is_finite());
            let editing = drag.as_ref().filter(|d| d.peak == p.name);
            if let Some(d) = editing {
                lat = d.latency_ms;
                amp = waveform_at(wf, lat).map(|v| v + d.offset_uv);
            }
            let Some(y) = waveform_at(wf, lat).or(amp) else {
                continue;
            };
            marks.push(Mark {
                peak: p.name.clone(),
                latency_ms: lat,
                y,
                amplitude_uv: amp,
                corrected,
                editing: editing.is_some(),
            });
        }
        let line_colour = if alarm.is_some() {
            pal.alarm(alarm)
        } else {
            pal.latest
        };
        let resp = Plot::new(("average", name))
            .height(plot_h)
            .allow_drag(false)
            .allow_zoom(false)
            .allow_scroll(false)
            .allow_boxed_zoom(false)
            .allow_double_click_reset(false)
            // Room above and below the trace for the two-line peak labels.
            .set_margin_fraction(egui::vec2(0.02, 0.3))
            .custom_x_axes(vec![super::x_axis("ms")])
            .y_axis_label("µV")
            .show(ui, |pui| {
                if let Some(b) = base.filter(|b| !b.is_empty()) {
                    pui.line(
                        Line::new("", b)
                            .id("baseline")
                            .color(pal.baseline)
                            .width(2.0)
                            .style(LineStyle::dashed_loose()),
                    );
                }
                pui.line(Line::new("", latest).id("latest").color(line_colour).width(2.5));
                for (k, m) in marks.iter().enumerate() {
                    let shape = if m.corrected || m.editing {
                        MarkerShape::Diamond
                    } else {
                        MarkerShape::Circle
                    };
                    pui.points(
                        Points::new("", vec![[m.latency_ms, m.y]])
                            .id(("peak", k))
                            .radius(7.0)
                            .shape(shape)
                            .filled(true)
                            .color(pal.marker),
                    );
                    let label = format!(
                        "{}{}\n{:.1} ms  {} µV",
                        m.peak,
                        if m.corrected && !m.editing { "*" } else { "" },
                        m.latency_ms,
                        amp(m.amplitude_uv)
                    );
                    // Troughs get their label below, crests above.
                    let anchor = if m.y < mean {
                        Align2::CENTER_TOP
                    } else {
                        Align2::CENTER_BOTTOM
                    };
                    pui.text(
                        Text::new(
                            "",
                            PlotPoint::new(m.latency_ms, m.y),
                            RichText::new(label).size(17.0).strong(),
                        )
                        .id(("peak label", k))
                        .color(pal.marker)
                        .anchor(anchor),
                    );
                }
            });
        for m in &marks {
            self.marker_hits.push(MarkerHit {
                trace: name.to_owned(),
                peak: m.peak.clone(),
                pos: resp
                    .transform
                    .position_from_point(&PlotPoint::new(m.latency_ms, m.y)),
            });
        }
        self.peak_drag(ui, name, entry, &marks, &resp.response, &resp.transform);
    }

    /// Grabs a marker on press-and-drag, moves it along the trace, and sends the correction on release.
    fn peak_drag(
        &mut self,
        ui: &egui::Ui,
        name: &str,
        entry: &StackEntry,
        marks: &[Mark],
        response: &egui::Response,
        transform: &egui_plot::PlotTransform,
    ) {
        let avg = &entry.average;
        let Some(wf) = avg.waveform.as_ref() else {
            return;
        };
        let Some((t_lo, t_hi)) = waveform_span(wf) else {
            return;
        };
        if response.drag_started()
            && let Some(origin) = ui.input(|i| i.pointer.press_origin())
        {
            let nearest = marks
                .iter()
                .map(|m| {
                    (
                        m,
                        transform
                            .position_from_point(&PlotPoint::new(m.latency_ms, m.y))
                            .distance(origin),
                    )
                })
                .filter(|(_, d)| *d <= GRAB_RADIUS)
                .min_by(|a, b| a.1.total_cmp(&b.1));
            if let Some((m, _)) = nearest {
                let offset_uv = match (m.amplitude_uv, waveform_at(wf, m.latency_ms)) {
                    (Some(a), Some(v)) => a - v,
                    _ => 0.0,
                };
                self.drag = Some(PeakDrag {
                    trace: name.to_owned(),
                    sequence: avg.sequence,
                    peak: m.peak.clone(),
                    latency_ms: m.latency_ms,
                    offset_uv,
                });
            }
        }
        let Some(mut d) = self.drag.clone().filter(|d| d.trace == name) else {
            return;
        };
        if let Some(p) = response.interact_pointer_pos() {
            d.latency_ms = transform.value_from_position(p).x.clamp(t_lo, t_hi);
        }
        if response.drag_stopped() {
            self.drag = None;
            if d.sequence != avg.sequence {
                return;
            }
            let Some(v) = waveform_at(wf, d.latency_ms) else {
                return;
            };
            let c = CorrectionEvent {
                stream_s: self.status.stream_s,
                trace: name.to_owned(),
                sequence: d.sequence,
                peak: d.peak.clone(),
                latency_ms: d.latency_ms,
                amplitude_uv: v + d.offset_uv,
            };
            self.model.apply_correction(&c);
            self.send(UserCommand::CorrectPeak(c));
        } else if response.dragged() {
            self.drag = Some(d);
        } else if !ui.input(|i| i.pointer.any_down()) {
            // The drag ended elsewhere (pointer left the window): drop it without a correction.
            self.drag = None;
        }
    }
}

/// Amplitude and latency in large figures with their % of baseline; quality and sweeps below.
fn figures_ui(
    ui: &mut egui::Ui,
    pal: &super::Palette,
    e: &StackEntry,
    baseline: Option<&BaselineEvent>,
    thresholds: Option<&crate::source::TraceThresholds>,
    evidence: Option<&EvidenceValue>,
) {
    let a = &e.average;
    let amp_low = matches!(
        (a.amplitude_ratio, thresholds.and_then(|t| t.amplitude_ratio)),
        (Some(r), Some(t)) if r <= t
    );
    let lat_high = matches!(
        (a.latency_ratio, thresholds.and_then(|t| t.latency_ratio)),
        (Some(r), Some(t)) if r >= t
    );
    let normal = ui.visuals().strong_text_color();
    ui.horizontal(|ui| {
        ui.label(RichText::new("Amp").small());
        ui.label(
            RichText::new(format!("{} µV", amp(a.amplitude_uv)))
                .size(BIG)
                .strong(),
        );
        let c = if amp_low { pal.clinical } else { normal };
        ui.label(RichText::new(pct(a.amplitude_ratio)).size(BIG).strong().color(c));
        ui.add_space(16.0);
        ui.label(RichText::new("Lat").small());
        ui.label(
            RichText::new(format!("{} ms", opt(a.latency_ms, 1)))
                .size(BIG)
                .strong(),
        );
        let c = if lat_high { pal.clinical } else { normal };
        ui.label(RichText::new(pct(a.latency_ratio)).size(BIG).strong().color(c));
    });
    ui.horizontal_wrapped(|ui| {
        let fsp = RichText::new(format!("Fsp {}", opt(a.fsp, 1))).strong();
        let weak = a.fsp.is_some_and(|f| f < FSP_PRESENT);
        ui.label(if weak {
            fsp.color(pal.weak)
        } else {
            fsp.color(pal.ok)
        })
        .on_hover_text("Fsp ≥ 3.1: a response is present at 99 % (Elberling & Don)");
        ui.label(format!("noise {} µV", opt(a.residual_noise_uv, 2)));
        let s = if a.sweeps == 1 { "" } else { "s" };
        ui.label(format!("{} sweep{s} ({} rejected)", a.sweeps, a.rejected));
        ui.label(format!("#{} at {}", a.sequence, hms(a.stream_s)));
        // The sequential detector's evidence of a drop, which rises sweep by sweep before a block average can
        // confirm anything: amber from half the threshold, red at it.
        if let Some(ev) = evidence.filter(|ev| ev.insensitive) {
            ui.label(RichText::new("sequential off: too noisy").color(pal.weak)).on_hover_text(format!(
                "single sweeps on this trace are too noisy (s.d. {:.1}× the baseline amplitude) for the sequential \
                 detector to see even a lost response sooner than the block averages; the block criteria still apply. Re-baseline to retry.",
                ev.sigma
            ));
        } else if let Some(ev) = evidence.filter(|ev| ev.threshold > 0.0) {
            let text = ui.visuals().text_color();
            let colour = |share: f64| {
                if share >= 1.0 {
                    pal.clinical
                } else if share >= 0.5 {
                    pal.technical
                } else {
                    text
                }
            };
            let share = ev.evidence / ev.threshold;
            let c = if ev.active { pal.clinical } else { colour(share) };
            ui.label(
                RichText::new(format!("evidence {:.0}%", 100.0 * share.max(0.0)))
                    .strong()
                    .color(c),
            )
            .on_hover_text(format!(
                "sequential detector (CUSUM over single sweeps): {:.1} of threshold {:.1}; recent amplitude \
                     {:.0}% of baseline",
                ev.evidence,
                ev.threshold,
                100.0 * ev.amplitude
            ));
            // Its latency CUSUM (a matched filter for a later response), once calibrated.
            if ev.latency_threshold > 0.0 {
                let share = ev.latency_evidence / ev.latency_threshold;
                ui.label(
                    RichText::new(format!("latency evidence {:.0}%", 100.0 * share.max(0.0)))
                        .strong()
                        .color(colour(share)),
                )
                .on_hover_text(format!(
                    "sequential detector, latency CUSUM: {:.1} of threshold {:.1}{}",
                    ev.latency_evidence,
                    ev.latency_threshold,
                    ev.latency_shift_ms
                        .map(|s| format!("; recent latency shift {s:+.2} ms"))
                        .unwrap_or_default()
                ));
            }
        }
        if let Some(why) = &a.suspended {
            ui.label(RichText::new(format!("criteria suspended: {why}")).color(pal.weak));
        }
        match baseline {
            Some(b) => {
                let origin = match b.origin {
                    BaselineOrigin::Automatic => "auto",
                    BaselineOrigin::User => "user",
                };
                ui.label(
                    RichText::new(format!("BL #{} ({origin}) at {}", b.number, hms(b.stream_s)))
                        .color(pal.baseline),
                );
            }
            None => {
                ui.label(RichText::new("no baseline").color(pal.weak));
            }
        }
    });
}
