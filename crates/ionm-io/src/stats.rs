//! Counters shared between the reader thread and whoever watches it.

use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// Live counters of one reader, updated with relaxed atomics (no locks on the acquisition path).
#[derive(Debug, Default)]
pub struct IngestStats {
    /// Bytes read from the source.
    pub bytes: AtomicU64,
    /// Frames with a valid CRC.
    pub frames: AtomicU64,
    /// Sample frames accepted.
    pub sample_frames: AtomicU64,
    /// Sample instants accepted (per channel).
    pub samples: AtomicU64,
    /// Stimuli accepted.
    pub stimuli: AtomicU64,
    /// Candidate frames with a bad CRC.
    pub crc_errors: AtomicU64,
    /// Bytes discarded while resynchronising.
    pub bytes_discarded: AtomicU64,
    /// Frames lost according to sequence numbers.
    pub frames_lost: AtomicU64,
    /// Gaps reported downstream.
    pub gaps: AtomicU64,
    /// Sample instants missing in those gaps.
    pub gap_samples: AtomicU64,
    /// Frames dropped as malformed, of an unknown version, inconsistent with the device, or before any device info.
    pub frames_rejected: AtomicU64,
    /// Items dropped because the ring buffer was full (the consumer fell behind).
    pub overruns: AtomicU64,
    /// Times the source was re-opened.
    pub reconnects: AtomicU64,
    /// Times the signal was lost (no frame for the stall timeout).
    pub signal_lost: AtomicU64,
    /// Nanoseconds from a chunk's arrival to the end of its decoding, last chunk.
    pub decode_latency_ns: AtomicU64,
    /// Largest such latency since the last [`IngestStats::snapshot_and_reset_max`].
    pub decode_latency_max_ns: AtomicU64,
    /// The source is open.
    pub connected: AtomicBool,
    /// A device-info frame has been received on the current connection.
    pub handshake_done: AtomicBool,
}

/// A plain copy of [`IngestStats`] at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[allow(missing_docs)] // Same fields as IngestStats.
pub struct IngestSnapshot {
    pub bytes: u64,
    pub frames: u64,
    pub sample_frames: u64,
    pub samples: u64,
    pub stimuli: u64,
    pub crc_errors: u64,
    pub bytes_discarded: u64,
    pub frames_lost: u64,
    pub gaps: u64,
    pub gap_samples: u64,
    pub frames_rejected: u64,
    pub overruns: u64,
    pub reconnects: u64,
    pub signal_lost: u64,
    pub decode_latency_ns: u64,
    pub decode_latency_max_ns: u64,
    pub connected: bool,
}

impl IngestStats {
    /// Adds `n` to a counter.
    #[inline]
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    /// Records one decode latency.
    #[inline]
    pub fn record_latency(&self, ns: u64) {
        self.decode_latency_ns.store(ns, Relaxed);
        self.decode_latency_max_ns.fetch_max(ns, Relaxed);
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> IngestSnapshot {
        IngestSnapshot {
            bytes: self.bytes.load(Relaxed),
            frames: self.frames.load(Relaxed),
            sample_frames: self.sample_frames.load(Relaxed),
            samples: self.samples.load(Relaxed),
            stimuli: self.stimuli.load(Relaxed),
            crc_errors: self.crc_errors.load(Relaxed),
            bytes_discarded: self.bytes_discarded.load(Relaxed),
            frames_lost: self.frames_lost.load(Relaxed),
            gaps: self.gaps.load(Relaxed),
            gap_samples: self.gap_samples.load(Relaxed),
            frames_rejected: self.frames_rejected.load(Relaxed),
            overruns: self.overruns.load(Relaxed),
            reconnects: self.reconnects.load(Relaxed),
            signal_lost: self.signal_lost.load(Relaxed),
            decode_latency_ns: self.decode_latency_ns.load(Relaxed),
            decode_latency_max_ns: self.decode_latency_max_ns.load(Relaxed),
            connected: self.connected.load(Relaxed),
        }
    }

    /// Reads every counter and restarts the latency maximum (for per-interval reports).
    pub fn snapshot_and_reset_max(&self) -> IngestSnapshot {
        let mut s = self.snapshot();
        s.decode_latency_max_ns = self.decode_latency_max_ns.swap(0, Relaxed);
        s
    }
}
