//! Shared types of ionm.
//!
//! Everything that crosses a crate boundary on the data path lives here, so that the wire decoder, the simulator,
//! the sources, the DSP and the sinks agree on one vocabulary:
//!
//! - [`DeviceInfo`] / [`ChannelInfo`]: what an acquisition device says about itself (rate, labels, gain, ADC range).
//! - [`SampleBlock`]: a fixed-capacity block of interleaved raw ADC samples that starts at an absolute
//!   [`SampleIndex`]. Fixed capacity so that a ring buffer of blocks never allocates on the real-time path. It
//!   says which of its channels were decoded (a replay may skip the channels nobody reads).
//! - [`StimulusEvent`] / [`Stimulator`]: which stimulator fired, at which sample, how strongly.
//! - [`DeviceStatus`]: battery, saturation and impedance flags.
//! - [`Gap`]: data that did not arrive. Gaps are always explicit: nothing downstream stitches over them.
//! - [`Acquired`]: the one item type that a source pushes into the acquisition ring buffer.
//! - [`events::Event`]: the typed event stream (averages, baselines, alarms, markers…) in stream time.
//! - [`DetectorSettings`]: which change detectors run (protocol → monitor).
//! - [`Rng`]: a small deterministic generator (xoshiro256++) so that seeded simulations are reproducible everywhere.

mod detectors;
pub mod events;
mod rng;
mod stimulus;

pub use detectors::DetectorSettings;
pub use rng::Rng;
pub use stimulus::{IntensityUnit, Stimulator, StimulusEvent};

use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Absolute index of a sample since the device started streaming (the first sample is 0).
pub type SampleIndex = u64;

/// Most channels a device may declare. Bounded so that every per-channel buffer has a known worst case.
pub const MAX_CHANNELS: usize = 64;

/// Most sample values (channels × samples per channel) one [`SampleBlock`] holds.
pub const MAX_BLOCK_VALUES: usize = 2048;

/// One channel of an acquisition device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelInfo {
    /// Montage label, e.g. `"C3'-Fz"` or `"Erb L"`.
    pub label: String,
    /// Nanovolts per least-significant bit of the converter.
    pub gain_nv_per_lsb: u32,
}

/// What a device declares about itself when it connects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// Version of the wire protocol the device speaks.
    pub protocol_version: u8,
    /// Samples per second per channel.
    pub sample_rate_hz: u32,
    /// The channels in the order samples are interleaved.
    pub channels: Vec<ChannelInfo>,
    /// Lowest value the converter can produce (a sample at this value touches the rail).
    pub adc_min: i32,
    /// Highest value the converter can produce.
    pub adc_max: i32,
    /// Firmware version string, e.g. `"firmware-sim 0.1.0"`.
    pub firmware_version: String,
    /// Identifies one streaming session of the device: it changes when the device restarts, so that a host can
    /// tell a restart (sample indices begin again) from a gap.
    pub session_id: u32,
}

impl DeviceInfo {
    /// Number of channels.
    pub fn n_channels(&self) -> usize {
        self.channels.len()
    }

    /// Converts a raw ADC value of channel `ch` to microvolts.
    pub fn to_microvolts(&self, ch: usize, raw: i32) -> f64 {
        f64::from(raw) * f64::from(self.channels[ch].gain_nv_per_lsb) * 1e-3
    }

    /// True if `raw` sits on (or beyond) either rail of the converter.
    pub fn is_saturated(&self, raw: i32) -> bool {
        raw <= self.adc_min || raw >= self.adc_max
    }
}

