//! The run loops behind `ionm live` and `ionm demo`.

use crate::RunArgs;
use crate::events::{EventSink, Record};
use anyhow::{Context, Result};
use firmware_sim::transmit::{SimReader, Speed, Transmitter};
use firmware_sim::{Scenario, SimConfig, Simulator};
use ionm_io::{ByteSource, IngestSnapshot, ReaderConfig, ReaderSource};
use ionm_pipeline::{Pipeline, PipelineEvent, PipelineSnapshot};
use std::io::Write;
use std::time::{Duration, Instant};

/// The in-process simulator as a byte source, so that `ionm demo` exercises the same decoder as a device.
pub fn demo_source(
    scenario: &str,
    channels: usize,
    rate: u32,
    seed: u64,
    speed: Speed,
) -> Result<Box<dyn ByteSource>> {
    let scenario = match Scenario::builtin(scenario) {
        Some(s) => s,
        None => {
            let text = std::fs::read_to_string(scenario).with_context(|| {
                format!("{scenario:?} is neither a built-in scenario nor a readable file")
            })?;
            Scenario::from_toml(&text).with_context(|| format!("in scenario file {scenario}"))?
        }
    };
    let name = format!("simulator ({})", scenario.name());
    let sim = Simulator::new(SimConfig {
        channels,
        sample_rate_hz: rate,
        seed,
        mains_hz: 50.0,
        scenario,
    })
    .context("cannot configure the simulator")?;
    Ok(Box::new(ReaderSource::new(
        name,
        SimReader::new(Transmitter::new(sim), speed),
    )))
}

/// `ionm ports`.
pub fn ports() -> Result<()> {
    let ports = ionm_io::list_ports()?;
    let mut out = std::io::stdout().lock();
    if ports.is_empty() {
        writeln!(out, "no serial ports found")?;
    }
    for (path, kind) in ports {
        writeln!(out, "{path}\t{kind}")?;
    }
    Ok(())
}

struct Terminal {
    out: Box<dyn Write>,
}

impl Terminal {
    fn line(&mut self, s: std::fmt::Arguments<'_>) {
        // The terminal is best effort: a closed pipe must not stop acquisition.
        let _ = self.out.write_fmt(s);
        let _ = self.out.write_all(b"\n");
        let _ = self.out.flush();
    }
}

fn stream_s(p: &PipelineSnapshot) -> f64 {
    if p.sample_rate_hz == 0 {
        0.0
    } else {
        p.stream_index as f64 / p.sample_rate_hz as f64
    }
}

fn stats_line(wall: f64, i: &IngestSnapshot, p: &PipelineSnapshot, per_s: u64) -> String {
    format!(
        "t={wall:7.1}s stream={:8.2}s frames={} samples={} ({}/s) stimuli={} gaps={} ({} samples) crc={} \
         discarded={}B lost_frames={} rejected={} overruns={} queue={} (max {}) decode={}µs (max {}µs){}",
        stream_s(p),
        i.frames,
        p.samples,
        per_s,
        p.stimuli,
        p.gaps,
        i.gap_samples,
        i.crc_errors,
        i.bytes_discarded,
        i.frames_lost,
        i.frames_rejected,
        i.overruns,
        p.queue_depth,
        p.queue_depth_max,
        i.decode_latency_ns / 1000,
        i.decode_latency_max_ns / 1000,
        if i.connected { "" } else { " DISCONNECTED" },
    )
}

