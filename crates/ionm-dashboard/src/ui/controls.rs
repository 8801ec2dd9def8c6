//! Toolbar (views, pause, baseline, theme, protocol, replay), marker bar and status bar.

use super::{BIG, bytes, capitalise, hms, hms_tenths};
use crate::app::{DashboardApp, ThemeChoice, View};
use crate::source::{BaselineTarget, UserCommand};
use egui::RichText;
use ionm_core::events::SURGICAL_MARKERS;

/// Replay speeds offered.
const SPEEDS: [f64; 8] = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0];

/// Longest free-text note, characters.
const NOTE_MAX_CHARS: usize = 500;

impl DashboardApp {
    /// View tabs, pause display, re-baseline all, theme, protocol, and the replay controls when replaying.
    pub(crate) fn toolbar_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal_wrapped(|ui| {
            for v in View::ALL {
                if ui
                    .selectable_label(self.view == v, RichText::new(v.label()).size(20.0))
                    .clicked()
                {
                    self.view = v;
                }
            }
            ui.separator();
            let paused = self.paused_at.is_some();
            let label = if paused { "Resume display" } else { "Pause display" };
            let r = ui
                .add(egui::Button::selectable(paused, label))
                .on_hover_text("Freezes the waveforms on screen; acquisition, averaging and alarms go on");
            if r.clicked() {
                self.paused_at = if paused { None } else { Some(self.status.stream_s) };
            }
            if ui
                .button("Re-baseline all")
                .on_hover_text("Make the latest average of every trace its new baseline")
                .clicked()
            {
                self.send(UserCommand::SetBaseline(BaselineTarget::All));
            }
            ui.separator();
            for (choice, label) in [(ThemeChoice::Dark, "Dark"), (ThemeChoice::Light, "Light")] {
                if ui.selectable_label(self.theme == choice, label).clicked() {
                    self.theme = choice;
                }
            }
            ui.separator();
            let protocol = std::sync::Arc::clone(&self.status.protocol);
            let name = if protocol.name.is_empty() {
                "no protocol"
            } else {
                protocol.name.as_str()
            };
            ui.label(RichText::new(format!("Protocol: {name}")).strong())
                .on_hover_ui(|ui| {
                    ui.label("Montage:");
                    for (i, m) in protocol.montage.iter().enumerate() {
                        ui.label(format!("{:>2}  {m}", i + 1));
                    }
                });
            if !protocol.montage.is_empty() {
                ui.label(RichText::new(format!("Montage: {}", protocol.montage.join(", "))).small());
            }
            if self.status.replay.is_some() {
                ui.separator();
                // Ids independent of what precedes the transport (the montage label appears once the device
                // has declared itself): a seek typed or dragged across that moment must not be lost.
                let transport = egui::UiBuilder::new().scope_id(ui.make_persistent_id("replay_transport"));
                ui.scope_builder(transport, |ui| self.replay_ui(ui));
            }
        });
    }

    fn replay_ui(&mut self, ui: &mut egui::Ui) {
        let Some(r) = self.status.replay else {
            return;
        };
        let play_label = if r.paused { "Play" } else { "Pause replay" };
        if ui.button(play_label).clicked() {
            self.send(UserCommand::SetReplayPaused { paused: !r.paused });
        }
        let mut speed = r.speed;
        egui::ComboBox::from_label("Speed")
            .selected_text(format!("{speed}×"))
            .show_ui(ui, |ui| {
                for s in SPEEDS {
                    ui.selectable_value(&mut speed, s, format!("{s}×"));
                }
            });
        if speed != r.speed {
            self.send(UserCommand::SetReplaySpeed { speed });
        }
        let duration = if r.duration_s.is_finite() {
            r.duration_s.max(0.0)
        } else {
            0.0
        };
        let dragging_id = ui.make_persistent_id("seek_dragging");
        let dragging = ui.data(|d| d.get_temp::<bool>(dragging_id)).unwrap_or(false);
        if !dragging {
            self.seek_value = r.position_s;
        }
        let slider = egui::Slider::new(&mut self.seek_value, 0.0..=duration)
            .text("Seek")
            .custom_formatter(|v, _| hms(v))
            .custom_parser(parse_hms);
        ui.spacing_mut().slider_width = 400.0;
        let resp = ui.add(slider);
        ui.data_mut(|d| d.insert_temp(dragging_id, resp.dragged()));
        // One seek when the drag ends (not one per frame while dragging), or at once for a typed value.
        if resp.drag_stopped() || (resp.changed() && !resp.dragged()) {
            let stream_s = self.seek_value;
            self.send(UserCommand::Seek { stream_s });
        }
        ui.label(RichText::new(format!("{} / {}", hms(r.position_s), hms(duration))).monospace());
    }

    /// One-click surgical markers and a free-text note.
    pub(crate) fn markers_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal_wrapped(|ui| {
            ui.label(RichText::new("Marker:").strong());
            for kind in SURGICAL_MARKERS {
                if ui.button(RichText::new(capitalise(kind)).size(20.0)).clicked() {
                    self.send(UserCommand::Marker {
                        kind: kind.to_owned(),
                        text: String::new(),
                    });
                }
            }
            ui.separator();
            let edit = egui::TextEdit::singleline(&mut self.note)
                .hint_text("free-text note")
                .char_limit(NOTE_MAX_CHARS)
                .desired_width(320.0);
            let r = ui.add(edit);
            let entered = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            let can_add = !self.note.trim().is_empty();
            if (ui.add_enabled(can_add, egui::Button::new("Add note")).clicked() || entered) && can_add {
                let text = self.note.trim().to_owned();
                self.note.clear();
                self.send(UserCommand::Marker {
                    kind: "note".into(),
                    text,
                });
            }
        });
    }

    /// Source, rate, channels, stream time, frames, CRC errors, gaps, queue, latency, recording, frame time.
    pub(crate) fn status_bar_ui(&mut self, ui: &mut egui::Ui) {
        let pal = self.palette();
        let s = &self.status;
        ui.horizontal_wrapped(|ui| {
            ui.label(
                RichText::new(hms_tenths(s.stream_s))
                    .size(BIG)
                    .monospace()
                    .strong(),
            );
            let stalled = self.stalled_s();
            if stalled >= 2.0 {
                ui.label(
                    RichText::new(format!("NO DATA for {stalled:.0} s"))
                        .size(22.0)
                        .strong()
                        .color(pal.weak),
                );
            }
            if self.paused_at.is_some() {
                ui.label(
                    RichText::new("DISPLAY PAUSED")
                        .size(22.0)
                        .strong()
                        .color(pal.weak),
                );
            }
            let item = |ui: &mut egui::Ui, name: &str, value: String| {
                ui.label(RichText::new(name).small());
                ui.label(RichText::new(value).size(22.0).strong());
            };
            item(ui, "source", s.source.clone());
            item(ui, "rate", format!("{:.0} Hz", s.sample_rate_hz));
            item(ui, "channels", s.channels.to_string());
            item(ui, "frames", s.frames.to_string());
            let crc = RichText::new(s.crc_errors.to_string()).size(22.0).strong();
            ui.label(RichText::new("CRC errors").small());
            ui.label(if s.crc_errors > 0 {
                crc.color(pal.weak)
            } else {
                crc
            });
            let gaps = RichText::new(s.gaps.to_string()).size(22.0).strong();
            ui.label(RichText::new("gaps").small());
            ui.label(if s.gaps > 0 { gaps.color(pal.weak) } else { gaps });
            let queue = if s.queue_capacity > 0 {
                format!("{}/{}", s.queue_depth, s.queue_capacity)
            } else {
                s.queue_depth.to_string()
            };
            item(ui, "queue", queue);
            item(ui, "latency", super::opt(s.latency_ms, 2) + " ms");
            match &s.recording {
                Some(r) => {
                    let file = r.path.file_name().map_or_else(
                        || r.path.display().to_string(),
                        |f| f.to_string_lossy().into_owned(),
                    );
                    item(ui, "recording", format!("{file} {}", bytes(r.bytes)));
                }
                None => item(ui, "recording", "off".into()),
            }
            if let Some(r) = s.replay {
                item(
                    ui,
                    "replay",
                    format!("{}× {}", r.speed, if r.paused { "paused" } else { "" }),
                );
            }
            ui.label(RichText::new(format!("UI {:.1} ms", self.frame_ms)).small());
        });
    }
}

/// Parses `H:MM:SS`, `MM:SS` or plain seconds.
fn parse_hms(s: &str) -> Option<f64> {
    let mut total = 0.0;
    for part in s.trim().split(':') {
        let v: f64 = part.trim().parse().ok()?;
        if !v.is_finite() || v < 0.0 {
            return None;
        }
        total = total * 60.0 + v;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parse_hms_accepts_seconds_and_clock_times() {
        assert_eq!(super::parse_hms("1:02:03"), Some(3723.0));
        assert_eq!(super::parse_hms("90"), Some(90.0));
        assert_eq!(super::parse_hms("a:1"), None);
        assert_eq!(super::parse_hms("-3"), None);
    }
}
