//! The error type of the crate.

use std::fmt;

/// Where in a file a problem was found: the signal it concerns (if any) and the absolute byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// Zero-based signal number, when the problem belongs to one signal.
    pub signal: Option<usize>,
    /// Absolute byte offset in the file.
    pub offset: u64,
}

impl Location {
    /// A location in the fixed part of the header (no signal).
    pub fn at(offset: u64) -> Self {
        Self { signal: None, offset }
    }

    /// A location in a per-signal field or in one signal's data.
    pub fn signal(signal: usize, offset: u64) -> Self {
        Self {
            signal: Some(signal),
            offset,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.signal {
            Some(s) => write!(f, "signal {s}, byte {}", self.offset),
            None => write!(f, "byte {}", self.offset),
        }
    }
}

/// Everything that can go wrong reading or writing an EDF/BDF file.
#[derive(Debug, thiserror::Error)]
pub enum EdfError {
    /// The underlying reader or writer failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),

    /// The file ends before the header does.
    #[error("file too short: {what} needs {needed} bytes but the file has {available}")]
    Truncated {
        /// What was being read (e.g. "fixed header", "signal headers").
        what: &'static str,
        /// Bytes needed.
        needed: u64,
        /// Bytes available.
        available: u64,
    },

    /// A header field is malformed or inconsistent.
    #[error("invalid header field `{field}` ({location}): {reason}")]
    Field {
        /// The field's name as in the EDF specification (e.g. "number of data records").
        field: &'static str,
        /// Which signal and byte offset.
        location: Location,
        /// What is wrong, with the offending text.
        reason: String,
    },

    /// A time-stamped annotation list (TAL) in an annotation signal is malformed.
    #[error("invalid annotation (TAL) in data record {record} ({location}): {reason}")]
    Tal {
        /// Zero-based data record number.
        record: u64,
        /// Annotation signal and absolute byte offset of the bad byte.
        location: Location,
        /// What is wrong.
        reason: String,
    },

    /// A signal number beyond the header's signal count.
    #[error("signal {index} does not exist (the file has {count} signals)")]
    NoSuchSignal {
        /// Requested signal.
        index: usize,
        /// Number of signals.
        count: usize,
    },

    /// A data record number beyond the readable records.
    #[error("data record {index} does not exist (the file has {count} complete records)")]
    NoSuchRecord {
        /// Requested record.
        index: u64,
        /// Number of complete records.
        count: u64,
    },

    /// The record was read without this signal ([`EdfReader::read_record_signals`](crate::EdfReader::read_record_signals)).
    #[error("signal {index} was not read with data record {record}")]
    SignalNotRead {
        /// Signal number.
        index: usize,
        /// Zero-based data record number.
        record: u64,
    },

    /// The operation needs an annotation signal, or a data signal, and the signal is of the other kind.
    #[error("signal {index} is {actual}, expected {expected}")]
    WrongSignalKind {
        /// Signal number.
        index: usize,
        /// What the signal is.
        actual: &'static str,
        /// What the operation needs.
        expected: &'static str,
    },

    /// The writer was configured with a value that cannot be stored in an EDF/BDF header.
    #[error("invalid writer configuration: {0}")]
    Config(String),

    /// A record passed to the writer does not match the configured signals.
    #[error("record {record}, signal {signal}: {reason}")]
    RecordShape {
        /// Zero-based record number being written.
        record: u64,
        /// Signal number (in the writer's data-signal order).
        signal: usize,
        /// What is wrong.
        reason: String,
    },

    /// A record's start time breaks the file's time order (EDF+C must be contiguous, EDF+D chronological).
    #[error("record {record}: {reason}")]
    RecordTime {
        /// Zero-based record number being written.
        record: u64,
        /// What is wrong.
        reason: String,
    },

    /// The writer was already finished or failed earlier.
    #[error("the writer is finished (or a previous write failed); no more records can be written")]
    Finished,

    /// An annotation cannot be written.
    #[error("annotation cannot be written: {0}")]
    Annotation(String),

    /// `finish()` finalised a valid file but some queued annotations did not fit into the records written.
    #[error(
        "{count} annotation(s) did not fit into the data records written and were dropped (the file is valid)"
    )]
    AnnotationsDropped {
        /// How many annotations were dropped.
        count: usize,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = EdfError> = std::result::Result<T, E>;
