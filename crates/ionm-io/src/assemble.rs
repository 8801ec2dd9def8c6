//! From wire events to acquisition items, with every discontinuity made explicit.

use crate::stats::IngestStats;
use ionm_core::{
    Acquired, ChannelInfo, DeviceInfo, DeviceStatus, Gap, GapCause, SampleBlock, SampleIndex, Stimulator,
    StimulusEvent,
};
use ionm_wire::{DeviceInfoView, Event};
use std::sync::Arc;

/// Turns decoded frames into [`Acquired`] items for one device stream.
///
/// - A device-info frame that differs from the current one (or the first) becomes [`Acquired::Device`]; the
///   periodic repeats of an unchanged one are absorbed. A new session id means the device restarted and sample
///   indices begin again.
/// - Sample frames become [`Acquired::Samples`]. When a frame does not start where the previous one ended, an
///   [`Acquired::Gap`] with the missing index range comes first; a frame that goes backwards within a session
///   (duplicate or bogus) is rejected and counted, never merged.
/// - Frames that cannot be interpreted (no device info yet, a channel count that disagrees with the device) are
///   rejected and counted; a warning names the reason.
#[derive(Debug, Default)]
pub struct Assembler {
    device: Option<Arc<DeviceInfo>>,
    next_index: Option<SampleIndex>,
    frames_lost_pending: u32,
    interrupted: bool,
}

impl Assembler {
    /// An assembler that has not yet seen a device.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current device, if any.
    pub fn device(&self) -> Option<&Arc<DeviceInfo>> {
        self.device.as_ref()
    }

    /// The link was interrupted (disconnect or silence): the next gap, if any, is attributed to it.
    pub fn link_interrupted(&mut self) {
        self.interrupted = true;
    }

    /// Handles one decoder event, emitting zero or more items through `emit`.
    pub fn on_event(&mut self, ev: Event<'_>, stats: &IngestStats, emit: &mut impl FnMut(Acquired)) {
        match ev {
            Event::DeviceInfo(d) => self.on_device(d, emit),
            Event::Samples(s) => {
                let Some(device) = self.device.as_ref() else {
                    return reject(stats, "sample frame before any device-info frame");
                };
                if s.n_channels() != device.n_channels() {
                    return reject(stats, "sample frame channel count differs from the device's");
                }
                let first = s.first_index();
                if let Some(expected) = self.next_index {
                    if first < expected {
                        return reject(stats, "sample frame goes back in time within a session");
                    }
                    if first > expected {
                        let cause = if self.interrupted {
                            GapCause::Disconnected
                        } else {
                            GapCause::LostFrames
                        };
                        let gap = Gap {
                            cause,
                            from: expected,
                            to: first,
                            frames: self.frames_lost_pending,
                        };
                        IngestStats::add(&stats.gaps, 1);
                        IngestStats::add(&stats.gap_samples, gap.samples());
                        tracing::warn!(
                            from = gap.from,
                            to = gap.to,
                            frames = gap.frames,
                            ?cause,
                            "gap in the stream"
                        );
                        emit(Acquired::Gap(gap));
                    }
                }
                self.frames_lost_pending = 0;
                self.interrupted = false;
                let mut block = SampleBlock::empty();
                // A decoded frame holds at most MAX_SAMPLE_VALUES == MAX_BLOCK_VALUES values, so this cannot fail.
                if block
                    .fill(first, s.n_channels(), s.n_samples(), |dst| _ = s.copy_into(dst))
                    .is_err()
                {
                    return reject(stats, "sample frame larger than a block");
                }
                self.next_index = Some(block.end_index());
                IngestStats::add(&stats.sample_frames, 1);
                IngestStats::add(&stats.samples, s.n_samples() as u64);
                emit(Acquired::Samples(block));
            }
            Event::Stimuli(list) => {
                if self.device.is_none() {
                    return reject(stats, "stimulus frame before any device-info frame");
                }
                for s in list.iter() {
                    IngestStats::add(&stats.stimuli, 1);
                    emit(Acquired::Stimulus(StimulusEvent {
                        sample_index: s.sample_index,
                        stimulator: Stimulator::from_code(s.stimulator),
                        intensity_tenths: s.intensity_tenths,
                        pulse_width_us: s.pulse_width_us,
                        pulses: s.pulses,
                    }));
                }
            }
            Event::Status(s) => emit(Acquired::Status(DeviceStatus {
                sample_index: s.sample_index,
                battery_percent: s.battery_percent,
                saturated: s.saturated,
                impedance_high: s.impedance_high,
                stimulator_fault: s.stimulator_fault,
            })),
            Event::SequenceGap { lost, .. } => {
                IngestStats::add(&stats.frames_lost, u64::from(lost));
                self.frames_lost_pending = self.frames_lost_pending.saturating_add(u32::from(lost));
            }
            Event::Invalid { frame_type, error } => {
                IngestStats::add(&stats.frames_rejected, 1);
                tracing::warn!(frame_type, %error, "malformed frame dropped");
            }
            Event::Unsupported { version, frame_type } => {
                IngestStats::add(&stats.frames_rejected, 1);
                tracing::warn!(
                    version,
                    frame_type,
                    "frame of an unsupported protocol version or type skipped"
                );
            }
        }
    }

    fn on_device(&mut self, d: DeviceInfoView<'_>, emit: &mut impl FnMut(Acquired)) {
        if let Some(cur) = &self.device
            && same_device(cur, &d)
        {
            return;
        }
        let info = DeviceInfo {
            protocol_version: d.protocol_version(),
            sample_rate_hz: d.sample_rate_hz(),
            channels: d
                .channels()
                .map(|(label, gain)| ChannelInfo {
                    label: label.to_owned(),
                    gain_nv_per_lsb: gain,
                })
                .collect(),
            adc_min: d.adc_min(),
            adc_max: d.adc_max(),
            firmware_version: d.firmware_version().to_owned(),
            session_id: d.session_id(),
        };
        match &self.device {
            Some(old) if old.session_id != info.session_id => {
                tracing::info!(
                    old = old.session_id,
                    new = info.session_id,
                    "device restarted: new session"
                )
            }
            Some(_) => tracing::warn!("device changed its description within a session"),
            None => tracing::info!(
                rate = info.sample_rate_hz,
                channels = info.n_channels(),
                firmware = %info.firmware_version,
                "device connected"
            ),
        }
        // A new description starts a new stream: indices are not compared across it.
        self.next_index = None;
        self.frames_lost_pending = 0;
        self.interrupted = false;
        let info = Arc::new(info);
        self.device = Some(info.clone());
        emit(Acquired::Device(info));
    }
}

fn reject(stats: &IngestStats, why: &'static str) {
    IngestStats::add(&stats.frames_rejected, 1);
    // Joining a stream mid-way rejects every frame until the next device-info frame (≤ 1 s): not worth a
    // warning each. Inconsistent frames are.
    if why.contains("before any device-info") {
        tracing::debug!(why, "frame rejected");
    } else {
        tracing::warn!(why, "frame rejected");
    }
}

fn same_device(cur: &DeviceInfo, d: &DeviceInfoView<'_>) -> bool {
    cur.session_id == d.session_id()
        && cur.sample_rate_hz == d.sample_rate_hz()
        && cur.adc_min == d.adc_min()
        && cur.adc_max == d.adc_max()
        && cur.firmware_version == d.firmware_version()
        && cur.n_channels() == d.n_channels()
        && cur
            .channels
            .iter()
            .zip(d.channels())
            .all(|(c, (l, g))| c.label == l && c.gain_nv_per_lsb == g)
}
