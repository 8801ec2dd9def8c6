//! Frame layout, limits and borrowed views of decoded payloads.

/// The two bytes every frame starts with.
pub const SYNC: [u8; 2] = [0xA5, 0x5A];
/// The protocol version this crate speaks (the frame header's version byte).
pub const PROTOCOL_VERSION: u8 = 1;
/// Device-info revision (the payload's first byte) of a device that announces every stimulus at least
/// [`STIMULUS_LEAD_MS`] ahead: its stimulus frame is sent before any sample frame holding a sample at or after
/// `sample_index − ⌈rate × STIMULUS_LEAD_MS / 1000⌉`. A host that has received the samples up to index `r` then
/// knows every stimulus up to `r + lead` and need not hold samples back for late stimuli. Revision 1 (and any
/// other value below 2) promises only that a stimulus frame comes before the sample frame holding its index.
/// Hosts that do not know revision 2 read it as revision 1: the frame layout is the same.
pub const DEVICE_REVISION_STIMULUS_LEAD: u8 = 2;
/// The lead (ms) that [`DEVICE_REVISION_STIMULUS_LEAD`] promises.
pub const STIMULUS_LEAD_MS: u32 = 1;

/// Samples of [`STIMULUS_LEAD_MS`] at `sample_rate_hz`, rounded up: how far ahead of the samples a revision-2
/// device's stimuli are known.
pub const fn stimulus_lead_samples(sample_rate_hz: u32) -> u64 {
    (sample_rate_hz as u64 * STIMULUS_LEAD_MS as u64).div_ceil(1000)
}
/// Sync (2) + version (1) + type (1) + sequence (2) + payload length (2).
pub const HEADER_LEN: usize = 8;
/// CRC-32 after the payload.
pub const TRAILER_LEN: usize = 4;
/// Most channels a device may declare.
pub const MAX_CHANNELS: usize = 64;
/// Most sample values (channels × samples) in one sample frame.
pub const MAX_SAMPLE_VALUES: usize = 2048;
/// Most stimuli in one stimulus frame.
pub const MAX_STIMULI_PER_FRAME: usize = 16;
/// Longest channel label in bytes (UTF-8).
pub const MAX_LABEL_LEN: usize = 32;
/// Longest firmware version string in bytes (UTF-8).
pub const MAX_FIRMWARE_LEN: usize = 64;

pub(crate) const SAMPLES_FIXED: usize = 8 + 1 + 2;
pub(crate) const STIMULUS_LEN: usize = 14;
pub(crate) const STATUS_LEN: usize = 8 + 1 + 1 + 8 + 8;
pub(crate) const DEVICE_FIXED: usize = 1 + 1 + 4 + 4 + 4 + 4 + 1;

const fn max(a: usize, b: usize) -> usize {
    if a > b { a } else { b }
}

/// Largest payload of any frame type. A header announcing more is not a frame.
pub const MAX_PAYLOAD: usize = max(
    SAMPLES_FIXED + 3 * MAX_SAMPLE_VALUES,
    DEVICE_FIXED + MAX_FIRMWARE_LEN + MAX_CHANNELS * (4 + 1 + MAX_LABEL_LEN),
);
/// Largest frame on the wire.
pub const MAX_FRAME_LEN: usize = HEADER_LEN + MAX_PAYLOAD + TRAILER_LEN;

/// Frame types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameType {
    /// What the device is: rate, channels, gains, ADC range, firmware.
    DeviceInfo = 1,
    /// 24-bit samples of all channels from an absolute sample index.
    Samples = 2,
    /// Stimuli, each at an absolute sample index.
    Stimuli = 3,
    /// Battery, saturation and impedance flags.
    Status = 4,
}

impl FrameType {
    /// The frame type with this code, if known.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::DeviceInfo),
            2 => Some(Self::Samples),
            3 => Some(Self::Stimuli),
            4 => Some(Self::Status),
            _ => None,
        }
    }
}

pub(crate) fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
pub(crate) fn i32_at(b: &[u8], at: usize) -> i32 {
    u32_at(b, at) as i32
}
pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Sign-extends a little-endian 24-bit value.
#[inline(always)]
pub(crate) fn i24(b: &[u8]) -> i32 {
    (i32::from(b[0]) | (i32::from(b[1]) << 8) | (i32::from(b[2]) << 16)) << 8 >> 8
}

/// A validated device-info payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceInfoView<'a> {
    pub(crate) payload: &'a [u8],
    pub(crate) channels_at: usize,
}

