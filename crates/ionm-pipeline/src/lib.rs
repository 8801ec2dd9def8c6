//! The ionm runtime.
//!
//! - [`Pipeline`]: owns the acquisition side (a live reader from [`ionm_io::spawn_reader`] or a replay from
//!   [`ionm_io::spawn_replay`]) and the processing thread `ionm-processing` that drains its ring buffer. The
//!   processing thread never blocks the reader: it pops what is there and naps briefly (200 µs) when the ring
//!   is empty.
//! - On the processing thread, every item goes through the [`StreamChecker`] (nothing may be stitched over a
//!   gap), the DSP [`ionm_dsp::Engine`] (filters, sweeps, averages, measurements) and the
//!   [`ionm_monitor::Monitor`] (baselines, clinical and technical alarms). What they conclude is published as
//!   [`ionm_core::events::Event`]s, in stream order and stream time, on the event bus: an `std::sync::mpsc`
//!   channel of [`PipelineEvent`] read by the application (terminal, JSON Lines, recorder, dashboard).
//! - [`Command`]s (re-baseline, acknowledge, marker, peak correction) go the other way, through a channel the
//!   processing thread polls without blocking.
//! - [`PipelineStats`]: counters of the processing side (atomics), with the ring's queue depth.

mod checker;
mod process;
mod scope;

pub use checker::StreamChecker;
pub use scope::ScopeTap;

use ionm_core::events::Event;
use ionm_dsp::Protocol;
use ionm_io::{
    AcquiredConsumer, ByteSource, IngestStats, ItemSource, ReaderConfig, ReaderHandle, ReplayControl,
    ReplaySpeed, spawn_reader, spawn_replay,
};
use ionm_monitor::Criteria;
use process::Processor;
use ringbuf::traits::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the processing thread publishes.
#[allow(clippy::large_enum_variant)] // Moved once per event (a few a second), never stored in bulk.
#[derive(Debug, Clone)]
pub enum PipelineEvent {
    /// An event of the stream.
    Event(Event),
    /// Processing cannot go on (the protocol does not fit the device); the run should stop.
    Fatal(String),
    /// The processing thread ended (the source ended or the pipeline was stopped).
    Finished,
}

/// A user command for the processing thread.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Take the next average of this trace (all traces when `None`) as the new baseline.
    Baseline {
        /// Trace name.
        trace: Option<String>,
    },
    /// Acknowledge an active alarm.
    Acknowledge {
        /// Alarm id.
        id: u64,
    },
    /// A surgical or user marker.
    Marker {
        /// One of `ionm_core::events::SURGICAL_MARKERS`, or `note`.
        kind: String,
        /// Free text.
        text: String,
    },
    /// A corrected peak.
    Correction {
        /// Trace name.
        trace: String,
        /// Average sequence number.
        sequence: u64,
        /// Peak name.
        peak: String,
        /// Latency, ms.
        latency_ms: f64,
        /// Amplitude, µV.
        amplitude_uv: f64,
    },
}

/// How the processing thread works.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Channels, filters, windows, averaging, peaks.
    pub protocol: Protocol,
    /// Alarm criteria per modality name (`ssep-upper`, `mep`, …); presets where absent.
    pub criteria: BTreeMap<String, Criteria>,
    /// Put waveforms into average and baseline events (for the dashboard).
    pub waveforms: bool,
    /// Stream seconds between stats events.
    pub stats_every_s: f64,
    /// Emit sweeps as soon as their data is in whenever the ring runs empty (live: lowest latency). Off for
    /// offline runs, where waiting for whole FFT blocks is several times cheaper and event order must not
    /// depend on thread timing.
    pub flush_when_idle: bool,
    /// Record everything (raw samples, stimuli, gaps, alarms, baselines, markers) to this BDF+ file.
    pub record: Option<(std::path::PathBuf, ionm_record::RecorderConfig)>,
    /// Tap the raw and filtered signal of every channel for a live view ([`Pipeline::take_scope`]).
    pub scope: bool,
}

impl PipelineConfig {
    /// A configuration with preset criteria, no waveforms, stats every 10 s.
    pub fn new(protocol: Protocol) -> Self {
        Self {
            protocol,
            criteria: BTreeMap::new(),
            waveforms: false,
            stats_every_s: 10.0,
            flush_when_idle: true,
            record: None,
            scope: false,
        }
    }
}

