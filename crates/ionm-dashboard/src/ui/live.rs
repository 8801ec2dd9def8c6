//! The live view: the continuous signal of every channel as min/max columns, one quad per pixel column, so
//! that 32 channels at 20 kHz cost the same as 32 × screen-width points.

use crate::app::DashboardApp;
use crate::source::TraceKind;
use egui::{Align2, FontId, Mesh, Rect, Sense, Shape, pos2};

/// Windows offered, s.
const WINDOWS: [f64; 4] = [2.0, 5.0, 10.0, 20.0];

/// Fixed half-ranges offered, µV (`None`: automatic per channel).
const RANGES: [Option<f32>; 9] = [
    None,
    Some(10.0),
    Some(20.0),
    Some(50.0),
    Some(100.0),
    Some(200.0),
    Some(500.0),
    Some(1000.0),
    Some(5000.0),
];

/// Most columns asked of the source (a 4K screen's width).
const MAX_COLUMNS: usize = 4096;

/// A strip of one column has no area: turn its two vertices into a rectangle one column wide.
fn widen_single(mesh: &mut Mesh, run: usize, width: f32) {
    if run != 1 {
        return;
    }
    let n = mesh.vertices.len();
    let (top, bottom) = (mesh.vertices[n - 2], mesh.vertices[n - 1]);
    let rect = Rect::from_min_max(
        pos2(top.pos.x - 0.5 * width, top.pos.y),
        pos2(top.pos.x + 0.5 * width, bottom.pos.y),
    );
    mesh.vertices.truncate(n - 2);
    mesh.add_colored_rect(rect, top.color);
}

fn range_label(r: Option<f32>) -> String {
    match r {
        None => "Auto".into(),
        Some(v) => format!("±{v:.0} µV"),
    }
}

impl DashboardApp {
    pub(crate) fn live_ui(&mut self, ui: &mut egui::Ui) {
        let pal = self.palette();
        ui.horizontal(|ui| {
            for kind in [TraceKind::Filtered, TraceKind::Raw] {
                if ui
                    .selectable_label(self.trace_kind == kind, kind.label())
                    .clicked()
                {
                    self.trace_kind = kind;
                }
            }
            ui.separator();
            let mut seconds = self.live_seconds;
            egui::ComboBox::from_label("Window")
                .selected_text(format!("{seconds} s"))
                .show_ui(ui, |ui| {
                    for w in WINDOWS {
                        ui.selectable_value(&mut seconds, w, format!("{w} s"));
                    }
                });
            self.live_seconds = seconds;
            let mut range = self.live_range_uv;
            egui::ComboBox::from_label("Scale")
                .selected_text(range_label(range))
                .show_ui(ui, |ui| {
                    for r in RANGES {
                        ui.selectable_value(&mut range, r, range_label(r));
                    }
                });
            self.live_range_uv = range;
        });

        let (rect, _) = ui.allocate_exact_size(ui.available_size(), Sense::hover());
        let label_w = 150.0;
        let trace_rect = Rect::from_min_max(pos2(rect.min.x + label_w, rect.min.y), rect.max);
        let ppp = ui.ctx().pixels_per_point();
        let columns = ((trace_rect.width() * ppp).round().max(16.0) as usize).min(MAX_COLUMNS);
        if self.paused_at.is_none() {
            self.live_valid =
                self.source
                    .live_traces(self.trace_kind, self.live_seconds, columns, &mut self.live);
        }
        let live = &self.live;
        let painter = ui.painter_at(rect);
        let text_colour = ui.visuals().text_color();
        if !self.live_valid || live.channels.is_empty() {
            painter.text(
                rect.center(),
                Align2::CENTER_CENTER,
                "no live signal yet",
                FontId::proportional(28.0),
                text_colour,
            );
            return;
        }
        let n = live.channels.len();
        let row_h = rect.height() / n as f32;
        let label_size = (row_h * 0.6).clamp(9.0, 18.0);
        for (i, ch) in live.channels.iter().enumerate() {
            let row = Rect::from_min_max(
                pos2(rect.min.x, rect.min.y + i as f32 * row_h),
                pos2(rect.max.x, rect.min.y + (i + 1) as f32 * row_h),
            );
            if i % 2 == 1 {
                painter.rect_filled(row, 0.0, pal.row_alt);
            }
            let (lo, hi) = ch
                .columns
                .iter()
                .filter(|p| p.0.is_finite() && p.1.is_finite())
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), p| {
                    (lo.min(p.0), hi.max(p.1))
                });
            let center = if lo <= hi { 0.5 * (lo + hi) } else { 0.0 };
            let half = match self.live_range_uv {
                Some(r) => r,
                None if lo <= hi => (0.5 * (hi - lo) * 1.1).max(1e-3),
                None => 1.0,
            };
            let label = if row_h >= 2.2 * label_size {
                format!("{}\n±{half:.0} µV", ch.label)
            } else {
                ch.label.clone()
            };
            painter.text(
                pos2(rect.min.x + 4.0, row.center().y),
                Align2::LEFT_CENTER,
                label,
                FontId::proportional(label_size),
                text_colour,
            );
            let cols = ch.columns.len();
            if cols == 0 {
                continue;
            }
            let colw = trace_rect.width() / cols as f32;
            let scale = row_h * 0.45 / half;
            let y_of = |v: f32| (row.center().y - (v - center) * scale).clamp(row.min.y, row.max.y);
            let min_px = 1.0 / ppp;
            // A triangle strip through the column centres: two vertices per column (top = max, bottom = min,
            // at least one physical pixel apart), two triangles between neighbours. A steep edge between two
            // columns becomes a parallelogram, so the trace has no holes; a gap (NaN) ends the strip.
            let mut mesh = Mesh::default();
            mesh.reserve_triangles(2 * cols);
            mesh.reserve_vertices(2 * cols + 4);
            let mut run = 0usize;
            for (j, &(a, b)) in ch.columns.iter().enumerate() {
                let x = trace_rect.min.x + (j as f32 + 0.5) * colw;
                if !(a.is_finite() && b.is_finite()) {
                    widen_single(&mut mesh, run, colw.max(min_px));
                    run = 0;
                    continue;
                }
                let top = y_of(b);
                let bottom = y_of(a).max(top + min_px);
                let v = mesh.vertices.len() as u32;
                mesh.colored_vertex(pos2(x, top), pal.trace);
                mesh.colored_vertex(pos2(x, bottom), pal.trace);
                if run > 0 {
                    mesh.add_triangle(v - 2, v - 1, v);
                    mesh.add_triangle(v - 1, v + 1, v);
                }
                run += 1;
            }
            widen_single(&mut mesh, run, colw.max(min_px));
            painter.add(Shape::mesh(mesh));
        }
        let small = FontId::proportional(14.0);
        painter.text(
            pos2(trace_rect.min.x + 4.0, rect.max.y - 2.0),
            Align2::LEFT_BOTTOM,
            format!("−{:.1} s", live.seconds),
            small.clone(),
            text_colour,
        );
        painter.text(
            pos2(rect.max.x - 4.0, rect.max.y - 2.0),
            Align2::RIGHT_BOTTOM,
            format!("{} ({})", super::hms_tenths(live.end_s), live.kind.label()),
            small,
            text_colour,
        );
    }
}
