//! The JSON Lines event sink (`--events`): one object per line, `"v"` (schema version) first, then the event
//! (`"type"` and its fields, as `ionm_core::events::Event` serialises). Schema documented in README.md.

use anyhow::{Context, Result};
use ionm_core::events::{Event, SCHEMA_VERSION};
use serde::Serialize;
use std::io::{BufWriter, Write};
use std::path::Path;

#[derive(Serialize)]
struct Line<'a> {
    v: u32,
    #[serde(flatten)]
    event: &'a Event,
}

/// Writes events to a file or stdout, flushed after each line so that a killed run loses nothing written.
pub struct EventSink {
    out: Box<dyn Write + Send>,
    waveforms: bool,
}

impl EventSink {
    /// Opens `path` (`-` is stdout). Waveforms are dropped unless `waveforms`.
    pub fn open(path: &Path, waveforms: bool) -> Result<Self> {
        let out: Box<dyn Write + Send> = if path == Path::new("-") {
            Box::new(std::io::stdout())
        } else {
            let f =
                std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
            Box::new(BufWriter::new(f))
        };
        Ok(Self { out, waveforms })
    }

    /// Writes one event.
    pub fn write(&mut self, event: &Event) -> Result<()> {
        let stripped;
        let event = match event {
            Event::Average(a) if !self.waveforms && a.waveform.is_some() => {
                let mut a = a.clone();
                a.waveform = None;
                stripped = Event::Average(a);
                &stripped
            }
            Event::Baseline(b) if !self.waveforms && b.waveform.is_some() => {
                let mut b = b.clone();
                b.waveform = None;
                stripped = Event::Baseline(b);
                &stripped
            }
            e => e,
        };
        serde_json::to_writer(
            &mut self.out,
            &Line {
                v: SCHEMA_VERSION,
                event,
            },
        )?;
        self.out.write_all(b"\n")?;
        self.out.flush()?;
        Ok(())
    }
}