/// Counters of the processing side.
#[derive(Debug, Default)]
pub struct PipelineStats {
    /// Sample instants processed.
    pub samples: AtomicU64,
    /// Index one past the last processed sample of the current session.
    pub stream_index: AtomicU64,
    /// Stimuli processed.
    pub stimuli: AtomicU64,
    /// Gaps processed.
    pub gaps: AtomicU64,
    /// Blocks that did not continue the stream and had no gap before them (must stay 0).
    pub discontinuities: AtomicU64,
    /// Items waiting in the ring buffer when last looked at.
    pub queue_depth: AtomicU64,
    /// Largest queue depth seen.
    pub queue_depth_max: AtomicU64,
    /// Sample rate of the current device (0 before the first device).
    pub sample_rate_hz: AtomicU64,
    /// Nanoseconds the processing thread spent on the last item (busy time, not waiting).
    pub process_ns_last: AtomicU64,
    /// Total busy nanoseconds of the processing thread.
    pub process_ns_total: AtomicU64,
}

/// A plain copy of [`PipelineStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[allow(missing_docs)] // Same fields as PipelineStats.
pub struct PipelineSnapshot {
    pub samples: u64,
    pub stream_index: u64,
    pub stimuli: u64,
    pub gaps: u64,
    pub discontinuities: u64,
    pub queue_depth: u64,
    pub queue_depth_max: u64,
    pub sample_rate_hz: u64,
    pub process_ns_total: u64,
}

impl PipelineStats {
    /// Reads every counter.
    pub fn snapshot(&self) -> PipelineSnapshot {
        PipelineSnapshot {
            samples: self.samples.load(Relaxed),
            stream_index: self.stream_index.load(Relaxed),
            stimuli: self.stimuli.load(Relaxed),
            gaps: self.gaps.load(Relaxed),
            discontinuities: self.discontinuities.load(Relaxed),
            queue_depth: self.queue_depth.load(Relaxed),
            queue_depth_max: self.queue_depth_max.load(Relaxed),
            sample_rate_hz: self.sample_rate_hz.load(Relaxed),
            process_ns_total: self.process_ns_total.load(Relaxed),
        }
    }
}

/// A running pipeline: acquisition thread + processing thread + event bus.
pub struct Pipeline {
    reader: Option<ReaderHandle>,
    ingest: Arc<IngestStats>,
    stats: Arc<PipelineStats>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    events: mpsc::Receiver<PipelineEvent>,
    commands: mpsc::Sender<Command>,
    replay: Option<Arc<ReplayControl>>,
    recorder: Option<Arc<ionm_record::RecorderStats>>,
    scope: Option<mpsc::Receiver<ScopeTap>>,
    scope_dropped: Arc<AtomicU64>,
}

impl Pipeline {
    /// Starts reading a live `source` and processing what it yields.
    /// With a lossless reader (a simulator faster than real time) sweeps are not flushed on idle, so that the
    /// events do not depend on thread timing.
    pub fn start(
        source: impl ByteSource,
        reader: ReaderConfig,
        mut config: PipelineConfig,
    ) -> std::io::Result<Self> {
        if reader.lossless {
            config.flush_when_idle = false;
        }
        let (handle, consumer) = spawn_reader(source, reader)?;
        Self::with_reader(handle, consumer, None, config)
    }

    /// Starts replaying `source` at `speed` (losslessly) and processing it.
    pub fn replay(
        source: impl ItemSource,
        speed: ReplaySpeed,
        mut config: PipelineConfig,
    ) -> std::io::Result<Self> {
        config.flush_when_idle = false;
        let (handle, consumer, control) = spawn_replay(source, speed, 1024)?;
        Self::with_reader(handle, consumer, Some(control), config)
    }