impl<'a> DeviceInfoView<'a> {
    /// Protocol revision the device declares (1, or [`DEVICE_REVISION_STIMULUS_LEAD`]).
    pub fn protocol_version(&self) -> u8 {
        self.payload[0]
    }
    /// True if the device announces stimuli [`STIMULUS_LEAD_MS`] ahead (revision ≥ 2).
    pub fn stimulus_lead(&self) -> bool {
        self.payload[0] >= DEVICE_REVISION_STIMULUS_LEAD
    }
    /// Number of channels.
    pub fn n_channels(&self) -> usize {
        usize::from(self.payload[1])
    }
    /// Samples per second per channel.
    pub fn sample_rate_hz(&self) -> u32 {
        u32_at(self.payload, 2)
    }
    /// Lowest converter value.
    pub fn adc_min(&self) -> i32 {
        i32_at(self.payload, 6)
    }
    /// Highest converter value.
    pub fn adc_max(&self) -> i32 {
        i32_at(self.payload, 10)
    }
    /// Streaming session identifier (changes when the device restarts).
    pub fn session_id(&self) -> u32 {
        u32_at(self.payload, 14)
    }
    /// Firmware version string.
    pub fn firmware_version(&self) -> &'a str {
        let len = usize::from(self.payload[18]);
        // Validated as UTF-8 when the frame was decoded.
        core::str::from_utf8(&self.payload[19..19 + len]).unwrap_or("")
    }
    /// Channels in interleaving order: (label, gain in nV per LSB).
    pub fn channels(&self) -> impl Iterator<Item = (&'a str, u32)> + 'a {
        let payload = self.payload;
        let mut at = self.channels_at;
        (0..self.n_channels()).map(move |_| {
            let gain = u32_at(payload, at);
            let len = usize::from(payload[at + 4]);
            let label = core::str::from_utf8(&payload[at + 5..at + 5 + len]).unwrap_or("");
            at += 5 + len;
            (label, gain)
        })
    }

    /// Checks a payload and returns the view, or what is wrong with it.
    pub(crate) fn parse(payload: &'a [u8]) -> Result<Self, crate::FrameError> {
        use crate::FrameError as E;
        if payload.len() < DEVICE_FIXED {
            return Err(E::Truncated);
        }
        let n = usize::from(payload[1]);
        if n == 0 || n > MAX_CHANNELS {
            return Err(E::ChannelCount(n));
        }
        if u32_at(payload, 2) == 0 {
            return Err(E::ZeroSampleRate);
        }
        if i32_at(payload, 6) >= i32_at(payload, 10) {
            return Err(E::AdcRange);
        }
        let fw_len = usize::from(payload[18]);
        if fw_len > MAX_FIRMWARE_LEN || payload.len() < DEVICE_FIXED + fw_len {
            return Err(E::Truncated);
        }
        if core::str::from_utf8(&payload[19..19 + fw_len]).is_err() {
            return Err(E::NotUtf8);
        }
        let channels_at = DEVICE_FIXED + fw_len;
        let mut at = channels_at;
        for _ in 0..n {
            if payload.len() < at + 5 {
                return Err(E::Truncated);
            }
            let len = usize::from(payload[at + 4]);
            if len > MAX_LABEL_LEN || payload.len() < at + 5 + len {
                return Err(E::Truncated);
            }
            if core::str::from_utf8(&payload[at + 5..at + 5 + len]).is_err() {
                return Err(E::NotUtf8);
            }
            at += 5 + len;
        }
        if at != payload.len() {
            return Err(E::TrailingBytes);
        }
        Ok(Self { payload, channels_at })
    }
}

/// A validated sample payload: `n_samples` instants × `n_channels` 24-bit values, interleaved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SamplesView<'a> {
    pub(crate) payload: &'a [u8],
}

impl<'a> SamplesView<'a> {
    /// Absolute sample index of the first instant.
    pub fn first_index(&self) -> u64 {
        u64_at(self.payload, 0)
    }
    /// Channels per instant.
    pub fn n_channels(&self) -> usize {
        usize::from(self.payload[8])
    }
    /// Instants in the frame.
    pub fn n_samples(&self) -> usize {
        usize::from(u16_at(self.payload, 9))
    }
    /// Total values (`n_channels × n_samples`).
    pub fn n_values(&self) -> usize {
        self.n_channels() * self.n_samples()
    }
    /// The values, interleaved, sign-extended to i32.
    pub fn values(&self) -> impl Iterator<Item = i32> + 'a {
        self.payload[SAMPLES_FIXED..].chunks_exact(3).map(i24)
    }
    /// Writes the values into `out[..n_values()]` and returns how many were written.
    /// `out` shorter than [`SamplesView::n_values`] receives only what fits.
    pub fn copy_into(&self, out: &mut [i32]) -> usize {
        let src = &self.payload[SAMPLES_FIXED..];
        let n = out.len().min(src.len() / 3);
        for (dst, b) in out[..n].iter_mut().zip(src.chunks_exact(3)) {
            *dst = i24(b);
        }
        n
    }

    pub(crate) fn parse(payload: &'a [u8]) -> Result<Self, crate::FrameError> {
        use crate::FrameError as E;
        if payload.len() < SAMPLES_FIXED {
            return Err(E::Truncated);
        }
        let n_ch = usize::from(payload[8]);
        let n_s = usize::from(u16_at(payload, 9));
        if n_ch == 0 || n_ch > MAX_CHANNELS {
            return Err(E::ChannelCount(n_ch));
        }
        if n_s == 0 || n_ch * n_s > MAX_SAMPLE_VALUES {
            return Err(E::SampleCount(n_s));
        }
        if payload.len() != SAMPLES_FIXED + 3 * n_ch * n_s {
            return Err(E::LengthMismatch);
        }
        if u64_at(payload, 0).checked_add(n_s as u64).is_none() {
            return Err(E::IndexOverflow);
        }
        Ok(Self { payload })
    }
}

