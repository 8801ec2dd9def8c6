//! Writing frames into a caller's buffer.

use crate::frame::*;

/// Why a frame could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The output buffer is too small; the frame needs this many bytes.
    BufferTooSmall(usize),
    /// Zero or more than [`MAX_CHANNELS`] channels.
    ChannelCount(usize),
    /// The sample values are not a whole number of instants, or more than [`MAX_SAMPLE_VALUES`], or none.
    SampleCount(usize),
    /// Zero or more than [`MAX_STIMULI_PER_FRAME`] stimuli.
    StimulusCount(usize),
    /// A label or the firmware string is too long.
    TextTooLong(usize),
    /// A sample value does not fit in 24 bits.
    SampleOutOfRange(i32),
    /// The sample rate is zero or the ADC range is empty.
    BadDevice,
}

impl core::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BufferTooSmall(n) => write!(f, "output buffer too small: the frame needs {n} bytes"),
            Self::ChannelCount(n) => write!(f, "{n} channels (1..={MAX_CHANNELS} allowed)"),
            Self::SampleCount(n) => {
                write!(f, "{n} sample values do not form whole instants within the limit")
            }
            Self::StimulusCount(n) => write!(f, "{n} stimuli (1..={MAX_STIMULI_PER_FRAME} per frame)"),
            Self::TextTooLong(n) => write!(f, "text of {n} bytes is too long"),
            Self::SampleOutOfRange(v) => write!(f, "sample {v} does not fit in 24 bits"),
            Self::BadDevice => write!(f, "zero sample rate or empty ADC range"),
        }
    }
}

impl core::error::Error for EncodeError {}

/// One channel of a [`DeviceDesc`].
#[derive(Debug, Clone, Copy)]
pub struct ChannelDesc<'a> {
    /// Label (UTF-8, ≤ [`MAX_LABEL_LEN`] bytes).
    pub label: &'a str,
    /// nV per LSB.
    pub gain_nv_per_lsb: u32,
}

/// What a device-info frame says.
#[derive(Debug, Clone, Copy)]
pub struct DeviceDesc<'a> {
    /// Samples per second per channel.
    pub sample_rate_hz: u32,
    /// Lowest converter value.
    pub adc_min: i32,
    /// Highest converter value.
    pub adc_max: i32,
    /// Streaming session identifier.
    pub session_id: u32,
    /// Firmware version (≤ [`MAX_FIRMWARE_LEN`] bytes).
    pub firmware_version: &'a str,
    /// Channels in interleaving order.
    pub channels: &'a [ChannelDesc<'a>],
}

/// Numbers frames and writes them into caller-provided buffers. Never allocates.
#[derive(Debug, Clone, Default)]
pub struct Encoder {
    seq: u16,
}

impl Encoder {
    /// An encoder whose first frame has sequence number 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sequence number the next frame will carry.
    pub fn next_seq(&self) -> u16 {
        self.seq
    }

    /// Skips `n` sequence numbers, as if `n` frames had been sent (used to simulate loss).
    pub fn skip(&mut self, n: u16) {
        self.seq = self.seq.wrapping_add(n);
    }

    fn frame(
        &mut self,
        out: &mut [u8],
        ty: FrameType,
        payload_len: usize,
        write: impl FnOnce(&mut [u8]),
    ) -> Result<usize, EncodeError> {
        let total = HEADER_LEN + payload_len + TRAILER_LEN;
        if out.len() < total {
            return Err(EncodeError::BufferTooSmall(total));
        }
        debug_assert!(payload_len <= MAX_PAYLOAD);
        out[0..2].copy_from_slice(&SYNC);
        out[2] = PROTOCOL_VERSION;
        out[3] = ty as u8;
        out[4..6].copy_from_slice(&self.seq.to_le_bytes());
        // payload_len ≤ MAX_PAYLOAD < 65536.
        out[6..8].copy_from_slice(&(payload_len as u16).to_le_bytes());
        write(&mut out[HEADER_LEN..HEADER_LEN + payload_len]);
        let crc = crc32fast::hash(&out[..HEADER_LEN + payload_len]);
        out[HEADER_LEN + payload_len..total].copy_from_slice(&crc.to_le_bytes());
        self.seq = self.seq.wrapping_add(1);
        Ok(total)
    }

    /// Writes a device-info frame of revision 1 ([`PROTOCOL_VERSION`]); returns its length.
    pub fn device_info(&mut self, out: &mut [u8], d: &DeviceDesc<'_>) -> Result<usize, EncodeError> {
        self.device_info_revision(out, d, PROTOCOL_VERSION)
    }

