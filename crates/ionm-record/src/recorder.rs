//! [`Recorder`]: the [`RecordingWriter`] on its own thread, fed through a bounded queue that never blocks the
//! feeder.

use crate::error::RecorderError;
use crate::stats::RecorderStats;
use crate::writer::{RecorderConfig, RecordingSummary, RecordingWriter};
use ionm_core::events::Event;
use ionm_core::{Acquired, MAX_BLOCK_VALUES, SampleBlock};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One message to the recorder thread.
#[allow(clippy::large_enum_variant)]
enum Msg {
    /// A packed block of samples; `after_drop` when blocks were dropped just before it.
    Samples { block: SampleBlock, after_drop: bool },
    /// Any other acquisition item.
    Item(Acquired),
    /// An event of the event stream.
    Event(Event),
}

/// Starts recordings.
#[derive(Debug)]
pub struct Recorder;

impl Recorder {
    /// Creates (truncates) `path` and starts the recorder thread (`ionm-recorder`). Feed it with
    /// [`RecorderHandle::try_send`] and [`RecorderHandle::try_send_event`]; end it with
    /// [`RecorderHandle::finish`].
    pub fn create(path: impl AsRef<Path>, config: RecorderConfig) -> Result<RecorderHandle, RecorderError> {
        let stats = Arc::new(RecorderStats::default());
        let capacity = config.queue_capacity;
        let writer = RecordingWriter::new(path.as_ref(), config, stats.clone())?;
        let (tx, rx) = sync_channel(capacity);
        let thread_stats = stats.clone();
        let thread = std::thread::Builder::new()
            .name("ionm-recorder".to_owned())
            .spawn(move || run(writer, rx, thread_stats))
            .map_err(RecorderError::Spawn)?;
        Ok(RecorderHandle {
            tx: Some(tx),
            thread: Some(thread),
            stats,
            pending: Box::new(SampleBlock::empty()),
            pack_samples: 1,
            dropped_since_send: false,
            path: path.as_ref().to_owned(),
            blocking: false,
        })
    }
}

