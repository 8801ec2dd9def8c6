//! The acquisition thread: source → decoder → assembler → lock-free ring buffer.

use crate::assemble::Assembler;
use crate::source::{ByteSource, ReadOutcome};
use crate::stats::IngestStats;
use ionm_core::{Acquired, DeviceInfo, Gap, GapCause, LinkEvent};
use ionm_wire::{Decoder, DecoderStats};
use ringbuf::{HeapProd, HeapRb, traits::*};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The consumer end of the acquisition ring buffer.
pub type AcquiredConsumer = ringbuf::HeapCons<Acquired>;

/// How the reader behaves.
#[derive(Debug, Clone)]
pub struct ReaderConfig {
    /// Items the ring buffer holds (a sample frame is one item; 2048 ≈ 2 s at 1000 frames/s).
    pub ring_capacity: usize,
    /// No valid frame for this long on an open link raises [`LinkEvent::SignalLost`].
    pub stall_timeout: Duration,
    /// No device-info frame this long after opening raises [`LinkEvent::HandshakeTimeout`].
    pub handshake_timeout: Duration,
    /// First wait before re-opening a failed source; doubles up to `backoff_max`.
    pub backoff_min: Duration,
    /// Longest wait between re-open attempts.
    pub backoff_max: Duration,
    /// Name of the thread (every thread is named).
    pub thread_name: String,
    /// Wait for room in the ring instead of dropping (for sources that are not real time: the in-process
    /// simulator at max speed, captures). Never for a live device.
    pub lossless: bool,
}

impl Default for ReaderConfig {
    fn default() -> Self {
        Self {
            ring_capacity: 2048,
            stall_timeout: Duration::from_millis(500),
            handshake_timeout: Duration::from_secs(3),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(2),
            thread_name: "ionm-acquisition".into(),
            lossless: false,
        }
    }
}

/// Controls a running reader.
pub struct ReaderHandle {
    stats: Arc<IngestStats>,
    stop: Arc<AtomicBool>,
    finished: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ReaderHandle {
    /// The reader's counters.
    pub fn stats(&self) -> &Arc<IngestStats> {
        &self.stats
    }

    /// Asks the reader to stop; it notices within one poll interval.
    pub fn stop(&self) {
        self.stop.store(true, Relaxed);
    }

    /// True once the reader has ended (source ended for good, or stopped).
    pub fn is_finished(&self) -> bool {
        self.finished.load(Relaxed)
    }

    /// Stops the reader and waits for its thread.
    pub fn join(mut self) {
        self.stop();
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("the acquisition thread panicked");
        }
    }
}

impl Drop for ReaderHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts `source` on a named thread. Items arrive at the returned consumer in stream order.
pub fn spawn_reader(
    source: impl ByteSource,
    config: ReaderConfig,
) -> std::io::Result<(ReaderHandle, AcquiredConsumer)> {
    let (prod, cons) = HeapRb::<Acquired>::new(config.ring_capacity.max(16)).split();
    let stats = Arc::new(IngestStats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicBool::new(false));
    let thread = {
        let (stats, stop, finished) = (stats.clone(), stop.clone(), finished.clone());
        std::thread::Builder::new()
            .name(config.thread_name.clone())
            .spawn(move || {
                let mut pusher = Pusher {
                    lossless: config.lossless,
                    stop: stop.clone(),
                    prod,
                    overrun: None,
                    pending_device: None,
                    pending_links: Default::default(),
                    stats: stats.clone(),
                };
                run(source, &config, &stats, &stop, &mut pusher);
                // What the ring could not take yet (an overrun gap, the last link events) explains the end of
                // the stream: give the consumer a bounded time to make room for it.
                let deadline = Instant::now() + Duration::from_secs(2);
                while pusher.has_pending() && !pusher.flush_pending() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(1));
                }
                finished.store(true, Relaxed);
            })?
    };
    Ok((handle(stats, stop, finished, thread), cons))
}

pub(crate) fn handle(
    stats: Arc<IngestStats>,
    stop: Arc<AtomicBool>,
    finished: Arc<AtomicBool>,
    thread: JoinHandle<()>,
) -> ReaderHandle {
    ReaderHandle {
        stats,
        stop,
        finished,
        thread: Some(thread),
    }
}

