//! Errors of the recorder and of the replay.

use std::path::PathBuf;

/// Why recording failed.
#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    /// A file could not be created or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The BDF writer refused something or failed.
    #[error("BDF writer: {0}")]
    Edf(#[from] ionm_edf::EdfError),
    /// The configuration is invalid.
    #[error("invalid recorder configuration: {0}")]
    Config(String),
    /// The declared device cannot be recorded (no channel, a gain of 0, an ADC range wider than 24 bits…).
    #[error("device cannot be recorded: {0}")]
    Device(String),
    /// The recorder thread could not be started.
    #[error("could not start the recorder thread: {0}")]
    Spawn(std::io::Error),
    /// The recorder thread panicked (a bug); the file is valid up to its last flush.
    #[error("the recorder thread panicked")]
    Panicked,
}

/// Why a file cannot be replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The file could not be opened or its header is invalid.
    #[error("{path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// What the EDF reader said.
        source: ionm_edf::EdfError,
    },
    /// Reading a record or an annotation failed.
    #[error("{0}")]
    Edf(#[from] ionm_edf::EdfError),
    /// No signal can be replayed (none is a voltage at a whole-number sample rate, or the file has none).
    #[error("no usable signal: {0}")]
    NoUsableSignal(String),
    /// A requested channel does not exist or cannot be used with the others.
    #[error("channel selection: {0}")]
    Channel(String),
    /// The records cannot be put on one sample grid (overlapping EDF+D records, absurd time stamps).
    #[error("record layout: {0}")]
    Layout(String),
}