    /// Writes a device-info frame whose payload declares `revision` (e.g. [`DEVICE_REVISION_STIMULUS_LEAD`]
    /// for a device that keeps that promise); returns its length.
    pub fn device_info_revision(
        &mut self,
        out: &mut [u8],
        d: &DeviceDesc<'_>,
        revision: u8,
    ) -> Result<usize, EncodeError> {
        let n = d.channels.len();
        if n == 0 || n > MAX_CHANNELS {
            return Err(EncodeError::ChannelCount(n));
        }
        if d.sample_rate_hz == 0 || d.adc_min >= d.adc_max {
            return Err(EncodeError::BadDevice);
        }
        let fw = d.firmware_version.as_bytes();
        if fw.len() > MAX_FIRMWARE_LEN {
            return Err(EncodeError::TextTooLong(fw.len()));
        }
        let mut len = DEVICE_FIXED + fw.len();
        for c in d.channels {
            if c.label.len() > MAX_LABEL_LEN {
                return Err(EncodeError::TextTooLong(c.label.len()));
            }
            len += 5 + c.label.len();
        }
        self.frame(out, FrameType::DeviceInfo, len, |p| {
            p[0] = revision;
            p[1] = n as u8;
            p[2..6].copy_from_slice(&d.sample_rate_hz.to_le_bytes());
            p[6..10].copy_from_slice(&d.adc_min.to_le_bytes());
            p[10..14].copy_from_slice(&d.adc_max.to_le_bytes());
            p[14..18].copy_from_slice(&d.session_id.to_le_bytes());
            p[18] = fw.len() as u8;
            p[19..19 + fw.len()].copy_from_slice(fw);
            let mut at = DEVICE_FIXED + fw.len();
            for c in d.channels {
                let l = c.label.as_bytes();
                p[at..at + 4].copy_from_slice(&c.gain_nv_per_lsb.to_le_bytes());
                p[at + 4] = l.len() as u8;
                p[at + 5..at + 5 + l.len()].copy_from_slice(l);
                at += 5 + l.len();
            }
        })
    }

    /// Writes a sample frame of interleaved 24-bit `values` (`n_channels` per instant) starting at `first_index`.
    pub fn samples(
        &mut self,
        out: &mut [u8],
        first_index: u64,
        n_channels: usize,
        values: &[i32],
    ) -> Result<usize, EncodeError> {
        if n_channels == 0 || n_channels > MAX_CHANNELS {
            return Err(EncodeError::ChannelCount(n_channels));
        }
        if values.is_empty() || !values.len().is_multiple_of(n_channels) || values.len() > MAX_SAMPLE_VALUES {
            return Err(EncodeError::SampleCount(values.len()));
        }
        if let Some(&v) = values.iter().find(|&&v| !(-(1 << 23)..(1 << 23)).contains(&v)) {
            return Err(EncodeError::SampleOutOfRange(v));
        }
        let n_samples = values.len() / n_channels;
        self.frame(out, FrameType::Samples, SAMPLES_FIXED + 3 * values.len(), |p| {
            p[0..8].copy_from_slice(&first_index.to_le_bytes());
            p[8] = n_channels as u8;
            p[9..11].copy_from_slice(&(n_samples as u16).to_le_bytes());
            for (dst, v) in p[SAMPLES_FIXED..].chunks_exact_mut(3).zip(values) {
                dst.copy_from_slice(&v.to_le_bytes()[..3]);
            }
        })
    }

    /// Writes a stimulus frame.
    pub fn stimuli(&mut self, out: &mut [u8], stimuli: &[Stimulus]) -> Result<usize, EncodeError> {
        let n = stimuli.len();
        if n == 0 || n > MAX_STIMULI_PER_FRAME {
            return Err(EncodeError::StimulusCount(n));
        }
        self.frame(out, FrameType::Stimuli, 1 + n * STIMULUS_LEN, |p| {
            p[0] = n as u8;
            for (dst, s) in p[1..].chunks_exact_mut(STIMULUS_LEN).zip(stimuli) {
                s.write(dst);
            }
        })
    }

    /// Writes a status frame.
    pub fn status(&mut self, out: &mut [u8], status: &Status) -> Result<usize, EncodeError> {
        self.frame(out, FrameType::Status, STATUS_LEN, |p| status.write(p))
    }
}