/// Pushes items without ever blocking; when the ring is full, data is dropped, counted, and reported downstream
/// as an overrun gap as soon as there is room again.
struct Pusher {
    lossless: bool,
    stop: Arc<AtomicBool>,
    prod: HeapProd<Acquired>,
    overrun: Option<(u64, u64)>,
    pending_device: Option<Arc<DeviceInfo>>,
    /// Link events that found the ring full; kept (a few) because they explain the gap.
    pending_links: std::collections::VecDeque<LinkEvent>,
    stats: Arc<IngestStats>,
}

/// Link events kept while the ring is full; older ones beyond this are dropped (and counted as overruns).
const MAX_PENDING_LINKS: usize = 16;

impl Pusher {
    fn push(&mut self, item: Acquired) {
        if self.has_pending() && !self.flush_pending() {
            return self.drop_item(item);
        }
        let mut item = item;
        loop {
            match self.prod.try_push(item) {
                Ok(()) => return,
                Err(back) if self.lossless && !self.stop.load(Relaxed) => {
                    item = back;
                    std::thread::sleep(Duration::from_micros(200));
                }
                Err(back) => return self.drop_item(back),
            }
        }
    }

    fn has_pending(&self) -> bool {
        self.overrun.is_some() || self.pending_device.is_some() || !self.pending_links.is_empty()
    }

    fn flush_pending(&mut self) -> bool {
        if let Some(d) = self.pending_device.take()
            && let Err(Acquired::Device(d)) = self.prod.try_push(Acquired::Device(d))
        {
            self.pending_device = Some(d);
            return false;
        }
        if let Some((from, to)) = self.overrun {
            let gap = Gap {
                cause: GapCause::Overrun,
                from,
                to,
                frames: 0,
            };
            if self.prod.try_push(Acquired::Gap(gap)).is_err() {
                return false;
            }
            IngestStats::add(&self.stats.gaps, 1);
            IngestStats::add(&self.stats.gap_samples, gap.samples());
            tracing::warn!(
                from,
                to,
                "overrun: the consumer fell behind and samples were dropped"
            );
            self.overrun = None;
        }
        while let Some(l) = self.pending_links.pop_front() {
            if let Err(Acquired::Link(l)) = self.prod.try_push(Acquired::Link(l)) {
                self.pending_links.push_front(l);
                return false;
            }
        }
        true
    }

    fn drop_item(&mut self, item: Acquired) {
        IngestStats::add(&self.stats.overruns, 1);
        match item {
            Acquired::Samples(b) => {
                let (from, _) = self.overrun.unwrap_or((b.first_index(), b.first_index()));
                self.overrun = Some((from, b.end_index()));
            }
            Acquired::Gap(g) => {
                let (from, _) = self.overrun.unwrap_or((g.from, g.from));
                self.overrun = Some((from, g.to));
            }
            Acquired::Device(d) => {
                // A new device restarts indices: the old overrun range means nothing in the new session.
                self.overrun = None;
                self.pending_device = Some(d);
            }
            Acquired::Link(l) => {
                if self.pending_links.len() == MAX_PENDING_LINKS {
                    self.pending_links.pop_front();
                }
                self.pending_links.push_back(l);
            }
            Acquired::Stimulus(_) | Acquired::Status(_) => {}
        }
    }
}

fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) {
    let end = Instant::now() + d;
    while !stop.load(Relaxed) {
        let now = Instant::now();
        if now >= end {
            return;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(20)));
    }
}