/// Runs the pipeline on `source` until it ends, `--duration` passes, or Ctrl-C.
pub fn run(source: Box<dyn ByteSource>, args: &RunArgs) -> Result<()> {
    let mut sink = args.events.as_deref().map(EventSink::open).transpose()?;
    let to_stdout = args
        .events
        .as_deref()
        .is_some_and(|p| p == std::path::Path::new("-"));
    let mut term = Terminal {
        out: if to_stdout {
            Box::new(std::io::stderr())
        } else {
            Box::new(std::io::stdout())
        },
    };
    if !args.headless {
        tracing::warn!("the dashboard is not built yet: running headless");
    }
    let pipeline = Pipeline::start(source, ReaderConfig::default()).context("cannot start the pipeline")?;
    let started = Instant::now();
    let deadline = args
        .duration
        .map(|d| started + Duration::from_secs_f64(d.max(0.0)));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut prev_samples = 0;
    let mut finished = false;
    rt.block_on(async {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        let mut poll = tokio::time::interval(Duration::from_millis(20));
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        loop {
            tokio::select! {
                _ = &mut ctrl_c => {
                    tracing::info!("interrupted");
                    break;
                }
                _ = tick.tick() => {
                    let wall = started.elapsed().as_secs_f64();
                    let i = pipeline.ingest().snapshot_and_reset_max();
                    let p = pipeline.stats().snapshot();
                    if !args.quiet {
                        term.line(format_args!("{}", stats_line(wall, &i, &p, p.samples - prev_samples)));
                    }
                    prev_samples = p.samples;
                    if let Some(s) = sink.as_mut() {
                        s.write(&Record::Stats { wall_s: wall, stream_s: stream_s(&p), ingest: &i, pipeline: &p })?;
                    }
                }
                _ = poll.tick() => {
                    if drain(&pipeline, started, &mut sink, &mut term)? {
                        finished = true;
                        break;
                    }
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        break;
                    }
                }
            }
        }
        anyhow::Ok(())
    })?;
    let ingest = pipeline.ingest().clone();
    let stats = pipeline.stats().clone();
    // Stop the reader, let the processing thread drain the ring, then publish what is left.
    let wall = started.elapsed().as_secs_f64();
    let events: Vec<PipelineEvent> = {
        let rx_pipeline = pipeline;
        let leftover: Vec<PipelineEvent> = rx_pipeline.events().try_iter().collect();
        rx_pipeline.stop();
        leftover
    };
    for ev in events {
        publish(&ev, wall, &stats.snapshot(), &mut sink, &mut term)?;
    }
    let i = ingest.snapshot();
    let p = stats.snapshot();
    let mean = if wall > 0.0 {
        (p.samples as f64 / wall) as u64
    } else {
        0
    };
    term.line(format_args!(
        "summary: {}{}",
        stats_line(wall, &i, &p, mean),
        if finished { " (source ended)" } else { "" }
    ));
    if let Some(s) = sink.as_mut() {
        s.write(&Record::Summary {
            wall_s: wall,
            stream_s: stream_s(&p),
            ingest: &i,
            pipeline: &p,
        })?;
    }
    Ok(())
}

/// Publishes pending pipeline events; true when the pipeline has finished.
fn drain(
    pipeline: &Pipeline,
    started: Instant,
    sink: &mut Option<EventSink>,
    term: &mut Terminal,
) -> Result<bool> {
    let wall = started.elapsed().as_secs_f64();
    let p = pipeline.stats().snapshot();
    let mut done = false;
    for ev in pipeline.events().try_iter() {
        done |= matches!(ev, PipelineEvent::Finished);
        publish(&ev, wall, &p, sink, term)?;
    }
    Ok(done)
}

fn publish(
    ev: &PipelineEvent,
    wall_s: f64,
    p: &PipelineSnapshot,
    sink: &mut Option<EventSink>,
    term: &mut Terminal,
) -> Result<()> {
    let stream = stream_s(p);
    let record = match ev {
        PipelineEvent::Device(d) => {
            term.line(format_args!(
                "device: {} channels at {} Hz, firmware {:?}, session {}",
                d.n_channels(),
                d.sample_rate_hz,
                d.firmware_version,
                d.session_id
            ));
            Record::Device { wall_s, device: d }
        }
        PipelineEvent::Link(l) => {
            term.line(format_args!("link: {}", serde_json::to_string(l)?));
            Record::Link {
                wall_s,
                stream_s: stream,
                link: l,
            }
        }
        PipelineEvent::Gap(g) => {
            term.line(format_args!(
                "gap: samples {}..{} ({} samples, {} frames, {:?})",
                g.from,
                g.to,
                g.samples(),
                g.frames,
                g.cause
            ));
            Record::Gap {
                wall_s,
                stream_s: stream,
                gap: g,
            }
        }
        PipelineEvent::Status(s) => Record::Status { wall_s, status: s },
        PipelineEvent::Finished => return Ok(()),
    };
    if let Some(s) = sink.as_mut() {
        s.write(&record)?;
    }
    Ok(())
}
