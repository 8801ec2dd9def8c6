//! The stack view: one trace's averages stacked like a waterfall, newest on top, coloured by alarm state.

use super::{BIG, hms, waveform_points};
use crate::app::DashboardApp;
use crate::model::StackEntry;
use egui::{Align2, RichText};
use egui_plot::{Line, LineStyle, Plot, PlotPoint, Text};

impl DashboardApp {
    pub(crate) fn stack_ui(&mut self, ui: &mut egui::Ui) {
        let pal = self.palette();
        let traces = self.model.traces();
        let Some(first) = traces.first() else {
            ui.label(RichText::new("Waiting for the first averages…").size(BIG));
            return;
        };
        let mut selected = self
            .stack_trace
            .clone()
            .filter(|s| self.model.trace(s).is_some())
            .unwrap_or_else(|| first.name.clone());
        ui.horizontal(|ui| {
            egui::ComboBox::from_label("Trace")
                .selected_text(&selected)
                .show_ui(ui, |ui| {
                    for t in traces {
                        ui.selectable_value(&mut selected, t.name.clone(), &t.name);
                    }
                });
            ui.label(format!(
                "newest on top, at most {} shown",
                self.config.stack_shown
            ));
            ui.label(RichText::new("clinical alarm").color(pal.clinical).strong());
            ui.label(RichText::new("technical alarm").color(pal.technical).strong());
        });
        let Some(tr) = self.model.trace(&selected) else {
            return;
        };
        let until = self.view_until();
        let entries: Vec<&StackEntry> = tr
            .history()
            .iter()
            .rev()
            .filter(|e| until.is_none_or(|t| e.average.stream_s <= t))
            .take(self.config.stack_shown.max(1))
            .collect();
        let lines: Vec<Vec<[f64; 2]>> = entries
            .iter()
            .map(|e| {
                e.average
                    .waveform
                    .as_ref()
                    .map(|w| waveform_points(w, 0.0))
                    .unwrap_or_default()
            })
            .collect();
        // Spacing: half the median peak-to-peak shown, so that responses overlap their neighbours a little, as
        // on a classic waterfall, and a lost response stands out as a flat line.
        let mut p2p: Vec<f64> = lines
            .iter()
            .map(|l| {
                let (lo, hi) = l.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
                    (lo.min(p[1]), hi.max(p[1]))
                });
                if hi > lo { hi - lo } else { 0.0 }
            })
            .collect();
        p2p.sort_by(f64::total_cmp);
        let spacing = (0.5 * p2p.get(p2p.len() / 2).copied().unwrap_or(1.0)).max(1e-3);
        // Room on the left for the labels.
        let (x_lo, x_hi) = lines
            .iter()
            .flat_map(|l| l.first().zip(l.last()))
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), (f, l)| {
                (a.min(f[0]), b.max(l[0]))
            });
        let x_margin = if x_hi > x_lo {
            x_lo - 0.15 * (x_hi - x_lo)
        } else {
            0.0
        };
        let baseline = tr
            .baseline_until(until)
            .and_then(|b| b.waveform.as_ref())
            .map(|w| waveform_points(w, 0.0));
        let n = entries.len();
        Plot::new(("stack", selected.as_str()))
            .allow_double_click_reset(true)
            .include_x(x_margin)
            .custom_x_axes(vec![super::x_axis("ms")])
            .show_y(false)
            .y_axis_formatter(|_, _| String::new())
            .show(ui, |pui| {
                for (k, (e, pts)) in entries.iter().zip(lines).enumerate() {
                    let offset = (n - 1 - k) as f64 * spacing;
                    let x0 = pts.first().map_or(0.0, |p| p[0]);
                    let fade = 1.0 - 0.6 * k as f32 / n as f32;
                    let colour = match e.alarm {
                        Some(_) => pal.alarm(e.alarm),
                        None => pal.latest.gamma_multiply(fade),
                    };
                    let shifted: Vec<[f64; 2]> = pts.iter().map(|p| [p[0], p[1] + offset]).collect();
                    pui.line(
                        Line::new("", shifted)
                            .id(("stack", e.average.sequence))
                            .color(colour)
                            .width(if k == 0 { 2.5 } else { 1.5 }),
                    );
                    pui.text(
                        Text::new(
                            "",
                            PlotPoint::new(x0, offset),
                            RichText::new(format!("#{} {}", e.average.sequence, hms(e.average.stream_s)))
                                .size(15.0),
                        )
                        .id(("stack label", e.average.sequence))
                        .color(colour)
                        .anchor(Align2::RIGHT_CENTER),
                    );
                }
                if let Some(b) = baseline.filter(|b| !b.is_empty() && n > 0) {
                    let offset = (n - 1) as f64 * spacing;
                    let shifted: Vec<[f64; 2]> = b.iter().map(|p| [p[0], p[1] + offset]).collect();
                    pui.line(
                        Line::new("", shifted)
                            .id("stack baseline")
                            .color(pal.baseline)
                            .width(2.0)
                            .style(LineStyle::dashed_loose()),
                    );
                }
            });
        self.stack_trace = Some(selected);
    }
}