/// One stimulus as carried on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stimulus {
    /// Absolute sample index of the onset.
    pub sample_index: u64,
    /// Stimulator code (see `docs/protocol.md`; `ionm_core::Stimulator::from_code`).
    pub stimulator: u8,
    /// Pulses in the train.
    pub pulses: u8,
    /// Intensity in tenths of the stimulator's unit.
    pub intensity_tenths: u16,
    /// Pulse width in µs.
    pub pulse_width_us: u16,
}

impl Stimulus {
    pub(crate) fn read(b: &[u8]) -> Self {
        Self {
            sample_index: u64_at(b, 0),
            stimulator: b[8],
            pulses: b[9],
            intensity_tenths: u16_at(b, 10),
            pulse_width_us: u16_at(b, 12),
        }
    }
    pub(crate) fn write(&self, b: &mut [u8]) {
        b[0..8].copy_from_slice(&self.sample_index.to_le_bytes());
        b[8] = self.stimulator;
        b[9] = self.pulses;
        b[10..12].copy_from_slice(&self.intensity_tenths.to_le_bytes());
        b[12..14].copy_from_slice(&self.pulse_width_us.to_le_bytes());
    }
}

/// A validated stimulus payload (1 to [`MAX_STIMULI_PER_FRAME`] stimuli).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StimuliView<'a> {
    pub(crate) payload: &'a [u8],
}

impl<'a> StimuliView<'a> {
    /// Number of stimuli.
    pub fn len(&self) -> usize {
        usize::from(self.payload[0])
    }
    /// Never true for a decoded frame.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The stimuli in order.
    pub fn iter(&self) -> impl Iterator<Item = Stimulus> + 'a {
        self.payload[1..].chunks_exact(STIMULUS_LEN).map(Stimulus::read)
    }

    pub(crate) fn parse(payload: &'a [u8]) -> Result<Self, crate::FrameError> {
        use crate::FrameError as E;
        let Some(&n) = payload.first() else {
            return Err(E::Truncated);
        };
        let n = usize::from(n);
        if n == 0 || n > MAX_STIMULI_PER_FRAME {
            return Err(E::StimulusCount(n));
        }
        if payload.len() != 1 + n * STIMULUS_LEN {
            return Err(E::LengthMismatch);
        }
        Ok(Self { payload })
    }
}

/// A device status report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Status {
    /// Sample index at which the status was taken.
    pub sample_index: u64,
    /// Battery percent, `None` on mains power.
    pub battery_percent: Option<u8>,
    /// The stimulator reported a fault.
    pub stimulator_fault: bool,
    /// Bit per channel: touched the rails since the last status.
    pub saturated: u64,
    /// Bit per channel: impedance above the device's limit.
    pub impedance_high: u64,
}

impl Status {
    pub(crate) fn parse(p: &[u8]) -> Result<Self, crate::FrameError> {
        if p.len() != STATUS_LEN {
            return Err(crate::FrameError::LengthMismatch);
        }
        let battery = p[8];
        if battery != 0xFF && battery > 100 {
            return Err(crate::FrameError::Battery(battery));
        }
        Ok(Self {
            sample_index: u64_at(p, 0),
            battery_percent: (battery != 0xFF).then_some(battery),
            stimulator_fault: p[9] & 1 != 0,
            saturated: u64_at(p, 10),
            impedance_high: u64_at(p, 18),
        })
    }
    pub(crate) fn write(&self, p: &mut [u8]) {
        p[0..8].copy_from_slice(&self.sample_index.to_le_bytes());
        p[8] = self.battery_percent.map_or(0xFF, |b| b.min(100));
        p[9] = u8::from(self.stimulator_fault);
        p[10..18].copy_from_slice(&self.saturated.to_le_bytes());
        p[18..26].copy_from_slice(&self.impedance_high.to_le_bytes());
    }
}