/// A block of raw samples: `n_samples` consecutive sample instants of `n_channels` channels, interleaved
/// (all channels of instant 0, then of instant 1, …), the first instant at absolute index `first_index`.
///
/// The storage is inline and fixed ([`MAX_BLOCK_VALUES`]) so that blocks can be moved through a pre-allocated
/// ring buffer without touching the allocator.
///
/// **Decoded channels.** A source may leave out channels nobody reads (a headless replay decodes only the
/// channels of the protocol, [`fill_decoded`](Self::fill_decoded)): their bit in
/// [`decoded_channels`](Self::decoded_channels) is clear, they are not stored (the block holds only the decoded
/// channels' values, interleaved with a [`stride`](Self::stride) of their number, so a block of 3 of 16
/// channels holds 5 times the samples), and [`channel`](Self::channel) yields [`SampleBlock::UNDECODED`] for
/// them. Every block from a device, and every block made by [`fill`](Self::fill) or
/// [`from_interleaved`](Self::from_interleaved), has all its channels decoded. A consumer that reads a channel's
/// values must check [`is_decoded`](Self::is_decoded) (or [`all_decoded`](Self::all_decoded)) first.
#[derive(Clone)]
pub struct SampleBlock {
    first_index: SampleIndex,
    n_channels: u16,
    n_samples: u16,
    /// Bit `c` set: channel `c` is decoded and stored (clear: not stored; it reads as [`SampleBlock::UNDECODED`]).
    decoded: u64,
    values: [i32; MAX_BLOCK_VALUES],
}

// Channel masks (decoded channels, status flags) are u64: one bit per channel.
const _: () = assert!(MAX_CHANNELS <= 64);

/// The mask with the bits of channels `0..n_channels` set (all of them for 64 or more).
pub const fn channel_mask(n_channels: usize) -> u64 {
    if n_channels >= 64 {
        u64::MAX
    } else {
        (1u64 << n_channels) - 1
    }
}

/// Why a [`SampleBlock`] could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockTooLarge {
    /// Channels asked for.
    pub n_channels: usize,
    /// Samples per channel asked for.
    pub n_samples: usize,
}

impl std::fmt::Display for BlockTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} channels × {} samples do not fit a block of {MAX_BLOCK_VALUES} values (or no channel)",
            self.n_channels, self.n_samples
        )
    }
}

impl std::error::Error for BlockTooLarge {}

impl SampleBlock {
    /// The value in every slot of a channel that was not decoded (see the [type docs](Self)). It is also a
    /// plausible sample value: only [`is_decoded`](Self::is_decoded) tells the two apart.
    pub const UNDECODED: i32 = 0;

    /// An empty block (no samples).
    pub const fn empty() -> Self {
        Self {
            first_index: 0,
            n_channels: 0,
            n_samples: 0,
            decoded: 0,
            values: [0; MAX_BLOCK_VALUES],
        }
    }

    /// Makes a block from interleaved values; `values.len()` must be a multiple of `n_channels`.
    pub fn from_interleaved(
        first_index: SampleIndex,
        n_channels: usize,
        values: &[i32],
    ) -> Result<Self, BlockTooLarge> {
        let mut block = Self::empty();
        block.fill(first_index, n_channels, values.len() / n_channels.max(1), |dst| {
            dst.copy_from_slice(&values[..dst.len()])
        })?;
        if n_channels == 0 || !values.len().is_multiple_of(n_channels) {
            return Err(BlockTooLarge {
                n_channels,
                n_samples: values.len(),
            });
        }
        Ok(block)
    }

    /// Refills this block in place, every channel decoded: `write` receives the interleaved destination slice
    /// of `n_channels × n_samples` values. No allocation.
    pub fn fill(
        &mut self,
        first_index: SampleIndex,
        n_channels: usize,
        n_samples: usize,
        write: impl FnOnce(&mut [i32]),
    ) -> Result<(), BlockTooLarge> {
        self.fill_decoded(first_index, n_channels, n_samples, u64::MAX, write)
    }

    /// Refills this block in place with only the channels whose bit is set in `decoded` (bits beyond
    /// `n_channels` are ignored): `write` receives the destination of `n_samples × k` values, `k` the number of
    /// decoded channels ([`stride`](Self::stride)), interleaved in channel order (the decoded channel of rank `r`
    /// at `r`, `r + k`, …), and must write all of them. `n_samples × k` must fit [`MAX_BLOCK_VALUES`]. No
    /// allocation.
    pub fn fill_decoded(
        &mut self,
        first_index: SampleIndex,
        n_channels: usize,
        n_samples: usize,
        decoded: u64,
        write: impl FnOnce(&mut [i32]),
    ) -> Result<(), BlockTooLarge> {
        let total = self.shape(
            first_index,
            n_channels,
            n_samples,
            decoded & channel_mask(n_channels),
        )?;
        write(&mut self.values[..total]);
        Ok(())
    }

