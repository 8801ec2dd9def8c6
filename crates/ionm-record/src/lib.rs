//! Recording of the acquisition stream to BDF+ and replay of EDF/BDF files as an acquisition stream.
//!
//! Main types:
//! - [`Recorder`] / [`RecorderHandle`]: a recorder on its own thread (`ionm-recorder`) behind a bounded queue.
//!   The processing thread offers `Acquired` items and `Event`s with [`RecorderHandle::try_send`] /
//!   [`RecorderHandle::try_send_event`], which never block; a full queue drops and counts
//!   ([`RecorderStats::dropped_items`]). [`RecorderConfig`] sets the header fields, protocol text, record
//!   duration, flush interval and queue size.
//! - [`RecordingWriter`]: the same recorder without thread or queue (synchronous).
//! - [`ReplaySource`] / [`ReplayConfig`]: an ionm recording — or any EDF/EDF+/BDF/BDF+ file — as the stream of
//!   `Acquired` items a device would have produced (device, sample blocks, stimuli, gaps), with seek.
//! - [`Sidecar`]: the `<file>.json` beside each recording.
//!
//! # The file format (version [`FORMAT_VERSION`])
//!
//! - **BDF+C** (24-bit): one signal per device channel in device order, label from the device (printable
//!   ASCII, ≤ 16 characters; the sidecar keeps the original), physical dimension `uV` (`mV`/`V` only when
//!   ±10⁷ µV would not fit the 8-character fields), **digital range = the ADC range** and physical range = ADC
//!   range × gain, so the raw ADC values are stored exactly and the integer gain in nV/LSB is recovered from the
//!   header. (The 8-character physical fields are rounded: other readers see the scale within ~1e-6 and an
//!   offset below 0.5 µV — 0.41 µV at 24 nV/LSB; ionm's replay uses the digital values.) Then the trigger
//!   channel **`Stimulus`** (same rate, digital = physical 0…255): the stimulator's wire code
//!   ([`ionm_core::Stimulator::code`]) at the exact stimulus sample and 0 elsewhere; when two stimulators fire at
//!   one sample the lower code is written (both are annotated). Last, `BDF Annotations`.
//! - **Why +C and not +D**: EDFlib (pyedflib, EDFbrowser's library) refuses every EDF+D/BDF+D file, and MNE
//!   reads one as if it were continuous, so that every time after a gap comes out wrong. In BDF+C every gap is
//!   padded (value 0) and annotated, which keeps the time axis right in all readers and makes MNE reject the
//!   padding (`BAD_…`). A gap longer than `max_padded_gap_s` (default 30 s) is not padded: the file ends (the gap
//!   annotated at its end) and the recording continues in a numbered file. `RecorderConfig::discontinuous`
//!   writes BDF+D instead: a gap at a record boundary then just starts the next record later, a gap inside a
//!   record pads that record only.
//! - **Records of 0.1 s** when the rate is a multiple of 10 Hz (else 1 s): the end of the recording pads at most
//!   one short record; the record (≈ 200 kB at 32 channels × 20 kHz) is the unit of crash safety and of padding,
//!   and readers that load whole records stay light. The annotation signal holds 10 kB/s (1 kB per record).
//! - **Time**: file time 0 is the first recorded sample; sample index `i` is at `(i − first) / rate` s, and an
//!   event at stream time `t` (s since index 0) at `t − first / rate` (anything earlier than the first recorded
//!   sample is annotated at 0). The header's start date/time is the wall
//!   clock (UTC unless given) when the header was written.
//! - **Annotations** (TALs, onsets to 1 ns): `ionm start session <id> sample <first index> protocol <v>
//!   firmware <text>` (record 0, onset 0); `stim <stimulator> <intensity> <unit> <pw>us[ x<pulses>]` for every
//!   stimulus; `BAD_gap <cause> <n> samples[ <k> frames]` with duration, for every gap (cause `lost_frames`,
//!   `overrun`, `disconnected`, `recorder_overrun`, `unexplained`), written into the record holding its first
//!   padded sample; `alarm …`, `baseline …`, `marker …`, `correction …`, `link …`, `status …`;
//!   `device restart: …` / `device changed: …` / `gap of … s: …` where a file ends and the next begins; and
//!   `BAD_end_padding` at the first padded sample after the last recorded one. [`ReplaySource`] uses the gap and
//!   end annotations to skip exactly the padding, so it reproduces the recorded samples and the gaps exactly.
//! - **Crash safety**: records are written as they fill; a flush (records synced, then the header's record
//!   count rewritten and synced) happens after every `flush_interval` (default 250 ms) of recorded samples and of
//!   wall time. After `kill -9` the file opens in pyedflib, MNE and ionm up to the last flush at least.
//! - **New files**: a new device session, or any change of the device description, closes the file and
//!   continues in a numbered file (`rec.bdf`, `rec-2.bdf`, …), each with its own sidecar naming its neighbours.
//! - **Sidecar** `<file>.json` ([`Sidecar`]): device, protocol text, record layout, first sample index; written
//!   with the header, rewritten with counts when the file is closed.
//! - **Header**: patient `X X X X` unless configured; recording `Startdate dd-MMM-yyyy <admincode|X>
//!   <technician|X> ionm <firmware>` (EDF+ subfields: the equipment is `ionm`, the firmware follows with spaces
//!   as `_`).

mod error;
mod recorder;
mod replay;
mod sidecar;
mod stats;
pub mod text;
mod time;
mod writer;

pub use error::{RecorderError, ReplayError};
pub use recorder::{Recorder, RecorderHandle};
pub use replay::{AnnotationRule, MAX_INDEXED_ANNOTATIONS, MatchKind, ReplayConfig, ReplaySource};
pub use sidecar::{SIDECAR_FORMAT, Sidecar, SidecarCounts, sidecar_path};
pub use stats::{RecorderSnapshot, RecorderStats};
pub use writer::{FileSummary, RecorderConfig, RecordingSummary, RecordingWriter, numbered_path};

/// Version of the recording format described in the crate docs.
pub const FORMAT_VERSION: u32 = 1;

/// Label of the trigger channel.
pub const TRIGGER_LABEL: &str = "Stimulus";
