//! The trends view: amplitude and latency in % of baseline over the whole case, alarm thresholds, and surgical
//! markers as vertical lines.

use super::{BIG, capitalise};
use crate::app::DashboardApp;
use egui::{Align2, Color32, RichText};
use egui_plot::{HLine, Legend, Line, LineStyle, Plot, PlotPoint, PlotPoints, Text, VLine};

/// Markers drawn at most (the newest).
const MAX_MARKERS_DRAWN: usize = 200;

/// Okabe–Ito colours, distinguishable with the common colour-vision deficiencies.
pub(crate) const TRACE_COLOURS: [Color32; 7] = [
    Color32::from_rgb(230, 159, 0),
    Color32::from_rgb(86, 180, 233),
    Color32::from_rgb(0, 158, 115),
    Color32::from_rgb(240, 228, 66),
    Color32::from_rgb(0, 114, 178),
    Color32::from_rgb(204, 121, 167),
    Color32::from_rgb(213, 94, 0),
];

impl DashboardApp {
    pub(crate) fn trends_ui(&mut self, ui: &mut egui::Ui) {
        let pal = self.palette();
        let model = &self.model;
        if model.traces().is_empty() {
            ui.label(RichText::new("Waiting for the first averages…").size(BIG));
            return;
        }
        let protocol = &self.status.protocol;
        let mut amp_thr: Vec<f64> = protocol
            .thresholds
            .iter()
            .filter_map(|t| t.amplitude_ratio)
            .collect();
        let mut lat_thr: Vec<f64> = protocol
            .thresholds
            .iter()
            .filter_map(|t| t.latency_ratio)
            .collect();
        for v in [&mut amp_thr, &mut lat_thr] {
            v.retain(|x| x.is_finite());
            v.sort_by(f64::total_cmp);
            v.dedup();
        }
        let markers: Vec<(f64, String)> = model
            .markers()
            .iter()
            .rev()
            .take(MAX_MARKERS_DRAWN)
            .filter(|m| m.stream_s.is_finite())
            .map(|m| {
                let label = if m.text.is_empty() {
                    capitalise(&m.kind)
                } else {
                    m.text.clone()
                };
                (m.stream_s / 60.0, label)
            })
            .collect();
        let link = egui::Id::unique("ionm_trends_link");
        let h = ((ui.available_height() - 2.0 * ui.spacing().item_spacing.y) / 2.0).max(150.0);
        let marker_colour = pal.marker;
        for (which, title, thresholds, include) in [
            (0, "Amplitude, % of baseline", &amp_thr, 0.0),
            (1, "Latency, % of baseline", &lat_thr, 90.0),
        ] {
            Plot::new(("trend", which))
                .height(h)
                .link_axis(link, [true, false])
                .link_cursor(link, [true, false])
                .legend(Legend::default())
                .custom_x_axes(vec![super::x_axis("stream time, min")])
                .y_axis_label(title)
                .include_y(include)
                .include_y(120.0)
                .include_x(0.0)
                .show(ui, |pui| {
                    pui.hline(
                        HLine::new("", 100.0)
                            .id("hundred")
                            .color(Color32::GRAY)
                            .style(LineStyle::dotted_loose()),
                    );
                    for (k, t) in thresholds.iter().enumerate() {
                        pui.hline(
                            HLine::new(format!("alarm at {:.0}%", t * 100.0), t * 100.0)
                                .id(("threshold", k))
                                .color(pal.clinical)
                                .width(2.0)
                                .style(LineStyle::dashed_loose()),
                        );
                    }
                    for (i, tr) in model.traces().iter().enumerate() {
                        let pts = if which == 0 {
                            tr.amplitude_trend()
                        } else {
                            tr.latency_trend()
                        };
                        let colour = TRACE_COLOURS[i % TRACE_COLOURS.len()];
                        pui.line(
                            Line::new(tr.name.clone(), PlotPoints::Borrowed(pts))
                                .id(("trend", i))
                                .color(colour)
                                .width(2.5),
                        );
                    }
                    // Labels at a height taken from the data, not from the plot bounds: a label placed at the
                    // top of the bounds would widen the automatic bounds every frame.
                    let top = model
                        .traces()
                        .iter()
                        .flat_map(|t| t.amplitude_trend().iter().map(|p| p.y))
                        .filter(|y| y.is_finite())
                        .fold(120.0, f64::max)
                        .min(1000.0);
                    for (k, (x, label)) in markers.iter().enumerate() {
                        pui.vline(
                            VLine::new("", *x)
                                .id(("marker", k))
                                .color(marker_colour)
                                .width(1.5),
                        );
                        if which == 0 {
                            pui.text(
                                Text::new(
                                    "",
                                    PlotPoint::new(*x, top),
                                    RichText::new(label).size(15.0).strong(),
                                )
                                .id(("marker label", k))
                                .color(marker_colour)
                                .anchor(Align2::LEFT_TOP),
                            );
                        }
                    }
                });
        }
    }
}