    /// Sets the header fields and returns the number of values, or refuses the shape.
    fn shape(
        &mut self,
        first_index: SampleIndex,
        n_channels: usize,
        n_samples: usize,
        decoded: u64,
    ) -> Result<usize, BlockTooLarge> {
        let stored = (decoded & channel_mask(n_channels)).count_ones() as usize;
        let total = stored
            .checked_mul(n_samples)
            .filter(|&t| t <= MAX_BLOCK_VALUES && (1..=MAX_CHANNELS).contains(&n_channels));
        let Some(total) = total else {
            return Err(BlockTooLarge {
                n_channels,
                n_samples,
            });
        };
        self.first_index = first_index;
        // Both fit in u16: n_channels ≤ MAX_CHANNELS, and n_samples ≤ MAX_BLOCK_VALUES (the product with the
        // stored channels fits it; with none stored it is capped there too).
        if stored == 0 && n_samples > MAX_BLOCK_VALUES {
            return Err(BlockTooLarge {
                n_channels,
                n_samples,
            });
        }
        self.n_channels = n_channels as u16;
        self.n_samples = n_samples as u16;
        self.decoded = decoded;
        Ok(total)
    }

    /// Absolute index of the first sample instant.
    pub fn first_index(&self) -> SampleIndex {
        self.first_index
    }

    /// Absolute index one past the last sample instant.
    pub fn end_index(&self) -> SampleIndex {
        self.first_index + u64::from(self.n_samples)
    }

    /// Channels per sample instant.
    pub fn n_channels(&self) -> usize {
        usize::from(self.n_channels)
    }

    /// Sample instants in the block.
    pub fn n_samples(&self) -> usize {
        usize::from(self.n_samples)
    }

    /// Bit `c` set: channel `c` holds samples; clear: it was not decoded, is not stored and reads as
    /// [`UNDECODED`](Self::UNDECODED) (see the [type docs](Self)).
    pub fn decoded_channels(&self) -> u64 {
        self.decoded
    }

    /// True if channel `ch` holds samples (false for a channel that was not decoded or does not exist).
    pub fn is_decoded(&self, ch: usize) -> bool {
        ch < self.n_channels() && self.decoded & (1u64 << ch) != 0
    }

    /// True if every channel holds samples.
    pub fn all_decoded(&self) -> bool {
        self.decoded == channel_mask(self.n_channels())
    }

    /// Values stored per sample instant: the number of decoded channels ([`n_channels`](Self::n_channels) when
    /// all are decoded).
    pub fn stride(&self) -> usize {
        self.decoded.count_ones() as usize
    }

    /// Where channel `ch` is stored in each instant (its rank among the decoded channels), `None` if it was
    /// not decoded.
    pub fn column(&self, ch: usize) -> Option<usize> {
        self.is_decoded(ch)
            .then(|| (self.decoded & ((1u64 << ch) - 1)).count_ones() as usize)
    }

    /// The stored values, interleaved with [`stride`](Self::stride): every channel when all are decoded (see
    /// the [type docs](Self)).
    pub fn values(&self) -> &[i32] {
        &self.values[..self.n_samples() * self.stride()]
    }

    /// The stored values of one sample instant ([`stride`](Self::stride) of them, in channel order).
    pub fn instant(&self, i: usize) -> &[i32] {
        let c = self.stride();
        &self.values[i * c..(i + 1) * c]
    }

    /// Iterates over the values of channel `ch` ([`UNDECODED`](Self::UNDECODED) for a channel that was not
    /// decoded).
    pub fn channel(&self, ch: usize) -> impl Iterator<Item = i32> + '_ {
        let n = self.n_samples();
        let (stored, missing) = match self.column(ch) {
            Some(col) => (&self.values()[col.min(self.values().len())..], 0),
            None => (&[][..], n),
        };
        stored
            .iter()
            .step_by(self.stride().max(1))
            .copied()
            .chain(std::iter::repeat_n(Self::UNDECODED, missing))
    }
}

