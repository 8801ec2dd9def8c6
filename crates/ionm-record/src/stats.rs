//! Counters of a recorder, shared between the processing thread (which feeds it) and the recorder thread.

use serde::Serialize;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};

/// Live counters of a recorder (atomics: read them from any thread at any time, e.g. for a technical alarm on
/// `dropped_items` or `failed`).
#[derive(Debug, Default)]
pub struct RecorderStats {
    /// Items (sample blocks, stimuli, events…) the recorder thread has processed.
    pub items: AtomicU64,
    /// Sample instants recorded (padding excluded).
    pub samples: AtomicU64,
    /// Bytes of data records written.
    pub bytes: AtomicU64,
    /// Data records written.
    pub records: AtomicU64,
    /// Crash-safe flushes done (records durable, header count rewritten).
    pub flushes: AtomicU64,
    /// Messages waiting in the recorder's queue.
    pub queued: AtomicU64,
    /// Items the feeder could not queue (queue full or recorder stopped): each is a loss in the file.
    pub dropped_items: AtomicU64,
    /// Sample instants inside the dropped items.
    pub dropped_samples: AtomicU64,
    /// Stimuli received.
    pub stimuli: AtomicU64,
    /// Gaps recorded.
    pub gaps: AtomicU64,
    /// Annotations written into the file.
    pub annotations: AtomicU64,
    /// Annotations dropped because too many were waiting for room in the data records.
    pub annotations_dropped: AtomicU64,
    /// Files started (more than one after a device restart or a channel layout change).
    pub files: AtomicU64,
    /// The recorder stopped on an error; `RecorderHandle::finish` returns it.
    pub failed: AtomicBool,
}

/// A plain copy of [`RecorderStats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RecorderSnapshot {
    /// See [`RecorderStats::items`].
    pub items: u64,
    /// See [`RecorderStats::samples`].
    pub samples: u64,
    /// See [`RecorderStats::bytes`].
    pub bytes: u64,
    /// See [`RecorderStats::records`].
    pub records: u64,
    /// See [`RecorderStats::flushes`].
    pub flushes: u64,
    /// See [`RecorderStats::queued`].
    pub queued: u64,
    /// See [`RecorderStats::dropped_items`].
    pub dropped_items: u64,
    /// See [`RecorderStats::dropped_samples`].
    pub dropped_samples: u64,
    /// See [`RecorderStats::stimuli`].
    pub stimuli: u64,
    /// See [`RecorderStats::gaps`].
    pub gaps: u64,
    /// See [`RecorderStats::annotations`].
    pub annotations: u64,
    /// See [`RecorderStats::annotations_dropped`].
    pub annotations_dropped: u64,
    /// See [`RecorderStats::files`].
    pub files: u64,
    /// See [`RecorderStats::failed`].
    pub failed: bool,
}

impl RecorderStats {
    /// Adds `n` to a counter.
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    /// A consistent-enough copy of every counter (each read atomically, not all at one instant).
    pub fn snapshot(&self) -> RecorderSnapshot {
        RecorderSnapshot {
            items: self.items.load(Relaxed),
            samples: self.samples.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            records: self.records.load(Relaxed),
            flushes: self.flushes.load(Relaxed),
            queued: self.queued.load(Relaxed),
            dropped_items: self.dropped_items.load(Relaxed),
            dropped_samples: self.dropped_samples.load(Relaxed),
            stimuli: self.stimuli.load(Relaxed),
            gaps: self.gaps.load(Relaxed),
            annotations: self.annotations.load(Relaxed),
            annotations_dropped: self.annotations_dropped.load(Relaxed),
            files: self.files.load(Relaxed),
            failed: self.failed.load(Relaxed),
        }
    }
}
