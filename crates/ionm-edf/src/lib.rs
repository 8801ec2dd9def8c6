//! EDF, EDF+, BDF and BDF+: a reader and a crash-safe streaming writer, owned by ionm.
//!
//! Main types:
//! - [`Header`] / [`SignalHeader`]: the parsed header, every field validated (printable ASCII, numbers, version,
//!   header size, reserved field, record count −1 allowed, any non-negative record duration). Errors
//!   ([`EdfError`]) name the field, the signal and the byte offset.
//! - [`EdfReader`]: reads any `Read + Seek` source. It serves the complete data records present, even when the
//!   header's count is −1, stale or larger than the file (a warning is logged through `tracing`); one
//!   [`Record`] at a time (bounded memory), whole signals as digital or physical values, each record's start
//!   time (so EDF+D gaps are visible) and the [`Annotation`]s of the EDF+ annotation signals.
//! - [`EdfWriter`]: writes EDF+/BDF+ (continuous or discontinuous) record by record, with an annotation signal
//!   holding each record's time-keeping TAL and user annotations; [`EdfWriter::flush`] leaves a valid file on
//!   storage (records first, then the record count rewritten in place).
//! - [`tal`]: the time-stamped annotation list codec.
//!
//! Physical values are `(dig - dmin) * (pmax - pmin) / (dmax - dmin) + pmin`, which also covers inverted physical
//! ranges (pmin > pmax). EDF samples are 16-bit and BDF samples 24-bit little-endian two's complement.
//!
//! ```
//! use std::io::Cursor;
//! use ionm_edf::{EdfReader, EdfWriter, SampleFormat, SignalSpec, StartDateTime, WriterConfig};
//!
//! let format = SampleFormat::Bdf24;
//! let config = WriterConfig {
//!     format,
//!     discontinuous: false,
//!     patient: Default::default(),
//!     recording: Default::default(),
//!     start: StartDateTime { year: 2025, month: 1, day: 2, hour: 3, minute: 4, second: 5 },
//!     first_record_offset: 0.5,
//!     record_duration: 0.1,
//!     signals: vec![SignalSpec::new("SSEP", "uV", 1000, (-500.0, 500.0), format)],
//!     annotation_bytes_per_record: 64,
//! };
//! let mut file = Vec::new();
//! let mut writer = EdfWriter::new(Cursor::new(&mut file), &config)?;
//! writer.add_annotation(0.55, None, "stimulus")?;
//! let samples: Vec<i32> = (0..1000).collect();
//! writer.write_record(&[&samples])?;
//! writer.flush()?; // crash-safe point: records on storage, count rewritten
//! writer.finish()?;
//!
//! let mut reader = EdfReader::new(Cursor::new(file))?;
//! assert_eq!(reader.header().sample_rate(0), Some(10_000.0));
//! assert_eq!(reader.read_signal_digital(0)?, samples);
//! assert_eq!(reader.first_record_start()?, 0.5);
//! assert_eq!(reader.annotations()?[0].text, "stimulus");
//! # Ok::<(), ionm_edf::EdfError>(())
//! ```

mod error;
mod header;
mod reader;
pub mod tal;
mod writer;

pub use error::{EdfError, Location, Result};
pub use header::{
    BDF_ANNOTATIONS, EDF_ANNOTATIONS, Header, MAX_SIGNALS, PatientId, RecordingId, SampleFormat,
    SignalHeader, SignalKind, StartDateTime, Variant,
};
pub use reader::{Annotation, AnnotationScan, EdfReader, Layout, Record};
pub use writer::{Durable, EdfWriter, SignalSpec, WriterConfig};
