//! The sidecar `<file>.json` written beside each recording: the device as declared (exact labels, gains, ADC
//! range, session, firmware), the protocol text, the stream position of the first sample, and counts at the end.

use ionm_core::DeviceInfo;
use serde::{Deserialize, Serialize};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Value of [`Sidecar::format`].
pub const SIDECAR_FORMAT: &str = "ionm-recording";

/// Largest sidecar the replay reads (a protocol text is a few kB; anything near this is not ours).
pub const MAX_SIDECAR_BYTES: u64 = 8 << 20;

/// Counters of one recording file, written when the file is closed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SidecarCounts {
    /// Data records written.
    pub records: u64,
    /// Sample instants recorded (padding excluded).
    pub samples: u64,
    /// Stimuli received.
    pub stimuli: u64,
    /// Stimuli that arrived after the record holding their sample was written (annotated, not in the trigger
    /// channel).
    pub late_stimuli: u64,
    /// Gaps recorded.
    pub gaps: u64,
    /// Samples missing in those gaps.
    pub gap_samples: u64,
    /// Annotations written.
    pub annotations: u64,
    /// Annotations dropped (queue limit).
    pub annotations_dropped: u64,
    /// Samples outside the ADC range, clamped to it.
    pub clamped_samples: u64,
    /// Samples that overlapped ones already recorded and were skipped.
    pub overlapping_samples: u64,
    /// Absolute index one past the last recorded sample.
    pub end_index: Option<u64>,
}

/// Everything the sidecar holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sidecar {
    /// Always [`SIDECAR_FORMAT`].
    pub format: String,
    /// [`crate::FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// File name of the recording (no directory).
    pub file: String,
    /// When the recorder wrote the header, UTC, ISO 8601.
    pub created_utc: String,
    /// The header's start date and time, ISO 8601 without zone (UTC unless the caller gave another start).
    pub header_start: String,
    /// The device exactly as declared.
    pub device: DeviceInfo,
    /// The protocol given in the recorder's configuration (free text, e.g. TOML).
    pub protocol: Option<String>,
    /// Data record duration, s.
    pub record_duration_s: f64,
    /// Samples per data record per signal.
    pub samples_per_record: usize,
    /// Absolute sample index of file time 0 (the first recorded sample).
    pub first_index: u64,
    /// Label of the trigger channel.
    pub trigger_label: String,
    /// The file this one continues (after a device restart or a layout change).
    pub previous_file: Option<String>,
    /// The file that continues this one.
    pub next_file: Option<String>,
    /// True once the recorder closed the file normally.
    pub finished: bool,
    /// Why the file was closed: `finished`, `device_restart`, `device_changed`, or an error.
    pub end_reason: Option<String>,
    /// Counters (final when `finished`).
    pub counts: SidecarCounts,
}

/// The sidecar path of a recording: the file name with `.json` appended (`rec.bdf` → `rec.bdf.json`).
pub fn sidecar_path(recording: &Path) -> PathBuf {
    let mut s = recording.as_os_str().to_owned();
    s.push(".json");
    PathBuf::from(s)
}

impl Sidecar {
    /// Writes the sidecar atomically (temporary file, then rename).
    pub fn write(&self, recording: &Path) -> std::io::Result<()> {
        let path = sidecar_path(recording);
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_data()?;
        }
        std::fs::rename(&tmp, &path)
    }

    /// Reads the sidecar of `recording`: `Ok(None)` when there is none, an error when it exists but is not a
    /// readable ionm sidecar.
    pub fn read(recording: &Path) -> Result<Option<Self>, String> {
        let path = sidecar_path(recording);
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        if meta.len() > MAX_SIDECAR_BYTES {
            return Err(format!(
                "{}: {} bytes, more than a sidecar can be ({MAX_SIDECAR_BYTES})",
                path.display(),
                meta.len()
            ));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let s: Sidecar = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        if s.format != SIDECAR_FORMAT {
            return Err(format!(
                "{}: format {:?}, expected {SIDECAR_FORMAT:?}",
                path.display(),
                s.format
            ));
        }
        Ok(Some(s))
    }
}
