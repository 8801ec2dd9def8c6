//! The JSON Lines event sink (`--events`). One object per line; every object has `"v"` (schema version) and
//! `"type"`. Schema documented in README.md.

use anyhow::{Context, Result};
use ionm_core::{DeviceInfo, DeviceStatus, Gap, LinkEvent};
use ionm_io::IngestSnapshot;
use ionm_pipeline::PipelineSnapshot;
use serde::Serialize;
use std::io::{BufWriter, Write};
use std::path::Path;

/// Schema version of the event stream.
pub const SCHEMA_VERSION: u32 = 1;

/// One line of the event stream.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record<'a> {
    /// A device (re)declared itself.
    Device { wall_s: f64, device: &'a DeviceInfo },
    /// The link changed state.
    Link {
        wall_s: f64,
        stream_s: f64,
        link: &'a LinkEvent,
    },
    /// Samples are missing.
    Gap {
        wall_s: f64,
        stream_s: f64,
        gap: &'a Gap,
    },
    /// A notable device status.
    Status { wall_s: f64, status: &'a DeviceStatus },
    /// Per-second statistics.
    Stats {
        wall_s: f64,
        stream_s: f64,
        ingest: &'a IngestSnapshot,
        pipeline: &'a PipelineSnapshot,
    },
    /// The run ended.
    Summary {
        wall_s: f64,
        stream_s: f64,
        ingest: &'a IngestSnapshot,
        pipeline: &'a PipelineSnapshot,
    },
}

#[derive(Serialize)]
struct Line<'a> {
    v: u32,
    #[serde(flatten)]
    record: &'a Record<'a>,
}

/// Writes records to a file or stdout, flushing after each so that a killed run loses nothing written.
pub struct EventSink {
    out: Box<dyn Write + Send>,
}

impl EventSink {
    /// Opens `path` (`-` is stdout).
    pub fn open(path: &Path) -> Result<Self> {
        let out: Box<dyn Write + Send> = if path == Path::new("-") {
            Box::new(std::io::stdout())
        } else {
            let f =
                std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
            Box::new(BufWriter::new(f))
        };
        Ok(Self { out })
    }

    /// Writes one record.
    pub fn write(&mut self, record: &Record<'_>) -> Result<()> {
        serde_json::to_writer(
            &mut self.out,
            &Line {
                v: SCHEMA_VERSION,
                record,
            },
        )?;
        self.out.write_all(b"\n")?;
        self.out.flush()?;
        Ok(())
    }
}
