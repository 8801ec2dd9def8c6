//! The ionm runtime.
//!
//! - [`Pipeline`]: owns the acquisition reader ([`ionm_io::spawn_reader`]) and the processing thread that drains
//!   its ring buffer. The processing thread never blocks on the reader: it pops what is there, and sleeps briefly
//!   when the ring is empty.
//! - [`StreamChecker`]: the first stage on the processing thread. It follows the device session and the sample
//!   indices and counts anything that would be stitched over (a block that does not continue the previous one
//!   without a gap in between) — the invariant every later stage relies on.
//! - [`PipelineEvent`]: what the processing thread publishes (device changes, link changes, gaps, status) on the
//!   event bus, an `std::sync::mpsc` channel read by the application (terminal, JSON Lines, dashboard).
//! - [`PipelineStats`]: counters of the processing side (atomics), with the ring's queue depth.

mod checker;

pub use checker::StreamChecker;

use ionm_core::{DeviceInfo, DeviceStatus, Gap, LinkEvent};
use ionm_io::{AcquiredConsumer, ByteSource, IngestStats, ReaderConfig, ReaderHandle, spawn_reader};
use ringbuf::traits::*;
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// What the processing thread publishes, in stream order.
#[derive(Debug, Clone)]
pub enum PipelineEvent {
    /// A device (re)declared itself.
    Device(Arc<DeviceInfo>),
    /// The link changed state.
    Link(LinkEvent),
    /// Data is missing.
    Gap(Gap),
    /// A device status report with something to say (saturation, high impedance, stimulator fault, low battery).
    Status(DeviceStatus),
    /// The processing thread ended (the source ended or the pipeline was stopped).
    Finished,
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
        }
    }
}

/// A running pipeline: reader thread + processing thread + event bus.
pub struct Pipeline {
    reader: Option<ReaderHandle>,
    ingest: Arc<IngestStats>,
    stats: Arc<PipelineStats>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    events: mpsc::Receiver<PipelineEvent>,
}

impl Pipeline {
    /// Starts reading `source` and processing what it yields.
    pub fn start(source: impl ByteSource, reader: ReaderConfig) -> std::io::Result<Self> {
        let (handle, consumer) = spawn_reader(source, reader)?;
        let ingest = handle.stats().clone();
        let stats = Arc::new(PipelineStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, events) = mpsc::channel();
        let thread = {
            let (stats, stop) = (stats.clone(), stop.clone());
            std::thread::Builder::new()
                .name("ionm-processing".into())
                .spawn(move || process(consumer, &stats, &stop, &tx))?
        };
        Ok(Self {
            reader: Some(handle),
            ingest,
            stats,
            stop,
            thread: Some(thread),
            events,
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

    /// Stops reading and processing and waits for both threads. Items already in the ring are processed first.
    pub fn stop(mut self) {
        self.shutdown();
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

fn process(
    mut consumer: AcquiredConsumer,
    stats: &PipelineStats,
    stop: &AtomicBool,
    tx: &mpsc::Sender<PipelineEvent>,
) {
    let mut checker = StreamChecker::new();
    loop {
        let depth = consumer.occupied_len() as u64;
        stats.queue_depth.store(depth, Relaxed);
        stats.queue_depth_max.fetch_max(depth, Relaxed);
        let Some(item) = consumer.try_pop() else {
            // The reader finished and everything it pushed is processed, or we were told to stop.
            // The producer is released when the reader thread ends.
            if stop.load(Relaxed) || !consumer.write_is_held() {
                let _ = tx.send(PipelineEvent::Finished);
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
            continue;
        };
        let event = checker.accept(&item, stats);
        // The receiver may be gone (application shutting down); the stream is still drained.
        if let Some(ev) = event {
            let _ = tx.send(ev);
        }
    }
}