fn run(
    mut writer: RecordingWriter,
    rx: Receiver<Msg>,
    stats: Arc<RecorderStats>,
) -> Result<RecordingSummary, RecorderError> {
    loop {
        let wait = writer.time_to_poll(Instant::now()).max(Duration::from_millis(1));
        let result = match rx.recv_timeout(wait) {
            Ok(msg) => {
                stats.queued.fetch_sub(1, Relaxed);
                RecorderStats::add(&stats.items, 1);
                match msg {
                    Msg::Samples { block, after_drop } => writer.handle_samples(&block, after_drop),
                    Msg::Item(item) => writer.handle(&item),
                    Msg::Event(e) => {
                        writer.handle_event(&e);
                        Ok(())
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => Ok(()),
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if let Err(e) = result.and_then(|()| writer.poll(Instant::now())) {
            stats.failed.store(true, Relaxed);
            tracing::error!(error = %e, "recorder failed; the file is valid up to its last flush");
            // Senders see a closed queue from now on and count their items as dropped.
            drop(rx);
            if let Err(e2) = writer.finish() {
                tracing::warn!(error = %e2, "closing the failed recording also failed");
            }
            return Err(e);
        }
    }
    writer.finish().inspect_err(|_| stats.failed.store(true, Relaxed))
}

/// The feeding end of a recorder, owned by the processing thread. Nothing here blocks except
/// [`finish`](Self::finish): when the queue is full an item is dropped and counted in
/// [`RecorderStats::dropped_items`] (the recording then shows a `recorder_overrun` gap).
///
/// Consecutive sample blocks are packed into full blocks of [`MAX_BLOCK_VALUES`] values (or 50 ms of signal,
/// whichever comes first) before they are queued, so the queue holds seconds of signal whatever the source's
/// block size; any other item sends the packed block first, so stream order is kept.
pub struct RecorderHandle {
    tx: Option<SyncSender<Msg>>,
    thread: Option<JoinHandle<Result<RecordingSummary, RecorderError>>>,
    stats: Arc<RecorderStats>,
    pending: Box<SampleBlock>,
    pack_samples: usize,
    dropped_since_send: bool,
    path: PathBuf,
    blocking: bool,
}

impl std::fmt::Debug for RecorderHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecorderHandle")
            .field("path", &self.path)
            .field("stats", &self.stats.snapshot())
            .finish_non_exhaustive()
    }
}

impl RecorderHandle {
    /// The counters (shared with the recorder thread).
    pub fn stats(&self) -> &Arc<RecorderStats> {
        &self.stats
    }

    /// The path the recording was created at (later files after a device restart are numbered: `rec-2.bdf`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Offline runs (a replay, a simulator at full speed: nothing is lost by waiting) may wait for the
    /// recorder instead of dropping when its queue is full: then the recording has every sample whatever the
    /// relative speeds of processing and disk. Live runs must not (default: never blocks).
    pub fn set_blocking(&mut self, blocking: bool) {
        self.blocking = blocking;
    }

    fn send(&mut self, msg: Msg, samples: u64) -> bool {
        let Some(tx) = &self.tx else {
            return false;
        };
        self.stats.queued.fetch_add(1, Relaxed);
        let result = if self.blocking {
            tx.send(msg).map_err(|e| TrySendError::Disconnected(e.0))
        } else {
            tx.try_send(msg)
        };
        match result {
            Ok(()) => true,
            Err(e) => {
                self.stats.queued.fetch_sub(1, Relaxed);
                let n = self.stats.dropped_items.fetch_add(1, Relaxed);
                RecorderStats::add(&self.stats.dropped_samples, samples);
                self.dropped_since_send = true;
                if (n + 1).is_power_of_two() {
                    match e {
                        TrySendError::Full(_) => {
                            tracing::warn!(dropped = n + 1, "recorder queue full: dropping")
                        }
                        TrySendError::Disconnected(_) => {
                            tracing::warn!(dropped = n + 1, "recorder stopped: dropping")
                        }
                    }
                }
                false
            }
        }
    }

    /// Queues the packed samples, if any. Returns false if they were dropped.
    pub fn flush_pending(&mut self) -> bool {
        if self.pending.n_samples() == 0 {
            return true;
        }
        let block = (*self.pending).clone();
        let n = block.n_samples() as u64;
        // Mark the buffer empty without touching its 8 kB.
        let _ = self.pending.fill(0, 1, 0, |_| {});
        let after_drop = std::mem::take(&mut self.dropped_since_send);
        let ok = self.send(Msg::Samples { block, after_drop }, n);
        if !ok {
            self.dropped_since_send = true;
        }
        ok
    }

    /// Offers one acquisition item (copied). Returns false if it (or the packed samples before it) had to be
    /// dropped. Never blocks.
    pub fn try_send(&mut self, item: &Acquired) -> bool {
        match item {
            Acquired::Samples(b) => self.pack(b),
            other => {
                if let Acquired::Device(d) = other {
                    self.pack_samples = (d.sample_rate_hz as usize / 20).max(1);
                }
                let flushed = self.flush_pending();
                self.send(Msg::Item(other.clone()), 0) && flushed
            }
        }
    }

    /// Offers one event (cloned). Returns false if it (or the packed samples before it) had to be dropped.
    pub fn try_send_event(&mut self, event: &Event) -> bool {
        match event {
            Event::Alarm(_) | Event::Baseline(_) | Event::Marker(_) | Event::Correction(_) => {
                let flushed = self.flush_pending();
                self.send(Msg::Event(event.clone()), 0) && flushed
            }
            // Not recorded (see `RecordingWriter::handle_event`): not worth a clone.
            _ => true,
        }
    }

    fn pack(&mut self, b: &SampleBlock) -> bool {
        let nch = b.n_channels();
        if nch == 0 || b.n_samples() == 0 {
            return true;
        }
        if !b.all_decoded() {
            // Packing would pass the missing channels off as samples: it goes as it is, for the writer to refuse.
            let flushed = self.flush_pending();
            let after_drop = std::mem::take(&mut self.dropped_since_send);
            let block = b.clone();
            return self.send(Msg::Samples { block, after_drop }, b.n_samples() as u64) && flushed;
        }
        let mut ok = true;
        let p = &self.pending;
        if p.n_samples() > 0 && (p.n_channels() != nch || p.end_index() != b.first_index()) {
            ok &= self.flush_pending();
        }
        let cap = MAX_BLOCK_VALUES / nch;
        let limit = self.pack_samples.clamp(1, cap);
        let values = b.values();
        let mut done = 0;
        while done < b.n_samples() {
            let have = self.pending.n_samples();
            let first = if have == 0 {
                b.first_index() + done as u64
            } else {
                self.pending.first_index()
            };
            let take = (cap - have).min(b.n_samples() - done);
            let src = &values[done * nch..(done + take) * nch];
            // have + take ≤ cap, so the block has room.
            let _ = self.pending.fill(first, nch, have + take, |dst| {
                dst[have * nch..].copy_from_slice(src)
            });
            done += take;
            if self.pending.n_samples() >= limit {
                ok &= self.flush_pending();
            }
        }
        ok
    }

    /// Sends what is packed, closes the queue, waits for the recorder thread to write and close the file(s),
    /// and returns what was written (or the error that stopped the recorder).
    pub fn finish(mut self) -> Result<RecordingSummary, RecorderError> {
        self.finish_inner()
    }

    fn finish_inner(&mut self) -> Result<RecordingSummary, RecorderError> {
        if self.pending.n_samples() > 0
            && let Some(tx) = &self.tx
        {
            // Blocking here is fine: the stream has ended.
            let block = (*self.pending).clone();
            let _ = self.pending.fill(0, 1, 0, |_| {});
            self.stats.queued.fetch_add(1, Relaxed);
            let after_drop = std::mem::take(&mut self.dropped_since_send);
            if tx.send(Msg::Samples { block, after_drop }).is_err() {
                self.stats.queued.fetch_sub(1, Relaxed);
            }
        }
        self.tx = None;
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| RecorderError::Panicked)?,
            None => Ok(RecordingSummary::default()),
        }
    }
}

impl Drop for RecorderHandle {
    fn drop(&mut self) {
        if self.thread.is_some()
            && let Err(e) = self.finish_inner()
        {
            tracing::error!(error = %e, "recorder dropped without finish(); closing failed");
        }
    }
}