fn run(
    mut source: impl ByteSource,
    cfg: &ReaderConfig,
    stats: &IngestStats,
    stop: &AtomicBool,
    pusher: &mut Pusher,
) {
    let mut decoder = Decoder::new();
    let mut assembler = Assembler::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut backoff = cfg.backoff_min;
    let mut prev = DecoderStats::default();
    let mut reconnects = 0u32;
    let what = source.describe();
    let mut ever_opened = false;
    // Silence is measured across connections: a port that vanished is silent too.
    let mut last_frame = Instant::now();
    let mut lost = false;
    let check_silence =
        |last_frame: Instant, lost: &mut bool, assembler: &mut Assembler, pusher: &mut Pusher| {
            let silent = last_frame.elapsed();
            if !*lost && silent >= cfg.stall_timeout {
                *lost = true;
                IngestStats::add(&stats.signal_lost, 1);
                assembler.link_interrupted();
                let silent_ms = silent.as_millis() as u64;
                tracing::warn!(silent_ms, "signal lost: no frame from the device");
                pusher.push(Acquired::Link(LinkEvent::SignalLost { silent_ms }));
            }
        };
    while !stop.load(Relaxed) {
        if let Err(e) = source.open() {
            if !source.reconnectable() {
                tracing::info!(%what, "source ended");
                return;
            }
            check_silence(last_frame, &mut lost, &mut assembler, pusher);
            tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "cannot open the source");
            sleep_unless_stopped(backoff, stop);
            backoff = (backoff * 2).min(cfg.backoff_max);
            continue;
        }
        if ever_opened {
            reconnects += 1;
            IngestStats::add(&stats.reconnects, 1);
        }
        ever_opened = true;
        stats.connected.store(true, Relaxed);
        stats.handshake_done.store(false, Relaxed);
        tracing::info!(%what, reconnects, "source open");
        pusher.push(Acquired::Link(LinkEvent::Connected {
            source: what.clone(),
            reconnects,
        }));
        decoder.reset();
        let opened = Instant::now();
        let mut handshake_reported = false;
        let ended = loop {
            if stop.load(Relaxed) {
                break None;
            }
            let outcome = match source.read(&mut buf) {
                Ok(o) => o,
                Err(e) => break Some(e.to_string()),
            };
            let now = Instant::now();
            match outcome {
                ReadOutcome::Data(n) => {
                    decoder.decode(&buf[..n], |ev| {
                        if let ionm_wire::Event::DeviceInfo(_) = ev {
                            stats.handshake_done.store(true, Relaxed);
                        }
                        assembler.on_event(ev, stats, &mut |item| pusher.push(item));
                    });
                    let d = decoder.stats();
                    IngestStats::add(&stats.bytes, d.bytes - prev.bytes);
                    IngestStats::add(&stats.frames, d.frames - prev.frames);
                    IngestStats::add(&stats.crc_errors, d.crc_errors - prev.crc_errors);
                    IngestStats::add(&stats.bytes_discarded, d.bytes_discarded - prev.bytes_discarded);
                    if d.frames > prev.frames {
                        if lost {
                            let silent_ms = now.duration_since(last_frame).as_millis() as u64;
                            tracing::info!(silent_ms, "signal restored");
                            pusher.push(Acquired::Link(LinkEvent::SignalRestored { silent_ms }));
                            lost = false;
                        }
                        last_frame = now;
                        backoff = cfg.backoff_min;
                    }
                    prev = d;
                    stats.record_latency(now.elapsed().as_nanos() as u64);
                }
                ReadOutcome::Idle => {}
                ReadOutcome::Closed => break Some("the source closed".to_owned()),
            }
            check_silence(last_frame, &mut lost, &mut assembler, pusher);
            if !handshake_reported
                && !stats.handshake_done.load(Relaxed)
                && now.duration_since(opened) >= cfg.handshake_timeout
            {
                handshake_reported = true;
                let waited_ms = cfg.handshake_timeout.as_millis() as u64;
                tracing::error!(waited_ms, %what, "no device-info frame: is an ionm device on the other end?");
                pusher.push(Acquired::Link(LinkEvent::HandshakeTimeout { waited_ms }));
            }
        };
        source.close();
        stats.connected.store(false, Relaxed);
        assembler.link_interrupted();
        let Some(reason) = ended else { return };
        if !source.reconnectable() {
            tracing::info!(%reason, %what, "source ended");
            pusher.push(Acquired::Link(LinkEvent::Ended { reason }));
            return;
        }
        tracing::warn!(%reason, %what, "source disconnected");
        pusher.push(Acquired::Link(LinkEvent::Disconnected { reason }));
        sleep_unless_stopped(backoff, stop);
        backoff = (backoff * 2).min(cfg.backoff_max);
    }
}