    fn with_reader(
        handle: ReaderHandle,
        consumer: AcquiredConsumer,
        replay: Option<Arc<ReplayControl>>,
        config: PipelineConfig,
    ) -> std::io::Result<Self> {
        let ingest = handle.stats().clone();
        let stats = Arc::new(PipelineStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let recorder = match &config.record {
            Some((path, rc)) => {
                let mut r = ionm_record::Recorder::create(path, rc.clone()).map_err(std::io::Error::other)?;
                // Offline (replay, lossless simulator: no flushing on idle) the processing may outrun the disk;
                // waiting loses nothing there, dropping would put gaps into the recording.
                r.set_blocking(!config.flush_when_idle);
                Some(r)
            }
            None => None,
        };
        let recorder_stats = recorder.as_ref().map(|r| r.stats().clone());
        let scope_dropped = Arc::new(AtomicU64::new(0));
        let (scope_writer, scope_rx) = if config.scope {
            let (tx, rx) = mpsc::channel();
            (Some(scope::ScopeWriter::new(tx, scope_dropped.clone())), Some(rx))
        } else {
            (None, None)
        };
        let (tx, events) = mpsc::channel();
        let (commands, cmd_rx) = mpsc::channel();
        let thread = {
            let (stats, stop, ingest) = (stats.clone(), stop.clone(), ingest.clone());
            std::thread::Builder::new()
                .name("ionm-processing".into())
                .spawn(move || {
                    process(
                        consumer,
                        Processor::new(config, recorder, scope_writer),
                        &stats,
                        &ingest,
                        &stop,
                        &tx,
                        &cmd_rx,
                    )
                })?
        };
        Ok(Self {
            reader: Some(handle),
            ingest,
            stats,
            stop,
            thread: Some(thread),
            events,
            commands,
            replay,
            recorder: recorder_stats,
            scope: scope_rx,
            scope_dropped,
        })
    }

    /// Counters of the reader.
    pub fn ingest(&self) -> &Arc<IngestStats> {
        &self.ingest
    }

    /// Counters of the processing thread.
    pub fn stats(&self) -> &Arc<PipelineStats> {
        &self.stats
    }

    /// The event bus.
    pub fn events(&self) -> &mpsc::Receiver<PipelineEvent> {
        &self.events
    }

    /// A sender of commands to the processing thread.
    pub fn commands(&self) -> mpsc::Sender<Command> {
        self.commands.clone()
    }

    /// The live-signal taps (one per device session), when [`PipelineConfig::scope`] is set. Taken once.
    pub fn take_scope(&mut self) -> Option<mpsc::Receiver<ScopeTap>> {
        self.scope.take()
    }

    /// Scope samples the UI did not drain in time (the acquisition is unaffected).
    pub fn scope_dropped(&self) -> u64 {
        self.scope_dropped.load(Relaxed)
    }

    /// The recorder's counters, when recording.
    pub fn recorder(&self) -> Option<&Arc<ionm_record::RecorderStats>> {
        self.recorder.as_ref()
    }

    /// Replay controls (seek, speed, pause), when replaying.
    pub fn replay_control(&self) -> Option<&Arc<ReplayControl>> {
        self.replay.as_ref()
    }

    /// Stops reading, lets the processing thread drain what was read, waits for both threads, and returns the
    /// events published and not yet taken (the last averages and the final stats among them).
    pub fn stop(mut self) -> Vec<PipelineEvent> {
        self.shutdown();
        self.events.try_iter().collect()
    }

    fn shutdown(&mut self) {
        if let Some(r) = self.reader.take() {
            r.join();
        }
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("the processing thread panicked");
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// How long the processing thread sleeps when the ring is empty.
const IDLE_NAP: Duration = Duration::from_micros(200);
/// Items processed in place before the ring slots are released and commands are looked at again.
const BATCH: usize = 32;

fn process(
    mut consumer: AcquiredConsumer,
    mut processor: Processor,
    stats: &PipelineStats,
    ingest: &IngestStats,
    stop: &AtomicBool,
    tx: &mpsc::Sender<PipelineEvent>,
    commands: &mpsc::Receiver<Command>,
) {
    loop {
        while let Ok(cmd) = commands.try_recv() {
            processor.command(cmd);
        }
        let depth = consumer.occupied_len() as u64;
        stats.queue_depth.store(depth, Relaxed);
        stats.queue_depth_max.fetch_max(depth, Relaxed);
        if consumer.is_empty() {
            processor.flush_ready();
            processor.publish(tx);
            // The producer is released when the reader thread ends; `stop` comes after the reader is joined,
            // so what it pushed is still drained first.
            if !consumer.write_is_held() || (stop.load(Relaxed) && consumer.is_empty()) {
                processor.finish(stats, ingest);
                processor.publish(tx);
                processor.close_recorder();
                let _ = tx.send(PipelineEvent::Finished);
                return;
            }
            // A short nap: the time from an item's arrival to its processing is at most this (+ the timer's
            // slack), and it bounds the live latency of every average (goal: p99 ≤ 1 ms). Idle cost: a few µs
            // per wake-up, ≈ 1–2 % of a core.
            std::thread::sleep(IDLE_NAP);
            continue;
        }
        // Items are processed where they lie in the ring and then released, a few at a time: a sample block
        // is 8 kB, and popping it copied it once more on its way to the engine.
        let mut done = 0;
        let mut result = Ok(());
        {
            let (first, second) = consumer.as_slices();
            // At most an eighth of the ring: the slots are released only after the batch, and a live reader
            // facing a full ring drops frames.
            let batch = (consumer.capacity().get() / 8).clamp(1, BATCH);
            for item in first.iter().chain(second).take(batch) {
                let t0 = Instant::now();
                result = processor.accept(item, stats);
                let ns = t0.elapsed().as_nanos() as u64;
                stats.process_ns_last.store(ns, Relaxed);
                stats.process_ns_total.fetch_add(ns, Relaxed);
                processor.publish(tx);
                done += 1;
                if result.is_err() {
                    break;
                }
            }
        }
        consumer.skip(done);
        if let Err(e) = result {
            tracing::error!(error = %e, "processing stopped");
            let _ = tx.send(PipelineEvent::Fatal(e));
            let _ = tx.send(PipelineEvent::Finished);
            processor.close_recorder();
            return;
        }
    }
}