impl std::fmt::Debug for SampleBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SampleBlock")
            .field("first_index", &self.first_index)
            .field("n_channels", &self.n_channels)
            .field("n_samples", &self.n_samples)
            .field("decoded", &format_args!("{:#x}", self.decoded))
            .finish_non_exhaustive()
    }
}

impl PartialEq for SampleBlock {
    fn eq(&self, other: &Self) -> bool {
        self.first_index == other.first_index
            && self.n_channels == other.n_channels
            && self.decoded == other.decoded
            && self.values() == other.values()
    }
}

/// Device status flags, as reported by a status frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DeviceStatus {
    /// Sample index at which the status was taken.
    pub sample_index: SampleIndex,
    /// Battery charge in percent (0–100), or `None` on mains power.
    pub battery_percent: Option<u8>,
    /// Bit `c` set: channel `c` touched the converter's rails since the last status.
    pub saturated: u64,
    /// Bit `c` set: channel `c`'s electrode impedance is above the device's limit.
    pub impedance_high: u64,
    /// The stimulator reported a fault (open circuit, compliance limit).
    pub stimulator_fault: bool,
}

/// Why data is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GapCause {
    /// Frame sequence numbers skipped: frames were lost or corrupted on the link.
    LostFrames,
    /// The host could not keep up and dropped data (ring buffer full).
    Overrun,
    /// The link went away (port closed, device unplugged) and came back.
    Disconnected,
}

/// A run of samples that never arrived. `missing` is `[from, to)` in absolute sample indices, when known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    /// Why.
    pub cause: GapCause,
    /// First missing sample index.
    pub from: SampleIndex,
    /// One past the last missing sample index.
    pub to: SampleIndex,
    /// Frames lost according to the sequence numbers (0 when unknown).
    pub frames: u32,
}

impl Gap {
    /// Number of missing samples per channel.
    pub fn samples(&self) -> u64 {
        self.to.saturating_sub(self.from)
    }
}

/// One item in the acquisition ring buffer, in stream order.
///
/// Every item is as large as a [`SampleBlock`] on purpose: the ring is an array of fixed-size slots allocated
/// once, so moving a block through it never touches the allocator.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Acquired {
    /// The device (re)declared itself. A new `session_id` means sample indices restart.
    Device(Arc<DeviceInfo>),
    /// Raw samples.
    Samples(SampleBlock),
    /// A stimulus fired.
    Stimulus(StimulusEvent),
    /// A device status report.
    Status(DeviceStatus),
    /// Data is missing; nothing after it is stitched to what came before.
    Gap(Gap),
    /// Something happened to the link itself (no samples involved).
    Link(LinkEvent),
}

