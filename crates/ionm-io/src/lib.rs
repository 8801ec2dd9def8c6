//! Getting data into ionm.
//!
//! - [`ByteSource`]: anything that yields protocol bytes and can be (re)opened: [`SerialSource`] (a serial port or
//!   pty, via `serialport`), [`TcpSource`] (loopback or network), [`ReaderSource`] (any `std::io::Read`, e.g. a
//!   capture file or the in-process simulator).
//! - [`Assembler`]: turns wire [`ionm_wire::Event`]s into [`ionm_core::Acquired`] items — device sessions, sample
//!   blocks, stimuli, status — and turns sequence and sample-index discontinuities into explicit
//!   [`ionm_core::Gap`]s. Pure, so it is tested without threads.
//! - [`spawn_reader`]: runs a source on a dedicated named thread: read → decode → assemble → push into an SPSC
//!   `ringbuf` that never blocks the reader (a full ring drops the frame, counts an overrun and reports a gap).
//!   It watches for silence (`signal_lost` after 500 ms), times out a handshake, and reconnects with backoff when
//!   the source disappears. [`IngestStats`] exposes every counter as atomics.
//! - [`ItemSource`] / [`spawn_replay`]: recordings and captures ([`CaptureSource`]) replayed at a chosen
//!   [`ReplaySpeed`] on a thread of their own, losslessly, with seeking through [`ReplayControl`].

mod assemble;
mod items;
mod reader;
mod source;
mod stats;

pub use assemble::Assembler;
pub use items::{CaptureSource, ItemSource, ReplayControl, ReplaySpeed, spawn_replay};
pub use reader::{AcquiredConsumer, ReaderConfig, ReaderHandle, spawn_reader};
pub use source::{ByteSource, ReadOutcome, ReaderSource, SerialSource, SourceError, TcpSource, list_ports};
pub use stats::{IngestSnapshot, IngestStats};
