//! The ionm wire protocol: how an acquisition device talks to the host over a serial line (or TCP).
//!
//! The crate is pure: no I/O, no allocation, `no_std`, so that the firmware of a real amplifier could use the very
//! code that `firmware-sim` and the host use. `docs/protocol.md` is the normative description; in short, every
//! frame is
//!
//! ```text
//! A5 5A | version u8 | type u8 | seq u16 | len u16 | payload (len bytes) | CRC-32 u32     (little-endian)
//! ```
//!
//! Main types:
//! - [`Encoder`] writes frames into a caller's buffer and numbers them.
//! - [`Decoder`] takes arbitrary byte chunks (split anywhere, with garbage, corruption and loss), resynchronises,
//!   rejects bad CRCs, and reports each frame as an [`Event`] borrowing its payload: [`DeviceInfoView`],
//!   [`SamplesView`], [`StimuliView`], [`Status`], or an explicit [`Event::SequenceGap`] when frames were lost.
//!   Its memory is one fixed frame buffer; [`DecoderStats`] counts what it saw.
#![no_std]

mod decode;
mod encode;
mod frame;

pub use decode::{Decoder, DecoderStats, Event, FrameError};
pub use encode::{ChannelDesc, DeviceDesc, EncodeError, Encoder};
pub use frame::{
    DEVICE_REVISION_STIMULUS_LEAD, DeviceInfoView, FrameType, HEADER_LEN, MAX_CHANNELS, MAX_FIRMWARE_LEN,
    MAX_FRAME_LEN, MAX_LABEL_LEN, MAX_PAYLOAD, MAX_SAMPLE_VALUES, MAX_STIMULI_PER_FRAME, PROTOCOL_VERSION,
    STIMULUS_LEAD_MS, SYNC, SamplesView, Status, StimuliView, Stimulus, TRAILER_LEN, stimulus_lead_samples,
};