/// A change in the state of the link to the device, as seen by the host's reader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LinkEvent {
    /// The source was opened (first time or after a reconnect).
    Connected {
        /// What was opened, e.g. `serial /dev/ttyUSB0`.
        source: String,
        /// How many times the link had to be re-established before this one (0 the first time).
        reconnects: u32,
    },
    /// No valid frame arrived for `silent_ms` milliseconds although the link is open: the device stopped sending.
    /// Distinct from a flat signal, which still arrives.
    SignalLost {
        /// Milliseconds since the last valid frame.
        silent_ms: u64,
    },
    /// Frames arrive again after [`LinkEvent::SignalLost`].
    SignalRestored {
        /// How long the silence lasted.
        silent_ms: u64,
    },
    /// The source failed or closed (port unplugged, connection reset, end of file).
    Disconnected {
        /// What the operating system or the source said.
        reason: String,
    },
    /// The source ended for good (end of a recording or capture, a finite simulation): not a fault.
    Ended {
        /// Why, e.g. `end of recording`.
        reason: String,
    },
    /// No device-info frame arrived within the handshake timeout after connecting.
    HandshakeTimeout {
        /// The timeout that passed.
        waited_ms: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_round_trips_interleaved_values() {
        let vals: Vec<i32> = (0..12).collect();
        let b = SampleBlock::from_interleaved(100, 3, &vals).unwrap();
        assert_eq!(b.n_samples(), 4);
        assert_eq!(b.end_index(), 104);
        assert_eq!(b.instant(1), &[3, 4, 5]);
        assert_eq!(b.channel(2).collect::<Vec<_>>(), vec![2, 5, 8, 11]);
    }

    #[test]
    fn blocks_refuse_more_channels_than_the_mask_holds() {
        let mut b = SampleBlock::empty();
        assert!(b.fill(0, MAX_CHANNELS, 1, |_| {}).is_ok());
        assert!(b.fill(0, MAX_CHANNELS + 1, 1, |_| {}).is_err());
        assert!(b.fill_decoded(0, MAX_CHANNELS + 1, 1, 1, |_| {}).is_err());
        assert!(SampleBlock::from_interleaved(0, MAX_CHANNELS + 1, &[0; MAX_CHANNELS + 1]).is_err());
    }

    #[test]
    fn blocks_say_which_channels_are_decoded() {
        let b = SampleBlock::from_interleaved(0, 3, &[1, 2, 3]).unwrap();
        assert!(b.all_decoded());
        assert_eq!(b.decoded_channels(), 0b111);
        let mut p = b.clone();
        p.fill_decoded(7, 3, 2, 0b1010, |dst| {
            // Only the decoded channel is stored: one value per instant.
            assert_eq!(dst.len(), 2);
            dst.copy_from_slice(&[5, 6]);
        })
        .unwrap();
        // Bit 3 is beyond the block's channels: dropped.
        assert_eq!(p.decoded_channels(), 0b010);
        assert!(!p.all_decoded());
        assert!(p.is_decoded(1) && !p.is_decoded(0) && !p.is_decoded(2) && !p.is_decoded(3));
        assert_eq!((p.stride(), p.column(1), p.column(0)), (1, Some(0), None));
        assert_eq!(p.values(), &[5, 6]);
        assert_eq!(p.channel(1).collect::<Vec<_>>(), [5, 6]);
        assert_eq!(p.channel(0).collect::<Vec<_>>(), [SampleBlock::UNDECODED; 2]);
        assert_eq!(p.channel(2).collect::<Vec<_>>(), [SampleBlock::UNDECODED; 2]);
        assert_ne!(
            p,
            SampleBlock::from_interleaved(7, 3, &[0, 5, 0, 0, 6, 0]).unwrap()
        );
        // Channels 0 and 2 of 4: stored in channel order, twice the instants of a full block fit.
        let mut q = SampleBlock::empty();
        let n = MAX_BLOCK_VALUES / 2;
        q.fill_decoded(0, 4, n, 0b0101, |dst| {
            for (k, v) in dst.iter_mut().enumerate() {
                *v = k as i32;
            }
        })
        .unwrap();
        assert_eq!(
            (q.stride(), q.column(0), q.column(2), q.n_samples()),
            (2, Some(0), Some(1), n)
        );
        assert!(q.channel(2).eq((0..n).map(|i| (2 * i + 1) as i32)));
        assert!(q.fill_decoded(0, 4, n + 1, 0b0101, |_| {}).is_err());
        // A refill decodes every channel again.
        p.fill(0, 2, 1, |dst| dst.copy_from_slice(&[1, 2])).unwrap();
        assert!(p.all_decoded());
        assert_eq!(channel_mask(64), u64::MAX);
        assert_eq!(channel_mask(0), 0);
    }

    #[test]
    fn block_rejects_oversize_and_ragged() {
        assert!(SampleBlock::from_interleaved(0, 4, &vec![0; MAX_BLOCK_VALUES + 4]).is_err());
        assert!(SampleBlock::from_interleaved(0, 3, &[1, 2, 3, 4]).is_err());
        assert!(SampleBlock::from_interleaved(0, 0, &[]).is_err());
    }

    #[test]
    fn microvolts_use_the_channel_gain() {
        let info = DeviceInfo {
            protocol_version: 1,
            sample_rate_hz: 10_000,
            channels: vec![ChannelInfo {
                label: "a".into(),
                gain_nv_per_lsb: 50,
            }],
            adc_min: -(1 << 23),
            adc_max: (1 << 23) - 1,
            firmware_version: "x".into(),
            session_id: 1,
        };
        assert!((info.to_microvolts(0, 1000) - 50.0).abs() < 1e-12);
        assert!(info.is_saturated(-(1 << 23)));
        assert!(!info.is_saturated(0));
    }
}
