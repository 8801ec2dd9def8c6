//! The alarm banner and the log view.

use super::{hms, hms_tenths, kind_words};
use crate::app::DashboardApp;
use crate::model::ActiveAlarm;
use crate::source::UserCommand;
use egui::{Frame, RichText};
use ionm_core::events::{AlarmClass, AlarmState};

/// Banner rows shown at most; the rest are summarised (all are in the log view).
const BANNER_ROWS: usize = 4;

impl DashboardApp {
    /// The banner of active alarms: unacknowledged clinical first (red, blinking at 1 Hz), then technical
    /// (amber), acknowledged ones muted; each with an Acknowledge button until acknowledged.
    pub(crate) fn banner_ui(&mut self, ui: &mut egui::Ui) {
        let pal = self.palette();
        let mut alarms: Vec<&ActiveAlarm> = self.model.active_alarms().values().collect();
        alarms.sort_by_key(|a| {
            (
                a.is_acknowledged(),
                a.raised.class != AlarmClass::Clinical,
                std::cmp::Reverse(a.raised.id),
            )
        });
        // Blink from the injected clock, so that tests see the same frame every time.
        let blink_on = (self.now_s * 2.0).floor() as i64 % 2 == 0;
        let mut acks = Vec::new();
        for a in alarms.iter().take(BANNER_ROWS) {
            let ev = &a.raised;
            let clinical = ev.class == AlarmClass::Clinical;
            let (fill, text) = match (clinical, a.is_acknowledged()) {
                (true, false) if blink_on => (pal.clinical, pal.on_clinical),
                (true, false) => (
                    pal.clinical_muted.lerp_to_gamma(pal.clinical, 0.6),
                    pal.on_clinical,
                ),
                (false, false) => (pal.technical, pal.on_technical),
                (true, true) => (pal.clinical_muted, pal.on_muted),
                (false, true) => (pal.technical_muted, pal.on_muted),
            };
            let class = if clinical {
                "CLINICAL ALARM"
            } else {
                "TECHNICAL ALARM"
            };
            let who = ev.trace.as_deref().unwrap_or("device");
            let mut title = format!("{class} · {who} · {}", kind_words(ev.kind));
            if ev.systemic {
                title.push_str(" · systemic (all cortical traces: anaesthesia or blood pressure?)");
            }
            // Each row keeps its alarm's widget ids whatever arrives above it (newest first): a click on
            // "Acknowledge" acknowledges the alarm the user read, even if another was raised in between.
            let row = egui::UiBuilder::new().scope_id(ui.make_persistent_id(("alarm_banner", ev.id)));
            ui.scope_builder(row, |ui| {
                Frame::new()
                    .fill(fill)
                    .inner_margin(egui::Margin::symmetric(12, 6))
                    .show(ui, |ui| {
                        ui.set_width(ui.available_width());
                        // The button (or the acknowledgement) is laid out first, from the right, so that a long
                        // message is cut instead of pushing it off the screen.
                        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                            match a.acknowledged_s {
                                Some(t) => {
                                    ui.label(
                                        RichText::new(format!("acknowledged at {}", hms(t))).color(text),
                                    );
                                }
                                None => {
                                    let b =
                                        egui::Button::new(RichText::new("Acknowledge").size(22.0).strong());
                                    if ui.add(b).clicked() {
                                        acks.push(ev.id);
                                    }
                                }
                            }
                            ui.with_layout(egui::Layout::left_to_right(egui::Align::Center), |ui| {
                                ui.label(RichText::new(title).size(super::BIG * 0.8).strong().color(text));
                                ui.label(
                                    RichText::new(format!("at {}", hms(ev.stream_s)))
                                        .size(20.0)
                                        .color(text),
                                );
                                // One line whatever the message: cut at the edge, whole on hover.
                                ui.add(
                                    egui::Label::new(RichText::new(&ev.message).size(20.0).color(text))
                                        .truncate(),
                                );
                            });
                        });
                    });
            });
        }
        if alarms.len() > BANNER_ROWS {
            ui.label(format!(
                "+{} more active alarms (see Log)",
                alarms.len() - BANNER_ROWS
            ));
        }
        for id in acks {
            self.send(UserCommand::AcknowledgeAlarm { id });
        }
    }

    /// The log view: alarm transitions with acknowledge buttons, markers, technical notices; newest first.
    pub(crate) fn log_ui(&mut self, ui: &mut egui::Ui) {
        let pal = self.palette();
        ui.horizontal(|ui| {
            ui.heading("Alarm log");
            let label = if self.sound_on { "Sound: on" } else { "Sound: off" };
            let enabled = self.sound.is_some();
            let r = ui.add_enabled(enabled, egui::Button::selectable(self.sound_on, label));
            let r = if enabled {
                r
            } else {
                r.on_disabled_hover_text("no audio output configured")
            };
            if r.clicked() {
                self.sound_on = !self.sound_on;
            }
        });
        let mut acks = Vec::new();
        let log = self.model.alarm_log();
        let row_h = ui.text_style_height(&egui::TextStyle::Body) + 8.0;
        let height = (ui.available_height() * 0.5).max(120.0);
        egui::ScrollArea::vertical()
            .id_salt("alarm_log")
            .max_height(height)
            .show_rows(ui, row_h, log.len(), |ui, range| {
                for k in range {
                    let ev = &log[log.len() - 1 - k];
                    let active = self.model.active_alarms().get(&ev.id);
                    // A stable id per transition, as in the banner: new rows arrive on top.
                    let salt = ("alarm_log", ev.id, ev.state as u8);
                    let row = egui::UiBuilder::new()
                        .scope_id(ui.make_persistent_id(salt))
                        .layout(egui::Layout::left_to_right(egui::Align::Center));
                    ui.scope_builder(row, |ui| {
                        let colour = match ev.class {
                            AlarmClass::Clinical => pal.clinical,
                            AlarmClass::Technical => pal.technical,
                        };
                        ui.label(RichText::new(hms_tenths(ev.stream_s)).monospace());
                        ui.label(RichText::new(format!("#{}", ev.id)).monospace());
                        ui.label(
                            RichText::new(format!("{:?}", ev.class).to_uppercase())
                                .color(colour)
                                .strong(),
                        );
                        let state = match ev.state {
                            AlarmState::Raised => "raised",
                            AlarmState::Acknowledged => "acknowledged",
                            AlarmState::Cleared => "cleared",
                        };
                        ui.label(state);
                        ui.label(ev.trace.as_deref().unwrap_or("device"));
                        ui.label(kind_words(ev.kind));
                        ui.label(&ev.message);
                        if ev.state == AlarmState::Raised
                            && active.is_some_and(|a| !a.is_acknowledged())
                            && ui.button("Acknowledge").clicked()
                        {
                            acks.push(ev.id);
                        }
                    });
                }
            });
        for id in acks {
            self.send(UserCommand::AcknowledgeAlarm { id });
        }
        ui.separator();
        ui.columns(2, |cols| {
            cols[0].heading("Markers");
            let markers = self.model.markers();
            egui::ScrollArea::vertical().id_salt("markers_log").show_rows(
                &mut cols[0],
                row_h,
                markers.len(),
                |ui, range| {
                    for k in range {
                        let m = &markers[markers.len() - 1 - k];
                        ui.horizontal(|ui| {
                            ui.label(RichText::new(hms_tenths(m.stream_s)).monospace());
                            ui.label(
                                RichText::new(super::capitalise(&m.kind))
                                    .color(pal.marker)
                                    .strong(),
                            );
                            ui.label(&m.text);
                        });
                    }
                },
            );
            cols[1].heading("Technical notices");
            let notices = self.model.notices();
            egui::ScrollArea::vertical().id_salt("notices_log").show_rows(
                &mut cols[1],
                row_h,
                notices.len(),
                |ui, range| {
                    for k in range {
                        let n = &notices[notices.len() - 1 - k];
                        ui.horizontal(|ui| {
                            ui.label(RichText::new(hms_tenths(n.stream_s)).monospace());
                            ui.label(&n.text);
                        });
                    }
                },
            );
        });
    }
}
